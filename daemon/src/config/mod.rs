//! The TOML configuration: types, a pure parser, and resolution against the
//! installed plugins.
//!
//! - [`parse`] is a pure function over the text and its file name: syntax,
//!   types, unknown keys (with the nearest valid key), cron expressions,
//!   timezones, ids, secret reference syntax. Every error found is returned at
//!   once, each with file, line, column and key path.
//! - [`resolve()`] loads each connector's plugin, validates `[connectors.settings]`
//!   against the plugin's config schema, resolves secret references into the
//!   HTTP policy and removes them from the settings the plugin sees.
//!
//! Sections owned by other modules are typed there and only referenced here:
//! `[[programs]]` (reconcile, with commission rules from payout), `[fx]`,
//! `[kpi]` (kpi), `[[postbacks]]` (server).
//!
//! What it is not: no defaults are read from the environment, and nothing here
//! starts work; `reckon config check` ([`cli`]) is the user-facing front.
pub mod cli;
pub mod cron;
pub mod decimal;
pub mod dirs;
pub mod resolve;
pub mod schema;
pub mod settled;
pub mod source;

pub use self::cron::{CronSchedule, Timezone};
pub use resolve::{resolve, resolve_connector, ResolvedConnector, SecretRef};
pub use source::{ConfigError, ConfigErrors, SourceMap};

use serde::de::IntoDeserializer;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[daemon]`.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// `[[connectors]]`.
    #[serde(default)]
    pub connectors: Vec<ConnectorConfig>,
    /// `[[programs]]`: reconciliation programs and their commission rules.
    #[serde(default)]
    pub programs: Vec<crate::reconcile::config::ProgramConfig>,
    /// `[fx]`: exchange rates for payouts and reconciliation.
    #[serde(default)]
    pub fx: Option<crate::fx::FxConfig>,
    /// `[kpi]`: KPI summaries.
    #[serde(default)]
    pub kpi: Option<crate::kpi::config::KpiConfig>,
    /// `[[postbacks]]`: server-to-server conversion endpoints.
    #[serde(default)]
    pub postbacks: Vec<crate::server::postback::PostbackConfig>,
    /// The text and key spans the config was parsed from (for later errors).
    #[serde(skip)]
    pub source: Arc<SourceMap>,
}

/// Log output format (`[daemon] log_format`, `--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[daemon]`: where the daemon keeps things and how it runs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Directory of the sled store, the lock file and run state. Relative
    /// paths are relative to the config file. Default `data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Directory holding plugin libraries (`*.so`/`*.dylib`). Default `plugins`.
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// Directory for statements, KPI summaries and exports. Default `out`.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The reporting timezone (IANA name): day boundaries of reports and KPIs.
    /// Also the default timezone of connectors. Default `UTC`.
    #[serde(default)]
    pub timezone: Timezone,
    /// Address of the HTTP server (`/healthz`, `/status`, `/metrics`,
    /// postbacks). Default `127.0.0.1:9187` (loopback only).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// At most this many syncs run at once. Default 4.
    #[serde(default = "default_max_concurrent_syncs")]
    pub max_concurrent_syncs: u32,
    /// The HTTP server closes a connection whose request head (request
    /// line and headers) has not arrived within this many seconds of its
    /// opening or of its previous response (so also an idle kept-alive
    /// connection). Default 30.
    #[serde(default = "default_http_header_timeout_secs")]
    pub http_header_timeout_secs: u64,
    /// At most this many HTTP connections are open at once; more wait in
    /// the kernel's listen queue until one closes. Default 512; lowered to
    /// half of the process's open-file limit (`RLIMIT_NOFILE`) when that is
    /// smaller, so the store, syncs and commands keep file descriptors.
    #[serde(default = "default_max_http_connections")]
    pub max_http_connections: u32,
    /// Log format: `human` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// MiB of the store's pages the daemon keeps decoded in memory (sled's
    /// page cache; commands use [`crate::store::DEFAULT_CACHE_MB`]).
    /// Default 64. A cache as large as the store makes the daemon's
    /// incremental reconciliation about twice as fast on a large program,
    /// at that much memory (README, Sizing).
    #[serde(default = "default_store_cache_mb")]
    pub store_cache_mb: u64,
    /// A program whose stored decisions came due to change with time alone
    /// (a lock date or its `no_order_grace_days` passed) and that has had
    /// no reconcile run for this many seconds is re-judged by the daemon's
    /// clock ([`crate::reconcile::Clock`]), also while its syncs fail.
    /// Default 900; 1 to 86400. Applied again on SIGHUP.
    #[serde(default = "default_rejudge_interval_secs")]
    pub rejudge_interval_secs: u64,
    /// A bearer token `/status` and `/metrics` require (`Authorization:
    /// Bearer <token>`), as a secret reference (`{ secret = "env:NAME" }`
    /// or `"file:PATH"`). None (the default): they answer anyone who can
    /// reach `listen`. Applied again on SIGHUP.
    #[serde(default, deserialize_with = "status_token")]
    pub status_token: Option<crate::server::postback::SecretRef>,
}

/// A postback's `secret` reference, with the messages naming this key.
fn status_token<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::server::postback::SecretRef>, D::Error> {
    use serde::de::Error;
    crate::server::postback::SecretRef::deserialize(d)
        .map(Some)
        .map_err(|e| {
            D::Error::custom(e.to_string().replace(
                "`secret` is a secret: write `secret =",
                "`status_token` is a secret: write `status_token =",
            ))
        })
}

fn default_data_dir() -> PathBuf {
    "data".into()
}
fn default_plugin_dir() -> PathBuf {
    "plugins".into()
}
fn default_output_dir() -> PathBuf {
    "out".into()
}
/// The default `listen` address.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9187))
}
fn default_max_concurrent_syncs() -> u32 {
    4
}
/// The longest `http_header_timeout_secs`.
pub const MAX_HTTP_HEADER_TIMEOUT_SECS: u64 = 3600;

