//! Watches over real iroh endpoints: a prefix watch sees exactly the puts and deletes of its keys,
//! in log order, while two clients write through two members, across a leader transfer, after
//! the member serving it is shut down (the management client resumes on another one), and when
//! a watcher resumes by hand on another member from where it stopped. A watch from before the
//! horizon is refused with the oldest index; a watcher that never reads ends "fell behind" and the
//! cluster goes on serving. A member cut off from the leader ends its watches, and refuses new
//! ones, instead of falling silent.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use iroh_raft::proto::{RequestError, WatchChange, WatchEnd, WatchRequest};
use iroh_raft::{Client, ClientError, IrohRaftManagementClient};
use iroh_raft_kv_types::{Command, Response};

use crate::support::{admin_key, client, cluster, configuration, retry_config};

/// What a watcher should see: (index, key, value or `None` for a delete), in index order.
type Expected = BTreeMap<u64, (Vec<u8>, Option<Vec<u8>>)>;

fn encode(command: &Command<'_>) -> Bytes {
    Bytes::from(postcard::to_allocvec(command).expect("encode"))
}

/// Writes `ops` commands through `client`: puts to `w/<t>/<i % 7>` and `other/<i>`, and deletes of
/// `w/<t>/…` keys (some of which do not exist, and so change nothing). Returns what a watcher on
/// `w/` must see.
async fn write(client: Client, t: usize, ops: usize) -> Expected {
    let mut expected = Expected::new();
    for i in 0..ops {
        let key = format!("w/{t}/{}", i % 7).into_bytes();
        let value = format!("{t}-{i}").into_bytes();
        let (command, watched) = match i % 4 {
            0 | 1 => (
                Command::Put {
                    key: &key,
                    value: &value,
                },
                true,
            ),
            2 => (Command::Delete { key: &key }, true),
            _ => (
                Command::Put {
                    key: b"other/x",
                    value: &value,
                },
                false,
            ),
        };
        let (index, outcome) = client.write(encode(&command)).await.expect("write");
        let response: Response =
            postcard::from_bytes(&outcome.expect("applied")).expect("a kv response");
        match (command, response) {
            (Command::Put { .. }, Response::Written) if watched => {
                expected.insert(index, (key.clone(), Some(value.clone())));
            }
            (Command::Delete { .. }, Response::Deleted { existed: true }) => {
                expected.insert(index, (key.clone(), None));
            }
            _ => {}
        }
    }
    expected
}

fn as_tuple(change: WatchChange) -> (u64, (Vec<u8>, Option<Vec<u8>>)) {
    (
        change.index,
        (change.key.to_vec(), change.value.map(|v| v.to_vec())),
    )
}

/// The next change of a stream, within 30 s.
async fn next_change(
    stream: &mut futures_util::stream::BoxStream<'static, Result<WatchChange, ClientError>>,
) -> WatchChange {
    tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("a change within 30 s")
        .expect("the watch goes on")
        .expect("a change")
}

/// The first change a watch opened with [`Client::watch`] delivers next.
async fn first_change(watch: &mut iroh_raft::WatchStream) -> WatchChange {
    loop {
        let changes = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("a change within 30 s")
            .expect("the watch goes on");
        if let Some(change) = changes.into_iter().next() {
            return change;
        }
    }
}

