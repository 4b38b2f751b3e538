//! `scan` owns image vulnerability scanning as pure logic: reading an image's layers
//! with whiteouts applied ([`layers`]), inventorying its packages ([`packages`]), the
//! OSV vulnerability database ([`db`]), each ecosystem's version ordering ([`version`])
//! and matching packages against records ([`osv`]). It knows nothing of the registry or
//! the ECR API: callers hand it layer streams and get findings back. Everything it reads
//! is untrusted and bounded by [`Limits`]; it never panics on input.

#![forbid(unsafe_code)]

pub mod db;
pub mod layers;
pub mod osv;
pub mod packages;
pub mod version;

pub use db::Database;
pub use osv::FindingSeverity;
pub use packages::Package;
pub use version::Ecosystem;

#[cfg(test)]
mod inventory_tests;

use std::collections::BTreeMap;
use std::io::Read;

/// Bounds on what one scan reads.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Decompressed bytes across all layers (the zip-bomb bound).
    pub max_total_bytes: u64,
    /// Bytes of one package database or lockfile.
    pub max_file_bytes: u64,
    /// Bytes of all kept package databases and lockfiles.
    pub max_kept_bytes: u64,
    /// Package databases and lockfiles kept.
    pub max_kept_files: usize,
    /// Tar entries across all layers.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 16 * 1024 * 1024 * 1024,
            max_file_bytes: 64 * 1024 * 1024,
            max_kept_bytes: 256 * 1024 * 1024,
            max_kept_files: 10_000,
            max_entries: 2_000_000,
        }
    }
}

/// Why a scan could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A layer is not a (gzip-compressed) tar archive, or is corrupt.
    #[error("layer {0}: {1}")]
    Layer(String, String),
    /// The image passes one of the scan's [`Limits`].
    #[error("{0}")]
    Limit(String),
    /// The image is of a kind the scanner does not read.
    #[error("{0}")]
    Unsupported(String),
    /// The image has no package database or lockfile the scanner knows.
    #[error(
        "UnsupportedImageError: The operating system and/or package manager are not supported."
    )]
    NoPackages,
    /// The vulnerability database failed.
    #[error(transparent)]
    Database(#[from] db::DbError),
}

/// One vulnerability found in one package.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// The record's id.
    pub name: String,
    /// Its summary (or details).
    pub description: Option<String>,
    /// Its first reference.
    pub uri: Option<String>,
    /// ECR's severity name.
    pub severity: String,
    /// The affected package's name.
    pub package_name: String,
    /// Its installed version.
    pub package_version: String,
}

/// A finished scan.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Findings, most severe first, then by name and package.
    pub findings: Vec<Finding>,
    /// Packages inventoried.
    pub packages: usize,
    /// Package files that could not be read (the scan still completes).
    pub notes: Vec<String>,
}

/// Reads the image's `layers` (lowest first, each a name and a blob stream) and returns
/// the wanted files' filesystem.
pub fn read_layers<R: Read>(
    layers: impl IntoIterator<Item = Result<(String, R), ScanError>>,
    limits: &Limits,
) -> Result<layers::Filesystem, ScanError> {
    let mut fs = layers::Filesystem::new();
    for layer in layers {
        let (name, reader) = layer?;
        fs.apply_layer(reader, limits, &name)?;
    }
    Ok(fs)
}

/// Inventories `fs` and matches its packages against `db`.
pub fn scan(fs: &layers::Filesystem, db: &Database) -> Result<Report, ScanError> {
    let (packages, notes) = packages::inventory(fs.files());
    if packages.is_empty() && fs.files().keys().all(|p| layers::is_os_release(p)) {
        return Err(ScanError::NoPackages);
    }
    let mut cache: BTreeMap<(Ecosystem, String), Vec<osv::Vulnerability>> = BTreeMap::new();
    let mut found: BTreeMap<(FindingSeverity, String, String, String), Finding> = BTreeMap::new();
    for p in &packages {
        for name in p.lookup_names() {
            let key = (p.ecosystem, name.to_owned());
            if !cache.contains_key(&key) {
                let c = db.candidates(p.ecosystem, name)?;
                cache.insert(key.clone(), c);
            }
            for v in cache.get(&key).into_iter().flatten() {
                let Some(i) = v.affects(p) else { continue };
                let severity = v.severity_for(v.affected.get(i));
                found
                    .entry((severity, v.id.clone(), p.name.clone(), p.version.clone()))
                    .or_insert_with(|| Finding {
                        name: v.id.clone(),
                        description: v.summary.clone().or_else(|| v.details.clone()),
                        uri: v.references.first().map(|r| r.url.clone()),
                        severity: severity.as_str().to_owned(),
                        package_name: p.name.clone(),
                        package_version: p.version.clone(),
                    });
            }
        }
    }
    Ok(Report {
        findings: found.into_values().collect(),
        packages: packages.len(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_to_end_over_a_layer() {
        let db = Database::in_memory().expect("db");
        let rec = |id: &str, eco: &str, name: &str, fixed: &str, sev: &str| db::SourceFile {
            name: id.into(),
            content: format!(
                r#"{{"id":"{id}","summary":"s","references":[{{"url":"https://example.invalid/{id}"}}],"database_specific":{{"severity":"{sev}"}},"affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
            ),
        };
        db.import(
            [
                rec(
                    "TEST-D-1",
                    "Debian:12",
                    "openssl",
                    "3.0.11-1~deb12u2",
                    "HIGH",
                ),
                rec("TEST-C-1", "crates.io", "smallvec", "1.6.1", "CRITICAL"),
            ],
            1,
        )
        .expect("import");
        let status = "Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n";
        let lock =
            "[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+x\"\n";
        let layer = {
            let mut b = tar::Builder::new(Vec::new());
            for (p, body) in [("var/lib/dpkg/status", status), ("app/Cargo.lock", lock)] {
                let mut h = tar::Header::new_gnu();
                h.set_size(body.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, p, body.as_bytes()).expect("append");
            }
            b.into_inner().expect("tar")
        };
        let fs =
            read_layers([Ok(("l".to_owned(), &layer[..]))], &Limits::default()).expect("layers");
        let r = scan(&fs, &db).expect("scan");
        let got: Vec<(&str, &str, &str)> = r
            .findings
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.severity.as_str(),
                    f.package_name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("TEST-C-1", "CRITICAL", "smallvec"),
                ("TEST-D-1", "HIGH", "libssl3")
            ]
        );
        assert_eq!(r.packages, 2);

        let empty = read_layers([Ok(("l".to_owned(), &tar_empty()[..]))], &Limits::default())
            .expect("layers");
        assert!(matches!(scan(&empty, &db), Err(ScanError::NoPackages)));
    }

    fn tar_empty() -> Vec<u8> {
        tar::Builder::new(Vec::new()).into_inner().expect("tar")
    }
}
