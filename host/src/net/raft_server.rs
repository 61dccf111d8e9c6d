//! The receiving side of `iroh-raft/0`: admits only members (and peers of a pending join), then
//! decodes each stream's request, hands it to openraft and encodes the reply. Decisions live in
//! openraft; this only moves frames.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt;
use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::storage::{RaftStateMachine, Snapshot};
use tokio::io::AsyncWriteExt;

use super::admission::{Admission, membership_id};
use super::link_faults::{Fate, LinkFaults, never_answer};
use super::{read_frame, write_frame};
use crate::proto::raft_rpc::{RaftReply, RaftRequest};
use crate::proto::{FrameError, TypeConfig, alpn, decode_body, encode_frame};
use crate::raft::SharedRaft;

type C = TypeConfig;

/// QUIC application close code for a peer that is not a member.
pub const NOT_A_MEMBER: u32 = 403;

/// Serves `iroh-raft/0` for one node.
pub struct RaftServer<SM: RaftStateMachine<C>> {
    raft: SharedRaft<SM>,
    admission: Admission,
    incoming_snapshots: PathBuf,
    /// What becomes of the replies this node sends (see `link_faults.rs`).
    faults: LinkFaults,
}

impl<SM: RaftStateMachine<C>> std::fmt::Debug for RaftServer<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftServer")
            .field("admission", &self.admission)
            .finish_non_exhaustive()
    }
}

impl<SM: RaftStateMachine<C>> Clone for RaftServer<SM> {
    fn clone(&self) -> Self {
        Self {
            raft: self.raft.clone(),
            admission: self.admission.clone(),
            incoming_snapshots: self.incoming_snapshots.clone(),
            faults: self.faults.clone(),
        }
    }
}

impl<SM> RaftServer<SM>
where
    SM: RaftStateMachine<C, SnapshotData = tokio::fs::File>,
{
    /// A server for `raft`; snapshots being received are written under `incoming_snapshots`.
    pub fn new(raft: Raft<C, SM>, admission: Admission, incoming_snapshots: PathBuf) -> Self {
        Self::shared(
            SharedRaft::new(raft),
            admission,
            incoming_snapshots,
            LinkFaults::default(),
        )
    }

    /// A server for whichever core `raft` holds when each request arrives, whose replies pass
    /// through `faults`.
    pub fn shared(
        raft: SharedRaft<SM>,
        admission: Admission,
        incoming_snapshots: PathBuf,
        faults: LinkFaults,
    ) -> Self {
        Self {
            raft,
            admission,
            incoming_snapshots,
            faults,
        }
    }

    async fn serve_stream(
        self,
        mut send: SendStream,
        mut recv: RecvStream,
        peer: [u8; 32],
    ) -> Result<(), FrameError> {
        let first = match read_frame(&mut recv, alpn::RAFT_FRAME_CEILING).await {
            Ok(Some(first)) => first,
            Ok(None) => return Ok(()),
            Err(error) => return refuse_frame(send, recv, error).await,
        };
        let request = match decode_body::<RaftRequest>(&first) {
            Ok(request) => request,
            Err(error) => {
                reply(
                    &mut send,
                    &RaftReply::Refused(format!("malformed request: {error}")),
                )
                .await?;
                return Err(error);
            }
        };
        // A paused node handles nothing until it resumes.
        self.faults.unpaused().await;
        let response = match request {
            RaftRequest::Vote(rpc) => self
                .raft
                .get()
                .vote(rpc)
                .await
                .map(RaftReply::Vote)
                .map_err(|e| e.to_string()),
            RaftRequest::PreVote(rpc) => self
                .raft
                .get()
                .pre_vote(rpc)
                .await
                .map(RaftReply::Vote)
                .map_err(|e| e.to_string()),
            RaftRequest::AppendEntries(rpc) => {
                let answer = self.raft.get().append_entries(rpc).await;
                if answer
                    .as_ref()
                    .is_ok_and(|a| !matches!(a, AppendEntriesResponse::HigherVote(_)))
                {
                    self.raft.heard_from_leader();
                }
                answer
                    .map(RaftReply::AppendEntries)
                    .map_err(|e| e.to_string())
            }
            RaftRequest::TransferLeader(rpc) => self
                .raft
                .get()
                .handle_transfer_leader(rpc)
                .await
                .map(RaftReply::TransferLeader)
                .map_err(|e| e.to_string()),
            RaftRequest::StreamAppend => return self.serve_append_stream(send, recv, peer).await,
            RaftRequest::Snapshot { vote, meta } => match self.receive_snapshot(&mut recv).await {
                Ok(file) => self
                    .raft
                    .get()
                    .install_full_snapshot(
                        vote,
                        Snapshot {
                            meta,
                            snapshot: file,
                        },
                    )
                    .await
                    .map(RaftReply::Snapshot)
                    .map_err(|e| e.to_string()),
                Err(error) => Err(format!("snapshot transfer failed: {error}")),
            },
        };
        if self.faults.send_to(&peer).await == Fate::Lost {
            never_answer(&mut send).await;
            return Ok(());
        }
        reply(&mut send, &response.unwrap_or_else(RaftReply::Refused)).await?;
        send.finish().map_err(|e| FrameError::Stream(e.to_string()))
    }

    /// Pipelined replication: requests are decoded as they arrive and fed to openraft, whose
    /// results are written back in order.
    async fn serve_append_stream(
        self,
        mut send: SendStream,
        mut recv: RecvStream,
        peer: [u8; 32],
    ) -> Result<(), FrameError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<AppendEntriesRequest<C>>(64);
        let faults = self.faults.clone();
        let mut reader = tokio::spawn(async move {
            while let Some(body) = read_frame(&mut recv, alpn::RAFT_FRAME_CEILING).await? {
                let request = decode_body::<AppendEntriesRequest<C>>(&body)?;
                faults.unpaused().await;
                if tx.send(request).await.is_err() {
                    break;
                }
            }
            Ok::<(), FrameError>(())
        });
        let raft = self.raft.get();
        let mut results = std::pin::pin!(raft.stream_append(tokio_stream(rx)));
        let mut stopped = false;
        while let Some(result) = results.next().await {
            if self.faults.send_to(&peer).await == Fate::Lost {
                // A lost reply on an ordered stream: the stream can never deliver the rest.
                reader.abort();
                let _ = send.reset(0u32.into());
                return Ok(());
            }
            match result {
                Ok(result) => {
                    stopped = result.is_err();
                    if !stopped {
                        self.raft.heard_from_leader();
                    }
                    reply(&mut send, &RaftReply::StreamAppend(result)).await?;
                }
                Err(fatal) => {
                    reply(&mut send, &RaftReply::Refused(fatal.to_string())).await?;
                    stopped = true;
                }
            }
            if stopped {
                break;
            }
        }
        // The results end when the requests do, so the reader is done or about to be; one that
        // is still reading (openraft ended the stream itself) is stopped.
        let ended = if stopped {
            None
        } else {
            tokio::time::timeout(std::time::Duration::from_millis(100), &mut reader)
                .await
                .ok()
        };
        reader.abort();
        if let Some(Ok(Err(error))) = ended {
            // The requests ended on a bad frame: say why, rather than just closing.
            reply(
                &mut send,
                &RaftReply::Refused(format!("append stream refused: {error}")),
            )
            .await?;
        }
        send.finish().map_err(|e| FrameError::Stream(e.to_string()))
    }

    /// Writes the incoming chunks to a file and returns it rewound.
    async fn receive_snapshot(&self, recv: &mut RecvStream) -> std::io::Result<tokio::fs::File> {
        static TRANSFERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        tokio::fs::create_dir_all(&self.incoming_snapshots).await?;
        let transfer = TRANSFERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self
            .incoming_snapshots
            .join(format!("{}-{transfer}.incoming", std::process::id()));
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .await?;
        // Unlinked at once: the handle keeps it readable, and a crash leaves nothing behind.
        tokio::fs::remove_file(&path).await?;
        loop {
            let body = read_frame(recv, alpn::RAFT_FRAME_CEILING)
                .await
                .map_err(std::io::Error::other)?
                .ok_or_else(|| {
                    std::io::Error::other("snapshot stream ended before its last chunk")
                })?;
            let chunk: Bytes = decode_body(&body).map_err(std::io::Error::other)?;
            if chunk.is_empty() {
                break;
            }
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        use tokio::io::AsyncSeekExt;
        // A damaged transfer is refused here, before openraft's install (whose failure is fatal).
        file.seek(std::io::SeekFrom::Start(0)).await?;
        crate::raft::verify_snapshot(&mut file)
            .await
            .map_err(std::io::Error::other)?;
        file.seek(std::io::SeekFrom::Start(0)).await?;
        Ok(file)
    }
}

