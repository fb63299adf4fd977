//! Real-world RegisterTaskDefinition requests that must pass (with the exact stored bodies
//! pinned as golden files), and a table of bad requests with the (kind, message) ECS answers.
//!
//! `BLESS=1 cargo test -p berth-ecs-model --test fixtures` rewrites the golden files; review the
//! diff before keeping it.

use std::fs;
use std::path::{Path, PathBuf};

use berth_ecs_model::{ErrorKind, NetworkMode, task_resources, validate_register_task_definition};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn good_requests() -> Vec<(String, Value)> {
    let mut entries: Vec<_> = fs::read_dir(fixtures().join("good"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, read_json(&p))
        })
        .collect()
}

#[test]
fn good_requests_match_their_golden_bodies() {
    let bless = std::env::var_os("BLESS").is_some();
    let requests = good_requests();
    assert!(requests.len() >= 5);
    for (name, request) in requests {
        let spec = validate_register_task_definition(&request)
            .unwrap_or_else(|e| panic!("{name} was rejected: {e}"));
        let actual = json!({
            "taskDefinition": spec.task_definition,
            "tags": spec.tags,
        });
        let golden = fixtures().join("golden").join(format!("{name}.json"));
        if bless {
            fs::write(
                &golden,
                serde_json::to_string_pretty(&actual).unwrap() + "\n",
            )
            .unwrap();
            continue;
        }
        assert_eq!(
            actual,
            read_json(&golden),
            "{name} differs from its golden file"
        );
    }
}

#[test]
fn stored_bodies_validate_again_to_themselves() {
    // Describe output fed back to Register (a common "new revision" workflow) must be accepted
    // and normalize to the same body.
    for (name, request) in good_requests() {
        let first = validate_register_task_definition(&request).unwrap();
        let mut again = first.task_definition.clone();
        again["tags"] = serde_json::to_value(&first.tags).unwrap();
        let second = validate_register_task_definition(&again)
            .unwrap_or_else(|e| panic!("{name}: stored body rejected: {e}"));
        assert_eq!(first, second, "{name}");
    }
}

#[test]
fn specs_survive_a_serde_round_trip() {
    for (name, request) in good_requests() {
        let spec = validate_register_task_definition(&request).unwrap();
        let text = serde_json::to_string(&spec).unwrap();
        let back: berth_ecs_model::RegisteredTaskDefinitionSpec =
            serde_json::from_str(&text).unwrap();
        assert_eq!(spec, back, "{name}");
    }
}

#[test]
fn good_requests_reserve_what_ecs_would() {
    let expect = |name: &str, cpu: u32, memory: u32, ports: &[(u16, u16)]| {
        let request = read_json(&fixtures().join("good").join(format!("{name}.json")));
        let spec = validate_register_task_definition(&request).unwrap();
        let resources = task_resources(&spec.task_definition, None);
        assert_eq!(
            (resources.cpu_units, resources.memory_mib),
            (cpu, memory),
            "{name}"
        );
        let actual: Vec<(u16, u16)> = resources
            .ports
            .iter()
            .map(|p| (p.host_port, p.container_port))
            .collect();
        assert_eq!(actual, ports, "{name}");
    };
    expect("nginx-bridge", 256, 256, &[(8080, 80)]);
    expect("busybox-sleep", 10, 10, &[]);
    expect("fargate-web", 256, 512, &[]);
    expect("wordpress-links", 20, 500 + 400 + 16, &[(80, 80)]);
    expect("host-mode-exporter", 0, 128, &[(9100, 9100)]);
}

#[test]
fn derived_members() {
    let load = |name: &str| {
        let request = read_json(&fixtures().join("good").join(format!("{name}.json")));
        validate_register_task_definition(&request).unwrap()
    };
    let nginx = load("nginx-bridge");
    assert_eq!(nginx.network_mode(), NetworkMode::Bridge);
    assert!(nginx.task_definition.get("networkMode").is_none());
    assert_eq!(
        nginx.task_definition["compatibilities"],
        json!(["EXTERNAL", "EC2"])
    );
    let fargate = load("fargate-web");
    assert_eq!(
        fargate.task_definition["compatibilities"],
        json!(["EC2", "FARGATE"])
    );
    assert_eq!(fargate.task_definition["cpu"], json!("256"));
    assert_eq!(fargate.task_definition["memory"], json!("512"));
    let names: Vec<&str> = fargate.task_definition["requiresAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for expected in [
        "com.amazonaws.ecs.capability.docker-remote-api.1.18",
        "com.amazonaws.ecs.capability.docker-remote-api.1.19",
        "com.amazonaws.ecs.capability.logging-driver.awslogs",
        "ecs.capability.task-eni",
        "ecs.capability.execution-role-awslogs",
        "ecs.capability.execution-role-ecr-pull",
        "com.amazonaws.ecs.capability.ecr-auth",
        "ecs.capability.secrets.asm.environment-variables",
    ] {
        assert!(names.contains(&expected), "missing {expected} in {names:?}");
    }
    let busybox = load("busybox-sleep");
    assert_eq!(busybox.task_definition["requiresAttributes"], json!([]));
}

#[test]
fn bad_requests_are_rejected_as_ecs_rejects_them() {
    let cases = read_json(&fixtures().join("bad.json"));
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 50);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let kind = match case["kind"].as_str().unwrap() {
            "ClientException" => ErrorKind::ClientException,
            "InvalidParameterException" => ErrorKind::InvalidParameterException,
            other => panic!("{name}: unknown kind {other}"),
        };
        let message = case["message"].as_str().unwrap();
        match validate_register_task_definition(&case["request"]) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(err) if err.kind != kind || err.message != message => failures.push(format!(
                "{name}:\n  expected {kind}: {message}\n  got      {}: {}",
                err.kind, err.message
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn specs_survive_a_messagepack_round_trip() {
    // The event log stores payloads as MessagePack (rmp-serde).
    for (name, request) in good_requests() {
        let spec = validate_register_task_definition(&request).unwrap();
        let bytes = rmp_serde::to_vec_named(&spec).unwrap();
        let back: berth_ecs_model::RegisteredTaskDefinitionSpec =
            rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(spec, back, "{name}");
        let compact = rmp_serde::to_vec(&spec).unwrap();
        let back: berth_ecs_model::RegisteredTaskDefinitionSpec =
            rmp_serde::from_slice(&compact).unwrap();
        assert_eq!(spec, back, "{name}");
    }
}
