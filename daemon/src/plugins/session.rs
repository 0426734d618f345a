//! The session driver: feeds a plugin events, carries out its actions and
//! commits validated pages to the sink.
//!
//! The loop: `Start`, then for each step's actions in order — `Http` through
//! the executor (its answer becomes the next event, and goes into the
//! session's cassette when it is recorded), `Records` buffered (none
//! in a check session, at most [`MAX_BUFFERED_RECORDS`] without a
//! checkpoint: `plugin_api::validate::emitted`), `Checkpoint` (none in a
//! check session) reviewed (`plugin_api::review`: a secret value the platform
//! echoed into a record's text field or the plugin put in the checkpoint's
//! state is masked as `***`, an amount with float noise is kept; either is
//! a WARN once per session, stream and field) and validated (known stream, watermark not moving backwards
//! against this session's previous checkpoint or the committed one, not
//! after the later of the session's clock and its window's end, a stream's
//! first one not before the window: `plugin_api::validate::watermark`; a
//! complete pass only of a spend stream, naming an account, within the
//! window: `plugin_api::validate::covers`) and committed with the buffered records after each record is validated
//! (known currency, non-empty ids, no negative spend or amounts where they
//! mean nothing, record kind matching the stream, `source` stamped), `SleepUntil`
//! waited (capped, cut short by shutdown), `ReadFile`/`ListFiles` through the
//! file capability, `Log` re-emitted through `tracing` (by `plugin_log`, one
//! field per plugin field), `Done`/`Error` end.
//!
//! On any failure the session ends with a [`SessionError`] naming the
//! connector and cause; records after the last committed checkpoint are
//! dropped (they were never given to the sink). Its message is masked and
//! cut at [`MAX_ERROR_BYTES`] (a plugin's own error at the log message
//! limit first). A plugin that, after [`MAX_EMPTY_PAGES`] checkpoints in a
//! row with no records, no watermark move and no pass, asks for another
//! request fails (retryable): a cursor that advances without end
//! (`plugin_api::validate::EmptyPages`). These checks of plugin output
//! live in `plugin_api::validate`, which `plugin_api::testing::FakeHost`
//! applies with the same words.

use super::cassette::Recorder;
use super::files::Files;
use super::http::{stop_requested, HttpExecutor, Redactor, ShuttingDown};
use super::transport::{CallFailure, InProcess, Subprocess, Transport};
use super::{
    HttpPolicy, Isolation, Plugin, SessionError, SessionOptions, SessionReport, SessionSink,
    SessionTuning,
};
use chrono::{DateTime, Utc};
use plugin_api::protocol::{
    encode_frame, Action, Checkpoint, ErrorKind, Event, HttpFailureKind, LogRecord, Manifest,
    Record, RecordKind, SessionMode, SessionOpen, Window,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// The session caps, defined with their checks in `plugin_api::validate`
/// (which `FakeHost` applies too): records held without a checkpoint, and
/// empty pages in a row before another request.
pub use plugin_api::validate::{MAX_BUFFERED_RECORDS, MAX_EMPTY_PAGES};

/// Longest session error message kept, in bytes: it goes into the log, the
/// run history and `/status`, and quotes what a platform chose (a URL with
/// a 5 MB cursor; QA31-C F3). A plugin's own error message is cut first, at
/// [`super::plugin_log::MAX_MESSAGE_BYTES`] as its log lines are.
pub const MAX_ERROR_BYTES: usize = 16 * 1024;

/// `message` as a session error keeps it: secrets masked, then cut at
/// [`MAX_ERROR_BYTES`] with a visible `…[cut, N bytes]` (masked first, so a
/// cut never leaves part of a secret).
fn bounded(redactor: &Redactor, message: &str) -> String {
    super::plugin_log::cut(redactor.redact(message), MAX_ERROR_BYTES)
}

struct Driver<'a> {
    plugin: Arc<Plugin>,
    connector: String,
    mode: SessionMode,
    sink: &'a mut dyn SessionSink,
    exec: HttpExecutor,
    files: Option<Files>,
    tuning: SessionTuning,
    buffered: Vec<Record>,
    watermarks: BTreeMap<String, DateTime<Utc>>,
    report: SessionReport,
    queue: VecDeque<(Event, Vec<u8>)>,
    now: DateTime<Utc>,
    /// Requests the plugin asked for, and the most it may.
    asked: u64,
    max_requests: u64,
    /// The session's exchanges, when it is being recorded.
    recorder: Option<Recorder>,
    /// The session's window (a complete pass must lie within it).
    window: Option<Window>,
    /// The same request asked for again after each commit.
    repeats: plugin_api::validate::RepeatedRequests,
    /// Masks secrets in records and checkpoints; remembers its warnings.
    review: plugin_api::review::Review,
    /// The last answer's status and request (`GET scheme://host/path`, no
    /// query), to name in the plugin's error when it is a "no such path".
    last_answer: Option<(u16, String)>,
    /// Checkpoints in a row without records, watermark move or pass
    /// ([`MAX_EMPTY_PAGES`]).
    empty_pages: plugin_api::validate::EmptyPages,
}

