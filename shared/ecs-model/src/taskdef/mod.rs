//! RegisterTaskDefinition: validation as ECS does it, and the normalized definition body that
//! is stored in the event log and returned by Describe/Register.
//!
//! The gateway owns the members that depend on the log (`taskDefinitionArn`, `revision`,
//! `status`, `registeredAt`, `registeredBy`); everything else in the TaskDefinition shape comes
//! from here, including what ECS derives (`compatibilities`, `requiresAttributes`, container
//! defaults).
//!
//! `networkMode` is stored only when the request set it, as ECS reports it (its examples show no
//! `networkMode` for definitions registered without one); the effective mode is then `bridge`
//! (the model's documented default), which [`effective_network_mode`] returns and which all
//! validation here uses.

mod container;
pub mod derived;
pub mod fargate;
pub mod reference;
pub mod units;
mod volumes;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ValidationError;
use crate::json::{Obj, index, strip_nulls};
use crate::tags::{Tag, validate_tags_at};
use container::{ContainerSummary, TaskContext, validate_container};

pub use derived::{CAPABILITY_ATTRIBUTES, DOCKER_PLUGIN_PREFIX, LOGGING_DRIVER_PREFIX};

/// A task definition holds at most this many containers (ECS service quota).
pub const MAX_CONTAINERS: usize = 10;
/// At most this many placement constraints per task (definition and run time together).
pub const MAX_PLACEMENT_CONSTRAINTS: usize = 10;
/// Longest placement constraint expression.
pub const MAX_CONSTRAINT_EXPRESSION_LEN: usize = 2000;
/// `ephemeralStorage.sizeInGiB` bounds.
pub const EPHEMERAL_STORAGE_GIB: std::ops::RangeInclusive<i64> = 21..=200;

const COMPATIBILITIES: &[&str] = &["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"];
const NETWORK_MODES: &[&str] = &["bridge", "host", "awsvpc", "none"];
const CPU_ARCHITECTURES: &[&str] = &["X86_64", "ARM64"];
const OS_FAMILIES: &[&str] = &[
    "WINDOWS_SERVER_2019_FULL",
    "WINDOWS_SERVER_2019_CORE",
    "WINDOWS_SERVER_2016_FULL",
    "WINDOWS_SERVER_2004_CORE",
    "WINDOWS_SERVER_2022_CORE",
    "WINDOWS_SERVER_2022_FULL",
    "WINDOWS_SERVER_2025_CORE",
    "WINDOWS_SERVER_2025_FULL",
    "WINDOWS_SERVER_20H2_CORE",
    "LINUX",
];

/// The Docker network mode of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Bridge,
    Host,
    Awsvpc,
    None,
}

impl NetworkMode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
            NetworkMode::Awsvpc => "awsvpc",
            NetworkMode::None => "none",
        }
    }

    /// Parses a wire value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "bridge" => Some(NetworkMode::Bridge),
            "host" => Some(NetworkMode::Host),
            "awsvpc" => Some(NetworkMode::Awsvpc),
            "none" => Some(NetworkMode::None),
            _ => None,
        }
    }
}

/// The network mode a stored task definition body runs with: its `networkMode`, else `bridge`.
pub fn effective_network_mode(task_definition: &Value) -> NetworkMode {
    task_definition
        .get("networkMode")
        .and_then(Value::as_str)
        .and_then(NetworkMode::parse)
        .unwrap_or(NetworkMode::Bridge)
}

/// A validated RegisterTaskDefinition request, ready for the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredTaskDefinitionSpec {
    /// The family, also present in `task_definition`.
    pub family: String,
    /// The TaskDefinition shape's members (a JSON object, camelCase), without the ones the
    /// gateway adds (`taskDefinitionArn`, `revision`, `status`, `registeredAt`, `registeredBy`).
    pub task_definition: Value,
    /// The request's `tags`, validated; returned beside `taskDefinition` in the response.
    pub tags: Vec<Tag>,
}

