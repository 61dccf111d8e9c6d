//! The command line against a real node process: kv commands, exit codes, JSON output, and a
//! clean stop on SIGTERM.

use std::process::Output;

use iroh_raft::format_node_address;

use crate::support::{cli, free_port, spawn};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_commands_exit_codes_json_and_sigterm() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut node = spawn(
        &root.path().join("n1"),
        free_port(),
        &["--init".to_string()],
    );
    let address = format_node_address(&node.addr);

    let put = cli(&address, &["kv", "put", "greeting", "hello"]);
    assert!(put.status.success(), "{put:?}");
    assert!(stdout(&put).starts_with("OK (index "), "{put:?}");
    let get = cli(&address, &["kv", "get", "greeting"]);
    assert_eq!(stdout(&get), "hello\n");

    // A missing key prints nothing and still succeeds, as etcdctl does.
    let missing = cli(&address, &["kv", "get", "nothing-here"]);
    assert!(missing.status.success());
    assert_eq!(stdout(&missing), "");

    // A failed compare-and-swap exits 1 and says what the key holds.
    let cas = cli(
        &address,
        &["kv", "cas", "greeting", "--expected", "bye", "hi"],
    );
    assert_eq!(cas.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&cas.stderr).contains("the key holds hello"),
        "{cas:?}"
    );
    assert!(
        cli(
            &address,
            &["kv", "cas", "greeting", "--expected", "hello", "hi"]
        )
        .status
        .success()
    );

    let scan = cli(&address, &["kv", "scan", "--prefix", "gr", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&scan)).expect("scan prints JSON");
    assert_eq!(json["pairs"][0]["value"], "hi");
    let status = cli(&address, &["status", "-o", "json"]);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&status)).expect("status prints JSON");
    assert_eq!(json["leader"], 1);

    // A bad address is a usage error with a hint, not a hang.
    let bad = cli("not-an-address", &["status"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a node address"),
        "{bad:?}"
    );

    // Delete reports whether the key existed.
    let deleted = cli(&address, &["kv", "delete", "greeting"]);
    assert!(
        stdout(&deleted).starts_with("deleted (index "),
        "{deleted:?}"
    );
    let again = cli(&address, &["kv", "delete", "greeting"]);
    assert!(stdout(&again).starts_with("absent (index "), "{again:?}");
    assert_eq!(stdout(&cli(&address, &["kv", "get", "greeting"])), "");

    // Raw commands and queries, hex in and out.
    let command = postcard::to_allocvec(&iroh_raft_kv_types::Command::Put {
        key: b"raw",
        value: b"bytes",
    })
    .expect("encode");
    let written = cli(&address, &["write", &hex::encode(command)]);
    assert!(written.status.success(), "{written:?}");
    let response = hex::decode(stdout(&written).trim()).expect("hex response");
    assert_eq!(
        postcard::from_bytes::<iroh_raft_kv_types::Response>(&response).expect("decode"),
        iroh_raft_kv_types::Response::Written
    );
    let query =
        postcard::to_allocvec(&iroh_raft_kv_types::Query::Get { key: b"raw" }).expect("encode");
    let read = cli(
        &address,
        &["read", "--consistency", "lease", &hex::encode(query)],
    );
    let answer = hex::decode(stdout(&read).trim()).expect("hex answer");
    assert_eq!(
        postcard::from_bytes::<iroh_raft_kv_types::QueryResponse>(&answer).expect("decode"),
        iroh_raft_kv_types::QueryResponse::Value(Some(b"bytes".to_vec()))
    );
    assert!(!cli(&address, &["write", "not-hex"]).status.success());

    // A short closed-loop bench reports real operations as JSON.
    let bench = cli(
        &address,
        &[
            "bench",
            "--clients",
            "2",
            "--duration",
            "1",
            "--keys",
            "10",
            "-o",
            "json",
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&bench)).expect("bench prints JSON");
    assert!(report["ops"].as_u64().expect("ops") > 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");

    // Plugins: the bundled list, and validation of a file by kind.
    let bundled = cli(&address, &["plugin", "bundled"]);
    assert_eq!(
        stdout(&bundled).lines().count(),
        iroh_raft::bundled::ALL.len()
    );
    let wasm = root.path().join("policy.wasm");
    std::fs::write(&wasm, iroh_raft::bundled::ALLOW_ALL).expect("write wasm");
    let path = wasm.to_str().expect("utf-8 path");
    assert!(
        cli(&address, &["plugin", "validate", "--kind", "policy", path])
            .status
            .success()
    );
    let wrong = cli(
        &address,
        &["plugin", "validate", "--kind", "state-machine", path],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("--kind policy"),
        "{wrong:?}"
    );

    // SIGTERM stops the node cleanly.
    // SAFETY: kill(2) on our own child.
    assert_eq!(
        unsafe { libc::kill(node.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let exit = node.child.wait().expect("wait");
    assert!(exit.success(), "the node exits 0 on SIGTERM: {exit:?}");
}
