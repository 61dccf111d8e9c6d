//! `iroh-raft watch` against a node process: a live watch prints each put and delete of its
//! prefix in log order (binary keys escaped, or in hex with `--hex`), `--exact` and `--to` narrow
//! it, `--from` replays the history, a compacted index and an empty range exit 1 saying why, and
//! the stderr stays clean.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use iroh_raft::format_node_address;

use crate::support::{admin_key_path, cli, free_port, spawn};

/// Waits up to 30 s for `child` to exit, killing it if it does not.
fn finish(mut child: std::process::Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!(
                "the watch did not exit in 30 s: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// `iroh-raft watch PREFIX --from FROM --count COUNT` against `node`, its output piped.
fn watch_process(node: &str, prefix: &str, from: u64, count: usize) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_iroh-raft"))
        .args([
            "watch",
            prefix,
            "--from",
            &from.to_string(),
            "--count",
            &count.to_string(),
        ])
        .env("IROH_RAFT_NODE", node)
        .env("IROH_RAFT_KEY", admin_key_path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch starts")
}

fn ok(node: &str, args: &[&str]) -> String {
    let output = cli(node, args);
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn index_of(json: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(json).expect("JSON");
    value["index"].as_u64().expect("an index")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_command_prints_changes_in_order_narrows_replays_and_refuses_what_it_cannot() {
    let root = tempfile::tempdir().expect("temp dir");
    let node = spawn(
        &root.path().join("n1"),
        free_port(),
        &["--init".to_string()],
    );
    let address = format_node_address(&node.addr);
    let first = index_of(&ok(&address, &["kv", "put", "app/0", "zero", "-o", "json"]));

    // A live watch from the next index, started before the writes it must print.
    let live = watch_process(&address, "app/", first + 1, 3);
    let one = index_of(&ok(&address, &["kv", "put", "app/1", "one", "-o", "json"]));
    ok(&address, &["kv", "put", "elsewhere", "x"]);
    ok(&address, &["kv", "delete", "absent/key"]);
    let deleted = index_of(&ok(&address, &["kv", "delete", "app/0", "-o", "json"]));
    // A binary key: `app/` and 0xff.
    let binary = index_of(&ok(
        &address,
        &["kv", "put", "--hex", "6170702fff", "00ff", "-o", "json"],
    ));
    let output = finish(live);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "{one}\tput\tapp/1\tone\n{deleted}\tdelete\tapp/0\n{binary}\tput\tapp/\\xff\t\\x00\\xff\n"
        )
    );
    let noise = String::from_utf8_lossy(&output.stderr);
    assert!(
        !noise.contains("ERROR") && !noise.contains("Endpoint dropped"),
        "{noise}"
    );

    // Replays from the history: in hex, one key exactly, a range.
    let from = first.to_string();
    assert_eq!(
        ok(
            &address,
            &[
                "watch", "6170702f", "--hex", "--from", &from, "--count", "2"
            ]
        ),
        format!("{first}\tput\t6170702f30\t7a65726f\n{one}\tput\t6170702f31\t6f6e65\n")
    );
    assert_eq!(
        ok(
            &address,
            &["watch", "app/1", "--exact", "--from", "1", "--count", "1"]
        ),
        format!("{one}\tput\tapp/1\tone\n")
    );
    assert_eq!(
        ok(
            &address,
            &[
                "watch", "app/0", "--to", "app/1", "--from", "1", "--count", "2"
            ]
        ),
        format!("{first}\tput\tapp/0\tzero\n{deleted}\tdelete\tapp/0\n")
    );

    // What it cannot do, it says.
    let empty = cli(&address, &["watch", "b", "--to", "a"]);
    assert_eq!(empty.status.code(), Some(1), "{empty:?}");
    assert!(String::from_utf8_lossy(&empty.stderr).contains("the range is empty"));
    ok(&address, &["config", "set", "watch_history=1"]);
    ok(&address, &["kv", "put", "later", "1"]);
    let compacted = cli(&address, &["watch", "--from", "1"]);
    assert_eq!(compacted.status.code(), Some(1), "{compacted:?}");
    let said = String::from_utf8_lossy(&compacted.stderr);
    assert!(
        said.contains("cannot watch from index 1")
            && said.contains("keeps changes only from index"),
        "{said}"
    );
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_falls_behind_watches_again_from_where_it_stopped_and_loses_nothing() {
    use std::io::Read;

    let root = tempfile::tempdir().expect("temp dir");
    let node = spawn(
        &root.path().join("n1"),
        free_port(),
        &["--init".to_string()],
    );
    let address = format_node_address(&node.addr);
    let first = index_of(&ok(&address, &["kv", "put", "start", "x", "-o", "json"]));
    let total = 1200;
    // Nobody reads its output for now: it blocks printing, stops reading the node, and its
    // queue on the node fills.
    let mut watch = watch_process(&address, "s/", first + 1, total);
    let writer =
        iroh_raft::Client::connect_with_key(crate::support::admin_key(), node.addr.clone())
            .await
            .expect("connect");
    let value = "v".repeat(16 << 10);
    let mut written = Vec::new();
    for i in 0..total {
        let (index, outcome) = writer
            .write(crate::support::put(&format!("s/{i:04}"), &value))
            .await
            .expect("write");
        outcome.expect("applied");
        written.push(index);
    }
    writer.close().await;
    // Now its output is read: every change, in order, once.
    let mut stdout = String::new();
    watch
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    let output = finish(watch);
    assert!(output.status.success(), "{output:?}");
    let printed: Vec<u64> = stdout
        .lines()
        .map(|line| {
            line.split('\t')
                .next()
                .expect("index")
                .parse()
                .expect("a number")
        })
        .collect();
    assert_eq!(printed, written);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("the watch fell behind at index"), "{said}");
}
