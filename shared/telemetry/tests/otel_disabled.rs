//! `OTEL_SDK_DISABLED=true`: logging only; propagation helpers are no-ops.

use berth_telemetry::{inject_current_context, set_parent_from};
use tracing::info_span;

#[test]
fn disabled_sdk_makes_propagation_a_no_op() {
    // SAFETY: the only test in this binary, and no other thread exists yet.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("OTEL_SDK_DISABLED", "true");
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9");
    }
    let guard = berth_telemetry::init("berth-telemetry-test");
    assert!(guard.is_installed());
    assert!(!guard.is_exporting());

    let span = info_span!("publish");
    assert!(span.in_scope(inject_current_context).is_empty());
    let parent = [(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )];
    assert!(!set_parent_from(&info_span!("handle"), parent));
    drop(guard);
}
