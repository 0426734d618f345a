//! The `/status` document and its text rendering for `reckon status`.

use crate::schedule::{ConnectorStatus, Daemon};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// What `/status` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// The daemon's version and the commit it was built from
    /// ([`crate::VERSION`]), so a command of another release can tell (QA33-A
    /// L1, L3). Null from a daemon of before 2026-12-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The config file it runs with.
    pub config: String,
    /// The data directory it holds, absolute (so `reckon status` can tell
    /// another config's daemon answering on its `listen`). Null from a
    /// daemon of before 2026-12-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Bytes the store uses on disk.
    pub store_size_bytes: Option<u64>,
    /// Per connector, in id order.
    pub connectors: Vec<ConnectorStatus>,
    /// Postback endpoints, in id order.
    #[serde(default)]
    pub postbacks: Vec<crate::server::postback::EndpointStatus>,
    /// Each program's last reconcile run since the daemon started, in id
    /// order.
    #[serde(default)]
    pub programs: Vec<crate::reconcile::LastRun>,
    /// Each configured program's stored decisions, in config order:
    /// reconciled, or why its next run must be a full one (and so runs
    /// after the next sync), with its last run's instant and payable count
    /// when its state records them. Read from each program's run state
    /// (one key), not from its decisions.
    #[serde(default)]
    pub reconciliation: Vec<crate::reconcile::ProgramStanding>,
    /// Each program's scheduled statement drafts since the daemon started
    /// (those with a `draft_schedule` that came due), in id order.
    #[serde(default)]
    pub drafts: Vec<crate::payout::hook::DraftRuns>,
    /// Statements runs cut short (a kill, a crash) whose files the daemon
    /// could not complete, by program and period, each with why and what
    /// to run (QA42b B-M1); tried again after each sync. Empty from a
    /// daemon of before 2026-12-02.
    #[serde(default)]
    pub cut_short: Vec<crate::payout::hook::CutShort>,
    /// Why the store refuses every write, once it does (the daemon stops
    /// then; a restart recovers): [`crate::store::Store::failure`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_failure: Option<String>,
    /// The config the daemon runs: when it was loaded, the last SIGHUP
    /// (`ok` or `rejected`) and whether the file differs from it. Null
    /// from a daemon of before 2026-11-30.
    #[serde(default)]
    pub config_state: Option<crate::schedule::config_state::ConfigStatus>,
    /// Each program with statements (`[programs.commission]`), in config
    /// order: its `draft_schedule`, next fire, and when the schedule last
    /// made its drafts, as stored (so also from before a restart).
    #[serde(default)]
    pub draft_schedules: Vec<DraftSchedule>,
    /// The `[kpi.summaries]` schedule, next fire and last write, as
    /// stored; null without `[kpi]`.
    #[serde(default)]
    pub kpi_summaries: Option<SummarySchedule>,
}

/// A program's scheduled statement drafts: its config and what the store
/// says of its last run (new-user QA16 N7: nothing showed until a draft
/// run in this process, so `drafts: []` after a restart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DraftSchedule {
    /// Program id.
    pub program: String,
    /// Its `draft_schedule`; null: drafts are made on demand only.
    pub schedule: Option<String>,
    /// The timezone the schedule is read in (the program's).
    pub timezone: String,
    /// The schedule's next fire after now.
    pub next_fire: Option<DateTime<Utc>>,
    /// A fire that came after the drafts were last made (or in the last
    /// day, the first time): they are made after the next sync.
    pub due_since: Option<DateTime<Utc>>,
    /// When the schedule last made the drafts, as stored; null: no run is
    /// recorded (`statements generate` by hand is not one).
    pub last_made: Option<DateTime<Utc>>,
    /// The latest period recorded finalised; null: none (or a daemon of
    /// before 2026-12-02).
    #[serde(default)]
    pub last_finalised: Option<String>,
    /// The periods of the program's kind that ended after it and are not
    /// finalised, oldest first (QA44c C-L3: after a long outage nothing
    /// said which months still wait; they are finalised in order).
    #[serde(default)]
    pub ended_unfinalised: Vec<String>,
}

/// The latest period `records` hold finalised, and the periods of `kind`
/// that ended after it (before the one holding `today`) and are not
/// finalised, oldest first. Nothing when none is finalised: where the
/// program's periods begin is then unknown.
fn unfinalised(
    records: &[crate::payout::book::PeriodRecord],
    kind: crate::payout::config::PeriodKind,
    today: chrono::NaiveDate,
) -> (Option<String>, Vec<String>) {
    use crate::payout::model::Status;
    use crate::payout::period::Period;
    let finalised = |r: &&crate::payout::book::PeriodRecord| r.status == Status::Finalised;
    let Some(last) = records
        .iter()
        .filter(finalised)
        .max_by_key(|r| r.period_start)
    else {
        return (None, Vec::new());
    };
    let Some(after) = Period::of_any_kind(&last.period) else {
        return (Some(last.period.clone()), Vec::new());
    };
    let done: std::collections::BTreeSet<&str> = (records.iter().filter(finalised))
        .map(|r| r.period.as_str())
        .collect();
    let mut open = Vec::new();
    // A period starting before the latest finalised one's start cannot be
    // generated (payout refuses it): after a change of period kind the
    // first that can is later (QA45 R-M1: weekly W48 finalised, then
    // monthly, listed 2026-11, which `finalize` refused).
    let mut p = Period::containing(kind, after.end);
    while p.start < last.period_start {
        p = p.next();
    }
    while p.end <= today {
        let name = p.to_string();
        if !done.contains(name.as_str()) {
            open.push(name);
        }
        p = p.next();
    }
    (Some(last.period.clone()), open)
}

/// The KPI summaries' schedule (`[kpi.summaries]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SummarySchedule {
    /// Whether the daemon writes them.
    pub enabled: bool,
    /// The schedule.
    pub schedule: String,
    /// The reporting timezone it is read in.
    pub timezone: String,
    /// The next fire after now (null when disabled).
    pub next_fire: Option<DateTime<Utc>>,
    /// A fire that came after the last write (or in the last day, the
    /// first time): they are written after the next sync.
    pub due_since: Option<DateTime<Utc>>,
    /// When they were last written on schedule, as stored; null: none
    /// recorded.
    pub last_written: Option<DateTime<Utc>>,
    /// The daemon's runs of them since it started: failures in a row and
    /// the last one's reason (ops QA32a F3). Zeros from a daemon of before
    /// 2026-12-01.
    #[serde(default)]
    pub runs: crate::kpi::hook::KpiRuns,
}

