//! Everything that crosses the wire, and nothing else: the messages of the four ALPNs, their frame
//! codec and limits, the raft log payload, members, the replicated cluster configuration, plugin
//! records, events and metric figures, and the one routing rule (which node serves an operation).
//!
//! This module is a leaf: it imports nothing else of the crate (a test in `layout_tests.rs` checks
//! that), so the wire format can be read, tested and changed in one place. Sockets and streams live
//! in `net/`; what a node does with a message lives in `node/`.

mod access;
pub mod alpn;
mod backup;
mod cluster_config;
mod codec;
mod discovery;
mod event;
mod frame_error;
mod latency_histogram;
mod log_info;
mod log_payload;
mod member;
mod metrics;
mod metrics_frame;
mod mgmt_frame;
mod operation;
mod plugin_kind;
mod plugin_limits;
mod plugin_registry;
pub mod raft_rpc;
mod reply;
mod request_error;
mod route;
mod session_tag;
mod state_hash;
mod status;
mod ticket;
mod watch;

pub use access::{Access, HEALTH_CHECK, Role, break_glass, member_may, op, resource};
pub use backup::{
    BackupInfo, HOST_KEY_PREFIX, MAX_BACKUP_ID, MAX_METADATA_BYTES, MAX_METADATA_PAIRS,
    check_backup_id, check_metadata,
};
pub use cluster_config::{CONFIG_FIELDS, ClusterConfig, ConfigError, MAX_ROOT_IDENTITIES};
pub use codec::{RequestId, decode_body, encode_frame};
pub use discovery::{
    Announce, AnnounceReply, AnnouncedRole, ClusterInfo, DiscoveryReply, DiscoveryRequest,
    JoinReply, JoinRequest, PeerStanding,
};
pub use event::ClusterEvent;
pub use frame_error::FrameError;
pub use latency_histogram::{LATENCY_BOUNDS_US, LatencyHistogram};
pub use log_info::{LogEntryInfo, LogEntryKind, LogInfo, SnapshotInfo};
pub use log_payload::{
    ApplyResponse, DeployEntry, LogPayload, PluginOutcome, RestoreEntry, RestoreOutcome, TypeConfig,
};
pub use member::{Member, MemberRole};
pub use metrics::{
    ActivePlugin, FollowerFigures, KeyspaceFigures, ManagementFigures, MetricsCategory,
    MetricsSnapshot, NetworkFigures, PeerRpcFigures, PluginFigures, ProcessFigures,
    ProtocolFigures, RaftFigures, StorageFigures,
};
pub use metrics_frame::{
    MIN_SUBSCRIBE_INTERVAL_MS, MetricsReply, MetricsRequest, subscribe_interval_ms,
};
pub use mgmt_frame::{ClientFrame, ServerFrame, UPLOAD_CHUNK};
pub use operation::{Consistency, DeployRequest, MAX_PLUGIN_CONFIG, Operation};
pub use plugin_kind::PluginKind;
pub use plugin_limits::PluginLimits;
pub use plugin_registry::{
    Activation, ActivationCause, DeployDecision, HISTORY_LIMIT, KindPlugins, MAX_PLUGIN_BYTES,
    PluginRecord, PluginRegistry, ROLLBACK_DEPTH, RollbackRefused,
};
pub use reply::{NodeStatus, Reply};
pub use request_error::RequestError;
pub use route::Route;
pub use session_tag::SessionTag;
pub use state_hash::{CapturePoints, Divergence, StateHash};
pub use status::{
    ClusterStatus, HealthStatus, LeadershipResponse, MemberHealth, MemberOperationResponse,
    MemberStatus, RaftRole,
};
pub use ticket::{JoinTicket, TicketError};
pub use watch::{MAX_WATCH_FRAME, WatchChange, WatchEnd, WatchRequest, WatchStart};
