//! A node that has been removed from its cluster knows it: it stops its raft core, refuses
//! requests naming the removal, says so in its health, and says the same after a restart (the
//! fact is kept in the data directory, file `removed`).
//!
//! It learns of the removal in one of two ways, both decided by the pure functions here:
//! - it sees its own committed membership go from one that names it to one that does not
//!   ([`removed_by_transition`]);
//! - a member answers its announce that its committed membership, made at a later index than the
//!   last one that named this node, does not name it ([`removed_by_peer`]). That covers a node
//!   that was down or cut off when it was removed and never received the entry.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::inspect::View;
use crate::proto::{Operation, PeerStanding, RequestError};

/// The file in the data directory that records a removal.
const FILE: &str = "removed";

/// Whether, and at which membership index, this node was removed.
#[derive(Debug)]
pub(crate) struct Removal {
    path: PathBuf,
    at: Mutex<Option<u64>>,
}

impl Removal {
    /// Reads the record in `dir` (none if the file is absent).
    pub(crate) fn load(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(FILE);
        let at = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not a log index: {e}", path.display()),
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Self {
            path,
            at: Mutex::new(at),
        })
    }

    /// The membership index this node was removed at, if it was.
    pub(crate) fn at(&self) -> Option<u64> {
        *self.at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(Removed)` if this node was removed and `operation` is not one it still answers.
    pub(crate) fn check(&self, node_id: u64, operation: &Operation) -> Result<(), RequestError> {
        match self.at() {
            Some(membership_index) if !served_when_removed(operation) => {
                Err(RequestError::Removed {
                    node_id,
                    membership_index,
                })
            }
            _ => Ok(()),
        }
    }

    /// The health problem a removed node reports.
    pub(crate) fn problem(&self) -> Option<String> {
        self.at().map(|membership_index| {
            format!(
                "this node was removed from the cluster (membership at log index \
                 {membership_index}); it no longer serves: wipe its data directory and join again \
                 to reuse it"
            )
        })
    }

    /// Records a removal at `membership_index`: at once in memory (the node stops serving), then
    /// durably. `Ok(false)` if one was already recorded; an I/O error leaves the in-memory record,
    /// and a restarted node learns of its removal from its peers again.
    pub(crate) fn record(&self, membership_index: u64) -> std::io::Result<bool> {
        let mut at = self.at.lock().unwrap_or_else(|p| p.into_inner());
        if at.is_some() {
            return Ok(false);
        }
        *at = Some(membership_index);
        // Written whole or not at all: a temporary file, synced, renamed, the directory synced.
        let partial = self.path.with_extension("partial");
        let file = std::fs::File::create(&partial)?;
        std::io::Write::write_all(&mut &file, format!("{membership_index}\n").as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&partial, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(true)
    }
}

/// What a removed node still answers: its own status and health, which say it was removed.
pub(crate) fn served_when_removed(operation: &Operation) -> bool {
    matches!(operation, Operation::Status | Operation::GetHealthStatus)
}

/// The membership facts the decisions need, from one [`View`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OwnMembership {
    /// The index of the membership in effect.
    pub(crate) index: u64,
    /// Whether it names this node.
    pub(crate) names_me: bool,
    /// Whether it is committed (its index is at or below the commit index).
    pub(crate) committed: bool,
}

impl OwnMembership {
    /// What `view` says of the node whose key is `my_key`; `None` before it has any membership.
    /// "Names me" means this node's id *with this node's key*: ids of removed members are handed
    /// out again, so a newcomer replaying the log must not take an old member for itself.
    pub(crate) fn of(view: &View, my_key: &[u8; 32]) -> Option<Self> {
        let index = view.membership_index?;
        Some(Self {
            index,
            names_me: names(view, my_key),
            committed: view.committed.is_some_and(|c| c >= index),
        })
    }
}

/// Whether `view`'s membership has this node's id with this node's key.
pub(crate) fn names(view: &View, my_key: &[u8; 32]) -> bool {
    view.members
        .get(&view.node_id)
        .is_some_and(|member| member.endpoint_key == *my_key)
}

/// What this node's committed membership says of a peer whose key is `key`.
pub(crate) fn standing_of(view: &View, key: &[u8; 32]) -> PeerStanding {
    match view.membership_index {
        Some(index) if view.committed.is_some_and(|c| c >= index) => {
            if view.members.values().any(|m| m.endpoint_key == *key) {
                PeerStanding::Member
            } else {
                PeerStanding::NotMember {
                    membership_index: index,
                }
            }
        }
        _ => PeerStanding::Unknown,
    }
}

/// The removal index if the committed membership went from naming this node (`before`, the
/// highest committed membership index that named it) to `now`, which does not.
pub(crate) fn removed_by_transition(named_me_at: Option<u64>, now: OwnMembership) -> Option<u64> {
    let named_at = named_me_at?;
    (now.committed && !now.names_me && now.index > named_at).then_some(now.index)
}

/// The removal index if a peer's committed membership, at a later index than `named_me_at` (the
/// highest membership index this node saw naming it), does not name this node.
pub(crate) fn removed_by_peer(named_me_at: Option<u64>, peer: PeerStanding) -> Option<u64> {
    match (named_me_at, peer) {
        (Some(named_at), PeerStanding::NotMember { membership_index })
            if membership_index > named_at =>
        {
            Some(membership_index)
        }
        _ => None,
    }
}

/// The highest committed membership index that named this node: `seen` so far, updated with
/// `now`. An uncommitted one does not count: it may be truncated (a standby whose add the dying
/// leader never committed was never a member).
pub(crate) fn named_me_at(seen: Option<u64>, now: Option<OwnMembership>) -> Option<u64> {
    match now {
        Some(own) if own.names_me && own.committed => {
            Some(seen.map_or(own.index, |s| s.max(own.index)))
        }
        _ => seen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Member;

    fn own(index: u64, names_me: bool, committed: bool) -> OwnMembership {
        OwnMembership {
            index,
            names_me,
            committed,
        }
    }

    #[test]
    fn a_removed_node_answers_only_who_it_is() {
        assert!(served_when_removed(&Operation::Status));
        assert!(served_when_removed(&Operation::GetHealthStatus));
        assert!(!served_when_removed(&Operation::GetClusterStatus));
        assert!(!served_when_removed(&Operation::GetConfiguration));
    }

    #[test]
    fn the_record_survives_a_restart_and_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let removal = Removal::load(dir.path()).unwrap();
        assert_eq!(removal.at(), None);
        assert!(removal.record(12).unwrap());
        assert!(!removal.record(40).unwrap());
        let again = Removal::load(dir.path()).unwrap();
        assert_eq!(again.at(), Some(12));
        assert!(matches!(
            again.check(4, &Operation::GetConfiguration),
            Err(RequestError::Removed {
                node_id: 4,
                membership_index: 12
            })
        ));
        assert!(again.check(4, &Operation::GetHealthStatus).is_ok());
        assert!(again.problem().unwrap().contains("removed"));
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(Removal::load(dir.path()).is_err());
    }

    #[test]
    fn a_committed_membership_without_this_node_after_one_with_it_is_a_removal() {
        assert_eq!(removed_by_transition(Some(5), own(9, false, true)), Some(9));
        // Not committed yet: it may still be truncated.
        assert_eq!(removed_by_transition(Some(5), own(9, false, false)), None);
        // A joining learner replays memberships from before it was added: never named it.
        assert_eq!(removed_by_transition(None, own(1, false, true)), None);
        assert_eq!(removed_by_transition(Some(9), own(9, true, true)), None);
    }

    #[test]
    fn a_peer_only_proves_a_removal_with_a_later_membership() {
        let not_member = |membership_index| PeerStanding::NotMember { membership_index };
        assert_eq!(removed_by_peer(Some(5), not_member(9)), Some(9));
        // A peer that lags (it has not applied the membership that added this node).
        assert_eq!(removed_by_peer(Some(5), not_member(3)), None);
        assert_eq!(removed_by_peer(Some(5), not_member(5)), None);
        // A node that was never named (a standby, a joiner catching up) is never "removed".
        assert_eq!(removed_by_peer(None, not_member(9)), None);
        assert_eq!(removed_by_peer(Some(5), PeerStanding::Member), None);
        assert_eq!(removed_by_peer(Some(5), PeerStanding::Unknown), None);
    }

    #[test]
    fn named_me_at_keeps_the_highest_index_that_named_this_node() {
        assert_eq!(named_me_at(None, None), None);
        assert_eq!(named_me_at(None, Some(own(3, false, true))), None);
        assert_eq!(named_me_at(None, Some(own(3, true, true))), Some(3));
        // An uncommitted add may be truncated: it does not make this node a member.
        assert_eq!(named_me_at(None, Some(own(3, true, false))), None);
        assert_eq!(named_me_at(Some(7), Some(own(3, true, true))), Some(7));
        assert_eq!(named_me_at(Some(7), Some(own(9, false, true))), Some(7));
    }

    #[test]
    fn bug_a_newcomer_with_a_removed_members_id_took_that_member_for_itself() {
        let mut view = View {
            node_id: 5,
            membership_index: Some(8),
            committed: Some(8),
            ..View::default()
        };
        view.members.insert(
            5,
            Member {
                endpoint_key: [0x0d; 32],
                ..Member::default()
            },
        );
        let newcomer = [0x0e; 32];
        assert!(!OwnMembership::of(&view, &newcomer).unwrap().names_me);
        assert!(OwnMembership::of(&view, &[0x0d; 32]).unwrap().names_me);
    }

    #[test]
    fn standing_follows_the_committed_membership() {
        let mut view = View {
            node_id: 1,
            membership_index: Some(4),
            committed: Some(4),
            ..View::default()
        };
        view.members.insert(
            1,
            Member {
                endpoint_key: [1; 32],
                ..Member::default()
            },
        );
        assert_eq!(standing_of(&view, &[1; 32]), PeerStanding::Member);
        assert_eq!(
            standing_of(&view, &[2; 32]),
            PeerStanding::NotMember {
                membership_index: 4
            }
        );
        view.committed = Some(3);
        assert_eq!(standing_of(&view, &[2; 32]), PeerStanding::Unknown);
        view.membership_index = None;
        assert_eq!(standing_of(&view, &[2; 32]), PeerStanding::Unknown);
    }
}
