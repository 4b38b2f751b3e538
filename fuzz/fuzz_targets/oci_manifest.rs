//! Parses arbitrary bytes as a manifest with and without a declared media type: must
//! never panic, and whatever parses must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for declared in [None, Some(oci::media::OCI_MANIFEST), Some(oci::media::DOCKER_MANIFEST_LIST)] {
        if let Ok(m) = oci::Manifest::parse(data, declared) {
            assert!(oci::media::manifest_kind(&m.media_type) == Some(m.kind));
            assert!(m.layers_size() >= 0);
            let _ = m.blobs().count();
            let _ = m.referrer_artifact_type();
        }
    }
});
