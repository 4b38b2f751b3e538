//! The filesystem backend.
//!
//! Layout under the root directory:
//! - `<algorithm>/<first two hex>/<hex>`: committed blobs (read-only once in place);
//! - `_uploads/<id>`: staged uploads.
//!
//! Commit order (why it is crash-safe): hash check → `fsync` the staged file → `rename`
//! it into place → `fsync` the directory. A crash before the rename leaves only a
//! staged file; after it, a complete, verified blob. Readers only ever open blob paths,
//! so they cannot see a partial write.

use crate::{valid_upload_id, BlobError, BlobRead, BlobReader, BlobStore, BlobStream};
use async_trait::async_trait;
use oci::{Algorithm, ByteRange, Digest, Digester};
use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Size of the copy buffer used while streaming an upload to disk.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Hash state of an upload that this process has been streaming, so commit does not
/// re-read the data. Lost on restart; then commit re-hashes the staged file once.
struct Hashing {
    digester: Digester,
    len: u64,
    busy: bool,
}

/// Blobs in a directory tree.
pub struct FsBlobStore {
    root: PathBuf,
    hashing: Mutex<HashMap<String, Hashing>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map holds only caches of hash state; a poisoned lock still holds valid data.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FsBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        std::fs::create_dir_all(root.join("_uploads"))?;
        Ok(Self {
            root,
            hashing: Mutex::new(HashMap::new()),
        })
    }

    /// The path of a committed blob.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf, BlobError> {
        valid_upload_id(id)?;
        Ok(self.root.join("_uploads").join(id))
    }

    /// Takes the upload's hash state for exclusive use by one writer.
    fn claim(&self, id: &str) -> Result<Option<(Digester, u64)>, BlobError> {
        let mut map = lock(&self.hashing);
        match map.get_mut(id) {
            Some(h) if h.busy => Err(BlobError::UploadBusy(id.to_owned())),
            Some(h) => {
                h.busy = true;
                Ok(Some((h.digester.clone(), h.len)))
            }
            None => {
                map.insert(
                    id.to_owned(),
                    Hashing {
                        digester: Digester::new(Algorithm::Sha256),
                        len: 0,
                        busy: true,
                    },
                );
                Ok(None)
            }
        }
    }

    fn release(&self, id: &str, state: Option<(Digester, u64)>) {
        let mut map = lock(&self.hashing);
        match state {
            Some((digester, len)) => {
                map.insert(
                    id.to_owned(),
                    Hashing {
                        digester,
                        len,
                        busy: false,
                    },
                );
            }
            None => {
                map.remove(id);
            }
        }
    }
}

/// Hashes the first `len` bytes of a file (used when the in-memory state was lost).
async fn hash_file(path: &Path, algorithm: Algorithm, len: u64) -> Result<Digester, BlobError> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut d = Digester::new(algorithm);
    let mut buf = vec![0u8; WRITE_BUFFER];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left.min(WRITE_BUFFER as u64)).unwrap_or(WRITE_BUFFER);
        let n = f.read(&mut buf[..want]).await?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(d)
}

/// Where a read of `range` starts in a blob of `size` bytes, and how many bytes it takes.
fn span(size: u64, range: Option<ByteRange>) -> Result<(u64, u64), BlobError> {
    match range {
        None => Ok((0, size)),
        Some(r) if r.end < size => Ok((r.start, r.len())),
        Some(_) => Err(BlobError::RangeNotSatisfiable),
    }
}

/// A blob being read in chunks, one read ahead of the one being sent: reading and
/// sending overlap, at the cost of one more chunk in memory. Only one read is ever in
/// flight, so the reads share the file's position.
struct ReadAhead {
    file: Arc<std::fs::File>,
    /// Bytes not yet asked for.
    left: u64,
    chunk: u64,
    next: Option<tokio::task::JoinHandle<std::io::Result<bytes::Bytes>>>,
}

