//! [`SharedRaft`]: the node's handle on its raft core, which the node may replace with a new core
//! over the same storage (to start using new election timeouts, which openraft fixes when a core
//! starts). Every user asks for the current core each time instead of keeping one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openraft::Raft;
use openraft::storage::RaftStateMachine;

use crate::proto::TypeConfig;

/// The current raft core, shared by everything on a node that talks to raft.
pub struct SharedRaft<SM: RaftStateMachine<TypeConfig>> {
    current: Arc<RwLock<Raft<TypeConfig, SM>>>,
    stopping: Arc<AtomicBool>,
    /// When an append from a leader this node accepts last reached it (openraft keeps no such
    /// time on a follower).
    leader_heard: Arc<Mutex<Option<Instant>>>,
}

impl<SM: RaftStateMachine<TypeConfig>> Clone for SharedRaft<SM> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
            stopping: self.stopping.clone(),
            leader_heard: self.leader_heard.clone(),
        }
    }
}

impl<SM: RaftStateMachine<TypeConfig>> std::fmt::Debug for SharedRaft<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedRaft")
    }
}

impl<SM: RaftStateMachine<TypeConfig>> SharedRaft<SM> {
    /// Shares `raft`.
    pub fn new(raft: Raft<TypeConfig, SM>) -> Self {
        Self {
            current: Arc::new(RwLock::new(raft)),
            stopping: Arc::new(AtomicBool::new(false)),
            leader_heard: Arc::new(Mutex::new(None)),
        }
    }

    /// The core in use now (a cheap handle).
    pub fn get(&self) -> Raft<TypeConfig, SM> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `raft` in place of the current core (which the caller has shut down). Refused, with
    /// `raft` handed back for the caller to shut down, once the node is stopping: a core started
    /// while the node stopped (or was removed) must not take over.
    pub fn replace(&self, raft: Raft<TypeConfig, SM>) -> Result<(), Raft<TypeConfig, SM>> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if self.stopping.load(Ordering::SeqCst) {
            return Err(raft);
        }
        *current = raft;
        Ok(())
    }

    /// Marks the node as stopping: a core that stops now is not coming back.
    pub fn stop(&self) {
        // Under the lock, so that a `replace` racing with it either lands first or is refused.
        let _current = self.current.write().unwrap_or_else(|p| p.into_inner());
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether the node is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Notes that an append (entries or a heartbeat) from a leader this node accepts reached it.
    pub fn heard_from_leader(&self) {
        *self.leader_heard.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// How long ago a leader's append last reached this node; `None` if none has since it
    /// started.
    pub fn since_leader_heard(&self) -> Option<Duration> {
        let heard = *self.leader_heard.lock().unwrap_or_else(|p| p.into_inner());
        heard.map(|at| at.elapsed())
    }
}
