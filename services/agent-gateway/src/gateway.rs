//! The gateway as a whole: build it, then run it on a listener until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, StatusCode};
use axum::response::Response;
use axum::routing::get;
use berth_eventlog::EventLog;
use berth_events::EventMeta;
use berth_projection::{ProjectionHandle, ProjectionRunner, ReadModel, RunnerOptions};
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::arn::Arns;
use crate::delivery::{self, AckRecorder};
use crate::error::GatewayError;
use crate::options::AgentGatewayOptions;
use crate::payload::ParsedDefinitions;
use crate::read_model::tasks::{self, LiveTasks};
use crate::read_model::{AgentGatewayProjection, Notice};
use crate::session;
use crate::sessions::SessionRegistry;

/// How long a decision waits for the read model to show everything already in the log.
const CATCH_UP: Duration = Duration::from_secs(30);
/// How long shutdown waits for sessions to close and record their disconnects.
const DRAIN: Duration = Duration::from_secs(10);

/// What every session and background task of one gateway shares.
pub(crate) struct Shared {
    pub log: EventLog,
    pub read_model: ReadModel,
    pub projection: ProjectionHandle,
    pub options: AgentGatewayOptions,
    pub arns: Arns,
    pub sessions: SessionRegistry,
    pub acks: AckRecorder,
    pub definitions: ParsedDefinitions,
    /// The tasks on each instance that have not stopped (the projection keeps it).
    pub live_tasks: LiveTasks,
    /// Set once the gateway is told to stop; sessions close when it changes.
    pub shutdown: watch::Sender<bool>,
}

impl Shared {
    pub fn db(&self) -> &AnyPool {
        self.read_model.pool()
    }

    /// Waits until the read model has applied everything in the log now, so a decision made
    /// from it sees every earlier write.
    pub async fn catch_up(&self) -> Result<(), GatewayError> {
        let last = self.log.last_sequence().await?;
        self.projection.wait_for(last, CATCH_UP).await?;
        Ok(())
    }

    /// An envelope for an event this gateway appends, in the current trace.
    pub fn meta(&self) -> EventMeta {
        EventMeta::new().with_trace_context(berth_telemetry::inject_current_context())
    }

    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// A built agent-gateway, ready to [`run`](Self::run).
pub struct AgentGateway {
    shared: Arc<Shared>,
    runner: ProjectionRunner<AgentGatewayProjection>,
    notices: mpsc::UnboundedReceiver<Notice>,
    ack_writer: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl AgentGateway {
    /// Opens the read model and prepares the projection; nothing runs until [`Self::run`].
    pub async fn build(log: EventLog, options: AgentGatewayOptions) -> Result<Self, GatewayError> {
        if options.token.is_empty() {
            return Err(GatewayError::Config(
                "an agent token is required (BERTH_AGENT_TOKEN)".to_owned(),
            ));
        }
        if options.heartbeat_timeout < Duration::from_millis(30) {
            return Err(GatewayError::Config(format!(
                "heartbeat timeout {:?} is too short",
                options.heartbeat_timeout
            )));
        }
        let read_model = ReadModel::open(&options.read_model_url).await?;
        let (notify, notices) = mpsc::unbounded_channel();
        let live_tasks = LiveTasks::default();
        let runner = ProjectionRunner::new(
            log.clone(),
            read_model.clone(),
            AgentGatewayProjection::new(notify, live_tasks.clone()),
            RunnerOptions {
                rebuild: options.rebuild,
                ..RunnerOptions::default()
            },
        )
        .await?;
        // Before the projection runs: from then on it moves what this loaded.
        let loading = std::time::Instant::now();
        tasks::load_live(read_model.pool(), &live_tasks).await?;
        info!(
            tasks = live_tasks.len(),
            elapsed_ms = loading.elapsed().as_millis() as u64,
            "live tasks by instance loaded"
        );
        let (acks, ack_writer) = AckRecorder::new(read_model.clone());
        let shared = Arc::new(Shared {
            log,
            acks,
            read_model,
            projection: runner.handle(),
            arns: Arns {
                region: options.region.clone(),
                account_id: options.account_id.clone(),
            },
            options,
            sessions: SessionRegistry::default(),
            definitions: ParsedDefinitions::default(),
            live_tasks,
            shutdown: watch::channel(false).0,
        });
        Ok(Self {
            shared,
            runner,
            notices,
            ack_writer: Box::pin(ack_writer),
        })
    }

    /// How far the read model has got (for `/health` and read-your-writes).
    pub fn projection(&self) -> ProjectionHandle {
        self.runner.handle()
    }

    /// Serves `GET /ws` (agents) and `GET /health` on `listener`, runs the projection and
    /// delivers to agents, until `shutdown` completes. Sessions are then closed (each records
    /// its `AgentDisconnected`) before the projection stops.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            shared,
            runner,
            notices,
            ack_writer,
        } = self;
        let ack_writer = tokio::spawn(ack_writer);
        let (stop_projection, projection_stopped) = tokio::sync::oneshot::channel::<()>();
        let projection = tokio::spawn(runner.run(async move {
            let _ = projection_stopped.await;
        }));
        let dispatcher = tokio::spawn(delivery::dispatch(shared.clone(), notices));
        let address = listener.local_addr()?;
        info!(%address, gateway_id = shared.options.gateway_id, "agent-gateway listening");
        let signal = {
            let shared = shared.clone();
            async move {
                shutdown.await;
                info!("agent-gateway shutting down: closing sessions");
                shared.shutdown.send_replace(true);
            }
        };
        let served = axum::serve(
            listener,
            router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .await;
        shared.shutdown.send_replace(true);
        if !shared.sessions.wait_closed(DRAIN).await {
            warn!("sessions still open after {DRAIN:?}; stopping anyway");
        }
        dispatcher.abort();
        shared.acks.flushed().await;
        ack_writer.abort();
        let _ = stop_projection.send(());
        let _ = projection.await;
        served
    }
}

/// Read buffer of each agent's WebSocket. tungstenite zeroes the free part of the buffer, up to
/// this size, before every socket read: its 128 KiB default cost a memset of 128 KiB per read
/// (5% of the control plane's CPU with 1,000 agents), and 128 MiB for a thousand agents. Frames
/// larger than this still arrive whole: the buffer grows to fit one.
const READ_BUFFER: usize = 8 * 1024;

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route("/health", get(health))
        .with_state(shared)
}

/// `GET /ws`: one agent session per connection.
async fn upgrade(
    State(shared): State<Arc<Shared>>,
    extensions: Extensions,
    upgrade: WebSocketUpgrade,
) -> Response {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let limit = shared.options.max_message_bytes;
    upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| session::run(shared, socket, peer))
}

/// `GET /health`: 200 once the read model has caught up with the log as it was at start.
async fn health(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    let projection = &shared.projection;
    if projection.caught_up() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "catching up: {} at {}\n",
                projection.name(),
                projection.position()
            ),
        )
    }
}
