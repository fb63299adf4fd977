//! Opening a read model database.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};

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
    /// Where [`ReadModel::begin_write`] takes its connection: on SQLite one connection of its
    /// own, on PostgreSQL the pool.
    writer: AnyPool,
}

/// A pool of up to `max` connections, each set up for its backend.
async fn connect(
    options: &AnyConnectOptions,
    backend: Backend,
    max: u32,
) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets queries read while the projection writes. The read model
                    // can always be rebuilt from the log, so it need not fsync every
                    // commit. Statement journals (multi-row upserts) stay in memory, and
                    // a larger WAL keeps a replay from re-copying the same pages. The
                    // cache is 8 MiB, not more: at every commit SQLite walks the whole
                    // page cache of the writer (`pcache1TruncateUnsafe`), which cost
                    // 2.9% of a long run with 64 MiB, and readers lose their cache to
                    // every commit anyway. No mmap: a reader that finds the file
                    // changed by another connection unmaps all of it (TLB shootdowns,
                    // page faults), which cost more than it saved once writes and reads
                    // interleave.
                    connection
                        .execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192; \
                             PRAGMA wal_autocheckpoint = 16384;",
                        )
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await
}

impl ReadModel {
    /// Opens `sqlite://path` (created if missing) or `postgres://...`.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        crate::sqlite_memory::configure();
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
        let pool = connect(
            &options,
            backend,
            match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            },
        )
        .await?;
        let writer = match backend {
            Backend::Sqlite => connect(&options, backend, 1).await?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    /// A SQLite read model file in `dir`.
    pub async fn open_sqlite_file(path: &std::path::Path) -> Result<Self, sqlx::Error> {
        Self::open(&format!("sqlite://{}", path.display())).await
    }

    /// A transaction that will write. On SQLite, which has one writer at a time, every
    /// writer of this process uses the same connection, queueing for it in memory:
    ///
    /// - its page cache stays valid from one transaction to the next (SQLite drops a
    ///   connection's cache whenever another connection has written the file, so
    ///   writes taking turns across a pool re-read every page they touch);
    /// - writers never queue in SQLite's busy handler, which polls with sleeps of up
    ///   to 100 ms (seen: an ack write waiting 2 s behind the projection).
    ///
    /// The transaction takes the write lock up front (`BEGIN IMMEDIATE`): a deferred
    /// one that reads first cannot upgrade once another process's writer has committed
    /// (SQLITE_BUSY_SNAPSHOT).
    pub async fn begin_write(&self) -> Result<WriteTransaction, sqlx::Error> {
        let transaction = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        Ok(WriteTransaction { transaction })
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

/// A write transaction from [`ReadModel::begin_write`], used as the connection it runs
/// on. Dropped without [`WriteTransaction::commit`], it rolls back.
pub struct WriteTransaction {
    transaction: sqlx::Transaction<'static, sqlx::Any>,
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.transaction.commit().await
    }
}

impl Deref for WriteTransaction {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.transaction
    }
}

impl DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.transaction
    }
}
