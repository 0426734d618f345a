//! The plugin host: loader, transports, HTTP executor, session driver.
//!
//! CONTRACT (used by sync, config, demo): the public types and functions in
//! this file are what other modules code against; keep the signatures (add,
//! don't change).
//!
//! | module | job |
//! |---|---|
//! | [`loader`] | the only `dlopen` (of a private copy of the file): directory, permission, pin and header checks; describe; never unload; whether a loaded file was replaced since |
//! | [`manifest`] | the checks of a plugin's manifest at load: id, streams of the plugin's record type, `config_schema`'s shape, `allowed_hosts`, `auth` |
//! | [`describe`] | where describe runs (a `reckon plugin-host --describe` child, or a thread) and its deadline |
//! | [`transport`] | in-process (blocking thread) and subprocess (`reckon plugin-host`) carriers behind one trait |
//! | [`http`] | the HTTP executor: allowed hosts, auth injection, retries, 429s, rate limit, size cap, redaction |
//! | [`cassette`] | recording a session's exchanges as a cassette `FakeHost` replays (`reckon sync --record`) |
//! | [`files`] | the read-only file capability |
//! | [`session`] | the session driver: events in, actions out, validation, commits |
//! | [`plugin_log`] | plugin log lines re-emitted as `tracing` events, one field per plugin field, bounded |
//! | [`cli`] | `reckon plugins list/describe/check` and the hidden `reckon plugin-host` |
//!
//! What this is not: no scheduling, no store access (pages go to a
//! [`SessionSink`]), no config parsing.
pub mod cassette;
pub mod cli;
pub mod describe;
pub mod files;
pub mod http;
pub mod loader;
pub mod manifest;
pub mod plugin_log;
pub mod session;
pub mod transport;

pub use describe::{DescribeHost, DescribeOptions, DESCRIBE_DEADLINE};
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
    /// SHA-256 of the file when it was loaded (lower-case hex), for pins.
    pub sha256: String,
    /// The plugin's ABI minor version.
    pub abi_minor: u16,
    /// Its header's `protocol_fingerprint`: 0 for a plugin built before the
    /// fingerprint existed ([`Plugin::outdated`]).
    pub protocol_fingerprint: u32,
    /// Its header's `build` stamp: the commit its plugin-api was built from
    /// (`<commit> <commit date, UTC>`, or `unknown commit`); `None` for a
    /// plugin built before the stamp (ABI 1.0). See [`Plugin::build_mismatch`].
    pub build: Option<String>,
    /// The function table (valid forever: libraries are never unloaded).
    pub(crate) fns: loader::PluginFns,
}

impl Plugin {
    /// A plugin known only by its manifest, with no library behind it: config
    /// validation tests and benchmarks use it; its sessions fail cleanly.
    pub fn from_manifest(path: PathBuf, manifest: Manifest) -> Plugin {
        Plugin {
            path,
            manifest,
            panic_unwind: true,
            sha256: String::new(),
            abi_minor: 0,
            protocol_fingerprint: plugin_api::abi::PROTOCOL_FINGERPRINT,
            build: Some(THIS_BUILD.to_owned()),
            fns: loader::PluginFns::unavailable(),
        }
    }

