//! Task throughput and latency, end to end, printed as figures:
//!
//! 1. RunTask to "task placed" in the log, tasks/s, with 1,000 simulated agents
//!    (`berth-agent simulate`'s fleet: real WebSocket protocol, faked runtime). The
//!    clock stops when the last RunTask call has its answer: a call answers once its
//!    tasks' `TaskPlaced` is in the log and projected;
//! 2. RunTask to RUNNING with the process driver (a real `sh` per task), p50/p99.
//!
//! `cargo bench -p berth --bench tasks`

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::ContainerDefinition;
use berth::{ControlPlane, ControlPlaneConfig, RunningControlPlane};
use berth_agent::DriverChoice;
use berth_agent::simulate::{FleetConfig, run_fleet};
use berth_aws_protocol::sigv4::KeyStore;
use berth_eventlog::{EventLog, LogConfig};
use berth_events::Event;
use berth_testkit::aws::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, ecs_client};
use berth_testkit::cpu;
use futures::StreamExt;

// The allocator the service binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Simulated agents unless `BERTH_BENCH_AGENTS` says otherwise.
const AGENTS: usize = 1_000;
/// Concurrent RunTask callers unless `BERTH_BENCH_CLIENTS` says otherwise.
const CLIENTS: usize = 32;
const LATENCY_SAMPLES: usize = 300;
const TOKEN: &str = "bench-token";

