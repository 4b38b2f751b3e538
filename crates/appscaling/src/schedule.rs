//! Scheduled actions' `Schedule` expressions, pure: `at(yyyy-mm-ddThh:mm:ss)`,
//! `rate(N minute[s]|hour[s]|day[s])` and `cron(minutes hours day-of-month month
//! day-of-week year)`, read in the action's IANA `Timezone` (UTC by default), and the
//! next time each fires.
//!
//! Cron fields take `*`, `?` (in one of day-of-month and day-of-week, which AWS
//! requires), lists, ranges, `/` steps and month and weekday names (weekday 1 is Sunday,
//! as AWS counts). `L`, `W` and `#` are refused with a message saying so.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A parsed `Schedule`.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// `at(...)`: once, at this local time.
    At(DateTime),
    /// `rate(...)`: every this many seconds from the action's start.
    Rate(i64),
    /// `cron(...)`.
    Cron(Box<Cron>),
}

/// The six fields of a cron expression as the values each admits.
#[derive(Clone, Debug, PartialEq)]
pub struct Cron {
    minutes: Vec<i8>,
    hours: Vec<i8>,
    /// `None`: `?` (day-of-week decides).
    days_of_month: Option<Vec<i8>>,
    months: Vec<i8>,
    /// Sunday = 1; `None`: `?`.
    days_of_week: Option<Vec<i8>>,
    years: Vec<i16>,
}

/// A time zone by IANA name; `None` for a name the time zone database does not know.
pub fn parse_timezone(name: Option<&str>) -> Option<TimeZone> {
    match name {
        None | Some("UTC") | Some("Etc/UTC") => Some(TimeZone::UTC),
        Some(n) => TimeZone::get(n).ok(),
    }
}

