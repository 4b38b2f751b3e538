//! The ECR operation table (generated from botocore in `model::ecr::operations`) and its
//! one exhaustive match: every operation either runs its handler or is answered as not
//! implemented, so an operation botocore adds fails to compile until it is decided.

use crate::decode::parse_request;
use crate::error::RegistryError;
use crate::Registry;
pub use model::ecr::operations::Operation;
use serde::Serialize;
use wire::{
    Access, Call, Input, JsonVersion, OperationTable, Protocol, Service, ServiceError, ServiceSpec,
};

#[path = "authz.rs"]
mod authz;

/// UploadLayerPart carries up to 20 MiB of layer data base64-encoded in JSON.
const MAX_LAYER_PART_BODY_BYTES: usize = 28 * 1024 * 1024;

/// Runs `op` on a JSON `body` for `caller`; returns the JSON response.
pub(crate) async fn execute(
    reg: &Registry,
    op: Operation,
    body: &[u8],
    caller: &wire::Caller,
) -> Result<Vec<u8>, RegistryError> {
    use Operation as Op;
    macro_rules! run {
        ($handler:path) => {
            respond(&$handler(reg, parse_request(body)?).await?)
        };
    }
    match op {
        Op::GetAuthorizationToken => {
            respond(&super::get_authorization_token(reg, caller, parse_request(body)?).await?)
        }
        Op::CreateRepository => run!(super::create_repository),
        Op::DescribeRepositories => run!(super::describe_repositories),
        Op::DeleteRepository => run!(super::delete_repository),
        Op::ListImages => run!(super::list_images),
        Op::DescribeImages => run!(super::describe_images),
        Op::BatchGetImage => {
            respond(&super::batch_get_image(reg, caller, parse_request(body)?).await?)
        }
        Op::BatchDeleteImage => run!(super::batch_delete_image),
        Op::PutImage => run!(super::put_image),
        Op::BatchCheckLayerAvailability => run!(super::layers::batch_check_layer_availability),
        Op::InitiateLayerUpload => run!(super::layers::initiate_layer_upload),
        Op::UploadLayerPart => run!(super::layers::upload_layer_part),
        Op::CompleteLayerUpload => run!(super::layers::complete_layer_upload),
        Op::GetDownloadUrlForLayer => run!(super::layers::get_download_url_for_layer),
        Op::PutImageTagMutability => run!(super::policies::put_image_tag_mutability),
        Op::PutImageScanningConfiguration => {
            run!(super::policies::put_image_scanning_configuration)
        }
        Op::GetRepositoryPolicy => run!(super::policies::get_repository_policy),
        Op::SetRepositoryPolicy => run!(super::policies::set_repository_policy),
        Op::DeleteRepositoryPolicy => run!(super::policies::delete_repository_policy),
        Op::PutLifecyclePolicy => run!(super::policies::put_lifecycle_policy),
        Op::GetLifecyclePolicy => run!(super::policies::get_lifecycle_policy),
        Op::DeleteLifecyclePolicy => run!(super::policies::delete_lifecycle_policy),
        Op::StartLifecyclePolicyPreview => run!(super::policies::start_lifecycle_policy_preview),
        Op::GetLifecyclePolicyPreview => run!(super::policies::get_lifecycle_policy_preview),
        Op::DescribeRegistry => run!(super::policies::describe_registry),
        Op::PutRegistryPolicy => run!(super::registry_policy::put_registry_policy),
        Op::GetRegistryPolicy => run!(super::registry_policy::get_registry_policy),
        Op::DeleteRegistryPolicy => run!(super::registry_policy::delete_registry_policy),
        Op::TagResource => run!(super::policies::tag_resource),
        Op::UntagResource => run!(super::policies::untag_resource),
        Op::ListTagsForResource => run!(super::policies::list_tags_for_resource),
        Op::PutReplicationConfiguration => {
            run!(crate::replication::put_replication_configuration)
        }
        Op::DescribeImageReplicationStatus => {
            run!(crate::replication::describe_image_replication_status)
        }
        Op::StartReplicationBackfill => run!(crate::replication::start_replication_backfill),
        Op::StopReplicationBackfill => run!(crate::replication::stop_replication_backfill),
        Op::ListReplicationBackfills => run!(crate::replication::list_replication_backfills),
        Op::DescribeReplicationBackfillResults => {
            run!(crate::replication::describe_replication_backfill_results)
        }
        Op::StartImageScan => run!(crate::scanning::start_image_scan),
        Op::DescribeImageScanFindings => run!(crate::scanning::describe_image_scan_findings),
        Op::PutRegistryScanningConfiguration => {
            run!(crate::scanning::put_registry_scanning_configuration)
        }
        Op::GetRegistryScanningConfiguration => {
            run!(crate::scanning::get_registry_scanning_configuration)
        }
        Op::BatchGetRepositoryScanningConfiguration => {
            run!(crate::scanning::batch_get_repository_scanning_configuration)
        }
        Op::CreatePullThroughCacheRule => run!(crate::pull_through::create_pull_through_cache_rule),
        Op::DescribePullThroughCacheRules => {
            run!(crate::pull_through::describe_pull_through_cache_rules)
        }
        Op::UpdatePullThroughCacheRule => run!(crate::pull_through::update_pull_through_cache_rule),
        Op::DeletePullThroughCacheRule => run!(crate::pull_through::delete_pull_through_cache_rule),
        Op::ValidatePullThroughCacheRule => {
            run!(crate::pull_through::validate_pull_through_cache_rule)
        }
        Op::CreateRepositoryCreationTemplate
        | Op::DeleteRepositoryCreationTemplate
        | Op::DeleteSigningConfiguration
        | Op::DeregisterPullTimeUpdateExclusion
        | Op::DescribeImageSigningStatus
        | Op::DescribeRepositoryCreationTemplates
        | Op::GetAccountSetting
        | Op::GetSigningConfiguration
        | Op::ListImageReferrers
        | Op::ListPullTimeUpdateExclusions
        | Op::PutAccountSetting
        | Op::PutSigningConfiguration
        | Op::RegisterPullTimeUpdateExclusion
        | Op::UpdateImageStorageClass
        | Op::UpdateRepositoryCreationTemplate => Err(RegistryError::NotImplemented(op)),
    }
}

