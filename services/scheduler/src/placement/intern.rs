//! String interning for attribute names and values.
//!
//! Spread buckets and partitioned views are keyed by attribute values; comparing and hashing
//! `u32`s in the hot path instead of strings is most of what keeps a decision cheap. Names and
//! values are never forgotten: their number is bounded by what the cluster's instances carry.

use std::collections::HashMap;
use std::sync::Arc;

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
