//! The agent-gateway end to end: real nats-server, real read model (SQLite, and PostgreSQL for
//! the delivery scenario), real WebSocket, a fake agent speaking the frames.

mod common;

use std::time::Duration;

use berth_agent_protocol::{Ack, PortMapping};
use berth_agent_protocol::{
    AgentFrame, ContainerStateChange, DesiredStatus, GatewayFrame, HealthStatus, NetworkBinding,
    StateReport, TaskSnapshot, TaskStateAck, TaskStateChange, TaskStatus, TransportProtocol,
};
use berth_events::{ContainerInstanceDeregistered, Event, TaskStopRequested};
use common::*;

fn snapshot(cluster: &str, task_id: &str, status: TaskStatus) -> TaskSnapshot {
    TaskSnapshot {
        task_arn: task_arn(cluster, task_id),
        status,
        reason: None,
        stop_code: None,
        containers: Vec::new(),
        pulled_at: None,
        started_at: None,
        stopped_at: None,
    }
}

fn state_report(running: Vec<TaskSnapshot>) -> AgentFrame {
    AgentFrame::StateReport(StateReport { running })
}

fn ack(message_id: &str) -> AgentFrame {
    AgentFrame::Ack(Ack {
        message_id: message_id.to_owned(),
    })
}

fn running_change(cluster: &str, task_id: &str, seq: u64) -> TaskStateChange {
    TaskStateChange {
        task: TaskSnapshot {
            task_arn: task_arn(cluster, task_id),
            status: TaskStatus::Running,
            reason: None,
            stop_code: None,
            containers: vec![ContainerStateChange {
                name: "app".into(),
                runtime_id: Some("4242".into()),
                status: TaskStatus::Running,
                exit_code: None,
                reason: None,
                network_bindings: vec![NetworkBinding {
                    bind_ip: "0.0.0.0".into(),
                    container_port: 80,
                    host_port: 32768,
                    protocol: TransportProtocol::Tcp,
                }],
                health_status: HealthStatus::Unknown,
            }],
            pulled_at: None,
            started_at: Some(berth_agent_protocol::EpochMillis(1_700_000_000_000)),
            stopped_at: None,
        },
        seq,
    }
}

