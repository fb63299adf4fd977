//! The members ECS derives at registration: `requiresAttributes` and `compatibilities`.
//!
//! `requiresAttributes` lists the container-instance attributes a task needs, so placement can
//! skip instances whose agent lacks a feature. Berth derives them from the features a definition
//! uses, with the attribute names the ECS agent registers. Each rule below says which feature
//! implies which attribute; the Berth agent must advertise every name in
//! [`CAPABILITY_ATTRIBUTES`] (and `LOGGING_DRIVER_PREFIX` + each log driver it supports) that it
//! implements.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::NetworkMode;

/// Prefix of the per-log-driver capability (`...logging-driver.awslogs`).
pub const LOGGING_DRIVER_PREFIX: &str = "com.amazonaws.ecs.capability.logging-driver.";
/// Prefix of the per-Docker-volume-driver capability (`ecs.capability.docker-plugin.local`).
pub const DOCKER_PLUGIN_PREFIX: &str = "ecs.capability.docker-plugin.";

/// Docker Remote API 1.17: `readonlyRootFilesystem`, `privileged`, ... (the oldest the agent uses).
pub const DOCKER_API_1_17: &str = "com.amazonaws.ecs.capability.docker-remote-api.1.17";
/// Docker Remote API 1.18: explicit `networkMode`, `dockerLabels`, `ulimits`, `logConfiguration`.
pub const DOCKER_API_1_18: &str = "com.amazonaws.ecs.capability.docker-remote-api.1.18";
/// Docker Remote API 1.19: the `awslogs` driver.
pub const DOCKER_API_1_19: &str = "com.amazonaws.ecs.capability.docker-remote-api.1.19";
/// Docker Remote API 1.21: `memoryReservation`.
pub const DOCKER_API_1_21: &str = "com.amazonaws.ecs.capability.docker-remote-api.1.21";
/// Docker Remote API 1.24: container health checks.
pub const DOCKER_API_1_24: &str = "com.amazonaws.ecs.capability.docker-remote-api.1.24";
/// Docker Remote API 1.25: `linuxParameters.initProcessEnabled`.
pub const DOCKER_API_1_25: &str = "com.amazonaws.ecs.capability.docker-remote-api.1.25";
/// `awsvpc`: one network namespace (ENI) per task.
pub const TASK_ENI: &str = "ecs.capability.task-eni";
/// `healthCheck` on a container.
pub const CONTAINER_HEALTH_CHECK: &str = "ecs.capability.container-health-check";
/// `dependsOn`, `startTimeout`, `stopTimeout`.
pub const CONTAINER_ORDERING: &str = "ecs.capability.container-ordering";
/// `taskRoleArn`.
pub const TASK_IAM_ROLE: &str = "com.amazonaws.ecs.capability.task-iam-role";
/// `privileged: true`.
pub const PRIVILEGED_CONTAINER: &str = "com.amazonaws.ecs.capability.privileged-container";
/// `executionRoleArn` with the `awslogs` driver.
pub const EXECUTION_ROLE_AWSLOGS: &str = "ecs.capability.execution-role-awslogs";
/// `executionRoleArn` with an ECR image.
pub const EXECUTION_ROLE_ECR_PULL: &str = "ecs.capability.execution-role-ecr-pull";
/// An ECR image.
pub const ECR_AUTH: &str = "com.amazonaws.ecs.capability.ecr-auth";
/// `repositoryCredentials`.
pub const PRIVATE_REGISTRY_AUTH: &str =
    "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager";
/// `secrets` from Secrets Manager.
pub const SECRETS_ASM: &str = "ecs.capability.secrets.asm.environment-variables";
/// `secrets` from SSM Parameter Store.
pub const SECRETS_SSM: &str = "ecs.capability.secrets.ssm.environment-variables";
/// `environmentFiles`.
pub const ENV_FILES_S3: &str = "ecs.capability.env-files.s3";
/// `efsVolumeConfiguration`.
pub const EFS: &str = "ecs.capability.efs";
/// `efsVolumeConfiguration.authorizationConfig`.
pub const EFS_AUTH: &str = "ecs.capability.efsAuth";
/// `proxyConfiguration`.
pub const APPMESH: &str = "ecs.capability.aws-appmesh";
/// `firelensConfiguration` of type fluentbit / fluentd.
pub const FIRELENS_FLUENTBIT: &str = "ecs.capability.firelens.fluentbit";
pub const FIRELENS_FLUENTD: &str = "ecs.capability.firelens.fluentd";
/// `containerPortRange`.
pub const CONTAINER_PORT_RANGE: &str = "ecs.capability.container-port-range";

