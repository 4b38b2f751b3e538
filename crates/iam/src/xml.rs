//! The query protocol's response side for IAM and STS: a small XML writer and the
//! `<OpResponse xmlns=…><OpResult>…</OpResult><ResponseMetadata>` envelope botocore's
//! query parser reads, plus the ISO 8601 dates and URL-encoded policy documents IAM
//! answers with.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// IAM's XML namespace.
pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// STS's XML namespace.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// An XML fragment being written.
#[derive(Default)]
pub struct Xml {
    buf: String,
}

impl Xml {
    /// An empty fragment.
    pub fn new() -> Self {
        Self::default()
    }

    /// `<tag>…</tag>` with `body` writing the content.
    pub fn el(&mut self, tag: &str, body: impl FnOnce(&mut Xml)) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        body(self);
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag>text</tag>`, escaped.
    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        self.el(tag, |x| escape_into(&mut x.buf, text))
    }

    /// [`Xml::leaf`] when `text` is given.
    pub fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
        self
    }

    /// `<tag><member>…</member>…</tag>`.
    pub fn list<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.el(tag, |x| {
            for item in items {
                x.el("member", |m| each(m, item));
            }
        })
    }

    /// A list of strings.
    pub fn strings<S: AsRef<str>>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.list(tag, items, |x, s| escape_into(&mut x.buf, s.as_ref()))
    }

    /// The text written.
    pub fn finish(self) -> String {
        self.buf
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

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
    out.push_str("<ResponseMetadata><RequestId>");
    escape_into(&mut out, request_id);
    out.push_str("</RequestId></ResponseMetadata>");
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
