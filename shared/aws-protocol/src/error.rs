//! AWS-shaped errors and how they go on the wire.
//!
//! Why: botocore reads the error code only from the body's `__type`, the Rust SDK reads the
//! `x-amzn-ErrorType` header first, and both read the request id from `x-amzn-RequestId`. One
//! type, rendered in one place, keeps every Berth service answering in exactly the shape the AWS
//! clients parse (reference section 3), whatever produced the error.

use std::borrow::Cow;
use std::fmt;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderName, StatusCode};
use serde_json::{Map, Value};

/// Response header carrying the request id (botocore and the Rust SDK read it).
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-amzn-requestid");
/// Response header carrying the error code (the Rust SDK reads it before the body).
pub const ERROR_TYPE_HEADER: HeaderName = HeaderName::from_static("x-amzn-errortype");
/// Response header of awsQuery-compatible JSON services: `<Code>;Sender` or `<Code>;Receiver`.
pub const QUERY_ERROR_HEADER: HeaderName = HeaderName::from_static("x-amzn-query-error");

/// The awsJson protocol version a service speaks; it decides the response `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JsonVersion {
    /// awsJson1.0 (`application/x-amz-json-1.0`), e.g. CloudWatch over JSON.
    V1_0,
    /// awsJson1.1 (`application/x-amz-json-1.1`): ECS, Application Auto Scaling, Cloud Map.
    #[default]
    V1_1,
}

impl JsonVersion {
    /// The `Content-Type` of responses in this version.
    pub const fn content_type(self) -> &'static str {
        match self {
            JsonVersion::V1_0 => "application/x-amz-json-1.0",
            JsonVersion::V1_1 => "application/x-amz-json-1.1",
        }
    }
}

/// How a service renders its responses: JSON version, and whether errors also carry the
/// `x-amzn-query-error` header of awsQuery-compatible services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WireFormat {
    /// Which awsJson version (response `Content-Type`).
    pub json_version: JsonVersion,
    /// Emit `x-amzn-query-error: <Code>;Sender|Receiver` on errors (CloudWatch over JSON).
    pub query_compatible: bool,
}

impl WireFormat {
    /// awsJson1.1, the ECS / Application Auto Scaling / Cloud Map format.
    pub const AWS_JSON_1_1: WireFormat = WireFormat {
        json_version: JsonVersion::V1_1,
        query_compatible: false,
    };
    /// Plain awsJson1.0.
    pub const AWS_JSON_1_0: WireFormat = WireFormat {
        json_version: JsonVersion::V1_0,
        query_compatible: false,
    };
    /// awsJson1.0 for an `awsQueryCompatible` service (CloudWatch).
    pub const AWS_JSON_1_0_QUERY_COMPATIBLE: WireFormat = WireFormat {
        json_version: JsonVersion::V1_0,
        query_compatible: true,
    };
}

/// A fresh request id (UUID v4), as AWS puts in `x-amzn-RequestId`.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An error as an AWS client sees it: a code (the error shape's name), a message and an HTTP status.
///
/// Extra members some shapes carry (for example `resourceIds` of ECS `ConflictException`) can
/// be added with [`AwsError::with_field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The error shape's name, e.g. `ClusterNotFoundException`.
    pub code: Cow<'static, str>,
    /// The human-readable message (`message` in the body).
    pub message: String,
    /// 400 for client errors, 500 for `ServerException`.
    pub status: StatusCode,
    /// Extra body members beside `__type` and `message`.
    pub fields: Map<String, Value>,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    /// An error with any code and status.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        status: StatusCode,
    ) -> Self {
        AwsError {
            code: code.into(),
            message: message.into(),
            status,
            fields: Map::new(),
        }
    }

    /// A 400 error with any code (most modeled errors: `ClusterNotFoundException`, ...).
    pub fn client(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, StatusCode::BAD_REQUEST)
    }

    /// Adds a member to the error body (e.g. `resourceIds` of `ConflictException`).
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// ECS `ClientException` (400): the request is wrong for a reason of the caller's.
    pub fn client_exception(message: impl Into<String>) -> Self {
        Self::client("ClientException", message)
    }

    /// ECS `InvalidParameterException` (400).
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::client("InvalidParameterException", message)
    }

    /// `ValidationException` (400): Application Auto Scaling's invalid-input error.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::client("ValidationException", message)
    }

    /// ECS `AccessDeniedException` (400).
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::client("AccessDeniedException", message)
    }

    /// `ThrottlingException` (400; clients retry it by code).
    pub fn throttling(message: impl Into<String>) -> Self {
        Self::client("ThrottlingException", message)
    }

    /// ECS `ServerException` (500, the only fault): Berth itself failed.
    pub fn server_exception(message: impl Into<String>) -> Self {
        Self::new(
            "ServerException",
            message,
            StatusCode::INTERNAL_SERVER_ERROR,
        )
    }

    /// `SerializationException` (400): the body is not the JSON the operation takes.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }

    /// `UnknownOperationException` (400): no such `X-Amz-Target`.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::client("UnknownOperationException", message)
    }

    /// An operation the model has but Berth does not implement.
    ///
    /// Code `UnsupportedFeatureException` (400): ECS models it on many operations, so typed
    /// SDK clients can match it, and a 4xx keeps clients from retrying (they retry 5xx).
    pub fn not_implemented(operation: &str) -> Self {
        Self::client(
            "UnsupportedFeatureException",
            format!("The operation {operation} is not implemented by Berth."),
        )
    }

    /// Whether this is a server fault (5xx).
    pub fn is_fault(&self) -> bool {
        self.status.is_server_error()
    }

    /// The JSON body: `{"__type":"<Code>","message":"...", ...fields}`.
    pub fn body(&self) -> Bytes {
        let mut body = Map::with_capacity(self.fields.len() + 2);
        body.insert("__type".to_owned(), Value::String(self.code.to_string()));
        body.insert("message".to_owned(), Value::String(self.message.clone()));
        for (name, value) in &self.fields {
            if name != "__type" && name != "message" {
                body.insert(name.clone(), value.clone());
            }
        }
        // Serializing a map of JSON values cannot fail.
        Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
    }

    /// The full HTTP response in the given format, with the given request id.
    pub fn to_response(&self, request_id: &str, format: WireFormat) -> Response {
        let mut response = (self.status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.json_version.content_type()),
        );
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
        if let Ok(value) = HeaderValue::from_str(&self.code) {
            headers.insert(ERROR_TYPE_HEADER, value);
        }
        if format.query_compatible {
            let fault = if self.is_fault() {
                "Receiver"
            } else {
                "Sender"
            };
            if let Ok(value) = HeaderValue::from_str(&format!("{};{fault}", self.code)) {
                headers.insert(QUERY_ERROR_HEADER, value);
            }
        }
        response
    }
}

