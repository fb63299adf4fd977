//! One `ContainerDefinition`: type checks, ECS's per-container rules, and the defaults ECS fills
//! in its response (`cpu` 0, `essential` true, empty lists, port protocols and host ports,
//! health-check timings).
//!
//! Rules that need the whole task (unique names, dependencies, links, memory totals) are checked
//! by the caller from the returned [`ContainerSummary`].

use serde_json::{Map, Value, json};

use super::NetworkMode;
use crate::cluster::is_resource_name;
use crate::error::ValidationError;
use crate::json::{Obj, as_int, index, strip_nulls};

/// Every member of the `ContainerDefinition` shape; anything else is dropped, as AWS ignores
/// unknown members.
const MEMBERS: &[&str] = &[
    "name",
    "image",
    "repositoryCredentials",
    "cpu",
    "memory",
    "memoryReservation",
    "links",
    "portMappings",
    "essential",
    "restartPolicy",
    "entryPoint",
    "command",
    "environment",
    "environmentFiles",
    "mountPoints",
    "volumesFrom",
    "linuxParameters",
    "secrets",
    "dependsOn",
    "startTimeout",
    "stopTimeout",
    "versionConsistency",
    "hostname",
    "user",
    "workingDirectory",
    "disableNetworking",
    "privileged",
    "readonlyRootFilesystem",
    "dnsServers",
    "dnsSearchDomains",
    "extraHosts",
    "dockerSecurityOptions",
    "interactive",
    "pseudoTerminal",
    "dockerLabels",
    "ulimits",
    "logConfiguration",
    "healthCheck",
    "systemControls",
    "resourceRequirements",
    "firelensConfiguration",
    "credentialSpecs",
];

const BOOL_MEMBERS: &[&str] = &[
    "essential",
    "disableNetworking",
    "privileged",
    "readonlyRootFilesystem",
    "interactive",
    "pseudoTerminal",
];
const STRING_MEMBERS: &[&str] = &["hostname", "user", "workingDirectory"];
const STRING_LIST_MEMBERS: &[&str] = &[
    "entryPoint",
    "command",
    "dnsServers",
    "dnsSearchDomains",
    "dockerSecurityOptions",
    "credentialSpecs",
];

/// `LogDriver` enum.
pub(crate) const LOG_DRIVERS: &[&str] = &[
    "json-file",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "awsfirelens",
];
/// Log drivers Fargate supports (the `logDriver` member docs).
const FARGATE_LOG_DRIVERS: &[&str] = &["awslogs", "splunk", "awsfirelens"];
/// `UlimitName` enum.
const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];
/// `ContainerCondition` enum.
const CONDITIONS: &[&str] = &["START", "COMPLETE", "SUCCESS", "HEALTHY"];
/// Linux capabilities `KernelCapabilities` documents as valid.
const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

/// Docker 20.10 refuses containers with less memory than this; ECS documents the same floor.
pub(crate) const MIN_CONTAINER_MEMORY_MIB: i64 = 6;
const MAX_IMAGE_LEN: usize = 255;
const MAX_ENVIRONMENT_FILES: usize = 10;
const MAX_PORT_RANGES: usize = 100;
const MAX_IGNORED_EXIT_CODES: usize = 50;

/// What the task-level checks need to know about the task while a container is validated.
pub(crate) struct TaskContext<'a> {
    pub(crate) network_mode: NetworkMode,
    pub(crate) volume_names: &'a [String],
}

/// One port a container binds on the host (host port 0 = dynamic), for duplicate detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPort {
    pub(crate) port: i64,
    pub(crate) protocol: String,
}

/// The facts about a validated container that the task-level checks use.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerSummary {
    pub(crate) name: String,
    pub(crate) essential: bool,
    pub(crate) has_health_check: bool,
    pub(crate) cpu: i64,
    pub(crate) memory: Option<i64>,
    pub(crate) memory_reservation: Option<i64>,
    /// `(containerName, condition)` of each `dependsOn` entry.
    pub(crate) depends_on: Vec<(String, String)>,
    /// Container names referenced by `links` (the part before `:alias`).
    pub(crate) links: Vec<String>,
    /// `sourceContainer` of each `volumesFrom` entry.
    pub(crate) volumes_from: Vec<String>,
    /// Fixed host ports (non-zero), across all mappings.
    pub(crate) host_ports: Vec<HostPort>,
    /// Why Fargate could not run this container, if it could not.
    pub(crate) fargate_blockers: Vec<String>,
}

