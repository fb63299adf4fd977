//! The projection runner: log -> batches -> one SQL transaction each.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_eventlog::{EventLog, EventStream, LogError, RecordedEvent};
use futures::{FutureExt, StreamExt};
use sqlx::{AnyConnection, Executor};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::{ProjectionHandle, ReadModel};

/// A read model folded from the log.
pub trait Projection: Send + 'static {
    /// Stable name: the checkpoint's key.
    fn name(&self) -> &'static str;

    /// Idempotent DDL (`CREATE TABLE IF NOT EXISTS ...`) valid in SQLite and
    /// PostgreSQL, run at start. Sortable key columns are declared `KEY_TEXT` (see
    /// [`ReadModel::ddl`]).
    fn schema(&self) -> &'static [&'static str];

    /// The tables to drop for a rebuild.
    fn tables(&self) -> &'static [&'static str];

    /// Applies a batch of events, in order, inside the runner's transaction.
    fn apply(
        &mut self,
        connection: &mut AnyConnection,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;

    /// Takes a batch into memory without writing it, for a projection whose state lives
    /// in memory with SQL as the snapshot a restart begins from (the scheduler's), or
    /// that can hold the rows a batch changes until the next write (the api-gateway's
    /// tasks). Used only with [`RunnerOptions::write_interval`]; `false` (the default)
    /// means the projection cannot fold this batch, which is then applied in its own
    /// transaction, and that transaction must also write everything folded before it.
    /// After `true`, the runner later calls [`Projection::apply`] with no events, which
    /// writes everything folded since the last committed write, with the checkpoint
    /// ([`Projection::committed`] follows once it is): a restart replays the events
    /// after that checkpoint. Queries that read the tables call
    /// [`crate::ProjectionHandle::wait_written`] first.
    fn fold(&mut self, _events: &[RecordedEvent]) -> bool {
        false
    }

    /// The runner's transaction around the last [`Projection::apply`] committed. A
    /// folding projection forgets what it wrote only now: if the commit fails, the
    /// next write must carry it again. A projection that caches the rows it wrote
    /// ([`crate::RowCache`]) serves them only from now on.
    fn committed(&mut self) {}
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read model: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{0}")]
    Invalid(String),
}

/// How the runner works.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// At most this many events per transaction.
    pub batch_size: usize,
    /// Live, at most one batch per this interval: under load the events of an interval
    /// share one transaction (a commit writes every page it touched, whatever the number
    /// of events), while an event arriving after a quiet spell is applied at once.
    pub live_batch_interval: Duration,
    /// Drop the tables and replay from sequence 1.
    pub rebuild: bool,
    /// Zero (the default): every batch is written as it is applied. Otherwise, for a
    /// projection that can [`Projection::fold`], batches are folded into memory at once
    /// (the handle's position follows them) and written at most this often: a task's
    /// requested, placed and running events then cost the database one row write.
    pub write_interval: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 10_000,
            live_batch_interval: Duration::from_millis(5),
            rebuild: false,
            write_interval: Duration::ZERO,
        }
    }
}

const CHECKPOINT_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS berth_checkpoints (\
    projection TEXT PRIMARY KEY, position BIGINT NOT NULL)";

/// Feeds one projection from the log. Build it, take a [`ProjectionHandle`], then
/// [`ProjectionRunner::run`] it.
pub struct ProjectionRunner<P> {
    log: EventLog,
    read_model: ReadModel,
    projection: P,
    options: RunnerOptions,
    position: watch::Sender<u64>,
    /// The last event whose effects are in the tables (the checkpoint).
    written: watch::Sender<u64>,
    /// Readers that need the tables to hold everything applied ask here.
    write_now: Arc<Notify>,
    handle: ProjectionHandle,
    /// The log's last sequence at start: events up to it are known to exist.
    catch_up_target: u64,
    /// The last event folded into memory but not yet written, and when the first
    /// such batch was folded (see [`RunnerOptions::write_interval`]).
    folded_to: Option<u64>,
    folded_since: Option<Instant>,
}

