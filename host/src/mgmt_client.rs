//! [`IrohRaftManagementClient`]: an operator's handle on a whole cluster. It keeps connections to
//! the members it knows, sends leader-only operations straight to the leader (learning who that is
//! from the cluster status and following leadership as it moves), and fails over to another member
//! when one cannot be reached. `mgmt_client/check.rs`: the consistency check; `seed.rs`: one seed;
//! `backups.rs`: backups on a chosen member.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use iroh::{Endpoint, EndpointAddr};
use tokio::sync::Mutex;

mod backups;
mod check;
mod seed;
mod subscribe;
mod watch;

use crate::client::{Client, ClientError, client_endpoint};
use crate::proto::{
    ClusterConfig, ClusterStatus, HealthStatus, JoinTicket, LeadershipResponse, LogEntryInfo,
    LogInfo, Member, MemberOperationResponse, MemberRole, MetricsCategory, MetricsSnapshot,
    Operation, Reply, SnapshotInfo,
};
use crate::write_session::{self, WriteSession};

/// How long dialling one member may take before the next is tried.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A management client over a pool of member connections.
pub struct IrohRaftManagementClient {
    endpoint: Endpoint,
    pool: Mutex<Pool>,
    session: WriteSession,
}

#[derive(Default)]
struct Pool {
    /// Addresses to try, the seeds first; refreshed from the membership.
    addresses: Vec<EndpointAddr>,
    /// Open connections by endpoint id.
    open: BTreeMap<iroh::EndpointId, Arc<Client>>,
    /// The leader's address, once known.
    leader: Option<EndpointAddr>,
}

impl IrohRaftManagementClient {
    /// Connects to the cluster a join ticket names, as the identity `key` (only the ticket's
    /// address is used: its secret is not sent anywhere).
    pub async fn from_ticket(
        ticket: &JoinTicket,
        key: iroh::SecretKey,
    ) -> Result<Self, ClientError> {
        let member = Member {
            endpoint_key: ticket.endpoint_key,
            addrs: ticket.addrs.clone(),
            observer: false,
        };
        let addr = member
            .endpoint_addr()
            .map_err(|e| ClientError::Connect(format!("the ticket's key is invalid: {e}")))?;
        Self::connect_with_key(key, vec![addr]).await
    }

    /// Connects to the first reachable of `members`, with a fresh, throw-away identity: the
    /// access policy sees a stranger. Use [`Self::connect_with_key`] with a key it knows.
    pub async fn connect(members: Vec<EndpointAddr>) -> Result<Self, ClientError> {
        Self::connect_with_key(iroh::SecretKey::generate(), members).await
    }

    /// Connects to the first reachable of `members` as the identity `key` (the endpoint id the
    /// access policy judges; [`load_user_key`](crate::load_user_key) loads the CLI's).
    pub async fn connect_with_key(
        key: iroh::SecretKey,
        members: Vec<EndpointAddr>,
    ) -> Result<Self, ClientError> {
        let endpoint = client_endpoint(key).await?;
        Self::connect_from(endpoint, members).await
    }

    /// Like [`Self::connect`], from an existing endpoint (whose key is the client's identity).
    pub async fn connect_from(
        endpoint: Endpoint,
        members: Vec<EndpointAddr>,
    ) -> Result<Self, ClientError> {
        if members.is_empty() {
            return Err(ClientError::Connect("no member address was given".into()));
        }
        let client = Self {
            endpoint,
            pool: Mutex::new(Pool {
                addresses: members,
                ..Pool::default()
            }),
            session: WriteSession::new(),
        };
        // Learn the membership and the leader now, so the first real call goes to the right node.
        // A refusal (a caller allowed less than `status.read`, a node still catching up) still
        // shows a reachable node: the client works with the addresses it was given.
        match client.get_cluster_status().await {
            Ok(_) | Err(ClientError::Request(_)) => Ok(client),
            Err(error) => {
                // Closed, not dropped: a dropped endpoint aborts noisily.
                client.close().await;
                Err(error)
            }
        }
    }

    /// Closes every connection and the client's endpoint.
    pub async fn close(&self) {
        let pool = self.pool.lock().await;
        for client in pool.open.values() {
            client.close().await;
        }
        self.endpoint.close().await;
    }

    /// A connection to `addr`, reusing an open one.
    async fn connection(&self, addr: &EndpointAddr) -> Result<Arc<Client>, ClientError> {
        if let Some(client) = self.pool.lock().await.open.get(&addr.id) {
            return Ok(client.clone());
        }
        let client = Arc::new(
            tokio::time::timeout(
                CONNECT_TIMEOUT,
                Client::connect_from(self.endpoint.clone(), addr.clone()),
            )
            .await
            .map_err(|_| {
                ClientError::Connect(format!(
                    "no answer from {} within {CONNECT_TIMEOUT:?}",
                    addr.id.fmt_short()
                ))
            })??,
        );
        self.pool.lock().await.open.insert(addr.id, client.clone());
        Ok(client)
    }

