//! The language as the ECS developer guide documents it, one behaviour per test.

use berth_cql::{InstanceSnapshot, ParseErrorKind, Query};

fn instance() -> InstanceSnapshot {
    let mut i = InstanceSnapshot {
        ec2_instance_id: Some("i-abcd1234".into()),
        agent_connected: true,
        agent_version: Some("1.14.5".into()),
        registered_at: Some(1_529_360_908), // 2018-06-18T22:28:28Z
        running_tasks_count: 1,
        ..Default::default()
    };
    for (k, v) in [
        ("ecs.instance-type", "g2.2xlarge"),
        ("ecs.availability-zone", "us-east-1a"),
        ("ecs.capability.task-eni", ""),
        ("gpus", "4"),
        ("kernel", "5.10.2"),
        ("tier", "gold"),
    ] {
        i.attributes.insert(k.into(), v.into());
    }
    i.task_groups.insert("service:production".into());
    i.task_groups.insert("family:web".into());
    i
}

#[track_caller]
fn check(expr: &str, expected: bool) {
    let q = Query::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    assert_eq!(q.matches(&instance()), expected, "{expr}");
}

#[track_caller]
fn rejects(expr: &str) -> ParseErrorKind {
    match Query::parse(expr) {
        Ok(q) => panic!("{expr} parsed as {q:?}"),
        Err(e) => e.kind().clone(),
    }
}

