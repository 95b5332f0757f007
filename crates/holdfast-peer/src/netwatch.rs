//! Watching the host's network addresses. A laptop that moves from Wi-Fi to
//! a cable, or gets a new DHCP lease, keeps its sockets bound to an address
//! that no longer exists; nothing errors, packets just stop. The host polls
//! its interface addresses (portable, and cheap at once a second) and, on a
//! change, moves signalling to a fresh socket and recovers every viewer's
//! peer connection (see `HostCommand::NetworkChanged`).
//!
//! [`AddressSet`] is the pure part: given snapshots, it says what changed.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

/// How often the host looks at its addresses.
pub const NETWORK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkChange {
    pub added: Vec<IpAddr>,
    pub removed: Vec<IpAddr>,
}

/// The addresses a peer could be reached on, as last seen.
#[derive(Debug, Clone, Default)]
pub struct AddressSet {
    current: BTreeSet<IpAddr>,
}

impl AddressSet {
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        AddressSet {
            current: addrs.into_iter().filter(counts).collect(),
        }
    }

    /// Takes a new snapshot; `Some` when it differs from the last one.
    pub fn update(&mut self, addrs: impl IntoIterator<Item = IpAddr>) -> Option<NetworkChange> {
        let next: BTreeSet<IpAddr> = addrs.into_iter().filter(counts).collect();
        if next == self.current {
            return None;
        }
        let change = NetworkChange {
            added: next.difference(&self.current).copied().collect(),
            removed: self.current.difference(&next).copied().collect(),
        };
        self.current = next;
        Some(change)
    }

    pub fn contains(&self, addr: &IpAddr) -> bool {
        self.current.contains(addr)
    }
}

/// Loopback and link-local addresses come and go without mattering to peers
/// (IPv6 link-local ones appear on every interface that comes up).
fn counts(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// The machine's interface addresses now (empty if they cannot be read).
pub fn local_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(ifs) => ifs.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::debug!("cannot list interface addresses: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_new_address_replacing_the_old_is_one_change() {
        let mut set = AddressSet::new([ip("10.0.0.2"), ip("127.0.0.1")]);
        assert_eq!(set.update([ip("10.0.0.2"), ip("127.0.0.1")]), None);
        assert_eq!(
            set.update([ip("10.0.0.9"), ip("127.0.0.1")]),
            Some(NetworkChange {
                added: vec![ip("10.0.0.9")],
                removed: vec![ip("10.0.0.2")],
            })
        );
        assert!(set.contains(&ip("10.0.0.9")));
        assert_eq!(set.update([ip("10.0.0.9")]), None, "loopback does not count");
    }

    #[test]
    fn loopback_and_link_local_are_ignored() {
        let mut set = AddressSet::new([ip("192.168.1.4")]);
        assert_eq!(
            set.update([ip("192.168.1.4"), ip("fe80::1"), ip("169.254.3.3"), ip("::1")]),
            None
        );
        let change = set.update([]).unwrap();
        assert_eq!(change.removed, vec![ip("192.168.1.4")]);
        assert!(change.added.is_empty());
    }
}
