//! Activating a plugin at a log index: what a replica does with a `Deploy` or `Rollback` entry.
//!
//! Every replica runs the same steps on the same entry, so every replica reaches the same verdict:
//! the bytes must match their hash, the component must compile against its kind's world, and a
//! state machine's `migrate(from-version)` must succeed; its writes commit in one batch with the
//! new [`AppliedState`] (registry included). A refusal leaves the old plugin active and fails the
//! entry with the reason, on every replica alike. Entries before the index ran on the old plugin
//! (they were committed before the activation); entries after it run on the new instance, which
//! is created right here, at the same log point everywhere.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::EntryPayload;
use openraft::type_config::alias::EntryOf;

use crate::hash::{sha256, sha256_hex};
use crate::plugin::{
    CompiledStateMachine, PluginError, RuntimeError, StateMachineApplier, StateMachineReader,
};
use crate::proto::{
    ActivationCause, ApplyResponse, ClusterEvent, DeployDecision, DeployEntry, LogPayload,
    PluginKind, PluginLimits, PluginOutcome, PluginRecord, PluginRegistry, TypeConfig,
};
use crate::raft::RaftStorageError;
use crate::raft::apply::applied_state::AppliedState;
use crate::store::{FjallStateStore, PluginBlobs};

/// The state-machine plugin applying entries now, and its instance.
pub(crate) struct ActiveMachine {
    pub(crate) plugin: CompiledStateMachine,
    pub(crate) applier: StateMachineApplier,
}

/// Everything an activation needs besides the entry.
pub(crate) struct Activator<'a> {
    /// The state machine the node runs when nothing was deployed (the bundled default); its engine
    /// compiles deployed plugins and its name names the keyspace.
    pub(crate) default: &'a CompiledStateMachine,
    pub(crate) store: &'a FjallStateStore,
    pub(crate) blobs: &'a PluginBlobs,
    pub(crate) limits: PluginLimits,
    /// The query instance, replaced under its lock together with the activating commit, so a read
    /// never pairs one plugin with the other's data.
    pub(crate) reader: &'a Mutex<StateMachineReader>,
}

impl Activator<'_> {
    /// New budgets from this entry on: the applying instance is re-created with them (keeping
    /// the transaction's writes), and so is the query instance. `Ok(Err(reason))` when the plugin
    /// cannot run under them: nothing changed, and the entry that asked is refused.
    pub(crate) fn set_limits(
        &self,
        machine: &mut ActiveMachine,
        limits: PluginLimits,
    ) -> Result<Result<(), String>, RaftStorageError> {
        if let Err(reason) = machine.applier.set_limits(limits)? {
            return Ok(Err(reason));
        }
        let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        *reader = machine.plugin.reader(Arc::new(self.store.clone()), limits);
        Ok(Ok(()))
    }
}

/// The default plugin of `kind` as a registry record: the bundled state machine, active from the
/// start; the other kinds have none.
pub(crate) fn default_record(
    default: &CompiledStateMachine,
    kind: PluginKind,
) -> Option<PluginRecord> {
    (kind == PluginKind::StateMachine).then(|| PluginRecord {
        sha256: default.info().sha256,
        version: String::new(),
        index: 0,
        size: default.wasm().len() as u64,
        config: Bytes::new(),
    })
}

/// Why an activation was refused (the entry fails with this text on every replica).
type Refusal = String;

/// A plugin to activate, and why.
struct Change<'w> {
    kind: PluginKind,
    wasm: &'w Bytes,
    record: PluginRecord,
    cause: ActivationCause,
    /// The version of the plugin it replaces, handed to `migrate`.
    from_version: String,
}

