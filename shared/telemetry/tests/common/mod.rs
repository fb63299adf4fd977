#![allow(dead_code)] // each test binary uses a different part
//! A tiny OTLP/HTTP collector on a real 127.0.0.1 socket, shared by the
//! integration tests. Each test binary holds one test: `init` installs a
//! process-wide subscriber and the tests set environment variables.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One request as the collector saw it.
#[derive(Debug)]
pub struct Received {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the collector got, decoded.
#[derive(Debug, Default)]
pub struct Exported {
    pub spans: Vec<Span>,
    pub service_names: Vec<String>,
}

impl Exported {
    pub fn span(&self, name: &str) -> &Span {
        self.spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no span {name:?} in {:?}", self.spans))
    }
}

/// Binds 127.0.0.1:0 without starting anything yet, so the test can set the
/// environment before any other thread exists. Returns the listener and the
/// endpoint URL for `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn bind() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (listener, endpoint)
}

/// Serves `listener` on the current runtime, answering every request with
/// `200 OK` and an empty body, and reporting it on the returned channel.
pub fn serve(listener: std::net::TcpListener) -> mpsc::UnboundedReceiver<Received> {
    let listener = TcpListener::from_std(listener).unwrap();
    let (sink, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                if let Ok(received) = serve_one(stream).await {
                    let _ = sink.send(received);
                }
            });
        }
    });
    requests
}

async fn serve_one(stream: TcpStream) -> std::io::Result<Received> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header line");
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let mut stream = reader.into_inner();
    // An empty ExportTraceServiceResponse.
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
        )
        .await?;
    stream.shutdown().await?;
    Ok(Received {
        request_line: request_line.trim_end().to_owned(),
        headers,
        body,
    })
}

/// Receives OTLP trace requests until `span_count` spans have arrived,
/// checking that each is a protobuf POST to /v1/traces.
pub async fn collect(
    requests: &mut mpsc::UnboundedReceiver<Received>,
    span_count: usize,
) -> Exported {
    let mut exported = Exported::default();
    while exported.spans.len() < span_count {
        let received = tokio::time::timeout(Duration::from_secs(10), requests.recv())
            .await
            .expect("the collector got a request in time")
            .expect("collector running");
        assert_eq!(received.request_line, "POST /v1/traces HTTP/1.1");
        assert_eq!(
            header(&received.headers, "content-type"),
            Some("application/x-protobuf")
        );
        let request = ExportTraceServiceRequest::decode(received.body.as_slice())
            .expect("an OTLP protobuf body");
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.unwrap_or_default();
            for attribute in resource.attributes {
                if attribute.key == "service.name"
                    && let Some(Value::StringValue(name)) =
                        attribute.value.and_then(|value| value.value)
                {
                    exported.service_names.push(name);
                }
            }
            for scope_spans in resource_spans.scope_spans {
                exported.spans.extend(scope_spans.spans);
            }
        }
    }
    exported
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
