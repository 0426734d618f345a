//! The daemon's scheduled drafts: after a sync, each program whose
//! `draft_schedule` fired since the last draft run gets the drafts of its
//! open periods regenerated ([`super::generate_open_drafts`]). Finalising is
//! never automatic.

use super::book::{self, StatementBook, StoreBook};
use super::lifecycle::{self, Decisions, Inputs, StoredDecisions};
use crate::schedule::hooks::{PostSync, SyncEvent};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;

/// A program's scheduled drafts in this process, for `/status` and
/// `/metrics` (QA9 F2: a program whose drafts were refused showed only in
/// the log).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DraftRuns {
    /// Program id.
    pub program: String,
    /// When its drafts were last made.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// When they last failed, and why (cleared by the next success).
    pub last_error_at: Option<DateTime<Utc>>,
    /// Why they last failed.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// Runs that made drafts since the start.
    pub ok_total: u64,
    /// Runs that failed since the start.
    pub failed_total: u64,
}

static DRAFTS: std::sync::Mutex<BTreeMap<String, DraftRuns>> =
    std::sync::Mutex::new(BTreeMap::new());

fn with_drafts<T>(f: impl FnOnce(&mut BTreeMap<String, DraftRuns>) -> T) -> T {
    f(&mut DRAFTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// Records one run of a program's drafts; true when `error` is new (not
/// the same as the run before's).
fn record(program: &str, at: DateTime<Utc>, error: Option<&str>) -> bool {
    with_drafts(|d| {
        let r = d.entry(program.to_owned()).or_insert_with(|| DraftRuns {
            program: program.to_owned(),
            last_ok_at: None,
            last_error_at: None,
            last_error: None,
            consecutive_failures: 0,
            ok_total: 0,
            failed_total: 0,
        });
        match error {
            None => {
                r.last_ok_at = Some(at);
                r.last_error = None;
                r.last_error_at = None;
                r.consecutive_failures = 0;
                r.ok_total += 1;
            }
            Some(e) => {
                let new = r.last_error.as_deref() != Some(e);
                r.last_error = Some(e.to_owned());
                r.last_error_at = Some(at);
                r.consecutive_failures += 1;
                r.failed_total += 1;
                return new;
            }
        }
        false
    })
}

/// Each program's scheduled drafts in this process, in id order.
pub fn draft_runs() -> Vec<DraftRuns> {
    with_drafts(|d| d.values().cloned().collect())
}

/// Prometheus text: `reckon_statement_drafts_runs_total{program,outcome}`
/// and `reckon_statement_drafts_consecutive_failures{program}`.
pub fn render_metrics() -> String {
    use std::fmt::Write as _;
    let runs = draft_runs();
    let mut out = String::from(
        "# HELP reckon_statement_drafts_runs_total Scheduled statement draft runs by program and outcome.\n\
         # TYPE reckon_statement_drafts_runs_total counter\n",
    );
    for r in &runs {
        for (outcome, n) in [("ok", r.ok_total), ("failed", r.failed_total)] {
            let _ = writeln!(
                out,
                "reckon_statement_drafts_runs_total{{program=\"{}\",outcome=\"{outcome}\"}} {n}",
                r.program
            );
        }
    }
    out.push_str(
        "# HELP reckon_statement_drafts_consecutive_failures Scheduled draft runs failed since the program's last success.\n\
         # TYPE reckon_statement_drafts_consecutive_failures gauge\n",
    );
    for r in &runs {
        let _ = writeln!(
            out,
            "reckon_statement_drafts_consecutive_failures{{program=\"{}\"}} {}",
            r.program, r.consecutive_failures
        );
    }
    out
}

/// The post-sync hook regenerating drafts on `draft_schedule`.
#[derive(Debug, Default)]
pub struct StatementDrafts;

impl PostSync for StatementDrafts {
    fn name(&self) -> &'static str {
        "statement-drafts"
    }
    fn after_sync(&self, event: &SyncEvent<'_>) -> Result<(), String> {
        run_due(event.store, event.config, Utc::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Regenerates the drafts of every program whose `draft_schedule` fired
/// after its last draft run (or within the last day, the first time).
/// Returns the programs done. A program that fails (a refused config
/// change, say) does not stop the others: their drafts are made, and the
/// error names every program that failed with a new reason; a program
/// failing again for the same reason is counted in [`draft_runs`] and
/// logged at debug level, not returned again.
pub fn run_due(
    store: &crate::store::Store,
    config: &crate::config::Config,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let book = StoreBook::open(store)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for program in &config.programs {
        match run_program(store, config, &book, program, now) {
            Ok(true) => {
                let _ = record(&program.id, now, None);
                done.push(program.id.clone());
            }
            Ok(false) => {}
            Err(e) => {
                let e = format!("{e:#}");
                let named = e.starts_with(&format!("program `{}`", program.id));
                let e = if named {
                    e
                } else {
                    format!("program `{}`: {e}", program.id)
                };
                // The same refusal after every sync filled the log (QA9
                // F3): it is an error once; its repeats are counted in
                // /status and /metrics, and logged at debug level.
                if record(&program.id, now, Some(&e)) {
                    failed.push(e);
                } else {
                    tracing::debug!(program = %program.id, error = %e, "statement drafts still refused");
                }
            }
        }
    }
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(anyhow::anyhow!("{}", failed.join("; ")))
    }
}

/// One program's drafts when its `draft_schedule` is due; `false` when it
/// has none or it is not due.
fn run_program(
    store: &crate::store::Store,
    config: &crate::config::Config,
    book: &StoreBook,
    program: &crate::reconcile::config::ProgramConfig,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let Some(commission) = &program.commission else {
        return Ok(false);
    };
    let Some(expr) = &commission.draft_schedule else {
        return Ok(false);
    };
    let commission = commission
        .clone()
        .with_default_timezone(config.daemon.timezone.0);
    let tz = commission.tz();
    let key = book::key(&["drafts_last_run", &program.id]);
    let last: Option<DateTime<Utc>> = match book.get(&key)? {
        Some(v) => Some(book::decode(&key, v)?),
        None => None,
    };
    let schedule = crate::config::CronSchedule::from_str(expr)
        .map_err(|e| anyhow::anyhow!("draft_schedule: {e}"))?;
    match schedule.next_after(tz, last.unwrap_or(now - Duration::days(1))) {
        Some(due) if due <= now => {}
        _ => return Ok(false),
    }
    lifecycle::check_settled(book, &program.id, &program.claims, &commission)?;
    // Decisions as of now: a lock may have passed since the last sync.
    let fx = crate::reconcile::fx_table(config)?;
    crate::reconcile::run(store, std::slice::from_ref(program), &fx, now)?;
    let decisions = StoredDecisions {
        store,
        program: &program.id,
    };
    let inputs = Inputs {
        program: &program.id,
        config: &commission,
        decisions: Decisions::Source(&decisions),
        fx: &fx,
        book,
        output_dir: &config.daemon.output_dir,
        step: &|_| {},
    };
    let today = now.with_timezone(&tz).date_naive();
    for r in lifecycle::generate_open_drafts(&inputs, today)? {
        tracing::info!(
            program = %program.id,
            period = %r.period,
            version = r.version,
            statements = r.partners,
            "statement drafts generated"
        );
    }
    book.apply(vec![(key, Some(book::encode(&now)))])?;
    book.flush()?;
    Ok(true)
}
