//! The workspace's dependency rules (docs/ARCHITECTURE.md), checked on the real graph
//! from `cargo metadata` so a stray `use` cannot quietly couple two crates.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Internal crates each crate may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("policy", &[]),
    ("oci", &[]),
    ("placement", &["model"]),
    ("reconcile", &["model"]),
    ("lifecycle", &["model"]),
    ("wire", &["policy"]),
    // What the server tells about itself: a low crate every service may use.
    ("telemetry", &[]),
    ("store", &["model", "telemetry"]),
    ("blobstore", &["oci"]),
    (
        "ecs",
        &[
            "wire",
            "model",
            "placement",
            "reconcile",
            "lifecycle",
            "policy",
            "store",
            "telemetry",
        ],
    ),
    (
        "registry",
        &[
            "wire",
            "model",
            "oci",
            "blobstore",
            "policy",
            "store",
            "telemetry",
            "scan",
        ],
    ),
    ("scan", &[]),
    ("elbv2", &["wire", "model", "policy", "store", "telemetry"]),
    ("lb", &["model", "telemetry"]),
    ("logs", &["wire", "model", "policy", "store", "telemetry"]),
    ("cloudwatch", &["wire", "model", "store", "telemetry"]),
    ("iam", &["wire", "model", "policy", "store", "telemetry"]),
    ("autoscaling", &["wire", "model", "store", "telemetry"]),
    ("appscaling", &["wire", "model", "store", "telemetry"]),
    ("agent", &["model", "lifecycle", "oci", "wire"]),
    (
        "testkit",
        &[
            "model",
            "store",
            "placement",
            "reconcile",
            "lifecycle",
            "telemetry",
        ],
    ),
    ("netfilter", &[]),
    ("ec2", &["wire", "model", "policy", "store", "telemetry"]),
    ("loadgen", &[]),
    // The web console reaches every service through the public API only (SigV4 as the
    // signed-in principal), never through their crates or the store.
    ("console", &[]),
];

/// Crates that must stay free of I/O runtimes, even transitively.
const PURE: &[&str] = &[
    "model",
    "oci",
    "placement",
    "reconcile",
    "lifecycle",
    "policy",
];
const IO_CRATES: &[&str] = &[
    "tokio",
    "hyper",
    "axum",
    "bollard",
    "rusqlite",
    "etcd-client",
];

fn metadata() -> Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path", root])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Workspace member name → its normal (non-dev, non-build) dependencies' names.
fn normal_deps(meta: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut out = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        if !members.contains(p["id"].as_str().unwrap_or("")) {
            continue;
        }
        let deps = p["dependencies"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        out.insert(p["name"].as_str().expect("name").to_owned(), deps);
    }
    out
}

#[test]
fn every_crate_depends_only_on_allowed_internal_crates() {
    let deps = normal_deps(&metadata());
    let members: BTreeSet<&String> = deps.keys().collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for (name, ds) in &deps {
        if name == "stevedore" {
            continue; // the binary wires everything together
        }
        let ok = allowed.get(name.as_str()).unwrap_or_else(|| {
            panic!("crate {name} has no entry in the dependency rules; add it to docs/ARCHITECTURE.md and this test")
        });
        for d in ds.iter().filter(|d| members.contains(d)) {
            assert!(
                ok.contains(&d.as_str()),
                "crate {name} must not depend on {d}"
            );
        }
    }
}

#[test]
fn pure_crates_never_reach_an_io_runtime() {
    let meta = metadata();
    let resolve = meta["resolve"]["nodes"].as_array().expect("resolve");
    let by_id: BTreeMap<&str, &Value> = resolve
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id"),
                p["name"].as_str().expect("name"),
            )
        })
        .collect();
    let mut checked = 0;
    for pure in PURE {
        let Some((start, _)) = name_of.iter().find(|(_, n)| *n == pure) else {
            continue;
        };
        checked += 1;
        let mut stack = vec![*start];
        let mut seen = BTreeSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let name = name_of.get(id).copied().unwrap_or("");
            assert!(
                !IO_CRATES.contains(&name),
                "pure crate {pure} reaches {name}"
            );
            for d in by_id
                .get(id)
                .and_then(|n| n["deps"].as_array())
                .into_iter()
                .flatten()
            {
                let normal = d["dep_kinds"]
                    .as_array()
                    .is_some_and(|ks| ks.iter().any(|k| k["kind"].is_null()));
                if let (true, Some(pkg)) = (normal, d["pkg"].as_str()) {
                    stack.push(pkg);
                }
            }
        }
    }
    assert!(checked >= 1, "no pure crate found in the workspace");
}

#[test]
fn services_never_depend_on_each_other() {
    let services = [
        "ecs",
        "registry",
        "elbv2",
        "lb",
        "logs",
        "cloudwatch",
        "iam",
        "autoscaling",
        "agent",
        "console",
    ];
    let deps = normal_deps(&metadata());
    for s in services {
        for d in deps.get(s).into_iter().flatten() {
            assert!(
                !services.contains(&d.as_str()),
                "service {s} depends on service {d}"
            );
        }
    }
}

#[test]
fn agent_never_depends_on_server_internals() {
    let deps = normal_deps(&metadata());
    for d in deps.get("agent").into_iter().flatten() {
        assert!(
            !["store", "ecs", "registry"].contains(&d.as_str()),
            "agent depends on {d}"
        );
    }
}
