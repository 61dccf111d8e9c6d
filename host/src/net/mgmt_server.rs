//! The receiving side of `iroh-raft-mgmt/0`: reads request frames from each stream, hands each
//! operation to the node's [`ManagementService`], writes exactly one response frame per request.
//! An oversized or undecodable frame gets an error frame and closes that stream only.

use std::future::Future;
use std::sync::Arc;

use iroh::EndpointId;
use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::plugin_upload::Upload;
use super::{read_frame, write_frame};
use crate::events::Subscription;
use crate::proto::{
    ClientFrame, FrameError, HealthStatus, Operation, Reply, RequestError, RequestId, ServerFrame,
    WatchRequest, decode_body, encode_frame,
};
use crate::watch::WatchFeed;

/// Who sent a request: the authenticated peer, and — for a request a member forwards — the
/// client it vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The endpoint id QUIC authenticated.
    pub peer: EndpointId,
    /// The original caller a forwarding member names (`ClientFrame::Forwarded`).
    pub on_behalf_of: Option<EndpointId>,
}

/// What a node does with a management operation. Implemented by the node; kept apart from the
/// protocol so the handler only decodes, delegates and encodes. Every method judges the caller
/// first (the access policy); a refusal is the request's error.
pub trait ManagementService: Send + Sync + 'static {
    /// Whether `caller` may ask `operation` at all: asked before an upload's bytes are read, so
    /// that a refused caller cannot make the node buffer them.
    fn admit(
        &self,
        caller: &Caller,
        operation: &Operation,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;

    /// Serves `operation` for `caller`.
    fn handle(
        &self,
        caller: Caller,
        operation: Operation,
    ) -> impl Future<Output = Result<Reply, RequestError>> + Send;

    /// The node's health, for a health-check frame.
    fn health(
        &self,
        caller: Caller,
    ) -> impl Future<Output = Result<HealthStatus, RequestError>> + Send;

    /// A new event subscription for `caller`, or why it is refused.
    fn subscribe(
        &self,
        caller: Caller,
    ) -> impl Future<Output = Result<Subscription, RequestError>> + Send;

    /// A subscription ended.
    fn unsubscribed(&self);

    /// A new watch for `caller`, or why it is refused.
    fn watch(
        &self,
        caller: Caller,
        request: WatchRequest,
    ) -> impl Future<Output = Result<WatchFeed, RequestError>> + Send;

    /// The largest request frame accepted now.
    fn max_frame(&self) -> usize;

    /// Bumped whenever the access policy in effect changes: a watch is judged again then.
    fn policy_generation(&self) -> u64;

    /// Whether the node is in touch with a leader (it follows one, or a quorum acknowledges it):
    /// a watch on a node out of touch for [`Self::out_of_touch_limit`] ends, rather than fall
    /// silent while the cluster commits changes it does not hear of.
    fn in_touch_with_leader(&self) -> bool;

    /// How long a node may be out of touch with a leader before its watches end: longer than an
    /// election takes.
    fn out_of_touch_limit(&self) -> std::time::Duration;
}

/// How many plugin uploads one connection may have in flight: each buffers up to 16 MiB until it
/// is complete, so without a bound one peer could hold a hundred of them (one per stream).
pub const MAX_UPLOADS_PER_CONNECTION: usize = 2;

/// Serves `iroh-raft-mgmt/0`.
pub struct ManagementServer<S> {
    service: Arc<S>,
}

impl<S> ManagementServer<S> {
    /// A server delegating to `service`.
    pub fn new(service: Arc<S>) -> Self {
        Self { service }
    }
}

impl<S> Clone for ManagementServer<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
        }
    }
}

impl<S> std::fmt::Debug for ManagementServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManagementServer")
    }
}

