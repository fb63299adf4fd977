//! Crash-safe small files for the agent's own state (`instance.json`, `reports.json`).

use std::io;
use std::path::Path;

use tokio::io::AsyncWriteExt;

/// Replaces `path` with `bytes` through a temporary file, `fsync` and a rename, so a crash (of the
/// agent or of the host) leaves either the old or the new content, never half of one. The
/// directory itself is not synced: a lost rename only brings the previous version back, which
/// both callers tolerate (an older report list is resent and deduplicated by the gateway).
pub(crate) async fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = tokio::fs::File::create(&tmp).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, path).await
}

/// The file's bytes, or `None` when it does not exist.
pub(crate) async fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}
