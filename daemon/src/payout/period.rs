//! Statement periods: calendar months, half months and ISO weeks, named the
//! way the CLI takes them (`2026-11`, `2026-11-H1`, `2026-W48`).
//!
//! A period is a half-open range of local dates `[start, end)` in the
//! program's timezone. This module does no I/O and knows nothing of
//! statements.

use super::config::PeriodKind;
use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use std::fmt;

/// One statement period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    /// First local date in the period.
    pub start: NaiveDate,
    /// First local date after the period.
    pub end: NaiveDate,
    /// Its kind.
    pub kind: PeriodKindOrd,
}

/// [`PeriodKind`] with an order, so periods sort by start date first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodKindOrd {
    /// Calendar month.
    Monthly,
    /// Half month.
    SemiMonthly,
    /// ISO week.
    Weekly,
}

impl From<PeriodKind> for PeriodKindOrd {
    fn from(k: PeriodKind) -> Self {
        match k {
            PeriodKind::Monthly => PeriodKindOrd::Monthly,
            PeriodKind::SemiMonthly => PeriodKindOrd::SemiMonthly,
            PeriodKind::Weekly => PeriodKindOrd::Weekly,
        }
    }
}

/// A period name that does not parse for the configured period kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodError {
    /// What was given.
    pub given: String,
    /// The configured kind.
    pub kind: &'static str,
    /// An example of the expected form.
    pub example: &'static str,
    /// What is wrong with a name of the right form (`2026-00`: the month
    /// does not exist), when that is the problem.
    pub out_of_range: Option<String>,
}

impl fmt::Display for PeriodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.out_of_range {
            Some(why) => write!(f, "period `{}`: {why}", self.given),
            None => write!(
                f,
                "period `{}` is not a {} period; write {}",
                self.given, self.kind, self.example
            ),
        }
    }
}

impl std::error::Error for PeriodError {}

impl Period {
    /// The period `s` names, of whichever kind its syntax is (`2026-11`,
    /// `2026-11-H1`, `2026-W48`: no name is of two kinds); `None` when it
    /// names none.
    pub fn of_any_kind(s: &str) -> Option<Period> {
        [
            PeriodKind::Monthly,
            PeriodKind::SemiMonthly,
            PeriodKind::Weekly,
        ]
        .into_iter()
        .find_map(|k| Period::parse(k, s).ok())
    }

    /// Parses a period name of the configured kind.
    pub fn parse(kind: PeriodKind, s: &str) -> Result<Period, PeriodError> {
        let fail = || PeriodError {
            out_of_range: None,
            given: s.to_string(),
            kind: match kind {
                PeriodKind::Monthly => "monthly",
                PeriodKind::SemiMonthly => "semi-monthly",
                PeriodKind::Weekly => "weekly",
            },
            example: match kind {
                PeriodKind::Monthly => "YYYY-MM, e.g. 2026-11",
                PeriodKind::SemiMonthly => "YYYY-MM-H1 or YYYY-MM-H2, e.g. 2026-11-H2",
                PeriodKind::Weekly => "an ISO week YYYY-Www, e.g. 2026-W48",
            },
        };
        let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
        let month = |y: &str, m: &str| -> Result<NaiveDate, PeriodError> {
            if !digits(y, 4) || !digits(m, 2) {
                return Err(fail());
            }
            let (year, mon) = (
                y.parse().map_err(|_| fail())?,
                m.parse().map_err(|_| fail())?,
            );
            NaiveDate::from_ymd_opt(year, mon, 1).ok_or_else(|| PeriodError {
                out_of_range: Some(format!(
                    "there is no month {m}: months are 01 to 12, e.g. {y}-01"
                )),
                ..fail()
            })
        };
        match kind {
            PeriodKind::Monthly => {
                let (y, m) = s.split_once('-').ok_or_else(fail)?;
                let start = month(y, m)?;
                Ok(Period::month_of(start))
            }
            PeriodKind::SemiMonthly => {
                let mut parts = s.split('-');
                let (Some(y), Some(m), Some(h), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(fail());
                };
                let first = month(y, m)?;
                let day = match h {
                    "H1" => 1,
                    "H2" => 16,
                    _ => return Err(fail()),
                };
                Ok(Period::half_month_of(first.with_day(day).ok_or_else(fail)?))
            }
            PeriodKind::Weekly => {
                let (y, w) = s.split_once("-W").ok_or_else(fail)?;
                if !digits(y, 4) || !digits(w, 2) {
                    return Err(fail());
                }
                let year: i32 = y.parse().map_err(|_| fail())?;
                let start =
                    NaiveDate::from_isoywd_opt(year, w.parse().map_err(|_| fail())?, Weekday::Mon)
                        .ok_or_else(|| {
                            let last = NaiveDate::from_ymd_opt(year, 12, 28)
                                .map_or(52, |d| d.iso_week().week());
                            PeriodError {
                                out_of_range: Some(format!(
                                    "{y} has no ISO week {w}: its weeks are W01 to W{last}"
                                )),
                                ..fail()
                            }
                        })?;
                Ok(Period::week_of(start))
            }
        }
    }

