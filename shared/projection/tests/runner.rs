//! The runner against a real nats-server, on SQLite and on PostgreSQL: exactly-once
//! application, resume from the checkpoint, and rebuild from sequence 1.

use std::time::Duration;

use berth_eventlog::{Append, EventLog, RecordedEvent};
use berth_events::{Aggregate, ClusterCreated, ClusterDeleted, Event, EventMeta};
use berth_projection::{Projection, ProjectionError, ProjectionRunner, ReadModel, RunnerOptions};
use berth_testkit::TestNats;
use sqlx::AnyConnection;

/// Counts how often each cluster was created: any double application shows.
struct CreationCounter;

impl Projection for CreationCounter {
    fn name(&self) -> &'static str {
        "creation-counter"
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS creations (name TEXT PRIMARY KEY, n BIGINT NOT NULL, deleted BIGINT NOT NULL)",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["creations"]
    }

    async fn apply(
        &mut self,
        connection: &mut AnyConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for recorded in events {
            let Aggregate::Cluster(name) = &recorded.aggregate else {
                continue;
            };
            let deleted = match &recorded.event {
                Some(Event::ClusterCreated(_)) => 0,
                Some(Event::ClusterDeleted(_)) => 1,
                _ => continue,
            };
            sqlx::query(
                "INSERT INTO creations (name, n, deleted) VALUES ($1, 1 - $2, $2) \
                 ON CONFLICT (name) DO UPDATE SET n = creations.n + 1 - $2, deleted = creations.deleted + $2",
            )
            .bind(name.as_str())
            .bind(deleted)
            .execute(&mut *connection)
            .await?;
        }
        Ok(())
    }
}

async fn append_clusters(log: &EventLog, names: impl IntoIterator<Item = String>) -> u64 {
    let mut last = 0;
    for name in names {
        let event = ClusterCreated::named(name.clone());
        last = log
            .append(Append::new(
                Aggregate::Cluster(name),
                event,
                EventMeta::new(),
            ))
            .await
            .unwrap()
            .sequence;
    }
    last
}

async fn counts(read_model: &ReadModel) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT name, n FROM creations ORDER BY name")
        .fetch_all(read_model.pool())
        .await
        .unwrap()
}

async fn start(
    log: &EventLog,
    url: &str,
    rebuild: bool,
) -> (
    berth_projection::ProjectionHandle,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let read_model = ReadModel::open(url).await.unwrap();
    let options = RunnerOptions {
        batch_size: 7,
        rebuild,
        ..RunnerOptions::default()
    };
    spawn(log, read_model, CreationCounter, options).await
}

/// Runs `projection` until the returned sender is used (or dropped).
async fn spawn(
    log: &EventLog,
    read_model: ReadModel,
    projection: impl Projection,
    options: RunnerOptions,
) -> (
    berth_projection::ProjectionHandle,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let runner = ProjectionRunner::new(log.clone(), read_model, projection, options)
        .await
        .unwrap();
    let handle = runner.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    (handle, stop, task)
}

async fn exercise(url: String) {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    let wait = Duration::from_secs(10);

    let last = append_clusters(&log, (0..50).map(|i| format!("c{i:02}"))).await;
    let (handle, stop, task) = start(&log, &url, false).await;
    handle.wait_for(last, wait).await.unwrap();
    assert!(handle.caught_up());
    // A foreign-to-this-projection event still advances the checkpoint.
    let deleted = log
        .append(Append::new(
            Aggregate::Cluster("c00".into()),
            ClusterDeleted {},
            EventMeta::new(),
        ))
        .await
        .unwrap();
    handle.wait_for(deleted.sequence, wait).await.unwrap();
    stop.send(()).unwrap();
    task.await.unwrap();

    // Events appended while the service is down are applied once on restart.
    let last = append_clusters(&log, (50..60).map(|i| format!("c{i:02}"))).await;
    let read_model = ReadModel::open(&url).await.unwrap();
    let (handle, stop, task) = start(&log, &url, false).await;
    handle.wait_for(last, wait).await.unwrap();
    let resumed = counts(&read_model).await;
    assert_eq!(resumed.len(), 60);
    assert!(resumed.iter().all(|(_, n)| *n == 1), "{resumed:?}");
    stop.send(()).unwrap();
    task.await.unwrap();

    // A rebuild replays from sequence 1 and ends with the same read model.
    let (handle, stop, task) = start(&log, &url, true).await;
    handle.wait_for(last, wait).await.unwrap();
    assert_eq!(counts(&read_model).await, resumed);
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn sqlite_read_model_resumes_and_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    exercise(format!("sqlite://{}", dir.path().join("rm.db").display())).await;
}