/// Validates container definition `i` and returns it normalized, with its summary.
pub(crate) fn validate_container(
    value: &Value,
    path: &str,
    ctx: &TaskContext<'_>,
) -> Result<(Value, ContainerSummary), ValidationError> {
    let def = Obj::new(value, path)?;
    let name = def.str("name")?.unwrap_or_default();
    if name.is_empty() {
        return Err(ValidationError::client(
            "Container.name should not be null or empty.",
        ));
    }
    if !is_resource_name(name) {
        return Err(ValidationError::client(
            "Container.name contains invalid characters.",
        ));
    }
    let image = def.str("image")?.unwrap_or_default();
    validate_image(image)?;

    let mut out = Map::new();
    for key in MEMBERS {
        if let Some(member) = def.get(key) {
            out.insert((*key).to_string(), strip_nulls(member));
        }
    }
    for key in BOOL_MEMBERS {
        def.bool(key)?;
    }
    for key in STRING_MEMBERS {
        def.str(key)?;
    }
    for key in STRING_LIST_MEMBERS {
        def.str_list(key)?;
    }
    def.str_map("dockerLabels")?;

    let mut summary = ContainerSummary {
        name: name.to_string(),
        essential: def.bool("essential")?.unwrap_or(true),
        ..ContainerSummary::default()
    };

    let cpu = def.int("cpu")?.unwrap_or(0);
    if cpu < 0 {
        return Err(invalid_setting("cpu", name));
    }
    summary.cpu = cpu;
    summary.memory = def.int("memory")?;
    summary.memory_reservation = def.int("memoryReservation")?;
    check_memory(name, summary.memory, summary.memory_reservation)?;

    out.insert("cpu".into(), json!(cpu));
    out.insert("essential".into(), json!(summary.essential));
    for key in [
        "environment",
        "mountPoints",
        "volumesFrom",
        "systemControls",
    ] {
        out.entry(key).or_insert_with(|| json!([]));
    }

    let port_mappings = validate_port_mappings(&def, name, ctx, &mut summary)?;
    out.insert("portMappings".into(), Value::Array(port_mappings));
    summary.links = validate_links(&def, name, ctx.network_mode)?;
    validate_environment(&def, name)?;
    validate_environment_files(&def, name)?;
    validate_secrets(&def, "secrets", name)?;
    validate_mount_points(&def, name, ctx.volume_names)?;
    summary.volumes_from = validate_volumes_from(&def, name)?;
    summary.depends_on = validate_depends_on(&def, name)?;
    validate_timeouts(&def, name, &mut summary)?;
    validate_network_only_members(&def, name, ctx.network_mode)?;
    validate_ulimits(&def, name)?;
    validate_log_configuration(&def, name, &mut summary)?;
    if let Some(health_check) = validate_health_check(&def, name)? {
        summary.has_health_check = true;
        out.insert("healthCheck".into(), health_check);
    }
    validate_linux_parameters(&def, name, &mut summary)?;
    validate_small_structures(&def, name)?;
    if def.bool("privileged")? == Some(true) {
        summary.fargate_blockers.push(
            "Fargate compatible task definitions do not support privileged containers".into(),
        );
    }
    if def.get("dockerSecurityOptions").is_some() {
        summary.fargate_blockers.push(
            "Fargate compatible task definitions do not support dockerSecurityOptions".into(),
        );
    }
    Ok((Value::Object(out), summary))
}

fn invalid_setting(param: &str, container: &str) -> ValidationError {
    ValidationError::client(format!(
        "Invalid '{param}' setting for container '{container}'."
    ))
}

fn invalid_setting_because(param: &str, container: &str, detail: &str) -> ValidationError {
    ValidationError::client(format!(
        "Invalid '{param}' setting for container '{container}'. {detail}"
    ))
}

/// `repository-url/image:tag` or `repository-url/image@sha256:<64 hex>`; 255 characters at most
/// before the `@`.
fn validate_image(image: &str) -> Result<(), ValidationError> {
    if image.is_empty() {
        return Err(ValidationError::client(
            "Container.image should not be null or empty.",
        ));
    }
    let (repository, digest) = match image.split_once('@') {
        Some((repository, digest)) => (repository, Some(digest)),
        None => (image, None),
    };
    let invalid = || ValidationError::client("Container.image contains invalid characters.");
    if repository.is_empty()
        || !repository.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.' | b'/' | b'#')
        })
    {
        return Err(invalid());
    }
    if repository.len() > MAX_IMAGE_LEN {
        return Err(ValidationError::client(
            "Container.image must be at most 255 characters long.",
        ));
    }
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").ok_or_else(invalid)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
    }
    Ok(())
}

