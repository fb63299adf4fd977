//! The placement loop: one decision per task, each applied to the index before the next.
//!
//! Applying each placement at once is what makes a request for several tasks, and the requests
//! after it, see the tasks already placed: resources are never promised twice, `distinctInstance`
//! counts the request's own earlier tasks, and spread keeps balancing as it goes.

use rand::Rng;

use super::filter::{Need, closest_failures};
use super::index::ClusterIndex;
use super::instance::Instance;
use super::model::{Placement, PlacementOutcome, TaskReservation};
use super::request::PlacementRequest;
use super::select::{Plan, Rule, Selector, resolve, view_spec};

/// Places `request.count` tasks, recording each in the index, and returns what was placed and,
/// if some task fit nowhere, why. Requests are not validated here (see
/// [`PlacementRequest::validate`]); an impossible one just fails to place.
pub fn place<R: Rng + ?Sized>(
    index: &mut ClusterIndex,
    request: &PlacementRequest,
    rng: &mut R,
) -> PlacementOutcome {
    let mut outcome = PlacementOutcome::default();
    place_into(index, request, rng, &mut outcome);
    outcome
}

/// [`place`] into a caller-owned outcome, reusing its vectors: with a warm index, a request
/// without host ports allocates nothing.
pub fn place_into<R: Rng + ?Sized>(
    index: &mut ClusterIndex,
    request: &PlacementRequest,
    rng: &mut R,
    outcome: &mut PlacementOutcome,
) {
    outcome.clear();
    let mut scratch = std::mem::take(&mut index.scratch);
    let (chain, levels) = scratch.parts();
    let strategies = request.effective_strategies();
    let mut need = Need::new(request);
    for done in 0..request.count {
        // The group exists once it has a task; the first placement of a request may create it.
        need.group = index.groups.lookup(&request.group);
        resolve(strategies, need.group, &index.attrs, chain);
        let plan = prepare(index, chain, &need);
        let selector = Selector {
            slots: &index.slots,
            groups: &index.groups,
            views: &index.views,
            need: &need,
        };
        let Some(slot) = selector.select(plan, chain, levels, rng) else {
            let instances = index.slots.iter().flatten();
            closest_failures(instances, &index.groups, &need, &mut outcome.failures);
            outcome.unplaced = request.count - done;
            break;
        };
        let reservation = TaskReservation {
            group: request.group.clone(),
            cpu: need.cpu,
            memory: need.memory,
            ports: index.assign_ports(slot, &need),
        };
        index.hold(slot, &reservation);
        let inst = index.slots[slot as usize].as_ref().expect("just placed");
        outcome.placed.push(Placement {
            instance_id: inst.id.clone(),
            instance_arn: inst.arn.clone(),
            reservation,
        });
    }
    index.scratch = scratch;
}

/// Makes sure the spread counts and the view the chain needs exist, and says how to walk them.
fn prepare(index: &mut ClusterIndex, chain: &[Rule], need: &Need<'_>) -> Plan {
    if let Some(group) = need.group {
        for rule in chain {
            if let Rule::Attr(attr) = rule {
                index
                    .groups
                    .ensure_spread(group, *attr, index.slots.iter().flatten());
            }
        }
    }
    match chain.first() {
        Some(Rule::Random) => Plan::Random,
        Some(Rule::Attr(attr)) => {
            let spec = view_spec(Some(*attr), &chain[1..]);
            let view = index.views.ensure(spec, live_slots(&index.slots));
            Plan::Levels { attr: *attr, view }
        }
        _ => {
            let view = index
                .views
                .ensure(view_spec(None, chain), live_slots(&index.slots));
            Plan::Flat { view }
        }
    }
}

fn live_slots(slots: &[Option<Instance>]) -> impl Iterator<Item = (u32, &Instance)> {
    slots
        .iter()
        .enumerate()
        .filter_map(|(slot, inst)| Some((slot as u32, inst.as_ref()?)))
}