/// Collects changes from `stream` until one at `last` arrives, failing on a repeat.
async fn collect_until(
    stream: &mut futures_util::stream::BoxStream<'static, Result<WatchChange, ClientError>>,
    seen: &mut Expected,
    last: u64,
) {
    while seen.last_key_value().is_none_or(|(index, _)| *index < last) {
        let change = next_change(stream).await;
        let (index, change) = as_tuple(change);
        assert!(
            seen.insert(index, change).is_none(),
            "index {index} delivered twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_watch_sees_exactly_its_changes_in_order_across_a_transfer_a_lost_member_and_a_resume()
 {
    let mut nodes = cluster(3).await;
    let manage = IrohRaftManagementClient::connect_with_key(
        admin_key(),
        nodes.iter().map(|n| n.node.addr()).collect(),
    )
    .await
    .expect("management client");
    // The management client's watch is served by the first member, nodes[0]; resumes elsewhere.
    let mut followed = manage
        .watch(WatchRequest::prefix("w/", Some(1)))
        .await
        .expect("watch opens");
    // A second watcher, by hand on nodes[2].
    let by_hand = client(&nodes[2]).await;
    let mut watch = by_hand
        .watch(WatchRequest::prefix("w/", Some(1)))
        .await
        .expect("watch opens");

    let writers = [1, 2].map(|n| {
        let node = nodes[n].node.addr();
        tokio::spawn(async move {
            let client = Client::connect_with_key(admin_key(), node)
                .await
                .expect("connect");
            write(client, n, 120).await
        })
    });
    let mut seen_followed = Expected::new();
    let mut seen_by_hand = Expected::new();

    // Some changes arrive; then leadership moves.
    while seen_followed.len() < 20 {
        let change = followed.next().await.expect("goes on").expect("a change");
        let (index, change) = as_tuple(change);
        assert!(seen_followed.insert(index, change).is_none());
    }
    let leader = nodes[0].node.status().leader.expect("a leader");
    let target = nodes
        .iter()
        .map(|n| n.node.node_id())
        .find(|id| *id != leader && *id != nodes[0].node.node_id())
        .expect("a target");
    manage
        .transfer_leadership(Some(target))
        .await
        .expect("transfer");

    // The hand watcher reads a little, stops, and resumes on nodes[1] where it stopped.
    while seen_by_hand.len() < 30 {
        for change in watch.next().await.expect("changes") {
            let (index, change) = as_tuple(change);
            assert!(seen_by_hand.insert(index, change).is_none());
        }
    }
    let resume_from = watch.resume_from();
    assert!(seen_by_hand.keys().all(|index| *index < resume_from));
    drop(watch);
    let elsewhere = client(&nodes[1]).await;
    let resumed = elsewhere
        .watch(WatchRequest::prefix("w/", Some(resume_from)))
        .await
        .expect("resumes on another member");
    assert_eq!(resumed.start().from_index, resume_from);
    let mut resumed = resumed.into_stream();

    // The member serving the followed watch goes away: the watch resumes on another member.
    let first = nodes.remove(0);
    first.node.shutdown().await.expect("shutdown");

    let mut expected = Expected::new();
    for writer in writers {
        expected.extend(writer.await.expect("writer"));
    }
    let last = *expected.keys().last().expect("writes");
    collect_until(&mut followed, &mut seen_followed, last).await;
    collect_until(&mut resumed, &mut seen_by_hand, last).await;
    assert_eq!(seen_followed, expected, "the followed watch");
    assert_eq!(seen_by_hand, expected, "the watch resumed by hand");
    assert!(expected.len() > 100, "{} changes", expected.len());
    manage.close().await;
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_before_the_horizon_is_refused_and_one_that_never_reads_falls_behind() {
    let nodes = cluster(3).await;
    let writer = client(&nodes[0]).await;
    let mut config = configuration(&writer).await;
    config.watch_history = 50;
    retry_config(&writer, config).await;
    let value = vec![7u8; 16 << 10];
    let mut indexes = Vec::new();
    for i in 0..60 {
        let key = format!("k/{i}");
        let (index, _) = writer
            .write(encode(&Command::Put {
                key: key.as_bytes(),
                value: &value,
            }))
            .await
            .expect("write");
        indexes.push(index);
    }
    let applied = nodes[0].node.status().applied.expect("applied");
    let watcher = client(&nodes[0]).await;
    let oldest = match watcher.watch(WatchRequest::prefix("", Some(1))).await {
        Err(ClientError::Request(RequestError::Compacted { requested, oldest })) => {
            assert_eq!(requested, 1);
            oldest
        }
        other => panic!("expected a compacted refusal, got {other:?}"),
    };
    // The last 50 indexes are kept (the node may have applied one more since `applied`).
    assert!(
        oldest >= applied + 1 - 50 && oldest <= applied + 1 - 50 + 5,
        "{oldest}"
    );
    assert!(matches!(
        watcher
            .watch(WatchRequest::prefix("", Some(oldest - 1)))
            .await,
        Err(ClientError::Request(RequestError::Compacted { .. }))
    ));
    watcher
        .watch(WatchRequest::prefix("", Some(oldest)))
        .await
        .expect("the oldest index held is watched");
    // Back to a long history, then a watcher that never reads while 16 KiB values pour in.
    let mut config = configuration(&writer).await;
    config.watch_history = 10_000;
    retry_config(&writer, config).await;
    let mut stuck = watcher
        .watch(WatchRequest::prefix("s/", None))
        .await
        .expect("watch opens");
    let mut written = Vec::new();
    for i in 0..1200 {
        let key = format!("s/{i}");
        let (index, _) = writer
            .write(encode(&Command::Put {
                key: key.as_bytes(),
                value: &value,
            }))
            .await
            .expect("writes go on while a watcher is stuck");
        written.push(index);
    }
    // Now it reads: every change up to where it fell behind, then the end.
    let mut delivered = Vec::new();
    let at = loop {
        match tokio::time::timeout(Duration::from_secs(30), stuck.next()).await {
            Ok(Ok(changes)) => delivered.extend(changes.iter().map(|c| c.index)),
            Ok(Err(ClientError::WatchEnded(WatchEnd::FellBehind { at }))) => break at,
            other => panic!("expected changes or the end, got {other:?}"),
        }
    };
    let before: Vec<u64> = written.iter().copied().filter(|i| *i < at).collect();
    assert_eq!(delivered, before, "everything before index {at}, in order");
    assert!(written.contains(&at) && before.len() < written.len());
    let message = WatchEnd::FellBehind { at }.to_string();
    assert!(
        message.contains(&format!("resume from index {at}")),
        "{message}"
    );
    // It resumes from there and loses nothing.
    let resumed = watcher
        .watch(WatchRequest::prefix("s/", Some(at)))
        .await
        .expect("resumes");
    let mut resumed = resumed.into_stream();
    let rest: Vec<u64> = written.iter().copied().filter(|i| *i >= at).collect();
    let mut got = Vec::new();
    while got.len() < rest.len() {
        let change = next_change(&mut resumed).await;
        got.push(change.index);
    }
    assert_eq!(got, rest);
    let (_, outcome) = writer
        .write(encode(&Command::Put {
            key: b"after",
            value: b"1",
        }))
        .await
        .expect("the cluster serves on");
    outcome.expect("applied");
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_takes_nothing_for_the_stall_limit_is_let_go_and_loses_nothing_watching_again()
 {
    let node = crate::support::start(iroh_raft::Start::Init).await;
    let writer = client(&node).await;
    let watcher = client(&node).await;
    let mut stalled = watcher
        .watch(WatchRequest::prefix("s/", None))
        .await
        .expect("watch opens");
    // More than the stream's flow-control window holds, less than the watch's queue: the node
    // blocks writing to it, and nothing falls behind.
    let value = vec![1u8; 16 << 10];
    let mut written = Vec::new();
    for i in 0..400 {
        let key = format!("s/{i}");
        let (index, outcome) = writer
            .write(encode(&Command::Put {
                key: key.as_bytes(),
                value: &value,
            }))
            .await
            .expect("write");
        outcome.expect("applied");
        written.push(index);
    }
    tokio::time::sleep(iroh_raft::net::WATCH_STALL_LIMIT + Duration::from_secs(3)).await;
    let mut delivered = Vec::new();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(30), stalled.next()).await {
            Ok(Ok(changes)) => delivered.extend(changes.iter().map(|c| c.index)),
            Ok(Err(error)) => break error,
            Err(_) => panic!("the stalled watch neither delivered nor ended"),
        }
    };
    assert!(
        matches!(&ended, ClientError::Connect(m) if m.contains("took nothing for 30 s")),
        "{ended}"
    );
    // What arrived before the node let go (a reset may discard what was still in flight) is a
    // prefix of what was written, and watching again from where it stopped loses nothing.
    assert!(delivered.len() < written.len(), "{}", delivered.len());
    assert_eq!(delivered, written[..delivered.len()]);
    let resume_from = stalled.resume_from();
    assert!(
        ended
            .to_string()
            .contains(&format!("from index {resume_from}")),
        "{ended}"
    );
    let mut again = watcher
        .watch(WatchRequest::prefix("s/", Some(resume_from)))
        .await
        .expect("watch again")
        .into_stream();
    while delivered.len() < written.len() {
        let change = next_change(&mut again).await;
        delivered.push(change.index);
    }
    assert_eq!(delivered, written);
    node.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_ends_its_watches_and_the_management_client_resumes_elsewhere() {
    let nodes = cluster(3).await;
    let Watched {
        victim,
        others,
        manage,
        mut followed,
        raw_client: _raw_client,
        mut raw,
        writer,
    } = watched_through_a_follower(&nodes, "r/").await;
    let victim_id = nodes[victim].node.node_id();
    let (first, _) = writer
        .write(encode(&Command::Put {
            key: b"r/1",
            value: b"a",
        }))
        .await
        .expect("write");
    let change = next_change(&mut followed).await;
    assert_eq!(change.index, first);

    IrohRaftManagementClient::connect_with_key(admin_key(), vec![nodes[others[0]].node.addr()])
        .await
        .expect("manage")
        .remove_member(victim_id)
        .await
        .expect("remove the follower");
    // The removed member says why the watch ended, once it knows.
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(30), raw.next())
            .await
            .expect("the removed member ends its watch in time")
        {
            Ok(_) => continue,
            Err(error) => break error,
        }
    };
    assert!(
        matches!(ended, ClientError::WatchEnded(WatchEnd::Removed)),
        "{ended:?}"
    );
    // The management client's watch goes on through another member, losing nothing.
    let (second, _) = writer
        .write(encode(&Command::Put {
            key: b"r/2",
            value: b"b",
        }))
        .await
        .expect("write");
    let change = next_change(&mut followed).await;
    assert_eq!((change.index, &change.key[..]), (second, &b"r/2"[..]));
    manage.close().await;
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

/// A prefix watched through a follower, the victim: by a management client that lists it first
/// (so it serves the watch) and by a plain client of it; and a client of another member to write.
struct Watched {
    victim: usize,
    others: Vec<usize>,
    manage: IrohRaftManagementClient,
    followed: futures_util::stream::BoxStream<'static, Result<WatchChange, ClientError>>,
    raw_client: Client,
    raw: iroh_raft::WatchStream,
    writer: Client,
}

async fn watched_through_a_follower(
    nodes: &[crate::support::TestNode],
    prefix: &'static str,
) -> Watched {
    let leader = nodes[0].node.status().leader.expect("a leader");
    let victim = nodes
        .iter()
        .position(|n| n.node.node_id() != leader)
        .expect("a follower");
    let others: Vec<_> = (0..3).filter(|i| *i != victim).collect();
    // Served by the victim: it comes first in the list.
    let manage = IrohRaftManagementClient::connect_with_key(
        admin_key(),
        std::iter::once(victim)
            .chain(others.iter().copied())
            .map(|i| nodes[i].node.addr())
            .collect(),
    )
    .await
    .expect("management client");
    let followed = manage
        .watch(WatchRequest::prefix(prefix, None))
        .await
        .expect("watch opens");
    let raw_client = client(&nodes[victim]).await;
    let raw = raw_client
        .watch(WatchRequest::prefix(prefix, None))
        .await
        .expect("watch opens");
    let writer = client(&nodes[others[0]]).await;
    Watched {
        victim,
        others,
        manage,
        followed,
        raw_client,
        raw,
        writer,
    }
}

/// Bug: a watch on a member cut off from the leader stayed silent while the others committed
/// changes to its keys. Now the member ends its watches once it has been out of touch for two
/// election timeouts, refuses new ones, and the management client resumes on another member,
/// losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_from_the_leader_ends_its_watches_and_the_management_client_resumes_elsewhere()
 {
    let nodes = cluster(3).await;
    let Watched {
        victim,
        others,
        manage,
        mut followed,
        raw_client,
        mut raw,
        writer,
    } = watched_through_a_follower(&nodes, "c/").await;
    let put = |key: &'static [u8]| encode(&Command::Put { key, value: b"v" });
    let (first, _) = writer.write(put(b"c/1")).await.expect("write");
    assert_eq!(next_change(&mut followed).await.index, first);
    let seen = first_change(&mut raw).await;
    assert_eq!(seen.index, first);
    // Idle for longer than the out-of-touch limit (two election timeouts): heartbeats keep the
    // follower in touch, so its watch goes on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle, _) = writer.write(put(b"c/idle")).await.expect("write");
    assert_eq!(next_change(&mut followed).await.index, idle);
    let seen = first_change(&mut raw).await;
    assert_eq!(seen.index, idle);

    // Cut the victim's raft links, both ways; its management endpoint stays reachable.
    let victim_id = nodes[victim].node.endpoint().id();
    for i in &others {
        nodes[*i].node.link_faults().cut(victim_id);
        nodes[victim]
            .node
            .link_faults()
            .cut(nodes[*i].node.endpoint().id());
    }
    let (second, _) = writer.write(put(b"c/2")).await.expect("write");
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(30), raw.next())
            .await
            .expect("the cut-off member ends its watch in time")
        {
            Ok(changes) => assert!(changes.is_empty(), "the cut-off member saw {changes:?}"),
            Err(error) => break error,
        }
    };
    assert!(
        matches!(ended, ClientError::WatchEnded(WatchEnd::LostLeader { .. })),
        "{ended:?}"
    );
    assert!(
        ended.to_string().contains("out of touch with a leader"),
        "{ended}"
    );
    // A new watch there is refused with the reason, after waiting out an election's time.
    let refused = raw_client
        .watch(WatchRequest::prefix("c/", None))
        .await
        .expect_err("a watch on a cut-off member is refused");
    assert!(
        matches!(
            refused,
            ClientError::Request(RequestError::OutOfTouch { .. })
        ),
        "{refused:?}"
    );
    // The management client's watch went on through another member, losing nothing.
    let change = next_change(&mut followed).await;
    assert_eq!((change.index, &change.key[..]), (second, &b"c/2"[..]));
    let (third, _) = writer.write(put(b"c/3")).await.expect("write");
    assert_eq!(next_change(&mut followed).await.index, third);
    manage.close().await;
    for node in &nodes {
        node.node.link_faults().heal_all();
    }
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

/// Deploys the bundled rbac policy granting `grants` (name, peer key, role).
async fn deploy_rbac(admin: &Client, grants: &[(&str, &iroh::SecretKey, &str)]) {
    let grants: Vec<_> = grants
        .iter()
        .map(|(name, key, role)| {
            serde_json::json!({ "name": name, "peer": key.public().to_string(), "role": role })
        })
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({ "grants": grants })).expect("json");
    admin
        .deploy_plugin(
            iroh_raft::proto::PluginKind::Policy,
            Bytes::from_static(iroh_raft::bundled::RBAC),
            "",
            Bytes::from(config),
            &mut |_, _| {},
        )
        .await
        .expect("policy deploy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_revokes_the_watchers_read_ends_its_open_watch() {
    let node = crate::support::start(iroh_raft::Start::Init).await;
    let admin = client(&node).await;
    let reader_key = iroh::SecretKey::from_bytes(&[0x5e; 32]);
    deploy_rbac(
        &admin,
        &[
            ("admin", &admin_key(), "admin"),
            ("reader", &reader_key, "observer"),
        ],
    )
    .await;
    let reader = Client::connect_with_key(reader_key.clone(), node.node.addr())
        .await
        .expect("connect");
    let mut watch = reader
        .watch(WatchRequest::prefix("p/", None))
        .await
        .expect("an observer may watch");
    let (index, _) = admin
        .write(encode(&Command::Put {
            key: b"p/1",
            value: b"x",
        }))
        .await
        .expect("write");
    let changes = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("in time")
        .expect("a change");
    assert_eq!(changes[0].index, index);
    // The reader's grant goes: its open watch ends, denied, within a few seconds.
    deploy_rbac(&admin, &[("admin", &admin_key(), "admin")]).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(error) = watch.next().await {
                return error;
            }
        }
    })
    .await
    .expect("the watch ends once the policy changed");
    assert!(
        matches!(&ended, ClientError::Request(RequestError::Denied { operation, .. }) if operation == "data.read"),
        "{ended:?}"
    );
    node.node.shutdown().await.expect("shutdown");
}

