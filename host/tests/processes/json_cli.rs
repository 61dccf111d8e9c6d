//! `-o json` against the schemas of `docs/cli-json.md`: every command family's output is checked
//! against its documented shape (fields, types, enums in kebab-case, hashes as hex, times in
//! RFC 3339), and a failing command exits with the same code in text and in JSON mode.

use std::process::Command;
use std::time::{Duration, Instant};

use iroh_raft::{bundled, format_node_address};
use serde_json::Value;

use crate::json_shape::Shapes;
use crate::support::{cli, cli_as, follow_events, free_port, get_query, put, spawn, standby};

/// The events the commands of the tour cause, each of which must arrive.
const WANTED: [&str; 9] = [
    "configuration-changed",
    "snapshot-completed",
    "plugin-deployed",
    "plugin-rolled-back",
    "access-denied",
    "member-added",
    "member-role-changed",
    "member-removed",
    "leader-elected",
];

/// Runs `args -o json` against `node`, expects exit 0 and checks the document against `shape`.
fn shaped(shapes: &Shapes, node: &str, shape: &str, args: &[&str]) -> Value {
    let output = cli(node, &[args, &["-o", "json"]].concat());
    assert!(output.status.success(), "{args:?}: {output:?}");
    let value: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON document: {e}: {output:?}"));
    shapes.assert(shape, &value);
    value
}