    /// Why this library should be replaced although it loads: built against
    /// a plugin-api from before `protocol_fingerprint` (its slot is zero),
    /// so the host cannot tell whether its records match this release's.
    /// Such plugins still load (out-of-tree plugins), with this warning in
    /// the log, `plugins list`, `plugins check` and `config check`.
    pub fn outdated(&self) -> Option<&'static str> {
        (self.protocol_fingerprint == 0).then_some(OUTDATED_PLUGIN)
    }

    /// Why this library of a plugin that ships with Reckon looks left from
    /// another release: see [`build_mismatch`].
    pub fn build_mismatch(&self) -> Option<String> {
        build_mismatch(&self.manifest.id, self.build.as_deref(), THIS_BUILD)
    }

    /// Everything that says this library should be replaced although it
    /// loads ([`Plugin::outdated`], [`Plugin::build_mismatch`]), each a
    /// phrase that follows "the library is": the log at load, `plugins
    /// list`, `plugins check` and `config check` print them.
    pub fn warnings(&self) -> Vec<String> {
        self.outdated()
            .map(str::to_owned)
            .into_iter()
            .chain(self.build_mismatch())
            .collect()
    }

    /// The commit of its `build` stamp, for the `plugins list` column:
    /// `none` without a stamp, `unknown` when built outside a git checkout.
    pub fn build_commit(&self) -> &str {
        match self.build.as_deref() {
            None => "none",
            Some(UNKNOWN_BUILD) => "unknown",
            Some(b) => b.split_whitespace().next().unwrap_or("none"),
        }
    }

    /// Why this plugin may not start another session: its file was
    /// replaced (a new build copied over it or renamed onto it) or removed
    /// since it was loaded ([`loader::replaced_since_loaded`]). What runs
    /// is a private copy of the bytes loaded, so a session never runs a
    /// file that changed under it; this makes the change known instead of
    /// silently running the old build (QA42a A-H1). `None` for a plugin
    /// with no library ([`Plugin::from_manifest`]).
    pub fn replaced(&self) -> Option<String> {
        if self.sha256.is_empty() {
            return None;
        }
        loader::replaced_since_loaded(&self.path, &self.sha256)
    }
}

/// [`Plugin::outdated`]'s warning (upgrade QA F2: an operator who forgot
/// to replace the plugins ran the old mapping code without a word).
pub const OUTDATED_PLUGIN: &str = "built against an older plugin-api (no protocol fingerprint); rebuild it or replace it with this release's .so (an old plugin runs its old mapping code and may change stored records)";

/// This reckon's build, `<commit> <commit date, UTC>` or `unknown commit`
/// (`daemon/build.rs`): what a bundled plugin's `build` stamp must name.
pub const THIS_BUILD: &str = env!("RECKON_BUILD");

/// The build stamp of a binary or plugin built outside a git checkout.
pub const UNKNOWN_BUILD: &str = "unknown commit";

/// The ids of the plugins that ship with Reckon (the crates under
/// `plugins/` of its source). A release builds them with the daemon, from
/// one commit, so their `build` stamp names the daemon's: another commit
/// is a library left from another release ([`build_mismatch`]). A unit
/// test keeps the list equal to `plugins/`.
pub const BUNDLED_PLUGINS: [&str; 9] = [
    "cake",
    "everflow",
    "example",
    "google_ads",
    "impact",
    "meta_ads",
    "orders",
    "partnerstack",
    "tiktok_ads",
];

/// Why the library of plugin `id`, stamped `build` (`None`: built before
/// the stamp existed), looks left from another release than this reckon,
/// built as `ours` (QA44b B-H1: after an upgrade that replaced only the
/// binary, the old libraries said `impact 0.1.0` and had the same protocol
/// fingerprint, and ran the old mapping code without a word). Only for a
/// plugin that ships with Reckon ([`BUNDLED_PLUGINS`]): an out-of-tree
/// plugin is built from its own sources, whenever. Nothing when either
/// build is `unknown commit` (built outside a git checkout). A warning,
/// not a refusal: the records and messages are the same (the protocol
/// fingerprint matched), and a developer who rebuilt only the daemon must
/// not lose their plugins.
pub fn build_mismatch(id: &str, build: Option<&str>, ours: &str) -> Option<String> {
    if !BUNDLED_PLUGINS.contains(&id) || ours == UNKNOWN_BUILD {
        return None;
    }
    let theirs = match build {
        Some(b) if b == UNKNOWN_BUILD || same_commit(b, ours) => return None,
        Some(b) => format!("built from commit `{b}`"),
        None => "from a release before plugin build stamps (its header has none)".to_owned(),
    };
    Some(format!(
        "{theirs}, and this reckon from `{ours}`: a library left from another release, \
         which runs that release's code (its mapping may change stored records); install \
         this release's plugin libraries (README \"Upgrading, and rolling back\"), or, \
         building from source, build them with this reckon (`cargo build --workspace`)"
    ))
}

