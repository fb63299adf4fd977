//! One behaviour per test.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::assert_consistent;
use crate::placement::*;

fn arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:container-instance/default/{id}")
}

fn instance(id: &str, cpu: u32, memory: u32, az: &str) -> ContainerInstance {
    ContainerInstance::new(id, arn(id), cpu, memory).with_attribute(AVAILABILITY_ZONE, az)
}

fn index_of(instances: impl IntoIterator<Item = ContainerInstance>) -> ClusterIndex {
    let mut index = ClusterIndex::new();
    for i in instances {
        index.add_instance(i).unwrap();
    }
    index
}

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(7)
}

fn request(group: &str, cpu: u32, memory: u32, strategies: Vec<Strategy>) -> PlacementRequest {
    PlacementRequest {
        strategies,
        ..PlacementRequest::new(group, cpu, memory)
    }
}

fn ids(outcome: &PlacementOutcome) -> Vec<&str> {
    outcome.placed.iter().map(|p| &*p.instance_id).collect()
}

fn binpack(field: BinpackField) -> Strategy {
    Strategy::Binpack(field)
}

fn spread_az() -> Strategy {
    Strategy::Spread(SpreadField::Attribute(AVAILABILITY_ZONE.into()))
}

#[test]
fn binpack_memory_takes_the_least_memory_that_fits() {
    let mut index = index_of([
        instance("a", 4096, 4096, "az1"),
        instance("b", 4096, 1024, "az1"),
        instance("c", 4096, 512, "az1"),
        instance("d", 4096, 2048, "az1"),
    ]);
    let req = request("family:web", 100, 600, vec![binpack(BinpackField::Memory)]);
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(ids(&out), ["b"]);
    // b has 424 left, too little now: next is d.
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(ids(&out), ["d"]);
    assert_eq!(index.instance("d").unwrap().memory_remaining(), 1448);
    assert_consistent(&index);
}

#[test]
fn binpack_cpu_then_memory_breaks_ties() {
    let mut index = index_of([
        instance("a", 1024, 4096, "az1"),
        instance("b", 1024, 2048, "az1"),
        instance("c", 2048, 1024, "az1"),
    ]);
    let req = request(
        "g",
        512,
        256,
        vec![binpack(BinpackField::Cpu), binpack(BinpackField::Memory)],
    );
    assert_eq!(ids(&place(&mut index, &req, &mut rng())), ["b"]);
    assert_eq!(ids(&place(&mut index, &req, &mut rng())), ["b"]);
    assert_eq!(ids(&place(&mut index, &req, &mut rng())), ["a"]);
    assert_consistent(&index);
}

#[test]
fn spread_instance_balances_and_ties_go_to_registration_order() {
    let mut index = index_of((0..3).map(|i| instance(&format!("i{i}"), 4096, 4096, "az1")));
    let req = PlacementRequest {
        count: 7,
        ..request("g", 10, 10, vec![Strategy::Spread(SpreadField::InstanceId)])
    };
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(ids(&out), ["i0", "i1", "i2", "i0", "i1", "i2", "i0"]);
    assert_consistent(&index);
}

#[test]
fn spread_az_then_binpack_memory() {
    let mut index = index_of([
        instance("a1", 4096, 4096, "az-a"),
        instance("a2", 4096, 1024, "az-a"),
        instance("b1", 4096, 2048, "az-b"),
        instance("b2", 4096, 3072, "az-b"),
    ]);
    let req = PlacementRequest {
        count: 4,
        ..request(
            "service:web",
            10,
            100,
            vec![spread_az(), binpack(BinpackField::Memory)],
        )
    };
    let out = place(&mut index, &req, &mut rng());
    // Both AZs empty: least memory overall (a2). Then az-b (fewer tasks): b1. Then tied again.
    assert_eq!(ids(&out), ["a2", "b1", "a2", "b1"]);
    assert_consistent(&index);
}

