//! Typed, path-aware access to raw request JSON.
//!
//! Requests reach the gateway as untyped JSON from any client, not only from SDKs that validate
//! types first. Every accessor here turns a wrong JSON type into an `InvalidParameterException`
//! naming the member (`containerDefinitions[0].memory`), so no validator can panic or silently
//! coerce. JSON `null` is treated as "absent", as AWS services do.

use serde_json::{Map, Value};

use crate::error::ValidationError;

/// The model's name for a JSON value's type, for error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "structure",
    }
}

/// The error for a member of the wrong JSON type.
pub(crate) fn type_error(path: &str, expected: &str, got: &Value) -> ValidationError {
    ValidationError::invalid_parameter(format!(
        "Invalid type for parameter {path}: expected {expected}, got {}.",
        type_name(got)
    ))
}

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Reads a value that must be a string.
pub(crate) fn as_str<'a>(value: &'a Value, path: &str) -> Result<&'a str, ValidationError> {
    value
        .as_str()
        .ok_or_else(|| type_error(path, "string", value))
}

/// Reads a value that must be an ECS `Integer` (32-bit signed).
pub(crate) fn as_int(value: &Value, path: &str) -> Result<i64, ValidationError> {
    value
        .as_i64()
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| type_error(path, "integer", value))
}

/// A JSON object being read, with the path used in error messages.
#[derive(Debug, Clone)]
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) path: String,
}

impl<'a> Obj<'a> {
    /// Wraps `value`, which must be a JSON object.
    pub(crate) fn new(value: &'a Value, path: impl Into<String>) -> Result<Self, ValidationError> {
        let path = path.into();
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(type_error(
                if path.is_empty() { "request" } else { &path },
                "structure",
                other,
            )),
        }
    }

    /// The path of member `key`.
    pub(crate) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The member `key`, or `None` when absent or `null`.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, key: &str) -> Result<Option<&'a str>, ValidationError> {
        self.get(key)
            .map(|v| as_str(v, &self.path(key)))
            .transpose()
    }

    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, ValidationError> {
        self.get(key)
            .map(|v| as_int(v, &self.path(key)))
            .transpose()
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, ValidationError> {
        self.get(key)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| type_error(&self.path(key), "boolean", v))
            })
            .transpose()
    }

    pub(crate) fn list(&self, key: &str) -> Result<Option<&'a [Value]>, ValidationError> {
        self.get(key)
            .map(|v| {
                v.as_array()
                    .map(Vec::as_slice)
                    .ok_or_else(|| type_error(&self.path(key), "list", v))
            })
            .transpose()
    }

    pub(crate) fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, ValidationError> {
        self.get(key)
            .map(|v| Obj::new(v, self.path(key)))
            .transpose()
    }

    /// A list of structures; absent reads as empty.
    pub(crate) fn objs(&self, key: &str) -> Result<Vec<Obj<'a>>, ValidationError> {
        let path = self.path(key);
        self.list(key)?
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_null())
            .map(|(i, v)| Obj::new(v, index(&path, i)))
            .collect()
    }

    /// A list of strings; absent reads as `None`.
    pub(crate) fn str_list(&self, key: &str) -> Result<Option<Vec<&'a str>>, ValidationError> {
        let path = self.path(key);
        self.list(key)?
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| as_str(v, &index(&path, i)))
                    .collect()
            })
            .transpose()
    }

    /// A map of strings to strings; absent reads as `None`.
    pub(crate) fn str_map(
        &self,
        key: &str,
    ) -> Result<Option<Vec<(&'a str, &'a str)>>, ValidationError> {
        let Some(inner) = self.obj(key)? else {
            return Ok(None);
        };
        inner
            .map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| Ok((k.as_str(), as_str(v, &inner.path(k))?)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A copy of `value` without `null` members or elements: AWS treats `null` as absent, and the
/// stored definition must read back the same way.
pub(crate) fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(strip_nulls)
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn wrong_types_name_the_member() {
        let v = json!({"memory": "512", "essential": "yes", "links": "db"});
        let obj = Obj::new(&v, "containerDefinitions[0]").unwrap();
        let err = obj.int("memory").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameterException);
        assert_eq!(
            err.message,
            "Invalid type for parameter containerDefinitions[0].memory: expected integer, got string."
        );
        assert!(obj.bool("essential").is_err());
        assert!(obj.str_list("links").is_err());
    }

    #[test]
    fn null_reads_as_absent_and_is_stripped() {
        let v = json!({"hostname": null, "nested": {"a": null, "b": [1, null]}});
        let obj = Obj::new(&v, "").unwrap();
        assert_eq!(obj.str("hostname").unwrap(), None);
        assert_eq!(strip_nulls(&v), json!({"nested": {"b": [1]}}));
    }

    #[test]
    fn integers_must_fit_32_bits() {
        let v = json!({"cpu": 4_294_967_296_i64, "ok": -5, "float": 1.5});
        let obj = Obj::new(&v, "").unwrap();
        assert!(obj.int("cpu").is_err());
        assert_eq!(obj.int("ok").unwrap(), Some(-5));
        assert!(obj.int("float").is_err());
    }

    #[test]
    fn a_non_object_request_is_a_type_error() {
        let err = Obj::new(&json!([1]), "").unwrap_err();
        assert_eq!(
            err.message,
            "Invalid type for parameter request: expected structure, got list."
        );
    }
}