fn check_memory(
    name: &str,
    memory: Option<i64>,
    reservation: Option<i64>,
) -> Result<(), ValidationError> {
    for (param, value) in [("memory", memory), ("memoryReservation", reservation)] {
        if let Some(value) = value
            && value < MIN_CONTAINER_MEMORY_MIB
        {
            return Err(invalid_setting_because(
                param,
                name,
                "The value must be at least 6 MiB.",
            ));
        }
    }
    if let (Some(memory), Some(reservation)) = (memory, reservation)
        && memory < reservation
    {
        return Err(ValidationError::client(format!(
            "Invalid setting for container '{name}'. 'memory' must be greater than or equal to \
             'memoryReservation'."
        )));
    }
    Ok(())
}

fn validate_port_mappings(
    def: &Obj<'_>,
    name: &str,
    ctx: &TaskContext<'_>,
    summary: &mut ContainerSummary,
) -> Result<Vec<Value>, ValidationError> {
    let mappings = def.objs("portMappings")?;
    if !mappings.is_empty() && ctx.network_mode == NetworkMode::None {
        return Err(ValidationError::client(
            "Port mappings are not supported when networkMode=none.",
        ));
    }
    let mut out = Vec::with_capacity(mappings.len());
    let mut container_ports: Vec<(i64, String)> = Vec::new();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for mapping in &mappings {
        let protocol = mapping.str("protocol")?.unwrap_or("tcp");
        if !matches!(protocol, "tcp" | "udp") {
            return Err(ValidationError::enum_value(
                &mapping.path("protocol"),
                protocol,
                &["tcp", "udp"],
            ));
        }
        let mut normalized = Map::new();
        if let Some(port_name) = mapping.str("name")? {
            let valid = (1..=64).contains(&port_name.len())
                && !port_name.starts_with('-')
                && port_name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-')
                });
            if !valid {
                return Err(invalid_setting_because(
                    "portMappings.name",
                    name,
                    "The name can have up to 64 lowercase letters, numbers, underscores and \
                     hyphens, and can't start with a hyphen.",
                ));
            }
            normalized.insert("name".into(), port_name.into());
        }
        if let Some(app_protocol) = mapping.str("appProtocol")? {
            const APP_PROTOCOLS: &[&str] = &["http", "http2", "grpc"];
            if !APP_PROTOCOLS.contains(&app_protocol) {
                return Err(ValidationError::enum_value(
                    &mapping.path("appProtocol"),
                    app_protocol,
                    APP_PROTOCOLS,
                ));
            }
            normalized.insert("appProtocol".into(), app_protocol.into());
        }
        let host_port = mapping.int("hostPort")?;
        if let Some(range) = mapping.str("containerPortRange")? {
            if !matches!(ctx.network_mode, NetworkMode::Bridge | NetworkMode::Awsvpc) {
                return Err(invalid_setting_because(
                    "containerPortRange",
                    name,
                    "Port ranges are only supported when networkMode is bridge or awsvpc.",
                ));
            }
            if host_port.is_some() || mapping.get("containerPort").is_some() {
                return Err(invalid_setting_because(
                    "containerPortRange",
                    name,
                    "Don't specify containerPort or hostPort together with a containerPortRange.",
                ));
            }
            let (first, last) = parse_port_range(range)
                .ok_or_else(|| invalid_setting("containerPortRange", name))?;
            let overlaps_range = ranges.iter().any(|(a, b)| first <= *b && *a <= last);
            let overlaps_port = container_ports
                .iter()
                .any(|(p, _)| (first..=last).contains(p));
            if overlaps_range || overlaps_port {
                return Err(invalid_setting_because(
                    "containerPortRange",
                    name,
                    "Port ranges can't overlap.",
                ));
            }
            ranges.push((first, last));
            if ranges.len() > MAX_PORT_RANGES {
                return Err(invalid_setting_because(
                    "containerPortRange",
                    name,
                    "You can specify at most 100 port ranges per container.",
                ));
            }
            normalized.insert("containerPortRange".into(), range.into());
            normalized.insert("protocol".into(), protocol.into());
            out.push(Value::Object(normalized));
            continue;
        }
        let container_port = mapping
            .int("containerPort")?
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| invalid_setting("containerPort", name))?;
        if let Some(host_port) = host_port
            && !(0..=65535).contains(&host_port)
        {
            return Err(invalid_setting("hostPort", name));
        }
        let host_port = match ctx.network_mode {
            NetworkMode::Awsvpc | NetworkMode::Host => {
                let host_port = host_port.unwrap_or(container_port);
                if host_port != container_port {
                    return Err(ValidationError::client(format!(
                        "When networkMode={}, the host ports and container ports in port \
                         mappings must match.",
                        ctx.network_mode.as_str()
                    )));
                }
                host_port
            }
            NetworkMode::Bridge | NetworkMode::None => host_port.unwrap_or(0),
        };
        if ranges
            .iter()
            .any(|(a, b)| (*a..=*b).contains(&container_port))
        {
            return Err(invalid_setting_because(
                "containerPort",
                name,
                "A port can only be included in one port mapping per container.",
            ));
        }
        if container_ports
            .iter()
            .any(|(p, proto)| *p == container_port && proto != protocol)
        {
            return Err(invalid_setting_because(
                "containerPort",
                name,
                "The same container port can't be exposed for multiple protocols.",
            ));
        }
        container_ports.push((container_port, protocol.to_string()));
        if host_port != 0 {
            summary.host_ports.push(HostPort {
                port: host_port,
                protocol: protocol.to_string(),
            });
        }
        normalized.insert("containerPort".into(), json!(container_port));
        normalized.insert("hostPort".into(), json!(host_port));
        normalized.insert("protocol".into(), protocol.into());
        out.push(Value::Object(normalized));
    }
    Ok(out)
}

