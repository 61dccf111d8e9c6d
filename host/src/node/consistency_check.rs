//! Consistency on this node: answering `GetStateHash` ([`answer`]), the check it runs at every
//! check point against the other members ([`run`]), and what those checks found
//! ([`ConsistencyRecord`], reported by the node's health and the cluster status).
//!
//! At each check point (a multiple of the replicated `check_every`) the node hashes its own view,
//! asks every other member for its hash at the same index (they wait a few seconds if they are
//! behind), and decides with [`decide`]: a hash more than half of all members hold is the
//! majority. If its own hash differs, it publishes `DivergenceDetected` and reports the problem
//! until a later check agrees. Checks run on their own task, so they never hold up applying.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use iroh::Endpoint;

use super::inspect::View;
use crate::client::{Client, ClientError};
use crate::consistency::{Verdict, decide};
use crate::hash::sha256_hex;
use crate::proto::{
    CapturePoints, ClusterEvent, Divergence, Member, Operation, Reply, RequestError, StateHash,
};
use crate::raft::apply::captures::{CaptureError, StateCaptures};
use crate::raft::{SharedRaft, StateMachineStore};

/// How long a node that has not reached the index asked for waits for it before it answers.
pub(crate) const HASH_WAIT: Duration = Duration::from_secs(5);
/// How long one peer may take to answer (its wait for the index included).
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dialling a peer may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// Answers `GetStateHash { at_index }` from this node's capture points.
pub(crate) async fn answer(
    captures: &StateCaptures,
    node_id: u64,
    at_index: Option<u64>,
) -> Result<Reply, RequestError> {
    let Some(index) = at_index else {
        let (applied, indexes) = captures.points();
        return Ok(Reply::CapturePoints(CapturePoints {
            node_id,
            applied,
            indexes,
        }));
    };
    match captures.hash_at(index, HASH_WAIT).await {
        Ok(hash) => Ok(Reply::StateHash(StateHash {
            node_id,
            index,
            hash,
        })),
        Err(CaptureError::NotHeld {
            index,
            held,
            applied,
        }) => Err(RequestError::NoStateCapture {
            index,
            held,
            applied,
        }),
        Err(CaptureError::Storage(error)) => Err(RequestError::Storage {
            what: format!("its state at index {index}"),
            reason: error.to_string(),
        }),
    }
}

/// What this node's checks found, per member (itself included): the latest divergence found and
/// not yet cleared by a later check that agreed.
#[derive(Debug, Default)]
pub(crate) struct ConsistencyRecord {
    found: Mutex<BTreeMap<u64, Divergence>>,
}

impl ConsistencyRecord {
    /// Takes in a check's verdict; returns this node's own divergence if the check found one.
    pub(crate) fn update(&self, node_id: u64, verdict: &Verdict) -> Option<Divergence> {
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        for agreeing in &verdict.agreeing {
            found.remove(agreeing);
        }
        for divergence in &verdict.differing {
            found.insert(divergence.node_id, *divergence);
        }
        verdict
            .differing
            .iter()
            .find(|d| d.node_id == node_id)
            .copied()
    }

    /// Every member found to differ, by id.
    pub(crate) fn diverged(&self) -> Vec<Divergence> {
        let found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        found.values().copied().collect()
    }

    /// This node's own problem, in words an operator can act on (empty: none found).
    pub(crate) fn problems(&self, node_id: u64) -> Vec<String> {
        let found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        found
            .get(&node_id)
            .map(|d| {
                format!(
                    "state diverged: at index {} this node's state hash is {} but the majority's \
                     is {}; stop this node and replace its data directory from a healthy member",
                    d.index,
                    &sha256_hex(&d.hash)[..16],
                    &sha256_hex(&d.majority)[..16],
                )
            })
            .into_iter()
            .collect()
    }
}

/// Compares this node's state with the other members' at every check point it reaches, until the
/// task is aborted.
pub(crate) async fn run(
    raft: SharedRaft<StateMachineStore>,
    state_machine: StateMachineStore,
    endpoint: Endpoint,
    record: Arc<ConsistencyRecord>,
) {
    let node_id = View::of(&raft.get()).node_id;
    let mut checks = state_machine.captures().check_points();
    // A check point the node opened at counts too.
    checks.mark_changed();
    let mut peers = Peers {
        endpoint,
        open: BTreeMap::new(),
    };
    let mut last_checked = None;
    while checks.changed().await.is_ok() {
        let Some(index) = *checks.borrow_and_update() else {
            continue;
        };
        if last_checked.is_some_and(|last| last >= index) {
            continue;
        }
        last_checked = Some(index);
        let own = match state_machine
            .captures()
            .hash_at(index, Duration::ZERO)
            .await
        {
            Ok(hash) => hash,
            Err(error) => {
                tracing::debug!(index, "no own hash to check: {error}");
                continue;
            }
        };
        let members = View::of(&raft.get()).members;
        let answers = peers.hashes(node_id, own, index, &members).await;
        let verdict = decide(index, &answers);
        if let Some(divergence) = record.update(node_id, &verdict) {
            tracing::error!(
                index,
                local = %sha256_hex(&divergence.hash),
                majority = %sha256_hex(&divergence.majority),
                "this node's state diverged from the majority's"
            );
            state_machine
                .events()
                .publish(ClusterEvent::DivergenceDetected {
                    index,
                    local: divergence.hash,
                    majority: divergence.majority,
                });
        } else if !verdict.differing.is_empty() {
            let differing: Vec<u64> = verdict.differing.iter().map(|d| d.node_id).collect();
            tracing::warn!(
                index,
                ?differing,
                "members' state diverged from the majority's"
            );
        } else if verdict.majority.is_none() {
            tracing::info!(index, unanswered = ?verdict.unanswered, "consistency check inconclusive");
        }
    }
}