#[test]
fn service_default_spreads_over_zones_then_instances() {
    let mut index = index_of([
        instance("a1", 4096, 4096, "az-a"),
        instance("a2", 4096, 4096, "az-a"),
        instance("a3", 4096, 4096, "az-a"),
        instance("b1", 4096, 4096, "az-b"),
    ]);
    let req = PlacementRequest {
        origin: Origin::Service,
        count: 6,
        ..request("service:web", 10, 10, vec![])
    };
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(ids(&out), ["a1", "b1", "a2", "b1", "a3", "b1"]);
    assert_consistent(&index);
}

#[test]
fn standalone_default_is_random_and_uses_every_instance() {
    let mut index = index_of((0..8).map(|i| instance(&format!("i{i}"), 100_000, 100_000, "az1")));
    let req = PlacementRequest {
        count: 400,
        ..request("family:batch", 1, 1, vec![])
    };
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(out.placed.len(), 400);
    for i in 0..8 {
        let n = index.instance(&format!("i{i}")).unwrap().running_tasks();
        assert!((20..=80).contains(&n), "i{i} got {n} of 400");
    }
    assert_consistent(&index);
}

#[test]
fn random_respects_filters_even_when_few_fit() {
    let mut index = index_of((0..200).map(|i| {
        instance(
            &format!("i{i}"),
            1024,
            if i == 137 { 4096 } else { 512 },
            "az",
        )
    }));
    let req = PlacementRequest {
        count: 3,
        ..request("g", 10, 1024, vec![Strategy::Random])
    };
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(ids(&out), ["i137", "i137", "i137"]);
    assert_eq!(out.unplaced, 0);
}

#[test]
fn only_active_instances_are_candidates() {
    let mut index = index_of([
        instance("a", 4096, 4096, "az"),
        instance("b", 4096, 4096, "az"),
    ]);
    index.set_status("a", InstanceStatus::Draining).unwrap();
    let req = PlacementRequest {
        count: 2,
        ..request("g", 10, 10, vec![binpack(BinpackField::Memory)])
    };
    assert_eq!(ids(&place(&mut index, &req, &mut rng())), ["b", "b"]);
    index.set_status("b", InstanceStatus::Draining).unwrap();
    let out = place(&mut index, &req, &mut rng());
    assert!(out.placed.is_empty() && out.failures.is_empty());
    assert_eq!(
        out.unplaced, 2,
        "no active instance: the caller reports the empty cluster"
    );
    index.set_status("a", InstanceStatus::Active).unwrap();
    assert_eq!(ids(&place(&mut index, &req, &mut rng())), ["a", "a"]);
    assert_consistent(&index);
}

