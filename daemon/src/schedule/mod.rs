//! `reckon run`: the daemon. Cron per connector in its timezone, one run per
//! connector at a time under a global concurrency cap, retries with backoff,
//! catch-up of fires missed while down, signals (SIGTERM/SIGINT stop, SIGHUP
//! reloads), the HTTP server, and the post-sync hooks other modules plug into.
//!
//! What it is not: it does not pull data itself ([`crate::sync`] does) and
//! holds no domain logic; reconcile, statements and KPIs run through
//! [`hooks`].
pub mod cli;
pub mod config_state;
pub mod hooks;

use crate::config::{Config, ResolvedConnector};
use crate::server::metrics::Metrics;
use crate::store::{RunOutcome, RunRecord, Store};
use crate::sync::{NoProgress, Progress, SyncContext, SyncError};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// First retry delay after a failed run; doubles per attempt.
pub const RETRY_BASE_SECS: i64 = 30;
/// Longest retry delay.
pub const RETRY_MAX_SECS: i64 = 30 * 60;
/// Retries before waiting for the next scheduled fire.
pub const MAX_RETRIES: u32 = 5;
/// Retries of a run that failed on an answer it could not read (a
/// malformed record, a cut-off body, paging that contradicts itself:
/// [`SyncError::bad_answer`]): a fetch again often gets a good answer, a
/// record the network keeps sending malformed does not, so after these the
/// connector waits for its next fire (ops QA34 D-M1).
pub const BAD_ANSWER_RETRIES: u32 = 2;
/// How long shutdown waits for running syncs to commit their page.
pub const SHUTDOWN_GRACE_SECS: u64 = 8;
/// Exit status of `reckon run` after the store failed for good
/// ([`Store::failure`]): EX_TEMPFAIL, so a supervisor restarts it.
pub const EXIT_STORE_FAILED: u8 = 75;

/// Why [`run_daemon`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// SIGTERM or SIGINT.
    Signal,
    /// The store failed for good (the reason): the process must be
    /// restarted, see [`EXIT_STORE_FAILED`].
    StoreFailed(String),
}

/// The loaded configuration the daemon runs with (swapped on SIGHUP).
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The parsed config.
    pub config: Config,
    /// Its resolved connectors.
    pub connectors: Vec<ResolvedConnector>,
    /// The `[fx]` table's fingerprint as loaded with this config (its rates
    /// CSV read then), so a SIGHUP can tell a changed CSV from an unchanged
    /// one: the file's path stays in the config when its content changes.
    pub fx_fingerprint: Option<String>,
    /// `[daemon] status_token`, read: what `/status` and `/metrics`
    /// require (none: they answer anyone).
    pub status_token: Option<String>,
}

impl Runtime {
    /// Resolves a parsed config into what `reckon run` runs: connectors
    /// against their plugins and postback endpoints with their secrets.
    /// `reckon config check`, `reckon run` and SIGHUP all go through here, so
    /// the daemon runs exactly what the check accepts. `data_dir` and
    /// `output_dir` are checked too ([`crate::config::dirs`]). Every error
    /// is returned, in file order.
    pub fn resolve(mut config: Config) -> Result<Runtime, Vec<crate::config::ConfigError>> {
        let connectors = crate::config::resolve::resolve_all(&config);
        let postbacks = crate::server::postback::resolve_all(&config);
        // `data_dir` and `output_dir` must be writable (or creatable) by
        // this user: checked without creating anything.
        let dirs = crate::config::dirs::problems(&config);
        let status_token = crate::server::read_status_token(
            &config.daemon,
            crate::config::resolve::config_dir(&config),
        )
        .map_err(|m| config.source.error("daemon.status_token", m));
        match (connectors, postbacks, status_token) {
            (Ok(connectors), Ok(postbacks), Ok(status_token)) if dirs.is_empty() => {
                config.postbacks = postbacks;
                let fx_fingerprint = crate::reconcile::fx_table(&config)
                    .ok()
                    .map(|t| t.fingerprint());
                Ok(Runtime {
                    config,
                    connectors,
                    fx_fingerprint,
                    status_token,
                })
            }
            (c, p, t) => {
                let mut errors = c.err().unwrap_or_default();
                errors.extend(p.err().unwrap_or_default());
                errors.extend(t.err());
                errors.extend(dirs);
                errors.sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
                Err(errors)
            }
        }
    }
}

/// What `/status` shows for one connector.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct ConnectorStatus {
    /// Connector id.
    pub id: String,
    /// Plugin id.
    pub plugin: String,
    /// Whether it is scheduled.
    pub enabled: bool,
    /// The cron expression.
    pub schedule: String,
    /// The schedule's timezone.
    pub timezone: String,
    /// Whether a run is in progress.
    pub running: bool,
    /// Whether a scheduled run is due but waits for a sync slot
    /// (`max_concurrent_syncs`); it is `running` once it has one.
    #[serde(default)]
    pub queued: bool,
    /// Next scheduled fire.
    pub next_fire: Option<DateTime<Utc>>,
    /// Next retry of a failed run, if one is pending.
    pub next_retry: Option<DateTime<Utc>>,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// The last finished run.
    pub last_run: Option<RunRecord>,
    /// The last error, until a run succeeds.
    pub last_error: Option<String>,
    /// When its last successful run ended (from the run history at start,
    /// so a restart keeps it); none before the first.
    #[serde(default)]
    pub last_success_at: Option<DateTime<Utc>>,
    /// Records stored for this connector (all kinds).
    pub records: u64,
    /// When the run in progress started (none while idle or queued).
    #[serde(default)]
    pub running_since: Option<DateTime<Utc>>,
    /// The run in progress: its days, its window, pages and records so
    /// far (none while idle, or before its first window starts).
    #[serde(default)]
    pub current_run: Option<CurrentRun>,
    /// No run of the connector starts before then: the platform asked to
    /// wait that long (a 429 whose `Retry-After` is longer than a run
    /// waits), so its retry and its fires wait too.
    #[serde(default)]
    pub held_until: Option<DateTime<Utc>>,
    /// A backfill (`reckon sync ID --from --to`) cut off before its end
    /// (since the daemon started).
    #[serde(default)]
    pub cut_off_backfill: Option<CutOffBackfill>,
    /// Taken out of the config by a reload while its run went on: shown
    /// until that run ends (QA29-A L5: it vanished from `/status` while it
    /// still synced), then dropped.
    #[serde(default)]
    pub removed: bool,
}

/// A run in progress, as `/status` shows it (`current_run`).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct CurrentRun {
    /// Its first day.
    pub from: Option<NaiveDate>,
    /// Its last day.
    pub to: Option<NaiveDate>,
    /// The window it syncs now, from 1.
    pub window: usize,
    /// Its windows.
    pub windows: usize,
    /// Pages committed so far.
    pub pages: u64,
    /// Records new so far.
    pub records_new: u64,
    /// Records changed so far.
    pub records_changed: u64,
    /// Records unchanged so far.
    pub records_unchanged: u64,
}

/// A backfill (`reckon sync ID --from --to`) that did not reach its end
/// (stopped, its client gone, its process killed), as `/status` shows it
/// (`cut_off_backfill`) until a run of its days succeeds (ops QA34 B-M3:
/// its days were dropped without a word).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct CutOffBackfill {
    /// Its first day.
    pub from: NaiveDate,
    /// Its last day.
    pub to: NaiveDate,
    /// True: the daemon runs its days again, first day to last, at the
    /// connector's next fire (or its next start). False: it does not (a
    /// run without its days replaced it, or its run again failed for
    /// good), so days of it may be missing until `command` is run.
    pub runs_again: bool,
    /// The command that pulls its days.
    pub command: String,
}

impl CutOffBackfill {
    fn new(id: &str, (from, to): (NaiveDate, NaiveDate), runs_again: bool) -> Self {
        CutOffBackfill {
            from,
            to,
            runs_again,
            command: format!("reckon sync {id} --from {from} --to {to}"),
        }
    }
}

/// Shared state of a running daemon.
#[derive(Debug)]
pub struct Daemon {
    /// The store.
    pub store: Store,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Requested when shutting down (running syncs wait on it too).
    pub shutdown: crate::sync::Shutdown,
    /// Current config and connectors.
    pub runtime: RwLock<Arc<Runtime>>,
    /// Per-connector status.
    pub status: Mutex<BTreeMap<String, ConnectorStatus>>,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// The config file.
    pub config_path: PathBuf,
    /// The `reckon` executable (subprocess isolation).
    pub host_exe: PathBuf,
    /// The postback endpoints the server answers (replaced on SIGHUP with
    /// the runtime).
    pub postbacks: crate::server::postback::Endpoints,
    /// Connectors with a run in progress: scheduled, or a client's `reckon
    /// sync` run by the daemon. One run per connector at a time.
    pub active: Mutex<std::collections::BTreeSet<String>>,
    /// The `[daemon]` settings the process started with. `listen`,
    /// `data_dir`, `max_concurrent_syncs`, `log_format` and `store_cache_mb` keep these
    /// values until a restart, whatever SIGHUP loads: the reload's "needs a
    /// restart" warning compares the file with these.
    pub started_with: crate::config::DaemonConfig,
    /// When the running config was loaded, the last SIGHUP's outcome, and
    /// the text it came from (compared with the file for `/status`).
    pub config_state: config_state::ConfigTracker,
    /// Told after each reload that took effect: the clock
    /// ([`rejudge_on_the_clock`]) reads its interval again at once.
    pub reloaded: tokio::sync::Notify,
}

impl Daemon {
    /// The current runtime.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Prometheus gauges of each connector's health, which a restart
    /// keeps (the counters restart at 0; soak QA18 F5):
    /// `reckon_connector_consecutive_failures{connector}` and
    /// `reckon_connector_last_success_timestamp_seconds{connector}` (no
    /// sample before a first success).
    pub fn render_connector_metrics(&self) -> String {
        use crate::server::metrics::{family, labels};
        let mut st: Vec<ConnectorStatus> = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        st.sort_by(|a, b| a.id.cmp(&b.id));
        let mut out = String::new();
        family(
            &mut out,
            "reckon_connector_consecutive_failures",
            "gauge",
            "Runs of the connector that failed since its last success (kept across restarts).",
            st.iter()
                .map(|s| (labels(&[("connector", &s.id)]), s.consecutive_failures)),
        );
        family(
            &mut out,
            "reckon_connector_last_success_timestamp_seconds",
            "gauge",
            "When the connector's last successful run ended (Unix time).",
            st.iter().filter_map(|s| {
                let t = s.last_success_at?;
                Some((labels(&[("connector", &s.id)]), t.timestamp()))
            }),
        );
        // A run going on for long is a hung one (ops QA34 D-L1).
        family(
            &mut out,
            "reckon_connector_running_since_timestamp_seconds",
            "gauge",
            "When the connector's run in progress started (Unix time); no sample while it is not running.",
            st.iter().filter_map(|s| {
                let t = s.running_since.filter(|_| s.running)?;
                Some((labels(&[("connector", &s.id)]), t.timestamp()))
            }),
        );
        out
    }

    /// A snapshot of every connector's status, with record counts.
    pub fn status_snapshot(&self) -> Vec<ConnectorStatus> {
        let st = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        st.into_values()
            .map(|mut s| {
                s.records = [
                    plugin_api::protocol::RecordKind::Spend,
                    plugin_api::protocol::RecordKind::Conversion,
                    plugin_api::protocol::RecordKind::Order,
                ]
                .into_iter()
                .map(|k| self.store.count_records(k, Some(&s.id)))
                .sum();
                s
            })
            .collect()
    }

