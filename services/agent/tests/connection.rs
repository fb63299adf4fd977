//! The agent's session loop against a gateway played by the test over a real WebSocket, with the
//! process driver running real `sh` tasks.

mod common;
mod fake_gateway;

use std::path::Path;
use std::time::Duration;

use berth_agent::resources::{
    AVAILABILITY_ZONE_ATTRIBUTE, CPU_ARCHITECTURE_ATTRIBUTE, EC2_INSTANCE_ID_ATTRIBUTE,
    INSTANCE_TYPE_ATTRIBUTE, OS_TYPE_ATTRIBUTE,
};
use berth_agent::{AgentConfig, AgentError, DriverChoice, Timing, run_agent};
use berth_agent_protocol::{
    Ack, AgentFrame, DesiredStatus, DriverKind, GatewayFrame, HeartbeatAck, HeartbeatMessage,
    PayloadMessage, RegistrationRefused, TaskPayload, TaskStateAck, TaskStateChange, TaskStatus,
    TaskStopCode,
};
use common::{shell_container, task};
use fake_gateway::{FakeGateway, FakeSession, Next, WAIT};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Short timers so reconnects and idle detection happen within a test's patience.
fn quick_timing() -> Timing {
    Timing {
        idle_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        send_timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        healthy_after: Duration::from_secs(30),
    }
}

fn config(gateway: &FakeGateway, dir: &Path) -> AgentConfig {
    let mut config = AgentConfig::new(
        "test",
        gateway.url.clone(),
        "s3cret",
        DriverChoice::Process,
        Some(dir.to_path_buf()),
    );
    config.zone = Some("az-1".to_string());
    config
        .attributes
        .insert("stack".to_string(), "blue".to_string());
    config.timing = quick_timing();
    config
}

struct RunningAgent {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), AgentError>>,
}

fn spawn_agent(config: AgentConfig) -> RunningAgent {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_agent(config, async move {
        let _ = stopped.await;
    }));
    RunningAgent { stop, task }
}

impl RunningAgent {
    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the agent did not stop")
            .expect("the agent panicked");
        result.expect("the agent stopped with an error");
    }
}

/// A task that appends a line to `marker` each time it starts, then exits with `code`.
fn marked_task(label: &str, marker: &Path, code: i32) -> TaskPayload {
    let mut spec = shell_container(
        "app",
        "busybox:recorded-only",
        &["sh"],
        &format!("echo started >> \"$MARKER\"; sleep 0.2; exit {code}"),
    );
    spec.environment
        .insert("MARKER".to_string(), marker.to_string_lossy().into_owned());
    task(label, vec![spec])
}

fn payload(message_id: &str, tasks: Vec<TaskPayload>) -> GatewayFrame {
    GatewayFrame::PayloadMessage(PayloadMessage {
        message_id: message_id.to_string(),
        tasks,
    })
}

/// Reads the reports of `arn` until it is STOPPED, checking nothing else comes in between.
async fn reports_until_stopped(session: &mut FakeSession, arn: &str) -> Vec<TaskStateChange> {
    let mut reports = Vec::new();
    loop {
        match session.recv().await {
            AgentFrame::TaskStateChange(change) => {
                assert_eq!(change.task.task_arn, arn);
                let stopped = change.task.status == TaskStatus::Stopped;
                reports.push(change);
                if stopped {
                    return reports;
                }
            }
            other => panic!("expected task reports, got {other:?}"),
        }
    }
}

/// Sends a heartbeat and expects its ack next: proves every frame sent before it was handled.
async fn heartbeat(session: &mut FakeSession, id: &str) {
    session
        .send(GatewayFrame::HeartbeatMessage(HeartbeatMessage {
            message_id: id.to_string(),
        }))
        .await;
    assert_eq!(
        session.recv().await,
        AgentFrame::HeartbeatAck(HeartbeatAck {
            message_id: id.to_string()
        })
    );
}

fn seqs(reports: &[TaskStateChange]) -> Vec<u64> {
    reports.iter().map(|r| r.seq).collect()
}

