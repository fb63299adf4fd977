//! `TaskStateChange` from an agent -> `TaskStateReported` in the log.
//!
//! Reports are appended with the idempotency key `report-<instance id>-<seq>`, so a report the
//! agent sends again (its acknowledgement was lost, or the gateway restarted before sending it)
//! is recorded once within the log's duplicate window. A report about a task the control plane
//! did not place on the reporting instance is acknowledged but not recorded: one agent cannot
//! write another instance's tasks.

use berth_agent_protocol::{HealthStatus, TaskPayload, TaskStateChange, TaskStatus};
use berth_eventlog::Append;
use berth_events::{Aggregate, ContainerState, PortAssignment, TaskStateReported};
use tracing::{debug, warn};

use crate::arn;
use crate::error::GatewayError;
use crate::gateway::Shared;
use crate::payload;
use crate::read_model::tasks::{self, TaskRow};
use crate::registration::Registration;

/// What a report became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// In the log (`duplicate`: it already was).
    Appended { sequence: u64, duplicate: bool },
    /// Not for the log; why.
    Ignored(String),
}

/// What recording the reports of one task needs. A session keeps it for the tasks it handed
/// over (it comes with building the payload); for others it is read from the read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportTarget {
    pub cluster: String,
    pub instance_id: Option<String>,
    /// Correlation id of the request that started the task, carried on to its reports.
    pub correlation: Option<String>,
    /// The essential containers with a health check, which decide the task's health; `None`
    /// when the definition is not known.
    pub checked: Option<Vec<String>>,
}

impl ReportTarget {
    /// The target of `task`, whose payload is `payload`.
    pub fn new(task: &TaskRow, payload: &TaskPayload) -> Self {
        Self {
            cluster: task.cluster.clone(),
            instance_id: task.instance_id.clone(),
            correlation: task.correlation.clone(),
            checked: task.spec.as_ref().map(|_| {
                payload
                    .containers
                    .iter()
                    .filter(|c| c.essential && c.health_check.is_some())
                    .map(|c| c.name.clone())
                    .collect()
            }),
        }
    }

    /// The target of task `task_id` as the read model has it.
    async fn load(shared: &Shared, task_id: &str) -> Result<Option<Self>, GatewayError> {
        let Some(task) = tasks::get(shared.db(), task_id).await? else {
            return Ok(None);
        };
        let arn = shared.arns.task(&task.cluster, &task.id);
        let payload = payload::task_payload(arn, &task, task.desired_status(), &shared.definitions);
        Ok(Some(Self::new(&task, &payload)))
    }
}

/// Records one report of the agent holding `registration`; `known` is what the session knows
/// of the task, if it handed it over.
pub(crate) async fn record(
    shared: &Shared,
    registration: &Registration,
    change: &TaskStateChange,
    known: Option<&ReportTarget>,
) -> Result<Recorded, GatewayError> {
    let Some(task_id) = arn::task_id(&change.task.task_arn) else {
        return Ok(Recorded::Ignored(format!(
            "not a task ARN: {:?}",
            change.task.task_arn
        )));
    };
    let loaded;
    let target = match known {
        Some(target) => target,
        None => match ReportTarget::load(shared, task_id).await? {
            Some(target) => {
                loaded = target;
                &loaded
            }
            None => return Ok(Recorded::Ignored("unknown task".to_owned())),
        },
    };
    if target.cluster != registration.cluster
        || target.instance_id.as_deref() != Some(registration.instance_id.as_str())
    {
        return Ok(Recorded::Ignored(
            "task is not placed on this container instance".to_owned(),
        ));
    }
    let event = to_event(change, target.checked.as_deref());
    let mut meta = shared.meta();
    meta.correlation_id = target
        .correlation
        .as_deref()
        .and_then(|id| uuid::Uuid::parse_str(id).ok());
    let aggregate = Aggregate::Task {
        cluster: target.cluster.clone(),
        id: task_id.to_owned(),
    };
    let append = Append::new(aggregate, event, meta).idempotency_key(format!(
        "report-{}-{}",
        registration.instance_id, change.seq
    ));
    let appended = shared.log.append(append).await?;
    if appended.duplicate {
        debug!(seq = change.seq, "report already recorded");
    }
    Ok(Recorded::Appended {
        sequence: appended.sequence,
        duplicate: appended.duplicate,
    })
}

