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

/// An access-control policy that reads its configuration once per instance: [`prepare`] turns
/// the deployed blob into `Config` on the first decision, and every decision after that gets the
/// same value. For a policy whose configuration takes real work to read (the bundled `rbac`
/// parses JSON); otherwise implement [`Policy`]. The host makes a new instance for every policy
/// version, so `Config` never outlives its configuration.
///
/// # Safety
///
/// `Config` must not allocate after [`prepare`] returns: no interior mutability (`RefCell`,
/// `Cell`, a lazily filled cache) that grows or replaces heap memory during [`authorize`]. What
/// [`prepare`] allocated is kept for the instance's lifetime, but memory allocated during a
/// decision is reused by the next call: a `Config` that kept a pointer to it would read freed
/// memory. Plain data (`Vec`, `String`, maps, parsed structures) built once in [`prepare`] is
/// fine.
///
/// [`prepare`]: PreparedPolicy::prepare
/// [`authorize`]: PreparedPolicy::authorize
pub unsafe trait PreparedPolicy {
    /// What the policy makes of its configuration.
    type Config: 'static;

    /// Reads the configuration blob deployed with the policy (empty if none). Runs once.
    fn prepare(config: &[u8]) -> Self::Config;

    /// Decides one request.
    fn authorize(config: &Self::Config, request: &Request) -> Decision;
}

/// The prepared configuration of this instance's [`PreparedPolicy`], once the first decision
/// made it. It lives in memory the allocator keeps for good (`heap::pin_body`).
static mut PREPARED: Option<alloc::boxed::Box<dyn core::any::Any>> = None;

/// Runs `P::authorize` on the configuration it prepared on the first call.
pub fn authorize_prepared<P: PreparedPolicy>(request: authorizer::Request) -> authorizer::Decision {
    crate::heap::enter_body();
    // SAFETY: a component instance runs one thread and this is its only access to `PREPARED`.
    // (`&mut PREPARED`, which clippy suggests, is a reference to a `static mut`.)
    #[allow(clippy::deref_addrof)]
    let prepared = unsafe { &mut *(&raw mut PREPARED) };
    if prepared.is_none() {
        let config: Vec<u8> = policy_config::config();
        let value: alloc::boxed::Box<dyn core::any::Any> =
            alloc::boxed::Box::new(P::prepare(&config));
        drop(config);
        *prepared = Some(value);
        crate::heap::pin_body();
    }
    let request = Request {
        peer: request.peer,
        operation: request.operation,
        resource: request.resource,
    };
    let decision = match prepared
        .as_ref()
        .and_then(|value| value.downcast_ref::<P::Config>())
    {
        Some(config) => P::authorize(config, &request),
        None => Decision::Deny("the policy's prepared configuration is missing".into()),
    };
    crate::heap::leave();
    match decision {
        Decision::Allow => authorizer::Decision::Allow,
        Decision::Deny(reason) => authorizer::Decision::Deny(reason),
    }
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
