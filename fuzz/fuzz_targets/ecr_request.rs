//! Any body sent to any ECR operation: decoding, validation and the handler must answer
//! with a value or a client (4xx) AWS error, never panic. The first byte picks the
//! operation. Runs against a real SQLite store and filesystem blob store; a repository
//! named `fuzz` exists so inputs reach past the lookup.
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
        let dir = stevedore_fuzz::temp_dir("ecr");
        let blobs = blobstore::FsBlobStore::open(dir.join("blobs")).expect("blobs");
        let config = registry::RegistryConfig::new("127.0.0.1:1".into(), "us-east-1".into(), "000000000000".into());
        let registry = registry::Registry::new(stevedore_fuzz::sqlite_store(&dir), Arc::new(blobs), config);
        let rt = stevedore_fuzz::runtime();
        rt.block_on(registry.handle("CreateRepository", br#"{"repositoryName":"fuzz"}"#)).expect("repository");
        Env { rt, registry }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let ops = registry::Operation::ALL;
    let op = ops[usize::from(selector) % ops.len()];
    let env = env();
    if let Err(e) = env.rt.block_on(env.registry.handle(op.name(), body)) {
        let aws = e.to_aws();
        assert!(!aws.code.is_empty(), "{e}");
        assert!(aws.status < 500 || aws.code == "ServerException", "{op:?}: {e}");
    }
});
