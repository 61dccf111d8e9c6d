//! Replicas prove agreement: every member's state hash at a common applied index is the same, an
//! index a member holds no view of is a typed error, and a replica changed behind raft's back is
//! found — by the operator's check (the library function `iroh-raft check consistency` calls) and
//! by the node itself at the next check point (`DivergenceDetected`, and its health says so).

use std::path::Path;
use std::time::Duration;

use iroh_raft::proto::{ClusterEvent, RequestError};
use iroh_raft::{ClientError, IrohRaftManagementClient, Node, Start};

use crate::support::{TestNode, client, cluster, config, put, wait_for};

const LIMIT: Duration = Duration::from_secs(240);

async fn manage(node: &TestNode) -> IrohRaftManagementClient {
    IrohRaftManagementClient::connect_with_key(crate::support::admin_key(), vec![node.node.addr()])
        .await
        .expect("management client connects")
}

async fn applied_everywhere(nodes: &[TestNode], index: u64) {
    wait_for(Duration::from_secs(30), "every node to apply", || {
        nodes
            .iter()
            .all(|n| n.node.status().applied.unwrap_or(0) >= index)
    })
    .await;
}

async fn shutdown(nodes: Vec<TestNode>) {
    for node in nodes {
        node.node.shutdown().await.expect("clean shutdown");
    }
}

