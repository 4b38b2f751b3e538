//! The registry core over a real SQLite store and the memory blob store.

use crate::images::PutMode;
use crate::{Registry, RegistryConfig, RegistryError};
use blobstore::{BlobStore, MemoryBlobStore};
use bytes::Bytes;
use oci::reference::Reference;
use oci::Digest;
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    reg: Registry,
    blobs: Arc<MemoryBlobStore>,
    _dir: tempfile::TempDir,
}

fn fixture(grace_secs: u64) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("state.db")))
        .expect("store");
    let blobs = Arc::new(MemoryBlobStore::new());
    let mut config = RegistryConfig::new(
        "127.0.0.1:1".into(),
        "us-east-1".into(),
        "000000000000".into(),
    );
    config.gc_grace = Duration::from_secs(grace_secs);
    let reg = Registry::new(Arc::new(store), blobs.clone(), config);
    Fixture {
        reg,
        blobs,
        _dir: dir,
    }
}

async fn create(reg: &Registry, name: &str) {
    let body = format!(r#"{{"repositoryName":"{name}"}}"#);
    reg.handle("CreateRepository", body.as_bytes())
        .await
        .expect("created");
}

async fn push_blob(reg: &Registry, name: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let id = crate::distribution::begin_session(reg, name)
        .await
        .expect("session");
    reg.blobs()
        .append(
            &id,
            0,
            Box::pin(std::io::Cursor::new(data.to_vec())),
            u64::MAX,
        )
        .await
        .expect("append");
    reg.commit_upload(name, &id, &d).await.expect("commit");
    d
}

fn manifest(config: &Digest, layers: &[&Digest]) -> Bytes {
    let layers: Vec<String> = layers
        .iter()
        .map(|d| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":1}}"#))
        .collect();
    Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":2}},"layers":[{}]}}"#,
        oci::media::OCI_MANIFEST,
        oci::media::OCI_CONFIG,
        layers.join(",")
    ))
}

#[tokio::test]
async fn manifest_naming_a_missing_blob_is_refused() {
    let f = fixture(0);
    create(&f.reg, "app").await;
    let config = push_blob(&f.reg, "app", b"{}").await;
    let missing = Digest::sha256_of(b"absent");
    let err = f
        .reg
        .put_manifest(
            "app",
            &Reference::Tag("v1".into()),
            manifest(&config, &[&missing]),
            None,
            PutMode::Distribution,
        )
        .await
        .expect_err("refused");
    assert!(matches!(err, RegistryError::ManifestBlobUnknown(_)));
}

