//! A tour of the management client SDK against a running cluster: status, health, metrics, the
//! configuration, a snapshot, the log, a leadership hand-over, and the events all of that caused.
//!
//! Start the demo cluster in one terminal, then run the tour against any of its nodes:
//!
//! ```sh
//! cargo run -p iroh-raft -- demo --serve
//! cargo run -p iroh-raft --example management_tour -- <address printed for node 1>
//! ```

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use iroh_raft::{IrohRaftManagementClient, parse_node_address};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("IROH_RAFT_NODE").ok())
        .context(
            "usage: management_tour <endpoint-id@ip:port or ticket> (or set IROH_RAFT_NODE)",
        )?;
    let node = parse_node_address(&address).map_err(anyhow::Error::msg)?;

    // One client for the whole cluster: it learns the members and the leader from the first
    // member it reaches, and sends leader-only operations straight to the leader.
    // It speaks as your key (`iroh-raft whoami`), which `demo --serve` made an Admin.
    let key = iroh_raft::load_user_key(None)?;
    let client = IrohRaftManagementClient::connect_with_key(key, vec![node]).await?;

    // Everything below shows up here as events, in order.
    let mut events = client.subscribe_to_events().await?;

    let status = client.get_cluster_status().await?;
    println!(
        "cluster {} — leader {:?}, term {}, {} members",
        hex::encode(status.cluster_id),
        status.leader,
        status.term,
        status.members.len()
    );
    for member in &status.members {
        println!(
            "  node {}: {} {}, lag {:?}",
            member.node_id,
            member.role,
            member.health.as_str(),
            member.lag
        );
    }

    let health = client.get_health_status().await?;
    println!(
        "health of node {}: healthy = {}",
        health.node_id, health.healthy
    );

    let metrics = client.get_metrics(Vec::new()).await?;
    if let Some(raft) = &metrics.raft {
        println!("applied index {:?}, term {}", raft.applied, raft.term);
    }

    let mut config = client.get_configuration().await?;
    println!("configuration version {}", config.version);
    config.snapshot_every += 1;
    let config = client.update_configuration(config).await?;
    println!(
        "now version {} (snapshot_every = {})",
        config.version, config.snapshot_every
    );

    let snapshot = client.trigger_snapshot().await?;
    println!(
        "snapshot of node {} up to index {}, {} bytes",
        snapshot.node_id, snapshot.index, snapshot.size
    );

    let log = client.get_log_info().await?;
    println!(
        "log: last {:?}, committed {:?}, {} entries",
        log.last, log.committed, log.entries
    );

    let moved = client.step_down().await?;
    println!(
        "leadership moved from node {} to node {} in {:?}",
        moved.previous_leader, moved.new_leader, moved.transfer_duration
    );

    println!("events seen:");
    let mut seen = 0;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(2), events.next()).await {
        println!("  {:?}", event?);
        seen += 1;
    }
    anyhow::ensure!(seen > 0, "no events arrived");
    client.close().await;
    Ok(())
}
