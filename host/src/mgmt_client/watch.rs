//! Watching keys through the first member that takes the watch, resuming on another member when
//! the one serving it cannot be reached.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use iroh::{Endpoint, EndpointAddr};

use super::{CONNECT_TIMEOUT, IrohRaftManagementClient};
use crate::client::{ChangeBatches, Client, ClientError, WatchStream, change_stream};
use crate::proto::{FrameError, RequestError, WatchChange, WatchEnd, WatchRequest};

/// How many times a watch goes round the members before it gives up resuming.
const RESUME_ROUNDS: u32 = 5;

impl IrohRaftManagementClient {
    /// Every change to the keys `request` names, from its index (or from the next one applied),
    /// in log order, as a stream. When the member serving it cannot be reached any more, the
    /// watch resumes on another member from the index after the last one delivered: no change
    /// is lost or repeated. It ends with the error that stopped it:
    /// [`ClientError::WatchEnded`] when the member ended it (it fell behind: watch again from the
    /// index it names), [`RequestError::Compacted`] when no member holds the index any more
    /// (each is asked), or the last connection error once no member answers.
    pub async fn watch(
        &self,
        request: WatchRequest,
    ) -> Result<BoxStream<'static, Result<WatchChange, ClientError>>, ClientError> {
        let addresses = self.pool.lock().await.addresses.clone();
        let mut last = None;
        for (position, addr) in addresses.iter().enumerate() {
            let opened = match self.connection(addr).await {
                Ok(client) => client
                    .watch(request.clone())
                    .await
                    .map(|watch| (client, watch)),
                Err(error) => Err(error),
            };
            match opened {
                Ok((client, watch)) => {
                    let resuming = Resuming {
                        endpoint: self.endpoint.clone(),
                        addresses,
                        serving: position,
                        request,
                        _client: client,
                        watch,
                    };
                    return Ok(change_stream(resuming));
                }
                Err(error) if resumable(&error) => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Connect("no member is reachable".into())))
    }
}

/// Whether a watch that failed with `error` may go on elsewhere: the member or the way to it
/// failed, not the watch.
fn resumable(error: &ClientError) -> bool {
    match error {
        ClientError::Connect(_) | ClientError::Net(_) => true,
        ClientError::Frame(FrameError::Stream(_) | FrameError::Truncated { .. }) => true,
        // Another member may hold it: one that installed a snapshot keeps less history.
        ClientError::Request(RequestError::Compacted { .. }) => true,
        ClientError::WatchEnded(WatchEnd::Removed | WatchEnd::LostLeader { .. }) => true,
        ClientError::Request(error) => error.another_member_may_serve(),
        _ => false,
    }
}

/// A watch and what it needs to resume.
struct Resuming {
    endpoint: Endpoint,
    addresses: Vec<EndpointAddr>,
    /// The position in `addresses` of the member serving it.
    serving: usize,
    request: WatchRequest,
    /// Keeps the connection the watch runs on open.
    _client: Arc<Client>,
    watch: WatchStream,
}

impl ChangeBatches for Resuming {
    /// The next changes, from whichever member serves the watch now.
    async fn next_batch(&mut self) -> Result<Vec<WatchChange>, ClientError> {
        match self.watch.next().await {
            Err(error) if resumable(&error) => {
                tracing::debug!("the watch broke ({error}); resuming on another member");
                self.resume(error).await?;
                Ok(Vec::new())
            }
            other => other,
        }
    }
}

impl Resuming {
    /// Opens the watch again from where it stopped, on the next member that takes it.
    async fn resume(&mut self, mut last: ClientError) -> Result<(), ClientError> {
        let mut request = self.request.clone();
        request.from_index = Some(self.watch.resume_from());
        let members = self.addresses.len();
        for attempt in 1..=members * RESUME_ROUNDS as usize {
            let position = (self.serving + attempt) % members;
            let addr = self.addresses[position].clone();
            let opened = match tokio::time::timeout(
                CONNECT_TIMEOUT,
                Client::connect_from(self.endpoint.clone(), addr),
            )
            .await
            {
                Err(_) => Err(ClientError::Connect("no answer in time".into())),
                Ok(Ok(client)) => {
                    let client = Arc::new(client);
                    client
                        .watch(request.clone())
                        .await
                        .map(|watch| (client, watch))
                }
                Ok(Err(error)) => Err(error),
            };
            match opened {
                Ok((client, watch)) => {
                    self.serving = position;
                    self._client = client;
                    self.watch = watch;
                    return Ok(());
                }
                Err(error) if resumable(&error) => last = error,
                Err(error) => return Err(error),
            }
            if attempt % members == 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Err(last)
    }
}
