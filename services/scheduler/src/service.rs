//! The scheduler service: follows the log into its state and decides placements.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_eventlog::{Append, AppendError, EventLog, Expect};
use berth_events::{Aggregate, Event};
use berth_projection::{
    ProjectionError, ProjectionHandle, ProjectionRunner, ReadModel, RunnerOptions,
};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tracing::{debug, info, warn};

use crate::read_model::{self, SchedulerProjection};
use crate::state::{Decision, DecisionOutcome, SchedulerState, lock};

/// Decisions per round: bounds the time the state is locked.
const DECISIONS_PER_ROUND: usize = 2_000;
/// Appends in flight at once, per round.
const CONCURRENT_APPENDS: usize = 128;
/// Rounds whose appends may be in flight at once.
const ROUNDS_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// `sqlite://...` or `postgres://...`.
    pub read_model_url: String,
    pub rebuild: bool,
}

/// A built scheduler, ready to run.
pub struct Scheduler {
    log: EventLog,
    runner: ProjectionRunner<SchedulerProjection>,
    state: Arc<Mutex<SchedulerState>>,
}

impl Scheduler {
    /// Opens the read model and restores the state persisted there.
    pub async fn build(log: EventLog, options: &SchedulerOptions) -> Result<Self, ProjectionError> {
        let read_model = ReadModel::open(&options.read_model_url).await?;
        let state = Arc::new(Mutex::new(SchedulerState::default()));
        let runner = ProjectionRunner::new(
            log.clone(),
            read_model.clone(),
            SchedulerProjection::new(state.clone()),
            RunnerOptions {
                rebuild: options.rebuild,
                write_interval: read_model::WRITE_INTERVAL,
                ..RunnerOptions::default()
            },
        )
        .await?;
        let (instances, tasks) = read_model::load(read_model.pool()).await?;
        info!(
            instances = instances.len(),
            tasks = tasks.len(),
            "scheduler state restored"
        );
        lock(&state).restore(instances, tasks);
        Ok(Self { log, runner, state })
    }

    pub fn projection(&self) -> ProjectionHandle {
        self.runner.handle()
    }

    /// Follows the log and places tasks until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let Self { log, runner, state } = self;
        let handle = runner.handle();
        let (stop_projection, projection_stopped) = tokio::sync::oneshot::channel::<()>();
        let projection = tokio::spawn(runner.run(async move {
            let _ = projection_stopped.await;
        }));
        let mut shutdown = std::pin::pin!(shutdown);
        let mut rng = SmallRng::from_os_rng();
        // Rounds whose appends are still in flight. The next round is decided without
        // waiting for them: a decision holds its resources in the state at once (and
        // gives them back if the log refuses it), so overlapping rounds never
        // over-commit, and tasks requested meanwhile do not wait for a slow round.
        let mut rounds = FuturesUnordered::new();
        loop {
            // Decide only once caught up: before that, the state may still be
            // missing placements already in the log.
            let ready =
                handle.caught_up() && rounds.len() < ROUNDS_IN_FLIGHT && lock(&state).has_pending();
            if !ready {
                let position = handle.position();
                tokio::select! {
                    () = &mut shutdown => break,
                    Some(failed) = rounds.next(), if !rounds.is_empty() => {
                        if failed > 0 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    _ = handle.wait_for(position + 1, Duration::from_secs(1)) => {}
                }
                continue;
            }
            let decisions = lock(&state).decide(&mut rng, DECISIONS_PER_ROUND);
            rounds.push(append(&log, &state, decisions));
        }
        // The decisions already made are recorded (or given back) before stopping.
        while rounds.next().await.is_some() {}
        let _ = stop_projection.send(());
        let _ = projection.await;
    }
}

/// Appends the decisions; undoes the ones the log refuses. Returns how many failed
/// for reasons other than a lost race.
async fn append(log: &EventLog, state: &Mutex<SchedulerState>, decisions: Vec<Decision>) -> usize {
    let started = std::time::Instant::now();
    let decided = decisions.len();
    let results: Vec<(Decision, Result<(), AppendError>)> = futures::stream::iter(decisions)
        .map(|decision| async move {
            let aggregate = Aggregate::Task {
                cluster: decision.cluster.clone(),
                id: decision.task_id.clone(),
            };
            let event: Event = match &decision.outcome {
                DecisionOutcome::Placed(placed) => placed.clone().into(),
                DecisionOutcome::Failed(failed) => failed.clone().into(),
            };
            let append = Append::new(aggregate, event, decision.meta.clone())
                .expect(Expect::Version(decision.expected_version));
            let result = log.append(append).await.map(|_| ());
            (decision, result)
        })
        .buffer_unordered(CONCURRENT_APPENDS)
        .collect()
        .await;
    debug!(
        decided,
        elapsed_us = started.elapsed().as_micros() as u64,
        "decision round recorded"
    );
    let mut failed = 0;
    let mut state = lock(state);
    for (decision, result) in results {
        match result {
            Ok(()) => debug!(
                cluster = decision.cluster,
                task = decision.task_id,
                "decided"
            ),
            Err(AppendError::Conflict { .. }) => state.undo(&decision),
            Err(error) => {
                warn!(cluster = decision.cluster, task = decision.task_id, %error, "decision not recorded");
                state.undo(&decision);
                failed += 1;
            }
        }
    }
    failed
}
