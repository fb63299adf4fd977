//! The scheduler service against a real nats-server: events in, decisions out.

use std::collections::HashMap;
use std::time::Duration;

use berth_eventlog::{Append, EventLog};
use berth_events::{
    AgentConnected, AgentDisconnected, Aggregate, Attribute, ContainerInstanceRegistered, Event,
    EventMeta, InstanceResources, JsonText, Strategy, TaskRequested, TaskStateReported,
};
use berth_scheduler::{Scheduler, SchedulerOptions};
use berth_testkit::TestNats;
use futures::StreamExt;
use serde_json::json;

const CLUSTER: &str = "prod";

async fn register(log: &EventLog, id: &str, zone: &str, memory_mib: u32) {
    let aggregate = Aggregate::ContainerInstance {
        cluster: CLUSTER.into(),
        id: id.into(),
    };
    let registered = ContainerInstanceRegistered {
        instance_id: id.into(),
        ec2_instance_id: format!("host-{id}"),
        resources: InstanceResources {
            cpu_units: 4096,
            memory_mib,
            reserved_tcp_ports: vec![22],
            reserved_udp_ports: vec![],
        },
        attributes: vec![Attribute {
            name: "ecs.availability-zone".into(),
            value: Some(zone.into()),
        }],
        agent_version: "test".into(),
        driver: "process".into(),
    };
    log.append(Append::new(aggregate.clone(), registered, EventMeta::new()))
        .await
        .unwrap();
    log.append(Append::new(
        aggregate,
        AgentConnected {
            gateway_id: "test".into(),
        },
        EventMeta::new(),
    ))
    .await
    .unwrap();
}

async fn request(log: &EventLog, id: &str, memory_mib: u32, strategy: Vec<Strategy>) {
    request_with(log, id, memory_mib, strategy, EventMeta::new()).await;
}

async fn request_with(
    log: &EventLog,
    id: &str,
    memory_mib: u32,
    strategy: Vec<Strategy>,
    meta: EventMeta,
) {
    let event = TaskRequested {
        family: "web".into(),
        revision: 1,
        definition: JsonText::from_value(
            &json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "x", "memory": memory_mib}]}),
        ),
        overrides: None,
        cpu_units: 0,
        memory_mib,
        ports: vec![],
        constraints: vec![],
        strategy,
        target_instances: vec![],
        group: "family:web".into(),
        started_by: None,
        launch_type: "EC2".into(),
        tags: vec![],
        request_id: "r".into(),
    };
    log.append(Append::new(
        Aggregate::Task {
            cluster: CLUSTER.into(),
            id: id.into(),
        },
        event,
        meta,
    ))
    .await
    .unwrap();
}

