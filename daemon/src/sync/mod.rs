//! One connector run: choose the window(s) from the last checkpoint and the
//! lookback, its re-pull cut to the days the platform serves (or an
//! explicit backfill range, never cut), open a plugin session per window,
//! commit every page with its checkpoint into the store, flush, and record the
//! run in the history.
//!
//! What it is not: no scheduling (that is [`crate::schedule`]) and no HTTP
//! (the plugin host executes requests).
pub mod cli;
pub mod forward;

use crate::config::ResolvedConnector;
use crate::plugins::{SessionOptions, SessionSink};
use crate::server::metrics::Metrics;
use crate::store::writer::{Committed, PageWriter};
use crate::store::{CommitStats, RunOutcome, RunRecord, Store, StoreError};
use chrono::{DateTime, Days, NaiveDate, Utc};
use plugin_api::protocol::{
    Checkpoint, Covers, Record, RecordKind, SessionMode, SessionOpen, Spend, Window,
};
use plugin_api::Money;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

/// A request to stop (SIGTERM/SIGINT): a flag that running syncs can also
/// wait on, so a session sleeping or waiting out a 429 wakes at once
/// instead of when its wait ends. Clones share the one flag.
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<tokio::sync::watch::Sender<bool>>);

impl Shutdown {
    /// Not requested yet.
    pub fn new() -> Self {
        Shutdown(Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Asks everything holding a clone or a [`Shutdown::subscribe`]r to stop.
    pub fn request(&self) {
        self.0.send_replace(true);
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver that sees `true` once a stop is requested (what
    /// [`crate::plugins::SessionTuning::shutdown`] takes).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.subscribe()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// Things a run needs besides the connector.
#[derive(Debug, Clone)]
pub struct SyncContext {
    /// The store.
    pub store: Store,
    /// The `reckon` executable (for subprocess isolation).
    pub host_exe: PathBuf,
    /// Requested on shutdown: a session's waits (its sleeps, 429 and
    /// backoff waits, a request in flight) end at once, a page being
    /// committed commits, and the run ends as `interrupted`.
    pub shutdown: Shutdown,
    /// Metrics to update.
    pub metrics: Arc<Metrics>,
}

/// `reckon sync --record DIR`: where each session's cassette goes (see
/// [`crate::plugins::cassette`]), and which were written.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// The directory the cassettes are written to (must exist).
    pub dir: PathBuf,
    /// Cassettes written so far, one per window.
    pub written: Vec<PathBuf>,
}

/// The cassette of `connector`'s session over `window` in `dir`:
/// `<connector>_<from>_<to>.json` (its `SessionOpen` beside it as
/// `<connector>_<from>_<to>.open.json`).
pub fn cassette_path(dir: &std::path::Path, connector: &str, window: &Window) -> PathBuf {
    dir.join(format!("{connector}_{}_{}.json", window.from, window.to))
}

/// Progress of a run, reported after every committed page.
pub trait Progress: Send + Sync {
    /// The run starts: its days and how many windows they make.
    fn started(&self, _from: NaiveDate, _to: NaiveDate, _windows: usize) {}
    /// A window starts (`index` of `total`).
    fn window(&self, index: usize, total: usize, window: &Window);
    /// A page was committed.
    fn page(&self, stream: &str, stats: &CommitStats, total: &CommitStats);
}

/// Progress that reports nothing.
#[derive(Debug)]
pub struct NoProgress;
impl Progress for NoProgress {
    fn window(&self, _: usize, _: usize, _: &Window) {}
    fn page(&self, _: &str, _: &CommitStats, _: &CommitStats) {}
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store refused.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The session failed (after committing what it could).
    #[error(transparent)]
    Session(#[from] crate::plugins::SessionError),
    /// Stopped after the current page committed: the daemon is shutting
    /// down, or the client whose command ran the sync went away (Ctrl-C).
    /// What becomes of the run: [`crate::store::CUT_OFF_RUNS`].
    #[error("connector `{0}`: stopped after committing its current page (the daemon is shutting down, or the command that ran the sync was interrupted); what it committed is kept: {runs}", runs = crate::store::CUT_OFF_RUNS)]
    Interrupted(String),
    /// A window that makes no sense.
    #[error("connector `{connector}`: {message}")]
    BadRange { connector: String, message: String },
}

impl SyncError {
    /// Whether retrying later may help.
    pub fn retryable(&self) -> bool {
        match self {
            SyncError::Session(e) => e.retryable,
            SyncError::Store(_) | SyncError::BadRange { .. } => false,
            SyncError::Interrupted(_) => true,
        }
    }

    /// Whether the platform's answer could not be read (a malformed record,
    /// a cut-off body, paging that contradicts itself: a plugin's
    /// `BadResponse`). Not retryable as such, yet a fetch again often gets a
    /// good answer, so the scheduler retries it a few times
    /// ([`crate::schedule::BAD_ANSWER_RETRIES`]).
    pub fn bad_answer(&self) -> bool {
        matches!(self, SyncError::Session(e)
            if !e.retryable && e.kind == plugin_api::ErrorKind::BadResponse)
    }

    /// How long the platform asked to wait before the next request, when a
    /// 429 asked for longer than a run waits (the host did not wait it
    /// out): the run is not retried before that (ops QA34 D-M2).
    pub fn platform_wait(&self) -> Option<std::time::Duration> {
        match self {
            SyncError::Session(e) => e
                .report
                .refused_wait_secs
                .map(|s| std::time::Duration::from_secs(s.into())),
            _ => None,
        }
    }
}

/// Splits `from..=to` into windows of at most `max_days` days.
pub fn split_windows(from: NaiveDate, to: NaiveDate, max_days: Option<u32>) -> Vec<Window> {
    if from > to {
        return Vec::new();
    }
    let step = u64::from(max_days.unwrap_or(u32::MAX).max(1)).min(1_000_000);
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        // Checked: a window near the calendar's end stops at `to`.
        let end = start
            .checked_add_days(Days::new(step - 1))
            .map_or(to, |e| e.min(to));
        out.push(Window {
            from: start,
            to: end,
        });
        match end.succ_opt() {
            Some(next) => start = next,
            None => break,
        }
    }
    out
}

/// The days a scheduled run wants: from the oldest checkpoint of the
/// connector's streams (or today, when none has one yet: a first run)
/// minus the lookback, through today, in the connector's timezone. What it
/// pulls is [`scheduled_days`]: these, with a re-pull reaching further back
/// than the platform serves cut at the first day it serves.
///
/// A stream without a checkpoint does not make the run a first run: a
/// plugin may declare streams a given configuration never fills (the
/// orders plugin has one per mode), and treating that as "first run" would
/// pull only the lookback after an outage, silently skipping the gap.
pub fn scheduled_range(
    connector: &ResolvedConnector,
    checkpoints: &std::collections::BTreeMap<String, Checkpoint>,
    now: DateTime<Utc>,
) -> (NaiveDate, NaiveDate) {
    let days = wanted_days(connector, checkpoints, now);
    (days.from, days.to)
}

/// The days a scheduled run pulls ([`scheduled_days`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledDays {
    /// First day pulled.
    pub from: NaiveDate,
    /// Last day pulled: today in the connector's timezone.
    pub to: NaiveDate,
    /// The day of the oldest checkpoint (today on a first run): days from
    /// it on may be unread; the days before are a re-pull.
    pub oldest: NaiveDate,
    /// No stream of the connector has a checkpoint yet.
    pub first_run: bool,
    /// Days of the lookback left out because the platform no longer serves
    /// them (see [`scheduled_days`]).
    pub left_out: Option<Window>,
    /// The first day the platform serves, when days from the oldest
    /// checkpoint on (unread) are older than it: the window is not cut, and
    /// the platform is expected to refuse it.
    pub too_old: Option<NaiveDate>,
}

/// [`scheduled_range`] with its window start clamped to the first day the
/// platform serves ([`plugin_api::protocol::first_served_day`] of the
/// manifest's `max_history_days`, on today in the connector's timezone)
/// when the days cut off all lie before the oldest checkpoint: they were
/// read before (or, on a first run, were never asked for but by the
/// lookback), so nothing unread is skipped (QA44c C-M1: with
/// `lookback_days` near Everflow's 365 days, a one-day outage made every
/// scheduled run fail on the platform's refusal). When days from the
/// oldest checkpoint on are older than that, nothing is cut: the platform
/// refuses the window and the plugin's error says from which day to sync
/// (those days cannot be read any more, which someone has to decide on).
/// Explicit backfills are never clamped.
pub fn scheduled_days(
    connector: &ResolvedConnector,
    checkpoints: &std::collections::BTreeMap<String, Checkpoint>,
    now: DateTime<Utc>,
) -> ScheduledDays {
    let mut days = wanted_days(connector, checkpoints, now);
    let Some(max) = connector.plugin.manifest.max_history_days else {
        return days;
    };
    let first = plugin_api::protocol::first_served_day(max, days.to);
    if days.from < first && first <= days.oldest {
        days.left_out = first.pred_opt().map(|last| Window {
            from: days.from,
            to: last,
        });
        days.from = first;
    } else if days.oldest < first {
        days.too_old = Some(first);
    }
    days
}

/// [`scheduled_range`]'s days, nothing left out.
fn wanted_days(
    connector: &ResolvedConnector,
    checkpoints: &std::collections::BTreeMap<String, Checkpoint>,
    now: DateTime<Utc>,
) -> ScheduledDays {
    let tz = connector.timezone;
    let today = now.with_timezone(&tz).date_naive();
    let streams = &connector.plugin.manifest.streams;
    let oldest = streams
        .iter()
        .filter_map(|s| checkpoints.get(&s.name).map(|c| c.watermark))
        .min();
    let anchor = match oldest {
        Some(w) => w.with_timezone(&tz).date_naive().min(today),
        None => today,
    };
    // Checked: a lookback past the calendar's start begins at its first day
    // (config bounds `lookback_days`; this keeps any input from panicking).
    let from = anchor
        .checked_sub_days(Days::new(u64::from(connector.lookback_days)))
        .unwrap_or(NaiveDate::MIN);
    ScheduledDays {
        from,
        to: today,
        oldest: anchor,
        first_run: oldest.is_none(),
        left_out: None,
        too_old: None,
    }
}

/// Says, once per run, which days of the lookback a scheduled run leaves
/// out ([`scheduled_days`]) and why.
fn log_left_out(connector: &ResolvedConnector, days: &ScheduledDays) {
    if let (Some(first), Some(max)) = (days.too_old, connector.plugin.manifest.max_history_days) {
        // Whatever the plugin says of the platform's refusal, the host
        // names the day to sync from (QA45 R-M2).
        tracing::warn!(
            connector = %connector.config.id,
            oldest_checkpoint = %days.oldest,
            first_served = %first,
            max_history_days = max,
            "days from the last checkpoint ({}) on were never read, and plugin `{}` serves only the prior {max} days (from {first}): the platform will refuse this run; the days before {first} cannot be read anymore, so run `reckon sync {} --from {first} --to {}` once and the scheduled runs go on",
            days.oldest,
            connector.plugin.manifest.id,
            connector.config.id,
            days.to
        );
    }
    let (Some(cut), Some(max)) = (days.left_out, connector.plugin.manifest.max_history_days) else {
        return;
    };
    let plugin = &connector.plugin.manifest.id;
    let why = format!("plugin `{plugin}` serves only the prior {max} days");
    let message = if days.first_run {
        format!(
            "the lookback's days {}..{} are not pulled: {why}, so this first run starts on {}",
            cut.from, cut.to, days.from
        )
    } else {
        format!(
            "days {}..{} of the lookback are not re-pulled: {why}, so the run starts on {}; \
             earlier runs read them, and a change made to them since is not seen",
            cut.from, cut.to, days.from
        )
    };
    tracing::info!(
        connector = %connector.config.id,
        from = %cut.from,
        to = %cut.to,
        lookback_days = connector.lookback_days,
        oldest_checkpoint = %days.oldest,
        max_history_days = max,
        "{message}"
    );
}

/// The `config check` warning for a `lookback_days` that reaches as far
/// back as the connector's platform serves (the manifest's
/// `max_history_days`, less the day of margin of
/// [`plugin_api::protocol::first_served_day`]): scheduled runs then re-pull
/// less than the lookback ([`scheduled_days`]), every run when it is
/// longer, else each whose oldest checkpoint is older than today.
pub fn lookback_warning(connector: &ResolvedConnector) -> Option<String> {
    let max = connector.plugin.manifest.max_history_days?;
    let lookback = connector.lookback_days;
    let reach = max.saturating_sub(1);
    let runs = match lookback.cmp(&reach) {
        std::cmp::Ordering::Less => return None,
        std::cmp::Ordering::Equal => {
            "each scheduled run whose oldest checkpoint is older than today"
        }
        std::cmp::Ordering::Greater => "every scheduled run",
    };
    Some(format!(
        "lookback_days = {lookback} reaches as far back as plugin `{}` serves (max_history_days = {max}; \
         a run starts {reach} days before today at the earliest): {runs} re-pulls less than the lookback, \
         and the days before that first day are not read again (the run logs which); a lookback of {reach} \
         less d days is re-pulled in full while the oldest checkpoint is at most d days old",
        connector.plugin.manifest.id,
    ))
}

/// Hands pages to a [`PageWriter`] so the store writes page n while the
/// session produces page n + 1, and accounts for pages as they commit.
struct StoreSink<'a> {
    ctx: &'a SyncContext,
    source: String,
    total: CommitStats,
    pages: u64,
    progress: &'a dyn Progress,
    writer: PageWriter,
    /// Keys of the spend rows the current session delivered (for a
    /// complete pass, [`Checkpoint::covers`]); cleared per session.
    delivered: HashSet<String>,
    /// The connector's `timezone` (IANA name), which cuts its windows;
    /// spend days in another one are warned about once a run.
    timezone: String,
    zone_warned: bool,
}

impl StoreSink<'_> {
    /// Records committed pages: totals, metrics, progress lines.
    fn account(&mut self, done: Vec<Committed>) -> CommitStats {
        let mut sum = CommitStats::default();
        for c in done {
            let stats = c.stats;
            sum += stats;
            self.total += stats;
            self.pages += 1;
            self.ctx.metrics.records(&self.source, &stats);
            let stream = c.checkpoint.as_ref().map_or("", |cp| cp.stream.as_str());
            tracing::debug!(
                connector = %self.source,
                stream = %stream,
                new = stats.new,
                changed = stats.changed,
                unchanged = stats.unchanged,
                "checkpoint committed"
            );
            self.progress.page(stream, &stats, &self.total);
        }
        sum
    }

    /// The stored spend rows of a complete pass's account and days that this
    /// session did not deliver, set to zero: the platform reports no
    /// activity for them any more (a restatement to nothing, or rows of a
    /// `level` no longer pulled). Rows already zero are left alone.
    /// The stored rows of `covers` the session did not deliver, zeroed
    /// (those not at zero already), and how many of its stored rows it did
    /// deliver.
    fn not_delivered(&self, covers: &Covers) -> Result<(Vec<Record>, usize), StoreError> {
        let Covers { account_id, days } = covers;
        let first = format!("{account_id}/{}", days.from);
        // `0` sorts after the `/` that follows a day in a key.
        let last = format!("{account_id}/{}0", days.to);
        let stored =
            self.ctx
                .store
                .records_between(RecordKind::Spend, &self.source, &first, &last)?;
        let mut delivered = 0;
        let mut gone = Vec::new();
        for s in stored {
            let Record::Spend(s) = s.record else { continue };
            if s.account_id != *account_id || !(days.from..=days.to).contains(&s.day) {
                continue;
            }
            if self.delivered.contains(&s.key()) {
                delivered += 1;
            } else if let Some(z) = zeroed(s) {
                gone.push(Record::Spend(z));
            }
        }
        Ok((gone, delivered))
    }

    /// Waits for every submitted page to commit.
    fn drain(&mut self) -> Result<(), StoreError> {
        let done = self.writer.drain()?;
        self.account(done);
        Ok(())
    }
}

impl SessionSink for StoreSink<'_> {
    /// Queues the page and returns the stats of the pages committed since
    /// the last call (the session only logs them; the run's totals come from
    /// [`StoreSink::account`]).
    fn commit(
        &mut self,
        mut records: Vec<Record>,
        checkpoint: Checkpoint,
    ) -> Result<CommitStats, String> {
        for r in &mut records {
            r.set_source(&self.source);
            if let Record::Spend(s) = r {
                self.delivered.insert(s.key());
                if !self.zone_warned && s.timezone != self.timezone {
                    // New-user QA16 N4: the plugin knew the account's
                    // zone, and nothing said it differed.
                    self.zone_warned = true;
                    tracing::warn!(
                        connector = %self.source,
                        account = %s.account_id,
                        account_timezone = %s.timezone,
                        connector_timezone = %self.timezone,
                        "the account reports its days in {}, but the connector's `timezone` is {}: sync windows are cut in the connector's, so a backfill's first and last days may not be the network's; set `timezone = \"{}\"` on the connector",
                        s.timezone,
                        self.timezone,
                        s.timezone
                    );
                }
            }
        }
        warn_conflicting_duplicates(&self.source, &checkpoint.stream, &records);
        let mut checkpoint = checkpoint;
        // Stored without it: it speaks of this session only.
        if let Some(covers) = checkpoint.covers.take() {
            let (gone, delivered) = self.not_delivered(&covers).map_err(|e| e.to_string())?;
            let days = format!("{}..{}", covers.days.from, covers.days.to);
            if !gone.is_empty() && delivered == 0 {
                // Not one stored row of those days came back: an account
                // with no spend any more, or an answer the plugin misread
                // as empty (QA35d H2: a renamed rows key zeroed every
                // stored row with only this line at INFO). Said louder.
                tracing::warn!(
                    connector = %self.source,
                    account = %covers.account_id,
                    days = %days,
                    rows = gone.len(),
                    "the platform reported none of the stored spend rows of these days: all are set to zero; if the account had spend then and the connector's `level` did not change (a new level stores new rows and zeroes the old ones), its answer has changed (check the connector's log and `reckon records history`)"
                );
            } else if !gone.is_empty() {
                tracing::info!(
                    connector = %self.source,
                    account = %covers.account_id,
                    days = %days,
                    rows = gone.len(),
                    "spend rows the platform no longer reports are set to zero"
                );
            }
            records.extend(gone);
        }
        let done = self
            .writer
            .submit(&self.source, records, Some(checkpoint), Utc::now())
            .map_err(|e| e.to_string())?;
        let mut stats = self.account(done);
        if self.ctx.shutdown.is_requested() {
            // Let the page just handed over commit, then stop.
            let done = self.writer.drain().map_err(|e| e.to_string())?;
            stats += self.account(done);
            return Err("shutting down: stopped after committing this page".into());
        }
        Ok(stats)
    }
}