/// `"first-last"` with `1 <= first < last <= 65535`.
fn parse_port_range(text: &str) -> Option<(i64, i64)> {
    let (first, last) = text.split_once('-')?;
    let first: i64 = first.trim().parse().ok()?;
    let last: i64 = last.trim().parse().ok()?;
    ((1..=65535).contains(&first) && (1..=65535).contains(&last) && first < last)
        .then_some((first, last))
}

fn validate_links(
    def: &Obj<'_>,
    name: &str,
    mode: NetworkMode,
) -> Result<Vec<String>, ValidationError> {
    let Some(links) = def.str_list("links")? else {
        return Ok(Vec::new());
    };
    if links.is_empty() {
        return Ok(Vec::new());
    }
    if mode != NetworkMode::Bridge {
        return Err(ValidationError::client(format!(
            "Links are not supported when networkMode={}.",
            mode.as_str()
        )));
    }
    links
        .iter()
        .map(|link| {
            let (target, alias) = link.split_once(':').unwrap_or((link, link));
            if !is_resource_name(target) || !is_resource_name(alias) {
                return Err(invalid_setting("links", name));
            }
            Ok(target.to_string())
        })
        .collect()
}

fn validate_environment(def: &Obj<'_>, name: &str) -> Result<(), ValidationError> {
    for variable in def.objs("environment")? {
        let var_name = variable.str("name")?.unwrap_or_default();
        variable.str("value")?;
        if var_name.is_empty() || var_name.contains('=') || var_name.contains('\0') {
            return Err(invalid_setting_because(
                "environment",
                name,
                "Environment variable names must not be empty or contain '='.",
            ));
        }
    }
    Ok(())
}

fn validate_environment_files(def: &Obj<'_>, name: &str) -> Result<(), ValidationError> {
    let files = def.objs("environmentFiles")?;
    if files.len() > MAX_ENVIRONMENT_FILES {
        return Err(invalid_setting_because(
            "environmentFiles",
            name,
            "You can specify up to ten environment files.",
        ));
    }
    for file in files {
        if file.str("value")?.unwrap_or_default().is_empty() {
            return Err(invalid_setting_because(
                "environmentFiles",
                name,
                "Each environment file needs a value.",
            ));
        }
        let file_type = file.str("type")?.unwrap_or_default();
        if file_type != "s3" {
            return Err(ValidationError::enum_value(
                &file.path("type"),
                file_type,
                &["s3"],
            ));
        }
    }
    Ok(())
}

