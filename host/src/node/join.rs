//! The joining side of `iroh-raft-discovery/0`: ask the ticket's member to be added, follow
//! redirects to the leader, wait out elections, give up with the member's reason if refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use iroh::Endpoint;

use super::{ClusterIdentity, NodeError};
use crate::net::{Admission, discovery_exchange};
use crate::proto::{DiscoveryReply, DiscoveryRequest, JoinReply, JoinRequest, JoinTicket, Member};

/// How long a join keeps trying through elections and unreachable members.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Joins the ticket's cluster (or, with `standby_as`, gets ready to be added by an operator as
/// that id): admits the members' keys and returns this node's identity.
pub(crate) async fn join(
    endpoint: &Endpoint,
    ticket: &JoinTicket,
    addrs: Vec<SocketAddr>,
    standby_as: Option<u64>,
    admission: &Admission,
) -> Result<ClusterIdentity, NodeError> {
    let (node_id, members) = request_join(endpoint, ticket, addrs, standby_as).await?;
    let join_peers: Vec<[u8; 32]> = members.iter().map(|(_, m)| m.endpoint_key).collect();
    for key in &join_peers {
        admission.admit(*key);
    }
    Ok(ClusterIdentity {
        cluster_id: ticket.cluster_id,
        node_id,
        secret: ticket.secret,
        join_peers,
    })
}

/// Asks to join the ticket's cluster; returns the node id and the membership it was given.
async fn request_join(
    endpoint: &Endpoint,
    ticket: &JoinTicket,
    addrs: Vec<SocketAddr>,
    standby_as: Option<u64>,
) -> Result<(u64, Vec<(u64, Member)>), NodeError> {
    let request = JoinRequest {
        cluster_id: ticket.cluster_id,
        secret: ticket.secret,
        node_id: standby_as,
        addrs,
    };
    let mut target = Member {
        endpoint_key: ticket.endpoint_key,
        addrs: ticket.addrs.clone(),
        observer: false,
    };
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let mut last_problem = String::new();
    while Instant::now() < deadline {
        match ask(endpoint, &target, &request).await {
            Ok(JoinReply::Accepted { node_id, members }) => return Ok((node_id, members)),
            Ok(JoinReply::Redirect(leader)) => {
                tracing::info!(leader = %leader, "redirected to the leader");
                target = leader;
                continue;
            }
            Ok(JoinReply::Refused(reason)) => return Err(NodeError::JoinRefused(reason)),
            Ok(JoinReply::NoLeader) => last_problem = "the cluster has no leader".into(),
            Err(problem) => last_problem = problem,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(NodeError::JoinFailed(format!(
        "no member accepted the join within {JOIN_TIMEOUT:?}: {last_problem}"
    )))
}

async fn ask(
    endpoint: &Endpoint,
    target: &Member,
    request: &JoinRequest,
) -> Result<JoinReply, String> {
    let request = DiscoveryRequest::Bootstrap(request.clone());
    match discovery_exchange(endpoint, target, &request, Duration::from_secs(5)).await? {
        DiscoveryReply::Bootstrap(reply) => Ok(reply),
        DiscoveryReply::Refused(reason) => Ok(JoinReply::Refused(reason)),
        DiscoveryReply::Announced(_) => Err(format!("{target} answered a join with an announce")),
    }
}
