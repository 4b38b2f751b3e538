//! ECR's exception names for a repository that does not exist: every operation served
//! that names a repository answers RepositoryNotFoundException (an exception botocore
//! models for it), whatever else its request carries.

use super::fixture;
use crate::Operation;

const MISSING: &str = "arn:aws:ecr:us-east-1:000000000000:repository/missing";
const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// A complete, valid request of `op` naming the missing repository.
fn body(op: &str) -> serde_json::Value {
    use serde_json::json;
    let repo = json!({"repositoryName": "missing"});
    let with = |extra: serde_json::Value| {
        let mut b = repo.clone();
        if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        b
    };
    let lifecycle = format!(
        "{:<100}",
        r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#
    );
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 2},
        "layers": []})
    .to_string();
    match op {
        "DescribeRepositories" | "BatchGetRepositoryScanningConfiguration" => {
            json!({"repositoryNames": ["missing"]})
        }
        "StartImageScan" | "DescribeImageScanFindings" | "DescribeImageReplicationStatus" => {
            with(json!({"imageId": {"imageTag": "v1"}}))
        }
        "BatchGetImage" | "BatchDeleteImage" => with(json!({"imageIds": [{"imageTag": "v1"}]})),
        "PutImage" => with(json!({"imageManifest": manifest, "imageTag": "v1"})),
        "BatchCheckLayerAvailability" | "CompleteLayerUpload" => {
            with(json!({"layerDigests": [DIGEST], "uploadId": "u"}))
        }
        "UploadLayerPart" => with(
            json!({"uploadId": "u", "partFirstByte": 0, "partLastByte": 0, "layerPartBlob": "YQ=="}),
        ),
        "GetDownloadUrlForLayer" => with(json!({"layerDigest": DIGEST})),
        "PutImageTagMutability" => with(json!({"imageTagMutability": "MUTABLE"})),
        "PutImageScanningConfiguration" => {
            with(json!({"imageScanningConfiguration": {"scanOnPush": true}}))
        }
        "SetRepositoryPolicy" => with(
            json!({"policyText": r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#}),
        ),
        "PutLifecyclePolicy" | "StartLifecyclePolicyPreview" => {
            with(json!({"lifecyclePolicyText": lifecycle}))
        }
        "TagResource" => json!({"resourceArn": MISSING, "tags": [{"Key": "k", "Value": "v"}]}),
        "UntagResource" => json!({"resourceArn": MISSING, "tagKeys": ["k"]}),
        "ListTagsForResource" => json!({"resourceArn": MISSING}),
        _ => repo,
    }
}

#[tokio::test]
async fn every_operation_on_a_missing_repository_answers_repository_not_found() {
    let f = fixture(0);
    let mut checked = 0;
    for &op in Operation::ALL {
        let name = op.name();
        if !op.errors().contains(&"RepositoryNotFoundException") {
            continue;
        }
        let body = serde_json::to_vec(&body(name)).unwrap_or_default();
        match f.reg.handle(name, &body).await {
            Err(crate::RegistryError::NotImplemented(_)) => continue,
            Err(e) => {
                let aws = e.to_aws();
                assert_eq!(
                    aws.code, "RepositoryNotFoundException",
                    "{name}: {}",
                    aws.message
                );
            }
            // A batch answers each missing repository in its failures, as AWS does.
            Ok(out) if name == "BatchGetRepositoryScanningConfiguration" => {
                let answer: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
                assert_eq!(
                    answer["failures"][0]["failureCode"], "REPOSITORY_NOT_FOUND",
                    "{answer}"
                );
            }
            Ok(out) => panic!(
                "{name} succeeded on a missing repository: {}",
                String::from_utf8_lossy(&out)
            ),
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} operations checked");
}
