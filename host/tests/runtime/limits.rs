//! Limits at the host boundary (issue "No input can stop the cluster"): keys and values over the
//! cluster's limits, empty keys, and entries that pass too much to `kv.put` fail that entry with a
//! message naming the limit; nothing reaches fjall, which panics on such keys, and the applier
//! keeps serving.

use iroh_raft::proto::PluginLimits;
use iroh_raft::{EntryError, bundled};
use iroh_raft_kv_types::{Command, Query, QueryResponse, Response};

use crate::support::{Fixture, ok};

fn faulty(limits: PluginLimits) -> Fixture {
    Fixture::with_limits(
        "faulty",
        bundled::FAULTY,
        PluginLimits {
            fuel_per_entry: 200_000_000,
            memory_bytes: 128 << 20,
            ..limits
        },
    )
}

fn kv_put(key: &[u8], value: &[u8]) -> Vec<u8> {
    postcard::to_allocvec(&Command::Put { key, value }).unwrap()
}

#[test]
fn bug_a_70000_byte_key_stopped_every_node_now_it_fails_its_entry() {
    let mut f = Fixture::new("kv", bundled::KV);
    let long = vec![b'a'; 70_000];
    let outcomes = f.apply(&[&kv_put(&long, b"x"), &kv_put(b"short", b"y")[..]]);
    match &outcomes[0] {
        Err(EntryError::Rejected(message)) => assert!(
            message.contains("70000 bytes") && message.contains("max_key_bytes of 4096"),
            "{message}"
        ),
        other => panic!("expected the key to be refused, got {other:?}"),
    }
    assert_eq!(
        postcard::from_bytes::<Response>(ok(&outcomes[1])).unwrap(),
        Response::Written
    );
    // Reading such a key answers "absent" instead of reaching fjall.
    let answer = f
        .query(&postcard::to_allocvec(&Query::Get { key: &long }).unwrap())
        .expect("query");
    assert_eq!(
        postcard::from_bytes::<QueryResponse>(&answer).unwrap(),
        QueryResponse::Value(None)
    );
}

#[test]
fn a_value_over_max_value_bytes_is_refused_with_the_limit() {
    let mut f = Fixture::with_limits(
        "kv",
        bundled::KV,
        PluginLimits {
            max_value_bytes: 1000,
            ..PluginLimits::default()
        },
    );
    let outcomes = f.apply(&[&kv_put(b"k", &[0; 1001]), &kv_put(b"k", &[0; 1000])[..]]);
    match &outcomes[0] {
        Err(EntryError::Rejected(message)) => {
            assert!(message.contains("max_value_bytes of 1000"), "{message}")
        }
        other => panic!("expected the value to be refused, got {other:?}"),
    }
    assert!(outcomes[1].is_ok(), "{:?}", outcomes[1]);
}

#[test]
fn an_empty_key_from_a_custom_plugin_is_the_plugins_error() {
    let mut f = faulty(PluginLimits::default());
    let outcomes = f.apply(&[b"empty-key", b"put:after=1"]);
    match &outcomes[0] {
        Err(EntryError::Rejected(message)) => {
            assert!(message.contains("key is empty"), "{message}")
        }
        other => panic!("expected the empty key to be refused, got {other:?}"),
    }
    assert_eq!(ok(&outcomes[1]), b"ok");
}

#[test]
fn a_plugin_looping_puts_of_32_mib_values_fails_that_entry_alone() {
    let mut f = faulty(PluginLimits::default());
    let outcomes = f.apply(&[b"put:before=1", b"flood:32", b"put:after=2"]);
    assert_eq!(ok(&outcomes[0]), b"ok");
    match &outcomes[1] {
        Err(EntryError::OverWriteBudget(message)) => assert!(
            message.contains("max_entry_write_bytes of 67108864"),
            "{message}"
        ),
        other => panic!("expected the write budget to stop the flood, got {other:?}"),
    }
    assert_eq!(ok(&outcomes[2]), b"ok");
}

#[test]
fn accepted_puts_past_the_write_budget_are_dropped_with_their_entry() {
    let mut f = faulty(PluginLimits {
        max_entry_write_bytes: 8 << 20,
        ..PluginLimits::default()
    });
    let outcomes = f.apply(&[b"flood:1", b"put:after=2"]);
    match &outcomes[0] {
        Err(EntryError::OverWriteBudget(message)) => {
            assert!(message.contains("writes were dropped"), "{message}")
        }
        other => panic!("expected the write budget to stop the flood, got {other:?}"),
    }
    assert_eq!(ok(&outcomes[1]), b"ok");
    assert!(f.query(b"get:flood/0").is_err(), "a dropped write survived");
    assert_eq!(f.query(b"get:after").expect("after").as_ref(), b"2");
}

#[test]
fn the_write_budget_holds_each_entry_alone_however_the_batch_is_grouped() {
    // Each entry writes 3 MiB under a 4 MiB budget: fine alone, over it as a batch. Grouped or
    // not, every entry succeeds.
    let limits = PluginLimits {
        max_entry_write_bytes: 4 << 20,
        max_value_bytes: 16 << 20,
        ..PluginLimits::default()
    };
    let big = |key: &str| kv_put(key.as_bytes(), &vec![1; 3 << 20]);
    let mut batched = Fixture::with_limits("kv", bundled::KV, limits);
    let outcomes = batched.apply(&[&big("a"), &big("b"), &big("c")[..]]);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let mut alone = Fixture::with_limits("kv", bundled::KV, limits);
    for key in ["a", "b", "c"] {
        assert!(alone.apply(&[&big(key)])[0].is_ok());
    }
}

#[test]
fn lifting_a_value_into_the_host_costs_fuel_so_big_puts_run_out_of_it() {
    let value = vec![7u8; 1 << 20];
    // Copying the command into the entry's arena and lifting the value into the host each cost
    // about one unit of fuel per byte: a 1 MiB put burns over 2 M.
    let mut roomy = Fixture::new("kv", bundled::KV);
    let outcomes = roomy.apply(&[&kv_put(b"k", &value)]);
    ok(&outcomes[0]);
    let burned = roomy.applier.entry_fuel()[0];
    assert!(burned > 2 << 20, "a 1 MiB put burned only {burned}");
    // Under 1.5 M of fuel the same put runs out of fuel, and its entry writes nothing.
    let mut tight = Fixture::with_limits(
        "kv",
        bundled::KV,
        PluginLimits {
            fuel_per_entry: 1_500_000,
            ..PluginLimits::default()
        },
    );
    let outcomes = tight.apply(&[&kv_put(b"k", &value)]);
    assert!(
        matches!(outcomes[0], Err(EntryError::OutOfFuel { .. })),
        "{:?}",
        outcomes[0]
    );
    let answer = tight
        .query(&postcard::to_allocvec(&Query::Get { key: b"k" }).unwrap())
        .expect("query");
    assert_eq!(
        postcard::from_bytes::<QueryResponse>(&answer).unwrap(),
        QueryResponse::Value(None),
        "the refused entry wrote nothing"
    );
}
