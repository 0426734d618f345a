//! The safe way to write a plugin: implement [`Connector`] with straight-line
//! `async fn`s and call [`crate::export_plugin!`].
//!
//! There is no async runtime in a plugin. A session's future is polled once per
//! host event: when it awaits [`Cx::http`] (or a sleep, or a file), the request
//! becomes an [`Action`] for the host, the poll returns `Pending`, and the
//! future resumes when the host feeds the matching event. Authors never see
//! events or actions, and never write `unsafe`.
//!
//! ```text
//! impl Connector for MyPlatform {
//!     fn manifest() -> Manifest { /* ... */ }
//!     async fn check(cx: Cx) -> Result<(), PluginError> {
//!         cx.http(Request::get(format!("{}/me", cx.base_url()))).await?.ok()?;
//!         Ok(())
//!     }
//!     async fn read(cx: Cx) -> Result<(), PluginError> {
//!         let page: Page = cx.http(Request::get(url)).await?.ok()?.json("orders page 1")?;
//!         for row in page.rows { cx.emit(Record::Order(row.into_order()?)); }
//!         cx.commit(checkpoint);
//!         Ok(())
//!     }
//! }
//! plugin_api::export_plugin!(id = "my_platform", connector = MyPlatform);
//! ```

use crate::protocol::{
    Action, Checkpoint, ErrorKind, Event, HttpFailureKind, HttpRequest, LogLevel, LogRecord,
    Manifest, PluginError, Record, SessionOpen, Window,
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// A connector: pure logic over the session context.
pub trait Connector: 'static {
    /// Describes the plugin: id, kind, config schema, streams, hosts, auth.
    fn manifest() -> Manifest;
    /// Verifies settings and credentials, usually with one cheap request.
    fn check(cx: Cx) -> impl Future<Output = Result<(), PluginError>> + 'static;
    /// Pulls the session's window, emitting records and checkpoints.
    fn read(cx: Cx) -> impl Future<Output = Result<(), PluginError>> + 'static;
}

/// What the plugin can do during a session. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cx {
    open: Rc<SessionOpen>,
    state: Rc<RefCell<State>>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    outbox: Vec<Action>,
    inbox: HashMap<u64, Delivery>,
    awaiting: usize,
    now: Option<DateTime<Utc>>,
}

#[derive(Debug)]
enum Delivery {
    Http(Response),
    Failure(HttpFailureKind, String),
    Timer,
    File(Vec<u8>),
}

impl Cx {
    fn new(open: SessionOpen) -> Self {
        Cx {
            open: Rc::new(open),
            state: Rc::new(RefCell::new(State {
                next_id: 1,
                ..State::default()
            })),
        }
    }

