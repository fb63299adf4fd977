//! SigV4 verification against the published test-suite vectors, the real `aws-sigv4` signer,
//! and malformed input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use proptest::prelude::*;

use super::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
/// 2015-08-30T12:36:00Z.
const SUITE_TIME: u64 = 1_440_938_160;

fn suite_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SUITE_TIME)
}

fn keys() -> KeyStore {
    KeyStore::new().with_key(AKID, SECRET)
}

struct TestRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl TestRequest {
    fn new(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        TestRequest {
            method: Method::from_bytes(method.as_bytes()).expect("method"),
            uri: target.parse().expect("uri"),
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    /// A request of the test suite: host example.amazonaws.com, X-Amz-Date 20150830T123600Z,
    /// then `headers`, then the Authorization header of the vector.
    fn suite(
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
        signed_headers: &str,
        signature: &str,
    ) -> Self {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        );
        let mut all = vec![("host", "example.amazonaws.com"), ("x-amz-date", DATE)];
        all.extend_from_slice(headers);
        all.push(("authorization", authorization.as_str()));
        TestRequest::new(method, target, &all, body)
    }

    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn verify_at(&self, now: SystemTime) -> Result<Verified, SigV4Error> {
        verify(&keys(), &self.signed(), now)
    }

    fn verify(&self) -> Result<Verified, SigV4Error> {
        self.verify_at(suite_now())
    }
}

fn suite_verified() -> Verified {
    Verified {
        access_key_id: AKID.to_owned(),
        region: "us-east-1".to_owned(),
        service: "service".to_owned(),
    }
}

const UNRESERVED: &str = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[test]
fn published_test_suite_vectors_verify() {
    let unreserved_query = format!("/?{UNRESERVED}={UNRESERVED}");
    // (name, method, target, extra headers, body, SignedHeaders, Signature)
    type Vector<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        &'a str,
        &'a str,
        &'a str,
    );
    let vectors: Vec<Vector<'_>> = vec![
        (
            "get-vanilla",
            "GET",
            "/",
            vec![],
            "",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "post-vanilla",
            "POST",
            "/",
            vec![],
            "",
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            "/?Param2=value2&Param1=value1",
            vec![],
            "",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "get-vanilla-empty-query-key",
            "GET",
            "/?Param1=value1",
            vec![],
            "",
            "host;x-amz-date",
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
        ),
        (
            "get-vanilla-query-unreserved",
            "GET",
            &unreserved_query,
            vec![],
            "",
            "host;x-amz-date",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        ),
        (
            "get-vanilla-utf8-query",
            "GET",
            "/?%E1%88%B4=bar",
            vec![],
            "",
            "host;x-amz-date",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        ),
        (
            "get-utf8 (path encoded once)",
            "GET",
            "/%E1%88%B4",
            vec![],
            "",
            "host;x-amz-date",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        ),
        (
            "get-relative-relative (normalizes to /)",
            "GET",
            "/example1/example2/../..",
            vec![],
            "",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-header-value-trim",
            "GET",
            "/",
            vec![("my-header1", " value1"), ("my-header2", " \"a   b   c\"")],
            "",
            "host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        ),
        (
            "get-header-value-order (multi-value header)",
            "GET",
            "/",
            vec![
                ("my-header1", "value4"),
                ("my-header1", "value1"),
                ("my-header1", "value3"),
                ("my-header1", "value2"),
            ],
            "",
            "host;my-header1;x-amz-date",
            "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        ),
        (
            "post-header-key-sort",
            "POST",
            "/",
            vec![("my-header1", "value1")],
            "",
            "host;my-header1;x-amz-date",
            "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        ),
        (
            "post-vanilla-query",
            "POST",
            "/?Param1=value1",
            vec![],
            "",
            "host;x-amz-date",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST",
            "/",
            vec![("content-type", "application/x-www-form-urlencoded")],
            "Param1=value1",
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    ];
    for (name, method, target, headers, body, signed_headers, signature) in vectors {
        let request = TestRequest::suite(method, target, &headers, body, signed_headers, signature);
        assert_eq!(request.verify(), Ok(suite_verified()), "vector {name}");
    }
}

fn form_post(body: &str) -> TestRequest {
    TestRequest::suite(
        "POST",
        "/",
        &[("content-type", "application/x-www-form-urlencoded")],
        body,
        "content-type;host;x-amz-date",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    )
}

#[test]
fn a_tampered_body_query_header_or_method_fails() {
    assert_eq!(
        form_post("Param1=value2").verify(),
        Err(SigV4Error::SignatureMismatch)
    );
    let mut request = form_post("Param1=value1");
    request.uri = "/?extra=1".parse().expect("uri");
    assert_eq!(request.verify(), Err(SigV4Error::SignatureMismatch));

    let mut request = form_post("Param1=value1");
    request.headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    assert_eq!(request.verify(), Err(SigV4Error::SignatureMismatch));

    let mut request = form_post("Param1=value1");
    request.method = Method::PUT;
    assert_eq!(request.verify(), Err(SigV4Error::SignatureMismatch));

    // An unsigned header may change freely.
    let mut request = form_post("Param1=value1");
    request
        .headers
        .insert("user-agent", HeaderValue::from_static("anything"));
    assert_eq!(request.verify(), Ok(suite_verified()));
}

#[test]
fn the_wrong_secret_is_a_signature_mismatch() {
    let request = form_post("Param1=value1");
    let keys = KeyStore::new().with_key(AKID, "not-the-secret");
    assert_eq!(
        verify(&keys, &request.signed(), suite_now()),
        Err(SigV4Error::SignatureMismatch)
    );
    let error = AwsError::from(SigV4Error::SignatureMismatch);
    assert_eq!(error.code, "InvalidSignatureException");
    assert_eq!(
        error.message,
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    );
}

#[test]
fn an_unknown_key_is_unrecognized() {
    let request = form_post("Param1=value1");
    let result = verify(&KeyStore::new(), &request.signed(), suite_now());
    assert_eq!(result, Err(SigV4Error::UnrecognizedClient));
    let error = AwsError::from(SigV4Error::UnrecognizedClient);
    assert_eq!(error.code, "UnrecognizedClientException");
    assert_eq!(
        error.message,
        "The security token included in the request is invalid."
    );
}

#[test]
fn no_authorization_is_a_missing_token() {
    let request = TestRequest::new("POST", "/", &[("host", "h"), ("x-amz-date", DATE)], "{}");
    assert_eq!(
        request.verify(),
        Err(SigV4Error::MissingAuthenticationToken)
    );
    let error = AwsError::from(SigV4Error::MissingAuthenticationToken);
    assert_eq!(error.code, "MissingAuthenticationTokenException");
    assert_eq!(error.message, "Missing Authentication Token");
}

#[test]
fn malformed_authorization_headers_are_incomplete() {
    let cases = [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;;x-amz-date, Signature=00",
        "AWS AKIDEXAMPLE:c2lnbmF0dXJl",
        "Bearer token",
        "",
    ];
    for authorization in cases {
        let request = TestRequest::new(
            "GET",
            "/",
            &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", DATE),
                ("authorization", authorization),
            ],
            "",
        );
        let error = request.verify().expect_err(authorization);
        assert_eq!(
            error.code(),
            "IncompleteSignatureException",
            "{authorization}: {error}"
        );
    }

    let request = TestRequest::new(
        "GET",
        "/",
        &[("host", "h"), ("authorization", "AWS4-HMAC-SHA256 Foo=bar")],
        "",
    );
    let message = request.verify().expect_err("incomplete").to_string();
    assert!(
        message.starts_with(
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        ),
        "{message}"
    );
}

fn with_date(date: &str, scope_date: &str) -> TestRequest {
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/{scope_date}/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    TestRequest::new(
        "GET",
        "/",
        &[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", date),
            ("authorization", &authorization),
        ],
        "",
    )
}

#[test]
fn bad_dates_are_incomplete_and_scope_mismatches_invalid() {
    for date in [
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20151330T123600Z",
        "20150830T253600Z",
        "2015083éT12360Z",
        "Sun, 30 Aug 2015 12:36:00 GMT",
    ] {
        let error = with_date(date, "20150830").verify().expect_err(date);
        assert_eq!(
            error.code(),
            "IncompleteSignatureException",
            "{date}: {error}"
        );
    }
    let error = with_date(DATE, "20150831").verify().expect_err("scope");
    assert_eq!(error.code(), "InvalidSignatureException");
    assert!(error.to_string().starts_with("Date in Credential scope"));

    let request = TestRequest::new(
        "GET",
        "/",
        &[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", DATE),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, \
                 SignedHeaders=host;x-amz-date, Signature=00",
            ),
        ],
        "",
    );
    let error = request.verify().expect_err("terminator");
    assert_eq!(error.code(), "InvalidSignatureException");
}

#[test]
fn requests_more_than_fifteen_minutes_off_are_expired() {
    let request = TestRequest::suite(
        "GET",
        "/",
        &[],
        "",
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    let fifteen = Duration::from_secs(15 * 60);
    assert!(request.verify_at(suite_now() + fifteen).is_ok());
    assert!(request.verify_at(suite_now() - fifteen).is_ok());

    let late = request
        .verify_at(suite_now() + fifteen + Duration::from_secs(60))
        .expect_err("expired");
    assert_eq!(late.code(), "InvalidSignatureException");
    assert_eq!(
        late.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z \
         (20150830T125200Z - 15 min.)"
    );

    let early = request
        .verify_at(suite_now() - fifteen - Duration::from_secs(60))
        .expect_err("not yet current");
    assert_eq!(early.code(), "InvalidSignatureException");
    assert_eq!(
        early.to_string(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z \
         (20150830T122000Z + 15 min.)"
    );
}

#[test]
fn content_sha256_header_must_match_the_body() {
    let empty_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let request = TestRequest::suite(
        "GET",
        "/",
        &[("x-amz-content-sha256", empty_hash)],
        "tampered",
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    let error = request.verify().expect_err("hash mismatch");
    assert_eq!(error.code(), "InvalidSignatureException");

    let request = TestRequest::suite(
        "GET",
        "/",
        &[("x-amz-content-sha256", UNSIGNED_PAYLOAD)],
        "",
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    let error = request.verify().expect_err("unsigned payload refused");
    assert_eq!(error.code(), "InvalidSignatureException");

    let request = TestRequest::suite(
        "GET",
        "/",
        &[("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")],
        "",
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    let error = request.verify().expect_err("streaming refused");
    assert_eq!(error.code(), "IncompleteSignatureException");
}

#[test]
fn wrong_service_error_matches_aws() {
    let error = AwsError::from(SigV4Error::wrong_service("ecs"));
    assert_eq!(error.code, "InvalidSignatureException");
    assert_eq!(
        error.message,
        "Credential should be scoped to correct service: 'ecs'. "
    );
}

// ---- Requests signed by the real `aws-sigv4` crate -------------------------------------------

const SDK_AKID: &str = "AKIDBERTHTEST";
const SDK_SECRET: &str = "berth/secret+key";

fn sdk_keys() -> KeyStore {
    KeyStore::new().with_key(SDK_AKID, SDK_SECRET)
}

fn now() -> SystemTime {
    // Whole seconds: SigV4 dates have no fractions.
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn sdk_sign(
    request: &mut http::Request<Vec<u8>>,
    time: SystemTime,
    settings: SigningSettings,
    session_token: Option<&str>,
    service: &str,
) {
    let identity = Credentials::new(
        SDK_AKID,
        SDK_SECRET,
        session_token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-3")
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().expect("ascii header").to_owned(),
            )
        })
        .collect();
    let uri = format!(
        "http://berth.test:4566{}",
        request
            .uri()
            .path_and_query()
            .map_or("/", |target| target.as_str())
    );
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
    instructions.apply_to_request_http1x(request);
}

fn sdk_request(method: &str, target: &str, body: &str) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method(method)
        .uri(target)
        .header("host", "berth.test:4566")
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.ListClusters",
        )
        .body(body.as_bytes().to_vec())
        .expect("request")
}

fn verify_http(
    request: &http::Request<Vec<u8>>,
    keys: &KeyStore,
    now: SystemTime,
) -> Result<Verified, SigV4Error> {
    let signed = SignedRequest {
        method: request.method(),
        uri: request.uri(),
        headers: request.headers(),
        body: request.body(),
    };
    verify(keys, &signed, now)
}

#[test]
fn sdk_signed_requests_verify() {
    let time = now();
    let mut request = sdk_request("POST", "/", "{\"maxResults\":5}");
    sdk_sign(&mut request, time, SigningSettings::default(), None, "ecs");
    assert_eq!(
        verify_http(&request, &sdk_keys(), time),
        Ok(Verified {
            access_key_id: SDK_AKID.to_owned(),
            region: "eu-west-3".to_owned(),
            service: "ecs".to_owned(),
        })
    );
    *request.body_mut() = b"{\"maxResults\":6}".to_vec();
    assert_eq!(
        verify_http(&request, &sdk_keys(), time),
        Err(SigV4Error::SignatureMismatch)
    );
}

#[test]
fn sdk_signed_queries_with_awkward_encoding_verify() {
    let time = now();
    for target in [
        "/ws?b=2&a=x%20y&a=1&c=%2F%3A&empty=&d=%E2%82%AC",
        "/ws?dockerVersion=DockerVersion%3A%2020.10&seqNum=1&clusterArn=arn%3Aaws%3Aecs%3Aus-east-1%3A1%3Acluster%2Fdefault",
        "/some/path/with%20space/and~tilde",
        "/a//b/./c/../d",
        "/ws?plus=a+b",
    ] {
        let mut request = sdk_request("GET", target, "");
        sdk_sign(&mut request, time, SigningSettings::default(), None, "ecs");
        assert!(
            verify_http(&request, &sdk_keys(), time).is_ok(),
            "target {target}"
        );
    }
}

#[test]
fn session_tokens_are_signed_and_may_be_required() {
    let time = now();
    let mut request = sdk_request("POST", "/", "{}");
    sdk_sign(
        &mut request,
        time,
        SigningSettings::default(),
        Some("the-session-token"),
        "ecs",
    );
    assert!(request.headers().contains_key("x-amz-security-token"));
    assert!(verify_http(&request, &sdk_keys(), time).is_ok());

    let mut keys = KeyStore::new();
    keys.insert_with_session_token(SDK_AKID, SDK_SECRET, "the-session-token");
    assert!(verify_http(&request, &keys, time).is_ok());

    let mut keys = KeyStore::new();
    keys.insert_with_session_token(SDK_AKID, SDK_SECRET, "another-token");
    assert_eq!(
        verify_http(&request, &keys, time),
        Err(SigV4Error::UnrecognizedClient)
    );

    // The token is signed: changing it breaks the signature.
    request.headers_mut().insert(
        "x-amz-security-token",
        HeaderValue::from_static("forged-token"),
    );
    assert_eq!(
        verify_http(&request, &sdk_keys(), time),
        Err(SigV4Error::SignatureMismatch)
    );
}

fn presign_settings(expires: u64) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    settings
}

fn presigned_ws(time: SystemTime, expires: u64) -> http::Request<Vec<u8>> {
    let mut request = http::Request::builder()
        .method("GET")
        .uri("/ws?clusterArn=arn%3Aaws%3Aecs%3Aeu-west-3%3A123%3Acluster%2Fdefault&seqNum=1")
        .header("host", "berth.test:4566")
        .body(Vec::new())
        .expect("request");
    sdk_sign(&mut request, time, presign_settings(expires), None, "ecs");
    request
}

#[test]
fn presigned_query_auth_verifies_and_expires() {
    let time = now();
    let request = presigned_ws(time, 300);
    let query = request.uri().query().expect("query");
    assert!(query.contains("X-Amz-Signature="), "{query}");
    assert!(
        request.headers().get("authorization").is_none(),
        "presigned"
    );

    assert!(verify_http(&request, &sdk_keys(), time).is_ok());
    assert!(verify_http(&request, &sdk_keys(), time + Duration::from_secs(300)).is_ok());
    let error =
        verify_http(&request, &sdk_keys(), time + Duration::from_secs(301)).expect_err("expired");
    assert_eq!(error.code(), "InvalidSignatureException");
    assert!(
        error.to_string().starts_with("Signature expired"),
        "{error}"
    );
    let error = verify_http(&request, &sdk_keys(), time - Duration::from_secs(16 * 60))
        .expect_err("not yet current");
    assert!(error.to_string().starts_with("Signature not yet current"));

    // Tampering with a signed query parameter fails.
    let tampered: Uri = request
        .uri()
        .to_string()
        .replace("seqNum=1", "seqNum=2")
        .parse()
        .expect("uri");
    let mut tampered_request = presigned_ws(time, 300);
    *tampered_request.uri_mut() = tampered;
    assert_eq!(
        verify_http(&tampered_request, &sdk_keys(), time),
        Err(SigV4Error::SignatureMismatch)
    );

    // Both mechanisms at once is refused.
    let mut both = presigned_ws(time, 300);
    both.headers_mut().insert(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
    );
    let error = verify_http(&both, &sdk_keys(), time).expect_err("both");
    assert_eq!(error.code(), "IncompleteSignatureException");
}

#[test]
fn presigned_requests_need_every_parameter() {
    let request = TestRequest::new(
        "GET",
        "/ws?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fecs%2Faws4_request",
        &[("host", "h")],
        "",
    );
    let error = request.verify().expect_err("incomplete");
    assert_eq!(error.code(), "IncompleteSignatureException");
    assert!(error.to_string().contains("X-Amz-Signature"), "{error}");

    let request = TestRequest::new(
        "GET",
        "/ws?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fecs%2Faws4_request\
         &X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Expires=604801",
        &[("host", "h")],
        "",
    );
    let error = request.verify().expect_err("too long");
    assert_eq!(error.code(), "IncompleteSignatureException");
}

// ---- Bad input never panics ------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_authorization_headers_never_panic(
        authorization in "[ -~]{0,200}",
        date in "[0-9TZ ]{0,20}",
        target in "/[a-zA-Z0-9%+=&?/._~-]{0,60}",
    ) {
        let request = TestRequest::new(
            "POST",
            "/",
            &[("host", "h"), ("x-amz-date", &date), ("authorization", &authorization)],
            "{}",
        );
        let _ = request.verify();
        if let Ok(uri) = target.parse::<Uri>() {
            let request = TestRequest { uri, ..request };
            let _ = request.verify();
        }
    }

