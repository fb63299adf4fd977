//! Verification of AWS Signature Version 4 on incoming requests.
//!
//! Why: unmodified AWS clients sign every request with SigV4 and nothing else; a gateway that
//! wants real authentication (not "accept anything") must recompute the client's signature from
//! the request as received. Both forms are accepted: the `Authorization` header that the SDKs
//! and the CLI send, and the presigned query string (`X-Amz-Signature` & co.) that a WebSocket
//! upgrade can carry.
//!
//! The canonical request is rebuilt from the headers the client listed in `SignedHeaders`.
//! Where clients legitimately differ in how they canonicalize a URI (botocore and the Rust SDK
//! double-encode the path and re-encode the query, the published test suite encodes the raw path
//! once, Go treats `+` in a query as a space), each such form is tried: they all describe the
//! same request, so accepting any of them costs no security. Comparisons are constant-time.
//!
//! Errors map onto the codes and messages AWS uses (see [`SigV4Error`]).

mod keys;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};

use crate::error::AwsError;

pub use keys::{
    ENV_ACCESS_KEY_ID, ENV_CREDENTIALS_FILE, ENV_SECRET_ACCESS_KEY, KeyStore, KeyStoreError,
};

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of presigned requests (and of `x-amz-content-sha256: UNSIGNED-PAYLOAD`).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far a request's time may be from the server's clock, as at AWS.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest `X-Amz-Expires` AWS accepts: one week.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature \
you provided. Check your AWS Secret Access Key and signing method. Consult the service \
documentation for details.";

type HmacSha256 = Hmac<Sha256>;

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id that signed it.
    pub access_key_id: String,
    /// The region of the credential scope (whatever the client signed for).
    pub region: String,
    /// The service of the credential scope (`ecs`, `application-autoscaling`, ...).
    pub service: String,
}

/// Why a request's signature was not accepted. [`SigV4Error::code`] gives the AWS error code;
/// `Display` gives AWS's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The authorization data is there but malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id (or the session token that must go with it) is unknown.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match.
    #[error("{MISMATCH_MESSAGE}")]
    SignatureMismatch,
    /// The request time is too far from the server's clock, or a presigned request expired.
    #[error("{0}")]
    SignatureExpired(String),
    /// The signature is well-formed but something it claims is wrong: the scope (other
    /// service, date that does not match, bad terminator) or the payload hash.
    #[error("{0}")]
    InvalidSignature(String),
}

impl SigV4Error {
    /// The AWS error code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignatureException",
            SigV4Error::UnrecognizedClient => "UnrecognizedClientException",
            SigV4Error::SignatureMismatch
            | SigV4Error::SignatureExpired(_)
            | SigV4Error::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The error AWS sends when the credential scope names another service.
    pub fn wrong_service(expected: &str) -> Self {
        SigV4Error::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{expected}'. "
        ))
    }
}

impl From<SigV4Error> for AwsError {
    fn from(error: SigV4Error) -> Self {
        AwsError::client(error.code(), error.to_string())
    }
}

/// Verification knobs; [`VerifyOptions::default`] is what AWS does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// How far the request time may be from `now` (15 minutes).
    pub max_skew: Duration,
    /// Accept `x-amz-content-sha256: UNSIGNED-PAYLOAD` on header-signed requests (off: the
    /// body would go unprotected; only S3 allows it at AWS). Presigned requests always use it.
    pub allow_unsigned_payload: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            max_skew: DEFAULT_MAX_SKEW,
            allow_unsigned_payload: false,
        }
    }
}

/// The parts of a request that SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The request target as received (path and query, percent-encoded as on the wire).
    pub uri: &'a Uri,
    /// All headers as received.
    pub headers: &'a HeaderMap,
    /// The whole body (empty for a WebSocket upgrade).
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// The request described by `http` parts and a body.
    pub fn from_parts(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        SignedRequest {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body,
        }
    }
}

/// Verifies a request's SigV4 signature at time `now` with the default options.
pub fn verify(
    keys: &KeyStore,
    request: &SignedRequest<'_>,
    now: SystemTime,
) -> Result<Verified, SigV4Error> {
    verify_with(keys, request, now, &VerifyOptions::default())
}

