//! `iroh-raft status|health|metrics` (and `member list`): what the cluster and a node report about
//! themselves.

use clap::Args;
use iroh_raft::proto::{ClusterStatus, MetricsCategory};
use iroh_raft::sha256_hex;

use super::{connect, opt};
use crate::args::{Output, Target, print_json};

#[derive(Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    target: Target,
    /// Only these categories (repeatable): raft, storage, network, plugin, management.
    #[arg(long = "category")]
    categories: Vec<MetricsCategory>,
}

fn status_json(status: &ClusterStatus) -> serde_json::Value {
    serde_json::json!({
        "cluster_id": hex::encode(status.cluster_id),
        "answered_by": status.node_id,
        "leader": status.leader,
        "term": status.term,
        "raft_state": status.raft_state.as_str(),
        "last_log": status.last_log,
        "committed": status.committed,
        "applied": status.applied,
        "healthy": status.healthy,
        "config_version": status.config_version,
        "members": status.members.iter().map(|m| serde_json::json!({
            "node_id": m.node_id,
            "endpoint_id": hex::encode(m.member.endpoint_key),
            "addrs": m.member.addrs,
            "role": m.role.as_str(),
            "health": m.health.as_str(),
            "matched": m.matched,
            "lag": m.lag,
            "last_ack_ms": m.last_ack_ms,
        })).collect::<Vec<_>>(),
        "diverged": status.diverged.iter().map(|d| serde_json::json!({
            "node_id": d.node_id,
            "index": d.index,
            "hash": sha256_hex(&d.hash),
            "majority": sha256_hex(&d.majority),
        })).collect::<Vec<_>>(),
    })
}

/// `iroh-raft status` and `member list`.
pub(crate) async fn status(target: Target) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let status = client.get_cluster_status().await;
    client.close().await;
    let status = status?;
    if target.output == Output::Json {
        return print_json(&status_json(&status));
    }
    println!("cluster  {}", hex::encode(status.cluster_id));
    println!(
        "leader   {}  (term {}, {})",
        status
            .leader
            .map_or("none (election under way)".into(), |l| l.to_string()),
        status.term,
        if status.healthy {
            "a quorum answers"
        } else {
            "NO QUORUM answers"
        }
    );
    println!(
        "log      last {}  committed {}  applied {}  config v{}",
        opt(status.last_log),
        opt(status.committed),
        opt(status.applied),
        status.config_version
    );
    println!(
        "{:<6} {:<9} {:<12} {:>8} {:>6}  address",
        "node", "role", "health", "matched", "lag"
    );
    for m in &status.members {
        println!(
            "{:<6} {:<9} {:<12} {:>8} {:>6}  {}",
            m.node_id,
            m.role.as_str(),
            m.health.as_str(),
            opt(m.matched),
            opt(m.lag),
            m.member
        );
    }
    for d in &status.diverged {
        println!(
            "DIVERGED node {} at index {}: state hash {} but the majority's is {} \
             (`iroh-raft check consistency` compares every member now)",
            d.node_id,
            d.index,
            &sha256_hex(&d.hash)[..16],
            &sha256_hex(&d.majority)[..16]
        );
    }
    Ok(())
}

/// `iroh-raft health`.
pub(crate) async fn health(target: Target) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let health = client.get_health_status().await;
    client.close().await;
    let health = health?;
    if target.output == Output::Json {
        print_json(&health)?;
    } else {
        println!(
            "node {} is {} ({}, leader {}, term {}, applied {}, up {:.0?})",
            health.node_id,
            if health.healthy {
                "healthy"
            } else {
                "UNHEALTHY"
            },
            health.raft_state.as_str(),
            opt(health.leader),
            health.term,
            opt(health.applied),
            health.uptime
        );
        for problem in &health.problems {
            println!("  problem: {problem}");
        }
    }
    anyhow::ensure!(health.healthy, "the node reports problems");
    Ok(())
}

/// `iroh-raft metrics`.
pub(crate) async fn metrics(args: MetricsArgs) -> anyhow::Result<()> {
    let MetricsArgs { target, categories } = args;
    let client = connect(&target).await?;
    let metrics = client.get_metrics(categories).await;
    client.close().await;
    let metrics = metrics?;
    if target.output == Output::Json {
        return print_json(&metrics);
    }
    if let Some(raft) = &metrics.raft {
        println!(
            "raft        {} term {} leader {} last {} committed {} applied {} snapshot {} purged {} max-lag {}",
            raft.state.as_str(),
            raft.term,
            opt(raft.leader),
            opt(raft.last_log),
            opt(raft.committed),
            opt(raft.applied),
            opt(raft.snapshot),
            opt(raft.purged),
            opt(raft.max_replication_lag)
        );
    }
    if let Some(storage) = &metrics.storage {
        println!(
            "storage     database {} bytes, snapshot {} bytes",
            storage.database_bytes, storage.snapshot_bytes
        );
    }
    if let Some(network) = &metrics.network {
        println!(
            "network     {} connections opened, {} closed, {} bytes sent, {} received",
            network.connections_opened,
            network.connections_closed,
            network.bytes_sent,
            network.bytes_received
        );
    }
    if let Some(plugin) = &metrics.plugin {
        println!(
            "plugin      {} ({}): {} fuel burned, {} instances",
            plugin.state_machine,
            &sha256_hex(&plugin.sha256)[..16],
            plugin.fuel_consumed,
            plugin.instances_created
        );
    }
    if let Some(management) = &metrics.management {
        println!(
            "management  {} requests, {} errors, {} forwarded, {} subscribers",
            management.requests, management.errors, management.forwarded, management.subscribers
        );
        for (operation, count) in &management.denied {
            println!("  denied    {count} × {operation}");
        }
    }
    Ok(())
}
