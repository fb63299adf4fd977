//! Aggregates and the subject scheme of the event log.
//!
//! Every event belongs to exactly one aggregate, and every aggregate has its own
//! subject, so `Nats-Expected-Last-Subject-Sequence` gives optimistic concurrency per
//! aggregate. Cluster-scoped aggregates live under `berth.evt.c.<cluster>.` so a
//! consumer (a scheduler shard, say) can follow one cluster with a single filter.
//!
//! Names are safe as subject tokens: ECS restricts cluster names and task definition
//! families to letters, digits, hyphens and underscores, and Berth makes the ids.

use std::fmt;

/// Every event subject starts with this prefix; the stream captures `berth.evt.>`.
pub const SUBJECT_PREFIX: &str = "berth.evt";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aggregate {
    /// A cluster, by name.
    Cluster(String),
    /// A task definition family; every revision is an event on it, so revision
    /// numbers are assigned under optimistic concurrency.
    TaskDefinitionFamily(String),
    /// A container instance of a cluster, by its id (a UUID).
    ContainerInstance { cluster: String, id: String },
    /// A task of a cluster, by its id (32 hex digits).
    Task { cluster: String, id: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an event subject: {0}")]
pub struct AggregateParseError(pub String);

impl Aggregate {
    /// The subject events of this aggregate are appended to.
    pub fn subject(&self) -> String {
        match self {
            Aggregate::Cluster(name) => format!("{SUBJECT_PREFIX}.cluster.{name}"),
            Aggregate::TaskDefinitionFamily(family) => format!("{SUBJECT_PREFIX}.taskdef.{family}"),
            Aggregate::ContainerInstance { cluster, id } => {
                format!("{SUBJECT_PREFIX}.c.{cluster}.instance.{id}")
            }
            Aggregate::Task { cluster, id } => format!("{SUBJECT_PREFIX}.c.{cluster}.task.{id}"),
        }
    }

    /// The subject filter matching every aggregate of one cluster.
    pub fn cluster_filter(cluster: &str) -> String {
        format!("{SUBJECT_PREFIX}.c.{cluster}.>")
    }

    /// Parses a subject produced by [`Aggregate::subject`].
    pub fn from_subject(subject: &str) -> Result<Self, AggregateParseError> {
        let fail = || AggregateParseError(subject.to_owned());
        let rest = subject
            .strip_prefix(SUBJECT_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or_else(fail)?;
        let tokens: Vec<&str> = rest.split('.').collect();
        match tokens.as_slice() {
            ["cluster", name] => Ok(Aggregate::Cluster((*name).to_owned())),
            ["taskdef", family] => Ok(Aggregate::TaskDefinitionFamily((*family).to_owned())),
            ["c", cluster, "instance", id] => Ok(Aggregate::ContainerInstance {
                cluster: (*cluster).to_owned(),
                id: (*id).to_owned(),
            }),
            ["c", cluster, "task", id] => Ok(Aggregate::Task {
                cluster: (*cluster).to_owned(),
                id: (*id).to_owned(),
            }),
            _ => Err(fail()),
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let aggregates = [
            Aggregate::Cluster("default".into()),
            Aggregate::TaskDefinitionFamily("web-app_2".into()),
            Aggregate::ContainerInstance {
                cluster: "prod".into(),
                id: "0b6c1f0e-3a1d-4c35-9f57-1d0d6f0c2a11".into(),
            },
            Aggregate::Task {
                cluster: "prod".into(),
                id: "0123456789abcdef0123456789abcdef".into(),
            },
        ];
        for aggregate in aggregates {
            assert_eq!(Aggregate::from_subject(&aggregate.subject()), Ok(aggregate));
        }
    }

    #[test]
    fn foreign_subjects_are_rejected() {
        for subject in [
            "berth.other.x",
            "berth.evt.cluster",
            "berth.evt.c.x.task",
            "x.y",
        ] {
            assert!(Aggregate::from_subject(subject).is_err(), "{subject}");
        }
    }
}
