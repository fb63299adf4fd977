//! The task supervisor shared by both drivers.
//!
//! Each task gets one supervisor (a tokio task) that owns the task's observed state and is the only
//! writer of it: it starts the containers in definition order, watches each for exit and health,
//! applies the ECS task rules (essential exit stops the rest, start failures fail the task), stops
//! containers when asked and publishes a [`TaskSnapshot`] after every change (persisted to the task
//! dir first, then sent on the event channel).
//!
//! What differs between Docker and processes sits behind [`Backend`]: how to prepare images, start,
//! wait for, stop and health-check one container, and how to find containers again after an agent
//! restart. Keeping the rules here means both drivers report identically.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use berth_agent_protocol::{
    ContainerSpec, ContainerStateChange, DesiredStatus, DriverKind, EpochMillis, HealthStatus,
    NetworkBinding, NetworkMode, TaskPayload, TaskSnapshot, TaskStatus, TaskStopCode,
};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::layout::{TaskDir, check_payload, tasks_root};
use super::{
    BoxFuture, DEFAULT_STOP_TIMEOUT, Driver, ESSENTIAL_CONTAINER_EXITED, EventSender, RuntimeError,
};

/// A container the backend has started.
pub(crate) struct Started<H> {
    pub(crate) handle: H,
    pub(crate) runtime_id: String,
    pub(crate) network_bindings: Vec<NetworkBinding>,
}

/// How a container ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exit {
    pub(crate) exit_code: Option<i32>,
    pub(crate) reason: Option<String>,
}

/// Why a container could not be brought up, already in ECS form
/// (`CannotPullContainerError: ...`, `CannotStartContainerError: ...`).
#[derive(Debug, Clone)]
pub(crate) struct StartFailure {
    /// The container the failure belongs to, when it is one container's (a pull failure of a shared
    /// image is reported on the first container using it).
    pub(crate) container: Option<usize>,
    pub(crate) reason: String,
}

/// A container found by [`Backend::discover`] after an agent restart.
pub(crate) struct FoundContainer<H> {
    pub(crate) task_arn: String,
    pub(crate) name: String,
    pub(crate) runtime_id: Option<String>,
    pub(crate) state: Found<H>,
}

pub(crate) enum Found<H> {
    /// Still running; supervise it again.
    Running {
        handle: H,
        network_bindings: Vec<NetworkBinding>,
    },
    /// It ended while no agent was watching.
    Exited(Exit),
}

/// Sends one container's health verdicts to its supervisor.
#[derive(Clone)]
pub(crate) struct HealthReporter {
    index: usize,
    tx: mpsc::UnboundedSender<Internal>,
}

impl HealthReporter {
    pub(crate) fn report(&self, status: HealthStatus) {
        // The supervisor is gone once the task has stopped; nothing to tell then.
        let _ = self.tx.send(Internal::Health {
            index: self.index,
            status,
        });
    }
}

/// One runtime: the per-container operations the supervisor needs.
pub(crate) trait Backend: Send + Sync + 'static {
    /// A running container, as the backend needs it to wait for, stop and probe it.
    type Handle: Clone + Send + Sync + 'static;

    /// The driver kind, for registration.
    const KIND: DriverKind;

    /// Whether [`Backend::prepare`] obtains images (and so `pulledAt` is meaningful).
    const PULLS_IMAGES: bool;

    /// Work before any container starts (making sure images are present).
    fn prepare(&self, task: &TaskPayload) -> impl Future<Output = Result<(), StartFailure>> + Send;

    /// Creates and starts container `index` of `task`.
    fn start(
        &self,
        task: &TaskPayload,
        index: usize,
        dir: &TaskDir,
    ) -> impl Future<Output = Result<Started<Self::Handle>, StartFailure>> + Send;

    /// Resolves when the container has exited.
    fn wait(&self, handle: Self::Handle) -> impl Future<Output = Exit> + Send;

    /// SIGTERM, then SIGKILL after `timeout`. Resolves when done signalling (the exit itself is
    /// observed by [`Backend::wait`]).
    fn stop(&self, handle: Self::Handle, timeout: Duration) -> impl Future<Output = ()> + Send;

    /// Reports container `index`'s health until aborted (only called when it has a health check).
    fn watch_health(
        &self,
        handle: Self::Handle,
        task: Arc<TaskPayload>,
        index: usize,
        dir: TaskDir,
        reporter: HealthReporter,
    ) -> impl Future<Output = ()> + Send;

    /// Finds the containers this driver started under `data_dir` (before a restart).
    fn discover(
        &self,
        data_dir: &Path,
    ) -> impl Future<Output = Result<Vec<FoundContainer<Self::Handle>>, RuntimeError>> + Send;

    /// Releases what a stopped task leaves behind (pid files, stopped containers).
    fn cleanup(
        &self,
        task: &TaskPayload,
        dir: &TaskDir,
        handles: Vec<Self::Handle>,
    ) -> impl Future<Output = ()> + Send;
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole driver down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Command {
    Stop { reason: Option<String> },
}

