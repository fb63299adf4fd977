//! Parse errors.
//!
//! ECS rejects a bad expression (in a `memberOf` constraint or a `ListContainerInstances` filter)
//! with an `InvalidParameterException`. The `Display` text of [`ParseError`] is meant to be that
//! exception's `message` as is: it names what was wrong and where, without internal jargon.

use std::fmt;

/// Why an expression was rejected. Stable: callers may match on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The expression is longer than [`crate::MAX_EXPRESSION_LEN`] characters.
    TooLong { len: usize },
    /// The expression is empty or only whitespace.
    Empty,
    /// Something else was expected here.
    Unexpected {
        expected: &'static str,
        found: String,
    },
    /// Not one of the subjects of the language.
    UnknownSubject(String),
    /// `attribute:` followed by an invalid name.
    InvalidAttributeName(String),
    /// Not one of the operators of the language.
    UnknownOperator(String),
    /// The operator exists but does not apply to that subject.
    OperatorNotAllowed {
        subject: String,
        operator: &'static str,
    },
    /// The operator needs an argument and none was given.
    MissingArgument { operator: &'static str },
    /// A quoted argument with no closing quote.
    UnterminatedQuote,
    /// `[]`, or a list with an empty item.
    EmptyList,
    /// `runningTasksCount` needs a non-negative integer.
    InvalidNumber(String),
    /// `agentVersion` needs a version such as `1.14.5`.
    InvalidVersion(String),
    /// `registeredAt` needs one of the documented date forms.
    InvalidDate(String),
    /// `agentConnected` compares with `true` or `false`.
    InvalidBoolean(String),
    /// The pattern of `=~` / `!~` does not compile.
    InvalidPattern { pattern: String, reason: String },
    /// Parentheses or `not` nested deeper than [`crate::MAX_NESTING`].
    TooDeep,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => write!(
                f,
                "expression is {len} characters long; the maximum is {}",
                crate::MAX_EXPRESSION_LEN
            ),
            Self::Empty => f.write_str("expression is empty"),
            Self::Unexpected { expected, found } if found.is_empty() => {
                write!(f, "expected {expected} but the expression ended")
            }
            Self::Unexpected { expected, found } => {
                write!(f, "expected {expected} but found '{found}'")
            }
            Self::UnknownSubject(s) => write!(
                f,
                "unknown subject '{s}' (expected agentConnected, agentVersion, ec2InstanceId, registeredAt, \
                 runningTasksCount, attribute:<name> or task:group)"
            ),
            Self::InvalidAttributeName(s) => write!(
                f,
                "invalid attribute name '{s}' (1 to 128 letters, digits, '-', '_', '/' or '.')"
            ),
            Self::UnknownOperator(s) => write!(f, "unknown operator '{s}'"),
            Self::OperatorNotAllowed { subject, operator } => {
                write!(
                    f,
                    "operator '{operator}' cannot be used with subject '{subject}'"
                )
            }
            Self::MissingArgument { operator } => {
                write!(f, "operator '{operator}' needs an argument")
            }
            Self::UnterminatedQuote => f.write_str("quoted argument has no closing quote"),
            Self::EmptyList => {
                f.write_str("argument lists must be non-empty, as in [value1, value2]")
            }
            Self::InvalidNumber(s) => write!(f, "'{s}' is not a non-negative integer"),
            Self::InvalidVersion(s) => write!(f, "'{s}' is not a version such as 1.14.5"),
            Self::InvalidDate(s) => write!(
                f,
                "'{s}' is not a date (use 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, \
                 2018-06-18T22:28:28 or 2018-06-18)"
            ),
            Self::InvalidBoolean(s) => write!(f, "'{s}' is not true or false"),
            Self::InvalidPattern { pattern, reason } => {
                write!(f, "invalid regular expression '{pattern}': {reason}")
            }
            Self::TooDeep => write!(
                f,
                "expression nests parentheses or 'not' more than {} levels deep",
                crate::MAX_NESTING
            ),
        }
    }
}

/// A rejected expression: what was wrong ([`ParseErrorKind`]) and where (a character offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid cluster query expression: {kind} at position {position}.")]
pub struct ParseError {
    kind: ParseErrorKind,
    position: usize,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, position: usize) -> Self {
        Self { kind, position }
    }

    /// Why the expression was rejected.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Zero-based character offset in the expression where the problem was found.
    pub fn position(&self) -> usize {
        self.position
    }
}
