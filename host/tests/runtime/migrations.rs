//! `migrate` through the real runtime: kv-v2 rewrites what kv wrote, the faulty plugin's trap
//! discards its writes; and the walk-through's example state machine, loaded from the `.wasm`
//! build.rs produced from `examples/custom-state-machine`.

use iroh_raft::proto::PluginLimits;
use iroh_raft::storage::{AppliedMark, StateRead};
use iroh_raft::{EntryError, bundled};
use iroh_raft_kv_types::Command;

use crate::support::{Fixture, ok};

fn put(key: &[u8], value: &[u8]) -> Vec<u8> {
    postcard::to_allocvec(&Command::Put { key, value }).expect("encode")
}

#[test]
fn kv_v2_migrates_what_kv_wrote_and_writes_its_own_format() {
    let mut v1 = Fixture::new("kv", bundled::KV);
    v1.apply(&[&put(b"a", b"1"), &put(b"b", b"2")]);
    let engine = v1.plugin.engine().clone();
    let v2 = engine
        .load_state_machine("kv", bundled::KV_V2)
        .expect("kv-v2 loads");
    assert!(v2.info().has_migration);
    let mut applier = v2
        .applier(v1.state.clone(), PluginLimits::default())
        .expect("applier");
    applier.migrate("", 1).expect("runs").expect("migrates");
    let outcomes = applier.apply(3, &[put(b"c", b"3").into()]).expect("apply");
    ok(&outcomes[0]);
    applier
        .commit(&AppliedMark {
            index: 3,
            extra: Vec::new(),
        })
        .expect("commit");
    let state = &v1.state;
    assert_eq!(state.get(b"a").expect("get"), Some(b"m:1".to_vec()));
    assert_eq!(state.get(b"b").expect("get"), Some(b"m:2".to_vec()));
    assert_eq!(state.get(b"c").expect("get"), Some(b"v2:3".to_vec()));
}

#[test]
fn a_migrate_that_traps_loses_its_writes() {
    let faulty = Fixture::new("faulty", bundled::FAULTY);
    let mut applier = faulty
        .plugin
        .applier(faulty.state.clone(), PluginLimits::default())
        .expect("applier");
    let error = applier.migrate("1", 1).expect("runs").expect_err("traps");
    assert!(matches!(error, EntryError::Trapped(_)), "{error:?}");
    applier
        .commit(&AppliedMark {
            index: 1,
            extra: Vec::new(),
        })
        .expect("commit");
    assert_eq!(faulty.state.get(b"migrating").expect("get"), None);
}

#[test]
fn the_example_tally_adds_resets_and_lists() {
    let mut tally = Fixture::new("tally", bundled::EXAMPLE_TALLY);
    let outcomes = tally.apply(&[
        b"add apples 3",
        b"add pears 2",
        b"add apples -1",
        b"reset pears",
        b"add apples x",
        b"multiply apples 2",
    ]);
    assert_eq!(ok(&outcomes[0]), b"3");
    assert_eq!(ok(&outcomes[2]), b"2");
    assert_eq!(ok(&outcomes[3]), b"2");
    assert!(
        matches!(&outcomes[4], Err(EntryError::Rejected(m)) if m.contains("not a whole number"))
    );
    assert!(matches!(&outcomes[5], Err(EntryError::Rejected(m)) if m.contains("unknown command")));
    assert_eq!(tally.query(b"apples").expect("query"), &b"2"[..]);
    assert_eq!(tally.query(b"pears").expect("query"), &b"0"[..]);
    assert_eq!(tally.query(b"").expect("query"), &b"apples=2\n"[..]);
}
