//! The conformance suite every [`BlobStore`] backend must pass. Each check leaves the
//! store as it found it (no blobs, no uploads), and [`run_all`] asserts that.

use crate::{BlobError, BlobReader, BlobStore};
use futures_util::TryStreamExt;
use oci::{ByteRange, Digest};
use tokio::io::AsyncReadExt;

fn body(bytes: &[u8]) -> BlobReader {
    Box::pin(std::io::Cursor::new(bytes.to_vec()))
}

async fn read_all(store: &dyn BlobStore, d: &Digest, range: Option<ByteRange>) -> Vec<u8> {
    let mut r = store.read(d, range).await.expect("blob readable");
    let mut out = Vec::new();
    r.reader
        .read_to_end(&mut out)
        .await
        .expect("blob reads to the end");
    assert_eq!(out.len() as u64, r.len, "reader yields exactly len bytes");
    // The chunked read yields the same bytes, in chunks no larger than asked.
    let mut s = store
        .read_chunks(d, range, 7)
        .await
        .expect("blob readable as chunks");
    assert_eq!((s.size, s.len), (r.size, r.len), "chunked read sizes");
    let mut chunked = Vec::new();
    while let Some(c) = s.chunks.try_next().await.expect("chunk reads") {
        assert!(!c.is_empty() && c.len() <= 7, "chunk of {} bytes", c.len());
        chunked.extend_from_slice(&c);
    }
    assert_eq!(chunked, out, "chunked read matches the reader");
    out
}

/// Runs every check against `store`, which must start empty.
pub async fn run_all(store: &dyn BlobStore) {
    monolithic_upload_commits_under_its_digest(store).await;
    chunked_upload_resumes_at_the_staged_size(store).await;
    digest_mismatch_is_refused_and_nothing_is_published(store).await;
    committing_an_existing_blob_is_idempotent(store).await;
    ranges_read_exactly_the_requested_bytes(store).await;
    unknown_uploads_and_blobs_are_reported(store).await;
    assert!(
        store.list().await.expect("list").is_empty(),
        "suite left blobs behind"
    );
    assert!(
        store.uploads().await.expect("uploads").is_empty(),
        "suite left uploads behind"
    );
}

async fn cleanup(store: &dyn BlobStore, d: &Digest) {
    store.delete(d).await.expect("delete");
    assert_eq!(store.stat(d).await.expect("stat"), None);
}

/// One append then commit.
pub async fn monolithic_upload_commits_under_its_digest(store: &dyn BlobStore) {
    let data = b"hello blob".repeat(1000);
    let d = Digest::sha256_of(&data);
    store.begin_upload("mono-1").await.expect("begin");
    let n = store
        .append("mono-1", 0, body(&data), u64::MAX)
        .await
        .expect("append");
    assert_eq!(n, data.len() as u64);
    assert_eq!(
        store.commit("mono-1", &d).await.expect("commit"),
        data.len() as u64
    );
    assert_eq!(store.stat(&d).await.expect("stat"), Some(data.len() as u64));
    assert_eq!(read_all(store, &d, None).await, data);
    assert!(store.list().await.expect("list").contains(&d));
    let written = store
        .modified(&d)
        .await
        .expect("modified")
        .expect("a committed blob has a write time");
    assert!(
        written.elapsed().unwrap_or_default() < std::time::Duration::from_secs(60),
        "the write time is the upload's"
    );
    assert!(
        store.uploads().await.expect("uploads").is_empty(),
        "commit removes the upload"
    );
    cleanup(store, &d).await;
}

/// Several appends; a wrong offset is refused with the staged size.
pub async fn chunked_upload_resumes_at_the_staged_size(store: &dyn BlobStore) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let d = Digest::sha256_of(&data);
    store.begin_upload("chunk-1").await.expect("begin");
    store
        .append("chunk-1", 0, body(&data[..100_000]), u64::MAX)
        .await
        .expect("first");
    match store
        .append("chunk-1", 5, body(&data[100_000..]), u64::MAX)
        .await
    {
        Err(BlobError::OffsetMismatch {
            offset: 5,
            size: 100_000,
        }) => {}
        other => panic!("expected an offset mismatch, got {other:?}"),
    }
    assert_eq!(store.upload_size("chunk-1").await.expect("size"), 100_000);
    store
        .append("chunk-1", 100_000, body(&data[100_000..]), u64::MAX)
        .await
        .expect("second");
    store.commit("chunk-1", &d).await.expect("commit");
    assert_eq!(read_all(store, &d, None).await, data);
    cleanup(store, &d).await;
}

