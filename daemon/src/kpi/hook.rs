//! The daemon's KPI summary hook: after a successful sync, writes the daily
//! and monthly summaries when the `[kpi.summaries]` schedule has fired since
//! the last time they were written.
//!
//! The last write time is kept in the store's `kpi` domain tree, so a
//! restart neither repeats nor skips a due summary. A due write first
//! catches up the days and months that ended since the last one
//! ([`super::summary::catch_up`]: the daemon was down, or no sync ended
//! after a fire), recording each day done, so a failure or restart there
//! goes on where it stopped (QA44c C-H1). Summaries are written
//! only when the config has a `[kpi]` section. Because the hook runs after
//! syncs, a due summary is written by the first sync that ends after its
//! fire time. A later sync that stores or changes records before the next
//! reporting-zone midnight writes the same two files again (same periods,
//! fresher data): a connector that syncs after the fire time still lands
//! in yesterday's daily file.
use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::config::KpiConfig;
use super::engine::KpiContext;
use super::period::{Period, ReportingZone};
use super::summary::{
    catch_up, current_files, next_run, summary_periods, write_scheduled_summaries, CatchUp,
    SummaryKind, CATCH_UP_DAYS, CATCH_UP_MONTHS,
};
use super::{Format, KpiError};
use crate::config::Config;
use crate::schedule::hooks::{PostSync, SyncEvent};
use crate::store::Store;

/// Key of the last scheduled write's time in the `kpi` domain tree: what
/// the schedule counts its next fire from.
pub const LAST_RUN_KEY: &str = "summaries/last_run";

/// Key of the last write's time, a rewrite after a sync included (not
/// moving the schedule): what `/status` and `/metrics` show.
pub const LAST_WRITE_KEY: &str = "summaries/last_write";

/// Key of the store's change sequence number when the summaries were last
/// written (read before they were computed): a sync whose records reach no
/// further is in those files already, and does not write them again.
pub const WRITTEN_SEQ_KEY: &str = "summaries/written_seq";

/// Key of the last day whose daily file (and month's, when it ends it) a
/// catch-up has written, while it is under way: the next write goes on
/// after it. Removed by the write that completes the catch-up.
pub const CAUGHT_UP_KEY: &str = "summaries/caught_up_through";

/// When the summaries were last written, rewrites included (QA29-E L2:
/// `/status` kept the scheduled write's time while the files were
/// rewritten after later syncs), as stored (none before the first, or
/// when the store cannot tell: `/status` and `/metrics` show nothing then).
pub fn last_written(store: &Store) -> Option<DateTime<Utc>> {
    let tree = store
        .domain("kpi")
        .map_err(|e| tracing::debug!(error = %e, "kpi tree not read"))
        .ok()?;
    let read = |key: &str| -> Option<DateTime<Utc>> {
        tree.get(key)
            .map_err(|e| tracing::debug!(error = %e, "kpi tree not read"))
            .ok()
            .flatten()
    };
    read(LAST_WRITE_KEY).max(read(LAST_RUN_KEY))
}

/// The daemon's writes of the scheduled KPI summaries in this process, for
/// `/status` and `/metrics` (ops QA32a F3: summaries that failed at every
/// sync showed only in the log, and status said they would be written
/// after the next sync). As [`crate::payout::hook::DraftRuns`] for
/// statement drafts.
pub type KpiRuns = crate::schedule::hooks::HookRuns;

static KPI_RUNS: std::sync::Mutex<KpiRuns> = std::sync::Mutex::new(KpiRuns::NONE);

