//! [`StateMachineStore`]: openraft's `RaftStateMachine` over a wasm state-machine plugin and its
//! fjall keyspace.
//!
//! Each `apply` call becomes plugin batches (`apply_batch`) and exactly one commit that writes the
//! data and the new [`AppliedState`] together, so a crash never separates them; responses go out
//! only after that commit. Snapshots are files (`snapshot_builder`, `snapshot_install`,
//! `snapshot_store`); `SnapshotData` is a `tokio::fs::File` positioned at the start.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use fjall::Database;
use futures_util::{Stream, TryStreamExt};
use openraft::OptionalSend;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use tokio::sync::watch;

use super::ApplyResponse;
use super::applied_state::AppliedState;
use super::apply_batch::apply_entries;
use super::snapshot_builder::PluginSnapshotBuilder;
use super::snapshot_install::install;
use super::snapshot_store::SnapshotStore;
use super::{ClusterConfig, LogPayload, RaftStorageError, TypeConfig};
use crate::events::{ClusterEvent, EventBus};
use crate::plugin::{
    CompiledStateMachine, PluginLimits, StateMachineApplier, StateMachineReader, sha256_hex,
};
use crate::store::{FjallStateStore, StateStore};

type C = TypeConfig;

/// The raft state machine: a state-machine plugin applying committed entries to its keyspace.
/// Clones share everything (the instance, the keyspace, the snapshot directory).
#[derive(Clone)]
pub struct StateMachineStore {
    plugin: CompiledStateMachine,
    limits: PluginLimits,
    store: FjallStateStore,
    live: Arc<Mutex<Live>>,
    snapshots: Arc<SnapshotStore>,
    events: EventBus,
    config: Arc<watch::Sender<ClusterConfig>>,
}

/// What applying needs, behind one lock: the plugin instance and where it stands.
struct Live {
    applier: StateMachineApplier,
    applied: AppliedState,
}

impl StateMachineStore {
    /// Opens the state machine of `plugin` in `db`, with its snapshots in `snapshot_dir`, at the
    /// position it had reached.
    pub fn open(
        db: &Database,
        snapshot_dir: &Path,
        plugin: CompiledStateMachine,
        limits: PluginLimits,
    ) -> Result<Self, RaftStorageError> {
        // Commits stay in the journal buffer: the raft log's fsyncs (same journal) make them
        // durable, and openraft re-applies the log (or restores the snapshot) after a crash.
        let store = FjallStateStore::open(db, plugin.name(), None)?;
        let snapshots = Arc::new(SnapshotStore::open(snapshot_dir)?);
        let running = plugin.info().sha256;
        let applied = match store.applied()? {
            Some(mark) => AppliedState::from_mark(&mark)?,
            None => AppliedState::empty(running),
        };
        if applied.plugin_sha256 != running {
            tracing::warn!(
                state_machine = plugin.name(),
                recorded = %sha256_hex(&applied.plugin_sha256),
                running = %sha256_hex(&running),
                "the state machine's data was written by another build of its plugin; \
                 every replica must run the same plugin"
            );
        }
        // The replicated budgets win over the node's own once a configuration was applied.
        let limits = if applied.config.version > 0 {
            applied.config.limits
        } else {
            limits
        };
        let config = Arc::new(watch::Sender::new(applied.config.clone()));
        let applier = plugin.applier(Arc::new(store.clone()), limits)?;
        Ok(Self {
            plugin,
            limits,
            store,
            live: Arc::new(Mutex::new(Live { applier, applied })),
            snapshots,
            events: EventBus::default(),
            config,
        })
    }

    /// The bus this state machine publishes what it applies on (configuration changes, plugin
    /// deploys, snapshots); the node streams it to subscribers.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The cluster configuration as of the last applied entry, updated as entries apply.
    pub fn config(&self) -> watch::Receiver<ClusterConfig> {
        self.config.subscribe()
    }

    /// The current snapshot: the log id it ends at and its size in bytes.
    pub fn current_snapshot(&self) -> Result<Option<(LogIdOf<C>, u64)>, RaftStorageError> {
        let Some((header, file)) = self.snapshots.open_current()? else {
            return Ok(None);
        };
        let size = file
            .metadata()
            .map_err(|e| RaftStorageError::Task(format!("reading the snapshot's size: {e}")))?
            .len();
        Ok(header.last_log_id.map(|id| (id, size)))
    }

