//! The receiving side of `iroh-raft-mgmt/0`: reads request frames from each stream, hands each
//! operation to the node's [`ManagementService`], writes exactly one response frame per request.
//! An oversized or undecodable frame gets an error frame and closes that stream only.

use std::future::Future;
use std::sync::Arc;

use iroh::EndpointId;
use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};

use bytes::Bytes;

use super::plugin_upload::Upload;
use super::{
    ClientFrame, FrameError, Operation, Reply, RequestError, RequestId, ServerFrame, alpn,
    decode_body, encode_frame, read_frame, write_frame,
};

/// What a node does with a management operation. Implemented by the node; kept apart from the
/// protocol so the handler only decodes, delegates and encodes.
pub trait ManagementService: Send + Sync + 'static {
    /// Serves `operation` for the authenticated `peer`.
    fn handle(
        &self,
        peer: EndpointId,
        operation: Operation,
    ) -> impl Future<Output = Result<Reply, RequestError>> + Send;
}

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
        mut send: SendStream,
        mut recv: RecvStream,
    ) -> Result<(), FrameError> {
        loop {
            let body = match read_frame(&mut recv, alpn::MAX_MANAGEMENT_FRAME).await {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(FrameError::TooLarge { len, max }) => {
                    let frame = ServerFrame::Error(RequestError::TooLarge { len, max });
                    write_frame(&mut send, encode_frame(&frame)?).await?;
                    break;
                }
                Err(error) => return Err(error),
            };
            let (id, mut operation) = match decode_body::<ClientFrame>(&body) {
                Ok(ClientFrame::Request { id, operation }) => (id, operation),
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
            if let Operation::PluginDeploy(request) = &mut operation {
                match receive_upload(&mut recv, id, request.size, request.sha256).await {
                    Ok(wasm) => request.wasm = wasm,
                    Err(error) => {
                        let frame = ServerFrame::Response {
                            id,
                            result: Err(error),
                        };
                        write_frame(&mut send, encode_frame(&frame)?).await?;
                        break;
                    }
                }
            }
            let result = self.service.handle(peer, operation).await;
            write_frame(
                &mut send,
                encode_frame(&ServerFrame::Response { id, result })?,
            )
            .await?;
        }
        send.finish().map_err(|e| FrameError::Stream(e.to_string()))
    }
}

/// Reads the chunks of an announced upload from `recv`.
async fn receive_upload(
    recv: &mut RecvStream,
    id: RequestId,
    size: u64,
    sha256: [u8; 32],
) -> Result<Bytes, RequestError> {
    let mut upload = Upload::start(id, size, sha256)?;
    while !upload.is_complete() {
        let body = match read_frame(recv, alpn::MAX_MANAGEMENT_FRAME).await {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(error) => return Err(RequestError::Malformed(format!("upload: {error}"))),
        };
        match decode_body::<ClientFrame>(&body) {
            Ok(ClientFrame::Chunk { id, data }) => upload.push(id, &data)?,
            Ok(ClientFrame::Request { .. }) => {
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
        loop {
            let Ok((send, recv)) = connection.accept_bi().await else {
                return Ok(());
            };
            let server = self.clone();
            tokio::spawn(async move {
                if let Err(error) = server.serve_stream(peer, send, recv).await {
                    tracing::debug!(peer = %peer.fmt_short(), "management stream failed: {error}");
                }
            });
        }
    }
}