/// Each program's [`DraftSchedule`] at `now`, read from `config` and
/// `store` (one key per program).
pub fn draft_schedules(
    store: &crate::store::Store,
    config: &crate::config::Config,
    now: DateTime<Utc>,
) -> Vec<DraftSchedule> {
    use crate::payout::book::StatementBook as _;
    let book = crate::payout::book::StoreBook::open_as_is(store)
        .map_err(|e| tracing::debug!(error = %e, "/status: statements tree not read"))
        .ok();
    config
        .programs
        .iter()
        .filter_map(|p| {
            let commission = p.commission.as_ref()?;
            let tz = p.calendar();
            let key = crate::payout::book::key(&[crate::payout::hook::DRAFTS_LAST_RUN, &p.id]);
            let last_made: Option<DateTime<Utc>> = book
                .as_ref()
                .and_then(|b| b.get(&key).ok().flatten())
                .and_then(|v| crate::payout::book::decode(&key, v).ok());
            let schedule = commission
                .draft_schedule
                .as_deref()
                .and_then(|e| e.parse::<crate::config::CronSchedule>().ok());
            let (next_fire, due_since) = match &schedule {
                Some(s) => (
                    s.next_after(tz, now),
                    due_since(|after| s.next_after(tz, after), last_made, now),
                ),
                None => (None, None),
            };
            let records = (book.as_ref())
                .and_then(|b| crate::payout::lifecycle::period_records(b, &p.id).ok())
                .unwrap_or_default();
            let today = now.with_timezone(&tz).date_naive();
            let (last_finalised, ended_unfinalised) =
                unfinalised(&records, commission.period, today);
            Some(DraftSchedule {
                program: p.id.clone(),
                schedule: commission.draft_schedule.clone(),
                timezone: tz.name().to_owned(),
                next_fire,
                due_since,
                last_made,
                last_finalised,
                ended_unfinalised,
            })
        })
        .collect()
}

/// The KPI summaries' [`SummarySchedule`] at `now`; none without `[kpi]`.
pub fn summary_schedule(
    store: &crate::store::Store,
    config: &crate::config::Config,
    now: DateTime<Utc>,
) -> Option<SummarySchedule> {
    let kpi = config.kpi.as_ref()?;
    let zone = crate::kpi::ReportingZone::from_tz(config.daemon.timezone.0);
    let last_written = crate::kpi::hook::last_written(store);
    let next = |after| {
        crate::kpi::summary::next_run(&kpi.summaries, zone, after)
            .ok()
            .flatten()
    };
    Some(SummarySchedule {
        enabled: kpi.summaries.enabled,
        schedule: kpi.summaries.schedule.clone(),
        timezone: zone.tz().name().to_owned(),
        next_fire: next(now),
        due_since: due_since(next, last_written, now),
        last_written,
        runs: crate::kpi::hook::kpi_runs(),
    })
}

/// Since when a schedule's hook is due (it runs after the next sync): the
/// first fire after its last run; never run, the hooks take a fire of the
/// last day, and this is the latest one, so it does not move with the
/// clock (QA17 NEW-3: "DUE since" crept forward for a schedule firing
/// more than daily). `next(t)` is the schedule's first fire after `t`.
fn due_since(
    next: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
    last_run: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if let Some(last) = last_run {
        return next(last).filter(|due| *due <= now);
    }
    let mut latest = None;
    let mut after = now - chrono::Duration::days(1);
    // At most one fire a minute: 1440 steps.
    while let Some(due) = next(after).filter(|due| *due <= now) {
        latest = Some(due);
        after = due;
    }
    latest
}

