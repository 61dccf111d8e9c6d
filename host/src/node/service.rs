//! What a node does with management operations: writes through raft, reads at the requested
//! consistency, cluster status and health, configuration and metrics. An operation only the
//! leader serves is routed there first ([`LeaderLink`]); the log and snapshot operations live in
//! `log_ops`, membership in `members`, leadership in `leadership`, plugins in `plugin_ops`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::{Endpoint, EndpointId};
use openraft::async_runtime::WatchReceiver;
use openraft::{Raft, ReadPolicy};

use super::access::Authorizer;
use super::consistency_check::{self, ConsistencyRecord};
use super::forward::{LeaderLink, not_leader};
use super::inspect::{self, View};
use super::log_ops::LogAccess;
use crate::events::Subscription;
use crate::metrics::{ManagementCounters, NetworkCounters, RaftRecorder};
use crate::net::{Caller, ManagementService};
use crate::plugin::{EntryError, StateMachineReader};
use crate::proto::{
    ApplyResponse, ClusterConfig, Consistency, HealthStatus, LogPayload, Member, NodeStatus,
    Operation, Reply, RequestError, SessionTag, TypeConfig, WatchRequest,
};
use crate::raft::{FjallLogStore, SharedRaft, StateMachineStore};
use crate::watch::WatchFeed;

type C = TypeConfig;

/// A node's management service.
pub(crate) struct NodeService {
    pub(crate) raft: SharedRaft<StateMachineStore>,
    pub(crate) state_machine: StateMachineStore,
    pub(crate) log: FjallLogStore,
    pub(crate) cluster_id: [u8; 16],
    pub(crate) node_id: u64,
    pub(crate) reader: Arc<Mutex<StateMachineReader>>,
    pub(crate) endpoint: Endpoint,
    /// Forwarding to the leader.
    pub(crate) leader: LeaderLink,
    /// Taken around membership changes, so they go one at a time.
    pub(crate) membership: Arc<tokio::sync::Mutex<()>>,
    pub(crate) counters: Arc<ManagementCounters>,
    /// Connections and bytes per protocol, raft RPCs per peer.
    pub(crate) network: Arc<NetworkCounters>,
    /// Proposals, elections and leader changes.
    pub(crate) raft_recorder: Arc<RaftRecorder>,
    pub(crate) started: Instant,
    pub(crate) storage_dir: PathBuf,
    pub(crate) max_frame: Arc<AtomicUsize>,
    /// The node's own settings (its flags), in effect until the cluster has a configuration.
    pub(crate) local_config: ClusterConfig,
    /// What this node's consistency checks found.
    pub(crate) consistency: Arc<ConsistencyRecord>,
    /// The access policy's runtime: every request is judged here first.
    pub(crate) authorizer: Authorizer,
    /// Removed, or not caught up since it started: then it answers only status and health.
    pub(crate) gate: super::gate::Gate,
    /// Who this node announces itself as (`member add` asks a candidate with it).
    pub(crate) identity: super::announcer::Identity,
    /// Where this node's backup handler keeps backups (`--backup-dir`); `None`: no backups here.
    pub(crate) backup_dir: Option<PathBuf>,
    /// The cluster's join secret, for `GetJoinTicket`.
    pub(crate) join_secret: [u8; 32],
}

/// A failed raft call as the client sees it: `NoLeader` if this node no longer leads (the request
/// is routed again), otherwise what `action` ran into.
pub(crate) fn raft_failure<E>(
    action: &str,
    error: openraft::errors::RaftError<C, E>,
) -> RequestError
where
    E: std::error::Error + openraft::TryAsRef<openraft::errors::ForwardToLeader<C>> + 'static,
{
    not_leader(&error).unwrap_or_else(|| RequestError::Raft {
        action: action.into(),
        reason: error.to_string(),
    })
}

