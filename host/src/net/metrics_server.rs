//! The receiving side of `iroh-raft-metrics/0`: one [`MetricsRequest`] per stream, judged by the
//! node's [`MetricsService`] (the access policy, as `metrics.read`), answered with one snapshot
//! (`Get`) or a snapshot per interval until the client closes the stream (`Subscribe`). An
//! oversized or undecodable request gets an error frame and closes that stream only.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use iroh::EndpointId;
use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};

use super::{read_frame, write_frame};
use crate::proto::{
    FrameError, MetricsCategory, MetricsReply, MetricsRequest, MetricsSnapshot, RequestError, alpn,
    decode_body, encode_frame, subscribe_interval_ms,
};

/// What a node does with metrics requests. Implemented by the node; kept apart from the protocol
/// so the handler only decodes, delegates and encodes.
pub trait MetricsService: Send + Sync + 'static {
    /// Whether `caller` may read metrics (judged as `metrics.read`; a refusal is the error).
    fn admit(&self, caller: EndpointId) -> impl Future<Output = Result<(), RequestError>> + Send;

    /// The figures of `categories` now (every category when empty).
    fn snapshot(&self, categories: &[MetricsCategory]) -> Result<MetricsSnapshot, RequestError>;
}

/// Serves `iroh-raft-metrics/0`.
pub struct MetricsServer<S> {
    service: Arc<S>,
}

impl<S> MetricsServer<S> {
    /// A server delegating to `service`.
    pub fn new(service: Arc<S>) -> Self {
        Self { service }
    }
}

impl<S> Clone for MetricsServer<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
        }
    }
}

impl<S> std::fmt::Debug for MetricsServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsServer")
    }
}

fn reply(result: Result<MetricsSnapshot, RequestError>) -> MetricsReply {
    match result {
        Ok(snapshot) => MetricsReply::Snapshot(Box::new(snapshot)),
        Err(error) => MetricsReply::Error(error),
    }
}

impl<S: MetricsService> MetricsServer<S> {
    async fn serve_stream(
        self,
        peer: EndpointId,
        mut send: SendStream,
        mut recv: RecvStream,
    ) -> Result<(), FrameError> {
        let request = match read_frame(&mut recv, alpn::MAX_METRICS_REQUEST).await {
            Ok(Some(body)) => decode_body::<MetricsRequest>(&body)
                .map_err(|error| RequestError::Malformed(format!("a metrics request: {error}"))),
            Ok(None) => return Ok(()),
            Err(FrameError::TooLarge { len, max }) => Err(RequestError::TooLarge { len, max }),
            Err(FrameError::Truncated { read, expected }) => Err(RequestError::Malformed(format!(
                "a metrics request cut short after {read} of {expected} bytes"
            ))),
            Err(error) => return Err(error),
        };
        let admitted = match request {
            Ok(request) => self.service.admit(peer).await.map(|()| request),
            Err(error) => Err(error),
        };
        match admitted {
            Err(error) => {
                write_frame(&mut send, encode_frame(&MetricsReply::Error(error))?).await?;
            }
            Ok(MetricsRequest::Get { categories }) => {
                let frame = reply(self.snapshot(categories).await);
                write_frame(&mut send, encode_frame(&frame)?).await?;
            }
            Ok(MetricsRequest::Subscribe {
                categories,
                interval_ms,
            }) => {
                let interval = Duration::from_millis(subscribe_interval_ms(interval_ms));
                self.stream(&categories, interval, &mut send, recv).await?;
            }
        }
        send.finish().map_err(|e| FrameError::Stream(e.to_string()))
    }

    /// The snapshot, taken on a blocking thread: it reads the file system (the database's size,
    /// the snapshot file), which must not hold up the tokio workers that carry raft's RPCs.
    async fn snapshot(
        &self,
        categories: Vec<MetricsCategory>,
    ) -> Result<MetricsSnapshot, RequestError> {
        let service = self.service.clone();
        tokio::task::spawn_blocking(move || service.snapshot(&categories))
            .await
            .unwrap_or_else(|error| {
                Err(RequestError::TaskFailed {
                    task: "taking a metrics snapshot".into(),
                    reason: error.to_string(),
                })
            })
    }

    /// A snapshot every `interval` until the client closes its side of the stream (finishes,
    /// resets, or sends anything more). The next snapshot is taken only once the previous one was
    /// written: a client that reads slowly gets fewer snapshots, and nothing queues up.
    async fn stream(
        &self,
        categories: &[MetricsCategory],
        interval: Duration,
        send: &mut SendStream,
        mut recv: RecvStream,
    ) -> Result<(), FrameError> {
        let closed = async move { read_frame(&mut recv, alpn::MAX_METRICS_REQUEST).await };
        tokio::pin!(closed);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut closed => return Ok(()),
                _ = ticks.tick() => {}
            }
            let frame = encode_frame(&reply(self.snapshot(categories.to_vec()).await))?;
            tokio::select! {
                _ = &mut closed => return Ok(()),
                written = write_frame(send, frame) => written?,
            }
        }
    }
}

impl<S: MetricsService> ProtocolHandler for MetricsServer<S> {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        loop {
            let Ok((send, recv)) = connection.accept_bi().await else {
                return Ok(());
            };
            let server = self.clone();
            tokio::spawn(async move {
                if let Err(error) = server.serve_stream(peer, send, recv).await {
                    tracing::debug!(peer = %peer.fmt_short(), "metrics stream failed: {error}");
                }
            });
        }
    }
}
