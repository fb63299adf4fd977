//! Property tests: random clusters, random requests, random churn.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::{assert_consistent, reference_place};
use crate::placement::{Strategy as Rule, *};
use proptest::strategy::Strategy;

const ZONES: [&str; 3] = ["az-0", "az-1", "az-2"];
const GROUPS: [&str; 3] = ["service:web", "family:db", "batch"];
/// Expressions that depend only on attributes (checkable after the fact) or on the request's
/// own group and task count (checked through the counts before and after).
const ATTRIBUTE_EXPRS: [&str; 3] = [
    "attribute:ecs.availability-zone != az-0",
    "attribute:rack in [r0, r1]",
    "not(attribute:ecs.availability-zone exists) or attribute:rack == r2",
];

#[derive(Debug, Clone)]
struct InstanceSpec {
    cpu: u32,
    memory: u32,
    zone: Option<usize>,
    rack: usize,
    port_80_reserved: bool,
    connected: bool,
    active: bool,
}

#[derive(Debug, Clone)]
struct RequestSpec {
    group: usize,
    cpu: u32,
    memory: u32,
    ports: Vec<(bool, u16)>,
    strategies: Vec<usize>,
    service: bool,
    distinct: bool,
    member_of: Option<usize>,
    self_anti_affinity: bool,
    count: u32,
}

#[derive(Debug, Clone)]
enum Op {
    Place(RequestSpec),
    Release(usize),
    Status(usize, bool),
    Connected(usize, bool),
    Zone(usize, Option<usize>),
    Remove(usize),
    Add(InstanceSpec),
}

fn instance_spec() -> impl Strategy<Value = InstanceSpec> {
    (
        prop::sample::select(vec![256u32, 512, 1024, 2048]),
        prop::sample::select(vec![512u32, 1024, 2048]),
        prop::option::weighted(0.9, 0..ZONES.len()),
        0..3usize,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.85),
    )
        .prop_map(
            |(cpu, memory, zone, rack, port_80_reserved, connected, active)| InstanceSpec {
                cpu,
                memory,
                zone,
                rack,
                port_80_reserved,
                connected,
                active,
            },
        )
}

/// Strategy pool, by index: 0 binpack memory, 1 binpack cpu, 2 spread instanceId, 3 spread AZ,
/// 4 spread rack, 5 spread over an attribute nobody has, 6 random.
fn strategy(i: usize) -> Rule {
    match i {
        0 => Rule::Binpack(BinpackField::Memory),
        1 => Rule::Binpack(BinpackField::Cpu),
        2 => Rule::Spread(SpreadField::InstanceId),
        3 => Rule::Spread(SpreadField::Attribute(AVAILABILITY_ZONE.into())),
        4 => Rule::Spread(SpreadField::Attribute("rack".into())),
        5 => Rule::Spread(SpreadField::Attribute("nobody".into())),
        _ => Rule::Random,
    }
}

fn request_spec(with_random: bool) -> impl Strategy<Value = RequestSpec> {
    let pool: usize = if with_random { 7 } else { 6 };
    (
        0..GROUPS.len(),
        prop::sample::select(vec![0u32, 64, 128, 256, 512]),
        prop::sample::select(vec![0u32, 64, 128, 256, 512]),
        prop::collection::vec(
            (any::<bool>(), prop::sample::select(vec![0u16, 0, 80, 8080])),
            0..3,
        ),
        prop::collection::vec(0..pool, 0..4),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.2, 0..ATTRIBUTE_EXPRS.len()),
        prop::bool::weighted(0.1),
        1u32..5,
    )
        .prop_map(
            |(
                group,
                cpu,
                memory,
                ports,
                strategies,
                service,
                distinct,
                member_of,
                self_anti_affinity,
                count,
            )| {
                RequestSpec {
                    group,
                    cpu,
                    memory,
                    ports,
                    strategies,
                    service,
                    distinct,
                    member_of,
                    self_anti_affinity,
                    count,
                }
            },
        )
}