pub(crate) enum Internal {
    Exited { index: usize, exit: Exit },
    Health { index: usize, status: HealthStatus },
}

struct TaskEntry {
    /// `None` for tasks without a supervisor (stopped before this agent saw them run).
    commands: Option<mpsc::UnboundedSender<Command>>,
    snapshot: Arc<Mutex<TaskSnapshot>>,
}

/// A driver built on [`Shared`]: it implements [`Driver`] by delegating to it, so the
/// Docker and process drivers share one implementation.
pub(crate) trait SupervisedDriver: Send + Sync {
    type Backend: Backend;

    fn shared(&self) -> &Arc<Shared<Self::Backend>>;
}

impl<D: SupervisedDriver> Driver for D {
    fn kind(&self) -> DriverKind {
        D::Backend::KIND
    }

    fn data_dir(&self) -> &Path {
        &self.shared().data_dir
    }

    fn start_task(&self, task: TaskPayload) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(self.shared().start_task(task))
    }

    fn stop_task<'a>(
        &'a self,
        task_arn: &'a str,
        reason: Option<String>,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.shared().stop_task(task_arn, reason))
    }

    fn list_running(&self) -> BoxFuture<'_, Result<Vec<TaskSnapshot>, RuntimeError>> {
        Box::pin(self.shared().list_running())
    }

    fn apply(&self, task: TaskPayload) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(self.shared().apply(task))
    }
}

/// The driver-independent half of a driver: the task table and the supervisors.
pub(crate) struct Shared<B: Backend> {
    pub(crate) backend: B,
    pub(crate) data_dir: PathBuf,
    events: EventSender,
    tasks: Mutex<HashMap<String, TaskEntry>>,
    recovered: tokio::sync::OnceCell<()>,
}

impl<B: Backend> Shared<B> {
    pub(crate) fn new(backend: B, data_dir: PathBuf, events: EventSender) -> Arc<Self> {
        Arc::new(Self {
            backend,
            data_dir,
            events,
            tasks: Mutex::new(HashMap::new()),
            recovered: tokio::sync::OnceCell::new(),
        })
    }

