//! Table-driven tests of the grammar and of evaluation, the evaluation cases built on
//! the examples of ECR's user guide ("Examples of lifecycle policies in Amazon ECR").

use super::*;

const NOW: f64 = 1_800_000_000.0;

/// A policy from its rules, padded to ECR's 100-character minimum.
fn policy_text(rules: &[serde_json::Value]) -> String {
    let text = serde_json::json!({ "rules": rules }).to_string();
    format!("{text:<100}")
}

fn rule(priority: i32, selection: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"rulePriority": priority, "selection": selection, "action": {"type": "expire"}})
}

fn keep(status: &str, list: Option<(&str, &[&str])>, n: i64) -> serde_json::Value {
    let mut s = serde_json::json!({"tagStatus": status, "countType": "imageCountMoreThan", "countNumber": n});
    if let Some((key, items)) = list {
        s[key] = serde_json::json!(items);
    }
    s
}

fn older_than(status: &str, list: Option<(&str, &[&str])>, days: i64) -> serde_json::Value {
    let mut s = keep(status, list, days);
    s["countType"] = "sinceImagePushed".into();
    s["countUnit"] = "days".into();
    s
}

/// An image named `name` (its digest is derived from the name) pushed `days_ago`.
fn image(name: &str, tags: &[&str], days_ago: f64) -> Candidate {
    Candidate {
        digest: Digest::sha256_of(name.as_bytes()),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        pushed_at: NOW - days_ago * SECONDS_PER_DAY,
        referenced: false,
    }
}

/// The names of the images `rules` expire among `images` (named A, B, … in order),
/// with the rule that expires each.
fn expired(rules: &[serde_json::Value], images: &[Candidate]) -> Vec<(char, i32)> {
    let policy = parse_policy(&policy_text(rules)).unwrap_or_else(|e| panic!("{e}"));
    compute_expiries(&policy, images, NOW)
        .into_iter()
        .map(|e| {
            let name = char::from(b'A' + u8::try_from(e.index).unwrap_or(0));
            (name, e.rule_priority)
        })
        .collect()
}

const PREFIX: &str = "tagPrefixList";
const PATTERN: &str = "tagPatternList";

