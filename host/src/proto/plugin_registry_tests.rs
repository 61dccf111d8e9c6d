//! Tests of `plugin_registry.rs`.
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
        registry.decide_deploy(SM, &[1; 32], b"", Some(&default())),
        DeployDecision::Activate {
            from_version: String::new()
        }
    );
    assert_eq!(
        registry.decide_deploy(SM, &[0; 32], b"", Some(&default())),
        DeployDecision::Unchanged(default())
    );
    let dropped = registry.activate(SM, record(1, 10), ActivationCause::Deploy, Some(&default()));
    assert!(dropped.is_empty());
    assert_eq!(registry.active(SM), Some(&record(1, 10)));
    assert_eq!(
        registry.decide_rollback(SM, &[1; 32], Some(&default())),
        Ok(default())
    );
    assert_eq!(registry.referenced(), BTreeSet::from([[0; 32], [1; 32]]));
}

#[test]
fn bug_a_policy_deployed_again_with_new_grants_was_unchanged() {
    let mut registry = PluginRegistry::default();
    let policy = PluginKind::Policy;
    registry.activate(policy, record(1, 10), ActivationCause::Deploy, None);
    assert_eq!(
        registry.decide_deploy(policy, &[1; 32], b"", None),
        DeployDecision::Unchanged(record(1, 10))
    );
    assert_eq!(
        registry.decide_deploy(policy, &[1; 32], b"{\"grants\":[]}", None),
        DeployDecision::Activate {
            from_version: "v1".into()
        }
    );
    // A state machine has no configuration: the same bytes are the same plugin.
    registry.activate(SM, record(2, 11), ActivationCause::Deploy, None);
    assert_eq!(
        registry.decide_deploy(SM, &[2; 32], b"ignored", None),
        DeployDecision::Unchanged(record(2, 11))
    );
}

#[test]
fn deploying_the_active_hash_changes_nothing() {
    let mut registry = PluginRegistry::default();
    registry.activate(SM, record(1, 10), ActivationCause::Deploy, None);
    assert_eq!(
        registry.decide_deploy(SM, &[1; 32], b"", None),
        DeployDecision::Unchanged(record(1, 10))
    );
    assert_eq!(
        registry.decide_deploy(SM, &[2; 32], b"", None),
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
                match registry.decide_deploy(SM, &[n; 32], b"", Some(&default())) {
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
