//! The agent's one error type. Only what ends the agent is an error: a lost connection, a
//! malformed frame or a task that fails are logged and handled where they happen (reconnect,
//! ignore, report STOPPED), so the agent keeps running.

use std::path::PathBuf;

use crate::runtime::RuntimeError;

/// Why [`crate::run_agent`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration cannot work (bad gateway URL, missing data dir, undetectable memory).
    #[error("configuration: {0}")]
    Config(String),
    /// The gateway refused the registration (wrong token, unknown cluster, deregistered
    /// instance). Retrying cannot fix it, so the agent exits instead of looping.
    #[error("registration refused by the gateway: {reason}")]
    RegistrationRefused {
        /// The gateway's reason.
        reason: String,
    },
    /// The gateway answered the WebSocket upgrade with 401 or 403: like a refused registration,
    /// retrying cannot help.
    #[error("the gateway refused the WebSocket upgrade with HTTP {status}")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The runtime driver could not be set up (Docker unreachable, data dir unusable).
    #[error("runtime driver: {0}")]
    Runtime(#[from] RuntimeError),
    /// A file of the agent's own state could not be read or written at start-up.
    #[error("{path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl AgentError {
    pub(crate) fn state(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        Self::State {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
