//! A `migrate` that runs for seconds does not stop the cluster's heartbeats: apply and migrate
//! run on blocking threads, off the tokio workers that carry raft's RPCs (issue 10, "heartbeats
//! must not starve while a large migrate runs").

use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh_raft::proto::{PluginKind, PluginLimits, PluginOutcome};
use iroh_raft::storage::{AppliedMark, FjallStateStore};
use iroh_raft::{PluginEngine, bundled};
use openraft::async_runtime::WatchReceiver;

use crate::support::{client, cluster, config, configuration, put, retry_config, wait_for};

const LIMIT: Duration = Duration::from_secs(240);

/// How long the migration should run, on one core of its own.
const MIGRATION: Duration = Duration::from_millis(2500);

/// Turns of the faulty plugin's `migrate:burn` loop that take about [`MIGRATION`] here, and the
/// fuel they need, timed on this machine through the same plugin runtime.
fn calibrate() -> (u64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = fjall::Database::builder(dir.path())
        .open()
        .expect("open fjall");
    let state = std::sync::Arc::new(FjallStateStore::open(&db, "faulty", None).expect("state"));
    let engine = PluginEngine::new(None).expect("engine");
    let plugin = engine
        .load_state_machine("faulty", bundled::FAULTY)
        .expect("load faulty");
    let limits = PluginLimits {
        fuel_per_migration: 1 << 50,
        ..PluginLimits::default()
    };
    let mut applier = plugin.applier(state, limits).expect("applier");
    let mut time = |turns: u64, index: u64| {
        let put = Bytes::from(format!("put:migrate:burn={turns}"));
        let outcome = applier.apply(index, &[put]).expect("apply");
        assert!(outcome[0].is_ok(), "{outcome:?}");
        applier
            .commit(&AppliedMark {
                index,
                extra: Vec::new(),
            })
            .expect("commit");
        let fuel = applier.fuel_consumed();
        let start = Instant::now();
        applier
            .migrate("", 1)
            .expect("no storage error")
            .expect("the migration succeeds");
        (start.elapsed(), applier.fuel_consumed() - fuel)
    };
    let (short, _) = time(1_000_000, 1);
    let (long, fuel) = time(51_000_000, 2);
    let per_turn = (long.saturating_sub(short)).as_secs_f64() / 50e6;
    let turns = (MIGRATION.as_secs_f64() / per_turn.max(1e-12)) as u64;
    let fuel_per_turn = fuel as f64 / 51e6;
    (
        turns,
        (turns as f64 * fuel_per_turn * 2.0) as u64 + 1_000_000,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_flowing_while_a_migrate_runs_for_seconds() {
    tokio::time::timeout(LIMIT, async {
        let (turns, fuel) = tokio::task::spawn_blocking(calibrate)
            .await
            .expect("calibration");
        tracing::info!(turns, fuel, "calibrated the migration");
        let nodes = cluster(3).await;
        let admin = client(&nodes[0]).await;
        let mut wanted = configuration(&admin).await;
        wanted.limits.fuel_per_migration = wanted.limits.fuel_per_migration.max(fuel);
        retry_config(&admin, wanted.clone()).await;
        // The bundled kv writes the key the faulty plugin's migrate reads.
        let (_, outcome) = admin
            .write(put("migrate:burn", &turns.to_string()))
            .await
            .expect("write");
        outcome.expect("put ok");
        wait_for(Duration::from_secs(30), "the config everywhere", || {
            nodes.iter().all(|n| {
                n.node.status().applied == nodes[0].node.status().applied
                    && n.node.status().leader.is_some()
            })
        })
        .await;
        let before: Vec<(u64, Option<u64>)> = nodes
            .iter()
            .map(|n| (n.node.status().term, n.node.status().leader))
            .collect();
        let leader_id = before[0].1.expect("a leader");
        let leader = nodes
            .iter()
            .find(|n| n.node.status().node_id == leader_id)
            .expect("the leader is one of the nodes");

        let started = Instant::now();
        let deploy = tokio::spawn(async move {
            admin
                .deploy_plugin(
                    PluginKind::StateMachine,
                    Bytes::from_static(bundled::FAULTY),
                    "slow-migrate",
                    Bytes::new(),
                    &mut |_, _| {},
                )
                .await
        });
        // While it runs: every node keeps its term and leader, the leader keeps hearing from a
        // quorum, and a follower still answers a management request.
        let mut oldest_ack = Duration::ZERO;
        let mut samples = 0u32;
        let follower = nodes
            .iter()
            .find(|n| n.node.status().node_id != leader_id)
            .expect("a follower");
        let follower_client = client(follower).await;
        while !deploy.is_finished() {
            for (node, (term, leader)) in nodes.iter().zip(&before) {
                let now = node.node.status();
                assert_eq!(
                    (now.term, now.leader),
                    (*term, *leader),
                    "node {} saw an election {:?} into the migration",
                    now.node_id,
                    started.elapsed()
                );
            }
            if let Some(ms) = leader
                .node
                .raft()
                .metrics()
                .borrow_watched()
                .last_quorum_acked
                .as_ref()
                .map(|at| openraft::Instant::elapsed(&**at))
            {
                oldest_ack = oldest_ack.max(ms);
            }
            let asked = Instant::now();
            tokio::time::timeout(
                Duration::from_secs(5),
                follower_client.request(iroh_raft::proto::Operation::GetClusterStatus),
            )
            .await
            .expect("a follower answers status within 5 s during the migration")
            .expect("status");
            tracing::debug!(took = ?asked.elapsed(), "status during the migration");
            samples += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let took = started.elapsed();
        let outcome = deploy.await.expect("deploy task").expect("deploy");
        assert!(
            matches!(outcome, PluginOutcome::Activated { .. }),
            "expected an activation, got {outcome:?}"
        );
        let election_max = config(std::path::Path::new(".")).election_timeout.1;
        tracing::info!(?took, ?oldest_ack, samples, "the migration ran");
        assert!(
            took >= election_max * 2,
            "the migration took {took:?}: too short to show anything against elections of {election_max:?}"
        );
        assert!(samples >= 5, "only {samples} samples during the migration");
        assert!(
            oldest_ack < election_max,
            "the leader went {oldest_ack:?} without a quorum's ack during the migration"
        );
        for node in nodes {
            node.node.shutdown().await.expect("shutdown");
        }
    })
    .await
    .expect("the test finished in time");
}
