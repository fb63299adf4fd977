//! Placement requests: strategies, constraints, resources, and their validation.
//!
//! Strategies and constraints are parsed from their wire form (`{type, field}` /
//! `{type, expression}`) once, when a request arrives, so that `memberOf` expressions are
//! compiled once and a malformed request is an `InvalidParameterException` before anything is
//! placed. The messages of [`RequestError`] are written for that exception.

use std::sync::{Arc, LazyLock};

use berth_cql::{ParseError, Query};

use super::model::Protocol;

/// RunTask / CreateService: "You can specify a maximum of 5 strategy rules".
pub const MAX_STRATEGIES: usize = 5;
/// "up to 10 constraints for each task (including constraints in the task definition and those
/// specified at runtime)".
pub const MAX_CONSTRAINTS: usize = 10;
/// The attribute services spread over by default.
pub const AVAILABILITY_ZONE: &str = "ecs.availability-zone";

/// The resource a `binpack` strategy packs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinpackField {
    Cpu,
    Memory,
}

/// What a `spread` strategy spreads over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpreadField {
    /// `instanceId`, or its alias `host`.
    InstanceId,
    /// `attribute:<name>`. Instances without the attribute count as one more value (so a
    /// cluster with some zone-less instances spreads over the zones plus "no zone").
    Attribute(Arc<str>),
}

/// A placement strategy rule. Rules apply in order, each breaking the ties of the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The instance with the least of the field left that still fits.
    Binpack(BinpackField),
    /// The value of the field with the fewest tasks of the group.
    Spread(SpreadField),
    /// Uniformly among the remaining candidates; rules after it never apply.
    Random,
}

static STANDALONE_DEFAULT: LazyLock<[Strategy; 1]> = LazyLock::new(|| [Strategy::Random]);
static SERVICE_DEFAULT: LazyLock<[Strategy; 2]> = LazyLock::new(|| {
    [
        Strategy::Spread(SpreadField::Attribute(AVAILABILITY_ZONE.into())),
        Strategy::Spread(SpreadField::InstanceId),
    ]
});

impl Strategy {
    /// Parses `{type, field}` as RunTask / CreateService receive it.
    pub fn from_wire(kind: &str, field: Option<&str>) -> Result<Self, RequestError> {
        let invalid = || RequestError::InvalidStrategyField {
            kind: kind.to_owned(),
            field: field.unwrap_or_default().to_owned(),
        };
        match kind {
            "random" => Ok(Strategy::Random),
            "binpack" => match field.map(str::to_ascii_lowercase).as_deref() {
                Some("cpu") => Ok(Strategy::Binpack(BinpackField::Cpu)),
                Some("memory") => Ok(Strategy::Binpack(BinpackField::Memory)),
                _ => Err(invalid()),
            },
            "spread" => {
                let field = field.ok_or_else(invalid)?;
                if field.eq_ignore_ascii_case("instanceId") || field.eq_ignore_ascii_case("host") {
                    return Ok(Strategy::Spread(SpreadField::InstanceId));
                }
                match field.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() => {
                        Ok(Strategy::Spread(SpreadField::Attribute(name.into())))
                    }
                    _ => Err(invalid()),
                }
            }
            other => Err(RequestError::UnknownStrategyType(other.to_owned())),
        }
    }

    /// ECS's default for standalone tasks (RunTask without `placementStrategy`): random. The
    /// developer guide, `scheduling_tasks.md`: "Using RunTask, you can allow the default task
    /// placement strategy to distribute tasks randomly across your cluster."
    pub fn standalone_default() -> &'static [Strategy] {
        &*STANDALONE_DEFAULT
    }

    /// ECS's default for services: spread over `attribute:ecs.availability-zone`, then over
    /// instances ("it places in the AZ (then the instance) with the fewest of this service's
    /// tasks").
    pub fn service_default() -> &'static [Strategy] {
        &*SERVICE_DEFAULT
    }
}

/// A placement constraint. Constraints are binding: an instance that fails one is no candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// No two tasks of the group on one instance (counting tasks placed earlier in the same
    /// request).
    DistinctInstance,
    /// Only instances the expression selects. Shared, since requests are cloned per service.
    MemberOf(Arc<Query>),
    /// StartTask: only the named instances (ids). The others are no candidates at all, so a
    /// task that cannot start is reported against the named instances alone.
    OnInstances(Arc<[Arc<str>]>),
}

