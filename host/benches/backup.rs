//! `cargo bench -p iroh-raft --bench backup`: what a backup and a restore cost on a 3-node
//! cluster holding 100,000 keys of 256-byte values (pseudo-random, so they do not compress).
//!
//! 1. `CreateBackup` on the leader through `fs-backup`: from the request to the sealed, read-back
//!    backup (read index, image written from a check point's view, handed to the handler).
//! 2. `RestoreBackup` of it: from the request until every replica has applied the restore entry
//!    and the three state hashes at its index agree.
//! 3. The same two through `lz4-backup`, with the size it stored against the image's.
//!
//! Medians of a few samples; compare ratios measured in the same run (the native sha256
//! baseline) between runs, since the machine is shared.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::SecretKey;
use iroh_raft::proto::PluginKind;
use iroh_raft::{Client, IrohRaftManagementClient, Node, NodeConfig, Start, bundled};
use iroh_raft_kv_types::Command;

mod common;

use common::baseline;

const KEYS: u64 = 100_000;
const VALUE_BYTES: usize = 256;
const WRITERS: u64 = 32;
const SAMPLES: usize = 5;

struct Cluster {
    nodes: Vec<Node>,
    _dirs: Vec<tempfile::TempDir>,
    key: SecretKey,
}

fn config(dir: &std::path::Path, key: &SecretKey) -> NodeConfig {
    let mut config = NodeConfig::new(dir, "127.0.0.1:0".parse().expect("addr"));
    config.root_identities = vec![key.public()];
    let backups = dir.join("backups");
    std::fs::create_dir_all(&backups).expect("backup dir");
    config.backup_dir = Some(backups);
    config
}

async fn cluster() -> Cluster {
    let key = SecretKey::from_bytes(&[0xbe; 32]);
    let mut dirs = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let start = match nodes.first() {
            None => Start::Init,
            Some(first) => Start::Join(first.ticket()),
        };
        nodes.push(
            Node::start(config(dir.path(), &key), start)
                .await
                .expect("node starts"),
        );
        dirs.push(dir);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !nodes.iter().all(|n| n.status().voters.len() == 3) {
        assert!(Instant::now() < deadline, "the cluster did not form");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Cluster {
        nodes,
        _dirs: dirs,
        key,
    }
}

/// 256 pseudo-random bytes for key `n` (xorshift, so runs load the same data).
fn value(n: u64) -> Vec<u8> {
    let mut state = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..VALUE_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

async fn load(cluster: &Cluster) {
    let client = Arc::new(
        Client::connect_with_key(cluster.key.clone(), cluster.nodes[0].addr())
            .await
            .expect("connect"),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n < KEYS {
                let key = format!("key/{n:08}");
                let value = value(n);
                let command = postcard::to_allocvec(&Command::Put {
                    key: key.as_bytes(),
                    value: &value,
                })
                .expect("encode");
                client
                    .write(Bytes::from(command))
                    .await
                    .expect("write")
                    .1
                    .expect("applied");
                n += WRITERS;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    println!(
        "loaded {KEYS} keys of {VALUE_BYTES} B in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    client.close().await;
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Creates and restores `SAMPLES` times through the active handler; returns the medians and the
/// last backup.
async fn measure(
    cluster: &Cluster,
    manage: &IrohRaftManagementClient,
) -> (Duration, Duration, iroh_raft::proto::BackupInfo) {
    let mut creates = Vec::new();
    let mut restores = Vec::new();
    let mut last = None;
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let info = manage
            .create_backup(None, Vec::new())
            .await
            .expect("backup");
        creates.push(started.elapsed());
        let started = Instant::now();
        let outcome = manage.restore_backup(&info.id).await.expect("restore");
        // Until every replica applied it and all agree.
        let mut hashes = Vec::new();
        for node in &cluster.nodes {
            hashes.push(
                manage
                    .state_hash(&node.addr(), outcome.index)
                    .await
                    .expect("hash at the restore")
                    .hash,
            );
        }
        restores.push(started.elapsed());
        assert!(
            hashes.iter().all(|h| *h == hashes[0]),
            "the replicas disagree"
        );
        assert_eq!(outcome.pairs, KEYS);
        last = Some(info);
    }
    (median(creates), median(restores), last.expect("a backup"))
}

fn main() {
    // `RUST_LOG=iroh_raft=info` shows where a restore spends its time.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let base = baseline();
    println!(
        "baseline: sha256 of 64 KiB natively = {:.1} µs",
        base.as_secs_f64() * 1e6
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let cluster = cluster().await;
        let client = Client::connect_with_key(cluster.key.clone(), cluster.nodes[0].addr())
            .await
            .expect("connect");
        client
            .deploy_plugin(
                PluginKind::Backup,
                Bytes::from_static(bundled::FS_BACKUP),
                "",
                Bytes::new(),
                &mut |_, _| {},
            )
            .await
            .expect("deploy fs-backup");
        load(&cluster).await;
        let manage = IrohRaftManagementClient::connect_with_key(
            cluster.key.clone(),
            vec![cluster.nodes[0].addr()],
        )
        .await
        .expect("manage");
        let report = |label: &str, create: Duration, restore: Duration| {
            println!(
                "{label:<10} create {:>7.1} ms ({:.0} × baseline)   restore until 3 replicas agree {:>7.1} ms ({:.0} × baseline)   (medians of {SAMPLES})",
                create.as_secs_f64() * 1e3,
                create.as_secs_f64() / base.as_secs_f64(),
                restore.as_secs_f64() * 1e3,
                restore.as_secs_f64() / base.as_secs_f64(),
            );
        };
        let (create, restore, info) = measure(&cluster, &manage).await;
        println!("image: {} bytes, {} pairs", info.size, KEYS);
        report("fs-backup", create, restore);

        client
            .deploy_plugin(
                PluginKind::Backup,
                Bytes::from_static(bundled::LZ4_BACKUP),
                "",
                Bytes::new(),
                &mut |_, _| {},
            )
            .await
            .expect("deploy lz4-backup");
        let (create, restore, info) = measure(&cluster, &manage).await;
        report("lz4-backup", create, restore);
        let leader = cluster.nodes[0].status().leader.expect("a leader");
        let dir = cluster
            .nodes
            .iter()
            .position(|n| n.node_id() == leader)
            .map(|i| cluster._dirs[i].path().join("backups"))
            .expect("the leader's directory");
        let stored = std::fs::metadata(dir.join(format!("{}.lz4", info.id)))
            .expect("the lz4 file")
            .len();
        println!(
            "lz4-backup stored {stored} of {} bytes: ratio {:.3} (random values do not compress; \
             the keys and framing do)",
            info.size,
            stored as f64 / info.size as f64
        );
        manage.close().await;
        client.close().await;
        for node in cluster.nodes {
            node.shutdown().await.expect("shutdown");
        }
    });
}
