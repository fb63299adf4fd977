//! The process driver against real `sh` processes.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent::runtime::{Driver, ProcessConfig, ProcessDriver, RuntimeError, TaskEvent};
use berth_agent_protocol::{
    ContainerSpec, DesiredStatus, HealthStatus, PortMapping, TaskStatus, TaskStopCode,
    TransportProtocol,
};
use common::*;
use tokio::sync::mpsc::{self, UnboundedReceiver};

fn sh(name: &str, script: &str) -> ContainerSpec {
    shell_container(name, "busybox:recorded-only", &["sh"], script)
}

fn driver(dir: &std::path::Path) -> (ProcessDriver, UnboundedReceiver<TaskEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ProcessDriver::new(ProcessConfig::new(dir), tx), rx)
}

fn pid_of(event: &TaskEvent, name: &str) -> i32 {
    container(event, name)
        .runtime_id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no pid for {name}"))
}

/// Whether a pid is a live process (zombies count as dead).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn reports_pending_running_stopped_with_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path());
    let mut spec = sh("app", "sleep 0.3; exit 3");
    spec.port_mappings = vec![PortMapping {
        container_port: 80,
        host_port: 18080,
        protocol: TransportProtocol::Tcp,
    }];
    let task = task("exit", vec![spec]);
    let arn = task.arn.clone();
    driver.start_task(task).await.expect("start");

    let pending = wait_status(&mut events, &arn, TaskStatus::Pending).await;
    assert_eq!(container(&pending, "app").status, TaskStatus::Pending);

    let running = wait_status(&mut events, &arn, TaskStatus::Running).await;
    let app = container(&running, "app");
    assert_eq!(app.status, TaskStatus::Running);
    assert!(app.runtime_id.is_some());
    assert_eq!(app.network_bindings.len(), 1);
    assert_eq!(app.network_bindings[0].host_port, 18080);
    assert_eq!(app.network_bindings[0].bind_ip, "0.0.0.0");
    assert!(running.started_at.is_some());

    let stopped = wait_status(&mut events, &arn, TaskStatus::Stopped).await;
    let app = container(&stopped, "app");
    assert_eq!(app.status, TaskStatus::Stopped);
    assert_eq!(app.exit_code, Some(3));
    assert_eq!(
        stopped.stop_code,
        Some(TaskStopCode::EssentialContainerExited)
    );
    assert_eq!(
        stopped.reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert!(stopped.stopped_at.is_some());
    assert!(driver.list_running().await.expect("list").is_empty());
}

