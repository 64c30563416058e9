//! Key-space arithmetic shared by the server and the engines: sub-database
//! prefixes and plyvel-style range bounds mapped to full-key bounds.

use vigie_wire::escalator::RangeSpec;

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when no such key exists (empty or all-0xff prefix).
pub fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.last_mut() {
        if *last < 0xff {
            *last += 1;
            return Some(p);
        }
        p.pop();
    }
    None
}

/// A half-open range of full keys: `lower` inclusive, `upper` exclusive
/// (`None`: to the end of the key space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub lower: Vec<u8>,
    pub upper: Option<Vec<u8>>,
}

impl Bounds {
    pub fn all() -> Self {
        Self {
            lower: Vec::new(),
            upper: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.upper.as_ref().is_some_and(|u| *u <= self.lower)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.lower.as_slice() && self.upper.as_ref().is_none_or(|u| key < u.as_slice())
    }

    fn narrow_upper(&mut self, bound: Option<Vec<u8>>) {
        if let Some(b) = bound {
            if self.upper.as_ref().is_none_or(|u| b < *u) {
                self.upper = Some(b);
            }
        }
    }

    fn narrow_lower(&mut self, bound: Vec<u8>) {
        if bound > self.lower {
            self.lower = bound;
        }
    }
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

/// Maps a range of a sub-database to bounds over full keys.
pub fn bounds(db_prefix: &[u8], spec: &RangeSpec) -> Bounds {
    let mut b = Bounds {
        lower: db_prefix.to_vec(),
        upper: successor(db_prefix),
    };
    if let Some(p) = &spec.prefix {
        let full = join(db_prefix, p);
        b.narrow_upper(successor(&full));
        b.narrow_lower(full);
    }
    if let Some(s) = &spec.start {
        b.narrow_lower(join(db_prefix, s));
    }
    if let Some(s) = &spec.stop {
        b.narrow_upper(Some(join(db_prefix, s)));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_cases() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xff\xff"), None);
        assert_eq!(successor(b""), None);
    }

    #[test]
    fn prefix_and_stop_intersect() {
        let spec = RangeSpec {
            prefix: Some(b"k".to_vec()),
            stop: Some(b"k5".to_vec()),
            ..Default::default()
        };
        let b = bounds(b"db/", &spec);
        assert_eq!(b.lower, b"db/k");
        assert_eq!(b.upper, Some(b"db/k5".to_vec()));
        assert!(b.contains(b"db/k1") && !b.contains(b"db/k5") && !b.contains(b"db/l"));
    }

    #[test]
    fn empty_when_start_after_stop() {
        let spec = RangeSpec {
            start: Some(b"z".to_vec()),
            stop: Some(b"a".to_vec()),
            ..Default::default()
        };
        assert!(bounds(b"", &spec).is_empty());
    }
}
