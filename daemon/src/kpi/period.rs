//! Report periods and the reporting timezone: which local days a report
//! covers, and how UTC instants (orders, claims) fall into those days.
//!
//! Spend rows are not converted: they carry their own local day and zone, and
//! a row from another zone is labelled instead (see `summary`).
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;

use super::KpiError;

/// An inclusive range of local days in the reporting timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// The statement period it was asked as (`2026-W44`, `2026-11-H1`),
    /// which names it in the outputs; `None`: a month or a range of days.
    pub cut: Option<crate::payout::period::Period>,
}

impl Period {
    /// Builds a period; `from` must not be after `to`.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Period, KpiError> {
        if from > to {
            return Err(KpiError::Period(format!(
                "{from}..{to}: the first day is after the last"
            )));
        }
        Ok(Period {
            from,
            to,
            cut: None,
        })
    }

    /// The calendar month containing `day`.
    pub fn month_of(day: NaiveDate) -> Period {
        let from = day.with_day(1).unwrap_or(day);
        let next = if from.month() == 12 {
            NaiveDate::from_ymd_opt(from.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(from.year(), from.month() + 1, 1)
        };
        let to = next.and_then(|n| n.pred_opt()).unwrap_or(from);
        Period {
            from,
            to,
            cut: None,
        }
    }

    /// One day.
    pub fn day(day: NaiveDate) -> Period {
        Period {
            from: day,
            to: day,
            cut: None,
        }
    }

    /// Whether `day` is in the period.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }

    /// Every day of the period, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let to = self.to;
        self.from.iter_days().take_while(move |d| *d <= to)
    }

    /// Whether this is exactly one calendar month.
    pub fn is_month(&self) -> bool {
        Period::month_of(self.from) == *self
    }
}

impl fmt::Display for Period {
    /// `2026-11` for a whole month, `2026-W44` or `2026-11-H1` for a
    /// period asked so, else `2026-11-01..2026-11-15`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cut) = &self.cut {
            write!(f, "{cut}")
        } else if self.is_month() {
            write!(f, "{}", self.from.format("%Y-%m"))
        } else {
            write!(f, "{}..{}", self.from, self.to)
        }
    }
}

impl std::str::FromStr for Period {
    type Err = KpiError;
    fn from_str(s: &str) -> Result<Period, KpiError> {
        parse_period(s)
    }
}

/// Parses `YYYY-MM`, `YYYY-MM-DD..YYYY-MM-DD` (both days inclusive), or a
/// statement period: an ISO week `YYYY-Www` or a half month `YYYY-MM-H1` /
/// `YYYY-MM-H2`, read by the statements' own parser
/// ([`crate::payout::period::Period::parse`], as `reckon reconcile report`
/// reads them; QA34a A-L3).
pub fn parse_period(s: &str) -> Result<Period, KpiError> {
    {
        let s = s.trim();
        let bad = || {
            KpiError::Period(format!(
                "{s:?}: expected YYYY-MM (a month) or YYYY-MM-DD..YYYY-MM-DD (inclusive days), or an ISO week YYYY-Www (e.g. 2026-W44) or half month YYYY-MM-H1 / YYYY-MM-H2"
            ))
        };
        if let Some(cut) = statement_period(s)? {
            let (from, to) = (cut.start, cut.last_day());
            check_year(to)?;
            return Ok(Period {
                from,
                to,
                cut: Some(cut),
            });
        }
        // Days go through the CLI's shared parser, which tells a day that
        // does not exist (2026-02-30) from a malformed one.
        let day = |d: &str| -> Result<NaiveDate, KpiError> {
            let d = d.trim();
            if d.len() != 10 {
                return Err(bad());
            }
            let day = crate::cli::parse_day(d).map_err(KpiError::Period)?;
            check_year(day)
        };
        if let Some((a, b)) = s.split_once("..") {
            return Period::new(day(a)?, day(b)?);
        }
        // One day, as a day: the range form is what is meant.
        if s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
            return Err(KpiError::Period(format!(
                "{s:?}: one day is written as a range, `{s}..{s}` (a month is YYYY-MM)"
            )));
        }
        // Digits only around the dash (QA24-B F3: `2026-+3` read as March:
        // `u32::parse` takes a sign).
        let shaped = s.len() == 7
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let (Some(y), Some(m)) = (
            s.get(..4)
                .filter(|_| shaped)
                .and_then(|y| y.parse::<i32>().ok()),
            s.get(5..)
                .filter(|_| shaped)
                .and_then(|m| m.parse::<u32>().ok()),
        ) else {
            return Err(bad());
        };
        let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(|| {
            KpiError::Period(format!("`{s}`: there is no month {m}; months are 01 to 12"))
        })?;
        Ok(Period::month_of(check_year(first)?))
    }
}

/// An ISO week or a half month, as statements name them; `None` when `s`
/// has neither form; an error naming a week or month that does not exist
/// (`2026-W54`).
fn statement_period(s: &str) -> Result<Option<crate::payout::period::Period>, KpiError> {
    use crate::payout::config::PeriodKind;
    use crate::payout::period::Period as Cut;
    for kind in [PeriodKind::Weekly, PeriodKind::SemiMonthly] {
        match Cut::parse(kind, s) {
            Ok(cut) => return Ok(Some(cut)),
            Err(e) => {
                if let Some(why) = e.out_of_range {
                    return Err(KpiError::Period(format!("{s:?}: {why}")));
                }
            }
        }
    }
    Ok(None)
}

/// The first year a period may start in: no marketing data predates 1970,
/// so an earlier year (`0000-01`) is a typo.
pub const FIRST_YEAR: i32 = 1970;

