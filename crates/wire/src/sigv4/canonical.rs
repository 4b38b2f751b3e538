//! The SigV4 canonical request: how method, path, query, signed headers and payload hash
//! are normalised before hashing. It is streamed into the hasher rather than built as a
//! string, so verifying a request allocates only for a non-empty query.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Bytes RFC 3986 calls unreserved stay as they are; everything else is `%XX` (uppercase).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same, but keeping the path's `/` separators.
const PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// Where the canonical request goes: the hasher in production, a buffer in tests.
pub(crate) trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for sha2::Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        sha2::Digest::update(self, bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// How the path is turned into the canonical URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathMode {
    /// RFC 3986 dot-segment removal plus collapsing of empty segments, as AWS's SDKs
    /// (botocore, aws-sigv4) do before signing for every service but S3.
    Normalized,
    /// The path exactly as received (some signers, e.g. Go's, do not normalise).
    AsReceived,
}

/// Whether the path changes under [`PathMode::Normalized`], i.e. whether trying
/// [`PathMode::AsReceived`] as well could give a different canonical URI.
pub(crate) fn path_needs_normalizing(path: &str) -> bool {
    if !path.starts_with('/') {
        return true;
    }
    let inner = &path[1..];
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    !inner.is_empty()
        && inner
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || inner.is_empty() && path.len() > 1
}

/// Writes the canonical URI: the path (normalised per `mode`) with every byte that is not
/// unreserved or `/` percent-encoded again. The path arrives already percent-encoded, so
/// `%2F` becomes `%252F`: AWS's double encoding for every service but S3.
pub(crate) fn write_canonical_uri(out: &mut impl Sink, path: &str, mode: PathMode) {
    if mode == PathMode::AsReceived || !path_needs_normalizing(path) {
        if path.is_empty() {
            out.put(b"/");
        }
        for chunk in percent_encode(path.as_bytes(), PATH) {
            out.put(chunk.as_bytes());
        }
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            seg => segments.push(seg),
        }
    }
    out.put(b"/");
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            out.put(b"/");
        }
        for chunk in percent_encode(seg.as_bytes(), COMPONENT) {
            out.put(chunk.as_bytes());
        }
    }
    let trailing_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if !segments.is_empty() && trailing_slash {
        out.put(b"/");
    }
}

/// How a `+` in the raw query is read before re-encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlusMode {
    /// A literal plus sign, as RFC 3986 reads it (canonical `%2B`).
    Literal,
    /// A space, as form encoding and the aws-sigv4 crate read it (canonical `%20`).
    Space,
}

/// Builds the canonical query string: each key and value percent-decoded then re-encoded
/// with only unreserved bytes left bare, sorted by encoded key then value, `k=v` joined by
/// `&`. `X-Amz-Signature` is left out when `skip_signature` (presigned URLs).
pub(crate) fn canonical_query(raw: &str, plus: PlusMode, skip_signature: bool) -> String {
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    let mut len = 0;
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, val) = pair.split_once('=').unwrap_or((pair, ""));
        let key = canonical_component(key, plus);
        if skip_signature && key == "X-Amz-Signature" {
            continue;
        }
        let val = canonical_component(val, plus);
        len += key.len() + val.len() + 2;
        pairs.push((key, val));
    }
    pairs.sort_unstable();
    let mut out = String::with_capacity(len);
    for (i, (key, val)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(val);
    }
    out
}

/// One query key or value in canonical form. Borrowed when it already is canonical, which
/// is how AWS SDKs send it.
fn canonical_component(raw: &str, plus: PlusMode) -> Cow<'_, str> {
    if is_canonical(raw.as_bytes()) {
        return Cow::Borrowed(raw);
    }
    let decoded: Cow<'_, [u8]> = if plus == PlusMode::Space && raw.contains('+') {
        let spaced = raw.replace('+', " ");
        Cow::Owned(percent_decode_str(&spaced).collect())
    } else {
        percent_decode_str(raw).into()
    };
    Cow::Owned(percent_encode(&decoded, COMPONENT).collect())
}