    #[test]
    fn arbitrary_structured_authorization_never_panics(
        credential in "[A-Za-z0-9/_é-]{0,60}",
        signed_headers in "[a-z;:-]{0,40}",
        signature in "[0-9a-fA-Fx]{0,70}",
    ) {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed_headers}, \
             Signature={signature}"
        );
        let mut request = TestRequest::new(
            "POST",
            "/",
            &[("host", "h"), ("x-amz-date", DATE)],
            "{}",
        );
        if let Ok(value) = HeaderValue::from_str(&authorization) {
            request.headers.insert("authorization", value);
        }
        let _ = request.verify();
    }
}

#[test]
fn non_utf8_header_values_do_not_panic() {
    let mut request = TestRequest::suite(
        "GET",
        "/",
        &[],
        "",
        "host;my-header1;x-amz-date",
        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    );
    request.headers.insert(
        "my-header1",
        HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is allowed"),
    );
    assert_eq!(request.verify(), Err(SigV4Error::SignatureMismatch));
    request.headers.insert(
        "authorization",
        HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 \xff").expect("obs-text"),
    );
    assert_eq!(
        request.verify().expect_err("non-ascii").code(),
        "IncompleteSignatureException"
    );
}

#[test]
fn a_bodyless_request_may_sign_unsigned_payload() {
    // Signed by hand as a Go signer with payload hash UNSIGNED-PAYLOAD would.
    let time = now();
    let amz_date = format_amz_date(unix_seconds(time));
    let date = &amz_date[..8];
    let canonical = format!(
        "GET\n/ws\nseqNum=1\nhost:berth.test\nx-amz-date:{amz_date}\n\nhost;x-amz-date\n{UNSIGNED_PAYLOAD}"
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{date}/us-east-1/ecs/aws4_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(SDK_SECRET, date, "us-east-1", "ecs");
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={SDK_AKID}/{date}/us-east-1/ecs/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={signature}"
    );
    let request = TestRequest::new(
        "GET",
        "/ws?seqNum=1",
        &[
            ("host", "berth.test"),
            ("x-amz-date", &amz_date),
            ("authorization", &authorization),
        ],
        "",
    );
    assert!(verify(&sdk_keys(), &request.signed(), time).is_ok());
    // With a body, UNSIGNED-PAYLOAD is not a candidate.
    let request = TestRequest {
        body: b"{}".to_vec(),
        ..request
    };
    assert_eq!(
        verify(&sdk_keys(), &request.signed(), time),
        Err(SigV4Error::SignatureMismatch)
    );
}
