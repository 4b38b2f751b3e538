//! The query protocol's response side for IAM and STS: their namespaces and the
//! URL-encoded policy documents IAM answers with; the envelope, the writer and ISO 8601
//! dates (whole seconds) are `wire::xml`'s.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// IAM's XML namespace.
pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// STS's XML namespace.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub use wire::xml::{envelope, iso8601_secs, Xml};

/// Everything but `-_.~` and alphanumerics is escaped, spaces as `%20`: what botocore's
/// `unquote` turns back into the document.
const POLICY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A policy document as IAM answers it: URL-encoded.
pub fn policy_document(document: &str) -> String {
    utf8_percent_encode(document, POLICY_ENCODE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_percent_encoded_with_spaces_as_percent_20() {
        assert_eq!(
            policy_document(r#"{"A": "b"}"#),
            "%7B%22A%22%3A%20%22b%22%7D"
        );
    }
}