    pub(crate) async fn start_task(
        self: &Arc<Self>,
        task: TaskPayload,
    ) -> Result<(), RuntimeError> {
        check_payload(&task)?;
        self.ensure_recovered().await?;
        let known = lock(&self.tasks)
            .get(&task.arn)
            .map(|entry| lock(&entry.snapshot).clone());
        if let Some(current) = known {
            // A replayed or duplicated payload: never start twice, say again where it stands.
            tracing::debug!(task_arn = %task.arn, status = %current.status, "task already known; not starting it again");
            let _ = self.events.send(current);
            return Ok(());
        }
        let dir = TaskDir::new(&self.data_dir, &task.arn)?;
        if let Some(previous) = dir.read_state().await {
            // Ran under an earlier agent and is over (running ones were adopted by recovery):
            // never start it twice, say again how it ended.
            tracing::info!(task_arn = %task.arn, status = %previous.status, "task ran before; reporting its last state");
            self.remember_without_supervisor(previous, true);
            return Ok(());
        }
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let snapshot = fresh_snapshot(&task);
        let published = Arc::new(Mutex::new(snapshot.clone()));
        {
            let mut tasks = lock(&self.tasks);
            if tasks.contains_key(&task.arn) {
                return Ok(());
            }
            tasks.insert(
                task.arn.clone(),
                TaskEntry {
                    commands: Some(commands_tx),
                    snapshot: Arc::clone(&published),
                },
            );
        }
        tracing::info!(task_arn = %task.arn, driver = %B::KIND, "starting task");
        let supervisor = Supervisor::new(
            Arc::clone(self),
            Arc::new(task),
            dir,
            snapshot,
            published,
            commands_rx,
        );
        tokio::spawn(supervisor.run_new());
        Ok(())
    }

    pub(crate) async fn stop_task(
        self: &Arc<Self>,
        task_arn: &str,
        reason: Option<String>,
    ) -> Result<(), RuntimeError> {
        self.ensure_recovered().await?;
        let commands = {
            let tasks = lock(&self.tasks);
            tasks.get(task_arn).map(|entry| entry.commands.clone())
        };
        match commands {
            Some(Some(commands)) => {
                // A closed channel means the supervisor already finished: the task is stopped.
                let _ = commands.send(Command::Stop { reason });
                Ok(())
            }
            Some(None) => Ok(()),
            None => {
                let dir = TaskDir::new(&self.data_dir, task_arn)?;
                match dir.read_state().await {
                    Some(previous) => {
                        self.remember_without_supervisor(previous, false);
                        Ok(())
                    }
                    None => Err(RuntimeError::UnknownTask(task_arn.to_string())),
                }
            }
        }
    }

    pub(crate) async fn apply(self: &Arc<Self>, task: TaskPayload) -> Result<(), RuntimeError> {
        if task.desired_status == DesiredStatus::Running {
            return self.start_task(task).await;
        }
        match self.stop_task(&task.arn, task.stop_reason.clone()).await {
            Err(RuntimeError::UnknownTask(_)) => self.record_never_started(task).await,
            other => other,
        }
    }

    pub(crate) async fn list_running(self: &Arc<Self>) -> Result<Vec<TaskSnapshot>, RuntimeError> {
        self.ensure_recovered().await?;
        let tasks = lock(&self.tasks);
        let mut running: Vec<TaskSnapshot> = tasks
            .values()
            .map(|entry| lock(&entry.snapshot).clone())
            .filter(|snapshot| snapshot.status != TaskStatus::Stopped)
            .collect();
        running.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        Ok(running)
    }

    /// A stop for a task this agent never ran: record it STOPPED so a late or replayed start is
    /// ignored, and report it so the control plane converges.
    async fn record_never_started(self: &Arc<Self>, task: TaskPayload) -> Result<(), RuntimeError> {
        check_payload(&task)?;
        let mut snapshot = fresh_snapshot(&task);
        snapshot.status = TaskStatus::Stopped;
        snapshot.reason = task.stop_reason.clone();
        snapshot.stopped_at = Some(EpochMillis::now());
        for container in &mut snapshot.containers {
            container.status = TaskStatus::Stopped;
        }
        let dir = TaskDir::new(&self.data_dir, &task.arn)?;
        dir.create().await?;
        dir.write_spec(&task).await?;
        dir.write_state(&snapshot).await?;
        self.remember_without_supervisor(snapshot, true);
        Ok(())
    }

    fn remember_without_supervisor(&self, snapshot: TaskSnapshot, emit: bool) {
        let mut tasks = lock(&self.tasks);
        if tasks.contains_key(&snapshot.task_arn) {
            return;
        }
        tasks.insert(
            snapshot.task_arn.clone(),
            TaskEntry {
                commands: None,
                snapshot: Arc::new(Mutex::new(snapshot.clone())),
            },
        );
        if emit {
            let _ = self.events.send(snapshot);
        }
    }

