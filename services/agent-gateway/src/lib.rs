//! Agent gateway: holds agent WebSocket sessions, registers container instances and records what
//! agents report.
//!
//! Hosts are the untrusted edge: agents never touch NATS. Each connects to `GET /ws` and speaks
//! the frames of `berth-agent-protocol` (modelled on ECS's ACS). The gateway
//!
//! - admits an agent with a shared token and registers its container instance
//!   (`ContainerInstanceRegistered`, then `AgentConnected`; [`registration`](crate::registration));
//! - keeps it alive with heartbeats and records `AgentDisconnected` when it goes silent or away;
//! - delivers the tasks the scheduler places on the instance, and stop requests, exactly once as
//!   far as the agent can tell: acknowledgements are kept in the read model, so only
//!   unacknowledged payloads are sent again after a reconnect or a gateway restart;
//! - appends what the agent reports (`TaskStateReported`, deduplicated by report number);
//! - reconciles after every reconnect against the agent's list of what really runs.
//!
//! The recipe: [`AgentGatewayOptions`] → [`AgentGateway::build`] → [`AgentGateway::projection`]
//! (for health and read-your-writes) → [`AgentGateway::run`]`(listener, shutdown)`.

mod arn;
mod delivery;
mod error;
mod gateway;
mod link;
mod options;
mod payload;
mod presence;
mod read_model;
mod reconcile;
mod registration;
mod reports;
mod session;
mod sessions;

pub use error::GatewayError;
pub use gateway::AgentGateway;
pub use options::AgentGatewayOptions;
pub use read_model::AgentGatewayProjection;
