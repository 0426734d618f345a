//! Cron schedules and timezones as config values, and the DST-correct
//! "next fire time" rule the scheduler and `reckon config check` share.
//!
//! A schedule is evaluated on the connector's local wall clock:
//! - a local time that does not exist (the skipped hour when clocks go
//!   forward) fires once, at the first instant after the gap;
//! - a local time that occurs twice (the repeated hour when clocks go back)
//!   fires once, at its first occurrence.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use std::str::FromStr;

/// A parsed cron expression: a 5-field crontab line (`min hour dom mon
/// dow`), or the same with seconds first (6 fields) and a year last (7
/// fields). Every form reads its fields as crontab(5) does: day-of-week
/// Sunday = 0 or 7 (names too), and `?` in a day field means `*`.
///
/// A line restricting both day-of-month and day-of-week fires when
/// *either* matches, as crontab(5) says (`0 6 1 * 1`: the 1st and every
/// Monday); the cron crate alone would require both. Such a line is held as
/// two schedules, one per day field, and fires at the earlier of the two.
/// As in Vixie cron, a day field starting with `*` (`*/10`) does not count
/// as restricted, and both fields must then match.
///
/// Before 2026-11-29 the 6/7-field forms went to the cron crate as written
/// (day-of-week 1 = Sunday, both day fields required): adding a seconds
/// field moved a job to another weekday (a QA finding).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct CronSchedule {
    /// The expression as written in the config.
    pub expr: String,
    schedules: Vec<cron::Schedule>,
}

impl PartialEq for CronSchedule {
    fn eq(&self, o: &Self) -> bool {
        self.expr == o.expr
    }
}

impl TryFrom<String> for CronSchedule {
    type Error = String;
    fn try_from(expr: String) -> Result<Self, String> {
        expr.parse()
    }
}

impl FromStr for CronSchedule {
    type Err = String;
    fn from_str(expr: &str) -> Result<Self, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let (sec, rest, year) = match fields.len() {
            5 => ("0", &fields[..], None),
            6 => (fields[0], &fields[1..], None),
            7 => (fields[0], &fields[1..6], Some(fields[6])),
            n => {
                return Err(format!(
                    "invalid cron expression `{expr}`: expected 5 fields (crontab: minute hour day-of-month month day-of-week) or 6/7 (seconds first / a year last), found {n}"
                ))
            }
        };
        let day = |f: &str| {
            if f == "?" {
                "*".to_owned()
            } else {
                f.to_owned()
            }
        };
        // A 6/7-field mistake (a crontab line plus a year) reads oddly
        // unless the error says how those fields are read (ops QA13 OPS-7).
        let form = match fields.len() {
            6 => {
                let year_last = fields[5].len() == 4 && fields[5].chars().all(|c| c.is_ascii_digit());
                // The fix written out only when it is one (QA21 A21-6:
                // `0 40 * * * 2026` was told `0 0 40 * * * 2026`, hour 40).
                let fixed = format!("0 {}", fields.join(" "));
                let year = match (year_last, fixed.parse::<CronSchedule>().is_ok()) {
                    (true, true) => format!("; for a crontab line plus a year write 7 fields, seconds first: `{fixed}`"),
                    (true, false) => "; for a crontab line plus a year write 7 fields, seconds first (second minute hour day-of-month month day-of-week year)".to_owned(),
                    (false, _) => String::new(),
                };
                format!(
                    " (6 fields read seconds first: second minute hour day-of-month month day-of-week; a crontab line has 5{year})"
                )
            }
            7 => " (7 fields: second minute hour day-of-month month day-of-week year; a crontab line has 5)".to_owned(),
            _ => String::new(),
        };
        let dow = crontab_dow(&day(rest[4])).map_err(|e| {
            format!("invalid cron expression `{expr}`: day-of-week field: {e}{form}")
        })?;
        let (min, hour, dom, mon) = (rest[0], rest[1], day(rest[2]), rest[3]);
        let year = year.map(|y| format!(" {y}")).unwrap_or_default();
        let full: Vec<String> = if dom.starts_with('*') || dow.starts_with('*') {
            vec![format!("{sec} {min} {hour} {dom} {mon} {dow}{year}")]
        } else {
            // Either day field matching fires (crontab's OR).
            vec![
                format!("{sec} {min} {hour} {dom} {mon} *{year}"),
                format!("{sec} {min} {hour} * {mon} {dow}{year}"),
            ]
        };
        let schedules = full
            .iter()
            .map(|f| cron::Schedule::from_str(f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
            // The cron crate's message carries a caret snippet; keep its last line.
            let e = e.to_string();
            let why = e
                .lines()
                .rev()
                .find(|l| {
                    let l = l.trim();
                    // Not the caret line, nor the expression as the crate
                    // got it (rewritten from crontab's fields).
                    !l.is_empty() && !l.starts_with('^') && !full.iter().any(|f| f == l)
                })
                .unwrap_or("")
                .trim()
                // The crate's bounds are inclusive: "less than 23" means "at most 23".
                .replace("must be less than", "must be at most");
                let why = step_out_of_range(&why).unwrap_or(why);
                // Some of the crate's errors say nothing beyond the snippet.
                let out_of_years = fields.get(6).and_then(|y| {
                    // Years of a list's items and ranges, not a step's `/n`.
                    y.split(',')
                        .flat_map(|item| item.split('/').next().unwrap_or("").split('-'))
                        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                        .find(|n| !n.parse::<u32>().is_ok_and(|n| (1970..=2100).contains(&n)))
                });
                let why = if let (true, Some(bad)) = (why.is_empty(), out_of_years) {
                    format!("the year {bad} is outside the years cron knows, 1970 to 2100")
                } else if why.is_empty() {
                    "a field holds a value cron does not know (numbers, `*`, ranges `a-b`, lists `a,b`, steps `*/n`, day and month names)".to_owned()
                } else {
                    why
                };
                format!(
                    "invalid cron expression `{expr}`: {why}{form}; expected e.g. `0 */6 * * *` (every 6 hours)"
                )
            })?;
        Ok(CronSchedule {
            expr: expr.to_owned(),
            schedules,
        })
    }
}

