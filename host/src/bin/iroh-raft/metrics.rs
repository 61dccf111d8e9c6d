//! `iroh-raft metrics`: one node's figures over `iroh-raft-metrics/0`, as text, JSON or the
//! Prometheus text exposition.

use clap::Args;
use iroh_raft::proto::{LatencyHistogram, MetricsCategory, MetricsSnapshot};
use iroh_raft::{MetricsClient, sha256_hex};
use serde_json::{Value, json};

use crate::args::{Output, Target, print_json};
use crate::manage::opt;

#[derive(Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    target: Target,
    /// Only these categories (repeatable): raft, storage, network, plugin, management, process.
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
        return print_json(&metrics_json(&metrics));
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
    if let Some(process) = &metrics.process {
        println!(
            "process     cpu {} user + {} system; peak resident {} MiB",
            format_us(process.cpu_user_us),
            format_us(process.cpu_system_us),
            process.max_resident_bytes >> 20
        );
    }
}

/// A histogram as JSON: the count, the sum, p50/p99 upper bounds and the mean (null when empty),
/// and the buckets as `[upper bound, count]` pairs (the last bound is null: no upper bound).
fn histogram_json(histogram: &LatencyHistogram) -> Value {
    let bounds = histogram.bounds_us.iter().map(|&b| Some(b)).chain([None]);
    json!({
        "count": histogram.count,
        "sum_us": histogram.sum_us,
        "p50_us": histogram.quantile_us(0.5),
        "p99_us": histogram.quantile_us(0.99),
        "mean_us": histogram.mean_us(),
        "buckets": bounds.zip(&histogram.counts).map(|(bound, count)| json!([bound, count])).collect::<Vec<_>>(),
    })
}

/// `(name, count)` pairs as one object.
fn counts_json(counts: &[(String, u64)]) -> Value {
    Value::Object(
        counts
            .iter()
            .map(|(name, count)| (name.clone(), (*count).into()))
            .collect(),
    )
}

/// `iroh-raft metrics -o json` (`docs/cli-json.md`): a category not asked for is null.
fn metrics_json(metrics: &MetricsSnapshot) -> Value {
    json!({
        "node_id": metrics.node_id,
        "raft": metrics.raft.as_ref().map(|raft| json!({
            "state": raft.state.as_str(),
            "term": raft.term,
            "leader": raft.leader,
            "last_log": raft.last_log,
            "committed": raft.committed,
            "applied": raft.applied,
            "snapshot": raft.snapshot,
            "purged": raft.purged,
            "ms_since_quorum_ack": raft.millis_since_quorum_ack,
            "max_replication_lag": raft.max_replication_lag,
            "followers": raft.followers.iter().map(|f| json!({
                "node_id": f.node_id, "matched": f.matched, "lag": f.lag,
            })).collect::<Vec<_>>(),
            "elections": raft.elections,
            "leader_changes": raft.leader_changes,
            "proposal_latency": histogram_json(&raft.proposal_latency),
            "proposals_failed": raft.proposals_failed,
        })),
        "storage": metrics.storage.as_ref().map(|storage| json!({
            "database_bytes": storage.database_bytes,
            "log_bytes": storage.log_bytes,
            "keyspaces": Value::Object(storage.keyspaces.iter()
                .map(|k| (k.name.clone(), k.bytes.into())).collect()),
            "snapshot_bytes": storage.snapshot_bytes,
            "snapshot_age_secs": storage.snapshot_age_secs,
            "fsync_latency": histogram_json(&storage.fsync_latency),
            "appends_synced": storage.appends_synced,
        })),
        "network": metrics.network.as_ref().map(|network| json!({
            "connections_opened": network.connections_opened,
            "connections_closed": network.connections_closed,
            "bytes_sent": network.bytes_sent,
            "bytes_received": network.bytes_received,
            "protocols": network.protocols.iter().map(|p| json!({
                "alpn": p.alpn,
                "connections_opened": p.connections_opened,
                "connections_open": p.connections_open,
                "bytes_sent": p.bytes_sent,
                "bytes_received": p.bytes_received,
            })).collect::<Vec<_>>(),
            "peers": network.peers.iter().map(|p| json!({
                "node_id": p.node_id, "latency": histogram_json(&p.latency), "failures": p.failures,
            })).collect::<Vec<_>>(),
        })),
        "plugin": metrics.plugin.as_ref().map(|plugin| json!({
            "state_machine": plugin.state_machine,
            "sha256": sha256_hex(&plugin.sha256),
            "fuel_consumed": plugin.fuel_consumed,
            "instances_created": plugin.instances_created,
            "apply_latency": histogram_json(&plugin.apply_latency),
            "entries_applied": plugin.entries_applied,
            "traps": counts_json(&plugin.traps),
            "active": plugin.active.iter().map(|a| json!({
                "kind": a.kind.as_str(), "sha256": sha256_hex(&a.sha256),
                "version": a.version, "index": a.index,
            })).collect::<Vec<_>>(),
        })),
        "management": metrics.management.as_ref().map(|management| json!({
            "requests": management.requests,
            "errors": management.errors,
            "forwarded": management.forwarded,
            "subscribers": management.subscribers,
            "requests_by_operation": counts_json(&management.requests_by_operation),
            "denied": counts_json(&management.denied),
        })),
        "process": metrics.process.as_ref().map(|process| json!({
            "cpu_user_us": process.cpu_user_us,
            "cpu_system_us": process.cpu_system_us,
            "max_resident_bytes": process.max_resident_bytes,
        })),
    })
}
