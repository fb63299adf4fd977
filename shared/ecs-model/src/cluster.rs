//! Cluster names, `settings` and `configuration` (CreateCluster, UpdateCluster,
//! UpdateClusterSettings).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::json::{Obj, index, strip_nulls, type_error};

/// Longest cluster name.
pub const MAX_CLUSTER_NAME_LEN: usize = 255;

/// The only `ClusterSettingName`.
pub const CONTAINER_INSIGHTS: &str = "containerInsights";
const CONTAINER_INSIGHTS_VALUES: [&str; 3] = ["enabled", "disabled", "enhanced"];
const EXECUTE_COMMAND_LOGGING: [&str; 3] = ["NONE", "DEFAULT", "OVERRIDE"];

/// True for 1–255 characters of letters, digits, hyphens and underscores: the rule ECS documents
/// for cluster names, task definition families, container and volume names alike.
pub(crate) fn is_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CLUSTER_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Validates a cluster name as given to CreateCluster (`clusterName`).
pub fn validate_cluster_name(name: &str) -> Result<(), ValidationError> {
    if is_resource_name(name) {
        return Ok(());
    }
    Err(ValidationError::invalid_parameter(
        "Cluster name can have up to 255 characters. Valid characters are letters (uppercase \
         and lowercase), numbers, hyphens (-), and underscores (_).",
    ))
}

/// One `ClusterSetting`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClusterSetting {
    pub name: String,
    pub value: String,
}