/// The cron crate's "Minutes must be between 1 and 59. ('61' specified.)"
/// is about the step of `*/61`, not the minute (0 is a valid minute): say so.
fn step_out_of_range(why: &str) -> Option<String> {
    let (field, rest) = why.split_once(" must be between 1 and ")?;
    let (max, rest) = rest.split_once(". ('")?;
    let step = rest.strip_suffix("' specified.)")?;
    Some(format!(
        "the step `/{step}` in the {} field must be between 1 and {max}",
        field.to_lowercase()
    ))
}

/// Converts a crontab day-of-week field (0-7, Sunday = 0 or 7) to the cron
/// crate's numbering (1-7, Sunday = 1). Names pass through.
fn crontab_dow(field: &str) -> Result<String, String> {
    let map = |n: &str| -> Result<u32, String> {
        let v: u32 = n
            .parse()
            .map_err(|_| format!("`{n}` is not a day (0-7 or SUN-SAT)"))?;
        if v > 7 {
            return Err(format!("`{v}` is out of range 0-7"));
        }
        Ok(v % 7 + 1)
    };
    let is_num = |s: &str| s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty();
    let mut out = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let step_s = step.map(|s| format!("/{s}")).unwrap_or_default();
        if let Some((a, b)) = range.split_once('-') {
            if is_num(a) && is_num(b) {
                let (ma, mb) = (map(a)?, map(b)?);
                if ma <= mb {
                    out.push(format!("{ma}-{mb}{step_s}"));
                } else if step.is_none() {
                    // e.g. 5-7 (Fri..Sun) → 6-7,1
                    out.push(format!("{ma}-7"));
                    out.push(format!("1-{mb}"));
                } else {
                    return Err(format!("range `{range}` with a step wraps past Sunday"));
                }
                continue;
            }
        } else if is_num(range) {
            out.push(format!("{}{step_s}", map(range)?));
            continue;
        }
        out.push(part.to_owned());
    }
    Ok(out.join(","))
}

