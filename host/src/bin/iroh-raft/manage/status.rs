//! `iroh-raft status|health` (and `member list`): what the cluster and a node report about
//! themselves.

use clap::Args;
use iroh_raft::proto::{ClusterStatus, HealthStatus};
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

/// `iroh-raft health -o json` (`docs/cli-json.md`).
fn health_json(health: &HealthStatus) -> serde_json::Value {
    serde_json::json!({
        "node_id": health.node_id,
        "healthy": health.healthy,
        "raft_state": health.raft_state.as_str(),
        "leader": health.leader,
        "term": health.term,
        "committed": health.committed,
        "applied": health.applied,
        "problems": health.problems,
        "uptime_ms": u64::try_from(health.uptime.as_millis()).unwrap_or(u64::MAX),
    })
}

#[derive(Args)]
pub(crate) struct HealthArgs {
    #[command(flatten)]
    target: Target,
    /// Ask every member, not only the target node; exit 1 if any is unhealthy or unreachable.
    #[arg(long)]
    cluster: bool,
}

/// `iroh-raft status` (exits 1 naming what is wrong) and `member list` (`check` false).
pub(crate) async fn status(target: Target) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let status = client.get_cluster_status().await;
    client.close().await;
    let status = status?;
    print_status(&target, &status)?;
    let problems = status.problems();
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}

/// `iroh-raft member list`: the members as the leader sees them; exits 0 whatever their health.
pub(crate) async fn members(target: Target) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let status = client.get_cluster_status().await;
    client.close().await;
    print_status(&target, &status?)
}

fn print_status(target: &Target, status: &ClusterStatus) -> anyhow::Result<()> {
    if target.output == Output::Json {
        return print_json(&status_json(status));
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

/// `iroh-raft health [--cluster]`.
pub(crate) async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let HealthArgs { target, cluster } = args;
    let client = connect(&target).await?;
    if !cluster {
        let health = client.get_health_status().await;
        client.close().await;
        let health = health?;
        print_health(&target, &health)?;
        anyhow::ensure!(health.healthy, "the node reports problems");
        return Ok(());
    }
    let status = client.get_cluster_status().await;
    client.close().await;
    let status = status?;
    let mut problems = status.problems();
    let mut report = Vec::new();
    for m in &status.members {
        let asked = async {
            let addr = m.member.endpoint_addr()?;
            let member = iroh_raft::IrohRaftManagementClient::connect_with_key(
                target.secret_key()?,
                vec![addr],
            )
            .await?;
            let health = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                member.get_health_status(),
            )
            .await;
            member.close().await;
            anyhow::Ok(health.map_err(|_| anyhow::anyhow!("no answer within 5 s"))??)
        };
        match asked.await {
            Ok(health) => {
                if !health.healthy {
                    problems.push(format!(
                        "node {} reports: {}",
                        m.node_id,
                        health.problems.join("; ")
                    ));
                }
                report.push((m.node_id, Ok(health)));
            }
            Err(error) => {
                problems.push(format!("node {} cannot be asked: {error:#}", m.node_id));
                report.push((m.node_id, Err(format!("{error:#}"))));
            }
        }
    }
    if target.output == Output::Json {
        print_json(&serde_json::json!({
            "healthy": problems.is_empty(),
            "problems": problems,
            "members": report.iter().map(|(id, health)| match health {
                Ok(health) => serde_json::json!({
                    "node_id": id, "health": health_json(health), "error": null,
                }),
                Err(error) => serde_json::json!({ "node_id": id, "health": null, "error": error }),
            }).collect::<Vec<_>>(),
        }))?;
    } else {
        for (id, health) in &report {
            match health {
                Ok(health) => print_health(&target, health)?,
                Err(error) => println!("node {id} CANNOT BE ASKED: {error}"),
            }
        }
        for problem in &problems {
            println!("cluster problem: {problem}");
        }
    }
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}

fn print_health(target: &Target, health: &HealthStatus) -> anyhow::Result<()> {
    if target.output == Output::Json {
        print_json(&health_json(health))?;
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
    Ok(())
}