/// `Secret` lists (container `secrets`, `logConfiguration.secretOptions`).
fn validate_secrets(owner: &Obj<'_>, key: &str, name: &str) -> Result<(), ValidationError> {
    for secret in owner.objs(key)? {
        let secret_name = secret.str("name")?.unwrap_or_default();
        let value_from = secret.str("valueFrom")?.unwrap_or_default();
        if secret_name.is_empty() || value_from.is_empty() {
            return Err(invalid_setting_because(
                key,
                name,
                "Each secret needs a name and a valueFrom.",
            ));
        }
    }
    Ok(())
}

fn validate_mount_points(
    def: &Obj<'_>,
    name: &str,
    volume_names: &[String],
) -> Result<(), ValidationError> {
    for mount in def.objs("mountPoints")? {
        let source = mount.str("sourceVolume")?;
        mount.bool("readOnly")?;
        match source {
            Some(source) if volume_names.iter().any(|v| v == source) => {}
            Some(source) => {
                return Err(ValidationError::client(format!(
                    "Unknown volume '{source}'."
                )));
            }
            None => return Err(ValidationError::client("Unknown volume 'null'.")),
        }
        if mount.str("containerPath")?.unwrap_or_default().is_empty() {
            return Err(invalid_setting_because(
                "mountPoints",
                name,
                "Each mount point needs a containerPath.",
            ));
        }
    }
    Ok(())
}

fn validate_volumes_from(def: &Obj<'_>, name: &str) -> Result<Vec<String>, ValidationError> {
    def.objs("volumesFrom")?
        .iter()
        .map(|from| {
            from.bool("readOnly")?;
            let source = from.str("sourceContainer")?.unwrap_or_default();
            if source.is_empty() || source == name {
                return Err(invalid_setting("volumesFrom", name));
            }
            Ok(source.to_string())
        })
        .collect()
}

fn validate_depends_on(
    def: &Obj<'_>,
    name: &str,
) -> Result<Vec<(String, String)>, ValidationError> {
    def.objs("dependsOn")?
        .iter()
        .map(|dependency| {
            let target = dependency.str("containerName")?.unwrap_or_default();
            if target.is_empty() {
                return Err(invalid_setting_because(
                    "dependsOn",
                    name,
                    "Each dependency needs a containerName.",
                ));
            }
            let condition = dependency.str("condition")?.unwrap_or_default();
            if !CONDITIONS.contains(&condition) {
                return Err(ValidationError::enum_value(
                    &dependency.path("condition"),
                    condition,
                    CONDITIONS,
                ));
            }
            Ok((target.to_string(), condition.to_string()))
        })
        .collect()
}

fn validate_timeouts(
    def: &Obj<'_>,
    name: &str,
    summary: &mut ContainerSummary,
) -> Result<(), ValidationError> {
    for param in ["startTimeout", "stopTimeout"] {
        let Some(seconds) = def.int(param)? else {
            continue;
        };
        if seconds < 0 {
            return Err(invalid_setting(param, name));
        }
        if !(2..=120).contains(&seconds) {
            summary.fargate_blockers.push(format!(
                "Tasks using the Fargate launch type must have a container {param} between 2 \
                 and 120 seconds."
            ));
        }
    }
    Ok(())
}

/// Members Docker cannot honour in some network modes.
fn validate_network_only_members(
    def: &Obj<'_>,
    name: &str,
    mode: NetworkMode,
) -> Result<(), ValidationError> {
    let extra_hosts = def.objs("extraHosts")?;
    for host in &extra_hosts {
        let hostname = host.str("hostname")?.unwrap_or_default();
        let address = host.str("ipAddress")?.unwrap_or_default();
        if hostname.is_empty() || address.is_empty() {
            return Err(invalid_setting_because(
                "extraHosts",
                name,
                "Each entry needs a hostname and an ipAddress.",
            ));
        }
    }
    if mode == NetworkMode::Awsvpc {
        if !extra_hosts.is_empty() {
            return Err(ValidationError::client(
                "extraHosts is not supported on container when networkMode=awsvpc.",
            ));
        }
        if def.str("hostname")?.is_some() {
            return Err(ValidationError::client(
                "hostname is not supported on container when networkMode=awsvpc.",
            ));
        }
    }
    Ok(())
}

