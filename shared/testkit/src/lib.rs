//! Test kit: the real parts a Berth test needs, one private set per test.
//!
//! - [`TestNats`]: a real nats-server on its own port with its own store directory.
//! - [`postgres_database`]: a fresh, empty PostgreSQL database on the server named by
//!   `BERTH_TEST_POSTGRES_URL` (`scripts/test` starts one and sets it).
//! - [`cpu`]: CPU time of processes, for benchmarks that report CPU per event.
//!
//! Nothing here is a mock: tests talk to the same servers production does.

#[cfg(feature = "aws-clients")]
pub mod aws;
pub mod cpu;

use berth_eventlog::local_server::{LocalNatsServer, LocalServerOptions};
use berth_eventlog::{EventLog, LogConfig};

/// Environment variable naming the PostgreSQL server tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "BERTH_TEST_POSTGRES_URL";

/// A private nats-server with JetStream for one test; killed on drop.
pub struct TestNats {
    pub server: LocalNatsServer,
    // Declared after the server so the store outlives it.
    _store: tempfile::TempDir,
}

impl TestNats {
    pub fn start() -> Self {
        let store = tempfile::tempdir().expect("temp dir for the JetStream store");
        let server = LocalNatsServer::start(&LocalServerOptions {
            binary: None,
            port: 0,
            store_dir: store.path().join("jetstream"),
        })
        .unwrap_or_else(|e| panic!("start nats-server: {e}"));
        Self {
            server,
            _store: store,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Connects and opens the event log.
    pub async fn event_log(&self) -> EventLog {
        EventLog::connect(&self.url(), &LogConfig::default())
            .await
            .expect("open event log")
    }
}

/// Creates a fresh database on the test PostgreSQL server and returns its URL.
///
/// Panics with instructions when `BERTH_TEST_POSTGRES_URL` is not set: a test that
/// silently skips PostgreSQL would prove nothing about it.
pub async fn postgres_database() -> String {
    use sqlx::Connection;
    let base = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: run the tests with scripts/test, which starts \
             PostgreSQL, or point it at a server where the user may CREATE DATABASE"
        )
    });
    let name = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("connect to {base}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    replace_database(&base, &name)
}

/// `postgres://user@host:port/old?x` -> `postgres://user@host:port/<name>?x`.
fn replace_database(url: &str, name: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority_end = without_query
        .find("://")
        .map(|scheme| {
            without_query[scheme + 3..]
                .find('/')
                .map_or(without_query.len(), |slash| scheme + 3 + slash)
        })
        .unwrap_or(without_query.len());
    let mut replaced = format!("{}/{name}", &without_query[..authority_end]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    replaced
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            super::replace_database(
                "postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable",
                "x"
            ),
            "postgres://u:p@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(
            super::replace_database("postgres://u@localhost:5", "x"),
            "postgres://u@localhost:5/x"
        );
    }
}
