//! Lookups of what rarely changes (clusters, task definitions, container instance
//! registrations), answered from memory until the projection commits a batch that
//! changes any of them.
//!
//! RunTask makes three such lookups on every call, and the answers stay the same for
//! as long as nobody creates a cluster, registers a task definition or an instance:
//! task events, the bulk of the log, never change them. Each read through the pool
//! costs a hand-off to a SQLite thread and, after every commit of the projection, a
//! reset of that connection's page cache.
//!
//! Correctness rests on two facts: the projection is the only writer of these tables,
//! and it advances [`CatalogVersion`] after committing a batch that touched them and
//! before it announces the batch's position. An answer is kept with the version it was
//! read at and served only while the version is unchanged, so a command that waited
//! for its own write (read-your-writes) never sees an answer from before it.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::{HashMap, HashMapExt};
use sqlx::AnyPool;

use super::clusters::queries as cluster_queries;
use super::container_instances::queries as instance_queries;
use super::task_definitions::queries as task_definition_queries;
use super::{ClusterRow, TaskDefinitionRow};

/// Answers kept per lookup: callers name keys (a cluster, a task definition
/// reference), so the memo is bounded against a caller naming endless new ones.
const MAX_ANSWERS: usize = 4_096;

/// Counts the projection's commits that changed clusters, task definitions or
/// container instances. Cheap to clone: the projection and the gateway share one.
#[derive(Debug, Clone, Default)]
pub struct CatalogVersion(Arc<AtomicU64>);

impl CatalogVersion {
    fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Called by the projection after a commit that changed the catalog.
    pub(crate) fn advance(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// The remembered lookups; one per gateway.
#[derive(Debug)]
pub struct Catalog {
    version: CatalogVersion,
    clusters: Memo<String, Option<ClusterRow>>,
    task_definitions: Memo<String, Option<TaskDefinitionRow>>,
    any_instance_registered: Memo<String, bool>,
}

impl Catalog {
    pub fn new(version: CatalogVersion) -> Self {
        Self {
            version,
            clusters: Memo::default(),
            task_definitions: Memo::default(),
            any_instance_registered: Memo::default(),
        }
    }

    /// The cluster's row, whatever its status.
    pub async fn cluster(
        &self,
        pool: &AnyPool,
        name: &str,
    ) -> Result<Option<ClusterRow>, sqlx::Error> {
        self.clusters
            .get_or_load(&self.version, name, || cluster_queries::get(pool, name))
            .await
    }

    /// A task definition by `family:revision` (`revision` given) or by `family`, its
    /// latest ACTIVE revision; `reference` is what the caller wrote, the memo's key.
    pub async fn task_definition(
        &self,
        pool: &AnyPool,
        reference: &str,
        family: &str,
        revision: Option<u32>,
    ) -> Result<Option<TaskDefinitionRow>, sqlx::Error> {
        self.task_definitions
            .get_or_load(&self.version, reference, || async {
                match revision {
                    Some(revision) => task_definition_queries::get(pool, family, revision).await,
                    None => task_definition_queries::latest_active(pool, family).await,
                }
            })
            .await
    }

    /// Whether the cluster has a container instance that is not deregistered.
    pub async fn any_instance_registered(
        &self,
        pool: &AnyPool,
        cluster: &str,
    ) -> Result<bool, sqlx::Error> {
        self.any_instance_registered
            .get_or_load(&self.version, cluster, || {
                instance_queries::any_registered(pool, cluster)
            })
            .await
    }
}

/// One lookup's answers, all read at `version`.
#[derive(Debug)]
struct Memo<K, V>(Mutex<Answers<K, V>>);

#[derive(Debug)]
struct Answers<K, V> {
    version: u64,
    by_key: HashMap<K, V>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self(Mutex::new(Answers {
            version: 0,
            by_key: HashMap::new(),
        }))
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Memo<K, V> {
    fn lock(&self) -> MutexGuard<'_, Answers<K, V>> {
        // Nothing panics while holding it (loads run outside), so its state is whole.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn get_or_load<Q, F, Fut>(
        &self,
        version: &CatalogVersion,
        key: &Q,
        load: F,
    ) -> Result<V, sqlx::Error>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, sqlx::Error>>,
    {
        // Read before loading: a commit that lands while the load runs makes the
        // answer's version stale, so the next call loads again.
        let read_at = version.current();
        {
            let answers = self.lock();
            if answers.version == read_at
                && let Some(answer) = answers.by_key.get(key)
            {
                return Ok(answer.clone());
            }
        }
        let answer = load().await?;
        let mut answers = self.lock();
        if answers.version < read_at || answers.by_key.len() >= MAX_ANSWERS {
            answers.by_key.clear();
            answers.version = answers.version.max(read_at);
        }
        // (An answer read at an older version than the kept ones is not kept.)
        if answers.version == read_at {
            answers.by_key.insert(key.to_owned(), answer.clone());
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_is_kept_until_the_version_advances() {
        let version = CatalogVersion::default();
        let memo: Memo<String, u32> = Memo::default();
        let loads = std::sync::atomic::AtomicU32::new(0);
        let load = || async { Ok(loads.fetch_add(1, Ordering::SeqCst) + 1) };
        assert_eq!(memo.get_or_load(&version, "a", load).await.unwrap(), 1);
        assert_eq!(memo.get_or_load(&version, "a", load).await.unwrap(), 1);
        version.advance();
        assert_eq!(memo.get_or_load(&version, "a", load).await.unwrap(), 2);
        assert_eq!(memo.get_or_load(&version, "a", load).await.unwrap(), 2);
        assert_eq!(memo.get_or_load(&version, "b", load).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn an_answer_loaded_while_the_version_advanced_is_not_served_after() {
        let version = CatalogVersion::default();
        let memo: Memo<String, &str> = Memo::default();
        // The commit lands while the lookup reads the old row.
        let answer = memo
            .get_or_load(&version, "a", || async {
                version.advance();
                Ok("old")
            })
            .await
            .unwrap();
        assert_eq!(answer, "old");
        let answer = memo
            .get_or_load(&version, "a", || async { Ok("new") })
            .await
            .unwrap();
        assert_eq!(answer, "new");
    }

    #[tokio::test]
    async fn the_memo_stays_bounded() {
        let version = CatalogVersion::default();
        let memo: Memo<String, usize> = Memo::default();
        for i in 0..MAX_ANSWERS * 2 {
            memo.get_or_load(&version, &i.to_string(), || async { Ok(i) })
                .await
                .unwrap();
        }
        assert!(memo.0.lock().unwrap().by_key.len() <= MAX_ANSWERS);
    }
}
