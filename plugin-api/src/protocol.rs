//! The messages that cross the plugin boundary, and the canonical records.
//!
//! Everything here is plain serde data. The host and a plugin exchange it as JSON
//! (an HTTP body travels beside the JSON as raw bytes, see [`crate::abi`] and
//! [`encode_frame`]). Money is a decimal string plus an ISO-4217 code; time is UTC.
//!
//! What this is not: there is no I/O here, and nothing that knows about a platform.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the message format below. The host refuses a plugin whose
/// protocol version it does not speak.
pub const PROTOCOL_VERSION: &str = "1";

// ---------------------------------------------------------------------------
// Describe
// ---------------------------------------------------------------------------

/// What a plugin says about itself before anything else happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable id used in config (`plugin = "..."`), e.g. `google_ads`.
    pub id: String,
    /// Human name, e.g. "Google Ads".
    pub name: String,
    /// The plugin's own semver version.
    pub version: String,
    /// What kind of records the plugin produces.
    pub kind: PluginKind,
    /// One paragraph for `reckon plugins describe`.
    pub description: String,
    /// JSON Schema (draft 2020-12 subset) of `[connectors.settings]`.
    /// Fields holding secrets carry `"x-secret": true` and must be given as
    /// secret references in config; the plugin never sees their values.
    pub config_schema: serde_json::Value,
    /// The streams a read session can produce.
    pub streams: Vec<StreamSpec>,
    /// Hosts the plugin may send requests to over https (port 443; exact
    /// host names). The host also allows the scheme, host and port of a
    /// configured `settings.base_url`, and nothing else.
    pub allowed_hosts: Vec<String>,
    /// The platform's real base URL, used when `settings.base_url` is absent.
    pub default_base_url: Option<String>,
    /// How the host authenticates requests. `None` for plugins without HTTP.
    pub auth: Option<AuthSpec>,
    /// The widest date window the platform accepts in one session; backfills
    /// are split into windows of at most this many days.
    pub max_window_days: Option<u32>,
    /// How far back the platform serves data: only the prior this many days
    /// (Everflow's raw conversions: 365). A scheduled run's re-pull of days
    /// already read (the lookback before the oldest checkpoint) starts no
    /// earlier than [`first_served_day`] instead of failing on the
    /// platform's refusal; explicit backfills are not cut. `None`: no limit
    /// known. Absent in manifests of plugins built before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_history_days: Option<u32>,
    /// A read-only file capability: the host reads files under the configured
    /// directory (setting `directory`) matching these glob-like suffixes and
    /// feeds their bytes as [`Event::File`].
    #[serde(default)]
    pub file_capability: Option<FileCapability>,
}

#[cfg(test)]
impl Manifest {
    /// An affiliate manifest with no settings, streams, hosts or auth: the
    /// base of the crate's test connectors.
    pub(crate) fn bare(id: &str) -> Manifest {
        Manifest {
            id: id.into(),
            name: id.into(),
            version: "0".into(),
            kind: PluginKind::Affiliate,
            description: String::new(),
            config_schema: serde_json::json!({}),
            streams: Vec::new(),
            allowed_hosts: Vec::new(),
            default_base_url: None,
            auth: None,
            max_window_days: None,
            max_history_days: None,
            file_capability: Default::default(),
        }
    }
}

/// The first day a window may start on at `today` for a platform that
/// serves only the prior `max_history_days` days
/// ([`Manifest::max_history_days`]): `today` less `max_history_days - 1`.
/// The platform counts its days in its own time zone, which may be a day
/// ahead of or behind the caller's `today`; starting one day later than
/// the bare limit keeps an allowed window allowed in every zone.
pub fn first_served_day(max_history_days: u32, today: NaiveDate) -> NaiveDate {
    let back = u64::from(max_history_days.saturating_sub(1));
    today
        .checked_sub_days(chrono::Days::new(back))
        .unwrap_or(NaiveDate::MIN)
}

/// The family of records a plugin produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// Ad networks: produce [`Spend`].
    AdNetwork,
    /// Affiliate platforms: produce [`Conversion`].
    Affiliate,
    /// The advertiser's shop: produces [`Order`].
    Orders,
}

/// One stream of records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// Stream name, unique within the plugin, e.g. `campaign_spend`.
    pub name: String,
    /// The canonical record type of the stream.
    pub record: RecordKind,
    /// Fields of the record that make its key (documentation; the key itself
    /// is [`Record::key`]).
    pub primary_key: Vec<String>,
    /// The field the stream's checkpoint follows, e.g. `day` or `updated_at`.
    pub cursor: Option<String>,
    /// Trailing window re-pulled on every run (late data, restatements).
    pub default_lookback_days: u32,
}

/// The canonical record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Ad spend, see [`Spend`].
    Spend,
    /// A network's claim, see [`Conversion`].
    Conversion,
    /// An advertiser order, see [`Order`].
    Order,
}

impl RecordKind {
    /// The name used in trees, CLI flags and files.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Spend => "spend",
            RecordKind::Conversion => "conversions",
            RecordKind::Order => "orders",
        }
    }
}

