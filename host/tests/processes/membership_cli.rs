//! Membership and health that tell the truth (issue 12), each defect a regression test over real
//! node processes and the real CLI.

use std::time::{Duration, Instant};

use iroh_raft::format_node_address;
use iroh_raft::proto::ClusterEvent;

use crate::support::{admin_key, cli, cluster, eventually, leader_of, standby};

const LIMIT: Duration = Duration::from_secs(240);

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn member_count(node: &str) -> usize {
    let output = cli(node, &["member", "list", "-o", "json"]);
    assert!(output.status.success(), "{}", text(&output));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    list["members"].as_array().expect("members").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_member_add_took_a_wrong_id_and_hung_on_a_stopped_node() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let nodes = cluster(root.path(), &[]).await;
        let leader = format_node_address(&nodes[0].addr);
        let ticket = nodes[0].ticket.clone().expect("ticket");

        // The standby waits as 5; adding it as 6 made a "voter" whose own core had stopped.
        let five = standby(root.path(), &ticket, 5);
        let five_address = format_node_address(&five.addr);
        let wrong = cli(&leader, &["member", "add", "6", &five_address]);
        assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
        assert!(
            text(&wrong).contains("waits to be added as node 5, not 6"),
            "{}",
            text(&wrong)
        );
        assert_eq!(member_count(&leader), 3, "the refused add changed nothing");
        let right = cli(&leader, &["member", "add", "5", &five_address]);
        assert!(right.status.success(), "{}", text(&right));
        assert_eq!(member_count(&leader), 4);

        // A stopped node: the add hung 120 s and left an unreachable learner behind.
        let mut seven = standby(root.path(), &ticket, 7);
        let seven_address = format_node_address(&seven.addr);
        seven.kill();
        let started = Instant::now();
        let stopped = cli(&leader, &["member", "add", "7", &seven_address]);
        let took = started.elapsed();
        assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
        assert!(
            text(&stopped).contains("did not answer"),
            "{}",
            text(&stopped)
        );
        assert!(
            took < Duration::from_secs(10),
            "refusing an add of a stopped node took {took:?}"
        );
        assert_eq!(member_count(&leader), 4, "the stopped node was not added");
        drop(five);
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_a_removed_node_kept_serving_and_said_it_was_healthy() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        let leader = leader_of(&nodes, 0).await;
        let victim = (leader + 1) % 3;
        let leader_address = format_node_address(&nodes[leader].addr);
        let victim_address = format_node_address(&nodes[victim].addr);
        let victim_id = {
            let status = cli(&victim_address, &["health", "-o", "json"]);
            let health: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
            health["node_id"].as_u64().expect("node id")
        };
        let removed = cli(
            &leader_address,
            &["member", "remove", &victim_id.to_string()],
        );
        assert!(removed.status.success(), "{}", text(&removed));

        let says_removed = |address: &str| {
            let health = cli(address, &["health"]);
            let put = cli(address, &["kv", "put", "after-removal", "x"]);
            (health, put)
        };
        eventually(
            Duration::from_secs(20),
            "the removed node to notice",
            || {
                let address = victim_address.clone();
                async move {
                    let health = cli(&address, &["health"]);
                    health.status.code() == Some(1) && text(&health).contains("removed")
                }
            },
        )
        .await;
        let (health, put) = says_removed(&victim_address);
        assert!(
            text(&health).contains("was removed from the cluster"),
            "{}",
            text(&health)
        );
        assert_eq!(put.status.code(), Some(1), "{}", text(&put));
        assert!(text(&put).contains("was removed"), "{}", text(&put));

        tracing::info!("restarted from its data directory, it says the same");
        nodes[victim].kill();
        let again = nodes[victim].restart();
        let again_address = format_node_address(&again.addr);
        let (health, put) = says_removed(&again_address);
        assert_eq!(health.status.code(), Some(1), "{}", text(&health));
        assert!(
            text(&health).contains("was removed from the cluster"),
            "{}",
            text(&health)
        );
        assert!(text(&put).contains("was removed"), "{}", text(&put));
        // The others serve on.
        let ok = cli(&leader_address, &["kv", "put", "still", "serving"]);
        assert!(ok.status.success(), "{}", text(&ok));
        drop(again);
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_status_and_health_said_all_is_well_with_a_voter_down() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        let leader = leader_of(&nodes, 0).await;
        let down = (leader + 1) % 3;
        let leader_address = format_node_address(&nodes[leader].addr);
        assert!(cli(&leader_address, &["status"]).status.success());
        assert!(
            cli(&leader_address, &["health", "--cluster"])
                .status
                .success()
        );

        let watcher = iroh_raft::Client::connect_with_key(admin_key(), nodes[leader].addr.clone())
            .await
            .expect("connect");
        let mut events = watcher.subscribe().await.expect("subscribe");
        let mut _again = None;
        let down_id = {
            let status = watcher.status().await.expect("status");
            status
                .voters
                .iter()
                .find(|(_, m)| m.endpoint_key == *nodes[down].addr.id.as_bytes())
                .expect("a voter")
                .0
        };
        nodes[down].kill();
        let killed = Instant::now();
        match health_change(&mut events, down_id, Duration::from_secs(10)).await {
            Some(healthy) => {
                assert!(!healthy, "the killed voter is unhealthy");
                // Two election timeouts (1 s each by default), and some slack for a loaded
                // machine.
                assert!(
                    killed.elapsed() < Duration::from_secs(5),
                    "{:?}",
                    killed.elapsed()
                );
            }
            None => {
                let (client, resubscribed) = resubscribe(&nodes[leader].addr).await;
                (_again, events) = (Some(client), resubscribed);
            }
        }

        let status = cli(&leader_address, &["status"]);
        assert_eq!(status.status.code(), Some(1), "{}", text(&status));
        assert!(
            text(&status).contains(&format!("voter {down_id} does not answer")),
            "{}",
            text(&status)
        );
        assert!(
            text(&status).contains("quorum at risk"),
            "{}",
            text(&status)
        );
        let health = cli(&leader_address, &["health", "--cluster"]);
        assert_eq!(health.status.code(), Some(1), "{}", text(&health));
        assert!(
            text(&health).contains(&format!("node {down_id} cannot be asked")),
            "{}",
            text(&health)
        );
        let leader_alone = cli(&leader_address, &["health"]);
        assert_eq!(
            leader_alone.status.code(),
            Some(1),
            "{}",
            text(&leader_alone)
        );

        tracing::info!("back again: healthy, and the event says so");
        let back = nodes[down].restart();
        if let Some(healthy) = health_change(&mut events, down_id, Duration::from_secs(30)).await {
            assert!(healthy, "the restarted voter is healthy again");
        }
        eventually(Duration::from_secs(20), "status to exit 0 again", || {
            let address = leader_address.clone();
            async move { cli(&address, &["status"]).status.success() }
        })
        .await;
        drop(back);
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_status_just_after_a_leader_kill_said_the_quorum_may_be_lost() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        let leader = leader_of(&nodes, 0).await;
        let follower = (leader + 1) % 3;
        let follower_address = format_node_address(&nodes[follower].addr);
        // The follower forwards to the leader once, so it holds a connection to it.
        let before = cli(&follower_address, &["status", "-o", "json"]);
        assert!(before.status.success(), "{}", text(&before));
        let old: serde_json::Value = serde_json::from_slice(&before.stdout).expect("json");
        let old_leader = old["leader"].as_u64().expect("a leader");

        nodes[leader].kill();
        let started = Instant::now();
        let after = cli(&follower_address, &["status", "-o", "json"]);
        let took = started.elapsed();
        assert!(
            !text(&after).contains("no answer within"),
            "status waited on the dead leader: {}",
            text(&after)
        );
        let new: serde_json::Value = serde_json::from_slice(&after.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&after)));
        assert!(
            new["leader"].as_u64().is_some_and(|l| l != old_leader),
            "status names the new leader: {new}"
        );
        assert!(took < Duration::from_secs(9), "status took {took:?}");
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_serves_only_once_it_has_caught_up_with_the_cluster() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        for node in nodes.iter_mut() {
            node.kill();
        }
        // Alone, it cannot hear from a leader: it answers health, and refuses even a stale read
        // rather than serve by what it last applied.
        let alone = nodes[0].restart();
        let address = format_node_address(&alone.addr);
        let health = cli(&address, &["health"]);
        assert_eq!(health.status.code(), Some(1), "{}", text(&health));
        assert!(
            text(&health).contains("it serves only status and health"),
            "{}",
            text(&health)
        );
        let client = iroh_raft::Client::connect_with_key(admin_key(), alone.addr.clone())
            .await
            .expect("connect");
        let refused = client
            .read(
                crate::support::get_query("k"),
                iroh_raft::proto::Consistency::Stale,
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(iroh_raft::ClientError::Request(
                    iroh_raft::proto::RequestError::CatchingUp { .. }
                ))
            ),
            "{refused:?}"
        );
        // With a second member back there is a leader; once caught up it serves.
        let second = nodes[1].restart();
        eventually(
            Duration::from_secs(30),
            "the restarted node to serve",
            || async {
                client
                    .read(
                        crate::support::get_query("k"),
                        iroh_raft::proto::Consistency::Stale,
                    )
                    .await
                    .is_ok()
            },
        )
        .await;
        drop((alone, second));
    })
    .await
    .expect("the test finished in time");
}