    /// Runs recovery once per driver (retried on the next call if it failed, e.g. Docker down).
    async fn ensure_recovered(self: &Arc<Self>) -> Result<(), RuntimeError> {
        self.recovered
            .get_or_try_init(|| self.recover())
            .await
            .map(|_| ())
    }

    /// Finds tasks left running by an earlier agent over the same data dir and supervises them
    /// again: containers the runtime still shows, plus tasks whose last published state says they
    /// were not over (those whose containers are all gone are reported STOPPED).
    async fn recover(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let found = self.backend.discover(&self.data_dir).await?;
        let mut by_task: HashMap<String, Vec<FoundContainer<B::Handle>>> = HashMap::new();
        for container in found {
            by_task
                .entry(container.task_arn.clone())
                .or_default()
                .push(container);
        }
        for arn in unfinished_tasks_on_disk(&self.data_dir).await {
            by_task.entry(arn).or_default();
        }
        for (arn, containers) in by_task {
            if lock(&self.tasks).contains_key(&arn) {
                continue;
            }
            if let Err(error) = self.adopt(&arn, containers).await {
                tracing::warn!(task_arn = %arn, %error, "cannot adopt task found after restart");
            }
        }
        Ok(())
    }

    async fn adopt(
        self: &Arc<Self>,
        arn: &str,
        found: Vec<FoundContainer<B::Handle>>,
    ) -> Result<(), RuntimeError> {
        let dir = TaskDir::new(&self.data_dir, arn)?;
        let spec = match dir.read_spec().await {
            Some(spec) if spec.arn == arn => spec,
            _ => synthesize_spec(arn, &found),
        };
        check_payload(&spec)?;
        let mut snapshot = match dir.read_state().await {
            Some(state) if aligned(&state, &spec) => state,
            _ => {
                let mut state = fresh_snapshot(&spec);
                state.status = TaskStatus::Running;
                state
            }
        };
        let was_starting = snapshot.status == TaskStatus::Pending;
        let mut found_by_name: HashMap<String, FoundContainer<B::Handle>> = found
            .into_iter()
            .map(|container| (container.name.clone(), container))
            .collect();
        let mut handles = vec![None; spec.containers.len()];
        let mut exits = Vec::new();
        for (index, container) in snapshot.containers.iter_mut().enumerate() {
            match found_by_name.remove(&container.name) {
                Some(FoundContainer {
                    runtime_id,
                    state:
                        Found::Running {
                            handle,
                            network_bindings,
                        },
                    ..
                }) => {
                    container.status = TaskStatus::Running;
                    container.runtime_id = runtime_id.or(container.runtime_id.take());
                    if !network_bindings.is_empty() {
                        container.network_bindings = network_bindings;
                    }
                    handles[index] = Some(handle);
                }
                Some(FoundContainer {
                    runtime_id,
                    state: Found::Exited(exit),
                    ..
                }) => {
                    if container.status != TaskStatus::Stopped {
                        container.status = TaskStatus::Running;
                        container.runtime_id = runtime_id.or(container.runtime_id.take());
                        exits.push((index, exit));
                    }
                }
                None => match container.status {
                    TaskStatus::Stopped => {}
                    TaskStatus::Running => exits.push((
                        index,
                        Exit {
                            exit_code: None,
                            reason: Some(
                                "container was gone when the agent restarted; exit code unknown"
                                    .to_string(),
                            ),
                        },
                    )),
                    TaskStatus::Pending => container.status = TaskStatus::Stopped,
                },
            }
        }
        tracing::info!(
            task_arn = %arn,
            running = handles.iter().filter(|h| h.is_some()).count(),
            "adopting task found after restart"
        );
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let published = Arc::new(Mutex::new(snapshot.clone()));
        lock(&self.tasks).insert(
            arn.to_string(),
            TaskEntry {
                commands: Some(commands_tx),
                snapshot: Arc::clone(&published),
            },
        );
        let mut supervisor = Supervisor::new(
            Arc::clone(self),
            Arc::new(spec),
            dir,
            snapshot,
            published,
            commands_rx,
        );
        for (index, handle) in handles.into_iter().enumerate() {
            if let Some(handle) = handle {
                supervisor.watch(index, handle);
            }
        }
        for (index, exit) in exits {
            let _ = supervisor
                .internal_tx
                .send(Internal::Exited { index, exit });
        }
        if was_starting {
            supervisor.begin_stop(
                Some("agent restarted while the task was starting".to_string()),
                Some(TaskStopCode::TaskFailedToStart),
            );
        }
        tokio::spawn(supervisor.supervise());
        Ok(())
    }
}

