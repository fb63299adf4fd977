//! Round-trip and golden-file tests for every frame.
//!
//! Each frame type has one golden JSON file under `tests/golden/`. The files are the contract with
//! the other side: a change that alters one of them is a wire change. Run with `BLESS=1` to rewrite
//! them after an intended change (and review the diff).

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_agent_protocol::*;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"))
}

/// Checks that `value` encodes to the golden file's JSON (compared as JSON values, so formatting is
/// free) and that the golden file decodes back to `value`.
fn check_golden<T>(name: &str, value: &T, encode: impl Fn(&T) -> String, decode: impl Fn(&str) -> T)
where
    T: std::fmt::Debug + PartialEq + serde::Serialize,
{
    let path = golden_path(name);
    let encoded = encode(value);
    let encoded_value: serde_json::Value = serde_json::from_str(&encoded).expect("encoded is json");
    if std::env::var_os("BLESS").is_some() {
        // Pretty-printed from the value itself so the file keeps field order (`type` first).
        let pretty = serde_json::to_string_pretty(value).expect("pretty");
        std::fs::write(&path, pretty + "\n").expect("write golden");
    }
    let golden_text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create)", path.display()));
    let golden_value: serde_json::Value =
        serde_json::from_str(&golden_text).expect("golden is json");
    assert_eq!(
        encoded_value, golden_value,
        "{name}: encoding differs from golden file"
    );
    assert_eq!(
        &decode(&golden_text),
        value,
        "{name}: golden file decodes differently"
    );
    // And a plain round trip through the compact encoding.
    assert_eq!(&decode(&encoded), value, "{name}: round trip");
}

fn agent(name: &str, frame: AgentFrame) {
    assert_eq!(frame.type_name(), name);
    check_golden(
        name,
        &frame,
        |f| f.to_json().expect("encode"),
        |t| AgentFrame::from_json(t).expect("decode"),
    );
}

fn gateway(name: &str, frame: GatewayFrame) {
    assert_eq!(frame.type_name(), name);
    check_golden(
        name,
        &frame,
        |f| f.to_json().expect("encode"),
        |t| GatewayFrame::from_json(t).expect("decode"),
    );
}

const TASK_ARN: &str =
    "arn:aws:ecs:us-east-1:000000000000:task/default/0190d1a6c8f07b3e9d2c4a5b6c7d8e9f";

fn containers() -> Vec<ContainerStateChange> {
    vec![
        ContainerStateChange {
            name: "web".into(),
            runtime_id: Some("4f1c2b3a".into()),
            status: TaskStatus::Running,
            exit_code: None,
            reason: None,
            network_bindings: vec![NetworkBinding {
                bind_ip: "0.0.0.0".into(),
                container_port: 80,
                host_port: 32768,
                protocol: TransportProtocol::Tcp,
            }],
            health_status: HealthStatus::Healthy,
        },
        ContainerStateChange {
            name: "sidecar".into(),
            runtime_id: Some("9a8b7c6d".into()),
            status: TaskStatus::Stopped,
            exit_code: Some(0),
            reason: None,
            network_bindings: vec![],
            health_status: HealthStatus::Unknown,
        },
    ]
}

#[test]
fn register_instance() {
    let mut attributes = BTreeMap::new();
    attributes.insert("ecs.os-type".to_string(), "linux".to_string());
    attributes.insert("stack".to_string(), "blue".to_string());
    agent(
        "RegisterInstance",
        AgentFrame::RegisterInstance(RegisterInstance {
            cluster: "default".into(),
            token: "s3cret".into(),
            instance_id: Some("0190d1a6-0000-7000-8000-000000000001".into()),
            resources: Resources {
                cpu_units: 4096,
                memory_mib: 15_872,
                reserved_tcp_ports: vec![22, 2375, 2376, 51678, 51679],
                reserved_udp_ports: vec![],
            },
            attributes,
            agent_version: "0.1.0".into(),
            driver: DriverKind::Docker,
        }),
    );
}

#[test]
fn heartbeat_ack() {
    agent(
        "HeartbeatAck",
        AgentFrame::HeartbeatAck(HeartbeatAck {
            message_id: "hb-17".into(),
        }),
    );
}