fn validate_ulimits(def: &Obj<'_>, name: &str) -> Result<(), ValidationError> {
    for ulimit in def.objs("ulimits")? {
        let limit_name = ulimit.str("name")?.unwrap_or_default();
        if !ULIMIT_NAMES.contains(&limit_name) {
            return Err(ValidationError::enum_value(
                &ulimit.path("name"),
                limit_name,
                ULIMIT_NAMES,
            ));
        }
        let (Some(soft), Some(hard)) = (ulimit.int("softLimit")?, ulimit.int("hardLimit")?) else {
            return Err(invalid_setting_because(
                "ulimits",
                name,
                "Each ulimit needs a softLimit and a hardLimit.",
            ));
        };
        if soft > hard {
            return Err(invalid_setting_because(
                "ulimits",
                name,
                "The softLimit can't be greater than the hardLimit.",
            ));
        }
    }
    Ok(())
}

fn validate_log_configuration(
    def: &Obj<'_>,
    name: &str,
    summary: &mut ContainerSummary,
) -> Result<(), ValidationError> {
    let Some(log) = def.obj("logConfiguration")? else {
        return Ok(());
    };
    let driver = log.str("logDriver")?.unwrap_or_default();
    if !LOG_DRIVERS.contains(&driver) {
        return Err(ValidationError::enum_value(
            &log.path("logDriver"),
            driver,
            LOG_DRIVERS,
        ));
    }
    log.str_map("options")?;
    validate_secrets(&log, "secretOptions", name)?;
    if !FARGATE_LOG_DRIVERS.contains(&driver) {
        summary.fargate_blockers.push(format!(
            "{driver} is not a valid log driver for Fargate. Must be one of \
             [awslogs,splunk,awsfirelens]"
        ));
    }
    Ok(())
}

/// Validates `healthCheck` and returns it with ECS's defaults filled in (interval 30, timeout 5,
/// retries 3). `startPeriod` stays absent when absent: the model documents it as "off" by default.
fn validate_health_check(def: &Obj<'_>, name: &str) -> Result<Option<Value>, ValidationError> {
    let Some(check) = def.obj("healthCheck")? else {
        return Ok(None);
    };
    let command = check.str_list("command")?.unwrap_or_default();
    if command.len() < 2 || !matches!(command[0], "CMD" | "CMD-SHELL") {
        return Err(invalid_setting_because(
            "healthCheck",
            name,
            "The command must start with CMD or CMD-SHELL, followed by what to run.",
        ));
    }
    let mut out = Map::new();
    out.insert("command".into(), json!(command));
    for (key, min, max, default) in [
        ("interval", 5, 300, Some(30)),
        ("timeout", 2, 60, Some(5)),
        ("retries", 1, 10, Some(3)),
        ("startPeriod", 0, 300, None),
    ] {
        let value = check.int(key)?;
        if let Some(value) = value
            && !(min..=max).contains(&value)
        {
            return Err(invalid_setting_because(
                "healthCheck",
                name,
                &format!("'{key}' must be between {min} and {max}."),
            ));
        }
        if let Some(value) = value.or(default) {
            out.insert(key.into(), json!(value));
        }
    }
    Ok(Some(Value::Object(out)))
}

fn validate_linux_parameters(
    def: &Obj<'_>,
    name: &str,
    summary: &mut ContainerSummary,
) -> Result<(), ValidationError> {
    let Some(linux) = def.obj("linuxParameters")? else {
        return Ok(());
    };
    linux.bool("initProcessEnabled")?;
    if let Some(capabilities) = linux.obj("capabilities")? {
        for key in ["add", "drop"] {
            for capability in capabilities.str_list(key)?.unwrap_or_default() {
                let bare = capability.strip_prefix("CAP_").unwrap_or(capability);
                if !CAPABILITIES.contains(&bare) {
                    return Err(invalid_setting_because(
                        "linuxParameters",
                        name,
                        &format!("'{capability}' is not a valid Linux capability."),
                    ));
                }
                if key == "add" && bare != "SYS_PTRACE" {
                    summary.fargate_blockers.push(format!(
                        "Tasks using the Fargate launch type only support adding the SYS_PTRACE \
                         kernel capability, not {capability}."
                    ));
                }
            }
        }
    }
    for device in linux.objs("devices")? {
        if device.str("hostPath")?.unwrap_or_default().is_empty() {
            return Err(invalid_setting_because(
                "linuxParameters",
                name,
                "Each device needs a hostPath.",
            ));
        }
        device.str("containerPath")?;
        for permission in device.str_list("permissions")?.unwrap_or_default() {
            if !matches!(permission, "read" | "write" | "mknod") {
                return Err(ValidationError::enum_value(
                    &device.path("permissions"),
                    permission,
                    &["read", "write", "mknod"],
                ));
            }
        }
        summary
            .fargate_blockers
            .push("Fargate compatible task definitions do not support devices".into());
    }
    for tmpfs in linux.objs("tmpfs")? {
        let path = tmpfs.str("containerPath")?.unwrap_or_default();
        let size = tmpfs.int("size")?.unwrap_or(0);
        tmpfs.str_list("mountOptions")?;
        if path.is_empty() || size <= 0 {
            return Err(invalid_setting_because(
                "linuxParameters",
                name,
                "Each tmpfs mount needs a containerPath and a positive size.",
            ));
        }
    }
    for (key, min, max) in [
        ("sharedMemorySize", 0, i64::MAX),
        ("maxSwap", 0, i64::MAX),
        ("swappiness", 0, 100),
    ] {
        if let Some(value) = linux.int(key)? {
            if !(min..=max).contains(&value) {
                return Err(invalid_setting_because(
                    "linuxParameters",
                    name,
                    &format!("'{key}' is out of range."),
                ));
            }
            summary.fargate_blockers.push(format!(
                "Fargate compatible task definitions do not support {key}"
            ));
        }
    }
    Ok(())
}