/// Answers a first frame that could not be read (over the ceiling, truncated) with the reason,
/// without reading the rest of it, and ends the stream.
async fn refuse_frame(
    mut send: SendStream,
    mut recv: RecvStream,
    error: FrameError,
) -> Result<(), FrameError> {
    let _ = recv.stop(0u32.into());
    reply(
        &mut send,
        &RaftReply::Refused(format!("frame refused: {error}")),
    )
    .await?;
    send.finish()
        .map_err(|e| FrameError::Stream(e.to_string()))?;
    Err(error)
}

async fn reply(send: &mut SendStream, reply: &RaftReply) -> Result<(), FrameError> {
    write_frame(send, encode_frame(reply)?).await
}

fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

impl<SM> ProtocolHandler for RaftServer<SM>
where
    SM: RaftStateMachine<C, SnapshotData = tokio::fs::File>,
{
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = *connection.remote_id().as_bytes();
        if !self.admission.admits(&self.raft.get(), &peer) {
            tracing::warn!(peer = %connection.remote_id().fmt_short(), "refused raft connection from a non-member");
            connection.close(NOT_A_MEMBER.into(), b"not a member of this cluster");
            return Ok(());
        }
        let mut metrics = self.raft.get().metrics();
        let mut judged_on = membership_id(&self.raft.get());
        loop {
            let accepted = tokio::select! {
                accepted = connection.accept_bi() => accepted,
                changed = metrics.changed() => {
                    if changed.is_err() {
                        // The raft core stopped or was replaced (a restart of the core): watch
                        // the one in use, without spinning on a core that is gone for good.
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        metrics = self.raft.get().metrics();
                    }
                    // Admission follows the membership: a member removed from it loses the
                    // connections it has open, not only the next one it would open. Judged again
                    // only on a new membership, never on none (a core just replaced).
                    let now = membership_id(&self.raft.get());
                    if now.is_none() || now == judged_on {
                        continue;
                    }
                    judged_on = now;
                    if !self.admission.admits(&self.raft.get(), &peer) {
                        tracing::info!(
                            peer = %connection.remote_id().fmt_short(),
                            "closing the raft connection of a peer that is no longer a member"
                        );
                        connection.close(NOT_A_MEMBER.into(), b"no longer a member of this cluster");
                        return Ok(());
                    }
                    continue;
                }
            };
            let (send, recv) = match accepted {
                Ok(streams) => streams,
                Err(_) => return Ok(()), // the peer closed the connection
            };
            let server = self.clone();
            tokio::spawn(async move {
                if let Err(error) = server.serve_stream(send, recv, peer).await {
                    tracing::debug!("raft stream ended with an error: {error}");
                }
            });
        }
    }
}
