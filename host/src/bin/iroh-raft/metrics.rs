//! `iroh-raft metrics`: one node's figures over `iroh-raft-metrics/0`, as text, JSON or the
//! Prometheus text exposition.

use clap::Args;
use iroh_raft::proto::{LatencyHistogram, MetricsCategory, MetricsSnapshot};
use iroh_raft::{MetricsClient, sha256_hex};

use crate::args::{Output, Target, print_json};
use crate::manage::opt;

#[derive(Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    target: Target,
    /// Only these categories (repeatable): raft, storage, network, plugin, management.
    #[arg(long = "category")]
    categories: Vec<MetricsCategory>,
    /// Print the Prometheus text exposition instead (what `node --metrics-http` serves).
    #[arg(long, conflicts_with = "output")]
    prometheus: bool,
}

/// A client of the target node's metrics protocol.
pub(crate) async fn connect(target: &Target) -> anyhow::Result<MetricsClient> {
    Ok(MetricsClient::connect_with_key(target.secret_key()?, target.node()?).await?)
}

/// `iroh-raft metrics`.
pub(crate) async fn metrics(args: MetricsArgs) -> anyhow::Result<()> {
    let MetricsArgs {
        target,
        categories,
        prometheus,
    } = args;
    let client = connect(&target).await?;
    let metrics = client.get(categories).await;
    client.close().await;
    let metrics = metrics?;
    if prometheus {
        print!("{}", iroh_raft::prometheus_text(&metrics));
        return Ok(());
    }
    if target.output == Output::Json {
        return print_json(&metrics);
    }
    print_text(&metrics);
    Ok(())
}

/// `count, p50/p99 upper bounds and mean` of a histogram, in words.
pub(crate) fn latency(histogram: &LatencyHistogram) -> String {
    let us = |v: Option<u64>| v.map_or("-".into(), format_us);
    format!(
        "{} × p50 ≤{} p99 ≤{} mean {}",
        histogram.count,
        us(histogram.quantile_us(0.5)),
        us(histogram.quantile_us(0.99)),
        us(histogram.mean_us())
    )
}

pub(crate) fn format_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

fn print_text(metrics: &MetricsSnapshot) {
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
        println!(
            "            {} elections, {} leader changes; proposals {} ({} failed)",
            raft.elections,
            raft.leader_changes,
            latency(&raft.proposal_latency),
            raft.proposals_failed
        );
        for follower in &raft.followers {
            println!(
                "  follower  {} matched {} lag {}",
                follower.node_id,
                opt(follower.matched),
                opt(follower.lag)
            );
        }
    }
    if let Some(storage) = &metrics.storage {
        println!(
            "storage     database {} bytes, log {} bytes, snapshot {} bytes (age {}s)",
            storage.database_bytes,
            storage.log_bytes,
            storage.snapshot_bytes,
            opt(storage.snapshot_age_secs)
        );
        println!(
            "            fsyncs {} for {} appends",
            latency(&storage.fsync_latency),
            storage.appends_synced
        );
        for keyspace in &storage.keyspaces {
            println!("  keyspace  {:<24} {} bytes", keyspace.name, keyspace.bytes);
        }
    }
    if let Some(network) = &metrics.network {
        println!(
            "network     {} connections opened, {} closed, {} bytes sent, {} received",
            network.connections_opened,
            network.connections_closed,
            network.bytes_sent,
            network.bytes_received
        );
        for protocol in &network.protocols {
            println!(
                "  {:<22} {} opened, {} open, {} bytes sent, {} received",
                protocol.alpn,
                protocol.connections_opened,
                protocol.connections_open,
                protocol.bytes_sent,
                protocol.bytes_received
            );
        }
        for peer in &network.peers {
            println!(
                "  rpc to {:<3} {} ({} failed)",
                peer.node_id,
                latency(&peer.latency),
                peer.failures
            );
        }
    }
    if let Some(plugin) = &metrics.plugin {
        println!(
            "plugin      {} ({}): {} fuel burned, {} instances, {} entries",
            plugin.state_machine,
            &sha256_hex(&plugin.sha256)[..16],
            plugin.fuel_consumed,
            plugin.instances_created,
            plugin.entries_applied
        );
        println!("            apply calls {}", latency(&plugin.apply_latency));
        for (kind, count) in &plugin.traps {
            println!("  trapped   {count} × {kind}");
        }
        for active in &plugin.active {
            println!(
                "  active    {:<14} {} version {:?} since index {}",
                active.kind.as_str(),
                &sha256_hex(&active.sha256)[..16],
                active.version,
                active.index
            );
        }
    }
    if let Some(management) = &metrics.management {
        println!(
            "management  {} requests, {} errors, {} forwarded, {} subscribers",
            management.requests, management.errors, management.forwarded, management.subscribers
        );
        for (operation, count) in &management.requests_by_operation {
            println!("  asked     {count} × {operation}");
        }
        for (operation, count) in &management.denied {
            println!("  denied    {count} × {operation}");
        }
    }
}
