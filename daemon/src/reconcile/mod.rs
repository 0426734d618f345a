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
/// feeding a program (as claims or orders), reconcile those programs; and
/// after any sync, every program that [`needs_run`] (never reconciled, or
/// its decisions are of another config, FX table, judging rules or store
/// layout, as after an upgrade): the hooks after it (drafts, KPI
/// summaries) read its decisions.
#[derive(Debug, Default)]
pub struct ReconcileAfterSync;

impl crate::schedule::hooks::PostSync for ReconcileAfterSync {
    fn name(&self) -> &'static str {
        "reconcile"
    }
    fn after_sync(&self, event: &crate::schedule::hooks::SyncEvent<'_>) -> Result<(), String> {
        let changed = event.seq_after != event.seq_before;
        let fed = |p: &ProgramConfig| {
            changed
                && (p.claims.iter().any(|c| c == event.connector)
                    || p.orders.iter().any(|c| c == event.connector))
        };
        let fx = fx_table(event.config);
        let mut programs = Vec::new();
        for p in &event.config.programs {
            // Without FX rates no run can tell; the fed programs report it.
            let stale = match &fx {
                Ok(fx) => needs_run(event.store, p, fx).map_err(|e| e.to_string())?,
                Err(_) => false,
            };
            if stale && !fed(p) {
                tracing::info!(
                    program = %p.id,
                    "program not reconciled with the present config, FX rates, judging rules or store layout (its first run, a changed [[programs]] or [fx], or an upgrade): reconciling it"
                );
            }
            if stale || fed(p) {
                programs.push(p.clone());
            }
        }
        if programs.is_empty() {
            return Ok(());
        }
        let fx = match fx {
            Ok(fx) => fx,
            Err(e) => {
                // Shown as each program's failed run in /status and /metrics,
                // not only in the log.
                let e = ReconcileError::Fx(e);
                for p in &programs {
                    remember(&p.id, Err(&e), std::time::Duration::ZERO);
                }
                return Err(e.to_string());
            }
        };
        let summary = run(event.store, &programs, &fx, Utc::now()).map_err(|e| e.to_string())?;
        // What `reckon reconcile` prints of removed decisions, in the log
        // (QA29-A M1: a reload that took a network out of `claims` had the
        // daemon drop its decisions silently).
        for p in &summary.programs {
            if p.decisions_removed == 0 {
                continue;
            }
            let removed = cli::removed_text(p, &programs, false);
            tracing::warn!(program = %p.program, "{}", removed.trim_start_matches(", "));
            match cli::paid_connector_removed(event.store, p, &programs) {
                Ok(Some(w)) => tracing::warn!(program = %p.program, "{w}"),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(program = %p.program, error = %e, "cannot check what finalised statements paid")
                }
            }
        }
        Ok(())
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
    /// The `[fx]` rates could not be loaded (a rates CSV changed since the
    /// config was checked).
    #[error(transparent)]
    Fx(#[from] crate::fx::FxError),
    /// `--program` named a program that is not configured: its id, and
    /// the did-you-mean and the configured ids
    /// ([`crate::config::source::not_configured`]).
    #[error("no program `{0}` in [[programs]]{1}")]
    UnknownProgram(String, String),
}

/// What a run did, per program (in config order).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    /// One entry per program run.
    pub programs: Vec<ProgramSummary>,
}

/// Runs every given program against the store: incremental when possible
/// (see [`incremental`]), then flushes. The daemon calls this through
/// [`ReconcileAfterSync`]: after each sync that changed a program's claims
/// or orders, after postbacks that stored claims
/// (`schedule::hooks_after_postbacks`), and after any sync for every
/// program that [`needs_run`].
pub fn run(
    store: &Store,
    programs: &[ProgramConfig],
    fx: &FxTable,
    now: DateTime<Utc>,
) -> Result<RunSummary, ReconcileError> {
    run_with(&StoreBackend::new(store)?, programs, fx, now, false)
}

/// Whether `program`'s next run must be a full one: it never ran (or its
/// last full run did not finish), or its stored decisions are not those of
/// the present config, FX table, judging rules
/// ([`engine::JUDGE_VERSION`]) or layout (a store upgraded from a version
/// that wrote them otherwise). Readers of its decisions are then out of
/// date; the daemon reconciles such programs after each sync until a run
/// succeeds ([`ReconcileAfterSync`]).
pub fn needs_run(store: &Store, program: &ProgramConfig, fx: &FxTable) -> Result<bool, StoreError> {
    let state = incremental::stored_state(&StoreBackend::new(store)?, &program.id)?;
    Ok(!state.is_some_and(|s| incremental::is_current(&s, program, fx)))
}

/// The programs whose claims or orders changed after their last run: a
/// run the daemon owed when it stopped (postbacks acknowledged within the
/// moments before a SIGTERM or a kill, whose run waits for more to gather,
/// QA44a A-M1; a sync killed after committing pages): the change log
/// after each one's last run, read up to the first of its records (as
/// [`unjudged`] counts them). Programs with no run state are left to
/// [`needs_run`], which the first sync answers.
pub fn behind(store: &Store, programs: &[ProgramConfig]) -> Result<Vec<ProgramConfig>, StoreError> {
    let b = StoreBackend::new(store)?;
    let mut out = Vec::new();
    for p in programs {
        let Some(state) = incremental::stored_state(&b, &p.id)? else {
            continue;
        };
        for ch in store.changes_since(state.last_seq) {
            let ch = ch?;
            if judges(p, ch.kind, &ch.source) {
                out.push(p.clone());
                break;
            }
        }
    }
    Ok(out)
}

