//! Property test against an independent model: random expression trees are written out in random
//! surface syntax (symbols or words, quoting, spacing, redundant parentheses), parsed, and
//! evaluated on random instances; the compiled query must agree with the model's direct reading.

use std::collections::{BTreeMap, BTreeSet};

use berth_cql::{InstanceSnapshot, Query};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["tier", "ecs.availability-zone", "rack/id"];
const VALUES: [&str; 5] = ["gold", "us-east-1a", "us-east-1b", "r-1", "7"];
const GROUPS: [&str; 3] = ["service:web", "family:db", "batch"];

#[derive(Debug, Clone)]
enum TextOp {
    Eq(usize),
    Ne(usize),
    In(Vec<usize>),
    NotIn(Vec<usize>),
    Exists,
    NotExists,
    /// Prefix match via `=~ <prefix>.*`
    Prefix(usize, bool),
}

#[derive(Debug, Clone)]
enum Pred {
    Attr(usize, TextOp),
    Group(TextOp),
    Running(u8, u64),
    Connected(bool, bool),
}

#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    P(Pred),
}

#[derive(Debug, Clone)]
struct Style {
    words: bool,
    quote: u8,
    tight: bool,
    parens: bool,
}

fn text_op(pool: usize) -> impl Strategy<Value = TextOp> {
    let idx = 0..pool;
    prop_oneof![
        idx.clone().prop_map(TextOp::Eq),
        idx.clone().prop_map(TextOp::Ne),
        prop::collection::vec(idx.clone(), 1..4).prop_map(TextOp::In),
        prop::collection::vec(idx.clone(), 1..4).prop_map(TextOp::NotIn),
        Just(TextOp::Exists),
        Just(TextOp::NotExists),
        (idx, any::<bool>()).prop_map(|(i, neg)| TextOp::Prefix(i, neg)),
    ]
}

fn pred() -> impl Strategy<Value = Pred> {
    prop_oneof![
        (0..NAMES.len(), text_op(VALUES.len())).prop_map(|(n, op)| Pred::Attr(n, op)),
        text_op(GROUPS.len()).prop_map(Pred::Group),
        (0u8..6, 0u64..4).prop_map(|(op, n)| Pred::Running(op, n)),
        (any::<bool>(), any::<bool>()).prop_map(|(eq, v)| Pred::Connected(eq, v)),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    pred().prop_map(Expr::P).prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Expr::Not(Box::new(a))),
        ]
    })
}

fn instance() -> impl Strategy<Value = InstanceSnapshot> {
    (
        prop::collection::vec(prop::option::of(0..VALUES.len()), NAMES.len()),
        prop::collection::vec(any::<bool>(), GROUPS.len()),
        0u64..4,
        any::<bool>(),
    )
        .prop_map(|(attrs, groups, running, connected)| {
            let attributes: BTreeMap<String, String> = attrs
                .iter()
                .enumerate()
                .filter_map(|(n, v)| v.map(|v| (NAMES[n].to_owned(), VALUES[v].to_owned())))
                .collect();
            let task_groups: BTreeSet<String> = groups
                .iter()
                .enumerate()
                .filter(|(_, on)| **on)
                .map(|(g, _)| GROUPS[g].to_owned())
                .collect();
            InstanceSnapshot {
                attributes,
                task_groups,
                running_tasks_count: running,
                agent_connected: connected,
                ..Default::default()
            }
        })
}

fn quote(v: &str, style: &Style) -> String {
    match style.quote % 3 {
        0 => v.to_owned(),
        1 => format!("'{v}'"),
        _ => format!("\"{v}\""),
    }
}

fn render_text(subject: &str, op: &TextOp, pool: &[&str], s: &Style) -> String {
    let sp = if s.tight { "" } else { " " };
    let list = |items: &[usize]| {
        let inner: Vec<String> = items.iter().map(|i| quote(pool[*i], s)).collect();
        format!("[{}]", inner.join(if s.tight { "," } else { ", " }))
    };
    match (op, s.words) {
        (TextOp::Eq(v), false) => format!("{subject}{sp}=={sp}{}", quote(pool[*v], s)),
        (TextOp::Eq(v), true) => format!("{subject} equals {}", quote(pool[*v], s)),
        (TextOp::Ne(v), false) => format!("{subject}{sp}!={sp}{}", quote(pool[*v], s)),
        (TextOp::Ne(v), true) => format!("{subject} not_equals {}", quote(pool[*v], s)),
        (TextOp::In(l), false) => format!("{subject} in{sp}{}", list(l)),
        (TextOp::In(l), true) => format!("{subject} in {}", list(l)),
        (TextOp::NotIn(l), false) => format!("{subject} !in{sp}{}", list(l)),
        (TextOp::NotIn(l), true) => format!("{subject} not_in {}", list(l)),
        (TextOp::Exists, _) => format!("{subject} exists"),
        (TextOp::NotExists, false) => format!("{subject} !exists"),
        (TextOp::NotExists, true) => format!("{subject} not_exists"),
        (TextOp::Prefix(v, neg), words) => {
            let op = match (neg, words) {
                (false, false) => "=~",
                (true, false) => "!~",
                (false, true) => " matches ",
                (true, true) => " not_matches ",
            };
            let pattern = format!("{}.*", regex_escape(prefix(pool[*v])));
            let op = if words {
                op.to_owned()
            } else {
                format!("{sp}{op}{sp}")
            };
            format!("{subject}{op}{}", quote(&pattern, s))
        }
    }
}