/// `dir` as one absolute path: resolved through links when it exists, so
/// two spellings of one directory compare equal.
pub fn absolute_dir(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

impl StatusReport {
    /// The status of a running daemon.
    pub fn of(d: &Daemon) -> StatusReport {
        StatusReport {
            started_at: d.started_at,
            version: Some(crate::VERSION.to_owned()),
            config: d.config_path.display().to_string(),
            data_dir: Some(absolute_dir(d.store.dir()).display().to_string()),
            store_size_bytes: d.store.size_on_disk().ok(),
            connectors: d.status_snapshot(),
            postbacks: d.postbacks.status(),
            programs: crate::reconcile::last_runs(),
            reconciliation: reconciliation(d),
            drafts: crate::payout::hook::draft_runs(),
            cut_short: crate::payout::hook::cut_short(),
            store_failure: d.store.failure(),
            config_state: Some(d.config_state.status(&d.config_path)),
            draft_schedules: draft_schedules(&d.store, &d.runtime().config, Utc::now()),
            kpi_summaries: summary_schedule(&d.store, &d.runtime().config, Utc::now()),
        }
    }

    /// Human-readable text: one block per connector, then postbacks,
    /// programs and drafts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let t = |d: Option<DateTime<Utc>>| {
            d.map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            out,
            "reckon daemon: up since {}, config {}, store {} bytes{}",
            t(Some(self.started_at)),
            self.config,
            self.store_size_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "?".into()),
            (self.version.as_deref()).map_or(String::new(), |v| format!(", reckon {v}"))
        );
        if let Some(f) = &self.store_failure {
            let _ = writeln!(
                out,
                "STORE FAILED: {f}\n  the store refuses every write until reckon restarts; the daemon is stopping"
            );
        }
        if let Some(c) = &self.config_state {
            render_config(&mut out, c, t);
        }
        for c in &self.connectors {
            let running;
            let state = if c.removed {
                "running, removed from the config by a reload: its run goes on to its end"
            } else if !c.enabled {
                "disabled"
            } else if c.running {
                running = c.running_since.map_or_else(
                    || "running".to_owned(),
                    |at| format!("running since {}", t(Some(at))),
                );
                &running
            } else if c.queued {
                "queued (waiting for a sync slot, `max_concurrent_syncs`)"
            } else {
                "idle"
            };
            let _ = writeln!(
                out,
                "\n{} ({}): {state}, schedule `{}` in {}",
                c.id, c.plugin, c.schedule, c.timezone
            );
            // How far the run in progress has got (ops QA34 D-L1, B-L2).
            if let Some(r) = c.current_run.as_ref().filter(|_| c.running) {
                let days = match (r.from, r.to) {
                    (Some(from), Some(to)) => format!("{from}..{to}, "),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  this run:  {days}window {}/{}, {} pages so far; records {} new, {} changed, {} unchanged",
                    r.window, r.windows, r.pages, r.records_new, r.records_changed, r.records_unchanged
                );
            }
            match &c.last_run {
                Some(r) => {
                    let _ = writeln!(
                        out,
                        "  last run:  {} → {} {} ({} pages, {} requests{}; records {} new, {} changed, {} unchanged)",
                        t(Some(r.started_at)),
                        t(r.ended_at),
                        r.outcome.as_str(),
                        r.pages,
                        r.requests,
                        r.waits_text(),
                        r.records_new,
                        r.records_changed,
                        r.records_unchanged
                    );
                }
                None => {
                    let _ = writeln!(out, "  last run:  never");
                }
            }
            // How long it has been failing (soak QA18 F5).
            if c.last_run
                .as_ref()
                .is_some_and(|r| r.outcome != crate::store::RunOutcome::Success)
            {
                let ok = c
                    .last_success_at
                    .map_or_else(|| "never".to_owned(), |s| t(Some(s)));
                let _ = writeln!(out, "  last ok:   {ok}");
            }
            let _ = writeln!(out, "  records:   {}", c.records);
            let _ = writeln!(out, "  next fire: {}", local_fire(c.next_fire, &c.timezone));
            if let Some(r) = c.next_retry {
                let _ = writeln!(
                    out,
                    "  retry at:  {} (failure {} in a row)",
                    t(Some(r)),
                    c.consecutive_failures
                );
            }
            if let Some(h) = c.held_until {
                let _ = writeln!(
                    out,
                    "  held until: {} (the platform asked to wait: no run starts before then)",
                    t(Some(h))
                );
            }
            // A backfill cut off before its end (ops QA34 B-M3).
            if let Some(b) = &c.cut_off_backfill {
                let _ = if b.runs_again {
                    writeln!(
                        out,
                        "  backfill:  {}..{} was cut off before its end; the daemon runs its days again at the next fire (or its next start); `reckon sync {}` without dates drops it",
                        b.from, b.to, c.id
                    )
                } else {
                    writeln!(
                        out,
                        "  backfill:  {}..{} was cut off before its end and is NOT run again: days of it may be missing; run `{}`",
                        b.from, b.to, b.command
                    )
                };
            }
            if let Some(e) = &c.last_error {
                // A failure that is not retried (a refused credential)
                // still says how many in a row (QA9 F5).
                let row = if c.next_retry.is_none() && c.consecutive_failures > 0 {
                    format!(" (failure {} in a row)", c.consecutive_failures)
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  last error{row}: {e}");
            }
        }
        if !self.postbacks.is_empty() {
            let _ = writeln!(out, "\npostback endpoints:");
            for p in &self.postbacks {
                match &p.error {
                    None => {
                        let _ = writeln!(out, "  /postback/{} ({} auth): ok", p.id, p.auth);
                    }
                    Some(e) => {
                        let _ = writeln!(
                            out,
                            "  /postback/{} ({} auth): DISABLED, answers 503: {e}",
                            p.id, p.auth
                        );
                    }
                }
            }
        }
        if !self.reconciliation.is_empty() {
            let _ = writeln!(out, "\nreconciliation (stored decisions):");
            for p in &self.reconciliation {
                let _ = writeln!(out, "  {}", standing_line(p, t));
            }
            if self.reconciliation.iter().any(|p| p.needs_run) {
                let _ = writeln!(
                    out,
                    "  (a program that NEEDS A RUN is reconciled after the daemon's next sync, even one that changes nothing, before its drafts and the KPI summaries; or run `reckon reconcile`)"
                );
            }
        }
        if !self.programs.is_empty() {
            let _ = writeln!(out, "\nprograms (last reconcile since start):");
            for p in &self.programs {
                // "payable" of a run counts the claims it judged, not the
                // program's: say so, and give the program's when known.
                let outcomes = p.outcomes_changed.map_or_else(String::new, |n| {
                    format!(" ({n} with a new outcome, basis or payable flag)")
                });
                let total = p
                    .payable_total
                    .map_or_else(String::new, |n| format!("; {n} payable in the program"));
                let _ = match &p.error {
                    None => writeln!(
                        out,
                        "  {}: {} {} run in {}.{:03} s: {} claims judged ({} of them payable), {} decisions changed{outcomes}{total}",
                        p.program,
                        t(Some(p.at)),
                        if p.full { "full" } else { "incremental" },
                        p.millis / 1000,
                        p.millis % 1000,
                        p.claims_judged,
                        p.payable,
                        p.decisions_changed,
                    ),
                    Some(e) => writeln!(out, "  {}: {} FAILED: {e}", p.program, t(Some(p.at))),
                };
            }
        }
        self.render_drafts(&mut out, t);
        if !self.cut_short.is_empty() {
            let _ = writeln!(
                out,
                "\nstatements runs cut short, not completed (tried again after each sync):"
            );
            for c in &self.cut_short {
                let _ = writeln!(out, "  {} {}: {}", c.program, c.period, c.error);
            }
        }
        if let Some(k) = &self.kpi_summaries {
            let failing = k.runs.last_error.as_ref();
            if k.enabled {
                let _ = writeln!(
                    out,
                    "\nkpi summaries: schedule `{}` in {}, {}; last written {}",
                    k.schedule,
                    k.timezone,
                    next_or_due(
                        k.next_fire,
                        &k.timezone,
                        k.due_since,
                        k.last_written,
                        "written",
                        failing.is_some(),
                        t
                    ),
                    k.last_written
                        .map_or_else(|| "never (none recorded)".to_owned(), |w| t(Some(w)))
                );
            } else {
                let _ = writeln!(out, "\nkpi summaries: disabled");
            }
            // Ops QA32a F3: writes failing at every sync showed only in the
            // log.
            if let Some(e) = failing {
                let _ = writeln!(
                    out,
                    "  FAILING ({} in a row, last {}): {e}",
                    k.runs.consecutive_failures,
                    t(k.runs.last_error_at)
                );
            }
        }
        out
    }

    /// "statement drafts": each program's schedule with its next fire and
    /// last run as stored, and this process's failures of it; a daemon of
    /// before `draft_schedules` sends only the runs since its start.
    fn render_drafts(&self, out: &mut String, t: impl Fn(Option<DateTime<Utc>>) -> String) {
        let failing = |d: &crate::payout::hook::DraftRuns| {
            d.runs.last_error.as_ref().map(|e| {
                format!(
                    "FAILING ({} in a row, last {}; last made {}): {e}",
                    d.runs.consecutive_failures,
                    t(d.runs.last_error_at),
                    t(d.runs.last_ok_at)
                )
            })
        };
        if self.draft_schedules.is_empty() {
            if !self.drafts.is_empty() {
                let _ = writeln!(out, "\nstatement drafts (draft_schedule, since start):");
            }
            for d in &self.drafts {
                let line = failing(d).unwrap_or_else(|| format!("made {}", t(d.runs.last_ok_at)));
                let _ = writeln!(out, "  {}: {line}", d.program);
            }
            return;
        }
        let _ = writeln!(out, "\nstatement drafts (draft_schedule):");
        for s in &self.draft_schedules {
            let Some(expr) = &s.schedule else {
                let _ = writeln!(out, "  {}: on demand only (no draft_schedule)", s.program);
                render_unfinalised(out, s);
                continue;
            };
            let failure = self
                .drafts
                .iter()
                .find(|d| d.program == s.program)
                .and_then(failing);
            let _ = writeln!(
                out,
                "  {}: schedule `{expr}` in {}, {}; last made {}",
                s.program,
                s.timezone,
                next_or_due(
                    s.next_fire,
                    &s.timezone,
                    s.due_since,
                    s.last_made,
                    "made",
                    failure.is_some(),
                    &t
                ),
                s.last_made
                    .map_or_else(|| "never (none recorded)".to_owned(), |m| t(Some(m)))
            );
            if let Some(f) = failure {
                let _ = writeln!(out, "    {f}");
            }
            render_unfinalised(out, s);
        }
        // A program's failures from before a reload that removed it.
        for d in &self.drafts {
            if !self.draft_schedules.iter().any(|s| s.program == d.program) {
                if let Some(f) = failing(d) {
                    let _ = writeln!(out, "  {} (no longer configured): {f}", d.program);
                }
            }
        }
    }
}

/// `next 2026-12-01 05:00:00 UTC`, or, when a fire came since the last
/// run, that it is due and waits for a sync.
/// Under a program's drafts line: the periods that ended and wait to be
/// finalised, in order (the first and last of a long run).
fn render_unfinalised(out: &mut String, s: &DraftSchedule) {
    let (Some(last), [first, .., end] | [first @ end]) =
        (&s.last_finalised, s.ended_unfinalised.as_slice())
    else {
        return;
    };
    let n = s.ended_unfinalised.len();
    let which = match n {
        1 => first.clone(),
        2 => format!("{first} and {end}"),
        _ => format!("{first} … {end} ({n} periods)"),
    };
    let _ = writeln!(
        out,
        "    ended and not finalised since {last}: {which}; finalise them in order (`reckon statements finalize --program {} --period {first}`)",
        s.program
    );
}

