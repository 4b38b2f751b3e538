//! Parses arbitrary bytes as an `Authorization` header value: must never panic, and what
//! parses must hold together.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match wire::sigv4::parse_authorization(text) {
        Ok(h) => {
            assert!(!h.access_key_id.is_empty());
            assert_eq!(h.date.len(), 8);
            assert!(!h.region.is_empty() && !h.service.is_empty());
            assert!(h.signed_headers.iter().all(|n| !n.is_empty()));
        }
        Err(e) => {
            // Every error renders and maps to an AWS code.
            assert!(!e.to_string().is_empty());
            assert!(e.aws_code().ends_with("Exception"));
        }
    }
});
