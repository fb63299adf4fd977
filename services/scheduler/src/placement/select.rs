//! Choosing one instance: strategy rules chained as tie-breakers, answered from the views.
//!
//! A chain of rules is read as a lexicographic key (lower is better): binpack is the free amount
//! of its resource, spread over instances the group's tasks on the instance, spread over an
//! attribute the group's tasks on all instances sharing the instance's value; the final
//! tie-break is the slot (registration order), and `random` ends the chain by choosing uniformly
//! among what is still tied. The winner is the feasible instance with the least key. Three
//! plans compute it without looking at every instance:
//!
//! - `random` first: rejection sampling (uniform over the feasible instances; falls back to one
//!   scan when few are feasible).
//! - spread over an attribute first: the attribute's values are ordered by the group's task
//!   count (a handful of values, from maintained counts); within the least-loaded values, the
//!   rest of the chain is answered from a view partitioned by that attribute.
//! - otherwise: one view ordered by the chain's leading binpack/spread-instance rules.
//!
//! In a view, the first feasible entry carries the least key prefix; when rules remain beyond
//! what the view orders by, only the entries tied with it on that prefix are scanned.

use rand::Rng;

use super::filter::Need;
use super::groups::{GroupId, Groups};
use super::instance::Instance;
use super::intern::{AttrId, Interner, ValueId};
use super::request::{BinpackField, SpreadField, Strategy};
use super::views::{Entry, MAX_PARTS, Part, View, ViewSpec, Views};

/// Rules considered per chain (ECS allows 5).
const MAX_RULES: usize = 8;
/// Random probes before falling back to a scan.
const RANDOM_PROBES: usize = 32;

/// A strategy rule resolved against the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Memory,
    Cpu,
    /// spread instanceId, for a group that has tasks.
    Group(GroupId),
    /// spread attribute, for a group that has tasks.
    Attr(AttrId),
    Random,
}

impl Rule {
    fn part(self) -> Option<Part> {
        match self {
            Rule::Memory => Some(Part::Memory),
            Rule::Cpu => Some(Part::Cpu),
            Rule::Group(g) => Some(Part::Group(g)),
            Rule::Attr(_) | Rule::Random => None,
        }
    }
}

/// Buffers reused across decisions.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) chain: Vec<Rule>,
    levels: Vec<(u32, ValueId)>,
}

impl Scratch {
    pub(crate) fn parts(&mut self) -> (&mut Vec<Rule>, &mut Vec<(u32, ValueId)>) {
        (&mut self.chain, &mut self.levels)
    }
}

/// Resolves strategies into rules. Rules whose key is the same for every instance are dropped:
/// spreading a group that has no task yet, or over an attribute no instance ever had. That keeps
/// them from costing a view or a scan, and changes no outcome.
pub(crate) fn resolve(
    strategies: &[Strategy],
    group: Option<GroupId>,
    attrs: &Interner,
    out: &mut Vec<Rule>,
) {
    out.clear();
    for strategy in strategies {
        let rule = match strategy {
            Strategy::Binpack(BinpackField::Memory) => Some(Rule::Memory),
            Strategy::Binpack(BinpackField::Cpu) => Some(Rule::Cpu),
            Strategy::Spread(SpreadField::InstanceId) => group.map(Rule::Group),
            Strategy::Spread(SpreadField::Attribute(name)) => {
                group.and(attrs.get(name)).map(|a| Rule::Attr(AttrId(a)))
            }
            Strategy::Random => Some(Rule::Random),
        };
        if let Some(rule) = rule {
            out.push(rule);
            if rule == Rule::Random || out.len() == MAX_RULES {
                break;
            }
        }
    }
}

/// How a resolved chain is answered (the view indices are into [`Views`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Plan {
    Random,
    Levels { attr: AttrId, view: usize },
    Flat { view: usize },
}

/// The view a chain (or the rest of it, after a leading attribute spread) is walked in.
pub(crate) fn view_spec(partition: Option<AttrId>, chain: &[Rule]) -> ViewSpec {
    let mut spec = ViewSpec {
        partition,
        ..ViewSpec::default()
    };
    for (slot, part) in spec
        .parts
        .iter_mut()
        .zip(chain.iter().map_while(|r| r.part()))
    {
        *slot = Some(part);
    }
    spec
}

