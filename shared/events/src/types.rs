//! Small value types shared by many events.

use serde::{Deserialize, Serialize};

/// An opaque ECS shape kept exactly as the user sent it (after validation), e.g. a
/// task definition body or a cluster `configuration`. Stored as MessagePack like the
/// rest of the payload.
pub type Json = serde_json::Value;

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
