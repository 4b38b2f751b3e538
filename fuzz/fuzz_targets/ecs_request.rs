//! Any body sent to any ECS operation: decoding, validation and the handler must answer
//! with a value or an AWS error, never panic. Runs against a real SQLite store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct Env {
    rt: tokio::runtime::Runtime,
    ecs: ecs::Ecs,
    _dir: std::path::PathBuf,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stevedore-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = store::SqliteStore::open(store::SqliteConfig::new(dir.join("state.db"))).expect("store");
        let scope = model::ecs::arn::ArnScope { region: "us-east-1".into(), account_id: "000000000000".into() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Env { rt, ecs: ecs::Ecs::new(Arc::new(store), scope, "http://127.0.0.1:1/".into()), _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let ops = ecs::Operation::ALL;
    let op = ops[usize::from(selector) % ops.len()];
    let env = env();
    let caller = ecs::Caller::root("000000000000");
    let _ = env.rt.block_on(env.ecs.handle(op.name(), body, &caller));
});