/// Waits until the log shows `AgentDisconnected` number `nth` (1-based) for `instance_id`.
async fn wait_disconnects(harness: &Harness, instance_id: &str, count: usize) -> Vec<String> {
    harness
        .wait_for("AgentDisconnected", |events| {
            let reasons: Vec<String> = events
                .iter()
                .filter(|e| matches!(&e.aggregate, berth_events::Aggregate::ContainerInstance { id, .. } if id == instance_id))
                .filter_map(|e| match &e.event {
                    Some(Event::AgentDisconnected(d)) => Some(d.reason.clone()),
                    _ => None,
                })
                .collect();
            (reasons.len() >= count).then_some(reasons)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_or_an_unknown_cluster_is_refused_and_nothing_is_appended() {
    let harness = Harness::sqlite().await;
    let gateway = harness.start().await;

    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent
        .send(register_frame("default", "not-the-token", None))
        .await;
    match agent.recv().await {
        Some(GatewayFrame::RegistrationRefused(refused)) => {
            assert!(refused.reason.contains("token"), "{}", refused.reason)
        }
        other => panic!("expected RegistrationRefused, got {other:?}"),
    }
    assert_eq!(
        agent.recv().await,
        None,
        "the gateway closes after refusing"
    );

    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent.send(register_frame("prod", TOKEN, None)).await;
    match agent.recv().await {
        Some(GatewayFrame::RegistrationRefused(refused)) => {
            assert!(refused.reason.contains("not found"), "{}", refused.reason)
        }
        other => panic!("expected RegistrationRefused, got {other:?}"),
    }
    assert_eq!(agent.recv().await, None);

    assert_eq!(
        harness.log.last_sequence().await.unwrap(),
        0,
        "nothing appended"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_appends_the_events_and_a_restarted_agent_keeps_its_id() {
    let harness = Harness::sqlite().await;
    let gateway = harness.start().await;

    let mut agent = FakeAgent::connect(&gateway.url()).await;
    let registered = agent.register("default", None).await;
    let id = registered.instance_id.clone();
    assert_eq!(
        registered.instance_arn,
        format!("arn:aws:ecs:us-east-1:{ACCOUNT}:container-instance/default/{id}")
    );
    uuid::Uuid::parse_str(&id).expect("the id is a UUID");

    let events = harness
        .wait_for("AgentConnected", |events| {
            events
                .iter()
                .any(|e| e.event_type == "AgentConnected")
                .then(|| events.to_vec())
        })
        .await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ClusterCreated",
            "ContainerInstanceRegistered",
            "AgentConnected"
        ]
    );
    let Some(Event::ContainerInstanceRegistered(first)) = &events[1].event else {
        panic!("not a registration: {:?}", events[1]);
    };
    assert_eq!(first.instance_id, id);
    assert_eq!(first.ec2_instance_id, "host-a");
    assert_eq!(first.resources.cpu_units, 2048);
    assert_eq!(first.resources.memory_mib, 3900);
    assert_eq!(first.driver, "process");
    assert!(first.attributes.iter().any(|a| a.name == "ecs.os-type"));
    assert!(
        !first
            .attributes
            .iter()
            .any(|a| a.name == "berth.ec2-instance-id"),
        "the host identity is taken out of the attributes"
    );
    assert_eq!(events[1].aggregate, instance_aggregate("default", &id));
    let Some(Event::AgentConnected(connected)) = &events[2].event else {
        panic!("not a connect");
    };
    assert_eq!(connected.gateway_id, "gw-test");

    // The agent restarts with the id from its data dir: same instance, registered again.
    agent.close().await;
    wait_disconnects(&harness, &id, 1).await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    let again = agent.register("default", Some(&id)).await;
    assert_eq!(again.instance_id, id);
    let registrations = harness
        .wait_for("second registration and connect", |events| {
            let on_instance: Vec<&str> = events
                .iter()
                .filter(|e| e.aggregate == instance_aggregate("default", &id))
                .map(|e| e.event_type.as_str())
                .collect();
            (on_instance.len() == 5).then(|| on_instance.join(","))
        })
        .await;
    assert_eq!(
        registrations,
        "ContainerInstanceRegistered,AgentConnected,AgentDisconnected,\
         ContainerInstanceRegistered,AgentConnected"
    );

    // Another host gets another instance; `default` is created only once.
    let mut other = FakeAgent::connect(&gateway.url()).await;
    let second = other.register("default", None).await;
    assert_ne!(second.instance_id, id);
    let events = harness.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "ClusterCreated")
            .count(),
        1
    );

    // A deregistered instance is refused, as ECS refuses it (InactiveInstanceException).
    agent.close().await;
    wait_disconnects(&harness, &id, 2).await;
    harness
        .append(
            instance_aggregate("default", &id),
            ContainerInstanceDeregistered { force: false },
        )
        .await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent
        .send(register_frame("default", TOKEN, Some(&id)))
        .await;
    match agent.recv().await {
        Some(GatewayFrame::RegistrationRefused(refused)) => {
            assert!(refused.reason.contains("INACTIVE"), "{}", refused.reason)
        }
        other => panic!("expected RegistrationRefused, got {other:?}"),
    }
    other.close().await;
    gateway.stop().await;
}

/// Placement delivered, acknowledged, not resent on reconnect; an unacknowledged one resent
/// after a gateway restart; reports recorded once; a stop delivered.
async fn delivery_scenario(harness: Harness) {
    let gateway = harness.start().await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    let id = agent.register("default", None).await.instance_id;
    agent.send(state_report(Vec::new())).await;

    // A placement appended to the log reaches the agent.
    let first = harness.place_task("default", &id).await;
    let payload = agent.recv_payload().await;
    assert_eq!(payload.tasks.len(), 1);
    let task = &payload.tasks[0];
    assert_eq!(task.arn, task_arn("default", &first));
    assert_eq!((task.family.as_str(), task.revision), ("web", 1));
    assert_eq!(task.desired_status, DesiredStatus::Running);
    let app = &task.containers[0];
    assert_eq!(app.image, "busybox:1.36");
    assert_eq!(app.command, Some(vec!["sleep".to_owned(), "5".to_owned()]));
    assert_eq!(app.environment.get("A").map(String::as_str), Some("1"));
    assert_eq!(app.environment.get("B").map(String::as_str), Some("2"));
    assert_eq!(app.memory, Some(64));
    assert_eq!(
        app.port_mappings,
        [PortMapping {
            container_port: 80,
            host_port: 32768,
            protocol: TransportProtocol::Tcp
        }]
    );
    agent.send(ack(&payload.message_id)).await;

    // The ack is stored: a reconnect does not resend.
    agent.close().await;
    wait_disconnects(&harness, &id, 1).await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent.register("default", Some(&id)).await;
    agent
        .send(state_report(vec![snapshot(
            "default",
            &first,
            TaskStatus::Running,
        )]))
        .await;
    agent.expect_silence(Duration::from_millis(1500)).await;

    // The agent reports; the report is recorded once even when sent again.
    agent
        .send(AgentFrame::TaskStateChange(running_change(
            "default", &first, 1,
        )))
        .await;
    assert_eq!(
        agent.recv().await,
        Some(GatewayFrame::TaskStateAck(TaskStateAck { seq: 1 }))
    );
    agent
        .send(AgentFrame::TaskStateChange(running_change(
            "default", &first, 1,
        )))
        .await;
    assert_eq!(
        agent.recv().await,
        Some(GatewayFrame::TaskStateAck(TaskStateAck { seq: 1 }))
    );
    let reports: Vec<_> = harness
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "TaskStateReported")
        .collect();
    assert_eq!(reports.len(), 1, "a resent report is deduplicated");
    assert_eq!(reports[0].aggregate, task_aggregate("default", &first));
    let Some(Event::TaskStateReported(reported)) = &reports[0].event else {
        panic!("not a report");
    };
    assert_eq!(reported.last_status, "RUNNING");
    assert_eq!(reported.started_at, Some(1_700_000_000_000));
    assert_eq!(reported.containers[0].runtime_id.as_deref(), Some("4242"));
    assert_eq!(reported.containers[0].network_bindings[0].host_port, 32768);

    // A second placement, never acknowledged, survives a gateway restart.
    let second = harness.place_task("default", &id).await;
    let payload = agent.recv_payload().await;
    assert_eq!(payload.tasks[0].arn, task_arn("default", &second));
    gateway.stop().await;
    assert_eq!(
        agent.recv().await.map(|f| f.type_name()),
        Some("CloseMessage")
    );
    assert_eq!(agent.recv().await, None);

    let gateway = harness.start().await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent.register("default", Some(&id)).await;
    let payload = agent.recv_payload().await;
    let arns: Vec<&str> = payload.tasks.iter().map(|t| t.arn.as_str()).collect();
    assert_eq!(
        arns,
        [task_arn("default", &second)],
        "only the unacknowledged task"
    );
    // Read back from the read model, the payload is whole: definition, overrides, ports.
    let app = &payload.tasks[0].containers[0];
    assert_eq!(app.image, "busybox:1.36");
    assert_eq!(app.environment.get("B").map(String::as_str), Some("2"));
    assert_eq!(app.port_mappings[0].host_port, 32768);
    agent.send(ack(&payload.message_id)).await;
    agent
        .send(state_report(vec![
            snapshot("default", &first, TaskStatus::Running),
            snapshot("default", &second, TaskStatus::Pending),
        ]))
        .await;
    agent.expect_silence(Duration::from_millis(1000)).await;

    // A stop request reaches the agent.
    harness
        .append(
            task_aggregate("default", &first),
            TaskStopRequested {
                stop_code: "UserInitiated".into(),
                reason: Some("done with it".into()),
            },
        )
        .await;
    let payload = agent.recv_payload().await;
    assert_eq!(payload.tasks.len(), 1);
    assert_eq!(payload.tasks[0].arn, task_arn("default", &first));
    assert_eq!(payload.tasks[0].desired_status, DesiredStatus::Stopped);
    assert_eq!(
        payload.tasks[0].stop_reason.as_deref(),
        Some("done with it")
    );
    agent.send(ack(&payload.message_id)).await;
    agent.close().await;
    wait_disconnects(&harness, &id, 3).await;

    // Acknowledged stop: not sent again.
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent.register("default", Some(&id)).await;
    agent.expect_silence(Duration::from_millis(1000)).await;
    agent.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placements_are_delivered_exactly_once_across_reconnects_and_restarts() {
    delivery_scenario(Harness::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placements_are_delivered_exactly_once_on_postgres() {
    delivery_scenario(Harness::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_timeout_records_agent_disconnected() {
    let harness = Harness::sqlite().await;
    let mut options = harness.options();
    options.heartbeat_timeout = Duration::from_secs(1);
    let gateway = harness.start_with(options).await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent.answer_heartbeats(false);
    let id = agent.register("default", None).await.instance_id;

    match agent.recv().await {
        Some(GatewayFrame::CloseMessage(close)) => {
            assert!(close.reason.contains("heartbeat"), "{}", close.reason)
        }
        other => panic!("expected CloseMessage, got {other:?}"),
    }
    assert!(
        agent.heartbeats_seen() >= 2,
        "heartbeats every third of the timeout, saw {}",
        agent.heartbeats_seen()
    );
    let reasons = wait_disconnects(&harness, &id, 1).await;
    assert!(reasons[0].contains("heartbeat timeout"), "{reasons:?}");

    // An agent that answers stays connected past the timeout.
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent.register("default", Some(&id)).await;
    agent.expect_silence(Duration::from_millis(2500)).await;
    assert_eq!(wait_disconnects(&harness, &id, 1).await.len(), 1);
    agent.close().await;
    gateway.stop().await;
}

/// A gateway with one registered agent that has been handed a task and acknowledged it:
/// the gateway, the agent, its instance id and the task id.
async fn agent_with_a_task(harness: &Harness) -> (RunningGateway, FakeAgent, String, String) {
    let gateway = harness.start().await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    let id = agent.register("default", None).await.instance_id;
    agent.send(state_report(Vec::new())).await;
    let task = harness.place_task("default", &id).await;
    let payload = agent.recv_payload().await;
    agent.send(ack(&payload.message_id)).await;
    (gateway, agent, id, task)
}

/// A task's `ag_tasks.spec` and its definition from `ag_task_definitions`, if there.
async fn stored_spec(db: &sqlx::AnyPool, task: &str) -> (String, Option<String>) {
    sqlx::query_as(
        "SELECT t.spec, td.definition FROM ag_tasks t LEFT JOIN ag_task_definitions td \
         ON td.family = t.family AND td.revision = t.revision WHERE t.id = $1",
    )
    .bind(task)
    .fetch_one(db)
    .await
    .unwrap()
}

/// A task row written before `ag_task_definitions` existed holds its definition inline: it
/// still loads, and writing it again puts the definition in that table, so it is never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_row_with_its_definition_inline_keeps_it_when_written_again() {
    let harness = Harness::sqlite().await;
    let (gateway, agent, id, task) = agent_with_a_task(&harness).await;
    gateway.stop().await;
    agent.close().await;

    // Make the row what an older gateway wrote: the definition inside the spec, no table row.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&harness.read_model_url)
        .await
        .unwrap();
    let (spec, definition) = stored_spec(&db, &task).await;
    let definition = definition.expect("the definition in its table");
    let mut spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    spec["definition"] = serde_json::from_str(&definition).unwrap();
    sqlx::query("UPDATE ag_tasks SET spec = $1 WHERE id = $2")
        .bind(spec.to_string())
        .bind(&task)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM ag_task_definitions")
        .execute(&db)
        .await
        .unwrap();

    // The agent reports the task: the gateway writes its row again.
    let gateway = harness.start().await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent.register("default", Some(&id)).await;
    agent
        .send(AgentFrame::TaskStateChange(running_change(
            "default", &task, 1,
        )))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status: Option<String> =
            sqlx::query_scalar("SELECT last_status FROM ag_tasks WHERE id = $1")
                .bind(&task)
                .fetch_one(&db)
                .await
                .unwrap();
        if status.as_deref() == Some("RUNNING") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "report not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (spec, stored) = stored_spec(&db, &task).await;
    assert!(!spec.contains("containerDefinitions"), "{spec}");
    assert_eq!(
        stored.map(|text| serde_json::from_str::<serde_json::Value>(&text).unwrap()),
        Some(serde_json::from_str(&definition).unwrap())
    );
    agent.close().await;
    gateway.stop().await;
}

/// Acks are cumulative: reports that arrive together are acknowledged with one frame, which
/// travels with the next payload when there is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_sent_together_are_acknowledged_together() {
    const REPORTS: u64 = 10;
    let harness = Harness::sqlite().await;
    let (gateway, mut agent, id, task) = agent_with_a_task(&harness).await;

    for seq in 1..=REPORTS {
        agent
            .send(AgentFrame::TaskStateChange(running_change(
                "default", &task, seq,
            )))
            .await;
    }
    let mut acks = Vec::new();
    while acks.last() != Some(&REPORTS) {
        match agent.recv().await {
            Some(GatewayFrame::TaskStateAck(TaskStateAck { seq })) => acks.push(seq),
            other => panic!("expected TaskStateAck, got {other:?}"),
        }
    }
    // One ack, or a few if recording the reports outlasted the ack delay; never one each.
    assert!(acks.len() < REPORTS as usize, "acks: {acks:?}");
    assert!(acks.is_sorted(), "acks: {acks:?}");

    // An ack owed is not lost when a payload goes out (it travels with it, or after it).
    agent
        .send(AgentFrame::TaskStateChange(running_change(
            "default",
            &task,
            REPORTS + 1,
        )))
        .await;
    let next = harness.place_task("default", &id).await;
    let (mut acked, mut payload) = (None, None);
    while acked.is_none() || payload.is_none() {
        match agent.recv().await {
            Some(GatewayFrame::TaskStateAck(ack)) => acked = Some(ack.seq),
            Some(GatewayFrame::PayloadMessage(message)) => payload = Some(message),
            other => panic!("expected an ack and a payload, got {other:?}"),
        }
    }
    assert_eq!(acked, Some(REPORTS + 1));
    let payload = payload.unwrap();
    assert_eq!(payload.tasks[0].arn, task_arn("default", &next));
    agent.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_left_unacknowledged_is_sent_again_in_the_same_session() {
    let harness = Harness::sqlite().await;
    let mut options = harness.options();
    options.heartbeat_timeout = Duration::from_secs(1);
    let gateway = harness.start_with(options).await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    let id = agent.register("default", None).await.instance_id;
    let task = harness.place_task("default", &id).await;

    // The agent's runtime cannot take it (no Ack), but the agent stays connected.
    let first = agent.recv_payload().await;
    let again = agent.recv_payload().await;
    assert_ne!(again.message_id, first.message_id);
    assert_eq!(again.tasks[0].arn, task_arn("default", &task));
    agent.send(ack(&again.message_id)).await;
    agent.expect_silence(Duration::from_millis(2500)).await;
    agent.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_is_reconciled_with_the_state_report() {
    let harness = Harness::sqlite().await;
    let gateway = harness.start().await;
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    let id = agent.register("default", None).await.instance_id;
    let placed = harness.place_task("default", &id).await;
    let payload = agent.recv_payload().await;
    agent.send(ack(&payload.message_id)).await;
    agent.close().await;
    wait_disconnects(&harness, &id, 1).await;

    // The agent lost the acknowledged task and runs one nobody knows.
    let stranger = uuid::Uuid::new_v4().simple().to_string();
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent.register("default", Some(&id)).await;
    agent
        .send(state_report(vec![snapshot(
            "default",
            &stranger,
            TaskStatus::Running,
        )]))
        .await;
    let payload = agent.recv_payload().await;
    let mut tasks: Vec<(String, String)> = payload
        .tasks
        .iter()
        .map(|t| (t.arn.clone(), format!("{:?}", t.desired_status)))
        .collect();
    tasks.sort();
    let mut expected = vec![
        (task_arn("default", &stranger), "Stopped".to_owned()),
        (task_arn("default", &placed), "Running".to_owned()),
    ];
    expected.sort();
    assert_eq!(tasks, expected);
    agent.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_replaces_the_old_one_without_a_disconnect() {
    let harness = Harness::sqlite().await;
    let gateway = harness.start().await;
    let mut old = FakeAgent::connect(&gateway.url()).await;
    let id = old.register("default", None).await.instance_id;
    let mut new = FakeAgent::connect(&gateway.url()).await;
    new.register("default", Some(&id)).await;
    match old.recv().await {
        Some(GatewayFrame::CloseMessage(close)) => {
            assert!(close.reason.contains("replaced"), "{}", close.reason)
        }
        other => panic!("expected CloseMessage, got {other:?}"),
    }
    assert_eq!(old.recv().await, None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_instance: Vec<String> = harness
        .events()
        .await
        .into_iter()
        .filter(|e| e.aggregate == instance_aggregate("default", &id))
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(
        on_instance.last().map(String::as_str),
        Some("AgentConnected"),
        "{on_instance:?}"
    );
    assert!(
        !on_instance.iter().any(|t| t == "AgentDisconnected"),
        "{on_instance:?}"
    );
    new.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_close_the_connection_without_harm() {
    let harness = Harness::sqlite().await;
    let gateway = harness.start().await;

    for garbage in [
        "{not json",
        r#"{"type":"Nope","message":{}}"#,
        r#"{"type":"RegisterInstance","message":{"cluster":7}}"#,
        r#"{"type":"Ack","message":{"messageId":"x"}}"#,
    ] {
        let mut agent = FakeAgent::connect(&gateway.url()).await;
        agent.send_text(garbage).await;
        assert_eq!(
            agent.recv().await.map(|f| f.type_name()),
            Some("CloseMessage"),
            "{garbage}"
        );
        assert_eq!(agent.recv().await, None);
    }
    // Ids that would escape a NATS subject are refused.
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    agent
        .send(register_frame("default", TOKEN, Some("a.b.>")))
        .await;
    assert_eq!(
        agent.recv().await.map(|f| f.type_name()),
        Some("RegistrationRefused")
    );
    assert_eq!(harness.log.last_sequence().await.unwrap(), 0);

    // After registration: garbage ends the session, which is recorded.
    let mut agent = FakeAgent::connect(&gateway.url()).await;
    let id = agent.register("default", None).await.instance_id;
    agent
        .send(AgentFrame::TaskStateChange(running_change(
            "default",
            "not.a.task",
            1,
        )))
        .await;
    assert_eq!(
        agent.recv().await,
        Some(GatewayFrame::TaskStateAck(TaskStateAck { seq: 1 })),
        "a report on no task of this instance is acknowledged but not recorded"
    );
    agent.send_text("\u{0}\u{1}garbage").await;
    match agent.recv().await {
        Some(GatewayFrame::CloseMessage(close)) => {
            assert!(close.reason.contains("invalid frame"), "{}", close.reason)
        }
        other => panic!("expected CloseMessage, got {other:?}"),
    }
    wait_disconnects(&harness, &id, 1).await;
    assert!(
        !harness
            .events()
            .await
            .iter()
            .any(|e| e.event_type == "TaskStateReported")
    );
    gateway.stop().await;
}
