//! awsJson request dispatch: one `POST /` endpoint per gateway, routed on `X-Amz-Target`.
//!
//! Why: every awsJson service (ECS, Application Auto Scaling, Cloud Map, CloudWatch over JSON)
//! has the same plumbing: read a bounded body, verify SigV4 for the right signing name, find the
//! operation in `X-Amz-Target: <prefix>.<Operation>`, treat an empty body as `{}`, and answer
//! with the awsJson content type and a request id. Doing it once here means each service only
//! writes `operation + JSON in → JSON or AwsError out`, and no request can ever get one of axum's
//! own plain-text rejections (413, 405, 404...) that AWS clients cannot parse.

pub mod epoch_seconds;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use bytes::{Bytes, BytesMut};
use foldhash::{HashMap, HashMapExt};
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::{AwsError, WireFormat, new_request_id, success_response};
use crate::sigv4::{self, KeyStore, SigV4Error, SignedRequest, VerifyOptions};

/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// How much of an oversized body is still read (and dropped) so that the client, which is
/// still sending it, reads the 400 instead of a reset connection.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// A boxed, sendable future: what [`AwsJsonHandler::handle`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// What a handler answers: a JSON body, or an AWS error.
pub type HandlerResult = Result<Reply, AwsError>;

/// What the router knows about a verified request when it calls a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id (UUID v4) also sent back in `x-amzn-RequestId`.
    pub request_id: String,
    /// The operation, from `X-Amz-Target` (e.g. `ListClusters`).
    pub operation: String,
    /// The region the client signed for.
    pub region: String,
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// The signing name of the service (`ecs`, ...).
    pub service: &'static str,
    /// The `X-Amz-Target` prefix of the service.
    pub target_prefix: &'static str,
    /// When the router received the request, by its clock (tests can drive it).
    pub received_at: SystemTime,
}

/// A successful response body.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A JSON value, serialized by the router.
    Json(serde_json::Value),
    /// An already-serialized JSON body.
    Raw(Bytes),
}

impl Reply {
    /// Serializes any response shape; a failure is a `ServerException`.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> HandlerResult {
        serde_json::to_vec(value)
            .map(|body| Reply::Raw(Bytes::from(body)))
            .map_err(|error| {
                AwsError::server_exception(format!("The response could not be serialized: {error}"))
            })
    }

    /// `{}`: the answer of operations with no output members.
    pub fn empty() -> Self {
        Reply::Raw(Bytes::from_static(b"{}"))
    }

    /// The body bytes.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Reply::Raw(bytes) => bytes,
            Reply::Json(value) => Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
        }
    }
}

impl From<serde_json::Value> for Reply {
    fn from(value: serde_json::Value) -> Self {
        Reply::Json(value)
    }
}

impl From<Bytes> for Reply {
    fn from(bytes: Bytes) -> Self {
        Reply::Raw(bytes)
    }
}

/// One awsJson service's operations.
///
/// `operation` is the part of `X-Amz-Target` after the prefix (also in `ctx.operation`);
/// `body` is the request body, `{}` when the client sent none, always a JSON object. Answer
/// [`AwsError::unknown_operation`] for operations the service does not know and
/// [`AwsError::not_implemented`] for those it knows but does not implement.
pub trait AwsJsonHandler: Send + Sync + 'static {
    /// Runs one operation.
    fn handle<'a>(
        &'a self,
        ctx: RequestContext,
        operation: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, HandlerResult>;
}

struct FnHandler<F>(F);

impl<F, Fut> AwsJsonHandler for FnHandler<F>
where
    F: Fn(RequestContext, Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn handle<'a>(
        &'a self,
        ctx: RequestContext,
        _operation: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, HandlerResult> {
        Box::pin((self.0)(ctx, body))
    }
}

/// A handler from an async closure of `(ctx, body)`; the operation is `ctx.operation`.
pub fn handler_fn<F, Fut>(handler: F) -> Arc<dyn AwsJsonHandler>
where
    F: Fn(RequestContext, Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    Arc::new(FnHandler(handler))
}

/// How one service is reached and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The `X-Amz-Target` prefix, e.g. `AmazonEC2ContainerServiceV20141113`.
    pub target_prefix: &'static str,
    /// The SigV4 signing name the credential scope must carry, e.g. `ecs`.
    pub signing_name: &'static str,
    /// The response format (awsJson 1.1 unless said otherwise).
    pub format: WireFormat,
}

