//! Spawning `iroh-raft node` processes and talking to them.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::EndpointAddr;
use iroh_raft::proto::Consistency;
use iroh_raft::{Client, parse_node_address};
use iroh_raft_kv_types::{Command as KvCommand, Query, QueryResponse};

/// A node process. Killed with SIGKILL when dropped, so a failing test leaves nothing behind.
pub(crate) struct NodeProcess {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) bind: SocketAddr,
    pub(crate) addr: EndpointAddr,
    pub(crate) ticket: Option<String>,
    pub(crate) extra: Vec<String>,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The key file every process of these tests speaks as (`IROH_RAFT_KEY`): node processes
/// started with `--init` make it a root identity and `Admin`, and the CLI and in-process clients
/// use it. One per test binary, in a temporary directory.
pub(crate) fn admin_key_path() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir for the admin key");
        iroh_raft::load_user_key(Some(&dir.path().join("admin.key"))).expect("create admin key");
        dir
    });
    // Leaked deliberately: the directory lives as long as the test binary.
    Box::leak(dir.path().join("admin.key").into_boxed_path())
}

/// The admin identity of [`admin_key_path`].
pub(crate) fn admin_key() -> iroh::SecretKey {
    iroh_raft::load_user_key(Some(admin_key_path())).expect("admin key")
}

/// A UDP port that was free a moment ago (QUIC runs over UDP).
pub(crate) fn free_port() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind probe socket");
    socket.local_addr().expect("local addr")
}

/// Starts `iroh-raft node` in `dir` on `bind` with `args`, and waits for it to print its address.
pub(crate) fn spawn(dir: &Path, bind: SocketAddr, args: &[String]) -> NodeProcess {
    spawn_logging(dir, bind, args, Stdio::inherit())
}

/// Like [`spawn`], with the node's log (stderr) going to `log`.
pub(crate) fn spawn_logging(
    dir: &Path,
    bind: SocketAddr,
    args: &[String],
    log: Stdio,
) -> NodeProcess {
    spawn_with(
        Command::new(env!("CARGO_BIN_EXE_iroh-raft")),
        dir,
        bind,
        args,
        log,
    )
}

/// Like [`spawn_logging`], through `command`: the node binary itself, or a wrapper that runs it
/// (`ip netns exec NS <binary>`).
pub(crate) fn spawn_with(
    mut command: Command,
    dir: &Path,
    bind: SocketAddr,
    args: &[String],
    log: Stdio,
) -> NodeProcess {
    // A `RUST_LOG` the caller set on `command` wins over `NODE_LOG`.
    if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
        command.env(
            "RUST_LOG",
            std::env::var("NODE_LOG").unwrap_or_else(|_| "warn".into()),
        );
    }
    let mut child = command
        .arg("node")
        .arg("--data-dir")
        .arg(dir)
        .arg("--bind")
        .arg(bind.to_string())
        .args(args)
        .env("IROH_RAFT_KEY", admin_key_path())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn iroh-raft node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut addr, mut ticket) = (None, None);
    while addr.is_none() || (args.iter().any(|a| a == "--init") && ticket.is_none()) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the node printed its address in time");
        if let Some(text) = line.strip_prefix("address: ") {
            addr = Some(parse_node_address(text).expect("a node address"));
        } else if line.starts_with("irohraft1") {
            ticket = Some(line);
        }
    }
    NodeProcess {
        child,
        dir: dir.to_path_buf(),
        bind,
        addr: addr.expect("address"),
        ticket,
        extra: args
            .iter()
            .filter(|a| !a.starts_with("--init") && !a.starts_with("irohraft1") && *a != "--join")
            .cloned()
            .collect(),
    }
}

impl NodeProcess {
    /// SIGKILL: no shutdown code runs.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Starts the node again from its data directory, on the same port, with no init/join flag.
    pub(crate) fn restart(&self) -> NodeProcess {
        spawn(&self.dir, self.bind, &self.extra)
    }
}

pub(crate) fn put(key: &str, value: &str) -> Bytes {
    Bytes::from(
        postcard::to_allocvec(&KvCommand::Put {
            key: key.as_bytes(),
            value: value.as_bytes(),
        })
        .expect("encode"),
    )
}

pub(crate) fn get_query(key: &str) -> Bytes {
    Bytes::from(
        postcard::to_allocvec(&Query::Get {
            key: key.as_bytes(),
        })
        .expect("encode"),
    )
}

pub(crate) fn decode_value(answer: &Bytes) -> Option<Vec<u8>> {
    match postcard::from_bytes::<QueryResponse>(answer).expect("decode") {
        QueryResponse::Value(value) => value,
        other => panic!("expected a value, got {other:?}"),
    }
}

pub(crate) async fn get(client: &Client, key: &str) -> Option<Vec<u8>> {
    let answer = client
        .read(get_query(key), Consistency::Linearizable)
        .await
        .expect("read")
        .expect("query ok");
    decode_value(&answer)
}

/// What `client`'s node itself holds at `key` (a stale read: answered from its own state), or
/// `None` while it cannot answer.
pub(crate) async fn held(client: &Client, key: &str) -> Option<Option<Vec<u8>>> {
    match client.read(get_query(key), Consistency::Stale).await {
        Ok(Ok(answer)) => Some(decode_value(&answer)),
        _ => None,
    }
}

