//! A fake host for plugin tests: replays recorded HTTP exchanges (or answers
//! from a closure) into a connector and collects what it produced.
//!
//! It drives the same [`Session`] the export shims drive, without a library
//! or a daemon, so a plugin's tests are plain `cargo test`.
//!
//! ```text
//! let cassette = Cassette::from_json(include_str!("../fixtures/two_pages.json"))?;
//! let out = FakeHost::replay(cassette)
//!     .run::<MyConnector>(open_read("my", "https://api.example.test", settings, window));
//! assert_eq!(out.committed.len(), 3);
//!
//! // Or answer from a closure: a generated fake API, 429s, bad rows.
//! let out = FakeHost::handler(|req| Reply::json(200, &page_for(&req.url)))
//!     .with_http_latency(chrono::Duration::seconds(1)) // answers take time
//!     .run::<MyConnector>(open_read("my", "http://fake", settings, window));
//! ```
//!
//! A [`Reply`] is a status, headers and a body; [`Outcome`] holds what the
//! session committed, the checkpoints, logs, requests (with the fake
//! clock's time of each) and waits, and how it ended. What the fake host
//! does not model: the daemon's own HTTP retries and 429 waits (a reply
//! reaches the plugin as is), and a panic in the plugin (it panics the
//! test; the daemon reports it as the sync's error). It does cap one timer
//! at [`MAX_TIMER_SECS`], as the daemon does, and stops a plugin paging
//! without end: after [`DEFAULT_MAX_REQUESTS`] requests
//! ([`FakeHost::with_max_requests`]), after [`MAX_STEPS`] host events,
//! when it asks again for the request whose answer it just committed
//! ([`crate::validate::RepeatedRequests`]), or when it asks for another
//! after [`crate::validate::MAX_EMPTY_PAGES`] empty pages in a row
//! ([`crate::validate::EmptyPages`]). A replay that leaves recorded
//! exchanges unused fails, naming the first
//! ([`FakeHost::allow_unused_exchanges`] for a partial replay).
//!
//! Like the daemon it runs each page through a [`crate::review::Review`]:
//! the values of the secrets a test gives ([`FakeHost::with_secret`]) are
//! masked as `***` in records, checkpoints, log lines and the error, and a
//! credential the platform echoed into a record, or an amount with float
//! noise (`0.30000000000000004`), is a warning in [`Outcome::warnings`],
//! also printed (`cargo test` shows it for a failing test, or with
//! `--nocapture`). Like the daemon it stores a key given twice in one page
//! once, the later record winning, with a warning when the two differ. A
//! test asserts `out.warnings.is_empty()` to keep a connector free of them.

use crate::protocol::{
    Action, Checkpoint, Event, HttpRequest, HttpResponseHead, LogRecord, PluginError, Record,
    SessionMode, SessionOpen, Window,
};
use crate::sdk::{Connector, Session};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// One recorded request and its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The exact URL the plugin must request (query order matters).
    pub url: String,
    /// If set, the exact request body expected.
    #[serde(default)]
    pub request_body: Option<String>,
    /// Response status.
    pub status: u16,
    /// Response headers (lower-case names).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response body as text.
    #[serde(default)]
    pub body: String,
}

/// An ordered list of exchanges, usually loaded from a JSON fixture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cassette {
    /// Exchanges in the order the plugin must make them.
    pub exchanges: Vec<Exchange>,
}

impl Cassette {
    /// Parses a cassette from JSON.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// A canned answer from a handler closure.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: BTreeMap<String, String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A 200 with a JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Reply {
            status,
            headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
            body: body.to_string().into_bytes(),
        }
    }
}

type Handler = Box<dyn FnMut(&HttpRequest) -> Reply>;

/// What a session produced.
#[derive(Debug)]
pub struct Outcome {
    /// Records followed by a checkpoint: what a host would store.
    pub committed: Vec<Record>,
    /// Records emitted after the last checkpoint: a host would drop them.
    pub uncommitted: Vec<Record>,
    /// Checkpoints in order.
    pub checkpoints: Vec<Checkpoint>,
    /// Log lines.
    pub logs: Vec<LogRecord>,
    /// Requests the plugin made and the fake host answered, in order (one
    /// it refused, past the request budget or a cursor that does not
    /// advance, is not listed).
    pub requests: Vec<HttpRequest>,
    /// Until when each wait the plugin asked for lasted (a timer already
    /// due, as [`crate::Cx::sleep_for`] sets to read the host's clock, is
    /// not a wait and is not listed).
    pub sleeps: Vec<DateTime<Utc>>,
    /// The fake clock when each of [`Outcome::requests`] was sent (it
    /// moves with timers and [`FakeHost::with_http_latency`]).
    pub request_times: Vec<DateTime<Utc>>,
    /// Recorded exchanges the plugin never asked for (a replay; with
    /// [`FakeHost::allow_unused_exchanges`], else they fail the run).
    pub unused_exchanges: usize,
    /// What the daemon would log as a WARN about committed output it
    /// stores anyway: a credential echoed into a record or checkpoint
    /// (masked), an amount with float noise (kept), once per kind, stream
    /// and field, as in the daemon ([`crate::review`]); and a key given
    /// twice in one page with different values, once per later record
    /// ([`crate::validate::conflicting_duplicates`]: only the later one is
    /// in [`Outcome::committed`], as the daemon stores it).
    pub warnings: Vec<crate::review::Warning>,
    /// How the session ended.
    pub result: Result<(), PluginError>,
}

/// The longest single timer the daemon waits (its `max_sleep`); a plugin
/// asking for longer is woken then, with the time, and sleeps again
/// ([`crate::Cx::sleep_for`] does).
pub const MAX_TIMER_SECS: i64 = 15 * 60;

fn max_timer() -> chrono::Duration {
    chrono::Duration::seconds(MAX_TIMER_SECS)
}

/// The most requests one [`FakeHost`] run answers by default
/// ([`FakeHost::with_max_requests`]; the daemon's `max_requests_per_run`
/// defaults to 100,000, which a test has no need of).
pub const DEFAULT_MAX_REQUESTS: usize = 10_000;

/// The most host events (steps) one [`FakeHost`] run feeds a plugin: a
/// plugin waiting without end (timers that never lead anywhere) stops here.
pub const MAX_STEPS: usize = 100_000;

/// The fake host.
pub struct FakeHost {
    source: Source,
    files: BTreeMap<String, Vec<u8>>,
    max_requests: usize,
    allow_unused: bool,
    latency: chrono::Duration,
    /// `(setting, value)` of [`FakeHost::with_secret`].
    secrets: Vec<(String, String)>,
}