    /// Sends `operation`: to the leader when it is known and `to_leader`, else to the first
    /// reachable member. A member that cannot be reached is dropped from the pool and the next
    /// one is tried; errors the cluster answers with are returned as they are.
    async fn send(&self, operation: Operation, to_leader: bool) -> Result<Reply, ClientError> {
        let candidates: Vec<EndpointAddr> = {
            let pool = self.pool.lock().await;
            let leader = pool.leader.clone().filter(|_| to_leader);
            let mut candidates: Vec<EndpointAddr> = leader.into_iter().collect();
            for addr in &pool.addresses {
                if !candidates.iter().any(|c| c.id == addr.id) {
                    candidates.push(addr.clone());
                }
            }
            candidates
        };
        let mut last = None;
        for addr in candidates {
            let client = match self.connection(&addr).await {
                Ok(client) => client,
                Err(error) => {
                    self.demote(&addr).await;
                    last = Some(error);
                    continue;
                }
            };
            let reply = if matches!(operation, Operation::Write { .. }) {
                // A write must not wait on a member that died: its retry goes to another.
                write_session::within_attempt(client.request(operation.clone())).await
            } else {
                client.request(operation.clone()).await
            };
            match reply {
                // A member catching up after it started, or removed: another may serve it.
                Err(ClientError::Request(error)) if !error.another_member_may_serve() => {
                    return Err(ClientError::Request(error));
                }
                Err(error) => {
                    // Unreachable or broken: forget the connection, try the next member.
                    self.demote(&addr).await;
                    last = Some(error);
                }
                Ok(reply) => return Ok(reply),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Connect("no member is reachable".into())))
    }

    /// Forgets the connection to `addr` and tries it last from now on.
    async fn demote(&self, addr: &EndpointAddr) {
        let mut pool = self.pool.lock().await;
        pool.open.remove(&addr.id);
        if pool.leader.as_ref().is_some_and(|l| l.id == addr.id) {
            pool.leader = None;
        }
        if let Some(position) = pool.addresses.iter().position(|a| a.id == addr.id) {
            let moved = pool.addresses.remove(position);
            pool.addresses.push(moved);
        }
    }

    /// Records the membership and leader a status names.
    async fn learn(&self, status: &ClusterStatus) {
        let addresses: Vec<(u64, EndpointAddr)> = status
            .members
            .iter()
            .filter_map(|m| Some((m.node_id, m.member.endpoint_addr().ok()?)))
            .collect();
        let mut pool = self.pool.lock().await;
        pool.leader = status.leader.and_then(|leader| {
            addresses
                .iter()
                .find(|(id, _)| *id == leader)
                .map(|(_, a)| a.clone())
        });
        for (_, addr) in addresses {
            if !pool.addresses.iter().any(|known| known.id == addr.id) {
                pool.addresses.push(addr);
            }
        }
    }

    /// Proposes the state-machine `command` through the leader and waits until it is applied: the
    /// entry's log index and the plugin's response (or its error). A write whose fate is unknown
    /// (a member unreachable, the leader changed) is sent again, to another member if need be, in
    /// the same session slot for up to 30 s: the cluster applies it once.
    pub async fn write(&self, command: Bytes) -> Result<(u64, Result<Bytes, String>), ClientError> {
        write_session::tagged_write(&self.session, command, |operation| {
            self.send(operation, true)
        })
        .await
    }

