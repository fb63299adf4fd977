//! The compiled form of an expression.
//!
//! Everything that can be decided once is decided at parse time: subjects are resolved to an
//! enum, dates to epoch seconds, versions and numbers parsed, `in` lists sorted for binary search,
//! patterns compiled. Negated operators (`!=`, `!in`, `!~`, `!exists`) are stored as the positive
//! test plus a `negate` flag, which gives them one consistent meaning: exactly the instances the
//! positive form does not select (an instance without the attribute is `!=` anything).

use std::cmp::Ordering;

use regex::Regex;

use crate::version::Version;

/// A boolean combination of predicates.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Pred(Predicate),
}

/// `subject operator argument`, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Predicate {
    pub(crate) test: Test,
    pub(crate) negate: bool,
}

/// The test a predicate applies, by subject.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// `agentConnected`: a text test against `"true"` / `"false"`.
    AgentConnected(TextTest),
    /// `ec2InstanceId`: absent on instances that are not EC2 (external instances).
    Ec2InstanceId(TextTest),
    /// `attribute:<name>`.
    Attribute { name: Box<str>, test: TextTest },
    /// `task:group`: true when *any* task group on the instance passes; negated, when none does.
    TaskGroup(TextTest),
    /// `agentVersion`.
    AgentVersion(Cmp, Version),
    /// `registeredAt`, in epoch seconds.
    RegisteredAt(Cmp, i64),
    /// `runningTasksCount`.
    RunningTasksCount(Cmp, u64),
}

/// Tests on a text value (positive forms only; see [`Predicate::negate`]).
#[derive(Debug, Clone)]
pub(crate) enum TextTest {
    Exists,
    Equals(Box<str>),
    /// Sorted, deduplicated.
    In(Box<[Box<str>]>),
    /// Anchored at both ends: Java's `matches` semantics.
    Matches(Regex),
    /// `>`, `>=`, `<`, `<=` on attribute values.
    Order(Cmp, OrderArg),
}

/// An ordering operator; `==` and `!=` only appear for the ordered subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    pub(crate) fn holds(self, ordering: Ordering) -> bool {
        match self {
            Cmp::Eq => ordering.is_eq(),
            Cmp::Ne => ordering.is_ne(),
            Cmp::Gt => ordering.is_gt(),
            Cmp::Ge => ordering.is_ge(),
            Cmp::Lt => ordering.is_lt(),
            Cmp::Le => ordering.is_le(),
        }
    }
}

/// The argument of an ordering test on an attribute, pre-parsed every way it may be compared.
///
/// Attribute values are untyped text, so the comparison picks the strongest reading both sides
/// share: numbers (`attribute:gpus > 2`), then versions (`attribute:kernel >= 5.10.0`), then text.
#[derive(Debug, Clone)]
pub(crate) struct OrderArg {
    pub(crate) text: Box<str>,
    pub(crate) number: Option<f64>,
    pub(crate) version: Option<Version>,
}

impl OrderArg {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.into(),
            number: parse_number(text),
            version: Version::parse(text),
        }
    }

    /// How `value` orders against this argument.
    pub(crate) fn compare(&self, value: &str) -> Ordering {
        if let (Some(arg), Some(v)) = (self.number, parse_number(value)) {
            return v.total_cmp(&arg);
        }
        if let Some(arg) = &self.version
            && let Some(v) = Version::parse(value)
        {
            return v.cmp(arg);
        }
        value.cmp(&self.text)
    }
}

/// Plain decimal numbers only: `inf`, `NaN` and exponents are text here.
fn parse_number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let mut seen_dot = false;
    let valid = !digits.is_empty()
        && digits.bytes().all(|b| match b {
            b'0'..=b'9' => true,
            b'.' if !seen_dot => {
                seen_dot = true;
                true
            }
            _ => false,
        })
        && digits.bytes().any(|b| b.is_ascii_digit());
    if valid { text.parse().ok() } else { None }
}
