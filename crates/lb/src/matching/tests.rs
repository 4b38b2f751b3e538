use super::*;
use model::lb::{Action, ListenerProtocol, Rule};
use proptest::prelude::*;

fn m(p: &str, t: &str) -> bool {
    wildcard_match(p.as_bytes(), t.as_bytes(), false)
}

#[test]
fn wildcards_follow_aws_semantics() {
    assert!(m("/api/*", "/api/"));
    assert!(m("/api/*", "/api/v1/users"));
    assert!(!m("/api/*", "/api"));
    assert!(m("*", ""));
    assert!(m("/img/?.png", "/img/a.png"));
    assert!(!m("/img/?.png", "/img/ab.png"));
    assert!(m("/img/?.png", "/img/é.png"), "? takes one whole character");
    assert!(m("*.example.com", "www.example.com"));
    assert!(!m("*.example.com", "example.com"));
    assert!(m("a*b*c", "aXXbYYbZZc"));
    assert!(!m("a*b*c", "aXXbYY"));
    assert!(!m("/API/*", "/api/x"), "paths are case-sensitive");
    assert!(wildcard_match(b"*.EXAMPLE.com", b"www.example.COM", true));
}

#[test]
fn host_loses_its_port() {
    assert_eq!(host_without_port("example.com:8080"), "example.com");
    assert_eq!(host_without_port("example.com"), "example.com");
    assert_eq!(host_without_port("[::1]:80"), "[::1]");
    assert_eq!(host_without_port("[::1]"), "[::1]");
}

#[test]
fn cidr_contains_addresses_in_block_only() {
    let c = Cidr::parse("10.1.0.0/16").expect("valid");
    assert!(c.contains("10.1.200.3".parse().expect("ip")));
    assert!(!c.contains("10.2.0.1".parse().expect("ip")));
    assert!(
        c.contains("::ffff:10.1.0.9".parse().expect("ip")),
        "v4-mapped counts"
    );
    assert!(Cidr::parse("0.0.0.0/0")
        .expect("valid")
        .contains("8.8.8.8".parse().expect("ip")));
    let v6 = Cidr::parse("2001:db8::/32").expect("valid");
    assert!(v6.contains("2001:db8::1".parse().expect("ip")));
    assert!(!v6.contains("10.0.0.1".parse().expect("ip")));
    for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x"] {
        assert_eq!(Cidr::parse(bad), None, "{bad}");
    }
}

fn rule(priority: u32, conditions: Vec<Condition>, tag: u16) -> Rule {
    Rule {
        arn: format!("rule-{priority}"),
        priority,
        conditions,
        actions: vec![Action::FixedResponse {
            status_code: tag,
            content_type: None,
            message_body: None,
        }],
    }
}

fn listener(rules: Vec<Rule>) -> Listener {
    Listener {
        arn: "l".into(),
        port: 80,
        protocol: ListenerProtocol::Http,
        rules,
        default_actions: vec![Action::FixedResponse {
            status_code: 404,
            content_type: None,
            message_body: None,
        }],
    }
}

fn tag(actions: &[Action]) -> u16 {
    match actions.first() {
        Some(Action::FixedResponse { status_code, .. }) => *status_code,
        _ => 0,
    }
}

fn facts<'a>(headers: &'a HeaderMap, path: &'a str, host: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        method: "GET",
        host: Some(host),
        path,
        query: None,
        headers: Headers::Map(headers),
        source_ip: "192.0.2.7".parse().expect("ip"),
    }
}

#[test]
fn lowest_priority_number_wins_whatever_the_order_given() {
    let l = listener(vec![
        rule(20, vec![Condition::PathPattern(vec!["/a*".into()])], 220),
        rule(10, vec![Condition::PathPattern(vec!["/ab*".into()])], 210),
    ]);
    let rules = CompiledRules::compile(&l, tag);
    let h = HeaderMap::new();
    assert_eq!(*rules.select(&facts(&h, "/abc", "x")), 210);
    assert_eq!(*rules.select(&facts(&h, "/ax", "x")), 220);
    assert_eq!(*rules.select(&facts(&h, "/zzz", "x")), 404);
}

