use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iroh::{EndpointAddr, SecretKey};

use super::*;
use crate::net::bind_endpoint;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// A peer that accepts raft connections and keeps them open; how many it accepted.
async fn peer() -> (Endpoint, EndpointAddr, Arc<AtomicUsize>) {
    let endpoint = bind_endpoint(SecretKey::generate(), loopback(), vec![alpn::RAFT.to_vec()])
        .await
        .expect("bind the peer");
    let addr = EndpointAddr::new(endpoint.id())
        .with_ip_addr(*endpoint.bound_sockets().first().expect("a socket"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (server, count) = (endpoint.clone(), accepted.clone());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(incoming) = server.accept().await {
            if let Ok(connection) = incoming.await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(connection);
            }
        }
    });
    (endpoint, addr, accepted)
}

/// A dialling endpoint, its counters and an empty connection table.
async fn dialler() -> (Endpoint, Arc<NetworkCounters>, PeerConnections) {
    let client = bind_endpoint(SecretKey::generate(), loopback(), Vec::new())
        .await
        .expect("bind the client");
    (client, Arc::default(), PeerConnections::default())
}

/// Waits for the peer to have accepted `n` connections (its side of a handshake ends a moment
/// after the dialler's), then checks no more follow.
async fn settles_at(accepted: &AtomicUsize, n: usize) {
    let started = Instant::now();
    while accepted.load(Ordering::SeqCst) < n && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        n,
        "handshakes the peer accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_an_rpc_that_gave_up_while_dialling_aborted_the_handshake() {
    let (peer, addr, accepted) = peer().await;
    let (client, counters, connections) = dialler().await;
    let key = *addr.id.as_bytes();

    // The RPC gives up (its deadline passed) after one poll, long before a handshake can finish.
    let gave_up = connections
        .get(&client, addr.clone(), 2, &counters)
        .now_or_never();
    assert!(gave_up.is_none(), "a dial cannot finish within one poll");

    // The dial went on without it: the connection arrives in the cache.
    let started = Instant::now();
    while connections.cached(&key).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the dial was abandoned with the RPC that started it"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The next RPC uses it: no second handshake.
    let again = connections
        .get(&client, addr.clone(), 2, &counters)
        .await
        .expect("the cached connection");
    assert_eq!(again.remote_id(), addr.id);
    settles_at(&accepted, 1).await;

    // After a failure the connection is forgotten and closed, and the next RPC dials afresh.
    connections.forget(&key, &again, b"test");
    assert!(connections.cached(&key).is_none());
    assert!(
        again.close_reason().is_some(),
        "the failed connection is closed"
    );
    let newer = connections
        .get(&client, addr, 2, &counters)
        .await
        .expect("a new dial");
    settles_at(&accepted, 2).await;

    // Bug (found in review): a late failure on the old connection (an append stream that broke
    // after the new connection was cached) closed whatever was cached, the new one too.
    connections.forget(&key, &again, b"late");
    let cached = connections
        .cached(&key)
        .expect("the newer connection stays cached");
    assert_eq!(cached.stable_id(), newer.stable_id());
    assert!(
        newer.close_reason().is_none(),
        "the newer connection stays open"
    );
    client.close().await;
    peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rpcs_to_one_peer_share_one_dial() {
    let (peer, addr, accepted) = peer().await;
    let (client, counters, connections) = dialler().await;
    let dials = (0..8).map(|_| connections.get(&client, addr.clone(), 2, &counters));
    for connection in futures_util::future::join_all(dials).await {
        assert_eq!(connection.expect("connected").remote_id(), addr.id);
    }
    // One handshake for all eight.
    settles_at(&accepted, 1).await;
    client.close().await;
    peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_answer_is_an_error_and_leaves_no_dial_behind() {
    // An endpoint id nobody holds, at a port nobody listens on.
    let silent = std::net::UdpSocket::bind(loopback()).expect("reserve a port");
    let addr = EndpointAddr::new(SecretKey::generate().public())
        .with_ip_addr(silent.local_addr().expect("port"));
    let (client, counters, connections) = dialler().await;
    let failed = connections
        .get(&client, addr.clone(), 7, &counters)
        .await
        .expect_err("nobody answers");
    assert!(
        matches!(
            failed,
            DialError::TimedOut { target: 7 } | DialError::Connect { target: 7, .. }
        ),
        "{failed:?}"
    );
    assert!(failed.to_string().contains("node 7"), "{failed}");
    assert!(
        connections.lock().dialing.is_empty(),
        "the failed dial is not kept"
    );
    client.close().await;
}
