//! Service-level tests: operations through `Logs::handle` over a real SQLite store.

use super::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};

/// 2024-11-26T10:00:00Z.
const T0: i64 = 1_732_615_200_000;

struct Fixture {
    logs: Logs,
    now: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, wire::AwsError> {
        let bytes = serde_json::to_vec(&body).expect("json");
        match self.logs.handle(op, &bytes).await {
            Ok(out) => Ok(serde_json::from_slice(&out).expect("response is JSON")),
            Err(e) => Err(e.to_aws()),
        }
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    async fn err(&self, op: &str, body: Value) -> wire::AwsError {
        match self.call(op, body).await {
            Ok(v) => panic!("{op} succeeded unexpectedly: {v}"),
            Err(e) => e,
        }
    }

    async fn stream(&self, group: &str, stream: &str) {
        let _ = self
            .call("CreateLogGroup", json!({"logGroupName": group}))
            .await;
        self.ok(
            "CreateLogStream",
            json!({"logGroupName": group, "logStreamName": stream}),
        )
        .await;
    }

    async fn put(&self, group: &str, stream: &str, events: &[(i64, &str)]) -> Value {
        let events: Vec<Value> = events
            .iter()
            .map(|(t, m)| json!({"timestamp": t, "message": m}))
            .collect();
        self.ok(
            "PutLogEvents",
            json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}),
        )
        .await
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Arc::new(AtomicI64::new(T0));
    Fixture {
        logs: open_logs(dir.path(), &now),
        now,
        _dir: dir,
    }
}

/// A Logs service over the state store and the event store in `dir`, on `now`.
fn open_logs(dir: &std::path::Path, now: &Arc<AtomicI64>) -> Logs {
    let store = store::SqliteStore::open(store::SqliteConfig::new(dir.join("state.db")))
        .expect("store opens");
    let scope = ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    let clock_now = now.clone();
    let events = SqliteEventStore::open(dir.join("logs.db")).expect("event store opens");
    Logs::new(Arc::new(store), Arc::new(events), scope)
        .with_clock(Arc::new(move || clock_now.load(Ordering::SeqCst)))
}

fn messages(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_owned())
        .collect()
}

#[tokio::test]
async fn groups_and_streams_report_aws_errors() {
    let f = fixture();
    f.ok("CreateLogGroup", json!({"logGroupName": "/ecs/web"}))
        .await;
    let e = f
        .err("CreateLogGroup", json!({"logGroupName": "/ecs/web"}))
        .await;
    assert_eq!(e.code, "ResourceAlreadyExistsException");
    assert_eq!(e.message, "The specified log group already exists");
    let e = f
        .err("CreateLogGroup", json!({"logGroupName": "bad name"}))
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    let e = f
        .err(
            "CreateLogStream",
            json!({"logGroupName": "/nope", "logStreamName": "s"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(e.message, "The specified log group does not exist.");
    let e = f
        .err(
            "CreateLogStream",
            json!({"logGroupName": "/ecs/web", "logStreamName": "a:b"}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    f.stream("/ecs/web", "s").await;
    let e = f
        .err(
            "CreateLogStream",
            json!({"logGroupName": "/ecs/web", "logStreamName": "s"}),
        )
        .await;
    assert_eq!(e.code, "ResourceAlreadyExistsException");
    let e = f
        .err(
            "PutLogEvents",
            json!({"logGroupName": "/ecs/web", "logStreamName": "missing", "logEvents": [{"timestamp": T0, "message": "x"}]}),
        )
        .await;
    assert_eq!(e.message, "The specified log stream does not exist.");
}

#[tokio::test]
async fn events_out_of_order_refuse_the_whole_batch() {
    let f = fixture();
    f.stream("g", "s").await;
    let e = f
        .err(
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [
                {"timestamp": T0, "message": "b"}, {"timestamp": T0 - 1, "message": "a"}]}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    assert_eq!(
        e.message,
        "Log events in a single PutLogEvents request must be in chronological order."
    );
    let v = f
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s"}),
        )
        .await;
    assert!(messages(&v).is_empty());
}

#[tokio::test]
async fn batch_limits_are_enforced() {
    let f = fixture();
    f.stream("g", "s").await;
    let put = |events: Vec<Value>| json!({"logGroupName": "g", "logStreamName": "s", "logEvents": events});
    let too_many: Vec<Value> = (0..10_001)
        .map(|_| json!({"timestamp": T0, "message": "x"}))
        .collect();
    assert_eq!(
        f.err("PutLogEvents", put(too_many)).await.code,
        "InvalidParameterException"
    );
    // 1,048,576 bytes counts each message plus 26: two events of 524,262 bytes fit exactly.
    let fits = "x".repeat(524_262);
    let v = f
        .ok(
            "PutLogEvents",
            put(vec![
                json!({"timestamp": T0, "message": fits}),
                json!({"timestamp": T0, "message": fits}),
            ]),
        )
        .await;
    assert!(v["nextSequenceToken"].is_string());
    let over = "x".repeat(524_263);
    let e = f
        .err(
            "PutLogEvents",
            put(vec![
                json!({"timestamp": T0, "message": over}),
                json!({"timestamp": T0, "message": fits}),
            ]),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    let e = f
        .err(
            "PutLogEvents",
            put(vec![
                json!({"timestamp": T0 - DAY_MS - 1, "message": "a"}),
                json!({"timestamp": T0, "message": "b"}),
            ]),
        )
        .await;
    assert!(e.message.contains("24 hours"), "{}", e.message);
    assert_eq!(
        f.err("PutLogEvents", put(vec![])).await.code,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn too_old_and_too_new_events_are_rejected_individually() {
    let f = fixture();
    f.stream("g", "s").await;
    let v = f.put("g", "s", &[(T0, "now")]).await;
    assert!(v["rejectedLogEventsInfo"].is_null(), "{v}");
    // One batch may span 24 hours at most, so the too-old and too-new ends are shown
    // in separate batches, 14 days later.
    f.advance(14 * DAY_MS);
    let now = T0 + 14 * DAY_MS;
    let v = f.put("g", "s", &[(T0 - 1, "old"), (T0 + 1, "kept")]).await;
    assert_eq!(v["rejectedLogEventsInfo"]["tooOldLogEventEndIndex"], 1);
    assert!(v["rejectedLogEventsInfo"]["tooNewLogEventStartIndex"].is_null());
    let v = f
        .put(
            "g",
            "s",
            &[(now, "fresh"), (now + 2 * 3_600_000 + 1, "future")],
        )
        .await;
    assert_eq!(v["rejectedLogEventsInfo"]["tooNewLogEventStartIndex"], 1);
    let v = f
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&v), vec!["now", "kept", "fresh"]);
}

#[tokio::test]
async fn sequence_tokens_are_ignored_and_always_returned() {
    let f = fixture();
    f.stream("g", "s").await;
    let a = f.put("g", "s", &[(T0, "a")]).await;
    let b = f
        .ok(
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "sequenceToken": "bogus", "logEvents": [{"timestamp": T0, "message": "b"}]}),
        )
        .await;
    assert_ne!(a["nextSequenceToken"], b["nextSequenceToken"]);
    let d = f
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(
        d["logStreams"][0]["uploadSequenceToken"],
        b["nextSequenceToken"]
    );
}

#[tokio::test]
async fn get_log_events_pages_both_ways_until_the_token_repeats() {
    let f = fixture();
    f.stream("g", "s").await;
    let batch: Vec<(i64, String)> = (0..25).map(|i| (T0 + i / 3, format!("m{i:02}"))).collect();
    let refs: Vec<(i64, &str)> = batch.iter().map(|(t, m)| (*t, m.as_str())).collect();
    f.put("g", "s", &refs).await;
    let want: Vec<String> = batch.iter().map(|(_, m)| m.clone()).collect();

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..20 {
        let mut req =
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 7, "startFromHead": true});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let v = f.ok("GetLogEvents", req).await;
        seen.extend(messages(&v));
        let next = v["nextForwardToken"]
            .as_str()
            .expect("forward token")
            .to_owned();
        assert!(v["nextBackwardToken"].is_string());
        if token.as_deref() == Some(next.as_str()) {
            break;
        }
        token = Some(next);
    }
    assert_eq!(seen, want);

    // Default direction: the newest page first, then backwards.
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..20 {
        let mut req = json!({"logGroupName": "g", "logStreamName": "s", "limit": 10});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let v = f.ok("GetLogEvents", req).await;
        pages.push(messages(&v));
        let next = v["nextBackwardToken"]
            .as_str()
            .expect("backward token")
            .to_owned();
        if token.as_deref() == Some(next.as_str()) {
            break;
        }
        token = Some(next);
    }
    assert_eq!(pages[0], want[15..]);
    assert_eq!(pages[1], want[5..15]);
    assert_eq!(pages[2], want[..5]);
    assert!(pages[3].is_empty());
}

#[tokio::test]
async fn get_log_events_respects_the_time_range_and_follows_new_events() {
    let f = fixture();
    f.stream("g", "s").await;
    f.put("g", "s", &[(T0 - 2000, "a"), (T0 - 1000, "b"), (T0, "c")])
        .await;
    let v = f
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startTime": T0 - 1000, "endTime": T0, "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&v), vec!["b"]);
    let v = f
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s"}),
        )
        .await;
    let forward = v["nextForwardToken"].as_str().expect("token").to_owned();
    f.put("g", "s", &[(T0 + 5, "d")]).await;
    let v = f
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": forward}),
        )
        .await;
    assert_eq!(messages(&v), vec!["d"]);
}

