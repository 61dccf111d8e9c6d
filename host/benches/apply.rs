//! `cargo bench -p iroh-raft --bench apply`: the plugin runtime's apply path.
//!
//! 1. Host overhead per entry through the no-op plugin, for batches of 1, 64 and 1024 entries of
//!    100 bytes and single entries of 64 KiB and 1 MiB (no commit: the plugin writes nothing).
//! 2. Puts through the wasm kv plugin against the same kv logic compiled natively
//!    (`iroh_raft_kv_types::apply`) over the same kind of fjall keyspace, batches of 64, each batch
//!    committed. Reported as a ratio measured in the same run.
//!
//! 3. A fresh instance: a new store and instance of the no-op plugin (what a trap costs), and
//!    the same plus looking up its exports (what a new applier costs).
//!
//! `cargo bench -p iroh-raft --bench apply -- noop` (or `instance`, `kv`) runs one section.
//!
//! Every figure is the median of several samples. The machine is shared, so each section also
//! prints its ratio to a native baseline measured in the same run (sha256 over 64 KiB), which
//! is what to compare between runs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::PluginLimits;
use iroh_raft::storage::{AppliedMark, FjallStateStore, StateRead, StateStore, Txn};
use iroh_raft::{PluginEngine, bundled};
use iroh_raft_kv_types::{Command, KvAccess, KvRead};

mod common;

use common::{SAMPLES, baseline, median};

fn open_state(dir: &std::path::Path, name: &str) -> Arc<FjallStateStore> {
    let db = fjall::Database::builder(dir).open().expect("open fjall");
    Arc::new(FjallStateStore::open(&db, name, None).expect("open state"))
}

fn noop_overhead(engine: &PluginEngine, base: Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = open_state(dir.path(), "noop");
    let plugin = engine
        .load_state_machine("noop", bundled::NOOP)
        .expect("load noop");
    let mut applier = plugin
        .applier(state, PluginLimits::default())
        .expect("applier");
    println!("no-op plugin, apply only (median of {SAMPLES}):");
    println!(
        "  {:<14} {:>12} {:>12} {:>10} {:>16}",
        "batch", "per call", "per entry", "MB/s", "call / baseline"
    );
    for (count, size) in [
        (1usize, 100usize),
        (64, 100),
        (1024, 100),
        (1, 64 << 10),
        (1, 1 << 20),
    ] {
        let entries: Vec<Bytes> = (0..count)
            .map(|i| Bytes::from(vec![i as u8; size]))
            .collect();
        let per_call = median(|| {
            let outcomes = applier.apply(1, &entries).expect("apply");
            assert_eq!(outcomes.len(), count);
        });
        let per_entry = per_call.as_nanos() as f64 / count as f64;
        let mbs = (count * size) as f64 / per_call.as_secs_f64() / 1e6;
        println!(
            "  {:<14} {:>10.1}us {:>10.1}ns {:>10.0} {:>16.3}",
            format!("{count} x {size} B"),
            per_call.as_nanos() as f64 / 1e3,
            per_entry,
            mbs,
            per_call.as_secs_f64() / base.as_secs_f64()
        );
    }
}

/// The kv logic run natively over the same transaction type the wasm host uses.
struct NativeKv<'a> {
    txn: &'a mut Txn,
    state: &'a dyn StateRead,
}

impl KvRead for NativeKv<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.txn.get(self.state, key).expect("read")
    }
    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.txn.scan(self.state, start, end, limit).expect("scan")
    }
}

impl KvAccess for NativeKv<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.txn.put(key.to_vec(), value.to_vec());
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> bool {
        self.txn.delete(self.state, key.to_vec()).expect("delete")
    }
}

