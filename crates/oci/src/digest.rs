//! Content digests: `<algorithm>:<hex>`, as the OCI image spec defines them. Only the
//! registered algorithms (sha256, sha512) are accepted, with lowercase hex of the exact
//! length, so one blob has exactly one spelling and can be used as a storage key.

use sha2::Digest as _;
use std::fmt;
use std::str::FromStr;

/// A registered digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the one every registry must support.
    Sha256,
    /// SHA-512, optional in the spec.
    Sha512,
}

impl Algorithm {
    /// The name used in digests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
    /// Length of the hex-encoded value.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
    /// Parses an algorithm name.
    pub fn parse(name: &str) -> Result<Self, DigestError> {
        match name {
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            other => Err(DigestError::UnsupportedAlgorithm(other.to_owned())),
        }
    }
}

/// A validated content digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `:` separates algorithm and value.
    #[error("a digest has the form <algorithm>:<hex>; '{0}' has no ':'")]
    Malformed(String),
    /// The algorithm is not registered.
    #[error("unsupported digest algorithm '{0}' (sha256 and sha512 are supported)")]
    UnsupportedAlgorithm(String),
    /// The hex part has the wrong length or characters.
    #[error("the {algorithm} digest value must be {len} lowercase hex characters")]
    BadHex {
        /// Algorithm named in the digest.
        algorithm: &'static str,
        /// Required length.
        len: usize,
    },
}

impl Digest {
    /// Parses and validates `<algorithm>:<hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(truncate(s)))?;
        let algorithm = Algorithm::parse(alg)?;
        let ok = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(DigestError::BadHex {
                algorithm: algorithm.as_str(),
                len: algorithm.hex_len(),
            });
        }
        Ok(Self {
            algorithm,
            hex: hex.to_owned(),
        })
    }
    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        let mut d = Digester::new(Algorithm::Sha256);
        d.update(bytes);
        d.finish()
    }
    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    /// The lowercase hex value.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher that yields a [`Digest`]; cloning it snapshots the state.
#[derive(Clone)]
pub enum Digester {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }
    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha512(_) => Algorithm::Sha512,
        }
    }
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }
    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Self::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Self::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_blob_has_the_well_known_sha256() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rejects_uppercase_short_and_unknown_algorithms() {
        let h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(Digest::parse(&format!("sha256:{h}")).is_ok());
        assert!(Digest::parse(&format!("sha256:{}", h.to_uppercase())).is_err());
        assert!(Digest::parse(&format!("sha256:{}", &h[1..])).is_err());
        assert!(matches!(
            Digest::parse(&format!("md5:{h}")),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(Digest::parse(h).is_err());
    }

    #[test]
    fn incremental_hashing_equals_one_shot() {
        let mut d = Digester::new(Algorithm::Sha256);
        d.update(b"hello ");
        d.update(b"world");
        assert_eq!(d.finish(), Digest::sha256_of(b"hello world"));
    }

    proptest! {
        #[test]
        fn display_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let d = Digest::sha256_of(&bytes);
            prop_assert_eq!(Digest::parse(&d.to_string()).ok(), Some(d));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = Digest::parse(&s);
        }
    }
}
