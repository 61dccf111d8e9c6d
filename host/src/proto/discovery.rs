//! The messages of `iroh-raft-discovery/0`: one request and one reply per stream.
//!
//! - **Bootstrap**: a node holding a join ticket asks a member to add it ([`JoinRequest`],
//!   [`JoinReply`]).
//! - **Announce**: a node says who it is ([`Announce`]) and learns who the receiver is and what
//!   the receiver's committed membership says of the sender ([`AnnounceReply`]). Members announce
//!   themselves to each other periodically; a removed node learns of its removal this way, and the
//!   leader asks a node to be added who it is before adding it. The reply tells the sender only
//!   about itself and the receiver, so it needs no permission.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::Member;

/// What a stream on `iroh-raft-discovery/0` asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscoveryRequest {
    /// Join the cluster (the ticket's join).
    Bootstrap(JoinRequest),
    /// Who I am; who are you, and am I a member?
    Announce(Announce),
}

/// The answer on the same stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscoveryReply {
    /// The answer to a [`DiscoveryRequest::Bootstrap`].
    Bootstrap(JoinReply),
    /// The answer to a [`DiscoveryRequest::Announce`].
    Announced(AnnounceReply),
    /// The request could not be read or is refused; the text says why.
    Refused(String),
}

/// What a node is, in its own eyes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AnnouncedRole {
    /// A voter.
    Voter,
    /// A learner, to be promoted once caught up.
    Learner,
    /// A member that never votes.
    Observer,
    /// Waiting to be added by an operator (`node --standby-as ID`), or joined and not yet in the
    /// membership it has applied.
    Standby,
    /// Removed from the cluster; it no longer serves.
    Removed,
}

impl std::fmt::Display for AnnouncedRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Voter => "voter",
            Self::Learner => "learner",
            Self::Observer => "observer",
            Self::Standby => "standby",
            Self::Removed => "removed",
        })
    }
}

/// A node saying who it is. Its key is the connection's authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Its raft id.
    pub node_id: u64,
    /// The cluster it belongs to (or waits to join).
    pub cluster_id: [u8; 16],
    /// What it is.
    pub role: AnnouncedRole,
    /// The iroh-raft version it runs.
    pub version: String,
    /// The addresses it can be dialled at.
    pub endpoints: Vec<SocketAddr>,
}

/// What the receiver's committed membership says of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerStanding {
    /// The sender's key is a member.
    Member,
    /// The sender's key is not in the receiver's committed membership, made at `membership_index`.
    NotMember {
        /// The log index of that membership.
        membership_index: u64,
    },
    /// The receiver has no committed membership to judge by (it is new, or waits as a standby).
    Unknown,
}

/// The answer to an [`Announce`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceReply {
    /// Who the receiver is.
    pub receiver: Announce,
    /// The leader the receiver knows of.
    pub leader: Option<u64>,
    /// What the receiver's membership says of the sender.
    pub sender: PeerStanding,
}

/// Sent by a joining node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The cluster the ticket names.
    pub cluster_id: [u8; 16],
    /// The ticket's secret.
    pub secret: [u8; 32],
    /// `None`: join, the leader picks the id. `Some(id)`: a standby node an operator will add as
    /// `id` (`iroh-raft member add`); the member only answers with the membership.
    pub node_id: Option<u64>,
    /// The addresses it listens on (its key is the connection's authenticated identity).
    pub addrs: Vec<std::net::SocketAddr>,
}

/// The member's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinReply {
    /// Added as a learner with this id; it is promoted to voter once caught up. `members` is the
    /// membership at the time, so the new node admits raft traffic from all of them.
    Accepted {
        /// The joining node's raft id.
        node_id: u64,
        /// The cluster's members (id, address).
        members: Vec<(u64, Member)>,
    },
    /// This member is not the leader: ask this one instead.
    Redirect(Member),
    /// No leader right now: retry shortly.
    NoLeader,
    /// Refused: the reason says what to fix.
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{decode_body, encode_frame};

    #[test]
    fn join_messages_round_trip_and_garbage_is_an_error() {
        let request = JoinRequest {
            cluster_id: [1; 16],
            secret: [2; 32],
            node_id: Some(3),
            addrs: vec!["127.0.0.1:7001".parse().unwrap()],
        };
        let bytes = encode_frame(&request).unwrap();
        assert_eq!(decode_body::<JoinRequest>(&bytes[4..]).unwrap(), request);
        let reply = JoinReply::Accepted {
            node_id: 3,
            members: vec![(1, Member::default())],
        };
        let bytes = encode_frame(&reply).unwrap();
        assert_eq!(decode_body::<JoinReply>(&bytes[4..]).unwrap(), reply);
        assert!(decode_body::<JoinRequest>(&[0xff; 7]).is_err());
        assert!(decode_body::<JoinReply>(&[0x09]).is_err());
    }

    fn announce(node_id: u64) -> Announce {
        Announce {
            node_id,
            cluster_id: [7; 16],
            role: AnnouncedRole::Standby,
            version: "0.1.0".into(),
            endpoints: vec!["10.0.0.1:7001".parse().unwrap()],
        }
    }

    #[test]
    fn discovery_messages_round_trip_and_garbage_is_an_error() {
        let requests = [
            DiscoveryRequest::Bootstrap(JoinRequest {
                cluster_id: [1; 16],
                secret: [2; 32],
                node_id: None,
                addrs: Vec::new(),
            }),
            DiscoveryRequest::Announce(announce(4)),
        ];
        for request in requests {
            let bytes = encode_frame(&request).unwrap();
            assert_eq!(
                decode_body::<DiscoveryRequest>(&bytes[4..]).unwrap(),
                request
            );
        }
        let replies = [
            DiscoveryReply::Bootstrap(JoinReply::NoLeader),
            DiscoveryReply::Announced(AnnounceReply {
                receiver: announce(1),
                leader: Some(1),
                sender: PeerStanding::NotMember {
                    membership_index: 9,
                },
            }),
            DiscoveryReply::Refused("no".into()),
        ];
        for reply in replies {
            let bytes = encode_frame(&reply).unwrap();
            assert_eq!(decode_body::<DiscoveryReply>(&bytes[4..]).unwrap(), reply);
        }
        for garbage in [&[0x05][..], &[0x01, 0xff, 0xff], &[]] {
            assert!(decode_body::<DiscoveryRequest>(garbage).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_body::<DiscoveryRequest>(&bytes);
            let _ = decode_body::<DiscoveryReply>(&bytes);
        }
    }
}
