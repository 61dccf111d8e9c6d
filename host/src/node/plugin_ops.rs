//! The leader's side of plugin deploys and rollbacks (a follower routes them to the leader first):
//! refuse early what the log would refuse anyway (an invalid component, the wrong world, the
//! hash already active, nothing to roll back to), then replicate the entry and report what every
//! replica did with it. The decisions themselves are the registry's (`proto/plugin_registry.rs`)
//! and the activation's (`raft/apply/activate.rs`); this file only sequences them.

use super::service::{NodeService, raft_failure};
use crate::hash::sha256;
use crate::proto::{
    ApplyResponse, DeployDecision, DeployEntry, DeployRequest, LogPayload, MAX_PLUGIN_CONFIG,
    PluginKind, PluginOutcome, Reply, RequestError,
};

impl NodeService {
    /// Serves `plugin deploy`.
    pub(crate) async fn deploy(&self, request: DeployRequest) -> Result<Reply, RequestError> {
        if request.config.len() > MAX_PLUGIN_CONFIG {
            return Err(RequestError::PluginRefused(format!(
                "the configuration is {} bytes; the limit is {MAX_PLUGIN_CONFIG}",
                request.config.len()
            )));
        }
        if sha256(&request.wasm) != request.sha256 {
            return Err(RequestError::Malformed(
                "the plugin bytes do not match their sha256".into(),
            ));
        }
        let (registry, _) = self.state_machine.plugins().map_err(unavailable)?;
        // The registry alone decides, as it does on every replica.
        if let DeployDecision::Unchanged(active) =
            registry.decide_deploy(request.kind, &request.sha256, &request.config, None)
        {
            return Ok(Reply::Plugin(PluginOutcome::Unchanged {
                kind: request.kind,
                sha256: active.sha256,
                version: active.version,
                since: active.index,
            }));
        }
        self.validate(&request).await?;
        let entry = DeployEntry {
            kind: request.kind,
            sha256: request.sha256,
            version: request.version,
            config: request.config,
            wasm: request.wasm,
        };
        self.propose(LogPayload::Deploy(entry)).await
    }

    /// Serves `plugin rollback`.
    pub(crate) async fn rollback(&self, kind: PluginKind) -> Result<Reply, RequestError> {
        let (registry, bundled) = self.state_machine.plugins().map_err(unavailable)?;
        let default = bundled.filter(|_| kind == PluginKind::StateMachine);
        let Some(active) = registry.active(kind).or(default.as_ref()).cloned() else {
            return Err(RequestError::PluginRefused(format!(
                "no {kind} plugin was ever deployed, so there is nothing to roll back"
            )));
        };
        registry
            .decide_rollback(kind, &active.sha256, default.as_ref())
            .map_err(|refused| RequestError::PluginRefused(refused.to_string()))?;
        self.propose(LogPayload::Rollback {
            kind,
            from_sha256: active.sha256,
        })
        .await
    }

    /// Serves `plugin list`: the registry as this node has applied it.
    pub(crate) fn plugin_list(&self) -> Result<Reply, RequestError> {
        let (registry, bundled) = self.state_machine.plugins().map_err(unavailable)?;
        Ok(Reply::Plugins { registry, bundled })
    }

    /// Compiles the component against its world here first, so that a bad upload is refused
    /// without a log entry (every replica would refuse it too). The compiled artifact lands in
    /// this node's cache, so activating it here costs no second compile.
    async fn validate(&self, request: &DeployRequest) -> Result<(), RequestError> {
        let plugin = self.state_machine.plugin().map_err(unavailable)?;
        let (kind, wasm) = (request.kind, request.wasm.clone());
        // The budgets every replica will instantiate it under, not the defaults.
        let limits = self.config().limits;
        tokio::task::spawn_blocking(move || {
            let engine = plugin.engine();
            match kind {
                PluginKind::StateMachine => {
                    let candidate = engine
                        .load_state_machine(plugin.name(), &wasm)
                        .map_err(|error| error.to_string())?;
                    candidate.check_limits(&limits).map_err(|error| {
                        format!("it cannot run under the cluster's plugin budgets: {error}")
                    })
                }
                other => engine
                    .validate(other, &wasm)
                    .map(|_| ())
                    .map_err(|error| error.to_string()),
            }
        })
        .await
        .map_err(|e| RequestError::TaskFailed {
            task: "validation".into(),
            reason: e.to_string(),
        })?
        .map_err(RequestError::PluginRefused)
    }

    /// Replicates a deploy or rollback and reports what the replicas did with it.
    async fn propose(&self, payload: LogPayload) -> Result<Reply, RequestError> {
        let response = self
            .raft()
            .client_write(payload)
            .await
            .map_err(|error| raft_failure("the plugin change", error))?;
        match response.data {
            ApplyResponse::Plugin(outcome) => Ok(Reply::Plugin(outcome)),
            ApplyResponse::Failed(reason) => Err(RequestError::PluginRefused(reason)),
            other => Err(RequestError::UnexpectedOutcome {
                index: response.log_id.index,
                outcome: format!("{other:?}"),
            }),
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> RequestError {
    RequestError::Storage {
        what: "its plugin state".into(),
        reason: error.to_string(),
    }
}
