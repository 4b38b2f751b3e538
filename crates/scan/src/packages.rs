//! The package inventory: OS packages from dpkg's status database (and distroless
//! `status.d` files), apk's installed database and rpm's sqlite database, language
//! packages from Cargo.lock, package-lock.json, Python's site-packages metadata and Go
//! binaries' build info. Parsers read untrusted bytes: a file they cannot read yields no
//! packages and a note, never a panic.

use crate::version::Ecosystem;
use std::collections::BTreeSet;

pub mod gobinary;
pub mod python;
pub mod rpm;

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// The name users know (the binary package for dpkg and apk).
    pub name: String,
    /// The name vulnerability databases list it under when it differs (Debian's source
    /// package, Alpine's origin).
    pub source: Option<String>,
    /// Installed version.
    pub version: String,
    /// The OS release the package belongs to, in OSV's ecosystem suffix form (`12` for
    /// `Debian:12`, `v3.19` for `Alpine:v3.19`); `None` for language packages or when
    /// the image does not say.
    pub release: Option<String>,
}

impl Package {
    /// The names to look the package up under: its source first, then its own.
    pub fn lookup_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.source.iter().map(String::as_str).collect();
        if !v.contains(&self.name.as_str()) {
            v.push(&self.name);
        }
        v
    }
}

/// Inventories every wanted file (see [`crate::layers::wanted`]), OS packages tagged
/// with the release the image's os-release names; returns the packages and a note per
/// file that could not be read.
pub fn inventory<'a>(
    files: impl IntoIterator<Item = (&'a String, &'a Vec<u8>)>,
) -> (Vec<Package>, Vec<String>) {
    let mut out = BTreeSet::new();
    let mut notes = Vec::new();
    let files: Vec<(&String, &Vec<u8>)> = files.into_iter().collect();
    // `etc/os-release` wins over `usr/lib/os-release` (the usual link target).
    let mut releases: Vec<(&String, &Vec<u8>)> = files
        .iter()
        .copied()
        .filter(|(p, _)| crate::layers::is_os_release(p))
        .collect();
    releases.sort_by_key(|(p, _)| !p.starts_with("etc/"));
    let files_release = releases
        .first()
        .and_then(|(_, b)| std::str::from_utf8(b).ok());
    let release = os_release(files_release);
    for (path, body) in files {
        if crate::layers::is_os_release(path) {
            continue;
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        if rpm::SQLITE_PATHS.contains(&path.as_str()) {
            // Which rpm distribution the packages belong to comes from os-release.
            let eco = match release.as_ref().map(|(e, _)| *e) {
                Some(e @ (Ecosystem::RockyLinux | Ecosystem::AlmaLinux)) => e,
                _ => Ecosystem::RedHat,
            };
            match rpm::rpmdb_sqlite(body, eco) {
                Ok(p) => out.extend(p),
                Err(e) => notes.push(format!("{path}: {e}")),
            }
            continue;
        }
        if rpm::BDB_PATHS.contains(&path.as_str()) {
            notes.push(format!(
                "{path}: a BerkeleyDB rpm database, which the scanner does not read"
            ));
            continue;
        }
        if base == gobinary::VIRTUAL_NAME {
            match std::str::from_utf8(body) {
                Ok(text) => match text.strip_prefix('!') {
                    Some(note) => notes.push(format!("{path}: {note}")),
                    None => out.extend(gobinary::packages(text)),
                },
                Err(_) => notes.push(format!("{path}: Go build info is not UTF-8")),
            }
            continue;
        }
        let Ok(text) = std::str::from_utf8(body) else {
            notes.push(format!("{path}: not UTF-8"));
            continue;
        };
        let parsed = if path == "var/lib/dpkg/status" || path.starts_with("var/lib/dpkg/status.d/")
        {
            Ok(dpkg_status(text))
        } else if path == "lib/apk/db/installed" {
            Ok(apk_installed(text))
        } else if base == "Cargo.lock" {
            Ok(cargo_lock(text))
        } else if base == "package-lock.json" {
            package_lock(text)
        } else if python::is_metadata(path) {
            Ok(python::metadata(text))
        } else {
            Ok(Vec::new())
        };
        match parsed {
            Ok(p) => out.extend(p),
            Err(e) => notes.push(format!("{path}: {e}")),
        }
    }
    let packages = out
        .into_iter()
        .map(|mut p| {
            p.release = match p.ecosystem {
                Ecosystem::Debian
                | Ecosystem::Alpine
                | Ecosystem::RockyLinux
                | Ecosystem::AlmaLinux => release
                    .as_ref()
                    .filter(|(eco, _)| *eco == p.ecosystem)
                    .map(|(_, r)| r.clone()),
                _ => None,
            };
            p
        })
        .collect();
    (packages, notes)
}

/// The OS release an image's os-release file names, as OSV's ecosystem suffix: Debian's
/// `VERSION_ID` (`12`), Alpine's major.minor with a `v` (`v3.19`).
pub fn os_release(text: Option<&str>) -> Option<(Ecosystem, String)> {
    let text = text?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
    };
    let version = field("VERSION_ID")?;
    match field("ID")?.as_str() {
        "debian" => Some((Ecosystem::Debian, version.split('.').next()?.to_owned())),
        "alpine" => {
            let mut parts = version.split('.');
            Some((
                Ecosystem::Alpine,
                format!("v{}.{}", parts.next()?, parts.next()?),
            ))
        }
        // OSV names `Rocky Linux:9` and `AlmaLinux:9` by major release; Red Hat's
        // suffixes name products (`Red Hat:enterprise_linux:9::appstream`), so RHEL
        // packages match every Red Hat record of their name.
        "rocky" => Some((Ecosystem::RockyLinux, version.split('.').next()?.to_owned())),
        "almalinux" => Some((Ecosystem::AlmaLinux, version.split('.').next()?.to_owned())),
        "rhel" => Some((Ecosystem::RedHat, String::new())),
        _ => None,
    }
}