#[tokio::test]
async fn events_with_equal_timestamps_keep_ingestion_order() {
    let f = fixture();
    f.stream("g", "s").await;
    f.put("g", "s", &[(T0, "1"), (T0, "2")]).await;
    f.put("g", "s", &[(T0 - 5, "0"), (T0, "3")]).await;
    let v = f
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&v), vec!["0", "1", "2", "3"]);
}

#[tokio::test]
async fn retention_hides_expired_events_and_the_sweep_deletes_them() {
    let f = fixture();
    f.stream("g", "s").await;
    f.put("g", "s", &[(T0 - 2 * DAY_MS, "old")]).await;
    f.put("g", "s", &[(T0, "new")]).await;
    let e = f
        .err(
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 2}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    f.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 1}),
    )
    .await;
    let get = json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true});
    assert_eq!(
        messages(&f.ok("GetLogEvents", get.clone()).await),
        vec!["new"]
    );
    let v = f.ok("FilterLogEvents", json!({"logGroupName": "g"})).await;
    assert_eq!(messages(&v), vec!["new"]);
    let v = f
        .put("g", "s", &[(T0 - DAY_MS - 1, "expired"), (T0 - 1, "again")])
        .await;
    assert_eq!(v["rejectedLogEventsInfo"]["expiredLogEventEndIndex"], 1);
    let d = f
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "g"}))
        .await;
    assert_eq!(d["logGroups"][0]["retentionInDays"], 1);
    assert_eq!(d["logGroups"][0]["storedBytes"], 11);

    assert_eq!(f.logs.sweep_once().await.expect("sweep"), 1);
    f.ok("DeleteRetentionPolicy", json!({"logGroupName": "g"}))
        .await;
    // The sweep deleted "old" for good: lifting retention does not bring it back.
    assert_eq!(
        messages(&f.ok("GetLogEvents", get).await),
        vec!["again", "new"]
    );
    let d = f
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "g"}))
        .await;
    assert!(d["logGroups"][0]["retentionInDays"].is_null());
    assert_eq!(d["logGroups"][0]["storedBytes"], 8);
    f.advance(3 * DAY_MS);
    assert_eq!(f.logs.sweep_once().await.expect("sweep"), 0);
}

