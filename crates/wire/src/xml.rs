//! The query protocol's response side, shared by every query service (ELBv2, IAM, STS):
//! a minimal XML writer (elements, escaped text,
//! `<member>` lists) and the `<OpResponse><OpResult>…</OpResult><ResponseMetadata>`
//! envelope botocore's `QueryParser` reads. Writing by hand keeps the element names
//! exactly AWS's, which a serializer's renaming rules would only obscure.

/// An XML fragment under construction.
#[derive(Default)]
pub struct Xml {
    buf: String,
}

impl Xml {
    /// An empty fragment.
    pub fn new() -> Self {
        Self::default()
    }

    /// `<tag>` … `</tag>` around whatever `body` writes.
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

    /// `<tag>text</tag>` with `text` escaped.
    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        self.el(tag, |x| escape_into(&mut x.buf, text))
    }

    /// Escaped text inside the element being written.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.buf, text);
        self
    }

    /// [`Xml::leaf`] when `text` is present; nothing otherwise.
    pub fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
        self
    }

    /// A list as AWS writes it: `<tag><member>…</member>…</tag>`.
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

    /// The text written so far.
    pub fn finish(self) -> String {
        self.buf
    }
}

/// Appends `text` with the five XML special characters escaped (and other control
/// characters as numeric references, since raw ones make the document ill-formed).
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

/// The whole response document for `operation` of the service whose XML namespace is
/// `namespace`, with `result` (the members of the output shape) inside `<OpResult>`;
/// `None` leaves the result element out, as IAM answers operations without output.
pub fn envelope(
    namespace: &str,
    operation: &str,
    request_id: &str,
    result: Option<&str>,
) -> String {
    let mut out = String::with_capacity(result.map_or(0, str::len) + 256);
    out.push_str(&format!("<{operation}Response xmlns=\"{namespace}\">"));
    if let Some(result) = result {
        out.push_str(&format!("<{operation}Result>"));
        out.push_str(result);
        out.push_str(&format!("</{operation}Result>"));
    }
    out.push_str("<ResponseMetadata><RequestId>");
    escape_into(&mut out, request_id);
    out.push_str("</RequestId></ResponseMetadata>");
    out.push_str(&format!("</{operation}Response>"));
    out
}

/// Epoch milliseconds as ISO-8601 UTC with milliseconds (`2024-11-26T10:05:00.123Z`),
/// the timestamp format of the query protocol.
pub fn iso8601(ms: i64) -> String {
    let millis = ms.rem_euclid(1000);
    let whole = iso8601_secs(ms.div_euclid(1000));
    format!("{}.{millis:03}Z", whole.trim_end_matches('Z'))
}

/// Unix seconds as ISO-8601 UTC in whole seconds (`2024-11-26T10:35:00Z`), as IAM and STS
/// answer dates.
pub fn iso8601_secs(secs: i64) -> String {
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

/// A query-protocol timestamp, `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` (years 0–9999), as
/// epoch seconds: the inverse of [`iso8601`] for what clients send.
pub fn parse_iso8601(s: &str) -> Option<f64> {
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    if !(0..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':').unwrap_or((&o[1..], "0"));
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    } else {
        (time, 0)
    };
    let mut c = clock.splitn(3, ':');
    let (hh, mm): (i64, i64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let secs: f64 = c.next().unwrap_or("0").parse().ok()?;
    if hh > 23 || mm > 59 || !(0.0..61.0).contains(&secs) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    #[allow(clippy::cast_precision_loss)]
    let whole = (days * 86_400 + hh * 3600 + mm * 60 - offset) as f64;
    Some(whole + secs)
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
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
    fn parse_iso8601_inverts_the_formatter() {
        for secs in [0, 951_782_400, 1_800_000_000, 4_102_444_799] {
            #[allow(clippy::cast_precision_loss)]
            let expected = secs as f64;
            assert_eq!(parse_iso8601(&iso8601_secs(secs)), Some(expected));
        }
        assert_eq!(
            parse_iso8601("2027-01-15T08:00:00.250Z"),
            Some(1_800_000_000.25)
        );
    }

    #[test]
    fn escapes_text_and_writes_member_lists() {
        let mut x = Xml::new();
        x.leaf("A", "a<b>&\"c'\u{1}")
            .strings("L", ["x", "y"])
            .opt("N", None);
        assert_eq!(
            x.finish(),
            "<A>a&lt;b&gt;&amp;&quot;c&apos;</A><L><member>x</member><member>y</member></L>"
        );
    }

    #[test]
    fn envelope_wraps_result_and_request_id() {
        const NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
        let doc = envelope(NAMESPACE, "DeleteRule", "rid-1", Some(""));
        assert_eq!(
            doc,
            format!("<DeleteRuleResponse xmlns=\"{NAMESPACE}\"><DeleteRuleResult></DeleteRuleResult><ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata></DeleteRuleResponse>")
        );
    }

    #[test]
    fn iso8601_formats_utc_with_millis() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_732_615_500_123), "2024-11-26T10:05:00.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso8601_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_secs(1_732_617_300), "2024-11-26T10:35:00Z");
    }

    #[test]
    fn envelope_without_result_has_no_result_element() {
        let doc = envelope("ns", "DeleteUser", "r1", None);
        assert!(!doc.contains("DeleteUserResult"));
        assert!(doc.contains("<RequestId>r1</RequestId>"));
    }
}