impl<S: ManagementService> ManagementServer<S> {
    async fn serve_stream(
        self,
        peer: EndpointId,
        uploads: Arc<Semaphore>,
        mut send: SendStream,
        mut recv: RecvStream,
    ) -> Result<(), FrameError> {
        loop {
            let max_frame = self.service.max_frame();
            let body = match read_frame(&mut recv, max_frame).await {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(FrameError::TooLarge { len, max }) => {
                    let frame = ServerFrame::Error(RequestError::TooLarge { len, max });
                    write_frame(&mut send, encode_frame(&frame)?).await?;
                    break;
                }
                Err(error) => return Err(error),
            };
            let (id, caller, operation) = match decode_body::<ClientFrame>(&body) {
                Ok(ClientFrame::Request { id, operation }) => (
                    id,
                    Caller {
                        peer,
                        on_behalf_of: None,
                    },
                    operation,
                ),
                Ok(ClientFrame::Forwarded {
                    id,
                    caller,
                    operation,
                }) => match EndpointId::from_bytes(&caller) {
                    Ok(original) => (
                        id,
                        Caller {
                            peer,
                            on_behalf_of: Some(original),
                        },
                        operation,
                    ),
                    Err(error) => {
                        let error =
                            RequestError::Malformed(format!("the forwarded caller: {error}"));
                        let frame = ServerFrame::Response {
                            id,
                            result: Err(error),
                        };
                        write_frame(&mut send, encode_frame(&frame)?).await?;
                        break;
                    }
                },
                Ok(ClientFrame::HealthCheck { id }) => {
                    let caller = Caller {
                        peer,
                        on_behalf_of: None,
                    };
                    let frame = match self.service.health(caller).await {
                        Ok(health) => ServerFrame::HealthCheck { id, health },
                        Err(error) => ServerFrame::Error(error),
                    };
                    write_frame(&mut send, encode_frame(&frame)?).await?;
                    continue;
                }
                Ok(ClientFrame::Chunk { .. }) => {
                    let error = RequestError::Malformed("a chunk with no upload announced".into());
                    write_frame(&mut send, encode_frame(&ServerFrame::Error(error))?).await?;
                    break;
                }
                Err(error) => {
                    let frame = ServerFrame::Error(RequestError::Malformed(error.to_string()));
                    write_frame(&mut send, encode_frame(&frame)?).await?;
                    break;
                }
            };
            let frame = match operation {
                Operation::Subscribe => {
                    return match self.service.subscribe(caller).await {
                        Ok(subscription) => {
                            let streamed = self.stream_events(id, subscription, send, recv).await;
                            self.service.unsubscribed();
                            streamed
                        }
                        Err(error) => refuse(id, error, send).await,
                    };
                }
                Operation::Watch(request) => {
                    let judged = Operation::Watch(request.clone());
                    return match self.service.watch(caller, request).await {
                        Ok(watch) => {
                            let asked = super::watch_server::Asked {
                                service: &*self.service,
                                caller,
                                operation: judged,
                            };
                            super::watch_server::stream_changes(id, asked, watch, send, recv).await
                        }
                        Err(error) => refuse(id, error, send).await,
                    };
                }
                Operation::PluginDeploy(mut request) => {
                    // Held until the deploy is answered: the bytes stay buffered until then.
                    let mut _held = None;
                    let refusal = match uploads.clone().try_acquire_owned() {
                        Err(_) => Some(RequestError::Refused(format!(
                            "this connection already has {MAX_UPLOADS_PER_CONNECTION} plugin \
                             uploads in flight; send this one when one of them is done"
                        ))),
                        Ok(permit) => {
                            let announced = Operation::PluginDeploy(request.clone());
                            match self.service.admit(&caller, &announced).await {
                                Err(error) => Some(error),
                                Ok(()) => match receive_upload(
                                    &mut recv,
                                    id,
                                    request.size,
                                    request.sha256,
                                    max_frame,
                                )
                                .await
                                {
                                    Ok(wasm) => {
                                        request.wasm = wasm;
                                        _held = Some(permit);
                                        None
                                    }
                                    Err(error) => Some(error),
                                },
                            }
                        }
                    };
                    if let Some(error) = refusal {
                        let frame = ServerFrame::Response {
                            id,
                            result: Err(error),
                        };
                        write_frame(&mut send, encode_frame(&frame)?).await?;
                        break;
                    }
                    ServerFrame::Response {
                        id,
                        result: self
                            .service
                            .handle(caller, Operation::PluginDeploy(request))
                            .await,
                    }
                }
                operation => ServerFrame::Response {
                    id,
                    result: self.service.handle(caller, operation).await,
                },
            };
            write_frame(&mut send, encode_frame(&frame)?).await?;
        }
        send.finish().map_err(|e| FrameError::Stream(e.to_string()))
    }

