//! [`Client`]: the application's handle on a cluster over `iroh-raft-mgmt/0`. Writes go to any
//! member (a follower forwards them to the leader); reads choose their consistency.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::{Endpoint, EndpointAddr};

use crate::hash::sha256;
use crate::net::{NetError, read_frame, write_frame};
use crate::proto::{
    ClientFrame, ClusterEvent, Consistency, DeployRequest, FrameError, HealthStatus, NodeStatus,
    Operation, PluginKind, PluginOutcome, PluginRecord, PluginRegistry, Reply, RequestError,
    RequestId, ServerFrame, UPLOAD_CHUNK, WatchEnd, alpn, decode_body, encode_frame,
};
use crate::write_session::{self, WriteSession};

mod connect;
mod watch_stream;
pub(crate) use connect::client_endpoint;
pub use watch_stream::WatchStream;
pub(crate) use watch_stream::{ChangeBatches, change_stream};

/// A client request that did not get a reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node could not be reached.
    #[error("cannot reach the node: {0}")]
    Connect(String),
    /// The node answered with an error.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The exchange broke.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The endpoint could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The node replied with something that does not answer the request.
    #[error("the node sent an unexpected reply: {0}")]
    Unexpected(String),
    /// The node ended a watch.
    #[error(transparent)]
    WatchEnded(WatchEnd),
}

/// A per-client tag for request ids, from the process's hasher seed and the clock (not a secret).
fn rand_tag() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Told `(bytes sent, total)` as an upload progresses.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

/// A connection to one node of a cluster. Writes carry the client's session, and one whose fate
/// is unknown (the connection broke, the leader changed) is sent again, reconnecting if need be:
/// the cluster applies it once.
pub struct Client {
    endpoint: Endpoint,
    node: EndpointAddr,
    connection: std::sync::Mutex<Connection>,
    session: WriteSession,
    next_id: AtomicU64,
    /// The first half of every request id: tells this client's requests from others' in logs.
    client_tag: u64,
    /// Whether the endpoint is the client's own (closed with it) or borrowed from a node.
    owns_endpoint: bool,
}

impl Client {
    /// Closes the connection, and the client's own endpoint if it has one.
    pub async fn close(&self) {
        self.current().close(0u32.into(), b"client done");
        if self.owns_endpoint {
            self.endpoint.close().await;
        }
    }

    /// Whether the connection is gone (the node closed it, or it timed out).
    pub fn is_closed(&self) -> bool {
        self.current().close_reason().is_some()
    }

