//! Apply exactly once (issue "No input can stop the cluster, no write applies twice"): a write
//! carries its client's session and number, so a retry after a timeout, a write forwarded again
//! after an election (openraft's `LogEntryDiscarded` is answered as "no leader" and the request
//! routed again) or resent to another member after a failover returns the first result instead of
//! applying twice. Before sessions, each of those proposed a second entry that applied again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{ClusterConfig, Consistency, Operation, PluginKind, Reply, SessionTag};
use iroh_raft::{Client, IrohRaftManagementClient, bundled};

use crate::support::{TestNode, client, cluster, configuration};

const LONG: Duration = Duration::from_secs(120);

fn add(n: i64) -> Bytes {
    Bytes::from(postcard::to_allocvec(&n).expect("encode"))
}

fn total(bytes: &Bytes) -> i64 {
    postcard::from_bytes(bytes).expect("a counter total")
}

/// Runs the counter plugin on the cluster.
async fn deploy_counter(nodes: &[TestNode]) {
    client(&nodes[0])
        .await
        .deploy_plugin(
            PluginKind::StateMachine,
            Bytes::from_static(bundled::COUNTER),
            "counter-1",
            Bytes::new(),
            &mut |_, _| {},
        )
        .await
        .expect("the counter deploys");
}

async fn read_total(c: &Client) -> i64 {
    let answer = c
        .read(Bytes::new(), Consistency::Linearizable)
        .await
        .expect("read")
        .expect("query ok");
    total(&answer)
}

async fn tagged(c: &Client, tag: SessionTag) -> Result<(u64, Result<Bytes, String>), String> {
    match c
        .request(Operation::Write {
            command: add(1),
            session: Some(tag),
        })
        .await
    {
        Ok(Reply::Written { index, outcome }) => Ok((index, outcome)),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_proposed_twice_with_one_tag_applies_once_and_the_repeat_returns_the_first_result()
{
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster forms in time");
    deploy_counter(&nodes).await;
    let (through_follower, through_other) = (client(&nodes[1]).await, client(&nodes[2]).await);
    let tag = SessionTag {
        client: [7; 16],
        seq: 1,
        acked: 1,
    };
    tracing::info!("one tagged increment, proposed twice through two members: two log entries");
    let (first_index, first) = tagged(&through_follower, tag).await.expect("first");
    let (again_index, again) = tagged(&through_other, tag).await.expect("again");
    assert_eq!(first.as_ref().map(total), Ok(1));
    assert_eq!(again, first, "the repeat returns the first result");
    assert_eq!(again_index, first_index, "and the first index");
    assert_eq!(read_total(&through_follower).await, 1, "applied once");

    let next = SessionTag { seq: 2, ..tag };
    let (_, second) = tagged(&through_other, next).await.expect("second");
    assert_eq!(second.as_ref().map(total), Ok(2));
    tracing::info!("a write the session acknowledged is refused, not applied");
    let stale = tagged(
        &through_other,
        SessionTag {
            seq: 1,
            acked: 3,
            ..tag
        },
    )
    .await;
    let (_, refused) = stale.expect("answered");
    assert!(refused.expect_err("refused").contains("already answered"));
    assert_eq!(read_total(&through_follower).await, 2);
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

/// Increments through `write` until `stop`, counting acknowledged and unknown outcomes.
fn spawn_incrementer<F, Fut>(
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    unknown: Arc<AtomicU64>,
    write: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(u64, Result<Bytes, String>), String>> + Send,
{
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            match write().await {
                Ok((_, Ok(_))) => acked.fetch_add(1, Ordering::Relaxed),
                Ok((_, Err(message))) => panic!("an increment failed: {message}"),
                Err(_) => unknown.fetch_add(1, Ordering::Relaxed),
            };
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_retried_increments_applied_twice_now_five_election_timeout_changes_lose_or_double_none()
 {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster forms in time");
    deploy_counter(&nodes).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, unknown) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut writers = Vec::new();
    for node in &nodes[1..] {
        let c = Arc::new(client(node).await);
        writers.push(spawn_incrementer(
            stop.clone(),
            acked.clone(),
            unknown.clone(),
            move || {
                let c = c.clone();
                async move { c.write(add(1)).await.map_err(|e| e.to_string()) }
            },
        ));
    }
    let addrs = nodes.iter().map(|n| n.node.addr()).collect();
    let pool = Arc::new(
        IrohRaftManagementClient::connect_with_key(crate::support::admin_key(), addrs)
            .await
            .expect("pool"),
    );
    writers.push(spawn_incrementer(
        stop.clone(),
        acked.clone(),
        unknown.clone(),
        move || {
            let pool = pool.clone();
            async move { pool.write(add(1)).await.map_err(|e| e.to_string()) }
        },
    ));
    let admin = client(&nodes[0]).await;
    for change in 0..5u64 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let current = configuration(&admin).await;
        let min = 400 + 50 * change;
        tracing::info!(
            change,
            min,
            "changing the election timeouts: every raft core restarts"
        );
        let changed = ClusterConfig {
            election_timeout_min_ms: min,
            election_timeout_max_ms: min + 400,
            ..current
        };
        crate::support::retry_config(&admin, changed).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        tokio::time::timeout(LONG, writer)
            .await
            .expect("writers stop")
            .expect("writer");
    }
    let (acked, unknown) = (
        acked.load(Ordering::Relaxed),
        unknown.load(Ordering::Relaxed),
    );
    let count = read_total(&admin).await as u64;
    tracing::info!(acked, unknown, count, "increments");
    assert!(acked > 0, "writes went on through the changes");
    assert!(
        count >= acked && count <= acked + unknown,
        "the count ({count}) must equal the acknowledged increments ({acked}), plus at most \
         the {unknown} whose outcome is unknown: none lost, none applied twice"
    );
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}
