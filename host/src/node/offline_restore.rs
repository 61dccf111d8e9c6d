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
    if super::ClusterIdentity::load(&config.data_dir)?.is_some() {
        return Err(refuse(format!(
            "{} already holds a node; restore into a new, empty data directory",
            config.data_dir.display()
        )));
    }
    // The state machine whose data this is runs from the new cluster's first entries.
    config.initial_state_machine = state_machine_of(&image, &summary)?;
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
    let (node_id, ticket) = (node.node_id(), node.ticket());
    let stopped = node.shutdown().await;
    let outcome = outcome?;
    stopped?;
    Ok(OfflineRestore {
        node_id,
        index: outcome.index,
        image: summary,
        ticket,
    })
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
