//! The consistency check an operator runs (`iroh-raft check consistency`, etcd's `endpoint
//! hashkv` aligned by index): ask every member for its capture points, pick the highest index they
//! all hold, ask every member for its state hash there, and decide who differs from the majority.

use std::time::Duration;

use iroh::EndpointAddr;

use super::{IrohRaftManagementClient, unexpected};
use crate::client::ClientError;
use crate::consistency::{ConsistencyReport, MemberHash, common_index, decide};
use crate::proto::{CapturePoints, Operation, Reply, RequestError, StateHash};

/// How long one member may take to answer one question (a member that is behind waits a few
/// seconds for the index before it answers).
const MEMBER_TIMEOUT: Duration = Duration::from_secs(15);
/// How many times the members are asked again when they hold no index in common, or one of them
/// no longer holds the chosen one (its last apply moved on): a busy cluster settles quickly.
const ROUNDS: usize = 3;

impl IrohRaftManagementClient {
    /// Member `addr`'s state hash at applied index `index`.
    pub async fn state_hash(
        &self,
        addr: &EndpointAddr,
        index: u64,
    ) -> Result<StateHash, ClientError> {
        match self
            .ask(
                addr,
                Operation::GetStateHash {
                    at_index: Some(index),
                },
            )
            .await?
        {
            Reply::StateHash(hash) => Ok(hash),
            other => Err(unexpected(other)),
        }
    }

    /// The indexes member `addr` can hash.
    pub async fn capture_points(&self, addr: &EndpointAddr) -> Result<CapturePoints, ClientError> {
        match self
            .ask(addr, Operation::GetStateHash { at_index: None })
            .await?
        {
            Reply::CapturePoints(points) => Ok(points),
            other => Err(unexpected(other)),
        }
    }

    /// Compares every member's state hash at the highest capture point they all hold. The report
    /// names each member's hash, or why it gave none; [`ConsistencyReport::consistent`] says
    /// whether all were reached and agree.
    pub async fn check_consistency(&self) -> Result<ConsistencyReport, ClientError> {
        let status = self.get_cluster_status().await?;
        let members: Vec<(u64, Result<EndpointAddr, String>)> = status
            .members
            .iter()
            .map(|m| {
                let addr = m
                    .member
                    .endpoint_addr()
                    .map_err(|e| format!("its endpoint key is invalid: {e}"));
                (m.node_id, addr)
            })
            .collect();
        let mut report = None;
        for round in 1..=ROUNDS {
            let (this, moved_on) = self.round(&members).await;
            let settled = this.index.is_some() && !moved_on;
            report = Some(this);
            if settled {
                break;
            }
            if round < ROUNDS {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        report.ok_or_else(|| ClientError::Unexpected("no round of the check ran".into()))
    }

    /// One round of the check, and whether a member no longer held the index chosen.
    async fn round(
        &self,
        members: &[(u64, Result<EndpointAddr, String>)],
    ) -> (ConsistencyReport, bool) {
        let mut points = Vec::with_capacity(members.len());
        for (node_id, addr) in members {
            let listed = match addr {
                Ok(addr) => self
                    .capture_points(addr)
                    .await
                    .map(|p| p.indexes)
                    .map_err(|e| e.to_string()),
                Err(reason) => Err(reason.clone()),
            };
            points.push((*node_id, listed));
        }
        let listed: Vec<Vec<u64>> = points
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok().cloned())
            .collect();
        let Some(index) = common_index(&listed) else {
            let report = ConsistencyReport {
                index: None,
                points,
                members: Vec::new(),
                verdict: None,
            };
            return (report, false);
        };
        let mut moved_on = false;
        let mut hashes = Vec::with_capacity(members.len());
        for ((node_id, addr), (_, listed)) in members.iter().zip(&points) {
            let outcome = match (addr, listed) {
                (Err(reason), _) | (_, Err(reason)) => Err(reason.clone()),
                (Ok(addr), Ok(_)) => match self.state_hash(addr, index).await {
                    Ok(hash) => Ok(hash.hash),
                    Err(error) => {
                        moved_on |= matches!(
                            error,
                            ClientError::Request(RequestError::NoStateCapture { .. })
                        );
                        Err(error.to_string())
                    }
                },
            };
            hashes.push(MemberHash {
                node_id: *node_id,
                outcome,
            });
        }
        let answers: Vec<(u64, Option<[u8; 32]>)> = hashes
            .iter()
            .map(|m| (m.node_id, m.outcome.as_ref().ok().copied()))
            .collect();
        let report = ConsistencyReport {
            index: Some(index),
            points,
            members: hashes,
            verdict: Some(decide(index, &answers)),
        };
        (report, moved_on)
    }

    /// Sends `operation` to the member at `addr` itself (no failover: the answer must be its own).
    async fn ask(&self, addr: &EndpointAddr, operation: Operation) -> Result<Reply, ClientError> {
        let mut redialled = false;
        loop {
            let client = self.connection(addr).await?;
            match tokio::time::timeout(MEMBER_TIMEOUT, client.request(operation.clone())).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(ClientError::Request(error))) => return Err(ClientError::Request(error)),
                Ok(Err(error)) => {
                    // A cached connection to a member that restarted is dead: dial once more.
                    self.pool.lock().await.open.remove(&addr.id);
                    if redialled {
                        return Err(error);
                    }
                    redialled = true;
                }
                Err(_) => {
                    return Err(ClientError::Request(RequestError::TimedOut {
                        after_ms: MEMBER_TIMEOUT.as_millis() as u64,
                    }));
                }
            }
        }
    }
}