/// Whether `program` judges records of `kind` from `source`: claims of its
/// `claims` connectors, orders of its `orders` connectors.
fn judges(program: &ProgramConfig, kind: plugin_api::RecordKind, source: &str) -> bool {
    match kind {
        plugin_api::RecordKind::Conversion => program.claims.iter().any(|c| c == source),
        plugin_api::RecordKind::Order => program.orders.iter().any(|c| c == source),
        plugin_api::RecordKind::Spend => false,
    }
}

/// At the daemon's start, before anything else runs: reconciles the
/// programs [`behind`] their records whose next run is incremental, as the
/// hook after the sync or the postbacks that stored them would have (shown
/// in `/status` as any run). Failures are logged; the next sync's hook
/// tries again.
pub fn catch_up_at_start(store: &Store, config: &crate::config::Config) {
    let _turn = crate::schedule::hooks::exclusive();
    // Without FX rates no run can tell; the first sync's run reports it.
    let Ok(fx) = fx_table(config) else {
        return;
    };
    // Only incremental runs: a program due a full run (its config, the FX
    // table or the judging rules changed) gets it after the first sync,
    // as before, rather than holding up the start.
    let behind = behind(store, &config.programs).and_then(|programs| {
        let mut incremental = Vec::new();
        for p in programs {
            if !needs_run(store, &p, &fx)? {
                incremental.push(p);
            }
        }
        Ok(incremental)
    });
    let programs = match behind {
        Ok(p) if p.is_empty() => return,
        Ok(p) => p,
        Err(error) => {
            tracing::warn!(%error, "reconcile: could not look for programs with records stored since their last run; the next sync reconciles them");
            return;
        }
    };
    let ids: Vec<&str> = programs.iter().map(|p| p.id.as_str()).collect();
    tracing::info!(
        programs = %ids.join(","),
        "reconcile: records were stored since these programs' last run (postbacks or a sync just before the last stop): reconciling them"
    );
    if let Err(error) = run(store, &programs, &fx, Utc::now()) {
        tracing::warn!(%error, "reconcile: the run at start failed; the next sync's run tries again");
    }
}

/// The daemon's own clock for decisions that change with time alone (a
/// lock date or a program's `no_order_grace_days` passes, QA44c C-L2):
/// without it such a decision was re-judged only by the next run a sync
/// or postback started, so while every sync failed (or a program's
/// platforms sent nothing new) `reckon status` kept the old payable count.
/// A program is re-judged by the clock once one of its stored decisions
/// has come due and it has had no run for `every` (`[daemon]
/// rejudge_interval_secs`): a busy program's syncs do the work, a quiet
/// one is re-judged at most `every` after its decisions come due.
/// Programs due a full run wait for a sync, as documented for them.
#[derive(Debug, Default)]
pub struct Clock {
    /// When the clock last ran each program (a failed run is not tried
    /// again before `every` has passed).
    tried: std::collections::BTreeMap<String, DateTime<Utc>>,
}

/// When the clock re-judges a program whose first decision comes due at
/// `due`, last judged at `judged_at` and last tried by the clock at
/// `tried`: not before its decisions change, nor within `every` of its
/// last run or try.
fn clock_at(
    due: DateTime<Utc>,
    judged_at: Option<DateTime<Utc>>,
    tried: Option<DateTime<Utc>>,
    every: chrono::Duration,
) -> DateTime<Utc> {
    [
        Some(due),
        judged_at.map(|t| t + every),
        tried.map(|t| t + every),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(due)
}

impl Clock {
    /// Re-judges the programs due a clock run at `now` (an incremental
    /// run, shown in `/status` as any run), and says when to look again:
    /// at the next program's clock instant, within `every` at the latest
    /// (a sync or a reload may have changed what is due). Failures are
    /// logged; the programs are tried again after `every`.
    pub fn tick(
        &mut self,
        store: &Store,
        config: &crate::config::Config,
        now: DateTime<Utc>,
        every: std::time::Duration,
    ) -> DateTime<Utc> {
        let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::days(1));
        let mut next = now + every;
        // Without FX rates no run can tell; the syncs' runs report it.
        let Ok(fx) = fx_table(config) else {
            return next;
        };
        let _turn = crate::schedule::hooks::exclusive();
        let mut due_now = Vec::new();
        let found = StoreBackend::new(store).and_then(|b| {
            for p in &config.programs {
                let Some(state) = incremental::stored_state(&b, &p.id)? else {
                    continue;
                };
                if !incremental::is_current(&state, p, &fx) {
                    continue;
                }
                let Some(due) = incremental::next_due(&b, &p.id)? else {
                    continue;
                };
                let at = clock_at(due, state.judged_at, self.tried.get(&p.id).copied(), every);
                if at <= now {
                    due_now.push((p.clone(), due));
                } else {
                    next = next.min(at);
                }
            }
            Ok(())
        });
        if let Err(error) = found {
            tracing::warn!(%error, "reconcile: could not look for decisions due to change with time; looking again later");
            return next;
        }
        if due_now.is_empty() {
            return next;
        }
        for (p, due) in &due_now {
            tracing::info!(
                program = %p.id,
                due_since = %due.format("%Y-%m-%d %H:%M:%S UTC"),
                "reconcile: decisions came due with time (a lock date or grace period passed) and no sync or postback has reconciled the program since: reconciling it"
            );
            self.tried.insert(p.id.clone(), now);
        }
        let programs: Vec<ProgramConfig> = due_now.into_iter().map(|(p, _)| p).collect();
        if let Err(error) = run(store, &programs, &fx, now) {
            tracing::warn!(%error, "reconcile: the run for decisions due with time failed; trying again later");
        }
        next
    }
}

