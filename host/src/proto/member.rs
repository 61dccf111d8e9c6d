//! A member of the cluster: how to reach it ([`Member`]) and what it does in raft ([`MemberRole`]).

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// How to reach a member: its iroh endpoint key and the direct addresses it listens on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The member's ed25519 endpoint key (its iroh `EndpointId`), the identity peers authenticate.
    pub endpoint_key: [u8; 32],
    /// Socket addresses it accepts connections on.
    pub addrs: Vec<SocketAddr>,
    /// A non-voter that is never promoted (an observer), as opposed to a learner that becomes a
    /// voter once it has caught up.
    pub observer: bool,
}
impl Member {
    /// The (non-observer) member record of the node at `addr`.
    pub fn at(addr: &iroh::EndpointAddr) -> Self {
        Self {
            endpoint_key: *addr.id.as_bytes(),
            addrs: addr.ip_addrs().copied().collect(),
            observer: false,
        }
    }

    /// Where to dial this member: its key and its direct addresses.
    pub fn endpoint_addr(&self) -> Result<iroh::EndpointAddr, iroh::KeyParsingError> {
        let id = iroh::EndpointId::from_bytes(&self.endpoint_key)?;
        Ok(self
            .addrs
            .iter()
            .fold(iroh::EndpointAddr::new(id), |addr, socket| {
                addr.with_ip_addr(*socket)
            }))
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.endpoint_key[..8]))?;
        for addr in &self.addrs {
            write!(f, " {addr}")?;
        }
        if self.observer {
            f.write_str(" (observer)")?;
        }
        Ok(())
    }
}

/// A member's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberRole {
    /// Votes in elections and counts toward the quorum.
    Voter,
    /// Receives the log; promoted to voter automatically once caught up.
    Learner,
    /// Receives the log; never promoted.
    Observer,
}

impl MemberRole {
    /// The role of `member`: a voter if it votes, else an observer or a learner by its flag.
    pub(crate) fn of(votes: bool, member: &Member) -> Self {
        if votes {
            Self::Voter
        } else if member.observer {
            Self::Observer
        } else {
            Self::Learner
        }
    }

    /// The name used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voter => "voter",
            Self::Learner => "learner",
            Self::Observer => "observer",
        }
    }

    /// The name with its article, for sentences: "a voter", "an observer".
    pub fn with_article(self) -> &'static str {
        match self {
            Self::Voter => "a voter",
            Self::Learner => "a learner",
            Self::Observer => "an observer",
        }
    }
}

impl std::fmt::Display for MemberRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MemberRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "voter" => Ok(Self::Voter),
            "learner" => Ok(Self::Learner),
            "observer" => Ok(Self::Observer),
            other => Err(format!(
                "unknown role `{other}`: expected voter, learner or observer"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_member_role_said_a_observer() {
        assert_eq!(MemberRole::Observer.with_article(), "an observer");
        assert_eq!(MemberRole::Voter.with_article(), "a voter");
        assert_eq!(MemberRole::Learner.with_article(), "a learner");
    }
}
