//! The agent's session loop: one WebSocket to the agent-gateway at a time, re-opened for as long
//! as the agent runs.
//!
//! A session goes: connect → `RegisterInstance` (with the stored instance id, if any) →
//! `Registered` (the id is stored) → the unacknowledged reports again, then a `StateReport` of what
//! the driver runs → steady state, where the agent
//!
//! * answers every `HeartbeatMessage` with a `HeartbeatAck`,
//! * applies every task of a `PayloadMessage` through the driver and then sends `Ack`,
//! * turns every driver event into a numbered `TaskStateChange` (kept in the [`Outbox`] until a
//!   `TaskStateAck` covers it),
//! * and gives the session up when the gateway says `CloseMessage`, closes the socket, or sends
//!   nothing for [`Timing::idle_timeout`] (a gateway or network that died without a FIN).
//!
//! Pending reports go out before the `StateReport`, so the gateway records how a task ended (exit
//! codes, reason) before it reconciles the report's list, in which a stopped task is simply absent.
//!
//! Between sessions the agent waits with exponential backoff (with jitter, so a fleet does not
//! reconnect in lockstep after a gateway restart) and keeps recording driver events, so nothing a
//! task does while the gateway is away is lost. `RegistrationRefused`, or HTTP 401/403 on the
//! upgrade, ends the agent with an error: a wrong token must not retry forever.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use berth_agent_protocol::{
    Ack, AgentFrame, ContainerStateChange, EpochMillis, GatewayFrame, HealthStatus, HeartbeatAck,
    PayloadMessage, RegisterInstance, Registered, StateReport, TaskSnapshot, TaskStatus,
    TaskStopCode,
};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::Timing;
use crate::error::AgentError;
use crate::identity::{Identity, IdentityStore};
use crate::reports::{Outbox, latest_per_task};
use crate::runtime::{Driver, RuntimeError, TaskEvent};
use crate::stats::AgentStats;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Most driver events turned into reports at once: one outbox write and one socket flush for a
/// burst, without letting one burst delay heartbeats for long.
const MAX_BATCH: usize = 256;

/// Read buffer of the WebSocket. Frames are small JSON; tungstenite's 128 KiB default would cost a
/// thousand simulated agents 128 MiB for nothing (the buffer grows for a large payload anyway).
const READ_BUFFER: usize = 8 * 1024;

/// How long a closing handshake may take on shutdown before the socket is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Reconnect delays: doubling from `initial` to `max`, each drawn between half and all of the
/// current step.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            step: initial,
        }
    }

    /// The delay before the next attempt; doubles the step for the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.max);
        let half = step / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }

    /// Back to the first step, after a healthy session.
    pub(crate) fn reset(&mut self) {
        self.step = self.initial;
    }
}

/// How a session ended.
enum SessionEnd {
    /// The agent is shutting down.
    Shutdown,
    /// The connection is gone; reconnect.
    Lost {
        /// Whether the gateway had accepted the registration.
        registered: bool,
        reason: String,
    },
    /// Give up: reconnecting cannot help.
    Fatal(AgentError),
}

fn lost(registered: bool, reason: impl Into<String>) -> SessionEnd {
    SessionEnd::Lost {
        registered,
        reason: reason.into(),
    }
}

/// What came off the socket.
enum Read {
    Frame(GatewayFrame),
    /// Pings, pongs, frames this agent does not know: they only prove the gateway is alive.
    Ignored,
    Closed(String),
}

/// Keeps the fleet's `registered` gauge right however a session ends.
struct RegisteredGauge(Arc<AgentStats>);

impl RegisteredGauge {
    fn new(stats: &Arc<AgentStats>) -> Self {
        AgentStats::add(&stats.registered, 1);
        AgentStats::add(&stats.registrations, 1);
        Self(Arc::clone(stats))
    }
}

impl Drop for RegisteredGauge {
    fn drop(&mut self) {
        AgentStats::sub(&self.0.registered, 1);
    }
}

/// One agent's link to the gateway; see the module docs.
pub(crate) struct Connection {
    pub(crate) url: String,
    pub(crate) timing: Timing,
    /// The registration to send, without its instance id (taken from `identity` each time).
    pub(crate) register: RegisterInstance,
    pub(crate) identity: IdentityStore,
    pub(crate) outbox: Outbox,
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) events: UnboundedReceiver<TaskEvent>,
    pub(crate) stats: Arc<AgentStats>,
}

