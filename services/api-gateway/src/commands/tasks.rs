//! RunTask, StartTask, StopTask, DescribeTasks, ListTasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_aws_protocol::{AwsError, Reply};
use berth_eventlog::{Append, Expect};
use berth_events::{
    Aggregate, Constraint, PortRequest, Strategy, TaskRequested, TaskStopRequested,
};
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::clusters::active_cluster;
use super::pagination::page_request;
use super::tags::to_event_tags;
use super::{cluster_or_default, task_definitions};
use crate::arn::{self, Resource};
use crate::error::{ApiResult, GatewayError, ecs};
use crate::gateway::{Caller, Gateway};
use crate::read_model::{
    Decided, PLACEMENT_FAILED, PLACEMENT_PENDING, TaskFilter, TaskRow, task_queries,
};
use crate::render::{self, TaskView};

/// How long RunTask waits for the scheduler before answering with the tasks still
/// PROVISIONING.
const PLACEMENT_WAIT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskRequest {
    cluster: Option<String>,
    task_definition: String,
    count: Option<i64>,
    group: Option<String>,
    started_by: Option<String>,
    overrides: Option<Value>,
    placement_constraints: Option<Vec<Constraint>>,
    placement_strategy: Option<Vec<Strategy>>,
    launch_type: Option<String>,
    client_token: Option<String>,
    tags: Option<Value>,
}

pub async fn run(gateway: &Gateway, caller: &Caller, request: RunTaskRequest) -> ApiResult<Reply> {
    let count = request.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ecs::invalid_parameter("count must be between 1 and 10.").into());
    }
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    let spec = TaskSpec::new(gateway, &cluster, &request.task_definition, &request).await?;
    let token = request.client_token.as_deref();
    if token.is_some_and(|t| t.is_empty() || t.len() > 64) {
        return Err(ecs::invalid_parameter("clientToken must be 1 to 64 characters.").into());
    }
    if !gateway
        .catalog()
        .any_instance_registered(gateway.db(), &cluster)
        .await?
    {
        return Err(
            ecs::invalid_parameter("No Container Instances were found in your cluster.").into(),
        );
    }
    let placements = (0..count as usize).map(|_| Vec::new()).collect();
    submit(gateway, caller, &cluster, spec, placements, token).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskRequest {
    cluster: Option<String>,
    task_definition: String,
    container_instances: Vec<String>,
    group: Option<String>,
    started_by: Option<String>,
    overrides: Option<Value>,
    tags: Option<Value>,
}

pub async fn start(
    gateway: &Gateway,
    caller: &Caller,
    request: StartTaskRequest,
) -> ApiResult<Reply> {
    if request.container_instances.is_empty() || request.container_instances.len() > 10 {
        return Err(ecs::invalid_parameter(
            "containerInstances must name 1 to 10 container instances.",
        )
        .into());
    }
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    let run_like = RunTaskRequest {
        cluster: None,
        task_definition: request.task_definition.clone(),
        count: None,
        group: request.group,
        started_by: request.started_by,
        overrides: request.overrides,
        placement_constraints: None,
        placement_strategy: None,
        launch_type: None,
        client_token: None,
        tags: request.tags,
    };
    let spec = TaskSpec::new(gateway, &cluster, &request.task_definition, &run_like).await?;
    let mut targets = Vec::new();
    for reference in &request.container_instances {
        targets.push(vec![instance_id(&cluster, reference)?]);
    }
    submit(gateway, caller, &cluster, spec, targets, None).await
}

/// Everything RunTask and StartTask validate once for all their tasks.
struct TaskSpec {
    event: TaskRequested,
}

