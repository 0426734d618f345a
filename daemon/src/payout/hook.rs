//! The daemon's scheduled drafts: after a sync, each program whose
//! `draft_schedule` fired since the last draft run gets the drafts of its
//! open periods regenerated ([`super::generate_open_drafts`]). Finalising is
//! never automatic, but a finalise cut short after the store recorded it
//! gets its files completed, at the daemon's start and after each sync
//! ([`complete_cut_short_at_start`], [`run_due`]; QA42b B-M1).

use super::book::{self, StatementBook, StoreBook};
use super::lifecycle::{self, Completion, Decisions, Inputs, PayoutError, StoredDecisions};
use crate::schedule::hooks::{PostSync, SyncEvent};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Key (with the program id) of the last scheduled draft run of a program
/// in the `statements` tree; `/status` reads it too.
pub const DRAFTS_LAST_RUN: &str = "drafts_last_run";

/// A program's scheduled drafts in this process, for `/status` and
/// `/metrics` (QA9 F2: a program whose drafts were refused showed only in
/// the log).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DraftRuns {
    /// Program id.
    pub program: String,
    /// Its runs: when its drafts were last made, why they last failed.
    #[serde(flatten)]
    pub runs: crate::schedule::hooks::HookRuns,
}

static DRAFTS: std::sync::Mutex<BTreeMap<String, DraftRuns>> =
    std::sync::Mutex::new(BTreeMap::new());

