//! The plugin host: loader, transports, HTTP executor. Owned by the foundation work (issue 2).
//!
//! CONTRACT (used by sync, config, demo): the public types and functions in
//! this file are what other modules code against. The bodies are filled in by
//! the foundation work; keep the signatures (add, don't change).
pub mod cli;

use plugin_api::protocol::{Checkpoint, Manifest, Record, SessionOpen};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where a plugin's sessions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A `reckon plugin-host` child process per session (the default): a crash
    /// or abort kills only the child.
    #[default]
    Subprocess,
    /// Calls on a blocking thread in the daemon (first-party plugins, tests).
    InProcess,
}

/// Why a library was refused or a plugin could not be described.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Free-form, but always naming the file and the field or check that failed.
    #[error("{path}: {reason}")]
    Refused { path: String, reason: String },
}

/// A plugin library that passed every check and was described. Never unloaded.
#[derive(Debug)]
pub struct Plugin {
    /// The library file (canonical path inside the plugin directory).
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// True if built with `panic = "unwind"` (required for in-process).
    pub panic_unwind: bool,
}

/// Lists plugin libraries (`*.so`/`*.dylib`) in `dir`, loading and describing
/// each. Broken files are returned as errors, not skipped.
pub fn discover(dir: &Path) -> Vec<Result<Arc<Plugin>, LoadError>> {
    let _ = dir;
    Vec::new()
}

/// Finds and loads the plugin with manifest id `id` in `dir`, checking the
/// optional SHA-256 pin before `dlopen`.
pub fn load(dir: &Path, id: &str, sha256: Option<&str>) -> Result<Arc<Plugin>, LoadError> {
    Err(LoadError::Refused {
        path: dir.display().to_string(),
        reason: format!("plugin host not built yet (looking for `{id}`, pin {sha256:?})"),
    })
}

/// A secret value: never printed (its Debug and Display are redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the HTTP executor treats one connector's requests.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Connector id, for logs, metrics and errors.
    pub connector_id: String,
    /// Hosts allowed (manifest's plus the configured base URL's).
    pub allowed_hosts: Vec<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Our own request limit (token bucket); `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// Retries for idempotent requests on connect errors, timeouts and 5xx, and for 429s.
    pub max_retries: u32,
    /// Secret setting values by setting name, for the manifest's auth scheme.
    pub secrets: BTreeMap<String, Secret>,
}

/// At most `requests` requests per `per_secs` seconds (integer, no floats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per period.
    pub requests: u32,
    /// Period length in seconds.
    pub per_secs: u32,
}

/// What a session did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Checkpoints committed (≈ pages).
    pub pages: u64,
    /// HTTP requests sent (including retries).
    pub requests: u64,
    /// Retries performed.
    pub retries: u64,
    /// Times we waited because of rate limits (429 or our own limiter).
    pub rate_limit_waits: u64,
    /// Records new / changed / unchanged, as the sink reported.
    pub new: u64,
    /// See `new`.
    pub changed: u64,
    /// See `new`.
    pub unchanged: u64,
}

/// A failed session, naming the connector and the cause.
#[derive(Debug, Clone, thiserror::Error)]
#[error("connector `{connector}`: {message}")]
pub struct SessionError {
    /// Connector id.
    pub connector: String,
    /// Category, as the plugin or host saw it.
    pub kind: plugin_api::ErrorKind,
    /// Whether a later retry may succeed (crash, hang, throttling, 5xx).
    pub retryable: bool,
    /// What went wrong.
    pub message: String,
}

/// Receives validated records with the checkpoint that covers them.
pub trait SessionSink: Send {
    /// Commits one page durably-enough (one store transaction).
    fn commit(
        &mut self,
        records: Vec<Record>,
        checkpoint: Checkpoint,
    ) -> Result<crate::store::CommitStats, String>;
}

/// Options for one session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// In-process or subprocess.
    pub isolation: Isolation,
    /// Max time the plugin may take for one step before it is killed.
    pub step_deadline: Duration,
    /// The `reckon` executable used for subprocess isolation.
    pub host_exe: PathBuf,
}

/// Runs one session to completion: feeds events, executes the plugin's HTTP
/// through the policy, validates records and checkpoints, commits each page
/// to the sink. On failure, nothing after the last committed checkpoint is kept.
pub async fn run_session(
    plugin: Arc<Plugin>,
    open: SessionOpen,
    policy: HttpPolicy,
    options: SessionOptions,
    sink: &mut dyn SessionSink,
) -> Result<SessionReport, SessionError> {
    let _ = (plugin, policy, options, sink);
    Err(SessionError {
        connector: open.connector_id,
        kind: plugin_api::ErrorKind::Internal,
        retryable: false,
        message: "plugin host not built yet".into(),
    })
}
