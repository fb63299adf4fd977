//! Projection rebuild throughput: a log of realistic api-gateway events replayed from
//! sequence 1 into the SQLite and the PostgreSQL read model, printed as events/s.
//!
//! `cargo bench -p berth-api-gateway --bench rebuild` (PostgreSQL needs
//! `BERTH_TEST_POSTGRES_URL`; `scripts/start-test-postgres` prints one).

use std::time::{Duration, Instant};

use berth_api_gateway::read_model::GatewayProjection;
use berth_eventlog::{Append, EventLog};
use berth_events::{
    Aggregate, ClusterCreated, ClusterUpdated, EventMeta, JsonText, ResourceTagged, Tag,
    TaskDefinitionDeregistered, TaskDefinitionRegistered,
};
use berth_projection::{ProjectionRunner, ReadModel, RunnerOptions};
use berth_testkit::{TestNats, cpu};
use serde_json::json;

// The allocator the service binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FAMILIES: usize = 1_000;
const REVISIONS: usize = 90;

/// 100,000+ events: clusters with updates and tags, and 90 revisions of 1,000 task
/// definition families, a tenth of them deregistered.
async fn fill(log: &EventLog) -> u64 {
    let mut appends = Vec::new();
    for c in 0..1_000 {
        let name = format!("cluster-{c}");
        appends.push(Append::new(
            Aggregate::Cluster(name.clone()),
            ClusterCreated::named(name.clone()),
            EventMeta::new(),
        ));
        appends.push(Append::new(
            Aggregate::Cluster(name.clone()),
            ClusterUpdated::default(),
            EventMeta::new(),
        ));
        appends.push(Append::new(
            Aggregate::Cluster(name.clone()),
            ResourceTagged {
                resource_arn: format!("arn:aws:ecs:us-east-1:000000000000:cluster/{name}"),
                tags: vec![Tag {
                    key: "team".into(),
                    value: "web".into(),
                }],
            },
            EventMeta::new(),
        ));
    }
    for revision in 1..=REVISIONS as u32 {
        for f in 0..FAMILIES {
            let family = format!("family-{f}");
            let definition = json!({
                "family": family,
                "containerDefinitions": [{"name": "app", "image": format!("registry/app:{revision}"),
                    "memory": 256, "cpu": 128, "essential": true,
                    "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
                    "environment": [{"name": "MODE", "value": "production"}]}],
                "compatibilities": ["EXTERNAL", "EC2"],
            });
            appends.push(Append::new(
                Aggregate::TaskDefinitionFamily(family.clone()),
                TaskDefinitionRegistered {
                    family,
                    revision,
                    definition: JsonText::from_value(&definition),
                    tags: vec![],
                    registered_by: None,
                },
                EventMeta::new(),
            ));
            if revision % 10 == 0 {
                appends.push(Append::new(
                    Aggregate::TaskDefinitionFamily(format!("family-{f}")),
                    TaskDefinitionDeregistered {
                        revision: revision - 1,
                    },
                    EventMeta::new(),
                ));
            }
        }
    }
    let mut last = 0;
    for chunk in appends.chunks(1000) {
        last = log.append_all(chunk.to_vec()).await.unwrap().sequence;
    }
    last
}

/// Runs `phase` and prints the CPU it cost per event, in this process and in
/// nats-server: on two cores, CPU per event is what bounds events/s.
async fn measured<F: std::future::Future<Output = ()>>(nats_pid: u32, events: u64, phase: F) {
    let nats = nats_pid.to_string();
    let (own_before, nats_before) = (cpu::seconds("self"), cpu::seconds(&nats));
    phase.await;
    let own = cpu::seconds("self") - own_before;
    let nats = cpu::seconds(&nats) - nats_before;
    println!(
        "    CPU per event: {:.1} µs in Berth + {:.1} µs in nats-server",
        own * 1e6 / events as f64,
        nats * 1e6 / events as f64
    );
}

async fn replay(log: &EventLog, label: &str, url: &str, events: u64) {
    let read_model = ReadModel::open(url).await.unwrap();
    let runner = ProjectionRunner::new(
        log.clone(),
        read_model,
        GatewayProjection::default(),
        RunnerOptions {
            rebuild: true,
            ..RunnerOptions::default()
        },
    )
    .await
    .unwrap();
    let handle = runner.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    handle
        .wait_for(events, Duration::from_secs(600))
        .await
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rebuild into {label:<10} {events:>7} events in {seconds:>6.2} s = {:>9.0} events/s",
        events as f64 / seconds
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// The ceiling: reading and decoding the log with no read model at all.
async fn read_only(log: &EventLog, events: u64) {
    use futures::StreamExt;
    let started = Instant::now();
    let mut stream = log.subscribe(1).await.unwrap();
    while let Some(event) = stream.next().await {
        if event.unwrap().sequence >= events {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "read the log only      {events:>7} events in {seconds:>6.2} s = {:>9.0} events/s",
        events as f64 / seconds
    );
}

#[tokio::main]
async fn main() {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    let events = fill(&log).await;
    let pid = nats.server.pid();
    measured(pid, events, read_only(&log, events)).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("api-gateway.db").display());
    measured(pid, events, replay(&log, "SQLite", &sqlite, events)).await;
    measured(pid, events, replay(&log, "SQLite", &sqlite, events)).await;
    match std::env::var(berth_testkit::POSTGRES_URL_VAR) {
        Ok(_) => {
            let url = berth_testkit::postgres_database().await;
            measured(pid, events, replay(&log, "PostgreSQL", &url, events)).await
        }
        Err(_) => println!(
            "PostgreSQL: skipped (set {})",
            berth_testkit::POSTGRES_URL_VAR
        ),
    }
}