    /// The session as the host opened it.
    pub fn session(&self) -> &SessionOpen {
        &self.open
    }
    /// The connector id from config (use it in messages).
    pub fn connector_id(&self) -> &str {
        &self.open.connector_id
    }
    /// The base URL (configured `settings.base_url` or the platform's).
    pub fn base_url(&self) -> &str {
        self.open.base_url.trim_end_matches('/')
    }
    /// The days to pull. Read sessions always have one.
    pub fn window(&self) -> Result<Window, PluginError> {
        self.open.window.ok_or_else(|| {
            PluginError::new(ErrorKind::Protocol, "read session opened without a window")
        })
    }
    /// The connector's timezone, in which the window's days begin and end
    /// ([`SessionOpen::timezone`]); UTC when the host did not say (a host or
    /// a recording from before the field). Turn a day into the instant it
    /// begins with [`day_start`]. An unknown name (the daemon checks it in
    /// config first) is an error naming it, never taken as UTC.
    pub fn timezone(&self) -> Result<chrono_tz::Tz, PluginError> {
        match self.open.timezone.as_deref() {
            None => Ok(chrono_tz::UTC),
            Some(name) => name.trim().parse().map_err(|_| {
                PluginError::config(format!(
                    "connector `{}`: timezone {name:?} is not an IANA time zone name",
                    self.open.connector_id
                ))
            }),
        }
    }
    /// The host's clock: session start, advanced by timers only (not by
    /// HTTP answers); see [`Cx::sleep_for`] for relative waits.
    pub fn now(&self) -> DateTime<Utc> {
        self.state.borrow().now.unwrap_or(self.open.now)
    }
    /// The last committed checkpoint of a stream: at the session start the
    /// stored one, whose `state` may belong to another window than this
    /// session's ([`Cx::window`]); check before resuming a cursor from it.
    pub fn checkpoint(&self, stream: &str) -> Option<&Checkpoint> {
        self.open.checkpoints.get(stream)
    }
    /// True if the session should read this stream.
    pub fn wants(&self, stream: &str) -> bool {
        self.open.streams.is_empty() || self.open.streams.iter().any(|s| s == stream)
    }
    /// Deserialises the settings into the plugin's config struct; a
    /// [`crate::protocol::ErrorKind::Config`] error names the connector and
    /// the setting's path before serde's reason (``connector `acme`: setting
    /// `limit`: invalid type: string "2", expected u32``; at the top level
    /// ``connector `acme`: settings: missing field `api_key` ``), so a plugin
    /// need not name the field itself.
    /// The daemon has checked the settings against the manifest's
    /// `config_schema` before (`config check`); [`crate::testing::FakeHost`]
    /// does not, so a test's settings should be ones that schema accepts.
    pub fn settings<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        // The setting's name in the error: serde alone says only "expected
        // u32" (QA13 F5).
        serde_path_to_error::deserialize(self.open.settings.clone()).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                "settings".to_owned()
            } else {
                format!("setting `{path}`")
            };
            PluginError::config(format!(
                "connector `{}`: {at}: {}",
                self.open.connector_id,
                e.inner()
            ))
        })
    }

    /// Sends a request through the host and waits for its response.
    pub fn http(&self, req: Request) -> HttpFuture {
        let id = self.alloc_id();
        HttpFuture {
            cx: self.clone(),
            id,
            pending: Some(req.into_action(id)),
        }
    }

    /// Sleeps `wait` from the host's time now. [`Cx::now`] moves only with
    /// timers (HTTP answers carry no time), so this first asks the host's
    /// time with a timer already due, then sleeps until that time + `wait`.
    /// Use it for every relative wait (Retry-After, a poll interval);
    /// `sleep_until(cx.now() + wait)` after an HTTP request may wait too
    /// little, or not at all.
    /// The host caps one timer (15 minutes in the daemon); a longer wait is
    /// slept in turns until the host's clock reaches it. A wait reaching
    /// past the latest time the clock holds (about 262,000 years) is an
    /// [`ErrorKind::Internal`] error, not a panic: a plugin bounds the waits
    /// it reads from a response (QA24 F4).
    pub async fn sleep_for(&self, wait: chrono::Duration) -> Result<(), PluginError> {
        self.sleep_until(self.now()).await?;
        let now = self.now();
        let until = now.checked_add_signed(wait).ok_or_else(|| {
            PluginError::new(
                ErrorKind::Internal,
                format!(
                    "a wait of {} s from {now} reaches past the latest time the clock holds",
                    wait.num_seconds()
                ),
            )
        })?;
        while self.now() < until {
            self.sleep_until(until).await?;
        }
        Ok(())
    }

    /// Waits until the given time (an instant from a response, or a
    /// deadline); for a wait relative to now use [`Cx::sleep_for`].
    pub fn sleep_until(&self, until: DateTime<Utc>) -> WaitFuture {
        let id = self.alloc_id();
        WaitFuture {
            cx: self.clone(),
            id,
            pending: Some(Action::SleepUntil { id, until }),
        }
    }

    /// Reads a file through the host's file capability.
    pub fn read_file(&self, name: &str) -> WaitFuture {
        let id = self.alloc_id();
        WaitFuture {
            cx: self.clone(),
            id,
            pending: Some(Action::ReadFile {
                id,
                name: name.to_owned(),
            }),
        }
    }

    /// Lists files the capability allows; resolves to their names as UTF-8
    /// bytes, sorted, one per line (`String::from_utf8_lossy(&b).lines()`;
    /// none: empty). Names that are not UTF-8 are left out.
    pub fn list_files(&self) -> WaitFuture {
        let id = self.alloc_id();
        WaitFuture {
            cx: self.clone(),
            id,
            pending: Some(Action::ListFiles { id }),
        }
    }

    /// Emits a record. It is stored when the next checkpoint commits.
    pub fn emit(&self, record: Record) {
        let mut st = self.state.borrow_mut();
        if let Some(Action::Records { records }) = st.outbox.last_mut() {
            records.push(record);
        } else {
            st.outbox.push(Action::Records {
                records: vec![record],
            });
        }
    }

    /// Commits all records emitted so far together with this checkpoint.
    pub fn commit(&self, checkpoint: Checkpoint) {
        self.state
            .borrow_mut()
            .outbox
            .push(Action::Checkpoint(checkpoint));
    }

    /// Logs a line through the host's `tracing`.
    pub fn log(
        &self,
        level: LogLevel,
        message: impl Into<String>,
        fields: &[(&str, &dyn std::fmt::Display)],
    ) {
        let fields = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_string()))
            .collect();
        self.state.borrow_mut().outbox.push(Action::Log(LogRecord {
            level,
            message: message.into(),
            fields,
        }));
    }
    /// Logs at debug level: per-page or per-stream detail (the daemon's
    /// default `RUST_LOG=info` leaves it out).
    pub fn debug(&self, message: impl Into<String>, fields: &[(&str, &dyn std::fmt::Display)]) {
        self.log(LogLevel::Debug, message, fields)
    }
    /// Logs at info level.
    pub fn info(&self, message: impl Into<String>, fields: &[(&str, &dyn std::fmt::Display)]) {
        self.log(LogLevel::Info, message, fields)
    }
    /// Logs at warn level.
    pub fn warn(&self, message: impl Into<String>, fields: &[(&str, &dyn std::fmt::Display)]) {
        self.log(LogLevel::Warn, message, fields)
    }

    fn alloc_id(&self) -> u64 {
        let mut st = self.state.borrow_mut();
        let id = st.next_id;
        st.next_id += 1;
        id
    }
}

/// A request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    query: Vec<(String, String)>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
    idempotent: bool,
    label: String,
}

impl Request {
    /// A GET (idempotent: the host retries it on 5xx and timeouts).
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url, true)
    }
    /// A POST (not retried unless marked [`Request::idempotent`]).
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url, false)
    }
    fn new(method: &str, url: impl Into<String>, idempotent: bool) -> Self {
        Request {
            method: method.to_owned(),
            url: url.into(),
            query: Vec::new(),
            headers: BTreeMap::new(),
            body: None,
            idempotent,
            label: String::new(),
        }
    }
    /// Appends a query parameter (percent-encoded by the SDK).
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }
    /// Adds a header. Never put a secret here: the host injects auth.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }
    /// A JSON body (sets `content-type`).
    pub fn json_body(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string());
        self.headers
            .insert("content-type".to_owned(), "application/json".to_owned());
        self
    }
    /// A form body (sets `content-type`).
    pub fn form_body(mut self, pairs: &[(&str, &str)]) -> Self {
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
            .collect();
        self.body = Some(encoded.join("&"));
        self.headers.insert(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        );
        self
    }
    /// Marks the request safe to retry (e.g. a read-only POST query).
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
    /// A short label for logs and metrics, e.g. `actions page 2`.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    fn into_action(self, id: u64) -> Action {
        let mut url = self.url;
        if !self.query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
                .collect();
            url.push_str(&q.join("&"));
        }
        Action::Http(HttpRequest {
            id,
            method: self.method,
            url,
            headers: self.headers,
            body: self.body,
            idempotent: self.idempotent,
            label: self.label,
        })
    }
}