/// How the host injects credentials. Values come from secret settings named
/// here; the plugin only names the settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthSpec {
    /// HTTP Basic with two settings.
    Basic {
        /// The NAME of the setting holding the user name (not the user name).
        username: String,
        /// The NAME of the setting holding the password (not the password).
        password: String,
    },
    /// `Authorization: Bearer <setting>`.
    Bearer {
        /// The NAME of the setting holding the token (not the token), e.g.
        /// `"api_key"`.
        token: String,
    },
    /// A custom header whose value is a setting.
    Header {
        /// The header's name, sent as is, e.g. `"X-Api-Key"`.
        name: String,
        /// The NAME of the setting (normally an `x-secret` one) whose value
        /// the host sends as the header's value, e.g. `"api_key"`; not the
        /// value itself.
        value: String,
    },
    /// A query parameter whose value is a setting.
    Query {
        /// The query parameter's name, sent as is, e.g. `"key"`.
        name: String,
        /// The NAME of the setting (normally an `x-secret` one) whose value
        /// the host sends as the parameter's value, e.g. `"api_key"`; not the
        /// value itself.
        value: String,
    },
    /// OAuth2 refresh-token flow: the host exchanges the refresh token at
    /// `token_url` (relative to the base URL's origin when it starts with `/`)
    /// and sends `Authorization: Bearer <access_token>`, caching it until it expires.
    Oauth2RefreshToken {
        /// The token endpoint itself (not a setting): an absolute URL, or a path starting
        /// with `/` taken relative to the base URL's origin. A string setting
        /// `token_url` in the connector's config replaces it.
        token_url: String,
        /// The NAME of the setting holding the OAuth2 client id.
        client_id: String,
        /// The NAME of the setting holding the OAuth2 client secret.
        client_secret: String,
        /// The NAME of the setting holding the refresh token.
        refresh_token: String,
    },
    /// Several schemes at once (e.g. OAuth2 plus a developer-token header).
    All {
        /// The schemes, applied in this order to every request.
        schemes: Vec<AuthSpec>,
    },
}

impl AuthSpec {
    /// The NAMES of the settings holding the credentials, in order, for
    /// messages (a refused credential names what to check).
    pub fn setting_names(&self) -> Vec<&str> {
        match self {
            AuthSpec::Basic { username, password } => vec![username, password],
            AuthSpec::Bearer { token } => vec![token],
            AuthSpec::Header { value, .. } | AuthSpec::Query { value, .. } => vec![value],
            AuthSpec::Oauth2RefreshToken {
                client_id,
                client_secret,
                refresh_token,
                ..
            } => vec![client_id, client_secret, refresh_token],
            AuthSpec::All { schemes } => schemes.iter().flat_map(AuthSpec::setting_names).collect(),
        }
    }
}

/// A read-only file capability (used by file-drop connectors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCapability {
    /// The setting that names the directory the host may read.
    pub directory_setting: String,
    /// File name suffixes the plugin understands, e.g. `[".csv", ".jsonl"]`.
    pub suffixes: Vec<String>,
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// Verify credentials and settings with one cheap request.
    Check,
    /// Pull records.
    Read,
}

/// Opens a session. Secret settings are absent from `settings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionOpen {
    /// Check or read.
    pub mode: SessionMode,
    /// The connector id from config, for messages.
    pub connector_id: String,
    /// Validated `[connectors.settings]` without secret values.
    pub settings: serde_json::Value,
    /// The base URL requests go to (configured or the manifest's default).
    pub base_url: String,
    /// Streams to read (empty means all).
    pub streams: Vec<String>,
    /// The days to pull, inclusive: days of the connector's `timezone`
    /// (see `timezone`; an ad platform reports in its account's zone, which
    /// the connector's should match).
    pub window: Option<Window>,
    /// The last committed checkpoint of each stream.
    pub checkpoints: BTreeMap<String, Checkpoint>,
    /// The host's clock at session start; plugins never read a clock.
    pub now: DateTime<Utc>,
    /// The connector's `timezone` (IANA name, e.g. `America/Los_Angeles`),
    /// in which the window's days begin and end. Absent in messages from
    /// hosts and recordings made before it existed, and never sent to a
    /// plugin built before it (its `deny_unknown_fields` would refuse it);
    /// [`crate::sdk::Cx::timezone`] then gives UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// An inclusive range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
}

impl Window {
    /// Number of days covered.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }
}

/// A stream's resumption point. `watermark` orders checkpoints: the host
/// refuses one earlier than the stream's last checkpoint, whether committed
/// in this session or stored by an earlier one (so a watermark set to the
/// start of a re-pulled window fails every run after the first). `state`
/// is the plugin's own opaque cursor (e.g. a page token or the last day
/// done); the stored one belongs to the window it was committed in, which
/// is usually not the next run's (see [`crate::sdk::Cx::checkpoint`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The stream this checkpoint belongs to.
    pub stream: String,
    /// Everything up to this instant is in the records emitted so far.
    pub watermark: DateTime<Utc>,
    /// Plugin-defined state.
    #[serde(default)]
    pub state: serde_json::Value,
    /// Spend streams only: this checkpoint ends a full pass, begun in this
    /// same session, over every row of one account for a range of days.
    /// The host then sets to zero the stored rows of that account and those
    /// days that the session did not deliver: platforms leave rows without
    /// activity out of their reports, so a row missing from a complete
    /// re-pull was restated to nothing. A session that resumed in the middle
    /// of the range must not declare it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<Covers>,
}

/// A complete pass over one account's spend rows for `days` (see
/// [`Checkpoint::covers`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Covers {
    /// The account every row of the pass belongs to ([`Spend::account_id`]).
    pub account_id: String,
    /// The days of the pass, all within the session's window.
    pub days: Window,
}

