//! ListContainerInstances, DescribeContainerInstances,
//! UpdateContainerInstancesState, DeregisterContainerInstance.

use std::collections::BTreeMap;

use berth_eventlog::{Append, Expect};
use berth_events::{Aggregate, ContainerInstanceDeregistered, ContainerInstanceStatusChanged};
use foldhash::HashMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cluster_or_default;
use super::clusters::active_cluster;
use super::pagination::page_request;
use super::tasks::instance_id;
use crate::error::{ApiResult, ecs};
use crate::gateway::{Caller, Gateway};
use crate::read_model::{InstanceRow, instance_queries, task_queries};
use crate::render::{self, InstanceUsage};

/// An instance as the cluster query language sees it.
struct QueryView<'a> {
    row: &'a InstanceRow,
    attributes: BTreeMap<String, String>,
    usage: &'a InstanceUsage,
}

impl berth_cql::InstanceView for QueryView<'_> {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        Some(&self.row.doc.ec2_instance_id)
    }
    fn agent_connected(&self) -> bool {
        self.row.agent_connected
    }
    fn agent_version(&self) -> Option<&str> {
        Some(&self.row.doc.agent_version)
    }
    fn registered_at(&self) -> Option<i64> {
        Some(self.row.doc.registered_at / 1000)
    }
    fn running_tasks_count(&self) -> u64 {
        self.usage.running.max(0) as u64
    }
    fn any_task_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.usage.groups.iter().any(|group| f(group))
    }
}

