//! OSV records (the fields matching needs), whether one affects a package version, and
//! its severity in ECR's terms.

use crate::packages::Package;
use crate::version::Ecosystem;
use serde::Deserialize;
use std::cmp::Ordering;

/// One OSV vulnerability record.
#[derive(Clone, Debug, Deserialize)]
pub struct Vulnerability {
    /// Its id (`CVE-…`, `GHSA-…`, `RUSTSEC-…`, `DSA-…`).
    pub id: String,
    /// RFC 3339 time of its last change.
    #[serde(default)]
    pub modified: Option<String>,
    /// Set when the record was withdrawn: it then matches nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// One-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Longer description.
    #[serde(default)]
    pub details: Option<String>,
    /// Severity scores (CVSS vectors).
    #[serde(default)]
    pub severity: Vec<Severity>,
    /// Affected packages.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Links; the first is the finding's URI.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Database-specific data; `severity` here is the advisory's own rating.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// A `severity[]` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct Severity {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector (or, from some sources, a bare number).
    pub score: String,
}

/// An `affected[]` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct Affected {
    /// The package.
    pub package: Option<AffectedPackage>,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Explicitly affected versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Per-package data; GHSA-style `severity` may sit here too.
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// Per-package database data.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[].package`.
#[derive(Clone, Debug, Deserialize)]
pub struct AffectedPackage {
    /// `Debian:12`, `crates.io`, …
    pub ecosystem: String,
    /// The package's name in that ecosystem.
    pub name: String,
}

/// `affected[].ranges[]`.
#[derive(Clone, Debug, Deserialize)]
pub struct Range {
    /// `ECOSYSTEM`, `SEMVER` or `GIT` (not matched: it needs commit ancestry).
    #[serde(rename = "type")]
    pub kind: String,
    /// The events.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One range event; exactly one field is set in a valid record.
#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    /// First affected version (`"0"` = all before).
    pub introduced: Option<String>,
    /// First fixed version.
    pub fixed: Option<String>,
    /// Last affected version (inclusive).
    pub last_affected: Option<String>,
    /// Upper limit of the range (not an affected bound).
    pub limit: Option<String>,
}

/// A `references[]` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct Reference {
    /// The link.
    pub url: String,
}

/// ECR's severities, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingSeverity {
    /// CVSS ≥ 9.0.
    Critical,
    /// CVSS ≥ 7.0.
    High,
    /// CVSS ≥ 4.0.
    Medium,
    /// CVSS > 0.
    Low,
    /// CVSS 0.
    Informational,
    /// No rating.
    Undefined,
}

impl FindingSeverity {
    /// ECR's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "CRITICAL",
            Self::High => "HIGH",
            Self::Medium => "MEDIUM",
            Self::Low => "LOW",
            Self::Informational => "INFORMATIONAL",
            Self::Undefined => "UNDEFINED",
        }
    }

    fn from_label(label: &str) -> Option<Self> {
        match label.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Some(Self::Critical),
            "HIGH" | "IMPORTANT" => Some(Self::High),
            "MEDIUM" | "MODERATE" => Some(Self::Medium),
            "LOW" | "NEGLIGIBLE" | "UNIMPORTANT" => Some(Self::Low),
            "INFORMATIONAL" | "NONE" => Some(Self::Informational),
            _ => None,
        }
    }

    fn from_score(score: f64) -> Self {
        if score >= 9.0 {
            Self::Critical
        } else if score >= 7.0 {
            Self::High
        } else if score >= 4.0 {
            Self::Medium
        } else if score > 0.0 {
            Self::Low
        } else {
            Self::Informational
        }
    }
}

impl Vulnerability {
    /// Whether this record affects `pkg`; the matching `affected` entry's index.
    pub fn affects(&self, pkg: &Package) -> Option<usize> {
        if self.withdrawn.is_some() {
            return None;
        }
        let names = pkg.lookup_names();
        self.affected.iter().position(|a| {
            a.package.as_ref().is_some_and(|p| {
                Ecosystem::from_osv(&p.ecosystem) == Some(pkg.ecosystem)
                    && same_release(&p.ecosystem, pkg.release.as_deref())
                    && names.contains(&pkg.ecosystem.normalize_name(&p.name).as_str())
            }) && affected_version(a, pkg.ecosystem, &pkg.version)
        })
    }

