//! Both backends pass the same conformance suite.

use blobstore::{testsuite, BlobError, BlobReader, BlobStore, FsBlobStore, MemoryBlobStore};
use oci::Digest;

#[tokio::test]
async fn memory_backend_conforms() {
    testsuite::run_all(&MemoryBlobStore::new()).await;
}

#[tokio::test]
async fn filesystem_backend_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    testsuite::run_all(&FsBlobStore::open(dir.path()).expect("open")).await;
}

fn body(bytes: &[u8]) -> BlobReader {
    Box::pin(std::io::Cursor::new(bytes.to_vec()))
}

#[tokio::test]
async fn upload_resumes_after_a_restart_and_is_rehashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = b"first half|second half";
    {
        let s = FsBlobStore::open(dir.path()).expect("open");
        s.begin_upload("resume-1").await.expect("begin");
        s.append("resume-1", 0, body(&data[..11]), u64::MAX)
            .await
            .expect("append");
    }
    // A new process has no hash state in memory: it must re-hash the staged prefix.
    let s = FsBlobStore::open(dir.path()).expect("reopen");
    assert_eq!(s.upload_size("resume-1").await.expect("size"), 11);
    s.append("resume-1", 11, body(&data[11..]), u64::MAX)
        .await
        .expect("append");
    s.commit("resume-1", &Digest::sha256_of(data))
        .await
        .expect("commit");
    assert_eq!(
        s.stat(&Digest::sha256_of(data)).await.expect("stat"),
        Some(data.len() as u64)
    );
}

#[tokio::test]
async fn a_body_error_keeps_the_bytes_received_so_far() {
    struct Failing(usize);
    impl tokio::io::AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other("client went away")));
            }
            self.0 -= 1;
            buf.put_slice(b"abcd");
            std::task::Poll::Ready(Ok(()))
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let s = FsBlobStore::open(dir.path()).expect("open");
    s.begin_upload("cut-1").await.expect("begin");
    assert!(matches!(
        s.append("cut-1", 0, Box::pin(Failing(3)), u64::MAX).await,
        Err(BlobError::Body(_))
    ));
    assert_eq!(s.upload_size("cut-1").await.expect("size"), 12);
    s.append("cut-1", 12, body(b"tail"), u64::MAX)
        .await
        .expect("resume");
    s.commit("cut-1", &Digest::sha256_of(b"abcdabcdabcdtail"))
        .await
        .expect("commit");
}

#[tokio::test]
async fn concurrent_commits_of_the_same_blob_both_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = std::sync::Arc::new(FsBlobStore::open(dir.path()).expect("open"));
    let data = vec![7u8; 3 * 1024 * 1024];
    let d = Digest::sha256_of(&data);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (s, data, d) = (s.clone(), data.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("same-{i}");
            s.begin_upload(&id).await.expect("begin");
            s.append(&id, 0, body(&data), u64::MAX)
                .await
                .expect("append");
            s.commit(&id, &d).await.expect("commit");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(s.stat(&d).await.expect("stat"), Some(data.len() as u64));
    assert!(s.uploads().await.expect("uploads").is_empty());
}