/// Validates a `settings` member: `containerInsights` set to `enabled`, `disabled` or
/// `enhanced`. A setting given twice keeps its last value, so the result has one entry per name.
pub fn validate_cluster_settings(settings: &Value) -> Result<Vec<ClusterSetting>, ValidationError> {
    let path = "settings";
    let items = settings
        .as_array()
        .ok_or_else(|| type_error(path, "list", settings))?;
    let mut out: Vec<ClusterSetting> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let setting = Obj::new(item, index(path, i))?;
        let name = setting.str("name")?.unwrap_or_default();
        if name != CONTAINER_INSIGHTS {
            return Err(ValidationError::enum_value(
                &setting.path("name"),
                name,
                &[CONTAINER_INSIGHTS],
            ));
        }
        let value = setting.str("value")?.unwrap_or_default();
        if !CONTAINER_INSIGHTS_VALUES.contains(&value) {
            return Err(ValidationError::invalid_parameter(format!(
                "Invalid value '{value}' for cluster setting containerInsights. Valid values are \
                 enhanced, enabled and disabled."
            )));
        }
        out.retain(|s| s.name != name);
        out.push(ClusterSetting {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    Ok(out)
}

/// Validates a `ClusterConfiguration` and returns it as it should be stored: members with the
/// right types, unknown members and `null`s dropped. `logging` `OVERRIDE` needs a
/// `logConfiguration`, and a `logConfiguration` is only meaningful with `OVERRIDE`.
pub fn validate_cluster_configuration(configuration: &Value) -> Result<Value, ValidationError> {
    let config = Obj::new(configuration, "configuration")?;
    let mut out = Map::new();
    if let Some(exec) = config.obj("executeCommandConfiguration")? {
        let mut exec_out = Map::new();
        copy_str(&exec, "kmsKeyId", &mut exec_out)?;
        let logging = exec.str("logging")?;
        if let Some(logging) = logging {
            if !EXECUTE_COMMAND_LOGGING.contains(&logging) {
                return Err(ValidationError::enum_value(
                    &exec.path("logging"),
                    logging,
                    &EXECUTE_COMMAND_LOGGING,
                ));
            }
            exec_out.insert("logging".into(), logging.into());
        }
        let log_config = exec.obj("logConfiguration")?;
        match (logging, &log_config) {
            (Some("OVERRIDE"), None) => {
                return Err(ValidationError::invalid_parameter(
                    "The logConfiguration must be specified when logging is set to OVERRIDE.",
                ));
            }
            (Some("OVERRIDE"), Some(_)) => {}
            (_, Some(_)) => {
                return Err(ValidationError::invalid_parameter(
                    "The logConfiguration can only be specified when logging is set to OVERRIDE.",
                ));
            }
            (_, None) => {}
        }
        if let Some(log) = log_config {
            let mut log_out = Map::new();
            for key in ["cloudWatchLogGroupName", "s3BucketName", "s3KeyPrefix"] {
                copy_str(&log, key, &mut log_out)?;
            }
            for key in ["cloudWatchEncryptionEnabled", "s3EncryptionEnabled"] {
                if let Some(flag) = log.bool(key)? {
                    log_out.insert(key.into(), flag.into());
                }
            }
            exec_out.insert("logConfiguration".into(), Value::Object(log_out));
        }
        out.insert(
            "executeCommandConfiguration".into(),
            Value::Object(exec_out),
        );
    }
    if let Some(storage) = config.obj("managedStorageConfiguration")? {
        let mut storage_out = Map::new();
        for key in ["kmsKeyId", "fargateEphemeralStorageKmsKeyId"] {
            copy_str(&storage, key, &mut storage_out)?;
        }
        out.insert(
            "managedStorageConfiguration".into(),
            Value::Object(storage_out),
        );
    }
    Ok(strip_nulls(&Value::Object(out)))
}

fn copy_str(from: &Obj<'_>, key: &str, to: &mut Map<String, Value>) -> Result<(), ValidationError> {
    if let Some(text) = from.str(key)? {
        to.insert(key.into(), text.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn cluster_names() {
        for ok in ["default", "my_cluster", "a", "Prod-01", &"x".repeat(255)] {
            assert!(validate_cluster_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "dot.ted",
            "slash/y",
            "ünï",
            &"x".repeat(256),
        ] {
            let err = validate_cluster_name(bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidParameterException);
        }
    }

    #[test]
    fn settings() {
        let out = validate_cluster_settings(&json!([
            {"name": "containerInsights", "value": "enabled"},
            {"name": "containerInsights", "value": "enhanced"}
        ]))
        .unwrap();
        assert_eq!(
            out,
            vec![ClusterSetting {
                name: "containerInsights".into(),
                value: "enhanced".into()
            }]
        );
        assert!(validate_cluster_settings(&json!([])).unwrap().is_empty());
        let err = validate_cluster_settings(&json!([{"name": "insights", "value": "enabled"}]))
            .unwrap_err();
        assert!(err.message.contains("enum value set: [containerInsights]"));
        assert!(
            validate_cluster_settings(&json!([{"name": "containerInsights", "value": "on"}]))
                .is_err()
        );
        assert!(validate_cluster_settings(&json!({"name": "containerInsights"})).is_err());
    }

    #[test]
    fn configuration() {
        let cfg = json!({
            "executeCommandConfiguration": {
                "kmsKeyId": "key",
                "logging": "OVERRIDE",
                "logConfiguration": {"cloudWatchLogGroupName": "g", "s3EncryptionEnabled": true, "junk": 1}
            },
            "managedStorageConfiguration": {"kmsKeyId": null}
        });
        assert_eq!(
            validate_cluster_configuration(&cfg).unwrap(),
            json!({
                "executeCommandConfiguration": {
                    "kmsKeyId": "key",
                    "logging": "OVERRIDE",
                    "logConfiguration": {"cloudWatchLogGroupName": "g", "s3EncryptionEnabled": true}
                },
                "managedStorageConfiguration": {}
            })
        );
        assert!(
            validate_cluster_configuration(
                &json!({"executeCommandConfiguration": {"logging": "OVERRIDE"}})
            )
            .is_err()
        );
        assert!(
            validate_cluster_configuration(&json!({"executeCommandConfiguration": {
                "logging": "DEFAULT", "logConfiguration": {}
            }}))
            .is_err()
        );
        assert!(
            validate_cluster_configuration(
                &json!({"executeCommandConfiguration": {"logging": "LOUD"}})
            )
            .is_err()
        );
        let err = validate_cluster_configuration(
            &json!({"executeCommandConfiguration": {"kmsKeyId": 7}}),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Invalid type for parameter configuration.executeCommandConfiguration.kmsKeyId: \
             expected string, got integer."
        );
    }
}
