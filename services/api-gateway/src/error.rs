//! The gateway's one error type, mapped onto ECS error shapes at the edge.

use berth_aws_protocol::AwsError;
use tracing::error;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// An answer for the client: validation, not found, conflict...
    #[error("{0}")]
    Client(AwsError),
    #[error("read model: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event log: {0}")]
    Log(String),
    /// The projection did not catch up in time: the write happened, the read is late.
    #[error("{0}")]
    Lagging(#[from] berth_projection::NotReached),
}

pub type ApiResult<T> = Result<T, GatewayError>;

impl From<AwsError> for GatewayError {
    fn from(error: AwsError) -> Self {
        GatewayError::Client(error)
    }
}

impl From<berth_ecs_model::ValidationError> for GatewayError {
    fn from(error: berth_ecs_model::ValidationError) -> Self {
        GatewayError::Client(AwsError::client(error.kind.as_str(), error.message))
    }
}

impl From<berth_eventlog::LogError> for GatewayError {
    fn from(error: berth_eventlog::LogError) -> Self {
        GatewayError::Log(error.to_string())
    }
}

impl From<GatewayError> for AwsError {
    /// Internal failures are logged here, where they are handled, and answered with
    /// a ServerException (500) that hides the details.
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::Client(error) => error,
            internal => {
                error!(error = %internal, "request failed");
                AwsError::server_exception("Berth could not complete the request; try again.")
            }
        }
    }
}

/// ECS's error answers, in one place.
pub mod ecs {
    use berth_aws_protocol::AwsError;

    pub fn cluster_not_found() -> AwsError {
        AwsError::client("ClusterNotFoundException", "Cluster not found.")
    }

    pub fn invalid_parameter(message: impl Into<String>) -> AwsError {
        AwsError::invalid_parameter(message)
    }

    pub fn client(message: impl Into<String>) -> AwsError {
        AwsError::client_exception(message)
    }

    pub fn resource_not_found(message: impl Into<String>) -> AwsError {
        AwsError::client("ResourceNotFoundException", message)
    }
}
