//! One reader of the log's live end, shared by every subscriber in a process.
//!
//! When several services share a process (`berth up`), each following the log with
//! its own consumer has nats-server send every event once per service, and the
//! process parse and decode every copy. With a shared tail the live end is read
//! once and each event is handed to every subscriber.
//!
//! A subscriber sees exactly what a private consumer would show it: every event from
//! its starting sequence on, in order, without gaps. Whatever the shared reader
//! cannot give it (history from before the subscriber joined, or a stretch it fell
//! more than [`SharedTail`]'s buffer behind on) it reads with a private consumer,
//! then rejoins the shared reader.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{OnceCell, broadcast};
use tracing::warn;

use crate::EventLog;
use crate::error::LogError;
use crate::read::{EventStream, RecordedEvent};

/// What the shared reader hands out: an event, or a message at that sequence that is
/// not a Berth event (each subscriber fails on it as its own consumer would).
type Shared = Arc<Result<RecordedEvent, LogError>>;

/// The shared reader of one process; lives as long as the [`EventLog`] handles
/// sharing it, and stops with the last of them.
pub(crate) struct SharedTail {
    /// A handle without the tail: the shared reader's and the catch-ups' consumers.
    log: EventLog,
    position: Arc<Position>,
    reader: OnceCell<AbortOnDrop>,
}

/// The broadcast and the next sequence it will carry, changed together: a subscriber
/// that joins learns exactly where its receiver starts.
struct Position {
    state: Mutex<PositionState>,
}

struct PositionState {
    sender: broadcast::Sender<Shared>,
    /// The sequence the reader broadcasts next.
    next: u64,
}

impl Position {
    fn lock(&self) -> MutexGuard<'_, PositionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of everything broadcast from now on, and the sequence it starts at.
    fn join(&self) -> (broadcast::Receiver<Shared>, u64) {
        let state = self.lock();
        (state.sender.subscribe(), state.next)
    }

    fn broadcast(&self, sequence: u64, item: Result<RecordedEvent, LogError>) {
        let mut state = self.lock();
        // No receiver is fine: nobody follows the log right now.
        let _ = state.sender.send(Arc::new(item));
        state.next = sequence + 1;
    }

    fn next(&self) -> u64 {
        self.lock().next
    }
}

impl SharedTail {
    /// A tail over `log` (a handle without one) that keeps `buffer` events for
    /// subscribers that fall behind.
    pub(crate) fn new(log: EventLog, buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        Self {
            log,
            position: Arc::new(Position {
                state: Mutex::new(PositionState { sender, next: 1 }),
            }),
            reader: OnceCell::new(),
        }
    }

    /// Every event from `from_sequence` on, as [`EventLog::subscribe`] gives them.
    pub(crate) async fn subscribe(&self, from_sequence: u64) -> Result<EventStream, LogError> {
        self.reader
            .get_or_try_init(|| async {
                // The reader starts at the live end; older history is each
                // subscriber's own catch-up.
                let next = self.log.last_sequence().await? + 1;
                self.position.lock().next = next;
                let reader = tokio::spawn(read_live(self.log.clone(), self.position.clone()));
                Ok::<_, LogError>(AbortOnDrop(reader))
            })
            .await?;
        let (receiver, joined_at) = self.position.join();
        let subscriber = Subscriber {
            log: self.log.clone(),
            next: from_sequence.max(1),
            receiver,
            caught_up_to: joined_at,
            private: None,
            held: None,
        };
        Ok(EventStream::new(futures::stream::unfold(
            subscriber,
            |mut subscriber| async move {
                let item = subscriber.next_event().await;
                Some((item, subscriber))
            },
        )))
    }
}

/// Reads the live end of the log and broadcasts it, reconnecting after failures.
async fn read_live(log: EventLog, position: Arc<Position>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let from = position.next();
        match log.subscribe_private(from).await {
            Ok(mut events) => {
                while let Some(item) = events.next().await {
                    let sequence = match &item {
                        Ok(event) => event.sequence,
                        Err(LogError::Malformed { sequence, .. }) => *sequence,
                        Err(error) => {
                            warn!(%error, from = position.next(), "shared log reader lost the log; reconnecting");
                            break;
                        }
                    };
                    backoff = Duration::from_millis(100);
                    position.broadcast(sequence, item);
                }
            }
            Err(error) => warn!(%error, from, "shared log reader cannot subscribe; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One subscriber's place: the next sequence it must see, and where the shared
/// receiver stands.
struct Subscriber {
    log: EventLog,
    next: u64,
    receiver: broadcast::Receiver<Shared>,
    /// Events before this sequence come from a private consumer: the receiver
    /// begins here (or, after it lagged, at the event held back).
    caught_up_to: u64,
    /// The private consumer of a catch-up in progress.
    private: Option<EventStream>,
    /// An event taken from the receiver ahead of a gap, given out once the gap is read.
    held: Option<Shared>,
}

impl Subscriber {
    async fn next_event(&mut self) -> Result<RecordedEvent, LogError> {
        loop {
            if self.next < self.caught_up_to {
                return self.catch_up().await;
            }
            if let Some(held) = self.held.take() {
                return self.give(held);
            }
            match self.receiver.recv().await {
                Ok(shared) => {
                    let sequence = sequence_of(&shared);
                    if sequence < self.next {
                        continue;
                    }
                    if sequence > self.next {
                        // It lagged: the buffer lost events this subscriber had not
                        // taken yet, and the receiver skipped them.
                        self.caught_up_to = sequence;
                        self.held = Some(shared);
                        continue;
                    }
                    return self.give(shared);
                }
                // The next `recv` gives the oldest event still buffered: a gap.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(LogError::Unavailable("shared log reader stopped".into()));
                }
            }
        }
    }

    fn give(&mut self, shared: Shared) -> Result<RecordedEvent, LogError> {
        self.next = sequence_of(&shared) + 1;
        match &*shared {
            Ok(event) => Ok(event.clone()),
            Err(error) => Err(copy_error(error)),
        }
    }

    /// The next event of `next..caught_up_to`, from a private consumer that is
    /// dropped at the boundary. Catch-ups are rare (at start, and after a subscriber
    /// fell a whole buffer behind), so each gets a fresh consumer.
    async fn catch_up(&mut self) -> Result<RecordedEvent, LogError> {
        let private = match &mut self.private {
            Some(private) => private,
            None => self
                .private
                .insert(self.log.subscribe_private(self.next).await?),
        };
        let item = private
            .next()
            .await
            .unwrap_or_else(|| Err(LogError::Unavailable("event stream ended".into())));
        match &item {
            Ok(event) => self.next = event.sequence + 1,
            Err(_) => self.private = None,
        }
        if self.next >= self.caught_up_to {
            self.private = None;
        }
        item
    }
}

fn sequence_of(shared: &Shared) -> u64 {
    match &**shared {
        Ok(event) => event.sequence,
        Err(LogError::Malformed { sequence, .. }) => *sequence,
        Err(LogError::Unavailable(_)) => 0,
    }
}

fn copy_error(error: &LogError) -> LogError {
    match error {
        LogError::Unavailable(reason) => LogError::Unavailable(reason.clone()),
        LogError::Malformed { sequence, reason } => LogError::Malformed {
            sequence: *sequence,
            reason: reason.clone(),
        },
    }
}

/// Aborts the shared reader when the tail goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
