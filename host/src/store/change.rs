//! What one log entry changed in the keyspace, as the host saw it through the `kv` interface: the
//! record `watch` serves (`crate::watch`), kept on disk back to a horizon (`change_history.rs`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// One key's change: its new value, or `None` when the entry deleted it.
///
/// The bytes are shared with the apply transaction's write set and with every watcher's queue:
/// recording a change and serving it copies nothing. (Postcard stores them as it stores a
/// `Vec<u8>`, so the records on disk are the same.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The key.
    pub key: Bytes,
    /// The value it was put to; `None` for a delete of a key that existed.
    pub value: Option<Bytes>,
}

impl Change {
    /// The bytes it holds, for bounding queues.
    pub fn size(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Bytes::len)
    }
}

/// The changes one entry made, in key order (an entry that changed nothing has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryChanges {
    /// The log index of the entry.
    pub index: u64,
    /// Its changes, one per key.
    pub changes: Vec<Change>,
}

/// The key of entry `index`'s record in a changes keyspace: `c` and the index, big-endian, so
/// records sort by index.
pub(crate) fn record_key(index: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = b'c';
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The index a record key names.
pub(crate) fn record_index(key: &[u8]) -> Result<u64, StoreError> {
    match key {
        [b'c', index @ ..] if index.len() == 8 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(index);
            Ok(u64::from_be_bytes(bytes))
        }
        _ => Err(StoreError::Corrupt {
            subject: "change record key",
            reason: format!("{} bytes that are not `c` and an index", key.len()),
        }),
    }
}

/// A record's stored form: its changes.
pub(crate) fn encode_changes(changes: &[Change]) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(changes).map_err(|e| StoreError::Corrupt {
        subject: "change record",
        reason: e.to_string(),
    })
}

/// The changes a stored record holds.
pub(crate) fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        subject: "change record",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn record_keys_sort_by_index_and_decode_back(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(record_key(a).cmp(&record_key(b)), a.cmp(&b));
            prop_assert_eq!(record_index(&record_key(a)).unwrap(), a);
        }

        #[test]
        fn records_round_trip(
            changes in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 1..8),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8))),
                0..8,
            )
        ) {
            // The form records had when `Change` held `Vec<u8>`s: a record written then decodes
            // now, and one written now is byte for byte the same.
            #[derive(Serialize)]
            struct Before {
                key: Vec<u8>,
                value: Option<Vec<u8>>,
            }
            let before: Vec<Before> = changes
                .iter()
                .map(|(key, value)| Before { key: key.clone(), value: value.clone() })
                .collect();
            let changes: Vec<Change> = changes
                .into_iter()
                .map(|(key, value)| Change { key: key.into(), value: value.map(Bytes::from) })
                .collect();
            let encoded = encode_changes(&changes).unwrap();
            prop_assert_eq!(&encoded, &postcard::to_allocvec(&before).unwrap());
            prop_assert_eq!(decode_changes(&encoded).unwrap(), changes);
        }
    }

    #[test]
    fn a_damaged_record_is_corrupt_not_a_panic() {
        assert!(record_index(b"c123").is_err());
        assert!(record_index(b"h").is_err());
        assert!(decode_changes(&[0xff, 0xff, 0xff]).is_err());
    }
}
