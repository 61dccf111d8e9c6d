//! [`RaftStorage`]: opens a node's raft storage — the fjall database with the log and the state
//! machine, and the snapshot directory — from one data directory.
//!
//! ```text
//! <dir>/fjall/                 the database: raft.log, raft.meta, sm.<plugin>.data[.<n>], sm.<plugin>.meta
//! <dir>/snapshots/current.snap the latest snapshot (see ARCHITECTURE.md for the format)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjall::Database;

use super::{FjallLogStore, RaftStorageError, StateMachineStore};
use crate::plugin::CompiledStateMachine;
use crate::proto::PluginLimits;
use crate::store::StateStore;

/// A node's raft storage, ready to hand to `openraft::Raft::new`.
pub struct RaftStorage {
    log_store: FjallLogStore,
    state_machine: StateMachineStore,
}

/// The file in the storage directory naming the process that has the database open.
const OWNER_FILE: &str = "owner.pid";

/// The pid in `owner`, if that process still runs.
fn running_owner(owner: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(owner).ok()?.trim().parse().ok()?;
    Path::new("/proc")
        .join(pid.to_string())
        .exists()
        .then_some(pid)
}

impl RaftStorage {
    /// Opens (or creates) the storage under `dir`, running `plugin` with `limits`, at the state it
    /// had when last closed. openraft then re-applies committed entries the state machine had not
    /// made durable, or restores the latest snapshot.
    pub fn open(
        dir: &Path,
        plugin: CompiledStateMachine,
        limits: PluginLimits,
    ) -> Result<Self, RaftStorageError> {
        let db_dir = Self::database_dir(dir);
        std::fs::create_dir_all(&db_dir).map_err(RaftStorageError::io("create", &db_dir))?;
        let owner = dir.join(OWNER_FILE);
        let db = match crate::store::database_options(Database::builder(&db_dir)).open() {
            Ok(db) => db,
            Err(fjall::Error::Locked) => {
                return Err(RaftStorageError::Locked {
                    dir: dir.parent().unwrap_or(dir).to_path_buf(),
                    pid: running_owner(&owner),
                });
            }
            Err(error) => return Err(RaftStorageError::fjall("open", "database")(error)),
        };
        // Who holds the database now, for the next process that finds it locked. Best effort: the
        // lock itself is fjall's.
        if let Err(error) = std::fs::write(&owner, std::process::id().to_string()) {
            tracing::debug!("cannot record the owner in {}: {error}", owner.display());
        }
        let log_store = FjallLogStore::open(&db)?;
        let state_machine = StateMachineStore::open(&db, &Self::snapshot_dir(dir), plugin, limits)?;
        Ok(Self {
            log_store,
            state_machine,
        })
    }

    /// Where the fjall database of the storage under `dir` lives.
    pub fn database_dir(dir: &Path) -> PathBuf {
        dir.join("fjall")
    }

    /// Where the snapshots of the storage under `dir` live.
    pub fn snapshot_dir(dir: &Path) -> PathBuf {
        dir.join("snapshots")
    }

    /// The current snapshot's file of the storage under `dir` (absent before the first one).
    pub fn current_snapshot_file(dir: &Path) -> PathBuf {
        Self::snapshot_dir(dir).join(crate::raft::snapshot::store::CURRENT)
    }

    /// The raft log (a handle sharing the store).
    pub fn log_store(&self) -> FjallLogStore {
        self.log_store.clone()
    }

    /// The state machine (a handle sharing the store).
    pub fn state_machine(&self) -> StateMachineStore {
        self.state_machine.clone()
    }

    /// The state machine's keyspace, for queries and content hashes.
    pub fn state(&self) -> Arc<dyn StateStore> {
        Arc::new(self.state_machine.state().clone())
    }

    /// The two halves, in the order `openraft::Raft::new` takes them.
    pub fn into_parts(self) -> (FjallLogStore, StateMachineStore) {
        (self.log_store, self.state_machine)
    }
}
