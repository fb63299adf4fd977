//! Tests of the placement engine, with two tools they share:
//!
//! - [`assert_consistent`] rebuilds every incremental structure (views, spread counts, group
//!   totals, free resources) from the instances and compares;
//! - [`reference_place`] places by brute force (score every feasible instance with the full
//!   strategy chain, take the least) so the indexed engine can be compared against it.

mod props;
mod unit;

use std::collections::HashMap;

use super::bucket::Item;
use super::filter::{Need, closest_failures};
use super::index::ClusterIndex;
use super::instance::Instance;
use super::intern::{IdMap, ValueId};
use super::model::{Placement, PlacementOutcome, TaskReservation};
use super::request::{BinpackField, PlacementRequest, SpreadField, Strategy};
use super::views::Entry;

/// Panics unless every derived structure of the index matches a rebuild from its instances.
pub(super) fn assert_consistent(index: &ClusterIndex) {
    let live: Vec<(u32, &Instance)> = index.live().collect();
    assert_eq!(
        index.active_len(),
        live.iter().filter(|(_, i)| i.is_active()).count(),
        "active count"
    );

    let mut totals: HashMap<_, u32> = HashMap::new();
    for (_, inst) in &live {
        let free =
            |registered: u32, reserved: u64| u64::from(registered).saturating_sub(reserved) as u32;
        assert_eq!(
            inst.cpu_free,
            free(inst.cpu_registered, inst.cpu_reserved),
            "cpu of {}",
            inst.id
        );
        assert_eq!(
            inst.memory_free,
            free(inst.memory_registered, inst.memory_reserved),
            "memory of {}",
            inst.id
        );
        for space in &inst.ports {
            let tasks = space.task_ports();
            assert!(
                tasks.windows(2).all(|w| w[0] < w[1]),
                "task ports unique and sorted on {}",
                inst.id
            );
        }
        assert_eq!(
            inst.running,
            inst.groups.iter().map(|(_, n)| n).sum::<u32>(),
            "running on {}",
            inst.id
        );
        for (g, n) in &inst.groups {
            assert!(*n > 0);
            *totals.entry(*g).or_default() += n;
        }
    }

    let groups = index.groups.snapshot();
    assert_eq!(groups.len(), totals.len(), "groups alive");
    for (g, name, total, spreads) in groups {
        assert_eq!(Some(g), index.groups.lookup(name));
        assert_eq!(
            totals.get(&g).copied(),
            Some(total),
            "total of group {name}"
        );
        assert_eq!(index.groups.total(g), total);
        for (attr, counts) in spreads {
            let mut expected: IdMap<ValueId, u32> = IdMap::default();
            for (_, inst) in &live {
                let n = inst.group_count(g);
                if n > 0 {
                    *expected.entry(inst.value_of(attr)).or_default() += n;
                }
            }
            assert_eq!(counts, expected, "spread counts of group {name}");
        }
    }

    for view in index.views.all() {
        let mut expected: IdMap<ValueId, Vec<Item>> = IdMap::default();
        for (slot, inst) in live.iter().filter(|(_, i)| i.is_active()) {
            let item = Item {
                entry: Entry {
                    key: view.spec.key(inst),
                    slot: *slot,
                },
                cpu: inst.cpu_free,
                memory: inst.memory_free,
            };
            expected
                .entry(view.spec.bucket(inst))
                .or_default()
                .push(item);
        }
        for items in expected.values_mut() {
            items.sort_unstable_by_key(|i| i.entry);
        }
        let actual: IdMap<ValueId, Vec<Item>> = view
            .buckets
            .iter()
            .map(|(value, bucket)| {
                bucket.assert_valid();
                (*value, bucket.iter().copied().collect())
            })
            .collect();
        assert_eq!(actual, expected, "view {:?}", view.spec);
    }
}

/// Brute-force placement with the same filter and bookkeeping as the engine, for deterministic
/// strategy chains.
pub(super) fn reference_place(
    index: &mut ClusterIndex,
    request: &PlacementRequest,
) -> PlacementOutcome {
    let mut out = PlacementOutcome::default();
    let mut need = Need::new(request);
    for done in 0..request.count {
        need.group = index.groups.lookup(&request.group);
        let best = index
            .live()
            .filter(|(_, inst)| inst.is_active() && need.fits(inst, &index.groups))
            .map(|(slot, inst)| (reference_key(index, request, inst), slot))
            .min();
        let Some((_, slot)) = best else {
            closest_failures(
                index.slots.iter().flatten(),
                &index.groups,
                &need,
                &mut out.failures,
            );
            out.unplaced = request.count - done;
            break;
        };
        let reservation = TaskReservation {
            group: request.group.clone(),
            cpu: need.cpu,
            memory: need.memory,
            ports: index.assign_ports(slot, &need),
        };
        index.hold(slot, &reservation);
        let inst = index.slots[slot as usize].as_ref().unwrap();
        out.placed.push(Placement {
            instance_id: inst.id.clone(),
            instance_arn: inst.arn.clone(),
            reservation,
        });
    }
    out
}

fn reference_key(index: &ClusterIndex, request: &PlacementRequest, inst: &Instance) -> Vec<u64> {
    let group_on = |i: &Instance| {
        index
            .groups
            .lookup(&request.group)
            .map_or(0, |g| i.group_count(g))
    };
    request
        .effective_strategies()
        .iter()
        .map(|s| match s {
            Strategy::Binpack(BinpackField::Memory) => u64::from(inst.memory_free),
            Strategy::Binpack(BinpackField::Cpu) => u64::from(inst.cpu_free),
            Strategy::Spread(SpreadField::InstanceId) => u64::from(group_on(inst)),
            Strategy::Spread(SpreadField::Attribute(name)) => {
                let value = inst.attributes.get(&**name);
                index
                    .live()
                    .filter(|(_, other)| other.attributes.get(&**name) == value)
                    .map(|(_, other)| u64::from(group_on(other)))
                    .sum()
            }
            Strategy::Random => panic!("the reference is deterministic"),
        })
        .collect()
}
