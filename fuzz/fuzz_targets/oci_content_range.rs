//! Parses arbitrary text as upload Content-Range and download Range headers: must never
//! panic, and every satisfiable range must lie inside the blob.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = oci::range::parse_content_range(s) {
        assert!(r.start <= r.end);
    }
    for total in [0u64, 1, 1000, u64::MAX] {
        if let Ok(r) = oci::range::parse_range(s, total) {
            assert!(r.start <= r.end && r.end < total);
        }
    }
});
