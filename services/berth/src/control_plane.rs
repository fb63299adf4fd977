//! The whole control plane in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_agent::{AgentConfig, DriverChoice};
use berth_agent_gateway::{AgentGateway, AgentGatewayOptions};
use berth_api_gateway::read_model::TASK_WRITE_INTERVAL;
use berth_api_gateway::{ApiGateway, ApiGatewayOptions, health_router};
use berth_aws_protocol::sigv4::KeyStore;
use berth_eventlog::local_server::{LocalNatsServer, LocalServerOptions};
use berth_eventlog::{EventLog, LogConfig};
use berth_scheduler::{Scheduler, SchedulerOptions};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info};

/// Events the services' shared log reader keeps for one that falls behind; beyond
/// that, the service reads what it missed with its own consumer.
const SHARED_TAIL_BUFFER: usize = 8192;

/// Everything `berth up` can be told.
#[derive(Debug, Clone)]
pub struct ControlPlaneConfig {
    /// Where the JetStream store (when Berth starts nats-server) and the SQLite read
    /// models live.
    pub data_dir: PathBuf,
    /// An existing NATS server; `None` starts a private nats-server.
    pub nats_url: Option<String>,
    /// The nats-server binary to start (found on the PATH when `None`).
    pub nats_server_bin: Option<PathBuf>,
    /// The API's address; port 0 picks a free one.
    pub api_addr: SocketAddr,
    /// One `postgres://` URL for every read model; `None` gives each service its
    /// own SQLite file in the data dir.
    pub read_model_url: Option<String>,
    /// Rebuild every read model from sequence 1 at start.
    pub rebuild: bool,
    pub account_id: String,
    pub body_limit: usize,
    /// Where agents connect (WebSocket `/ws`); port 0 picks a free one.
    pub agent_gateway_addr: SocketAddr,
    /// The registration token agents must present.
    pub agent_token: String,
    /// An agent silent this long is disconnected: no new task goes there.
    pub agent_heartbeat_timeout: Duration,
    /// The agent `berth up` runs for itself (joins cluster `default`); `None` for none.
    pub local_agent: Option<DriverChoice>,
}

impl ControlPlaneConfig {
    fn read_model_url(&self, service: &str) -> String {
        match &self.read_model_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join(format!("{service}.db")).display()
            ),
        }
    }
}

pub struct ControlPlane;

/// A running control plane; stop it with [`RunningControlPlane::stop`].
pub struct RunningControlPlane {
    pub api_addr: SocketAddr,
    pub agent_gateway_addr: SocketAddr,
    pub nats_url: String,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Dropped last: the services stop before their NATS server does.
    _nats: Option<LocalNatsServer>,
}

impl ControlPlane {
    pub async fn start(
        config: ControlPlaneConfig,
        keys: KeyStore,
    ) -> anyhow::Result<RunningControlPlane> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let (nats, nats_url) = match &config.nats_url {
            Some(url) => (None, url.clone()),
            None => {
                let server = LocalNatsServer::start(&LocalServerOptions {
                    binary: config.nats_server_bin.clone(),
                    port: 0,
                    store_dir: config.data_dir.join("jetstream"),
                })?;
                let url = server.url();
                info!(url, "started nats-server");
                (Some(server), url)
            }
        };
        // The services share one reader of the log: each event crosses from
        // nats-server and is decoded once for all of them.
        let log = EventLog::connect(&nats_url, &LogConfig::default())
            .await
            .with_context(|| format!("opening the event log on {nats_url}"))?
            .with_shared_tail(SHARED_TAIL_BUFFER);

        let api_gateway = ApiGateway::build(
            log.clone(),
            &ApiGatewayOptions {
                account_id: config.account_id.clone(),
                read_model_url: config.read_model_url("api-gateway"),
                rebuild: config.rebuild,
                body_limit: config.body_limit,
                task_write_interval: TASK_WRITE_INTERVAL,
            },
        )
        .await
        .context("starting api-gateway")?;

        let scheduler = Scheduler::build(
            log.clone(),
            &SchedulerOptions {
                read_model_url: config.read_model_url("scheduler"),
                rebuild: config.rebuild,
            },
        )
        .await
        .context("starting scheduler")?;

        let mut agent_gateway_options = AgentGatewayOptions::new(
            config.agent_token.clone(),
            config.read_model_url("agent-gateway"),
        );
        agent_gateway_options.rebuild = config.rebuild;
        agent_gateway_options.account_id = config.account_id.clone();
        agent_gateway_options.heartbeat_timeout = config.agent_heartbeat_timeout;
        let agent_gateway = AgentGateway::build(log.clone(), agent_gateway_options)
            .await
            .context("starting agent-gateway")?;
        let agent_listener = tokio::net::TcpListener::bind(config.agent_gateway_addr)
            .await
            .with_context(|| {
                format!("binding the agent gateway to {}", config.agent_gateway_addr)
            })?;
        let agent_gateway_addr = agent_listener.local_addr()?;

        let projections = vec![
            api_gateway.projection(),
            scheduler.projection(),
            agent_gateway.projection(),
        ];
        let router = api_gateway
            .router(Arc::new(keys), config.body_limit)
            .merge(health_router(projections));
        let listener = tokio::net::TcpListener::bind(config.api_addr)
            .await
            .with_context(|| format!("binding the API to {}", config.api_addr))?;
        let api_addr = listener.local_addr()?;

        let (shutdown, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let stopped = stop_signal(&shutdown);
        tasks.spawn(async move {
            if let Err(error) = api_gateway.run(listener, router, stopped).await {
                error!(%error, "api-gateway stopped");
            }
        });
        tasks.spawn(scheduler.run(stop_signal(&shutdown)));
        let stopped = stop_signal(&shutdown);
        tasks.spawn(async move {
            if let Err(error) = agent_gateway.run(agent_listener, stopped).await {
                error!(%error, "agent-gateway stopped");
            }
        });
        if let Some(driver) = config.local_agent.clone() {
            let agent = AgentConfig::new(
                "default",
                format!("ws://{agent_gateway_addr}"),
                config.agent_token.clone(),
                driver,
                Some(config.data_dir.join("agent")),
            );
            let stopped = stop_signal(&shutdown);
            tasks.spawn(async move {
                if let Err(error) = berth_agent::run_agent(agent, stopped).await {
                    error!(%error, "local agent stopped");
                }
            });
        }
        Ok(RunningControlPlane {
            api_addr,
            agent_gateway_addr,
            nats_url,
            shutdown,
            tasks,
            _nats: nats,
        })
    }
}

/// A future that completes when the control plane is told to stop.
fn stop_signal(
    shutdown: &watch::Sender<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut receiver = shutdown.subscribe();
    async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    }
}

impl RunningControlPlane {
    /// `http://<api address>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// Drains every service (each finishes its batch and commits its checkpoint),
    /// then stops nats-server if Berth started it.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
