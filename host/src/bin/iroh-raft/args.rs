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

/// The environment variable naming the nodes when `--node` is not given.
const NODE_ENV: &str = "IROH_RAFT_NODE";

#[derive(Args)]
pub(crate) struct Target {
    /// The node to talk to: `<endpoint-id>@<ip:port>` (printed by `iroh-raft node`) or a join
    /// ticket. Repeat it, or separate addresses with commas (or spaces, in IROH_RAFT_NODE), to
    /// name several members: the first that answers is used, and management commands learn every
    /// member from it and go on through another if one stops answering. Without it, the
    /// addresses in the environment variable IROH_RAFT_NODE.
    //
    // The variable is read in `nodes`, not through clap's `env`: clap counts an argument set from
    // the environment as given, and printed `--node <ADDRESS>` in the usage line of every
    // argument error as if the user had to type it.
    #[arg(long, global = true, value_name = "ADDRESS")]
    node: Vec<String>,
    /// The identity to speak as: a key file (created, mode 0600, if missing). Without it, the
    /// file the environment variable IROH_RAFT_KEY names, else the user's key in
    /// `~/.config/iroh-raft/key` (`$XDG_CONFIG_HOME` if set). The access policy judges every
    /// request by this key's endpoint id (`iroh-raft whoami`).
    //
    // IROH_RAFT_KEY is read by `load_user_key`, not through clap's `env`, for the reason above.
    #[arg(long = "key", global = true, value_name = "FILE")]
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
            // With more to try, a node that does not answer quickly is passed over.
            let limit = (position != last).then(|| std::time::Duration::from_secs(3));
            let answer = iroh_raft::Client::connect_with_key_within(key.clone(), node, limit).await;
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
        let from_env = std::env::var(NODE_ENV).ok();
        let (given, source): (Vec<&str>, &str) = match (&self.node[..], &from_env) {
            ([], Some(variable)) => (variable.split_whitespace().collect(), NODE_ENV),
            (flags, _) => (flags.iter().map(String::as_str).collect(), "--node"),
        };
        let addresses: Vec<&str> = given
            .into_iter()
            .flat_map(|given| given.split(','))
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .collect();
        anyhow::ensure!(
            !addresses.is_empty(),
            "no node given: pass --node ADDRESS (printed by `iroh-raft node`) or set IROH_RAFT_NODE"
        );
        addresses
            .into_iter()
            .map(|address| {
                parse_node_address(address)
                    .map_err(|reason| anyhow::anyhow!("{source} {address}: {reason}"))
            })
            .collect()
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