fn with_runs<T>(f: impl FnOnce(&mut KpiRuns) -> T) -> T {
    f(&mut KPI_RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// The summaries' runs in this process.
pub fn kpi_runs() -> KpiRuns {
    with_runs(|r| r.clone())
}

/// `reckon_kpi_summaries_last_written_timestamp_seconds` (Unix time), no
/// sample before the first write (soak QA18 F5); with `[kpi]` in `config`,
/// `reckon_kpi_summaries_runs_total{outcome}` and
/// `reckon_kpi_summaries_consecutive_failures` (0 before any run, so an
/// alert on it works before the first write).
pub fn render_metrics(store: &Store, config: &Config) -> String {
    use crate::server::metrics::{family, labels};
    let mut out = String::new();
    family(
        &mut out,
        "reckon_kpi_summaries_last_written_timestamp_seconds",
        "gauge",
        "When the scheduled KPI summaries were last written (Unix time).",
        last_written(store).map(|t| (String::new(), t.timestamp())),
    );
    if config.kpi.is_none() {
        return out;
    }
    let runs = kpi_runs();
    family(
        &mut out,
        "reckon_kpi_summaries_runs_total",
        "counter",
        "Runs of the scheduled KPI summaries by outcome since the daemon started (a failing fire counted once, however many syncs retried it).",
        [("ok", runs.ok_total), ("failed", runs.failed_total)]
            .map(|(outcome, n)| (labels(&[("outcome", outcome)]), n)),
    );
    family(
        &mut out,
        "reckon_kpi_summaries_consecutive_failures",
        "gauge",
        "Scheduled KPI summary runs failed since the last write (a fire counted once, however many syncs retried it).",
        [(String::new(), runs.consecutive_failures)],
    );
    out
}

/// The post-sync hook writing scheduled KPI summaries.
#[derive(Debug, Default)]
pub struct KpiSummaries;

impl PostSync for KpiSummaries {
    fn name(&self) -> &'static str {
        "kpi_summaries"
    }

    /// Records each run in [`kpi_runs`]. A failure is returned (logged
    /// as an ERROR) when its reason is new; its repeats are counted and
    /// logged at debug level, as the drafts' are (QA9 F3).
    fn after_sync(&self, event: &SyncEvent<'_>) -> Result<(), String> {
        let Some(kpi) = &event.config.kpi else {
            return Ok(());
        };
        let changed = (event.seq_after > event.seq_before).then_some(event.seq_after);
        let now = Utc::now();
        let zone = ReportingZone::from_tz(event.config.daemon.timezone.0);
        let fired_since = |t| {
            next_run(&kpi.summaries, zone, t)
                .ok()
                .flatten()
                .is_none_or(|fire| fire <= now)
        };
        let (error, logged) = match attempt(event.store, event.config, kpi, now, changed) {
            Ok(Attempt::NotDue) => return Ok(()),
            Ok(Attempt::Written(_)) => (None, true),
            // Warned already.
            Ok(Attempt::Deferred(why)) => (Some(why), true),
            Err(e) => (Some(described(&e, event.config)), false),
        };
        let new = with_runs(|r| r.record(now, error.as_deref(), fired_since));
        match error {
            Some(e) if !logged && new => Err(e),
            Some(e) if !logged => {
                tracing::debug!(error = %e, "KPI summaries still not written");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A failed write's message, with what is wrong with `output_dir` itself
/// when something is: its owner, mode and the fix, as `config check` and
/// `statements generate` say it (QA48 I-L5: the hook gave the bare OS
/// error, in the log and `reckon status`).
fn described(e: &KpiError, config: &Config) -> String {
    match (e, crate::config::dirs::output_dir_problem(config)) {
        (KpiError::Write { .. }, Some(problem)) => {
            format!("{e}; `[daemon] output_dir`: {}", problem.message)
        }
        _ => e.to_string(),
    }
}

/// What a run of the hook did.
#[derive(Debug)]
enum Attempt {
    /// Neither due nor to be written again.
    NotDue,
    /// Due, but a program is not reconciled: not written (warned), why.
    Deferred(String),
    /// Written: these files.
    Written(Vec<PathBuf>),
}

/// Writes the summaries if the schedule fired after the last write (or in
/// the last day, the first time). Returns the files written, if any.
pub fn run_if_due(
    store: &Store,
    config: &Config,
    kpi: &KpiConfig,
    now: DateTime<Utc>,
) -> Result<Option<Vec<PathBuf>>, KpiError> {
    run_after_sync(store, config, kpi, now, None)
}

/// [`run_if_due`]; and when not due but `changed` (the sync stored or
/// changed records, up to this change sequence number), the last write
/// was made before those records were stored, and it covered the same
/// periods as a write at `now` would (the same reporting-zone day), writes
/// the files again, so records of yesterday that arrive after the fire time
/// are in yesterday's daily file. The schedule's last run time is not moved
/// by such a rewrite. Syncs that end together rewrite once: the first
/// rewrite holds the others' records (QA29-A L4: three within 40 ms each
/// wrote the files).
pub fn run_after_sync(
    store: &Store,
    config: &Config,
    kpi: &KpiConfig,
    now: DateTime<Utc>,
    changed: Option<u64>,
) -> Result<Option<Vec<PathBuf>>, KpiError> {
    Ok(match attempt(store, config, kpi, now, changed)? {
        Attempt::Written(files) => Some(files),
        Attempt::NotDue | Attempt::Deferred(_) => None,
    })
}

/// [`run_after_sync`], saying why nothing was written.
fn attempt(
    store: &Store,
    config: &Config,
    kpi: &KpiConfig,
    now: DateTime<Utc>,
    changed: Option<u64>,
) -> Result<Attempt, KpiError> {
    let zone = ReportingZone::from_tz(config.daemon.timezone.0);
    let tree = store.domain("kpi")?;
    let last: Option<DateTime<Utc>> = tree.get(LAST_RUN_KEY)?;
    let written_seq: Option<u64> = tree.get(WRITTEN_SEQ_KEY)?;
    let after = last.unwrap_or(now - Duration::days(1));
    let due = matches!(next_run(&kpi.summaries, zone, after)?, Some(due) if due <= now);
    let rewrite = !due
        && changed.is_some_and(|seq| written_seq.is_none_or(|w| seq > w))
        && kpi.summaries.enabled
        && last.is_some_and(|l| summary_periods(zone, l) == summary_periods(zone, now));
    if !due && !rewrite {
        return Ok(Attempt::NotDue);
    }
    kpi.validate()?;
    let fx =
        crate::reconcile::fx_table(config).map_err(|e| KpiError::Config(format!("[fx]: {e}")))?;
    // The reconcile hook runs first and reconciles every program that
    // needs it; one still in need (its run failed) would show its claims
    // as unreconciled: leave the files as they are and try at the next
    // sync (upgrade QA F1).
    for p in &config.programs {
        if crate::reconcile::needs_run(store, p, &fx)? {
            let why = "KPI summaries not written: program has not been reconciled with the present config, judging rules or store layout (its reconcile run failed: see the log); they are written after a sync once `reckon reconcile` succeeds";
            tracing::warn!(program = %p.id, "{why}");
            return Ok(Attempt::Deferred(format!("program `{}`: {why}", p.id)));
        }
    }
    // What the files will hold: records stored up to here at least.
    let seq = serde_json::Value::from(store.last_seq()?);
    let rules = super::commission::from_rules(&config.programs);
    let ctx = KpiContext {
        zone,
        config: kpi,
        fx: &fx,
        commission: Some(&rules),
        programs: &config.programs,
    };
    let dir = config.daemon.output_dir.join("kpi");
    let write = |summaries: &[_]| {
        write_scheduled_summaries(
            ctx,
            &kpi.summaries,
            store,
            &config.programs,
            &config.daemon.output_dir,
            now,
            summaries,
        )
    };
    // The days and months that ended since the last write (QA44c C-H1:
    // after the daemon was down over a month end, the month's file stayed
    // partial for good and the days between had no file).
    let mut files = Vec::new();
    if due {
        let through: Option<NaiveDate> = tree.get(CAUGHT_UP_KEY)?;
        let done = last.map(|l| summary_periods(zone, l).0.from).max(through);
        let plan = catch_up(zone, done, now);
        warn_left_out(&plan, kpi, &dir);
        for (i, (day, summaries)) in plan.steps.iter().enumerate() {
            let step = write(summaries).and_then(|(written, mut entries)| {
                entries.push((CAUGHT_UP_KEY.to_owned(), Some(json(day)?)));
                tree.apply(entries)?;
                Ok(written)
            });
            match step {
                Ok(written) => files.extend(written),
                Err(e) => {
                    // What was caught up before the failure is said too
                    // (QA45 R-L1: the line came only with the last step).
                    let done = CatchUp {
                        steps: plan.steps[..i].to_vec(),
                        ..CatchUp::default()
                    };
                    log_caught_up(&done, last, &dir);
                    return Err(e);
                }
            }
        }
        log_caught_up(&plan, last, &dir);
    }
    let (written, mut entries) = write(&current_files(zone, now))?;
    files.extend(written);
    // One line a write (soak QA18 F7: a rewrite was logged twice).
    let stamp = json(&now)?;
    if rewrite {
        tracing::info!(
            files = files.len(),
            dir = %dir.display(),
            "KPI summaries written again: records were stored after they were written"
        );
        entries.extend([
            (LAST_WRITE_KEY.to_owned(), Some(stamp)),
            (WRITTEN_SEQ_KEY.to_owned(), Some(seq)),
        ]);
        tree.apply(entries)?;
        return Ok(Attempt::Written(files));
    }
    tracing::info!(files = files.len(), dir = %dir.display(), "KPI summaries written");
    entries.extend([
        (LAST_RUN_KEY.to_owned(), Some(stamp.clone())),
        (LAST_WRITE_KEY.to_owned(), Some(stamp)),
        (WRITTEN_SEQ_KEY.to_owned(), Some(seq)),
        (CAUGHT_UP_KEY.to_owned(), None),
    ]);
    tree.apply(entries)?;
    Ok(Attempt::Written(files))
}

/// A value for the `kpi` tree.
fn json(value: &impl serde::Serialize) -> Result<serde_json::Value, KpiError> {
    serde_json::to_value(value).map_err(|e| KpiError::Render {
        what: "KPI summary state".into(),
        message: e.to_string(),
    })
}

/// `first` alone, or `first..last`.
fn span(first: impl std::fmt::Display, last: impl std::fmt::Display) -> String {
    let (first, last) = (first.to_string(), last.to_string());
    match first == last {
        true => first,
        false => format!("{first}..{last}"),
    }
}

/// The INFO line naming the files a write caught up, if any.
fn log_caught_up(plan: &CatchUp, last: Option<DateTime<Utc>>, dir: &std::path::Path) {
    let (days, months) = (
        plan.written(SummaryKind::Daily),
        plan.written(SummaryKind::Monthly),
    );
    if days.is_none() && months.is_none() {
        return;
    }
    let none = || "none".to_owned();
    let days = days.map_or_else(none, |(a, b)| span(a.from, b.from));
    let months = months.map_or_else(none, |(a, b)| span(a, b));
    let since = last.map(|l| l.to_rfc3339()).unwrap_or_default();
    tracing::info!(
        daily = %days,
        monthly = %months,
        last_run = %since,
        dir = %dir.display(),
        "KPI summaries caught up: the days and whole months that ended since the last scheduled write"
    );
}

/// The WARN naming the files too far back for a catch-up, and the command
/// that writes them.
fn warn_left_out(plan: &CatchUp, kpi: &KpiConfig, dir: &std::path::Path) {
    let mut left = Vec::new();
    let mut example = None;
    if let Some((first, last)) = plan.days_left {
        left.push(format!("the daily files of {}", span(first, last)));
        example = Some((Period::day(first), "daily", first.to_string()));
    }
    if let Some((first, last)) = plan.months_left {
        left.push(format!("the month files of {}", span(first, last)));
        example = Some((first, "monthly", first.to_string()));
    }
    let Some((period, kind, stem)) = example else {
        return;
    };
    let by: Vec<&str> = kpi.summaries.by.iter().map(|d| d.as_str()).collect();
    let by = match by.is_empty() {
        true => "''".to_owned(),
        false => by.join(","),
    };
    let format = kpi
        .summaries
        .formats
        .first()
        .copied()
        .unwrap_or(Format::Csv);
    let format_name = clap::ValueEnum::to_possible_value(&format)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_else(|| format.extension().to_owned());
    let path = dir
        .join(kind)
        .join(format!("{stem}.{}", format.extension()));
    tracing::warn!(
        "KPI summaries not caught up: {} ended more than {CATCH_UP_DAYS} days (daily files) or {CATCH_UP_MONTHS} months (month files) before yesterday and are not written; write each with `reckon kpi`, e.g. `reckon kpi --period {period} --by {by} --view {} --format {format_name} --out {}` (one command per period and format)",
        left.join(" and "),
        kpi.summaries.view.as_str(),
        path.display(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ops QA32a F3/L3: a failing write is counted once per fire of the
    /// schedule, however many syncs retry it; a new reason is reported
    /// (logged) once; a write clears the failure.
    #[test]
    fn a_failing_fire_counts_once_however_many_syncs_retry_it() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut runs = KpiRuns::default();
        let never = |_| -> bool { panic!("the first failure is counted") };
        assert!(runs.record(at("2026-12-01T06:01:00Z"), Some("full disk"), never));
        // Retries of the 06:00 fire: no fire since the failure counted.
        let fired_since = |t: DateTime<Utc>, now: &str| {
            t < at("2026-12-02T06:00:00Z") && at(now) >= at("2026-12-02T06:00:00Z")
        };
        assert!(
            !runs.record(at("2026-12-01T06:02:00Z"), Some("full disk"), |t| {
                fired_since(t, "2026-12-01T06:02:00Z")
            })
        );
        assert!(
            runs.record(at("2026-12-01T07:00:00Z"), Some("not a directory"), |t| {
                fired_since(t, "2026-12-01T07:00:00Z")
            })
        );
        assert_eq!((runs.consecutive_failures, runs.failed_total), (1, 1));
        assert_eq!(runs.last_error.as_deref(), Some("not a directory"));
        assert_eq!(runs.last_error_at, Some(at("2026-12-01T07:00:00Z")));
        // The next day's fire fails too.
        runs.record(at("2026-12-02T06:01:00Z"), Some("not a directory"), |t| {
            fired_since(t, "2026-12-02T06:01:00Z")
        });
        assert_eq!((runs.consecutive_failures, runs.failed_total), (2, 2));
        runs.record(at("2026-12-02T06:02:00Z"), None, |_| true);
        assert_eq!(
            (runs.consecutive_failures, runs.failed_total, runs.ok_total),
            (0, 2, 1)
        );
        assert_eq!(
            (runs.last_error.as_deref(), runs.last_error_at),
            (None, None)
        );
        assert_eq!(runs.last_ok_at, Some(at("2026-12-02T06:02:00Z")));
        // After a success the first failure counts again.
        runs.record(at("2026-12-02T06:03:00Z"), Some("full disk"), |_| false);
        assert_eq!(runs.consecutive_failures, 1);
    }

    /// Ops QA32a F3: the failures are metrics, with a 0 sample before any
    /// run when `[kpi]` is configured, and none without it.
    #[test]
    fn the_runs_are_metrics_with_kpi_configured() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let none = crate::config::parse("", "reckon.toml").unwrap();
        assert!(
            !render_metrics(&store, &none).contains("reckon_kpi_summaries_consecutive_failures")
        );
        let kpi = crate::config::parse("[kpi]\ncurrency = \"USD\"\n", "reckon.toml").unwrap();
        let text = render_metrics(&store, &kpi);
        assert!(
            text.contains("\nreckon_kpi_summaries_consecutive_failures ")
                && text.contains("\nreckon_kpi_summaries_runs_total{outcome=\"failed\"} ")
                && text.contains("\nreckon_kpi_summaries_runs_total{outcome=\"ok\"} "),
            "{text}"
        );
    }

    /// A config writing CSV and JSON summaries at 06:00 UTC into `dir`.
    fn summaries_config(dir: &std::path::Path) -> Config {
        let text = format!(
            r#"
[daemon]
data_dir = "{d}/data"
output_dir = "{d}/out"

[kpi]
currency = "EUR"

[kpi.summaries]
formats = ["csv", "json"]
"#,
            d = dir.display()
        );
        crate::config::parse(&text, &dir.join("reckon.toml").display().to_string()).unwrap()
    }

    /// QA48 I-L5: a write that fails because of `output_dir` itself says
    /// what is wrong with it and the fix, not only the OS error.
    #[test]
    fn a_failed_write_names_what_is_wrong_with_output_dir() {
        let dir = tempfile::tempdir().unwrap();
        let config = summaries_config(dir.path());
        let kpi = config.kpi.clone().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("out"), "not a directory").unwrap();
        let e = run_if_due(
            &store,
            &config,
            &kpi,
            "2026-12-31T12:00:00Z".parse().unwrap(),
        )
        .unwrap_err();
        let shown = described(&e, &config);
        assert!(shown.starts_with("writing "), "{shown}");
        assert!(
            shown.contains("; `[daemon] output_dir`: ")
                && shown.contains("is not a directory")
                && shown.contains("point `output_dir` at a directory this user can write"),
            "{shown}"
        );
        // Another failure is said as it is.
        std::fs::remove_file(dir.path().join("out")).unwrap();
        let other = KpiError::MixedCurrencies("EUR, USD".into());
        assert_eq!(described(&other, &config), other.to_string());
    }

    fn read_json(path: std::path::PathBuf) -> serde_json::Value {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    /// QA44c C-H1: down from 31 December 12:00 to 2 January 12:00 (over
    /// New Year), the daemon's first write after it catches up: 31
    /// December gets its daily file and December's file becomes the whole
    /// month (its CSV says so); an INFO line names them. It used to stay
    /// `2026-12-01..2026-12-30` for good, and 31 December had no file.
    #[test]
    fn a_write_after_missed_fires_catches_up_the_days_and_months_that_ended() {
        let dir = tempfile::tempdir().unwrap();
        let config = summaries_config(dir.path());
        let kpi = config.kpi.clone().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let out = dir.path().join("out/kpi");
        run_if_due(&store, &config, &kpi, at("2026-12-31T12:00:00Z"))
            .unwrap()
            .expect("due");
        assert_eq!(
            read_json(out.join("monthly/2026-12.json"))["period"],
            "2026-12-01..2026-12-30"
        );
        let now = at("2027-01-02T12:00:00Z");
        let mut files = None;
        let lines = crate::test_support::json_lines_at(tracing::Level::INFO, || {
            files = run_if_due(&store, &config, &kpi, now).unwrap();
        });
        // 31 December, December, then 1 January and January to date.
        assert_eq!(files.expect("due").len(), 8);
        assert_eq!(
            read_json(out.join("daily/2026-12-31.json"))["period"],
            "2026-12-31..2026-12-31"
        );
        let december = read_json(out.join("monthly/2026-12.json"));
        assert_eq!(december["period"], "2026-12");
        assert_eq!(
            (
                december["revision"].as_u64(),
                december["generated_at"].as_str()
            ),
            (Some(2), Some("2027-01-02T12:00:00Z"))
        );
        let csv = std::fs::read_to_string(out.join("monthly/2026-12.csv")).unwrap();
        let mut rows = csv.lines();
        assert!(rows.next().unwrap().ends_with(",fx_rates,period"), "{csv}");
        assert!(rows.all(|r| r.ends_with(",2026-12")), "{csv}");
        assert_eq!(
            read_json(out.join("monthly/2027-01.json"))["period"],
            "2027-01-01..2027-01-01"
        );
        assert!(out.join("daily/2027-01-01.csv").exists());
        let caught: Vec<_> = lines
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("KPI summaries caught up"))
            })
            .collect();
        assert_eq!(caught.len(), 1, "{lines:?}");
        let f = &caught[0]["fields"];
        assert_eq!(
            (&f["daily"], &f["monthly"], &f["last_run"]),
            (
                &serde_json::json!("2026-12-31"),
                &serde_json::json!("2026-12"),
                &serde_json::json!("2026-12-31T12:00:00+00:00")
            )
        );
        // Done: the schedule counts from this write, and no catch-up is
        // under way.
        let tree = store.domain("kpi").unwrap();
        assert_eq!(tree.get::<DateTime<Utc>>(LAST_RUN_KEY).unwrap(), Some(now));
        assert_eq!(tree.get::<NaiveDate>(CAUGHT_UP_KEY).unwrap(), None);
        // The next morning: no gap, the usual two summaries.
        let next = run_if_due(&store, &config, &kpi, at("2027-01-03T06:30:00Z")).unwrap();
        assert_eq!(next.expect("due").len(), 4);
    }

    /// QA45 R-L1: a catch-up that failed part way said nothing of the
    /// files it had written, and the resumed one printed `monthly=` empty.
    #[test]
    fn a_catch_up_cut_short_names_what_it_wrote_and_the_rest_when_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let config = summaries_config(dir.path());
        let kpi = config.kpi.clone().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        run_if_due(&store, &config, &kpi, at("2026-12-29T12:00:00Z"))
            .unwrap()
            .expect("due");
        let blocked = dir.path().join("out/kpi/daily/2027-01-01.csv");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        let caught = |lines: &[serde_json::Value]| -> Vec<(String, String)> {
            lines
                .iter()
                .filter(|l| {
                    l["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("KPI summaries caught up"))
                })
                .map(|l| {
                    let f = &l["fields"];
                    (f["daily"].to_string(), f["monthly"].to_string())
                })
                .collect()
        };
        let now = at("2027-01-03T12:00:00Z");
        let lines = crate::test_support::json_lines_at(tracing::Level::INFO, || {
            assert!(run_if_due(&store, &config, &kpi, now).is_err());
        });
        assert_eq!(
            caught(&lines),
            [(
                "\"2026-12-29..2026-12-31\"".to_owned(),
                "\"2026-12\"".to_owned()
            )]
        );
        std::fs::remove_dir_all(&blocked).unwrap();
        let lines = crate::test_support::json_lines_at(tracing::Level::INFO, || {
            run_if_due(&store, &config, &kpi, now).unwrap();
        });
        assert_eq!(
            caught(&lines),
            [("\"2027-01-01\"".to_owned(), "\"none\"".to_owned())]
        );
    }

    /// Off 400 days: 12 whole months and 31 days are caught up; a WARN
    /// names the files left out and the `reckon kpi` command writing one.
    #[test]
    fn a_catch_up_too_far_back_names_what_it_leaves_and_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let config = summaries_config(dir.path());
        let kpi = config.kpi.clone().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        run_if_due(&store, &config, &kpi, at("2026-12-31T12:00:00Z"))
            .unwrap()
            .expect("due");
        let mut files = None;
        let lines = crate::test_support::json_lines_at(tracing::Level::WARN, || {
            files = run_if_due(&store, &config, &kpi, at("2028-02-04T12:00:00Z")).unwrap();
        });
        // (31 + 1 daily, 12 + 1 monthly) × csv, json.
        assert_eq!(files.expect("due").len(), 90);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let warning = lines[0]["fields"]["message"].as_str().unwrap();
        let out = dir.path().join("out/kpi");
        for part in [
            "the daily files of 2026-12-31..2028-01-02 and the month files of 2026-12..2027-01",
            "more than 31 days (daily files) or 12 months (month files)",
            &format!(
                "`reckon kpi --period 2026-12 --by channel,source --view both --format csv --out {}`",
                out.join("monthly/2026-12.csv").display()
            ),
        ] {
            assert!(warning.contains(part), "{part}\n{warning}");
        }
        assert!(!out.join("monthly/2027-01.json").exists());
        assert_eq!(
            read_json(out.join("monthly/2027-02.json"))["period"],
            "2027-02"
        );
        assert!(!out.join("daily/2028-01-02.json").exists());
        assert!(out.join("daily/2028-01-03.json").exists());
    }

    /// Soak QA18 F5: when the summaries were last written is a gauge, with
    /// no sample before the first write.
    #[test]
    fn the_last_write_is_a_metric_once_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let name = "reckon_kpi_summaries_last_written_timestamp_seconds";
        let config = crate::config::parse("", "reckon.toml").unwrap();
        assert!(!render_metrics(&store, &config).contains(&format!("\n{name} ")));
        let at: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();
        let stamp = serde_json::to_value(at).unwrap();
        let tree = store.domain("kpi").unwrap();
        tree.apply(vec![(LAST_RUN_KEY.to_owned(), Some(stamp))])
            .unwrap();
        assert_eq!(last_written(&store), Some(at));
        assert!(render_metrics(&store, &config).contains(&format!("{name} {}\n", at.timestamp())));
    }
}