    fn with_status(&self, id: &str, f: impl FnOnce(&mut ConnectorStatus)) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = st.get_mut(id) {
            f(s);
        }
    }

    /// Drops `id` from the status once its run has ended, if a reload
    /// removed it meanwhile ([`ConnectorStatus::removed`]).
    fn drop_if_removed(&self, id: &str) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if st.get(id).is_some_and(|s| s.removed && !s.running) {
            st.remove(id);
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `id` running for a run outside the schedule (a client's `reckon
    /// sync`); false if it is running already.
    pub fn claim(&self, id: &str) -> bool {
        let fresh = self.active().insert(id.to_owned());
        if fresh {
            self.with_status(id, |s| {
                s.running = true;
                s.running_since = Some(Utc::now());
                s.current_run = None;
            });
        }
        fresh
    }

    /// Ends a [`Daemon::claim`] that ran no sync (a checkpoint reset held
    /// the connector): the connector's status and counts stay as they were.
    pub fn unclaim(&self, id: &str) {
        self.with_status(id, |s| {
            s.running = false;
            s.running_since = None;
            s.current_run = None;
        });
        self.active().remove(id);
    }

    /// Ends a run started with [`Daemon::claim`]: `/status` shows its run
    /// record as the connector's last run.
    pub fn release(&self, id: &str) {
        let last = self
            .store
            .runs(id, 1)
            .ok()
            .and_then(|r| r.into_iter().next());
        let backfill = last.as_ref().map(|run| self.backfill_after(id, run));
        self.with_status(id, |s| {
            s.running = false;
            s.queued = false;
            s.running_since = None;
            s.current_run = None;
            if let Some(backfill) = backfill {
                s.cut_off_backfill = backfill;
            }
            if let Some(run) = last {
                // As after a scheduled run: status shows why it failed,
                // and counts it (QA: 0 while running, 1 after a restart,
                // which counts from the run history).
                match run.outcome {
                    RunOutcome::Failed => {
                        s.last_error = run.error.clone();
                        s.consecutive_failures += 1;
                    }
                    RunOutcome::Success => {
                        s.last_error = None;
                        s.consecutive_failures = 0;
                        s.last_success_at = run.ended_at.or(s.last_success_at);
                    }
                    _ => {}
                }
                s.last_run = Some(run);
            }
        });
        self.drop_if_removed(id);
        self.active().remove(id);
    }

    /// What `/status` says of a cut-off backfill of `id` once its `run`
    /// ended: a backfill cut off before its end (the run itself) runs again
    /// at the connector's next fire ([`pending_backfill`]); one shown
    /// before is done when a run over all its days succeeds, and is not run
    /// again by the daemon once another run took its place (a run without
    /// its days, or its own that failed).
    fn backfill_after(&self, id: &str, run: &RunRecord) -> Option<CutOffBackfill> {
        let shown = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .and_then(|s| s.cut_off_backfill.clone());
        let rt = self.runtime();
        let Some(c) = rt.connectors.iter().find(|c| c.config.id == id) else {
            return shown;
        };
        if run.outcome == RunOutcome::Interrupted {
            let checkpoints = self.store.checkpoints(id).unwrap_or_default();
            let (scheduled_from, _) = crate::sync::scheduled_range(c, &checkpoints, Utc::now());
            if let Some(days) = cut_off_backfill(&run.windows, scheduled_from) {
                let fire = if c.config.enabled {
                    "its next fire or "
                } else {
                    ""
                };
                tracing::warn!(connector = %id, from = %days.0, to = %days.1,
                    "the backfill was cut off before its end: the daemon runs its days again, first day to last, at {fire}the daemon's next start; `reckon sync {id}` without dates before then drops them");
                return Some(CutOffBackfill::new(id, days, true));
            }
        }
        let shown = shown?;
        let covers =
            window_days(&run.windows).is_some_and(|(a, b)| a <= shown.from && shown.to <= b);
        if covers && run.outcome == RunOutcome::Success {
            return None;
        }
        Some(CutOffBackfill {
            runs_again: false,
            ..shown
        })
    }

    /// The context a sync of this daemon runs in.
    pub fn sync_context(&self) -> SyncContext {
        SyncContext {
            store: self.store.clone(),
            host_exe: self.host_exe.clone(),
            shutdown: self.shutdown.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Progress of a run the daemon runs, kept in its `/status`
/// ([`ConnectorStatus::current_run`]) and handed on to `inner` (a client's
/// progress lines, or nothing).
pub struct StatusProgress<'a> {
    daemon: &'a Daemon,
    id: String,
    inner: &'a dyn Progress,
}

impl std::fmt::Debug for StatusProgress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusProgress")
            .field("id", &self.id)
            .finish()
    }
}

impl<'a> StatusProgress<'a> {
    /// Progress of `id`'s run.
    pub fn new(daemon: &'a Daemon, id: &str, inner: &'a dyn Progress) -> Self {
        StatusProgress {
            daemon,
            id: id.to_owned(),
            inner,
        }
    }

    fn update(&self, f: impl FnOnce(&mut CurrentRun)) {
        self.daemon.with_status(&self.id, |s| {
            f(s.current_run.get_or_insert_with(Default::default))
        });
    }
}

impl Progress for StatusProgress<'_> {
    fn started(&self, from: NaiveDate, to: NaiveDate, windows: usize) {
        self.daemon.with_status(&self.id, |s| {
            s.current_run = Some(CurrentRun {
                from: Some(from),
                to: Some(to),
                windows,
                ..Default::default()
            })
        });
        self.inner.started(from, to, windows);
    }
    fn window(&self, index: usize, total: usize, window: &plugin_api::protocol::Window) {
        self.update(|r| (r.window, r.windows) = (index + 1, total));
        self.inner.window(index, total, window);
    }
    fn page(
        &self,
        stream: &str,
        stats: &crate::store::CommitStats,
        total: &crate::store::CommitStats,
    ) {
        self.update(|r| {
            r.pages += 1;
            (r.records_new, r.records_changed, r.records_unchanged) =
                (total.new, total.changed, total.unchanged);
        });
        self.inner.page(stream, stats, total);
    }
}

/// Per-connector scheduling state.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Next cron fire.
    pub next_fire: Option<DateTime<Utc>>,
    /// Fire now once (a fire was missed while the daemon was down).
    pub catch_up: bool,
    /// Retry of a failed run.
    pub retry_at: Option<DateTime<Utc>>,
    /// Failed attempts since the cron fire that started them (a fire resets
    /// it): retry `n` waits [`retry_delay`]`(n)`, at most [`MAX_RETRIES`]
    /// per fire.
    pub attempts: u32,
    /// The days of a backfill cut off by a stop or a crash that the
    /// scheduled run would not pull again: the catch-up run at start pulls
    /// these instead ([`cut_off_backfill`]).
    pub resume_range: Option<(NaiveDate, NaiveDate)>,
    /// No run starts before then, fire or retry: the platform asked to
    /// wait that long ([`Failure::wait`]).
    pub hold_until: Option<DateTime<Utc>>,
}

impl Plan {
    /// The earliest instant this connector wants to run.
    pub fn due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let due = if self.catch_up {
            Some(now)
        } else {
            match (self.next_fire, self.retry_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        due.map(|d| self.hold_until.map_or(d, |h| d.max(h)))
    }
}

/// A failed run, as the scheduler acts on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The error.
    pub error: String,
    /// Retries its fire may give it: [`MAX_RETRIES`] for a retryable
    /// failure, [`BAD_ANSWER_RETRIES`] for an answer that could not be
    /// read, none for the rest (refused credentials, a bad setting).
    pub retries: u32,
    /// Whether it failed on an answer that could not be read.
    pub bad_answer: bool,
    /// How long the platform asked to wait (a 429's `Retry-After` longer
    /// than a run waits): nothing runs before then.
    pub wait: Option<Duration>,
}

impl Failure {
    /// How the scheduler treats a run that failed with `e`.
    pub fn of(e: &SyncError) -> Failure {
        let bad_answer = e.bad_answer();
        Failure {
            error: e.to_string(),
            retries: if e.retryable() {
                MAX_RETRIES
            } else if bad_answer {
                BAD_ANSWER_RETRIES
            } else {
                0
            },
            bad_answer,
            wait: e.platform_wait().and_then(|w| Duration::from_std(w).ok()),
        }
    }

    /// A failure retried as a 5xx is.
    pub fn retryable(error: impl Into<String>) -> Failure {
        Failure {
            error: error.into(),
            retries: MAX_RETRIES,
            bad_answer: false,
            wait: None,
        }
    }

    /// A failure retrying cannot help.
    pub fn permanent(error: impl Into<String>) -> Failure {
        Failure {
            retries: 0,
            ..Failure::retryable(error)
        }
    }
}

/// The initial plan of a connector: its next fire after now, and a catch-up
/// run if a fire fell between the last persisted fire and now.
pub fn initial_plan(
    c: &ResolvedConnector,
    last_fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Plan {
    let sched = &c.config.schedule;
    let catch_up = last_fire
        .and_then(|l| sched.next_after(c.timezone, l))
        .is_some_and(|missed| missed <= now);
    Plan {
        next_fire: sched.next_after(c.timezone, now),
        catch_up,
        retry_at: None,
        attempts: 0,
        resume_range: None,
        hold_until: None,
    }
}

/// The days of a run's recorded windows (`2026-01-01..2026-01-31`), first
/// to last; `None` without windows or when one does not parse.
pub fn window_days(windows: &[String]) -> Option<(NaiveDate, NaiveDate)> {
    let mut days = windows.iter().map(|w| {
        let (a, b) = w.split_once("..")?;
        Some((a.parse::<NaiveDate>().ok()?, b.parse::<NaiveDate>().ok()?))
    });
    let (mut from, mut to) = days.next()??;
    for d in days {
        let (a, b) = d?;
        from = from.min(a);
        to = to.max(b);
    }
    Some((from, to))
}

/// The days of the connector's last run when it is a backfill cut off
/// before its end ([`cut_off_backfill`]: `interrupted`, or left `running`
/// by a process that died) that a scheduled run now would not pull again.
/// The daemon runs these days at the connector's next fire, as it does at
/// its start (ops QA34 B-M3: a fire of a running daemon replaced it, and
/// its days were never pulled).
pub fn pending_backfill(
    store: &Store,
    c: &ResolvedConnector,
    now: DateTime<Utc>,
) -> Result<Option<(NaiveDate, NaiveDate)>, crate::store::StoreError> {
    let id = &c.config.id;
    let last = store.runs(id, 1)?;
    let Some(run) = last
        .first()
        .filter(|r| matches!(r.outcome, RunOutcome::Interrupted | RunOutcome::Running))
    else {
        return Ok(None);
    };
    let (scheduled_from, _) = crate::sync::scheduled_range(c, &store.checkpoints(id)?, now);
    Ok(cut_off_backfill(&run.windows, scheduled_from))
}

/// The days a cut-off run was syncing (its recorded windows, first day to
/// last) when they start before the days a scheduled run pulls now: a
/// backfill (`reckon sync --from`), which the scheduled run would not redo
/// (QA21 A21-1: the run at start was the scheduled one, the backfill's
/// older days were never pulled again). `None` for a cut-off scheduled run
/// (the scheduled run covers it) or windows that do not parse.
pub fn cut_off_backfill(
    windows: &[String],
    scheduled_from: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    let (from, to) = window_days(windows)?;
    (from < scheduled_from).then_some((from, to))
}

/// What the run history makes the scheduler do at start, beyond the
/// missed fires of [`initial_plan`].
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// The last run did not finish (`interrupted` by a stop, or left
    /// `running` by a process that died and closed at start): it runs once
    /// now, like a missed fire.
    CutOff {
        /// Why it did not finish, as recorded.
        reason: String,
        /// The windows it was syncing (`2026-09-20..2026-11-20`): a cut-off
        /// backfill is run again with them (soak QA18 F2).
        windows: String,
    },
    /// The last run failed with a retryable error: a retry is due
    /// [`retry_delay`]`(1)` from now. (Whether its fire had retries left is
    /// not stored: a restart gives it a new series.)
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// The failure.
        error: String,
    },
}

/// Applies the stored run history to a connector's plan at start: the
/// scheduler keeps neither retries nor runs in progress across a restart,
/// so a run cut off by a stop, `kill -9` or a crash runs once now, and a
/// run that failed with a retryable error is retried (first delay from
/// now), unless the next fire comes first. `last` is the newest run of the
/// connector.
pub fn resume(plan: &mut Plan, last: Option<&RunRecord>, now: DateTime<Utc>) -> Option<Resume> {
    let last = last?;
    // The platform's wait outlives the process: no run before it, retry or
    // fire (ops QA34 D-M2; the hold was in memory only, so a restart during
    // a 20-minute lock-out retried after 30 s).
    if last.outcome == RunOutcome::Failed {
        plan.hold_until = last.not_before.filter(|h| *h > now);
    }
    match last.outcome {
        // Also when a fire was missed too (the start log says both).
        RunOutcome::Interrupted | RunOutcome::Running => {
            plan.catch_up = true;
            plan.attempts = 0;
            let reason = last
                .error
                .clone()
                .unwrap_or_else(|| "no reason recorded".into());
            Some(Resume::CutOff {
                reason,
                windows: last.windows.join(", "),
            })
        }
        RunOutcome::Failed if last.retryable == Some(true) && !plan.catch_up => {
            let at = now + retry_delay(1);
            let at = plan.hold_until.map_or(at, |h| at.max(h));
            // The next fire comes first: it replaces the retry.
            if plan.next_fire.is_some_and(|f| f <= at) {
                return None;
            }
            plan.retry_at = Some(at);
            plan.attempts = 1;
            Some(Resume::Retry {
                at,
                error: last.error.clone().unwrap_or_default(),
            })
        }
        _ => None,
    }
}

/// `consecutive_failures` and `last_error` of a connector from its runs
/// since the last success (newest first), as the daemon counts them while
/// it runs: every run that failed, or whose process died during it
/// ([`crate::store::DIED_UNFINISHED`]), is a failure, and the newest one's
/// error is the last error. A run still `running` (a client's sync in
/// progress during a reload) is not counted, nor one `interrupted` by a
/// stop on purpose (QA29-E M3: after each restart the gauge read 1, and an
/// alert on it fired).
pub fn failures_from_history(since_success: &[RunRecord]) -> (u32, Option<String>) {
    let failed: Vec<&RunRecord> = since_success
        .iter()
        .filter(|r| match r.outcome {
            RunOutcome::Failed => true,
            RunOutcome::Interrupted => r
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with(crate::store::DIED_UNFINISHED)),
            RunOutcome::Success | RunOutcome::Running => false,
        })
        .collect();
    let count = u32::try_from(failed.len()).unwrap_or(u32::MAX);
    (count, failed.first().and_then(|r| r.error.clone()))
}

/// Delay before retry number `attempt` (1-based): 30 s, 60 s, ... ≤ 30 min.
pub fn retry_delay(attempt: u32) -> Duration {
    let secs = RETRY_BASE_SECS
        .saturating_mul(1i64 << attempt.saturating_sub(1).min(20))
        .min(RETRY_MAX_SECS);
    Duration::seconds(secs)
}

fn status_for(
    c: &ResolvedConnector,
    plan: Option<&Plan>,
    old: Option<&ConnectorStatus>,
) -> ConnectorStatus {
    let mut s = old.cloned().unwrap_or_default();
    s.removed = false;
    s.id = c.config.id.clone();
    s.plugin = c.config.plugin.clone();
    s.enabled = c.config.enabled;
    s.schedule = c.config.schedule.expr.clone();
    s.timezone = c.timezone.name().to_owned();
    // A disabled connector never fires: no next fire or retry to show.
    let plan = plan.filter(|_| c.config.enabled);
    s.next_fire = plan.and_then(|p| p.next_fire);
    s.next_retry = plan.and_then(|p| p.retry_at);
    s.held_until = plan.and_then(|p| p.hold_until).filter(|h| *h > Utc::now());
    s
}

/// Binds `[daemon] listen` of the config file `config` (named in the
/// error). `reckon run` binds before it opens the store, so a start that
/// cannot listen leaves no new store behind.
pub fn bind_listener(
    config: &std::path::Path,
    listen: std::net::SocketAddr,
) -> anyhow::Result<std::net::TcpListener> {
    let bound = std::net::TcpListener::bind(listen).and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    });
    bound.map_err(|e| {
        let fix = match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "another process listens there (another reckon? `reckon status --addr {listen}` asks it); stop it, or set `listen` to a free port"
            ),
            std::io::ErrorKind::AddrNotAvailable => {
                "no network interface of this machine has that address; set `listen` to one it has (e.g. 127.0.0.1:9187)".to_owned()
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges; set `listen` to a port of 1024 or more".to_owned()
            }
            _ => "set `listen` to an address this machine can listen on".to_owned(),
        };
        anyhow::anyhow!(
            "cannot listen on {listen} (`[daemon] listen` in {}): {e}; {fix}. Nothing was started and the store was not opened",
            config.display()
        )
    })
}