/// A key given twice in one page is stored once, the last occurrence
/// winning (`Store::prepare_page`); when the two differ the platform
/// contradicted itself within one answer, which the log says, naming the
/// key. Identical repeats (a page boundary shifted by a new record) are
/// not worth a line. The rule is plugin-api's, which `FakeHost` applies too
/// ([`plugin_api::validate::conflicting_duplicates`]).
fn warn_conflicting_duplicates(source: &str, stream: &str, records: &[Record]) {
    for key in plugin_api::validate::conflicting_duplicates(records) {
        tracing::warn!(
            connector = %source,
            stream = %stream,
            key = %key,
            "{}",
            plugin_api::validate::CONFLICTING_DUPLICATE
        );
    }
}

/// `s` with no activity: impressions, clicks, spend and the platform's
/// conversions at zero (same currency, names and ids); `None` when it
/// already has none.
fn zeroed(mut s: Spend) -> Option<Spend> {
    let zero = |m: &Money| Money::new(Decimal::ZERO, m.currency.as_str());
    let idle = s.impressions == 0
        && s.clicks == 0
        && s.spend.amount.is_zero()
        && s.platform_conversions.is_none_or(|c| c.is_zero())
        && s.platform_conversion_value
            .as_ref()
            .is_none_or(|v| v.amount.is_zero());
    if idle {
        return None;
    }
    s.impressions = 0;
    s.clicks = 0;
    s.spend = zero(&s.spend);
    s.platform_conversions = s.platform_conversions.map(|_| Decimal::ZERO);
    s.platform_conversion_value = s.platform_conversion_value.as_ref().map(zero);
    Some(s)
}

