//! The `docker` driver: one Docker container per container definition, through the Engine API on
//! the local unix socket.
//!
//! * The client pins Engine API 1.41 (Docker 20.10); every newer engine still speaks it, and the
//!   driver uses nothing later.
//! * Images are never pulled when present locally; a missing one is pulled once, and a failed pull
//!   fails the task with `CannotPullContainerError: ...`.
//! * Each container is created as `berth-<task-id>-<container>` with: the image, `entryPoint`,
//!   `command`, environment, working directory, CPU shares (`cpu`, at least 2 as the ECS agent does),
//!   memory limit and reservation (MiB), `stopTimeout`, the health check mapped onto Docker's
//!   `Healthcheck` (Docker runs it; the driver reads the verdict back), the given host ports as port
//!   bindings, and labels naming the task ARN, the container name and the agent's data dir, so a
//!   restarted agent finds its containers and only its own.
//! * Network modes: `bridge` (Docker's default bridge; bindings read back from the engine), `host`
//!   (no port publishing; bindings are the mappings as given), `none`. `awsvpc` has no ENI to attach
//!   on a plain host, so it runs as `bridge`: the task still gets its ports, through the host.
//! * Logs: the driver follows each container's log stream into `<container>.log` in the task dir.
//! * Stopping uses Docker's stop with the container's timeout (SIGTERM, SIGKILL after it).
//! * Stopped containers are removed once their task has stopped and its logs are copied (unless
//!   [`DockerConfig::remove_stopped_containers`] is off), since the log file and the reported exit
//!   codes already hold what they would be kept for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use berth_agent_protocol::{
    ContainerSpec, DriverKind, HealthStatus, NetworkBinding, NetworkMode, TaskPayload,
    TransportProtocol,
};
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HealthConfig, HealthStatusEnum, HostConfig,
    PortBinding, PortMap,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::health::{docker_test, seconds};
use super::layout::{TaskDir, task_id};
use super::logs::follow_into_file;
use super::task::{
    Backend, Exit, Found, FoundContainer, HealthReporter, Shared, StartFailure, Started,
    SupervisedDriver,
};
use super::{EventSender, LABEL_CONTAINER_NAME, LABEL_DATA_DIR, LABEL_TASK_ARN, RuntimeError};

/// The Engine API version the driver speaks (Docker 20.10).
pub const DOCKER_API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// The default Docker socket.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Seconds the client waits for an answer's headers. Must outlast the longest `docker stop`
/// (which answers only once the container is down), so it is generous.
const CLIENT_TIMEOUT_SECS: u64 = 600;

/// How long a stopped container's log stream may take to drain before STOPPED is reported anyway.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Minimum CPU shares Docker accepts on Linux (what the ECS agent gives containers without `cpu`).
const MIN_CPU_SHARES: i64 = 2;

/// Configuration of the Docker driver.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The agent's data dir; task dirs (logs, state) live under `<data_dir>/tasks/`.
    pub data_dir: PathBuf,
    /// Path of the Docker engine's unix socket.
    pub socket: PathBuf,
    /// Remove a task's containers once it has stopped.
    pub remove_stopped_containers: bool,
    /// How often a running container's health is read from the engine.
    pub health_poll_interval: Duration,
}

impl DockerConfig {
    /// Defaults: `/var/run/docker.sock`, stopped containers removed, health read every second.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            socket: PathBuf::from(DEFAULT_DOCKER_SOCKET),
            remove_stopped_containers: true,
            health_poll_interval: Duration::from_secs(1),
        }
    }
}

/// Runs tasks as Docker containers. Cheap to share behind an `Arc<dyn Driver>`.
pub struct DockerDriver {
    shared: Arc<Shared<DockerBackend>>,
}