#[test]
fn failures_name_one_closest_instance_per_reason() {
    let mut index = index_of([
        instance("disconnected", 8192, 8192, "az"),
        instance("small-cpu", 256, 8192, "az"),
        instance("less-small-cpu", 512, 8192, "az"),
        instance("small-mem", 8192, 256, "az"),
        instance("port-taken", 8192, 8192, "az"),
        instance("wrong-type", 8192, 8192, "az").with_attribute("type", "t2"),
    ]);
    index.set_agent_connected("disconnected", false).unwrap();
    let mut taken = instance("port-taken", 8192, 8192, "az");
    taken.reserved_tcp_ports = vec![80];
    taken.attributes.insert("type".into(), "g2".into());
    index.update_instance(taken).unwrap();
    let mut req = request("g", 1024, 1024, vec![]);
    req.resources.ports.push(PortRequest {
        protocol: Protocol::Tcp,
        host_port: 80,
    });
    req.constraints
        .push(Constraint::member_of("attribute:type == g2").unwrap());
    req.count = 3;
    let out = place(&mut index, &req, &mut rng());
    assert!(out.placed.is_empty());
    assert_eq!(out.unplaced, 3);
    let failures: Vec<(&str, &str)> = out
        .failures
        .iter()
        .map(|f| {
            (
                f.reason.as_str(),
                f.instance_arn.rsplit('/').next().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            ("AGENT", "disconnected"),
            ("RESOURCE:CPU", "less-small-cpu"),
            ("RESOURCE:MEMORY", "small-mem"),
            ("RESOURCE:PORTS", "port-taken"),
            ("ATTRIBUTE", "wrong-type"),
        ]
    );
    assert_eq!(out.failures[4].reason, FailureReason::MemberOf);
}

#[test]
fn start_task_places_only_on_the_named_instance_and_reports_only_it() {
    let mut index = index_of([
        instance("named", 4096, 4096, "az"),
        instance("other", 2048, 4096, "az"),
    ]);
    let mut req = request("g", 1024, 1024, vec![binpack(BinpackField::Cpu)]);
    req.constraints
        .push(Constraint::OnInstances(vec![Arc::from("named")].into()));
    req.count = 4;
    // Binpack alone would fill `other` first.
    assert_eq!(
        ids(&place(&mut index, &req, &mut rng())),
        ["named", "named", "named", "named"]
    );
    // `named` is full, `other` lost its agent: the answer speaks of `named` alone.
    index.set_agent_connected("other", false).unwrap();
    req.count = 1;
    let out = place(&mut index, &req, &mut rng());
    assert!(out.placed.is_empty());
    let failures: Vec<_> = out
        .failures
        .iter()
        .map(|f| (f.reason, f.instance_arn.to_string()))
        .collect();
    assert_eq!(failures, [(FailureReason::Cpu, arn("named"))]);
    assert_consistent(&index);
}

#[test]
fn a_partial_placement_reports_what_stopped_it() {
    let mut index = index_of([
        instance("a", 1024, 1024, "az"),
        instance("b", 1024, 1024, "az"),
    ]);
    let req = PlacementRequest {
        count: 5,
        ..request("g", 512, 10, vec![binpack(BinpackField::Cpu)])
    };
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(ids(&out), ["a", "a", "b", "b"]);
    assert_eq!(out.unplaced, 1);
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].reason, FailureReason::Cpu);
    assert_eq!(index.instance("a").unwrap().cpu_remaining(), 0);
}

#[test]
fn distinct_instance_counts_the_request_itself() {
    let mut index = index_of((0..3).map(|i| instance(&format!("i{i}"), 4096, 4096, "az")));
    let mut req = request("g", 10, 10, vec![binpack(BinpackField::Memory)]);
    req.constraints.push(Constraint::DistinctInstance);
    req.count = 4;
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(ids(&out), ["i0", "i1", "i2"]);
    assert_eq!(out.unplaced, 1);
    assert_eq!(out.failures[0].reason, FailureReason::DistinctInstance);
    assert_eq!(out.failures[0].reason.as_str(), "ATTRIBUTE");
    // Another group is not affected.
    req.group = "other".into();
    req.count = 1;
    assert_eq!(ids(&place(&mut index, &req, &mut rng())), ["i0"]);
}

#[test]
fn member_of_sees_task_groups_as_they_are_placed() {
    let mut index = index_of((0..3).map(|i| instance(&format!("i{i}"), 4096, 4096, "az")));
    let db = request("db", 10, 10, vec![]);
    let out = place(
        &mut index,
        &PlacementRequest {
            strategies: vec![Strategy::Random],
            ..db
        },
        &mut rng(),
    );
    let db_on = out.placed[0].instance_id.clone();
    // Affinity: only where a db task runs.
    let mut web = request(
        "web",
        10,
        10,
        vec![Strategy::Spread(SpreadField::InstanceId)],
    );
    web.constraints
        .push(Constraint::member_of("task:group == db").unwrap());
    web.count = 2;
    let out = place(&mut index, &web, &mut rng());
    assert_eq!(ids(&out), [&*db_on, &*db_on]);
    // Anti-affinity with itself: at most one cache task per instance, like distinctInstance.
    let mut cache = request("cache", 10, 10, vec![]);
    cache
        .constraints
        .push(Constraint::member_of("not(task:group == cache)").unwrap());
    cache.count = 4;
    let out = place(&mut index, &cache, &mut rng());
    assert_eq!(out.placed.len(), 3);
    assert_eq!(out.failures[0].reason, FailureReason::MemberOf);
    assert_consistent(&index);
}

