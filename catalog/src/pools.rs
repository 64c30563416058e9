//! IP pools: which addresses can be handed out, and which are next. Pure
//! decisions over the referee's in-memory state — the referee is the only
//! writer, which is what makes allocation race-free (NetBox handed the same
//! address out twice under parallel requests, #2519, #10282).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use vigie_wire::catalog::PoolSpec;

/// Why a pool cannot be made as asked.
pub fn check_pool(spec: &PoolSpec) -> Result<(), String> {
    vigie_changes::validate_host_id(&spec.name).map_err(|e| format!("pool name: {e}"))?;
    if spec.cidr.trunc() != spec.cidr {
        return Err(format!(
            "{} has host bits set: the network is {}",
            spec.cidr,
            spec.cidr.trunc()
        ));
    }
    for (what, a) in spec
        .gateway
        .iter()
        .map(|a| ("gateway", a))
        .chain(spec.reserved.iter().map(|a| ("reserved address", a)))
    {
        if !spec.cidr.contains(a) {
            return Err(format!("{what} {a} is not in {}", spec.cidr));
        }
    }
    Ok(())
}

/// Whether two networks share an address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Addresses the pool's hosts iterator yields (IPv4 without network and
/// broadcast below /31), saturated at `u64::MAX`.
fn hosts(cidr: &IpNet) -> u64 {
    let bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    if bits >= 64 {
        return u64::MAX;
    }
    let all = 1u64 << bits;
    match cidr {
        IpNet::V4(_) if bits >= 2 => all - 2,
        _ => all,
    }
}

/// How many addresses the pool can hand out in all.
pub fn usable(spec: &PoolSpec) -> u64 {
    let excluded: BTreeSet<&IpAddr> = spec.gateway.iter().chain(spec.reserved.iter()).collect();
    let inside = excluded.iter().filter(|a| is_host(&spec.cidr, a)).count() as u64;
    hosts(&spec.cidr).saturating_sub(inside)
}

fn is_host(cidr: &IpNet, a: &IpAddr) -> bool {
    cidr.contains(a)
        && !(matches!(cidr, IpNet::V4(_))
            && cidr.prefix_len() < 31
            && (*a == cidr.network() || *a == cidr.broadcast()))
}

/// The pool cannot give as many addresses as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    pub free: u64,
}

/// The next `count` free addresses of the pool, lowest first; all or none.
pub fn pick(
    spec: &PoolSpec,
    allocated: &BTreeSet<IpAddr>,
    count: u32,
) -> Result<Vec<IpAddr>, Exhausted> {
    let count = count as usize;
    let free = spec
        .cidr
        .hosts()
        .filter(|a| Some(*a) != spec.gateway && !spec.reserved.contains(a))
        .filter(|a| !allocated.contains(a));
    let got: Vec<IpAddr> = free.take(count).collect();
    if got.len() < count {
        return Err(Exhausted {
            free: got.len() as u64,
        });
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str, gateway: Option<&str>, reserved: &[&str]) -> PoolSpec {
        PoolSpec {
            name: "p".into(),
            cidr: cidr.parse().unwrap(),
            gateway: gateway.map(|g| g.parse().unwrap()),
            reserved: reserved.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_slash_26_hands_out_62_addresses_then_is_exhausted() {
        let p = pool("192.0.2.0/26", None, &[]);
        assert_eq!(usable(&p), 62);
        let mut taken = BTreeSet::new();
        for _ in 0..62 {
            let a = pick(&p, &taken, 1).unwrap();
            assert!(taken.insert(a[0]), "{} twice", a[0]);
        }
        assert!(!taken.contains(&"192.0.2.0".parse::<IpAddr>().unwrap()));
        assert!(!taken.contains(&"192.0.2.63".parse::<IpAddr>().unwrap()));
        assert_eq!(pick(&p, &taken, 1), Err(Exhausted { free: 0 }));
    }

    #[test]
    fn gateway_and_reserved_addresses_are_never_handed_out() {
        let p = pool("10.0.0.0/29", Some("10.0.0.1"), &["10.0.0.2", "10.0.0.6"]);
        assert_eq!(usable(&p), 3);
        let got = pick(&p, &BTreeSet::new(), 3).unwrap();
        let want: Vec<IpAddr> = ["10.0.0.3", "10.0.0.4", "10.0.0.5"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        // All or none: 4 asked, 3 free.
        assert_eq!(pick(&p, &BTreeSet::new(), 4), Err(Exhausted { free: 3 }));
    }

    #[test]
    fn pools_are_checked_and_overlaps_found() {
        assert!(check_pool(&pool("10.0.0.1/24", None, &[])).is_err());
        assert!(check_pool(&pool("10.0.0.0/24", Some("10.0.1.1"), &[])).is_err());
        assert!(check_pool(&pool("2001:db8::/64", Some("2001:db8::1"), &[])).is_ok());
        let a: IpNet = "10.0.0.0/16".parse().unwrap();
        let b: IpNet = "10.0.3.0/24".parse().unwrap();
        let c: IpNet = "10.1.0.0/24".parse().unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c));
        assert_eq!(usable(&pool("2001:db8::/64", None, &[])), u64::MAX);
    }
}
