//! Arbitrary text as an ECR lifecycle policy through PutLifecyclePolicy (the policy parser
//! and its validation), then a preview and GetLifecyclePolicy of whatever was accepted:
//! a policy is either refused with a client error or stored and evaluated, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct Env {
    rt: tokio::runtime::Runtime,
    registry: registry::Registry,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = stevedore_fuzz::temp_dir("lifecycle");
        let blobs = blobstore::FsBlobStore::open(dir.join("blobs")).expect("blobs");
        let config = registry::RegistryConfig::new("127.0.0.1:1".into(), "us-east-1".into(), "000000000000".into());
        let registry = registry::Registry::new(stevedore_fuzz::sqlite_store(&dir), Arc::new(blobs), config);
        let rt = stevedore_fuzz::runtime();
        rt.block_on(registry.handle("CreateRepository", br#"{"repositoryName":"fuzz"}"#)).expect("repository");
        Env { rt, registry }
    })
}

fn client_error(r: Result<Vec<u8>, registry::RegistryError>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => {
            let aws = e.to_aws();
            assert!(aws.status < 500, "{e}");
            false
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = env();
    let body = serde_json::json!({"repositoryName": "fuzz", "lifecyclePolicyText": text}).to_string();
    if !client_error(env.rt.block_on(env.registry.handle("PutLifecyclePolicy", body.as_bytes()))) {
        return;
    }
    let _ = client_error(env.rt.block_on(env.registry.handle("GetLifecyclePolicy", br#"{"repositoryName":"fuzz"}"#)));
    let _ = client_error(env.rt.block_on(env.registry.handle("StartLifecyclePolicyPreview", body.as_bytes())));
    let _ = client_error(env.rt.block_on(env.registry.handle("GetLifecyclePolicyPreview", br#"{"repositoryName":"fuzz"}"#)));
});
