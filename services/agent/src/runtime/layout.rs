//! Where a task's files live under the agent's data dir, and the checks that keep names coming off
//! the wire from escaping it.
//!
//! ```text
//! <data-dir>/tasks/<task-id>/task.json         the TaskPayload as received (spec, for recovery)
//! <data-dir>/tasks/<task-id>/state.json        the last TaskSnapshot published (for recovery/dedupe)
//! <data-dir>/tasks/<task-id>/<container>.log   the container's stdout and stderr
//! <data-dir>/tasks/<task-id>/<container>.pid   process driver: "<pid> <start-time>"
//! ```
//!
//! The per-task directory is also the process driver's working directory for the task.

use std::path::{Path, PathBuf};

use berth_agent_protocol::{TaskPayload, TaskSnapshot};

use super::RuntimeError;

/// Longest task id or container name accepted (ECS allows 255 characters for container names).
const MAX_NAME_LEN: usize = 255;

/// The task id: the last `/`-separated segment of a task ARN
/// (`arn:aws:ecs:region:account:task/cluster/<id>`), checked to be a safe single path component.
pub fn task_id(task_arn: &str) -> Result<&str, RuntimeError> {
    let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    let safe = !id.is_empty()
        && id.len() <= MAX_NAME_LEN
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if safe {
        Ok(id)
    } else {
        Err(RuntimeError::InvalidTask(format!(
            "task ARN {task_arn:?} does not end in a valid task id"
        )))
    }
}

/// Checks a container name against the ECS rule (letters, digits, `-`, `_`; 1 to 255 characters),
/// which also makes it safe as a file name and inside a Docker container name.
pub fn check_container_name(name: &str) -> Result<(), RuntimeError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(RuntimeError::InvalidTask(format!(
            "invalid container name {name:?}: use letters, digits, '-' and '_' (1 to 255)"
        )))
    }
}

/// Validates everything in a payload that becomes a path or a runtime name.
pub(crate) fn check_payload(task: &TaskPayload) -> Result<(), RuntimeError> {
    task_id(&task.arn)?;
    for (i, container) in task.containers.iter().enumerate() {
        check_container_name(&container.name)?;
        if task.containers[..i]
            .iter()
            .any(|c| c.name == container.name)
        {
            return Err(RuntimeError::InvalidTask(format!(
                "container name {:?} appears twice in task {}",
                container.name, task.arn
            )));
        }
    }
    Ok(())
}

/// The directory that holds all task directories.
pub(crate) fn tasks_root(data_dir: &Path) -> PathBuf {
    data_dir.join("tasks")
}

/// One task's directory and the files in it.
#[derive(Debug, Clone)]
pub(crate) struct TaskDir {
    root: PathBuf,
}

impl TaskDir {
    /// The directory for `task_arn` (not created).
    pub(crate) fn new(data_dir: &Path, task_arn: &str) -> Result<Self, RuntimeError> {
        Ok(Self {
            root: tasks_root(data_dir).join(task_id(task_arn)?),
        })
    }

    /// A task directory found on disk.
    pub(crate) fn from_path(root: PathBuf) -> Self {
        Self { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn spec_path(&self) -> PathBuf {
        self.root.join("task.json")
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// `container` must have passed [`check_container_name`].
    pub(crate) fn log_path(&self, container: &str) -> PathBuf {
        self.root.join(format!("{container}.log"))
    }

    /// `container` must have passed [`check_container_name`].
    pub(crate) fn pid_path(&self, container: &str) -> PathBuf {
        self.root.join(format!("{container}.pid"))
    }

    pub(crate) async fn create(&self) -> Result<(), RuntimeError> {
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(|e| RuntimeError::io(format!("creating {}", self.root.display()), e))
    }

    pub(crate) async fn write_spec(&self, task: &TaskPayload) -> Result<(), RuntimeError> {
        write_json_atomically(&self.spec_path(), task).await
    }

    pub(crate) async fn write_state(&self, snapshot: &TaskSnapshot) -> Result<(), RuntimeError> {
        write_json_atomically(&self.state_path(), snapshot).await
    }

    /// The stored spec; `None` if absent or unreadable (recovery then works from what the runtime
    /// shows).
    pub(crate) async fn read_spec(&self) -> Option<TaskPayload> {
        read_json(&self.spec_path()).await
    }

    /// The last published snapshot; `None` if absent or unreadable.
    pub(crate) async fn read_state(&self) -> Option<TaskSnapshot> {
        read_json(&self.state_path()).await
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = tokio::fs::read(path).await.ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "ignoring unreadable state file");
            None
        }
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file behind.
async fn write_json_atomically<T: serde::Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), RuntimeError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(RuntimeError::Encode)?;
    let tmp = path.with_extension("json.tmp");
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| RuntimeError::io(format!("writing {}", tmp.display()), e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| RuntimeError::io(format!("renaming {}", tmp.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_id_is_last_arn_segment() {
        let arn = "arn:aws:ecs:us-east-1:000000000000:task/default/abc123";
        assert_eq!(task_id(arn).ok(), Some("abc123"));
        assert_eq!(task_id("plain-id").ok(), Some("plain-id"));
    }

    #[test]
    fn hostile_names_are_rejected() {
        for arn in [
            "",
            "task/",
            "task/..",
            "task/.",
            "task/a b",
            "task/a\\b",
            "task/\u{e9}",
        ] {
            assert!(task_id(arn).is_err(), "accepted {arn:?}");
        }
        for name in ["", "..", "a/b", "a.b", "a b", &"x".repeat(256)] {
            assert!(check_container_name(name).is_err(), "accepted {name:?}");
        }
        assert!(check_container_name("web_1-a").is_ok());
    }
}
