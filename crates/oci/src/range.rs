//! Byte ranges: the `Content-Range` of chunked uploads (`<start>-<end>`, inclusive, as
//! the distribution spec writes it; `bytes <start>-<end>/<total|*>` is accepted too) and
//! the `Range` of blob downloads (RFC 9110, one range).

/// An inclusive byte range `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes covered.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
    /// Never true: a range covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Why a range header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The header does not parse.
    #[error("malformed range header '{0}'")]
    Malformed(String),
    /// The range lies outside the content (answer 416).
    #[error("range not satisfiable")]
    Unsatisfiable,
}

fn malformed(s: &str) -> RangeError {
    RangeError::Malformed(s.chars().take(100).collect())
}

fn number(s: &str, whole: &str) -> Result<u64, RangeError> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(whole));
    }
    s.parse().map_err(|_| malformed(whole))
}

/// Parses an upload `Content-Range`.
pub fn parse_content_range(header: &str) -> Result<ByteRange, RangeError> {
    let s = header.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split_once('/').map_or(s, |(r, _total)| r);
    let (a, b) = s.split_once('-').ok_or_else(|| malformed(header))?;
    let (start, end) = (number(a.trim(), header)?, number(b.trim(), header)?);
    if end < start {
        return Err(malformed(header));
    }
    Ok(ByteRange { start, end })
}

/// Parses a download `Range` against a blob of `total` bytes. Only single `bytes=`
/// ranges are served; anything else is `Malformed` (the caller then serves the whole
/// blob, as RFC 9110 allows).
pub fn parse_range(header: &str, total: u64) -> Result<ByteRange, RangeError> {
    let s = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| malformed(header))?;
    if s.contains(',') {
        return Err(malformed(header));
    }
    let (a, b) = s.split_once('-').ok_or_else(|| malformed(header))?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n = number(b, header)?;
        if n == 0 || total == 0 {
            return Err(RangeError::Unsatisfiable);
        }
        return Ok(ByteRange {
            start: total.saturating_sub(n),
            end: total - 1,
        });
    }
    let start = number(a, header)?;
    if start >= total {
        return Err(RangeError::Unsatisfiable);
    }
    let end = if b.is_empty() {
        total - 1
    } else {
        number(b, header)?.min(total - 1)
    };
    if end < start {
        return Err(malformed(header));
    }
    Ok(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_range_accepts_the_spec_form_and_the_http_form() {
        assert_eq!(
            parse_content_range("0-99"),
            Ok(ByteRange { start: 0, end: 99 })
        );
        assert_eq!(
            parse_content_range("bytes 100-199/*"),
            Ok(ByteRange {
                start: 100,
                end: 199
            })
        );
        assert!(parse_content_range("9-1").is_err());
        assert!(parse_content_range("-1").is_err());
        assert!(parse_content_range("a-b").is_err());
    }

    #[test]
    fn download_ranges_cover_prefix_suffix_and_open_ended_forms() {
        assert_eq!(
            parse_range("bytes=0-9", 100),
            Ok(ByteRange { start: 0, end: 9 })
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            Ok(ByteRange { start: 90, end: 99 })
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Ok(ByteRange { start: 90, end: 99 })
        );
        assert_eq!(
            parse_range("bytes=50-500", 100),
            Ok(ByteRange { start: 50, end: 99 })
        );
        assert_eq!(
            parse_range("bytes=100-", 100),
            Err(RangeError::Unsatisfiable)
        );
        assert!(matches!(
            parse_range("bytes=0-1,4-5", 100),
            Err(RangeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn satisfiable_ranges_stay_inside_the_blob(total in 1u64..1_000_000, a in 0u64..2_000_000, b in 0u64..2_000_000) {
            if let Ok(r) = parse_range(&format!("bytes={a}-{b}"), total) {
                prop_assert!(r.start <= r.end && r.end < total);
            }
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,60}", total in 0u64..10) {
            let _ = parse_content_range(&s);
            let _ = parse_range(&s, total);
        }
    }
}
