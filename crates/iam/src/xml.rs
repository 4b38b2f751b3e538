//! The query protocol's response side for IAM and STS, on `wire::xml`'s writer: the
//! `<OpResponse xmlns=…><OpResult>…</OpResult><ResponseMetadata>` envelope (without a
//! result element for operations that have no output, as IAM answers them), the ISO 8601
//! dates (whole seconds) and URL-encoded policy documents IAM answers with.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// IAM's XML namespace.
pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// STS's XML namespace.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub use wire::xml::Xml;

/// The response document of `operation`; `result` is `None` for operations with no output.
pub fn envelope(
    namespace: &str,
    operation: &str,
    request_id: &str,
    result: Option<&str>,
) -> String {
    let mut out = String::with_capacity(result.map_or(0, str::len) + 256);
    out.push_str(&format!("<{operation}Response xmlns=\"{namespace}\">"));
    if let Some(result) = result {
        out.push_str(&format!("<{operation}Result>{result}</{operation}Result>"));
    }
    out.push_str("<ResponseMetadata>");
    let mut id = Xml::new();
    id.leaf("RequestId", request_id);
    out.push_str(&id.finish());
    out.push_str("</ResponseMetadata>");
    out.push_str(&format!("</{operation}Response>"));
    out
}

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

/// `2024-11-26T10:35:00Z` for Unix seconds.
pub fn iso8601(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso8601_utc_seconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_732_617_300), "2024-11-26T10:35:00Z");
    }

    #[test]
    fn policy_documents_are_percent_encoded_with_spaces_as_percent_20() {
        assert_eq!(
            policy_document(r#"{"A": "b"}"#),
            "%7B%22A%22%3A%20%22b%22%7D"
        );
    }

    #[test]
    fn empty_results_have_no_result_element() {
        let doc = envelope(IAM_NAMESPACE, "DeleteUser", "r1", None);
        assert!(!doc.contains("DeleteUserResult"));
        assert!(doc.contains("<RequestId>r1</RequestId>"));
    }
}