impl Activator<'_> {
    /// Applies a `Deploy` or `Rollback` entry. `next` holds the state up to the entry before, all
    /// of it committed; on activation this commits the migration's writes with `next` advanced to
    /// the entry. Pushes a [`ClusterEvent::PluginDeployed`] to `events` for the caller to publish
    /// once the whole apply call is done.
    pub(crate) fn apply(
        &self,
        machine: &mut ActiveMachine,
        next: &mut AppliedState,
        entry: &EntryOf<TypeConfig>,
        events: &mut Vec<ClusterEvent>,
    ) -> Result<ApplyResponse, RaftStorageError> {
        let index = entry.log_id.index;
        let outcome = match &entry.payload {
            EntryPayload::Normal(LogPayload::Deploy(deploy)) => {
                self.deploy(machine, next, entry, deploy)?
            }
            EntryPayload::Normal(LogPayload::Rollback { kind, from_sha256 }) => {
                self.rollback(machine, next, entry, *kind, from_sha256)?
            }
            _ => return Ok(ApplyResponse::None),
        };
        Ok(match outcome {
            Ok(outcome) => {
                if let PluginOutcome::Activated {
                    kind,
                    sha256,
                    version,
                    from_version,
                    ..
                } = &outcome
                {
                    tracing::info!(
                        %kind, index, sha256 = %sha256_hex(sha256), version, from_version,
                        "plugin activated"
                    );
                    let rollback = matches!(
                        entry.payload,
                        EntryPayload::Normal(LogPayload::Rollback { .. })
                    );
                    events.push(if rollback {
                        ClusterEvent::PluginRolledBack {
                            kind: *kind,
                            sha256: *sha256,
                            version: version.clone(),
                            index,
                        }
                    } else {
                        ClusterEvent::PluginDeployed {
                            kind: *kind,
                            sha256: *sha256,
                            version: version.clone(),
                            index,
                        }
                    });
                }
                ApplyResponse::Plugin(outcome)
            }
            Err(reason) => {
                tracing::warn!(index, "plugin change refused: {reason}");
                ApplyResponse::Failed(reason)
            }
        })
    }

    fn deploy(
        &self,
        machine: &mut ActiveMachine,
        next: &mut AppliedState,
        entry: &EntryOf<TypeConfig>,
        deploy: &DeployEntry,
    ) -> Result<Result<PluginOutcome, Refusal>, RaftStorageError> {
        let kind = deploy.kind;
        if sha256(&deploy.wasm) != deploy.sha256 {
            return Ok(Err(format!(
                "the deployed bytes hash to {}, not to the {} the deploy names",
                sha256_hex(&sha256(&deploy.wasm)),
                sha256_hex(&deploy.sha256)
            )));
        }
        // Decided from the replicated registry alone: a node's own default (built by its own
        // toolchain) must not make replicas decide differently. A new cluster's first entries
        // activate its initial state machine, so the registry always names one.
        let from_version =
            match next
                .plugins
                .decide_deploy(kind, &deploy.sha256, &deploy.config, None)
            {
                DeployDecision::Unchanged(active) => {
                    return Ok(Ok(PluginOutcome::Unchanged {
                        kind,
                        sha256: active.sha256,
                        version: active.version,
                        since: active.index,
                    }));
                }
                DeployDecision::Activate { from_version } => from_version,
            };
        let record = PluginRecord {
            sha256: deploy.sha256,
            version: deploy.version.clone(),
            index: entry.log_id.index,
            size: deploy.wasm.len() as u64,
            config: deploy.config.clone(),
        };
        self.activate(
            machine,
            next,
            entry,
            Change {
                kind,
                wasm: &deploy.wasm,
                record,
                cause: ActivationCause::Deploy,
                from_version,
            },
        )
    }

    fn rollback(
        &self,
        machine: &mut ActiveMachine,
        next: &mut AppliedState,
        entry: &EntryOf<TypeConfig>,
        kind: PluginKind,
        from_sha256: &[u8; 32],
    ) -> Result<Result<PluginOutcome, Refusal>, RaftStorageError> {
        let target = match next.plugins.decide_rollback(kind, from_sha256, None) {
            Ok(target) => target,
            Err(refused) => return Ok(Err(refused.to_string())),
        };
        let from_version = next
            .plugins
            .active(kind)
            .map(|active| active.version.clone())
            .unwrap_or_default();
        let wasm = if target.sha256 == self.default.info().sha256 {
            self.default.wasm().clone()
        } else {
            self.blobs
                .get(&target.sha256)?
                .ok_or_else(|| RaftStorageError::Corrupt {
                    subject: "plugin blobs",
                    reason: format!(
                        "the registry keeps {} {} for rollback but its bytes are missing",
                        kind,
                        sha256_hex(&target.sha256)
                    ),
                })?
        };
        let record = PluginRecord {
            index: entry.log_id.index,
            ..target
        };
        self.activate(
            machine,
            next,
            entry,
            Change {
                kind,
                wasm: &wasm,
                record,
                cause: ActivationCause::Rollback,
                from_version,
            },
        )
    }

    fn activate(
        &self,
        machine: &mut ActiveMachine,
        next: &mut AppliedState,
        entry: &EntryOf<TypeConfig>,
        change: Change<'_>,
    ) -> Result<Result<PluginOutcome, Refusal>, RaftStorageError> {
        let Change {
            kind,
            wasm,
            record,
            cause,
            from_version,
        } = change;
        let mut candidate = None;
        match kind {
            PluginKind::StateMachine => {
                let plugin = match self
                    .default
                    .engine()
                    .load_state_machine(self.default.name(), wasm)
                {
                    Ok(plugin) => plugin,
                    Err(error) => return refused(&record.sha256, error),
                };
                let store = Arc::new(self.store.clone());
                let mut applier = match plugin.applier(store, next.limits(self.limits)) {
                    Ok(applier) => applier,
                    // The same budgets on every replica: the same refusal everywhere.
                    Err(RuntimeError::Instantiate { reason, .. }) => {
                        return Ok(Err(format!(
                            "the component cannot run under the cluster's plugin budgets: {reason}"
                        )));
                    }
                    Err(other) => return Err(other.into()),
                };
                if let Err(error) = applier.migrate(&from_version, entry.log_id.index)? {
                    applier.abort();
                    return Ok(Err(format!(
                        "`migrate` from version {from_version:?} failed ({error}); the previous \
                         plugin stays active"
                    )));
                }
                candidate = Some((plugin, applier));
            }
            // Their hosts read the registry; here the component need only fit its world.
            PluginKind::Policy | PluginKind::Backup => {
                if let Err(error) = self.default.engine().validate(kind, wasm) {
                    return refused(&record.sha256, error);
                }
            }
        }

        // The bytes go first: a crash may leave an unused blob, never a registry naming a
        // missing one.
        self.blobs.put(wasm)?;
        let outcome = PluginOutcome::Activated {
            kind,
            sha256: record.sha256,
            version: record.version.clone(),
            index: entry.log_id.index,
            from_version,
        };
        let dropped = next.plugins.activate(kind, record.clone(), cause, None);
        next.last_applied = Some(entry.log_id);
        match candidate {
            Some((plugin, mut applier)) => {
                next.plugin_sha256 = record.sha256;
                let mark = next.to_mark()?;
                let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
                applier.commit(&mark)?;
                *reader = plugin.reader(Arc::new(self.store.clone()), next.limits(self.limits));
                drop(reader);
                *machine = ActiveMachine { plugin, applier };
            }
            None => machine.applier.commit(&next.to_mark()?)?,
        }
        for hash in dropped {
            self.blobs.remove(&hash)?;
        }
        Ok(Ok(outcome))
    }
}