#[tokio::test]
async fn registration_persists_the_instance_id_and_a_restart_reuses_it() {
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");

    let agent = spawn_agent(config(&gateway, dir.path()));
    let mut session = gateway.next_session().await;
    assert_eq!(session.path, "/ws");
    let register = session.register("inst-1").await;
    assert_eq!(register.instance_id, None, "first start has no id");
    assert_eq!(register.cluster, "test");
    assert_eq!(register.token, "s3cret");
    assert_eq!(register.driver, DriverKind::Process);
    assert_eq!(register.agent_version, env!("CARGO_PKG_VERSION"));
    let cores = std::thread::available_parallelism().expect("cores").get();
    assert_eq!(register.resources.cpu_units as usize, cores * 1024);
    assert!(register.resources.memory_mib > 0);
    assert_eq!(
        register.resources.reserved_tcp_ports,
        [22, 2375, 2376, 51678, 51679]
    );
    let attr = |name: &str| register.attributes.get(name).map(String::as_str);
    assert_eq!(attr(OS_TYPE_ATTRIBUTE), Some("linux"));
    assert!(matches!(
        attr(CPU_ARCHITECTURE_ATTRIBUTE),
        Some("x86_64" | "arm64")
    ));
    assert_eq!(attr(AVAILABILITY_ZONE_ATTRIBUTE), Some("az-1"));
    assert_eq!(attr(INSTANCE_TYPE_ATTRIBUTE), Some("berth"));
    assert_eq!(attr("stack"), Some("blue"));
    assert!(attr(EC2_INSTANCE_ID_ATTRIBUTE).is_some_and(|id| !id.is_empty()));
    assert_eq!(
        attr("ecs.capability.container-health-check"),
        Some(""),
        "capabilities are advertised"
    );
    let (resent, report) = session.reconciliation().await;
    assert!(resent.is_empty());
    assert!(report.running.is_empty());
    agent.stop().await;

    let stored: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("instance.json")).expect("instance.json"),
    )
    .expect("json");
    assert_eq!(stored["instanceId"], "inst-1");
    assert_eq!(stored["cluster"], "test");

    let agent = spawn_agent(config(&gateway, dir.path()));
    let mut session = gateway.next_session().await;
    let register = session.register("inst-1").await;
    assert_eq!(register.instance_id.as_deref(), Some("inst-1"));
    session.reconciliation().await;
    agent.stop().await;
}

