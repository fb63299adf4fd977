//! Opening a read model database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which database a read model lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A read model's database: a pool plus what kind of database it is.
#[derive(Clone, Debug)]
pub struct ReadModel {
    pool: AnyPool,
    backend: Backend,
}

impl ReadModel {
    /// Opens `sqlite://path` (created if missing) or `postgres://...`.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                format!("read model URL must be sqlite:// or postgres://, got {url}").into(),
            ));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets queries read while the projection writes. The read
                        // model can always be rebuilt from the log, so it need not
                        // fsync every commit. Statement journals (multi-row upserts)
                        // stay in memory, pages are read through mmap, and a larger
                        // cache and WAL keep a replay from re-reading and re-copying
                        // the same pages.
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                                 PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; \
                                 PRAGMA mmap_size = 268435456; PRAGMA wal_autocheckpoint = 4096;",
                            )
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    /// A SQLite read model file in `dir`.
    pub async fn open_sqlite_file(path: &std::path::Path) -> Result<Self, sqlx::Error> {
        Self::open(&format!("sqlite://{}", path.display())).await
    }

    /// A transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first cannot upgrade
    /// once another writer has committed (SQLITE_BUSY_SNAPSHOT), while an immediate
    /// one simply waits its turn (`busy_timeout`).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Adapts portable DDL to this database. The one difference Berth needs: key
    /// columns declared `KEY_TEXT` sort bytewise on both databases (SQLite's default
    /// collation; `COLLATE "C"` on PostgreSQL), so `ORDER BY` and `WHERE key > $1`
    /// pagination agree everywhere.
    pub fn ddl(&self, statement: &str) -> String {
        match self.backend {
            Backend::Sqlite => statement.replace("KEY_TEXT", "TEXT"),
            Backend::Postgres => statement.replace("KEY_TEXT", "TEXT COLLATE \"C\""),
        }
    }
}