enum Source {
    Replay(VecDeque<Exchange>),
    Handler(Handler),
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost")
            .field("files", &self.files.len())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl FakeHost {
    /// Replays a cassette: each request must match the next exchange.
    pub fn replay(cassette: Cassette) -> Self {
        FakeHost {
            source: Source::Replay(cassette.exchanges.into()),
            files: BTreeMap::new(),
            max_requests: DEFAULT_MAX_REQUESTS,
            allow_unused: false,
            latency: chrono::Duration::zero(),
            secrets: Vec::new(),
        }
    }
    /// Answers every request from a closure (e.g. a generated fake API).
    pub fn handler(f: impl FnMut(&HttpRequest) -> Reply + 'static) -> Self {
        FakeHost {
            source: Source::Handler(Box::new(f)),
            files: BTreeMap::new(),
            max_requests: DEFAULT_MAX_REQUESTS,
            allow_unused: false,
            latency: chrono::Duration::zero(),
            secrets: Vec::new(),
        }
    }
    /// Lets every HTTP answer take `latency` of the fake clock, as real
    /// requests take time. The clock starts at the session's `now` and
    /// otherwise moves only with timers; a plugin's [`crate::Cx::now`]
    /// learns it only from a timer, as with the daemon.
    pub fn with_http_latency(mut self, latency: chrono::Duration) -> Self {
        self.latency = latency;
        self
    }
    /// Answers at most `n` requests; the next one fails the run as the
    /// daemon's `max_requests_per_run` does (default
    /// [`DEFAULT_MAX_REQUESTS`]).
    pub fn with_max_requests(mut self, n: usize) -> Self {
        self.max_requests = n;
        self
    }
    /// Lets a replay end with recorded exchanges unused (a partial replay);
    /// by default they fail the run, naming the first, since a plugin that
    /// stops paging early would otherwise pass its cassette test.
    /// [`Outcome::unused_exchanges`] counts them either way.
    pub fn allow_unused_exchanges(mut self) -> Self {
        self.allow_unused = true;
        self
    }
    /// Tells the fake host the value of a secret setting (one the manifest
    /// marks `"x-secret": true`), as the daemon knows it from the
    /// connector's config. The plugin never sees it (nor does the fake host
    /// add it to requests); as in the daemon, a value of at least
    /// [`crate::review::MIN_MASKED_SECRET_CHARS`] characters (and its
    /// percent-encoded form) is masked as `***` wherever the plugin's
    /// output holds it: records, checkpoints, log lines, the error. A
    /// record holding it is a warning in [`Outcome::warnings`]. A setting
    /// the manifest does not declare secret fails the run.
    pub fn with_secret(mut self, setting: &str, value: &str) -> Self {
        self.secrets.push((setting.to_owned(), value.to_owned()));
        self
    }
    /// Makes a file readable through the file capability.
    pub fn with_file(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.insert(name.to_owned(), bytes.into());
        self
    }

    /// Runs one session of `C` to completion. Like the daemon, it refuses
    /// a request whose origin is neither the session's base URL's (scheme,
    /// host and port) nor https on its host or on a host of the manifest's
    /// `allowed_hosts`, or that carries a user or password (the plugin gets
    /// a `NotAllowed` failure), and fails the session with a protocol error,
    /// in the daemon's words, on output the daemon would refuse: records or
    /// a checkpoint in a check session, more than
    /// [`crate::validate::MAX_BUFFERED_RECORDS`] records without a
    /// checkpoint ([`crate::validate::emitted`]), a checkpoint of an
    /// undeclared stream ([`crate::validate::checkpoint_stream`]), whose
    /// watermark goes backwards or out of bounds
    /// ([`crate::validate::watermark`]) or whose complete pass is not of a
    /// spend stream within the window ([`crate::validate::covers`]), a
    /// record failing [`crate::validate::record`], or finishing with
    /// records after the last checkpoint. Like the daemon it stops a plugin
    /// asking for more than its request budget
    /// ([`FakeHost::with_max_requests`]), asking again for the request
    /// whose answer it just committed ([`crate::validate::RepeatedRequests`]),
    /// or asking for another after [`crate::validate::MAX_EMPTY_PAGES`]
    /// empty pages in a row (a retryable `upstream` error,
    /// [`crate::validate::EmptyPages`]), and refuses a manifest the daemon's
    /// loader refuses ([`crate::manifest::check`]: streams of another record
    /// type than the kind's, a malformed `config_schema`, an
    /// `allowed_hosts` entry that is not a host name, an `auth` naming a
    /// setting that is not a declared `x-secret` one). A
    /// replay fails when recorded exchanges are left unused (unless
    /// [`FakeHost::allow_unused_exchanges`]). Each page is reviewed as the
    /// daemon reviews it ([`crate::review::Review`]): secrets given with
    /// [`FakeHost::with_secret`] are masked, and the daemon's warnings are
    /// collected in [`Outcome::warnings`] and printed.
    pub fn run<C: Connector>(self, open: SessionOpen) -> Outcome {
        let manifest = C::manifest();
        let config_error = |why: String| Outcome {
            committed: Vec::new(),
            uncommitted: Vec::new(),
            checkpoints: Vec::new(),
            logs: Vec::new(),
            requests: Vec::new(),
            sleeps: Vec::new(),
            request_times: Vec::new(),
            unused_exchanges: 0,
            warnings: Vec::new(),
            result: Err(PluginError::new(crate::protocol::ErrorKind::Config, why)),
        };
        // The daemon refuses to load such a plugin at all.
        // (No regex engine here: any settings `pattern` string passes.)
        if let Err(why) = crate::manifest::check(&manifest, &|_| None) {
            return config_error(format!("manifest: {why}"));
        }
        // The daemon accepts a secret reference only for an `x-secret`
        // setting.
        let mut review = crate::review::Review::new();
        review.set_now(open.now);
        for (setting, value) in &self.secrets {
            let secret = manifest
                .config_schema
                .get("properties")
                .and_then(|p| p.get(setting))
                .and_then(|p| p.get("x-secret"))
                .and_then(serde_json::Value::as_bool)
                == Some(true);
            if !secret {
                return config_error(format!(
                    "`FakeHost::with_secret(\"{setting}\", ..)`: plugin `{}` declares no setting `{setting}` marked \"x-secret\": true \
                     in its `config_schema`, and the daemon knows the values of those only",
                    manifest.id
                ));
            }
            review.add_secret(value);
            review.add_secret(&crate::sdk::encode_component(value));
        }
        let mut out = self.drive::<C>(&manifest, open, &mut review);
        // As the daemon's redactor does with what leaves the session.
        if let Err(e) = &mut out.result {
            if let Some(m) = review.mask(&e.message) {
                e.message = m;
            }
        }
        for l in &mut out.logs {
            if let Some(m) = review.mask(&l.message) {
                l.message = m;
            }
            for v in l.fields.values_mut() {
                if let Some(m) = review.mask(v) {
                    *v = m;
                }
            }
        }
        out
    }

    fn drive<C: Connector>(
        mut self,
        manifest: &crate::protocol::Manifest,
        open: SessionOpen,
        review: &mut crate::review::Review,
    ) -> Outcome {
        let connector = open.connector_id.clone();
        let mut allowed: Vec<String> = manifest
            .allowed_hosts
            .iter()
            .map(|h| format!("https://{}:443", h.to_ascii_lowercase()))
            .collect();
        // As the daemon: the base URL's origin, and https on its host.
        if let Some(base) = origin_of(&open.base_url) {
            if let Some((host, _)) = base
                .split_once("://")
                .and_then(|(_, rest)| rest.rsplit_once(':'))
            {
                allowed.push(format!("https://{host}:443"));
            }
            allowed.push(base);
        }
        allowed.sort();
        allowed.dedup();
        let mut watermarks: BTreeMap<String, DateTime<Utc>> = open
            .checkpoints
            .iter()
            .map(|(k, v)| (k.clone(), v.watermark))
            .collect();
        let mut clock = open.now;
        let window = open.window;
        let mode = open.mode;
        let mut session = Session::open::<C>(open);
        let mut out = Outcome {
            committed: Vec::new(),
            uncommitted: Vec::new(),
            checkpoints: Vec::new(),
            logs: Vec::new(),
            requests: Vec::new(),
            sleeps: Vec::new(),
            request_times: Vec::new(),
            unused_exchanges: 0,
            warnings: Vec::new(),
            result: Ok(()),
        };
        let mut repeats = crate::validate::RepeatedRequests::default();
        let mut empty_pages = crate::validate::EmptyPages::default();
        let mut queue: VecDeque<(Event, Vec<u8>)> = VecDeque::from([(Event::Start, Vec::new())]);
        let mut pending: Vec<Record> = Vec::new();
        let mut steps = 0;
        while let Some((event, bytes)) = queue.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                out.result = Err(PluginError::new(
                    crate::protocol::ErrorKind::Protocol,
                    format!(
                        "plugin `{}` took more than {MAX_STEPS} steps (host events) in one session without finishing: \
                         a plugin waiting or looping without end?",
                        manifest.id
                    ),
                ));
                break;
            }
            for action in session.step(event, &bytes) {
                match action {
                    Action::Http(req) => {
                        let refused = if out.requests.len() >= self.max_requests {
                            Some(format!(
                                "plugin `{}` asked for more than {} requests in one run \
                                 (`FakeHost::with_max_requests`; the daemon's `max_requests_per_run`): \
                                 a plugin paging without end? Raise the limit if this source really needs more",
                                manifest.id, self.max_requests
                            ))
                        } else {
                            repeats
                                .request(&req.method, &req.url, req.body.as_deref())
                                .err()
                                .map(|why| format!("plugin `{}` {why}", manifest.id))
                        };
                        if let Some(msg) = refused {
                            out.result =
                                Err(PluginError::new(crate::protocol::ErrorKind::Protocol, msg));
                            out.uncommitted = pending;
                            return out;
                        }
                        // As the daemon: a retryable upstream error.
                        if let Err(why) = empty_pages.request() {
                            out.result = Err(PluginError::retryable(
                                crate::protocol::ErrorKind::Upstream,
                                format!("plugin `{}` {why}", manifest.id),
                            ));
                            out.uncommitted = pending;
                            return out;
                        }
                        out.requests.push(req.clone());
                        out.request_times.push(clock);
                        clock += self.latency;
                        let origin = origin_of(&req.url);
                        if !origin.as_ref().is_some_and(|o| allowed.contains(o)) {
                            let host = origin.unwrap_or_else(|| {
                                "(a URL with a user or password, or unreadable)".into()
                            });
                            queue.push_back((
                                Event::HttpFailure {
                                    id: req.id,
                                    kind: crate::protocol::HttpFailureKind::NotAllowed,
                                    message: format!(
                                        "origin `{host}` is not allowed for connector `{connector}` (allowed: {}); \
                                         requests go to the base_url's scheme, host and port, or over https to a host of the plugin's allowed_hosts",
                                        allowed.join(", ")
                                    ),
                                },
                                Vec::new(),
                            ));
                            continue;
                        }
                        let reply = self.answer(&req);
                        match reply {
                            Ok(r) => queue.push_back((
                                Event::HttpResponse(HttpResponseHead {
                                    id: req.id,
                                    status: r.status,
                                    headers: r.headers,
                                }),
                                r.body,
                            )),
                            Err(msg) => {
                                out.result = Err(PluginError::new(
                                    crate::protocol::ErrorKind::Protocol,
                                    msg,
                                ));
                                out.uncommitted = pending;
                                return out;
                            }
                        }
                    }
                    Action::Records { records } => {
                        if let Err(why) =
                            crate::validate::emitted(mode, pending.len(), records.len())
                        {
                            out.result = Err(invalid(&manifest.id, why));
                            out.uncommitted = pending;
                            return out;
                        }
                        pending.extend(records);
                    }
                    Action::Checkpoint(mut cp) => {
                        // Masked and reviewed before the checks, as the
                        // daemon does: its errors never show a secret.
                        let mut warnings = Vec::new();
                        for r in &mut pending {
                            warnings.extend(review.record(&cp.stream, r));
                        }
                        warnings.extend(review.checkpoint(&mut cp));
                        let previous = watermarks.get(&cp.stream).copied();
                        let checked = check_page(
                            manifest,
                            &connector,
                            &mut watermarks,
                            (mode, window.as_ref(), clock),
                            &cp,
                            &pending,
                            out.checkpoints.len() + 1,
                        );
                        if let Err(msg) = checked {
                            out.result = Err(invalid(&manifest.id, msg));
                            out.uncommitted = pending;
                            return out;
                        }
                        // As the daemon stores a page: a key once, the
                        // later record winning, and a WARN when they differ.
                        for key in crate::validate::conflicting_duplicates(&pending) {
                            warnings.push(crate::review::Warning {
                                kind: crate::review::WarningKind::ConflictingDuplicate,
                                stream: cp.stream.clone(),
                                key: crate::validate::escape_controls(&key),
                                field: String::new(),
                                value: None,
                                message: crate::validate::CONFLICTING_DUPLICATE.to_owned(),
                            });
                        }
                        empty_pages.committed(&cp, pending.len(), previous);
                        keep_last_per_key(&mut pending);
                        for w in warnings {
                            eprintln!("FakeHost: WARN connector `{connector}`: {w}");
                            out.warnings.push(w);
                        }
                        out.committed.append(&mut pending);
                        out.checkpoints.push(cp);
                        repeats.committed();
                    }
                    Action::SleepUntil { id, until } => {
                        if until > clock {
                            out.sleeps.push(until);
                            // As the daemon: one timer waits at most
                            // MAX_TIMER; a longer sleep wakes early.
                            clock = until.min(clock + max_timer());
                        }
                        queue.push_back((Event::Timer { id, now: clock }, Vec::new()));
                    }
                    Action::ReadFile { id, name } => match self.files.get(&name) {
                        Some(b) => queue.push_back((Event::File { id, name }, b.clone())),
                        None => queue.push_back((
                            Event::HttpFailure {
                                id,
                                kind: crate::protocol::HttpFailureKind::NotAllowed,
                                message: format!("no such file `{name}`"),
                            },
                            Vec::new(),
                        )),
                    },
                    Action::ListFiles { id } => {
                        let names: Vec<&str> = self.files.keys().map(String::as_str).collect();
                        queue.push_back((
                            Event::File {
                                id,
                                name: String::new(),
                            },
                            names.join("\n").into_bytes(),
                        ));
                    }
                    Action::Log(l) => out.logs.push(l),
                    Action::Done if !pending.is_empty() && out.result.is_ok() => {
                        out.result = Err(invalid(
                            &manifest.id,
                            format!(
                                "it finished with {} record(s) after its last checkpoint, which are not stored; \
                                 a plugin must commit (`cx.commit(checkpoint)`) after its last page",
                                pending.len()
                            ),
                        ));
                    }
                    Action::Done => {}
                    // Escaped as the host escapes it (QA16 N1).
                    Action::Error(e) => {
                        out.result = Err(PluginError {
                            message: crate::validate::escape_controls(&e.message),
                            ..e
                        })
                    }
                }
            }
        }
        out.uncommitted = pending;
        if let Source::Replay(left) = &self.source {
            out.unused_exchanges = left.len();
            if let (Some(first), Ok(()), false) = (left.front(), &out.result, self.allow_unused) {
                out.result = Err(PluginError::new(
                    crate::protocol::ErrorKind::Protocol,
                    format!(
                        "the session ended with {} recorded exchange(s) unused, the first {} {}: \
                         did the plugin stop paging early? (`FakeHost::allow_unused_exchanges()` for a partial replay)",
                        left.len(),
                        first.method,
                        first.url
                    ),
                ));
            }
        }
        out
    }

    fn answer(&mut self, req: &HttpRequest) -> Result<Reply, String> {
        match &mut self.source {
            Source::Handler(h) => Ok(h(req)),
            Source::Replay(q) => {
                let Some(ex) = q.pop_front() else {
                    return Err(format!(
                        "unexpected request {} {}: cassette exhausted",
                        req.method, req.url
                    ));
                };
                if ex.method != req.method || ex.url != req.url {
                    return Err(format!(
                        "request mismatch: plugin sent {} {}, cassette expected {} {}",
                        req.method, req.url, ex.method, ex.url
                    ));
                }
                if let Some(body) = &ex.request_body {
                    if req.body.as_deref() != Some(body.as_str()) {
                        return Err(format!(
                            "request body mismatch for {}: got {:?}",
                            req.url, req.body
                        ));
                    }
                }
                Ok(Reply {
                    status: ex.status,
                    headers: ex.headers,
                    body: ex.body.into_bytes(),
                })
            }
        }
    }
}

