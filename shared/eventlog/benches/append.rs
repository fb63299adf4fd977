//! Event append throughput against a real nats-server (file storage), printed as
//! events/s: one event per append (each awaits its ack), several appends in flight,
//! and atomic batches.
//!
//! `cargo bench -p berth-eventlog --bench append`

use std::time::Instant;

use berth_eventlog::{Append, EventLog};
use berth_events::{Aggregate, ClusterUpdated, EventMeta};
use berth_testkit::TestNats;

const EVENTS: usize = 20_000;

fn event(i: usize) -> Append {
    Append::new(
        Aggregate::Cluster(format!("bench-{}", i % 1000)),
        ClusterUpdated::default(),
        EventMeta::new(),
    )
}

fn report(name: &str, events: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{name:<40} {events:>7} events in {seconds:>6.2} s = {:>9.0} events/s",
        events as f64 / seconds
    );
}

async fn sequential(log: &EventLog) {
    let started = Instant::now();
    for i in 0..EVENTS / 4 {
        log.append(event(i)).await.unwrap();
    }
    report("append, one at a time", EVENTS / 4, started);
}

async fn concurrent(log: &EventLog, in_flight: usize) {
    let started = Instant::now();
    let per_task = EVENTS / in_flight;
    let tasks: Vec<_> = (0..in_flight)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    log.append(event(t * per_task + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    report(
        &format!("append, {in_flight} writers in parallel"),
        per_task * in_flight,
        started,
    );
}

async fn batched(log: &EventLog, batch: usize) {
    let started = Instant::now();
    let batches = EVENTS / batch;
    for b in 0..batches {
        let appends = (0..batch).map(|i| event(b * batch + i)).collect();
        log.append_all(appends).await.unwrap();
    }
    report(
        &format!("atomic batches of {batch}"),
        batches * batch,
        started,
    );
}

#[tokio::main]
async fn main() {
    let nats = TestNats::start();
    let log = nats.event_log().await;
    sequential(&log).await;
    concurrent(&log, 16).await;
    concurrent(&log, 64).await;
    batched(&log, 10).await;
    batched(&log, 100).await;
    batched(&log, 1000).await;
}
