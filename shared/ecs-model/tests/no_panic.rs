//! Whatever JSON a client sends, validation answers with a value or a `ValidationError`, never a
//! panic. Trees are built from real member names so the generator reaches deep validators.

use berth_ecs_model::{task_resources, validate_register_task_definition, validate_task_override};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "family",
    "containerDefinitions",
    "name",
    "image",
    "cpu",
    "memory",
    "memoryReservation",
    "portMappings",
    "containerPort",
    "hostPort",
    "protocol",
    "containerPortRange",
    "essential",
    "links",
    "dependsOn",
    "containerName",
    "condition",
    "healthCheck",
    "command",
    "interval",
    "timeout",
    "retries",
    "startPeriod",
    "volumes",
    "mountPoints",
    "sourceVolume",
    "containerPath",
    "volumesFrom",
    "sourceContainer",
    "networkMode",
    "requiresCompatibilities",
    "ulimits",
    "softLimit",
    "hardLimit",
    "logConfiguration",
    "logDriver",
    "options",
    "environment",
    "value",
    "tags",
    "key",
    "placementConstraints",
    "type",
    "expression",
    "linuxParameters",
    "capabilities",
    "add",
    "tmpfs",
    "size",
    "proxyConfiguration",
    "ephemeralStorage",
    "sizeInGiB",
    "host",
    "sourcePath",
    "dockerVolumeConfiguration",
    "scope",
    "efsVolumeConfiguration",
    "authorizationConfig",
    "containerOverrides",
    "restartPolicy",
    "ignoredExitCodes",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-70_000i64..70_000).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "",
            "web",
            "nginx",
            "awsvpc",
            "bridge",
            "host",
            "none",
            "FARGATE",
            "EC2",
            "EXTERNAL",
            "CMD",
            "CMD-SHELL",
            "START",
            "HEALTHY",
            "SUCCESS",
            "tcp",
            "udp",
            "256",
            "1 vCPU",
            "0.5GB",
            "memberOf",
            "shared",
            "task",
            "nofile",
            "awslogs",
            "1000-2000",
            "aws:x",
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_requests_never_panic(request in tree()) {
        if let Ok(spec) = validate_register_task_definition(&request) {
            let _ = task_resources(&spec.task_definition, Some(&request));
        }
        let _ = task_resources(&request, Some(&request));
    }

    #[test]
    fn mutated_valid_requests_never_panic(
        key in prop::sample::select(KEYS),
        value in tree(),
        container_level in any::<bool>(),
    ) {
        let mut request = json!({
            "family": "web",
            "containerDefinitions": [{
                "name": "app", "image": "nginx", "memory": 128,
                "portMappings": [{"containerPort": 80}],
                "healthCheck": {"command": ["CMD", "true"]}
            }],
            "volumes": [{"name": "data"}]
        });
        let target = if container_level {
            &mut request["containerDefinitions"][0]
        } else {
            &mut request
        };
        target[key] = value.clone();
        if let Ok(spec) = validate_register_task_definition(&request) {
            let overrides = json!({"containerOverrides": [{"name": "app", key: value}]});
            if validate_task_override(&overrides, &spec.task_definition).is_ok() {
                let _ = task_resources(&spec.task_definition, Some(&overrides));
            }
        }
    }
}
