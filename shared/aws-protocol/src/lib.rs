//! The AWS JSON wire protocol for Berth's gateways: SigV4 verification, error shapes, request
//! dispatch helpers.
//!
//! - [`sigv4`]: verifies AWS Signature Version 4 (header and presigned forms) against a
//!   [`sigv4::KeyStore`].
//! - [`error`]: [`AwsError`] and its awsJson rendering (`__type`, `x-amzn-ErrorType`,
//!   `x-amzn-RequestId`).
//! - [`json`]: the `POST /` + `X-Amz-Target` dispatch router ([`json::AwsJsonRouter`]), body
//!   decoding and epoch-seconds timestamps.
//! - [`pagination`]: `nextToken` / `maxResults` for `List*` operations.

pub mod error;
pub mod json;
pub mod pagination;
pub mod sigv4;

pub use error::{AwsError, JsonVersion, WireFormat};
pub use json::{AwsJsonHandler, AwsJsonRouter, Reply, RequestContext, ServiceSpec, decode};
pub use sigv4::{KeyStore, Verified};
