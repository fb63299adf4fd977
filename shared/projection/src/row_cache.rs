//! Rows a projection wrote, kept in memory for the entities' next events.
//!
//! Live, an entity's events arrive in different batches (a task's requested, placed and
//! running events are milliseconds apart), and each batch loads the rows it touches before
//! changing them. A projection that is its tables' only writer already knows what it wrote:
//! the cache hands those rows back instead of reading and decoding them again.
//!
//! Only committed rows are served. A batch takes its rows out while it changes them and
//! stages what it leaves; [`RowCache::commit`] publishes the staged rows once the batch's
//! transaction has committed, and [`RowCache::abandon`] (at the start of the next batch)
//! drops them if it did not. A row a failed batch took is simply read from the database next
//! time.
//!
//! Eviction is generational rather than LRU: rows go into the recent generation; when it
//! holds `capacity` rows it becomes the old one and the previous old one is dropped. A row
//! used again moves back into the recent generation, so at most `2 × capacity` rows stay, and
//! every row written in the last `capacity` writes is among them.

use std::hash::Hash;

use foldhash::{HashMap, HashMapExt};

#[derive(Debug)]
pub struct RowCache<K, R> {
    recent: HashMap<K, R>,
    old: HashMap<K, R>,
    /// Rows the batch in flight left, cached if its transaction commits.
    staged: Vec<(K, R)>,
    /// The table the last batch handed back, emptied: the next batch's rows go into it,
    /// so a batch does not grow its table from nothing, moving every row at each
    /// doubling (rows are large; that was 2% of the control plane's CPU under load).
    spare: HashMap<K, R>,
    capacity: usize,
}

impl<K: Eq + Hash, R> RowCache<K, R> {
    /// A cache of at least the last `capacity` rows written (at most twice as many).
    pub fn new(capacity: usize) -> Self {
        Self {
            recent: HashMap::new(),
            old: HashMap::new(),
            staged: Vec::new(),
            spare: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Takes `key`'s committed row out of the cache, for the batch to change.
    pub fn take(&mut self, key: &K) -> Option<R> {
        self.recent.remove(key).or_else(|| self.old.remove(key))
    }

    /// Takes the committed rows of `keys` out of the cache, for the batch to change; returns
    /// them, and the keys the cache does not hold (to be read from the database).
    pub fn take_many(&mut self, keys: impl IntoIterator<Item = K>) -> (HashMap<K, R>, Vec<K>) {
        let keys = keys.into_iter();
        let mut rows = std::mem::take(&mut self.spare);
        rows.reserve(keys.size_hint().0);
        let mut missing = Vec::new();
        for key in keys {
            match self.take(&key) {
                Some(row) => {
                    rows.insert(key, row);
                }
                None => missing.push(key),
            }
        }
        (rows, missing)
    }

    /// Whether `key`'s committed row is cached.
    pub fn contains(&self, key: &K) -> bool {
        self.recent.contains_key(key) || self.old.contains_key(key)
    }

    /// Rows written before the batch in flight, cached with it when it commits; where
    /// the batch leaves a row of the same key, the batch's is kept.
    pub fn stage_earlier(&mut self, rows: impl IntoIterator<Item = (K, R)>) {
        self.staged.splice(0..0, rows);
    }

    /// A row as the batch in flight leaves it.
    pub fn stage(&mut self, key: K, row: R) {
        self.staged.push((key, row));
    }

    /// Every row of a batch, as it leaves them: the table [`RowCache::take_many`] gave
    /// the batch, with the rows it added.
    pub fn stage_all(&mut self, mut rows: HashMap<K, R>) {
        self.staged.extend(rows.drain());
        self.spare = rows;
    }

    /// The batch's transaction committed: its rows are what the database holds now.
    pub fn commit(&mut self) {
        for (key, row) in self.staged.drain(..) {
            if self.recent.len() >= self.capacity {
                // The old generation's table becomes the new recent one, emptied: its
                // allocation is reused instead of a new table growing from nothing.
                std::mem::swap(&mut self.recent, &mut self.old);
                self.recent.clear();
            }
            self.old.remove(&key);
            self.recent.insert(key, row);
        }
    }

    /// Drops what a batch staged without committing (its transaction failed).
    pub fn abandon(&mut self) {
        self.staged.clear();
    }

    /// Rows cached now (staged ones not included).
    pub fn len(&self) -> usize {
        self.recent.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_rows_whose_batch_committed() {
        let mut cache = RowCache::new(8);
        cache.stage("a", 1);
        assert_eq!(cache.take(&"a"), None, "staged, not committed");
        cache.commit();
        assert_eq!(cache.take(&"a"), Some(1));
        assert_eq!(cache.take(&"a"), None, "taken rows belong to the batch");

        cache.stage("a", 2);
        cache.abandon();
        cache.commit();
        assert_eq!(
            cache.take(&"a"),
            None,
            "an abandoned batch's rows are dropped"
        );
    }

    #[test]
    fn take_many_splits_cached_rows_from_keys_to_read() {
        let mut cache = RowCache::new(8);
        cache.stage_all(HashMap::from_iter([("a", 1), ("b", 2)]));
        cache.commit();
        let (rows, missing) = cache.take_many(["a", "c", "b"]);
        assert_eq!(rows, HashMap::from_iter([("a", 1), ("b", 2)]));
        assert_eq!(missing, ["c"]);
        assert!(cache.is_empty(), "taken rows belong to the batch");
    }

    #[test]
    fn the_next_batch_reuses_the_table_the_last_one_handed_back() {
        let mut cache = RowCache::new(8);
        let (mut rows, _) = cache.take_many(0..0);
        rows.extend((0..1_000).map(|key| (key, key)));
        let capacity = rows.capacity();
        cache.stage_all(rows);
        cache.commit();
        let (rows, missing) = cache.take_many([1_000]);
        assert!(rows.is_empty() && missing == [1_000]);
        assert_eq!(rows.capacity(), capacity);
    }

    #[test]
    fn keeps_at_least_the_last_capacity_rows_and_at_most_twice_as_many() {
        let capacity = 100;
        let mut cache = RowCache::new(capacity);
        for key in 0..1_000 {
            cache.stage(key, key * 10);
            cache.commit();
            assert!(cache.len() <= 2 * capacity);
        }
        for key in 900..1_000 {
            assert_eq!(cache.take(&key), Some(key * 10));
        }
        assert_eq!(cache.take(&0), None);
    }

    #[test]
    fn a_row_used_again_stays() {
        const KEPT: i32 = -1;
        let mut cache = RowCache::new(2);
        cache.stage(KEPT, 0);
        cache.commit();
        for round in 0..10 {
            // Another row is written; the kept one is used and written back each time.
            cache.stage(round, round);
            let kept = cache.take(&KEPT).expect("still cached");
            cache.stage(KEPT, kept + 1);
            cache.commit();
        }
        assert_eq!(cache.take(&KEPT), Some(10));
    }
}
