//! The container instance this agent is: the id the gateway gave at the first registration, kept
//! in `<data-dir>/instance.json` and sent back on every later registration so a restarted agent
//! (or a reconnect) is the same instance, with its tasks, rather than a new empty one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::AgentError;
use crate::persist::{read_if_exists, write_atomically};

/// The file name under the data dir.
pub const INSTANCE_FILE: &str = "instance.json";

/// What the gateway said the instance is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The cluster the id belongs to: an id is only offered back to the same cluster.
    pub cluster: String,
    /// The stable id (`Registered.instanceId`).
    pub instance_id: String,
    /// The container instance ARN (`Registered.instanceArn`), for logs and operators.
    pub instance_arn: String,
}

/// The identity, in memory and (when the agent has a data dir) on disk.
#[derive(Debug)]
pub struct IdentityStore {
    path: Option<PathBuf>,
    current: Option<Identity>,
}

impl IdentityStore {
    /// Reads `<data-dir>/instance.json` if there is one; `None` keeps the identity in memory only.
    ///
    /// An unreadable file is an error rather than a fresh start: registering anew would create a
    /// second instance and orphan every task of the first. The file is written atomically, so it
    /// is only unreadable when someone edited it; they should look at it.
    pub async fn open(data_dir: Option<PathBuf>) -> Result<Self, AgentError> {
        let Some(dir) = data_dir else {
            return Ok(Self {
                path: None,
                current: None,
            });
        };
        let path = dir.join(INSTANCE_FILE);
        let bytes = read_if_exists(&path)
            .await
            .map_err(|error| AgentError::state(&path, error))?;
        let current = match bytes {
            None => None,
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|error| {
                AgentError::state(
                    &path,
                    format!("{error} (fix or remove the file to register as a new instance)"),
                )
            })?),
        };
        Ok(Self {
            path: Some(path),
            current,
        })
    }

    /// The stored identity, whatever its cluster.
    pub fn current(&self) -> Option<&Identity> {
        self.current.as_ref()
    }

    /// The id to send when registering with `cluster`: none on the first start, and none when the
    /// data dir was used with another cluster (that id means nothing there).
    pub fn instance_id_for(&self, cluster: &str) -> Option<&str> {
        match &self.current {
            Some(identity) if identity.cluster == cluster => Some(&identity.instance_id),
            Some(identity) => {
                tracing::warn!(
                    stored_cluster = %identity.cluster,
                    cluster,
                    "data dir belongs to another cluster; registering as a new instance"
                );
                None
            }
            None => None,
        }
    }

    /// Records the identity after a `Registered`, on disk first. Writes only when it changed, so
    /// reconnects cost nothing. On a write error the identity is still kept in memory (reconnects
    /// keep working; only a restart would register anew) and the error is returned for logging.
    pub async fn save(&mut self, identity: Identity) -> std::io::Result<()> {
        if self.current.as_ref() == Some(&identity) {
            return Ok(());
        }
        let result = match &self.path {
            Some(path) => {
                let bytes = serde_json::to_vec_pretty(&identity).map_err(std::io::Error::other)?;
                write_atomically(path, &bytes).await
            }
            None => Ok(()),
        };
        self.current = Some(identity);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(cluster: &str, id: &str) -> Identity {
        Identity {
            cluster: cluster.to_string(),
            instance_id: id.to_string(),
            instance_arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/{id}"),
        }
    }

    #[tokio::test]
    async fn identity_survives_a_restart_and_stays_in_its_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = IdentityStore::open(Some(dir.path().to_path_buf()))
            .await
            .expect("open");
        assert_eq!(store.instance_id_for("prod"), None);
        store.save(identity("prod", "i-1")).await.expect("save");

        let reopened = IdentityStore::open(Some(dir.path().to_path_buf()))
            .await
            .expect("reopen");
        assert_eq!(reopened.instance_id_for("prod"), Some("i-1"));
        assert_eq!(reopened.instance_id_for("staging"), None);
    }

    #[tokio::test]
    async fn a_damaged_file_stops_the_agent() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(INSTANCE_FILE), b"{not json").expect("write");
        let error = IdentityStore::open(Some(dir.path().to_path_buf()))
            .await
            .expect_err("must refuse");
        assert!(matches!(error, AgentError::State { .. }), "{error}");
    }

    #[tokio::test]
    async fn without_a_data_dir_the_identity_lives_in_memory() {
        let mut store = IdentityStore::open(None).await.expect("open");
        store.save(identity("c", "i-2")).await.expect("save");
        assert_eq!(store.instance_id_for("c"), Some("i-2"));
    }
}