/// Something the host tells the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// First event of a session, right after open: start working.
    Start,
    /// The answer to [`Action::Http`] with the same id. The body travels
    /// beside the JSON (see [`encode_frame`]).
    HttpResponse(HttpResponseHead),
    /// The request with this id failed after the host's retries.
    HttpFailure {
        /// The id of the failed [`Action::Http`] request (or of a refused
        /// [`Action::ReadFile`] / [`Action::ListFiles`]).
        id: u64,
        /// Why it failed.
        kind: HttpFailureKind,
        /// What went wrong, in words, with secrets masked.
        message: String,
    },
    /// A requested [`Action::SleepUntil`] has elapsed.
    Timer {
        /// The id of the [`Action::SleepUntil`].
        id: u64,
        /// The host's clock when the timer fired; the plugin's new "now".
        /// The host caps one wait, so this may be before the requested time.
        now: DateTime<Utc>,
    },
    /// The contents of a file the capability allows; `bytes` beside the JSON.
    File {
        /// The id of the [`Action::ReadFile`] or [`Action::ListFiles`].
        id: u64,
        /// The file's name as asked for; empty for a listing.
        name: String,
    },
}

/// Why an HTTP request failed on the host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFailureKind {
    /// No connection could be made (DNS, refused connection, TLS).
    Connect,
    /// The request or the response took longer than the host's timeout.
    Timeout,
    /// The response was larger than the host's size limit per response.
    TooLarge,
    /// Refused by the host before sending: an origin that is not allowed, a
    /// URL with a user or password, a scheme other than http(s); also a file
    /// read or listing the capability refuses.
    NotAllowed,
    /// The platform's rate limit could not be waited out. The current host
    /// does not send it: a 429 it gives up on reaches the plugin as a
    /// response.
    RateLimited,
    /// Anything else: a malformed URL or unknown method, an auth setting
    /// missing from the connector's config, a broken response body.
    Other,
}

/// An HTTP response as the plugin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpResponseHead {
    /// Matches [`HttpRequest::id`].
    pub id: u64,
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
}

/// Something the plugin asks the host to do.
///
/// Deserialised by a hand-written impl that reads the `action` tag first
/// (see `fast_de` below); the JSON is exactly what the derive would accept.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Send a request; the answer comes back as an event with the same id.
    Http(HttpRequest),
    /// Records produced since the last step.
    Records {
        /// The records, stored only with the next [`Action::Checkpoint`].
        records: Vec<Record>,
    },
    /// Commit everything emitted so far together with this checkpoint.
    Checkpoint(Checkpoint),
    /// Wake me at this time (the host may wake earlier on shutdown).
    SleepUntil {
        /// Chosen by the plugin; the [`Event::Timer`] carries it back.
        id: u64,
        /// When to wake (UTC).
        until: DateTime<Utc>,
    },
    /// Read this file (capability-checked by the host).
    ReadFile {
        /// Chosen by the plugin; the [`Event::File`] (or, when refused,
        /// [`Event::HttpFailure`]) carries it back.
        id: u64,
        /// A file name within the capability's directory (no path).
        name: String,
    },
    /// List files (capability-checked); answered with a File event whose
    /// bytes are the newline-separated names.
    ListFiles {
        /// Chosen by the plugin; the [`Event::File`] (or, when refused,
        /// [`Event::HttpFailure`]) carries it back.
        id: u64,
    },
    /// A log line re-emitted by the host through `tracing`.
    Log(LogRecord),
    /// The session finished successfully.
    Done,
    /// The session failed.
    Error(PluginError),
}

/// An HTTP request. The host adds auth, enforces allowed hosts, retries,
/// rate limits and timeouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// Correlates the response.
    pub id: u64,
    /// `GET`, `POST`, ...
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Extra headers (never secrets: those are the host's job).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body as UTF-8 text (JSON or form), if any.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether the host may retry on 5xx and timeouts (GETs are; a POST that
    /// only reads, like a report query, may say so).
    #[serde(default)]
    pub idempotent: bool,
    /// A short label for logs and metrics, e.g. `insights page 3`.
    #[serde(default)]
    pub label: String,
}

/// A structured error: what kind, whether trying again later may help, and a
/// message naming the stream, page, record and field concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?} error{}: {message}", if *retryable { " (retryable)" } else { "" })]
#[serde(deny_unknown_fields)]
pub struct PluginError {
    /// Category of the failure.
    pub kind: ErrorKind,
    /// True when the same session may succeed later (throttling, 5xx).
    pub retryable: bool,
    /// Human sentence naming what went wrong and where.
    pub message: String,
}

/// Categories of [`PluginError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Credentials were refused.
    Auth,
    /// Settings are wrong (the message names the setting).
    Config,
    /// The platform throttled us beyond what the host could absorb.
    RateLimited,
    /// The platform answered with something we cannot parse.
    BadResponse,
    /// The platform reported an error.
    Upstream,
    /// A network failure reported by the host.
    Transport,
    /// The plugin or host broke the protocol.
    Protocol,
    /// A bug in the plugin (e.g. a panic).
    Internal,
}

impl PluginError {
    /// A non-retryable error of this kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            retryable: false,
            message: message.into(),
        }
    }
    /// A retryable error of this kind.
    pub fn retryable(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            retryable: true,
            message: message.into(),
        }
    }
    /// Shorthand for [`ErrorKind::BadResponse`].
    pub fn bad_response(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadResponse, message)
    }
    /// Shorthand for [`ErrorKind::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
}

