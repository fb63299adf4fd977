//! Recursive-descent parser for the grammar in the ECS developer guide
//! (`cluster-query-language.md`):
//!
//! ```text
//! expr      := or
//! or        := and  (("||" | "or")  and)*
//! and       := unary (("&&" | "and") unary)*
//! unary     := ("!" | "not") unary | "(" or ")" | predicate
//! predicate := subject operator [argument]
//! argument  := value | "[" value ("," value)* "]"
//! value     := 'quoted' | "quoted" | bare
//! ```
//!
//! Lexing is driven by the parser's position in the grammar, because the language is not
//! regular at the token level: `!` is negation before a predicate but part of `!=`, `!in`, `!~`
//! and `!exists` after a subject, and a bare argument such as `g2.*`, `service:web` or
//! `2018-06-18T22:28:28+00:00` contains characters that are operators elsewhere. A bare argument
//! runs to whitespace, to `&&` / `||`, or to a `)` that closes a parenthesis opened outside it
//! (so `not(attribute:x =~ a(b|c))` works); in a list it also stops at `,` and `]`. Anything else
//! can be quoted with `'` or `"` (a backslash escapes the quote character).
//!
//! Keywords, operator words and the fixed subjects are matched case-insensitively; attribute
//! names and values are not.

use crate::ast::{Cmp, Node, OrderArg, Predicate, Test, TextTest};
use crate::date::parse_epoch_seconds;
use crate::error::{ParseError, ParseErrorKind};
use crate::version::Version;
use crate::{MAX_EXPRESSION_LEN, MAX_NESTING};

/// Largest compiled size of one pattern: generous for real patterns, bounded for hostile ones.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Attribute names are 1-128 characters (ECS `PutAttributes`).
const MAX_ATTRIBUTE_NAME: usize = 128;

pub(crate) fn parse(source: &str) -> Result<Node, ParseError> {
    let len = source.chars().count();
    if len > MAX_EXPRESSION_LEN {
        return Err(ParseError::new(
            ParseErrorKind::TooLong { len },
            MAX_EXPRESSION_LEN,
        ));
    }
    let mut parser = Parser {
        src: source,
        pos: 0,
        depth: 0,
    };
    parser.skip_ws();
    if parser.at_end() {
        return Err(parser.error(ParseErrorKind::Empty));
    }
    let node = parser.or()?;
    parser.skip_ws();
    if !parser.at_end() {
        return Err(parser.unexpected("'and', 'or', ')' or the end of the expression"));
    }
    Ok(node)
}

/// The operators, by their canonical symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Exists => "exists",
            Op::NotExists => "!exists",
            Op::In => "in",
            Op::NotIn => "!in",
            Op::Matches => "=~",
            Op::NotMatches => "!~",
        }
    }

    fn from_word(word: &str) -> Option<Op> {
        const WORDS: [(&str, Op); 12] = [
            ("equals", Op::Eq),
            ("not_equals", Op::Ne),
            ("greater_than", Op::Gt),
            ("greater_than_equal", Op::Ge),
            ("less_than", Op::Lt),
            ("less_than_equal", Op::Le),
            ("exists", Op::Exists),
            ("not_exists", Op::NotExists),
            ("in", Op::In),
            ("not_in", Op::NotIn),
            ("matches", Op::Matches),
            ("not_matches", Op::NotMatches),
        ];
        WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|(_, op)| *op)
    }

    fn cmp(self) -> Option<Cmp> {
        Some(match self {
            Op::Eq => Cmp::Eq,
            Op::Ne => Cmp::Ne,
            Op::Gt => Cmp::Gt,
            Op::Ge => Cmp::Ge,
            Op::Lt => Cmp::Lt,
            Op::Le => Cmp::Le,
            _ => return None,
        })
    }
}

/// The subjects, before their test is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject<'a> {
    AgentConnected,
    Ec2InstanceId,
    AgentVersion,
    RegisteredAt,
    RunningTasksCount,
    Attribute(&'a str),
    TaskGroup,
}

