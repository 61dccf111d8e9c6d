//! Faults injected into one node's raft traffic, for tests of what a cluster does when its links
//! fail. Every raft message a node sends passes through its [`LinkFaults`] first: the requests its
//! raft client sends and the replies its raft server sends. So a fault on node A towards node B is
//! a one-way fault on the link A → B: B still reaches A, but nothing of A's reaches B, neither
//! A's requests nor A's answers to B's. A node's raft core, storage and other protocols are
//! untouched: the faults sit inside the raft transport, never in a second one.
//!
//! A lost message is one that never arrives: its sender waits for the answer until its deadline,
//! as over a real cut. On a pipelined append stream (an ordered stream) a lost message breaks the
//! stream, and openraft opens another. A paused node holds every raft message it would send or
//! handle until it resumes; its timers go on, as a process stopped by the scheduler finds them
//! when it runs again.
//!
//! Which messages a loss fraction drops is drawn from a generator seeded by the caller, so a
//! failing test can be replayed with its seed (the order in which messages reach the layer is the
//! machine's). With no fault set the layer costs one atomic load per message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use iroh::EndpointId;

/// What the layer does to the messages this node sends one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkFault {
    /// Every message is lost.
    pub cut: bool,
    /// The fraction of messages lost, from 0.0 (none) to 1.0 (all).
    pub loss: f64,
    /// How long each message is held before it goes.
    pub delay: Duration,
}

/// How many messages the layer has lost, delayed and held (while paused) so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectedFaults {
    /// Messages lost to a cut.
    pub cut: u64,
    /// Messages lost to a loss fraction.
    pub lost: u64,
    /// Messages delayed.
    pub delayed: u64,
    /// Messages held while the node was paused.
    pub held: u64,
}

/// The faults on one node's outgoing raft messages (see the module documentation). Clones share
/// the faults: a test keeps one and hands the node another in its `NodeConfig`.
#[derive(Clone, Default)]
pub struct LinkFaults {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Whether any fault or a pause is set: the one load a message costs when none is.
    active: AtomicBool,
    state: Mutex<State>,
    /// Woken when the node resumes.
    resumed: tokio::sync::Notify,
    cut: AtomicU64,
    lost: AtomicU64,
    delayed: AtomicU64,
    held: AtomicU64,
}

#[derive(Default)]
struct State {
    links: HashMap<[u8; 32], LinkFault>,
    paused: bool,
    /// splitmix64's state.
    draws: u64,
}

/// What becomes of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Deliver,
    Lost,
}

impl std::fmt::Debug for LinkFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("LinkFaults")
            .field("links", &state.links.len())
            .field("paused", &state.paused)
            .finish()
    }
}

impl LinkFaults {
    /// No faults; the losses a fraction draws come from `seed`.
    pub fn seeded(seed: u64) -> Self {
        let faults = Self::default();
        faults.state().draws = seed;
        faults
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.state();
        change(&mut state);
        state
            .links
            .retain(|_, fault| *fault != LinkFault::default());
        self.inner
            .active
            .store(state.paused || !state.links.is_empty(), Ordering::Release);
    }

    /// Sets what happens to the messages this node sends `peer` (replacing what was set).
    pub fn set(&self, peer: EndpointId, fault: LinkFault) {
        self.update(|state| {
            state.links.insert(*peer.as_bytes(), fault);
        });
    }

    /// What happens to the messages this node sends `peer`.
    pub fn get(&self, peer: EndpointId) -> LinkFault {
        self.state()
            .links
            .get(peer.as_bytes())
            .copied()
            .unwrap_or_default()
    }

    /// Loses every message this node sends `peer`.
    pub fn cut(&self, peer: EndpointId) {
        self.set(
            peer,
            LinkFault {
                cut: true,
                ..self.get(peer)
            },
        );
    }

    /// Takes every fault towards `peer` away.
    pub fn heal(&self, peer: EndpointId) {
        self.set(peer, LinkFault::default());
    }

    /// Takes every fault away and resumes the node if paused.
    pub fn heal_all(&self) {
        self.update(|state| {
            state.links.clear();
            state.paused = false;
        });
        self.inner.resumed.notify_waiters();
    }