fn op(with_random: bool) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => request_spec(with_random).prop_map(Op::Place),
        3 => any::<usize>().prop_map(Op::Release),
        1 => (any::<usize>(), prop::bool::weighted(0.7)).prop_map(|(i, a)| Op::Status(i, a)),
        1 => (any::<usize>(), prop::bool::weighted(0.7)).prop_map(|(i, c)| Op::Connected(i, c)),
        1 => (any::<usize>(), prop::option::of(0..ZONES.len())).prop_map(|(i, z)| Op::Zone(i, z)),
        1 => any::<usize>().prop_map(Op::Remove),
        1 => instance_spec().prop_map(Op::Add),
    ]
}

fn container_instance(n: usize, spec: &InstanceSpec) -> ContainerInstance {
    let id = format!("i{n}");
    let mut ci = ContainerInstance::new(
        &id,
        format!("arn:container-instance/{id}"),
        spec.cpu,
        spec.memory,
    )
    .with_attribute("rack", format!("r{}", spec.rack));
    if let Some(z) = spec.zone {
        ci.attributes
            .insert(AVAILABILITY_ZONE.into(), ZONES[z].into());
    }
    if spec.port_80_reserved {
        ci.reserved_tcp_ports = vec![22, 80];
    }
    ci.agent_connected = spec.connected;
    ci.status = if spec.active {
        InstanceStatus::Active
    } else {
        InstanceStatus::Draining
    };
    ci
}

fn placement_request(spec: &RequestSpec) -> PlacementRequest {
    let mut req = PlacementRequest::new(GROUPS[spec.group], spec.cpu, spec.memory);
    req.resources.ports = spec
        .ports
        .iter()
        .map(|(udp, port)| PortRequest {
            protocol: if *udp { Protocol::Udp } else { Protocol::Tcp },
            host_port: *port,
        })
        .collect();
    req.strategies = spec.strategies.iter().map(|i| strategy(*i)).collect();
    req.origin = if spec.service {
        Origin::Service
    } else {
        Origin::Standalone
    };
    if spec.distinct {
        req.constraints.push(Constraint::DistinctInstance);
    }
    if let Some(e) = spec.member_of {
        req.constraints
            .push(Constraint::member_of(ATTRIBUTE_EXPRS[e]).unwrap());
    }
    if spec.self_anti_affinity {
        let expr = format!(
            "task:group != {} and runningTasksCount < 3",
            GROUPS[spec.group]
        );
        req.constraints.push(Constraint::member_of(&expr).unwrap());
    }
    req.count = spec.count;
    req
}

/// The model's side of the cluster: what the test believes each instance holds.
#[derive(Default)]
struct Model {
    /// Instance ids alive, in the order added.
    ids: Vec<String>,
    next: usize,
    specs: HashMap<String, InstanceSpec>,
    held: Vec<Placement>,
}

impl Model {
    fn pick(&self, i: usize) -> Option<String> {
        (!self.ids.is_empty()).then(|| self.ids[i % self.ids.len()].clone())
    }

    fn add(&mut self, spec: InstanceSpec, indexes: &mut [&mut ClusterIndex]) {
        let ci = container_instance(self.next, &spec);
        self.next += 1;
        for index in indexes.iter_mut() {
            index.add_instance(ci.clone()).unwrap();
        }
        self.ids.push(ci.id.clone());
        self.specs.insert(ci.id, spec);
    }