impl Connection {
    /// Runs sessions until `shutdown` resolves (`Ok`) or the gateway refuses the agent (`Err`).
    pub(crate) async fn run<S>(mut self, shutdown: S) -> Result<(), AgentError>
    where
        S: Future<Output = ()> + Send,
    {
        let result = self.run_sessions(shutdown).await;
        // Events the driver emitted but no session took yet go to the outbox, so the next agent
        // over this data dir sends them (a STOPPED among them would otherwise be known only from
        // the task's absence in the state report, without its exit codes).
        self.record_pending_events().await;
        result
    }

    async fn run_sessions<S>(&mut self, shutdown: S) -> Result<(), AgentError>
    where
        S: Future<Output = ()> + Send,
    {
        let mut shutdown = pin!(shutdown);
        let mut backoff = Backoff::new(self.timing.backoff_initial, self.timing.backoff_max);
        loop {
            let url = self.url.clone();
            let connect_timeout = self.timing.connect_timeout;
            let connected = self
                .recording_until(&mut shutdown, connect(&url, connect_timeout))
                .await;
            match connected {
                None => return Ok(()),
                Some(Err(ConnectError::Fatal(error))) => return Err(error),
                Some(Err(ConnectError::Retry(reason))) => {
                    AgentStats::add(&self.stats.failed_attempts, 1);
                    tracing::warn!(gateway = %url, %reason, "cannot connect to the gateway");
                }
                Some(Ok(mut ws)) => {
                    let started = Instant::now();
                    match self.session(&mut ws, &mut shutdown).await {
                        SessionEnd::Shutdown => {
                            // Best effort: the gateway learns at once rather than by timeout.
                            let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
                            tracing::info!("disconnected from the gateway: shutting down");
                            return Ok(());
                        }
                        SessionEnd::Fatal(error) => {
                            let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
                            return Err(error);
                        }
                        SessionEnd::Lost { registered, reason } => {
                            let lasted = started.elapsed();
                            if registered {
                                AgentStats::add(&self.stats.disconnects, 1);
                                if lasted >= self.timing.healthy_after {
                                    backoff.reset();
                                }
                            } else {
                                AgentStats::add(&self.stats.failed_attempts, 1);
                            }
                            tracing::warn!(
                                %reason,
                                registered,
                                lasted_ms = lasted.as_millis(),
                                "session with the gateway ended"
                            );
                        }
                    }
                }
            }
            let delay = backoff.next_delay();
            tracing::debug!(delay_ms = delay.as_millis(), "reconnecting after a delay");
            if self
                .recording_until(&mut shutdown, sleep(delay))
                .await
                .is_none()
            {
                return Ok(());
            }
        }
    }