/// The daemon's handlers of SIGTERM, SIGINT and SIGHUP. `reckon run`
/// installs them first thing, before it loads plugins, opens the store and
/// binds (ops QA32a F1: a SIGHUP, `systemctl reload`, during that start-up
/// killed the process with the default action, exit by signal and no log
/// line, which `Restart=on-failure` does not restart). From then on a
/// signal is remembered until the daemon reads it: a SIGTERM or SIGINT
/// during start-up stops it cleanly ([`Signals::stop_requested`]), a SIGHUP
/// is applied as a reload once it runs.
#[derive(Debug)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers. Call it within a tokio runtime's context
    /// (`Runtime::enter`): its I/O driver delivers the signals.
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// `SIGTERM` or `SIGINT` when one came since the handlers were
    /// installed (and was not read yet), without waiting: for the steps of
    /// start-up, which do not poll.
    pub fn stop_requested(&mut self) -> Option<&'static str> {
        if arrived(&mut self.term) {
            Some("SIGTERM")
        } else if arrived(&mut self.int) {
            Some("SIGINT")
        } else {
            None
        }
    }
}

/// Whether `signal` has a delivery not read yet; reads it. (Several
/// deliveries before a read are one.)
fn arrived(signal: &mut tokio::signal::unix::Signal) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    matches!(signal.poll_recv(&mut cx), std::task::Poll::Ready(Some(())))
}

/// Runs the scheduler until SIGTERM/SIGINT. `runtime` is the validated
/// config; the HTTP server answers on `listener` (`[daemon] listen`, bound
/// by [`bind_listener`]). The signal handlers are installed here; `reckon
/// run` installs them before its start-up instead, see
/// [`run_daemon_with_signals`].
pub async fn run_daemon(
    config_path: PathBuf,
    runtime: Runtime,
    store: Store,
    listener: std::net::TcpListener,
    config_text: Option<String>,
) -> anyhow::Result<Stopped> {
    let signals = Signals::install()?;
    run_daemon_with_signals(config_path, runtime, store, listener, config_text, signals).await
}

/// [`run_daemon`] with the signal handlers `reckon run` installed before
/// its start-up: a SIGTERM or SIGINT that came since stops the daemon
/// (after the start, as one that comes later), a SIGHUP is a reload as soon
/// as the daemon runs.
pub async fn run_daemon_with_signals(
    config_path: PathBuf,
    runtime: Runtime,
    store: Store,
    listener: std::net::TcpListener,
    config_text: Option<String>,
    signals: Signals,
) -> anyhow::Result<Stopped> {
    let Signals {
        term: mut sigterm,
        int: mut sigint,
        hup: mut sighup,
    } = signals;
    let now = Utc::now();
    let started_with = runtime.config.daemon.clone();
    let postbacks = crate::server::postback::Endpoints::new(runtime.config.postbacks.clone());
    let daemon = Arc::new(Daemon {
        store: store.clone(),
        metrics: crate::server::metrics::global(),
        shutdown: crate::sync::Shutdown::new(),
        runtime: RwLock::new(Arc::new(runtime)),
        status: Mutex::new(BTreeMap::new()),
        started_at: now,
        config_path: config_path.clone(),
        host_exe: std::env::current_exe()?,
        postbacks,
        active: Mutex::new(Default::default()),
        started_with,
        config_state: config_state::ConfigTracker::new(now, config_text),
        reloaded: tokio::sync::Notify::new(),
    });

    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    install_plans(&daemon, &mut plans, now, Install::Start)?;
    // A statements finalise cut short by the last stop (a kill, a crash)
    // gets its files completed before anything else runs (QA42b B-M1).
    crate::payout::hook::complete_cut_short_at_start(&store, &daemon.runtime().config);
    // Records stored since a program's last run (postbacks acknowledged
    // just before the last stop) are judged now, not at the next sync.
    crate::reconcile::catch_up_at_start(&store, &daemon.runtime().config);

    // HTTP server.
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let listen = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (commits, committed) = tokio::sync::mpsc::unbounded_channel();
    let app = crate::server::app(daemon.clone(), Some(commits));
    let after_postbacks = tokio::spawn(hooks_after_postbacks(daemon.clone(), committed));
    let rejudge = tokio::spawn(rejudge_on_the_clock(daemon.clone()));
    let limits = crate::server::listener::Limits::of(&daemon.started_with);
    let server = tokio::spawn(crate::server::listener::serve(
        listener, app, limits, stop_rx,
    ));
    // Commands (`reckon statements ...`) run by the daemon for a client.
    let commands = crate::cli::remote::serve(daemon.clone(), daemon.shutdown.subscribe());
    tracing::info!(
        version = crate::VERSION,
        listen = %listen,
        max_http_connections = limits.max_connections,
        open_file_limit = %limits
            .open_file_limit
            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        http_header_timeout_secs = limits.header_timeout.as_secs(),
        store_cache_mb = daemon.started_with.store_cache_mb,
        connectors = daemon.runtime().connectors.len(),
        scheduled = plans.len(),
        "daemon started"
    );
    let token = daemon.runtime().status_token.is_some();
    if let Some(exposure) = crate::server::listener::public_exposure(listen, token) {
        tracing::warn!(listen = %listen, "{exposure}");
    }
    for p in &daemon.runtime().config.postbacks {
        if let Some(weak) = crate::server::postback::weak_secret(p) {
            tracing::warn!("{weak}");
        }
    }
    // A SIGHUP during start-up (`systemctl reload` just after `start`): the
    // file may have changed after it was read, so it is read again now.
    if arrived(&mut sighup) {
        tracing::info!("SIGHUP during start-up: reloading the config now that the daemon runs");
        reload(&daemon, &mut plans);
    }

    let max = daemon.runtime().config.daemon.max_concurrent_syncs.max(1) as usize;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(max));
    let mut running: tokio::task::JoinSet<RunResult> = tokio::task::JoinSet::new();
    // Task id → connector, so a run task that panics still frees its connector.
    let mut task_ids: std::collections::HashMap<tokio::task::Id, String> = Default::default();
    // sled keeps its first write error for good: then nothing the daemon
    // does can succeed until it is restarted.
    let mut store_failure = daemon.store.watch_failure();
    let mut stopped = Stopped::Signal;
    let on_store_failure = |stopped: &mut Stopped, reason: String| {
        tracing::error!(
            error = %reason,
            exit_status = EXIT_STORE_FAILED,
            "the store refuses every write until reckon restarts: stopping; free space (or fix the cause), then restart reckon (a supervisor restarts it on this exit status)"
        );
        *stopped = Stopped::StoreFailed(reason);
        daemon.shutdown.request();
    };
    if let Some(reason) = daemon.store.failure() {
        on_store_failure(&mut stopped, reason);
    }
    // sled's own flusher thread can be the first to fail (a full disk):
    // nothing of reckon's sees it until its next store call, so a task
    // looks at the error each second (an atomic load) and publishes it,
    // which wakes this loop through `store_failure` (QA44a A-L4: a daemon
    // ran on for 9.5 minutes, then exited 1 at SIGTERM).
    let failure_probe = tokio::spawn({
        let store = daemon.store.clone();
        async move {
            let mut each_second = tokio::time::interval(std::time::Duration::from_secs(1));
            while store.failure().is_none() {
                each_second.tick().await;
            }
        }
    });

    loop {
        // Start everything due.
        let now = Utc::now();
        let rt = daemon.runtime();
        let due = take_due(&daemon, &rt, &mut plans, &mut daemon.active(), now);
        for (c, range) in due {
            let d = daemon.clone();
            let sem = semaphore.clone();
            let config = rt.config.clone();
            let task_connector = c.config.id.clone();
            let handle = running.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let id = c.config.id.clone();
                d.with_status(&id, |s| {
                    s.queued = false;
                    s.running = !d.shutdown.is_requested();
                    s.running_since = s.running.then(Utc::now);
                    s.current_run = None;
                });
                if d.shutdown.is_requested() {
                    return (id, Err(Failure::permanent("not started: shutting down")));
                }
                let seq_before = d.store.last_seq().unwrap_or(0);
                let ctx = d.sync_context();
                if let Some((from, to)) = range {
                    tracing::info!(connector = %id, from = %from, to = %to, "running the cut-off backfill's days again");
                }
                let progress = StatusProgress::new(&d, &id, &NoProgress);
                let result = crate::sync::run_sync(&ctx, &c, range, &progress).await;
                if let Err(SyncError::Store(_)) = &result {
                    d.metrics.store_error(&id);
                }
                let result = result.map_err(|e| Failure::of(&e));
                if result.is_ok() {
                    let seq_after = d.store.last_seq().unwrap_or(seq_before);
                    let store = d.store.clone();
                    let ev_connector = id.clone();
                    let kind = c.plugin.manifest.kind;
                    let _ = tokio::task::spawn_blocking(move || {
                        hooks::run_post_sync(&hooks::SyncEvent {
                            store: &store,
                            config: &config,
                            connector: &ev_connector,
                            kind,
                            seq_before,
                            seq_after,
                        })
                    })
                    .await;
                }
                (id, result)
            });
            task_ids.insert(handle.id(), task_connector);
        }

        if daemon.shutdown.is_requested() {
            break;
        }
        // Sleep until the next due time, a finished run, or a signal. Wake at
        // least once a minute to follow wall-clock jumps.
        let now = Utc::now();
        let sleep_for = next_due(&plans, now)
            .map(|d| (d - now).to_std().unwrap_or_default())
            .unwrap_or(std::time::Duration::from_secs(60))
            .min(std::time::Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep(sleep_for) => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let (id, result) = joined(done, &mut task_ids);
                daemon.active().remove(&id);
                finish_run(&daemon, &mut plans, &id, result, Utc::now());
            }
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); daemon.shutdown.request(); }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); daemon.shutdown.request(); }
            _ = sighup.recv() => {
                reload(&daemon, &mut plans);
            }
            Ok(()) = store_failure.changed() => {
                let reason = store_failure.borrow_and_update().clone();
                if let Some(reason) = reason {
                    on_store_failure(&mut stopped, reason);
                }
            }
        }
        if daemon.shutdown.is_requested() {
            break;
        }
    }

    // Shutdown: no new work; running syncs stop after their current page.
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_secs(SHUTDOWN_GRACE_SECS);
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, running.join_next_with_id()).await {
            Ok(Some(done)) => {
                let (id, result) = joined(done, &mut task_ids);
                daemon.active().remove(&id);
                finish_run(&daemon, &mut plans, &id, result, Utc::now());
            }
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(still_running = ?*daemon.active(), "shutdown grace period over; leaving (committed pages are kept)");
                running.abort_all();
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), server).await;
    after_postbacks.abort();
    rejudge.abort();
    failure_probe.abort();
    // Commands run for clients had the same grace as the syncs.
    if let Some(commands) = commands {
        if tokio::time::timeout_at(deadline, commands).await.is_err() {
            tracing::warn!("a command run for a client is still running; leaving it");
        }
    }
    // A store that failed refuses the flush too: reported above, or (a
    // failure no call had met yet) here, and the exit status is 75 either
    // way.
    if matches!(stopped, Stopped::Signal) {
        if let Err(e) = daemon.store.flush() {
            match daemon.store.failure() {
                Some(reason) => on_store_failure(&mut stopped, reason),
                None => return Err(e.into()),
            }
        }
    }
    tracing::info!("daemon stopped");
    Ok(stopped)
}

/// How long claims from postbacks gather before their programs are
/// reconciled: a burst of postbacks is one run, not one per group commit.
pub const POSTBACK_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs the post-sync hooks for postback endpoints whose groups stored or
/// changed claims, at most once per [`POSTBACK_SETTLE`], so postback claims
/// are judged (and reach decisions, KPIs, drafts) without waiting for the
/// next sync of their program. Ends at shutdown.
async fn hooks_after_postbacks(
    daemon: Arc<Daemon>,
    mut committed: tokio::sync::mpsc::UnboundedReceiver<Vec<String>>,
) {
    let mut seq_before = daemon.store.last_seq().unwrap_or(0);
    while let Some(first) = committed.recv().await {
        let mut sources: std::collections::BTreeSet<String> = first.into_iter().collect();
        let settle = tokio::time::sleep(POSTBACK_SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = &mut settle => break,
                more = committed.recv() => match more {
                    Some(more) => sources.extend(more),
                    None => break,
                },
            }
        }
        if daemon.shutdown.is_requested() {
            return;
        }
        let seq_after = daemon.store.last_seq().unwrap_or(seq_before);
        let store = daemon.store.clone();
        let config = daemon.runtime().config.clone();
        tracing::debug!(sources = ?sources, "postbacks committed: running the post-sync hooks");
        let _ = tokio::task::spawn_blocking(move || {
            for source in &sources {
                hooks::run_post_sync(&hooks::SyncEvent {
                    store: &store,
                    config: &config,
                    connector: source,
                    kind: plugin_api::protocol::PluginKind::Affiliate,
                    seq_before,
                    seq_after,
                });
            }
        })
        .await;
        seq_before = seq_after;
    }
}

/// Re-judges, on the daemon's own clock, the programs whose decisions came
/// due to change with time alone and that no sync or postback reconciled
/// since ([`crate::reconcile::Clock`]), every `[daemon]
/// rejudge_interval_secs` at most (read again each time, so a SIGHUP
/// applies it). Ends at shutdown.
async fn rejudge_on_the_clock(daemon: Arc<Daemon>) {
    let mut clock = crate::reconcile::Clock::default();
    let mut stop = daemon.shutdown.subscribe();
    loop {
        if daemon.shutdown.is_requested() {
            return;
        }
        let store = daemon.store.clone();
        let config = daemon.runtime().config.clone();
        let every = std::time::Duration::from_secs(config.daemon.rejudge_interval_secs.max(1));
        let tick = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                clock.tick(&store, &config, now, every)
            }));
            let next = run.unwrap_or_else(|payload| {
                tracing::error!(
                    "reconcile: internal error (a bug, please report it) looking for decisions due with time: {}; looking again later",
                    crate::panic_message(&*payload)
                );
                now + Duration::from_std(every).unwrap_or(Duration::hours(1))
            });
            (clock, next)
        });
        let Ok((back, next)) = tick.await else {
            return;
        };
        clock = back;
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // A reload may have shortened the interval (QA47 R-M1: lowered
            // from a day, it applied only after the old day had passed).
            _ = daemon.reloaded.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Advances the plans of every connector due at `now`: a cron fire moves