    /// The cluster as the leader sees it: members with role, health and lag.
    pub async fn get_cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        match self.send(Operation::GetClusterStatus, true).await? {
            Reply::ClusterStatus(status) => {
                self.learn(&status).await;
                Ok(status)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Adds the node at `member` as `node_id` with `role`.
    pub async fn add_member(
        &self,
        node_id: u64,
        member: Member,
        role: MemberRole,
    ) -> Result<MemberOperationResponse, ClientError> {
        let reply = self
            .send(
                Operation::AddMember {
                    node_id,
                    member,
                    role,
                },
                true,
            )
            .await;
        self.member_reply(reply).await
    }

    /// Removes member `node_id` (the leader too: it hands over first).
    pub async fn remove_member(
        &self,
        node_id: u64,
    ) -> Result<MemberOperationResponse, ClientError> {
        let reply = self.send(Operation::RemoveMember { node_id }, true).await;
        self.member_reply(reply).await
    }

    /// Promotes or demotes member `node_id`.
    pub async fn update_member_role(
        &self,
        node_id: u64,
        role: MemberRole,
    ) -> Result<MemberOperationResponse, ClientError> {
        let reply = self
            .send(Operation::UpdateMemberRole { node_id, role }, true)
            .await;
        self.member_reply(reply).await
    }

    async fn member_reply(
        &self,
        reply: Result<Reply, ClientError>,
    ) -> Result<MemberOperationResponse, ClientError> {
        match reply? {
            Reply::Member(response) => {
                // The membership (and perhaps the leader) changed: refresh what the pool knows.
                if let Err(error) = self.get_cluster_status().await {
                    tracing::debug!("refreshing the membership failed: {error}");
                }
                Ok(response)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Hands leadership to `target_node`, or to the most caught-up voter.
    pub async fn transfer_leadership(
        &self,
        target_node: Option<u64>,
    ) -> Result<LeadershipResponse, ClientError> {
        let reply = self
            .send(Operation::TransferLeadership { target_node }, true)
            .await;
        self.leadership_reply(reply).await
    }

    /// The leader hands leadership to the most caught-up voter.
    pub async fn step_down(&self) -> Result<LeadershipResponse, ClientError> {
        let reply = self.send(Operation::StepDown, true).await;
        self.leadership_reply(reply).await
    }

    async fn leadership_reply(
        &self,
        reply: Result<Reply, ClientError>,
    ) -> Result<LeadershipResponse, ClientError> {
        match reply? {
            Reply::Leadership(response) => {
                if let Err(error) = self.get_cluster_status().await {
                    tracing::debug!("refreshing the leader failed: {error}");
                }
                Ok(response)
            }
            other => Err(unexpected(other)),
        }
    }

    /// The cluster configuration in effect.
    pub async fn get_configuration(&self) -> Result<ClusterConfig, ClientError> {
        match self.send(Operation::GetConfiguration, true).await? {
            Reply::Configuration(config) => Ok(config),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces the configuration; `config.version` must be the version in effect. Returns the
    /// configuration as accepted (with its new version).
    pub async fn update_configuration(
        &self,
        config: ClusterConfig,
    ) -> Result<ClusterConfig, ClientError> {
        match self
            .send(Operation::UpdateConfiguration { config }, true)
            .await?
        {
            Reply::Configuration(config) => Ok(config),
            other => Err(unexpected(other)),
        }
    }

    /// A join ticket through the member this client talks to first (it carries the join secret:
    /// judged as `member.add`).
    pub async fn get_join_ticket(&self) -> Result<crate::proto::JoinTicket, ClientError> {
        match self.send(Operation::GetJoinTicket, false).await? {
            Reply::JoinTicket(ticket) => Ok(ticket),
            other => Err(unexpected(other)),
        }
    }

    /// The health of the member this client talks to first.
    pub async fn get_health_status(&self) -> Result<HealthStatus, ClientError> {
        match self.send(Operation::GetHealthStatus, false).await? {
            Reply::Health(health) => Ok(health),
            other => Err(unexpected(other)),
        }
    }

    /// The figures of the member this client talks to first (every category when empty).
    pub async fn get_metrics(
        &self,
        categories: Vec<MetricsCategory>,
    ) -> Result<MetricsSnapshot, ClientError> {
        match self
            .send(Operation::GetMetrics { categories }, false)
            .await?
        {
            Reply::Metrics(metrics) => Ok(*metrics),
            other => Err(unexpected(other)),
        }
    }

    /// Where the leader's log stands.
    pub async fn get_log_info(&self) -> Result<LogInfo, ClientError> {
        match self.send(Operation::GetLogInfo, true).await? {
            Reply::LogInfo(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// Purges the leader's log up to `index` (its snapshot must cover it); the purged index.
    pub async fn compact_log(&self, index: u64) -> Result<u64, ClientError> {
        match self.send(Operation::CompactLog { index }, true).await? {
            Reply::LogCompacted { purged } => Ok(purged),
            other => Err(unexpected(other)),
        }
    }

    /// Entries `start..end` of the leader's log.
    pub async fn get_log_entries(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<LogEntryInfo>, ClientError> {
        match self
            .send(Operation::GetLogEntries { start, end }, true)
            .await?
        {
            Reply::LogEntries(entries) => Ok(entries),
            other => Err(unexpected(other)),
        }
    }

    /// Makes the leader take a snapshot now.
    pub async fn trigger_snapshot(&self) -> Result<SnapshotInfo, ClientError> {
        match self.send(Operation::TriggerSnapshot, true).await? {
            Reply::Snapshot(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// The leader's current snapshot.
    pub async fn get_snapshot_info(&self) -> Result<SnapshotInfo, ClientError> {
        match self.send(Operation::GetSnapshotInfo, true).await? {
            Reply::Snapshot(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: Reply) -> ClientError {
    ClientError::Unexpected(format!("{reply:?}"))
}
