//! A plugin that loops, exhausts memory, panics or overflows its stack fails only the entry that
//! did it: that entry's writes are dropped, the instance is replaced, the rest of the batch applies
//! and this process carries on.

use iroh_raft::proto::PluginLimits;
use iroh_raft::{EntryError, bundled};

use crate::support::{Fixture, ok};

fn faulty() -> Fixture {
    Fixture::with_limits(
        "faulty",
        bundled::FAULTY,
        PluginLimits {
            // Enough fuel to fill the memory cap several times over, so the memory bomb hits the
            // cap rather than the fuel budget.
            fuel_per_entry: 20_000_000,
            memory_bytes: 4 << 20,
            ..PluginLimits::default()
        },
    )
}

fn get(fixture: &Fixture, key: &str) -> Option<Vec<u8>> {
    fixture
        .query(format!("get:{key}").as_bytes())
        .ok()
        .map(|b| b.to_vec())
}

#[test]
fn each_kind_of_trap_fails_only_its_entry() {
    let mut f = faulty();
    let outcomes = f.apply(&[
        b"put:before=1",
        b"loop:looped",
        b"put:middle=2",
        b"oom:bombed",
        b"panic:panicked",
        b"unreachable:unreached",
        b"recurse:recursed",
        b"fail",
        b"put:after=3",
    ]);
    assert_eq!(outcomes.len(), 9);
    assert_eq!(ok(&outcomes[0]), b"ok");
    assert!(
        matches!(
            outcomes[1],
            Err(EntryError::OutOfFuel { budget: 20_000_000 })
        ),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(ok(&outcomes[2]), b"ok");
    match &outcomes[3] {
        Err(EntryError::OutOfMemory(message)) => {
            assert!(message.contains("limit of 4194304 bytes"), "{message}")
        }
        other => panic!("expected out of memory, got {other:?}"),
    }
    match &outcomes[4] {
        Err(EntryError::Trapped(message)) => assert!(message.contains("panicked"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        matches!(outcomes[5], Err(EntryError::Trapped(_))),
        "{:?}",
        outcomes[5]
    );
    // Unbounded recursion runs Rust's shadow stack (in linear memory) off its bottom before the
    // engine's native stack limit: either way it is a trap of that entry alone.
    match &outcomes[6] {
        Err(EntryError::Trapped(message)) => assert!(
            message.contains("stack overflow") || message.contains("out of bounds memory access"),
            "{message}"
        ),
        other => panic!("expected a stack trap, got {other:?}"),
    }
    assert_eq!(
        outcomes[7],
        Err(EntryError::Rejected("failed on purpose".into()))
    );
    assert_eq!(ok(&outcomes[8]), b"ok");

    // The trapping entries wrote before they trapped; none of those writes survived.
    for key in ["looped", "bombed", "panicked", "unreached", "recursed"] {
        assert_eq!(
            get(&f, key),
            None,
            "write of trapped entry `{key}` survived"
        );
    }
    for (key, value) in [("before", b"1"), ("middle", b"2"), ("after", b"3")] {
        assert_eq!(get(&f, key).as_deref(), Some(&value[..]));
    }
    // One instance at start and one after each of the five traps: after a trap the call goes on
    // from the next entry, nothing is replayed.
    assert_eq!(f.applier.instances_created(), 6);

    // The applier keeps working after all that.
    let outcomes = f.apply(&[b"put:later=4"]);
    assert_eq!(ok(&outcomes[0]), b"ok");
    assert_eq!(get(&f, "later").as_deref(), Some(&b"4"[..]));
}

#[test]
fn a_trapping_query_fails_alone() {
    let mut f = faulty();
    f.apply(&[b"put:k=v"]);
    assert!(matches!(
        f.query(b"loop"),
        Err(EntryError::OutOfFuel { .. })
    ));
    assert!(matches!(f.query(b"panic"), Err(EntryError::Trapped(_))));
    assert_eq!(f.query(b"get:k").expect("query after traps").as_ref(), b"v");
}

#[test]
fn a_fuel_budget_of_one_entry_is_not_shared_with_the_next() {
    // Twenty legal entries in one batch: each gets its own budget.
    let mut f = faulty();
    let commands: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("put:k{i}=v").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = commands.iter().map(Vec::as_slice).collect();
    let outcomes = f.apply(&refs);
    assert!(outcomes.iter().all(|o| o.is_ok()));
    assert_eq!(f.applier.instances_created(), 1);
}
