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
            definition: json!({
                "family": "web",
                "networkMode": "bridge",
                "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64, "essential": true}]
            }),
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
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: Vec<_> = samples().iter().map(|e| e.event_type()).collect();
    for (event_type, _) in Event::TYPES {
        assert!(sampled.contains(event_type), "no golden sample for {event_type}");
    }
}

#[test]
fn current_versions_match_their_golden_files() {
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    for event in samples() {
        let path = golden_dir().join(format!("{}.v{}.msgpack", event.event_type(), event.version()));
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