    /// Drives `work` to completion while recording driver events (they are sent once a session
    /// is up); `None` if `shutdown` came first.
    async fn recording_until<S, F>(
        &mut self,
        shutdown: &mut Pin<&mut S>,
        work: F,
    ) -> Option<F::Output>
    where
        S: Future<Output = ()>,
        F: Future,
    {
        let mut work = pin!(work);
        loop {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return None,
                output = &mut work => return Some(output),
                Some(event) = self.events.recv() => {
                    self.record(event).await;
                }
            }
        }
    }

    /// One session over a connected socket.
    async fn session<S>(&mut self, ws: &mut Ws, shutdown: &mut Pin<&mut S>) -> SessionEnd
    where
        S: Future<Output = ()>,
    {
        let mut register = self.register.clone();
        register.instance_id = self
            .identity
            .instance_id_for(&register.cluster)
            .map(str::to_string);
        let sent_id = register.instance_id.clone();
        let first_registration = sent_id.is_none();
        if let Err(reason) = self
            .send(ws, vec![AgentFrame::RegisterInstance(register)])
            .await
        {
            return lost(false, reason);
        }
        let registered = match self.await_registration(ws, shutdown).await {
            Ok(registered) => registered,
            Err(end) => return end,
        };
        if let Some(sent) = sent_id.filter(|sent| *sent != registered.instance_id) {
            // The gateway no longer knows the old instance; tasks it ran are reported under the
            // new one from now on.
            tracing::warn!(old = %sent, new = %registered.instance_id, "the gateway assigned a new instance id");
        }
        let _gauge = RegisteredGauge::new(&self.stats);
        tracing::info!(
            instance_id = %registered.instance_id,
            instance_arn = %registered.instance_arn,
            first_registration,
            "registered with the gateway"
        );
        let identity = Identity {
            cluster: self.register.cluster.clone(),
            instance_id: registered.instance_id,
            instance_arn: registered.instance_arn,
        };
        if let Err(error) = self.identity.save(identity).await {
            tracing::error!(%error, "cannot store the instance id; a restarted agent would register as a new instance");
        }

        if let Err(reason) = self.send_reconciliation(ws).await {
            return lost(true, reason);
        }
        self.steady_state(ws, shutdown).await
    }

    /// Waits for the answer to `RegisterInstance`.
    async fn await_registration<S>(
        &mut self,
        ws: &mut Ws,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<Registered, SessionEnd>
    where
        S: Future<Output = ()>,
    {
        let deadline = sleep(self.timing.idle_timeout);
        let mut deadline = pin!(deadline);
        loop {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return Err(SessionEnd::Shutdown),
                message = ws.next() => match classify(message) {
                    Read::Frame(GatewayFrame::Registered(registered)) => return Ok(registered),
                    Read::Frame(GatewayFrame::RegistrationRefused(refused)) => {
                        // Logged by whoever handles the error (main, or the fleet).
                        return Err(SessionEnd::Fatal(AgentError::RegistrationRefused {
                            reason: refused.reason,
                        }));
                    }
                    Read::Frame(GatewayFrame::CloseMessage(close)) => {
                        return Err(lost(false, format!("gateway closed the session before registration: {}", close.reason)));
                    }
                    Read::Frame(GatewayFrame::HeartbeatMessage(heartbeat)) => {
                        let ack = AgentFrame::HeartbeatAck(HeartbeatAck { message_id: heartbeat.message_id });
                        if let Err(reason) = self.send(ws, vec![ack]).await {
                            return Err(lost(false, reason));
                        }
                    }
                    Read::Frame(other) => {
                        // Not acknowledged, so the gateway delivers it again once registered.
                        tracing::warn!(frame = other.type_name(), "ignoring a frame sent before registration");
                    }
                    Read::Ignored => {}
                    Read::Closed(reason) => return Err(lost(false, reason)),
                },
                Some(event) = self.events.recv() => {
                    self.record(event).await;
                }
                () = deadline.as_mut() => {
                    return Err(lost(false, format!("no answer to the registration within {:?}", self.timing.idle_timeout)));
                }
            }
        }
    }

    /// After registration: every unacknowledged report, then what runs now.
    async fn send_reconciliation(&mut self, ws: &mut Ws) -> Result<(), String> {
        let running = self.driver.list_running().await;
        // Reports of what happened up to the listing go before the state report.
        self.record_pending_events().await;
        let mut frames: Vec<AgentFrame> = self
            .outbox
            .pending()
            .cloned()
            .map(AgentFrame::TaskStateChange)
            .collect();
        if !frames.is_empty() {
            tracing::info!(count = frames.len(), "sending reports not yet acknowledged");
        }
        match running {
            Ok(running) => frames.push(AgentFrame::StateReport(StateReport { running })),
            // An empty report would tell the gateway every task has stopped; saying nothing is
            // better than saying that.
            Err(error) => {
                tracing::warn!(%error, "cannot list running tasks; no state report in this session");
            }
        }
        self.send(ws, frames).await
    }

    /// Registered: serve the gateway until the session ends.
    async fn steady_state<S>(&mut self, ws: &mut Ws, shutdown: &mut Pin<&mut S>) -> SessionEnd
    where
        S: Future<Output = ()>,
    {
        let idle_timeout = self.timing.idle_timeout;
        let idle = sleep(idle_timeout);
        let mut idle = pin!(idle);
        loop {
            tokio::select! {
                () = shutdown.as_mut() => return SessionEnd::Shutdown,
                message = ws.next() => {
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    match classify(message) {
                        Read::Frame(frame) => {
                            if let Some(end) = self.on_frame(ws, frame).await {
                                return end;
                            }
                        }
                        Read::Ignored => {}
                        Read::Closed(reason) => return lost(true, reason),
                    }
                }
                Some(event) = self.events.recv() => {
                    let frames = self.record(event).await;
                    if let Err(reason) = self.send(ws, frames).await {
                        return lost(true, reason);
                    }
                }
                () = idle.as_mut() => {
                    return lost(true, format!("no frame from the gateway for {idle_timeout:?}"));
                }
            }
        }
    }

    /// Handles one frame of a registered session; `Some` ends the session.
    async fn on_frame(&mut self, ws: &mut Ws, frame: GatewayFrame) -> Option<SessionEnd> {
        match frame {
            GatewayFrame::HeartbeatMessage(heartbeat) => {
                let ack = AgentFrame::HeartbeatAck(HeartbeatAck {
                    message_id: heartbeat.message_id,
                });
                if let Err(reason) = self.send(ws, vec![ack]).await {
                    return Some(lost(true, reason));
                }
                AgentStats::add(&self.stats.heartbeats, 1);
            }
            GatewayFrame::PayloadMessage(payload) => {
                let mut frames = self.apply_payload(payload).await;
                // What the driver already reported (a task that started at once) goes out
                // with the ack: one write, and one wake-up of the gateway, instead of two.
                if let Ok(event) = self.events.try_recv() {
                    frames.extend(self.record(event).await);
                }
                if let Err(reason) = self.send(ws, frames).await {
                    return Some(lost(true, reason));
                }
            }
            GatewayFrame::TaskStateAck(ack) => {
                let removed = self.outbox.ack(ack.seq);
                AgentStats::add(&self.stats.reports_acked, removed as u64);
                self.persist_outbox().await;
            }
            GatewayFrame::CloseMessage(close) => {
                return Some(lost(
                    true,
                    format!("gateway closed the session: {}", close.reason),
                ));
            }
            GatewayFrame::RegistrationRefused(refused) => {
                // The instance was deregistered or the token revoked while connected.
                return Some(SessionEnd::Fatal(AgentError::RegistrationRefused {
                    reason: refused.reason,
                }));
            }
            GatewayFrame::Registered(_) => {
                tracing::warn!("ignoring a second Registered in one session");
            }
        }
        None
    }

    /// Applies every task of a payload; returns the frames to send: the `Ack`, and a STOPPED report
    /// for each task the driver refused as invalid (so the control plane does not wait for a task
    /// that will never start). When the driver cannot work at all (Docker down) the payload is
    /// left unacknowledged for the gateway to deliver again; tasks applied meanwhile are not
    /// started twice, since starting is idempotent per ARN.
    async fn apply_payload(&mut self, payload: PayloadMessage) -> Vec<AgentFrame> {
        let message_id = payload.message_id;
        let mut refused = Vec::new();
        let mut failed = false;
        for task in payload.tasks {
            let arn = task.arn.clone();
            let containers: Vec<String> = task.containers.iter().map(|c| c.name.clone()).collect();
            let desired = task.desired_status;
            match self.driver.apply(task).await {
                Ok(()) => tracing::debug!(task_arn = %arn, ?desired, "task applied"),
                Err(RuntimeError::InvalidTask(why)) => {
                    tracing::warn!(task_arn = %arn, %why, "refusing an invalid task");
                    refused.push(invalid_task_report(arn, containers, why));
                }
                Err(error) => {
                    tracing::error!(task_arn = %arn, %error, "cannot apply task; the payload stays unacknowledged");
                    failed = true;
                }
            }
        }
        let mut frames = Vec::new();
        if !failed {
            frames.push(AgentFrame::Ack(Ack { message_id }));
            AgentStats::add(&self.stats.payloads, 1);
        }
        for report in refused {
            frames.extend(self.record(report).await);
        }
        frames
    }

    /// Numbers `first` and whatever else the driver has emitted (up to a batch), persists the
    /// outbox, and returns the reports to send. Of several changes of one task in a burst only
    /// the last is reported (a task that starts at once goes straight to RUNNING, as in ECS when
    /// the agent sees both changes together): it carries the whole task, and the control plane
    /// records one event instead of a chain of them.
    async fn record(&mut self, first: TaskEvent) -> Vec<AgentFrame> {
        let mut events = vec![first];
        while events.len() < MAX_BATCH {
            let Ok(event) = self.events.try_recv() else {
                break;
            };
            events.push(event);
        }
        let frames = latest_per_task(events, |event| event)
            .into_iter()
            .map(|event| AgentFrame::TaskStateChange(self.outbox.push(event)))
            .collect();
        self.persist_outbox().await;
        frames
    }

    /// Moves every event already emitted into the outbox (they are then sent as pending reports).
    async fn record_pending_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.outbox.push(event);
        }
        self.persist_outbox().await;
    }

    async fn persist_outbox(&mut self) {
        if let Err(error) = self.outbox.flush().await {
            // Still sent; only an agent restart before the ack would lose them.
            tracing::error!(%error, "cannot persist task reports");
        }
    }

    /// Writes frames and flushes once; `Err` (with the reason) means the session is lost.
    async fn send(&self, ws: &mut Ws, frames: Vec<AgentFrame>) -> Result<(), String> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut reports = 0;
        let write = async {
            for frame in frames {
                let text = match frame.to_json() {
                    Ok(text) => text,
                    Err(error) => {
                        tracing::error!(frame = frame.type_name(), %error, "cannot encode frame");
                        continue;
                    }
                };
                if matches!(frame, AgentFrame::TaskStateChange(_)) {
                    reports += 1;
                }
                ws.feed(Message::text(text)).await?;
            }
            ws.flush().await
        };
        match timeout(self.timing.send_timeout, write).await {
            Ok(Ok(())) => {
                AgentStats::add(&self.stats.reports_sent, reports);
                Ok(())
            }
            Ok(Err(error)) => Err(format!("write failed: {error}")),
            Err(_) => Err(format!("write blocked for {:?}", self.timing.send_timeout)),
        }
    }
}

