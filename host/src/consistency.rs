//! Deciding whether replicas agree: which capture point to compare ([`common_index`]) and what the
//! members' state hashes there say ([`decide`]). Pure functions, shared by the operator's check
//! (`IrohRaftManagementClient::check_consistency`, `iroh-raft check consistency`) and the check
//! every node runs at each check point (`node/consistency_check.rs`).

use serde::{Deserialize, Serialize};

use crate::proto::Divergence;

/// What the members' hashes at one index say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The index compared.
    pub index: u64,
    /// The hash more than half of all the members asked hold (`None`: no majority agrees).
    pub majority: Option<[u8; 32]>,
    /// Members holding the majority's hash.
    pub agreeing: Vec<u64>,
    /// Members that answered with another hash than the majority's.
    pub differing: Vec<Divergence>,
    /// Members that gave no hash (unreachable, or holding no view at the index).
    pub unanswered: Vec<u64>,
}

impl Verdict {
    /// Every member answered, and with the same hash.
    pub fn consistent(&self) -> bool {
        self.majority.is_some() && self.differing.is_empty() && self.unanswered.is_empty()
    }
}

/// The verdict on `answers` (every member asked, with its hash at `index` or `None` when it gave
/// none). The majority is counted over all the members asked, answered or not, so that a
/// minority of reachable members can never outvote the rest.
pub fn decide(index: u64, answers: &[(u64, Option<[u8; 32]>)]) -> Verdict {
    let mut counts: Vec<([u8; 32], usize)> = Vec::new();
    for (_, hash) in answers {
        if let Some(hash) = hash {
            match counts.iter_mut().find(|(h, _)| h == hash) {
                Some((_, count)) => *count += 1,
                None => counts.push((*hash, 1)),
            }
        }
    }
    let majority = counts
        .iter()
        .find(|(_, count)| count * 2 > answers.len())
        .map(|(hash, _)| *hash);
    let mut verdict = Verdict {
        index,
        majority,
        agreeing: Vec::new(),
        differing: Vec::new(),
        unanswered: Vec::new(),
    };
    for (node_id, hash) in answers {
        match (hash, majority) {
            (None, _) => verdict.unanswered.push(*node_id),
            (Some(hash), Some(majority)) if *hash == majority => verdict.agreeing.push(*node_id),
            (Some(hash), Some(majority)) => verdict.differing.push(Divergence {
                node_id: *node_id,
                index,
                hash: *hash,
                majority,
            }),
            (Some(_), None) => {}
        }
    }
    verdict
}

/// The highest index every member in `points` can hash (each member's capture points), if any.
pub fn common_index(points: &[Vec<u64>]) -> Option<u64> {
    let (first, rest) = points.split_first()?;
    first
        .iter()
        .rev()
        .copied()
        .find(|index| rest.iter().all(|held| held.contains(index)))
}

/// One member's answer in a consistency check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberHash {
    /// The member.
    pub node_id: u64,
    /// Its hash at the report's index, or why there is none (unreachable, no view there, ...).
    pub outcome: Result<[u8; 32], String>,
}

/// What `check_consistency` found: every member's hash at the highest common capture point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// The index compared (`None`: the members hold no capture point in common).
    pub index: Option<u64>,
    /// Each member's capture points, or why it did not list them.
    pub points: Vec<(u64, Result<Vec<u64>, String>)>,
    /// Each member's answer at `index`, in member order.
    pub members: Vec<MemberHash>,
    /// What the answers say (`None` when there was no index to compare).
    pub verdict: Option<Verdict>,
}

impl ConsistencyReport {
    /// Every member was reached and all hashes agree.
    pub fn consistent(&self) -> bool {
        self.verdict.as_ref().is_some_and(Verdict::consistent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [0xa; 32];
    const B: [u8; 32] = [0xb; 32];

    #[test]
    fn the_odd_one_out_differs_from_the_majority() {
        let verdict = decide(10, &[(1, Some(A)), (2, Some(B)), (3, Some(A))]);
        assert_eq!(verdict.majority, Some(A));
        assert_eq!(verdict.agreeing, vec![1, 3]);
        assert_eq!(
            verdict.differing,
            vec![Divergence {
                node_id: 2,
                index: 10,
                hash: B,
                majority: A
            }]
        );
        assert!(!verdict.consistent());
        assert!(decide(10, &[(1, Some(A)), (2, Some(A)), (3, Some(A))]).consistent());
    }

    #[test]
    fn the_majority_counts_members_that_did_not_answer() {
        // Two of five agreeing is no majority, whatever the others' silence means.
        let verdict = decide(
            4,
            &[
                (1, Some(A)),
                (2, Some(A)),
                (3, None),
                (4, None),
                (5, Some(B)),
            ],
        );
        assert_eq!(verdict.majority, None);
        assert!(verdict.differing.is_empty());
        assert_eq!(verdict.unanswered, vec![3, 4]);
        // Three of five is.
        let verdict = decide(
            4,
            &[
                (1, Some(A)),
                (2, Some(A)),
                (3, Some(A)),
                (4, None),
                (5, Some(B)),
            ],
        );
        assert_eq!(verdict.majority, Some(A));
        assert_eq!(verdict.differing.len(), 1);
        assert_eq!(verdict.unanswered, vec![4]);
        assert!(
            !verdict.consistent(),
            "a silent member is not a consistent one"
        );
        // Two members that disagree: neither is the majority.
        assert_eq!(decide(1, &[(1, Some(A)), (2, Some(B))]).majority, None);
        assert_eq!(decide(1, &[]).majority, None);
        assert!(decide(1, &[(1, Some(A))]).consistent());
    }

    #[test]
    fn the_highest_index_every_member_holds_is_compared() {
        assert_eq!(
            common_index(&[vec![10, 20, 25], vec![10, 20, 30], vec![20, 31]]),
            Some(20)
        );
        assert_eq!(common_index(&[vec![7], vec![7], vec![7]]), Some(7));
        assert_eq!(common_index(&[vec![7], vec![8]]), None);
        assert_eq!(common_index(&[vec![1, 2], vec![]]), None);
        assert_eq!(common_index(&[]), None);
    }
}
