//! Sockets and streams: the iroh endpoint (no relays, no port mapping, no lookups), one server per
//! ALPN (each counted by [`Counted`]), the `--metrics-http` listener, the raft RPC client with its injectable link faults, and frames read from and written to QUIC streams. What the frames
//! say is `proto/`; what a node does with them is `node/`.

mod address;
mod admission;
mod advertised;
mod counted;
mod discovery_client;
mod discovery_server;
mod endpoint;
mod error;
mod frame;
mod link_faults;
mod metrics_http;
mod metrics_server;
mod mgmt_server;
mod plugin_upload;
mod raft_client;
mod raft_server;
mod watch_server;

pub use address::{format_node_address, parse_node_address};
pub use admission::Admission;
pub use advertised::{advertised_addrs, interface_addrs};
pub use counted::Counted;
pub use discovery_client::discovery_exchange;
pub use discovery_server::{DiscoveryServer, DiscoveryService};
pub use endpoint::{bind_endpoint, load_or_create_secret_key};
pub use error::NetError;
pub use frame::{read_frame, write_frame};
pub use link_faults::{InjectedFaults, LinkFault, LinkFaults};
pub use metrics_http::{Exposition, serve_metrics_http};
pub use metrics_server::{MetricsServer, MetricsService};
pub use mgmt_server::{Caller, MAX_UPLOADS_PER_CONNECTION, ManagementServer, ManagementService};
pub use plugin_upload::Upload;
pub(crate) use raft_client::PeerConnections;
pub use raft_client::{PeerClient, RaftNetwork};
pub use raft_server::{NOT_A_MEMBER, RaftServer};
pub use watch_server::WATCH_STALL_LIMIT;
