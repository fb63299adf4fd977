//! ECS operations: one module per resource, one function per operation.
//!
//! Every write follows the same recipe through [`Gateway::execute`]: validate the
//! request, read the aggregate from the read model, decide the events, append them
//! conditionally on the version read, and answer from the read model once it shows
//! the write.

mod attributes;
mod clusters;
mod container_instances;
mod pagination;
mod tags;
mod task_definitions;
mod tasks;

use berth_aws_protocol::{AwsError, Reply};
use serde::de::DeserializeOwned;

use crate::error::ApiResult;
use crate::gateway::{Caller, Gateway};

/// Every operation in the ECS model (botocore `ecs-2014-11-13`): the ones Berth does
/// not implement yet answer with an error naming them.
pub const ECS_OPERATIONS: &[&str] = &[
    "ContinueServiceDeployment",
    "CreateCapacityProvider",
    "CreateCluster",
    "CreateDaemon",
    "CreateExpressGatewayService",
    "CreateService",
    "CreateTaskSet",
    "DeleteAccountSetting",
    "DeleteAttributes",
    "DeleteCapacityProvider",
    "DeleteCluster",
    "DeleteDaemon",
    "DeleteDaemonTaskDefinition",
    "DeleteExpressGatewayService",
    "DeleteService",
    "DeleteTaskDefinitions",
    "DeleteTaskSet",
    "DeregisterContainerInstance",
    "DeregisterTaskDefinition",
    "DescribeCapacityProviders",
    "DescribeClusters",
    "DescribeContainerInstances",
    "DescribeDaemon",
    "DescribeDaemonDeployments",
    "DescribeDaemonRevisions",
    "DescribeDaemonTaskDefinition",
    "DescribeExpressGatewayService",
    "DescribeServiceDeployments",
    "DescribeServiceRevisions",
    "DescribeServices",
    "DescribeTaskDefinition",
    "DescribeTaskSets",
    "DescribeTasks",
    "DiscoverPollEndpoint",
    "ExecuteCommand",
    "GetTaskProtection",
    "ListAccountSettings",
    "ListAttributes",
    "ListClusters",
    "ListContainerInstances",
    "ListDaemonDeployments",
    "ListDaemonTaskDefinitions",
    "ListDaemons",
    "ListServiceDeployments",
    "ListServices",
    "ListServicesByNamespace",
    "ListTagsForResource",
    "ListTaskDefinitionFamilies",
    "ListTaskDefinitions",
    "ListTasks",
    "PutAccountSetting",
    "PutAccountSettingDefault",
    "PutAttributes",
    "PutClusterCapacityProviders",
    "RegisterContainerInstance",
    "RegisterDaemonTaskDefinition",
    "RegisterTaskDefinition",
    "RunTask",
    "StartTask",
    "StopServiceDeployment",
    "StopTask",
    "SubmitAttachmentStateChanges",
    "SubmitContainerStateChange",
    "SubmitTaskStateChange",
    "TagResource",
    "UntagResource",
    "UpdateCapacityProvider",
    "UpdateCluster",
    "UpdateClusterSettings",
    "UpdateContainerAgent",
    "UpdateContainerInstancesState",
    "UpdateDaemon",
    "UpdateExpressGatewayService",
    "UpdateService",
    "UpdateServicePrimaryTaskSet",
    "UpdateTaskProtection",
    "UpdateTaskSet",
];

/// Runs one ECS operation.
pub async fn dispatch(
    gateway: &Gateway,
    caller: &Caller,
    operation: &str,
    body: &[u8],
) -> ApiResult<Reply> {
    // The task operations serialize their answers themselves (see `render::TaskView`); the
    // others answer with a JSON value.
    let answer = match operation {
        "RunTask" => return tasks::run(gateway, caller, parse(body)?).await,
        "StartTask" => return tasks::start(gateway, caller, parse(body)?).await,
        "StopTask" => return tasks::stop(gateway, caller, parse(body)?).await,
        "DescribeTasks" => return tasks::describe(gateway, caller, parse(body)?).await,
        "CreateCluster" => clusters::create(gateway, caller, parse(body)?).await,
        "DescribeClusters" => clusters::describe(gateway, caller, parse(body)?).await,
        "ListClusters" => clusters::list(gateway, caller, parse(body)?).await,
        "UpdateCluster" => clusters::update(gateway, caller, parse(body)?).await,
        "UpdateClusterSettings" => clusters::update_settings(gateway, caller, parse(body)?).await,
        "DeleteCluster" => clusters::delete(gateway, caller, parse(body)?).await,
        "RegisterTaskDefinition" => task_definitions::register(gateway, caller, parse(body)?).await,
        "DescribeTaskDefinition" => task_definitions::describe(gateway, caller, parse(body)?).await,
        "ListTaskDefinitions" => task_definitions::list(gateway, caller, parse(body)?).await,
        "ListTaskDefinitionFamilies" => {
            task_definitions::list_families(gateway, caller, parse(body)?).await
        }
        "DeregisterTaskDefinition" => {
            task_definitions::deregister(gateway, caller, parse(body)?).await
        }
        "DeleteTaskDefinitions" => task_definitions::delete(gateway, caller, parse(body)?).await,
        "ListTasks" => tasks::list(gateway, caller, parse(body)?).await,
        "ListContainerInstances" => container_instances::list(gateway, caller, parse(body)?).await,
        "DescribeContainerInstances" => {
            container_instances::describe(gateway, caller, parse(body)?).await
        }
        "UpdateContainerInstancesState" => {
            container_instances::update_state(gateway, caller, parse(body)?).await
        }
        "DeregisterContainerInstance" => {
            container_instances::deregister(gateway, caller, parse(body)?).await
        }
        "PutAttributes" => attributes::put(gateway, caller, parse(body)?).await,
        "DeleteAttributes" => attributes::delete(gateway, caller, parse(body)?).await,
        "ListAttributes" => attributes::list(gateway, caller, parse(body)?).await,
        "TagResource" => tags::tag(gateway, caller, parse(body)?).await,
        "UntagResource" => tags::untag(gateway, caller, parse(body)?).await,
        "ListTagsForResource" => tags::list(gateway, caller, parse(body)?).await,
        known if ECS_OPERATIONS.contains(&known) => Err(AwsError::not_implemented(known).into()),
        unknown => Err(AwsError::unknown_operation(format!(
            "Operation {unknown} is not an Amazon ECS operation."
        ))
        .into()),
    };
    answer.map(Reply::Json)
}

/// Decodes a request body; bad JSON or wrong member types are a 400
/// SerializationException naming the member, never a panic.
fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    Ok(berth_aws_protocol::json::decode(body)?)
}

/// `cluster` request members default to the cluster named `default`, as in ECS.
fn cluster_or_default(cluster: Option<&str>) -> ApiResult<String> {
    let Some(cluster) = cluster else {
        return Ok("default".to_owned());
    };
    crate::arn::cluster_name(cluster).ok_or_else(|| {
        crate::error::ecs::invalid_parameter(format!("Invalid cluster: {cluster}")).into()
    })
}