/// The next health change of `node_id` that `events` carries, or `None` if the subscription's
/// connection was lost first. That happened once in CI on a loaded machine ("connection lost");
/// an event sent while nobody listened is gone, so the caller resubscribes and the status checks
/// that follow every event check still judge the cluster.
async fn health_change(
    events: &mut iroh_raft::EventStream,
    node_id: u64,
    within: Duration,
) -> Option<bool> {
    tokio::time::timeout(within, async {
        loop {
            match events.next().await {
                Ok(None) => panic!("the leader ended the subscription"),
                Ok(Some(ClusterEvent::MemberHealthChanged {
                    node_id: changed,
                    healthy,
                })) if changed == node_id => return Some(healthy),
                Ok(Some(_)) => {}
                Err(error) => {
                    tracing::warn!(%error, "the event subscription broke; subscribing again");
                    return None;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no MemberHealthChanged event for node {node_id} in {within:?}"))
}

/// A new client and subscription on `node`; the client must outlive the events.
async fn resubscribe(node: &iroh::EndpointAddr) -> (iroh_raft::Client, iroh_raft::EventStream) {
    let client = iroh_raft::Client::connect_with_key(admin_key(), node.clone())
        .await
        .expect("connect again");
    let events = client.subscribe().await.expect("subscribe again");
    (client, events)
}
