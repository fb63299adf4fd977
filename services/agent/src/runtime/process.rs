//! The `process` driver: runs each container definition's `entryPoint` + `command` as a host
//! process. For hosts without Docker, and for a laptop's `berth up`.
//!
//! * Program: `entryPoint` followed by `command`; without an `entryPoint`, `command[0]` is the
//!   program, and a single-string `command` that looks like shell (spaces, `;`, `|`, `$`, ...) runs as
//!   `/bin/sh -c <command>` (there is no image to supply a default entrypoint or shell).
//! * Environment: only `PATH` and `HOME` of the agent, then the container's `environment`. The agent's
//!   own environment (its token, its configuration) is not leaked into workloads.
//! * Working directory: the task directory `<data-dir>/tasks/<task-id>/`; a relative
//!   `workingDirectory` is taken inside it, an absolute one as is.
//! * Each container is the leader of its own process group (`process_group(0)`), so stopping it
//!   signals everything it spawned: SIGTERM to the group, SIGKILL after `stopTimeout`. When the
//!   leader exits, stragglers in its group are killed, as Docker does when a container's init exits.
//! * stdout and stderr go straight to `<container>.log` in the task directory.
//! * The image is recorded (in `task.json`), never pulled. Port mappings are reported as bindings
//!   on `0.0.0.0`; the process is expected to listen on the host port itself.
//! * The pid and the kernel's start time of each leader go to `<container>.pid`; a restarted agent
//!   checks them (`kill(pid, 0)` plus the start time, so a reused pid is not mistaken for ours) to
//!   find the processes still running. Exit codes of processes that end while the agent is not their
//!   parent cannot be known and are reported as absent.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent_protocol::{ContainerSpec, DriverKind, NetworkBinding, TaskPayload, TaskStatus};
use tokio::process::{Child, Command};

use super::health::{HealthTracker, check_argv, seconds};
use super::layout::{TaskDir, tasks_root};
use super::logs::open_for_child;
use super::task::{
    Backend, Exit, Found, FoundContainer, HealthReporter, Shared, StartFailure, Started,
    SupervisedDriver,
};
use super::{EventSender, RuntimeError};

/// Configuration of the process driver.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The agent's data dir; tasks live under `<data_dir>/tasks/`.
    pub data_dir: PathBuf,
}

impl ProcessConfig {
    /// A configuration over `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }
}

/// Runs tasks as host processes. Cheap to share behind an `Arc<dyn Driver>`.
pub struct ProcessDriver {
    shared: Arc<Shared<ProcessBackend>>,
}

impl ProcessDriver {
    /// A driver over `config.data_dir`, emitting events on `events`. Tasks left running by an
    /// earlier agent over the same data dir are adopted on the first call.
    pub fn new(config: ProcessConfig, events: EventSender) -> Self {
        Self {
            shared: Shared::new(ProcessBackend, config.data_dir, events),
        }
    }
}

impl SupervisedDriver for ProcessDriver {
    type Backend = ProcessBackend;

    fn shared(&self) -> &Arc<Shared<ProcessBackend>> {
        &self.shared
    }
}

/// A started (or re-found) process group leader.
#[derive(Clone)]
pub(crate) struct ProcHandle(Arc<ProcInner>);

struct ProcInner {
    pid: i32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22), to tell our process
    /// from a later one that got the same pid. `None` where `/proc` is unavailable.
    start_time: Option<u64>,
    /// Present when this agent spawned it, so the exit status can be read.
    child: tokio::sync::Mutex<Option<Child>>,
}

impl ProcHandle {
    fn alive(&self) -> bool {
        process_alive(self.0.pid, self.0.start_time)
    }
}

pub(crate) struct ProcessBackend;

