//! `AgentConnected` / `AgentDisconnected`: whether an instance has a live agent.
//!
//! A disconnect is recorded only by the session that is still the instance's current one. Within
//! this gateway the session registry says so; across gateways (the agent reconnected elsewhere
//! while this side still held a half-open socket) the log does: the disconnect is appended only
//! if no `AgentConnected` came after this session's own, checked under optimistic concurrency on
//! the instance aggregate.

use std::time::Duration;

use berth_eventlog::{Append, AppendError, Expect};
use berth_events::{AgentConnected, AgentDisconnected, Aggregate};
use tracing::{debug, info};

use crate::error::GatewayError;
use crate::gateway::Shared;
use crate::read_model::instances;

const MAX_ATTEMPTS: usize = 5;
/// How long a disconnect waits for the read model to show the session's own connect.
const OWN_CONNECT: Duration = Duration::from_secs(10);

/// Appends `AgentConnected`; returns its sequence, which identifies the session in the log.
pub(crate) async fn connected(
    shared: &Shared,
    cluster: &str,
    instance_id: &str,
) -> Result<u64, GatewayError> {
    let aggregate = Aggregate::ContainerInstance {
        cluster: cluster.to_owned(),
        id: instance_id.to_owned(),
    };
    let event = AgentConnected {
        gateway_id: shared.options.gateway_id.clone(),
    };
    let appended = shared
        .log
        .append(Append::new(aggregate, event, shared.meta()))
        .await?;
    info!(sequence = appended.sequence, "agent connected");
    Ok(appended.sequence)
}

/// Appends `AgentDisconnected { reason }` unless a later session connected the instance since
/// the connect at `connected_seq`. Returns whether it appended.
pub(crate) async fn disconnected(
    shared: &Shared,
    cluster: &str,
    instance_id: &str,
    connected_seq: u64,
    reason: &str,
) -> Result<bool, GatewayError> {
    shared
        .projection
        .wait_for(connected_seq, OWN_CONNECT)
        .await?;
    let aggregate = Aggregate::ContainerInstance {
        cluster: cluster.to_owned(),
        id: instance_id.to_owned(),
    };
    let mut last_error = None;
    for _ in 0..MAX_ATTEMPTS {
        let Some(row) = instances::get(shared.db(), instance_id).await? else {
            return Ok(false);
        };
        if row.connected_seq > connected_seq {
            debug!(
                later = row.connected_seq,
                "a newer session holds the instance; no disconnect recorded"
            );
            return Ok(false);
        }
        let event = AgentDisconnected {
            reason: reason.to_owned(),
        };
        let append = Append::new(aggregate.clone(), event, shared.meta())
            .expect(Expect::Version(row.version));
        match shared.log.append(append).await {
            Ok(_) => {
                info!(reason, "agent disconnected");
                return Ok(true);
            }
            Err(error @ AppendError::Conflict { .. }) => {
                last_error = Some(error);
                shared.catch_up().await?;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(last_error
        .map(GatewayError::from)
        .unwrap_or_else(|| GatewayError::Config("no disconnect attempt".to_owned())))
}
