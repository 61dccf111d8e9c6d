//! The management protocol end to end on three-node clusters over real iroh endpoints: every
//! operation through `IrohRaftManagementClient`, membership and leadership scenarios, events to
//! several subscribers, and a typed error for every bad request.

use std::time::Duration;

use futures_util::StreamExt;
use iroh_raft::proto::{
    ClusterEvent, LogEntryKind, Member, MemberHealth, MemberRole, MetricsCategory, Operation,
    RaftRole, Reply, RequestError,
};
use iroh_raft::{ClientError, IrohRaftManagementClient, Node, Start};

use crate::support::{TestNode, client, cluster, config, put, start, wait_for};

const LONG: Duration = Duration::from_secs(60);

async fn manage(node: &TestNode) -> IrohRaftManagementClient {
    IrohRaftManagementClient::connect_with_key(crate::support::admin_key(), vec![node.node.addr()])
        .await
        .expect("management client connects")
}

fn leader_of(nodes: &[TestNode]) -> usize {
    let leader = nodes[0].node.status().leader.expect("a leader");
    nodes
        .iter()
        .position(|n| n.node.node_id() == leader)
        .expect("the leader is one of ours")
}

fn request_error(result: Result<impl std::fmt::Debug, ClientError>) -> RequestError {
    match result {
        Err(ClientError::Request(error)) => error,
        other => panic!("expected a request error, got {other:?}"),
    }
}

/// A node waiting to be added by an operator, and its address as a member.
async fn standby(nodes: &[TestNode], node_id: u64) -> (TestNode, Member) {
    let waiting = start(Start::Standby {
        ticket: nodes[0].node.ticket(),
        node_id,
    })
    .await;
    let member = Member {
        endpoint_key: *waiting.node.endpoint().id().as_bytes(),
        addrs: waiting.node.endpoint().bound_sockets(),
        observer: false,
    };
    (waiting, member)
}

