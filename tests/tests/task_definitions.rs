//! Task definitions through the AWS SDK for Rust.

use aws_sdk_ecs::types::{
    ContainerDefinition, PortMapping, SortOrder, Tag, TaskDefinitionFamilyStatus,
    TaskDefinitionField, TaskDefinitionStatus, TransportProtocol,
};
use berth_e2e::{ACCOUNT_ID, Berth, REGION, error_code, error_message};

fn web_container(image: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name("web")
        .image(image)
        .memory(128)
        .port_mappings(
            PortMapping::builder()
                .container_port(80)
                .host_port(8080)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn revisions_describe_list_deregister_delete() {
    let berth = Berth::start().await;
    let ecs = berth.ecs();

    for (i, image) in ["nginx:1", "nginx:2", "nginx:3"].iter().enumerate() {
        let registered = ecs
            .register_task_definition()
            .family("web")
            .container_definitions(web_container(image))
            .tags(
                Tag::builder()
                    .key("rev")
                    .value(format!("{}", i + 1))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let definition = registered.task_definition().unwrap();
        assert_eq!(definition.revision(), i as i32 + 1);
        assert_eq!(
            definition.task_definition_arn(),
            Some(
                format!(
                    "arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/web:{}",
                    i + 1
                )
                .as_str()
            )
        );
        assert_eq!(definition.status(), Some(&TaskDefinitionStatus::Active));
        assert!(definition.registered_at().is_some());
        // The whole shape comes back as it was sent.
        let container = &definition.container_definitions()[0];
        assert_eq!(container.image(), Some(*image));
        assert_eq!(container.port_mappings()[0].host_port(), Some(8080));
    }
    ecs.register_task_definition()
        .family("worker")
        .container_definitions(web_container("busybox"))
        .send()
        .await
        .unwrap();

    // By family (latest ACTIVE), by family:revision, by ARN; tags on request.
    let latest = ecs
        .describe_task_definition()
        .task_definition("web")
        .send()
        .await
        .unwrap();
    assert_eq!(latest.task_definition().unwrap().revision(), 3);
    assert!(latest.tags().is_empty());
    let second = ecs
        .describe_task_definition()
        .task_definition("web:2")
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    assert_eq!(second.tags()[0].value(), Some("2"));
    let arn = second
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_owned();
    let by_arn = ecs
        .describe_task_definition()
        .task_definition(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(by_arn.task_definition().unwrap().revision(), 2);
    let missing = ecs
        .describe_task_definition()
        .task_definition("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&missing).as_deref(), Some("ClientException"));
    assert_eq!(
        error_message(&missing).as_deref(),
        Some("Unable to describe task definition.")
    );

    // Listing: exact family, sort order, pagination.
    let listed = ecs
        .list_task_definitions()
        .family_prefix("web")
        .sort(SortOrder::Desc)
        .send()
        .await
        .unwrap();
    let revisions: Vec<&str> = listed
        .task_definition_arns()
        .iter()
        .map(|a| &a[a.len() - 5..])
        .collect();
    assert_eq!(revisions, ["web:3", "web:2", "web:1"]);
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = ecs
            .list_task_definitions()
            .max_results(1)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        all.extend(page.task_definition_arns().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(all.len(), 4);
    assert!(all[3].ends_with("worker:1"));

    // Deregister: INACTIVE, hidden from ACTIVE lists, describable by revision.
    let deregistered = ecs
        .deregister_task_definition()
        .task_definition("web:1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        deregistered.task_definition().unwrap().status(),
        Some(&TaskDefinitionStatus::Inactive)
    );
    assert!(
        deregistered
            .task_definition()
            .unwrap()
            .deregistered_at()
            .is_some()
    );
    let inactive = ecs
        .list_task_definitions()
        .status(TaskDefinitionStatus::Inactive)
        .send()
        .await
        .unwrap();
    assert_eq!(inactive.task_definition_arns().len(), 1);

    // Families: ACTIVE while any revision is; INACTIVE once none is.
    for revision in ["web:2", "web:3"] {
        ecs.deregister_task_definition()
            .task_definition(revision)
            .send()
            .await
            .unwrap();
    }
    let active = ecs.list_task_definition_families().send().await.unwrap();
    assert_eq!(active.families(), ["worker"]);
    let inactive = ecs
        .list_task_definition_families()
        .status(TaskDefinitionFamilyStatus::Inactive)
        .send()
        .await
        .unwrap();
    assert_eq!(inactive.families(), ["web"]);
    let prefixed = ecs
        .list_task_definition_families()
        .family_prefix("wo")
        .status(TaskDefinitionFamilyStatus::All)
        .send()
        .await
        .unwrap();
    assert_eq!(prefixed.families(), ["worker"]);

    // Delete: INACTIVE revisions go; ACTIVE ones are reported as failures.
    let deleted = ecs
        .delete_task_definitions()
        .task_definitions("web:1")
        .task_definitions("worker:1")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.task_definitions().len(), 1);
    assert_eq!(
        deleted.task_definitions()[0].status(),
        Some(&TaskDefinitionStatus::DeleteInProgress)
    );
    assert_eq!(deleted.failures().len(), 1);
    assert!(deleted.failures()[0].arn().unwrap().ends_with("worker:1"));
    berth.stop().await;
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_revisions() {
    let berth = Berth::start().await;
    let registrations = (0..12).map(|i| {
        let ecs = berth.ecs();
        async move {
            ecs.register_task_definition()
                .family("race")
                .container_definitions(web_container(&format!("app:{i}")))
                .send()
                .await
                .unwrap()
                .task_definition()
                .unwrap()
                .revision()
        }
    });
    let mut revisions = futures::future::join_all(registrations).await;
    revisions.sort();
    assert_eq!(revisions, (1..=12).collect::<Vec<_>>());
    berth.stop().await;
}

#[tokio::test]
async fn invalid_task_definitions_are_refused_with_ecs_errors() {
    let berth = Berth::start().await;
    let ecs = berth.ecs();
    // No memory anywhere.
    let error = ecs
        .register_task_definition()
        .family("bad")
        .container_definitions(
            ContainerDefinition::builder()
                .name("a")
                .image("busybox")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("ClientException"),
        "{error:?}"
    );
    // Two containers with one name.
    let error = ecs
        .register_task_definition()
        .family("bad")
        .container_definitions(web_container("a"))
        .container_definitions(web_container("b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&error).as_deref(), Some("ClientException"));
    // Bad family name.
    let error = ecs
        .register_task_definition()
        .family("bad family")
        .container_definitions(web_container("a"))
        .send()
        .await
        .unwrap_err();
    assert!(error_code(&error).is_some());
    // Nothing was registered.
    let families = ecs
        .list_task_definition_families()
        .status(TaskDefinitionFamilyStatus::All)
        .send()
        .await
        .unwrap();
    assert!(families.families().is_empty());
    berth.stop().await;
}

#[tokio::test]
async fn tags_on_clusters_and_task_definitions() {
    let berth = Berth::start().await;
    let ecs = berth.ecs();
    let cluster_arn = ecs
        .create_cluster()
        .cluster_name("tagged")
        .send()
        .await
        .unwrap()
        .cluster()
        .unwrap()
        .cluster_arn()
        .unwrap()
        .to_owned();
    ecs.tag_resource()
        .resource_arn(&cluster_arn)
        .tags(Tag::builder().key("a").value("1").build())
        .tags(Tag::builder().key("b").value("2").build())
        .send()
        .await
        .unwrap();
    ecs.tag_resource()
        .resource_arn(&cluster_arn)
        .tags(Tag::builder().key("a").value("changed").build())
        .send()
        .await
        .unwrap();
    ecs.untag_resource()
        .resource_arn(&cluster_arn)
        .tag_keys("b")
        .send()
        .await
        .unwrap();
    let tags = ecs
        .list_tags_for_resource()
        .resource_arn(&cluster_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].value(), Some("changed"));

    let definition_arn = ecs
        .register_task_definition()
        .family("t")
        .container_definitions(web_container("x"))
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_owned();
    ecs.tag_resource()
        .resource_arn(&definition_arn)
        .tags(Tag::builder().key("owner").value("me").build())
        .send()
        .await
        .unwrap();
    let tags = ecs
        .list_tags_for_resource()
        .resource_arn(&definition_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags()[0].key(), Some("owner"));

    let error = ecs
        .list_tags_for_resource()
        .resource_arn("arn:aws:ecs:eu-west-1:123456789012:cluster/none")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("ClusterNotFoundException")
    );
    let error = ecs
        .list_tags_for_resource()
        .resource_arn("garbage")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("InvalidParameterException")
    );
    berth.stop().await;
}
