//! The Docker driver against the local engine, with the locally built busybox image.
//!
//! Skipped (with a message) on machines without a Docker engine.

mod common;

use berth_agent::runtime::testing::{
    BUSYBOX_IMAGE, docker_client, ensure_busybox_image, free_port,
};
use berth_agent::runtime::{DockerConfig, DockerDriver, Driver, LABEL_TASK_ARN, TaskEvent};
use berth_agent_protocol::{
    ContainerSpec, HealthStatus, PortMapping, TaskStatus, TaskStopCode, TransportProtocol,
};
use bollard::Docker;
use common::*;
use tokio::sync::mpsc::{self, UnboundedReceiver};

fn bb(name: &str, script: &str) -> ContainerSpec {
    shell_container(name, BUSYBOX_IMAGE, &["/bin/busybox", "sh"], script)
}

/// The engine with the test image, or `None` to skip.
async fn engine() -> Option<Docker> {
    let Some(docker) = docker_client().await else {
        eprintln!("skipping: no Docker engine at /var/run/docker.sock");
        return None;
    };
    ensure_busybox_image(&docker)
        .await
        .expect("build the busybox test image");
    Some(docker)
}

async fn driver(dir: &std::path::Path) -> (DockerDriver, UnboundedReceiver<TaskEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = DockerDriver::connect(DockerConfig::new(dir), tx)
        .await
        .expect("connect to docker");
    (driver, rx)
}

async fn gone(docker: &Docker, id: &str) -> bool {
    docker.inspect_container(id, None).await.is_err()
}

#[tokio::test]
async fn two_containers_bindings_health_exit_codes_and_stop() {
    let Some(docker) = engine().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path()).await;

    let static_port = free_port();
    let dynamic_port = free_port();
    let mut web = bb("web", "echo web up; exec /bin/busybox sleep 300");
    web.port_mappings = vec![
        PortMapping {
            container_port: 80,
            host_port: static_port,
            protocol: TransportProtocol::Tcp,
        },
        PortMapping {
            container_port: 53,
            host_port: dynamic_port,
            protocol: TransportProtocol::Udp,
        },
    ];
    web.health_check = Some(health_check(&["CMD", "/bin/busybox", "true"], 1, 3));
    web.stop_timeout = Some(1);
    web.memory = Some(64);
    web.cpu = 128;
    web.environment.insert("GREETING".into(), "hi".into());
    let mut job = bb(
        "job",
        "echo \"job says $GREETING\"; echo to-stderr >&2; exit 5",
    );
    job.essential = false;
    job.environment.insert("GREETING".into(), "hello".into());
    let task = task("dk-two", vec![web, job]);
    let arn = task.arn.clone();
    driver.start_task(task).await.expect("start");

    let running = wait_status(&mut events, &arn, TaskStatus::Running).await;
    let web_state = container(&running, "web");
    let web_id = web_state.runtime_id.clone().expect("web container id");
    let tcp = web_state
        .network_bindings
        .iter()
        .find(|b| b.container_port == 80)
        .expect("tcp binding");
    assert_eq!(
        (tcp.host_port, tcp.protocol),
        (static_port, TransportProtocol::Tcp)
    );
    let udp = web_state
        .network_bindings
        .iter()
        .find(|b| b.container_port == 53)
        .expect("udp binding");
    assert_eq!(
        (udp.host_port, udp.protocol),
        (dynamic_port, TransportProtocol::Udp)
    );

    // Labels let a restarted agent find the container.
    let inspect = docker
        .inspect_container(&web_id, None)
        .await
        .expect("inspect");
    let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get(LABEL_TASK_ARN), Some(&arn));

    let job_done = wait_for(&mut events, &arn, "job exit", |e| {
        container(e, "job").status == TaskStatus::Stopped
    })
    .await;
    assert_eq!(container(&job_done, "job").exit_code, Some(5));
    assert_eq!(job_done.status, TaskStatus::Running);
    let log = std::fs::read_to_string(driver.log_path(&arn, "job").expect("path")).expect("log");
    assert!(log.contains("job says hello"), "{log}");
    assert!(log.contains("to-stderr"), "{log}");

    // Events carry the whole task, so the verdict may already be in the last one seen.
    if container(&job_done, "web").health_status != HealthStatus::Healthy {
        wait_for(&mut events, &arn, "web healthy", |e| {
            container(e, "web").health_status == HealthStatus::Healthy
        })
        .await;
    }

    driver
        .stop_task(&arn, Some("Task stopped by user".into()))
        .await
        .expect("stop");
    let stopped = wait_status(&mut events, &arn, TaskStatus::Stopped).await;
    assert_eq!(stopped.reason.as_deref(), Some("Task stopped by user"));
    // busybox sleep as PID 1 ignores SIGTERM: killed after the 1 s stop timeout.
    assert_eq!(container(&stopped, "web").exit_code, Some(137));
    assert!(stopped.pulled_at.is_some());
    let web_log =
        std::fs::read_to_string(driver.log_path(&arn, "web").expect("path")).expect("log");
    assert!(web_log.contains("web up"), "{web_log}");
    // Stopped tasks leave no containers behind (removed before STOPPED is reported).
    assert!(gone(&docker, &web_id).await, "container not removed");
}

