//! Any body sent to any CloudWatch Logs operation, plus the paginated reads fed a fuzzed
//! `nextToken` (and FilterLogEvents a fuzzed pattern) against a group that has events:
//! decoding, pagination tokens, filter patterns and the handlers must answer with a value
//! or a client (4xx) AWS error, never panic. The first byte picks the operation (or, at
//! 0xF0 and above, a paginated read with the rest as its token).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct Env {
    rt: tokio::runtime::Runtime,
    logs: logs::Logs,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = stevedore_fuzz::temp_dir("logs");
        let events = logs::SqliteEventStore::open(dir.join("events.db")).expect("events");
        let logs = logs::Logs::new(stevedore_fuzz::sqlite_store(&dir), Arc::new(events), stevedore_fuzz::scope());
        let rt = stevedore_fuzz::runtime();
        rt.block_on(async {
            logs.handle("CreateLogGroup", br#"{"logGroupName":"fuzz"}"#).await.expect("group");
            logs.handle("CreateLogStream", br#"{"logGroupName":"fuzz","logStreamName":"s"}"#).await.expect("stream");
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
            let events: Vec<_> = (0..30)
                .map(|i| serde_json::json!({"timestamp": now - 1000 + i, "message": format!("{{\"n\":{i},\"level\":\"INFO\"}} line {i}")}))
                .collect();
            let body = serde_json::json!({"logGroupName":"fuzz","logStreamName":"s","logEvents":events}).to_string();
            logs.handle("PutLogEvents", body.as_bytes()).await.expect("events");
        });
        Env { rt, logs }
    })
}

fn check(op: &str, r: Result<Vec<u8>, logs::LogsError>) {
    if let Err(e) = r {
        let aws = e.to_aws();
        assert!(!aws.code.is_empty() && aws.status < 500, "{op}: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let env = env();
    if selector >= 0xF0 {
        let parts = stevedore_fuzz::fields(rest, 2);
        let token = String::from_utf8_lossy(parts[0]);
        let pattern = String::from_utf8_lossy(parts[1]);
        let limit = 1 + usize::from(selector % 4);
        let calls = [
            ("DescribeLogGroups", serde_json::json!({"nextToken": token, "limit": limit})),
            ("DescribeLogStreams", serde_json::json!({"logGroupName": "fuzz", "nextToken": token, "limit": limit})),
            ("GetLogEvents", serde_json::json!({"logGroupName": "fuzz", "logStreamName": "s", "nextToken": token, "limit": limit})),
            ("FilterLogEvents", serde_json::json!({"logGroupName": "fuzz", "nextToken": token, "limit": limit, "filterPattern": pattern})),
            ("FilterLogEvents", serde_json::json!({"logGroupName": "fuzz", "limit": limit, "filterPattern": pattern})),
        ];
        for (op, body) in calls {
            check(op, env.rt.block_on(env.logs.handle(op, body.to_string().as_bytes())));
        }
        return;
    }
    let ops = logs::Operation::ALL;
    let op = ops[usize::from(selector) % ops.len()];
    check(op.name(), env.rt.block_on(env.logs.handle(op.name(), rest)));
});
