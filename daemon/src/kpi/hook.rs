//! The daemon's KPI summary hook: after a successful sync, writes the daily
//! and monthly summaries when the `[kpi.summaries]` schedule has fired since
//! the last time they were written.
//!
//! The last write time is kept in the store's `kpi` domain tree, so a
//! restart neither repeats nor skips a due summary. Summaries are written
//! only when the config has a `[kpi]` section. Because the hook runs after
//! syncs, a due summary is written by the first sync that ends after its
//! fire time. A later sync that stores or changes records before the next
//! reporting-zone midnight writes the same two files again (same periods,
//! fresher data): a connector that syncs after the fire time still lands
//! in yesterday's daily file.
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};

use super::config::KpiConfig;
use super::engine::KpiContext;
use super::period::ReportingZone;
use super::summary::{next_run, summary_periods, write_scheduled_summaries};
use super::KpiError;
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

/// `reckon_kpi_summaries_last_written_timestamp_seconds` (Unix time), no
/// sample before the first write (soak QA18 F5).
pub fn render_metrics(store: &Store) -> String {
    let mut out = String::new();
    crate::server::metrics::family(
        &mut out,
        "reckon_kpi_summaries_last_written_timestamp_seconds",
        "gauge",
        "When the scheduled KPI summaries were last written (Unix time).",
        last_written(store).map(|t| (String::new(), t.timestamp())),
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

    fn after_sync(&self, event: &SyncEvent<'_>) -> Result<(), String> {
        let Some(kpi) = &event.config.kpi else {
            return Ok(());
        };
        let changed = (event.seq_after > event.seq_before).then_some(event.seq_after);
        run_after_sync(event.store, event.config, kpi, Utc::now(), changed)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
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
        return Ok(None);
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
            tracing::warn!(
                program = %p.id,
                "KPI summaries not written: program has not been reconciled with the present config, judging rules or store layout (its reconcile run failed: see the log); they are written after a sync once `reckon reconcile` succeeds"
            );
            return Ok(None);
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
    let files = write_scheduled_summaries(
        ctx,
        &kpi.summaries,
        store,
        &config.programs,
        &config.daemon.output_dir,
        now,
    )?;
    // One line a write (soak QA18 F7: a rewrite was logged twice).
    let dir = config.daemon.output_dir.join("kpi");
    let stamp = serde_json::to_value(now).map_err(|e| KpiError::Render {
        what: "summary timestamp".into(),
        message: e.to_string(),
    })?;
    if rewrite {
        tracing::info!(
            files = files.len(),
            dir = %dir.display(),
            "KPI summaries written again: records were stored after they were written"
        );
        tree.apply(vec![
            (LAST_WRITE_KEY.to_owned(), Some(stamp)),
            (WRITTEN_SEQ_KEY.to_owned(), Some(seq)),
        ])?;
        return Ok(Some(files));
    }
    tracing::info!(files = files.len(), dir = %dir.display(), "KPI summaries written");
    tree.apply(vec![
        (LAST_RUN_KEY.to_owned(), Some(stamp.clone())),
        (LAST_WRITE_KEY.to_owned(), Some(stamp)),
        (WRITTEN_SEQ_KEY.to_owned(), Some(seq)),
    ])?;
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Soak QA18 F5: when the summaries were last written is a gauge, with
    /// no sample before the first write.
    #[test]
    fn the_last_write_is_a_metric_once_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let name = "reckon_kpi_summaries_last_written_timestamp_seconds";
        assert!(!render_metrics(&store).contains(&format!("\n{name} ")));
        let at: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();
        let stamp = serde_json::to_value(at).unwrap();
        let tree = store.domain("kpi").unwrap();
        tree.apply(vec![(LAST_RUN_KEY.to_owned(), Some(stamp))])
            .unwrap();
        assert_eq!(last_written(&store), Some(at));
        assert!(render_metrics(&store).contains(&format!("{name} {}\n", at.timestamp())));
    }
}
