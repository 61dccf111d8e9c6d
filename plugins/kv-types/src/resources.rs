//! What a kv command writes and a query reads, named for the access policy
//! (`iroh_raft_access_types::resource`): one `key/…` per command, and a `key/…` or the narrowest
//! `prefix/…` covering a read.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use iroh_raft_access_types::resource;

#[cfg(test)]
use crate::machine::prefix_end;
use crate::machine::{check_key, decode_command, decode_query};
use crate::{Command, Query};
use iroh_raft_access_types::resource::covering_prefix;

/// The resources an encoded [`Command`] writes: its one key, or for a range delete the longest
/// prefix every key in the range starts with. Fails, with the message [`crate::apply`] would
/// give, on a command `apply` refuses before writing anything (one that does not decode, or an
/// empty key).
pub fn command_resources(command: &[u8]) -> Result<Vec<String>, String> {
    let key = match decode_command(command)? {
        Command::Put { key, .. } | Command::Delete { key } | Command::Cas { key, .. } => key,
        Command::DeleteRange { start, end, .. } => {
            return Ok(vec![resource::prefix(covering_prefix(start, end))]);
        }
    };
    check_key(key)?;
    Ok(vec![resource::key(key)])
}

/// The resources an encoded [`Query`] reads: its key, its prefix, or for a range the longest
/// prefix every key in the range starts with. Fails as [`crate::query`] would.
pub fn query_resources(query: &[u8]) -> Result<Vec<String>, String> {
    let named = match decode_query(query)? {
        Query::Get { key } => {
            check_key(key)?;
            resource::key(key)
        }
        Query::Prefix { prefix, .. } => resource::prefix(prefix),
        Query::Scan { start, end, .. } | Query::Keys { start, end, .. } => {
            resource::prefix(covering_prefix(start, end))
        }
    };
    Ok(vec![named])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply, encode};
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    /// What a scan of `[start, end)` is judged on; a key listing of the same range is judged
    /// on the same.
    fn scan(start: &[u8], end: Option<&[u8]>) -> Vec<String> {
        let query = encode(&Query::Scan {
            start,
            end,
            limit: 0,
        })
        .unwrap();
        let named = query_resources(&query).unwrap();
        let keys = encode(&Query::Keys {
            start,
            end,
            limit: 0,
        })
        .unwrap();
        assert_eq!(query_resources(&keys).unwrap(), named);
        named
    }

    #[test]
    fn every_command_names_its_key() {
        let commands = [
            Command::Put {
                key: b"app/x",
                value: b"1",
            },
            Command::Delete { key: b"app/x" },
            Command::Cas {
                key: b"app/x",
                expected: None,
                new: Some(b"2"),
            },
        ];
        for command in commands {
            let encoded = encode(&command).unwrap();
            assert_eq!(
                command_resources(&encoded).unwrap(),
                ["key/app/x"],
                "{command:?}"
            );
        }
        let binary = encode(&Command::Put {
            key: b"\x00\xffk ",
            value: b"",
        })
        .unwrap();
        assert_eq!(command_resources(&binary).unwrap(), ["key/%00%FFk%20"]);
        // A range delete names the prefix covering every key it can reach, as a range read does.
        let range = encode(&Command::DeleteRange {
            start: b"app/",
            end: Some(b"app0"),
            limit: 0,
        })
        .unwrap();
        assert_eq!(command_resources(&range).unwrap(), ["prefix/app/"]);
    }

    #[test]
    fn a_command_apply_would_refuse_fails_with_the_same_message() {
        let empty_key = encode(&Command::Delete { key: b"" }).unwrap();
        for malformed in [&b"\xff\xff"[..], b"", &empty_key] {
            let refused = apply(&mut BTreeMap::new(), malformed).unwrap_err();
            assert_eq!(command_resources(malformed), Err(refused));
        }
        let refused = crate::query(&BTreeMap::new(), b"\x07").unwrap_err();
        assert_eq!(query_resources(b"\x07"), Err(refused));
    }

    #[test]
    fn gets_and_prefix_reads_name_their_key_and_prefix() {
        let get = encode(&Query::Get { key: b"app/y" }).unwrap();
        assert_eq!(query_resources(&get).unwrap(), ["key/app/y"]);
        let prefix = encode(&Query::Prefix {
            prefix: b"app/",
            limit: 5,
        })
        .unwrap();
        assert_eq!(query_resources(&prefix).unwrap(), ["prefix/app/"]);
        let everything = encode(&Query::Prefix {
            prefix: b"",
            limit: 5,
        })
        .unwrap();
        assert_eq!(query_resources(&everything).unwrap(), ["prefix/"]);
    }

    #[test]
    fn a_range_names_the_longest_prefix_all_its_keys_share() {
        assert_eq!(scan(b"app/a", Some(b"app/z")), ["prefix/app/"]);
        assert_eq!(scan(b"app/", Some(b"app0")), ["prefix/app/"]);
        assert_eq!(scan(b"app/", Some(b"app1")), ["prefix/app"]);
        assert_eq!(scan(b"app/a", Some(b"app/b")), ["prefix/app/a"]);
        assert_eq!(scan(b"a", None), ["prefix/"]);
        assert_eq!(scan(b"", Some(b"b")), ["prefix/"]);
        assert_eq!(scan(b"a", Some(b"c")), ["prefix/"]);
        assert_eq!(scan(b"app/\xff", Some(b"app0")), ["prefix/app/%FF"]);
        assert_eq!(scan(b"\xff\xff", None), ["prefix/%FF%FF"]);
        assert_eq!(
            scan(b"\xc3\xa9/a", Some(b"\xc3\xa9/b")),
            ["prefix/%C3%A9/a"]
        );
        assert_eq!(scan(b"\xc3\xa9/", Some(b"\xc3\xa90")), ["prefix/%C3%A9/"]);
        // An empty range reads nothing: the whole start key is a fine name for it.
        assert_eq!(scan(b"app/x", Some(b"app/a")), ["prefix/app/x"]);
    }

    proptest! {
        /// The named prefix covers the range, and one byte more would not.
        #[test]
        fn the_covering_prefix_is_the_longest_that_covers(
            start in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xfe), Just(0xff), any::<u8>()], 0..6),
            end in proptest::option::of(proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xfe), Just(0xff), any::<u8>()], 0..6)),
        ) {
            let prefix = covering_prefix(&start, end.as_deref());
            prop_assert!(start.starts_with(prefix));
            let covered = |p: &[u8]| match (end.as_deref(), prefix_end(p)) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(end), Some(succ)) => end <= succ.as_slice(),
            };
            prop_assert!(covered(prefix));
            if prefix.len() < start.len() {
                prop_assert!(!covered(&start[..prefix.len() + 1]));
            }
            // Spot-check the meaning with keys just inside the range.
            let mut probes = vec![start.clone(), [start.as_slice(), &[0xff, 0xff]].concat()];
            if let Some(end) = &end {
                probes.retain(|key| key < end);
            }
            for key in probes.iter().filter(|key| **key >= start) {
                prop_assert!(key.starts_with(prefix), "{key:?} in range but not under {prefix:?}");
            }
        }
    }
}
