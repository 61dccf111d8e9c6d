//! The sending side of `iroh-raft/0`: openraft's network factory over iroh, with one cached
//! connection per peer, a deadline on every RPC, pipelined append-entries on a long-lived stream
//! and snapshots streamed in chunks.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use iroh::Endpoint;
use iroh::endpoint::Connection;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, v2::RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use tokio::io::AsyncReadExt;

use super::link_faults::{Fate, LinkFaults};
use super::{read_frame, write_frame};
use crate::metrics::NetworkCounters;

mod append_stream;
mod peer_connections;

use crate::proto::raft_rpc::{RaftReply, RaftRequest};
use crate::proto::{FrameError, Member, TypeConfig, alpn, decode_body, encode_frame};
use append_stream::{Sent, check_batch, forward_appends, lock};
pub(crate) use peer_connections::PeerConnections;

type C = TypeConfig;

/// Snapshot chunk size on the wire.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// Connections to peers, shared by every client the factory hands out.
#[derive(Clone)]
pub struct RaftNetwork {
    endpoint: Endpoint,
    connections: PeerConnections,
    max_frame: Arc<AtomicUsize>,
    counters: Arc<NetworkCounters>,
    faults: LinkFaults,
}

impl RaftNetwork {
    /// A network that dials peers from `endpoint`, keeping its connections in `connections`, and
    /// sends no append-entries batch of several entries in a frame over `max_frame` bytes (the
    /// node keeps it at `max_raft_frame`). Connections and RPC round trips are counted in
    /// `counters`. Every request passes through `faults` first.
    pub(crate) fn new(
        endpoint: Endpoint,
        connections: PeerConnections,
        max_frame: Arc<AtomicUsize>,
        counters: Arc<NetworkCounters>,
        faults: LinkFaults,
    ) -> Self {
        Self {
            endpoint,
            connections,
            max_frame,
            counters,
            faults,
        }
    }
}

impl RaftNetworkFactory<C> for RaftNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &Member) -> PeerClient {
        PeerClient {
            endpoint: self.endpoint.clone(),
            connections: self.connections.clone(),
            max_frame: self.max_frame.clone(),
            counters: self.counters.clone(),
            faults: self.faults.clone(),
            target,
            member: node.clone(),
        }
    }
}

/// The RPC client for one peer.
pub struct PeerClient {
    endpoint: Endpoint,
    connections: PeerConnections,
    max_frame: Arc<AtomicUsize>,
    counters: Arc<NetworkCounters>,
    faults: LinkFaults,
    target: u64,
    member: Member,
}

fn network(error: impl std::fmt::Display) -> NetworkError<C> {
    NetworkError::from_string(error)
}

impl From<FrameError> for NetworkError<C> {
    fn from(error: FrameError) -> Self {
        network(error)
    }
}

impl PeerClient {
    /// The connection to the peer: the cached one, or a dial (which goes on should this RPC
    /// give up first).
    async fn connection(&self) -> Result<Connection, Unreachable<C>> {
        let addr = self.member.endpoint_addr().map_err(|e| {
            Unreachable::from_string(format!(
                "node {} has an invalid endpoint key: {e}",
                self.target
            ))
        })?;
        self.connections
            .get(&self.endpoint, addr, self.target, &self.counters)
            .await
            .map_err(|e| Unreachable::from_string(e.to_string()))
    }

    /// Closes `failed` and drops it from the cache (if still cached), so the next RPC dials
    /// again.
    fn forget(&self, failed: &Connection) {
        self.connections
            .forget(&self.member.endpoint_key, failed, b"rpc failed");
    }

    /// One request, one reply, within `deadline`.
    async fn call(
        &self,
        request: &RaftRequest,
        deadline: Duration,
    ) -> Result<RaftReply, RPCError<C>> {
        self.send(encode_frame(request).map_err(network)?, deadline)
            .await
    }

