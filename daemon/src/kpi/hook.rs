//! The daemon's KPI summary hook: after a successful sync, writes the daily
//! and monthly summaries when the `[kpi.summaries]` schedule has fired since
//! the last time they were written.
//!
//! The last write time is kept in the store's `kpi` domain tree, so a
//! restart neither repeats nor skips a due summary. Summaries are written
//! only when the config has a `[kpi]` section. Because the hook runs after
//! syncs, a due summary is written by the first sync that ends after its
//! fire time.
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};

use super::config::KpiConfig;
use super::engine::KpiContext;
use super::period::ReportingZone;
use super::summary::{next_run, write_scheduled_summaries};
use super::KpiError;
use crate::config::Config;
use crate::schedule::hooks::{PostSync, SyncEvent};
use crate::store::Store;

/// Key of the last write time in the `kpi` domain tree.
const LAST_RUN_KEY: &str = "summaries/last_run";

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
        run_if_due(event.store, event.config, kpi, Utc::now())
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
    let zone = ReportingZone::from_tz(config.daemon.timezone.0);
    let tree = store.domain("kpi")?;
    let last: Option<DateTime<Utc>> = tree.get(LAST_RUN_KEY)?;
    let after = last.unwrap_or(now - Duration::days(1));
    match next_run(&kpi.summaries, zone, after)? {
        Some(due) if due <= now => {}
        _ => return Ok(None),
    }
    kpi.validate()?;
    let fx =
        crate::reconcile::fx_table(config).map_err(|e| KpiError::Config(format!("[fx]: {e}")))?;
    let rules = super::commission::from_rules(&config.programs);
    let ctx = KpiContext {
        zone,
        config: kpi,
        fx: &fx,
        commission: Some(&rules),
    };
    let files = write_scheduled_summaries(
        ctx,
        &kpi.summaries,
        store,
        &config.programs,
        &config.daemon.output_dir,
        now,
    )?;
    let stamp = serde_json::to_value(now).map_err(|e| KpiError::Render {
        what: "summary timestamp".into(),
        message: e.to_string(),
    })?;
    tree.apply(vec![(LAST_RUN_KEY.to_owned(), Some(stamp))])?;
    Ok(Some(files))
}
