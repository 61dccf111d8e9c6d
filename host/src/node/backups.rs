//! The node's side of backups: `CreateBackup`, `ListBackups`, `ReadBackup` (served by the node
//! asked, in its own `--backup-dir`) and `RestoreBackup` (served by the leader). The handlers are
//! wasm components (`plugin/backup.rs`); this file sequences them. The decisions a replica makes
//! about a restore are the log's (`raft/apply/restore.rs`); the leader checks the same things
//! first, so a damaged backup is refused without a log entry.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use openraft::ReadPolicy;

use super::forward::not_leader;
use super::service::{NodeService, raft_failure};
use crate::hash::sha256_hex;
use crate::plugin::{BackupError, BackupSession, BlobDir, CompiledBackup};
use crate::proto::{
    ApplyResponse, BackupInfo, ClusterEvent, LogPayload, PluginKind, Reply, RequestError,
    RestoreEntry, check_backup_id, check_metadata,
};
use crate::raft::RaftStorageError;
use crate::raft::apply::restore::precheck_image;

/// Bytes handed to or read from a handler per call.
pub(crate) const BACKUP_CHUNK: usize = 1 << 20;
/// How long a backup waits for the applied index to move towards a check point before it takes
/// the latest state instead.
const SETTLE: Duration = Duration::from_millis(300);
/// The longest a backup waits for a check point.
const CHECK_POINT_WAIT: Duration = Duration::from_secs(3);
/// Room a restore entry needs in a raft frame besides its image.
const RESTORE_HEADROOM: u64 = 1 << 20;

fn failed(what: impl Into<String>) -> impl Fn(String) -> RequestError {
    let what = what.into();
    move |reason| RequestError::Backup {
        what: what.clone(),
        reason,
    }
}

fn handler_failed(what: &str) -> impl Fn(BackupError) -> RequestError {
    let failed = failed(what);
    move |error| failed(error.to_string())
}

fn storage(what: &str) -> impl Fn(RaftStorageError) -> RequestError {
    let what = what.to_string();
    move |error| RequestError::Storage {
        what: what.clone(),
        reason: error.to_string(),
    }
}

/// Runs `work` on a blocking thread: handler calls are synchronous wasm.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RequestError> + Send + 'static,
) -> Result<T, RequestError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RequestError::TaskFailed {
            task: "backup".into(),
            reason: e.to_string(),
        })?
}

/// A backup and the handler that knows it.
struct Found {
    handler: CompiledBackup,
    session: BackupSession,
    info: BackupInfo,
}

/// Finds backup `id` among `handlers` (the active one first).
fn find(
    handlers: &[CompiledBackup],
    dir: &std::path::Path,
    id: &str,
    what: &str,
) -> Result<Found, RequestError> {
    let mut refusals = Vec::new();
    for handler in handlers {
        let mut session = handler.session(dir).map_err(handler_failed("read"))?;
        match session.info(id) {
            Ok(info) => {
                return Ok(Found {
                    handler: handler.clone(),
                    session,
                    info,
                });
            }
            Err(error) => refusals.push(error.to_string()),
        }
    }
    Err(RequestError::Backup {
        what: format!("{what} {id}"),
        reason: format!(
            "no backup handler of this cluster knows backup {id} in {} ({}); \
             `iroh-raft backup list` shows the backups; if the handler that wrote it was \
             replaced by several deploys since, deploy it again",
            dir.display(),
            refusals.join("; ")
        ),
    })
}

impl NodeService {
    fn backup_dir(&self, what: &str) -> Result<PathBuf, RequestError> {
        self.backup_dir.clone().ok_or_else(|| RequestError::Backup {
            what: what.into(),
            reason: format!(
                "node {} has no backup directory: start it with --backup-dir DIR",
                self.node_id
            ),
        })
    }

