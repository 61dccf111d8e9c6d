//! [`SessionTag`]: a write's place in its client's session, so that every replica applies it once
//! however often it is sent (Raft thesis §6.3).

use serde::{Deserialize, Serialize};

/// Which client sent a write, and which of its writes it is. A write retried after a timeout,
/// forwarded again after an election or resent to another member carries the same tag, and
/// applying it a second time returns the first result instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionTag {
    /// The session: random, chosen by the client when it starts.
    pub client: [u8; 16],
    /// This write's number in the session: 1, 2, 3, ... in the order the client issued them.
    pub seq: u64,
    /// Every write of the session numbered below this has been answered: the cluster may forget
    /// their results. The client never sends those again.
    pub acked: u64,
}