fn default_http_header_timeout_secs() -> u64 {
    30
}
fn default_max_http_connections() -> u32 {
    512
}
fn default_store_cache_mb() -> u64 {
    crate::store::DEFAULT_CACHE_MB
}
fn default_rejudge_interval_secs() -> u64 {
    900
}
/// The longest `rejudge_interval_secs`: a day.
pub const MAX_REJUDGE_INTERVAL_SECS: u64 = 86_400;
/// The largest `store_cache_mb`: 1 TiB.
pub const MAX_STORE_CACHE_MB: u64 = 1 << 20;
fn default_true() -> bool {
    true
}
fn default_max_requests_per_run() -> u64 {
    100_000
}

fn default_timeout_secs() -> u64 {
    30
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            data_dir: default_data_dir(),
            plugin_dir: default_plugin_dir(),
            output_dir: default_output_dir(),
            timezone: Timezone::default(),
            listen: default_listen(),
            max_concurrent_syncs: default_max_concurrent_syncs(),
            http_header_timeout_secs: default_http_header_timeout_secs(),
            max_http_connections: default_max_http_connections(),
            log_format: LogFormat::default(),
            store_cache_mb: default_store_cache_mb(),
            rejudge_interval_secs: default_rejudge_interval_secs(),
            status_token: None,
        }
    }
}

/// `[[connectors]]`: one configured instance of a plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Connector id: stamped on every record as its `source`; lower-case
    /// letters, digits, `_` and `-`.
    pub id: String,
    /// Manifest id of the plugin to run (see `reckon plugins list`).
    pub plugin: String,
    /// When to sync: a cron expression (5-field crontab, or 6/7 fields with
    /// seconds/year), evaluated in `timezone`.
    pub schedule: CronSchedule,
    /// Timezone the schedule and the sync window's days are in (IANA name).
    /// Default: `[daemon] timezone`.
    #[serde(default)]
    pub timezone: Option<Timezone>,
    /// Days re-pulled before the last checkpoint on every run (late
    /// conversions, restated spend). At most [`MAX_LOOKBACK_DAYS`] (3650,
    /// about ten years). Default: the plugin's stream default.
    #[serde(default)]
    pub lookback_days: Option<u32>,
    /// Longest window, in days, one plugin session covers: a run's days are
    /// split into windows this long. At most the plugin's own
    /// `max_window_days`; lower it to keep each session (and what a failed
    /// session re-pulls) smaller. (Impact's 10 × `page_size` cap needs no
    /// change here: that plugin splits a refused range itself.) Default:
    /// the plugin's `max_window_days` (unlimited when it has none).
    #[serde(default)]
    pub window_days: Option<u32>,
    /// `subprocess` (default: a crash kills only a child process) or
    /// `in_process`.
    #[serde(default)]
    pub isolation: crate::plugins::Isolation,
    /// Our own request limit, e.g. `{ requests = 10, per_secs = 1 }`.
    /// Default: unlimited (the platform's 429s are still honoured).
    #[serde(default)]
    pub rate_limit: Option<crate::plugins::RateLimit>,
    /// Timeout of one HTTP request, in seconds. Default 30.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Most requests the plugin may ask for in one run (one `sync` or one
    /// scheduled fire). A plugin that pages forever fails there instead of
    /// hammering the platform. Default 100,000.
    #[serde(default = "default_max_requests_per_run")]
    pub max_requests_per_run: u64,
    /// Optional SHA-256 (hex) the plugin library must match before it is loaded.
    #[serde(default)]
    pub sha256: Option<String>,
    /// `false` keeps the connector configured but never scheduled. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Plugin settings, validated against the plugin's config schema. Secrets
    /// only as references: `{ secret = "env:NAME" }` or `{ secret = "file:PATH" }`.
    /// Every HTTP connector accepts `base_url` (default: the platform's URL).
    #[serde(default)]
    pub settings: toml::Table,
}

impl ConnectorConfig {
    /// The connector's timezone (its own, else the daemon's).
    pub fn tz(&self, daemon: &DaemonConfig) -> chrono_tz::Tz {
        self.timezone.unwrap_or(daemon.timezone).0
    }
}

/// The largest `lookback_days` accepted: about ten years. A longer history
/// is a backfill (`reckon sync ID --from --to`), not a lookback.
pub const MAX_LOOKBACK_DAYS: u32 = 3650;

const ROOT_KEYS: &[&str] = &["daemon", "connectors", "programs", "fx", "kpi", "postbacks"];

fn de_item<T: serde::de::DeserializeOwned>(
    item: &toml_edit::Item,
) -> Result<T, toml_edit::de::Error> {
    let value = match item.clone() {
        toml_edit::Item::Value(v) => v,
        other => match other.into_value() {
            Ok(v) => v,
            Err(_) => {
                return Err(serde::de::Error::custom(
                    "expected a table or a value, found an array of tables",
                ))
            }
        },
    };
    T::deserialize(value.into_deserializer())
}

/// Deserializes one section, reporting every key that fails: after an
/// error at a key, that key is removed, as deep as it sits (a rule's
/// `percent`, not the whole `commission` table around it), and the section
/// tried again, so one typo does not hide the next, nor the checks of the
/// keys around it. Returns the value built from the keys that did
/// deserialize (for the semantic checks; the errors already reject the file).
fn de_section<T: serde::de::DeserializeOwned>(
    item: &toml_edit::Item,
    path: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let mut item = item.clone();
    let mut removed_keys: Vec<String> = Vec::new();
    for _ in 0..64 {
        match de_item::<T>(&item) {
            Ok(v) => return Some(v),
            Err(e) => {
                let span = e.span();
                let at = span
                    .clone()
                    .and_then(|s| map.path_at(s.start))
                    .filter(|p| p.starts_with(path) && p.len() > path.len())
                    .unwrap_or_else(|| path.to_owned());
                // A required field we removed ourselves is not also
                // "missing": drop the table that lacks it instead (a
                // rule's whole array; the section itself when it is
                // the section's own key).
                let echo = removed_keys
                    .iter()
                    .any(|k| e.message() == format!("missing field `{k}`"));
                if echo && at == path {
                    return None;
                }
                if !echo {
                    let mut message =
                        source::explain_serde_message(e.message(), least_whole_number(&at));
                    let mut at = at.clone();
                    let mut span = span.or_else(|| map.span_of(path));
                    // serde names the list, not the entry lacking the
                    // field: name the entry and its id (new-user QA16 N5).
                    let lacking = e
                        .message()
                        .strip_prefix("missing field `")
                        .and_then(|f| f.strip_suffix('`'))
                        .zip(at.strip_prefix(path).and_then(|r| r.strip_prefix('.')))
                        .and_then(|(field, rest)| lacking_entry(&item, &key_path(rest), field));
                    if let Some((i, id)) = lacking {
                        at = format!("{at}[{i}]");
                        span = map.span_of(&at).or(span);
                        if let Some(id) = id {
                            message = format!("(id `{id}`): {message}");
                        }
                    }
                    errors.push(map.error_at(span, &at, message));
                }
                let rest = at.strip_prefix(path).and_then(|r| r.strip_prefix('.'))?;
                let mut parts = key_path(rest);
                // An array's element (`summaries.by[1]`, `rules[0]`):
                // the whole array, so no index shifts under a later error.
                while matches!(parts.last(), Some(KeyPart::Index(_))) {
                    parts.pop();
                }
                let removed = remove_in_item(&mut item, &parts)
                    .or_else(|| remove_in_item(&mut item, &parts[..parts.len().min(1)]))?;
                removed_keys.push(removed);
            }
        }
    }
    None
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq)]
enum KeyPart {
    Key(String),
    Index(usize),
}