/// Where a program's stored decisions stand ([`standing`]): whether the
/// next run must be a full one, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Its decisions are those of the present config, judging rules, FX
    /// table and layout: the next run is incremental.
    Reconciled,
    /// No run state: never reconciled, or its full run is under way or
    /// was cut short.
    Never,
    /// Stored by an older release in another layout: the next run is full
    /// (until then its decisions are not read when `decisions_read` is
    /// false).
    OlderLayout,
    /// Judged by an older release's judging rules
    /// ([`engine::JUDGE_VERSION`]): the next run is full.
    OlderRules,
    /// Its `[[programs]]` entry changed since its last run: the next run is
    /// full.
    ConfigChanged,
    /// The `[fx]` table changed since its last run: the next run is full.
    FxChanged,
    /// Its last run judged the store as of a past instant (`reckon
    /// reconcile --now`): the next run is full.
    AsOf,
    /// A state a newer daemon reports that this version does not know.
    #[serde(other)]
    Unknown,
}

impl Standing {
    /// Whether the daemon reconciles the program after the next sync even
    /// when the sync changed none of its records ([`needs_run`]).
    pub fn needs_run(self) -> bool {
        self != Standing::Reconciled
    }

    /// What it means, for `reckon status`.
    pub fn describe(self) -> &'static str {
        match self {
            Standing::Reconciled => "reconciled",
            Standing::Never => "never reconciled, or its last full run did not finish",
            Standing::OlderLayout => "stored by an older release: next run is full",
            Standing::OlderRules => "judged by an older release's rules: next run is full",
            Standing::ConfigChanged => "its [[programs]] entry changed since its last run: next run is full",
            Standing::FxChanged => "the [fx] rates changed since its last run: next run is full",
            Standing::AsOf => "its last run judged the store as of a past instant (`reckon reconcile --now`): next run is full",
            Standing::Unknown => "state unknown to this reckon",
        }
    }
}

/// A program's stored run state as `/status` shows it (`reconciliation`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgramStanding {
    /// Program id.
    pub program: String,
    /// Where its decisions stand.
    pub state: Standing,
    /// `state` is not `reconciled`: the daemon reconciles the program
    /// after the next sync (even one that changed nothing), before it
    /// writes drafts or KPI summaries.
    pub needs_run: bool,
    /// Whether `kpi`, `reconcile report` and the drafts read its stored
    /// decisions (false: they say it has not been reconciled).
    pub decisions_read: bool,
    /// The `now` of the last run, when its state records it.
    #[serde(default)]
    pub judged_at: Option<DateTime<Utc>>,
    /// The instant that run judged the store as of (`reckon reconcile
    /// --now`), if not its present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_as_of: Option<DateTime<Utc>>,
    /// The program's payable decisions after that run, when known.
    #[serde(default)]
    pub payable: Option<u64>,
    /// The store's change sequence that run judged up to.
    #[serde(default)]
    pub last_seq: Option<u64>,
    /// When a run of the program in this process began, while it runs
    /// (a full run's state reads `never` until it ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<DateTime<Utc>>,
}

/// Where `program`'s stored decisions stand, from its run state alone (one
/// key read, no decision read): what [`needs_run`] decides, and why.
/// `fx_fingerprint` is the [`FxTable::fingerprint`] of the `[fx]` table to
/// compare with (none: not compared, as when the rates cannot be loaded).
pub fn standing(
    store: &Store,
    program: &ProgramConfig,
    fx_fingerprint: Option<&str>,
) -> Result<ProgramStanding, StoreError> {
    standing_with(&StoreBackend::new(store)?, program, fx_fingerprint)
}

