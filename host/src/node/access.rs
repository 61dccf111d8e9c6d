//! Access control: every management request is judged by the access policy active at this node's
//! applied index before it is served (a data request after the state machine has named what it
//! touches), on the node the caller reached and again on the leader it is forwarded to.
//!
//! [`Authorizer`] runs the policy (one instance, reloaded when the active policy changes, its
//! decisions cached per (caller, operation, resource) for the lifetime of that policy version by
//! `plugin::CachedPolicy`, so the common path is two hash lookups; faults and resources over
//! 1 KiB are never cached). It fails closed: no policy, a policy that cannot be loaded, a trap,
//! running out of fuel or a malformed decision all deny, with a reason that says
//! so. On top of the policy, [`overrides`] holds the two rules the host keeps whatever the policy
//! says (the break-glass root identities, and members reading each other's status).
//! `NodeService::authorize` puts them together and audits every denial: a log line, a counter per
//! operation and an `AccessDenied` event.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use iroh::EndpointId;

use super::inspect::View;
use crate::hash::sha256_hex;
use crate::net::Caller;
use crate::plugin::{CachedPolicy, Decision, EntryError, StateMachineReader};
use crate::proto::{
    Access, ClusterEvent, Operation, RequestError, break_glass, member_may, op, resource,
};
use crate::raft::StateMachineStore;

/// How long a node that has no policy yet waits for one before it denies: a node that joined a
/// moment ago applies the cluster's policy within a few heartbeats.
const POLICY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Who the caller is to this cluster, for the host's own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    /// One of the cluster's `root_identities`.
    pub(crate) root: bool,
    /// A member's endpoint key.
    pub(crate) member: bool,
}

/// Whether the host allows a request the policy denied, and why: the root identities may always
/// read status and health and deploy or roll back the policy (break glass); members may read
/// each other's status and health.
pub(crate) fn overrides(
    standing: Standing,
    operation: &str,
    resource: &str,
) -> Option<&'static str> {
    if standing.root && break_glass(operation, resource) {
        Some("a root identity (break glass)")
    } else if standing.member && member_may(operation) {
        Some("a cluster member")
    } else {
        None
    }
}

/// The policy version loaded, its instance and its cached decisions.
struct Loaded {
    generation: u64,
    /// The instance with its cached decisions, or why there is none (no policy deployed, or it
    /// would not load).
    instance: Result<CachedPolicy, String>,
    /// Whether no policy was deployed at all (as far as this node has applied).
    absent: bool,
}

/// The state-machine instance that names what data requests touch, with the sha256 of the
/// plugin it runs.
type NamingInstance = ([u8; 32], StateMachineReader);

/// This node's access-policy runtime.
pub(crate) struct Authorizer {
    state_machine: StateMachineStore,
    loaded: Mutex<Option<Loaded>>,
    /// Held while a policy version loads.
    loading: tokio::sync::Mutex<()>,
    /// A state-machine instance of its own, naming what data requests touch (the query instance
    /// may be busy with a long read), with the sha256 of the plugin it runs.
    resources: Arc<Mutex<Option<NamingInstance>>>,
}

impl Authorizer {
    pub(crate) fn new(state_machine: StateMachineStore) -> Self {
        Self {
            state_machine,
            loaded: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
            resources: Arc::default(),
        }
    }

    /// Loads the active policy now (at start, so that a node running `allow-all` says so).
    pub(crate) async fn preload(&self) {
        let generation = self.state_machine.policy_generation();
        let loaded = self.load(generation).await;
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
    }