/// ARNs of task dirs whose last published state is not STOPPED.
async fn unfinished_tasks_on_disk(data_dir: &Path) -> Vec<String> {
    let mut arns = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(tasks_root(data_dir)).await else {
        return arns;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let dir = TaskDir::from_path(entry.path());
        if let Some(state) = dir.read_state().await
            && state.status != TaskStatus::Stopped
        {
            arns.push(state.task_arn);
        }
    }
    arns
}

/// A spec for a task whose `task.json` is lost: one essential container per container found.
fn synthesize_spec<H>(arn: &str, found: &[FoundContainer<H>]) -> TaskPayload {
    let mut seen = HashSet::new();
    TaskPayload {
        arn: arn.to_string(),
        family: String::new(),
        revision: 0,
        desired_status: DesiredStatus::Running,
        network_mode: NetworkMode::Bridge,
        containers: found
            .iter()
            .filter(|c| seen.insert(c.name.clone()))
            .map(|c| ContainerSpec::new(c.name.clone(), String::new()))
            .collect(),
        stop_reason: None,
    }
}

/// Whether a stored snapshot lists exactly the spec's containers, in order.
fn aligned(snapshot: &TaskSnapshot, spec: &TaskPayload) -> bool {
    snapshot.task_arn == spec.arn
        && snapshot.containers.len() == spec.containers.len()
        && snapshot
            .containers
            .iter()
            .zip(&spec.containers)
            .all(|(state, spec)| state.name == spec.name)
}

fn fresh_snapshot(task: &TaskPayload) -> TaskSnapshot {
    TaskSnapshot {
        task_arn: task.arn.clone(),
        status: TaskStatus::Pending,
        reason: None,
        stop_code: None,
        containers: task
            .containers
            .iter()
            .map(|c| ContainerStateChange {
                name: c.name.clone(),
                runtime_id: None,
                status: TaskStatus::Pending,
                exit_code: None,
                reason: None,
                network_bindings: Vec::new(),
                health_status: HealthStatus::Unknown,
            })
            .collect(),
        pulled_at: None,
        started_at: None,
        stopped_at: None,
    }
}

fn stop_timeout(spec: &ContainerSpec) -> Duration {
    spec.stop_timeout
        .map(|secs| Duration::from_secs(u64::from(secs)))
        .unwrap_or(DEFAULT_STOP_TIMEOUT)
}

/// Owns one task's state; see the module docs.
struct Supervisor<B: Backend> {
    shared: Arc<Shared<B>>,
    spec: Arc<TaskPayload>,
    dir: TaskDir,
    snapshot: TaskSnapshot,
    published: Arc<Mutex<TaskSnapshot>>,
    handles: Vec<Option<B::Handle>>,
    health: Vec<Option<AbortHandle>>,
    stopping: bool,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
}

impl<B: Backend> Supervisor<B> {
    fn new(
        shared: Arc<Shared<B>>,
        spec: Arc<TaskPayload>,
        dir: TaskDir,
        snapshot: TaskSnapshot,
        published: Arc<Mutex<TaskSnapshot>>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let count = spec.containers.len();
        Self {
            shared,
            spec,
            dir,
            snapshot,
            published,
            handles: vec![None; count],
            health: vec![None; count],
            stopping: false,
            internal_tx,
            internal_rx,
            commands,
            commands_open: true,
        }
    }

