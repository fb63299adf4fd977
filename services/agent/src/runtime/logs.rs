//! Container logs: every container's stdout and stderr end up in one plain file,
//! `<data-dir>/tasks/<task-id>/<container>.log`, whatever the driver, so users can `cat` or
//! `tail -f` it without knowing which runtime ran the task.
//!
//! The process driver hands the file to the child as its stdout and stderr (the output survives an
//! agent restart without any copying). The Docker driver follows the container's log stream through
//! the Engine API and appends it to the file.

use std::path::{Path, PathBuf};

use bollard::container::LogOutput;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::RuntimeError;
use super::layout::{TaskDir, check_container_name};

/// The log file of container `container` of task `task_arn`, under `data_dir`.
///
/// Fails (instead of producing a path outside the data dir) when the ARN or name is not valid.
pub fn log_path(data_dir: &Path, task_arn: &str, container: &str) -> Result<PathBuf, RuntimeError> {
    check_container_name(container)?;
    Ok(TaskDir::new(data_dir, task_arn)?.log_path(container))
}

/// Opens (creating if needed) a log file for appending, as a std file that can become a child's
/// stdout/stderr.
pub(crate) fn open_for_child(path: &Path) -> Result<std::fs::File, RuntimeError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| RuntimeError::io(format!("opening log file {}", path.display()), e))
}

/// Appends a Docker log stream (stdout and stderr frames, demultiplexed by the Engine API) to the
/// log file until the stream ends, which happens when the container stops.
pub(crate) async fn follow_into_file<S>(path: PathBuf, stream: S)
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>>,
{
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await;
    let mut file = match file {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot open log file; container output is lost");
            return;
        }
    };
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(output) => {
                if let Err(error) = file.write_all(output.as_ref()).await {
                    tracing::warn!(path = %path.display(), %error, "cannot write log file");
                    return;
                }
            }
            Err(error) => {
                // Engines with a logging driver that cannot be read back (e.g. `none`) end here.
                tracing::warn!(path = %path.display(), %error, "container log stream failed");
                break;
            }
        }
    }
    if let Err(error) = file.flush().await {
        tracing::warn!(path = %path.display(), %error, "cannot flush log file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_path_is_inside_the_task_dir() {
        let path = log_path(Path::new("/data"), "arn:aws:ecs:r:1:task/c/t-1", "web");
        assert_eq!(path.ok(), Some(PathBuf::from("/data/tasks/t-1/web.log")));
        assert!(log_path(Path::new("/data"), "arn:aws:ecs:r:1:task/c/t-1", "../x").is_err());
        assert!(log_path(Path::new("/data"), "task/..", "web").is_err());
    }
}
