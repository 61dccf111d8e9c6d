//! [`MetricsClient`]: a monitor's handle on one node's `iroh-raft-metrics/0`: one snapshot
//! ([`MetricsClient::get`]) or a stream of them ([`MetricsClient::subscribe`]). Each request is
//! its own stream on one connection.

use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::{Endpoint, EndpointAddr, SecretKey};

use crate::client::{ClientError, client_endpoint};
use crate::net::{read_frame, write_frame};
use crate::proto::{
    FrameError, MetricsCategory, MetricsReply, MetricsRequest, MetricsSnapshot, alpn, decode_body,
    encode_frame,
};

/// A connection to one node's metrics protocol.
pub struct MetricsClient {
    endpoint: Endpoint,
    connection: Connection,
    owns_endpoint: bool,
}

impl MetricsClient {
    /// Connects to the node at `node` as the identity `key` (the access policy must allow it
    /// `metrics.read`).
    pub async fn connect_with_key(key: SecretKey, node: EndpointAddr) -> Result<Self, ClientError> {
        let endpoint = client_endpoint(key).await?;
        let mut client = Self::connect_from(endpoint, node).await?;
        client.owns_endpoint = true;
        Ok(client)
    }

    /// Connects to the node at `node` from an existing endpoint (whose key is the identity).
    pub async fn connect_from(endpoint: Endpoint, node: EndpointAddr) -> Result<Self, ClientError> {
        let connection = tokio::time::timeout(
            Duration::from_secs(5),
            endpoint.connect(node.clone(), alpn::METRICS),
        )
        .await
        .map_err(|_| ClientError::Connect(format!("no answer from {} within 5s", node.id)))?
        .map_err(|e| ClientError::Connect(e.to_string()))?;
        Ok(Self {
            endpoint,
            connection,
            owns_endpoint: false,
        })
    }

    /// Closes the connection, and the client's own endpoint if it has one.
    pub async fn close(&self) {
        self.connection.close(0u32.into(), b"metrics client done");
        if self.owns_endpoint {
            self.endpoint.close().await;
        }
    }

    async fn open(
        &self,
        request: &MetricsRequest,
    ) -> Result<(SendStream, RecvStream), ClientError> {
        let (mut send, recv) = self
            .connection
            .open_bi()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        write_frame(&mut send, encode_frame(request)?).await?;
        Ok((send, recv))
    }

    /// One snapshot of `categories` (every category when empty).
    pub async fn get(
        &self,
        categories: Vec<MetricsCategory>,
    ) -> Result<MetricsSnapshot, ClientError> {
        let (mut send, mut recv) = self.open(&MetricsRequest::Get { categories }).await?;
        send.finish()
            .map_err(|e| FrameError::Stream(e.to_string()))?;
        match next_snapshot(&mut recv).await? {
            Some(snapshot) => Ok(snapshot),
            None => Err(ClientError::Unexpected(
                "the node closed the stream without answering".into(),
            )),
        }
    }

    /// A snapshot of `categories` every `interval` (at least 100 ms) until the subscription is
    /// dropped or closed.
    pub async fn subscribe(
        &self,
        categories: Vec<MetricsCategory>,
        interval: Duration,
    ) -> Result<MetricsSubscription, ClientError> {
        let request = MetricsRequest::Subscribe {
            categories,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        };
        let (send, recv) = self.open(&request).await?;
        Ok(MetricsSubscription { send, recv })
    }
}

/// Reads the next reply: a snapshot, `None` at a clean end, or the node's error.
async fn next_snapshot(recv: &mut RecvStream) -> Result<Option<MetricsSnapshot>, ClientError> {
    let Some(body) = read_frame(recv, alpn::MAX_METRICS_REPLY).await? else {
        return Ok(None);
    };
    match decode_body::<MetricsReply>(&body)? {
        MetricsReply::Snapshot(snapshot) => Ok(Some(*snapshot)),
        MetricsReply::Error(error) => Err(ClientError::Request(error)),
    }
}

/// The snapshots of a metrics subscription, one per interval.
pub struct MetricsSubscription {
    send: SendStream,
    recv: RecvStream,
}

impl MetricsSubscription {
    /// The next snapshot; `None` once the node ended the stream.
    pub async fn next(&mut self) -> Result<Option<MetricsSnapshot>, ClientError> {
        next_snapshot(&mut self.recv).await
    }

    /// Ends the subscription: the node stops sending.
    pub fn close(mut self) {
        let _ = self.send.finish();
    }
}