impl Subject<'_> {
    /// Operators each subject takes, per the developer guide; attributes and task groups are
    /// not restricted there, so they take every operator that makes sense on text.
    fn allows(self, op: Op) -> bool {
        match self {
            Subject::AgentConnected | Subject::Ec2InstanceId => {
                matches!(
                    op,
                    Op::Eq | Op::Ne | Op::In | Op::NotIn | Op::Matches | Op::NotMatches
                )
            }
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
                op.cmp().is_some()
            }
            Subject::Attribute(_) => true,
            Subject::TaskGroup => op.cmp().is_none() || matches!(op, Op::Eq | Op::Ne),
        }
    }
}

/// The argument as written: one value or a list.
enum Arg {
    None,
    One(String, usize),
    List(Vec<String>, usize),
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset; only ever moved across whole characters.
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    // ---- grammar -------------------------------------------------------------------------

    fn or(&mut self) -> Result<Node, ParseError> {
        let mut items = vec![self.and()?];
        loop {
            self.skip_ws();
            if !(self.eat("||") || self.eat_word("or")) {
                break;
            }
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Node::Or(items.into())
        })
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        let mut items = vec![self.unary()?];
        loop {
            self.skip_ws();
            if !(self.eat("&&") || self.eat_word("and")) {
                break;
            }
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Node::And(items.into())
        })
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        self.skip_ws();
        if self.depth >= MAX_NESTING {
            return Err(self.error(ParseErrorKind::TooDeep));
        }
        if self.eat("(") {
            self.depth += 1;
            let inner = self.or()?;
            self.skip_ws();
            if !self.eat(")") {
                return Err(self.unexpected("')'"));
            }
            self.depth -= 1;
            return Ok(inner);
        }
        if self.eat("!") || self.eat_word("not") {
            self.depth += 1;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.predicate().map(Node::Pred)
    }

    fn predicate(&mut self) -> Result<Predicate, ParseError> {
        let subject_at = self.pos;
        let subject = self.subject()?;
        self.skip_ws();
        let op_at = self.pos;
        let op = self.operator()?;
        if !subject.allows(op) {
            let text = self.src[subject_at..op_at].trim_end().to_owned();
            return Err(ParseError::new(
                ParseErrorKind::OperatorNotAllowed {
                    subject: text,
                    operator: op.symbol(),
                },
                self.char_offset(op_at),
            ));
        }
        let arg = match op {
            Op::Exists | Op::NotExists => Arg::None,
            Op::In | Op::NotIn => self.list_or_value(op)?,
            _ => {
                let (value, at) = self.value(op, false)?;
                Arg::One(value, at)
            }
        };
        self.compile(subject, op, arg)
    }

    fn subject(&mut self) -> Result<Subject<'a>, ParseError> {
        let start = self.pos;
        let word = self.take_while(|c| !c.is_whitespace() && !"=!<>~()[]&|,'\"".contains(c));
        if word.is_empty() {
            return Err(self.unexpected("a subject such as attribute:<name>"));
        }
        const FIXED: [(&str, Subject<'static>); 6] = [
            ("agentConnected", Subject::AgentConnected),
            ("ec2InstanceId", Subject::Ec2InstanceId),
            ("agentVersion", Subject::AgentVersion),
            ("registeredAt", Subject::RegisteredAt),
            ("runningTasksCount", Subject::RunningTasksCount),
            ("task:group", Subject::TaskGroup),
        ];
        if let Some((_, s)) = FIXED
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
        {
            return Ok(*s);
        }
        let prefix = "attribute:";
        if word.len() >= prefix.len() && word[..prefix.len()].eq_ignore_ascii_case(prefix) {
            let name = &word[prefix.len()..];
            let valid = (1..=MAX_ATTRIBUTE_NAME).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/.".contains(&b));
            if !valid {
                return Err(ParseError::new(
                    ParseErrorKind::InvalidAttributeName(name.to_owned()),
                    self.char_offset(start + prefix.len()),
                ));
            }
            return Ok(Subject::Attribute(name));
        }
        Err(ParseError::new(
            ParseErrorKind::UnknownSubject(word.to_owned()),
            self.char_offset(start),
        ))
    }

    fn operator(&mut self) -> Result<Op, ParseError> {
        const SYMBOLS: [(&str, Op); 8] = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=~", Op::Matches),
            ("!~", Op::NotMatches),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let start = self.pos;
        let is_op_char = |c: char| "=!<>~".contains(c);
        if let Some((sym, op)) = SYMBOLS.iter().find(|(sym, _)| self.rest().starts_with(sym)) {
            self.pos += sym.len();
            // `<>`, `===`, `=<`: a run of operator characters that is not one operator.
            if self.rest().starts_with(is_op_char) {
                self.pos = start;
                let run = self.take_while(is_op_char);
                return Err(ParseError::new(
                    ParseErrorKind::UnknownOperator(run.to_owned()),
                    self.char_offset(start),
                ));
            }
            return Ok(*op);
        }
        if self.eat("!") {
            if self.eat_word("in") {
                return Ok(Op::NotIn);
            }
            if self.eat_word("exists") {
                return Ok(Op::NotExists);
            }
            self.pos = start;
        }
        let word = self.take_while(|c| c.is_ascii_alphabetic() || c == '_');
        if let Some(op) = Op::from_word(word).filter(|_| self.at_word_end()) {
            return Ok(op);
        }
        self.pos = start;
        let found = self.take_while(|c| !c.is_whitespace());
        if found.is_empty() {
            self.pos = start;
            return Err(self.unexpected("an operator"));
        }
        Err(ParseError::new(
            ParseErrorKind::UnknownOperator(found.to_owned()),
            self.char_offset(start),
        ))
    }

    /// `[a, b]`, or a single value standing for a one-element list.
    fn list_or_value(&mut self, op: Op) -> Result<Arg, ParseError> {
        self.skip_ws();
        let at = self.char_offset(self.pos);
        if !self.eat("[") {
            let (value, at) = self.value(op, false)?;
            return Ok(Arg::List(vec![value], at));
        }
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if items.is_empty() && self.rest().starts_with(']') {
                return Err(self.error(ParseErrorKind::EmptyList));
            }
            let (item, _) = self.value(op, true)?;
            items.push(item);
            self.skip_ws();
            if self.eat("]") {
                return Ok(Arg::List(items, at));
            }
            if !self.eat(",") {
                return Err(self.unexpected("',' or ']'"));
            }
        }
    }

    /// One quoted or bare value; `in_list` makes `,` and `]` end a bare value and allows inner
    /// spaces in it (`[us east, b]`).
    fn value(&mut self, op: Op, in_list: bool) -> Result<(String, usize), ParseError> {
        self.skip_ws();
        let at = self.char_offset(self.pos);
        match self.rest().chars().next() {
            Some(quote @ ('\'' | '"')) => {
                self.pos += 1;
                let mut out = String::new();
                let mut chars = self.rest().char_indices();
                while let Some((i, c)) = chars.next() {
                    if c == quote {
                        self.pos += i + 1;
                        return Ok((out, at));
                    }
                    if c == '\\' && self.rest()[i + 1..].starts_with(quote) {
                        chars.next();
                        out.push(quote);
                    } else {
                        out.push(c);
                    }
                }
                Err(self.error(ParseErrorKind::UnterminatedQuote))
            }
            _ => {
                let raw = self.bare(in_list);
                let value = raw.trim_end();
                if value.is_empty() {
                    if in_list {
                        return Err(self.error(ParseErrorKind::EmptyList));
                    }
                    return Err(self.error(ParseErrorKind::MissingArgument {
                        operator: op.symbol(),
                    }));
                }
                Ok((value.to_owned(), at))
            }
        }
    }

    fn bare(&mut self, in_list: bool) -> &'a str {
        let rest = self.rest();
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            let ends = match c {
                '(' => {
                    depth += 1;
                    false
                }
                ')' if depth == 0 => true,
                ')' => {
                    depth -= 1;
                    false
                }
                '&' | '|' => rest[i + 1..].starts_with(c),
                ',' | ']' => in_list && depth == 0,
                c if c.is_whitespace() => !in_list,
                _ => false,
            };
            if ends {
                end = i;
                break;
            }
        }
        self.pos += end;
        &rest[..end]
    }

    // ---- compilation ---------------------------------------------------------------------

    fn compile(&self, subject: Subject<'_>, op: Op, arg: Arg) -> Result<Predicate, ParseError> {
        let negate = matches!(op, Op::Ne | Op::NotExists | Op::NotIn | Op::NotMatches);
        let test = match subject {
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
                let cmp = op.cmp().expect("checked by Subject::allows");
                let Arg::One(text, at) = arg else {
                    unreachable!("ordered subjects take a single value")
                };
                let bad =
                    |kind: fn(String) -> ParseErrorKind| ParseError::new(kind(text.clone()), at);
                let test = match subject {
                    Subject::AgentVersion => Test::AgentVersion(
                        cmp,
                        Version::parse(&text).ok_or_else(|| bad(ParseErrorKind::InvalidVersion))?,
                    ),
                    Subject::RegisteredAt => Test::RegisteredAt(
                        cmp,
                        parse_epoch_seconds(&text)
                            .ok_or_else(|| bad(ParseErrorKind::InvalidDate))?,
                    ),
                    _ => Test::RunningTasksCount(
                        cmp,
                        text.parse::<u64>()
                            .map_err(|_| bad(ParseErrorKind::InvalidNumber))?,
                    ),
                };
                // The ordered subjects carry == and != in their comparison.
                return Ok(Predicate {
                    test,
                    negate: false,
                });
            }
            Subject::AgentConnected => {
                let arg = match arg {
                    Arg::One(text, at) if op != Op::Matches && op != Op::NotMatches => {
                        Arg::One(normalize_bool(text, at)?, at)
                    }
                    Arg::List(items, at) => Arg::List(
                        items
                            .into_iter()
                            .map(|t| normalize_bool(t, at))
                            .collect::<Result<_, _>>()?,
                        at,
                    ),
                    other => other,
                };
                Test::AgentConnected(text_test(op, arg)?)
            }
            Subject::Ec2InstanceId => Test::Ec2InstanceId(text_test(op, arg)?),
            Subject::Attribute(name) => Test::Attribute {
                name: name.into(),
                test: text_test(op, arg)?,
            },
            Subject::TaskGroup => Test::TaskGroup(text_test(op, arg)?),
        };
        Ok(Predicate { test, negate })
    }

    // ---- scanning ------------------------------------------------------------------------

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        let hit = self.rest().starts_with(token);
        if hit {
            self.pos += token.len();
        }
        hit
    }

    /// A keyword, case-insensitively, not followed by more of a word.
    fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let hit = rest.len() >= word.len()
            && rest.is_char_boundary(word.len())
            && rest[..word.len()].eq_ignore_ascii_case(word)
            && !rest[word.len()..]
                .starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':' || c == '.');
        if hit {
            self.pos += word.len();
        }
        hit
    }

    fn at_word_end(&self) -> bool {
        !self
            .rest()
            .starts_with(|c: char| c.is_alphanumeric() || c == '_')
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    fn char_offset(&self, byte: usize) -> usize {
        self.src[..byte].chars().count()
    }

    fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind, self.char_offset(self.pos))
    }

    fn unexpected(&self, expected: &'static str) -> ParseError {
        let found: String = self
            .rest()
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(32)
            .collect();
        self.error(ParseErrorKind::Unexpected { expected, found })
    }
}

