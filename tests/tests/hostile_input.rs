//! Hostile input to the task and instance operations: members of the wrong type, huge or
//! empty values, malformed JSON. Every answer must be a 200 or a 400 with an ECS error
//! `__type`, never a 500 or a dropped connection, and Berth must keep serving.
//!
//! The bodies go through the AWS SDK for Rust, replaced after serialization and before
//! signing, so they arrive signed like any client's.

use aws_sdk_ecs::types::ContainerDefinition;
use berth_e2e::{Berth, DriverChoice, error_code, wait_for_instances};
use serde_json::{Value, json};

const OPERATIONS: [&str; 12] = [
    "RunTask",
    "StartTask",
    "StopTask",
    "DescribeTasks",
    "ListTasks",
    "ListContainerInstances",
    "DescribeContainerInstances",
    "UpdateContainerInstancesState",
    "DeregisterContainerInstance",
    "PutAttributes",
    "ListAttributes",
    "DeleteAttributes",
];

const MEMBERS: [&str; 28] = [
    "cluster",
    "taskDefinition",
    "count",
    "tasks",
    "task",
    "containerInstances",
    "containerInstance",
    "status",
    "filter",
    "attributes",
    "targetType",
    "attributeName",
    "placementConstraints",
    "placementStrategy",
    "overrides",
    "group",
    "startedBy",
    "clientToken",
    "family",
    "desiredStatus",
    "maxResults",
    "nextToken",
    "force",
    "reason",
    "tags",
    "include",
    "launchType",
    "serviceName",
];

fn values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(1e308),
        json!(""),
        json!("x".repeat(5000)),
        json!("\u{0}"),
        json!("🙂"),
        json!([]),
        json!([null]),
        json!([{}]),
        json!({}),
        json!({"a": 1}),
        json!(true),
        json!("arn:aws:ecs:us-east-1:0:cluster/"),
        json!([{"type": "memberOf", "expression": "attribute:("}]),
        json!([{"type": "spread"}]),
        json!({"containerOverrides": [{"name": 1}]}),
        json!([{"name": "x".repeat(300), "targetId": "y"}]),
        json!("default"),
        json!("hostile"),
        json!(10),
        json!(11),
        json!(vec!["a"; 200]),
    ]
}

/// Bodies that are not a JSON object at all.
const MALFORMED: [&[u8]; 5] = [b"{", b"[]", b"null", b"\xff\xfe", b"\"just a string\""];

/// xorshift64: the same sequence on every run, so a failure can be replayed.
struct Sequence(u64);

impl Sequence {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// `body` to `operation`, signed. Any operation's builder does: the target and the body
/// are replaced after serialization, before signing.
async fn send(
    ecs: &aws_sdk_ecs::Client,
    operation: &'static str,
    body: Vec<u8>,
) -> Result<
    aws_sdk_ecs::operation::list_clusters::ListClustersOutput,
    aws_sdk_ecs::error::SdkError<aws_sdk_ecs::operation::list_clusters::ListClustersError>,
> {
    ecs.list_clusters()
        .customize()
        .mutate_request(move |request| {
            let headers = request.headers_mut();
            headers.insert(
                "x-amz-target",
                format!("AmazonEC2ContainerServiceV20141113.{operation}"),
            );
            headers.insert("content-length", body.len().to_string());
            *request.body_mut() = body.clone().into();
        })
        .send()
        .await
}

#[tokio::test]
async fn malformed_requests_get_ecs_errors_and_berth_keeps_serving() {
    let berth = Berth::start_with(None, Some(DriverChoice::Sim)).await;
    let ecs = berth.ecs();
    wait_for_instances(&ecs, "default", 1).await;
    ecs.register_task_definition()
        .family("hostile")
        .container_definitions(
            ContainerDefinition::builder()
                .name("main")
                .image("busybox")
                .memory(8)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // The path the hostile bodies take works: a good body through it runs a task.
    send(
        &ecs,
        "RunTask",
        br#"{"taskDefinition": "hostile"}"#.to_vec(),
    )
    .await
    .unwrap();
    let listed = ecs.list_tasks().send().await.unwrap();
    assert_eq!(listed.task_arns().len(), 1);

    let values = values();
    let mut sequence = Sequence(0x9E37_79B9_7F4A_7C15);
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..600 {
        let operation = OPERATIONS[sequence.below(OPERATIONS.len())];
        let body: Vec<u8> = if sequence.below(20) == 0 {
            MALFORMED[sequence.below(MALFORMED.len())].to_vec()
        } else {
            let members = (0..sequence.below(5))
                .map(|_| {
                    let member = MEMBERS[sequence.below(MEMBERS.len())];
                    (
                        member.to_owned(),
                        values[sequence.below(values.len())].clone(),
                    )
                })
                .collect::<serde_json::Map<_, _>>();
            serde_json::to_vec(&members).unwrap()
        };
        let outcome = send(&ecs, operation, body.clone()).await;
        let shown = String::from_utf8_lossy(&body);
        match &outcome {
            Ok(_) => answered += 1,
            Err(error) => {
                let status = error.raw_response().map(|r| r.status().as_u16());
                // A 200 that is not ListClusters' shape is still a 200.
                if status == Some(200) {
                    answered += 1;
                    continue;
                }
                assert_eq!(status, Some(400), "{operation} {shown}: {error:?}");
                assert!(
                    error_code(error).is_some(),
                    "{operation} {shown}: a 400 without __type: {error:?}"
                );
                refused += 1;
            }
        }
    }
    // Both kinds happened, so the test covered something.
    assert!(answered > 0 && refused > answered, "{answered} / {refused}");

    // Still serving, and what was there is still there.
    let described = ecs
        .describe_task_definition()
        .task_definition("hostile")
        .send()
        .await
        .unwrap();
    assert_eq!(described.task_definition().unwrap().revision(), 1);
    berth.stop().await;
}
