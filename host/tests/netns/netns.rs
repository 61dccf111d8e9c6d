//! Hosts of our own on one machine: a network namespace per node, each with a veth pair into a
//! bridge in the test's namespace, on a private /24. The test process reaches every node through
//! the bridge; a partition is a pair of blackhole routes, so it cuts nodes from each other and
//! leaves the test's own path to them. Needs root and iproute2 (`ip netns`); everything is
//! removed when the [`Network`] is dropped.
//!
//! One [`Network`] exists at a time: adding or removing the bridge and the veth pairs changes the
//! interfaces of the test's own namespace, and every iroh endpoint there takes that for a major
//! network change and rebinds its sockets, which can lose another test's connections. Two tests
//! of this binary ran at once (with the same interface names, too) and failed each other in CI.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// Held by the one [`Network`] that exists.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Numbers the networks of this process, so that each one's interfaces have names of their own:
/// a namespace lives on (with its veth pair) until the last process in it has gone, so the
/// previous network's names may still be taken when the next test starts.
static NETWORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A bridge and `hosts` namespaces attached to it.
pub(crate) struct Network {
    prefix: String,
    subnet: [u8; 3],
    hosts: usize,
    _turn: MutexGuard<'static, ()>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(error) = ip(args) {
        panic!("{error} (these tests need root and iproute2's `ip netns`)");
    }
}

impl Network {
    /// Creates the bridge and `hosts` namespaces, numbered from 1; or, where this machine does
    /// not allow network namespaces (not root, no iproute2), says so and returns `None`, and the
    /// test skips.
    pub(crate) fn new(hosts: usize) -> Option<Self> {
        // A test that failed while holding the turn poisons the lock; the next one may go on.
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let probe = format!("irprobe{}", std::process::id() % 100_000);
        if let Err(error) = ip(&["netns", "add", &probe]) {
            eprintln!("skipped: this test needs network namespaces, as root ({error})");
            return None;
        }
        let _ = ip(&["netns", "del", &probe]);
        let pid = std::process::id();
        let number = NETWORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let network = Self {
            // At most 15 bytes with the longest suffix (`v9`): "ir" + 5 + 2 + 2.
            prefix: format!("ir{}{}", pid % 100_000, number % 100),
            subnet: [10, 77, ((pid + number) % 250) as u8],
            hosts,
            _turn: turn,
        };
        network.remove();
        let bridge = network.bridge();
        must(&["link", "add", &bridge, "type", "bridge"]);
        must(&[
            "addr",
            "add",
            &format!("{}/24", network.address_of(254)),
            "dev",
            &bridge,
        ]);
        must(&["link", "set", &bridge, "up"]);
        for host in 1..=hosts {
            let (ns, outside, inside) = (
                network.namespace(host),
                format!("{}v{host}", network.prefix),
                format!("{}p{host}", network.prefix),
            );
            must(&["netns", "add", &ns]);
            must(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ]);
            must(&["link", "set", &inside, "netns", &ns]);
            must(&["link", "set", &outside, "master", &bridge]);
            must(&["link", "set", &outside, "up"]);
            let address = format!("{}/24", network.address_of(host as u8));
            must(&["-n", &ns, "addr", "add", &address, "dev", &inside]);
            must(&["-n", &ns, "link", "set", &inside, "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        Some(network)
    }

    fn bridge(&self) -> String {
        format!("{}b", self.prefix)
    }

    /// The namespace of `host`.
    pub(crate) fn namespace(&self, host: usize) -> String {
        format!("{}n{host}", self.prefix)
    }

    fn address_of(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.subnet[0], self.subnet[1], self.subnet[2], last)
    }

    /// The address a node in `host` binds.
    pub(crate) fn bind(&self, host: usize, port: u16) -> SocketAddr {
        SocketAddr::from((self.address_of(host as u8), port))
    }

    /// A command that runs `program` inside `host`'s namespace (`ip netns exec` execs it, so the
    /// child's PID is the program's own).
    pub(crate) fn command(&self, host: usize, program: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace(host)])
            .arg(program);
        command
    }

    /// Cuts `host` off from every other host (both directions); the test still reaches it.
    pub(crate) fn isolate(&self, host: usize) {
        self.routes("add", host);
    }

    /// Undoes [`Self::isolate`].
    pub(crate) fn heal(&self, host: usize) {
        self.routes("del", host);
    }

    fn routes(&self, action: &str, host: usize) {
        for other in (1..=self.hosts).filter(|other| *other != host) {
            for (from, to) in [(host, other), (other, host)] {
                let target = format!("{}/32", self.address_of(to as u8));
                must(&[
                    "-n",
                    &self.namespace(from),
                    "route",
                    action,
                    "blackhole",
                    &target,
                ]);
            }
        }
    }

    /// Deletes the veth pairs, the namespaces and the bridge, ignoring what is not there. The
    /// pairs go explicitly: a namespace that a dying process still holds would keep its pair.
    fn remove(&self) {
        for host in 1..=self.hosts {
            let _ = ip(&["link", "del", &format!("{}v{host}", self.prefix)]);
            let _ = ip(&["netns", "del", &self.namespace(host)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
    }
}
