//! The management commands of the CLI: status, health, metrics, members, leadership,
//! configuration, the log, snapshots and events. Each talks to the cluster through
//! `IrohRaftManagementClient`, which sends leader-only operations to the leader.

use anyhow::Context;
use clap::Subcommand;
use futures_util::StreamExt;
use iroh_raft::proto::{
    ClusterEvent, ClusterStatus, LogEntryKind, Member, MemberOperationResponse, MemberRole,
    MetricsCategory,
};
use iroh_raft::{IrohRaftManagementClient, parse_node_address, sha256_hex};

use crate::{Output, Target, print_json};

/// Membership commands.
#[derive(Subcommand)]
pub(crate) enum MemberCli {
    /// List the members with role, health and replication lag (as the leader sees them).
    List,
    /// Add a node that waits to be added (`iroh-raft node --join TICKET --standby-as ID`).
    ///
    /// A voter is added as a learner and promoted once it has caught up (the command waits for
    /// that); a learner is promoted later on its own; an observer receives the log and never votes.
    Add {
        /// The raft id it gets (the one it was started with).
        node_id: u64,
        /// Its address as `iroh-raft node` printed it: `<endpoint-id>@<ip:port>`, or a ticket.
        address: String,
        /// voter, learner or observer.
        #[arg(long, default_value = "voter")]
        role: MemberRole,
    },
    /// Remove a member. Removing the leader hands leadership to another voter first.
    Remove {
        /// The member.
        node_id: u64,
    },
    /// Promote or demote a member: voter, learner or observer.
    Role {
        /// The member.
        node_id: u64,
        /// Its new role.
        role: MemberRole,
    },
}

/// Leadership commands.
#[derive(Subcommand)]
pub(crate) enum LeaderCli {
    /// Hand leadership to a caught-up voter (`--to ID`), or to the most caught-up one.
    Transfer {
        /// The voter to hand over to.
        #[arg(long)]
        to: Option<u64>,
    },
    /// The leader hands leadership to the most caught-up voter.
    StepDown,
}

/// Configuration commands.
#[derive(Subcommand)]
pub(crate) enum ConfigCli {
    /// Print the replicated cluster configuration.
    Get,
    /// Change settings, e.g. `config set snapshot_every=50000 heartbeat_interval_ms=50`.
    ///
    /// The update is validated first (a refusal names the field and why), then replicated: it
    /// takes effect on every member at the same log index. Plugin budgets apply from that entry on;
    /// heartbeats, snapshots and frame limits as soon as each member applies it; a change of the
    /// election timeouts makes each member start a new raft core over its storage (one election).
    Set {
        /// `name=value` pairs; `config get` lists the names.
        #[arg(required = true)]
        settings: Vec<String>,
    },
}

/// Log commands.
#[derive(Subcommand)]
pub(crate) enum LogCli {
    /// First, last, committed, applied and purged indexes, with sizes.
    Info,
    /// Purge the leader's log up to INDEX, which its snapshot must cover.
    Compact {
        /// The last index to purge.
        index: u64,
    },
    /// Print entries START..END (at most 1000) of the leader's log.
    Entries {
        /// The first index.
        start: u64,
        /// One past the last index.
        end: u64,
    },
}

/// Snapshot commands.
#[derive(Subcommand)]
pub(crate) enum SnapshotCli {
    /// Make the leader take a snapshot now; prints it once done.
    Trigger,
    /// The leader's current snapshot.
    Info,
}

async fn connect(target: &Target) -> anyhow::Result<IrohRaftManagementClient> {
    Ok(IrohRaftManagementClient::connect(vec![target.node()?]).await?)
}

/// Connects, runs `work`, closes the connections whatever `work` returned.
async fn with_client<T>(
    target: &Target,
    work: impl AsyncFnOnce(&IrohRaftManagementClient) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let client = connect(target).await?;
    let result = work(&client).await;
    client.close().await;
    result
}

