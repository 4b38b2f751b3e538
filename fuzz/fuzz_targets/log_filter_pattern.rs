//! CloudWatch Logs filter patterns take user text (FilterLogEvents' and PutMetricFilter's
//! filterPattern): parsing must never panic; a refusal must map to
//! InvalidParameterException; whatever parses must match the first line of the input and a
//! few fixed events (text, JSON, space-delimited) without panicking, and every value a
//! match extracts must be reachable by its own reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logs::pattern::{Extracted, FilterPattern};

const MESSAGES: [&str; 5] = [
    "ERROR boom user=bob latency=300",
    r#"{"level":"ERROR","status":500,"ok":true,"none":null,"req":{"path":"/a","ids":[7,8]}}"#,
    r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /a.gif HTTP/1.0" 404 1534"#,
    "",
    "[unclosed \"quote",
];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    // The first line is the pattern, the rest one more message to match.
    let (pattern, message) = s.split_once('\n').unwrap_or((s, ""));
    match FilterPattern::parse(pattern) {
        Ok(p) => {
            for m in MESSAGES.iter().copied().chain([message]) {
                if let Some(x) = p.extract(m) {
                    if let Extracted::Fields(_) = &x {
                        for (reference, value) in x.values() {
                            assert_eq!(x.lookup(&reference).as_deref(), Some(value.as_str()));
                        }
                    }
                }
            }
        }
        Err(e) => {
            let aws = logs::LogsError::from(e).to_aws();
            assert_eq!(aws.code, "InvalidParameterException");
            assert!(!aws.message.is_empty());
        }
    }
});
