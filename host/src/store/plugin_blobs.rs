//! [`PluginBlobs`]: the `.wasm` bytes of every plugin the cluster may run — the active plugin of
//! each kind and the versions a rollback can return to — in the fjall keyspace `plugins.blobs`,
//! keyed by their sha256. A node restarting after deploys loads its plugins from here; the raft log
//! that carried them may long be purged.
//!
//! Which hashes are needed is the registry's business (`plugin/registry.rs`); this type only
//! stores, reads and deletes bytes, and refuses bytes that do not match their hash.

use bytes::Bytes;
use fjall::{Database, Keyspace, Readable};

use super::StoreError;
use crate::hash::sha256;

const KEYSPACE: &str = "plugins.blobs";

/// Plugin bytes by sha256. Clones share the keyspace.
#[derive(Clone)]
pub struct PluginBlobs {
    keyspace: Keyspace,
}

impl PluginBlobs {
    /// Opens (or creates) the keyspace in `db`.
    pub fn open(db: &Database) -> Result<Self, StoreError> {
        let keyspace = db
            .keyspace(KEYSPACE, crate::store::keyspace_options)
            .map_err(StoreError::fjall("open", "plugin blobs"))?;
        Ok(Self { keyspace })
    }

    /// Stores `wasm` under its hash (a no-op if it is already there). Written before the applied
    /// state that names it, in the same journal, so a crash can leave an unused blob but never a
    /// registry naming a missing one.
    pub fn put(&self, wasm: &[u8]) -> Result<[u8; 32], StoreError> {
        let hash = sha256(wasm);
        if !self.contains(&hash)? {
            self.keyspace
                .insert(hash, wasm)
                .map_err(StoreError::fjall("write", "plugin blob"))?;
        }
        Ok(hash)
    }

    /// Whether the bytes of `hash` are stored.
    pub fn contains(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.keyspace
            .contains_key(hash)
            .map_err(StoreError::fjall("read", "plugin blob"))
    }

    /// The bytes of `hash`, checked against it.
    pub fn get(&self, hash: &[u8; 32]) -> Result<Option<Bytes>, StoreError> {
        let Some(value) = self
            .keyspace
            .get(hash)
            .map_err(StoreError::fjall("read", "plugin blob"))?
        else {
            return Ok(None);
        };
        check(hash, &value)?;
        Ok(Some(Bytes::copy_from_slice(&value)))
    }

    /// The bytes of `hash` as of the fjall `snapshot` (a snapshot build reads the registry and the
    /// bytes it references at the same instant), checked against it.
    pub(crate) fn get_in(
        &self,
        snapshot: &fjall::Snapshot,
        hash: &[u8; 32],
    ) -> Result<Option<Bytes>, StoreError> {
        let Some(value) = snapshot
            .get(&self.keyspace, hash)
            .map_err(StoreError::fjall("read", "plugin blob"))?
        else {
            return Ok(None);
        };
        check(hash, &value)?;
        Ok(Some(Bytes::copy_from_slice(&value)))
    }

    /// Deletes the bytes of `hash` (no longer referenced by the registry).
    pub fn remove(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.keyspace
            .remove(hash)
            .map_err(StoreError::fjall("delete", "plugin blob"))
    }
}

fn check(hash: &[u8; 32], value: &[u8]) -> Result<(), StoreError> {
    if sha256(value) != *hash {
        return Err(StoreError::Corrupt {
            subject: "plugin blob",
            reason: format!(
                "the bytes stored under {} hash differently",
                hex::encode(hash)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_reads_and_removes_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let blobs = PluginBlobs::open(&db).unwrap();
        let hash = blobs.put(b"\0asm plugin bytes").unwrap();
        assert_eq!(hash, sha256(b"\0asm plugin bytes"));
        assert_eq!(blobs.put(b"\0asm plugin bytes").unwrap(), hash);
        assert_eq!(
            blobs.get(&hash).unwrap().as_deref(),
            Some(&b"\0asm plugin bytes"[..])
        );
        assert!(blobs.contains(&hash).unwrap());
        blobs.remove(&hash).unwrap();
        assert_eq!(blobs.get(&hash).unwrap(), None);
    }

    #[test]
    fn bytes_that_do_not_match_their_hash_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let blobs = PluginBlobs::open(&db).unwrap();
        blobs.keyspace.insert([7u8; 32], b"other").unwrap();
        assert!(matches!(
            blobs.get(&[7; 32]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