impl DockerDriver {
    /// Connects to the engine (and checks it answers). Containers left running by an earlier agent
    /// over the same data dir are adopted on the first call.
    pub async fn connect(config: DockerConfig, events: EventSender) -> Result<Self, RuntimeError> {
        let socket = config.socket.to_string_lossy().into_owned();
        let docker = Docker::connect_with_unix(&socket, CLIENT_TIMEOUT_SECS, &DOCKER_API_VERSION)?;
        docker.ping().await?;
        tokio::fs::create_dir_all(&config.data_dir)
            .await
            .map_err(|e| RuntimeError::io(format!("creating {}", config.data_dir.display()), e))?;
        // The label must be the same string every time the agent starts over this dir.
        let data_dir = tokio::fs::canonicalize(&config.data_dir)
            .await
            .unwrap_or_else(|_| config.data_dir.clone());
        let backend = DockerBackend {
            docker,
            scope: data_dir.to_string_lossy().into_owned(),
            remove_stopped: config.remove_stopped_containers,
            health_poll: config.health_poll_interval,
        };
        Ok(Self {
            shared: Shared::new(backend, data_dir, events),
        })
    }

    /// The underlying client, for callers that need the engine too (e.g. host facts).
    pub fn client(&self) -> &Docker {
        &self.shared.backend.docker
    }
}

impl SupervisedDriver for DockerDriver {
    type Backend = DockerBackend;

    fn shared(&self) -> &Arc<Shared<DockerBackend>> {
        &self.shared
    }
}

/// A container the driver started or found again.
#[derive(Clone)]
pub(crate) struct DockerHandle(Arc<DockerInner>);

struct DockerInner {
    id: String,
    /// The task copying its log stream into the log file.
    logs: Mutex<Option<JoinHandle<()>>>,
}

pub(crate) struct DockerBackend {
    docker: Docker,
    /// Value of the data-dir label: the canonical data dir.
    scope: String,
    remove_stopped: bool,
    health_poll: Duration,
}

fn status_code(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's message without bollard's "Docker responded with status code" wrapper.
fn engine_message(error: &DockerError) -> String {
    match error {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Splits an image reference into `fromImage` and `tag` for the pull API. Without a tag the API
/// would pull every tag of the repository, so `latest` is made explicit. Digests stay in the name.
fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let last_segment = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_segment..].rfind(':') {
        Some(colon) => {
            let at = last_segment + colon;
            (&image[..at], &image[at + 1..])
        }
        None => (image, "latest"),
    }
}

fn docker_network_mode(mode: NetworkMode) -> &'static str {
    match mode {
        NetworkMode::Bridge | NetworkMode::Awsvpc => "bridge",
        NetworkMode::Host => "host",
        NetworkMode::None => "none",
    }
}

fn publishes_ports(mode: NetworkMode) -> bool {
    matches!(mode, NetworkMode::Bridge | NetworkMode::Awsvpc)
}

fn port_key(container_port: u16, protocol: TransportProtocol) -> String {
    format!("{container_port}/{protocol}")
}

fn mib_to_bytes(mib: u32) -> i64 {
    i64::from(mib) * 1024 * 1024
}

fn nanos(secs: u32) -> i64 {
    i64::try_from(seconds(secs).as_nanos()).unwrap_or(i64::MAX)
}