impl<P: Projection> ProjectionRunner<P> {
    /// Creates the schema (dropping it first on rebuild) and loads the checkpoint.
    pub async fn new(
        log: EventLog,
        read_model: ReadModel,
        projection: P,
        options: RunnerOptions,
    ) -> Result<Self, ProjectionError> {
        let pool = read_model.pool();
        pool.execute(CHECKPOINT_SCHEMA).await?;
        if options.rebuild {
            info!(projection = projection.name(), "rebuilding from sequence 1");
            let mut tx = pool.begin().await?;
            for table in projection.tables() {
                tx.execute(format!("DROP TABLE IF EXISTS {table}").as_str())
                    .await?;
            }
            sqlx::query("DELETE FROM berth_checkpoints WHERE projection = $1")
                .bind(projection.name())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        for statement in projection.schema() {
            pool.execute(read_model.ddl(statement).as_str()).await?;
        }
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT position FROM berth_checkpoints WHERE projection = $1")
                .bind(projection.name())
                .fetch_optional(pool)
                .await?;
        let checkpoint = checkpoint.map_or(0, |p| p.max(0) as u64);
        let startup_target = log.last_sequence().await?;
        let (position, receiver) = watch::channel(checkpoint);
        let (written, written_receiver) = watch::channel(checkpoint);
        let write_now = Arc::new(Notify::new());
        let handle = ProjectionHandle::new(
            projection.name(),
            receiver,
            written_receiver,
            write_now.clone(),
            startup_target,
        );
        info!(
            projection = projection.name(),
            checkpoint, startup_target, "projection ready to run"
        );
        Ok(Self {
            log,
            read_model,
            projection,
            options,
            position,
            written,
            write_now,
            handle,
            catch_up_target: startup_target,
            folded_to: None,
            folded_since: None,
        })
    }

    pub fn handle(&self) -> ProjectionHandle {
        self.handle.clone()
    }

    /// Applies the log until `shutdown` completes; the batch in flight is committed
    /// first. Transient failures (log or database) are retried from the checkpoint.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown.fuse());
        let mut backoff = Duration::from_millis(100);
        loop {
            let before = *self.position.borrow();
            let outcome = tokio::select! {
                () = &mut shutdown => {
                    if let Err(error) = self.write_folded().await {
                        warn!(projection = self.projection.name(), %error, "could not write the last folded events; a restart replays them");
                    }
                    return;
                }
                outcome = self.follow() => outcome,
            };
            if *self.position.borrow() > before {
                // It made progress before failing: this is a new failure, not a streak.
                backoff = Duration::from_millis(100);
            }
            if let Err(error) = outcome {
                warn!(projection = self.projection.name(), %error, "projection failed; retrying");
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }

    /// Follows the log from the checkpoint; returns only on error. Cancel-safe: a
    /// batch is either committed with its checkpoint or not at all.
    ///
    /// Reading is a pipeline stage of its own: a reader task receives and decodes
    /// the next batch while this one is being applied, so replaying the log keeps
    /// both cores busy instead of alternating between decoding and SQL.
    async fn follow(&mut self) -> Result<(), ProjectionError> {
        let from = *self.position.borrow() + 1;
        let events = self.log.subscribe(from).await?;
        let (batches, mut received) = mpsc::channel(1);
        let reader = tokio::spawn(read_batches(
            events,
            self.options.clone(),
            self.catch_up_target,
            batches,
        ));
        // Dropping `follow` (shutdown, error) stops the reader with it.
        let _reader = AbortOnDrop(reader);
        loop {
            let write_due = self
                .folded_since
                .map(|since| since + self.options.write_interval);
            tokio::select! {
                batch = received.recv() => match batch {
                    Some(batch) => self.take_batch(batch?).await?,
                    None => return Err(ProjectionError::Invalid("event stream ended".into())),
                },
                () = sleep_until_some(write_due) => self.write_folded().await?,
                () = self.write_now.notified() => self.write_folded().await?,
            }
        }
    }

    /// Applies the batch, or folds it into memory and writes what was folded once
    /// the write interval has passed since the first unwritten batch.
    async fn take_batch(&mut self, batch: Vec<RecordedEvent>) -> Result<(), ProjectionError> {
        let Some(last) = batch.last().map(|e| e.sequence) else {
            return Ok(());
        };
        if self.options.write_interval.is_zero() || !self.projection.fold(&batch) {
            // Written right away, so nothing folded may be left behind unwritten.
            return self.apply_batch(&batch).await;
        }
        self.folded_to = Some(last);
        self.position.send_replace(last);
        let since = *self.folded_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.options.write_interval {
            self.write_folded().await?;
        }
        Ok(())
    }

    /// Writes what was folded since the last write, with its checkpoint.
    async fn write_folded(&mut self) -> Result<(), ProjectionError> {
        let Some(last) = self.folded_to else {
            return Ok(());
        };
        self.commit(&[], last).await?;
        self.folded_to = None;
        self.folded_since = None;
        Ok(())
    }

    async fn apply_batch(&mut self, batch: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = batch.last().map(|e| e.sequence) else {
            return Ok(());
        };
        // The projection wrote what it had folded with the batch.
        self.commit(batch, last).await?;
        self.folded_to = None;
        self.folded_since = None;
        self.position.send_replace(last);
        Ok(())
    }

    /// Applies `batch` (empty: writes what was folded) and moves the checkpoint to
    /// `last`, in one transaction.
    async fn commit(&mut self, batch: &[RecordedEvent], last: u64) -> Result<(), ProjectionError> {
        let started = Instant::now();
        let mut tx = self.read_model.begin_write().await?;
        self.projection.apply(&mut tx, batch).await?;
        sqlx::query(
            "INSERT INTO berth_checkpoints (projection, position) VALUES ($1, $2) \
             ON CONFLICT (projection) DO UPDATE SET position = excluded.position",
        )
        .bind(self.projection.name())
        .bind(last as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.projection.committed();
        self.written.send_replace(last);
        tracing::debug!(
            projection = self.projection.name(),
            checkpoint = last,
            events = batch.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            // How long after its first event was written the batch was committed.
            lag_ms = batch.first().map_or(0, |e| {
                berth_events::EpochMillis::now().0 - e.meta.time.0
            }),
            "batch applied"
        );
        Ok(())
    }
}

/// Reads the log into batches of at most `batch_size` events and hands each to the
/// applier. Catching up (before `catch_up_target`), the next events are known to
/// exist, so it sends full batches. Live, it sends whatever it has as soon as the
/// applier is free and the last batch left at least `live_batch_interval` ago, and
/// keeps adding to the batch meanwhile: a write after a quiet spell is applied at
/// once, and a burst still travels in few transactions.
async fn read_batches(
    mut events: EventStream,
    options: RunnerOptions,
    catch_up_target: u64,
    batches: mpsc::Sender<Result<Vec<RecordedEvent>, LogError>>,
) {
    let batch_size = options.batch_size;
    // Batches grow as needed: live ones are small, and a full-size allocation per
    // batch (megabytes) cost more in page faults than the events themselves.
    let mut batch: Vec<RecordedEvent> = Vec::new();
    // When the next live batch may leave.
    let mut next_live_batch = Instant::now();
    loop {
        let catching_up = batch.last().is_none_or(|e| e.sequence < catch_up_target);
        let live_due = !catching_up && Instant::now() >= next_live_batch;
        let ready_to_send = !batch.is_empty() && (batch.len() >= batch_size || live_due);
        let lingering = !batch.is_empty() && !catching_up && !live_due;
        tokio::select! {
            // Reading first: what is already here joins the batch before it leaves.
            biased;
            next = events.next(), if batch.len() < batch_size => match next {
                Some(Ok(event)) => batch.push(event),
                Some(Err(error)) => {
                    let _ = batches.send(Err(error)).await;
                    return;
                }
                None => return,
            },
            permit = batches.reserve(), if ready_to_send => match permit {
                Ok(permit) => {
                    permit.send(Ok(std::mem::take(&mut batch)));
                    next_live_batch = Instant::now() + options.live_batch_interval;
                }
                Err(_) => return,
            },
            () = tokio::time::sleep_until(next_live_batch), if lingering => {}
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
