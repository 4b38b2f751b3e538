//! Registry errors and their two mappings to the wire, each in one place: the OCI error
//! body (`{"errors":[{code,message,detail}]}`, code and status from `oci::ErrorCode`'s
//! registered table) for `/v2/`, and AWS's exceptions for the ECR API.

use oci::ErrorCode;
use wire::{AwsError, Service};

/// Everything a registry operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The body is not JSON or a member has the wrong type (ECR API).
    #[error("{0}")]
    Serialization(String),
    /// A parameter is missing, out of range or malformed.
    #[error("{0}")]
    InvalidParameter(String),
    /// A request breaks a rule the model types cannot say (ECR's ValidationException).
    #[error("{0}")]
    Validation(String),
    /// The target names an operation the ECR model does not have.
    #[error("Operation {0} is not supported by this Amazon ECR endpoint.")]
    UnknownOperation(String),
    /// An operation of the ECR model that Stevedore does not serve (yet).
    #[error("Operation {} of Amazon ECR is not implemented by Stevedore yet.", .0.name())]
    NotImplemented(crate::Operation),
    /// The repository name breaks AWS's rules.
    #[error("{0}")]
    NameInvalid(String),
    /// The repository does not exist.
    #[error("The repository with name '{0}' does not exist in the registry with id '{1}'")]
    RepositoryNotFound(String, String),
    /// CreateRepository on an existing name.
    #[error("The repository with name '{0}' already exists in the registry with id '{1}'")]
    RepositoryAlreadyExists(String, String),
    /// DeleteRepository without force on a repository holding images.
    #[error("The repository with name '{0}' in registry with id '{1}' cannot be deleted because it still contains images")]
    RepositoryNotEmpty(String, String),
    /// The tag or digest names no image.
    #[error("{0}")]
    ImageNotFound(String),
    /// The manifest names a blob or child manifest that is not in the registry.
    #[error("{0}")]
    ManifestBlobUnknown(String),
    /// An index names a child manifest that is not in the repository.
    #[error("{0}")]
    ReferencedImagesNotFound(String),
    /// The manifest is malformed.
    #[error("{0}")]
    ManifestInvalid(String),
    /// An immutable tag would move.
    #[error("The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the repository is immutable.")]
    TagImmutable {
        /// Repository.
        repository: String,
        /// Tag.
        tag: String,
    },
    /// PutImage of an image already stored under that tag.
    #[error("Image with digest '{digest}' and tag '{tag}' already exists in the repository with name '{repository}' in registry with id '{registry}'")]
    ImageAlreadyExists {
        /// Digest.
        digest: String,
        /// Tag.
        tag: String,
        /// Repository.
        repository: String,
        /// Registry id.
        registry: String,
    },
    /// The tag is malformed.
    #[error("{0}")]
    TagInvalid(String),
    /// The blob is not in this repository.
    #[error("{0}")]
    BlobUnknown(String),
    /// The upload session does not exist.
    #[error("{0}")]
    UploadUnknown(String),
    /// The upload is invalid (ranges, sizes, concurrent writers).
    #[error("{0}")]
    UploadInvalid(String),
    /// A chunk is out of order.
    #[error("{message}")]
    RangeInvalid {
        /// Explanation.
        message: String,
        /// Bytes received so far.
        size: u64,
    },
    /// The digest is malformed or does not match the content.
    #[error("{0}")]
    DigestInvalid(String),
    /// The operation is not supported.
    #[error("{0}")]
    Unsupported(String),
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller's policies do not allow the action (AWS's AccessDenied wording).
    #[error("{0}")]
    Denied(String),
    /// The repository has no policy / lifecycle policy.
    #[error("{0}")]
    PolicyNotFound(String),
    /// The repository has no lifecycle policy.
    #[error("{0}")]
    LifecyclePolicyNotFound(String),
    /// No lifecycle policy preview exists.
    #[error("{0}")]
    LifecyclePreviewNotFound(String),
    /// The registry has no registry policy.
    #[error("{0}")]
    RegistryPolicyNotFound(String),
    /// PutImage's `imageDigest` is not the manifest's digest.
    #[error("{0}")]
    ImageDigestDoesNotMatch(String),
    /// A layer upload part failed (ECR layer API).
    #[error("{message}")]
    InvalidLayerPart {
        /// Explanation.
        message: String,
        /// Last byte received so far (-1 when none).
        last_valid: i64,
        /// Upload id.
        upload_id: String,
        /// Repository.
        repository: String,
        /// Registry id.
        registry: String,
    },
    /// CompleteLayerUpload's digest does not match (ECR layer API).
    #[error("{0}")]
    LayerDigestMismatch(String),
    /// CompleteLayerUpload with no parts.
    #[error("{0}")]
    EmptyUpload(String),
    /// CompleteLayerUpload for a blob already present.
    #[error("{0}")]
    LayerAlreadyExists(String),
    /// GetDownloadUrlForLayer for a missing layer.
    #[error("{0}")]
    LayersNotFound(String),
    /// Too many tags on a resource.
    #[error("{0}")]
    TooManyTags(String),
    /// Tag keys or values are invalid.
    #[error("{0}")]
    InvalidTagParameter(String),
    /// No scan exists for the image.
    #[error("{0}")]
    ScanNotFound(String),
    /// No replication backfill has the id.
    #[error("{0}")]
    ReplicationBackfillNotFound(String),
    /// A replication backfill to the destination region is already running.
    #[error("{0}")]
    ReplicationBackfillInProgress(String),
    /// The replication backfill's status does not allow the request.
    #[error("{0}")]
    ReplicationBackfillInvalidStatus(String),
    /// A quota was reached (an image's scans per 24 hours).
    #[error("{0}")]
    LimitExceeded(String),
    /// CreatePullThroughCacheRule for a prefix that has a rule.
    #[error("{0}")]
    PullThroughCacheRuleAlreadyExists(String),
    /// No pull-through cache rule has the prefix.
    #[error("{0}")]
    PullThroughCacheRuleNotFound(String),
    /// The upstream registry cannot be used.
    #[error("{0}")]
    UnsupportedUpstreamRegistry(String),
    /// The rule's secret does not exist.
    #[error("{0}")]
    SecretNotFound(String),
    /// The rule's secret exists but cannot be read.
    #[error("{0}")]
    UnableToAccessSecret(String),
    /// The rule's secret does not hold credentials.
    #[error("{0}")]
    UnableToDecryptSecret(String),
    /// A pull-through import failed upstream.
    #[error("{0}")]
    UnableToGetUpstreamImage(String),
    /// The state store failed.
    #[error("The registry's state store failed: {0}")]
    Store(#[from] store::StoreError),
    /// Blob storage failed.
    #[error("The registry's blob storage failed: {0}")]
    Storage(String),
    /// Compare-and-swap kept losing.
    #[error("Too many concurrent updates to {0}; retry the request.")]
    Contention(String),
}

