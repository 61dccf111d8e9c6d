//! The messages of `iroh-raft-discovery/0`: a node holding a join ticket asks a member to add it.

use serde::{Deserialize, Serialize};

use super::Member;

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
}