    /// Holds every raft message this node would send or handle until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.update(|state| state.paused = true);
    }

    /// Lets held messages go.
    pub fn resume(&self) {
        self.update(|state| state.paused = false);
        self.inner.resumed.notify_waiters();
    }

    /// What the layer has done so far.
    pub fn injected(&self) -> InjectedFaults {
        InjectedFaults {
            cut: self.inner.cut.load(Ordering::Relaxed),
            lost: self.inner.lost.load(Ordering::Relaxed),
            delayed: self.inner.delayed.load(Ordering::Relaxed),
            held: self.inner.held.load(Ordering::Relaxed),
        }
    }

    /// Waits while the node is paused.
    pub(crate) async fn unpaused(&self) {
        if !self.inner.active.load(Ordering::Acquire) {
            return;
        }
        let mut counted = false;
        loop {
            let resumed = self.inner.resumed.notified();
            if !self.state().paused {
                return;
            }
            if !counted {
                self.inner.held.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            resumed.await;
        }
    }

    /// Decides the fate of one message to `peer`, after holding it while the node is paused and
    /// for the link's delay.
    pub(crate) async fn send_to(&self, peer: &[u8; 32]) -> Fate {
        if !self.inner.active.load(Ordering::Acquire) {
            return Fate::Deliver;
        }
        self.unpaused().await;
        let fault = self.state().links.get(peer).copied().unwrap_or_default();
        if !fault.delay.is_zero() {
            self.inner.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(fault.delay).await;
        }
        // The link as it is once the message goes: a cut set while it was held applies.
        let (fault, draw) = {
            let mut state = self.state();
            let fault = state.links.get(peer).copied().unwrap_or_default();
            (fault, next_draw(&mut state.draws))
        };
        if fault.cut {
            self.inner.cut.fetch_add(1, Ordering::Relaxed);
            return Fate::Lost;
        }
        if lost(draw, fault.loss) {
            self.inner.lost.fetch_add(1, Ordering::Relaxed);
            return Fate::Lost;
        }
        Fate::Deliver
    }
}

/// splitmix64: the next draw from `state`.
fn next_draw(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether a message with `draw` is lost at loss fraction `loss`.
fn lost(draw: u64, loss: f64) -> bool {
    // The top 53 bits as a fraction in [0, 1).
    ((draw >> 11) as f64 / (1u64 << 53) as f64) < loss
}

/// Waits as a peer that never hears an answer would: until the stream is stopped or reset by the
/// waiting side (its deadline passed), or a minute at most.
pub(crate) async fn never_answer(send: &mut iroh::endpoint::SendStream) {
    let _ = tokio::time::timeout(Duration::from_secs(60), send.stopped()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(byte: u8) -> EndpointId {
        iroh::SecretKey::from_bytes(&[byte; 32]).public()
    }

    #[tokio::test]
    async fn a_cut_loses_every_message_to_that_peer_only_and_heals() {
        let faults = LinkFaults::seeded(7);
        let (a, b) = (peer(1), peer(2));
        faults.cut(a);
        for _ in 0..10 {
            assert_eq!(faults.send_to(a.as_bytes()).await, Fate::Lost);
            assert_eq!(faults.send_to(b.as_bytes()).await, Fate::Deliver);
        }
        assert_eq!(faults.injected().cut, 10);
        faults.heal(a);
        assert_eq!(faults.send_to(a.as_bytes()).await, Fate::Deliver);
        assert!(
            !faults.inner.active.load(Ordering::Acquire),
            "no fault left"
        );
    }

    #[tokio::test]
    async fn a_loss_fraction_loses_about_that_fraction_and_replays_from_its_seed() {
        let draw = |seed| async move {
            let faults = LinkFaults::seeded(seed);
            faults.set(
                peer(1),
                LinkFault {
                    loss: 0.2,
                    ..LinkFault::default()
                },
            );
            let mut fates = Vec::new();
            for _ in 0..5000 {
                fates.push(faults.send_to(peer(1).as_bytes()).await);
            }
            fates
        };
        let first = draw(42).await;
        let lost = first.iter().filter(|f| **f == Fate::Lost).count();
        assert!((800..1200).contains(&lost), "{lost} of 5000 lost at 20%");
        assert_eq!(
            first,
            draw(42).await,
            "the same seed loses the same messages"
        );
        assert_ne!(first, draw(43).await);
    }

    #[tokio::test]
    async fn a_paused_node_holds_its_messages_until_it_resumes() {
        let faults = LinkFaults::seeded(1);
        faults.pause();
        let held = tokio::spawn({
            let faults = faults.clone();
            async move { faults.send_to(peer(1).as_bytes()).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!held.is_finished(), "a paused node sent a message");
        faults.resume();
        let fate = tokio::time::timeout(Duration::from_secs(5), held)
            .await
            .expect("the message went once the node resumed")
            .expect("task");
        assert_eq!(fate, Fate::Deliver);
        assert_eq!(faults.injected().held, 1);
    }

    #[tokio::test]
    async fn a_delay_holds_each_message_and_a_cut_set_meanwhile_applies() {
        let faults = LinkFaults::seeded(1);
        faults.set(
            peer(1),
            LinkFault {
                delay: Duration::from_millis(200),
                ..LinkFault::default()
            },
        );
        let started = std::time::Instant::now();
        let delayed = tokio::spawn({
            let faults = faults.clone();
            async move { faults.send_to(peer(1).as_bytes()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        faults.cut(peer(1));
        assert_eq!(delayed.await.expect("task"), Fate::Lost);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(faults.get(peer(1)).delay, Duration::from_millis(200));
        assert_eq!(faults.injected().delayed, 1);
    }

    #[test]
    fn no_fraction_loses_nothing_and_all_loses_everything() {
        let mut state = 3;
        for _ in 0..1000 {
            let draw = next_draw(&mut state);
            assert!(!lost(draw, 0.0));
            assert!(lost(draw, 1.0));
        }
    }
}
