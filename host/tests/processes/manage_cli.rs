//! The management commands of the CLI against real node processes: status, health, metrics,
//! config, log, snapshot, member add (of a standby node) / role / remove, leader transfer and
//! step-down, events, and the exit code and message of a refused request.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use iroh_raft::format_node_address;

use crate::support::{cli, cli_as, follow_events, free_port, spawn, standby};

fn json(node: &str, args: &[&str]) -> serde_json::Value {
    let mut with_json = args.to_vec();
    with_json.extend(["-o", "json"]);
    let output = cli(node, &with_json);
    assert!(output.status.success(), "{args:?}: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {output:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_commands_against_real_processes() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut first = spawn(
        &root.path().join("n1"),
        free_port(),
        &["--init".to_string()],
    );
    let address = format_node_address(&first.addr);
    let ticket = first.ticket.clone().expect("ticket");

    let status = json(&address, &["status"]);
    assert_eq!(status["leader"], 1);
    assert_eq!(status["members"][0]["role"], "voter");
    assert_eq!(status["healthy"], true);
    assert!(cli(&address, &["health"]).status.success());
    let metrics = json(&address, &["metrics", "--category", "raft"]);
    assert!(metrics["raft"]["term"].as_u64().expect("term") >= 1);
    assert!(metrics["storage"].is_null());

    // The configuration: set, then read back with the new version.
    let before = json(&address, &["config", "get"]);
    let after = json(&address, &["config", "set", "snapshot_every=5000"]);
    assert_eq!(after["snapshot_every"], 5000);
    assert_eq!(
        after["version"].as_u64().expect("version"),
        before["version"].as_u64().expect("version") + 1
    );
    let refused = cli(&address, &["config", "set", "heartbeat_interval_ms=1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("heartbeat_interval_ms"),
        "{refused:?}"
    );

    // Events: a follower process prints one JSON line per event.
    let (mut events, rx) = follow_events(&address, &[]);
    // The subscription may open a moment after the process starts: change the config until the
    // event shows up.
    let mut seen = None;
    for attempt in 0..50 {
        json(
            &address,
            &[
                "config",
                "set",
                &format!("keep_after_snapshot={}", 1000 + attempt),
            ],
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = Some(line);
            break;
        }
    }
    let event: serde_json::Value =
        serde_json::from_str(&seen.expect("an event line")).expect("JSON event");
    assert!(
        event["event"] == "configuration-changed" && event["version"].as_u64().is_some(),
        "{event}"
    );
    events.kill().expect("stop events");
    events.wait().expect("reap");

    // Log and snapshot.
    let snapshot = json(&address, &["snapshot", "trigger"]);
    let index = snapshot["index"].as_u64().expect("index");
    assert!(snapshot["size"].as_u64().expect("size") > 0);
    assert_eq!(json(&address, &["snapshot", "info"])["index"], index);
    let entries = json(&address, &["log", "entries", "1", "3"]);
    assert_eq!(entries.as_array().expect("entries").len(), 2);
    let compacted = json(&address, &["log", "compact", &index.to_string()]);
    assert!(compacted["purged"].as_u64().expect("purged") >= index);
    let info = json(&address, &["log", "info"]);
    assert_eq!(info["purged"].as_u64(), compacted["purged"].as_u64());
    let range = cli(&address, &["log", "entries", "1", "3"]);
    assert_eq!(range.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&range.stderr).contains("compacted"),
        "{range:?}"
    );

    // A standby node is added by the operator, becomes a voter, takes and gives back leadership.
    let mut second = standby(root.path(), &ticket, 2);
    let second_address = format_node_address(&second.addr);
    let added = json(&address, &["member", "add", "2", &second_address]);
    assert_eq!(added["role"], "voter");
    let members = json(&address, &["member", "list"]);
    assert_eq!(members["members"].as_array().expect("members").len(), 2);
    let moved = json(&address, &["leader", "transfer", "--to", "2"]);
    assert_eq!(moved["new_leader"], 2);
    assert!(moved["transfer_duration_ms"].as_f64().expect("duration") > 0.0);
    let back = json(&address, &["leader", "step-down"]);
    assert_eq!(back["new_leader"], 1);
    let observer = json(&address, &["member", "role", "2", "observer"]);
    assert_eq!(observer["role"], "observer");
    let removed = json(&address, &["member", "remove", "2"]);
    assert!(removed["role"].is_null());

    let unknown = cli(&address, &["member", "remove", "99"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("node 99 is not a member"),
        "{unknown:?}"
    );
    second.kill();
    first.kill();
}

/// The management tour in `examples/` runs against a three-process cluster. `cargo test` builds the
/// examples next to the test binaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_tour_example_runs_against_a_cluster() {
    let tour = std::env::current_exe()
        .expect("test binary path")
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples/management_tour");
    assert!(
        tour.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build -p iroh-raft --examples`)",
        tour.display()
    );
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = crate::support::cluster(root.path(), &[]).await;
    let output = Command::new(&tour)
        .arg(format_node_address(&nodes[1].addr))
        .env("IROH_RAFT_KEY", crate::support::admin_key_path())
        .env("RUST_LOG", "error")
        .output()
        .expect("run the tour");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(text.contains("leadership moved from node"), "{text}");
    assert!(text.contains("ConfigurationChanged"), "{text}");
    for node in &mut nodes {
        node.kill();
    }
}

/// The walk-through in `examples/custom-state-machine` (steps 4 and 5), as its README types it:
/// deploy the tally with the CLI, then drive it with raw `write`/`read` in hex.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walk_through_deploys_the_tally_and_uses_it() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut node = spawn(
        &root.path().join("n1"),
        free_port(),
        &["--init".to_string()],
    );
    let address = format_node_address(&node.addr);
    let wasm = root.path().join("my_tally.wasm");
    std::fs::write(&wasm, iroh_raft::bundled::EXAMPLE_TALLY).expect("write the plugin");
    let deployed = cli(
        &address,
        &[
            "plugin",
            "deploy",
            "--kind",
            "state-machine",
            "--version",
            "1",
            wasm.to_str().expect("utf-8 path"),
        ],
    );
    assert!(deployed.status.success(), "{deployed:?}");
    assert!(
        String::from_utf8_lossy(&deployed.stdout).contains("activated at index"),
        "{deployed:?}"
    );
    let text = |output: std::process::Output| {
        assert!(output.status.success(), "{output:?}");
        let hex = String::from_utf8_lossy(&output.stdout).trim().to_string();
        String::from_utf8(hex::decode(hex).expect("hex")).expect("utf-8")
    };
    assert_eq!(
        text(cli(&address, &["write", &hex::encode("add apples 3")])),
        "3"
    );
    assert_eq!(
        text(cli(&address, &["write", &hex::encode("add apples 2")])),
        "5"
    );
    assert_eq!(text(cli(&address, &["read", &hex::encode("apples")])), "5");
    assert_eq!(text(cli(&address, &["read", ""])), "apples=5\n");
    node.kill();
}

/// `demo --serve` keeps the demo cluster up, prints every node's address and stops cleanly on
/// Ctrl-C (SIGINT), as the README and the examples rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serve_keeps_the_cluster_up_until_ctrl_c() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_iroh-raft"))
        .args(["demo", "--serve", "--writes", "10"])
        .env("IROH_RAFT_KEY", crate::support::admin_key_path())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the demo");
    let lines = BufReader::new(demo.stdout.take().expect("stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addresses = Vec::new();
    while addresses.len() < 3 {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the demo printed its addresses in time");
        if let Some(address) = line.trim().strip_prefix("node ").and_then(|rest| {
            rest.split_once(": ")
                .map(|(_, address)| address.to_string())
        }) {
            addresses.push(address);
        }
    }
    // Still serving: every node answers a status request.
    for address in &addresses {
        let status = cli(address, &["status", "-o", "json"]);
        assert!(status.status.success(), "{status:?}");
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
        assert_eq!(json["members"].as_array().expect("members").len(), 3);
    }
    // The key that ran the demo is Admin; another user's (another home directory) is refused.
    let put = cli(&addresses[1], &["kv", "put", "tour/a", "1"]);
    assert!(put.status.success(), "{put:?}");
    let stranger_home = tempfile::tempdir().expect("temp dir");
    let refused = cli_as(
        &stranger_home.path().join(".config/iroh-raft/key"),
        &addresses[1],
        &["kv", "put", "tour/b", "2"],
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("permission denied: data.write on key/tour/b"),
        "{stderr}"
    );
    assert!(stderr.contains("rbac: no grant names caller"), "{stderr}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(demo.id() as libc::pid_t, libc::SIGINT) };
    let mut rest = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        rest.push_str(&line);
        rest.push('\n');
    }
    let exit = demo.wait().expect("reap the demo");
    assert!(exit.success(), "{exit:?}: {rest}");
    assert!(rest.contains("All nodes stopped cleanly"), "{rest}");
}