/// [`standing`] over any backend.
pub fn standing_with<B: ReconBackend>(
    backend: &B,
    program: &ProgramConfig,
    fx_fingerprint: Option<&str>,
) -> Result<ProgramStanding, StoreError> {
    let raw = incremental::raw_stored_state(backend, &program.id)?;
    let state = raw.clone().flatten();
    let standing = match &raw {
        None => Standing::Never,
        Some(None) => Standing::OlderLayout,
        Some(Some(s)) if !incremental::is_this_layout(s) => Standing::OlderLayout,
        Some(Some(s)) if s.as_of.is_some() => Standing::AsOf,
        Some(Some(s)) if s.program != program.fingerprint() => {
            if program.is_fingerprint_of_older_rules(&s.program) {
                Standing::OlderRules
            } else {
                Standing::ConfigChanged
            }
        }
        Some(Some(s)) if fx_fingerprint.is_some_and(|f| f != s.fx) => Standing::FxChanged,
        Some(Some(_)) => Standing::Reconciled,
    };
    Ok(ProgramStanding {
        program: program.id.clone(),
        state: standing,
        needs_run: standing.needs_run(),
        decisions_read: state.as_ref().is_some_and(incremental::is_read),
        judged_at: state.as_ref().and_then(|s| s.judged_at),
        store_as_of: state.as_ref().and_then(|s| s.as_of),
        payable: state.as_ref().and_then(|s| s.payable),
        last_seq: state.as_ref().map(|s| s.last_seq),
        running_since: with_runs(|r| r.running.get(&program.id).copied()),
    })
}

/// A program's last reconcile run in this process (`/status`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastRun {
    /// Program id.
    pub program: String,
    /// When the run ended.
    pub at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    #[serde(default)]
    pub millis: u64,
    /// Every claim judged (else the affected closure only).
    pub full: bool,
    /// Claims judged.
    pub claims_judged: u64,
    /// Decisions new or changed.
    pub decisions_changed: u64,
    /// Of the claims judged in this run, those payable now (not the
    /// program's total: that is `payable_total`).
    pub payable: u64,
    /// Why the run failed (its decisions are those of the run before).
    pub error: Option<String>,
    /// Of `decisions_changed`, those new or with another outcome, basis or
    /// payable flag (none from a daemon of before 2026-11-29).
    #[serde(default)]
    pub outcomes_changed: Option<u64>,
    /// The program's payable decisions after the run, when known.
    #[serde(default)]
    pub payable_total: Option<u64>,
}

/// Per program: the last run and counters since the process started.
#[derive(Debug, Default)]
struct Runs {
    last: std::collections::BTreeMap<String, LastRun>,
    /// (program, full, failed) → runs.
    runs: std::collections::BTreeMap<(String, bool, bool), u64>,
    /// program → (claims judged, decisions changed).
    totals: std::collections::BTreeMap<String, (u64, u64)>,
    /// program → when its run under way began.
    running: std::collections::BTreeMap<String, DateTime<Utc>>,
}

/// Kept by [`run_with`] for the daemon's `/status` and `/metrics`: runs
/// after syncs and postbacks, and those run for clients.
static RUNS: std::sync::Mutex<Option<Runs>> = std::sync::Mutex::new(None);

fn with_runs<T>(f: impl FnOnce(&mut Runs) -> T) -> T {
    let mut guard = RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(guard.get_or_insert_with(Runs::default))
}

/// Each program's last run in this process, in id order.
pub fn last_runs() -> Vec<LastRun> {
    with_runs(|r| r.last.values().cloned().collect())
}

/// Prometheus text of the runs in this process:
/// `reckon_reconcile_runs_total{program,kind,outcome}`,
/// `reckon_reconcile_claims_judged_total{program}`,
/// `reckon_reconcile_decisions_changed_total{program}` and
/// `reckon_reconcile_last_run_seconds{program}`.
pub fn render_metrics() -> String {
    use std::fmt::Write as _;
    with_runs(|r| {
        let mut out = String::from(
            "# HELP reckon_reconcile_runs_total Reconcile runs by program, kind and outcome.\n\
             # TYPE reckon_reconcile_runs_total counter\n",
        );
        for ((program, full, failed), n) in &r.runs {
            let kind = if *full { "full" } else { "incremental" };
            let outcome = if *failed { "failed" } else { "ok" };
            let _ = writeln!(
                out,
                "reckon_reconcile_runs_total{{program=\"{program}\",kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let mut series = |name: &str, help: &str, kind: &str, value: &dyn Fn(&str) -> String| {
            let _ = writeln!(out, "# HELP reckon_reconcile_{name} {help}");
            let _ = writeln!(out, "# TYPE reckon_reconcile_{name} {kind}");
            for program in r.totals.keys() {
                let v = value(program);
                let _ = writeln!(out, "reckon_reconcile_{name}{{program=\"{program}\"}} {v}");
            }
        };
        series(
            "claims_judged_total",
            "Claims judged by reconcile runs.",
            "counter",
            &|p| r.totals[p].0.to_string(),
        );
        series(
            "decisions_changed_total",
            "Decisions new or changed by reconcile runs.",
            "counter",
            &|p| r.totals[p].1.to_string(),
        );
        series(
            "last_run_seconds",
            "Duration of the program's last reconcile run.",
            "gauge",
            // Milliseconds written as seconds, exactly (no float).
            &|p| {
                let ms = r.last.get(p).map_or(0, |l| l.millis);
                format!("{}.{:03}", ms / 1000, ms % 1000)
            },
        );
        out
    })
}

fn remember(
    program: &str,
    outcome: Result<&ProgramSummary, &ReconcileError>,
    took: std::time::Duration,
) {
    let (s, error) = match outcome {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let run = LastRun {
        program: program.to_owned(),
        at: Utc::now(),
        millis: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        full: s.is_some_and(|s| s.full),
        claims_judged: s.map_or(0, |s| s.claims_judged),
        decisions_changed: s.map_or(0, |s| s.decisions_changed),
        payable: s.map_or(0, |s| s.payable),
        error,
        outcomes_changed: s.map(|s| s.outcomes_changed),
        payable_total: s.and_then(|s| s.payable_total),
    };
    with_runs(|r| {
        *r.runs
            .entry((program.to_owned(), run.full, run.error.is_some()))
            .or_default() += 1;
        let t = r.totals.entry(program.to_owned()).or_default();
        t.0 += run.claims_judged;
        t.1 += run.decisions_changed;
        r.last.insert(program.to_owned(), run);
    });
}

/// A program's run under way, in [`Runs::running`] until dropped.
struct Running<'a>(&'a str);

impl<'a> Running<'a> {
    fn new(program: &'a str) -> Self {
        with_runs(|r| r.running.insert(program.to_owned(), Utc::now()));
        Running(program)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        with_runs(|r| r.running.remove(self.0));
    }
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
        let started = std::time::Instant::now();
        let running = Running::new(&p.id);
        let s = incremental::run_program(backend, p, fx, now, force_full);
        drop(running);
        remember(&p.id, s.as_ref(), started.elapsed());
        let s = s?;
        // A run that judged nothing (a sync that changed none of the
        // program's records) is debug detail (QA29-A L4: a connector
        // synced every minute logged one such line a minute).
        macro_rules! reconciled {
            ($level:ident) => {
                tracing::$level!(
                    program = %s.program,
                    full = s.full,
                    judged = s.claims_judged,
                    changed = s.decisions_changed,
                    outcomes_changed = s.outcomes_changed,
                    payable = s.payable,
                    payable_total = s.payable_total,
                    last_seq = s.last_seq,
                    "reconciled program"
                )
            };
        }
        if s.full || s.claims_judged > 0 {
            reconciled!(info);
        } else {
            reconciled!(debug);
        }
        summary.programs.push(s);
    }
    backend.flush()?;
    Ok(summary)
}

