//! Feeds arbitrary bytes to the scanner's untrusted-input parsers: as a layer (plain and
//! gzip-wrapped) under small limits, and as each package database and lockfile format.
//! Must never panic; whatever a layer yields must respect the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let limits = scan::Limits {
        max_total_bytes: 1 << 20,
        max_file_bytes: 64 << 10,
        max_kept_bytes: 128 << 10,
        max_kept_files: 16,
        max_entries: 1000,
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(data);
    let gzipped = gz.finish().unwrap_or_default();
    for layer in [data, &gzipped[..]] {
        let mut fs = scan::layers::Filesystem::new();
        if fs.apply_layer(layer, &limits, "fuzz").is_ok() {
            assert!(fs.files().len() <= limits.max_kept_files);
            assert!(fs.files().values().all(|b| b.len() as u64 <= limits.max_file_bytes));
            assert!(fs.files().keys().all(|p| scan::layers::wanted(p)));
            let _ = scan::packages::inventory(fs.files());
        }
    }
    // Binary formats: an rpm header blob, an executable's Go build info, an rpm sqlite
    // database.
    for eco in [scan::Ecosystem::RedHat, scan::Ecosystem::RockyLinux] {
        let _ = scan::packages::rpm::header_package(data, eco);
    }
    if let Some(Ok(info)) = scan::packages::gobinary::extract(data) {
        let _ = scan::packages::gobinary::packages(&String::from_utf8_lossy(&info));
    }
    let _ = scan::packages::rpm::rpmdb_sqlite(data, scan::Ecosystem::AlmaLinux);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = scan::packages::dpkg_status(text);
        let _ = scan::packages::apk_installed(text);
        let _ = scan::packages::cargo_lock(text);
        let _ = scan::packages::package_lock(text);
        let _ = scan::packages::python::metadata(text);
        let _ = scan::packages::gobinary::packages(text);
        let mut words = text.split_whitespace();
        if let (Some(a), Some(b)) = (words.next(), words.next()) {
            let _ = scan::version::dpkg_compare(a, b);
            let _ = scan::version::apk_compare(a, b);
            let _ = scan::version::semver_compare(a, b);
            assert_eq!(scan::version::dpkg_compare(a, b), scan::version::dpkg_compare(b, a).reverse());
            assert_eq!(scan::version::rpm_compare(a, b), scan::version::rpm_compare(b, a).reverse());
            assert_eq!(
                scan::version::pep440_compare(a, b),
                scan::version::pep440_compare(b, a).map(std::cmp::Ordering::reverse)
            );
        }
        let _ = scan::osv::cvss3_base_score(text);
    }
});