/// dpkg's status file: RFC 822-style stanzas; only installed packages count.
pub fn dpkg_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut source, mut status) = (None, None, None, None);
        for line in stanza.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k {
                "Package" => name = Some(v),
                "Version" => version = Some(v),
                "Source" => source = Some(v),
                "Status" => status = Some(v),
                _ => {}
            }
        }
        // distroless status.d files carry no Status field: a stanza there is installed.
        let installed = status.is_none_or(|s| s.ends_with(" installed"));
        if let (Some(name), Some(version), true) = (name, version, installed) {
            // `Source: name (version)` when the source version differs; the binary's
            // version is what is installed, and Debian's advisories track the source
            // version, so that one is used when given.
            let (source, version) = match source {
                Some(s) => match s.split_once(' ') {
                    Some((n, v)) => (
                        Some(n.to_owned()),
                        v.trim()
                            .trim_start_matches('(')
                            .trim_end_matches(')')
                            .to_owned(),
                    ),
                    None => (Some(s.to_owned()), version.to_owned()),
                },
                None => (None, version.to_owned()),
            };
            if name.is_empty() || version.is_empty() {
                continue;
            }
            out.push(Package {
                ecosystem: Ecosystem::Debian,
                name: name.to_owned(),
                source,
                version,
                release: None,
            });
        }
    }
    out
}

/// apk's installed database: stanzas of `K:value` lines (`P` name, `V` version, `o`
/// origin).
pub fn apk_installed(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut origin) = (None, None, None);
        for line in stanza.lines() {
            match line.split_once(':') {
                Some(("P", v)) => name = Some(v),
                Some(("V", v)) => version = Some(v),
                Some(("o", v)) => origin = Some(v),
                _ => {}
            }
        }
        if let (Some(name), Some(version)) = (name, version) {
            if name.is_empty() || version.is_empty() {
                continue;
            }
            out.push(Package {
                ecosystem: Ecosystem::Alpine,
                name: name.to_owned(),
                source: origin.filter(|o| !o.is_empty()).map(str::to_owned),
                version: version.to_owned(),
                release: None,
            });
        }
    }
    out
}

/// Cargo.lock: `[[package]]` tables with `name` and `version`; only crates from a
/// registry (a `source` starting `registry+` or `sparse+`) are crates.io packages —
/// path and git dependencies are the project's own code.
pub fn cargo_lock(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for table in text.split("[[package]]").skip(1) {
        let (mut name, mut version, mut source) = (None, None, None);
        for line in table.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                break;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim() {
                "name" => name = Some(v),
                "version" => version = Some(v),
                "source" => source = Some(v),
                _ => {}
            }
        }
        let from_registry =
            source.is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"));
        if let (Some(name), Some(version), true) = (name, version, from_registry) {
            out.push(Package {
                ecosystem: Ecosystem::CratesIo,
                name: name.to_owned(),
                source: None,
                version: version.to_owned(),
                release: None,
            });
        }
    }
    out
}