    /// The backup handlers this node holds, compiled: the active one first, then the earlier
    /// ones (their backups stay readable). [`RequestError::NoBackupHandler`] if none was deployed.
    async fn backup_handlers(&self) -> Result<Vec<CompiledBackup>, RequestError> {
        let state_machine = self.state_machine.clone();
        let handlers = blocking(move || {
            let held = state_machine
                .plugins_of(PluginKind::Backup)
                .map_err(storage("its backup handlers"))?;
            let engine = state_machine
                .plugin()
                .map_err(storage("its plugins"))?
                .engine()
                .clone();
            let mut seen = std::collections::BTreeSet::new();
            held.into_iter()
                // A handler deployed again with another configuration is one handler.
                .filter(|(record, _)| seen.insert(record.sha256))
                .map(|(record, wasm)| {
                    let name = format!("backup {}", &sha256_hex(&record.sha256)[..12]);
                    engine
                        .load_backup(&name, &wasm)
                        .map_err(|e| RequestError::Backup {
                            what: "load".into(),
                            reason: format!("backup handler {name} cannot be loaded here ({e})"),
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        if handlers.is_empty() {
            return Err(RequestError::NoBackupHandler);
        }
        Ok(handlers)
    }

    /// Serves `CreateBackup`: an image of this node's state holding at least every write
    /// committed before the request (on the leader; a follower's holds what it had applied),
    /// stored through the active handler and read back before it is reported.
    pub(crate) async fn create_backup(
        &self,
        metadata: Vec<(String, String)>,
    ) -> Result<Reply, RequestError> {
        check_metadata(&metadata).map_err(failed("create"))?;
        self.take_backup(metadata, false).await.map(Reply::Backup)
    }

    /// Takes a backup (by hand, or `scheduled`), as [`Self::create_backup`] describes.
    pub(crate) async fn take_backup(
        &self,
        metadata: Vec<(String, String)>,
        scheduled: bool,
    ) -> Result<BackupInfo, RequestError> {
        let handler = self.backup_handlers().await?.swap_remove(0);
        let dir = self.backup_dir("create")?;
        let probe = dir.clone();
        blocking(move || {
            BlobDir::new(&probe)
                .check_writable()
                .map_err(failed("create"))
        })
        .await?;
        match self.raft().ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(_) => {}
            Err(error) if not_leader(&error).is_some() => {}
            Err(error) => return Err(raft_failure("a backup's read index", error)),
        }
        let captures = self.state_machine.captures();
        let from = captures.points().0.unwrap_or(0);
        let capture = captures
            .backup_point(from, self.config().check_every, SETTLE, CHECK_POINT_WAIT)
            .await
            .ok_or_else(|| RequestError::Backup {
                what: "create".into(),
                reason: format!("no view of the state at index {from} or later is held"),
            })?;
        let state_machine = self.state_machine.clone();
        let (node_id, cluster_id) = (self.node_id, self.cluster_id);
        let created_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let info = blocking(move || {
            let image = state_machine
                .backup_image(capture.view())
                .map_err(storage("its state for a backup"))?;
            let state_hash = capture.hash().map_err(storage("its state hash"))?;
            let index = capture.index();
            let info = BackupInfo {
                id: format!("backup-{index:012}-{created_unix_ms}"),
                index,
                size: image.size,
                sha256: image.sha256,
                state_hash: Some(state_hash),
                created_unix_ms: Some(created_unix_ms),
                handler: Some(handler.sha256()),
                node_id: Some(node_id),
                cluster_id: Some(cluster_id),
                pairs: Some(image.facts.pairs),
                scheduled,
                metadata,
            };
            let fail = handler_failed("create");
            let io = |e: std::io::Error| RequestError::Storage {
                what: "its backup image".into(),
                reason: e.to_string(),
            };
            let mut begun = false;
            let mut store = || -> Result<BackupInfo, RequestError> {
                let mut session = handler.session(&dir).map_err(&fail)?;
                session.create_begin(&info).map_err(&fail)?;
                begun = true;
                let mut file = &image.temp.file;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                let mut chunk = vec![0u8; BACKUP_CHUNK];
                loop {
                    let read = file.read(&mut chunk).map_err(io)?;
                    if read == 0 {
                        break;
                    }
                    session
                        .create_chunk(&info.id, &chunk[..read])
                        .map_err(&fail)?;
                }
                session.create_finish(&info.id).map_err(&fail)?;
                session.info(&info.id).map_err(&fail)
            };
            let stored = match store() {
                Ok(stored) => stored,
                Err(error) => {
                    // What a failed attempt left (the handler never listed it) goes, if it can;
                    // a refused `create-begin` (say, the id exists) left nothing of ours.
                    if begun && let Ok(mut cleanup) = handler.session(&dir) {
                        let _ = cleanup.remove(&info.id);
                    }
                    return Err(error);
                }
            };
            if (stored.index, stored.size, stored.sha256) != (info.index, info.size, info.sha256) {
                if let Ok(mut cleanup) = handler.session(&dir) {
                    let _ = cleanup.remove(&info.id);
                }
                return Err(RequestError::Backup {
                    what: "create".into(),
                    reason: format!(
                        "the handler reports backup {} with another index, size or sha256 \
                         than it was given",
                        info.id
                    ),
                });
            }
            Ok(info)
        })
        .await?;
        tracing::info!(
            backup = info.id,
            index = info.index,
            size = info.size,
            "created a backup"
        );
        self.state_machine
            .events()
            .publish(ClusterEvent::BackupCreated {
                backup_id: info.id.clone(),
                index: info.index,
                node_id: self.node_id,
                size: info.size,
            });
        Ok(info)
    }

    /// Serves `ListBackups`.
    pub(crate) async fn list_backups(&self) -> Result<Reply, RequestError> {
        self.all_backups().await.map(Reply::Backups)
    }

    /// What every handler this node holds lists in its backup directory, oldest index first.
    pub(crate) async fn all_backups(&self) -> Result<Vec<BackupInfo>, RequestError> {
        let handlers = self.backup_handlers().await?;
        let dir = self.backup_dir("list")?;
        blocking(move || {
            if !dir.is_dir() {
                return Err(RequestError::Backup {
                    what: "list".into(),
                    reason: format!("the backup directory {} does not exist", dir.display()),
                });
            }
            let mut all: Vec<BackupInfo> = Vec::new();
            for handler in &handlers {
                let fail = handler_failed("list");
                for mut info in handler
                    .session(&dir)
                    .map_err(&fail)?
                    .list()
                    .map_err(&fail)?
                {
                    info.handler.get_or_insert(handler.sha256());
                    if !all.iter().any(|known| known.id == info.id) {
                        all.push(info);
                    }
                }
            }
            all.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
            Ok(all)
        })
        .await
    }

    /// Serves `ReadBackup`: a piece of a backup's image, through the handler that knows it.
    pub(crate) async fn read_backup(
        &self,
        backup_id: String,
        offset: u64,
        max: u32,
    ) -> Result<Reply, RequestError> {
        check_backup_id(&backup_id).map_err(RequestError::Malformed)?;
        let handlers = self.backup_handlers().await?;
        let dir = self.backup_dir("read")?;
        blocking(move || {
            let mut found = find(&handlers, &dir, &backup_id, "read")?;
            let max = max.min(BACKUP_CHUNK as u32);
            let chunk = found
                .session
                .read_chunk(&backup_id, offset, max)
                .map_err(handler_failed("read"))?;
            Ok(Reply::BackupChunk(Bytes::from(chunk)))
        })
        .await
    }

    /// Serves `DeleteBackup`: through the handler that knows the backup.
    pub(crate) async fn delete_backup(&self, backup_id: String) -> Result<Reply, RequestError> {
        check_backup_id(&backup_id).map_err(RequestError::Malformed)?;
        let handlers = self.backup_handlers().await?;
        let dir = self.backup_dir("delete")?;
        blocking(move || {
            let mut found = find(&handlers, &dir, &backup_id, "delete")?;
            found
                .session
                .remove(&backup_id)
                .map_err(handler_failed("delete"))?;
            tracing::info!(backup = backup_id, "deleted a backup");
            Ok(Reply::BackupDeleted)
        })
        .await
    }

    /// Serves `RestoreBackup` on the leader: reads the image through the handler that wrote it,
    /// checks it as every replica will, and replicates it in one log entry.
    pub(crate) async fn restore_backup(&self, backup_id: String) -> Result<Reply, RequestError> {
        let what = format!("restore {backup_id}");
        check_backup_id(&backup_id).map_err(RequestError::Malformed)?;
        let handlers = self.backup_handlers().await?;
        let dir = self.backup_dir(&what)?;
        let limit = self
            .config()
            .max_raft_frame
            .saturating_sub(RESTORE_HEADROOM);
        let id = backup_id.clone();
        let fail = failed(what.clone());
        let running = self.active_plugin()?.info().sha256;
        let (registry, _) = self
            .state_machine
            .plugins()
            .map_err(storage("its plugins"))?;
        let entry = blocking(move || {
            let fail = failed(format!("restore {id}"));
            let started = std::time::Instant::now();
            let mut found = find(&handlers, &dir, &id, "restore")?;
            let size = found.info.size;
            if size > limit {
                return Err(fail(format!(
                    "the backup is {size} bytes, more than one log entry may carry \
                     (max_raft_frame less 1 MiB: {limit}); restore it into a new cluster with \
                     `iroh-raft restore`, or raise max_raft_frame"
                )));
            }
            let mut image = Vec::with_capacity(size as usize);
            while (image.len() as u64) < size {
                let chunk = found
                    .session
                    .read_chunk(&id, image.len() as u64, BACKUP_CHUNK as u32)
                    .map_err(handler_failed(&format!("restore {id}")))?;
                if chunk.is_empty() {
                    return Err(fail(format!(
                        "the backup is truncated: {} of its {size} bytes are stored",
                        image.len()
                    )));
                }
                image.extend_from_slice(&chunk);
            }
            if image.len() as u64 > size {
                return Err(fail(format!(
                    "the backup holds more than the {size} bytes it recorded"
                )));
            }
            let read_ms = started.elapsed().as_millis() as u64;
            precheck_image(&image, &found.info.sha256, &running, &registry)
                .map_err(|reason| fail(format!("{reason}; nothing was changed")))?;
            tracing::info!(
                backup = id,
                handler = %&sha256_hex(&found.handler.sha256())[..12],
                size,
                read_ms,
                checked_ms = started.elapsed().as_millis() as u64 - read_ms,
                "restoring a backup"
            );
            Ok(RestoreEntry {
                backup_id: id,
                sha256: found.info.sha256,
                state_hash: found.info.state_hash,
                image: Bytes::from(image),
            })
        })
        .await?;
        let response = self
            .raft()
            .client_write(LogPayload::Restore(entry))
            .await
            .map_err(|error| raft_failure("the restore", error))?;
        match response.data {
            ApplyResponse::Restored(outcome) => Ok(Reply::Restored(outcome)),
            ApplyResponse::Failed(reason) => Err(fail(reason)),
            other => Err(RequestError::UnexpectedOutcome {
                index: response.log_id.index,
                outcome: format!("{other:?}"),
            }),
        }
    }
}
