//! The `sim` driver: runs nothing and reports as if it did. A started task is PENDING and then, at
//! once, RUNNING with its host ports as network bindings; a stopped one is STOPPED with every
//! container's exit code 0. With it, one process can be a fleet of agents that speak the real
//! protocol to a real gateway (registration, heartbeats, payloads, acked reports), so the control
//! plane can be measured at a thousand hosts without a thousand hosts.
//!
//! The same rules as the real drivers hold where the control plane can see them: a task ARN is
//! started at most once (a repeated start reports the task's current state again), a stop for an
//! unknown task records it STOPPED and reports it, and payloads are validated the same way.
//! Nothing is written to disk, and a task costs one snapshot in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use berth_agent_protocol::{
    ContainerStateChange, DesiredStatus, DriverKind, EpochMillis, HealthStatus, NetworkBinding,
    TaskPayload, TaskSnapshot, TaskStatus,
};
use foldhash::{HashMap, HashMapExt};

use super::layout::check_payload;
use super::{BoxFuture, Driver, EventSender, RuntimeError};

/// Reason reported when a task is stopped without one.
const DEFAULT_STOP_REASON: &str = "Task stopped";

/// A driver that pretends. Cheap to share behind an `Arc<dyn Driver>`.
pub struct SimDriver {
    /// Never written to; the [`Driver`] trait wants a data dir for log paths.
    data_dir: PathBuf,
    events: EventSender,
    tasks: Mutex<HashMap<String, TaskSnapshot>>,
    next_runtime_id: AtomicU64,
}

impl SimDriver {
    /// A driver emitting its events on `events`.
    pub fn new(events: EventSender) -> Self {
        Self {
            data_dir: PathBuf::new(),
            events,
            tasks: Mutex::new(HashMap::new()),
            next_runtime_id: AtomicU64::new(1),
        }
    }

    fn tasks(&self) -> MutexGuard<'_, HashMap<String, TaskSnapshot>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, snapshot: TaskSnapshot) {
        // Only fails when the agent is shutting down; nothing to report to then.
        let _ = self.events.send(snapshot);
    }

    fn start(&self, task: TaskPayload) -> Result<(), RuntimeError> {
        check_payload(&task)?;
        let mut tasks = self.tasks();
        if let Some(current) = tasks.get(&task.arn) {
            tracing::debug!(task_arn = %task.arn, status = %current.status, "task already known; not starting it again");
            self.emit(current.clone());
            return Ok(());
        }
        let now = EpochMillis::now();
        let mut snapshot = TaskSnapshot {
            task_arn: task.arn.clone(),
            status: TaskStatus::Pending,
            reason: None,
            stop_code: None,
            containers: task
                .containers
                .iter()
                .map(|spec| ContainerStateChange {
                    name: spec.name.clone(),
                    runtime_id: None,
                    status: TaskStatus::Pending,
                    exit_code: None,
                    reason: None,
                    network_bindings: Vec::new(),
                    health_status: HealthStatus::Unknown,
                })
                .collect(),
            pulled_at: Some(now),
            started_at: None,
            stopped_at: None,
        };
        self.emit(snapshot.clone());
        snapshot.status = TaskStatus::Running;
        snapshot.started_at = Some(now);
        for (state, spec) in snapshot.containers.iter_mut().zip(&task.containers) {
            let id = self.next_runtime_id.fetch_add(1, Ordering::Relaxed);
            state.status = TaskStatus::Running;
            state.runtime_id = Some(format!("sim-{id}"));
            state.network_bindings = spec
                .port_mappings
                .iter()
                .map(|mapping| NetworkBinding {
                    bind_ip: "0.0.0.0".to_string(),
                    container_port: mapping.container_port,
                    host_port: mapping.host_port,
                    protocol: mapping.protocol,
                })
                .collect();
            if spec.health_check.is_some() {
                state.health_status = HealthStatus::Healthy;
            }
        }
        self.emit(snapshot.clone());
        tasks.insert(task.arn, snapshot);
        Ok(())
    }

    fn stop(&self, task_arn: &str, reason: Option<String>) -> Result<(), RuntimeError> {
        let mut tasks = self.tasks();
        let snapshot = tasks
            .get_mut(task_arn)
            .ok_or_else(|| RuntimeError::UnknownTask(task_arn.to_string()))?;
        if snapshot.status == TaskStatus::Stopped {
            return Ok(());
        }
        mark_stopped(snapshot, reason, Some(0));
        self.emit(snapshot.clone());
        Ok(())
    }

    /// A stop for a task never started here: recorded so a late start is ignored, and reported.
    fn record_never_started(&self, task: TaskPayload) -> Result<(), RuntimeError> {
        check_payload(&task)?;
        let mut snapshot = TaskSnapshot {
            task_arn: task.arn.clone(),
            status: TaskStatus::Pending,
            reason: None,
            stop_code: None,
            containers: task
                .containers
                .iter()
                .map(|spec| ContainerStateChange {
                    name: spec.name.clone(),
                    runtime_id: None,
                    status: TaskStatus::Pending,
                    exit_code: None,
                    reason: None,
                    network_bindings: Vec::new(),
                    health_status: HealthStatus::Unknown,
                })
                .collect(),
            pulled_at: None,
            started_at: None,
            stopped_at: None,
        };
        mark_stopped(&mut snapshot, task.stop_reason, None);
        let mut tasks = self.tasks();
        if tasks.contains_key(&task.arn) {
            return Ok(());
        }
        self.emit(snapshot.clone());
        tasks.insert(task.arn, snapshot);
        Ok(())
    }
}