/// A STOPPED report for a task the driver would not run.
fn invalid_task_report(arn: String, containers: Vec<String>, why: String) -> TaskSnapshot {
    let reason = format!("CannotStartContainerError: invalid task: {why}");
    TaskSnapshot {
        task_arn: arn,
        status: TaskStatus::Stopped,
        reason: Some(reason),
        stop_code: Some(TaskStopCode::TaskFailedToStart),
        containers: containers
            .into_iter()
            .map(|name| ContainerStateChange {
                name,
                runtime_id: None,
                status: TaskStatus::Stopped,
                exit_code: None,
                reason: None,
                network_bindings: Vec::new(),
                health_status: HealthStatus::Unknown,
            })
            .collect(),
        pulled_at: None,
        started_at: None,
        stopped_at: Some(EpochMillis::now()),
    }
}

fn classify(message: Option<Result<Message, tungstenite::Error>>) -> Read {
    match message {
        None => Read::Closed("connection closed".to_string()),
        Some(Err(error)) => Read::Closed(format!("read failed: {error}")),
        Some(Ok(Message::Text(text))) => match GatewayFrame::from_json(text.as_str()) {
            Ok(frame) => Read::Frame(frame),
            Err(error) => {
                // A newer gateway may send frames this agent does not know; the session goes on.
                tracing::warn!(%error, "ignoring a frame this agent does not understand");
                Read::Ignored
            }
        },
        Some(Ok(Message::Close(frame))) => Read::Closed(match frame {
            Some(frame) if !frame.reason.is_empty() => {
                format!("gateway closed the connection: {}", frame.reason)
            }
            _ => "gateway closed the connection".to_string(),
        }),
        Some(Ok(Message::Binary(_))) => {
            tracing::warn!("ignoring a binary frame");
            Read::Ignored
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Read::Ignored,
    }
}

enum ConnectError {
    Retry(String),
    Fatal(AgentError),
}

async fn connect(url: &str, connect_timeout: Duration) -> Result<Ws, ConnectError> {
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    // Small frames both ways: no Nagle delay.
    let attempt = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    match timeout(connect_timeout, attempt).await {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(response)))
            if matches!(response.status().as_u16(), 401 | 403) =>
        {
            Err(ConnectError::Fatal(AgentError::Unauthorized {
                status: response.status().as_u16(),
            }))
        }
        Ok(Err(error)) => Err(ConnectError::Retry(error.to_string())),
        Err(_) => Err(ConnectError::Retry(format!(
            "no connection within {connect_timeout:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut steps = Vec::new();
        for _ in 0..10 {
            steps.push(backoff.next_delay());
        }
        let bounds_ms = [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
        for (delay, bound) in steps.iter().zip(bounds_ms) {
            let bound = Duration::from_millis(bound);
            assert!(
                *delay >= bound / 2 && *delay <= bound,
                "{delay:?} not in [{:?}, {bound:?}]",
                bound / 2
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(250));
    }

    #[test]
    fn invalid_tasks_are_reported_failed_to_start() {
        let report = invalid_task_report("t/x".into(), vec!["a b".into()], "bad name".into());
        assert_eq!(report.status, TaskStatus::Stopped);
        assert_eq!(report.stop_code, Some(TaskStopCode::TaskFailedToStart));
        assert_eq!(report.containers[0].status, TaskStatus::Stopped);
    }
}