impl ReadAhead {
    fn start_next(&mut self) {
        if self.left == 0 {
            return;
        }
        let want = self.left.min(self.chunk);
        self.left -= want;
        let f = Arc::clone(&self.file);
        self.next = Some(tokio::task::spawn_blocking(move || read_chunk(&f, want)));
    }
}

/// Reads the next `want` bytes at the file's position; a blob that ends early (changed
/// under us) is an error rather than a short body.
fn read_chunk(file: &std::fs::File, want: u64) -> std::io::Result<bytes::Bytes> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(usize::MAX));
    file.take(want).read_to_end(&mut buf)?;
    if (buf.len() as u64) < want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the blob file is shorter than when it was opened",
        ));
    }
    Ok(buf.into())
}

async fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    let d = tokio::fs::File::open(dir).await?;
    d.sync_all().await?;
    Ok(())
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let mut f = match tokio::fs::File::open(self.blob_path(digest)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        let size = f.metadata().await?.len();
        let (start, len) = span(size, range)?;
        if start > 0 {
            f.seek(SeekFrom::Start(start)).await?;
        }
        // Large reads amortise tokio's per-read hop to the blocking pool.
        f.set_max_buf_size(WRITE_BUFFER);
        let reader: BlobReader = Box::pin(f.take(len));
        Ok(BlobRead { size, len, reader })
    }

    /// Each chunk is filled by one read on the blocking pool straight into the buffer
    /// that is sent, one chunk ahead of the sender: `tokio::fs::File` behind a
    /// `ReaderStream` copies every byte once more, hops to the pool for every 256 KiB
    /// (a quarter of a pull's CPU) and never reads while the last chunk is sent. No
    /// thread is held while the client is slow, only the chunk read ahead.
    async fn read_chunks(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
        chunk: usize,
    ) -> Result<BlobStream, BlobError> {
        let path = self.blob_path(digest);
        let opened = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let f = std::fs::File::open(path)?;
            let size = f.metadata()?.len();
            Ok((f, size))
        })
        .await
        .map_err(std::io::Error::other)?;
        let (mut file, size) = match opened {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        let (start, len) = span(size, range)?;
        if start > 0 {
            std::io::Seek::seek(&mut file, SeekFrom::Start(start))?;
        }
        let mut ahead = ReadAhead {
            file: Arc::new(file),
            left: len,
            chunk: chunk.max(1) as u64,
            next: None,
        };
        ahead.start_next();
        let chunks = futures_util::stream::try_unfold(ahead, |mut ahead| async move {
            let Some(next) = ahead.next.take() else {
                return Ok(None);
            };
            let buf = next.await.map_err(std::io::Error::other)??;
            // The next read runs while this chunk is being sent.
            ahead.start_next();
            Ok(Some((buf, ahead)))
        });
        Ok(BlobStream {
            size,
            len,
            chunks: Box::pin(chunks),
        })
    }

    async fn delete(&self, digest: &Digest) -> Result<bool, BlobError> {
        match tokio::fs::remove_file(self.blob_path(digest)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn modified(&self, digest: &Digest) -> Result<Option<SystemTime>, BlobError> {
        // The rename into place keeps the staged file's mtime: the upload's last write.
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.modified()?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self) -> Result<Vec<Digest>, BlobError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join(alg.as_str());
            let mut fans = match tokio::fs::read_dir(&dir).await {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            while let Some(fan) = fans.next_entry().await? {
                let mut files = tokio::fs::read_dir(fan.path()).await?;
                while let Some(f) = files.next_entry().await? {
                    let name = f.file_name();
                    // Anything that is not a well-formed digest (stray temp files) is skipped.
                    if let Ok(d) =
                        Digest::parse(&format!("{}:{}", alg.as_str(), name.to_string_lossy()))
                    {
                        out.push(d);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn begin_upload(&self, id: &str) -> Result<(), BlobError> {
        let path = self.upload_path(id)?;
        tokio::fs::File::create(&path).await?;
        lock(&self.hashing).remove(id);
        Ok(())
    }

    async fn upload_size(&self, id: &str) -> Result<u64, BlobError> {
        let path = self.upload_path(id)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::UploadNotFound(id.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn append(
        &self,
        id: &str,
        offset: u64,
        mut body: BlobReader,
        max_size: u64,
    ) -> Result<u64, BlobError> {
        let path = self.upload_path(id)?;
        let claimed = self.claim(id)?;
        let mut file = match tokio::fs::OpenOptions::new().write(true).open(&path).await {
            Ok(f) => f,
            Err(e) => {
                self.release(id, None);
                return Err(if e.kind() == std::io::ErrorKind::NotFound {
                    BlobError::UploadNotFound(id.to_owned())
                } else {
                    e.into()
                });
            }
        };
        let size = file.metadata().await?.len();
        if size != offset {
            self.release(id, claimed);
            return Err(BlobError::OffsetMismatch { offset, size });
        }
        let (mut digester, mut len) = match claimed {
            Some((d, l)) if l == size => (d, l),
            _ => (hash_file(&path, Algorithm::Sha256, size).await?, size),
        };
        file.seek(SeekFrom::Start(size)).await?;
        let mut buf = vec![0u8; WRITE_BUFFER];
        let mut failure = None;
        loop {
            let n = match body.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    failure = Some(BlobError::Body(e));
                    break;
                }
            };
            if len + n as u64 > max_size {
                failure = Some(BlobError::TooLarge(max_size));
                break;
            }
            if let Err(e) = file.write_all(&buf[..n]).await {
                failure = Some(e.into());
                break;
            }
            digester.update(&buf[..n]);
            len += n as u64;
        }
        if let Err(e) = file.flush().await {
            failure.get_or_insert(e.into());
        }
        // What was written stays staged and hashed, so the client can resume after it.
        let on_disk = file.metadata().await.map(|m| m.len()).unwrap_or(u64::MAX);
        if on_disk == len {
            self.release(id, Some((digester, len)));
        } else {
            self.release(id, None);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(len),
        }
    }

    async fn commit(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        let path = self.upload_path(id)?;
        let claimed = self.claim(id)?;
        let result = async {
            let file = match tokio::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .await
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(BlobError::UploadNotFound(id.to_owned()))
                }
                Err(e) => return Err(e.into()),
            };
            let size = file.metadata().await?.len();
            let digester = match &claimed {
                Some((d, l)) if *l == size && d.algorithm() == expected.algorithm() => d.clone(),
                _ => hash_file(&path, expected.algorithm(), size).await?,
            };
            let actual = digester.finish();
            if &actual != expected {
                return Err(BlobError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
            let target = self.blob_path(expected);
            if tokio::fs::metadata(&target).await.is_ok() {
                // Same digest, same content: keep the blob already in place.
                drop(file);
                tokio::fs::remove_file(&path).await?;
                return Ok(size);
            }
            file.sync_all().await?;
            drop(file);
            let dir = target
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::rename(&path, &target).await?;
            sync_dir(&dir).await?;
            tracing::debug!(digest = %expected, size, "Blob committed.");
            Ok(size)
        }
        .await;
        match &result {
            Ok(_) | Err(BlobError::UploadNotFound(_)) => self.release(id, None),
            Err(_) => self.release(id, claimed),
        }
        result
    }

    async fn remove_upload(&self, id: &str) -> Result<(), BlobError> {
        let path = self.upload_path(id)?;
        lock(&self.hashing).remove(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn uploads(&self) -> Result<Vec<(String, SystemTime)>, BlobError> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(self.root.join("_uploads")).await?;
        while let Some(e) = dir.next_entry().await? {
            let name = e.file_name().to_string_lossy().into_owned();
            if valid_upload_id(&name).is_ok() {
                let modified = e
                    .metadata()
                    .await?
                    .modified()
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((name, modified));
            }
        }
        Ok(out)
    }
}