    /// Sends every event of `subscription` on the stream until the client closes it (finishes,
    /// resets or sends anything more). A client that stops reading only fills its own queue: the
    /// bus drops its oldest events and tells it how many with a `Lagged` event.
    async fn stream_events(
        &self,
        id: RequestId,
        mut subscription: Subscription,
        mut send: SendStream,
        mut recv: RecvStream,
    ) -> Result<(), FrameError> {
        let subscribed = ServerFrame::Response {
            id,
            result: Ok(Reply::Subscribed),
        };
        write_frame(&mut send, encode_frame(&subscribed)?).await?;
        let closed = read_frame(&mut recv, 1024);
        tokio::pin!(closed);
        loop {
            tokio::select! {
                _ = &mut closed => break,
                event = subscription.next_stamped() => {
                    let Some((at_unix_ms, event)) = event else { break };
                    let frame = ServerFrame::Event { id, event, at_unix_ms };
                    write_frame(&mut send, encode_frame(&frame)?).await?;
                }
            }
        }
        send.finish().map_err(|e| FrameError::Stream(e.to_string()))
    }
}

/// Answers request `id` with `error` and finishes the stream.
async fn refuse(
    id: RequestId,
    error: RequestError,
    mut send: SendStream,
) -> Result<(), FrameError> {
    let frame = ServerFrame::Response {
        id,
        result: Err(error),
    };
    write_frame(&mut send, encode_frame(&frame)?).await?;
    send.finish().map_err(|e| FrameError::Stream(e.to_string()))
}

/// Reads the chunks of an announced upload from `recv`.
async fn receive_upload(
    recv: &mut RecvStream,
    id: RequestId,
    size: u64,
    sha256: [u8; 32],
    max_frame: usize,
) -> Result<Bytes, RequestError> {
    let mut upload = Upload::start(id, size, sha256)?;
    while !upload.is_complete() {
        let body = match read_frame(recv, max_frame).await {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(error) => return Err(RequestError::Malformed(format!("upload: {error}"))),
        };
        match decode_body::<ClientFrame>(&body) {
            Ok(ClientFrame::Chunk { id, data }) => upload.push(id, &data)?,
            Ok(
                ClientFrame::Request { .. }
                | ClientFrame::HealthCheck { .. }
                | ClientFrame::Forwarded { .. },
            ) => {
                return Err(RequestError::Malformed(
                    "a request arrived in the middle of an upload".into(),
                ));
            }
            Err(error) => return Err(RequestError::Malformed(error.to_string())),
        }
    }
    upload.finish()
}

impl<S: ManagementService> ProtocolHandler for ManagementServer<S> {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        let uploads = Arc::new(Semaphore::new(MAX_UPLOADS_PER_CONNECTION));
        loop {
            let Ok((send, recv)) = connection.accept_bi().await else {
                return Ok(());
            };
            let (server, uploads) = (self.clone(), uploads.clone());
            tokio::spawn(async move {
                if let Err(error) = server.serve_stream(peer, uploads, send, recv).await {
                    tracing::debug!(peer = %peer.fmt_short(), "management stream failed: {error}");
                }
            });
        }
    }
}
