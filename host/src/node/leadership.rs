//! Handing leadership over: only to a voter that is caught up and answering (see
//! [`inspect::transfer_target`]), timed from the request until the new leader is in office.

use openraft::async_runtime::WatchReceiver;
use std::time::{Duration, Instant};

use super::inspect::{self, View};
use super::service::NodeService;
use crate::proto::{LeadershipResponse, Reply, RequestError};

/// How long the new leader may take to take office.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);

impl NodeService {
    /// Hands leadership to `target`, or to the most caught-up voter.
    pub(crate) async fn transfer_leadership(
        &self,
        target: Option<u64>,
    ) -> Result<Reply, RequestError> {
        let started = Instant::now();
        let view = View::of(&self.raft());
        if !view.is_leader() {
            return Err(RequestError::NoLeader);
        }
        let target = inspect::transfer_target(&view, target, self.unreachable_after()).map_err(
            |reason| match target {
                Some(node_id) if view.role(node_id).is_none() => {
                    RequestError::UnknownMember { node_id }
                }
                _ => RequestError::TransferRefused(reason),
            },
        )?;
        self.raft()
            .trigger()
            .transfer_leader(target)
            .await
            .map_err(|e| RequestError::RaftStopped {
                reason: e.to_string(),
            })?;
        let mut metrics = self.raft().metrics();
        let deadline = tokio::time::Instant::now() + TRANSFER_TIMEOUT;
        loop {
            let now = View::of(&self.raft());
            if now.leader == Some(target) {
                return Ok(Reply::Leadership(LeadershipResponse {
                    previous_leader: view.node_id,
                    new_leader: target,
                    term: now.term,
                    transfer_duration: started.elapsed(),
                }));
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return Err(RequestError::TransferTimedOut {
                    target,
                    leader: now.leader,
                    after_ms: TRANSFER_TIMEOUT.as_millis() as u64,
                });
            }
        }
    }
}