/// A started run's record until the run records its own end (every way out
/// of [`run_sync_with`] after the start does): if the run is dropped first
/// (the scheduler aborts runs still going when its shutdown grace period is
/// over, e.g. during a long plugin step), it is saved as `interrupted`, so
/// the history does not show a run of a stopped daemon as `running`. Its
/// counts are those of the windows that had finished.
struct Unfinished<'a> {
    store: &'a Store,
    run: Option<RunRecord>,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        run.outcome = RunOutcome::Interrupted;
        run.ended_at = Some(Utc::now());
        run.error = Some(format!(
            "connector `{}`: aborted before it finished (at shutdown: the grace period ran out \
             during a plugin step or page commit); pages committed before are kept, the counts \
             are those of the windows that had finished",
            run.source
        ));
        if let Err(e) = self.store.save_run(&run).and_then(|_| self.store.flush()) {
            tracing::warn!(connector = %run.source, error = %e, "could not save the run history");
        }
    }
}

/// A run over `days` about to become the connector's last run, while its
/// last run is a backfill cut off before its end that the daemon would run
/// again ([`crate::schedule::pending_backfill`]) and `days` do not cover:
/// the backfill's days are not pulled again, which a WARN says with the
/// command that pulls them (ops QA34 B-M3: dropped without a word).
fn warn_if_replacing_a_backfill(
    ctx: &SyncContext,
    connector: &ResolvedConnector,
    (from, to): (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
) {
    let id = &connector.config.id;
    let Ok(Some((bf, bt))) = crate::schedule::pending_backfill(&ctx.store, connector, now) else {
        return;
    };
    if from <= bf && bt <= to {
        return;
    }
    tracing::warn!(connector = %id, from = %bf, to = %bt,
        "this run replaces a backfill cut off before its end ({bf}..{bt}): the daemon no longer runs its days again, and days of it may be missing; run `reckon sync {id} --from {bf} --to {bt}` to pull them");
}

/// Runs the connector's check session (the plugin's `check`: one cheap
/// request that proves the settings and credentials), storing nothing.
pub async fn check_connector(
    connector: &ResolvedConnector,
    host_exe: PathBuf,
) -> Result<crate::plugins::SessionReport, crate::plugins::SessionError> {
    /// A check session commits nothing (the driver refuses records in
    /// check mode before they could reach a sink).
    struct NoSink;
    impl SessionSink for NoSink {
        fn commit(&mut self, _: Vec<Record>, _: Checkpoint) -> Result<CommitStats, String> {
            Err("a check session stores nothing".into())
        }
    }
    let open = SessionOpen {
        mode: SessionMode::Check,
        connector_id: connector.config.id.clone(),
        settings: connector.settings.clone(),
        base_url: connector.base_url.clone(),
        streams: Vec::new(),
        window: None,
        checkpoints: Default::default(),
        now: Utc::now(),
        timezone: Some(connector.timezone.name().to_owned()),
    };
    let options = SessionOptions {
        isolation: connector.config.isolation,
        step_deadline: std::time::Duration::from_secs(connector.config.timeout_secs.max(1) * 4),
        host_exe,
        max_requests: connector.config.max_requests_per_run,
    };
    crate::plugins::run_session(
        connector.plugin.clone(),
        open,
        connector.policy.clone(),
        options,
        &mut NoSink,
    )
    .await
}

/// Runs a connector once over `range` (default: [`scheduled_days`]), window
/// by window, and records the run. Success is reported only after a flush.
/// True when the connector reads a file directory (its manifest declares a
/// file capability and its settings name the directory), not an API by
/// date window.
fn reads_files(connector: &ResolvedConnector) -> bool {
    connector
        .plugin
        .manifest
        .file_capability
        .as_ref()
        .and_then(|cap| connector.settings.get(&cap.directory_setting))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|d| !d.trim().is_empty())
}

