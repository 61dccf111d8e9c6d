//! The operations that turn a management stream into a stream of their own: event subscriptions
//! and watches. Each is judged and checked here; the server streams what it returns.

use std::time::{Duration, Instant};

use super::service::NodeService;
use crate::events::Subscription;
use crate::net::{Caller, ManagementService};
use crate::proto::{Operation, RequestError, WatchRequest};
use crate::watch::WatchFeed;

impl NodeService {
    /// A new event subscription for `caller`, or why it is refused.
    pub(crate) async fn open_subscription(
        &self,
        caller: Caller,
    ) -> Result<Subscription, RequestError> {
        self.counters.asked(crate::proto::op::EVENTS_SUBSCRIBE);
        self.judge(&caller, &Operation::Subscribe).await?;
        // A removed node publishes nothing more: the subscriber should follow another member.
        self.gate
            .removal
            .check(self.node_id, &Operation::Subscribe)?;
        self.counters.subscription(true);
        Ok(self.state_machine.events().subscribe())
    }

    /// A new watch for `caller`: judged as `data.read` of the keys it watches, refused when this
    /// node was removed (it applies nothing more), is out of touch with a leader (it would hear
    /// of no new change) or no longer holds the index asked for.
    pub(crate) async fn open_watch(
        &self,
        caller: Caller,
        request: WatchRequest,
    ) -> Result<WatchFeed, RequestError> {
        // Cheap: the keys are shared bytes.
        let operation = Operation::Watch(request.clone());
        self.counters.asked(operation.access().operation());
        self.judge(&caller, &operation).await?;
        self.gate.removal.check(self.node_id, &operation)?;
        self.until_in_touch().await?;
        self.state_machine.state().watch(request)
    }

    /// Waits, up to the out-of-touch limit, for this node to be in touch with a leader (an
    /// election under way ends well within it); refuses if it is not by then.
    async fn until_in_touch(&self) -> Result<(), RequestError> {
        let since = Instant::now();
        let limit = self.out_of_touch_limit();
        while !self.in_touch_with_leader() {
            if since.elapsed() >= limit {
                return Err(RequestError::OutOfTouch {
                    after_ms: since.elapsed().as_millis() as u64,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}
