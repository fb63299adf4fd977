//! One agent's session, from `RegisterInstance` to disconnect.
//!
//! The session owns the socket: it answers heartbeats, records reports, delivers payloads and
//! reconciles, one frame at a time, so frames to and from one agent stay in order. Liveness:
//! the gateway sends a `HeartbeatMessage` every third of the heartbeat timeout, and any frame
//! from the agent (an answer or anything else) counts as alive; an agent silent for the whole
//! timeout is disconnected.
//!
//! Report acknowledgements are cumulative, so the session owes at most one: it goes out with
//! the next frame the session sends anyway (one write for both), or alone once
//! [`REPORT_ACK_DELAY`] has passed. An agent that reports often gets one ack per write instead
//! of one per report, and a burst of reports (a batch, a reconnect) is acknowledged once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocket;
use berth_agent_protocol::{
    AgentFrame, GatewayFrame, HeartbeatMessage, PayloadMessage, RegisterInstance, Registered,
    RegistrationRefused, StateReport, TaskStateAck, TaskStateChange,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, debug, error, field, info, info_span, warn};
use uuid::Uuid;

use crate::delivery::Deliveries;
use crate::gateway::Shared;
use crate::link::{Incoming, Link};
use crate::registration::{self, Outcome, Registration};
use crate::reports::{self, Recorded};
use crate::sessions::SessionCommand;
use crate::{presence, reconcile};

/// How long a report's acknowledgement may wait for a frame to travel with. The agent only
/// keeps the report until then (it is already recorded in the log).
const REPORT_ACK_DELAY: Duration = Duration::from_millis(500);

/// Serves one WebSocket connection until it ends.
pub(crate) async fn run(shared: Arc<Shared>, socket: WebSocket, peer: Option<SocketAddr>) {
    let open = shared.sessions.open();
    let span = info_span!(
        "agent_session",
        session = open.id,
        peer = ?peer,
        cluster = field::Empty,
        instance_id = field::Empty,
    );
    let link = Link::new(socket, shared.options.heartbeat_timeout);
    serve(&shared, link, peer, open.id).instrument(span).await;
}

async fn serve(shared: &Arc<Shared>, mut link: Link, peer: Option<SocketAddr>, session_id: u64) {
    let request = match first_frame(shared, &mut link).await {
        Ok(request) => request,
        Err(None) => return,
        Err(Some(reason)) => {
            warn!(reason, "connection refused before registration");
            link.close_with(&reason).await;
            return;
        }
    };
    let registration = match registration::register(shared, request, peer).await {
        Ok(Outcome::Accepted(registration)) => registration,
        Ok(Outcome::Refused(reason)) => {
            warn!(reason, "registration refused");
            let refusal = GatewayFrame::RegistrationRefused(RegistrationRefused { reason });
            if let Err(error) = link.send(&refusal).await {
                debug!(%error, "could not send RegistrationRefused");
            }
            link.close().await;
            return;
        }
        Err(error) => {
            error!(%error, "registration failed");
            link.close_with("registration failed; retry").await;
            return;
        }
    };
    let span = tracing::Span::current();
    span.record("cluster", registration.cluster.as_str());
    span.record("instance_id", registration.instance_id.as_str());

    let (commands_tx, commands) = mpsc::unbounded_channel();
    let instance_id = registration.instance_id.clone();
    shared
        .sessions
        .install(&instance_id, session_id, commands_tx);
    let connected_seq = match presence::connected(shared, &registration.cluster, &instance_id).await
    {
        Ok(sequence) => sequence,
        Err(error) => {
            error!(%error, "could not record the connection");
            shared.sessions.remove(&instance_id, session_id);
            link.close_with("event log unavailable; retry").await;
            return;
        }
    };
    let mut session = Session {
        shared: shared.clone(),
        deliveries: Deliveries::new(&instance_id),
        registration,
        link,
        commands,
        last_seen: Instant::now(),
        deliver_again: false,
        ack_owed: None,
    };
    let end = session.serve().await;
    let Session {
        link, registration, ..
    } = session;
    info!(reason = end.reason, "session ended");
    match end.tell_agent {
        true => link.close_with(&end.reason).await,
        false => link.close().await,
    }
    if !shared.sessions.remove(&instance_id, session_id) {
        debug!("replaced by a newer session; no disconnect recorded");
        return;
    }
    if let Err(error) = presence::disconnected(
        shared,
        &registration.cluster,
        &instance_id,
        connected_seq,
        &end.reason,
    )
    .await
    {
        error!(%error, "could not record the disconnect");
    }
}