#[test]
fn evaluation_follows_ecr_documented_examples() {
    struct Case {
        what: &'static str,
        rules: Vec<serde_json::Value>,
        images: Vec<Candidate>,
        expired: Vec<(char, i32)>,
    }
    let cases = [
        Case {
            what: "age: prod* images older than 14 days",
            rules: vec![rule(
                1,
                older_than("tagged", Some((PATTERN, &["prod*"])), 14),
            )],
            images: vec![
                image("A", &["prod-1"], 20.0),
                image("B", &["prod-2"], 3.0),
                image("C", &["dev-1"], 30.0),
            ],
            expired: vec![('A', 1)],
        },
        Case {
            what: "count: keep one untagged image",
            rules: vec![rule(1, keep("untagged", None, 1))],
            images: vec![
                image("A", &[], 3.0),
                image("B", &[], 2.0),
                image("C", &[], 1.0),
                image("D", &["v1"], 5.0),
            ],
            expired: vec![('A', 1), ('B', 1)],
        },
        Case {
            what: "multiple rules, example A: prod keep 1 then beta keep 1",
            rules: vec![
                rule(1, keep("tagged", Some((PREFIX, &["prod"])), 1)),
                rule(2, keep("tagged", Some((PREFIX, &["beta"])), 1)),
            ],
            images: vec![
                image("A", &["beta-1", "prod-1"], 10.0),
                image("B", &["beta-2", "prod-2"], 9.0),
                image("C", &["beta-3"], 8.0),
            ],
            // Rule 2 marks A and B, but rule 1 saw both: B keeps rule 1's verdict.
            expired: vec![('A', 1)],
        },
        Case {
            what: "multiple rules, example B: prod keep 1 then beta keep 1",
            rules: vec![
                rule(1, keep("tagged", Some((PREFIX, &["prod"])), 1)),
                rule(2, keep("tagged", Some((PREFIX, &["beta"])), 1)),
            ],
            images: vec![
                image("A", &["beta-1", "prod-1"], 10.0),
                image("B", &["beta-2", "prod-2"], 9.0),
                image("C", &["beta-3", "prod-3"], 8.0),
                image("D", &["beta-4"], 7.0),
            ],
            expired: vec![('A', 1), ('B', 1)],
        },
        Case {
            what: "an image a higher rule kept still counts in a lower rule's window",
            rules: vec![
                rule(1, keep("tagged", Some((PREFIX, &["prod"])), 1)),
                rule(2, keep("tagged", Some((PREFIX, &["beta"])), 1)),
            ],
            images: vec![
                image("A", &["prod-1", "beta-1"], 1.0),
                image("B", &["beta-2"], 2.0),
            ],
            expired: vec![('B', 2)],
        },
        Case {
            what: "multiple tags in one rule, by age: both prefixes must match",
            rules: vec![rule(
                1,
                older_than("tagged", Some((PREFIX, &["alpha", "beta"])), 5),
            )],
            images: vec![
                image("A", &["alpha-1", "beta-1"], 12.0),
                image("B", &["alpha-2", "beta-2"], 11.0),
                image("C", &["alpha-3"], 10.0),
                image("D", &["beta-3"], 9.0),
                image("E", &["alpha-4", "beta-4"], 2.0),
            ],
            expired: vec![('A', 1), ('B', 1)],
        },
        Case {
            what: "multiple tags in one rule, by count: images with one prefix are not selected",
            rules: vec![rule(
                1,
                keep("tagged", Some((PREFIX, &["alpha", "beta"])), 1),
            )],
            images: vec![
                image("A", &["alpha-1", "beta-1"], 10.0),
                image("B", &["alpha-2", "beta-2"], 9.0),
                image("C", &["alpha-3", "beta-3"], 8.0),
                image("D", &["alpha-4"], 7.0),
                image("E", &["beta-4"], 6.0),
            ],
            expired: vec![('A', 1), ('B', 1)],
        },
        Case {
            what: "one tag may satisfy several prefixes",
            rules: vec![rule(
                1,
                keep("tagged", Some((PREFIX, &["rel", "release"])), 1),
            )],
            images: vec![
                image("A", &["release-1"], 2.0),
                image("B", &["release-2"], 1.0),
            ],
            expired: vec![('A', 1)],
        },
        Case {
            what: "multiple patterns: every pattern must match one of the tags",
            rules: vec![rule(
                1,
                keep("tagged", Some((PATTERN, &["prod*", "*-rc*"])), 1),
            )],
            images: vec![
                image("A", &["prod", "v1-rc1"], 3.0),
                image("B", &["prod-2"], 4.0),
                image("C", &["v2-rc1"], 5.0),
                image("D", &["prod-3", "v3-rc2"], 1.0),
            ],
            expired: vec![('A', 1)],
        },
        Case {
            what: "all images: any keeps the newest one",
            rules: vec![rule(1, keep("any", None, 1))],
            images: vec![
                image("A", &["a"], 3.0),
                image("B", &[], 2.0),
                image("C", &["c"], 1.0),
            ],
            expired: vec![('A', 1), ('B', 1)],
        },
        Case {
            what: "all images: a tagged rule first protects what it selected",
            rules: vec![
                rule(1, keep("tagged", Some((PREFIX, &["prod"])), 5)),
                rule(2, older_than("any", None, 7)),
            ],
            images: vec![
                image("A", &["prod-1"], 30.0),
                image("B", &[], 30.0),
                image("C", &["dev"], 10.0),
                image("D", &["dev-2"], 1.0),
            ],
            expired: vec![('B', 2), ('C', 2)],
        },
        Case {
            what: "untagged and tagged rules together, priorities out of text order",
            rules: vec![
                rule(20, keep("tagged", Some((PREFIX, &["v"])), 1)),
                rule(10, older_than("untagged", None, 1)),
            ],
            images: vec![
                image("A", &[], 3.0),
                image("B", &["v1"], 3.0),
                image("C", &["v2"], 2.0),
                image("D", &[], 0.5),
            ],
            expired: vec![('A', 10), ('B', 20)],
        },
    ];
    for c in cases {
        assert_eq!(expired(&c.rules, &c.images), c.expired, "{}", c.what);
    }
}

#[test]
fn images_a_manifest_list_references_never_expire() {
    let mut child = image("A", &[], 10.0);
    child.referenced = true;
    let images = [child, image("B", &[], 9.0), image("C", &[], 1.0)];
    assert_eq!(
        expired(&[rule(1, keep("untagged", None, 1))], &images),
        [('B', 1)]
    );
}

