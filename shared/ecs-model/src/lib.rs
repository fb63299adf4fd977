//! ECS wire shapes and the validation ECS applies to them.
//!
//! Everything here is pure: raw request JSON in, a normalized value or a [`ValidationError`]
//! (ECS exception type + message) out. The api-gateway maps errors onto the ECS error shape and
//! stores normalized bodies in the event log; the scheduler uses [`task_resources`] to know what
//! a task reserves.
//!
//! # Error messages
//!
//! Where ECS's wording is publicly observed it is reproduced verbatim, quirks included, because
//! users search for it: "Family can not be blank.", "Family contains invalid characters.",
//! "Container list cannot be empty.", "Container.name|image should not be null or empty.",
//! "Container.name|image contains invalid characters.", "Container names must be unique within a
//! Task Definition.", "Invalid setting for container 'x'. At least one of 'memory' or
//! 'memoryReservation' must be specified.", "Invalid 'cpu' setting for task.", "Invalid
//! 'containerPort' setting for container 'x'.", "When networkMode=awsvpc, the host ports and
//! container ports in port mappings must match.", "Links are not supported when
//! networkMode=awsvpc.", "Unknown volume 'x'.", "Cannot depend on container + 'x' because it does
//! not exist", "A dependency container with SUCCESS or COMPLETE condition cannot be an essential
//! container", the "sum of all container 'cpu'/'memoryReservation' values" messages, the Fargate
//! ones ("Fargate only supports network mode ‘awsvpc’.", "Fargate requires that 'cpu' be defined
//! at the task level.", "No Fargate configuration exists for given values: ...", "Fargate
//! compatible task definitions do not support sourcePath", the pidMode one), "Tag key must not
//! start with aws:", "Override for container named x is not a container in the TaskDefinition.",
//! "Container Overrides length must be at most 8192" and "Invalid revision number. Number: x".
//! Model constraints (enums, lengths, patterns) use AWS's generic "1 validation error detected:
//! ..." wording. The rest follows ECS's "Invalid 'param' setting for container 'name'." pattern
//! with a sentence saying what is wrong. A JSON value of the wrong type is an
//! `InvalidParameterException` naming the member (`containerDefinitions[0].memory`); real ECS
//! answers those with a protocol-level `SerializationException`, which SDKs validate away before
//! sending anyway.

pub mod attributes;
pub mod cluster;
mod error;
mod json;
pub mod resources;
pub mod tags;
pub mod taskdef;

pub use attributes::{
    Attribute, validate_attribute_name, validate_attribute_value, validate_attributes,
};
pub use cluster::{
    ClusterSetting, validate_cluster_configuration, validate_cluster_name,
    validate_cluster_settings,
};
pub use error::{ErrorKind, ValidationError};
pub use resources::{
    PortReservation, Protocol, TaskResources, task_resources, validate_task_override,
};
pub use tags::{Tag, merge_tags, validate_tag_keys, validate_tags};
pub use taskdef::reference::{format_task_definition_arn, parse_task_definition_ref};
pub use taskdef::units::{parse_task_cpu, parse_task_memory};
pub use taskdef::{
    NetworkMode, RegisteredTaskDefinitionSpec, effective_network_mode,
    validate_register_task_definition,
};