/// Waits for `RegisterInstance`. Anything else, or nothing within the heartbeat timeout, is
/// `Err(Some(why))`; a connection closed before registering is `Err(None)`.
async fn first_frame(shared: &Shared, link: &mut Link) -> Result<RegisterInstance, Option<String>> {
    let timeout = shared.options.heartbeat_timeout;
    let deadline = Instant::now() + timeout;
    loop {
        return match tokio::time::timeout_at(deadline, link.recv()).await {
            Ok(Incoming::Frame(AgentFrame::RegisterInstance(request))) => Ok(request),
            Ok(Incoming::Alive) => continue,
            Ok(Incoming::Closed(reason)) => {
                debug!(reason, "closed before registering");
                Err(None)
            }
            Ok(Incoming::Frame(frame)) => Err(Some(format!(
                "expected RegisterInstance, got {}",
                frame.type_name()
            ))),
            Ok(Incoming::Invalid(error)) => Err(Some(format!("invalid frame: {error}"))),
            Err(_) => Err(Some(format!("no RegisterInstance within {timeout:?}"))),
        };
    }
}

/// Why a session ended, and whether to tell the agent.
struct End {
    reason: String,
    tell_agent: bool,
}

impl End {
    fn tell(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            tell_agent: true,
        }
    }

    fn silent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            tell_agent: false,
        }
    }
}

struct Session {
    shared: Arc<Shared>,
    registration: Registration,
    link: Link,
    deliveries: Deliveries,
    commands: mpsc::UnboundedReceiver<SessionCommand>,
    /// When the agent last sent anything.
    last_seen: Instant,
    /// A delivery failed on the read model: try again at the next heartbeat.
    deliver_again: bool,
    /// The highest report recorded but not yet acknowledged, and when the ack must go out.
    ack_owed: Option<(u64, Instant)>,
}

impl Session {
    async fn serve(&mut self) -> End {
        let registered = GatewayFrame::Registered(Registered {
            instance_arn: self.registration.instance_arn.clone(),
            instance_id: self.registration.instance_id.clone(),
        });
        if let Err(end) = self.send(registered).await {
            return end;
        }
        // Everything the agent has not acknowledged, from earlier sessions or gateways.
        if let Err(end) = self.deliver().await {
            return end;
        }
        let end = match self.serve_frames().await {
            Ok(()) => End::silent("stopped"),
            Err(end) => end,
        };
        if end.tell_agent && self.ack_owed.is_some() {
            // The link still works: spare the agent resending what is recorded.
            let _ = self.send_frames(Vec::new()).await;
        }
        end
    }