#[tokio::test]
async fn filter_interleaves_streams_and_applies_patterns() {
    let f = fixture();
    f.stream("g", "web/1").await;
    f.stream("g", "web/2").await;
    f.stream("g", "worker").await;
    f.put(
        "g",
        "web/1",
        &[(T0, "GET /health 200"), (T0 + 2, "ERROR db timeout")],
    )
    .await;
    f.put(
        "g",
        "web/2",
        &[(T0 + 1, "WARN slow"), (T0 + 3, "GET /api 200")],
    )
    .await;
    f.put("g", "worker", &[(T0 + 1, "ERROR queue")]).await;
    let all = f.ok("FilterLogEvents", json!({"logGroupName": "g"})).await;
    assert_eq!(
        messages(&all),
        vec![
            "GET /health 200",
            "WARN slow",
            "ERROR queue",
            "ERROR db timeout",
            "GET /api 200"
        ]
    );
    assert_eq!(all["events"][0]["logStreamName"], "web/1");
    assert!(all["events"][0]["eventId"].is_string());
    assert_eq!(all["searchedLogStreams"], json!([]));
    assert!(all["nextToken"].is_null());
    let pat = |p: &str| json!({"logGroupName": "g", "filterPattern": p});
    assert_eq!(
        messages(&f.ok("FilterLogEvents", pat("ERROR")).await),
        vec!["ERROR queue", "ERROR db timeout"]
    );
    assert_eq!(
        messages(&f.ok("FilterLogEvents", pat("?WARN ?queue")).await),
        vec!["WARN slow", "ERROR queue"]
    );
    assert_eq!(
        messages(&f.ok("FilterLogEvents", pat("GET -health")).await),
        vec!["GET /api 200"]
    );
    assert_eq!(
        messages(&f.ok("FilterLogEvents", pat("\"db timeout\"")).await),
        vec!["ERROR db timeout"]
    );
    let v = f
        .ok("FilterLogEvents", json!({"logGroupName": "g", "logStreamNamePrefix": "web/", "startTime": T0 + 1, "endTime": T0 + 2}))
        .await;
    assert_eq!(messages(&v), vec!["WARN slow", "ERROR db timeout"]);
    let v = f
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": ["worker", "web/2"]}),
        )
        .await;
    assert_eq!(
        messages(&v),
        vec!["WARN slow", "ERROR queue", "GET /api 200"]
    );
    let e = f
        .err(
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": ["a"], "logStreamNamePrefix": "a"}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    let e = f.err("FilterLogEvents", pat("{ $.level = }")).await;
    assert_eq!(e.code, "InvalidParameterException");
    assert!(
        e.message.starts_with("Invalid filter pattern"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn filter_pages_cover_every_event_once() {
    let f = fixture();
    for s in ["a", "b", "c"] {
        f.stream("g", s).await;
        let batch: Vec<(i64, String)> = (0..10).map(|i| (T0 + i / 3, format!("{s}{i}"))).collect();
        let refs: Vec<(i64, &str)> = batch.iter().map(|(t, m)| (*t, m.as_str())).collect();
        f.put("g", s, &refs).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"logGroupName": "g", "limit": 4, "interleaved": true});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let v = f.ok("FilterLogEvents", req).await;
        seen.extend(messages(&v));
        match v["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    let full = messages(&f.ok("FilterLogEvents", json!({"logGroupName": "g"})).await);
    assert_eq!(seen, full);
    assert_eq!(seen.len(), 30);
}

#[tokio::test]
async fn describe_streams_orders_and_paginates() {
    let f = fixture();
    for (s, t) in [("c", T0), ("a", T0 + 2), ("b", T0 + 1), ("x/1", T0 + 3)] {
        f.stream("g", s).await;
        f.put("g", s, &[(t, "m")]).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["logStreams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| s["logStreamName"].as_str().expect("name").to_owned())
            .collect()
    };
    let v = f
        .ok(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "limit": 2}),
        )
        .await;
    assert_eq!(names(&v), vec!["a", "b"]);
    let v2 = f
        .ok(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "limit": 2, "nextToken": v["nextToken"]}),
        )
        .await;
    assert_eq!(names(&v2), vec!["c", "x/1"]);
    assert!(v2["nextToken"].is_null());
    let v = f
        .ok(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true}),
        )
        .await;
    assert_eq!(names(&v), vec!["x/1", "a", "b", "c"]);
    let s = &v["logStreams"][0];
    assert_eq!(s["lastEventTimestamp"], T0 + 3);
    assert_eq!(s["firstEventTimestamp"], T0 + 3);
    assert_eq!(
        s["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:x/1"
    );
    let v = f
        .ok(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "logStreamNamePrefix": "x/"}),
        )
        .await;
    assert_eq!(names(&v), vec!["x/1"]);
    let e = f
        .err(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "logStreamNamePrefix": "x", "orderBy": "LastEventTime"}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    let v = f
        .ok("DescribeLogStreams", json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:000000000000:log-group:g:*", "limit": 1}))
        .await;
    assert_eq!(names(&v), vec!["a"]);
}

#[tokio::test]
async fn describe_groups_filters_and_shows_arns() {
    let f = fixture();
    for g in ["/ecs/a", "/ecs/b", "/other", "/ecs/c"] {
        f.ok("CreateLogGroup", json!({"logGroupName": g})).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["logGroups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|s| s["logGroupName"].as_str().expect("name").to_owned())
            .collect()
    };
    let v = f
        .ok(
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": "/ecs/", "limit": 2}),
        )
        .await;
    assert_eq!(names(&v), vec!["/ecs/a", "/ecs/b"]);
    let g = &v["logGroups"][0];
    assert_eq!(
        g["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/a:*"
    );
    assert_eq!(
        g["logGroupArn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/a"
    );
    assert_eq!(g["creationTime"], T0);
    assert_eq!(g["logGroupClass"], "STANDARD");
    let v = f
        .ok(
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": "/ecs/", "limit": 2, "nextToken": v["nextToken"]}),
        )
        .await;
    assert_eq!(names(&v), vec!["/ecs/c"]);
    assert!(v["nextToken"].is_null());
    let v = f
        .ok("DescribeLogGroups", json!({"logGroupNamePattern": "other"}))
        .await;
    assert_eq!(names(&v), vec!["/other"]);
    let e = f.err("DescribeLogGroups", json!({"limit": 51})).await;
    assert_eq!(e.code, "InvalidParameterException");
}

#[tokio::test]
async fn deleting_a_stream_removes_its_events_even_if_recreated() {
    let f = fixture();
    f.stream("g", "s").await;
    f.put("g", "s", &[(T0, "before")]).await;
    f.ok(
        "DeleteLogStream",
        json!({"logGroupName": "g", "logStreamName": "s"}),
    )
    .await;
    let e = f
        .err(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s"}),
        )
        .await;
    assert_eq!(e.message, "The specified log stream does not exist.");
    f.ok(
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "s"}),
    )
    .await;
    let v = f
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s"}),
        )
        .await;
    assert!(messages(&v).is_empty());
    assert!(f.logs.events.streams().expect("streams").is_empty());
}

#[tokio::test]
async fn deleting_a_group_removes_streams_events_and_leaves_no_markers() {
    let f = fixture();
    f.stream("/a", "s1").await;
    f.stream("/a", "s2").await;
    f.stream("/a/b", "s1").await;
    f.put("/a", "s1", &[(T0, "x")]).await;
    f.put("/a/b", "s1", &[(T0, "kept")]).await;
    f.ok("DeleteLogGroup", json!({"logGroupName": "/a"})).await;
    let e = f.err("DeleteLogGroup", json!({"logGroupName": "/a"})).await;
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(
        f.logs
            .objects
            .keys("logs/purge/")
            .await
            .expect("keys")
            .len(),
        0
    );
    assert_eq!(
        f.logs
            .objects
            .keys("logs/stream/")
            .await
            .expect("keys")
            .len(),
        1
    );
    let v = f
        .ok("FilterLogEvents", json!({"logGroupName": "/a/b"}))
        .await;
    assert_eq!(messages(&v), vec!["kept"]);
    let left: Vec<String> = f
        .logs
        .events
        .streams()
        .expect("streams")
        .into_iter()
        .map(|id| id.group)
        .collect();
    assert_eq!(left, vec!["/a/b"], "the deleted group's events are gone");
}

#[tokio::test]
async fn events_and_counters_survive_reopening_the_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Arc::new(AtomicI64::new(T0));
    let f = Fixture {
        logs: open_logs(dir.path(), &now),
        now: now.clone(),
        _dir: tempfile::tempdir().expect("tempdir"),
    };
    f.stream("g", "s").await;
    let first = f.put("g", "s", &[(T0, "a"), (T0, "b")]).await;
    f.put("g", "s", &[(T0 + 1, "c")]).await;
    drop(f);
    let f = Fixture {
        logs: open_logs(dir.path(), &now),
        now,
        _dir: dir,
    };
    let get = json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true});
    assert_eq!(
        messages(&f.ok("GetLogEvents", get).await),
        vec!["a", "b", "c"]
    );
    // Sequence numbers continue where they stopped: tokens stay as they would have been.
    assert_eq!(first["nextSequenceToken"], format!("{:056}", 2));
    let v = f.put("g", "s", &[(T0 + 2, "d")]).await;
    assert_eq!(v["nextSequenceToken"], format!("{:056}", 4));
    let d = f
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(d["logStreams"][0]["storedBytes"], 4);
    assert_eq!(d["logStreams"][0]["lastEventTimestamp"], T0 + 2);
}