/// Whether `change` is the task's last report (nothing more will be recorded for it).
pub(crate) fn is_final(change: &TaskStateChange) -> bool {
    change.task.status == TaskStatus::Stopped
}

/// The report as an event; task health follows ECS: the essential containers with a health
/// check (`checked`) decide it.
fn to_event(change: &TaskStateChange, checked: Option<&[String]>) -> TaskStateReported {
    TaskStateReported {
        last_status: change.task.status.as_str().to_owned(),
        containers: change
            .task
            .containers
            .iter()
            .map(|container| ContainerState {
                name: container.name.clone(),
                runtime_id: container.runtime_id.clone(),
                last_status: container.status.as_str().to_owned(),
                exit_code: container.exit_code,
                reason: container.reason.clone(),
                network_bindings: container
                    .network_bindings
                    .iter()
                    .map(|binding| PortAssignment {
                        container_name: container.name.clone(),
                        container_port: binding.container_port,
                        host_port: binding.host_port,
                        protocol: binding.protocol.as_str().to_owned(),
                        bind_ip: Some(binding.bind_ip.clone()),
                    })
                    .collect(),
                health_status: Some(container.health_status.as_str().to_owned()),
            })
            .collect(),
        stop_code: change.task.stop_code.map(|code| code.as_str().to_owned()),
        stopped_reason: change.task.reason.clone(),
        health_status: Some(task_health(change, checked).as_str().to_owned()),
        pull_started_at: None,
        pull_stopped_at: change.task.pulled_at.map(millis),
        started_at: change.task.started_at.map(millis),
        stopped_at: change.task.stopped_at.map(millis),
    }
}

fn millis(at: berth_agent_protocol::EpochMillis) -> i64 {
    i64::try_from(at.0).unwrap_or(i64::MAX)
}

/// UNHEALTHY if a deciding container is, HEALTHY if all are, else UNKNOWN. Deciding: the
/// `checked` containers; without the definition, those reporting health.
fn task_health(change: &TaskStateChange, checked: Option<&[String]>) -> HealthStatus {
    let deciding: Vec<HealthStatus> = change
        .task
        .containers
        .iter()
        .filter(|c| match checked {
            Some(names) => names.contains(&c.name),
            None => c.health_status != HealthStatus::Unknown,
        })
        .map(|c| c.health_status)
        .collect();
    if deciding.contains(&HealthStatus::Unhealthy) {
        return HealthStatus::Unhealthy;
    }
    if !deciding.is_empty() && deciding.iter().all(|h| *h == HealthStatus::Healthy) {
        return HealthStatus::Healthy;
    }
    HealthStatus::Unknown
}

/// Logs an ignored report where it is handled.
pub(crate) fn log_ignored(change: &TaskStateChange, reason: &str) {
    warn!(
        task_arn = change.task.task_arn,
        seq = change.seq,
        reason,
        "report not recorded"
    );
}

#[cfg(test)]
mod tests {
    use berth_agent_protocol::{
        ContainerStateChange, EpochMillis, NetworkBinding, TaskStatus, TaskStopCode,
        TransportProtocol,
    };
    use serde_json::json;

    use super::*;
    use crate::read_model::tasks::{RUNNING, TaskSpec};

