//! A small blocking HTTP/1.1 client for the OTLP/HTTP span exporter.
//!
//! The SDK's `BatchSpanProcessor` runs on its own OS thread and drives the
//! exporter with `futures_executor::block_on`, so the exporter needs a client
//! that works without an async runtime. The stock choices are reqwest's
//! blocking client (reqwest, hyper, tower, url/idna and a private Tokio
//! runtime thread) or hyper (needs a Tokio reactor, which that thread lacks).
//! One POST of a protobuf body per batch to a collector that is normally a
//! sidecar or a node-local agent does not need any of that, so this module
//! speaks just enough HTTP/1.1 over `std::net::TcpStream`:
//!
//! * plain `http://` only (no TLS: keep the build small; put TLS in the
//!   collector),
//! * one connection per request (`Connection: close`), no pooling, no
//!   redirects, no proxies,
//! * `Content-Length`, chunked and read-to-EOF response bodies, capped at
//!   4 MiB like the stock clients,
//! * one deadline for connect, write and read (the OTLP timeout).

use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use opentelemetry_http::{HttpClient, HttpError, ResponseBodyTooLarge};

/// Largest response body accepted (same limit as the stock clients).
const MAX_RESPONSE_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Largest status line plus headers accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Blocking HTTP/1.1 client; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct BlockingHttpClient {
    timeout: Duration,
}

impl BlockingHttpClient {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let deadline = Instant::now() + self.timeout;
        let uri = request.uri();
        match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => {}
            Some(scheme) => {
                return Err(format!(
                    "unsupported scheme {scheme:?}: berth-telemetry exports over plain http only"
                )
                .into());
            }
            None => return Err("the OTLP endpoint has no scheme".into()),
        }
        let Some(host) = uri.host() else {
            return Err("the OTLP endpoint has no host".into());
        };
        let port = uri.port_u16().unwrap_or(80);

        let stream = connect(host, port, deadline)?;
        let head = encode_head(&request)?;
        let mut writer = DeadlineStream {
            stream: &stream,
            deadline,
        };
        writer.write_all(&head)?;
        writer.write_all(request.body())?;
        writer.flush()?;

        let reader = BufReader::new(DeadlineStream {
            stream: &stream,
            deadline,
        });
        read_response(reader)
    }
}

impl HttpClient for BlockingHttpClient {
    // Written out by hand rather than with `#[async_trait]`, which saves a
    // proc-macro dependency; this is exactly what the macro expands to.
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        // Blocking inside the future is deliberate: the SDK's batch processor
        // polls it on its own dedicated thread.
        Box::pin(async move { self.send(request) })
    }
}

/// Time left before `deadline`, or a `TimedOut` error once it has passed.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "OTLP export timed out",
        ));
    }
    Ok(left)
}

fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, HttpError> {
    // `Uri::host` keeps the brackets of an IPv6 literal.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut last_error = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    match last_error {
        Some(error) => Err(error.into()),
        None => Err(format!("{host}:{port} resolved to no address").into()),
    }
}

/// A `TcpStream` whose every read and write is bounded by one deadline.
struct DeadlineStream<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for DeadlineStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream
            .set_read_timeout(Some(remaining(self.deadline)?))?;
        self.stream.read(buf)
    }
}

impl Write for DeadlineStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream
            .set_write_timeout(Some(remaining(self.deadline)?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Request line and headers. The caller's `Host`, `Content-Length`,
/// `Connection` and `Transfer-Encoding` are replaced by our own.
fn encode_head(request: &Request<Bytes>) -> Result<Vec<u8>, HttpError> {
    let uri = request.uri();
    let Some(authority) = uri.authority() else {
        return Err("the OTLP endpoint has no host".into());
    };
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(
        format!(
            "{} {target} HTTP/1.1\r\nhost: {}\r\n",
            request.method(),
            authority.as_str()
        )
        .as_bytes(),
    );
    for (name, value) in request.headers() {
        if [HOST, CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING].contains(name) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            request.body().len()
        )
        .as_bytes(),
    );
    Ok(head)
}

/// Reads one response (skipping interim 1xx responses) from `reader`.
fn read_response<R: BufRead>(mut reader: R) -> Result<Response<Bytes>, HttpError> {
    let mut head_budget = MAX_HEAD_BYTES;
    loop {
        let (status, headers) = read_head(&mut reader, &mut head_budget)?;
        if status.is_informational() {
            continue;
        }
        let body = read_body(&mut reader, status, &headers)?;
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return Ok(response);
    }
}

fn read_head<R: BufRead>(
    reader: &mut R,
    budget: &mut usize,
) -> Result<(StatusCode, HeaderMap), HttpError> {
    let status_line = read_line(reader, budget)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}").into());
    }
    let code = parts.next().unwrap_or_default();
    let status = StatusCode::from_bytes(code.as_bytes())
        .map_err(|_| format!("bad status line: {status_line:?}"))?;

    let mut headers = HeaderMap::new();
    loop {
        let line = read_line(reader, budget)?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line: {line:?}").into());
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())?;
        let value = HeaderValue::from_str(value.trim())?;
        headers.append(name, value);
    }
}

