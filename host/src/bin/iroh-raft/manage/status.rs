//! `iroh-raft status|health` (and `member list`): what the cluster and a node report about
//! themselves.

use iroh_raft::proto::ClusterStatus;
use iroh_raft::sha256_hex;

use super::{connect, opt};
use crate::args::{Output, Target, print_json};

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
