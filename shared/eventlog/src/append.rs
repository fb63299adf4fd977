//! Appending events: conditional, idempotent, and atomic in batches.

use async_nats::HeaderMap;
use async_nats::header::{
    HeaderName, NATS_BATCH_COMMIT, NATS_BATCH_ID, NATS_BATCH_SEQUENCE,
    NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID,
};
use async_nats::jetstream::context::PublishErrorKind;
use berth_events::{Aggregate, Event, EventMeta};
use bytes::Bytes;
use serde::Deserialize;
use tracing::debug;

use crate::{AppendError, EventLog};

/// JetStream error code for a failed `Nats-Expected-Last-Subject-Sequence` check.
const WRONG_LAST_SEQUENCE: u64 = 10071;
/// The server's limit on messages in one atomic batch.
const MAX_BATCH: usize = 1000;

/// What the writer believes about the aggregate before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No check: for facts that cannot conflict (an agent's report, say).
    Any,
    /// The aggregate must have no event yet: creations.
    New,
    /// The aggregate's last event must be at this stream sequence.
    Version(u64),
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct Append {
    pub aggregate: Aggregate,
    pub event: Event,
    pub meta: EventMeta,
    pub expect: Expect,
    /// Deduplicates retries within the stream's duplicate window (`Nats-Msg-Id`).
    /// Single appends only: atomic batches are made idempotent by [`Expect::New`].
    pub idempotency_key: Option<String>,
}

impl Append {
    pub fn new(aggregate: Aggregate, event: impl Into<Event>, meta: EventMeta) -> Self {
        Self {
            aggregate,
            event: event.into(),
            meta,
            expect: Expect::Any,
            idempotency_key: None,
        }
    }

    pub fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    fn headers(&self, with_idempotency_key: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in self
            .meta
            .to_headers(self.event.event_type(), self.event.version())
        {
            // A static name and an owned value: nothing copied or allocated again (a `&str`
            // name or value is copied).
            headers.insert(HeaderName::from_static(name), value);
        }
        match self.expect {
            Expect::Any => {}
            Expect::New => headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0"),
            Expect::Version(sequence) => {
                headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, sequence.to_string())
            }
        }
        if let Some(key) = self
            .idempotency_key
            .as_ref()
            .filter(|_| with_idempotency_key)
        {
            headers.insert(NATS_MESSAGE_ID, key.as_str());
        }
        headers
    }
}

/// Where appended events landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Stream sequence of the last appended event: the position a reader must reach
    /// to see the append (read-your-writes).
    pub sequence: u64,
    /// True when an idempotency key matched an earlier append, which is returned.
    pub duplicate: bool,
}

/// The reply to an atomic batch commit.
#[derive(Deserialize)]
struct BatchReply {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

impl EventLog {
    /// Appends one event.
    pub async fn append(&self, append: Append) -> Result<Appended, AppendError> {
        let payload = append.event.encode()?;
        self.publish(append, payload.into()).await
    }

    /// Appends one event whose payload is already encoded.
    async fn publish(&self, append: Append, payload: Bytes) -> Result<Appended, AppendError> {
        let subject = append.aggregate.subject();
        let ack = self
            .jetstream
            .publish_with_headers(subject.clone(), append.headers(true), payload)
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?
            .await
            .map_err(|error| match error.kind() {
                PublishErrorKind::WrongLastSequence => AppendError::Conflict {
                    subject: subject.clone(),
                },
                _ => AppendError::Unavailable(error.to_string()),
            })?;
        debug!(
            subject,
            sequence = ack.sequence,
            duplicate = ack.duplicate,
            "appended"
        );
        Ok(Appended {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Appends each event on its own, all at once: each is stored or refused (with
    /// its own result, in order) whatever becomes of the others. For writes that need
    /// no atomicity across aggregates this is far cheaper than [`Self::append_all`]:
    /// JetStream stages every atomic batch on disk (a directory, files and an fsync),
    /// which stalls the stream for everyone.
    ///
    /// An event equal to the one before it is encoded once for both: the N tasks of a RunTask
    /// carry the same `TaskRequested`, whose task definition is transcoded from JSON text
    /// at every encoding.
    pub async fn append_each(&self, appends: Vec<Append>) -> Vec<Result<Appended, AppendError>> {
        let payloads = encode_each(&appends);
        futures::future::join_all(
            appends
                .into_iter()
                .zip(payloads)
                .map(|(append, payload)| async move { self.publish(append, payload?).await }),
        )
        .await
    }

    /// Appends several events atomically: all are stored, in order, or none is.
    /// Each event's [`Expect`] is checked against the log including the earlier
    /// events of the same batch.
    pub async fn append_all(&self, appends: Vec<Append>) -> Result<Appended, AppendError> {
        if appends.len() > MAX_BATCH {
            return Err(AppendError::BatchTooLarge {
                max: MAX_BATCH,
                got: appends.len(),
            });
        }
        if appends.len() <= 1 {
            let Some(append) = appends.into_iter().next() else {
                return Err(AppendError::Unavailable("empty batch".to_owned()));
            };
            return self.append(append).await;
        }
        // Encoded before anything is sent, so an event that cannot be encoded leaves no
        // half-sent batch on the server.
        let payloads = encode_each(&appends)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let batch_id = uuid::Uuid::now_v7().simple().to_string();
        let last = appends.len();
        for (index, (append, payload)) in appends.into_iter().zip(payloads).enumerate() {
            let number = index + 1;
            let subject = append.aggregate.subject();
            // Atomic batches reject Nats-Msg-Id; creations use Expect::New instead.
            let mut headers = append.headers(false);
            headers.insert(NATS_BATCH_ID, batch_id.as_str());
            headers.insert(NATS_BATCH_SEQUENCE, number.to_string().as_str());
            if number < last {
                self.client
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .map_err(|e| AppendError::Unavailable(e.to_string()))?;
                continue;
            }
            headers.insert(NATS_BATCH_COMMIT, "1");
            let reply = self
                .client
                .request_with_headers(subject.clone(), headers, payload)
                .await
                .map_err(|e| AppendError::Unavailable(e.to_string()))?;
            let reply: BatchReply = serde_json::from_slice(&reply.payload)
                .map_err(|e| AppendError::Unavailable(format!("bad batch reply: {e}")))?;
            if let Some(error) = reply.error {
                if error.err_code == WRONG_LAST_SEQUENCE {
                    return Err(AppendError::Conflict { subject });
                }
                return Err(AppendError::Unavailable(format!(
                    "atomic batch refused ({}): {}",
                    error.err_code, error.description
                )));
            }
            debug!(
                batch = batch_id,
                events = last,
                sequence = reply.seq,
                "appended batch"
            );
            return Ok(Appended {
                sequence: reply.seq,
                duplicate: false,
            });
        }
        unreachable!("a batch of two or more events ends with its commit")
    }
}

/// The payload of each append, an event equal to the previous one sharing its bytes.
fn encode_each(appends: &[Append]) -> Vec<Result<Bytes, AppendError>> {
    let mut payloads: Vec<Result<Bytes, AppendError>> = Vec::with_capacity(appends.len());
    for (index, append) in appends.iter().enumerate() {
        let repeated = index > 0 && appends[index - 1].event == append.event;
        let payload = match payloads.last() {
            Some(Ok(previous)) if repeated => Ok(previous.clone()),
            _ => append
                .event
                .encode()
                .map(Bytes::from)
                .map_err(AppendError::from),
        };
        payloads.push(payload);
    }
    payloads
}