    /// Fuel burned by apply calls since start, and instances created.
    pub fn plugin_usage(&self) -> (u64, u64) {
        // A poisoned lock still holds the counters as they were.
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        (
            live.applier.fuel_consumed(),
            live.applier.instances_created(),
        )
    }

    /// The plugin this state machine runs.
    pub fn plugin(&self) -> &CompiledStateMachine {
        &self.plugin
    }

    /// The plugin's keyspace (for reads, [`StateStore::content_hash`], ...).
    pub fn state(&self) -> &FjallStateStore {
        &self.store
    }

    /// A query instance over the committed state. It never touches the applying instance.
    pub fn reader(&self) -> StateMachineReader {
        self.plugin
            .reader(Arc::new(self.store.clone()), self.limits)
    }
}

fn lock(live: &Mutex<Live>) -> Result<std::sync::MutexGuard<'_, Live>, RaftStorageError> {
    // A panic while applying may have left the instance mid-batch: refuse to go on.
    live.lock().map_err(|_| {
        RaftStorageError::Task("the state machine panicked earlier; restart the node".into())
    })
}

impl RaftStateMachine<C> for StateMachineStore {
    type SnapshotData = tokio::fs::File;
    type SnapshotBuilder = PluginSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        let state = match self.store.applied().map_err(RaftStorageError::from)? {
            Some(mark) => AppliedState::from_mark(&mark)?,
            None => AppliedState::default(),
        };
        Ok((state.last_applied, state.last_membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        let mut responders = Vec::new();
        while let Some((entry, responder)) = entries.try_next().await? {
            batch.push(entry);
            responders.push(responder);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let live = self.live.clone();
        let sha256 = self.plugin.info().sha256;
        let (responses, batch, config) = tokio::task::spawn_blocking(move || {
            let mut live = lock(&live)?;
            let live = &mut *live;
            let (applied, responses) =
                apply_entries(&mut live.applier, &live.applied, &batch, sha256)?;
            live.applied = applied;
            Ok::<_, RaftStorageError>((responses, batch, live.applied.config.clone()))
        })
        .await
        .map_err(RaftStorageError::from)??;
        // Committed: announce the configurations that took effect.
        for (entry, response) in batch.iter().zip(&responses) {
            if let (
                openraft::EntryPayload::Normal(LogPayload::Config(accepted)),
                ApplyResponse::None,
            ) = (&entry.payload, response)
            {
                self.events.publish(ClusterEvent::ConfigurationChanged {
                    version: accepted.version,
                    index: entry.log_id.index,
                });
            }
        }
        self.config.send_if_modified(|current| {
            let changed = *current != config;
            *current = config;
            changed
        });
        // Committed: now the clients may hear about it.
        for (responder, response) in responders.into_iter().zip(responses) {
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        PluginSnapshotBuilder::new(
            self.store.clone(),
            self.snapshots.clone(),
            self.plugin.name().to_string(),
            self.plugin.info().sha256,
        )
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: tokio::fs::File,
    ) -> Result<(), io::Error> {
        let file = snapshot.into_std().await;
        let (store, snapshots, live) = (
            self.store.clone(),
            self.snapshots.clone(),
            self.live.clone(),
        );
        let (plugin, limits, meta) = (self.plugin.clone(), self.limits, meta.clone());
        tokio::task::spawn_blocking(move || {
            let mut live = lock(&live)?;
            let applied = install(&store, &snapshots, &meta, file, plugin.info().sha256)?;
            // A fresh instance: nothing the old one kept in guest memory may outlive the data it
            // was computed from.
            let limits = if applied.config.version > 0 {
                applied.config.limits
            } else {
                limits
            };
            live.applier = plugin.applier(Arc::new(store.clone()), limits)?;
            live.applied = applied;
            Ok::<_, RaftStorageError>(live.applied.config.clone())
        })
        .await
        .map_err(RaftStorageError::from)?
        .map(|config| self.config.send_replace(config))?;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<C, tokio::fs::File>>, io::Error> {
        Ok(self
            .snapshots
            .open_current()?
            .map(|(header, file)| SnapshotOf::<C, tokio::fs::File> {
                meta: header.meta(),
                snapshot: tokio::fs::File::from_std(file),
            }))
    }
}
