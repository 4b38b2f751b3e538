//! Arbitrary requests to the `/v2/` router: a method chosen by the first byte, then a path
//! with query, an `Authorization` header (none, Basic, Bearer, or a valid token, chosen by
//! the second byte, with fuzzed credentials) and a body, split at 0xFF bytes. Route
//! parsing, query parsing, token checks and the handlers must answer with a status below
//! 500 (or a 5xx only for a blob store fault), never panic.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

struct Env {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = stevedore_fuzz::temp_dir("v2");
        let blobs = blobstore::FsBlobStore::open(dir.join("blobs")).expect("blobs");
        let config = registry::RegistryConfig::new("127.0.0.1:1".into(), "us-east-1".into(), "000000000000".into());
        let registry = registry::Registry::new(stevedore_fuzz::sqlite_store(&dir), Arc::new(blobs), config);
        let rt = stevedore_fuzz::runtime();
        rt.block_on(registry.handle("CreateRepository", br#"{"repositoryName":"fuzz"}"#)).expect("repository");
        let answer = rt.block_on(registry.handle("GetAuthorizationToken", b"{}")).expect("token");
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("json");
        let token = v["authorizationData"][0]["authorizationToken"].as_str().expect("a token").to_owned();
        Env { rt, router: registry.router(), token }
    })
}

const METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];

fuzz_target!(|data: &[u8]| {
    let [method, auth, rest @ ..] = data else { return };
    let parts = stevedore_fuzz::fields(rest, 3);
    let (Ok(path), Ok(credentials)) = (std::str::from_utf8(parts[0]), std::str::from_utf8(parts[1])) else { return };
    let env = env();
    let uri = format!("/v2/{path}");
    let mut req = http::Request::builder().method(METHODS[usize::from(*method) % METHODS.len()]).uri(uri.as_str());
    let header = match auth % 4 {
        0 => None,
        1 => Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))),
        2 => Some(format!("Bearer {credentials}")),
        _ => Some(format!("Basic {}", env.token)),
    };
    if let Some(h) = header {
        req = req.header(http::header::AUTHORIZATION, h);
    }
    if parts[2].first().is_some_and(|b| b % 2 == 0) {
        req = req.header(http::header::CONTENT_TYPE, "application/vnd.oci.image.manifest.v1+json");
    }
    // A path or header that is not a valid URI or header value is refused before routing.
    let Ok(req) = req.body(axum::body::Body::from(parts[2].to_vec())) else { return };
    let resp = env.rt.block_on(env.router.clone().oneshot(req)).expect("the router is infallible");
    assert!(resp.status().as_u16() < 500, "{} {uri}: {}", resp.status(), path.len());
});