fn read_body<R: BufRead>(
    reader: &mut R,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<Bytes, HttpError> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Bytes::new());
    }
    let chunked = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(reader);
    }
    if let Some(length) = headers.get(CONTENT_LENGTH) {
        let length: usize = length
            .to_str()
            .ok()
            .and_then(|value| value.trim().parse().ok())
            .ok_or("bad content-length")?;
        if length > MAX_RESPONSE_BODY_BYTES {
            return Err(ResponseBodyTooLarge::new().into());
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        return Ok(body.into());
    }
    // Neither length nor chunking: the body runs to the end of the connection.
    let mut body = Vec::new();
    reader
        .take(MAX_RESPONSE_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)?;
    if body.len() > MAX_RESPONSE_BODY_BYTES {
        return Err(ResponseBodyTooLarge::new().into());
    }
    Ok(body.into())
}

fn read_chunked<R: BufRead>(reader: &mut R) -> Result<Bytes, HttpError> {
    let mut body = Vec::new();
    let mut line_budget = MAX_HEAD_BYTES;
    loop {
        let size_line = read_line(reader, &mut line_budget)?;
        let size = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| format!("bad chunk size: {size_line:?}"))?;
        if size == 0 {
            // Trailers, up to the final empty line.
            while !read_line(reader, &mut line_budget)?.is_empty() {}
            return Ok(body.into());
        }
        if body.len() + size > MAX_RESPONSE_BODY_BYTES {
            return Err(ResponseBodyTooLarge::new().into());
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader, &mut line_budget)?.is_empty() {
            return Err("chunk not followed by CRLF".into());
        }
    }
}

/// One line without its line ending, counted against `budget`.
fn read_line<R: BufRead>(reader: &mut R, budget: &mut usize) -> Result<String, HttpError> {
    let mut line = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX);
    reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        if line.len() >= *budget {
            return Err("response head too large".into());
        }
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in the middle of the response",
        )
        .into());
    }
    *budget -= line.len();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| "response head is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn parse(raw: &[u8]) -> Result<Response<Bytes>, HttpError> {
        read_response(raw)
    }

    #[test]
    fn content_length_body() {
        let response =
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloEXTRA").unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-a"], "b");
        assert_eq!(response.body().as_ref(), b"hello");
    }

    #[test]
    fn chunked_body_with_trailer() {
        let response = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(response.body().as_ref(), b"abcde");
    }

    #[test]
    fn body_to_eof_and_interim_response() {
        let response =
            parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 503 Busy\r\nRetry-After: 3\r\n\r\nlater")
                .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "3");
        assert_eq!(response.body().as_ref(), b"later");
    }

    #[test]
    fn rejects_garbage_truncation_and_huge_bodies() {
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc").is_err());
        let huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_RESPONSE_BODY_BYTES + 1
        );
        let error = parse(huge.as_bytes()).unwrap_err();
        assert!(error.downcast_ref::<ResponseBodyTooLarge>().is_some());
    }

    #[test]
    fn head_replaces_framing_headers() {
        let request = Request::post("http://collector:4318/v1/traces?x=1")
            .header("content-type", "application/x-protobuf")
            .header("content-length", "999")
            .header("authorization", "Bearer t")
            .body(Bytes::from_static(b"abc"))
            .unwrap();
        let head = String::from_utf8(encode_head(&request).unwrap()).unwrap();
        assert!(head.starts_with("POST /v1/traces?x=1 HTTP/1.1\r\nhost: collector:4318\r\n"));
        assert!(head.contains("content-type: application/x-protobuf\r\n"));
        assert!(head.contains("authorization: Bearer t\r\n"));
        assert!(head.ends_with("content-length: 3\r\nconnection: close\r\n\r\n"));
        assert!(!head.contains("999"));
    }

    #[test]
    fn rejects_https() {
        let client = BlockingHttpClient::new(Duration::from_secs(1));
        let request = Request::post("https://127.0.0.1:1/v1/traces")
            .body(Bytes::new())
            .unwrap();
        let error = client.send(request).unwrap_err();
        assert!(error.to_string().contains("plain http"));
    }

    #[test]
    fn round_trip_over_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            // The client sends `connection: close` but keeps its side open
            // until it has read the response, so read up to the known length.
            let mut buf = [0; 1024];
            while !request.ends_with(b"ping") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "client closed early");
                request.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong")
                .unwrap();
            String::from_utf8(request).unwrap()
        });
        let client = BlockingHttpClient::new(Duration::from_secs(5));
        let request = Request::post(format!("http://{addr}/v1/traces"))
            .body(Bytes::from_static(b"ping"))
            .unwrap();
        let response = futures_block_on(client.send_bytes(request)).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body().as_ref(), b"pong");
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /v1/traces HTTP/1.1\r\n"));
    }

    #[test]
    fn times_out_on_a_silent_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = BlockingHttpClient::new(Duration::from_millis(200));
        let request = Request::post(format!("http://{addr}/v1/traces"))
            .body(Bytes::from_static(b"ping"))
            .unwrap();
        let started = Instant::now();
        let error = client.send(request).unwrap_err();
        let io_error = error.downcast_ref::<io::Error>().expect("an io error");
        assert!(
            matches!(
                io_error.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{io_error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }

    /// Polls a future that never returns `Pending` (ours never does).
    fn futures_block_on<F: Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the blocking client never yields"),
        }
    }
}
