//! `iroh-raft backup ...` (through a running cluster's backup handler) and `iroh-raft restore`
//! (seeding a new cluster from a backup file, offline).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Subcommand};
use iroh_raft::proto::BackupInfo;
use iroh_raft::{ImageSummary, IrohRaftManagementClient, NodeConfig, inspect_image, sha256_hex};
use serde_json::json;

use crate::args::{Output, Target, print_json};
use crate::manage::events::when;
use crate::manage::with_client;

/// Bytes asked for per `ReadBackup`.
const CHUNK: u32 = 1 << 20;

/// Backup commands.
#[derive(Subcommand)]
pub(crate) enum BackupCli {
    /// Take a backup: an image of the state holding at least every write committed before the
    /// request, stored by the active backup handler in the node's --backup-dir. Taken on the
    /// leader unless --from-node names another member; writes go on meanwhile.
    Create {
        /// Member to take it on (default: the leader).
        #[arg(long, value_name = "NODE_ID")]
        from_node: Option<u64>,
        /// Metadata stored with the backup; repeatable.
        #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
        metadata: Vec<(String, String)>,
    },
    /// List the backups in a member's backup directory (the leader's by default), through every
    /// backup handler the cluster holds, oldest index first.
    List {
        /// Member whose backups to list (default: the leader).
        #[arg(long, value_name = "NODE_ID")]
        from_node: Option<u64>,
    },
    /// Show what a backup holds: index, membership, plugins, pairs, state hash. Reads and
    /// verifies the whole image, from a member's backup directory or from a file.
    Inspect {
        /// The backup's id (`backup list` shows them).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        id: Option<String>,
        /// Inspect an image file instead (an `fs-backup` `ID.snap`, or `backup export`'s output).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Member whose backup directory holds it (default: the leader).
        #[arg(long, value_name = "NODE_ID")]
        from_node: Option<u64>,
    },
    /// Copy a backup's image out of a member's backup directory into a local file (verified),
    /// for `iroh-raft restore --from`.
    Export {
        /// The backup's id.
        id: String,
        /// The file to write.
        #[arg(long, value_name = "PATH")]
        to: PathBuf,
        /// Member whose backup directory holds it (default: the leader).
        #[arg(long, value_name = "NODE_ID")]
        from_node: Option<u64>,
    },
    /// Delete a backup from a member's backup directory (the leader's by default).
    Delete {
        /// The backup's id.
        id: String,
        /// Member whose backup directory holds it (default: the leader).
        #[arg(long, value_name = "NODE_ID")]
        from_node: Option<u64>,
    },
    /// Replace the state machine's data with a backup's, on every replica at one log index. The
    /// leader reads it from its backup directory, verifies it (sha256 and state hash) and
    /// replicates it; membership, configuration and plugins stay as they are. A damaged or
    /// missing backup is refused and nothing changes.
    Restore {
        /// The backup's id.
        id: String,
    },
}

fn parse_meta(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.to_string(), value.to_string()))
}

/// A backup as `-o json` prints it: hashes as hex, times in RFC 3339.
fn info_json(info: &BackupInfo) -> serde_json::Value {
    json!({
        "id": info.id,
        "index": info.index,
        "size": info.size,
        "sha256": hex::encode(info.sha256),
        "state_hash": info.state_hash.map(hex::encode),
        "created": info.created_unix_ms.map(when),
        "created_unix_ms": info.created_unix_ms,
        "handler": info.handler.map(hex::encode),
        "node_id": info.node_id,
        "cluster_id": info.cluster_id.map(hex::encode),
        "pairs": info.pairs,
        "scheduled": info.scheduled,
        "metadata": info.metadata.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
    })
}

fn short(hash: Option<[u8; 32]>) -> String {
    hash.map_or("-".into(), |hash| sha256_hex(&hash)[..16].to_string())
}

fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn bytes_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// `iroh-raft backup ...`.
pub(crate) async fn backup(target: Target, command: BackupCli) -> anyhow::Result<()> {
    let output = target.output;
    match command {
        BackupCli::Create {
            from_node,
            metadata,
        } => {
            let started = Instant::now();
            let bar = spinner("taking a backup");
            let info = with_client(&target, async |client| {
                Ok(client.create_backup(from_node, metadata).await?)
            })
            .await;
            bar.finish_and_clear();
            let info = info.context("no backup was taken")?;
            if output == Output::Json {
                return print_json(&info_json(&info));
            }
            println!(
                "backup {} at index {} on node {}: {} bytes, {} pairs, state hash {} ({:.2}s)",
                info.id,
                info.index,
                info.node_id.map_or("-".into(), |id| id.to_string()),
                info.size,
                info.pairs.map_or("-".into(), |p| p.to_string()),
                short(info.state_hash),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        BackupCli::List { from_node } => {
            let all = with_client(&target, async |client| {
                Ok(client.list_backups(from_node).await?)
            })
            .await?;
            if output == Output::Json {
                return print_json(&all.iter().map(info_json).collect::<Vec<_>>());
            }
            if all.is_empty() {
                println!("no backups");
            }
            for info in &all {
                println!(
                    "{}  index {}  {} bytes  created {}  node {}  handler {}  state hash {}",
                    info.id,
                    info.index,
                    info.size,
                    info.created_unix_ms.map_or("-".into(), when),
                    info.node_id.map_or("-".into(), |id| id.to_string()),
                    short(info.handler),
                    short(info.state_hash)
                );
            }
            Ok(())
        }
        BackupCli::Inspect {
            id,
            file,
            from_node,
        } => {
            let (info, image) = match (id, file) {
                (_, Some(path)) => {
                    let image = std::fs::read(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    (None, Bytes::from(image))
                }
                (Some(id), None) => {
                    let (info, image) =
                        with_client(&target, async |client| fetch(client, from_node, &id).await)
                            .await?;
                    (Some(info), image)
                }
                (None, None) => anyhow::bail!("name a backup id or --file PATH"),
            };
            let summary = inspect_image(&image).context("the image does not verify")?;
            print_summary(output, info.as_ref(), &summary, image.len())
        }
        BackupCli::Export { id, to, from_node } => {
            let (_, image) =
                with_client(&target, async |client| fetch(client, from_node, &id).await).await?;
            let summary = inspect_image(&image).context("the exported image does not verify")?;
            write_file(&to, &image)?;
            if output == Output::Json {
                return print_json(
                    &json!({ "id": id, "file": to, "size": image.len(), "index": summary.index }),
                );
            }
            println!(
                "backup {id}: {} bytes at index {} written to {}",
                image.len(),
                summary.index,
                to.display()
            );
            Ok(())
        }
        BackupCli::Delete { id, from_node } => {
            with_client(&target, async |client| {
                Ok(client.delete_backup(from_node, &id).await?)
            })
            .await
            .with_context(|| format!("backup {id} was not deleted"))?;
            if output == Output::Json {
                return print_json(&json!({ "deleted": id }));
            }
            println!("deleted backup {id}");
            Ok(())
        }
        BackupCli::Restore { id } => {
            let bar = spinner("restoring");
            let outcome = with_client(&target, async |client| {
                Ok(client.restore_backup(&id).await?)
            })
            .await;
            bar.finish_and_clear();
            let outcome = outcome.with_context(|| format!("backup {id} was not restored"))?;
            if output == Output::Json {
                return print_json(&json!({
                    "backup_id": outcome.backup_id,
                    "index": outcome.index,
                    "backup_index": outcome.backup_index,
                    "pairs": outcome.pairs,
                }));
            }
            println!(
                "restored backup {} (taken at index {}) at index {}: {} pairs on every replica",
                outcome.backup_id, outcome.backup_index, outcome.index, outcome.pairs
            );
            Ok(())
        }
    }
}

/// Reads backup `id` whole from a member's backup directory, with a progress bar.
async fn fetch(
    client: &IrohRaftManagementClient,
    from_node: Option<u64>,
    id: &str,
) -> anyhow::Result<(BackupInfo, Bytes)> {
    let info = client
        .list_backups(from_node)
        .await?
        .into_iter()
        .find(|info| info.id == id)
        .ok_or_else(|| anyhow::anyhow!("no backup {id} (`iroh-raft backup list` shows them)"))?;
    let bar = bytes_bar(info.size, "reading");
    // The size is the handler's word: reserve no more than a restore could carry.
    let mut image = Vec::with_capacity(info.size.min(64 << 20) as usize);
    while (image.len() as u64) < info.size {
        let chunk = client
            .read_backup(from_node, id, image.len() as u64, CHUNK)
            .await?;
        if chunk.is_empty() {
            anyhow::bail!(
                "backup {id} is truncated: {} of its {} bytes are stored",
                image.len(),
                info.size
            );
        }
        image.extend_from_slice(&chunk);
        bar.set_position(image.len() as u64);
    }
    bar.finish_and_clear();
    anyhow::ensure!(
        iroh_raft::sha256(&image) == info.sha256,
        "backup {id} is damaged: its bytes hash to {}, the backup recorded {}",
        sha256_hex(&iroh_raft::sha256(&image)),
        sha256_hex(&info.sha256)
    );
    Ok((info, Bytes::from(image)))
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn print_summary(
    output: Output,
    info: Option<&BackupInfo>,
    summary: &ImageSummary,
    size: usize,
) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(&json!({
            "backup": info.map(info_json),
            "size": size,
            "image": summary,
        }));
    }
    if let Some(info) = info {
        println!("backup:        {}", info.id);
        println!(
            "created:       {} on node {}",
            info.created_unix_ms.map_or("-".into(), when),
            info.node_id.map_or("-".into(), |id| id.to_string())
        );
        println!("handler:       {}", short(info.handler));
        for (key, value) in &info.metadata {
            println!("meta:          {key}={value}");
        }
    }
    println!("index:         {} (term {})", summary.index, summary.term);
    println!("size:          {size} bytes, {} pairs", summary.pairs);
    println!("state hash:    {}", summary.state_hash);
    println!(
        "voters:        {:?}, learners {:?}",
        summary.voters, summary.learners
    );
    println!("configuration: version {}", summary.config_version);
    println!("state machine: {}", summary.state_machine);
    for (kind, sha, version) in &summary.plugins {
        println!(
            "plugin:        {kind} {} {}",
            &sha[..16],
            if version.is_empty() { "-" } else { version }
        );
    }
    Ok(())
}

/// `iroh-raft restore`: seeds a new cluster from a backup image file.
#[derive(Args)]
pub(crate) struct RestoreArgs {
    /// The backup image: an `fs-backup` `ID.snap` file, or what `backup export` wrote.
    #[arg(long, value_name = "PATH")]
    from: PathBuf,
    /// The new node's data directory; it must not hold a node yet.
    #[arg(long)]
    data_dir: PathBuf,
    /// The address the node will serve on (the membership records it): start it later with
    /// `iroh-raft node --data-dir DIR --bind ADDR`.
    #[arg(long, default_value = "127.0.0.1:7001")]
    bind: SocketAddr,
    /// Another root identity of the new cluster (an endpoint id); repeatable. You (your key) are
    /// one in any case.
    #[arg(long = "root", value_name = "ENDPOINT_ID")]
    roots: Vec<iroh::EndpointId>,
    /// Your key, which becomes a root identity (default: `~/.config/iroh-raft/key`).
    #[arg(long, env = "IROH_RAFT_KEY", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

/// `iroh-raft restore`.
pub(crate) async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let image = std::fs::read(&args.from)
        .with_context(|| format!("cannot read the backup {}", args.from.display()))?;
    let name = args
        .from
        .file_stem()
        .map_or("backup".into(), |stem| stem.to_string_lossy().to_string());
    let mut config = NodeConfig::new(&args.data_dir, args.bind);
    let user = iroh_raft::load_user_key(args.key.as_deref())?.public();
    config.root_identities = std::iter::once(user).chain(args.roots).collect();
    let restored = iroh_raft::restore_offline(config, Bytes::from(image), &name)
        .await
        .with_context(|| format!("{} was not restored", args.from.display()))?;
    if args.output == Output::Json {
        return print_json(&json!({
            "node_id": restored.node_id,
            "data_dir": args.data_dir,
            "index": restored.index,
            "image": restored.image,
            "ticket": restored.ticket.to_string(),
        }));
    }
    println!(
        "restored {} ({} pairs, taken at index {}) into {} as node {} of a new cluster",
        args.from.display(),
        restored.image.pairs,
        restored.image.index,
        args.data_dir.display(),
        restored.node_id
    );
    println!(
        "start it with: iroh-raft node --data-dir {} --bind {}",
        args.data_dir.display(),
        args.bind
    );
    println!("join ticket (valid once it runs): {}", restored.ticket);
    Ok(())
}
