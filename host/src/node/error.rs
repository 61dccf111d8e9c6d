//! [`NodeError`]: why a node could not start or stop cleanly, each saying what to do.

use std::path::PathBuf;

use crate::net::NetError;
use crate::plugin::PluginError;
use crate::raft::RaftStorageError;

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory is unusable.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The node already belongs to a cluster.
    #[error(
        "{0} already holds a cluster member; restart it with no --init/--join flag, or pick another --data-dir"
    )]
    AlreadyMember(PathBuf),
    /// The node belongs to no cluster yet.
    #[error(
        "{0} holds no cluster member yet: start with --init to create a cluster or --join TICKET to join one"
    )]
    NotMember(PathBuf),
    /// A member refused the join.
    #[error("the cluster refused to let this node join: {0}")]
    JoinRefused(String),
    /// No member could be reached to join.
    #[error("could not join: {0}")]
    JoinFailed(String),
    /// The raft configuration is invalid.
    #[error("invalid raft configuration: {0}")]
    Config(String),
    /// The network could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The state-machine plugin was refused.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Storage failed (fatal: the node stops; it recovers from disk on restart).
    #[error("storage: {0}")]
    Storage(#[from] RaftStorageError),
    /// Raft failed while the node was `action`.
    #[error("raft failed while {action}: {source}")]
    Raft {
        /// What the node was doing ("starting the raft core", "initializing the cluster", ...).
        action: &'static str,
        /// What raft said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The raft core stopped on a fatal error while the node was running.
    #[error(
        "the raft core stopped: {reason}; this node cannot serve any more: restart it (it recovers \
         from its data directory)"
    )]
    Fatal {
        /// What stopped it.
        reason: String,
    },
    /// The new cluster refused the initial state machine (`NodeConfig::initial_state_machine`).
    #[error("the new cluster refused its initial state machine: {0}")]
    InitialPlugin(String),
    /// Another socket holds the address the node was to listen on.
    #[error(
        "address {addr} is already in use: another iroh-raft node, or another program, listens \
         there; stop it, or start this node with another --bind"
    )]
    AddressInUse {
        /// The address.
        addr: std::net::SocketAddr,
    },
    /// An offline restore (`iroh-raft restore`) could not seed the new cluster.
    #[error("the restore failed: {0}")]
    Restore(String),
}

impl NodeError {
    /// A raft failure while the node was `action`.
    pub(crate) fn raft(
        action: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Raft {
            action,
            source: Box::new(source),
        }
    }
}
