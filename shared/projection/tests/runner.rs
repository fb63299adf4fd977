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
        let event = ClusterCreated {
            name: name.clone(),
            settings: vec![],
            configuration: None,
            service_connect_defaults: None,
            capacity_providers: vec![],
            default_capacity_provider_strategy: vec![],
            tags: vec![],
        };
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
    let runner = ProjectionRunner::new(log.clone(), read_model, CreationCounter, options)
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
