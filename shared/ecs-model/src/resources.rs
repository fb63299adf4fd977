//! What a task reserves on a container instance, computed as ECS does.
//!
//! CPU and memory: the task-level value when the definition (or a RunTask override) sets one;
//! otherwise the sum over containers of `cpu`, and of `memoryReservation` falling back to
//! `memory` (ECS subtracts the soft limit when there is one, else the hard limit). The two
//! dimensions are independent: a task may set memory at task level and cpu per container.
//!
//! Ports: each port mapping with a fixed or dynamic host port. In `bridge` mode the host port is
//! the mapping's `hostPort` (0 = dynamic, chosen by the agent); in `host` mode it is the container
//! port. `awsvpc` tasks get their own network namespace, so they reserve no instance ports, and
//! `none` has no mappings. Port ranges (`containerPortRange`) are always dynamic and are not
//! listed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ValidationError;
use crate::json::Obj;
use crate::taskdef::units::{parse_task_cpu, parse_task_memory};
use crate::taskdef::{EPHEMERAL_STORAGE_GIB, NetworkMode, effective_network_mode};

/// RunTask `overrides` may hold at most this many characters of JSON.
pub const MAX_OVERRIDES_LEN: usize = 8192;

/// A port mapping's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// One host port a task needs on its instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortReservation {
    /// The host port; 0 means "any free port", assigned when the container starts.
    pub host_port: u16,
    pub protocol: Protocol,
    pub container_name: String,
    pub container_port: u16,
}

/// The resources a task reserves on the container instance it is placed on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResources {
    pub cpu_units: u32,
    pub memory_mib: u32,
    pub ports: Vec<PortReservation>,
}