fn opt(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
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
pub(crate) async fn metrics(
    target: Target,
    categories: Vec<MetricsCategory>,
) -> anyhow::Result<()> {
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
    }
    Ok(())
}

fn print_member(output: Output, response: &MemberOperationResponse) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(&serde_json::json!({
            "node_id": response.node_id,
            "role": response.role.map(MemberRole::as_str),
            "log_index": response.log_index,
            "message": response.message,
        }));
    }
    println!("{}", response.message);
    Ok(())
}

/// `iroh-raft member ...`.
pub(crate) async fn member(target: Target, command: MemberCli) -> anyhow::Result<()> {
    let response = match command {
        MemberCli::List => return status(target).await,
        MemberCli::Add {
            node_id,
            address,
            role,
        } => {
            let addr = parse_node_address(&address).map_err(anyhow::Error::msg)?;
            let member = Member {
                endpoint_key: *addr.id.as_bytes(),
                addrs: addr.ip_addrs().copied().collect(),
                observer: false,
            };
            with_client(&target, async |c| {
                Ok(c.add_member(node_id, member, role).await?)
            })
            .await?
        }
        MemberCli::Remove { node_id } => {
            with_client(&target, async |c| Ok(c.remove_member(node_id).await?)).await?
        }
        MemberCli::Role { node_id, role } => {
            with_client(&target, async |c| {
                Ok(c.update_member_role(node_id, role).await?)
            })
            .await?
        }
    };
    print_member(target.output, &response)
}

/// `iroh-raft leader ...`.
pub(crate) async fn leader(target: Target, command: LeaderCli) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let result = match command {
        LeaderCli::Transfer { to } => client.transfer_leadership(to).await,
        LeaderCli::StepDown => client.step_down().await,
    };
    client.close().await;
    let moved = result?;
    if target.output == Output::Json {
        return print_json(&serde_json::json!({
            "previous_leader": moved.previous_leader,
            "new_leader": moved.new_leader,
            "term": moved.term,
            "transfer_duration_ms": moved.transfer_duration.as_secs_f64() * 1e3,
        }));
    }
    println!(
        "leadership moved from node {} to node {} (term {}) in {:.1?}",
        moved.previous_leader, moved.new_leader, moved.term, moved.transfer_duration
    );
    Ok(())
}

/// `iroh-raft config ...`.
pub(crate) async fn config(target: Target, command: ConfigCli) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let result = async {
        let mut config = client.get_configuration().await?;
        if let ConfigCli::Set { settings } = command {
            for setting in &settings {
                let (name, value) = setting
                    .split_once('=')
                    .with_context(|| format!("`{setting}` is not name=value"))?;
                config.set(name.trim(), value)?;
            }
            config = client.update_configuration(config).await?;
        }
        anyhow::Ok(config)
    }
    .await;
    client.close().await;
    let config = result?;
    if target.output == Output::Json {
        return print_json(
            &config
                .fields()
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
    }
    for (name, value) in config.fields() {
        println!("{name:<24} {value}");
    }
    Ok(())
}