/// Why a `--period` in `year` is refused, if it is: before [`FIRST_YEAR`].
/// Shared by `kpi` and `statements` (`crate::cli::parse_statement_period`).
pub fn year_refused(year: i32) -> Option<String> {
    (year < FIRST_YEAR).then(|| format!("years before {FIRST_YEAR} are not accepted (a typo?)"))
}

fn check_year(day: NaiveDate) -> Result<NaiveDate, KpiError> {
    match year_refused(day.year()) {
        Some(why) => Err(KpiError::Period(format!("{day}: {why}"))),
        None => Ok(day),
    }
}

/// The one reporting timezone (`[daemon] timezone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportingZone {
    tz: Tz,
}

impl ReportingZone {
    /// Parses an IANA zone name such as `Europe/Berlin`.
    pub fn parse(name: &str) -> Result<ReportingZone, KpiError> {
        name.parse::<Tz>()
            .map(|tz| ReportingZone { tz })
            .map_err(|_| {
                KpiError::Config(format!(
                    "[daemon] timezone = {name:?}: not an IANA timezone name (e.g. \"Europe/Berlin\", \"UTC\")"
                ))
            })
    }

    /// From a parsed zone (`[daemon] timezone`).
    pub fn from_tz(tz: Tz) -> ReportingZone {
        ReportingZone { tz }
    }

    /// UTC.
    pub fn utc() -> ReportingZone {
        ReportingZone { tz: chrono_tz::UTC }
    }

    /// The chrono-tz zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.tz.name()
    }

    /// The local day an instant falls on (correct across DST changes).
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// The instant a local day starts. Where midnight does not exist (a DST
    /// jump at 00:00) the day starts at the first existing local time.
    pub fn start_of(&self, day: NaiveDate) -> DateTime<Utc> {
        let mut local = day.and_time(NaiveTime::MIN);
        for _ in 0..8 {
            if let Some(t) = self.tz.from_local_datetime(&local).earliest() {
                return t.with_timezone(&Utc);
            }
            local += Duration::minutes(30);
        }
        // No zone skips four hours; fall back to the UTC reading.
        Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
    }

    /// The UTC instants `[start, end)` a period covers.
    pub fn bounds(&self, period: &Period) -> (DateTime<Utc>, DateTime<Utc>) {
        let end_day = period.to.succ_opt().unwrap_or(period.to);
        (self.start_of(period.from), self.start_of(end_day))
    }

    /// A sentence stating the day boundaries, e.g. "Days are 00:00–24:00
    /// Europe/Berlin: 2026-10-01 00:00 +02:00 to 2026-11-01 00:00 +01:00
    /// (2026-09-30T22:00:00Z to 2026-10-31T23:00:00Z)."
    pub fn describe(&self, period: &Period) -> String {
        let (start, end) = self.bounds(period);
        let ls = start.with_timezone(&self.tz);
        let le = end.with_timezone(&self.tz);
        format!(
            "Days are 00:00–24:00 {}; the period runs from {} to {} ({} to {}).",
            self.name(),
            ls.format("%Y-%m-%d %H:%M %:z"),
            le.format("%Y-%m-%d %H:%M %:z"),
            start.format("%Y-%m-%dT%H:%M:%SZ"),
            end.format("%Y-%m-%dT%H:%M:%SZ"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn parses_months_and_ranges() {
        let p: Period = "2026-02".parse().expect("month");
        assert_eq!((p.from, p.to), (d("2026-02-01"), d("2026-02-28")));
        assert_eq!(p.to_string(), "2026-02");
        let p: Period = "2026-12".parse().expect("december");
        assert_eq!(p.to, d("2026-12-31"));
        let p: Period = "2026-11-03..2026-11-05".parse().expect("range");
        assert_eq!(p.days().count(), 3);
        assert_eq!(p.to_string(), "2026-11-03..2026-11-05");
        assert!("2026-11-05..2026-11-03".parse::<Period>().is_err());
        assert!("2026-13".parse::<Period>().is_err());
        for signed in ["2026-+3", "+026-03", "-026-03"] {
            assert!(signed.parse::<Period>().is_err(), "{signed}");
        }
        assert!("last month".parse::<Period>().is_err());
    }

    /// A day that does not exist is named as such (it got the generic
    /// "expected YYYY-MM…"); years before 1970 are refused (`0000-01` was
    /// accepted).
    #[test]
    fn period_errors_are_precise() {
        let e = |s: &str| s.parse::<Period>().expect_err(s).to_string();
        let err = e("2026-02-30..2026-03-01");
        assert!(err.contains("not a day of the calendar"), "{err}");
        let err = e("2026-13");
        assert!(err.contains("no month 13"), "{err}");
        for s in ["0000-01", "1969-12-01..1970-01-02"] {
            let err = e(s);
            assert!(err.contains("years before 1970"), "{s}: {err}");
        }
        assert!(e("2026-1-5..2026-01-06").contains("expected YYYY-MM"));
        // QA6 F9: a single day gets the range form as a hint.
        assert!(
            e("2026-10-01").contains("`2026-10-01..2026-10-01`"),
            "{}",
            e("2026-10-01")
        );
        assert!("1970-01".parse::<Period>().is_ok());
    }

    #[test]
    fn describes_boundaries_across_dst() {
        let z = ReportingZone::parse("Europe/Berlin").expect("zone");
        let p: Period = "2026-10".parse().expect("month");
        let s = z.describe(&p);
        assert!(s.contains("2026-10-01 00:00 +02:00"), "{s}");
        assert!(s.contains("2026-11-01 00:00 +01:00"), "{s}");
        assert!(s.contains("2026-09-30T22:00:00Z"), "{s}");
        assert!(ReportingZone::parse("Mars/Olympus").is_err());
    }
}
