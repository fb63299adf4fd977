//! `init` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a tiny collector on
//! a real socket: a producer span and a consumer span in "another service"
//! (another thread, linked only through the injected headers) arrive as one
//! trace.

mod common;

use berth_telemetry::{TRACEPARENT, inject_current_context, set_parent_from};
use common::header;
use tracing::info_span;

#[test]
fn spans_reach_the_collector_in_one_trace() {
    let (listener, endpoint) = common::bind();
    // SAFETY: the only test in this binary, and no other thread exists yet
    // (the runtime is built below), so nothing reads the environment
    // concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
        std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        std::env::remove_var("OTEL_SERVICE_NAME");
        std::env::remove_var("OTEL_SDK_DISABLED");
        // Batches go out only on flush, so the test shows the guard flushes.
        std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "600000");
    }

    common::runtime().block_on(async move {
        let mut requests = common::serve(listener);

        let guard = berth_telemetry::init("berth-telemetry-test");
        assert!(guard.is_installed());
        assert!(guard.is_exporting());
        let again = berth_telemetry::init("second-call");
        assert!(!again.is_installed(), "a second init changes nothing");
        drop(again);

        // Service A publishes an event carrying its trace context.
        let headers = info_span!("publish_event", service = "a").in_scope(inject_current_context);
        let traceparent = header(&headers, TRACEPARENT)
            .expect("traceparent injected")
            .to_owned();

        // Service B, on another thread with no shared span stack, handles it.
        let child_traceparent = std::thread::spawn(move || {
            let span = info_span!("handle_event", service = "b");
            let pairs = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            assert!(set_parent_from(&span, pairs));
            let _entered = span.enter();
            tracing::info!("handling");
            header(&inject_current_context(), TRACEPARENT)
                .unwrap()
                .to_owned()
        })
        .join()
        .unwrap();
        let trace_id = traceparent.split('-').nth(1).unwrap();
        assert_eq!(Some(trace_id), child_traceparent.split('-').nth(1));

        // Flushes the batch: blocks this thread while the exporter's thread
        // posts to the collector task running on the runtime's workers.
        drop(guard);

        let exported = common::collect(&mut requests, 2).await;
        assert!(
            exported
                .service_names
                .iter()
                .all(|name| name == "berth-telemetry-test"),
            "{:?}",
            exported.service_names
        );
        let publish = exported.span("publish_event");
        let handle = exported.span("handle_event");
        assert_eq!(publish.trace_id, handle.trace_id, "one trace");
        assert_eq!(
            handle.parent_span_id, publish.span_id,
            "child of the producer"
        );
        assert_eq!(
            common::hex(&publish.trace_id),
            trace_id,
            "the exported trace is the one in the headers"
        );
    });
}
