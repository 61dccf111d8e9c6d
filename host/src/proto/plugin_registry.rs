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

    /// What deploying the plugin with `sha256` as `kind` would do.
    pub fn decide_deploy(
        &self,
        kind: PluginKind,
        sha256: &[u8; 32],
        default: Option<&PluginRecord>,
    ) -> DeployDecision {
        match self.active(kind).or(default) {
            Some(active) if active.sha256 == *sha256 => DeployDecision::Unchanged(active.clone()),
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SM: PluginKind = PluginKind::StateMachine;

    fn record(n: u8, index: u64) -> PluginRecord {
        PluginRecord {
            sha256: [n; 32],
            version: format!("v{n}"),
            index,
            size: 100,
            config: Bytes::new(),
        }
    }

    fn default() -> PluginRecord {
        PluginRecord {
            version: String::new(),
            ..record(0, 0)
        }
    }

    #[test]
    fn the_first_deploy_replaces_the_default_and_keeps_it_for_rollback() {
        let mut registry = PluginRegistry::default();
        assert_eq!(
            registry.decide_deploy(SM, &[1; 32], Some(&default())),
            DeployDecision::Activate {
                from_version: String::new()
            }
        );
        assert_eq!(
            registry.decide_deploy(SM, &[0; 32], Some(&default())),
            DeployDecision::Unchanged(default())
        );
        let dropped =
            registry.activate(SM, record(1, 10), ActivationCause::Deploy, Some(&default()));
        assert!(dropped.is_empty());
        assert_eq!(registry.active(SM), Some(&record(1, 10)));
        assert_eq!(
            registry.decide_rollback(SM, &[1; 32], Some(&default())),
            Ok(default())
        );
        assert_eq!(registry.referenced(), BTreeSet::from([[0; 32], [1; 32]]));
    }

    #[test]
    fn deploying_the_active_hash_changes_nothing() {
        let mut registry = PluginRegistry::default();
        registry.activate(SM, record(1, 10), ActivationCause::Deploy, None);
        assert_eq!(
            registry.decide_deploy(SM, &[1; 32], None),
            DeployDecision::Unchanged(record(1, 10))
        );
        assert_eq!(
            registry.decide_deploy(SM, &[2; 32], None),
            DeployDecision::Activate {
                from_version: "v1".into()
            }
        );
    }

    #[test]
    fn rollback_returns_to_the_previous_version_and_drops_the_newer_one() {
        let mut registry = PluginRegistry::default();
        registry.activate(SM, record(1, 10), ActivationCause::Deploy, None);
        registry.activate(SM, record(2, 20), ActivationCause::Deploy, None);
        let target = registry.decide_rollback(SM, &[2; 32], None).unwrap();
        assert_eq!(target, record(1, 10));
        let dropped = registry.activate(
            SM,
            PluginRecord {
                index: 30,
                ..target
            },
            ActivationCause::Rollback,
            None,
        );
        assert_eq!(dropped, vec![[2; 32]]);
        assert_eq!(registry.active(SM).map(|r| r.index), Some(30));
        assert_eq!(
            registry.decide_rollback(SM, &[1; 32], None),
            Err(RollbackRefused::NoPrevious { kind: SM })
        );
        let history: Vec<_> = registry
            .kind(SM)
            .unwrap()
            .history
            .iter()
            .map(|a| (a.index, a.cause))
            .collect();
        assert_eq!(
            history,
            vec![
                (10, ActivationCause::Deploy),
                (20, ActivationCause::Deploy),
                (30, ActivationCause::Rollback)
            ]
        );
    }

    #[test]
    fn a_rollback_racing_another_change_is_refused() {
        let mut registry = PluginRegistry::default();
        registry.activate(SM, record(1, 10), ActivationCause::Deploy, None);
        registry.activate(SM, record(2, 20), ActivationCause::Deploy, None);
        assert!(matches!(
            registry.decide_rollback(SM, &[1; 32], None),
            Err(RollbackRefused::Changed { .. })
        ));
        assert_eq!(
            registry.decide_rollback(PluginKind::Policy, &[1; 32], None),
            Err(RollbackRefused::NoPrevious {
                kind: PluginKind::Policy
            })
        );
    }

    #[test]
    fn kinds_are_independent() {
        let mut registry = PluginRegistry::default();
        registry.activate(SM, record(1, 10), ActivationCause::Deploy, None);
        registry.activate(
            PluginKind::Policy,
            record(7, 11),
            ActivationCause::Deploy,
            None,
        );
        assert_eq!(registry.active(SM), Some(&record(1, 10)));
        assert_eq!(registry.active(PluginKind::Policy), Some(&record(7, 11)));
        assert_eq!(registry.active(PluginKind::Backup), None);
    }

    proptest! {
        /// Whatever the sequence of deploys, the rollback stack and history stay bounded, the
        /// active plugin is the last activated, and dropped hashes are exactly those no longer
        /// referenced.
        #[test]
        fn bounded_and_consistent(steps in proptest::collection::vec((0u8..6, any::<bool>()), 0..64)) {
            let mut registry = PluginRegistry::default();
            for (index, (n, rollback)) in steps.into_iter().enumerate() {
                let index = index as u64 + 1;
                let before = registry.referenced();
                let active = registry.active(SM).map(|r| r.sha256).unwrap_or([0; 32]);
                let (record, cause) = if rollback {
                    match registry.decide_rollback(SM, &active, Some(&default())) {
                        Ok(target) => (PluginRecord { index, ..target }, ActivationCause::Rollback),
                        Err(_) => continue,
                    }
                } else {
                    match registry.decide_deploy(SM, &[n; 32], Some(&default())) {
                        DeployDecision::Unchanged(_) => continue,
                        DeployDecision::Activate { .. } => (record(n, index), ActivationCause::Deploy),
                    }
                };
                let sha = record.sha256;
                let dropped = registry.activate(SM, record, cause, Some(&default()));
                let after = registry.referenced();
                prop_assert_eq!(registry.active(SM).map(|r| r.sha256), Some(sha));
                prop_assert!(registry.kind(SM).unwrap().previous.len() <= ROLLBACK_DEPTH);
                prop_assert!(registry.kind(SM).unwrap().history.len() <= HISTORY_LIMIT);
                for hash in &dropped {
                    prop_assert!(before.contains(hash) && !after.contains(hash));
                }
                prop_assert!(after.contains(&sha));
            }
        }

        #[test]
        fn round_trips_through_postcard(steps in proptest::collection::vec(0u8..6, 0..12)) {
            let mut registry = PluginRegistry::default();
            for (index, n) in steps.into_iter().enumerate() {
                registry.activate(SM, record(n, index as u64), ActivationCause::Deploy, None);
            }
            let bytes = postcard::to_allocvec(&registry).unwrap();
            prop_assert_eq!(postcard::from_bytes::<PluginRegistry>(&bytes).unwrap(), registry);
        }
    }
}