/// The connections to the other members' management protocol, one per member.
struct Peers {
    endpoint: Endpoint,
    open: BTreeMap<u64, Arc<Client>>,
}

impl Peers {
    /// Every member's hash at `index` (this node's is `own`), `None` for those that gave none.
    async fn hashes(
        &mut self,
        node_id: u64,
        own: [u8; 32],
        index: u64,
        members: &BTreeMap<u64, Member>,
    ) -> Vec<(u64, Option<[u8; 32]>)> {
        self.open
            .retain(|id, client| members.contains_key(id) && !client.is_closed());
        let mut asks = Vec::new();
        for (id, member) in members {
            if *id == node_id {
                continue;
            }
            let client = self.client(*id, member).await;
            asks.push(async move {
                let hash = match client {
                    Some(client) => ask(&client, index).await,
                    None => None,
                };
                (*id, hash)
            });
        }
        let mut answers = futures_util::future::join_all(asks).await;
        if members.contains_key(&node_id) {
            answers.push((node_id, Some(own)));
        }
        answers.sort_by_key(|(id, _)| *id);
        answers
    }

    async fn client(&mut self, id: u64, member: &Member) -> Option<Arc<Client>> {
        if let Some(client) = self.open.get(&id) {
            return Some(client.clone());
        }
        let addr = member.endpoint_addr().ok()?;
        let dialled = tokio::time::timeout(
            DIAL_TIMEOUT,
            Client::connect_from(self.endpoint.clone(), addr),
        )
        .await;
        match dialled {
            Ok(Ok(client)) => {
                let client = Arc::new(client);
                self.open.insert(id, client.clone());
                Some(client)
            }
            Ok(Err(error)) => {
                tracing::debug!(
                    member = id,
                    "cannot reach it for a consistency check: {error}"
                );
                None
            }
            Err(_) => {
                tracing::debug!(member = id, "no answer within {DIAL_TIMEOUT:?}");
                None
            }
        }
    }
}

/// A peer's hash at `index`, if it gives one in time.
async fn ask(client: &Client, index: u64) -> Option<[u8; 32]> {
    let request = client.request(Operation::GetStateHash {
        at_index: Some(index),
    });
    match tokio::time::timeout(PEER_TIMEOUT, request).await {
        Ok(Ok(Reply::StateHash(hash))) if hash.index == index => Some(hash.hash),
        Ok(Ok(other)) => {
            tracing::debug!(index, "unexpected answer to GetStateHash: {other:?}");
            None
        }
        Ok(Err(ClientError::Request(error))) => {
            tracing::debug!(index, "a member gave no hash: {error}");
            None
        }
        Ok(Err(error)) => {
            tracing::debug!(index, "asking a member for its hash failed: {error}");
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_divergence_is_reported_until_a_later_check_agrees() {
        let record = ConsistencyRecord::default();
        let (a, b) = ([1; 32], [2; 32]);
        let split = decide(5, &[(1, Some(a)), (2, Some(a)), (3, Some(b))]);
        assert_eq!(record.update(1, &split), None, "node 1 agrees");
        assert_eq!(record.diverged().len(), 1);
        assert!(record.problems(1).is_empty());

        let on_three = ConsistencyRecord::default();
        let own = on_three.update(3, &split).expect("node 3 differs");
        assert_eq!((own.index, own.hash, own.majority), (5, b, a));
        assert!(on_three.problems(3)[0].contains("index 5"));

        // An inconclusive check changes nothing; one that agrees clears it.
        let silent = decide(10, &[(1, Some(a)), (2, None), (3, None)]);
        assert_eq!(on_three.update(3, &silent), None);
        assert_eq!(on_three.problems(3).len(), 1);
        let agreed = decide(10, &[(1, Some(a)), (2, Some(a)), (3, Some(a))]);
        on_three.update(3, &agreed);
        assert!(on_three.problems(3).is_empty());
        assert!(on_three.diverged().is_empty());
    }
}