impl TaskSpec {
    async fn new(
        gateway: &Gateway,
        cluster: &str,
        reference: &str,
        request: &RunTaskRequest,
    ) -> ApiResult<Self> {
        active_cluster(gateway, cluster).await?;
        let definition = task_definitions::find(gateway, reference)
            .await?
            .ok_or_else(|| ecs::client("TaskDefinition not found."))?;
        let body = definition.definition.to_value();
        if definition.status != "ACTIVE" {
            return Err(ecs::client("TaskDefinition is inactive.").into());
        }
        let launch_type = request
            .launch_type
            .clone()
            .unwrap_or_else(|| "EC2".to_owned());
        if !["EC2", "EXTERNAL"].contains(&launch_type.as_str()) {
            return Err(ecs::invalid_parameter(format!(
                "Launch type {launch_type} is not supported: Berth runs EC2 and EXTERNAL tasks."
            ))
            .into());
        }
        if let Some(overrides) = &request.overrides {
            berth_ecs_model::validate_task_override(overrides, &body)?;
        }
        let mut constraints: Vec<Constraint> = body
            .get("placementConstraints")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        constraints.extend(request.placement_constraints.clone().unwrap_or_default());
        validate_constraints(&constraints)?;
        let strategy = request.placement_strategy.clone().unwrap_or_default();
        validate_strategy(&strategy)?;
        if request.started_by.as_ref().is_some_and(|s| s.len() > 128) {
            return Err(ecs::invalid_parameter("startedBy can be at most 128 characters.").into());
        }
        let resources = berth_ecs_model::task_resources(&body, request.overrides.as_ref());
        let ports = resources
            .ports
            .iter()
            .map(|p| PortRequest {
                container_name: p.container_name.clone(),
                container_port: p.container_port,
                host_port: p.host_port,
                protocol: match p.protocol {
                    berth_ecs_model::Protocol::Tcp => "tcp".to_owned(),
                    berth_ecs_model::Protocol::Udp => "udp".to_owned(),
                },
            })
            .collect();
        let tags = match &request.tags {
            Some(tags) => to_event_tags(berth_ecs_model::validate_tags(tags)?),
            None => Vec::new(),
        };
        Ok(Self {
            event: TaskRequested {
                family: definition.family.clone(),
                revision: definition.revision,
                definition: definition.definition.clone(),
                overrides: request.overrides.clone(),
                cpu_units: resources.cpu_units,
                memory_mib: resources.memory_mib,
                ports,
                constraints,
                strategy,
                target_instances: Vec::new(),
                group: request
                    .group
                    .clone()
                    .unwrap_or_else(|| format!("family:{}", definition.family)),
                started_by: request.started_by.clone(),
                launch_type,
                tags,
                request_id: String::new(),
            },
        })
    }
}

fn validate_constraints(constraints: &[Constraint]) -> ApiResult<()> {
    if constraints.len() > 10 {
        return Err(
            ecs::invalid_parameter("A task can have at most 10 placement constraints.").into(),
        );
    }
    for constraint in constraints {
        match (constraint.kind.as_str(), constraint.expression.as_deref()) {
            ("distinctInstance", _) => {}
            ("memberOf", Some(expression)) => {
                berth_cql::Query::parse(expression).map_err(|error| {
                    ecs::invalid_parameter(format!(
                        "Invalid placement constraint expression: {error}"
                    ))
                })?;
            }
            ("memberOf", None) => {
                return Err(
                    ecs::invalid_parameter("A memberOf constraint needs an expression.").into(),
                );
            }
            (other, _) => {
                return Err(ecs::invalid_parameter(format!(
                    "Invalid placement constraint type {other}: expected distinctInstance or memberOf."
                ))
                .into());
            }
        }
    }
    Ok(())
}

fn validate_strategy(strategy: &[Strategy]) -> ApiResult<()> {
    if strategy.len() > 5 {
        return Err(
            ecs::invalid_parameter("A task can have at most 5 placement strategy rules.").into(),
        );
    }
    for rule in strategy {
        let field = rule.field.as_deref();
        let valid = match rule.kind.as_str() {
            "random" => true,
            "binpack" => matches!(
                field.map(str::to_ascii_lowercase).as_deref(),
                Some("cpu" | "memory")
            ),
            "spread" => field.is_some_and(|f| {
                f.eq_ignore_ascii_case("instanceId")
                    || f.eq_ignore_ascii_case("host")
                    || f.starts_with("attribute:")
            }),
            _ => false,
        };
        if !valid {
            return Err(ecs::invalid_parameter(format!(
                "Invalid placement strategy {}{}.",
                rule.kind,
                field.map(|f| format!(" on {f}")).unwrap_or_default()
            ))
            .into());
        }
    }
    Ok(())
}

