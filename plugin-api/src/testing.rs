//! A fake host for plugin tests: replays recorded HTTP exchanges (or answers
//! from a closure) into a connector and collects what it produced.
//!
//! It drives the same [`Session`] the export shims drive, without a library
//! or a daemon, so a plugin's tests are plain `cargo test`.
//!
//! ```text
//! let cassette = Cassette::from_json(include_str!("../fixtures/two_pages.json"))?;
//! let out = FakeHost::replay(cassette).run::<MyConnector>(open_read("my", settings, window));
//! assert_eq!(out.committed.len(), 3);
//! ```

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
    /// Requests the plugin made, in order.
    pub requests: Vec<HttpRequest>,
    /// Sleeps the plugin asked for.
    pub sleeps: Vec<DateTime<Utc>>,
    /// How the session ended.
    pub result: Result<(), PluginError>,
}

/// The fake host.
pub struct FakeHost {
    source: Source,
    files: BTreeMap<String, Vec<u8>>,
    max_steps: usize,
}

enum Source {
    Replay(VecDeque<Exchange>),
    Handler(Handler),
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost")
            .field("files", &self.files.len())
            .finish()
    }
}

impl FakeHost {
    /// Replays a cassette: each request must match the next exchange.
    pub fn replay(cassette: Cassette) -> Self {
        FakeHost {
            source: Source::Replay(cassette.exchanges.into()),
            files: BTreeMap::new(),
            max_steps: 1_000_000,
        }
    }
    /// Answers every request from a closure (e.g. a generated fake API).
    pub fn handler(f: impl FnMut(&HttpRequest) -> Reply + 'static) -> Self {
        FakeHost {
            source: Source::Handler(Box::new(f)),
            files: BTreeMap::new(),
            max_steps: 1_000_000,
        }
    }
    /// Makes a file readable through the file capability.
    pub fn with_file(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.insert(name.to_owned(), bytes.into());
        self
    }

    /// Runs one session of `C` to completion.
    pub fn run<C: Connector>(mut self, open: SessionOpen) -> Outcome {
        let mut session = Session::open::<C>(open);
        let mut out = Outcome {
            committed: Vec::new(),
            uncommitted: Vec::new(),
            checkpoints: Vec::new(),
            logs: Vec::new(),
            requests: Vec::new(),
            sleeps: Vec::new(),
            result: Ok(()),
        };
        let mut queue: VecDeque<(Event, Vec<u8>)> = VecDeque::from([(Event::Start, Vec::new())]);
        let mut pending: Vec<Record> = Vec::new();
        let mut steps = 0;
        while let Some((event, bytes)) = queue.pop_front() {
            steps += 1;
            if steps > self.max_steps {
                out.result = Err(PluginError::new(
                    crate::protocol::ErrorKind::Protocol,
                    "too many steps",
                ));
                break;
            }
            for action in session.step(event, &bytes) {
                match action {
                    Action::Http(req) => {
                        let reply = self.answer(&req);
                        out.requests.push(req.clone());
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
                    Action::Records { records } => pending.extend(records),
                    Action::Checkpoint(cp) => {
                        out.committed.append(&mut pending);
                        out.checkpoints.push(cp);
                    }
                    Action::SleepUntil { id, until } => {
                        out.sleeps.push(until);
                        queue.push_back((Event::Timer { id, now: until }, Vec::new()));
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
                    Action::Done => {}
                    Action::Error(e) => out.result = Err(e),
                }
            }
        }
        out.uncommitted = pending;
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

/// A read session open message for tests.
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
    }
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
