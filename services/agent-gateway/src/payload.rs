//! What the agent is handed for a task: the container definitions as the ECS agent would run
//! them, with the RunTask container overrides applied and the host ports the scheduler chose.
//!
//! The definition was validated when it was registered, so values that do not parse are left
//! out rather than refused: a payload is always produced and the agent reports what happens.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use berth_agent_protocol::{
    ContainerSpec, DesiredStatus, HealthCheck, NetworkMode, PortMapping, TaskPayload,
    TransportProtocol,
};
use berth_events::PortAssignment;
use foldhash::HashMap;
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::warn;

use crate::read_model::tasks::TaskRow;

/// Task definitions parsed once per distinct text: every task of a revision carries the
/// same definition, and parsing it again for each task's payload showed in the gateway's
/// profile (1.4% of the control plane's CPU under load).
#[derive(Debug, Default)]
pub(crate) struct ParsedDefinitions(Mutex<HashMap<Box<str>, Arc<Value>>>);

impl ParsedDefinitions {
    /// Distinct definitions kept; a gateway serves a handful of live revisions.
    const KEPT: usize = 256;

    /// The definition parsed (`null` when unreadable, which leaves its fields out).
    fn parsed(&self, definition: &RawValue) -> Arc<Value> {
        let text = definition.get();
        if let Some(parsed) = self.lock().get(text) {
            return parsed.clone();
        }
        let parsed = Arc::new(parse(Some(definition)));
        let mut kept = self.lock();
        if kept.len() >= Self::KEPT {
            kept.clear();
        }
        kept.insert(text.into(), parsed.clone());
        parsed
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Arc<Value>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The payload that brings the agent to `desired` for `task`.
pub(crate) fn task_payload(
    arn: String,
    task: &TaskRow,
    desired: DesiredStatus,
    definitions: &ParsedDefinitions,
) -> TaskPayload {
    let (network_mode, containers) = match &task.spec {
        Some(spec) => {
            let definition = definitions.parsed(&spec.definition);
            let overrides = parse(spec.overrides.as_deref());
            (
                network_mode(&definition),
                containers(&definition, &overrides, &spec.ports),
            )
        }
        None => (NetworkMode::default(), Vec::new()),
    };
    TaskPayload {
        arn,
        family: task.family.clone(),
        revision: task.revision,
        desired_status: desired,
        network_mode,
        containers,
        stop_reason: match desired {
            DesiredStatus::Stopped => task.stop_reason.clone(),
            DesiredStatus::Running => None,
        },
    }
}

/// A stop for a task the control plane does not want on this instance, known or not.
pub(crate) fn stop_payload(arn: String, task: Option<&TaskRow>, reason: String) -> TaskPayload {
    TaskPayload {
        arn,
        family: task.map(|t| t.family.clone()).unwrap_or_default(),
        revision: task.map_or(0, |t| t.revision),
        desired_status: DesiredStatus::Stopped,
        network_mode: NetworkMode::default(),
        containers: Vec::new(),
        stop_reason: Some(reason),
    }
}

fn network_mode(definition: &Value) -> NetworkMode {
    match definition.get("networkMode").and_then(Value::as_str) {
        Some("host") => NetworkMode::Host,
        Some("none") => NetworkMode::None,
        Some("awsvpc") => NetworkMode::Awsvpc,
        _ => NetworkMode::Bridge,
    }
}

/// A stored document (`null` when absent or unreadable, which leaves its fields out).
fn parse(document: Option<&RawValue>) -> Value {
    document
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null)
}

fn containers(
    definition: &Value,
    overrides: &Value,
    ports: &[PortAssignment],
) -> Vec<ContainerSpec> {
    let mode = network_mode(definition);
    let definitions = definition
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let overrides = overrides
        .get("containerOverrides")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    definitions
        .iter()
        .filter_map(|definition| {
            let name = definition.get("name").and_then(Value::as_str)?;
            // The last override naming the container wins, as in the scheduler's accounting.
            let container_override = overrides
                .iter()
                .rev()
                .find(|o| o.get("name").and_then(Value::as_str) == Some(name));
            Some(container(name, definition, container_override, ports, mode))
        })
        .collect()
}

fn container(
    name: &str,
    definition: &Value,
    container_override: Option<&Value>,
    ports: &[PortAssignment],
    mode: NetworkMode,
) -> ContainerSpec {
    let overridden = |key: &str| container_override.and_then(|o| o.get(key));
    let value = |key: &str| overridden(key).or_else(|| definition.get(key));
    let mut spec = ContainerSpec::new(
        name,
        definition
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    spec.cpu = value("cpu").and_then(as_u32).unwrap_or(0);
    spec.memory = value("memory").and_then(as_u32);
    spec.memory_reservation = value("memoryReservation").and_then(as_u32);
    spec.essential = definition
        .get("essential")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    spec.entry_point = definition.get("entryPoint").and_then(strings);
    spec.command = value("command").and_then(strings);
    spec.environment = environment(definition.get("environment"));
    // Override variables are added to the definition's, replacing those of the same name.
    spec.environment
        .extend(environment(overridden("environment")));
    spec.port_mappings = port_mappings(name, definition, ports, mode);
    spec.health_check = definition.get("healthCheck").and_then(health_check);
    spec.working_directory = definition
        .get("workingDirectory")
        .and_then(Value::as_str)
        .map(str::to_owned);
    spec.stop_timeout = definition.get("stopTimeout").and_then(as_u32);
    spec
}

fn as_u32(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// `[{"name": .., "value": ..}]` as a map; entries without a name are dropped.
fn environment(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|pair| {
            let name = pair.get("name")?.as_str()?;
            let value = pair.get("value").and_then(Value::as_str).unwrap_or("");
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The definition's port mappings with host ports filled in: the scheduler's assignment when
/// there is one, else the fixed `hostPort`, else (host and awsvpc modes) the container port.
fn port_mappings(
    name: &str,
    definition: &Value,
    ports: &[PortAssignment],
    mode: NetworkMode,
) -> Vec<PortMapping> {
    let mappings = definition
        .get("portMappings")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    mappings
        .iter()
        .filter_map(|mapping| {
            let container_port = mapping
                .get("containerPort")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())?;
            let protocol = match mapping.get("protocol").and_then(Value::as_str) {
                Some("udp") => TransportProtocol::Udp,
                _ => TransportProtocol::Tcp,
            };
            let assigned = ports.iter().find(|p| {
                p.container_name == name
                    && p.container_port == container_port
                    && p.protocol.eq_ignore_ascii_case(protocol.as_str())
            });
            let fixed = mapping
                .get("hostPort")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0);
            let host_port = match (assigned, mode) {
                (Some(assigned), _) => assigned.host_port,
                (None, NetworkMode::Host | NetworkMode::Awsvpc) => container_port,
                (None, _) => match fixed {
                    Some(port) => port,
                    None => {
                        warn!(
                            container = name,
                            container_port, "no host port was assigned; port not published"
                        );
                        return None;
                    }
                },
            };
            Some(PortMapping {
                container_port,
                host_port,
                protocol,
            })
        })
        .collect()
}

fn health_check(value: &Value) -> Option<HealthCheck> {
    let seconds = |key: &str, default: u32| value.get(key).and_then(as_u32).unwrap_or(default);
    Some(HealthCheck {
        command: value.get("command").and_then(strings)?,
        interval: seconds("interval", 30),
        timeout: seconds("timeout", 5),
        retries: seconds("retries", 3),
        start_period: seconds("startPeriod", 0),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::read_model::tasks::{RUNNING, TaskSpec};

    fn task(definition: Value, overrides: Option<Value>, ports: Vec<PortAssignment>) -> TaskRow {
        TaskRow {
            id: "t1".into(),
            cluster: "default".into(),
            instance_id: Some("i1".into()),
            family: "web".into(),
            revision: 3,
            spec: Some(TaskSpec {
                definition: serde_json::value::to_raw_value(&definition).expect("raw"),
                overrides: overrides.map(|o| serde_json::value::to_raw_value(&o).expect("raw")),
                ports,
            }),
            desired: RUNNING.into(),
            stop_reason: None,
            last_status: None,
            correlation: None,
            version: 1,
            acked: None,
        }
    }

    #[test]
    fn definitions_become_container_specs_with_overrides_and_ports() {
        let definition = json!({
            "family": "web",
            "networkMode": "bridge",
            "containerDefinitions": [{
                "name": "app",
                "image": "busybox:1.36",
                "cpu": 256,
                "memory": 128,
                "memoryReservation": 64,
                "essential": true,
                "entryPoint": ["sh", "-c"],
                "command": ["sleep 100"],
                "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "portMappings": [
                    {"containerPort": 80, "hostPort": 0, "protocol": "tcp"},
                    {"containerPort": 53, "hostPort": 5353, "protocol": "udp"}
                ],
                "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 10},
                "workingDirectory": "/srv",
                "stopTimeout": 5
            }, {
                "name": "sidecar",
                "image": "busybox",
                "essential": false
            }]
        });
        let overrides = json!({"containerOverrides": [{
            "name": "app",
            "command": ["sleep 5"],
            "environment": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
            "cpu": 512,
            "memory": 256
        }]});
        let ports = vec![PortAssignment {
            container_name: "app".into(),
            container_port: 80,
            host_port: 32768,
            protocol: "tcp".into(),
            bind_ip: None,
        }];
        let payload = task_payload(
            "arn:aws:ecs:us-east-1:0:task/default/t1".into(),
            &task(definition, Some(overrides), ports),
            DesiredStatus::Running,
            &ParsedDefinitions::default(),
        );
        assert_eq!(payload.family, "web");
        assert_eq!(payload.revision, 3);
        assert_eq!(payload.network_mode, NetworkMode::Bridge);
        assert_eq!(payload.stop_reason, None);
        let [app, sidecar] = payload.containers.as_slice() else {
            panic!("two containers expected: {:?}", payload.containers);
        };
        assert_eq!(app.image, "busybox:1.36");
        assert_eq!(app.cpu, 512);
        assert_eq!(app.memory, Some(256));
        assert_eq!(app.memory_reservation, Some(64));
        assert_eq!(
            app.entry_point,
            Some(vec!["sh".to_owned(), "-c".to_owned()])
        );
        assert_eq!(app.command, Some(vec!["sleep 5".to_owned()]));
        let environment: Vec<(&str, &str)> = app
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(environment, [("A", "1"), ("B", "two"), ("C", "3")]);
        assert_eq!(
            app.port_mappings,
            [
                PortMapping {
                    container_port: 80,
                    host_port: 32768,
                    protocol: TransportProtocol::Tcp
                },
                PortMapping {
                    container_port: 53,
                    host_port: 5353,
                    protocol: TransportProtocol::Udp
                }
            ]
        );
        let health = app.health_check.as_ref().expect("health check");
        assert_eq!(
            (health.interval, health.timeout, health.retries),
            (10, 5, 3)
        );
        assert_eq!(app.working_directory.as_deref(), Some("/srv"));
        assert_eq!(app.stop_timeout, Some(5));
        assert!(!sidecar.essential);
        assert_eq!(sidecar.command, None);
    }

    #[test]
    fn host_mode_publishes_container_ports_and_stops_carry_the_reason() {
        let definition = json!({
            "networkMode": "host",
            "containerDefinitions": [{
                "name": "app", "image": "x", "portMappings": [{"containerPort": 8080}]
            }]
        });
        let mut row = task(definition, None, Vec::new());
        row.stop_reason = Some("scale in".into());
        let payload = task_payload(
            "arn".into(),
            &row,
            DesiredStatus::Stopped,
            &ParsedDefinitions::default(),
        );
        assert_eq!(payload.network_mode, NetworkMode::Host);
        assert_eq!(payload.containers[0].port_mappings[0].host_port, 8080);
        assert_eq!(payload.stop_reason.as_deref(), Some("scale in"));
    }

    #[test]
    fn a_definition_is_parsed_once_per_distinct_text() {
        let definitions = ParsedDefinitions::default();
        let raw = |text: &str| RawValue::from_string(text.to_owned()).unwrap();
        let web = definitions.parsed(&raw(r#"{"family":"web"}"#));
        assert!(Arc::ptr_eq(
            &web,
            &definitions.parsed(&raw(r#"{"family":"web"}"#))
        ));
        let api = definitions.parsed(&raw(r#"{"family":"api"}"#));
        assert_eq!(api["family"], "api");
        assert_eq!(web["family"], "web");
    }

    #[test]
    fn garbage_definitions_give_empty_payloads_not_panics() {
        for definition in [
            json!(null),
            json!({"containerDefinitions": 3}),
            json!({"containerDefinitions": [1, {"image": "no-name"}, {"name": 5}]}),
            json!({"containerDefinitions": [{"name": "a", "cpu": -1, "memory": "x",
                   "command": [1], "environment": {"A": 1}, "portMappings": [{"containerPort": 99999}],
                   "healthCheck": {"interval": 3}}]}),
        ] {
            let payload = task_payload(
                "arn".into(),
                &task(
                    definition,
                    Some(json!({"containerOverrides": "x"})),
                    Vec::new(),
                ),
                DesiredStatus::Running,
                &ParsedDefinitions::default(),
            );
            for container in &payload.containers {
                assert_eq!(container.cpu, 0);
                assert!(container.port_mappings.is_empty());
                assert!(container.health_check.is_none());
            }
        }
    }
}