/// `iroh-raft log ...`.
pub(crate) async fn log(target: Target, command: LogCli) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let output = target.output;
    let result = async {
        match command {
            LogCli::Info => {
                let info = client.get_log_info().await?;
                if output == Output::Json {
                    return print_json(&info);
                }
                println!(
                    "node {}: first {} last {} committed {} applied {} purged {} snapshot {}",
                    info.node_id,
                    opt(info.first),
                    opt(info.last),
                    opt(info.committed),
                    opt(info.applied),
                    opt(info.purged),
                    opt(info.snapshot)
                );
                println!(
                    "{} entries; storage {} bytes; snapshot {} bytes",
                    info.entries, info.storage_bytes, info.snapshot_bytes
                );
                Ok(())
            }
            LogCli::Compact { index } => {
                let purged = client.compact_log(index).await?;
                if output == Output::Json {
                    return print_json(&serde_json::json!({ "purged": purged }));
                }
                println!("the log is purged up to {purged}");
                Ok(())
            }
            LogCli::Entries { start, end } => {
                let entries = client.get_log_entries(start, end).await?;
                if output == Output::Json {
                    return print_json(&entries);
                }
                for entry in entries {
                    let what = match entry.kind {
                        LogEntryKind::Blank => "blank (a new leader's first entry)".to_string(),
                        LogEntryKind::Membership { voters, learners } => {
                            format!("membership voters {voters:?} non-voters {learners:?}")
                        }
                        LogEntryKind::Command(bytes) => {
                            format!(
                                "command {} bytes {}",
                                bytes.len(),
                                hex::encode(&bytes[..bytes.len().min(32)])
                            )
                        }
                        LogEntryKind::Config(config) => {
                            format!("config version {}", config.version)
                        }
                        LogEntryKind::Other(text) => text,
                    };
                    println!("{:>8} term {:<4} {what}", entry.index, entry.term);
                }
                Ok(())
            }
        }
    }
    .await;
    client.close().await;
    result
}

/// `iroh-raft snapshot ...`.
pub(crate) async fn snapshot(target: Target, command: SnapshotCli) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let result = match command {
        SnapshotCli::Trigger => client.trigger_snapshot().await,
        SnapshotCli::Info => client.get_snapshot_info().await,
    };
    client.close().await;
    let info = result?;
    if target.output == Output::Json {
        return print_json(&info);
    }
    println!(
        "node {}: snapshot up to index {} (term {}), {} bytes",
        info.node_id, info.index, info.term, info.size
    );
    Ok(())
}

fn describe(event: &ClusterEvent) -> String {
    match event {
        ClusterEvent::LeaderElected { leader, term } => {
            format!("leader elected: node {leader} (term {term})")
        }
        ClusterEvent::MemberAdded { node_id, role } => {
            format!("member added: node {node_id} as {role}")
        }
        ClusterEvent::MemberRoleChanged { node_id, role } => {
            format!("member role changed: node {node_id} is now a {role}")
        }
        ClusterEvent::MemberRemoved { node_id } => format!("member removed: node {node_id}"),
        ClusterEvent::MemberHealthChanged { node_id, healthy } => format!(
            "member health changed: node {node_id} is {}",
            if *healthy {
                "answering"
            } else {
                "NOT answering"
            }
        ),
        ClusterEvent::ConfigurationChanged { version, index } => {
            format!("configuration changed: version {version} at index {index}")
        }
        ClusterEvent::SnapshotCompleted { index, size } => {
            format!("snapshot completed: up to index {index}, {size} bytes")
        }
        ClusterEvent::BackupCreated { backup_id } => format!("backup created: {backup_id}"),
        ClusterEvent::PluginDeployed {
            kind,
            sha256,
            version,
            index,
        } => format!(
            "plugin deployed: {} {version} ({}) at index {index}",
            kind.as_str(),
            &sha256_hex(sha256)[..16]
        ),
        ClusterEvent::Lagged { missed } => {
            format!("this subscriber fell behind and missed {missed} events")
        }
        other => format!("{other:?}"),
    }
}

/// `iroh-raft events`: follows the node's events until Ctrl-C.
pub(crate) async fn events(target: Target) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let mut events = client.subscribe_to_events().await?;
    loop {
        let event = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.next() => event,
        };
        match event {
            Some(Ok(event)) if target.output == Output::Json => {
                println!("{}", serde_json::to_string(&event)?);
            }
            Some(Ok(event)) => println!("{}", describe(&event)),
            Some(Err(error)) => {
                client.close().await;
                return Err(error.into());
            }
            None => {
                client.close().await;
                anyhow::bail!("the node ended the subscription (it shut down)");
            }
        }
    }
    client.close().await;
    Ok(())
}