/// Appends one TaskRequested per entry of `targets` (each: the instances it may go
/// to, empty for any), waits for the scheduler's decisions and answers as ECS does.
async fn submit(
    gateway: &Gateway,
    caller: &Caller,
    cluster: &str,
    spec: TaskSpec,
    targets: Vec<Vec<String>>,
    client_token: Option<&str>,
) -> ApiResult<Reply> {
    // With a clientToken the request id is derived from it, so a retry finds the
    // tasks of its first attempt. (The SDKs and the CLI send a fresh token with
    // every call: `clientToken` is an idempotency token in the ECS model.)
    let request_id = match client_token {
        Some(token) => uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{cluster}/{token}").as_bytes(),
        ),
        None => caller.request_id.unwrap_or_else(uuid::Uuid::now_v7),
    };
    let request_key = request_id.to_string();
    // Subscribed before reading or appending, so no announcement of this request is
    // missed.
    let decided = gateway.decided_requests().subscribe();
    let mut waiting = PlacementWait::new(cluster, request_key.clone(), targets.len());
    if client_token.is_some() {
        // A retry after the first attempt's tasks reached the read model finds them
        // here: with all of them there, it answers with them and appends nothing.
        waiting.read(gateway).await?;
    }
    // (A request has at least one task, so nothing found never counts as all.)
    let known = waiting.rows.len();
    if known >= targets.len() {
        waiting.expected = known;
        return answer(caller, waiting.until_decided(gateway, decided).await?);
    }
    // Only some found: the first attempt is still being projected (its other
    // tasks are duplicates in the log's window, below) or it failed part way (the
    // tasks it left out are appended now). Either way the request ends with as
    // many tasks as it asked for.
    let appends: Vec<Append> = targets
        .into_iter()
        .enumerate()
        .skip(known)
        .map(|(index, target_instances)| {
            let mut event = spec.event.clone();
            event.target_instances = target_instances;
            event.request_id = request_key.clone();
            // Task ids are time-ordered: new tasks land at the end of every read
            // model's key order, so a batch of them dirties a few pages rather
            // than one page of each index per task.
            let append = Append::new(
                Aggregate::Task {
                    cluster: cluster.to_owned(),
                    id: uuid::Uuid::now_v7().simple().to_string(),
                },
                event,
                caller.event_meta(),
            )
            .expect(Expect::New);
            match client_token {
                // A retry racing its first attempt (before the read model holds
                // it) is caught by the log's duplicate window instead.
                Some(_) => append.idempotency_key(format!("run-task/{request_key}/{index}")),
                None => append,
            }
        })
        .collect();
    // Each task is requested on its own (not as one atomic batch, which JetStream
    // stages on disk): tasks are independent, as ECS's RunTask places some and
    // reports failures for others. A retry finds the tasks its first attempt
    // appended (duplicates within the log's window) and appends only those a
    // failed first attempt left out.
    let mut retried = false;
    for appended in gateway.log().append_each(appends).await {
        match appended {
            Ok(appended) => retried |= appended.duplicate,
            Err(error) => return Err(GatewayError::Log(error.to_string())),
        }
    }
    if retried {
        // Some tasks existed before this call subscribed: their decisions may
        // never be announced again.
        waiting.read(gateway).await?;
    }
    answer(caller, waiting.until_decided(gateway, decided).await?)
}

/// RunTask's answer: the placed tasks, and why the others could not be placed.
fn answer(caller: &Caller, rows: Vec<TaskRow>) -> ApiResult<Reply> {
    let mut tasks = Vec::new();
    let mut failures: Vec<Value> = Vec::new();
    for row in &rows {
        if row.placement != PLACEMENT_FAILED {
            tasks.push(render::task(caller, row, false));
            continue;
        }
        for failure in &row.doc.failures {
            let mut rendered = json!({ "reason": failure.reason });
            if let Some(instance) = &failure.container_instance_id {
                rendered["arn"] = json!(caller.arns().container_instance(&row.cluster, instance));
            }
            if let Some(detail) = &failure.detail {
                rendered["detail"] = json!(detail);
            }
            if !failures.contains(&rendered) {
                failures.push(rendered);
            }
        }
    }
    Ok(Reply::json(&TasksAnswer { tasks, failures })?)
}

/// The answer of RunTask, StartTask and DescribeTasks.
#[derive(Serialize)]
struct TasksAnswer<'a> {
    tasks: Vec<TaskView<'a>>,
    failures: Vec<Value>,
}

