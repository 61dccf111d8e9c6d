//! The access policy's runtime: [`CompiledPolicy`], a validated policy component, and
//! [`PolicyInstance`], one long-lived instance that decides requests. It fails closed: a trap,
//! running out of fuel or memory, or a decision that does not lift means deny, with a reason that
//! says so; the next decision runs on a fresh instance.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Store;

use super::bindings::policy::iroh_raft::plugin::{log, policy_config};
use super::bindings::policy::{Policy, PolicyPre, exports::iroh_raft::plugin::authorizer};
use super::engine::PluginEngine;
use super::memory::MemoryCap;
use super::trap::{EntryError, classify};

/// Fuel for one decision (about as many wasm instructions). A decision that needs more is a
/// policy bug; it denies, and a loop in the policy cannot stall the node.
pub(crate) const POLICY_FUEL: u64 = 10_000_000;
/// Fuel for instantiating the policy (its start code).
const INSTANTIATE_FUEL: u64 = 100_000_000;
/// The policy's linear memory cap.
pub(crate) const POLICY_MEMORY: usize = 64 << 20;
/// The longest denial reason passed on to the caller; longer ones are cut.
const MAX_REASON: usize = 1024;

/// What a policy instance's store carries.
pub(crate) struct PolicyState {
    plugin: Arc<str>,
    config: Bytes,
    memory: MemoryCap,
}

impl policy_config::Host for PolicyState {
    fn config(&mut self) -> wasmtime::Result<Vec<u8>> {
        Ok(self.config.to_vec())
    }
}

impl log::Host for PolicyState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(target: "iroh_raft::plugin", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "iroh_raft::plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "iroh_raft::plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "iroh_raft::plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "iroh_raft::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

/// Adds the policy world's imports to `linker`.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<PolicyState>,
) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    policy_config::add_to_linker::<PolicyState, HasSelf<PolicyState>>(linker, |state| state)?;
    log::add_to_linker::<PolicyState, HasSelf<PolicyState>>(linker, |state| state)
}

/// A policy's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// Refused, with the reason the caller is shown.
    Deny(String),
}

/// A validated, compiled policy component. Cheap to clone.
#[derive(Clone)]
pub struct CompiledPolicy {
    name: Arc<str>,
    pre: PolicyPre<PolicyState>,
    engine: PluginEngine,
}

impl CompiledPolicy {
    pub(crate) fn new(name: &str, pre: PolicyPre<PolicyState>, engine: PluginEngine) -> Self {
        Self {
            name: name.into(),
            pre,
            engine,
        }
    }

    /// An instance deciding with `config` (the blob deployed with the policy).
    pub fn instance(&self, config: Bytes) -> PolicyInstance {
        PolicyInstance {
            policy: self.clone(),
            config,
            live: None,
        }
    }

    fn instantiate(&self, config: &Bytes) -> wasmtime::Result<(Store<PolicyState>, Policy)> {
        let mut store = Store::new(
            self.engine.wasmtime(),
            PolicyState {
                plugin: self.name.clone(),
                config: config.clone(),
                memory: MemoryCap::new(POLICY_MEMORY),
            },
        );
        store.limiter(|state| &mut state.memory);
        store.set_fuel(INSTANTIATE_FUEL)?;
        let bindings = self.pre.instantiate(&mut store)?;
        Ok((store, bindings))
    }
}

/// One instance of a policy, deciding requests one at a time.
pub struct PolicyInstance {
    policy: CompiledPolicy,
    config: Bytes,
    live: Option<(Store<PolicyState>, Policy)>,
}

impl PolicyInstance {
    /// Decides whether `peer` may do `operation` on `resource`. Anything but a clean decision
    /// denies.
    pub fn authorize(&mut self, peer: &str, operation: &str, resource: &str) -> Decision {
        self.decide(peer, operation, resource)
            .unwrap_or_else(Decision::Deny)
    }

    /// The policy's own decision, or why it could not decide (it would not instantiate, it
    /// trapped, it ran out of fuel): a fault, which denies but says nothing about the caller.
    pub fn decide(
        &mut self,
        peer: &str,
        operation: &str,
        resource: &str,
    ) -> Result<Decision, String> {
        let request = authorizer::Request {
            peer: peer.to_string(),
            operation: operation.to_string(),
            resource: resource.to_string(),
        };
        let (store, bindings) = match &mut self.live {
            Some(live) => live,
            None => {
                let mut live = self.policy.instantiate(&self.config).map_err(|error| {
                    format!(
                        "the access policy cannot be instantiated ({}), so every request is \
                         denied; a root identity can deploy another policy",
                        first_line(&error)
                    )
                })?;
                // A first call with an empty request: a policy that prepares its configuration
                // on its first decision (`PreparedPolicy`) keeps what that call allocated for
                // good, so that call must not be a caller's (whose resource may be megabytes).
                let warm_up = authorizer::Request {
                    peer: String::new(),
                    operation: String::new(),
                    resource: String::new(),
                };
                call(&mut live.0, &live.1, &warm_up)?;
                self.live.insert(live)
            }
        };
        let decision = call(store, bindings, &request);
        if decision.is_err() {
            // A trapped instance refuses further calls: the next decision gets a fresh one.
            self.live = None;
        }
        decision
    }
}

