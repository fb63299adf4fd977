//! The event log against a real nats-server.

use berth_eventlog::{Append, AppendError, Expect};
use berth_events::{Aggregate, ClusterCreated, ClusterDeleted, ClusterUpdated, Event, EventMeta};
use berth_testkit::TestNats;
use futures::StreamExt;

fn created(name: &str) -> ClusterCreated {
    ClusterCreated::named(name)
}

fn cluster(name: &str) -> Aggregate {
    Aggregate::Cluster(name.into())
}

#[tokio::test]
async fn conditional_appends_detect_concurrent_writers() {
    let nats = TestNats::start();
    let log = nats.event_log().await;

    let first = log
        .append(Append::new(cluster("a"), created("a"), EventMeta::new()).expect(Expect::New))
        .await
        .unwrap();
    // A second creation loses the race cleanly.
    let again = log
        .append(Append::new(cluster("a"), created("a"), EventMeta::new()).expect(Expect::New))
        .await;
    assert!(
        matches!(again, Err(AppendError::Conflict { .. })),
        "{again:?}"
    );

    // Appending at the version we read works once; a stale version then conflicts.
    let update = || Append::new(cluster("a"), ClusterUpdated::default(), EventMeta::new());
    let second = log
        .append(update().expect(Expect::Version(first.sequence)))
        .await
        .unwrap();
    assert!(second.sequence > first.sequence);
    let stale = log
        .append(update().expect(Expect::Version(first.sequence)))
        .await;
    assert!(matches!(stale, Err(AppendError::Conflict { .. })));
    assert_eq!(
        log.aggregate_version(&cluster("a")).await.unwrap(),
        second.sequence
    );
    assert_eq!(log.aggregate_version(&cluster("none")).await.unwrap(), 0);
}

#[tokio::test]
async fn idempotency_keys_deduplicate_retries() {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    let append =
        Append::new(cluster("b"), created("b"), EventMeta::new()).idempotency_key("token-1");
    let first = log.append(append.clone()).await.unwrap();
    let retry = log.append(append).await.unwrap();
    assert_eq!(retry.sequence, first.sequence);
    assert!(retry.duplicate && !first.duplicate);
    assert_eq!(log.last_sequence().await.unwrap(), first.sequence);
}

#[tokio::test]
async fn atomic_batches_store_all_or_nothing() {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    let batch: Vec<Append> = ["x", "y", "z"]
        .iter()
        .map(|name| Append::new(cluster(name), created(name), EventMeta::new()).expect(Expect::New))
        .collect();
    let appended = log.append_all(batch).await.unwrap();
    assert_eq!(appended.sequence, 3);

    // One conflicting member rejects the whole batch: nothing of it is stored.
    let batch: Vec<Append> = ["w", "x"]
        .iter()
        .map(|name| Append::new(cluster(name), created(name), EventMeta::new()).expect(Expect::New))
        .collect();
    let refused = log.append_all(batch).await;
    assert!(
        matches!(refused, Err(AppendError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(log.last_sequence().await.unwrap(), 3);
    assert_eq!(log.aggregate_version(&cluster("w")).await.unwrap(), 0);
}

#[tokio::test]
async fn repeated_events_are_appended_each_on_its_own_and_read_back_as_they_are() {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    log.append(Append::new(
        cluster("taken"),
        created("taken"),
        EventMeta::new(),
    ))
    .await
    .unwrap();
    // Runs of equal events share one encoding; each still lands, or fails, on its own.
    let configured = |value| ClusterUpdated {
        configuration: Some(serde_json::json!({ "executeCommandConfiguration": value })),
        ..ClusterUpdated::default()
    };
    let events: Vec<(&str, Event, Expect)> = vec![
        ("a", configured("one").into(), Expect::Any),
        ("b", configured("one").into(), Expect::Any),
        ("taken", created("taken").into(), Expect::New),
        ("c", created("c").into(), Expect::New),
        ("d", configured("one").into(), Expect::Any),
        ("e", configured("two").into(), Expect::Any),
        ("f", configured("two").into(), Expect::Any),
    ];
    let appends = events
        .iter()
        .map(|(name, event, expect)| {
            Append::new(cluster(name), event.clone(), EventMeta::new()).expect(*expect)
        })
        .collect();
    let results = log.append_each(appends).await;
    let refused: Vec<bool> = results.iter().map(Result::is_err).collect();
    assert_eq!(refused, [false, false, true, false, false, false, false]);

    // Read back through a stream that decodes a run of equal payloads once, too.
    let mut stored = log.subscribe(2).await.unwrap();
    for (name, event, _) in events.iter().filter(|(name, ..)| *name != "taken") {
        let recorded = stored.next().await.unwrap().unwrap();
        assert_eq!(recorded.aggregate, cluster(name));
        assert_eq!(recorded.event.as_ref(), Some(event), "{name}");
    }
}

#[tokio::test]
async fn subscribers_read_from_any_sequence_then_live() {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    for name in ["a", "b", "c"] {
        log.append(Append::new(cluster(name), created(name), EventMeta::new()))
            .await
            .unwrap();
    }
    let mut events = log.subscribe(2).await.unwrap();
    let second = events.next().await.unwrap().unwrap();
    assert_eq!(
        (second.sequence, second.aggregate.clone()),
        (2, cluster("b"))
    );
    assert_eq!(events.next().await.unwrap().unwrap().sequence, 3);

    let meta = EventMeta::new().with_trace_context(vec![(
        "traceparent".into(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    )]);
    log.append(Append::new(cluster("a"), ClusterDeleted {}, meta.clone()))
        .await
        .unwrap();
    let live = events.next().await.unwrap().unwrap();
    assert_eq!(live.sequence, 4);
    assert_eq!(live.meta, meta);
    assert_eq!(live.event, Some(Event::ClusterDeleted(ClusterDeleted {})));
}

#[tokio::test]
async fn acknowledged_appends_survive_a_server_crash() {
    let mut nats = TestNats::start();
    let log = nats.event_log().await;
    let appended = log
        .append(Append::new(
            cluster("durable"),
            created("durable"),
            EventMeta::new(),
        ))
        .await
        .unwrap();
    drop(log);
    nats.server.restart().unwrap();
    let log = nats.event_log().await;
    assert_eq!(
        log.aggregate_version(&cluster("durable")).await.unwrap(),
        appended.sequence
    );
}

#[test]
fn the_local_server_runs_go_on_half_the_cores_unless_told_otherwise() {
    let nats = TestNats::start();
    let environ = std::fs::read(format!("/proc/{}/environ", nats.server.pid())).unwrap();
    let gomaxprocs = environ
        .split(|byte| *byte == 0)
        .find_map(|entry| entry.strip_prefix(b"GOMAXPROCS="))
        .map(|value| String::from_utf8_lossy(value).into_owned());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let expected = std::env::var("GOMAXPROCS").unwrap_or_else(|_| (cores / 2).max(1).to_string());
    assert_eq!(gomaxprocs.as_deref(), Some(expected.as_str()));
}