    /// Applies a non-placement op to every index.
    fn churn(&mut self, op: &Op, indexes: &mut [&mut ClusterIndex]) {
        match op {
            Op::Place(_) => unreachable!(),
            Op::Release(i) => {
                if self.held.is_empty() {
                    return;
                }
                let p = self.held.swap_remove(i % self.held.len());
                for index in indexes.iter_mut() {
                    index.release(&p.instance_id, &p.reservation).unwrap();
                }
            }
            Op::Status(i, active) => {
                let Some(id) = self.pick(*i) else { return };
                let status = if *active {
                    InstanceStatus::Active
                } else {
                    InstanceStatus::Draining
                };
                for index in indexes.iter_mut() {
                    index.set_status(&id, status).unwrap();
                }
                self.specs.get_mut(&id).unwrap().active = *active;
            }
            Op::Connected(i, connected) => {
                let Some(id) = self.pick(*i) else { return };
                for index in indexes.iter_mut() {
                    index.set_agent_connected(&id, *connected).unwrap();
                }
                self.specs.get_mut(&id).unwrap().connected = *connected;
            }
            Op::Zone(i, zone) => {
                let Some(id) = self.pick(*i) else { return };
                let spec = self.specs.get_mut(&id).unwrap();
                spec.zone = *zone;
                let n: usize = id[1..].parse().unwrap();
                let ci = container_instance(n, spec);
                for index in indexes.iter_mut() {
                    index.update_instance(ci.clone()).unwrap();
                }
            }
            Op::Remove(i) => {
                let Some(id) = self.pick(*i) else { return };
                for index in indexes.iter_mut() {
                    index.remove_instance(&id).unwrap();
                }
                self.ids.retain(|x| *x != id);
                self.specs.remove(&id);
                self.held.retain(|p| *p.instance_id != *id);
            }
            Op::Add(spec) => self.add(spec.clone(), indexes),
        }
    }

    /// Reservations can never exceed what an instance registered, and the index's books must
    /// equal the sum of what the model holds.
    fn assert_no_overcommit(&self, index: &ClusterIndex) {
        let mut cpu: HashMap<&str, u64> = HashMap::new();
        let mut memory: HashMap<&str, u64> = HashMap::new();
        let mut ports: HashMap<(&str, Protocol), Vec<u16>> = HashMap::new();
        for p in &self.held {
            *cpu.entry(&p.instance_id).or_default() += u64::from(p.reservation.cpu);
            *memory.entry(&p.instance_id).or_default() += u64::from(p.reservation.memory);
            for hp in &p.reservation.ports {
                ports
                    .entry((&p.instance_id, hp.protocol))
                    .or_default()
                    .push(hp.port);
            }
        }
        for state in index.instances() {
            let id = state.id();
            let (c, m) = (
                cpu.get(id).copied().unwrap_or(0),
                memory.get(id).copied().unwrap_or(0),
            );
            assert!(
                c <= u64::from(state.cpu_registered()),
                "cpu over-committed on {id}"
            );
            assert!(
                m <= u64::from(state.memory_registered()),
                "memory over-committed on {id}"
            );
            assert_eq!(
                (state.cpu_reserved(), state.memory_reserved()),
                (c, m),
                "books of {id}"
            );
            for proto in [Protocol::Tcp, Protocol::Udp] {
                let mut held = ports.remove(&(id, proto)).unwrap_or_default();
                held.sort_unstable();
                let before = held.len();
                held.dedup();
                assert_eq!(before, held.len(), "a {proto:?} port held twice on {id}");
                assert_eq!(held, state.task_ports(proto), "ports of {id}");
                assert!(
                    held.iter()
                        .all(|p| !state.registered_ports(proto).contains(p)),
                    "reserved port used on {id}"
                );
            }
        }
    }
}

