//! W3C trace-context propagation between a `tracing` span and event headers.
//!
//! Producers call [`inject_current_context`] (or [`inject_span_context`]) and
//! put the returned pairs into the NATS headers of the event they publish.
//! Consumers create their processing span, call [`set_parent_from`] with the
//! event's headers *before entering it*, and then enter it: the span becomes
//! a child of the producer's span, in the same trace.
//!
//! All of this goes through the OpenTelemetry layer that [`crate::init`]
//! installs. Without that layer (OTel disabled with `OTEL_SDK_DISABLED=true`,
//! `init` not called, or another subscriber installed first) injection
//! returns no headers and `set_parent_from` does nothing and returns `false`.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header carrying the W3C `traceparent` (`00-<trace-id>-<span-id>-<flags>`).
pub const TRACEPARENT: &str = "traceparent";
/// Header carrying the W3C `tracestate` (vendor data; often absent).
pub const TRACESTATE: &str = "tracestate";

/// W3C trace-context headers for the current `tracing` span.
///
/// Returns `traceparent` and, when it is not empty, `tracestate`. Returns
/// an empty vector when there is no current span or the OpenTelemetry layer
/// is not installed. Lower-case header names, as W3C recommends.
pub fn inject_current_context() -> Vec<(String, String)> {
    inject_span_context(&Span::current())
}

/// W3C trace-context headers for `span`; see [`inject_current_context`].
///
/// Note that this starts the span's OpenTelemetry side: a parent can no
/// longer be set on `span` afterwards (see [`set_parent_from`]).
pub fn inject_span_context(span: &Span) -> Vec<(String, String)> {
    inject_context(&span.context())
}

/// W3C trace-context headers for an OpenTelemetry [`Context`]; empty when it
/// holds no valid span context.
pub fn inject_context(cx: &Context) -> Vec<(String, String)> {
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut carrier = PairInjector(Vec::with_capacity(2));
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.0
}

/// The remote parent described by `headers`, as an OpenTelemetry [`Context`].
///
/// Header names are matched case-insensitively; other headers are ignored.
/// A missing or malformed `traceparent` gives a context without a span
/// (`cx.span().span_context().is_valid()` is false).
pub fn extract_context<'a, I>(headers: I) -> Context
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let pairs: Vec<(&str, &str)> = headers
        .into_iter()
        .filter(|(name, _)| {
            name.eq_ignore_ascii_case(TRACEPARENT) || name.eq_ignore_ascii_case(TRACESTATE)
        })
        .collect();
    TraceContextPropagator::new().extract_with_context(&Context::new(), &PairExtractor(&pairs))
}

/// Makes `span` a child of the remote span described by `headers`.
///
/// Call it right after creating `span` and before entering it (or calling
/// anything that starts it, such as [`inject_span_context`]); once started,
/// a span's parent is fixed.
///
/// Returns whether the parent was set. It is not, and `span` keeps its local
/// parent, when the headers hold no valid `traceparent`, when the
/// OpenTelemetry layer is not installed, when `span` is disabled by the
/// filter, or when `span` was already started.
pub fn set_parent_from<'a, I>(span: &Span, headers: I) -> bool
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let cx = extract_context(headers);
    if !cx.span().span_context().is_valid() {
        // Setting an empty parent would turn `span` into a new root.
        return false;
    }
    span.set_parent(cx).is_ok()
}

struct PairInjector(Vec<(String, String)>);

impl Injector for PairInjector {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        self.0.push((key.to_ascii_lowercase(), value));
    }
}

struct PairExtractor<'a>(&'a [(&'a str, &'a str)]);

impl Extractor for PairExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| *value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tracing::info_span;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Keeps finished spans in memory.
    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collect {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    fn as_refs(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `00-<trace>-<span>-<flags>` split into its ids.
    fn ids(traceparent: &str) -> (TraceId, SpanId) {
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[3], "01", "sampled");
        (
            TraceId::from_hex(parts[1]).unwrap(),
            SpanId::from_hex(parts[2]).unwrap(),
        )
    }

    /// Runs `f` under a subscriber with only the OpenTelemetry layer, whose
    /// provider records finished spans; returns them.
    fn with_otel(f: impl FnOnce()) -> Vec<SpanData> {
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collect.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f);
        provider.shutdown().unwrap();
        collect.0.lock().unwrap().clone()
    }

    #[test]
    fn inject_then_extract_round_trips_the_trace() {
        let mut produced = Vec::new();
        let mut consumed = Vec::new();
        let spans = with_otel(|| {
            info_span!("publish").in_scope(|| produced = inject_current_context());
            // What the consumer sees; NATS header names may come back in any case.
            let received: Vec<(String, String)> = produced
                .iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
                .chain([("Nats-Msg-Id".to_owned(), "x".to_owned())])
                .collect();
            let span = info_span!("handle");
            assert!(set_parent_from(&span, as_refs(&received)));
            span.in_scope(|| consumed = inject_current_context());
        });

        let (trace, publish_id) = ids(header(&produced, TRACEPARENT).unwrap());
        let (consumer_trace, handle_id) = ids(header(&consumed, TRACEPARENT).unwrap());
        assert_eq!(trace, consumer_trace);
        assert_ne!(publish_id, handle_id);
        assert_eq!(
            header(&produced, TRACESTATE),
            None,
            "empty tracestate is left out"
        );

        let handle = spans.iter().find(|s| s.name == "handle").unwrap();
        assert_eq!(handle.span_context.trace_id(), trace);
        assert_eq!(handle.parent_span_id, publish_id);
        assert!(handle.parent_span_is_remote);
    }

    #[test]
    fn tracestate_round_trips() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = extract_context([(TRACEPARENT, parent), (TRACESTATE, "berth=1,vendor=x")]);
        let headers = inject_context(&cx);
        assert_eq!(header(&headers, TRACEPARENT), Some(parent));
        assert_eq!(header(&headers, TRACESTATE), Some("berth=1,vendor=x"));
    }

    #[test]
    fn bad_or_missing_headers_leave_the_local_parent() {
        let spans = with_otel(|| {
            let outer = info_span!("outer");
            let _entered = outer.enter();
            let missing = info_span!("missing");
            assert!(!set_parent_from(&missing, std::iter::empty()));
            let malformed = info_span!("malformed");
            assert!(!set_parent_from(&malformed, [(TRACEPARENT, "00-zz-zz-01")]));
            drop((missing, malformed));
        });
        let outer = spans.iter().find(|s| s.name == "outer").unwrap();
        for name in ["missing", "malformed"] {
            let span = spans.iter().find(|s| s.name == name).unwrap();
            assert_eq!(span.parent_span_id, outer.span_context.span_id(), "{name}");
        }
    }

    #[test]
    fn parent_cannot_be_set_once_started() {
        with_otel(|| {
            let headers = info_span!("producer").in_scope(inject_current_context);
            let span = info_span!("late");
            let _entered = span.enter();
            assert!(!set_parent_from(&span, as_refs(&headers)));
        });
    }

    #[test]
    fn without_the_layer_everything_is_a_no_op() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let span = info_span!("plain");
            assert!(span.in_scope(inject_current_context).is_empty());
            let parent = [(
                TRACEPARENT,
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )];
            assert!(!set_parent_from(&span, parent));
        });
        assert!(inject_current_context().is_empty(), "no subscriber at all");
    }
}
