//! `iroh-raft config get|set`: the replicated cluster configuration.

use anyhow::Context;
use clap::Subcommand;

use super::connect;
use crate::args::{Output, Target, print_json};

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
        /// `name=value` pairs; `config get` lists the names. `root_identities` takes endpoint ids
        /// (hex, comma-separated): the break-glass keys that may always deploy a policy.
        #[arg(required = true)]
        settings: Vec<String>,
    },
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
        let mut fields: std::collections::BTreeMap<&str, serde_json::Value> = config
            .fields()
            .into_iter()
            .map(|(name, value)| (name, value.into()))
            .collect();
        let roots: Vec<String> = config.root_identities.iter().map(hex::encode).collect();
        fields.insert("root_identities", roots.into());
        return print_json(&fields);
    }
    for (name, value) in config.fields() {
        println!("{name:<24} {value}");
    }
    println!("{:<24} {}", "root_identities", config.roots_text());
    Ok(())
}
