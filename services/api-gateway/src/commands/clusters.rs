//! CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
//! UpdateClusterSettings, DeleteCluster.

use berth_eventlog::{Append, Expect};
use berth_events::{
    Aggregate, ClusterCreated, ClusterDeleted, ClusterSetting, ClusterUpdated, EventMeta,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pagination::page_request;
use super::{cluster_or_default, tags::to_event_tags};
use crate::error::{ApiResult, ecs};
use crate::gateway::{Caller, Gateway};
use crate::read_model::{ClusterRow, cluster_queries};
use crate::render;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateClusterRequest {
    cluster_name: Option<String>,
    tags: Option<Value>,
    settings: Option<Value>,
    configuration: Option<Value>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<Value>>,
    service_connect_defaults: Option<Value>,
}

pub async fn create(
    gateway: &Gateway,
    caller: &Caller,
    request: CreateClusterRequest,
) -> ApiResult<Value> {
    let name = request.cluster_name.unwrap_or_else(|| "default".to_owned());
    berth_ecs_model::validate_cluster_name(&name)?;
    let event = ClusterCreated {
        name: name.clone(),
        settings: validated_settings(request.settings.as_ref())?.unwrap_or_default(),
        configuration: request
            .configuration
            .as_ref()
            .map(berth_ecs_model::validate_cluster_configuration)
            .transpose()?,
        service_connect_defaults: request.service_connect_defaults,
        capacity_providers: request.capacity_providers.unwrap_or_default(),
        default_capacity_provider_strategy: request
            .default_capacity_provider_strategy
            .unwrap_or_default(),
        tags: match &request.tags {
            Some(tags) => to_event_tags(berth_ecs_model::validate_tags(tags)?),
            None => Vec::new(),
        },
    };
    gateway
        .execute(|| async {
            // CreateCluster on an ACTIVE cluster returns it unchanged, as ECS does.
            let existing = cluster_queries::get(gateway.db(), &name).await?;
            if existing.as_ref().is_some_and(ClusterRow::is_active) {
                return Ok(vec![]);
            }
            let expect = existing.map_or(Expect::New, |row| Expect::Version(row.version));
            Ok(vec![
                Append::new(
                    Aggregate::Cluster(name.clone()),
                    event.clone(),
                    caller.event_meta(),
                )
                .expect(expect),
            ])
        })
        .await?;
    let row = active_cluster(gateway, &name).await?;
    Ok(
        json!({ "cluster": render::cluster(gateway, caller, &row, &render::ClusterInclude::all()).await? }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersRequest {
    clusters: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

pub async fn describe(
    gateway: &Gateway,
    caller: &Caller,
    request: DescribeClustersRequest,
) -> ApiResult<Value> {
    let include = render::ClusterInclude::parse(request.include.as_deref())?;
    let names = request
        .clusters
        .unwrap_or_else(|| vec!["default".to_owned()]);
    if names.len() > 100 {
        return Err(
            ecs::invalid_parameter("At most 100 clusters can be described at once.").into(),
        );
    }
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for requested in &names {
        let name = cluster_or_default(Some(requested))?;
        match cluster_queries::get(gateway.db(), &name).await? {
            Some(row) => clusters.push(render::cluster(gateway, caller, &row, &include).await?),
            None => {
                failures.push(json!({ "arn": caller.arns().cluster(&name), "reason": "MISSING" }))
            }
        }
    }
    Ok(json!({ "clusters": clusters, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersRequest {
    next_token: Option<String>,
    max_results: Option<i32>,
}

pub async fn list(
    gateway: &Gateway,
    caller: &Caller,
    request: ListClustersRequest,
) -> ApiResult<Value> {
    let page = page_request(request.next_token.as_deref(), request.max_results, 100)?;
    let names =
        cluster_queries::list_active(gateway.db(), page.after.as_deref(), page.fetch_limit())
            .await?;
    let (names, next_token) = page.finish(names, Clone::clone);
    let arns: Vec<String> = names
        .iter()
        .map(|name| caller.arns().cluster(name))
        .collect();
    Ok(render::with_next_token(
        json!({ "clusterArns": arns }),
        next_token,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterRequest {
    cluster: String,
    settings: Option<Value>,
    configuration: Option<Value>,
    service_connect_defaults: Option<Value>,
}

pub async fn update(
    gateway: &Gateway,
    caller: &Caller,
    request: UpdateClusterRequest,
) -> ApiResult<Value> {
    let name = cluster_or_default(Some(&request.cluster))?;
    let event = ClusterUpdated {
        settings: validated_settings(request.settings.as_ref())?,
        configuration: request
            .configuration
            .as_ref()
            .map(berth_ecs_model::validate_cluster_configuration)
            .transpose()?,
        service_connect_defaults: request.service_connect_defaults,
    };
    change_active_cluster(gateway, caller, &name, event).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterSettingsRequest {
    cluster: String,
    settings: Value,
}

pub async fn update_settings(
    gateway: &Gateway,
    caller: &Caller,
    request: UpdateClusterSettingsRequest,
) -> ApiResult<Value> {
    let name = cluster_or_default(Some(&request.cluster))?;
    let event = ClusterUpdated {
        settings: validated_settings(Some(&request.settings))?,
        ..ClusterUpdated::default()
    };
    change_active_cluster(gateway, caller, &name, event).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteClusterRequest {
    cluster: String,
}

pub async fn delete(
    gateway: &Gateway,
    caller: &Caller,
    request: DeleteClusterRequest,
) -> ApiResult<Value> {
    let name = cluster_or_default(Some(&request.cluster))?;
    gateway
        .execute(|| async {
            let row = active_cluster(gateway, &name).await?;
            render::ensure_cluster_is_empty(gateway, &name).await?;
            Ok(vec![
                Append::new(
                    Aggregate::Cluster(name.clone()),
                    ClusterDeleted {},
                    caller.event_meta(),
                )
                .expect(Expect::Version(row.version)),
            ])
        })
        .await?;
    let row = cluster_queries::get(gateway.db(), &name)
        .await?
        .ok_or_else(ecs::cluster_not_found)?;
    Ok(
        json!({ "cluster": render::cluster(gateway, caller, &row, &render::ClusterInclude::all()).await? }),
    )
}

/// Appends `event` to an ACTIVE cluster and answers with the updated cluster.
async fn change_active_cluster(
    gateway: &Gateway,
    caller: &Caller,
    name: &str,
    event: ClusterUpdated,
) -> ApiResult<Value> {
    gateway
        .execute(|| async {
            let row = active_cluster(gateway, name).await?;
            Ok(vec![
                Append::new(
                    Aggregate::Cluster(name.to_owned()),
                    event.clone(),
                    caller.event_meta(),
                )
                .expect(Expect::Version(row.version)),
            ])
        })
        .await?;
    let row = active_cluster(gateway, name).await?;
    Ok(
        json!({ "cluster": render::cluster(gateway, caller, &row, &render::ClusterInclude::all()).await? }),
    )
}

/// The cluster if it exists and is ACTIVE, else ClusterNotFoundException.
pub async fn active_cluster(gateway: &Gateway, name: &str) -> ApiResult<ClusterRow> {
    match gateway.catalog().cluster(gateway.db(), name).await? {
        Some(row) if row.is_active() => Ok(row),
        _ => Err(ecs::cluster_not_found().into()),
    }
}

fn validated_settings(settings: Option<&Value>) -> ApiResult<Option<Vec<ClusterSetting>>> {
    let Some(settings) = settings else {
        return Ok(None);
    };
    let settings = berth_ecs_model::validate_cluster_settings(settings)?;
    Ok(Some(
        settings
            .into_iter()
            .map(|s| ClusterSetting {
                name: s.name,
                value: s.value,
            })
            .collect(),
    ))
}

impl Caller {
    /// A fresh envelope for an event this caller's request causes.
    pub fn event_meta(&self) -> EventMeta {
        let meta = EventMeta::new().with_trace_context(berth_telemetry::inject_current_context());
        match self.request_id {
            Some(request_id) => meta.with_correlation(request_id),
            None => meta,
        }
    }
}
