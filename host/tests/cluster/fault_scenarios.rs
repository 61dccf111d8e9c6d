//! Fault scenarios (issue 15), each under the checked workload (`checked_workload.rs`): a 3-node
//! cluster on real loopback iroh endpoints, clients on every node, and a fault injected through
//! the nodes' link faults (`iroh_raft::net::LinkFaults`, inside the raft transport) or through the
//! management protocol while they run. Each ends with the workload's checks: a linearizable
//! history, every acknowledged write present, the counter exact, the replicas and their state
//! hashes agreeing. `IROH_RAFT_SEED=N` replays a run's operation mix, fault timing and message
//! loss draws (which message meets which draw is the machine's timing).

use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{Consistency, PluginKind};
use iroh_raft::{IrohRaftManagementClient, Start, bundled};

use crate::checked_workload::{Rng, Workload, seed};

use crate::support::{TestNode, admin_key, cluster, start, wait_for};
use futures_util::future::BoxFuture;
use openraft::async_runtime::WatchReceiver;

/// A whole scenario, cluster start to last check.
const LIMIT: Duration = Duration::from_secs(180);

fn id(node: &TestNode) -> iroh::EndpointId {
    node.node.endpoint().id()
}

/// The node the others follow.
async fn leader(nodes: &[TestNode]) -> usize {
    let mut found = None;
    wait_for(Duration::from_secs(30), "a leader every node names", || {
        let named = nodes[0].node.status().leader;
        found = named
            .filter(|l| nodes.iter().all(|n| n.node.status().leader == Some(*l)))
            .and_then(|l| nodes.iter().position(|n| n.node.node_id() == l));
        found.is_some()
    })
    .await;
    found.expect("a leader")
}

/// Cuts every link between `nodes[isolated]` and the others, both ways.
fn isolate(nodes: &[TestNode], isolated: usize) {
    for (i, node) in nodes.iter().enumerate() {
        if i != isolated {
            node.node.link_faults().cut(id(&nodes[isolated]));
            nodes[isolated].node.link_faults().cut(id(node));
        }
    }
}

/// Sets a fault on every one-way link between `nodes`, each a fresh `fault()`.
fn on_every_link(nodes: &[TestNode], mut fault: impl FnMut() -> iroh_raft::net::LinkFault) {
    for node in nodes {
        for peer in nodes {
            if node.node.node_id() != peer.node.node_id() {
                node.node.link_faults().set(id(peer), fault());
            }
        }
    }
}

fn heal(nodes: &[TestNode]) {
    for node in nodes {
        node.node.link_faults().heal_all();
    }
}

/// What the link faults of every node injected, summed, as one line.
fn injected(nodes: &[TestNode]) -> String {
    let mut total = iroh_raft::net::InjectedFaults::default();
    for node in nodes {
        let one = node.node.link_faults().injected();
        total.cut += one.cut;
        total.lost += one.lost;
        total.delayed += one.delayed;
        total.held += one.held;
    }
    format!(
        "faults injected: {} messages lost to cuts, {} lost at random, {} delayed, {} held by a pause",
        total.cut, total.lost, total.delayed, total.held
    )
}

/// Six clients, two on each node, for `seconds`: three read at `linearizable` and three at
/// `lease` (one of each on every node), and both must pass the checker under these faults.
async fn everywhere(nodes: &[TestNode], seconds: u64, seed: u64) -> Workload {
    Workload::start(
        &all(nodes),
        6,
        Duration::from_secs(seconds),
        &BOTH_READS,
        seed,
    )
    .await
}

/// The reads checked under every fault but a frozen clock: one client at each, in turn.
const BOTH_READS: [Consistency; 2] = [Consistency::Linearizable, Consistency::Lease];

/// Every node's address, as the workload talks to them.
fn all(nodes: &[TestNode]) -> Vec<iroh::EndpointAddr> {
    nodes.iter().map(|n| n.node.addr()).collect()
}

async fn manage(nodes: &[TestNode]) -> IrohRaftManagementClient {
    IrohRaftManagementClient::connect_with_key(
        admin_key(),
        nodes.iter().map(|n| n.node.addr()).collect(),
    )
    .await
    .expect("management client connects")
}

async fn shutdown(nodes: Vec<TestNode>) {
    for node in nodes {
        node.node.shutdown().await.expect("clean shutdown");
    }
}

