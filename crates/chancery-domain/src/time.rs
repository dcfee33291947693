//! Time: valid time with its precision (when a thing happened, as precisely as the sources say)
//! and transaction time (when the store recorded it).
//!
//! Calendar dates carry no zone; they are read as UTC days. An instant keeps the offset it was
//! given, so `2018-05-03T09:30:00+08:00` stays in Beijing time when shown back.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

use crate::text_serde::serde_as_text;

/// How precisely a valid time is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Precision {
    Year,
    Month,
    Day,
    Instant,
}

/// A point of valid time, as precise as its sources: a year (`2018`), a month (`2018-05`), a day
/// (`2018-05-03`) or an instant with its offset (`2018-05-03T09:30:00+08:00`).
///
/// Its text form fixes its precision, so the two can never disagree.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidTime {
    Year(i32),
    Month(i32, Month),
    Day(Date),
    Instant(OffsetDateTime),
}

/// Earliest and latest years accepted, so every valid time has a four-digit year.
pub const MIN_YEAR: i32 = 1000;
pub const MAX_YEAR: i32 = 9999;

/// Why a string is not a valid time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {value:?}: {reason}")]
pub struct TimeError {
    pub value: String,
    pub reason: String,
}

impl TimeError {
    fn new(value: &str, reason: impl Into<String>) -> Self {
        Self {
            value: value.chars().take(64).collect(),
            reason: reason.into(),
        }
    }
}

const VALID_TIME_FORMS: &str =
    "use YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 instant such as 2018-05-03T09:30:00+08:00";

impl ValidTime {
    pub fn precision(&self) -> Precision {
        match self {
            ValidTime::Year(_) => Precision::Year,
            ValidTime::Month(..) => Precision::Month,
            ValidTime::Day(_) => Precision::Day,
            ValidTime::Instant(_) => Precision::Instant,
        }
    }

    /// The first instant this time may denote, in Unix seconds (UTC).
    pub fn earliest(&self) -> i64 {
        match *self {
            ValidTime::Year(y) => day_start(first_day(y, Month::January)),
            ValidTime::Month(y, m) => day_start(first_day(y, m)),
            ValidTime::Day(d) => day_start(d),
            ValidTime::Instant(t) => t.unix_timestamp(),
        }
    }

    /// The first instant after the span this time denotes, in Unix seconds (UTC): a day ends at
    /// the next midnight, an instant one second later.
    pub fn end_exclusive(&self) -> i64 {
        match *self {
            ValidTime::Year(y) => day_start(first_day(y + 1, Month::January)),
            ValidTime::Month(y, m) => {
                let (ny, nm) = if m == Month::December {
                    (y + 1, Month::January)
                } else {
                    (y, m.next())
                };
                day_start(first_day(ny, nm))
            }
            ValidTime::Day(d) => day_start(d) + 86_400,
            ValidTime::Instant(t) => t.unix_timestamp() + 1,
        }
    }

    /// The order of valid time: by the start of the span, and at the same start the coarser
    /// span first (May 2018 before 1 May 2018), since it encloses the finer one.
    pub fn chronological_cmp(&self, other: &Self) -> Ordering {
        self.earliest()
            .cmp(&other.earliest())
            .then_with(|| self.precision().cmp(&other.precision()))
            .then_with(|| self.end_exclusive().cmp(&other.end_exclusive()))
    }

    /// The valid time that starts at `earliest` (Unix seconds) with the given precision: the
    /// inverse of [`ValidTime::earliest`], except that an instant comes back in UTC.
    pub fn from_earliest(earliest: i64, precision: Precision) -> Option<ValidTime> {
        let t = OffsetDateTime::from_unix_timestamp(earliest).ok()?;
        Some(match precision {
            Precision::Year => ValidTime::Year(t.year()),
            Precision::Month => ValidTime::Month(t.year(), t.month()),
            Precision::Day => ValidTime::Day(t.date()),
            Precision::Instant => ValidTime::Instant(t),
        })
    }

    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| {
            b.get(r.clone())
                .is_some_and(|x| x.iter().all(u8::is_ascii_digit))
        };
        let number = |r: std::ops::Range<usize>| -> i32 {
            b[r].iter().fold(0, |acc, d| acc * 10 + i32::from(d - b'0'))
        };
        let year = |y: i32| {
            if (MIN_YEAR..=MAX_YEAR).contains(&y) {
                Ok(y)
            } else {
                Err(TimeError::new(
                    s,
                    format!("year must be between {MIN_YEAR} and {MAX_YEAR}"),
                ))
            }
        };
        let month = |m: i32| {
            u8::try_from(m)
                .ok()
                .and_then(|m| Month::try_from(m).ok())
                .ok_or_else(|| TimeError::new(s, "month must be between 01 and 12"))
        };
        match b.len() {
            4 if digits(0..4) => Ok(ValidTime::Year(year(number(0..4))?)),
            7 if digits(0..4) && b[4] == b'-' && digits(5..7) => {
                Ok(ValidTime::Month(year(number(0..4))?, month(number(5..7))?))
            }
            10 if digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10) => {
                let y = year(number(0..4))?;
                let m = month(number(5..7))?;
                let d = u8::try_from(number(8..10)).unwrap_or(0);
                Date::from_calendar_date(y, m, d)
                    .map(ValidTime::Day)
                    .map_err(|_| TimeError::new(s, "no such day in that month"))
            }
            n if n > 10 => {
                let t = OffsetDateTime::parse(s, &Rfc3339)
                    .map_err(|e| TimeError::new(s, format!("{e}; {VALID_TIME_FORMS}")))?;
                year(t.year())?;
                Ok(ValidTime::Instant(t))
            }
            _ => Err(TimeError::new(s, VALID_TIME_FORMS)),
        }
    }
}

