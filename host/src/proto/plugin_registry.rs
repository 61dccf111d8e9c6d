//! [`PluginRegistry`]: which plugin is active for each kind, the versions a rollback can return
//! to, and the history of activations. Replicated as part of the applied state, so every replica
//! holds the same registry at the same log index.
//!
//! Pure and deterministic: the decisions a deploy or a rollback makes ([`PluginRegistry::decide_deploy`],
//! [`PluginRegistry::decide_rollback`]) and their effect ([`PluginRegistry::activate`]) need no
//! I/O. Compiling, migrating and storing the bytes belong to the raft layer (`raft/apply/activate.rs`).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::PluginKind;

/// The largest plugin accepted, in bytes (uploads, log entries, snapshots).
pub const MAX_PLUGIN_BYTES: usize = 16 << 20;
/// How many earlier versions of each kind are kept (bytes included) for `plugin rollback`.
pub const ROLLBACK_DEPTH: usize = 4;
/// How many activations of each kind `plugin list` shows.
pub const HISTORY_LIMIT: usize = 16;

/// One plugin as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// sha256 of the `.wasm` bytes: the plugin's identity.
    pub sha256: [u8; 32],
    /// The version the operator gave it ("" if none).
    pub version: String,
    /// The log index where it was activated (0: the node's bundled default, active from the start).
    pub index: u64,
    /// Size of the `.wasm` bytes.
    pub size: u64,
    /// The configuration deployed with it (a policy's `policy-config`), possibly empty.
    pub config: Bytes,
}

/// Why a plugin became active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivationCause {
    /// `plugin deploy`.
    Deploy,
    /// `plugin rollback`.
    Rollback,
}

impl ActivationCause {
    /// The name shown by `plugin list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
        }
    }
}

/// One activation, as `plugin list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// The plugin activated.
    pub sha256: [u8; 32],
    /// Its version.
    pub version: String,
    /// The log index it took effect at.
    pub index: u64,
    /// Deploy or rollback.
    pub cause: ActivationCause,
}

/// The plugins of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindPlugins {
    /// The active plugin; `None` until the first deploy (the node's bundled default runs).
    pub active: Option<PluginRecord>,
    /// Earlier versions a rollback can return to, the most recent last.
    pub previous: Vec<PluginRecord>,
    /// Activations, oldest first, at most [`HISTORY_LIMIT`].
    pub history: Vec<Activation>,
}

/// What a deploy of a given hash would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployDecision {
    /// That plugin is already active: nothing changes.
    Unchanged(PluginRecord),
    /// Activate it, migrating from `from_version` (the replaced plugin's version).
    Activate {
        /// The version of the plugin it replaces ("" for the bundled default).
        from_version: String,
    },
}

/// Why a rollback cannot happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackRefused {
    /// Nothing was ever deployed for the kind, or every earlier version was already rolled back to.
    #[error(
        "there is no earlier {kind} plugin to roll back to (deploy one with `iroh-raft plugin deploy`)"
    )]
    NoPrevious {
        /// The kind.
        kind: PluginKind,
    },
    /// Another deploy or rollback changed the active plugin since the rollback was asked for.
    #[error(
        "the active {kind} plugin changed while the rollback was in flight (it is now {active}); \
         check `iroh-raft plugin list` and roll back again if you still want to"
    )]
    Changed {
        /// The kind.
        kind: PluginKind,
        /// The hex sha256 now active.
        active: String,
    },
}

/// The active plugin of every kind, what a rollback returns to, and the history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRegistry {
    kinds: BTreeMap<PluginKind, KindPlugins>,
}

impl PluginRegistry {
    /// The plugins of `kind`.
    pub fn kind(&self, kind: PluginKind) -> Option<&KindPlugins> {
        self.kinds.get(&kind)
    }

    /// The active plugin of `kind`, if one was ever deployed.
    pub fn active(&self, kind: PluginKind) -> Option<&PluginRecord> {
        self.kinds.get(&kind)?.active.as_ref()
    }

