//! Producing KPI output: one call from inputs to rendered text
//! ([`produce`]), and the daily and monthly summary files the daemon writes
//! into `<output_dir>/kpi/` on the `[kpi.summaries]` schedule.
//!
//! The daemon's scheduler owns the timing: it asks [`next_run`] when to wake
//! and calls [`write_scheduled_summaries`] (or [`write_summaries`] with its
//! own loader). A write after missed fires first catches up the files of
//! the days and months that ended since the last one ([`catch_up`]).
//! Files are written to a temporary name and renamed, so a reader never
//! sees half a file.
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};

use super::chart::ChartData;
use super::config::SummariesConfig;
use super::engine::{Engine, KpiContext, Revision};
use super::period::{Period, ReportingZone};
use super::render::render;
use super::{Format, KpiError, KpiInputs, Query};
use crate::reconcile::config::ProgramConfig;
use crate::store::Store;

/// Computes a summary and renders it (with charts for HTML).
pub fn produce(
    ctx: KpiContext<'_>,
    inputs: &KpiInputs,
    query: &Query,
    format: Format,
) -> Result<String, KpiError> {
    produce_with_notes(ctx, inputs, query, format).map(|(text, _)| text)
}

/// [`produce`], also returning the report's notes (for the `warning:`
/// lines of formats that carry none, such as CSV).
pub fn produce_with_notes(
    ctx: KpiContext<'_>,
    inputs: &KpiInputs,
    query: &Query,
    format: Format,
) -> Result<(String, Vec<String>), KpiError> {
    let engine = Engine::new(ctx, inputs)?;
    let report = engine.report(query)?;
    let charts = match format {
        Format::Html => Some(ChartData::build(&engine, query)?),
        _ => None,
    };
    let text = render(format, &report, charts.as_ref())?;
    Ok((text, report.notes))
}

/// Parses a standard 5-field crontab line (a 6- or 7-field line with
/// seconds is accepted too), exactly as connector schedules are parsed:
/// Sunday = 0 or 7, and day-of-month / day-of-week combined as crontab does.
pub fn parse_schedule(expr: &str) -> Result<crate::config::CronSchedule, KpiError> {
    expr.parse::<crate::config::CronSchedule>()
        .map_err(|e| KpiError::Config(format!("[kpi.summaries] schedule = {expr:?}: {e}")))
}

/// When the summaries are next due after `after`, evaluated in the reporting
/// zone; `None` when summaries are disabled or the schedule never fires.
pub fn next_run(
    cfg: &SummariesConfig,
    zone: ReportingZone,
    after: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, KpiError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let schedule = parse_schedule(&cfg.schedule)?;
    Ok(schedule.next_after(zone.tz(), after))
}

/// The periods a run at `now` summarises: the daily summary covers
/// yesterday (reporting zone); the monthly one covers the month of
/// yesterday up to yesterday (so on the 1st it is the whole previous month).
pub fn summary_periods(zone: ReportingZone, now: DateTime<Utc>) -> (Period, Period) {
    let today = zone.day_of(now);
    let yesterday = today.pred_opt().unwrap_or(today);
    let month = Period::month_of(yesterday);
    (
        Period::day(yesterday),
        Period {
            from: month.from,
            to: yesterday,
            cut: None,
        },
    )
}

/// Which of the daemon's summary files: a day's or a month's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryKind {
    /// `kpi/daily/<YYYY-MM-DD>.<ext>`: one day.
    Daily,
    /// `kpi/monthly/<YYYY-MM>.<ext>`: a month, or its days to date.
    Monthly,
}

impl SummaryKind {
    /// Its directory under `<output_dir>/kpi/` (and its revision's key).
    pub fn dir(self) -> &'static str {
        match self {
            SummaryKind::Daily => "daily",
            SummaryKind::Monthly => "monthly",
        }
    }
}

/// One of the daemon's summaries: the files of a kind and period (one a
/// format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryFile {
    /// A day's or a month's.
    pub kind: SummaryKind,
    /// The days it covers.
    pub period: Period,
}

