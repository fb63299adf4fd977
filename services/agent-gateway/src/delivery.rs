//! Delivering placements and stop requests to agents, exactly once as far as the agent can
//! tell.
//!
//! The read model says what each task should be (projected from the log) and what the agent has
//! acknowledged (`ag_deliveries`, written here). A session sends a `PayloadMessage` for every
//! task whose wanted status the agent has not acknowledged: when it connects it reads them from
//! the read model (a sweep); after that the projection hands it every placement or stop for its
//! instance as it commits them ([`dispatch`]), so the steady state costs no query. Acks are
//! written in the background, many sessions' at once ([`AckRecorder`]); a sweep first waits for
//! the acks already received. Within a session a
//! task is sent once per wanted status, and again only if its message stays unacknowledged for a
//! heartbeat timeout (an agent whose runtime is down leaves payloads unacknowledged without
//! reconnecting); after a reconnect or a gateway restart whatever is still unacknowledged is sent
//! again. The agent dedupes by task ARN, so a resend after a lost ack is
//! harmless; an acknowledged payload is never resent.

use std::sync::Arc;
use std::time::Duration;

use berth_agent_protocol::{DesiredStatus, PayloadMessage, TaskPayload};
use berth_projection::ReadModel;
use foldhash::{HashMap, HashMapExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, error, warn};
use uuid::Uuid;

use crate::error::GatewayError;
use crate::gateway::Shared;
use crate::payload;
use crate::read_model::tasks::{self, TaskRow};
use crate::read_model::{Notice, deliveries};
use crate::reports::ReportTarget;
use crate::sessions::SessionCommand;

/// Tasks per `PayloadMessage`: keeps frames small when an agent has a long backlog.
const TASKS_PER_MESSAGE: usize = 50;

/// How long acks are gathered before they are written. An ack not yet written when the
/// gateway stops only means its payload is sent again, which the agent dedupes.
const ACK_GATHERING: Duration = Duration::from_millis(100);

/// Attempts to write a burst of acks before giving up on it (the payloads are then sent again
/// after a restart, which agents dedupe).
const ACK_WRITE_ATTEMPTS: u32 = 3;

/// One task to hand to the agent.
pub(crate) struct Outgoing {
    pub payload: TaskPayload,
    /// The task and wanted status whose acknowledgement is recorded; `None` for stops of tasks
    /// the control plane does not place here (nothing to record).
    pub tracked: Option<(String, DesiredStatus)>,
    /// What recording the task's reports needs, known once its payload is built.
    pub report_target: Option<ReportTarget>,
}

impl Outgoing {
    /// The task brought to the status the control plane wants for it.
    pub fn wanted(shared: &Shared, task: &TaskRow) -> Self {
        let desired = task.desired_status();
        let payload = payload::task_payload(
            shared.arns.task(&task.cluster, &task.id),
            task,
            desired,
            &shared.definitions,
        );
        Self {
            report_target: Some(ReportTarget::new(task, &payload)),
            payload,
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
    /// Per task handed over in this session, what recording its reports needs.
    report_targets: HashMap<String, ReportTarget>,
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
            report_targets: HashMap::new(),
        }
    }

    /// Messages for every task the agent has not acknowledged and this session has not sent,
    /// read from the read model once the acks already received are written.
    pub async fn undelivered(
        &mut self,
        shared: &Shared,
    ) -> Result<Vec<PayloadMessage>, GatewayError> {
        shared.acks.flushed().await;
        let rows = tasks::undelivered(shared.db(), &shared.live_tasks, &self.instance_id).await?;
        Ok(self.outgoing(shared, &rows))
    }

    /// Messages for those of `tasks` this session has not sent yet with their wanted status.
    pub fn outgoing(&mut self, shared: &Shared, tasks: &[TaskRow]) -> Vec<PayloadMessage> {
        let outgoing: Vec<Outgoing> = tasks
            .iter()
            .filter(|task| !self.was_sent(&task.id, task.desired_status()))
            .map(|task| Outgoing::wanted(shared, task))
            .collect();
        self.package(outgoing)
    }

