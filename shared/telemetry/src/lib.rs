//! Tracing set-up and OpenTelemetry export shared by every Berth binary.
//!
//! Every binary calls [`init`] first thing in `main` and keeps the returned
//! [`TelemetryGuard`] alive until it exits:
//!
//! ```no_run
//! // First thing in `main`; `_telemetry` lives until `main` returns.
//! let _telemetry = berth_telemetry::init("berth-scheduler");
//! tracing::info!("started");
//! ```
//!
//! # What `init` installs
//!
//! * A `fmt` layer writing human-readable lines to stderr (ANSI colours only
//!   when stderr is a terminal).
//! * An env filter from `RUST_LOG`; when unset, `info` (with OpenTelemetry's
//!   own diagnostics at `warn`).
//! * The `tracing-opentelemetry` layer, always (unless `OTEL_SDK_DISABLED=true`),
//!   so every span has a W3C trace id and span id whether or not anything is
//!   exported. That is what lets a trace follow a request through the event
//!   log on a deployment without a collector: the ids still go into event
//!   headers (see [`inject_current_context`] and [`set_parent_from`]), and
//!   a service that does export keeps the trace whole. The cost is the
//!   layer's per-span bookkeeping; nothing leaves the process.
//! * Span export over OTLP/HTTP with protobuf bodies, only when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//!   is set. Spans are batched by the SDK's batch processor on its own
//!   thread and sent with a small built-in HTTP/1.1 client: plain `http://`
//!   only (no TLS; terminate TLS in the collector), so an `https://`
//!   endpoint is refused with a warning.
//!
//! # Environment
//!
//! | variable | effect |
//! | --- | --- |
//! | `RUST_LOG` | log filter (default `info,opentelemetry=warn`) |
//! | `OTEL_SDK_DISABLED` | `true`: no OpenTelemetry layer at all; propagation helpers become no-ops |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; spans go to `<base>/v1/traces` |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full URL for spans, used as is; wins over the above |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` | export timeout in milliseconds (default 10000) |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` | extra request headers, `k=v,k2=v2` |
//! | `OTEL_SERVICE_NAME` | `service.name`, winning over the name passed to [`init`] |
//! | `OTEL_RESOURCE_ATTRIBUTES` | extra resource attributes |
//! | `OTEL_TRACES_SAMPLER[_ARG]` | sampler (default: parent-based, always on) |
//! | `OTEL_BSP_*` | batch processor tuning |
//!
//! `OTEL_EXPORTER_OTLP_PROTOCOL` is ignored: the only protocol built in is
//! `http/protobuf`.

mod http_client;
mod propagation;

use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use opentelemetry::Context;
pub use propagation::{
    TRACEPARENT, TRACESTATE, extract_context, inject_context, inject_current_context,
    inject_span_context, set_parent_from,
};

/// Filter used when `RUST_LOG` is unset or empty.
pub const DEFAULT_FILTER: &str = "info,opentelemetry=warn";

/// Export timeout when no `OTEL_EXPORTER_OTLP_*TIMEOUT` is set.
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dropping the guard waits for the last spans to go out.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps telemetry running; dropping it flushes pending spans to the
/// collector (waiting up to 5 s) and stops the exporter.
///
/// Drop it at the very end of `main`. Spans started after that still get
/// logged, but no longer get trace ids or exported.
#[derive(Debug)]
#[must_use = "dropping the guard shuts the span exporter down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    installed: bool,
    exporting: bool,
}

impl TelemetryGuard {
    /// Whether this call to [`init`] installed the global subscriber (false
    /// when one was installed before, e.g. by an earlier `init`).
    pub fn is_installed(&self) -> bool {
        self.installed
    }

    /// Whether spans are being exported over OTLP.
    pub fn is_exporting(&self) -> bool {
        self.exporting
    }

    fn inert() -> Self {
        Self {
            provider: None,
            installed: false,
            exporting: false,
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(%error, "OpenTelemetry shutdown failed; some spans may be lost");
        }
    }
}

/// Installs the global `tracing` subscriber for a Berth service; see the
/// crate documentation for what it installs and the environment it reads.
///
/// Never panics. If a global subscriber is already installed (a second call,
/// or tests), it changes nothing and returns an inert guard.
pub fn init(service_name: &str) -> TelemetryGuard {
    if tracing::dispatcher::has_been_set() {
        return TelemetryGuard::inert();
    }

    // Problems found before the subscriber exists are logged once it does.
    let mut warnings = Vec::new();
    let otel_disabled =
        env_value("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let (provider, exporting) = if otel_disabled {
        (None, false)
    } else {
        let (provider, exporting) = build_provider(service_name, &mut warnings);
        (Some(provider), exporting)
    };

    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
    });
    let stderr_is_terminal = std::io::stderr().is_terminal();
    let fmt_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(stderr_is_terminal);
    let installed = tracing_subscriber::registry()
        .with(env_filter())
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .is_ok();

    if !installed {
        if let Some(provider) = provider {
            let _ = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
        }
        return TelemetryGuard::inert();
    }

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    tracing::debug!(otel = !otel_disabled, exporting, "telemetry initialised");

    TelemetryGuard {
        provider,
        installed,
        exporting,
    }
}

fn env_filter() -> EnvFilter {
    match env_value("RUST_LOG") {
        Some(directives) => EnvFilter::builder().parse_lossy(directives),
        None => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// The tracer provider, with an OTLP exporter when an endpoint is configured.
/// Returns whether it exports.
fn build_provider(service_name: &str, warnings: &mut Vec<String>) -> (SdkTracerProvider, bool) {
    let builder = SdkTracerProvider::builder().with_resource(resource(service_name));
    let endpoint = env_value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env_value("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let Some(endpoint) = endpoint else {
        return (builder.build(), false);
    };
    if !endpoint.to_ascii_lowercase().starts_with("http://") {
        warnings.push(format!(
            "OTLP endpoint {endpoint:?} is not plain http://; spans will not be exported \
             (berth-telemetry is built without TLS)"
        ));
        return (builder.build(), false);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(http_client::BlockingHttpClient::new(export_timeout()))
        .build();
    match exporter {
        Ok(exporter) => (builder.with_batch_exporter(exporter).build(), true),
        Err(error) => {
            warnings.push(format!("OTLP span exporter not started: {error}"));
            (builder.build(), false)
        }
    }
}

/// `service.name` is `OTEL_SERVICE_NAME` when set (the SDK's own detector
/// reads it), else `service_name`; `OTEL_RESOURCE_ATTRIBUTES` adds the rest.
fn resource(service_name: &str) -> Resource {
    let builder = Resource::builder();
    if env_value("OTEL_SERVICE_NAME").is_some() {
        return builder.build();
    }
    builder.with_service_name(service_name.to_owned()).build()
}

/// Same precedence as the OTLP exporter's own deadline.
fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .into_iter()
    .find_map(|name| env_value(name)?.trim().parse().ok())
    .map_or(DEFAULT_EXPORT_TIMEOUT, Duration::from_millis)
}

/// A set, non-empty environment variable.
fn env_value(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}
