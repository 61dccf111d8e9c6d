//! The servers' CPU around a measured phase: every member's process CPU time, read over
//! `iroh-raft-metrics/0` before and after, so that a run charges the whole cluster's CPU (not the
//! load generator's) to the operations it ran.

use iroh::{EndpointAddr, SecretKey};
use iroh_raft::proto::{MetricsCategory, Operation, Reply};
use iroh_raft::{Client, MetricsClient};

/// The members whose CPU a run adds up.
pub(super) struct ServerCpu {
    key: SecretKey,
    members: Vec<(u64, EndpointAddr)>,
}

impl ServerCpu {
    /// Every member of the cluster `client` talks to, as its leader lists them.
    pub(super) async fn of_cluster(client: &Client, key: SecretKey) -> Result<Self, String> {
        let status = match client.request(Operation::GetClusterStatus).await {
            Ok(Reply::ClusterStatus(status)) => status,
            Ok(other) => return Err(format!("the node answered the status with {other:?}")),
            Err(error) => return Err(format!("the members could not be listed: {error}")),
        };
        let members = status
            .members
            .iter()
            .map(|m| {
                let addr = m.member.endpoint_addr().map_err(|e| e.to_string())?;
                Ok((m.node_id, addr))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { key, members })
    }

    /// How many members are counted.
    pub(super) fn members(&self) -> usize {
        self.members.len()
    }

    /// The CPU microseconds every member's process has used, summed; an error names the first
    /// member that could not be asked (a sum without it would understate the cost).
    pub(super) async fn total_us(&self) -> Result<u64, String> {
        let mut total = 0;
        for (node_id, addr) in &self.members {
            let asked = async {
                let client =
                    MetricsClient::connect_with_key(self.key.clone(), addr.clone()).await?;
                let figures = client.get(vec![MetricsCategory::Process]).await;
                client.close().await;
                figures
            };
            let process = asked
                .await
                .map_err(|e| format!("node {node_id}'s CPU could not be read: {e}"))?
                .process
                .ok_or_else(|| format!("node {node_id} reports no process figures"))?;
            total += process.cpu_user_us + process.cpu_system_us;
        }
        Ok(total)
    }
}
