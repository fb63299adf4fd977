//! A shared tail against a real nats-server: subscribers see what private consumers
//! would show them, from any sequence, however far behind they fall, while the
//! server feeds the process one consumer.

use std::time::Duration;

use berth_eventlog::{Append, EventLog, EventStream, LogError};
use berth_events::{Aggregate, ClusterCreated, EventMeta, SUBJECT_PREFIX};
use berth_testkit::TestNats;
use futures::StreamExt;

fn created(name: &str) -> Append {
    Append::new(
        Aggregate::Cluster(name.into()),
        ClusterCreated::named(name),
        EventMeta::new(),
    )
}

async fn append_clusters(log: &EventLog, names: std::ops::Range<usize>) {
    for n in names {
        log.append(created(&format!("c{n}"))).await.unwrap();
    }
}

/// The sequences of the next `count` events (or the error that ended them).
async fn sequences(events: &mut EventStream, count: usize) -> Vec<u64> {
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the next event within 10 s")
            .expect("the stream goes on")
            .expect("an event");
        seen.push(next.sequence);
    }
    seen
}

async fn consumers(log: &EventLog) -> usize {
    let jetstream = async_nats::jetstream::new(log.client().clone());
    let mut stream = jetstream.get_stream("BERTH_EVENTS").await.unwrap();
    stream.info().await.unwrap().state.consumer_count
}

#[tokio::test]
async fn subscribers_from_history_and_from_the_live_end_see_every_event_in_order() {
    let nats = TestNats::start();
    let log = nats.event_log().await.with_shared_tail(1024);
    append_clusters(&log, 0..5).await;

    let mut from_start = log.subscribe(1).await.unwrap();
    let mut from_third = log.subscribe(3).await.unwrap();
    append_clusters(&log, 5..20).await;
    // Joins after the shared reader has broadcast events it never received.
    let mut late = log.subscribe(2).await.unwrap();
    append_clusters(&log, 20..25).await;

    assert_eq!(
        sequences(&mut from_start, 25).await,
        (1..=25).collect::<Vec<_>>()
    );
    assert_eq!(
        sequences(&mut from_third, 23).await,
        (3..=25).collect::<Vec<_>>()
    );
    assert_eq!(sequences(&mut late, 24).await, (2..=25).collect::<Vec<_>>());
}

#[tokio::test]
async fn live_subscribers_share_one_consumer() {
    let nats = TestNats::start();
    let plain = nats.event_log().await;
    let shared = plain.clone().with_shared_tail(1024);
    append_clusters(&plain, 0..2).await;

    let mut subscribers = Vec::new();
    for _ in 0..3 {
        subscribers.push(shared.clone().subscribe(3).await.unwrap());
    }
    append_clusters(&plain, 2..3).await;
    for events in &mut subscribers {
        assert_eq!(sequences(events, 1).await, vec![3]);
    }
    assert_eq!(consumers(&plain).await, 1, "one consumer feeds all three");

    // Without the tail, each subscriber has its own.
    let mut private: Vec<_> = Vec::new();
    for _ in 0..3 {
        private.push(plain.subscribe(3).await.unwrap());
    }
    for events in &mut private {
        assert_eq!(sequences(events, 1).await, vec![3]);
    }
    assert_eq!(consumers(&plain).await, 4);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_the_buffer_reads_what_it_missed() {
    let nats = TestNats::start();
    let log = nats.event_log().await.with_shared_tail(4);
    let mut slow = log.subscribe(1).await.unwrap();
    let mut fast = log.subscribe(1).await.unwrap();

    // The slow subscriber takes a few events, then stops while 60 more go by: the
    // buffer of 4 loses most of them before it asks again.
    append_clusters(&log, 0..3).await;
    assert_eq!(sequences(&mut slow, 3).await, vec![1, 2, 3]);
    append_clusters(&log, 3..63).await;
    assert_eq!(sequences(&mut fast, 63).await, (1..=63).collect::<Vec<_>>());
    assert_eq!(sequences(&mut slow, 60).await, (4..=63).collect::<Vec<_>>());

    // Caught up, it follows the live end again.
    append_clusters(&log, 63..65).await;
    assert_eq!(sequences(&mut slow, 2).await, vec![64, 65]);
    assert_eq!(sequences(&mut fast, 2).await, vec![64, 65]);
}

#[tokio::test]
async fn a_message_that_is_no_event_fails_shared_subscribers_as_it_fails_private_ones() {
    let nats = TestNats::start();
    let plain = nats.event_log().await;
    let shared = plain.clone().with_shared_tail(1024);
    let mut live = shared.subscribe(1).await.unwrap();
    append_clusters(&plain, 0..1).await;
    assert_eq!(sequences(&mut live, 1).await, vec![1]);

    // Something other than Berth writes into the log's subjects.
    let jetstream = async_nats::jetstream::new(plain.client().clone());
    jetstream
        .publish(format!("{SUBJECT_PREFIX}.stray"), "not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let failure = |item: Option<Result<_, LogError>>| match item {
        Some(Err(LogError::Malformed { sequence, .. })) => sequence,
        other => panic!("expected a malformed event, got {other:?}"),
    };
    assert_eq!(failure(live.next().await), 2);
    let mut from_history = shared.subscribe(1).await.unwrap();
    assert_eq!(sequences(&mut from_history, 1).await, vec![1]);
    assert_eq!(failure(from_history.next().await), 2);
    let mut private = plain.subscribe(2).await.unwrap();
    assert_eq!(failure(private.next().await), 2);
}
