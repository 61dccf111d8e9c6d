//! [`LeaderLink`]: how a node reaches the leader. Every operation whose [`Route`] is the leader
//! (writes, linearizable and lease reads, members, leadership, configuration, deploys, rollbacks)
//! goes through it when this node does not lead, over one cached connection. A raft call that
//! finds this node is no longer the leader ([`not_leader`]) answers `NoLeader`, and the request is
//! routed again once the election is over: one rule, in one place.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use iroh::{Endpoint, EndpointId};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ForwardToLeader, RaftError};

use super::inspect::View;
use crate::client::{Client, ClientError};
use crate::metrics::ManagementCounters;
use crate::proto::{Member, Operation, Reply, RequestError, Route, TypeConfig};
use crate::raft::{SharedRaft, StateMachineStore};

type C = TypeConfig;

/// How long dialling the leader to forward a request may take.
const LEADER_DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Forwarding to the leader: the cached connection and the forwarded-request counter.
pub(crate) struct LeaderLink {
    endpoint: Endpoint,
    node_id: u64,
    /// Watched while a request is on its way: a new leader means the old one will not answer.
    raft: SharedRaft<StateMachineStore>,
    cached: tokio::sync::Mutex<Option<(u64, Arc<Client>)>>,
    counters: Arc<ManagementCounters>,
}

/// Where an operation goes from this node, given its route and who leads: `None` to serve it
/// here, `Some(Ok(leader))` to forward it, `Some(Err(NoLeader))` while no leader is known.
pub(crate) fn destination(
    route: Route,
    view: &View,
) -> Option<Result<(u64, Member), RequestError>> {
    if route == Route::Local || view.is_leader() {
        return None;
    }
    Some(
        view.leader
            .filter(|leader| *leader != view.node_id)
            .and_then(|id| Some((id, view.members.get(&id)?.clone())))
            .ok_or(RequestError::NoLeader),
    )
}

/// Whether `operation` changes nothing, so that sending it again to a new leader is harmless.
pub(crate) fn safe_to_resend(operation: &Operation) -> bool {
    use Operation::*;
    matches!(
        operation,
        Read { .. }
            | Status
            | GetClusterStatus
            | GetConfiguration
            | GetHealthStatus
            | GetMetrics { .. }
            | GetLogInfo
            | GetLogEntries { .. }
            | GetSnapshotInfo
            | PluginList
            | GetStateHash { .. }
            | ListBackups
            | ReadBackup { .. }
    )
}

/// `Some(NoLeader)` when a raft call failed because this node does not lead (any more): the
/// request is then routed again to whoever leads once the election is over.
pub(crate) fn not_leader<E>(error: &RaftError<C, E>) -> Option<RequestError>
where
    E: std::error::Error + openraft::TryAsRef<ForwardToLeader<C>> + 'static,
{
    error.forward_to_leader().map(|_| RequestError::NoLeader)
}

impl LeaderLink {
    pub(crate) fn new(
        endpoint: Endpoint,
        node_id: u64,
        raft: SharedRaft<StateMachineStore>,
        counters: Arc<ManagementCounters>,
    ) -> Self {
        Self {
            endpoint,
            node_id,
            raft,
            cached: tokio::sync::Mutex::new(None),
            counters,
        }
    }

    /// Closes the cached connection to the leader, if any.
    pub(crate) async fn close(&self) {
        if let Some((_, client)) = self.cached.lock().await.take() {
            client.close().await;
        }
    }

    /// `None` when this node serves `operation` itself; otherwise the leader's answer to it,
    /// asked on behalf of `caller`.
    pub(crate) async fn route(
        &self,
        view: &View,
        caller: EndpointId,
        operation: &Operation,
    ) -> Option<Result<Reply, RequestError>> {
        Some(match destination(operation.route(), view)? {
            Ok((leader, member)) => {
                self.forward(leader, &member, caller, operation.clone())
                    .await
            }
            Err(error) => Err(error),
        })
    }

    /// Sends `operation` to the leader on behalf of `caller` and relays its reply.
    async fn forward(
        &self,
        leader: u64,
        member: &Member,
        caller: EndpointId,
        operation: Operation,
    ) -> Result<Reply, RequestError> {
        if leader == self.node_id {
            return Err(RequestError::NoLeader);
        }
        self.counters.forwarded();
        let client = self.client(leader, member).await?;
        // A leader replaced while this node dialled it: nothing was sent, route again.
        if self.leader_moved_from(leader).now_or_never().is_some() {
            return Err(RequestError::NoLeader);
        }
        // A deploy's bytes are already here: they stream on to the leader the same way.
        let resend = safe_to_resend(&operation);
        let result = tokio::select! {
            biased;
            result = client.forward(caller, operation) => result,
            () = self.leader_moved_from(leader) => {
                // A leader replaced while the request waited on it (it died with it): forget its
                // connection. A read goes to the new leader; a change may have been made, so its
                // outcome is the client's to check (a write is resent in its session slot).
                let mut cached = self.cached.lock().await;
                if cached.as_ref().is_some_and(|(id, _)| *id == leader) {
                    *cached = None;
                }
                return Err(if resend {
                    RequestError::NoLeader
                } else {
                    RequestError::ForwardFailed {
                        leader,
                        reason: "a new leader was elected while the request was on its way; \
                                 whether it took effect is unknown: check, then retry"
                            .into(),
                    }
                });
            }
        };
        result.map_err(|error| {
            if !matches!(error, ClientError::Request(_)) {
                // The connection may be stale: dial again next time.
                if let Ok(mut cached) = self.cached.try_lock() {
                    *cached = None;
                }
            }
            match error {
                ClientError::Request(error) => error,
                other => RequestError::ForwardFailed {
                    leader,
                    reason: other.to_string(),
                },
            }
        })
    }

    /// Resolves once this node knows of a leader other than `leader`.
    async fn leader_moved_from(&self, leader: u64) {
        let raft = self.raft.get();
        let mut metrics = raft.metrics();
        loop {
            if metrics
                .borrow_watched()
                .current_leader
                .is_some_and(|now| now != leader)
            {
                return;
            }
            if metrics.changed().await.is_err() {
                // This core was replaced or stopped: the request's own deadline decides.
                return std::future::pending().await;
            }
        }
    }

    /// The cached connection to `leader`, dialled if there is none.
    async fn client(&self, leader: u64, member: &Member) -> Result<Arc<Client>, RequestError> {
        let mut cached = self.cached.lock().await;
        if let Some((id, client)) = cached.as_ref()
            && *id == leader
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        let addr = member
            .endpoint_addr()
            .map_err(|e| RequestError::ForwardFailed {
                leader,
                reason: format!("its endpoint key is invalid: {e}"),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_a_step_down_forwarded_to_a_dying_leader_was_sent_again_to_the_next() {
        // Changes are not resent behind the client's back: their outcome is unknown.
        assert!(!safe_to_resend(&Operation::StepDown));
        assert!(!safe_to_resend(&Operation::TransferLeadership {
            target_node: Some(2)
        }));
        assert!(!safe_to_resend(&Operation::RemoveMember { node_id: 3 }));
        assert!(!safe_to_resend(&Operation::PluginRollback {
            kind: crate::proto::PluginKind::StateMachine
        }));
        assert!(!safe_to_resend(&Operation::Write {
            command: bytes::Bytes::new(),
            session: None
        }));
        // Reads are.
        assert!(safe_to_resend(&Operation::GetClusterStatus));
        assert!(safe_to_resend(&Operation::Read {
            query: bytes::Bytes::new(),
            consistency: crate::proto::Consistency::Linearizable
        }));
    }
}
