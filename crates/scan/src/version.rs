//! Version ordering, one comparator per ecosystem: Debian's dpkg rules, Alpine's apk
//! rules, rpm's `rpmvercmp` (Red Hat, Rocky Linux, AlmaLinux), PEP 440 (PyPI) and SemVer
//! (crates.io, npm, Go). A version a comparator cannot read is `None`, so a range over it
//! is never guessed.

use std::cmp::Ordering;

mod pep440;
mod rpm;

pub use pep440::pep440_compare;
pub use rpm::{rpm_compare, rpmvercmp};

/// The ecosystems whose packages the scanner inventories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    /// Debian packages (dpkg), named in OSV by their source package.
    Debian,
    /// Alpine packages (apk), named in OSV by their origin package.
    Alpine,
    /// Rust crates (Cargo.lock).
    CratesIo,
    /// npm packages (package-lock.json).
    Npm,
    /// Red Hat Enterprise Linux packages (rpm database).
    RedHat,
    /// Rocky Linux packages (rpm database).
    RockyLinux,
    /// AlmaLinux packages (rpm database).
    AlmaLinux,
    /// Python packages (site-packages metadata), by their PEP 503 normalised names.
    PyPI,
    /// Go modules (the build info Go binaries embed), and `stdlib` for the toolchain.
    Go,
}

impl Ecosystem {
    /// The OSV ecosystem name, without a release suffix (`Debian:12` is `Debian`).
    pub fn osv_name(self) -> &'static str {
        match self {
            Self::Debian => "Debian",
            Self::Alpine => "Alpine",
            Self::CratesIo => "crates.io",
            Self::Npm => "npm",
            Self::RedHat => "Red Hat",
            Self::RockyLinux => "Rocky Linux",
            Self::AlmaLinux => "AlmaLinux",
            Self::PyPI => "PyPI",
            Self::Go => "Go",
        }
    }

    /// A package name as this ecosystem compares names: PyPI's PEP 503 form (lower
    /// case, runs of `-`, `_`, `.` as one `-`); others as they are.
    pub fn normalize_name(self, name: &str) -> String {
        if self != Self::PyPI {
            return name.to_owned();
        }
        let mut out = String::with_capacity(name.len());
        let mut sep = false;
        for c in name.chars() {
            if matches!(c, '-' | '_' | '.') {
                sep = true;
                continue;
            }
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    /// The ecosystem an OSV `affected[].package.ecosystem` names, release suffix ignored.
    pub fn from_osv(name: &str) -> Option<Self> {
        match name.split(':').next().unwrap_or(name) {
            "Debian" => Some(Self::Debian),
            "Alpine" => Some(Self::Alpine),
            "crates.io" => Some(Self::CratesIo),
            "npm" => Some(Self::Npm),
            "Red Hat" => Some(Self::RedHat),
            "Rocky Linux" => Some(Self::RockyLinux),
            "AlmaLinux" => Some(Self::AlmaLinux),
            "PyPI" => Some(Self::PyPI),
            "Go" => Some(Self::Go),
            _ => None,
        }
    }

    /// Orders two versions of this ecosystem, or `None` when either is unreadable.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Self::Debian => Some(dpkg_compare(a, b)),
            Self::Alpine => apk_compare(a, b),
            Self::CratesIo | Self::Npm => semver_compare(a, b),
            Self::RedHat | Self::RockyLinux | Self::AlmaLinux => Some(rpm_compare(a, b)),
            Self::PyPI => pep440_compare(a, b),
            // Go module versions are SemVer with a `v` OSV leaves off.
            Self::Go => semver_compare(
                a.strip_prefix('v').unwrap_or(a),
                b.strip_prefix('v').unwrap_or(b),
            ),
        }
    }
}

/// Debian Policy 5.6.12: `[epoch:]upstream[-revision]`, compared part by part.
pub fn dpkg_compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = dpkg_split(a);
    let (eb, ub, rb) = dpkg_split(b);
    ea.cmp(&eb)
        .then_with(|| dpkg_part(ua, ub))
        .then_with(|| dpkg_part(ra, rb))
}

/// Epoch (missing = 0), upstream version and revision (missing = "0", which compares
/// equal to an empty one).
fn dpkg_split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((up, rev)) => (epoch, up, rev),
        None => (epoch, rest, ""),
    }
}

/// A non-digit character's weight: `~` before the end of the part, the end before
/// letters, letters before everything else.
fn dpkg_weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn dpkg_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // The non-digit run, character by character.
        while a.first().is_some_and(|c| !c.is_ascii_digit())
            || b.first().is_some_and(|c| !c.is_ascii_digit())
        {
            let (wa, wb) = (
                dpkg_weight(a.first().copied()),
                dpkg_weight(b.first().copied()),
            );
            if wa != wb {
                return wa.cmp(&wb);
            }
            a = a.get(1..).unwrap_or_default();
            b = b.get(1..).unwrap_or_default();
        }
        // The digit run, numerically (any length: compared as trimmed strings).
        let (da, ra) = digit_run(a);
        let (db, rb) = digit_run(b);
        let ord = numeric_cmp(da, db);
        if ord != Ordering::Equal {
            return ord;
        }
        (a, b) = (ra, rb);
    }
    Ordering::Equal
}

fn digit_run(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    s.split_at(n)
}

