//! `StateReport`: after each (re)connect the agent lists what really runs, and the gateway
//! brings it in line with what the control plane wants (intent and observation kept apart: the
//! log says what should run, the report what does).
//!
//! - A task that runs there but should not (the control plane wants it stopped, does not know
//!   it, or placed it on another instance) gets a stop.
//! - A task placed there, wanted RUNNING and not reported stopped, that the agent does not list
//!   gets its payload again, whatever was acknowledged: the agent dedupes by ARN, so a task it
//!   has run is reported again rather than started twice.

use berth_agent_protocol::{DesiredStatus, PayloadMessage, StateReport, TaskSnapshot, TaskStatus};
use foldhash::{HashMap, HashSet, HashSetExt};

use crate::arn;
use crate::delivery::{Deliveries, Outgoing};
use crate::error::GatewayError;
use crate::gateway::Shared;
use crate::payload;
use crate::read_model::tasks::{self, TaskRow};
use crate::registration::Registration;

const UNKNOWN_TASK: &str = "Task is not known to the control plane";
const PLACED_ELSEWHERE: &str = "Task is placed on another container instance";

/// One thing to do about the report.
#[derive(Debug, PartialEq)]
enum Action<'a> {
    /// Bring a task of this instance to what the control plane wants (start, or stop).
    Want(&'a TaskRow),
    /// Stop a task that has no business here.
    Evict {
        arn: String,
        task: Option<&'a TaskRow>,
        reason: &'static str,
    },
}

/// The payload messages that reconcile the agent holding `registration` with its `report`.
pub(crate) async fn reconcile(
    shared: &Shared,
    registration: &Registration,
    deliveries: &mut Deliveries,
    report: &StateReport,
) -> Result<Vec<PayloadMessage>, GatewayError> {
    let ids: Vec<String> = report
        .running
        .iter()
        .filter_map(|snapshot| arn::task_id(&snapshot.task_arn))
        .map(str::to_owned)
        .collect();
    let known = tasks::get_many(shared.db(), &ids).await?;
    let wanted =
        tasks::wanted_on(shared.db(), &shared.live_tasks, &registration.instance_id).await?;
    let outgoing = plan(&registration.instance_id, &report.running, &known, &wanted)
        .into_iter()
        .filter_map(|action| match action {
            Action::Want(task) if deliveries.was_sent(&task.id, task.desired_status()) => None,
            Action::Want(task) => Some(Outgoing::wanted(shared, task)),
            Action::Evict { arn, task, reason } => Some(Outgoing {
                payload: payload::stop_payload(arn, task, reason.to_owned()),
                tracked: None,
                report_target: None,
            }),
        })
        .collect();
    Ok(deliveries.package(outgoing))
}

/// Decides, purely, what to do: `known` holds the read model's rows for the reported tasks,
/// `wanted` the tasks this instance should run.
fn plan<'a>(
    instance_id: &str,
    reported: &[TaskSnapshot],
    known: &'a HashMap<String, TaskRow>,
    wanted: &'a [TaskRow],
) -> Vec<Action<'a>> {
    let mut actions = Vec::new();
    let mut listed = HashSet::new();
    for snapshot in reported {
        let id = arn::task_id(&snapshot.task_arn);
        if let Some(id) = id {
            listed.insert(id);
        }
        if snapshot.status == TaskStatus::Stopped {
            continue;
        }
        let task = id.and_then(|id| known.get(id));
        let evict = |reason| Action::Evict {
            arn: snapshot.task_arn.clone(),
            task,
            reason,
        };
        match task {
            None => actions.push(evict(UNKNOWN_TASK)),
            Some(task) if task.instance_id.as_deref() != Some(instance_id) => {
                actions.push(evict(PLACED_ELSEWHERE));
            }
            Some(task) if task.desired_status() == DesiredStatus::Stopped => {
                actions.push(Action::Want(task));
            }
            Some(_) => {}
        }
    }
    actions.extend(
        wanted
            .iter()
            .filter(|task| !listed.contains(task.id.as_str()))
            .map(Action::Want),
    );
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_model::tasks::{RUNNING, STOPPED};

    fn row(id: &str, instance: &str, desired: &str) -> TaskRow {
        TaskRow {
            id: id.into(),
            cluster: "c".into(),
            instance_id: Some(instance.into()),
            family: "f".into(),
            revision: 1,
            spec: None,
            desired: desired.into(),
            stop_reason: None,
            last_status: Some("RUNNING".into()),
            correlation: None,
            version: 1,
            acked: None,
        }
    }

    fn snapshot(id: &str, status: TaskStatus) -> TaskSnapshot {
        TaskSnapshot {
            task_arn: format!("arn:aws:ecs:r:a:task/c/{id}"),
            status,
            reason: None,
            stop_code: None,
            containers: Vec::new(),
            pulled_at: None,
            started_at: None,
            stopped_at: None,
        }
    }

    #[test]
    fn what_runs_is_brought_in_line_with_what_is_wanted() {
        let known: HashMap<String, TaskRow> = [
            row("keep", "i", RUNNING),
            row("stop", "i", STOPPED),
            row("moved", "other", RUNNING),
        ]
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
        let wanted = vec![row("keep", "i", RUNNING), row("missing", "i", RUNNING)];
        let reported = vec![
            snapshot("keep", TaskStatus::Running),
            snapshot("stop", TaskStatus::Running),
            snapshot("moved", TaskStatus::Pending),
            snapshot("stranger", TaskStatus::Running),
            snapshot("done", TaskStatus::Stopped),
        ];
        let actions = plan("i", &reported, &known, &wanted);
        let summary: Vec<String> = actions
            .iter()
            .map(|action| match action {
                Action::Want(task) => format!("want {} {}", task.id, task.desired),
                Action::Evict { arn, reason, .. } => {
                    format!("evict {} {reason}", arn.rsplit('/').next().unwrap_or(""))
                }
            })
            .collect();
        assert_eq!(
            summary,
            [
                "want stop STOPPED".to_owned(),
                format!("evict moved {PLACED_ELSEWHERE}"),
                format!("evict stranger {UNKNOWN_TASK}"),
                "want missing RUNNING".to_owned(),
            ]
        );
    }
}
