//! Errors setting up the endpoint.

/// Setting up or using the endpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The endpoint could not bind.
    #[error("cannot bind the iroh endpoint to {addr}: {reason}")]
    Bind {
        /// The requested address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// The node's secret key file could not be read or written.
    #[error("secret key file {path}: {reason}")]
    SecretKey {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The metrics HTTP listener (`--metrics-http`) could not bind.
    #[error("cannot serve metrics over HTTP on {addr}: {source}")]
    MetricsHttp {
        /// The requested address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}