    /// Severity: the advisory's own label first (per package, then per record), else the
    /// highest CVSS v3 base score, else a bare numeric score, else UNDEFINED.
    pub fn severity_for(&self, affected: Option<&Affected>) -> FindingSeverity {
        let label = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.get("severity"))
                .and_then(|s| s.as_str())
                .and_then(FindingSeverity::from_label)
        };
        if let Some(s) = affected
            .and_then(|a| {
                label(a.ecosystem_specific.as_ref()).or(label(a.database_specific.as_ref()))
            })
            .or_else(|| label(self.database_specific.as_ref()))
        {
            return s;
        }
        let score = self
            .severity
            .iter()
            .filter_map(|s| {
                cvss3_base_score(&s.score).or_else(|| s.score.trim().parse::<f64>().ok())
            })
            .fold(None, |best: Option<f64>, s| {
                Some(best.map_or(s, |b| b.max(s)))
            });
        score.map_or(FindingSeverity::Undefined, FindingSeverity::from_score)
    }
}

/// Whether a record's ecosystem (`Debian:12`) is for the package's release (`12`): a
/// record without a release, or a package whose release is unknown, matches any.
fn same_release(ecosystem: &str, release: Option<&str>) -> bool {
    match (ecosystem.split_once(':'), release) {
        (Some((_, suffix)), Some(release)) => {
            // `Ubuntu:22.04:LTS`-style suffixes: only the release part counts.
            suffix.split(':').next() == Some(release)
        }
        _ => true,
    }
}

/// Whether `version` is affected per one `affected` entry: listed in `versions`, or
/// inside an ECOSYSTEM/SEMVER range (OSV's evaluation: over the events sorted by version,
/// `introduced ≤ v` sets, `fixed ≤ v` clears, `last_affected < v` clears).
pub fn affected_version(a: &Affected, eco: Ecosystem, version: &str) -> bool {
    if a.versions.iter().any(|v| v == version) {
        return true;
    }
    a.ranges
        .iter()
        .filter(|r| r.kind == "ECOSYSTEM" || r.kind == "SEMVER")
        .any(|r| in_range(r, eco, version))
}

