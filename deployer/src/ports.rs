//! Port allocation on one host: the lowest free ports of the range. One
//! writer decides (the deployer, from its inventory, in one call per
//! deploy), so the same port is never handed out twice (NetBox #2519).

use std::collections::BTreeSet;

use crate::values::PortRange;

/// `wanted` ports of `range` not in `used`, lowest first; `None` when the
/// range has fewer free ports than that.
pub fn allocate(range: PortRange, used: &BTreeSet<u16>, wanted: usize) -> Option<Vec<u16>> {
    let free: Vec<u16> = (range.low..=range.high)
        .filter(|port| !used.contains(port))
        .take(wanted)
        .collect();
    (free.len() == wanted).then_some(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_ports_and_exhaustion() {
        let range = PortRange {
            low: 2000,
            high: 2004,
        };
        let used: BTreeSet<u16> = [2000, 2002].into();
        assert_eq!(allocate(range, &used, 2), Some(vec![2001, 2003]));
        assert_eq!(allocate(range, &used, 3), Some(vec![2001, 2003, 2004]));
        assert_eq!(allocate(range, &used, 4), None);
        assert_eq!(allocate(range, &used, 0), Some(vec![]));
    }
}
