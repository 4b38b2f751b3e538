//! Timestamps as SigV4 writes them: the ISO 8601 basic form of `X-Amz-Date`
//! (`20241126T103500Z`) and the HTTP `Date` header's IMF-fixdate form
//! (`Tue, 26 Nov 2024 10:35:00 GMT`). Std has no calendar, so the civil-date
//! arithmetic lives here.

use std::fmt;

const SECS_PER_DAY: i64 = 86_400;

/// A request timestamp in the `YYYYMMDDTHHMMSSZ` form that goes into the string to sign.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct AmzDate {
    text: [u8; 16],
}

impl AmzDate {
    /// Formats seconds since the Unix epoch. Years outside 0..=9999 are clamped: such
    /// instants only ever appear in error messages, never in a string to sign.
    pub(crate) fn from_unix(secs: i64) -> AmzDate {
        let days = secs.div_euclid(SECS_PER_DAY);
        let rem = secs.rem_euclid(SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let (y, m, d, rem) = if y < 0 {
            (0, 1, 1, 0)
        } else if y > 9999 {
            (9999, 12, 31, SECS_PER_DAY - 1)
        } else {
            (y, m, d, rem)
        };
        let mut text = *b"00000000T000000Z";
        put_digits(&mut text[0..4], y);
        put_digits(&mut text[4..6], m);
        put_digits(&mut text[6..8], d);
        put_digits(&mut text[9..11], rem / 3600);
        put_digits(&mut text[11..13], rem / 60 % 60);
        put_digits(&mut text[13..15], rem % 60);
        AmzDate { text }
    }

    /// The text, e.g. `20241126T103500Z`.
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits, 'T' and 'Z' are ever written into `text`.
        std::str::from_utf8(&self.text).unwrap_or("00000000T000000Z")
    }
}

impl fmt::Display for AmzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AmzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn put_digits(out: &mut [u8], mut value: i64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Parses `YYYYMMDDTHHMMSSZ` into seconds since the Unix epoch; `None` unless the text
/// is exactly that form and names a real instant.
pub(crate) fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[4..6])?;
    let day = digits(&b[6..8])?;
    let hour = digits(&b[9..11])?;
    let minute = digits(&b[11..13])?;
    let second = digits(&b[13..15])?;
    to_unix(year, month, day, hour, minute, second)
}

/// Parses the IMF-fixdate form of an HTTP `Date` header (`Tue, 26 Nov 2024 10:35:00 GMT`),
/// the only form RFC 7231 lets senders generate.
pub(crate) fn parse_http_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    const WEEKDAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if !WEEKDAYS.contains(&&b[0..3]) {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &b[8..11])? as i64 + 1;
    let day = digits(&b[5..7])?;
    let year = digits(&b[12..16])?;
    let hour = digits(&b[17..19])?;
    let minute = digits(&b[20..22])?;
    let second = digits(&b[23..25])?;
    to_unix(year, month, day, hour, minute, second)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn to_unix(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then(|| {
        days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Proleptic Gregorian calendar via 400-year eras (146,097 days each) with years starting
// in March, so the leap day is the last day of the year.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(1_440_938_160)
        );
        assert_eq!(
            AmzDate::from_unix(1_440_938_160).as_str(),
            "20150830T123600Z"
        );
        assert_eq!(AmzDate::from_unix(0).as_str(), "19700101T000000Z");
        assert_eq!(AmzDate::from_unix(-1).as_str(), "19691231T235959Z");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "20150230T123600Z",
            "20190229T000000Z",
            "20151330T123600Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        for bad in [
            "Sun, 30 Aug 2015 12:36:00 UTC",
            "Sunday, 30-Aug-15 12:36:00 GMT",
            "Sun Aug 30 12:36:00 2015",
            "Xyz, 30 Aug 2015 12:36:00 GMT",
            "Sun, 31 Sep 2015 12:36:00 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        let mut secs = days_from_civil(1600, 1, 1) * SECS_PER_DAY + 3723;
        let end = days_from_civil(2401, 1, 1) * SECS_PER_DAY;
        while secs < end {
            let text = AmzDate::from_unix(secs);
            assert_eq!(parse_amz_date(text.as_str()), Some(secs), "{text}");
            secs += SECS_PER_DAY;
        }
    }

    #[test]
    fn extreme_instants_do_not_overflow() {
        assert_eq!(AmzDate::from_unix(i64::MAX).as_str(), "99991231T235959Z");
        assert_eq!(AmzDate::from_unix(i64::MIN).as_str(), "00000101T000000Z");
    }
}
