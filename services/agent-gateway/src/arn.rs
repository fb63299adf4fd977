//! ECS ARNs the gateway hands to agents, and the ids it reads back from what agents send.
//!
//! Ids from agents end up in NATS subjects, so anything that is not a plain token is refused.

/// The region and account ARNs are rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arns {
    pub region: String,
    pub account_id: String,
}

impl Arns {
    /// `arn:aws:ecs:<region>:<account>:container-instance/<cluster>/<id>`.
    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:container-instance/{cluster}/{id}",
            self.region, self.account_id
        )
    }

    /// `arn:aws:ecs:<region>:<account>:task/<cluster>/<id>`.
    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:task/{cluster}/{id}",
            self.region, self.account_id
        )
    }
}

/// The cluster name in a name or a cluster ARN (`arn:aws:ecs:r:a:cluster/<name>`), as the ECS
/// agent accepts either.
pub(crate) fn cluster_name(name_or_arn: &str) -> &str {
    if !name_or_arn.starts_with("arn:") {
        return name_or_arn;
    }
    match name_or_arn.split_once(":cluster/") {
        Some((_, name)) => name,
        None => name_or_arn,
    }
}

/// The task id in a task ARN (its last `/` segment), if it is a plain token (letters, digits,
/// `-`, `_`) that can be used in a subject.
pub(crate) fn task_id(task_arn: &str) -> Option<&str> {
    if !task_arn.starts_with("arn:") || !task_arn.contains(":task/") {
        return None;
    }
    let id = task_arn.rsplit('/').next()?;
    is_token(id).then_some(id)
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_rendered_and_read_back() {
        let arns = Arns {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
        };
        assert_eq!(
            arns.container_instance("prod", "abc"),
            "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/abc"
        );
        let task = arns.task("prod", "0123456789abcdef0123456789abcdef");
        assert_eq!(task_id(&task), Some("0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn hostile_task_arns_are_refused() {
        for arn in [
            "",
            "task/x/y",
            "arn:aws:ecs:r:a:task/c/",
            "arn:aws:ecs:r:a:task/c/a.b",
            "arn:aws:ecs:r:a:task/c/>",
            "arn:aws:ecs:r:a:task/c/*",
            "arn:aws:ecs:r:a:cluster/c",
        ] {
            assert_eq!(task_id(arn), None, "{arn}");
        }
    }

    #[test]
    fn cluster_names_come_from_names_or_arns() {
        assert_eq!(cluster_name("default"), "default");
        assert_eq!(cluster_name("arn:aws:ecs:us-east-1:1:cluster/prod"), "prod");
    }
}