/// A read session open message for tests: no `timezone`, as from a host
/// before it (the days are UTC's); set `timezone` to open one in a
/// connector's zone. Its clock (`now`, what [`crate::sdk::Cx::now`]
/// answers) is fixed at 2026-11-28T12:00:00Z, so a test gives the same
/// result on any day: for a window after that day, set `now` too (records
/// dated more than 24 h after the clock get a warning, as the host gives).
pub fn open_read(
    connector_id: &str,
    base_url: &str,
    settings: serde_json::Value,
    window: Window,
) -> SessionOpen {
    SessionOpen {
        mode: SessionMode::Read,
        connector_id: connector_id.to_owned(),
        settings,
        base_url: base_url.to_owned(),
        streams: Vec::new(),
        window: Some(window),
        checkpoints: BTreeMap::new(),
        now: DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default(),
        timezone: None,
    }
}

/// One stream of conversions: what the crate's test connectors of
/// [`Manifest::bare`] (an affiliate) declare, as [`FakeHost`] refuses a
/// manifest without streams as the daemon does.
#[cfg(test)]
pub(crate) fn conversions_stream() -> Vec<crate::protocol::StreamSpec> {
    vec![crate::protocol::StreamSpec {
        name: "conversions".into(),
        record: crate::protocol::RecordKind::Conversion,
        primary_key: vec!["external_id".into()],
        cursor: None,
        default_lookback_days: 1,
    }]
}

