//! String interning for attribute names and values.
//!
//! Spread buckets and partitioned views are keyed by attribute values; comparing and hashing
//! `u32`s in the hot path instead of strings is most of what keeps a decision cheap. Names and
//! values are never forgotten: their number is bounded by what the cluster's instances carry.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A map keyed by one of the index's own `u32` ids. They are dense, chosen by the index, and
/// hashed on every decision: a multiply-shift hash does for them what SipHash would do at a
/// fraction of the cost, and no client chooses them, so there is no flooding to resist.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u8(*b);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u32(u32::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        // Fibonacci hashing: spreads consecutive ids over the high bits hashbrown uses.
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// An interned attribute name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct AttrId(pub(crate) u32);

/// An interned attribute value, or one of the two reserved values below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ValueId(pub(crate) u32);

impl ValueId {
    /// The instance does not have the attribute: spread treats that as one more value.
    pub(crate) const MISSING: ValueId = ValueId(u32::MAX);
    /// The single bucket of an unpartitioned view.
    pub(crate) const ALL: ValueId = ValueId(u32::MAX - 1);
}

#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: HashMap<Arc<str>, u32>,
}

impl Interner {
    pub(crate) fn intern(&mut self, text: &str) -> u32 {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        let id = u32::try_from(self.ids.len()).expect("fewer than 4 billion distinct strings");
        assert!(id < ValueId::ALL.0, "interner exhausted");
        self.ids.insert(text.into(), id);
        id
    }

    pub(crate) fn get(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }
}
