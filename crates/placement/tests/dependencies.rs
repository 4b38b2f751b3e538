//! `placement` is a pure crate (STYLE.md §1): nothing in its normal dependency tree may do
//! I/O or bring an async runtime.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::process::Command;

/// Crates a pure crate must never pull in, directly or through another dependency.
const FORBIDDEN: [&str; 9] = [
    "tokio",
    "hyper",
    "axum",
    "rusqlite",
    "bollard",
    "etcd-client",
    "reqwest",
    "mio",
    "tower",
];

#[test]
fn placement_depends_on_no_io_or_async_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "placement",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"regex"),
        "unexpected cargo tree output:\n{tree}"
    );
    for bad in FORBIDDEN {
        assert!(
            !names.contains(&bad),
            "placement must not depend on {bad}:\n{tree}"
        );
    }
}

#[test]
fn direct_dependencies_are_the_allowed_few() {
    let manifest = include_str!("../Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .unwrap_or("");
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split(['.', ' ', '=']).next())
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    assert_eq!(names, ["model", "regex", "thiserror"]);
}
