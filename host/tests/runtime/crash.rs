//! SIGKILL a process while it applies batches, reopen the store: the applied index and the data
//! agree, and no batch is ever half visible.
//!
//! The child is this same test binary, re-run with `IROH_RAFT_CRASH_CHILD` set, so no extra binary
//! is needed.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh_raft::proto::PluginLimits;
use iroh_raft::storage::{AppliedMark, FjallStateStore, StateRead, StateStore};
use iroh_raft::{PluginEngine, bundled};

const CHILD_ENV: &str = "IROH_RAFT_CRASH_CHILD";
const BATCH: u64 = 16;

/// Every entry of batch `b` writes key `b{b}-{i}`; batch sizes are fixed, so the applied index
/// tells exactly which keys must exist.
fn batch(number: u64) -> Vec<Bytes> {
    (0..BATCH)
        .map(|i| Bytes::from(format!("put:b{number:06}-{i:02}={number}")))
        .collect()
}

/// The child: applies batches until killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only runs when spawned by `sigkill_mid_apply_never_shows_half_a_batch`.
    };
    let db = fjall::Database::builder(&dir).open().expect("open");
    let state = Arc::new(FjallStateStore::open(&db, "faulty", None).expect("state"));
    let start = state
        .applied()
        .expect("applied")
        .map_or(0, |m| m.index / BATCH);
    let plugin = PluginEngine::new(None)
        .expect("engine")
        .load_state_machine("faulty", bundled::FAULTY)
        .expect("load");
    let mut applier = plugin
        .applier(state, PluginLimits::default())
        .expect("applier");
    for number in start.. {
        let first = number * BATCH + 1;
        let outcomes = applier.apply(first, &batch(number)).expect("apply");
        assert!(outcomes.iter().all(|o| o.is_ok()));
        applier
            .commit(&AppliedMark {
                index: first + BATCH - 1,
                extra: Vec::new(),
            })
            .expect("commit");
        if number == start + 5 {
            println!("CHILD-READY");
        }
    }
}

fn check(dir: &std::path::Path) -> u64 {
    let db = fjall::Database::builder(dir).open().expect("reopen");
    let state = FjallStateStore::open(&db, "faulty", None).expect("state");
    let applied = state.applied().expect("applied").map_or(0, |m| m.index);
    assert_eq!(
        applied % BATCH,
        0,
        "applied index {applied} is not at a batch boundary"
    );
    let batches = applied / BATCH;
    let keys = state.scan(b"", None, usize::MAX).expect("scan");
    assert_eq!(
        keys.len() as u64,
        applied,
        "{} keys for applied index {applied}",
        keys.len()
    );
    for (n, (key, _)) in keys.iter().enumerate() {
        let expected = format!("b{:06}-{:02}", n as u64 / BATCH, n as u64 % BATCH);
        assert_eq!(key, expected.as_bytes());
    }
    batches
}

#[test]
fn sigkill_mid_apply_never_shows_half_a_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut last = 0;
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        // Wait until the child is applying, then a little more, then SIGKILL it mid-stream.
        let mut stdout = child.stdout.take().expect("stdout");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = String::new();
        while !seen.contains("CHILD-READY") {
            assert!(Instant::now() < deadline, "child never got going: {seen}");
            let mut buf = [0u8; 256];
            let n = std::io::Read::read(&mut stdout, &mut buf).expect("read child");
            assert!(n > 0, "child exited early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        std::thread::sleep(Duration::from_millis(50 + 37 * round));
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0);
        child.wait().expect("reap child");
        let batches = check(dir.path());
        assert!(
            batches > last,
            "round {round}: no progress ({batches} batches)"
        );
        last = batches;
    }
}