/// `next_fire` on (and persists the fire), a due retry is consumed. Returns
/// the connectors to start now (marked running in `active` and `/status`).
/// A connector whose previous run is still active is skipped for this fire;
/// its `/status` still shows the new next fire.
/// When the loop must wake next: the earliest due time of every plan,
/// connectors with a run in progress included, so a fire that comes during
/// a run is always skipped (and logged) at its time by [`take_due`], as
/// documented. Leaving them out (as before 2026-11-29, a soak QA finding)
/// made such a fire run late instead whenever nothing else woke the loop
/// before the run ended.
fn next_due(plans: &BTreeMap<String, Plan>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    plans.values().filter_map(|p| p.due(now)).min()
}

fn take_due(
    daemon: &Daemon,
    rt: &Runtime,
    plans: &mut BTreeMap<String, Plan>,
    active: &mut std::collections::BTreeSet<String>,
    now: DateTime<Utc>,
) -> Vec<(ResolvedConnector, Option<(NaiveDate, NaiveDate)>)> {
    let mut start = Vec::new();
    for c in rt.connectors.iter().filter(|c| c.config.enabled) {
        let id = &c.config.id;
        let Some(plan) = plans.get_mut(id) else {
            continue;
        };
        let Some(due) = plan.due(now) else { continue };
        if due > now {
            continue;
        }
        let fired_by_cron = plan.next_fire.is_some_and(|f| f <= now) || plan.catch_up;
        // A cut-off backfill's days (the catch-up run at start, and its
        // retries: kept until a run of them ends, see `finish_run`).
        let range = plan.resume_range;
        if fired_by_cron {
            plan.next_fire = c.config.schedule.next_after(c.timezone, now);
            plan.catch_up = false;
            // A new cron fire replaces a pending retry.
            plan.retry_at = None;
            if let Err(e) = daemon.store.set_last_fire(id, now) {
                tracing::warn!(connector = %id, error = %e, "could not persist the last fire time");
            }
        } else {
            plan.retry_at = None;
        }
        let p = plan.clone();
        if active.contains(id) {
            // Queued: waiting for one of `max_concurrent_syncs` slots, not
            // hung (soak QA31-D L3: ops looked for a run that never began).
            let mut queued = false;
            daemon.with_status(id, |s| {
                queued = s.queued;
                s.next_fire = p.next_fire;
                s.next_retry = p.retry_at;
            });
            if queued {
                tracing::info!(connector = %id, "previous run still queued (all max_concurrent_syncs slots busy); this fire is skipped");
            } else {
                tracing::info!(connector = %id, "previous run still in progress; this fire is skipped");
            }
            continue;
        }
        if fired_by_cron {
            // A fire (not a retry) starts a new series of retries: each
            // fire gets its own MAX_RETRIES, the first 30 s after it fails.
            plan.attempts = 0;
        }
        // A backfill cut off while the daemon runs (its client went away)
        // runs again now, as one cut off before a start does at the start,
        // instead of being replaced by the scheduled run.
        let mut range = range;
        let mut backfill = None;
        if range.is_none() {
            match pending_backfill(&daemon.store, c, now) {
                Ok(Some(days)) => {
                    tracing::info!(connector = %id, from = %days.0, to = %days.1, "the connector's last run was a backfill cut off before its end: this run pulls its days instead of the scheduled window (which comes at the next fire)");
                    plan.resume_range = Some(days);
                    range = Some(days);
                    backfill = Some(CutOffBackfill::new(id, days, true));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(connector = %id, error = %e, "could not read the connector's last run; running the scheduled window")
                }
            }
        }
        active.insert(id.clone());
        daemon.with_status(id, |s| {
            s.queued = true;
            s.next_fire = p.next_fire;
            s.next_retry = None;
            // Its wait is over (it runs no earlier).
            s.held_until = None;
            if backfill.is_some() {
                s.cut_off_backfill = backfill;
            }
        });
        start.push((c.clone(), range));
    }
    start
}

type RunResult = (String, Result<RunRecord, Failure>);

/// A finished run task: its result, or a panic turned into a failed run.
fn joined(
    done: Result<(tokio::task::Id, RunResult), tokio::task::JoinError>,
    task_ids: &mut std::collections::HashMap<tokio::task::Id, String>,
) -> RunResult {
    match done {
        Ok((tid, r)) => {
            task_ids.remove(&tid);
            r
        }
        Err(e) => {
            let id = task_ids.remove(&e.id()).unwrap_or_default();
            tracing::error!(connector = %id, error = %e, "run task panicked");
            (id, Err(Failure::retryable(format!("run task failed: {e}"))))
        }
    }
}

/// Why plans are (re)installed: a fire missed before is reported as missed
/// while the daemon was down at start, and while the connector was disabled
/// or not configured on a reload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Install {
    Start,
    Reload,
}

fn install_plans(
    daemon: &Daemon,
    plans: &mut BTreeMap<String, Plan>,
    now: DateTime<Utc>,
    why: Install,
) -> anyhow::Result<()> {
    let rt = daemon.runtime();
    let mut new_plans = BTreeMap::new();
    let mut status = daemon.status.lock().unwrap_or_else(|p| p.into_inner());
    let mut new_status = BTreeMap::new();
    for c in &rt.connectors {
        let id = &c.config.id;
        let plan = match plans.get(id) {
            // Keep retry state across a reload; recompute the next fire.
            Some(old) => Plan {
                next_fire: c.config.schedule.next_after(c.timezone, now),
                ..old.clone()
            },
            None => {
                let mut p = initial_plan(c, daemon.store.last_fire(id)?, now);
                let missed = p.catch_up;
                // Only at start: on a reload the connector's last run may
                // still be going (removed and added back while running).
                let resumed = match why {
                    Install::Start => {
                        let last = daemon.store.runs(id, 1)?;
                        let resumed = resume(&mut p, last.first(), now);
                        if let Some(h) = p.hold_until.filter(|_| c.config.enabled) {
                            tracing::info!(connector = %id, not_before = %utc_text(h), "the platform asked for a wait longer than a run waits at the last run; no run of the connector before then");
                        }
                        if let (Some(Resume::CutOff { .. }), Some(run)) = (&resumed, last.first()) {
                            let checkpoints = daemon.store.checkpoints(id)?;
                            let (scheduled_from, _) =
                                crate::sync::scheduled_range(c, &checkpoints, now);
                            p.resume_range = cut_off_backfill(&run.windows, scheduled_from);
                        }
                        resumed
                    }
                    Install::Reload => None,
                };
                // A disabled connector gets no plan: nothing runs, nothing
                // to report.
                if c.config.enabled {
                    match (why, missed, resumed) {
                        // Both (soak QA18 F3): the cut-off run's reason
                        // says what becomes of a backfill.
                        (Install::Start, true, Some(Resume::CutOff { reason, windows })) => {
                            tracing::info!(connector = %id, reason = %reason, windows = %windows, "the last run did not finish (stopped, or its process died), and a scheduled fire was missed while the daemon was down; running once now")
                        }
                        (Install::Start, true, _) => {
                            tracing::info!(connector = %id, "a scheduled fire was missed while the daemon was down; running once now")
                        }
                        (Install::Reload, true, _) => {
                            tracing::info!(connector = %id, "a scheduled fire was missed while the connector was disabled or not configured; running once now")
                        }
                        (_, false, Some(Resume::CutOff { reason, windows })) => {
                            tracing::info!(connector = %id, reason = %reason, windows = %windows, "the last run did not finish (stopped, or its process died); running once now")
                        }
                        (_, false, Some(Resume::Retry { at, error })) => {
                            tracing::warn!(connector = %id, error = %error, retry_at = %at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "the last run failed with a retryable error; retrying after the restart")
                        }
                        (_, false, None) => {}
                    }
                }
                p
            }
        };
        let restore = !status.contains_key(id);
        let mut s = status_for(c, Some(&plan), status.get(id));
        if let (Install::Start, Some(days), true) = (why, plan.resume_range, c.config.enabled) {
            s.cut_off_backfill = Some(CutOffBackfill::new(id, days, true));
        }
        if s.last_run.is_none() {
            s.last_run = daemon.store.runs(id, 1)?.into_iter().next();
        }
        // New in /status (at start, or added by a reload): the failures
        // since the last success come from the run history, so a restart
        // does not show a failing connector as healthy.
        if restore {
            let (since, success) = daemon.store.runs_since_success(id)?;
            let (failures, error) = failures_from_history(&since);
            s.consecutive_failures = failures;
            s.last_error = error;
            s.last_success_at = success.and_then(|r| r.ended_at);
        }
        new_status.insert(id.clone(), s);
        if c.config.enabled {
            new_plans.insert(id.clone(), plan);
        }
    }
    // A connector the reload removed whose run goes on stays in the status
    // until that run ends ([`Daemon::drop_if_removed`]).
    for (id, mut s) in std::mem::take(&mut *status) {
        if s.running && !new_status.contains_key(&id) {
            s.removed = true;
            s.queued = false;
            s.next_fire = None;
            s.next_retry = None;
            new_status.insert(id, s);
        }
    }
    *plans = new_plans;
    *status = new_status;
    Ok(())
}

/// A time as `reckon status` prints it.
fn utc_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn finish_run(
    daemon: &Daemon,
    plans: &mut BTreeMap<String, Plan>,
    id: &str,
    result: Result<RunRecord, Failure>,
    now: DateTime<Utc>,
) {
    let mut last = daemon
        .store
        .runs(id, 1)
        .ok()
        .and_then(|r| r.into_iter().next());
    // A run whose end could not be saved (the store failed) still reads
    // `running` in the history: show how it ended.
    if let (Some(run), Err(f)) = (last.as_mut(), &result) {
        if run.outcome == RunOutcome::Running {
            run.outcome = RunOutcome::Failed;
            run.ended_at = Some(now);
            run.error = Some(f.error.clone());
        }
    }
    let stopping = daemon.shutdown.is_requested();
    let plan = plans.get_mut(id);
    match result {
        Ok(_) => {
            if let Some(p) = plan {
                p.attempts = 0;
                p.retry_at = None;
                p.resume_range = None;
                p.hold_until = None;
            }
            let backfill = last.as_ref().map(|run| daemon.backfill_after(id, run));
            daemon.with_status(id, |s| {
                s.running = false;
                s.queued = false;
                s.running_since = None;
                s.current_run = None;
                s.held_until = None;
                s.consecutive_failures = 0;
                s.last_error = None;
                s.next_retry = None;
                s.last_success_at = last.as_ref().and_then(|r| r.ended_at).or(s.last_success_at);
                if let Some(backfill) = backfill {
                    s.cut_off_backfill = backfill;
                }
                s.last_run = last;
            });
        }
        Err(failure) => {
            let mut e = failure.error;
            // A refused credential: the daemon holds the secrets it read at
            // its start or last reload (QA29-A L2: a secret file fixed on
            // disk went on failing with no word of the reload it needs).
            if e.contains("; check setting") {
                e.push_str(" (the daemon read its secrets at its start or last reload: after changing one, reload with SIGHUP)");
            }
            let mut retry_at = None;
            let mut hold_until = None;
            let mut backfill_dropped = false;
            if let Some(p) = plan {
                p.attempts += 1;
                // The platform asked to wait: neither the retry nor a fire
                // comes before that (ops QA34 D-M2: retries after 30 s, 60 s
                // ... hammered a network during its lock-out).
                if let Some(wait) = failure.wait.filter(|_| !stopping) {
                    p.hold_until = Some(now + wait);
                    hold_until = p.hold_until;
                }
                if p.attempts <= failure.retries && !stopping {
                    let at = now + retry_delay(p.attempts);
                    let at = p.hold_until.map_or(at, |h| at.max(h));
                    if p.next_fire.is_none_or(|f| at < f) {
                        p.retry_at = Some(at);
                        retry_at = Some(at);
                    }
                }
                // No retry: the next fire is a scheduled run again; the
                // backfill's days are left to the operator. Unless the
                // daemon is stopping: its next start runs them again
                // (QA29-E M3: the WARN said otherwise at every stop).
                if let Some((from, to)) = p.resume_range.filter(|_| retry_at.is_none() && !stopping)
                {
                    p.resume_range = None;
                    backfill_dropped = true;
                    tracing::warn!(connector = %id, from = %from, to = %to, "the cut-off backfill failed again and is not retried: run `reckon sync {id} --from {from} --to {to}`");
                }
                // When it is tried again, where the error alone would
                // mislead: "the next run tries again" of a long 429, and a
                // bad answer (ops QA34 D-M1).
                let next = p.due(now).map(utc_text).unwrap_or_else(|| "-".into());
                if let (Some(wait), Some(_)) = (failure.wait, hold_until) {
                    e.push_str(&format!(
                        " (the platform asked to wait {} s: the daemon tries again at {next}, not before)",
                        wait.num_seconds()
                    ));
                } else if failure.bad_answer && !stopping {
                    match retry_at {
                        Some(at) => e.push_str(&format!(
                            " (an answer that cannot be read is fetched again up to {BAD_ANSWER_RETRIES} times: retry {} at {})",
                            p.attempts,
                            utc_text(at)
                        )),
                        None => e.push_str(&format!(
                            " (not fetched again before the next scheduled run, at {next}; once the network's data is fixed, `reckon sync {id}` pulls it at once)"
                        )),
                    }
                }
            }
            match retry_at {
                Some(at) => {
                    tracing::warn!(connector = %id, error = %e, retry_at = %at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "run failed; retrying")
                }
                // Cut short by the daemon stopping: not a failure to alert
                // on; it re-runs at the next start (QA re-test N2).
                None if stopping => tracing::info!(
                    connector = %id,
                    error = %e,
                    "run interrupted by the shutdown; it runs again at the next start"
                ),
                None => tracing::warn!(connector = %id, error = %e, "run failed"),
            }
            // A backfill run again that failed for good, or another run
            // that took the place of one, is not run again.
            let backfill = (retry_at.is_none() && !stopping)
                .then(|| last.as_ref().map(|run| daemon.backfill_after(id, run)))
                .flatten();
            daemon.with_status(id, |s| {
                s.running = false;
                s.queued = false;
                s.running_since = None;
                s.current_run = None;
                if !stopping {
                    s.consecutive_failures += 1;
                }
                s.last_error = Some(e);
                s.next_retry = retry_at;
                if hold_until.is_some() {
                    s.held_until = hold_until;
                }
                if let Some(backfill) = backfill {
                    s.cut_off_backfill = backfill;
                } else if backfill_dropped {
                    if let Some(b) = s.cut_off_backfill.as_mut() {
                        b.runs_again = false;
                    }
                }
                s.last_run = last;
            });
        }
    }
    daemon.drop_if_removed(id);
}

