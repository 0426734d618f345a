//! Producing KPI output: one call from inputs to rendered text
//! ([`produce`]), and the daily and monthly summary files the daemon writes
//! into `<output_dir>/kpi/` on the `[kpi.summaries]` schedule.
//!
//! The daemon's scheduler owns the timing: it asks [`next_run`] when to wake
//! and calls [`write_scheduled_summaries`] (or [`write_summaries`] with its
//! own loader). Files are written to a temporary name and renamed, so a
//! reader never sees half a file.
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Utc};

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

/// Writes the daily and monthly summaries for a run at `now` into
/// `<output_dir>/kpi/daily/<day>.<ext>` and `<output_dir>/kpi/monthly/<YYYY-MM>.<ext>`
/// (the month's files are rewritten each day until the month is complete).
/// `load` supplies the inputs of a period; `revision` says which version
/// of the files of (`daily` or `monthly`, file stem) this write is, which
/// every format states (`None`: none stated). Returns the files written.
pub fn write_summaries(
    ctx: KpiContext<'_>,
    cfg: &SummariesConfig,
    output_dir: &Path,
    now: DateTime<Utc>,
    mut load: impl FnMut(&Period) -> Result<KpiInputs, KpiError>,
    mut revision: impl FnMut(&str, &str) -> Result<Option<Revision>, KpiError>,
) -> Result<Vec<PathBuf>, KpiError> {
    let (daily, monthly) = summary_periods(ctx.zone, now);
    let mut written = Vec::new();
    let jobs = [
        ("daily", daily, daily.from.to_string()),
        (
            "monthly",
            monthly,
            format!("{:04}-{:02}", monthly.from.year(), monthly.from.month()),
        ),
    ];
    for (dir, period, stem) in jobs {
        let inputs = load(&period)?;
        let query = Query {
            period,
            by: cfg.by.clone(),
            view: cfg.view,
        };
        let engine = Engine::new(ctx, &inputs)?;
        let mut report = engine.report(&query)?;
        report.provenance.revision = revision(dir, &stem)?;
        let charts = match cfg.formats.contains(&Format::Html) {
            true => Some(ChartData::build(&engine, &query)?),
            false => None,
        };
        let dir = output_dir.join("kpi").join(dir);
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

/// [`write_summaries`] reading the inputs from the store, each file
/// numbered: revision 1 for a new stem, then one more (naming the version
/// it replaces) each time the daemon writes the same file again (QA34a
/// A-M2: a rewritten file looked like its earlier version).
pub fn write_scheduled_summaries(
    ctx: KpiContext<'_>,
    cfg: &SummariesConfig,
    store: &Store,
    programs: &[ProgramConfig],
    output_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>, KpiError> {
    let tree = store.domain("kpi")?;
    let mut written = Vec::new();
    let files = write_summaries(
        ctx,
        cfg,
        output_dir,
        now,
        |p| super::load::load_inputs(store, programs, ctx.fx, ctx.zone, p, now),
        |dir, stem| {
            let last: Option<StoredRevision> = tree.get(&revision_key(dir))?;
            let (number, supersedes) = match last {
                Some(l) if l.stem == stem => (l.revision.saturating_add(1), Some(l.generated_at)),
                _ => (1, None),
            };
            let stored = StoredRevision {
                stem: stem.to_owned(),
                revision: number,
                generated_at: now,
            };
            let value = serde_json::to_value(&stored).map_err(|e| KpiError::Render {
                what: "summary revision".into(),
                message: e.to_string(),
            })?;
            written.push((revision_key(dir), Some(value)));
            Ok(Some(Revision { number, supersedes }))
        },
    )?;
    // After the files: a failed write leaves the count where it was.
    tree.apply(written)?;
    Ok(files)
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
    std::fs::write(&tmp, bytes).map_err(wrap)?;
    std::fs::rename(&tmp, path).map_err(wrap)
}