fn next_or_due(
    next: Option<DateTime<Utc>>,
    tz: &str,
    due: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    done: &str,
    failing: bool,
    t: impl Fn(Option<DateTime<Utc>>) -> String,
) -> String {
    // Not "made after the next sync" while each try fails (ops QA32a F3).
    let retried = "tried again after the next sync: FAILING, see below";
    match (due, last) {
        (Some(due), Some(_)) => format!(
            "DUE since {} ({}), then next {}",
            t(Some(due)),
            if failing {
                retried.to_owned()
            } else {
                format!("{done} after the next sync")
            },
            local_fire(next, tz)
        ),
        // Never run: the fire is the latest of the last day, which may be
        // before the schedule was written (QA18 R1).
        (Some(due), None) => format!(
            "DUE: never {done} ({}), then next {}",
            if failing {
                format!("for the fire of {}; {retried}", t(Some(due)))
            } else {
                format!(
                    "{done} after the next sync, for the fire of {}",
                    t(Some(due))
                )
            },
            local_fire(next, tz)
        ),
        (None, _) => format!("next {}", local_fire(next, tz)),
    }
}

/// A schedule's next fire in the timezone the schedule is read in, then in
/// UTC (QA24-B F5: only UTC was shown, while `config check` shows local
/// times): `2027-01-01 00:00:00 +13:45 (2026-12-31 10:15:00 UTC)`; UTC
/// alone for a UTC schedule; `-` for none.
fn local_fire(d: Option<DateTime<Utc>>, tz: &str) -> String {
    let Some(d) = d else {
        return "-".into();
    };
    let utc = d.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    match tz.parse::<chrono_tz::Tz>() {
        Ok(zone) if zone != chrono_tz::UTC => format!(
            "{} ({utc})",
            d.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %:z")
        ),
        _ => utc,
    }
}

/// The "config:" block: when the running config was loaded, the last
/// reload and whether the file differs from what runs.
fn render_config(
    out: &mut String,
    c: &crate::schedule::config_state::ConfigStatus,
    t: impl Fn(Option<DateTime<Utc>>) -> String,
) {
    use crate::schedule::config_state::ReloadOutcome;
    let how = match &c.last_reload {
        Some(r) if r.outcome == ReloadOutcome::Ok => "by the last reload",
        Some(_) if c.reloads_ok > 0 => "by an earlier reload",
        _ => "at start",
    };
    let _ = writeln!(out, "config: loaded {} {how}", t(Some(c.loaded_at)));
    if let Some(r) = &c.last_reload {
        match r.outcome {
            ReloadOutcome::Rejected => {
                let _ = writeln!(
                    out,
                    "  last reload: {} REJECTED, {} error(s); the config loaded before keeps running",
                    t(Some(r.at)),
                    r.errors
                );
                if let Some(e) = &r.first_error {
                    let _ = writeln!(out, "    first: {e}");
                }
            }
            outcome => {
                let _ = writeln!(out, "  last reload: {} {}", t(Some(r.at)), outcome.as_str());
            }
        }
        if !r.restart_needed.is_empty() {
            let _ = writeln!(
                out,
                "  waiting for a restart: {} (the daemon runs with the values it started with)",
                r.restart_needed.join(", ")
            );
        }
    }
    let rejected = c
        .last_reload
        .as_ref()
        .filter(|r| r.outcome == ReloadOutcome::Rejected);
    // Refused as emptied: `reckon config check` passes such a file (ops
    // QA32a L2: the advice sent the operator to it).
    let emptied = rejected.is_some_and(|r| {
        r.first_error
            .as_deref()
            .is_some_and(|e| e.contains(crate::schedule::EMPTIED_FILE))
    });
    // Refused only for an `env:` secret the daemon's environment lacks:
    // the file is fine and a reload cannot help (QA48 I-L2).
    let env_only = rejected.is_some_and(|r| {
        r.errors == 1
            && r.first_error
                .as_deref()
                .is_some_and(|e| e.contains("the running daemon's environment does not have it"))
    });
    let rejected = rejected.is_some();
    match c.file_differs {
        Some(true) if env_only => {
            let _ = writeln!(
                out,
                "  the file differs from the running config and is refused only for a variable the daemon's environment lacks (above): set it where the daemon is started and restart the daemon; a reload cannot add it, and `reckon config check` in your shell sees your environment, not the daemon's"
            );
        }
        Some(true) if emptied => {
            let _ = writeln!(
                out,
                "  the file differs from the running config and has no connectors and no programs: `reckon config check` accepts such a file, a reload does not; restore the file and reload (SIGHUP), or, if an empty config is meant, restart the daemon, which then runs with it"
            );
        }
        Some(true) if rejected => {
            let _ = writeln!(
                out,
                "  the file differs from the running config: fix it (`reckon config check` lists every error), then reload (SIGHUP)"
            );
        }
        Some(true) => {
            let _ = writeln!(
                out,
                "  the file has changed since: `reckon config check`, then reload (SIGHUP) to run it (a change of a `[daemon]` setting read at start, such as `listen`, needs a restart)"
            );
        }
        Some(false) => {}
        None => {
            let _ = writeln!(out, "  the file cannot be read now: not compared");
        }
    }
}

/// Each configured program's [`crate::reconcile::standing`]: a key read
/// each, taking no lock a sync or a reconcile run holds.
fn reconciliation(d: &Daemon) -> Vec<crate::reconcile::ProgramStanding> {
    let runtime = d.runtime();
    runtime
        .config
        .programs
        .iter()
        .filter_map(|p| {
            crate::reconcile::standing(&d.store, p, runtime.fx_fingerprint.as_deref())
                .map_err(
                    |e| tracing::debug!(program = %p.id, error = %e, "/status: run state not read"),
                )
                .ok()
        })
        .collect()
}