/// Polls until `check` passes or `timeout` runs out.
pub(crate) async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Three node processes forming a cluster through the first one's ticket.
pub(crate) async fn cluster(root: &Path, extra: &[&str]) -> Vec<NodeProcess> {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let mut first_args = vec!["--init".to_string()];
    first_args.extend(extra.clone());
    let first = spawn(&root.join("n1"), free_port(), &first_args);
    let ticket = first.ticket.clone().expect("ticket");
    let mut nodes = vec![first];
    for n in 2..=3 {
        let mut args = vec!["--join".to_string(), ticket.clone()];
        args.extend(extra.clone());
        nodes.push(spawn(&root.join(format!("n{n}")), free_port(), &args));
    }
    wait_for_voters(&nodes[0], 3).await;
    nodes
}

/// Waits (up to 90 s) until `node` counts `count` voters.
pub(crate) async fn wait_for_voters(node: &NodeProcess, count: usize) {
    let probe = Client::connect_with_key(admin_key(), node.addr.clone())
        .await
        .expect("connect");
    eventually(
        Duration::from_secs(90),
        &format!("{count} voters"),
        || async {
            probe
                .status()
                .await
                .map(|s| s.voters.len() == count)
                .unwrap_or(false)
        },
    )
    .await;
    probe.close().await;
}

/// The index of the node that leads, as seen by `nodes[seen_from]`.
pub(crate) async fn leader_of(nodes: &[NodeProcess], seen_from: usize) -> usize {
    let client = Client::connect_with_key(admin_key(), nodes[seen_from].addr.clone())
        .await
        .expect("connect");
    eventually(Duration::from_secs(30), "a leader", || async {
        client.status().await.ok().and_then(|s| s.leader).is_some()
    })
    .await;
    let leader_key = {
        let status = client.status().await.expect("status");
        let id = status.leader.expect("leader");
        status
            .voters
            .iter()
            .find(|(v, _)| *v == id)
            .expect("leader is a voter")
            .1
            .endpoint_key
    };
    nodes
        .iter()
        .position(|n| *n.addr.id.as_bytes() == leader_key)
        .expect("the leader is one of ours")
}

/// Runs the `iroh-raft` command line against `node` (quiet logs) as the admin, to completion.
pub(crate) fn cli(node: &str, args: &[&str]) -> std::process::Output {
    cli_as(admin_key_path(), node, args)
}

/// Runs the `iroh-raft` command line against `node` speaking as the key in `key`.
pub(crate) fn cli_as(key: &Path, node: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_iroh-raft"))
        .args(args)
        .env("IROH_RAFT_NODE", node)
        .env("IROH_RAFT_KEY", key)
        .env("RUST_LOG", "error")
        .output()
        .expect("run iroh-raft")
}

/// A node process waiting to be added as member `id` of the cluster of `ticket`.
pub(crate) fn standby(root: &Path, ticket: &str, id: u64) -> NodeProcess {
    spawn(
        &root.join(format!("standby{id}")),
        free_port(),
        &[
            "--join".to_string(),
            ticket.to_string(),
            "--standby-as".to_string(),
            id.to_string(),
        ],
    )
}

/// `iroh-raft events -o json [extra]` against `node`, its stdout lines on a channel.
pub(crate) fn follow_events(node: &str, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iroh-raft"))
        .args(["events", "-o", "json"])
        .args(extra)
        .env("IROH_RAFT_NODE", node)
        .env("IROH_RAFT_KEY", admin_key_path())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn events");
    let lines = BufReader::new(child.stdout.take().expect("stdout"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits (up to 30 s) until the members at `addrs` report state hashes that agree at one index.
pub(crate) async fn state_hashes_agree(addrs: Vec<EndpointAddr>) {
    let manage = iroh_raft::IrohRaftManagementClient::connect_with_key(admin_key(), addrs)
        .await
        .expect("management client connects");
    eventually(
        Duration::from_secs(30),
        "the state hashes to agree",
        || async {
            manage
                .check_consistency()
                .await
                .is_ok_and(|report| report.consistent())
        },
    )
    .await;
    manage.close().await;
}

/// The index of the node that every node in `observers` names as leader, once they agree on one
/// that is not `not` (up to 60 s).
pub(crate) async fn agreed_leader(
    nodes: &[NodeProcess],
    observers: &[usize],
    not: Option<usize>,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut named = Vec::new();
        for &i in observers {
            let client = Client::connect_with_key(admin_key(), nodes[i].addr.clone())
                .await
                .expect("connect");
            let status = client.status().await.ok();
            named.push(status.and_then(|s| {
                let id = s.leader?;
                let (_, member) = s.voters.iter().find(|(v, _)| *v == id)?;
                nodes
                    .iter()
                    .position(|n| member.endpoint_key == *n.addr.id.as_bytes())
            }));
            client.close().await;
        }
        if let Some(Some(found)) = named.first()
            && named.iter().all(|n| *n == Some(*found))
            && Some(*found) != not
        {
            return *found;
        }
        assert!(
            Instant::now() < deadline,
            "no leader every observer names: {named:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends `signal` (`STOP`, `CONT`) to a node process.
pub(crate) fn signal(node: &NodeProcess, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(node.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// The index `client`'s node has applied (0 when it cannot say).
pub(crate) async fn applied(client: &Client) -> u64 {
    client
        .status()
        .await
        .ok()
        .and_then(|s| s.applied)
        .unwrap_or(0)
}

/// Whether `dir` (a node's snapshot directory) holds part of an incoming snapshot.
pub(crate) fn receiving_a_snapshot(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            name.starts_with("install-")
                && name.ends_with(".tmp")
                && entry.metadata().is_ok_and(|m| m.len() > 0)
        })
}
