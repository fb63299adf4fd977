//! The ECS cluster query language: parser and evaluator.
//!
//! ECS uses these expressions in two places: `memberOf` placement constraints, evaluated by the
//! scheduler for every candidate instance of every placement, and the `filter` of
//! `ListContainerInstances`. Both evaluate one expression against many instances, so an
//! expression is compiled once into a [`Query`] (subjects resolved, dates, versions and numbers
//! parsed, lists sorted, patterns compiled) and [`Query::matches`] is then a walk over a small
//! tree with no allocation.
//!
//! ```
//! use berth_cql::{InstanceSnapshot, Query};
//!
//! let q = Query::parse("attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d")?;
//! let mut instance = InstanceSnapshot::default();
//! instance.attributes.insert("ecs.instance-type".into(), "g2.2xlarge".into());
//! instance.attributes.insert("ecs.availability-zone".into(), "us-east-1a".into());
//! assert!(q.matches(&instance));
//! # Ok::<(), berth_cql::ParseError>(())
//! ```
//!
//! Semantics that the ECS documentation leaves open, decided here:
//! - A negated operator (`!=`, `!in`, `!~`, `!exists` and their word forms) selects exactly the
//!   instances its positive form does not; an instance without the attribute is `!=` anything.
//! - `task:group` is multi-valued: a positive test holds when any task group on the instance
//!   passes it, so `task:group != db` means "no task of group db here" (anti-affinity).
//! - `=~` follows Java's `String.matches`: the pattern must match the whole value. The syntax is
//!   that of the `regex` crate, which covers Java's common subset (no look-around, no
//!   backreferences).
//! - `>`/`>=`/`<`/`<=` on an attribute compare as numbers when both sides are numbers, else as
//!   versions when both are versions, else as text. `agentVersion` always compares as a version.
//! - A date without a time is midnight UTC; a date-time without a zone is UTC.

mod ast;
mod date;
mod error;
mod eval;
mod parser;
mod version;

use std::fmt;
use std::str::FromStr;

pub use error::{ParseError, ParseErrorKind};
pub use eval::{InstanceSnapshot, InstanceView};

/// Longest expression ECS accepts, in characters.
pub const MAX_EXPRESSION_LEN: usize = 2000;

/// Deepest nesting of parentheses and `not` accepted: far beyond what people write, and it
/// keeps a hostile expression from exhausting the stack of the recursive parser and evaluator.
pub const MAX_NESTING: usize = 64;

/// A compiled cluster query expression. Cheap to evaluate, immutable, `Send + Sync`.
#[derive(Clone)]
pub struct Query {
    source: Box<str>,
    root: ast::Node,
}

impl Query {
    /// Compiles an expression; the error's `Display` is an `InvalidParameterException` message.
    pub fn parse(expression: &str) -> Result<Self, ParseError> {
        let root = parser::parse(expression)?;
        Ok(Self {
            source: expression.into(),
            root,
        })
    }

    /// Whether `instance` is selected by the expression.
    pub fn matches<V: InstanceView + ?Sized>(&self, instance: &V) -> bool {
        eval::eval(&self.root, instance)
    }

    /// The expression as it was written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl FromStr for Query {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Query").field(&self.source).finish()
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Query {
    /// Two queries are equal when written the same way.
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Query {}