impl RegisteredTaskDefinitionSpec {
    /// The network mode the task runs with.
    pub fn network_mode(&self) -> NetworkMode {
        effective_network_mode(&self.task_definition)
    }
}

/// Validates a raw RegisterTaskDefinition request (camelCase JSON as on the wire) and returns
/// the definition to store.
pub fn validate_register_task_definition(
    request: &Value,
) -> Result<RegisteredTaskDefinitionSpec, ValidationError> {
    let req = Obj::new(request, "")?;

    let family = req.str("family")?.unwrap_or_default();
    if family.is_empty() {
        return Err(ValidationError::client("Family can not be blank."));
    }
    if !crate::cluster::is_resource_name(family) {
        return Err(ValidationError::client(
            "Family contains invalid characters.",
        ));
    }

    let container_values = req.list("containerDefinitions")?.unwrap_or_default();
    if container_values.is_empty() {
        return Err(ValidationError::client("Container list cannot be empty."));
    }
    if container_values.len() > MAX_CONTAINERS {
        return Err(ValidationError::client(format!(
            "Too many containers: a task definition can contain at most {MAX_CONTAINERS} \
             container definitions."
        )));
    }

    let explicit_mode = match req.str("networkMode")? {
        Some(mode) => Some(
            NetworkMode::parse(mode)
                .ok_or_else(|| ValidationError::enum_value("networkMode", mode, NETWORK_MODES))?,
        ),
        None => None,
    };
    let network_mode = explicit_mode.unwrap_or(NetworkMode::Bridge);

    let requires = requires_compatibilities(&req)?;
    let cpu = req.str("cpu")?.map(units::parse_task_cpu).transpose()?;
    let memory = req
        .str("memory")?
        .map(units::parse_task_memory)
        .transpose()?;

    let volumes = volumes::validate_volumes(&req)?;
    let ctx = TaskContext {
        network_mode,
        volume_names: &volumes.names,
    };
    let mut containers: Vec<Value> = Vec::with_capacity(container_values.len());
    let mut summaries: Vec<ContainerSummary> = Vec::with_capacity(container_values.len());
    for (i, value) in container_values.iter().enumerate() {
        let (normalized, summary) =
            validate_container(value, &index("containerDefinitions", i), &ctx)?;
        if summaries.iter().any(|s| s.name == summary.name) {
            return Err(ValidationError::client(
                "Container names must be unique within a Task Definition.",
            ));
        }
        containers.push(normalized);
        summaries.push(summary);
    }
    check_containers_together(&summaries, memory, cpu)?;

    let placement_constraints = placement_constraints(&req)?;
    let mut task_blockers: Vec<String> = volumes.fargate_blockers.clone();
    let pid_mode = enum_member(&req, "pidMode", &["host", "task"])?;
    if let Some(pid_mode) = pid_mode
        && pid_mode != "task"
    {
        task_blockers.push(format!(
            "Tasks using the Fargate launch type do not support pidMode '{pid_mode}'. The \
             supported value for pidMode is 'task'."
        ));
    }
    let ipc_mode = enum_member(&req, "ipcMode", &["host", "task", "none"])?;
    if let Some(ipc_mode) = ipc_mode {
        task_blockers.push(format!(
            "Tasks using the Fargate launch type do not support ipcMode '{ipc_mode}'."
        ));
    }
    let proxy = proxy_configuration(&req, &summaries, network_mode)?;
    inference_accelerators(&req)?;
    ephemeral_storage(&req)?;
    runtime_platform(&req)?;
    req.bool("enableFaultInjection")?;
    req.str("taskRoleArn")?;
    req.str("executionRoleArn")?;

    let fargate_blocker = fargate_blocker(network_mode, cpu, memory, &task_blockers, &summaries);
    check_required_compatibilities(&requires, network_mode, fargate_blocker.as_deref())?;

    let tags = match req.get("tags") {
        Some(tags) => validate_tags_at(tags, "tags")?,
        None => Vec::new(),
    };

    let mut out = Map::new();
    out.insert("family".into(), family.into());
    out.insert("containerDefinitions".into(), Value::Array(containers));
    for key in ["taskRoleArn", "executionRoleArn"] {
        if let Some(text) = req.str(key)? {
            out.insert(key.into(), text.into());
        }
    }
    if let Some(mode) = explicit_mode {
        out.insert("networkMode".into(), mode.as_str().into());
    }
    out.insert("volumes".into(), Value::Array(volumes.normalized.clone()));
    out.insert(
        "placementConstraints".into(),
        Value::Array(placement_constraints),
    );
    if !requires.is_empty() {
        out.insert("requiresCompatibilities".into(), json!(requires));
    }
    if let Some(cpu) = cpu {
        out.insert("cpu".into(), cpu.to_string().into());
    }
    if let Some(memory) = memory {
        out.insert("memory".into(), memory.to_string().into());
    }
    if let Some(pid_mode) = pid_mode {
        out.insert("pidMode".into(), pid_mode.into());
    }
    if let Some(ipc_mode) = ipc_mode {
        out.insert("ipcMode".into(), ipc_mode.into());
    }
    if let Some(proxy) = proxy {
        out.insert("proxyConfiguration".into(), proxy);
    }
    for key in [
        "inferenceAccelerators",
        "ephemeralStorage",
        "runtimePlatform",
        "enableFaultInjection",
    ] {
        if let Some(value) = req.get(key) {
            out.insert(key.into(), strip_nulls(value));
        }
    }
    let requires_attributes = derived::requires_attributes(
        &out,
        explicit_mode,
        &volumes.docker_drivers,
        volumes.uses_efs,
        volumes.uses_efs_authorization,
    );
    out.insert(
        "requiresAttributes".into(),
        Value::Array(requires_attributes),
    );
    out.insert(
        "compatibilities".into(),
        Value::Array(derived::compatibilities(
            network_mode,
            fargate_blocker.is_none(),
        )),
    );

    Ok(RegisteredTaskDefinitionSpec {
        family: family.to_string(),
        task_definition: Value::Object(out),
        tags,
    })
}

