//! What `--init` does once the raft core runs: make this node the one member of a new cluster,
//! then propose through the log what every replica must run — the configuration (with the root
//! identities), the initial state machine and the initial access policy.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::Raft;

use super::{InitialPolicy, NodeConfig, NodeError};
use crate::proto::{
    ApplyResponse, ClusterConfig, DeployEntry, LogPayload, Member, PluginKind, TypeConfig,
};
use crate::raft::StateMachineStore;

type C = TypeConfig;

/// Makes `me` the one member of a new cluster and seeds its replicated configuration with this
/// node's flags (when they differ from the defaults).
pub(crate) async fn initialize(
    raft: &Raft<C, StateMachineStore>,
    node_id: u64,
    me: Member,
    config: &NodeConfig,
) -> Result<(), NodeError> {
    let me_key = me.endpoint_key;
    raft.initialize(BTreeMap::from([(node_id, me)]))
        .await
        .map_err(|e| NodeError::raft("initializing the cluster", e))?;
    raft.wait(Some(Duration::from_secs(10)))
        .current_leader(node_id, "leading the new cluster")
        .await
        .map_err(|e| NodeError::raft("waiting to lead the new cluster", e))?;
    let mut roots: Vec<[u8; 32]> = Vec::new();
    for key in config
        .root_identities
        .iter()
        .map(|id| *id.as_bytes())
        .chain([me_key])
    {
        if !roots.contains(&key) {
            roots.push(key);
        }
    }
    let seed = ClusterConfig {
        version: 1,
        root_identities: roots.clone(),
        ..config.cluster_config()
    };
    seed.validate()
        .map_err(|e| NodeError::InitialPlugin(format!("the initial configuration: {e}")))?;
    raft.client_write(LogPayload::Config(seed))
        .await
        .map_err(|e| NodeError::raft("seeding the configuration", e))?;
    // The state machine's bytes go through the log: every replica, whatever it was built with,
    // runs exactly these.
    let wasm = config.initial_state_machine.clone();
    let seed = DeployEntry {
        kind: PluginKind::StateMachine,
        sha256: crate::hash::sha256(&wasm),
        version: String::new(),
        config: bytes::Bytes::new(),
        wasm,
    };
    let response = raft
        .client_write(LogPayload::Deploy(seed))
        .await
        .map_err(|e| NodeError::raft("proposing the initial state machine", e))?;
    if let ApplyResponse::Failed(reason) = response.data {
        return Err(NodeError::InitialPlugin(reason));
    }
    // Then the access policy, so that the cluster judges requests from its first moments.
    let (wasm, policy_config) = initial_policy(&config.initial_policy, node_id, me_key, &roots);
    let seed = DeployEntry {
        kind: PluginKind::Policy,
        sha256: crate::hash::sha256(&wasm),
        version: String::new(),
        config: policy_config,
        wasm,
    };
    let response = raft
        .client_write(LogPayload::Deploy(seed))
        .await
        .map_err(|e| NodeError::raft("proposing the initial access policy", e))?;
    if let ApplyResponse::Failed(reason) = response.data {
        return Err(NodeError::InitialPlugin(format!(
            "the access policy: {reason}"
        )));
    }
    Ok(())
}

/// The policy component and configuration a new cluster starts with: for `rbac`, every root
/// identity (one of them is this node's own key, `node_key`) as `Admin`.
fn initial_policy(
    policy: &InitialPolicy,
    node_id: u64,
    node_key: [u8; 32],
    roots: &[[u8; 32]],
) -> (bytes::Bytes, bytes::Bytes) {
    match policy {
        InitialPolicy::Rbac => {
            let admins = roots.iter().map(|key| {
                let name = if *key == node_key {
                    format!("node {node_id}")
                } else {
                    "root".to_string()
                };
                (name, hex::encode(key))
            });
            let config = iroh_raft_access_types::RbacConfig::admins(admins).to_json();
            (
                bytes::Bytes::from_static(crate::bundled::RBAC),
                bytes::Bytes::from(config),
            )
        }
        InitialPolicy::AllowAll => (
            bytes::Bytes::from_static(crate::bundled::ALLOW_ALL),
            bytes::Bytes::new(),
        ),
        InitialPolicy::Component { wasm, config } => (wasm.clone(), config.clone()),
    }
}
