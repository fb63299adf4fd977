//! Resource tags (`Tags`, `TagKeys`), with the limits of the ECS model.
//!
//! ECS documents the same restrictions on every taggable resource: at most 50 tags, keys of
//! 1–128 and values of 0–256 Unicode characters from `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, unique keys,
//! and the `aws:` prefix (any case) reserved on keys and values. Violations are
//! `InvalidParameterException`s (the ECS agent's logs show "Tag key must not start with aws:").

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ValidationError;
use crate::json::{Obj, index, type_error};

/// At most this many tags per resource (the `Tags` shape's `max`).
pub const MAX_TAGS_PER_RESOURCE: usize = 50;
/// Longest tag key, in characters.
pub const MAX_TAG_KEY_LEN: usize = 128;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE_LEN: usize = 256;

const TAG_PATTERN: &str = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)";

/// One ECS `Tag`. `value` is optional on the wire and kept absent when it was absent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Validates a `tags` member (a JSON list of `{key, value}`) and returns the tags in order.
pub fn validate_tags(tags: &Value) -> Result<Vec<Tag>, ValidationError> {
    validate_tags_at(tags, "tags")
}

pub(crate) fn validate_tags_at(tags: &Value, path: &str) -> Result<Vec<Tag>, ValidationError> {
    let items = tags
        .as_array()
        .ok_or_else(|| type_error(path, "list", tags))?;
    if items.len() > MAX_TAGS_PER_RESOURCE {
        return Err(count_error(path, items.len()));
    }
    let mut out: Vec<Tag> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let tag = Obj::new(item, index(path, i))?;
        let key = tag.str("key")?.unwrap_or_default();
        check_tag_key(key, &tag.path("key"))?;
        let value = tag.str("value")?;
        if let Some(value) = value {
            check_tag_value(value, &tag.path("value"))?;
        }
        if out.iter().any(|t| t.key == key) {
            return Err(ValidationError::invalid_parameter(format!(
                "Duplicate tag key '{key}'. Each tag key must be unique for a resource."
            )));
        }
        out.push(Tag {
            key: key.to_string(),
            value: value.map(str::to_string),
        });
    }
    Ok(out)
}

/// Validates an `UntagResource` `tagKeys` member (a JSON list of strings).
pub fn validate_tag_keys(keys: &Value) -> Result<Vec<String>, ValidationError> {
    let path = "tagKeys";
    let items = keys
        .as_array()
        .ok_or_else(|| type_error(path, "list", keys))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item_path = index(path, i);
            let key = item
                .as_str()
                .ok_or_else(|| type_error(&item_path, "string", item))?;
            check_tag_key(key, &item_path)?;
            Ok(key.to_string())
        })
        .collect()
}

/// Applies `TagResource` semantics: `new` tags overwrite existing ones with the same key, and the
/// result must still hold at most [`MAX_TAGS_PER_RESOURCE`] tags.
pub fn merge_tags(existing: &[Tag], new: &[Tag]) -> Result<Vec<Tag>, ValidationError> {
    let mut merged = existing.to_vec();
    for tag in new {
        match merged.iter_mut().find(|t| t.key == tag.key) {
            Some(slot) => *slot = tag.clone(),
            None => merged.push(tag.clone()),
        }
    }
    if merged.len() > MAX_TAGS_PER_RESOURCE {
        return Err(ValidationError::invalid_parameter(format!(
            "Exceeded the maximum number of tags per resource: {MAX_TAGS_PER_RESOURCE}."
        )));
    }
    Ok(merged)
}

fn count_error(path: &str, count: usize) -> ValidationError {
    ValidationError::invalid_parameter(format!(
        "1 validation error detected: Value with {count} elements at '{path}' failed to satisfy \
         constraint: Member must have length less than or equal to {MAX_TAGS_PER_RESOURCE}"
    ))
}

fn check_tag_key(key: &str, path: &str) -> Result<(), ValidationError> {
    let len = key.chars().count();
    if len == 0 {
        return Err(ValidationError::too_short(path, key, 1));
    }
    if len > MAX_TAG_KEY_LEN {
        return Err(ValidationError::too_long(path, key, MAX_TAG_KEY_LEN));
    }
    check_pattern(key, path)?;
    if has_reserved_prefix(key) {
        return Err(ValidationError::invalid_parameter(
            "Tag key must not start with aws:",
        ));
    }
    Ok(())
}

fn check_tag_value(value: &str, path: &str) -> Result<(), ValidationError> {
    if value.chars().count() > MAX_TAG_VALUE_LEN {
        return Err(ValidationError::too_long(path, value, MAX_TAG_VALUE_LEN));
    }
    check_pattern(value, path)?;
    if has_reserved_prefix(value) {
        return Err(ValidationError::invalid_parameter(
            "Tag value must not start with aws:",
        ));
    }
    Ok(())
}