#[test]
fn the_shape_check_refuses_what_the_document_does_not_say() {
    let shapes = Shapes::documented();
    let good = serde_json::json!({ "index": 3, "written": true });
    shapes.assert("kv-put", &good);
    for bad in [
        serde_json::json!({ "index": 3 }),
        serde_json::json!({ "index": 3, "written": true, "extra": 1 }),
        serde_json::json!({ "index": "3", "written": true }),
        serde_json::json!({ "index": null, "written": true }),
    ] {
        let refused = std::panic::catch_unwind(|| shapes.assert("kv-put", &bad));
        assert!(refused.is_err(), "{bad} passed as kv-put");
    }
    let rust_case = serde_json::json!({ "changed": true, "kind": "StateMachine", "sha256": "ab",
        "version": "", "index": 1, "from_version": null, "seconds": 0.1 });
    assert!(std::panic::catch_unwind(|| shapes.assert("plugin-outcome", &rust_case)).is_err());
    let hash_as_numbers = serde_json::json!({ "changed": true, "kind": "policy", "sha256": [1, 2],
        "version": "", "index": 1, "from_version": null, "seconds": 0.1 });
    assert!(
        std::panic::catch_unwind(|| shapes.assert("plugin-outcome", &hash_as_numbers)).is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_family_prints_its_documented_json_and_exits_alike_in_both_modes() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let shapes = Shapes::documented();
        let root = tempfile::tempdir().expect("temp dir");
        let mut first = spawn(
            &root.path().join("n1"),
            free_port(),
            &["--init".to_string()],
        );
        let node = format_node_address(&first.addr);
        let ticket = first.ticket.clone().expect("ticket");
        let (mut events, lines) = follow_events(&node, &[]);

        // Cluster and health.
        let status = shaped(&shapes, &node, "status", &["status"]);
        assert_eq!(status["raft_state"], "leader");
        shaped(&shapes, &node, "status", &["member", "list"]);
        shaped(&shapes, &node, "health", &["health"]);
        let cluster = shaped(&shapes, &node, "health-cluster", &["health", "--cluster"]);
        assert_eq!(cluster["healthy"], true);
        shaped(&shapes, &node, "cluster-ticket", &["cluster", "ticket"]);

        // kv, each write answered with its fields.
        shaped(&shapes, &node, "kv-put", &["kv", "put", "a", "1"]);
        shaped(&shapes, &node, "kv-put", &["kv", "put", "b/1", "x"]);
        shaped(&shapes, &node, "kv-put", &["kv", "put", "b/2", "y"]);
        assert_eq!(
            shaped(&shapes, &node, "kv-get", &["kv", "get", "a"])["value"],
            "1"
        );
        assert!(shaped(&shapes, &node, "kv-get", &["kv", "get", "zz"])["value"].is_null());
        let swapped = shaped(
            &shapes,
            &node,
            "kv-cas",
            &["kv", "cas", "a", "--expected", "1", "2"],
        );
        assert_eq!(swapped["swapped"], true);
        shaped(&shapes, &node, "kv-scan", &["kv", "scan"]);
        shaped(
            &shapes,
            &node,
            "kv-scan-keys",
            &["kv", "scan", "--keys-only"],
        );
        assert_eq!(
            shaped(&shapes, &node, "kv-count", &["kv", "scan", "--count"])["count"],
            3
        );
        shaped(&shapes, &node, "kv-delete", &["kv", "delete", "a"]);
        let range = shaped(
            &shapes,
            &node,
            "kv-delete-range",
            &["kv", "delete", "--prefix", "b/"],
        );
        assert_eq!(range["deleted"], 2);
        // A watch replays what the history holds, one JSON line per change.
        let watched = cli(
            &node,
            &["watch", "b/", "--from", "1", "--count", "4", "-o", "json"],
        );
        assert!(watched.status.success(), "{watched:?}");
        let ops: Vec<String> = String::from_utf8_lossy(&watched.stdout)
            .lines()
            .map(|line| {
                let change: Value = serde_json::from_str(line).expect("a JSON line");
                shapes.assert("watch-change", &change);
                change["op"].as_str().expect("op").to_string()
            })
            .collect();
        assert_eq!(ops, ["put", "put", "delete", "delete"]);

        // Raw commands and queries.
        let command = hex::encode(put("raw", "r"));
        shaped(&shapes, &node, "raw-write", &["write", &command]);
        shaped(
            &shapes,
            &node,
            "raw-read",
            &["read", &hex::encode(get_query("raw"))],
        );

        // Configuration, log and snapshot.
        // `--init` seeds configuration version 1, as the README says.
        assert_eq!(
            shaped(&shapes, &node, "config", &["config", "get"])["version"],
            1
        );
        let config = shaped(
            &shapes,
            &node,
            "config",
            &["config", "set", "snapshot_every=5000"],
        );
        assert_eq!(config["root_identities"].as_array().map(Vec::len), Some(2));
        let snapshot = shaped(&shapes, &node, "snapshot", &["snapshot", "trigger"]);
        shaped(&shapes, &node, "snapshot", &["snapshot", "info"]);
        let info = shaped(&shapes, &node, "log-info", &["log", "info"]);
        let end = (info["last"].as_u64().expect("last") + 1).to_string();
        let entries = shaped(
            &shapes,
            &node,
            "log-entries",
            &["log", "entries", "0", &end],
        );
        let kinds: Vec<&str> = entries
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        for kind in ["blank", "membership", "command", "config"] {
            assert!(kinds.contains(&kind), "no {kind} entry among {kinds:?}");
        }
        let index = snapshot["index"].as_u64().expect("index").to_string();
        shaped(&shapes, &node, "log-compact", &["log", "compact", &index]);

        // Metrics: every category, then one (the others are null).
        let metrics = shaped(&shapes, &node, "metrics", &["metrics"]);
        assert_eq!(metrics["raft"]["state"], "leader");
        let raft = shaped(
            &shapes,
            &node,
            "metrics",
            &["metrics", "--category", "raft"],
        );
        assert!(raft["storage"].is_null() && raft["raft"].is_object());

        // Plugins and access: a deploy, the same deploy again (unchanged), a rollback.
        let wasm = root.path().join("kv-v2.wasm");
        std::fs::write(&wasm, bundled::KV_V2).expect("write wasm");
        let wasm = wasm.to_str().expect("utf-8");
        let deploy = ["plugin", "deploy", "--kind", "state-machine", wasm];
        assert_eq!(
            shaped(&shapes, &node, "plugin-outcome", &deploy)["changed"],
            true
        );
        assert_eq!(
            shaped(&shapes, &node, "plugin-outcome", &deploy)["changed"],
            false
        );
        let back = ["plugin", "rollback", "--kind", "state-machine"];
        assert_eq!(
            shaped(&shapes, &node, "plugin-outcome", &back)["kind"],
            "state-machine"
        );
        shaped(&shapes, &node, "plugin-list", &["plugin", "list"]);
        shaped(&shapes, &node, "whoami", &["whoami"]);
        shaped(&shapes, &node, "auth", &["auth"]);
        let stranger = root.path().join("stranger.key");
        let denied = cli_as(&stranger, &node, &["kv", "get", "a"]);
        assert_eq!(denied.status.code(), Some(1), "{denied:?}");

        // The consistency check prints its report whatever its verdict, and exits 0 only when
        // the members agree.
        let check = cli(&node, &["check", "consistency", "-o", "json"]);
        let report: Value = serde_json::from_slice(&check.stdout).expect("JSON report");
        shapes.assert("consistency", &report);
        assert_eq!(
            check.status.success(),
            report["consistent"] == true,
            "{check:?}"
        );

        // Members and leadership, with a standby node.
        let mut second = standby(root.path(), &ticket, 2);
        let second_address = format_node_address(&second.addr);
        shaped(
            &shapes,
            &node,
            "member",
            &["member", "add", "2", &second_address],
        );
        shaped(
            &shapes,
            &node,
            "leader",
            &["leader", "transfer", "--to", "2"],
        );
        shaped(&shapes, &node, "leader", &["leader", "step-down"]);
        // With two members, arrays that were empty hold elements, whose shapes are checked too.
        let status = shaped(&shapes, &node, "status", &["status"]);
        assert_eq!(status["members"].as_array().map(Vec::len), Some(2));
        let metrics = shaped(&shapes, &node, "metrics", &["metrics"]);
        for list in [&metrics["raft"]["followers"], &metrics["network"]["peers"]] {
            assert!(list.as_array().is_some_and(|l| !l.is_empty()), "{metrics}");
        }
        shaped(
            &shapes,
            &node,
            "member",
            &["member", "role", "2", "observer"],
        );
        // A member that cannot be asked: `health --cluster` exits 1, its `error` says why.
        second.kill();
        let health = cli(&node, &["health", "--cluster", "-o", "json"]);
        assert_eq!(health.status.code(), Some(1), "{health:?}");
        let health: Value = serde_json::from_slice(&health.stdout).expect("JSON health");
        shapes.assert("health-cluster", &health);
        let unasked = health["members"].as_array().expect("members");
        assert!(
            unasked
                .iter()
                .any(|m| m["node_id"] == 2 && m["error"].is_string() && m["health"].is_null()),
            "{health}"
        );
        let removed = shaped(&shapes, &node, "member", &["member", "remove", "2"]);
        assert!(removed["role"].is_null());

        let bench = shaped(
            &shapes,
            &node,
            "bench",
            &["bench", "--duration", "1", "--clients", "2"],
        );
        // The servers' CPU is charged to the operations: one member here.
        assert_eq!(bench["servers"], 1, "{bench}");
        assert!(
            bench["server_cpu_us_per_op"]
                .as_f64()
                .is_some_and(|us| us > 0.0),
            "{bench}"
        );
        let sweep = shaped(
            &shapes,
            &node,
            "bench-sweep",
            &[
                "bench",
                "--duration",
                "1",
                "--clients",
                "1,3",
                "--connections",
                "2",
            ],
        );
        let runs: Vec<(u64, u64)> = sweep
            .as_array()
            .expect("runs")
            .iter()
            .map(|run| {
                (
                    run["clients"].as_u64().unwrap_or(0),
                    run["connections"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(runs, [(1, 1), (3, 2)], "at most one connection per client");
        let deploys = shaped(
            &shapes,
            &node,
            "bench-deploy",
            &[
                "bench",
                "--mode",
                "deploy",
                "--clients",
                "1",
                "--plugin-sizes",
                "4096",
                "--rounds",
                "1",
            ],
        );
        assert_eq!(deploys["sizes"][0]["rounds"], 1, "{deploys}");
        let watched = shaped(
            &shapes,
            &node,
            "bench-watch",
            &[
                "bench",
                "--mode",
                "watch",
                "--duration",
                "1",
                "--clients",
                "2",
                "--watchers",
                "60",
            ],
        );
        let phases: Vec<_> = watched["phases"]
            .as_array()
            .expect("phases")
            .iter()
            .map(|phase| phase["watchers"].as_u64().unwrap_or(99))
            .collect();
        assert_eq!(phases, [0, 60, 1, 0], "{watched}");

        // Every event seen meanwhile has its documented shape, and the ones these commands
        // cause were seen.
        let mut seen = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let event: Value = serde_json::from_str(&line).expect("a JSON event line");
            let name = event["event"]
                .as_str()
                .expect("every line names its event")
                .to_string();
            shapes.assert(&format!("event-{name}"), &event);
            seen.insert(name);
            if WANTED.iter().all(|w| seen.contains(*w)) {
                break;
            }
        }
        for wanted in WANTED {
            assert!(seen.contains(wanted), "no {wanted} event among {seen:?}");
        }
        events.kill().expect("stop events");
        events.wait().expect("reap");

        // A failing command exits alike in both modes: 1 for what failed, 2 for bad arguments.
        for (args, code) in [
            (&["kv", "cas", "raw", "--expected", "nope", "x"][..], 1),
            (&["log", "compact", "99999"][..], 1),
            (&["member", "remove", "99"][..], 1),
            (&["kv", "get", "zz", "--hex"][..], 1),
            (&["config", "set", "heartbeat_interval_ms=1"][..], 1),
            (&["backup", "restore", "no-such-backup"][..], 1),
            (
                &["kv", "cas", "k", "--absent", "--expected", "a", "b"][..],
                2,
            ),
        ] {
            let text = cli(&node, args);
            let json = cli(&node, &[args, &["-o", "json"]].concat());
            assert_eq!(text.status.code(), Some(code), "{args:?}: {text:?}");
            assert_eq!(json.status.code(), Some(code), "{args:?} -o json: {json:?}");
            assert!(
                !json.stderr.is_empty(),
                "{args:?} -o json says nothing on stderr"
            );
        }
        let failed_cas = cli(
            &node,
            &["kv", "cas", "raw", "--expected", "nope", "x", "-o", "json"],
        );
        let failed_cas: Value = serde_json::from_slice(&failed_cas.stdout).expect("JSON");
        shapes.assert("kv-cas", &failed_cas);
        assert_eq!(failed_cas["swapped"], false);
        first.kill();

        // `demo` forms a cluster of its own.
        let demo = Command::new(env!("CARGO_BIN_EXE_iroh-raft"))
            .args(["demo", "--writes", "5", "-o", "json"])
            .env("RUST_LOG", "error")
            .output()
            .expect("run the demo");
        assert!(demo.status.success(), "{demo:?}");
        let demo: Value = serde_json::from_slice(&demo.stdout).expect("JSON");
        shapes.assert("demo", &demo);

        // Every documented shape is checked here, but the events this test cannot cause:
        // `resubscribed` is checked by the events test that kills the followed node.
        let unchecked = [
            "event-backup-created",
            "event-backup-restored",
            "event-divergence-detected",
            "event-lagged",
            "event-member-health-changed",
            "event-resubscribed",
            "event-unknown",
        ];
        let unused: Vec<String> = shapes
            .unused()
            .into_iter()
            .filter(|name| !unchecked.contains(&name.as_str()))
            .collect();
        assert!(
            unused.is_empty(),
            "documented but never checked: {unused:?}"
        );
    })
    .await
    .expect("the JSON tour finished in time");
}