    fn current(&self) -> Connection {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The connection, dialled again if it broke (unless the client was closed).
    async fn connection(&self) -> Result<Connection, ClientError> {
        let current = self.current();
        match current.close_reason() {
            None => return Ok(current),
            Some(iroh::endpoint::ConnectionError::LocallyClosed) => {
                return Err(ClientError::Unexpected("the client was closed".into()));
            }
            Some(_) => {}
        }
        let fresh = self
            .endpoint
            .connect(self.node.clone(), alpn::MANAGEMENT)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        *self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }

    /// This client's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Proposes `command` and waits until it is applied: the entry's log index and the plugin's
    /// response (or its error). A write whose fate is unknown is sent again, in the same session
    /// slot, for up to 30 s: it is applied once, and a repeat returns the first index and result.
    pub async fn write(&self, command: Bytes) -> Result<(u64, Result<Bytes, String>), ClientError> {
        write_session::tagged_write(&self.session, command, |operation| {
            write_session::within_attempt(self.request(operation))
        })
        .await
    }

    /// Asks the state machine `query` at the given consistency.
    pub async fn read(
        &self,
        query: Bytes,
        consistency: Consistency,
    ) -> Result<Result<Bytes, String>, ClientError> {
        match self.request(Operation::Read { query, consistency }).await? {
            Reply::Read { outcome } => Ok(outcome),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The node's view of the cluster.
    pub async fn status(&self) -> Result<NodeStatus, ClientError> {
        match self.request(Operation::Status).await? {
            Reply::Status(status) => Ok(status),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The node's health, from a health-check frame (answered by the node itself).
    pub async fn health_check(&self) -> Result<HealthStatus, ClientError> {
        let id = self.next_request_id();
        let (mut send, mut recv) = self.open().await?;
        write_frame(&mut send, encode_frame(&ClientFrame::HealthCheck { id })?).await?;
        send.finish()
            .map_err(|e| FrameError::Stream(e.to_string()))?;
        match read_reply(&mut recv).await? {
            ServerFrame::HealthCheck { id: echoed, health } if echoed == id => Ok(health),
            ServerFrame::Error(error) => Err(error.into()),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Deploys the plugin `wasm` as `kind` through the raft log: the bytes stream to the node in
    /// chunks (`progress(sent, total)` is called after each), the leader validates the component
    /// against the world of `kind` and replicates it, and every replica activates it at the same
    /// index. Returns where it took effect, or that the same plugin was already active. A refusal
    /// (invalid component, wrong world, a `migrate` that failed) is
    /// `ClientError::Request(RequestError::PluginRefused(reason))`, and the old plugin stays.
    pub async fn deploy_plugin(
        &self,
        kind: PluginKind,
        wasm: Bytes,
        version: &str,
        config: Bytes,
        progress: Progress<'_>,
    ) -> Result<PluginOutcome, ClientError> {
        let request = DeployRequest {
            kind,
            version: version.to_string(),
            config,
            sha256: sha256(&wasm),
            size: wasm.len() as u64,
            wasm: Bytes::new(),
        };
        let reply = self
            .exchange(
                Operation::PluginDeploy(request),
                Some((wasm, progress)),
                None,
            )
            .await?;
        match reply {
            Reply::Plugin(outcome) => Ok(outcome),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Forwards `operation` on behalf of `caller` (a member relaying a client's request to the
    /// leader; only members may). A deploy's bytes, already in memory, stream on as chunks.
    pub(crate) async fn forward(
        &self,
        caller: iroh::EndpointId,
        operation: Operation,
    ) -> Result<Reply, ClientError> {
        let caller = *caller.as_bytes();
        match operation {
            Operation::PluginDeploy(mut request) => {
                let wasm = std::mem::take(&mut request.wasm);
                self.exchange(
                    Operation::PluginDeploy(request),
                    Some((wasm, &mut |_, _| {})),
                    Some(caller),
                )
                .await
            }
            operation => self.exchange(operation, None, Some(caller)).await,
        }
    }

    /// The plugins as the node has applied them: the active one per kind with hash, version,
    /// activation index, rollback targets and history; and the bundled state machine.
    pub async fn plugins(&self) -> Result<(PluginRegistry, Option<PluginRecord>), ClientError> {
        match self.request(Operation::PluginList).await? {
            Reply::Plugins { registry, bundled } => Ok((registry, bundled)),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Reactivates the previous plugin of `kind`, through the log.
    pub async fn rollback_plugin(&self, kind: PluginKind) -> Result<PluginOutcome, ClientError> {
        match self.request(Operation::PluginRollback { kind }).await? {
            Reply::Plugin(outcome) => Ok(outcome),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Sends `operation` and waits for its reply, on a stream of its own so concurrent requests
    /// never wait on each other.
    pub async fn request(&self, operation: Operation) -> Result<Reply, ClientError> {
        self.exchange(operation, None, None).await
    }

    /// One request (forwarded on behalf of `caller`, if given), followed by the chunks of
    /// `upload` if any.
    async fn exchange(
        &self,
        operation: Operation,
        upload: Option<(Bytes, Progress<'_>)>,
        caller: Option<[u8; 32]>,
    ) -> Result<Reply, ClientError> {
        let id = self.next_request_id();
        let (mut send, mut recv) = self.open().await?;
        let frame = match caller {
            Some(caller) => ClientFrame::Forwarded {
                id,
                caller,
                operation,
            },
            None => ClientFrame::Request { id, operation },
        };
        let sent = async {
            write_frame(&mut send, encode_frame(&frame)?).await?;
            if let Some((bytes, progress)) = upload {
                let total = bytes.len() as u64;
                let mut sent = 0;
                while sent < bytes.len() {
                    let end = (sent + UPLOAD_CHUNK).min(bytes.len());
                    let data = bytes.slice(sent..end);
                    write_frame(&mut send, encode_frame(&ClientFrame::Chunk { id, data })?).await?;
                    sent = end;
                    progress(sent as u64, total);
                }
            }
            send.finish().map_err(|e| FrameError::Stream(e.to_string()))
        }
        .await;
        match sent {
            Ok(()) => expect_response(id, read_reply(&mut recv).await?),
            // The node may have stopped reading because it refused the frame: it says why.
            Err(error) => match read_reply(&mut recv).await {
                Ok(frame) => expect_response(id, frame),
                Err(_) => Err(error.into()),
            },
        }
    }

    /// Opens an event subscription on this node: the events it observes from now on, in order.
    pub async fn subscribe(&self) -> Result<EventStream, ClientError> {
        let (id, send, recv, reply) = self.open_stream(Operation::Subscribe).await?;
        match reply {
            Reply::Subscribed => Ok(EventStream {
                id,
                _send: send,
                recv,
            }),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Sends `operation` on a stream of its own and reads the reply that opens what follows on
    /// it (a subscription, a watch).
    pub(crate) async fn open_stream(
        &self,
        operation: Operation,
    ) -> Result<(RequestId, SendStream, RecvStream, Reply), ClientError> {
        let id = self.next_request_id();
        let (mut send, mut recv) = self.open().await?;
        write_frame(
            &mut send,
            encode_frame(&ClientFrame::Request { id, operation })?,
        )
        .await?;
        let reply = expect_response(id, read_reply(&mut recv).await?)?;
        Ok((id, send, recv, reply))
    }

    fn next_request_id(&self) -> RequestId {
        let mut id: RequestId = [0; 16];
        id[..8].copy_from_slice(&self.client_tag.to_be_bytes());
        id[8..].copy_from_slice(&self.next_id.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        id
    }

    async fn open(&self) -> Result<(SendStream, RecvStream), ClientError> {
        self.connection()
            .await?
            .open_bi()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))
    }
}

async fn read_reply(recv: &mut RecvStream) -> Result<ServerFrame, ClientError> {
    let body = read_frame(recv, alpn::MAX_MANAGEMENT_FRAME)
        .await?
        .ok_or_else(|| {
            ClientError::Unexpected("the node closed the stream without replying".into())
        })?;
    Ok(decode_body::<ServerFrame>(&body)?)
}

fn expect_response(id: RequestId, frame: ServerFrame) -> Result<Reply, ClientError> {
    match frame {
        ServerFrame::Response { id: echoed, result } if echoed == id => Ok(result?),
        ServerFrame::Error(error) => Err(error.into()),
        other => Err(ClientError::Unexpected(format!(
            "expected the reply to request {}, got {other:?}",
            hex::encode(id)
        ))),
    }
}

/// The events of one subscription. Dropping it closes the subscription.
pub struct EventStream {
    id: RequestId,
    _send: SendStream,
    recv: RecvStream,
}

impl EventStream {
    /// The next event; `Ok(None)` when the node ended the subscription (it shut down).
    pub async fn next(&mut self) -> Result<Option<ClusterEvent>, ClientError> {
        Ok(self.next_stamped().await?.map(|(_, event)| event))
    }

    /// Like [`Self::next`], with when the node published the event (milliseconds since the Unix
    /// epoch, by the node's clock).
    pub async fn next_stamped(&mut self) -> Result<Option<(u64, ClusterEvent)>, ClientError> {
        let Some(body) = read_frame(&mut self.recv, alpn::MAX_MANAGEMENT_FRAME).await? else {
            return Ok(None);
        };
        match decode_body::<ServerFrame>(&body)? {
            ServerFrame::Event {
                id,
                event,
                at_unix_ms,
            } if id == self.id => Ok(Some((at_unix_ms, event))),
            ServerFrame::Error(error) => Err(error.into()),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The events as a [`Stream`](futures_util::Stream); it ends when the subscription does, or after an error.
    pub fn into_stream(self) -> BoxStream<'static, Result<ClusterEvent, ClientError>> {
        futures_util::stream::unfold(Some(self), |state| async move {
            let mut events = state?;
            match events.next().await {
                Ok(Some(event)) => Some((Ok(event), Some(events))),
                Ok(None) => None,
                Err(error) => Some((Err(error), None)),
            }
        })
        .boxed()
    }
}
