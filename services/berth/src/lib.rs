//! The `berth` command and the in-process control plane it runs.
//!
//! [`ControlPlane`] starts every control-plane service as a task in one runtime;
//! each still talks to the others only through NATS JetStream, exactly as the
//! separate binaries of the compose stack do. `berth up` and the end-to-end tests
//! both use it.

pub mod cli;
mod control_plane;
mod credentials;

pub use control_plane::{ControlPlane, ControlPlaneConfig, RunningControlPlane};
pub use credentials::{Credentials, load_agent_token, load_key_store};