/// Whether two build stamps name one commit: their first words (the
/// abbreviated hashes, which git may abbreviate to different lengths on
/// two machines) agree as far as the shorter goes.
fn same_commit(a: &str, b: &str) -> bool {
    let (a, b) = (
        a.split_whitespace().next().unwrap_or_default(),
        b.split_whitespace().next().unwrap_or_default(),
    );
    !a.is_empty() && !b.is_empty() && (a.starts_with(b) || b.starts_with(a))
}

/// Lists plugin libraries (`*.so`/`*.dylib`) in `dir`, loading and describing
/// each. Broken files are returned as errors, not skipped. Describe runs as
/// [`DescribeOptions::for_this_process`] says.
pub fn discover(dir: &Path) -> Vec<Result<Arc<Plugin>, LoadError>> {
    discover_with(dir, &DescribeOptions::for_this_process())
}

/// [`discover`] with describe run where `opts` says, within its deadline.
pub fn discover_with(dir: &Path, opts: &DescribeOptions) -> Vec<Result<Arc<Plugin>, LoadError>> {
    match loader::library_files(dir) {
        Err(e) => vec![Err(e)],
        Ok(files) => files
            .iter()
            .map(|f| loader::load_file_with(dir, f, None, opts))
            .collect(),
    }
}

/// Finds and loads the plugin with manifest id `id` in `dir`, checking the
/// optional SHA-256 pin before `dlopen`.
///
/// With a pin, only a file whose bytes hash to it is ever opened. Without
/// one, the conventional file name (`libreckon_plugin_<id>.so`) is tried
/// first, then every library in the directory. Describe runs as
/// [`DescribeOptions::for_this_process`] says: in a child when this is the
/// `reckon` binary, else on a thread; either way within [`DESCRIBE_DEADLINE`].
pub fn load(dir: &Path, id: &str, sha256: Option<&str>) -> Result<Arc<Plugin>, LoadError> {
    load_with(dir, id, sha256, &DescribeOptions::for_this_process())
}