#[tokio::test]
async fn the_event_database_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logs.db");
    std::fs::write(&path, b"").expect("pre-existing file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = SqliteEventStore::open(&path).expect("opens");
    let id = event_store::StreamId::new("g", "s", 1);
    store
        .append(&id, 0, T0, &[(T0, "m".to_owned())])
        .expect("append");
    for file in ["logs.db", "logs.db-wal"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn an_event_database_of_the_first_layout_is_clustered_when_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logs.db");
    {
        // What the first release wrote: a rowid table and an index on the place.
        let old = rusqlite::Connection::open(&path).expect("opens");
        old.execute_batch(
            "CREATE TABLE streams (id INTEGER PRIMARY KEY, grp TEXT NOT NULL, stream TEXT NOT NULL,
                 incarnation INTEGER NOT NULL, next_seq INTEGER NOT NULL, UNIQUE (grp, stream, incarnation));
             CREATE TABLE events (sid INTEGER NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
                 ingested INTEGER NOT NULL, message TEXT NOT NULL);
             CREATE UNIQUE INDEX events_by_place ON events (sid, ts, seq);
             INSERT INTO streams VALUES (1, 'g', 's', 1, 3);
             INSERT INTO events VALUES (1, 20, 1, 5, 'second'), (1, 10, 0, 5, 'first'), (1, 30, 2, 6, 'third');",
        )
        .expect("old layout");
    }
    let store = SqliteEventStore::open(&path).expect("opens and converts");
    let id = event_store::StreamId::new("g", "s", 1);
    let got: Vec<String> = store
        .read(&id, None, None, false, 10)
        .expect("read")
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(got, ["first", "second", "third"]);
    let next = store
        .append(&id, 0, 7, &[(40, "fourth".to_owned())])
        .expect("append");
    assert_eq!(next.first_seq, 3, "the sequence carries on");
    let removed = store.remove(&id, Some(25), 10).expect("retention delete");
    assert_eq!((removed.events, removed.bytes), (2, 11));
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .expect("events table");
    assert!(sql.contains("WITHOUT ROWID"), "{sql}");
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_by_place'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(indexes, 0, "the old index went with the old table");
    // Opening again converts nothing more.
    drop(conn);
    let store = SqliteEventStore::open(&path).expect("opens again");
    assert_eq!(
        store.read(&id, None, None, false, 10).expect("read").len(),
        2
    );
}

#[test]
fn a_scan_visits_the_range_in_order_and_stops_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteEventStore::open(dir.path().join("logs.db")).expect("opens");
    let id = event_store::StreamId::new("g", "s", 1);
    let other = event_store::StreamId::new("g", "t", 1);
    let batch: Vec<(i64, String)> = (0..5).map(|i| (T0 + i, format!("m{i}"))).collect();
    store.append(&id, 0, T0, &batch).expect("append");
    store
        .append(&other, 0, T0, &[(T0 + 2, "other".to_owned())])
        .expect("append");
    // Out of order in time: a later batch with an earlier timestamp.
    store
        .append(&id, 0, T0, &[(T0 + 1, "late".to_owned())])
        .expect("append");
    let scan = |after, before, stop_after: usize| {
        let mut seen = Vec::new();
        store
            .scan(&id, after, before, &mut |e| {
                seen.push((e.timestamp - T0, e.seq, e.message.to_owned()));
                seen.len() < stop_after
            })
            .expect("scan");
        seen
    };
    let all = scan(None, None, usize::MAX);
    let order: Vec<&str> = all.iter().map(|(_, _, m)| m.as_str()).collect();
    assert_eq!(order, ["m0", "m1", "late", "m2", "m3", "m4"]);
    // Strictly between the bounds, as `read` takes them.
    let middle = scan(Some((T0 + 1, 1)), Some((T0 + 3, 3)), usize::MAX);
    let order: Vec<&str> = middle.iter().map(|(_, _, m)| m.as_str()).collect();
    assert_eq!(order, ["late", "m2"]);
    assert_eq!(
        scan(None, None, 2).len(),
        2,
        "stops when the visitor says so"
    );
    // The same events `read` returns.
    let read = store.read(&id, None, None, false, 100).expect("read");
    let read: Vec<(i64, u64, String)> = read
        .into_iter()
        .map(|e| (e.timestamp - T0, e.seq, e.message))
        .collect();
    assert_eq!(all, read);
    let missing = event_store::StreamId::new("g", "none", 1);
    store
        .scan(&missing, None, None, &mut |_| panic!("no events"))
        .expect("an unknown stream scans nothing");
}

#[tokio::test]
async fn an_orphaned_incarnation_is_purged_by_the_sweep() {
    let f = fixture();
    f.stream("g", "s").await;
    f.put("g", "s", &[(T0, "kept")]).await;
    // Events of an incarnation no stream refers to: what a PutLogEvents racing a
    // DeleteLogStream, or a purge whose marker was lost, leaves behind.
    let ghost = event_store::StreamId::new("g", "gone", 7);
    f.logs
        .events
        .append(&ghost, 0, T0, &[(T0, "x".to_owned()), (T0, "y".to_owned())])
        .expect("append");
    assert_eq!(f.logs.sweep_once().await.expect("sweep"), 2);
    let ids = f.logs.events.streams().expect("streams");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].stream, "s");
    let get = json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true});
    assert_eq!(messages(&f.ok("GetLogEvents", get).await), vec!["kept"]);
}

#[tokio::test]
async fn retention_sweeps_in_bounded_batches() {
    let f = fixture();
    f.stream("g", "s").await;
    let old: Vec<(i64, String)> = (0..2500)
        .map(|i| (T0 - 3 * DAY_MS, format!("{i}")))
        .collect();
    let old: Vec<(i64, &str)> = old.iter().map(|(t, m)| (*t, m.as_str())).collect();
    for chunk in old.chunks(1000) {
        f.put("g", "s", chunk).await;
    }
    f.put("g", "s", &[(T0, "new")]).await;
    f.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 1}),
    )
    .await;
    assert_eq!(f.logs.sweep_once().await.expect("sweep"), 2500);
    let d = f
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(d["logStreams"][0]["storedBytes"], 3);
    let back = json!({"logGroupName": "g", "logStreamName": "s"});
    assert_eq!(messages(&f.ok("GetLogEvents", back).await), vec!["new"]);
}

