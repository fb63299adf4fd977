//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions.

use berth_eventlog::{Append, Expect};
use berth_events::{
    Aggregate, JsonText, TaskDefinitionDeleted, TaskDefinitionDeregistered,
    TaskDefinitionRegistered,
};
use foldhash::{HashSet, HashSetExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pagination::page_request;
use super::tags::to_event_tags;
use crate::error::{ApiResult, ecs};
use crate::gateway::{Caller, Decision, Gateway};
use crate::read_model::{
    FamilyStatusFilter, TaskDefinitionRow, task_definition_queries as queries,
};
use crate::render;

const UNABLE_TO_DESCRIBE: &str = "Unable to describe task definition.";
const DOES_NOT_EXIST: &str = "The specified task definition does not exist.";

pub async fn register(gateway: &Gateway, caller: &Caller, request: Value) -> ApiResult<Value> {
    let spec = berth_ecs_model::validate_register_task_definition(&request)?;
    let family = spec.family.clone();
    let tags = to_event_tags(spec.tags.clone());
    let registered_revision = gateway
        .execute_with(|| {
            let (spec, tags, family) = (&spec, &tags, &family);
            async move {
                let current = queries::family(gateway.db(), family).await?;
                let revision = current.last_revision + 1;
                let event = TaskDefinitionRegistered {
                    family: family.clone(),
                    revision,
                    definition: JsonText::from_value(&spec.task_definition),
                    tags: tags.clone(),
                    registered_by: Some(caller.principal_arn()),
                };
                let expect = match current.version {
                    0 => Expect::New,
                    version => Expect::Version(version),
                };
                Ok(Decision {
                    appends: vec![
                        Append::new(
                            Aggregate::TaskDefinitionFamily(family.clone()),
                            event,
                            caller.event_meta(),
                        )
                        .expect(expect),
                    ],
                    outcome: revision,
                })
            }
        })
        .await?;
    let row = queries::get(gateway.db(), &family, registered_revision)
        .await?
        .ok_or_else(|| ecs::client(UNABLE_TO_DESCRIBE))?;
    Ok(json!({
        "taskDefinition": render::task_definition(caller, &row),
        "tags": render::tags(&row.tags),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    task_definition: String,
    include: Option<Vec<String>>,
}

pub async fn describe(
    gateway: &Gateway,
    caller: &Caller,
    request: DescribeRequest,
) -> ApiResult<Value> {
    let include_tags = include_tags(request.include.as_deref())?;
    let row = find(gateway, &request.task_definition)
        .await?
        .ok_or_else(|| ecs::client(UNABLE_TO_DESCRIBE))?;
    let mut response = json!({ "taskDefinition": render::task_definition(caller, &row) });
    if include_tags {
        response["tags"] = render::tags(&row.tags);
    }
    Ok(response)
}

/// A task definition by `family` (its latest ACTIVE revision), `family:revision`
/// or ARN.
pub async fn find(gateway: &Gateway, reference: &str) -> ApiResult<Option<TaskDefinitionRow>> {
    let (family, revision) = berth_ecs_model::parse_task_definition_ref(reference)?;
    Ok(gateway
        .catalog()
        .task_definition(gateway.db(), reference, &family, revision)
        .await?)
}

fn include_tags(include: Option<&[String]>) -> ApiResult<bool> {
    let mut tags = false;
    for value in include.unwrap_or_default() {
        if value != "TAGS" {
            return Err(ecs::invalid_parameter(format!(
                "Invalid include value {value}: expected TAGS."
            ))
            .into());
        }
        tags = true;
    }
    Ok(tags)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

pub async fn list(gateway: &Gateway, caller: &Caller, request: ListRequest) -> ApiResult<Value> {
    let status = request.status.as_deref().unwrap_or("ACTIVE");
    if !["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"].contains(&status) {
        return Err(ecs::invalid_parameter(format!(
            "Invalid status {status}: expected ACTIVE, INACTIVE or DELETE_IN_PROGRESS."
        ))
        .into());
    }
    let descending = match request.sort.as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => {
            return Err(ecs::invalid_parameter(format!(
                "Invalid sort {other}: expected ASC or DESC."
            ))
            .into());
        }
    };
    let page = page_request(request.next_token.as_deref(), request.max_results, 100)?;
    let after = match &page.after {
        Some(key) => Some(parse_page_key(key)?),
        None => None,
    };
    let found = queries::list(
        gateway.db(),
        request.family_prefix.as_deref(),
        status,
        descending,
        after,
        page.fetch_limit(),
    )
    .await?;
    let (found, next_token) =
        page.finish(found, |(family, revision)| format!("{family}:{revision}"));
    let arns: Vec<String> = found
        .iter()
        .map(|(family, revision)| caller.arns().task_definition(family, *revision))
        .collect();
    Ok(render::with_next_token(
        json!({ "taskDefinitionArns": arns }),
        next_token,
    ))
}

fn parse_page_key(key: &str) -> ApiResult<(String, u32)> {
    key.rsplit_once(':')
        .and_then(|(family, revision)| Some((family.to_owned(), revision.parse().ok()?)))
        .ok_or_else(|| ecs::invalid_parameter("Invalid nextToken.").into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFamiliesRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

pub async fn list_families(
    gateway: &Gateway,
    _caller: &Caller,
    request: ListFamiliesRequest,
) -> ApiResult<Value> {
    let status = match request.status.as_deref() {
        None | Some("ACTIVE") => FamilyStatusFilter::Active,
        Some("INACTIVE") => FamilyStatusFilter::Inactive,
        Some("ALL") => FamilyStatusFilter::All,
        Some(other) => {
            return Err(ecs::invalid_parameter(format!(
                "Invalid status {other}: expected ACTIVE, INACTIVE or ALL."
            ))
            .into());
        }
    };
    let page = page_request(request.next_token.as_deref(), request.max_results, 100)?;
    let families = queries::list_families(
        gateway.db(),
        request.family_prefix.as_deref(),
        status,
        page.after.as_deref(),
        page.fetch_limit(),
    )
    .await?;
    let (families, next_token) = page.finish(families, Clone::clone);
    Ok(render::with_next_token(
        json!({ "families": families }),
        next_token,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterRequest {
    task_definition: String,
}

pub async fn deregister(
    gateway: &Gateway,
    caller: &Caller,
    request: DeregisterRequest,
) -> ApiResult<Value> {
    let (family, revision) = berth_ecs_model::parse_task_definition_ref(&request.task_definition)?;
    let Some(revision) = revision else {
        return Err(ecs::invalid_parameter(
            "A revision is required: give family:revision or the task definition ARN.",
        )
        .into());
    };
    gateway
        .execute(|| {
            let family = &family;
            async move {
                let row = queries::get(gateway.db(), family, revision)
                    .await?
                    .ok_or_else(|| ecs::client(DOES_NOT_EXIST))?;
                // Deregistering an INACTIVE revision again changes nothing.
                if row.status != "ACTIVE" {
                    return Ok(vec![]);
                }
                let version = queries::family(gateway.db(), family).await?.version;
                Ok(vec![
                    Append::new(
                        Aggregate::TaskDefinitionFamily(family.clone()),
                        TaskDefinitionDeregistered { revision },
                        caller.event_meta(),
                    )
                    .expect(Expect::Version(version)),
                ])
            }
        })
        .await?;
    let row = queries::get(gateway.db(), &family, revision)
        .await?
        .ok_or_else(|| ecs::client(DOES_NOT_EXIST))?;
    Ok(json!({ "taskDefinition": render::task_definition(caller, &row) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRequest {
    task_definitions: Vec<String>,
}

pub async fn delete(
    gateway: &Gateway,
    caller: &Caller,
    request: DeleteRequest,
) -> ApiResult<Value> {
    if request.task_definitions.is_empty() || request.task_definitions.len() > 10 {
        return Err(ecs::invalid_parameter(
            "taskDefinitions must hold between 1 and 10 task definitions.",
        )
        .into());
    }
    let mut targets = Vec::new();
    let mut failures = Vec::new();
    for reference in &request.task_definitions {
        let (family, revision) = berth_ecs_model::parse_task_definition_ref(reference)?;
        let Some(revision) = revision else {
            failures.push(json!({ "arn": reference, "reason": "The task definition must include a revision." }));
            continue;
        };
        targets.push((family, revision));
    }
    gateway
        .execute(|| {
            let targets = &targets;
            async move {
                let mut appends = Vec::new();
                let mut versioned: HashSet<String> = HashSet::new();
                for (family, revision) in targets {
                    let Some(row) = queries::get(gateway.db(), family, *revision).await? else {
                        continue;
                    };
                    if row.status != "INACTIVE" {
                        continue;
                    }
                    // The first event per family carries the version check; the rest
                    // of the same family follow it inside the same atomic batch.
                    let expect = if versioned.insert(family.clone()) {
                        Expect::Version(queries::family(gateway.db(), family).await?.version)
                    } else {
                        Expect::Any
                    };
                    appends.push(
                        Append::new(
                            Aggregate::TaskDefinitionFamily(family.clone()),
                            TaskDefinitionDeleted {
                                revision: *revision,
                            },
                            caller.event_meta(),
                        )
                        .expect(expect),
                    );
                }
                Ok(appends)
            }
        })
        .await?;
    let mut task_definitions = Vec::new();
    for (family, revision) in &targets {
        let arn = caller.arns().task_definition(family, *revision);
        match queries::get(gateway.db(), family, *revision).await? {
            None => failures.push(json!({ "arn": arn, "reason": DOES_NOT_EXIST })),
            Some(row) if row.status == "ACTIVE" => failures.push(json!({
                "arn": arn,
                "reason": "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
            })),
            Some(row) => task_definitions.push(render::task_definition(caller, &row)),
        }
    }
    Ok(json!({ "taskDefinitions": task_definitions, "failures": failures }))
}