/// The first instant of `day` in `tz` (UTC): its local midnight, the
/// earlier one when midnight occurs twice (clocks set back at midnight), and
/// the moment clocks jump when midnight is skipped (a DST change at
/// midnight, as in America/Santiago or Asia/Beirut: the day begins at
/// 01:00). `day_start(to + 1 day)` is the end, exclusive, of the days
/// `from..=to`; for a day that does not exist at all (Pacific/Apia skipped
/// 2011-12-30) it equals the next day's start, so the day is empty.
pub fn day_start(day: chrono::NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::{Offset, TimeZone};
    let local = day.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // In a gap: the offset in force a day before (before the jump)
            // puts local midnight at the instant of the jump.
            let before = tz
                .offset_from_utc_datetime(&(local - chrono::Duration::days(1)))
                .fix();
            (local - chrono::Duration::seconds(i64::from(before.local_minus_utc()))).and_utc()
        }
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved set kept).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The message for a body serde could not read as JSON: `malformed JSON:
/// <error>` when it looks like JSON, else what it is (an HTML login or
/// maintenance page answered with 200), with its first characters.
pub fn malformed_json(body: &[u8], e: &serde_json::Error) -> String {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) {
        return format!("malformed JSON: {e}{}", near(body, e));
    }
    let text: String = String::from_utf8_lossy(body).chars().take(120).collect();
    format!("the answer is not JSON: {:?}", text.trim())
}

/// For a syntax error (not a missing or mistyped field, whose message
/// names the field): ` near `…`` with the body's text around the error's
/// line and column, so a bad value (a bare `NaN`, a byte that is not
/// UTF-8) can be found in the answer (QA20 R20-6: only a column was given).
fn near(body: &[u8], e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    if !matches!(e.classify(), Category::Syntax | Category::Eof) || e.line() == 0 {
        return String::new();
    }
    let line_start = if e.line() == 1 {
        0
    } else {
        let mut newlines = body
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1);
        match newlines.nth(e.line() - 2) {
            Some(i) => i,
            None => return String::new(),
        }
    };
    let at = (line_start + e.column().saturating_sub(1)).min(body.len());
    let from = at.saturating_sub(40);
    let to = (at + 20).min(body.len());
    let text = String::from_utf8_lossy(&body[from..to]);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(" near `{}`", crate::validate::escape_controls(&text))
}

/// An upstream body for error text: `": "` and its first `max_chars`
/// characters on one line (line breaks and runs of spaces become one
/// space, no leading or trailing blank), or nothing for an empty body, so
/// an error never ends in a dangling `": "` nor carries a newline into a log
/// line.
pub fn body_suffix(body: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= max_chars {
            break;
        }
    }
    let snippet: String = out.chars().take(max_chars).collect();
    if snippet.is_empty() {
        snippet
    } else {
        format!(": {snippet}")
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: BTreeMap<String, String>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, PluginError> {
        std::str::from_utf8(&self.body)
            .map_err(|e| PluginError::bad_response(format!("response body is not UTF-8: {e}")))
    }
    /// Parses the JSON body of a 2xx answer; `what` names the stream and
    /// page in the error. Any other status is refused first, with the error
    /// [`Response::ok`] gives (the status in the message, 401/403 as
    /// [`ErrorKind::Auth`], 429 and 5xx retryable), prefixed with `what`:
    /// an error answer's body is not the data (QA13 F1: a 401 read as
    /// "malformed JSON: missing field `items`", not retried, no status).
    /// A 2xx body that is not JSON at all (an HTML login or maintenance
    /// page sent with 200) is named with its content type and first
    /// characters, and is retryable: such pages are usually passing.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, PluginError> {
        if let Some(e) = self.status_error() {
            return Err(PluginError {
                message: format!("{what}: {}", e.message),
                ..e
            });
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            let first = self.body.iter().find(|b| !b.is_ascii_whitespace());
            if matches!(first, Some(b'{' | b'[')) {
                return PluginError::bad_response(format!(
                    "{what}: {}",
                    malformed_json(&self.body, &e)
                ));
            }
            PluginError::retryable(
                ErrorKind::BadResponse,
                format!(
                    "{what}: HTTP {}, content-type `{}`: {}",
                    self.status,
                    self.header("content-type").unwrap_or("none"),
                    malformed_json(&self.body, &e)
                ),
            )
        })
    }
    /// Errors on common non-success statuses: 401/403 as auth, 429 as
    /// retryable rate limiting, 5xx as retryable upstream, other 4xx as upstream.
    pub fn ok(self) -> Result<Self, PluginError> {
        match self.status_error() {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }
    /// The error [`Response::ok`] gives for this status; `None` for a 2xx.
    fn status_error(&self) -> Option<PluginError> {
        let snippet = || body_suffix(&self.body, 300);
        Some(match self.status {
            200..=299 => return None,
            401 | 403 => PluginError::new(
                ErrorKind::Auth,
                format!("credentials refused (HTTP {}){}", self.status, snippet()),
            ),
            429 => PluginError::retryable(
                ErrorKind::RateLimited,
                format!("rate limited (HTTP 429){}", snippet()),
            ),
            500..=599 => PluginError::retryable(
                ErrorKind::Upstream,
                format!("server error (HTTP {}){}", self.status, snippet()),
            ),
            300..=399 => PluginError::new(
                ErrorKind::Upstream,
                format!(
                    "redirected (HTTP {}) to {}; redirects are not followed: set the connector's base_url to where the API answers",
                    self.status,
                    self.header("location").unwrap_or("no location")
                ),
            ),
            s => PluginError::new(
                ErrorKind::Upstream,
                format!("request failed (HTTP {s}){}", snippet()),
            ),
        })
    }
}

/// Resolves to a [`Response`], or a transport error from the host.
#[derive(Debug)]
pub struct HttpFuture {
    cx: Cx,
    id: u64,
    pending: Option<Action>,
}

impl Future for HttpFuture {
    type Output = Result<Response, PluginError>;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        let this = &mut *self;
        poll_delivery(&this.cx, id, &mut this.pending).map(|d| match d {
            Delivery::Http(r) => Ok(r),
            Delivery::Failure(kind, msg) => Err(failure_error(kind, msg)),
            Delivery::Timer | Delivery::File(_) => Err(PluginError::new(
                ErrorKind::Protocol,
                format!("host answered request {id} with the wrong event"),
            )),
        })
    }
}

/// One poll of a host request `id`: the first sends its `pending` action
/// (and counts it as awaited); later ones take the host's delivery for
/// `id` once it has come.
fn poll_delivery(cx: &Cx, id: u64, pending: &mut Option<Action>) -> Poll<Delivery> {
    let mut st = cx.state.borrow_mut();
    if let Some(action) = pending.take() {
        st.outbox.push(action);
        st.awaiting += 1;
        return Poll::Pending;
    }
    match st.inbox.remove(&id) {
        None => Poll::Pending,
        Some(d) => {
            st.awaiting -= 1;
            Poll::Ready(d)
        }
    }
}

