//! [`state_hash`]: the hash of a replica's whole replicated state at one applied index — the
//! applied state (log id, membership, configuration, plugin registry, client sessions) and every
//! key and value of the state machine's keyspace — read from one fjall snapshot taken right after
//! the commit that made that index the applied one.
//!
//! What goes in, in order (every length a u64 big-endian):
//!
//! ```text
//! "iroh-raft state hash v1\0"
//! index                                 the applied index (u64 BE)
//! len, AppliedState                     re-encoded by this build (format byte + postcard)
//! (len, key, len, value)*               every pair of the live data generation, ascending
//! count                                 the number of pairs (u64 BE)
//! ```
//!
//! Node-local things stay out: the data generation's number, snapshot files, compiled-plugin
//! caches, the raft log and vote. Plugin bytes are named by their sha256 in the registry.

use sha2::{Digest, Sha256};

use crate::raft::RaftStorageError;
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::codec;
use crate::store::StateExport;

const DOMAIN: &[u8] = b"iroh-raft state hash v1\0";

/// The state hash of `view`, which must be the state right after applying `index`.
pub(crate) fn state_hash(view: &StateExport, index: u64) -> Result<[u8; 32], RaftStorageError> {
    let applied = match view.applied() {
        Some(mark) => AppliedState::from_mark(mark)?,
        None => AppliedState::default(),
    };
    let at = applied.last_applied.as_ref().map_or(0, |id| id.index);
    if at != index {
        return Err(RaftStorageError::Task(format!(
            "the view captured for index {index} holds the state at {at}"
        )));
    }
    hash_state(
        &applied,
        view.pairs()
            .map(|pair| pair.map_err(RaftStorageError::from)),
    )
}

/// The state hash of `applied` (whose last applied index is the one hashed) with `pairs`, which
/// must come in ascending key order: what [`state_hash`] computes from a view.
pub(crate) fn hash_state<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    applied: &AppliedState,
    pairs: impl Iterator<Item = Result<(K, V), RaftStorageError>>,
) -> Result<[u8; 32], RaftStorageError> {
    let mut hasher = StateHasher::new(applied)?;
    for pair in pairs {
        let (key, value) = pair?;
        hasher.pair(key.as_ref(), value.as_ref());
    }
    Ok(hasher.finish())
}

/// A state hash computed as the pairs go by (a restore hashes the image it loads in the same
/// pass).
pub(crate) struct StateHasher {
    hasher: Sha256,
    count: u64,
}

impl StateHasher {
    /// Starts the hash of `applied` (whose last applied index is the one hashed).
    pub(crate) fn new(applied: &AppliedState) -> Result<Self, RaftStorageError> {
        let index = applied.last_applied.as_ref().map_or(0, |id| id.index);
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN);
        hasher.update(index.to_be_bytes());
        // Re-encoded, so two builds that store the same state alike hash it alike.
        let encoded = codec::encode("applied state", applied)?;
        hasher.update((encoded.len() as u64).to_be_bytes());
        hasher.update(&encoded);
        Ok(Self { hasher, count: 0 })
    }

    /// The next pair, in ascending key order.
    pub(crate) fn pair(&mut self, key: &[u8], value: &[u8]) {
        for part in [key, value] {
            self.hasher.update((part.len() as u64).to_be_bytes());
            self.hasher.update(part);
        }
        self.count += 1;
    }

    /// The hash.
    pub(crate) fn finish(mut self) -> [u8; 32] {
        self.hasher.update(self.count.to_be_bytes());
        self.hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::TypeConfig;
    use crate::store::{FjallStateStore, StateStore, WriteSet};
    use openraft::type_config::alias::LogIdOf;
    use openraft::vote::RaftLeaderIdExt;

    type LeaderId = openraft::type_config::alias::LeaderIdOf<TypeConfig>;

    fn applied(index: u64, version: u64) -> AppliedState {
        let mut state = AppliedState::empty([3; 32]);
        state.last_applied = Some(LogIdOf::<TypeConfig>::new(
            LeaderId::new_committed(1, 1),
            index,
        ));
        state.config.version = version;
        state
    }

    fn store(dir: &std::path::Path) -> FjallStateStore {
        let db = fjall::Database::builder(dir).open().expect("db");
        FjallStateStore::open(&db, "kv", None).expect("store")
    }

    fn commit(store: &FjallStateStore, pairs: &[(&str, Option<&str>)], state: &AppliedState) {
        let mut writes = WriteSet::default();
        for (key, value) in pairs {
            match value {
                Some(value) => writes.put(key.as_bytes().to_vec(), value.as_bytes().to_vec()),
                None => writes.delete(key.as_bytes().to_vec()),
            }
        }
        store
            .commit(writes, Vec::new(), &state.to_mark().expect("mark"))
            .expect("commit");
    }

    #[test]
    fn equal_states_hash_alike_and_any_difference_shows() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (store(a.path()), store(b.path()));
        // Same end state reached by different writes.
        commit(
            &a,
            &[("k1", Some("v1")), ("k2", Some("v2"))],
            &applied(2, 0),
        );
        commit(
            &b,
            &[("k1", Some("x")), ("k3", Some("gone"))],
            &applied(1, 0),
        );
        commit(
            &b,
            &[("k1", Some("v1")), ("k2", Some("v2")), ("k3", None)],
            &applied(2, 0),
        );
        let hash_a = state_hash(&a.export().unwrap(), 2).unwrap();
        assert_eq!(hash_a, state_hash(&b.export().unwrap(), 2).unwrap());

        // One value changed.
        commit(&b, &[("k2", Some("v3"))], &applied(2, 0));
        assert_ne!(hash_a, state_hash(&b.export().unwrap(), 2).unwrap());

        // Same data, another applied state (configuration version).
        commit(&b, &[("k2", Some("v2"))], &applied(2, 1));
        assert_ne!(hash_a, state_hash(&b.export().unwrap(), 2).unwrap());

        // A key/value boundary moved: the lengths tell them apart.
        let c = tempfile::tempdir().unwrap();
        let c = store(c.path());
        commit(
            &c,
            &[("k1v", Some("1")), ("k2", Some("v2"))],
            &applied(2, 0),
        );
        assert_ne!(hash_a, state_hash(&c.export().unwrap(), 2).unwrap());
    }

    #[test]
    fn a_view_of_another_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(dir.path());
        commit(&a, &[("k", Some("v"))], &applied(4, 0));
        let view = a.export().unwrap();
        assert!(state_hash(&view, 5).is_err());
        // Later commits do not change a view taken earlier.
        let before = state_hash(&view, 4).unwrap();
        commit(&a, &[("k", Some("w"))], &applied(5, 0));
        assert_eq!(state_hash(&view, 4).unwrap(), before);
    }
}