/// The leader loses every link for a while, so it is the minority of one while the other two
/// elect a leader and go on; then the links heal. Reads at `consistency`.
async fn leader_in_the_minority(consistency: Consistency, seed: u64) {
    let nodes = cluster(3).await;
    let old = leader(&nodes).await;
    let mut workload = Workload::start(
        &all(&nodes),
        6,
        Duration::from_secs(9),
        &[consistency],
        seed,
    )
    .await;
    // A client of the old leader that only reads: it asks the cut-off leader throughout, never
    // held up behind a write of its own.
    workload
        .add_reader(&nodes[old].node.addr(), consistency)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cut_at = workload.now();
    isolate(&nodes, old);
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    wait_for(
        Duration::from_secs(30),
        "the majority to elect a leader",
        || {
            others.iter().all(|i| {
                let status = nodes[*i].node.status();
                status.leader.is_some() && status.leader != Some(nodes[old].node.node_id())
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    heal(&nodes);
    let outcome = workload.finish().await;
    println!("{}", injected(&nodes));
    assert!(
        outcome.answered_writes_after(cut_at) > 0,
        "no write was answered once the leader was cut off"
    );
    outcome
        .verify(
            &format!("leader in the minority, {consistency} reads"),
            &all(&nodes),
        )
        .await;
    shutdown(nodes).await;
}

async fn linearizable_minority(seed: u64) {
    leader_in_the_minority(Consistency::Linearizable, seed).await
}

async fn lease_minority(seed: u64) {
    leader_in_the_minority(Consistency::Lease, seed).await
}

async fn a_flapping_link_between_the_leader_and_a_follower(seed: u64) {
    let mut rng = Rng(seed ^ 0xf1a9 | 1);
    let nodes = cluster(3).await;
    let workload = everywhere(&nodes, 8, seed).await;
    let mut flaps = 0;
    while workload.now() < Duration::from_secs(7).as_nanos() as u64 {
        // The link of whoever leads now, to a follower: both ways, down then up.
        let led = nodes
            .iter()
            .position(|n| n.node.status().leader == Some(n.node.node_id()))
            .unwrap_or(0);
        let other = (led + 1 + (rng.next() % 2) as usize) % 3;
        nodes[led].node.link_faults().cut(id(&nodes[other]));
        nodes[other].node.link_faults().cut(id(&nodes[led]));
        tokio::time::sleep(Duration::from_millis(rng.between(100, 700))).await;
        heal(&nodes);
        tokio::time::sleep(Duration::from_millis(rng.between(100, 700))).await;
        flaps += 1;
    }
    let outcome = workload.finish().await;
    println!("{flaps} flaps; {}", injected(&nodes));
    outcome.verify("a flapping link", &all(&nodes)).await;
    shutdown(nodes).await;
}

async fn twenty_percent_message_loss_on_every_link_for_ten_seconds(seed: u64) {
    let nodes = cluster(3).await;
    let workload = everywhere(&nodes, 12, seed).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lossy_from = workload.now();
    on_every_link(&nodes, || iroh_raft::net::LinkFault {
        loss: 0.2,
        ..Default::default()
    });
    tokio::time::sleep(Duration::from_secs(10)).await;
    let lossy_until = workload.now();
    heal(&nodes);
    let outcome = workload.finish().await;
    println!("{}", injected(&nodes));
    let during = outcome
        .history
        .iter()
        .filter(|op| op.invoked > lossy_from && op.completed < lossy_until)
        .filter(|op| op.output != crate::linearizability::Output::Unknown)
        .count();
    println!("{during} register operations answered while 20% of messages were lost");
    assert!(during > 0, "nothing was answered under 20% message loss");
    outcome.verify("20% message loss", &all(&nodes)).await;
    shutdown(nodes).await;
}

/// Every link slowed by its own delay (20 to 150 ms each way, drawn from the seed) for ten seconds:
/// heartbeats arrive late and out of step, some elections time out, and replies overtake
/// requests sent on other links.
async fn slow_links_of_unequal_delay_for_ten_seconds(seed: u64) {
    let nodes = cluster(3).await;
    let workload = everywhere(&nodes, 12, seed).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut rng = Rng(seed ^ 0x5eed_de1a);
    on_every_link(&nodes, || iroh_raft::net::LinkFault {
        delay: Duration::from_millis(rng.between(20, 150)),
        ..Default::default()
    });
    let slow_from = workload.now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    heal(&nodes);
    let outcome = workload.finish().await;
    println!("{}", injected(&nodes));
    assert!(
        outcome.answered_writes_after(slow_from) > 0,
        "no write was answered over the slow links"
    );
    outcome.verify("slow links", &all(&nodes)).await;
    shutdown(nodes).await;
}

async fn the_leader_paused_then_resumed(seed: u64) {
    let nodes = cluster(3).await;
    let paused = leader(&nodes).await;
    let mut workload = everywhere(&nodes, 8, seed).await;
    // Clients of the paused leader that only read, at each consistency, throughout the pause.
    for consistency in BOTH_READS {
        workload
            .add_reader(&nodes[paused].node.addr(), consistency)
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let paused_at = workload.now();
    nodes[paused].node.link_faults().pause();
    tokio::time::sleep(Duration::from_secs(3)).await;
    nodes[paused].node.link_faults().resume();
    let outcome = workload.finish().await;
    println!("{}", injected(&nodes));
    assert!(
        outcome.answered_writes_after(paused_at) > 0,
        "no write was answered once the leader was paused"
    );
    outcome.verify("the leader paused", &all(&nodes)).await;
    shutdown(nodes).await;
}

async fn leadership_transferred_during_writes(seed: u64) {
    let nodes = cluster(3).await;
    let manage = manage(&nodes).await;
    let workload = everywhere(&nodes, 8, seed).await;
    let mut transfers = 0;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let led = leader(&nodes).await;
        let target = nodes[(led + 1) % 3].node.node_id();
        match manage.transfer_leadership(Some(target)).await {
            Ok(_) => transfers += 1,
            Err(error) => println!("a transfer to node {target} failed: {error}"),
        }
    }
    let outcome = workload.finish().await;
    println!("{transfers} leadership transfers");
    assert!(transfers > 0, "no leadership transfer succeeded");
    outcome.verify("leadership transfers", &all(&nodes)).await;
    manage.close().await;
    shutdown(nodes).await;
}

async fn a_member_added_and_another_removed_during_writes(seed: u64) {
    let mut nodes = cluster(3).await;
    let manage = manage(&nodes).await;
    let led = leader(&nodes).await;
    // The clients use the leader and one follower; the other follower is removed midway.
    let removed = (led + 1) % 3;
    let targets: Vec<iroh::EndpointAddr> = (0..3)
        .filter(|i| *i != removed)
        .map(|i| nodes[i].node.addr())
        .collect();
    let workload = Workload::start(&targets, 6, Duration::from_secs(9), &BOTH_READS, seed).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let joined = start(Start::Join(nodes[led].node.ticket())).await;
    wait_for(
        Duration::from_secs(60),
        "the new node to be a voter",
        || joined.node.status().voters.len() == 4,
    )
    .await;
    let removed_id = nodes[removed].node.node_id();
    manage
        .remove_member(removed_id)
        .await
        .expect("the follower is removed");
    let outcome = workload.finish().await;
    let gone = nodes.remove(removed);
    nodes.push(joined);
    wait_for(Duration::from_secs(30), "three voters", || {
        nodes.iter().all(|n| n.node.status().voters.len() == 3)
    })
    .await;
    outcome
        .verify("a member added and another removed", &all(&nodes))
        .await;
    manage.close().await;
    gone.node.shutdown().await.expect("the removed node stops");
    shutdown(nodes).await;
}

async fn a_state_machine_deploy_and_a_policy_swap_during_writes(seed: u64) {
    let nodes = cluster(3).await;
    let deployer = crate::support::client(&nodes[0]).await;
    let workload = everywhere(&nodes, 8, seed).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The same kv plugin with different bytes (a custom section added): a real deploy and
    // migrate through the log, with the same behaviour, so the history stays checkable.
    let kv = Bytes::from(crate::support::padding::padded_component(
        bundled::KV,
        bundled::KV.len() + 4096,
        seed,
    ));
    deployer
        .deploy_plugin(
            PluginKind::StateMachine,
            kv,
            "kv-again",
            Bytes::new(),
            &mut |_, _| {},
        )
        .await
        .expect("the state machine deploys");
    tokio::time::sleep(Duration::from_secs(2)).await;
    deployer
        .deploy_plugin(
            PluginKind::Policy,
            Bytes::from_static(bundled::ALLOW_ALL),
            "allow-all",
            Bytes::new(),
            &mut |_, _| {},
        )
        .await
        .expect("the policy deploys");
    let outcome = workload.finish().await;
    outcome
        .verify("a deploy and a policy swap", &all(&nodes))
        .await;
    deployer.close().await;
    shutdown(nodes).await;
}

/// A follower stopped while the others write on and compact their logs past it, then restarted
/// from its data directory: the leader no longer holds the entries it lacks, so it catches up by
/// installing a snapshot, under writes.
async fn a_follower_restarted_behind_the_log_catches_up_from_a_snapshot(seed: u64) {
    let mut nodes = crate::support::cluster_with(3, |config| {
        config.snapshot_every = 200;
        config.keep_after_snapshot = 10;
    })
    .await;
    let led = leader(&nodes).await;
    let behind = (led + 1) % 3;
    let stopped = nodes.remove(behind);
    let stopped_at = stopped.node.status().applied.unwrap_or(0);
    let bind = stopped.node.endpoint().bound_sockets()[0];
    stopped.node.shutdown().await.expect("the follower stops");
    let workload = everywhere(&nodes, 9, seed).await;
    let leader_node = nodes
        .iter()
        .position(|n| n.node.status().leader == Some(n.node.node_id()))
        .unwrap_or(0);
    wait_for(
        Duration::from_secs(60),
        "the leader to purge its log past the stopped follower",
        || {
            let metrics = nodes[leader_node]
                .node
                .raft()
                .metrics()
                .borrow_watched()
                .clone();
            metrics.purged.is_some_and(|p| p.index > stopped_at + 1)
        },
    )
    .await;
    let mut restart = crate::support::config(stopped.dir.path());
    restart.bind = bind;
    restart.snapshot_every = 200;
    restart.keep_after_snapshot = 10;
    let node = iroh_raft::Node::start(restart, Start::Restart)
        .await
        .expect("the follower restarts");
    nodes.push(TestNode {
        node,
        dir: stopped.dir,
    });
    let outcome = workload.finish().await;
    let restarted = nodes.last().expect("the restarted node");
    let snapshot = restarted.node.raft().metrics().borrow_watched().snapshot;
    assert!(
        snapshot.is_some_and(|s| s.index > stopped_at),
        "the restarted follower holds no snapshot past where it stopped ({stopped_at}): {snapshot:?}"
    );
    outcome
        .verify("a follower restarted behind the log", &all(&nodes))
        .await;
    shutdown(nodes).await;
}

type Scenario = fn(u64) -> BoxFuture<'static, ()>;

/// Every scenario, by name: what CI runs once each and a soak cycles through.
const SCENARIOS: [(&str, Scenario); 10] = [
    ("leader in the minority, linearizable reads", |s| {
        Box::pin(linearizable_minority(s))
    }),
    ("leader in the minority, lease reads", |s| {
        Box::pin(lease_minority(s))
    }),
    ("a flapping link", |s| {
        Box::pin(a_flapping_link_between_the_leader_and_a_follower(s))
    }),
    ("20% message loss", |s| {
        Box::pin(twenty_percent_message_loss_on_every_link_for_ten_seconds(s))
    }),
    ("the leader paused", |s| {
        Box::pin(the_leader_paused_then_resumed(s))
    }),
    ("leadership transfers", |s| {
        Box::pin(leadership_transferred_during_writes(s))
    }),
    ("a member added and another removed", |s| {
        Box::pin(a_member_added_and_another_removed_during_writes(s))
    }),
    ("a deploy and a policy swap", |s| {
        Box::pin(a_state_machine_deploy_and_a_policy_swap_during_writes(s))
    }),
    ("a follower restarted behind the log", |s| {
        Box::pin(a_follower_restarted_behind_the_log_catches_up_from_a_snapshot(s))
    }),
    ("slow links", |s| {
        Box::pin(slow_links_of_unequal_delay_for_ten_seconds(s))
    }),
];

/// Runs scenario `number` once, bounded in time, with the run's seed.
async fn once(number: usize) {
    let (name, scenario) = SCENARIOS[number];
    println!("scenario: {name}");
    tokio::time::timeout(LIMIT, scenario(seed()))
        .await
        .unwrap_or_else(|_| panic!("scenario {name} timed out"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linearizable_reads_under_a_leader_partitioned_into_the_minority() {
    once(0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_under_a_leader_partitioned_into_the_minority() {
    once(1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_over_a_flapping_link() {
    once(2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_under_twenty_percent_message_loss() {
    once(3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_while_the_leader_is_paused() {
    once(4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_through_leadership_transfers() {
    once(5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_while_members_are_added_and_removed() {
    once(6).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_through_a_deploy_and_a_policy_swap() {
    once(7).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_while_a_follower_catches_up_from_a_snapshot() {
    once(8).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_over_slow_links_of_unequal_delay() {
    once(9).await
}

/// The soak: `IROH_RAFT_SOAK=MINUTES cargo test -p iroh-raft --test cluster soak -- --ignored
/// --nocapture` cycles through every scenario with a new seed each run (from `IROH_RAFT_SEED`
/// when set) until the minutes are up, and prints each run's seed and figures. A failure names
/// its scenario and seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak runs for IROH_RAFT_SOAK minutes; run it with --ignored"]
async fn soak() {
    let minutes: u64 = std::env::var("IROH_RAFT_SOAK")
        .ok()
        .and_then(|m| m.parse().ok())
        .expect("set IROH_RAFT_SOAK to the minutes the soak runs");
    let until = std::time::Instant::now() + Duration::from_secs(minutes * 60);
    let mut seeds = Rng(seed());
    let mut runs = 0;
    while std::time::Instant::now() < until {
        let (name, scenario) = SCENARIOS[runs % SCENARIOS.len()];
        let seed = seeds.next() | 1;
        println!("soak run {runs}: {name}, IROH_RAFT_SEED={seed}");
        tokio::time::timeout(LIMIT, scenario(seed))
            .await
            .unwrap_or_else(|_| panic!("{name} timed out (IROH_RAFT_SEED={seed})"));
        runs += 1;
    }
    println!("soak: {runs} runs in {minutes} minutes, every history linearizable");
}
