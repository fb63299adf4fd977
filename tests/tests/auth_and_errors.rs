//! Authentication and the error answers every client must understand.

use berth_e2e::{ACCESS_KEY_ID, Berth, SECRET_ACCESS_KEY, ecs_client, error_code};

#[tokio::test]
async fn unknown_keys_and_bad_signatures_are_refused_and_write_nothing() {
    let berth = Berth::start().await;
    let stranger = ecs_client(&berth.endpoint(), "AKIDUNKNOWN", SECRET_ACCESS_KEY);
    let error = stranger
        .create_cluster()
        .cluster_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("UnrecognizedClientException")
    );

    let forger = ecs_client(&berth.endpoint(), ACCESS_KEY_ID, "wrong-secret");
    let error = forger
        .create_cluster()
        .cluster_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("InvalidSignatureException")
    );

    let clusters = berth.ecs().list_clusters().send().await.unwrap();
    assert!(clusters.cluster_arns().is_empty());
    berth.stop().await;
}

#[tokio::test]
async fn operations_not_implemented_yet_say_so() {
    let berth = Berth::start().await;
    let error = berth
        .ecs()
        .create_capacity_provider()
        .name("cp")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&error).as_deref(),
        Some("UnsupportedFeatureException")
    );
    let message = error
        .as_service_error()
        .and_then(|e| aws_sdk_ecs::error::ProvideErrorMetadata::message(e).map(str::to_owned));
    assert!(
        message
            .unwrap_or_default()
            .contains("CreateCapacityProvider")
    );
    berth.stop().await;
}