/// Splits a key path as [`SourceMap`] writes it (`rules[0].percent`,
/// `partner_groups."a.b"[2]`) into its steps.
fn key_path(path: &str) -> Vec<KeyPart> {
    let mut parts = Vec::new();
    let mut chars = path.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '.' => {
                chars.next();
            }
            '[' => {
                chars.next();
                let n: String = chars.by_ref().take_while(|c| *c != ']').collect();
                match n.parse() {
                    Ok(i) => parts.push(KeyPart::Index(i)),
                    Err(_) => return parts,
                }
            }
            '"' => {
                chars.next();
                let mut key = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => key.extend(chars.next()),
                        '"' => break,
                        c => key.push(c),
                    }
                }
                parts.push(KeyPart::Key(key));
            }
            _ => {
                let mut key = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    key.push(c);
                    chars.next();
                }
                parts.push(KeyPart::Key(key));
            }
        }
    }
    parts
}

/// Removes the key at `parts` (outermost first) from `item`; its name if
/// it was there.
fn remove_in_item(item: &mut toml_edit::Item, parts: &[KeyPart]) -> Option<String> {
    match (item, parts.first()?) {
        (toml_edit::Item::ArrayOfTables(a), KeyPart::Index(i)) => {
            remove_in_table(a.get_mut(*i)?, &parts[1..])
        }
        (toml_edit::Item::Value(v), _) => remove_in_value(v, parts),
        (item, KeyPart::Key(_)) => remove_in_table(item.as_table_like_mut()?, parts),
        _ => None,
    }
}

fn remove_in_value(value: &mut toml_edit::Value, parts: &[KeyPart]) -> Option<String> {
    match (value, parts.first()?) {
        (toml_edit::Value::Array(a), KeyPart::Index(i)) => {
            remove_in_value(a.get_mut(*i)?, &parts[1..])
        }
        (toml_edit::Value::InlineTable(t), KeyPart::Key(_)) => remove_in_table(t, parts),
        _ => None,
    }
}

fn remove_in_table(table: &mut dyn toml_edit::TableLike, parts: &[KeyPart]) -> Option<String> {
    let (KeyPart::Key(key), rest) = parts.split_first()? else {
        return None;
    };
    if rest.is_empty() {
        return table.remove(key).map(|_| key.clone());
    }
    remove_in_item(table.get_mut(key)?, rest)
}

/// The first table of the list at `parts` that lacks `field`: its index,
/// and its `id` if it has one.
fn lacking_entry(
    item: &toml_edit::Item,
    parts: &[KeyPart],
    field: &str,
) -> Option<(usize, Option<String>)> {
    let found = |tables: Vec<&dyn toml_edit::TableLike>| {
        let i = tables.iter().position(|t| !t.contains_key(field))?;
        let id = tables[i]
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        Some((i, id))
    };
    match (item, parts.split_first()) {
        (toml_edit::Item::ArrayOfTables(a), None) => {
            found(a.iter().map(|t| t as &dyn toml_edit::TableLike).collect())
        }
        (toml_edit::Item::Value(toml_edit::Value::Array(a)), None) => found(
            a.iter()
                .map(|v| v.as_inline_table().map(|t| t as &dyn toml_edit::TableLike))
                .collect::<Option<Vec<_>>>()?,
        ),
        (_, Some((KeyPart::Key(k), rest))) => {
            lacking_entry(item.as_table_like()?.get(k)?, rest, field)
        }
        (toml_edit::Item::ArrayOfTables(a), Some((KeyPart::Index(i), rest))) => {
            lacking_entry(&toml_edit::Item::Table(a.get(*i)?.clone()), rest, field)
        }
        _ => None,
    }
}

fn items_of(item: &toml_edit::Item) -> Option<Vec<toml_edit::Item>> {
    match item {
        toml_edit::Item::ArrayOfTables(a) => Some(
            a.iter()
                .map(|t| toml_edit::Item::Table(t.clone()))
                .collect(),
        ),
        toml_edit::Item::Value(toml_edit::Value::Array(a)) => Some(
            a.iter()
                .map(|v| toml_edit::Item::Value(v.clone()))
                .collect(),
        ),
        _ => None,
    }
}

/// What is wrong with `code` as a currency of the config (a program's
/// `currency`, a commission's `payout_currency`), if anything: one check
/// and one message for both. A known code in lower case is told its
/// upper-case spelling (QA20 R20-9: `payout_currency = "usd"` was called
/// "not an active ISO-4217 code").
pub fn currency_problem(code: &str) -> Option<String> {
    if plugin_api::currency::is_known(code) {
        return None;
    }
    let upper = code.trim().to_ascii_uppercase();
    let prefix = upper.get(..3).filter(|p| plugin_api::currency::is_known(p));
    Some(if plugin_api::currency::is_known(&upper) {
        format!("`{code}` is not an ISO-4217 code; use the upper-case code \"{upper}\"")
    } else if let Some(p) = prefix {
        format!("`{code}` is not an active ISO-4217 code; did you mean \"{p}\"?")
    } else {
        format!("`{code}` is not an active ISO-4217 code; use an upper-case code such as \"USD\"")
    })
}

