//! Repository names, tags and image references, by the grammar the distribution spec
//! and ECR share: a name is slash-separated components of `[a-z0-9]+` joined by `.`,
//! `_`, `__` or runs of `-`; a tag is `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.

use crate::digest::{Digest, DigestError};
use std::fmt;

/// The longest repository name ECR accepts.
pub const MAX_NAME_LEN: usize = 256;
/// ECR's shortest repository name.
pub const MIN_NAME_LEN: usize = 2;

/// Why a name, tag or reference is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The repository name breaks the grammar.
    #[error("invalid repository name '{0}': it must be 2-256 characters of lowercase components ([a-z0-9]+ joined by '.', '_', '__' or '-') separated by '/'")]
    Name(String),
    /// The tag breaks the grammar.
    #[error("invalid tag '{0}': it must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    Tag(String),
    /// The digest is malformed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The reference is empty or otherwise unparsable.
    #[error("invalid image reference '{0}'")]
    Malformed(String),
}

fn short(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Checks one name component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or '-'+, always followed by an alphanumeric.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

/// Validates a repository name (distribution grammar plus ECR's 2-256 length).
pub fn validate_name(name: &str) -> Result<(), ReferenceError> {
    let ok =
        (MIN_NAME_LEN..=MAX_NAME_LEN).contains(&name.len()) && name.split('/').all(valid_component);
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Name(short(name)))
    }
}

/// Validates a tag.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let b = tag.as_bytes();
    let first = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let rest = |x: u8| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-');
    let ok = !b.is_empty() && b.len() <= 128 && first(b[0]) && b[1..].iter().all(|&x| rest(x));
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Tag(short(tag)))
    }
}

/// What `/v2/<name>/manifests/<reference>` names: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A tag.
    Tag(String),
    /// A manifest digest.
    Digest(Digest),
}

impl Reference {
    /// Parses a path reference: anything with a `:` must be a digest, else a tag.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.contains(':') {
            Ok(Self::Digest(Digest::parse(s)?))
        } else {
            validate_tag(s)?;
            Ok(Self::Tag(s.to_owned()))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => f.write_str(t),
            Self::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// A full image reference as users write it: `[registry/]name[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReference {
    /// Registry host (with port), when the first component looks like one.
    pub registry: Option<String>,
    /// Repository name.
    pub name: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest, if given.
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parses a reference. The first component is a registry when it contains `.` or
    /// `:` or is `localhost` (Docker's rule).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() || s.len() > 4096 {
            return Err(ReferenceError::Malformed(short(s)));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, tail))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if first.is_empty()
                    || !first.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                    })
                {
                    return Err(ReferenceError::Malformed(short(s)));
                }
                (Some(first.to_owned()), tail)
            }
            _ => (None, rest),
        };
        // A tag follows the last ':' after the last '/'.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match path[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&path[..at], Some(&path[at + 1..]))
            }
            None => (path, None),
        };
        validate_name(name)?;
        if let Some(t) = tag {
            validate_tag(t)?;
        }
        Ok(Self {
            registry,
            name: name.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_the_distribution_grammar() {
        for ok in ["ab", "library/busybox", "a.b_c__d---e/f", "x0/y1/z2"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a", "A/b", "a//b", "a_", "-a", "a___b", "a/b/", "a..b", "a.-b", "",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name(&"a".repeat(257)).is_err());
    }

    #[test]
    fn tags_follow_the_grammar() {
        assert!(validate_tag("latest").is_ok());
        assert!(validate_tag("_v1.2-rc").is_ok());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("-x").is_err());
        assert!(validate_tag(&"a".repeat(128)).is_ok());
        assert!(validate_tag(&"a".repeat(129)).is_err());
    }

    #[test]
    fn image_references_split_registry_name_tag_and_digest() {
        let r = ImageReference::parse("127.0.0.1:5000/team/app:v1").expect("valid");
        assert_eq!(r.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.name, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let d = Digest::sha256_of(b"x");
        let r = ImageReference::parse(&format!("busybox@{d}")).expect("valid");
        assert_eq!((r.registry, r.tag, r.digest), (None, None, Some(d)));
        assert!(ImageReference::parse("UPPER/case").is_err());
    }

    #[test]
    fn path_references_are_tags_unless_they_contain_a_colon() {
        assert_eq!(Reference::parse("v1"), Ok(Reference::Tag("v1".into())));
        assert!(matches!(
            Reference::parse("sha256:zz"),
            Err(ReferenceError::Digest(_))
        ));
    }

    proptest! {
        #[test]
        fn parsed_references_display_back_to_themselves(
            name in "[a-z0-9]{2,8}(/[a-z0-9]{1,8}){0,2}",
            tag in proptest::option::of("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,10}"),
        ) {
            let s = match &tag { Some(t) => format!("localhost:5000/{name}:{t}"), None => format!("localhost:5000/{name}") };
            let r = ImageReference::parse(&s).expect("generated references are valid");
            prop_assert_eq!(r.to_string(), s);
        }

        #[test]
        fn reference_parsing_never_panics(s in "\\PC{0,100}") {
            let _ = ImageReference::parse(&s);
            let _ = Reference::parse(&s);
        }
    }
}