/// Every fixed attribute name Berth may put in `requiresAttributes`.
pub const CAPABILITY_ATTRIBUTES: &[&str] = &[
    DOCKER_API_1_17,
    DOCKER_API_1_18,
    DOCKER_API_1_19,
    DOCKER_API_1_21,
    DOCKER_API_1_24,
    DOCKER_API_1_25,
    TASK_ENI,
    CONTAINER_HEALTH_CHECK,
    CONTAINER_ORDERING,
    TASK_IAM_ROLE,
    PRIVILEGED_CONTAINER,
    EXECUTION_ROLE_AWSLOGS,
    EXECUTION_ROLE_ECR_PULL,
    ECR_AUTH,
    PRIVATE_REGISTRY_AUTH,
    SECRETS_ASM,
    SECRETS_SSM,
    ENV_FILES_S3,
    EFS,
    EFS_AUTH,
    APPMESH,
    FIRELENS_FLUENTBIT,
    FIRELENS_FLUENTD,
    CONTAINER_PORT_RANGE,
];

/// The `requiresAttributes` of a normalized task definition, sorted by name.
pub(crate) fn requires_attributes(
    task: &Map<String, Value>,
    explicit_network_mode: Option<NetworkMode>,
    docker_drivers: &[String],
    uses_efs: bool,
    uses_efs_authorization: bool,
) -> Vec<Value> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut add = |name: &str| {
        names.insert(name.to_string());
    };
    if explicit_network_mode.is_some() {
        add(DOCKER_API_1_18);
    }
    if explicit_network_mode == Some(NetworkMode::Awsvpc) {
        add(TASK_ENI);
    }
    let has_execution_role = task.contains_key("executionRoleArn");
    if task.contains_key("taskRoleArn") {
        add(TASK_IAM_ROLE);
    }
    if task.contains_key("proxyConfiguration") {
        add(APPMESH);
    }
    for driver in docker_drivers {
        add(&format!("{DOCKER_PLUGIN_PREFIX}{driver}"));
    }
    if uses_efs {
        add(EFS);
    }
    if uses_efs_authorization {
        add(EFS_AUTH);
    }
    let containers = task
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for container in containers {
        let has = |key: &str| container.get(key).is_some();
        let is_true = |key: &str| container.get(key).and_then(Value::as_bool) == Some(true);
        if has("dockerLabels") || has("ulimits") || has("logConfiguration") {
            add(DOCKER_API_1_18);
        }
        if is_true("readonlyRootFilesystem") {
            add(DOCKER_API_1_17);
        }
        if is_true("privileged") {
            add(PRIVILEGED_CONTAINER);
        }
        if has("memoryReservation") {
            add(DOCKER_API_1_21);
        }
        if has("healthCheck") {
            add(CONTAINER_HEALTH_CHECK);
            add(DOCKER_API_1_24);
        }
        let depends = container
            .get("dependsOn")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
        if depends || has("startTimeout") || has("stopTimeout") {
            add(CONTAINER_ORDERING);
        }
        if container.pointer("/linuxParameters/initProcessEnabled") == Some(&json!(true)) {
            add(DOCKER_API_1_25);
        }
        if let Some(driver) = container
            .pointer("/logConfiguration/logDriver")
            .and_then(Value::as_str)
        {
            add(&format!("{LOGGING_DRIVER_PREFIX}{driver}"));
            if driver == "awslogs" {
                add(DOCKER_API_1_19);
                if has_execution_role {
                    add(EXECUTION_ROLE_AWSLOGS);
                }
            }
        }
        let image = container.get("image").and_then(Value::as_str).unwrap_or("");
        if image.contains(".dkr.ecr.") {
            add(ECR_AUTH);
            if has_execution_role {
                add(EXECUTION_ROLE_ECR_PULL);
            }
        }
        if has("repositoryCredentials") {
            add(PRIVATE_REGISTRY_AUTH);
        }
        let secrets = container
            .get("secrets")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for secret in secrets {
            let from = secret
                .get("valueFrom")
                .and_then(Value::as_str)
                .unwrap_or("");
            if from.contains(":secretsmanager:") {
                add(SECRETS_ASM);
            } else {
                add(SECRETS_SSM);
            }
        }
        if container
            .get("environmentFiles")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
        {
            add(ENV_FILES_S3);
        }
        match container
            .pointer("/firelensConfiguration/type")
            .and_then(Value::as_str)
        {
            Some("fluentbit") => add(FIRELENS_FLUENTBIT),
            Some("fluentd") => add(FIRELENS_FLUENTD),
            _ => {}
        }
        let port_ranges = container
            .get("portMappings")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|p| p.get("containerPortRange").is_some()));
        if port_ranges {
            add(CONTAINER_PORT_RANGE);
        }
    }
    names
        .into_iter()
        .map(|name| json!({ "name": name }))
        .collect()
}

/// `compatibilities`: the launch types this definition can run on. Berth offers EC2-style
/// instances and EXTERNAL ones; FARGATE is reported when the definition would pass Fargate's
/// validation, as ECS reports it. EXTERNAL instances have no `awsvpc`.
pub(crate) fn compatibilities(mode: NetworkMode, fargate_compatible: bool) -> Vec<Value> {
    let launch_types: &[&str] = match (mode, fargate_compatible) {
        (NetworkMode::Awsvpc, true) => &["EC2", "FARGATE"],
        (NetworkMode::Awsvpc, false) => &["EC2"],
        _ => &["EXTERNAL", "EC2"],
    };
    launch_types.iter().map(|t| json!(t)).collect()
}
