//! Real AWS clients for end-to-end tests: the AWS SDK for Rust and the AWS CLI,
//! signed with a test key pair that the Berth under test is given.

use std::process::Output;

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};

pub const ACCESS_KEY_ID: &str = "AKIDBERTHTEST";
pub const SECRET_ACCESS_KEY: &str = "berth-test-secret";
pub const REGION: &str = "eu-west-1";

/// An ECS client for `endpoint` with the given key pair, over plain HTTP.
pub fn ecs_client(endpoint: &str, access_key_id: &str, secret: &str) -> aws_sdk_ecs::Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            access_key_id,
            secret,
            None,
            None,
            "berth-test",
        ))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_ecs::Client::from_conf(config)
}

/// Runs the AWS CLI (`aws ecs ...`) against `endpoint` with the test key.
pub async fn aws_cli(endpoint: &str, args: &[&str]) -> Output {
    tokio::process::Command::new("aws")
        .arg("ecs")
        .args(args)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_DEFAULT_REGION", REGION)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .await
        .expect("run the AWS CLI (is `aws` installed? .ci/run installs it)")
}

/// The JSON the CLI printed, asserting it succeeded.
pub fn cli_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "aws failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from the AWS CLI")
}

/// The AWS error code of a failed SDK call (modelled or not), e.g.
/// `ClusterNotFoundException`.
pub fn error_code<E, R>(error: &aws_sdk_ecs::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata,
{
    error.as_service_error()?.code().map(str::to_owned)
}

/// The message of a failed SDK call.
pub fn error_message<E, R>(error: &aws_sdk_ecs::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata,
{
    error.as_service_error()?.message().map(str::to_owned)
}
