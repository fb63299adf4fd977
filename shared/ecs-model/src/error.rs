//! The one error type of this crate.
//!
//! Every rejection carries the ECS exception shape it must be reported as, so the gateway can
//! write `{"__type": kind, "message": message}` without interpreting anything.

use serde::{Deserialize, Serialize};

/// The ECS error shape a validation failure maps onto (both are declared by all 77 operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// What ECS answers for semantically invalid task definitions and most rule violations.
    ClientException,
    /// What ECS answers for malformed parameters (bad enums, lengths, types, tags, ...).
    InvalidParameterException,
}

impl ErrorKind {
    /// The bare shape name, as sent in `__type` and `x-amzn-ErrorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ClientException => "ClientException",
            ErrorKind::InvalidParameterException => "InvalidParameterException",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request ECS would reject, with the exception type and the message ECS uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ValidationError {
    /// The ECS exception shape.
    pub kind: ErrorKind,
    /// The human-readable message, worded as ECS words it where known.
    pub message: String,
}

impl ValidationError {
    /// A `ClientException`.
    pub fn client(message: impl Into<String>) -> Self {
        ValidationError {
            kind: ErrorKind::ClientException,
            message: message.into(),
        }
    }

    /// An `InvalidParameterException`.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ValidationError {
            kind: ErrorKind::InvalidParameterException,
            message: message.into(),
        }
    }

    /// The AWS model-constraint wording ("1 validation error detected: ...") for a value outside
    /// an enum.
    pub(crate) fn enum_value(path: &str, value: &str, allowed: &[&str]) -> Self {
        Self::invalid_parameter(format!(
            "1 validation error detected: Value '{value}' at '{path}' failed to satisfy \
             constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ))
    }

    /// The AWS model-constraint wording for a string or list that is too long.
    pub(crate) fn too_long(path: &str, value: &str, max: usize) -> Self {
        Self::invalid_parameter(format!(
            "1 validation error detected: Value '{value}' at '{path}' failed to satisfy \
             constraint: Member must have length less than or equal to {max}"
        ))
    }

    /// The AWS model-constraint wording for a string or list that is too short.
    pub(crate) fn too_short(path: &str, value: &str, min: usize) -> Self {
        Self::invalid_parameter(format!(
            "1 validation error detected: Value '{value}' at '{path}' failed to satisfy \
             constraint: Member must have length greater than or equal to {min}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_kind_and_message() {
        let err = ValidationError::client("Container list cannot be empty.");
        assert_eq!(
            err.to_string(),
            "ClientException: Container list cannot be empty."
        );
        assert_eq!(err.kind.as_str(), "ClientException");
    }

    #[test]
    fn constraint_messages_follow_the_aws_wording() {
        let err = ValidationError::enum_value("networkMode", "nat", &["bridge", "host"]);
        assert_eq!(err.kind, ErrorKind::InvalidParameterException);
        assert_eq!(
            err.message,
            "1 validation error detected: Value 'nat' at 'networkMode' failed to satisfy \
             constraint: Member must satisfy enum value set: [bridge, host]"
        );
    }
}