/// The latest decisions of a program, as stored by the last reconcile run,
/// in claim (source, external id) order. None when the program has no
/// finished run (never reconciled, or its last full run was cut short: its
/// buckets may hold part of that run's decisions, QA42b B-H1); read
/// between two reads of its run state, again when a run began or ended
/// meanwhile.
/// CONTRACT: payout reads decisions through [`scan_decisions`] (and
/// [`decode_stored_decision`]), kpi through [`load_judgements_where`]; all
/// of them, this one too, go through `incremental::load_stored_decisions*`
/// and `incremental::scan_stored_decisions`, so a change to what readers
/// see must reach each.
pub fn load_decisions(store: &Store, program: &str) -> Result<Vec<model::Decision>, StoreError> {
    incremental::load_stored_decisions(&StoreBackend::new(store)?, program)
}

/// [`load_decisions`] one at a time: `each` gets every decision of the
/// program, in no particular order, decoded and as stored (a quarter of
/// the memory; [`decode_stored_decision`] decodes it again). False when
/// the program has no finished run: never reconciled, or its last full run
/// was cut short, so what its buckets hold may be part of that run's
/// decisions (QA42b B-H1); `each` is never called then.
pub fn scan_decisions(
    store: &Store,
    program: &str,
    each: impl FnMut(&model::Decision, &[u8]),
) -> Result<bool, StoreError> {
    incremental::scan_stored_decisions(&StoreBackend::new(store)?, program, each)
}

/// Decodes a decision as [`scan_decisions`] gave it.
pub fn decode_stored_decision(stored: &[u8]) -> Result<model::Decision, codec::CodecError> {
    Ok(codec::decode_decision(stored)?.decision)
}

/// A program's decisions as a run at `at` would have made them, from the
/// store as Reckon knew it then ([`backend::AsOf::scratch`]): judged in
/// memory, nothing stored changes, and the daemon's decisions stay as they
/// are. Keeps the decisions `keep` accepts. Costs a full run of the
/// program (and its decisions in memory).
pub fn decisions_as_of(
    store: &Store,
    program: &ProgramConfig,
    fx: &FxTable,
    at: DateTime<Utc>,
    keep: impl FnMut(&model::Decision) -> bool,
) -> Result<Vec<model::Decision>, ReconcileError> {
    config::validate_programs(std::slice::from_ref(program))?;
    // Only the decision buckets are read back, and the run's state, which
    // tells readers its decisions are whole.
    let decisions = incremental::decision_prefix(&program.id);
    let state = incremental::state_key(&program.id);
    let view = backend::AsOf::scratch(store, at, &[decisions.as_bytes(), &state])?;
    incremental::run_program(&view, program, fx, at, true)?;
    Ok(incremental::load_stored_decisions_where(
        &view,
        &program.id,
        keep,
    )?)
}

