//! Task groups: how many tasks each group has, and where, for spread and distinctInstance.
//!
//! Spread over an attribute needs, for the request's group, the number of its tasks per value
//! of the attribute. Recounting that per decision would cost a pass over the instances hosting
//! the group; instead each (group, attribute) pair that a request spreads over is counted once
//! and then kept current by every reservation, release and instance change. A group is
//! forgotten, with its counts, when its last task goes: group names are unbounded over time
//! (every task family, every service), the groups alive at once are not.

use std::sync::Arc;

use foldhash::HashMap;

use super::instance::Instance;
use super::intern::{AttrId, IdMap, ValueId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GroupId(u32);

/// Tasks per attribute value, for each attribute a group has been spread over.
type Spreads = Vec<(AttrId, IdMap<ValueId, u32>)>;

#[derive(Debug)]
struct GroupState {
    name: Arc<str>,
    total: u32,
    /// Tasks per attribute value, for the attributes this group has been spread over.
    spreads: Spreads,
}

#[derive(Debug, Default)]
pub(crate) struct Groups {
    by_name: HashMap<Arc<str>, GroupId>,
    states: IdMap<GroupId, GroupState>,
    next: u32,
}

impl Groups {
    pub(crate) fn lookup(&self, name: &str) -> Option<GroupId> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn name(&self, group: GroupId) -> &str {
        self.states.get(&group).map_or("", |s| &s.name)
    }

    #[cfg(test)]
    pub(crate) fn total(&self, group: GroupId) -> u32 {
        self.states.get(&group).map_or(0, |s| s.total)
    }

    /// Every group with its spread counts, for the consistency checks of the tests.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Vec<(GroupId, &str, u32, Spreads)> {
        self.states
            .iter()
            .map(|(g, s)| (*g, &*s.name, s.total, s.spreads.clone()))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// The group's id, creating it (with no task yet) if needed.
    pub(crate) fn intern(&mut self, name: &Arc<str>) -> GroupId {
        if let Some(id) = self.by_name.get(&**name) {
            return *id;
        }
        let id = GroupId(self.next);
        self.next = self
            .next
            .checked_add(1)
            .expect("fewer than 4 billion task groups over the index's life");
        self.by_name.insert(name.clone(), id);
        self.states.insert(
            id,
            GroupState {
                name: name.clone(),
                total: 0,
                spreads: Vec::new(),
            },
        );
        id
    }

    /// Tasks of `group` on instances whose `attr` is `value`.
    pub(crate) fn bucket_count(&self, group: GroupId, attr: AttrId, value: ValueId) -> u32 {
        let Some(state) = self.states.get(&group) else {
            return 0;
        };
        state
            .spreads
            .iter()
            .find(|(a, _)| *a == attr)
            .and_then(|(_, counts)| counts.get(&value).copied())
            .unwrap_or(0)
    }

    /// Starts counting `group` per value of `attr`, if not already: one pass over the instances.
    pub(crate) fn ensure_spread<'a>(
        &mut self,
        group: GroupId,
        attr: AttrId,
        instances: impl Iterator<Item = &'a Instance>,
    ) {
        let Some(state) = self.states.get_mut(&group) else {
            return;
        };
        if state.spreads.iter().any(|(a, _)| *a == attr) {
            return;
        }
        let mut counts = IdMap::default();
        for inst in instances {
            let n = inst.group_count(group);
            if n > 0 {
                *counts.entry(inst.value_of(attr)).or_insert(0) += n;
            }
        }
        state.spreads.push((attr, counts));
    }

    /// One more task of `group` on `inst`.
    pub(crate) fn task_added(&mut self, group: GroupId, inst: &Instance) {
        let state = self.states.get_mut(&group).expect("interned before use");
        state.total += 1;
        for (attr, counts) in &mut state.spreads {
            *counts.entry(inst.value_of(*attr)).or_insert(0) += 1;
        }
    }

    /// One task of `group` less on `inst`; forgets the group when that was its last task.
    /// Returns whether it did, so that views keyed by the group can go too.
    pub(crate) fn task_removed(&mut self, group: GroupId, inst: &Instance) -> bool {
        self.remove_tasks(group, inst, 1)
    }

    /// `inst` (with its tasks) leaves the index; returns the groups forgotten as a result.
    pub(crate) fn instance_removed(&mut self, inst: &Instance) -> Vec<GroupId> {
        inst.groups
            .iter()
            .filter(|(g, n)| self.remove_tasks(*g, inst, *n))
            .map(|(g, _)| *g)
            .collect()
    }

    /// `inst`'s attributes are about to change (`add == false`) or just changed (`add == true`):
    /// moves its tasks out of / into the spread buckets of its values.
    pub(crate) fn shift_instance(&mut self, inst: &Instance, add: bool) {
        for (group, n) in &inst.groups {
            let Some(state) = self.states.get_mut(group) else {
                continue;
            };
            for (attr, counts) in &mut state.spreads {
                let value = inst.value_of(*attr);
                if add {
                    *counts.entry(value).or_insert(0) += n;
                } else {
                    decrement(counts, value, *n);
                }
            }
        }
    }

    fn remove_tasks(&mut self, group: GroupId, inst: &Instance, n: u32) -> bool {
        let Some(state) = self.states.get_mut(&group) else {
            return false;
        };
        state.total = state.total.saturating_sub(n);
        if state.total == 0 {
            let state = self.states.remove(&group).expect("present");
            self.by_name.remove(&*state.name);
            return true;
        }
        for (attr, counts) in &mut state.spreads {
            decrement(counts, inst.value_of(*attr), n);
        }
        false
    }
}

fn decrement(counts: &mut IdMap<ValueId, u32>, value: ValueId, n: u32) {
    if let Some(c) = counts.get_mut(&value) {
        *c = c.saturating_sub(n);
        if *c == 0 {
            counts.remove(&value);
        }
    }
}