/// Bindings are only recorded: the process listens where it wants.
fn bindings(spec: &ContainerSpec) -> Vec<NetworkBinding> {
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

/// The argv for a container; see the module docs.
pub(crate) fn container_argv(spec: &ContainerSpec) -> Result<Vec<String>, String> {
    let entry_point = spec.entry_point.clone().unwrap_or_default();
    let command = spec.command.clone().unwrap_or_default();
    let argv = if !entry_point.is_empty() {
        entry_point.into_iter().chain(command).collect()
    } else {
        match command.as_slice() {
            [single] if looks_like_shell(single) => {
                vec!["/bin/sh".to_string(), "-c".to_string(), single.clone()]
            }
            _ => command,
        }
    };
    match argv.first() {
        Some(program) if !program.is_empty() => Ok(argv),
        _ => {
            Err("no entryPoint or command to run (the process driver has no image defaults)".into())
        }
    }
}

fn looks_like_shell(command: &str) -> bool {
    command
        .chars()
        .any(|c| c.is_whitespace() || "|&;<>()$`\\\"'*?[]#~{}".contains(c))
}

/// The environment a container (and its health check) sees.
fn container_env(spec: &ContainerSpec) -> Vec<(String, String)> {
    const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let mut env = vec![(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string()),
    )];
    if let Ok(home) = std::env::var("HOME") {
        env.push(("HOME".to_string(), home));
    }
    env.extend(spec.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

fn container_cwd(dir: &TaskDir, spec: &ContainerSpec) -> PathBuf {
    match &spec.working_directory {
        Some(wd) if Path::new(wd).is_absolute() => PathBuf::from(wd),
        Some(wd) => dir.root().join(wd),
        None => dir.root().to_path_buf(),
    }
}

/// Exit code as Docker reports it: the code, or 128 + signal number for a killed process.
fn exit_code(status: ExitStatus) -> Option<i32> {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
}

fn cannot_start(message: impl std::fmt::Display) -> StartFailure {
    StartFailure {
        container: None,
        reason: format!("CannotStartContainerError: {message}"),
    }
}

impl ProcessBackend {
    async fn spawn(
        &self,
        task: &TaskPayload,
        index: usize,
        dir: &TaskDir,
    ) -> Result<Started<ProcHandle>, StartFailure> {
        let spec = task
            .containers
            .get(index)
            .ok_or_else(|| cannot_start("no such container"))?;
        let argv = container_argv(spec).map_err(cannot_start)?;
        let cwd = container_cwd(dir, spec);
        if spec
            .working_directory
            .as_deref()
            .is_some_and(|wd| !Path::new(wd).is_absolute())
        {
            tokio::fs::create_dir_all(&cwd)
                .await
                .map_err(|e| cannot_start(format!("creating {}: {e}", cwd.display())))?;
        }
        let log = open_for_child(&dir.log_path(&spec.name)).map_err(cannot_start)?;
        let log_err = log
            .try_clone()
            .map_err(|e| cannot_start(format!("log file: {e}")))?;

        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(container_env(spec))
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0)
            .kill_on_drop(false);
        let child = command
            .spawn()
            .map_err(|e| cannot_start(format!("running {:?}: {e}", argv[0])))?;
        let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
            return Err(cannot_start("process exited before its pid was known"));
        };
        let start_time = proc_start_time(pid);
        let pid_line = match start_time {
            Some(t) => format!("{pid} {t}\n"),
            None => format!("{pid}\n"),
        };
        if let Err(error) = tokio::fs::write(dir.pid_path(&spec.name), pid_line).await {
            // Still runs and is supervised; only recovery after an agent restart loses it.
            tracing::warn!(task_arn = %task.arn, container = %spec.name, %error, "cannot write pid file");
        }
        tracing::debug!(task_arn = %task.arn, container = %spec.name, pid, ?argv, "process started");
        Ok(Started {
            handle: ProcHandle(Arc::new(ProcInner {
                pid,
                start_time,
                child: tokio::sync::Mutex::new(Some(child)),
            })),
            runtime_id: pid.to_string(),
            network_bindings: bindings(spec),
        })
    }

    async fn wait_for(&self, handle: ProcHandle) -> Exit {
        let child = handle.0.child.lock().await.take();
        let exit = match child {
            Some(mut child) => match child.wait().await {
                Ok(status) => Exit {
                    exit_code: exit_code(status),
                    reason: None,
                },
                Err(error) => Exit {
                    exit_code: None,
                    reason: Some(format!("cannot wait for process: {error}")),
                },
            },
            None => {
                // Not our child (adopted after a restart): poll until it is gone.
                while handle.alive() {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Exit {
                    exit_code: None,
                    reason: Some(
                        "exit code unknown: the process was adopted after an agent restart"
                            .to_string(),
                    ),
                }
            }
        };
        // Whatever the leader left running in its group goes with it.
        let _ = signal_group(handle.0.pid, libc::SIGKILL);
        exit
    }

    async fn terminate(&self, handle: ProcHandle, timeout: Duration) {
        let pid = handle.0.pid;
        if let Err(error) = signal_group(pid, libc::SIGTERM) {
            tracing::debug!(pid, %error, "SIGTERM to process group failed");
        }
        let deadline = Instant::now() + timeout;
        while handle.alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if handle.alive() {
            tracing::info!(pid, "stop timeout elapsed; sending SIGKILL");
            if let Err(error) = signal_group(pid, libc::SIGKILL) {
                tracing::debug!(pid, %error, "SIGKILL to process group failed");
            }
        }
    }

    async fn health_loop(
        &self,
        task: Arc<TaskPayload>,
        index: usize,
        dir: TaskDir,
        reporter: HealthReporter,
    ) {
        let Some(spec) = task.containers.get(index) else {
            return;
        };
        let Some(check) = &spec.health_check else {
            return;
        };
        let argv = check_argv(&check.command);
        let env = container_env(spec);
        let cwd = container_cwd(&dir, spec);
        let mut tracker = HealthTracker::new(check, Instant::now());
        loop {
            tokio::time::sleep(seconds(check.interval)).await;
            let passed = match &argv {
                Ok(argv) => run_check(argv, &env, &cwd, seconds(check.timeout)).await,
                Err(_) => false,
            };
            reporter.report(tracker.record(passed, Instant::now()));
        }
    }

    async fn find(&self, data_dir: &Path) -> Vec<FoundContainer<ProcHandle>> {
        let mut found = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(tasks_root(data_dir)).await else {
            return found;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let dir = TaskDir::from_path(entry.path());
            let (Some(state), Some(spec)) = (dir.read_state().await, dir.read_spec().await) else {
                continue;
            };
            if state.status == TaskStatus::Stopped || state.task_arn != spec.arn {
                continue;
            }
            for container in &spec.containers {
                let Some((pid, start_time)) = read_pid_file(&dir.pid_path(&container.name)).await
                else {
                    continue;
                };
                let state = if process_alive(pid, start_time) {
                    Found::Running {
                        handle: ProcHandle(Arc::new(ProcInner {
                            pid,
                            start_time,
                            child: tokio::sync::Mutex::new(None),
                        })),
                        network_bindings: bindings(container),
                    }
                } else {
                    Found::Exited(Exit {
                        exit_code: None,
                        reason: Some(
                            "process ended while the agent was not running; exit code unknown"
                                .to_string(),
                        ),
                    })
                };
                found.push(FoundContainer {
                    task_arn: spec.arn.clone(),
                    name: container.name.clone(),
                    runtime_id: Some(pid.to_string()),
                    state,
                });
            }
        }
        found
    }
}

impl Backend for ProcessBackend {
    type Handle = ProcHandle;
    const KIND: DriverKind = DriverKind::Process;
    const PULLS_IMAGES: bool = false;

    async fn prepare(&self, _task: &TaskPayload) -> Result<(), StartFailure> {
        Ok(())
    }

    async fn start(
        &self,
        task: &TaskPayload,
        index: usize,
        dir: &TaskDir,
    ) -> Result<Started<ProcHandle>, StartFailure> {
        self.spawn(task, index, dir).await
    }

    async fn wait(&self, handle: ProcHandle) -> Exit {
        self.wait_for(handle).await
    }

    async fn stop(&self, handle: ProcHandle, timeout: Duration) {
        self.terminate(handle, timeout).await
    }

    async fn watch_health(
        &self,
        _handle: ProcHandle,
        task: Arc<TaskPayload>,
        index: usize,
        dir: TaskDir,
        reporter: HealthReporter,
    ) {
        self.health_loop(task, index, dir, reporter).await
    }

    async fn discover(
        &self,
        data_dir: &Path,
    ) -> Result<Vec<FoundContainer<ProcHandle>>, RuntimeError> {
        Ok(self.find(data_dir).await)
    }

    async fn cleanup(&self, task: &TaskPayload, dir: &TaskDir, _handles: Vec<ProcHandle>) {
        for container in &task.containers {
            let _ = tokio::fs::remove_file(dir.pid_path(&container.name)).await;
        }
    }
}

/// Runs one health check; true when it exits 0 within `timeout`.
async fn run_check(
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
) -> bool {
    let Some((program, args)) = argv.split_first() else {
        return false;
    };
    let spawned = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = spawned else {
        return false;
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        _ => {
            if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                let _ = signal_group(pid, libc::SIGKILL);
            }
            let _ = child.wait().await;
            false
        }
    }
}