/// Verifies a request's SigV4 signature at time `now`.
pub fn verify_with(
    keys: &KeyStore,
    request: &SignedRequest<'_>,
    now: SystemTime,
    options: &VerifyOptions,
) -> Result<Verified, SigV4Error> {
    let query = parse_query(request.uri.query().unwrap_or(""));
    let auth = extract_auth(request, &query)?;

    let scope = parse_credential(&auth.credential)?;
    let timestamp = parse_amz_date(&auth.amz_date)?;
    if scope.date != &auth.amz_date[..8] {
        return Err(SigV4Error::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{}' != '{}', from '{}'.",
            scope.date,
            &auth.amz_date[..8],
            auth.amz_date
        )));
    }
    let signed_headers = parse_signed_headers(&auth.signed_headers)?;

    let Some(secret) = keys.secret(scope.access_key_id) else {
        return Err(SigV4Error::UnrecognizedClient);
    };
    if let Some(required) = keys.required_session_token(scope.access_key_id)
        && auth.security_token.as_deref() != Some(required)
    {
        return Err(SigV4Error::UnrecognizedClient);
    }

    check_time(&auth, timestamp, now, options)?;

    let payload_hashes = payload_hashes(request, &auth, options)?;
    let uris = canonical_uris(request.uri.path());
    let queries = canonical_queries(&query, auth.expires.is_some());
    let headers = canonical_headers(request, &signed_headers);

    let Some(provided) = hex::decode(auth.signature.as_bytes())
        .ok()
        .filter(|bytes| bytes.len() == 32)
    else {
        return Err(SigV4Error::SignatureMismatch);
    };

    let signing_key = signing_key(secret, scope.date, scope.region, scope.service);
    let scope_line = format!(
        "{}/{}/{}/aws4_request",
        scope.date, scope.region, scope.service
    );
    let mut first_canonical: Option<Vec<u8>> = None;
    for uri in &uris {
        for query in &queries {
            for payload_hash in &payload_hashes {
                let canonical = canonical_request(
                    request.method.as_str(),
                    uri,
                    query,
                    &headers,
                    &auth.signed_headers,
                    payload_hash,
                );
                let string_to_sign = format!(
                    "{ALGORITHM}\n{}\n{scope_line}\n{}",
                    auth.amz_date,
                    hex::encode(Sha256::digest(&canonical))
                );
                let mut mac = new_mac(&signing_key);
                mac.update(string_to_sign.as_bytes());
                if mac.verify_slice(&provided).is_ok() {
                    return Ok(Verified {
                        access_key_id: scope.access_key_id.to_owned(),
                        region: scope.region.to_owned(),
                        service: scope.service.to_owned(),
                    });
                }
                first_canonical.get_or_insert(canonical);
            }
        }
    }
    if let Some(canonical) = first_canonical {
        tracing::trace!(
            access_key_id = scope.access_key_id,
            canonical_request = %String::from_utf8_lossy(&canonical),
            "SigV4 signature mismatch"
        );
    }
    Err(SigV4Error::SignatureMismatch)
}

/// The signing key of a secret for one day, region and service (the HMAC chain of SigV4).
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Where the signature came from, with every value decoded.
struct AuthInput<'a> {
    credential: Cow<'a, str>,
    signed_headers: Cow<'a, str>,
    signature: Cow<'a, str>,
    amz_date: Cow<'a, str>,
    security_token: Option<Cow<'a, str>>,
    /// `Some` for a presigned request: `X-Amz-Expires` in seconds, if given.
    expires: Option<Option<u64>>,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn extract_auth<'a>(
    request: &SignedRequest<'a>,
    query: &[QueryPair<'a>],
) -> Result<AuthInput<'a>, SigV4Error> {
    let query_value = |name: &str| {
        query
            .iter()
            .find(|pair| pair.decoded_key() == name)
            .map(|pair| pair.decoded_value())
    };
    let presigned = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"]
        .iter()
        .any(|name| query_value(name).is_some());
    let mut authorizations = request.headers.get_all(http::header::AUTHORIZATION).iter();
    let authorization = authorizations.next();
    if authorizations.next().is_some() {
        return Err(SigV4Error::IncompleteSignature(
            "The request must carry exactly one Authorization header.".to_owned(),
        ));
    }

    match (authorization, presigned) {
        (None, false) => Err(SigV4Error::MissingAuthenticationToken),
        (Some(_), true) => Err(SigV4Error::IncompleteSignature(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature \
             query string parameter or the Authorization header should be specified"
                .to_owned(),
        )),
        (Some(value), false) => {
            let value = value.to_str().map_err(|_| {
                SigV4Error::IncompleteSignature(
                    "The Authorization header is not valid ASCII.".to_owned(),
                )
            })?;
            header_auth(request.headers, value)
        }
        (None, true) => presigned_auth(&query_value),
    }
}

