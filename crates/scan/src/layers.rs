//! Reading an image's filesystem from its layers, lowest first: each layer is a tar
//! stream, gzip-compressed or not; whiteouts (`.wh.NAME`) delete a lower layer's path
//! and opaque markers (`.wh..wh..opq`) empty a lower layer's directory. Only the files
//! the inventory reads are kept ([`wanted`]), each capped in size, so memory stays
//! bounded whatever the image holds. Links are never followed, so a symlink cannot lead
//! the scanner outside the image.

use crate::{Limits, ScanError};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// Whether `path` is an os-release file (which names the OS release packages belong to).
pub fn is_os_release(path: &str) -> bool {
    path == "etc/os-release" || path == "usr/lib/os-release"
}

/// Paths (relative, no leading `/`) the package inventory reads.
pub fn wanted(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    is_os_release(path)
        || path == "var/lib/dpkg/status"
        || path == "lib/apk/db/installed"
        || (path.starts_with("var/lib/dpkg/status.d/") && !base.ends_with(".md5sums"))
        || base == "Cargo.lock"
        || base == "package-lock.json"
        || crate::packages::rpm::SQLITE_PATHS.contains(&path)
        || crate::packages::rpm::BDB_PATHS.contains(&path)
        || crate::packages::python::is_metadata(path)
        || base == crate::packages::gobinary::VIRTUAL_NAME
}

/// The wanted files of an image, by path.
#[derive(Debug, Default)]
pub struct Filesystem {
    files: BTreeMap<String, Vec<u8>>,
    /// Bytes decompressed so far, across layers (the zip-bomb bound).
    read: u64,
    entries: u64,
}

/// What one layer changes: applied to the lower layers only when the layer has been read
/// whole, since a whiteout applies to lower layers whatever its place in the tar.
#[derive(Default)]
struct LayerChanges {
    files: BTreeMap<String, Vec<u8>>,
    /// Paths removed with everything under them (whiteouts, and entries that replace a
    /// wanted file with something else).
    removed: Vec<String>,
    /// Directories whose lower contents are hidden.
    opaque: Vec<String>,
}

/// Turns a tar path into a clean relative path, or `None` for one that climbs out
/// (`..`), which no honest layer holds.
fn clean(path: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(path).ok()?;
    let mut out: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => out.push(p),
        }
    }
    Some(out.join("/"))
}

/// Counts bytes through a reader and fails past a cap.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = n as u64;
        if n64 > self.left {
            return Err(std::io::Error::other(CAP_EXCEEDED));
        }
        self.left -= n64;
        Ok(n)
    }
}

const CAP_EXCEEDED: &str = "the image's layers decompress to more than the scan limit";

impl Filesystem {
    /// An empty filesystem.
    pub fn new() -> Self {
        Self::default()
    }