    fn container(name: &str, health: HealthStatus) -> ContainerStateChange {
        ContainerStateChange {
            name: name.into(),
            runtime_id: Some("abc".into()),
            status: TaskStatus::Stopped,
            exit_code: Some(137),
            reason: Some("killed".into()),
            network_bindings: vec![NetworkBinding {
                bind_ip: "::".into(),
                container_port: 80,
                host_port: 32768,
                protocol: TransportProtocol::Udp,
            }],
            health_status: health,
        }
    }

    fn task(definition: serde_json::Value) -> TaskRow {
        TaskRow {
            id: "t".into(),
            cluster: "c".into(),
            instance_id: Some("i".into()),
            family: "f".into(),
            revision: 1,
            spec: Some(TaskSpec {
                definition: serde_json::value::to_raw_value(&definition).expect("raw"),
                overrides: None,
                ports: Vec::new(),
            }),
            desired: RUNNING.into(),
            stop_reason: None,
            last_status: None,
            correlation: None,
            version: 1,
            acked: None,
        }
    }

    #[test]
    fn reports_map_onto_the_event() {
        let change = TaskStateChange {
            task: berth_agent_protocol::TaskSnapshot {
                task_arn: "arn:aws:ecs:r:a:task/c/t".into(),
                status: TaskStatus::Stopped,
                reason: Some("Essential container in task exited".into()),
                stop_code: Some(TaskStopCode::EssentialContainerExited),
                containers: vec![container("app", HealthStatus::Healthy)],
                pulled_at: Some(EpochMillis(1)),
                started_at: Some(EpochMillis(2)),
                stopped_at: Some(EpochMillis(3)),
            },
            seq: 9,
        };
        let event = to_event(&change, Some(&[]));
        assert_eq!(event.last_status, "STOPPED");
        assert_eq!(event.stop_code.as_deref(), Some("EssentialContainerExited"));
        assert_eq!(
            event.stopped_reason.as_deref(),
            Some("Essential container in task exited")
        );
        assert_eq!(
            (event.pull_stopped_at, event.started_at, event.stopped_at),
            (Some(1), Some(2), Some(3))
        );
        let app = &event.containers[0];
        assert_eq!(app.last_status, "STOPPED");
        assert_eq!(app.exit_code, Some(137));
        assert_eq!(app.runtime_id.as_deref(), Some("abc"));
        assert_eq!(app.health_status.as_deref(), Some("HEALTHY"));
        assert_eq!(
            app.network_bindings,
            [PortAssignment {
                container_name: "app".into(),
                container_port: 80,
                host_port: 32768,
                protocol: "udp".into(),
                bind_ip: Some("::".into()),
            }]
        );
    }

    #[test]
    fn task_health_follows_essential_checked_containers() {
        let definition = json!({"containerDefinitions": [
            {"name": "app", "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "side", "essential": false, "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "plain"}
        ]});
        let task = task(definition);
        let payload = payload::task_payload(
            "arn".into(),
            &task,
            task.desired_status(),
            &payload::ParsedDefinitions::default(),
        );
        let target = ReportTarget::new(&task, &payload);
        assert_eq!(target.checked, Some(vec!["app".to_owned()]));
        let health = |app, side| {
            let change = TaskStateChange {
                task: berth_agent_protocol::TaskSnapshot {
                    task_arn: String::new(),
                    status: TaskStatus::Running,
                    reason: None,
                    stop_code: None,
                    containers: vec![
                        container("app", app),
                        container("side", side),
                        container("plain", HealthStatus::Unknown),
                    ],
                    pulled_at: None,
                    started_at: None,
                    stopped_at: None,
                },
                seq: 1,
            };
            task_health(&change, target.checked.as_deref())
        };
        assert_eq!(
            health(HealthStatus::Healthy, HealthStatus::Unhealthy),
            HealthStatus::Healthy
        );
        assert_eq!(
            health(HealthStatus::Unhealthy, HealthStatus::Healthy),
            HealthStatus::Unhealthy
        );
        assert_eq!(
            health(HealthStatus::Unknown, HealthStatus::Healthy),
            HealthStatus::Unknown
        );
    }
}
