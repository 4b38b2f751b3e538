//! An in-memory backend for tests. It keeps whole blobs in memory by design.

use crate::{valid_upload_id, BlobError, BlobRead, BlobReader, BlobStore};
use async_trait::async_trait;
use bytes::Bytes;
use oci::{ByteRange, Digest, Digester};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;
use tokio::io::AsyncReadExt;

/// A staged upload: bytes, last write, and whether a writer holds it.
type Staged = (Vec<u8>, SystemTime, bool);

/// Blobs and uploads in memory.
#[derive(Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<BTreeMap<Digest, (Bytes, SystemTime)>>,
    uploads: Mutex<HashMap<String, Staged>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a test panicked mid-operation; the data is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        Ok(lock(&self.blobs).get(digest).map(|(b, _)| b.len() as u64))
    }

    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let data = lock(&self.blobs)
            .get(digest)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| BlobError::NotFound(digest.clone()))?;
        let size = data.len() as u64;
        let slice = match range {
            None => data,
            Some(r) if r.end < size => {
                let (s, e) = (
                    usize::try_from(r.start).unwrap_or(usize::MAX),
                    usize::try_from(r.end).unwrap_or(usize::MAX),
                );
                data.slice(s..=e)
            }
            Some(_) => return Err(BlobError::RangeNotSatisfiable),
        };
        let len = slice.len() as u64;
        Ok(BlobRead {
            size,
            len,
            reader: Box::pin(std::io::Cursor::new(slice)),
        })
    }

    async fn delete(&self, digest: &Digest) -> Result<bool, BlobError> {
        Ok(lock(&self.blobs).remove(digest).is_some())
    }

    async fn list(&self) -> Result<Vec<Digest>, BlobError> {
        Ok(lock(&self.blobs).keys().cloned().collect())
    }

    async fn modified(&self, digest: &Digest) -> Result<Option<SystemTime>, BlobError> {
        Ok(lock(&self.blobs).get(digest).map(|(_, t)| *t))
    }

    async fn begin_upload(&self, id: &str) -> Result<(), BlobError> {
        valid_upload_id(id)?;
        lock(&self.uploads).insert(id.to_owned(), (Vec::new(), SystemTime::now(), false));
        Ok(())
    }

    async fn upload_size(&self, id: &str) -> Result<u64, BlobError> {
        lock(&self.uploads)
            .get(id)
            .map(|u| u.0.len() as u64)
            .ok_or_else(|| BlobError::UploadNotFound(id.to_owned()))
    }

    async fn append(
        &self,
        id: &str,
        offset: u64,
        mut body: BlobReader,
        max_size: u64,
    ) -> Result<u64, BlobError> {
        {
            let mut ups = lock(&self.uploads);
            let u = ups
                .get_mut(id)
                .ok_or_else(|| BlobError::UploadNotFound(id.to_owned()))?;
            if u.2 {
                return Err(BlobError::UploadBusy(id.to_owned()));
            }
            if u.0.len() as u64 != offset {
                return Err(BlobError::OffsetMismatch {
                    offset,
                    size: u.0.len() as u64,
                });
            }
            u.2 = true;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut received = Vec::new();
        let mut failure = None;
        loop {
            match body.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if offset + (received.len() + n) as u64 > max_size {
                        failure = Some(BlobError::TooLarge(max_size));
                        break;
                    }
                    received.extend_from_slice(&buf[..n]);
                }
                Err(e) => {
                    failure = Some(BlobError::Body(e));
                    break;
                }
            }
        }
        let mut ups = lock(&self.uploads);
        let u = ups
            .get_mut(id)
            .ok_or_else(|| BlobError::UploadNotFound(id.to_owned()))?;
        u.2 = false;
        u.0.extend_from_slice(&received);
        u.1 = SystemTime::now();
        match failure {
            Some(e) => Err(e),
            None => Ok(u.0.len() as u64),
        }
    }

    async fn commit(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        let data = {
            let ups = lock(&self.uploads);
            let u = ups
                .get(id)
                .ok_or_else(|| BlobError::UploadNotFound(id.to_owned()))?;
            if u.2 {
                return Err(BlobError::UploadBusy(id.to_owned()));
            }
            u.0.clone()
        };
        let mut h = Digester::new(expected.algorithm());
        h.update(&data);
        let actual = h.finish();
        if &actual != expected {
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let size = data.len() as u64;
        lock(&self.blobs)
            .entry(actual)
            .or_insert_with(|| (Bytes::from(data), SystemTime::now()));
        lock(&self.uploads).remove(id);
        Ok(size)
    }

    async fn remove_upload(&self, id: &str) -> Result<(), BlobError> {
        lock(&self.uploads).remove(id);
        Ok(())
    }

    async fn uploads(&self) -> Result<Vec<(String, SystemTime)>, BlobError> {
        Ok(lock(&self.uploads)
            .iter()
            .map(|(k, v)| (k.clone(), v.1))
            .collect())
    }
}