#[test]
fn static_and_dynamic_ports() {
    let mut reg = instance("a", 8192, 8192, "az");
    reg.reserved_tcp_ports = vec![22, EPHEMERAL_FIRST];
    let mut index = index_of([reg, instance("b", 8192, 8192, "az")]);
    let mut req = request("g", 10, 10, vec![binpack(BinpackField::Memory)]);
    req.resources.ports = vec![
        PortRequest {
            protocol: Protocol::Tcp,
            host_port: 80,
        },
        PortRequest {
            protocol: Protocol::Tcp,
            host_port: 0,
        },
        PortRequest {
            protocol: Protocol::Tcp,
            host_port: 0,
        },
        PortRequest {
            protocol: Protocol::Udp,
            host_port: 0,
        },
    ];
    let first = place(&mut index, &req, &mut rng()).placed.remove(0);
    assert_eq!(&*first.instance_id, "a");
    let ports: Vec<(Protocol, u16)> = first
        .reservation
        .ports
        .iter()
        .map(|p| (p.protocol, p.port))
        .collect();
    assert_eq!(
        ports,
        [
            (Protocol::Tcp, 80),
            (Protocol::Tcp, EPHEMERAL_FIRST + 1),
            (Protocol::Tcp, EPHEMERAL_FIRST + 2),
            (Protocol::Udp, EPHEMERAL_FIRST)
        ]
    );
    // Port 80 is now taken on a: the next task goes to b although a has less memory left.
    let second = place(&mut index, &req, &mut rng()).placed.remove(0);
    assert_eq!(&*second.instance_id, "b");
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(out.failures[0].reason, FailureReason::Ports);
    // Releasing frees port 80; the dynamic cursor moves on rather than reusing at once.
    index.release("a", &first.reservation).unwrap();
    let third = place(&mut index, &req, &mut rng()).placed.remove(0);
    assert_eq!(&*third.instance_id, "a");
    assert_eq!(third.reservation.ports[1].port, EPHEMERAL_FIRST + 3);
    assert_consistent(&index);
}

#[test]
fn a_request_asking_a_port_twice_fits_nowhere() {
    let mut index = index_of([instance("a", 8192, 8192, "az")]);
    let mut req = request("g", 10, 10, vec![]);
    let p = PortRequest {
        protocol: Protocol::Udp,
        host_port: 53,
    };
    req.resources.ports = vec![p, p];
    assert!(matches!(
        req.validate(),
        Err(RequestError::DuplicateHostPort { port: 53, .. })
    ));
    let out = place(&mut index, &req, &mut rng());
    assert_eq!(out.failures[0].reason, FailureReason::Ports);
}

