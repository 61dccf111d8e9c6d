//! Subscribing to the cluster's events through the first member that takes the subscription.

use futures_util::stream::BoxStream;

use super::IrohRaftManagementClient;
use crate::client::ClientError;
use crate::proto::ClusterEvent;

impl IrohRaftManagementClient {
    /// The events the first reachable member observes from now on, in order. A subscriber that
    /// falls behind gets a `Lagged` event saying how many it missed.
    pub async fn subscribe_to_events(
        &self,
    ) -> Result<BoxStream<'static, Result<ClusterEvent, ClientError>>, ClientError> {
        let addresses = self.pool.lock().await.addresses.clone();
        let mut last = None;
        for addr in addresses {
            match self.connection(&addr).await {
                Ok(client) => match client.subscribe().await {
                    Ok(events) => return Ok(events.into_stream()),
                    Err(error) => last = Some(error),
                },
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Connect("no member is reachable".into())))
    }
}
