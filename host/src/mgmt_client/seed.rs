//! Connecting from one seed: a member's address or a join ticket. The seed is asked for the
//! cluster's members and leader on `iroh-raft-discovery/0` (`QueryCluster`, judged like
//! `GetClusterStatus`), and the client then keeps connections to all of them, failing over when
//! one dies.

use std::time::Duration;

use iroh::{EndpointAddr, SecretKey};

use super::IrohRaftManagementClient;
use crate::client::{ClientError, client_endpoint};
use crate::net::{discovery_exchange, parse_node_address};
use crate::proto::{ClusterInfo, DiscoveryReply, DiscoveryRequest, JoinTicket, Member};

/// How long the seed may take to answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

impl IrohRaftManagementClient {
    /// Connects as `key` to the cluster that `seed` (a member's `<endpoint-id>@<ip:port>` or a
    /// join ticket, whose cluster id is then checked; its secret is never sent) belongs to: learns
    /// every member and the leader from the seed, and uses all of them from then on.
    pub async fn connect_to_cluster(key: SecretKey, seed: &str) -> Result<Self, ClientError> {
        let cluster_id = if seed.trim().starts_with("irohraft1") {
            let ticket: JoinTicket = seed
                .trim()
                .parse()
                .map_err(|e| ClientError::Connect(format!("not a join ticket: {e}")))?;
            Some(ticket.cluster_id)
        } else {
            None
        };
        let seed = parse_node_address(seed).map_err(ClientError::Connect)?;
        let endpoint = client_endpoint(key).await?;
        let info = match query_cluster(&endpoint, &seed, cluster_id).await {
            Ok(info) => info,
            Err(error) => {
                endpoint.close().await;
                return Err(error);
            }
        };
        let seed_id = seed.id;
        let mut members = vec![seed];
        members.extend(
            info.members
                .iter()
                .filter_map(|(_, member)| member.endpoint_addr().ok())
                .filter(|addr| addr.id != seed_id),
        );
        Self::connect_from(endpoint, members).await
    }

    /// Every member address the client knows now, the ones that answer first.
    pub async fn members(&self) -> Vec<EndpointAddr> {
        self.pool.lock().await.addresses.clone()
    }
}

/// Asks `seed` for the members and leader of `cluster_id` (`None`: its own cluster).
async fn query_cluster(
    endpoint: &iroh::Endpoint,
    seed: &EndpointAddr,
    cluster_id: Option<[u8; 16]>,
) -> Result<ClusterInfo, ClientError> {
    let target = Member::at(seed);
    let request = DiscoveryRequest::QueryCluster { cluster_id };
    match discovery_exchange(endpoint, &target, &request, QUERY_TIMEOUT)
        .await
        .map_err(ClientError::Connect)?
    {
        DiscoveryReply::ClusterInfo(info) => Ok(info),
        DiscoveryReply::Error(error) => Err(ClientError::Request(error)),
        DiscoveryReply::Refused(reason) => Err(ClientError::Connect(reason)),
        other => Err(ClientError::Unexpected(format!("{other:?}"))),
    }
}