/// `read_model_url`: `None` for SQLite files in `data_dir`.
async fn control_plane(
    data_dir: &std::path::Path,
    local_agent: Option<DriverChoice>,
    read_model_url: Option<String>,
) -> RunningControlPlane {
    let config = ControlPlaneConfig {
        data_dir: data_dir.to_owned(),
        nats_url: None,
        nats_server_bin: None,
        api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        read_model_url,
        rebuild: false,
        account_id: "000000000000".into(),
        body_limit: 1024 * 1024,
        agent_gateway_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        agent_token: TOKEN.into(),
        agent_heartbeat_timeout: Duration::from_secs(60),
        local_agent,
    };
    ControlPlane::start(
        config,
        KeyStore::new().with_key(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
    )
    .await
    .unwrap()
}

/// The number in the environment variable `name`, else `default`.
fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn container(script: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name("main")
        .image("busybox")
        .memory(8)
        .entry_point("sh")
        .entry_point("-c")
        .command(script)
        .build()
}

async fn placement_throughput() {
    // BERTH_BENCH_TASKS overrides the number of tasks (rounded down to a multiple of
    // clients × 10: every client makes the same number of RunTask(count 10) calls).
    let wanted = count_from_env("BERTH_BENCH_TASKS", 19_200);
    let clients = count_from_env("BERTH_BENCH_CLIENTS", CLIENTS);
    let agents = count_from_env("BERTH_BENCH_AGENTS", AGENTS);
    let calls_per_client = (wanted / clients / 10).max(1);
    let tasks = calls_per_client * clients * 10;
    // BERTH_BENCH_POSTGRES=1 puts the read models on a fresh database of the PostgreSQL
    // server at BERTH_TEST_POSTGRES_URL (scripts/start-test-postgres) instead of SQLite.
    let read_model_url = match std::env::var_os("BERTH_BENCH_POSTGRES") {
        Some(_) => Some(berth_testkit::postgres_database().await),
        None => None,
    };
    let data_dir = tempfile::tempdir().unwrap();
    let berth = control_plane(data_dir.path(), None, read_model_url).await;
    let ecs = ecs_client(&berth.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY);
    ecs.create_cluster()
        .cluster_name("fleet")
        .send()
        .await
        .unwrap();

    let mut fleet = FleetConfig::new(
        agents,
        "fleet",
        format!("ws://{}", berth.agent_gateway_addr),
        TOKEN,
    );
    fleet.zones = vec!["a".into(), "b".into(), "c".into()];
    fleet.progress_interval = Duration::from_secs(3600);
    let (stop_fleet, fleet_stopped) = tokio::sync::oneshot::channel::<()>();
    let fleet_task = tokio::spawn(run_fleet(fleet, async move {
        let _ = fleet_stopped.await;
    }));
    let started = Instant::now();
    loop {
        let described = ecs
            .describe_clusters()
            .clusters("fleet")
            .send()
            .await
            .unwrap();
        if described.clusters()[0].registered_container_instances_count() as usize >= agents {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{agents} simulated agents registered in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ecs.register_task_definition()
        .family("tiny")
        .container_definitions(container("sleep 3600"))
        .send()
        .await
        .unwrap();

    let log = EventLog::connect(&berth.nats_url, &LogConfig::default())
        .await
        .unwrap();
    let from = log.last_sequence().await.unwrap() + 1;
    // Before the clock starts, with the fleet idle.
    let reference_ms = cpu::reference_work_ms();
    // CPU per task is steadier than tasks/s on a shared machine, and says what each
    // part costs: this process (control plane, fleet and clients) and nats-server.
    let nats_pid = cpu::child_named("nats-server").unwrap_or_default();
    let (own_before, nats_before) = (cpu::seconds("self"), cpu::seconds(&nats_pid));
    let written_before = cpu::bytes_written("self");
    let machine_before = cpu::machine_seconds();
    let started = Instant::now();
    let calls: Vec<_> = (0..clients)
        .map(|_| {
            let ecs = ecs.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut placed = 0;
                for _ in 0..calls_per_client {
                    let sent = Instant::now();
                    let run = ecs
                        .run_task()
                        .cluster("fleet")
                        .task_definition("tiny")
                        .count(10)
                        .send()
                        .await
                        .unwrap();
                    latencies.push(sent.elapsed());
                    assert!(run.failures().is_empty(), "{:?}", run.failures());
                    placed += run.tasks().len();
                }
                (latencies, placed)
            })
        })
        .collect();
    // RunTask answers once its tasks are decided and projected, so when the last call
    // has its answer every TaskPlaced is in the log. The log is read only afterwards:
    // following it live would add a consumer's work to what is measured.
    let mut call_latencies = Vec::new();
    let mut placed = 0;
    for call in calls {
        let (latencies, call_placed) = call.await.unwrap();
        call_latencies.extend(latencies);
        placed += call_placed;
    }
    let all_placed = Instant::now();
    let (own_cpu, nats_cpu) = (
        cpu::seconds("self") - own_before,
        cpu::seconds(&nats_pid) - nats_before,
    );
    let machine_cpu = cpu::machine_seconds() - machine_before;
    let written = cpu::bytes_written("self").saturating_sub(written_before);
    assert_eq!(placed, tasks, "every task placed");
    let deciding = deciding_times(&log, from, tasks).await;
    let seconds = (all_placed - started).as_secs_f64();
    println!(
        "RunTask to TaskPlaced in the log: {tasks} tasks on {agents} agents in {seconds:.2} s = {:.0} tasks/s",
        tasks as f64 / seconds
    );
    println!(
        "  RunTask(count 10) call: {}; TaskRequested to TaskPlaced: {}",
        percentiles(call_latencies),
        percentiles(deciding)
    );
    println!(
        "  CPU per task: {:.0} µs in the bench process (control plane, agents, clients) + {:.0} µs in nats-server",
        own_cpu * 1e6 / tasks as f64,
        nats_cpu * 1e6 / tasks as f64
    );
    // With PostgreSQL read models, the server's processes are the difference.
    println!(
        "  CPU per task, every process of the machine: {:.0} µs",
        machine_cpu * 1e6 / tasks as f64
    );
    println!(
        "  machine speed: {reference_ms:.0} ms for the reference work (berth_testkit::cpu::reference_work_ms; lower is faster)"
    );
    // Below the machine's core count, the clients are too few to keep it busy: tasks/s
    // then measures their round trips, not the control plane's capacity.
    println!(
        "  cores busy: {:.2} of {}",
        (own_cpu + nats_cpu) / seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // The read models' writes (nats-server's store is another process's).
    println!(
        "  disk writes: {:.1} KB per task ({} MB in all) by the bench process",
        written as f64 / 1e3 / tasks as f64,
        written / 1_000_000
    );
    stop_fleet.send(()).unwrap();
    let _ = fleet_task.await;
    berth.stop().await;
}

/// How long the scheduler took per task, from TaskRequested to TaskPlaced (event times),
/// read from the log from sequence `from` until `tasks` placements were seen.
async fn deciding_times(log: &EventLog, from: u64, tasks: usize) -> Vec<Duration> {
    let mut events = log.subscribe(from).await.unwrap();
    let mut requested_at = HashMap::new();
    let mut deciding = Vec::with_capacity(tasks);
    let mut placed = 0;
    while placed < tasks {
        let Some(Ok(recorded)) = events.next().await else {
            continue;
        };
        let berth_events::Aggregate::Task { id, .. } = &recorded.aggregate else {
            continue;
        };
        match &recorded.event {
            Some(Event::TaskRequested(_)) => {
                requested_at.insert(id.clone(), recorded.meta.time.0);
            }
            Some(Event::TaskPlaced(_)) => {
                placed += 1;
                if let Some(at) = requested_at.remove(id) {
                    deciding.push(Duration::from_millis((recorded.meta.time.0 - at) as u64));
                }
            }
            _ => {}
        }
    }
    deciding
}

async fn running_latency() {
    let data_dir = tempfile::tempdir().unwrap();
    let berth = control_plane(data_dir.path(), Some(DriverChoice::Process), None).await;
    let ecs = ecs_client(&berth.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY);
    loop {
        let listed = ecs.list_container_instances().send().await;
        if listed.is_ok_and(|l| !l.container_instance_arns().is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ecs.register_task_definition()
        .family("quick")
        .container_definitions(container("sleep 5"))
        .send()
        .await
        .unwrap();

    // When each task was first reported RUNNING, and which were reported STOPPED, from the log.
    let running: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stopped: Arc<Mutex<HashSet<String>>> = Arc::default();
    let log = EventLog::connect(&berth.nats_url, &LogConfig::default())
        .await
        .unwrap();
    let mut events = log
        .subscribe(log.last_sequence().await.unwrap() + 1)
        .await
        .unwrap();
    let (seen_running, seen_stopped) = (running.clone(), stopped.clone());
    tokio::spawn(async move {
        while let Some(Ok(recorded)) = events.next().await {
            let (berth_events::Aggregate::Task { id, .. }, Some(Event::TaskStateReported(report))) =
                (&recorded.aggregate, &recorded.event)
            else {
                continue;
            };
            match report.last_status.as_str() {
                "RUNNING" => {
                    seen_running
                        .lock()
                        .unwrap()
                        .entry(id.clone())
                        .or_insert_with(Instant::now);
                }
                "STOPPED" => {
                    seen_stopped.lock().unwrap().insert(id.clone());
                }
                _ => {}
            }
        }
    });
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let sent = Instant::now();
        let run = ecs
            .run_task()
            .task_definition("quick")
            .send()
            .await
            .unwrap();
        let id = run.tasks()[0]
            .task_arn()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        loop {
            if let Some(at) = running.lock().unwrap().get(&id) {
                samples.push(*at - sent);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    println!(
        "RunTask to RUNNING (process driver): {}",
        percentiles(samples)
    );
    // The agent's tasks outlive it (a restarted agent adopts them), so they are stopped
    // here: left running, they would exit in the middle of the throughput part.
    let ids: Vec<String> = running.lock().unwrap().keys().cloned().collect();
    for id in &ids {
        ecs.stop_task().task(id).send().await.unwrap();
    }
    while stopped.lock().unwrap().len() < ids.len() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    berth.stop().await;
}

/// `n=.. p50 .. ms  p99 .. ms  max .. ms`.
fn percentiles(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no samples".to_owned();
    }
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e3
    };
    format!(
        "n={} p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        samples.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

#[tokio::main]
async fn main() {
    let _telemetry = berth_telemetry::init("bench");
    // `cargo bench -p berth --bench tasks -- latency` (or `throughput`) runs one part.
    let only = std::env::args()
        .skip(1)
        .find(|a| a == "latency" || a == "throughput");
    if only.as_deref() != Some("throughput") {
        running_latency().await;
    }
    if only.as_deref() != Some("latency") {
        placement_throughput().await;
    }
}
