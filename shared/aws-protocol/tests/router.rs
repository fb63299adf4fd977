//! The awsJson router over real HTTP on 127.0.0.1, driven by requests signed by the real
//! `aws-sigv4` crate, by botocore's `SigV4Auth`, by a botocore ECS client and by the AWS CLI.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use berth_aws_protocol::json::{
    AwsJsonHandler, AwsJsonRouter, BoxFuture, HandlerResult, Reply, RequestContext, ServiceSpec,
    decode,
};
use berth_aws_protocol::pagination::{PageLimits, paginate};
use berth_aws_protocol::{AwsError, KeyStore};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const AKID: &str = "AKIDBERTHINTEGRATION";
const SECRET: &str = "integration/secret+KEY";
const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";

/// A stand-in for the ECS service: echoes, pages clusters, fails on demand.
struct TestEcs;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListClustersInput {
    max_results: Option<i32>,
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListClustersOutput {
    cluster_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

impl AwsJsonHandler for TestEcs {
    fn handle<'a>(
        &'a self,
        ctx: RequestContext,
        operation: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, HandlerResult> {
        Box::pin(async move {
            match operation {
                "Echo" => {
                    let input: Value = decode(&body)?;
                    Ok(Reply::from(json!({
                        "operation": ctx.operation,
                        "region": ctx.region,
                        "accessKeyId": ctx.access_key_id,
                        "requestId": ctx.request_id,
                        "input": input,
                    })))
                }
                "ListClusters" => {
                    let input: ListClustersInput = decode(&body)?;
                    let arns: Vec<String> = ["alpha", "beta", "gamma"]
                        .iter()
                        .map(|name| {
                            format!("arn:aws:ecs:{}:000000000000:cluster/{name}", ctx.region)
                        })
                        .collect();
                    let (page, next_token) = paginate(
                        arns,
                        |arn| arn.clone(),
                        input.max_results,
                        input.next_token.as_deref(),
                        PageLimits::ECS,
                    )?;
                    Reply::json(&ListClustersOutput {
                        cluster_arns: page,
                        next_token,
                    })
                }
                "DescribeClusters" => Err(AwsError::client(
                    "ClusterNotFoundException",
                    "Cluster not found.",
                )),
                "Fail" => Err(AwsError::server_exception("Something broke.")),
                "Panic" => panic!("the handler panicked on purpose"),
                other => Err(AwsError::unknown_operation(format!(
                    "Unknown operation {other}."
                ))),
            }
        })
    }
}

struct Server {
    addr: SocketAddr,
    /// Seconds added to the router's clock.
    clock_offset: Arc<AtomicU64>,
}

async fn start(body_limit: Option<usize>) -> Server {
    let keys = Arc::new(KeyStore::new().with_key(AKID, SECRET));
    let clock_offset = Arc::new(AtomicU64::new(0));
    let offset = Arc::clone(&clock_offset);
    let mut router = AwsJsonRouter::new(keys)
        .service(ECS_TARGET, "ecs", Arc::new(TestEcs))
        .service_spec(ServiceSpec::CLOUDWATCH, Arc::new(TestEcs))
        .clock(Arc::new(move || {
            SystemTime::now() + Duration::from_secs(offset.load(Ordering::SeqCst))
        }));
    if let Some(limit) = body_limit {
        router = router.body_limit(limit);
    }
    let app = router.into_router();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Server { addr, clock_offset }
}

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the awsJson error shape and returns the message.
    fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("x-amzn-ErrorType"), Some(code), "{self:?}");
        let request_id = self.header("x-amzn-RequestId").expect("request id");
        assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
        let body = self.json();
        assert_eq!(body["__type"], code, "{body}");
        body["message"].as_str().expect("message").to_owned()
    }
}

