//! `cargo bench -p iroh-raft --bench authorize`: what access control costs.
//!
//! 1. One decision of the bundled `rbac` policy through wasm, uncached (a fresh resource every
//!    call, so the policy parses its configuration and decides) and cached (the same request
//!    again: two hash lookups), with a grants file of 8 peers.
//! 2. Write throughput of a one-node cluster started with `rbac` against one started with
//!    `allow-all`, 16 concurrent writers each, measured in the same run.
//!
//! Every figure is the median of several samples; the machine is shared, so compare ratios
//! measured in the same run (and the native sha256 baseline) between runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::SecretKey;
use iroh_raft::proto::op;
use iroh_raft::{
    CachedPolicy, Client, InitialPolicy, Node, NodeConfig, PluginEngine, Start, bundled,
};
use iroh_raft_access_types::{RbacConfig, resource};
use iroh_raft_kv_types::Command;

mod common;

use common::{SAMPLES, baseline, median};

fn decisions(base: Duration) {
    let engine = PluginEngine::new(None).expect("engine");
    let policy = engine
        .load_policy("rbac", bundled::RBAC)
        .expect("load rbac");
    let caller = SecretKey::from_bytes(&[3; 32]).public();
    let mut grants: Vec<(String, String)> = (0..7u8)
        .map(|n| {
            (
                format!("peer {n}"),
                SecretKey::from_bytes(&[n + 10; 32]).public().to_string(),
            )
        })
        .collect();
    grants.push(("bench".into(), caller.to_string()));
    let config = Bytes::from(RbacConfig::admins(grants).to_json());
    println!("rbac config: {} bytes, 8 grants", config.len());
    let mut uncached = policy.instance(config.clone());
    let names: Vec<String> = (0..1_000_000u64)
        .map(|n| resource::key(format!("app/{n}").as_bytes()))
        .collect();
    let mut n = 0usize;
    let wasm = median(|| {
        n += 1;
        let name = &names[n % names.len()];
        std::hint::black_box(uncached.authorize(&caller.to_string(), op::DATA_WRITE, name));
    });
    // The same call into a policy that decides nothing (allow-all): what the host boundary costs.
    let mut trivial = engine
        .load_policy("allow-all", bundled::ALLOW_ALL)
        .expect("load allow-all")
        .instance(Bytes::new());
    let mut n = 0usize;
    let boundary = median(|| {
        n += 1;
        let name = &names[n % names.len()];
        std::hint::black_box(trivial.authorize(&caller.to_string(), op::DATA_WRITE, name));
    });
    let mut cached = CachedPolicy::new(policy.instance(config));
    let name = resource::key(b"app/hot");
    cached.decide(&caller, op::DATA_WRITE, &name);
    let hit = median(|| {
        std::hint::black_box(cached.decide(&caller, op::DATA_WRITE, std::hint::black_box(&name)));
    });
    println!("one decision (median of {SAMPLES}):");
    println!(
        "  uncached, through wasm  {:>10.0} ns   ({:.4} × baseline)",
        wasm.as_nanos() as f64,
        wasm.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "  uncached, allow-all     {:>10.0} ns   ({:.4} × baseline; the wasm boundary alone)",
        boundary.as_nanos() as f64,
        boundary.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "  cached                  {:>10.1} ns   ({:.6} × baseline)",
        hit.as_nanos() as f64,
        hit.as_secs_f64() / base.as_secs_f64()
    );
}

async fn write_throughput(policy: InitialPolicy, label: &str) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = SecretKey::from_bytes(&[0xbe; 32]);
    let mut config = NodeConfig::new(dir.path(), "127.0.0.1:0".parse().expect("addr"));
    config.root_identities = vec![key.public()];
    config.initial_policy = policy;
    let node = Node::start(config, Start::Init).await.expect("node starts");
    let client = Arc::new(
        Client::connect_with_key(key, node.addr())
            .await
            .expect("connect"),
    );
    const WRITERS: u64 = 16;
    const PER_WRITER: u64 = 150;
    let value = vec![b'v'; 256];
    // Warm up (compiles nothing, fills the decision cache's paths).
    for n in 0..20u64 {
        write(&client, n, &value).await;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (client, value) = (client.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..PER_WRITER {
                write(&client, 1_000 + w * PER_WRITER + n, &value).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let rate = (WRITERS * PER_WRITER) as f64 / started.elapsed().as_secs_f64();
    println!("  {label:<10} {rate:>8.0} writes/s");
    client.close().await;
    node.shutdown().await.expect("shutdown");
    rate
}

async fn write(client: &Client, n: u64, value: &[u8]) {
    let key = format!("bench/{n:08}");
    let command = postcard::to_allocvec(&Command::Put {
        key: key.as_bytes(),
        value,
    })
    .expect("encode");
    client
        .write(Bytes::from(command))
        .await
        .expect("write")
        .1
        .expect("applied");
}

fn main() {
    let base = baseline();
    println!(
        "baseline: sha256 of 64 KiB natively = {:.1} µs",
        base.as_secs_f64() * 1e6
    );
    decisions(base);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        println!("write throughput, one node, 16 writers × 150 puts of 256 B:");
        let mut ratios = Vec::new();
        for _ in 0..3 {
            let allow = write_throughput(InitialPolicy::AllowAll, "allow-all").await;
            let rbac = write_throughput(InitialPolicy::Rbac, "rbac").await;
            ratios.push(rbac / allow);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "  rbac / allow-all throughput: median {:.3} (runs: {:?})",
            ratios[1],
            ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>()
        );
    });
}
