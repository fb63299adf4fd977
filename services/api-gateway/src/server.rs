//! Serving the gateway: the ECS awsJson service, `/health`, and the projection.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use berth_aws_protocol::json::{
    AwsJsonHandler, AwsJsonRouter, BoxFuture, HandlerResult, RequestContext, ServiceSpec,
};
use berth_aws_protocol::sigv4::KeyStore;
use berth_eventlog::EventLog;
use berth_projection::{
    ProjectionError, ProjectionHandle, ProjectionRunner, ReadModel, RunnerOptions,
};
use bytes_compat::Bytes;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::commands;
use crate::gateway::{Caller, Gateway};
use crate::read_model::{GatewayProjection, task_queries};

mod bytes_compat {
    pub use axum::body::Bytes;
}

/// What the gateway needs to know.
#[derive(Debug, Clone)]
pub struct ApiGatewayOptions {
    /// The account id in every ARN (`BERTH_ACCOUNT_ID`).
    pub account_id: String,
    /// `sqlite://...` or `postgres://...`.
    pub read_model_url: String,
    /// Drop the read model and replay the log from sequence 1.
    pub rebuild: bool,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// How long task events folded into memory may wait before their rows are
    /// written ([`crate::read_model::TASK_WRITE_INTERVAL`] unless a test needs otherwise).
    pub task_write_interval: std::time::Duration,
}

/// A built gateway, ready to run.
pub struct ApiGateway {
    gateway: Gateway,
    runner: ProjectionRunner<GatewayProjection>,
}

impl ApiGateway {
    /// Opens the read model and prepares its projection.
    pub async fn build(
        log: EventLog,
        options: &ApiGatewayOptions,
    ) -> Result<Self, ProjectionError> {
        let read_model = ReadModel::open(&options.read_model_url).await?;
        let projection = GatewayProjection::default();
        let decided = projection.decided_requests();
        let catalog = projection.catalog_version();
        let task_indexes = projection.task_indexes();
        let runner = ProjectionRunner::new(
            log.clone(),
            read_model.clone(),
            projection,
            RunnerOptions {
                rebuild: options.rebuild,
                write_interval: options.task_write_interval,
                ..RunnerOptions::default()
            },
        )
        .await?;
        // Before the projection runs: from then on it moves what this loaded.
        let loading = std::time::Instant::now();
        task_queries::load_indexes(read_model.pool(), &task_indexes).await?;
        tracing::info!(
            tasks = task_indexes.of_requests.len(),
            elapsed_ms = loading.elapsed().as_millis() as u64,
            "indexes of tasks loaded"
        );
        let gateway = Gateway::new(
            log,
            read_model,
            runner.handle(),
            decided,
            catalog,
            task_indexes,
            options.account_id.clone(),
        );
        Ok(Self { gateway, runner })
    }

    pub fn projection(&self) -> ProjectionHandle {
        self.runner.handle()
    }

    /// The ECS service on `POST /`, for mounting beside other services.
    pub fn router(&self, keys: Arc<KeyStore>, body_limit: usize) -> Router {
        AwsJsonRouter::new(keys)
            .body_limit(body_limit)
            .service_spec(
                ServiceSpec::ECS,
                Arc::new(EcsHandler {
                    gateway: self.gateway.clone(),
                }),
            )
            .into_router()
    }

    /// Serves `router` (built with [`Self::router`] plus whatever else the caller
    /// mounts) on `listener` and runs the projection, until `shutdown`.
    pub async fn run(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_projection, projection_stopped) = tokio::sync::oneshot::channel::<()>();
        let projection = tokio::spawn(self.runner.run(async move {
            let _ = projection_stopped.await;
        }));
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop_projection.send(());
        let _ = projection.await;
        served
    }
}

/// `GET /health`: 200 once every given projection has caught up with the log as it
/// was when it started, 503 (naming the laggards) before.
pub fn health_router(projections: Vec<ProjectionHandle>) -> Router {
    let projections = Arc::new(projections);
    Router::new().route(
        "/health",
        get(move || {
            let projections = projections.clone();
            async move {
                let lagging: Vec<String> = projections
                    .iter()
                    .filter(|p| !p.caught_up())
                    .map(|p| format!("{} at {}", p.name(), p.position()))
                    .collect();
                if lagging.is_empty() {
                    (StatusCode::OK, "ok\n".to_owned())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("catching up: {}\n", lagging.join(", ")),
                    )
                }
            }
        }),
    )
}

struct EcsHandler {
    gateway: Gateway,
}

impl AwsJsonHandler for EcsHandler {
    fn handle<'a>(
        &'a self,
        ctx: RequestContext,
        operation: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, HandlerResult> {
        let span = tracing::info_span!("ecs", operation, request_id = %ctx.request_id);
        Box::pin(
            async move {
                let caller = Caller {
                    request_id: uuid::Uuid::parse_str(&ctx.request_id).ok(),
                    region: ctx.region,
                    access_key_id: ctx.access_key_id,
                    account_id: self.gateway.account_id().to_owned(),
                };
                Ok(commands::dispatch(&self.gateway, &caller, operation, &body).await?)
            }
            .instrument(span),
        )
    }
}
