//! What a node does with management operations: writes through raft, reads at the requested
//! consistency, cluster status and health, configuration, the log and snapshots. Operations only
//! the leader can do are forwarded to it. Membership and leadership live in `members` and
//! `leadership`.

use openraft::async_runtime::WatchReceiver;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::{Endpoint, EndpointId};
use openraft::errors::ForwardToLeader;
use openraft::storage::RaftLogReader;
use openraft::{EntryPayload, Raft, ReadPolicy};

use super::inspect::{self, View};
use crate::client::{Client, ClientError};
use crate::events::Subscription;
use crate::metrics::{self, ManagementCounters, MetricsCategory, PluginFigures, RaftFigures};
use crate::net::{
    Consistency, HealthStatus, LogEntryInfo, LogEntryKind, LogInfo, ManagementService, NodeStatus,
    Operation, Reply, RequestError, SnapshotInfo,
};
use crate::raft::{
    ApplyResponse, ClusterConfig, FjallLogStore, LogPayload, Member, RaftStorage, SharedRaft,
    StateMachineStore, TypeConfig,
};
use crate::{EntryError, StateMachineReader};

type C = TypeConfig;

/// How long most requests may take end to end, forwarding included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests that wait for a member to catch up or a snapshot to finish may take.
const LONG_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long dialling the leader to forward a request may take.
const LEADER_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// The most log entries one request returns.
pub(crate) const MAX_LOG_ENTRIES: u64 = 1000;
/// The most command bytes one log-entries reply carries.
const MAX_LOG_ENTRY_BYTES: usize = 4 << 20;

/// A node's management service.
pub(crate) struct NodeService {
    pub(crate) raft: SharedRaft<StateMachineStore>,
    pub(crate) state_machine: StateMachineStore,
    pub(crate) log: FjallLogStore,
    pub(crate) cluster_id: [u8; 16],
    pub(crate) node_id: u64,
    pub(crate) reader: Arc<Mutex<StateMachineReader>>,
    pub(crate) endpoint: Endpoint,
    /// A client connection to the current leader, for forwarding.
    pub(crate) leader: tokio::sync::Mutex<Option<(u64, Arc<Client>)>>,
    /// Taken around membership changes, so they go one at a time.
    pub(crate) membership: Arc<tokio::sync::Mutex<()>>,
    pub(crate) counters: Arc<ManagementCounters>,
    pub(crate) started: Instant,
    pub(crate) storage_dir: PathBuf,
    pub(crate) max_frame: Arc<AtomicUsize>,
    /// The node's own settings (its flags), in effect until the cluster has a configuration.
    pub(crate) local_config: ClusterConfig,
}

impl NodeService {
    /// The raft core in use now.
    pub(crate) fn raft(&self) -> Raft<C, StateMachineStore> {
        self.raft.get()
    }

    async fn write(&self, command: Bytes) -> Result<Reply, RequestError> {
        match self
            .raft()
            .client_write(LogPayload::Command(command.clone()))
            .await
        {
            Ok(response) => Ok(Reply::Written {
                index: response.log_id.index,
                outcome: match response.data {
                    ApplyResponse::Ok(bytes) => Ok(bytes),
                    ApplyResponse::Failed(message) => Err(message),
                    ApplyResponse::None | ApplyResponse::Plugin(_) => Ok(Bytes::new()),
                },
            }),
            Err(error) => match error.forward_to_leader() {
                Some(forward) => self.redirect(forward, Operation::Write { command }).await,
                None => Err(RequestError::Unavailable(format!(
                    "the write failed: {error}"
                ))),
            },
        }
    }

