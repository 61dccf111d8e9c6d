//! The join ticket `iroh-raft node --init` prints: which cluster, where to reach it, and the
//! secret that lets a new node in. Text form: `irohraft1` followed by lowercase hex of the postcard
//! encoding, so it survives copy and paste and shells.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const PREFIX: &str = "irohraft1";

/// A join ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTicket {
    /// The cluster's id, chosen at `--init`.
    pub cluster_id: [u8; 16],
    /// The endpoint key of a member to ask.
    pub endpoint_key: [u8; 32],
    /// Where that member listens.
    pub addrs: Vec<SocketAddr>,
    /// The join secret.
    pub secret: [u8; 32],
}

/// A ticket that did not parse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// Not our prefix.
    #[error("not an iroh-raft join ticket (it should start with `{PREFIX}`)")]
    Prefix,
    /// The rest is not hex, or does not decode.
    #[error("the join ticket is damaged ({0}); copy it again from the `node --init` output")]
    Damaged(String),
}

impl fmt::Display for JoinTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = postcard::to_allocvec(self).map_err(|_| fmt::Error)?;
        write!(f, "{PREFIX}{}", hex::encode(bytes))
    }
}

impl FromStr for JoinTicket {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part = s.trim().strip_prefix(PREFIX).ok_or(TicketError::Prefix)?;
        let damaged = |reason: String| TicketError::Damaged(reason);
        if let Some((at, bad)) = hex_part
            .char_indices()
            .find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(damaged(format!(
                "it holds {bad:?} at character {} after `{PREFIX}`, where only hex digits belong: \
                 it was changed, or two pieces were pasted together",
                at + 1
            )));
        }
        if hex_part.len() % 2 == 1 {
            return Err(damaged(format!(
                "it has an odd number of hex digits ({}) after `{PREFIX}`: a digit was lost or \
                 added when it was copied",
                hex_part.len()
            )));
        }
        let bytes = hex::decode(hex_part).map_err(|e| damaged(e.to_string()))?;
        let (ticket, rest) = postcard::take_from_bytes(&bytes).map_err(|_| {
            damaged(format!(
                "its {} bytes do not hold a whole ticket: it is cut short, or digits were changed",
                bytes.len()
            ))
        })?;
        if !rest.is_empty() {
            return Err(damaged(format!(
                "it has {} bytes more than a ticket holds: two tickets pasted together?",
                rest.len()
            )));
        }
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ticket() -> impl Strategy<Value = JoinTicket> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<([u8; 4], u16)>(), 0..4),
            any::<[u8; 32]>(),
        )
            .prop_map(|(cluster_id, endpoint_key, addrs, secret)| JoinTicket {
                cluster_id,
                endpoint_key,
                addrs: addrs
                    .into_iter()
                    .map(|(ip, port)| SocketAddr::from((ip, port)))
                    .collect(),
                secret,
            })
    }

    proptest! {
        #[test]
        fn tickets_round_trip_through_text(ticket in ticket()) {
            let text = ticket.to_string();
            prop_assert!(text.starts_with(PREFIX));
            prop_assert_eq!(text.parse::<JoinTicket>().unwrap(), ticket);
        }

        #[test]
        fn garbage_is_refused_not_a_panic(text in ".{0,80}") {
            let _ = text.parse::<JoinTicket>();
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(matches!(
            "hello".parse::<JoinTicket>(),
            Err(TicketError::Prefix)
        ));
        assert!(matches!(
            "irohraft1zz".parse::<JoinTicket>(),
            Err(TicketError::Damaged(_))
        ));
        assert!(matches!(
            "irohraft100".parse::<JoinTicket>(),
            Err(TicketError::Damaged(_))
        ));
    }

    #[test]
    fn bug_a_damaged_ticket_said_odd_number_of_digits_now_it_says_what_happened_to_it() {
        let ticket = JoinTicket {
            cluster_id: [1; 16],
            endpoint_key: [2; 32],
            addrs: vec![([127, 0, 0, 1], 7001).into()],
            secret: [3; 32],
        }
        .to_string();
        let message = |text: &str| text.parse::<JoinTicket>().unwrap_err().to_string();
        let one_lost = message(&ticket[..ticket.len() - 1]);
        assert!(one_lost.contains("odd number of hex digits"), "{one_lost}");
        assert!(one_lost.contains("copy it again"), "{one_lost}");
        let changed = message(&ticket.replacen('0', "g", 1));
        assert!(changed.contains("holds 'g' at character"), "{changed}");
        let cut = message(&ticket[..ticket.len() - 20]);
        assert!(cut.contains("do not hold a whole ticket"), "{cut}");
        let doubled = message(&format!("{ticket}{}", &ticket[PREFIX.len()..]));
        assert!(doubled.contains("pasted together"), "{doubled}");
        assert!(ticket.parse::<JoinTicket>().is_ok());
    }
}