#[tokio::test]
async fn essential_exit_stops_the_others_and_non_essential_exit_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path());
    let mut helper = sh("helper", "exit 0");
    helper.essential = false;
    let mut sidecar = sh("sidecar", "sleep 60");
    sidecar.essential = false;
    sidecar.stop_timeout = Some(5);
    let main = sh("main", "sleep 1.5; exit 7");
    let task = task("essential", vec![main, sidecar, helper]);
    let arn = task.arn.clone();
    driver.start_task(task).await.expect("start");

    // The non-essential helper ends on its own; the task keeps running.
    let event = wait_for(&mut events, &arn, "helper exit", |e| {
        container(e, "helper").status == TaskStatus::Stopped
    })
    .await;
    assert_eq!(container(&event, "helper").exit_code, Some(0));
    assert_ne!(event.status, TaskStatus::Stopped);
    let sidecar_pid = pid_of(&event, "sidecar");

    let stopped = wait_status(&mut events, &arn, TaskStatus::Stopped).await;
    assert_eq!(
        stopped.stop_code,
        Some(TaskStopCode::EssentialContainerExited)
    );
    assert_eq!(
        stopped.reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(container(&stopped, "main").exit_code, Some(7));
    // SIGTERM reached the sidecar's whole group: sh and its sleep.
    assert_eq!(container(&stopped, "sidecar").exit_code, Some(143));
    assert!(!alive(sidecar_pid));
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_after_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path());
    // Each script says when its trap is in place, so the stop cannot overtake it.
    let mut polite = sh(
        "polite",
        "trap 'exit 42' TERM; touch polite.ready; while :; do sleep 0.1; done",
    );
    polite.stop_timeout = Some(10);
    // Ignored signals stay ignored across exec, so the sleeps ignore SIGTERM too.
    let mut stubborn = sh(
        "stubborn",
        "trap '' TERM; touch stubborn.ready; while :; do sleep 0.1; done",
    );
    stubborn.stop_timeout = Some(1);
    let task = task("stop", vec![polite, stubborn]);
    let arn = task.arn.clone();
    driver.start_task(task).await.expect("start");
    let running = wait_status(&mut events, &arn, TaskStatus::Running).await;
    let stubborn_pid = pid_of(&running, "stubborn");
    let task_dir = driver
        .log_path(&arn, "polite")
        .expect("path")
        .with_file_name("");
    for ready in ["polite.ready", "stubborn.ready"] {
        let deadline = Instant::now() + WAIT;
        while !task_dir.join(ready).exists() {
            assert!(Instant::now() < deadline, "{ready} never appeared");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let asked = Instant::now();
    driver
        .stop_task(&arn, Some("Task stopped by user".into()))
        .await
        .expect("stop");
    let polite_done = wait_for(&mut events, &arn, "polite exit", |e| {
        container(e, "polite").status == TaskStatus::Stopped
    })
    .await;
    assert_eq!(container(&polite_done, "polite").exit_code, Some(42));

    let stopped = wait_status(&mut events, &arn, TaskStatus::Stopped).await;
    let waited = asked.elapsed();
    assert_eq!(container(&stopped, "stubborn").exit_code, Some(137));
    assert!(
        waited >= Duration::from_millis(900),
        "SIGKILL came after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(8),
        "SIGKILL came after {waited:?}"
    );
    assert_eq!(stopped.reason.as_deref(), Some("Task stopped by user"));
    assert_eq!(stopped.stop_code, None);
    assert!(!alive(stubborn_pid));

    // Stopping again is a no-op; an unknown task is an error.
    driver.stop_task(&arn, None).await.expect("second stop");
    assert!(matches!(
        driver.stop_task("arn:aws:ecs:r:1:task/c/nope", None).await,
        Err(RuntimeError::UnknownTask(_))
    ));
}

#[tokio::test]
async fn environment_working_directory_and_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path());
    let mut app = sh(
        "app",
        "echo \"greeting=$GREETING\"; echo \"cwd=$(pwd)\"; echo \"leak=${CARGO_MANIFEST_DIR:-none}\"; echo oops >&2",
    );
    app.environment
        .insert("GREETING".into(), "hello world".into());
    let mut nested = sh("nested", "pwd; sleep 0.2");
    nested.working_directory = Some("work".into());
    nested.essential = false;
    let task = task("env", vec![nested, app]);
    let arn = task.arn.clone();
    driver.start_task(task).await.expect("start");
    wait_status(&mut events, &arn, TaskStatus::Stopped).await;

    let app_log = driver.log_path(&arn, "app").expect("log path");
    let task_dir = app_log.parent().expect("task dir").to_path_buf();
    assert!(task_dir.starts_with(dir.path()));
    let log = std::fs::read_to_string(&app_log).expect("app log");
    assert!(log.contains("greeting=hello world"), "{log}");
    assert!(
        log.contains(&format!("cwd={}", task_dir.display())),
        "{log}"
    );
    assert!(log.contains("leak=none"), "agent environment leaked: {log}");
    assert!(log.contains("oops"), "stderr missing: {log}");

    let nested_log =
        std::fs::read_to_string(driver.log_path(&arn, "nested").expect("path")).expect("log");
    assert_eq!(
        nested_log.trim(),
        task_dir.join("work").display().to_string()
    );
}

#[tokio::test]
async fn health_checks_turn_healthy_and_unhealthy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path());
    let mut good = sh("good", "touch ready; sleep 60");
    good.health_check = Some(health_check(&["CMD-SHELL", "test -f ready"], 1, 3));
    good.stop_timeout = Some(1);
    let mut bad = sh("bad", "sleep 60");
    bad.health_check = Some(health_check(&["CMD", "false"], 1, 2));
    bad.stop_timeout = Some(1);
    let task = task("health", vec![good, bad]);
    let arn = task.arn.clone();
    driver.start_task(task).await.expect("start");

    let running = wait_status(&mut events, &arn, TaskStatus::Running).await;
    assert_eq!(
        container(&running, "good").health_status,
        HealthStatus::Unknown
    );
    let event = wait_for(&mut events, &arn, "health verdicts", |e| {
        container(e, "good").health_status == HealthStatus::Healthy
            && container(e, "bad").health_status == HealthStatus::Unhealthy
    })
    .await;
    // An unhealthy container is reported, not stopped (that is the service scheduler's call).
    assert_eq!(event.status, TaskStatus::Running);

    driver.stop_task(&arn, None).await.expect("stop");
    wait_status(&mut events, &arn, TaskStatus::Stopped).await;
}

#[tokio::test]
async fn start_failure_is_task_failed_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path());
    let mut first = sh("first", "sleep 60");
    first.stop_timeout = Some(1);
    let mut broken = ContainerSpec::new("broken", "busybox");
    broken.command = Some(vec!["/nonexistent/program".into(), "--flag".into()]);
    let never = sh("never", "true");
    let task = task("fail", vec![first, broken, never]);
    let arn = task.arn.clone();
    driver.start_task(task).await.expect("start");

    let stopped = wait_status(&mut events, &arn, TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(TaskStopCode::TaskFailedToStart));
    let reason = stopped.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("CannotStartContainerError: "),
        "{reason}"
    );
    assert!(reason.contains("/nonexistent/program"), "{reason}");
    assert_eq!(
        container(&stopped, "broken").reason.as_deref(),
        Some(reason.as_str())
    );
    assert_eq!(container(&stopped, "first").exit_code, Some(143));
    let never = container(&stopped, "never");
    assert_eq!((never.status, never.exit_code), (TaskStatus::Stopped, None));
}