#[test]
fn grammar_is_enforced_as_ecr_does() {
    let valid = policy_text(&[rule(1, older_than("untagged", None, 14))]);
    let cases: Vec<(&str, String, bool)> = vec![
        ("a valid untagged rule", valid.clone(), true),
        (
            "tagged without a list",
            policy_text(&[rule(1, keep("tagged", None, 1))]),
            false,
        ),
        (
            "tagged with both lists",
            policy_text(&[rule(1, {
                let mut s = keep("tagged", Some((PREFIX, &["a"])), 1);
                s[PATTERN] = serde_json::json!(["b*"]);
                s
            })]),
            false,
        ),
        (
            "tagged with an empty list",
            policy_text(&[rule(1, keep("tagged", Some((PREFIX, &[])), 1))]),
            false,
        ),
        (
            "a list on an untagged rule",
            policy_text(&[rule(1, keep("untagged", Some((PREFIX, &["a"])), 1))]),
            false,
        ),
        (
            "any not last",
            policy_text(&[
                rule(1, keep("any", None, 1)),
                rule(2, keep("tagged", Some((PREFIX, &["a"])), 1)),
            ]),
            false,
        ),
        (
            "any last",
            policy_text(&[
                rule(2, keep("any", None, 1)),
                rule(1, keep("tagged", Some((PREFIX, &["a"])), 1)),
            ]),
            true,
        ),
        (
            "duplicate priorities",
            policy_text(&[
                rule(1, keep("tagged", Some((PREFIX, &["a"])), 1)),
                rule(1, keep("tagged", Some((PREFIX, &["b"])), 1)),
            ]),
            false,
        ),
        (
            "priority zero",
            policy_text(&[rule(0, keep("untagged", None, 1))]),
            false,
        ),
        (
            "two untagged rules",
            policy_text(&[
                rule(1, keep("untagged", None, 1)),
                rule(2, older_than("untagged", None, 14)),
            ]),
            false,
        ),
        (
            "the same prefixes twice",
            policy_text(&[
                rule(1, keep("tagged", Some((PREFIX, &["a", "b"])), 1)),
                rule(2, keep("tagged", Some((PREFIX, &["b", "a"])), 5)),
            ]),
            false,
        ),
        (
            "five wildcards",
            policy_text(&[rule(1, keep("tagged", Some((PATTERN, &["a*b*c*d*e*"])), 1))]),
            false,
        ),
        (
            "four wildcards",
            policy_text(&[rule(1, keep("tagged", Some((PATTERN, &["a*b*c*d*"])), 1))]),
            true,
        ),
        (
            "countUnit on imageCountMoreThan",
            policy_text(&[rule(1, {
                let mut s = keep("untagged", None, 1);
                s["countUnit"] = "days".into();
                s
            })]),
            false,
        ),
        (
            "sinceImagePushed without countUnit",
            policy_text(&[rule(1, {
                let mut s = keep("untagged", None, 1);
                s["countType"] = "sinceImagePushed".into();
                s
            })]),
            false,
        ),
        (
            "countNumber zero",
            policy_text(&[rule(1, keep("untagged", None, 0))]),
            false,
        ),
        (
            "a null list",
            policy_text(&[rule(1, {
                let mut s = keep("untagged", None, 1);
                s[PREFIX] = serde_json::Value::Null;
                s
            })]),
            false,
        ),
        (
            "an unknown action",
            valid.clone().replace("expire", "delete"),
            false,
        ),
        (
            "an unknown field",
            valid
                .clone()
                .replace("\"action\"", "\"extra\":1,\"action\""),
            false,
        ),
        ("no rules", format!("{:<100}", r#"{"rules":[]}"#), false),
        ("too short", r#"{"rules":[]}"#.to_owned(), false),
    ];
    for (what, text, ok) in cases {
        let got = parse_policy(&text);
        assert_eq!(got.is_ok(), ok, "{what}: {got:?} for {text}");
        if let Err(e) = got {
            assert!(
                e.to_string().starts_with("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "),
                "{what}: {e}"
            );
        }
    }
}

#[test]
fn wildcards_match_like_ecr() {
    for (pattern, tag, matches) in [
        ("prod*", "prod-1", true),
        ("prod*", "prod", true),
        ("*-rc*", "v1-rc2", true),
        ("prod*", "dev", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
        ("a*b*a", "aba", true),
        ("a*a", "a", false),
        ("*", "anything", true),
    ] {
        assert_eq!(wildcard(pattern, tag), matches, "{pattern} on {tag}");
    }
}