/// Computes what a task of the stored definition body `spec` reserves, with the RunTask
/// `overrides` (TaskOverride shape) applied. Values that do not parse are ignored rather than
/// trusted: `spec` comes out of [`crate::validate_register_task_definition`] and overrides should
/// have passed [`validate_task_override`].
pub fn task_resources(spec: &Value, overrides: Option<&Value>) -> TaskResources {
    let override_str = |key: &str| overrides.and_then(|o| o.get(key)).and_then(Value::as_str);
    let task_cpu = override_str("cpu")
        .and_then(|c| parse_task_cpu(c).ok())
        .or_else(|| stored_number(spec, "cpu"));
    let task_memory = override_str("memory")
        .and_then(|m| parse_task_memory(m).ok())
        .or_else(|| stored_number(spec, "memory"));
    let container_overrides = overrides
        .and_then(|o| o.get("containerOverrides"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let containers = spec
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mode = effective_network_mode(spec);

    let mut cpu_sum: u64 = 0;
    let mut memory_sum: u64 = 0;
    let mut ports = Vec::new();
    for container in containers {
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        let container_override = container_overrides
            .iter()
            .rev()
            .find(|o| o.get("name").and_then(Value::as_str) == Some(name));
        let value = |key: &str| -> Option<u64> {
            container_override
                .and_then(|o| o.get(key))
                .and_then(Value::as_u64)
                .or_else(|| container.get(key).and_then(Value::as_u64))
        };
        cpu_sum += value("cpu").unwrap_or(0);
        memory_sum += value("memoryReservation")
            .or_else(|| value("memory"))
            .unwrap_or(0);
        if matches!(mode, NetworkMode::Bridge | NetworkMode::Host) {
            ports.extend(port_reservations(container, name, mode));
        }
    }
    TaskResources {
        cpu_units: task_cpu.unwrap_or_else(|| saturate(cpu_sum)),
        memory_mib: task_memory.unwrap_or_else(|| saturate(memory_sum)),
        ports,
    }
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A stored task-level `cpu`/`memory`: a string of the number.
fn stored_number(spec: &Value, key: &str) -> Option<u32> {
    spec.get(key)?.as_str()?.parse().ok()
}

fn port_reservations(container: &Value, name: &str, mode: NetworkMode) -> Vec<PortReservation> {
    let mappings = container
        .get("portMappings")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    mappings
        .iter()
        .filter_map(|mapping| {
            let container_port = u16::try_from(mapping.get("containerPort")?.as_u64()?).ok()?;
            let host_port = match mode {
                NetworkMode::Host => container_port,
                _ => mapping
                    .get("hostPort")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
            };
            let protocol = match mapping.get("protocol").and_then(Value::as_str) {
                Some("udp") => Protocol::Udp,
                _ => Protocol::Tcp,
            };
            Some(PortReservation {
                host_port,
                protocol,
                container_name: name.to_string(),
                container_port,
            })
        })
        .collect()
}

/// Validates RunTask/StartTask `overrides` against the stored definition body `spec`.
pub fn validate_task_override(overrides: &Value, spec: &Value) -> Result<(), ValidationError> {
    let task = Obj::new(overrides, "overrides")?;
    if overrides.to_string().chars().count() > MAX_OVERRIDES_LEN {
        return Err(ValidationError::invalid_parameter(
            "Container Overrides length must be at most 8192",
        ));
    }
    if let Some(cpu) = task.str("cpu")? {
        parse_task_cpu(cpu)?;
    }
    if let Some(memory) = task.str("memory")? {
        parse_task_memory(memory)?;
    }
    task.str("taskRoleArn")?;
    task.str("executionRoleArn")?;
    if let Some(storage) = task.obj("ephemeralStorage")?
        && !storage
            .int("sizeInGiB")?
            .is_some_and(|s| EPHEMERAL_STORAGE_GIB.contains(&s))
    {
        return Err(ValidationError::invalid_parameter(
            "The ephemeral storage size must be between 21 and 200 GiB.",
        ));
    }
    let containers = spec
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for container_override in task.objs("containerOverrides")? {
        let name = container_override.str("name")?;
        container_override.str_list("command")?;
        for variable in container_override.objs("environment")? {
            variable.str("name")?;
            variable.str("value")?;
        }
        container_override.objs("environmentFiles")?;
        container_override.objs("resourceRequirements")?;
        let cpu = container_override.int("cpu")?;
        let memory = container_override.int("memory")?;
        let reservation = container_override.int("memoryReservation")?;
        let Some(name) = name else {
            if container_override.map.values().any(|v| !v.is_null()) {
                return Err(ValidationError::invalid_parameter(
                    "Container overrides must include the container name.",
                ));
            }
            continue;
        };
        let Some(container) = containers
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        else {
            return Err(ValidationError::invalid_parameter(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        };
        if cpu.is_some_and(|c| c < 0) {
            return Err(ValidationError::invalid_parameter(format!(
                "Invalid 'cpu' override for container '{name}'."
            )));
        }
        for (param, value) in [("memory", memory), ("memoryReservation", reservation)] {
            if value.is_some_and(|m| m < 6) {
                return Err(ValidationError::invalid_parameter(format!(
                    "Invalid '{param}' override for container '{name}'. The value must be at \
                     least 6 MiB."
                )));
            }
        }
        let effective = |value: Option<i64>, key: &str| {
            value.or_else(|| container.get(key).and_then(Value::as_i64))
        };
        if let (Some(memory), Some(reservation)) = (
            effective(memory, "memory"),
            effective(reservation, "memoryReservation"),
        ) && memory < reservation
        {
            return Err(ValidationError::invalid_parameter(format!(
                "Invalid setting for container '{name}'. 'memory' must be greater than or equal \
                 to 'memoryReservation'."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::validate_register_task_definition;
    use serde_json::json;

    fn spec(request: Value) -> Value {
        validate_register_task_definition(&request)
            .unwrap()
            .task_definition
    }

    #[test]
    fn sums_container_values_without_task_level_sizes() {
        let td = spec(json!({
            "family": "web",
            "containerDefinitions": [
                {"name": "app", "image": "nginx", "cpu": 256, "memory": 512, "memoryReservation": 128,
                 "portMappings": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "protocol": "udp"}]},
                {"name": "sidecar", "image": "busybox", "memory": 64}
            ]
        }));
        let resources = task_resources(&td, None);
        assert_eq!(resources.cpu_units, 256);
        assert_eq!(resources.memory_mib, 128 + 64);
        assert_eq!(
            resources.ports,
            vec![
                PortReservation {
                    host_port: 8080,
                    protocol: Protocol::Tcp,
                    container_name: "app".into(),
                    container_port: 80
                },
                PortReservation {
                    host_port: 0,
                    protocol: Protocol::Udp,
                    container_name: "app".into(),
                    container_port: 53
                },
            ]
        );
    }

    #[test]
    fn task_level_sizes_win_and_host_mode_pins_ports() {
        let td = spec(json!({
            "family": "web",
            "networkMode": "host",
            "cpu": "1 vCPU",
            "memory": "2GB",
            "containerDefinitions": [
                {"name": "app", "image": "nginx", "cpu": 128, "portMappings": [{"containerPort": 9000}]}
            ]
        }));
        let resources = task_resources(&td, None);
        assert_eq!((resources.cpu_units, resources.memory_mib), (1024, 2048));
        assert_eq!(resources.ports[0].host_port, 9000);
    }

    #[test]
    fn awsvpc_reserves_no_instance_ports() {
        let td = spec(json!({
            "family": "web",
            "networkMode": "awsvpc",
            "containerDefinitions": [
                {"name": "app", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}]}
            ]
        }));
        assert!(task_resources(&td, None).ports.is_empty());
    }

    #[test]
    fn overrides_apply_per_dimension() {
        let td = spec(json!({
            "family": "web",
            "containerDefinitions": [
                {"name": "app", "image": "nginx", "cpu": 100, "memory": 512},
                {"name": "log", "image": "busybox", "cpu": 10, "memoryReservation": 32}
            ]
        }));
        let overrides = json!({
            "containerOverrides": [
                {"name": "app", "cpu": 300, "memoryReservation": 256},
                {"name": "log", "memory": 64}
            ]
        });
        validate_task_override(&overrides, &td).unwrap();
        let resources = task_resources(&td, Some(&overrides));
        assert_eq!(resources.cpu_units, 310);
        assert_eq!(resources.memory_mib, 256 + 32);

        let task_level = json!({"cpu": "512", "memory": "1GB"});
        validate_task_override(&task_level, &td).unwrap();
        let resources = task_resources(&td, Some(&task_level));
        assert_eq!((resources.cpu_units, resources.memory_mib), (512, 1024));
    }

    #[test]
    fn override_validation() {
        let td = spec(json!({
            "family": "web",
            "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 512}]
        }));
        let err = validate_task_override(&json!({"containerOverrides": [{"name": "nope"}]}), &td)
            .unwrap_err();
        assert_eq!(
            err.message,
            "Override for container named nope is not a container in the TaskDefinition."
        );
        assert!(validate_task_override(&json!({"containerOverrides": [{"cpu": 5}]}), &td).is_err());
        assert!(validate_task_override(&json!({"containerOverrides": [{}]}), &td).is_ok());
        assert!(
            validate_task_override(
                &json!({"containerOverrides": [{"name": "app", "memoryReservation": 1024}]}),
                &td
            )
            .is_err()
        );
        assert!(
            validate_task_override(
                &json!({"containerOverrides": [{"name": "app", "memory": "1"}]}),
                &td
            )
            .is_err()
        );
        assert!(validate_task_override(&json!({"cpu": "lots"}), &td).is_err());
        let huge = json!({"containerOverrides": [{"name": "app", "command": ["x".repeat(9000)]}]});
        let err = validate_task_override(&huge, &td).unwrap_err();
        assert_eq!(
            err.message,
            "Container Overrides length must be at most 8192"
        );
    }

    #[test]
    fn garbage_specs_do_not_panic() {
        for garbage in [
            json!(null),
            json!([]),
            json!({"containerDefinitions": "x"}),
            json!({"containerDefinitions": [{"cpu": -5, "memory": "x", "portMappings": [{"containerPort": 70000}]}]}),
        ] {
            let _ = task_resources(&garbage, Some(&json!({"cpu": 3})));
        }
    }
}