/// A check session open message for tests.
pub fn open_check(connector_id: &str, base_url: &str, settings: serde_json::Value) -> SessionOpen {
    SessionOpen {
        mode: SessionMode::Check,
        window: None,
        ..open_read(
            connector_id,
            base_url,
            settings,
            Window {
                from: chrono::NaiveDate::MIN,
                to: chrono::NaiveDate::MIN,
            },
        )
    }
}

/// The daemon's error for output it refuses.
fn invalid(plugin: &str, msg: String) -> PluginError {
    PluginError::new(
        crate::protocol::ErrorKind::Protocol,
        format!("plugin `{plugin}` produced invalid output: {msg}"),
    )
}

/// The daemon's checks of one page, in its order: not in a check session,
/// a declared stream ([`crate::validate::checkpoint_stream`]), a watermark
/// that does not go backwards, lies neither in the future nor (a stream's
/// first) before the window ([`crate::validate::watermark`]), a complete
/// pass only of a spend stream within the window
/// ([`crate::validate::covers`]), and every record valid for the stream's
/// kind.
fn check_page(
    manifest: &crate::protocol::Manifest,
    connector: &str,
    watermarks: &mut BTreeMap<String, DateTime<Utc>>,
    (mode, window, now): (SessionMode, Option<&Window>, DateTime<Utc>),
    cp: &Checkpoint,
    records: &[Record],
    page: usize,
) -> Result<(), String> {
    let spec = crate::validate::checkpoint_stream(mode, manifest, &cp.stream)?;
    crate::validate::watermark(
        &cp.stream,
        cp.watermark,
        watermarks.get(&cp.stream).copied(),
        window,
        now,
    )
    .map_err(|why| why.replace("<connector>", connector))?;
    crate::validate::covers(cp, spec.record, window)?;
    // Checked on a copy: the outcome keeps the records as the plugin
    // emitted them (the daemon also stamps `source`).
    for (i, r) in records.iter().enumerate() {
        crate::validate::record(&mut r.clone(), spec.record, connector).map_err(|why| {
            format!(
                "stream `{}`, page {page} of this session, record {} of {} (key `{}`): {why}; the page is not stored",
                cp.stream,
                i + 1,
                records.len(),
                crate::validate::escape_controls(&r.key())
            )
        })?;
    }
    watermarks.insert(cp.stream.clone(), cp.watermark);
    Ok(())
}

