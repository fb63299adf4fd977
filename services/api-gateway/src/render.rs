//! ECS response shapes rendered from read-model rows.

use std::sync::LazyLock;

use berth_events::Tag;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiResult, ecs};
use crate::gateway::{Caller, Gateway};
use crate::read_model::{
    ClusterRow, InstanceRow, TaskDefinitionRow, TaskRow, instance_queries, task_counts,
};

/// Which optional parts DescribeClusters includes (`include`).
#[derive(Debug, Default, Clone)]
pub struct ClusterInclude {
    pub attachments: bool,
    pub configurations: bool,
    pub settings: bool,
    pub statistics: bool,
    pub tags: bool,
}

impl ClusterInclude {
    /// What Create/Update/Delete answers carry: everything the cluster has.
    pub fn all() -> Self {
        Self {
            attachments: true,
            configurations: true,
            settings: true,
            statistics: false,
            tags: true,
        }
    }

    pub fn parse(include: Option<&[String]>) -> ApiResult<Self> {
        let mut parsed = Self::default();
        for value in include.unwrap_or_default() {
            match value.as_str() {
                "ATTACHMENTS" => parsed.attachments = true,
                "CONFIGURATIONS" => parsed.configurations = true,
                "SETTINGS" => parsed.settings = true,
                "STATISTICS" => parsed.statistics = true,
                "TAGS" => parsed.tags = true,
                other => {
                    return Err(ecs::invalid_parameter(format!(
                        "Invalid include value {other}: expected ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS or TAGS."
                    ))
                    .into());
                }
            }
        }
        Ok(parsed)
    }
}

/// Live counts of a cluster, derived from the other tables of the read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterCounts {
    pub registered_container_instances: i64,
    pub running_tasks: i64,
    pub pending_tasks: i64,
    pub active_services: i64,
}

pub async fn cluster_counts(gateway: &Gateway, name: &str) -> ApiResult<ClusterCounts> {
    let registered_container_instances =
        instance_queries::count_registered(gateway.db(), name).await?;
    let (pending_tasks, running_tasks) =
        task_counts::pending_and_running(gateway.tasks_db().await?, name).await?;
    Ok(ClusterCounts {
        registered_container_instances,
        running_tasks,
        pending_tasks,
        active_services: 0,
    })
}

/// DeleteCluster refuses a cluster that still has instances, tasks or services.
pub async fn ensure_cluster_is_empty(gateway: &Gateway, name: &str) -> ApiResult<()> {
    let counts = cluster_counts(gateway, name).await?;
    if counts.registered_container_instances > 0 {
        return Err(berth_aws_protocol::AwsError::client(
            "ClusterContainsContainerInstancesException",
            "The Cluster cannot be deleted while Container Instances are active or draining.",
        )
        .into());
    }
    if counts.running_tasks + counts.pending_tasks > 0 {
        return Err(berth_aws_protocol::AwsError::client(
            "ClusterContainsTasksException",
            "The Cluster cannot be deleted while Tasks are active.",
        )
        .into());
    }
    Ok(())
}

pub async fn cluster(
    gateway: &Gateway,
    caller: &Caller,
    row: &ClusterRow,
    include: &ClusterInclude,
) -> ApiResult<Value> {
    let counts = cluster_counts(gateway, &row.name).await?;
    let mut cluster = json!({
        "clusterArn": caller.arns().cluster(&row.name),
        "clusterName": row.name,
        "status": row.status,
        "registeredContainerInstancesCount": counts.registered_container_instances,
        "runningTasksCount": counts.running_tasks,
        "pendingTasksCount": counts.pending_tasks,
        "activeServicesCount": counts.active_services,
        "statistics": [],
        "tags": [],
        "settings": [],
        "capacityProviders": row.doc.capacity_providers,
        "defaultCapacityProviderStrategy": row.doc.default_capacity_provider_strategy,
    });
    let object = cluster.as_object_mut().expect("a JSON object");
    if include.statistics {
        object.insert(
            "statistics".into(),
            json!([
                {"name": "runningEC2TasksCount", "value": counts.running_tasks.to_string()},
                {"name": "pendingEC2TasksCount", "value": counts.pending_tasks.to_string()},
                {"name": "activeEC2ServiceCount", "value": counts.active_services.to_string()},
                {"name": "runningFargateTasksCount", "value": "0"},
                {"name": "pendingFargateTasksCount", "value": "0"},
                {"name": "activeFargateServiceCount", "value": "0"},
                {"name": "drainingFargateServiceCount", "value": "0"},
            ]),
        );
    }
    if include.tags {
        object.insert("tags".into(), tags(&row.tags));
    }
    if include.settings {
        let settings: Vec<Value> = row
            .doc
            .settings
            .iter()
            .map(|s| json!({"name": s.name, "value": s.value}))
            .collect();
        object.insert("settings".into(), Value::Array(settings));
    }
    if include.configurations {
        if let Some(configuration) = &row.doc.configuration {
            object.insert("configuration".into(), configuration.clone());
        }
        if let Some(defaults) = &row.doc.service_connect_defaults {
            object.insert("serviceConnectDefaults".into(), defaults.clone());
        }
    }
    if include.attachments {
        object.insert("attachments".into(), json!([]));
    }
    Ok(cluster)
}

