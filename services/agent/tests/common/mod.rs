//! Helpers shared by the driver tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_agent::runtime::TaskEvent;
use berth_agent::runtime::testing::next_matching;
use berth_agent_protocol::{
    ContainerSpec, ContainerStateChange, DesiredStatus, HealthCheck, NetworkMode, TaskPayload,
    TaskStatus,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// Generous bound for anything the tests wait on; the happy path takes a fraction of it.
pub const WAIT: Duration = Duration::from_secs(30);

/// A task ARN unique across tests, processes and runs (Docker container names derive from it).
pub fn unique_arn(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "arn:aws:ecs:us-east-1:000000000000:task/test/{label}-{}-{nanos:x}-{n}",
        std::process::id()
    )
}

pub fn task(label: &str, containers: Vec<ContainerSpec>) -> TaskPayload {
    TaskPayload {
        arn: unique_arn(label),
        family: label.to_string(),
        revision: 1,
        desired_status: DesiredStatus::Running,
        network_mode: NetworkMode::Bridge,
        containers,
        stop_reason: None,
    }
}

/// A container running `script` with `sh -c`, through `shell` (e.g. `["sh"]` or
/// `["/bin/busybox", "sh"]`).
pub fn shell_container(name: &str, image: &str, shell: &[&str], script: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(name, image);
    spec.entry_point = Some(
        shell
            .iter()
            .map(|s| s.to_string())
            .chain(["-c".to_string()])
            .collect(),
    );
    spec.command = Some(vec![script.to_string()]);
    spec
}

pub fn health_check(command: &[&str], interval: u32, retries: u32) -> HealthCheck {
    HealthCheck {
        command: command.iter().map(|s| s.to_string()).collect(),
        interval,
        timeout: 5,
        retries,
        start_period: 0,
    }
}

pub async fn wait_for(
    events: &mut UnboundedReceiver<TaskEvent>,
    arn: &str,
    what: &str,
    mut matches: impl FnMut(&TaskEvent) -> bool,
) -> TaskEvent {
    match next_matching(events, WAIT, |e| e.task_arn == arn && matches(e)).await {
        Some(event) => event,
        None => panic!("timed out waiting for {what} of {arn}"),
    }
}

pub async fn wait_status(
    events: &mut UnboundedReceiver<TaskEvent>,
    arn: &str,
    status: TaskStatus,
) -> TaskEvent {
    wait_for(events, arn, status.as_str(), |e| e.status == status).await
}

pub fn container<'a>(event: &'a TaskEvent, name: &str) -> &'a ContainerStateChange {
    event
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name} in {event:?}"))
}
