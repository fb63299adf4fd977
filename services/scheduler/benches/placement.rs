//! Placement decisions per second on 1,000 and 5,000 instances.
//!
//! Each measured step is one decision for one task, applied to the index, in steady state: a
//! ring holds the tasks placed so far, and once it is full the oldest task is released before
//! each placement, so the cluster neither fills up nor empties and every decision sees an index
//! mutated by the previous ones (a release is part of the step, as it is in a live cluster).
//!
//! Scenarios: `binpack-memory`; `spread-az+binpack` (`[spread attribute:ecs.availability-zone,
//! binpack memory]`); `random`; plus `service-default` (spread over zones, then instances) and
//! `binpack+memberOf` to show the cost of a constraint evaluated per candidate.
//!
//! Criterion prints the throughput of each (`thrpt`, in decisions = elements per second); a
//! plain summary table follows, timed over a fixed number of decisions.
//!
//! `cargo bench -p berth-scheduler --bench placement -- --warm-up-time 1 --measurement-time 3`

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use berth_scheduler::placement::{
    AVAILABILITY_ZONE, BinpackField, ClusterIndex, Constraint, ContainerInstance, Origin,
    Placement, PlacementOutcome, PlacementRequest, SpreadField, Strategy, place_into,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const SIZES: [usize; 2] = [1_000, 5_000];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// A cluster of `n` instances over three zones, of four sizes (so binpack has an order to
/// keep), with an instance type attribute for the constraint scenario.
fn cluster(n: usize) -> ClusterIndex {
    let mut index = ClusterIndex::new();
    for i in 0..n {
        let (cpu, memory) = [(2048, 8192), (4096, 16384), (8192, 32768), (4096, 8192)][i % 4];
        let id = format!("{i:032x}");
        let ci = ContainerInstance::new(
            &id,
            format!("arn:aws:ecs:us-east-1:123456789012:container-instance/bench/{id}"),
            cpu,
            memory,
        )
        .with_attribute(AVAILABILITY_ZONE, ZONES[i % ZONES.len()])
        .with_attribute(
            "ecs.instance-type",
            if i % 5 == 0 { "c5.large" } else { "m5.xlarge" },
        )
        .with_attribute("ecs.os-type", "linux");
        index.add_instance(ci).unwrap();
    }
    index
}

/// Tasks held per instance in steady state: 2 is a lightly loaded cluster (binpack then fills a
/// few instances); 14 is about 80% of what the cluster can hold (the tasks exhaust CPU before
/// memory on most instance types, so full instances keep memory that binpack must look past).
const LIGHT: usize = 2;
const BUSY: usize = 14;

fn scenarios() -> Vec<(&'static str, usize, PlacementRequest)> {
    let task = |strategies, origin| PlacementRequest {
        strategies,
        origin,
        ..PlacementRequest::new("service:web", 256, 512)
    };
    let binpack = Strategy::Binpack(BinpackField::Memory);
    let spread_az = Strategy::Spread(SpreadField::Attribute(AVAILABILITY_ZONE.into()));
    let mut constrained = task(vec![binpack.clone()], Origin::Service);
    constrained.constraints.push(
        Constraint::member_of(
            "attribute:ecs.instance-type =~ m5.* and attribute:ecs.os-type == linux",
        )
        .unwrap(),
    );
    vec![
        (
            "binpack-memory",
            LIGHT,
            task(vec![binpack.clone()], Origin::Service),
        ),
        (
            "spread-az+binpack",
            LIGHT,
            task(vec![spread_az.clone(), binpack.clone()], Origin::Service),
        ),
        (
            "random",
            LIGHT,
            task(vec![Strategy::Random], Origin::Service),
        ),
        ("service-default", LIGHT, task(vec![], Origin::Service)),
        ("binpack+memberOf", LIGHT, constrained),
        (
            "binpack-memory@80%",
            BUSY,
            task(vec![binpack.clone()], Origin::Service),
        ),
        (
            "spread-az+binpack@80%",
            BUSY,
            task(vec![spread_az, binpack], Origin::Service),
        ),
        (
            "random@80%",
            BUSY,
            task(vec![Strategy::Random], Origin::Service),
        ),
    ]
}

/// A cluster in steady state for one scenario.
struct Run {
    index: ClusterIndex,
    request: PlacementRequest,
    held: VecDeque<Placement>,
    capacity: usize,
    outcome: PlacementOutcome,
    rng: SmallRng,
}

impl Run {
    fn new(n: usize, per_instance: usize, request: PlacementRequest) -> Self {
        let mut run = Run {
            index: cluster(n),
            request,
            capacity: per_instance * n,
            held: VecDeque::with_capacity(per_instance * n + 1),
            outcome: PlacementOutcome::default(),
            rng: SmallRng::seed_from_u64(42),
        };
        for _ in 0..run.capacity {
            run.step();
        }
        run
    }

    /// One decision (plus the release that keeps the cluster in steady state).
    fn step(&mut self) {
        if self.held.len() >= self.capacity {
            let old = self.held.pop_front().expect("full");
            self.index
                .release(&old.instance_id, &old.reservation)
                .expect("held");
        }
        place_into(
            &mut self.index,
            &self.request,
            &mut self.rng,
            &mut self.outcome,
        );
        let placed = self
            .outcome
            .placed
            .pop()
            .expect("steady state always has room");
        self.held.push_back(black_box(placed));
    }
}

fn bench(c: &mut Criterion) {
    for (name, per_instance, request) in scenarios() {
        let mut group = c.benchmark_group(format!("placement/{name}"));
        group.throughput(Throughput::Elements(1));
        for n in SIZES {
            let mut run = Run::new(n, per_instance, request.clone());
            group.bench_function(BenchmarkId::from_parameter(format!("{n} instances")), |b| {
                b.iter(|| run.step())
            });
        }
        group.finish();
    }
}

/// Decisions per second over a fixed number of decisions, for a table that reads at a glance.
fn summary() {
    const DECISIONS: u32 = 200_000;
    println!();
    println!(
        "{:<22} {:>10} {:>16} {:>14}",
        "scenario", "instances", "decisions/s", "ns/decision"
    );
    for (name, per_instance, request) in scenarios() {
        for n in SIZES {
            let mut run = Run::new(n, per_instance, request.clone());
            let start = Instant::now();
            for _ in 0..DECISIONS {
                run.step();
            }
            let elapsed = start.elapsed().max(Duration::from_nanos(1));
            let per_second = f64::from(DECISIONS) / elapsed.as_secs_f64();
            let ns = elapsed.as_nanos() as f64 / f64::from(DECISIONS);
            println!("{name:<22} {n:>10} {per_second:>16.0} {ns:>14.0}");
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    // `cargo test --benches` runs benchmarks once in test mode: no table there.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        summary();
    }
}
