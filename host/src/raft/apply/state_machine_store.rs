//! [`StateMachineStore`]: openraft's `RaftStateMachine` over a wasm state-machine plugin and its
//! fjall keyspace.
//!
//! Each `apply` call becomes plugin batches (`apply_batch`) and one commit that writes the data and
//! the new [`AppliedState`] together (a deploy or a check point adds one), so a crash never
//! separates them; responses go out only after the commit. Snapshots are files (`snapshot_builder`, `snapshot_install`,
//! `snapshot_store`); `SnapshotData` is a `tokio::fs::File` positioned at the start. Views of the
//! state at the capture points (`captures.rs`) are kept as applies, opens and installs commit.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use fjall::Database;
use futures_util::{Stream, TryStreamExt};
use openraft::OptionalSend;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use tokio::sync::watch;

use crate::events::EventBus;
use crate::hash::sha256_hex;
use crate::plugin::{CompiledStateMachine, StateMachineReader};
use crate::proto::{
    ApplyResponse, ClusterConfig, PluginKind, PluginLimits, PluginRecord, PluginRegistry,
    TypeConfig,
};
use crate::raft::RaftStorageError;
use crate::raft::apply::activate::{Activator, ActiveMachine, default_record, load_active};
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::apply::batch::{already_applied, apply_entries};
use crate::raft::apply::captures::{CaptureError, StateCaptures, take};
use crate::raft::apply::recent_answers::RecentAnswers;
use crate::raft::snapshot::builder::PluginSnapshotBuilder;
use crate::raft::snapshot::install::install;
use crate::raft::snapshot::store::SnapshotStore;
use crate::store::{FjallStateStore, PluginBlobs, StateStore};

type C = TypeConfig;

/// The raft state machine: a state-machine plugin applying committed entries to its keyspace.
/// Clones share everything (the instance, the keyspace, the snapshot directory).
#[derive(Clone)]
pub struct StateMachineStore {
    /// The plugin the node runs before any deploy (the bundled default): its engine compiles
    /// deployed plugins and its name names the keyspace.
    pub(super) default: CompiledStateMachine,
    limits: PluginLimits,
    store: FjallStateStore,
    pub(super) blobs: PluginBlobs,
    live: Arc<Mutex<Live>>,
    /// The query instance of the active plugin; replaced at every activation.
    reader: Arc<Mutex<StateMachineReader>>,
    pub(super) snapshots: Arc<SnapshotStore>,
    events: EventBus,
    config: Arc<watch::Sender<ClusterConfig>>,
    /// Views of the committed state at the capture points, for state hashes.
    captures: Arc<StateCaptures>,
    /// What the node's async tasks read about the plugins, copied out of `live` after every apply
    /// call: `live` is held for a whole apply call (a `migrate` may take seconds), and waiting on
    /// it would block a tokio worker that heartbeats need.
    published: Arc<Mutex<Published>>,
    /// Bumped whenever the active access policy changes: the node's authorizer reloads then.
    policy_generation: Arc<std::sync::atomic::AtomicU64>,
}

/// What applying needs, behind one lock: the active plugin's instance and where it stands.
struct Live {
    machine: ActiveMachine,
    applied: AppliedState,
    recent: RecentAnswers,
}

/// The plugin facts readers need, never held for longer than a copy.
#[derive(Clone)]
pub(super) struct Published {
    plugin: CompiledStateMachine,
    pub(super) registry: PluginRegistry,
    limits: PluginLimits,
    usage: (u64, u64),
}

impl Live {
    fn published(&self, default: PluginLimits) -> Published {
        Published {
            plugin: self.machine.plugin.clone(),
            registry: self.applied.plugins.clone(),
            limits: self.applied.limits(default),
            usage: (
                self.machine.applier.fuel_consumed(),
                self.machine.applier.instances_created(),
            ),
        }
    }
}