async fn read_pid_file(path: &Path) -> Option<(i32, Option<u64>)> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    let mut fields = text.split_whitespace();
    let pid = fields.next()?.parse().ok()?;
    let start_time = fields.next().and_then(|t| t.parse().ok());
    Some((pid, start_time))
}

/// `/proc/<pid>/stat` after the command name: (state, start time).
fn proc_stat(pid: i32) -> Option<(char, Option<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); start time is field 22.
    let start_time = fields.nth(18).and_then(|t| t.parse().ok());
    Some((state, start_time))
}

fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).and_then(|(_, start_time)| start_time)
}

/// Whether `pid` is a live (not zombie) process, and the same one if `start_time` is known.
fn process_alive(pid: i32, start_time: Option<u64>) -> bool {
    let exists = match send_signal(pid, 0) {
        Ok(()) => true,
        Err(error) => error.raw_os_error() == Some(libc::EPERM),
    };
    if !exists {
        return false;
    }
    match proc_stat(pid) {
        Some((state, _)) if state == 'Z' || state == 'X' => false,
        Some((_, Some(now))) => start_time.is_none_or(|recorded| recorded == now),
        // No /proc (or it vanished in between): trust kill(pid, 0).
        _ => true,
    }
}

/// Signals the process group led by `pgid`.
fn signal_group(pgid: i32, signal: libc::c_int) -> std::io::Result<()> {
    send_signal(-pgid, signal)
}