fn respond<T: Serialize>(out: &T) -> Result<Vec<u8>, RegistryError> {
    serde_json::to_vec(out)
        .map_err(|e| RegistryError::Storage(format!("response encoding failed: {e}")))
}

impl Service for Registry {
    type Operation = Operation;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "ecr",
        title: "Amazon ECR",
        signing_name: model::ecr::SIGNING_NAME,
        protocols: &[Protocol::AwsJson {
            version: JsonVersion::V1_1,
            target_prefix: model::ecr::TARGET_PREFIX,
        }],
    };

    const OPERATIONS: OperationTable<Operation> = OperationTable {
        all: Operation::ALL,
        from_name: Operation::from_name,
        name: Operation::name,
        errors: Operation::errors,
    };

    fn body_limit(&self, op: Operation) -> usize {
        match op {
            Operation::UploadLayerPart => MAX_LAYER_PART_BODY_BYTES,
            _ => wire::service::DEFAULT_BODY_LIMIT,
        }
    }

    async fn authorize(&self, op: Operation, call: Call<'_>) -> Result<Vec<Access>, ServiceError> {
        let Input::Json(body) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        Ok(match addressed_peer(self, body) {
            Some(peer) => authz::foreign_accesses(&peer, op, body).await,
            None => authz::accesses(self, op, body).await,
        })
    }

    /// A repository's tags, in this registry or another account's of this server.
    async fn resource_tags(&self, resource: &str) -> Vec<(String, String)> {
        let account = resource.split(':').nth(4).unwrap_or_default();
        let peer;
        let reg = if account == self.registry_id() {
            self
        } else {
            match self.peer(account) {
                Some(p) => {
                    peer = p;
                    &peer
                }
                None => return Vec::new(),
            }
        };
        let Ok(name) = super::name_from_arn(reg, resource) else {
            return Vec::new();
        };
        match reg.repo(name).await {
            Ok((rec, _)) => rec.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            Err(_) => Vec::new(),
        }
    }

    async fn handle(&self, op: Operation, call: Call<'_>) -> Result<Vec<u8>, ServiceError> {
        let Input::Json(body) = call.input else {
            return Err(ServiceError::NotImplemented);
        };
        let result = match addressed_peer(self, body) {
            Some(peer) => {
                // The dispatch checked every other caller against the peer's policies
                // (`authorize` above) but skips its own account's root, which is a
                // stranger in the peer's account: checked here.
                if call.caller.is_root() {
                    let needs = authz::foreign_accesses(&peer, op, body).await;
                    wire::dispatch::authorize_foreign(call.caller, needs, None)?;
                }
                execute(&peer, op, body, call.caller).await
            }
            None => execute(self, op, body, call.caller).await,
        };
        result.map_err(|e| match e {
            RegistryError::NotImplemented(_) => ServiceError::NotImplemented,
            e => ServiceError::Aws(e.to_aws()),
        })
    }
}

/// The registry of another account of this server that the request's `registryId` names,
/// if it does: that registry serves the request, under its repository policies.
fn addressed_peer(reg: &Registry, body: &[u8]) -> Option<Registry> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Addressed {
        registry_id: Option<String>,
    }
    let id = serde_json::from_slice::<Addressed>(body)
        .ok()?
        .registry_id?;
    reg.peer(&id)
}