fn fail(connector: &str, kind: ErrorKind, retryable: bool, message: String) -> SessionError {
    SessionError {
        connector: connector.to_owned(),
        kind,
        retryable,
        message,
        report: SessionReport::default(),
    }
}

/// `open` as this plugin can read it. A plugin built before the protocol
/// fingerprint ([`Plugin::outdated`]) is also from before
/// [`SessionOpen::timezone`], and its `deny_unknown_fields` would refuse the
/// message: it gets none (its days stay UTC's, as they always were).
fn open_for(plugin: &Plugin, mut open: SessionOpen) -> SessionOpen {
    if plugin.outdated().is_some() {
        open.timezone = None;
    }
    open
}

/// Runs a session; see [`super::run_session`].
pub async fn run(
    plugin: Arc<Plugin>,
    open: SessionOpen,
    policy: HttpPolicy,
    options: SessionOptions,
    sink: &mut dyn SessionSink,
    tuning: SessionTuning,
) -> Result<SessionReport, SessionError> {
    let open = open_for(&plugin, open);
    let connector = open.connector_id.clone();
    let manifest = &plugin.manifest;
    for s in &open.streams {
        if !manifest.streams.iter().any(|m| m.name == *s) {
            return Err(fail(
                &connector,
                ErrorKind::Config,
                false,
                format!(
                    "stream `{s}` is not one of plugin `{}`'s streams ({})",
                    manifest.id,
                    stream_names(manifest)
                ),
            ));
        }
    }
    let open_json = serde_json::to_vec(&open).map_err(|e| {
        fail(
            &connector,
            ErrorKind::Internal,
            false,
            format!("session open does not serialise: {e}"),
        )
    })?;
    let exec = HttpExecutor::new(
        policy,
        manifest.auth.clone(),
        &manifest.allowed_hosts,
        &open.base_url,
        open.settings.clone(),
        tuning.clone(),
    );
    let redactor = exec.redactor().clone();
    let wrap = |f: CallFailure, redactor: &Redactor| {
        fail(
            &connector,
            f.kind,
            f.retryable,
            bounded(
                redactor,
                &format!("plugin `{}`: {}", plugin.manifest.id, f.message),
            ),
        )
    };
    // DEBUG: a sync's own `sync started` line names the build that ran
    // (soak QA18 F8: per-session lines were most of the INFO log).
    tracing::debug!(plugin = %manifest.id, version = %manifest.version,
        file = %plugin.path.file_name().unwrap_or_default().to_string_lossy(),
        sha256 = %plugin.sha256.get(..12).unwrap_or_default(),
        connector = %connector, mode = ?open.mode,
        isolation = ?options.isolation, "session started");
    // Before either transport: an in-process session would run the build
    // loaded earlier without a word, and a child would load the new file
    // (QA42a A-H1); both are refused alike.
    if let Some(why) = plugin.replaced() {
        return Err(fail(
            &connector,
            ErrorKind::Config,
            false,
            format!("plugin `{}`: {why}", manifest.id),
        ));
    }
    let transport: Box<dyn Transport> = match options.isolation {
        Isolation::InProcess => Box::new(
            InProcess::open(&plugin, &connector, open_json, options.step_deadline)
                .await
                .map_err(|f| wrap(f, &redactor))?,
        ),
        Isolation::Subprocess => Box::new(
            Subprocess::open(
                &plugin,
                &options.host_exe,
                &connector,
                open_json,
                options.step_deadline,
                &redactor,
            )
            .await
            .map_err(|f| wrap(f, &redactor))?,
        ),
    };
    let mut driver = Driver {
        recorder: tuning.record.clone().map(Recorder::new),
        files: Files::new(
            manifest.file_capability.as_ref(),
            &open.settings,
            tuning.file_max_bytes,
        ),
        plugin: plugin.clone(),
        connector: connector.clone(),
        mode: open.mode,
        sink,
        exec,
        tuning,
        buffered: Vec::new(),
        watermarks: open
            .checkpoints
            .iter()
            .map(|(k, v)| (k.clone(), v.watermark))
            .collect(),
        report: SessionReport::default(),
        queue: VecDeque::from([(Event::Start, Vec::new())]),
        window: open.window,
        now: open.now,
        asked: 0,
        max_requests: options.max_requests,
        repeats: Default::default(),
        last_answer: None,
        review: Default::default(),
        empty_pages: Default::default(),
    };
    driver.review.set_now(open.now);
    let mut transport = transport;
    let result = driver.drive(&mut *transport).await;
    transport.close().await;
    let stats = driver.exec.stats;
    driver.report.requests = stats.requests;
    driver.report.retries = stats.retries;
    driver.report.rate_limit_waits = stats.rate_limit_waits;
    driver.report.refused_wait_secs = stats.refused_wait_secs;
    let redactor = driver.exec.redactor().clone();
    // Written whatever the outcome: a failed session's exchanges reproduce
    // the failure.
    if let Some(recorder) = driver.recorder.take() {
        if let Err(e) = recorder.write(&open, &redactor) {
            tracing::error!(plugin = %manifest.id, connector = %connector,
                error = %redactor.redact(&e.to_string()), "the session's cassette could not be written");
        }
    }
    match result {
        Ok(()) => {
            // No record counts here: pages may still be committing on the
            // store's writer; the sync's own line has the final ones.
            tracing::debug!(plugin = %manifest.id, connector = %connector,
                pages = driver.report.pages, requests = driver.report.requests,
                retries = driver.report.retries, "session finished");
            Ok(driver.report)
        }
        Err(mut e) => {
            e.message = bounded(&redactor, &e.message);
            e.report = driver.report.clone();
            // The error itself is reported once, by the caller (the sync's
            // "sync did not finish" line, or the command's error).
            // A check stores nothing, and a read that had nothing buffered
            // drops nothing: the clause about what is kept only where it
            // says something (QA: "dropped_records=0" after a failed check).
            // Stopped on purpose (the daemon stops, or the client of a
            // sync went away): not a failure to alert on (soak QA18 F4).
            let stopped = driver
                .tuning
                .shutdown
                .as_ref()
                .is_some_and(|stop| *stop.borrow());
            match (driver.mode, driver.buffered.len()) {
                (SessionMode::Read, dropped) if stopped => {
                    tracing::info!(plugin = %manifest.id, connector = %connector,
                        pages = driver.report.pages, dropped_records = dropped,
                        "session stopped on request; every committed page is kept");
                }
                (SessionMode::Check, _) => {
                    tracing::warn!(plugin = %manifest.id, connector = %connector,
                        retryable = e.retryable, "check failed");
                }
                (SessionMode::Read, 0) => {
                    tracing::warn!(plugin = %manifest.id, connector = %connector,
                        retryable = e.retryable, pages = driver.report.pages,
                        "session failed; every committed page is kept");
                }
                (SessionMode::Read, dropped) => {
                    tracing::warn!(plugin = %manifest.id, connector = %connector,
                        retryable = e.retryable, pages = driver.report.pages,
                        dropped_records = dropped,
                        "session failed; records after the last committed checkpoint are not kept");
                }
            }
            Err(e)
        }
    }
}