/// The environment variable that, set to `1`, lets a schedule fire more
/// than once a minute ([`CronSchedule::sub_minute`]): for tests of the
/// daemon, which need fires seconds apart. Not for production.
pub const ALLOW_SUB_MINUTE_ENV: &str = "RECKON_ALLOW_SUB_MINUTE_SCHEDULES";

impl CronSchedule {
    /// Why this schedule fires more often than once a minute, if it does:
    /// a 6/7-field expression (seconds first) whose seconds field matches
    /// more than one second (`* * * * * *`, or a crontab line with one `*`
    /// too many). Every fire of a connector starts a full sync, so config
    /// loading refuses it (ops QA13 OPS-2). The text says what the
    /// expression means and what to write instead.
    ///
    /// The daemon's end-to-end tests need fires seconds apart: they set
    /// [`ALLOW_SUB_MINUTE_ENV`] to `1`, which lets such a schedule through.
    pub fn sub_minute(&self) -> Option<String> {
        use cron::TimeUnitSpec as _;
        let per_minute = self.schedules.first()?.seconds().count();
        if per_minute <= 1 || std::env::var(ALLOW_SUB_MINUTE_ENV).is_ok_and(|v| v == "1") {
            return None;
        }
        let fields: Vec<&str> = self.expr.split_whitespace().collect();
        let rest = fields.get(1..6)?.join(" ");
        let year = fields.get(6).map(|y| format!(" {y}")).unwrap_or_default();
        let crontab = if fields.len() == 6 {
            format!(
                ", or, if this is a crontab line with one field too many, the 5 fields `{}`",
                fields[..5].join(" ")
            )
        } else {
            String::new()
        };
        Some(format!(
            "fires {per_minute} times a minute: {} fields read seconds first (second minute hour day-of-month month day-of-week{}), and the seconds field `{}` matches {per_minute} seconds; Reckon fires a schedule at most once a minute. Give the seconds one value, e.g. `0 {rest}{year}`{crontab}; a 5-field crontab line (`*/5 * * * *`) needs no seconds",
            fields.len(),
            if fields.len() == 7 { " year" } else { "" },
            fields[0],
        ))
    }

    /// The first fire strictly after `after`, evaluated on `tz`'s wall clock.
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedules
            .iter()
            .filter_map(|s| next_of(s, tz, after))
            .min()
    }

    /// The next `n` fires after `after`.
    pub fn next_n(&self, tz: Tz, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = after;
        while out.len() < n {
            match self.next_after(tz, t) {
                Some(x) => {
                    out.push(x);
                    t = x;
                }
                None => break,
            }
        }
        out
    }
}

/// The first fire of one cron schedule strictly after `after` on `tz`'s
/// wall clock.
fn next_of(schedule: &cron::Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Walk the schedule on naive local time (treated as UTC so the cron
    // iterator sees no DST), starting a little early so a gap or fold
    // around `after` is handled, and map each local time to an instant.
    let local_after = after.with_timezone(&tz).naive_local();
    let start = Utc.from_utc_datetime(&(local_after - Duration::hours(3)));
    for naive in schedule.after(&start).take(100_000) {
        let instant = local_to_instant(tz, naive.naive_utc())?;
        if instant > after {
            return Some(instant);
        }
    }
    None
}

/// Maps a local wall-clock time to an instant: ambiguous → the first
/// occurrence; non-existent → the first instant after the gap.
pub fn local_to_instant(tz: Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            for m in 1..=24 * 60 {
                let probe = naive + Duration::minutes(m);
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
                    LocalResult::Ambiguous(a, b) => return Some(a.min(b).with_timezone(&Utc)),
                    LocalResult::None => {}
                }
            }
            None
        }
    }
}

/// An IANA timezone name from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Timezone(pub Tz);

impl Default for Timezone {
    fn default() -> Self {
        Timezone(Tz::UTC)
    }
}

impl TryFrom<String> for Timezone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for Timezone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.parse::<Tz>() {
            Ok(tz) => Ok(Timezone(tz)),
            Err(_) if s.trim().is_empty() => Err(
                "the timezone is empty: write an IANA name such as `Europe/Berlin` or `UTC`"
                    .to_owned(),
            ),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
                let hint = match super::source::nearest(s, names) {
                    Some(n) => format!("; did you mean `{n}`?"),
                    None => String::new(),
                };
                Err(format!(
                    "unknown timezone `{s}`: expected an IANA name such as `Europe/Berlin` or `UTC`{hint}"
                ))
            }
        }
    }
}