/// The tasks of one RunTask/StartTask request, as the scheduler decides them.
struct PlacementWait {
    /// Every task of a request is in the cluster the request named.
    cluster: String,
    request_id: String,
    expected: usize,
    /// The latest row seen of each task, by id.
    rows: HashMap<String, TaskRow>,
    /// The projection position that holds every row in `rows`.
    sequence: u64,
}

impl PlacementWait {
    fn new(cluster: &str, request_id: String, expected: usize) -> Self {
        Self {
            cluster: cluster.to_owned(),
            request_id,
            expected,
            rows: HashMap::new(),
            sequence: 0,
        }
    }

    fn all_decided(&self) -> bool {
        self.rows.len() >= self.expected
            && self
                .rows
                .values()
                .all(|row| row.placement != PLACEMENT_PENDING || row.last_status == "STOPPED")
    }

    fn merge(&mut self, rows: impl IntoIterator<Item = TaskRow>) {
        for row in rows {
            match self.rows.get(&row.id) {
                Some(known) if known.version >= row.version => {}
                _ => {
                    self.rows.insert(row.id.clone(), row);
                }
            }
        }
    }

    /// Reads the request's tasks from the read model.
    async fn read(&mut self, gateway: &Gateway) -> ApiResult<()> {
        self.sequence = self.sequence.max(gateway.projection().position());
        let ids = gateway.task_indexes().of_requests.keys(&self.request_id);
        // A new request (the SDKs send a fresh clientToken with every call) has no
        // tasks yet: nothing to read, so no need for the projection to write first.
        if ids.is_empty() {
            return Ok(());
        }
        let rows = task_queries::by_ids(gateway.tasks_db().await?, &self.cluster, ids).await?;
        self.merge(rows);
        Ok(())
    }