impl ServiceSpec {
    /// ECS: `AmazonEC2ContainerServiceV20141113`, signing name `ecs`, awsJson1.1.
    pub const ECS: ServiceSpec = ServiceSpec {
        target_prefix: "AmazonEC2ContainerServiceV20141113",
        signing_name: "ecs",
        format: WireFormat::AWS_JSON_1_1,
    };
    /// Application Auto Scaling: `AnyScaleFrontendService`, `application-autoscaling`, 1.1.
    pub const APPLICATION_AUTOSCALING: ServiceSpec = ServiceSpec {
        target_prefix: "AnyScaleFrontendService",
        signing_name: "application-autoscaling",
        format: WireFormat::AWS_JSON_1_1,
    };
    /// Cloud Map: `Route53AutoNaming_v20170314`, `servicediscovery`, 1.1.
    pub const SERVICE_DISCOVERY: ServiceSpec = ServiceSpec {
        target_prefix: "Route53AutoNaming_v20170314",
        signing_name: "servicediscovery",
        format: WireFormat::AWS_JSON_1_1,
    };
    /// CloudWatch over JSON: `GraniteServiceVersion20100801`, `monitoring`, awsJson1.0
    /// query-compatible.
    pub const CLOUDWATCH: ServiceSpec = ServiceSpec {
        target_prefix: "GraniteServiceVersion20100801",
        signing_name: "monitoring",
        format: WireFormat::AWS_JSON_1_0_QUERY_COMPATIBLE,
    };
}

/// The clock the router verifies request times against.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

struct Service {
    spec: ServiceSpec,
    handler: Arc<dyn AwsJsonHandler>,
}

struct Inner {
    keys: Arc<KeyStore>,
    services: HashMap<&'static str, Service>,
    body_limit: usize,
    verify_options: VerifyOptions,
    clock: Clock,
}

/// Builds the axum [`Router`] of one gateway's awsJson services.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use berth_aws_protocol::json::{AwsJsonRouter, handler_fn, Reply};
/// # use berth_aws_protocol::sigv4::KeyStore;
/// let keys = Arc::new(KeyStore::from_env().expect("keys"));
/// let ecs = handler_fn(|ctx, _body| async move { Ok(Reply::empty()) });
/// let app = AwsJsonRouter::new(keys)
///     .service("AmazonEC2ContainerServiceV20141113", "ecs", ecs)
///     .into_router();
/// ```
pub struct AwsJsonRouter {
    inner: Inner,
}

impl AwsJsonRouter {
    /// A router that verifies signatures against `keys`, with a 1 MiB body limit, AWS's
    /// 15-minute clock skew and the system clock.
    pub fn new(keys: Arc<KeyStore>) -> Self {
        AwsJsonRouter {
            inner: Inner {
                keys,
                services: HashMap::new(),
                body_limit: DEFAULT_BODY_LIMIT,
                verify_options: VerifyOptions::default(),
                clock: Arc::new(SystemTime::now),
            },
        }
    }

    /// Serves an awsJson1.1 service. A second service with the same prefix replaces the first.
    pub fn service(
        self,
        target_prefix: &'static str,
        signing_name: &'static str,
        handler: Arc<dyn AwsJsonHandler>,
    ) -> Self {
        self.service_spec(
            ServiceSpec {
                target_prefix,
                signing_name,
                format: WireFormat::AWS_JSON_1_1,
            },
            handler,
        )
    }

    /// Serves a service described by a [`ServiceSpec`] (e.g. awsJson1.0 query-compatible).
    pub fn service_spec(mut self, spec: ServiceSpec, handler: Arc<dyn AwsJsonHandler>) -> Self {
        self.inner
            .services
            .insert(spec.target_prefix, Service { spec, handler });
        self
    }

    /// The largest request body accepted, in bytes (default 1 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.inner.body_limit = bytes;
        self
    }

    /// SigV4 verification options (clock skew, unsigned payloads).
    pub fn verify_options(mut self, options: VerifyOptions) -> Self {
        self.inner.verify_options = options;
        self
    }

    /// The clock request times are checked against (tests drive it).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.inner.clock = clock;
        self
    }

    /// The axum router: `/` (any method, so that a wrong one still gets an AWS-shaped answer)
    /// plus a fallback answering every other path with an AWS-shaped 400.
    ///
    /// Add other routes (health checks) with `.route(...)` on the result; do not `merge` it
    /// with a router that has its own fallback (axum refuses two fallbacks).
    pub fn into_router(self) -> Router {
        let inner = Arc::new(self.inner);
        Router::new()
            .route("/", any(dispatch))
            .fallback(unknown_path)
            .with_state(inner)
    }
}

async fn unknown_path(request: Request) -> Response {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    drain(body).await;
    let error = AwsError::unknown_operation(format!(
        "No operation at {} {}: awsJson operations are POST / with an X-Amz-Target header.",
        parts.method,
        parts.uri.path()
    ));
    respond_error(&request_id, WireFormat::AWS_JSON_1_1, error)
}

