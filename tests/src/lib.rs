//! Shared set-up for the end-to-end tests in `tests/`: a whole Berth control plane
//! in-process (with its own nats-server and data dir), and real AWS clients
//! pointed at it: the AWS SDK for Rust and the AWS CLI.

use std::net::SocketAddr;
use std::process::Output;

use berth::{ControlPlane, ControlPlaneConfig, RunningControlPlane};
pub use berth_agent::DriverChoice;
use berth_aws_protocol::sigv4::KeyStore;
pub use berth_testkit::aws::{
    ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, aws_cli, cli_json, ecs_client, error_code,
    error_message,
};

pub const ACCOUNT_ID: &str = "123456789012";
pub const AGENT_TOKEN: &str = "berth-test-agent-token";

/// A running control plane for one test; stopped and deleted on drop.
pub struct Berth {
    pub control_plane: Option<RunningControlPlane>,
    pub data_dir: tempfile::TempDir,
    config: ControlPlaneConfig,
}

impl Berth {
    /// Berth with SQLite read models and no agent.
    pub async fn start() -> Self {
        Self::start_with(None, None).await
    }

    /// Berth with its read models in `read_model_url` (`None`: SQLite) and, with
    /// `local_agent`, the agent `berth up` runs for itself.
    pub async fn start_with(
        read_model_url: Option<String>,
        local_agent: Option<DriverChoice>,
    ) -> Self {
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
            agent_gateway_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            agent_token: AGENT_TOKEN.to_owned(),
            agent_heartbeat_timeout: std::time::Duration::from_secs(2),
            local_agent,
        };
        let control_plane = ControlPlane::start(config.clone(), keys())
            .await
            .expect("start the control plane");
        Self {
            control_plane: Some(control_plane),
            data_dir,
            config,
        }
    }

    /// Stops the control plane and starts it again on the same data dir and read
    /// models (the API and agent-gateway addresses change: make new clients).
    pub async fn restart(&mut self) {
        if let Some(control_plane) = self.control_plane.take() {
            control_plane.stop().await;
        }
        let control_plane = ControlPlane::start(self.config.clone(), keys())
            .await
            .expect("restart the control plane");
        self.control_plane = Some(control_plane);
    }

    pub fn endpoint(&self) -> String {
        self.control_plane.as_ref().expect("running").endpoint()
    }

    /// `ws://<agent gateway>` for agents to connect to.
    pub fn agent_gateway(&self) -> String {
        format!(
            "ws://{}",
            self.control_plane
                .as_ref()
                .expect("running")
                .agent_gateway_addr
        )
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

fn keys() -> KeyStore {
    KeyStore::new().with_key(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
}

/// Polls DescribeTasks until every task satisfies `done` (or panics after `timeout`);
/// returns the last answer.
pub async fn wait_for_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    task_arns: &[String],
    timeout: std::time::Duration,
    done: impl Fn(&aws_sdk_ecs::types::Task) -> bool,
) -> Vec<aws_sdk_ecs::types::Task> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let described = ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(task_arns.to_vec()))
            .send()
            .await
            .expect("describe tasks");
        let tasks = described.tasks().to_vec();
        if tasks.len() == task_arns.len() && tasks.iter().all(&done) {
            return tasks;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tasks did not get there in time: {tasks:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Polls until the cluster has `count` container instances whose agent is connected.
pub async fn wait_for_instances(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    count: usize,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(listed) = ecs
            .list_container_instances()
            .cluster(cluster)
            .filter("agentConnected == true")
            .send()
            .await
            && listed.container_instance_arns().len() >= count
        {
            return listed.container_instance_arns().to_vec();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} agents never connected to {cluster}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