    /// A task just received: prepare, start every container, then supervise.
    async fn run_new(mut self) {
        if let Err(error) = self.prepare_dir().await {
            self.fail_start(StartFailure {
                container: None,
                reason: format!("ResourceInitializationError: {error}"),
            });
            return self.supervise().await;
        }
        self.publish().await;

        if let Err(failure) = self.shared.backend.prepare(&self.spec).await {
            self.fail_start(failure);
            return self.supervise().await;
        }
        if B::PULLS_IMAGES {
            self.snapshot.pulled_at = Some(EpochMillis::now());
        }

        for index in 0..self.spec.containers.len() {
            if let Ok(Command::Stop { reason }) = self.commands.try_recv() {
                self.begin_stop(reason, None);
                break;
            }
            match self
                .shared
                .backend
                .start(&self.spec, index, &self.dir)
                .await
            {
                Ok(started) => {
                    let container = &mut self.snapshot.containers[index];
                    container.status = TaskStatus::Running;
                    container.runtime_id = Some(started.runtime_id);
                    container.network_bindings = started.network_bindings;
                    self.watch(index, started.handle);
                    if index + 1 == self.spec.containers.len() {
                        self.snapshot.status = TaskStatus::Running;
                        self.snapshot.started_at = Some(EpochMillis::now());
                    }
                    self.publish().await;
                }
                Err(failure) => {
                    let failure = StartFailure {
                        container: failure.container.or(Some(index)),
                        ..failure
                    };
                    self.fail_start(failure);
                    break;
                }
            }
        }
        self.supervise().await
    }

    async fn prepare_dir(&self) -> Result<(), RuntimeError> {
        self.dir.create().await?;
        self.dir.write_spec(&self.spec).await
    }

    /// Marks the task failed to start and stops whatever did start.
    fn fail_start(&mut self, failure: StartFailure) {
        tracing::warn!(task_arn = %self.spec.arn, reason = %failure.reason, "task failed to start");
        if let Some(container) = failure
            .container
            .and_then(|index| self.snapshot.containers.get_mut(index))
        {
            container.status = TaskStatus::Stopped;
            container.reason = Some(failure.reason.clone());
        }
        self.begin_stop(Some(failure.reason), Some(TaskStopCode::TaskFailedToStart));
    }

    /// Starts watching a running container: its exit and, if it has a health check, its health.
    fn watch(&mut self, index: usize, handle: B::Handle) {
        self.handles[index] = Some(handle.clone());
        let shared = Arc::clone(&self.shared);
        let tx = self.internal_tx.clone();
        let exit_handle = handle.clone();
        tokio::spawn(async move {
            let exit = shared.backend.wait(exit_handle).await;
            let _ = tx.send(Internal::Exited { index, exit });
        });
        if self.spec.containers[index].health_check.is_some() {
            let shared = Arc::clone(&self.shared);
            let reporter = HealthReporter {
                index,
                tx: self.internal_tx.clone(),
            };
            let spec = Arc::clone(&self.spec);
            let dir = self.dir.clone();
            let task = tokio::spawn(async move {
                shared
                    .backend
                    .watch_health(handle, spec, index, dir, reporter)
                    .await;
            });
            self.health[index] = Some(task.abort_handle());
        }
    }

