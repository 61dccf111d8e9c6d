//! How the raft layer lays its values out in fjall: log index keys are 8-byte big-endian (so key
//! order is index order), and every value is one format byte followed by exactly one postcard
//! message. The format byte lets a future build recognise — and refuse — values written by an
//! incompatible one (openraft's serialized types may change between alphas).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RaftStorageError;

/// The format byte of every value written by this build.
pub(crate) const VALUE_FORMAT: u8 = 1;

/// The key of log entry `index`.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index a log key names.
pub(crate) fn decode_index_key(key: &[u8]) -> Result<u64, RaftStorageError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| RaftStorageError::Corrupt {
        subject: "raft log key",
        reason: format!("{} bytes instead of 8", key.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Encodes `value` as the format byte and one postcard message.
pub(crate) fn encode<T: Serialize + ?Sized>(
    subject: &'static str,
    value: &T,
) -> Result<Vec<u8>, RaftStorageError> {
    postcard::to_extend(value, vec![VALUE_FORMAT])
        .map_err(|source| RaftStorageError::Encode { subject, source })
}

/// Decodes a value written by [`encode`]; anything else (another format byte, a malformed or
/// truncated message, bytes after it) is an error.
pub(crate) fn decode<T: DeserializeOwned>(
    subject: &'static str,
    bytes: &[u8],
) -> Result<T, RaftStorageError> {
    let corrupt = |reason: String| RaftStorageError::Corrupt { subject, reason };
    let (&format, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty value".into()))?;
    if format != VALUE_FORMAT {
        return Err(corrupt(format!(
            "format {format} is not the format {VALUE_FORMAT} this build reads"
        )));
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| corrupt(e.to_string()))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} bytes after the value", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::LogPayload;
    use crate::proto::TypeConfig;
    use bytes::Bytes;
    use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
    use openraft::vote::{RaftLeaderId, RaftLeaderIdExt, RaftVote};
    use openraft::{EntryPayload, Membership};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type LeaderId = openraft::type_config::alias::LeaderIdOf<TypeConfig>;

    fn log_id(term: u64, node: u64, index: u64) -> LogIdOf<TypeConfig> {
        LogIdOf::<TypeConfig>::new(LeaderId::new_committed(term, node), index)
    }

    fn entry() -> impl Strategy<Value = EntryOf<TypeConfig>> {
        let payload = prop_oneof![
            Just(EntryPayload::Blank),
            proptest::collection::vec(any::<u8>(), 0..256)
                .prop_map(|b| EntryPayload::Normal(LogPayload::Command(Bytes::from(b)))),
            (
                any::<[u8; 16]>(),
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(client, seq, acked, b)| EntryPayload::Normal(
                    LogPayload::SessionCommand {
                        session: crate::proto::SessionTag { client, seq, acked },
                        command: Bytes::from(b),
                    }
                )),
            (
                0..3usize,
                any::<[u8; 32]>(),
                "[a-z0-9.]{0,8}",
                proptest::collection::vec(any::<u8>(), 0..16),
                proptest::collection::vec(any::<u8>(), 0..256),
            )
                .prop_map(|(kind, sha256, version, config, wasm)| {
                    EntryPayload::Normal(LogPayload::Deploy(crate::proto::DeployEntry {
                        kind: crate::proto::PluginKind::ALL[kind],
                        sha256,
                        version,
                        config: Bytes::from(config),
                        wasm: Bytes::from(wasm),
                    }))
                }),
            (
                "[a-z0-9-]{0,12}",
                any::<[u8; 32]>(),
                proptest::option::of(any::<[u8; 32]>()),
                proptest::collection::vec(any::<u8>(), 0..256),
            )
                .prop_map(|(backup_id, sha256, state_hash, image)| {
                    EntryPayload::Normal(LogPayload::Restore(crate::proto::RestoreEntry {
                        backup_id,
                        sha256,
                        state_hash,
                        image: Bytes::from(image),
                    }))
                }),
            (0..3usize, any::<[u8; 32]>()).prop_map(|(kind, from_sha256)| {
                EntryPayload::Normal(LogPayload::Rollback {
                    kind: crate::proto::PluginKind::ALL[kind],
                    from_sha256,
                })
            }),
            proptest::collection::btree_set(0u64..8, 1..4).prop_map(|voters| {
                let nodes: BTreeMap<u64, crate::proto::Member> = voters
                    .iter()
                    .map(|id| (*id, crate::proto::Member::default()))
                    .collect();
                EntryPayload::Membership(
                    Membership::new(vec![voters], nodes).expect("valid membership"),
                )
            }),
        ];
        (any::<u64>(), any::<u64>(), any::<u64>(), payload).prop_map(
            |(term, node, index, payload)| EntryOf::<TypeConfig> {
                log_id: log_id(term, node, index),
                payload,
            },
        )
    }

    proptest! {
        #[test]
        fn entries_round_trip(entry in entry()) {
            let bytes = encode("entry", &entry).unwrap();
            prop_assert_eq!(bytes[0], VALUE_FORMAT);
            let back: EntryOf<TypeConfig> = decode("entry", &bytes).unwrap();
            prop_assert_eq!(back, entry);
        }

        #[test]
        fn votes_and_log_ids_round_trip(term in any::<u64>(), node in any::<u64>(), index in any::<u64>(), committed in any::<bool>()) {
            let vote = VoteOf::<TypeConfig>::from_leader_id(LeaderId::new(term, node), committed);
            let back: VoteOf<TypeConfig> = decode("vote", &encode("vote", &vote).unwrap()).unwrap();
            prop_assert_eq!(back, vote);
            let id = Some(log_id(term, node, index));
            let back: Option<LogIdOf<TypeConfig>> = decode("log id", &encode("log id", &id).unwrap()).unwrap();
            prop_assert_eq!(back, id);
        }

        #[test]
        fn index_keys_sort_like_indexes(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(index_key(a).cmp(&index_key(b)), a.cmp(&b));
            prop_assert_eq!(decode_index_key(&index_key(a)).unwrap(), a);
        }

        /// Garbage never panics a decoder: it is an error, or (rarely) a valid value.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<EntryOf<TypeConfig>>("entry", &bytes);
            let _ = decode::<VoteOf<TypeConfig>>("vote", &bytes);
            let _ = decode::<Option<LogIdOf<TypeConfig>>>("log id", &bytes);
            let _ = decode_index_key(&bytes);
        }

        /// A truncated or extended value is always an error.
        #[test]
        fn truncated_or_extended_values_are_errors(entry in entry(), cut in any::<prop::sample::Index>(), extra in 1u8..) {
            let bytes = encode("entry", &entry).unwrap();
            let cut = cut.index(bytes.len());
            prop_assert!(decode::<EntryOf<TypeConfig>>("entry", &bytes[..cut]).is_err());
            let mut longer = bytes.clone();
            longer.push(extra);
            prop_assert!(decode::<EntryOf<TypeConfig>>("entry", &longer).is_err());
        }
    }

    #[test]
    fn another_format_byte_is_refused() {
        let mut bytes = encode("log id", &Some(log_id(1, 2, 3))).unwrap();
        bytes[0] = VALUE_FORMAT + 1;
        let err = decode::<Option<LogIdOf<TypeConfig>>>("log id", &bytes).unwrap_err();
        assert!(err.to_string().contains("format 2"), "{err}");
        assert!(decode::<Option<LogIdOf<TypeConfig>>>("log id", &[]).is_err());
        assert!(decode_index_key(&[0; 7]).is_err());
    }
}