#[tokio::test]
async fn garbage_collection_keeps_referenced_blobs_and_removes_the_rest() {
    let f = fixture(0);
    create(&f.reg, "app").await;
    let config = push_blob(&f.reg, "app", b"{}").await;
    let layer = push_blob(&f.reg, "app", b"kept").await;
    let orphan = push_blob(&f.reg, "app", b"orphan").await;
    f.reg
        .put_manifest(
            "app",
            &Reference::Tag("v1".into()),
            manifest(&config, &[&layer]),
            None,
            PutMode::Distribution,
        )
        .await
        .expect("manifest");
    let report = f.reg.collect_garbage().await.expect("gc");
    assert_eq!(report.blobs_deleted, 1);
    assert!(f.blobs.stat(&layer).await.expect("stat").is_some());
    assert!(f.blobs.stat(&config).await.expect("stat").is_some());
    assert!(f.blobs.stat(&orphan).await.expect("stat").is_none());
    // Once the image is gone, its blobs go too.
    let digest = f
        .reg
        .resolve("app", &Reference::Tag("v1".into()))
        .await
        .expect("resolve")
        .digest;
    f.reg.delete_manifest("app", &digest).await.expect("delete");
    f.reg.collect_garbage().await.expect("gc");
    assert!(f.blobs.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn blobs_within_the_grace_period_survive_collection() {
    let f = fixture(3600);
    create(&f.reg, "app").await;
    let young = push_blob(&f.reg, "app", b"layer of a push in progress").await;
    assert_eq!(f.reg.collect_garbage().await.expect("gc").blobs_deleted, 0);
    assert!(f.blobs.stat(&young).await.expect("stat").is_some());
}

/// A blob committed to the blob store but not recorded yet: what another replica has
/// between moving a pushed blob into place and writing its record.
async fn unrecorded_blob(blobs: &MemoryBlobStore, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    blobs.begin_upload("unrecorded").await.expect("begin");
    blobs
        .append(
            "unrecorded",
            0,
            Box::pin(std::io::Cursor::new(data.to_vec())),
            u64::MAX,
        )
        .await
        .expect("append");
    blobs.commit("unrecorded", &d).await.expect("commit");
    d
}

#[tokio::test]
async fn a_blob_without_a_record_goes_only_after_the_grace_period() {
    let f = fixture(3600);
    let d = unrecorded_blob(&f.blobs, b"another replica's push").await;
    assert_eq!(f.reg.collect_garbage().await.expect("gc").blobs_deleted, 0);
    assert!(f.blobs.stat(&d).await.expect("stat").is_some());
    let f0 = fixture(0);
    let d = unrecorded_blob(&f0.blobs, b"left by a crash").await;
    assert_eq!(f0.reg.collect_garbage().await.expect("gc").blobs_deleted, 1);
    assert!(f0.blobs.stat(&d).await.expect("stat").is_none());
}

#[tokio::test]
async fn immutable_tags_refuse_to_move() {
    let f = fixture(0);
    create(&f.reg, "app").await;
    f.reg
        .handle(
            "PutImageTagMutability",
            br#"{"repositoryName":"app","imageTagMutability":"IMMUTABLE"}"#,
        )
        .await
        .expect("immutable");
    let c = push_blob(&f.reg, "app", b"{}").await;
    let (a, b) = (
        push_blob(&f.reg, "app", b"a").await,
        push_blob(&f.reg, "app", b"b").await,
    );
    let tag = Reference::Tag("v1".into());
    f.reg
        .put_manifest(
            "app",
            &tag,
            manifest(&c, &[&a]),
            None,
            PutMode::Distribution,
        )
        .await
        .expect("first");
    // The same manifest again is fine (docker re-push); another one is refused.
    f.reg
        .put_manifest(
            "app",
            &tag,
            manifest(&c, &[&a]),
            None,
            PutMode::Distribution,
        )
        .await
        .expect("same");
    let err = f
        .reg
        .put_manifest(
            "app",
            &tag,
            manifest(&c, &[&b]),
            None,
            PutMode::Distribution,
        )
        .await
        .expect_err("moved");
    assert!(matches!(err, RegistryError::TagImmutable { .. }));
}

#[tokio::test]
async fn pushes_to_unknown_repositories_are_refused() {
    let f = fixture(0);
    let err = crate::distribution::session(&f.reg, "nope", "x")
        .await
        .expect_err("no session");
    assert!(matches!(err, RegistryError::UploadUnknown(_)));
    let err = f.reg.repo("nope").await.expect_err("no repo");
    assert!(matches!(err, RegistryError::RepositoryNotFound(..)));
}

#[tokio::test]
async fn a_manifest_put_rewrites_the_keys_of_the_blobs_it_references() {
    // Garbage collection deletes a blob with a compare-and-swap on the revision it read
    // before marking; this is what makes a concurrent manifest put win that race.
    let f = fixture(0);
    create(&f.reg, "app").await;
    let config = push_blob(&f.reg, "app", b"{}").await;
    let layer = push_blob(&f.reg, "app", b"layer").await;
    let key = crate::objects::blob_key(&layer);
    let before = f
        .reg
        .objects()
        .get_raw(&key)
        .await
        .expect("read")
        .expect("present")
        .1;
    f.reg
        .put_manifest(
            "app",
            &Reference::Tag("v1".into()),
            manifest(&config, &[&layer]),
            None,
            PutMode::Distribution,
        )
        .await
        .expect("manifest");
    let after = f
        .reg
        .objects()
        .get_raw(&key)
        .await
        .expect("read")
        .expect("present")
        .1;
    assert!(
        after > before,
        "the blob key must be rewritten by the manifest put"
    );
    let stale_gc = store::Txn::new().when(key.clone(), before).delete(key);
    assert!(
        !f.reg.objects().commit(stale_gc).await.expect("txn"),
        "a collection that read before the put must lose"
    );
}

#[tokio::test]
async fn every_modelled_ecr_operation_runs_a_handler_or_answers_not_implemented() {
    let f = fixture(0);
    let caller = wire::Caller::root("000000000000");
    // The decoder's codes answer a body that does not fit the shape.
    let answered = wire::conformance::every_operation_answers(
        &f.reg,
        wire::Input::Json(b"{}"),
        &caller,
        &["SerializationException", "InvalidParameterException"],
    )
    .await;
    assert_eq!(answered.served, 47, "operations served");
}

mod access;
mod errors;
mod replication;
mod scanning;
