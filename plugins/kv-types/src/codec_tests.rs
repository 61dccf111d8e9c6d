//! Round trips of every message variant, and decoding of arbitrary bytes.

use alloc::vec::Vec;
use proptest::prelude::*;

use super::*;
use crate::{Command, Key, Pair, Query, QueryResponse, Response};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

/// Encodes a message, decodes it again and checks that nothing changed.
macro_rules! prop_assert_round_trips {
    ($value:expr) => {{
        let value = $value;
        let encoded = encode(&value)?;
        let decoded = decode_like(&value, &encoded)?;
        prop_assert_eq!(decoded, value);
    }};
}

/// [`decode`] into the type of `_like`, so a macro can name the type without spelling it.
fn decode_like<'a, T: Deserialize<'a>>(_like: &T, bytes: &'a [u8]) -> Result<T, CodecError> {
    decode(bytes)
}

proptest! {
    #[test]
    fn put_round_trips(key in bytes(), value in bytes()) {
        let command = Command::Put { key: &key, value: &value };
        prop_assert_round_trips!(command);
    }

    #[test]
    fn delete_round_trips(key in bytes()) {
        let command = Command::Delete { key: &key };
        prop_assert_round_trips!(command);
    }

    #[test]
    fn cas_round_trips(key in bytes(), expected in any::<Option<Vec<u8>>>(), new in any::<Option<Vec<u8>>>()) {
        let command = Command::Cas { key: &key, expected: expected.as_deref(), new: new.as_deref() };
        prop_assert_round_trips!(command);
    }

    #[test]
    fn delete_range_round_trips(start in bytes(), end in any::<Option<Vec<u8>>>(), limit in any::<u32>()) {
        let command = Command::DeleteRange { start: &start, end: end.as_deref(), limit };
        prop_assert_round_trips!(command);
    }

    #[test]
    fn deleted_range_round_trips(deleted in any::<u32>(), more in any::<bool>()) {
        let response = Response::DeletedRange { deleted, more };
        prop_assert_round_trips!(response);
    }

    #[test]
    fn written_and_deleted_round_trip(existed in any::<bool>()) {
        prop_assert_round_trips!(Response::Written);
        let deleted = Response::Deleted { existed };
        prop_assert_round_trips!(deleted);
    }

    #[test]
    fn cas_response_round_trips(swapped in any::<bool>(), current in any::<Option<Vec<u8>>>()) {
        let response = Response::Cas { swapped, current };
        prop_assert_round_trips!(response);
    }

    #[test]
    fn get_round_trips(key in bytes()) {
        let query = Query::Get { key: &key };
        prop_assert_round_trips!(query);
    }

    #[test]
    fn scan_round_trips(start in bytes(), end in any::<Option<Vec<u8>>>(), limit in any::<u32>()) {
        let query = Query::Scan { start: &start, end: end.as_deref(), limit };
        prop_assert_round_trips!(query);
    }

    #[test]
    fn prefix_round_trips(prefix in bytes(), limit in any::<u32>()) {
        let query = Query::Prefix { prefix: &prefix, limit };
        prop_assert_round_trips!(query);
    }

    #[test]
    fn keys_query_round_trips(start in bytes(), end in any::<Option<Vec<u8>>>(), limit in any::<u32>()) {
        let query = Query::Keys { start: &start, end: end.as_deref(), limit };
        prop_assert_round_trips!(query);
    }

    #[test]
    fn keys_round_trip(keys in proptest::collection::vec(bytes(), 0..8), more in any::<bool>()) {
        let response = QueryResponse::Keys { keys: keys.into_iter().map(Key).collect(), more };
        prop_assert_round_trips!(response);
    }

    #[test]
    fn value_round_trips(value in any::<Option<Vec<u8>>>()) {
        let response = QueryResponse::Value(value);
        prop_assert_round_trips!(response);
    }

    #[test]
    fn pairs_round_trip(pairs in proptest::collection::vec((bytes(), bytes()), 0..8), more in any::<bool>()) {
        let pairs = pairs.into_iter().map(|(key, value)| Pair { key, value }).collect();
        let response = QueryResponse::Pairs { pairs, more };
        prop_assert_round_trips!(response);
    }

    /// Arbitrary bytes either decode or fail with an error; they never panic.
    #[test]
    fn garbage_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode::<Command<'_>>(&garbage);
        let _ = decode::<Response>(&garbage);
        let _ = decode::<Query<'_>>(&garbage);
        let _ = decode::<QueryResponse>(&garbage);
    }

    /// A message with bytes after it is rejected rather than silently truncated.
    #[test]
    fn trailing_bytes_are_rejected(key in bytes(), extra in proptest::collection::vec(any::<u8>(), 1..16)) {
        let mut encoded = encode(&Query::Get { key: &key }).expect("encodes");
        encoded.extend_from_slice(&extra);
        prop_assert_eq!(
            decode::<Query<'_>>(&encoded),
            Err(CodecError::TrailingBytes { count: extra.len() })
        );
    }
}

#[test]
fn garbage_is_an_error() {
    // Variant index 9 does not exist in any of the message enums.
    for garbage in [&[][..], &[9], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]] {
        assert!(matches!(
            decode::<Command<'_>>(garbage),
            Err(CodecError::Decode { .. })
        ));
        assert!(matches!(
            decode::<Query<'_>>(garbage),
            Err(CodecError::Decode { .. })
        ));
        assert!(matches!(
            decode::<Response>(garbage),
            Err(CodecError::Decode { .. })
        ));
        assert!(matches!(
            decode::<QueryResponse>(garbage),
            Err(CodecError::Decode { .. })
        ));
    }
}

#[test]
fn a_truncated_message_is_an_error() {
    let encoded = encode(&Command::Put {
        key: b"key",
        value: b"value",
    })
    .expect("encodes");
    for end in 0..encoded.len() {
        assert!(
            decode::<Command<'_>>(&encoded[..end]).is_err(),
            "prefix of {end} bytes"
        );
    }
}

#[test]
fn errors_tell_what_to_do() {
    let error = decode::<Command<'_>>(&[9]).expect_err("not a command");
    let message = alloc::string::ToString::to_string(&error);
    assert!(message.starts_with("malformed message"), "{message}");
    assert!(message.contains("iroh_raft_kv_types::encode"), "{message}");
}