/// A log line from a plugin.
///
/// The host re-emits it through `tracing` with each entry of `fields` as a
/// field of its own (named `field.<key>`), bounded in size and count.
/// Reading one is lenient about text: `message` and the keys and values of
/// `fields` that are not valid UTF-8 (raw bytes, or lone surrogate escapes
/// from a plugin not written with the SDK) are decoded with U+FFFD in place
/// of the bad bytes instead of failing the whole step; the JSON shape is
/// unchanged, so this needs no protocol or ABI version change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// A short sentence.
    #[serde(deserialize_with = "lossy_text::string")]
    pub message: String,
    /// Key-value fields.
    #[serde(default, deserialize_with = "lossy_text::map")]
    pub fields: BTreeMap<String, String>,
}

/// Deserialisers for log text that replace invalid UTF-8 instead of failing.
///
/// They ask for bytes: `serde_json` then hands over a string's raw bytes
/// (escapes decoded, UTF-8 not checked) and they are decoded lossily.
mod lossy_text {
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use std::collections::BTreeMap;
    use std::fmt;

    struct Text;

    impl Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<String, E> {
            Ok(String::from_utf8_lossy(v).into_owned())
        }
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<String, E> {
            Ok(String::from_utf8(v)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
        }
    }

    /// One string in a map (as key or value).
    struct Lossy(String);

    impl<'de> serde::Deserialize<'de> for Lossy {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_byte_buf(Text).map(Lossy)
        }
    }

    pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_byte_buf(Text)
    }

    pub(super) fn map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, String>, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = BTreeMap<String, String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((Lossy(k), Lossy(v))) = m.next_entry()? {
                    out.insert(k, v);
                }
                Ok(out)
            }
        }
        d.deserialize_map(Fields)
    }
}

/// Severity of a [`LogRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Re-emitted as a `tracing` TRACE event.
    Trace,
    /// Re-emitted as a `tracing` DEBUG event.
    Debug,
    /// Re-emitted as a `tracing` INFO event.
    Info,
    /// Re-emitted as a `tracing` WARN event.
    Warn,
    /// Re-emitted as a `tracing` ERROR event.
    Error,
}

// ---------------------------------------------------------------------------
// Canonical records
// ---------------------------------------------------------------------------

/// An amount of money: exact decimal plus ISO-4217 currency code.
/// Serialised as `{"amount": "12.34", "currency": "USD"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// The exact amount, in major units.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// ISO-4217 code, upper case.
    pub currency: String,
}

impl Money {
    /// Builds money from an amount and a currency code.
    pub fn new(amount: Decimal, currency: impl Into<String>) -> Self {
        Money {
            amount,
            currency: currency.into(),
        }
    }
    /// Converts integer minor units (cents) using the currency's exponent
    /// (0 for JPY, 3 for KWD). A code [`crate::currency`] does not know (a
    /// lower-case `"jpy"`, a typo) is taken to have 2 decimals, silently:
    /// use [`Money::try_from_minor`] for a code from the platform, which
    /// refuses it.
    pub fn from_minor(minor: i64, currency: &str) -> Self {
        let scale = crate::currency::minor_unit_digits(currency).unwrap_or(2);
        Money::new(Decimal::new(minor, scale), currency)
    }
    /// Converts micros (Google's `costMicros`) exactly.
    pub fn from_micros(micros: i64, currency: &str) -> Self {
        Money::new(Decimal::new(micros, 6).normalize(), currency)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// A canonical record tagged with its type.
///
/// Deserialised by a hand-written impl that reads the `type` tag first (see
/// `fast_de` below); the JSON is exactly what the derive would accept.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// Ad spend (streams of [`RecordKind::Spend`]).
    Spend(Spend),
    /// A network's claim (streams of [`RecordKind::Conversion`]).
    Conversion(Conversion),
    /// An advertiser order (streams of [`RecordKind::Order`]).
    Order(Order),
}

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Spend(_) => RecordKind::Spend,
            Record::Conversion(_) => RecordKind::Conversion,
            Record::Order(_) => RecordKind::Order,
        }
    }
    /// The source (connector id) the record came from.
    pub fn source(&self) -> &str {
        match self {
            Record::Spend(r) => &r.source,
            Record::Conversion(r) => &r.source,
            Record::Order(r) => &r.source,
        }
    }
    /// The stable key within its source, from the platform's own ids.
    pub fn key(&self) -> String {
        match self {
            Record::Spend(r) => r.key(),
            Record::Conversion(r) => r.external_id.clone(),
            Record::Order(r) => r.order_id.clone(),
        }
    }
    /// Sets the source; the host stamps the connector id on every record.
    pub fn set_source(&mut self, source: &str) {
        let s = match self {
            Record::Spend(r) => &mut r.source,
            Record::Conversion(r) => &mut r.source,
            Record::Order(r) => &mut r.source,
        };
        if s != source {
            *s = source.to_owned();
        }
    }
}

/// Marketing channel of spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Search and shopping ads (e.g. Google Ads search campaigns).
    Search,
    /// Social network ads (e.g. Meta, TikTok).
    Social,
    /// Native ads: sponsored content in a publisher's feed.
    Native,
    /// Display (banner) ads.
    Display,
    /// Video ads.
    Video,
    /// Affiliate networks.
    Affiliate,
    /// Influencer and creator campaigns.
    Influencer,
    /// Anything else, or not known.
    Other,
}

