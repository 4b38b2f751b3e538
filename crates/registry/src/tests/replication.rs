//! Replication backfills over two real registries (source and destination region): an
//! image pushed before the rule is not replicated until a backfill sends it, an index
//! travels with its platform manifest, and progress counts image-and-tag pairs.

use super::{create, fixture, manifest, push_blob};
use crate::images::PutMode;
use crate::Registry;
use bytes::Bytes;
use oci::reference::Reference;
use std::sync::Arc;

async fn call(reg: &Registry, op: &str, body: serde_json::Value) -> serde_json::Value {
    let out = reg
        .handle(op, body.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"));
    serde_json::from_slice(&out).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_sends_what_was_pushed_before_the_rule() {
    let src = fixture(0);
    let dst = fixture(0);
    let west = dst.reg.clone();
    let replicas: crate::Replicas = Arc::new(move |_, _| {
        let west = west.clone();
        Box::pin(async move { Some(west) })
            as std::pin::Pin<Box<dyn std::future::Future<Output = Option<Registry>> + Send>>
    });
    let reg = src.reg.clone().with_replicas(replicas);
    create(&reg, "old/app").await;
    let config = push_blob(&reg, "old/app", b"{}").await;
    let layer = push_blob(&reg, "old/app", b"layer").await;
    let child = manifest(&config, &[&layer]);
    let child_digest = oci::Digest::sha256_of(&child);
    reg.put_manifest(
        "old/app",
        &Reference::Digest(child_digest.clone()),
        child.clone(),
        None,
        PutMode::Distribution,
    )
    .await
    .expect("child");
    let index = Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{child_digest}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        oci::media::OCI_INDEX,
        oci::media::OCI_MANIFEST,
        child.len()
    ));
    for tag in ["v1", "latest"] {
        reg.put_manifest(
            "old/app",
            &Reference::Tag(tag.into()),
            index.clone(),
            None,
            PutMode::Distribution,
        )
        .await
        .expect("index");
    }

    let dest = serde_json::json!({"region": "eu-west-1", "registryId": "000000000000"});
    call(
        &reg,
        "PutReplicationConfiguration",
        serde_json::json!({"replicationConfiguration": {"rules": [{"destinations": [dest]}]}}),
    )
    .await;
    assert!(
        dst.reg.repo("old/app").await.is_err(),
        "no backfill by the rule alone"
    );

    let started = call(
        &reg,
        "StartReplicationBackfill",
        serde_json::json!({ "destination": dest }),
    )
    .await;
    assert_eq!(started["status"], "PREPARING");
    let id = started["replicationBackfillId"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut summary = serde_json::Value::Null;
    for _ in 0..500 {
        summary = call(&reg, "ListReplicationBackfills", serde_json::json!({})).await["backfills"]
            [0]
        .clone();
        if summary["status"] == "COMPLETE" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(summary["status"], "COMPLETE", "{summary}");
    // One index under two tags: two replications; the child is not counted alone.
    assert_eq!(summary["progress"]["totalReplicationCount"], 2, "{summary}");
    assert_eq!(
        summary["progress"]["completedReplicationCount"], 2,
        "{summary}"
    );
    let results = call(
        &reg,
        "DescribeReplicationBackfillResults",
        serde_json::json!({ "replicationBackfillId": id }),
    )
    .await;
    assert_eq!(
        results["results"].as_array().map(Vec::len),
        Some(2),
        "{results}"
    );

    let index_digest = oci::Digest::sha256_of(&index);
    for (reference, bytes) in [
        (Reference::Tag("v1".into()), &index),
        (Reference::Tag("latest".into()), &index),
        (Reference::Digest(child_digest.clone()), &child),
    ] {
        let rec = dst
            .reg
            .resolve("old/app", &reference)
            .await
            .expect("replicated");
        assert_eq!(
            &dst.reg
                .manifest_bytes("old/app", &rec.digest)
                .await
                .expect("bytes"),
            bytes
        );
    }
    assert_eq!(
        dst.reg
            .resolve("old/app", &Reference::Tag("v1".into()))
            .await
            .expect("tag")
            .digest,
        index_digest
    );
    // Another backfill to the same region while none runs is accepted; to a destination
    // outside the configuration it is not.
    let err = reg
        .handle(
            "StartReplicationBackfill",
            br#"{"destination":{"region":"ap-south-1","registryId":"000000000000"}}"#,
        )
        .await
        .expect_err("not configured");
    assert!(matches!(err, crate::RegistryError::Validation(_)), "{err}");
}
