//! The api-gateway: Berth's ECS-compatible front door.
//!
//! Unmodified AWS clients send awsJson1.1 requests here. The gateway verifies their
//! SigV4 signature, validates each command against its read model and ECS's rules,
//! appends the resulting events to the log, and answers queries from its read model
//! ([`read_model::GatewayProjection`]), which it keeps up to date from the log.
//!
//! Recipe: [`ApiGatewayOptions`] -> [`ApiGateway::build`] -> [`ApiGateway::run`].

pub mod arn;
mod commands;
mod error;
mod gateway;
pub mod read_model;
mod render;
mod server;

pub use gateway::{Caller, Gateway};
pub use server::{ApiGateway, ApiGatewayOptions, health_router};