fn failure_error(kind: HttpFailureKind, msg: String) -> PluginError {
    match kind {
        HttpFailureKind::RateLimited => PluginError::retryable(ErrorKind::RateLimited, msg),
        HttpFailureKind::NotAllowed => PluginError::new(ErrorKind::Config, msg),
        HttpFailureKind::TooLarge => PluginError::new(ErrorKind::BadResponse, msg),
        _ => PluginError::retryable(ErrorKind::Transport, msg),
    }
}

/// Resolves when a timer fires (to `()` bytes) or a file arrives (its bytes).
#[derive(Debug)]
pub struct WaitFuture {
    cx: Cx,
    id: u64,
    pending: Option<Action>,
}

impl Future for WaitFuture {
    type Output = Result<Vec<u8>, PluginError>;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        let this = &mut *self;
        poll_delivery(&this.cx, id, &mut this.pending).map(|d| match d {
            Delivery::Timer => Ok(Vec::new()),
            Delivery::File(bytes) => Ok(bytes),
            Delivery::Failure(kind, msg) => Err(failure_error(kind, msg)),
            Delivery::Http(_) => Err(PluginError::new(
                ErrorKind::Protocol,
                format!("host answered wait {id} with an HTTP response"),
            )),
        })
    }
}

/// Appends to an auth error's message the settings that hold the
/// credentials (`; check settings `account_sid` and `auth_token``), from the
/// manifest's auth scheme, unless the message already names one (`check
/// setting ...`): a refused credential always says what to check (QA:
/// Impact's `credentials refused (HTTP 401)` named nothing).
pub fn name_credential_settings(message: &mut String, auth: Option<&crate::protocol::AuthSpec>) {
    let names = auth.map(|a| a.setting_names()).unwrap_or_default();
    if names.is_empty() || message.contains("check setting") {
        return;
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let list = match quoted.as_slice() {
        [one] => format!("setting {one}"),
        [init @ .., last] => format!("settings {} and {last}", init.join(", ")),
        [] => return,
    };
    message.push_str(&format!("; check {list}"));
}

/// The author's `check` or `read` future, boxed.
type SessionFuture = Pin<Box<dyn Future<Output = Result<(), PluginError>>>>;

/// One running session: the author's future plus its context. Used by the
/// export shims and by [`crate::testing`].
pub struct Session {
    cx: Cx,
    future: Option<SessionFuture>,
    /// The connector's manifest, called only to name its credential
    /// settings in an auth error (see [`name_credential_settings`]).
    manifest: fn() -> crate::protocol::Manifest,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connector", &self.cx.open.connector_id)
            .field("finished", &self.future.is_none())
            .finish()
    }
}

impl Session {
    /// Opens a check or read session of connector `C`.
    pub fn open<C: Connector>(open: SessionOpen) -> Self {
        let mode = open.mode;
        let cx = Cx::new(open);
        let future: SessionFuture = match mode {
            crate::protocol::SessionMode::Check => Box::pin(C::check(cx.clone())),
            crate::protocol::SessionMode::Read => Box::pin(C::read(cx.clone())),
        };
        Session {
            cx,
            future: Some(future),
            manifest: C::manifest,
        }
    }

    /// Feeds one event and returns the actions it produced. After `Done` or
    /// `Error` the session is finished and further events are protocol errors.
    pub fn step(&mut self, event: Event, bytes: &[u8]) -> Vec<Action> {
        let Some(future) = self.future.as_mut() else {
            return vec![Action::Error(PluginError::new(
                ErrorKind::Protocol,
                "event sent to a finished session",
            ))];
        };
        {
            let mut st = self.cx.state.borrow_mut();
            let delivered = match event {
                Event::Start => None,
                Event::HttpResponse(head) => Some((
                    head.id,
                    Delivery::Http(Response {
                        status: head.status,
                        headers: head.headers,
                        body: bytes.to_vec(),
                    }),
                )),
                Event::HttpFailure { id, kind, message } => {
                    Some((id, Delivery::Failure(kind, message)))
                }
                Event::Timer { id, now } => {
                    st.now = Some(now);
                    Some((id, Delivery::Timer))
                }
                Event::File { id, .. } => Some((id, Delivery::File(bytes.to_vec()))),
            };
            if let Some((id, d)) = delivered {
                if id == 0 || id >= st.next_id {
                    return vec![Action::Error(PluginError::new(
                        ErrorKind::Protocol,
                        format!("host answered id {id}, which the plugin never asked for"),
                    ))];
                }
                st.inbox.insert(id, d);
            }
        }
        let waker = std::task::Waker::noop();
        let mut task_cx = Context::from_waker(waker);
        let polled = future.as_mut().poll(&mut task_cx);
        let mut st = self.cx.state.borrow_mut();
        let mut actions = std::mem::take(&mut st.outbox);
        match polled {
            Poll::Ready(Ok(())) => {
                self.future = None;
                actions.push(Action::Done);
            }
            Poll::Ready(Err(mut e)) => {
                self.future = None;
                if e.kind == ErrorKind::Auth {
                    name_credential_settings(&mut e.message, (self.manifest)().auth.as_ref());
                }
                actions.push(Action::Error(e));
            }
            Poll::Pending if st.awaiting == 0 => {
                self.future = None;
                actions.push(Action::Error(PluginError::new(
                    ErrorKind::Protocol,
                    "plugin awaited something the host does not drive (only Cx futures may be awaited)",
                )));
            }
            Poll::Pending => {}
        }
        actions
    }
}

