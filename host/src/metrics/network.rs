//! [`NetworkCounters`]: connections and bytes per protocol (ALPN), and raft RPC round trips per
//! peer. A connection is tracked through a weak handle, so tracking never keeps one open: its
//! bytes are read from QUIC's own statistics while it lives, and from its final statistics once
//! it closes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::endpoint::{Connection, WeakConnectionHandle};

use super::latency::LatencyRecorder;
use crate::proto::{PeerRpcFigures, ProtocolFigures, alpn};

/// Counters of one protocol.
#[derive(Debug, Default)]
struct Protocol {
    opened: AtomicU64,
    /// Bytes of connections that closed.
    closed_sent: AtomicU64,
    closed_received: AtomicU64,
    /// Connections still open, by a tracking number.
    live: Mutex<BTreeMap<u64, WeakConnectionHandle>>,
}

/// RPC figures of one peer.
#[derive(Debug, Default)]
struct Peer {
    latency: LatencyRecorder,
    failures: AtomicU64,
}

/// A node's network counters; shared by its servers and its raft client.
#[derive(Debug, Default)]
pub(crate) struct NetworkCounters {
    /// In the order of [`alpn::ALL`].
    protocols: [Protocol; 4],
    next: AtomicU64,
    peers: Mutex<BTreeMap<u64, Arc<Peer>>>,
}

impl NetworkCounters {
    /// Tracks `connection` under its ALPN (one of the four; others are ignored) until it closes.
    pub(crate) fn track(self: &Arc<Self>, connection: &Connection) {
        let Some(slot) = alpn::ALL.iter().position(|a| *a == connection.alpn()) else {
            return;
        };
        let protocol = &self.protocols[slot];
        protocol.opened.fetch_add(1, Ordering::Relaxed);
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let weak = connection.weak_handle();
        let closed = weak.closed();
        lock(&protocol.live).insert(number, weak);
        let counters = self.clone();
        tokio::spawn(async move {
            let closed = closed.await;
            let protocol = &counters.protocols[slot];
            if let Some(closed) = closed {
                let stats = closed.stats;
                protocol
                    .closed_sent
                    .fetch_add(stats.udp_tx.bytes, Ordering::Relaxed);
                protocol
                    .closed_received
                    .fetch_add(stats.udp_rx.bytes, Ordering::Relaxed);
            }
            lock(&protocol.live).remove(&number);
        });
    }

    /// Records one raft RPC to `peer`: its round trip if it was answered, else a failure.
    pub(crate) fn rpc(&self, peer: u64, elapsed: Duration, answered: bool) {
        let peer = lock(&self.peers).entry(peer).or_default().clone();
        if answered {
            peer.latency.record(elapsed);
        } else {
            peer.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Per protocol, in the order of [`alpn::ALL`].
    pub(crate) fn protocols(&self) -> Vec<ProtocolFigures> {
        alpn::ALL
            .iter()
            .zip(&self.protocols)
            .map(|(name, protocol)| {
                let (mut sent, mut received, mut open) = (0, 0, 0);
                for weak in lock(&protocol.live).values() {
                    if let Some(connection) = weak.upgrade() {
                        let stats = connection.stats();
                        sent += stats.udp_tx.bytes;
                        received += stats.udp_rx.bytes;
                        open += 1;
                    }
                }
                ProtocolFigures {
                    alpn: String::from_utf8_lossy(name).into_owned(),
                    connections_opened: protocol.opened.load(Ordering::Relaxed),
                    connections_open: open,
                    bytes_sent: sent + protocol.closed_sent.load(Ordering::Relaxed),
                    bytes_received: received + protocol.closed_received.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Per peer that was sent an RPC, by node id.
    pub(crate) fn peers(&self) -> Vec<PeerRpcFigures> {
        lock(&self.peers)
            .iter()
            .map(|(node_id, peer)| PeerRpcFigures {
                node_id: *node_id,
                latency: peer.latency.snapshot(),
                failures: peer.failures.load(Ordering::Relaxed),
            })
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpcs_are_counted_per_peer() {
        let counters = NetworkCounters::default();
        counters.rpc(2, Duration::from_micros(80), true);
        counters.rpc(2, Duration::from_micros(80), false);
        counters.rpc(3, Duration::from_millis(2), true);
        let peers = counters.peers();
        assert_eq!(peers.len(), 2);
        assert_eq!(
            (peers[0].node_id, peers[0].latency.count, peers[0].failures),
            (2, 1, 1)
        );
        assert_eq!((peers[1].node_id, peers[1].latency.sum_us), (3, 2000));
        let protocols = counters.protocols();
        assert_eq!(protocols.len(), 4);
        assert_eq!(protocols[0].alpn, "iroh-raft/0");
        assert!(
            protocols
                .iter()
                .all(|p| p.connections_opened == 0 && p.bytes_sent == 0)
        );
    }
}
