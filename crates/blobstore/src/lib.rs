//! `blobstore` owns content-addressed blob storage for the registry: an upload is a
//! staged write that is hashed while it streams, then its digest is verified, then it
//! is made durable (fsync) and moved into place atomically, so a blob visible under a
//! digest always has exactly that content, even after `kill -9`.
//!
//! It must not know repositories, tags, manifests or reference counts (the registry
//! keeps those in the state store), and must never hold a whole blob in memory (the
//! memory backend, for tests, being the exception by nature).
//!
//! Backends are listed in an enum-free way: [`FsBlobStore`] for disk and
//! [`MemoryBlobStore`] for tests, both behind the [`BlobStore`] trait and both passing
//! the same conformance suite (`testsuite` feature).

#![forbid(unsafe_code)]

mod fs;
mod memory;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use fs::FsBlobStore;
pub use memory::MemoryBlobStore;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use oci::{ByteRange, Digest};
use std::pin::Pin;
use std::time::SystemTime;
use tokio::io::AsyncRead;

/// A stream of bytes read from or written to a blob.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// A blob's bytes as owned chunks, ready to hand to an HTTP body without another copy.
pub type BlobChunks = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// An open blob (or a range of it), read as chunks.
pub struct BlobStream {
    /// Size of the whole blob.
    pub size: u64,
    /// Bytes the chunks add up to.
    pub len: u64,
    /// The content.
    pub chunks: BlobChunks,
}

/// An open blob (or a range of it).
pub struct BlobRead {
    /// Size of the whole blob.
    pub size: u64,
    /// Bytes this reader yields.
    pub len: u64,
    /// The content.
    pub reader: BlobReader,
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob has this digest.
    #[error("blob {0} not found")]
    NotFound(Digest),
    /// No upload has this id.
    #[error("upload {0} not found")]
    UploadNotFound(String),
    /// The upload id is not a safe identifier.
    #[error("invalid upload id")]
    InvalidUploadId,
    /// A chunk does not start where the upload ends.
    #[error("the chunk starts at byte {offset} but the upload has {size} bytes")]
    OffsetMismatch {
        /// Where the chunk claimed to start.
        offset: u64,
        /// Bytes stored so far.
        size: u64,
    },
    /// Another request is writing to the same upload.
    #[error("another request is writing to upload {0}")]
    UploadBusy(String),
    /// The uploaded content does not hash to the digest given.
    #[error("the uploaded content has digest {actual}, not {expected}")]
    DigestMismatch {
        /// The digest the client claimed.
        expected: Digest,
        /// What the content hashes to.
        actual: Digest,
    },
    /// The upload would exceed the size limit.
    #[error("the upload exceeds the {0}-byte limit")]
    TooLarge(u64),
    /// Reading the request body failed (client went away).
    #[error("reading the upload body failed: {0}")]
    Body(std::io::Error),
    /// The storage failed.
    #[error("blob storage failed: {0}")]
    Io(#[from] std::io::Error),
    /// The range lies outside the blob.
    #[error("range outside the blob")]
    RangeNotSatisfiable,
}

impl BlobError {
    /// True for failures worth retrying (storage hiccups), false for the caller's.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io(_) | Self::UploadBusy(_))
    }
}

/// Content-addressed blob storage with resumable, verified uploads.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The size of the blob, if present.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError>;
    /// Opens the blob, or the inclusive `range` of it.
    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead, BlobError>;
    /// Opens the blob, or the inclusive `range` of it, as chunks of at most `chunk`
    /// bytes: what a server sends. The default wraps [`BlobStore::read`]; a backend
    /// overrides it when it can fill each chunk directly.
    async fn read_chunks(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
        chunk: usize,
    ) -> Result<BlobStream, BlobError> {
        let read = self.read(digest, range).await?;
        Ok(BlobStream {
            size: read.size,
            len: read.len,
            chunks: Box::pin(tokio_util::io::ReaderStream::with_capacity(
                read.reader,
                chunk.max(1),
            )),
        })
    }
    /// Removes a blob; `false` when it was absent.
    async fn delete(&self, digest: &Digest) -> Result<bool, BlobError>;
    /// Every stored blob's digest (for garbage collection).
    async fn list(&self) -> Result<Vec<Digest>, BlobError>;
    /// When the blob's content was last written (its upload's last byte), if present:
    /// garbage collection leaves a blob with no record alone until it is older than its
    /// grace period, since another server may have committed it and not recorded it yet.
    async fn modified(&self, digest: &Digest) -> Result<Option<SystemTime>, BlobError>;
    /// Starts an empty staged upload named `id` (`[A-Za-z0-9-]{1,64}`).
    async fn begin_upload(&self, id: &str) -> Result<(), BlobError>;
    /// Bytes staged so far.
    async fn upload_size(&self, id: &str) -> Result<u64, BlobError>;
    /// Appends `body` at `offset` (which must equal the staged size), hashing as it
    /// streams; returns the new size. Bytes received before a body error stay staged,
    /// so the client can resume from there.
    async fn append(
        &self,
        id: &str,
        offset: u64,
        body: BlobReader,
        max_size: u64,
    ) -> Result<u64, BlobError>;
    /// Verifies the staged content hashes to `expected`, makes it durable and moves it
    /// into place as that blob (a no-op move when the blob already exists), and removes
    /// the staged upload. On a digest mismatch the upload is left in place untouched.
    async fn commit(&self, id: &str, expected: &Digest) -> Result<u64, BlobError>;
    /// Discards a staged upload; absent uploads are not an error.
    async fn remove_upload(&self, id: &str) -> Result<(), BlobError>;
    /// Every staged upload with its last modification time (for cleanup).
    async fn uploads(&self) -> Result<Vec<(String, SystemTime)>, BlobError>;
}

/// Checks an upload id is a plain identifier (no path separators).
pub fn valid_upload_id(id: &str) -> Result<(), BlobError> {
    if !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(())
    } else {
        Err(BlobError::InvalidUploadId)
    }
}
