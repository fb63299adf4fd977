//! The stream and the handle to it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use berth_events::SUBJECT_PREFIX;

use crate::error::{LogError, unavailable};
use crate::tail::SharedTail;

/// Where the log lives.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// JetStream stream name.
    pub stream: String,
    /// 1 on one host, 3 in a NATS cluster.
    pub replicas: usize,
    /// How long `Nats-Msg-Id` deduplicates retried appends.
    pub duplicate_window: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            stream: "BERTH_EVENTS".to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// A cheap, cloneable handle to the event log.
#[derive(Clone)]
pub struct EventLog {
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    pub(crate) stream_name: String,
    /// Set by [`EventLog::with_shared_tail`]: subscriptions share one reader.
    pub(crate) tail: Option<Arc<SharedTail>>,
}

impl EventLog {
    /// Opens the log, creating (or updating) the stream.
    pub async fn open(client: async_nats::Client, config: &LogConfig) -> Result<Self, LogError> {
        let jetstream = jetstream::new(client.clone());
        let stream_config = stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{SUBJECT_PREFIX}.>")],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            allow_atomic_publish: true,
            description: Some("Berth event log: the source of truth".to_owned()),
            ..Default::default()
        };
        jetstream
            .create_or_update_stream(stream_config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            client,
            jetstream,
            stream_name: config.stream.clone(),
            tail: None,
        })
    }

    /// This handle, with every subscription made through it or its clones served by
    /// one shared reader of the log's live end: for several services in one process,
    /// which then receive and decode each event once instead of once each.
    /// Subscribers see the same events as without it; one that falls more than
    /// `buffer` events behind reads the stretch it missed on its own.
    pub fn with_shared_tail(mut self, buffer: usize) -> Self {
        let private = Self {
            tail: None,
            ..self.clone()
        };
        self.tail = Some(Arc::new(SharedTail::new(private, buffer)));
        self
    }

    /// Connects to `url` and opens the log.
    pub async fn connect(url: &str, config: &LogConfig) -> Result<Self, LogError> {
        let client = async_nats::ConnectOptions::new()
            .name("berth")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(unavailable)?;
        Self::open(client, config).await
    }

    /// The sequence of the last event in the log (0 when empty).
    pub async fn last_sequence(&self) -> Result<u64, LogError> {
        let stream = self
            .jetstream
            .get_stream(&self.stream_name)
            .await
            .map_err(unavailable)?;
        Ok(stream.cached_info().state.last_sequence)
    }

    /// The last sequence of one aggregate's subject (0 when it has no event): the
    /// version to expect when appending to it.
    pub async fn aggregate_version(
        &self,
        aggregate: &berth_events::Aggregate,
    ) -> Result<u64, LogError> {
        let stream = self
            .jetstream
            .get_stream_no_info(&self.stream_name)
            .await
            .map_err(unavailable)?;
        match stream
            .get_last_raw_message_by_subject(&aggregate.subject())
            .await
        {
            Ok(message) => Ok(message.sequence),
            Err(error)
                if error.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                Ok(0)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// The NATS client, for services that also use core NATS (request/reply).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}