/// A program's stored decisions as `reckon reconcile report` shows them.
#[derive(Debug, Clone, Default)]
pub struct StoredJudgements {
    /// The decisions kept, in claim (source, external id) order.
    pub decisions: Vec<model::Decision>,
    /// For each, when it changes with time alone (the end of an
    /// `awaiting_order` grace period, the lock date of an earning decision
    /// not yet payable): [`report::stale`] compares these with the present.
    pub due: Vec<Option<DateTime<Utc>>>,
    /// The `now` of the run that left them (see
    /// [`incremental::ProgramState::judged_at`]); none before the first
    /// run, during a full run, or from a version before 2026-11-29.
    pub judged_at: Option<DateTime<Utc>>,
    /// Set when that run judged the store as it stood at this instant
    /// (`reckon reconcile --now`): records stored later were left out.
    pub store_as_of: Option<DateTime<Utc>>,
    /// Whether the program has a last run whose decisions this version
    /// reads (see [`incremental::stored_state`]); false: never reconciled,
    /// a full run under way or cut short, or a store upgraded since.
    pub ran: bool,
}

/// [`load_decisions_where`], with each decision's due instant and the
/// instant the last run judged them at. The state is read first: a run
/// that ends in between makes the decisions newer than `judged_at`, never
/// older.
pub fn load_judgements_where(
    store: &Store,
    program: &str,
    keep: impl FnMut(&model::Decision) -> bool,
) -> Result<StoredJudgements, StoreError> {
    let b = StoreBackend::new(store)?;
    let state = incremental::stored_state(&b, program)?;
    let ran = state.is_some();
    let (judged_at, store_as_of) = state.map_or((None, None), |s| (s.judged_at, s.as_of));
    let (decisions, due): (Vec<_>, Vec<_>) =
        incremental::load_stored_decisions_due_where(&b, program, keep)?
            .into_iter()
            .unzip();
    // A full run that began meanwhile (the daemon's) leaves nothing to
    // read: the program is not reconciled for this reader.
    let ran = ran && (!decisions.is_empty() || incremental::stored_state(&b, program)?.is_some());
    Ok(StoredJudgements {
        decisions,
        due,
        judged_at,
        store_as_of,
        ran,
    })
}

/// What a program's stored decisions have not judged yet: the claims and
/// orders of its sources stored (new or changed) after its last run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unjudged {
    /// Whether the program has a last run at all (none: never reconciled,
    /// a full run under way or cut short, or a store upgraded since: see
    /// [`incremental::stored_state`]).
    pub ran: bool,
    /// The `now` of that run, when recorded.
    pub judged_at: Option<DateTime<Utc>>,
    /// Claims (of the program's `claims` sources) stored since.
    pub claims: u64,
    /// Orders (of its `orders` sources) stored since.
    pub orders: u64,
}

