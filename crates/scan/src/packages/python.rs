//! Installed Python distributions: `*.dist-info/METADATA` (wheels) and
//! `*.egg-info/PKG-INFO` (or a bare `*.egg-info` file) under `site-packages` or
//! `dist-packages`, whose `Name:` and `Version:` headers name the distribution.

use super::Package;
use crate::version::Ecosystem;

/// Whether `path` is the metadata of an installed Python distribution.
pub fn is_metadata(path: &str) -> bool {
    let in_packages = path.contains("/site-packages/") || path.contains("/dist-packages/");
    in_packages
        && (path.ends_with(".dist-info/METADATA")
            || path.ends_with(".egg-info/PKG-INFO")
            || path.ends_with(".egg-info"))
}

/// The distribution a metadata file names (its headers end at the first blank line).
pub fn metadata(text: &str) -> Vec<Package> {
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert_with(|| v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert_with(|| v.trim().to_owned());
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => vec![Package {
            ecosystem: Ecosystem::PyPI,
            name: Ecosystem::PyPI.normalize_name(&n),
            source: None,
            version: v,
            release: None,
        }],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_the_distribution_in_pep_503_form() {
        let text = "Metadata-Version: 2.1\nName: PyYAML\nVersion: 5.3.1\nSummary: x\n\nName: ignored-body\n";
        let p = metadata(text);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("pyyaml", "5.3.1")
        );
        assert_eq!(
            metadata("Name: Foo__Bar.baz\nVersion: 1")[0].name,
            "foo-bar-baz"
        );
        assert!(metadata("Name: x\n").is_empty());
        assert!(metadata("garbage").is_empty());
    }

    #[test]
    fn only_site_packages_metadata_is_read() {
        assert!(is_metadata(
            "usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA"
        ));
        assert!(is_metadata(
            "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO"
        ));
        assert!(is_metadata(
            "usr/lib/python3/dist-packages/six-1.16.0.egg-info"
        ));
        assert!(!is_metadata("home/me/project/foo.dist-info/METADATA"));
        assert!(!is_metadata(
            "usr/lib/python3.11/site-packages/requests/__init__.py"
        ));
    }
}