/// The `[daemon]` settings read once at start (the listener, the store, the
/// sync slots and the log writer) whose value in `new` differs from the one
/// the daemon runs with (`running`): they take effect after a restart.
pub fn restart_needed(
    running: &crate::config::DaemonConfig,
    new: &crate::config::DaemonConfig,
) -> Vec<&'static str> {
    [
        ("listen", running.listen != new.listen),
        ("data_dir", running.data_dir != new.data_dir),
        (
            "max_concurrent_syncs",
            running.max_concurrent_syncs != new.max_concurrent_syncs,
        ),
        (
            "http_header_timeout_secs",
            running.http_header_timeout_secs != new.http_header_timeout_secs,
        ),
        (
            "max_http_connections",
            running.max_http_connections != new.max_http_connections,
        ),
        ("log_format", running.log_format != new.log_format),
        (
            "store_cache_mb",
            running.store_cache_mb != new.store_cache_mb,
        ),
    ]
    .into_iter()
    .filter_map(|(key, differs)| differs.then_some(key))
    .collect()
}

/// How a reload's refusal of an emptied file ([`refuse_emptied`]) begins:
/// `/status` tells it from the errors `reckon config check` lists (it
/// accepts such a file).
pub const EMPTIED_FILE: &str = "the file has no connectors and no programs";

/// A reload's new config `new` with no connectors and no programs, while
/// the `running` one has some, is refused: such a file is far more often
/// one emptied or cut short (an editor or a config-management run caught
/// writing it) than a wish to stop everything (QA20 R20-3: every sync and
/// every program stopped, logged at INFO, counted a success). A restart
/// runs with it, if it is meant.
fn refuse_emptied(
    running: &Runtime,
    new: Runtime,
    path: &std::path::Path,
) -> Result<Runtime, Vec<crate::config::ConfigError>> {
    let (connectors, programs) = (running.connectors.len(), running.config.programs.len());
    let emptied =
        new.connectors.is_empty() && new.config.programs.is_empty() && connectors + programs > 0;
    if !emptied {
        return Ok(new);
    }
    Err(vec![crate::config::ConfigError {
        file: path.display().to_string(),
        line: None,
        column: None,
        path: String::new(),
        message: format!(
            "{EMPTIED_FILE}, while the running config has {connectors} connector(s) and {programs} program(s): it looks empty or truncated (an editor or a config-management run writing it?), so the running config is kept; restore the file and reload, or, if an empty config is meant, restart the daemon, which then runs with it"
        ),
    }])
}

