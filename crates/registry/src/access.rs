//! Who a `/v2/` request acts as and whether it may: a token's subject is resolved to a
//! caller with its *current* identity policies (through [`IdentityResolver`], which the
//! binary implements over IAM), each route is mapped to the ECR action it needs, and
//! the action is evaluated on the repository's ARN against those identity policies and
//! the repository policy, with AWS's evaluation logic.

use crate::auth::{Grant, TokenSubject};
use crate::error::RegistryError;
use crate::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Resolves the principal a registry token was issued to into the caller it acts as
/// now, so that a permission removed from a user takes effect on its live tokens.
pub trait IdentityResolver: Send + Sync + 'static {
    /// The caller the principal `arn` with unique id `user_id` (`AIDA…`, or
    /// `AROA…:session` for a role session) acts as now, with its current identity
    /// policies; `None` when it no longer exists (deleted, or recreated with another id).
    fn resolve(&self, arn: &str, user_id: &str) -> Option<wire::Caller>;
}

/// The ECR actions `/v2/` requests need, as ECR maps the distribution API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// GET/HEAD of a manifest, referrers.
    BatchGetImage,
    /// GET of a blob.
    GetDownloadUrlForLayer,
    /// HEAD of a blob (pull and push both check layers).
    BatchCheckLayerAvailability,
    /// Starting or cancelling an upload.
    InitiateLayerUpload,
    /// Sending upload data, asking an upload's status.
    UploadLayerPart,
    /// Finishing an upload.
    CompleteLayerUpload,
    /// PUT of a manifest.
    PutImage,
    /// DELETE of a manifest or blob.
    BatchDeleteImage,
    /// Listing tags.
    ListImages,
    /// Seeing a repository in `/v2/_catalog`.
    DescribeRepositories,
    /// Filling a pull-through cache repository from upstream.
    BatchImportUpstreamImage,
    /// Creating a repository (a pull-through cache's first pull).
    CreateRepository,
    /// Storing a manifest as a replica of another server's image (not replicated on).
    ReplicateImage,
}

impl Action {
    /// The IAM action name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::BatchGetImage => "ecr:BatchGetImage",
            Self::GetDownloadUrlForLayer => "ecr:GetDownloadUrlForLayer",
            Self::BatchCheckLayerAvailability => "ecr:BatchCheckLayerAvailability",
            Self::InitiateLayerUpload => "ecr:InitiateLayerUpload",
            Self::UploadLayerPart => "ecr:UploadLayerPart",
            Self::CompleteLayerUpload => "ecr:CompleteLayerUpload",
            Self::PutImage => "ecr:PutImage",
            Self::BatchDeleteImage => "ecr:BatchDeleteImage",
            Self::ListImages => "ecr:ListImages",
            Self::DescribeRepositories => "ecr:DescribeRepositories",
            Self::BatchImportUpstreamImage => "ecr:BatchImportUpstreamImage",
            Self::CreateRepository => "ecr:CreateRepository",
            Self::ReplicateImage => "ecr:ReplicateImage",
        }
    }
}

/// Compiled repository policies by repository, with the text they were compiled from:
/// a policy changed by another replica is noticed because its text differs.
#[derive(Default)]
pub(crate) struct PolicyCache(Mutex<HashMap<String, (String, Arc<policy::Policy>)>>);

impl PolicyCache {
    /// The compiled form of `name`'s policy `text`. A stored policy that no longer
    /// parses (stored before validation) grants nothing and is logged.
    pub(crate) fn compiled(&self, name: &str, text: Option<&str>) -> Option<Arc<policy::Policy>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(text) = text else {
            map.remove(name);
            return None;
        };
        if let Some((cached, p)) = map.get(name) {
            if cached == text {
                return Some(p.clone());
            }
        }
        match policy::Policy::parse(text, policy::PolicyKind::Resource) {
            Ok(p) => {
                let p = Arc::new(p.with_label(name));
                map.insert(name.to_owned(), (text.to_owned(), p.clone()));
                Some(p)
            }
            Err(error) => {
                tracing::warn!(repository = name, %error, "Stored repository policy no longer parses.");
                map.remove(name);
                None
            }
        }
    }

    /// Forgets `name`'s policy (set or deleted).
    pub(crate) fn invalidate(&self, name: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

impl Registry {
    /// The caller a verified token acts as now: the account root, or the token's
    /// principal with its current identity policies.
    pub(crate) fn caller_for(&self, grant: &Grant) -> Result<wire::Caller, RegistryError> {
        match &grant.subject {
            TokenSubject::Root => Ok(wire::Caller::root(self.registry_id())),
            TokenSubject::Principal { arn, user_id } => self
                .identity()
                .and_then(|r| r.resolve(arn, user_id))
                .ok_or_else(|| {
                    RegistryError::Unauthorized(format!(
                        "authentication required: {arn}, to which this registry password was issued, no longer exists; log in again with the credentials of an existing principal"
                    ))
                }),
        }
    }

    /// The ARN of repository `name`.
    pub(crate) fn repository_arn(&self, name: &str) -> String {
        let c = self.config();
        format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            c.region, c.account_id
        )
    }

    /// Whether `caller` may perform `action` on repository `name` whose policy is
    /// `repo_policy`: `Denied` with AWS's AccessDenied wording when not.
    pub(crate) fn authorize(
        &self,
        caller: &wire::Caller,
        name: &str,
        repo_policy: Option<&policy::Policy>,
        action: Action,
    ) -> Result<(), RegistryError> {
        let resource = self.repository_arn(name);
        let req = policy::Request::new(caller.shared_principal(), action.name(), &resource);
        let identity: Vec<&policy::Policy> = caller.policies().iter().collect();
        let resource_policies: Vec<&policy::Policy> = repo_policy.into_iter().collect();
        let set = policy::PolicySet {
            identity: &identity,
            resource: &resource_policies,
            session: None,
        };
        // A principal of another account needs the repository policy's allow too.
        let decision = policy::evaluate_for(&req, set, self.registry_id());
        match policy::AccessDenied::for_decision(&req, &decision) {
            None => Ok(()),
            Some(denied) => {
                tracing::info!(
                    principal = caller.principal_arn(),
                    action = action.name(),
                    repository = name,
                    "Registry request denied."
                );
                Err(RegistryError::Denied(denied.to_string()))
            }
        }
    }
}
