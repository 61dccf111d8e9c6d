//! `iroh-raft check ...`: checks that the replicas agree. `check consistency` compares every
//! member's state hash at the highest capture point they all hold (etcd's `endpoint hashkv`,
//! aligned by applied index) and exits 1 naming any member that differs or cannot be asked.

use clap::Subcommand;
use iroh_raft::{ConsistencyReport, sha256_hex};

use crate::args::{Output, Target, print_json};
use crate::manage::with_client;

/// Check commands.
#[derive(Subcommand)]
pub(crate) enum CheckCli {
    /// Compare every member's state hash at one applied index; exit 1 if any differs.
    ///
    /// Asks every member (the members the cluster status lists) which applied indexes it keeps a
    /// view of (its capture points: the last few multiples of the replicated `check_every`, and
    /// the end of its last apply), picks the highest index they all hold, and asks each member for
    /// the hash of its state there: the applied state (membership, configuration, plugins) and
    /// every key and value of the state machine. Prints node, index and hash per member. Exits 0
    /// when every member answered with the same hash; exits 1 naming the members that differ from
    /// the majority, or that could not be reached or asked.
    Consistency,
}

/// `iroh-raft check ...`.
pub(crate) async fn check(target: Target, command: CheckCli) -> anyhow::Result<()> {
    match command {
        CheckCli::Consistency => {
            let report = with_client(&target, async |client| {
                Ok(client.check_consistency().await?)
            })
            .await?;
            if target.output == Output::Json {
                print_json(&report_json(&report))?;
            } else {
                print_table(&report);
            }
            judge(&report)
        }
    }
}

fn report_json(report: &ConsistencyReport) -> serde_json::Value {
    let verdict = report.verdict.as_ref();
    serde_json::json!({
        "index": report.index,
        "consistent": report.consistent(),
        "majority": verdict.and_then(|v| v.majority).map(|h| sha256_hex(&h)),
        "differing": verdict.map(|v| v.differing.iter().map(|d| d.node_id).collect::<Vec<_>>()),
        "unanswered": verdict.map(|v| v.unanswered.clone()),
        "members": report.members.iter().map(|m| serde_json::json!({
            "node_id": m.node_id,
            "hash": m.outcome.as_ref().ok().map(sha256_hex),
            "error": m.outcome.as_ref().err(),
        })).collect::<Vec<_>>(),
        "capture_points": report.points.iter().map(|(id, points)| serde_json::json!({
            "node_id": id,
            "indexes": points.as_ref().ok(),
            "error": points.as_ref().err(),
        })).collect::<Vec<_>>(),
    })
}

fn print_table(report: &ConsistencyReport) {
    let Some(index) = report.index else {
        println!("no applied index is held by every member that answered:");
        for (node_id, points) in &report.points {
            match points {
                Ok(indexes) => println!("  node {node_id}: capture points {indexes:?}"),
                Err(reason) => println!("  node {node_id}: {reason}"),
            }
        }
        return;
    };
    let verdict = report.verdict.as_ref();
    println!("{:<6} {:>10}  {:<64}", "node", "index", "hash");
    for member in &report.members {
        let differs =
            verdict.is_some_and(|v| v.differing.iter().any(|d| d.node_id == member.node_id));
        match &member.outcome {
            Ok(hash) => println!(
                "{:<6} {:>10}  {}{}",
                member.node_id,
                index,
                sha256_hex(hash),
                if differs { "  DIFFERS" } else { "" }
            ),
            Err(reason) => println!("{:<6} {:>10}  no hash: {reason}", member.node_id, index),
        }
    }
}

/// Exit 0 only if every member answered with the same hash.
fn judge(report: &ConsistencyReport) -> anyhow::Result<()> {
    if report.consistent() {
        return Ok(());
    }
    let Some(verdict) = &report.verdict else {
        let unreachable: Vec<u64> = report
            .points
            .iter()
            .filter(|(_, p)| p.is_err())
            .map(|(id, _)| *id)
            .collect();
        anyhow::bail!(
            "the members hold no capture point in common{}; retry once the cluster is quiet, or \
             lower check_every (`iroh-raft config set check_every=N`)",
            if unreachable.is_empty() {
                String::new()
            } else {
                format!(" (could not ask node(s) {unreachable:?})")
            }
        );
    };
    let mut problems = Vec::new();
    if !verdict.differing.is_empty() {
        let ids: Vec<u64> = verdict.differing.iter().map(|d| d.node_id).collect();
        problems.push(format!(
            "node(s) {ids:?} differ from the majority at index {}",
            verdict.index
        ));
    }
    if verdict.majority.is_none() {
        problems.push(format!(
            "no majority of the members agrees on a hash at index {}",
            verdict.index
        ));
    }
    if !verdict.unanswered.is_empty() {
        problems.push(format!(
            "node(s) {:?} gave no hash (unreachable, or no view at that index)",
            verdict.unanswered
        ));
    }
    anyhow::bail!("the replicas are not consistent: {}", problems.join("; "))
}
