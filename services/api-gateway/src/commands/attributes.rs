//! PutAttributes, ListAttributes, DeleteAttributes (custom attributes of container
//! instances).

use std::collections::BTreeMap;

use berth_eventlog::{Append, Expect};
use berth_events::{Aggregate, Attribute, AttributesDeleted, AttributesPut};
use serde::Deserialize;
use serde_json::{Value, json};

use super::cluster_or_default;
use super::clusters::active_cluster;
use super::pagination::page_request;
use super::tasks::instance_id;
use crate::error::{ApiResult, ecs};
use crate::gateway::{Caller, Gateway};
use crate::read_model::instance_queries;
use crate::render;

/// ECS allows at most 10 custom attributes per resource.
const MAX_CUSTOM_ATTRIBUTES: usize = 10;

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct WireAttribute {
    name: String,
    value: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributesRequest {
    cluster: Option<String>,
    attributes: Vec<WireAttribute>,
}

/// Groups attributes by the instance they target, validating each.
fn by_instance(
    cluster: &str,
    attributes: &[WireAttribute],
) -> ApiResult<BTreeMap<String, Vec<Attribute>>> {
    if attributes.is_empty() || attributes.len() > MAX_CUSTOM_ATTRIBUTES {
        return Err(ecs::invalid_parameter("attributes must hold 1 to 10 attributes.").into());
    }
    let mut grouped: BTreeMap<String, Vec<Attribute>> = BTreeMap::new();
    for attribute in attributes {
        berth_ecs_model::validate_attribute_name(&attribute.name)?;
        if let Some(value) = &attribute.value {
            berth_ecs_model::validate_attribute_value(value)?;
        }
        if attribute
            .target_type
            .as_deref()
            .is_some_and(|t| t != "container-instance")
        {
            return Err(ecs::invalid_parameter("targetType must be container-instance.").into());
        }
        let target = attribute
            .target_id
            .as_deref()
            .ok_or_else(|| ecs::invalid_parameter("targetId is required."))?;
        grouped
            .entry(instance_id(cluster, target)?)
            .or_default()
            .push(Attribute {
                name: attribute.name.clone(),
                value: attribute.value.clone(),
            });
    }
    Ok(grouped)
}

fn render_attributes(caller: &Caller, cluster: &str, attributes: &[WireAttribute]) -> Value {
    let rendered: Vec<Value> = attributes
        .iter()
        .map(|a| {
            let id = a
                .target_id
                .as_deref()
                .and_then(|t| instance_id(cluster, t).ok())
                .unwrap_or_default();
            let mut value = json!({
                "name": a.name,
                "targetType": "container-instance",
                "targetId": caller.arns().container_instance(cluster, &id),
            });
            if let Some(v) = &a.value {
                value["value"] = json!(v);
            }
            value
        })
        .collect();
    json!({ "attributes": rendered })
}

pub async fn put(
    gateway: &Gateway,
    caller: &Caller,
    request: AttributesRequest,
) -> ApiResult<Value> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    let grouped = by_instance(&cluster, &request.attributes)?;
    gateway
        .execute(|| async {
            let mut appends = Vec::new();
            for (id, attributes) in &grouped {
                let row = instance_queries::get(gateway.db(), &cluster, id)
                    .await?
                    .filter(|row| row.status != "INACTIVE")
                    .ok_or_else(|| {
                        berth_aws_protocol::AwsError::client(
                            "TargetNotFoundException",
                            format!("Could not find {id}."),
                        )
                    })?;
                let mut names: Vec<&str> = row
                    .doc
                    .custom_attributes
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect();
                names.extend(attributes.iter().map(|a| a.name.as_str()));
                names.sort_unstable();
                names.dedup();
                if names.len() > MAX_CUSTOM_ATTRIBUTES {
                    return Err(berth_aws_protocol::AwsError::client(
                        "AttributeLimitExceededException",
                        "A container instance can have at most 10 custom attributes.",
                    )
                    .into());
                }
                appends.push(
                    Append::new(
                        Aggregate::ContainerInstance {
                            cluster: cluster.clone(),
                            id: id.clone(),
                        },
                        AttributesPut {
                            attributes: attributes.clone(),
                        },
                        caller.event_meta(),
                    )
                    .expect(Expect::Version(row.version)),
                );
            }
            Ok(appends)
        })
        .await?;
    Ok(render_attributes(caller, &cluster, &request.attributes))
}

pub async fn delete(
    gateway: &Gateway,
    caller: &Caller,
    request: AttributesRequest,
) -> ApiResult<Value> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    let grouped = by_instance(&cluster, &request.attributes)?;
    gateway
        .execute(|| async {
            let mut appends = Vec::new();
            for (id, attributes) in &grouped {
                let row = instance_queries::get(gateway.db(), &cluster, id)
                    .await?
                    .filter(|row| row.status != "INACTIVE")
                    .ok_or_else(|| {
                        berth_aws_protocol::AwsError::client(
                            "TargetNotFoundException",
                            format!("Could not find {id}."),
                        )
                    })?;
                appends.push(
                    Append::new(
                        Aggregate::ContainerInstance {
                            cluster: cluster.clone(),
                            id: id.clone(),
                        },
                        AttributesDeleted {
                            names: attributes.iter().map(|a| a.name.clone()).collect(),
                        },
                        caller.event_meta(),
                    )
                    .expect(Expect::Version(row.version)),
                );
            }
            Ok(appends)
        })
        .await?;
    Ok(render_attributes(caller, &cluster, &request.attributes))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    cluster: Option<String>,
    target_type: String,
    attribute_name: Option<String>,
    attribute_value: Option<String>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

pub async fn list(gateway: &Gateway, caller: &Caller, request: ListRequest) -> ApiResult<Value> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    if request.target_type != "container-instance" {
        return Err(ecs::invalid_parameter("targetType must be container-instance.").into());
    }
    if request.attribute_value.is_some() && request.attribute_name.is_none() {
        return Err(ecs::invalid_parameter("attributeValue needs attributeName.").into());
    }
    let page = page_request(request.next_token.as_deref(), request.max_results, 100)?;
    let mut found: Vec<(String, Attribute)> = Vec::new();
    for row in instance_queries::of_cluster(gateway.db(), &cluster).await? {
        for attribute in row.attributes() {
            let key = format!("{}/{}", row.id, attribute.name);
            let name_matches = request
                .attribute_name
                .as_ref()
                .is_none_or(|n| *n == attribute.name);
            let value_matches = request
                .attribute_value
                .as_ref()
                .is_none_or(|v| Some(v) == attribute.value.as_ref());
            let after = page.after.as_ref().is_none_or(|after| key > *after);
            if name_matches && value_matches && after {
                found.push((key, attribute));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.truncate(page.fetch_limit());
    let (found, next_token) = page.finish(found, |(key, _)| key.clone());
    let rendered: Vec<Value> = found
        .iter()
        .map(|(key, attribute)| {
            let id = key.split('/').next().unwrap_or_default();
            let mut value = json!({
                "name": attribute.name,
                "targetType": "container-instance",
                "targetId": caller.arns().container_instance(&cluster, id),
            });
            if let Some(v) = &attribute.value {
                value["value"] = json!(v);
            }
            value
        })
        .collect();
    Ok(render::with_next_token(
        json!({ "attributes": rendered }),
        next_token,
    ))
}
