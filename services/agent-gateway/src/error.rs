//! The gateway's one error type.

use berth_eventlog::{AppendError, LogError};
use berth_projection::{NotReached, ProjectionError};

/// Why the gateway could not do something. Inside a session these end the session (the agent
/// reconnects and everything is retried); they never reach the agent as a refusal.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The options cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The read model's database failed.
    #[error("read model: {0}")]
    Database(#[from] sqlx::Error),
    /// The projection could not start.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The event log refused or could not take an append.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The event log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The read model did not catch up with the log in time.
    #[error(transparent)]
    Lagging(#[from] NotReached),
}
