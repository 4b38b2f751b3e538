//! The vulnerability database: OSV records in a SQLite file (owner-only) under the data
//! directory, indexed by (ecosystem, package name). Import is incremental: a record whose
//! id is already stored replaces it. The database's date is the time of its last import.

use crate::osv::Vulnerability;
use crate::version::Ecosystem;
use rusqlite::{params, Connection, OptionalExtension};
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

/// Largest OSV file imported (the biggest real records are a few hundred KiB).
pub const MAX_RECORD_BYTES: u64 = 8 * 1024 * 1024;

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("vulnerability database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file could not be made owner-only.
    #[error("vulnerability database file: {0}")]
    Io(#[from] std::io::Error),
    /// A stored record no longer parses (the file was changed outside Stevedore).
    #[error("vulnerability database record {0} is corrupt: {1}")]
    Corrupt(String, String),
}

/// Why an import source could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The path is neither a folder nor a readable zip.
    #[error("{0}: {1}")]
    Unreadable(String, String),
}

/// What an import did.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Records stored (new or replacing one with the same id).
    pub imported: u64,
    /// Files skipped, each with why.
    pub skipped: Vec<Skipped>,
    /// Records in the database after the import.
    pub total: u64,
    /// The database's date (epoch seconds).
    pub updated_at: i64,
}

/// A file an import skipped.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// The file's name in its source.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// One file of an import: its name and bytes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceFile {
    /// Its name in the source (a path in the folder or zip).
    pub name: String,
    /// Its content.
    pub content: String,
}

/// The database.
pub struct Database {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (creating) the database at `path`, owner-only.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Self::init(conn)
    }

    /// A database in memory (tests).
    pub fn in_memory() -> Result<Self, DbError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, DbError> {
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS vulns (id TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS affected (
                 ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL,
                 PRIMARY KEY (ecosystem, name, id)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS affected_by_id ON affected (id);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Imports `files`; malformed ones are skipped and reported, never abort the rest.
    pub fn import(
        &self,
        files: impl IntoIterator<Item = SourceFile>,
        now: i64,
    ) -> Result<ImportReport, DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut report = ImportReport::default();
        for f in files {
            let v: Vulnerability = match serde_json::from_str(&f.content) {
                Ok(v) => v,
                Err(e) => {
                    report.skipped.push(Skipped {
                        file: f.name,
                        reason: format!("not an OSV record: {e}"),
                    });
                    continue;
                }
            };
            if v.id.is_empty() {
                report.skipped.push(Skipped {
                    file: f.name,
                    reason: "the record has an empty id".into(),
                });
                continue;
            }
            tx.execute("DELETE FROM affected WHERE id = ?1", params![v.id])?;
            tx.execute(
                "INSERT INTO vulns (id, body) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                params![v.id, f.content],
            )?;
            for a in &v.affected {
                let Some(p) = &a.package else { continue };
                let Some(eco) = Ecosystem::from_osv(&p.ecosystem) else {
                    continue;
                };
                tx.execute(
                    "INSERT OR IGNORE INTO affected (ecosystem, name, id) VALUES (?1, ?2, ?3)",
                    params![eco.osv_name(), eco.normalize_name(&p.name), v.id],
                )?;
            }
            report.imported += 1;
        }
        if report.imported > 0 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('updated_at', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![now.to_string()],
            )?;
        }
        tx.commit()?;
        drop(conn);
        report.total = self.count()?;
        report.updated_at = self.updated_at()?.unwrap_or(0);
        Ok(report)
    }

    /// Records stored.
    pub fn count(&self) -> Result<u64, DbError> {
        let n: i64 = self
            .lock()
            .query_row("SELECT COUNT(*) FROM vulns", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The time of the last import that stored something (epoch seconds).
    pub fn updated_at(&self) -> Result<Option<i64>, DbError> {
        let v: Option<String> = self
            .lock()
            .query_row("SELECT value FROM meta WHERE key = 'updated_at'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.and_then(|v| v.parse().ok()))
    }

    /// The records naming package `name` of `eco`.
    pub fn candidates(&self, eco: Ecosystem, name: &str) -> Result<Vec<Vulnerability>, DbError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT v.id, v.body FROM affected a JOIN vulns v ON v.id = a.id
             WHERE a.ecosystem = ?1 AND a.name = ?2 ORDER BY v.id",
        )?;
        let rows = stmt.query_map(params![eco.osv_name(), name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            out.push(serde_json::from_str(&body).map_err(|e| DbError::Corrupt(id, e.to_string()))?);
        }
        Ok(out)
    }
}

/// Reads an import source: a folder (walked for `*.json`) or a zip of OSV JSON files.
/// Files that cannot be read (too big, not UTF-8) are returned as skipped.
pub fn read_source(path: &Path) -> Result<(Vec<SourceFile>, Vec<Skipped>), SourceError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| SourceError::Unreadable(shown.clone(), e.to_string()))?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut skipped_reads = Vec::new();
    let mut take =
        |name: String, size: u64, reader: &mut dyn Read| match read_one(name, size, reader) {
            Ok(f) => files.push(f),
            Err(s) => skipped_reads.push(s),
        };
    if meta.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| SourceError::Unreadable(dir.display().to_string(), e.to_string()))?;
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(std::fs::DirEntry::path);
            for e in entries {
                let p = e.path();
                // symlink_metadata: links are not followed out of the folder.
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if m.is_dir() {
                    stack.push(p);
                } else if m.is_file() && p.extension().is_some_and(|x| x == "json") {
                    let name = p.strip_prefix(path).unwrap_or(&p).display().to_string();
                    match std::fs::File::open(&p) {
                        Ok(mut f) => take(name, m.len(), &mut f),
                        Err(e) => skipped.push(Skipped {
                            file: name,
                            reason: e.to_string(),
                        }),
                    }
                }
            }
        }
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| SourceError::Unreadable(shown.clone(), e.to_string()))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| {
            SourceError::Unreadable(
                shown.clone(),
                format!("neither a folder nor a zip file: {e}"),
            )
        })?;
        for i in 0..zip.len() {
            match zip.by_index(i) {
                Ok(mut entry) => {
                    if !entry.is_file() || !entry.name().ends_with(".json") {
                        continue;
                    }
                    let (name, size) = (entry.name().to_owned(), entry.size());
                    take(name, size, &mut entry);
                }
                Err(e) => skipped.push(Skipped {
                    file: format!("entry {i}"),
                    reason: e.to_string(),
                }),
            }
        }
    }
    skipped.extend(skipped_reads);
    Ok((files, skipped))
}