#[tokio::test]
async fn a_refused_registration_ends_the_agent_with_an_error() {
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(config(&gateway, dir.path()));

    let mut session = gateway.next_session().await;
    assert!(matches!(
        session.recv().await,
        AgentFrame::RegisterInstance(_)
    ));
    session
        .send(GatewayFrame::RegistrationRefused(RegistrationRefused {
            reason: "invalid token".to_string(),
        }))
        .await;

    let result = tokio::time::timeout(WAIT, agent.task)
        .await
        .expect("the agent kept running after a refusal")
        .expect("the agent panicked");
    match result {
        Err(AgentError::RegistrationRefused { reason }) => assert_eq!(reason, "invalid token"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        gateway
            .session_within(Duration::from_millis(500))
            .await
            .is_none(),
        "a refused agent must not reconnect"
    );
    assert!(!dir.path().join("instance.json").exists());
}

#[tokio::test]
async fn payloads_are_acked_and_reports_resent_until_acknowledged() {
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("marker");
    let agent = spawn_agent(config(&gateway, dir.path()));

    let mut session = gateway.next_session().await;
    session.register("inst-1").await;
    session.reconciliation().await;

    let task = marked_task("resend", &marker, 3);
    let arn = task.arn.clone();
    session.send(payload("m-1", vec![task])).await;
    assert_eq!(
        session.recv().await,
        AgentFrame::Ack(Ack {
            message_id: "m-1".to_string()
        })
    );
    let reports = reports_until_stopped(&mut session, &arn).await;
    let statuses: Vec<TaskStatus> = reports.iter().map(|r| r.task.status).collect();
    // PENDING is reported unless RUNNING followed before the agent turned it into a report
    // (then only the latest change of the task is sent).
    let expected: &[TaskStatus] = match statuses.len() {
        3 => &[
            TaskStatus::Pending,
            TaskStatus::Running,
            TaskStatus::Stopped,
        ],
        _ => &[TaskStatus::Running, TaskStatus::Stopped],
    };
    assert_eq!(statuses, expected);
    let last = reports.len() as u64;
    assert_eq!(seqs(&reports), (1..=last).collect::<Vec<_>>());
    let stopped = reports.last().expect("a STOPPED report");
    assert_eq!(stopped.task.containers[0].exit_code, Some(3));
    assert_eq!(
        stopped.task.stop_code,
        Some(TaskStopCode::EssentialContainerExited)
    );

    // The gateway goes away without acknowledging: everything comes again, same numbers.
    drop(session);
    let mut session = gateway.next_session().await;
    let register = session.register("inst-1").await;
    assert_eq!(register.instance_id.as_deref(), Some("inst-1"));
    let (resent, report) = session.reconciliation().await;
    assert_eq!(resent, reports);
    assert!(report.running.is_empty());

    // A partial ack: only what it does not cover comes again.
    session
        .send(GatewayFrame::TaskStateAck(TaskStateAck { seq: last - 1 }))
        .await;
    heartbeat(&mut session, "hb-1").await;
    drop(session);
    let mut session = gateway.next_session().await;
    session.register("inst-1").await;
    let (resent, _) = session.reconciliation().await;
    assert_eq!(seqs(&resent), [last]);

    session
        .send(GatewayFrame::TaskStateAck(TaskStateAck { seq: last }))
        .await;
    heartbeat(&mut session, "hb-2").await;
    drop(session);
    let mut session = gateway.next_session().await;
    session.register("inst-1").await;
    let (resent, _) = session.reconciliation().await;
    assert!(
        resent.is_empty(),
        "acknowledged reports came again: {resent:?}"
    );
    agent.stop().await;

    let starts = std::fs::read_to_string(&marker).expect("marker");
    assert_eq!(starts.lines().count(), 1, "the task started more than once");
}

#[tokio::test]
async fn a_restarted_agent_resends_the_stopped_report_and_never_starts_twice() {
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("marker");

    let agent = spawn_agent(config(&gateway, dir.path()));
    let mut session = gateway.next_session().await;
    session.register("inst-1").await;
    session.reconciliation().await;
    let task = marked_task("restart", &marker, 0);
    let arn = task.arn.clone();
    session.send(payload("m-1", vec![task.clone()])).await;
    assert!(matches!(session.recv().await, AgentFrame::Ack(_)));
    let reports = reports_until_stopped(&mut session, &arn).await;
    agent.stop().await;
    drop(session);

    let agent = spawn_agent(config(&gateway, dir.path()));
    let mut session = gateway.next_session().await;
    let register = session.register("inst-1").await;
    assert_eq!(register.instance_id.as_deref(), Some("inst-1"));
    let (resent, report) = session.reconciliation().await;
    assert_eq!(resent, reports, "unacknowledged reports survive a restart");
    assert!(report.running.is_empty());

    // The gateway replays the placement: the agent says where the task stands, and does not
    // run it again.
    session.send(payload("m-2", vec![task])).await;
    assert_eq!(
        session.recv().await,
        AgentFrame::Ack(Ack {
            message_id: "m-2".to_string()
        })
    );
    let AgentFrame::TaskStateChange(again) = session.recv().await else {
        panic!("expected the task's state again");
    };
    assert_eq!(again.task.status, TaskStatus::Stopped);
    assert_eq!(
        again.seq,
        reports.last().expect("reports").seq + 1,
        "numbering continues"
    );
    assert!(matches!(
        session.next_within(Duration::from_millis(500)).await,
        Next::Silent
    ));
    agent.stop().await;
    let starts = std::fs::read_to_string(&marker).expect("marker");
    assert_eq!(starts.lines().count(), 1, "the task started more than once");
}

#[tokio::test]
async fn a_task_that_stops_while_the_gateway_is_away_is_reported_on_return() {
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(config(&gateway, dir.path()));
    let mut session = gateway.next_session().await;
    session.register("inst-1").await;
    session.reconciliation().await;

    let spec = shell_container("app", "busybox:recorded-only", &["sh"], "sleep 0.6; exit 7");
    let task = task("away", vec![spec]);
    let arn = task.arn.clone();
    session.send(payload("m-1", vec![task])).await;
    assert!(matches!(session.recv().await, AgentFrame::Ack(_)));
    // PENDING then RUNNING, as two reports, or as one when both changes reach the
    // agent's reporter together (only the last change of a burst is reported).
    let running = loop {
        let AgentFrame::TaskStateChange(change) = session.recv().await else {
            panic!("expected reports");
        };
        if change.task.status == TaskStatus::Running {
            break change;
        }
        assert_eq!(change.task.status, TaskStatus::Pending);
    };
    session
        .send(GatewayFrame::TaskStateAck(TaskStateAck {
            seq: running.seq,
        }))
        .await;
    heartbeat(&mut session, "hb-1").await;
    drop(session);

    // The next connection gets no answer until the task is long over.
    let mut session = gateway.next_session().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    session.register("inst-1").await;
    let (resent, report) = session.reconciliation().await;
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert_eq!(resent[0].task.task_arn, arn);
    assert_eq!(resent[0].seq, running.seq + 1);
    assert_eq!(resent[0].task.status, TaskStatus::Stopped);
    assert_eq!(resent[0].task.containers[0].exit_code, Some(7));
    assert!(report.running.is_empty());
    agent.stop().await;
}

#[tokio::test]
async fn heartbeats_are_answered_and_a_silent_gateway_is_left() {
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(&gateway, dir.path());
    config.timing.idle_timeout = Duration::from_millis(600);
    let agent = spawn_agent(config);

    let mut session = gateway.next_session().await;
    session.register("inst-1").await;
    session.reconciliation().await;
    for id in ["hb-1", "hb-2", "hb-3"] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        heartbeat(&mut session, id).await;
    }
    // Heartbeats kept the session up past the idle timeout; silence now ends it.
    assert!(matches!(
        session.next_within(Duration::from_secs(3)).await,
        Next::Closed
    ));
    let mut session = gateway.next_session().await;
    let register = session.register("inst-1").await;
    assert_eq!(register.instance_id.as_deref(), Some("inst-1"));
    agent.stop().await;
}