fn kv_puts(engine: &PluginEngine) {
    const BATCH: usize = 64;
    let value = vec![7u8; 256];
    let mut counter = 0u64;
    let mut next_batch = move || -> Vec<Bytes> {
        (0..BATCH)
            .map(|_| {
                counter += 1;
                let key = format!("key-{:08}", counter % 100_000);
                Bytes::from(
                    postcard::to_allocvec(&Command::Put {
                        key: key.as_bytes(),
                        value: &value,
                    })
                    .expect("encode"),
                )
            })
            .collect()
    };

    let wasm_dir = tempfile::tempdir().expect("temp dir");
    let wasm_state = open_state(wasm_dir.path(), "kv");
    let plugin = engine
        .load_state_machine("kv", bundled::KV)
        .expect("load kv");
    let mut applier = plugin
        .applier(wasm_state, PluginLimits::default())
        .expect("applier");
    let mut index = 0u64;
    let mut wasm_batches = next_batch.clone();
    let wasm = median(|| {
        let entries = wasm_batches();
        let outcomes = applier.apply(index + 1, &entries).expect("apply");
        assert!(outcomes.iter().all(Result::is_ok));
        index += BATCH as u64;
        applier
            .commit(&AppliedMark {
                index,
                extra: Vec::new(),
            })
            .expect("commit");
    });

    let native_dir = tempfile::tempdir().expect("temp dir");
    let native_state = open_state(native_dir.path(), "kv");
    let mut txn = Txn::default();
    let mut index = 0u64;
    let native = median(|| {
        let entries = next_batch();
        // Like the wasm path: the whole batch in one go, each entry kept (and its changes
        // recorded for watches) as it ends.
        for entry in &entries {
            let mut kv = NativeKv {
                txn: &mut txn,
                state: &*native_state,
            };
            iroh_raft_kv_types::apply(&mut kv, entry).expect("native apply");
            index += 1;
            txn.keep_current(index);
        }
        let (writes, changes) = txn.take_done();
        native_state
            .commit(
                writes,
                changes,
                &AppliedMark {
                    index,
                    extra: Vec::new(),
                },
            )
            .expect("commit");
    });

    let per_entry = |d: Duration| d.as_nanos() as f64 / BATCH as f64;
    println!("kv puts, batches of {BATCH} x 256 B values, apply + commit (median of {SAMPLES}):");
    println!(
        "  wasm kv plugin: {:>8.0} ns/entry  {:>9.0} puts/s",
        per_entry(wasm),
        1e9 / per_entry(wasm)
    );
    println!(
        "  native kv:      {:>8.0} ns/entry  {:>9.0} puts/s",
        per_entry(native),
        1e9 / per_entry(native)
    );
    println!(
        "  wasm/native throughput ratio: {:.2}",
        native.as_secs_f64() / wasm.as_secs_f64()
    );
}

fn fresh_instance(engine: &PluginEngine, base: Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state: Arc<dyn StateStore> = open_state(dir.path(), "noop");
    let plugin = engine
        .load_state_machine("noop", bundled::NOOP)
        .expect("load noop");
    let limits = PluginLimits::default();
    let instantiate = median(|| plugin.check_limits(&limits).expect("instantiate"));
    let applier = median(|| {
        std::hint::black_box(plugin.applier(state.clone(), limits).expect("applier"));
    });
    println!("fresh instance of the no-op plugin (median of {SAMPLES}):");
    for (what, took) in [
        ("store + instantiate", instantiate),
        ("+ export lookup (applier)", applier),
    ] {
        println!(
            "  {what:<26} {:>8.1}us  ratio to baseline {:.3}",
            took.as_nanos() as f64 / 1e3,
            took.as_secs_f64() / base.as_secs_f64()
        );
    }
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; keep it quick then.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let engine = PluginEngine::new(None).expect("engine");
    let base = baseline();
    println!(
        "baseline: sha256 over 64 KiB, natively: {:.1}us (median of {SAMPLES})",
        base.as_nanos() as f64 / 1e3
    );
    // `cargo bench --bench apply -- noop` (or `instance`, `kv`) runs only that section.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |section: &str| only.is_empty() || only.iter().any(|a| a == section);
    if wanted("noop") {
        noop_overhead(&engine, base);
    }
    if wanted("instance") {
        fresh_instance(&engine, base);
    }
    if wanted("kv") {
        kv_puts(&engine);
    }
}
