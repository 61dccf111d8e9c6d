//! `iroh-raft events`: follows a node's cluster events until Ctrl-C, as text or one JSON object
//! per line.

use futures_util::StreamExt;
use iroh_raft::proto::ClusterEvent;
use iroh_raft::sha256_hex;

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