fn mark_stopped(snapshot: &mut TaskSnapshot, reason: Option<String>, exit_code: Option<i32>) {
    snapshot.status = TaskStatus::Stopped;
    snapshot.reason = Some(reason.unwrap_or_else(|| DEFAULT_STOP_REASON.to_string()));
    snapshot.stopped_at = Some(EpochMillis::now());
    for container in &mut snapshot.containers {
        if container.status == TaskStatus::Running {
            container.exit_code = exit_code;
        }
        container.status = TaskStatus::Stopped;
    }
}

impl Driver for SimDriver {
    fn kind(&self) -> DriverKind {
        // The protocol knows two drivers; a simulated host behaves like an instant `process` one.
        DriverKind::Process
    }

    fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn start_task(&self, task: TaskPayload) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(std::future::ready(self.start(task)))
    }

    fn stop_task<'a>(
        &'a self,
        task_arn: &'a str,
        reason: Option<String>,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(std::future::ready(self.stop(task_arn, reason)))
    }

    fn list_running(&self) -> BoxFuture<'_, Result<Vec<TaskSnapshot>, RuntimeError>> {
        let mut running: Vec<TaskSnapshot> = self
            .tasks()
            .values()
            .filter(|snapshot| snapshot.status != TaskStatus::Stopped)
            .cloned()
            .collect();
        running.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        Box::pin(std::future::ready(Ok(running)))
    }

    fn apply(&self, task: TaskPayload) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let result = match task.desired_status {
            DesiredStatus::Running => self.start(task),
            DesiredStatus::Stopped => match self.stop(&task.arn, task.stop_reason.clone()) {
                Err(RuntimeError::UnknownTask(_)) => self.record_never_started(task),
                other => other,
            },
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use berth_agent_protocol::{ContainerSpec, NetworkMode, PortMapping, TransportProtocol};
    use tokio::sync::mpsc;

    use super::*;

    fn payload(arn: &str, desired: DesiredStatus) -> TaskPayload {
        let mut web = ContainerSpec::new("web", "nginx");
        web.port_mappings = vec![PortMapping {
            container_port: 80,
            host_port: 32768,
            protocol: TransportProtocol::Tcp,
        }];
        TaskPayload {
            arn: arn.to_string(),
            family: "web".to_string(),
            revision: 1,
            desired_status: desired,
            network_mode: NetworkMode::Bridge,
            containers: vec![web],
            stop_reason: None,
        }
    }

    #[tokio::test]
    async fn start_runs_at_once_and_stop_exits_zero() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let driver = SimDriver::new(tx);
        let arn = "arn:aws:ecs:us-east-1:0:task/c/t1";
        driver
            .apply(payload(arn, DesiredStatus::Running))
            .await
            .expect("start");
        let pending = rx.try_recv().expect("pending");
        assert_eq!(pending.status, TaskStatus::Pending);
        let running = rx.try_recv().expect("running");
        assert_eq!(running.status, TaskStatus::Running);
        assert_eq!(running.containers[0].network_bindings[0].host_port, 32768);
        assert_eq!(driver.list_running().await.expect("list").len(), 1);

        // A replayed start is not a second start.
        driver
            .apply(payload(arn, DesiredStatus::Running))
            .await
            .expect("replay");
        assert_eq!(rx.try_recv().expect("again").status, TaskStatus::Running);
        assert!(rx.try_recv().is_err());

        driver
            .apply(payload(arn, DesiredStatus::Stopped))
            .await
            .expect("stop");
        let stopped = rx.try_recv().expect("stopped");
        assert_eq!(stopped.status, TaskStatus::Stopped);
        assert_eq!(stopped.containers[0].exit_code, Some(0));
        assert!(driver.list_running().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn a_stop_before_the_start_wins() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let driver = SimDriver::new(tx);
        let arn = "arn:aws:ecs:us-east-1:0:task/c/t2";
        driver
            .apply(payload(arn, DesiredStatus::Stopped))
            .await
            .expect("stop");
        assert_eq!(rx.try_recv().expect("stopped").status, TaskStatus::Stopped);
        driver
            .apply(payload(arn, DesiredStatus::Running))
            .await
            .expect("late start");
        assert_eq!(rx.try_recv().expect("again").status, TaskStatus::Stopped);
        assert!(driver.list_running().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn bad_payloads_are_refused_like_the_real_drivers() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let driver = SimDriver::new(tx);
        let result = driver
            .apply(payload("task/a b", DesiredStatus::Running))
            .await;
        assert!(matches!(result, Err(RuntimeError::InvalidTask(_))));
    }
}
