//! Issue 10, "An entry's outcome depends only on the entry and the state before it": one log
//! applied with random batch groupings and random instance restarts (seeded; the seed is printed)
//! gives byte-identical outcomes, per-entry fuel and state hashes to applying every entry alone.
//! The log holds an entry that needs 1.5 × `fuel_per_entry` (it fails the same way alone and in a
//! batch of 1024), entries that leak heap, writes, reads, rejections and traps.
//!
//! `DETERMINISM_SEED=<u64>` adds one more seed to the fixed ones.

use std::sync::Arc;

use bytes::Bytes;
use iroh_raft::proto::PluginLimits;
use iroh_raft::storage::{AppliedMark, FjallStateStore, StateStore};
use iroh_raft::{
    CompiledStateMachine, EntryError, EntryOutcome, PluginEngine, StateMachineApplier, bundled,
};

const FUEL: u64 = 1_000_000;
const LOG_LEN: usize = 1100;
/// Where the entry that needs 1.5 × the budget sits: inside the first 1024 entries.
const HEAVY_AT: usize = 700;

fn limits() -> PluginLimits {
    PluginLimits {
        fuel_per_entry: FUEL,
        // 48 leaks of 256 KiB would need 12 MiB if the heap carried over from entry to entry.
        memory_bytes: 2 << 20,
        ..PluginLimits::default()
    }
}

/// xorshift64: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A node's state machine: a keyspace that survives restarts and the applier over it.
struct Replica {
    _dir: tempfile::TempDir,
    state: Arc<FjallStateStore>,
    applier: StateMachineApplier,
    next_index: u64,
}

impl Replica {
    fn new(plugin: &CompiledStateMachine, limits: PluginLimits) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = fjall::Database::builder(dir.path())
            .open()
            .expect("open fjall");
        let state = Arc::new(FjallStateStore::open(&db, "faulty", None).expect("open state"));
        let applier = plugin.applier(state.clone(), limits).expect("applier");
        Self {
            _dir: dir,
            state,
            applier,
            next_index: 1,
        }
    }

    /// A restart: a new instance over the committed state.
    fn restart(&mut self, plugin: &CompiledStateMachine) {
        self.applier = plugin
            .applier(self.state.clone(), self.applier.limits())
            .expect("applier");
    }

    /// Applies and commits one batch; returns its outcomes and per-entry fuel.
    fn apply(&mut self, batch: &[Bytes]) -> (Vec<EntryOutcome>, Vec<u64>) {
        let outcomes = self.applier.apply(self.next_index, batch).expect("apply");
        self.next_index += batch.len() as u64;
        self.applier
            .commit(&AppliedMark {
                index: self.next_index - 1,
                extra: Vec::new(),
            })
            .expect("commit");
        assert_eq!(outcomes.len(), batch.len());
        let fuel = self.applier.entry_fuel().to_vec();
        assert_eq!(fuel.len(), batch.len());
        (outcomes, fuel)
    }
}

/// What a run produced: every outcome and every entry's fuel in log order, and the state hash
/// after each batch, keyed by the last index of the batch.
struct Run {
    outcomes: Vec<EntryOutcome>,
    fuel: Vec<u64>,
    hashes: Vec<(usize, [u8; 32])>,
}

fn run(plugin: &CompiledStateMachine, log: &[Bytes], batches: &[usize], restarts: &[bool]) -> Run {
    let mut replica = Replica::new(plugin, limits());
    let mut run = Run {
        outcomes: Vec::new(),
        fuel: Vec::new(),
        hashes: Vec::new(),
    };
    let mut at = 0;
    for (size, restart) in batches.iter().zip(restarts) {
        if *restart {
            replica.restart(plugin);
        }
        let (outcomes, fuel) = replica.apply(&log[at..at + size]);
        run.outcomes.extend(outcomes);
        run.fuel.extend(fuel);
        at += size;
        run.hashes
            .push((at, replica.state.content_hash().expect("hash")));
    }
    assert_eq!(at, log.len());
    run
}

/// `burn:<turns>` commands needing about `share` × `FUEL`, from two calibration runs.
fn burn_for(plugin: &CompiledStateMachine, share: f64) -> Bytes {
    let mut calibrate = Replica::new(
        plugin,
        PluginLimits {
            fuel_per_entry: 100 * FUEL,
            ..limits()
        },
    );
    let (_, base) = calibrate.apply(&[Bytes::from_static(b"burn:0")]);
    let (_, more) = calibrate.apply(&[Bytes::from_static(b"burn:100000")]);
    let per_turn = (more[0] - base[0]) as f64 / 100_000.0;
    let turns = ((share * FUEL as f64 - base[0] as f64) / per_turn) as u64;
    let command = Bytes::from(format!("burn:{turns}"));
    let (_, fuel) = calibrate.apply(std::slice::from_ref(&command));
    let ratio = fuel[0] as f64 / FUEL as f64;
    assert!(
        (ratio - share).abs() < 0.01,
        "calibrated {ratio} for {share}"
    );
    command
}

