//! The backup world's host: [`CompiledBackup`], a validated backup handler, and [`BackupSession`],
//! one instance of it working in one backup directory ([`BlobDir`], the `blob-store` it imports).
//!
//! Every call gets [`BACKUP_FUEL`] and the instance at most [`BACKUP_MEMORY`]; a handler that
//! traps or runs out ends its session with [`BackupError::Fault`], and one that returns an error
//! with [`BackupError::Refused`]. Either way the caller changes nothing: a backup is only ever
//! listed once the handler sealed it, and a restore only reads.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::backup::exports::iroh_raft::plugin::archive;
use super::bindings::backup::iroh_raft::plugin::{blob_store, log};
use super::bindings::backup::{Backup, BackupPre};
use super::blob_dir::BlobDir;
use super::engine::PluginEngine;
use super::log_host::emit;
use super::memory::MemoryCap;
use super::policy::first_line;
use super::trap::{EntryError, classify};
use crate::proto::BackupInfo;

/// Fuel for one call of the handler (about as many wasm instructions): plenty to compress a
/// chunk, and a bound on a handler that loops.
pub(crate) const BACKUP_FUEL: u64 = 2_000_000_000;
/// Fuel for instantiating the handler.
const INSTANTIATE_FUEL: u64 = 100_000_000;
/// The handler's linear memory cap.
pub(crate) const BACKUP_MEMORY: usize = 256 << 20;

/// What a backup handler's store carries.
pub(crate) struct BackupState {
    plugin: Arc<str>,
    blobs: BlobDir,
    memory: MemoryCap,
}

impl blob_store::Host for BackupState {
    fn append(&mut self, name: String, data: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(self.blobs.append(&name, &data))
    }

    fn read(
        &mut self,
        name: String,
        offset: u64,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.blobs.read(&name, offset, max))
    }

    fn list(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, String>> {
        Ok(self.blobs.list(&prefix))
    }

    fn remove(&mut self, name: String) -> wasmtime::Result<Result<(), String>> {
        Ok(self.blobs.remove(&name))
    }
}

impl log::Host for BackupState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        emit(&self.plugin, level, &message);
        Ok(())
    }
}

/// Adds the backup world's imports to `linker`.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<BackupState>,
) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    blob_store::add_to_linker::<BackupState, HasSelf<BackupState>>(linker, |state| state)?;
    log::add_to_linker::<BackupState, HasSelf<BackupState>>(linker, |state| state)
}

/// Why a backup handler call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    /// The handler returned an error.
    #[error("the backup handler {handler} refused: {reason}")]
    Refused {
        /// The handler's name.
        handler: String,
        /// What it said.
        reason: String,
    },
    /// The handler trapped, ran out of fuel or memory, or would not instantiate.
    #[error("the backup handler {handler} failed: {fault}")]
    Fault {
        /// The handler's name.
        handler: String,
        /// What happened.
        fault: String,
    },
    /// The handler described a backup the host cannot read.
    #[error("the backup handler {handler} described a backup the host cannot read: {reason}")]
    Unreadable {
        /// The handler's name.
        handler: String,
        /// What was wrong.
        reason: String,
    },
}

/// A validated, compiled backup handler. Cheap to clone.
#[derive(Clone)]
pub struct CompiledBackup {
    name: Arc<str>,
    sha256: [u8; 32],
    pre: BackupPre<BackupState>,
    engine: PluginEngine,
}

impl CompiledBackup {
    pub(crate) fn new(
        name: &str,
        sha256: [u8; 32],
        pre: BackupPre<BackupState>,
        engine: PluginEngine,
    ) -> Self {
        Self {
            name: name.into(),
            sha256,
            pre,
            engine,
        }
    }

    /// sha256 of the handler's `.wasm`.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// A fresh instance working in `dir`.
    pub fn session(&self, dir: &std::path::Path) -> Result<BackupSession, BackupError> {
        let mut store = Store::new(
            self.engine.wasmtime(),
            BackupState {
                plugin: self.name.clone(),
                blobs: BlobDir::new(dir),
                memory: MemoryCap::new(BACKUP_MEMORY),
            },
        );
        store.limiter(|state| &mut state.memory);
        let fault = |error: wasmtime::Error| BackupError::Fault {
            handler: self.name.to_string(),
            fault: format!("it cannot be instantiated ({})", first_line(&error)),
        };
        store.set_fuel(INSTANTIATE_FUEL).map_err(fault)?;
        let bindings = self.pre.instantiate(&mut store).map_err(fault)?;
        Ok(BackupSession {
            name: self.name.clone(),
            store,
            bindings,
        })
    }
}

/// One instance of a backup handler. After a fault every further call fails.
pub struct BackupSession {
    name: Arc<str>,
    store: Store<BackupState>,
    bindings: Backup,
}