    /// What recording a report of `task_id` needs, if this session handed the task over.
    pub fn report_target(&self, task_id: &str) -> Option<&ReportTarget> {
        self.report_targets.get(task_id)
    }

    /// The task stopped: its reports need nothing more.
    pub fn forget(&mut self, task_id: &str) {
        self.report_targets.remove(task_id);
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
                    if let Some(target) = item.report_target {
                        self.report_targets.insert(task_id.clone(), target);
                    }
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

    /// The agent acknowledged `message_id`: every task it carried is recorded as delivered (in
    /// the background).
    pub fn acked(&mut self, shared: &Shared, message_id: &str) {
        let Some(in_flight) = self.in_flight.remove(message_id) else {
            debug!(
                message_id,
                "ack for a message this session no longer awaits; ignored"
            );
            return;
        };
        debug!(
            message_id,
            tasks = in_flight.tasks.len(),
            "payload acknowledged"
        );
        if !in_flight.tasks.is_empty() {
            shared.acks.record(in_flight.tasks);
        }
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

/// Turns the projection's notices into commands for the sessions this gateway holds, once the
/// batch that caused them is committed. Rows of replayed history may be long superseded (the
/// task may have stopped since), so for those the sessions sweep the read model instead. Ends
/// when the projection does.
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
        let replayed = shared.projection.replayed(notice.sequence);
        for (instance_id, rows) in notice.deliver {
            let command = match replayed {
                true => SessionCommand::Sweep,
                false => SessionCommand::Deliver(rows),
            };
            shared.sessions.send(&instance_id, command);
        }
    }
}

/// Records the acks of every session in the background: a session never waits for the
/// database, and a burst of acks from many agents costs one write.
pub(crate) struct AckRecorder {
    commands: mpsc::UnboundedSender<AckCommand>,
}

enum AckCommand {
    Record(Vec<(String, DesiredStatus)>),
    /// Answered once everything recorded before it is written (or given up).
    Flush(oneshot::Sender<()>),
}

impl AckRecorder {
    /// The recorder, and the writer to run (until the recorder is dropped).
    pub fn new(read_model: ReadModel) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (commands, received) = mpsc::unbounded_channel();
        (Self { commands }, write_acks(read_model, received))
    }

    /// Queues the acknowledgement of these tasks with these wanted statuses.
    pub fn record(&self, tasks: Vec<(String, DesiredStatus)>) {
        if self.commands.send(AckCommand::Record(tasks)).is_err() {
            debug!("ack writer stopped; the payloads will be sent again after a restart");
        }
    }

    /// Waits until every ack queued before this call is written.
    pub async fn flushed(&self) {
        let (done, written) = oneshot::channel();
        if self.commands.send(AckCommand::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }
}

async fn write_acks(read_model: ReadModel, mut commands: mpsc::UnboundedReceiver<AckCommand>) {
    let mut acks = Vec::new();
    let mut flushes = Vec::new();
    while let Some(command) = commands.recv().await {
        // Gather acks for a moment (unless someone waits for them): one transaction for
        // many, since each one also takes the read model's writer from the projection.
        let gathered_until = Instant::now() + ACK_GATHERING;
        let mut next = Some(command);
        loop {
            while let Some(command) = next {
                match command {
                    AckCommand::Record(tasks) => acks.extend(tasks),
                    AckCommand::Flush(done) => flushes.push(done),
                }
                next = commands.try_recv().ok();
            }
            if !flushes.is_empty() {
                break;
            }
            match tokio::time::timeout_at(gathered_until, commands.recv()).await {
                Ok(Some(command)) => next = Some(command),
                Ok(None) | Err(_) => break,
            }
        }
        for attempt in 1..=ACK_WRITE_ATTEMPTS {
            if acks.is_empty() {
                break;
            }
            match deliveries::record_acks(&read_model, &acks).await {
                Ok(()) => acks.clear(),
                Err(error) if attempt < ACK_WRITE_ATTEMPTS => {
                    warn!(%error, attempt, "could not record acks; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => {
                    error!(%error, tasks = acks.len(), "could not record acks; their payloads will be sent again after a restart");
                    acks.clear();
                }
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
