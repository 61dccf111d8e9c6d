//! The addresses a node tells peers and clients to dial. A node bound to a specific address
//! advertises it; one bound to `0.0.0.0` listens on every interface, and advertises each of their
//! IPv4 addresses instead of `0.0.0.0`, which no other host can dial.

use std::net::{IpAddr, SocketAddr};

/// What to advertise for an endpoint bound to `bound`, given the host's interface addresses
/// (`interfaces`, up interfaces only): an unspecified IPv4 address stands for every IPv4 address
/// of `interfaces` on the same port, loopback last (and alone only on a loopback-only host).
pub fn advertised_addrs(bound: &[SocketAddr], interfaces: &[IpAddr]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for socket in bound {
        if !(socket.ip().is_unspecified() && socket.is_ipv4()) {
            out.push(*socket);
            continue;
        }
        let mut v4: Vec<IpAddr> = interfaces
            .iter()
            .copied()
            .filter(|ip| ip.is_ipv4() && !ip.is_unspecified())
            .collect();
        v4.sort_by_key(|ip| ip.is_loopback());
        v4.dedup();
        if v4.is_empty() {
            // Nothing better known: the loopback address at least works on this host.
            v4.push(IpAddr::from([127, 0, 0, 1]));
        }
        out.extend(v4.into_iter().map(|ip| SocketAddr::new(ip, socket.port())));
    }
    out.dedup();
    out
}

/// The IPv4 addresses of this host's interfaces that are up.
pub fn interface_addrs() -> Vec<IpAddr> {
    netdev::get_interfaces()
        .into_iter()
        .filter(|interface| interface.is_up())
        .flat_map(|interface| {
            interface
                .ipv4
                .into_iter()
                .map(|net| IpAddr::V4(net.addr()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn bug_a_node_bound_to_0_0_0_0_advertised_an_address_no_peer_can_dial() {
        let bound: Vec<SocketAddr> = vec!["0.0.0.0:7001".parse().unwrap()];
        let interfaces = [
            ip("127.0.0.1"),
            ip("10.1.2.3"),
            ip("192.168.0.7"),
            ip("fe80::1"),
        ];
        assert_eq!(
            advertised_addrs(&bound, &interfaces),
            vec![
                "10.1.2.3:7001".parse::<SocketAddr>().unwrap(),
                "192.168.0.7:7001".parse().unwrap(),
                "127.0.0.1:7001".parse().unwrap(),
            ]
        );
        // A loopback-only host, or none known.
        assert_eq!(
            advertised_addrs(&bound, &[ip("127.0.0.1")]),
            vec!["127.0.0.1:7001".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            advertised_addrs(&bound, &[]),
            vec!["127.0.0.1:7001".parse::<SocketAddr>().unwrap()]
        );
        // A specific address is advertised as it is.
        let specific: Vec<SocketAddr> = vec!["10.9.9.9:7001".parse().unwrap()];
        assert_eq!(advertised_addrs(&specific, &interfaces), specific);
    }

    #[test]
    fn this_host_has_at_least_loopback() {
        assert!(interface_addrs().iter().any(IpAddr::is_loopback));
    }
}
