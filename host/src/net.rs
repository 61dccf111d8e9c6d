//! The network: the four ALPNs on one iroh endpoint, the length-prefixed postcard frames they
//! speak, and endpoint set-up for loopback and LAN use (no relays, no port mapping, no lookups).

mod address;
pub mod alpn;
mod discovery_wire;
mod endpoint;
mod error;
mod frame;
mod mgmt_server;
mod mgmt_types;
mod mgmt_wire;
mod plugin_upload;
mod raft_client;
mod raft_server;
mod raft_wire;
mod ticket;

pub use address::{format_node_address, parse_node_address};
pub use discovery_wire::{JoinReply, JoinRequest};
pub use endpoint::{bind_endpoint, load_or_create_secret_key};
pub use error::{FrameError, NetError};
pub use frame::{RequestId, decode_body, encode_frame, read_frame, write_frame};
pub use mgmt_server::{ManagementServer, ManagementService};
pub use mgmt_types::{
    ClusterStatus, HealthStatus, LeadershipResponse, LogEntryInfo, LogEntryKind, LogInfo,
    MemberHealth, MemberOperationResponse, MemberStatus, RaftRole, SnapshotInfo,
};
pub use mgmt_wire::{
    ClientFrame, Consistency, DeployRequest, MAX_PLUGIN_CONFIG, NodeStatus, Operation, Reply,
    RequestError, ServerFrame, UPLOAD_CHUNK,
};
pub use raft_client::{PeerClient, RaftNetwork};
pub use raft_server::{Admission, NOT_A_MEMBER, RaftServer};
pub use ticket::{JoinTicket, TicketError};