/// Watch requests no CLI would send (an inverted range, an empty one, a 1 MiB key, indexes 0 and
/// `u64::MAX`) and an out-of-range `watch_history`: each is answered, none stops the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_watch_requests_and_a_bad_watch_history_are_answered_and_the_node_serves_on() {
    let node = crate::support::start(iroh_raft::Start::Init).await;
    let c = client(&node).await;
    let inverted = WatchRequest {
        start: Bytes::from_static(b"z"),
        end: Some(Bytes::from_static(b"a")),
        from_index: None,
    };
    let empty = WatchRequest {
        start: Bytes::new(),
        end: Some(Bytes::new()),
        from_index: Some(1),
    };
    let huge = WatchRequest::prefix(vec![b'k'; 1 << 20], None);
    let future = WatchRequest::prefix("", Some(u64::MAX));
    let mut open = Vec::new();
    for request in [inverted, empty, huge, future] {
        open.push(
            c.watch(request)
                .await
                .expect("an odd watch is still a watch"),
        );
    }
    match c.watch(WatchRequest::prefix("", Some(0))).await {
        Err(ClientError::Request(RequestError::Compacted { requested: 0, .. })) => {}
        other => panic!("index 0 is before any history: {other:?}"),
    }
    let mut config = configuration(&c).await;
    config.watch_history = 10_000_001;
    match c
        .request(iroh_raft::proto::Operation::UpdateConfiguration { config })
        .await
    {
        Err(ClientError::Request(RequestError::InvalidConfig { field, .. })) => {
            assert_eq!(field, "watch_history");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // None of them sees a change outside what it asked for; a plain watch still works.
    let mut plain = c
        .watch(WatchRequest::prefix("", None))
        .await
        .expect("watch");
    let (index, _) = c
        .write(encode(&Command::Put {
            key: b"after",
            value: b"1",
        }))
        .await
        .expect("the node serves on");
    let changes = tokio::time::timeout(Duration::from_secs(30), plain.next())
        .await
        .expect("in time")
        .expect("changes");
    assert_eq!(
        (changes[0].index, &changes[0].key[..]),
        (index, &b"after"[..])
    );
    for watch in &mut open {
        assert!(
            tokio::time::timeout(Duration::from_millis(300), watch.next())
                .await
                .is_err(),
            "an odd watch saw a change it did not ask for"
        );
    }
    node.node.shutdown().await.expect("shutdown");
}
