//! Cluster events. Aggregate: [`crate::Aggregate::Cluster`].

use serde::{Deserialize, Serialize};

use crate::{ClusterSetting, Json, Tag};

/// CreateCluster accepted. A create on the name of a deleted (INACTIVE) cluster makes
/// it ACTIVE again with the new attributes, as ECS does.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterCreated {
    pub name: String,
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    #[serde(default)]
    pub configuration: Option<Json>,
    #[serde(default)]
    pub service_connect_defaults: Option<Json>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<Json>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ClusterCreated {
    /// A cluster with nothing but its name: no settings, configuration, capacity
    /// providers or tags.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            settings: Vec::new(),
            configuration: None,
            service_connect_defaults: None,
            capacity_providers: Vec::new(),
            default_capacity_provider_strategy: Vec::new(),
            tags: Vec::new(),
        }
    }
}

/// UpdateCluster or UpdateClusterSettings accepted. Absent members are unchanged;
/// settings merge by name.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClusterUpdated {
    #[serde(default)]
    pub settings: Option<Vec<ClusterSetting>>,
    #[serde(default)]
    pub configuration: Option<Json>,
    #[serde(default)]
    pub service_connect_defaults: Option<Json>,
}

/// DeleteCluster accepted: the cluster becomes INACTIVE.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClusterDeleted {}