    /// One encoded request, one reply, within `deadline`.
    async fn send(&self, frame: Bytes, deadline: Duration) -> Result<RaftReply, RPCError<C>> {
        // The connection this RPC runs on, once it has one: what the guard forgets.
        let used = std::sync::OnceLock::new();
        let exchange = async {
            if self.faults.send_to(&self.member.endpoint_key).await == Fate::Lost {
                // Lost on the way: no answer comes, and the deadline below ends the wait.
                std::future::pending::<()>().await;
            }
            let connection = self.connection().await?;
            let _ = used.set(connection.clone());
            let (mut send, mut recv) = connection.open_bi().await.map_err(|e| {
                self.forget(&connection);
                network(e)
            })?;
            write_frame(&mut send, frame).await.map_err(network)?;
            send.finish().map_err(network)?;
            let body = read_frame(&mut recv, alpn::MAX_RAFT_FRAME)
                .await
                .map_err(network)?
                .ok_or_else(|| network("the peer closed the stream without replying"))?;
            Ok::<_, RPCError<C>>(decode_body::<RaftReply>(&body).map_err(network)?)
        };
        // openraft may drop this future at its own deadline (a heartbeat's is short): the guard
        // forgets the connection then too, or a SIGKILLed peer's dead connection would stay cached
        // until QUIC's idle timeout and every heartbeat would wait on it.
        let mut unanswered = ForgetUnlessAnswered {
            client: self,
            used: &used,
            answered: false,
        };
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(deadline, exchange).await {
            Ok(result) => result,
            Err(_) => Err(RPCError::Network(network(format!(
                "no reply from node {} within {deadline:?}",
                self.target
            )))),
        };
        unanswered.answered = result.is_ok();
        self.counters
            .rpc(self.target, started.elapsed(), result.is_ok());
        result
    }
}

/// Forgets the connection the RPC it guards ran on when dropped, unless the RPC was answered. An
/// RPC that gave up while its dial was under way has no connection to forget: the dial goes on.
struct ForgetUnlessAnswered<'a> {
    client: &'a PeerClient,
    used: &'a std::sync::OnceLock<Connection>,
    answered: bool,
}

impl Drop for ForgetUnlessAnswered<'_> {
    fn drop(&mut self) {
        if let (false, Some(connection)) = (self.answered, self.used.get()) {
            self.client.forget(connection);
        }
    }
}

fn unexpected(reply: RaftReply) -> RPCError<C> {
    match reply {
        RaftReply::Refused(reason) => RPCError::Network(network(format!("refused: {reason}"))),
        other => RPCError::Network(network(format!("unexpected reply {other:?}"))),
    }
}