    /// The period of `kind` containing `date`.
    pub fn containing(kind: PeriodKind, date: NaiveDate) -> Period {
        match kind {
            PeriodKind::Monthly => Period::month_of(date),
            PeriodKind::SemiMonthly => Period::half_month_of(date),
            PeriodKind::Weekly => Period::week_of(date),
        }
    }

    fn month_of(date: NaiveDate) -> Period {
        let start = date.with_day(1).unwrap_or(date);
        Period {
            start,
            end: start + Months::new(1),
            kind: PeriodKindOrd::Monthly,
        }
    }

    fn half_month_of(date: NaiveDate) -> Period {
        let first = date.with_day(1).unwrap_or(date);
        let mid = first.with_day(16).unwrap_or(first);
        let (start, end) = if date.day() < 16 {
            (first, mid)
        } else {
            (mid, first + Months::new(1))
        };
        Period {
            start,
            end,
            kind: PeriodKindOrd::SemiMonthly,
        }
    }

    fn week_of(date: NaiveDate) -> Period {
        let start = date - Days::new(u64::from(date.weekday().num_days_from_monday()));
        Period {
            start,
            end: start + Days::new(7),
            kind: PeriodKindOrd::Weekly,
        }
    }

    /// The last local date in the period.
    pub fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.end)
    }

    /// True when `date` lies in the period.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date < self.end
    }

    /// The period right after this one.
    pub fn next(&self) -> Period {
        self.following(self.end)
    }

    /// The period right before this one.
    pub fn previous(&self) -> Period {
        self.following(self.start.pred_opt().unwrap_or(self.start))
    }

    fn following(&self, date: NaiveDate) -> Period {
        match self.kind {
            PeriodKindOrd::Monthly => Period::month_of(date),
            PeriodKindOrd::SemiMonthly => Period::half_month_of(date),
            PeriodKindOrd::Weekly => Period::week_of(date),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKindOrd::Monthly => {
                write!(f, "{:04}-{:02}", self.start.year(), self.start.month())
            }
            PeriodKindOrd::SemiMonthly => write!(
                f,
                "{:04}-{:02}-H{}",
                self.start.year(),
                self.start.month(),
                if self.start.day() < 16 { 1 } else { 2 }
            ),
            PeriodKindOrd::Weekly => {
                let w = self.start.iso_week();
                write!(f, "{:04}-W{:02}", w.year(), w.week())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // QA6 F12: `2026-00` was "not a monthly period; write YYYY-MM", which
    // it is written as: the month is what is wrong.
    #[test]
    fn a_month_or_week_that_does_not_exist_is_named() {
        let e = Period::parse(PeriodKind::Monthly, "2026-00")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "period `2026-00`: there is no month 00: months are 01 to 12, e.g. 2026-01"
        );
        let e = Period::parse(PeriodKind::SemiMonthly, "2026-13-H1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("there is no month 13"), "{e}");
        let e = Period::parse(PeriodKind::Weekly, "2026-W54")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "period `2026-W54`: 2026 has no ISO week 54: its weeks are W01 to W53"
        );
        let e = Period::parse(PeriodKind::Monthly, "2026-1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a monthly period; write YYYY-MM"), "{e}");
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn parses_and_prints_each_kind() {
        let p = Period::parse(PeriodKind::Monthly, "2026-11").unwrap();
        assert_eq!((p.start, p.end), (d(2026, 11, 1), d(2026, 12, 1)));
        assert_eq!(p.to_string(), "2026-11");
        assert_eq!(p.next().to_string(), "2026-12");
        assert_eq!(p.previous().to_string(), "2026-10");
        let h = Period::parse(PeriodKind::SemiMonthly, "2026-02-H2").unwrap();
        assert_eq!((h.start, h.end), (d(2026, 2, 16), d(2026, 3, 1)));
        assert_eq!(h.next().to_string(), "2026-03-H1");
        assert_eq!(h.previous().to_string(), "2026-02-H1");
        let w = Period::parse(PeriodKind::Weekly, "2026-W01").unwrap();
        assert_eq!(w.start, d(2025, 12, 29));
        assert_eq!(w.to_string(), "2026-W01");
        assert_eq!(w.previous().to_string(), "2025-W52");
    }

    #[test]
    fn rejects_malformed_names_with_an_example() {
        for bad in ["2026-1", "26-11", "2026-11-H1", "x"] {
            let e = Period::parse(PeriodKind::Monthly, bad).unwrap_err();
            assert!(e.to_string().contains("YYYY-MM"), "{e}");
        }
        // A month that does not exist says so instead.
        let e = Period::parse(PeriodKind::Monthly, "2026-13").unwrap_err();
        assert!(e.to_string().contains("there is no month 13"), "{e}");
        assert!(Period::parse(PeriodKind::SemiMonthly, "2026-11-H3").is_err());
        assert!(Period::parse(PeriodKind::Weekly, "2026-W54").is_err());
    }
}