fn log(heavy: Bytes, light: Bytes) -> Vec<Bytes> {
    let mut rng = Rng(0x10_e27a_0f1e_5eed);
    let mut log: Vec<Bytes> = (0..LOG_LEN)
        .map(|i| {
            let r = rng.next();
            let command = match r % 100 {
                0..=34 => format!("put:k{}={}", r % 37, r % 1000),
                35..=49 => format!("append:a{}={}", r % 7, r % 10),
                50..=64 => format!("leak:{}", [64, 128, 256][(r / 7 % 3) as usize]),
                65..=74 => format!("burn:{}", r % 5000),
                75..=81 => "fail".into(),
                82..=84 => format!("panic:p{i}"),
                85..=86 => format!("oom:o{i}"),
                87 => format!("loop:l{i}"),
                88..=89 => format!("unreachable:u{i}"),
                _ => format!("nonsense {r}"),
            };
            Bytes::from(command)
        })
        .collect();
    log[HEAVY_AT] = heavy;
    log[HEAVY_AT + 1] = light;
    log
}

/// Batch sizes covering `len` entries: from single entries to 1024, at random.
fn grouping(rng: &mut Rng, len: usize) -> (Vec<usize>, Vec<bool>) {
    let mut sizes = Vec::new();
    let mut left = len;
    while left > 0 {
        let size = match rng.below(10) {
            0..=2 => 1,
            3..=5 => 2 + rng.below(8) as usize,
            6..=7 => 10 + rng.below(64) as usize,
            8 => 100 + rng.below(300) as usize,
            _ => 1024,
        };
        let size = size.min(left);
        sizes.push(size);
        left -= size;
    }
    let restarts = sizes.iter().map(|_| rng.below(6) == 0).collect();
    (sizes, restarts)
}

fn assert_same(reference: &Run, other: &Run, what: &str) {
    for (index, (a, b)) in reference.outcomes.iter().zip(&other.outcomes).enumerate() {
        assert_eq!(a, b, "{what}: outcome of entry {index} differs");
    }
    assert_eq!(reference.outcomes.len(), other.outcomes.len(), "{what}");
    for (index, (a, b)) in reference.fuel.iter().zip(&other.fuel).enumerate() {
        assert_eq!(a, b, "{what}: fuel of entry {index} differs");
    }
    for (at, hash) in &other.hashes {
        let (_, expected) = reference.hashes[at - 1];
        assert_eq!(
            *hash, expected,
            "{what}: state hash after {at} entries differs"
        );
    }
}

#[test]
fn outcomes_fuel_and_state_do_not_depend_on_grouping_or_restarts() {
    let engine = PluginEngine::new(None).expect("engine");
    let plugin = engine
        .load_state_machine("faulty", bundled::FAULTY)
        .expect("load faulty");
    let heavy = burn_for(&plugin, 1.5);
    let light = burn_for(&plugin, 0.9);
    let log = log(heavy, light);

    tracing::info!("reference: every entry alone, on one instance");
    let alone = run(&plugin, &log, &vec![1; LOG_LEN], &vec![false; LOG_LEN]);
    assert!(matches!(
        alone.outcomes[HEAVY_AT],
        Err(EntryError::OutOfFuel { budget: FUEL })
    ));
    assert_eq!(alone.fuel[HEAVY_AT], FUEL);
    assert_eq!(alone.outcomes[HEAVY_AT + 1].as_deref(), Ok(&b"burnt"[..]));
    let faults = alone
        .outcomes
        .iter()
        .filter(|o| matches!(o, Err(e) if !matches!(e, EntryError::Rejected(_))))
        .count();
    assert!(faults > 20, "the log should trap often, got {faults}");
    // Every leak of the same size answers the same address: each entry starts on the same heap.
    for size in ["64", "128", "256"] {
        let answers: std::collections::BTreeSet<&[u8]> = log
            .iter()
            .zip(&alone.outcomes)
            .filter(|(command, _)| command.as_ref() == format!("leak:{size}").as_bytes())
            .map(|(_, outcome)| outcome.as_deref().expect("a leak succeeds"))
            .collect();
        assert_eq!(answers.len(), 1, "leak:{size} answered {answers:?}");
    }

    tracing::info!("the first 1024 entries in one batch, the rest in another");
    let big = run(&plugin, &log, &[1024, LOG_LEN - 1024], &[false, false]);
    assert_same(&alone, &big, "batches of 1024");

    let mut seeds = vec![1, 2, 0x5eed, 0xdead_beef];
    if let Ok(seed) = std::env::var("DETERMINISM_SEED") {
        seeds.push(seed.parse().expect("DETERMINISM_SEED is a u64"));
    }
    for seed in seeds {
        println!("entry determinism: seed {seed}");
        tracing::info!(seed, "random groupings and restarts");
        let mut rng = Rng(seed.max(1));
        let (sizes, restarts) = grouping(&mut rng, LOG_LEN);
        let grouped = run(&plugin, &log, &sizes, &restarts);
        assert_same(&alone, &grouped, &format!("seed {seed}"));
    }
}