impl StateMachineStore {
    /// Opens the state machine in `db`, with its snapshots in `snapshot_dir`, at the position it
    /// had reached, running the state-machine plugin its applied state names — `default` if none
    /// was ever deployed (a brand-new cluster).
    pub fn open(
        db: &Database,
        snapshot_dir: &Path,
        default: CompiledStateMachine,
        limits: PluginLimits,
    ) -> Result<Self, RaftStorageError> {
        // Commits stay in the journal buffer: the raft log's fsyncs (same journal) make them
        // durable, and openraft re-applies the log (or restores the snapshot) after a crash.
        let store = FjallStateStore::open(db, default.name(), None)?;
        let blobs = PluginBlobs::open(db)?;
        let snapshots = Arc::new(SnapshotStore::open(snapshot_dir)?);
        let applied = match store.applied()? {
            Some(mark) => AppliedState::from_mark(&mark)?,
            None => AppliedState::empty(default.info().sha256),
        };
        let plugin = load_active(&default, &blobs, &applied.plugins)?;
        let running = plugin.info().sha256;
        if applied.plugin_sha256 != running {
            tracing::warn!(
                state_machine = plugin.name(),
                recorded = %sha256_hex(&applied.plugin_sha256),
                running = %sha256_hex(&running),
                "the state machine's data was written by another build of its plugin; \
                 every replica must run the same plugin"
            );
        }
        store.watch_hub().set_retain(applied.config.watch_history);
        let config = Arc::new(watch::Sender::new(applied.config.clone()));
        // The replicated budgets win over the node's own once a configuration was applied.
        let applier = plugin.applier(Arc::new(store.clone()), applied.limits(limits))?;
        let reader = plugin.reader(Arc::new(store.clone()), applied.limits(limits));
        let captures = Arc::new(StateCaptures::default());
        if let Some(taken) = take(&store, &applied)? {
            captures.record(vec![taken]);
        }
        let live = Live {
            machine: ActiveMachine { plugin, applier },
            applied,
            recent: RecentAnswers::default(),
        };
        Ok(Self {
            default,
            limits,
            store,
            blobs,
            published: Arc::new(Mutex::new(live.published(limits))),
            policy_generation: Arc::default(),
            live: Arc::new(Mutex::new(live)),
            reader: Arc::new(Mutex::new(reader)),
            snapshots,
            events: EventBus::default(),
            config,
            captures,
        })
    }

    /// The views of the state kept at the capture points.
    pub(crate) fn captures(&self) -> &StateCaptures {
        &self.captures
    }

    /// The applied indexes this state machine keeps a view of (its capture points), ascending:
    /// the last few check points (multiples of the replicated `check_every`) and where its last
    /// apply ended.
    pub fn capture_points(&self) -> Vec<u64> {
        self.captures.points().1
    }

    /// The state hash at capture point `index` (`None`: no view of that index is kept),
    /// computed on a blocking thread and cached. See `ARCHITECTURE.md` for what it covers.
    pub async fn state_hash(&self, index: u64) -> Result<Option<[u8; 32]>, RaftStorageError> {
        match self
            .captures
            .hash_at(index, std::time::Duration::ZERO)
            .await
        {
            Ok(hash) => Ok(Some(hash)),
            Err(CaptureError::NotHeld { .. }) => Ok(None),
            Err(CaptureError::Storage(error)) => Err(error),
        }
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
        self.published().usage
    }

