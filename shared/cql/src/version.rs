//! Agent versions, compared as versions rather than as text (`1.10.0 > 1.9.2`).
//!
//! The ECS agent reports versions such as `1.14.5`; some builds carry a suffix (`1.14.5-dev`,
//! `v1.14.5`). Only the dotted numeric part takes part in comparisons, with missing components
//! read as zero (`1.14 == 1.14.0`): a suffix names a build, not a position in the ordering.

use std::cmp::Ordering;

/// Numeric components kept inline: agent versions have three, four leaves room.
const INLINE: usize = 4;

/// A parsed version: its numeric components, trailing zeros ignored when comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    parts: [u64; INLINE],
    /// Components past [`INLINE`], rare enough to live on the heap.
    extra: Vec<u64>,
}

impl Version {
    /// Parses `[v]N(.N)*` followed by an optional suffix starting with `-`, `+` or `_`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let body = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let end = body.find(['-', '+', '_']).unwrap_or(body.len());
        let numeric = &body[..end];
        if numeric.is_empty() {
            return None;
        }
        let mut parts = [0u64; INLINE];
        let mut extra = Vec::new();
        for (i, piece) in numeric.split('.').enumerate() {
            if piece.is_empty() || !piece.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let value: u64 = piece.parse().ok()?;
            match parts.get_mut(i) {
                Some(slot) => *slot = value,
                None => extra.push(value),
            }
        }
        Some(Self { parts, extra })
    }

    fn component(&self, i: usize) -> u64 {
        match self.parts.get(i) {
            Some(v) => *v,
            None => self.extra.get(i - INLINE).copied().unwrap_or(0),
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = INLINE + self.extra.len().max(other.extra.len());
        (0..len)
            .map(|i| self.component(i).cmp(&other.component(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn compares_numerically() {
        assert!(v("1.10.0") > v("1.9.2"));
        assert!(v("1.14.5") < v("1.14.6"));
        assert_eq!(v("1.14").cmp(&v("1.14.0")), std::cmp::Ordering::Equal);
        assert!(v("1.2.3.4.5.6") > v("1.2.3.4.5"));
        assert_eq!(v("v1.2.3-dev").cmp(&v("1.2.3")), std::cmp::Ordering::Equal);
    }

    #[test]
    fn rejects_non_versions() {
        for bad in ["", "abc", "1..2", ".1", "1.", "1.x", "-1"] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }
}
