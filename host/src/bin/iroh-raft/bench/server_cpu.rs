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

    /// The CPU microseconds each member's process has used, in member order; an error names the
    /// first member that could not be asked (a sum without it would understate the cost).
    pub(super) async fn read_us(&self) -> Result<Vec<u64>, String> {
        let mut each = Vec::with_capacity(self.members.len());
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
            each.push(process.cpu_user_us + process.cpu_system_us);
        }
        Ok(each)
    }

    /// The CPU the members used between two readings, summed.
    pub(super) fn spent_us(&self, before: &[u64], after: &[u64]) -> Result<u64, String> {
        spent_us(&self.members, before, after)
    }
}

/// The CPU `members` used between the readings `before` and `after`, summed. A member whose
/// counter went down restarted in between: its CPU before the restart is lost, so the sum would
/// understate the cost.
fn spent_us<T>(members: &[(u64, T)], before: &[u64], after: &[u64]) -> Result<u64, String> {
    let mut spent = 0;
    for (((node_id, _), before), after) in members.iter().zip(before).zip(after) {
        spent += after
            .checked_sub(*before)
            .ok_or_else(|| format!("node {node_id} restarted during the run"))?;
    }
    Ok(spent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_that_restarted_makes_the_run_unmeasured() {
        let members = [(1, ()), (2, ()), (3, ())];
        assert_eq!(spent_us(&members, &[10, 20, 30], &[15, 45, 31]), Ok(31));
        let restarted = spent_us(&members, &[10, 20, 30], &[15, 5, 31]);
        assert_eq!(
            restarted,
            Err("node 2 restarted during the run".to_string())
        );
    }
}
