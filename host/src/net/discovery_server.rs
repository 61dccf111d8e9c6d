//! The receiving side of `iroh-raft-discovery/0`: reads one join request per connection, hands it
//! to the node's [`DiscoveryService`] and writes its answer. A malformed or oversized request is
//! answered with a refusal; the node keeps serving everyone else.

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};

use super::{read_frame, write_frame};
use crate::proto::{JoinReply, JoinRequest, alpn, decode_body, encode_frame};

/// What a node does with a join request. Implemented by the node; kept apart from the protocol so
/// the handler only decodes, delegates and encodes.
pub trait DiscoveryService: Send + Sync + std::fmt::Debug + 'static {
    /// The answer to `request` from the peer whose authenticated endpoint key is `key`.
    fn join(&self, request: &JoinRequest, key: [u8; 32]) -> JoinReply;
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

impl<S: DiscoveryService> ProtocolHandler for DiscoveryServer<S> {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let key = *connection.remote_id().as_bytes();
        let Ok((mut send, mut recv)) = connection.accept_bi().await else {
            return Ok(());
        };
        let reply = match read_frame(&mut recv, alpn::MAX_DISCOVERY_FRAME).await {
            Ok(Some(body)) => match decode_body::<JoinRequest>(&body) {
                Ok(request) => self.service.join(&request, key),
                Err(error) => JoinReply::Refused(format!("malformed join request: {error}")),
            },
            Ok(None) => return Ok(()),
            Err(error) => JoinReply::Refused(format!("unreadable join request: {error}")),
        };
        if let Ok(frame) = encode_frame(&reply)
            && write_frame(&mut send, frame).await.is_ok()
        {
            let _ = send.finish();
            let _ = send.stopped().await;
        }
        Ok(())
    }
}