#[tokio::test]
async fn postgres_read_model_resumes_and_rebuilds() {
    exercise(berth_testkit::postgres_database().await).await;
}

/// Counts creations in memory and writes the counts only when the runner asks: a
/// projection that can fold (as the scheduler does).
#[derive(Default)]
struct FoldingCounter {
    counts: std::collections::BTreeMap<String, i64>,
    unwritten: std::collections::BTreeSet<String>,
}

impl FoldingCounter {
    /// Counts the batch's creations in memory, to be written at the next write.
    fn count(&mut self, events: &[RecordedEvent]) {
        for recorded in events {
            if let (Aggregate::Cluster(name), Some(Event::ClusterCreated(_))) =
                (&recorded.aggregate, &recorded.event)
            {
                *self.counts.entry(name.clone()).or_default() += 1;
                self.unwritten.insert(name.clone());
            }
        }
    }
}

impl Projection for FoldingCounter {
    fn name(&self) -> &'static str {
        "folding-counter"
    }

    fn schema(&self) -> &'static [&'static str] {
        CreationCounter.schema()
    }

    fn tables(&self) -> &'static [&'static str] {
        CreationCounter.tables()
    }

    fn fold(&mut self, events: &[RecordedEvent]) -> bool {
        // Declines batches with a cluster named `unfoldable-*`, as a projection does
        // whose rows for a batch are not all in memory: the runner applies those.
        let declined = events.iter().any(|recorded| {
            matches!(&recorded.aggregate, Aggregate::Cluster(name) if name.starts_with("unfoldable-"))
        });
        if declined {
            return false;
        }
        self.count(events);
        true
    }

    fn committed(&mut self) {
        self.unwritten.clear();
    }

    async fn apply(
        &mut self,
        connection: &mut AnyConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        self.count(events);
        for name in &self.unwritten {
            sqlx::query(
                "INSERT INTO creations (name, n, deleted) VALUES ($1, $2, 0) \
                 ON CONFLICT (name) DO UPDATE SET n = excluded.n",
            )
            .bind(name.as_str())
            .bind(self.counts[name])
            .execute(&mut *connection)
            .await?;
        }
        Ok(())
    }
}

/// A [`FoldingCounter`] run by a runner that writes at `write_interval`, on its own
/// nats-server and SQLite file.
struct Folding {
    _nats: TestNats,
    _dir: tempfile::TempDir,
    log: EventLog,
    read_model: ReadModel,
    handle: berth_projection::ProjectionHandle,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Folding {
    async fn start(write_interval: Duration) -> Self {
        let nats = TestNats::start();
        let log = nats.event_log().await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("rm.db").display());
        let read_model = ReadModel::open(&url).await.unwrap();
        let options = RunnerOptions {
            write_interval,
            ..RunnerOptions::default()
        };
        let (handle, stop, task) =
            spawn(&log, read_model.clone(), FoldingCounter::default(), options).await;
        Self {
            _nats: nats,
            _dir: dir,
            log,
            read_model,
            handle,
            stop,
            task,
        }
    }

    /// The log, the read model and the runner's handle.
    fn parts(&self) -> (EventLog, ReadModel, berth_projection::ProjectionHandle) {
        (
            self.log.clone(),
            self.read_model.clone(),
            self.handle.clone(),
        )
    }

    /// Stops the runner gracefully (it writes what it folded).
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap();
    }
}

async fn checkpoint(read_model: &ReadModel, projection: &str) -> i64 {
    sqlx::query_scalar("SELECT position FROM berth_checkpoints WHERE projection = $1")
        .bind(projection)
        .fetch_optional(read_model.pool())
        .await
        .unwrap()
        .unwrap_or(0)
}

