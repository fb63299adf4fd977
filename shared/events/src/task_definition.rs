//! Task definition and tagging events. Aggregate:
//! [`crate::Aggregate::TaskDefinitionFamily`] (tag events: the tagged resource's).

use serde::{Deserialize, Serialize};

use crate::{JsonText, Tag};

/// RegisterTaskDefinition accepted: a new revision of a family.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinitionRegistered {
    pub family: String,
    pub revision: u32,
    /// The validated, normalized TaskDefinition shape without the members the log
    /// already knows (ARN, revision, status, registration time).
    pub definition: JsonText,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub registered_by: Option<String>,
}

/// DeregisterTaskDefinition accepted: the revision becomes INACTIVE.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinitionDeregistered {
    pub revision: u32,
}

/// DeleteTaskDefinitions accepted: the (INACTIVE) revision becomes DELETE_IN_PROGRESS.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinitionDeleted {
    pub revision: u32,
}

/// TagResource accepted: tags added to (or overwritten on) a resource.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceTagged {
    pub resource_arn: String,
    pub tags: Vec<Tag>,
}

/// UntagResource accepted.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUntagged {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}
