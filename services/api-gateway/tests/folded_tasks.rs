//! The api-gateway folds task events into memory and writes their rows at intervals
//! (`TASK_WRITE_INTERVAL`): queries still see every event the projection applied, and a
//! gateway killed before writing loses nothing, because its checkpoint stays behind
//! what it folded and the restarted gateway replays from there.

use std::sync::Arc;
use std::time::Duration;

use berth_api_gateway::{ApiGateway, ApiGatewayOptions};
use berth_aws_protocol::sigv4::KeyStore;
use berth_eventlog::{Append, EventLog, LogConfig};
use berth_events::{
    Aggregate, Event, EventMeta, JsonText, TaskPlaced, TaskRequested, TaskStateReported,
};
use berth_projection::{ProjectionHandle, ReadModel};
use berth_testkit::TestNats;
use berth_testkit::aws::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, ecs_client};

const CLUSTER: &str = "folded";
const INSTANCE: &str = "0123456789abcdef0123456789abcdef";
const WAIT: Duration = Duration::from_secs(10);

/// A gateway on its own runtime: dropping the runtime stops it mid-flight, as a crash
/// would, without the graceful shutdown that writes what it folded.
struct RunningGateway {
    runtime: tokio::runtime::Runtime,
    projection: ProjectionHandle,
    ecs: aws_sdk_ecs::Client,
}

async fn start(nats_url: &str, read_model_url: &str) -> RunningGateway {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (nats_url, read_model_url) = (nats_url.to_owned(), read_model_url.to_owned());
    let (projection, address) = runtime
        .spawn(async move {
            let log = EventLog::connect(&nats_url, &LogConfig::default())
                .await
                .unwrap();
            let options = ApiGatewayOptions {
                account_id: "123456789012".into(),
                read_model_url,
                rebuild: false,
                body_limit: 1024 * 1024,
                // Long: only queries and shutdown have the gateway write.
                task_write_interval: Duration::from_secs(600),
            };
            let gateway = ApiGateway::build(log, &options).await.unwrap();
            let keys = KeyStore::new().with_key(ACCESS_KEY_ID, SECRET_ACCESS_KEY);
            let router = gateway.router(Arc::new(keys), options.body_limit);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let projection = gateway.projection();
            tokio::spawn(gateway.run(listener, router, std::future::pending()));
            (projection, address)
        })
        .await
        .unwrap();
    let ecs = ecs_client(
        &format!("http://{address}"),
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
    );
    RunningGateway {
        runtime,
        projection,
        ecs,
    }
}

fn task(id: &str) -> Aggregate {
    Aggregate::Task {
        cluster: CLUSTER.into(),
        id: id.into(),
    }
}

async fn append(log: &EventLog, id: &str, event: impl Into<Event>) -> u64 {
    log.append(Append::new(task(id), event, EventMeta::new()))
        .await
        .unwrap()
        .sequence
}

/// TaskRequested then TaskPlaced on [`INSTANCE`]; returns the placement's sequence.
async fn request_and_place(log: &EventLog, id: &str) -> u64 {
    let requested = TaskRequested {
        family: "web".into(),
        revision: 1,
        definition: JsonText::from_value(&serde_json::json!({
            "family": "web",
            "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]
        })),
        overrides: None,
        cpu_units: 0,
        memory_mib: 64,
        ports: vec![],
        constraints: vec![],
        strategy: vec![],
        target_instances: vec![],
        group: "family:web".into(),
        started_by: None,
        launch_type: "EC2".into(),
        tags: vec![],
        request_id: format!("request-{id}"),
    };
    append(log, id, requested).await;
    let placed = TaskPlaced {
        container_instance_id: INSTANCE.into(),
        cpu_units: 0,
        memory_mib: 64,
        ports: vec![],
    };
    append(log, id, placed).await
}

fn reported(last_status: &str) -> TaskStateReported {
    TaskStateReported {
        last_status: last_status.into(),
        stop_code: (last_status == "STOPPED").then(|| "EssentialContainerExited".into()),
        ..TaskStateReported::default()
    }
}

/// The projection's checkpoint as the read model holds it.
async fn checkpoint(read_model: &ReadModel) -> u64 {
    let position: i64 = sqlx::query_scalar(
        "SELECT position FROM berth_checkpoints WHERE projection = 'api-gateway'",
    )
    .fetch_optional(read_model.pool())
    .await
    .unwrap()
    .unwrap_or(0);
    position as u64
}

/// `(task id, lastStatus)` of the tasks DescribeTasks shows, by id.
async fn statuses(ecs: &aws_sdk_ecs::Client, ids: &[&str]) -> Vec<(String, String)> {
    let described = ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(ids.iter().map(|id| id.to_string()).collect()))
        .send()
        .await
        .unwrap();
    assert!(
        described.failures().is_empty(),
        "{:?}",
        described.failures()
    );
    let mut statuses: Vec<(String, String)> = (described.tasks().iter())
        .map(|task| {
            let id = task.task_arn().unwrap().rsplit('/').next().unwrap();
            (id.to_owned(), task.last_status().unwrap().to_owned())
        })
        .collect();
    statuses.sort();
    statuses
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    (expected.iter())
        .map(|(id, status)| (id.to_string(), status.to_string()))
        .collect()
}

#[tokio::test]
async fn on_sqlite_queries_see_folded_tasks_and_a_killed_gateway_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    folded_then_killed(&format!("sqlite://{}", dir.path().join("api.db").display())).await;
}

#[tokio::test]
async fn on_postgres_queries_see_folded_tasks_and_a_killed_gateway_loses_none() {
    folded_then_killed(&berth_testkit::postgres_database().await).await;
}

async fn folded_then_killed(url: &str) {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    let read_model = ReadModel::open(url).await.unwrap();

    let gateway = start(&nats.url(), url).await;
    gateway
        .ecs
        .create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    request_and_place(&log, "task-a").await;
    let last = append(&log, "task-a", reported("RUNNING")).await;
    gateway.projection.wait_for(last, WAIT).await.unwrap();
    assert!(
        checkpoint(&read_model).await < last,
        "task events were written as they came, not folded"
    );
    // A query has the gateway write what it folded first.
    assert_eq!(
        statuses(&gateway.ecs, &["task-a"]).await,
        pairs(&[("task-a", "RUNNING")])
    );
    assert_eq!(checkpoint(&read_model).await, last);

    // Folded again, then killed before the next write.
    append(&log, "task-a", reported("STOPPED")).await;
    let last = request_and_place(&log, "task-b").await;
    gateway.projection.wait_for(last, WAIT).await.unwrap();
    assert!(checkpoint(&read_model).await < last);
    gateway.runtime.shutdown_background();

    let gateway = start(&nats.url(), url).await;
    gateway.projection.wait_for(last, WAIT).await.unwrap();
    assert_eq!(
        statuses(&gateway.ecs, &["task-a", "task-b"]).await,
        pairs(&[("task-a", "STOPPED"), ("task-b", "PENDING")])
    );
    let listed = gateway
        .ecs
        .list_tasks()
        .cluster(CLUSTER)
        .container_instance(INSTANCE)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.task_arns().len(), 1, "{:?}", listed.task_arns());
    assert!(listed.task_arns()[0].ends_with("/task-b"));
    gateway.runtime.shutdown_background();
}