/// awsJson1.1 with a fresh request id; services that know their request id or format use
/// [`AwsError::to_response`].
impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        self.to_response(&new_request_id(), WireFormat::AWS_JSON_1_1)
    }
}

/// A 200 awsJson response with the given body.
pub fn success_response(request_id: &str, format: WireFormat, body: Bytes) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.json_version.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    }

    #[test]
    fn renders_the_aws_json_1_1_shape() {
        let error = AwsError::client("ClusterNotFoundException", "Cluster not found.");
        let response = error.to_response("req-1", WireFormat::AWS_JSON_1_1);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(header(&response, "x-amzn-RequestId"), Some("req-1"));
        assert_eq!(
            header(&response, "x-amzn-ErrorType"),
            Some("ClusterNotFoundException")
        );
        assert_eq!(
            header(&response, "content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert_eq!(header(&response, "x-amzn-query-error"), None);
        let body: Value = serde_json::from_slice(&error.body()).expect("json body");
        assert_eq!(
            body,
            serde_json::json!({"__type": "ClusterNotFoundException", "message": "Cluster not found."})
        );
    }

    #[test]
    fn server_exception_is_the_only_500() {
        assert_eq!(
            AwsError::server_exception("boom").status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        for error in [
            AwsError::client_exception("x"),
            AwsError::invalid_parameter("x"),
            AwsError::serialization("x"),
            AwsError::unknown_operation("x"),
            AwsError::not_implemented("CreateDaemon"),
            AwsError::access_denied("x"),
            AwsError::throttling("x"),
            AwsError::validation("x"),
        ] {
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{error}");
        }
    }

    #[test]
    fn not_implemented_names_the_operation() {
        let error = AwsError::not_implemented("CreateExpressGatewayService");
        assert!(error.message.contains("CreateExpressGatewayService"));
        assert_eq!(error.code, "UnsupportedFeatureException");
    }

    #[test]
    fn query_compatible_adds_the_query_error_header() {
        let client = AwsError::client("ResourceNotFound", "no such alarm")
            .to_response("r", WireFormat::AWS_JSON_1_0_QUERY_COMPATIBLE);
        assert_eq!(
            header(&client, "x-amzn-query-error"),
            Some("ResourceNotFound;Sender")
        );
        assert_eq!(
            header(&client, "content-type"),
            Some("application/x-amz-json-1.0")
        );
        let fault = AwsError::new(
            "InternalServiceError",
            "oops",
            StatusCode::INTERNAL_SERVER_ERROR,
        )
        .to_response("r", WireFormat::AWS_JSON_1_0_QUERY_COMPATIBLE);
        assert_eq!(
            header(&fault, "x-amzn-query-error"),
            Some("InternalServiceError;Receiver")
        );
    }

    #[test]
    fn extra_fields_join_the_body_but_never_replace_type_or_message() {
        let error = AwsError::client("ConflictException", "conflict")
            .with_field("resourceIds", serde_json::json!(["a"]))
            .with_field("__type", "Evil");
        let body: Value = serde_json::from_slice(&error.body()).expect("json body");
        assert_eq!(
            body,
            serde_json::json!({"__type": "ConflictException", "message": "conflict", "resourceIds": ["a"]})
        );
    }

    #[test]
    fn into_response_gives_a_uuid_request_id() {
        let response = AwsError::invalid_parameter("bad").into_response();
        let id = header(&response, "x-amzn-requestid").expect("request id");
        assert!(uuid::Uuid::parse_str(id).is_ok());
    }

    #[test]
    fn display_shows_code_and_message() {
        assert_eq!(
            AwsError::invalid_parameter("bad").to_string(),
            "InvalidParameterException: bad"
        );
    }
}
