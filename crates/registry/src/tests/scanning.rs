//! Image scanning over the registry core: a scan a stopped server left in progress is
//! queued again at start and completes against the vulnerability database.

use super::{create, fixture, push_blob};
use crate::images::PutMode;
use oci::reference::Reference;
use std::sync::Arc;

fn tar_with(path: &str, body: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, path, body).expect("append");
    b.into_inner().expect("tar")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_scan_is_resumed_and_completes() {
    let f = fixture(0);
    let db = scan::Database::in_memory().expect("db");
    db.import(
        [scan::db::SourceFile {
            name: "T-1.json".into(),
            content: r#"{"id":"T-1","database_specific":{"severity":"HIGH"},"affected":[{"package":{"ecosystem":"crates.io","name":"fixture-crate"},"versions":["1.0.0"]}]}"#.into(),
        }],
        1,
    )
    .expect("import");
    let reg = f.reg.clone().with_scan_database(Arc::new(db));
    create(&reg, "app").await;
    let lock =
        b"[[package]]\nname = \"fixture-crate\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\n";
    let layer = tar_with("app/Cargo.lock", lock);
    let config = push_blob(&reg, "app", b"{}").await;
    let layer = push_blob(&reg, "app", &layer).await;
    let body = bytes::Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":1}}]}}"#,
        oci::media::OCI_MANIFEST,
        oci::media::OCI_CONFIG,
    ));
    let rec = reg
        .put_manifest(
            "app",
            &Reference::Tag("v1".into()),
            body,
            None,
            PutMode::Distribution,
        )
        .await
        .expect("manifest");
    // What a server stopped mid-scan leaves behind.
    let stale = serde_json::json!({
        "status": "IN_PROGRESS", "description": "The scan is in progress.", "started_at": 1.0,
        "completed_at": null, "source_updated_at": null, "findings": []
    });
    reg.objects()
        .commit(store::Txn::new().put(
            crate::scanning::scan_key("app", &rec.digest),
            serde_json::to_vec(&stale).expect("json"),
        ))
        .await
        .expect("stored");
    assert_eq!(reg.resume_scans().await.expect("resume"), 1);
    let ask = r#"{"repositoryName":"app","imageId":{"imageTag":"v1"}}"#;
    let mut answer = serde_json::Value::Null;
    for _ in 0..200 {
        let out = reg
            .handle("DescribeImageScanFindings", ask.as_bytes())
            .await
            .expect("findings");
        answer = serde_json::from_slice(&out).expect("json");
        if answer["imageScanStatus"]["status"] != "IN_PROGRESS" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(answer["imageScanStatus"]["status"], "COMPLETE", "{answer}");
    assert_eq!(answer["imageScanFindings"]["findings"][0]["name"], "T-1");
    assert_eq!(
        answer["imageScanFindings"]["findingSeverityCounts"]["HIGH"],
        1
    );
    assert_eq!(
        reg.resume_scans().await.expect("resume"),
        0,
        "nothing left in progress"
    );
}
