//! The asking side of `iroh-raft-discovery/0`: one request, one reply, on a connection of its own,
//! bounded in time.

use std::time::Duration;

use iroh::Endpoint;

use super::{read_frame, write_frame};
use crate::proto::{DiscoveryReply, DiscoveryRequest, Member, alpn, decode_body, encode_frame};

/// Sends `request` to `target` and reads its reply, all within `timeout`; the error says what went
/// wrong in words.
pub async fn discovery_exchange(
    endpoint: &Endpoint,
    target: &Member,
    request: &DiscoveryRequest,
    timeout: Duration,
) -> Result<DiscoveryReply, String> {
    let addr = target
        .endpoint_addr()
        .map_err(|e| format!("invalid member key: {e}"))?;
    let exchange = async {
        let connection = endpoint
            .connect(addr, alpn::DISCOVERY)
            .await
            .map_err(|e| format!("cannot reach {target}: {e}"))?;
        let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
        write_frame(&mut send, encode_frame(request).map_err(|e| e.to_string())?)
            .await
            .map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let body = read_frame(&mut recv, alpn::MAX_DISCOVERY_FRAME)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the node closed the stream without answering")?;
        let reply = decode_body::<DiscoveryReply>(&body).map_err(|e| e.to_string());
        connection.close(0u32.into(), b"done");
        reply
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("{target} did not answer within {timeout:?}")))
}