/// Sends a request over a fresh TCP connection and reads the whole response.
async fn send_raw(addr: SocketAddr, head: &str, body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

async fn send(addr: SocketAddr, request: &http::Request<Vec<u8>>) -> RawResponse {
    let mut head = format!(
        "{} {} HTTP/1.1\r\n",
        request.method(),
        request
            .uri()
            .path_and_query()
            .map_or("/", |target| target.as_str())
    );
    for (name, value) in request.headers() {
        head.push_str(&format!(
            "{}: {}\r\n",
            name,
            value.to_str().expect("ascii header")
        ));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        request.body().len()
    ));
    send_raw(addr, &head, request.body()).await
}

fn request(addr: SocketAddr, target: Option<&str>, body: &[u8]) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("host", addr.to_string())
        .header("content-type", "application/x-amz-json-1.1");
    if let Some(target) = target {
        builder = builder.header("x-amz-target", target);
    }
    builder.body(body.to_vec()).expect("request")
}

fn sign_with(
    request: &mut http::Request<Vec<u8>>,
    akid: &str,
    secret: &str,
    service: &str,
    time: SystemTime,
) {
    let identity = Credentials::new(akid, secret, None, None, "integration").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("ap-south-1")
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let host = request
        .headers()
        .get("host")
        .and_then(|value| value.to_str().ok())
        .expect("host")
        .to_owned();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().expect("ascii").to_owned(),
            )
        })
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        format!("http://{host}{}", request.uri()),
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions.apply_to_request_http1x(request);
}

fn signed(addr: SocketAddr, target: Option<&str>, body: &[u8]) -> http::Request<Vec<u8>> {
    let mut request = request(addr, target, body);
    sign_with(&mut request, AKID, SECRET, "ecs", SystemTime::now());
    request
}

fn echo_target() -> String {
    format!("{ECS_TARGET}.Echo")
}

#[tokio::test]
async fn a_good_signature_reaches_the_handler() {
    let server = start(None).await;
    let response = send(
        server.addr,
        &signed(
            server.addr,
            Some(&echo_target()),
            br#"{"cluster":"default"}"#,
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/x-amz-json-1.1")
    );
    let request_id = response.header("x-amzn-RequestId").expect("request id");
    let body = response.json();
    assert_eq!(body["requestId"], request_id);
    assert_eq!(body["operation"], "Echo");
    assert_eq!(body["region"], "ap-south-1");
    assert_eq!(body["accessKeyId"], AKID);
    assert_eq!(body["input"], json!({"cluster": "default"}));
}

#[tokio::test]
async fn an_empty_body_is_an_empty_object() {
    let server = start(None).await;
    let response = send(server.addr, &signed(server.addr, Some(&echo_target()), b"")).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json()["input"], json!({}));
}