impl From<store::ObjectsError> for RegistryError {
    /// Contention stays contention and store failures stay store failures; an object
    /// that does not encode or decode is reported as a storage failure naming its key.
    fn from(e: store::ObjectsError) -> Self {
        match e {
            store::ObjectsError::Store(e) => Self::Store(e),
            store::ObjectsError::Contention { what } => Self::Contention(what),
            other => Self::Storage(other.to_string()),
        }
    }
}

impl RegistryError {
    /// The distribution error code this is reported as on `/v2/`.
    pub fn oci_code(&self) -> ErrorCode {
        match self {
            Self::Serialization(_)
            | Self::InvalidParameter(_)
            | Self::Validation(_)
            | Self::UnknownOperation(_)
            | Self::NotImplemented(_) => ErrorCode::Unsupported,
            Self::NameInvalid(_) => ErrorCode::NameInvalid,
            Self::RepositoryNotFound(..) => ErrorCode::NameUnknown,
            Self::RepositoryAlreadyExists(..) | Self::RepositoryNotEmpty(..) => ErrorCode::Denied,
            Self::ImageNotFound(_) => ErrorCode::ManifestUnknown,
            Self::ManifestBlobUnknown(_) | Self::ReferencedImagesNotFound(_) => {
                ErrorCode::ManifestBlobUnknown
            }
            Self::ManifestInvalid(_) => ErrorCode::ManifestInvalid,
            Self::TagImmutable { .. } | Self::ImageAlreadyExists { .. } | Self::TagInvalid(_) => {
                ErrorCode::TagInvalid
            }
            Self::BlobUnknown(_) | Self::LayersNotFound(_) => ErrorCode::BlobUnknown,
            Self::UploadUnknown(_) => ErrorCode::BlobUploadUnknown,
            Self::UploadInvalid(_) | Self::InvalidLayerPart { .. } | Self::EmptyUpload(_) => {
                ErrorCode::BlobUploadInvalid
            }
            Self::RangeInvalid { .. } => ErrorCode::RangeInvalid,
            Self::DigestInvalid(_) | Self::LayerDigestMismatch(_) => ErrorCode::DigestInvalid,
            Self::LayerAlreadyExists(_) => ErrorCode::BlobUploadInvalid,
            Self::Unsupported(_) => ErrorCode::Unsupported,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Denied(_) => ErrorCode::Denied,
            Self::PolicyNotFound(_)
            | Self::LifecyclePolicyNotFound(_)
            | Self::LifecyclePreviewNotFound(_)
            | Self::RegistryPolicyNotFound(_) => ErrorCode::NameUnknown,
            Self::ImageDigestDoesNotMatch(_) => ErrorCode::DigestInvalid,
            Self::TooManyTags(_) | Self::InvalidTagParameter(_) => ErrorCode::Denied,
            Self::ScanNotFound(_) => ErrorCode::ManifestUnknown,
            Self::ReplicationBackfillNotFound(_) => ErrorCode::NameUnknown,
            Self::ReplicationBackfillInProgress(_) | Self::ReplicationBackfillInvalidStatus(_) => {
                ErrorCode::Denied
            }
            Self::LimitExceeded(_) => ErrorCode::TooManyRequests,
            Self::PullThroughCacheRuleAlreadyExists(_)
            | Self::UnsupportedUpstreamRegistry(_)
            | Self::SecretNotFound(_)
            | Self::UnableToAccessSecret(_)
            | Self::UnableToDecryptSecret(_) => ErrorCode::Denied,
            Self::PullThroughCacheRuleNotFound(_) => ErrorCode::NameUnknown,
            // Docker reports the pull as "manifest unknown" with this message.
            Self::UnableToGetUpstreamImage(_) => ErrorCode::ManifestUnknown,
            Self::Store(_) | Self::Storage(_) | Self::Contention(_) => ErrorCode::Internal,
        }
    }