pub async fn run_sync(
    ctx: &SyncContext,
    connector: &ResolvedConnector,
    range: Option<(NaiveDate, NaiveDate)>,
    progress: &dyn Progress,
) -> Result<RunRecord, SyncError> {
    run_sync_with(ctx, connector, range, progress, None).await
}

/// [`run_sync`], recording each window's session as a cassette when
/// `recording` is given (`reckon sync --record`).
pub async fn run_sync_with(
    ctx: &SyncContext,
    connector: &ResolvedConnector,
    range: Option<(NaiveDate, NaiveDate)>,
    progress: &dyn Progress,
    mut recording: Option<&mut Recording>,
) -> Result<RunRecord, SyncError> {
    let id = connector.config.id.clone();
    let started = Utc::now();
    let (from, to) = match range {
        Some(r) => r,
        None => {
            let days = scheduled_days(connector, &ctx.store.checkpoints(&id)?, started);
            log_left_out(connector, &days);
            (days.from, days.to)
        }
    };
    if from > to {
        return Err(SyncError::BadRange {
            connector: id,
            message: format!("--from {from} is after --to {to}"),
        });
    }
    // A backfill ends today at the latest: later days have no data yet, and
    // a year typo would otherwise run hundreds of empty windows.
    let today = started.with_timezone(&connector.timezone).date_naive();
    if range.is_some() && to > today {
        return Err(SyncError::BadRange {
            connector: id,
            message: format!(
                "--to {to} is after today ({today} in the connector's timezone {}); \
                 a backfill ends today at the latest",
                connector.timezone.name()
            ),
        });
    }
    // Records before 2000 are refused anyway; such a --from is a typo that
    // would run thousands of empty windows against the platform.
    if range.is_some() && from < plugin_api::validate::EARLIEST {
        return Err(SyncError::BadRange {
            connector: id,
            message: format!(
                "--from {from} is before {}, the earliest day reckon stores",
                plugin_api::validate::EARLIEST
            ),
        });
    }
    let windows = split_windows(from, to, connector.window_days);
    let mut run = RunRecord {
        source: id.clone(),
        started_at: started,
        ended_at: None,
        outcome: RunOutcome::Running,
        windows: windows
            .iter()
            .map(|w| format!("{}..{}", w.from, w.to))
            .collect(),
        pages: 0,
        requests: 0,
        retries: 0,
        rate_limit_waits: 0,
        records_new: 0,
        records_changed: 0,
        records_unchanged: 0,
        error: None,
        retryable: None,
        not_before: None,
    };
    // Before the run is recorded: from here on every way out records its end.
    let writer = PageWriter::new(ctx.store.clone(), 1).map_err(|e| {
        SyncError::Store(StoreError::Io {
            path: "store writer thread".into(),
            message: e.to_string(),
        })
    })?;
    warn_if_replacing_a_backfill(ctx, connector, (from, to), started);
    ctx.store.save_run(&run)?;
    let mut unfinished = Unfinished {
        store: &ctx.store,
        run: Some(run.clone()),
    };
    // Which build ran (plugin-developer QA16 N5: with an old and a new
    // library of one id, only `config check` told).
    let plugin = &connector.plugin;
    tracing::info!(connector = %id, from = %from, to = %to, windows = windows.len(),
        plugin = %plugin.manifest.id, version = %plugin.manifest.version,
        file = %plugin.path.file_name().unwrap_or_default().to_string_lossy(),
        sha256 = %plugin.sha256.get(..12).unwrap_or_default(),
        build = %plugin.build_commit(), "sync started");
    progress.started(from, to, windows.len());

    let mut sink = StoreSink {
        ctx,
        source: id.clone(),
        total: CommitStats::default(),
        pages: 0,
        progress,
        writer,
        delivered: HashSet::new(),
        timezone: connector.timezone.name().to_owned(),
        zone_warned: false,
    };
    let mut failure: Option<SyncError> = None;
    for (i, w) in windows.iter().enumerate() {
        if ctx.shutdown.is_requested() {
            failure = Some(SyncError::Interrupted(id.clone()));
            break;
        }
        progress.window(i, windows.len(), w);
        sink.delivered.clear();
        let checkpoints = match ctx.store.checkpoints(&id) {
            Ok(c) => c,
            Err(e) => {
                failure = Some(SyncError::Store(e));
                break;
            }
        };
        let open = SessionOpen {
            mode: SessionMode::Read,
            connector_id: id.clone(),
            settings: connector.settings.clone(),
            base_url: connector.base_url.clone(),
            streams: Vec::new(),
            window: Some(*w),
            checkpoints,
            now: Utc::now(),
            // The window's days are this zone's (QA20 F2: affiliate
            // plugins read UTC days whatever the connector's zone).
            timezone: Some(connector.timezone.name().to_owned()),
        };
        let options = SessionOptions {
            isolation: connector.config.isolation,
            step_deadline: std::time::Duration::from_secs(connector.config.timeout_secs.max(1) * 4),
            host_exe: ctx.host_exe.clone(),
            max_requests: connector.config.max_requests_per_run,
        };
        let record = recording.as_deref().map(|r| cassette_path(&r.dir, &id, w));
        if let Some(path) = &record {
            // A file left from an earlier recording must not pass for this one.
            for p in [path.clone(), crate::plugins::cassette::open_path(path)] {
                if let Err(e) = std::fs::remove_file(&p) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(file = %p.display(), error = %e, "cannot remove an earlier cassette");
                    }
                }
            }
        }
        let tuning = crate::plugins::SessionTuning {
            shutdown: Some(ctx.shutdown.subscribe()),
            record: record.clone(),
            ..Default::default()
        };
        let result = crate::plugins::run_session_with(
            connector.plugin.clone(),
            open,
            connector.policy.clone(),
            options,
            &mut sink,
            tuning,
        )
        .await;
        if let (Some(r), Some(path)) = (recording.as_deref_mut(), record) {
            if path.exists() {
                r.written.push(path);
            }
        }
        // Every page the session handed over commits before the next window
        // reads its checkpoints (or the run ends).
        if let Err(e) = sink.drain() {
            if result.is_ok() {
                failure = Some(SyncError::Store(e));
                break;
            }
        }
        // A failed session's requests and retries count too (a platform that
        // refuses connections is retried without ever answering).
        let report = match &result {
            Ok(r) => r,
            Err(e) => &e.report,
        };
        run.requests += report.requests;
        run.retries += report.retries;
        run.rate_limit_waits += report.rate_limit_waits;
        if let Some(r) = unfinished.run.as_mut() {
            (r.pages, r.requests, r.retries, r.rate_limit_waits) =
                (sink.pages, run.requests, run.retries, run.rate_limit_waits);
            (r.records_new, r.records_changed, r.records_unchanged) =
                (sink.total.new, sink.total.changed, sink.total.unchanged);
        }
        match result {
            Ok(_) => {}
            Err(mut e) => {
                if ctx.shutdown.is_requested() {
                    failure = Some(SyncError::Interrupted(id.clone()));
                } else {
                    ctx.metrics.session_error(&id, &e);
                    // Which window failed, where a run has several (ops QA:
                    // "page 3" of which of four windows?). Not for a
                    // connector that reads files: its windows read the same
                    // directory and the error names the file.
                    if windows.len() > 1 && !reads_files(connector) {
                        e.message.push_str(&format!(
                            " (window {}..{}, {} of {})",
                            w.from,
                            w.to,
                            i + 1,
                            windows.len()
                        ));
                    }
                    failure = Some(SyncError::Session(e));
                }
                break;
            }
        }
    }
    run.pages = sink.pages;
    run.records_new = sink.total.new;
    run.records_changed = sink.total.changed;
    run.records_unchanged = sink.total.unchanged;
    // Success only after the flush: a crash before it may lose the tail of
    // the run (never a torn page), and the next run re-pulls it.
    let flushed = ctx.store.flush();
    run.ended_at = Some(Utc::now());
    let result = match (failure, flushed) {
        (None, Ok(())) => {
            run.outcome = RunOutcome::Success;
            Ok(())
        }
        (Some(f), _) => {
            run.outcome = if matches!(f, SyncError::Interrupted(_)) {
                RunOutcome::Interrupted
            } else {
                RunOutcome::Failed
            };
            run.error = Some(f.to_string());
            run.retryable = (run.outcome == RunOutcome::Failed).then(|| f.retryable());
            run.not_before = (f.platform_wait())
                .and_then(|w| chrono::Duration::from_std(w).ok())
                .zip(run.ended_at)
                .map(|(w, end)| end + w);
            Err(f)
        }
        (None, Err(e)) => {
            run.outcome = RunOutcome::Failed;
            run.error = Some(e.to_string());
            run.retryable = Some(false);
            Err(SyncError::Store(e))
        }
    };
    unfinished.run = None;
    // Best effort: the run history must not turn a good run into a failure.
    if let Err(e) = ctx.store.save_run(&run).and_then(|_| ctx.store.flush()) {
        tracing::warn!(connector = %id, error = %e, "could not save the run history");
    }
    ctx.metrics.sync_finished(&id, run.outcome);
    match &result {
        Ok(()) => tracing::info!(
            connector = %id,
            pages = run.pages,
            requests = run.requests,
            retries = run.retries,
            rate_limit_waits = run.rate_limit_waits,
            new = run.records_new,
            changed = run.records_changed,
            unchanged = run.records_unchanged,
            "sync finished"
        ),
        // Stopped after its page by the shutdown or its client: it runs
        // again (the next start, or the command again), not a failure
        // (soak QA18 F4: every restart logged WARNs).
        Err(e) if run.outcome == crate::store::RunOutcome::Interrupted => {
            tracing::info!(connector = %id, outcome = run.outcome.as_str(), error = %e, "sync stopped after its current page")
        }
        Err(e) => {
            tracing::warn!(connector = %id, outcome = run.outcome.as_str(), error = %e, "sync did not finish")
        }
    }
    result.map(|_| run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::conversion as claim;
    /// QA finding: two different payouts for one claim id in one page were
    /// reduced to the last without a word.
    #[test]
    fn a_key_twice_in_a_page_with_different_values_is_logged() {
        let lines = crate::test_support::json_lines(|| {
            let page = [
                claim("a", 500),
                claim("b", 1),
                claim("a", 700),
                claim("b", 1),
            ];
            warn_conflicting_duplicates("net", "conversions", &page);
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["fields"]["key"], "a");
        assert_eq!(lines[0]["fields"]["connector"], "net");
        assert_eq!(
            lines[0]["fields"]["message"],
            "the page holds this key twice with different values; the later one is stored"
        );
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn backfill_is_split_into_max_window_days() {
        let w = split_windows(d("2026-01-01"), d("2026-03-05"), Some(31));
        let got: Vec<String> = w.iter().map(|w| format!("{}..{}", w.from, w.to)).collect();
        assert_eq!(
            got,
            vec![
                "2026-01-01..2026-01-31",
                "2026-02-01..2026-03-03",
                "2026-03-04..2026-03-05"
            ]
        );
        assert_eq!(
            split_windows(d("2026-01-01"), d("2026-01-01"), None).len(),
            1
        );
        assert!(split_windows(d("2026-01-02"), d("2026-01-01"), None).is_empty());
    }

    #[test]
    fn windows_at_the_end_of_the_calendar_do_not_panic() {
        let last = NaiveDate::MAX;
        let w = split_windows(last.pred_opt().unwrap(), last, Some(31));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].to, last);
        assert_eq!(split_windows(last, last, None).len(), 1);
    }

    /// A lookback past the calendar's start used to panic (`NaiveDate -
    /// TimeDelta overflowed`); the config bounds it, and the arithmetic is
    /// checked for any value that gets here anyway.
    #[test]
    fn a_huge_lookback_does_not_panic() {
        use crate::plugins::Plugin;
        use plugin_api::Connector;
        let cfg = crate::config::parse(
            "[[connectors]]\nid = \"x\"\nplugin = \"example\"\nschedule = \"0 * * * *\"\n\
             [connectors.settings]\napi_key = { secret = \"env:K\" }\n",
            "reckon.toml",
        )
        .unwrap();
        let load = |dir: &std::path::Path, _: &str, _: Option<&str>| {
            Ok(Arc::new(Plugin::from_manifest(
                dir.join("x.so"),
                reckon_plugin_example::Example::manifest(),
            )))
        };
        let secrets = |_: &crate::config::SecretRef| Ok("k".to_owned());
        let mut c = crate::config::resolve(&cfg, &load, &secrets)
            .unwrap()
            .remove(0);
        c.lookback_days = u32::MAX;
        let now: DateTime<Utc> = "2026-11-29T12:00:00Z".parse().unwrap();
        let (from, to) = scheduled_range(&c, &Default::default(), now);
        assert_eq!((from, to), (NaiveDate::MIN, d("2026-11-29")));
        c.lookback_days = 3;
        assert_eq!(
            scheduled_range(&c, &Default::default(), now).0,
            d("2026-11-26")
        );
    }

    /// Connector `x` of the example plugin (streams `conversions` and
    /// `reversals`) in `timezone`, with `lookback_days` and the manifest's
    /// `max_history_days`.
    fn connector(
        timezone: &str,
        lookback_days: u32,
        max_history_days: Option<u32>,
    ) -> ResolvedConnector {
        use crate::plugins::Plugin;
        use plugin_api::Connector;
        let cfg = crate::config::parse(
            &format!(
                "[[connectors]]\nid = \"x\"\nplugin = \"example\"\nschedule = \"0 * * * *\"\n\
                 timezone = \"{timezone}\"\nlookback_days = {lookback_days}\n\
                 [connectors.settings]\napi_key = {{ secret = \"env:K\" }}\n"
            ),
            "reckon.toml",
        )
        .unwrap();
        let load = |dir: &std::path::Path, _: &str, _: Option<&str>| {
            let mut m = reckon_plugin_example::Example::manifest();
            m.max_history_days = max_history_days;
            Ok(Arc::new(Plugin::from_manifest(dir.join("x.so"), m)))
        };
        let secrets = |_: &crate::config::SecretRef| Ok("k".to_owned());
        crate::config::resolve(&cfg, &load, &secrets)
            .unwrap()
            .remove(0)
    }

    /// Both streams of the example plugin checkpointed at `watermark`.
    fn checkpoints(watermark: &str) -> std::collections::BTreeMap<String, Checkpoint> {
        ["conversions", "reversals"]
            .into_iter()
            .map(|s| {
                let cp = Checkpoint {
                    stream: s.into(),
                    watermark: watermark.parse().unwrap(),
                    state: serde_json::Value::Null,
                    covers: None,
                };
                (s.to_owned(), cp)
            })
            .collect()
    }

    fn window(from: &str, to: &str) -> Window {
        Window {
            from: d(from),
            to: d(to),
        }
    }

    /// QA44c C-M1, as reproduced: Everflow (365 days), `lookback_days =
    /// 364`, last synced 2028-01-04, the daemon off two days. The window
    /// 2027-01-05.. was refused on every run; the two days before
    /// Everflow's first (2027-01-07) were stored already, so the run starts
    /// there. With the default 90 days after nearly a year off (checkpoint
    /// 2027-01-10) the same.
    #[test]
    fn a_scheduled_run_after_an_outage_starts_on_the_first_day_the_platform_serves() {
        let now: DateTime<Utc> = "2028-01-06T10:00:00Z".parse().unwrap();
        let c = connector("UTC", 364, Some(365));
        let cps = checkpoints("2028-01-04T10:00:00Z");
        assert_eq!(scheduled_range(&c, &cps, now).0, d("2027-01-05"), "wanted");
        let days = scheduled_days(&c, &cps, now);
        assert_eq!((days.from, days.to), (d("2027-01-07"), d("2028-01-06")));
        assert_eq!(days.left_out, Some(window("2027-01-05", "2027-01-06")));
        assert_eq!((days.oldest, days.first_run), (d("2028-01-04"), false));

        let c = connector("UTC", 90, Some(365));
        let days = scheduled_days(&c, &checkpoints("2027-01-10T08:00:00Z"), now);
        assert_eq!(days.from, d("2027-01-07"));
        assert_eq!(days.left_out, Some(window("2026-10-12", "2027-01-06")));
    }

    /// Days from the oldest checkpoint on were never read: cutting them
    /// would skip them for good, so the window is left as it is and the
    /// platform's refusal (with the plugin's "sync from" day) fails the run.
    #[test]
    fn unread_days_older_than_the_platform_serves_are_not_cut() {
        let now: DateTime<Utc> = "2028-01-06T10:00:00Z".parse().unwrap();
        let c = connector("UTC", 90, Some(365));
        let cps = checkpoints("2027-01-06T23:00:00Z");
        let days = scheduled_days(&c, &cps, now);
        assert_eq!(days.from, d("2026-10-08"));
        assert_eq!(days.left_out, None);
        // Said before the run, with the day to sync from (QA45 R-M2).
        assert_eq!(days.too_old, Some(d("2027-01-07")));
        assert_eq!(days.from, scheduled_range(&c, &cps, now).0);
        // The first day served is the oldest checkpoint's: cut before it.
        let days = scheduled_days(&c, &checkpoints("2027-01-07T00:00:00Z"), now);
        assert_eq!(days.from, d("2027-01-07"));
    }

    /// A plugin that declares no limit: the window is the lookback's, as
    /// before; one within the limit is not touched either.
    #[test]
    fn without_max_history_days_or_within_it_nothing_is_cut() {
        let now: DateTime<Utc> = "2028-01-06T10:00:00Z".parse().unwrap();
        let cps = checkpoints("2028-01-04T10:00:00Z");
        let days = scheduled_days(&connector("UTC", 364, None), &cps, now);
        assert_eq!((days.from, days.left_out), (d("2027-01-05"), None));
        let days = scheduled_days(&connector("UTC", 362, Some(365)), &cps, now);
        assert_eq!((days.from, days.left_out), (d("2027-01-07"), None));
    }

    /// A first run (no checkpoint) with a lookback longer than the platform
    /// serves starts on its first day; today and the first day are the
    /// connector's timezone's (Los Angeles is still on the 5th at 05:00 UTC).
    #[test]
    fn a_first_run_is_cut_in_the_connectors_timezone() {
        let now: DateTime<Utc> = "2028-01-06T05:00:00Z".parse().unwrap();
        let c = connector("America/Los_Angeles", 400, Some(365));
        let days = scheduled_days(&c, &Default::default(), now);
        assert_eq!((days.from, days.to), (d("2027-01-06"), d("2028-01-05")));
        assert_eq!(days.left_out, Some(window("2026-12-01", "2027-01-05")));
        assert!(days.first_run);
    }

    /// The run says which days it left out and why, once, at INFO.
    #[test]
    fn the_days_left_out_are_logged() {
        let now: DateTime<Utc> = "2028-01-06T10:00:00Z".parse().unwrap();
        let c = connector("UTC", 364, Some(365));
        let days = scheduled_days(&c, &checkpoints("2028-01-04T10:00:00Z"), now);
        let lines = crate::test_support::json_lines(|| log_left_out(&c, &days));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["fields"]["connector"], "x");
        assert_eq!(lines[0]["fields"]["from"], "2027-01-05");
        assert_eq!(lines[0]["fields"]["to"], "2027-01-06");
        assert_eq!(
            lines[0]["fields"]["message"],
            "days 2027-01-05..2027-01-06 of the lookback are not re-pulled: plugin `example` serves \
             only the prior 365 days, so the run starts on 2027-01-07; earlier runs read them, and a \
             change made to them since is not seen"
        );
        let days = scheduled_days(&c, &checkpoints("2028-01-06T09:00:00Z"), now);
        assert!(crate::test_support::json_lines(|| log_left_out(&c, &days)).is_empty());
    }

    /// `config check` warns from the lookback that reaches the first day
    /// served (364 of Everflow's 365) on, not below it.
    #[test]
    fn config_check_warns_of_a_lookback_the_platform_cannot_serve() {
        assert_eq!(lookback_warning(&connector("UTC", 363, Some(365))), None);
        assert_eq!(lookback_warning(&connector("UTC", 3000, None)), None);
        let w = lookback_warning(&connector("UTC", 364, Some(365))).unwrap();
        assert!(
            w.starts_with(
                "lookback_days = 364 reaches as far back as plugin `example` serves \
                 (max_history_days = 365; a run starts 364 days before today at the earliest): \
                 each scheduled run whose oldest checkpoint is older than today re-pulls less"
            ),
            "{w}"
        );
        let w = lookback_warning(&connector("UTC", 400, Some(365))).unwrap();
        assert!(w.contains("every scheduled run re-pulls less"), "{w}");
    }
}
