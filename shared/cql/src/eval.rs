//! Evaluation against one container instance.
//!
//! The language is evaluated against a trait rather than a concrete struct so that the
//! scheduler can evaluate directly on its own index entries (no copy per evaluation) and the
//! api-gateway on its read-model rows. [`InstanceSnapshot`] is a ready-made owner for the rest.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{Node, Predicate, Test, TextTest};
use crate::version::Version;

/// What the query language can ask about a container instance.
pub trait InstanceView {
    /// The value of an attribute, `None` when the instance does not have it. An attribute with
    /// no value (ECS allows that, for example `ecs.capability.*`) is `Some("")`.
    fn attribute(&self, name: &str) -> Option<&str>;
    /// The EC2 instance id; `None` for instances that have none (external instances).
    fn ec2_instance_id(&self) -> Option<&str>;
    /// Whether the agent is connected.
    fn agent_connected(&self) -> bool;
    /// The agent version as reported, for example `1.14.5`.
    fn agent_version(&self) -> Option<&str>;
    /// Registration time, seconds since the Unix epoch.
    fn registered_at(&self) -> Option<i64>;
    /// Tasks counted as running on the instance.
    fn running_tasks_count(&self) -> u64;
    /// Calls `f` on the name of each task group with at least one task on the instance, until
    /// `f` returns `true`; returns whether it did. (A callback, not an iterator, so that
    /// implementations can walk whatever they store without allocating.)
    fn any_task_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool;
    /// Whether a task of `group` is on the instance. Override when a lookup beats a walk.
    fn has_task_group(&self, group: &str) -> bool {
        self.any_task_group(&mut |g| g == group)
    }
}

/// A self-contained description of an instance, for callers that have no view of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceSnapshot {
    pub attributes: BTreeMap<String, String>,
    pub ec2_instance_id: Option<String>,
    pub agent_connected: bool,
    pub agent_version: Option<String>,
    pub registered_at: Option<i64>,
    pub running_tasks_count: u64,
    pub task_groups: BTreeSet<String>,
}

impl InstanceView for InstanceSnapshot {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.ec2_instance_id.as_deref()
    }
    fn agent_connected(&self) -> bool {
        self.agent_connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.agent_version.as_deref()
    }
    fn registered_at(&self) -> Option<i64> {
        self.registered_at
    }
    fn running_tasks_count(&self) -> u64 {
        self.running_tasks_count
    }
    fn any_task_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.task_groups.iter().any(|g| f(g))
    }
    fn has_task_group(&self, group: &str) -> bool {
        self.task_groups.contains(group)
    }
}

pub(crate) fn eval<V: InstanceView + ?Sized>(node: &Node, instance: &V) -> bool {
    match node {
        Node::And(items) => items.iter().all(|n| eval(n, instance)),
        Node::Or(items) => items.iter().any(|n| eval(n, instance)),
        Node::Not(inner) => !eval(inner, instance),
        Node::Pred(p) => eval_predicate(p, instance),
    }
}

fn eval_predicate<V: InstanceView + ?Sized>(p: &Predicate, instance: &V) -> bool {
    let positive = match &p.test {
        Test::AgentConnected(t) => text_test(
            t,
            Some(if instance.agent_connected() {
                "true"
            } else {
                "false"
            }),
        ),
        Test::Ec2InstanceId(t) => text_test(t, instance.ec2_instance_id()),
        Test::Attribute { name, test } => text_test(test, instance.attribute(name)),
        Test::TaskGroup(t) => match t {
            TextTest::Equals(g) => instance.has_task_group(g),
            TextTest::Exists => instance.any_task_group(&mut |_| true),
            other => instance.any_task_group(&mut |g| text_test(other, Some(g))),
        },
        Test::AgentVersion(cmp, arg) => instance
            .agent_version()
            .and_then(Version::parse)
            .is_some_and(|v| cmp.holds(v.cmp(arg))),
        Test::RegisteredAt(cmp, at) => instance
            .registered_at()
            .is_some_and(|t| cmp.holds(t.cmp(at))),
        Test::RunningTasksCount(cmp, n) => cmp.holds(instance.running_tasks_count().cmp(n)),
    };
    positive != p.negate
}

/// A positive text test; an absent value passes only nothing.
fn text_test(test: &TextTest, value: Option<&str>) -> bool {
    let Some(value) = value else {
        return false;
    };
    match test {
        TextTest::Exists => true,
        TextTest::Equals(arg) => value == &**arg,
        TextTest::In(list) => list.binary_search_by(|item| (**item).cmp(value)).is_ok(),
        TextTest::Matches(re) => re.is_match(value),
        TextTest::Order(cmp, arg) => cmp.holds(arg.compare(value)),
    }
}
