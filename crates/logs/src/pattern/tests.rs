use super::*;
use proptest::prelude::*;

fn m(p: &str, msg: &str) -> bool {
    FilterPattern::parse(p)
        .unwrap_or_else(|e| panic!("{p} parses: {e}"))
        .matches(msg)
}

fn refused(p: &str) -> String {
    match FilterPattern::parse(p) {
        Ok(parsed) => panic!("{p} parsed as {parsed:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_pattern_matches_everything() {
    assert!(m("", "anything"));
    assert!(m("   ", ""));
}

#[test]
fn plain_terms_must_all_occur_case_sensitively() {
    assert!(m("ERROR timeout", "[ERROR] request timeout"));
    assert!(!m("ERROR timeout", "[ERROR] refused"));
    assert!(!m("error", "ERROR"));
}

#[test]
fn quoted_phrases_keep_their_spaces_and_escapes() {
    assert!(m("\"connection reset\"", "x connection reset by peer"));
    assert!(!m("\"connection reset\"", "connection was reset"));
    assert!(m(r#""say \"hi\"""#, r#"they say "hi" twice"#));
}

#[test]
fn question_terms_need_any_one() {
    assert!(m("?ERROR ?WARN", "WARN disk"));
    assert!(!m("?ERROR ?WARN", "INFO ok"));
    assert!(m("disk ?ERROR ?WARN", "WARN disk"));
    assert!(!m("disk ?ERROR ?WARN", "WARN cpu"));
}

#[test]
fn minus_terms_exclude() {
    assert!(m("ERROR -healthcheck", "ERROR db"));
    assert!(!m("ERROR -healthcheck", "ERROR healthcheck failed"));
    assert!(!m("-\"GET /health\"", "GET /health 200"));
}

#[test]
fn regex_terms_search_the_message() {
    assert!(m("%ERR(OR)?:%", "x ERR: y"));
    assert!(!m("%^ERR%", "x ERR"));
    assert!(m("?%^WARN% ?%^ERROR%", "ERROR boom"));
}

#[test]
fn json_equality_with_strings_numbers_and_wildcards() {
    let msg = r#"{"level":"ERROR","http":{"status":503,"path":"/api/users"},"tags":["a","b"]}"#;
    assert!(m(r#"{ $.level = "ERROR" }"#, msg));
    assert!(m("{ $.level = ERROR }", msg));
    assert!(!m("{ $.level = error }", msg));
    assert!(m("{ $.http.status = 503 }", msg));
    assert!(m("{ $.http.status = 5* }", msg));
    assert!(m("{ $.http.path = /api/* }", msg));
    assert!(m("{ $.http.path = *users }", msg));
    assert!(m("{ $.http.path = * }", msg));
    assert!(m("{ $.tags[1] = b }", msg));
    assert!(!m("{ $.tags[2] = b }", msg));
    assert!(m("{ $.level != INFO }", msg));
    assert!(!m("{ $.missing != INFO }", msg));
    assert!(m("{ $.http.path = %users$% }", msg));
}

#[test]
fn json_numeric_comparisons() {
    let msg = r#"{"latency": 250.5, "count": 3, "s": "7"}"#;
    assert!(m("{ $.latency > 200 }", msg));
    assert!(m("{ $.latency >= 250.5 }", msg));
    assert!(!m("{ $.latency < 250.5 }", msg));
    assert!(m("{ $.count <= 3 }", msg));
    assert!(m("{ $.count = 3.0 }", msg));
    assert!(m("{ $.count = 3e0 }", msg));
    assert!(!m("{ $.s > 5 }", msg), "strings do not compare as numbers");
    assert!(!m("{ $.missing > 5 }", msg));
}

#[test]
fn json_is_and_exists() {
    let msg = r#"{"ok": true, "bad": false, "none": null}"#;
    assert!(m("{ $.ok IS TRUE }", msg));
    assert!(m("{ $.bad IS FALSE }", msg));
    assert!(!m("{ $.ok IS FALSE }", msg));
    assert!(m("{ $.none IS NULL }", msg));
    assert!(!m("{ $.absent IS NULL }", msg));
    assert!(m("{ $.absent NOT EXISTS }", msg));
    assert!(!m("{ $.none NOT EXISTS }", msg));
}

#[test]
fn json_and_or_and_parentheses() {
    let msg = r#"{"a": 1, "b": "x", "c": 5}"#;
    assert!(m("{ $.a = 1 && $.b = x }", msg));
    assert!(!m("{ $.a = 2 && $.b = x }", msg));
    assert!(m("{ $.a = 2 || $.b = x }", msg));
    // && binds tighter: false || (true && true).
    assert!(m("{ $.a = 2 || $.b = x && $.c > 4 }", msg));
    assert!(!m("{ ($.a = 2 || $.b = x) && $.c > 5 }", msg));
    assert!(m("{ (($.a = 1)) }", msg));
}

#[test]
fn json_patterns_match_only_json_objects() {
    assert!(!m("{ $.a = 1 }", "a = 1"));
    assert!(!m("{ $.a = 1 }", "[1]"));
    assert!(m("{ $.a = 1 }", "  {\"a\":1}  "));
}

const APACHE: &str =
    r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534"#;

#[test]
fn delimited_fields_bind_in_order() {
    let p = FilterPattern::parse("[ip, id, user, timestamp, request, status_code, bytes]")
        .expect("parses");
    let x = p.extract(APACHE).expect("matches");
    assert_eq!(x.lookup("$user").as_deref(), Some("frank"));
    assert_eq!(
        x.lookup("$timestamp").as_deref(),
        Some("10/Oct/2000:13:25:15 -0700")
    );
    assert_eq!(
        x.lookup("$request").as_deref(),
        Some("GET /apache_pb.gif HTTP/1.0")
    );
    assert_eq!(x.values().get("$bytes").map(String::as_str), Some("1534"));
    // Seven fields in the message: six or eight names do not match.
    assert!(!m("[a, b, c, d, e, f]", APACHE));
    assert!(!m("[a, b, c, d, e, f, g, h]", APACHE));
}

#[test]
fn delimited_conditions_wildcards_and_numbers() {
    assert!(m(
        "[ip, id, user, timestamp, request, status = 4*, bytes]",
        APACHE
    ));
    assert!(m(
        "[ip, id, user, timestamp, request, status = 404, bytes > 1000]",
        APACHE
    ));
    assert!(!m(
        "[ip, id, user, timestamp, request, status = 5*, bytes]",
        APACHE
    ));
    assert!(!m(
        "[ip, id, user, timestamp, request, status, bytes < 1000]",
        APACHE
    ));
    assert!(m(
        "[ip, id, user, timestamp, request = *gif*, status != 200, bytes]",
        APACHE
    ));
    assert!(m(r#"[ip = "127.0.0.1", ...]"#, APACHE));
    assert!(m(r"[ip = %^127\.%, ...]", APACHE));
}

#[test]
fn delimited_ellipsis_takes_any_number_of_fields() {
    assert!(m("[ip, ..., status = 404, bytes]", APACHE));
    assert!(m("[..., bytes > 100]", APACHE));
    assert!(m("[ip, user = -, ...]", APACHE));
    assert!(m("[...]", APACHE));
    assert!(m("[ip, ..., request, ..., bytes]", APACHE));
    assert!(!m("[..., status = 200, bytes]", APACHE));
    let x = FilterPattern::parse("[..., status, bytes]")
        .expect("parses")
        .extract(APACHE)
        .expect("matches");
    assert_eq!(x.lookup("$status").as_deref(), Some("404"));
}

#[test]
fn delimited_or_and_and_across_fields() {
    assert!(m(
        "[ip, id, user, timestamp, request, status = 500 || status = 404, bytes]",
        APACHE
    ));
    assert!(!m(
        "[ip, id, user, timestamp, request, status = 500 || status = 503, bytes]",
        APACHE
    ));
    assert!(m(
        "[ip, id, user, timestamp, request, status = 4* && bytes > 1000, bytes]",
        APACHE
    ));
    assert!(!m(
        "[ip, id, user, timestamp, request, status = 4* && bytes > 2000, bytes]",
        APACHE
    ));
}

#[test]
fn json_matches_extract_selector_values() {
    let x = FilterPattern::parse("{ $.latency > 0 }")
        .expect("parses")
        .extract(r#"{"latency": 12.5, "svc": {"name": "web"}, "arr": [4]}"#)
        .expect("matches");
    assert_eq!(x.lookup("$.latency").as_deref(), Some("12.5"));
    assert_eq!(x.lookup("$.svc.name").as_deref(), Some("web"));
    assert_eq!(x.lookup("$.arr[0]").as_deref(), Some("4"));
    assert_eq!(x.lookup("$.svc"), None);
    assert!(x.values().is_empty());
}

#[test]
fn broken_patterns_are_refused_with_aws_wording() {
    for p in [
        "\"open",
        "?",
        "ok -",
        "{ $.a = 1",
        "{ $.a }",
        "{ a = 1 }",
        "{ $. = 1 }",
        "{ $.a > x }",
        "{ $.a = 1 && }",
        "{ $.a IS MAYBE }",
        "{ $.a NOT THERE }",
        "{ ($.a = 1 }",
        "{ $.a[x] = 1 }",
        "[a, b",
        "[]",
        "[a,, b]",
        "[a, a]",
        "[a = 1 || zz = 2, b]",
        "[a, b] extra",
        "%unclosed",
        "%(%",
        "%a% %b% %c%",
    ] {
        let msg = refused(p);
        assert!(msg.starts_with("Invalid filter pattern"), "{p}: {msg}");
    }
    let e = FilterPattern::parse(&"a".repeat(1025)).expect_err("too long");
    assert_eq!(e, PatternError::TooLong);
    assert!(FilterPattern::parse(&format!(
        "{{ {}$.a = 1{} }}",
        "(".repeat(40),
        ")".repeat(40)
    ))
    .is_err());
}

#[test]
fn references_are_checked() {
    assert!(is_reference("$.a.b"));
    assert!(is_reference("$.a[0]"));
    assert!(is_reference("$bytes"));
    assert!(!is_reference("$"));
    assert!(!is_reference("$."));
    assert!(!is_reference("bytes"));
    assert!(!is_reference("$a b"));
}

#[test]
fn globs() {
    assert!(glob("*", ""));
    assert!(glob("a*", "abc"));
    assert!(glob("*c", "abc"));
    assert!(glob("a*c", "abc"));
    assert!(glob("a*b*c", "aXbYc"));
    assert!(!glob("a*b*c", "aXcYb"));
    assert!(!glob("ab*ba", "aba"));
    assert!(glob("abc", "abc"));
    assert!(!glob("abc", "abcd"));
}

proptest! {
    /// Parsing never panics, and what parses can be matched against anything.
    #[test]
    fn any_text_parses_or_is_refused(p in ".{0,80}", msg in ".{0,80}") {
        if let Ok(parsed) = FilterPattern::parse(&p) {
            let _ = parsed.extract(&msg);
        }
    }

    /// Structured-looking input from the pattern alphabet: never panics either.
    #[test]
    fn pattern_alphabet_never_panics(
        p in r#"[\{\}\[\]\(\)\$\.,=!<>&|?\-"%* a-c0-9]{0,60}"#,
        msg in r#"[\{\}\[\]":, a-c0-9]{0,60}"#,
    ) {
        if let Ok(parsed) = FilterPattern::parse(&p) {
            let _ = parsed.extract(&msg);
        }
    }

    /// A plain word always matches a message containing it, and `-word` never does.
    #[test]
    fn a_word_matches_where_it_occurs(word in "[A-Za-z0-9]{1,12}", pre in "[ a-z]{0,10}", post in "[ a-z]{0,10}") {
        let msg = format!("{pre}{word}{post}");
        prop_assert!(m(&word, &msg));
        let minus = format!("-{word}");
        prop_assert!(!m(&minus, &msg));
    }

    /// A JSON equality on a generated string field matches exactly that value.
    #[test]
    fn json_string_equality(v in "[a-z0-9]{1,10}", other in "[a-z0-9]{1,10}") {
        let msg = serde_json::json!({"k": v}).to_string();
        let p = format!("{{ $.k = \"{v}\" }}");
        prop_assert!(m(&p, &msg));
        let q = format!("{{ $.k = \"{other}\" }}");
        prop_assert_eq!(m(&q, &msg), other == v);
    }

    /// Numeric comparisons agree with f64's.
    #[test]
    fn json_numbers_compare_like_f64(x in -1.0e6f64..1.0e6, n in -1.0e6f64..1.0e6) {
        let msg = serde_json::json!({"n": x}).to_string();
        prop_assert_eq!(m(&format!("{{ $.n > {n} }}"), &msg), x > n);
        prop_assert_eq!(m(&format!("{{ $.n <= {n} }}"), &msg), x <= n);
    }

    /// `[..., last]` binds the last field of any message of words.
    #[test]
    fn ellipsis_binds_the_last_field(words in proptest::collection::vec("[a-z0-9]{1,6}", 1..12)) {
        let msg = words.join(" ");
        let x = FilterPattern::parse("[..., last]").expect("parses").extract(&msg);
        prop_assert_eq!(x.and_then(|x| x.lookup("$last")), words.last().cloned());
    }
}