#[tokio::test]
async fn tags_work_by_arn_in_both_forms_and_by_name() {
    let f = fixture();
    f.ok(
        "CreateLogGroup",
        json!({"logGroupName": "g", "tags": {"team": "a"}}),
    )
    .await;
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    f.ok(
        "TagResource",
        json!({"resourceArn": arn, "tags": {"env": "dev"}}),
    )
    .await;
    f.ok(
        "TagLogGroup",
        json!({"logGroupName": "g", "tags": {"x": "1"}}),
    )
    .await;
    let v = f
        .ok(
            "ListTagsForResource",
            json!({"resourceArn": format!("{arn}:*")}),
        )
        .await;
    assert_eq!(v["tags"], json!({"env": "dev", "team": "a", "x": "1"}));
    f.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["team", "x"]}),
    )
    .await;
    let v = f.ok("ListTagsLogGroup", json!({"logGroupName": "g"})).await;
    assert_eq!(v["tags"], json!({"env": "dev"}));
    let e = f
        .err(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:logs:us-east-1:000000000000:log-group:nope"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    let many: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let e = f
        .err("TagResource", json!({"resourceArn": arn, "tags": many}))
        .await;
    assert_eq!(e.code, "TooManyTagsException");
}

#[tokio::test]
async fn concurrent_puts_to_one_stream_lose_nothing() {
    let f = fixture();
    f.stream("g", "s").await;
    let mut handles = Vec::new();
    for i in 0..8 {
        let logs = f.logs.clone();
        handles.push(tokio::spawn(async move {
            let body = json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [
                {"timestamp": T0, "message": format!("w{i}a")}, {"timestamp": T0, "message": format!("w{i}b")}]});
            logs.handle("PutLogEvents", &serde_json::to_vec(&body).expect("json")).await
        }));
    }
    for h in handles {
        h.await.expect("joined").expect("put");
    }
    let v = f
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    let got = messages(&v);
    assert_eq!(got.len(), 16);
    for i in 0..8 {
        let a = got.iter().position(|m| *m == format!("w{i}a")).expect("a");
        let b = got.iter().position(|m| *m == format!("w{i}b")).expect("b");
        assert!(a < b, "a batch keeps its order");
    }
}

#[tokio::test]
async fn unknown_operation_is_reported_as_such() {
    let f = fixture();
    let e = f.err("StartLiveTail", json!({})).await;
    assert_eq!(e.code, "UnknownOperationException");
}

#[tokio::test]
async fn every_modelled_operation_runs_a_handler_or_answers_not_implemented() {
    let f = fixture();
    let caller = wire::Caller::root("000000000000");
    // The decoder's codes answer a body that does not fit the shape.
    let answered = wire::conformance::every_operation_answers(
        &f.logs,
        wire::Input::Json(b"{}"),
        &caller,
        &["SerializationException", "InvalidParameterException"],
    )
    .await;
    assert_eq!(answered.served, 33, "operations served");
}

#[tokio::test]
async fn every_logs_operation_needs_a_logs_action() {
    let f = fixture();
    let caller = wire::Caller::root("000000000000");
    let n = wire::conformance::every_operation_needs_access(
        &f.logs,
        wire::Input::Json(b"{}"),
        &caller,
        "logs",
    )
    .await;
    assert!(n >= Operation::ALL.len());
}

#[tokio::test]
async fn events_an_older_server_kept_in_the_keyspace_move_to_the_event_store_once() {
    let f = fixture();
    f.stream("/ecs/app", "web/1").await;
    let (stream, _) = f
        .logs
        .objects
        .get::<objects::StoredStream>(&objects::stream_key("/ecs/app", "web/1"))
        .await
        .expect("read")
        .expect("the stream exists");
    // The layout before logs.db: one key per event.
    let prefix = format!(
        "logs/event/{}:{}:{:020}/",
        "/ecs/app", "web/1", stream.incarnation
    );
    let mut txn = store::Txn::new();
    for (ts, seq, m) in [(T0, 0u64, "a"), (T0, 1, "b"), (T0 + 5, 2, "c")] {
        txn = txn.put(
            format!("{prefix}{ts:016}/{seq:010}"),
            serde_json::to_vec(&json!({"m": m, "i": T0})).expect("json"),
        );
    }
    assert!(f.logs.objects.commit(txn).await.expect("commit"));

    assert_eq!(f.logs.migrate_keyspace_events().await.expect("moves"), 3);
    assert_eq!(f.logs.migrate_keyspace_events().await.expect("done"), 0);
    let left = f.logs.objects.keys("logs/event/").await.expect("keys");
    assert!(left.is_empty(), "old keys left: {left:?}");
    let get = json!({"logGroupName": "/ecs/app", "logStreamName": "web/1", "startFromHead": true});
    assert_eq!(
        messages(&f.ok("GetLogEvents", get.clone()).await),
        vec!["a", "b", "c"]
    );
    // New events number after the moved ones and read after them.
    f.put("/ecs/app", "web/1", &[(T0 + 6, "d")]).await;
    assert_eq!(
        messages(&f.ok("GetLogEvents", get).await),
        vec!["a", "b", "c", "d"]
    );
}

