//! `iroh-raft plugin ...`: checking, listing, deploying and rolling back plugin components. Reads
//! files, shows progress, prints what the cluster did; the work is the library's
//! (`PluginEngine::validate`, `Client::deploy_plugin`, `Client::plugins`, `Client::rollback_plugin`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Subcommand;
use iroh_raft::proto::{KindPlugins, PluginKind, PluginOutcome, PluginRecord, PluginRegistry};
use iroh_raft::{PluginEngine, sha256, sha256_hex};

use crate::args::{Output, Target, print_json};

/// Files larger than this get a progress bar while they upload.
const PROGRESS_ABOVE: usize = 1 << 20;

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Check that a .wasm file is a valid plugin of the given kind, without deploying it.
    ///
    /// Exits 0 and prints the component's hash, size and imports if it is; exits 1 with the reason
    /// (not wasm, a core module instead of a component, the wrong world, a forbidden import) if not.
    Validate {
        /// The plugin kind: state-machine, policy or backup.
        #[arg(long)]
        kind: PluginKind,
        /// The component to check.
        file: PathBuf,
    },
    /// List the plugins built into this binary.
    Bundled,
    /// Write a bundled plugin's .wasm to a file, e.g. `plugin export rbac rbac.wasm` to deploy
    /// the rbac policy again with new grants (`plugin deploy --kind policy rbac.wasm --config
    /// grants.json`).
    Export {
        /// The bundled plugin's name (`plugin bundled` lists them).
        name: String,
        /// Where to write it.
        file: PathBuf,
    },
    /// Deploy a plugin to the cluster through the raft log.
    ///
    /// The bytes stream to the node (a follower forwards them to the leader); the leader checks the
    /// component against the world of its kind and replicates it, and every replica activates it
    /// at the same log index, running a state machine's `migrate` in the same atomic batch. A
    /// refused deploy (invalid component, wrong world, `migrate` failed) leaves the previous plugin
    /// active and prints why. Deploying the active plugin again changes nothing.
    Deploy {
        #[command(flatten)]
        target: Target,
        /// The plugin kind: state-machine, policy or backup.
        #[arg(long)]
        kind: PluginKind,
        /// The component (.wasm) to deploy.
        file: PathBuf,
        /// A configuration file deployed with it (a policy reads it through `policy-config`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A version label; the next plugin's `migrate` receives it as `from-version`.
        #[arg(long, default_value = "")]
        version: String,
    },
    /// Show the active plugin of each kind: hash, version, activation index, rollback targets and
    /// history.
    List(Target),
    /// Reactivate the previous plugin of a kind, through the raft log.
    Rollback {
        #[command(flatten)]
        target: Target,
        /// The plugin kind: state-machine, policy or backup.
        #[arg(long)]
        kind: PluginKind,
    },
}

/// `iroh-raft plugin ...`.
pub(crate) async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Validate { kind, file } => validate(kind, &file),
        PluginCommand::Bundled => {
            bundled();
            Ok(())
        }
        PluginCommand::Export { name, file } => export(&name, &file),
        PluginCommand::Deploy {
            target,
            kind,
            file,
            config,
            version,
        } => deploy(target, kind, &file, config.as_deref(), &version).await,
        PluginCommand::List(target) => list(target).await,
        PluginCommand::Rollback { target, kind } => rollback(target, kind).await,
    }
}

/// `plugin export`.
fn export(name: &str, file: &Path) -> anyhow::Result<()> {
    let Some((_, kind, wasm)) = iroh_raft::bundled::ALL.iter().find(|(n, _, _)| *n == name) else {
        let names: Vec<&str> = iroh_raft::bundled::ALL.iter().map(|(n, _, _)| *n).collect();
        anyhow::bail!(
            "no bundled plugin is called `{name}`; the bundled plugins are {}",
            names.join(", ")
        );
    };
    std::fs::write(file, wasm).with_context(|| format!("writing {}", file.display()))?;
    println!(
        "wrote the bundled {kind} plugin `{name}` ({} bytes, sha256 {}) to {}",
        wasm.len(),
        &sha256_hex(&sha256(wasm))[..16],
        file.display()
    );
    Ok(())
}

/// `plugin validate`.
fn validate(kind: PluginKind, file: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let info = PluginEngine::new(None)?
        .validate(kind, &wasm)
        .with_context(|| format!("{} is not a valid {kind} plugin", file.display()))?;
    println!("{}: valid {kind} plugin", file.display());
    println!("  sha256:    {}", sha256_hex(&info.sha256));
    println!("  size:      {} bytes", info.size);
    println!(
        "  migration: {}",
        if info.has_migration {
            "exported"
        } else {
            "none"
        }
    );
    println!("  imports:   {}", info.imports.join(", "));
    Ok(())
}

/// `plugin bundled`.
fn bundled() {
    for (name, kind, wasm) in iroh_raft::bundled::ALL {
        println!(
            "{name:<10} {kind:<14} {:>8} bytes  sha256 {}",
            wasm.len(),
            sha256_hex(&sha256(wasm))
        );
    }
}

