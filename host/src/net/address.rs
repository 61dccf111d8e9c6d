//! Node addresses as people type them: `<endpoint-id>@<ip:port>[,<ip:port>...]`, or a join
//! ticket (which names a member too).

use iroh::{EndpointAddr, EndpointId};

use crate::proto::JoinTicket;

/// Formats `addr` the way [`parse_node_address`] reads it.
pub fn format_node_address(addr: &EndpointAddr) -> String {
    let sockets: Vec<String> = addr.ip_addrs().map(ToString::to_string).collect();
    format!("{}@{}", addr.id, sockets.join(","))
}

/// Reads a node address or a join ticket.
pub fn parse_node_address(text: &str) -> Result<EndpointAddr, String> {
    let text = text.trim();
    if text.starts_with("irohraft1") {
        let ticket: JoinTicket = text.parse().map_err(|e| format!("{e}"))?;
        let id = EndpointId::from_bytes(&ticket.endpoint_key)
            .map_err(|e| format!("the ticket's key is invalid: {e}"))?;
        return Ok(ticket
            .addrs
            .into_iter()
            .fold(EndpointAddr::new(id), |a, s| a.with_ip_addr(s)));
    }
    let (id, sockets) = text.split_once('@').ok_or_else(|| {
        format!("`{text}` is not a node address: expected <endpoint-id>@<ip:port> or a join ticket")
    })?;
    let id: EndpointId = id.parse().map_err(|e| {
        format!("`{id}` is not an endpoint id ({e}); `iroh-raft node` prints its address")
    })?;
    let mut addr = EndpointAddr::new(id);
    for socket in sockets.split(',').filter(|s| !s.is_empty()) {
        addr = addr.with_ip_addr(
            socket
                .parse()
                .map_err(|e| format!("`{socket}` is not ip:port ({e})"))?,
        );
    }
    if addr.ip_addrs().next().is_none() {
        return Err(format!("`{text}` names no ip:port to reach the node at"));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_bad_ones_say_why() {
        let id = iroh::SecretKey::generate().public();
        let addr = EndpointAddr::new(id).with_ip_addr("127.0.0.1:7001".parse().unwrap());
        let text = format_node_address(&addr);
        assert_eq!(parse_node_address(&text).unwrap(), addr);
        assert!(
            parse_node_address("nonsense")
                .unwrap_err()
                .contains("not a node address")
        );
        assert!(
            parse_node_address("abc@127.0.0.1:1")
                .unwrap_err()
                .contains("not an endpoint id")
        );
        assert!(
            parse_node_address(&format!("{id}@"))
                .unwrap_err()
                .contains("no ip:port")
        );
    }

    #[test]
    fn a_ticket_is_an_address_too() {
        let id = iroh::SecretKey::generate().public();
        let ticket = JoinTicket {
            cluster_id: [1; 16],
            endpoint_key: *id.as_bytes(),
            addrs: vec!["127.0.0.1:9".parse().unwrap()],
            secret: [0; 32],
        };
        let addr = parse_node_address(&ticket.to_string()).unwrap();
        assert_eq!(addr.id, id);
    }
}