impl RaftNetworkV2<C> for PeerClient {
    type SnapshotData = tokio::fs::File;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        let entries = rpc.entries.len();
        let request = RaftRequest::AppendEntries(rpc);
        let frame = encode_frame(&request).map_err(network)?;
        check_batch(frame.len(), entries, self.max_frame.load(Ordering::Relaxed))
            .map_err(|e| RPCError::Network(network(e)))?;
        match self.send(frame, option.hard_ttl()).await? {
            RaftReply::AppendEntries(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        _option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Result<StreamAppendResult<C>, RPCError<C>>>, RPCError<C>>>
    where
        S: Stream<Item = AppendEntriesRequest<C>> + openraft::OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            if self.faults.send_to(&self.member.endpoint_key).await == Fate::Lost {
                return Err(RPCError::Network(network(
                    "the append stream's opening frame was lost (an injected link fault)",
                )));
            }
            let connection = self.connection().await?;
            let (mut send, recv) = connection.open_bi().await.map_err(|e| {
                self.forget(&connection);
                network(e)
            })?;
            write_frame(
                &mut send,
                encode_frame(&RaftRequest::StreamAppend).map_err(network)?,
            )
            .await
            .map_err(network)?;
            // Requests flow out on their own task while results are read back: pipelined. Results
            // come back in order, so each is timed against the oldest request still unanswered.
            let sent: Sent = Arc::default();
            tokio::spawn(forward_appends(
                input,
                send,
                self.max_frame.clone(),
                sent.clone(),
                (self.faults.clone(), self.member.endpoint_key),
            ));
            let (connections, key) = (self.connections.clone(), self.member.endpoint_key);
            let streamed_on = connection.clone();
            let (counters, target) = (self.counters.clone(), self.target);
            let results = futures_util::stream::unfold(Some(recv), move |recv| {
                let (connections, counters, sent, streamed_on) = (
                    connections.clone(),
                    counters.clone(),
                    sent.clone(),
                    streamed_on.clone(),
                );
                async move {
                    let mut recv = recv?;
                    let failure = match read_frame(&mut recv, alpn::MAX_RAFT_FRAME).await {
                        Ok(None) => return None,
                        Ok(Some(body)) => match decode_body::<RaftReply>(&body) {
                            Ok(RaftReply::StreamAppend(result)) => {
                                if let Some(at) = lock(&sent).pop_front() {
                                    counters.rpc(target, at.elapsed(), true);
                                }
                                return Some((Ok(result), Some(recv)));
                            }
                            Ok(other) => unexpected(other),
                            Err(e) => RPCError::Network(network(e)),
                        },
                        Err(e) => RPCError::Network(network(e)),
                    };
                    // The stream broke: dial afresh next time.
                    counters.rpc(target, Duration::ZERO, false);
                    connections.forget(&key, &streamed_on, b"stream failed");
                    Some((Err(failure), None))
                }
            });
            Ok(Box::pin(results) as BoxStream<'s, _>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        match self
            .call(&RaftRequest::Vote(rpc), option.hard_ttl())
            .await?
        {
            RaftReply::Vote(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        match self
            .call(&RaftRequest::PreVote(rpc), option.hard_ttl())
            .await?
        {
            RaftReply::Vote(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        match self
            .call(&RaftRequest::TransferLeader(req), option.hard_ttl())
            .await?
        {
            RaftReply::TransferLeader(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Self::SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let used = std::sync::OnceLock::new();
        let transfer = async {
            if self.faults.send_to(&self.member.endpoint_key).await == Fate::Lost {
                return Err(StreamingError::Unreachable(Unreachable::from_string(
                    "the snapshot's opening frame was lost (an injected link fault)",
                )));
            }
            let connection = self.connection().await?;
            let _ = used.set(connection.clone());
            let (mut send, mut recv) = connection.open_bi().await.map_err(|e| {
                self.forget(&connection);
                network(e)
            })?;
            let header = RaftRequest::Snapshot {
                vote,
                meta: snapshot.meta,
            };
            write_frame(&mut send, encode_frame(&header).map_err(network)?)
                .await
                .map_err(network)?;
            // Stream the file in chunks: the snapshot is never whole in memory.
            let mut file = snapshot.snapshot;
            let mut chunk = vec![0u8; SNAPSHOT_CHUNK];
            loop {
                let read = file.read(&mut chunk).await.map_err(network)?;
                let frame =
                    encode_frame(&Bytes::copy_from_slice(&chunk[..read])).map_err(network)?;
                write_frame(&mut send, frame).await.map_err(network)?;
                if read == 0 {
                    break;
                }
            }
            send.finish().map_err(network)?;
            let body = read_frame(&mut recv, alpn::MAX_RAFT_FRAME)
                .await
                .map_err(network)?
                .ok_or_else(|| network("the peer closed the snapshot stream without replying"))?;
            match decode_body::<RaftReply>(&body).map_err(network)? {
                RaftReply::Snapshot(response) => Ok(response),
                other => Err(StreamingError::Network(network(format!(
                    "unexpected reply {other:?}"
                )))),
            }
        };
        let result = tokio::select! {
            result = transfer => result,
            closed = cancel => Err(StreamingError::Closed(closed)),
        };
        if let (Err(StreamingError::Network(_) | StreamingError::Unreachable(_)), Some(failed)) =
            (&result, used.get())
        {
            self.forget(failed);
        }
        result
    }
}