#[tokio::test]
async fn invalid_tasks_are_acked_and_reported_failed_to_start() {
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(config(&gateway, dir.path()));
    let mut session = gateway.next_session().await;
    session.register("inst-1").await;
    session.reconciliation().await;

    let mut bad = task(
        "bad",
        vec![shell_container("bad name", "busybox", &["sh"], "true")],
    );
    bad.desired_status = DesiredStatus::Running;
    let arn = bad.arn.clone();
    session.send(payload("m-1", vec![bad])).await;
    assert!(matches!(session.recv().await, AgentFrame::Ack(_)));
    let AgentFrame::TaskStateChange(report) = session.recv().await else {
        panic!("expected a report for the invalid task");
    };
    assert_eq!(report.task.task_arn, arn);
    assert_eq!(report.task.status, TaskStatus::Stopped);
    assert_eq!(report.task.stop_code, Some(TaskStopCode::TaskFailedToStart));
    agent.stop().await;
}

#[tokio::test]
async fn the_binary_exits_non_zero_on_a_wrong_token() {
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth-agent"))
        .args([
            "--gateway",
            &gateway.url,
            "--token",
            "wrong",
            "--driver",
            "process",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("BERTH_AGENT_TOKEN")
        .env_remove("BERTH_AGENT_GATEWAY")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn berth-agent");

    let mut session = gateway.next_session().await;
    let AgentFrame::RegisterInstance(register) = session.recv().await else {
        panic!("expected RegisterInstance");
    };
    assert_eq!(register.token, "wrong");
    session
        .send(GatewayFrame::RegistrationRefused(RegistrationRefused {
            reason: "invalid token".to_string(),
        }))
        .await;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("berth-agent kept running after a refusal")
        .expect("wait");
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn the_docker_driver_runs_payloads_through_the_session() {
    use berth_agent::runtime::testing::{BUSYBOX_IMAGE, docker_client, ensure_busybox_image};
    let Some(docker) = docker_client().await else {
        eprintln!("skipping: no Docker engine at /var/run/docker.sock");
        return;
    };
    ensure_busybox_image(&docker)
        .await
        .expect("build the busybox test image");
    let mut gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(&gateway, dir.path());
    config.driver = DriverChoice::docker();
    let agent = spawn_agent(config);

    let mut session = gateway.next_session().await;
    let register = session.register("inst-docker").await;
    assert_eq!(register.driver, DriverKind::Docker);
    session.reconciliation().await;
    let task = task(
        "docker-session",
        vec![shell_container(
            "app",
            BUSYBOX_IMAGE,
            &["/bin/busybox", "sh"],
            "sleep 0.2; exit 4",
        )],
    );
    let arn = task.arn.clone();
    session.send(payload("m-1", vec![task])).await;
    assert!(matches!(session.recv().await, AgentFrame::Ack(_)));
    let reports = reports_until_stopped(&mut session, &arn).await;
    let stopped = reports.last().expect("reports");
    assert_eq!(stopped.task.containers[0].exit_code, Some(4));
    assert!(reports.iter().any(|r| r.task.status == TaskStatus::Running));
    agent.stop().await;
}
