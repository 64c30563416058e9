//! Which addresses the provisioner may connect to (no I/O): the setup's
//! `provisioner.networks`, checked before any connection, so a tenant
//! cannot point the tower at any address and port it likes (the tower's
//! own services on its loopback, a cloud's metadata address, another
//! network it reaches). Not set: every address except those that are
//! never a server's — loopback, unspecified, link-local, multicast,
//! broadcast. An IPv4-mapped IPv6 address is judged as the IPv4 one it
//! is.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// The setup's list; empty: the default described above.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn allows(&self, address: IpAddr) -> bool {
        let a = address.to_canonical();
        if self.0.is_empty() {
            return !special(a);
        }
        self.0.iter().any(|n| n.contains(&a))
    }
}

/// Addresses no server of a catalog has.
fn special(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            v.is_loopback()
                || v.is_unspecified()
                || v.is_link_local()
                || v.is_multicast()
                || v.is_broadcast()
                || v.octets()[0] == 0
        }
        IpAddr::V6(v) => {
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (v.segments()[0] & 0xffc0) == 0xfe80
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
    fn the_setups_networks_and_nothing_else() {
        let n = Networks::new(vec!["192.0.2.0/29".parse().unwrap()]);
        assert!(n.allows(ip("192.0.2.6")));
        assert!(!n.allows(ip("192.0.2.10")));
        assert!(n.allows(ip("::ffff:192.0.2.2")), "the IPv4 it maps");
        assert!(!n.allows(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn by_default_the_towers_own_and_special_addresses_are_refused() {
        let n = Networks::default();
        for bad in [
            "127.0.0.1",
            "::ffff:127.0.0.2",
            "::1",
            "0.0.0.0",
            "169.254.169.254",
            "fe80::1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!n.allows(ip(bad)), "{bad}");
        }
        for good in ["192.0.2.2", "10.1.2.3", "2001:db8::1"] {
            assert!(n.allows(ip(good)), "{good}");
        }
        let lo = Networks::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(lo.allows(ip("127.0.0.2")), "unless the setup lists them");
    }
}
