//! Secondary indexes a projection keeps in memory instead of in its tables.
//!
//! A B-tree index whose key does not follow insertion order (tasks by the instance they
//! run on) puts each new entry on a random page, and a commit writes every page it
//! touched: in SQLite such an index cost a page write per task placed, about half of
//! what the gateways wrote to disk. A projection is its tables' only writer, so it can
//! keep the index itself: it stages the moves of a batch ([`StagedMoves`]) and applies
//! them once the transaction commits, before the projection announces its position, so
//! a query that waited for that position finds them. At start the index is loaded from
//! the tables ([`MemoryIndex::insert`]).

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::hash::Hash;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock};

use foldhash::HashMap;

/// Keys grouped by an indexed value, each group in key order. Clones share the index.
#[derive(Debug)]
pub struct MemoryIndex<G, K> {
    groups: Arc<RwLock<HashMap<G, BTreeSet<K>>>>,
}

impl<G, K> Clone for MemoryIndex<G, K> {
    fn clone(&self) -> Self {
        Self {
            groups: self.groups.clone(),
        }
    }
}

impl<G, K> Default for MemoryIndex<G, K> {
    fn default() -> Self {
        Self {
            groups: Arc::default(),
        }
    }
}

impl<G: Hash + Eq, K: Ord + Clone> MemoryIndex<G, K> {
    /// Adds `key` to `group` (loading the index from the tables at start).
    pub fn insert(&self, group: G, key: K) {
        self.write().entry(group).or_default().insert(key);
    }

    /// The keys of `group`, in key order.
    pub fn keys(&self, group: &G) -> Vec<K> {
        self.keys_after::<K>(group, None)
    }

    /// The keys of `group` after `after` (all of them for `None`), in key order.
    pub fn keys_after<Q>(&self, group: &G, after: Option<&Q>) -> Vec<K>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let groups = self.groups.read().unwrap_or_else(PoisonError::into_inner);
        let Some(keys) = groups.get(group) else {
            return Vec::new();
        };
        match after {
            Some(after) => keys
                .range::<Q, _>((Bound::Excluded(after), Bound::Unbounded))
                .cloned()
                .collect(),
            None => keys.iter().cloned().collect(),
        }
    }

    /// Number of keys in all groups.
    pub fn len(&self) -> usize {
        let groups = self.groups.read().unwrap_or_else(PoisonError::into_inner);
        groups.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<G, BTreeSet<K>>> {
        self.groups.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One key's move between groups; `None` is "in no group".
#[derive(Debug)]
struct Move<G, K> {
    key: K,
    from: Option<G>,
    to: Option<G>,
}

/// The moves of the batch being applied, held back until its transaction commits.
#[derive(Debug)]
pub struct StagedMoves<G, K> {
    index: MemoryIndex<G, K>,
    moves: Vec<Move<G, K>>,
}

impl<G, K> Default for StagedMoves<G, K> {
    /// Moves for a new, empty index.
    fn default() -> Self {
        Self::new(MemoryIndex::default())
    }
}

impl<G, K> StagedMoves<G, K> {
    pub fn new(index: MemoryIndex<G, K>) -> Self {
        Self {
            index,
            moves: Vec::new(),
        }
    }

    /// The index the moves go to.
    pub fn index(&self) -> &MemoryIndex<G, K> {
        &self.index
    }
}

impl<G: Hash + Eq, K: Ord + Clone> StagedMoves<G, K> {
    /// Records that `key` left group `from` for group `to` (nothing when they are equal).
    pub fn stage(&mut self, key: K, from: Option<G>, to: Option<G>) {
        if from != to {
            self.moves.push(Move { key, from, to });
        }
    }

    /// The transaction committed: the index takes the moves, in the order staged.
    pub fn commit(&mut self) {
        if self.moves.is_empty() {
            return;
        }
        let mut groups = self.index.write();
        for Move { key, from, to } in self.moves.drain(..) {
            if let Some(from) = from
                && let Some(keys) = groups.get_mut(&from)
            {
                keys.remove(&key);
                if keys.is_empty() {
                    groups.remove(&from);
                }
            }
            if let Some(to) = to {
                groups.entry(to).or_default().insert(key);
            }
        }
    }

    /// The transaction never committed: its moves are dropped.
    pub fn abandon(&mut self) {
        self.moves.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> (
        MemoryIndex<&'static str, u32>,
        StagedMoves<&'static str, u32>,
    ) {
        let index = MemoryIndex::default();
        let staged = StagedMoves::new(index.clone());
        (index, staged)
    }

    #[test]
    fn moves_show_only_once_committed() {
        let (index, mut staged) = index();
        staged.stage(1, None, Some("a"));
        assert!(index.keys(&"a").is_empty());
        staged.commit();
        assert_eq!(index.keys(&"a"), vec![1]);
    }

    #[test]
    fn abandoned_moves_never_show() {
        let (index, mut staged) = index();
        staged.stage(1, None, Some("a"));
        staged.abandon();
        staged.commit();
        assert!(index.is_empty());
    }

    #[test]
    fn a_key_moves_between_groups_and_out_of_them() {
        let (index, mut staged) = index();
        index.insert("a", 1);
        index.insert("a", 2);
        staged.stage(1, Some("a"), Some("b"));
        staged.stage(2, Some("a"), None);
        staged.commit();
        assert!(index.keys(&"a").is_empty());
        assert_eq!(index.keys(&"b"), vec![1]);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn keys_come_in_order_after_a_key() {
        let (index, _) = index();
        for key in [5, 1, 3, 4, 2] {
            index.insert("a", key);
        }
        assert_eq!(index.keys(&"a"), vec![1, 2, 3, 4, 5]);
        assert_eq!(index.keys_after(&"a", Some(&3)), vec![4, 5]);
        assert!(index.keys(&"b").is_empty());
    }
}