fn first_day(year: i32, month: Month) -> Date {
    // Both come from validated input, and day 1 exists in every month; the fallback is never taken.
    Date::from_calendar_date(year, month, 1).unwrap_or(Date::MIN)
}

fn day_start(date: Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp()
}

impl fmt::Display for ValidTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ValidTime::Year(y) => write!(f, "{y:04}"),
            ValidTime::Month(y, m) => write!(f, "{y:04}-{:02}", m as u8),
            ValidTime::Day(d) => write!(f, "{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day()),
            ValidTime::Instant(t) => match t.format(&Rfc3339) {
                Ok(s) => f.write_str(&s),
                Err(_) => Err(fmt::Error),
            },
        }
    }
}

impl fmt::Debug for ValidTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValidTime({self})")
    }
}

impl FromStr for ValidTime {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

serde_as_text!(ValidTime, ValidTime::parse);

/// Transaction time: when the store recorded an event, in microseconds since the Unix epoch (UTC).
///
/// Written as `2026-11-28T15:41:54.123456Z`, always with six fractional digits, so that its text
/// form (part of the hashed canonical encoding) is unique.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// The present instant, by the system clock.
    pub fn now() -> Self {
        Self::from_system_time(std::time::SystemTime::now())
    }

    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }

    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| TimeError::new(s, e.to_string()))?;
        let micros = t.unix_timestamp_nanos() / 1_000;
        i64::try_from(micros)
            .map(Self)
            .map_err(|_| TimeError::new(s, "out of range"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .map_err(|_| fmt::Error)?
            .to_offset(UtcOffset::UTC);
        // Written digit by digit: every exported record has one, and `write!` with padding is
        // slow by comparison.
        let year = match u32::try_from(t.year()) {
            Ok(year) if year <= 9999 => year,
            _ => {
                return write!(
                    f,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                    t.year(),
                    t.month() as u8,
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.microsecond()
                );
            }
        };
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, u32::from(t.month() as u8));
        put(8, 2, u32::from(t.day()));
        put(11, 2, u32::from(t.hour()));
        put(14, 2, u32::from(t.minute()));
        put(17, 2, u32::from(t.second()));
        put(20, 6, t.microsecond());
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

serde_as_text!(Timestamp, Timestamp::parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_fixes_precision_and_round_trips() {
        for (text, precision) in [
            ("2018", Precision::Year),
            ("2018-05", Precision::Month),
            ("2018-05-03", Precision::Day),
            ("2018-05-03T09:30:00+08:00", Precision::Instant),
            ("2018-05-03T01:30:00Z", Precision::Instant),
        ] {
            let t = ValidTime::parse(text).unwrap();
            assert_eq!(t.precision(), precision, "{text}");
            assert_eq!(t.to_string(), text);
        }
    }

    #[test]
    fn rejects_impossible_dates_with_the_reason() {
        for (bad, reason) in [
            ("2018-02-30", "no such day"),
            ("2018-13", "month must be"),
            ("0999", "year must be"),
            ("May 2018", "use YYYY"),
            ("2018-05-03T25:00:00Z", "use YYYY"),
        ] {
            let err = ValidTime::parse(bad).unwrap_err().to_string();
            assert!(err.contains(reason), "{bad}: {err}");
        }
    }

    #[test]
    fn spans_cover_their_precision() {
        let may = ValidTime::parse("2018-05").unwrap();
        let day = ValidTime::parse("2018-05-31").unwrap();
        assert!(may.earliest() <= day.earliest() && day.end_exclusive() <= may.end_exclusive());
        let dec = ValidTime::parse("2018-12").unwrap();
        assert_eq!(
            dec.end_exclusive(),
            ValidTime::parse("2019").unwrap().earliest()
        );
    }

    #[test]
    fn coarser_span_sorts_first_at_the_same_start() {
        let month = ValidTime::parse("2018-05").unwrap();
        let day = ValidTime::parse("2018-05-01").unwrap();
        let year = ValidTime::parse("2018").unwrap();
        assert_eq!(month.chronological_cmp(&day), Ordering::Less);
        assert_eq!(year.chronological_cmp(&month), Ordering::Less);
        let later = ValidTime::parse("2018-05-02").unwrap();
        assert_eq!(month.chronological_cmp(&later), Ordering::Less);
    }

    #[test]
    fn timestamps_have_one_text_form() {
        let t = Timestamp::parse("2026-11-28T15:41:54.1234567Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-28T15:41:54.123456Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        let offset = Timestamp::parse("2026-11-28T16:41:54+01:00").unwrap();
        assert_eq!(offset.to_string(), "2026-11-28T15:41:54.000000Z");
    }
}