    /// Starts stopping the task (once): containers not started yet are marked STOPPED, running ones
    /// get SIGTERM and, after their stop timeout, SIGKILL.
    fn begin_stop(&mut self, reason: Option<String>, stop_code: Option<TaskStopCode>) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        if self.snapshot.reason.is_none() {
            self.snapshot.reason = reason;
        }
        if self.snapshot.stop_code.is_none() {
            self.snapshot.stop_code = stop_code;
        }
        tracing::info!(task_arn = %self.spec.arn, reason = ?self.snapshot.reason, "stopping task");
        for (index, container) in self.snapshot.containers.iter_mut().enumerate() {
            match (container.status, &self.handles[index]) {
                (TaskStatus::Stopped, _) => {}
                (TaskStatus::Running, Some(handle)) => {
                    let shared = Arc::clone(&self.shared);
                    let handle = handle.clone();
                    let timeout = stop_timeout(&self.spec.containers[index]);
                    tokio::spawn(async move { shared.backend.stop(handle, timeout).await });
                }
                // Never started: nothing to signal.
                (TaskStatus::Pending, _) => container.status = TaskStatus::Stopped,
                // Only after recovery: its exit is already queued.
                (TaskStatus::Running, None) => {}
            }
        }
    }

    fn all_stopped(&self) -> bool {
        self.snapshot
            .containers
            .iter()
            .all(|c| c.status == TaskStatus::Stopped)
    }

    /// Reacts to exits, health changes and stop requests until every container has stopped.
    async fn supervise(mut self) {
        while !self.all_stopped() {
            tokio::select! {
                Some(message) = self.internal_rx.recv() => self.on_internal(message).await,
                command = self.commands.recv(), if self.commands_open => match command {
                    Some(Command::Stop { reason }) => self.begin_stop(reason, None),
                    None => self.commands_open = false,
                },
            }
        }
        self.finish().await;
    }

    async fn on_internal(&mut self, message: Internal) {
        match message {
            Internal::Exited { index, exit } => {
                let Some(container) = self.snapshot.containers.get_mut(index) else {
                    return;
                };
                if container.status == TaskStatus::Stopped {
                    return;
                }
                tracing::info!(
                    task_arn = %self.spec.arn,
                    container = %container.name,
                    exit_code = ?exit.exit_code,
                    "container exited"
                );
                container.status = TaskStatus::Stopped;
                container.exit_code = exit.exit_code;
                if container.reason.is_none() {
                    container.reason = exit.reason;
                }
                if let Some(health) = self.health[index].take() {
                    health.abort();
                }
                if self.spec.containers[index].essential {
                    self.begin_stop(
                        Some(ESSENTIAL_CONTAINER_EXITED.to_string()),
                        Some(TaskStopCode::EssentialContainerExited),
                    );
                }
                // The last exit is published by `finish` together with the task's STOPPED.
                if !self.all_stopped() {
                    self.publish().await;
                }
            }
            Internal::Health { index, status } => {
                let Some(container) = self.snapshot.containers.get_mut(index) else {
                    return;
                };
                if container.status == TaskStatus::Running && container.health_status != status {
                    tracing::info!(
                        task_arn = %self.spec.arn,
                        container = %container.name,
                        health = %status,
                        "container health changed"
                    );
                    container.health_status = status;
                    self.publish().await;
                }
            }
        }
    }

    async fn finish(mut self) {
        for health in self.health.iter_mut().filter_map(Option::take) {
            health.abort();
        }
        self.snapshot.status = TaskStatus::Stopped;
        self.snapshot.stopped_at = Some(EpochMillis::now());
        tracing::info!(
            task_arn = %self.spec.arn,
            stop_code = ?self.snapshot.stop_code,
            reason = ?self.snapshot.reason,
            "task stopped"
        );
        // Record STOPPED first (so a restart never adopts a half-cleaned task), release what the
        // task held, and only then report: whoever sees STOPPED may reuse its ports and names.
        self.persist().await;
        let handles = self.handles.iter_mut().filter_map(Option::take).collect();
        self.shared
            .backend
            .cleanup(&self.spec, &self.dir, handles)
            .await;
        self.emit();
    }

    /// Persists the snapshot, then emits it: a restarted agent knows at least what was reported.
    async fn publish(&mut self) {
        self.persist().await;
        self.emit();
    }

    async fn persist(&mut self) {
        *lock(&self.published) = self.snapshot.clone();
        if let Err(error) = self.dir.write_state(&self.snapshot).await {
            tracing::warn!(task_arn = %self.spec.arn, %error, "cannot persist task state");
        }
    }

    fn emit(&self) {
        if self.shared.events.send(self.snapshot.clone()).is_err() {
            tracing::debug!(task_arn = %self.spec.arn, "event receiver dropped");
        }
    }
}