impl SummaryFile {
    /// The day's file: `daily/<day>`.
    pub fn daily(day: NaiveDate) -> SummaryFile {
        SummaryFile {
            kind: SummaryKind::Daily,
            period: Period::day(day),
        }
    }

    /// A month's file, `monthly/<YYYY-MM>`, covering `period` (the month,
    /// or its first days).
    pub fn monthly(period: Period) -> SummaryFile {
        SummaryFile {
            kind: SummaryKind::Monthly,
            period,
        }
    }

    /// The file name without its extension: the day, or the month `YYYY-MM`.
    pub fn stem(&self) -> String {
        let from = self.period.from;
        match self.kind {
            SummaryKind::Daily => from.to_string(),
            SummaryKind::Monthly => format!("{:04}-{:02}", from.year(), from.month()),
        }
    }
}

/// The two summaries of a run at `now` ([`summary_periods`]).
pub fn current_files(zone: ReportingZone, now: DateTime<Utc>) -> [SummaryFile; 2] {
    let (daily, monthly) = summary_periods(zone, now);
    [
        SummaryFile::daily(daily.from),
        SummaryFile::monthly(monthly),
    ]
}

/// Daily files a write catches up at most: those of the 31 days before
/// yesterday (older ones are left to `reckon kpi`, with a warning).
pub const CATCH_UP_DAYS: u32 = 31;

/// Whole-month files a write catches up at most: those of the 12 months
/// before yesterday's month.
pub const CATCH_UP_MONTHS: u32 = 12;

/// What a write at `now` writes before its own two summaries, when days
/// ended between the last write's yesterday and this one's (the daemon
/// was down, no sync ended after a fire, or the schedule skips days):
/// each such day's daily file, and the whole-month file of each month
/// that ended among them, as the write on the day after would have
/// written them. At most [`CATCH_UP_DAYS`] days and [`CATCH_UP_MONTHS`]
/// months back; the rest is named in `days_left` and `months_left`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// In order of days: a day of the gap and the summaries it completes
    /// (its daily file, and the month's when it is the month's last day).
    /// The next write after a failure or restart goes on after the last
    /// day done.
    pub steps: Vec<(NaiveDate, Vec<SummaryFile>)>,
    /// The first and last day whose daily files are left out (too far
    /// back).
    pub days_left: Option<(NaiveDate, NaiveDate)>,
    /// The first and last month whose files are left out (too far back).
    pub months_left: Option<(Period, Period)>,
}

impl CatchUp {
    /// Whether there is nothing to catch up or leave out.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.days_left.is_none() && self.months_left.is_none()
    }

    /// The periods of the first and last caught-up file of `kind` (in
    /// order, so the two name them all).
    pub fn written(&self, kind: SummaryKind) -> Option<(Period, Period)> {
        let mut files = self
            .steps
            .iter()
            .flat_map(|(_, files)| files)
            .filter(|f| f.kind == kind)
            .map(|f| f.period);
        let first = files.next()?;
        Some((first, files.next_back().unwrap_or(first)))
    }
}

