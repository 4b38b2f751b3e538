//! End to end over one layer of a Rocky Linux image: the rpm database, a Python
//! distribution and a Go binary are inventoried and matched with each ecosystem's
//! ordering (rpm, PEP 440, SemVer).

use crate::packages::{gobinary, rpm};
use crate::{db, read_layers, scan, Database, Limits};

fn record(id: &str, eco: &str, name: &str, kind: &str, fixed: &str) -> db::SourceFile {
    db::SourceFile {
        name: format!("{id}.json"),
        content: format!(
            r#"{{"id":"{id}","database_specific":{{"severity":"HIGH"}},"affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},"ranges":[{{"type":"{kind}","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
        ),
    }
}

fn layer(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(*mode);
        b.append_data(&mut h, path, *body).expect("append");
    }
    b.into_inner().expect("tar")
}

#[test]
fn rpm_python_and_go_packages_are_found_with_their_own_orderings() {
    let db = Database::in_memory().expect("db");
    db.import(
        [
            // 1:3.0.7-24.el9 < 1:3.0.7-25.el9: affected.
            record(
                "RLSA-T-1",
                "Rocky Linux:9",
                "openssl",
                "ECOSYSTEM",
                "1:3.0.7-25.el9",
            ),
            // Another release's record does not apply.
            record(
                "RLSA-T-2",
                "Rocky Linux:8",
                "openssl",
                "ECOSYSTEM",
                "1:9.9-1",
            ),
            // bash 5.1.8-6.el9 is past the fix.
            record(
                "RLSA-T-3",
                "Rocky Linux:9",
                "bash",
                "ECOSYSTEM",
                "5.1.8-6.el9",
            ),
            // 5.3.1 < 5.4b1 by PEP 440; OSV's name spelling differs from the installed one.
            record("PYSEC-T-1", "PyPI", "PyYAML", "ECOSYSTEM", "5.4b1"),
            record("PYSEC-T-2", "PyPI", "requests", "ECOSYSTEM", "2.0"),
            record("GO-T-1", "Go", "golang.org/x/net", "SEMVER", "0.17.1"),
            record("GO-T-2", "Go", "stdlib", "SEMVER", "1.21.4"),
        ],
        1,
    )
    .expect("import");
    let header = |name: &str, version: &str, release: &str, src: &str, epoch| {
        rpm::tests::header(
            &[(1000, name), (1001, version), (1002, release), (1044, src)],
            epoch,
        )
    };
    let rpmdb = rpm::tests::rpmdb(&[
        header(
            "openssl-libs",
            "3.0.7",
            "24.el9",
            "openssl-3.0.7-24.el9.src.rpm",
            Some(1),
        ),
        header("bash", "5.1.8", "6.el9", "bash-5.1.8-6.el9.src.rpm", None),
    ]);
    let go = gobinary::tests::binary("go1.21.3", "dep\tgolang.org/x/net\tv0.17.0\th1:x=\n");
    let os_release = b"ID=\"rocky\"\nVERSION_ID=\"9.3\"\n";
    let metadata = b"Metadata-Version: 2.1\nName: pyyaml\nVersion: 5.3.1\n\n";
    let tar = layer(&[
        ("etc/os-release", os_release, 0o644),
        ("var/lib/rpm/rpmdb.sqlite", &rpmdb, 0o644),
        (
            "usr/lib/python3.9/site-packages/PyYAML-5.3.1.dist-info/METADATA",
            metadata,
            0o644,
        ),
        ("usr/local/bin/app", &go, 0o755),
        ("usr/local/bin/script", b"#!/bin/sh\n", 0o755),
    ]);
    let fs = read_layers([Ok(("l".to_owned(), &tar[..]))], &Limits::default()).expect("layers");
    assert!(fs.files().contains_key("usr/local/bin/app/.go-buildinfo"));
    assert!(!fs.files().contains_key("usr/local/bin/script"));
    let report = scan(&fs, &db).expect("scan");
    let mut got: Vec<(String, String, String)> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                f.package_name.clone(),
                f.package_version.clone(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("GO-T-1".into(), "golang.org/x/net".into(), "v0.17.0".into()),
            ("GO-T-2".into(), "stdlib".into(), "1.21.3".into()),
            ("PYSEC-T-1".into(), "pyyaml".into(), "5.3.1".into()),
            (
                "RLSA-T-1".into(),
                "openssl-libs".into(),
                "1:3.0.7-24.el9".into()
            ),
        ]
    );
    assert_eq!(report.packages, 5);
}

#[test]
fn a_berkeleydb_rpm_database_is_reported_not_read() {
    let tar = layer(&[
        ("etc/os-release", b"ID=almalinux\nVERSION_ID=8.9\n", 0o644),
        ("var/lib/rpm/Packages", b"\x00\x06\x15\x61 berkeley", 0o644),
        (
            "app/Cargo.lock",
            b"[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\n",
            0o644,
        ),
    ]);
    let fs = read_layers([Ok(("l".to_owned(), &tar[..]))], &Limits::default()).expect("layers");
    let db = Database::in_memory().expect("db");
    let report = scan(&fs, &db).expect("scan");
    assert!(
        report.notes.iter().any(|n| n.contains("BerkeleyDB")),
        "{:?}",
        report.notes
    );
}