    async fn serve_frames(&mut self) -> Result<(), End> {
        let timeout = self.shared.options.heartbeat_timeout;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + timeout / 3, timeout / 3);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shutdown = self.shared.shutdown.subscribe();
        loop {
            let idle_deadline = self.last_seen + timeout;
            let ack_deadline = self.ack_owed.map(|(_, deadline)| deadline);
            tokio::select! {
                () = stopping(&mut shutdown) => {
                    return Err(End::tell("gateway shutting down"));
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.on_commands(command).await?,
                    None => return Err(End::tell("session dropped by the gateway")),
                },
                incoming = self.link.recv() => {
                    self.last_seen = Instant::now();
                    match incoming {
                        Incoming::Frame(frame) => self.handle(frame).await?,
                        Incoming::Alive => {}
                        Incoming::Invalid(error) => {
                            warn!(error, "invalid frame from the agent; closing");
                            return Err(End::tell(format!("invalid frame: {error}")));
                        }
                        Incoming::Closed(reason) => return Err(End::silent(reason)),
                    }
                }
                _ = heartbeat.tick() => {
                    if self.deliveries.expire(timeout) || self.deliver_again {
                        self.deliver().await?;
                    }
                    let probe = GatewayFrame::HeartbeatMessage(HeartbeatMessage {
                        message_id: Uuid::new_v4().to_string(),
                    });
                    self.send(probe).await?;
                }
                () = sleep_until_some(ack_deadline) => self.send_frames(Vec::new()).await?,
                () = tokio::time::sleep_until(idle_deadline) => {
                    warn!(?timeout, "agent silent for the heartbeat timeout");
                    return Err(End::tell(format!("heartbeat timeout: nothing received for {timeout:?}")));
                }
            }
        }
    }

    async fn handle(&mut self, frame: AgentFrame) -> Result<(), End> {
        match frame {
            AgentFrame::HeartbeatAck(_) => Ok(()),
            AgentFrame::Ack(ack) => {
                self.deliveries.acked(&self.shared, &ack.message_id);
                Ok(())
            }
            AgentFrame::TaskStateChange(change) => self.report(change).await,
            AgentFrame::StateReport(report) => self.reconcile(report).await,
            AgentFrame::RegisterInstance(_) => {
                warn!("RegisterInstance on a registered session; ignored");
                Ok(())
            }
        }
    }

    /// Handles `first` and every command already queued after it: the tasks of several notices
    /// go out together, and one sweep covers them all.
    async fn on_commands(&mut self, first: SessionCommand) -> Result<(), End> {
        let mut tasks = Vec::new();
        let mut sweep = false;
        let mut next = Some(first);
        while let Some(command) = next {
            match command {
                SessionCommand::Deliver(more) => tasks.extend(more),
                SessionCommand::Sweep => sweep = true,
                SessionCommand::Close(reason) => return Err(End::tell(reason)),
            }
            next = self.commands.try_recv().ok();
        }
        if sweep {
            return self.deliver().await;
        }
        let messages = self.deliveries.outgoing(&self.shared, &tasks);
        self.send_payloads(messages).await
    }

    /// Records a report, then owes its acknowledgement (see the [module docs](self)). A report
    /// that cannot be recorded ends the session unacknowledged: the agent sends it again after
    /// reconnecting.
    async fn report(&mut self, change: TaskStateChange) -> Result<(), End> {
        let span = info_span!(
            "task_report",
            task = log_task_id(&change.task.task_arn),
            seq = change.seq,
            status = %change.task.status,
        );
        async {
            let task_id = crate::arn::task_id(&change.task.task_arn).unwrap_or_default();
            let known = self.deliveries.report_target(task_id);
            match reports::record(&self.shared, &self.registration, &change, known).await {
                Ok(Recorded::Appended {
                    sequence,
                    duplicate,
                }) => {
                    debug!(sequence, duplicate, "report recorded");
                    if reports::is_final(&change) {
                        self.deliveries.forget(task_id);
                    }
                }
                Ok(Recorded::Ignored(reason)) => reports::log_ignored(&change, &reason),
                Err(error) => {
                    error!(%error, "could not record a report");
                    return Err(End::tell(
                        "could not record a report; reconnect to send it again",
                    ));
                }
            }
            self.owe_ack(change.seq);
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn reconcile(&mut self, report: StateReport) -> Result<(), End> {
        debug!(running = report.running.len(), "state report");
        let messages = match reconcile::reconcile(
            &self.shared,
            &self.registration,
            &mut self.deliveries,
            &report,
        )
        .await
        {
            Ok(messages) => messages,
            Err(error) => {
                error!(%error, "could not reconcile the state report");
                return Ok(());
            }
        };
        self.send_payloads(messages).await
    }

    /// Sends whatever the agent has not acknowledged and this session has not sent yet.
    async fn deliver(&mut self) -> Result<(), End> {
        match self.deliveries.undelivered(&self.shared).await {
            Ok(messages) => {
                self.deliver_again = false;
                self.send_payloads(messages).await
            }
            Err(error) => {
                error!(%error, "could not read what to deliver; retrying at the next heartbeat");
                self.deliver_again = true;
                Ok(())
            }
        }
    }

    async fn send_payloads(&mut self, messages: Vec<PayloadMessage>) -> Result<(), End> {
        for message in &messages {
            for task in &message.tasks {
                info!(
                    task = log_task_id(&task.arn),
                    desired = ?task.desired_status,
                    message_id = message.message_id,
                    "task sent to the agent"
                );
            }
        }
        let frames = messages
            .into_iter()
            .map(GatewayFrame::PayloadMessage)
            .collect();
        self.send_frames(frames).await
    }

    /// Acknowledges report `seq` (and every one before it) with the next frame sent.
    fn owe_ack(&mut self, seq: u64) {
        let (owed, _) = self
            .ack_owed
            .get_or_insert((seq, Instant::now() + REPORT_ACK_DELAY));
        *owed = (*owed).max(seq);
    }

    async fn send(&mut self, frame: GatewayFrame) -> Result<(), End> {
        self.send_frames(vec![frame]).await
    }

    /// Sends `frames` in one write, after the report acknowledgement owed, if any.
    async fn send_frames(&mut self, mut frames: Vec<GatewayFrame>) -> Result<(), End> {
        if let Some((seq, _)) = self.ack_owed.take() {
            frames.insert(0, GatewayFrame::TaskStateAck(TaskStateAck { seq }));
        }
        if frames.is_empty() {
            return Ok(());
        }
        self.link.send_all(&frames).await.map_err(|error| {
            debug!(%error, frames = frames.len(), "send failed");
            End::silent(error.to_string())
        })
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Completes once the gateway is stopping.
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across the session's awaits.
    let _ = shutdown.wait_for(|stopping| *stopping).await.map(|_| ());
}

/// The task id for logs: the ARN's last segment (whatever the agent sent).
fn log_task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