impl Channel {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Search => "search",
            Channel::Social => "social",
            Channel::Native => "native",
            Channel::Display => "display",
            Channel::Video => "video",
            Channel::Affiliate => "affiliate",
            Channel::Influencer => "influencer",
            Channel::Other => "other",
        }
    }
}

/// One day of ad spend for one campaign / ad group (/ ad).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spend {
    /// Connector id (stamped by the host).
    #[serde(default)]
    pub source: String,
    /// Ad account id.
    pub account_id: String,
    /// The day in the account's timezone.
    pub day: NaiveDate,
    /// The IANA timezone `day` is in, e.g. `America/New_York`.
    pub timezone: String,
    /// The platform's campaign id (part of the key; must not be empty).
    pub campaign_id: String,
    /// The campaign's name as the platform reports it.
    pub campaign_name: String,
    /// The ad group's (Meta: ad set's) id, when the row is per ad group.
    #[serde(default)]
    pub ad_group_id: Option<String>,
    /// The ad group's name, if known.
    #[serde(default)]
    pub ad_group_name: Option<String>,
    /// The ad's id, when the row is per ad.
    #[serde(default)]
    pub ad_id: Option<String>,
    /// The marketing channel of the campaign.
    pub channel: Channel,
    /// Impressions that day.
    pub impressions: u64,
    /// Clicks that day.
    pub clicks: u64,
    /// The amount spent that day, in the account's currency (not negative).
    pub spend: Money,
    /// Conversions as the platform reports them (may be fractional on Google).
    /// Omitted when absent: inside the tagged [`Record`] a JSON `null` would
    /// not deserialise through `str_option`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub platform_conversions: Option<Decimal>,
    /// Conversion value as the platform reports it.
    #[serde(default)]
    pub platform_conversion_value: Option<Money>,
}

impl Spend {
    /// `account/day/campaign/ad_group/ad`: ordered for per-day scans.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.account_id,
            self.day,
            self.campaign_id,
            self.ad_group_id.as_deref().unwrap_or("-"),
            self.ad_id.as_deref().unwrap_or("-")
        )
    }
}

/// What a conversion is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A purchase (paid on its amount, or flat).
    Sale,
    /// A lead: a form or an enquiry.
    Lead,
    /// An account or newsletter sign-up.
    Signup,
    /// An app install.
    Install,
    /// Anything else the network pays for.
    Other,
}

impl EventType {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Sale => "sale",
            EventType::Lead => "lead",
            EventType::Signup => "signup",
            EventType::Install => "install",
            EventType::Other => "other",
        }
    }
}

/// A network's status for a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionStatus {
    /// Not yet decided by the network (in review, on hold).
    Pending,
    /// Accepted by the network for payment.
    Approved,
    /// Reversed by the network after the fact (refund, fraud, return).
    Reversed,
    /// Never accepted (invalid, scrubbed, declined).
    Rejected,
}

/// Marketing attribution fields carried by claims and orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Utm {
    /// `utm_source`: the referrer (`google`, a network, a newsletter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`: the kind of traffic (`cpc`, `affiliate`, `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_campaign`: the campaign's id or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// `utm_content`: the ad or link variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `utm_term`: the search keyword.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
}

/// A network's claim that it drove a conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    /// Connector id (stamped by the host).
    #[serde(default)]
    pub source: String,
    /// The network's id of the claim.
    pub external_id: String,
    /// The advertiser order id the network quotes.
    #[serde(default)]
    pub order_id: Option<String>,
    /// The click id (e.g. Everflow transaction id, gclid-like id).
    #[serde(default)]
    pub click_id: Option<String>,
    /// When the click happened, if known.
    #[serde(default)]
    pub clicked_at: Option<DateTime<Utc>>,
    /// The network's id of the partner (publisher, affiliate) credited;
    /// with the network it names the payee of the commission.
    pub partner_id: String,
    /// The partner's display name, if the network gives one.
    #[serde(default)]
    pub partner_name: Option<String>,
    /// The network's program / campaign / offer id.
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// What the partner is paid for: a sale, a lead, an install ...
    pub event_type: EventType,
    /// When the conversion happened (UTC; converted from the network's
    /// timezone by the plugin).
    pub occurred_at: DateTime<Utc>,
    /// The sale's amount as the network reports it (the order value the
    /// commission is computed on), if any.
    #[serde(default)]
    pub sale_amount: Option<Money>,
    /// What the network says the partner earns.
    #[serde(default)]
    pub commission: Option<Money>,
    /// The network's own status of the claim.
    pub status: ConversionStatus,
    /// When the status last changed, if the network says.
    #[serde(default)]
    pub status_changed_at: Option<DateTime<Utc>>,
    /// After this the network will not change the claim.
    #[serde(default)]
    pub locked_at: Option<DateTime<Utc>>,
    /// Coupon or voucher code used with the sale, if reported.
    #[serde(default)]
    pub coupon: Option<String>,
    /// UTM parameters of the click, if reported.
    #[serde(default)]
    pub utm: Utm,
}

