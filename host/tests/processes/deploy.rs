//! Plugin deploys against real node processes through the command line: a follower SIGKILLed in
//! the middle of a deploy comes back on the same plugin as the others; `plugin list` and
//! `plugin rollback` report through the log.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use iroh_raft::proto::{Consistency, PluginKind};
use iroh_raft::{Client, bundled, format_node_address, sha256, sha256_hex};

use crate::support::{cli, cluster, eventually, leader_of, put};

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// The active state machine a node reports: (sha256 hex, activation index).
async fn active_state_machine(client: &Client) -> Option<(String, u64)> {
    let (registry, _) = client.plugins().await.ok()?;
    let active = registry.active(PluginKind::StateMachine)?;
    Some((sha256_hex(&active.sha256), active.index))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_killed_mid_deploy_restarts_on_the_same_plugin() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        let leader = leader_of(&nodes, 0).await;
        let follower = (leader + 1) % 3;
        let writer =
            Client::connect_with_key(crate::support::admin_key(), nodes[leader].addr.clone())
                .await
                .expect("connect");
        for n in 0..20 {
            writer
                .write(put(&format!("k{n}"), "v"))
                .await
                .expect("write")
                .1
                .expect("ok");
        }
        let wasm = root.path().join("kv-v2.wasm");
        std::fs::write(&wasm, bundled::KV_V2).expect("write wasm");
        let address = format_node_address(&nodes[leader].addr);

        tracing::info!("deploying through the CLI and SIGKILLing follower {follower} meanwhile");
        let deploy = Command::new(env!("CARGO_BIN_EXE_iroh-raft"))
            .args([
                "plugin",
                "deploy",
                "--kind",
                "state-machine",
                "--version",
                "2",
                "-o",
                "json",
            ])
            .arg(&wasm)
            .env("IROH_RAFT_NODE", &address)
            .env("IROH_RAFT_KEY", crate::support::admin_key_path())
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn deploy");
        tokio::time::sleep(Duration::from_millis(150)).await;
        nodes[follower].kill();
        let deployed = json(&deploy.wait_with_output().expect("deploy finishes"));
        assert_eq!(deployed["changed"], true, "{deployed}");
        let index = deployed["index"].as_u64().expect("index");
        let expected = (sha256_hex(&sha256(bundled::KV_V2)), index);

        tracing::info!("writes go on with two voters, then the follower restarts");
        let (last, outcome) = writer.write(put("after", "x")).await.expect("write");
        outcome.expect("ok");
        let restarted = nodes[follower].restart();
        let view = Client::connect_with_key(crate::support::admin_key(), restarted.addr.clone())
            .await
            .expect("connect");
        eventually(
            Duration::from_secs(60),
            "the follower to catch up",
            || async {
                view.status()
                    .await
                    .ok()
                    .and_then(|s| s.applied)
                    .is_some_and(|applied| applied >= last)
            },
        )
        .await;
        for (n, node) in nodes.iter().enumerate() {
            let client = if n == follower {
                &view
            } else {
                &Client::connect_with_key(crate::support::admin_key(), node.addr.clone())
                    .await
                    .expect("connect")
            };
            assert_eq!(
                active_state_machine(client).await,
                Some(expected.clone()),
                "node {n}"
            );
        }
        let answer = view
            .read(crate::support::get_query("after"), Consistency::Stale)
            .await
            .expect("read")
            .expect("query");
        assert_eq!(
            crate::support::decode_value(&answer),
            Some(b"v2:x".to_vec()),
            "the restarted follower applied the write with the deployed plugin"
        );

        tracing::info!("plugin list and rollback through the CLI");
        let restarted_address = format_node_address(&restarted.addr);
        let list = json(&cli(&restarted_address, &["plugin", "list", "-o", "json"]));
        assert_eq!(
            list["state-machine"]["active"]["sha256"],
            expected.0.as_str(),
            "{list}"
        );
        assert_eq!(list["state-machine"]["active"]["version"], "2");
        let again = cli(
            &restarted_address,
            &[
                "plugin",
                "deploy",
                "--kind",
                "state-machine",
                wasm.to_str().expect("utf-8"),
            ],
        );
        assert!(again.status.success(), "{again:?}");
        assert!(
            String::from_utf8_lossy(&again.stdout).starts_with("unchanged"),
            "{again:?}"
        );
        let rollback = json(&cli(
            &restarted_address,
            &[
                "plugin",
                "rollback",
                "--kind",
                "state-machine",
                "-o",
                "json",
            ],
        ));
        assert_eq!(rollback["sha256"], sha256_hex(&sha256(bundled::KV)));
        let refused = cli(
            &restarted_address,
            &["plugin", "rollback", "--kind", "state-machine"],
        );
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("no earlier"),
            "{refused:?}"
        );
        let garbage = root.path().join("garbage.wasm");
        std::fs::write(&garbage, b"garbage").expect("write");
        let refused = cli(
            &restarted_address,
            &[
                "plugin",
                "deploy",
                "--kind",
                "state-machine",
                garbage.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(refused.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("previous plugin stays active") && stderr.contains("not a WebAssembly"),
            "{refused:?}"
        );
        drop(restarted);
    })
    .await
    .expect("the test finished in time");
}