impl std::fmt::Display for Timezone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // QA6 F12: `timezone = ""` was answered "did you mean `GB`?".
    #[test]
    fn an_empty_timezone_is_said_to_be_empty() {
        for s in ["", " "] {
            let e = s.parse::<Timezone>().unwrap_err();
            assert!(e.starts_with("the timezone is empty"), "{e}");
            assert!(!e.contains("did you mean"), "{e}");
        }
        assert_eq!(super::super::source::nearest("", ["GB", "UTC"]), None);
        assert_eq!(super::super::source::nearest("ab", ["cd"]), None);
        assert_eq!(
            super::super::source::nearest("Europe/Berln", ["Europe/Berlin", "GB"]),
            Some("Europe/Berlin")
        );
    }

    /// QA24 L4: a year cron does not know got the generic "a field holds
    /// a value cron does not know".
    #[test]
    fn a_year_out_of_crons_range_is_named() {
        let e = "0 0 0 1 1 * 2101".parse::<CronSchedule>().unwrap_err();
        assert!(
            e.contains("the year 2101 is outside the years cron knows, 1970 to 2100"),
            "{e}"
        );
        let e = "0 0 0 1 1 * 99999999999"
            .parse::<CronSchedule>()
            .unwrap_err();
        assert!(e.contains("the year 99999999999 is outside"), "{e}");
        "0 0 0 1 1 * 2100".parse::<CronSchedule>().unwrap();
        "0 0 0 1 1 * 2026-2030".parse::<CronSchedule>().unwrap();
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn five_field_crontab_gets_seconds_and_sunday_zero() {
        let s: CronSchedule = "30 6 * * 0".parse().unwrap();
        // 2026-11-29 is a Sunday.
        let next = s.next_after(Tz::UTC, utc("2026-11-28T00:00:00Z")).unwrap();
        assert_eq!(next, utc("2026-11-29T06:30:00Z"));
        let s: CronSchedule = "0 0 * * 5-7".parse().unwrap();
        let fires = s.next_n(Tz::UTC, utc("2026-11-26T12:00:00Z"), 4);
        // Fri 27, Sat 28, Sun 29, then Fri 4 Dec.
        assert_eq!(
            fires,
            vec![
                utc("2026-11-27T00:00:00Z"),
                utc("2026-11-28T00:00:00Z"),
                utc("2026-11-29T00:00:00Z"),
                utc("2026-12-04T00:00:00Z"),
            ]
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_both_set_fire_on_either() {
        // crontab(5): the 1st of the month and every Monday.
        let s: CronSchedule = "0 6 1 * 1".parse().unwrap();
        let fires = s.next_n(Tz::UTC, utc("2026-11-26T12:00:00Z"), 4);
        // Mon 30 Nov, Tue 1 Dec, Mon 7 Dec, Mon 14 Dec.
        assert_eq!(
            fires,
            vec![
                utc("2026-11-30T06:00:00Z"),
                utc("2026-12-01T06:00:00Z"),
                utc("2026-12-07T06:00:00Z"),
                utc("2026-12-14T06:00:00Z"),
            ]
        );
        // A day field starting with `*` (here `*/10`) keeps both required,
        // as in Vixie cron: days 1, 11, 21, 31 that are Mondays.
        let s: CronSchedule = "0 6 */10 * 1".parse().unwrap();
        let next = s.next_after(Tz::UTC, utc("2026-11-26T12:00:00Z")).unwrap();
        assert_eq!(next, utc("2026-12-21T06:00:00Z"));
    }

    #[test]
    fn six_and_seven_fields_accepted_other_counts_refused() {
        assert!("0 0 * * * *".parse::<CronSchedule>().is_ok());
        assert!("0 0 * * * * 2030".parse::<CronSchedule>().is_ok());
        let e = "* * *".parse::<CronSchedule>().unwrap_err();
        assert!(e.contains("found 3"), "{e}");
        // The crate's own rewrite of the fields never shows.
        let e = "0 12 * * 7L".parse::<CronSchedule>().unwrap_err();
        assert!(
            !e.contains("0 0 12") && e.contains("a field holds a value"),
            "{e}"
        );
        assert!("61 * * * *".parse::<CronSchedule>().is_err());
    }

    #[test]
    fn six_and_seven_fields_read_the_day_fields_as_crontab_does() {
        let after = utc("2026-11-26T12:00:00Z");
        // Seconds first: Monday is 1, Sunday 0 or 7, exactly as in 5 fields.
        for (six, five) in [
            ("0 0 6 * * 1", "0 6 * * 1"),
            ("0 0 6 * * 7", "0 6 * * 7"),
            ("0 0 6 * * 0", "0 6 * * 0"),
            ("0 0 6 1 * 1", "0 6 1 * 1"),
            ("0 0 6 * * MON-FRI", "0 6 * * MON-FRI"),
        ] {
            let a: CronSchedule = six.parse().unwrap();
            let b: CronSchedule = five.parse().unwrap();
            assert_eq!(
                a.next_n(Tz::UTC, after, 5),
                b.next_n(Tz::UTC, after, 5),
                "{six}"
            );
        }
        // Mon 30 Nov, then the 1st of December (either day field).
        let s: CronSchedule = "0 0 6 1 * 1".parse().unwrap();
        assert_eq!(
            s.next_n(Tz::UTC, after, 2),
            [utc("2026-11-30T06:00:00Z"), utc("2026-12-01T06:00:00Z")]
        );
        // `?` is `*`: Mondays only, not every day.
        let s: CronSchedule = "0 6 ? * 1".parse().unwrap();
        assert_eq!(
            s.next_n(Tz::UTC, after, 2),
            [utc("2026-11-30T06:00:00Z"), utc("2026-12-07T06:00:00Z")]
        );
        // A year last: Sunday 7 in 2027 only.
        let s: CronSchedule = "0 0 6 * * 7 2027".parse().unwrap();
        assert_eq!(
            s.next_after(Tz::UTC, after),
            Some(utc("2027-01-03T06:00:00Z"))
        );
    }

    #[test]
    fn skipped_local_hour_fires_once_after_the_gap() {
        // Europe/Berlin springs forward on 2026-03-29 at 02:00 → 03:00.
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let s: CronSchedule = "30 2 * * *".parse().unwrap();
        let fires = s.next_n(tz, utc("2026-03-27T12:00:00Z"), 3);
        assert_eq!(
            fires,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 02:30 does not exist → 03:00 CEST
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
            ]
        );
        // Every 15 minutes: the four slots inside the gap collapse into one fire.
        let s: CronSchedule = "*/15 * * * *".parse().unwrap();
        let fires = s.next_n(tz, utc("2026-03-29T00:40:00Z"), 3);
        assert_eq!(
            fires,
            vec![
                utc("2026-03-29T00:45:00Z"), // 01:45 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST (gap collapsed)
                utc("2026-03-29T01:15:00Z"),
            ]
        );
    }

    #[test]
    fn repeated_local_hour_fires_once() {
        // Europe/Berlin falls back on 2026-10-25 at 03:00 → 02:00.
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let s: CronSchedule = "30 2 * * *".parse().unwrap();
        let fires = s.next_n(tz, utc("2026-10-24T12:00:00Z"), 2);
        assert_eq!(
            fires,
            vec![
                utc("2026-10-25T00:30:00Z"), // first 02:30 (CEST)
                utc("2026-10-26T01:30:00Z"), // next day 02:30 CET
            ]
        );
        // Hourly across the fold: 02:00 fires once, then 03:00.
        let s: CronSchedule = "0 * * * *".parse().unwrap();
        let fires = s.next_n(tz, utc("2026-10-24T23:30:00Z"), 3);
        assert_eq!(
            fires,
            vec![
                utc("2026-10-25T00:00:00Z"), // 02:00 CEST
                utc("2026-10-25T02:00:00Z"), // 03:00 CET (second 02:00 skipped)
                utc("2026-10-25T03:00:00Z"),
            ]
        );
    }

    /// QA (ops #14): `*/61` was refused with the crate's "Minutes must be
    /// between 1 and 59", which reads as if minute 0 were invalid.
    #[test]
    fn a_step_out_of_range_is_named_as_a_step() {
        let e = "*/61 * * * *".parse::<CronSchedule>().unwrap_err();
        assert!(
            e.contains(": the step `/61` in the minutes field must be between 1 and 59;"),
            "{e}"
        );
        assert!(!e.contains("Minutes must be between"), "{e}");
        // A value out of range keeps the crate's (inclusive) bound.
        let e = "61 * * * *".parse::<CronSchedule>().unwrap_err();
        assert!(e.contains("Minutes must be at most 59"), "{e}");
    }

    /// Ops QA13 OPS-7: `40 * * * * 2026` (crontab plus a year) got "day-of-week
    /// out of range" with no word that 6 fields read seconds first.
    #[test]
    fn six_and_seven_field_errors_say_how_the_fields_are_read() {
        let e = "40 * * * * 2026".parse::<CronSchedule>().unwrap_err();
        assert!(
            e.contains("day-of-week field: `2026` is out of range 0-7 (6 fields read seconds first: second minute hour day-of-month month day-of-week; a crontab line has 5; for a crontab line plus a year write 7 fields, seconds first: `0 40 * * * * 2026`)"),
            "{e}"
        );
        // A 6-field line whose "0 …" would be no schedule either is not
        // told to write that (QA21 A21-6: hour 40).
        let e = "0 40 * * * 2026".parse::<CronSchedule>().unwrap_err();
        assert!(
            e.ends_with("for a crontab line plus a year write 7 fields, seconds first (second minute hour day-of-month month day-of-week year))"),
            "{e}"
        );
        let e = "0 0 25 * * *".parse::<CronSchedule>().unwrap_err();
        assert!(
            e.contains("(6 fields read seconds first: second minute hour day-of-month month day-of-week; a crontab line has 5)"),
            "{e}"
        );
        let e = "0 0 25 * * * 2030".parse::<CronSchedule>().unwrap_err();
        assert!(
            e.contains("(7 fields: second minute hour day-of-month month day-of-week year;"),
            "{e}"
        );
        let e = "0 25 * * *".parse::<CronSchedule>().unwrap_err();
        assert!(!e.contains("fields read") && !e.contains("7 fields"), "{e}");
    }

    /// Ops QA13 OPS-2: `* * * * * *` and `*/2 * * * * *` (a crontab line
    /// with one `*` too many, read seconds first) were accepted, and the
    /// daemon started a full sync every second or two.
    #[test]
    fn a_schedule_firing_more_than_once_a_minute_is_explained() {
        let s: CronSchedule = "*/2 * * * * *".parse().unwrap();
        let why = s.sub_minute().unwrap();
        assert!(
            why.starts_with("fires 30 times a minute: 6 fields read seconds first (second minute hour day-of-month month day-of-week), and the seconds field `*/2` matches 30 seconds;")
                && why.contains("e.g. `0 * * * * *`")
                && why.contains("the 5 fields `*/2 * * * *`"),
            "{why}"
        );
        let s: CronSchedule = "0,30 0 6 * * * 2027".parse().unwrap();
        let why = s.sub_minute().unwrap();
        assert!(
            why.starts_with("fires 2 times a minute: 7 fields")
                && why.contains("day-of-week year)")
                && why.contains("`0 0 6 * * * 2027`")
                && !why.contains("one field too many"),
            "{why}"
        );
        for once in [
            "* * * * *",
            "*/5 * * * *",
            "0 * * * * *",
            "30 */5 * * * *",
            "0 0 6 * * * 2030",
        ] {
            let s: CronSchedule = once.parse().unwrap();
            assert_eq!(s.sub_minute(), None, "{once}");
        }
    }

    #[test]
    fn unknown_timezone_suggests_nearest() {
        let e = "Europe/Berln".parse::<Timezone>().unwrap_err();
        assert!(e.contains("did you mean `Europe/Berlin`"), "{e}");
    }
}