fn respond_error(request_id: &str, format: WireFormat, error: AwsError) -> Response {
    if error.is_fault() {
        tracing::error!(request_id, code = %error.code, message = %error.message, "request failed");
    } else {
        tracing::debug!(request_id, code = %error.code, message = %error.message, "request rejected");
    }
    error.to_response(request_id, format)
}

/// Reads and drops what is left of a body, up to [`DRAIN_LIMIT`].
async fn drain(mut body: Body) {
    let mut drained = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            drained = drained.saturating_add(data.len());
            if drained > DRAIN_LIMIT {
                return;
            }
        }
    }
}

enum BodyError {
    TooLarge,
    Unreadable(String),
}

async fn read_body(mut body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let Some(declared) = declared
        && declared > u64::try_from(limit.saturating_add(DRAIN_LIMIT)).unwrap_or(u64::MAX)
    {
        // Too big to be worth draining: answer at once.
        return Err(BodyError::TooLarge);
    }
    let mut buffer = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| BodyError::Unreadable(error.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > limit {
            drain(body).await;
            return Err(BodyError::TooLarge);
        }
        buffer.extend_from_slice(&data);
    }
    Ok(buffer.freeze())
}

fn content_type_ok(headers: &HeaderMap) -> Result<(), AwsError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .ok()
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    match media_type.as_deref() {
        Some("application/x-amz-json-1.0" | "application/x-amz-json-1.1" | "application/json") => {
            Ok(())
        }
        _ => Err(AwsError::serialization(format!(
            "Unsupported Content-Type '{}': awsJson requests are application/x-amz-json-1.1, \
             application/x-amz-json-1.0 or application/json.",
            String::from_utf8_lossy(value.as_bytes())
        ))),
    }
}

fn valid_operation_name(operation: &str) -> bool {
    !operation.is_empty() && operation.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

async fn dispatch(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();

    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    let resolved =
        target
            .and_then(|target| target.split_once('.'))
            .and_then(|(prefix, operation)| {
                inner
                    .services
                    .get(prefix)
                    .map(|service| (service, operation))
            });
    let format = resolved.map_or(WireFormat::AWS_JSON_1_1, |(service, _)| service.spec.format);
    let fail = |error: AwsError| respond_error(&request_id, format, error);

    if parts.method != Method::POST {
        drain(body).await;
        return fail(AwsError::unknown_operation(format!(
            "awsJson operations are POST /, not {} /.",
            parts.method
        )));
    }

    let body = match read_body(body, &parts.headers, inner.body_limit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return fail(AwsError::serialization(format!(
                "The request body is larger than the limit of {} bytes.",
                inner.body_limit
            )));
        }
        Err(BodyError::Unreadable(reason)) => {
            return fail(AwsError::serialization(format!(
                "The request body could not be read: {reason}"
            )));
        }
    };

    let now = (inner.clock)();
    let signed = SignedRequest::from_parts(&parts, &body);
    let verified = match sigv4::verify_with(&inner.keys, &signed, now, &inner.verify_options) {
        Ok(verified) => verified,
        Err(error) => return fail(error.into()),
    };

    let Some((service, operation)) = resolved.filter(|(_, op)| valid_operation_name(op)) else {
        return fail(AwsError::unknown_operation(match target {
            Some(target) => format!("Unknown operation: X-Amz-Target '{target}'."),
            None => "The request has no X-Amz-Target header.".to_owned(),
        }));
    };
    if verified.service != service.spec.signing_name {
        return fail(SigV4Error::wrong_service(service.spec.signing_name).into());
    }
    if let Err(error) = content_type_ok(&parts.headers) {
        return fail(error);
    }

    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if let Err(error) = check_json_object(&body) {
        return fail(error);
    }

    let ctx = RequestContext {
        request_id: request_id.clone(),
        operation: operation.to_owned(),
        region: verified.region,
        access_key_id: verified.access_key_id,
        service: service.spec.signing_name,
        target_prefix: service.spec.target_prefix,
        received_at: now,
    };
    let span = tracing::info_span!(
        "aws_request",
        request_id = %request_id,
        service = service.spec.signing_name,
        operation = %operation,
    );
    let handler = Arc::clone(&service.handler);
    let operation = operation.to_owned();
    // Run the handler as its own task: a panic becomes a ServerException instead of a dropped
    // connection, and a command whose client went away still finishes.
    let task =
        tokio::spawn(async move { handler.handle(ctx, &operation, body).await }.instrument(span));
    match task.await {
        Ok(Ok(reply)) => success_response(&request_id, format, reply.into_bytes()),
        Ok(Err(error)) => fail(error),
        Err(join_error) => fail(AwsError::server_exception(if join_error.is_panic() {
            "The request failed inside Berth (the handler panicked).".to_owned()
        } else {
            "The request was cancelled inside Berth.".to_owned()
        })),
    }
}