/// [`load`] with describe run where `opts` says, within its deadline.
pub fn load_with(
    dir: &Path,
    id: &str,
    sha256: Option<&str>,
    opts: &DescribeOptions,
) -> Result<Arc<Plugin>, LoadError> {
    let refused = |reason: String| LoadError::Refused {
        path: dir.display().to_string(),
        reason,
    };
    let files = loader::library_files(dir)?;
    if let Some(pin) = sha256 {
        let mut seen = Vec::new();
        for f in &files {
            // Which file has the pinned hash; `load_file_with` checks the
            // pin again on the file it opens and loads.
            let Ok(sha) = loader::sha256_of_path(f) else {
                continue;
            };
            if sha.eq_ignore_ascii_case(pin) {
                let p = loader::load_file_with(dir, f, Some(pin), opts)?;
                if p.manifest.id != id {
                    return Err(refused(format!(
                        "the file pinned for `{id}` ({}) is plugin `{}`",
                        f.display(),
                        p.manifest.id
                    )));
                }
                return Ok(p);
            }
            seen.push(format!(
                "{} = {sha}",
                f.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
        return Err(refused(format!(
            "no library has the sha256 pinned for plugin `{id}` ({pin}); not loading anything unpinned. Files: {}",
            if seen.is_empty() { "none".to_owned() } else { seen.join(", ") }
        )));
    }
    let conventional = dir.join(format!(
        "{}reckon_plugin_{id}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let mut refusals = Vec::new();
    let mut conventional_refused = None;
    let ordered = files
        .iter()
        .filter(|f| **f == conventional)
        .chain(files.iter().filter(|f| **f != conventional));
    let mut other_ids: Vec<String> = Vec::new();
    for f in ordered {
        match loader::load_file_with(dir, f, None, opts) {
            Ok(p) if p.manifest.id == id => {
                if let Some(e) = &conventional_refused {
                    tracing::warn!(plugin = id, used = %f.display(), refused = %e,
                        "the plugin's conventional file is refused; loading another file with its id");
                }
                return Ok(p);
            }
            Ok(p) => other_ids.push(p.manifest.id.clone()),
            // The conventional file refused: another file may hold the id
            // (`plugins list` shows it); failing that, this is the error.
            Err(e) if *f == conventional => conventional_refused = Some(e),
            Err(e) => refusals.push(e.to_string()),
        }
    }
    if let Some(e) = conventional_refused {
        return Err(e);
    }
    // What is there, and the id most like the one asked for (ops QA13
    // OPS-8: `caek` for `cake`).
    other_ids.sort();
    other_ids.dedup();
    let found = match crate::config::source::nearest(id, other_ids.iter().map(String::as_str)) {
        Some(n) => format!(
            " (installed: {}); did you mean `{n}`?",
            other_ids.join(", ")
        ),
        None if other_ids.is_empty() => String::new(),
        None => format!(" (installed: {})", other_ids.join(", ")),
    };
    Err(refused(format!(
        "no plugin with id `{id}` in the plugin directory{found}{}",
        if refusals.is_empty() {
            String::new()
        } else {
            format!(
                " ({} libraries refused: {})",
                refusals.len(),
                refusals.join("; ")
            )
        }
    )))
}

/// A secret value: never printed (its Debug and Display are redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
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

impl HttpPolicy {
    /// A policy with the daemon's defaults: 30 s timeout, 5 retries, 50 MiB
    /// responses, no rate limit, no extra hosts, no secrets.
    pub fn new(connector_id: impl Into<String>) -> Self {
        HttpPolicy {
            connector_id: connector_id.into(),
            allowed_hosts: Vec::new(),
            timeout: Duration::from_secs(30),
            rate_limit: None,
            max_response_bytes: 50 << 20,
            max_retries: 5,
            secrets: BTreeMap::new(),
        }
    }
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
    /// The longest wait a 429 asked for that the host did not wait out (it
    /// was longer than a request waits), in seconds.
    pub refused_wait_secs: Option<u32>,
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
    /// What the session did before it failed: pages committed, and requests
    /// and retries counted per attempt, including attempts that never got a
    /// response (connect errors, timeouts).
    pub report: SessionReport,
}

/// Receives validated records with the checkpoint that covers them.
pub trait SessionSink: Send + Sync {
    /// Commits one page durably-enough (one store transaction).
    fn commit(
        &mut self,
        records: Vec<Record>,
        checkpoint: Checkpoint,
    ) -> Result<crate::store::CommitStats, String>;
}

/// Knobs of the session driver and HTTP executor that the daemon rarely
/// changes (tests shorten them), and its shutdown signal. [`run_session`]
/// uses the defaults, without a shutdown signal; the daemon's syncs
/// (`crate::sync::run_sync`) pass theirs through [`run_session_with`].
#[derive(Debug, Clone)]
pub struct SessionTuning {
    /// First retry backoff; doubles per attempt, plus up to 50% jitter.
    pub backoff_base: Duration,
    /// Largest backoff.
    pub backoff_cap: Duration,
    /// Longest wait a 429 may ask for before we stop retrying and hand the
    /// 429 to the plugin (by default
    /// `plugin_api::throttle::MAX_RATE_LIMIT_WAIT_SECS`, which the plugin's
    /// `Throttled` keeps to as well: it fails the run instead of waiting).
    pub max_rate_limit_wait: Duration,
    /// Longest single `SleepUntil` honoured (the plugin is woken earlier).
    pub max_sleep: Duration,
    /// Largest file the file capability reads.
    pub file_max_bytes: u64,
    /// Flips to `true` on shutdown: the plugin's sleeps, 429 and backoff
    /// waits, rate-limit waits and a request in flight end at once, and the
    /// session fails as retryable (nothing after its last committed
    /// checkpoint is kept; a page the sink is committing commits).
    pub shutdown: Option<tokio::sync::watch::Receiver<bool>>,
    /// Record the session's HTTP exchanges into this cassette file (and its
    /// `SessionOpen` beside it), secrets masked: see [`cassette`].
    pub record: Option<PathBuf>,
}

impl Default for SessionTuning {
    fn default() -> Self {
        SessionTuning {
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            max_rate_limit_wait: Duration::from_secs(
                plugin_api::throttle::MAX_RATE_LIMIT_WAIT_SECS.unsigned_abs(),
            ),
            max_sleep: Duration::from_secs(15 * 60),
            file_max_bytes: 1 << 30,
            shutdown: None,
            record: None,
        }
    }
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
    /// Most requests the plugin may ask for in the session (the
    /// connector's `max_requests_per_run`); one more fails the session.
    pub max_requests: u64,
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
    session::run(
        plugin,
        open,
        policy,
        options,
        sink,
        SessionTuning::default(),
    )
    .await
}

/// [`run_session`] with explicit [`SessionTuning`] (shutdown signal,
/// backoff, caps).
pub async fn run_session_with(
    plugin: Arc<Plugin>,
    open: SessionOpen,
    policy: HttpPolicy,
    options: SessionOptions,
    sink: &mut dyn SessionSink,
    tuning: SessionTuning,
) -> Result<SessionReport, SessionError> {
    session::run(plugin, open, policy, options, sink, tuning).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "8eb63f1 2026-05-02 10:15 UTC";

    /// QA44b B-H1: a bundled plugin's library from another commit, or from
    /// before stamps, is named; one of this build, or of any build of an
    /// out-of-tree plugin, is not.
    #[test]
    fn a_bundled_plugin_from_another_build_is_warned_about() {
        let old = "4e1a6e0 2026-04-20 08:00 UTC";
        let why = build_mismatch("impact", Some(old), OURS).unwrap();
        assert!(
            why.starts_with(&format!(
                "built from commit `{old}`, and this reckon from `{OURS}`: a library left from another release"
            )),
            "{why}"
        );
        assert!(
            why.contains(
                "install this release's plugin libraries (README \"Upgrading, and rolling back\")"
            ),
            "{why}"
        );
        let why = build_mismatch("cake", None, OURS).unwrap();
        assert!(
            why.starts_with(&format!("from a release before plugin build stamps (its header has none), and this reckon from `{OURS}`")),
            "{why}"
        );
        // The same build, its hash abbreviated to another length elsewhere.
        assert_eq!(build_mismatch("impact", Some(OURS), OURS), None);
        assert_eq!(
            build_mismatch("impact", Some("8eb63f1c9 2026-05-02 10:15 UTC"), OURS),
            None
        );
        // Out-of-tree plugins: never, stamped or not.
        assert_eq!(build_mismatch("acme_network", Some(old), OURS), None);
        assert_eq!(build_mismatch("acme_network", None, OURS), None);
        // Built outside a git checkout, either side: nothing to compare.
        assert_eq!(build_mismatch("impact", Some(UNKNOWN_BUILD), OURS), None);
        assert_eq!(build_mismatch("impact", Some(old), UNKNOWN_BUILD), None);
        assert_eq!(build_mismatch("impact", None, UNKNOWN_BUILD), None);
    }

    /// [`Plugin::warnings`] carries both reasons, and the list column the
    /// stamp's commit.
    #[test]
    fn a_plugin_s_warnings_and_build_column_come_from_its_header() {
        let mut p = crate::test_support::plugin("impact", 0);
        p.build = Some(THIS_BUILD.to_owned());
        assert_eq!(p.warnings(), [OUTDATED_PLUGIN]);
        p.protocol_fingerprint = plugin_api::abi::PROTOCOL_FINGERPRINT;
        assert_eq!(p.warnings(), Vec::<String>::new());
        p.build = None;
        assert_eq!(p.build_commit(), "none");
        assert_eq!(p.warnings().len(), usize::from(THIS_BUILD != UNKNOWN_BUILD));
        p.build = Some(UNKNOWN_BUILD.to_owned());
        assert_eq!(p.build_commit(), "unknown");
        p.build = Some(OURS.to_owned());
        assert_eq!(p.build_commit(), "8eb63f1");
    }

    /// [`BUNDLED_PLUGINS`] is the ids the crates under `plugins/` export.
    #[test]
    fn the_bundled_plugin_ids_are_those_under_plugins() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
        let mut ids: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let lib = e.unwrap().path().join("src/lib.rs");
                let src = std::fs::read_to_string(&lib).unwrap();
                let (_, rest) = src
                    .split_once("export_plugin!(id = \"")
                    .unwrap_or_else(|| panic!("{}: no export_plugin!", lib.display()));
                rest.split('"').next().unwrap_or_default().to_owned()
            })
            .collect();
        ids.sort();
        assert_eq!(ids, BUNDLED_PLUGINS);
    }
}