/// Internals of [`crate::export_plugin!`]; not part of the public API.
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod __private {
    use super::*;
    use crate::abi::{WriteFn, STATUS_ERROR, STATUS_OK, STATUS_PANIC};
    use std::ffi::c_void;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn write(write: WriteFn, ctx: *mut c_void, bytes: &[u8]) {
        // SAFETY: `write` and `ctx` come from the host for this call; the
        // slice is valid for the duration of the call.
        unsafe { write(ctx, bytes.as_ptr(), bytes.len()) }
    }

    fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
        if let Some(s) = p.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = p.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_owned()
        }
    }

    thread_local! {
        /// True while this thread runs a shim body.
        static IN_SHIM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        /// Where the last panic inside a shim happened.
        static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Marks a shim body running on this thread. The first one installs a
    /// panic hook that, for panics inside a shim, only records the location
    /// (the shim reports the panic as an error, through the host's logs);
    /// other panics go to the hook that was there before. Without it the
    /// plugin's copy of std printed the panic (and a backtrace) straight to
    /// stderr, around the host's JSON logs.
    struct Shim;

    impl Shim {
        fn enter() -> Shim {
            static HOOK: std::sync::Once = std::sync::Once::new();
            HOOK.call_once(|| {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    // Built with panic = "abort", the process ends right
                    // after this hook and the shim never reports the panic:
                    // print it (Rust's own hook), so the host finds the
                    // message and place in the child's stderr.
                    if IN_SHIM.with(std::cell::Cell::get) && !cfg!(panic = "abort") {
                        let at = info
                            .location()
                            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                        PANIC_AT.with(|p| *p.borrow_mut() = at);
                    } else {
                        previous(info);
                    }
                }));
            });
            IN_SHIM.with(|f| f.set(true));
            Shim
        }
    }

    impl Drop for Shim {
        fn drop(&mut self) {
            IN_SHIM.with(|f| f.set(false));
        }
    }

    fn write_panic(w: WriteFn, ctx: *mut c_void, p: &(dyn std::any::Any + Send)) -> i32 {
        let at = PANIC_AT
            .with(|a| a.borrow_mut().take())
            .map(|a| format!(" (at {a})"))
            .unwrap_or_default();
        let err = PluginError::new(
            ErrorKind::Internal,
            format!("plugin panicked: {}{at}", panic_message(p)),
        );
        write(w, ctx, &serde_json::to_vec(&err).unwrap_or_default());
        STATUS_PANIC
    }

    /// Shim body of `describe`.
    pub fn describe<C: Connector>(w: WriteFn, ctx: *mut c_void) -> i32 {
        let _shim = Shim::enter();
        match catch_unwind(|| serde_json::to_vec(&C::manifest())) {
            Ok(Ok(bytes)) => {
                write(w, ctx, &bytes);
                STATUS_OK
            }
            Ok(Err(e)) => {
                let err = PluginError::new(
                    ErrorKind::Internal,
                    format!("manifest does not serialise: {e}"),
                );
                write(w, ctx, &serde_json::to_vec(&err).unwrap_or_default());
                STATUS_ERROR
            }
            Err(p) => write_panic(w, ctx, &*p),
        }
    }

    /// Shim body of `session_open`.
    ///
    /// # Safety
    /// `input..input+len` must be readable and `out` writable.
    pub unsafe fn session_open<C: Connector>(
        input: *const u8,
        len: usize,
        out: *mut *mut c_void,
        w: WriteFn,
        ctx: *mut c_void,
    ) -> i32 {
        let _shim = Shim::enter();
        // SAFETY: the host guarantees the input slice is valid for this call.
        let input = unsafe { std::slice::from_raw_parts(input, len) };
        let result = catch_unwind(|| {
            let open: SessionOpen = serde_json::from_slice(input).map_err(|e| {
                PluginError::new(ErrorKind::Protocol, format!("malformed session open: {e}"))
            })?;
            Ok::<_, PluginError>(Box::new(Session::open::<C>(open)))
        });
        match result {
            Ok(Ok(session)) => {
                // SAFETY: the host passes a valid out-pointer.
                unsafe { *out = Box::into_raw(session) as *mut c_void };
                STATUS_OK
            }
            Ok(Err(e)) => {
                write(w, ctx, &serde_json::to_vec(&e).unwrap_or_default());
                STATUS_ERROR
            }
            Err(p) => write_panic(w, ctx, &*p),
        }
    }

    /// Shim body of `session_step`.
    ///
    /// # Safety
    /// `handle` must come from `session_open` and not be closed; the input
    /// slice must be readable.
    pub unsafe fn session_step(
        handle: *mut c_void,
        input: *const u8,
        len: usize,
        w: WriteFn,
        ctx: *mut c_void,
    ) -> i32 {
        let _shim = Shim::enter();
        // SAFETY: the host guarantees the input slice is valid for this call.
        let input = unsafe { std::slice::from_raw_parts(input, len) };
        // SAFETY: handle was produced by Box::into_raw in session_open and is
        // used by one thread at a time.
        let session = unsafe { &mut *(handle as *mut Session) };
        let result = catch_unwind(AssertUnwindSafe(|| {
            let actions = match crate::protocol::decode_frame::<Event>(input) {
                Ok((event, bytes)) => session.step(event, bytes),
                Err(e) => vec![Action::Error(PluginError::new(
                    ErrorKind::Protocol,
                    format!("malformed event frame: {e}"),
                ))],
            };
            serde_json::to_vec(&actions)
        }));
        match result {
            Ok(Ok(bytes)) => {
                write(w, ctx, &bytes);
                STATUS_OK
            }
            Ok(Err(e)) => {
                let err = PluginError::new(
                    ErrorKind::Internal,
                    format!("actions do not serialise: {e}"),
                );
                write(w, ctx, &serde_json::to_vec(&err).unwrap_or_default());
                STATUS_ERROR
            }
            Err(p) => write_panic(w, ctx, &*p),
        }
    }

    /// Shim body of `session_close`.
    ///
    /// # Safety
    /// `handle` must come from `session_open` and not be closed yet.
    pub unsafe fn session_close(handle: *mut c_void) {
        if handle.is_null() {
            return;
        }
        let _shim = Shim::enter();
        let _ = catch_unwind(|| {
            // SAFETY: produced by Box::into_raw in session_open, closed once.
            drop(unsafe { Box::from_raw(handle as *mut Session) });
        });
    }
}