    /// The AWS exception this is reported as on the ECR API.
    pub fn to_aws(&self) -> AwsError {
        let msg = self.to_string();
        let code = match self {
            Self::Serialization(_) => "SerializationException",
            Self::InvalidParameter(_)
            | Self::NameInvalid(_)
            | Self::ManifestInvalid(_)
            | Self::TagInvalid(_)
            | Self::DigestInvalid(_)
            | Self::UploadInvalid(_)
            | Self::RangeInvalid { .. } => "InvalidParameterException",
            Self::UnknownOperation(name) => {
                return wire::dispatch::unknown_operation(&crate::Registry::SPEC, name)
            }
            Self::NotImplemented(op) => {
                return wire::dispatch::not_implemented(&crate::Registry::SPEC, op.name())
            }
            Self::RepositoryNotFound(..) => "RepositoryNotFoundException",
            Self::RepositoryAlreadyExists(..) => "RepositoryAlreadyExistsException",
            Self::RepositoryNotEmpty(..) => "RepositoryNotEmptyException",
            Self::ImageNotFound(_) => "ImageNotFoundException",
            Self::ManifestBlobUnknown(_) | Self::BlobUnknown(_) => "LayersNotFoundException",
            Self::ReferencedImagesNotFound(_) => "ReferencedImagesNotFoundException",
            Self::TagImmutable { .. } => "ImageTagAlreadyExistsException",
            Self::ImageAlreadyExists { .. } => "ImageAlreadyExistsException",
            Self::UploadUnknown(_) => "UploadNotFoundException",
            Self::Unsupported(_) => "UnsupportedImageTypeException",
            Self::Unauthorized(_) | Self::Denied(_) => "AccessDeniedException",
            Self::PolicyNotFound(_) => "RepositoryPolicyNotFoundException",
            Self::LifecyclePolicyNotFound(_) => "LifecyclePolicyNotFoundException",
            Self::LifecyclePreviewNotFound(_) => "LifecyclePolicyPreviewNotFoundException",
            Self::RegistryPolicyNotFound(_) => "RegistryPolicyNotFoundException",
            Self::ImageDigestDoesNotMatch(_) => "ImageDigestDoesNotMatchException",
            Self::InvalidLayerPart {
                last_valid,
                upload_id,
                repository,
                registry,
                ..
            } => {
                let mut e = AwsError::client("InvalidLayerPartException", msg);
                e.extra
                    .insert("lastValidByteReceived".into(), (*last_valid).into());
                e.extra.insert("uploadId".into(), upload_id.clone().into());
                e.extra
                    .insert("repositoryName".into(), repository.clone().into());
                e.extra.insert("registryId".into(), registry.clone().into());
                return e;
            }
            Self::LayerDigestMismatch(_) => "InvalidLayerException",
            Self::EmptyUpload(_) => "EmptyUploadException",
            Self::LayerAlreadyExists(_) => "LayerAlreadyExistsException",
            Self::LayersNotFound(_) => "LayersNotFoundException",
            Self::TooManyTags(_) => "TooManyTagsException",
            Self::InvalidTagParameter(_) => "InvalidTagParameterException",
            Self::ScanNotFound(_) => "ScanNotFoundException",
            Self::Validation(_) => "ValidationException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::ReplicationBackfillNotFound(_) => "ReplicationBackfillNotFoundException",
            Self::ReplicationBackfillInProgress(_) => "ReplicationBackfillInProgressException",
            Self::ReplicationBackfillInvalidStatus(_) => {
                "ReplicationBackfillInvalidStatusException"
            }
            Self::PullThroughCacheRuleAlreadyExists(_) => {
                "PullThroughCacheRuleAlreadyExistsException"
            }
            Self::PullThroughCacheRuleNotFound(_) => "PullThroughCacheRuleNotFoundException",
            Self::UnsupportedUpstreamRegistry(_) => "UnsupportedUpstreamRegistryException",
            Self::SecretNotFound(_) => "SecretNotFoundException",
            Self::UnableToAccessSecret(_) => "UnableToAccessSecretException",
            Self::UnableToDecryptSecret(_) => "UnableToDecryptSecretValueException",
            Self::UnableToGetUpstreamImage(_) => "UnableToGetUpstreamImageException",
            Self::Store(_) | Self::Storage(_) | Self::Contention(_) => {
                return AwsError::server("ServerException", msg)
            }
        };
        AwsError::client(code, msg)
    }
}

