//! `iroh-raft write|read`: raw state-machine commands and queries, hex in and hex out, for any
//! plugin.

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use iroh_raft::proto::Consistency;

use crate::args::{Output, Target, print_json};

#[derive(Args)]
pub(crate) struct WriteArgs {
    #[command(flatten)]
    target: Target,
    /// The command bytes, hex encoded.
    command: String,
}

#[derive(Args)]
pub(crate) struct ReadArgs {
    #[command(flatten)]
    target: Target,
    /// Read consistency: linearizable, lease or stale.
    #[arg(long, default_value = "linearizable")]
    consistency: Consistency,
    /// The query bytes, hex encoded.
    query: String,
}

/// `iroh-raft write`.
pub(crate) async fn write(WriteArgs { target, command }: WriteArgs) -> anyhow::Result<()> {
    let command = hex::decode(command.trim()).context("the command must be hex")?;
    let client = target.client().await?;
    let written = client.write(Bytes::from(command)).await;
    client.close().await;
    let (index, outcome) = written?;
    let response = outcome.map_err(|e| {
        anyhow::anyhow!("committed at index {index}, but the plugin refused it: {e}")
    })?;
    if target.output == Output::Json {
        return print_json(
            &serde_json::json!({ "index": index, "response": hex::encode(&response) }),
        );
    }
    println!("{}", hex::encode(&response));
    Ok(())
}

/// `iroh-raft read`.
pub(crate) async fn read(args: ReadArgs) -> anyhow::Result<()> {
    let ReadArgs {
        target,
        consistency,
        query,
    } = args;
    let query = hex::decode(query.trim()).context("the query must be hex")?;
    let client = target.client().await?;
    let answer = client.read(Bytes::from(query), consistency).await;
    client.close().await;
    let answer = answer?.map_err(|e| anyhow::anyhow!("the plugin refused the query: {e}"))?;
    if target.output == Output::Json {
        return print_json(&serde_json::json!({ "response": hex::encode(&answer) }));
    }
    println!("{}", hex::encode(&answer));
    Ok(())
}
