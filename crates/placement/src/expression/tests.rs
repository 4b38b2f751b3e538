use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::error::PlacementError;

fn instance(attrs: &[(&str, &str)]) -> Instance {
    Instance {
        id: "0".repeat(32),
        ec2_instance_id: "i-abcd1234".into(),
        active: true,
        agent_connected: true,
        agent_version: Some("1.14.0".into()),
        registered_at: 1_518_000_000.0, // 2018-02-07
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
            .collect(),
        running_tasks_count: 1,
        groups: BTreeMap::from([("service:production".to_owned(), 2)]),
        ..Instance::default()
    }
}

fn t2_small_1a() -> Instance {
    instance(&[
        ("ecs.instance-type", "t2.small"),
        ("ecs.availability-zone", "us-east-1a"),
        ("stack", "prod"),
    ])
}

fn matches(expr: &str, inst: &Instance) -> bool {
    parse_expression(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .matches(inst)
}

fn error_of(expr: &str) -> (usize, String) {
    match parse_expression(expr) {
        Err(PlacementError::InvalidExpression { position, message }) => (position, message),
        other => panic!("{expr}: expected an InvalidExpression error, got {other:?}"),
    }
}

#[test]
fn every_documented_example_parses_and_selects_what_the_docs_say() {
    let a = t2_small_1a();
    let g2 = instance(&[
        ("ecs.instance-type", "g2.2xlarge"),
        ("ecs.availability-zone", "us-east-1d"),
    ]);
    let cases: [(&str, bool, bool); 14] = [
        ("attribute:ecs.instance-type == t2.small", true, false),
        (
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
            true,
            false,
        ),
        (
            "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
            false,
            false,
        ),
        (
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a",
            true,
            false,
        ),
        (
            "attribute:ecs.instance-type in [t2.small, t2.medium]",
            true,
            false,
        ),
        ("attribute:stack == prod", true, false),
        ("attribute:stack != prod", false, true),
        ("task:group == service:production", true, true),
        ("not(task:group == database)", true, true),
        ("runningTasksCount == 1", true, true),
        ("agentVersion < 1.14.5", true, true),
        ("registeredAt < 2018-02-13", true, true),
        ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true, true),
        ("attribute:ecs.instance-type =~ g2.*", false, true),
    ];
    for (expr, on_t2, on_g2) in cases {
        assert_eq!(matches(expr, &a), on_t2, "{expr} on t2.small");
        assert_eq!(matches(expr, &g2), on_g2, "{expr} on g2");
    }
}

#[test]
fn word_operators_mean_the_same_as_symbols() {
    let a = t2_small_1a();
    for (word, sym) in [
        ("attribute:stack equals prod", "attribute:stack == prod"),
        ("attribute:stack not_equals prod", "attribute:stack != prod"),
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
        ("attribute:stack exists", "attribute:stack exists"),
        ("attribute:stack not_exists", "attribute:stack !exists"),
        ("attribute:stack in [prod]", "attribute:stack in [prod]"),
        (
            "attribute:stack not_in [prod]",
            "attribute:stack !in [prod]",
        ),
        ("attribute:stack matches pr.*", "attribute:stack =~ pr.*"),
        (
            "attribute:stack not_matches pr.*",
            "attribute:stack !~ pr.*",
        ),
    ] {
        assert_eq!(matches(word, &a), matches(sym, &a), "{word} vs {sym}");
    }
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    let a = t2_small_1a();
    // true or (false and false) = true; (true or false) and false would be false.
    assert!(matches(
        "attribute:stack == prod or attribute:stack == x and attribute:stack == y",
        &a
    ));
    assert!(!matches(
        "(attribute:stack == prod or attribute:stack == x) and attribute:stack == y",
        &a
    ));
    // (not true) and true = false; not (true and true) also false, so use or:
    // (not true) or true = true, whereas not (true or true) = false.
    assert!(matches(
        "not attribute:stack == prod or attribute:stack == prod",
        &a
    ));
    assert!(matches(
        "!attribute:stack == x && attribute:stack == prod || runningTasksCount > 5",
        &a
    ));
}

#[test]
fn regex_matches_the_whole_value_only() {
    let a = t2_small_1a();
    assert!(matches("attribute:ecs.instance-type =~ t2.*", &a));
    assert!(!matches("attribute:ecs.instance-type =~ 2.sm", &a));
    assert!(matches("attribute:ecs.instance-type =~ (t2|m5)\\..*", &a));
    assert!(matches("(attribute:ecs.instance-type =~ (t2|m5)\\..*)", &a));
    assert!(matches("attribute:ecs.instance-type =~ 't2\\.s[a-z]+'", &a));
}

#[test]
fn missing_attribute_satisfies_only_negated_operators() {
    let a = t2_small_1a();
    assert!(!matches("attribute:color == red", &a));
    assert!(matches("attribute:color != red", &a));
    assert!(matches("attribute:color not_exists", &a));
    assert!(!matches("attribute:color exists", &a));
    assert!(matches("attribute:color !in [red]", &a));
    assert!(!matches("attribute:color =~ .*", &a));
}

#[test]
fn valueless_attribute_exists_but_equals_nothing() {
    let mut a = t2_small_1a();
    a.attributes
        .insert("com.amazonaws.ecs.capability.ecr-auth".into(), None);
    assert!(matches(
        "attribute:com.amazonaws.ecs.capability.ecr-auth exists",
        &a
    ));
    assert!(!matches(
        "attribute:com.amazonaws.ecs.capability.ecr-auth == x",
        &a
    ));
}

#[test]
fn numeric_attributes_compare_as_numbers() {
    let a = instance(&[("cores", "16")]);
    assert!(matches("attribute:cores > 4", &a));
    assert!(!matches("attribute:cores < 4", &a));
}

