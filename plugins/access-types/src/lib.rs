//! The one list of iroh-raft's access-control vocabulary, shared by the host, the bundled RBAC
//! policy and the read-only policy:
//!
//! - [`op`]: the operation name of every request the host authorizes;
//! - [`Role`]: the fixed roles and the operations each allows;
//! - [`resource`]: how a data request names the keys it touches (`key/…`, `prefix/…`,
//!   `state-machine`);
//! - [`RbacConfig`]: the RBAC policy's configuration (grants of roles to peers) and
//!   [`RbacConfig::decide`], its pure decision.
//!
//! ```
//! use iroh_raft_access_types::{Decision, RbacConfig, op, resource};
//!
//! let peer = "ab".repeat(32);
//! let config = RbacConfig::from_json(format!(r#"{{
//!     "grants": [
//!         {{ "name": "app", "peer": "{peer}", "role": "admin", "write_prefixes": ["app/"] }}
//!     ]
//! }}"#).as_bytes())?;
//! assert_eq!(config.decide(&peer, op::DATA_WRITE, &resource::key(b"app/x")), Decision::Allow);
//! assert!(matches!(config.decide(&peer, op::DATA_WRITE, &resource::key(b"sys/x")), Decision::Deny(_)));
//! # Ok::<(), String>(())
//! ```
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod config;
mod decide;
pub mod op;
pub mod resource;
mod role;

pub use config::{Grant, RbacConfig};
pub use decide::Decision;
pub use role::{ParseRoleError, Role};
