//! Golden files: the MessagePack payload of every event type at every version.
//!
//! A golden file is written once (`BERTH_BLESS=1 cargo test -p berth-events`) and
//! never edited: it proves that payloads already in someone's log stay readable.

use std::path::PathBuf;

use berth_events::*;
use serde_json::json;

fn samples() -> Vec<Event> {
    vec![
        ClusterCreated {
            name: "prod".into(),
            settings: vec![ClusterSetting {
                name: "containerInsights".into(),
                value: "enabled".into(),
            }],
            configuration: Some(json!({"executeCommandConfiguration": {"logging": "DEFAULT"}})),
            service_connect_defaults: None,
            capacity_providers: vec![],
            default_capacity_provider_strategy: vec![],
            tags: vec![Tag {
                key: "team".into(),
                value: "web".into(),
            }],
        }
        .into(),
        ClusterUpdated {
            settings: Some(vec![ClusterSetting {
                name: "containerInsights".into(),
                value: "disabled".into(),
            }]),
            configuration: None,
            service_connect_defaults: Some(json!({"namespace": "local"})),
        }
        .into(),
        ClusterDeleted {}.into(),
        TaskDefinitionRegistered {
            family: "web".into(),
            revision: 3,
            definition: JsonText::from_value(&json!({
                "family": "web",
                "networkMode": "bridge",
                "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64, "essential": true}]
            })),
            tags: vec![],
            registered_by: Some("arn:aws:iam::000000000000:root".into()),
        }
        .into(),
        TaskDefinitionDeregistered { revision: 3 }.into(),
        TaskDefinitionDeleted { revision: 3 }.into(),
        ResourceTagged {
            resource_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/prod".into(),
            tags: vec![Tag {
                key: "env".into(),
                value: "prod".into(),
            }],
        }
        .into(),
        ResourceUntagged {
            resource_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/prod".into(),
            tag_keys: vec!["env".into()],
        }
        .into(),
        ContainerInstanceRegistered {
            instance_id: "0b6c1f0e-3a1d-4c35-9f57-1d0d6f0c2a11".into(),
            ec2_instance_id: "host-a".into(),
            resources: InstanceResources {
                cpu_units: 2048,
                memory_mib: 3900,
                reserved_tcp_ports: vec![22, 2375],
                reserved_udp_ports: vec![],
            },
            attributes: vec![Attribute {
                name: "ecs.availability-zone".into(),
                value: Some("zone-a".into()),
            }],
            agent_version: "0.1.0".into(),
            driver: "process".into(),
        }
        .into(),
        ContainerInstanceStatusChanged {
            status: "DRAINING".into(),
        }
        .into(),
        ContainerInstanceDeregistered { force: true }.into(),
        AgentConnected {
            gateway_id: "agent-gateway-1".into(),
        }
        .into(),
        AgentDisconnected {
            reason: "heartbeat timeout".into(),
        }
        .into(),
        AttributesPut {
            attributes: vec![Attribute {
                name: "stack".into(),
                value: Some("prod".into()),
            }],
        }
        .into(),
        AttributesDeleted {
            names: vec!["stack".into()],
        }
        .into(),
        TaskRequested {
            family: "web".into(),
            revision: 3,
            definition: JsonText::from_value(&json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]})),
            overrides: Some(json!({"containerOverrides": [{"name": "app", "command": ["sleep", "5"]}]})),
            cpu_units: 128,
            memory_mib: 64,
            ports: vec![PortRequest {
                container_name: "app".into(),
                container_port: 80,
                host_port: 0,
                protocol: "tcp".into(),
            }],
            constraints: vec![Constraint {
                kind: "memberOf".into(),
                expression: Some("attribute:ecs.os-type == linux".into()),
            }],
            strategy: vec![Strategy {
                kind: "binpack".into(),
                field: Some("memory".into()),
            }],
            target_instances: vec![],
            group: "family:web".into(),
            started_by: Some("me".into()),
            launch_type: "EC2".into(),
            tags: vec![],
            request_id: "0192f0a6-0000-7000-8000-000000000000".into(),
        }
        .into(),
        TaskPlaced {
            container_instance_id: "0b6c1f0e-3a1d-4c35-9f57-1d0d6f0c2a11".into(),
            cpu_units: 128,
            memory_mib: 64,
            ports: vec![PortAssignment {
                container_name: "app".into(),
                container_port: 80,
                host_port: 49153,
                protocol: "tcp".into(),
                bind_ip: None,
            }],
        }
        .into(),
        TaskPlacementFailed {
            failures: vec![PlacementFailure {
                container_instance_id: Some("0b6c1f0e-3a1d-4c35-9f57-1d0d6f0c2a11".into()),
                reason: "RESOURCE:MEMORY".into(),
                detail: None,
            }],
        }
        .into(),
        TaskStopRequested {
            stop_code: "UserInitiated".into(),
            reason: Some("done".into()),
        }
        .into(),
        TaskStateReported {
            last_status: "STOPPED".into(),
            containers: vec![ContainerState {
                name: "app".into(),
                runtime_id: Some("4242".into()),
                last_status: "STOPPED".into(),
                exit_code: Some(0),
                reason: None,
                network_bindings: vec![],
                health_status: Some("UNKNOWN".into()),
            }],
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            health_status: None,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: Some(1_790_000_000_000),
            stopped_at: Some(1_790_000_005_000),
        }
        .into(),
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: Vec<_> = samples().iter().map(|e| e.event_type()).collect();
    for (event_type, _) in Event::TYPES {
        assert!(
            sampled.contains(event_type),
            "no golden sample for {event_type}"
        );
    }
}

#[test]
fn current_versions_match_their_golden_files() {
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    for event in samples() {
        let path = golden_dir().join(format!(
            "{}.v{}.msgpack",
            event.event_type(),
            event.version()
        ));
        let encoded = event.encode().expect("encode");
        if bless && !path.exists() {
            std::fs::write(&path, &encoded).expect("write golden file");
        }
        let golden = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with BERTH_BLESS=1 once)", path.display()));
        assert_eq!(encoded, golden, "{} changed its encoding", path.display());
    }
}

#[test]
fn every_golden_file_still_decodes() {
    let samples = samples();
    let mut seen = 0;
    for entry in std::fs::read_dir(golden_dir()).expect("golden dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some((event_type, version)) = name
            .strip_suffix(".msgpack")
            .and_then(|stem| stem.rsplit_once(".v"))
        else {
            continue;
        };
        let version: u16 = version.parse().expect("version");
        let payload = std::fs::read(&path).expect("read");
        let decoded = Event::decode(event_type, version, &payload)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: unknown event type"));
        let current = samples
            .iter()
            .find(|e| e.event_type() == event_type)
            .expect("sample");
        if version == current.version() {
            assert_eq!(&decoded, current, "{name}");
        }
        seen += 1;
    }
    assert!(seen >= Event::TYPES.len());
}

#[test]
fn unknown_types_are_skipped_and_future_versions_refused() {
    assert!(Event::decode("SomethingNew", 1, &[0x80]).unwrap().is_none());
    assert!(matches!(
        Event::decode("ClusterDeleted", 99, &[0x80]),
        Err(CodecError::FutureVersion { .. })
    ));
    assert!(Event::decode("ClusterCreated", 1, b"garbage").is_err());
}
