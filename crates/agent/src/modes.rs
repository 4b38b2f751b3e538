//! File modes of secrets at rest: the server's data directory and the agent's state
//! directory are owner-only (0700 directories, 0600 files).
//!
//! Two layers: the process sets its umask to 077 when it starts ([`restrict_umask`]), so
//! everything any crate creates afterwards (SQLite's database, -wal and -shm, registry blobs,
//! keys) is owner-only whatever the invoking shell's umask was; and at start
//! [`tighten_tree`] narrows whatever an older version or a user left wider, warning by name.
//! [`write_private`] also sets 0600 explicitly, for files written before or without it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a directory holding secrets.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a file holding secrets.
pub const FILE_MODE: u32 = 0o600;
/// At most this many files are named one by one when tightening; the rest are counted.
const NAMED_WARNINGS: usize = 20;

/// Sets the process umask to 077 so every file and directory created from now on is
/// owner-only. Returns the previous umask.
pub fn restrict_umask() -> u32 {
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    old.bits() as u32
}

/// Writes `bytes` to `path` atomically (temporary file, then rename) with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-write");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)?;
    // Also when the temporary file already existed with a wider mode.
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates `dir` (and parents) if missing and makes it 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
}

/// What [`tighten_tree`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tightened {
    /// Paths whose mode was narrowed.
    pub paths: Vec<PathBuf>,
}

/// Narrows every directory under `root` (and `root`) to 0700 and every file to 0600 when
/// group or others had any access; logs a warning naming each (up to a limit). Symbolic
/// links are not followed. Missing `root` is not an error.
pub fn tighten_tree(root: &Path) -> std::io::Result<Tightened> {
    let mut out = Tightened::default();
    if !root.exists() {
        return Ok(out);
    }
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        let wanted = if meta.is_dir() {
            DIR_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & wanted))?;
            if out.paths.len() < NAMED_WARNINGS {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    now = format!("{:o}", mode & wanted),
                    "A secret was readable by others; narrowed its mode."
                );
            }
            out.paths.push(path.clone());
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    if out.paths.len() > NAMED_WARNINGS {
        tracing::warn!(
            root = %root.display(),
            count = out.paths.len(),
            "Narrowed the modes of more files than were named."
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn tightening_narrows_wide_files_and_directories_and_keeps_narrow_ones() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("blobs")).expect("mkdir");
        std::fs::write(root.join("state.db"), "x").expect("write");
        std::fs::write(root.join("blobs/b"), "x").expect("write");
        std::fs::write(root.join("ok"), "x").expect("write");
        for (p, m) in [
            ("", 0o755),
            ("blobs", 0o775),
            ("state.db", 0o644),
            ("blobs/b", 0o640),
            ("ok", 0o600),
        ] {
            std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(m))
                .expect("chmod");
        }
        let t = tighten_tree(&root).expect("tighten");
        assert_eq!(t.paths.len(), 4);
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("blobs")), 0o700);
        assert_eq!(mode(&root.join("state.db")), 0o600);
        assert_eq!(mode(&root.join("blobs/b")), 0o600);
        assert_eq!(mode(&root.join("ok")), 0o600);
        assert!(tighten_tree(&root).expect("again").paths.is_empty());
    }

    #[test]
    fn private_writes_are_owner_only_even_over_a_wide_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("key");
        std::fs::write(&p, "old").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_private(&p, b"new").expect("write");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "new");
    }

    #[test]
    fn a_missing_root_is_nothing_to_tighten() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(tighten_tree(&dir.path().join("nope"))
            .expect("ok")
            .paths
            .is_empty());
    }
}