/// True if decoding then encoding `raw` gives `raw` back: only unreserved bytes and `%XX`
/// escapes, with uppercase hex, of bytes that are not unreserved.
fn is_canonical(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let (Some(&hi), Some(&lo)) = (raw.get(i + 1), raw.get(i + 2)) else {
                return false;
            };
            let (Some(h), Some(l)) = (upper_hex(hi), upper_hex(lo)) else {
                return false;
            };
            if is_unreserved((h << 4) | l) {
                return false;
            }
            i += 3;
        } else if !is_unreserved(b) {
            return false;
        } else {
            i += 1;
        }
    }
    true
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn upper_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Writes one `name:value\n` line per signed header. Values are trimmed of spaces with
/// inner runs of spaces collapsed to one; several values of one header are joined by `,`.
/// A signed header the request lacks gets an empty value, so the signature fails.
pub(crate) fn write_canonical_headers(
    out: &mut impl Sink,
    headers: &http::HeaderMap,
    signed: &str,
) {
    for name in signed.split(';') {
        out.put(name.as_bytes());
        out.put(b":");
        for (i, value) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                out.put(b",");
            }
            write_trimmed(out, value.as_bytes());
        }
        out.put(b"\n");
    }
}

fn write_trimmed(out: &mut impl Sink, value: &[u8]) {
    let mut first = true;
    for word in value.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        if !first {
            out.put(b" ");
        }
        out.put(word);
        first = false;
    }
}

/// The whole canonical request.
pub(crate) struct CanonicalRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) path_mode: PathMode,
    pub(crate) query: &'a str,
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) signed_headers: &'a str,
    pub(crate) payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    pub(crate) fn write(&self, out: &mut impl Sink) {
        out.put(self.method.as_bytes());
        out.put(b"\n");
        write_canonical_uri(out, self.path, self.path_mode);
        out.put(b"\n");
        out.put(self.query.as_bytes());
        out.put(b"\n");
        write_canonical_headers(out, self.headers, self.signed_headers);
        out.put(b"\n");
        out.put(self.signed_headers.as_bytes());
        out.put(b"\n");
        out.put(self.payload_hash.as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn uri(path: &str, mode: PathMode) -> String {
        let mut out = Vec::new();
        write_canonical_uri(&mut out, path, mode);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn canonical_uri_double_encodes_and_normalises() {
        let n = PathMode::Normalized;
        assert_eq!(uri("", n), "/");
        assert_eq!(uri("/", n), "/");
        assert_eq!(
            uri("/v2/a%2Fb/blobs/sha256:ab", n),
            "/v2/a%252Fb/blobs/sha256%3Aab"
        );
        assert_eq!(uri("/a b/~x", n), "/a%20b/~x");
        assert_eq!(uri("/a//b/./c/../d/", n), "/a/b/d/");
        assert_eq!(uri("//", n), "/");
        assert_eq!(uri("/a/..", n), "/");
        assert_eq!(uri("/a/b/..", n), "/a/");
        assert_eq!(uri("a", n), "/a");
        assert_eq!(uri("/a//b", PathMode::AsReceived), "/a//b");
        assert!(!path_needs_normalizing("/"));
        assert!(!path_needs_normalizing("/a/b/"));
        assert!(path_needs_normalizing("//"));
        assert!(path_needs_normalizing("/a/./b"));
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        let q = canonical_query(
            "b=2&a=1&a=0&c&d=x%2fy&e=a+b&f=%7e",
            PlusMode::Literal,
            false,
        );
        assert_eq!(q, "a=0&a=1&b=2&c=&d=x%2Fy&e=a%2Bb&f=~");
        let q = canonical_query("e=a+b&&", PlusMode::Space, false);
        assert_eq!(q, "e=a%20b");
        let q = canonical_query("X-Amz-Signature=abc&z=1", PlusMode::Literal, true);
        assert_eq!(q, "z=1");
        assert_eq!(canonical_query("", PlusMode::Literal, false), "");
        // Sorting happens on the encoded form ('%' sorts before '_').
        assert_eq!(
            canonical_query("a_=1&a%60=2", PlusMode::Literal, false),
            "a%60=2&a_=1"
        );
    }

    #[test]
    fn canonical_component_fast_path_agrees_with_slow_path() {
        for raw in [
            "abc", "a%2Fb", "a%2fb", "%7E", "%", "%4", "%zz", "a b", "%C3%A9", "a+b",
        ] {
            let slow: String =
                percent_encode(&percent_decode_str(raw).collect::<Vec<u8>>(), COMPONENT).collect();
            assert_eq!(canonical_component(raw, PlusMode::Literal), slow, "{raw}");
        }
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "example.com".parse().unwrap());
        headers.append("x-multi", "  a   b  ".parse().unwrap());
        headers.append("x-multi", "c".parse().unwrap());
        let mut out = Vec::new();
        write_canonical_headers(&mut out, &headers, "host;x-missing;x-multi");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "host:example.com\nx-missing:\nx-multi:a b,c\n"
        );
    }
}
