//! What the client commands share: the node to talk to (`--node`), the output format (`--output`)
//! and printing a result as JSON.

use clap::{Args, Subcommand, ValueEnum};
use iroh::EndpointAddr;
use iroh_raft::parse_node_address;

#[derive(Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub(crate) enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

#[derive(Args)]
pub(crate) struct Target {
    /// The node to talk to: `<endpoint-id>@<ip:port>` (printed by `iroh-raft node`) or a join
    /// ticket. Repeat it (or separate addresses with spaces in IROH_RAFT_NODE) to name several
    /// members: the first that answers is used, and management commands learn every member from
    /// it and go on through another if one stops answering.
    #[arg(
        long,
        global = true,
        env = "IROH_RAFT_NODE",
        value_parser = parse_node_address,
        value_delimiter = ' '
    )]
    node: Vec<EndpointAddr>,
    /// The identity to speak as: a key file (created, mode 0600, if missing). Without it, the
    /// user's key in `~/.config/iroh-raft/key` (`$XDG_CONFIG_HOME` if set). The access policy
    /// judges every request by this key's endpoint id (`iroh-raft whoami`).
    #[arg(
        long = "key",
        global = true,
        env = "IROH_RAFT_KEY",
        value_name = "FILE"
    )]
    pub(crate) identity: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t)]
    pub(crate) output: Output,
}

impl Target {
    /// The identity requests are sent as.
    pub(crate) fn secret_key(&self) -> anyhow::Result<iroh::SecretKey> {
        Ok(iroh_raft::load_user_key(self.identity.as_deref())?)
    }

    /// A client of the first target node that answers, speaking as the user's identity.
    pub(crate) async fn client(&self) -> anyhow::Result<iroh_raft::Client> {
        let key = self.secret_key()?;
        let mut problems = Vec::new();
        let nodes = self.nodes()?;
        let last = nodes.len() - 1;
        for (position, node) in nodes.into_iter().enumerate() {
            let id = node.id.fmt_short().to_string();
            let connect = iroh_raft::Client::connect_with_key(key.clone(), node);
            // With more to try, a node that does not answer quickly is passed over.
            let answer = if position == last {
                connect.await
            } else {
                match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        problems.push(format!("{id} did not answer within 3 s"));
                        continue;
                    }
                }
            };
            match answer {
                Ok(client) => return Ok(client),
                Err(error) => problems.push(error.to_string()),
            }
        }
        anyhow::bail!("no node answered: {}", problems.join("; "))
    }

    /// The first node named.
    pub(crate) fn node(&self) -> anyhow::Result<EndpointAddr> {
        Ok(self.nodes()?.remove(0))
    }

    /// Every node named, in order.
    pub(crate) fn nodes(&self) -> anyhow::Result<Vec<EndpointAddr>> {
        anyhow::ensure!(
            !self.node.is_empty(),
            "no node given: pass --node ADDRESS (printed by `iroh-raft node`) or set IROH_RAFT_NODE"
        );
        Ok(self.node.clone())
    }
}

/// A command family that talks to one node: the target, then the family's subcommand.
#[derive(Args)]
pub(crate) struct WithTarget<C: Subcommand> {
    #[command(flatten)]
    pub(crate) target: Target,
    #[command(subcommand)]
    pub(crate) command: C,
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