/// `requiresCompatibilities`, deduplicated in request order.
fn requires_compatibilities(req: &Obj<'_>) -> Result<Vec<&'static str>, ValidationError> {
    let mut out: Vec<&'static str> = Vec::new();
    for (i, value) in req
        .str_list("requiresCompatibilities")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let Some(known) = COMPATIBILITIES.iter().find(|c| **c == value) else {
            return Err(ValidationError::enum_value(
                &index("requiresCompatibilities", i),
                value,
                COMPATIBILITIES,
            ));
        };
        if !out.contains(known) {
            out.push(known);
        }
    }
    Ok(out)
}

/// Rules that span containers: at least one essential container, dependencies, links and
/// `volumesFrom` naming real containers, unique fixed host ports, and container resources
/// fitting inside task-level cpu and memory.
fn check_containers_together(
    containers: &[ContainerSummary],
    task_memory: Option<u32>,
    task_cpu: Option<u32>,
) -> Result<(), ValidationError> {
    let find = |name: &str| containers.iter().find(|c| c.name == name);
    for container in containers {
        if task_memory.is_none()
            && container.memory.is_none()
            && container.memory_reservation.is_none()
        {
            return Err(ValidationError::client(format!(
                "Invalid setting for container '{}'. At least one of 'memory' or \
                 'memoryReservation' must be specified.",
                container.name
            )));
        }
    }
    if !containers.iter().any(|c| c.essential) {
        return Err(ValidationError::client(
            "Task definition doesn't have any essential container.",
        ));
    }
    for container in containers {
        for (target_name, condition) in &container.depends_on {
            let Some(target) = find(target_name) else {
                return Err(ValidationError::client(format!(
                    "Cannot depend on container + '{target_name}' because it does not exist"
                )));
            };
            if target.name == container.name {
                return Err(ValidationError::client(format!(
                    "Container '{}' can't depend on itself.",
                    container.name
                )));
            }
            match condition.as_str() {
                "SUCCESS" | "COMPLETE" if target.essential => {
                    return Err(ValidationError::client(
                        "A dependency container with SUCCESS or COMPLETE condition cannot be an \
                         essential container",
                    ));
                }
                "HEALTHY" if !target.has_health_check => {
                    return Err(ValidationError::client(format!(
                        "A dependency container with HEALTHY condition must have a health \
                         check: container '{target_name}' has none."
                    )));
                }
                _ => {}
            }
        }
        for link in &container.links {
            if link == &container.name || find(link).is_none() {
                return Err(ValidationError::client(format!(
                    "Invalid 'links' setting for container '{}'. Container '{link}' does not \
                     exist in the task definition.",
                    container.name
                )));
            }
        }
        for source in &container.volumes_from {
            if find(source).is_none() {
                return Err(ValidationError::client(format!(
                    "Invalid 'volumesFrom' setting for container '{}'. Container '{source}' \
                     does not exist in the task definition.",
                    container.name
                )));
            }
        }
    }
    check_dependency_cycles(containers)?;
    let mut host_ports = Vec::new();
    for port in containers.iter().flat_map(|c| &c.host_ports) {
        if host_ports.contains(&port) {
            return Err(ValidationError::client(format!(
                "Host port {}/{} is used by more than one port mapping in the task definition.",
                port.port, port.protocol
            )));
        }
        host_ports.push(port);
    }
    if let Some(task_memory) = task_memory.map(i64::from) {
        for container in containers {
            if container.memory.is_some_and(|m| m > task_memory) {
                return Err(ValidationError::client(format!(
                    "Invalid 'memory' setting for container '{}'. The container 'memory' value \
                     cannot be greater than the value of the task 'memory'.",
                    container.name
                )));
            }
        }
        let reserved: i64 = containers
            .iter()
            .map(|c| c.memory_reservation.or(c.memory).unwrap_or(0))
            .sum();
        if reserved > task_memory {
            return Err(ValidationError::client(
                "The sum of all container 'memoryReservation' values cannot be greater than the \
                 value of the task 'memory'.",
            ));
        }
    }
    if let Some(task_cpu) = task_cpu {
        let total: i64 = containers.iter().map(|c| c.cpu).sum();
        if total > i64::from(task_cpu) {
            return Err(ValidationError::client(
                "The sum of all container 'cpu' values cannot be greater than the value of the \
                 task 'cpu'.",
            ));
        }
    }
    Ok(())
}