/// The create request for one container definition.
fn create_body(task: &TaskPayload, spec: &ContainerSpec, scope: &str) -> ContainerCreateBody {
    let labels = HashMap::from([
        (LABEL_TASK_ARN.to_string(), task.arn.clone()),
        (LABEL_CONTAINER_NAME.to_string(), spec.name.clone()),
        (LABEL_DATA_DIR.to_string(), scope.to_string()),
    ]);
    let publish = publishes_ports(task.network_mode) && !spec.port_mappings.is_empty();
    let mut port_bindings = PortMap::new();
    for mapping in &spec.port_mappings {
        port_bindings
            .entry(port_key(mapping.container_port, mapping.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: None,
                host_port: Some(mapping.host_port.to_string()),
            });
    }
    let exposed: Vec<String> = port_bindings.keys().cloned().collect();
    let host_config = HostConfig {
        cpu_shares: Some(i64::from(spec.cpu).max(MIN_CPU_SHARES)),
        memory: spec.memory.map(mib_to_bytes),
        memory_reservation: spec.memory_reservation.map(mib_to_bytes),
        network_mode: Some(docker_network_mode(task.network_mode).to_string()),
        port_bindings: publish.then_some(port_bindings),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entry_point.clone(),
        cmd: spec.command.clone(),
        env: Some(
            spec.environment
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ),
        working_dir: spec.working_directory.clone(),
        labels: Some(labels),
        exposed_ports: publish.then_some(exposed),
        stop_timeout: spec.stop_timeout.map(i64::from),
        healthcheck: spec.health_check.as_ref().map(|check| HealthConfig {
            test: Some(docker_test(&check.command)),
            interval: Some(nanos(check.interval)),
            timeout: Some(nanos(check.timeout)),
            retries: Some(i64::from(check.retries.max(1))),
            start_period: (check.start_period > 0).then(|| nanos(check.start_period)),
            start_interval: None,
        }),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// Bindings as the engine reports them for a started container.
fn bindings_from_inspect(inspect: &ContainerInspectResponse) -> Vec<NetworkBinding> {
    let Some(ports) = inspect
        .network_settings
        .as_ref()
        .and_then(|settings| settings.ports.as_ref())
    else {
        return Vec::new();
    };
    let mut bindings = Vec::new();
    for (key, host_bindings) in ports {
        let Some((port, protocol)) = key.split_once('/') else {
            continue;
        };
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        let protocol = match protocol {
            "udp" => TransportProtocol::Udp,
            "tcp" => TransportProtocol::Tcp,
            _ => continue,
        };
        for binding in host_bindings.iter().flatten() {
            let Some(host_port) = binding.host_port.as_deref().and_then(|p| p.parse().ok()) else {
                continue;
            };
            bindings.push(NetworkBinding {
                bind_ip: binding
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".to_string()),
                container_port,
                host_port,
                protocol,
            });
        }
    }
    bindings.sort_by(|a, b| {
        (a.container_port, a.protocol.as_str(), &a.bind_ip).cmp(&(
            b.container_port,
            b.protocol.as_str(),
            &b.bind_ip,
        ))
    });
    bindings.dedup();
    bindings
}

/// Bindings as requested, for modes where the engine publishes nothing (host) or when the container
/// ended before its ports could be read.
fn requested_bindings(spec: &ContainerSpec) -> Vec<NetworkBinding> {
    spec.port_mappings
        .iter()
        .map(|m| NetworkBinding {
            bind_ip: "0.0.0.0".to_string(),
            container_port: m.container_port,
            host_port: m.host_port,
            protocol: m.protocol,
        })
        .collect()
}

fn health_from_inspect(inspect: &ContainerInspectResponse) -> HealthStatus {
    let status = inspect
        .state
        .as_ref()
        .and_then(|state| state.health.as_ref())
        .and_then(|health| health.status);
    match status {
        Some(HealthStatusEnum::HEALTHY) => HealthStatus::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => HealthStatus::Unhealthy,
        _ => HealthStatus::Unknown,
    }
}

/// Exit code and reason of an exited container, from its inspect data.
fn exit_from_inspect(inspect: &ContainerInspectResponse) -> Exit {
    let state = inspect.state.as_ref();
    let exit_code = state
        .and_then(|s| s.exit_code)
        .and_then(|code| i32::try_from(code).ok());
    let reason = if state.and_then(|s| s.oom_killed).unwrap_or(false) {
        Some("OutOfMemoryError: Container killed due to memory usage".to_string())
    } else {
        state
            .and_then(|s| s.error.clone())
            .filter(|error| !error.is_empty())
    };
    Exit { exit_code, reason }
}

fn is_running(inspect: &ContainerInspectResponse) -> bool {
    inspect
        .state
        .as_ref()
        .and_then(|s| s.running)
        .unwrap_or(false)
}

impl DockerBackend {
    /// Makes sure `image` is present, pulling it only when it is not.
    async fn ensure_image(&self, image: &str) -> Result<(), String> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(error) if status_code(&error) == Some(404) => {}
            Err(error) => {
                return Err(format!(
                    "inspecting image {image}: {}",
                    engine_message(&error)
                ));
            }
        }
        tracing::info!(image, "image not present locally; pulling");
        let (from_image, tag) = split_reference(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(from_image)
            .tag(tag)
            .build();
        let mut progress = std::pin::pin!(self.docker.create_image(Some(options), None, None));
        while let Some(item) = progress.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail {
                        let message = detail.message.unwrap_or_else(|| "pull failed".to_string());
                        return Err(format!("pull image {image}: {message}"));
                    }
                }
                Err(error) => {
                    return Err(format!("pull image {image}: {}", engine_message(&error)));
                }
            }
        }
        // Some engines end a failed pull's stream without an error item; trust only the result.
        self.docker
            .inspect_image(image)
            .await
            .map(|_| ())
            .map_err(|error| format!("pull image {image}: {}", engine_message(&error)))
    }

    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => {}
            Err(error) if status_code(&error) == Some(404) => {}
            Err(error) => tracing::warn!(container_id = id, %error, "cannot remove container"),
        }
    }

    async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<String, DockerError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        match self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Ok(created) => Ok(created.id),
            // A leftover of an attempt that did not finish (the agent died between create and
            // recording the task): it never ran for anyone, replace it.
            Err(error) if status_code(&error) == Some(409) => {
                tracing::warn!(name, "replacing leftover container with the same name");
                self.remove(name).await;
                Ok(self.docker.create_container(Some(options), body).await?.id)
            }
            Err(error) => Err(error),
        }
    }

    /// Copies the container's log stream into its log file, from `since` (unix seconds; 0 = all).
    fn follow_logs(&self, id: &str, path: PathBuf, since: i32) -> JoinHandle<()> {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .since(since)
            .build();
        let stream = self.docker.logs(id, Some(options));
        tokio::spawn(follow_into_file(path, stream))
    }

    async fn start_container(
        &self,
        task: &TaskPayload,
        index: usize,
        dir: &TaskDir,
    ) -> Result<Started<DockerHandle>, StartFailure> {
        let fail = |prefix: &str, message: String| StartFailure {
            container: Some(index),
            reason: format!("{prefix}: {message}"),
        };
        let spec = task
            .containers
            .get(index)
            .ok_or_else(|| fail("CannotCreateContainerError", "no such container".into()))?;
        let id =
            task_id(&task.arn).map_err(|e| fail("CannotCreateContainerError", e.to_string()))?;
        let name = format!("berth-{id}-{}", spec.name);
        let body = create_body(task, spec, &self.scope);
        let id = self
            .create(&name, body)
            .await
            .map_err(|e| fail("CannotCreateContainerError", engine_message(&e)))?;
        if let Err(error) = self.docker.start_container(&id, None).await {
            self.remove(&id).await;
            return Err(fail("CannotStartContainerError", engine_message(&error)));
        }
        let logs = self.follow_logs(&id, dir.log_path(&spec.name), 0);
        let network_bindings = if publishes_ports(task.network_mode) {
            match self.docker.inspect_container(&id, None).await {
                Ok(inspect) if is_running(&inspect) => bindings_from_inspect(&inspect),
                // Already gone again: report what was asked for; the exit follows.
                _ => requested_bindings(spec),
            }
        } else if task.network_mode == NetworkMode::Host {
            requested_bindings(spec)
        } else {
            Vec::new()
        };
        tracing::debug!(task_arn = %task.arn, container = %spec.name, container_id = %id, "container started");
        Ok(Started {
            handle: DockerHandle(Arc::new(DockerInner {
                id: id.clone(),
                logs: Mutex::new(Some(logs)),
            })),
            runtime_id: id,
            network_bindings,
        })
    }

    async fn wait_exit(&self, handle: DockerHandle) -> Exit {
        let id = handle.0.id.as_str();
        loop {
            let options = WaitContainerOptionsBuilder::default()
                .condition("not-running")
                .build();
            let mut waiting = std::pin::pin!(self.docker.wait_container(id, Some(options)));
            let outcome = waiting.next().await;
            match outcome {
                // bollard turns non-zero exits into errors; either way the container is down.
                Some(Ok(_)) | Some(Err(DockerError::DockerContainerWaitError { .. })) => break,
                Some(Err(error)) if status_code(&error) == Some(404) => {
                    self.drain_logs(&handle).await;
                    return Exit {
                        exit_code: None,
                        reason: Some("container was removed outside the agent".to_string()),
                    };
                }
                other => {
                    // The engine went away or the stream broke: look again shortly.
                    if let Some(Err(error)) = other {
                        tracing::warn!(container_id = id, %error, "waiting for container failed; retrying");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        self.drain_logs(&handle).await;
        match self.docker.inspect_container(id, None).await {
            Ok(inspect) => exit_from_inspect(&inspect),
            Err(error) => Exit {
                exit_code: None,
                reason: Some(format!(
                    "cannot inspect stopped container: {}",
                    engine_message(&error)
                )),
            },
        }
    }

    /// Lets the log follower copy the last lines before STOPPED is reported.
    async fn drain_logs(&self, handle: &DockerHandle) {
        let follower = handle
            .0
            .logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(follower) = follower {
            let _ = tokio::time::timeout(LOG_DRAIN_TIMEOUT, follower).await;
        }
    }

    async fn stop_container(&self, handle: DockerHandle, timeout: Duration) {
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        match self
            .docker
            .stop_container(&handle.0.id, Some(options))
            .await
        {
            Ok(()) => {}
            // 304: already stopped; 404: already gone.
            Err(error) if matches!(status_code(&error), Some(304) | Some(404)) => {}
            Err(error) => {
                tracing::warn!(container_id = %handle.0.id, %error, "stopping container failed")
            }
        }
    }

    async fn health_loop(&self, handle: DockerHandle, reporter: HealthReporter) {
        loop {
            tokio::time::sleep(self.health_poll).await;
            match self.docker.inspect_container(&handle.0.id, None).await {
                Ok(inspect) => reporter.report(health_from_inspect(&inspect)),
                Err(error) => {
                    tracing::debug!(container_id = %handle.0.id, %error, "cannot read health")
                }
            }
        }
    }

    async fn find(
        &self,
        data_dir: &Path,
    ) -> Result<Vec<FoundContainer<DockerHandle>>, RuntimeError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_DATA_DIR}={}", self.scope)],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self.docker.list_containers(Some(options)).await?;
        let mut found = Vec::new();
        for summary in summaries {
            let labels = summary.labels.unwrap_or_default();
            let (Some(id), Some(arn), Some(name)) = (
                summary.id,
                labels.get(LABEL_TASK_ARN),
                labels.get(LABEL_CONTAINER_NAME),
            ) else {
                continue;
            };
            let inspect = match self.docker.inspect_container(&id, None).await {
                Ok(inspect) => inspect,
                Err(error) => {
                    tracing::warn!(container_id = %id, %error, "cannot inspect container found after restart");
                    continue;
                }
            };
            let state = if is_running(&inspect) {
                let log_path = match TaskDir::new(data_dir, arn) {
                    Ok(dir) => dir.log_path(name),
                    Err(_) => continue,
                };
                // Resume where the file stops (at one-second resolution: a line may repeat).
                let since = tokio::fs::metadata(&log_path)
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .and_then(|d| i32::try_from(d.as_secs()).ok())
                    .unwrap_or(0);
                if let Some(parent) = log_path.parent() {
                    let _ = tokio::fs::create_dir_all(parent).await;
                }
                let logs = self.follow_logs(&id, log_path, since);
                Found::Running {
                    handle: DockerHandle(Arc::new(DockerInner {
                        id: id.clone(),
                        logs: Mutex::new(Some(logs)),
                    })),
                    network_bindings: bindings_from_inspect(&inspect),
                }
            } else {
                Found::Exited(exit_from_inspect(&inspect))
            };
            found.push(FoundContainer {
                task_arn: arn.clone(),
                name: name.clone(),
                runtime_id: Some(id),
                state,
            });
        }
        Ok(found)
    }
}

impl Backend for DockerBackend {
    type Handle = DockerHandle;
    const KIND: DriverKind = DriverKind::Docker;
    const PULLS_IMAGES: bool = true;

    async fn prepare(&self, task: &TaskPayload) -> Result<(), StartFailure> {
        let mut checked: Vec<&str> = Vec::new();
        for (index, spec) in task.containers.iter().enumerate() {
            if checked.contains(&spec.image.as_str()) {
                continue;
            }
            self.ensure_image(&spec.image)
                .await
                .map_err(|message| StartFailure {
                    container: Some(index),
                    reason: format!("CannotPullContainerError: {message}"),
                })?;
            checked.push(&spec.image);
        }
        Ok(())
    }

    async fn start(
        &self,
        task: &TaskPayload,
        index: usize,
        dir: &TaskDir,
    ) -> Result<Started<DockerHandle>, StartFailure> {
        self.start_container(task, index, dir).await
    }

    async fn wait(&self, handle: DockerHandle) -> Exit {
        self.wait_exit(handle).await
    }

    async fn stop(&self, handle: DockerHandle, timeout: Duration) {
        self.stop_container(handle, timeout).await
    }

    async fn watch_health(
        &self,
        handle: DockerHandle,
        _task: Arc<TaskPayload>,
        _index: usize,
        _dir: TaskDir,
        reporter: HealthReporter,
    ) {
        self.health_loop(handle, reporter).await
    }

    async fn discover(
        &self,
        data_dir: &Path,
    ) -> Result<Vec<FoundContainer<DockerHandle>>, RuntimeError> {
        self.find(data_dir).await
    }

    async fn cleanup(&self, _task: &TaskPayload, _dir: &TaskDir, handles: Vec<DockerHandle>) {
        if !self.remove_stopped {
            return;
        }
        for handle in handles {
            self.remove(&handle.0.id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_agent_protocol::{HealthCheck, PortMapping};

    #[test]
    fn references_split_with_explicit_tag() {
        assert_eq!(split_reference("busybox"), ("busybox", "latest"));
        assert_eq!(split_reference("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(
            split_reference("registry:5000/team/app"),
            ("registry:5000/team/app", "latest")
        );
        assert_eq!(
            split_reference("registry:5000/team/app:v2"),
            ("registry:5000/team/app", "v2")
        );
        assert_eq!(split_reference("app@sha256:abc"), ("app@sha256:abc", ""));
    }

    #[test]
    fn create_body_maps_the_definition() {
        let mut spec = ContainerSpec::new("web", "nginx:1.27");
        spec.cpu = 0;
        spec.memory = Some(128);
        spec.memory_reservation = Some(64);
        spec.port_mappings = vec![PortMapping {
            container_port: 80,
            host_port: 8080,
            protocol: TransportProtocol::Tcp,
        }];
        spec.health_check = Some(HealthCheck {
            command: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5,
            timeout: 2,
            retries: 3,
            start_period: 0,
        });
        spec.environment.insert("A".into(), "1".into());
        let task = TaskPayload {
            arn: "arn:aws:ecs:r:1:task/c/t1".into(),
            family: "f".into(),
            revision: 1,
            desired_status: berth_agent_protocol::DesiredStatus::Running,
            network_mode: NetworkMode::Awsvpc,
            containers: vec![spec.clone()],
            stop_reason: None,
        };
        let body = create_body(&task, &spec, "/data");
        let host = body.host_config.clone().unwrap_or_default();
        assert_eq!(host.cpu_shares, Some(2));
        assert_eq!(host.memory, Some(128 * 1024 * 1024));
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        let bindings = host.port_bindings.unwrap_or_default();
        assert_eq!(
            bindings
                .get("80/tcp")
                .cloned()
                .flatten()
                .unwrap_or_default()[0]
                .host_port
                .as_deref(),
            Some("8080")
        );
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        let check = body.healthcheck.unwrap_or_default();
        assert_eq!(check.interval, Some(5_000_000_000));
        assert_eq!(
            body.labels
                .unwrap_or_default()
                .get(LABEL_TASK_ARN)
                .map(String::as_str),
            Some("arn:aws:ecs:r:1:task/c/t1")
        );

        let host_mode = TaskPayload {
            network_mode: NetworkMode::Host,
            ..task
        };
        let body = create_body(&host_mode, &spec, "/data");
        assert!(body.host_config.unwrap_or_default().port_bindings.is_none());
        assert!(body.exposed_ports.is_none());
    }
}
