//! TagResource, UntagResource, ListTagsForResource.

use berth_eventlog::{Append, Expect};
use berth_events::{Aggregate, ResourceTagged, ResourceUntagged, Tag};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::arn::{self, Resource};
use crate::error::{ApiResult, ecs};
use crate::gateway::{Caller, Gateway};
use crate::read_model::{cluster_queries, task_definition_queries};
use crate::render;

/// Validated wire tags as event tags (an absent value is the empty string).
pub fn to_event_tags(tags: Vec<berth_ecs_model::Tag>) -> Vec<Tag> {
    tags.into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value.unwrap_or_default(),
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagRequest {
    resource_arn: String,
    tags: Value,
}

pub async fn tag(gateway: &Gateway, caller: &Caller, request: TagRequest) -> ApiResult<Value> {
    let tags = to_event_tags(berth_ecs_model::validate_tags(&request.tags)?);
    let resource_arn = request.resource_arn;
    gateway
        .execute(|| async {
            let (aggregate, version, existing) = locate(gateway, &resource_arn).await?;
            let mut merged = existing;
            for tag in &tags {
                if !merged.iter().any(|t| t.key == tag.key) {
                    merged.push(tag.clone());
                }
            }
            if merged.len() > 50 {
                return Err(ecs::invalid_parameter("A resource can have at most 50 tags.").into());
            }
            let event = ResourceTagged {
                resource_arn: resource_arn.clone(),
                tags: tags.clone(),
            };
            Ok(vec![
                Append::new(aggregate, event, caller.event_meta()).expect(Expect::Version(version)),
            ])
        })
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagRequest {
    resource_arn: String,
    tag_keys: Value,
}

pub async fn untag(gateway: &Gateway, caller: &Caller, request: UntagRequest) -> ApiResult<Value> {
    let tag_keys = berth_ecs_model::validate_tag_keys(&request.tag_keys)?;
    let resource_arn = request.resource_arn;
    gateway
        .execute(|| async {
            let (aggregate, version, _) = locate(gateway, &resource_arn).await?;
            let event = ResourceUntagged {
                resource_arn: resource_arn.clone(),
                tag_keys: tag_keys.clone(),
            };
            Ok(vec![
                Append::new(aggregate, event, caller.event_meta()).expect(Expect::Version(version)),
            ])
        })
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsRequest {
    resource_arn: String,
}

pub async fn list(
    gateway: &Gateway,
    _caller: &Caller,
    request: ListTagsRequest,
) -> ApiResult<Value> {
    let (_, _, tags) = locate(gateway, &request.resource_arn).await?;
    Ok(json!({ "tags": render::tags(&tags) }))
}

/// The aggregate a taggable ARN belongs to, its version, and its current tags.
async fn locate(gateway: &Gateway, resource_arn: &str) -> ApiResult<(Aggregate, u64, Vec<Tag>)> {
    let resource = arn::parse(resource_arn)
        .ok_or_else(|| ecs::invalid_parameter(format!("Invalid resource ARN: {resource_arn}")))?;
    match resource {
        Resource::Cluster(name) => {
            let row = cluster_queries::get(gateway.db(), &name)
                .await?
                .filter(|row| row.is_active())
                .ok_or_else(crate::error::ecs::cluster_not_found)?;
            Ok((Aggregate::Cluster(name), row.version, row.tags))
        }
        Resource::TaskDefinition { family, revision } => {
            let row = task_definition_queries::get(gateway.db(), &family, revision)
                .await?
                .ok_or_else(|| {
                    ecs::resource_not_found("The specified resource could not be found.")
                })?;
            let version = task_definition_queries::family(gateway.db(), &family)
                .await?
                .version;
            Ok((Aggregate::TaskDefinitionFamily(family), version, row.tags))
        }
        _ => Err(ecs::resource_not_found("The specified resource could not be found.").into()),
    }
}