/// The claimed digest must match the content.
pub async fn digest_mismatch_is_refused_and_nothing_is_published(store: &dyn BlobStore) {
    let wrong = Digest::sha256_of(b"something else");
    store.begin_upload("bad-1").await.expect("begin");
    store
        .append("bad-1", 0, body(b"actual content"), u64::MAX)
        .await
        .expect("append");
    assert!(matches!(
        store.commit("bad-1", &wrong).await,
        Err(BlobError::DigestMismatch { .. })
    ));
    assert_eq!(store.stat(&wrong).await.expect("stat"), None);
    assert_eq!(
        store
            .stat(&Digest::sha256_of(b"actual content"))
            .await
            .expect("stat"),
        None
    );
    store.remove_upload("bad-1").await.expect("remove");
    assert!(matches!(
        store.upload_size("bad-1").await,
        Err(BlobError::UploadNotFound(_))
    ));
}

/// Two uploads of the same content both succeed; one blob remains.
pub async fn committing_an_existing_blob_is_idempotent(store: &dyn BlobStore) {
    let data = b"same bytes";
    let d = Digest::sha256_of(data);
    for id in ["dup-1", "dup-2"] {
        store.begin_upload(id).await.expect("begin");
        store
            .append(id, 0, body(data), u64::MAX)
            .await
            .expect("append");
    }
    store.commit("dup-1", &d).await.expect("first commit");
    store.commit("dup-2", &d).await.expect("second commit");
    assert_eq!(read_all(store, &d, None).await, data);
    cleanup(store, &d).await;
}

/// Ranged reads.
pub async fn ranges_read_exactly_the_requested_bytes(store: &dyn BlobStore) {
    let data: Vec<u8> = (0..=255u8).collect();
    let d = Digest::sha256_of(&data);
    store.begin_upload("range-1").await.expect("begin");
    store
        .append("range-1", 0, body(&data), u64::MAX)
        .await
        .expect("append");
    store.commit("range-1", &d).await.expect("commit");
    assert_eq!(
        read_all(store, &d, Some(ByteRange { start: 10, end: 19 })).await,
        &data[10..20]
    );
    assert_eq!(
        read_all(
            store,
            &d,
            Some(ByteRange {
                start: 255,
                end: 255
            })
        )
        .await,
        &data[255..]
    );
    assert!(matches!(
        store
            .read(
                &d,
                Some(ByteRange {
                    start: 10,
                    end: 256
                })
            )
            .await,
        Err(BlobError::RangeNotSatisfiable)
    ));
    cleanup(store, &d).await;
}

/// Unknown names are errors of their own kind, and path tricks are refused.
pub async fn unknown_uploads_and_blobs_are_reported(store: &dyn BlobStore) {
    let d = Digest::sha256_of(b"never stored");
    assert!(matches!(
        store.read(&d, None).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        store.read_chunks(&d, None, 1024).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(store.modified(&d).await.expect("modified").is_none());
    assert!(!store.delete(&d).await.expect("delete absent"));
    assert!(matches!(
        store.upload_size("nope").await,
        Err(BlobError::UploadNotFound(_))
    ));
    assert!(matches!(
        store.append("nope", 0, body(b"x"), u64::MAX).await,
        Err(BlobError::UploadNotFound(_))
    ));
    assert!(matches!(
        store.begin_upload("../escape").await,
        Err(BlobError::InvalidUploadId)
    ));
    store.begin_upload("limit-1").await.expect("begin");
    assert!(matches!(
        store.append("limit-1", 0, body(&[0u8; 100]), 10).await,
        Err(BlobError::TooLarge(10))
    ));
    store.remove_upload("limit-1").await.expect("remove");
}