impl From<blobstore::BlobError> for RegistryError {
    fn from(e: blobstore::BlobError) -> Self {
        use blobstore::BlobError as B;
        match e {
            B::NotFound(d) => Self::BlobUnknown(format!("blob {d} is unknown to the registry")),
            B::UploadNotFound(id) => {
                Self::UploadUnknown(format!("upload {id} is unknown to the registry"))
            }
            B::InvalidUploadId => Self::UploadUnknown("invalid upload id".into()),
            B::OffsetMismatch { offset, size } => Self::RangeInvalid {
                message: format!(
                    "the chunk starts at byte {offset} but {size} bytes have been received"
                ),
                size,
            },
            B::UploadBusy(id) => {
                Self::UploadInvalid(format!("another request is writing to upload {id}"))
            }
            B::DigestMismatch { expected, actual } => Self::DigestInvalid(format!(
                "the uploaded content has digest {actual}, not {expected}"
            )),
            B::TooLarge(n) => Self::UploadInvalid(format!("the blob exceeds the {n}-byte limit")),
            B::Body(e) => Self::UploadInvalid(format!("reading the request body failed: {e}")),
            B::RangeNotSatisfiable => Self::RangeInvalid {
                message: "range outside the blob".into(),
                size: 0,
            },
            B::Io(e) => Self::Storage(e.to_string()),
        }
    }
}

/// Shorthand for the common refusal.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, RegistryError> {
    Err(RegistryError::InvalidParameter(msg.into()))
}
