//! What a node does with management operations: writes through raft (a follower forwards to the
//! leader), reads at the requested consistency, and its view of the cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iroh::{Endpoint, EndpointId};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::ForwardToLeader;
use openraft::storage::RaftStateMachine;
use openraft::{Raft, ReadPolicy};

use crate::client::{Client, ClientError};
use crate::net::{Consistency, ManagementService, NodeStatus, Operation, Reply, RequestError};
use crate::raft::{ApplyResponse, LogPayload, Member, StateMachineStore, TypeConfig};
use crate::{EntryError, StateMachineReader};

type C = TypeConfig;

/// How long a write or read may take end to end, forwarding included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A node's management service.
pub(crate) struct NodeService<SM: RaftStateMachine<C>> {
    pub(crate) raft: Raft<C, SM>,
    pub(crate) cluster_id: [u8; 16],
    pub(crate) node_id: u64,
    pub(crate) reader: Arc<Mutex<StateMachineReader>>,
    /// The state machine: its plugin registry and engine, for deploys.
    pub(crate) plugins: StateMachineStore,
    pub(crate) endpoint: Endpoint,
    /// A client connection to the current leader, for forwarding.
    pub(crate) leader: tokio::sync::Mutex<Option<(u64, Arc<Client>)>>,
}

impl<SM: RaftStateMachine<C>> NodeService<SM> {
    async fn write(&self, command: Bytes) -> Result<Reply, RequestError> {
        match self
            .raft
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
            && let Err(error) = self.raft.ensure_linearizable(policy).await
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
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let membership = metrics.membership_config.membership();
        let member = |id: u64| membership.get_node(&id).cloned().map(|m| (id, m));
        NodeStatus {
            cluster_id: self.cluster_id,
            node_id: self.node_id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            voters: membership.voter_ids().filter_map(member).collect(),
            learners: membership.learner_ids().filter_map(member).collect(),
            applied: metrics.last_applied.as_ref().map(|id| id.index),
        }
    }

    /// The leader if it is another node, `None` if it is this one; [`RequestError::NoLeader`]
    /// while none is known (the caller waits for the election).
    pub(crate) fn other_leader(&self) -> Result<Option<u64>, RequestError> {
        let metrics = self.raft.metrics();
        let leader = metrics.borrow_watched().current_leader;
        match leader {
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
        let node = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            metrics
                .membership_config
                .membership()
                .get_node(&leader)
                .cloned()
        };
        let node = node.ok_or(RequestError::NoLeader)?;
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
        let client = self.leader_client(leader, node).await?;
        let result = match operation {
            Operation::Write { command } => client
                .write(command)
                .await
                .map(|(index, outcome)| Reply::Written { index, outcome }),
            Operation::Read { query, consistency } => client
                .read(query, consistency)
                .await
                .map(|outcome| Reply::Read { outcome }),
            Operation::Status => client.status().await.map(Reply::Status),
            Operation::PluginDeploy(request) => {
                client.forward_deploy(request).await.map(Reply::Plugin)
            }
            Operation::PluginList => client
                .plugins()
                .await
                .map(|(registry, bundled)| Reply::Plugins { registry, bundled }),
            Operation::PluginRollback { kind } => {
                client.rollback_plugin(kind).await.map(Reply::Plugin)
            }
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
        {
            return Ok(client.clone());
        }
        let addr = node.endpoint_addr().map_err(|e| {
            RequestError::Unavailable(format!("leader {leader} has an invalid key: {e}"))
        })?;
        let client = Arc::new(
            Client::connect_from(self.endpoint.clone(), addr)
                .await
                .map_err(|e| {
                    RequestError::Unavailable(format!("cannot reach leader {leader}: {e}"))
                })?,
        );
        *cached = Some((leader, client.clone()));
        Ok(client)
    }
}

impl<SM: RaftStateMachine<C>> NodeService<SM> {
    /// Waits until some node is known to lead (an election is a short, normal event).
    async fn leader_known(&self) {
        let mut metrics = self.raft.metrics();
        while metrics.borrow_watched().current_leader.is_none() {
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }
}

impl<SM: RaftStateMachine<C>> ManagementService for NodeService<SM> {
    async fn handle(&self, _peer: EndpointId, operation: Operation) -> Result<Reply, RequestError> {
        let work = async {
            loop {
                let result = match operation.clone() {
                    Operation::Write { command } => self.write(command).await,
                    Operation::Read { query, consistency } => self.read(query, consistency).await,
                    Operation::Status => Ok(Reply::Status(self.status())),
                    Operation::PluginDeploy(request) => self.deploy(request).await,
                    Operation::PluginList => self.plugin_list(),
                    Operation::PluginRollback { kind } => self.rollback(kind).await,
                };
                // No leader: wait for the election rather than fail the client.
                if !matches!(result, Err(RequestError::NoLeader)) {
                    return result;
                }
                self.leader_known().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| {
                Err(RequestError::Unavailable(format!(
                    "no answer within {REQUEST_TIMEOUT:?}; the cluster may have lost its quorum"
                )))
            })
    }
}