impl BackupSession {
    /// Runs one export with a call's fuel, mapping what can go wrong.
    fn call<T>(
        &mut self,
        call: impl FnOnce(
            &archive::Guest,
            &mut Store<BackupState>,
        ) -> wasmtime::Result<Result<T, String>>,
    ) -> Result<T, BackupError> {
        let handler = self.name.to_string();
        self.store
            .set_fuel(BACKUP_FUEL)
            .map_err(|error| BackupError::Fault {
                handler: handler.clone(),
                fault: error.to_string(),
            })?;
        match call(self.bindings.iroh_raft_plugin_archive(), &mut self.store) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(reason)) => Err(BackupError::Refused { handler, reason }),
            Err(error) => {
                let fault = match classify(&error, BACKUP_FUEL) {
                    EntryError::OutOfFuel { budget } => {
                        format!("it ran out of fuel: one call may take {budget} units")
                    }
                    other => other.to_string(),
                };
                Err(BackupError::Fault { handler, fault })
            }
        }
    }

    /// Starts storing backup `info.id`.
    pub fn create_begin(&mut self, info: &BackupInfo) -> Result<(), BackupError> {
        let wit = archive::BackupInfo {
            id: info.id.clone(),
            index: info.index,
            size: info.size,
            sha256: hex::encode(info.sha256),
            metadata: info.to_metadata(),
        };
        self.call(|archive, store| archive.call_create_begin(store, &wit))
    }

    /// Stores the next chunk of backup `id`.
    pub fn create_chunk(&mut self, id: &str, chunk: &[u8]) -> Result<(), BackupError> {
        self.call(|archive, store| archive.call_create_chunk(store, id, chunk))
    }

    /// Seals backup `id`.
    pub fn create_finish(&mut self, id: &str) -> Result<(), BackupError> {
        self.call(|archive, store| archive.call_create_finish(store, id))
    }

    /// Every sealed backup the handler lists, oldest index first.
    pub fn list(&mut self) -> Result<Vec<BackupInfo>, BackupError> {
        let all = self.call(|archive, store| archive.call_list(store))?;
        let mut infos = all
            .into_iter()
            .map(|wit| self.lift(wit))
            .collect::<Result<Vec<_>, _>>()?;
        infos.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
        Ok(infos)
    }

    /// One sealed backup.
    pub fn info(&mut self, id: &str) -> Result<BackupInfo, BackupError> {
        let wit = self.call(|archive, store| archive.call_info(store, id))?;
        let info = self.lift(wit)?;
        if info.id != id {
            return Err(BackupError::Unreadable {
                handler: self.name.to_string(),
                reason: format!("asked for backup {id}, it described {}", info.id),
            });
        }
        Ok(info)
    }

    /// Up to `max` bytes of backup `id` from `offset`.
    pub fn read_chunk(&mut self, id: &str, offset: u64, max: u32) -> Result<Vec<u8>, BackupError> {
        let chunk = self.call(|archive, store| archive.call_read_chunk(store, id, offset, max))?;
        if chunk.len() > max as usize {
            return Err(BackupError::Unreadable {
                handler: self.name.to_string(),
                reason: format!("asked for {max} bytes, it returned {}", chunk.len()),
            });
        }
        Ok(chunk)
    }

    /// Deletes backup `id`.
    pub fn remove(&mut self, id: &str) -> Result<(), BackupError> {
        self.call(|archive, store| archive.call_remove(store, id))
    }

    fn lift(&self, wit: archive::BackupInfo) -> Result<BackupInfo, BackupError> {
        BackupInfo::from_parts(wit.id, wit.index, wit.size, &wit.sha256, wit.metadata).map_err(
            |reason| BackupError::Unreadable {
                handler: self.name.to_string(),
                reason,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, pairs: usize, value_len: usize) -> BackupInfo {
        BackupInfo {
            id: id.into(),
            index: 7,
            size: 3,
            sha256: crate::hash::sha256(b"abc"),
            state_hash: Some([1; 32]),
            created_unix_ms: Some(1),
            handler: Some([2; 32]),
            node_id: Some(1),
            cluster_id: Some([3; 16]),
            pairs: Some(0),
            scheduled: false,
            metadata: (0..pairs)
                .map(|n| (format!("key-{n:02}"), "v".repeat(value_len)))
                .collect(),
        }
    }

    /// Bugs found in review: a handler's `info` result was lowered over memory the call had
    /// used (garbled metadata), and the SDK's heap copied a moving buffer past the memory's end
    /// before growing it, so a call that handled a 50 KB manifest trapped "out of bounds".
    #[test]
    fn bug_much_metadata_survived_neither_info_nor_list() {
        let engine = PluginEngine::new(None).unwrap();
        for (name, wasm) in [
            ("fs-backup", crate::bundled::FS_BACKUP),
            ("lz4-backup", crate::bundled::LZ4_BACKUP),
        ] {
            let handler = engine.load_backup(name, wasm).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut stored = Vec::new();
            for (n, (pairs, len)) in [(0, 0), (8, 100), (64, 1000)].into_iter().enumerate() {
                let info = info(&format!("b{n}"), pairs, len);
                let mut session = handler.session(dir.path()).unwrap();
                session.create_begin(&info).unwrap();
                session.create_chunk(&info.id, b"abc").unwrap();
                session.create_finish(&info.id).unwrap();
                assert_eq!(session.info(&info.id).unwrap(), info, "{name} info {n}");
                stored.push(info);
                let listed = handler.session(dir.path()).unwrap().list().unwrap();
                assert_eq!(listed, stored, "{name} list after {n}");
                let chunk = handler
                    .session(dir.path())
                    .unwrap()
                    .read_chunk(&stored[n].id, 1, 10)
                    .unwrap_or_else(|e| panic!("{name} read {n}: {e}"));
                assert_eq!(chunk, b"bc", "{name}");
            }
        }
    }
}
