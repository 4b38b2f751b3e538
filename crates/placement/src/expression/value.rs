//! Typed values of the cluster query language: dotted versions for `agentVersion` and
//! timestamps for `registeredAt`. The date parser is a few lines of civil-calendar
//! arithmetic, so the crate needs no date library for four fixed formats.

use std::cmp::Ordering;

/// A dotted version such as `1.14.5`, compared component by component; missing trailing
/// components count as zero, so `1.14` == `1.14.0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Version(Vec<u64>);

impl Version {
    /// Parses `1.14.5` (an optional leading `v` is allowed, as agents sometimes report
    /// `v1.14.5`).
    pub(crate) fn parse(s: &str) -> Option<Version> {
        let s = s.strip_prefix('v').unwrap_or(s);
        if s.is_empty() {
            return None;
        }
        let parts: Option<Vec<u64>> = s
            .split('.')
            .map(|p| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    p.parse().ok()
                }
            })
            .collect();
        parts.map(Version)
    }

    /// Orders two versions, padding the shorter one with zeros.
    pub(crate) fn compare(&self, other: &Version) -> Ordering {
        let n = self.0.len().max(other.0.len());
        for i in 0..n {
            let a = self.0.get(i).copied().unwrap_or(0);
            let b = other.0.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads exactly `n` ASCII digits.
fn digits(s: &[u8], n: usize) -> Option<i64> {
    let d = s.get(..n)?;
    d.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Parses the `registeredAt` formats ECS documents — `2018-06-18T22:28:28+00:00`,
/// `2018-06-18T22:28:28Z`, `2018-06-18T22:28:28` (UTC) and `2018-06-18` (UTC midnight) —
/// to epoch seconds. Fractional seconds (`22:28:28.5Z`) are accepted too.
pub(crate) fn parse_timestamp(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let year = digits(b, 4)?;
    let month = digits(b.get(5..)?, 2)?;
    let day = digits(b.get(8..)?, 2)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let mut seconds = (days * 86_400) as f64;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(seconds);
    }
    if rest[0] != b'T' && rest[0] != b't' {
        return None;
    }
    let (h, m, sec) = (
        digits(&rest[1..], 2)?,
        digits(rest.get(4..)?, 2)?,
        digits(rest.get(7..)?, 2)?,
    );
    if rest.get(3) != Some(&b':') || rest.get(6) != Some(&b':') || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    seconds += (h * 3600 + m * 60 + sec) as f64;
    let mut tail = &rest[9..];
    if tail.first() == Some(&b'.') {
        let frac_len = tail[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac_len == 0 {
            return None;
        }
        let frac: f64 = std::str::from_utf8(&tail[..=frac_len]).ok()?.parse().ok()?;
        seconds += frac;
        tail = &tail[1 + frac_len..];
    }
    match tail {
        [] | [b'Z'] | [b'z'] => Some(seconds),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let oh = digits(rest, 2)?;
            let om = match rest.len() {
                2 => 0,
                5 if rest[2] == b':' => digits(&rest[3..], 2)?,
                4 => digits(&rest[2..], 2)?,
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = (oh * 3600 + om * 60) as f64;
            // Local time = UTC + offset, so UTC = local − offset.
            Some(if *sign == b'+' {
                seconds - offset
            } else {
                seconds + offset
            })
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn all_documented_timestamp_formats_parse_to_the_same_instant() {
        let expected = 1_529_360_908.0; // 2018-06-18T22:28:28Z
        for s in [
            "2018-06-18T22:28:28+00:00",
            "2018-06-18T22:28:28Z",
            "2018-06-18T22:28:28",
            "2018-06-19T00:28:28+02:00",
            "2018-06-18T20:28:28-02:00",
        ] {
            assert_eq!(parse_timestamp(s), Some(expected), "{s}");
        }
        assert_eq!(parse_timestamp("2018-06-18"), Some(1_529_280_000.0));
        assert_eq!(parse_timestamp("1970-01-01"), Some(0.0));
        assert_eq!(parse_timestamp("2000-02-29"), Some(951_782_400.0));
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        for s in [
            "",
            "2018",
            "2018-13-01",
            "2018-02-30",
            "2019-02-29",
            "2018-06-18T",
            "2018-06-18T25:00:00",
            "2018-06-18T22:28:28+0",
            "2018/06/18",
            "2018-06-18Tx",
            "2018-06-18T22:28:28.Z",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn versions_compare_numerically_with_zero_padding() {
        let v = |s| Version::parse(s).unwrap();
        assert_eq!(v("1.14.5").compare(&v("1.9.0")), Ordering::Greater);
        assert_eq!(v("1.14").compare(&v("1.14.0")), Ordering::Equal);
        assert_eq!(v("v1.2.3").compare(&v("1.2.4")), Ordering::Less);
        assert!(Version::parse("1..2").is_none());
        assert!(Version::parse("1.x").is_none());
    }
}