/// Keeps each key of one page once, its last record, where that stood:
/// the daemon stores a page so (`Store::prepare_page`).
fn keep_last_per_key(records: &mut Vec<Record>) {
    if records.len() < 2 {
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    let mut keep: Vec<bool> = records
        .iter()
        .rev()
        .map(|r| seen.insert((r.kind(), r.key())))
        .collect();
    keep.reverse();
    let mut flags = keep.into_iter();
    records.retain(|_| flags.next().unwrap_or(true));
}

/// The lower-case host of an absolute URL (no port, no user info).
/// A URL's origin as the daemon checks it: `scheme://host:port` (default
/// ports filled in, host lower-cased); `None` for a URL with a user or
/// password, or that cannot be read.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (format!("[{host}]"), after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let port = match (port, scheme.as_str()) {
        (Some(p), _) => p.parse::<u16>().ok()?,
        (None, "https") => 443,
        (None, "http") => 80,
        _ => return None,
    };
    (!host.is_empty()).then(|| format!("{scheme}://{}:{port}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod host_check_tests {
    use super::*;
    use crate::protocol::{Manifest, RecordKind, StreamSpec};
    use crate::sdk::Cx;
    use crate::{Conversion, ConversionStatus, EventType, Money, Request, Utm};

    /// Misbehaves as its settings say: `bad_currency`, `foreign_host`,
    /// `no_commit`, `false_pass`, ...; in a check, `check_records` or
    /// `check_checkpoint`.
    struct Bad;
    impl Connector for Bad {
        fn manifest() -> Manifest {
            Manifest {
                streams: vec![StreamSpec {
                    name: "conversions".into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: None,
                    default_lookback_days: 1,
                }],
                allowed_hosts: vec!["api.bad.example".into()],
                ..Manifest::bare("bad")
            }
        }
        async fn check(cx: Cx) -> Result<(), PluginError> {
            let mode = cx.settings::<serde_json::Value>()?["mode"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let checkpoint = Checkpoint {
                stream: "conversions".into(),
                watermark: cx.now(),
                state: serde_json::Value::Null,
                covers: None,
            };
            match mode.as_str() {
                "check_records" => {
                    cx.emit(conversion(&cx, "c1", ConversionStatus::Approved));
                    cx.commit(checkpoint);
                }
                "check_checkpoint" => cx.commit(checkpoint),
                _ => {}
            }
            Ok(())
        }
        async fn read(cx: Cx) -> Result<(), PluginError> {
            let mode = cx.settings::<serde_json::Value>()?["mode"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if mode == "false_pass" {
                cx.emit(conversion(&cx, "c1", ConversionStatus::Approved));
                cx.commit(Checkpoint {
                    stream: "conversions".into(),
                    watermark: cx.now(),
                    state: serde_json::Value::Null,
                    covers: Some(crate::Covers {
                        account_id: "a1".into(),
                        days: cx.window().unwrap_or(Window {
                            from: chrono::NaiveDate::MIN,
                            to: chrono::NaiveDate::MIN,
                        }),
                    }),
                });
                return Ok(());
            }
            if mode == "same_cursor" || mode == "endless" {
                let mut n = 0;
                loop {
                    let cursor = if mode == "endless" { n } else { 1 };
                    cx.http(Request::get(format!(
                        "https://api.bad.example/p?cursor={cursor}"
                    )))
                    .await?;
                    n += 1;
                    cx.commit(Checkpoint {
                        stream: "conversions".into(),
                        watermark: cx.now(),
                        state: serde_json::json!({ "cursor": cursor }),
                        covers: None,
                    });
                }
            }
            if mode == "duplicate" {
                // c1 restated within the page, c2 repeated as it was.
                cx.emit(conversion(&cx, "c1", ConversionStatus::Pending));
                cx.emit(conversion(&cx, "c2", ConversionStatus::Pending));
                cx.emit(conversion(&cx, "c1", ConversionStatus::Approved));
                cx.emit(conversion(&cx, "c2", ConversionStatus::Pending));
                cx.commit(Checkpoint {
                    stream: "conversions".into(),
                    watermark: cx.now(),
                    state: serde_json::Value::Null,
                    covers: None,
                });
                return Ok(());
            }
            if mode == "one_request" {
                cx.http(Request::get("https://api.bad.example/p?cursor=0"))
                    .await?;
            }
            if mode == "foreign_host" {
                cx.http(Request::get("https://elsewhere.example/x")).await?;
                return Ok(());
            }
            // `echo`: the platform's answer `{"ref": ...}` (a careless API
            // echoing the request's Authorization header) becomes two
            // records' order id, a log field and the checkpoint's state.
            let echoed = if mode.starts_with("echo") {
                let v: serde_json::Value = cx
                    .http(Request::get("https://api.bad.example/p"))
                    .await?
                    .json("page")?;
                let echoed = v["ref"].as_str().unwrap_or_default().to_owned();
                cx.info("page read", &[("ref", &echoed)]);
                Some(echoed)
            } else {
                None
            };
            let currency = match (mode.as_str(), &echoed) {
                ("bad_currency", _) => "XYZ",
                ("echo_currency", Some(e)) => e.as_str(),
                _ => "USD",
            };
            // `float`: 0.1 + 0.2 as f64 gives this; normal amounts beside it.
            let (commission, second) = if mode == "float" {
                ("0.30000000000000004", "0.1")
            } else {
                ("1.50", "0.123456")
            };
            // Three records in these modes, else one (as the errors expect).
            let n = if matches!(mode.as_str(), "good" | "float" | "echo") {
                3
            } else {
                1
            };
            for (id, commission) in [("c1", commission), ("c2", commission), ("c3", second)]
                .into_iter()
                .take(n)
            {
                cx.emit(Record::Conversion(Conversion {
                    source: String::new(),
                    external_id: id.into(),
                    order_id: echoed.clone().filter(|_| id != "c3"),
                    click_id: None,
                    clicked_at: None,
                    partner_id: "p1".into(),
                    partner_name: None,
                    campaign_id: None,
                    event_type: EventType::Sale,
                    occurred_at: cx.now(),
                    sale_amount: Some(Money::new(rust_decimal::Decimal::ONE, currency)),
                    commission: Some(Money::new(commission.parse().unwrap_or_default(), "USD")),
                    status: ConversionStatus::Approved,
                    status_changed_at: None,
                    locked_at: None,
                    coupon: None,
                    utm: Utm::default(),
                }));
            }
            let watermark = match mode.as_str() {
                "future" => cx.now() + chrono::Duration::days(365),
                "early" => cx.now() - chrono::Duration::days(433),
                _ => cx.now(),
            };
            if mode != "no_commit" {
                cx.commit(Checkpoint {
                    stream: "conversions".into(),
                    watermark,
                    state: serde_json::json!({ "next": echoed }),
                    covers: None,
                });
            }
            Ok(())
        }
    }

    /// A conversion of 1.00 USD commission, no sale amount, at the clock.
    fn conversion(cx: &Cx, id: &str, status: ConversionStatus) -> Record {
        Record::Conversion(Conversion {
            source: String::new(),
            external_id: id.into(),
            order_id: None,
            click_id: None,
            clicked_at: None,
            partner_id: "p1".into(),
            partner_name: None,
            campaign_id: None,
            event_type: EventType::Sale,
            occurred_at: cx.now(),
            sale_amount: None,
            commission: Some(Money::new(rust_decimal::Decimal::ONE, "USD")),
            status,
            status_changed_at: None,
            locked_at: None,
            coupon: None,
            utm: Utm::default(),
        })
    }

    /// QA33-C M1: the daemon's driver refused these, `FakeHost` passed
    /// them; both now apply `crate::validate`'s checks, in the same words
    /// (`tests/tests/plugin_host.rs` runs the same faults in the daemon).
    #[test]
    fn a_false_pass_and_output_in_a_check_are_refused_as_by_the_daemon() {
        let out = run("false_pass");
        assert_eq!(
            error(&out),
            "plugin `bad` produced invalid output: stream `conversions`: checkpoint declares a complete pass over \
             account `a1` days 2026-11-01..2026-11-01, but a pass must be of a spend stream, name an account and \
             lie within the session's window (2026-11-01..2026-11-01)"
        );
        assert!(out.committed.is_empty() && out.checkpoints.is_empty());
        assert_eq!(out.uncommitted.len(), 1);
        let check = |mode: &str| {
            FakeHost::handler(|_| Reply::json(200, &serde_json::json!({}))).run::<Bad>(open_check(
                "badnet",
                "https://api.bad.example",
                serde_json::json!({ "mode": mode }),
            ))
        };
        let out = check("check_records");
        assert_eq!(
            error(&out),
            "plugin `bad` produced invalid output: records emitted in a check session"
        );
        assert!(out.committed.is_empty() && out.uncommitted.is_empty());
        let out = check("check_checkpoint");
        assert_eq!(
            error(&out),
            "plugin `bad` produced invalid output: checkpoint in a check session"
        );
        assert!(out.checkpoints.is_empty());
        assert!(check("").result.is_ok(), "{}", error(&check("")));
    }

    /// QA33-C M1 (QA31-C F2 in the daemon): a cursor advancing over empty
    /// pages without end stops after MAX_EMPTY_PAGES of them, retryable,
    /// long before the request budget.
    #[test]
    fn a_cursor_advancing_over_empty_pages_stops_as_in_the_daemon() {
        use crate::validate::MAX_EMPTY_PAGES;
        let out = run("endless");
        let Err(e) = &out.result else {
            panic!("no error");
        };
        assert_eq!(e.kind, crate::protocol::ErrorKind::Upstream);
        assert!(e.retryable);
        assert_eq!(
            e.message,
            format!(
                "plugin `bad` committed {MAX_EMPTY_PAGES} pages in a row that held no records and moved no \
                 watermark (stream `conversions`), and asked for another: the platform says more pages remain \
                 but sends none (a cursor that advances without end?); the pages committed so far are kept"
            )
        );
        // The first page sets the watermark; the next MAX_EMPTY_PAGES move
        // nothing; the one after is not answered.
        let answered = MAX_EMPTY_PAGES as usize + 1;
        assert_eq!(
            (out.requests.len(), out.checkpoints.len()),
            (answered, answered)
        );
    }

    fn run(mode: &str) -> Outcome {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        FakeHost::handler(|_| Reply::json(200, &serde_json::json!({}))).run::<Bad>(open_read(
            "badnet",
            "https://api.bad.example",
            serde_json::json!({ "mode": mode }),
            Window { from: day, to: day },
        ))
    }

    fn error(out: &Outcome) -> String {
        match &out.result {
            Err(e) => e.message.clone(),
            Ok(()) => String::from("no error"),
        }
    }

    #[test]
    fn a_good_page_is_committed_as_emitted() {
        let out = run("good");
        assert!(out.result.is_ok(), "{}", error(&out));
        assert_eq!(out.committed.len(), 3);
        assert_eq!(out.committed[0].source(), "");
        // Two-decimal and micros amounts, short values: no warning.
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn the_fake_host_refuses_what_the_daemon_refuses() {
        let out = run("bad_currency");
        assert!(
            error(&out).contains(
                "stream `conversions`, page 1 of this session, record 1 of 1 (key `c1`): field `sale_amount`: currency `XYZ` is not an ISO-4217 code"
            ),
            "{}",
            error(&out)
        );
        assert!(out.committed.is_empty());
        let out = run("no_commit");
        assert!(
            error(&out).contains("after its last checkpoint"),
            "{}",
            error(&out)
        );
        let out = run("foreign_host");
        assert!(
            error(&out).contains("origin `https://elsewhere.example:443` is not allowed for connector `badnet` (allowed: https://api.bad.example:443)"),
            "{}",
            error(&out)
        );
        assert!(out.requests.len() == 1);
    }

    #[test]
    fn watermarks_in_the_future_or_before_the_window_are_refused_as_by_the_daemon() {
        // QA7 F1/F5: the fake host accepted both.
        let out = run("future");
        assert!(
            error(&out).starts_with("plugin `bad` produced invalid output: stream `conversions`: checkpoint watermark 2027-11-28T12:00:00+00:00 is in the future"),
            "{}",
            error(&out)
        );
        assert!(out.committed.is_empty());
        let out = run("early");
        assert!(
            error(&out).contains("checkpoint watermark 2025-09-21T12:00:00+00:00 is before the session's window 2026-11-01..2026-11-01"),
            "{}",
            error(&out)
        );
    }

    fn exchange(cursor: u32) -> Exchange {
        Exchange {
            method: "GET".into(),
            url: format!("https://api.bad.example/p?cursor={cursor}"),
            request_body: None,
            status: 200,
            headers: BTreeMap::new(),
            body: "{}".into(),
        }
    }

    #[test]
    fn endless_paging_stops_early_with_the_daemons_words() {
        // QA7 F6: a million steps, then only "too many steps".
        let out = run("same_cursor");
        assert_eq!(
            error(&out),
            "plugin `bad` asked for the same request (GET https://api.bad.example/p?cursor=1) again after committing its answer, \
             3 times in a row: a cursor that does not advance? The session stops (the pages committed before are kept); \
             follow the platform's next cursor, and stop when it has none"
        );
        assert_eq!(out.requests.len(), 3);
        assert_eq!(out.checkpoints.len(), 3);
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let out = FakeHost::handler(|_| Reply::json(200, &serde_json::json!({})))
            .with_max_requests(50)
            .run::<Bad>(open_read(
                "badnet",
                "https://api.bad.example",
                serde_json::json!({ "mode": "endless" }),
                Window { from: day, to: day },
            ));
        assert!(
            error(&out).starts_with("plugin `bad` asked for more than 50 requests in one run (`FakeHost::with_max_requests`; the daemon's `max_requests_per_run`): a plugin paging without end?"),
            "{}",
            error(&out)
        );
        assert_eq!(out.requests.len(), 50);
    }

    #[test]
    fn a_replay_leaving_exchanges_unused_fails_unless_allowed() {
        // QA7 F7: a plugin that stopped paging early passed its replay.
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let open = || {
            open_read(
                "badnet",
                "https://api.bad.example",
                serde_json::json!({ "mode": "one_request" }),
                Window { from: day, to: day },
            )
        };
        let cassette = Cassette {
            exchanges: vec![exchange(0), exchange(1), exchange(2)],
        };
        let out = FakeHost::replay(cassette.clone()).run::<Bad>(open());
        assert_eq!(
            error(&out),
            "the session ended with 2 recorded exchange(s) unused, the first GET https://api.bad.example/p?cursor=1: \
             did the plugin stop paging early? (`FakeHost::allow_unused_exchanges()` for a partial replay)"
        );
        assert_eq!(out.unused_exchanges, 2);
        let out = FakeHost::replay(cassette)
            .allow_unused_exchanges()
            .run::<Bad>(open());
        assert!(out.result.is_ok(), "{}", error(&out));
        assert_eq!(out.unused_exchanges, 2);
        let out = FakeHost::replay(Cassette {
            exchanges: vec![exchange(0)],
        })
        .run::<Bad>(open());
        assert!(out.result.is_ok(), "{}", error(&out));
        assert_eq!(out.unused_exchanges, 0);
    }

    /// `Bad` whose `auth` names a setting that is not `x-secret`.
    struct LeakyAuth;
    impl Connector for LeakyAuth {
        fn manifest() -> Manifest {
            Manifest {
                id: "leaky".into(),
                config_schema: serde_json::json!({
                    "type": "object",
                    "properties": { "api_token": { "type": "string" } }
                }),
                auth: Some(crate::protocol::AuthSpec::Bearer {
                    token: "api_token".into(),
                }),
                ..Bad::manifest()
            }
        }
        async fn check(cx: Cx) -> Result<(), PluginError> {
            Bad::check(cx).await
        }
        async fn read(cx: Cx) -> Result<(), PluginError> {
            Bad::read(cx).await
        }
    }

    #[test]
    fn a_manifest_whose_auth_names_a_plain_setting_is_refused_as_by_the_loader() {
        // QA7 F2: the daemon's loader refuses it; so does the fake host.
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let out = FakeHost::handler(|_| Reply::json(200, &serde_json::json!({}))).run::<LeakyAuth>(
            open_read(
                "leakynet",
                "https://api.bad.example",
                serde_json::json!({ "mode": "good" }),
                Window { from: day, to: day },
            ),
        );
        assert!(
            error(&out).starts_with(
                "manifest: `auth` setting `api_token` is not marked \"x-secret\": true"
            ),
            "{}",
            error(&out)
        );
        assert!(out.requests.is_empty() && out.committed.is_empty());
    }

    /// `Bad` declaring its stream of another record type than its kind's.
    struct OrdersOfAnAffiliate;
    impl Connector for OrdersOfAnAffiliate {
        fn manifest() -> Manifest {
            let mut m = Bad::manifest();
            m.streams[0].record = RecordKind::Order;
            m
        }
        async fn check(cx: Cx) -> Result<(), PluginError> {
            Bad::check(cx).await
        }
        async fn read(cx: Cx) -> Result<(), PluginError> {
            Bad::read(cx).await
        }
    }

    /// QA42a A-M1: the loader refuses a manifest whose stream is not of its
    /// kind's record type (and a malformed `config_schema`, an
    /// `allowed_hosts` entry that is not a host name); so does the fake
    /// host, so a plugin's own tests meet it before `plugins check` does.
    #[test]
    fn a_manifest_the_loader_refuses_is_refused_by_the_fake_host_too() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let out = FakeHost::handler(|_| Reply::json(200, &serde_json::json!({})))
            .run::<OrdersOfAnAffiliate>(open_read(
            "acmeaff",
            "https://api.bad.example",
            serde_json::json!({ "mode": "good" }),
            Window { from: day, to: day },
        ));
        assert!(
            error(&out).starts_with(
                "manifest: plugin `bad` is of kind `affiliate`, whose streams hold conversions records, but its stream `conversions` declares orders records"
            ),
            "{}",
            error(&out)
        );
        assert!(out.requests.is_empty() && out.committed.is_empty());
    }

    /// `Bad` with a secret API token, sent as a bearer token.
    struct Echo;
    impl Connector for Echo {
        fn manifest() -> Manifest {
            Manifest {
                id: "echo".into(),
                config_schema: serde_json::json!({
                    "type": "object",
                    "properties": {
                        "mode": { "type": "string" },
                        "api_token": { "type": "string", "x-secret": true }
                    }
                }),
                auth: Some(crate::protocol::AuthSpec::Bearer {
                    token: "api_token".into(),
                }),
                ..Bad::manifest()
            }
        }
        async fn check(cx: Cx) -> Result<(), PluginError> {
            Bad::check(cx).await
        }
        async fn read(cx: Cx) -> Result<(), PluginError> {
            Bad::read(cx).await
        }
    }

    const TOKEN: &str = "s3cr3t-acme-token-123";

    fn run_echo(host: FakeHost, mode: &str) -> Outcome {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        host.run::<Echo>(open_read(
            "acme",
            "https://api.bad.example",
            serde_json::json!({ "mode": mode }),
            Window { from: day, to: day },
        ))
    }

    fn echo_api() -> FakeHost {
        FakeHost::handler(|_| {
            Reply::json(
                200,
                &serde_json::json!({ "ref": format!("Bearer {TOKEN}") }),
            )
        })
    }

    #[test]
    fn a_secret_the_platform_echoes_is_masked_as_the_daemon_stores_it() {
        // QA7 F14: the daemon stored `"order_id":"Bearer <token>"` while the
        // cassette said `"Bearer ***"`; now both mask it, and say so once.
        let out = run_echo(echo_api().with_secret("api_token", TOKEN), "echo");
        assert!(out.result.is_ok(), "{}", error(&out));
        let order_ids: Vec<Option<String>> = out
            .committed
            .iter()
            .map(|r| match r {
                Record::Conversion(c) => c.order_id.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(
            order_ids,
            [
                Some("Bearer ***".to_owned()),
                Some("Bearer ***".to_owned()),
                None
            ]
        );
        assert_eq!(
            out.checkpoints[0].state,
            serde_json::json!({ "next": "Bearer ***" })
        );
        assert_eq!(out.logs[0].fields["ref"], "Bearer ***");
        let warnings: Vec<String> = out.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "stream `conversions`, record `c1`, field `order_id`: the platform echoed a credential; it was masked",
                "stream `conversions`, checkpoint, field `state.next`: the plugin's checkpoint held a credential \
                 (a next-page URL echoing the key?); it was masked: keep only the platform's cursor in the state",
            ]
        );
        // A cassette recorded by the daemon holds `Bearer ***` already:
        // the replay gives the same records, with nothing to warn about.
        let cassette = Cassette {
            exchanges: vec![Exchange {
                body: serde_json::json!({ "ref": "Bearer ***" }).to_string(),
                url: "https://api.bad.example/p".into(),
                ..exchange(0)
            }],
        };
        let replayed = run_echo(
            FakeHost::replay(cassette).with_secret("api_token", TOKEN),
            "echo",
        );
        assert!(replayed.result.is_ok(), "{}", error(&replayed));
        assert_eq!(replayed.committed, out.committed);
        assert!(replayed.warnings.is_empty());
    }

    #[test]
    fn a_secret_in_an_error_is_masked_and_a_secret_must_be_declared() {
        // The echoed value as a currency is refused: the error shows it
        // masked, as the daemon's does.
        let out = run_echo(echo_api().with_secret("api_token", TOKEN), "echo_currency");
        assert!(
            error(&out).ends_with("field `sale_amount`: currency `Bearer ***` is not an ISO-4217 code; the page is not stored"),
            "{}",
            error(&out)
        );
        let out = run_echo(echo_api().with_secret("mode", TOKEN), "echo");
        assert!(
            error(&out).starts_with("`FakeHost::with_secret(\"mode\", ..)`: plugin `echo` declares no setting `mode` marked \"x-secret\": true"),
            "{}",
            error(&out)
        );
        assert!(out.requests.is_empty());
    }

    #[test]
    fn a_short_secret_is_not_looked_for() {
        let out = run_echo(
            FakeHost::handler(|_| Reply::json(200, &serde_json::json!({ "ref": "ORD-1234" })))
                .with_secret("api_token", "1234"),
            "echo",
        );
        assert!(out.result.is_ok(), "{}", error(&out));
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert_eq!(out.logs[0].fields["ref"], "ORD-1234");
    }

    #[test]
    fn a_float_noise_amount_is_kept_and_warned_once() {
        // QA7 F9: `0.30000000000000004` USD was stored without a word.
        let out = run("float");
        assert!(out.result.is_ok(), "{}", error(&out));
        let commissions: Vec<String> = out
            .committed
            .iter()
            .filter_map(|r| match r {
                Record::Conversion(c) => c.commission.as_ref().map(|m| m.amount.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            commissions,
            ["0.30000000000000004", "0.30000000000000004", "0.1"]
        );
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        let w = &out.warnings[0];
        assert_eq!(w.kind, crate::review::WarningKind::FloatAmount);
        assert_eq!((w.key.as_str(), w.field.as_str()), ("c1", "commission"));
        assert_eq!(w.value.as_deref(), Some("0.30000000000000004 USD"));
        assert!(w.message.contains(crate::review::FLOAT_ADVICE), "{w}");
    }

    /// QA13 F3: the daemon warns about a key given twice in one page with
    /// different values and stores the later record; `FakeHost` kept both
    /// records and said nothing.
    #[test]
    fn a_key_twice_in_one_page_is_stored_once_and_warned_about_as_by_the_daemon() {
        let out = run("duplicate");
        assert!(out.result.is_ok(), "{}", error(&out));
        let committed: Vec<(String, ConversionStatus)> = out
            .committed
            .iter()
            .filter_map(|r| match r {
                Record::Conversion(c) => Some((c.external_id.clone(), c.status)),
                _ => None,
            })
            .collect();
        assert_eq!(
            committed,
            [
                ("c1".to_owned(), ConversionStatus::Approved),
                ("c2".to_owned(), ConversionStatus::Pending)
            ]
        );
        let warnings: Vec<String> = out.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            ["stream `conversions`, record `c1`: the page holds this key twice with different values; the later one is stored"]
        );
        assert_eq!(
            out.warnings[0].kind,
            crate::review::WarningKind::ConflictingDuplicate
        );
    }

    #[test]
    fn origins_are_read_from_urls() {
        assert_eq!(
            origin_of("https://API.x.example/p?q=1").as_deref(),
            Some("https://api.x.example:443")
        );
        assert_eq!(
            origin_of("http://h.example:8080/").as_deref(),
            Some("http://h.example:8080")
        );
        assert_eq!(origin_of("http://u:p@h.example/"), None);
        assert_eq!(
            origin_of("http://[::1]:8080/").as_deref(),
            Some("http://[::1]:8080")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}
