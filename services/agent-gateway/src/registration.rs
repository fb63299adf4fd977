//! `RegisterInstance`: admitting an agent and recording its container instance.
//!
//! As with the ECS agent's RegisterContainerInstance: the cluster must exist and be ACTIVE,
//! except `default`, which is created on first use; an agent that comes back with the id it was
//! given re-registers the same instance (resources and attributes refreshed) unless that
//! instance was deregistered (ECS's InactiveInstanceException).

use std::net::SocketAddr;

use berth_agent_protocol::RegisterInstance;
use berth_eventlog::{Append, AppendError, Expect};
use berth_events::{
    Aggregate, Attribute, ClusterCreated, ContainerInstanceRegistered, InstanceResources,
};
use sha2::{Digest, Sha256};
use tracing::{info, warn};
use uuid::Uuid;

use crate::arn;
use crate::error::GatewayError;
use crate::gateway::Shared;
use crate::read_model::clusters;
use crate::read_model::instances::{self, INACTIVE};

/// How often a registration is decided again after losing an optimistic-concurrency race.
const MAX_ATTEMPTS: usize = 5;

/// The cluster the ECS agent joins when none is configured, created on demand.
pub(crate) const DEFAULT_CLUSTER: &str = "default";

/// The attribute carrying the host's identity (ECS's `ec2InstanceId`), as berth-agent sends it:
/// `RegisterInstance` has no field for it. Taken out of the attributes; without it the host is
/// named by its address.
pub(crate) const EC2_INSTANCE_ID_ATTRIBUTE: &str = "berth.ec2-instance-id";

/// A registered instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registration {
    pub cluster: String,
    pub instance_id: String,
    pub instance_arn: String,
}

/// What to answer the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted(Registration),
    /// Refused for good (until the operator changes something): the reason goes to the agent.
    Refused(String),
}