    pub(super) fn published(&self) -> Published {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn publish(&self, live: &Live) {
        self.store
            .watch_hub()
            .set_retain(live.applied.config.watch_history);
        let fresh = live.published(self.limits);
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        if published.registry.active(PluginKind::Policy)
            != fresh.registry.active(PluginKind::Policy)
        {
            self.policy_generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        *published = fresh;
    }

    /// A number that changes whenever the active access policy does (deploy, rollback, snapshot
    /// install): cheap to compare on every request.
    pub fn policy_generation(&self) -> u64 {
        self.policy_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The state-machine plugin active now.
    pub fn plugin(&self) -> Result<CompiledStateMachine, RaftStorageError> {
        Ok(self.published().plugin)
    }

    /// The plugins active now, the rollback targets and the history, with the bundled state
    /// machine that runs where nothing was deployed.
    pub fn plugins(&self) -> Result<(PluginRegistry, Option<PluginRecord>), RaftStorageError> {
        let registry = self.published().registry;
        Ok((
            registry,
            default_record(&self.default, PluginKind::StateMachine),
        ))
    }

    /// The plugin's keyspace (for reads, [`StateStore::content_hash`], ...).
    pub fn state(&self) -> &FjallStateStore {
        &self.store
    }

    /// A new query instance of the active plugin over the committed state. It never touches the
    /// applying instance.
    pub fn reader(&self) -> Result<StateMachineReader, RaftStorageError> {
        let Published { plugin, limits, .. } = self.published();
        Ok(plugin.reader(Arc::new(self.store.clone()), limits))
    }

    /// The query instance the node serves reads with: it always runs the active plugin (an
    /// activation replaces it together with the commit that activates).
    pub fn shared_reader(&self) -> Arc<Mutex<StateMachineReader>> {
        self.reader.clone()
    }

    fn activator(&self) -> Activator<'_> {
        Activator {
            default: &self.default,
            store: &self.store,
            blobs: &self.blobs,
            limits: self.limits,
            reader: &self.reader,
        }
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
        let this = self.clone();
        let (responses, events, config) = tokio::task::spawn_blocking(move || {
            let mut live = lock(&this.live)?;
            let live = &mut *live;
            let last = live.applied.last_applied.as_ref().map(|id| id.index);
            let skip = already_applied(&batch, last);
            // Handed over again (a replaced core's queued call): answer what it answered then.
            let mut responses: Vec<ApplyResponse> = batch[..skip]
                .iter()
                .map(|entry| live.recent.repeat(entry.log_id.index))
                .collect();
            if skip == batch.len() {
                return Ok((responses, Vec::new(), live.applied.config.clone()));
            }
            let applied = apply_entries(
                &mut live.machine,
                &live.applied,
                &batch[skip..],
                &this.activator(),
            )?;
            live.applied = applied.state;
            live.recent
                .record(batch[skip].log_id.index, &applied.responses);
            if applied.replaced {
                this.captures.reset(applied.captures);
            } else {
                this.captures.record(applied.captures);
            }
            this.publish(live);
            responses.extend(applied.responses);
            let config = live.applied.config.clone();
            Ok::<_, RaftStorageError>((responses, applied.events, config))
        })
        .await
        .map_err(RaftStorageError::from)??;
        // Committed: announce what took effect.
        for event in events {
            self.events.publish(event);
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
            self.blobs.clone(),
            self.default.clone(),
        )
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: tokio::fs::File,
    ) -> Result<(), io::Error> {
        let file = snapshot.into_std().await;
        let (this, meta) = (self.clone(), meta.clone());
        tokio::task::spawn_blocking(move || {
            let mut live = lock(&this.live)?;
            // The reader is held across the install so no query pairs one plugin with the other's
            // data.
            let mut reader = this.reader.lock().unwrap_or_else(|p| p.into_inner());
            let applied = install(
                &this.store,
                &this.snapshots,
                &this.blobs,
                &meta,
                file,
                this.default.info().sha256,
            )?;
            let plugin = load_active(&this.default, &this.blobs, &applied.plugins)?;
            // A fresh instance: nothing the old one kept in guest memory may outlive the data it
            // was computed from.
            let limits = applied.limits(this.limits);
            let applier = plugin.applier(Arc::new(this.store.clone()), limits)?;
            *reader = plugin.reader(Arc::new(this.store.clone()), limits);
            live.machine = ActiveMachine { plugin, applier };
            live.applied = applied;
            if let Some(taken) = take(&this.store, &live.applied)? {
                this.captures.reset(vec![taken]);
            }
            this.publish(&live);
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