/// `plugin deploy`.
pub(crate) async fn deploy(
    target: Target,
    kind: PluginKind,
    file: &Path,
    config: Option<&Path>,
    version: &str,
) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let config = match config {
        Some(path) => Bytes::from(
            std::fs::read(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?,
        ),
        None => Bytes::new(),
    };
    let bar = (wasm.len() > PROGRESS_ABOVE).then(|| {
        let bar = indicatif::ProgressBar::new(wasm.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "uploading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let client = target.client().await?;
    let started = Instant::now();
    let result = client
        .deploy_plugin(kind, Bytes::from(wasm), version, config, &mut |sent, _| {
            if let Some(bar) = &bar {
                bar.set_position(sent);
                if sent == bar.length().unwrap_or(0) {
                    bar.set_message("validating and replicating");
                }
            }
        })
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    client.close().await;
    let outcome = result.with_context(|| {
        format!(
            "the {kind} plugin {} was not deployed; the previous plugin stays active",
            file.display()
        )
    })?;
    print_outcome(&target, &outcome, started.elapsed().as_secs_f64())
}

/// `plugin rollback`.
pub(crate) async fn rollback(target: Target, kind: PluginKind) -> anyhow::Result<()> {
    let client = target.client().await?;
    let started = Instant::now();
    let result = client.rollback_plugin(kind).await;
    client.close().await;
    let outcome = result.with_context(|| format!("the {kind} plugin was not rolled back"))?;
    print_outcome(&target, &outcome, started.elapsed().as_secs_f64())
}

fn print_outcome(target: &Target, outcome: &PluginOutcome, seconds: f64) -> anyhow::Result<()> {
    match outcome {
        PluginOutcome::Activated {
            kind,
            sha256,
            version,
            index,
            from_version,
        } => {
            if target.output == Output::Json {
                return print_json(&serde_json::json!({
                    "changed": true, "kind": kind.as_str(), "sha256": sha256_hex(sha256),
                    "version": version, "index": index, "from_version": from_version,
                    "seconds": seconds,
                }));
            }
            println!(
                "{kind} {} (version {}) activated at index {index}; every replica switches there \
                 (replaced version {}; {:.0} ms)",
                &sha256_hex(sha256)[..16],
                shown(version),
                shown(from_version),
                seconds * 1000.0
            );
        }
        PluginOutcome::Unchanged {
            kind,
            sha256,
            version,
            since,
        } => {
            if target.output == Output::Json {
                return print_json(&serde_json::json!({
                    "changed": false, "kind": kind.as_str(), "sha256": sha256_hex(sha256),
                    "version": version, "index": since, "from_version": null, "seconds": seconds,
                }));
            }
            println!(
                "unchanged: this {kind} plugin ({}, version {}) has been active since index {since}",
                &sha256_hex(sha256)[..16],
                shown(version)
            );
        }
    }
    Ok(())
}

/// `plugin list`.
pub(crate) async fn list(target: Target) -> anyhow::Result<()> {
    let client = target.client().await?;
    let result = client.plugins().await;
    client.close().await;
    let (registry, bundled) = result?;
    if target.output == Output::Json {
        return print_json(&list_json(&registry, bundled.as_ref()));
    }
    for kind in PluginKind::ALL {
        let plugins = registry.kind(kind);
        match plugins.and_then(|p| p.active.as_ref()) {
            Some(active) => println!("{:<14} {}", kind.as_str(), describe(active)),
            None if kind == PluginKind::StateMachine => match &bundled {
                Some(bundled) => println!("{:<14} {} (bundled)", kind.as_str(), describe(bundled)),
                None => println!("{:<14} none", kind.as_str()),
            },
            None => println!("{:<14} none deployed", kind.as_str()),
        }
        if let Some(KindPlugins {
            previous, history, ..
        }) = plugins
        {
            for record in previous.iter().rev() {
                println!("  rollback to  {}", describe(record));
            }
            for activation in history {
                println!(
                    "  history      index {:<8} {:<8} {} version {}",
                    activation.index,
                    activation.cause.as_str(),
                    &sha256_hex(&activation.sha256)[..16],
                    shown(&activation.version)
                );
            }
        }
    }
    Ok(())
}

fn describe(record: &PluginRecord) -> String {
    format!(
        "{} version {} since index {} ({} bytes{})",
        &sha256_hex(&record.sha256)[..16],
        shown(&record.version),
        record.index,
        record.size,
        if record.config.is_empty() {
            String::new()
        } else {
            format!(", config {} bytes", record.config.len())
        }
    )
}

fn shown(version: &str) -> &str {
    if version.is_empty() { "-" } else { version }
}

fn record_json(record: &PluginRecord) -> serde_json::Value {
    serde_json::json!({
        "sha256": sha256_hex(&record.sha256), "version": record.version, "index": record.index,
        "size": record.size, "config_bytes": record.config.len(),
    })
}

fn list_json(registry: &PluginRegistry, bundled: Option<&PluginRecord>) -> serde_json::Value {
    let mut kinds = serde_json::Map::new();
    for kind in PluginKind::ALL {
        let plugins = registry.kind(kind);
        let active = plugins.and_then(|p| p.active.as_ref());
        let bundled = (kind == PluginKind::StateMachine && active.is_none())
            .then_some(bundled)
            .flatten();
        kinds.insert(
            kind.as_str().into(),
            serde_json::json!({
                "active": active.or(bundled).map(record_json),
                "bundled": bundled.is_some(),
                "rollback_to": plugins.map(|p| p.previous.iter().rev().map(record_json).collect::<Vec<_>>()).unwrap_or_default(),
                "history": plugins.map(|p| p.history.iter().map(|a| serde_json::json!({
                    "index": a.index, "cause": a.cause.as_str(),
                    "sha256": sha256_hex(&a.sha256), "version": a.version,
                })).collect::<Vec<_>>()).unwrap_or_default(),
            }),
        );
    }
    serde_json::Value::Object(kinds)
}