/// SIGHUP: parse and resolve the config file again (connectors and postback
/// endpoints, as `reckon config check` does); on any error keep the old
/// config and log every error. A valid config replaces connectors and
/// postback endpoints together, and the log line names what changed.
/// Either outcome is recorded in [`Daemon::config_state`] for `/status`
/// and `/metrics`.
/// Returns the `[daemon]` settings that wait for a restart (logged as a
/// warning on every reload while they differ from the running ones).
fn reload(daemon: &Daemon, plans: &mut BTreeMap<String, Plan>) -> Vec<&'static str> {
    let path = &daemon.config_path;
    let (text, parsed) = config_state::read_config(path);
    let new = parsed
        .map_err(|e| e.0)
        .and_then(Runtime::resolve)
        .and_then(|new| refuse_emptied(&daemon.runtime(), new, path));
    match new {
        Err(mut errors) => {
            for e in &mut errors {
                // A new `env:` secret: exporting it "before starting reckon"
                // is not what a running daemon needs.
                e.message = e.message.replace(
                    crate::config::resolve::ENV_NOT_SET_FIX,
                    crate::config::resolve::ENV_NOT_SET_ON_RELOAD,
                );
                tracing::error!(error = %e, "config reload rejected");
            }
            tracing::error!(
                errors = errors.len(),
                "SIGHUP: the new config has errors; the old config keeps running"
            );
            daemon.config_state.rejected(Utc::now(), &errors);
            Vec::new()
        }
        Ok(runtime) => {
            let old = daemon.runtime();
            let restart = restart_needed(&daemon.started_with, &runtime.config.daemon);
            if !restart.is_empty() {
                tracing::warn!(
                    settings = %restart.join(","),
                    "SIGHUP: these [daemon] settings differ from the ones the daemon started with and take effect after a restart; the daemon keeps running with the old ones"
                );
            }
            let ids = |rt: &Runtime| -> std::collections::BTreeSet<String> {
                rt.connectors.iter().map(|c| c.config.id.clone()).collect()
            };
            let (old_ids, new_ids) = (ids(&old), ids(&runtime));
            // A connector changed when its section did (Debug text compares
            // the whole parsed section) or a secret it reads has another
            // value (same reference, e.g. an env var changed before SIGHUP).
            fn connector_state(c: &ResolvedConnector) -> (String, Vec<(&str, &str)>) {
                let secrets = c.policy.secrets.iter();
                let secrets = secrets.map(|(name, s)| (name.as_str(), s.0.as_str()));
                (format!("{:?}", c.config), secrets.collect())
            }
            // The connectors in both configs whose `key` differs.
            fn changed<'a, K: PartialEq + 'a>(
                old: &'a Runtime,
                new: &'a Runtime,
                key: impl Fn(&'a ResolvedConnector) -> K,
            ) -> Vec<&'a ResolvedConnector> {
                let before: BTreeMap<&str, K> = (old.connectors.iter())
                    .map(|c| (c.config.id.as_str(), key(c)))
                    .collect();
                (new.connectors.iter())
                    .filter(|c| {
                        before
                            .get(c.config.id.as_str())
                            .is_some_and(|o| *o != key(c))
                    })
                    .collect()
            }
            let connectors_changed: Vec<String> = changed(&old, &runtime, connector_state)
                .into_iter()
                .map(|c| c.config.id.clone())
                .collect();
            // Connectors whose plugin library is another file now (a new
            // build installed: the reload loads it; QA48 I-L3).
            let plugins_changed: Vec<String> =
                changed(&old, &runtime, |c| c.plugin.sha256.as_str())
                    .into_iter()
                    .map(|c| {
                        let sha = &c.plugin.sha256;
                        format!("{}@{}", c.config.id, &sha[..12.min(sha.len())])
                    })
                    .collect();
            // Programs (matching, commission) and [fx] apply from the next
            // reconcile and statement run; the log says which changed. Debug
            // text compares the whole parsed section.
            let programs = |rt: &Runtime| -> BTreeMap<String, String> {
                rt.config
                    .programs
                    .iter()
                    .map(|p| (p.id.clone(), format!("{p:?}")))
                    .collect()
            };
            let (old_programs, new_programs) = (programs(&old), programs(&runtime));
            // What stops: said at WARN, by name (QA20 R20-3: a truncated
            // file dropped every connector at INFO).
            let connectors_removed: Vec<&String> = old_ids.difference(&new_ids).collect();
            let programs_removed: Vec<&String> = old_programs
                .keys()
                .filter(|id| !new_programs.contains_key(*id))
                .collect();
            // A removed program's draft failures no longer show in
            // `/status` nor `/metrics` (QA29-A M3: its failure gauge stayed
            // up, and an alert on it could not clear).
            crate::payout::hook::forget_programs(&programs_removed);
            let postback_ids = |rt: &Runtime| -> BTreeSet<String> {
                rt.config.postbacks.iter().map(|p| p.id.clone()).collect()
            };
            let (old_postbacks, new_postbacks) = (postback_ids(&old), postback_ids(&runtime));
            let postbacks_removed: Vec<&String> =
                old_postbacks.difference(&new_postbacks).collect();
            if !connectors_removed.is_empty()
                || !programs_removed.is_empty()
                || !postbacks_removed.is_empty()
            {
                let names = |kind: &str, v: &[&String]| {
                    (!v.is_empty()).then(|| {
                        format!(
                            "{kind} {}",
                            v.iter()
                                .map(|s| format!("`{s}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
                };
                let what = [
                    names("connector(s)", &connectors_removed),
                    names("program(s)", &programs_removed),
                    names("postback endpoint(s)", &postbacks_removed),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" and ");
                tracing::warn!(
                    connectors_removed = %connectors_removed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
                    programs_removed = %programs_removed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
                    "SIGHUP: the new config removes {what}: their syncs, postbacks (answered 404, which networks do not re-send), reconciliation and drafts stop (what is stored stays); if that was not meant, restore the file and reload again"
                );
            }
            let programs_changed: Vec<&String> = new_programs
                .iter()
                .filter(|(id, p)| old_programs.get(*id) != Some(*p))
                .map(|(id, _)| id)
                .chain(
                    old_programs
                        .keys()
                        .filter(|id| !new_programs.contains_key(*id)),
                )
                .collect();
            // The table, not the section: a rates CSV edited in place keeps
            // the section's text (QA: `fx_changed=false` after new rates).
            let fx_changed = old.fx_fingerprint != runtime.fx_fingerprint;
            // Named, never its value (security QA22 S4); and a token
            // removed from a daemon others can reach is said at WARN, as
            // the start's exposure warning (S3).
            let status_token = match (&old.status_token, &runtime.status_token) {
                (None, None) => "none",
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(a), Some(b)) if a == b => "unchanged",
                (Some(_), Some(_)) => "changed",
            };
            if status_token == "removed" {
                let listen = daemon.started_with.listen;
                if let Some(exposure) = crate::server::listener::public_exposure(listen, false) {
                    tracing::warn!(listen = %listen, "SIGHUP: `status_token` was removed: {exposure}");
                }
            }
            // The reporting timezone (QA29-A L4: its change showed only as
            // the programs whose statements or KPI days depend on it).
            fn change<T: PartialEq + std::fmt::Display>(a: T, b: T) -> String {
                if a == b {
                    "unchanged".to_owned()
                } else {
                    format!("{a} -> {b}")
                }
            }
            let timezone = change(&old.config.daemon.timezone, &runtime.config.daemon.timezone);
            // A rule, override or bonus a finalised period used, edited
            // since (QA33d M6): said at WARN, as `config check` says it.
            if programs_changed
                .iter()
                .any(|id| new_programs.contains_key(*id))
            {
                crate::config::settled::log_term_changes(&daemon.store, &runtime.config);
            }
            let runtime_rejudge = runtime.config.daemon.rejudge_interval_secs;
            let postbacks = runtime.config.postbacks.clone();
            for weak in postbacks
                .iter()
                .filter_map(crate::server::postback::weak_secret)
            {
                tracing::warn!("SIGHUP: {weak}");
            }
            let changes = {
                // Both swap under the runtime lock: nobody reading the
                // runtime sees new connectors with old endpoints.
                let mut rt = daemon.runtime.write().unwrap_or_else(|p| p.into_inner());
                let changes = daemon.postbacks.replace(postbacks);
                *rt = Arc::new(runtime);
                changes
            };
            let list = |v: Vec<&String>| {
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    v.into_iter().cloned().collect::<Vec<_>>().join(",")
                }
            };
            let rejudge = change(old.config.daemon.rejudge_interval_secs, runtime_rejudge);
            daemon.config_state.reloaded(Utc::now(), text, &restart);
            // A permit if the clock is not waiting: it takes it next.
            daemon.reloaded.notify_one();
            match install_plans(daemon, plans, Utc::now(), Install::Reload) {
                Ok(()) => tracing::info!(
                    connectors = new_ids.len(),
                    scheduled = plans.len(),
                    connectors_added = %list(new_ids.difference(&old_ids).collect()),
                    connectors_removed = %list(old_ids.difference(&new_ids).collect()),
                    connectors_changed = %list(connectors_changed.iter().collect()),
                    plugins_changed = %list(plugins_changed.iter().collect()),
                    postbacks = daemon.postbacks.status().len(),
                    postbacks_added = %list(changes.added.iter().collect()),
                    postbacks_removed = %list(changes.removed.iter().collect()),
                    postbacks_changed = %list(changes.changed.iter().collect()),
                    programs_changed = %list(programs_changed),
                    fx_changed,
                    timezone = %timezone,
                    rejudge_interval_secs = %rejudge,
                    status_token = %status_token,
                    "SIGHUP: config reloaded"
                ),
                Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed"),
            }
            restart
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use plugin_api::Connector;

    /// The store's cache is sized when the store opens, at start: a
    /// reload that changes it says it needs a restart.
    #[test]
    fn a_changed_store_cache_needs_a_restart() {
        let running = crate::config::DaemonConfig::default();
        let mut new = running.clone();
        assert!(restart_needed(&running, &new).is_empty());
        new.store_cache_mb = 4096;
        assert_eq!(restart_needed(&running, &new), ["store_cache_mb"]);
    }

    // QA6 F12: an address not on this host was asked "is another reckon
    // running?", the hint of a port in use.
    #[test]
    fn a_run_interrupted_by_a_stop_is_not_a_failure() {
        let t = |h: u32| {
            format!("2026-11-30T{h:02}:00:00Z")
                .parse::<DateTime<Utc>>()
                .unwrap()
        };
        let rec = |h, outcome, error: &str| {
            crate::test_support::run_record("net", t(h), outcome, Some(error), Some(true))
        };
        // Newest first: stopped, failed, stopped, failed.
        let since = [
            rec(4, RunOutcome::Interrupted, "interrupted by the shutdown"),
            rec(3, RunOutcome::Failed, "HTTP 500"),
            rec(2, RunOutcome::Interrupted, "interrupted by the shutdown"),
            rec(1, RunOutcome::Failed, "HTTP 502"),
        ];
        assert_eq!(
            failures_from_history(&since),
            (2, Some("HTTP 500".to_string()))
        );
        assert_eq!(failures_from_history(&since[..1]), (0, None));
        // A process that died during its run (killed, crashed) is one.
        let died = format!("{} (killed or crashed)", crate::store::DIED_UNFINISHED);
        let crashed = [rec(5, RunOutcome::Interrupted, &died)];
        assert_eq!(failures_from_history(&crashed), (1, Some(died)));
    }

    #[test]
    fn a_listen_error_hints_at_its_own_cause() {
        let config = std::path::Path::new("reckon.toml");
        let not_here: std::net::SocketAddr = "10.255.255.1:9187".parse().unwrap();
        let e = bind_listener(config, not_here).unwrap_err().to_string();
        assert!(
            e.contains("no network interface of this machine has that address")
                && !e.contains("another"),
            "{e}"
        );
        let in_use = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = in_use.local_addr().unwrap();
        let e = bind_listener(config, addr).unwrap_err().to_string();
        assert!(e.contains("another process listens there"), "{e}");
    }

    fn connector(schedule: &str) -> ResolvedConnector {
        let text = format!(
            "[[connectors]]\nid = \"net\"\nplugin = \"example\"\nschedule = \"{schedule}\"\ntimezone = \"Europe/Berlin\"\n[connectors.settings]\napi_key = {{ secret = \"env:K\" }}\n"
        );
        let cfg = crate::config::parse(&text, "t.toml").unwrap();
        let load = |d: &std::path::Path, _: &str, _: Option<&str>| {
            Ok(Arc::new(crate::plugins::Plugin::from_manifest(
                d.join("x.so"),
                reckon_plugin_example::Example::manifest(),
            )))
        };
        let secret = |_: &crate::config::SecretRef| Ok("k".to_string());
        crate::config::resolve(&cfg, &load, &secret)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_fire_missed_while_down_runs_once_at_start() {
        let c = connector("0 6 * * *");
        let now: DateTime<Utc> = "2026-06-10T12:00:00Z".parse().unwrap();
        // Last fired yesterday 06:00 Berlin; today's 06:00 was missed.
        let p = initial_plan(&c, Some("2026-06-09T04:00:00Z".parse().unwrap()), now);
        assert!(p.catch_up);
        assert_eq!(p.due(now), Some(now));
        assert_eq!(p.next_fire, Some("2026-06-11T04:00:00Z".parse().unwrap()));
        // Last fired today 06:00: nothing missed.
        let p = initial_plan(&c, Some("2026-06-10T04:00:00Z".parse().unwrap()), now);
        assert!(!p.catch_up);
        // Never fired (first start): wait for the schedule, no catch-up.
        assert!(!initial_plan(&c, None, now).catch_up);
    }

    #[test]
    fn scheduled_window_is_checkpoint_minus_lookback_through_today() {
        let c = connector("0 6 * * *");
        let now: DateTime<Utc> = "2026-06-10T23:30:00Z".parse().unwrap(); // 11 June in Berlin
        let mut cps = BTreeMap::new();
        let (from, to) = crate::sync::scheduled_range(&c, &cps, now);
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2026-06-04".into(), "2026-06-11".into())
        );
        for s in ["conversions", "reversals"] {
            cps.insert(
                s.to_string(),
                plugin_api::protocol::Checkpoint {
                    stream: s.into(),
                    watermark: if s == "reversals" {
                        "2026-06-01T00:00:00Z".parse().unwrap()
                    } else {
                        "2026-06-09T00:00:00Z".parse().unwrap()
                    },
                    state: serde_json::Value::Null,
                    covers: None,
                },
            );
        }
        let (from, to) = crate::sync::scheduled_range(&c, &cps, now);
        // The oldest stream's watermark (1 June, 02:00 Berlin) minus 7 days.
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2026-05-25".into(), "2026-06-11".into())
        );
        // A stream this configuration never fills (no checkpoint) does not
        // turn the run into a first run: after an outage the window still
        // starts at the other stream's checkpoint, so the gap is pulled.
        cps.remove("conversions");
        let later: DateTime<Utc> = "2026-09-01T12:00:00Z".parse().unwrap();
        let (from, to) = crate::sync::scheduled_range(&c, &cps, later);
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2026-05-25".into(), "2026-09-01".into())
        );
    }

    fn test_daemon(dir: &std::path::Path, c: &ResolvedConnector) -> Daemon {
        let cfg = crate::config::parse("", "t.toml").unwrap();
        Daemon {
            started_with: cfg.daemon.clone(),
            config_state: config_state::ConfigTracker::new(Utc::now(), None),
            reloaded: tokio::sync::Notify::new(),
            store: Store::open(dir).unwrap(),
            metrics: Arc::new(Metrics::default()),
            shutdown: crate::sync::Shutdown::new(),
            runtime: RwLock::new(Arc::new(Runtime {
                config: cfg,
                connectors: vec![c.clone()],
                fx_fingerprint: None,
                status_token: None,
            })),
            status: Mutex::new(BTreeMap::new()),
            started_at: Utc::now(),
            config_path: dir.join("t.toml"),
            host_exe: PathBuf::from("reckon"),
            postbacks: Default::default(),
            active: Default::default(),
        }
    }

    #[test]
    fn a_connector_claimed_by_a_client_sync_is_busy_for_the_schedule_until_released() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        let now: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let mut plans = due_at(&daemon, &c, now);
        assert!(daemon.claim("net"));
        assert!(!daemon.claim("net"), "one run per connector");
        assert!(daemon.status_snapshot()[0].running);
        let rt = daemon.runtime();
        // The scheduled fire finds it busy and is skipped.
        assert!(take_due(&daemon, &rt, &mut plans, &mut daemon.active(), now).is_empty());
        daemon.release("net");
        assert!(!daemon.status_snapshot()[0].running);
        assert!(daemon.claim("net"));
    }

    /// QA29-A L5: a connector a reload removes while its run goes on stays
    /// in the status (marked removed) until that run ends; one not running
    /// goes at once, and one added back is an ordinary connector again.
    #[test]
    fn a_connector_removed_while_it_runs_shows_until_its_run_ends() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        let now: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, now, Install::Start).unwrap();
        assert!(daemon.claim("net"));
        let set = |connectors: Vec<ResolvedConnector>| {
            let mut rt = daemon.runtime.write().unwrap();
            *rt = Arc::new(Runtime {
                config: rt.config.clone(),
                connectors,
                fx_fingerprint: None,
                status_token: None,
            });
        };
        // Removed while running: still shown, marked, with nothing next.
        set(vec![]);
        install_plans(&daemon, &mut plans, now, Install::Reload).unwrap();
        assert!(plans.is_empty());
        let st = daemon.status_snapshot();
        assert_eq!(st.len(), 1);
        assert!(st[0].removed && st[0].running, "{st:?}");
        assert_eq!((st[0].next_fire, st[0].next_retry), (None, None));
        // Another reload while it still runs keeps it.
        install_plans(&daemon, &mut plans, now, Install::Reload).unwrap();
        assert_eq!(daemon.status_snapshot().len(), 1);
        // Its run ends: gone.
        daemon.release("net");
        assert!(daemon.status_snapshot().is_empty());

        // Added back while running: an ordinary connector again.
        set(vec![c.clone()]);
        install_plans(&daemon, &mut plans, now, Install::Reload).unwrap();
        assert!(daemon.claim("net"));
        set(vec![]);
        install_plans(&daemon, &mut plans, now, Install::Reload).unwrap();
        set(vec![c.clone()]);
        install_plans(&daemon, &mut plans, now, Install::Reload).unwrap();
        let st = daemon.status_snapshot();
        assert!(
            !st[0].removed && st[0].running && st[0].next_fire.is_some(),
            "{st:?}"
        );
        daemon.release("net");
        assert_eq!(daemon.status_snapshot().len(), 1);

        // Removed while idle: gone at once.
        set(vec![]);
        install_plans(&daemon, &mut plans, now, Install::Reload).unwrap();
        assert!(daemon.status_snapshot().is_empty());
    }

    #[test]
    fn a_disabled_connector_shows_no_next_fire_and_a_failed_backfill_shows_its_error() {
        let mut c = connector("* * * * *");
        let now: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let plan = initial_plan(&c, None, now);
        assert!(status_for(&c, Some(&plan), None).next_fire.is_some());
        c.config.enabled = false;
        let s = status_for(&c, Some(&plan), None);
        assert_eq!((s.next_fire, s.next_retry), (None, None));

        // A client's backfill that failed: status names the error, as after
        // a scheduled run; a later successful one clears it.
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        daemon
            .status
            .lock()
            .unwrap()
            .insert("net".into(), status_for(&c, None, None));
        let mut run = run_record(
            now,
            RunOutcome::Failed,
            Some("HTTP 400: bad window"),
            Some(false),
        );
        assert!(daemon.claim("net"));
        daemon.store.save_run(&run).unwrap();
        daemon.release("net");
        let st = &daemon.status_snapshot()[0];
        assert_eq!(st.last_error.as_deref(), Some("HTTP 400: bad window"));
        assert_eq!(st.consecutive_failures, 1, "as a restart counts it");
        assert_eq!(st.last_success_at, None);
        run.started_at = now + Duration::hours(1);
        run.ended_at = Some(now + Duration::hours(2));
        run.outcome = RunOutcome::Success;
        run.error = None;
        assert!(daemon.claim("net"));
        daemon.store.save_run(&run).unwrap();
        daemon.release("net");
        assert_eq!(daemon.status_snapshot()[0].last_error, None);
        assert_eq!(daemon.status_snapshot()[0].consecutive_failures, 0);
        assert_eq!(
            daemon.status_snapshot()[0].last_success_at,
            Some(now + Duration::hours(2))
        );
    }

    #[test]
    fn a_fire_skipped_because_the_previous_run_is_active_still_moves_next_fire_in_status() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        // 06:00 Berlin: the fire is due now.
        let now: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let mut plans = due_at(&daemon, &c, now);
        let rt = daemon.runtime();
        // The previous run is still going: nothing starts...
        let mut active = std::collections::BTreeSet::from(["net".to_string()]);
        assert!(take_due(&daemon, &rt, &mut plans, &mut active, now).is_empty());
        // ...but the plan and /status both show tomorrow's fire, not the skipped one.
        let tomorrow: DateTime<Utc> = "2026-06-11T04:00:00Z".parse().unwrap();
        assert_eq!(plans["net"].next_fire, Some(tomorrow));
        let st = daemon.status_snapshot();
        assert_eq!(st[0].next_fire, Some(tomorrow));
        assert!(!st[0].running);
        // The loop wakes for the busy connector's next fire too (to skip it
        // then, not run it late), and not before: no busy loop.
        assert_eq!(next_due(&plans, now), Some(tomorrow));

        // Not active: the fire starts a run, queued until the run task has
        // a sync slot (then `running`).
        let later = tomorrow;
        let mut active = std::collections::BTreeSet::new();
        let started = take_due(&daemon, &rt, &mut plans, &mut active, later);
        assert_eq!(started.len(), 1);
        assert!(active.contains("net"));
        let st = daemon.status_snapshot();
        assert!(st[0].queued && !st[0].running);
        assert_eq!(
            st[0].next_fire,
            Some("2026-06-12T04:00:00Z".parse().unwrap())
        );
        // Its next fire while it waits for a slot says it is queued, not
        // in progress (soak QA31-D L3).
        let next = "2026-06-12T04:00:00Z".parse().unwrap();
        let lines = crate::test_support::json_lines(|| {
            assert!(take_due(&daemon, &rt, &mut plans, &mut active, next).is_empty());
        });
        let said: Vec<&str> = (lines.iter())
            .filter_map(|l| l["fields"]["message"].as_str())
            .collect();
        assert_eq!(
            said,
            ["previous run still queued (all max_concurrent_syncs slots busy); this fire is skipped"]
        );
    }

    /// One plan, connector "net" due at `at`, with its /status entry.
    fn due_at(daemon: &Daemon, c: &ResolvedConnector, at: DateTime<Utc>) -> BTreeMap<String, Plan> {
        let plans = BTreeMap::from([(
            "net".to_string(),
            Plan {
                next_fire: Some(at),
                catch_up: false,
                retry_at: None,
                attempts: 0,
                resume_range: None,
                hold_until: None,
            },
        )]);
        daemon
            .status
            .lock()
            .unwrap()
            .insert("net".into(), status_for(c, plans.get("net"), None));
        plans
    }

    fn run_record(
        started_at: DateTime<Utc>,
        outcome: RunOutcome,
        error: Option<&str>,
        retryable: Option<bool>,
    ) -> RunRecord {
        crate::test_support::run_record("net", started_at, outcome, error, retryable)
    }

    /// QA (ops #1): `attempts` counted every failed run in a row across
    /// fires, so after 5 failed runs later fires got no retry at all, and
    /// before that each fire's first retry started at the grown delay.
    #[test]
    fn each_cron_fire_gets_its_own_retries_starting_at_30_s() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        let first: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let mut plans = due_at(&daemon, &c, first);
        let rt = daemon.runtime();
        let fail = |plans: &mut BTreeMap<String, Plan>, at: DateTime<Utc>| {
            let started = take_due(&daemon, &rt, plans, &mut daemon.active(), at);
            assert_eq!(started.len(), 1, "nothing started at {at}");
            daemon.active().remove("net");
            let ended = at + Duration::seconds(5);
            finish_run(
                &daemon,
                plans,
                "net",
                Err(Failure::retryable("server error (HTTP 500)")),
                ended,
            );
            (ended, plans["net"].retry_at)
        };
        // Three days of outage: every fire fails, and so does every retry.
        for day in 0..3 {
            let fire = first + Duration::days(day);
            assert_eq!(plans["net"].next_fire, Some(fire));
            let (mut ended, mut retry) = fail(&mut plans, fire);
            for n in 1..=MAX_RETRIES {
                assert_eq!(
                    retry,
                    Some(ended + retry_delay(n)),
                    "day {day}: retry {n} after the fire"
                );
                (ended, retry) = fail(&mut plans, retry.unwrap());
            }
            assert_eq!(retry, None, "day {day}: at most {MAX_RETRIES} retries");
            assert_eq!(
                daemon.status_snapshot()[0].consecutive_failures,
                (day as u32 + 1) * (MAX_RETRIES + 1)
            );
        }
    }

    /// A store in `dir` whose connector "net" fired at 2026-06-10T04:00Z
    /// and whose run over `windows` was left `running` (the process died);
    /// returns the fire.
    fn cut_off_run(dir: &std::path::Path, windows: &[&str]) -> DateTime<Utc> {
        let fire: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let store = Store::open(dir).unwrap();
        store.set_last_fire("net", fire).unwrap();
        let mut run = run_record(fire, RunOutcome::Running, None, None);
        run.windows = windows.iter().map(|w| w.to_string()).collect();
        store.save_run(&run).unwrap();
        fire
    }

    /// QA (ops #2): a run cut off by SIGTERM, kill -9 or a crash counted as
    /// done (its fire was persisted when it started), so nothing ran again
    /// until the next fire, a day later for a daily connector.
    #[test]
    fn a_run_cut_off_by_a_stop_or_a_crash_runs_once_at_start() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        // The 06:00 fire started a run; the process died during it.
        let fire = cut_off_run(dir.path(), &["2026-06-01..2026-06-10"]);
        // Opening the store closes the stale run as `interrupted`.
        let daemon = test_daemon(dir.path(), &c);
        let now = fire + Duration::hours(2);
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, now, Install::Start).unwrap();
        let p = &plans["net"];
        assert!(p.catch_up, "{p:?}");
        assert_eq!(p.due(now), Some(now));
        assert_eq!(p.next_fire, Some(fire + Duration::days(1)));
        let st = &daemon.status_snapshot()[0];
        assert_eq!(
            st.last_run.as_ref().map(|r| r.outcome),
            Some(RunOutcome::Interrupted)
        );
        assert_eq!(st.consecutive_failures, 1);
        assert!(st
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("ended without finishing it")));

        // With a fire missed too, still said to be cut off (soak QA18 F3:
        // the start log named only the missed fire, not the reason).
        let later = fire + Duration::days(1) + Duration::hours(1);
        let mut missed = initial_plan(&c, Some(fire), later);
        assert!(missed.catch_up, "{missed:?}");
        let last = daemon.store.runs("net", 1).unwrap();
        assert!(matches!(
            resume(&mut missed, last.first(), later),
            Some(Resume::CutOff { windows, .. }) if windows == "2026-06-01..2026-06-10"
        ));

        // A reload does not (the run may be going on: a connector removed
        // and added back while it runs).
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, now, Install::Reload).unwrap();
        assert!(!plans["net"].catch_up);

        // Once a run finished, a restart has nothing to catch up.
        let done = run_record(now, RunOutcome::Success, None, None);
        daemon.store.save_run(&done).unwrap();
        daemon.status.lock().unwrap().clear();
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, now, Install::Start).unwrap();
        assert!(!plans["net"].catch_up);
        assert_eq!(daemon.status_snapshot()[0].consecutive_failures, 0);
    }

    /// Ops QA34 D-M2, across a restart: the platform's wait is recorded
    /// with the failed run (`not_before`), so the daemon started during it
    /// holds the retry and the fires until then (the hold was in memory
    /// only: a restart retried after 30 s); a wait already over holds
    /// nothing.
    #[test]
    fn a_platform_wait_recorded_with_the_last_run_holds_the_runs_after_a_restart() {
        let c = connector("*/5 * * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        // The real clock: status shows a hold while it is ahead of it.
        let now = Utc::now();
        let hold = now + Duration::minutes(19);
        let mut run = run_record(
            now - Duration::minutes(1),
            RunOutcome::Failed,
            Some("throttled"),
            Some(true),
        );
        run.not_before = Some(hold);
        daemon.store.save_run(&run).unwrap();
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, now, Install::Start).unwrap();
        let p = &plans["net"];
        assert_eq!(p.hold_until, Some(hold), "{p:?}");
        // The next fire (within 5 minutes) comes before the retry would: it
        // replaces it, and it is held.
        assert_eq!(p.due(now), Some(hold), "{p:?}");
        assert_eq!(
            p.due(now + Duration::minutes(10)),
            Some(hold),
            "a fire inside the wait is held"
        );
        assert_eq!(daemon.status_snapshot()[0].held_until, Some(hold));

        // Started after the wait: nothing held, the retry 30 s after start.
        let later = hold + Duration::minutes(1);
        daemon.status.lock().unwrap().clear();
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, later, Install::Start).unwrap();
        assert_eq!(plans["net"].hold_until, None);
    }

    /// QA21 A21-4: `reckon status` and `reckon sync` print a run's retries
    /// and 429 waits (the README said status counts them; only `--json` did).
    #[test]
    fn a_run_line_counts_retries_and_rate_limit_waits() {
        let now: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let mut r = run_record(now, RunOutcome::Success, None, None);
        assert_eq!(r.waits_text(), "");
        r.retries = 2;
        r.rate_limit_waits = 5;
        assert_eq!(r.waits_text(), ", 2 retries, 5 rate-limit waits");
    }

    /// QA21 A21-1: a backfill cut off by kill -9 ran at start as the
    /// scheduled run, so its older days were never pulled again although the
    /// log said "running once now". It runs with its own days, until a run
    /// of them ends.
    #[test]
    fn a_cut_off_backfill_runs_again_with_its_days() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let fire = cut_off_run(
            dir.path(),
            &["2026-01-01..2026-02-14", "2026-02-15..2026-03-31"],
        );
        let daemon = test_daemon(dir.path(), &c);
        let now = fire + Duration::hours(2);
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, now, Install::Start).unwrap();
        let days = (
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        );
        assert_eq!(plans["net"].resume_range, Some(days));
        let rt = daemon.runtime();
        let started = take_due(&daemon, &rt, &mut plans, &mut daemon.active(), now);
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1, Some(days));
        // A retryable failure keeps the days for the retry; success clears them.
        daemon.active().remove("net");
        finish_run(
            &daemon,
            &mut plans,
            "net",
            Err(Failure::retryable("HTTP 500")),
            now,
        );
        assert_eq!(plans["net"].resume_range, Some(days), "{:?}", plans["net"]);
        let ok = run_record(now, RunOutcome::Success, None, None);
        finish_run(&daemon, &mut plans, "net", Ok(ok), now);
        assert_eq!(plans["net"].resume_range, None);
        // A refused credential says the daemon's secrets need a reload
        // (QA29-A L2).
        finish_run(
            &daemon,
            &mut plans,
            "net",
            Err(Failure::permanent(
                "credentials refused (HTTP 401); check setting `api_key`",
            )),
            now,
        );
        let error = daemon.status_snapshot()[0].last_error.clone().unwrap();
        assert!(
            error.ends_with("check setting `api_key` (the daemon read its secrets at its start or last reload: after changing one, reload with SIGHUP)"),
            "{error}"
        );

        // A cut-off scheduled run: the scheduled run covers its days.
        let sched_from = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        assert_eq!(
            cut_off_backfill(&["2026-06-01..2026-06-10".into()], sched_from),
            None
        );
        assert_eq!(cut_off_backfill(&["not a window".into()], sched_from), None);
        assert_eq!(cut_off_backfill(&[], sched_from), None);
    }

    /// QA (ops #3): a pending retry was dropped on restart, and `/status`
    /// then showed `consecutive_failures: 0` and no `last_error` beside a
    /// failed last run.
    #[test]
    fn a_pending_retry_and_the_failures_survive_a_restart() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let fire: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.set_last_fire("net", fire).unwrap();
            for run in [
                run_record(fire - Duration::days(1), RunOutcome::Success, None, None),
                run_record(fire, RunOutcome::Failed, Some("HTTP 500: a"), Some(true)),
                run_record(
                    fire + Duration::seconds(35),
                    RunOutcome::Failed,
                    Some("HTTP 500: b"),
                    Some(true),
                ),
            ] {
                store.save_run(&run).unwrap();
            }
        }
        let daemon = test_daemon(dir.path(), &c);
        let now = fire + Duration::minutes(1);
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, now, Install::Start).unwrap();
        let p = &plans["net"];
        assert!(!p.catch_up, "{p:?}");
        assert_eq!(p.retry_at, Some(now + Duration::seconds(30)));
        assert_eq!(
            p.attempts, 1,
            "the retry's failure waits 60 s, then 120 s..."
        );
        let st = &daemon.status_snapshot()[0];
        assert_eq!(st.next_retry, Some(now + Duration::seconds(30)));
        assert_eq!(st.consecutive_failures, 2);
        assert_eq!(st.last_error.as_deref(), Some("HTTP 500: b"));
        // And in /metrics, as gauges a restart keeps (soak QA18 F5).
        let success = fire - Duration::days(1);
        assert_eq!(st.last_success_at, Some(success));
        let metrics = daemon.render_connector_metrics();
        assert!(
            metrics.contains("reckon_connector_consecutive_failures{connector=\"net\"} 2\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "reckon_connector_last_success_timestamp_seconds{{connector=\"net\"}} {}\n",
                success.timestamp()
            )),
            "{metrics}"
        );

        // A failure retrying cannot help (bad credentials) is not retried,
        // but still counted and shown.
        let bad = run_record(now, RunOutcome::Failed, Some("HTTP 401"), Some(false));
        daemon.store.save_run(&bad).unwrap();
        daemon.status.lock().unwrap().clear();
        let mut plans = BTreeMap::new();
        install_plans(&daemon, &mut plans, now, Install::Start).unwrap();
        assert_eq!(plans["net"].retry_at, None);
        let st = &daemon.status_snapshot()[0];
        assert_eq!(st.consecutive_failures, 3);
        assert_eq!(st.last_error.as_deref(), Some("HTTP 401"));
    }

    /// QA (ops #6): the "needs a restart" warning compared the file with
    /// the last *reloaded* config: a second SIGHUP forgot the pending
    /// restart, and going back to the running value warned.
    #[test]
    fn sighup_compares_daemon_settings_with_the_ones_the_daemon_runs() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("t.toml");
        let write = |port: u16| {
            std::fs::write(
                &config,
                format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\n"),
            )
            .unwrap()
        };
        write(29190);
        let mut daemon = test_daemon(dir.path(), &c);
        daemon.started_with = crate::config::load(&config).unwrap().daemon;
        // Running with no connector either: a file without any is no
        // emptied one (`a_reload_that_empties_the_config_is_rejected`).
        daemon.runtime = RwLock::new(Arc::new(Runtime {
            connectors: Vec::new(),
            ..(*daemon.runtime()).clone()
        }));
        let mut plans = BTreeMap::new();
        write(29194);
        assert_eq!(reload(&daemon, &mut plans), ["listen"]);
        // Unchanged file, still not the running value.
        assert_eq!(reload(&daemon, &mut plans), ["listen"]);
        // Back to the value the daemon listens on: nothing to restart for.
        write(29190);
        assert!(reload(&daemon, &mut plans).is_empty());
    }

    /// QA20 R20-3: a SIGHUP with an empty (or truncated) file dropped
    /// every connector and program, at INFO, counted a success. Such a
    /// reload is rejected like a file with errors: the running config
    /// keeps running, and `/status` and `/metrics` say it was rejected.
    #[test]
    fn a_reload_that_empties_the_config_is_rejected() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("t.toml");
        let daemon = test_daemon(dir.path(), &c);
        let mut plans = BTreeMap::new();
        for (i, text) in ["", "[daemon]\ntimezone = \"UTC\"\n"]
            .into_iter()
            .enumerate()
        {
            std::fs::write(&config, text).unwrap();
            let lines = crate::test_support::json_lines_at(tracing::Level::INFO, || {
                reload(&daemon, &mut plans);
            });
            let rejected = lines
                .iter()
                .find(|l| l["fields"]["message"] == "config reload rejected")
                .unwrap_or_else(|| panic!("{lines:?}"));
            assert_eq!(rejected["level"], "ERROR");
            let error = rejected["fields"]["error"].as_str().unwrap();
            assert!(
                error.contains("the file has no connectors and no programs, while the running config has 1 connector(s) and 0 program(s): it looks empty or truncated")
                    && error.contains("if an empty config is meant, restart the daemon, which then runs with it"),
                "{error}"
            );
            assert!(
                !lines
                    .iter()
                    .any(|l| l["fields"]["message"] == "SIGHUP: config reloaded"),
                "{lines:?}"
            );
            assert_eq!(
                daemon.runtime().connectors.len(),
                1,
                "the running config is kept"
            );
            let state = daemon.config_state.status(&config);
            let last = state.last_reload.unwrap();
            assert_eq!(last.outcome, config_state::ReloadOutcome::Rejected);
            assert!(last
                .first_error
                .unwrap()
                .contains("looks empty or truncated"));
            assert_eq!(state.reloads_rejected, i as u64 + 1);
            assert_eq!(state.reloads_ok, 0);
            assert!(daemon
                .config_state
                .render_metrics(&config)
                .contains("reckon_config_last_reload_success 0\n"));
        }
        // A daemon that runs with nothing may reload nothing.
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("t.toml");
        let mut empty = test_daemon(dir.path(), &c);
        empty.runtime = RwLock::new(Arc::new(Runtime {
            connectors: Vec::new(),
            ..(*empty.runtime()).clone()
        }));
        std::fs::write(&config, "").unwrap();
        reload(&empty, &mut plans);
        let last = empty.config_state.status(&config).last_reload.unwrap();
        assert_eq!(last.outcome, config_state::ReloadOutcome::Ok);
    }

    #[test]
    fn retry_backoff_doubles_and_caps() {
        assert_eq!(retry_delay(1), Duration::seconds(30));
        assert_eq!(retry_delay(2), Duration::seconds(60));
        assert_eq!(retry_delay(4), Duration::seconds(240));
        assert_eq!(retry_delay(30), Duration::seconds(RETRY_MAX_SECS));
    }

    #[test]
    fn plan_due_prefers_catch_up_then_earliest() {
        let now: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().unwrap();
        let p = Plan {
            next_fire: Some(now + Duration::hours(1)),
            catch_up: false,
            retry_at: Some(now + Duration::minutes(5)),
            attempts: 1,
            resume_range: None,
            hold_until: None,
        };
        assert_eq!(p.due(now), Some(now + Duration::minutes(5)));
        let p = Plan {
            catch_up: true,
            ..p
        };
        assert_eq!(p.due(now), Some(now));
    }

    /// `reckon status` text of these connectors.
    fn status_text(connectors: Vec<ConnectorStatus>) -> String {
        crate::server::status::StatusReport {
            started_at: Utc::now(),
            version: None,
            config: "reckon.toml".into(),
            data_dir: None,
            store_size_bytes: Some(1),
            connectors,
            postbacks: vec![],
            programs: vec![],
            reconciliation: vec![],
            drafts: vec![],
            cut_short: vec![],
            store_failure: None,
            config_state: None,
            draft_schedules: vec![],
            kpi_summaries: None,
        }
        .render()
    }

    /// A failure of "net" with `error` of `kind`, its last session having
    /// been refused a wait of `wait_secs`.
    fn session_failure(
        kind: plugin_api::ErrorKind,
        retryable: bool,
        wait_secs: Option<u32>,
        error: &str,
    ) -> Failure {
        Failure::of(&SyncError::Session(crate::plugins::SessionError {
            connector: "net".into(),
            kind,
            retryable,
            message: error.into(),
            report: crate::plugins::SessionReport {
                refused_wait_secs: wait_secs,
                ..Default::default()
            },
        }))
    }

    /// Ops QA34 D-M2: a 429 asking to wait 1200 s (longer than a run
    /// waits) failed the run, which was retried after 30 s, 60 s, ... and
    /// run again at every fire inside the platform's lock-out, while the
    /// error said "the next run tries again". Neither the retry nor a fire
    /// comes before the wait is over, and the error says when.
    #[test]
    fn a_long_platform_wait_holds_the_retry_and_the_fires() {
        let fire: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let ended = fire + Duration::seconds(5);
        let over = ended + Duration::seconds(1200);
        let throttled = || {
            session_failure(
                plugin_api::ErrorKind::RateLimited,
                true,
                Some(1200),
                "stream `conversions` page 1: rate limited (HTTP 429); the platform asks to wait 1200 s, longer than a run waits for a rate limit (900 s): not waiting, the next run tries again",
            )
        };
        assert_eq!(throttled().wait, Some(Duration::seconds(1200)));
        assert_eq!(throttled().retries, MAX_RETRIES);
        // `schedule` fired at 04:00 and its run failed so at 04:00:05.
        let failed = |schedule: &str, dir: &std::path::Path| {
            let c = connector(schedule);
            let daemon = test_daemon(dir, &c);
            let mut plans = due_at(&daemon, &c, fire);
            let rt = daemon.runtime();
            assert_eq!(
                take_due(&daemon, &rt, &mut plans, &mut daemon.active(), fire).len(),
                1
            );
            daemon.active().remove("net");
            finish_run(&daemon, &mut plans, "net", Err(throttled()), ended);
            (daemon, plans)
        };

        // Hourly: the retry comes when the wait is over, not after 30 s.
        let dir = tempfile::tempdir().unwrap();
        let (daemon, mut plans) = failed("0 * * * *", dir.path());
        assert_eq!(plans["net"].retry_at, Some(over), "{:?}", plans["net"]);
        let st = &daemon.status_snapshot()[0];
        assert_eq!((st.next_retry, st.held_until), (Some(over), Some(over)));
        let error = st.last_error.as_deref().unwrap();
        assert!(
            error.ends_with(" (the platform asked to wait 1200 s: the daemon tries again at 2026-06-10 04:20:05 UTC, not before)"),
            "{error}"
        );
        assert!(status_text(daemon.status_snapshot()).contains(
            "  held until: 2026-06-10 04:20:05 UTC (the platform asked to wait: no run starts before then)\n"
        ));
        // A success lifts the hold.
        let ok = run_record(over, RunOutcome::Success, None, None);
        daemon.store.save_run(&ok).unwrap();
        finish_run(&daemon, &mut plans, "net", Ok(ok), over);
        assert_eq!(plans["net"].hold_until, None);
        assert_eq!(daemon.status_snapshot()[0].held_until, None);

        // Every 2 minutes: the fires at 04:02, 04:04 ... wait too, and the
        // first after the wait runs when it is over.
        let dir = tempfile::tempdir().unwrap();
        let (daemon, mut plans) = failed("*/2 * * * *", dir.path());
        let rt = daemon.runtime();
        assert_eq!(next_due(&plans, ended), Some(over));
        for m in [2, 10, 20] {
            let at = fire + Duration::minutes(m);
            assert!(
                take_due(&daemon, &rt, &mut plans, &mut daemon.active(), at).is_empty(),
                "started at {at}"
            );
        }
        let error = daemon.status_snapshot()[0].last_error.clone().unwrap();
        assert!(
            error.contains("tries again at 2026-06-10 04:20:05 UTC"),
            "{error}"
        );
        assert_eq!(
            take_due(&daemon, &rt, &mut plans, &mut daemon.active(), over).len(),
            1
        );
    }

    /// Ops QA34 D-M1: an answer that could not be read (a malformed record,
    /// a cut-off body, an empty page said to have more after it) was not
    /// retried at all, so a daily connector lost a day to one bad page,
    /// while the README said "the run fails and is retried". It is fetched
    /// again [`BAD_ANSWER_RETRIES`] times with the usual backoff, then left
    /// to the next fire, and the error says when and what to do.
    #[test]
    fn a_bad_answer_is_fetched_again_twice_then_waits_for_the_next_fire() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        let fire: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let mut plans = due_at(&daemon, &c, fire);
        let rt = daemon.runtime();
        let bad = || {
            session_failure(
                plugin_api::ErrorKind::BadResponse,
                false,
                None,
                "stream `rewards` page 2: record 4 (key rew_1): field `amount`: \"abc\" is not an integer",
            )
        };
        assert!(bad().bad_answer);
        assert_eq!(bad().retries, BAD_ANSWER_RETRIES);
        // Refused credentials are still not retried.
        let auth = session_failure(plugin_api::ErrorKind::Auth, false, None, "HTTP 401");
        assert_eq!((auth.retries, auth.bad_answer), (0, false));

        let mut at = fire;
        for n in 1..=BAD_ANSWER_RETRIES {
            assert_eq!(
                take_due(&daemon, &rt, &mut plans, &mut daemon.active(), at).len(),
                1
            );
            daemon.active().remove("net");
            finish_run(&daemon, &mut plans, "net", Err(bad()), at);
            let retry = at + retry_delay(n);
            assert_eq!(plans["net"].retry_at, Some(retry), "retry {n}");
            let error = daemon.status_snapshot()[0].last_error.clone().unwrap();
            assert!(
                error.ends_with(&format!(
                    " (an answer that cannot be read is fetched again up to 2 times: retry {n} at {})",
                    utc_text(retry)
                )),
                "{error}"
            );
            at = retry;
        }
        assert_eq!(
            take_due(&daemon, &rt, &mut plans, &mut daemon.active(), at).len(),
            1
        );
        daemon.active().remove("net");
        finish_run(&daemon, &mut plans, "net", Err(bad()), at);
        assert_eq!(plans["net"].retry_at, None);
        let st = &daemon.status_snapshot()[0];
        assert_eq!(st.next_retry, None);
        assert_eq!(st.consecutive_failures, 3);
        let error = st.last_error.as_deref().unwrap();
        assert!(
            error.ends_with(" (not fetched again before the next scheduled run, at 2026-06-11 04:00:00 UTC; once the network's data is fixed, `reckon sync net` pulls it at once)"),
            "{error}"
        );
    }

    /// A run of "net" over `windows` that `outcome`, started at `at`, run
    /// for a client (claimed, saved, released).
    fn client_run(daemon: &Daemon, at: DateTime<Utc>, outcome: RunOutcome, windows: &[&str]) {
        assert!(daemon.claim("net"));
        let mut run = run_record(at, outcome, None, None);
        run.windows = windows.iter().map(|w| w.to_string()).collect();
        daemon.store.save_run(&run).unwrap();
        daemon.release("net");
    }

    /// Ops QA34 B-M3: a backfill cut off while the daemon ran (its client
    /// killed) was replaced by the next fire's scheduled run, and its days
    /// were never pulled, with nothing in the log or status. The fire runs
    /// its days instead (as a start does), status shows it until then, and
    /// a run that replaces it leaves a line naming the command to run.
    #[test]
    fn a_backfill_cut_off_while_the_daemon_runs_runs_again_at_the_next_fire() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        let fire: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let mut plans = due_at(&daemon, &c, fire);
        let rt = daemon.runtime();
        let windows = ["2026-01-01..2026-02-14", "2026-02-15..2026-03-31"];
        let days = (
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        );
        let lines = crate::test_support::json_lines_at(tracing::Level::WARN, || {
            client_run(
                &daemon,
                fire - Duration::hours(2),
                RunOutcome::Interrupted,
                &windows,
            );
        });
        assert!(
            lines.iter().any(|l| l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(
                    "the backfill was cut off before its end: the daemon runs its days again"
                ))),
            "{lines:?}"
        );
        let pending = CutOffBackfill::new("net", days, true);
        assert_eq!(
            pending.command,
            "reckon sync net --from 2026-01-01 --to 2026-03-31"
        );
        assert_eq!(
            daemon.status_snapshot()[0].cut_off_backfill.as_ref(),
            Some(&pending)
        );
        let text = status_text(daemon.status_snapshot());
        assert!(
            text.contains("  backfill:  2026-01-01..2026-03-31 was cut off before its end; the daemon runs its days again at the next fire (or its next start); `reckon sync net` without dates drops it\n"),
            "{text}"
        );

        // The fire runs the backfill's days, not the scheduled window.
        let started = take_due(&daemon, &rt, &mut plans, &mut daemon.active(), fire);
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1, Some(days));
        daemon.active().remove("net");
        let mut done = run_record(fire, RunOutcome::Success, None, None);
        done.windows = windows.iter().map(|w| w.to_string()).collect();
        daemon.store.save_run(&done).unwrap();
        finish_run(&daemon, &mut plans, "net", Ok(done), fire);
        assert_eq!(daemon.status_snapshot()[0].cut_off_backfill, None);
        assert_eq!(plans["net"].resume_range, None);

        // Cut off again, then replaced by a run without its days (`reckon
        // sync net`): not run again, and status says what to run.
        client_run(
            &daemon,
            fire + Duration::hours(1),
            RunOutcome::Interrupted,
            &windows,
        );
        client_run(
            &daemon,
            fire + Duration::hours(2),
            RunOutcome::Success,
            &["2026-06-03..2026-06-10"],
        );
        let dropped = CutOffBackfill {
            runs_again: false,
            ..pending
        };
        assert_eq!(
            daemon.status_snapshot()[0].cut_off_backfill.as_ref(),
            Some(&dropped)
        );
        let text = status_text(daemon.status_snapshot());
        assert!(
            text.contains("  backfill:  2026-01-01..2026-03-31 was cut off before its end and is NOT run again: days of it may be missing; run `reckon sync net --from 2026-01-01 --to 2026-03-31`\n"),
            "{text}"
        );
        let tomorrow = fire + Duration::days(1);
        let started = take_due(&daemon, &rt, &mut plans, &mut daemon.active(), tomorrow);
        assert_eq!(started[0].1, None, "the scheduled window");
        daemon.active().remove("net");
        // Running it again clears the line.
        client_run(
            &daemon,
            tomorrow + Duration::hours(1),
            RunOutcome::Success,
            &windows,
        );
        assert_eq!(daemon.status_snapshot()[0].cut_off_backfill, None);
    }

    /// Ops QA34 D-L1, B-L2: a run in progress showed only as `running`
    /// (a hung one looked like a fresh one; a year-long backfill run again
    /// gave no clue how far it had got). Status says since when, and its
    /// days, window and counts so far.
    #[test]
    fn status_shows_when_a_run_started_and_how_far_it_has_got() {
        let c = connector("0 6 * * *");
        let dir = tempfile::tempdir().unwrap();
        let daemon = test_daemon(dir.path(), &c);
        let now: DateTime<Utc> = "2026-06-10T04:00:00Z".parse().unwrap();
        let _plans = due_at(&daemon, &c, now);
        assert!(daemon.claim("net"));
        let since = daemon.status_snapshot()[0].running_since.unwrap();
        let metrics = daemon.render_connector_metrics();
        assert!(
            metrics.contains(&format!(
                "reckon_connector_running_since_timestamp_seconds{{connector=\"net\"}} {}\n",
                since.timestamp()
            )),
            "{metrics}"
        );
        let progress = StatusProgress::new(&daemon, "net", &NoProgress);
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        progress.started(d("2026-01-01"), d("2026-03-31"), 2);
        let w = plugin_api::protocol::Window {
            from: d("2026-02-15"),
            to: d("2026-03-31"),
        };
        progress.window(1, 2, &w);
        let page = crate::store::CommitStats {
            new: 3,
            changed: 1,
            unchanged: 2,
        };
        progress.page("conversions", &page, &page);
        progress.page("conversions", &page, &page);
        let st = &daemon.status_snapshot()[0];
        assert_eq!(
            st.current_run,
            Some(CurrentRun {
                from: Some(d("2026-01-01")),
                to: Some(d("2026-03-31")),
                window: 2,
                windows: 2,
                pages: 2,
                records_new: 3,
                records_changed: 1,
                records_unchanged: 2,
            })
        );
        let text = status_text(daemon.status_snapshot());
        assert!(
            text.contains(&format!(
                "net (example): running since {}, schedule",
                utc_text(since)
            )) && text.contains(
                "  this run:  2026-01-01..2026-03-31, window 2/2, 2 pages so far; records 3 new, 1 changed, 2 unchanged\n"
            ),
            "{text}"
        );
        daemon.release("net");
        let st = &daemon.status_snapshot()[0];
        assert_eq!((st.running_since, st.current_run.as_ref()), (None, None));
        assert!(!daemon
            .render_connector_metrics()
            .contains("reckon_connector_running_since_timestamp_seconds{"));
    }
}
