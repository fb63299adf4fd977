//! Helpers for tests that run real tasks (this crate's and the workspace's end-to-end tests).
//! Compiled only with the `test-support` feature.
//!
//! No image can be pulled in CI, so Docker tests use [`BUSYBOX_IMAGE`], built locally from the
//! host's static busybox (`apt-get install busybox-static` puts it at `/bin/busybox`):
//!
//! ```dockerfile
//! FROM scratch
//! COPY busybox /bin/busybox
//! ```
//!
//! It has no shell symlinks and no entrypoint, so commands run as
//! `["/bin/busybox", "sh", "-c", "..."]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;

use super::TaskEvent;
use super::docker::{DEFAULT_DOCKER_SOCKET, DOCKER_API_VERSION};

/// The locally built test image.
pub const BUSYBOX_IMAGE: &str = "berth-test/busybox:latest";

/// Where busybox-static installs the binary.
const BUSYBOX_PATHS: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];

/// Why the test image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TestImageError {
    /// No busybox binary on the host.
    #[error("busybox not found at {BUSYBOX_PATHS:?}: apt-get install -y busybox-static")]
    NoBusybox,
    /// Reading the binary failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The binary.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The engine refused the build.
    #[error("building {BUSYBOX_IMAGE}: {0}")]
    Build(String),
}

/// A client for the local engine if one answers on the default socket, else `None` (tests then
/// skip: Docker tests run on machines that have Docker).
pub async fn docker_client() -> Option<Docker> {
    if !Path::new(DEFAULT_DOCKER_SOCKET).exists() {
        return None;
    }
    let docker = Docker::connect_with_unix(DEFAULT_DOCKER_SOCKET, 120, &DOCKER_API_VERSION).ok()?;
    docker.ping().await.ok()?;
    Some(docker)
}

/// A host port that is free right now, for a static port mapping: a fixed one could be
/// held by the containers of an earlier, failed run (they outlive their agent).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The host's busybox binary, if installed.
pub fn find_busybox() -> Option<PathBuf> {
    BUSYBOX_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// Builds [`BUSYBOX_IMAGE`] unless the engine already has it.
pub async fn ensure_busybox_image(docker: &Docker) -> Result<(), TestImageError> {
    static BUILT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_try_init(|| async {
            if docker.inspect_image(BUSYBOX_IMAGE).await.is_ok() {
                return Ok(());
            }
            build(docker).await
        })
        .await
        .map(|_| ())
}

async fn build(docker: &Docker) -> Result<(), TestImageError> {
    let path = find_busybox().ok_or(TestImageError::NoBusybox)?;
    let busybox = tokio::fs::read(&path)
        .await
        .map_err(|source| TestImageError::Read { path, source })?;
    let dockerfile = b"FROM scratch\nCOPY busybox /bin/busybox\n";
    let mut context = Vec::new();
    append_tar_file(&mut context, "Dockerfile", 0o644, dockerfile);
    append_tar_file(&mut context, "busybox", 0o755, &busybox);
    context.extend_from_slice(&[0u8; 1024]);

    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(BUSYBOX_IMAGE)
        .rm(true)
        .build();
    let mut progress = std::pin::pin!(docker.build_image(
        options,
        None,
        Some(bollard::body_full(bytes::Bytes::from(context)))
    ));
    while let Some(item) = progress.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail {
                    return Err(TestImageError::Build(detail.message.unwrap_or_default()));
                }
            }
            Err(error) => return Err(TestImageError::Build(error.to_string())),
        }
    }
    docker
        .inspect_image(BUSYBOX_IMAGE)
        .await
        .map(|_| ())
        .map_err(|error| TestImageError::Build(error.to_string()))
}

/// Appends one regular file to a ustar archive (enough for a build context of flat files).
fn append_tar_file(archive: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
    let mut header = [0u8; 512];
    let put = |header: &mut [u8; 512], offset: usize, value: &[u8]| {
        header[offset..offset + value.len()].copy_from_slice(value);
    };
    put(&mut header, 0, name.as_bytes());
    put(&mut header, 100, format!("{mode:07o}\0").as_bytes());
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(
        &mut header,
        124,
        format!("{:011o}\0", data.len()).as_bytes(),
    );
    put(&mut header, 136, b"00000000000\0");
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{checksum:06o}\0 ").as_bytes());
    archive.extend_from_slice(&header);
    archive.extend_from_slice(data);
    let padding = (512 - data.len() % 512) % 512;
    archive.extend(std::iter::repeat_n(0u8, padding));
}

/// Receives events until one satisfies `matches`, or `None` after `timeout` (or if the channel
/// closes). Skipped events are dropped.
pub async fn next_matching(
    events: &mut UnboundedReceiver<TaskEvent>,
    timeout: Duration,
    mut matches: impl FnMut(&TaskEvent) -> bool,
) -> Option<TaskEvent> {
    tokio::time::timeout(timeout, async {
        while let Some(event) = events.recv().await {
            if matches(&event) {
                return Some(event);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
