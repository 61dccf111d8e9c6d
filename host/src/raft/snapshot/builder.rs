//! [`PluginSnapshotBuilder`]: writes the state machine's keyspace to a snapshot file from one fjall
//! snapshot (applies continue meanwhile), fsyncs it and makes it the current snapshot.

use std::io::{self, BufWriter};
use std::sync::Arc;

use openraft::RaftSnapshotBuilder;
use openraft::type_config::alias::SnapshotOf;

use crate::plugin::CompiledStateMachine;
use crate::proto::TypeConfig;
use crate::raft::RaftStorageError;
use crate::raft::snapshot::format::SnapshotHeader;
use crate::raft::snapshot::image::{ImageFacts, write_image};
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
        let temp = self.snapshots.create_temp("build")?;
        let (out, facts) = write_image(
            &export,
            &self.default,
            &self.blobs,
            BufWriter::new(&temp.file),
        )?;
        let ImageFacts {
            header,
            pairs,
            checksum: digest,
        } = facts;
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
