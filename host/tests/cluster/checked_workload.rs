//! The checked workload every fault scenario runs (issue 15): concurrent clients, each with a write
//! session of its own, put, compare-and-swap and read (at one consistency) a few registers of the
//! kv plugin, increment a counter by compare-and-swap, and put keys of their own that must all
//! survive. When the run ends, [`Outcome::verify`] checks:
//! - the whole register history is linearizable (`linearizability.rs`; an operation whose answer
//!   never came "maybe happened");
//! - every acknowledged put of a client's own keys is present, on every replica;
//! - the counter counts each acknowledged increment once: no increment applied twice or lost
//!   (the increments whose answer never came may or may not count);
//! - every replica holds the same registers and counter, and the members' state hashes agree at
//!   one index.
//!
//! Each client reads at one consistency; a run may mix them (`linearizable` and `lease` clients
//! side by side), and the history is checked as one.
//!
//! The operation mix comes from a seed (`IROH_RAFT_SEED=N` replays it; the cluster's timing is the
//! machine's).
//!
//! It speaks to the nodes only by address, so it runs against in-process nodes (the `cluster`
//! binary) and node processes in network namespaces (the `netns` binary, which includes this file)
//! alike.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::EndpointAddr;
use iroh_raft::proto::Consistency;
use iroh_raft::{Client, IrohRaftManagementClient};
use iroh_raft_kv_types::{Command, Query, QueryResponse, Response};

use crate::linearizability::{Input, Operation, Output, check};
use crate::support::admin_key;

/// The registers the history is checked over.
pub(crate) const REGISTERS: [&[u8]; 3] = [b"lin/a", b"lin/b", b"lin/c"];
/// The counter: incremented by compare-and-swap, its history checked too.
const COUNTER: &[u8] = b"lin/count";
/// How long one operation may take before the client counts it unanswered.
const OPERATION_LIMIT: Duration = Duration::from_secs(30);

/// xorshift64*: the operation mix, replayable from the seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[low, high)`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low).max(1)
    }
}

/// The run's seed: `IROH_RAFT_SEED`, or one from the clock; printed so a failure replays.
pub(crate) fn seed() -> u64 {
    let seed = std::env::var("IROH_RAFT_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |t| t.as_nanos() as u64)
                | 1
        });
    println!("IROH_RAFT_SEED={seed}");
    seed
}

/// What one client saw besides its register operations.
#[derive(Default)]
struct Tally {
    /// Its own keys whose put was acknowledged, with the value.
    acknowledged: Vec<(Vec<u8>, Vec<u8>)>,
    /// Counter increments acknowledged as swapped, and those never answered.
    increments: u64,
    unanswered_increments: u64,
}

/// Clients running against a cluster.
pub(crate) struct Workload {
    history: Arc<Mutex<Vec<Operation>>>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
    start: Instant,
    /// How long the clients run, from `start`.
    run: Duration,
    seed: u64,
    /// The consistency each client reads at, by client number.
    reads: Vec<Consistency>,
}

/// A finished run: what the clients saw.
pub(crate) struct Outcome {
    pub(crate) history: Vec<Operation>,
    acknowledged: Vec<(Vec<u8>, Vec<u8>)>,
    increments: u64,
    unanswered_increments: u64,
    seed: u64,
    reads: Vec<Consistency>,
}