#[tokio::test]
async fn a_tampered_body_is_an_invalid_signature() {
    let server = start(None).await;
    let mut request = signed(server.addr, Some(&echo_target()), br#"{"count":1}"#);
    *request.body_mut() = br#"{"count":9}"#.to_vec();
    let message = send(server.addr, &request)
        .await
        .assert_error(400, "InvalidSignatureException");
    assert!(message.starts_with("The request signature we calculated does not match"));
}

#[tokio::test]
async fn an_unknown_key_is_unrecognized() {
    let server = start(None).await;
    let mut request = request(server.addr, Some(&echo_target()), b"{}");
    sign_with(
        &mut request,
        "AKIDNOBODY",
        "whatever",
        "ecs",
        SystemTime::now(),
    );
    let message = send(server.addr, &request)
        .await
        .assert_error(400, "UnrecognizedClientException");
    assert_eq!(
        message,
        "The security token included in the request is invalid."
    );
}

#[tokio::test]
async fn no_signature_is_a_missing_token() {
    let server = start(None).await;
    let message = send(
        server.addr,
        &request(server.addr, Some(&echo_target()), b"{}"),
    )
    .await
    .assert_error(400, "MissingAuthenticationTokenException");
    assert_eq!(message, "Missing Authentication Token");
}

#[tokio::test]
async fn a_signature_for_another_service_is_refused() {
    let server = start(None).await;
    let mut request = request(server.addr, Some(&echo_target()), b"{}");
    sign_with(&mut request, AKID, SECRET, "monitoring", SystemTime::now());
    let message = send(server.addr, &request)
        .await
        .assert_error(400, "InvalidSignatureException");
    assert_eq!(
        message,
        "Credential should be scoped to correct service: 'ecs'. "
    );
}

#[tokio::test]
async fn a_clock_more_than_fifteen_minutes_off_is_expired() {
    let server = start(None).await;
    server.clock_offset.store(16 * 60, Ordering::SeqCst);
    let message = send(
        server.addr,
        &signed(server.addr, Some(&echo_target()), b"{}"),
    )
    .await
    .assert_error(400, "InvalidSignatureException");
    assert!(message.starts_with("Signature expired: "), "{message}");
}

#[tokio::test]
async fn malformed_json_is_a_serialization_exception() {
    let server = start(None).await;
    for body in [&br#"{"cluster":"#[..], b"[1,2]", b"\"text\""] {
        let message = send(
            server.addr,
            &signed(server.addr, Some(&echo_target()), body),
        )
        .await
        .assert_error(400, "SerializationException");
        assert!(!message.is_empty());
    }
    let message = send(
        server.addr,
        &signed(
            server.addr,
            Some(&format!("{ECS_TARGET}.ListClusters")),
            br#"{"maxResults":"ten"}"#,
        ),
    )
    .await
    .assert_error(400, "SerializationException");
    assert!(message.contains("'maxResults'"), "{message}");
}

#[tokio::test]
async fn an_oversized_body_is_a_clear_400() {
    let server = start(None).await;
    let mut body = br#"{"padding":""#.to_vec();
    body.resize(1024 * 1024 + 10, b'x');
    body.extend_from_slice(b"\"}");
    let message = send(
        server.addr,
        &signed(server.addr, Some(&echo_target()), &body),
    )
    .await
    .assert_error(400, "SerializationException");
    assert!(message.contains("1048576"), "{message}");

    // A body declared far too large is refused before it is sent.
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\nx-amz-target: {}\r\ncontent-length: 104857600\r\n\r\n",
        server.addr,
        echo_target()
    );
    send_raw(server.addr, &head, b"{")
        .await
        .assert_error(400, "SerializationException");
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let server = start(Some(64)).await;
    let small = send(
        server.addr,
        &signed(server.addr, Some(&echo_target()), b"{}"),
    )
    .await;
    assert_eq!(small.status, 200);
    let body = format!(r#"{{"padding":"{}"}}"#, "x".repeat(100));
    let message = send(
        server.addr,
        &signed(server.addr, Some(&echo_target()), body.as_bytes()),
    )
    .await
    .assert_error(400, "SerializationException");
    assert!(message.contains("64 bytes"), "{message}");
}

#[tokio::test]
async fn unknown_targets_are_unknown_operations() {
    let server = start(None).await;
    for target in [
        None,
        Some("NoSuchService.ListClusters"),
        Some("AmazonEC2ContainerServiceV20141113"),
        Some("AmazonEC2ContainerServiceV20141113."),
        Some("AmazonEC2ContainerServiceV20141113.NoSuchOperation"),
    ] {
        send(server.addr, &signed(server.addr, target, b"{}"))
            .await
            .assert_error(400, "UnknownOperationException");
    }
}

#[tokio::test]
async fn wrong_methods_and_paths_get_aws_shaped_400s() {
    let server = start(None).await;
    for head in [
        format!(
            "GET / HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            server.addr
        ),
        format!(
            "POST /nope HTTP/1.1\r\nhost: {}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}",
            server.addr
        ),
        format!(
            "DELETE /a/b?c=d HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            server.addr
        ),
    ] {
        send_raw(server.addr, &head, b"")
            .await
            .assert_error(400, "UnknownOperationException");
    }
}

#[tokio::test]
async fn an_unsupported_content_type_is_refused() {
    let server = start(None).await;
    let mut request = request(server.addr, Some(&echo_target()), b"{}");
    request.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    sign_with(&mut request, AKID, SECRET, "ecs", SystemTime::now());
    send(server.addr, &request)
        .await
        .assert_error(400, "SerializationException");
}

#[tokio::test]
async fn handler_failures_and_panics_are_server_exceptions() {
    let server = start(None).await;
    let message = send(
        server.addr,
        &signed(server.addr, Some(&format!("{ECS_TARGET}.Fail")), b"{}"),
    )
    .await
    .assert_error(500, "ServerException");
    assert_eq!(message, "Something broke.");
    send(
        server.addr,
        &signed(server.addr, Some(&format!("{ECS_TARGET}.Panic")), b"{}"),
    )
    .await
    .assert_error(500, "ServerException");
    // The server still answers.
    let response = send(
        server.addr,
        &signed(server.addr, Some(&echo_target()), b"{}"),
    )
    .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn query_compatible_services_answer_in_json_1_0() {
    let server = start(None).await;
    let mut request = request(
        server.addr,
        Some("GraniteServiceVersion20100801.DescribeClusters"),
        b"{}",
    );
    request.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    sign_with(&mut request, AKID, SECRET, "monitoring", SystemTime::now());
    let response = send(server.addr, &request).await;
    response.assert_error(400, "ClusterNotFoundException");
    assert_eq!(
        response.header("content-type"),
        Some("application/x-amz-json-1.0")
    );
    assert_eq!(
        response.header("x-amzn-query-error"),
        Some("ClusterNotFoundException;Sender")
    );
}

// ---- botocore and the AWS CLI ----------------------------------------------------------------

/// Runs a program to completion off the async runtime; `None` if it cannot be started.
async fn run(program: &'static str, args: Vec<String>) -> Option<std::process::Output> {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(program)
            .args(&args)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env("AWS_ACCESS_KEY_ID", AKID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_DEFAULT_REGION", "eu-central-1")
            .output()
            .ok()
    })
    .await
    .expect("join")
}

async fn botocore_available() -> bool {
    let available = run("python3", vec!["-c".into(), "import botocore".into()])
        .await
        .is_some_and(|output| output.status.success());
    if !available {
        eprintln!("python3 with botocore is not installed: skipping the botocore check");
    }
    available
}

const SIGV4AUTH_SCRIPT: &str = r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, akid, secret, target, body = sys.argv[1:6]
request = AWSRequest(method="POST", url=url, data=body.encode(),
                     headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
SigV4Auth(Credentials(akid, secret), "ecs", "us-west-2").add_auth(request)
print(json.dumps(dict(request.headers.items())))
"#;

#[tokio::test]
async fn a_request_signed_by_botocore_sigv4auth_verifies() {
    if !botocore_available().await {
        return;
    }
    let server = start(None).await;
    let body = r#"{"cluster":"default","count":2}"#;
    let output = run(
        "python3",
        vec![
            "-c".into(),
            SIGV4AUTH_SCRIPT.into(),
            format!("http://{}/", server.addr),
            AKID.into(),
            SECRET.into(),
            echo_target(),
            body.into(),
        ],
    )
    .await
    .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let headers: serde_json::Map<String, Value> =
        serde_json::from_slice(&output.stdout).expect("headers as JSON");
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("host", server.addr.to_string());
    for (name, value) in &headers {
        builder = builder.header(name.as_str(), value.as_str().expect("string header"));
    }
    let request = builder.body(body.as_bytes().to_vec()).expect("request");
    let response = send(server.addr, &request).await;
    assert_eq!(response.status, 200, "{response:?}");
    let echoed = response.json();
    assert_eq!(echoed["region"], "us-west-2");
    assert_eq!(echoed["input"], json!({"cluster": "default", "count": 2}));

    // The same headers with another body fail.
    let tampered = {
        let mut request = request;
        *request.body_mut() = br#"{"cluster":"default","count":3}"#.to_vec();
        request
    };
    send(server.addr, &tampered)
        .await
        .assert_error(400, "InvalidSignatureException");
}

const CLIENT_SCRIPT: &str = r#"
import json, sys
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
endpoint, akid, secret = sys.argv[1:4]
session = botocore.session.get_session()
def client(key, secret_key):
    return session.create_client("ecs", region_name="eu-central-1", endpoint_url=endpoint,
                                 aws_access_key_id=key, aws_secret_access_key=secret_key,
                                 config=Config(retries={"max_attempts": 1}))
ecs = client(akid, secret)
out = {}
pages = ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2})
out["pages"] = [page["clusterArns"] for page in pages]
try:
    ecs.describe_clusters(clusters=["nope"])
