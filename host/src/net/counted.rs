//! [`Counted`]: wraps a protocol handler so that every connection it accepts is counted under its
//! ALPN (connections, bytes in and out) in the node's [`NetworkCounters`], without the handler
//! knowing.

use std::sync::Arc;

use iroh::endpoint::{Accepting, Connection};
use iroh::protocol::{AcceptError, ProtocolHandler};

use crate::metrics::NetworkCounters;

/// A handler whose accepted connections are counted.
#[derive(Debug, Clone)]
pub struct Counted<H> {
    inner: H,
    counters: Arc<NetworkCounters>,
}

impl<H> Counted<H> {
    /// `inner`, counting in `counters`.
    pub(crate) fn new(inner: H, counters: Arc<NetworkCounters>) -> Self {
        Self { inner, counters }
    }
}

impl<H: ProtocolHandler> ProtocolHandler for Counted<H> {
    async fn on_accepting(&self, accepting: Accepting) -> Result<Connection, AcceptError> {
        self.inner.on_accepting(accepting).await
    }

    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        self.counters.track(&connection);
        self.inner.accept(connection).await
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await
    }
}
