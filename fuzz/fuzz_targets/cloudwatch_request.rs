//! Any body sent as any CloudWatch operation in any of its three protocols: the CBOR,
//! JSON and query decoders, validation, metric math and the answer encoders must answer
//! with a body or an AWS error, never panic. The first byte picks the operation, the
//! second the protocol. Runs against a real SQLite metric store, so data put by earlier
//! inputs is read back by later ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use wire::Service;

struct Env {
    rt: tokio::runtime::Runtime,
    cw: cloudwatch::CloudWatch,
    caller: wire::Caller,
    _dir: std::path::PathBuf,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stevedore-fuzz-cw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = cloudwatch::MetricStore::open(dir.join("metrics.db")).expect("store");
        let scope = model::ecs::arn::ArnScope { region: "us-east-1".into(), account_id: "000000000000".into() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let cw = cloudwatch::CloudWatch::new(Arc::new(store), scope);
        Env { rt, cw, caller: wire::Caller::root("000000000000"), _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let [op, protocol, body @ ..] = data else { return };
    let ops = cloudwatch::Operation::ALL;
    let op = ops[usize::from(*op) % ops.len()];
    let env = env();
    let answer = |input| {
        let call = wire::Call { input, caller: &env.caller, request_id: "fuzz" };
        match env.rt.block_on(env.cw.handle(op, call)) {
            Ok(_) | Err(wire::ServiceError::NotImplemented) => {}
            Err(wire::ServiceError::Aws(e)) => assert!(!e.code.is_empty() && e.status < 500, "{e}"),
        }
    };
    match protocol % 3 {
        0 => answer(wire::Input::Cbor(body)),
        1 => answer(wire::Input::Json(body)),
        _ => {
            let mut form = format!("Action={}&Version=2010-08-01&", op.name()).into_bytes();
            form.extend_from_slice(body);
            if let Ok(params) = wire::query::parse_form(&form) {
                answer(wire::Input::Query(&params));
            }
        }
    }
});