/// A candidate: its key (view prefix, then the remaining rules), its slot, and how many equally
/// good candidates it stands for (for a uniform choice when the chain ends in `random`).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    prefix: [u32; MAX_PARTS],
    tail: [u32; MAX_RULES],
    slot: u32,
    ties: u32,
}

/// The read-only side of a decision.
pub(crate) struct Selector<'a> {
    pub(crate) slots: &'a [Option<Instance>],
    pub(crate) groups: &'a Groups,
    pub(crate) views: &'a Views,
    pub(crate) need: &'a Need<'a>,
}

impl Selector<'_> {
    /// The chosen slot, or `None` when no active instance can take the task.
    pub(crate) fn select<R: Rng + ?Sized>(
        &self,
        plan: Plan,
        chain: &[Rule],
        levels: &mut Vec<(u32, ValueId)>,
        rng: &mut R,
    ) -> Option<u32> {
        match plan {
            Plan::Random => self.random_among(None, rng),
            Plan::Flat { view } => self
                .best_in(self.views.get(view), ValueId::ALL, chain, rng)
                .map(|c| c.slot),
            Plan::Levels { attr, view } => {
                self.by_levels(attr, self.views.get(view), &chain[1..], levels, rng)
            }
        }
    }

    /// Spread over `attr` first: the values with the fewest tasks of the group, then `rest`
    /// among their instances; the next count up only if nothing fits there.
    fn by_levels<R: Rng + ?Sized>(
        &self,
        attr: AttrId,
        view: &View,
        rest: &[Rule],
        levels: &mut Vec<(u32, ValueId)>,
        rng: &mut R,
    ) -> Option<u32> {
        let group = self
            .need
            .group
            .expect("attribute spread is only resolved for a group with tasks");
        levels.clear();
        levels.extend(
            view.buckets
                .keys()
                .map(|v| (self.groups.bucket_count(group, attr, *v), *v)),
        );
        levels.sort_unstable();
        let random_first = rest.first() == Some(&Rule::Random);
        let random_last = rest.last() == Some(&Rule::Random);
        let mut start = 0;
        while start < levels.len() {
            let count = levels[start].0;
            let end = levels[start..]
                .iter()
                .position(|l| l.0 != count)
                .map_or(levels.len(), |n| start + n);
            let level = &levels[start..end];
            let found = if random_first {
                self.random_among(Some((view, level)), rng)
            } else {
                let mut best = None;
                for (_, value) in level {
                    if let Some(c) = self.best_in(view, *value, rest, rng) {
                        best = Some(merge(best, c, random_last, rng));
                    }
                }
                best.map(|c| c.slot)
            };
            if found.is_some() {
                return found;
            }
            start = end;
        }
        None
    }

    /// The best feasible instance of one bucket of a view under `chain`, whose leading rules are
    /// the view's key parts.
    fn best_in<R: Rng + ?Sized>(
        &self,
        view: &View,
        bucket: ValueId,
        chain: &[Rule],
        rng: &mut R,
    ) -> Option<Candidate> {
        let set = view.buckets.get(&bucket)?;
        let prefix_len = view.spec.parts.iter().flatten().count();
        let lower = match view.spec.parts[0] {
            Some(Part::Memory) => self.need.memory,
            Some(Part::Cpu) => self.need.cpu,
            _ => 0,
        };
        let mut key = [0; MAX_PARTS];
        key[0] = lower;
        let mut walk = set
            .fitting(&Entry { key, slot: 0 }, self.need.cpu, self.need.memory)
            .map(|i| &i.entry);
        let first = walk.find(|e| self.fits(e.slot))?;
        let tail = &chain[prefix_len.min(chain.len())..];
        if tail.is_empty() {
            return Some(Candidate {
                prefix: first.key,
                tail: [0; MAX_RULES],
                slot: first.slot,
                ties: 1,
            });
        }
        // Rules beyond the view's order: decide among the entries tied with `first`.
        let random = tail.last() == Some(&Rule::Random);
        let mut best = self.candidate(first, tail);
        for e in walk.take_while(|e| e.key == first.key) {
            if self.fits(e.slot) {
                best = merge(Some(best), self.candidate(e, tail), random, rng);
            }
        }
        Some(best)
    }

    fn candidate(&self, entry: &Entry, tail: &[Rule]) -> Candidate {
        let inst = self.instance(entry.slot);
        let mut keys = [0; MAX_RULES];
        for (k, rule) in keys.iter_mut().zip(tail) {
            *k = match *rule {
                Rule::Memory => inst.memory_free,
                Rule::Cpu => inst.cpu_free,
                Rule::Group(g) => inst.group_count(g),
                Rule::Attr(a) => self
                    .need
                    .group
                    .map_or(0, |g| self.groups.bucket_count(g, a, inst.value_of(a))),
                Rule::Random => break,
            };
        }
        Candidate {
            prefix: entry.key,
            tail: keys,
            slot: entry.slot,
            ties: 1,
        }
    }

    /// A uniformly random feasible instance, among all active ones or among the given buckets of
    /// a view. Probing random slots is O(1) per probe while most of the scope is feasible; when
    /// the scope is a small part of the cluster, or the probes miss, one pass decides.
    fn random_among<R: Rng + ?Sized>(
        &self,
        scope: Option<(&View, &[(u32, ValueId)])>,
        rng: &mut R,
    ) -> Option<u32> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let in_scope = |inst: &Instance| match scope {
            None => true,
            Some((view, level)) => {
                let value = view.spec.bucket(inst);
                level.iter().any(|(_, v)| *v == value)
            }
        };
        let scope_size = match scope {
            None => n,
            Some((view, level)) => level
                .iter()
                .filter_map(|(_, v)| view.buckets.get(v))
                .map(|s| s.len())
                .sum(),
        };
        if scope_size * 8 >= n {
            for _ in 0..RANDOM_PROBES {
                let slot = rng.random_range(0..n) as u32;
                if let Some(inst) = &self.slots[slot as usize]
                    && inst.is_active()
                    && in_scope(inst)
                    && self.need.fits(inst, self.groups)
                {
                    return Some(slot);
                }
            }
        }
        // Reservoir sampling over the scope: uniform, one pass, no allocation.
        let mut chosen = None;
        let mut seen = 0u32;
        let mut offer = |slot: u32, rng: &mut R| {
            seen += 1;
            if rng.random_range(0..seen) == 0 {
                chosen = Some(slot);
            }
        };
        match scope {
            None => {
                for (slot, inst) in self.slots.iter().enumerate() {
                    if let Some(inst) = inst
                        && inst.is_active()
                        && self.need.fits(inst, self.groups)
                    {
                        offer(slot as u32, rng);
                    }
                }
            }
            Some((view, level)) => {
                let from = Entry {
                    key: [0; MAX_PARTS],
                    slot: 0,
                };
                for set in level.iter().filter_map(|(_, v)| view.buckets.get(v)) {
                    for item in set.fitting(&from, self.need.cpu, self.need.memory) {
                        if self.fits(item.entry.slot) {
                            offer(item.entry.slot, rng);
                        }
                    }
                }
            }
        }
        chosen
    }

    fn instance(&self, slot: u32) -> &Instance {
        self.slots[slot as usize]
            .as_ref()
            .expect("views hold live slots")
    }

    fn fits(&self, slot: u32) -> bool {
        self.need.fits(self.instance(slot), self.groups)
    }
}

/// The better of two candidates; equal keys go to the lower slot, or, when the chain ends in
/// `random`, to either with probability proportional to how many candidates each stands for.
fn merge<R: Rng + ?Sized>(
    best: Option<Candidate>,
    c: Candidate,
    random: bool,
    rng: &mut R,
) -> Candidate {
    let Some(b) = best else {
        return c;
    };
    match (c.prefix, c.tail).cmp(&(b.prefix, b.tail)) {
        std::cmp::Ordering::Less => c,
        std::cmp::Ordering::Greater => b,
        std::cmp::Ordering::Equal if random => {
            let ties = b.ties + c.ties;
            let winner = if rng.random_range(0..ties) < c.ties {
                c
            } else {
                b
            };
            Candidate { ties, ..winner }
        }
        std::cmp::Ordering::Equal => {
            if c.slot < b.slot {
                c
            } else {
                b
            }
        }
    }
}
