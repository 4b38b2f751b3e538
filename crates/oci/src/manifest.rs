//! Manifest and index parsing: the registry stores manifests as the exact bytes it was
//! given, and needs from them only what they reference (config, layers, child
//! manifests, subject) so it can refuse dangling references and keep referenced blobs
//! alive.

use crate::digest::Digest;
use crate::media::{self, ManifestKind};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The largest manifest accepted (ECR's `imageManifest` limit).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: i64,
    /// Artifact type (OCI 1.1), for index entries.
    #[serde(rename = "artifactType", default)]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform, for index entries (kept opaque).
    #[serde(default)]
    pub platform: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// What a parsed manifest or index references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The media type it is stored and served as.
    pub media_type: String,
    /// Image manifest or index.
    pub kind: ManifestKind,
    /// The config descriptor (image manifests).
    pub config: Option<Descriptor>,
    /// Layer descriptors (image manifests).
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes).
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    pub subject: Option<Descriptor>,
    /// Artifact type, when set.
    pub artifact_type: Option<String>,
    /// Annotations.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("the manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    /// Not JSON, or a member has the wrong type.
    #[error("the manifest is not valid JSON: {0}")]
    Json(String),
    /// `schemaVersion` is not 2.
    #[error("unsupported schemaVersion (only 2 is accepted)")]
    SchemaVersion,
    /// The media type is not one this registry stores.
    #[error("unsupported manifest media type '{0}'")]
    MediaType(String),
    /// The body's `mediaType` differs from the declared Content-Type.
    #[error("the manifest's mediaType '{body}' does not match the Content-Type '{declared}'")]
    MediaTypeMismatch {
        /// From the body.
        body: String,
        /// From the request.
        declared: String,
    },
    /// Required members are missing for its kind.
    #[error("{0}")]
    Structure(String),
}

impl Manifest {
    /// Parses `bytes` declared as `declared` (a Content-Type, possibly empty). The media
    /// type is the body's `mediaType`, else the declared one, else guessed from the
    /// shape (an index has `manifests`, an image `config`).
    pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let raw: Raw =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        if raw.schema_version != Some(2) {
            return Err(ManifestError::SchemaVersion);
        }
        let declared = declared
            .map(media::essence)
            .filter(|d| !d.is_empty() && media::manifest_kind(d).is_some());
        let media_type = match (&raw.media_type, declared) {
            (Some(b), Some(d)) if b != d => {
                return Err(ManifestError::MediaTypeMismatch {
                    body: b.clone(),
                    declared: d.to_owned(),
                })
            }
            (Some(b), _) => b.clone(),
            (None, Some(d)) => d.to_owned(),
            (None, None) if raw.manifests.is_some() => media::OCI_INDEX.to_owned(),
            (None, None) => media::OCI_MANIFEST.to_owned(),
        };
        let kind = media::manifest_kind(&media_type)
            .ok_or_else(|| ManifestError::MediaType(media_type.chars().take(200).collect()))?;
        match kind {
            ManifestKind::Image if raw.config.is_none() => {
                return Err(ManifestError::Structure(
                    "an image manifest needs a config descriptor".into(),
                ))
            }
            ManifestKind::Index if raw.manifests.is_none() => {
                return Err(ManifestError::Structure(
                    "an index needs a manifests list".into(),
                ))
            }
            _ => {}
        }
        let all = raw
            .config
            .iter()
            .chain(raw.layers.iter().flatten())
            .chain(raw.manifests.iter().flatten())
            .chain(raw.subject.iter());
        if all.clone().any(|d| d.size < 0) {
            return Err(ManifestError::Structure(
                "descriptor sizes must not be negative".into(),
            ));
        }
        Ok(Self {
            media_type,
            kind,
            config: raw.config,
            layers: raw.layers.unwrap_or_default(),
            manifests: raw.manifests.unwrap_or_default(),
            subject: raw.subject,
            artifact_type: raw.artifact_type,
            annotations: raw.annotations,
        })
    }

    /// Blobs this manifest needs to exist: its config and layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter())
    }

    /// Sum of config and layer sizes (ECR's `imageSizeInBytes` counts layers).
    pub fn layers_size(&self) -> i64 {
        self.layers
            .iter()
            .map(|d| d.size)
            .fold(0i64, i64::saturating_add)
    }

    /// The artifact type reported for it in a referrers list: `artifactType`, else the
    /// config's media type.
    pub fn referrer_artifact_type(&self) -> Option<String> {
        self.artifact_type
            .clone()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    #[test]
    fn docker_image_manifest_lists_config_and_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":10}},"layers":[{{"mediaType":"x","digest":"{}","size":5}}]}}"#,
            media::DOCKER_MANIFEST_V2,
            media::DOCKER_CONFIG,
            d(1),
            d(2)
        );
        let m = Manifest::parse(body.as_bytes(), Some(media::DOCKER_MANIFEST_V2)).expect("valid");
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.blobs().count(), 2);
        assert_eq!(m.layers_size(), 5);
    }

    #[test]
    fn mismatched_content_type_is_refused() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"a","digest":"{}","size":1}},"layers":[]}}"#,
            media::OCI_MANIFEST,
            d(1)
        );
        assert!(matches!(
            Manifest::parse(body.as_bytes(), Some(media::DOCKER_MANIFEST_V2)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
    }

    #[test]
    fn index_without_media_type_is_guessed_from_its_shape() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{}","size":3}}]}}"#,
            media::OCI_MANIFEST,
            d(3)
        );
        let m = Manifest::parse(body.as_bytes(), None).expect("valid");
        assert_eq!(m.media_type, media::OCI_INDEX);
        assert_eq!(m.manifests.len(), 1);
    }

    #[test]
    fn schema_one_and_garbage_are_refused() {
        assert_eq!(
            Manifest::parse(br#"{"schemaVersion":1}"#, None),
            Err(ManifestError::SchemaVersion)
        );
        assert!(matches!(
            Manifest::parse(b"nope", None),
            Err(ManifestError::Json(_))
        ));
        assert!(Manifest::parse(br#"{"schemaVersion":2}"#, None).is_err());
    }
}