/// With a write interval, batches are folded into memory at once (the handle follows
/// them) and written with their checkpoint later: after the interval, or on shutdown.
#[tokio::test]
async fn folded_batches_are_written_after_the_interval_and_on_shutdown() {
    let folding = Folding::start(Duration::from_secs(3)).await;
    let (log, read_model, handle) = folding.parts();
    let wait = Duration::from_secs(10);

    let last = append_clusters(&log, (0..20).map(|i| format!("c{i:02}"))).await;
    handle.wait_for(last, wait).await.unwrap();
    assert!(
        checkpoint(&read_model, "folding-counter").await < last as i64,
        "folded events were written before the interval"
    );
    let deadline = tokio::time::Instant::now() + wait;
    while checkpoint(&read_model, "folding-counter").await < last as i64 {
        assert!(tokio::time::Instant::now() < deadline, "never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts(&read_model).await.len(), 20);

    let last = append_clusters(&log, (20..25).map(|i| format!("c{i:02}"))).await;
    handle.wait_for(last, wait).await.unwrap();
    folding.stop().await;
    assert_eq!(
        checkpoint(&read_model, "folding-counter").await,
        last as i64
    );
    let written = counts(&read_model).await;
    assert_eq!(written.len(), 25);
    assert!(written.iter().all(|(_, n)| *n == 1), "{written:?}");
}

/// A folded write that fails is carried by the next one: nothing folded is lost when
/// its checkpoint is finally written.
#[tokio::test]
async fn a_failed_folded_write_is_written_again() {
    let folding = Folding::start(Duration::from_millis(200)).await;
    let (log, read_model, handle) = folding.parts();

    // Without its table, every write fails until the table is back.
    sqlx::query("DROP TABLE creations")
        .execute(read_model.pool())
        .await
        .unwrap();
    let last = append_clusters(&log, (0..10).map(|i| format!("c{i:02}"))).await;
    handle
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(checkpoint(&read_model, "folding-counter").await, 0);
    sqlx::query(FoldingCounter::default().schema()[0])
        .execute(read_model.pool())
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while checkpoint(&read_model, "folding-counter").await < last as i64 {
        assert!(tokio::time::Instant::now() < deadline, "never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written = counts(&read_model).await;
    assert_eq!(written.len(), 10, "{written:?}");
    folding.stop().await;
}

/// A reader that needs the tables to hold everything applied gets it written at once,
/// long before the write interval.
#[tokio::test]
async fn wait_written_has_folded_batches_written_at_once() {
    let folding = Folding::start(Duration::from_secs(600)).await;
    let (log, read_model, handle) = folding.parts();

    let last = append_clusters(&log, (0..10).map(|i| format!("c{i:02}"))).await;
    handle
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(checkpoint(&read_model, "folding-counter").await, 0);
    handle.wait_written(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        checkpoint(&read_model, "folding-counter").await,
        last as i64
    );
    assert_eq!(counts(&read_model).await.len(), 10);
    // Nothing folded since: returns at once.
    handle.wait_written(Duration::from_millis(1)).await.unwrap();
    folding.stop().await;
}

/// A batch the projection declines to fold is applied with everything folded before
/// it; the runner then has nothing left to write, and its checkpoint never moves back
/// to where the folded batches ended.
#[tokio::test]
async fn a_declined_batch_writes_what_was_folded_and_the_checkpoint_stays() {
    let folding = Folding::start(Duration::from_millis(300)).await;
    let (log, read_model, handle) = folding.parts();

    let folded = append_clusters(&log, (0..5).map(|i| format!("c{i:02}"))).await;
    handle
        .wait_for(folded, Duration::from_secs(10))
        .await
        .unwrap();
    let last = append_clusters(&log, ["unfoldable-1".to_owned()]).await;
    handle
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        checkpoint(&read_model, "folding-counter").await,
        last as i64
    );
    assert_eq!(counts(&read_model).await.len(), 6);
    // Past the write interval of the folded batches.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        checkpoint(&read_model, "folding-counter").await,
        last as i64
    );
    folding.stop().await;
}