#[test]
fn reserve_refuses_overcommit_and_release_refuses_strangers() {
    let mut index = index_of([instance("a", 1024, 1024, "az")]);
    let r = |cpu, memory, ports: Vec<u16>| TaskReservation {
        group: Arc::from("g"),
        cpu,
        memory,
        ports: ports
            .into_iter()
            .map(|port| HostPort {
                protocol: Protocol::Tcp,
                port,
            })
            .collect(),
    };
    index.reserve("a", &r(1000, 1000, vec![80])).unwrap();
    let err = index.reserve("a", &r(100, 10, vec![])).unwrap_err();
    assert!(matches!(
        err,
        IndexError::DoesNotFit {
            reason: FailureReason::Cpu,
            ..
        }
    ));
    let err = index.reserve("a", &r(10, 100, vec![])).unwrap_err();
    assert!(matches!(
        err,
        IndexError::DoesNotFit {
            reason: FailureReason::Memory,
            ..
        }
    ));
    let err = index.reserve("a", &r(1, 1, vec![80])).unwrap_err();
    assert!(matches!(
        err,
        IndexError::DoesNotFit {
            reason: FailureReason::Ports,
            ..
        }
    ));
    let err = index.reserve("a", &r(1, 1, vec![81, 81])).unwrap_err();
    assert!(matches!(
        err,
        IndexError::DoesNotFit {
            reason: FailureReason::Ports,
            ..
        }
    ));
    assert!(matches!(
        index.reserve("zz", &r(1, 1, vec![])),
        Err(IndexError::UnknownInstance(_))
    ));

    let other_group = TaskReservation {
        group: "h".into(),
        ..r(1, 1, vec![])
    };
    assert!(matches!(
        index.release("a", &other_group),
        Err(IndexError::NotReserved { .. })
    ));
    assert!(matches!(
        index.release("a", &r(2000, 1, vec![])),
        Err(IndexError::NotReserved { .. })
    ));
    assert!(matches!(
        index.release("a", &r(1, 1, vec![81])),
        Err(IndexError::NotReserved { .. })
    ));
    index.release("a", &r(1000, 1000, vec![80])).unwrap();
    let a = index.instance("a").unwrap();
    assert_eq!(
        (a.cpu_remaining(), a.memory_remaining(), a.running_tasks()),
        (1024, 1024, 0)
    );
    assert!(a.task_ports(Protocol::Tcp).is_empty());
    assert_eq!(
        index.group_count(),
        0,
        "a group is forgotten with its last task"
    );
    assert_consistent(&index);
}

#[test]
fn updates_keep_reservations_and_move_spread_counts() {
    let mut index = index_of([
        instance("a", 2048, 2048, "az-a"),
        instance("b", 2048, 2048, "az-b"),
    ]);
    let req = PlacementRequest {
        count: 2,
        ..request("svc", 512, 512, vec![spread_az()])
    };
    assert_eq!(ids(&place(&mut index, &req, &mut rng())), ["a", "b"]);
    // a moves to az-b: az-a is now empty, so it is preferred... but only b... a is in az-b too.
    index
        .update_instance(instance("a", 1024, 2048, "az-b"))
        .unwrap();
    let a = index.instance("a").unwrap();
    assert_eq!(
        (a.cpu_remaining(), a.memory_remaining(), a.running_tasks()),
        (512, 1536, 1)
    );
    assert_consistent(&index);
    index
        .add_instance(instance("c", 2048, 2048, "az-a"))
        .unwrap();
    assert_eq!(
        ids(&place(
            &mut index,
            &PlacementRequest {
                count: 1,
                ..req.clone()
            },
            &mut rng()
        )),
        ["c"]
    );
    // Registration shrinking below what tasks hold leaves nothing free, never a negative.
    index
        .update_instance(instance("b", 256, 256, "az-b"))
        .unwrap();
    assert_eq!(index.instance("b").unwrap().cpu_remaining(), 0);
    index.remove_instance("a").unwrap();
    assert!(!index.contains("a"));
    assert_consistent(&index);
    assert!(matches!(
        index.add_instance(instance("b", 1, 1, "x")),
        Err(IndexError::DuplicateInstance(_))
    ));
    assert!(matches!(
        index.remove_instance("a"),
        Err(IndexError::UnknownInstance(_))
    ));
}

#[test]
fn instances_without_the_spread_attribute_form_their_own_value() {
    let mut index = index_of([
        instance("a", 4096, 4096, "az-a"),
        ContainerInstance::new("bare", arn("bare"), 4096, 4096),
    ]);
    let req = PlacementRequest {
        count: 4,
        ..request("svc", 1, 1, vec![spread_az()])
    };
    assert_eq!(
        ids(&place(&mut index, &req, &mut rng())),
        ["a", "bare", "a", "bare"]
    );
    assert_consistent(&index);
}