/// A component the activation could not load. What the bytes themselves decide (not WebAssembly,
/// a core module, the wrong world, a forbidden import, mismatched types) is refused, the same on
/// every replica. A compile or engine failure is this node's own: the leader compiled the same
/// bytes before proposing them, so running the previous plugin here would diverge from its
/// peers; the node stops instead, with the reason.
fn refused<T>(
    sha256: &[u8; 32],
    error: PluginError,
) -> Result<Result<T, Refusal>, RaftStorageError> {
    if unrunnable_here(&error) {
        return Err(RaftStorageError::PluginUnrunnable {
            sha256: sha256_hex(sha256),
            reason: error.to_string(),
        });
    }
    Ok(Err(format!("the component was refused: {error}")))
}

/// Whether a load failure says more about this node than about the component.
fn unrunnable_here(error: &PluginError) -> bool {
    matches!(error, PluginError::Invalid { .. } | PluginError::Engine(_))
}

/// The state-machine plugin `registry` names active: `default` unless another was deployed, in
/// which case its bytes come from `blobs` (compiled from the cache, not again).
pub(crate) fn load_active(
    default: &CompiledStateMachine,
    blobs: &PluginBlobs,
    registry: &PluginRegistry,
) -> Result<CompiledStateMachine, RaftStorageError> {
    let Some(active) = registry.active(PluginKind::StateMachine) else {
        return Ok(default.clone());
    };
    if active.sha256 == default.info().sha256 {
        return Ok(default.clone());
    }
    let wasm = blobs
        .get(&active.sha256)?
        .ok_or_else(|| RaftStorageError::Corrupt {
            subject: "plugin blobs",
            reason: format!(
                "the active state machine {} has no stored bytes",
                sha256_hex(&active.sha256)
            ),
        })?;
    default
        .engine()
        .load_state_machine(default.name(), &wasm)
        .map_err(|error| RaftStorageError::PluginLoad {
            sha256: sha256_hex(&active.sha256),
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_compile_and_engine_failures_stop_the_node() {
        assert!(unrunnable_here(&PluginError::Invalid {
            reason: "unsupported feature".into()
        }));
        assert!(unrunnable_here(&PluginError::Engine("cache".into())));
        assert!(!unrunnable_here(&PluginError::NotWasm));
        assert!(!unrunnable_here(&PluginError::CoreModule));
        assert!(!unrunnable_here(&PluginError::Mismatch {
            kind: PluginKind::Policy,
            reason: "types".into()
        }));
        let stop = refused::<()>(&[1; 32], PluginError::Engine("cache".into())).unwrap_err();
        assert!(stop.to_string().contains("the leader accepted"), "{stop}");
        let refusal = refused::<()>(&[1; 32], PluginError::NotWasm)
            .unwrap()
            .unwrap_err();
        assert!(refusal.contains("refused"), "{refusal}");
    }
}
