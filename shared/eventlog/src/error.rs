//! Errors of the event log.

use berth_events::CodecError;

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to the aggregate first (or it exists when it was
    /// expected not to). The caller reloads and decides again.
    #[error("concurrent change to {subject}")]
    Conflict { subject: String },
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("an atomic batch holds at most {max} events, got {got}")]
    BatchTooLarge { max: usize, got: usize },
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

/// Failures of the log other than appends.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    #[error("malformed event at sequence {sequence}: {reason}")]
    Malformed { sequence: u64, reason: String },
}

pub(crate) fn unavailable(error: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(error.to_string())
}