#[test]
fn agent_version_compares_as_a_version_not_a_string() {
    let mut a = t2_small_1a();
    a.agent_version = Some("1.9.0".into());
    assert!(matches("agentVersion < 1.14.5", &a));
    a.agent_version = None;
    assert!(!matches("agentVersion < 1.14.5", &a));
    assert!(matches("agentVersion != 1.14.5", &a));
}

#[test]
fn registered_at_accepts_every_documented_format() {
    let a = t2_small_1a();
    for e in [
        "registeredAt < 2018-06-18T22:28:28+00:00",
        "registeredAt < 2018-06-18T22:28:28Z",
        "registeredAt < 2018-06-18T22:28:28",
        "registeredAt < 2018-06-18",
        "registeredAt > 2018-02-06",
    ] {
        assert!(matches(e, &a), "{e}");
    }
}

#[test]
fn agent_connected_compares_with_true_or_false() {
    let mut a = t2_small_1a();
    assert!(matches("agentConnected == true", &a));
    a.agent_connected = false;
    assert!(matches("agentConnected == false", &a));
    assert!(matches("agentConnected in [false]", &a));
}

#[test]
fn task_group_sees_planned_tasks_and_running_count_includes_them() {
    let a = t2_small_1a();
    let e = parse_expression("task:group == family:web").unwrap_or_else(|e| panic!("{e}"));
    assert!(!e.matches(&a));
    assert!(e.matches_with(
        &a,
        &PlanDelta {
            tasks: 1,
            group: "family:web"
        }
    ));
    let r = parse_expression("runningTasksCount >= 3").unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.matches(&a));
    assert!(r.matches_with(
        &a,
        &PlanDelta {
            tasks: 2,
            group: "family:web"
        }
    ));
    assert!(e.depends_on_plan() && r.depends_on_plan());
    assert!(!parse_expression("attribute:a == b")
        .unwrap_or_else(|e| panic!("{e}"))
        .depends_on_plan());
}

#[test]
fn task_group_other_operators_hold_when_any_group_satisfies_them() {
    let a = t2_small_1a();
    assert!(matches("task:group =~ service:.*", &a));
    assert!(matches("task:group exists", &a));
    assert!(!matches("task:group not_exists", &a));
    assert!(matches("task:group in [service:production, x]", &a));
}

#[test]
fn missing_operator_error_points_after_the_subject() {
    let (pos, msg) = error_of("attribute:ecs.instance-type == t2.small and attribute:stack");
    assert_eq!(pos, 60);
    assert_eq!(msg, "expected an operator after 'attribute:stack'");
    let e = parse_expression("attribute:stack prod").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid expression at character 17: expected an operator after 'attribute:stack'"
    );
}

#[test]
fn parse_errors_name_the_position_and_what_was_expected() {
    let cases: [(&str, usize, &str); 14] = [
        ("", 1, "expected a subject"),
        ("   ", 4, "expected a subject"),
        ("colour == red", 1, "expected a subject"),
        ("attribute: == x", 11, "expected an attribute name"),
        ("attribute:a ==", 15, "expected a value after '=='"),
        ("attribute:a in x", 16, "expected a list"),
        ("attribute:a in [x", 18, "expected ',' or ']'"),
        ("attribute:a == 'x", 16, "unterminated quoted value"),
        ("(attribute:a == x", 18, "expected ')'"),
        ("attribute:a == x )", 18, "expected 'and', 'or' or the end"),
        (
            "agentConnected > true",
            16,
            "operator '>' cannot be used with agentConnected",
        ),
        ("runningTasksCount == many", 22, "expected a whole number"),
        ("agentVersion < one", 16, "expected a version"),
        (
            "registeredAt exists",
            14,
            "operator 'exists' cannot be used with registeredAt",
        ),
    ];
    for (expr, pos, msg) in cases {
        let (p, m) = error_of(expr);
        assert_eq!(p, pos, "{expr}: {m}");
        assert!(m.starts_with(msg), "{expr}: {m}");
    }
}

#[test]
fn invalid_regex_is_a_parse_error_at_the_value() {
    let (pos, msg) = error_of("attribute:a =~ (unclosed");
    assert_eq!(pos, 16);
    assert!(
        msg.starts_with("invalid regular expression '(unclosed'"),
        "{msg}"
    );
}

#[test]
fn expressions_over_2000_characters_are_rejected() {
    let long = format!("attribute:a == {}", "x".repeat(2000));
    assert!(matches!(
        parse_expression(&long),
        Err(PlacementError::ExpressionTooLong { max: 2000, .. })
    ));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}attribute:a == b{}", "(".repeat(500), ")".repeat(500));
    assert!(parse_expression(&deep).is_err());
    let nots = format!("{}attribute:a == b", "not ".repeat(400));
    assert!(parse_expression(&nots).is_err());
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_input(s in "\\PC{0,300}") {
        let _ = parse_expression(&s);
    }

    #[test]
    fn parse_never_panics_on_input_built_from_the_languages_tokens(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("attribute:a"), Just("task:group"), Just("runningTasksCount"),
                Just("agentVersion"), Just("registeredAt"), Just("=="), Just("!="), Just("=~"),
                Just("in"), Just("!in"), Just("exists"), Just("["), Just("]"), Just(","),
                Just("("), Just(")"), Just("and"), Just("or"), Just("not"), Just("!"),
                Just("'"), Just("\""), Just("x.*"), Just("1.2.3"), Just("2018-01-01"), Just(" "),
            ],
            0..30,
        )
    ) {
        let s: String = parts.concat();
        if let Ok(e) = parse_expression(&s) {
            let _ = e.matches(&t2_small_1a());
        }
    }
}