fn header_auth<'a>(headers: &'a HeaderMap, value: &'a str) -> Result<AuthInput<'a>, SigV4Error> {
    let trimmed = value.trim();
    let (algorithm, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported authorization algorithm '{algorithm}': only {ALGORITHM} is accepted. \
             Authorization={value}"
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in rest.split(',') {
        let Some((key, val)) = component.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let amz_date = header_str(headers, "x-amz-date").or_else(|| header_str(headers, "date"));

    let mut problems = Vec::new();
    if credential.is_none() {
        problems.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        problems.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        problems.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if amz_date.is_none() {
        problems.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    }
    match (credential, signed_headers, signature, amz_date) {
        (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) => {
            Ok(AuthInput {
                credential: Cow::Borrowed(credential),
                signed_headers: Cow::Borrowed(signed_headers),
                signature: Cow::Borrowed(signature),
                amz_date: Cow::Borrowed(amz_date.trim()),
                security_token: header_str(headers, "x-amz-security-token").map(Cow::Borrowed),
                expires: None,
            })
        }
        _ => Err(SigV4Error::IncompleteSignature(format!(
            "{} Authorization={value}",
            problems.join(" ")
        ))),
    }
}

fn presigned_auth<'a>(
    query_value: &dyn Fn(&str) -> Option<Cow<'a, str>>,
) -> Result<AuthInput<'a>, SigV4Error> {
    let algorithm = query_value("X-Amz-Algorithm");
    match algorithm.as_deref() {
        Some(ALGORITHM) => {}
        Some(other) => {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Unsupported X-Amz-Algorithm '{other}': only {ALGORITHM} is accepted."
            )));
        }
        None => {}
    }
    let mut missing = Vec::new();
    let mut required = |name: &'static str| {
        let value = query_value(name);
        if value.is_none() {
            missing.push(name);
        }
        value
    };
    let algorithm_present = required("X-Amz-Algorithm").is_some();
    let credential = required("X-Amz-Credential");
    let signed_headers = required("X-Amz-SignedHeaders");
    let signature = required("X-Amz-Signature");
    let amz_date = required("X-Amz-Date");
    let (true, Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) = (
        algorithm_present,
        credential,
        signed_headers,
        signature,
        amz_date,
    ) else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "A presigned request requires the query parameters {}.",
            missing.join(", ")
        )));
    };
    let expires = match query_value("X-Amz-Expires") {
        None => None,
        Some(value) => match value.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_PRESIGNED_EXPIRES_SECS => Some(seconds),
            Ok(_) => {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is \
                     {MAX_PRESIGNED_EXPIRES_SECS}"
                )));
            }
            Err(_) => {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "X-Amz-Expires should be a number of seconds, not '{value}'."
                )));
            }
        },
    };
    Ok(AuthInput {
        credential,
        signed_headers,
        signature,
        amz_date,
        security_token: query_value("X-Amz-Security-Token"),
        expires: Some(expires),
    })
}