/// What a write at `now` catches up, the daily files of the days up to
/// `done_through` being written already (`None`: nothing written yet,
/// nothing to catch up).
pub fn catch_up(
    zone: ReportingZone,
    done_through: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> CatchUp {
    let yesterday = summary_periods(zone, now).0.from;
    // The gap: the days after the last written one, before yesterday.
    let (Some(first), Some(last)) = (
        done_through.and_then(|d| d.succ_opt()),
        yesterday.pred_opt(),
    ) else {
        return CatchUp::default();
    };
    if first > last {
        return CatchUp::default();
    }
    let days_from = yesterday
        .checked_sub_days(Days::new(CATCH_UP_DAYS.into()))
        .unwrap_or(NaiveDate::MIN);
    let months_from = Period::month_of(yesterday)
        .from
        .checked_sub_months(Months::new(CATCH_UP_MONTHS))
        .unwrap_or(NaiveDate::MIN);
    let before = |d: NaiveDate| d.pred_opt().unwrap_or(d);
    let mut plan = CatchUp {
        days_left: (first < days_from).then(|| (first, last.min(before(days_from)))),
        // A month starting before `months_from` ends before it.
        months_left: (first < months_from).then(|| {
            (
                Period::month_of(first),
                Period::month_of(last.min(before(months_from))),
            )
        }),
        steps: Vec::new(),
    };
    let mut day = first.max(months_from.min(days_from));
    while day <= last {
        let mut files = Vec::new();
        if day >= days_from {
            files.push(SummaryFile::daily(day));
        }
        let month = Period::month_of(day);
        if day == month.to {
            files.push(SummaryFile::monthly(month));
        }
        if !files.is_empty() {
            plan.steps.push((day, files));
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    plan
}

/// Writes the daily and monthly summaries for a run at `now` into
/// `<output_dir>/kpi/daily/<day>.<ext>` and `<output_dir>/kpi/monthly/<YYYY-MM>.<ext>`
/// (the month's files are rewritten each day until the month is complete):
/// [`write_files`] of [`current_files`].
pub fn write_summaries(
    ctx: KpiContext<'_>,
    cfg: &SummariesConfig,
    output_dir: &Path,
    now: DateTime<Utc>,
    load: impl FnMut(&Period) -> Result<KpiInputs, KpiError>,
    revision: impl FnMut(&str, &str) -> Result<Option<Revision>, KpiError>,
) -> Result<Vec<PathBuf>, KpiError> {
    let files = current_files(ctx.zone, now);
    write_files(ctx, cfg, output_dir, &files, load, revision)
}

/// Writes `summaries` into `<output_dir>/kpi/<daily|monthly>/<stem>.<ext>`,
/// one file a format. `load` supplies the inputs of a period; `revision`
/// says which version of the files of (`daily` or `monthly`, file stem)
/// this write is, which every format states (`None`: none stated).
/// Returns the files written.
pub fn write_files(
    ctx: KpiContext<'_>,
    cfg: &SummariesConfig,
    output_dir: &Path,
    summaries: &[SummaryFile],
    mut load: impl FnMut(&Period) -> Result<KpiInputs, KpiError>,
    mut revision: impl FnMut(&str, &str) -> Result<Option<Revision>, KpiError>,
) -> Result<Vec<PathBuf>, KpiError> {
    let mut written = Vec::new();
    for summary in summaries {
        let (period, stem) = (summary.period, summary.stem());
        let inputs = load(&period)?;
        let query = Query {
            period,
            by: cfg.by.clone(),
            view: cfg.view,
        };
        let engine = Engine::new(ctx, &inputs)?;
        let mut report = engine.report(&query)?;
        report.provenance.revision = revision(summary.kind.dir(), &stem)?;
        let charts = match cfg.formats.contains(&Format::Html) {
            true => Some(ChartData::build(&engine, &query)?),
            false => None,
        };
        let dir = output_dir.join("kpi").join(summary.kind.dir());
        std::fs::create_dir_all(&dir).map_err(|error| KpiError::Write {
            path: dir.display().to_string(),
            error,
        })?;
        for format in &cfg.formats {
            let text = render(*format, &report, charts.as_ref())?;
            let path = dir.join(format!("{stem}.{}", format.extension()));
            write_atomically(&path, text.as_bytes())?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Which version of the current daily (or monthly) files the daemon last
/// wrote: kept in the store's `kpi` tree under [`revision_key`], one entry
/// per kind (a file of an earlier day or month is final and needs none).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredRevision {
    /// The file stem (`2026-11-30`, `2026-11`).
    pub stem: String,
    /// Its revision number.
    pub revision: u64,
    /// When that version was generated.
    pub generated_at: DateTime<Utc>,
}

/// The `kpi` tree's key of the last written revision of `daily` or
/// `monthly` files.
pub fn revision_key(dir: &str) -> String {
    format!("summaries/revision/{dir}")
}

/// Entries for the store's `kpi` tree.
pub type TreeEntries = Vec<(String, Option<serde_json::Value>)>;

/// [`write_files`] of `summaries`, reading the inputs from the store, each
/// file numbered: revision 1 for a new stem, then one more (naming the
/// version it replaces) each time the daemon writes the same file again
/// (QA34a A-M2: a rewritten file looked like its earlier version).
/// Returns the files written and the new revision numbers, for the caller
/// to store after the files (a failed write leaves the count where it was)
/// with its own keys, in one batch.
pub fn write_scheduled_summaries(
    ctx: KpiContext<'_>,
    cfg: &SummariesConfig,
    store: &Store,
    programs: &[ProgramConfig],
    output_dir: &Path,
    now: DateTime<Utc>,
    summaries: &[SummaryFile],
) -> Result<(Vec<PathBuf>, TreeEntries), KpiError> {
    let tree = store.domain("kpi")?;
    // The last revision of each kind: as stored, then as written here.
    let mut latest = std::collections::BTreeMap::<String, StoredRevision>::new();
    let files = write_files(
        ctx,
        cfg,
        output_dir,
        summaries,
        |p| super::load::load_inputs(store, programs, ctx.fx, ctx.zone, p, now),
        |dir, stem| {
            let last = match latest.get(dir) {
                Some(l) => Some(l.clone()),
                None => tree.get::<StoredRevision>(&revision_key(dir))?,
            };
            let (number, supersedes) = match last {
                Some(l) if l.stem == stem => (l.revision.saturating_add(1), Some(l.generated_at)),
                _ => (1, None),
            };
            let stored = StoredRevision {
                stem: stem.to_owned(),
                revision: number,
                generated_at: now,
            };
            latest.insert(dir.to_owned(), stored);
            Ok(Some(Revision { number, supersedes }))
        },
    )?;
    let mut revisions = Vec::new();
    for (dir, stored) in latest {
        let value = serde_json::to_value(&stored).map_err(|e| KpiError::Render {
            what: "summary revision".into(),
            message: e.to_string(),
        })?;
        revisions.push((revision_key(&dir), Some(value)));
    }
    Ok((files, revisions))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), KpiError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    let wrap = |error| KpiError::Write {
        path: path.display().to_string(),
        error,
    };
    // A failed write (a full disk) or rename leaves no partial `.tmp` in
    // a directory BI jobs read (QA44a A-L2).
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// QA44a A-L2: a write that failed left `NAME.csv.tmp` beside the
    /// summaries. Here the rename fails (a directory holds the name), as
    /// the write fails on a full disk: nothing is left.
    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-12-01.csv");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), "").unwrap();
        let err = write_atomically(&path, b"a,b\n").unwrap_err();
        assert!(err.to_string().contains("2026-12-01.csv"), "{err}");
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["2026-12-01.csv"]);
    }

    fn days(first: &str, last: &str) -> Period {
        Period::new(day(first), day(last)).unwrap()
    }

    fn month(s: &str) -> Period {
        Period::month_of(day(&format!("{s}-01")))
    }

    /// The files of a plan, as `daily/<stem>` and `monthly/<period>`.
    fn names(plan: &CatchUp) -> Vec<String> {
        plan.steps
            .iter()
            .flat_map(|(_, files)| files)
            .map(|f| format!("{}/{}", f.kind.dir(), f.period))
            .collect()
    }

    /// QA44c C-H1: down from 31 December 12:00 to 2 January 12:00, the
    /// write of the 2nd catches up 31 December's daily file and the whole
    /// of December before its own (1 January, January to date).
    #[test]
    fn a_write_after_a_month_end_missed_completes_the_month() {
        let plan = catch_up(
            ReportingZone::utc(),
            Some(day("2026-12-30")),
            "2027-01-02T12:00:00Z".parse().unwrap(),
        );
        assert_eq!(
            names(&plan),
            ["daily/2026-12-31..2026-12-31", "monthly/2026-12"]
        );
        assert_eq!(plan.steps[0].0, day("2026-12-31"));
        assert_eq!((plan.days_left, plan.months_left), (None, None));
        let one_day = Period::day(day("2026-12-31"));
        assert_eq!(plan.written(SummaryKind::Daily), Some((one_day, one_day)));
        let december = month("2026-12");
        assert_eq!(
            plan.written(SummaryKind::Monthly),
            Some((december, december))
        );
    }

    /// The day after the last write, or a second write the same day:
    /// nothing to catch up; nor before the first write.
    #[test]
    fn no_gap_no_catch_up() {
        let now = "2026-11-09T05:30:00Z".parse().unwrap();
        let zone = ReportingZone::utc();
        assert!(catch_up(zone, Some(day("2026-11-07")), now).is_empty());
        assert!(catch_up(zone, Some(day("2026-11-08")), now).is_empty());
        // A clock set back.
        assert!(catch_up(zone, Some(day("2026-11-20")), now).is_empty());
        assert!(catch_up(zone, None, now).is_empty());
    }

    /// Off 62 days: the last 31 days' daily files, and every month that
    /// ended (December, January, February) whole; the older days are
    /// left out and named.
    #[test]
    fn a_long_gap_catches_up_31_days_and_every_month() {
        let plan = catch_up(
            ReportingZone::utc(),
            Some(day("2026-12-30")),
            "2027-03-03T12:00:00Z".parse().unwrap(),
        );
        assert_eq!(plan.days_left, Some((day("2026-12-31"), day("2027-01-29"))));
        assert_eq!(plan.months_left, None);
        let (daily, monthly) = (
            plan.written(SummaryKind::Daily),
            plan.written(SummaryKind::Monthly),
        );
        assert_eq!(
            daily,
            Some((
                Period::day(day("2027-01-30")),
                Period::day(day("2027-03-01"))
            ))
        );
        assert_eq!(monthly, Some((month("2026-12"), month("2027-02"))));
        let names = names(&plan);
        assert_eq!(names.len(), 31 + 3, "{names:?}");
        // In order of days, each month after its last day's daily file.
        assert_eq!(names[0], "monthly/2026-12");
        assert_eq!(names[1], "daily/2027-01-30..2027-01-30");
        assert_eq!(names[3], "monthly/2027-01");
        assert_eq!(names[32], "monthly/2027-02");
        assert_eq!(names[33], "daily/2027-03-01..2027-03-01");
        // Every step is a day of the gap, in order.
        assert!(plan.steps.windows(2).all(|w| w[0].0 < w[1].0));
    }

    /// Off 400 days: 12 whole months and 31 daily files; the months and
    /// days before are named as left out.
    #[test]
    fn a_catch_up_is_bounded() {
        let plan = catch_up(
            ReportingZone::utc(),
            Some(day("2026-12-30")),
            "2028-02-04T12:00:00Z".parse().unwrap(),
        );
        assert_eq!(plan.days_left, Some((day("2026-12-31"), day("2028-01-02"))));
        assert_eq!(plan.months_left, Some((month("2026-12"), month("2027-01"))));
        let daily = plan.written(SummaryKind::Daily);
        let monthly = plan.written(SummaryKind::Monthly);
        assert_eq!(
            daily.map(|(a, b)| (a.from, b.from)),
            Some((day("2028-01-03"), day("2028-02-02")))
        );
        assert_eq!(monthly, Some((month("2027-02"), month("2028-01"))));
        assert_eq!(names(&plan).len(), 31 + 12);
    }

    /// The gap is of reporting-zone days: 00:30 in Berlin on 1 December
    /// is still 30 November in UTC.
    #[test]
    fn the_gap_is_in_the_reporting_zone() {
        let zone = ReportingZone::parse("Europe/Berlin").unwrap();
        let plan = catch_up(
            zone,
            Some(day("2026-11-28")),
            "2026-11-30T23:30:00Z".parse().unwrap(),
        );
        assert_eq!(names(&plan), ["daily/2026-11-29..2026-11-29"]);
        let plan = catch_up(
            zone,
            Some(day("2026-11-28")),
            "2026-12-01T23:30:00Z".parse().unwrap(),
        );
        assert_eq!(
            names(&plan),
            [
                "daily/2026-11-29..2026-11-29",
                "daily/2026-11-30..2026-11-30",
                "monthly/2026-11"
            ]
        );
        assert_eq!(days("2026-11-30", "2026-11-30"), plan.steps[1].1[0].period);
    }
}
