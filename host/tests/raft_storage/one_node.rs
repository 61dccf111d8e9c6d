//! A one-node openraft cluster on this storage: client writes get the plugin's responses (after
//! the commit), snapshots are built and the log purged, and after a shutdown the node comes back
//! from disk with its data, then keeps serving writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use iroh_raft::proto::{ApplyResponse, LogPayload, Member, PluginLimits, TypeConfig};
use iroh_raft::storage::{RaftStorage, StateMachineStore};
use iroh_raft_kv_types::{Response, decode};
use openraft::async_runtime::WatchReceiver;
use openraft::error::{RPCError, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{LogIdOf, SnapshotOf, VoteOf};
use openraft::{AnyError, Config, Raft, RaftNetworkV2, ServerState};

use crate::support::{C, bounded, get, kv_plugin, put};

/// A network with no peers: a one-node cluster never calls it.
struct NoPeers;

impl RaftNetworkFactory<C> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: u64, _node: &Member) -> Self::Network {
        NoPeers
    }
}

fn unreachable() -> Unreachable<C> {
    Unreachable::new(&AnyError::error("a one-node test has no peers"))
}

impl RaftNetworkV2<C> for NoPeers {
    type SnapshotData = tokio::fs::File;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<C>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        Err(RPCError::Unreachable(unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<C>,
        _option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        Err(RPCError::Unreachable(unreachable()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<C>,
        _snapshot: SnapshotOf<C, tokio::fs::File>,
        _cancel: impl Future<Output = openraft::error::ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        Err(StreamingError::Unreachable(unreachable()))
    }
}

async fn start(dir: &std::path::Path) -> (Raft<TypeConfig, StateMachineStore>, StateMachineStore) {
    let storage =
        RaftStorage::open(dir, kv_plugin(), PluginLimits::default()).expect("open storage");
    let state_machine = storage.state_machine();
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        max_in_snapshot_log_to_keep: 0,
        ..Config::default()
    };
    let (log, sm) = storage.into_parts();
    let raft = Raft::new(
        1,
        Arc::new(config.validate().expect("config")),
        NoPeers,
        log,
        sm,
    )
    .await
    .expect("start raft");
    (raft, state_machine)
}

async fn write(raft: &Raft<TypeConfig, StateMachineStore>, command: bytes::Bytes) -> ApplyResponse {
    raft.client_write(LogPayload::Command(command))
        .await
        .expect("client write")
        .data
}

/// The log id of the last entry this node applied.
fn last_applied(raft: &Raft<TypeConfig, StateMachineStore>) -> LogIdOf<C> {
    raft.metrics()
        .borrow_watched()
        .last_applied
        .expect("something applied")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_node_cluster_writes_snapshots_restarts_and_goes_on() {
    bounded(90, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let wait = Some(Duration::from_secs(10));

        tracing::info!("start and initialize one node");
        let (raft, sm) = start(dir.path()).await;
        raft.initialize(BTreeMap::from([(1, Member::default())]))
            .await
            .expect("initialize");
        raft.wait(wait)
            .state(ServerState::Leader, "leader")
            .await
            .expect("becomes leader");

        tracing::info!("writes answer with the plugin's responses");
        for i in 0..20 {
            let response = write(&raft, put(&format!("k{i}"), &format!("v{i}"))).await;
            let ApplyResponse::Ok(bytes) = response else {
                panic!("expected a plugin response, got {response:?}");
            };
            assert_eq!(
                decode::<Response>(&bytes).expect("kv response"),
                Response::Written
            );
        }
        let failed = write(&raft, bytes::Bytes::from_static(b"\xffnot a command")).await;
        assert!(
            matches!(&failed, ApplyResponse::Failed(message) if !message.is_empty()),
            "{failed:?}"
        );
        assert_eq!(get(&sm, "k19"), Some(b"v19".to_vec()));

        tracing::info!("snapshot and purge");
        // A write returns once applied: nothing else is in flight on a one-node cluster.
        let applied = last_applied(&raft);
        raft.trigger().snapshot().await.expect("trigger snapshot");
        raft.wait(wait)
            .metrics(|m| m.snapshot >= Some(applied), "snapshot built")
            .await
            .expect("snapshot");
        raft.trigger()
            .purge_log(applied.index)
            .await
            .expect("purge");
        raft.wait(wait)
            .metrics(|m| m.purged >= Some(applied), "log purged")
            .await
            .expect("purged");
        let purged = raft.metrics().borrow_watched().purged;
        let after = write(&raft, put("after", "snapshot")).await;
        assert!(matches!(after, ApplyResponse::Ok(_)), "{after:?}");
        let last = last_applied(&raft);

        tracing::info!("shut down and come back from disk");
        raft.shutdown().await.expect("shutdown");
        drop(raft);
        drop(sm);
        let (raft, sm) = start(dir.path()).await;
        raft.wait(wait)
            .state(ServerState::Leader, "leader again")
            .await
            .expect("leader after restart");
        raft.wait(wait)
            .applied_index_at_least(Some(last.index), "applied again")
            .await
            .expect("applied after restart");
        assert_eq!(raft.metrics().borrow_watched().purged, purged);
        assert_eq!(get(&sm, "k0"), Some(b"v0".to_vec()));
        assert_eq!(get(&sm, "after"), Some(b"snapshot".to_vec()));
        let more = write(&raft, put("more", "writes")).await;
        assert!(matches!(more, ApplyResponse::Ok(_)), "{more:?}");
        assert_eq!(get(&sm, "more"), Some(b"writes".to_vec()));
        raft.shutdown().await.expect("shutdown");
    })
    .await;
}