/// One call of the policy's `authorize` on `live`, with a decision's fuel.
fn call(
    store: &mut Store<PolicyState>,
    bindings: &Policy,
    request: &authorizer::Request,
) -> Result<Decision, String> {
    store
        .set_fuel(POLICY_FUEL)
        .map_err(|error| format!("the access policy cannot be run ({error})"))?;
    match bindings
        .iroh_raft_plugin_authorizer()
        .call_authorize(&mut *store, request)
    {
        Ok(authorizer::Decision::Allow) => Ok(Decision::Allow),
        Ok(authorizer::Decision::Deny(mut reason)) => {
            if reason.len() > MAX_REASON {
                let mut cut = MAX_REASON;
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                reason.truncate(cut);
                reason.push('…');
            }
            Ok(Decision::Deny(reason))
        }
        Err(error) => {
            let fault = match classify(&error, POLICY_FUEL) {
                EntryError::OutOfFuel { budget } => {
                    format!("it ran out of fuel: a decision may take {budget} units")
                }
                other => other.to_string(),
            };
            Err(format!(
                "the access policy failed to decide ({fault}), which denies"
            ))
        }
    }
}

/// Decisions kept per policy version before the cache starts over.
const CACHE_LIMIT: usize = 1 << 16;
/// Bytes of resources and reasons kept per policy version before the cache starts over.
const CACHE_BYTES: usize = 8 << 20;

/// Cached decisions: by (caller key, operation), then by resource (looked up as a `&str`).
type DecisionCache = HashMap<([u8; 32], &'static str), HashMap<Box<str>, Decision>>;

/// A policy instance with its decisions cached per (caller, operation, resource), for as long as
/// this policy version (bytes and configuration) is active: a decision depends on nothing else.
/// Only the policy's own decisions are cached; a fault (a trap, running out of fuel) denies this
/// request alone, and the next one asks the policy again.
pub struct CachedPolicy {
    instance: PolicyInstance,
    cache: DecisionCache,
    cached: usize,
    bytes: usize,
}

impl CachedPolicy {
    /// The longest resource whose decision is cached: a longer one (a long key) is decided every
    /// time, so no caller can fill memory with decisions about keys it invents.
    pub const MAX_CACHED_RESOURCE: usize = 1024;

    /// Caches the decisions of `instance`.
    pub fn new(instance: PolicyInstance) -> Self {
        Self {
            instance,
            cache: HashMap::new(),
            cached: 0,
            bytes: 0,
        }
    }

    /// Whether `caller` may do `operation` on `resource`: from the cache, or from the policy
    /// (then cached, a denial too, if the resource is short).
    pub fn decide(
        &mut self,
        caller: &iroh::EndpointId,
        operation: &'static str,
        resource: &str,
    ) -> Decision {
        let key = (*caller.as_bytes(), operation);
        if let Some(decision) = self.cache.get(&key).and_then(|by| by.get(resource)) {
            return decision.clone();
        }
        let decision = match self
            .instance
            .decide(&caller.to_string(), operation, resource)
        {
            Ok(decision) => decision,
            Err(fault) => return Decision::Deny(fault),
        };
        if resource.len() > Self::MAX_CACHED_RESOURCE {
            return decision;
        }
        let weight = resource.len()
            + match &decision {
                Decision::Allow => 0,
                Decision::Deny(reason) => reason.len(),
            };
        if self.cached >= CACHE_LIMIT || self.bytes + weight > CACHE_BYTES {
            self.cache.clear();
            self.cached = 0;
            self.bytes = 0;
        }
        self.cache
            .entry(key)
            .or_default()
            .insert(resource.into(), decision.clone());
        self.cached += 1;
        self.bytes += weight;
        decision
    }

    /// How many decisions are cached.
    pub fn cached(&self) -> usize {
        self.cached
    }
}

/// The first line of `error` with its causes, for a one-line message.
pub(crate) fn first_line(error: &wasmtime::Error) -> String {
    format!("{error:#}")
        .lines()
        .next()
        .unwrap_or("unknown fault")
        .to_string()
}
