//! Reconciliation: every claim judged against the advertiser's orders, per
//! program, with a decision a person can check. Owned by issue 6.
//!
//! | module | what it is |
//! |---|---|
//! | [`config`] | `[[programs]]`: connectors, windows, attribution, match tolerances |
//! | [`model`] | the [`model::Decision`] contract that payout and kpi read |
//! | [`engine`] | the pure matching engine: claims × orders → decisions |
//! | [`join`] | the radix-partitioned hash join on normalised order ids (full runs, benchmark) |
//! | [`incremental`] | decisions and match indexes in the `recon` tree; full and incremental runs |
//! | [`backend`] | the storage trait the runs use (the store, or in memory for tests) |
//! | [`codec`] | the byte format of decisions, order entries and buckets in the `recon` tree |
//! | [`report`] | discrepancy reports (CSV, JSON, HTML) |
//! | [`cli`] | `reckon reconcile` and `reckon reconcile report` |
//! | [`synth`] | seeded synthetic claims/orders with known discrepancies (benchmarks, tests) |
//!
//! What it is not: it computes no commission (payout does, from the
//! decisions' bases) and never changes claims or orders.
pub mod backend;
pub mod cli;
pub mod codec;
pub mod config;
pub mod engine;
pub mod incremental;
pub mod join;
pub mod model;
pub mod packed;
pub mod report;
pub mod synth;

use crate::fx::FxTable;
use crate::store::{Store, StoreError};
use backend::{ReconBackend, StoreBackend};
use chrono::{DateTime, Utc};
use config::ProgramConfig;
pub use incremental::ProgramSummary;

/// Loads the config's `[fx]` table (a relative `rates_csv` is resolved
/// against the config file's directory); empty without `[fx]`.
pub fn fx_table(cfg: &crate::config::Config) -> Result<FxTable, crate::fx::FxError> {
    let base = std::path::Path::new(&cfg.source.file)
        .parent()
        .unwrap_or(std::path::Path::new(""))
        .to_path_buf();
    match &cfg.fx {
        Some(f) => FxTable::load(f, &base),
        None => Ok(FxTable::empty()),
    }
}

/// The post-sync hook: after a sync that changed records of a connector
/// feeding a program (as claims or orders), reconcile those programs.
#[derive(Debug, Default)]
pub struct ReconcileAfterSync;

impl crate::schedule::hooks::PostSync for ReconcileAfterSync {
    fn name(&self) -> &'static str {
        "reconcile"
    }
    fn after_sync(&self, event: &crate::schedule::hooks::SyncEvent<'_>) -> Result<(), String> {
        if event.seq_after == event.seq_before {
            return Ok(());
        }
        let programs: Vec<ProgramConfig> = event
            .config
            .programs
            .iter()
            .filter(|p| {
                p.claims.iter().any(|c| c == event.connector)
                    || p.orders.iter().any(|c| c == event.connector)
            })
            .cloned()
            .collect();
        if programs.is_empty() {
            return Ok(());
        }
        let fx = fx_table(event.config).map_err(|e| e.to_string())?;
        run(event.store, &programs, &fx, Utc::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Why a reconcile run failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed or holds an unreadable value.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A program's config is unusable.
    #[error(transparent)]
    Config(#[from] config::ProgramConfigError),
    /// `--program` named a program that is not configured.
    #[error("no program `{0}` in [[programs]]; configured: {1}")]
    UnknownProgram(String, String),
}

/// What a run did, per program (in config order).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    /// One entry per program run.
    pub programs: Vec<ProgramSummary>,
}

/// Runs every given program against the store: incremental when possible
/// (see [`incremental`]), then flushes. The scheduler calls this after each
/// sync that touched a program.
pub fn run(
    store: &Store,
    programs: &[ProgramConfig],
    fx: &FxTable,
    now: DateTime<Utc>,
) -> Result<RunSummary, ReconcileError> {
    run_with(&StoreBackend::new(store)?, programs, fx, now, false)
}

/// A program's last reconcile run in this process (`/status`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastRun {
    /// Program id.
    pub program: String,
    /// When the run ended.
    pub at: DateTime<Utc>,
    /// Every claim judged (else the affected closure only).
    pub full: bool,
    /// Claims judged.
    pub claims_judged: u64,
    /// Decisions new or changed.
    pub decisions_changed: u64,
    /// Judged claims payable now.
    pub payable: u64,
    /// Why the run failed (its decisions are those of the run before).
    pub error: Option<String>,
}

/// Last run per program, kept by [`run_with`] for the daemon's `/status`:
/// runs after syncs and postbacks, and those run for clients.
static LAST_RUNS: std::sync::Mutex<std::collections::BTreeMap<String, LastRun>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Each program's last run in this process, in id order.
pub fn last_runs() -> Vec<LastRun> {
    LAST_RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .values()
        .cloned()
        .collect()
}

fn remember(program: &str, outcome: Result<&ProgramSummary, &ReconcileError>) {
    let (s, error) = match outcome {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let run = LastRun {
        program: program.to_owned(),
        at: Utc::now(),
        full: s.is_some_and(|s| s.full),
        claims_judged: s.map_or(0, |s| s.claims_judged),
        decisions_changed: s.map_or(0, |s| s.decisions_changed),
        payable: s.map_or(0, |s| s.payable),
        error,
    };
    LAST_RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(program.to_owned(), run);
}

/// [`run`] over any backend; `force_full` judges every claim again.
pub fn run_with<B: ReconBackend>(
    backend: &B,
    programs: &[ProgramConfig],
    fx: &FxTable,
    now: DateTime<Utc>,
    force_full: bool,
) -> Result<RunSummary, ReconcileError> {
    config::validate_programs(programs)?;
    let mut summary = RunSummary::default();
    for p in programs {
        let s = incremental::run_program(backend, p, fx, now, force_full);
        remember(&p.id, s.as_ref());
        let s = s?;
        tracing::info!(
            program = %s.program,
            full = s.full,
            judged = s.claims_judged,
            changed = s.decisions_changed,
            payable = s.payable,
            last_seq = s.last_seq,
            "reconciled program"
        );
        summary.programs.push(s);
    }
    backend.flush()?;
    Ok(summary)
}

/// The latest decisions of a program, as stored by the last reconcile run,
/// in claim (source, external id) order.
/// CONTRACT: payout and kpi read decisions only through this.
pub fn load_decisions(store: &Store, program: &str) -> Result<Vec<model::Decision>, StoreError> {
    incremental::load_stored_decisions(&StoreBackend::new(store)?, program)
}

/// [`load_decisions`], keeping only the decisions `keep` accepts, each
/// decoded and dropped in turn: a report of one month holds that month.
pub fn load_decisions_where(
    store: &Store,
    program: &str,
    keep: impl FnMut(&model::Decision) -> bool,
) -> Result<Vec<model::Decision>, StoreError> {
    incremental::load_stored_decisions_where(&StoreBackend::new(store)?, program, keep)
}
