//! The limits of the metrics listener, over real TCP on loopback.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{HttpLimits, serve_with};

const SCRAPE: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n";

async fn listener(limits: HttpLimits) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    serve_with(
        "127.0.0.1:0".parse().expect("addr"),
        Arc::new(|| Ok("iroh_raft_up 1\n".to_string())),
        limits,
    )
    .await
    .expect("bind")
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection in time");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn bug_clients_that_sent_nothing_held_metrics_connections_forever() {
    let limits = HttpLimits {
        connections: 2,
        header_timeout: Duration::from_millis(300),
        lifetime: Duration::from_secs(30),
    };
    let (addr, task) = listener(limits).await;
    // Both slots taken: one client sends nothing, the other half a request head.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut partial = TcpStream::connect(addr).await.expect("connect");
    partial.write_all(b"GET /metr").await.expect("write");
    // The third waits in the backlog until the header timeout frees a slot, then is served.
    let mut scraper = TcpStream::connect(addr).await.expect("connect");
    scraper.write_all(SCRAPE).await.expect("write");
    let answer = until_closed(&mut scraper, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("iroh_raft_up 1\n"), "{answer}");
    // The two that never finished a request were cut off, without an answer.
    for stream in [&mut silent, &mut partial] {
        let sent = until_closed(stream, Duration::from_secs(5)).await;
        assert!(!sent.contains("200 OK"), "{sent}");
    }
    task.abort();
}

#[tokio::test]
async fn a_kept_alive_connection_ends_after_its_lifetime() {
    let limits = HttpLimits {
        connections: 1,
        header_timeout: Duration::from_secs(30),
        lifetime: Duration::from_millis(500),
    };
    let (addr, task) = listener(limits).await;
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n")
        .await
        .expect("write");
    let answer = until_closed(&mut kept, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Its slot is free again: the next scrape is served.
    let mut next = TcpStream::connect(addr).await.expect("connect");
    next.write_all(SCRAPE).await.expect("write");
    let answer = until_closed(&mut next, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    task.abort();
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_and_the_next_scrape_is_served() {
    let (addr, task) = listener(HttpLimits::default()).await;
    let mut huge = TcpStream::connect(addr).await.expect("connect");
    let mut head = b"GET /metrics HTTP/1.1\r\nHost: node\r\nX-Filler: ".to_vec();
    head.resize(head.len() + (2 << 20), b'a');
    // The server may close before all of it is written; that is the point.
    let _ = huge.write_all(&head).await;
    let answer = until_closed(&mut huge, Duration::from_secs(10)).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    let mut next = TcpStream::connect(addr).await.expect("connect");
    next.write_all(SCRAPE).await.expect("write");
    let answer = until_closed(&mut next, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    task.abort();
}
