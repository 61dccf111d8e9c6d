//! Deploying plugins through the raft log on a three-node cluster, with a client writing the whole
//! time: every replica switches at the same index, `migrate` runs in the activating batch, bad
//! deploys are refused everywhere with the reason, rollback restores the old behaviour, and a
//! node restarted after deploys runs the plugin of its applied state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{ClusterEvent, Consistency, PluginKind, PluginOutcome, RequestError};
use iroh_raft::storage::StateStore;
use iroh_raft::{ClientError, Node, Start, bundled, sha256};
use openraft::async_runtime::WatchReceiver;

use crate::support::{TestNode, client, cluster, config, get, put, value, wait_for};

const LIMIT: Duration = Duration::from_secs(240);

/// What the background writer saw: (key, value, index) of each acknowledged write, and failures.
#[derive(Default)]
struct Written {
    acked: Vec<(String, String, u64)>,
    failed: Vec<String>,
}

/// Writes `w<n>` = `x<n>` through `node` until `stop`, one write at a time.
fn spawn_writer(
    client: iroh_raft::Client,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Written> {
    tokio::spawn(async move {
        let mut written = Written::default();
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let (key, val) = (format!("w{n:05}"), format!("x{n}"));
            match client.write(put(&key, &val)).await {
                Ok((index, Ok(_))) => written.acked.push((key, val, index)),
                Ok((index, Err(error))) => written.failed.push(format!("{key}@{index}: {error}")),
                Err(error) => written.failed.push(format!("{key}: {error}")),
            }
            n += 1;
        }
        written
    })
}

async fn wait_acked(writer_progress: &tokio::task::JoinHandle<Written>, pause: Duration) {
    assert!(!writer_progress.is_finished(), "the writer stopped early");
    tokio::time::sleep(pause).await;
}

/// Reads `key` from `node`'s own applied state.
async fn stale_value(client: &iroh_raft::Client, key: &str) -> Option<Vec<u8>> {
    let answer = client
        .read(get(key), Consistency::Stale)
        .await
        .expect("read")
        .expect("query ok");
    value(&answer)
}

async fn applied_everywhere(nodes: &[TestNode], index: u64) {
    wait_for(Duration::from_secs(30), "every node to apply", || {
        nodes
            .iter()
            .all(|n| n.node.status().applied.unwrap_or(0) >= index)
    })
    .await;
}

fn active_sm(node: &Node) -> (Option<[u8; 32]>, Option<u64>) {
    let (registry, _) = node.state_machine().plugins().expect("registry");
    let active = registry.active(PluginKind::StateMachine);
    (active.map(|a| a.sha256), active.map(|a| a.index))
}

/// How many components the node's engine has compiled (not loaded from its cache).
fn compiled(node: &Node) -> u64 {
    node.state_machine()
        .plugin()
        .expect("plugin")
        .engine()
        .compile_stats()
        .0
}

