//! Any form body sent as any ELBv2 action: query decoding, validation, the handlers and
//! the XML rendering must answer with a document or an AWS error, never panic. Runs
//! against a real SQLite store, so state built by earlier inputs is exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct Env {
    rt: tokio::runtime::Runtime,
    elb: elbv2::Elbv2,
    _dir: std::path::PathBuf,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stevedore-fuzz-elb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = store::SqliteStore::open(store::SqliteConfig::new(dir.join("state.db"))).expect("store");
        let scope = model::ecs::arn::ArnScope { region: "us-east-1".into(), account_id: "000000000000".into() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Env { rt, elb: elbv2::Elbv2::new(Arc::new(store), scope, None), _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let ops = elbv2::Operation::ALL;
    let op = ops[usize::from(selector) % ops.len()];
    // The selector picks the action; the fuzzed body supplies the members (a body that
    // names Action or Version again is a duplicate name, which the decoder refuses).
    let mut form = format!("Action={}&Version=2015-12-01&", op.name()).into_bytes();
    form.extend_from_slice(body);
    let Ok(params) = wire::query::parse_form(&form) else { return };
    let env = env();
    if let Ok(xml) = env.rt.block_on(env.elb.handle(&params, "fuzz")) {
        assert!(xml.ends_with("Response>"), "unterminated document: {xml}");
    }
    let _ = env.rt.block_on(env.elb.lb_config());
});
