//! Where a node's figures come from: raft's metrics (through [`View`]), the recorders the hot
//! paths fill, storage and the plugin registry; and the node's side of `iroh-raft-metrics/0`
//! ([`MetricsService`]). Management's `GetMetrics` answers with the same snapshot.

use iroh::EndpointId;

use super::inspect::View;
use super::service::NodeService;
use crate::metrics::{self, StorageSources};
use crate::net::MetricsService;
use crate::proto::{
    Access, ActivePlugin, FollowerFigures, MetricsCategory, MetricsSnapshot, PluginFigures,
    PluginKind, RaftFigures, RaftRole, RequestError, op,
};
use crate::raft::RaftStorage;

impl NodeService {
    /// The figures of `categories` now (every category when empty).
    pub(crate) fn metrics_snapshot(
        &self,
        categories: &[MetricsCategory],
    ) -> Result<MetricsSnapshot, RequestError> {
        let view = View::of(&self.raft());
        let (proposal_latency, proposals_failed, elections, leader_changes) =
            self.raft_recorder.figures();
        let followers: Vec<FollowerFigures> = if view.is_leader() {
            view.members
                .keys()
                .filter(|id| **id != view.node_id)
                .map(|id| FollowerFigures {
                    node_id: *id,
                    matched: view
                        .matched
                        .as_ref()
                        .and_then(|m| m.get(id).copied().flatten()),
                    lag: view.lag(*id),
                })
                .collect()
        } else {
            Vec::new()
        };
        let raft = RaftFigures {
            term: view.term,
            state: view.state.unwrap_or(RaftRole::Shutdown),
            leader: view.leader,
            last_log: view.last_log,
            committed: view.committed,
            applied: view.applied,
            snapshot: view.snapshot,
            purged: view.purged,
            millis_since_quorum_ack: view.millis_since_quorum_ack,
            max_replication_lag: followers.iter().filter_map(|f| f.lag).max(),
            followers,
            elections,
            leader_changes,
            proposal_latency,
            proposals_failed,
        };
        let (fuel_consumed, instances_created) = self.state_machine.plugin_usage();
        let plugin = self.active_plugin()?;
        let (apply_latency, entries_applied, traps) = plugin.apply_recorder().figures();
        let (registry, bundled) =
            self.state_machine
                .plugins()
                .map_err(|e| RequestError::Storage {
                    what: "its plugin registry".into(),
                    reason: e.to_string(),
                })?;
        let active = PluginKind::ALL
            .into_iter()
            .filter_map(|kind| {
                // Where nothing was deployed, the bundled state machine runs.
                let record = registry.active(kind).or(bundled
                    .as_ref()
                    .filter(|_| kind == PluginKind::StateMachine))?;
                Some(ActivePlugin {
                    kind,
                    sha256: record.sha256,
                    version: record.version.clone(),
                    index: record.index,
                })
            })
            .collect();
        let database_dir = RaftStorage::database_dir(&self.storage_dir);
        let snapshot_file = RaftStorage::current_snapshot_file(&self.storage_dir);
        Ok(metrics::collect(
            categories,
            metrics::Sources {
                node_id: self.node_id,
                raft,
                storage: StorageSources {
                    database_dir: &database_dir,
                    database: self.log.database(),
                    log_bytes: self.log.log_disk_bytes(),
                    snapshot_file: &snapshot_file,
                    fsync: (self.log.fsync_latency(), self.log.fsync_stats().1),
                },
                endpoint: &self.endpoint,
                network: &self.network,
                plugin: PluginFigures {
                    state_machine: plugin.name().to_string(),
                    sha256: plugin.info().sha256,
                    fuel_consumed,
                    instances_created,
                    apply_latency,
                    entries_applied,
                    traps,
                    active,
                },
                management: &self.counters,
            },
        ))
    }

    /// The node's metrics as Prometheus text (every category).
    pub(crate) fn prometheus(&self) -> Result<String, RequestError> {
        Ok(metrics::prometheus::render(&self.metrics_snapshot(&[])?))
    }
}

impl MetricsService for NodeService {
    async fn admit(&self, caller: EndpointId) -> Result<(), RequestError> {
        self.counters.asked(op::METRICS_READ);
        let access = Access::Fixed {
            operation: op::METRICS_READ,
            resource: String::new(),
        };
        let judged = self.authorize(&caller, &access).await;
        self.counters.answered(judged.is_ok());
        judged
    }

    fn snapshot(&self, categories: &[MetricsCategory]) -> Result<MetricsSnapshot, RequestError> {
        self.metrics_snapshot(categories)
    }
}