pub fn tags(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect(),
    )
}

/// A TaskDefinition shape: the stored definition plus what the log knows.
pub fn task_definition(caller: &Caller, row: &TaskDefinitionRow) -> Value {
    let mut object = match row.definition.to_value() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    object.insert(
        "taskDefinitionArn".into(),
        json!(caller.arns().task_definition(&row.family, row.revision)),
    );
    object.insert("family".into(), json!(row.family));
    object.insert("revision".into(), json!(row.revision));
    object.insert("status".into(), json!(row.status));
    object.insert(
        "registeredAt".into(),
        json!(row.registered_at.as_epoch_seconds()),
    );
    if let Some(by) = &row.registered_by {
        object.insert("registeredBy".into(), json!(by));
    }
    if let Some(at) = row.deregistered_at {
        object.insert("deregisteredAt".into(), json!(at.as_epoch_seconds()));
    }
    Value::Object(object)
}

/// A JSON object of values already built, moved in: `json!` would copy each one by
/// serializing it.
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// Adds `nextToken` when there is another page.
pub fn with_next_token(mut response: Value, next_token: Option<String>) -> Value {
    if let (Some(token), Some(object)) = (next_token, response.as_object_mut()) {
        object.insert("nextToken".into(), json!(token));
    }
    response
}

/// What the tasks on one instance use, derived from the tasks table.
#[derive(Debug, Default, Clone)]
pub struct InstanceUsage {
    pub running: i64,
    pub pending: i64,
    pub cpu_units: i64,
    pub memory_mib: i64,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    pub groups: std::collections::BTreeSet<String>,
}

/// Usage per instance id, from the cluster's tasks that are not stopped.
pub fn usage_by_instance(tasks: &[TaskRow]) -> foldhash::HashMap<String, InstanceUsage> {
    let mut usage = foldhash::HashMap::<String, InstanceUsage>::default();
    for task in tasks {
        let Some(instance) = &task.container_instance_id else {
            continue;
        };
        let entry = usage.entry(instance.clone()).or_default();
        if task.last_status == "RUNNING" {
            entry.running += 1;
        } else {
            entry.pending += 1;
        }
        entry.cpu_units += i64::from(task.doc.cpu_units);
        entry.memory_mib += i64::from(task.doc.memory_mib);
        for port in &task.doc.ports {
            match port.protocol.as_str() {
                "udp" => entry.udp_ports.push(port.host_port),
                _ => entry.tcp_ports.push(port.host_port),
            }
        }
        entry.groups.insert(task.group.clone());
    }
    usage
}

fn resources(cpu: i64, memory: i64, tcp: &[u16], udp: &[u16]) -> Value {
    let ports = |ports: &[u16]| -> Vec<String> {
        let mut sorted = ports.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.iter().map(u16::to_string).collect()
    };
    json!([
        {"name": "CPU", "type": "INTEGER", "integerValue": cpu, "doubleValue": 0.0, "longValue": 0},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory, "doubleValue": 0.0, "longValue": 0},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ports(tcp), "doubleValue": 0.0, "longValue": 0, "integerValue": 0},
        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": ports(udp), "doubleValue": 0.0, "longValue": 0, "integerValue": 0},
    ])
}

/// A ContainerInstance shape.
pub fn container_instance(
    caller: &Caller,
    row: &InstanceRow,
    usage: &InstanceUsage,
    include_tags: bool,
) -> Value {
    let registered = &row.doc.resources;
    let reserved_tcp: Vec<u16> = registered
        .reserved_tcp_ports
        .iter()
        .chain(&usage.tcp_ports)
        .copied()
        .collect();
    let reserved_udp: Vec<u16> = registered
        .reserved_udp_ports
        .iter()
        .chain(&usage.udp_ports)
        .copied()
        .collect();
    let attributes: Vec<Value> = row
        .attributes()
        .iter()
        .map(|a| match &a.value {
            Some(value) => json!({"name": a.name, "value": value}),
            None => json!({"name": a.name}),
        })
        .collect();
    let mut instance = json!({
        "containerInstanceArn": caller.arns().container_instance(&row.cluster, &row.id),
        "ec2InstanceId": row.doc.ec2_instance_id,
        "version": row.version,
        "versionInfo": {"agentVersion": row.doc.agent_version, "agentHash": "berth", "dockerVersion": row.doc.driver},
        "registeredResources": resources(
            i64::from(registered.cpu_units),
            i64::from(registered.memory_mib),
            &registered.reserved_tcp_ports,
            &registered.reserved_udp_ports,
        ),
        "remainingResources": resources(
            i64::from(registered.cpu_units) - usage.cpu_units,
            i64::from(registered.memory_mib) - usage.memory_mib,
            &reserved_tcp,
            &reserved_udp,
        ),
        "status": row.status,
        "agentConnected": row.agent_connected,
        "runningTasksCount": usage.running,
        "pendingTasksCount": usage.pending,
        "attributes": attributes,
        "registeredAt": row.doc.registered_at as f64 / 1000.0,
        "attachments": [],
        "tags": [],
    });
    if include_tags {
        instance["tags"] = tags(&row.doc.tags);
    }
    instance
}

