//! What the host offers and says about itself at registration: resources in ECS units and the
//! instance attributes placement constraints match on.

use std::collections::BTreeMap;

use berth_agent_protocol::{DriverKind, RegisterInstance, Resources};
use berth_ecs_model::taskdef::derived;

use crate::config::{AgentConfig, DriverChoice};
use crate::error::AgentError;

/// `ecs.os-type`: always `linux` (the drivers are Linux-only).
pub const OS_TYPE_ATTRIBUTE: &str = "ecs.os-type";
/// `ecs.cpu-architecture`: `x86_64` or `arm64`, as ECS spells them.
pub const CPU_ARCHITECTURE_ATTRIBUTE: &str = "ecs.cpu-architecture";
/// `ecs.availability-zone`, from `--zone`.
pub const AVAILABILITY_ZONE_ATTRIBUTE: &str = "ecs.availability-zone";
/// `ecs.instance-type`: `berth` (there is no EC2 instance type; custom attributes may override it).
pub const INSTANCE_TYPE_ATTRIBUTE: &str = "ecs.instance-type";
/// The host identity ECS shows as `ec2InstanceId` (the hostname, or a simulated `i-...`).
/// `RegisterInstance` has no field for it, so it travels as an attribute; the gateway takes it
/// should take it out of the attributes for the instance's `ec2InstanceId`.
pub const EC2_INSTANCE_ID_ATTRIBUTE: &str = "berth.ec2-instance-id";
/// Set to `true` on simulated agents, so their instances can be told apart (and constrained on).
pub const SIMULATED_ATTRIBUTE: &str = "berth.simulated";

/// The capability attributes (from the model's `CAPABILITY_ATTRIBUTES`) this agent advertises.
/// A task definition using a feature requires the matching attribute, so placement only picks
/// instances whose agent runs that feature. The rule:
///
/// * `docker-remote-api.1.17` to `1.25` state the Engine API level, which is what the ECS agent
///   means by them; the Docker driver speaks 1.41. The process driver runs the same task
///   definitions (entryPoint + command), so it advertises them too: withholding `1.18` alone would
///   make every definition with an explicit `networkMode` unplaceable there.
/// * `task-eni`: `awsvpc` tasks run (as `bridge`, with their ports on the host).
/// * `container-health-check`: both drivers run health checks.
/// * `container-ordering`: `stopTimeout` is honoured and containers start in definition order.
///   `dependsOn` conditions are not carried in the payload yet.
///
/// Not advertised, because nothing implements them: task IAM roles, privileged containers,
/// execution roles, ECR auth, private registries, secrets, env files, EFS, App Mesh, FireLens and
/// container port ranges.
pub const ADVERTISED_CAPABILITIES: &[&str] = &[
    derived::DOCKER_API_1_17,
    derived::DOCKER_API_1_18,
    derived::DOCKER_API_1_19,
    derived::DOCKER_API_1_21,
    derived::DOCKER_API_1_24,
    derived::DOCKER_API_1_25,
    derived::TASK_ENI,
    derived::CONTAINER_HEALTH_CHECK,
    derived::CONTAINER_ORDERING,
];

/// Log drivers advertised as `...logging-driver.<name>`: containers' output is kept in a file per
/// container, which is what `json-file` promises.
pub const ADVERTISED_LOG_DRIVERS: &[&str] = &["json-file"];

/// CPU units of this host: usable cores × 1024. `available_parallelism` honours CPU affinity and
/// cgroup quotas, so an agent in a limited container does not offer the whole machine.
pub fn detect_cpu_units() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores)
        .unwrap_or(u32::MAX / 1024)
        .saturating_mul(1024)
}

/// Total memory in MiB from `/proc/meminfo`.
pub fn detect_memory_mib() -> Result<u64, AgentError> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|error| {
        AgentError::Config(format!(
            "cannot read /proc/meminfo ({error}); pass --memory-mib"
        ))
    })?;
    parse_mem_total_mib(&meminfo).ok_or_else(|| {
        AgentError::Config("no MemTotal in /proc/meminfo; pass --memory-mib".to_string())
    })
}

/// `MemTotal` of a `/proc/meminfo` text, in MiB.
pub fn parse_mem_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value / 1024),
        Some(_) => None,
    }
}

/// The architecture as ECS names it (`x86_64`, `arm64`); others pass through as Rust names them.
pub fn ecs_cpu_architecture(rust_arch: &str) -> &str {
    match rust_arch {
        "aarch64" => "arm64",
        other => other,
    }
}

