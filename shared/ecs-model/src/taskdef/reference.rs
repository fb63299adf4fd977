//! Task definition references: `family`, `family:revision` or the full ARN
//! `arn:<partition>:ecs:<region>:<account>:task-definition/family[:revision]`, as accepted by
//! DescribeTaskDefinition, RunTask, CreateService and friends.

use crate::cluster::is_resource_name;
use crate::error::ValidationError;

/// Splits a task definition reference into family and optional revision.
///
/// A missing revision means "latest ACTIVE" for most operations; DeregisterTaskDefinition and
/// DeleteTaskDefinitions require one, which the caller decides.
pub fn parse_task_definition_ref(
    reference: &str,
) -> Result<(String, Option<u32>), ValidationError> {
    let family_and_revision = if reference.starts_with("arn:") {
        arn_resource(reference)?
    } else {
        reference
    };
    let (family, revision) = match family_and_revision.split_once(':') {
        Some((family, revision)) => (family, Some(parse_revision(revision)?)),
        None => (family_and_revision, None),
    };
    if family.is_empty() {
        return Err(ValidationError::client("Family can not be blank."));
    }
    if !is_resource_name(family) {
        return Err(ValidationError::client(
            "Family contains invalid characters.",
        ));
    }
    Ok((family.to_string(), revision))
}

/// Formats the ARN the gateway reports for a registered revision.
pub fn format_task_definition_arn(
    region: &str,
    account: &str,
    family: &str,
    revision: u32,
) -> String {
    format!("arn:aws:ecs:{region}:{account}:task-definition/{family}:{revision}")
}

/// The `family[:revision]` part of a task definition ARN.
fn arn_resource(arn: &str) -> Result<&str, ValidationError> {
    let invalid =
        || ValidationError::invalid_parameter(format!("Invalid task definition ARN: {arn}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, _region, _account, resource] = parts.as_slice() else {
        return Err(invalid());
    };
    if !partition.starts_with("aws") || *service != "ecs" {
        return Err(invalid());
    }
    resource
        .strip_prefix("task-definition/")
        .filter(|rest| !rest.is_empty())
        .ok_or_else(invalid)
}

fn parse_revision(text: &str) -> Result<u32, ValidationError> {
    text.parse::<u32>()
        .ok()
        .filter(|rev| *rev > 0 && !text.starts_with('+'))
        .ok_or_else(|| ValidationError::client(format!("Invalid revision number. Number: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(
            parse_task_definition_ref("web").unwrap(),
            ("web".into(), None)
        );
        assert_eq!(
            parse_task_definition_ref("web:3").unwrap(),
            ("web".into(), Some(3))
        );
        assert_eq!(
            parse_task_definition_ref(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/web_app-2:17"
            )
            .unwrap(),
            ("web_app-2".into(), Some(17))
        );
        assert_eq!(
            parse_task_definition_ref("arn:aws-cn:ecs:cn-north-1:1:task-definition/web").unwrap(),
            ("web".into(), None)
        );
    }

    #[test]
    fn rejected_forms() {
        let err = parse_task_definition_ref("web:foo").unwrap_err();
        assert_eq!(err.message, "Invalid revision number. Number: foo");
        for bad in ["web:0", "web:-1", "web:", "web:1:2", "web:+1"] {
            assert!(parse_task_definition_ref(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_task_definition_ref("").unwrap_err().message,
            "Family can not be blank."
        );
        assert_eq!(
            parse_task_definition_ref("my.app").unwrap_err().message,
            "Family contains invalid characters."
        );
        for bad in [
            "arn:aws:ecs:us-east-1:1:service/web",
            "arn:aws:s3:us-east-1:1:task-definition/web:1",
            "arn:aws:ecs:us-east-1",
            "arn:aws:ecs:us-east-1:1:task-definition/",
        ] {
            assert!(parse_task_definition_ref(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_form_round_trips(
            family in "[A-Za-z0-9_-]{1,255}",
            revision in 1u32..=u32::MAX,
            region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
            account in "[0-9]{12}",
        ) {
            prop_assert_eq!(
                parse_task_definition_ref(&family).unwrap(),
                (family.clone(), None)
            );
            prop_assert_eq!(
                parse_task_definition_ref(&format!("{family}:{revision}")).unwrap(),
                (family.clone(), Some(revision))
            );
            let arn = format_task_definition_arn(&region, &account, &family, revision);
            prop_assert_eq!(
                parse_task_definition_ref(&arn).unwrap(),
                (family, Some(revision))
            );
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = parse_task_definition_ref(&text);
        }
    }
}
