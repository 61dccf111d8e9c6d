//! The raft protocol refuses non-members; garbage and oversized frames close only their stream;
//! bad plugin uploads are refused with the reason; bad metrics requests get an error reply. What a stranger's key may do on the management
//! protocol (nothing) is in `access.rs`.

use bytes::Bytes;
use iroh::SecretKey;
use iroh_raft::net::{NOT_A_MEMBER, bind_endpoint, read_frame, write_frame};
use iroh_raft::proto::{
    ClientFrame, Consistency, DeployRequest, MAX_PLUGIN_BYTES, MetricsCategory, MetricsReply,
    MetricsRequest, Operation, PluginKind, RequestError, ServerFrame, alpn, decode_body,
    encode_frame,
};
use iroh_raft::{MetricsClient, Start, sha256};

use crate::support::{admin_key, client, get, put, start, value};

async fn stranger() -> iroh::Endpoint {
    endpoint_as(SecretKey::generate()).await
}

async fn endpoint_as(key: SecretKey) -> iroh::Endpoint {
    bind_endpoint(key, "127.0.0.1:0".parse().expect("addr"), Vec::new())
        .await
        .expect("bind")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_is_refused_on_the_raft_protocol() {
    let node = start(Start::Init).await;
    let endpoint = stranger().await;
    let connection = endpoint
        .connect(node.node.addr(), alpn::RAFT)
        .await
        .expect("handshake");
    let reason = connection.closed().await;
    assert!(
        reason.to_string().contains(&NOT_A_MEMBER.to_string())
            || reason.to_string().contains("not a member"),
        "{reason}"
    );
    node.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_management_frames_close_only_their_stream() {
    let node = start(Start::Init).await;
    client(&node)
        .await
        .write(put("k", "v"))
        .await
        .expect("write")
        .1
        .expect("ok");
    let endpoint = stranger().await;
    let connection = endpoint
        .connect(node.node.addr(), alpn::MANAGEMENT)
        .await
        .expect("connect");

    // A frame that decodes to nothing.
    let (mut send, mut recv) = connection.open_bi().await.expect("stream");
    send.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .expect("send");
    let body = read_frame(&mut recv, 1 << 20)
        .await
        .expect("reply")
        .expect("frame");
    assert!(matches!(
        decode_body::<ServerFrame>(&body).expect("decodes"),
        ServerFrame::Error(_)
    ));

    // A frame announcing more than the limit.
    let (mut send, mut recv) = connection.open_bi().await.expect("stream");
    send.write_all(&(u32::MAX).to_be_bytes())
        .await
        .expect("send");
    let body = read_frame(&mut recv, 1 << 20)
        .await
        .expect("reply")
        .expect("frame");
    let frame = decode_body::<ServerFrame>(&body).expect("decodes");
    assert!(format!("{frame:?}").contains("TooLarge"), "{frame:?}");

    // The node still serves everyone, this connection included.
    let answer = client(&node)
        .await
        .read(get("k"), Consistency::Linearizable)
        .await
        .expect("read")
        .expect("ok");
    assert_eq!(value(&answer), Some(b"v".to_vec()));
    let (mut send, _recv) = connection
        .open_bi()
        .await
        .expect("the connection is still open");
    send.write_all(&Bytes::from_static(b"\0"))
        .await
        .expect("still writable");
    node.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_raft_and_discovery_protocols_closes_only_that_stream() {
    let mut nodes = crate::support::cluster(2).await;
    let node = nodes.pop().expect("second node");
    let other = nodes.pop().expect("first node");
    // Raft admits members only, so speak it to node 2 with node 1's key (a member's identity).
    let key: [u8; 32] = std::fs::read(other.dir.path().join("secret.key"))
        .expect("key file")
        .try_into()
        .expect("32 bytes");
    let member = bind_endpoint(
        SecretKey::from_bytes(&key),
        "127.0.0.1:0".parse().expect("addr"),
        Vec::new(),
    )
    .await
    .expect("bind");
    let raft = member
        .connect(node.node.addr(), alpn::RAFT)
        .await
        .expect("connect raft");
    let (mut send, mut recv) = raft.open_bi().await.expect("stream");
    send.write_all(&[0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef])
        .await
        .expect("send");
    send.finish().expect("finish");
    let reply = read_frame(&mut recv, 1 << 20)
        .await
        .expect("a reply")
        .expect("a frame");
    assert!(
        !reply.is_empty(),
        "the raft server answers garbage with a refusal"
    );
    // An oversized raft frame is refused with the reason, without its body being read (it used
    // to end the stream in silence).
    let (mut send, mut recv) = raft.open_bi().await.expect("stream");
    send.write_all(&u32::MAX.to_be_bytes()).await.expect("send");
    let body = read_frame(&mut recv, 1 << 20)
        .await
        .expect("a reply")
        .expect("a frame");
    match decode_body::<iroh_raft::proto::raft_rpc::RaftReply>(&body).expect("a raft reply") {
        iroh_raft::proto::raft_rpc::RaftReply::Refused(reason) => {
            assert!(reason.contains("exceeds the limit"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Discovery: garbage gets a refusal frame.
    let stranger = stranger().await;
    let discovery = stranger
        .connect(node.node.addr(), alpn::DISCOVERY)
        .await
        .expect("connect discovery");
    let (mut send, mut recv) = discovery.open_bi().await.expect("stream");
    send.write_all(&[0, 0, 0, 2, 0xff, 0xff])
        .await
        .expect("send");
    send.finish().expect("finish");
    let body = read_frame(&mut recv, 1 << 20)
        .await
        .expect("reply")
        .expect("frame");
    match decode_body::<iroh_raft::proto::DiscoveryReply>(&body).expect("a discovery reply") {
        iroh_raft::proto::DiscoveryReply::Refused(reason) => {
            assert!(reason.contains("malformed"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Discovery (one request per connection): an oversized frame is refused without being read.
    let discovery = stranger
        .connect(node.node.addr(), alpn::DISCOVERY)
        .await
        .expect("connect discovery");
    let (mut send, mut recv) = discovery.open_bi().await.expect("stream");
    send.write_all(&u32::MAX.to_be_bytes()).await.expect("send");
    let body = read_frame(&mut recv, 1 << 20)
        .await
        .expect("reply")
        .expect("frame");
    match decode_body::<iroh_raft::proto::DiscoveryReply>(&body).expect("a discovery reply") {
        iroh_raft::proto::DiscoveryReply::Refused(reason) => {
            assert!(reason.contains("exceeds the limit"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The node keeps serving.
    client(&node)
        .await
        .write(put("after", "garbage"))
        .await
        .expect("write")
        .1
        .expect("ok");
    let answer = client(&node)
        .await
        .read(get("after"), Consistency::Linearizable)
        .await
        .expect("read")
        .expect("ok");
    assert_eq!(value(&answer), Some(b"garbage".to_vec()));
    node.node.shutdown().await.expect("shutdown");
    other.node.shutdown().await.expect("shutdown");
}

/// Sends `frames` on a fresh management stream and returns the node's first reply frame.
async fn exchange(connection: &iroh::endpoint::Connection, frames: &[ClientFrame]) -> ServerFrame {
    let (mut send, mut recv) = connection.open_bi().await.expect("stream");
    for frame in frames {
        // A node that refuses the request may stop reading before the last frame: its reply
        // below says why.
        if write_frame(&mut send, encode_frame(frame).expect("encode"))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = send.finish();
    let body = read_frame(&mut recv, 1 << 20)
        .await
        .expect("reply")
        .expect("frame");
    decode_body::<ServerFrame>(&body).expect("decodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plugin_uploads_are_refused_and_the_node_keeps_serving() {
    let node = start(Start::Init).await;
    // An admin: a stranger is refused before any byte of the upload is read (access.rs).
    let endpoint = endpoint_as(crate::support::admin_key()).await;
    let connection = endpoint
        .connect(node.node.addr(), alpn::MANAGEMENT)
        .await
        .expect("connect");
    let announce = |size: u64, sha256: [u8; 32]| ClientFrame::Request {
        id: [1; 16],
        operation: Operation::PluginDeploy(DeployRequest {
            kind: PluginKind::StateMachine,
            version: String::new(),
            config: Bytes::new(),
            sha256,
            size,
            wasm: Bytes::new(),
        }),
    };
    let chunk = |data: &'static [u8]| ClientFrame::Chunk {
        id: [1; 16],
        data: Bytes::from_static(data),
    };

    let refused = |frame: ServerFrame| match frame {
        ServerFrame::Response {
            id: [1, ..],
            result: Err(error),
        } => error,
        other => panic!("expected a refusal, got {other:?}"),
    };
    tracing::info!("more than the size limit");
    let error = refused(
        exchange(
            &connection,
            &[announce(MAX_PLUGIN_BYTES as u64 + 1, [0; 32])],
        )
        .await,
    );
    assert!(matches!(error, RequestError::TooLarge { .. }), "{error:?}");
    tracing::info!("more bytes than announced");
    let error = refused(
        exchange(
            &connection,
            &[announce(4, sha256(b"abcd")), chunk(b"abcdef")],
        )
        .await,
    );
    assert!(error.to_string().contains("more arrived"), "{error}");
    tracing::info!("bytes that do not match the announced hash");
    let error =
        refused(exchange(&connection, &[announce(4, sha256(b"abcd")), chunk(b"abce")]).await);
    assert!(error.to_string().contains("damaged"), "{error}");
    tracing::info!("the stream ends early");
    let error = refused(exchange(&connection, &[announce(4, sha256(b"abcd")), chunk(b"ab")]).await);
    assert!(error.to_string().contains("ended after 2 of 4"), "{error}");

    let (_, outcome) = client(&node)
        .await
        .write(put("still", "serving"))
        .await
        .expect("write");
    outcome.expect("ok");
    node.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_one_connection_could_hold_a_hundred_16_mib_uploads_now_two() {
    let node = start(Start::Init).await;
    let endpoint = endpoint_as(crate::support::admin_key()).await;
    let connection = endpoint
        .connect(node.node.addr(), alpn::MANAGEMENT)
        .await
        .expect("connect");
    let announce = |id: u8| ClientFrame::Request {
        id: [id; 16],
        operation: Operation::PluginDeploy(DeployRequest {
            kind: PluginKind::StateMachine,
            version: String::new(),
            config: Bytes::new(),
            sha256: [0; 32],
            size: 1 << 20,
            wasm: Bytes::new(),
        }),
    };
    let chunk = |id: u8| ClientFrame::Chunk {
        id: [id; 16],
        data: Bytes::from_static(&[0; 1024]),
    };
    tracing::info!("uploads that stay in flight, as many as a connection may have");
    let mut open = Vec::new();
    for id in 0..iroh_raft::net::MAX_UPLOADS_PER_CONNECTION as u8 {
        let (mut send, recv) = connection.open_bi().await.expect("stream");
        for frame in [announce(id), chunk(id)] {
            write_frame(&mut send, encode_frame(&frame).expect("encode"))
                .await
                .expect("send");
        }
        open.push((send, recv));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    tracing::info!("one more on the same connection is refused with the reason");
    let id = iroh_raft::net::MAX_UPLOADS_PER_CONNECTION as u8;
    match exchange(&connection, &[announce(id), chunk(id)]).await {
        ServerFrame::Response {
            result: Err(RequestError::Refused(reason)),
            ..
        } => assert!(reason.contains("uploads in flight"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(open);
    let (_, outcome) = client(&node)
        .await
        .write(put("still", "serving"))
        .await
        .expect("write");
    outcome.expect("ok");
    node.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_metrics_requests_get_an_error_and_the_node_answers_on() {
    let node = start(Start::Init).await;
    let endpoint = stranger().await;
    let connection = endpoint
        .connect(node.node.addr(), alpn::METRICS)
        .await
        .expect("connect");
    for (frame, expected) in [
        (vec![0, 0, 0, 3, 0xff, 0xff, 0xff], "malformed"),
        (u32::MAX.to_be_bytes().to_vec(), "too large"),
    ] {
        let (mut send, mut recv) = connection.open_bi().await.expect("stream");
        send.write_all(&frame).await.expect("send");
        let body = read_frame(&mut recv, alpn::MAX_METRICS_REPLY)
            .await
            .expect("reply")
            .expect("a frame");
        match decode_body::<MetricsReply>(&body).expect("decodes") {
            MetricsReply::Error(RequestError::Malformed(reason)) if expected == "malformed" => {
                assert!(reason.contains("metrics request"), "{reason}")
            }
            MetricsReply::Error(RequestError::TooLarge { len, max }) if expected == "too large" => {
                assert_eq!((len, max), (u32::MAX as usize, alpn::MAX_METRICS_REQUEST))
            }
            other => panic!("expected a {expected} error, got {other:?}"),
        }
        // The node finished the stream after its error.
        assert!(
            read_frame(&mut recv, 1024)
                .await
                .expect("clean end")
                .is_none()
        );
    }
    // The same connection, and the node, go on serving.
    let (mut send, mut recv) = connection.open_bi().await.expect("stream");
    let request = MetricsRequest::Get {
        categories: vec![MetricsCategory::Raft],
    };
    write_frame(&mut send, encode_frame(&request).expect("encode"))
        .await
        .expect("send");
    let body = read_frame(&mut recv, alpn::MAX_METRICS_REPLY)
        .await
        .expect("reply")
        .expect("a frame");
    assert!(
        matches!(
            decode_body::<MetricsReply>(&body).expect("decodes"),
            MetricsReply::Error(RequestError::Denied { .. })
        ),
        "a stranger is judged like any caller"
    );
    let admin = MetricsClient::connect_with_key(admin_key(), node.node.addr())
        .await
        .expect("connects");
    let snapshot = admin
        .get(vec![MetricsCategory::Raft])
        .await
        .expect("metrics");
    assert_eq!(snapshot.node_id, node.node.node_id());
    assert!(snapshot.raft.expect("raft").applied.is_some());
    assert!(snapshot.storage.is_none(), "only the category asked for");
    admin.close().await;
    connection.close(0u32.into(), b"done");
    endpoint.close().await;
    node.node.shutdown().await.expect("shutdown");
}
