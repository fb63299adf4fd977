//! The gateway's state and its one way of executing a command.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_eventlog::{Append, AppendError, EventLog};
use berth_projection::{ProjectionHandle, ReadModel};
use sqlx::AnyPool;
use tracing::debug;

use crate::arn::ArnContext;
use crate::error::{ApiResult, GatewayError};
use crate::read_model::{Catalog, CatalogVersion, DecidedRequests, TaskIndexes};

/// How long a command waits for the read model to show its own write.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);
/// How often a command is decided again after losing an optimistic-concurrency race.
const MAX_ATTEMPTS: usize = 5;

/// Cheap to clone: every request handler holds one.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    log: EventLog,
    read_model: ReadModel,
    projection: ProjectionHandle,
    decided: DecidedRequests,
    catalog: Catalog,
    task_indexes: TaskIndexes,
    account_id: String,
}

/// The events a command appends, and what it wants to report about them.
pub struct Decision<T> {
    pub appends: Vec<Append>,
    pub outcome: T,
}

/// Who is asking, and for which region the answer is rendered.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The request's id; events it causes carry it as their correlation id.
    pub request_id: Option<uuid::Uuid>,
    pub region: String,
    pub access_key_id: String,
    pub account_id: String,
}

impl Caller {
    pub fn arns(&self) -> ArnContext {
        ArnContext {
            region: self.region.clone(),
            account_id: self.account_id.clone(),
        }
    }

    /// `registeredBy` and similar: the caller as an IAM principal ARN.
    pub fn principal_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account_id)
    }
}

impl Gateway {
    pub fn new(
        log: EventLog,
        read_model: ReadModel,
        projection: ProjectionHandle,
        decided: DecidedRequests,
        catalog: CatalogVersion,
        task_indexes: TaskIndexes,
        account_id: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                log,
                read_model,
                projection,
                decided,
                catalog: Catalog::new(catalog),
                task_indexes,
                account_id,
            }),
        }
    }

    pub fn db(&self) -> &AnyPool {
        self.inner.read_model.pool()
    }

    /// The read model, once it holds every task event the projection has applied (it
    /// folds task events into memory and writes them at intervals): what queries of
    /// tasks read from.
    pub async fn tasks_db(&self) -> ApiResult<&AnyPool> {
        self.inner.projection.wait_written(READ_YOUR_WRITES).await?;
        Ok(self.db())
    }

    pub fn projection(&self) -> &ProjectionHandle {
        &self.inner.projection
    }

    /// Announcements of RunTask requests the scheduler decided.
    pub fn decided_requests(&self) -> &DecidedRequests {
        &self.inner.decided
    }

    /// Clusters, task definitions and instance registrations, remembered between
    /// the projection's commits that change them.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The read model's indexes of tasks by instance and by request.
    pub fn task_indexes(&self) -> &TaskIndexes {
        &self.inner.task_indexes
    }

    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }

    pub fn account_id(&self) -> &str {
        &self.inner.account_id
    }

    /// Executes a command: `decide` reads the read model and returns the events to
    /// append (each with the aggregate version it read); they are appended
    /// atomically, and the command returns once the read model shows them, so the
    /// caller reads its own write. When another writer got there first, the read
    /// model is brought up to date and `decide` runs again.
    pub async fn execute<F, Fut>(&self, mut decide: F) -> ApiResult<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ApiResult<Vec<Append>>>,
    {
        self.execute_with(|| {
            let decided = decide();
            async move {
                Ok(Decision {
                    appends: decided.await?,
                    outcome: (),
                })
            }
        })
        .await
    }

    /// [`Self::execute`] for a decision that also tells the caller something (the
    /// revision it registered, say): returns the outcome of the decision that won.
    pub async fn execute_with<T, F, Fut>(&self, mut decide: F) -> ApiResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ApiResult<Decision<T>>>,
    {
        for attempt in 1..=MAX_ATTEMPTS {
            let Decision { appends, outcome } = decide().await?;
            if appends.is_empty() {
                return Ok(outcome);
            }
            match self.inner.log.append_all(appends).await {
                Ok(appended) => {
                    self.inner
                        .projection
                        .wait_for(appended.sequence, READ_YOUR_WRITES)
                        .await?;
                    return Ok(outcome);
                }
                Err(AppendError::Conflict { subject }) => {
                    debug!(subject, attempt, "lost a race; deciding again");
                    self.catch_up().await?;
                }
                Err(error) => return Err(GatewayError::Log(error.to_string())),
            }
        }
        Err(GatewayError::Log(format!(
            "gave up after {MAX_ATTEMPTS} concurrent-change conflicts"
        )))
    }

    /// Waits until the read model has applied everything in the log now.
    pub async fn catch_up(&self) -> ApiResult<()> {
        let last = self.inner.log.last_sequence().await?;
        self.inner
            .projection
            .wait_for(last, READ_YOUR_WRITES)
            .await?;
        Ok(())
    }
}
