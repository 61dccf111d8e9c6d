//! `iroh-raft log ...` and `iroh-raft snapshot ...`: the leader's raft log and its snapshot.

use clap::Subcommand;
use iroh_raft::proto::{LogEntryInfo, LogEntryKind};

use super::{connect, opt};
use crate::args::{Output, Target, print_json};

/// The most entries the node answers per `GetLogEntries`.
const MAX_ENTRIES: u64 = 1000;

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
    /// Print entries START..END of the leader's log: at most 1000 at a time (a longer range prints
    /// the first 1000 and says where to go on from).
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

/// One log entry as `log entries -o json` prints it (`docs/cli-json.md`): `kind` in kebab-case
/// and the fields of that kind beside it.
fn entry_json(entry: &LogEntryInfo) -> serde_json::Value {
    use serde_json::json;
    let mut line = match &entry.kind {
        LogEntryKind::Blank => json!({ "kind": "blank" }),
        LogEntryKind::Membership { voters, learners } => {
            json!({ "kind": "membership", "voters": voters, "learners": learners })
        }
        LogEntryKind::Command(bytes) => {
            json!({ "kind": "command", "size": bytes.len(), "command": hex::encode(bytes) })
        }
        LogEntryKind::Config(config) => {
            json!({ "kind": "config", "config_version": config.version })
        }
        LogEntryKind::Other(text) => json!({ "kind": "other", "text": text }),
    };
    line["index"] = entry.index.into();
    line["term"] = entry.term.into();
    line
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
                // The node answers at most 1000 per request; take the first 1000 and say so.
                let upto = end.min(start.saturating_add(MAX_ENTRIES));
                let entries = client.get_log_entries(start, upto).await?;
                let more = (upto < end).then(|| {
                    format!(
                        "the first {MAX_ENTRIES} of the {} entries asked for; go on with \
                         `iroh-raft log entries {upto} {end}`",
                        end - start
                    )
                });
                // On stderr in both modes, so that the JSON stays an array of entries.
                if let Some(note) = &more {
                    eprintln!("{note}");
                }
                if output == Output::Json {
                    return print_json(&entries.iter().map(entry_json).collect::<Vec<_>>());
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