    /// The policy's decision on `caller` doing `operation` on `resource`. A node that has
    /// applied no policy yet (it joined a moment ago) waits a little for the cluster's.
    pub(crate) async fn decide(
        &self,
        caller: &EndpointId,
        operation: &'static str,
        resource: &str,
    ) -> Decision {
        let waited_from = self.state_machine.policy_generation();
        let deadline = tokio::time::Instant::now() + POLICY_WAIT;
        loop {
            let (decision, absent) = self.decide_now(caller, operation, resource).await;
            if !absent
                || tokio::time::Instant::now() >= deadline
                || self.state_machine.policy_generation() != waited_from
            {
                return decision;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The decision of the policy this node has applied, and whether it has applied none.
    async fn decide_now(
        &self,
        caller: &EndpointId,
        operation: &'static str,
        resource: &str,
    ) -> (Decision, bool) {
        let generation = self.state_machine.policy_generation();
        let current = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|loaded| loaded.generation == generation);
        if !current {
            // One load at a time: the requests arriving with a new policy wait for it.
            let _loading = self.loading.lock().await;
            let still_stale = self
                .loaded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_none_or(|loaded| loaded.generation < generation);
            if still_stale {
                let fresh = self.load(generation).await;
                *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(fresh);
            }
        }
        let mut guard = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let Some(loaded) = guard.as_mut() else {
            return (
                Decision::Deny("no access policy is loaded yet; try again".into()),
                true,
            );
        };
        let absent = loaded.absent;
        (decide_loaded(loaded, caller, operation, resource), absent)
    }

    /// Compiles the active policy (from the on-disk cache when this node compiled it before).
    async fn load(&self, generation: u64) -> Loaded {
        let state_machine = self.state_machine.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let Some((record, wasm)) = state_machine.active_policy().map_err(|e| {
                (
                    false,
                    format!("this node cannot read its access policy ({e})"),
                )
            })?
            else {
                return Err((
                    true,
                    "no access policy is active on this cluster, so every request is denied; \
                     a root identity can deploy one (`iroh-raft plugin deploy --kind policy`)"
                        .to_string(),
                ));
            };
            let name = format!("policy {}", &sha256_hex(&record.sha256)[..12]);
            let engine = state_machine
                .plugin()
                .map_err(|e| (false, format!("this node cannot read its plugins ({e})")))?
                .engine()
                .clone();
            let policy = engine.load_policy(&name, &wasm).map_err(|e| {
                (
                    false,
                    format!("the active access policy cannot be loaded here ({e})"),
                )
            })?;
            if record.sha256 == crate::hash::sha256(crate::bundled::ALLOW_ALL) {
                tracing::warn!(
                    "the access policy is allow-all: every caller may do everything, including \
                     deploying plugins and changing the membership; use it for development only"
                );
            }
            Ok(CachedPolicy::new(policy.instance(record.config)))
        })
        .await
        .unwrap_or_else(|e| Err((false, format!("loading the access policy failed ({e})"))));
        let (instance, absent) = match loaded {
            Ok(policy) => (Ok(policy), false),
            Err((true, reason)) => {
                tracing::debug!("{reason}");
                (Err(reason), true)
            }
            Err((false, reason)) => {
                tracing::warn!("{reason}");
                (Err(reason), false)
            }
        };
        Loaded {
            generation,
            instance,
            absent,
        }
    }

    /// The resources a data request touches, as the state machine names them; a request it
    /// cannot narrow is [`resource::STATE_MACHINE`]. Runs on a blocking thread: naming the keys
    /// of a large command is the plugin's work, proportional to its size.
    pub(crate) async fn data_resources(
        &self,
        write: bool,
        bytes: Bytes,
    ) -> Result<Vec<String>, RequestError> {
        let storage = |e: crate::raft::RaftStorageError| RequestError::Storage {
            what: "its state machine".into(),
            reason: e.to_string(),
        };
        let plugin = self.state_machine.plugin().map_err(storage)?;
        if !plugin.info().has_resources {
            return Ok(vec![resource::STATE_MACHINE.to_string()]);
        }
        let (state_machine, slot) = (self.state_machine.clone(), self.resources.clone());
        tokio::task::spawn_blocking(move || {
            let sha256 = plugin.info().sha256;
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            if slot.as_ref().is_none_or(|(running, _)| *running != sha256) {
                *slot = Some((sha256, state_machine.reader().map_err(storage)?));
            }
            let Some((_, reader)) = slot.as_mut() else {
                return Ok(vec![resource::STATE_MACHINE.to_string()]);
            };
            named(write, reader.resources(&bytes, write))
        })
        .await
        .map_err(|e| RequestError::TaskFailed {
            task: "naming what a request touches".into(),
            reason: e.to_string(),
        })?
    }
}

/// What the state machine's `resources` export answered, as resources to judge.
fn named(
    write: bool,
    answer: Result<Result<Option<Vec<String>>, EntryError>, crate::plugin::RuntimeError>,
) -> Result<Vec<String>, RequestError> {
    let operation = if write { op::DATA_WRITE } else { op::DATA_READ };
    match answer {
        Ok(Ok(Some(names))) if !names.is_empty() => Ok(names),
        Ok(Ok(_)) => Ok(vec![resource::STATE_MACHINE.to_string()]),
        // The state machine cannot read it: judged as a whole. This node may not have applied
        // the deploy of the state machine the command is for yet; the apply path refuses a
        // command that really is malformed.
        Ok(Err(EntryError::Rejected(message))) => {
            tracing::debug!("the state machine names nothing for this request: {message}");
            Ok(vec![resource::STATE_MACHINE.to_string()])
        }
        Ok(Err(fault)) => Err(RequestError::Denied {
            operation: operation.into(),
            resource: String::new(),
            reason: format!(
                "the state machine failed to name what the request touches ({fault}), which \
                 denies"
            ),
        }),
        Err(error) => Err(RequestError::Storage {
            what: "its state machine".into(),
            reason: error.to_string(),
        }),
    }
}

