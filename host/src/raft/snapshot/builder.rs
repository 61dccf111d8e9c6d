//! [`PluginSnapshotBuilder`]: writes the state machine's keyspace to a snapshot file from one fjall
//! snapshot (applies continue meanwhile), fsyncs it and makes it the current snapshot.

use std::io::{self, BufWriter};
use std::sync::Arc;

use openraft::RaftSnapshotBuilder;
use openraft::type_config::alias::SnapshotOf;

use crate::hash::sha256_hex;
use crate::plugin::CompiledStateMachine;
use crate::proto::TypeConfig;
use crate::raft::RaftStorageError;
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::snapshot::format::{SnapshotHeader, SnapshotWriter};
use crate::raft::snapshot::store::SnapshotStore;
use crate::store::{FjallStateStore, PluginBlobs};

type C = TypeConfig;

/// Builds snapshots of a [`crate::raft::StateMachineStore`].
#[derive(Clone)]
pub struct PluginSnapshotBuilder {
    store: FjallStateStore,
    snapshots: Arc<SnapshotStore>,
    blobs: PluginBlobs,
    /// The bundled state machine: names the keyspace, and supplies its own bytes.
    default: CompiledStateMachine,
}

impl PluginSnapshotBuilder {
    pub(crate) fn new(
        store: FjallStateStore,
        snapshots: Arc<SnapshotStore>,
        blobs: PluginBlobs,
        default: CompiledStateMachine,
    ) -> Self {
        Self {
            store,
            snapshots,
            blobs,
            default,
        }
    }

    /// Writes the snapshot; returns its header and a handle reading it from the start.
    fn build(&self) -> Result<(SnapshotHeader, std::fs::File), RaftStorageError> {
        let export = self.store.export()?;
        let applied = match export.applied() {
            Some(mark) => AppliedState::from_mark(mark)?,
            None => AppliedState::empty(self.default.info().sha256),
        };
        // The plugins the registry references, read at the same instant as the data.
        let mut plugins = Vec::new();
        for hash in applied.plugins.referenced() {
            let wasm = if hash == self.default.info().sha256 {
                self.default.wasm().clone()
            } else {
                self.blobs
                    .get_in(export.snapshot(), &hash)?
                    .ok_or_else(|| RaftStorageError::Corrupt {
                        subject: "plugin blobs",
                        reason: format!("plugin {} has no stored bytes", sha256_hex(&hash)),
                    })?
            };
            plugins.push(wasm);
        }
        let header = SnapshotHeader {
            last_log_id: applied.last_applied,
            last_membership: applied.last_membership,
            plugin: self.default.name().to_string(),
            plugin_sha256: applied.plugin_sha256,
            config: applied.config,
            plugins: applied.plugins,
            sessions: applied.sessions,
        };
        let temp = self.snapshots.create_temp("build")?;
        let mut writer = SnapshotWriter::new(BufWriter::new(&temp.file), &header, &plugins)?;
        let mut pairs = 0u64;
        for pair in export.pairs() {
            let (key, value) = pair?;
            writer.pair(&key, &value)?;
            pairs += 1;
        }
        let (out, digest) = writer.finish()?;
        out.into_inner()
            .map_err(|e| RaftStorageError::io("write", &temp.path)(e.into_error()))?;
        temp.file
            .sync_all()
            .map_err(RaftStorageError::io("sync", &temp.path))?;
        // Opened before the rename: the handle reads this snapshot even if a newer one replaces
        // it before openraft is done with it.
        let reader =
            std::fs::File::open(&temp.path).map_err(RaftStorageError::io("open", &temp.path))?;
        let published = self.snapshots.publish(temp, &header)?;
        tracing::info!(
            last_log_id = ?header.last_log_id,
            pairs,
            checksum = %hex::encode(&digest[..8]),
            published,
            "built a snapshot"
        );
        Ok((header, reader))
    }
}

impl RaftSnapshotBuilder<C> for PluginSnapshotBuilder {
    type SnapshotData = tokio::fs::File;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, tokio::fs::File>, io::Error> {
        let builder = self.clone();
        let (header, file) = tokio::task::spawn_blocking(move || builder.build())
            .await
            .map_err(RaftStorageError::from)??;
        Ok(SnapshotOf::<C, tokio::fs::File> {
            meta: header.meta(),
            snapshot: tokio::fs::File::from_std(file),
        })
    }
}
