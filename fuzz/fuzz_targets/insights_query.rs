//! The Logs Insights query language takes user text (StartQuery's queryString): parsing
//! must never panic, errors must carry offsets inside the query, and whatever parses must
//! run over a few events (text and JSON) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logs::insights::{parse_query, EventRef, Execution};

const MESSAGES: [&str; 4] = [
    "INFO start user=alice latency=12",
    "ERROR boom user=bob latency=300",
    r#"{"level":"ERROR","status":500,"req":{"path":"/a","ids":[7,8]}}"#,
    "",
];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match parse_query(s) {
        Ok(q) => {
            let mut exec = Execution::new(q, 100);
            for (i, m) in MESSAGES.iter().enumerate() {
                let t = 1_700_000_000_000 + i as i64 * 61_000;
                exec.push(EventRef {
                    timestamp: t,
                    ingestion_time: t,
                    message: m,
                    log_stream: "s",
                    log: "000000000000:g",
                    seq: i as u64,
                });
            }
            let _ = exec.finish();
        }
        Err(e) => {
            let chars = s.chars().count();
            assert!(e.start <= e.end && e.end <= chars.max(1), "{e:?} outside {chars} chars");
            assert!(!e.message.is_empty());
        }
    }
});
