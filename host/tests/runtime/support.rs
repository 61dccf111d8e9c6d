//! Shared set-up: a fjall-backed state store in a temporary directory and a loaded plugin.

use std::sync::Arc;

use bytes::Bytes;
use iroh_raft::proto::PluginLimits;
use iroh_raft::storage::{AppliedMark, FjallStateStore, StateStore};
use iroh_raft::{CompiledStateMachine, EntryOutcome, PluginEngine, StateMachineApplier};

pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) state: Arc<FjallStateStore>,
    pub(crate) plugin: CompiledStateMachine,
    pub(crate) applier: StateMachineApplier,
    next_index: u64,
}

impl Fixture {
    pub(crate) fn new(name: &str, wasm: &[u8]) -> Self {
        Self::with_limits(name, wasm, PluginLimits::default())
    }

    pub(crate) fn with_limits(name: &str, wasm: &[u8], limits: PluginLimits) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = fjall::Database::builder(dir.path())
            .open()
            .expect("open fjall");
        let state = Arc::new(FjallStateStore::open(&db, name, None).expect("open state"));
        let engine = PluginEngine::new(None).expect("engine");
        let plugin = engine.load_state_machine(name, wasm).expect("load plugin");
        let applier = plugin.applier(state.clone(), limits).expect("applier");
        Self {
            _dir: dir,
            state,
            plugin,
            applier,
            next_index: 1,
        }
    }

    /// Applies one batch and commits it; returns the outcomes.
    pub(crate) fn apply(&mut self, commands: &[&[u8]]) -> Vec<EntryOutcome> {
        let entries: Vec<Bytes> = commands.iter().map(|c| Bytes::copy_from_slice(c)).collect();
        let first = self.next_index;
        let outcomes = self.applier.apply(first, &entries).expect("apply");
        self.next_index += entries.len() as u64;
        self.applier
            .commit(&AppliedMark {
                index: self.next_index - 1,
                extra: Vec::new(),
            })
            .expect("commit");
        outcomes
    }

    pub(crate) fn query(&self, request: &[u8]) -> Result<Bytes, iroh_raft::EntryError> {
        let state: Arc<dyn StateStore> = self.state.clone();
        self.plugin
            .reader(state, PluginLimits::default())
            .query(request)
            .expect("query runs")
    }
}

pub(crate) fn ok(outcome: &EntryOutcome) -> &[u8] {
    match outcome {
        Ok(bytes) => bytes,
        Err(e) => panic!("expected success, got: {e}"),
    }
}