async fn start(
    log: &EventLog,
    db: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let scheduler = Scheduler::build(
        log.clone(),
        &SchedulerOptions {
            read_model_url: db.into(),
            rebuild: false,
        },
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Every decision in the log so far: task id -> (instance or failure reason), and
/// how many decisions each task got.
async fn decisions(
    log: &EventLog,
    expected: usize,
) -> (
    HashMap<String, Result<String, String>>,
    HashMap<String, usize>,
) {
    let mut outcomes = HashMap::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut events = log.subscribe(1).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while outcomes.len() < expected {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let recorded = next.expect("decisions in time").unwrap().unwrap();
        let Aggregate::Task { id, .. } = &recorded.aggregate else {
            continue;
        };
        let outcome = match &recorded.event {
            Some(Event::TaskPlaced(placed)) => Ok(placed.container_instance_id.clone()),
            Some(Event::TaskPlacementFailed(failed)) => Err(failed.failures[0].reason.clone()),
            _ => continue,
        };
        *counts.entry(id.clone()).or_default() += 1;
        outcomes.insert(id.clone(), outcome);
    }
    (outcomes, counts)
}

fn spread_az() -> Vec<Strategy> {
    vec![Strategy {
        kind: "spread".into(),
        field: Some("attribute:ecs.availability-zone".into()),
    }]
}

#[tokio::test]
async fn places_within_capacity_spreads_and_reports_failures() {
    restarts_after(Stop::Graceful).await;
}

/// Killed between two writes of its snapshot, the scheduler loses nothing: the
/// restarted one replays the log after the snapshot's checkpoint.
#[tokio::test]
async fn a_killed_scheduler_resumes_from_snapshot_and_log() {
    restarts_after(Stop::Killed).await;
}

enum Stop {
    Graceful,
    Killed,
}

async fn restarts_after(how: Stop) {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scheduler.db").display());
    for (id, zone) in [("i-a", "a"), ("i-b", "b"), ("i-c", "c")] {
        register(&log, id, zone, 1000).await;
    }
    let (stop, task) = start(&log, &db).await;
    for n in 0..10 {
        request(&log, &format!("t{n:02}"), 300, spread_az()).await;
    }
    let (outcomes, counts) = decisions(&log, 10).await;
    let mut per_instance: HashMap<String, usize> = HashMap::new();
    for instance in outcomes.values().flatten() {
        *per_instance.entry(instance.clone()).or_default() += 1;
    }
    // 1000 MiB each fits three 300 MiB tasks: nine placed, evenly, one refused.
    assert_eq!(
        per_instance
            .values()
            .copied()
            .collect::<Vec<_>>()
            .iter()
            .sum::<usize>(),
        9
    );
    assert!(per_instance.values().all(|n| *n == 3), "{per_instance:?}");
    let refused: Vec<_> = outcomes.values().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(refused, [&"RESOURCE:MEMORY".to_string()]);
    assert!(
        counts.values().all(|n| *n == 1),
        "a task was decided twice: {counts:?}"
    );
    match how {
        Stop::Graceful => {
            stop.send(()).unwrap();
            task.await.unwrap();
        }
        // No chance to write what it folded since its last snapshot (written at
        // most once a second; these events are younger).
        Stop::Killed => {
            task.abort();
            let _ = task.await;
            drop(stop);
        }
    }

    // While stopped: one task ends and a new one comes. The restarted scheduler
    // (state from its read model) frees the slot and fills it, deciding nothing twice.
    let placed = outcomes
        .iter()
        .find(|(_, o)| o.is_ok())
        .map(|(id, _)| id.clone())
        .unwrap();
    let stopped = TaskStateReported {
        last_status: "STOPPED".into(),
        stop_code: Some("EssentialContainerExited".into()),
        ..TaskStateReported::default()
    };
    log.append(Append::new(
        Aggregate::Task {
            cluster: CLUSTER.into(),
            id: placed,
        },
        stopped,
        EventMeta::new(),
    ))
    .await
    .unwrap();
    request(&log, "t10", 300, spread_az()).await;
    let (stop, task) = start(&log, &db).await;
    let (outcomes, counts) = decisions(&log, 11).await;
    assert!(outcomes["t10"].is_ok(), "{:?}", outcomes["t10"]);
    assert!(
        counts.values().all(|n| *n == 1),
        "a task was decided twice: {counts:?}"
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn disconnected_agents_take_no_tasks() {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scheduler.db").display());
    register(&log, "i-a", "a", 1000).await;
    log.append(Append::new(
        Aggregate::ContainerInstance {
            cluster: CLUSTER.into(),
            id: "i-a".into(),
        },
        AgentDisconnected {
            reason: "heartbeat timeout".into(),
        },
        EventMeta::new(),
    ))
    .await
    .unwrap();
    let (stop, task) = start(&log, &db).await;
    request(&log, "t1", 100, vec![]).await;
    let (outcomes, _) = decisions(&log, 1).await;
    assert_eq!(outcomes["t1"], Err("AGENT".to_string()));
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// A decision is caused by its task's request and carries the request's correlation and
/// trace, so a consumer of the log can follow a task from RunTask to its placement.
#[tokio::test]
async fn a_decision_carries_the_envelope_of_its_request() {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scheduler.db").display());
    register(&log, "i-a", "a", 1000).await;
    let user_request = uuid::Uuid::now_v7();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let requested = EventMeta::new()
        .with_correlation(user_request)
        .with_trace_context(vec![("traceparent".into(), traceparent.into())]);
    request_with(&log, "t1", 300, vec![], requested.clone()).await;
    let (stop, task) = start(&log, &db).await;
    decisions(&log, 1).await;

    let mut events = log.subscribe(1).await.unwrap();
    let placed = loop {
        let recorded = events.next().await.unwrap().unwrap();
        if matches!(recorded.event, Some(Event::TaskPlaced(_))) {
            break recorded;
        }
    };
    assert_eq!(placed.meta.causation_id, Some(requested.id));
    assert_eq!(placed.meta.correlation_id, Some(user_request));
    assert_eq!(
        placed.meta.trace_context,
        [("traceparent".to_string(), traceparent.to_string())]
    );
    assert_ne!(placed.meta.id, requested.id);
    stop.send(()).unwrap();
    task.await.unwrap();
}
