//! rpm's package database: `rpmdb.sqlite` (rpm ≥ 4.16: RHEL/Rocky/AlmaLinux 9, Fedora),
//! whose `Packages` table holds one rpm header blob per installed package. The older
//! BerkeleyDB `Packages` file (EL 8 and before) is not read: the scan says so in a note.

use super::Package;
use crate::version::Ecosystem;

/// Paths of the sqlite rpm database.
pub const SQLITE_PATHS: &[&str] = &[
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];
/// Paths of the BerkeleyDB rpm database, reported but not read.
pub const BDB_PATHS: &[&str] = &["var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages"];

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_SOURCERPM: u32 = 1044;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;
/// More index entries than any real header has.
const MAX_ENTRIES: usize = 1 << 16;

/// The packages of an `rpmdb.sqlite` file's bytes (written to a private temporary file
/// and opened read-only and immutable: sqlite cannot read from memory without an extra
/// feature).
pub fn rpmdb_sqlite(bytes: &[u8], ecosystem: Ecosystem) -> Result<Vec<Package>, String> {
    let mut file = tempfile::NamedTempFile::new().map_err(|e| format!("temporary file: {e}"))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| format!("temporary file: {e}"))?;
    let uri = format!("file:{}?immutable=1", file.path().display());
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let conn = rusqlite::Connection::open_with_flags(uri, flags)
        .map_err(|e| format!("not an sqlite database: {e}"))?;
    let mut stmt = conn
        .prepare("SELECT blob FROM Packages")
        .map_err(|e| format!("no Packages table: {e}"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(|e| format!("reading Packages: {e}"))?;
    let mut out = Vec::new();
    for blob in rows {
        let blob = blob.map_err(|e| format!("reading Packages: {e}"))?;
        if let Some(p) = header_package(&blob, ecosystem) {
            out.push(p);
        }
    }
    Ok(out)
}

/// One rpm header (`il`, `dl`, `il` index entries, `dl` bytes of data) as a package;
/// `None` for a header without a name and version (a gpg-pubkey has one; it is kept).
pub fn header_package(blob: &[u8], ecosystem: Ecosystem) -> Option<Package> {
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(blob.get(at..at + 4)?.try_into().ok()?))
    };
    let il = usize::try_from(be(0)?).ok()?;
    let dl = usize::try_from(be(4)?).ok()?;
    if il > MAX_ENTRIES {
        return None;
    }
    let data_start = 8 + il.checked_mul(16)?;
    let data = blob.get(data_start..data_start.checked_add(dl)?)?;
    let (mut name, mut version, mut release, mut epoch, mut source) =
        (None, None, None, None, None);
    for i in 0..il {
        let at = 8 + i * 16;
        let (tag, kind, offset) = (be(at)?, be(at + 4)?, usize::try_from(be(at + 8)?).ok()?);
        let string = || -> Option<String> {
            if kind != TYPE_STRING && kind != TYPE_I18NSTRING {
                return None;
            }
            let rest = data.get(offset..)?;
            let end = rest.iter().position(|b| *b == 0)?;
            String::from_utf8(rest[..end].to_vec()).ok()
        };
        match tag {
            TAG_NAME => name = string(),
            TAG_VERSION => version = string(),
            TAG_RELEASE => release = string(),
            TAG_SOURCERPM => source = string(),
            TAG_EPOCH if kind == TYPE_INT32 => {
                epoch = Some(u32::from_be_bytes(
                    data.get(offset..offset + 4)?.try_into().ok()?,
                ));
            }
            _ => {}
        }
    }
    let (name, version) = (name?, version?);
    let mut evr = match epoch {
        Some(e) if e > 0 => format!("{e}:{version}"),
        _ => version,
    };
    if let Some(r) = release {
        evr = format!("{evr}-{r}");
    }
    Some(Package {
        ecosystem,
        source: source
            .as_deref()
            .and_then(source_name)
            .filter(|s| *s != name),
        name,
        version: evr,
        release: None,
    })
}

/// The source package's name of a `SOURCERPM` (`openssl-3.0.7-24.el9.src.rpm` →
/// `openssl`).
fn source_name(srpm: &str) -> Option<String> {
    let base = srpm
        .strip_suffix(".src.rpm")
        .or_else(|| srpm.strip_suffix(".nosrc.rpm"))?;
    let mut parts = base.rsplitn(3, '-');
    let (_release, _version, name) = (parts.next()?, parts.next()?, parts.next()?);
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header with string `tags` (and an INT32 epoch when given).
    pub(crate) fn header(tags: &[(u32, &str)], epoch: Option<u32>) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, value) in tags {
            index.push((*tag, TYPE_STRING, data.len()));
            data.extend_from_slice(value.as_bytes());
            data.push(0);
        }
        if let Some(e) = epoch {
            while data.len() % 4 != 0 {
                data.push(0);
            }
            index.push((TAG_EPOCH, TYPE_INT32, data.len()));
            data.extend_from_slice(&e.to_be_bytes());
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(index.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        for (tag, kind, offset) in index {
            out.extend_from_slice(&tag.to_be_bytes());
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&(offset as u32).to_be_bytes());
            out.extend_from_slice(&1u32.to_be_bytes());
        }
        out.extend_from_slice(&data);
        out
    }

    /// An `rpmdb.sqlite` holding `headers`.
    pub(crate) fn rpmdb(headers: &[Vec<u8>]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("rpmdb.sqlite");
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
        )
        .expect("schema");
        for h in headers {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [h])
                .expect("insert");
        }
        drop(conn);
        std::fs::read(path).expect("read")
    }

    #[test]
    fn headers_give_name_epoch_version_release_and_source() {
        let h = header(
            &[
                (TAG_NAME, "openssl-libs"),
                (TAG_VERSION, "3.0.7"),
                (TAG_RELEASE, "24.el9"),
                (TAG_SOURCERPM, "openssl-3.0.7-24.el9.src.rpm"),
            ],
            Some(1),
        );
        let p = header_package(&h, Ecosystem::RockyLinux).expect("package");
        assert_eq!(p.name, "openssl-libs");
        assert_eq!(p.version, "1:3.0.7-24.el9");
        assert_eq!(p.source.as_deref(), Some("openssl"));
    }

    #[test]
    fn the_sqlite_database_lists_every_package() {
        let db = rpmdb(&[
            header(
                &[
                    (TAG_NAME, "bash"),
                    (TAG_VERSION, "5.1.8"),
                    (TAG_RELEASE, "6.el9"),
                ],
                None,
            ),
            header(
                &[
                    (TAG_NAME, "zlib"),
                    (TAG_VERSION, "1.2.11"),
                    (TAG_RELEASE, "40.el9"),
                ],
                None,
            ),
        ]);
        let mut got = rpmdb_sqlite(&db, Ecosystem::AlmaLinux).expect("read");
        got.sort();
        let names: Vec<(String, String)> = got.into_iter().map(|p| (p.name, p.version)).collect();
        assert_eq!(
            names,
            [
                ("bash".into(), "5.1.8-6.el9".into()),
                ("zlib".into(), "1.2.11-40.el9".into())
            ]
        );
    }

    #[test]
    fn truncated_and_garbage_headers_and_databases_are_refused() {
        let h = header(&[(TAG_NAME, "bash"), (TAG_VERSION, "5")], None);
        for cut in 0..h.len() {
            let _ = header_package(&h[..cut], Ecosystem::RedHat);
        }
        assert!(header_package(&[0xff; 16], Ecosystem::RedHat).is_none());
        assert!(rpmdb_sqlite(b"not a database", Ecosystem::RedHat).is_err());
    }
}