fn in_range(r: &Range, eco: Ecosystem, version: &str) -> bool {
    // A version its ecosystem cannot order is in no range (only in `versions` lists).
    if eco.compare(version, version).is_none() {
        return false;
    }
    enum Kind {
        Introduced,
        Fixed,
        LastAffected,
    }
    let mut events: Vec<(Kind, &str)> = r
        .events
        .iter()
        .filter_map(|e| {
            if let Some(v) = &e.introduced {
                Some((Kind::Introduced, v.as_str()))
            } else if let Some(v) = &e.fixed {
                Some((Kind::Fixed, v.as_str()))
            } else {
                e.last_affected
                    .as_ref()
                    .map(|v| (Kind::LastAffected, v.as_str()))
            }
        })
        .collect();
    // "0" is below everything; otherwise the ecosystem's order (unreadable versions sort
    // as equal and are then never satisfied below).
    let cmp = |a: &str, b: &str| -> Ordering {
        match (a == "0", b == "0") {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => eco.compare(a, b).unwrap_or(Ordering::Equal),
        }
    };
    events.sort_by(|x, y| cmp(x.1, y.1));
    let mut affected = false;
    for (kind, at) in events {
        let here = if at == "0" {
            Some(Ordering::Greater)
        } else {
            eco.compare(version, at)
        };
        let Some(here) = here else { continue };
        match kind {
            Kind::Introduced if here != Ordering::Less => affected = true,
            Kind::Fixed if here != Ordering::Less => affected = false,
            Kind::LastAffected if here == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    affected
}

/// The CVSS v3.0/v3.1 base score of a vector (`CVSS:3.1/AV:N/AC:L/…`), or `None` for
/// anything else.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let rest = vector
        .strip_prefix("CVSS:3.1/")
        .or_else(|| vector.strip_prefix("CVSS:3.0/"))?;
    let mut m = std::collections::HashMap::new();
    for part in rest.split('/') {
        let (k, v) = part.split_once(':')?;
        m.insert(k, v);
    }
    let get = |k: &str| m.get(k).copied();
    let changed = match get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (get("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| match get(k) {
        Some("H") => Some(0.56),
        Some("L") => Some(0.22),
        Some("N") => Some(0.0),
        _ => None,
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02_f64).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(roundup(raw))
}

/// CVSS v3.1's Roundup: the smallest one-decimal number ≥ x, free of float noise.
fn roundup(x: f64) -> f64 {
    let int = (x * 100_000.0).round() as i64;
    if int % 10_000 == 0 {
        int as f64 / 100_000.0
    } else {
        ((int / 10_000) + 1) as f64 / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vuln(json: &str) -> Vulnerability {
        serde_json::from_str(json).expect("record")
    }

    fn pkg(eco: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            ecosystem: eco,
            name: name.into(),
            source: None,
            version: version.into(),
            release: None,
        }
    }

    #[test]
    fn ranges_follow_the_osv_evaluation() {
        let v = vuln(
            r#"{"id":"TEST-1","affected":[{"package":{"ecosystem":"crates.io","name":"c"},
            "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"},{"introduced":"2.0.0"},{"last_affected":"2.1.0"}]}]}]}"#,
        );
        for (version, hit) in [
            ("0.1.0", true),
            ("1.1.9", true),
            ("1.2.0", false),
            ("1.9.0", false),
            ("2.0.0", true),
            ("2.1.0", true),
            ("2.1.1", false),
            ("not-a-version", false),
        ] {
            assert_eq!(
                v.affects(&pkg(Ecosystem::CratesIo, "c", version)).is_some(),
                hit,
                "{version}"
            );
        }
        assert!(v.affects(&pkg(Ecosystem::Npm, "c", "1.0.0")).is_none());
    }

    #[test]
    fn debian_ranges_use_dpkg_order_and_source_names() {
        let v = vuln(
            r#"{"id":"TEST-2","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]}]}"#,
        );
        let mut p = pkg(Ecosystem::Debian, "libssl3", "3.0.11-1~deb12u1");
        assert!(v.affects(&p).is_none(), "binary name alone does not match");
        p.source = Some("openssl".into());
        assert!(v.affects(&p).is_some());
        p.version = "3.0.11-1~deb12u2".into();
        assert!(v.affects(&p).is_none());
        p.version = "3.0.11-1".into();
        assert!(v.affects(&p).is_none(), "~ sorts before the release");
        p.version = "3.0.11-1~deb12u1".into();
        p.release = Some("11".into());
        assert!(
            v.affects(&p).is_none(),
            "a Debian 12 record is not about Debian 11"
        );
        p.release = Some("12".into());
        assert!(v.affects(&p).is_some());
    }

    #[test]
    fn versions_lists_and_withdrawn_records() {
        let mut v = vuln(
            r#"{"id":"TEST-3","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}]}"#,
        );
        assert!(v.affects(&pkg(Ecosystem::Npm, "x", "1.0.0")).is_some());
        assert!(v.affects(&pkg(Ecosystem::Npm, "x", "1.0.1")).is_none());
        v.withdrawn = Some("2024-01-01T00:00:00Z".into());
        assert!(v.affects(&pkg(Ecosystem::Npm, "x", "1.0.0")).is_none());
    }

    #[test]
    fn severity_from_labels_and_cvss() {
        let labelled = vuln(r#"{"id":"A","database_specific":{"severity":"MODERATE"}}"#);
        assert_eq!(labelled.severity_for(None), FindingSeverity::Medium);
        let scored = vuln(
            r#"{"id":"B","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}"#,
        );
        assert_eq!(scored.severity_for(None), FindingSeverity::Critical);
        assert_eq!(
            vuln(r#"{"id":"C"}"#).severity_for(None),
            FindingSeverity::Undefined
        );
    }

    /// Scores from the CVSS v3.1 specification's examples / NVD's calculator.
    #[test]
    fn cvss3_scores() {
        for (v, want) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
        ] {
            assert_eq!(cvss3_base_score(v), Some(want), "{v}");
        }
        assert_eq!(cvss3_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P"), None);
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:X"), None);
    }
}
