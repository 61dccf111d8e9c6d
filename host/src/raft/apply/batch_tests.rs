//! Tests of `batch.rs`: how an apply call is planned into steps.
use super::*;
use bytes::Bytes;
use openraft::Membership;
use openraft::type_config::alias::LogIdOf;
use openraft::vote::RaftLeaderIdExt;
use std::collections::BTreeSet;

type LeaderId = openraft::type_config::alias::LeaderIdOf<TypeConfig>;

fn entry(index: u64, kind: char) -> EntryOf<C> {
    let payload = match kind {
        'c' => EntryPayload::Normal(LogPayload::Command(Bytes::from_static(b"x"))),
        'b' => EntryPayload::Blank,
        'd' => EntryPayload::Normal(LogPayload::Rollback {
            kind: crate::proto::PluginKind::StateMachine,
            from_sha256: [0; 32],
        }),
        'r' => EntryPayload::Normal(LogPayload::Restore(crate::proto::RestoreEntry {
            backup_id: "b".into(),
            sha256: [0; 32],
            state_hash: None,
            image: Bytes::new(),
        })),
        _ => EntryPayload::Membership(Membership::new_with_defaults(
            vec![BTreeSet::from([1])],
            BTreeSet::new(),
        )),
    };
    EntryOf::<C> {
        log_id: LogIdOf::<C>::new(LeaderId::new_committed(1, 1), index),
        payload,
    }
}

fn entries(kinds: &str) -> Vec<EntryOf<C>> {
    kinds
        .chars()
        .enumerate()
        .map(|(i, kind)| entry(10 + i as u64, kind))
        .collect()
}

#[test]
fn entries_at_or_below_the_applied_index_are_not_applied_again() {
    let entries: Vec<_> = (5..9).map(|i| entry(i, 'c')).collect();
    assert_eq!(already_applied(&entries, None), 0);
    assert_eq!(already_applied(&entries, Some(4)), 0);
    assert_eq!(already_applied(&entries, Some(5)), 1);
    assert_eq!(already_applied(&entries, Some(7)), 3);
    assert_eq!(already_applied(&entries, Some(100)), 4);
}

#[test]
fn consecutive_commands_form_one_step() {
    assert_eq!(plan(&entries("ccc")), vec![Step::Commands(0..3)]);
    assert_eq!(
        plan(&entries("bccmcb")),
        vec![
            Step::Record(0),
            Step::Commands(1..3),
            Step::Record(3),
            Step::Commands(4..5),
            Step::Record(5),
        ]
    );
    assert_eq!(plan(&entries("")), vec![]);
    assert_eq!(plan(&entries("bm")), vec![Step::Record(0), Step::Record(1)]);
    assert_eq!(
        plan(&entries("ccdcc")),
        vec![Step::Commands(0..2), Step::Plugin(2), Step::Commands(3..5)]
    );
    // A restore is a step of its own, between the commands before and after it.
    assert_eq!(
        plan(&entries("ccrc")),
        vec![Step::Commands(0..2), Step::Restore(2), Step::Commands(3..4)]
    );
}

#[test]
fn a_gap_in_indexes_splits_a_run() {
    let mut list = entries("cccc");
    list[2].log_id.index += 5;
    list[3].log_id.index += 5;
    assert_eq!(
        plan(&list),
        vec![Step::Commands(0..2), Step::Commands(2..4)]
    );
}

#[test]
fn every_entry_is_in_exactly_one_step_in_order() {
    for kinds in [
        "", "c", "b", "cbcbc", "ccbbcc", "mcmcmcc", "bbbb", "cdcdd", "dbc",
    ] {
        let list = entries(kinds);
        let covered: Vec<usize> = plan(&list)
            .into_iter()
            .flat_map(|step| match step {
                Step::Commands(range) => range.collect::<Vec<_>>(),
                Step::Record(position) | Step::Plugin(position) | Step::Restore(position) => {
                    vec![position]
                }
            })
            .collect();
        assert_eq!(covered, (0..list.len()).collect::<Vec<_>>(), "{kinds}");
    }
}