    async fn read(&self, query: Bytes, consistency: Consistency) -> Result<Reply, RequestError> {
        let policy = match consistency {
            Consistency::Stale => None,
            Consistency::Lease => Some(ReadPolicy::LeaseRead),
            Consistency::Linearizable => Some(ReadPolicy::ReadIndex),
        };
        if let Some(policy) = policy
            && let Err(error) = self.raft().ensure_linearizable(policy).await
        {
            return match error.forward_to_leader() {
                Some(forward) => {
                    self.redirect(forward, Operation::Read { query, consistency })
                        .await
                }
                None => Err(RequestError::Unavailable(format!(
                    "cannot serve a {consistency} read: {error}"
                ))),
            };
        }
        let reader = self.reader.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
            reader.query(&query)
        })
        .await
        .map_err(|e| RequestError::Unavailable(format!("the query task failed: {e}")))?
        .map_err(|e| RequestError::Unavailable(format!("the node cannot read its state: {e}")))?;
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
        inspect::health(
            &View::of(&self.raft()),
            self.started.elapsed(),
            self.unreachable_after(),
        )
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
        let response = self
            .raft()
            .client_write(LogPayload::Config(proposed.clone()))
            .await
            .map_err(|error| match error.forward_to_leader() {
                Some(_) => RequestError::NoLeader,
                None => RequestError::Unavailable(format!("the update failed: {error}")),
            })?;
        match response.data {
            ApplyResponse::Failed(reason) => Err(RequestError::Refused(reason)),
            _ => Ok(Reply::Configuration(proposed)),
        }
    }

    fn log_info(&self) -> Result<LogInfo, RequestError> {
        let view = View::of(&self.raft());
        let first = view
            .last_log
            .map(|_| view.purged.map_or(0, |purged| purged + 1));
        let entries = match (first, view.last_log) {
            (Some(first), Some(last)) => (last + 1).saturating_sub(first),
            _ => 0,
        };
        Ok(LogInfo {
            node_id: self.node_id,
            first,
            last: view.last_log,
            committed: view.committed,
            applied: view.applied,
            purged: view.purged,
            snapshot: view.snapshot,
            entries,
            storage_bytes: metrics::dir_size(&RaftStorage::database_dir(&self.storage_dir)),
            snapshot_bytes: self.snapshot_size()?,
        })
    }

    fn snapshot_size(&self) -> Result<u64, RequestError> {
        Ok(self
            .state_machine
            .current_snapshot()
            .map_err(|e| RequestError::Unavailable(format!("reading the snapshot: {e}")))?
            .map_or(0, |(_, size)| size))
    }

    async fn compact_log(&self, index: u64) -> Result<Reply, RequestError> {
        let view = View::of(&self.raft());
        if view.snapshot.is_none_or(|snapshot| index > snapshot) {
            return Err(RequestError::CompactBeyondSnapshot {
                index,
                snapshot: view.snapshot,
            });
        }
        if let Some(purged) = view.purged.filter(|purged| *purged >= index) {
            return Ok(Reply::LogCompacted { purged });
        }
        self.raft()
            .trigger()
            .purge_log(index)
            .await
            .map_err(|e| RequestError::Unavailable(format!("raft stopped: {e}")))?;
        // Openraft purges once no replication still reads those entries.
        let mut metrics = self.raft().metrics();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let purged = View::of(&self.raft()).purged;
            if purged.is_some_and(|purged| purged >= index) {
                return Ok(Reply::LogCompacted {
                    purged: purged.unwrap_or(index),
                });
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return Err(RequestError::Unavailable(format!(
                    "the purge up to {index} was requested but has not happened within 10 s \
                     (a follower may still be reading those entries); it will happen once they are replicated"
                )));
            }
        }
    }

    async fn log_entries(&self, start: u64, end: u64) -> Result<Reply, RequestError> {
        let range_error = |reason: String| RequestError::LogRange { start, end, reason };
        if start >= end {
            return Err(range_error(
                "the range is empty: end must be greater than start".into(),
            ));
        }
        if end - start > MAX_LOG_ENTRIES {
            return Err(range_error(format!(
                "{} entries asked for; at most {MAX_LOG_ENTRIES} per request",
                end - start
            )));
        }
        let view = View::of(&self.raft());
        if let Some(purged) = view.purged.filter(|purged| start <= *purged) {
            return Err(range_error(format!(
                "entries up to {purged} were compacted into the snapshot; start at {} or later",
                purged + 1
            )));
        }
        match view.last_log {
            Some(last) if end <= last + 1 => {}
            last => {
                return Err(range_error(format!(
                    "the log ends at {}",
                    last.map_or("nothing (it is empty)".into(), |l| l.to_string())
                )));
            }
        }
        let entries = self
            .log
            .clone()
            .try_get_log_entries(start..end)
            .await
            .map_err(|e| RequestError::Unavailable(format!("reading the log: {e}")))?;
        let mut bytes = 0usize;
        let mut infos = Vec::with_capacity(entries.len());
        for entry in entries {
            let kind = match entry.payload {
                EntryPayload::Blank => LogEntryKind::Blank,
                EntryPayload::Membership(membership) => LogEntryKind::Membership {
                    voters: membership.voter_ids().collect(),
                    learners: membership.learner_ids().collect(),
                },
                EntryPayload::Normal(LogPayload::Command(command)) => {
                    bytes += command.len();
                    LogEntryKind::Command(command)
                }
                EntryPayload::Normal(LogPayload::Config(config)) => LogEntryKind::Config(config),
                EntryPayload::Normal(other) => LogEntryKind::Other(other.to_string()),
            };
            if bytes > MAX_LOG_ENTRY_BYTES {
                return Err(range_error(format!(
                    "the entries hold more than {MAX_LOG_ENTRY_BYTES} bytes; ask for fewer"
                )));
            }
            infos.push(LogEntryInfo {
                index: entry.log_id.index,
                term: entry.log_id.leader_id.term,
                kind,
            });
        }
        Ok(Reply::LogEntries(infos))
    }

    fn snapshot_info(&self) -> Result<SnapshotInfo, RequestError> {
        let (log_id, size) = self
            .state_machine
            .current_snapshot()
            .map_err(|e| RequestError::Unavailable(format!("reading the snapshot: {e}")))?
            .ok_or(RequestError::NoSnapshot)?;
        Ok(SnapshotInfo {
            node_id: self.node_id,
            index: log_id.index,
            term: log_id.leader_id.term,
            size,
        })
    }

    async fn trigger_snapshot(&self) -> Result<Reply, RequestError> {
        let view = View::of(&self.raft());
        let Some(applied) = view.applied else {
            return Err(RequestError::Refused(
                "nothing is applied yet, so there is nothing to snapshot".into(),
            ));
        };
        if view.snapshot.is_none_or(|at| at < applied) {
            self.raft()
                .trigger()
                .snapshot()
                .await
                .map_err(|e| RequestError::Unavailable(format!("raft stopped: {e}")))?;
            let mut metrics = self.raft().metrics();
            while View::of(&self.raft())
                .snapshot
                .is_none_or(|at| at < applied)
            {
                if metrics.changed().await.is_err() {
                    return Err(RequestError::Unavailable("raft stopped".into()));
                }
            }
        }
        Ok(Reply::Snapshot(self.snapshot_info()?))
    }

    fn metrics(&self, categories: &[MetricsCategory]) -> Result<Reply, RequestError> {
        let view = View::of(&self.raft());
        let (fuel_consumed, instances_created) = self.state_machine.plugin_usage();
        let plugin = self
            .state_machine
            .plugin()
            .map_err(|e| RequestError::Unavailable(format!("the state machine stopped: {e}")))?;
        let database_dir = RaftStorage::database_dir(&self.storage_dir);
        Ok(Reply::Metrics(Box::new(metrics::collect(
            categories,
            metrics::Sources {
                node_id: self.node_id,
                raft: RaftFigures {
                    term: view.term,
                    state: view.state.unwrap_or(crate::net::RaftRole::Shutdown),
                    leader: view.leader,
                    last_log: view.last_log,
                    committed: view.committed,
                    applied: view.applied,
                    snapshot: view.snapshot,
                    purged: view.purged,
                    millis_since_quorum_ack: view.millis_since_quorum_ack,
                    max_replication_lag: view
                        .members
                        .keys()
                        .filter_map(|id| view.lag(*id))
                        .max()
                        .filter(|_| view.is_leader()),
                },
                database_dir: &database_dir,
                snapshot_bytes: self.snapshot_size()?,
                endpoint: &self.endpoint,
                plugin: PluginFigures {
                    state_machine: plugin.name().to_string(),
                    sha256: plugin.info().sha256,
                    fuel_consumed,
                    instances_created,
                },
                management: &self.counters,
            },
        ))))
    }

    /// `None` when this node leads; otherwise the leader's answer to `operation`.
    pub(crate) async fn forward_unless_leader(
        &self,
        operation: &Operation,
    ) -> Option<Result<Reply, RequestError>> {
        let view = View::of(&self.raft());
        if view.is_leader() {
            return None;
        }
        let leader = view
            .leader
            .and_then(|id| Some((id, view.members.get(&id)?.clone())));
        Some(match leader {
            Some((id, member)) => self.forward(id, &member, operation.clone()).await,
            None => Err(RequestError::NoLeader),
        })
    }

    /// The leader if it is another node, `None` if it is this one; [`RequestError::NoLeader`]
    /// while none is known (the caller waits for the election).
    pub(crate) fn other_leader(&self) -> Result<Option<u64>, RequestError> {
        match View::of(&self.raft()).leader {
            None => Err(RequestError::NoLeader),
            Some(leader) => Ok((leader != self.node_id).then_some(leader)),
        }
    }

    /// Sends `operation` to the leader `leader`, found in the membership.
    pub(crate) async fn forward_to(
        &self,
        leader: u64,
        operation: Operation,
    ) -> Result<Reply, RequestError> {
        let node = View::of(&self.raft())
            .members
            .get(&leader)
            .cloned()
            .ok_or(RequestError::NoLeader)?;
        self.forward(leader, &node, operation).await
    }

    /// Sends `operation` to the leader a forward-to-leader error names.
    pub(crate) async fn redirect(
        &self,
        forward: &ForwardToLeader<C>,
        operation: Operation,
    ) -> Result<Reply, RequestError> {
        let (id, node) = forward
            .leader_id
            .zip(forward.leader_node.clone())
            .ok_or(RequestError::NoLeader)?;
        self.forward(id, &node, operation).await
    }

    /// Sends `operation` to the leader and relays its reply.
    async fn forward(
        &self,
        leader: u64,
        node: &Member,
        operation: Operation,
    ) -> Result<Reply, RequestError> {
        if leader == self.node_id {
            return Err(RequestError::NoLeader);
        }
        self.counters.forwarded();
        let client = self.leader_client(leader, node).await?;
        let result = match operation {
            // The bytes are already here: they stream on to the leader the same way.
            Operation::PluginDeploy(request) => {
                client.forward_deploy(request).await.map(Reply::Plugin)
            }
            operation => client.request(operation).await,
        };
        result.map_err(|error| {
            if !matches!(error, ClientError::Request(_)) {
                // The connection may be stale: dial again next time.
                if let Ok(mut cached) = self.leader.try_lock() {
                    *cached = None;
                }
            }
            match error {
                ClientError::Request(error) => error,
                other => RequestError::Unavailable(format!(
                    "forwarding to leader {leader} failed: {other}"
                )),
            }
        })
    }

    async fn leader_client(&self, leader: u64, node: &Member) -> Result<Arc<Client>, RequestError> {
        let mut cached = self.leader.lock().await;
        if let Some((id, client)) = cached.as_ref()
            && *id == leader
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        let addr = node.endpoint_addr().map_err(|e| {
            RequestError::Unavailable(format!("leader {leader} has an invalid key: {e}"))
        })?;
        // A leader that cannot be dialled has most likely just stopped: nothing was sent yet, so
        // wait for the election and try again (within the request's time).
        let client = match tokio::time::timeout(
            LEADER_DIAL_TIMEOUT,
            Client::connect_from(self.endpoint.clone(), addr),
        )
        .await
        {
            Ok(Ok(client)) => Arc::new(client),
            Ok(Err(error)) => {
                tracing::debug!(leader, "cannot reach the leader: {error}");
                return Err(RequestError::NoLeader);
            }
            Err(_) => {
                tracing::debug!(
                    leader,
                    "no answer from the leader within {LEADER_DIAL_TIMEOUT:?}"
                );
                return Err(RequestError::NoLeader);
            }
        };
        *cached = Some((leader, client.clone()));
        Ok(client)
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

    /// Serves one operation once.
    async fn serve(&self, operation: &Operation) -> Result<Reply, RequestError> {
        if is_for_leader(operation)
            && let Some(forwarded) = self.forward_unless_leader(operation).await
        {
            return forwarded;
        }
        match operation.clone() {
            Operation::Write { command } => self.write(command).await,
            Operation::Read { query, consistency } => self.read(query, consistency).await,
            Operation::Status => Ok(Reply::Status(self.status())),
            Operation::GetClusterStatus => Ok(Reply::ClusterStatus(inspect::cluster_status(
                &View::of(&self.raft()),
                self.cluster_id,
                self.config().version,
                self.unreachable_after(),
            ))),
            Operation::AddMember {
                node_id,
                member,
                role,
            } => self.add_member(node_id, member, role).await,
            Operation::RemoveMember { node_id } => self.remove_member(node_id).await,
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
            Operation::GetMetrics { categories } => self.metrics(&categories),
            Operation::GetLogInfo => Ok(Reply::LogInfo(self.log_info()?)),
            Operation::CompactLog { index } => self.compact_log(index).await,
            Operation::GetLogEntries { start, end } => self.log_entries(start, end).await,
            Operation::TriggerSnapshot => self.trigger_snapshot().await,
            Operation::GetSnapshotInfo => Ok(Reply::Snapshot(self.snapshot_info()?)),
            Operation::CreateBackup { .. }
            | Operation::RestoreBackup { .. }
            | Operation::ListBackups => Err(RequestError::NoBackupHandler),
            Operation::PluginDeploy(request) => self.deploy(request).await,
            Operation::PluginList => self.plugin_list(),
            Operation::PluginRollback { kind } => self.rollback(kind).await,
            Operation::Subscribe => Err(RequestError::Refused(
                "a subscription needs a stream of its own: open it with Client::subscribe".into(),
            )),
        }
    }
}