/// Polls GetQueryResults until the query is no longer scheduled or running.
async fn query_results(f: &Fixture, id: &str) -> Value {
    for _ in 0..500 {
        let v = f.ok("GetQueryResults", json!({"queryId": id})).await;
        if v["status"] != "Running" && v["status"] != "Scheduled" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("query {id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_queries_run_over_the_stored_events_of_every_named_group() {
    let f = fixture();
    f.stream("a", "s1").await;
    f.stream("a", "s2").await;
    f.stream("b", "s1").await;
    f.put("a", "s1", &[(T0, "GET 200"), (T0 + 61_000, "GET 500")])
        .await;
    f.put("a", "s2", &[(T0 + 1_000, "POST 200")]).await;
    f.put(
        "b",
        "s1",
        &[(T0 + 2_000, "GET 404"), (T0 + 600_000, "late")],
    )
    .await;
    let id = f
        .ok(
            "StartQuery",
            json!({"logGroupNames": ["a", "b"], "startTime": T0 / 1000, "endTime": (T0 + 120_000) / 1000,
                   "queryString": "filter @message like /GET/ | stats count(*) by bin(1m)"}),
        )
        .await["queryId"]
        .as_str()
        .expect("id")
        .to_owned();
    let v = query_results(&f, &id).await;
    assert_eq!(v["status"], "Complete");
    assert_eq!(
        v["results"],
        json!([
            [{"field": "bin(1m)", "value": "2024-11-26 10:00:00.000"}, {"field": "count(*)", "value": "2"}],
            [{"field": "bin(1m)", "value": "2024-11-26 10:01:00.000"}, {"field": "count(*)", "value": "1"}],
        ])
    );
    // The event at T0+600s is outside the time range: not scanned.
    assert_eq!(v["statistics"]["recordsScanned"], 4.0);
    assert_eq!(v["statistics"]["recordsMatched"], 3.0);
    assert_eq!(v["statistics"]["bytesScanned"], 29.0);

    let listed = f.ok("DescribeQueries", json!({"logGroupName": "b"})).await;
    assert_eq!(listed["queries"][0]["queryId"], id.as_str());
    assert_eq!(listed["queries"][0]["status"], "Complete");
    let none = f.ok("DescribeQueries", json!({"status": "Running"})).await;
    assert_eq!(none["queries"], json!([]));
    let stopped = f.ok("StopQuery", json!({"queryId": id})).await;
    assert_eq!(stopped["success"], false, "a finished query is not stopped");

    // Rows of a plain query, paged with maxItems.
    let id = f
        .ok(
            "StartQuery",
            json!({"logGroupName": "a", "startTime": 0, "endTime": (T0 / 1000) + 3600,
                   "queryString": "fields @message, @log | sort @timestamp desc", "limit": 2}),
        )
        .await["queryId"]
        .as_str()
        .expect("id")
        .to_owned();
    let v = query_results(&f, &id).await;
    let rows = v["results"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], json!({"field": "@message", "value": "GET 500"}));
    assert_eq!(
        rows[0][1],
        json!({"field": "@log", "value": "000000000000:a"})
    );
    assert_eq!(rows[0][2]["field"], "@ptr");
    let page = f
        .ok("GetQueryResults", json!({"queryId": id, "maxItems": 1}))
        .await;
    assert_eq!(page["results"].as_array().map(Vec::len), Some(1));
    let token = page["nextToken"].as_str().expect("a next page");
    let next = f
        .ok(
            "GetQueryResults",
            json!({"queryId": id, "maxItems": 1, "nextToken": token}),
        )
        .await;
    assert_eq!(next["results"][0][0]["value"], "POST 200");
    assert!(next.get("nextToken").is_none());
}

#[tokio::test]
async fn insights_requests_are_checked_as_aws_checks_them() {
    let f = fixture();
    f.stream("a", "s").await;
    let e = f
        .err(
            "StartQuery",
            json!({"logGroupName": "a", "startTime": 0, "endTime": 10, "queryString": "fields @message | stats count(*) by"}),
        )
        .await;
    assert_eq!(e.code, "MalformedQueryException");
    assert_eq!(
        e.message,
        "unexpected end of query at line 1 and position 36"
    );
    assert_eq!(
        e.extra["queryCompileError"],
        json!({"location": {"startCharOffset": 35, "endCharOffset": 35},
               "message": "unexpected end of query at line 1 and position 36"})
    );
    let q = json!({"startTime": 0, "endTime": 10, "queryString": "fields @message"});
    let mut both = q.clone();
    both["logGroupName"] = json!("a");
    both["logGroupNames"] = json!(["a"]);
    assert_eq!(
        f.err("StartQuery", both).await.code,
        "InvalidParameterException"
    );
    assert_eq!(
        f.err("StartQuery", q.clone()).await.code,
        "InvalidParameterException"
    );
    let mut missing = q.clone();
    missing["logGroupName"] = json!("nope");
    assert_eq!(
        f.err("StartQuery", missing).await.code,
        "ResourceNotFoundException"
    );
    let mut backwards = q.clone();
    backwards["logGroupName"] = json!("a");
    backwards["startTime"] = json!(20);
    assert_eq!(
        f.err("StartQuery", backwards).await.code,
        "InvalidParameterException"
    );
    let mut sql = q.clone();
    sql["logGroupName"] = json!("a");
    sql["queryLanguage"] = json!("SQL");
    assert_eq!(
        f.err("StartQuery", sql).await.code,
        "InvalidParameterException"
    );
    let e = f.err("GetQueryResults", json!({"queryId": "0000"})).await;
    assert_eq!(e.code, "ResourceNotFoundException");
}

#[tokio::test]
async fn query_definitions_are_saved_listed_updated_and_deleted() {
    let f = fixture();
    let id = f
        .ok(
            "PutQueryDefinition",
            json!({"name": "errors/by-minute", "queryString": "filter @message like /ERROR/ | stats count(*) by bin(1m)", "logGroupNames": ["a"]}),
        )
        .await["queryDefinitionId"]
        .as_str()
        .expect("id")
        .to_owned();
    f.ok(
        "PutQueryDefinition",
        json!({"name": "other", "queryString": "fields @message"}),
    )
    .await;
    let v = f
        .ok(
            "DescribeQueryDefinitions",
            json!({"queryDefinitionNamePrefix": "errors/"}),
        )
        .await;
    assert_eq!(v["queryDefinitions"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["queryDefinitions"][0]["queryDefinitionId"], id.as_str());
    assert_eq!(v["queryDefinitions"][0]["logGroupNames"], json!(["a"]));
    assert_eq!(v["queryDefinitions"][0]["queryLanguage"], "CWLI");
    assert_eq!(v["queryDefinitions"][0]["lastModified"], T0);
    // An update replaces every member (AWS keeps nothing of the old definition).
    f.ok(
        "PutQueryDefinition",
        json!({"queryDefinitionId": id, "name": "errors/renamed", "queryString": "fields @timestamp"}),
    )
    .await;
    let v = f
        .ok("DescribeQueryDefinitions", json!({"maxResults": 1}))
        .await;
    assert_eq!(v["queryDefinitions"][0]["name"], "errors/renamed");
    assert_eq!(v["queryDefinitions"][0]["logGroupNames"], json!([]));
    assert!(v["nextToken"].is_string());
    let e = f
        .err(
            "PutQueryDefinition",
            json!({"queryDefinitionId": "missing", "name": "n", "queryString": "fields @message"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    let d = f
        .ok("DeleteQueryDefinition", json!({"queryDefinitionId": id}))
        .await;
    assert_eq!(d["success"], true);
    let e = f
        .err("DeleteQueryDefinition", json!({"queryDefinitionId": id}))
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
}

#[tokio::test]
async fn log_group_fields_come_from_recent_events() {
    let f = fixture();
    f.stream("a", "s").await;
    f.put(
        "a",
        "s",
        &[
            (T0 - 60_000, r#"{"level":"INFO","http":{"status":200}}"#),
            (T0 - 30_000, r#"{"level":"WARN"}"#),
        ],
    )
    .await;
    let v = f
        .ok("GetLogGroupFields", json!({"logGroupName": "a"}))
        .await;
    let fields: Vec<(String, i64)> = v["logGroupFields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap_or("").to_owned(),
                x["percent"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert!(fields.contains(&("@message".into(), 100)));
    assert!(fields.contains(&("level".into(), 100)));
    assert!(fields.contains(&("http.status".into(), 50)));
}

/// A [`MetricSink`] that keeps what it is given.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<MetricPoint>>);

impl MetricSink for Recorded {
    fn publish(&self, points: Vec<MetricPoint>) {
        self.0.lock().expect("not poisoned").extend(points);
    }
}

fn fixture_with_sink() -> (Fixture, Arc<Recorded>) {
    let mut f = fixture();
    let sink = Arc::new(Recorded::default());
    f.logs = f.logs.clone().with_metric_sink(sink.clone());
    (f, sink)
}

fn metric_filter(group: &str, name: &str, pattern: &str, value: &str) -> Value {
    json!({
        "logGroupName": group,
        "filterName": name,
        "filterPattern": pattern,
        "metricTransformations": [{"metricName": "Errors", "metricNamespace": "App", "metricValue": value}],
    })
}

#[tokio::test]
async fn metric_filters_are_put_described_and_deleted() {
    let f = fixture();
    let e = f
        .err(
            "PutMetricFilter",
            metric_filter("g", "errors", "ERROR", "1"),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    f.stream("g", "s").await;
    f.ok(
        "PutMetricFilter",
        metric_filter("g", "errors", "ERROR", "1"),
    )
    .await;
    f.ok(
        "PutMetricFilter",
        metric_filter("g", "bytes", "[ip, bytes]", "$bytes"),
    )
    .await;
    // Putting an existing name replaces it.
    f.ok(
        "PutMetricFilter",
        metric_filter("g", "errors", "?ERROR ?FATAL", "1"),
    )
    .await;
    let v = f
        .ok("DescribeMetricFilters", json!({"logGroupName": "g"}))
        .await;
    let names: Vec<&str> = v["metricFilters"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["filterName"].as_str())
        .collect();
    assert_eq!(names, ["bytes", "errors"]);
    assert_eq!(v["metricFilters"][1]["filterPattern"], "?ERROR ?FATAL");
    assert_eq!(v["metricFilters"][1]["logGroupName"], "g");
    assert_eq!(v["metricFilters"][1]["creationTime"], T0);
    let v = f
        .ok(
            "DescribeMetricFilters",
            json!({"logGroupName": "g", "filterNamePrefix": "err"}),
        )
        .await;
    assert_eq!(v["metricFilters"].as_array().map(Vec::len), Some(1));
    let v = f
        .ok(
            "DescribeMetricFilters",
            json!({"metricName": "Errors", "metricNamespace": "App", "limit": 1}),
        )
        .await;
    assert_eq!(v["metricFilters"].as_array().map(Vec::len), Some(1));
    let token = v["nextToken"].as_str().expect("a second page");
    let v = f
        .ok("DescribeMetricFilters", json!({"metricName": "Errors", "metricNamespace": "App", "limit": 1, "nextToken": token}))
        .await;
    assert_eq!(v["metricFilters"][0]["filterName"], "errors");
    assert!(v["nextToken"].is_null());
    let groups = f.ok("DescribeLogGroups", json!({})).await;
    assert_eq!(groups["logGroups"][0]["metricFilterCount"], 2);
    for bad in [
        json!({"filterNamePrefix": "e"}),
        json!({"metricName": "Errors"}),
        json!({"limit": 51}),
    ] {
        assert_eq!(
            f.err("DescribeMetricFilters", bad).await.code,
            "InvalidParameterException"
        );
    }
    f.ok(
        "DeleteMetricFilter",
        json!({"logGroupName": "g", "filterName": "bytes"}),
    )
    .await;
    let e = f
        .err(
            "DeleteMetricFilter",
            json!({"logGroupName": "g", "filterName": "bytes"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    // A deleted group takes its filters with it.
    f.ok("DeleteLogGroup", json!({"logGroupName": "g"})).await;
    f.stream("g", "s").await;
    let v = f
        .ok("DescribeMetricFilters", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(v["metricFilters"], json!([]));
}

#[tokio::test]
async fn bad_metric_filters_are_refused_as_aws_does() {
    let f = fixture();
    f.stream("g", "s").await;
    for (body, code) in [
        (
            metric_filter("g", "a:b", "ERROR", "1"),
            "InvalidParameterException",
        ),
        (
            metric_filter("g", "x", "{ $.a = ", "1"),
            "InvalidParameterException",
        ),
        (
            metric_filter("g", "x", "ERROR", "$bytes"),
            "InvalidParameterException",
        ),
        (
            metric_filter("g", "x", "ERROR", "lots"),
            "InvalidParameterException",
        ),
        (
            json!({"logGroupName": "g", "filterName": "x", "filterPattern": "[a]", "metricTransformations": [
                {"metricName": "M", "metricNamespace": "N", "metricValue": "1", "defaultValue": 0, "dimensions": {"A": "$a"}}]}),
            "InvalidParameterException",
        ),
        (
            json!({"logGroupName": "g", "filterName": "x", "filterPattern": "", "metricTransformations": []}),
            "InvalidParameterException",
        ),
        (
            json!({"logGroupName": "g", "filterName": "x", "filterPattern": "", "applyOnTransformedLogs": true, "metricTransformations": [
                {"metricName": "M", "metricNamespace": "N", "metricValue": "1"}]}),
            "InvalidParameterException",
        ),
    ] {
        let e = f.err("PutMetricFilter", body.clone()).await;
        assert_eq!(e.code, code, "{body}");
    }
    let e = f
        .err("PutMetricFilter", metric_filter("g", "x", "{ $.a = ", "1"))
        .await;
    assert!(
        e.message.starts_with("Invalid filter pattern"),
        "{}",
        e.message
    );
    for i in 0..metric_filters::MAX_FILTERS_PER_GROUP {
        f.ok(
            "PutMetricFilter",
            metric_filter("g", &format!("f{i:03}"), "", "1"),
        )
        .await;
    }
    let e = f
        .err("PutMetricFilter", metric_filter("g", "one-more", "", "1"))
        .await;
    assert_eq!(e.code, "LimitExceededException");
    // Replacing one of the hundred is still allowed.
    f.ok("PutMetricFilter", metric_filter("g", "f000", "ERROR", "1"))
        .await;
}

#[tokio::test]
async fn put_log_events_turns_matches_into_datapoints() {
    let (f, sink) = fixture_with_sink();
    f.stream("/ecs/app", "web/1").await;
    f.ok(
        "PutMetricFilter",
        json!({"logGroupName": "/ecs/app", "filterName": "latency", "filterPattern": "{ $.status >= 500 }",
               "metricTransformations": [{"metricName": "Latency", "metricNamespace": "App", "metricValue": "$.ms",
                                          "unit": "Milliseconds", "dimensions": {"Path": "$.path"}}]}),
    )
    .await;
    f.ok(
        "PutMetricFilter",
        metric_filter("/ecs/app", "errors", "[level = ERROR, ...]", "1"),
    )
    .await;
    f.put(
        "/ecs/app",
        "web/1",
        &[
            (T0, r#"{"status": 503, "ms": 120, "path": "/a"}"#),
            (T0 + 1, r#"{"status": 200, "ms": 5, "path": "/a"}"#),
            (T0 + 2, "ERROR disk full"),
            (T0 + 3, "INFO fine"),
        ],
    )
    .await;
    let points = sink.0.lock().expect("not poisoned").clone();
    assert_eq!(points.len(), 2, "{points:?}");
    let latency = points
        .iter()
        .find(|p| p.metric_name == "Latency")
        .expect("latency");
    assert_eq!(
        (latency.value, latency.unit.as_str(), latency.timestamp_ms),
        (120.0, "Milliseconds", T0)
    );
    assert_eq!(latency.dimensions, [("Path".to_owned(), "/a".to_owned())]);
    let errors = points
        .iter()
        .find(|p| p.metric_name == "Errors")
        .expect("errors");
    assert_eq!(
        (errors.value, errors.unit.as_str(), errors.timestamp_ms),
        (1.0, "None", T0 + 2)
    );
}

#[tokio::test]
async fn test_metric_filter_reports_matches_and_extracted_values() {
    let f = fixture();
    let v = f
        .ok(
            "TestMetricFilter",
            json!({"filterPattern": "[ip, user, status = 5*, bytes]",
                   "logEventMessages": ["1.1.1.1 bob 200 10", "2.2.2.2 ann 503 99"]}),
        )
        .await;
    assert_eq!(
        v,
        json!({"matches": [{"eventNumber": 2, "eventMessage": "2.2.2.2 ann 503 99", "extractedValues":
            {"$ip": "2.2.2.2", "$user": "ann", "$status": "503", "$bytes": "99"}}]})
    );
    let e = f
        .err(
            "TestMetricFilter",
            json!({"filterPattern": "{ $.a", "logEventMessages": ["x"]}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    let e = f
        .err(
            "TestMetricFilter",
            json!({"filterPattern": "x", "logEventMessages": []}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
}

#[tokio::test]
async fn filter_log_events_understands_json_and_delimited_patterns() {
    let f = fixture();
    f.stream("g", "s").await;
    f.put(
        "g",
        "s",
        &[
            (T0, r#"{"level": "ERROR", "ms": 700}"#),
            (T0 + 1, r#"{"level": "INFO", "ms": 3}"#),
            (T0 + 2, "10.0.0.1 GET /x 404 12"),
            (T0 + 3, "10.0.0.2 GET /y 200 5000"),
        ],
    )
    .await;
    let pat = |p: &str| json!({"logGroupName": "g", "filterPattern": p});
    assert_eq!(
        messages(
            &f.ok("FilterLogEvents", pat("{ $.level = ERROR || $.ms > 500 }"))
                .await
        ),
        vec![r#"{"level": "ERROR", "ms": 700}"#]
    );
    assert_eq!(
        messages(
            &f.ok(
                "FilterLogEvents",
                pat("[ip, method, path, status = 4*, bytes]")
            )
            .await
        ),
        vec!["10.0.0.1 GET /x 404 12"]
    );
    assert_eq!(
        messages(&f.ok("FilterLogEvents", pat("[..., bytes > 1000]")).await),
        vec!["10.0.0.2 GET /y 200 5000"]
    );
}

#[tokio::test]
async fn list_log_groups_filters_by_pattern_class_and_tags() {
    let f = fixture();
    for (name, tags) in [
        ("/ecs/web", json!({"team": "a"})),
        ("/ecs/worker", json!({"team": "b"})),
        ("/aws/lambda/fn", json!({})),
    ] {
        f.ok(
            "CreateLogGroup",
            json!({"logGroupName": name, "tags": tags}),
        )
        .await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["logGroups"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|g| g["logGroupName"].as_str().map(str::to_owned))
            .collect()
    };
    let all = f.ok("ListLogGroups", json!({})).await;
    assert_eq!(names(&all), ["/aws/lambda/fn", "/ecs/web", "/ecs/worker"]);
    assert_eq!(
        all["logGroups"][1],
        json!({"logGroupName": "/ecs/web", "logGroupArn": "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web", "logGroupClass": "STANDARD"})
    );
    let v = f
        .ok(
            "ListLogGroups",
            json!({"logGroupNamePattern": "^/ecs|lambda"}),
        )
        .await;
    assert_eq!(names(&v), ["/aws/lambda/fn", "/ecs/web", "/ecs/worker"]);
    let v = f
        .ok("ListLogGroups", json!({"logGroupNamePattern": "worker"}))
        .await;
    assert_eq!(names(&v), ["/ecs/worker"]);
    let v = f
        .ok(
            "ListLogGroups",
            json!({"logGroupTags": [{"key": "team", "values": ["a"]}]}),
        )
        .await;
    assert_eq!(names(&v), ["/ecs/web"]);
    let v = f.ok("ListLogGroups", json!({"limit": 2})).await;
    assert_eq!(names(&v).len(), 2);
    let v = f
        .ok(
            "ListLogGroups",
            json!({"limit": 2, "nextToken": v["nextToken"]}),
        )
        .await;
    assert_eq!(names(&v), ["/ecs/worker"]);
    let v = f
        .ok(
            "ListLogGroups",
            json!({"dataSources": [{"name": "amazon_vpc"}]}),
        )
        .await;
    assert_eq!(names(&v), Vec::<String>::new());
    for bad in [
        json!({"logGroupNamePattern": "ab"}),
        json!({"logGroupNamePattern": "a*b+c"}),
        json!({"limit": 1001}),
    ] {
        assert_eq!(
            f.err("ListLogGroups", bad).await.code,
            "InvalidParameterException"
        );
    }
}

#[tokio::test]
async fn resource_policies_are_stored_and_described() {
    let f = fixture();
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"route53.amazonaws.com"},"Action":"logs:PutLogEvents","Resource":"*"}]}"#;
    let v = f
        .ok(
            "PutResourcePolicy",
            json!({"policyName": "r53", "policyDocument": doc}),
        )
        .await;
    assert_eq!(v["resourcePolicy"]["policyName"], "r53");
    assert_eq!(v["resourcePolicy"]["policyScope"], "ACCOUNT");
    assert_eq!(v["resourcePolicy"]["lastUpdatedTime"], T0);
    let v = f.ok("DescribeResourcePolicies", json!({})).await;
    assert_eq!(v["resourcePolicies"][0]["policyDocument"], doc);
    let e = f
        .err(
            "PutResourcePolicy",
            json!({"policyName": "bad", "policyDocument": "{"}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    for i in 1..resource_policies::MAX_ACCOUNT_POLICIES {
        f.ok(
            "PutResourcePolicy",
            json!({"policyName": format!("p{i}"), "policyDocument": doc}),
        )
        .await;
    }
    let e = f
        .err(
            "PutResourcePolicy",
            json!({"policyName": "eleventh", "policyDocument": doc}),
        )
        .await;
    assert_eq!(e.code, "LimitExceededException");
    f.ok("DeleteResourcePolicy", json!({"policyName": "r53"}))
        .await;
    let e = f
        .err("DeleteResourcePolicy", json!({"policyName": "r53"}))
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    // Resource scope: one per log group, guarded by its revision id.
    f.stream("g", "s").await;
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    let v = f
        .ok(
            "PutResourcePolicy",
            json!({"resourceArn": arn, "policyDocument": doc}),
        )
        .await;
    let rev = v["revisionId"].as_str().expect("revision").to_owned();
    assert_eq!(v["resourcePolicy"]["policyScope"], "RESOURCE");
    let e = f
        .err(
            "PutResourcePolicy",
            json!({"resourceArn": arn, "policyDocument": doc, "expectedRevisionId": "stale"}),
        )
        .await;
    assert_eq!(e.code, "OperationAbortedException");
    let v = f
        .ok("DescribeResourcePolicies", json!({"resourceArn": arn}))
        .await;
    assert_eq!(v["resourcePolicies"][0]["revisionId"], rev.as_str());
    let e = f
        .err("DeleteResourcePolicy", json!({"resourceArn": arn}))
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    f.ok(
        "DeleteResourcePolicy",
        json!({"resourceArn": arn, "expectedRevisionId": rev}),
    )
    .await;
    let e = f
        .err("PutResourcePolicy", json!({"resourceArn": "arn:aws:logs:us-east-1:000000000000:log-group:nope", "policyDocument": doc}))
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
}