/// Why a reader of `program`'s stored decisions (`reconcile report`,
/// `kpi`) must be told they may be out of date, one sentence each, beyond
/// their own deadlines ([`report::stale`]): its `[[programs]]` entry,
/// the `[fx]` table (`fx_fingerprint`) or the judging rules changed since
/// its last run (those decisions are read as they were judged until the
/// next, full, run), or claims or orders were stored after it (`u`, the
/// caller's [`unjudged`]; the `consequence` of that for the reader ends
/// the sentence). None for a
/// program never reconciled (readers say so on their own) or judged as of
/// a past instant (`--now`, said on its own too). QA40a A-M1, A-M2: the
/// report showed a refund synced since, or a tolerance edited since, as
/// if judged, without a word.
pub fn out_of_date_notes(
    store: &Store,
    program: &ProgramConfig,
    u: &Unjudged,
    fx_fingerprint: &str,
    consequence: &str,
) -> Result<Vec<String>, StoreError> {
    let mut notes = Vec::new();
    let st = standing(store, program, Some(fx_fingerprint))?;
    let when = st.judged_at.map_or_else(String::new, |t| {
        format!(
            " ({})",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    });
    let changed = match st.state {
        Standing::ConfigChanged => Some("its `[[programs]]` entry has changed"),
        Standing::FxChanged => Some("the `[fx]` rates have changed"),
        Standing::OlderRules => Some("this release judges by newer rules"),
        _ => None,
    };
    if let Some(what) = changed {
        notes.push(format!(
            "program `{}`: {what} since its last run{when}: its decisions were judged before and are shown as they were; the next run judges every claim again (`reckon reconcile`, or the daemon after its next sync).",
            program.id
        ));
    }
    if u.ran && (u.claims > 0 || u.orders > 0) {
        let mut what = Vec::new();
        if u.claims > 0 {
            what.push(plural(u.claims, "claim"));
        }
        if u.orders > 0 {
            what.push(plural(u.orders, "order"));
        }
        // "1 order ... is", "1 claim and 1 order ... are".
        let verb = if u.claims + u.orders == 1 {
            "is"
        } else {
            "are"
        };
        notes.push(format!(
            "Reconciliation of program `{}` is out of date: {} stored after its last run{when} {verb} not judged yet ({consequence}); run `reckon reconcile` and report again.",
            program.id,
            what.join(" and ")
        ));
    }
    Ok(notes)
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The claims and orders stored after `program`'s last run (the change log
/// after the run's `last_seq`, as the next incremental run reads it), each
/// record counted once. Not read when the program never ran.
pub fn unjudged(store: &Store, program: &ProgramConfig) -> Result<Unjudged, StoreError> {
    let b = StoreBackend::new(store)?;
    let Some(state) = incremental::stored_state(&b, &program.id)? else {
        return Ok(Unjudged::default());
    };
    let mut out = Unjudged {
        ran: true,
        judged_at: state.judged_at,
        ..Unjudged::default()
    };
    let mut seen = std::collections::HashSet::new();
    for ch in store.changes_since(state.last_seq) {
        let ch = ch?;
        if !judges(program, ch.kind, &ch.source) {
            continue;
        }
        let counter = match ch.kind {
            plugin_api::RecordKind::Conversion => &mut out.claims,
            _ => &mut out.orders,
        };
        if seen.insert((ch.kind, ch.source, ch.key)) {
            *counter += 1;
        }
    }
    Ok(out)
}

/// The stored decision of one claim of `program` (`source`/`id`), if any:
/// one bucket read, not a pass over the program's decisions.
pub fn load_decision(
    store: &Store,
    program: &str,
    source: &str,
    id: &str,
) -> Result<Option<model::Decision>, StoreError> {
    incremental::load_stored_decision(&StoreBackend::new(store)?, program, source, id)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A program claiming `net` against orders of `shop`. Tests use ids of
    /// their own: the run registry and counters are process-wide.
    fn program(id: &str) -> ProgramConfig {
        toml::from_str(&format!(
            "id = \"{id}\"\ncurrency = \"USD\"\nclaims = [\"net\"]\norders = [\"shop\"]\n"
        ))
        .unwrap()
    }

    /// A daemon config on the store in `data_dir` with one program `id`
    /// (as [`program`], in `currency`).
    fn daemon_config(
        data_dir: &std::path::Path,
        id: &str,
        currency: &str,
    ) -> crate::config::Config {
        toml::from_str(&format!(
            "[daemon]\ndata_dir = {:?}\n[[programs]]\nid = \"{id}\"\ncurrency = \"{currency}\"\nclaims = [\"net\"]\norders = [\"shop\"]\n",
            data_dir.display().to_string(),
        ))
        .unwrap()
    }

    /// QA44a A-M1: postbacks acknowledged just before a SIGTERM were never
    /// judged after the restart (their run waits for more to gather, and
    /// the stop cut it), and `/status` said `reconciled`. A program whose
    /// claims or orders changed after its last run is behind, and the
    /// daemon's start reconciles it; records of other sources do not count.
    #[test]
    fn a_program_with_claims_stored_after_its_last_run_is_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = program("behind-test-program");
        let conv = crate::test_support::conversion;
        store
            .commit_page("net", &[conv("a", 1)], None, Utc::now())
            .unwrap();
        let programs = std::slice::from_ref(&p);
        assert!(behind(&store, programs).unwrap().is_empty(), "never run");
        run(&store, programs, &FxTable::empty(), Utc::now()).unwrap();
        assert!(behind(&store, programs).unwrap().is_empty());
        store
            .commit_page("other", &[conv("b", 1)], None, Utc::now())
            .unwrap();
        assert!(
            behind(&store, programs).unwrap().is_empty(),
            "not its source"
        );
        store
            .commit_page("net", &[conv("c", 1)], None, Utc::now())
            .unwrap();
        let ids = |v: Vec<ProgramConfig>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(
            ids(behind(&store, programs).unwrap()),
            ["behind-test-program"]
        );
        let config = |currency: &str| daemon_config(dir.path(), &p.id, currency);
        // A program due a full run (its config changed) is left to the
        // first sync: the start is not held up by it.
        catch_up_at_start(&store, &config("EUR"));
        assert_eq!(ids(behind(&store, programs).unwrap()), [p.id.as_str()]);
        catch_up_at_start(&store, &config("USD"));
        assert!(behind(&store, programs).unwrap().is_empty());
        let last = last_runs().into_iter().find(|r| r.program == p.id).unwrap();
        assert_eq!(last.error, None);
    }

    /// QA44c C-L2: decisions that change with time alone (here a grace
    /// period ending) were re-judged only by a run a sync or postback
    /// started. The clock re-judges a program once its first decision came
    /// due and it has had no run for `every`, and says when to look again.
    #[test]
    fn the_clock_rejudges_decisions_that_came_due_with_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = program("clock-test-program");
        let config = |currency: &str| daemon_config(dir.path(), &p.id, currency);
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let conv = crate::test_support::conversion;
        // Two claims with no order: awaiting it for the 7 days' grace.
        let mut late = conv("b", 1);
        if let plugin_api::Record::Conversion(c) = &mut late {
            c.occurred_at = t("2026-01-02T03:04:35Z");
        }
        (store.commit_page(
            "net",
            &[conv("a", 1), late],
            None,
            t("2026-01-03T00:00:00Z"),
        ))
        .unwrap();
        let fx = FxTable::empty();
        let programs = std::slice::from_ref(&p);
        run(&store, programs, &fx, t("2026-01-03T00:00:00Z")).unwrap();
        let b = StoreBackend::new(&store).unwrap();
        let (a_due, b_due) = (t("2026-01-09T03:04:05Z"), t("2026-01-09T03:04:35Z"));
        assert_eq!(incremental::next_due(&b, &p.id).unwrap(), Some(a_due));
        let outcome = |id: &str| {
            load_decision(&store, &p.id, "net", id)
                .unwrap()
                .unwrap()
                .outcome
        };
        let every = std::time::Duration::from_secs(60);
        let mut clock = Clock::default();

        // Not due yet: it looks again at the due instant.
        let before = a_due - chrono::Duration::seconds(1);
        assert_eq!(clock.tick(&store, &config("USD"), before, every), a_due);
        assert_eq!(outcome("a"), model::Outcome::AwaitingOrder);
        // Due: re-judged now, the run shown as any run.
        let at = a_due + chrono::Duration::seconds(1);
        let next = clock.tick(&store, &config("USD"), at, every);
        assert_eq!(outcome("a"), model::Outcome::NoOrder);
        assert_eq!(outcome("b"), model::Outcome::AwaitingOrder);
        // The run's log deletes `a`'s due key, which the tree still holds.
        assert_eq!(incremental::next_due(&b, &p.id).unwrap(), Some(b_due));
        let last = last_runs().into_iter().find(|r| r.program == p.id).unwrap();
        assert_eq!(
            (last.full, last.claims_judged, last.error),
            (false, 1, None)
        );
        // `b` comes due 30 s later, but the program ran just now: it is
        // re-judged `every` after that run, not at once.
        assert_eq!(next, at + chrono::Duration::seconds(60));
        let soon = b_due + chrono::Duration::seconds(1);
        assert_eq!(clock.tick(&store, &config("USD"), soon, every), next);
        assert_eq!(outcome("b"), model::Outcome::AwaitingOrder);
        // A program due a full run (its config changed) waits for a sync.
        let later = next + chrono::Duration::seconds(1);
        assert_eq!(
            clock.tick(&store, &config("EUR"), later, every),
            later + chrono::Duration::seconds(60)
        );
        assert_eq!(outcome("b"), model::Outcome::AwaitingOrder);
        clock.tick(&store, &config("USD"), later, every);
        assert_eq!(outcome("b"), model::Outcome::NoOrder);
        // Nothing is due any more.
        assert_eq!(incremental::next_due(&b, &p.id).unwrap(), None);
    }

    /// A full run deletes the program's state first: while it runs,
    /// `/status` says so instead of only "never reconciled".
    #[test]
    fn a_run_under_way_shows_in_the_standing() {
        let p = program("running-test-program");
        let b = backend::MemoryBackend::new();
        let running = Running::new(&p.id);
        let s = standing_with(&b, &p, None).unwrap();
        assert_eq!(s.state, Standing::Never);
        assert!(s.running_since.is_some());
        drop(running);
        assert_eq!(standing_with(&b, &p, None).unwrap().running_since, None);
    }

    #[test]
    fn a_run_that_judged_nothing_logs_its_program_at_debug_only() {
        let p = program("quiet-log-test-program");
        let b = backend::MemoryBackend::new();
        let now = Utc::now();
        let at_info = |force_full| {
            crate::test_support::json_lines_at(tracing::Level::INFO, || {
                run_with(
                    &b,
                    std::slice::from_ref(&p),
                    &FxTable::empty(),
                    now,
                    force_full,
                )
                .unwrap();
            })
            .into_iter()
            .filter(|l| l["fields"]["message"] == "reconciled program")
            .collect::<Vec<_>>()
        };
        // The first run is full: said at info, as is a forced full run.
        assert_eq!(at_info(false).len(), 1);
        assert_eq!(at_info(true).len(), 1);
        // Nothing changed since: an incremental run that judged nothing.
        assert_eq!(at_info(false), Vec::<serde_json::Value>::new());
        let all = crate::test_support::json_lines(|| {
            run_with(&b, std::slice::from_ref(&p), &FxTable::empty(), now, false).unwrap();
        });
        let line = all
            .iter()
            .find(|l| l["fields"]["message"] == "reconciled program")
            .expect("logged at debug");
        assert_eq!(line["level"], "DEBUG");
        assert_eq!(line["fields"]["judged"], 0);
    }

    #[test]
    fn runs_are_counted_for_status_and_metrics() {
        // A program id no other test uses: the counters are process-wide.
        let id = "metrics-test-program";
        let summary = ProgramSummary {
            program: id.into(),
            full: false,
            claims_judged: 7,
            decisions_changed: 2,
            payable: 1,
            ..Default::default()
        };
        remember(id, Ok(&summary), std::time::Duration::from_millis(1234));
        let failed = ReconcileError::UnknownProgram("x".into(), "y".into());
        remember(id, Err(&failed), std::time::Duration::from_millis(5));
        let last = last_runs().into_iter().find(|r| r.program == id).unwrap();
        assert_eq!(last.error.as_deref(), Some(failed.to_string().as_str()));
        let text = render_metrics();
        for line in [
            "reckon_reconcile_runs_total{program=\"metrics-test-program\",kind=\"incremental\",outcome=\"ok\"} 1",
            "reckon_reconcile_runs_total{program=\"metrics-test-program\",kind=\"incremental\",outcome=\"failed\"} 1",
            "reckon_reconcile_claims_judged_total{program=\"metrics-test-program\"} 7",
            "reckon_reconcile_decisions_changed_total{program=\"metrics-test-program\"} 2",
            "reckon_reconcile_last_run_seconds{program=\"metrics-test-program\"} 0.005",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
    }
}
