//! `iroh-raft whoami` (the identity the CLI speaks as) and `iroh-raft auth` (the access policy
//! the cluster enforces, and the roles it grants).

use clap::Args;
use iroh_raft::proto::PluginKind;
use iroh_raft::{bundled, sha256, sha256_hex};
use iroh_raft_access_types::RbacConfig;

use crate::args::{Output, Target, print_json};

#[derive(Args)]
pub(crate) struct WhoamiArgs {
    /// The key file to read (created, mode 0600, if missing); default: your key in
    /// `~/.config/iroh-raft/key`.
    #[arg(long, env = "IROH_RAFT_KEY", value_name = "FILE")]
    key: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

/// `iroh-raft whoami`: prints the endpoint id the access policy knows this user by.
pub(crate) fn whoami(args: WhoamiArgs) -> anyhow::Result<()> {
    let path = match args.key {
        Some(path) => path,
        None => iroh_raft::default_user_key_path()?,
    };
    let id = iroh_raft::load_user_key(Some(&path))?.public();
    if args.output == Output::Json {
        return print_json(&serde_json::json!({
            "endpoint_id": id.to_string(),
            "key_file": path.display().to_string(),
        }));
    }
    println!("{id}");
    Ok(())
}

/// The name of a bundled plugin with these bytes' hash, if any.
fn bundled_name(sha: &[u8; 32]) -> Option<&'static str> {
    bundled::ALL
        .iter()
        .find(|(_, kind, wasm)| *kind == PluginKind::Policy && sha256(wasm) == *sha)
        .map(|(name, _, _)| *name)
}

/// `iroh-raft auth`: the active access policy, its version, and (for `rbac`) the grants of its
/// configuration; and the cluster's root identities.
pub(crate) async fn auth(target: Target) -> anyhow::Result<()> {
    let me = target.secret_key()?.public().to_string();
    let client = target.client().await?;
    let result = async {
        let (registry, _) = client.plugins().await?;
        let config = client
            .request(iroh_raft::proto::Operation::GetConfiguration)
            .await?;
        anyhow::Ok((registry, config))
    }
    .await;
    client.close().await;
    let (registry, config) = result?;
    let roots: Vec<String> = match config {
        iroh_raft::proto::Reply::Configuration(config) => {
            config.root_identities.iter().map(hex::encode).collect()
        }
        _ => Vec::new(),
    };
    let Some(active) = registry.active(PluginKind::Policy).cloned() else {
        anyhow::bail!(
            "no access policy is active: every request is denied except the root identities' \
             (deploy one with `iroh-raft plugin deploy --kind policy FILE`)"
        );
    };
    let name = bundled_name(&active.sha256).unwrap_or("custom");
    let rbac = (name == "rbac")
        .then(|| RbacConfig::from_json(&active.config))
        .transpose()
        .map_err(|e| anyhow::anyhow!("the active rbac configuration does not parse: {e}"))?;
    if target.output == Output::Json {
        return print_json(&serde_json::json!({
            "policy": name,
            "sha256": sha256_hex(&active.sha256),
            "version": active.version,
            "since_index": active.index,
            "config_bytes": active.config.len(),
            "rbac": rbac,
            "root_identities": roots,
            "you": me,
        }));
    }
    println!(
        "policy       {name} (sha256 {}, version {:?}, active since index {})",
        &sha256_hex(&active.sha256)[..16],
        active.version,
        active.index
    );
    println!("you          {me}");
    println!("roots        {}", roots.join(", "));
    match rbac {
        Some(rbac) => {
            println!("grants");
            for (n, grant) in rbac.grants.iter().enumerate() {
                let label = grant
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("grant #{}", n + 1));
                let mut line = format!("  {label:<14} {:<66} {}", grant.peer, grant.role);
                if let Some(operations) = &grant.operations {
                    line.push_str(&format!("  only {}", operations.join(",")));
                }
                if let Some(prefixes) = &grant.read_prefixes {
                    line.push_str(&format!("  read under {prefixes:?}"));
                }
                if let Some(prefixes) = &grant.write_prefixes {
                    line.push_str(&format!("  write under {prefixes:?}"));
                }
                if grant.peer.eq_ignore_ascii_case(&me) {
                    line.push_str("  (you)");
                }
                println!("{line}");
            }
        }
        None => println!("config       {} bytes", active.config.len()),
    }
    Ok(())
}
