//! The receiving side of `iroh-raft-discovery/0`: reads one request per connection (a join or an
//! announce), hands it to the node's [`DiscoveryService`] and writes its answer. A malformed or
//! oversized request is answered with a refusal; the node keeps serving everyone else.
//!
//! A bare [`JoinRequest`] (what nodes sent before [`DiscoveryRequest`] existed) is still read as a
//! join and answered with a bare [`JoinReply`].

use iroh::EndpointId;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};

use super::{read_frame, write_frame};
use crate::proto::{
    Announce, AnnounceReply, DiscoveryReply, DiscoveryRequest, JoinReply, JoinRequest, alpn,
    decode_body, encode_frame,
};

/// What a node does with discovery requests. Implemented by the node; kept apart from the
/// protocol so the handler only decodes, delegates and encodes.
pub trait DiscoveryService: Send + Sync + std::fmt::Debug + 'static {
    /// The answer to `request` from the peer whose authenticated endpoint key is `key`.
    fn join(&self, request: &JoinRequest, key: [u8; 32]) -> JoinReply;

    /// The answer to the peer whose authenticated key is `key` announcing itself.
    fn announce(&self, announce: &Announce, key: [u8; 32]) -> AnnounceReply;

    /// The members and leader of `cluster_id` for `caller` (a `ClusterInfo`, or an `Error`).
    fn query_cluster(
        &self,
        cluster_id: Option<[u8; 16]>,
        caller: EndpointId,
    ) -> impl Future<Output = DiscoveryReply> + Send;
}

/// What to write back: the reply in the framing the request came in.
enum Answer {
    Current(DiscoveryReply),
    Bare(JoinReply),
}

/// The `iroh-raft-discovery/0` protocol handler.
#[derive(Debug, Clone)]
pub struct DiscoveryServer<S> {
    service: S,
}

impl<S: DiscoveryService> DiscoveryServer<S> {
    /// Serves `service` on the discovery protocol.
    pub fn new(service: S) -> Self {
        Self { service }
    }
}

/// How long one discovery exchange may take, from the connection to the last byte of the answer:
/// a peer that opens a connection and sends nothing does not hold the handler longer.
const EXCHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl<S: DiscoveryService> ProtocolHandler for DiscoveryServer<S> {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        if tokio::time::timeout(EXCHANGE_TIMEOUT, self.exchange(&connection))
            .await
            .is_err()
        {
            connection.close(1u32.into(), b"discovery exchange timed out");
        }
        Ok(())
    }
}

impl<S: DiscoveryService> DiscoveryServer<S> {
    /// One request read, served and answered on `connection`.
    async fn exchange(&self, connection: &Connection) {
        let caller = connection.remote_id();
        let key = *caller.as_bytes();
        let Ok((mut send, mut recv)) = connection.accept_bi().await else {
            return;
        };
        let answer = match read_frame(&mut recv, alpn::MAX_DISCOVERY_FRAME).await {
            Ok(Some(body)) => match decode_body::<DiscoveryRequest>(&body) {
                Ok(DiscoveryRequest::Bootstrap(request)) => {
                    Answer::Current(DiscoveryReply::Bootstrap(self.service.join(&request, key)))
                }
                Ok(DiscoveryRequest::Announce(announce)) => Answer::Current(
                    DiscoveryReply::Announced(self.service.announce(&announce, key)),
                ),
                Ok(DiscoveryRequest::QueryCluster { cluster_id }) => {
                    Answer::Current(self.service.query_cluster(cluster_id, caller).await)
                }
                Err(error) => match decode_body::<JoinRequest>(&body) {
                    Ok(request) => Answer::Bare(self.service.join(&request, key)),
                    Err(_) => Answer::Current(DiscoveryReply::Refused(format!(
                        "malformed discovery request: {error}"
                    ))),
                },
            },
            Ok(None) => return,
            Err(error) => Answer::Current(DiscoveryReply::Refused(format!(
                "unreadable discovery request: {error}"
            ))),
        };
        let frame = match &answer {
            Answer::Current(reply) => encode_frame(reply),
            Answer::Bare(reply) => encode_frame(reply),
        };
        if let Ok(frame) = frame
            && write_frame(&mut send, frame).await.is_ok()
        {
            let _ = send.finish();
            let _ = send.stopped().await;
        }
    }
}
