//! Small value types shared by many events.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An opaque ECS shape kept exactly as the user sent it (after validation), e.g. a
/// task definition body or a cluster `configuration`. Stored as MessagePack like the
/// rest of the payload.
pub type Json = serde_json::Value;

/// A JSON document carried as its compact text: cheap to clone, stored as is in a
/// read model's TEXT column, and parsed only by the readers that need its structure.
/// Replaying the log decodes it straight from MessagePack into text, with no
/// `serde_json::Value` tree in between (that tree was most of the cost of a rebuild).
///
/// On the wire it is the very map the equivalent [`Json`] value would be: both
/// directions transcode, so a field can switch between the two types without
/// changing a byte of its encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// The compact text of `value` (keys sorted, as `serde_json` orders them).
    pub fn from_value(value: &Json) -> Self {
        Self(value.to_string().into())
    }

    /// Checks that `text` is one JSON document and keeps it as it is.
    pub fn parse(text: impl Into<Arc<str>>) -> Result<Self, serde_json::Error> {
        let text = text.into();
        serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The document as a [`Json`] tree, for readers that look inside it.
    pub fn to_value(&self) -> Json {
        // A JsonText only ever holds one valid document (see the constructors).
        serde_json::from_str(&self.0).unwrap_or(Json::Null)
    }
}

impl From<&Json> for JsonText {
    fn from(value: &Json) -> Self {
        Self::from_value(value)
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = serde_json::Deserializer::from_str(&self.0);
        serde_transcode::transcode(&mut text, serializer)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut text = Vec::with_capacity(256);
        serde_transcode::transcode(deserializer, &mut serde_json::Serializer::new(&mut text))
            .map_err(serde::de::Error::custom)?;
        // serde_json writes UTF-8 only.
        String::from_utf8(text)
            .map(|text| Self(text.into()))
            .map_err(serde::de::Error::custom)
    }
}

/// Milliseconds since the Unix epoch. ECS shows timestamps as epoch seconds with a
/// fraction; millisecond precision is what it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EpochMillis(pub i64);

impl EpochMillis {
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// Epoch seconds with a fraction, the form ECS puts on the wire.
    pub fn as_epoch_seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// An ECS resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A cluster setting such as `containerInsights=enabled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSetting {
    pub name: String,
    pub value: String,
}

/// A name/value pair (environment variables, attributes, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub name: String,
    pub value: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::{Json, JsonText};
    use serde_json::json;

    #[test]
    fn json_text_encodes_exactly_as_the_equivalent_value() {
        let value = json!({
            "b": [1, -2, 3.5, null, true, "ü\"x"],
            "a": {"nested": {"deep": []}, "empty": {}},
            "big": u64::MAX,
        });
        let text = JsonText::from_value(&value);
        let as_text = rmp_serde::to_vec_named(&text).unwrap();
        assert_eq!(as_text, rmp_serde::to_vec_named(&value).unwrap());
        let decoded: JsonText = rmp_serde::from_slice(&as_text).unwrap();
        assert_eq!(decoded, text);
        assert_eq!(decoded.to_value(), value);
    }

    #[test]
    fn json_text_accepts_only_one_document() {
        assert!(JsonText::parse(r#"{"a": 1}"#).is_ok());
        assert!(JsonText::parse("{").is_err());
        assert!(JsonText::parse("1 2").is_err());
        assert_eq!(
            JsonText::parse("[1]").unwrap().to_value(),
            Json::from(vec![1])
        );
    }
}