/// package-lock.json: lockfile v2/v3 `packages` (keys `node_modules/…/NAME`) or v1
/// `dependencies` (nested).
pub fn package_lock(text: &str) -> Result<Vec<Package>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let mut out = Vec::new();
    let npm = |name: &str, version: &str| Package {
        ecosystem: Ecosystem::Npm,
        name: name.to_owned(),
        source: None,
        version: version.to_owned(),
        release: None,
    };
    if let Some(packages) = doc.get("packages").and_then(|p| p.as_object()) {
        for (key, p) in packages {
            // "" is the project itself; links point at the project's own folders.
            let Some(idx) = key.rfind("node_modules/") else {
                continue;
            };
            if p.get("link").and_then(serde_json::Value::as_bool) == Some(true) {
                continue;
            }
            let name = p
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or(&key[idx + "node_modules/".len()..]);
            if let Some(v) = p.get("version").and_then(|v| v.as_str()) {
                out.push(npm(name, v));
            }
        }
    } else if let Some(deps) = doc.get("dependencies").and_then(|d| d.as_object()) {
        // v1: nested `dependencies`, walked with an explicit stack (no recursion depth
        // for a hostile file to exhaust).
        let mut stack = vec![deps];
        while let Some(deps) = stack.pop() {
            for (name, d) in deps {
                if let Some(v) = d.get("version").and_then(|v| v.as_str()) {
                    out.push(npm(name, v));
                }
                if let Some(inner) = d.get("dependencies").and_then(|d| d.as_object()) {
                    stack.push(inner);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_keeps_installed_packages_with_their_source() {
        let text = "Package: libssl3\nStatus: install ok installed\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2+b1\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n";
        let p = dpkg_status(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "libssl3");
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!(p[0].version, "3.0.11-1~deb12u2");
        assert_eq!(p[1].lookup_names(), ["bash"]);
    }

    #[test]
    fn apk_reads_names_versions_and_origins() {
        let text = "C:Q1abc=\nP:libcrypto3\nV:3.1.4-r1\no:openssl\n\nP:musl\nV:1.2.4-r2\n";
        let p = apk_installed(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].lookup_names(), ["openssl", "libcrypto3"]);
        assert_eq!(p[1].version, "1.2.4-r2");
    }

    #[test]
    fn cargo_lock_keeps_registry_crates_only() {
        let text = "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://example.invalid/index\"\nchecksum = \"x\"\n";
        let p = cargo_lock(text);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("smallvec", "1.6.0")
        );
    }

    #[test]
    fn package_lock_v1_and_v3() {
        let v3 = r#"{"lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/lodash":{"version":"4.17.20"},"node_modules/a/node_modules/@s/b":{"version":"1.0.0"},"node_modules/mine":{"link":true}}}"#;
        let names: Vec<String> = package_lock(v3)
            .expect("v3")
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["@s/b", "lodash"]);
        let v1 = r#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}}}}"#;
        assert_eq!(package_lock(v1).expect("v1").len(), 2);
        assert!(package_lock("{not json").is_err());
    }

    #[test]
    fn os_release_names_the_osv_release_of_os_packages() {
        let debian =
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
        let alpine = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n";
        assert_eq!(
            os_release(Some(debian)),
            Some((Ecosystem::Debian, "12".into()))
        );
        assert_eq!(
            os_release(Some(alpine)),
            Some((Ecosystem::Alpine, "v3.19".into()))
        );
        assert_eq!(os_release(Some("ID=plan9\nVERSION_ID=4")), None);
        let files = std::collections::BTreeMap::from([
            ("usr/lib/os-release".to_owned(), debian.as_bytes().to_vec()),
            (
                "var/lib/dpkg/status".to_owned(),
                b"Package: a\nVersion: 1\n".to_vec(),
            ),
            (
                "app/Cargo.lock".to_owned(),
                b"[[package]]\nname = \"c\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\n"
                    .to_vec(),
            ),
        ]);
        let (p, notes) = inventory(&files);
        assert!(notes.is_empty());
        let releases: Vec<Option<&str>> = p.iter().map(|p| p.release.as_deref()).collect();
        assert_eq!(releases, [Some("12"), None], "{p:?}");
    }

    #[test]
    fn garbage_yields_nothing() {
        assert!(dpkg_status("\u{0}\n\n:::\nPackage:\nVersion:").is_empty());
        assert!(apk_installed("P:\nV:\n").is_empty());
        assert!(cargo_lock("[[package]]\nname = ").is_empty());
    }
}
