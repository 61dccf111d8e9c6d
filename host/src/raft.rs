//! Raft: the type configuration, the fjall log store and the plugin-backed state machine.

mod types;

pub use types::{ApplyResponse, LogPayload, Member, TypeConfig};