/// The remaining structured members: shapes and enums only.
fn validate_small_structures(def: &Obj<'_>, name: &str) -> Result<(), ValidationError> {
    if let Some(credentials) = def.obj("repositoryCredentials")?
        && credentials
            .str("credentialsParameter")?
            .unwrap_or_default()
            .is_empty()
    {
        return Err(invalid_setting_because(
            "repositoryCredentials",
            name,
            "The credentialsParameter is required.",
        ));
    }
    if let Some(policy) = def.obj("restartPolicy")? {
        if policy.bool("enabled")?.is_none() {
            return Err(invalid_setting_because(
                "restartPolicy",
                name,
                "The enabled member is required.",
            ));
        }
        let codes = policy.list("ignoredExitCodes")?.unwrap_or_default();
        for (i, code) in codes.iter().enumerate() {
            as_int(code, &index(&policy.path("ignoredExitCodes"), i))?;
        }
        if codes.len() > MAX_IGNORED_EXIT_CODES {
            return Err(invalid_setting_because(
                "restartPolicy",
                name,
                "You can specify a maximum of 50 container exit codes.",
            ));
        }
        if let Some(period) = policy.int("restartAttemptPeriod")?
            && !(60..=1800).contains(&period)
        {
            return Err(invalid_setting_because(
                "restartPolicy",
                name,
                "'restartAttemptPeriod' must be between 60 and 1800 seconds.",
            ));
        }
    }
    if let Some(consistency) = def.str("versionConsistency")?
        && !matches!(consistency, "enabled" | "disabled")
    {
        return Err(ValidationError::enum_value(
            &def.path("versionConsistency"),
            consistency,
            &["enabled", "disabled"],
        ));
    }
    for control in def.objs("systemControls")? {
        control.str("namespace")?;
        control.str("value")?;
    }
    for requirement in def.objs("resourceRequirements")? {
        const TYPES: &[&str] = &["GPU", "InferenceAccelerator", "NeuronDevice"];
        let kind = requirement.str("type")?.unwrap_or_default();
        if !TYPES.contains(&kind) {
            return Err(ValidationError::enum_value(
                &requirement.path("type"),
                kind,
                TYPES,
            ));
        }
        if requirement.str("value")?.unwrap_or_default().is_empty() {
            return Err(invalid_setting_because(
                "resourceRequirements",
                name,
                "Each resource requirement needs a value.",
            ));
        }
    }
    if let Some(firelens) = def.obj("firelensConfiguration")? {
        let kind = firelens.str("type")?.unwrap_or_default();
        if !matches!(kind, "fluentd" | "fluentbit") {
            return Err(ValidationError::enum_value(
                &firelens.path("type"),
                kind,
                &["fluentd", "fluentbit"],
            ));
        }
        firelens.str_map("options")?;
    }
    if def.str_list("credentialSpecs")?.unwrap_or_default().len() > 1 {
        return Err(invalid_setting_because(
            "credentialSpecs",
            name,
            "The maximum number of ARNs is 1.",
        ));
    }
    Ok(())
}
