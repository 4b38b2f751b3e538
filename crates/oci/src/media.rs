//! Media types the registry accepts and serves.

/// Docker image manifest, v2 schema 2.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI empty descriptor's type.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// What kind of document a manifest media type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (config + layers): Docker v2 schema 2 or OCI.
    Image,
    /// A list of manifests: Docker manifest list or OCI index.
    Index,
}

/// The kind of a manifest media type this registry stores, or `None` if unsupported.
pub fn manifest_kind(media_type: &str) -> Option<ManifestKind> {
    match media_type {
        DOCKER_MANIFEST_V2 | OCI_MANIFEST => Some(ManifestKind::Image),
        DOCKER_MANIFEST_LIST | OCI_INDEX => Some(ManifestKind::Index),
        _ => None,
    }
}

/// The media type without parameters (`; charset=...`), trimmed.
pub fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Whether an `Accept` header value admits `media_type`. No header, or a wildcard,
/// admits everything; so does a header naming only non-manifest types, because old
/// clients send `Accept: */*`-like lists and expect the stored manifest.
pub fn accepts(accept: &[&str], media_type: &str) -> bool {
    let mut named_manifest = false;
    for value in accept {
        for item in value.split(',') {
            let t = essence(item);
            if t == "*/*" || t == "application/*" || t == media_type {
                return true;
            }
            if manifest_kind(t).is_some() {
                named_manifest = true;
            }
        }
    }
    !named_manifest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists_that_name_other_manifest_types_refuse() {
        assert!(accepts(&[], OCI_MANIFEST));
        assert!(accepts(
            &[&format!("{DOCKER_MANIFEST_V2}, {OCI_MANIFEST}")],
            OCI_MANIFEST
        ));
        assert!(!accepts(&[DOCKER_MANIFEST_V2], OCI_INDEX));
        assert!(accepts(&["*/*"], OCI_INDEX));
        assert!(accepts(&["application/json"], OCI_INDEX));
    }
}
