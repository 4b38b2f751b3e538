//! Tables of queries over small event sets, and syntax errors with their positions.

use super::*;

/// (timestamp ms, stream, message)
type Ev = (i64, &'static str, &'static str);

const T0: i64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

fn events() -> Vec<Ev> {
    vec![
        (T0, "web/1", "INFO start user=alice latency=12"),
        (T0 + 1_000, "web/1", "ERROR boom user=bob latency=300"),
        (T0 + 61_000, "web/2", "INFO ok user=alice latency=40"),
        (
            T0 + 62_000,
            "web/2",
            r#"{"level":"ERROR","status":500,"req":{"path":"/a","ids":[7,8]},"ok":false}"#,
        ),
        (
            T0 + 125_000,
            "web/1",
            r#"{"level":"INFO","status":200,"req":{"path":"/b"}}"#,
        ),
    ]
}

fn run_with(query: &str, evs: &[Ev], limit: usize) -> Vec<ResultRow> {
    let q = parse_query(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let mut exec = Execution::new(q, limit);
    for (i, (ts, stream, msg)) in evs.iter().enumerate() {
        let flow = exec.push(EventRef {
            timestamp: *ts,
            ingestion_time: ts + 5,
            message: msg,
            log_stream: stream,
            log: "000000000000:/ecs/app",
            seq: i as u64,
        });
        if flow == Flow::Stop {
            break;
        }
    }
    exec.finish()
}

/// The rows of `query` over [`events`], without `@ptr`, as `field=value` joined by `,`.
fn run(query: &str) -> Vec<String> {
    run_with(query, &events(), 10_000)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .filter(|(f, _)| f != "@ptr")
                .map(|(f, v)| format!("{f}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn queries_give_the_rows_aws_would() {
    let cases: &[(&str, &[&str])] = &[
        (
            "fields @timestamp, @logStream | limit 2",
            &[
                "@timestamp=2023-11-14 22:13:20.000,@logStream=web/1",
                "@timestamp=2023-11-14 22:13:21.000,@logStream=web/1",
            ],
        ),
        (
            "filter @message like /ERROR/ | fields @logStream",
            &["@logStream=web/1", "@logStream=web/2"],
        ),
        (
            "filter @message like 'ok user' and @logStream = 'web/2' | display @logStream",
            &["@logStream=web/2"],
        ),
        (
            "filter @message not like /INFO|ERROR/ | fields @message",
            &[],
        ),
        (
            "filter status >= 500 | fields level, req.path, req.ids.1",
            &["level=ERROR,req.path=/a,req.ids.1=8"],
        ),
        (
            "filter level in ['INFO', 'WARN'] | fields status",
            &["status=200"],
        ),
        (
            "filter not ispresent(level) | parse @message 'user=* latency=*' as user, ms | filter ms > 20 | fields user, ms * 2 as double",
            &["user=bob,double=600", "user=alice,double=80"],
        ),
        (
            r"parse @message /user=(?<user>\w+)/ | filter ispresent(user) | stats count(*) as n by user | sort n desc",
            &["user=alice,n=2", "user=bob,n=1"],
        ),
        (
            "stats count(*) by bin(1m)",
            &[
                "bin(1m)=2023-11-14 22:13:00.000,count(*)=2",
                "bin(1m)=2023-11-14 22:14:00.000,count(*)=2",
                "bin(1m)=2023-11-14 22:15:00.000,count(*)=1",
            ],
        ),
        (
            "parse 'latency=*' as ms | stats sum(ms), avg(ms), min(ms), max(ms), pct(ms, 50), count(ms), count(*)",
            &["sum(ms)=352,avg(ms)=117.33333333333333,min(ms)=12,max(ms)=300,pct(ms, 50)=40,count(ms)=3,count(*)=5"],
        ),
        (
            "stats max(@timestamp) as last by @logStream",
            &[
                "@logStream=web/1,last=2023-11-14 22:15:25.000",
                "@logStream=web/2,last=2023-11-14 22:14:22.000",
            ],
        ),
        (
            "fields @logStream | dedup @logStream",
            &["@logStream=web/1", "@logStream=web/2"],
        ),
        (
            "fields @timestamp | sort @timestamp desc | limit 1",
            &["@timestamp=2023-11-14 22:15:25.000"],
        ),
        (
            "filter strlen(@message) < 40 and (@message =~ /alice/ or @message like 'bob') | fields toupper(@logStream) as s",
            &["s=WEB/1", "s=WEB/1", "s=WEB/2"],
        ),
        (
            "# comments are ignored\nfilter @message like /ok user/\n| stats count(*) as c",
            &["c=1"],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(run(query), *want, "query: {query}");
    }
}

#[test]
fn only_queries_that_aggregate_before_keeping_rows_are_order_free() {
    let free = |q: &str| Execution::new(parse_query(q).expect("parses"), 100).order_free();
    assert!(free(
        "filter @message like /ERROR/ | stats count(*) by bin(5m)"
    ));
    assert!(free(
        "parse @message 'id=*' as id | stats count_distinct(id) | limit 1"
    ));
    assert!(free(
        "fields @timestamp | stats max(@timestamp) | sort @timestamp"
    ));
    assert!(!free("fields @timestamp, @message | limit 20"));
    assert!(!free("filter @message like /x/"));
    assert!(!free("limit 10 | stats count(*)"));
    assert!(!free("dedup @logStream | stats count(*)"));
    assert!(!free("sort @timestamp desc | stats count(*)"));
}

#[test]
fn rows_without_fields_carry_every_field_and_a_ptr() {
    let rows = run_with("filter status = 200", &events(), 100);
    assert_eq!(rows.len(), 1);
    let names: Vec<&str> = rows[0].iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "@timestamp",
            "@message",
            "@logStream",
            "@log",
            "level",
            "req.path",
            "status",
            "@ptr"
        ]
    );
    let stats = run_with("stats count(*)", &events(), 100);
    assert!(
        stats[0].iter().all(|(f, _)| f != "@ptr"),
        "aggregates have no @ptr"
    );
}

#[test]
fn the_result_limit_stops_the_scan_and_sort_keeps_only_its_top_rows() {
    let many: Vec<Ev> = (0..10_000)
        .map(|i| (T0 + i, "s", if i % 2 == 0 { "even" } else { "odd" }))
        .collect();
    let q = parse_query("filter @message = 'odd' | fields @timestamp").expect("parses");
    let mut exec = Execution::new(q, 3);
    let mut pushed = 0;
    for (i, (ts, s, m)) in many.iter().enumerate() {
        pushed += 1;
        let ev = EventRef {
            timestamp: *ts,
            ingestion_time: *ts,
            message: m,
            log_stream: s,
            log: "a:g",
            seq: i as u64,
        };
        if exec.push(ev) == Flow::Stop {
            break;
        }
    }
    assert_eq!(pushed, 6, "three odd events are the first six");
    assert_eq!(exec.finish().len(), 3);
    let top = run_with(
        "fields @timestamp | sort @timestamp desc | limit 2",
        &many,
        100,
    );
    assert_eq!(top.len(), 2);
    assert_eq!(top[0][0].1, render_time(T0 + 9_999));
}

#[test]
fn sort_puts_strings_before_numbers_and_compares_digit_runs_as_numbers() {
    let evs: Vec<Ev> = vec![
        (1, "s", "10"),
        (2, "s", "a10"),
        (3, "s", "a9"),
        (4, "s", "2"),
        (5, "s", "B"),
    ];
    let rows = run_with("fields @message | sort @message asc", &evs, 100);
    let order: Vec<&str> = rows.iter().map(|r| r[0].1.as_str()).collect();
    assert_eq!(order, ["B", "a9", "a10", "2", "10"]);
}

#[test]
fn syntax_errors_name_their_position() {
    const MAX_DEPTH_PARENS: usize = 64;
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "fields @message | filtr x = 1",
            18,
            22,
            "unexpected symbol found filtr at line 1 and position 19",
        ),
        (
            "filter @message like",
            20,
            20,
            "unexpected end of query at line 1 and position 21",
        ),
        (
            "fields a,\n  b c",
            14,
            14,
            "unexpected symbol found c at line 2 and position 5",
        ),
        (
            "stats count(*) by bin(5)",
            22,
            22,
            "bin needs a time period such as 5m, 1h or 30s at line 1 and position 23",
        ),
        (
            "parse @message 'a=* b=*' as a",
            15,
            28,
            "the parse pattern has 2 * but 1 field names follow as at line 1 and position 16",
        ),
        ("filter x like /(/", 14, 16, ""),
        (
            "stats frob(x)",
            6,
            9,
            "frob is not an aggregation function at line 1 and position 7",
        ),
        (
            "limit 0",
            6,
            6,
            "limit must be a whole number from 1 to 100000 at line 1 and position 7",
        ),
        ("", 0, 0, "unexpected end of query at line 1 and position 1"),
        (
            &format!("filter {}1{}", "(".repeat(100), ")".repeat(100)),
            7 + MAX_DEPTH_PARENS,
            7 + MAX_DEPTH_PARENS,
            "expressions nest more than 64 deep at line 1 and position 72",
        ),
        (
            &format!("filter {}x", "not ".repeat(2000)),
            7 + 4 * MAX_DEPTH_PARENS,
            9 + 4 * MAX_DEPTH_PARENS,
            "expressions nest more than 64 deep at line 1 and position 264",
        ),
        (
            "filter é ~ 1",
            9,
            9,
            "unexpected symbol found ~ at line 1 and position 10",
        ),
    ];
    for (query, start, end, message) in cases {
        let e = parse_query(query).expect_err(query);
        assert_eq!((e.start, e.end), (*start, *end), "query: {query}: {e}");
        if !message.is_empty() {
            assert_eq!(e.message, *message, "query: {query}");
        }
    }
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    /// Pieces queries are made of, so random sequences reach deep into the parser.
    const PIECES: &[&str] = &[
        "fields",
        "filter",
        "stats",
        "sort",
        "limit",
        "dedup",
        "display",
        "parse",
        " | ",
        "@message",
        "@timestamp",
        "level",
        "a.b",
        "`x y`",
        "(",
        ")",
        "[",
        "]",
        ",",
        " as ",
        " by ",
        " and ",
        " or ",
        "not ",
        " like ",
        " in ",
        " asc",
        " desc",
        "=",
        "!=",
        "<",
        ">=",
        "=~",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "/ERR.*/",
        "/(?<u>\\w+)/",
        "'a=*'",
        "\"x\"",
        "1",
        "2.5",
        "5m",
        "count(*)",
        "sum(",
        "pct(",
        "bin(",
        "strlen(",
        "é",
        "#c\n",
        "\\",
        "'",
        "\"",
        "/",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_query_parses_or_fails_inside_itself_and_runs(
            parts in proptest::collection::vec(0..PIECES.len(), 0..40)
        ) {
            let query: String = parts.iter().map(|i| PIECES[*i]).collect::<Vec<_>>().join(" ");
            match parse_query(&query) {
                Ok(_) => {
                    let _ = run_with(&query, &events(), 50);
                }
                Err(e) => {
                    let chars = query.chars().count();
                    prop_assert!(e.start <= e.end && e.end <= chars.max(1), "{e:?} in {chars}");
                }
            }
        }
    }
}