/// `kill(2)`, refusing targets that would hit more than one chosen process or group: pid 0 and
/// -1 (our own group, every process), 1 and -1's neighbours, and our own pid or group id.
#[allow(unsafe_code)]
fn send_signal(target: i32, signal: libc::c_int) -> std::io::Result<()> {
    let own_pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let id = target.checked_abs().unwrap_or(0);
    if id <= 1 || id == own_pid {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing to signal {target}"),
        ));
    }
    // SAFETY: kill(2) only takes two integers and reads or writes no memory of this process; any
    // values are memory-safe (bad ones fail with an errno). The checks above keep it from hitting
    // every process (-1), our own group (0) or init.
    let rc = unsafe { libc::kill(target, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(entry_point: Option<&[&str]>, command: Option<&[&str]>) -> ContainerSpec {
        let mut spec = ContainerSpec::new("app", "busybox");
        spec.entry_point = entry_point.map(|v| v.iter().map(|s| s.to_string()).collect());
        spec.command = command.map(|v| v.iter().map(|s| s.to_string()).collect());
        spec
    }

    #[test]
    fn argv_rules() {
        let argv = |e, c| container_argv(&spec(e, c));
        assert_eq!(
            argv(Some(&["sh", "-c"]), Some(&["echo hi"])).ok(),
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            argv(None, Some(&["sleep", "1"])).ok(),
            Some(vec!["sleep".into(), "1".into()])
        );
        assert_eq!(
            argv(None, Some(&["sleep 1; exit 3"])).ok(),
            Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "sleep 1; exit 3".into()
            ])
        );
        assert_eq!(argv(None, Some(&["true"])).ok(), Some(vec!["true".into()]));
        assert!(argv(None, None).is_err());
        assert!(argv(Some(&[]), Some(&[])).is_err());
        assert!(argv(None, Some(&[""])).is_err());
    }

    #[test]
    fn refuses_dangerous_signal_targets() {
        for target in [0, 1, -1, i32::MIN] {
            assert!(send_signal(target, 0).is_err(), "signalled {target}");
        }
        let own = i32::try_from(std::process::id()).unwrap_or(0);
        assert!(send_signal(own, 0).is_err());
    }

    #[test]
    fn own_process_looks_alive_with_its_start_time() {
        let own = i32::try_from(std::process::id()).unwrap_or(0);
        let start = proc_start_time(own);
        assert!(start.is_some());
        assert_eq!(proc_stat(own).map(|(state, _)| state == 'Z'), Some(false));
    }
}
