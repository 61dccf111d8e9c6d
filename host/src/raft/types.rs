//! The raft type configuration: what a log entry carries, what applying it returns, and how a
//! member is addressed.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::ClusterConfig;

/// The payload of a normal log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogPayload {
    /// A state-machine command, handed to the plugin's `apply` unchanged.
    Command(Bytes),
    /// A new cluster configuration, effective from this entry on every member.
    Config(ClusterConfig),
}

impl fmt::Display for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command(bytes) => write!(f, "command({} bytes)", bytes.len()),
            Self::Config(config) => write!(f, "config(version {})", config.version),
        }
    }
}

/// What applying an entry returns to the client that proposed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyResponse {
    /// An entry with nothing for the plugin (blank or membership).
    #[default]
    None,
    /// The plugin's response bytes.
    Ok(Bytes),
    /// The entry failed: the plugin's error, or the trap that stopped it. Every replica records the
    /// same message.
    Failed(String),
}

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

openraft::declare_raft_types!(
    /// The openraft type configuration of iroh-raft.
    pub TypeConfig:
        D = LogPayload,
        R = ApplyResponse,
        NodeId = u64,
        Node = Member,
);
