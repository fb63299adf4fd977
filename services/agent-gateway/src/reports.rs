//! `TaskStateChange` from an agent -> `TaskStateReported` in the log.
//!
//! Reports are appended with the idempotency key `report-<instance id>-<seq>`, so a report the
//! agent sends again (its acknowledgement was lost, or the gateway restarted before sending it)
//! is recorded once within the log's duplicate window. A report about a task the control plane
//! did not place on the reporting instance is acknowledged but not recorded: one agent cannot
//! write another instance's tasks.

use berth_agent_protocol::{HealthStatus, TaskStateChange};
use berth_eventlog::Append;
use berth_events::{Aggregate, ContainerState, PortAssignment, TaskStateReported};
use serde_json::Value;
use tracing::{debug, warn};

use crate::arn;
use crate::error::GatewayError;
use crate::gateway::Shared;
use crate::read_model::tasks::{self, TaskRow, TaskSpec};
use crate::registration::Registration;

/// What became of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// In the log (`duplicate`: it already was).
    Appended { sequence: u64, duplicate: bool },
    /// Not for the log; why.
    Ignored(String),
}

/// Records one report of the agent holding `registration`.
pub(crate) async fn record(
    shared: &Shared,
    registration: &Registration,
    change: &TaskStateChange,
) -> Result<Recorded, GatewayError> {
    let Some(task_id) = arn::task_id(&change.task.task_arn) else {
        return Ok(Recorded::Ignored(format!(
            "not a task ARN: {:?}",
            change.task.task_arn
        )));
    };
    let Some(task) = tasks::get(shared.db(), task_id).await? else {
        return Ok(Recorded::Ignored("unknown task".to_owned()));
    };
    if task.cluster != registration.cluster
        || task.instance_id.as_deref() != Some(registration.instance_id.as_str())
    {
        return Ok(Recorded::Ignored(
            "task is not placed on this container instance".to_owned(),
        ));
    }
    let event = to_event(change, &task);
    let mut meta = shared.meta();
    meta.correlation_id = task
        .correlation
        .as_deref()
        .and_then(|id| uuid::Uuid::parse_str(id).ok());
    let aggregate = Aggregate::Task {
        cluster: task.cluster.clone(),
        id: task.id.clone(),
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

/// The report as an event; task health follows ECS: the essential containers with a health
/// check decide it.
fn to_event(change: &TaskStateChange, task: &TaskRow) -> TaskStateReported {
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
                    })
                    .collect(),
                health_status: Some(container.health_status.as_str().to_owned()),
            })
            .collect(),
        stop_code: change.task.stop_code.map(|code| code.as_str().to_owned()),
        stopped_reason: change.task.reason.clone(),
        health_status: Some(task_health(change, task.spec.as_ref()).as_str().to_owned()),
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
/// essential containers with a health check; without the definition, those reporting health.
fn task_health(change: &TaskStateChange, spec: Option<&TaskSpec>) -> HealthStatus {
    let checked = spec.map(|spec| checked_essentials(&spec.definition));
    let deciding: Vec<HealthStatus> = change
        .task
        .containers
        .iter()
        .filter(|c| match &checked {
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

fn checked_essentials(definition: &Value) -> Vec<String> {
    definition
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|c| c.get("essential").and_then(Value::as_bool) != Some(false))
        .filter(|c| c.get("healthCheck").is_some_and(Value::is_object))
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
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
    use crate::read_model::tasks::RUNNING;

    fn container(name: &str, health: HealthStatus) -> ContainerStateChange {
        ContainerStateChange {
            name: name.into(),
            runtime_id: Some("abc".into()),
            status: TaskStatus::Stopped,
            exit_code: Some(137),
            reason: Some("killed".into()),
            network_bindings: vec![NetworkBinding {
                bind_ip: "0.0.0.0".into(),
                container_port: 80,
                host_port: 32768,
                protocol: TransportProtocol::Udp,
            }],
            health_status: health,
        }
    }

    fn task(definition: Value) -> TaskRow {
        TaskRow {
            id: "t".into(),
            cluster: "c".into(),
            instance_id: Some("i".into()),
            family: "f".into(),
            revision: 1,
            spec: Some(TaskSpec {
                definition,
                overrides: None,
                ports: Vec::new(),
            }),
            desired: RUNNING.into(),
            stop_reason: None,
            last_status: None,
            correlation: None,
            version: 1,
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
        let event = to_event(&change, &task(json!({})));
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
                protocol: "udp".into()
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
        let spec = TaskSpec {
            definition,
            overrides: None,
            ports: Vec::new(),
        };
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
            task_health(&change, Some(&spec))
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