    /// What deploying the plugin with `sha256` and `config` as `kind` would do. The same bytes
    /// with another configuration activate again for a policy or backup handler (that is how a
    /// policy's grants change); a state machine has no configuration.
    pub fn decide_deploy(
        &self,
        kind: PluginKind,
        sha256: &[u8; 32],
        config: &[u8],
        default: Option<&PluginRecord>,
    ) -> DeployDecision {
        match self.active(kind).or(default) {
            Some(active)
                if active.sha256 == *sha256
                    && (kind == PluginKind::StateMachine || active.config == config) =>
            {
                DeployDecision::Unchanged(active.clone())
            }
            Some(active) => DeployDecision::Activate {
                from_version: active.version.clone(),
            },
            None => DeployDecision::Activate {
                from_version: String::new(),
            },
        }
    }

    /// The plugin a rollback of `kind` would reactivate, provided `expected_active` is still the
    /// active plugin (`default` is what runs when nothing was deployed).
    pub fn decide_rollback(
        &self,
        kind: PluginKind,
        expected_active: &[u8; 32],
        default: Option<&PluginRecord>,
    ) -> Result<PluginRecord, RollbackRefused> {
        let plugins = self.kinds.get(&kind);
        let active = plugins.and_then(|p| p.active.as_ref()).or(default);
        if let Some(active) = active
            && active.sha256 != *expected_active
        {
            return Err(RollbackRefused::Changed {
                kind,
                active: hex::encode(active.sha256),
            });
        }
        plugins
            .and_then(|p| p.previous.last())
            .cloned()
            .ok_or(RollbackRefused::NoPrevious { kind })
    }

    /// Makes `record` the active plugin of `kind` at `record.index`. A deploy keeps the replaced
    /// plugin (or `default`, the bundled plugin running before the first deploy) for rollbacks; a
    /// rollback drops the plugin it leaves. Returns the hashes no longer referenced, whose bytes
    /// may be deleted.
    pub fn activate(
        &mut self,
        kind: PluginKind,
        record: PluginRecord,
        cause: ActivationCause,
        default: Option<&PluginRecord>,
    ) -> Vec<[u8; 32]> {
        let before = self.referenced();
        let plugins = self.kinds.entry(kind).or_default();
        let replaced = plugins.active.take().or_else(|| default.cloned());
        match cause {
            ActivationCause::Deploy => {
                if let Some(replaced) = replaced {
                    plugins.previous.push(replaced);
                }
                if plugins.previous.len() > ROLLBACK_DEPTH {
                    let excess = plugins.previous.len() - ROLLBACK_DEPTH;
                    plugins.previous.drain(..excess);
                }
            }
            ActivationCause::Rollback => {
                if let Some(position) = plugins
                    .previous
                    .iter()
                    .rposition(|p| p.sha256 == record.sha256)
                {
                    plugins.previous.truncate(position);
                }
            }
        }
        plugins.history.push(Activation {
            sha256: record.sha256,
            version: record.version.clone(),
            index: record.index,
            cause,
        });
        if plugins.history.len() > HISTORY_LIMIT {
            let excess = plugins.history.len() - HISTORY_LIMIT;
            plugins.history.drain(..excess);
        }
        plugins.active = Some(record);
        let after = self.referenced();
        before.difference(&after).copied().collect()
    }

    /// Every hash whose bytes the cluster still needs: the active plugins and the rollback targets.
    pub fn referenced(&self) -> BTreeSet<[u8; 32]> {
        self.kinds
            .values()
            .flat_map(|p| p.active.iter().chain(&p.previous))
            .map(|record| record.sha256)
            .collect()
    }

    /// The kinds with a deployed plugin, in order.
    pub fn kinds(&self) -> impl Iterator<Item = (PluginKind, &KindPlugins)> {
        self.kinds.iter().map(|(kind, plugins)| (*kind, plugins))
    }
}

#[cfg(test)]
#[path = "plugin_registry_tests.rs"]
mod tests;