    /// The wanted files, by path.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// Applies one layer (`layer` is its blob: a tar, gzip-compressed or not).
    pub fn apply_layer(
        &mut self,
        layer: impl Read,
        limits: &Limits,
        name: &str,
    ) -> Result<(), ScanError> {
        let mut buffered = BufReader::new(layer);
        let head = buffered
            .fill_buf()
            .map_err(|e| ScanError::Layer(name.to_owned(), e.to_string()))?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let zstd = head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        if zstd {
            return Err(ScanError::Unsupported(format!(
                "layer {name} is zstd-compressed, which the scanner does not read"
            )));
        }
        let left = limits.max_total_bytes.saturating_sub(self.read);
        let decoded: Box<dyn Read> = if gzip {
            Box::new(flate2::read::GzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut capped = Capped {
            inner: decoded,
            left,
        };
        let changes = self.read_tar(&mut capped, limits, name);
        self.read += left - capped.left;
        let changes = changes?;
        self.apply(changes, limits)
    }

    fn read_tar(
        &mut self,
        stream: &mut impl Read,
        limits: &Limits,
        name: &str,
    ) -> Result<LayerChanges, ScanError> {
        let bad = |e: std::io::Error| {
            if e.to_string().contains(CAP_EXCEEDED) {
                ScanError::Limit(CAP_EXCEEDED.to_owned())
            } else {
                ScanError::Layer(name.to_owned(), format!("not a readable tar archive: {e}"))
            }
        };
        let mut archive = tar::Archive::new(stream);
        let mut changes = LayerChanges::default();
        let mut seen_any = false;
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            seen_any = true;
            self.entries += 1;
            if self.entries > limits.max_entries {
                return Err(ScanError::Limit(format!(
                    "the image has more than {} files",
                    limits.max_entries
                )));
            }
            let raw = entry.path_bytes().into_owned();
            let Some(path) = clean(&raw) else {
                return Err(ScanError::Layer(
                    name.to_owned(),
                    format!(
                        "an entry's path climbs out of the image: {}",
                        String::from_utf8_lossy(&raw)
                    ),
                ));
            };
            let (dir, base) = match path.rsplit_once('/') {
                Some((d, b)) => (d.to_owned(), b),
                None => (String::new(), path.as_str()),
            };
            if base == ".wh..wh..opq" {
                changes.opaque.push(dir);
                continue;
            }
            if let Some(hidden) = base.strip_prefix(".wh.") {
                changes.removed.push(join(&dir, hidden));
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_file() && wanted(&path) {
                let size = entry.header().size().map_err(bad)?;
                if size > limits.max_file_bytes {
                    return Err(ScanError::Limit(format!(
                        "{path} is {size} bytes, more than the scan limit of {}",
                        limits.max_file_bytes
                    )));
                }
                let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                (&mut entry)
                    .take(limits.max_file_bytes)
                    .read_to_end(&mut body)
                    .map_err(bad)?;
                self.check_kept(&changes, body.len(), limits)?;
                changes.removed.push(path.clone());
                changes.files.insert(path, body);
            } else if kind.is_file() && is_executable(&entry) {
                // A Go binary keeps only its build info (a virtual file under its path).
                let size = entry.header().size().map_err(bad)?;
                changes.files.remove(&path);
                changes.removed.push(path.clone());
                if size <= limits.max_file_bytes {
                    let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                    (&mut entry)
                        .take(limits.max_file_bytes)
                        .read_to_end(&mut body)
                        .map_err(bad)?;
                    if let Some(info) = crate::packages::gobinary::extract(&body) {
                        let kept = match info {
                            Ok(info) => info,
                            // Kept as a note the inventory reports.
                            Err(note) => format!("!{note}").into_bytes(),
                        };
                        self.check_kept(&changes, kept.len(), limits)?;
                        changes
                            .files
                            .insert(join(&path, crate::packages::gobinary::VIRTUAL_NAME), kept);
                    }
                }
            } else if !kind.is_dir() {
                // Anything else (a link, a device, an unwanted file) replaces what a
                // lower layer had there; links are never followed.
                changes.files.remove(&path);
                changes.removed.push(path);
            }
        }
        if !seen_any {
            // tar accepts an empty stream (and anything that reads as end blocks): a
            // layer with nothing at all in it is still a valid layer.
            tracing::debug!(layer = name, "Empty layer.");
        }
        Ok(changes)
    }

    /// Fails when keeping `more` bytes would pass the kept-bytes cap.
    fn check_kept(
        &self,
        changes: &LayerChanges,
        more: usize,
        limits: &Limits,
    ) -> Result<(), ScanError> {
        let kept: usize = self
            .files
            .values()
            .chain(changes.files.values())
            .map(Vec::len)
            .sum();
        if (kept + more) as u64 > limits.max_kept_bytes {
            return Err(ScanError::Limit(format!(
                "the image's package databases and lockfiles hold more than {} bytes",
                limits.max_kept_bytes
            )));
        }
        if self.files.len() + changes.files.len() >= limits.max_kept_files {
            return Err(ScanError::Limit(format!(
                "the image holds more than {} package databases and lockfiles",
                limits.max_kept_files
            )));
        }
        Ok(())
    }

    fn apply(&mut self, changes: LayerChanges, _limits: &Limits) -> Result<(), ScanError> {
        for dir in &changes.opaque {
            self.files.retain(|p, _| !under(p, dir));
        }
        for gone in &changes.removed {
            self.files.retain(|p, _| p != gone && !under(p, gone));
        }
        self.files.extend(changes.files);
        Ok(())
    }
}

/// Whether a tar entry has an execute bit (the files Go build info is looked for in).
fn is_executable<R: Read>(entry: &tar::Entry<'_, R>) -> bool {
    entry.header().mode().is_ok_and(|m| m & 0o111 != 0)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` lies strictly inside directory `dir` (`""` is the root).
fn under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `(path, Some(body))` files and `(path, None)` symlinks to `/etc/passwd`.
    pub(crate) fn tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in entries {
            let mut h = tar::Header::new_gnu();
            match body {
                Some(body) => {
                    h.set_size(body.len() as u64);
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    b.append_data(&mut h, path, *body).expect("append");
                }
                None => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, path, "/etc/passwd").expect("link");
                }
            }
        }
        b.into_inner().expect("tar")
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("gzip");
        e.finish().expect("gzip")
    }

    fn fs_of(layers: &[Vec<u8>], limits: &Limits) -> Result<Filesystem, ScanError> {
        let mut fs = Filesystem::new();
        for (i, l) in layers.iter().enumerate() {
            fs.apply_layer(&l[..], limits, &format!("layer{i}"))?;
        }
        Ok(fs)
    }

    #[test]
    fn keeps_wanted_files_across_plain_and_gzip_layers() {
        let l0 = tar(&[
            ("var/lib/dpkg/status", Some(b"Package: a\n")),
            ("usr/bin/tool", Some(b"binary")),
        ]);
        let l1 = gzip(&tar(&[("./app/Cargo.lock", Some(b"# lock"))]));
        let fs = fs_of(&[l0, l1], &Limits::default()).expect("scan");
        let paths: Vec<&str> = fs.files().keys().map(String::as_str).collect();
        assert_eq!(paths, ["app/Cargo.lock", "var/lib/dpkg/status"]);
    }

    #[test]
    fn whiteout_removes_a_lower_file_and_opaque_empties_a_directory() {
        let l0 = tar(&[
            ("var/lib/dpkg/status", Some(b"Package: a\n")),
            ("app/Cargo.lock", Some(b"old")),
            ("web/package-lock.json", Some(b"{}")),
        ]);
        // The opaque marker comes after the directory's new file: it still hides only
        // the lower layer's contents.
        let l1 = tar(&[
            ("var/lib/dpkg/.wh.status", Some(b"")),
            ("app/Cargo.lock", Some(b"new")),
            ("app/.wh..wh..opq", Some(b"")),
            ("web/.wh..wh..opq", Some(b"")),
        ]);
        let fs = fs_of(&[l0, l1], &Limits::default()).expect("scan");
        assert_eq!(fs.files().len(), 1);
        assert_eq!(
            fs.files().get("app/Cargo.lock").map(Vec::as_slice),
            Some(&b"new"[..])
        );
    }

    #[test]
    fn a_whited_out_directory_takes_its_files() {
        let l0 = tar(&[("srv/app/Cargo.lock", Some(b"x"))]);
        let l1 = tar(&[("srv/.wh.app", Some(b""))]);
        let fs = fs_of(&[l0, l1], &Limits::default()).expect("scan");
        assert!(fs.files().is_empty());
    }

    #[test]
    fn symlinks_are_not_followed_and_replace_lower_files() {
        let l0 = tar(&[("var/lib/dpkg/status", Some(b"Package: a\n"))]);
        let l1 = tar(&[("var/lib/dpkg/status", None), ("Cargo.lock", None)]);
        let fs = fs_of(&[l0, l1], &Limits::default()).expect("scan");
        assert!(fs.files().is_empty());
    }

    #[test]
    fn a_layer_that_is_not_a_tar_fails_with_a_reason() {
        let err = fs_of(
            &[b"this is not a tarball at all, just text".repeat(20)],
            &Limits::default(),
        )
        .expect_err("not a tar");
        assert!(matches!(err, ScanError::Layer(..)), "{err}");
        let err = fs_of(
            &[gzip(b"garbage inside gzip").repeat(1)],
            &Limits::default(),
        )
        .expect_err("not a tar");
        assert!(matches!(err, ScanError::Layer(..)), "{err}");
        let mut truncated = gzip(&tar(&[("Cargo.lock", Some(&[b'x'; 4096]))]));
        truncated.truncate(truncated.len() / 2);
        assert!(fs_of(&[truncated], &Limits::default()).is_err());
    }

    #[test]
    fn a_zip_bomb_stops_at_the_total_cap() {
        let big = gzip(&tar(&[("blob", Some(&vec![0u8; 4 << 20]))]));
        assert!(big.len() < 64 << 10, "compresses well");
        let limits = Limits {
            max_total_bytes: 1 << 20,
            ..Limits::default()
        };
        let err = fs_of(&[big], &limits).expect_err("cap");
        assert!(matches!(err, ScanError::Limit(_)), "{err}");
    }

    #[test]
    fn an_oversized_package_database_is_refused() {
        let l0 = tar(&[("var/lib/dpkg/status", Some(&vec![b'a'; 2048]))]);
        let limits = Limits {
            max_file_bytes: 1024,
            ..Limits::default()
        };
        assert!(matches!(fs_of(&[l0], &limits), Err(ScanError::Limit(_))));
    }

    #[test]
    fn paths_that_climb_out_are_refused() {
        assert_eq!(clean(b"./a//b/"), Some("a/b".into()));
        assert_eq!(
            clean(b"/var/lib/dpkg/status"),
            Some("var/lib/dpkg/status".into())
        );
        assert_eq!(clean(b"a/../../etc/passwd"), None);
    }
}
