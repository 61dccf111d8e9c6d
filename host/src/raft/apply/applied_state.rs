//! [`AppliedState`]: what the state machine records atomically with every commit of its data —
//! the last applied log id, the last membership and the active plugin — stored in
//! [`AppliedMark::extra`].

use openraft::type_config::alias::{LogIdOf, StoredMembershipOf};
use serde::{Deserialize, Serialize};

use crate::proto::{ClusterConfig, PluginLimits, PluginRegistry, TypeConfig};
use crate::raft::apply::sessions::Sessions;
use crate::raft::{RaftStorageError, codec};
use crate::store::AppliedMark;

/// The raft position of a state machine's data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedState {
    /// The last applied log id (`None`: nothing applied yet).
    pub(crate) last_applied: Option<LogIdOf<TypeConfig>>,
    /// The membership of the last applied membership entry.
    pub(crate) last_membership: StoredMembershipOf<TypeConfig>,
    /// sha256 of the state-machine plugin that produced the data.
    pub(crate) plugin_sha256: [u8; 32],
    /// The cluster configuration in effect after the last applied entry.
    pub(crate) config: ClusterConfig,
    /// The active plugin of each kind, rollback targets and history, as of `last_applied`.
    pub(crate) plugins: PluginRegistry,
    /// Client sessions: which tagged writes were applied, with their results.
    pub(crate) sessions: Sessions,
}

impl AppliedState {
    /// Nothing applied yet, under the plugin `plugin_sha256`.
    pub(crate) fn empty(plugin_sha256: [u8; 32]) -> Self {
        Self {
            plugin_sha256,
            ..Self::default()
        }
    }

    /// The plugin budgets in effect: the replicated ones once a configuration was applied, else
    /// the node's own `default`.
    pub(crate) fn limits(&self, default: PluginLimits) -> PluginLimits {
        if self.config.version > 0 {
            self.config.limits
        } else {
            default
        }
    }

    /// The marker committed with the data.
    pub(crate) fn to_mark(&self) -> Result<AppliedMark, RaftStorageError> {
        Ok(AppliedMark {
            index: self.last_applied.as_ref().map_or(0, |id| id.index),
            extra: codec::encode("applied state", self)?,
        })
    }

    /// Reads the state back from a marker written by [`Self::to_mark`].
    pub(crate) fn from_mark(mark: &AppliedMark) -> Result<Self, RaftStorageError> {
        let state: Self = codec::decode("applied state", &mark.extra)?;
        let index = state.last_applied.as_ref().map_or(0, |id| id.index);
        if index != mark.index {
            return Err(RaftStorageError::Corrupt {
                subject: "applied state",
                reason: format!(
                    "the marker says index {} but its log id says {index}",
                    mark.index
                ),
            });
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::vote::RaftLeaderIdExt;
    use openraft::{Membership, StoredMembership};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    type LeaderId = openraft::type_config::alias::LeaderIdOf<TypeConfig>;

    /// A registry after the given (kind, plugin, rollback?) steps.
    fn registry(steps: &[(usize, u8, bool)]) -> PluginRegistry {
        use crate::proto::{ActivationCause, PluginKind, PluginRecord};
        let mut registry = PluginRegistry::default();
        for (index, &(kind, n, rollback)) in steps.iter().enumerate() {
            let kind = PluginKind::ALL[kind];
            let index = index as u64 + 1;
            let active = registry.active(kind).map(|r| r.sha256).unwrap_or_default();
            match registry.decide_rollback(kind, &active, None) {
                Ok(target) if rollback => {
                    registry.activate(
                        kind,
                        PluginRecord { index, ..target },
                        ActivationCause::Rollback,
                        None,
                    );
                }
                _ => {
                    let record = PluginRecord {
                        sha256: [n; 32],
                        version: format!("v{n}"),
                        index,
                        size: u64::from(n),
                        config: bytes::Bytes::from(vec![n; usize::from(n % 4)]),
                    };
                    registry.activate(kind, record, ActivationCause::Deploy, None);
                }
            }
        }
        registry
    }

    pub(crate) fn applied_state() -> impl Strategy<Value = AppliedState> {
        (
            proptest::option::of((any::<u64>(), any::<u64>(), any::<u64>())),
            proptest::option::of((any::<u64>(), 0u64..16)),
            proptest::collection::btree_set(0u64..16, 1..5),
            any::<[u8; 32]>(),
            any::<u64>(),
            proptest::collection::vec((0..3usize, any::<u8>(), any::<bool>()), 0..6),
            proptest::collection::vec((any::<u8>(), 1u64..20), 0..8),
        )
            .prop_map(
                |(applied, membership_at, voters, sha, version, activations, writes)| {
                    let id = |(term, node, index)| {
                        LogIdOf::<TypeConfig>::new(LeaderId::new_committed(term, node), index)
                    };
                    AppliedState {
                        last_applied: applied.map(id),
                        last_membership: StoredMembership::new(
                            membership_at.map(|(term, index)| id((term, 0, index))),
                            Membership::new_with_defaults(vec![voters], BTreeSet::new()),
                        ),
                        plugin_sha256: sha,
                        config: ClusterConfig {
                            version,
                            ..ClusterConfig::default()
                        },
                        plugins: registry(&activations),
                        sessions: sessions(&writes),
                    }
                },
            )
    }

    fn sessions(writes: &[(u8, u64)]) -> Sessions {
        let mut sessions = Sessions::default();
        for (position, (client, seq)) in writes.iter().enumerate() {
            let tag = crate::proto::SessionTag {
                client: [*client; 16],
                seq: *seq,
                acked: 1,
            };
            sessions.admit(&tag, position as u64 + 1);
            sessions.record(
                &tag,
                &crate::proto::ApplyResponse::Ok(bytes::Bytes::from(vec![*client; 3])),
            );
        }
        sessions
    }

    proptest! {
        #[test]
        fn round_trips_through_the_mark(state in applied_state()) {
            let mark = state.to_mark().unwrap();
            prop_assert_eq!(AppliedState::from_mark(&mark).unwrap(), state);
        }

        #[test]
        fn garbage_marks_are_errors_not_panics(index in any::<u64>(), extra in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = AppliedState::from_mark(&AppliedMark { index, extra });
        }

        #[test]
        fn a_mark_whose_index_disagrees_is_corrupt(state in applied_state(), delta in 1u64..) {
            let mut mark = state.to_mark().unwrap();
            mark.index = mark.index.wrapping_add(delta);
            prop_assert!(AppliedState::from_mark(&mark).is_err());
        }
    }
}