/// One source file, or why it is skipped.
fn read_one(name: String, size: u64, reader: &mut dyn Read) -> Result<SourceFile, Skipped> {
    if size > MAX_RECORD_BYTES {
        return Err(Skipped {
            file: name,
            reason: format!("larger than {MAX_RECORD_BYTES} bytes"),
        });
    }
    let mut content = String::new();
    match reader.take(MAX_RECORD_BYTES).read_to_string(&mut content) {
        Ok(_) => Ok(SourceFile { name, content }),
        Err(e) => Err(Skipped {
            file: name,
            reason: format!("unreadable: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::Package;

    fn record(id: &str, fixed: &str) -> SourceFile {
        SourceFile {
            name: format!("{id}.json"),
            content: format!(
                r#"{{"id":"{id}","affected":[{{"package":{{"ecosystem":"crates.io","name":"c"}},"ranges":[{{"type":"SEMVER","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
            ),
        }
    }

    #[test]
    fn import_skips_malformed_and_replaces_by_id() {
        let db = Database::in_memory().expect("db");
        let bad = SourceFile {
            name: "bad.json".into(),
            content: "{\"id\": 5".into(),
        };
        let r = db
            .import([record("TEST-1", "1.0.0"), bad], 100)
            .expect("import");
        assert_eq!((r.imported, r.total, r.skipped.len()), (1, 1, 1));
        assert_eq!(r.skipped[0].file, "bad.json");
        let p = Package {
            ecosystem: Ecosystem::CratesIo,
            name: "c".into(),
            source: None,
            version: "1.5.0".into(),
            release: None,
        };
        let hits = |db: &Database| {
            db.candidates(Ecosystem::CratesIo, "c")
                .expect("query")
                .iter()
                .filter(|v| v.affects(&p).is_some())
                .count()
        };
        assert_eq!(hits(&db), 0);
        let r = db
            .import([record("TEST-1", "2.0.0")], 200)
            .expect("reimport");
        assert_eq!((r.imported, r.total, r.updated_at), (1, 1, 200));
        assert_eq!(hits(&db), 1);
    }

    #[test]
    fn reads_folders_and_zips() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("sub")).expect("sub");
        std::fs::write(dir.path().join("sub/a.json"), "{}").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        let (files, skipped) = read_source(dir.path()).expect("folder");
        assert_eq!(files.len(), 1);
        assert!(skipped.is_empty());

        let zpath = dir.path().join("all.zip");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zpath).expect("zip"));
        w.start_file(
            "X-1.json",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .expect("entry");
        std::io::Write::write_all(&mut w, b"{\"id\":\"X-1\"}").expect("write");
        w.finish().expect("finish");
        let (files, _) = read_source(&zpath).expect("zip");
        assert_eq!(files[0].name, "X-1.json");
        assert!(read_source(&dir.path().join("notes.txt")).is_err());
    }
}