fn with_drafts<T>(f: impl FnOnce(&mut BTreeMap<String, DraftRuns>) -> T) -> T {
    f(&mut DRAFTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// Records one run of a program's drafts; true when `error` is new (not
/// the same as the run before's); counted as [`HookRuns::record`]
/// counts.
///
/// [`HookRuns::record`]: crate::schedule::hooks::HookRuns::record
fn record(
    program: &str,
    at: DateTime<Utc>,
    error: Option<&str>,
    fired_since: impl FnOnce(DateTime<Utc>) -> bool,
) -> bool {
    with_drafts(|d| {
        let r = d.entry(program.to_owned()).or_insert_with(|| DraftRuns {
            program: program.to_owned(),
            runs: crate::schedule::hooks::HookRuns::NONE,
        });
        r.runs.record(at, error, fired_since)
    })
}

/// Whether `program`'s `draft_schedule` fired after `since`, up to `now`
/// (true when it cannot be read: the failure is counted).
fn fired_since(
    config: &crate::config::Config,
    program: &crate::reconcile::config::ProgramConfig,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let Some(commission) = &program.commission else {
        return true;
    };
    let Some(Ok(schedule)) = commission
        .draft_schedule
        .as_deref()
        .map(crate::config::CronSchedule::from_str)
    else {
        return true;
    };
    let tz = commission
        .clone()
        .with_default_timezone(config.daemon.timezone.0)
        .tz();
    schedule
        .next_after(tz, since)
        .is_none_or(|fire| fire <= now)
}

/// Forgets the draft runs (and the runs cut short, [`cut_short`]) of
/// programs a reload removed.
pub fn forget_programs(removed: &[&String]) {
    with_drafts(|d| {
        for id in removed {
            d.remove(id.as_str());
        }
    });
    with_cut_short(|c| c.retain(|(program, _), _| !removed.contains(&program)));
}

/// A statements run of a period, cut short (a kill, a crash), that the
/// daemon could not complete ([`complete_cut_short`]), for `/status`
/// (QA42b B-M1: such a period showed nowhere but the log).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CutShort {
    /// Program id.
    pub program: String,
    /// Period name.
    pub period: String,
    /// Why it could not be completed, and what to run.
    pub error: String,
}

/// The runs cut short that could not be completed, by (program, period):
/// why. Tried again after each sync ([`run_due`]).
static CUT_SHORT: std::sync::Mutex<BTreeMap<(String, String), String>> =
    std::sync::Mutex::new(BTreeMap::new());

fn with_cut_short<T>(f: impl FnOnce(&mut BTreeMap<(String, String), String>) -> T) -> T {
    f(&mut CUT_SHORT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// The statements runs cut short that this process could not complete, by
/// program and period.
pub fn cut_short() -> Vec<CutShort> {
    with_cut_short(|c| {
        c.iter()
            .map(|((program, period), error)| CutShort {
                program: program.clone(),
                period: period.clone(),
                error: error.clone(),
            })
            .collect()
    })
}

/// At the daemon's start: completes the statements runs that were cut
/// short ([`complete_cut_short`]) for every program with statements,
/// before any sync or client command runs. Failures are logged and listed
/// in `/status` ([`cut_short`]), never stop the start.
pub fn complete_cut_short_at_start(store: &crate::store::Store, config: &crate::config::Config) {
    let _turn = crate::schedule::hooks::exclusive();
    // Opening the book completes a write its redo log holds.
    let book = match StoreBook::open(store) {
        Ok(b) => b,
        Err(error) => {
            tracing::warn!(%error, "statements: runs cut short not looked for; the first scheduled draft run tries again");
            return;
        }
    };
    for program in config.programs.iter().filter(|p| p.commission.is_some()) {
        complete_cut_short(&book, &config.daemon.output_dir, &program.id);
    }
}

/// Completes the file side of `program`'s statements runs that were cut
/// short ([`lifecycle::complete_interrupted`] of the periods with a staging
/// directory beside them, and of those that failed before): a finalise
/// the store records gets its files written back from the store; a run
/// that recorded nothing has its staging directory removed. Each is
/// logged with program and period; one that fails is logged once (its
/// repeats at debug level) and listed in [`cut_short`] until it is done.
/// Call with the turn to write ([`crate::schedule::hooks::exclusive`]).
fn complete_cut_short(book: &StoreBook, output_dir: &std::path::Path, program: &str) {
    let mut periods = match lifecycle::cut_short_periods(output_dir, program) {
        Ok(p) => p,
        Err(error) => {
            tracing::warn!(program, %error, "statements: could not look for runs cut short");
            return;
        }
    };
    match lifecycle::behind_record_periods(book, output_dir, program) {
        Ok(behind) => periods.extend(behind),
        Err(error) => {
            tracing::warn!(program, %error, "statements: could not look for finalised periods whose files are drafts");
        }
    }
    periods.extend(with_cut_short(|c| {
        c.keys()
            .filter(|(p, _)| p == program)
            .map(|(_, period)| period.clone())
            .collect::<Vec<_>>()
    }));
    periods.sort();
    periods.dedup();
    for (period, done) in lifecycle::complete_interrupted(book, output_dir, program, &periods) {
        let key = (program.to_owned(), period.clone());
        match done {
            Ok(Completion::Finalised(report)) => {
                if report.restored.is_empty() {
                    tracing::info!(program, period = %period, "statements: removed what a finalize cut short left beside its files (they were in place)");
                } else {
                    tracing::warn!(
                        program,
                        period = %period,
                        version = report.version,
                        files = report.restored.len(),
                        "statements: a finalize cut short before its files were swapped in is completed: the finalised files were written back from the store"
                    );
                }
                for w in &report.warnings {
                    tracing::warn!(program, period = %period, "{w}");
                }
                with_cut_short(|c| c.remove(&key));
            }
            Ok(Completion::Draft(version)) => {
                tracing::info!(program, period = %period, version, "statements: completed or removed what a run cut short left beside the files of a draft period (the store records the draft)");
                with_cut_short(|c| c.remove(&key));
            }
            Ok(Completion::Unrecorded) => {
                tracing::info!(program, period = %period, "statements: removed the staging directory of a run cut short before it recorded anything");
                with_cut_short(|c| c.remove(&key));
            }
            Err(e) => {
                let error = e.to_string();
                let new = with_cut_short(|c| c.insert(key, error.clone())) != Some(error.clone());
                if new {
                    tracing::warn!(program, period = %period, %error, "statements: a run cut short could not be completed");
                } else {
                    tracing::debug!(program, period = %period, %error, "statements: a run cut short still could not be completed");
                }
            }
        }
    }
}

/// Each program's scheduled drafts in this process, in id order.
pub fn draft_runs() -> Vec<DraftRuns> {
    with_drafts(|d| d.values().cloned().collect())
}

/// Prometheus text: `reckon_statement_drafts_runs_total{program,outcome}`
/// and `reckon_statement_drafts_consecutive_failures{program}`.
pub fn render_metrics() -> String {
    use crate::server::metrics::{family, labels};
    let runs = draft_runs();
    let mut out = String::new();
    family(
        &mut out,
        "reckon_statement_drafts_runs_total",
        "counter",
        "Scheduled statement draft runs by program and outcome (a failing fire of the draft_schedule counted once, however many syncs retried it).",
        runs.iter().flat_map(|r| {
            [("ok", r.runs.ok_total), ("failed", r.runs.failed_total)]
                .map(|(outcome, n)| (labels(&[("program", &r.program), ("outcome", outcome)]), n))
        }),
    );
    family(
        &mut out,
        "reckon_statement_drafts_consecutive_failures",
        "gauge",
        "Scheduled draft runs failed since the program's last success (a fire of the draft_schedule counted once, however many syncs retried it).",
        runs.iter()
            .map(|r| (labels(&[("program", &r.program)]), r.runs.consecutive_failures)),
    );
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

/// Scheduled drafts that failed, with a reason not returned before.
#[derive(Debug, thiserror::Error)]
pub enum DraftsError {
    /// The statements in the store could not be opened: no program ran.
    #[error(transparent)]
    Book(#[from] book::BookError),
    /// These programs' drafts failed (the others' were made); one message
    /// each, joined by `; `.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Programs(Vec<ProgramDraftError>),
}

/// Why one program's scheduled drafts failed, with the program as data:
/// its message begins with ``program `id`: `` exactly once, whether or not
/// the cause's own message names it ([`PayoutError::program`]).
#[derive(Debug)]
pub struct ProgramDraftError {
    /// Program id.
    pub program: String,
    /// What failed.
    pub cause: DraftCause,
}

impl std::fmt::Display for ProgramDraftError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named = matches!(&self.cause, DraftCause::Payout(e) if e.program() == Some(self.program.as_str()));
        if !named {
            write!(f, "program `{}`: ", self.program)?;
        }
        // The cause and its sources, as `{:#}` of an `anyhow::Error`.
        let mut next: Option<&dyn std::error::Error> = Some(&self.cause);
        let mut first = true;
        while let Some(e) = next {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
            first = false;
            next = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for ProgramDraftError {}

/// What failed in a program's scheduled drafts.
#[derive(Debug, thiserror::Error)]
pub enum DraftCause {
    /// The statement lifecycle refused or failed (a settled config change,
    /// say); its message may name the program.
    #[error(transparent)]
    Payout(#[from] PayoutError),
    /// Reading or recording the last draft run.
    #[error(transparent)]
    Book(#[from] book::BookError),
    /// The `draft_schedule` does not parse.
    #[error("draft_schedule: {0}")]
    Schedule(String),
    /// The `[fx]` rates could not be read.
    #[error(transparent)]
    Fx(#[from] crate::fx::FxError),
    /// Reconciling the program first failed.
    #[error(transparent)]
    Reconcile(#[from] crate::reconcile::ReconcileError),
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
) -> Result<Vec<String>, DraftsError> {
    let book = StoreBook::open(store)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for program in &config.programs {
        if program.commission.is_some() {
            complete_cut_short(&book, &config.daemon.output_dir, &program.id);
        }
        match run_program(store, config, &book, program, now) {
            Ok(true) => {
                let _ = record(&program.id, now, None, |_| true);
                done.push(program.id.clone());
            }
            Ok(false) => {}
            Err(cause) => {
                let e = ProgramDraftError {
                    program: program.id.clone(),
                    cause,
                };
                let message = e.to_string();
                // The same refusal after every sync filled the log (QA9
                // F3): it is an error once; its repeats are counted in
                // /status and /metrics, and logged at debug level.
                let fired = |since| fired_since(config, program, since, now);
                if record(&program.id, now, Some(&message), fired) {
                    failed.push(e);
                } else {
                    tracing::debug!(program = %program.id, error = %message, "statement drafts still refused");
                }
            }
        }
    }
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(DraftsError::Programs(failed))
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
) -> Result<bool, DraftCause> {
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
    let key = book::key(&[DRAFTS_LAST_RUN, &program.id]);
    let last: Option<DateTime<Utc>> = match book.get(&key)? {
        Some(v) => Some(book::decode(&key, v)?),
        None => None,
    };
    let schedule = crate::config::CronSchedule::from_str(expr).map_err(DraftCause::Schedule)?;
    match schedule.next_after(tz, last.unwrap_or(now - Duration::days(1))) {
        Some(due) if due <= now => {}
        _ => return Ok(false),
    }
    lifecycle::check_settled(book, program, &commission)?;
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
        // e.g. files moved to `set-aside/`, which `statements generate`
        // prints as warnings
        for w in &r.warnings {
            if first_time(&program.id, w) {
                tracing::warn!(program = %program.id, period = %r.period, "{w}");
            } else {
                tracing::info!(program = %program.id, period = %r.period, "{w} (warned before)");
            }
        }
    }
    book.apply(vec![(key, Some(book::encode(&now)))])?;
    book.flush()?;
    Ok(true)
}

/// Whether this process has not yet warned `warning` for `program`: a
/// scheduled draft repeats the same warning at every run (a period not
/// finalised yet: once a minute with a minutely schedule, the only WARN of
/// a daemon at rest, soak QA31-D L1), so WARN-based alerts fire once and
/// the repeats are INFO.
fn first_time(program: &str, warning: &str) -> bool {
    static WARNED: std::sync::Mutex<BTreeSet<(String, String)>> =
        std::sync::Mutex::new(BTreeSet::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    warned.insert((program.to_owned(), warning.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payout::files::FileError;
    use crate::payout::model::Status;

    /// Soak QA31-D L1: a draft warning repeated by every scheduled run is
    /// a WARN once per program, then INFO.
    #[test]
    fn a_repeated_draft_warning_is_warned_once_per_program() {
        let w = "period qa31d-2026-10 has drafts that are not finalised";
        assert!(first_time("qa31d-a", w));
        assert!(!first_time("qa31d-a", w));
        assert!(first_time("qa31d-b", w));
        assert!(first_time("qa31d-a", "another warning"));
    }

    /// Ops QA32a L3: the syncs retrying one fire of a failing program's
    /// `draft_schedule` count one failed run; the next fire counts again.
    #[test]
    fn a_failing_draft_fire_counts_once_however_many_syncs_retry_it() {
        let now = Utc::now();
        let of = |id: &str| draft_runs().into_iter().find(|r| r.program == id).unwrap();
        assert!(record("qa32-l3", now, Some("refused"), |_| true));
        for _ in 0..3 {
            assert!(!record("qa32-l3", now, Some("refused"), |_| false));
        }
        let r = of("qa32-l3");
        assert_eq!((r.runs.consecutive_failures, r.runs.failed_total), (1, 1));
        record("qa32-l3", now, Some("refused"), |_| true);
        assert_eq!(of("qa32-l3").runs.consecutive_failures, 2);
        assert!(render_metrics()
            .contains("reckon_statement_drafts_consecutive_failures{program=\"qa32-l3\"} 2\n"));
    }

    /// QA29-A M3: a program a reload removed kept its failure gauge.
    #[test]
    fn a_removed_programs_draft_runs_are_forgotten() {
        let now = Utc::now();
        record("qa29-gone", now, Some("refused"), |_| true);
        record("qa29-kept", now, Some("refused"), |_| true);
        let gauge = |id: &str| {
            format!("reckon_statement_drafts_consecutive_failures{{program=\"{id}\"}} 1")
        };
        assert!(render_metrics().contains(&gauge("qa29-gone")));
        forget_programs(&[&"qa29-gone".to_string()]);
        let metrics = render_metrics();
        assert!(!metrics.contains("qa29-gone"), "{metrics}");
        assert!(metrics.contains(&gauge("qa29-kept")), "{metrics}");
        assert!(draft_runs().iter().all(|r| r.program != "qa29-gone"));
    }

    /// One of each [`PayoutError`] variant, of program `shop`.
    fn every_payout_error() -> Vec<PayoutError> {
        let program = || "shop".to_owned();
        let period = || "2026-08".to_owned();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
        let file = || FileError {
            action: "writing",
            path: "out/statements/shop/2026-08/summary.csv".into(),
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        vec![
            PayoutError::PaidElsewhere {
                program: program(),
                connector: "awin".into(),
                other: "old".into(),
            },
            PayoutError::PaidConnectorRemoved {
                program: program(),
                connector: "awin".into(),
                statement: "shop/2026-08/awin:1".into(),
            },
            PayoutError::SettledChanged {
                program: program(),
                key: "payout_currency",
                was: "USD".into(),
                now: "EUR".into(),
                period: period(),
            },
            PayoutError::Config(crate::payout::config::CommissionConfigError {
                program: program(),
                entry: "rules[0]".into(),
                message: "needs `percent`".into(),
            }),
            PayoutError::NoCommission(program()),
            PayoutError::Period(
                crate::payout::period::Period::parse(Default::default(), "August").unwrap_err(),
            ),
            PayoutError::Book(book::BookError::Store("disk full".into())),
            PayoutError::File(file()),
            PayoutError::Render(crate::payout::render::RenderError::NotCanonical(
                "not canonical".into(),
            )),
            PayoutError::Superseded {
                program: program(),
                period: period(),
                later: "2026-09".into(),
                next: "2026-09".into(),
                next_start: day,
            },
            PayoutError::NotGenerated {
                program: program(),
                period: period(),
            },
            PayoutError::NoStatements {
                program: program(),
                period: period(),
                later: "2026-09".into(),
                retired: None,
            },
            PayoutError::NotStarted {
                program: program(),
                period: period(),
                start: day,
                today: day,
                tz: chrono_tz::UTC,
            },
            PayoutError::StillOpen {
                program: program(),
                period: period(),
                last: day,
                next: day,
                tz: chrono_tz::UTC,
            },
            PayoutError::Decisions {
                program: program(),
                reason: "unreadable".into(),
            },
            PayoutError::UnknownFinalised {
                program: program(),
                dir: "out/statements/shop".into(),
                sets: Vec::new(),
            },
            PayoutError::NotSwappedIn {
                program: program(),
                period: period(),
                status: Status::Finalised,
                version: 2,
                error: file(),
            },
            PayoutError::Partitions("out of order".into()),
            PayoutError::StoreMismatch {
                program: program(),
                period: period(),
                partner: "p1".into(),
            },
            PayoutError::FinaliseInterrupted {
                program: program(),
                period: period(),
                error: Box::new(PayoutError::File(file())),
            },
        ]
    }

    /// The drafts' prefix is decided by [`PayoutError::program`], not by
    /// reading the message: it must say which messages begin with the
    /// program.
    #[test]
    fn payout_errors_say_which_of_their_messages_begin_with_the_program() {
        for e in every_payout_error() {
            let text = e.to_string();
            assert_eq!(
                e.program(),
                text.starts_with("program `shop`").then_some("shop"),
                "{text}"
            );
        }
    }

    /// A program's draft error begins with ``program `id`: `` once: added
    /// to a cause that does not name the program, not to one that does.
    #[test]
    fn a_draft_error_names_its_program_exactly_once() {
        let of = |cause: DraftCause| {
            ProgramDraftError {
                program: "shop".into(),
                cause,
            }
            .to_string()
        };
        for e in every_payout_error() {
            let own = e.to_string();
            let text = of(DraftCause::Payout(e));
            assert!(text.starts_with("program `shop`"), "{text}");
            assert!(
                !text.starts_with("program `shop`: program `shop`"),
                "{text}"
            );
            assert!(text.ends_with(&own), "{text}");
        }
        assert_eq!(
            of(DraftCause::Schedule("5 fields expected".into())),
            "program `shop`: draft_schedule: 5 fields expected"
        );
        assert_eq!(
            of(DraftCause::Book(book::BookError::Store("disk full".into()))),
            "program `shop`: statements store: disk full"
        );
        // Another program's error keeps its name and gets this one's.
        let other = of(DraftCause::Payout(PayoutError::NoCommission(
            "other".into(),
        )));
        assert!(
            other.starts_with("program `shop`: program `other` has no"),
            "{other}"
        );
    }
}