/// Operations only the leader can serve (a follower forwards them).
fn is_for_leader(operation: &Operation) -> bool {
    matches!(
        operation,
        Operation::GetClusterStatus
            | Operation::AddMember { .. }
            | Operation::RemoveMember { .. }
            | Operation::UpdateMemberRole { .. }
            | Operation::TransferLeadership { .. }
            | Operation::StepDown
            | Operation::UpdateConfiguration { .. }
    )
}

fn timeout_for(operation: &Operation) -> Duration {
    match operation {
        Operation::AddMember { .. }
        | Operation::RemoveMember { .. }
        | Operation::UpdateMemberRole { .. }
        | Operation::TriggerSnapshot => LONG_REQUEST_TIMEOUT,
        _ => REQUEST_TIMEOUT,
    }
}

impl ManagementService for NodeService {
    async fn handle(&self, _peer: EndpointId, operation: Operation) -> Result<Reply, RequestError> {
        let timeout = timeout_for(&operation);
        let work = async {
            loop {
                let result = self.serve(&operation).await;
                // No leader: wait for the election rather than fail the client.
                if !matches!(result, Err(RequestError::NoLeader)) {
                    return result;
                }
                self.leader_known().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let result = tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(RequestError::Unavailable(format!(
                    "no answer within {timeout:?}; the cluster may have lost its quorum"
                )))
            });
        self.counters.answered(result.is_ok());
        result
    }

    fn health(&self) -> HealthStatus {
        self.health_status()
    }

    fn subscribe(&self, _peer: EndpointId) -> Result<Subscription, RequestError> {
        self.counters.subscription(true);
        Ok(self.state_machine.events().subscribe())
    }

    fn unsubscribed(&self) {
        self.counters.subscription(false);
    }

    fn max_frame(&self) -> usize {
        self.max_frame.load(Ordering::Relaxed)
    }
}
