//! Reading the log: a live stream of recorded events from any sequence.

use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_nats::header::HeaderName;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use berth_events::{Aggregate, CodecError, Event, EventMeta, headers};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::EventLog;
use crate::error::{LogError, unavailable};

/// An event as stored in the log, shared: a clone copies nothing, so one event read
/// once can be handed to every service of a process (the shared tail) without a copy
/// per service.
#[derive(Debug, Clone)]
pub struct RecordedEvent(Arc<EventRecord>);

impl RecordedEvent {
    pub fn new(record: EventRecord) -> Self {
        Self(Arc::new(record))
    }
}

impl Deref for RecordedEvent {
    type Target = EventRecord;

    fn deref(&self) -> &EventRecord {
        &self.0
    }
}

/// What [`RecordedEvent`] holds.
#[derive(Debug)]
pub struct EventRecord {
    /// Stream sequence: the event's position in the log.
    pub sequence: u64,
    pub aggregate: Aggregate,
    pub meta: EventMeta,
    pub event_type: String,
    pub version: u16,
    /// `None` for an event type this build does not know (written by a newer
    /// service): readers skip it but still move past it.
    pub event: Option<Event>,
}

type Inner = Pin<Box<dyn Stream<Item = Result<RecordedEvent, LogError>> + Send>>;

/// Every event from a starting sequence on, in order, then live as they are appended.
/// Backed by an ordered JetStream consumer, which recovers from gaps and reconnects.
pub struct EventStream {
    inner: Inner,
}

impl EventStream {
    pub(crate) fn new(
        inner: impl Stream<Item = Result<RecordedEvent, LogError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for EventStream {
    type Item = Result<RecordedEvent, LogError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl EventLog {
    /// Subscribes from `from_sequence` (1 = the beginning).
    pub async fn subscribe(&self, from_sequence: u64) -> Result<EventStream, LogError> {
        match &self.tail {
            Some(tail) => tail.subscribe(from_sequence).await,
            None => self.subscribe_private(from_sequence).await,
        }
    }

    /// Subscribes with a consumer of this subscription's own.
    pub(crate) async fn subscribe_private(
        &self,
        from_sequence: u64,
    ) -> Result<EventStream, LogError> {
        let stream = self
            .jetstream
            .get_stream_no_info(&self.stream_name)
            .await
            .map_err(unavailable)?;
        let deliver_policy = if from_sequence <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: from_sequence,
            }
        };
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        let mut last = LastDecoded::default();
        Ok(EventStream::new(messages.map(move |message| {
            decode(message.map_err(unavailable)?, &mut last)
        })))
    }
}

/// The last payload a stream decoded, and what it became. The N tasks of a RunTask are N
/// events with one payload, mostly in a row, and decoding their `TaskRequested` transcodes
/// its task definition back to JSON text each time; a repeat is cloned instead.
#[derive(Default)]
struct LastDecoded {
    event_type: String,
    version: u16,
    payload: Bytes,
    event: Option<Event>,
}

impl LastDecoded {
    fn decode(
        &mut self,
        event_type: &str,
        version: u16,
        payload: &Bytes,
    ) -> Result<Option<Event>, CodecError> {
        let repeated = self.event.is_some()
            && self.version == version
            && self.event_type == event_type
            && self.payload == *payload;
        if !repeated {
            self.event = Event::decode(event_type, version, payload)?;
            self.event_type.replace_range(.., event_type);
            self.version = version;
            self.payload = payload.clone();
        }
        Ok(self.event.clone())
    }
}

fn decode(
    message: async_nats::jetstream::Message,
    last: &mut LastDecoded,
) -> Result<RecordedEvent, LogError> {
    let sequence = message.info().map_err(unavailable)?.stream_sequence;
    let malformed = |reason: &str| LogError::Malformed {
        sequence,
        reason: reason.to_owned(),
    };
    let aggregate =
        Aggregate::from_subject(message.subject.as_str()).map_err(|e| malformed(&e.to_string()))?;
    // Looked up by static name: a `&str` name is copied into a new one at every lookup.
    let header = |name: &'static str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(HeaderName::from_static(name)))
            .map(|v| v.as_str())
    };
    let meta = EventMeta::from_headers(header).ok_or_else(|| malformed("no Berth envelope"))?;
    let event_type = header(headers::EVENT_TYPE)
        .ok_or_else(|| malformed("no event type"))?
        .to_owned();
    let version: u16 = header(headers::EVENT_VERSION)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed("no event version"))?;
    let event = last
        .decode(&event_type, version, &message.payload)
        .map_err(|e| malformed(&e.to_string()))?;
    Ok(RecordedEvent::new(EventRecord {
        sequence,
        aggregate,
        meta,
        event_type,
        version,
        event,
    }))
}