#[tokio::test]
async fn essential_exit_stops_the_task() {
    let Some(docker) = engine().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path()).await;
    let main = bb("main", "/bin/busybox sleep 1; exit 3");
    let mut side = bb("side", "exec /bin/busybox sleep 300");
    side.essential = false;
    side.stop_timeout = Some(1);
    let task = task("dk-ess", vec![main, side]);
    let arn = task.arn.clone();
    driver.start_task(task).await.expect("start");

    let stopped = wait_status(&mut events, &arn, TaskStatus::Stopped).await;
    assert_eq!(
        stopped.stop_code,
        Some(TaskStopCode::EssentialContainerExited)
    );
    assert_eq!(
        stopped.reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(container(&stopped, "main").exit_code, Some(3));
    assert_eq!(container(&stopped, "side").status, TaskStatus::Stopped);
    for name in ["main", "side"] {
        let id = container(&stopped, name).runtime_id.clone().expect("id");
        assert!(gone(&docker, &id).await, "{name} not removed");
    }
}

#[tokio::test]
async fn missing_image_is_cannot_pull_and_bad_command_cannot_start() {
    let Some(_docker) = engine().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (driver, mut events) = driver(dir.path()).await;

    let task1 = task(
        "dk-pull",
        vec![ContainerSpec::new(
            "app",
            "berth-test/does-not-exist:latest",
        )],
    );
    let arn1 = task1.arn.clone();
    driver.start_task(task1).await.expect("start");
    let stopped = wait_status(&mut events, &arn1, TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(TaskStopCode::TaskFailedToStart));
    let reason = stopped.reason.unwrap_or_default();
    assert!(reason.starts_with("CannotPullContainerError: "), "{reason}");

    let mut broken = ContainerSpec::new("app", BUSYBOX_IMAGE);
    broken.command = Some(vec!["/no/such/binary".into()]);
    let task2 = task("dk-start", vec![broken]);
    let arn2 = task2.arn.clone();
    driver.start_task(task2).await.expect("start");
    let stopped = wait_status(&mut events, &arn2, TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(TaskStopCode::TaskFailedToStart));
    let reason = stopped.reason.unwrap_or_default();
    assert!(
        reason.starts_with("CannotStartContainerError: "),
        "{reason}"
    );
}

/// A new driver (new runtime, the old one gone) over the same data dir finds the containers by
/// label, lists them, and can stop them with real exit codes.
#[test]
fn a_new_driver_finds_containers_by_label() {
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let Some(docker) = first.block_on(engine()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = bb("a", "exec /bin/busybox sleep 300");
    a.stop_timeout = Some(1);
    let mut b = bb(
        "b",
        "trap 'exit 9' TERM; echo trap-set; while :; do /bin/busybox sleep 0.2; done",
    );
    b.stop_timeout = Some(5);
    let port = free_port();
    a.port_mappings = vec![PortMapping {
        container_port: 8080,
        host_port: port,
        protocol: TransportProtocol::Tcp,
    }];
    let task = task("dk-adopt", vec![a, b]);
    let arn = task.arn.clone();

    let before = first.block_on(async {
        let (driver, mut events) = driver(dir.path()).await;
        driver.start_task(task.clone()).await.expect("start");
        let running = wait_status(&mut events, &arn, TaskStatus::Running).await;
        // The stop must not overtake b's trap.
        let log = driver.log_path(&arn, "b").expect("path");
        let deadline = std::time::Instant::now() + WAIT;
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("trap-set")) {
            assert!(std::time::Instant::now() < deadline, "b never set its trap");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        running
    });
    drop(first);

    let second = tokio::runtime::Runtime::new().expect("runtime");
    second.block_on(async {
        // Another agent's containers on the same engine are not ours.
        let other = tempfile::tempdir().expect("tempdir");
        let (stranger, _events) = driver(other.path()).await;
        assert!(stranger.list_running().await.expect("list").is_empty());

        let (driver, mut events) = driver(dir.path()).await;
        let listed = driver.list_running().await.expect("list");
        assert_eq!(listed.len(), 1);
        let found = &listed[0];
        assert_eq!(found.task_arn, arn);
        assert_eq!(
            container(found, "a").runtime_id,
            container(&before, "a").runtime_id
        );
        assert_eq!(container(found, "b").status, TaskStatus::Running);
        assert_eq!(container(found, "a").network_bindings[0].host_port, port);

        driver.stop_task(&arn, None).await.expect("stop");
        let stopped = wait_status(&mut events, &arn, TaskStatus::Stopped).await;
        assert_eq!(container(&stopped, "a").exit_code, Some(137));
        assert_eq!(container(&stopped, "b").exit_code, Some(9));
        let id = container(&stopped, "a").runtime_id.clone().expect("id");
        assert!(gone(&docker, &id).await);
    });
}