/// An advertiser's order: the truth claims are checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Connector id (stamped by the host).
    #[serde(default)]
    pub source: String,
    /// The shop's primary order id.
    pub order_id: String,
    /// Other ids a claim may quote (internal numeric id, order name/number).
    #[serde(default)]
    pub alt_ids: Vec<String>,
    /// When the order was placed (UTC).
    pub created_at: DateTime<Utc>,
    /// Amount net of tax and shipping where known.
    pub amount: Money,
    /// The shop's customer id, if known.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Whether it is the customer's first order, if the shop says.
    #[serde(default)]
    pub new_customer: Option<bool>,
    /// Discount code used, if any.
    #[serde(default)]
    pub coupon: Option<String>,
    /// Click ids seen on the order (landing page parameters, note attributes).
    #[serde(default)]
    pub click_ids: Vec<String>,
    /// UTM parameters of the landing page, if known.
    #[serde(default)]
    pub utm: Utm,
    /// Refunds so far, each with its amount and time.
    #[serde(default)]
    pub refunds: Vec<Refund>,
    /// The shop's status of the order.
    pub status: OrderStatus,
}

impl Order {
    /// Sum of refunds (in the order's currency).
    pub fn refunded(&self) -> Decimal {
        self.refunds.iter().map(|r| r.amount.amount).sum()
    }
}

/// A refund against an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    /// Amount refunded (positive, the order's currency).
    pub amount: Money,
    /// When it was refunded (UTC).
    pub at: DateTime<Utc>,
}

/// An order's status in the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed but not (fully) paid yet: pending, authorized.
    Open,
    /// Paid.
    Paid,
    /// Paid and fulfilled (shipped or delivered).
    Fulfilled,
    /// Cancelled or voided: no revenue; reconciliation treats it like an
    /// order refunded in full.
    Cancelled,
    /// Refunded in full; counted so even when [`Order::refunds`] adds up to
    /// less.
    Refunded,
    /// Part of it refunded (see [`Order::refunds`]).
    PartiallyRefunded,
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

