//! Shared set-up for the end-to-end tests in `tests/`: a whole Berth control plane
//! in-process (with its own nats-server and data dir), and real AWS clients
//! pointed at it: the AWS SDK for Rust and the AWS CLI.

use std::net::SocketAddr;
use std::process::Output;

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use berth::{ControlPlane, ControlPlaneConfig, RunningControlPlane};
use berth_aws_protocol::sigv4::KeyStore;

pub const ACCESS_KEY_ID: &str = "AKIDBERTHTEST";
pub const SECRET_ACCESS_KEY: &str = "berth-test-secret";
pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "eu-west-1";

/// A running control plane for one test; stopped and deleted on drop.
pub struct Berth {
    pub control_plane: Option<RunningControlPlane>,
    pub data_dir: tempfile::TempDir,
}

impl Berth {
    /// Berth with SQLite read models.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Berth with its read models in `read_model_url` (`None`: SQLite).
    pub async fn start_with(read_model_url: Option<String>) -> Self {
        let data_dir = tempfile::tempdir().expect("data dir");
        let config = ControlPlaneConfig {
            data_dir: data_dir.path().to_owned(),
            nats_url: None,
            nats_server_bin: None,
            api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            read_model_url,
            rebuild: false,
            account_id: ACCOUNT_ID.to_owned(),
            body_limit: 1024 * 1024,
        };
        let keys = KeyStore::new().with_key(ACCESS_KEY_ID, SECRET_ACCESS_KEY);
        let control_plane = ControlPlane::start(config, keys)
            .await
            .expect("start the control plane");
        Self {
            control_plane: Some(control_plane),
            data_dir,
        }
    }

    pub fn endpoint(&self) -> String {
        self.control_plane.as_ref().expect("running").endpoint()
    }

    /// An ECS client of the AWS SDK for Rust, signed with the test key.
    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        ecs_client(&self.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    }

    /// Runs `aws ecs <args>` against this Berth and returns its output.
    pub async fn aws_cli(&self, args: &[&str]) -> Output {
        aws_cli(&self.endpoint(), args).await
    }

    pub async fn stop(mut self) {
        if let Some(control_plane) = self.control_plane.take() {
            control_plane.stop().await;
        }
    }
}

/// An ECS client for `endpoint` with the given key pair, over plain HTTP.
pub fn ecs_client(endpoint: &str, access_key_id: &str, secret: &str) -> aws_sdk_ecs::Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(access_key_id, secret, None, None, "berth-test"))
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