/// The host name, which ECS would show as the instance's `ec2InstanceId` for a non-EC2 host.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The built-in attributes, then the custom ones over them.
pub fn attributes(config: &AgentConfig) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    let mut set = |name: &str, value: &str| {
        attributes.insert(name.to_string(), value.to_string());
    };
    set(OS_TYPE_ATTRIBUTE, "linux");
    set(
        CPU_ARCHITECTURE_ATTRIBUTE,
        ecs_cpu_architecture(std::env::consts::ARCH),
    );
    set(INSTANCE_TYPE_ATTRIBUTE, "berth");
    if let Some(zone) = &config.zone {
        set(AVAILABILITY_ZONE_ATTRIBUTE, zone);
    }
    // Capabilities have no value in ECS; the map needs one, so it is empty.
    for capability in ADVERTISED_CAPABILITIES {
        set(capability, "");
    }
    for driver in ADVERTISED_LOG_DRIVERS {
        set(&format!("{}{driver}", derived::LOGGING_DRIVER_PREFIX), "");
    }
    let host_id = config.host_id.clone().unwrap_or_else(host_name);
    set(EC2_INSTANCE_ID_ATTRIBUTE, &host_id);
    if config.driver == DriverChoice::Sim {
        set(SIMULATED_ATTRIBUTE, "true");
    }
    attributes.extend(config.attributes.clone());
    attributes
}

/// The wire name of the driver. A simulated agent registers as `process`: the protocol knows two
/// drivers, and a simulated host behaves like one that starts processes instantly
/// ([`SIMULATED_ATTRIBUTE`] tells them apart).
pub fn driver_kind(driver: &DriverChoice) -> DriverKind {
    match driver {
        DriverChoice::Docker { .. } => DriverKind::Docker,
        DriverChoice::Process | DriverChoice::Sim => DriverKind::Process,
    }
}

/// The `RegisterInstance` of this agent, without its instance id (filled in per connection from
/// the identity store). Detects what the configuration leaves open.
pub fn registration(config: &AgentConfig) -> Result<RegisterInstance, AgentError> {
    let memory_mib = match config.memory_mib {
        Some(memory) => memory,
        None => detect_memory_mib()?,
    };
    Ok(RegisterInstance {
        cluster: config.cluster.clone(),
        token: config.token.clone(),
        instance_id: None,
        resources: Resources {
            cpu_units: config.cpu_units.unwrap_or_else(detect_cpu_units),
            memory_mib,
            reserved_tcp_ports: config.reserved_tcp_ports.clone(),
            reserved_udp_ports: config.reserved_udp_ports.clone(),
        },
        attributes: attributes(config),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        driver: driver_kind(&config.driver),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_mib() {
        let meminfo = "MemFree:  1000 kB\nMemTotal:       16303428 kB\nBuffers: 1 kB\n";
        assert_eq!(parse_mem_total_mib(meminfo), Some(15921));
        assert_eq!(parse_mem_total_mib("MemFree: 1 kB\n"), None);
        assert_eq!(parse_mem_total_mib("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn this_host_is_detected() {
        assert!(detect_cpu_units() >= 1024);
        assert_eq!(detect_cpu_units() % 1024, 0);
        assert!(detect_memory_mib().expect("meminfo") > 0);
    }

    #[test]
    fn architectures_use_ecs_names() {
        assert_eq!(ecs_cpu_architecture("x86_64"), "x86_64");
        assert_eq!(ecs_cpu_architecture("aarch64"), "arm64");
    }

    #[test]
    fn advertised_capabilities_are_ones_the_model_derives() {
        for capability in ADVERTISED_CAPABILITIES {
            assert!(
                derived::CAPABILITY_ATTRIBUTES.contains(capability),
                "{capability} is not in CAPABILITY_ATTRIBUTES"
            );
        }
    }

    #[test]
    fn custom_attributes_win_and_overrides_are_used() {
        let mut config = AgentConfig::new("c", "ws://gw:1", "t", DriverChoice::Process, None);
        config.zone = Some("az-1".to_string());
        config.cpu_units = Some(2048);
        config.memory_mib = Some(512);
        config.host_id = Some("i-0abc".to_string());
        config
            .attributes
            .insert(INSTANCE_TYPE_ATTRIBUTE.to_string(), "m5.large".to_string());
        config
            .attributes
            .insert("stack".to_string(), "blue".to_string());
        let register = registration(&config).expect("registration");
        assert_eq!(register.resources.cpu_units, 2048);
        assert_eq!(register.resources.memory_mib, 512);
        assert_eq!(
            register.resources.reserved_tcp_ports,
            [22, 2375, 2376, 51678, 51679]
        );
        let attr = |name: &str| register.attributes.get(name).map(String::as_str);
        assert_eq!(attr(OS_TYPE_ATTRIBUTE), Some("linux"));
        assert_eq!(attr(AVAILABILITY_ZONE_ATTRIBUTE), Some("az-1"));
        assert_eq!(attr(INSTANCE_TYPE_ATTRIBUTE), Some("m5.large"));
        assert_eq!(attr("stack"), Some("blue"));
        assert_eq!(attr(EC2_INSTANCE_ID_ATTRIBUTE), Some("i-0abc"));
        assert_eq!(attr(derived::CONTAINER_HEALTH_CHECK), Some(""));
        assert_eq!(attr(SIMULATED_ATTRIBUTE), None);
        assert_eq!(register.driver, DriverKind::Process);
    }
}
