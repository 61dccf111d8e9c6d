//! Shared set-up: the bundled kv plugin (compiled once per test binary), storage in a temporary
//! directory, entry builders, and helpers that drive the openraft storage traits directly.

use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{LogPayload, Member, PluginLimits, TypeConfig};
use iroh_raft::storage::{FjallLogStore, RaftStorage, StateMachineStore};
use iroh_raft::{CompiledStateMachine, PluginEngine, bundled};
use iroh_raft_kv_types::{Command, encode};
use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::vote::{RaftLeaderId, RaftLeaderIdExt, RaftVote};
use openraft::{EntryPayload, Membership};

pub(crate) type C = TypeConfig;
type LeaderId = openraft::type_config::alias::LeaderIdOf<C>;

/// Runs `future`, failing the test if it takes longer than `seconds`.
pub(crate) async fn bounded<T>(seconds: u64, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(seconds), future).await {
        Ok(value) => value,
        Err(_) => panic!("test did not finish within {seconds} s"),
    }
}

/// The bundled kv plugin, compiled once for the whole binary.
pub(crate) fn kv_plugin() -> CompiledStateMachine {
    static PLUGIN: OnceLock<CompiledStateMachine> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            let engine = PluginEngine::new(None).expect("engine");
            engine
                .load_state_machine("kv", bundled::KV)
                .expect("load the kv plugin")
        })
        .clone()
}

/// Opens the storage under `dir` with the kv plugin.
pub(crate) fn open(dir: &Path) -> (FjallLogStore, StateMachineStore) {
    RaftStorage::open(dir, kv_plugin(), PluginLimits::default())
        .expect("open raft storage")
        .into_parts()
}

pub(crate) fn log_id(term: u64, index: u64) -> LogIdOf<C> {
    LogIdOf::<C>::new(LeaderId::new_committed(term, 1), index)
}

pub(crate) fn vote(term: u64, node: u64, committed: bool) -> VoteOf<C> {
    VoteOf::<C>::from_leader_id(LeaderId::new(term, node), committed)
}

pub(crate) fn membership(voters: &[u64]) -> Membership<u64, Member> {
    Membership::new_with_defaults(vec![voters.iter().copied().collect()], [])
}

pub(crate) fn membership_entry(term: u64, index: u64, voters: &[u64]) -> EntryOf<C> {
    EntryOf::<C> {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(membership(voters)),
    }
}

pub(crate) fn blank_entry(term: u64, index: u64) -> EntryOf<C> {
    EntryOf::<C> {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

pub(crate) fn command_entry(term: u64, index: u64, command: Bytes) -> EntryOf<C> {
    EntryOf::<C> {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(LogPayload::Command(command)),
    }
}

/// An encoded kv `Put`.
pub(crate) fn put(key: &str, value: &str) -> Bytes {
    Bytes::from(
        encode(&Command::Put {
            key: key.as_bytes(),
            value: value.as_bytes(),
        })
        .expect("encode put"),
    )
}

/// Appends `entries` and waits until the store reports them flushed.
pub(crate) async fn append(store: &mut FjallLogStore, entries: Vec<EntryOf<C>>) {
    let (tx, rx) = C::oneshot();
    store
        .append(entries, IOFlushed::signal(tx))
        .await
        .expect("append");
    rx.await.expect("flush callback").expect("flushed");
}

/// Applies `entries` (no client waiting on them).
pub(crate) async fn apply(sm: &mut StateMachineStore, entries: Vec<EntryOf<C>>) {
    let stream = futures_util::stream::iter(entries.into_iter().map(|entry| Ok((entry, None))));
    sm.apply(stream).await.expect("apply");
}

/// Reads `key` through the plugin's `query` export.
pub(crate) fn get(sm: &StateMachineStore, key: &str) -> Option<Vec<u8>> {
    use iroh_raft_kv_types::{Query, QueryResponse, decode};
    let request = encode(&Query::Get {
        key: key.as_bytes(),
    })
    .expect("encode get");
    let answer = sm
        .reader()
        .expect("reader")
        .query(&request)
        .expect("query runs")
        .expect("query succeeds");
    match decode::<QueryResponse>(&answer).expect("decode answer") {
        QueryResponse::Value(value) => value,
        other => panic!("unexpected answer {other:?}"),
    }
}

/// The kv entries used by several tests: a membership entry at 1, then `puts` at 2.. setting
/// `k<i>` to `v<i>`.
pub(crate) fn kv_log(puts: u64) -> Vec<EntryOf<C>> {
    let mut entries = vec![membership_entry(1, 1, &[1])];
    for i in 0..puts {
        entries.push(command_entry(
            1,
            2 + i,
            put(&format!("k{i}"), &format!("v{i}")),
        ));
    }
    entries
}
