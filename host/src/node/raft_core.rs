//! Starting a raft core over the node's storage, and replacing it when the replicated election
//! timeouts change: openraft reads them only when a core starts, so the node shuts the running core
//! down and starts another over the same log and state machine. Every member applies the same
//! configuration entry, so every member does this, and the cluster elects a leader under the new
//! timeouts.

use std::sync::Arc;

use iroh::Endpoint;
use openraft::Raft;

use super::NodeError;
use crate::net::{LinkFaults, PeerConnections, RaftNetwork};
use crate::proto::{ClusterConfig, TypeConfig};
use crate::raft::{FjallLogStore, SharedRaft, StateMachineStore};

type C = TypeConfig;

/// What it takes to start a raft core for this node.
#[derive(Clone)]
pub(crate) struct CoreFactory {
    pub(crate) node_id: u64,
    pub(crate) endpoint: Endpoint,
    pub(crate) log: FjallLogStore,
    pub(crate) state_machine: StateMachineStore,
    /// Where the raft client counts its connections and RPCs.
    pub(crate) network: std::sync::Arc<crate::metrics::NetworkCounters>,
    /// The connections to peers, kept across cores: a new core (an election-timeout change)
    /// sends its first heartbeats over them instead of dialling every peer again, which made
    /// those heartbeats miss their deadline.
    pub(crate) connections: PeerConnections,
    /// The faults injected into this node's raft messages (none unless a test sets some).
    pub(crate) faults: LinkFaults,
}

impl CoreFactory {
    /// Starts a core with the timing of `config`, at the position the storage holds.
    pub(crate) async fn start(
        &self,
        config: &ClusterConfig,
    ) -> Result<Raft<C, StateMachineStore>, NodeError> {
        Raft::new(
            self.node_id,
            Arc::new(config.raft_config().map_err(NodeError::Config)?),
            RaftNetwork::new(
                self.endpoint.clone(),
                self.connections.clone(),
                self.log.append_budget().max_frame(),
                self.network.clone(),
                self.faults.clone(),
            ),
            self.log.clone(),
            self.state_machine.clone(),
        )
        .await
        .map_err(|e| NodeError::raft("starting the raft core", e))
    }
}

/// Whether the running core's election timeouts differ from `config`'s.
pub(crate) fn election_changed(running: &openraft::Config, config: &ClusterConfig) -> bool {
    running.election_timeout_min != config.election_timeout_min_ms
        || running.election_timeout_max != config.election_timeout_max_ms
}

/// Shuts the current core down and puts a new one, with `config`'s timing, in its place.
pub(crate) async fn restart(
    shared: &SharedRaft<StateMachineStore>,
    factory: &CoreFactory,
    config: &ClusterConfig,
) -> Result<Raft<C, StateMachineStore>, NodeError> {
    tracing::info!(
        min = config.election_timeout_min_ms,
        max = config.election_timeout_max_ms,
        "election timeouts changed: restarting the raft core"
    );
    shared
        .get()
        .shutdown()
        .await
        .map_err(|e| NodeError::raft("stopping the raft core", e))?;
    let core = factory.start(config).await?;
    if let Err(refused) = shared.replace(core.clone()) {
        // The node stopped (or was removed) meanwhile: the new core goes too.
        let _ = refused.shutdown().await;
    }
    Ok(core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_election_timeouts_call_for_a_new_core() {
        let config = ClusterConfig::default();
        let running = config.raft_config().unwrap();
        assert!(!election_changed(&running, &config));
        let heartbeat = ClusterConfig {
            heartbeat_interval_ms: 50,
            ..ClusterConfig::default()
        };
        assert!(!election_changed(&running, &heartbeat));
        let election = ClusterConfig {
            election_timeout_max_ms: 1500,
            ..ClusterConfig::default()
        };
        assert!(election_changed(&running, &election));
    }
}