#[test]
fn developer_guide_examples() {
    check("attribute:ecs.instance-type == t2.small", false);
    check("attribute:ecs.instance-type == g2.2xlarge", true);
    check(
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
        true,
    );
    check(
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
        true,
    );
    check("task:group == service:production", true);
    check("not(task:group == database)", true);
    check("runningTasksCount == 1", true);
    check("agentVersion < 1.14.5", false);
    check("registeredAt < 2018-02-13", false);
    check("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true);
}

#[test]
fn word_forms_equal_symbols() {
    let pairs = [
        ("attribute:tier equals gold", "attribute:tier == gold"),
        ("attribute:tier not_equals gold", "attribute:tier != gold"),
        ("runningTasksCount greater_than 0", "runningTasksCount > 0"),
        (
            "runningTasksCount greater_than_equal 2",
            "runningTasksCount >= 2",
        ),
        ("runningTasksCount less_than 1", "runningTasksCount < 1"),
        (
            "runningTasksCount less_than_equal 1",
            "runningTasksCount <= 1",
        ),
        ("attribute:tier exists", "attribute:tier exists"),
        ("attribute:tier not_exists", "attribute:tier !exists"),
        ("attribute:tier in [gold]", "attribute:tier in [gold]"),
        ("attribute:tier not_in [gold]", "attribute:tier !in [gold]"),
        ("attribute:tier matches go.*", "attribute:tier =~ go.*"),
        ("attribute:tier not_matches go.*", "attribute:tier !~ go.*"),
        (
            "attribute:tier == gold AND NOT runningTasksCount > 3",
            "attribute:tier == gold && !runningTasksCount > 3",
        ),
        (
            "attribute:tier == x OR runningTasksCount == 1",
            "attribute:tier == x || runningTasksCount == 1",
        ),
    ];
    for (words, symbols) in pairs {
        let (a, b) = (Query::parse(words).unwrap(), Query::parse(symbols).unwrap());
        assert_eq!(
            a.matches(&instance()),
            b.matches(&instance()),
            "{words} vs {symbols}"
        );
    }
}

#[test]
fn and_binds_tighter_than_or() {
    // true || (false && false) = true; (true || false) && false would be false.
    check(
        "runningTasksCount == 1 || attribute:tier == x && attribute:tier == y",
        true,
    );
    check(
        "(runningTasksCount == 1 || attribute:tier == x) && attribute:tier == y",
        false,
    );
    check("!runningTasksCount == 1 || runningTasksCount == 1", true);
    check(
        "not (runningTasksCount == 1 or runningTasksCount == 2)",
        false,
    );
    check("!!(runningTasksCount == 1)", true);
}

#[test]
fn spacing_is_free_around_symbols() {
    check("attribute:tier==gold&&runningTasksCount>=1", true);
    check("(attribute:tier==gold)||(runningTasksCount>5)", true);
    check("  attribute:tier   in[gold ,silver]  ", true);
    check("attribute:tier!in[silver]", true);
    check("attribute:tier!exists", false);
}

#[test]
fn regex_must_match_the_whole_value() {
    check("attribute:ecs.instance-type =~ g2", false);
    check("attribute:ecs.instance-type =~ g2\\..*", true);
    check("attribute:ecs.instance-type =~ '(g2|p3)\\.2xlarge'", true);
    check("not(attribute:ecs.instance-type =~ (p3|p4).*)", true);
    check("attribute:ecs.instance-type =~ G2.*", false);
    check("attribute:ecs.instance-type =~ (?i)G2.*", true);
    check("attribute:gpus =~ \\d+", true);
    check("attribute:missing !~ .*", true);
}

#[test]
fn missing_values_fail_positive_and_pass_negated_tests() {
    check("attribute:missing == x", false);
    check("attribute:missing != x", true);
    check("attribute:missing in [x]", false);
    check("attribute:missing !in [x]", true);
    check("attribute:missing > 1", false);
    check("attribute:missing exists", false);
    check("attribute:missing !exists", true);
    check("attribute:ecs.capability.task-eni exists", true);
    let external = InstanceSnapshot::default();
    assert!(
        Query::parse("ec2InstanceId != i-1")
            .unwrap()
            .matches(&external)
    );
    assert!(
        !Query::parse("ec2InstanceId =~ .*")
            .unwrap()
            .matches(&external)
    );
    assert!(
        !Query::parse("agentVersion >= 0.0.0")
            .unwrap()
            .matches(&external)
    );
    assert!(
        !Query::parse("registeredAt > 1970-01-01")
            .unwrap()
            .matches(&external)
    );
}

#[test]
fn task_group_is_any_of_the_groups() {
    check("task:group == family:web", true);
    check("task:group != family:web", false);
    check("task:group != database", true);
    check("task:group in [database, family:web]", true);
    check("task:group !in [database, cache]", true);
    check("task:group =~ service:.*", true);
    check("task:group !~ service:.*", false);
    check("task:group exists", true);
    assert!(
        Query::parse("task:group !exists")
            .unwrap()
            .matches(&InstanceSnapshot::default())
    );
}

#[test]
fn ordered_subjects_compare_by_type() {
    check("agentVersion > 1.9.9", true); // as text "1.14.5" < "1.9.9"
    check("agentVersion == 1.14.5.0", true);
    check("agentVersion >= v1.14.5", true);
    check("agentVersion != 1.14.5", false);
    check("registeredAt == 2018-06-18T22:28:28+00:00", true);
    check("registeredAt == 2018-06-18T22:28:28Z", true);
    check("registeredAt == 2018-06-18T22:28:28", true);
    check("registeredAt > 2018-06-18", true);
    check("registeredAt < 2018-06-19", true);
    check("registeredAt >= 2018-06-19T00:28:28+02:00", true);
    check("runningTasksCount != 0", true);
    // Attributes: numbers, then versions, then text.
    check("attribute:gpus > 10", false); // as text "4" > "10"
    check("attribute:gpus >= 4.0", true);
    check("attribute:kernel > 5.9.0", true);
    check("attribute:kernel < 5.10.10", true);
    check("attribute:tier < silver", true);
}

#[test]
fn quoting() {
    check("attribute:tier == 'gold'", true);
    check("attribute:tier == \"gold\"", true);
    check("attribute:tier in ['gold', \"silver\"]", true);
    check("attribute:tier != 'gold and silver'", true);
    check(r"attribute:tier != 'it\'s'", true);
    check("attribute:tier in [ gold , x y ]", true);
}

#[test]
fn keywords_and_subjects_are_case_insensitive() {
    check("RUNNINGTASKSCOUNT == 1 AND Task:Group == family:web", true);
    check("Attribute:tier == gold", true);
    check("attribute:tier == GOLD", false);
    check("agentConnected == TRUE", true);
    check("agentConnected in [false]", false);
    check("agentConnected =~ t.*", true);
}

#[test]
fn rejections_name_the_problem() {
    assert!(matches!(rejects(""), ParseErrorKind::Empty));
    assert!(matches!(rejects("   "), ParseErrorKind::Empty));
    assert!(matches!(rejects("colour == red"), ParseErrorKind::UnknownSubject(s) if s == "colour"));
    assert!(matches!(
        rejects("attribute: == x"),
        ParseErrorKind::InvalidAttributeName(_)
    ));
    assert!(matches!(
        rejects("attribute:a*b == x"),
        ParseErrorKind::InvalidAttributeName(_)
    ));
    assert!(matches!(
        rejects("attribute:x <> y"),
        ParseErrorKind::UnknownOperator(_)
    ));
    assert!(matches!(
        rejects("attribute:x contains y"),
        ParseErrorKind::UnknownOperator(_)
    ));
    assert!(matches!(
        rejects("attribute:x"),
        ParseErrorKind::Unexpected { .. }
    ));
    assert!(matches!(
        rejects("agentVersion in [1.0]"),
        ParseErrorKind::OperatorNotAllowed { .. }
    ));
    assert!(matches!(
        rejects("agentConnected > true"),
        ParseErrorKind::OperatorNotAllowed { .. }
    ));
    assert!(matches!(
        rejects("ec2InstanceId exists"),
        ParseErrorKind::OperatorNotAllowed { .. }
    ));
    assert!(matches!(
        rejects("task:group > a"),
        ParseErrorKind::OperatorNotAllowed { .. }
    ));
    assert!(matches!(
        rejects("attribute:x =="),
        ParseErrorKind::MissingArgument { .. }
    ));
    assert!(matches!(
        rejects("(attribute:x == )"),
        ParseErrorKind::MissingArgument { .. }
    ));
    assert!(matches!(
        rejects("attribute:x == 'abc"),
        ParseErrorKind::UnterminatedQuote
    ));
    assert!(matches!(
        rejects("attribute:x in []"),
        ParseErrorKind::EmptyList
    ));
    assert!(matches!(
        rejects("attribute:x in [a,,b]"),
        ParseErrorKind::EmptyList
    ));
    assert!(matches!(
        rejects("attribute:x in [a, b"),
        ParseErrorKind::Unexpected { .. }
    ));
    assert!(matches!(
        rejects("runningTasksCount > -1"),
        ParseErrorKind::InvalidNumber(_)
    ));
    assert!(matches!(
        rejects("agentVersion < latest"),
        ParseErrorKind::InvalidVersion(_)
    ));
    assert!(matches!(
        rejects("registeredAt < yesterday"),
        ParseErrorKind::InvalidDate(_)
    ));
    assert!(matches!(
        rejects("agentConnected == yes"),
        ParseErrorKind::InvalidBoolean(_)
    ));
    assert!(matches!(
        rejects("attribute:x =~ (a"),
        ParseErrorKind::InvalidPattern { .. }
    ));
    assert!(matches!(
        rejects("attribute:x =~ '(?=a)b'"),
        ParseErrorKind::InvalidPattern { .. }
    ));
    assert!(matches!(
        rejects("(attribute:x == a"),
        ParseErrorKind::Unexpected { .. }
    ));
    assert!(matches!(
        rejects("attribute:x == a)"),
        ParseErrorKind::Unexpected { .. }
    ));
    assert!(matches!(
        rejects("attribute:x == a attribute:y == b"),
        ParseErrorKind::Unexpected { .. }
    ));
    assert!(matches!(
        rejects("attribute:x == a and"),
        ParseErrorKind::Unexpected { .. }
    ));
    assert!(matches!(rejects("()"), ParseErrorKind::Unexpected { .. }));
}

#[test]
fn limits() {
    let long = format!("attribute:x == {}", "a".repeat(2000));
    assert!(matches!(
        rejects(&long),
        ParseErrorKind::TooLong { len: 2015 }
    ));
    let exact = format!("attribute:x == {}", "a".repeat(2000 - 15));
    assert_eq!(exact.len(), 2000);
    Query::parse(&exact).unwrap();
    let deep = format!(
        "{}runningTasksCount == 1{}",
        "(".repeat(100),
        ")".repeat(100)
    );
    assert!(matches!(rejects(&deep), ParseErrorKind::TooDeep));
    let nots = format!("{}runningTasksCount == 1", "!".repeat(1000));
    assert!(matches!(rejects(&nots), ParseErrorKind::TooDeep));
    let ok = format!("{}runningTasksCount == 1{}", "(".repeat(60), ")".repeat(60));
    check(&ok, true);
}

#[test]
fn error_message_is_ready_for_an_exception() {
    let err =
        Query::parse("attribute:ecs.instance-type == t2.small and colour == red").unwrap_err();
    assert_eq!(err.position(), 44);
    let msg = err.to_string();
    assert!(
        msg.starts_with("Invalid cluster query expression: unknown subject 'colour'"),
        "{msg}"
    );
    assert!(msg.ends_with("at position 44."), "{msg}");
}

#[test]
fn queries_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Query>();
    let q: Query = "runningTasksCount == 1".parse().unwrap();
    assert_eq!(q.to_string(), "runningTasksCount == 1");
}
