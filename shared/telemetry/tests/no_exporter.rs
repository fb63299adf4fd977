//! Without an OTLP endpoint nothing is exported, but spans still get W3C
//! trace ids, so trace context still flows through event headers.

use berth_telemetry::{TRACEPARENT, inject_current_context, set_parent_from};
use tracing::info_span;

#[test]
fn trace_ids_flow_without_an_exporter() {
    // SAFETY: the only test in this binary, and no other thread exists yet.
    #[allow(unsafe_code)]
    unsafe {
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
        std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        std::env::remove_var("OTEL_SDK_DISABLED");
    }
    let guard = berth_telemetry::init("berth-telemetry-test");
    assert!(guard.is_installed());
    assert!(!guard.is_exporting());

    let headers = info_span!("publish").in_scope(inject_current_context);
    let traceparent = &headers
        .iter()
        .find(|(name, _)| name == TRACEPARENT)
        .expect("traceparent injected")
        .1;
    let span = info_span!("handle");
    assert!(set_parent_from(
        &span,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    ));
    let child = span.in_scope(inject_current_context);
    assert_eq!(
        traceparent.split('-').nth(1),
        child[0].1.split('-').nth(1),
        "same trace id"
    );
    assert_ne!(traceparent, &child[0].1, "a new span id");
    drop(guard);
}