/// The body must be one JSON object (awsJson inputs are structures).
fn check_json_object(body: &[u8]) -> Result<(), AwsError> {
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    decode::<serde::de::IgnoredAny>(body)?;
    if first != Some(&b'{') {
        return Err(AwsError::serialization(
            "The request body must be a JSON object.",
        ));
    }
    Ok(())
}

/// Decodes a request body: empty means `{}`; malformed JSON or a member of the wrong type is a
/// 400 `SerializationException` whose message names the member and the problem.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        serialization_error(&path, error.inner())
    })?;
    deserializer
        .end()
        .map_err(|error| serialization_error(".", &error))?;
    Ok(value)
}

fn serialization_error(path: &str, error: &serde_json::Error) -> AwsError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            AwsError::serialization(format!("The request body is not valid JSON: {error}"))
        }
        Category::Data if path.is_empty() || path == "." => {
            AwsError::serialization(format!("Invalid request: {error}"))
        }
        Category::Data => AwsError::serialization(format!("Invalid value for '{path}': {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct ListTasks {
        cluster: Option<String>,
        max_results: Option<i32>,
        #[serde(default)]
        include: Vec<Include>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Include {
        name: String,
    }

    #[test]
    fn decode_treats_empty_as_an_empty_object() {
        let request: ListTasks = decode(b"").expect("empty body");
        assert_eq!(
            request,
            ListTasks {
                cluster: None,
                max_results: None,
                include: vec![]
            }
        );
        let request: ListTasks = decode(b"  \n").expect("blank body");
        assert_eq!(request.cluster, None);
    }

    #[test]
    fn decode_names_the_member_of_the_wrong_type() {
        let error =
            decode::<ListTasks>(br#"{"cluster":"c","maxResults":"ten"}"#).expect_err("wrong type");
        assert_eq!(error.code, "SerializationException");
        assert_eq!(error.status, http::StatusCode::BAD_REQUEST);
        assert!(error.message.contains("'maxResults'"), "{}", error.message);
        assert!(error.message.contains("invalid type"), "{}", error.message);

        let error =
            decode::<ListTasks>(br#"{"include":[{"name":1}]}"#).expect_err("nested wrong type");
        assert!(
            error.message.contains("'include[0].name'"),
            "{}",
            error.message
        );
    }

    #[test]
    fn decode_reports_malformed_json_and_trailing_garbage() {
        for body in [&b"{"[..], b"{\"cluster\":}", b"{} {}", b"nope"] {
            let error = decode::<ListTasks>(body).expect_err("malformed");
            assert_eq!(error.code, "SerializationException");
            assert!(
                error
                    .message
                    .starts_with("The request body is not valid JSON"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn json_objects_only() {
        assert!(check_json_object(b"{}").is_ok());
        assert!(check_json_object(b" {\"a\":[1,2]} ").is_ok());
        assert!(check_json_object(b"[]").is_err());
        assert!(check_json_object(b"3").is_err());
        assert!(check_json_object(b"{").is_err());
    }

    #[test]
    fn content_types() {
        let mut headers = HeaderMap::new();
        assert!(content_type_ok(&headers).is_ok());
        for good in [
            "application/x-amz-json-1.1",
            "application/x-amz-json-1.0",
            "application/json; charset=utf-8",
            "Application/X-Amz-Json-1.1",
        ] {
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(good),
            );
            assert!(content_type_ok(&headers).is_ok(), "{good}");
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(content_type_ok(&headers).is_err());
    }

    #[test]
    fn reply_serializes() {
        #[derive(Serialize)]
        struct Out {
            arns: Vec<&'static str>,
        }
        let reply = Reply::json(&Out { arns: vec!["a"] }).expect("serializes");
        assert_eq!(reply.into_bytes(), Bytes::from_static(br#"{"arns":["a"]}"#));
        assert_eq!(
            Reply::from(serde_json::json!({"a": 1})).into_bytes(),
            Bytes::from_static(br#"{"a":1}"#)
        );
        assert_eq!(Reply::empty().into_bytes(), Bytes::from_static(b"{}"));
    }

    #[test]
    fn operation_names() {
        assert!(valid_operation_name("ListClusters"));
        assert!(!valid_operation_name(""));
        assert!(!valid_operation_name("List.Clusters"));
        assert!(!valid_operation_name("../x"));
    }
}
