//! [`PluginSnapshotBuilder`]: writes the state machine's keyspace to a snapshot file from one fjall
//! snapshot (applies continue meanwhile), fsyncs it and makes it the current snapshot.

use std::io::{self, BufWriter};
use std::sync::Arc;

use openraft::RaftSnapshotBuilder;
use openraft::type_config::alias::SnapshotOf;

use super::applied_state::AppliedState;
use super::snapshot_format::{SnapshotHeader, SnapshotWriter};
use super::snapshot_store::SnapshotStore;
use super::{RaftStorageError, TypeConfig};
use crate::store::FjallStateStore;

type C = TypeConfig;

/// Builds snapshots of a [`super::StateMachineStore`].
#[derive(Clone)]
pub struct PluginSnapshotBuilder {
    store: FjallStateStore,
    snapshots: Arc<SnapshotStore>,
    plugin: String,
    plugin_sha256: [u8; 32],
}

impl PluginSnapshotBuilder {
    pub(crate) fn new(
        store: FjallStateStore,
        snapshots: Arc<SnapshotStore>,
        plugin: String,
        plugin_sha256: [u8; 32],
    ) -> Self {
        Self {
            store,
            snapshots,
            plugin,
            plugin_sha256,
        }
    }

    /// Writes the snapshot; returns its header and a handle reading it from the start.
    fn build(&self) -> Result<(SnapshotHeader, std::fs::File), RaftStorageError> {
        let export = self.store.export()?;
        let applied = match export.applied() {
            Some(mark) => AppliedState::from_mark(mark)?,
            None => AppliedState::empty(self.plugin_sha256),
        };
        let header = SnapshotHeader {
            last_log_id: applied.last_applied,
            last_membership: applied.last_membership,
            plugin: self.plugin.clone(),
            plugin_sha256: applied.plugin_sha256,
            config: applied.config,
        };
        let temp = self.snapshots.create_temp("build")?;
        let mut writer = SnapshotWriter::new(BufWriter::new(&temp.file), &header)?;
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
