//! `iroh-raft events`: follows a member's cluster events until Ctrl-C, as text or one JSON object
//! per line, each with the time the node published it. When the member stops answering, it moves
//! to another and says who leads now and since when events may be missing.

use std::time::Duration;

use clap::Args;
use iroh::EndpointAddr;
use iroh_raft::proto::{ClusterEvent, PluginKind};
use iroh_raft::{Client, ClientError, EventStream, IrohRaftManagementClient, sha256_hex};

use super::connect;
use crate::args::{Output, Target};

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
        ClusterEvent::BackupCreated {
            backup_id,
            index,
            node_id,
            size,
        } => {
            format!("backup created: {backup_id} at index {index} on node {node_id}, {size} bytes")
        }
        ClusterEvent::BackupRestored { backup_id, index } => {
            format!("backup restored: {backup_id} at index {index}")
        }
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
        ClusterEvent::PluginRolledBack {
            kind,
            sha256,
            version,
            index,
        } => format!(
            "plugin rolled back: {} {version} ({}) active again at index {index}",
            kind.as_str(),
            &sha256_hex(sha256)[..16]
        ),
        ClusterEvent::Lagged { missed } => {
            format!("this subscriber fell behind and missed {missed} events")
        }
        ClusterEvent::DivergenceDetected {
            index,
            local,
            majority,
        } => format!(
            "DIVERGENCE detected: at index {index} this node's state hash is {} but the \
             majority's is {} (`iroh-raft check consistency` compares every member)",
            &sha256_hex(local)[..16],
            &sha256_hex(majority)[..16]
        ),
        ClusterEvent::AccessDenied {
            caller,
            operation,
            resource,
            reason,
        } => format!(
            "access denied: {} asked {operation}{} — {reason}",
            &hex::encode(caller)[..16],
            if resource.is_empty() {
                String::new()
            } else {
                format!(" on {resource}")
            }
        ),
        other => format!("{other:?}"),
    }
}

/// How often the followed node is asked whether it still answers, and how long it may take.
const PROBE_EVERY: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Args)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    target: Target,
    /// Exit 1 with the reason when the followed node stops answering or ends the subscription,
    /// instead of following another member.
    #[arg(long)]
    no_follow: bool,
}