async fn shutdown(nodes: Vec<TestNode>) {
    for node in nodes {
        node.node.shutdown().await.expect("clean shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_only_and_maintenance_operation_answers_from_a_follower_client() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster");
    let leader = leader_of(&nodes);
    let follower = (leader + 1) % 3;
    let writer = client(&nodes[follower]).await;
    for i in 0..20 {
        writer
            .write(put(&format!("k{i}"), "v"))
            .await
            .expect("write")
            .1
            .expect("ok");
    }
    // The client only knows a follower; it learns the leader from the cluster status.
    let manage = manage(&nodes[follower]).await;

    let status = manage.get_cluster_status().await.expect("cluster status");
    assert_eq!(
        status.node_id,
        nodes[leader].node.node_id(),
        "answered by the leader"
    );
    assert_eq!(status.raft_state, RaftRole::Leader);
    assert_eq!(status.members.len(), 3);
    assert!(status.healthy);
    for member in &status.members {
        assert_eq!(member.role, MemberRole::Voter);
        assert_eq!(member.health, MemberHealth::Healthy, "{member:?}");
        assert!(
            member.lag.expect("the leader knows the lag") <= 5,
            "{member:?}"
        );
    }

    let health = manage.get_health_status().await.expect("health");
    assert!(health.healthy, "{:?}", health.problems);
    assert_eq!(
        health.node_id,
        nodes[follower].node.node_id(),
        "asked of the follower"
    );
    // The HealthCheck frame: answered by the node itself.
    let probe = client(&nodes[follower]).await;
    let checked = probe.health_check().await.expect("health check");
    assert!(
        checked.healthy && checked.node_id == health.node_id,
        "{checked:?}"
    );
    assert_eq!(checked.leader, Some(nodes[leader].node.node_id()));

    let metrics = manage.get_metrics(Vec::new()).await.expect("metrics");
    let raft = metrics.raft.expect("raft figures");
    assert!(raft.applied.expect("applied") >= 20);
    assert!(metrics.storage.expect("storage").database_bytes > 0);
    assert!(metrics.network.expect("network").bytes_received > 0);
    assert_eq!(metrics.plugin.expect("plugin").state_machine, "kv");
    assert!(metrics.management.expect("management").requests >= 2);
    let only_raft = manage
        .get_metrics(vec![MetricsCategory::Raft])
        .await
        .expect("metrics");
    assert!(only_raft.raft.is_some() && only_raft.storage.is_none());

    let info = manage.get_log_info().await.expect("log info");
    let last = info.last.expect("a last index");
    assert!(last >= 20 && info.entries == last + 1 - info.first.expect("first"));
    assert!(info.storage_bytes > 0);

    let entries = manage.get_log_entries(1, last + 1).await.expect("entries");
    assert_eq!(entries.len() as u64, last);
    assert!(
        entries
            .iter()
            .any(|e| matches!(&e.kind, LogEntryKind::Command(c) if *c == put("k19", "v")))
    );
    assert!(
        entries
            .iter()
            .any(|e| matches!(e.kind, LogEntryKind::Membership { .. }))
    );

    let snapshot = manage.trigger_snapshot().await.expect("snapshot");
    assert!(snapshot.index >= 20 && snapshot.size > 0);
    assert_eq!(
        manage.get_snapshot_info().await.expect("snapshot info"),
        snapshot
    );
    let purged = manage.compact_log(snapshot.index).await.expect("compact");
    assert!(purged >= snapshot.index);
    let info = manage.get_log_info().await.expect("log info");
    assert_eq!(info.purged, Some(purged));

    let create = manage
        .create_backup(None, vec![("when".into(), "nightly".into())])
        .await;
    assert_eq!(request_error(create), RequestError::NoBackupHandler);
    let restore = manage.restore_backup("b1").await;
    assert_eq!(request_error(restore), RequestError::NoBackupHandler);
    let list = manage.list_backups(None).await;
    assert_eq!(request_error(list), RequestError::NoBackupHandler);
    manage.close().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_update_takes_effect_on_every_node_at_one_index() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster");
    let manage = manage(&nodes[0]).await;
    let mut subscriptions = Vec::new();
    for node in &nodes {
        subscriptions.push(node.node.subscribe());
    }
    let mut config = manage.get_configuration().await.expect("config");
    let version = config.version;
    config.limits.fuel_per_entry = 2_000_000;
    config.max_management_frame = 1 << 20;
    let accepted = manage
        .update_configuration(config.clone())
        .await
        .expect("update");
    assert_eq!(accepted.version, version + 1);

    let mut indexes = Vec::new();
    for subscription in &mut subscriptions {
        let event = tokio::time::timeout(LONG, subscription.next())
            .await
            .expect("an event in time");
        match event {
            Some(ClusterEvent::ConfigurationChanged { version, index }) => {
                assert_eq!(version, accepted.version);
                indexes.push(index);
            }
            other => panic!("expected the configuration change, got {other:?}"),
        }
    }
    assert!(indexes.windows(2).all(|w| w[0] == w[1]), "{indexes:?}");
    for node in &nodes {
        let seen = client(node)
            .await
            .request(Operation::GetConfiguration)
            .await
            .expect("config");
        assert_eq!(seen, Reply::Configuration(accepted.clone()));
    }

    // The old version lost: a stale update is a conflict, not a silent overwrite.
    let stale = request_error(manage.update_configuration(config.clone()).await);
    assert_eq!(
        stale,
        RequestError::ConfigConflict {
            expected: version,
            current: version + 1
        }
    );
    // An invalid one names the field.
    let mut invalid = accepted.clone();
    invalid.election_timeout_max_ms = invalid.election_timeout_min_ms;
    match request_error(manage.update_configuration(invalid).await) {
        RequestError::InvalidConfig { field, reason } => {
            assert_eq!(field, "election_timeout_max_ms");
            assert!(reason.contains("greater than"), "{reason}");
        }
        other => panic!("expected an invalid-config error, got {other:?}"),
    }
    // The frame limit is live: a write over the new 1 MiB limit is refused as too large.
    let big = client(&nodes[0]).await;
    let error = big
        .write(put("big", &"x".repeat(2 << 20)))
        .await
        .expect_err("too large");
    assert!(
        matches!(
            error,
            ClientError::Request(RequestError::TooLarge { max, .. }) if max == 1 << 20
        ),
        "{error:?}"
    );
    manage.close().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_added_promoted_observed_demoted_and_removed_leader_included() {
    let mut nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster");
    let manage = manage(&nodes[0]).await;
    let mut events = nodes[0].node.subscribe();

    tracing::info!("add node 10 as a voter: learner first, promoted once caught up");
    let (ten, ten_member) = standby(&nodes, 10).await;
    let added = manage
        .add_member(10, ten_member.clone(), MemberRole::Voter)
        .await
        .expect("add voter");
    assert_eq!(added.role, Some(MemberRole::Voter));
    let mut seen = Vec::new();
    while !seen.contains(&ClusterEvent::MemberRoleChanged {
        node_id: 10,
        role: MemberRole::Voter,
    }) {
        seen.push(
            tokio::time::timeout(LONG, events.next())
                .await
                .expect("event")
                .expect("bus"),
        );
    }
    assert!(
        seen.contains(&ClusterEvent::MemberAdded {
            node_id: 10,
            role: MemberRole::Learner
        }),
        "{seen:?}"
    );
    // Neither the id nor the endpoint can be added twice.
    for (node_id, what) in [
        (10, "node 10 is already a member"),
        (12, "already member 10"),
    ] {
        match request_error(
            manage
                .add_member(node_id, ten_member.clone(), MemberRole::Voter)
                .await,
        ) {
            RequestError::MemberExists(message) => assert!(message.contains(what), "{message}"),
            other => panic!("expected MemberExists, got {other:?}"),
        }
    }

    tracing::info!("add node 11 as an observer: never promoted");
    let (eleven, eleven_member) = standby(&nodes, 11).await;
    let added = manage
        .add_member(11, eleven_member, MemberRole::Observer)
        .await
        .expect("add observer");
    assert_eq!(added.role, Some(MemberRole::Observer));
    client(&nodes[0])
        .await
        .write(put("while-observing", "x"))
        .await
        .expect("write")
        .1
        .expect("ok");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let role_of = |status: &iroh_raft::proto::ClusterStatus, id: u64| {
        status
            .members
            .iter()
            .find(|m| m.node_id == id)
            .map(|m| m.role)
    };
    let status = manage.get_cluster_status().await.expect("status");
    assert_eq!(role_of(&status, 11), Some(MemberRole::Observer));
    assert!(
        status
            .members
            .iter()
            .find(|m| m.node_id == 11)
            .unwrap()
            .lag
            .unwrap()
            <= 5
    );

    tracing::info!("roles: observer -> voter -> observer; voter -> learner is refused");
    let promoted = manage
        .update_member_role(11, MemberRole::Voter)
        .await
        .expect("promote");
    assert_eq!(promoted.role, Some(MemberRole::Voter));
    let refused = request_error(manage.update_member_role(11, MemberRole::Learner).await);
    assert!(
        matches!(refused, RequestError::Refused(ref m) if m.contains("observer")),
        "{refused:?}"
    );
    manage
        .update_member_role(11, MemberRole::Observer)
        .await
        .expect("demote");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = manage.get_cluster_status().await.expect("status");
    assert_eq!(
        role_of(&status, 11),
        Some(MemberRole::Observer),
        "stays demoted"
    );
    manage.remove_member(11).await.expect("remove observer");
    assert_eq!(
        request_error(manage.remove_member(11).await),
        RequestError::UnknownMember { node_id: 11 }
    );
    eleven.node.shutdown().await.expect("shutdown");
    nodes.push(ten);

    tracing::info!("remove the leader: the cluster carries on under a new one");
    let leader = leader_of(&nodes);
    let old_leader = nodes[leader].node.node_id();
    let removed = manage
        .remove_member(old_leader)
        .await
        .expect("remove leader");
    assert_eq!(removed.role, None);
    let gone = nodes.remove(leader);
    wait_for(LONG, "a new leader", || {
        nodes[0]
            .node
            .status()
            .leader
            .is_some_and(|l| l != old_leader)
    })
    .await;
    gone.node.shutdown().await.expect("shutdown");
    let status = manage.get_cluster_status().await.expect("status");
    assert_eq!(status.members.len(), 3);
    assert!(role_of(&status, old_leader).is_none());
    client(&nodes[0])
        .await
        .write(put("after", "removal"))
        .await
        .expect("write")
        .1
        .expect("ok");
    manage.close().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_goes_only_to_a_fresh_voter() {
    let mut nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster");
    let manage = manage(&nodes[0]).await;
    let leader = leader_of(&nodes);
    let leader_id = nodes[leader].node.node_id();

    tracing::info!("a learner target is refused");
    let (learner, learner_member) = standby(&nodes, 20).await;
    manage
        .add_member(20, learner_member, MemberRole::Observer)
        .await
        .expect("add observer");
    let refused = request_error(manage.transfer_leadership(Some(20)).await);
    assert!(
        matches!(refused, RequestError::TransferRefused(ref m) if m.contains("not a voter")),
        "{refused:?}"
    );
    assert_eq!(
        request_error(manage.transfer_leadership(Some(99)).await),
        RequestError::UnknownMember { node_id: 99 }
    );

    tracing::info!("a caught-up voter takes over and the duration is reported");
    let target = nodes[(leader + 1) % 3].node.node_id();
    let moved = manage
        .transfer_leadership(Some(target))
        .await
        .expect("transfer");
    assert_eq!(moved.previous_leader, leader_id);
    assert_eq!(moved.new_leader, target);
    assert!(
        moved.transfer_duration > Duration::ZERO
            && moved.transfer_duration < Duration::from_secs(5)
    );
    let stepped = manage.step_down().await.expect("step down");
    assert_eq!(stepped.previous_leader, target);
    assert_ne!(stepped.new_leader, target);

    tracing::info!("a voter that is down and behind is refused");
    let now_leader = leader_of(&nodes);
    let victim = (0..3).find(|i| *i != now_leader).expect("a follower");
    let victim_id = nodes[victim].node.node_id();
    let down = nodes.remove(victim);
    down.node.shutdown().await.expect("shutdown");
    let writer = client(&nodes[0]).await;
    for i in 0..100 {
        writer
            .write(put(&format!("behind{i}"), "v"))
            .await
            .expect("write")
            .1
            .expect("ok");
    }
    let refused = request_error(manage.transfer_leadership(Some(victim_id)).await);
    assert!(
        matches!(refused, RequestError::TransferRefused(ref m) if m.contains("lagging") || m.contains("not answered")),
        "{refused:?}"
    );
    manage.close().await;
    learner.node.shutdown().await.expect("shutdown");
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_sequence_yields_exactly_its_events_to_two_subscribers() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster");
    let leader = leader_of(&nodes);
    let watcher = (leader + 2) % 3;
    let target = nodes[(leader + 1) % 3].node.node_id();
    let manage = manage(&nodes[leader]).await;
    // Two subscribers on the same follower, over the protocol.
    let watched = client(&nodes[watcher]).await;
    let mut first = watched.subscribe().await.expect("subscribe").into_stream();
    let other = client(&nodes[watcher]).await;
    let mut second = other.subscribe().await.expect("subscribe").into_stream();

    manage
        .transfer_leadership(Some(target))
        .await
        .expect("transfer");
    let (extra, extra_member) = standby(&nodes, 30).await;
    manage
        .add_member(30, extra_member, MemberRole::Voter)
        .await
        .expect("add");
    manage.remove_member(30).await.expect("remove");
    extra.node.shutdown().await.expect("shutdown");
    let mut config = manage.get_configuration().await.expect("config");
    config.snapshot_every = 123_456;
    let accepted = manage.update_configuration(config).await.expect("update");
    let snapshot = match watched
        .request(Operation::TriggerSnapshot)
        .await
        .expect("snapshot")
    {
        Reply::Snapshot(info) => info,
        other => panic!("{other:?}"),
    };

    let term = nodes[watcher].node.status().term;
    let expected_head = [
        ClusterEvent::LeaderElected {
            leader: target,
            term,
        },
        ClusterEvent::MemberAdded {
            node_id: 30,
            role: MemberRole::Learner,
        },
        ClusterEvent::MemberRoleChanged {
            node_id: 30,
            role: MemberRole::Voter,
        },
        ClusterEvent::MemberRemoved { node_id: 30 },
    ];
    for events in [&mut first, &mut second] {
        let mut got = Vec::new();
        while got.len() < 6 {
            let event = tokio::time::timeout(Duration::from_secs(20), events.next())
                .await
                .unwrap_or_else(|_| panic!("timed out; events so far: {got:?}"))
                .expect("stream open")
                .expect("event");
            got.push(event);
        }
        assert_eq!(got[..4], expected_head[..], "{got:?}");
        assert!(
            matches!(got[4], ClusterEvent::ConfigurationChanged { version, .. } if version == accepted.version),
            "{got:?}"
        );
        assert_eq!(
            got[5],
            ClusterEvent::SnapshotCompleted {
                index: snapshot.index,
                size: snapshot.size
            },
            "{got:?}"
        );
        let extra = tokio::time::timeout(Duration::from_secs(1), events.next()).await;
        assert!(
            extra.is_err(),
            "exactly these events, then nothing: {extra:?}"
        );
    }
    manage.close().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_does_not_slow_writes() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster");
    let leader = leader_of(&nodes);
    let manage = manage(&nodes[leader]).await;
    // A subscriber whose QUIC receive window is tiny: it stops the node's sender quickly, so the
    // node-side queue is what overflows.
    let tiny = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(crate::support::admin_key())
        .relay_mode(iroh::RelayMode::Disabled)
        .clear_address_lookup()
        .transport_config(
            iroh::endpoint::QuicTransportConfig::builder()
                .stream_receive_window(iroh::endpoint::VarInt::from_u32(1024))
                .build(),
        )
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("addr")
        .bind()
        .await
        .expect("bind");
    let stuck_client = iroh_raft::Client::connect_from(tiny, nodes[leader].node.addr())
        .await
        .expect("connect");
    let mut stuck = stuck_client.subscribe().await.expect("subscribe");
    let writer = client(&nodes[leader]).await;
    // Each configuration update is an event; far more than a subscriber's queue holds.
    let updates = iroh_raft::events::SUBSCRIBER_QUEUE + 200;
    let started = std::time::Instant::now();
    for i in 0..updates {
        let mut config = manage.get_configuration().await.expect("config");
        config.snapshot_every = 1_000_000 + i as u64;
        manage.update_configuration(config).await.expect("update");
        writer
            .write(put(&format!("k{i}"), "v"))
            .await
            .expect("write")
            .1
            .expect("ok");
    }
    tracing::info!(elapsed = ?started.elapsed(), updates, "writes and updates done with a stuck subscriber");
    // Now read: what QUIC buffered, then word of what was dropped.
    let mut lagged = None;
    let mut received = 0;
    while lagged.is_none() {
        match tokio::time::timeout(LONG, stuck.next())
            .await
            .expect("event")
            .expect("frame")
        {
            Some(ClusterEvent::Lagged { missed }) => lagged = Some(missed),
            Some(_) => received += 1,
            None => panic!("the subscription ended"),
        }
    }
    assert!(lagged.unwrap() > 0);
    assert!(received < updates, "a bounded queue, not everything");
    manage.close().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_typed_errors() {
    let first = start(Start::Init).await;
    let manage = manage(&first).await;
    assert_eq!(
        request_error(manage.update_member_role(42, MemberRole::Voter).await),
        RequestError::UnknownMember { node_id: 42 }
    );
    let info = manage.get_log_info().await.expect("info");
    let last = info.last.expect("last");
    for (start, end, needle) in [
        (5, 5, "empty"),
        (last + 1, last + 10, "ends at"),
        (0, 5000, "at most"),
    ] {
        match request_error(manage.get_log_entries(start, end).await) {
            RequestError::LogRange { reason, .. } => assert!(reason.contains(needle), "{reason}"),
            other => panic!("expected a log-range error, got {other:?}"),
        }
    }
    match request_error(manage.compact_log(last + 100).await) {
        RequestError::CompactBeyondSnapshot { .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        request_error(manage.get_snapshot_info().await),
        RequestError::NoSnapshot
    );
    let mut config = manage.get_configuration().await.expect("config");
    config.set("fuel_per_entry", "5").expect("a number");
    assert!(matches!(
        request_error(manage.update_configuration(config).await),
        RequestError::InvalidConfig { ref field, .. } if field == "fuel_per_entry"
    ));
    assert!(matches!(
        request_error(manage.transfer_leadership(None).await),
        RequestError::TransferRefused(_)
    ));
    manage.close().await;
    first.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_node_refuses_a_second_start_mode() {
    let first = start(Start::Init).await;
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(
        config(dir.path()),
        Start::Standby {
            ticket: first.node.ticket(),
            node_id: 5,
        },
    )
    .await
    .expect("standby starts");
    assert_eq!(node.node_id(), 5);
    node.shutdown().await.expect("shutdown");
    let again = Node::start(config(dir.path()), Start::Join(first.node.ticket()))
        .await
        .err()
        .expect("already a member");
    assert!(
        again.to_string().contains("already holds a cluster member"),
        "{again}"
    );
    first.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_when_its_member_goes_down() {
    let mut nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster");
    let leader = leader_of(&nodes);
    // The client knows every member, the leader first.
    let mut addresses = vec![nodes[leader].node.addr()];
    addresses.extend(
        nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leader)
            .map(|(_, n)| n.node.addr()),
    );
    let manage = IrohRaftManagementClient::connect_with_key(crate::support::admin_key(), addresses)
        .await
        .expect("connect");
    let before = manage.get_cluster_status().await.expect("status");
    assert_eq!(before.node_id, nodes[leader].node.node_id());
    tracing::info!("stopping the leader the client talks to");
    let gone = nodes.remove(leader);
    let gone_id = gone.node.node_id();
    gone.node.shutdown().await.expect("shutdown");
    let after = tokio::time::timeout(LONG, manage.get_cluster_status())
        .await
        .expect("an answer in time")
        .expect("status from another member");
    assert_ne!(after.node_id, gone_id, "answered by a surviving member");
    assert!(after.leader.is_some_and(|l| l != gone_id), "{after:?}");
    let health = manage.get_health_status().await.expect("health");
    assert_ne!(health.node_id, gone_id);
    manage.close().await;

    // A ticket is enough to find the cluster.
    let from_ticket =
        IrohRaftManagementClient::from_ticket(&nodes[0].node.ticket(), crate::support::admin_key())
            .await
            .expect("connect from a ticket");
    let status = from_ticket.get_cluster_status().await.expect("status");
    assert_eq!(
        status.members.len(),
        3,
        "a stopped member is still a member"
    );
    from_ticket.close().await;
    shutdown(nodes).await;
}

/// openraft reads election timeouts only when a raft core starts, so a change makes every node
/// start a new core over its storage; the cluster elects a leader under the new timeouts and
/// nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_timeouts_change_on_every_node_without_a_restart() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster");
    let writer = client(&nodes[0]).await;
    for i in 0..10 {
        writer
            .write(put(&format!("before{i}"), "v"))
            .await
            .expect("write")
            .1
            .expect("ok");
    }
    let mut opened_before = 0;
    for node in &nodes {
        opened_before += raft_connections_opened(node).await;
    }
    let manage = manage(&nodes[0]).await;
    let mut config = manage.get_configuration().await.expect("config");
    config.election_timeout_min_ms = 450;
    config.election_timeout_max_ms = 900;
    manage.update_configuration(config).await.expect("update");
    wait_for(LONG, "every node running the new timeouts", || {
        nodes.iter().all(|n| {
            let running = n.node.raft().config().clone();
            running.election_timeout_min == 450 && running.election_timeout_max == 900
        })
    })
    .await;
    wait_for(LONG, "a leader under the new timeouts", || {
        nodes.iter().all(|n| n.node.status().leader.is_some())
    })
    .await;
    // Writes go on (a follower forwards), and everything written before is still there.
    let (_, outcome) = tokio::time::timeout(LONG, client(&nodes[1]).await.write(put("after", "v")))
        .await
        .expect("a write in time")
        .expect("write");
    outcome.expect("ok");
    for i in 0..10 {
        let answer = client(&nodes[2])
            .await
            .read(
                crate::support::get(&format!("before{i}")),
                iroh_raft::proto::Consistency::Linearizable,
            )
            .await
            .expect("read")
            .expect("query");
        assert_eq!(crate::support::value(&answer), Some(b"v".to_vec()));
    }
    // The new cores went on over the connections the old ones used: nobody dialled again.
    let mut opened_after = 0;
    for node in &nodes {
        opened_after += raft_connections_opened(node).await;
    }
    assert_eq!(
        opened_after, opened_before,
        "raft connections opened (dialled or accepted) across the core restarts"
    );
    manage.close().await;
    shutdown(nodes).await;
}

/// Raft connections `node` has opened or accepted since it started.
async fn raft_connections_opened(node: &TestNode) -> u64 {
    let metrics =
        iroh_raft::MetricsClient::connect_with_key(crate::support::admin_key(), node.node.addr())
            .await
            .expect("metrics client");
    let snapshot = metrics
        .get(vec![MetricsCategory::Network])
        .await
        .expect("network figures");
    metrics.close().await;
    snapshot
        .network
        .expect("network figures")
        .protocols
        .iter()
        .find(|p| p.alpn == "iroh-raft/0")
        .map_or(0, |p| p.connections_opened)
}