fn decide_loaded(
    loaded: &mut Loaded,
    caller: &EndpointId,
    operation: &'static str,
    resource: &str,
) -> Decision {
    match &mut loaded.instance {
        Ok(policy) => policy.decide(caller, operation, resource),
        Err(reason) => Decision::Deny(reason.clone()),
    }
}

impl super::service::NodeService {
    /// Judges `caller` asking `access`: `Ok` to go on, or the denial (logged, counted and
    /// published).
    pub(crate) async fn authorize(
        &self,
        caller: &EndpointId,
        access: &Access,
    ) -> Result<(), RequestError> {
        let operation = access.operation();
        let resources = match access {
            Access::Fixed { resource, .. } => vec![resource.clone()],
            Access::Data { write: true, bytes }
                if bytes.len() as u64 > self.config().max_command_bytes =>
            {
                // Refused before the state machine reads it (the write path refuses it too).
                return Err(RequestError::CommandTooLarge {
                    len: bytes.len() as u64,
                    max: self.config().max_command_bytes,
                });
            }
            Access::Data { write, bytes } => {
                match self.authorizer.data_resources(*write, bytes.clone()).await {
                    Ok(resources) => resources,
                    Err(RequestError::Denied {
                        operation,
                        resource,
                        reason,
                    }) => return Err(self.denied(caller, operation, resource, reason)),
                    Err(other) => return Err(other),
                }
            }
        };
        for resource in resources {
            let Decision::Deny(reason) = self.authorizer.decide(caller, operation, &resource).await
            else {
                continue;
            };
            match overrides(self.standing(caller), operation, &resource) {
                Some(who) => tracing::info!(
                    caller = %caller,
                    operation,
                    resource,
                    "allowed as {who} although the policy denies: {reason}"
                ),
                None => return Err(self.denied(caller, operation.into(), resource, reason)),
            }
        }
        Ok(())
    }

    /// What the host's own rules know about `caller`.
    fn standing(&self, caller: &EndpointId) -> Standing {
        let key = caller.as_bytes();
        Standing {
            root: self.config().root_identities.contains(key),
            member: View::of(&self.raft())
                .members
                .values()
                .any(|member| member.endpoint_key == *key),
        }
    }

    /// Audits a denial and turns it into the caller's error.
    fn denied(
        &self,
        caller: &EndpointId,
        operation: String,
        resource: String,
        reason: String,
    ) -> RequestError {
        tracing::warn!(caller = %caller, operation, resource, "access denied: {reason}");
        self.counters.denied(&operation);
        self.state_machine
            .events()
            .publish(ClusterEvent::AccessDenied {
                caller: *caller.as_bytes(),
                operation: operation.clone(),
                resource: resource.clone(),
                reason: reason.clone(),
            });
        RequestError::Denied {
            operation,
            resource,
            reason,
        }
    }
}

impl super::service::NodeService {
    /// The caller a request is judged and served for: the peer itself, or — for a request a
    /// member forwards — the client it names. Only members may forward.
    fn effective_caller(&self, caller: &Caller) -> Result<EndpointId, RequestError> {
        let Some(original) = caller.on_behalf_of else {
            return Ok(caller.peer);
        };
        let key = caller.peer.as_bytes();
        let member = View::of(&self.raft())
            .members
            .values()
            .any(|member| member.endpoint_key == *key);
        if member {
            Ok(original)
        } else {
            tracing::warn!(peer = %caller.peer, "a non-member tried to forward a request");
            Err(RequestError::Denied {
                operation: "forward".into(),
                resource: String::new(),
                reason: "only a member of this cluster may forward a request on behalf of \
                         another caller"
                    .into(),
            })
        }
    }

    /// Judges a request as it arrives, as the caller it is served for. A forwarded request is
    /// judged again here, as the client the forwarding member names: a member's key vouches for
    /// who asked, never for what they may do (a learner or an observer forwards too).
    pub(crate) async fn judge(
        &self,
        caller: &Caller,
        operation: &Operation,
    ) -> Result<EndpointId, RequestError> {
        let caller = self.effective_caller(caller)?;
        self.authorize(&caller, &operation.access()).await?;
        Ok(caller)
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
