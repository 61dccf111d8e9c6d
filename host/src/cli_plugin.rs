//! `iroh-raft plugin deploy|list|rollback`: the command-line side of deploying plugins through the
//! raft log. Reads files, shows progress, prints what the cluster did; the work is the library's
//! (`Client::deploy_plugin`, `Client::plugins`, `Client::rollback_plugin`).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use iroh_raft::proto::{KindPlugins, PluginKind, PluginOutcome, PluginRecord, PluginRegistry};
use iroh_raft::{Client, sha256_hex};

use super::{Output, Target, print_json};

/// Files larger than this get a progress bar while they upload.
const PROGRESS_ABOVE: usize = 1 << 20;

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
    let client = Client::connect(target.node()?).await?;
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
    let client = Client::connect(target.node()?).await?;
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
                    "version": version, "index": since,
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
    let client = Client::connect(target.node()?).await?;
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