/// Compares two runs of ASCII digits as numbers of any size.
fn numeric_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let (a, b) = (&a[trim(a)..], &b[trim(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// apk-tools' ordering: dotted numbers, an optional letter, `_suffix[N]`s, then `-rN`.
pub fn apk_compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (ApkVersion::parse(a)?, ApkVersion::parse(b)?);
    Some(a.cmp_to(&b))
}

struct ApkVersion<'a> {
    numbers: Vec<&'a [u8]>,
    letter: Option<u8>,
    suffixes: Vec<(u8, &'a [u8])>,
    revision: &'a [u8],
}

/// Suffix ranks; a version without a suffix ranks between `_rc` and `_cvs`.
const APK_SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
const APK_NO_SUFFIX: u8 = 4;

impl<'a> ApkVersion<'a> {
    fn parse(v: &'a str) -> Option<Self> {
        let (main, revision) = match v.rsplit_once("-r") {
            Some((m, r)) if !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()) => {
                (m, r.as_bytes())
            }
            _ => (v, &b""[..]),
        };
        let mut parts = main.split('_');
        let head = parts.next()?.as_bytes();
        let (head, letter) = match head.last() {
            Some(&c) if c.is_ascii_lowercase() => (&head[..head.len() - 1], Some(c)),
            _ => (head, None),
        };
        let numbers: Vec<&[u8]> = head.split(|&c| c == b'.').collect();
        if numbers
            .iter()
            .any(|n| n.is_empty() || !n.iter().all(u8::is_ascii_digit))
        {
            return None;
        }
        let mut suffixes = Vec::new();
        for s in parts {
            let name_len = s.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (name, num) = s.split_at(name_len);
            let rank = APK_SUFFIXES.iter().position(|k| *k == name)?;
            // Ranks after "none" shift by one so "none" sits between rc and cvs.
            let rank = u8::try_from(rank).ok()?;
            let rank = if rank >= APK_NO_SUFFIX {
                rank + 1
            } else {
                rank
            };
            if !num.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            suffixes.push((rank, num.as_bytes()));
        }
        Some(Self {
            numbers,
            letter,
            suffixes,
            revision,
        })
    }

    fn cmp_to(&self, other: &Self) -> Ordering {
        for (i, (a, b)) in self.numbers.iter().zip(&other.numbers).enumerate() {
            // Past the first, a component with a leading zero is a decimal fraction.
            let ord = if i > 0 && (a.first() == Some(&b'0') || b.first() == Some(&b'0')) {
                a.cmp(b)
            } else {
                numeric_cmp(a, b)
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        self.numbers
            .len()
            .cmp(&other.numbers.len())
            .then_with(|| self.letter.cmp(&other.letter))
            .then_with(|| {
                let n = self.suffixes.len().max(other.suffixes.len());
                for i in 0..n {
                    let none = (APK_NO_SUFFIX, &b""[..]);
                    let (ra, na) = self.suffixes.get(i).copied().unwrap_or(none);
                    let (rb, nb) = other.suffixes.get(i).copied().unwrap_or(none);
                    let ord = ra.cmp(&rb).then_with(|| numeric_cmp(na, nb));
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                Ordering::Equal
            })
            .then_with(|| numeric_cmp(self.revision, other.revision))
    }
}

/// SemVer 2.0 (build metadata ignored); npm's optional `v`/`=` prefix is accepted.
pub fn semver_compare(a: &str, b: &str) -> Option<Ordering> {
    let parse = |v: &str| semver::Version::parse(v.trim().trim_start_matches(['v', '='])).ok();
    let (a, b) = (parse(a)?, parse(b)?);
    Some(a.cmp_precedence(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// Debian Policy 5.6.12 and dpkg's own test cases.
    #[test]
    fn dpkg_ordering() {
        let table = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-0", Equal),
            ("1:1.0", "2.0", Greater),
            ("0:1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.2.3-1", "1.2.10-1", Less),
            ("2.36.1-8+deb11u1", "2.36.1-8+deb11u2", Less),
            ("1.1.1n-0+deb11u3", "1.1.1n-0+deb11u5", Less),
            ("7.74.0-1.3+deb11u7", "7.74.0-1.3+deb11u10", Less),
            ("1.0-1", "1.0-1~bpo1", Greater),
            ("00010", "9", Greater),
            ("1.2-3-4", "1.2-3-5", Less),
            (
                "99999999999999999999999",
                "99999999999999999999998",
                Greater,
            ),
        ];
        for (a, b, want) in table {
            assert_eq!(dpkg_compare(a, b), want, "{a} vs {b}");
            assert_eq!(dpkg_compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// apk-tools' documented suffix order and test vectors.
    #[test]
    fn apk_ordering() {
        let table = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0_alpha", "1.0", Less),
            ("1.0_alpha1", "1.0_alpha2", Less),
            ("1.0_beta", "1.0_alpha", Greater),
            ("1.0_pre1", "1.0_rc1", Less),
            ("1.0_rc1", "1.0", Less),
            ("1.0", "1.0_cvs", Less),
            ("1.0_p1", "1.0", Greater),
            ("1.0_git", "1.0_p", Less),
            ("1.0-r1", "1.0", Greater),
            ("1.0-r10", "1.0-r9", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0b", Less),
            ("1.0.1", "1.0a", Greater),
            ("3.0.8-r0", "3.0.10-r0", Less),
            ("1.01", "1.1", Less),
            ("2.10", "2.9", Greater),
        ];
        for (a, b, want) in table {
            assert_eq!(apk_compare(a, b), Some(want), "{a} vs {b}");
            assert_eq!(apk_compare(b, a), Some(want.reverse()), "{b} vs {a}");
        }
        assert_eq!(apk_compare("1.0_bogus", "1.0"), None);
        assert_eq!(apk_compare("", "1.0"), None);
    }

    /// semver.org §11.
    #[test]
    fn semver_ordering() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(semver_compare(w[0], w[1]), Some(Less), "{w:?}");
        }
        assert_eq!(semver_compare("1.0.0+build", "1.0.0"), Some(Equal));
        assert_eq!(semver_compare("v1.2.3", "1.2.3"), Some(Equal));
        assert_eq!(semver_compare("1.2", "1.2.0"), None);
    }
}
