//! Two fresh runtimes fed the same batches, traps included, return identical results, burn
//! identical fuel and end with identical keyspaces.

use iroh_raft::bundled;
use iroh_raft::proto::PluginLimits;
use iroh_raft::storage::StateStore;

use crate::support::Fixture;

fn batches() -> Vec<Vec<Vec<u8>>> {
    // A deterministic mix of writes, rejections and traps, seeded so a failure replays.
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..12)
        .map(|batch| {
            (0..(1 + next() % 40))
                .map(|i| match next() % 20 {
                    0 => format!("loop:l{batch}-{i}").into_bytes(),
                    1 => format!("panic:p{batch}-{i}").into_bytes(),
                    2 => format!("oom:o{batch}-{i}").into_bytes(),
                    3 => b"fail".to_vec(),
                    _ => format!("put:k{}={}", next() % 50, next()).into_bytes(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn replicas_agree_on_results_fuel_and_state() {
    let limits = PluginLimits {
        fuel_per_entry: 2_000_000,
        memory_bytes: 8 << 20,
        ..PluginLimits::default()
    };
    let mut one = Fixture::with_limits("faulty", bundled::FAULTY, limits);
    let mut two = Fixture::with_limits("faulty", bundled::FAULTY, limits);
    let mut traps = 0;
    for batch in batches() {
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let a = one.apply(&refs);
        let b = two.apply(&refs);
        assert_eq!(a, b);
        traps += a
            .iter()
            .filter(|o| matches!(o, Err(e) if !matches!(e, iroh_raft::EntryError::Rejected(_))))
            .count();
        assert_eq!(one.applier.fuel_consumed(), two.applier.fuel_consumed());
    }
    assert!(
        traps > 3,
        "the seed should produce several traps, got {traps}"
    );
    assert!(one.applier.fuel_consumed() > 0);
    assert_eq!(
        one.state.content_hash().unwrap(),
        two.state.content_hash().unwrap()
    );
    assert_eq!(one.state.applied().unwrap(), two.state.applied().unwrap());
    // And the keyspace is not trivially empty.
    assert!(one.query(b"get:k1").is_ok() || one.query(b"get:k2").is_ok());
}
