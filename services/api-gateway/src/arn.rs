//! ECS ARNs: rendered for the region a request was signed for, parsed back into the
//! resource they name.
//!
//! The log stores names and ids, never ARNs, so one Berth answers in whatever region
//! a client is configured for.

/// The partition, region and account an answer is rendered for.
#[derive(Debug, Clone)]
pub struct ArnContext {
    pub region: String,
    pub account_id: String,
}

/// A resource an ARN (or a short name) designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Cluster(String),
    TaskDefinition { family: String, revision: u32 },
    ContainerInstance { cluster: String, id: String },
    Task { cluster: String, id: String },
}

impl ArnContext {
    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}:", self.region, self.account_id)
    }

    pub fn cluster(&self, name: &str) -> String {
        format!("{}cluster/{name}", self.prefix())
    }

    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        format!("{}task-definition/{family}:{revision}", self.prefix())
    }

    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}container-instance/{cluster}/{id}", self.prefix())
    }

    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}task/{cluster}/{id}", self.prefix())
    }

    /// A container of a task, by its name in the task definition.
    pub fn container(&self, cluster: &str, task_id: &str, name: &str) -> String {
        format!("{}container/{cluster}/{task_id}/{name}", self.prefix())
    }
}

/// Parses any ECS ARN Berth issues (any region and account).
pub fn parse(arn: &str) -> Option<Resource> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("ecs"), Some(_region), Some(_account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let (kind, path) = rest.split_once('/')?;
    match kind {
        "cluster" if !path.is_empty() && !path.contains('/') => {
            Some(Resource::Cluster(path.to_owned()))
        }
        "task-definition" => {
            let (family, revision) = path.rsplit_once(':')?;
            Some(Resource::TaskDefinition {
                family: family.to_owned(),
                revision: revision.parse().ok()?,
            })
        }
        "container-instance" => {
            let (cluster, id) = path.split_once('/')?;
            Some(Resource::ContainerInstance {
                cluster: cluster.to_owned(),
                id: id.to_owned(),
            })
        }
        "task" => {
            let (cluster, id) = path.split_once('/')?;
            Some(Resource::Task {
                cluster: cluster.to_owned(),
                id: id.to_owned(),
            })
        }
        _ => None,
    }
}

/// The cluster name in a `cluster` request member, which may be a name or an ARN.
pub fn cluster_name(name_or_arn: &str) -> Option<String> {
    if name_or_arn.starts_with("arn:") {
        return match parse(name_or_arn)? {
            Resource::Cluster(name) => Some(name),
            _ => None,
        };
    }
    Some(name_or_arn.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let context = ArnContext {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
        };
        assert_eq!(
            parse(&context.cluster("prod")),
            Some(Resource::Cluster("prod".into()))
        );
        assert_eq!(
            parse(&context.task_definition("web", 12)),
            Some(Resource::TaskDefinition {
                family: "web".into(),
                revision: 12
            })
        );
        assert_eq!(
            parse(&context.task("prod", "abc")),
            Some(Resource::Task {
                cluster: "prod".into(),
                id: "abc".into()
            })
        );
        assert_eq!(cluster_name("default").as_deref(), Some("default"));
        assert_eq!(cluster_name(&context.cluster("x")).as_deref(), Some("x"));
        for bad in [
            "arn:aws:s3:::bucket",
            "arn:aws:ecs:r:a:cluster/",
            "arn:aws:ecs:r:a:task-definition/x:y",
            "nope",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