    /// Follows the announcements of decided tasks until every task of the request is
    /// decided (or [`PLACEMENT_WAIT`] passes), then answers once the read model holds
    /// those decisions, so a DescribeTasks right after sees them too.
    async fn until_decided(
        mut self,
        gateway: &Gateway,
        mut decided: broadcast::Receiver<Arc<Decided>>,
    ) -> ApiResult<Vec<TaskRow>> {
        let deadline = Instant::now() + PLACEMENT_WAIT;
        // Set when announcements were missed: read once the next one is committed.
        let mut missed = false;
        while !self.all_decided() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, decided.recv()).await {
                Ok(Ok(batch)) => {
                    if let Some(rows) = batch.tasks_by_request.get(&self.request_id) {
                        self.sequence = self.sequence.max(batch.sequence);
                        self.merge(rows.iter().cloned());
                    }
                    if std::mem::take(&mut missed) {
                        let _ = gateway
                            .projection()
                            .wait_for(batch.sequence, remaining)
                            .await;
                        self.read(gateway).await?;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => missed = true,
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                    // No more announcements, or the deadline: answer with what the
                    // read model has.
                    self.read(gateway).await?;
                    break;
                }
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _ = gateway
            .projection()
            .wait_for(self.sequence, remaining)
            .await;
        let mut rows: Vec<TaskRow> = self.rows.into_values().collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(rows)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskRequest {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

pub async fn stop(
    gateway: &Gateway,
    caller: &Caller,
    request: StopTaskRequest,
) -> ApiResult<Reply> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    let id = task_id(&cluster, &request.task)?;
    if request.reason.as_ref().is_some_and(|r| r.len() > 255) {
        return Err(ecs::invalid_parameter("reason can be at most 255 characters.").into());
    }
    gateway
        .execute(|| async {
            let task = find_task(gateway, &cluster, &id).await?;
            if task.desired_status == "STOPPED" {
                return Ok(vec![]);
            }
            let event = TaskStopRequested {
                stop_code: "UserInitiated".to_owned(),
                reason: request.reason.clone(),
            };
            Ok(vec![
                Append::new(
                    Aggregate::Task {
                        cluster: cluster.clone(),
                        id: id.clone(),
                    },
                    event,
                    caller.event_meta(),
                )
                .expect(Expect::Version(task.version)),
            ])
        })
        .await?;
    let task = find_task(gateway, &cluster, &id).await?;
    #[derive(Serialize)]
    struct StopTaskAnswer<'a> {
        task: TaskView<'a>,
    }
    let task = render::task(caller, &task, false);
    Ok(Reply::json(&StopTaskAnswer { task })?)
}

async fn find_task(gateway: &Gateway, cluster: &str, id: &str) -> ApiResult<TaskRow> {
    task_queries::get(gateway.tasks_db().await?, cluster, id)
        .await?
        .ok_or_else(|| ecs::invalid_parameter("The referenced task was not found.").into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksRequest {
    cluster: Option<String>,
    tasks: Vec<String>,
    include: Option<Vec<String>>,
}

pub async fn describe(
    gateway: &Gateway,
    caller: &Caller,
    request: DescribeTasksRequest,
) -> ApiResult<Reply> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    if request.tasks.is_empty() || request.tasks.len() > 100 {
        return Err(ecs::invalid_parameter("tasks must name 1 to 100 tasks.").into());
    }
    let include_tags = request
        .include
        .unwrap_or_default()
        .iter()
        .any(|i| i == "TAGS");
    let db = gateway.tasks_db().await?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for reference in &request.tasks {
        let id = task_id(&cluster, reference)?;
        match task_queries::get(db, &cluster, &id).await? {
            Some(row) => rows.push(row),
            None => failures
                .push(json!({ "arn": caller.arns().task(&cluster, &id), "reason": "MISSING" })),
        }
    }
    let tasks = rows
        .iter()
        .map(|row| render::task(caller, row, include_tags))
        .collect();
    Ok(Reply::json(&TasksAnswer { tasks, failures })?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksRequest {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<String>,
    launch_type: Option<String>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

pub async fn list(
    gateway: &Gateway,
    caller: &Caller,
    request: ListTasksRequest,
) -> ApiResult<Value> {
    let cluster = cluster_or_default(request.cluster.as_deref())?;
    active_cluster(gateway, &cluster).await?;
    let page = page_request(request.next_token.as_deref(), request.max_results, 100)?;
    let desired_status = request
        .desired_status
        .unwrap_or_else(|| "RUNNING".to_owned());
    let ids = match desired_status.as_str() {
        // ECS never sets PENDING as a desired status, so it matches nothing.
        "PENDING" => Vec::new(),
        "RUNNING" | "STOPPED" => {
            let filter = TaskFilter {
                container_instance_id: request
                    .container_instance
                    .as_deref()
                    .map(|reference| instance_id(&cluster, reference))
                    .transpose()?,
                family: request.family,
                started_by: request.started_by,
                group: request.service_name.map(|name| format!("service:{name}")),
                desired_status,
                launch_type: request.launch_type,
            };
            task_queries::list(
                gateway.tasks_db().await?,
                gateway.task_indexes(),
                &cluster,
                &filter,
                page.after.as_deref(),
                page.fetch_limit(),
            )
            .await?
        }
        other => {
            return Err(ecs::invalid_parameter(format!(
                "Invalid desiredStatus {other}: expected RUNNING, PENDING or STOPPED."
            ))
            .into());
        }
    };
    let (ids, next_token) = page.finish(ids, Clone::clone);
    let arns: Vec<String> = ids
        .iter()
        .map(|id| caller.arns().task(&cluster, id))
        .collect();
    Ok(render::with_next_token(
        json!({ "taskArns": arns }),
        next_token,
    ))
}

/// A task id from an id or a task ARN of `cluster`.
fn task_id(cluster: &str, reference: &str) -> ApiResult<String> {
    if !reference.starts_with("arn:") {
        return valid_id(reference);
    }
    match arn::parse(reference) {
        Some(Resource::Task { cluster: of, id }) if of == cluster => valid_id(&id),
        _ => Err(ecs::invalid_parameter(format!("Invalid task: {reference}")).into()),
    }
}

/// A container instance id from an id or an ARN of `cluster`.
pub fn instance_id(cluster: &str, reference: &str) -> ApiResult<String> {
    if !reference.starts_with("arn:") {
        return valid_id(reference);
    }
    match arn::parse(reference) {
        Some(Resource::ContainerInstance { cluster: of, id }) if of == cluster => valid_id(&id),
        _ => Err(ecs::invalid_parameter(format!("Invalid container instance: {reference}")).into()),
    }
}

/// Ids are hex and hyphens; anything else cannot name a Berth resource (and must
/// never reach a NATS subject).
fn valid_id(id: &str) -> ApiResult<String> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(AwsError::invalid_parameter(format!("Invalid identifier: {id}")).into());
    }
    Ok(id.to_owned())
}
