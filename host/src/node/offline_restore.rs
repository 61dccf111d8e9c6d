//! `iroh-raft restore`: seeds a new one-node cluster from a backup image, as `etcdctl snapshot
//! restore` does. The node starts in the new data directory as `--init` would, runs the backup's
//! state machine from its first entries (its bytes are in the image), replicates the image in a
//! `Restore` entry exactly as an online restore does, and stops. `iroh-raft node --data-dir DIR`
//! then brings it back as the leader of a cluster holding the backed-up data; others join it.

use bytes::Bytes;

use super::{Node, NodeConfig, NodeError, Start};
use crate::hash::sha256;
use crate::proto::{ApplyResponse, JoinTicket, LogPayload, RestoreEntry};
use crate::raft::snapshot::summary::{ImageSummary, inspect_image};

/// What an offline restore made.
#[derive(Debug, Clone)]
pub struct OfflineRestore {
    /// The new node's raft id.
    pub node_id: u64,
    /// The log index the data was restored at.
    pub index: u64,
    /// What the image held.
    pub image: ImageSummary,
    /// A ticket for joining the new cluster (valid once the node runs again).
    pub ticket: JoinTicket,
}

/// Seeds the new cluster in `config.data_dir` (which must hold no node yet) from `image`, named
/// `backup_id`. The node binds `config.bind` while it works: bind the address it will serve on,
/// since the membership records it.
pub async fn restore_offline(
    mut config: NodeConfig,
    image: Bytes,
    backup_id: &str,
) -> Result<OfflineRestore, NodeError> {
    let refuse = |reason: String| NodeError::Restore(reason);
    let summary = inspect_image(&image)
        .map_err(|e| refuse(format!("the image is not a readable backup ({e})")))?;
    let dir = config.data_dir.clone();
    let marker = dir.join(RESTORE_UNFINISHED);
    if marker.exists() {
        // An earlier attempt died half-way: what it left is not a cluster to keep.
        tracing::warn!(dir = %dir.display(), "an unfinished restore is removed and done again");
        wipe(&dir)?;
    }
    if super::ClusterIdentity::load(&dir)?.is_some() {
        return Err(refuse(format!(
            "{} already holds a node; restore into a new, empty data directory",
            dir.display()
        )));
    }
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(refuse(format!(
            "{} is not empty; restore into a new, empty data directory",
            dir.display()
        )));
    }
    let data_dir = |reason: std::io::Error| NodeError::DataDir {
        path: dir.clone(),
        reason: reason.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(data_dir)?;
    std::fs::write(&marker, b"an offline restore is under way or died here\n").map_err(data_dir)?;
    // The state machine whose data this is runs from the new cluster's first entries.
    config.initial_state_machine = state_machine_of(&image, &summary)?;
    match seed(config, image, backup_id).await {
        Ok((node_id, index, ticket)) => {
            std::fs::remove_file(&marker).map_err(data_dir)?;
            Ok(OfflineRestore {
                node_id,
                index,
                image: summary,
                ticket,
            })
        }
        Err(error) => {
            // Nothing half-done stays behind to be taken for a cluster.
            if let Err(wiped) = wipe(&dir) {
                tracing::warn!("cannot remove the unfinished restore: {wiped}");
            }
            Err(error)
        }
    }
}

/// The file in a data directory that an offline restore is writing (or died writing):
/// `iroh-raft node` refuses to start there.
pub const RESTORE_UNFINISHED: &str = "restore-unfinished";

fn wipe(dir: &std::path::Path) -> Result<(), NodeError> {
    std::fs::remove_dir_all(dir).map_err(|e| NodeError::DataDir {
        path: dir.to_path_buf(),
        reason: format!("cannot remove an unfinished restore: {e}"),
    })
}

/// Starts the new node, replicates the restore, snapshots it and stops: the node's id, the
/// restore's index and a ticket.
async fn seed(
    config: NodeConfig,
    image: Bytes,
    backup_id: &str,
) -> Result<(u64, u64, JoinTicket), NodeError> {
    let refuse = |reason: String| NodeError::Restore(reason);
    let node = Node::start(config, Start::Init).await?;
    let entry = RestoreEntry {
        backup_id: backup_id.to_string(),
        sha256: sha256(&image),
        state_hash: None,
        image,
    };
    let restored = node.raft().client_write(LogPayload::Restore(entry)).await;
    let outcome = match restored {
        Ok(response) => match response.data {
            ApplyResponse::Restored(outcome) => Ok(outcome),
            ApplyResponse::Failed(reason) => Err(refuse(reason)),
            other => Err(refuse(format!("unexpected outcome {other:?}"))),
        },
        Err(error) => Err(NodeError::raft("replicating the restore", error)),
    };
    // The image goes into a snapshot and out of the log: a node that joins later gets the
    // snapshot in chunks instead of one log entry as large as the image.
    let compacted = match &outcome {
        Ok(outcome) => compact(&node, outcome.index).await,
        Err(_) => Ok(()),
    };
    let (node_id, ticket) = (node.node_id(), node.ticket());
    let stopped = node.shutdown().await;
    let outcome = outcome?;
    compacted?;
    stopped?;
    Ok((node_id, outcome.index, ticket))
}

/// Takes a snapshot covering `index` and purges the log up to it.
async fn compact(node: &Node, index: u64) -> Result<(), NodeError> {
    let log = node.service.log_access();
    let failed = |error: crate::proto::RequestError| {
        NodeError::Restore(format!(
            "the restored state could not be snapshotted: {error}"
        ))
    };
    log.trigger_snapshot().await.map_err(failed)?;
    log.compact(index).await.map_err(failed)?;
    Ok(())
}

/// The `.wasm` bytes of the state machine `image` holds the data of.
fn state_machine_of(image: &[u8], summary: &ImageSummary) -> Result<Bytes, NodeError> {
    let wanted = summary.state_machine.clone();
    crate::raft::snapshot::summary::plugin_bytes(image)
        .map_err(|e| NodeError::Restore(e.to_string()))?
        .into_iter()
        .find(|wasm| crate::hash::sha256_hex(&sha256(wasm)) == wanted)
        .ok_or_else(|| {
            NodeError::Restore(format!(
                "the image does not carry the bytes of its state machine {wanted}"
            ))
        })
}
