//! Every history checked (issue 15's first scenario): four clients put, compare-and-swap and read
//! (linearizable) three keys of the kv plugin on a 3-node cluster while its leader is stopped
//! midway. The history the clients saw must be linearizable (`linearizability.rs`); a write whose
//! answer never came "maybe happened". `IROH_RAFT_SEED=N` replays the operation mix of a run
//! (the cluster's timing is the machine's).

use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh_raft::Client;
use iroh_raft::proto::Consistency;
use iroh_raft_kv_types::{Command, Query, QueryResponse, Response};

use crate::linearizability::{Input, Operation, Output, check};
use crate::support::{client, cluster, wait_for};

const CLIENTS: usize = 4;
const KEYS: [&[u8]; 3] = [b"lin/a", b"lin/b", b"lin/c"];
const RUN: Duration = Duration::from_secs(6);
const STOP_LEADER_AFTER: Duration = Duration::from_secs(2);

/// xorshift64*: the operation mix, replayable from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn seed() -> u64 {
    std::env::var("IROH_RAFT_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |t| t.as_nanos() as u64)
                | 1
        })
}

fn encode(command: &Command<'_>) -> Bytes {
    Bytes::from(postcard::to_allocvec(command).expect("encode"))
}

/// One operation against the cluster, as the client saw it.
async fn run_one(client: &Client, key: &[u8], input: &Input) -> Output {
    match input {
        Input::Get => {
            let query = Bytes::from(postcard::to_allocvec(&Query::Get { key }).expect("encode"));
            match client.read(query, Consistency::Linearizable).await {
                Ok(Ok(answer)) => match postcard::from_bytes(&answer).expect("decode") {
                    QueryResponse::Value(value) => Output::Value(value),
                    other => panic!("a get answered {other:?}"),
                },
                // A read that failed observed nothing.
                _ => Output::Unknown,
            }
        }
        Input::Put(value) | Input::Cas { new: value, .. } => {
            let command = match input {
                Input::Cas { expected, .. } => Command::Cas {
                    key,
                    expected: expected.as_deref(),
                    new: Some(value),
                },
                _ => Command::Put { key, value },
            };
            match client.write(encode(&command)).await {
                Ok((_, Ok(answer))) => match postcard::from_bytes(&answer).expect("decode") {
                    Response::Written => Output::Written,
                    Response::Cas { swapped, current } => Output::Cas { swapped, current },
                    other => panic!("a write answered {other:?}"),
                },
                Ok((_, Err(error))) => panic!("the kv plugin refused a valid command: {error}"),
                // The client gave up on it (it retries with its session for a while first):
                // it may or may not have been applied.
                Err(_) => Output::Unknown,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_while_the_leader_is_stopped() {
    let seed = seed();
    println!("IROH_RAFT_SEED={seed}");
    let mut nodes = cluster(3).await;
    let leader_id = nodes[0].node.status().leader.expect("a leader");
    let leader = nodes
        .iter()
        .position(|n| n.node.status().node_id == leader_id)
        .expect("the leader is one of the nodes");
    // The clients talk to the followers, which forward writes to whichever node leads. Each has
    // a client (a write session) of its own: a session keeps the answers of its last 16 writes,
    // and two tasks sharing one could push a retried write out of that window.
    let survivors: Vec<usize> = (0..nodes.len()).filter(|i| *i != leader).collect();
    let mut clients = Vec::new();
    for number in 0..CLIENTS {
        clients.push(client(&nodes[survivors[number % survivors.len()]]).await);
    }
    let history = Arc::new(Mutex::new(Vec::<Operation>::new()));
    let start = Instant::now();
    let nanos = move || start.elapsed().as_nanos() as u64;
    let mut tasks = Vec::new();
    for (number, client) in clients.into_iter().enumerate() {
        let history = history.clone();
        let mut rng =
            Rng(seed.wrapping_add((number as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        tasks.push(tokio::spawn(async move {
            let mut last_seen: Vec<Option<Vec<u8>>> = vec![None; KEYS.len()];
            let mut written = 0u64;
            while start.elapsed() < RUN {
                let slot = (rng.next() % KEYS.len() as u64) as usize;
                let key = KEYS[slot];
                let fresh = || format!("c{number}-{written}").into_bytes();
                let input = match rng.next() % 10 {
                    0..=3 => Input::Get,
                    4..=6 => Input::Put(fresh()),
                    _ => Input::Cas {
                        expected: last_seen[slot].clone(),
                        new: fresh(),
                    },
                };
                written += 1;
                let invoked = nanos();
                let output =
                    tokio::time::timeout(Duration::from_secs(40), run_one(&client, key, &input))
                        .await
                        .unwrap_or(Output::Unknown);
                let completed = nanos();
                match &output {
                    Output::Value(value) | Output::Cas { current: value, .. } => {
                        last_seen[slot] = value.clone()
                    }
                    _ => {}
                }
                history.lock().expect("history").push(Operation {
                    client: number,
                    key: key.to_vec(),
                    input,
                    output,
                    invoked,
                    completed,
                });
            }
        }));
    }
    tokio::time::sleep(STOP_LEADER_AFTER).await;
    let stopped_at = nanos();
    let stopped = nodes.remove(leader);
    stopped.node.shutdown().await.expect("the leader stops");
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(90), task)
            .await
            .expect("the clients finished in time")
            .expect("a client task");
    }
    let history = history.lock().expect("history").clone();
    let answered = |op: &&Operation| op.output != Output::Unknown;
    let after_stop = history
        .iter()
        .filter(answered)
        .filter(|op| op.invoked > stopped_at && !matches!(op.input, Input::Get))
        .count();
    println!(
        "{} operations, {} answered, {} writes answered after the leader stopped",
        history.len(),
        history.iter().filter(answered).count(),
        after_stop
    );
    assert!(
        after_stop > 0,
        "no write succeeded after the leader stopped"
    );
    if let Err(violation) = check(&history) {
        panic!("not linearizable (IROH_RAFT_SEED={seed}):\n{violation}");
    }
    // The two survivors agree on every key.
    wait_for(
        Duration::from_secs(30),
        "the survivors to apply the same index",
        || nodes[0].node.status().applied == nodes[1].node.status().applied,
    )
    .await;
    for key in KEYS {
        let mut answers = Vec::new();
        for node in &nodes {
            let query = Bytes::from(postcard::to_allocvec(&Query::Get { key }).expect("encode"));
            let answer = client(node)
                .await
                .read(query, Consistency::Stale)
                .await
                .expect("read")
                .expect("query");
            answers.push(answer);
        }
        assert_eq!(answers[0], answers[1], "the survivors disagree on {key:?}");
    }
}