fn prefix(v: &str) -> &str {
    &v[..v.len().min(2)]
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

fn render(e: &Expr, styles: &mut impl Iterator<Item = Style>) -> String {
    let s = styles.next().expect("infinite");
    let body = match e {
        Expr::And(a, b) => {
            let op = if s.words {
                " and "
            } else if s.tight {
                "&&"
            } else {
                " && "
            };
            format!("({}){op}({})", render(a, styles), render(b, styles))
        }
        Expr::Or(a, b) => {
            let op = if s.words {
                " or "
            } else if s.tight {
                "||"
            } else {
                " || "
            };
            format!("({}){op}({})", render(a, styles), render(b, styles))
        }
        Expr::Not(a) => {
            let inner = render(a, styles);
            if s.words {
                format!("not ({inner})")
            } else {
                format!("!({inner})")
            }
        }
        Expr::P(Pred::Attr(n, op)) => {
            render_text(&format!("attribute:{}", NAMES[*n]), op, &VALUES, &s)
        }
        Expr::P(Pred::Group(op)) => render_text("task:group", op, &GROUPS, &s),
        Expr::P(Pred::Running(op, n)) => {
            let sym = ["==", "!=", ">", ">=", "<", "<="][*op as usize];
            let word = [
                "equals",
                "not_equals",
                "greater_than",
                "greater_than_equal",
                "less_than",
                "less_than_equal",
            ][*op as usize];
            if s.words {
                format!("runningTasksCount {word} {n}")
            } else {
                format!("runningTasksCount {sym} {n}")
            }
        }
        Expr::P(Pred::Connected(eq, v)) => {
            format!("agentConnected {} {v}", if *eq { "==" } else { "!=" })
        }
    };
    if s.parens { format!("({body})") } else { body }
}

fn text_holds(op: &TextOp, pool: &[&str], values: &[&str]) -> bool {
    let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
    match op {
        TextOp::Eq(i) => any(&|v| v == pool[*i]),
        TextOp::Ne(i) => !any(&|v| v == pool[*i]),
        TextOp::In(l) => any(&|v| l.iter().any(|i| pool[*i] == v)),
        TextOp::NotIn(l) => !any(&|v| l.iter().any(|i| pool[*i] == v)),
        TextOp::Exists => !values.is_empty(),
        TextOp::NotExists => values.is_empty(),
        TextOp::Prefix(i, neg) => any(&|v| v.starts_with(prefix(pool[*i]))) != *neg,
    }
}

fn model(e: &Expr, inst: &InstanceSnapshot) -> bool {
    match e {
        Expr::And(a, b) => model(a, inst) && model(b, inst),
        Expr::Or(a, b) => model(a, inst) || model(b, inst),
        Expr::Not(a) => !model(a, inst),
        Expr::P(Pred::Attr(n, op)) => {
            let values: Vec<&str> = inst
                .attributes
                .get(NAMES[*n])
                .map(String::as_str)
                .into_iter()
                .collect();
            text_holds(op, &VALUES, &values)
        }
        Expr::P(Pred::Group(op)) => {
            let values: Vec<&str> = inst.task_groups.iter().map(String::as_str).collect();
            text_holds(op, &GROUPS, &values)
        }
        Expr::P(Pred::Running(op, n)) => {
            let r = inst.running_tasks_count;
            [r == *n, r != *n, r > *n, r >= *n, r < *n, r <= *n][*op as usize]
        }
        Expr::P(Pred::Connected(eq, v)) => (inst.agent_connected == *v) == *eq,
    }
}

fn style() -> impl Strategy<Value = Style> {
    (
        any::<bool>(),
        0u8..3,
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(words, quote, tight, parens)| Style {
            words,
            quote,
            tight,
            parens,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn compiled_query_agrees_with_model(
        e in expr(),
        styles in prop::collection::vec(style(), 64),
        instances in prop::collection::vec(instance(), 8),
    ) {
        let text = render(&e, &mut styles.into_iter().cycle());
        let query = Query::parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        for inst in &instances {
            prop_assert_eq!(query.matches(inst), model(&e, inst), "{} on {:?}", text, inst);
        }
    }

    /// Whatever the input, parsing returns (never panics) and errors point inside the input.
    #[test]
    fn parser_is_total(text in "[ -~]{0,80}") {
        if let Err(e) = Query::parse(&text) {
            prop_assert!(e.position() <= text.chars().count());
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