/// One program's line under "reconciliation", e.g. `shop: reconciled;
/// last run: judged at 2026-11-29 08:00:00 UTC, 570 payable in the
/// program, up to store change 1234`.
fn standing_line(
    p: &crate::reconcile::ProgramStanding,
    t: impl Fn(Option<DateTime<Utc>>) -> String,
) -> String {
    let mut line = format!("{}: ", p.program);
    match (p.needs_run, p.running_since) {
        (true, Some(at)) => {
            let _ = write!(line, "NEEDS A RUN (under way since {}): ", t(Some(at)));
        }
        (true, None) => line.push_str("NEEDS A RUN: "),
        (false, _) => {}
    }
    line.push_str(p.state.describe());
    if !p.decisions_read && p.state != crate::reconcile::Standing::Never {
        line.push_str("; until then `kpi` and `reconcile report` say it has not been reconciled");
    }
    let mut last = Vec::new();
    if let Some(at) = p.judged_at {
        last.push(format!("judged at {}", t(Some(at))));
    }
    if let Some(at) = p.store_as_of {
        last.push(format!("store as of {}", t(Some(at))));
    }
    if let Some(n) = p.payable {
        last.push(format!("{n} payable in the program"));
    }
    if let Some(seq) = p.last_seq {
        last.push(format!("up to store change {seq}"));
    }
    if !last.is_empty() {
        let _ = write!(line, "; last run: {}", last.join(", "));
    }
    if let (false, Some(at)) = (p.needs_run, p.running_since) {
        let _ = write!(line, "; a run is under way since {}", t(Some(at)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Soak QA 2026-11-29: with `max_concurrent_syncs = 1`, seven
    /// connectors waiting for the one slot all showed `running`.
    #[test]
    fn a_run_waiting_for_a_sync_slot_shows_as_queued() {
        let at = "2026-11-29T08:00:00Z".parse().unwrap();
        let connector = |id: &str, running: bool, queued: bool| crate::schedule::ConnectorStatus {
            id: id.into(),
            plugin: "example".into(),
            enabled: true,
            schedule: "*/15 * * * * *".into(),
            timezone: "UTC".into(),
            running,
            queued,
            ..Default::default()
        };
        let report = StatusReport {
            started_at: at,
            version: None,
            config: "reckon.toml".into(),
            data_dir: None,
            store_size_bytes: Some(1),
            connectors: vec![
                connector("a", true, false),
                connector("b", false, true),
                crate::schedule::ConnectorStatus {
                    removed: true,
                    ..connector("c", true, false)
                },
            ],
            postbacks: vec![],
            cut_short: vec![],
            store_failure: None,
            programs: vec![],
            reconciliation: vec![],
            drafts: vec![],
            config_state: None,
            draft_schedules: vec![],
            kpi_summaries: None,
        };
        let text = report.render();
        assert!(text.contains("a (example): running,"), "{text}");
        assert!(
            text.contains("b (example): queued (waiting for a sync slot, `max_concurrent_syncs`),"),
            "{text}"
        );
        // QA29-A L5: taken out by a reload while it runs.
        assert!(
            text.contains("c (example): running, removed from the config by a reload: its run goes on to its end,"),
            "{text}"
        );
    }

    #[test]
    fn programs_render_their_last_run_or_its_failure() {
        let at = "2026-11-29T08:00:00Z".parse().unwrap();
        let run = |program: &str, error: Option<&str>| crate::reconcile::LastRun {
            program: program.into(),
            at,
            millis: 1234,
            full: false,
            claims_judged: 12,
            decisions_changed: 3,
            payable: 2,
            error: error.map(str::to_owned),
            outcomes_changed: Some(1),
            payable_total: Some(20),
        };
        let report = StatusReport {
            started_at: at,
            version: None,
            config: "reckon.toml".into(),
            data_dir: None,
            store_size_bytes: Some(1),
            connectors: vec![],
            postbacks: vec![],
            cut_short: vec![],
            store_failure: None,
            config_state: None,
            draft_schedules: vec![],
            kpi_summaries: None,
            programs: vec![run("a", None), run("b", Some("store I/O failed"))],
            reconciliation: vec![],
            drafts: vec![
                crate::payout::hook::DraftRuns {
                    program: "a".into(),
                    runs: crate::schedule::hooks::HookRuns {
                        last_ok_at: Some(at),
                        last_error_at: None,
                        last_error: None,
                        consecutive_failures: 0,
                        ok_total: 3,
                        failed_total: 0,
                        ..crate::schedule::hooks::HookRuns::NONE
                    },
                },
                crate::payout::hook::DraftRuns {
                    program: "b".into(),
                    runs: crate::schedule::hooks::HookRuns {
                        last_ok_at: None,
                        last_error_at: Some(at),
                        last_error: Some("program `b`: the payout currency is EUR".into()),
                        consecutive_failures: 2,
                        ok_total: 0,
                        failed_total: 2,
                        ..crate::schedule::hooks::HookRuns::NONE
                    },
                },
            ],
        };
        let text = report.render();
        // QA9 F5: a failure that is not retried still says how many.
        let failed = crate::test_support::run_record(
            "impact",
            at,
            crate::store::RunOutcome::Failed,
            Some("credentials refused (HTTP 401)"),
            Some(false),
        );
        let failing = |last_success_at| {
            StatusReport {
                connectors: vec![ConnectorStatus {
                    id: "impact".into(),
                    enabled: true,
                    consecutive_failures: 2,
                    last_error: Some("credentials refused (HTTP 401)".into()),
                    last_run: Some(failed.clone()),
                    last_success_at,
                    ..ConnectorStatus::default()
                }],
                ..report.clone()
            }
            .render()
        };
        let refused = failing(Some(at - chrono::Duration::hours(5)));
        assert!(
            refused.contains("  last error (failure 2 in a row): credentials refused (HTTP 401)"),
            "{refused}"
        );
        // How long it has been failing (soak QA18 F5).
        assert!(
            refused.contains("  last ok:   2026-11-29 03:00:00 UTC\n"),
            "{refused}"
        );
        assert!(failing(None).contains("  last ok:   never\n"));
        assert!(!text.contains("last ok"), "{text}");
        // QA9 F2: refused drafts show in `reckon status`, not only the log.
        assert!(
            text.contains("statement drafts (draft_schedule, since start):\n  a: made 2026-11-29 08:00:00 UTC\n  b: FAILING (2 in a row, last 2026-11-29 08:00:00 UTC; last made -): program `b`: the payout currency is EUR"),
            "{text}"
        );
        // The run's payable count is of the claims it judged (QA 2026-11-29:
        // "2 payable" read as the program's); the program's follows.
        assert!(text.contains(
            "  a: 2026-11-29 08:00:00 UTC incremental run in 1.234 s: 12 claims judged (2 of them payable), 3 decisions changed (1 with a new outcome, basis or payable flag); 20 payable in the program"
        ), "{text}");
        assert!(
            text.contains("  b: 2026-11-29 08:00:00 UTC FAILED: store I/O failed"),
            "{text}"
        );
        // A daemon of before 2026-11-29 sends neither count: not printed.
        let older = r#"{"program":"c","at":"2026-11-29T08:00:00Z","full":true,"claims_judged":3,"decisions_changed":3,"payable":1,"error":null}"#;
        let older: crate::reconcile::LastRun = serde_json::from_str(older).unwrap();
        let text = StatusReport {
            cut_short: vec![],
            store_failure: None,
            programs: vec![older],
            drafts: vec![],
            ..report
        }
        .render();
        assert!(
            text.contains("3 claims judged (1 of them payable), 3 decisions changed\n"),
            "{text}"
        );
        // A daemon of before `programs` answers without it.
        let old = r#"{"started_at":"2026-11-29T08:00:00Z","config":"c","store_size_bytes":null,"connectors":[]}"#;
        let parsed: StatusReport = serde_json::from_str(old).unwrap();
        assert!(parsed.programs.is_empty());
        // QA33-A L1: the daemon's release is on the first line; one of
        // before it (no `version`) reads as before.
        assert_eq!(parsed.version, None);
        assert!(parsed.render().starts_with(
            "reckon daemon: up since 2026-11-29 08:00:00 UTC, config c, store ? bytes\n"
        ));
        let versioned = StatusReport {
            version: Some("0.1.0 (abc1234 2026-12-01 20:39 UTC)".into()),
            ..parsed
        };
        assert!(versioned.render().starts_with(
            "reckon daemon: up since 2026-11-29 08:00:00 UTC, config c, store ? bytes, reckon 0.1.0 (abc1234 2026-12-01 20:39 UTC)\n"
        ));
    }

    /// Upgrade QA F1: `/status` showed nothing of a program whose decisions
    /// a run must redo; each configured program's standing is shown now.
    #[test]
    fn reconciliation_shows_each_programs_standing() {
        use crate::reconcile::{ProgramStanding, Standing};
        let at: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        let standing = |program: &str, state: Standing| ProgramStanding {
            program: program.into(),
            state,
            needs_run: state.needs_run(),
            decisions_read: true,
            judged_at: Some(at),
            store_as_of: None,
            payable: Some(570),
            last_seq: Some(1234),
            running_since: None,
        };
        let report = StatusReport {
            started_at: at,
            version: None,
            config: "reckon.toml".into(),
            data_dir: None,
            store_size_bytes: Some(1),
            connectors: vec![],
            postbacks: vec![],
            programs: vec![],
            reconciliation: vec![
                standing("northwind", Standing::Reconciled),
                ProgramStanding {
                    decisions_read: false,
                    judged_at: None,
                    payable: None,
                    ..standing("upgraded", Standing::OlderLayout)
                },
                standing("rules", Standing::OlderRules),
                standing("edited", Standing::ConfigChanged),
                standing("rates", Standing::FxChanged),
                ProgramStanding {
                    store_as_of: Some("2026-10-31T23:59:59Z".parse().unwrap()),
                    ..standing("replayed", Standing::AsOf)
                },
                ProgramStanding {
                    decisions_read: false,
                    judged_at: None,
                    payable: None,
                    last_seq: None,
                    running_since: Some(at),
                    ..standing("new", Standing::Never)
                },
            ],
            drafts: vec![],
            cut_short: vec![],
            store_failure: None,
            config_state: None,
            draft_schedules: vec![],
            kpi_summaries: None,
        };
        insta::assert_snapshot!(report.render());
        // JSON: one entry per program, `state` in snake case.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["reconciliation"][1]["state"], "older_layout");
        assert_eq!(json["reconciliation"][1]["needs_run"], true);
        assert_eq!(
            json["reconciliation"][0]["judged_at"],
            "2026-11-29T08:00:00Z"
        );
        // A daemon of before `reconciliation` answers without it; a newer
        // one may name a state this version does not know.
        let old = r#"{"started_at":"2026-11-29T08:00:00Z","config":"c","store_size_bytes":null,"connectors":[]}"#;
        let parsed: StatusReport = serde_json::from_str(old).unwrap();
        assert!(parsed.reconciliation.is_empty());
        let newer: ProgramStanding = serde_json::from_str(
            r#"{"program":"p","state":"reshuffled","needs_run":true,"decisions_read":true,"future_field":1}"#,
        )
        .unwrap();
        assert_eq!(newer.state, Standing::Unknown);
    }

    /// A config with two programs (one with a `draft_schedule`) and KPI
    /// summaries, its directories in `dir`.
    fn scheduled_config(dir: &std::path::Path) -> crate::config::Config {
        let text = format!(
            r#"[daemon]
data_dir = "{0}/data"
output_dir = "{0}/out"

[[connectors]]
id = "net"
plugin = "example"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "net2"
plugin = "example"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "shop2"
plugin = "example"
schedule = "0 * * * *"
enabled = false

[[programs]]
id = "acme"
currency = "USD"
claims = ["net"]
orders = ["shop"]

[programs.commission]
payout_currency = "USD"
timezone = "America/New_York"
draft_schedule = "0 5 * * *"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"

[[programs]]
id = "manual"
currency = "USD"
claims = ["net2"]
orders = ["shop2"]

[programs.commission]
payout_currency = "USD"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"

[kpi]
currency = "USD"

[kpi.summaries]
schedule = "0 6 * * *"
"#,
            dir.display()
        );
        crate::config::parse(&text, &dir.join("reckon.toml").display().to_string()).unwrap()
    }

    /// QA17 NEW-3: never run, "due since" was the first fire after a day
    /// ago, which moved with the clock for a schedule firing more often.
    #[test]
    fn a_schedule_never_run_is_due_since_its_latest_fire_of_the_last_day() {
        let now: DateTime<Utc> = "2026-11-30T12:10:00Z".parse().unwrap();
        let hourly = |after: DateTime<Utc>| {
            let next = after + chrono::Duration::hours(1);
            Some(next - chrono::Duration::seconds(next.timestamp().rem_euclid(3600)))
        };
        assert_eq!(
            due_since(hourly, None, now),
            Some("2026-11-30T12:00:00Z".parse().unwrap())
        );
        // Run since: the first fire after the run.
        let run: DateTime<Utc> = "2026-11-30T10:30:00Z".parse().unwrap();
        assert_eq!(
            due_since(hourly, Some(run), now),
            Some("2026-11-30T11:00:00Z".parse().unwrap())
        );
        assert_eq!(due_since(hourly, Some(now), now), None);
    }

    /// New-user QA16 N7: `/status` showed nothing of the draft and KPI
    /// summary schedules until one ran in this process (`drafts: []`
    /// after a restart). Now each is listed with its next fire and its
    /// last run as the store has it (the keys the hooks write).
    /// QA44c C-L3: back after 13 months, nothing said which months still
    /// waited to be finalised. The periods that ended after the latest
    /// finalised one are listed, oldest first, and said under the drafts.
    #[test]
    fn the_periods_that_ended_and_wait_to_be_finalised_are_listed_in_order() {
        use crate::payout::config::PeriodKind;
        use crate::payout::model::Status;
        let rec = crate::test_support::period_record;
        let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        let records = [
            rec("2026-09", Status::Finalised),
            rec("2026-10", Status::Finalised),
            rec("2026-11", Status::Draft),
        ];
        assert_eq!(
            unfinalised(&records, PeriodKind::Monthly, day("2026-12-02")),
            (Some("2026-10".into()), vec!["2026-11".into()])
        );
        assert_eq!(
            unfinalised(&records, PeriodKind::Monthly, day("2026-11-30")),
            (Some("2026-10".into()), vec![])
        );
        let (last, open) = unfinalised(&records, PeriodKind::Monthly, day("2028-01-06"));
        assert_eq!(open.len(), 14);
        assert_eq!(
            (open[0].as_str(), open[13].as_str()),
            ("2026-11", "2027-12")
        );
        assert_eq!(
            unfinalised(&records[2..], PeriodKind::Monthly, day("2028-01-06")),
            (None, vec![])
        );
        // QA45 R-M1: weekly W48 (from 11-23) finalised, then monthly: 2026-11
        // starts before it and can never be finalised; 2026-12 comes first.
        let mut w48 = rec("2026-11", Status::Finalised);
        w48.period = "2026-W48".into();
        w48.period_start = day("2026-11-23");
        let weekly = [w48];
        assert_eq!(
            unfinalised(&weekly, PeriodKind::Monthly, day("2026-12-02")),
            (Some("2026-W48".into()), vec![])
        );
        assert_eq!(
            unfinalised(&weekly, PeriodKind::Monthly, day("2027-01-02")),
            (Some("2026-W48".into()), vec!["2026-12".into()])
        );
        assert_eq!(
            unfinalised(&weekly, PeriodKind::SemiMonthly, day("2026-12-17")),
            (Some("2026-W48".into()), vec!["2026-12-H1".into()])
        );

        let mut out = String::new();
        let s = DraftSchedule {
            program: "acme".into(),
            schedule: None,
            timezone: "UTC".into(),
            next_fire: None,
            due_since: None,
            last_made: None,
            last_finalised: last,
            ended_unfinalised: open,
        };
        render_unfinalised(&mut out, &s);
        assert_eq!(
            out,
            "    ended and not finalised since 2026-10: 2026-11 … 2027-12 (14 periods); finalise them in order (`reckon statements finalize --program acme --period 2026-11`)\n"
        );
    }

    #[test]
    fn draft_and_summary_schedules_show_their_stored_last_run_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = scheduled_config(dir.path());
        let data = dir.path().join("data");
        // 07:00 New York, 12:00 UTC.
        let now: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
        let store = crate::store::Store::open(&data).unwrap();
        let drafts = draft_schedules(&store, &config, now);
        let acme = DraftSchedule {
            program: "acme".into(),
            schedule: Some("0 5 * * *".into()),
            timezone: "America/New_York".into(),
            next_fire: Some("2026-12-01T10:00:00Z".parse().unwrap()),
            // Never run: the fire of the last day is due.
            due_since: Some("2026-11-30T10:00:00Z".parse().unwrap()),
            last_made: None,
            last_finalised: None,
            ended_unfinalised: Vec::new(),
        };
        assert_eq!(drafts[0], acme);
        assert_eq!(
            (
                drafts[1].program.as_str(),
                &drafts[1].schedule,
                drafts[1].next_fire
            ),
            ("manual", &None, None)
        );
        let kpi = summary_schedule(&store, &config, now).unwrap();
        assert_eq!(kpi.next_fire, Some("2026-12-01T06:00:00Z".parse().unwrap()));
        assert_eq!(kpi.due_since, Some("2026-11-30T06:00:00Z".parse().unwrap()));
        assert_eq!((kpi.last_written, kpi.enabled), (None, true));

        // The hooks run (as after a sync), then the daemon restarts.
        assert_eq!(
            crate::payout::hook::run_due(&store, &config, now).unwrap(),
            ["acme"]
        );
        // (The reconcile hook first: summaries wait for every program.)
        let fx = crate::reconcile::fx_table(&config).unwrap();
        crate::reconcile::run(&store, &config.programs, &fx, now).unwrap();
        let summaries = config.kpi.clone().unwrap();
        assert!(
            crate::kpi::hook::run_if_due(&store, &config, &summaries, now)
                .unwrap()
                .is_some()
        );
        drop(store);
        let store = crate::store::Store::open(&data).unwrap();
        let later = now + chrono::Duration::hours(1);
        let drafts = draft_schedules(&store, &config, later);
        assert_eq!(
            drafts[0],
            DraftSchedule {
                due_since: None,
                last_made: Some(now),
                ..acme
            }
        );
        let kpi = summary_schedule(&store, &config, later).unwrap();
        assert_eq!((kpi.last_written, kpi.due_since), (Some(now), None));

        // Without [kpi]: none.
        let mut no_kpi = config.clone();
        no_kpi.kpi = None;
        assert_eq!(summary_schedule(&store, &no_kpi, later), None);
    }

    #[test]
    fn schedules_and_the_config_state_render() {
        use crate::schedule::config_state::{ConfigStatus, LastReload, ReloadOutcome};
        let at: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();
        let later: DateTime<Utc> = "2026-11-30T07:00:00Z".parse().unwrap();
        let rejected = LastReload {
            at: later,
            outcome: ReloadOutcome::Rejected,
            errors: 2,
            first_error: Some(
                "reckon.toml:57:12: `connectors[4].schedule`: invalid cron expression".into(),
            ),
            restart_needed: vec![],
        };
        let schedule = DraftSchedule {
            program: "acme".into(),
            schedule: Some("0 5 * * *".into()),
            timezone: "America/New_York".into(),
            next_fire: Some("2026-12-01T10:00:00Z".parse().unwrap()),
            due_since: None,
            last_made: Some(at),
            last_finalised: None,
            ended_unfinalised: Vec::new(),
        };
        let report = StatusReport {
            started_at: at,
            version: None,
            config: "reckon.toml".into(),
            data_dir: None,
            store_size_bytes: Some(1),
            connectors: vec![],
            postbacks: vec![],
            programs: vec![],
            reconciliation: vec![],
            drafts: vec![crate::payout::hook::DraftRuns {
                program: "beta".into(),
                runs: crate::schedule::hooks::HookRuns {
                    last_ok_at: None,
                    last_error_at: Some(later),
                    last_error: Some("program `beta`: the payout currency is EUR".into()),
                    consecutive_failures: 2,
                    ok_total: 0,
                    failed_total: 2,
                    ..crate::schedule::hooks::HookRuns::NONE
                },
            }],
            cut_short: vec![],
            store_failure: None,
            config_state: Some(ConfigStatus {
                loaded_at: at,
                last_reload: Some(rejected.clone()),
                file_differs: Some(true),
                reloads_ok: 0,
                reloads_rejected: 1,
            }),
            draft_schedules: vec![
                schedule.clone(),
                DraftSchedule {
                    program: "beta".into(),
                    next_fire: Some("2026-12-01T05:00:00Z".parse().unwrap()),
                    due_since: Some(at),
                    last_made: None,
                    timezone: "UTC".into(),
                    ..schedule.clone()
                },
                DraftSchedule {
                    program: "manual".into(),
                    schedule: None,
                    next_fire: None,
                    last_made: None,
                    ..schedule
                },
            ],
            kpi_summaries: Some(SummarySchedule {
                enabled: true,
                schedule: "0 6 * * *".into(),
                timezone: "UTC".into(),
                next_fire: Some("2026-12-01T06:00:00Z".parse().unwrap()),
                due_since: None,
                last_written: None,
                runs: Default::default(),
            }),
        };
        let text = report.render();
        assert!(
            text.contains(
                "config: loaded 2026-11-30 06:00:00 UTC at start\n  last reload: 2026-11-30 07:00:00 UTC REJECTED, 2 error(s); the config loaded before keeps running\n    first: reckon.toml:57:12: `connectors[4].schedule`: invalid cron expression\n  the file differs from the running config: fix it (`reckon config check` lists every error), then reload (SIGHUP)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "statement drafts (draft_schedule):\n  acme: schedule `0 5 * * *` in America/New_York, next 2026-12-01 05:00:00 -05:00 (2026-12-01 10:00:00 UTC); last made 2026-11-30 06:00:00 UTC\n  beta: schedule `0 5 * * *` in UTC, DUE: never made (for the fire of 2026-11-30 06:00:00 UTC; tried again after the next sync: FAILING, see below), then next 2026-12-01 05:00:00 UTC; last made never (none recorded)\n    FAILING (2 in a row, last 2026-11-30 07:00:00 UTC; last made -): program `beta`: the payout currency is EUR\n  manual: on demand only (no draft_schedule)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("kpi summaries: schedule `0 6 * * *` in UTC, next 2026-12-01 06:00:00 UTC; last written never (none recorded)\n"),
            "{text}"
        );
        // A good reload after it, which needs a restart for `listen`, and
        // a file unchanged since.
        let ok = StatusReport {
            config_state: Some(ConfigStatus {
                loaded_at: later,
                last_reload: Some(LastReload {
                    outcome: ReloadOutcome::Ok,
                    errors: 0,
                    first_error: None,
                    restart_needed: vec!["listen".into()],
                    ..rejected
                }),
                file_differs: Some(false),
                reloads_ok: 1,
                reloads_rejected: 1,
            }),
            ..report.clone()
        }
        .render();
        assert!(
            ok.contains("config: loaded 2026-11-30 07:00:00 UTC by the last reload\n  last reload: 2026-11-30 07:00:00 UTC ok\n  waiting for a restart: listen (the daemon runs with the values it started with)\n\n"),
            "{ok}"
        );
        // QA48 I-L2: refused only for a variable the daemon's environment
        // lacks: a restart, not a fix of the file and a reload.
        let env_only = StatusReport {
            config_state: Some(ConfigStatus {
                loaded_at: at,
                last_reload: Some(LastReload {
                    errors: 1,
                    first_error: Some(format!(
                        "reckon.toml:9:11: `connectors[1].settings.api_key`: secret of connector `cake` setting `api_key` not resolvable: environment variable `RECKON_CAKE_KEY` is not set; {}",
                        crate::config::resolve::ENV_NOT_SET_ON_RELOAD
                    )),
                    ..rejected.clone()
                }),
                file_differs: Some(true),
                reloads_ok: 0,
                reloads_rejected: 1,
            }),
            ..report.clone()
        }
        .render();
        assert!(
            env_only.contains("refused only for a variable the daemon's environment lacks (above): set it where the daemon is started and restart the daemon")
                && !env_only.contains("then reload (SIGHUP)"),
            "{env_only}"
        );
        // An edit not reloaded: a reload runs it, but not a `[daemon]`
        // setting read at start (QA19 NEW-3: `listen` was said to reload).
        let edited = StatusReport {
            config_state: Some(ConfigStatus {
                loaded_at: at,
                last_reload: None,
                file_differs: Some(true),
                reloads_ok: 0,
                reloads_rejected: 0,
            }),
            ..report.clone()
        }
        .render();
        assert!(
            edited.contains("then reload (SIGHUP) to run it (a change of a `[daemon]` setting read at start, such as `listen`, needs a restart)\n"),
            "{edited}"
        );
        // JSON names.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["config_state"]["last_reload"]["outcome"], "rejected");
        assert_eq!(json["config_state"]["file_differs"], true);
        assert_eq!(
            json["draft_schedules"][0]["last_made"],
            "2026-11-30T06:00:00Z"
        );
        assert_eq!(
            json["kpi_summaries"]["last_written"],
            serde_json::Value::Null
        );
        // A daemon of before these fields: none of them, and its drafts as
        // they were shown.
        let old = r#"{"started_at":"2026-11-29T08:00:00Z","config":"c","store_size_bytes":null,"connectors":[],"drafts":[{"program":"a","last_ok_at":"2026-11-29T08:00:00Z","last_error_at":null,"last_error":null,"consecutive_failures":0,"ok_total":1,"failed_total":0}]}"#;
        let parsed: StatusReport = serde_json::from_str(old).unwrap();
        assert_eq!(
            (
                &parsed.config_state,
                parsed.draft_schedules.len(),
                &parsed.kpi_summaries
            ),
            (&None, 0, &None)
        );
        let text = parsed.render();
        assert!(
            text.contains("statement drafts (draft_schedule, since start):\n  a: made 2026-11-29 08:00:00 UTC\n")
                && !text.contains("config:"),
            "{text}"
        );
    }

    /// Ops QA32a L2: a reload refused as emptied sent the operator to
    /// `reckon config check`, which accepts the file. F3: KPI summaries
    /// failing at every sync said they would be written after the next one.
    #[test]
    fn an_emptied_file_and_failing_kpi_summaries_say_what_to_do() {
        use crate::schedule::config_state::{ConfigStatus, LastReload, ReloadOutcome};
        let at: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();
        let later: DateTime<Utc> = "2026-11-30T07:00:00Z".parse().unwrap();
        let emptied = format!(
            "empty.toml: {}, while the running config has 1 connector(s) and 0 program(s): it looks empty or truncated",
            crate::schedule::EMPTIED_FILE
        );
        let mut runs = crate::kpi::hook::KpiRuns {
            last_error_at: Some(later),
            last_error: Some("writing out/kpi/daily: Not a directory (os error 20)".into()),
            consecutive_failures: 2,
            failed_total: 2,
            ..Default::default()
        };
        let report = StatusReport {
            started_at: at,
            version: None,
            config: "empty.toml".into(),
            data_dir: None,
            store_size_bytes: Some(1),
            connectors: vec![],
            postbacks: vec![],
            programs: vec![],
            reconciliation: vec![],
            drafts: vec![],
            cut_short: vec![],
            store_failure: None,
            config_state: Some(ConfigStatus {
                loaded_at: at,
                last_reload: Some(LastReload {
                    at: later,
                    outcome: ReloadOutcome::Rejected,
                    errors: 1,
                    first_error: Some(emptied),
                    restart_needed: vec![],
                }),
                file_differs: Some(true),
                reloads_ok: 0,
                reloads_rejected: 1,
            }),
            draft_schedules: vec![],
            kpi_summaries: Some(SummarySchedule {
                enabled: true,
                schedule: "0 6 * * *".into(),
                timezone: "UTC".into(),
                next_fire: Some("2026-12-01T06:00:00Z".parse().unwrap()),
                due_since: Some(at),
                last_written: Some(at - chrono::Duration::days(1)),
                runs: runs.clone(),
            }),
        };
        let text = report.render();
        assert!(
            text.contains("\n  the file differs from the running config and has no connectors and no programs: `reckon config check` accepts such a file, a reload does not; restore the file and reload (SIGHUP), or, if an empty config is meant, restart the daemon, which then runs with it\n")
                && !text.contains("lists every error"),
            "{text}"
        );
        assert!(
            text.contains("\nkpi summaries: schedule `0 6 * * *` in UTC, DUE since 2026-11-30 06:00:00 UTC (tried again after the next sync: FAILING, see below), then next 2026-12-01 06:00:00 UTC; last written 2026-11-29 06:00:00 UTC\n  FAILING (2 in a row, last 2026-11-30 07:00:00 UTC): writing out/kpi/daily: Not a directory (os error 20)\n"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["kpi_summaries"]["runs"]["consecutive_failures"], 2);
        assert!(json["kpi_summaries"]["runs"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Not a directory")));
        // Written since: no failure, and due after the next sync as before.
        runs = crate::kpi::hook::KpiRuns {
            last_ok_at: Some(later),
            ok_total: 1,
            failed_total: 2,
            ..Default::default()
        };
        let fixed = StatusReport {
            kpi_summaries: report
                .kpi_summaries
                .clone()
                .map(|k| SummarySchedule { runs, ..k }),
            ..report.clone()
        }
        .render();
        assert!(
            fixed.contains("DUE since 2026-11-30 06:00:00 UTC (written after the next sync)")
                && !fixed.contains("FAILING"),
            "{fixed}"
        );
        // A daemon of before the runs: none shown.
        let mut old = json.clone();
        old["kpi_summaries"].as_object_mut().unwrap().remove("runs");
        let parsed: StatusReport = serde_json::from_value(old).unwrap();
        assert_eq!(
            parsed.kpi_summaries.unwrap().runs,
            crate::kpi::hook::KpiRuns::default()
        );
    }
}