impl Workload {
    /// Starts `clients` clients, client `n` talking to `targets[n % len]` and reading at
    /// `reads[n % len]`, for `run`.
    pub(crate) async fn start(
        targets: &[EndpointAddr],
        clients: usize,
        run: Duration,
        reads: &[Consistency],
        seed: u64,
    ) -> Self {
        let history = Arc::new(Mutex::new(Vec::<Operation>::new()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for number in 0..clients {
            // A session keeps the answers of its last 16 writes: two tasks sharing one could push
            // a retried write out of that window, so each client has its own.
            let client = connect(&targets[number % targets.len()]).await;
            let rng =
                Rng(seed.wrapping_add((number as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
            let runner = Runner {
                client,
                number,
                rng,
                history: history.clone(),
                start,
                consistency: reads[number % reads.len()],
                only_reads: false,
            };
            tasks.push(tokio::spawn(runner.run(run)));
        }
        Self {
            history,
            tasks,
            start,
            run,
            seed,
            reads: (0..clients).map(|n| reads[n % reads.len()]).collect(),
        }
    }

    /// One more client, of `target`, that only reads the registers (at `consistency`) until the
    /// run ends: it observes a node throughout a fault, never held up behind a write of its own.
    pub(crate) async fn add_reader(&mut self, target: &EndpointAddr, consistency: Consistency) {
        let number = self.tasks.len();
        let runner = Runner {
            client: connect(target).await,
            number,
            rng: Rng(self.seed.wrapping_add(number as u64) | 1),
            history: self.history.clone(),
            start: self.start,
            consistency,
            only_reads: true,
        };
        self.tasks.push(tokio::spawn(runner.run(self.run)));
        self.reads.push(consistency);
    }

    /// Nanoseconds since the run started, on the clients' clock.
    pub(crate) fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Waits for every client to end its run.
    pub(crate) async fn finish(self) -> Outcome {
        let mut outcome = Outcome {
            history: Vec::new(),
            acknowledged: Vec::new(),
            increments: 0,
            unanswered_increments: 0,
            seed: self.seed,
            reads: self.reads,
        };
        for task in self.tasks {
            let tally = tokio::time::timeout(OPERATION_LIMIT * 3, task)
                .await
                .expect("the clients finished in time")
                .expect("a client task");
            outcome.acknowledged.extend(tally.acknowledged);
            outcome.increments += tally.increments;
            outcome.unanswered_increments += tally.unanswered_increments;
        }
        outcome.history = self.history.lock().expect("history").clone();
        outcome
    }
}

impl Outcome {
    /// Operations answered (not "maybe happened") that were invoked after `at`.
    pub(crate) fn answered_writes_after(&self, at: u64) -> usize {
        self.history
            .iter()
            .filter(|op| op.output != Output::Unknown && op.invoked > at)
            .filter(|op| !matches!(op.input, Input::Get))
            .count()
    }

    /// The history without the reads of the clients that read at `consistency`.
    pub(crate) fn history_without_reads_at(&self, consistency: Consistency) -> Vec<Operation> {
        let mut history = self.history.clone();
        history.retain(|op| {
            !(matches!(op.input, Input::Get) && self.reads.get(op.client) == Some(&consistency))
        });
        history
    }

    /// Prints what the clients did.
    pub(crate) fn summary(&self, name: &str) {
        let answered = self
            .history
            .iter()
            .filter(|op| op.output != Output::Unknown)
            .count();
        let reads: Vec<String> = self
            .reads
            .iter()
            .enumerate()
            .map(|(client, consistency)| format!("{client}: {consistency}"))
            .collect();
        println!(
            "{name}: {} register operations ({answered} answered), {} own keys acknowledged, {} \
             increments acknowledged and {} unanswered; clients read at {}",
            self.history.len(),
            self.acknowledged.len(),
            self.increments,
            self.unanswered_increments,
            reads.join(", "),
        );
    }

    /// Every check of the module documentation, against the `nodes` still in the cluster.
    pub(crate) async fn verify(&self, name: &str, nodes: &[EndpointAddr]) {
        self.summary(name);
        if let Err(violation) = check(&self.history) {
            let lease_reads = if !self.reads.contains(&Consistency::Lease) {
                ""
            } else if check(&self.history_without_reads_at(Consistency::Lease)).is_ok() {
                "; without the lease reads the history is linearizable"
            } else {
                "; without the lease reads it is not linearizable either"
            };
            panic!(
                "{name}: not linearizable (IROH_RAFT_SEED={}){lease_reads}:\n{violation}",
                self.seed
            );
        }
        self.verify_state(name, nodes).await;
    }

    /// The checks of [`Self::verify`] for a fault under which lease reads need not be
    /// linearizable: the history without the lease reads must be; whether the whole history is,
    /// it prints (a violation with its smallest failing sub-history). The process binaries'
    /// (`processes`, `netns`) frozen-leader and slow-clock tests use it; in-process faults must
    /// pass [`Self::verify`] with their lease reads.
    #[allow(dead_code)]
    pub(crate) async fn verify_all_but_lease_reads(&self, name: &str, nodes: &[EndpointAddr]) {
        self.summary(name);
        match check(&self.history) {
            Ok(()) => println!("{name}: the lease reads were linearizable"),
            Err(violation) => println!(
                "{name}: the lease reads were NOT linearizable, as lease reads may not be under \
                 this fault (IROH_RAFT_SEED={}):\n{violation}",
                self.seed
            ),
        }
        if let Err(violation) = check(&self.history_without_reads_at(Consistency::Lease)) {
            panic!(
                "{name}: the writes and linearizable reads are not linearizable \
                 (IROH_RAFT_SEED={}):\n{violation}",
                self.seed
            );
        }
        self.verify_state(name, nodes).await;
    }

    /// The checks after the history's: acknowledged writes, the counter, the replicas and their
    /// state hashes agreeing.
    pub(crate) async fn verify_state(&self, name: &str, nodes: &[EndpointAddr]) {
        let mut readers = Vec::new();
        for node in nodes {
            readers.push(connect(node).await);
        }
        same_applied_index(name, &readers).await;
        let mut registers = Vec::new();
        for (reader, node) in readers.iter().zip(nodes) {
            for (key, value) in &self.acknowledged {
                assert_eq!(
                    stale_get(reader, key).await.as_ref(),
                    Some(value),
                    "{name}: node {} lost the acknowledged put of {}",
                    node.id,
                    String::from_utf8_lossy(key)
                );
            }
            let count = stale_get(reader, COUNTER).await.map_or(0, |v| {
                String::from_utf8_lossy(&v).parse::<u64>().expect("a count")
            });
            assert!(
                (self.increments..=self.increments + self.unanswered_increments).contains(&count),
                "{name}: node {} counts {count}, but {} increments were acknowledged and {} \
                 unanswered: an increment was lost or applied twice",
                node.id,
                self.increments,
                self.unanswered_increments
            );
            let mut held = vec![count.to_string().into_bytes()];
            for key in REGISTERS {
                held.push(stale_get(reader, key).await.unwrap_or_default());
            }
            registers.push(held);
        }
        for reader in readers {
            reader.close().await;
        }
        assert!(
            registers.windows(2).all(|pair| pair[0] == pair[1]),
            "{name}: the replicas disagree on the registers: {registers:?}"
        );
        let manage = IrohRaftManagementClient::connect_with_key(admin_key(), nodes.to_vec())
            .await
            .expect("management client connects");
        let report = manage.check_consistency().await.expect("consistency check");
        assert!(
            report.consistent(),
            "{name}: the state hashes disagree: {report:?}"
        );
        manage.close().await;
    }
}

/// A client of `node`, speaking as the admin.
pub(crate) async fn connect(node: &EndpointAddr) -> Client {
    Client::connect_with_key(admin_key(), node.clone())
        .await
        .expect("client connects")
}

/// Waits (at most a minute) for every reader's node to report the same applied index.
async fn same_applied_index(name: &str, readers: &[Client]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut applied = Vec::new();
        for reader in readers {
            applied.push(reader.status().await.ok().and_then(|s| s.applied));
        }
        if applied[0].is_some() && applied.windows(2).all(|pair| pair[0] == pair[1]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: the replicas never applied the same index (applied: {applied:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stale_get(client: &Client, key: &[u8]) -> Option<Vec<u8>> {
    let query = Bytes::from(postcard::to_allocvec(&Query::Get { key }).expect("encode"));
    let answer = client
        .read(query, Consistency::Stale)
        .await
        .expect("a stale read")
        .expect("the query runs");
    match postcard::from_bytes(&answer).expect("decode") {
        QueryResponse::Value(value) => value,
        other => panic!("a get answered {other:?}"),
    }
}

fn encode(command: &Command<'_>) -> Bytes {
    Bytes::from(postcard::to_allocvec(command).expect("encode"))
}

/// One client's loop.
struct Runner {
    client: Client,
    number: usize,
    rng: Rng,
    history: Arc<Mutex<Vec<Operation>>>,
    start: Instant,
    consistency: Consistency,
    /// Reads only, never writes.
    only_reads: bool,
}

impl Runner {
    async fn run(mut self, run: Duration) -> Tally {
        let mut tally = Tally::default();
        let mut last_seen: Vec<Option<Vec<u8>>> = vec![None; REGISTERS.len() + 1];
        let mut written = 0u64;
        while self.start.elapsed() < run {
            written += 1;
            let fresh = format!("c{}-{written}", self.number).into_bytes();
            let choice = if self.only_reads {
                0
            } else {
                self.rng.next() % 12
            };
            if choice == 11 {
                // A key of its own, which must survive whatever happens.
                let key = format!("own/{}/{written}", self.number).into_bytes();
                let command = Command::Put {
                    key: &key,
                    value: &fresh,
                };
                if let Ok(Ok((_, Ok(_)))) =
                    tokio::time::timeout(OPERATION_LIMIT, self.client.write(encode(&command))).await
                {
                    tally.acknowledged.push((key, fresh));
                }
                continue;
            }
            let (slot, key, input) = if choice == 10 {
                // An increment of the counter from the count last seen.
                let seen = last_seen[REGISTERS.len()].clone();
                let next = seen.as_deref().map_or(0, |v| {
                    String::from_utf8_lossy(v).parse::<u64>().expect("count")
                }) + 1;
                let input = Input::Cas {
                    expected: seen,
                    new: next.to_string().into_bytes(),
                };
                (REGISTERS.len(), COUNTER, input)
            } else {
                let slot = (self.rng.next() % REGISTERS.len() as u64) as usize;
                let input = match choice {
                    0..=3 => Input::Get,
                    4..=6 => Input::Put(fresh),
                    _ => Input::Cas {
                        expected: last_seen[slot].clone(),
                        new: fresh,
                    },
                };
                (slot, REGISTERS[slot], input)
            };
            let invoked = self.start.elapsed().as_nanos() as u64;
            let output = tokio::time::timeout(OPERATION_LIMIT, self.one(key, &input))
                .await
                .unwrap_or(Output::Unknown);
            let completed = self.start.elapsed().as_nanos() as u64;
            match &output {
                Output::Value(value) | Output::Cas { current: value, .. } => {
                    last_seen[slot] = value.clone()
                }
                _ => {}
            }
            if key == COUNTER {
                match &output {
                    Output::Cas { swapped: true, .. } => tally.increments += 1,
                    Output::Unknown => tally.unanswered_increments += 1,
                    _ => {}
                }
                if output == Output::Unknown {
                    // Learn the count again (a failed increment answers it) before counting on it.
                    last_seen[slot] = None;
                }
            }
            self.history.lock().expect("history").push(Operation {
                client: self.number,
                key: key.to_vec(),
                input,
                output,
                invoked,
                completed,
            });
        }
        self.client.close().await;
        tally
    }

    /// One register operation, as the client saw it.
    async fn one(&self, key: &[u8], input: &Input) -> Output {
        match input {
            Input::Get => {
                let query =
                    Bytes::from(postcard::to_allocvec(&Query::Get { key }).expect("encode"));
                match self.client.read(query, self.consistency).await {
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
                match self.client.write(encode(&command)).await {
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
}