struct Scope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_credential(credential: &str) -> Result<Scope<'_>, SigV4Error> {
    let mut parts = credential.rsplitn(5, '/');
    let (Some(terminator), Some(service), Some(region), Some(date), Some(access_key_id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential has an empty element: '{credential}'"
        )));
    }
    if date.len() != 8 || !date.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential date must be YYYYMMDD, got '{date}'"
        )));
    }
    if terminator != "aws4_request" {
        return Err(SigV4Error::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             '{terminator}'."
        )));
    }
    Ok(Scope {
        access_key_id,
        date,
        region,
        service,
    })
}

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds.
fn parse_amz_date(value: &str) -> Result<i64, SigV4Error> {
    let invalid = || {
        SigV4Error::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{value}'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
        ))
    };
    let bytes = value.as_bytes();
    if !value.is_ascii() || bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| -> Result<u32, SigV4Error> {
        let digits = &value[range];
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid());
        }
        digits.parse().map_err(|_| invalid())
    };
    let year = i32::try_from(number(0..4)?).map_err(|_| invalid())?;
    let month = u8::try_from(number(4..6)?).map_err(|_| invalid())?;
    let day = u8::try_from(number(6..8)?).map_err(|_| invalid())?;
    let hour = u8::try_from(number(9..11)?).map_err(|_| invalid())?;
    let minute = u8::try_from(number(11..13)?).map_err(|_| invalid())?;
    let second = u8::try_from(number(13..15)?).map_err(|_| invalid())?;
    let month = time::Month::try_from(month).map_err(|_| invalid())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| invalid())?;
    let time = time::Time::from_hms(hour, minute, second).map_err(|_| invalid())?;
    Ok(time::PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp())
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(unix_seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix_seconds) {
        Ok(t) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix_seconds.to_string(),
    }
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn check_time(
    auth: &AuthInput<'_>,
    timestamp: i64,
    now: SystemTime,
    options: &VerifyOptions,
) -> Result<(), SigV4Error> {
    let now = unix_seconds(now);
    let skew = i64::try_from(options.max_skew.as_secs()).unwrap_or(i64::MAX);
    let minutes = options.max_skew.as_secs() / 60;
    if timestamp > now.saturating_add(skew) {
        return Err(SigV4Error::SignatureExpired(format!(
            "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
            auth.amz_date,
            format_amz_date(now.saturating_add(skew)),
            format_amz_date(now),
        )));
    }
    match auth.expires {
        Some(Some(expires)) => {
            let expiry = timestamp.saturating_add(i64::try_from(expires).unwrap_or(i64::MAX));
            if now > expiry {
                return Err(SigV4Error::SignatureExpired(format!(
                    "Signature expired: {} is now earlier than {} ({} + {expires} s.)",
                    format_amz_date(expiry),
                    format_amz_date(now),
                    auth.amz_date,
                )));
            }
        }
        Some(None) | None => {
            if timestamp < now.saturating_sub(skew) {
                return Err(SigV4Error::SignatureExpired(format!(
                    "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
                    auth.amz_date,
                    format_amz_date(now.saturating_sub(skew)),
                    format_amz_date(now),
                )));
            }
        }
    }
    Ok(())
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, SigV4Error> {
    let names: Vec<String> = value
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(String::is_empty) {
        return Err(SigV4Error::IncompleteSignature(format!(
            "SignedHeaders has an empty header name: '{value}'"
        )));
    }
    if !names
        .iter()
        .any(|name| name == "host" || name == ":authority")
    {
        return Err(SigV4Error::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    Ok(names)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn payload_hashes(
    request: &SignedRequest<'_>,
    auth: &AuthInput<'_>,
    options: &VerifyOptions,
) -> Result<Vec<String>, SigV4Error> {
    let presigned = auth.expires.is_some();
    let Some(claimed) = request.headers.get("x-amz-content-sha256") else {
        // A presigned URL signs UNSIGNED-PAYLOAD; so may a signer of a body-less request (a
        // WebSocket upgrade), where there is nothing left unprotected.
        return Ok(if presigned || request.body.is_empty() {
            vec![UNSIGNED_PAYLOAD.to_owned(), sha256_hex(request.body)]
        } else {
            vec![sha256_hex(request.body)]
        });
    };
    let claimed = claimed.to_str().unwrap_or("").trim();
    if claimed == UNSIGNED_PAYLOAD {
        if presigned || options.allow_unsigned_payload {
            return Ok(vec![claimed.to_owned()]);
        }
        return Err(SigV4Error::InvalidSignature(
            "UNSIGNED-PAYLOAD is not accepted: the request body must be signed.".to_owned(),
        ));
    }
    if claimed.len() == 64 && claimed.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        if !claimed.eq_ignore_ascii_case(&sha256_hex(request.body)) {
            return Err(SigV4Error::InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_owned(),
            ));
        }
        return Ok(vec![claimed.to_owned()]);
    }
    Err(SigV4Error::IncompleteSignature(format!(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 hex digest, got '{claimed}'."
    )))
}

/// One `key=value` of a query string, as on the wire.
struct QueryPair<'a> {
    key: &'a str,
    value: &'a str,
}

impl<'a> QueryPair<'a> {
    fn decoded_key(&self) -> Cow<'a, str> {
        percent_decode_str(self.key, false)
    }

    fn decoded_value(&self) -> Cow<'a, str> {
        percent_decode_str(self.value, false)
    }
}

