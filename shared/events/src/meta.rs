//! The envelope: everything about an event except its payload.
//!
//! The envelope travels in NATS message headers, so consumers can route on the type
//! and version (and skip what they do not read) without decoding the payload.

use uuid::Uuid;

use crate::EpochMillis;

/// Header names of the envelope. `traceparent`/`tracestate` follow W3C trace context
/// so one trace follows a request through the log.
pub mod headers {
    pub const EVENT_ID: &str = "Berth-Event-Id";
    pub const EVENT_TYPE: &str = "Berth-Event-Type";
    pub const EVENT_VERSION: &str = "Berth-Event-Version";
    pub const EVENT_TIME: &str = "Berth-Event-Time";
    pub const CAUSATION_ID: &str = "Berth-Causation-Id";
    pub const CORRELATION_ID: &str = "Berth-Correlation-Id";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
}

/// Envelope fields other than type and version (those come from the payload's
/// [`crate::Event`] variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// UUID v7: unique and time-ordered.
    pub id: Uuid,
    /// When the fact happened, as the writer saw it.
    pub time: EpochMillis,
    /// The event or request that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// The user request the whole chain started from.
    pub correlation_id: Option<Uuid>,
    /// W3C trace context headers (`traceparent`, `tracestate`) of the writer's span.
    pub trace_context: Vec<(String, String)>,
}

impl EventMeta {
    /// A fresh envelope stamped now.
    pub fn new() -> Self {
        Self {
            id: Uuid::now_v7(),
            time: EpochMillis::now(),
            causation_id: None,
            correlation_id: None,
            trace_context: Vec::new(),
        }
    }

    /// An envelope for an event caused by `cause`, inheriting its correlation.
    pub fn caused_by(cause: &EventMeta) -> Self {
        Self {
            causation_id: Some(cause.id),
            correlation_id: cause.correlation_id.or(Some(cause.id)),
            trace_context: cause.trace_context.clone(),
            ..Self::new()
        }
    }

    pub fn with_correlation(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = Some(correlation_id);
        self.causation_id.get_or_insert(correlation_id);
        self
    }

    pub fn with_trace_context(mut self, trace_context: Vec<(String, String)>) -> Self {
        self.trace_context = trace_context;
        self
    }

    /// The envelope as header pairs, type and version included.
    pub fn to_headers(&self, event_type: &str, version: u16) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            (headers::EVENT_ID, self.id.to_string()),
            (headers::EVENT_TYPE, event_type.to_owned()),
            (headers::EVENT_VERSION, version.to_string()),
            (headers::EVENT_TIME, self.time.0.to_string()),
        ];
        if let Some(id) = self.causation_id {
            pairs.push((headers::CAUSATION_ID, id.to_string()));
        }
        if let Some(id) = self.correlation_id {
            pairs.push((headers::CORRELATION_ID, id.to_string()));
        }
        for (name, value) in &self.trace_context {
            match name.as_str() {
                headers::TRACEPARENT => pairs.push((headers::TRACEPARENT, value.clone())),
                headers::TRACESTATE => pairs.push((headers::TRACESTATE, value.clone())),
                _ => {}
            }
        }
        pairs
    }

    /// Reads the envelope back from headers; `None` when a required field is missing
    /// or malformed (the message was not written by Berth).
    pub fn from_headers<'a>(header: impl Fn(&'static str) -> Option<&'a str>) -> Option<Self> {
        let parse_uuid = |name| header(name).and_then(|v| Uuid::parse_str(v).ok());
        let trace_context = [headers::TRACEPARENT, headers::TRACESTATE]
            .into_iter()
            .filter_map(|name| header(name).map(|v| (name.to_owned(), v.to_owned())))
            .collect();
        Some(Self {
            id: parse_uuid(headers::EVENT_ID)?,
            time: EpochMillis(header(headers::EVENT_TIME)?.parse().ok()?),
            causation_id: parse_uuid(headers::CAUSATION_ID),
            correlation_id: parse_uuid(headers::CORRELATION_ID),
            trace_context,
        })
    }
}

impl Default for EventMeta {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let cause = EventMeta::new()
            .with_trace_context(vec![(
                "traceparent".into(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            )])
            .with_correlation(Uuid::now_v7());
        let meta = EventMeta::caused_by(&cause);
        let pairs = meta.to_headers("ClusterCreated", 1);
        let lookup = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(EventMeta::from_headers(lookup), Some(meta));
    }
}