except ClientError as error:
    meta = error.response["ResponseMetadata"]
    out["error"] = {"code": error.response["Error"]["Code"],
                    "message": error.response["Error"]["Message"],
                    "status": meta["HTTPStatusCode"],
                    "requestId": meta.get("RequestId"),
                    "headerRequestId": meta["HTTPHeaders"].get("x-amzn-requestid"),
                    "modeled": isinstance(error, ecs.exceptions.ClusterNotFoundException)}
try:
    client("AKIDNOBODY", "nothing").list_clusters()
except ClientError as error:
    out["unknownKey"] = error.response["Error"]["Code"]
try:
    client(akid, "the-wrong-secret").list_clusters()
except ClientError as error:
    out["wrongSecret"] = error.response["Error"]["Code"]
print(json.dumps(out))
"#;

#[tokio::test]
async fn a_botocore_ecs_client_pages_and_parses_errors() {
    if !botocore_available().await {
        return;
    }
    let server = start(None).await;
    let output = run(
        "python3",
        vec![
            "-c".into(),
            CLIENT_SCRIPT.into(),
            format!("http://{}", server.addr),
            AKID.into(),
            SECRET.into(),
        ],
    )
    .await
    .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(
        out["pages"],
        json!([
            [
                "arn:aws:ecs:eu-central-1:000000000000:cluster/alpha",
                "arn:aws:ecs:eu-central-1:000000000000:cluster/beta"
            ],
            ["arn:aws:ecs:eu-central-1:000000000000:cluster/gamma"]
        ])
    );
    let error = &out["error"];
    assert_eq!(error["code"], "ClusterNotFoundException");
    assert_eq!(error["message"], "Cluster not found.");
    assert_eq!(error["status"], 400);
    assert_eq!(error["modeled"], true);
    assert!(error["requestId"].is_string());
    assert_eq!(error["requestId"], error["headerRequestId"]);
    assert_eq!(out["unknownKey"], "UnrecognizedClientException");
    assert_eq!(out["wrongSecret"], "InvalidSignatureException");
}

#[tokio::test]
async fn the_aws_cli_lists_every_page_and_reports_errors() {
    let server = start(None).await;
    let endpoint = format!("http://{}", server.addr);
    let Some(output) = run(
        "aws",
        vec![
            "ecs".into(),
            "list-clusters".into(),
            "--page-size".into(),
            "1".into(),
            "--endpoint-url".into(),
            endpoint.clone(),
            "--output".into(),
            "json".into(),
        ],
    )
    .await
    else {
        eprintln!("the AWS CLI is not installed: skipping the CLI check");
        return;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).expect("CLI JSON");
    assert_eq!(
        listed["clusterArns"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );

    let output = run(
        "aws",
        vec![
            "ecs".into(),
            "describe-clusters".into(),
            "--clusters".into(),
            "nope".into(),
            "--endpoint-url".into(),
            endpoint,
        ],
    )
    .await
    .expect("the CLI runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "An error occurred (ClusterNotFoundException) when calling the DescribeClusters \
             operation: Cluster not found."
        ),
        "{stderr}"
    );
}
