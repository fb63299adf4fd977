//! Custom container instance attributes (PutAttributes, DeleteAttributes).
//!
//! The `Attribute` shape documents the rules: names of 1–128 letters, digits, hyphens,
//! underscores, forward and back slashes and periods; values of 1–128 letters, digits, hyphens,
//! underscores, periods, at signs, slashes, back slashes, colons and spaces, not starting or ending
//! with a space.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ValidationError;
use crate::json::{Obj, index, type_error};

/// Longest attribute name and value.
pub const MAX_ATTRIBUTE_LEN: usize = 128;
/// PutAttributes accepts at most this many attributes per call.
pub const MAX_ATTRIBUTES_PER_CALL: usize = 10;

/// One ECS `Attribute`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
}

/// Validates a custom attribute name.
pub fn validate_attribute_name(name: &str) -> Result<(), ValidationError> {
    let valid = (1..=MAX_ATTRIBUTE_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'\\' | b'.'));
    if valid {
        return Ok(());
    }
    Err(ValidationError::invalid_parameter(format!(
        "Invalid attribute name '{name}'. The name must contain between 1 and 128 characters: \
         letters (uppercase and lowercase), numbers, hyphens (-), underscores (_), forward \
         slashes (/), back slashes (\\), or periods (.)."
    )))
}

/// Validates a custom attribute value.
pub fn validate_attribute_value(value: &str) -> Result<(), ValidationError> {
    let valid = (1..=MAX_ATTRIBUTE_LEN).contains(&value.len())
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'@' | b'/' | b'\\' | b':' | b' ')
        });
    if valid {
        return Ok(());
    }
    Err(ValidationError::invalid_parameter(format!(
        "Invalid attribute value '{value}'. The value must contain between 1 and 128 characters: \
         letters (uppercase and lowercase), numbers, hyphens (-), underscores (_), periods (.), \
         at signs (@), forward slashes (/), back slashes (\\), colons (:), or spaces, and can't \
         start or end with a space."
    )))
}

/// Validates the `attributes` member of PutAttributes (`require_values`) or DeleteAttributes
/// (values are ignored there, so they are not required).
pub fn validate_attributes(
    attributes: &Value,
    require_values: bool,
) -> Result<Vec<Attribute>, ValidationError> {
    let path = "attributes";
    let items = attributes
        .as_array()
        .ok_or_else(|| type_error(path, "list", attributes))?;
    if items.is_empty() {
        return Err(ValidationError::invalid_parameter(
            "attributes can not be empty",
        ));
    }
    if items.len() > MAX_ATTRIBUTES_PER_CALL {
        return Err(ValidationError::invalid_parameter(format!(
            "You can specify up to {MAX_ATTRIBUTES_PER_CALL} attributes in a single call."
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let attr = Obj::new(item, index(path, i))?;
            let name = attr.str("name")?.unwrap_or_default();
            validate_attribute_name(name)?;
            let value = attr.str("value")?;
            match value {
                Some(value) => validate_attribute_value(value)?,
                None if require_values => validate_attribute_value("")?,
                None => {}
            }
            let target_type = attr.str("targetType")?;
            if let Some(target_type) = target_type
                && target_type != "container-instance"
            {
                return Err(ValidationError::enum_value(
                    &attr.path("targetType"),
                    target_type,
                    &["container-instance"],
                ));
            }
            Ok(Attribute {
                name: name.to_string(),
                value: value.map(str::to_string),
                target_type: target_type.map(str::to_string),
                target_id: attr.str("targetId")?.map(str::to_string),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for ok in [
            "stack",
            "ecs.os-type",
            "team/app_1",
            "a\\b",
            &"n".repeat(128),
        ] {
            assert!(validate_attribute_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "colon:x", "ü", &"n".repeat(129)] {
            assert!(validate_attribute_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values() {
        for ok in [
            "prod",
            "a b",
            "user@host:/x\\y",
            "1.2.3-rc_1",
            &"v".repeat(128),
        ] {
            assert!(validate_attribute_value(ok).is_ok(), "{ok}");
        }
        for bad in ["", " lead", "trail ", "semi;", "tab\t", &"v".repeat(129)] {
            assert!(validate_attribute_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attribute_lists() {
        let attrs = validate_attributes(
            &json!([{"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": "abc"}]),
            true,
        )
        .unwrap();
        assert_eq!(attrs[0].target_id.as_deref(), Some("abc"));
        assert!(validate_attributes(&json!([{"name": "stack"}]), true).is_err());
        assert!(validate_attributes(&json!([{"name": "stack"}]), false).is_ok());
        assert!(validate_attributes(&json!([]), true).is_err());
        let eleven: Vec<_> = (0..11)
            .map(|i| json!({"name": format!("a{i}"), "value": "v"}))
            .collect();
        assert!(validate_attributes(&Value::Array(eleven), true).is_err());
        assert!(
            validate_attributes(
                &json!([{"name": "a", "value": "v", "targetType": "task"}]),
                true
            )
            .is_err()
        );
    }
}