#[tokio::test]
async fn duplicates_are_ignored_and_bad_payloads_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path());
    let task = task("dup", vec![sh("app", "echo once >> count; sleep 0.2")]);
    let arn = task.arn.clone();
    driver.start_task(task.clone()).await.expect("start");
    driver
        .start_task(task.clone())
        .await
        .expect("duplicate start");
    wait_status(&mut events, &arn, TaskStatus::Stopped).await;
    driver
        .start_task(task.clone())
        .await
        .expect("replayed start");
    let count = std::fs::read_to_string(
        driver
            .log_path(&arn, "app")
            .expect("path")
            .with_file_name("count"),
    )
    .expect("count file");
    assert_eq!(count, "once\n");

    // A stop for a task never seen is recorded, reported, and blocks a later start.
    let mut late = common::task("late", vec![sh("app", "echo started > started")]);
    late.desired_status = DesiredStatus::Stopped;
    late.stop_reason = Some("Scaling activity".into());
    let late_arn = late.arn.clone();
    driver.apply(late.clone()).await.expect("apply stop");
    let stopped = wait_status(&mut events, &late_arn, TaskStatus::Stopped).await;
    assert_eq!(stopped.reason.as_deref(), Some("Scaling activity"));
    late.desired_status = DesiredStatus::Running;
    driver.apply(late).await.expect("apply start");
    wait_status(&mut events, &late_arn, TaskStatus::Stopped).await;
    let marker = driver
        .log_path(&late_arn, "app")
        .expect("path")
        .with_file_name("started");
    assert!(!marker.exists(), "a stopped task was started");

    for bad in [
        common::task("bad", vec![sh("a/b", "true")]),
        common::task("bad", vec![sh("a", "true"), sh("a", "true")]),
        {
            let mut t = common::task("bad", vec![sh("a", "true")]);
            t.arn = "arn:aws:ecs:r:1:task/c/..".into();
            t
        },
    ] {
        assert!(matches!(
            driver.start_task(bad).await,
            Err(RuntimeError::InvalidTask(_))
        ));
    }
}

/// A restarted agent (a new driver in a new runtime, the old runtime gone) finds the processes,
/// lists them, notices an essential one dying and stops the rest.
#[test]
fn a_new_driver_adopts_running_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut main = sh("main", "sleep 60");
    main.stop_timeout = Some(1);
    let mut side = sh("side", "sleep 60");
    side.stop_timeout = Some(1);
    side.essential = false;
    let task = task("adopt", vec![main, side]);
    let arn = task.arn.clone();

    let first = tokio::runtime::Runtime::new().expect("runtime");
    let before = first.block_on(async {
        let (driver, mut events) = driver(dir.path());
        driver.start_task(task.clone()).await.expect("start");
        wait_status(&mut events, &arn, TaskStatus::Running).await
    });
    // The "agent" dies: its supervisors go with the runtime, the processes stay.
    drop(first);
    let main_pid = pid_of(&before, "main");
    let side_pid = pid_of(&before, "side");
    assert!(alive(main_pid) && alive(side_pid));

    let second = tokio::runtime::Runtime::new().expect("runtime");
    second.block_on(async {
        let (driver, mut events) = driver(dir.path());
        let driver: Arc<dyn Driver> = Arc::new(driver);
        let listed = driver.list_running().await.expect("list");
        assert_eq!(listed.len(), 1);
        let found = &listed[0];
        assert_eq!(found.task_arn, arn);
        assert_eq!(found.status, TaskStatus::Running);
        assert_eq!(pid_of(found, "main"), main_pid);
        assert_eq!(container(found, "side").status, TaskStatus::Running);

        // Starting it again does not start a second copy.
        driver.start_task(task.clone()).await.expect("start again");
        assert_eq!(driver.list_running().await.expect("list").len(), 1);

        // The essential container dies behind the agent's back.
        let killed = std::process::Command::new("kill")
            .arg(main_pid.to_string())
            .status()
            .expect("kill");
        assert!(killed.success());
        let stopped = wait_status(&mut events, &arn, TaskStatus::Stopped).await;
        assert_eq!(
            stopped.stop_code,
            Some(TaskStopCode::EssentialContainerExited)
        );
        // Not our children any more: exit codes cannot be known.
        assert_eq!(container(&stopped, "main").exit_code, None);
        assert!(container(&stopped, "main").reason.is_some());
        assert!(!alive(side_pid), "side process survived the stop");
        assert!(driver.list_running().await.expect("list").is_empty());
    });
}
