//! `oci` owns the vocabulary of OCI images and the distribution protocol, as pure code:
//! content digests ([`digest`]), repository names, tags and image references
//! ([`reference`]), media types ([`media`]), manifest and index parsing and validation
//! ([`manifest`]), the byte-range headers uploads and downloads use ([`range`]), and the
//! registered table of distribution error codes ([`errcode`]).
//!
//! It must stay pure: no I/O, no async runtime, no clock. The registry and the agent
//! both build on it, so nothing here may know about storage or HTTP servers.

#![forbid(unsafe_code)]

pub mod digest;
pub mod errcode;
pub mod manifest;
pub mod media;
pub mod range;
pub mod reference;

pub use digest::{Algorithm, Digest, DigestError, Digester};
pub use errcode::ErrorCode;
pub use manifest::{Descriptor, Manifest, ManifestError};
pub use range::{ByteRange, RangeError};
pub use reference::{ImageReference, ReferenceError};