fn normalize_bool(text: String, at: usize) -> Result<String, ParseError> {
    if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(ParseError::new(ParseErrorKind::InvalidBoolean(text), at))
    }
}

/// Compiles the positive text test behind `op` (negation is the caller's flag).
fn text_test(op: Op, arg: Arg) -> Result<TextTest, ParseError> {
    Ok(match (op, arg) {
        (Op::Exists | Op::NotExists, _) => TextTest::Exists,
        (Op::In | Op::NotIn, Arg::List(items, _)) => {
            let mut items: Vec<Box<str>> = items.into_iter().map(String::into_boxed_str).collect();
            items.sort_unstable();
            items.dedup();
            TextTest::In(items.into())
        }
        (Op::Eq | Op::Ne, Arg::One(text, _)) => TextTest::Equals(text.into()),
        (Op::Matches | Op::NotMatches, Arg::One(pattern, at)) => {
            let anchored = format!("^(?:{pattern})$");
            let re = regex::RegexBuilder::new(&anchored)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let reason = match e {
                        regex::Error::CompiledTooBig(_) => "pattern is too large".to_owned(),
                        // The syntax error's own text is multi-line ASCII art; keep its last line.
                        other => other
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    ParseError::new(ParseErrorKind::InvalidPattern { pattern, reason }, at)
                })?;
            TextTest::Matches(re)
        }
        (op, Arg::One(text, _)) => TextTest::Order(
            op.cmp().expect("remaining operators are orderings"),
            OrderArg::new(&text),
        ),
        (op, _) => unreachable!("argument shape is decided by the operator {op:?}"),
    })
}
