//! `OTEL_SERVICE_NAME` wins over the name passed to `init`, and
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as the full URL.

mod common;

#[test]
fn otel_service_name_overrides_the_argument() {
    let (listener, endpoint) = common::bind();
    // SAFETY: the only test in this binary, and no other thread exists yet.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{endpoint}/v1/traces"),
        );
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
        std::env::set_var("OTEL_SERVICE_NAME", "from-env");
        std::env::remove_var("OTEL_SDK_DISABLED");
    }

    common::runtime().block_on(async move {
        let mut requests = common::serve(listener);
        let guard = berth_telemetry::init("from-argument");
        assert!(guard.is_exporting());
        tracing::info_span!("work").in_scope(|| tracing::info!("working"));
        drop(guard);

        let exported = common::collect(&mut requests, 1).await;
        assert_eq!(exported.service_names, ["from-env"]);
        exported.span("work");
    });
}
