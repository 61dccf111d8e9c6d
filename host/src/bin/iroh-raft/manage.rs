//! The management commands: each talks to the cluster through `IrohRaftManagementClient`, which
//! sends leader-only operations to the leader. One file per family; this one holds what they share
//! (connecting, closing, printing an optional index).

pub(crate) mod config;
pub(crate) mod events;
pub(crate) mod log;
pub(crate) mod members;
pub(crate) mod status;

use iroh_raft::IrohRaftManagementClient;

use crate::args::Target;

pub(crate) async fn connect(target: &Target) -> anyhow::Result<IrohRaftManagementClient> {
    Ok(IrohRaftManagementClient::connect_with_key(target.secret_key()?, target.nodes()?).await?)
}

/// Connects, runs `work`, closes the connections whatever `work` returned.
pub(crate) async fn with_client<T>(
    target: &Target,
    work: impl AsyncFnOnce(&IrohRaftManagementClient) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let client = connect(target).await?;
    let result = work(&client).await;
    client.close().await;
    result
}

pub(crate) fn opt(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}