/// ECS starts containers in dependency order, which needs the graph to be acyclic.
fn check_dependency_cycles(containers: &[ContainerSummary]) -> Result<(), ValidationError> {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    fn visit(
        i: usize,
        containers: &[ContainerSummary],
        marks: &mut [u8],
    ) -> Result<(), ValidationError> {
        match marks[i] {
            1 => {
                return Err(ValidationError::client(format!(
                    "Container dependencies contain a cycle involving container '{}'.",
                    containers[i].name
                )));
            }
            2 => return Ok(()),
            _ => {}
        }
        marks[i] = 1;
        for (target, _) in &containers[i].depends_on {
            if let Some(j) = containers.iter().position(|c| &c.name == target) {
                visit(j, containers, marks)?;
            }
        }
        marks[i] = 2;
        Ok(())
    }
    let mut marks = vec![0u8; containers.len()];
    (0..containers.len()).try_for_each(|i| visit(i, containers, &mut marks))
}

fn placement_constraints(req: &Obj<'_>) -> Result<Vec<Value>, ValidationError> {
    let constraints = req.objs("placementConstraints")?;
    if constraints.len() > MAX_PLACEMENT_CONSTRAINTS {
        return Err(ValidationError::client(format!(
            "You can specify a maximum of {MAX_PLACEMENT_CONSTRAINTS} placement constraints for \
             each task."
        )));
    }
    constraints
        .iter()
        .map(|constraint| {
            let kind = constraint.str("type")?.unwrap_or_default();
            if kind != "memberOf" {
                return Err(ValidationError::enum_value(
                    &constraint.path("type"),
                    kind,
                    &["memberOf"],
                ));
            }
            let expression = constraint.str("expression")?.unwrap_or_default();
            if expression.trim().is_empty() {
                return Err(ValidationError::client(
                    "A memberOf placement constraint requires an expression.",
                ));
            }
            if expression.chars().count() > MAX_CONSTRAINT_EXPRESSION_LEN {
                return Err(ValidationError::client(format!(
                    "Placement constraint expressions can be at most \
                     {MAX_CONSTRAINT_EXPRESSION_LEN} characters long."
                )));
            }
            Ok(json!({ "type": kind, "expression": expression }))
        })
        .collect()
}

