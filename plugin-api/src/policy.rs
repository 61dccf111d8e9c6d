//! The [`Policy`] trait and the glue that exports it.

use alloc::string::String;
use alloc::vec::Vec;

use crate::bindings::policy::exports::iroh_raft::plugin::authorizer;
use crate::bindings::policy::iroh_raft::plugin::policy_config;

/// One request to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The caller's iroh endpoint id, as `iroh-raft whoami` prints it.
    pub peer: String,
    /// The operation, e.g. `data.write`.
    pub operation: String,
    /// What the operation acts on; empty when it has no narrower target.
    pub resource: String,
}

/// The outcome of [`Policy::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is refused; the reason is shown to the caller.
    Deny(String),
}

/// An access-control policy. It fails closed: if it traps, the host denies.
pub trait Policy {
    /// Decides one request. `config` is the blob deployed with the policy (empty if none).
    fn authorize(config: &[u8], request: &Request) -> Decision;
}

/// Runs `P::authorize`.
pub fn authorize<P: Policy>(request: authorizer::Request) -> authorizer::Decision {
    crate::heap::enter_body();
    let decision = decide::<P>(request);
    crate::heap::leave();
    decision
}

fn decide<P: Policy>(request: authorizer::Request) -> authorizer::Decision {
    let config: Vec<u8> = policy_config::config();
    let request = Request {
        peer: request.peer,
        operation: request.operation,
        resource: request.resource,
    };
    match P::authorize(&config, &request) {
        Decision::Allow => authorizer::Decision::Allow,
        Decision::Deny(reason) => authorizer::Decision::Deny(reason),
    }
}
