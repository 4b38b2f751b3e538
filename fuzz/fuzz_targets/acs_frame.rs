//! Parses arbitrary bytes as an agent channel frame (both directions share `Frame`):
//! must never panic; whatever parses serializes and parses back to the same frame, and
//! a usage report's statistic sets give a finite-or-not mean without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::acs::Frame;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = serde_json::from_slice::<Frame>(data) else {
        return;
    };
    if let Frame::PublishMetricsRequest(report) = &frame {
        for task in &report.task_metrics {
            for c in &task.container_metrics {
                let _ = c.cpu_stats_set.map(|s| s.average());
                let _ = c.memory_stats_set.map(|s| s.average());
            }
        }
    }
    let text = serde_json::to_string(&frame).expect("a parsed frame serializes");
    let again: Frame = serde_json::from_str(&text).expect("a serialized frame parses");
    // NaN never comes out of JSON, so equality is meaningful.
    assert_eq!(frame, again);
});