fn parse_query(query: &str) -> Vec<QueryPair<'_>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            QueryPair { key, value }
        })
        .collect()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes leniently: a `%` not followed by two hex digits stays as it is.
fn percent_decode(input: &str, plus_as_space: bool) -> Cow<'_, [u8]> {
    if !(input.contains('%') || plus_as_space && input.contains('+')) {
        return Cow::Borrowed(input.as_bytes());
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let high = bytes.get(index + 1).copied().and_then(hex_value);
            let low = bytes.get(index + 2).copied().and_then(hex_value);
            if let (Some(high), Some(low)) = (high, low) {
                out.push(high << 4 | low);
                index += 3;
                continue;
            }
        }
        out.push(if plus_as_space && byte == b'+' {
            b' '
        } else {
            byte
        });
        index += 1;
    }
    Cow::Owned(out)
}

fn percent_decode_str(input: &str, plus_as_space: bool) -> Cow<'_, str> {
    match percent_decode(input, plus_as_space) {
        Cow::Borrowed(bytes) => String::from_utf8_lossy(bytes),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// SigV4's URI encoding: everything but `A-Za-z0-9-_.~` (and `/` when `keep_slash`) as `%XX`.
fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && byte == b'/')
        {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// RFC 3986 dot-segment removal plus collapsing of empty segments, as botocore does.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !segments.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{first}{}{last}", segments.join("/"))
}

/// The canonical URIs a client may have signed: the wire path encoded again (botocore, the
/// SDKs) and the decoded path encoded once (the published test suite).
fn canonical_uris(path: &str) -> Vec<String> {
    let normalized = normalize_path(path);
    let double = uri_encode(normalized.as_bytes(), true);
    let single = uri_encode(&percent_decode(&normalized, false), true);
    if single == double {
        vec![double]
    } else {
        vec![double, single]
    }
}

/// The canonical query strings a client may have signed: every pair decoded and re-encoded
/// (the SDKs), the same with `+` read as a space (Go), and the pairs as sent (botocore with a
/// query in the URL). For a presigned request `X-Amz-Signature` is left out.
fn canonical_queries(query: &[QueryPair<'_>], presigned: bool) -> Vec<String> {
    let pairs: Vec<&QueryPair<'_>> = query
        .iter()
        .filter(|pair| !(presigned && pair.decoded_key() == "X-Amz-Signature"))
        .collect();
    let join = |mut encoded: Vec<(String, String)>| {
        encoded.sort();
        encoded
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let reencoded = |plus_as_space: bool| {
        join(
            pairs
                .iter()
                .map(|pair| {
                    (
                        uri_encode(&percent_decode(pair.key, plus_as_space), false),
                        uri_encode(&percent_decode(pair.value, plus_as_space), false),
                    )
                })
                .collect(),
        )
    };
    let mut candidates = vec![reencoded(false)];
    if pairs
        .iter()
        .any(|pair| pair.key.contains('+') || pair.value.contains('+'))
    {
        candidates.push(reencoded(true));
    }
    let raw = join(
        pairs
            .iter()
            .map(|pair| (pair.key.to_owned(), pair.value.to_owned()))
            .collect(),
    );
    if !candidates.contains(&raw) {
        candidates.push(raw);
    }
    candidates
}

/// `name:value\n` for each signed header, in the order the client listed them: values of
/// repeated headers joined with `,`, each trimmed with inner whitespace runs collapsed.
fn canonical_headers(request: &SignedRequest<'_>, signed_headers: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values: Vec<&[u8]> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|value| value.as_bytes())
            .collect();
        let authority;
        if values.is_empty()
            && (name == "host" || name == ":authority")
            && let Some(found) = request.uri.authority()
        {
            authority = found.as_str().to_owned();
            values.push(authority.as_bytes());
        }
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            let mut words = value
                .split(|byte| byte.is_ascii_whitespace())
                .filter(|word| !word.is_empty());
            if let Some(word) = words.next() {
                out.extend_from_slice(word);
            }
            for word in words {
                out.push(b' ');
                out.extend_from_slice(word);
            }
        }
        out.push(b'\n');
    }
    out
}

fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &[u8],
    signed_headers: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(headers.len() + 256);
    for part in [method, uri, query] {
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(headers);
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}