/// A Task shape, serialized straight from the row: RunTask answers with up to ten of them,
/// and a `serde_json::Value` tree costs an allocation per key and value (that was a tenth
/// of every allocation in the tasks bench). Borrowed where the row holds the text.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView<'a> {
    task_arn: String,
    cluster_arn: String,
    task_definition_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_instance_arn: Option<String>,
    last_status: &'a str,
    desired_status: &'a str,
    cpu: String,
    memory: String,
    version: u64,
    connectivity: &'static str,
    created_at: f64,
    group: &'a str,
    launch_type: &'a str,
    attachments: [(); 0],
    enable_execute_command: bool,
    health_status: &'a str,
    tags: Value,
    overrides: &'a Value,
    containers: Vec<ContainerView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connectivity_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopping_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_stopped_at: Option<f64>,
}

/// A Container shape, within [`TaskView`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerView<'a> {
    container_arn: String,
    task_arn: String,
    name: &'a str,
    image: &'a str,
    last_status: &'a str,
    network_interfaces: [(); 0],
    health_status: &'a str,
    network_bindings: Vec<BindingView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_reservation: Option<String>,
}

/// A NetworkBinding shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BindingView<'a> {
    #[serde(rename = "bindIP")]
    bind_ip: &'a str,
    container_port: u16,
    host_port: u16,
    protocol: &'a str,
}

/// What a task without overrides shows, as ECS does.
static NO_OVERRIDES: LazyLock<Value> =
    LazyLock::new(|| json!({"containerOverrides": [], "inferenceAcceleratorOverrides": []}));

/// A Task shape.
pub fn task<'a>(caller: &Caller, row: &'a TaskRow, include_tags: bool) -> TaskView<'a> {
    let arns = caller.arns();
    let task_arn = arns.task(&row.cluster, &row.id);
    let seconds = |millis: Option<i64>| millis.map(|m| m as f64 / 1000.0);
    let containers = row
        .doc
        .containers
        .iter()
        .map(|c| ContainerView {
            container_arn: arns.container(&row.cluster, &row.id, &c.name),
            task_arn: task_arn.clone(),
            name: &c.name,
            image: &c.image,
            last_status: &c.last_status,
            network_interfaces: [],
            health_status: c.health_status.as_deref().unwrap_or("UNKNOWN"),
            network_bindings: c
                .network_bindings
                .iter()
                .map(|b| BindingView {
                    // The scheduler's assignment, before the agent reports where it published.
                    bind_ip: b.bind_ip.as_deref().unwrap_or("0.0.0.0"),
                    container_port: b.container_port,
                    host_port: b.host_port,
                    protocol: &b.protocol,
                })
                .collect(),
            exit_code: c.exit_code,
            reason: c.reason.as_deref(),
            runtime_id: c.runtime_id.as_deref(),
            cpu: c.cpu.map(|cpu| cpu.to_string()),
            memory: c.memory.map(|memory| memory.to_string()),
            memory_reservation: c
                .memory_reservation
                .map(|reservation| reservation.to_string()),
        })
        .collect();
    TaskView {
        cluster_arn: arns.cluster(&row.cluster),
        task_definition_arn: arns.task_definition(&row.family, row.doc.revision),
        container_instance_arn: row
            .container_instance_id
            .as_ref()
            .map(|instance| arns.container_instance(&row.cluster, instance)),
        task_arn,
        last_status: &row.last_status,
        desired_status: &row.desired_status,
        cpu: row.doc.cpu_units.to_string(),
        memory: row.doc.memory_mib.to_string(),
        version: row.version,
        connectivity: if row.container_instance_id.is_some() {
            "CONNECTED"
        } else {
            "DISCONNECTED"
        },
        created_at: row.doc.created_at as f64 / 1000.0,
        group: &row.group,
        launch_type: &row.doc.launch_type,
        attachments: [],
        enable_execute_command: false,
        health_status: row.doc.health_status.as_deref().unwrap_or("UNKNOWN"),
        tags: if include_tags {
            tags(&row.doc.tags)
        } else {
            Value::Array(Vec::new())
        },
        overrides: row.doc.overrides.as_ref().unwrap_or(&NO_OVERRIDES),
        containers,
        started_by: row.started_by.as_deref(),
        stop_code: row.doc.stop_code.as_deref(),
        stopped_reason: row.doc.stopped_reason.as_deref(),
        connectivity_at: seconds(row.doc.connectivity_at),
        pull_started_at: seconds(row.doc.pull_started_at),
        pull_stopped_at: seconds(row.doc.pull_stopped_at),
        started_at: seconds(row.doc.started_at),
        stopping_at: seconds(row.doc.stopping_at),
        stopped_at: seconds(row.doc.stopped_at),
        execution_stopped_at: seconds(row.doc.stopped_at),
    }
}