/// Parses and checks a config file's text. Pure but for the clock (see
/// [`parse_at`]): no file, plugin or environment access. Relative paths in
/// `[daemon]` are made relative to the directory of `file`.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    parse_at(text, file, chrono::Utc::now())
}

/// The parser's message on one line (it can span two: "invalid table
/// header\nduplicate key `x` in document root"), and for a table defined
/// twice, where it first was: the error points at the second header, while
/// the mistake is often above it, e.g. `[[connector]]` followed by
/// `[connectors.settings]` (ops QA13 OPS-10).
fn toml_error_message(message: &str, text: &str, at: usize) -> String {
    let mut msg = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let Some(key) = msg
        .split_once("duplicate key `")
        .and_then(|(_, rest)| rest.split_once("` in document root"))
        .map(|(key, _)| key.to_owned())
    else {
        return msg;
    };
    let before = &text[..at.min(text.len())];
    // Headers above the error: (line number, header text, first key).
    let headers: Vec<(usize, &str, &str)> = before
        .lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let header = line.split('#').next()?.trim();
            let inner = header.strip_prefix('[')?.trim_start_matches('[');
            let first = inner.split(['.', ']']).next()?.trim().trim_matches('"');
            Some((n + 1, header, first))
        })
        .collect();
    let Some(&(line, header, _)) = headers.iter().find(|(_, _, first)| *first == key) else {
        return msg;
    };
    msg.push_str(&format!(
        "; `{key}` was first defined by `{header}` at line {line}"
    ));
    let entry = format!("[[{key}]]");
    if header == entry {
        msg.push_str(&format!(
            ": `{key}` is a list, each of its entries starts with `{entry}`"
        ));
    } else if header == format!("[{key}]") {
        msg.push_str(&format!(": write `{header}` once"));
    } else if let Some(&(above, above_header, _)) = headers.iter().rev().find(|(n, _, _)| *n < line)
    {
        msg.push_str(&format!(
            ", which belongs to `{above_header}` at line {above}: is that header misspelled?"
        ));
    }
    msg
}