fn refusal(result: Result<PluginOutcome, ClientError>) -> String {
    match result {
        Err(ClientError::Request(RequestError::PluginRefused(reason))) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_under_writes_switches_every_replica_at_one_index_and_rollback_restores() {
    tokio::time::timeout(LIMIT, async {
        let nodes = cluster(3).await;
        let mut events: Vec<_> = nodes
            .iter()
            .map(|n| n.node.state_machine().events().subscribe())
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        tracing::info!("a client writes through node 1 the whole time");
        let writer = spawn_writer(client(&nodes[1]).await, stop.clone());
        wait_acked(&writer, Duration::from_millis(500)).await;

        tracing::info!("deploying kv-v2 through node 2");
        let deployer = client(&nodes[2]).await;
        let v2 = Bytes::from_static(bundled::KV_V2);
        let outcome = deployer
            .deploy_plugin(
                PluginKind::StateMachine,
                v2.clone(),
                "2.0.0",
                Bytes::new(),
                &mut |_, _| {},
            )
            .await
            .expect("deploy accepted");
        let PluginOutcome::Activated {
            index: deployed_at,
            from_version,
            ..
        } = outcome
        else {
            panic!("expected an activation, got {outcome:?}");
        };
        assert_eq!(from_version, "");
        wait_acked(&writer, Duration::from_millis(500)).await;

        tracing::info!("deploying the same bytes again changes nothing");
        let again = deployer
            .deploy_plugin(
                PluginKind::StateMachine,
                v2.clone(),
                "2.0.0",
                Bytes::new(),
                &mut |_, _| {},
            )
            .await
            .expect("answered");
        assert!(
            matches!(again, PluginOutcome::Unchanged { since, .. } if since == deployed_at),
            "{again:?}"
        );

        stop.store(true, Ordering::Relaxed);
        let written = writer.await.expect("writer task");
        assert!(
            written.failed.is_empty(),
            "writes failed: {:?}",
            written.failed
        );
        let before = written.acked.iter().filter(|w| w.2 < deployed_at).count();
        let after = written.acked.iter().filter(|w| w.2 > deployed_at).count();
        tracing::info!(before, after, deployed_at, "writes around the deploy");
        assert!(
            before > 0 && after > 0,
            "writes ran on both sides of the deploy"
        );
        let last = written.acked.iter().map(|w| w.2).max().expect("writes");
        applied_everywhere(&nodes, last).await;

        tracing::info!("every replica switched at {deployed_at}");
        for node in &nodes {
            assert_eq!(
                active_sm(&node.node),
                (Some(sha256(bundled::KV_V2)), Some(deployed_at))
            );
        }
        for subscription in &mut events {
            let event = tokio::time::timeout(Duration::from_secs(5), subscription.next())
                .await
                .expect("an event in time");
            assert_eq!(
                event,
                Some(ClusterEvent::PluginDeployed {
                    kind: PluginKind::StateMachine,
                    sha256: sha256(bundled::KV_V2),
                    version: "2.0.0".into(),
                    index: deployed_at,
                })
            );
        }
        tracing::info!("entries before the index ran on v1 (then migrated), after it on v2");
        for node in &nodes {
            let reader = client(node).await;
            for (key, val, index) in &written.acked {
                let expected = if *index < deployed_at {
                    format!("m:{val}")
                } else {
                    format!("v2:{val}")
                };
                assert_eq!(
                    stale_value(&reader, key).await,
                    Some(expected.into_bytes()),
                    "{key} written at {index}"
                );
            }
        }
        let hashes: Vec<_> = nodes
            .iter()
            .map(|n| n.node.state_machine().state().content_hash().expect("hash"))
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "state hashes differ"
        );

        tracing::info!("rolling back to the bundled kv");
        let compiled_before: Vec<u64> = nodes.iter().map(|n| compiled(&n.node)).collect();
        let rolled = deployer
            .rollback_plugin(PluginKind::StateMachine)
            .await
            .expect("rollback");
        let PluginOutcome::Activated {
            index: rolled_at,
            sha256: rolled_to,
            from_version,
            ..
        } = rolled
        else {
            panic!("expected an activation, got {rolled:?}");
        };
        assert_eq!(rolled_to, sha256(bundled::KV));
        assert_eq!(from_version, "2.0.0");
        // Bug: `events` showed a rollback as a deploy.
        for subscription in &mut events {
            let event = tokio::time::timeout(Duration::from_secs(5), subscription.next())
                .await
                .expect("an event in time");
            assert!(
                matches!(
                    event,
                    Some(ClusterEvent::PluginRolledBack { kind: PluginKind::StateMachine, index, .. })
                        if index == rolled_at
                ),
                "{event:?}"
            );
        }
        let (index, outcome) = deployer
            .write(put("after-rollback", "plain"))
            .await
            .expect("write");
        outcome.expect("ok");
        applied_everywhere(&nodes, index).await;
        for node in &nodes {
            assert_eq!(
                active_sm(&node.node),
                (Some(sha256(bundled::KV)), Some(rolled_at))
            );
            let reader = client(node).await;
            assert_eq!(
                stale_value(&reader, "after-rollback").await,
                Some(b"plain".to_vec())
            );
        }
        let compiled_after: Vec<u64> = nodes.iter().map(|n| compiled(&n.node)).collect();
        assert_eq!(
            compiled_after, compiled_before,
            "a rollback never recompiles"
        );
        tracing::info!("nothing left to roll back to");
        let refused = refusal(deployer.rollback_plugin(PluginKind::StateMachine).await);
        assert!(refused.contains("no earlier"), "{refused}");
        for node in nodes {
            node.node.shutdown().await.expect("shutdown");
        }
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deploys_are_refused_with_the_reason_and_the_old_plugin_keeps_serving() {
    tokio::time::timeout(LIMIT, async {
        let nodes = cluster(3).await;
        let deployer = client(&nodes[0]).await;
        let (index, outcome) = deployer.write(put("before", "one")).await.expect("write");
        outcome.expect("ok");

        // A migrate that traps, the wrong world, garbage, and a policy checked against its own
        // world: each refused with its reason.
        let refusals: [(PluginKind, &'static [u8], &str, &str); 4] = [
            (PluginKind::StateMachine, bundled::FAULTY, "bad", "migrate"),
            (
                PluginKind::StateMachine,
                bundled::ALLOW_ALL,
                "",
                "policy plugin",
            ),
            (
                PluginKind::StateMachine,
                b"this is not a wasm component at all",
                "",
                "not a WebAssembly",
            ),
            (PluginKind::Policy, bundled::KV, "", "state-machine plugin"),
        ];
        for (kind, wasm, version, expected) in refusals {
            tracing::info!(%kind, expected, "a deploy that must be refused");
            let reason = refusal(
                deployer
                    .deploy_plugin(
                        kind,
                        Bytes::from_static(wasm),
                        version,
                        Bytes::new(),
                        &mut |_, _| {},
                    )
                    .await,
            );
            assert!(reason.contains(expected), "{reason}");
        }
        // Padded past several upload chunks, to see the progress reports.
        let read_only = Bytes::from(crate::support::padding::padded_component(
            bundled::READ_ONLY,
            600_000,
            7,
        ));
        let mut progress = Vec::new();
        let policy = deployer
            .deploy_plugin(
                PluginKind::Policy,
                read_only.clone(),
                "ro-1",
                Bytes::from_static(b"{\"note\": \"config travels with the plugin\"}"),
                &mut |sent, total| progress.push((sent, total)),
            )
            .await
            .expect("policy deploy");
        assert!(progress.len() >= 3, "{progress:?}");
        assert!(progress.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(progress.last(), Some(&(600_000, 600_000)));
        assert!(
            matches!(policy, PluginOutcome::Activated { .. }),
            "expected an activation, got {policy:?}"
        );
        tracing::info!("read-only refuses writes, even the admin's; roll back to the initial rbac");
        let refused = deployer.write(put("after", "two")).await;
        assert!(
            matches!(
                refused,
                Err(ClientError::Request(RequestError::Denied { .. }))
            ),
            "{refused:?}"
        );
        let rollback = deployer
            .rollback_plugin(PluginKind::Policy)
            .await
            .expect("rollback");
        let PluginOutcome::Activated {
            sha256: back_to,
            index: policy_at,
            ..
        } = rollback
        else {
            panic!("expected an activation, got {rollback:?}");
        };
        assert_eq!(back_to, sha256(bundled::RBAC));

        tracing::info!("the bundled kv still serves, unchanged, on every replica");
        let (last, outcome) = deployer.write(put("after", "two")).await.expect("write");
        outcome.expect("ok");
        assert!(last > index);
        applied_everywhere(&nodes, last).await;
        for node in &nodes {
            // The initial state machine, proposed at --init, is still the active one.
            assert_eq!(active_sm(&node.node).0, Some(sha256(bundled::KV)));
            let (registry, _) = node.node.state_machine().plugins().expect("registry");
            let active = registry.active(PluginKind::Policy).expect("a policy");
            assert_eq!(
                (active.sha256, active.index, active.version.as_str()),
                (sha256(bundled::RBAC), policy_at, "")
            );
            // The rolled-back policy came back with its configuration (the admins).
            assert!(!active.config.is_empty());
            let reader = client(node).await;
            assert_eq!(stale_value(&reader, "before").await, Some(b"one".to_vec()));
            assert_eq!(stale_value(&reader, "after").await, Some(b"two".to_vec()));
            assert_eq!(
                stale_value(&reader, "migrating").await,
                None,
                "the trapped migrate's write was discarded"
            );
        }
        for node in nodes {
            node.node.shutdown().await.expect("shutdown");
        }
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_after_a_deploy_runs_the_deployed_plugin() {
    tokio::time::timeout(LIMIT, async {
        let mut nodes = cluster(3).await;
        let deployer = client(&nodes[0]).await;
        deployer
            .write(put("k", "v"))
            .await
            .expect("write")
            .1
            .expect("ok");
        let outcome = deployer
            .deploy_plugin(
                PluginKind::StateMachine,
                Bytes::from_static(bundled::KV_V2),
                "2",
                Bytes::new(),
                &mut |_, _| {},
            )
            .await
            .expect("deploy");
        assert!(matches!(outcome, PluginOutcome::Activated { .. }));
        let (index, _) = deployer.write(put("k2", "v")).await.expect("write");
        applied_everywhere(&nodes, index).await;

        tracing::info!("restarting node 2 from its data directory");
        let stopped = nodes.remove(2);
        let bind = stopped.node.endpoint().bound_sockets()[0];
        let dir = stopped.dir;
        stopped.node.shutdown().await.expect("shutdown");
        let mut restart = config(dir.path());
        restart.bind = bind;
        let node = Node::start(restart, Start::Restart).await.expect("restart");
        assert_eq!(
            node.state_machine().plugin().expect("plugin").info().sha256,
            sha256(bundled::KV_V2),
            "the restarted node runs the deployed plugin, not the bundled default"
        );
        let (compiled, cache_hits) = node
            .state_machine()
            .plugin()
            .expect("plugin")
            .engine()
            .compile_stats();
        assert_eq!(compiled, 0, "nothing was recompiled at restart");
        assert!(cache_hits > 0);
        let restarted = TestNode { node, dir };
        let (index, outcome) = deployer.write(put("k3", "v")).await.expect("write");
        outcome.expect("ok");
        nodes.push(restarted);
        applied_everywhere(&nodes, index).await;
        let reader = client(&nodes[2]).await;
        assert_eq!(stale_value(&reader, "k").await, Some(b"m:v".to_vec()));
        assert_eq!(stale_value(&reader, "k3").await, Some(b"v2:v".to_vec()));
        for node in nodes {
            node.node.shutdown().await.expect("shutdown");
        }
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_a_snapshot_runs_the_plugins_it_carries() {
    tokio::time::timeout(LIMIT, async {
        crate::support::init_tracing();
        tracing::info!("a one-node cluster that snapshots every 20 entries and keeps 2");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut first_config = config(dir.path());
        first_config.snapshot_every = 20;
        first_config.keep_after_snapshot = 2;
        let first = TestNode {
            node: Node::start(first_config, Start::Init).await.expect("start"),
            dir,
        };
        let writer = client(&first).await;
        for n in 0..10 {
            writer
                .write(put(&format!("a{n}"), "1"))
                .await
                .expect("write")
                .1
                .expect("ok");
        }
        writer
            .deploy_plugin(
                PluginKind::StateMachine,
                Bytes::from_static(bundled::KV_V2),
                "2",
                Bytes::new(),
                &mut |_, _| {},
            )
            .await
            .expect("deploy");
        let mut last = 0;
        for n in 0..60 {
            last = writer
                .write(put(&format!("b{n}"), "2"))
                .await
                .expect("write")
                .0;
        }
        wait_for(
            Duration::from_secs(30),
            "a snapshot past the deploy",
            || {
                first
                    .node
                    .raft()
                    .metrics()
                    .borrow_watched()
                    .purged
                    .is_some_and(|purged| purged.index > 20)
            },
        )
        .await;

        tracing::info!("a new node joins: the log it needs is purged, so it gets the snapshot");
        let dir = tempfile::tempdir().expect("temp dir");
        let joined = TestNode {
            node: Node::start(config(dir.path()), Start::Join(first.node.ticket()))
                .await
                .expect("join"),
            dir,
        };
        let nodes = vec![first, joined];
        wait_for(Duration::from_secs(60), "the new node to catch up", || {
            nodes[1].node.status().applied.unwrap_or(0) >= last
        })
        .await;
        assert_eq!(
            nodes[1]
                .node
                .state_machine()
                .plugin()
                .expect("plugin")
                .info()
                .sha256,
            sha256(bundled::KV_V2),
            "the snapshot carried the deployed plugin"
        );
        assert_eq!(active_sm(&nodes[1].node), active_sm(&nodes[0].node));
        let (index, outcome) = writer.write(put("c", "3")).await.expect("write");
        outcome.expect("ok");
        applied_everywhere(&nodes, index).await;
        let hashes: Vec<_> = nodes
            .iter()
            .map(|n| n.node.state_machine().state().content_hash().expect("hash"))
            .collect();
        assert_eq!(hashes[0], hashes[1], "the replicas hold the same state");
        let reader = client(&nodes[1]).await;
        assert_eq!(stale_value(&reader, "a0").await, Some(b"m:1".to_vec()));
        assert_eq!(stale_value(&reader, "c").await, Some(b"v2:3".to_vec()));
        for node in nodes {
            node.node.shutdown().await.expect("shutdown");
        }
    })
    .await
    .expect("the test finished in time");
}