#[test]
fn ack() {
    agent(
        "Ack",
        AgentFrame::Ack(Ack {
            message_id: "payload-3".into(),
        }),
    );
}

#[test]
fn task_state_change() {
    agent(
        "TaskStateChange",
        AgentFrame::TaskStateChange(TaskStateChange {
            task: TaskSnapshot {
                task_arn: TASK_ARN.into(),
                status: TaskStatus::Stopped,
                reason: Some("Essential container in task exited".into()),
                stop_code: Some(TaskStopCode::EssentialContainerExited),
                containers: containers(),
                pulled_at: Some(EpochMillis(1_720_000_000_000)),
                started_at: Some(EpochMillis(1_720_000_001_000)),
                stopped_at: Some(EpochMillis(1_720_000_060_000)),
            },
            seq: 42,
        }),
    );
}

#[test]
fn state_report() {
    agent(
        "StateReport",
        AgentFrame::StateReport(StateReport {
            running: vec![TaskSnapshot {
                task_arn: TASK_ARN.into(),
                status: TaskStatus::Running,
                reason: None,
                stop_code: None,
                containers: containers(),
                pulled_at: Some(EpochMillis(1_720_000_000_000)),
                started_at: Some(EpochMillis(1_720_000_001_000)),
                stopped_at: None,
            }],
        }),
    );
}

#[test]
fn registered() {
    gateway(
        "Registered",
        GatewayFrame::Registered(Registered {
            instance_arn: "arn:aws:ecs:us-east-1:000000000000:container-instance/default/0190d1a6-0000-7000-8000-000000000001".into(),
            instance_id: "0190d1a6-0000-7000-8000-000000000001".into(),
        }),
    );
}

#[test]
fn registration_refused() {
    gateway(
        "RegistrationRefused",
        GatewayFrame::RegistrationRefused(RegistrationRefused {
            reason: "invalid token".into(),
        }),
    );
}

#[test]
fn payload_message() {
    let mut environment = BTreeMap::new();
    environment.insert("MODE".to_string(), "production".to_string());
    gateway(
        "PayloadMessage",
        GatewayFrame::PayloadMessage(PayloadMessage {
            message_id: "payload-3".into(),
            tasks: vec![
                TaskPayload {
                    arn: TASK_ARN.into(),
                    family: "web".into(),
                    revision: 7,
                    desired_status: DesiredStatus::Running,
                    network_mode: NetworkMode::Bridge,
                    containers: vec![ContainerSpec {
                        name: "web".into(),
                        image: "nginx:1.27".into(),
                        cpu: 256,
                        memory: Some(512),
                        memory_reservation: Some(256),
                        essential: true,
                        entry_point: Some(vec!["/docker-entrypoint.sh".into()]),
                        command: Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()]),
                        environment,
                        port_mappings: vec![
                            PortMapping { container_port: 80, host_port: 8080, protocol: TransportProtocol::Tcp },
                            PortMapping { container_port: 53, host_port: 32769, protocol: TransportProtocol::Udp },
                        ],
                        health_check: Some(HealthCheck {
                            command: vec!["CMD-SHELL".into(), "curl -f http://localhost/ || exit 1".into()],
                            interval: 30,
                            timeout: 5,
                            retries: 3,
                            start_period: 10,
                        }),
                        working_directory: Some("/usr/share/nginx".into()),
                        stop_timeout: Some(10),
                    }],
                    stop_reason: None,
                },
                TaskPayload {
                    arn: "arn:aws:ecs:us-east-1:000000000000:task/default/0190d1a6c8f07b3e9d2c4a5b6c7d8eaa".into(),
                    family: "batch".into(),
                    revision: 1,
                    desired_status: DesiredStatus::Stopped,
                    network_mode: NetworkMode::Host,
                    containers: vec![],
                    stop_reason: Some("Scaling activity initiated by deployment".into()),
                },
            ],
        }),
    );
}