/// Instances of a cluster (not INACTIVE) with what their tasks use.
async fn instances_with_usage(
    gateway: &Gateway,
    cluster: &str,
) -> ApiResult<(Vec<InstanceRow>, HashMap<String, InstanceUsage>)> {
    let instances = instance_queries::of_cluster(gateway.db(), cluster).await?;
    let tasks = task_queries::active_on_cluster(gateway.tasks_db().await?, cluster).await?;
    Ok((instances, render::usage_by_instance(&tasks)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    cluster: Option<String>,
    filter: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

pub async fn list(gateway: &Gateway, caller: &Caller, request: ListRequest) -> ApiResult<Value> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    let page = page_request(request.next_token.as_deref(), request.max_results, 100)?;
    let query = request
        .filter
        .as_deref()
        .map(berth_cql::Query::parse)
        .transpose()
        .map_err(|error| ecs::invalid_parameter(format!("Invalid filter: {error}")))?;
    if let Some(status) = &request.status
        && ![
            "ACTIVE",
            "DRAINING",
            "REGISTERING",
            "DEREGISTERING",
            "REGISTRATION_FAILED",
        ]
        .contains(&status.as_str())
    {
        return Err(ecs::invalid_parameter(format!("Invalid status {status}.")).into());
    }
    let (instances, usage) = instances_with_usage(gateway, &cluster).await?;
    let empty = InstanceUsage::default();
    let ids: Vec<String> = instances
        .iter()
        .filter(|row| {
            request
                .status
                .as_ref()
                .is_none_or(|status| &row.status == status)
        })
        .filter(|row| page.after.as_ref().is_none_or(|after| &row.id > after))
        .filter(|row| {
            query.as_ref().is_none_or(|query| {
                let view = QueryView {
                    row,
                    attributes: row
                        .attributes()
                        .into_iter()
                        .map(|a| (a.name, a.value.unwrap_or_default()))
                        .collect(),
                    usage: usage.get(&row.id).unwrap_or(&empty),
                };
                query.matches(&view)
            })
        })
        .take(page.fetch_limit())
        .map(|row| row.id.clone())
        .collect();
    let (ids, next_token) = page.finish(ids, Clone::clone);
    let arns: Vec<String> = ids
        .iter()
        .map(|id| caller.arns().container_instance(&cluster, id))
        .collect();
    Ok(render::with_next_token(
        json!({ "containerInstanceArns": arns }),
        next_token,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    cluster: Option<String>,
    container_instances: Vec<String>,
    include: Option<Vec<String>>,
}

pub async fn describe(
    gateway: &Gateway,
    caller: &Caller,
    request: DescribeRequest,
) -> ApiResult<Value> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    if request.container_instances.is_empty() || request.container_instances.len() > 100 {
        return Err(ecs::invalid_parameter(
            "containerInstances must name 1 to 100 container instances.",
        )
        .into());
    }
    let include_tags = request
        .include
        .unwrap_or_default()
        .iter()
        .any(|i| i == "TAGS");
    let tasks = task_queries::active_on_cluster(gateway.tasks_db().await?, &cluster).await?;
    let usage = render::usage_by_instance(&tasks);
    let empty = InstanceUsage::default();
    let mut described = Vec::new();
    let mut failures = Vec::new();
    for reference in &request.container_instances {
        let id = instance_id(&cluster, reference)?;
        match instance_queries::get(gateway.db(), &cluster, &id).await? {
            Some(row) => described.push(render::container_instance(
                caller,
                &row,
                usage.get(&id).unwrap_or(&empty),
                include_tags,
            )),
            None => failures.push(json!({
                "arn": caller.arns().container_instance(&cluster, &id),
                "reason": "MISSING",
            })),
        }
    }
    Ok(render::object([
        ("containerInstances", Value::Array(described)),
        ("failures", Value::Array(failures)),
    ]))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStateRequest {
    cluster: Option<String>,
    container_instances: Vec<String>,
    status: String,
}

pub async fn update_state(
    gateway: &Gateway,
    caller: &Caller,
    request: UpdateStateRequest,
) -> ApiResult<Value> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    if !["ACTIVE", "DRAINING"].contains(&request.status.as_str()) {
        return Err(ecs::invalid_parameter("status must be ACTIVE or DRAINING.").into());
    }
    if request.container_instances.is_empty() || request.container_instances.len() > 10 {
        return Err(ecs::invalid_parameter(
            "containerInstances must name 1 to 10 container instances.",
        )
        .into());
    }
    let ids = request
        .container_instances
        .iter()
        .map(|reference| instance_id(&cluster, reference))
        .collect::<ApiResult<Vec<_>>>()?;
    gateway
        .execute(|| async {
            let mut appends = Vec::new();
            for id in &ids {
                let Some(row) = instance_queries::get(gateway.db(), &cluster, id).await? else {
                    continue;
                };
                if row.status == "INACTIVE" || row.status == request.status {
                    continue;
                }
                appends.push(
                    Append::new(
                        Aggregate::ContainerInstance {
                            cluster: cluster.clone(),
                            id: id.clone(),
                        },
                        ContainerInstanceStatusChanged {
                            status: request.status.clone(),
                        },
                        caller.event_meta(),
                    )
                    .expect(Expect::Version(row.version)),
                );
            }
            Ok(appends)
        })
        .await?;
    let mut described = describe(
        gateway,
        caller,
        DescribeRequest {
            cluster: Some(cluster),
            container_instances: ids,
            include: None,
        },
    )
    .await?;
    Ok(render::object([
        ("containerInstances", described["containerInstances"].take()),
        ("failures", described["failures"].take()),
    ]))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterRequest {
    cluster: Option<String>,
    container_instance: String,
    force: Option<bool>,
}

pub async fn deregister(
    gateway: &Gateway,
    caller: &Caller,
    request: DeregisterRequest,
) -> ApiResult<Value> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    let id = instance_id(&cluster, &request.container_instance)?;
    let force = request.force.unwrap_or(false);
    gateway
        .execute(|| async {
            let row = instance_queries::get(gateway.db(), &cluster, &id)
                .await?
                .filter(|row| row.status != "INACTIVE")
                .ok_or_else(|| ecs::invalid_parameter("The referenced container instance was not found."))?;
            let tasks = task_queries::active_on_cluster(gateway.tasks_db().await?, &cluster).await?;
            let busy = tasks.iter().any(|t| t.container_instance_id.as_deref() == Some(id.as_str()));
            if busy && !force {
                return Err(ecs::invalid_parameter(
                    "The container instance has tasks running on it: stop them or deregister with force.",
                )
                .into());
            }
            Ok(vec![
                Append::new(
                    Aggregate::ContainerInstance { cluster: cluster.clone(), id: id.clone() },
                    ContainerInstanceDeregistered { force },
                    caller.event_meta(),
                )
                .expect(Expect::Version(row.version)),
            ])
        })
        .await?;
    let row = instance_queries::get(gateway.db(), &cluster, &id)
        .await?
        .ok_or_else(|| {
            ecs::invalid_parameter("The referenced container instance was not found.")
        })?;
    let usage = InstanceUsage::default();
    Ok(json!({ "containerInstance": render::container_instance(caller, &row, &usage, false) }))
}
