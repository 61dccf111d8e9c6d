//! The join ticket and the node address an operator pastes: parsed or refused, and a ticket that
//! parses prints back to text that parses to the same ticket.
#![no_main]

use iroh_raft::proto::JoinTicket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = iroh_raft::parse_node_address(text);
    if let Ok(ticket) = text.parse::<JoinTicket>() {
        let again: JoinTicket = ticket.to_string().parse().expect("a printed ticket parses");
        assert_eq!(ticket, again);
    }
});