#[test]
fn heartbeat_message() {
    gateway(
        "HeartbeatMessage",
        GatewayFrame::HeartbeatMessage(HeartbeatMessage {
            message_id: "hb-17".into(),
        }),
    );
}

#[test]
fn task_state_ack() {
    gateway(
        "TaskStateAck",
        GatewayFrame::TaskStateAck(TaskStateAck { seq: 42 }),
    );
}

#[test]
fn close_message() {
    gateway(
        "CloseMessage",
        GatewayFrame::CloseMessage(CloseMessage {
            reason: "heartbeat acks missing".into(),
        }),
    );
}

/// Absent optional fields take the ECS defaults: essential true, tcp, bridge, health check timings.
#[test]
fn minimal_payload_takes_defaults() {
    let text = r#"{"type":"PayloadMessage","message":{"messageId":"m1","tasks":[
        {"arn":"arn:aws:ecs:r:1:task/c/t1","family":"f","revision":1,"desiredStatus":"RUNNING",
         "containers":[{"name":"app","image":"busybox","portMappings":[{"containerPort":80,"hostPort":8080}],
                        "healthCheck":{"command":["CMD","true"]}}]}]}}"#;
    let GatewayFrame::PayloadMessage(payload) = GatewayFrame::from_json(text).expect("decode")
    else {
        panic!("wrong frame");
    };
    let task = &payload.tasks[0];
    assert_eq!(task.network_mode, NetworkMode::Bridge);
    let container = &task.containers[0];
    assert!(container.essential);
    assert_eq!(container.cpu, 0);
    assert_eq!(container.port_mappings[0].protocol, TransportProtocol::Tcp);
    let check = container.health_check.as_ref().expect("health check");
    assert_eq!(
        (
            check.interval,
            check.timeout,
            check.retries,
            check.start_period
        ),
        (30, 5, 3, 0)
    );
}

#[test]
fn snapshot_and_change_convert_both_ways() {
    let snapshot = TaskSnapshot {
        task_arn: TASK_ARN.into(),
        status: TaskStatus::Pending,
        reason: None,
        stop_code: None,
        containers: containers(),
        pulled_at: None,
        started_at: None,
        stopped_at: None,
    };
    let change = snapshot.clone().into_state_change(7);
    assert_eq!(change.seq, 7);
    assert_eq!(change.into_snapshot(), snapshot);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for text in [
        "",
        "not json",
        "[]",
        r#"{"type":"Nope","message":{}}"#,
        r#"{"type":"Ack"}"#,
        r#"{"type":"Ack","message":{"messageId":5}}"#,
        r#"{"type":"TaskStateChange","message":{"taskArn":"a","status":"BOGUS","seq":1}}"#,
        r#"{"type":"TaskStateChange","message":{"taskArn":"a","status":"RUNNING","seq":-1}}"#,
        r#"{"type":"HeartbeatMessage","message":{"messageId":"x"}}"#, // wrong direction
    ] {
        assert!(AgentFrame::from_json(text).is_err(), "accepted {text:?}");
    }
    for text in [
        r#"{"type":"PayloadMessage","message":{"messageId":"m","tasks":[{"arn":"a"}]}}"#,
        r#"{"type":"PayloadMessage","message":{"messageId":"m","tasks":[{"arn":"a","family":"f","revision":1,"desiredStatus":"PENDING"}]}}"#,
        r#"{"type":"TaskStateAck","message":{"seq":"1"}}"#,
        r#"{"type":"Ack","message":{"messageId":"x"}}"#, // wrong direction
    ] {
        assert!(GatewayFrame::from_json(text).is_err(), "accepted {text:?}");
    }
}

#[test]
fn debug_hides_the_token() {
    let frame = RegisterInstance {
        cluster: "c".into(),
        token: "topsecret".into(),
        instance_id: None,
        resources: Resources {
            cpu_units: 1024,
            memory_mib: 1024,
            reserved_tcp_ports: vec![],
            reserved_udp_ports: vec![],
        },
        attributes: BTreeMap::new(),
        agent_version: "0.1.0".into(),
        driver: DriverKind::Process,
    };
    assert!(!format!("{frame:?}").contains("topsecret"));
}