#[test]
fn wire_forms() {
    assert_eq!(
        Strategy::from_wire("binpack", Some("memory")).unwrap(),
        Strategy::Binpack(BinpackField::Memory)
    );
    assert_eq!(
        Strategy::from_wire("binpack", Some("CPU")).unwrap(),
        Strategy::Binpack(BinpackField::Cpu)
    );
    assert_eq!(
        Strategy::from_wire("spread", Some("host")).unwrap(),
        Strategy::Spread(SpreadField::InstanceId)
    );
    assert_eq!(
        Strategy::from_wire("spread", Some("instanceId")).unwrap(),
        Strategy::Spread(SpreadField::InstanceId)
    );
    assert_eq!(
        Strategy::from_wire("spread", Some("attribute:ecs.availability-zone")).unwrap(),
        spread_az()
    );
    assert_eq!(
        Strategy::from_wire("random", None).unwrap(),
        Strategy::Random
    );
    assert!(matches!(
        Strategy::from_wire("pack", None),
        Err(RequestError::UnknownStrategyType(_))
    ));
    assert!(matches!(
        Strategy::from_wire("binpack", Some("disk")),
        Err(RequestError::InvalidStrategyField { .. })
    ));
    assert!(matches!(
        Strategy::from_wire("spread", None),
        Err(RequestError::InvalidStrategyField { .. })
    ));
    assert!(matches!(
        Strategy::from_wire("spread", Some("attribute:")),
        Err(RequestError::InvalidStrategyField { .. })
    ));

    assert_eq!(
        Constraint::from_wire("distinctInstance", None).unwrap(),
        Constraint::DistinctInstance
    );
    assert!(matches!(
        Constraint::from_wire("distinctInstance", Some("x")),
        Err(RequestError::UnexpectedExpression)
    ));
    assert!(matches!(
        Constraint::from_wire("memberOf", None),
        Err(RequestError::MissingExpression)
    ));
    let err = Constraint::from_wire("memberOf", Some("attribute:x ==")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Invalid cluster query expression"),
        "{err}"
    );
    assert!(matches!(
        Constraint::from_wire("affinity", None),
        Err(RequestError::UnknownConstraintType(_))
    ));

    let mut req = request("g", 1, 1, vec![Strategy::Random; 6]);
    assert!(matches!(
        req.validate(),
        Err(RequestError::TooManyStrategies(6))
    ));
    req.strategies.truncate(5);
    req.constraints = vec![Constraint::DistinctInstance; 11];
    assert!(matches!(
        req.validate(),
        Err(RequestError::TooManyConstraints(11))
    ));
    req.constraints.truncate(10);
    req.validate().unwrap();
    assert_eq!(
        PlacementRequest::new("g", 1, 1).effective_strategies(),
        [Strategy::Random]
    );
    assert_eq!(
        InstanceStatus::parse("DRAINING"),
        Some(InstanceStatus::Draining)
    );
}

#[test]
fn views_are_bounded_and_groups_forgotten() {
    let mut index = index_of((0..4).map(|i| instance(&format!("i{i}"), 1 << 20, 1 << 20, "az")));
    let mut held = Vec::new();
    for g in 0..40 {
        let group = format!("g{g}");
        let chain = vec![
            Strategy::Spread(SpreadField::InstanceId),
            binpack(BinpackField::Memory),
        ];
        for _ in 0..2 {
            held.extend(
                place(
                    &mut index,
                    &request(&group, 1, 1, chain.clone()),
                    &mut rng(),
                )
                .placed,
            );
        }
    }
    assert!(index.views.all().len() <= 16);
    assert_consistent(&index);
    for p in held {
        index.release(&p.instance_id, &p.reservation).unwrap();
    }
    assert_eq!(index.group_count(), 0);
    assert!(index.views.all().iter().all(|v| {
        v.spec
            .parts
            .iter()
            .flatten()
            .all(|p| !matches!(p, crate::placement::views::Part::Group(_)))
    }));
    assert_consistent(&index);
}
