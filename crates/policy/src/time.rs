//! Dates as `Date*` condition operators read them: ISO 8601 (`2026-01-31`,
//! `2026-01-31T12:00:00Z`, with fractions or a `+hh:mm` offset) or epoch seconds.

/// Milliseconds since the Unix epoch, or `None` when `s` is not a date IAM reads.
pub(crate) fn parse_date_millis(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s.parse().ok()?;
        return Some((secs * 1000.0) as i64);
    }
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-');
    let year: i64 = num(d.next()?, 4)?;
    let month: i64 = num(d.next()?, 2)?;
    let day: i64 = num(d.next()?, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    if let Some(t) = time {
        millis += parse_time_millis(t)?;
    }
    Some(millis)
}

/// `hh:mm[:ss[.fff]]` followed by `Z`, `+hh:mm`, `-hh:mm` or nothing (UTC).
fn parse_time_millis(t: &str) -> Option<i64> {
    let (clock, offset) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = t.rfind(['+', '-']) {
        let (c, off) = t.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        (
            c,
            sign * (num::<i64>(h, 2)? * 3_600_000 + num::<i64>(m, 2)? * 60_000),
        )
    } else {
        (t, 0)
    };
    let mut parts = clock.splitn(3, ':');
    let h: i64 = num(parts.next()?, 2)?;
    let m: i64 = num(parts.next()?, 2)?;
    let sec_ms = match parts.next() {
        Some(sec) => {
            let secs: f64 = sec.parse().ok()?;
            if !(0.0..61.0).contains(&secs) {
                return None;
            }
            (secs * 1000.0).round() as i64
        }
        None => 0,
    };
    if h > 24 || m > 59 {
        return None;
    }
    Some(h * 3_600_000 + m * 60_000 + sec_ms - offset)
}

fn num<T: std::str::FromStr>(s: &str, max_len: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDThh:mm:ssZ` for milliseconds since the epoch (sub-seconds dropped).
pub(crate) fn format_iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_iam_accepts() {
        assert_eq!(parse_date_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_date_millis("2019-07-16T12:00:00Z"),
            Some(1_563_278_400_000)
        );
        assert_eq!(parse_date_millis("2019-07-16"), Some(1_563_235_200_000));
        assert_eq!(
            parse_date_millis("2019-07-16T14:00:00+02:00"),
            Some(1_563_278_400_000)
        );
        assert_eq!(
            parse_date_millis("2019-07-16T12:00:00.500Z"),
            Some(1_563_278_400_500)
        );
        assert_eq!(parse_date_millis("1563278400"), Some(1_563_278_400_000));
        assert_eq!(parse_date_millis("yesterday"), None);
        assert_eq!(parse_date_millis("2019-13-01"), None);
    }

    #[test]
    fn formats_round_trip() {
        let ms = 1_563_278_400_000;
        assert_eq!(format_iso8601(ms), "2019-07-16T12:00:00Z");
        assert_eq!(parse_date_millis(&format_iso8601(ms)), Some(ms));
    }
}