fn enum_member<'a>(
    req: &Obj<'a>,
    key: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, ValidationError> {
    let value = req.str(key)?;
    if let Some(value) = value
        && !allowed.contains(&value)
    {
        return Err(ValidationError::enum_value(key, value, allowed));
    }
    Ok(value)
}

/// `proxyConfiguration` (App Mesh): its container must exist, and it needs `awsvpc`. ECS reports
/// `type` as `APPMESH` when it was left out.
fn proxy_configuration(
    req: &Obj<'_>,
    containers: &[ContainerSummary],
    mode: NetworkMode,
) -> Result<Option<Value>, ValidationError> {
    let Some(proxy) = req.obj("proxyConfiguration")? else {
        return Ok(None);
    };
    let kind = proxy.str("type")?.unwrap_or("APPMESH");
    if kind != "APPMESH" {
        return Err(ValidationError::enum_value(
            &proxy.path("type"),
            kind,
            &["APPMESH"],
        ));
    }
    let container_name = proxy.str("containerName")?.unwrap_or_default();
    if !containers.iter().any(|c| c.name == container_name) {
        return Err(ValidationError::client(format!(
            "The proxy configuration container '{container_name}' does not exist in the task \
             definition."
        )));
    }
    if mode != NetworkMode::Awsvpc {
        return Err(ValidationError::client(
            "Proxy configuration is only supported when networkMode=awsvpc.",
        ));
    }
    let mut properties = Vec::new();
    for property in proxy.objs("properties")? {
        let name = property.str("name")?.unwrap_or_default();
        let value = property.str("value")?.unwrap_or_default();
        properties.push(json!({ "name": name, "value": value }));
    }
    Ok(Some(json!({
        "type": kind,
        "containerName": container_name,
        "properties": properties,
    })))
}

fn inference_accelerators(req: &Obj<'_>) -> Result<(), ValidationError> {
    for accelerator in req.objs("inferenceAccelerators")? {
        for key in ["deviceName", "deviceType"] {
            if accelerator.str(key)?.unwrap_or_default().is_empty() {
                return Err(ValidationError::client(format!(
                    "Inference accelerators require a {key}."
                )));
            }
        }
    }
    Ok(())
}

fn ephemeral_storage(req: &Obj<'_>) -> Result<(), ValidationError> {
    let Some(storage) = req.obj("ephemeralStorage")? else {
        return Ok(());
    };
    let size = storage.int("sizeInGiB")?;
    if !size.is_some_and(|s| EPHEMERAL_STORAGE_GIB.contains(&s)) {
        return Err(ValidationError::client(
            "The ephemeral storage size must be between 21 and 200 GiB.",
        ));
    }
    Ok(())
}

fn runtime_platform(req: &Obj<'_>) -> Result<(), ValidationError> {
    let Some(platform) = req.obj("runtimePlatform")? else {
        return Ok(());
    };
    for (key, allowed) in [
        ("cpuArchitecture", CPU_ARCHITECTURES),
        ("operatingSystemFamily", OS_FAMILIES),
    ] {
        if let Some(value) = platform.str(key)?
            && !allowed.contains(&value)
        {
            return Err(ValidationError::enum_value(
                &platform.path(key),
                value,
                allowed,
            ));
        }
    }
    Ok(())
}

