//! The raft client's connections, one per peer, and the dials under way. A dial runs on a task of
//! its own: an RPC that gives up while the peer is still being dialled (a heartbeat's deadline is
//! a fraction of a second) no longer aborts the QUIC handshake, which the peer logged as a
//! warning, and the next RPC waits for the same dial instead of starting another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointAddr};

use crate::metrics::NetworkCounters;
use crate::proto::alpn;

/// How long dialling a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A dial under way; every RPC waiting for the peer polls the same one.
type Dial = Shared<BoxFuture<'static, Result<Connection, DialError>>>;

/// Why a peer could not be dialled. `Clone`, since every RPC waiting on a dial gets its outcome.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum DialError {
    /// The handshake did not finish within [`CONNECT_TIMEOUT`].
    #[error("connecting to node {target} timed out")]
    TimedOut {
        /// The peer's node id.
        target: u64,
    },
    /// The endpoint could not connect.
    #[error("cannot connect to node {target}: {reason}")]
    Connect {
        /// The peer's node id.
        target: u64,
        /// The endpoint's error, in words.
        reason: String,
    },
    /// The dialling task ended without an outcome (it panicked).
    #[error("dialling node {target} failed: {reason}")]
    Lost {
        /// The peer's node id.
        target: u64,
        /// What the task's end said.
        reason: String,
    },
}

#[derive(Default)]
struct Table {
    open: HashMap<[u8; 32], Connection>,
    dialing: HashMap<[u8; 32], Dial>,
}

impl Table {
    fn open_to(&self, key: &[u8; 32]) -> Option<Connection> {
        self.open
            .get(key)
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }
}

/// Connections to peers by endpoint key, shared by every client the network factory hands out.
#[derive(Clone, Default)]
pub(crate) struct PeerConnections {
    table: Arc<Mutex<Table>>,
}

impl PeerConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open connection to `key`, if one is cached and not closed.
    #[cfg(test)]
    pub(crate) fn cached(&self, key: &[u8; 32]) -> Option<Connection> {
        self.lock().open_to(key)
    }

    /// The connection to `addr` (`target` in messages): the cached one, the dial under way, or a
    /// new dial. The dial goes on if the caller stops waiting for it.
    pub(crate) async fn get(
        &self,
        endpoint: &Endpoint,
        addr: EndpointAddr,
        target: u64,
        counters: &Arc<NetworkCounters>,
    ) -> Result<Connection, DialError> {
        let key = *addr.id.as_bytes();
        let dial = {
            let mut table = self.lock();
            if let Some(open) = table.open_to(&key) {
                return Ok(open);
            }
            match table.dialing.get(&key) {
                Some(dial) => dial.clone(),
                None => {
                    let dial = self.dial(endpoint.clone(), addr, target, counters.clone());
                    table.dialing.insert(key, dial.clone());
                    dial
                }
            }
        };
        dial.await
    }

    fn dial(
        &self,
        endpoint: Endpoint,
        addr: EndpointAddr,
        target: u64,
        counters: Arc<NetworkCounters>,
    ) -> Dial {
        let key = *addr.id.as_bytes();
        let connections = self.clone();
        let table = self.clone();
        let task = tokio::spawn(async move {
            let dialled = tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect(addr, alpn::RAFT))
                .await
                .map_err(|_| DialError::TimedOut { target })
                .and_then(|r| {
                    r.map_err(|e| DialError::Connect {
                        target,
                        reason: e.to_string(),
                    })
                });
            let mut table = table.lock();
            table.dialing.remove(&key);
            if let Ok(connection) = &dialled {
                counters.track(connection);
                table.open.insert(key, connection.clone());
            }
            dialled
        });
        task.map(move |joined| {
            joined.unwrap_or_else(|e| {
                // The task ended without clearing its entry: clear it, or every later RPC would
                // wait on this failed dial.
                connections.lock().dialing.remove(&key);
                Err(DialError::Lost {
                    target,
                    reason: e.to_string(),
                })
            })
        })
        .boxed()
        .shared()
    }

    /// Closes `failed`, a connection to `key` an RPC failed on, and drops it from the cache if it
    /// is still the cached one, so that the next RPC dials again; a newer connection cached
    /// meanwhile stays, and a dial under way goes on. A SIGKILLed peer leaves a connection that
    /// looks open until QUIC's idle timeout: without this every RPC would wait out its deadline
    /// on it.
    pub(crate) fn forget(&self, key: &[u8; 32], failed: &Connection, reason: &[u8]) {
        {
            let mut table = self.lock();
            if table
                .open
                .get(key)
                .is_some_and(|cached| cached.stable_id() == failed.stable_id())
            {
                table.open.remove(key);
            }
        }
        failed.close(0u32.into(), reason);
    }
}

#[cfg(test)]
#[path = "peer_connections_tests.rs"]
mod tests;