fn initial_cluster() -> impl Strategy<Value = Vec<InstanceSpec>> {
    prop::collection::vec(instance_spec(), 0..24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The indexed engine decides exactly as brute force does, for every deterministic chain,
    /// through churn; its incremental structures always equal a rebuild.
    #[test]
    fn engine_matches_brute_force(
        cluster in initial_cluster(),
        ops in prop::collection::vec(op(false), 1..60),
    ) {
        let (mut engine, mut reference) = (ClusterIndex::new(), ClusterIndex::new());
        let mut model = Model::default();
        for spec in cluster {
            model.add(spec, &mut [&mut engine, &mut reference]);
        }
        let mut rng = SmallRng::seed_from_u64(1);
        for op in &ops {
            match op {
                Op::Place(spec) => {
                    let mut req = placement_request(spec);
                    if req.strategies.is_empty() {
                        req.origin = Origin::Service; // the standalone default is random
                    }
                    let got = place(&mut engine, &req, &mut rng);
                    let want = reference_place(&mut reference, &req);
                    prop_assert_eq!(&got, &want, "request {:?}", req);
                    model.held.extend(got.placed);
                }
                other => model.churn(other, &mut [&mut engine, &mut reference]),
            }
            assert_consistent(&engine);
            model.assert_no_overcommit(&engine);
        }
    }

    /// With random strategies too: no over-commit, and every constraint holds for every task.
    #[test]
    fn placements_respect_resources_and_constraints(
        cluster in initial_cluster(),
        ops in prop::collection::vec(op(true), 1..60),
        seed in any::<u64>(),
    ) {
        let mut index = ClusterIndex::new();
        let mut model = Model::default();
        for spec in cluster {
            model.add(spec, &mut [&mut index]);
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        for op in &ops {
            let Op::Place(spec) = op else {
                model.churn(op, &mut [&mut index]);
                assert_consistent(&index);
                model.assert_no_overcommit(&index);
                continue;
            };
            let req = placement_request(spec);
            let group = &*req.group;
            let before: HashMap<String, (u32, u32)> = index
                .instances()
                .map(|s| (s.id().to_owned(), (s.group_count(group), s.running_tasks())))
                .collect();
            let out = place(&mut index, &req, &mut rng);
            prop_assert_eq!(out.placed.len() as u32 + out.unplaced, req.count);
            let mut per_instance: HashMap<&str, u32> = HashMap::new();
            for p in &out.placed {
                *per_instance.entry(&p.instance_id).or_default() += 1;
                let spec = &model.specs[&*p.instance_id];
                prop_assert!(spec.active && spec.connected, "placed on an unavailable instance");
                let state = index.instance(&p.instance_id).unwrap();
                for c in &req.constraints {
                    if let Constraint::MemberOf(q) = c
                        && !q.as_str().starts_with("task:group")
                    {
                        prop_assert!(q.matches(&snapshot(&state)), "{} violated on {}", q, p.instance_id);
                    }
                }
            }
            let self_anti = spec.distinct || spec.self_anti_affinity;
            for (id, n) in &per_instance {
                let (group_before, running_before) = before[*id];
                if self_anti {
                    prop_assert_eq!((group_before, *n), (0, 1), "distinct violated on {}", id);
                }
                if spec.self_anti_affinity {
                    prop_assert!(running_before < 3);
                }
            }
            model.held.extend(out.placed);
            assert_consistent(&index);
            model.assert_no_overcommit(&index);
        }
    }

    /// Spreading over N zones keeps them within one task of each other while resources allow,
    /// and spreading over instances does the same per instance.
    #[test]
    fn spread_stays_balanced(
        zones in 2usize..6,
        per_zone in prop::collection::vec(1usize..8, 6),
        existing in prop::collection::vec((0usize..64, 0u32..3), 0..6),
        count in 1u32..80,
        then_binpack in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut index = ClusterIndex::new();
        let mut n = 0;
        for (z, k) in per_zone.iter().take(zones).enumerate() {
            for _ in 0..*k {
                // Uneven sizes, all ample.
                let ci = ContainerInstance::new(format!("i{n}"), format!("arn/i{n}"), 100_000 + 7 * n as u32, 100_000 + 13 * n as u32)
                    .with_attribute(AVAILABILITY_ZONE, format!("az-{z}"));
                index.add_instance(ci).unwrap();
                n += 1;
            }
        }
        // Other groups' tasks must not disturb the balance of this one.
        for (i, g) in existing {
            let id = format!("i{}", i % n);
            let r = TaskReservation { group: Arc::from(GROUPS[g as usize]), cpu: 1, memory: 1, ports: vec![] };
            index.reserve(&id, &r).unwrap();
        }
        let strategies = if then_binpack {
            vec![strategy(3), strategy(0)]
        } else {
            vec![] // the service default: zones, then instances
        };
        let req = PlacementRequest {
            strategies,
            origin: Origin::Service,
            count,
            ..PlacementRequest::new("service:balanced", 10, 10)
        };
        let out = place(&mut index, &req, &mut SmallRng::seed_from_u64(seed));
        prop_assert_eq!(out.placed.len() as u32, count);
        let mut per_zone_count = vec![0u32; zones];
        for s in index.instances() {
            let z: usize = s.attributes()[AVAILABILITY_ZONE][3..].parse().unwrap();
            per_zone_count[z] += s.group_count("service:balanced");
        }
        let (max, min) = (per_zone_count.iter().max().unwrap(), per_zone_count.iter().min().unwrap());
        prop_assert!(max - min <= 1, "zones {:?}", per_zone_count);
        if !then_binpack {
            // Within each zone, instances are within one of each other.
            for z in 0..zones {
                let counts: Vec<u32> = index
                    .instances()
                    .filter(|s| s.attributes()[AVAILABILITY_ZONE] == format!("az-{z}"))
                    .map(|s| s.group_count("service:balanced"))
                    .collect();
                let (max, min) = (counts.iter().max().unwrap(), counts.iter().min().unwrap());
                prop_assert!(max - min <= 1, "instances of az-{} {:?}", z, counts);
            }
        }
    }

    /// Releasing what a request placed puts the index back exactly as it was.
    #[test]
    fn release_restores_exactly(
        cluster in prop::collection::vec(instance_spec(), 1..16),
        warmup in prop::collection::vec(request_spec(true), 0..4),
        spec in request_spec(true),
        order_seed in any::<u64>(),
    ) {
        let mut index = ClusterIndex::new();
        let mut model = Model::default();
        for s in cluster {
            model.add(s, &mut [&mut index]);
        }
        let mut rng = SmallRng::seed_from_u64(order_seed);
        for w in &warmup {
            place(&mut index, &placement_request(w), &mut rng);
        }
        let before = full_state(&index);
        let out = place(&mut index, &placement_request(&spec), &mut rng);
        let mut placed = out.placed;
        // Release in a scrambled order.
        let mut k = order_seed as usize;
        while !placed.is_empty() {
            k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let p = placed.swap_remove((k >> 33) % placed.len());
            index.release(&p.instance_id, &p.reservation).unwrap();
        }
        prop_assert_eq!(full_state(&index), before);
        assert_consistent(&index);
    }
}

type InstanceRow = (
    String,
    u32,
    u32,
    u64,
    u64,
    u32,
    Vec<u16>,
    Vec<u16>,
    Vec<u32>,
);

fn full_state(index: &ClusterIndex) -> (Vec<InstanceRow>, usize) {
    let rows = index
        .instances()
        .map(|s| {
            (
                s.id().to_owned(),
                s.cpu_remaining(),
                s.memory_remaining(),
                s.cpu_reserved(),
                s.memory_reserved(),
                s.running_tasks(),
                s.task_ports(Protocol::Tcp).to_vec(),
                s.task_ports(Protocol::Udp).to_vec(),
                GROUPS.iter().map(|g| s.group_count(g)).collect(),
            )
        })
        .collect();
    (rows, index.group_count())
}

fn snapshot(state: &InstanceState<'_>) -> berth_cql::InstanceSnapshot {
    berth_cql::InstanceSnapshot {
        attributes: state.attributes().clone(),
        agent_connected: state.agent_connected(),
        running_tasks_count: u64::from(state.running_tasks()),
        ..Default::default()
    }
}
