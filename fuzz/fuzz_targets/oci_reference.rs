//! Parses arbitrary text as image references, path references, names, tags and digests:
//! must never panic, and a parsed image reference must print back to an equal parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = oci::ImageReference::parse(s) {
        let again = oci::ImageReference::parse(&r.to_string()).expect("a printed reference parses");
        assert_eq!(again, r);
    }
    let _ = oci::reference::Reference::parse(s);
    let _ = oci::reference::validate_name(s);
    let _ = oci::reference::validate_tag(s);
    if let Ok(d) = oci::Digest::parse(s) {
        assert_eq!(d.to_string(), s);
    }
});
