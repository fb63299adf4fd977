//! berth-agent: runs a host's tasks through Docker or as plain processes, as the control plane asks.
//!
//! The agent sits on each host, connects to an agent-gateway over a WebSocket (frames in
//! `berth-agent-protocol`), registers the host's resources and runs what it is told. This crate
//! holds, for now, the runtime layer ([`runtime`]): the drivers that start and stop tasks and
//! report every change. The connection loop and the binary build on it.

pub mod runtime;
