//! Candidate orders kept sorted as the cluster changes, so a decision reads its answer off the
//! front of an ordered sequence instead of scanning every instance.
//!
//! A strategy chain is a lexicographic key: `[binpack memory]` orders instances by free memory,
//! `[spread instanceId, binpack cpu]` by (tasks of the group, free CPU). The best candidate is
//! the first instance in that order that passes the filters; with a binpack first, the walk
//! starts at the first instance with enough of the resource, and blocks of instances that lack
//! the CPU or memory are skipped whole (see [`Bucket`]). A *view* is such an order, optionally
//! partitioned by an attribute's value (a spread over an attribute picks the value first, then
//! the best instance within it).
//!
//! Views are built on first use (one sort of the active instances) and then maintained: a
//! reservation or release re-keys the instance in each view (a binary search and a short move,
//! or an in-place refresh of its free resources when its position does not change). A few
//! distinct chains are in use in any cluster; views not used for a while are dropped, least
//! recently used first, to bound the maintenance every reservation pays.

use super::bucket::{Bucket, Item};

use super::groups::GroupId;
use super::instance::Instance;
use super::intern::{AttrId, IdMap, ValueId};

/// Key parts a view orders by, beyond which ties are broken by scanning.
pub(crate) const MAX_PARTS: usize = 3;
/// Views kept at once.
const MAX_VIEWS: usize = 16;

/// One orderable component of a strategy chain (ascending is better for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Part {
    /// binpack memory: free MiB.
    Memory,
    /// binpack cpu: free CPU units.
    Cpu,
    /// spread instanceId: tasks of the group on the instance.
    Group(GroupId),
}

impl Part {
    pub(crate) fn value(self, inst: &Instance) -> u32 {
        match self {
            Part::Memory => inst.memory_free,
            Part::Cpu => inst.cpu_free,
            Part::Group(g) => inst.group_count(g),
        }
    }
}

/// Which order, over which partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct ViewSpec {
    pub(crate) partition: Option<AttrId>,
    pub(crate) parts: [Option<Part>; MAX_PARTS],
}

impl ViewSpec {
    pub(crate) fn key(&self, inst: &Instance) -> [u32; MAX_PARTS] {
        let mut key = [0; MAX_PARTS];
        for (k, part) in key.iter_mut().zip(self.parts) {
            if let Some(p) = part {
                *k = p.value(inst);
            }
        }
        key
    }

    pub(crate) fn bucket(&self, inst: &Instance) -> ValueId {
        self.partition.map_or(ValueId::ALL, |a| inst.value_of(a))
    }

    fn item(&self, slot: u32, inst: &Instance) -> Item {
        Item {
            entry: Entry {
                key: self.key(inst),
                slot,
            },
            cpu: inst.cpu_free,
            memory: inst.memory_free,
        }
    }

    fn uses_group(&self, group: GroupId) -> bool {
        self.parts.contains(&Some(Part::Group(group)))
    }
}

/// An instance's place in a view; ordered by key, then slot (registration order), which is the
/// final tie-break of every chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub(crate) key: [u32; MAX_PARTS],
    pub(crate) slot: u32,
}

#[derive(Debug)]
pub(crate) struct View {
    pub(crate) spec: ViewSpec,
    /// Non-empty sets only, so the keys are exactly the values present among active instances.
    pub(crate) buckets: IdMap<ValueId, Bucket>,
    last_used: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Views {
    views: Vec<View>,
    tick: u64,
    /// Where an instance was in each view before a reservation changed it (see `capture`).
    captured: Vec<(ValueId, Entry)>,
}

impl Views {
    pub(crate) fn get(&self, i: usize) -> &View {
        &self.views[i]
    }

    #[cfg(test)]
    pub(crate) fn all(&self) -> &[View] {
        &self.views
    }

    /// The index of the view for `spec`, built from the active instances if absent.
    pub(crate) fn ensure<'a>(
        &mut self,
        spec: ViewSpec,
        instances: impl Iterator<Item = (u32, &'a Instance)>,
    ) -> usize {
        self.tick += 1;
        if let Some(i) = self.views.iter().position(|v| v.spec == spec) {
            self.views[i].last_used = self.tick;
            return i;
        }
        if self.views.len() >= MAX_VIEWS
            && let Some((lru, _)) = self
                .views
                .iter()
                .enumerate()
                .min_by_key(|(_, v)| v.last_used)
        {
            self.views.swap_remove(lru);
        }
        let mut sorted: IdMap<ValueId, Vec<Item>> = IdMap::default();
        for (slot, inst) in instances.filter(|(_, i)| i.is_active()) {
            sorted
                .entry(spec.bucket(inst))
                .or_default()
                .push(spec.item(slot, inst));
        }
        let buckets = sorted
            .into_iter()
            .map(|(value, mut items)| {
                items.sort_unstable_by_key(|i| i.entry);
                (value, Bucket::from_sorted(items))
            })
            .collect();
        self.views.push(View {
            spec,
            buckets,
            last_used: self.tick,
        });
        self.views.len() - 1
    }

    /// Takes an active instance out of every view, before a change that may move it anywhere
    /// (status, attributes, registration).
    pub(crate) fn remove(&mut self, slot: u32, inst: &Instance) {
        if !inst.is_active() {
            return;
        }
        for view in &mut self.views {
            let bucket = view.spec.bucket(inst);
            if let Some(set) = view.buckets.get_mut(&bucket) {
                set.remove(&Entry {
                    key: view.spec.key(inst),
                    slot,
                });
                if set.is_empty() {
                    view.buckets.remove(&bucket);
                }
            }
        }
    }

    /// Puts an active instance (back) into every view, after such a change.
    pub(crate) fn insert(&mut self, slot: u32, inst: &Instance) {
        if !inst.is_active() {
            return;
        }
        for view in &mut self.views {
            let item = view.spec.item(slot, inst);
            view.buckets
                .entry(view.spec.bucket(inst))
                .or_default()
                .insert(item);
        }
    }

    /// Records where an instance is in every view, before a reservation or release changes its
    /// free resources and group counts (but not its bucket); [`Self::settle`] follows.
    pub(crate) fn capture(&mut self, slot: u32, inst: &Instance) {
        self.captured.clear();
        if inst.is_active() {
            let at = self.views.iter().map(|v| {
                (
                    v.spec.bucket(inst),
                    Entry {
                        key: v.spec.key(inst),
                        slot,
                    },
                )
            });
            self.captured.extend(at);
        }
    }

    /// Re-keys the captured instance after the change: moved where its key changed, refreshed
    /// in place where only its free resources did.
    pub(crate) fn settle(&mut self, slot: u32, inst: &Instance) {
        if !inst.is_active() {
            return;
        }
        for (view, (bucket, old)) in self.views.iter_mut().zip(&self.captured) {
            let item = view.spec.item(slot, inst);
            let set = view
                .buckets
                .get_mut(bucket)
                .expect("captured from this bucket");
            if item.entry == *old {
                set.update(old, item.cpu, item.memory);
            } else {
                set.remove(old);
                set.insert(item);
            }
        }
    }

    /// The group is gone: so are the views ordered by its task counts.
    pub(crate) fn forget_group(&mut self, group: GroupId) {
        self.views.retain(|v| !v.spec.uses_group(group));
    }
}
