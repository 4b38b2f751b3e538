//! The cluster query language parser takes user text: it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(e) = placement::parse_expression(s) {
            let _ = e.matches(&placement::Instance::default());
        }
    }
});
