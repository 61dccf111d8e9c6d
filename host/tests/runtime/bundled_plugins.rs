//! Every bundled state machine, loaded from the `.wasm` that build.rs produced.

use iroh_raft::{EntryError, bundled};
use iroh_raft_kv_types::{Command, Query, QueryResponse, Response};

use crate::support::{Fixture, ok};

fn command(c: &Command<'_>) -> Vec<u8> {
    postcard::to_allocvec(c).expect("encode")
}

fn response(bytes: &[u8]) -> Response {
    postcard::from_bytes(bytes).expect("decode response")
}

fn query(fixture: &Fixture, q: &Query<'_>) -> QueryResponse {
    let bytes = fixture
        .query(&postcard::to_allocvec(q).expect("encode"))
        .expect("query ok");
    postcard::from_bytes(&bytes).expect("decode query response")
}

#[test]
fn kv_put_get_delete_cas_and_scans() {
    let mut kv = Fixture::new("kv", bundled::KV);
    let outcomes = kv.apply(&[
        &command(&Command::Put {
            key: b"a/1",
            value: b"one",
        }),
        &command(&Command::Put {
            key: b"a/2",
            value: b"two",
        }),
        &command(&Command::Put {
            key: b"b/1",
            value: b"three",
        }),
        // Reads inside the batch see the batch's own earlier writes.
        &command(&Command::Cas {
            key: b"a/1",
            expected: Some(b"one"),
            new: Some(b"uno"),
        }),
        &command(&Command::Cas {
            key: b"a/2",
            expected: Some(b"nope"),
            new: None,
        }),
        &command(&Command::Delete { key: b"b/1" }),
        &command(&Command::Delete { key: b"missing" }),
    ]);
    assert_eq!(response(ok(&outcomes[0])), Response::Written);
    assert_eq!(
        response(ok(&outcomes[3])),
        Response::Cas {
            swapped: true,
            current: Some(b"uno".to_vec())
        }
    );
    assert_eq!(
        response(ok(&outcomes[4])),
        Response::Cas {
            swapped: false,
            current: Some(b"two".to_vec())
        }
    );
    assert_eq!(
        response(ok(&outcomes[5])),
        Response::Deleted { existed: true }
    );
    assert_eq!(
        response(ok(&outcomes[6])),
        Response::Deleted { existed: false }
    );

    assert_eq!(
        query(&kv, &Query::Get { key: b"a/1" }),
        QueryResponse::Value(Some(b"uno".to_vec()))
    );
    assert_eq!(
        query(&kv, &Query::Get { key: b"b/1" }),
        QueryResponse::Value(None)
    );
    let QueryResponse::Pairs { pairs, more } = query(
        &kv,
        &Query::Prefix {
            prefix: b"a/",
            limit: 1,
        },
    ) else {
        panic!("expected pairs");
    };
    assert_eq!((pairs.len(), more), (1, true));
    assert_eq!(pairs[0].key, b"a/1");
    let QueryResponse::Pairs { pairs, more } = query(
        &kv,
        &Query::Scan {
            start: b"",
            end: None,
            limit: 0,
        },
    ) else {
        panic!("expected pairs");
    };
    assert!(!more);
    let keys: Vec<&[u8]> = pairs.iter().map(|p| p.key.as_slice()).collect();
    assert_eq!(keys, vec![&b"a/1"[..], b"a/2"]);
}

#[test]
fn kv_rejects_bad_commands_without_trapping() {
    let mut kv = Fixture::new("kv", bundled::KV);
    let outcomes = kv.apply(&[
        b"\xff\xff\xff garbage",
        &command(&Command::Put {
            key: b"",
            value: b"v",
        }),
    ]);
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Err(EntryError::Rejected(_))),
            "{outcome:?}"
        );
    }
    // A rejection is not a trap: the instance was not replaced.
    assert_eq!(kv.applier.instances_created(), 1);
    assert!(kv.query(b"\x00\x01garbage").is_err());
}

#[test]
fn counter_adds_up_across_batches_and_scans_pages() {
    let mut counter = Fixture::new("counter", bundled::COUNTER);
    let two = postcard::to_allocvec(&2i64).expect("encode");
    let minus_one = postcard::to_allocvec(&-1i64).expect("encode");
    let outcomes = counter.apply(&[&two, &two, &minus_one]);
    let totals: Vec<i64> = outcomes
        .iter()
        .map(|o| postcard::from_bytes(ok(o)).expect("decode"))
        .collect();
    assert_eq!(totals, vec![2, 4, 3]);
    counter.apply(&[&two]);
    let total: i64 = postcard::from_bytes(&counter.query(b"").expect("query")).expect("decode");
    assert_eq!(total, 5);
}

#[test]
fn noop_returns_one_empty_response_per_entry() {
    let mut noop = Fixture::new("noop", bundled::NOOP);
    let entries: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 100]).collect();
    let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let outcomes = noop.apply(&refs);
    assert_eq!(outcomes.len(), 100);
    assert!(outcomes.iter().all(|o| ok(o).is_empty()));
    assert_eq!(noop.query(b"echo").expect("query").as_ref(), b"echo");
}

#[test]
fn kv_scan_pages_through_many_keys() {
    let mut kv = Fixture::new("kv", bundled::KV);
    let keys: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("k{i:05}").into_bytes())
        .collect();
    let commands: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| {
            command(&Command::Put {
                key: k,
                value: b"v",
            })
        })
        .collect();
    let refs: Vec<&[u8]> = commands.iter().map(Vec::as_slice).collect();
    kv.apply(&refs);
    let QueryResponse::Pairs { pairs, more } = query(
        &kv,
        &Query::Prefix {
            prefix: b"k",
            limit: 250,
        },
    ) else {
        panic!("expected pairs");
    };
    assert!(more);
    assert_eq!(pairs.len(), 250);
    assert!(pairs.windows(2).all(|w| w[0].key < w[1].key));
}
