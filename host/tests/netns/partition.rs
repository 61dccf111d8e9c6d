//! A leader cut off from its followers with a write in its log that it cannot commit: the
//! majority elects a new leader and writes over that index, and when the partition heals the old
//! leader's entry is truncated and openraft answers its client `LogEntryDiscarded` (issue 10,
//! "a forced `LogEntryDiscarded`"). The node reports that as "no leader", the client sends the
//! same tagged write again, and the cluster applies it exactly once.
//!
//! Each node runs in a network namespace of its own (`netns.rs`), so the partition is real: the
//! test still reaches every node through the bridge.

use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh_raft::proto::{Consistency, PluginKind};
use iroh_raft::{Client, bundled};

use crate::netns::Network;
use crate::support::{NodeProcess, admin_key, eventually, spawn_with};

const LIMIT: Duration = Duration::from_secs(180);
const PORT: u16 = 7000;

fn add_one() -> Bytes {
    Bytes::from(postcard::to_allocvec(&1i64).expect("encode"))
}

async fn total(client: &Client) -> i64 {
    let answer = client
        .read(Bytes::new(), Consistency::Linearizable)
        .await
        .expect("read")
        .expect("query ok");
    postcard::from_bytes::<i64>(&answer).expect("a total")
}

/// Three node processes, node `n` in host `n`; every node logs raft core decisions to `logs/n`.
fn start(network: &Network, root: &std::path::Path) -> Vec<NodeProcess> {
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let spawn = |host: usize, args: &[String]| {
        let mut command = network.command(host, env!("CARGO_BIN_EXE_iroh-raft"));
        command.env("RUST_LOG", "warn,openraft::core::raft_core=debug");
        let log = std::fs::File::create(logs.join(host.to_string())).expect("log file");
        spawn_with(
            command,
            &root.join(format!("n{host}")),
            network.bind(host, PORT),
            args,
            Stdio::from(log),
        )
    };
    let first = spawn(1, &["--init".to_string()]);
    let ticket = first.ticket.clone().expect("ticket");
    let mut nodes = vec![first];
    for host in 2..=3 {
        nodes.push(spawn(host, &["--join".to_string(), ticket.clone()]));
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_discarded_by_a_partitioned_leader_is_retried_and_applied_once() {
    let Some(network) = Network::new(3) else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    let nodes = start(&network, root.path());
    tokio::time::timeout(LIMIT, async {
        let clients = {
            let mut clients = Vec::new();
            for node in &nodes {
                clients.push(
                    Client::connect_with_key(admin_key(), node.addr.clone())
                        .await
                        .expect("the test reaches every namespace"),
                );
            }
            clients
        };
        eventually(Duration::from_secs(90), "three voters", || async {
            clients[0]
                .status()
                .await
                .map(|s| s.voters.len() == 3)
                .unwrap_or(false)
        })
        .await;
        clients[0]
            .deploy_plugin(
                PluginKind::StateMachine,
                Bytes::from_static(bundled::COUNTER),
                "counter-1",
                Bytes::new(),
                &mut |_, _| {},
            )
            .await
            .expect("the counter deploys");
        let (_, first) = clients[0].write(add_one()).await.expect("write");
        first.expect("increment");

        let status = clients[0].status().await.expect("status");
        let old_leader_id = status.leader.expect("a leader");
        let old = nodes
            .iter()
            .position(|n| {
                status
                    .voters
                    .iter()
                    .any(|(id, m)| *id == old_leader_id && m.endpoint_key == *n.addr.id.as_bytes())
            })
            .expect("the leader is one of ours");
        let other = (old + 1) % 3;
        tracing::info!(old_leader_id, "isolating the leader");
        network.isolate(old + 1);

        // The isolated leader takes a write it can never commit.
        let stranded = {
            let client = Client::connect_with_key(admin_key(), nodes[old].addr.clone())
                .await
                .expect("connect to the isolated leader");
            tokio::spawn(async move {
                let outcome = client.write(add_one()).await;
                (client, outcome)
            })
        };
        // The majority elects a leader of its own and commits over the stranded entry's index.
        let mut acked = 2i64; // the first increment, and the stranded one once it lands
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut majority_writes = 0;
        while majority_writes < 3 {
            assert!(Instant::now() < deadline, "the majority never took writes");
            match clients[other].write(add_one()).await {
                Ok((_, outcome)) => {
                    outcome.expect("increment");
                    majority_writes += 1;
                    acked += 1;
                }
                Err(error) => {
                    tracing::debug!("the majority is not ready yet: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let new_leader = clients[other].status().await.expect("status").leader;
        assert!(
            new_leader.is_some() && new_leader != Some(old_leader_id),
            "the majority should have its own leader, has {new_leader:?}"
        );
        assert!(
            !stranded.is_finished(),
            "the isolated leader answered a write it could not commit"
        );
        tracing::info!(?new_leader, "healing the partition");
        network.heal(old + 1);
        let (_client, outcome) = tokio::time::timeout(Duration::from_secs(90), stranded)
            .await
            .expect("the stranded write is answered after the heal")
            .expect("writer task");
        let (index, result) = outcome.expect("the stranded write lands, sent again");
        result.expect("increment");
        tracing::info!(index, "the stranded write applied");

        for client in &clients {
            eventually(
                Duration::from_secs(30),
                "every node to count alike",
                || async { total(client).await == acked },
            )
            .await;
        }
        let log = std::fs::read_to_string(root.path().join("logs").join((old + 1).to_string()))
            .expect("the old leader's log");
        assert!(
            log.contains("LogEntryDiscarded"),
            "the old leader never discarded the stranded entry; its raft core logged:\n{}",
            log.lines()
                .filter(|l| l.contains("truncat") || l.contains("Discarded"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    })
    .await
    .expect("the test finished in time");
    drop(nodes);
    drop(network);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_a_node_bound_to_0_0_0_0_advertised_an_address_no_peer_could_dial() {
    let Some(network) = Network::new(2) else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    let any: std::net::SocketAddr = "0.0.0.0:7000".parse().expect("addr");
    let node = |host: usize, args: &[String]| {
        let mut command = network.command(host, env!("CARGO_BIN_EXE_iroh-raft"));
        command.env("RUST_LOG", "error");
        spawn_with(
            command,
            &root.path().join(format!("n{host}")),
            any,
            args,
            Stdio::inherit(),
        )
    };
    let first = node(1, &["--init".to_string()]);
    let ticket = first.ticket.clone().expect("ticket");
    let dialable = |addr: &iroh::EndpointAddr| {
        let ips: Vec<std::net::IpAddr> = addr.ip_addrs().map(|s| s.ip()).collect();
        (
            ips.iter().all(|ip| !ip.is_unspecified()),
            ips.contains(&network.bind(1, PORT).ip()) || ips.contains(&network.bind(2, PORT).ip()),
        )
    };
    assert_eq!(dialable(&first.addr), (true, true), "{:?}", first.addr);
    // The second node, in another namespace, joins at the advertised addresses.
    let second = node(2, &["--join".to_string(), ticket]);
    assert_eq!(dialable(&second.addr), (true, true), "{:?}", second.addr);
    tokio::time::timeout(LIMIT, async {
        let client = Client::connect_with_key(admin_key(), first.addr.clone())
            .await
            .expect("the test reaches the advertised address");
        eventually(Duration::from_secs(60), "two voters", || async {
            client.status().await.is_ok_and(|s| s.voters.len() == 2)
        })
        .await;
        let status = client.status().await.expect("status");
        for (id, member) in &status.voters {
            assert!(
                member.addrs.iter().all(|a| !a.ip().is_unspecified()),
                "member {id} is recorded at {member}"
            );
        }
    })
    .await
    .expect("the test finished in time");
    drop((first, second));
    drop(network);
}