#[test]
fn all_conditions_must_match_and_any_value_within_one() {
    let l = listener(vec![rule(
        1,
        vec![
            Condition::HostHeader(vec!["api.example.com".into(), "*.api.example.com".into()]),
            Condition::HttpHeader {
                name: "X-Env".into(),
                values: vec!["prod*".into()],
            },
            Condition::HttpRequestMethod(vec!["GET".into(), "HEAD".into()]),
        ],
        200,
    )]);
    let rules = CompiledRules::compile(&l, tag);
    let mut h = HeaderMap::new();
    h.insert("x-env", http::HeaderValue::from_static("PRODUCTION"));
    assert_eq!(*rules.select(&facts(&h, "/", "EU.API.example.com")), 200);
    assert_eq!(*rules.select(&facts(&h, "/", "other.com")), 404);
    let mut post = facts(&h, "/", "api.example.com");
    post.method = "POST";
    assert_eq!(*rules.select(&post), 404);
    let empty = HeaderMap::new();
    assert_eq!(*rules.select(&facts(&empty, "/", "api.example.com")), 404);
}

#[test]
fn query_string_and_source_ip_conditions() {
    let l = listener(vec![
        rule(
            1,
            vec![Condition::QueryString(vec![
                (Some("version".into()), "v2*".into()),
                (None, "beta".into()),
            ])],
            201,
        ),
        rule(
            2,
            vec![Condition::SourceIp(vec!["192.0.2.0/24".into()])],
            202,
        ),
        rule(3, vec![Condition::SourceIp(vec!["bogus".into()])], 203),
    ]);
    let rules = CompiledRules::compile(&l, tag);
    let h = HeaderMap::new();
    let mut f = facts(&h, "/", "x");
    f.query = Some("a=1&VERSION=V2.1");
    assert_eq!(*rules.select(&f), 201);
    f.query = Some("flag=beta");
    assert_eq!(*rules.select(&f), 201);
    f.query = Some("version=v1");
    assert_eq!(*rules.select(&f), 202, "falls to the source-ip rule");
    f.source_ip = "198.51.100.1".parse().expect("ip");
    assert_eq!(*rules.select(&f), 404, "a malformed CIDR never matches");
}

#[test]
fn redirect_substitutes_placeholders_and_drops_default_port() {
    let from = RedirectSource {
        protocol: "HTTP",
        host: "example.com",
        port: 8080,
        path: "/a/b",
        query: Some("x=1"),
    };
    let keep = RedirectSpec {
        protocol: "#{protocol}",
        host: "#{host}",
        port: "#{port}",
        path: "/#{path}",
        query: "#{query}",
    };
    assert_eq!(
        compute_redirect_location(&keep, &from),
        "http://example.com:8080/a/b?x=1"
    );
    let https = RedirectSpec {
        protocol: "HTTPS",
        port: "443",
        path: "/new/#{path}",
        query: "#{query}&from=#{host}",
        ..keep
    };
    assert_eq!(
        compute_redirect_location(&https, &from),
        "https://example.com/new/a/b?x=1&from=example.com"
    );
    let no_query = RedirectSource {
        query: None,
        port: 80,
        ..from
    };
    assert_eq!(
        compute_redirect_location(&keep, &no_query),
        "http://example.com/a/b"
    );
}

/// The reference semantics: the pattern as an anchored regular expression.
fn reference(pattern: &str, text: &str, fold: bool) -> bool {
    let mut re = String::from(if fold { "(?si)^" } else { "(?s)^" });
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).expect("valid regex").is_match(text)
}

proptest! {
    #[test]
    fn wildcard_agrees_with_regex(pattern in "[aAb/.é*?]{0,8}", text in "[aAb/.é]{0,12}") {
        prop_assert_eq!(m(&pattern, &text), reference(&pattern, &text, false));
    }

    #[test]
    fn case_folding_agrees_with_regex(pattern in "[aAbB.*?]{0,8}", text in "[aAbB.]{0,12}") {
        prop_assert_eq!(
            wildcard_match(pattern.as_bytes(), text.as_bytes(), true),
            reference(&pattern, &text, true)
        );
    }

    #[test]
    fn a_pattern_without_wildcards_matches_only_itself(a in "[a-z/.]{0,10}", b in "[a-z/.]{0,10}") {
        prop_assert_eq!(m(&a, &b), a == b);
    }

    #[test]
    fn star_matches_everything(text in ".{0,20}") {
        prop_assert!(m("*", &text));
    }
}