/// `at_unix_ms` as RFC 3339 (UTC, milliseconds).
pub(crate) fn when(at_unix_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(at_unix_ms as i64).map_or_else(
        || format!("{at_unix_ms} ms"),
        |at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// One event as a JSON line (`docs/cli-json.md`): `event` names it in kebab-case, its fields sit
/// beside it, hashes and endpoint ids are hex, and `at` is when the node published it.
fn event_json(at_unix_ms: u64, event: &ClusterEvent) -> serde_json::Value {
    use serde_json::json;
    let plugin = |name: &str, kind: &PluginKind, sha256, version: &str, index| {
        json!({ "event": name, "kind": kind.as_str(), "sha256": sha256_hex(sha256),
                "version": version, "index": index })
    };
    let mut line = match event {
        ClusterEvent::LeaderElected { leader, term } => {
            json!({ "event": "leader-elected", "leader": leader, "term": term })
        }
        ClusterEvent::MemberAdded { node_id, role } => {
            json!({ "event": "member-added", "node_id": node_id, "role": role.as_str() })
        }
        ClusterEvent::MemberRoleChanged { node_id, role } => {
            json!({ "event": "member-role-changed", "node_id": node_id, "role": role.as_str() })
        }
        ClusterEvent::MemberRemoved { node_id } => {
            json!({ "event": "member-removed", "node_id": node_id })
        }
        ClusterEvent::MemberHealthChanged { node_id, healthy } => {
            json!({ "event": "member-health-changed", "node_id": node_id, "healthy": healthy })
        }
        ClusterEvent::ConfigurationChanged { version, index } => {
            json!({ "event": "configuration-changed", "version": version, "index": index })
        }
        ClusterEvent::SnapshotCompleted { index, size } => {
            json!({ "event": "snapshot-completed", "index": index, "size": size })
        }
        ClusterEvent::BackupCreated {
            backup_id,
            index,
            node_id,
            size,
        } => json!({ "event": "backup-created", "backup_id": backup_id, "index": index,
                     "node_id": node_id, "size": size }),
        ClusterEvent::BackupRestored { backup_id, index } => {
            json!({ "event": "backup-restored", "backup_id": backup_id, "index": index })
        }
        ClusterEvent::PluginDeployed {
            kind,
            sha256,
            version,
            index,
        } => plugin("plugin-deployed", kind, sha256, version, index),
        ClusterEvent::PluginRolledBack {
            kind,
            sha256,
            version,
            index,
        } => plugin("plugin-rolled-back", kind, sha256, version, index),
        ClusterEvent::Lagged { missed } => json!({ "event": "lagged", "missed": missed }),
        ClusterEvent::DivergenceDetected {
            index,
            local,
            majority,
        } => json!({ "event": "divergence-detected", "index": index,
                     "local": sha256_hex(local), "majority": sha256_hex(majority) }),
        ClusterEvent::AccessDenied {
            caller,
            operation,
            resource,
            reason,
        } => json!({ "event": "access-denied", "caller": hex::encode(caller),
                     "operation": operation, "resource": resource, "reason": reason }),
        // An event this build does not know yet: its name, and its fields in words.
        other => json!({ "event": "unknown", "text": format!("{other:?}") }),
    };
    line["at"] = when(at_unix_ms).into();
    line["at_unix_ms"] = at_unix_ms.into();
    line
}

fn print_event(output: Output, at_unix_ms: u64, event: &ClusterEvent) -> anyhow::Result<()> {
    if output == Output::Json {
        println!("{}", event_json(at_unix_ms, event));
    } else {
        println!("{}  {}", when(at_unix_ms), describe(event));
    }
    Ok(())
}

/// A subscription to one member.
struct Followed {
    client: Client,
    events: EventStream,
    node: EndpointAddr,
}

/// Subscribes to the first member that answers, those in `avoid` last.
async fn subscribe_any(
    pool: &IrohRaftManagementClient,
    key: &iroh::SecretKey,
    avoid: &[iroh::EndpointId],
) -> anyhow::Result<Followed> {
    let mut members = pool.members().await;
    members.sort_by_key(|m| avoid.contains(&m.id));
    let mut problems = Vec::new();
    for node in members {
        let attempt = async {
            // The connect is bounded on its own, so that a timeout never drops an open endpoint.
            let client =
                Client::connect_with_key_within(key.clone(), node.clone(), Some(PROBE_TIMEOUT))
                    .await?;
            match tokio::time::timeout(PROBE_TIMEOUT, client.subscribe()).await {
                Ok(Ok(events)) => anyhow::Ok(Followed {
                    client,
                    events,
                    node: node.clone(),
                }),
                Ok(Err(error)) => {
                    client.close().await;
                    Err(error.into())
                }
                Err(_) => {
                    client.close().await;
                    anyhow::bail!("no answer within {PROBE_TIMEOUT:?}")
                }
            }
        };
        match attempt.await {
            Ok(followed) => return Ok(followed),
            Err(error) => problems.push(format!("{}: {error:#}", node.id.fmt_short())),
        }
    }
    anyhow::bail!("no member could be subscribed to: {}", problems.join("; "))
}

/// Prints `followed`'s events until it is lost: `Err` with the reason and when the node was last
/// heard from (an event or an answered probe), since events after that may be missing.
async fn follow(
    output: Output,
    followed: &mut Followed,
) -> Result<anyhow::Result<()>, (String, u64)> {
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.tick().await;
    let mut heard = iroh_raft::events::unix_millis_now();
    loop {
        tokio::select! {
            event = followed.events.next_stamped() => match event {
                Ok(Some((at, event))) => {
                    heard = iroh_raft::events::unix_millis_now();
                    if let Err(error) = print_event(output, at, &event) {
                        return Ok(Err(error));
                    }
                }
                Ok(None) => return Err(("the node ended the subscription (it shut down)".into(), heard)),
                Err(error) => return Err((error.to_string(), heard)),
            },
            _ = probe.tick() => {
                // Any answer, a refusal included, shows the node is alive.
                match tokio::time::timeout(PROBE_TIMEOUT, followed.client.health_check()).await {
                    Ok(Ok(_) | Err(ClientError::Request(_))) => {
                        heard = iroh_raft::events::unix_millis_now();
                    }
                    Ok(Err(error)) => {
                        return Err((format!("the node stopped answering: {error}"), heard));
                    }
                    Err(_) => {
                        return Err((
                            format!("the node did not answer within {PROBE_TIMEOUT:?}"),
                            heard,
                        ));
                    }
                }
            }
        }
    }
}

/// Tells the user a subscription moved to another member: who leads now, and the gap in which
/// events may have been missed.
async fn report_gap(
    output: Output,
    pool: &IrohRaftManagementClient,
    followed: &Followed,
    lost_at: u64,
) -> anyhow::Result<()> {
    let now = iroh_raft::events::unix_millis_now();
    let status = pool.get_cluster_status().await.ok();
    let node_id = status.as_ref().and_then(|s| {
        s.members
            .iter()
            .find(|m| m.member.endpoint_key == *followed.node.id.as_bytes())
            .map(|m| m.node_id)
    });
    let (leader, term) = (
        status.as_ref().and_then(|s| s.leader),
        status.as_ref().map(|s| s.term),
    );
    if output == Output::Json {
        println!(
            "{}",
            serde_json::json!({
                "event": "resubscribed",
                "node_id": node_id,
                "leader": leader,
                "term": term,
                "missed_from": when(lost_at),
                "missed_to": when(now),
                "at": when(now),
                "at_unix_ms": now,
            })
        );
    } else {
        println!(
            "{}  resubscribed to node {}; leader now {} (term {}); events between {} and now may be missing",
            when(now),
            node_id.map_or("?".into(), |id| id.to_string()),
            leader.map_or("none".into(), |l| l.to_string()),
            term.map_or("?".into(), |t| t.to_string()),
            when(lost_at)
        );
    }
    Ok(())
}

/// `iroh-raft events`: follows a member's events until Ctrl-C, moving to another member when it
/// stops answering (or exiting 1, with `--no-follow`).
pub(crate) async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let EventsArgs { target, no_follow } = args;
    let key = target.secret_key()?;
    let pool = connect(&target).await?;
    // Ctrl-C ends the command wherever it is: following, or looking for another member.
    let result = tokio::select! {
        result = follow_members(&target, &pool, &key, no_follow) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    pool.close().await;
    result
}

/// Follows one member after another until an error (or, with `no_follow`, the first loss).
async fn follow_members(
    target: &Target,
    pool: &IrohRaftManagementClient,
    key: &iroh::SecretKey,
    no_follow: bool,
) -> anyhow::Result<()> {
    let mut avoid = Vec::new();
    let mut lost_at = None;
    loop {
        let mut followed = subscribe_any(pool, key, &avoid).await?;
        if let Some(at) = lost_at.take() {
            report_gap(target.output, pool, &followed, at).await?;
        }
        let lost = follow(target.output, &mut followed).await;
        followed.client.close().await;
        match lost {
            Ok(done) => return done,
            Err((reason, _)) if no_follow => {
                anyhow::bail!(
                    "lost the subscription to {}: {reason}",
                    followed.node.id.fmt_short()
                );
            }
            Err((reason, heard)) => {
                eprintln!(
                    "lost the subscription to {}: {reason}; following another member",
                    followed.node.id.fmt_short()
                );
                lost_at = Some(heard);
                avoid = vec![followed.node.id];
                // Learn the membership again, and do not hammer a member that ends at once.
                let _ = pool.get_cluster_status().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