fn check_pattern(text: &str, path: &str) -> Result<(), ValidationError> {
    if text.chars().all(is_tag_char) {
        return Ok(());
    }
    Err(ValidationError::invalid_parameter(format!(
        "1 validation error detected: Value '{text}' at '{path}' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: {TAG_PATTERN}"
    )))
}

/// `\p{L}`, `\p{Z}`, `\p{N}` and `_.:/=+-@`. Rust's `is_alphabetic` also admits combining marks
/// of alphabetic scripts, a harmless superset; `\p{Z}` has no control characters, so tabs and
/// newlines are out.
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

fn has_reserved_prefix(text: &str) -> bool {
    text.get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn accepts_ordinary_tags_and_keeps_missing_values_absent() {
        let tags = validate_tags(&json!([
            {"key": "team", "value": "platform"},
            {"key": "Name"},
            {"key": "ünïcode key", "value": "a+b=c@d/e:f"}
        ]))
        .unwrap();
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[1].value, None);
        assert_eq!(
            serde_json::to_value(&tags[1]).unwrap(),
            json!({"key": "Name"})
        );
    }

    #[test]
    fn rejects_the_reserved_prefix_in_any_case() {
        for key in ["aws:foo", "AWS:foo", "Aws:foo"] {
            let err = validate_tags(&json!([{"key": key, "value": "v"}])).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidParameterException);
            assert_eq!(err.message, "Tag key must not start with aws:");
        }
        let err = validate_tags(&json!([{"key": "k", "value": "aWs:x"}])).unwrap_err();
        assert_eq!(err.message, "Tag value must not start with aws:");
        assert!(validate_tags(&json!([{"key": "awsome"}])).is_ok());
    }

    #[test]
    fn enforces_lengths_and_count() {
        let long_key = "k".repeat(129);
        let err = validate_tags(&json!([{"key": long_key}])).unwrap_err();
        assert!(err.message.contains("at 'tags[0].key'"), "{}", err.message);
        assert!(err.message.ends_with("less than or equal to 128"));
        assert!(
            validate_tags(&json!([{"key": "k".repeat(128), "value": "v".repeat(256)}])).is_ok()
        );
        assert!(validate_tags(&json!([{"key": "k", "value": "v".repeat(257)}])).is_err());
        assert!(validate_tags(&json!([{"key": ""}])).is_err());
        assert!(validate_tags(&json!([{"value": "v"}])).is_err());

        let fifty: Vec<_> = (0..50).map(|i| json!({"key": format!("k{i}")})).collect();
        assert!(validate_tags(&Value::Array(fifty.clone())).is_ok());
        let mut fifty_one = fifty;
        fifty_one.push(json!({"key": "one-more"}));
        let err = validate_tags(&Value::Array(fifty_one)).unwrap_err();
        assert!(err.message.contains("Value with 51 elements at 'tags'"));
    }

    #[test]
    fn rejects_bad_characters_duplicates_and_types() {
        let err = validate_tags(&json!([{"key": "semi;colon"}])).unwrap_err();
        assert!(err.message.contains("regular expression pattern"));
        assert!(validate_tags(&json!([{"key": "tab\there"}])).is_err());
        let err = validate_tags(&json!([{"key": "a"}, {"key": "a"}])).unwrap_err();
        assert!(err.message.starts_with("Duplicate tag key 'a'"));
        let err = validate_tags(&json!({"key": "a"})).unwrap_err();
        assert_eq!(
            err.message,
            "Invalid type for parameter tags: expected list, got structure."
        );
        assert!(validate_tags(&json!([{"key": 5}])).is_err());
    }

    #[test]
    fn tag_keys_are_checked_like_keys() {
        assert_eq!(
            validate_tag_keys(&json!(["a", "b"])).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(validate_tag_keys(&json!(["aws:x"])).is_err());
        assert!(validate_tag_keys(&json!([""])).is_err());
        assert!(validate_tag_keys(&json!([1])).is_err());
        assert!(validate_tag_keys(&json!("a")).is_err());
    }

    #[test]
    fn merge_overwrites_and_counts() {
        let t = |k: &str, v: &str| Tag {
            key: k.into(),
            value: Some(v.into()),
        };
        let merged = merge_tags(&[t("a", "1"), t("b", "2")], &[t("b", "3"), t("c", "4")]).unwrap();
        assert_eq!(merged, vec![t("a", "1"), t("b", "3"), t("c", "4")]);
        let existing: Vec<_> = (0..50).map(|i| t(&format!("k{i}"), "v")).collect();
        assert!(merge_tags(&existing, &[t("k0", "new")]).is_ok());
        assert!(merge_tags(&existing, &[t("extra", "v")]).is_err());
    }
}