/// Parses a `Schedule` expression; the error is the ValidationException's message.
pub fn parse_schedule(s: &str) -> Result<Schedule, String> {
    let s = s.trim();
    let inner = |prefix: &str| {
        s.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(at) = inner("at(") {
        return at
            .parse::<DateTime>()
            .ok()
            .filter(|_| at.len() == 19)
            .map(Schedule::At)
            .ok_or_else(|| {
                format!("at({at}) is not a valid at expression: use at(yyyy-mm-ddThh:mm:ss).")
            });
    }
    if let Some(rate) = inner("rate(") {
        return parse_rate(rate).map(Schedule::Rate);
    }
    if let Some(cron) = inner("cron(") {
        return parse_cron(cron).map(|c| Schedule::Cron(Box::new(c)));
    }
    Err(format!(
        "Schedule {s} is not valid: use at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(fields)."
    ))
}

fn parse_rate(rate: &str) -> Result<i64, String> {
    let bad = || {
        format!("rate({rate}) is not a valid rate expression: use rate(value unit) with a positive whole value and a unit of minute(s), hour(s) or day(s).")
    };
    let mut parts = rate.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let n: i64 = n.parse().map_err(|_| bad())?;
    if n < 1 {
        return Err(bad());
    }
    let secs = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return Err(bad()),
    };
    Ok(n.saturating_mul(secs))
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_cron(cron: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let [min, hour, dom, month, dow, year] = fields[..] else {
        return Err(format!(
            "cron({cron}) is not valid: a cron expression has six fields (minutes hours day-of-month month day-of-week year)."
        ));
    };
    if (dom == "?") == (dow == "?") {
        return Err(format!(
            "cron({cron}) is not valid: exactly one of day-of-month and day-of-week must be ?."
        ));
    }
    let narrow = |v: Vec<i64>| v.into_iter().filter_map(|x| i8::try_from(x).ok()).collect();
    Ok(Cron {
        minutes: narrow(field(min, 0, 59, &[])?),
        hours: narrow(field(hour, 0, 23, &[])?),
        days_of_month: (dom != "?")
            .then(|| field(dom, 1, 31, &[]).map(narrow))
            .transpose()?,
        months: narrow(field(month, 1, 12, &MONTHS)?),
        days_of_week: (dow != "?")
            .then(|| field(dow, 1, 7, &WEEKDAYS).map(narrow))
            .transpose()?,
        years: field(year, 1970, 2199, &[])?
            .into_iter()
            .filter_map(|y| i16::try_from(y).ok())
            .collect(),
    })
}

/// The values one cron field admits, sorted; `names` (if any) spell `lo`, `lo + 1`, ….
fn field(text: &str, lo: i64, hi: i64, names: &[&str]) -> Result<Vec<i64>, String> {
    if text.contains(['L', 'W', '#']) && !names.iter().any(|n| text.contains(n)) {
        return Err(format!(
            "The cron field {text} uses L, W or #, which this server does not support."
        ));
    }
    let value = |v: &str| -> Result<i64, String> {
        let upper = v.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(lo + i64::try_from(i).unwrap_or(0));
        }
        v.parse::<i64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| format!("The cron field value {v} is not between {lo} and {hi}."))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<i64>()
                    .ok()
                    .filter(|s| *s >= 1)
                    .ok_or_else(|| format!("The cron step {s} is not a positive number."))?,
            ),
            None => (part, 1),
        };
        let (start, end) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `5/10` runs from 5 to the end of the range.
                None if part.contains('/') => (value(r)?, hi),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if start > end {
            return Err(format!("The cron range {range} runs backwards."));
        }
        out.extend((start..=end).step_by(usize::try_from(step).unwrap_or(1)));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl Cron {
    fn admits_date(&self, d: Date) -> bool {
        self.years.contains(&d.year())
            && self.months.contains(&d.month())
            && self
                .days_of_month
                .as_ref()
                .is_none_or(|days| days.contains(&d.day()))
            && self
                .days_of_week
                .as_ref()
                .is_none_or(|days| days.contains(&d.weekday().to_sunday_one_offset()))
    }

    /// The first time strictly after `after` that this expression names in `tz`.
    fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut date = after.to_zoned_datetime(tz.clone()).date();
        let last_year = *self.years.last()?;
        while date.year() <= last_year {
            if self.admits_date(date) {
                for &h in &self.hours {
                    for &m in &self.minutes {
                        let Ok(time) = jiff::civil::Time::new(h, m, 0, 0) else {
                            continue;
                        };
                        let dt = date.to_datetime(time);
                        let Ok(t) = tz.to_ambiguous_timestamp(dt).compatible() else {
                            continue;
                        };
                        if t > after {
                            return Some(t);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

impl Schedule {
    /// The first time (epoch ms) after `after_ms` this schedule fires, for an action
    /// whose rate counts from `start_ms`; rates are divided by `time_scale` (the
    /// server's `--time-scale`), clock times are not.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    pub fn next_after(
        &self,
        after_ms: i64,
        start_ms: i64,
        tz: &TimeZone,
        time_scale: f64,
    ) -> Option<i64> {
        match self {
            Schedule::At(dt) => {
                let t = tz.to_ambiguous_timestamp(*dt).compatible().ok()?;
                (t.as_millisecond() > after_ms).then_some(t.as_millisecond())
            }
            Schedule::Rate(secs) => {
                let every = ((*secs as f64 * 1000.0 / time_scale.max(1.0)).round() as i64).max(1);
                if after_ms < start_ms {
                    return Some(start_ms);
                }
                let n = (after_ms - start_ms) / every + 1;
                Some(start_ms.saturating_add(n.saturating_mul(every)))
            }
            Schedule::Cron(c) => {
                let after = Timestamp::from_millisecond(after_ms).ok()?;
                c.next_after(after, tz).map(Timestamp::as_millisecond)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().expect("timestamp").as_millisecond()
    }

    #[test]
    fn rates_parse_in_every_unit_and_refuse_the_rest() {
        assert_eq!(parse_schedule("rate(5 minutes)"), Ok(Schedule::Rate(300)));
        assert_eq!(parse_schedule("rate(1 hour)"), Ok(Schedule::Rate(3600)));
        assert_eq!(parse_schedule("rate(2 days)"), Ok(Schedule::Rate(172_800)));
        assert!(parse_schedule("rate(0 minutes)").is_err());
        assert!(parse_schedule("rate(5 seconds)").is_err());
        assert!(parse_schedule("rate(five minutes)").is_err());
        assert!(parse_schedule("every 5 minutes").is_err());
    }

    #[test]
    fn a_rate_fires_every_period_from_its_start_scaled() {
        let s = Schedule::Rate(300);
        let tz = TimeZone::UTC;
        assert_eq!(s.next_after(0, 1000, &tz, 1.0), Some(1000));
        assert_eq!(s.next_after(1000, 1000, &tz, 1.0), Some(301_000));
        assert_eq!(s.next_after(1000, 1000, &tz, 60.0), Some(6000));
    }

    #[test]
    fn at_fires_once_in_its_time_zone() {
        let s = parse_schedule("at(2030-03-01T12:00:00)").expect("at");
        let paris = parse_timezone(Some("Europe/Paris")).expect("zone");
        assert_eq!(
            s.next_after(0, 0, &paris, 1.0),
            Some(ms("2030-03-01T11:00:00Z"))
        );
        assert_eq!(
            s.next_after(ms("2030-03-01T11:00:00Z"), 0, &paris, 1.0),
            None
        );
        assert!(parse_schedule("at(2030-03-01 12:00)").is_err());
    }

    #[test]
    fn cron_finds_the_next_matching_minute_in_the_zone() {
        let s = parse_schedule("cron(30 9 ? * MON-FRI *)").expect("cron");
        let ny = parse_timezone(Some("America/New_York")).expect("zone");
        // Saturday 2030-03-02 → Monday 2030-03-04 09:30 EST = 14:30Z.
        assert_eq!(
            s.next_after(ms("2030-03-02T00:00:00Z"), 0, &ny, 1.0),
            Some(ms("2030-03-04T14:30:00Z"))
        );
        let every15 = parse_schedule("cron(0/15 * * * ? *)").expect("cron");
        assert_eq!(
            every15.next_after(ms("2030-01-01T10:07:00Z"), 0, &TimeZone::UTC, 1.0),
            Some(ms("2030-01-01T10:15:00Z"))
        );
        let yearly = parse_schedule("cron(0 0 1 JAN ? 2031)").expect("cron");
        assert_eq!(
            yearly.next_after(ms("2030-06-01T00:00:00Z"), 0, &TimeZone::UTC, 1.0),
            Some(ms("2031-01-01T00:00:00Z"))
        );
        assert_eq!(
            yearly.next_after(ms("2031-06-01T00:00:00Z"), 0, &TimeZone::UTC, 1.0),
            None
        );
    }

    #[test]
    fn cron_refuses_bad_fields() {
        assert!(
            parse_schedule("cron(0 9 * * * *)").is_err(),
            "both day fields"
        );
        assert!(
            parse_schedule("cron(0 9 ? * ? *)").is_err(),
            "neither day field"
        );
        assert!(parse_schedule("cron(60 9 * * ? *)").is_err());
        assert!(parse_schedule("cron(0 9 L * ? *)").is_err());
        assert!(parse_schedule("cron(0 9 * *)").is_err());
        assert!(parse_schedule("cron(0 9 5-1 * ? *)").is_err());
        assert!(parse_timezone(Some("Mars/Olympus")).is_none());
    }
}