/// Why Fargate could not run this definition, in the order ECS checks (network mode, task size,
/// then features), or `None` when it could.
fn fargate_blocker(
    mode: NetworkMode,
    cpu: Option<u32>,
    memory: Option<u32>,
    task_blockers: &[String],
    containers: &[ContainerSummary],
) -> Option<String> {
    if mode != NetworkMode::Awsvpc {
        return Some("Fargate only supports network mode \u{2018}awsvpc\u{2019}.".into());
    }
    let Some(cpu) = cpu else {
        return Some("Fargate requires that 'cpu' be defined at the task level.".into());
    };
    let Some(memory) = memory else {
        return Some("Fargate requires that 'memory' be defined at the task level.".into());
    };
    if !fargate::is_valid_fargate_size(cpu, memory) {
        return Some(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See \
             the Amazon ECS documentation for the valid values."
        ));
    }
    task_blockers
        .iter()
        .chain(containers.iter().flat_map(|c| &c.fargate_blockers))
        .next()
        .cloned()
}

/// Validates the definition against each launch type it requires.
fn check_required_compatibilities(
    requires: &[&str],
    mode: NetworkMode,
    fargate_blocker: Option<&str>,
) -> Result<(), ValidationError> {
    for launch_type in requires {
        match *launch_type {
            "FARGATE" => {
                if let Some(reason) = fargate_blocker {
                    return Err(ValidationError::client(reason));
                }
            }
            "EXTERNAL" if mode == NetworkMode::Awsvpc => {
                return Err(ValidationError::client(
                    "Task definitions with the EXTERNAL compatibility do not support network \
                     mode 'awsvpc'.",
                ));
            }
            "MANAGED_INSTANCES" => {
                return Err(ValidationError::client(
                    "The MANAGED_INSTANCES launch type is not supported by this cluster \
                     manager. Use EC2 or EXTERNAL.",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn register(request: Value) -> Value {
        validate_register_task_definition(&request)
            .unwrap_or_else(|e| panic!("{e}"))
            .task_definition
    }

    fn reject(request: Value) -> ValidationError {
        validate_register_task_definition(&request).unwrap_err()
    }

    #[test]
    fn fills_container_defaults_like_ecs() {
        let td = register(json!({
            "family": "web",
            "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128,
                "portMappings": [{"containerPort": 80}]}]
        }));
        let container = &td["containerDefinitions"][0];
        assert_eq!(container["cpu"], json!(0));
        assert_eq!(container["essential"], json!(true));
        for key in [
            "environment",
            "mountPoints",
            "volumesFrom",
            "systemControls",
        ] {
            assert_eq!(container[key], json!([]), "{key}");
        }
        assert_eq!(
            container["portMappings"],
            json!([{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}])
        );
        assert_eq!(td["volumes"], json!([]));
        assert_eq!(td["placementConstraints"], json!([]));
        assert!(td.get("requiresCompatibilities").is_none());
        assert!(td.get("cpu").is_none());
    }

    #[test]
    fn awsvpc_and_host_fill_the_host_port() {
        for mode in ["awsvpc", "host"] {
            let td = register(json!({
                "family": "web",
                "networkMode": mode,
                "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128,
                    "portMappings": [{"containerPort": 443, "hostPort": 443}, {"containerPort": 80}]}]
            }));
            assert_eq!(td["networkMode"], json!(mode));
            assert_eq!(
                td["containerDefinitions"][0]["portMappings"][1],
                json!({"containerPort": 80, "hostPort": 80, "protocol": "tcp"})
            );
        }
    }

    #[test]
    fn nulls_and_unknown_members_are_dropped() {
        let td = register(json!({
            "family": "web",
            "taskRoleArn": null,
            "someFutureMember": {"x": 1},
            "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128,
                "hostname": null, "inventedField": true,
                "logConfiguration": {"logDriver": "json-file", "options": null}}]
        }));
        assert!(td.get("taskRoleArn").is_none());
        assert!(td.get("someFutureMember").is_none());
        let container = &td["containerDefinitions"][0];
        assert!(container.get("hostname").is_none());
        assert!(container.get("inventedField").is_none());
        assert_eq!(
            container["logConfiguration"],
            json!({"logDriver": "json-file"})
        );
    }

    #[test]
    fn fargate_compatibility_is_derived_without_being_required() {
        let base = |cpu: &str, memory: &str| {
            json!({
                "family": "web",
                "networkMode": "awsvpc",
                "cpu": cpu,
                "memory": memory,
                "containerDefinitions": [{"name": "app", "image": "nginx"}]
            })
        };
        assert_eq!(
            register(base("512", "1024"))["compatibilities"],
            json!(["EC2", "FARGATE"])
        );
        // 512 CPU with 512 MiB is no Fargate size: still fine for EC2.
        assert_eq!(
            register(base("512", "512"))["compatibilities"],
            json!(["EC2"])
        );
    }

    #[test]
    fn requires_compatibilities_are_deduplicated_and_managed_instances_refused() {
        let td = register(json!({
            "family": "web",
            "requiresCompatibilities": ["EC2", "EC2"],
            "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 64}]
        }));
        assert_eq!(td["requiresCompatibilities"], json!(["EC2"]));
        let err = reject(json!({
            "family": "web",
            "requiresCompatibilities": ["MANAGED_INSTANCES"],
            "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 64}]
        }));
        assert_eq!(err.kind, ErrorKind::ClientException);
    }

    #[test]
    fn proxy_configuration_defaults_its_type() {
        let td = register(json!({
            "family": "mesh",
            "networkMode": "awsvpc",
            "proxyConfiguration": {"containerName": "envoy", "properties": [
                {"name": "ProxyIngressPort", "value": "15000"}]},
            "containerDefinitions": [
                {"name": "app", "image": "app", "memory": 128},
                {"name": "envoy", "image": "envoy", "memory": 128}
            ]
        }));
        assert_eq!(td["proxyConfiguration"]["type"], json!("APPMESH"));
        assert!(
            td["requiresAttributes"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": "ecs.capability.aws-appmesh"}))
        );
    }

    #[test]
    fn port_ranges_are_kept_and_need_bridge_or_awsvpc() {
        let td = register(json!({
            "family": "ranges",
            "containerDefinitions": [{"name": "app", "image": "app", "memory": 128,
                "portMappings": [{"containerPortRange": "8000-8100"}]}]
        }));
        assert_eq!(
            td["containerDefinitions"][0]["portMappings"],
            json!([{"containerPortRange": "8000-8100", "protocol": "tcp"}])
        );
        let err = reject(json!({
            "family": "ranges",
            "networkMode": "host",
            "containerDefinitions": [{"name": "app", "image": "app", "memory": 128,
                "portMappings": [{"containerPortRange": "8000-8100"}]}]
        }));
        assert!(
            err.message
                .starts_with("Invalid 'containerPortRange' setting")
        );
        let err = reject(json!({
            "family": "ranges",
            "containerDefinitions": [{"name": "app", "image": "app", "memory": 128,
                "portMappings": [{"containerPortRange": "9000-8000"}]}]
        }));
        assert_eq!(
            err.message,
            "Invalid 'containerPortRange' setting for container 'app'."
        );
    }

    #[test]
    fn task_memory_replaces_container_memory() {
        let td = register(json!({
            "family": "web",
            "memory": "1GB",
            "containerDefinitions": [{"name": "app", "image": "nginx"}]
        }));
        assert_eq!(td["memory"], json!("1024"));
    }

    #[test]
    fn effective_network_mode_defaults_to_bridge() {
        assert_eq!(effective_network_mode(&json!({})), NetworkMode::Bridge);
        assert_eq!(
            effective_network_mode(&json!({"networkMode": "awsvpc"})),
            NetworkMode::Awsvpc
        );
        assert_eq!(NetworkMode::parse("none"), Some(NetworkMode::None));
        assert_eq!(NetworkMode::parse("nat"), None);
    }
}