/// A write's reply: a repeat of a write its session applied before answers with that first
/// index and result.
fn written(index: u64, response: ApplyResponse) -> Reply {
    match response {
        ApplyResponse::Repeated { index, first } => written(index, *first),
        ApplyResponse::Ok(bytes) => Reply::Written {
            index,
            outcome: Ok(bytes),
        },
        ApplyResponse::Failed(message) => Reply::Written {
            index,
            outcome: Err(message),
        },
        ApplyResponse::None | ApplyResponse::Plugin(_) | ApplyResponse::Restored(_) => {
            Reply::Written {
                index,
                outcome: Ok(Bytes::new()),
            }
        }
    }
}

impl NodeService {
    /// The raft core in use now.
    pub(crate) fn raft(&self) -> Raft<C, StateMachineStore> {
        self.raft.get()
    }

    /// The state machine plugin applying entries here.
    pub(crate) fn active_plugin(
        &self,
    ) -> Result<crate::plugin::CompiledStateMachine, RequestError> {
        self.state_machine
            .plugin()
            .map_err(|e| RequestError::Storage {
                what: "its state machine".into(),
                reason: e.to_string(),
            })
    }

    /// What the log and snapshot operations read.
    pub(crate) fn log_access(&self) -> LogAccess<'_> {
        LogAccess {
            raft: self.raft(),
            log: &self.log,
            state_machine: &self.state_machine,
            node_id: self.node_id,
            storage_dir: &self.storage_dir,
        }
    }

    async fn write(
        &self,
        command: Bytes,
        session: Option<SessionTag>,
    ) -> Result<Reply, RequestError> {
        let max = self.config().max_command_bytes;
        if command.len() as u64 > max {
            return Err(RequestError::CommandTooLarge {
                len: command.len() as u64,
                max,
            });
        }
        let payload = match session {
            Some(session) => LogPayload::SessionCommand { session, command },
            None => LogPayload::Command(command),
        };
        let proposed = Instant::now();
        let response = self.raft().client_write(payload).await;
        (self.raft_recorder).proposed(proposed.elapsed(), response.is_ok());
        let response = response.map_err(|error| raft_failure("the write", error))?;
        Ok(written(response.log_id.index, response.data))
    }

    async fn read(&self, query: Bytes, consistency: Consistency) -> Result<Reply, RequestError> {
        let policy = match consistency {
            Consistency::Stale => None,
            Consistency::Lease => Some(ReadPolicy::LeaseRead),
            Consistency::Linearizable => Some(ReadPolicy::ReadIndex),
        };
        if let Some(policy) = policy {
            self.raft()
                .ensure_linearizable(policy)
                .await
                .map_err(|error| raft_failure(&format!("a {consistency} read"), error))?;
        }
        let reader = self.reader.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
            reader.query(&query)
        })
        .await
        .map_err(|e| RequestError::TaskFailed {
            task: "query".into(),
            reason: e.to_string(),
        })?
        .map_err(|e| RequestError::Storage {
            what: "its state".into(),
            reason: e.to_string(),
        })?;
        Ok(Reply::Read {
            outcome: outcome.map_err(|e: EntryError| e.to_string()),
        })
    }

    pub(crate) fn status(&self) -> NodeStatus {
        let view = View::of(&self.raft());
        let (voters, learners): (Vec<(u64, Member)>, _) = view
            .members
            .iter()
            .map(|(id, member)| (*id, member.clone()))
            .partition(|(id, _)| view.voters.contains(id));
        NodeStatus {
            cluster_id: self.cluster_id,
            node_id: self.node_id,
            leader: view.leader,
            term: view.term,
            voters,
            learners,
            applied: view.applied,
        }
    }

    /// The configuration in effect here.
    pub(crate) fn config(&self) -> ClusterConfig {
        super::maintenance::effective(&self.state_machine.config().borrow(), &self.local_config)
            .clone()
    }

    /// A member that has not acknowledged the leader for this long counts as unreachable.
    pub(crate) fn unreachable_after(&self) -> Duration {
        Duration::from_millis(self.config().election_timeout_max_ms)
    }

    pub(crate) fn health_status(&self) -> HealthStatus {
        let mut health = inspect::health(
            &View::of(&self.raft()),
            self.started.elapsed(),
            self.unreachable_after(),
        );
        let diverged = self.consistency.problems(self.node_id);
        health.healthy &= diverged.is_empty();
        health.problems.extend(diverged);
        if let Some(problem) = self.gate.problem(&self.raft) {
            health.healthy = false;
            health.problems.insert(0, problem);
        }
        health
    }

    async fn update_config(&self, config: ClusterConfig) -> Result<Reply, RequestError> {
        let current = self.config();
        if config.version != current.version {
            return Err(RequestError::ConfigConflict {
                expected: config.version,
                current: current.version,
            });
        }
        config
            .validate()
            .map_err(|error| RequestError::InvalidConfig {
                field: error.field,
                reason: error.reason,
            })?;
        let proposed = ClusterConfig {
            version: current.version + 1,
            ..config
        };
        // Every replica re-creates the state machine's instances under the new budgets at this
        // entry: refuse here what they could not run.
        let plugin = self.active_plugin()?;
        plugin.check_limits(&proposed.limits).map_err(|error| {
            RequestError::Refused(format!(
                "the active state-machine plugin cannot run under these budgets ({error}); \
                 nothing was changed: raise plugin_memory_bytes or the fuel settings"
            ))
        })?;
        let response = self
            .raft()
            .client_write(LogPayload::Config(proposed.clone()))
            .await
            .map_err(|error| raft_failure("the configuration update", error))?;
        match response.data {
            ApplyResponse::Failed(reason) => Err(RequestError::Refused(reason)),
            _ => Ok(Reply::Configuration(proposed)),
        }
    }

    /// Waits until some node is known to lead (an election is a short, normal event).
    async fn leader_known(&self) {
        let mut metrics = self.raft().metrics();
        while View::of(&self.raft()).leader.is_none() {
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    /// Serves one operation once, for `caller` (who forwarding names to the leader).
    async fn serve(
        &self,
        caller: EndpointId,
        operation: &Operation,
    ) -> Result<Reply, RequestError> {
        if let Some(answer) = self
            .leader
            .route(&View::of(&self.raft()), caller, operation)
            .await
        {
            return answer;
        }
        match operation.clone() {
            Operation::Write { command, session } => self.write(command, session).await,
            Operation::Read { query, consistency } => self.read(query, consistency).await,
            Operation::Status => Ok(Reply::Status(self.status())),
            Operation::GetClusterStatus => {
                let mut status = inspect::cluster_status(
                    &View::of(&self.raft()),
                    self.cluster_id,
                    self.config().version,
                    self.unreachable_after(),
                );
                status.diverged = self.consistency.diverged();
                Ok(Reply::ClusterStatus(status))
            }
            Operation::AddMember {
                node_id,
                member,
                role,
            } => self.add_member(node_id, member, role).await,
            Operation::RemoveMember { node_id } => self.remove_member(node_id, caller).await,
            Operation::UpdateMemberRole { node_id, role } => {
                self.update_member_role(node_id, role).await
            }
            Operation::TransferLeadership { target_node } => {
                self.transfer_leadership(target_node).await
            }
            Operation::StepDown => self.transfer_leadership(None).await,
            Operation::GetConfiguration => Ok(Reply::Configuration(self.config())),
            Operation::UpdateConfiguration { config } => self.update_config(config).await,
            Operation::GetHealthStatus => Ok(Reply::Health(self.health_status())),
            Operation::GetMetrics { categories } => Ok(Reply::Metrics(Box::new(
                self.metrics_snapshot(&categories)?,
            ))),
            Operation::GetLogInfo => Ok(Reply::LogInfo(self.log_access().info()?)),
            Operation::CompactLog { index } => self.log_access().compact(index).await,
            Operation::GetLogEntries { start, end } => self.log_access().entries(start, end).await,
            Operation::TriggerSnapshot => self.log_access().trigger_snapshot().await,
            Operation::GetSnapshotInfo => Ok(Reply::Snapshot(self.log_access().snapshot_info()?)),
            Operation::CreateBackup { metadata } => self.create_backup(metadata).await,
            Operation::RestoreBackup { backup_id } => self.restore_backup(backup_id).await,
            Operation::ListBackups => self.list_backups().await,
            Operation::ReadBackup {
                backup_id,
                offset,
                max,
            } => self.read_backup(backup_id, offset, max).await,
            Operation::DeleteBackup { backup_id } => self.delete_backup(backup_id).await,
            Operation::GetJoinTicket => Ok(Reply::JoinTicket(crate::proto::JoinTicket {
                cluster_id: self.cluster_id,
                endpoint_key: *self.endpoint.id().as_bytes(),
                addrs: self.identity.endpoints.clone(),
                secret: self.join_secret,
            })),
            Operation::PluginDeploy(request) => self.deploy(request).await,
            Operation::PluginList => self.plugin_list(),
            Operation::PluginRollback { kind } => self.rollback(kind).await,
            Operation::GetStateHash { at_index } => {
                consistency_check::answer(self.state_machine.captures(), self.node_id, at_index)
                    .await
            }
            Operation::Subscribe | Operation::Watch(_) => Err(RequestError::Refused(
                "a subscription or a watch needs a stream of its own: open it with \
                 Client::subscribe or IrohRaftManagementClient::watch"
                    .into(),
            )),
        }
    }
}

impl ManagementService for NodeService {
    async fn admit(&self, caller: &Caller, operation: &Operation) -> Result<(), RequestError> {
        self.judge(caller, operation).await.map(drop)
    }

    async fn handle(&self, caller: Caller, operation: Operation) -> Result<Reply, RequestError> {
        self.counters.asked(operation.access().operation());
        // Caught up first, so that the request is judged by the cluster's current policy.
        if let Err(refused) = self.gate.admit(&self.raft, self.node_id, &operation).await {
            self.counters.answered(false);
            return Err(refused);
        }
        let caller = match self.judge(&caller, &operation).await {
            Ok(caller) => caller,
            Err(error) => {
                self.counters.answered(false);
                return Err(error);
            }
        };
        let timeout = super::deadlines::timeout_for(&operation);
        let work = async {
            loop {
                let result = self.serve(caller, &operation).await;
                // No leader: wait for the election rather than fail the client.
                if !matches!(result, Err(RequestError::NoLeader)) {
                    return result;
                }
                self.leader_known().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let result =
            tokio::time::timeout(timeout, work)
                .await
                .unwrap_or(Err(RequestError::TimedOut {
                    after_ms: timeout.as_millis() as u64,
                }));
        self.counters.answered(result.is_ok());
        result
    }

    async fn health(&self, caller: Caller) -> Result<HealthStatus, RequestError> {
        self.counters.asked(crate::proto::HEALTH_CHECK);
        self.judge(&caller, &Operation::GetHealthStatus).await?;
        Ok(self.health_status())
    }

    async fn subscribe(&self, caller: Caller) -> Result<Subscription, RequestError> {
        self.open_subscription(caller).await
    }

    async fn watch(
        &self,
        caller: Caller,
        request: WatchRequest,
    ) -> Result<WatchFeed, RequestError> {
        self.open_watch(caller, request).await
    }

    fn unsubscribed(&self) {
        self.counters.subscription(false);
    }

    fn in_touch_with_leader(&self) -> bool {
        inspect::in_touch_with_leader(
            &View::of(&self.raft()),
            self.raft.since_leader_heard(),
            self.unreachable_after(),
        )
    }

    fn out_of_touch_limit(&self) -> Duration {
        // Two election timeouts: an election that succeeds ends well within it.
        self.unreachable_after() * 2
    }

    fn max_frame(&self) -> usize {
        self.max_frame.load(Ordering::Relaxed)
    }

    fn policy_generation(&self) -> u64 {
        self.state_machine.policy_generation()
    }
}
