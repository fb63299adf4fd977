//! Clusters through the AWS SDK for Rust, on SQLite and on PostgreSQL read models.

use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName, Tag};
use berth_e2e::{ACCOUNT_ID, Berth, REGION, error_code};

async fn cluster_lifecycle(berth: &Berth) {
    let ecs = berth.ecs();
    let created = ecs
        .create_cluster()
        .cluster_name("prod")
        .tags(Tag::builder().key("team").value("web").build())
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enabled")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let cluster = created.cluster().unwrap();
    assert_eq!(
        cluster.cluster_arn(),
        Some(format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/prod").as_str())
    );
    assert_eq!(cluster.status(), Some("ACTIVE"));
    assert_eq!(cluster.tags().len(), 1);

    // Creating it again returns the same cluster, as ECS does.
    let again = ecs
        .create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.cluster().unwrap().cluster_arn(),
        cluster.cluster_arn()
    );

    // Read-your-writes: every create is visible to the describe right after it.
    for i in 0..20 {
        let name = format!("ryw-{i}");
        ecs.create_cluster()
            .cluster_name(&name)
            .send()
            .await
            .unwrap();
        let described = ecs
            .describe_clusters()
            .clusters(&name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            described.clusters().len(),
            1,
            "{name} not visible after create"
        );
    }

    let described = ecs
        .describe_clusters()
        .clusters("prod")
        .clusters("missing")
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .unwrap();
    let prod = &described.clusters()[0];
    assert_eq!(prod.tags()[0].key(), Some("team"));
    assert_eq!(prod.settings()[0].value(), Some("enabled"));
    let failure = &described.failures()[0];
    assert_eq!(failure.reason(), Some("MISSING"));
    assert!(failure.arn().unwrap().ends_with(":cluster/missing"));

    // Pagination visits every cluster exactly once, in order.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = ecs
            .list_clusters()
            .max_results(6)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        seen.extend(page.cluster_arns().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 21);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    let updated = ecs
        .update_cluster_settings()
        .cluster("prod")
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("disabled")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        updated.cluster().unwrap().settings()[0].value(),
        Some("disabled")
    );

    let deleted = ecs.delete_cluster().cluster("prod").send().await.unwrap();
    assert_eq!(deleted.cluster().unwrap().status(), Some("INACTIVE"));
    let listed = ecs.list_clusters().send().await.unwrap();
    assert!(
        !listed
            .cluster_arns()
            .iter()
            .any(|arn| arn.ends_with("/prod"))
    );
    let described = ecs
        .describe_clusters()
        .clusters("prod")
        .send()
        .await
        .unwrap();
    assert_eq!(described.clusters()[0].status(), Some("INACTIVE"));

    let error = ecs
        .delete_cluster()
        .cluster("prod")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("ClusterNotFoundException")
    );
    let error = ecs
        .update_cluster()
        .cluster("never-was")
        .send()
        .await
        .unwrap_err();
    assert!(
        error
            .as_service_error()
            .unwrap()
            .is_cluster_not_found_exception()
    );
}

#[tokio::test]
async fn cluster_lifecycle_on_sqlite() {
    let berth = Berth::start().await;
    cluster_lifecycle(&berth).await;
    berth.stop().await;
}

#[tokio::test]
async fn cluster_lifecycle_on_postgres() {
    let berth = Berth::start_with(Some(berth_testkit::postgres_database().await), None).await;
    cluster_lifecycle(&berth).await;
    berth.stop().await;
}

#[tokio::test]
async fn bad_cluster_input_is_an_ecs_error_not_a_crash() {
    let berth = Berth::start().await;
    let ecs = berth.ecs();
    let error = ecs
        .create_cluster()
        .cluster_name("no spaces allowed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("InvalidParameterException")
    );
    let error = ecs
        .list_clusters()
        .max_results(1000)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("InvalidParameterException")
    );
    let error = ecs
        .list_clusters()
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("InvalidParameterException")
    );
    // Nothing was created by the refused requests.
    assert!(
        ecs.list_clusters()
            .send()
            .await
            .unwrap()
            .cluster_arns()
            .is_empty()
    );
    berth.stop().await;
}