/// Decides on a `RegisterInstance` and appends `ContainerInstanceRegistered` (and, for
/// `default`, `ClusterCreated`). Errors are transient (log or read model unavailable).
pub(crate) async fn register(
    shared: &Shared,
    request: RegisterInstance,
    peer: Option<SocketAddr>,
) -> Result<Outcome, GatewayError> {
    if !tokens_match(&request.token, &shared.options.token) {
        warn!(
            cluster = request.cluster,
            ?peer,
            "agent presented a wrong token; refused"
        );
        return Ok(Outcome::Refused("invalid token".to_owned()));
    }
    let cluster = arn::cluster_name(&request.cluster).to_owned();
    if let Err(error) = berth_ecs_model::validate_cluster_name(&cluster) {
        return Ok(Outcome::Refused(format!(
            "invalid cluster name: {}",
            error.message
        )));
    }
    let requested_id = match request.instance_id.as_deref() {
        None => None,
        Some(text) => match Uuid::parse_str(text) {
            Ok(id) => Some(id.hyphenated().to_string()),
            Err(_) => {
                return Ok(Outcome::Refused(format!(
                    "invalid container instance id {text:?}"
                )));
            }
        },
    };
    shared.catch_up().await?;
    if let Some(refusal) = ensure_cluster(shared, &cluster).await? {
        return Ok(Outcome::Refused(refusal));
    }
    let mut event = ContainerInstanceRegistered {
        instance_id: String::new(),
        ec2_instance_id: host_name(&request, peer),
        resources: InstanceResources {
            cpu_units: request.resources.cpu_units,
            memory_mib: u32::try_from(request.resources.memory_mib).unwrap_or(u32::MAX),
            reserved_tcp_ports: request.resources.reserved_tcp_ports.clone(),
            reserved_udp_ports: request.resources.reserved_udp_ports.clone(),
        },
        attributes: request
            .attributes
            .iter()
            .filter(|(name, _)| name.as_str() != EC2_INSTANCE_ID_ATTRIBUTE)
            .map(|(name, value)| Attribute {
                name: name.clone(),
                value: Some(value.clone()),
            })
            .collect(),
        agent_version: request.agent_version.clone(),
        driver: request.driver.as_str().to_owned(),
    };
    let mut last_error = None;
    for _ in 0..MAX_ATTEMPTS {
        let existing = match &requested_id {
            Some(id) => instances::get(shared.db(), id).await?,
            None => None,
        };
        let (instance_id, expect) = match existing {
            Some(row) if row.cluster != cluster => {
                return Ok(Outcome::Refused(format!(
                    "container instance {} is registered in cluster {}, not {cluster}",
                    row.id, row.cluster
                )));
            }
            Some(row) if row.status == INACTIVE => {
                return Ok(Outcome::Refused(format!(
                    "container instance {} is deregistered (INACTIVE)",
                    row.id
                )));
            }
            Some(row) => (row.id, Expect::Version(row.version)),
            None => {
                if let Some(unknown) = &requested_id {
                    info!(
                        unknown,
                        cluster, "unknown container instance id; registering a new instance"
                    );
                }
                (Uuid::new_v4().to_string(), Expect::New)
            }
        };
        event.instance_id = instance_id.clone();
        let aggregate = Aggregate::ContainerInstance {
            cluster: cluster.clone(),
            id: instance_id.clone(),
        };
        let append = Append::new(aggregate, event.clone(), shared.meta()).expect(expect);
        match shared.log.append(append).await {
            Ok(_) => {
                info!(
                    instance_id,
                    cluster,
                    new = expect == Expect::New,
                    "container instance registered"
                );
                return Ok(Outcome::Accepted(Registration {
                    instance_arn: shared.arns.container_instance(&cluster, &instance_id),
                    cluster,
                    instance_id,
                }));
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
        .unwrap_or_else(|| GatewayError::Config("no registration attempt".to_owned())))
}

/// `None` when the cluster is ACTIVE (creating `default` if need be), else why not.
async fn ensure_cluster(shared: &Shared, name: &str) -> Result<Option<String>, GatewayError> {
    let mut last_error = None;
    for _ in 0..MAX_ATTEMPTS {
        let row = clusters::get(shared.db(), name).await?;
        if row.as_ref().is_some_and(clusters::ClusterRow::is_active) {
            return Ok(None);
        }
        if name != DEFAULT_CLUSTER {
            return Ok(Some(format!("cluster {name} not found")));
        }
        let expect = row.map_or(Expect::New, |r| Expect::Version(r.version));
        let created = ClusterCreated::named(name);
        let append =
            Append::new(Aggregate::Cluster(name.to_owned()), created, shared.meta()).expect(expect);
        match shared.log.append(append).await {
            Ok(_) => {
                info!(cluster = name, "created the default cluster for an agent");
                return Ok(None);
            }
            // Someone else created (or changed) it first: look again.
            Err(error @ AppendError::Conflict { .. }) => {
                last_error = Some(error);
                shared.catch_up().await?;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(last_error
        .map(GatewayError::from)
        .unwrap_or_else(|| GatewayError::Config("no cluster creation attempt".to_owned())))
}

fn host_name(request: &RegisterInstance, peer: Option<SocketAddr>) -> String {
    if let Some(name) = request.attributes.get(EC2_INSTANCE_ID_ATTRIBUTE) {
        return name.clone();
    }
    peer.map_or_else(|| "unknown".to_owned(), |peer| peer.ip().to_string())
}

/// Compares the presented token with the expected one in time independent of where they differ
/// (and of their lengths): both are hashed, then every byte of the digests is compared.
fn tokens_match(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    let difference = presented
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::tokens_match;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match("s3cret", "s3cret"));
        assert!(!tokens_match("s3cret", "s3cre"));
        assert!(!tokens_match("", "s3cret"));
        assert!(!tokens_match("S3cret", "s3cret"));
    }
}