impl Constraint {
    /// Parses `{type, expression}`.
    pub fn from_wire(kind: &str, expression: Option<&str>) -> Result<Self, RequestError> {
        match (kind, expression) {
            ("distinctInstance", None) => Ok(Constraint::DistinctInstance),
            ("distinctInstance", Some(_)) => Err(RequestError::UnexpectedExpression),
            ("memberOf", Some(expr)) => Self::member_of(expr),
            ("memberOf", None) => Err(RequestError::MissingExpression),
            (other, _) => Err(RequestError::UnknownConstraintType(other.to_owned())),
        }
    }

    /// A `memberOf` constraint from its expression.
    pub fn member_of(expression: &str) -> Result<Self, RequestError> {
        Ok(Constraint::MemberOf(Arc::new(Query::parse(expression)?)))
    }
}

/// Which ECS default applies when a request carries no strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// RunTask / StartTask.
    #[default]
    Standalone,
    /// A service's scheduler.
    Service,
}

/// One host port a task needs. `host_port` 0 asks for a dynamic port from the ephemeral range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRequest {
    pub protocol: Protocol,
    pub host_port: u16,
}

/// What one task needs from its instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskResources {
    /// CPU units.
    pub cpu: u32,
    /// MiB.
    pub memory: u32,
    pub ports: Vec<PortRequest>,
}

/// `count` identical tasks to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementRequest {
    /// The task group (`family:<name>` by default, `service:<name>` for services): spread and
    /// `distinctInstance` count the tasks of this group.
    pub group: Arc<str>,
    pub resources: TaskResources,
    pub constraints: Vec<Constraint>,
    /// Empty means ECS's default for [`origin`](Self::origin).
    pub strategies: Vec<Strategy>,
    pub origin: Origin,
    pub count: u32,
}

impl PlacementRequest {
    /// One standalone task with no ports, constraints or strategies.
    pub fn new(group: impl Into<Arc<str>>, cpu: u32, memory: u32) -> Self {
        Self {
            group: group.into(),
            resources: TaskResources {
                cpu,
                memory,
                ports: Vec::new(),
            },
            constraints: Vec::new(),
            strategies: Vec::new(),
            origin: Origin::Standalone,
            count: 1,
        }
    }

    /// The strategies that apply: the request's own, or ECS's default for its origin.
    pub fn effective_strategies(&self) -> &[Strategy] {
        match (self.strategies.is_empty(), self.origin) {
            (false, _) => &self.strategies,
            (true, Origin::Standalone) => Strategy::standalone_default(),
            (true, Origin::Service) => Strategy::service_default(),
        }
    }

    /// ECS's request limits. `place` does not need them to be safe (a request with a port asked
    /// for twice simply fits nowhere), but a request breaking them deserves an
    /// `InvalidParameterException` rather than a placement failure.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.strategies.len() > MAX_STRATEGIES {
            return Err(RequestError::TooManyStrategies(self.strategies.len()));
        }
        if self.constraints.len() > MAX_CONSTRAINTS {
            return Err(RequestError::TooManyConstraints(self.constraints.len()));
        }
        let ports = &self.resources.ports;
        for (i, p) in ports.iter().enumerate() {
            if p.host_port != 0 && ports[..i].contains(p) {
                return Err(RequestError::DuplicateHostPort {
                    protocol: p.protocol,
                    port: p.host_port,
                });
            }
        }
        Ok(())
    }
}

/// A malformed request; the message is an `InvalidParameterException` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("Too many placement strategies: {0} given, at most {max} are allowed.", max = MAX_STRATEGIES)]
    TooManyStrategies(usize),
    #[error("Too many placement constraints: {0} given, at most {max} are allowed.", max = MAX_CONSTRAINTS)]
    TooManyConstraints(usize),
    #[error("Invalid placement strategy type '{0}'. Valid values are random, spread and binpack.")]
    UnknownStrategyType(String),
    #[error(
        "Invalid field '{field}' for placement strategy '{kind}'. binpack takes cpu or memory; spread takes \
         instanceId, host or attribute:<name>."
    )]
    InvalidStrategyField { kind: String, field: String },
    #[error(
        "Invalid placement constraint type '{0}'. Valid values are distinctInstance and memberOf."
    )]
    UnknownConstraintType(String),
    #[error("A memberOf placement constraint requires an expression.")]
    MissingExpression,
    #[error("A distinctInstance placement constraint cannot have an expression.")]
    UnexpectedExpression,
    #[error("{0}")]
    InvalidExpression(#[from] ParseError),
    #[error("Host port {port}/{} is requested more than once.", protocol.as_str())]
    DuplicateHostPort { protocol: Protocol, port: u16 },
}
