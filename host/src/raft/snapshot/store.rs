//! [`SnapshotStore`]: the snapshot directory. The latest snapshot is `current.snap`; a new one is
//! written to a `*.tmp` file, fsynced, and renamed over it (then the directory is fsynced), so a
//! crash leaves either the old or the new snapshot, never a torn one. Readers hold open file
//! handles, which keep reading the old file after a rename replaced it. Leftover `*.tmp` files are
//! removed at open.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::raft::RaftStorageError;
use crate::raft::snapshot::format::{SnapshotHeader, SnapshotReader};

/// The current snapshot's file name in the snapshot directory.
pub(crate) const CURRENT: &str = "current.snap";
const TEMP_EXTENSION: &str = "tmp";

/// The snapshot directory of one node.
pub(crate) struct SnapshotStore {
    dir: PathBuf,
    /// The header of `current.snap`; the lock also orders renames over it.
    current: Mutex<Option<SnapshotHeader>>,
    next_temp: AtomicU64,
}

impl SnapshotStore {
    /// Opens (or creates) the directory, removes leftovers, and reads the current snapshot's
    /// header.
    pub(crate) fn open(dir: &Path) -> Result<Self, RaftStorageError> {
        std::fs::create_dir_all(dir).map_err(RaftStorageError::io("create", dir))?;
        for entry in std::fs::read_dir(dir).map_err(RaftStorageError::io("list", dir))? {
            let path = entry.map_err(RaftStorageError::io("list", dir))?.path();
            if path.extension().is_some_and(|ext| ext == TEMP_EXTENSION) {
                tracing::info!(path = %path.display(), "removing an unfinished snapshot file");
                std::fs::remove_file(&path).map_err(RaftStorageError::io("remove", &path))?;
            }
        }
        let path = dir.join(CURRENT);
        let current = match File::open(&path) {
            Ok(file) => {
                let (_, header) = SnapshotReader::open(BufReader::new(file)).map_err(|source| {
                    RaftStorageError::SnapshotFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                Some(header)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(RaftStorageError::io("open", &path)(e)),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            current: Mutex::new(current),
            next_temp: AtomicU64::new(0),
        })
    }

    /// The header of the current snapshot.
    pub(crate) fn current_header(&self) -> Option<SnapshotHeader> {
        self.lock().clone()
    }

    /// The current snapshot's header and a handle reading it from the start.
    pub(crate) fn open_current(&self) -> Result<Option<(SnapshotHeader, File)>, RaftStorageError> {
        let current = self.lock();
        let Some(header) = current.as_ref() else {
            return Ok(None);
        };
        // Opened under the lock: no rename can slip between the header and the file.
        let path = self.dir.join(CURRENT);
        let file = File::open(&path).map_err(RaftStorageError::io("open", &path))?;
        Ok(Some((header.clone(), file)))
    }

    /// A new temporary file in the directory, removed when dropped unless published.
    pub(crate) fn create_temp(&self, purpose: &str) -> Result<TempSnapshot, RaftStorageError> {
        let number = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join(format!("{purpose}-{number}.{TEMP_EXTENSION}"));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(RaftStorageError::io("create", &path))?;
        Ok(TempSnapshot {
            path,
            file,
            published: false,
        })
    }

    /// Makes `temp` (complete and fsynced, holding a snapshot with `header`) the current snapshot,
    /// unless the current one is newer; returns whether it did.
    pub(crate) fn publish(
        &self,
        mut temp: TempSnapshot,
        header: &SnapshotHeader,
    ) -> Result<bool, RaftStorageError> {
        let mut current = self.lock();
        if current
            .as_ref()
            .is_some_and(|current| current.last_log_id > header.last_log_id)
        {
            return Ok(false);
        }
        let path = self.dir.join(CURRENT);
        std::fs::rename(&temp.path, &path).map_err(RaftStorageError::io("rename", &temp.path))?;
        temp.published = true;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(RaftStorageError::io("sync", &self.dir))?;
        *current = Some(header.clone());
        Ok(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SnapshotHeader>> {
        // The guarded value is replaced whole, so a panic elsewhere cannot leave it torn.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A snapshot being written. Removed on drop unless it was published.
pub(crate) struct TempSnapshot {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    published: bool,
}

impl Drop for TempSnapshot {
    fn drop(&mut self) {
        if !self.published
            && let Err(error) = std::fs::remove_file(&self.path)
        {
            // Not fatal: leftovers are removed at the next open.
            tracing::warn!(path = %self.path.display(), "cannot remove a snapshot temp file: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use openraft::StoredMembership;
    use openraft::type_config::alias::LogIdOf;
    use openraft::vote::RaftLeaderIdExt;

    use super::*;
    use crate::proto::TypeConfig;
    use crate::raft::snapshot::format::SnapshotWriter;

    type LeaderId = openraft::type_config::alias::LeaderIdOf<TypeConfig>;

    fn header(index: u64) -> SnapshotHeader {
        SnapshotHeader {
            last_log_id: Some(LogIdOf::<TypeConfig>::new(
                LeaderId::new_committed(1, 1),
                index,
            )),
            last_membership: StoredMembership::default(),
            plugin: "kv".into(),
            plugin_sha256: [0; 32],
            config: Default::default(),
            plugins: Default::default(),
            sessions: Default::default(),
        }
    }

    fn written(store: &SnapshotStore, index: u64) -> TempSnapshot {
        let mut temp = store.create_temp("test").unwrap();
        let writer = SnapshotWriter::new(Vec::new(), &header(index), &[]).unwrap();
        let (bytes, _) = writer.finish().unwrap();
        temp.file.write_all(&bytes).unwrap();
        temp.file.sync_all().unwrap();
        temp
    }

    fn temp_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == TEMP_EXTENSION)
            })
            .count()
    }

    #[test]
    fn a_newer_snapshot_replaces_the_current_one_and_an_older_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        assert!(store.open_current().unwrap().is_none());

        assert!(store.publish(written(&store, 5), &header(5)).unwrap());
        assert_eq!(store.current_header(), Some(header(5)));
        // A build that started earlier but finished later must not roll the snapshot back.
        assert!(!store.publish(written(&store, 3), &header(3)).unwrap());
        assert_eq!(store.current_header(), Some(header(5)));
        assert!(store.publish(written(&store, 5), &header(5)).unwrap());
        assert!(store.publish(written(&store, 9), &header(9)).unwrap());
        assert_eq!(temp_files(dir.path()), 0);

        let (current, _file) = store.open_current().unwrap().unwrap();
        assert_eq!(current, header(9));
        drop(store);
        let reopened = SnapshotStore::open(dir.path()).unwrap();
        assert_eq!(reopened.current_header(), Some(header(9)));
    }

    #[test]
    fn an_abandoned_temp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let temp = written(&store, 1);
        assert_eq!(temp_files(dir.path()), 1);
        drop(temp);
        assert_eq!(temp_files(dir.path()), 0);
        // One left by a crash goes at the next open.
        let path = dir.path().join("build-7.tmp");
        std::fs::write(&path, b"partial").unwrap();
        SnapshotStore::open(dir.path()).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_handle_keeps_reading_the_snapshot_it_opened() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        store.publish(written(&store, 1), &header(1)).unwrap();
        let (_, file) = store.open_current().unwrap().unwrap();
        store.publish(written(&store, 2), &header(2)).unwrap();
        let (_, old) = SnapshotReader::open(BufReader::new(file)).unwrap();
        assert_eq!(old, header(1));
    }
}
