//! A leader SIGKILLed while clients increment a counter (issue "no write applies twice"): a write
//! the dead leader had committed but not answered used to be sent again by hand and applied a
//! second time. Now the clients resend it themselves, in its session slot, and the cluster applies
//! it once: the final count equals the acknowledged increments.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{Consistency, PluginKind};
use iroh_raft::{Client, IrohRaftManagementClient, bundled};

use crate::support::{cluster, leader_of};

fn add_one() -> Bytes {
    Bytes::from(postcard::to_allocvec(&1i64).expect("encode"))
}

struct Tally {
    stop: AtomicBool,
    acked: AtomicU64,
    unknown: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_an_increment_resent_after_the_leader_was_killed_applied_twice() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(root.path(), &[]).await;
    let admin = Client::connect_with_key(crate::support::admin_key(), nodes[0].addr.clone())
        .await
        .expect("connect");
    admin
        .deploy_plugin(
            PluginKind::StateMachine,
            Bytes::from_static(bundled::COUNTER),
            "counter-1",
            Bytes::new(),
            &mut |_, _| {},
        )
        .await
        .expect("the counter deploys");
    let leader = leader_of(&nodes, 0).await;
    let survivors: Vec<usize> = (0..3).filter(|n| *n != leader).collect();
    let tally = Arc::new(Tally {
        stop: AtomicBool::new(false),
        acked: AtomicU64::new(0),
        unknown: AtomicU64::new(0),
    });
    let mut writers = Vec::new();
    for &n in &survivors {
        let c = Client::connect_with_key(crate::support::admin_key(), nodes[n].addr.clone())
            .await
            .expect("connect");
        let tally = tally.clone();
        writers.push(tokio::spawn(async move {
            while !tally.stop.load(Ordering::Relaxed) {
                count(&tally, c.write(add_one()).await.map_err(|e| e.to_string()));
            }
        }));
    }
    let pool = IrohRaftManagementClient::connect_with_key(
        crate::support::admin_key(),
        nodes.iter().map(|n| n.addr.clone()).collect(),
    )
    .await
    .expect("pool");
    let pool_tally = tally.clone();
    writers.push(tokio::spawn(async move {
        while !pool_tally.stop.load(Ordering::Relaxed) {
            count(
                &pool_tally,
                pool.write(add_one()).await.map_err(|e| e.to_string()),
            );
        }
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    tracing::info!(leader, "SIGKILL the leader while three clients increment");
    nodes[leader].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    tally.stop.store(true, Ordering::Relaxed);
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(90), writer)
            .await
            .expect("writers stop")
            .expect("writer");
    }
    let reader = Client::connect_with_key(
        crate::support::admin_key(),
        nodes[survivors[0]].addr.clone(),
    )
    .await
    .expect("connect");
    let answer = reader
        .read(Bytes::new(), Consistency::Linearizable)
        .await
        .expect("read")
        .expect("query ok");
    let total = postcard::from_bytes::<i64>(&answer).expect("a total") as u64;
    let (acked, unknown) = (
        tally.acked.load(Ordering::Relaxed),
        tally.unknown.load(Ordering::Relaxed),
    );
    tracing::info!(acked, unknown, total, "increments");
    assert!(acked > 0);
    assert!(
        total >= acked && total <= acked + unknown,
        "the count ({total}) must equal the acknowledged increments ({acked}), plus at most the \
         {unknown} whose outcome is unknown"
    );
}

fn count(tally: &Tally, outcome: Result<(u64, Result<Bytes, String>), String>) {
    match outcome {
        Ok((_, Ok(_))) => tally.acked.fetch_add(1, Ordering::Relaxed),
        Ok((_, Err(message))) => panic!("an increment failed: {message}"),
        Err(_) => tally.unknown.fetch_add(1, Ordering::Relaxed),
    };
}
