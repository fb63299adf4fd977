//! Delivering placements and stop requests to agents, exactly once as far as the agent can
//! tell.
//!
//! The read model says what each task should be (projected from the log) and what the agent has
//! acknowledged (`ag_deliveries`, written here). A session sends a `PayloadMessage` for every
//! task whose wanted status the agent has not acknowledged: when it connects, and whenever the
//! projection commits a placement or a stop for its instance ([`dispatch`]). Within a session a
//! task is sent once per wanted status, and again only if its message stays unacknowledged for a
//! heartbeat timeout (an agent whose runtime is down leaves payloads unacknowledged without
//! reconnecting); after a reconnect or a gateway restart whatever is still unacknowledged is sent
//! again. The agent dedupes by task ARN, so a resend after a lost ack is
//! harmless; an acknowledged payload is never resent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_agent_protocol::{DesiredStatus, PayloadMessage, TaskPayload};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;
use uuid::Uuid;

use crate::error::GatewayError;
use crate::gateway::Shared;
use crate::payload;
use crate::read_model::tasks::{self, TaskRow};
use crate::read_model::{Notice, deliveries};
use crate::sessions::SessionCommand;

/// Tasks per `PayloadMessage`: keeps frames small when an agent has a long backlog.
const TASKS_PER_MESSAGE: usize = 50;

/// One task to hand to the agent.
pub(crate) struct Outgoing {
    pub payload: TaskPayload,
    /// The task and wanted status whose acknowledgement is recorded; `None` for stops of tasks
    /// the control plane does not place here (nothing to record).
    pub tracked: Option<(String, DesiredStatus)>,
}

impl Outgoing {
    /// The task brought to the status the control plane wants for it.
    pub fn wanted(shared: &Shared, task: &TaskRow) -> Self {
        let desired = task.desired_status();
        Self {
            payload: payload::task_payload(
                shared.arns.task(&task.cluster, &task.id),
                task,
                desired,
            ),
            tracked: Some((task.id.clone(), desired)),
        }
    }
}

/// One session's view of its deliveries.
pub(crate) struct Deliveries {
    instance_id: String,
    /// The wanted status last sent per task in this session.
    sent: HashMap<String, DesiredStatus>,
    /// Messages awaiting the agent's `Ack`, with the tasks they carry.
    in_flight: HashMap<String, InFlight>,
}

struct InFlight {
    sent_at: Instant,
    tasks: Vec<(String, DesiredStatus)>,
}

impl Deliveries {
    pub fn new(instance_id: &str) -> Self {
        Self {
            instance_id: instance_id.to_owned(),
            sent: HashMap::new(),
            in_flight: HashMap::new(),
        }
    }

    /// Messages for every task the agent has not acknowledged and this session has not sent.
    pub async fn undelivered(
        &mut self,
        shared: &Shared,
    ) -> Result<Vec<PayloadMessage>, GatewayError> {
        let rows = tasks::undelivered(shared.db(), &self.instance_id).await?;
        let outgoing: Vec<Outgoing> = rows
            .iter()
            .filter(|task| !self.was_sent(&task.id, task.desired_status()))
            .map(|task| Outgoing::wanted(shared, task))
            .collect();
        Ok(self.package(outgoing))
    }

    /// Whether this session already sent `task_id` with `desired`.
    pub fn was_sent(&self, task_id: &str, desired: DesiredStatus) -> bool {
        self.sent.get(task_id) == Some(&desired)
    }

    /// Packs tasks into messages and remembers them as sent and awaiting acknowledgement.
    pub fn package(&mut self, outgoing: Vec<Outgoing>) -> Vec<PayloadMessage> {
        let mut messages = Vec::new();
        let mut outgoing = outgoing.into_iter().peekable();
        while outgoing.peek().is_some() {
            let message_id = Uuid::new_v4().to_string();
            let mut tracked = Vec::new();
            let mut payloads = Vec::new();
            for item in outgoing.by_ref().take(TASKS_PER_MESSAGE) {
                if let Some((task_id, desired)) = item.tracked {
                    self.sent.insert(task_id.clone(), desired);
                    tracked.push((task_id, desired));
                }
                payloads.push(item.payload);
            }
            self.in_flight.insert(
                message_id.clone(),
                InFlight {
                    sent_at: Instant::now(),
                    tasks: tracked,
                },
            );
            messages.push(PayloadMessage {
                message_id,
                tasks: payloads,
            });
        }
        messages
    }

    /// The agent acknowledged `message_id`: records every task it carried as delivered.
    pub async fn acked(&mut self, shared: &Shared, message_id: &str) -> Result<(), GatewayError> {
        let Some(in_flight) = self.in_flight.remove(message_id) else {
            debug!(
                message_id,
                "ack for a message this session no longer awaits; ignored"
            );
            return Ok(());
        };
        if in_flight.tasks.is_empty() {
            return Ok(());
        }
        if let Err(error) = deliveries::record_acks(shared.db(), &in_flight.tasks).await {
            // Not recorded: the tasks go out again later, which the agent dedupes.
            self.in_flight.insert(message_id.to_owned(), in_flight);
            return Err(error.into());
        }
        debug!(
            message_id,
            tasks = in_flight.tasks.len(),
            "payload acknowledged"
        );
        Ok(())
    }

    /// Gives up waiting for messages sent more than `patience` ago: their tasks count as unsent,
    /// so the next delivery sends them again. Returns whether any expired.
    pub fn expire(&mut self, patience: Duration) -> bool {
        let now = Instant::now();
        let expired: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(_, message)| now.duration_since(message.sent_at) >= patience)
            .map(|(message_id, _)| message_id.clone())
            .collect();
        for message_id in &expired {
            let Some(message) = self.in_flight.remove(message_id) else {
                continue;
            };
            debug!(
                message_id,
                "payload not acknowledged in time; will send again"
            );
            for (task_id, desired) in message.tasks {
                if self.sent.get(&task_id) == Some(&desired) {
                    self.sent.remove(&task_id);
                }
            }
        }
        !expired.is_empty()
    }
}

/// Turns the projection's notices into `Deliver` (and `Close`) commands for the sessions this
/// gateway holds, once the batch that caused them is committed. Ends when the projection does.
pub(crate) async fn dispatch(shared: Arc<Shared>, mut notices: mpsc::UnboundedReceiver<Notice>) {
    while let Some(mut notice) = notices.recv().await {
        while let Ok(more) = notices.try_recv() {
            notice.merge(more);
        }
        while shared
            .projection
            .wait_for(notice.sequence, Duration::from_secs(5))
            .await
            .is_err()
        {
            if shared.shutting_down() {
                return;
            }
        }
        for instance_id in &notice.deregistered {
            shared.sessions.send(
                instance_id,
                SessionCommand::Close("container instance deregistered".to_owned()),
            );
        }
        for instance_id in &notice.deliver {
            shared.sessions.send(instance_id, SessionCommand::Deliver);
        }
    }
}