/// Changes the value of one key of the state machine's keyspace in the (stopped) node's
/// database, the way a bad disk or an operator's mistake would: raft knows nothing of it.
fn corrupt_one_value(node_dir: &Path) -> Vec<u8> {
    let db = fjall::Database::builder(node_dir.join("storage").join("fjall"))
        .open()
        .expect("open the stopped node's database");
    let data = db
        .keyspace("sm.kv.data", fjall::KeyspaceCreateOptions::default)
        .expect("the kv keyspace");
    let key = data
        .iter()
        .next()
        .expect("the keyspace holds a key")
        .key()
        .expect("read a key")
        .to_vec();
    data.insert(&key, b"changed behind raft's back")
        .expect("change the value");
    db.persist(fjall::PersistMode::SyncAll).expect("persist");
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_hashes_alike_and_an_index_not_held_is_a_typed_error() {
    tokio::time::timeout(LIMIT, async {
        let nodes = cluster(3).await;
        let writer = client(&nodes[0]).await;
        let mut last = 0;
        for i in 0..10 {
            let (index, outcome) = writer
                .write(put(&format!("k{i}"), "v"))
                .await
                .expect("write");
            outcome.expect("applied");
            last = index;
        }
        applied_everywhere(&nodes, last).await;

        tracing::info!(last, "comparing the members' hashes");
        let manage = manage(&nodes[1]).await;
        let report = manage.check_consistency().await.expect("check");
        assert!(report.consistent(), "{report:?}");
        let index = report.index.expect("a common index");
        assert!(
            index >= last,
            "the quiet cluster's common point is its last index"
        );
        assert_eq!(report.members.len(), 3);
        let hash = report.members[0].outcome.clone().expect("a hash");
        for member in &report.members {
            assert_eq!(member.outcome, Ok(hash), "node {}", member.node_id);
        }
        for node in &nodes {
            let points = manage
                .capture_points(&node.node.addr())
                .await
                .expect("points");
            assert_eq!(points.node_id, node.node.node_id());
            assert!(points.indexes.contains(&index), "{points:?}");
            let answer = manage
                .state_hash(&node.node.addr(), index)
                .await
                .expect("hash");
            assert_eq!(
                (answer.node_id, answer.index, answer.hash),
                (node.node.node_id(), index, hash)
            );
        }

        tracing::info!("an index no view is kept of is a typed error naming what is held");
        match manage.state_hash(&nodes[2].node.addr(), 2).await {
            Err(ClientError::Request(RequestError::NoStateCapture {
                index: 2,
                held,
                applied,
            })) => {
                assert!(held.contains(&index), "{held:?}");
                assert_eq!(applied, Some(index));
            }
            other => panic!("expected NoStateCapture, got {other:?}"),
        }

        tracing::info!("an index the node reaches within the wait is answered once reached");
        let next = index + 1;
        let target = nodes[2].node.addr();
        let waiting = manage.state_hash(&target, next);
        let write = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            writer.write(put("later", "v")).await.expect("write")
        };
        let (waited, (written, _)) = tokio::join!(waiting, write);
        assert_eq!(written, next);
        let waited = waited.expect("the hash once the node got there");
        assert_eq!(waited.index, next);
        assert_ne!(waited.hash, hash, "a new write is a new state");

        manage.close().await;
        shutdown(nodes).await;
    })
    .await
    .expect("the test ends in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_changed_behind_raft_s_back_is_found() {
    tokio::time::timeout(LIMIT, async {
        let mut nodes = cluster(3).await;
        let manage = manage(&nodes[0]).await;
        let mut settings = manage.get_configuration().await.expect("config");
        settings.check_every = 5;
        manage
            .update_configuration(settings)
            .await
            .expect("check every 5 entries");
        let writer = client(&nodes[0]).await;
        let mut last = 0;
        for i in 0..6 {
            last = writer
                .write(put(&format!("k{i}"), "v"))
                .await
                .expect("write")
                .0;
        }
        applied_everywhere(&nodes, last).await;
        let before = manage.check_consistency().await.expect("check");
        assert!(before.consistent(), "{before:?}");
        // A check point inside the writes: every member committed and kept exactly that state,
        // however its entries were grouped into apply calls.
        let check_point = last / 5 * 5;
        let mut at_check_point = Vec::new();
        for node in &nodes {
            let points = manage
                .capture_points(&node.node.addr())
                .await
                .expect("points");
            assert!(points.indexes.contains(&check_point), "{points:?}");
            let hash = manage
                .state_hash(&node.node.addr(), check_point)
                .await
                .expect("hash");
            at_check_point.push(hash.hash);
        }
        assert!(at_check_point.iter().all(|h| *h == at_check_point[0]));

        // A follower, so the cluster keeps its leader while it is down.
        let leader = nodes[0].node.status().leader.expect("a leader");
        let position = nodes
            .iter()
            .position(|n| n.node.node_id() != leader)
            .expect("a follower");
        let stopped = nodes.remove(position);
        let bad_id = stopped.node.node_id();
        let bind = stopped.node.endpoint().bound_sockets()[0];
        tracing::info!(
            bad_id,
            "stopping a follower and changing its data behind raft's back"
        );
        stopped.node.shutdown().await.expect("shutdown");
        let key = corrupt_one_value(stopped.dir.path());
        tracing::info!(key = %String::from_utf8_lossy(&key), "changed");
        let mut restart = config(stopped.dir.path());
        restart.bind = bind;
        let node = Node::start(restart, Start::Restart).await.expect("restart");
        let mut events = node.subscribe();
        nodes.push(TestNode {
            node,
            dir: stopped.dir,
        });
        applied_everywhere(&nodes, last).await;

        tracing::info!("the operator's check names the changed replica");
        let report = manage.check_consistency().await.expect("check");
        assert!(!report.consistent(), "{report:?}");
        let verdict = report.verdict.expect("a verdict");
        let differing: Vec<u64> = verdict.differing.iter().map(|d| d.node_id).collect();
        assert_eq!(differing, vec![bad_id], "{verdict:?}");
        assert_eq!(verdict.agreeing.len(), 2);

        tracing::info!("writes past a check point: the replica finds itself out");
        let mut written = last;
        let divergence = loop {
            written = writer
                .write(put(&format!("after{written}"), "v"))
                .await
                .expect("write")
                .0;
            let found = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    match events.next().await {
                        // One at the check point it restarted at may come first.
                        Some(ClusterEvent::DivergenceDetected {
                            index,
                            local,
                            majority,
                        }) if index > last => {
                            return (index, local, majority);
                        }
                        Some(_) => {}
                        None => panic!("the event bus closed"),
                    }
                }
            })
            .await;
            if let Ok(found) = found {
                break found;
            }
            assert!(
                written < last + 60,
                "no DivergenceDetected after {} writes",
                written - last
            );
        };
        let (index, local, majority) = divergence;
        assert_eq!(index % 5, 0, "found at a check point");
        assert!(index > last);
        assert_ne!(local, majority);

        let bad = nodes.last().expect("the changed node");
        let health = client(bad).await.health_check().await.expect("health");
        assert!(!health.healthy, "{health:?}");
        assert!(
            health
                .problems
                .iter()
                .any(|p| p.contains("state diverged") && p.contains(&index.to_string())),
            "{health:?}"
        );
        tracing::info!("the leader's status names the changed member too");
        let mut named = false;
        for _ in 0..50 {
            let status = manage.get_cluster_status().await.expect("status");
            if status.diverged.iter().any(|d| d.node_id == bad_id) {
                named = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(named, "the cluster status lists node {bad_id} as diverged");

        manage.close().await;
        shutdown(nodes).await;
    })
    .await
    .expect("the test ends in time");
}