/// [`parse`] at a given time: `now` is when each schedule must still have a
/// next fire time.
pub fn parse_at(
    text: &str,
    file: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Config, ConfigErrors> {
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let map = SourceMap::unparsed(file, text);
            let at = e.span().map_or(0, |s| s.start);
            return Err(ConfigErrors(vec![map.error_at(
                e.span(),
                "",
                format!(
                    "malformed TOML: {}",
                    toml_error_message(e.message(), text, at)
                ),
            )]));
        }
    };
    let map = SourceMap::new(file, text, doc.as_table());
    let mut errors: Vec<ConfigError> = Vec::new();

    let root = doc.as_table();
    let mut cfg = Config {
        daemon: DaemonConfig::default(),
        connectors: Vec::new(),
        programs: Vec::new(),
        fx: None,
        kpi: None,
        postbacks: Vec::new(),
        source: Arc::new(SourceMap::default()),
    };
    // (connector, its index in the file) for the checks below.
    let mut connectors: Vec<(usize, ConnectorConfig)> = Vec::new();
    let mut postbacks: Vec<(usize, crate::server::postback::PostbackConfig)> = Vec::new();
    // Ids of connectors and endpoints whose own section has errors (already
    // reported): a program or rule naming one is not also "unknown".
    let mut unparsed: Vec<String> = Vec::new();
    for (key, item) in root.iter() {
        match key {
            "daemon" => {
                if let Some(d) = de_section::<DaemonConfig>(item, "daemon", &map, &mut errors) {
                    cfg.daemon = d;
                }
            }
            "fx" => cfg.fx = de_section(item, "fx", &map, &mut errors),
            "kpi" => cfg.kpi = de_section(item, "kpi", &map, &mut errors),
            "connectors" | "programs" | "postbacks" => {
                let Some(items) = items_of(item) else {
                    errors
                        .push(map.error(key, format!("expected an array of tables (`[[{key}]]`)")));
                    continue;
                };
                for (i, it) in items.iter().enumerate() {
                    let path = format!("{key}[{i}]");
                    match key {
                        "connectors" => {
                            if let Some(c) = de_section(it, &path, &map, &mut errors) {
                                connectors.push((i, c));
                            } else if let Some(id) = it.get("id").and_then(|v| v.as_str()) {
                                unparsed.push(id.to_owned());
                            }
                        }
                        "programs" => {
                            if let Some(p) = de_section(it, &path, &map, &mut errors) {
                                cfg.programs.push(p);
                            }
                        }
                        _ => {
                            if let Some(p) = de_section(it, &path, &map, &mut errors) {
                                postbacks.push((i, p));
                            } else if let Some(id) = it.get("id").and_then(|v| v.as_str()) {
                                unparsed.push(id.to_owned());
                            }
                        }
                    }
                }
            }
            other => {
                let hint = match source::nearest(other, ROOT_KEYS.iter().copied()) {
                    Some(n) => format!("; did you mean `{n}`?"),
                    None => String::new(),
                };
                let span = root.get_key_value(other).and_then(|(k, _)| k.span());
                errors.push(map.error_at(
                    span,
                    other,
                    format!(
                        "unknown section `{other}`{hint} (valid: {})",
                        ROOT_KEYS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }

    // The keys serde refused were removed before the checks below: those
    // checks must not also call them missing.
    let refused: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
    let serde_errors = errors.len();
    check_semantics(now, &cfg.daemon, &connectors, &map, &mut errors);
    let connector_ids = connectors.iter().map(|(_, c)| c.id.as_str());
    crate::server::postback::check_semantics(&postbacks, connector_ids, &map, &mut errors);
    cfg.postbacks = postbacks.into_iter().map(|(_, p)| p).collect();
    cfg.connectors = connectors.into_iter().map(|(_, c)| c).collect();
    check_programs(now, &cfg, &unparsed, &map, &mut errors);
    check_kpi(now, &cfg, &unparsed, &map, &mut errors);
    let mut checked = errors.split_off(serde_errors);
    checked.retain(|e| !repeats_refused_key(e, &refused) && !follows_refused_rules(e, &refused));
    errors.append(&mut checked);
    for p in &mut cfg.programs {
        p.default_timezone = Some(cfg.daemon.timezone.0);
        p.mirrors = (cfg.postbacks.iter())
            .filter(|pb| p.claims.contains(&pb.id))
            .filter_map(|pb| Some((pb.id.clone(), pb.mirrors.clone()?)))
            .collect();
    }

    // Empty paths would silently mean the config file's own directory.
    for (key, path) in [
        ("daemon.data_dir", &cfg.daemon.data_dir),
        ("daemon.plugin_dir", &cfg.daemon.plugin_dir),
        ("daemon.output_dir", &cfg.daemon.output_dir),
    ] {
        if path.as_os_str().is_empty() {
            errors.push(map.error(
                key,
                "must name a directory (relative paths are relative to the config file)",
            ));
        }
    }
    // Relative paths are relative to the config file.
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    for p in [
        &mut cfg.daemon.data_dir,
        &mut cfg.daemon.plugin_dir,
        &mut cfg.daemon.output_dir,
    ] {
        if p.is_relative() && !base.as_os_str().is_empty() {
            // Collected from components: `demo` and `.` make `demo`, not
            // `demo/.` (paths in messages read `demo/./statements/…`).
            *p = base.join(&*p).components().collect();
        }
    }
    // Both are created when missing; something else in their place fails
    // every command (data_dir) or every post-sync hook (output_dir).
    for (key, dir) in [
        ("data_dir", &cfg.daemon.data_dir),
        ("output_dir", &cfg.daemon.output_dir),
    ] {
        let what = if dir.is_file() {
            "is a file, not a directory"
        } else if dir.exists() && !dir.is_dir() {
            "exists and is not a directory"
        } else {
            continue;
        };
        errors.push(map.error(
            &format!("daemon.{key}"),
            format!(
                "{} {what}; point {key} at a directory (it is created when missing)",
                dir.display()
            ),
        ));
    }
    if let Some(fx) = &cfg.fx {
        for (key, message) in crate::fx::FxTable::problems(fx, base) {
            errors.push(map.error(&key, message));
        }
        for (first, later) in crate::fx::FxTable::repeated_rates(fx) {
            let first_at = map
                .span_of(&format!("fx.rates[{first}].date"))
                .map(|r| format!("line {}", map.line_col(r.start).0))
                .unwrap_or_else(|| "above".into());
            errors.push(map.error(
                &format!("fx.rates[{later}].date"),
                crate::fx::FxTable::repeated_rate_message(fx, first, later, &first_at),
            ));
        }
    }
    cfg.source = Arc::new(map);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        errors.sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
        Err(ConfigErrors(errors))
    }
}

/// Whether a check's error is about a key serde already refused (and
/// [`de_section`] removed): an error at the refused key's table that names
/// it, e.g. "kind = \"percent\" needs `percent`" after `percent = 7.5` was
/// refused as a float. One mistake, one message.
fn repeats_refused_key(e: &ConfigError, refused: &[String]) -> bool {
    refused.iter().any(|r| {
        let Some((table, key)) = r.rsplit_once('.') else {
            return false;
        };
        let key = key.split('[').next().unwrap_or(key);
        e.path == table && e.message.contains(&format!("`{key}`"))
    })
}

/// Whether a check's error is an override naming a rule of a `rules` list
/// serde refused (and [`de_section`] removed whole): the rule may well be
/// there (new-user QA16 N5: "rule `cps-default` is not defined in rules"
/// after another rule lacked `effective_from`).
fn follows_refused_rules(e: &ConfigError, refused: &[String]) -> bool {
    let Some((commission, _)) = e.path.split_once(".overrides[") else {
        return false;
    };
    e.message.contains("is not defined in rules")
        && refused
            .iter()
            .any(|r| r.starts_with(&format!("{commission}.rules")))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Whole-number keys that `check_semantics` refuses at 0 (`connectors[]`
/// stands for every connector): the message for a negative value names 1
/// as the least, not serde's 0, which the user would then be refused
/// (QA30-C L5).
const AT_LEAST_ONE: [&str; 10] = [
    "daemon.max_concurrent_syncs",
    "daemon.http_header_timeout_secs",
    "daemon.max_http_connections",
    "daemon.store_cache_mb",
    "daemon.rejudge_interval_secs",
    "connectors[].max_requests_per_run",
    "connectors[].timeout_secs",
    "connectors[].window_days",
    "connectors[].rate_limit.requests",
    "connectors[].rate_limit.per_secs",
];

/// The least whole number the key at `path` takes: 1 for [`AT_LEAST_ONE`],
/// else 0.
fn least_whole_number(path: &str) -> u32 {
    // `connectors[3].timeout_secs` -> `connectors[].timeout_secs`.
    let mut key = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                key.push(c);
            }
            ']' => {
                in_index = false;
                key.push(c);
            }
            _ if in_index => {}
            _ => key.push(c),
        }
    }
    u32::from(AT_LEAST_ONE.contains(&key.as_str()))
}

/// Refuses `value` of `key` at 0 (`zero`: the message) or above `max`
/// (`over`: the message).
fn within(
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
    key: &str,
    value: u64,
    max: u64,
    zero: &str,
    over: impl FnOnce() -> String,
) {
    if value == 0 {
        errors.push(map.error(key, zero));
    } else if value > max {
        errors.push(map.error(key, over()));
    }
}

fn check_semantics(
    now: chrono::DateTime<chrono::Utc>,
    daemon: &DaemonConfig,
    connectors: &[(usize, ConnectorConfig)],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) {
    if daemon.max_concurrent_syncs == 0 {
        errors.push(map.error("daemon.max_concurrent_syncs", "must be at least 1"));
    }
    // QA24 F2: near u64::MAX the server's deadline overflowed and every
    // connection panicked in hyper.
    let v = daemon.http_header_timeout_secs;
    within(
        map,
        errors,
        "daemon.http_header_timeout_secs",
        v,
        MAX_HTTP_HEADER_TIMEOUT_SECS,
        "must be at least 1",
        || {
            format!(
        "{v} is more than {MAX_HTTP_HEADER_TIMEOUT_SECS} seconds (an hour): a client that sends nothing would hold a connection that long; the default is 30"
    )
        },
    );
    if daemon.max_http_connections == 0 {
        errors.push(map.error("daemon.max_http_connections", "must be at least 1"));
    }
    let (v, default) = (daemon.store_cache_mb, crate::store::DEFAULT_CACHE_MB);
    within(
        map,
        errors,
        "daemon.store_cache_mb",
        v,
        MAX_STORE_CACHE_MB,
        &format!("must be at least 1 (MiB); the default is {default}"),
        || {
            format!(
        "{v} MiB is more than {MAX_STORE_CACHE_MB} (1 TiB): the cache is held in memory; set at most the store's size (`du -sh <data_dir>/store`) and less than the machine's memory"
    )
        },
    );
    let v = daemon.rejudge_interval_secs;
    within(
        map,
        errors,
        "daemon.rejudge_interval_secs",
        v,
        MAX_REJUDGE_INTERVAL_SECS,
        "must be at least 1 (seconds); the default is 900",
        || {
            format!(
        "{v} seconds is more than {MAX_REJUDGE_INTERVAL_SECS} (a day): payable counts and outcomes would lag their lock dates and grace periods that long while no sync runs; the default is 900"
    )
        },
    );
    let mut seen = std::collections::BTreeMap::new();
    for (i, c) in connectors {
        let i = *i;
        let p = |k: &str| format!("connectors[{i}].{k}");
        if !valid_id(&c.id) {
            errors.push(map.error(
                &p("id"),
                format!(
                    "invalid connector id `{}`: use 1-64 lower-case letters, digits, `_` or `-`",
                    c.id
                ),
            ));
        }
        if let Some(prev) = seen.insert(c.id.clone(), i) {
            errors.push(map.error(
                &p("id"),
                format!(
                    "duplicate connector id `{}` (also `connectors[{prev}]`); ids must be unique",
                    c.id
                ),
            ));
        }
        if c.max_requests_per_run == 0 {
            errors.push(map.error(&p("max_requests_per_run"), "must be at least 1"));
        }
        if c.timeout_secs == 0 {
            errors.push(map.error(&p("timeout_secs"), "must be at least 1 second"));
        }
        if c.window_days == Some(0) {
            errors.push(map.error(&p("window_days"), "must be at least 1 day"));
        }
        if let Some(days) = c.lookback_days.filter(|d| *d > MAX_LOOKBACK_DAYS) {
            errors.push(map.error(
                &p("lookback_days"),
                format!(
                    "{days} days is more than the maximum of {MAX_LOOKBACK_DAYS} (about ten years); \
                     pull older history once with `reckon sync {} --from DATE --to DATE`",
                    c.id
                ),
            ));
        }
        let tz = c.tz(daemon);
        if c.schedule.next_after(tz, now).is_none() {
            errors.push(map.error(
                &p("schedule"),
                format!(
                    "schedule `{}` of connector `{}` never fires (no fire time from now on, in {}); \
                     write one that does, e.g. `0 */6 * * *`",
                    c.schedule.expr,
                    c.id,
                    tz.name()
                ),
            ));
        }
        if let Some(why) = c.schedule.sub_minute() {
            errors.push(map.error(
                &p("schedule"),
                format!(
                    "schedule `{}` of connector `{}` {why}",
                    c.schedule.expr, c.id
                ),
            ));
        }
        if let Some(rl) = c.rate_limit {
            if rl.requests == 0 || rl.per_secs == 0 {
                errors.push(map.error(
                    &p("rate_limit"),
                    "`requests` and `per_secs` must both be at least 1",
                ));
            } else if rl.per_secs > 86_400 {
                // QA25: `per_secs = 4294967295` was accepted, a second
                // request then waited 136 years.
                errors.push(map.error(
                    &p("rate_limit"),
                    format!(
                        "`per_secs` {} is more than a day (86400): a budget per day is `per_secs = 86400`",
                        rl.per_secs
                    ),
                ));
            }
        }
        if let Some(sha) = &c.sha256 {
            if sha.len() != 64 || !sha.chars().all(|ch| ch.is_ascii_hexdigit()) {
                errors.push(map.error(
                    &p("sha256"),
                    "expected 64 hexadecimal characters (the output of `sha256sum`)",
                ));
            }
        }
        for (k, v) in &c.settings {
            check_secret_refs(v, &format!("connectors[{i}].settings.{k}"), map, errors);
        }
    }
}

/// Where a program may take claims from: connectors and postback endpoints
/// (a postback endpoint's id is the `source` of the conversions it stores).
fn claim_sources(cfg: &Config) -> Vec<&str> {
    cfg.connectors
        .iter()
        .map(|c| c.id.as_str())
        .chain(cfg.postbacks.iter().map(|p| p.id.as_str()))
        .collect()
}

/// Connector and postback ids refused as invalid by their own error: "no
/// connector with id" errors neither list nor suggest them (ops QA13
/// OPS-9: `Cake` was suggested for `cake` right after `Cake` was refused).
fn refused_ids(cfg: &Config) -> Vec<&str> {
    let postbacks = cfg
        .postbacks
        .iter()
        .filter(|p| p.problems().iter().any(|(field, _)| *field == "id"))
        .map(|p| p.id.as_str());
    cfg.connectors
        .iter()
        .map(|c| c.id.as_str())
        .filter(|id| !valid_id(id))
        .chain(postbacks)
        .collect()
}

/// "unknown connector `x`; did you mean `y`? (configured: ...)".
/// `known` as configured; each is listed once (a duplicate id was listed
/// twice), and none of `refused`. A plugin id given for a connector id
/// names the connectors running that plugin (new-user QA16 N6).
fn unknown_connector(
    cfg: &Config,
    id: &str,
    known: &[&str],
    refused: &[&str],
    what: &str,
) -> String {
    let mut listed: Vec<&str> = Vec::with_capacity(known.len());
    for k in known {
        if !refused.contains(k) && !listed.contains(k) {
            listed.push(k);
        }
    }
    // Not an id given twice: it is refused itself (QA17 NEW-1).
    let running: Vec<String> = listed
        .iter()
        .filter(|k| {
            let mut with_id = cfg.connectors.iter().filter(|c| c.id == **k);
            with_id.next().is_some_and(|c| c.plugin == id) && with_id.next().is_none()
        })
        .map(|k| format!("`{k}`"))
        .collect();
    if !running.is_empty() {
        return format!(
            "no {what} with id `{id}`: `{id}` is a plugin; write the id of the connector running it: {}",
            running.join(", ")
        );
    }
    let hint = source::not_configured(id, &listed);
    format!("no {what} with id `{id}`{hint}; add it or fix the id")
}

/// "`a`, `b`", or "none".
fn id_list(ids: &[&str]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `[[programs]]`: each program's own rules (reconcile's validator), its
/// commission rules (payout's validator), and that every connector it names
/// is configured.
fn check_programs(
    now: chrono::DateTime<chrono::Utc>,
    cfg: &Config,
    unparsed: &[String],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) {
    for (i, e) in crate::reconcile::config::programs_problems(&cfg.programs) {
        errors.push(map.error(&format!("programs[{i}].{}", e.field), e.message));
    }
    let claim_sources = claim_sources(cfg);
    let order_sources: Vec<&str> = cfg.connectors.iter().map(|c| c.id.as_str()).collect();
    let refused = refused_ids(cfg);
    for (i, p) in cfg.programs.iter().enumerate() {
        for (j, id) in p.claims.iter().enumerate() {
            if !claim_sources.contains(&id.as_str()) && !unparsed.contains(id) {
                errors.push(map.error(
                    &format!("programs[{i}].claims[{j}]"),
                    unknown_connector(
                        cfg,
                        id,
                        &claim_sources,
                        &refused,
                        "connector or postback endpoint",
                    ),
                ));
            }
        }
        for (j, id) in p.orders.iter().enumerate() {
            if cfg.postbacks.iter().any(|p| &p.id == id) {
                errors.push(map.error(
                    &format!("programs[{i}].orders[{j}]"),
                    format!("`{id}` is a postback endpoint: postbacks carry claims (conversions), not orders; list it under `claims`"),
                ));
            } else if !order_sources.contains(&id.as_str()) && !unparsed.contains(id) {
                errors.push(map.error(
                    &format!("programs[{i}].orders[{j}]"),
                    unknown_connector(cfg, id, &order_sources, &refused, "connector"),
                ));
            }
        }
        let draft = p.commission.as_ref().and_then(|c| {
            let expr = c.draft_schedule.as_ref()?;
            let tz = c.clone().with_default_timezone(cfg.daemon.timezone.0).tz();
            Some((
                expr,
                <CronSchedule as std::str::FromStr>::from_str(expr).ok()?,
                tz,
            ))
        });
        if let Some((expr, schedule, _)) = &draft {
            if let Some(why) = schedule.sub_minute() {
                errors.push(map.error(
                    &format!("programs[{i}].commission.draft_schedule"),
                    format!("schedule `{expr}` of program `{}` {why}", p.id),
                ));
            }
        }
        if let Some((expr, schedule, tz)) = draft {
            if schedule.next_after(tz, now).is_none() {
                errors.push(map.error(
                    &format!("programs[{i}].commission.draft_schedule"),
                    format!(
                        "schedule `{expr}` never fires (no fire time from now on, in {}); write one that does, e.g. `0 6 * * *`",
                        tz.name()
                    ),
                ));
            }
        }
        // `source_priority` must name claim connectors (checked above), so an
        // unknown id there is reported at `claims` or as "not one of claims".
        if let Some(c) = &p.commission {
            for e in c.problems(&p.id) {
                // `entry` is a key (`timezone`) or `rules[2] (id `cps`)`.
                let (key, rest) = e.entry.split_once(' ').unwrap_or((e.entry.as_str(), ""));
                let message = if rest.is_empty() {
                    e.message
                } else {
                    format!("{rest}: {}", e.message)
                };
                errors.push(map.error(&format!("programs[{i}].commission.{key}"), message));
            }
            for (key, entry) in partner_refs(c) {
                if let Some(mut message) = unknown_partner_network(entry, &p.claims) {
                    // A manual adjustment names one payee: no bare id.
                    if key.starts_with("manual_adjustments") {
                        message = message.replace(", or the bare partner id for every network", "");
                    }
                    errors.push(map.error(&format!("programs[{i}].commission.{key}"), message));
                }
            }
        }
    }
}

/// Every partner entry of a commission section (`partner_groups` members,
/// `rules[].partners`, `bonuses[].partners`, `overrides[].partner`,
/// `manual_adjustments[].partner`), each
/// with its key path under `commission`, in config order.
fn partner_refs(c: &crate::payout::config::CommissionConfig) -> Vec<(String, &str)> {
    fn list<'a>(key: &str, ids: &'a [String]) -> impl Iterator<Item = (String, &'a str)> {
        let key = key.to_owned();
        ids.iter()
            .enumerate()
            .map(move |(j, id)| (format!("{key}[{j}]"), id.as_str()))
    }
    let mut out = Vec::new();
    for (name, members) in &c.partner_groups {
        out.extend(list(&source::join("partner_groups", name), members));
    }
    for (i, r) in c.rules.iter().enumerate() {
        out.extend(list(&format!("rules[{i}].partners"), &r.partners));
    }
    for (i, b) in c.bonuses.iter().enumerate() {
        out.extend(list(&format!("bonuses[{i}].partners"), &b.partners));
    }
    for (i, o) in c.overrides.iter().enumerate() {
        out.push((format!("overrides[{i}].partner"), o.partner.as_str()));
    }
    for (i, m) in c.manual_adjustments.iter().enumerate() {
        out.push((
            format!("manual_adjustments[{i}].partner"),
            m.partner.as_str(),
        ));
    }
    out
}

/// A partner entry `network:id` matches only that network's partners
/// (`payout::rules::names_partner`), so a network that is not one of the
/// program's `claims` makes it match nothing: a typo would silently disable
/// a rule, bonus or override. A bare id (no `:`, or a prefix that cannot be
/// an id) matches the id on every network and cannot be checked.
fn unknown_partner_network(entry: &str, claims: &[String]) -> Option<String> {
    let (network, partner) = entry.split_once(':')?;
    let id_like = !network.is_empty()
        && network
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !id_like || claims.iter().any(|c| c == network) {
        return None;
    }
    let known: Vec<&str> = claims.iter().map(String::as_str).collect();
    let how = "write `<claims connector>:<partner id>`, or the bare partner id for every network";
    let fix = match source::nearest(network, known.iter().copied()) {
        Some(n) => format!("did you mean `{n}:{partner}`? ({how})"),
        None => how.to_owned(),
    };
    let list = id_list(&known);
    Some(format!(
        "`{network}` is not one of this program's claims connectors ({list}), so `{entry}` matches no partner; {fix}"
    ))
}

/// `[kpi]`: the KPI module's own checks, and that every
/// `[[kpi.attribution]] connector` is configured.
fn check_kpi(
    now: chrono::DateTime<chrono::Utc>,
    cfg: &Config,
    unparsed: &[String],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) {
    let Some(kpi) = &cfg.kpi else {
        return;
    };
    if kpi.summaries.enabled {
        if let Ok(s) = crate::kpi::summary::parse_schedule(&kpi.summaries.schedule) {
            if let Some(why) = s.sub_minute() {
                errors.push(map.error(
                    "kpi.summaries.schedule",
                    format!("schedule `{}` {why}", kpi.summaries.schedule),
                ));
            }
            if s.next_after(chrono_tz::UTC, now).is_none() {
                errors.push(map.error(
                    "kpi.summaries.schedule",
                    format!(
                        "schedule `{}` never fires (no fire time from now on); write one that does, e.g. `0 6 * * *`",
                        kpi.summaries.schedule
                    ),
                ));
            }
        }
    }
    for (path, message) in kpi.problems() {
        errors.push(map.error(&format!("kpi.{path}"), message));
    }
    let connectors: Vec<&str> = cfg.connectors.iter().map(|c| c.id.as_str()).collect();
    for (j, rule) in kpi.attribution.iter().enumerate() {
        if !rule.connector.trim().is_empty()
            && !connectors.contains(&rule.connector.as_str())
            && !unparsed.contains(&rule.connector)
        {
            errors.push(map.error(
                &format!("kpi.attribution[{j}].connector"),
                unknown_connector(
                    cfg,
                    &rule.connector,
                    &connectors,
                    &refused_ids(cfg),
                    "connector",
                ),
            ));
        }
    }
}

fn check_secret_refs(v: &toml::Value, path: &str, map: &SourceMap, errors: &mut Vec<ConfigError>) {
    if let toml::Value::Table(t) = v {
        if t.contains_key("secret") {
            if let Err(m) = SecretRef::from_toml(v) {
                errors.push(map.error(path, m));
            }
        } else {
            for (k, v) in t {
                check_secret_refs(v, &format!("{path}.{k}"), map, errors);
            }
        }
    }
}

/// The config file read when neither `--config` nor `RECKON_CONFIG` names
/// one.
pub const DEFAULT_CONFIG: &str = "reckon.toml";

/// Largest config file read (a config of hundreds of connectors is tens
/// of KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Reads a config file: a regular file of at most [`MAX_CONFIG_BYTES`]. A
/// device, pipe or socket is refused without being read (QA28-E F7: the
/// daemon read `/dev/zero`, named as the config of a command-socket
/// request, into memory until the host ran out), opened without blocking
/// so a FIFO with no writer cannot hang it either.
fn read_config_text(path: &Path) -> std::io::Result<Result<String, String>> {
    read_regular_text(path, MAX_CONFIG_BYTES, "the TOML file", "a Reckon config")
}

/// Reads a file a config names: a regular file of at most `max` bytes
/// (`what` names the file to give, `kind` what a larger one is not). A
/// device, pipe or socket is refused without being read, and it is opened
/// without blocking, so a FIFO with no writer cannot hang the reader
/// (QA29-D H2: `[fx] rates_csv = "/dev/zero"` read 4.6 GB in 16 s). The
/// outer error is the file's own (missing, no permission); the inner one
/// is a refusal, to be shown as it is.
pub fn read_regular_text(
    path: &Path,
    max: u64,
    what: &str,
    kind: &str,
) -> std::io::Result<Result<String, String>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Ok(Err(format!("it is a directory; name {what}")));
    }
    if !meta.is_file() {
        return Ok(Err(format!(
            "it is not a regular file (a device, pipe or socket is not read); name {what}"
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(&file, max + 1), &mut text)?;
    if text.len() as u64 > max {
        return Ok(Err(format!(
            "it is larger than {} MiB: not {kind} (is it the right file?)",
            max >> 20
        )));
    }
    Ok(Ok(text))
}

/// A config file's text, read as [`load`] reads it (bounded, regular
/// files only), for the commands that look into a config [`load`] refused.
pub fn read_text(path: &Path) -> Result<String, String> {
    match read_config_text(path) {
        Ok(r) => r,
        Err(e) => Err(e.to_string()),
    }
}

/// Reads and parses a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let refused = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            path: String::new(),
            message: format!("cannot read the config file: {message}"),
        }])
    };
    let text = read_config_text(path).map_err(|e| {
        // A first run outside the config's directory lands here: say how
        // to name the file (the flag and the variable `cli::Cli` reads).
        // A path someone named (the flag or the variable) is checked, not
        // explained again (QA8 F1).
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound if path == Path::new(DEFAULT_CONFIG) => {
                "; name the config file with --config FILE or the environment variable \
                 RECKON_CONFIG (default: reckon.toml in the working directory)"
                    .to_owned()
            }
            std::io::ErrorKind::NotFound => {
                "; check the path given with --config or the environment variable RECKON_CONFIG"
                    .to_owned()
            }
            std::io::ErrorKind::PermissionDenied => dirs::unreadable_hint(path),
            _ => String::new(),
        };
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            path: String::new(),
            message: format!("cannot read the config file: {e}{hint}"),
        }])
    })?;
    let text = text.map_err(refused)?;
    parse(&text, &file)
}

#[cfg(test)]
mod tests;