fn stream_names(m: &Manifest) -> String {
    plugin_api::validate::stream_names(m)
}

impl Driver<'_> {
    fn err(&self, kind: ErrorKind, retryable: bool, message: String) -> SessionError {
        fail(&self.connector, kind, retryable, message)
    }

    fn invalid(&self, message: String) -> SessionError {
        self.err(
            ErrorKind::Protocol,
            false,
            format!(
                "plugin `{}` produced invalid output: {message}",
                self.plugin.manifest.id
            ),
        )
    }

    async fn drive(&mut self, transport: &mut dyn Transport) -> Result<(), SessionError> {
        loop {
            let Some((event, bytes)) = self.queue.pop_front() else {
                return Err(self.invalid(
                    "it stopped without `done` or `error` while waiting for nothing".into(),
                ));
            };
            let frame = encode_frame(&event, &bytes);
            drop(bytes);
            let out = transport.step(frame).await.map_err(|f| {
                self.err(
                    f.kind,
                    f.retryable,
                    format!("plugin `{}`: {}", self.plugin.manifest.id, f.message),
                )
            })?;
            let actions: Vec<Action> = serde_json::from_slice(&out)
                .map_err(|e| self.invalid(format!("malformed actions: {e}")))?;
            drop(out);
            for action in actions {
                if self.act(action).await? {
                    return Ok(());
                }
            }
        }
    }

    /// Carries out one action; `Ok(true)` when the session is done.
    async fn act(&mut self, action: Action) -> Result<bool, SessionError> {
        match action {
            Action::Http(req) => {
                self.asked += 1;
                if self.asked > self.max_requests {
                    return Err(self.err(
                        ErrorKind::Protocol,
                        false,
                        format!(
                            "plugin `{}` asked for more than {} requests in one run \
                             (`max_requests_per_run` of connector `{}`): a plugin paging without end? \
                             Raise the limit if this source really needs more",
                            self.plugin.manifest.id, self.max_requests, self.connector
                        ),
                    ));
                }
                // A cursor that does not advance fails here, long before
                // the request budget (QA7 F8).
                if let Err(why) = self
                    .repeats
                    .request(&req.method, &req.url, req.body.as_deref())
                {
                    return Err(self.err(
                        ErrorKind::Protocol,
                        false,
                        format!("plugin `{}` {why}", self.plugin.manifest.id),
                    ));
                }
                // A cursor that advances over empty pages without end
                // fails here (QA31-C F2); the request is not sent.
                if let Err(why) = self.empty_pages.request() {
                    return Err(self.err(
                        ErrorKind::Upstream,
                        true,
                        format!("plugin `{}` {why}", self.plugin.manifest.id),
                    ));
                }
                match self.exec.execute(&req).await {
                    Ok(answer) => {
                        if let Some(r) = self.recorder.as_mut() {
                            r.record(&req, &answer);
                        }
                        self.last_answer = match &answer.0 {
                            Event::HttpResponse(head) => {
                                let url = req.url.split(['?', '#']).next().unwrap_or_default();
                                Some((head.status, format!("{} {url}", req.method)))
                            }
                            _ => None,
                        };
                        self.queue.push_back(answer);
                    }
                    Err(ShuttingDown) => return Err(self.stopped()),
                }
            }
            Action::Records { records } => {
                // None in a check, at most MAX_BUFFERED_RECORDS held
                // (`plugin_api::validate::emitted`, as `FakeHost`).
                plugin_api::validate::emitted(self.mode, self.buffered.len(), records.len())
                    .map_err(|why| self.invalid(why))?;
                self.buffered.extend(records);
            }
            Action::Checkpoint(cp) => self.checkpoint(cp)?,
            Action::SleepUntil { id, until } => {
                let now = Utc::now().max(self.now);
                if until > now {
                    let wanted = (until - now).to_std().unwrap_or_default();
                    let wait = wanted.min(self.tuning.max_sleep);
                    tracing::debug!(plugin = %self.plugin.manifest.id, connector = %self.connector,
                        wait_ms = wait.as_millis() as u64, "sleeping until the plugin's timer");
                    let woken = tokio::select! {
                        biased;
                        () = stop_requested(self.tuning.shutdown.clone()) => false,
                        () = tokio::time::sleep(wait) => true,
                    };
                    if !woken {
                        return Err(self.stopped());
                    }
                }
                self.now = Utc::now().max(self.now);
                self.queue
                    .push_back((Event::Timer { id, now: self.now }, Vec::new()));
            }
            Action::ReadFile { id, name } => {
                let r = match &self.files {
                    None => Err(format!(
                        "plugin `{}` declares no file capability",
                        self.plugin.manifest.id
                    )),
                    Some(f) => f.read(&name),
                };
                self.queue.push_back(match r {
                    Ok(bytes) => (Event::File { id, name }, bytes),
                    Err(message) => (
                        Event::HttpFailure {
                            id,
                            kind: HttpFailureKind::NotAllowed,
                            message,
                        },
                        Vec::new(),
                    ),
                });
            }
            Action::ListFiles { id } => {
                let r = match &self.files {
                    None => Err(format!(
                        "plugin `{}` declares no file capability",
                        self.plugin.manifest.id
                    )),
                    Some(f) => f.list(),
                };
                self.queue.push_back(match r {
                    Ok(bytes) => (
                        Event::File {
                            id,
                            name: String::new(),
                        },
                        bytes,
                    ),
                    Err(message) => (
                        Event::HttpFailure {
                            id,
                            kind: HttpFailureKind::NotAllowed,
                            message,
                        },
                        Vec::new(),
                    ),
                });
            }
            Action::Log(record) => self.log(record),
            Action::Done => {
                // Records are stored only with the checkpoint that covers
                // them; finishing without one would lose them silently.
                if !self.buffered.is_empty() {
                    return Err(self.invalid(format!(
                        "it finished with {} record(s) after its last checkpoint, which are not stored; \
                         a plugin must commit (`cx.commit(checkpoint)`) after its last page",
                        self.buffered.len()
                    )));
                }
                return Ok(true);
            }
            Action::Error(e) => {
                let hint = self.wrong_path_hint(e.kind, &e.message);
                // Its message often quotes the platform: a newline or an
                // escape code in it must not fake a log line or reach a
                // terminal (plugin-developer QA16 N1), as in its logs.
                // The error is worded `connector `X`: plugin `Y` failed:
                // …`; plugins often start theirs with the connector too
                // (the SDK's settings errors do), said once (QA21 F8).
                // Cut as a log message is (QA31-C F3: a 5 MB cursor quoted
                // in a URL), masked first so no part of a secret is left.
                let message = super::plugin_log::cut(
                    plugin_api::validate::escape_controls(&self.exec.redactor().redact(&e.message)),
                    super::plugin_log::MAX_MESSAGE_BYTES,
                );
                let ours = format!("connector `{}`: ", self.connector);
                let message = message.strip_prefix(&ours).unwrap_or(&message[..]);
                return Err(self.err(
                    e.kind,
                    e.retryable,
                    format!(
                        "plugin `{}` failed: {message}{hint}",
                        self.plugin.manifest.id
                    ),
                ));
            }
        }
        Ok(false)
    }

    /// When a plugin fails on a "no such path" answer (404, 405, 410), the
    /// request that got it: a `base_url` without the API's path prefix
    /// gives a bare "request failed (HTTP 404)" otherwise (ops QA13 OPS-11).
    /// The query is left out: some APIs take keys there.
    fn wrong_path_hint(&self, kind: ErrorKind, message: &str) -> String {
        match &self.last_answer {
            Some((status @ (404 | 405 | 410), request))
                if kind == ErrorKind::Upstream && message.contains(&format!("HTTP {status}")) =>
            {
                format!(
                    " (the request was `{request}`: check the connector's `settings.base_url`, \
                     including the API's path prefix)"
                )
            }
            _ => String::new(),
        }
    }

    /// The session's end when the daemon stops during a wait: retryable;
    /// what the plugin emitted after its last checkpoint is dropped.
    fn stopped(&self) -> SessionError {
        tracing::info!(plugin = %self.plugin.manifest.id, connector = %self.connector,
            "shutdown requested: the session stops waiting");
        self.err(
            ErrorKind::Internal,
            true,
            "session stopped: the daemon is shutting down".into(),
        )
    }

    fn checkpoint(&mut self, mut cp: Checkpoint) -> Result<(), SessionError> {
        // Not in a check, of a declared stream; its watermark not
        // backwards, not in the future, and a stream's first one not before
        // the window; a pass of a spend stream within the window
        // (`plugin_api::validate`, whose checks `FakeHost` applies too).
        let kind =
            plugin_api::validate::checkpoint_stream(self.mode, &self.plugin.manifest, &cp.stream)
                .map_err(|why| self.invalid(why))?
                .record;
        plugin_api::validate::watermark(
            &cp.stream,
            cp.watermark,
            self.watermarks.get(&cp.stream).copied(),
            self.window.as_ref(),
            self.now,
        )
        .map_err(|why| self.invalid(why.replace("<connector>", &self.connector)))?;
        plugin_api::validate::covers(&cp, kind, self.window.as_ref())
            .map_err(|why| self.invalid(why))?;
        // A credential the platform echoed is masked before anything else
        // sees the page (validation errors, the store, status); the values
        // include OAuth2 tokens learnt during the session. Float noise in
        // an amount is kept and warned about (QA7 F14, F9).
        for v in self.exec.redactor().values() {
            self.review.add_secret(v);
        }
        let mut warnings = Vec::new();
        for r in &mut self.buffered {
            warnings.extend(self.review.record(&cp.stream, r));
        }
        warnings.extend(self.review.checkpoint(&mut cp));
        // Checked in place: a refused page stays buffered, so the failure
        // log counts the records it drops.
        let (page, total) = (self.report.pages + 1, self.buffered.len());
        let connector = self.connector.clone();
        let bad = self.buffered.iter_mut().enumerate().find_map(|(i, r)| {
            validate(r, kind, &connector)
                .err()
                .map(|why| (i, plugin_api::validate::escape_controls(&r.key()), why))
        });
        if let Some((i, key, why)) = bad {
            return Err(self.invalid(format!(
                "stream `{}`, page {page} of this session, record {} of {total} (key `{key}`): {why}; the page is not stored",
                cp.stream,
                i + 1
            )));
        }
        let records = std::mem::take(&mut self.buffered);
        let n = records.len();
        let stream = cp.stream.clone();
        let watermark = cp.watermark;
        let previous = self.watermarks.get(&stream).copied();
        self.empty_pages.committed(&cp, n, previous);
        // Stored no later than the session's clock: a window ending today
        // is read up to now, not to the end of the day the plugin names
        // (midnight after its last day). Stored as that, the rest of the
        // day counted as synced: a month-end check said nothing of an
        // orders sync that last ran at 07:00 on the 30th, and with
        // `lookback_days = 0` the next run began the day after (ops QA35a
        // M4). The session itself goes on with the plugin's watermark.
        cp.watermark = cp.watermark.min(self.now);
        let stats = self.sink.commit(records, cp).map_err(|e| {
            self.err(
                ErrorKind::Internal,
                true,
                format!("committing stream `{stream}` failed: {e}"),
            )
        })?;
        for w in &warnings {
            self.warn(w);
        }
        self.watermarks.insert(stream.clone(), watermark);
        self.repeats.committed();
        self.report.pages += 1;
        self.report.new += stats.new;
        self.report.changed += stats.changed;
        self.report.unchanged += stats.unchanged;
        tracing::debug!(plugin = %self.plugin.manifest.id, connector = %self.connector,
            stream = %stream, records = n, watermark = %watermark.to_rfc3339(),
            "checkpoint committed");
        Ok(())
    }

    /// Logs a review warning about a page that was stored.
    fn warn(&self, w: &plugin_api::review::Warning) {
        let key = (!w.key.is_empty()).then_some(w.key.as_str());
        tracing::warn!(plugin = %self.plugin.manifest.id, connector = %self.connector,
            stream = %w.stream, key, field = %w.field, value = w.value.as_deref(),
            "{}", w.message);
    }

    fn log(&self, record: LogRecord) {
        super::plugin_log::emit(
            &self.plugin.manifest.id,
            &self.connector,
            record,
            self.exec.redactor(),
        );
    }
}

/// Validates one record for a stream of `kind` and stamps its source (the
/// checks live in plugin-api, shared with its `FakeHost`).
pub fn validate(r: &mut Record, kind: RecordKind, connector: &str) -> Result<(), String> {
    plugin_api::validate::record(r, kind, connector)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QA20 F2: the connector's timezone reaches a current plugin; a plugin
    /// from before the field (no fingerprint) would refuse it, so it gets none.
    #[test]
    fn an_outdated_plugin_is_opened_without_the_timezone() {
        let open = SessionOpen {
            timezone: Some("America/Los_Angeles".into()),
            ..plugin_api::testing::open_check("c", "http://fake", serde_json::json!({}))
        };
        let mut plugin = crate::test_support::plugin("x", plugin_api::abi::PROTOCOL_FINGERPRINT);
        assert_eq!(
            open_for(&plugin, open.clone()).timezone.as_deref(),
            Some("America/Los_Angeles")
        );
        plugin.protocol_fingerprint = 0;
        assert_eq!(open_for(&plugin, open).timezone, None);
    }
}