/// Encodes a message with optional raw bytes beside it:
/// `[u32 LE json length][json][bytes]`. Events carrying an HTTP body or file
/// contents use the bytes part; everything else leaves it empty.
pub fn encode_frame<T: Serialize>(msg: &T, bytes: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(msg).expect("protocol messages always serialise");
    let mut out = Vec::with_capacity(4 + json.len() + bytes.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(bytes);
    out
}

/// Splits a frame made by [`encode_frame`] into its message and bytes.
pub fn decode_frame<'a, T: Deserialize<'a>>(frame: &'a [u8]) -> Result<(T, &'a [u8]), String> {
    if frame.len() < 4 {
        return Err(format!(
            "frame of {} bytes is shorter than its 4-byte length prefix",
            frame.len()
        ));
    }
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    let rest = &frame[4..];
    if rest.len() < len {
        return Err(format!(
            "frame says its message has {len} bytes but only {} follow",
            rest.len()
        ));
    }
    let msg =
        serde_json::from_slice(&rest[..len]).map_err(|e| format!("malformed message: {e}"))?;
    Ok((msg, &rest[len..]))
}

// ---------------------------------------------------------------------------
// Fast deserialisation of actions and records
// ---------------------------------------------------------------------------
//
// `Action` and `Record` are internally tagged. serde's derived deserialiser
// for such enums first buffers each whole object into an intermediate tree
// and then deserialises from that, which doubles the cost of the host's
// hottest path (thousands of records per step). Serialisation always writes
// the tag first, so these impls read the tag and then deserialise the rest of
// the object straight into the variant's struct; objects whose tag is not
// first (hand-written JSON) take the buffered path. The JSON format, and so
// the protocol, is unchanged.

mod fast_de {
    use super::*;
    use serde::de::value::MapAccessDeserializer;
    use serde::de::{self, MapAccess, Visitor};
    use std::fmt;

    /// The derived (buffering) deserialisers, used when the tag is not first.
    #[derive(Deserialize)]
    #[serde(tag = "action", rename_all = "snake_case")]
    pub(super) enum ActionSlow {
        Http(HttpRequest),
        Records { records: Vec<Record> },
        Checkpoint(Checkpoint),
        SleepUntil { id: u64, until: DateTime<Utc> },
        ReadFile { id: u64, name: String },
        ListFiles { id: u64 },
        Log(LogRecord),
        Done,
        Error(PluginError),
    }

    impl From<ActionSlow> for Action {
        fn from(a: ActionSlow) -> Self {
            match a {
                ActionSlow::Http(r) => Action::Http(r),
                ActionSlow::Records { records } => Action::Records { records },
                ActionSlow::Checkpoint(c) => Action::Checkpoint(c),
                ActionSlow::SleepUntil { id, until } => Action::SleepUntil { id, until },
                ActionSlow::ReadFile { id, name } => Action::ReadFile { id, name },
                ActionSlow::ListFiles { id } => Action::ListFiles { id },
                ActionSlow::Log(l) => Action::Log(l),
                ActionSlow::Done => Action::Done,
                ActionSlow::Error(e) => Action::Error(e),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub(super) enum RecordSlow {
        Spend(Spend),
        Conversion(Conversion),
        Order(Order),
    }

    impl From<RecordSlow> for Record {
        fn from(r: RecordSlow) -> Self {
            match r {
                RecordSlow::Spend(s) => Record::Spend(s),
                RecordSlow::Conversion(c) => Record::Conversion(c),
                RecordSlow::Order(o) => Record::Order(o),
            }
        }
    }

    const ACTIONS: &[&str] = &[
        "http",
        "records",
        "checkpoint",
        "sleep_until",
        "read_file",
        "list_files",
        "log",
        "done",
        "error",
    ];
    const RECORDS: &[&str] = &["spend", "conversion", "order"];

    /// Collects the rest of a map (after an already-read first entry) into
    /// a JSON object, for the buffered path.
    fn rest_as_object<'de, A: MapAccess<'de>>(
        first: Option<(String, serde_json::Value)>,
        mut map: A,
    ) -> Result<serde_json::Value, A::Error> {
        let mut obj = serde_json::Map::new();
        if let Some((k, v)) = first {
            obj.insert(k, v);
        }
        while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
            obj.insert(k, v);
        }
        Ok(serde_json::Value::Object(obj))
    }

    struct ActionVisitor;

    impl<'de> Visitor<'de> for ActionVisitor {
        type Value = Action;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an action object with an `action` tag")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
            let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
                return Err(de::Error::missing_field("action"));
            };
            if key != "action" {
                let v: serde_json::Value = map.next_value()?;
                let obj = rest_as_object(Some((key.into_owned(), v)), map)?;
                return ActionSlow::deserialize(obj)
                    .map(Action::from)
                    .map_err(de::Error::custom);
            }
            let tag: std::borrow::Cow<'de, str> = map.next_value()?;
            let rest = MapAccessDeserializer::new(map);
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct RecordsBody {
                records: Vec<Record>,
            }
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct SleepBody {
                id: u64,
                until: DateTime<Utc>,
            }
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct FileBody {
                id: u64,
                name: String,
            }
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct IdBody {
                id: u64,
            }
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Empty {}
            Ok(match &*tag {
                "records" => Action::Records {
                    records: RecordsBody::deserialize(rest)?.records,
                },
                "http" => Action::Http(HttpRequest::deserialize(rest)?),
                "checkpoint" => Action::Checkpoint(Checkpoint::deserialize(rest)?),
                "sleep_until" => {
                    let b = SleepBody::deserialize(rest)?;
                    Action::SleepUntil {
                        id: b.id,
                        until: b.until,
                    }
                }
                "read_file" => {
                    let b = FileBody::deserialize(rest)?;
                    Action::ReadFile {
                        id: b.id,
                        name: b.name,
                    }
                }
                "list_files" => Action::ListFiles {
                    id: IdBody::deserialize(rest)?.id,
                },
                "log" => Action::Log(LogRecord::deserialize(rest)?),
                "done" => {
                    Empty::deserialize(rest)?;
                    Action::Done
                }
                "error" => Action::Error(PluginError::deserialize(rest)?),
                other => return Err(de::Error::unknown_variant(other, ACTIONS)),
            })
        }
    }

    impl<'de> Deserialize<'de> for Action {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(ActionVisitor)
        }
    }

    struct RecordVisitor;

    impl<'de> Visitor<'de> for RecordVisitor {
        type Value = Record;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a record object with a `type` tag")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
            let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
                return Err(de::Error::missing_field("type"));
            };
            if key != "type" {
                let v: serde_json::Value = map.next_value()?;
                let obj = rest_as_object(Some((key.into_owned(), v)), map)?;
                return RecordSlow::deserialize(obj)
                    .map(Record::from)
                    .map_err(de::Error::custom);
            }
            let tag: std::borrow::Cow<'de, str> = map.next_value()?;
            let rest = MapAccessDeserializer::new(map);
            Ok(match &*tag {
                "spend" => Record::Spend(Spend::deserialize(rest)?),
                "conversion" => Record::Conversion(Conversion::deserialize(rest)?),
                "order" => Record::Order(Order::deserialize(rest)?),
                other => return Err(de::Error::unknown_variant(other, RECORDS)),
            })
        }
    }

    impl<'de> Deserialize<'de> for Record {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(RecordVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        macro_rules! dec {
            ($s:literal) => {
                <rust_decimal::Decimal as std::str::FromStr>::from_str(stringify!($s)).unwrap()
            };
        }
        pub(crate) use dec;
    }

    #[test]
    fn money_crosses_as_decimal_string() {
        let m = Money::new(dec!(12.30), "USD");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"12.30","currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
    }

    #[test]
    fn micros_and_cents_convert_exactly() {
        assert_eq!(Money::from_micros(1_234_567, "USD").amount, dec!(1.234567));
        assert_eq!(Money::from_micros(5_000_000, "USD").amount, dec!(5));
        assert_eq!(Money::from_minor(1999, "EUR").amount, dec!(19.99));
        assert_eq!(Money::from_minor(1999, "JPY").amount, dec!(1999));
    }

    #[test]
    fn frame_round_trip_keeps_bytes() {
        let head = Event::HttpResponse(HttpResponseHead {
            id: 7,
            status: 200,
            headers: BTreeMap::new(),
        });
        let frame = encode_frame(&head, b"\x00binary body");
        let (back, bytes): (Event, _) = decode_frame(&frame).unwrap();
        assert_eq!(back, head);
        assert_eq!(bytes, b"\x00binary body");
    }

    #[test]
    fn spend_without_platform_conversions_round_trips_inside_a_record() {
        let spend = Record::Spend(Spend {
            source: "g".into(),
            account_id: "a".into(),
            day: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            timezone: "UTC".into(),
            campaign_id: "c".into(),
            campaign_name: "C".into(),
            ad_group_id: None,
            ad_group_name: None,
            ad_id: None,
            channel: Channel::Search,
            impressions: 1,
            clicks: 1,
            spend: Money::new(dec!(1.5), "USD"),
            platform_conversions: None,
            platform_conversion_value: None,
        });
        let json = serde_json::to_string(&vec![Action::Records {
            records: vec![spend.clone()],
        }])
        .unwrap();
        let back: Vec<Action> = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back,
            vec![Action::Records {
                records: vec![spend]
            }]
        );
    }

    #[test]
    fn actions_parse_with_the_tag_anywhere_and_reject_unknown_fields() {
        let fast: Vec<Action> = serde_json::from_str(
            r#"[{"action":"done"},{"action":"list_files","id":3},
                {"action":"records","records":[{"type":"order","order_id":"1","created_at":"2026-11-01T00:00:00Z",
                 "amount":{"amount":"1.50","currency":"EUR"},"status":"paid"}]}]"#,
        )
        .unwrap();
        let slow: Vec<Action> = serde_json::from_str(
            r#"[{"action":"done"},{"id":3,"action":"list_files"},
                {"records":[{"order_id":"1","type":"order","created_at":"2026-11-01T00:00:00Z",
                 "amount":{"amount":"1.50","currency":"EUR"},"status":"paid"}],"action":"records"}]"#,
        )
        .unwrap();
        assert_eq!(fast, slow);
        assert_eq!(fast[1], Action::ListFiles { id: 3 });
        assert!(serde_json::from_str::<Action>(r#"{"action":"done","x":1}"#).is_err());
        assert!(serde_json::from_str::<Action>(r#"{"action":"nope"}"#).is_err());
        assert!(serde_json::from_str::<Record>(r#"{"type":"order","bogus":1}"#).is_err());
        assert!(serde_json::from_str::<Action>(r#"{}"#).is_err());
    }

    #[test]
    fn log_text_that_is_not_utf8_is_replaced_not_refused() {
        // Raw invalid bytes and a lone surrogate escape in the message, a key
        // and a value (the SDK never writes them; a hand-made plugin might).
        let fast: Vec<Action> = serde_json::from_slice(
            b"[{\"action\":\"log\",\"level\":\"warn\",\"message\":\"bad \xff byte\",\
               \"fields\":{\"k\xfe\":\"v \\ud800 \\n\",\"ok\":\"fine\"}}]",
        )
        .unwrap();
        let Action::Log(l) = &fast[0] else {
            panic!("{fast:?}")
        };
        assert_eq!(l.level, LogLevel::Warn);
        assert_eq!(l.message, "bad \u{fffd} byte");
        assert_eq!(
            l.fields,
            BTreeMap::from([
                (
                    "k\u{fffd}".to_owned(),
                    "v \u{fffd}\u{fffd}\u{fffd} \n".to_owned()
                ),
                ("ok".to_owned(), "fine".to_owned()),
            ])
        );
        // The buffered path (tag not first) reads valid text as before.
        let slow: Action = serde_json::from_str(
            r#"{"message":"m","level":"info","action":"log","fields":{"a":"1"}}"#,
        )
        .unwrap();
        assert_eq!(
            slow,
            Action::Log(LogRecord {
                level: LogLevel::Info,
                message: "m".into(),
                fields: BTreeMap::from([("a".to_owned(), "1".to_owned())]),
            })
        );
        // Still strict about shape: a number is not a field value, and
        // unknown keys are refused.
        for bad in [
            r#"{"action":"log","level":"info","message":"m","fields":{"a":1}}"#,
            r#"{"action":"log","level":"info","message":7}"#,
            r#"{"action":"log","level":"info","message":"m","extra":1}"#,
        ] {
            assert!(serde_json::from_str::<Action>(bad).is_err(), "{bad}");
        }
        // What the SDK writes round-trips unchanged.
        let sdk = Action::Log(LogRecord {
            level: LogLevel::Debug,
            message: "page parsed".into(),
            fields: BTreeMap::from([("rows".to_owned(), "12".to_owned())]),
        });
        let json = serde_json::to_vec(&sdk).unwrap();
        assert_eq!(serde_json::from_slice::<Action>(&json).unwrap(), sdk);
    }

    #[test]
    fn truncated_frame_is_an_error_not_a_panic() {
        let frame = encode_frame(&Event::Start, b"");
        assert!(decode_frame::<Event>(&frame[..2]).is_err());
        assert!(decode_frame::<Event>(&frame[..frame.len() - 1]).is_err());
    }

    /// A manifest written before `max_history_days` existed (an older
    /// plugin's) still reads, without a limit; one without a limit is
    /// written without the field.
    #[test]
    fn max_history_days_is_optional_in_a_manifest() {
        let mut json = serde_json::to_value(Manifest::bare("x")).unwrap();
        assert!(json.get("max_history_days").is_none(), "{json}");
        let m: Manifest = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(m.max_history_days, None);
        json["max_history_days"] = 365.into();
        let m: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(m.max_history_days, Some(365));
    }

    /// Everflow's "prior 365 days", counted with a day's margin: a window
    /// may start 364 days before today.
    #[test]
    fn the_first_served_day_keeps_a_days_margin() {
        let today = NaiveDate::from_ymd_opt(2028, 1, 6).unwrap();
        assert_eq!(
            first_served_day(365, today),
            NaiveDate::from_ymd_opt(2027, 1, 7).unwrap()
        );
        assert_eq!(first_served_day(1, today), today);
        assert_eq!(first_served_day(0, today), today);
        assert_eq!(first_served_day(u32::MAX, today), NaiveDate::MIN);
    }
}