/// Exports a [`Connector`] as a Reckon plugin: builds the static header and
/// the `extern "C"` shims, each of which catches panics.
///
/// `id` must equal the manifest's id; the host checks it.
#[macro_export]
macro_rules! export_plugin {
    (id = $id:literal, connector = $connector:ty $(,)?) => {
        #[doc(hidden)]
        #[allow(unsafe_code)]
        pub mod __reckon_plugin_export {
            use super::*;
            use ::std::ffi::c_void;
            use $crate::abi::{FunctionTable, PluginHeader, WriteFn};

            unsafe extern "C" fn describe(w: WriteFn, ctx: *mut c_void) -> i32 {
                $crate::sdk::__private::describe::<$connector>(w, ctx)
            }
            unsafe extern "C" fn session_open(
                input: *const u8,
                len: usize,
                out: *mut *mut c_void,
                w: WriteFn,
                ctx: *mut c_void,
            ) -> i32 {
                // SAFETY: forwarded verbatim from the host, which upholds the ABI contract.
                unsafe {
                    $crate::sdk::__private::session_open::<$connector>(input, len, out, w, ctx)
                }
            }
            unsafe extern "C" fn session_step(
                handle: *mut c_void,
                input: *const u8,
                len: usize,
                w: WriteFn,
                ctx: *mut c_void,
            ) -> i32 {
                // SAFETY: forwarded verbatim from the host, which upholds the ABI contract.
                unsafe { $crate::sdk::__private::session_step(handle, input, len, w, ctx) }
            }
            unsafe extern "C" fn session_close(handle: *mut c_void) {
                // SAFETY: forwarded verbatim from the host, which upholds the ABI contract.
                unsafe { $crate::sdk::__private::session_close(handle) }
            }

            static HEADER: PluginHeader = PluginHeader {
                magic: $crate::abi::MAGIC,
                header_size: ::std::mem::size_of::<PluginHeader>() as u32,
                abi_major: $crate::abi::ABI_MAJOR,
                abi_minor: $crate::abi::ABI_MINOR,
                flags: if cfg!(panic = "unwind") {
                    $crate::abi::FLAG_PANIC_UNWIND
                } else {
                    0
                },
                protocol_fingerprint: $crate::abi::PROTOCOL_FINGERPRINT,
                plugin_id: concat!($id, "\0").as_ptr() as *const ::std::ffi::c_char,
                plugin_version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr()
                    as *const ::std::ffi::c_char,
                protocol_version: $crate::abi::PROTOCOL_VERSION_C.as_ptr(),
                target: $crate::abi::TARGET_C.as_ptr(),
                functions: FunctionTable {
                    describe,
                    session_open,
                    session_step,
                    session_close,
                },
                build: $crate::abi::BUILD_C.as_ptr(),
            };

            /// The plugin's entry point: returns its static header.
            #[no_mangle]
            pub extern "C" fn reckon_plugin_entry() -> *const PluginHeader {
                &HEADER
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::protocol::AuthSpec;

    fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
        s.parse().unwrap()
    }

    /// QA20 F2: a window's days are the connector's zone's days.
    #[test]
    fn day_start_is_the_zones_midnight_across_dst_changes() {
        use super::day_start;
        use chrono::NaiveDate;
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        let la = chrono_tz::America::Los_Angeles;
        assert_eq!(day_start(d(2026, 10, 2), la), utc("2026-10-02T07:00:00Z"));
        assert_eq!(day_start(d(2026, 12, 2), la), utc("2026-12-02T08:00:00Z"));
        // The days clocks change (2 a.m.) are 23 and 25 hours long.
        let len = |day: NaiveDate| day_start(day.succ_opt().unwrap(), la) - day_start(day, la);
        assert_eq!(len(d(2026, 3, 8)).num_hours(), 23);
        assert_eq!(len(d(2026, 11, 1)).num_hours(), 25);
        assert_eq!(
            day_start(d(2026, 10, 2), chrono_tz::UTC),
            utc("2026-10-02T00:00:00Z")
        );
        assert_eq!(
            day_start(d(2026, 10, 2), chrono_tz::Asia::Tokyo),
            utc("2026-10-01T15:00:00Z")
        );
        // Midnight skipped (Santiago, 2024-09-08 00:00 → 01:00): the day
        // begins at the jump, which is where the day before ends.
        let scl = chrono_tz::America::Santiago;
        assert_eq!(day_start(d(2024, 9, 8), scl), utc("2024-09-08T04:00:00Z"));
        assert_eq!(len_in(d(2024, 9, 7), scl), 24);
        // Midnight twice (Havana, 2024-11-03 01:00 → 00:00): the first one;
        // and skipped (2024-03-10 00:00 → 01:00).
        let hav = chrono_tz::America::Havana;
        assert_eq!(day_start(d(2024, 11, 3), hav), utc("2024-11-03T04:00:00Z"));
        assert_eq!(len_in(d(2024, 11, 3), hav), 25);
        assert_eq!(day_start(d(2024, 3, 10), hav), utc("2024-03-10T05:00:00Z"));
        assert_eq!(len_in(d(2024, 3, 9), hav), 24);
        // A day that does not exist is empty.
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(
            day_start(d(2011, 12, 30), apia),
            day_start(d(2011, 12, 31), apia)
        );
    }

    fn len_in(day: chrono::NaiveDate, tz: chrono_tz::Tz) -> i64 {
        (super::day_start(day.succ_opt().unwrap(), tz) - super::day_start(day, tz)).num_hours()
    }

    #[test]
    fn timezone_is_the_hosts_else_utc_and_an_unknown_name_is_an_error() {
        let mut open = crate::testing::open_check("tz", "http://fake", serde_json::json!({}));
        assert_eq!(
            super::Cx::new(open.clone()).timezone().unwrap(),
            chrono_tz::UTC
        );
        open.timezone = Some("America/Los_Angeles".into());
        assert_eq!(
            super::Cx::new(open.clone()).timezone().unwrap(),
            chrono_tz::America::Los_Angeles
        );
        open.timezone = Some("Mars/Olympus".into());
        let e = super::Cx::new(open).timezone().unwrap_err();
        assert!(e.message.contains("\"Mars/Olympus\""), "{}", e.message);
        assert!(e.message.contains("connector `tz`"), "{}", e.message);
    }

    /// Older hosts and recordings have no `timezone`; a host leaves it out
    /// when it has none, so a plugin from before it reads the message.
    #[test]
    fn session_open_without_timezone_reads_and_none_is_not_written() {
        let open = crate::testing::open_check("tz", "http://fake", serde_json::json!({}));
        let text = serde_json::to_string(&open).unwrap();
        assert!(!text.contains("timezone"), "{text}");
        let back: crate::protocol::SessionOpen = serde_json::from_str(&text).unwrap();
        assert_eq!(back.timezone, None);
        let with = crate::protocol::SessionOpen {
            timezone: Some("Europe/Berlin".into()),
            ..open
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(text.contains(r#""timezone":"Europe/Berlin""#), "{text}");
    }

    /// QA13 F5: "settings: invalid type: string \"2\", expected u32" did
    /// not say which setting.
    #[test]
    fn a_settings_error_names_the_setting() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Settings {
            limit: u32,
            nested: Option<Nested>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Nested {
            ids: Vec<u32>,
        }
        let cx =
            |settings| super::Cx::new(crate::testing::open_check("qk", "http://fake", settings));
        let e = cx(serde_json::json!({ "limit": "2" }))
            .settings::<Settings>()
            .unwrap_err();
        assert_eq!(
            e.message,
            "connector `qk`: setting `limit`: invalid type: string \"2\", expected u32"
        );
        let e = cx(serde_json::json!({ "limit": 2, "nested": { "ids": [1, "x"] } }))
            .settings::<Settings>()
            .unwrap_err();
        assert!(
            e.message
                .starts_with("connector `qk`: setting `nested.ids[1]`: "),
            "{}",
            e.message
        );
        let e = cx(serde_json::json!([]))
            .settings::<Settings>()
            .unwrap_err();
        assert!(
            e.message.starts_with("connector `qk`: settings: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn auth_errors_name_the_credential_settings_once() {
        let name = |msg: &str, auth: Option<AuthSpec>| {
            let mut m = msg.to_owned();
            name_credential_settings(&mut m, auth.as_ref());
            m
        };
        let basic = AuthSpec::Basic {
            username: "account_sid".into(),
            password: "auth_token".into(),
        };
        assert_eq!(
            name("credentials refused (HTTP 401)", Some(basic.clone())),
            "credentials refused (HTTP 401); check settings `account_sid` and `auth_token`"
        );
        let header = AuthSpec::Header {
            name: "X-Eflow-API-Key".into(),
            value: "api_key".into(),
        };
        assert_eq!(
            name("refused", Some(header.clone())),
            "refused; check setting `api_key`"
        );
        let all = AuthSpec::All {
            schemes: vec![basic, header],
        };
        assert_eq!(
            name("refused", Some(all)),
            "refused; check settings `account_sid`, `auth_token` and `api_key`"
        );
        // Already named (Google, Meta, TikTok), or no auth scheme: unchanged.
        let named = "Meta refused the access token: check setting `access_token`";
        assert_eq!(
            name(named, Some(AuthSpec::Bearer { token: "t".into() })),
            named
        );
        assert_eq!(name("refused", None), "refused");
    }

    use super::*;

    fn response(content_type: &str, body: &str) -> Response {
        Response {
            status: 200,
            headers: BTreeMap::from([("content-type".to_owned(), content_type.to_owned())]),
            body: body.as_bytes().to_vec(),
        }
    }

    /// QA (ops #10): the body went into the error as it came: `oops\n`
    /// left a blank line in the daemon log and a `\n` in `/status`, and an
    /// empty body a dangling `: `.
    #[test]
    fn an_upstream_body_in_error_text_is_one_trimmed_line() {
        let mut r = response("text/plain", "oops\n");
        r.status = 500;
        assert_eq!(r.ok().unwrap_err().message, "server error (HTTP 500): oops");
        let mut r = response("text/plain", "");
        r.status = 429;
        assert_eq!(r.ok().unwrap_err().message, "rate limited (HTTP 429)");
        let mut r = response(
            "text/html",
            "\n<html>\n  <p>bad\r\n gateway</p>\n</html>\n\n",
        );
        r.status = 502;
        assert_eq!(
            r.ok().unwrap_err().message,
            "server error (HTTP 502): <html> <p>bad gateway</p> </html>"
        );
        assert_eq!(body_suffix("x".repeat(500).as_bytes(), 300).len(), 302);
    }

    /// QA finding: a redirect failed with "request failed (HTTP 302): " and
    /// nothing after it.
    #[test]
    fn a_redirect_names_where_it_points() {
        let mut r = response("text/html", "");
        r.status = 302;
        r.headers
            .insert("location".into(), "https://login.example.net/".into());
        let e = r.ok().unwrap_err();
        assert_eq!(
            e.message,
            "redirected (HTTP 302) to https://login.example.net/; redirects are not followed: set the connector's base_url to where the API answers"
        );
    }

    /// QA13 F1: `json` read an error answer as data: a 401 or a 500 gave
    /// "malformed JSON: missing field `items`", a non-retryable
    /// BadResponse without the status. It now refuses it as `ok()` does.
    #[test]
    fn json_refuses_an_error_answer_with_the_error_ok_gives() {
        #[derive(Debug, serde::Deserialize)]
        struct Page {
            #[allow(dead_code)]
            items: Vec<serde_json::Value>,
        }
        let body = r#"{"error": "invalid api key"}"#;
        let cases = [
            (
                401,
                ErrorKind::Auth,
                false,
                "credentials refused (HTTP 401)",
            ),
            (
                403,
                ErrorKind::Auth,
                false,
                "credentials refused (HTTP 403)",
            ),
            (429, ErrorKind::RateLimited, true, "rate limited (HTTP 429)"),
            (500, ErrorKind::Upstream, true, "server error (HTTP 500)"),
            (503, ErrorKind::Upstream, true, "server error (HTTP 503)"),
            (404, ErrorKind::Upstream, false, "request failed (HTTP 404)"),
        ];
        for (status, kind, retryable, words) in cases {
            let mut r = response("application/json", body);
            r.status = status;
            let e = r.json::<Page>("stream `conversions` page 1").unwrap_err();
            let from_ok = r.clone().ok().unwrap_err();
            assert_eq!((e.kind, e.retryable), (kind, retryable), "{status}");
            assert_eq!((from_ok.kind, from_ok.retryable), (kind, retryable));
            assert_eq!(
                e.message,
                format!("stream `conversions` page 1: {words}: {body}"),
                "{status}"
            );
            assert_eq!(
                e.message,
                format!("stream `conversions` page 1: {}", from_ok.message)
            );
        }
        // A 2xx is read as before.
        let r = response("application/json", r#"{"items": [1]}"#);
        assert_eq!(r.json::<Page>("p").unwrap().items.len(), 1);
        let r = response("application/json", body);
        let e = r.json::<Page>("p").unwrap_err();
        assert!(
            e.message
                .starts_with("p: malformed JSON: missing field `items`"),
            "{}",
            e.message
        );
    }

    /// QA13 F1, through a session: a plugin that forgets `.ok()?` still
    /// reports a refused key as an auth error naming the setting.
    #[test]
    fn a_401_read_with_json_is_an_auth_error_naming_the_credential_setting() {
        use crate::protocol::AuthSpec;
        use crate::testing::{open_read, FakeHost, Reply};
        struct Forgetful;
        impl Connector for Forgetful {
            fn manifest() -> Manifest {
                Manifest {
                    config_schema: serde_json::json!({
                        "type": "object",
                        "properties": { "api_key": { "type": "string", "x-secret": true } }
                    }),
                    auth: Some(AuthSpec::Header {
                        name: "X-Acme-Key".into(),
                        value: "api_key".into(),
                    }),
                    streams: crate::testing::conversions_stream(),
                    ..Manifest::bare("forgetful")
                }
            }
            async fn check(_cx: Cx) -> Result<(), PluginError> {
                Ok(())
            }
            async fn read(cx: Cx) -> Result<(), PluginError> {
                let url = format!("{}/v2/conversions", cx.base_url());
                let _: serde_json::Value = cx
                    .http(Request::get(url))
                    .await?
                    .json("stream `conversions` page 1")?;
                Ok(())
            }
        }
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let run = |status: u16| {
            FakeHost::handler(move |_| {
                Reply::json(status, &serde_json::json!({ "error": "invalid api key" }))
            })
            .run::<Forgetful>(open_read(
                "acme",
                "http://fake",
                serde_json::json!({}),
                Window { from: day, to: day },
            ))
            .result
            .unwrap_err()
        };
        let e = run(401);
        assert_eq!((e.kind, e.retryable), (ErrorKind::Auth, false));
        assert_eq!(
            e.message,
            "stream `conversions` page 1: credentials refused (HTTP 401): \
             {\"error\":\"invalid api key\"}; check setting `api_key`"
        );
        let e = run(500);
        assert_eq!((e.kind, e.retryable), (ErrorKind::Upstream, true));
        assert!(
            e.message.contains("server error (HTTP 500)"),
            "{}",
            e.message
        );
    }

    /// QA finding: a maintenance page answered with 200 read as "malformed
    /// JSON: expected value at line 1 column 1", and was not retried.
    #[test]
    fn a_page_that_is_not_json_is_named_and_retryable() {
        let html = response(
            "text/html",
            "\n<html><title>Down for maintenance</title></html>",
        );
        let e = html
            .json::<serde_json::Value>("stream x page 2")
            .unwrap_err();
        assert!(e.retryable);
        assert_eq!(
            e.message,
            "stream x page 2: HTTP 200, content-type `text/html`: the answer is not JSON: \
             \"<html><title>Down for maintenance</title></html>\""
        );
        let cut = response("application/json", "{\"rows\": [1, 2");
        let e = cut
            .json::<serde_json::Value>("stream x page 2")
            .unwrap_err();
        assert!(!e.retryable);
        assert!(
            e.message
                .starts_with("stream x page 2: malformed JSON: EOF"),
            "{}",
            e.message
        );
    }

    /// QA20 R20-6: a bare `NaN` (or a byte that is not UTF-8) gave only a
    /// line and column; the error now quotes the answer around it. A
    /// missing field names itself and gets no quote.
    #[test]
    fn a_json_syntax_error_quotes_the_answer_around_it() {
        let body = "{\"Actions\": [\n  {\"Id\": \"Q20.1\", \"Amount\": \"12.50\"},\n  {\"Id\": \"Q20.2\", \"Amount\": NaN}\n]}";
        let e = response("application/json", body)
            .json::<serde_json::Value>("page 1")
            .unwrap_err();
        assert_eq!(
            e.message,
            "page 1: malformed JSON: expected value at line 3 column 29 near `: \"12.50\"}, {\"Id\": \"Q20.2\", \"Amount\": NaN} ]}`"
        );
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Page {
            items: Vec<u32>,
        }
        let e = response("application/json", "{\"rows\": []}")
            .json::<Page>("page 1")
            .unwrap_err();
        assert_eq!(
            e.message,
            "page 1: malformed JSON: missing field `items` at line 1 column 12"
        );
    }

    /// QA24 F4-C: `now + wait` panicked (`DateTime + TimeDelta overflowed`)
    /// for a wait a plugin read from a header; it is now an error.
    #[test]
    fn sleep_for_past_the_clocks_range_is_an_error_not_a_panic() {
        use crate::testing::{open_read, FakeHost, Reply};
        struct Sleeper;
        impl Connector for Sleeper {
            fn manifest() -> Manifest {
                Manifest {
                    streams: crate::testing::conversions_stream(),
                    ..Manifest::bare("sleeper")
                }
            }
            async fn check(_cx: Cx) -> Result<(), PluginError> {
                Ok(())
            }
            async fn read(cx: Cx) -> Result<(), PluginError> {
                cx.sleep_for(chrono::Duration::MAX).await
            }
        }
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let out = FakeHost::handler(|_| Reply::json(500, &serde_json::json!({}))).run::<Sleeper>(
            open_read(
                "sleeper",
                "http://fake",
                serde_json::json!({}),
                Window { from: day, to: day },
            ),
        );
        let e = out.result.unwrap_err();
        assert_eq!((e.kind, e.retryable), (ErrorKind::Internal, false));
        assert!(
            e.message
                .contains("reaches past the latest time the clock holds"),
            "{}",
            e.message
        );
        assert!(out.sleeps.is_empty(), "{:?}", out.sleeps);
    }
}
