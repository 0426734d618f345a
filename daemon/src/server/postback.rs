//! `GET|POST /postback/<connector-id>`: server-to-server conversions.
//! Owned by the orders/postbacks work (issue 5).
//!
//! A network (or the advertiser's own system) calls this endpoint when a
//! conversion happens or changes status. Each configured `[[postbacks]]`
//! entry is one endpoint; its id is the `source` the conversions are stored
//! under, exactly like a connector's records.
//!
//! - **Parameters** come from the query string, a form body or a JSON object
//!   body, under the usual macro names (see [`ALIASES`]): transaction id /
//!   click id, order id, amount, payout, currency, status, partner id, event,
//!   timestamp, coupon, UTM. Unknown parameters (sub ids, ...) are ignored.
//!   A read parameter is a 400 naming it when its value still looks like an
//!   unsubstituted macro (`{transaction_id}`, `#tid#`, `[TID]`, `null`, ...),
//!   is not UTF-8, is a JSON object or array, or differs from the same
//!   field's value sent under another (or the same) name, JSON keys included.
//! - **Auth** per endpoint with a shared secret: `auth = "token"` (the
//!   `token` parameter or the `X-Postback-Token` header equals the secret) or
//!   `auth = "hmac"` (`X-Signature` = hex HMAC-SHA256 of the raw body, or of
//!   the raw query string without the `signature` parameter when there is no
//!   body; with a body, a field in the query string is a 400, as it would be
//!   unsigned). Missing credentials → 401, wrong ones → 403, a credential
//!   that is an unsubstituted macro → 400. Compared in constant time.
//! - **Idempotent** on the transaction id: it is the record key. A replay is
//!   stored once (the store sees an unchanged record); a status or amount
//!   change becomes a new revision. A postback that omits a field keeps the
//!   stored value (a status update may carry only the id and the status).
//!   An out-of-date one (a replay of an older delivery, or an older
//!   `status_time`) is a 409 `stale` and changes nothing (`stale_reason`).
//! - **Durable before 200**: requests go to one writer thread that commits
//!   whatever is queued as one group (one store transaction per source, one
//!   flush) and answers each request only after the flush (group commit).
//! - **Counted**: `reckon_postback_requests_total{connector,outcome}` via
//!   [`render_metrics`] for the `/metrics` endpoint.
//!
//! What this is not: no plugin, no HTTP client; the routes only parse,
//! authenticate and store.
//!
//! CONTRACT: the server merges [`router`] into its app.

use crate::store::Store;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use plugin_api::protocol::{
    Conversion, ConversionStatus, EventType, Money, Record, RecordKind, Utm,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

/// `[[postbacks]]`: one postback endpoint.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostbackConfig {
    /// The connector id the conversions are stored under (`/postback/<id>`).
    pub id: String,
    /// How callers authenticate: `"token"` or `"hmac"`.
    #[serde(default)]
    pub auth: PostbackAuth,
    /// The shared secret, as a secret reference: `{ secret = "env:NAME" }`
    /// (or `"file:/path"`). Never written in the config in clear.
    pub secret: SecretRef,
    /// The secret's value once resolved. Filled by the config loader (or by
    /// [`PostbackConfig::resolve`]); never read from the TOML file.
    #[serde(skip)]
    pub resolved_secret: Option<String>,
    /// Token auth: the query / form / JSON parameter carrying the token.
    #[serde(default = "default_token_param")]
    pub token_param: String,
    /// Token auth: the header carrying the token (checked first).
    #[serde(default = "default_token_header")]
    pub token_header: String,
    /// HMAC auth: the header carrying the hex signature (a `sha256=` prefix, in any case, is accepted).
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// HMAC auth: the query parameter carrying the signature when the header is absent.
    #[serde(default = "default_signature_param")]
    pub signature_param: String,
    /// ISO-4217 code for postbacks that send amounts without a currency.
    #[serde(default)]
    pub default_currency: Option<String>,
    /// Partner id for postbacks that carry none (e.g. one endpoint per partner).
    #[serde(default)]
    pub default_partner_id: Option<String>,
    /// Status of a new conversion that names none: `pending` (default) or `approved`.
    #[serde(default = "default_status")]
    pub default_status: String,
    /// Event type when none is given: `sale` (default), `lead`, `signup`, `install`, `other`.
    #[serde(default = "default_event")]
    pub default_event_type: String,
    /// The `[[connectors]]` id of the API connector whose conversions this
    /// endpoint's postbacks copy (the same network, delivered twice). In a
    /// program whose `claims` list both, a postback matched to the same
    /// order as a claim of that connector is judged as that claim's copy:
    /// reversed or rejected with it, else its `duplicate`.
    #[serde(default)]
    pub mirrors: Option<String>,
}

impl std::fmt::Debug for PostbackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the resolved secret's value.
        f.debug_struct("PostbackConfig")
            .field("id", &self.id)
            .field("auth", &self.auth)
            .field("secret", &self.secret)
            .field("resolved", &self.resolved_secret.is_some())
            .field("default_currency", &self.default_currency)
            .field("default_partner_id", &self.default_partner_id)
            .field("default_status", &self.default_status)
            .field("default_event_type", &self.default_event_type)
            .field("mirrors", &self.mirrors)
            .finish_non_exhaustive()
    }
}

fn default_token_param() -> String {
    "token".into()
}
fn default_token_header() -> String {
    "x-postback-token".into()
}
fn default_signature_header() -> String {
    "x-signature".into()
}
fn default_signature_param() -> String {
    "signature".into()
}
fn default_status() -> String {
    "pending".into()
}
fn default_event() -> String {
    "sale".into()
}

/// How callers of an endpoint authenticate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostbackAuth {
    /// The secret itself, in a header or parameter.
    #[default]
    Token,
    /// HMAC-SHA256 of the raw body (or query) keyed with the secret.
    Hmac,
}

/// A secret reference: `{ secret = "env:NAME" }` or `{ secret = "file:/path" }`.
///
/// Deserialized with the same checks and messages as a connector's secret
/// settings ([`crate::config::SecretRef::from_toml`]): a literal value is
/// refused with a sentence saying how to write a reference.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// `env:NAME` or `file:/path`.
    pub secret: String,
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = toml::Value::deserialize(d)?;
        if !v.is_table() {
            return Err(D::Error::custom(
                "`secret` is a secret: write `secret = { secret = \"env:NAME\" }` or `{ secret = \"file:PATH\" }`, never the value itself",
            ));
        }
        crate::config::SecretRef::from_toml(&v).map_err(D::Error::custom)?;
        let secret = v
            .get("secret")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(SecretRef { secret })
    }
}

impl SecretRef {
    /// The reference as the config module reads it (`env:` / `file:`).
    pub fn to_config_ref(&self) -> Result<crate::config::SecretRef, String> {
        let mut t = toml::Table::new();
        t.insert("secret".into(), toml::Value::String(self.secret.clone()));
        crate::config::SecretRef::from_toml(&toml::Value::Table(t))
    }
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The reference is not secret, but keep it short in logs.
        write!(f, "SecretRef({})", self.secret)
    }
}

/// A configuration problem of one endpoint.
#[derive(Debug, thiserror::Error)]
pub enum PostbackError {
    /// The secret reference cannot be resolved.
    #[error("postbacks `{id}`: secret `{reference}` cannot be resolved: {message}")]
    Secret {
        id: String,
        reference: String,
        message: String,
    },
    /// A setting is invalid.
    #[error("postbacks `{id}`: {message}")]
    Invalid { id: String, message: String },
}

impl PostbackConfig {
    /// Resolves the secret (unless already resolved) from the environment or
    /// a file (a relative path from the working directory) and checks the
    /// settings. For endpoints built without a config file ([`router`]'s
    /// callers); the daemon resolves through [`resolve_endpoints`].
    pub fn resolve(&mut self) -> Result<(), PostbackError> {
        self.validate()?;
        if self.resolved_secret.is_none() {
            let secret_error = |message: String| PostbackError::Secret {
                id: self.id.clone(),
                reference: self.secret.secret.clone(),
                message,
            };
            let reader = crate::config::resolve::os_secret_reader(std::path::PathBuf::new());
            let value = self
                .secret
                .to_config_ref()
                .and_then(|r| reader(&r))
                .map_err(secret_error)?;
            if value.is_empty() {
                return Err(secret_error("the secret is empty".into()));
            }
            self.resolved_secret = Some(value);
        }
        Ok(())
    }

    /// Every problem of the settings (not the secret), each with the key it
    /// concerns.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.push((
                "id",
                format!(
                    "invalid postback id `{}`: use letters, digits, `_` or `-` (it is a URL path segment and the conversions' source)",
                    self.id
                ),
            ));
        }
        if let Some(c) = &self.default_currency {
            if plugin_api::currency::minor_unit_digits(&c.to_ascii_uppercase()).is_none() {
                out.push((
                    "default_currency",
                    format!("{c:?} is not an ISO-4217 currency code"),
                ));
            }
        }
        match parse_status(&self.default_status) {
            Err(e) => out.push(("default_status", e)),
            // A new conversion the network has already reversed or rejected
            // is not a default anyone means: every postback naming no
            // status would arrive dead.
            Ok(ConversionStatus::Pending | ConversionStatus::Approved) => {}
            Ok(_) => out.push((
                "default_status",
                format!(
                    "{:?}: a new conversion starts \"pending\" or \"approved\"",
                    self.default_status
                ),
            )),
        }
        // QA29-D M4: an empty or spaced name, or one of the fields', took
        // an endpoint that could never authenticate.
        for (key, name) in [
            ("token_header", &self.token_header),
            ("signature_header", &self.signature_header),
        ] {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                out.push((
                    key,
                    format!(
                        "{name:?} is not an HTTP header name (letters, digits and `-`, e.g. \"X-Postback-Token\")"
                    ),
                ));
            } else if [
                "host",
                "content-type",
                "content-length",
                "content-encoding",
                "transfer-encoding",
                "connection",
            ]
            .contains(&name.to_ascii_lowercase().as_str())
            {
                out.push((
                    key,
                    format!("{name:?} is a header of HTTP itself; choose another, e.g. \"X-Postback-Token\""),
                ));
            }
        }
        for (key, name) in [
            ("token_param", &self.token_param),
            ("signature_param", &self.signature_param),
        ] {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                out.push((
                    key,
                    format!("{name:?} is not a parameter name: use letters, digits, `_`, `-` or `.`, e.g. \"token\""),
                ));
            } else if name.chars().any(|c| c.is_ascii_uppercase()) {
                out.push((
                    key,
                    format!(
                        "{name:?}: write it in lower case, {:?} (parameters are matched in any case)",
                        name.to_ascii_lowercase()
                    ),
                ));
            } else if let Some((field, _)) = ALIASES
                .iter()
                .find(|(_, names)| names.contains(&name.as_str()))
            {
                out.push((
                    key,
                    format!("{name:?} is a name of the postback field `{field}`; choose another, e.g. \"token\""),
                ));
            }
        }
        if parse_event(&self.default_event_type).is_none() {
            out.push((
                "default_event_type",
                format!(
                    "{:?} is not sale, lead, signup, install or other",
                    self.default_event_type
                ),
            ));
        }
        out
    }

    /// Checks ids, defaults and names (not the secret): the first problem.
    pub fn validate(&self) -> Result<(), PostbackError> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some((key, message)) => Err(PostbackError::Invalid {
                id: self.id.clone(),
                message: format!("{key}: {message}"),
            }),
        }
    }
}

/// The `[[postbacks]]` checks of [`crate::config::parse`] (pure): each
/// entry's settings, unique ids, and no id shared with a connector (both
/// would store conversions under one `source`). `postbacks` pairs each entry
/// with its index in the file; every problem is pushed with its file, line
/// and column.
pub fn check_semantics<'a>(
    postbacks: &[(usize, PostbackConfig)],
    connector_ids: impl IntoIterator<Item = &'a str>,
    map: &crate::config::SourceMap,
    errors: &mut Vec<crate::config::ConfigError>,
) {
    let connectors: Vec<&str> = connector_ids.into_iter().collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, p) in postbacks {
        let path = |k: &str| format!("postbacks[{i}].{k}");
        for (key, message) in p.problems() {
            errors.push(map.error(&path(key), message));
        }
        if let Some(prev) = seen.insert(&p.id, *i) {
            errors.push(map.error(
                &path("id"),
                format!(
                    "duplicate postback id `{}` (also `postbacks[{prev}]`); ids must be unique",
                    p.id
                ),
            ));
        }
        if let Some(m) = &p.mirrors {
            if !connectors.contains(&m.as_str()) {
                let configured = match connectors.is_empty() {
                    true => "none are configured".to_owned(),
                    false => format!(
                        "configured: {}",
                        (connectors.iter().map(|c| format!("`{c}`")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                errors.push(map.error(
                    &path("mirrors"),
                    format!(
                        "`{m}` is not a [[connectors]] id; name the API connector of the same network whose conversions these postbacks copy ({configured})"
                    ),
                ));
            }
        }
        if let Some(c) = connectors.iter().position(|c| *c == p.id) {
            errors.push(map.error(
                &path("id"),
                format!(
                    "postback id `{}` is also the id of `connectors[{c}]`: both would store conversions under the source `{}`; give the endpoint its own id (e.g. `{}_s2s`)",
                    p.id, p.id, p.id
                ),
            ));
        }
    }
}

/// The fewest characters a postback secret (token or HMAC key) should have:
/// wrong secrets are answered at full speed, never locked out, so its
/// length is what keeps a sender from guessing it (security QA31-C F5: a
/// one-character token fell to 17 requests). As `[daemon] status_token`'s
/// least length; a shorter one is warned about (`config check`, each start
/// and SIGHUP), not refused, so an upgrade does not stop a working
/// endpoint taking postbacks.
pub const MIN_POSTBACK_SECRET_CHARS: usize = crate::server::MIN_STATUS_TOKEN_CHARS;

/// The warning for an endpoint whose resolved secret is shorter than
/// [`MIN_POSTBACK_SECRET_CHARS`] (naming the reference, never the value).
pub fn weak_secret(p: &PostbackConfig) -> Option<String> {
    let n = p.resolved_secret.as_ref()?.chars().count();
    (n < MIN_POSTBACK_SECRET_CHARS).then(|| {
        format!(
            "postback `{}`: secret `{}` is {n} character{}, fewer than {MIN_POSTBACK_SECRET_CHARS}: a sender could guess it (wrong secrets are not slowed down); put 32 or more random letters and digits there (e.g. the output of `openssl rand -hex 32`) and the same in the network's postback settings",
            p.id,
            p.secret.secret,
            if n == 1 { "" } else { "s" }
        )
    })
}

/// Resolves every endpoint's secret with `read_secret` (the same reader, and
/// so the same rules, as connectors' secrets). Every error is returned, with
/// file, line and column. `cfg` comes from [`crate::config::parse`], so its
/// `postbacks[i]` is the file's `[[postbacks]]` number `i`.
pub fn resolve_endpoints(
    cfg: &crate::config::Config,
    read_secret: crate::config::resolve::SecretReader<'_>,
) -> Result<Vec<PostbackConfig>, Vec<crate::config::ConfigError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, p) in cfg.postbacks.iter().enumerate() {
        let path = format!("postbacks[{i}].secret");
        let value = p
            .secret
            .to_config_ref()
            .and_then(|r| read_secret(&r).map_err(|m| format!("secret not resolvable: {m}")));
        match value {
            Ok(v) if v.is_empty() => errors.push(
                cfg.source
                    .error(&path, format!("secret `{}` is empty", p.secret.secret)),
            ),
            // A token travels in a URL or header, which cannot carry it, and
            // an `.env`-style file of several lines is a mistake for a key
            // too (QA31-C F10, as connectors' secrets). Not shown.
            Ok(v) if v.chars().any(char::is_control) => errors.push(cfg.source.error(
                &path,
                format!(
                    "secret `{}` holds {} (the value is not shown): put the secret alone in it, on one line (a `file:` secret's trailing newline is removed)",
                    p.secret.secret,
                    crate::config::resolve::control_named(&v)
                ),
            )),
            Ok(v) => {
                let mut p = p.clone();
                p.resolved_secret = Some(v);
                out.push(p);
            }
            Err(m) => errors.push(cfg.source.error(&path, m)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// [`resolve_endpoints`] with the OS: environment variables, and files
/// relative to the config file's directory.
pub fn resolve_all(
    cfg: &crate::config::Config,
) -> Result<Vec<PostbackConfig>, Vec<crate::config::ConfigError>> {
    let base = std::path::Path::new(&cfg.source.file)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let reader = crate::config::resolve::os_secret_reader(base);
    resolve_endpoints(cfg, &reader)
}

/// State the postback routes need.
#[derive(Debug, Clone)]
pub struct PostbackState {
    /// The store conversions are written to.
    pub store: crate::store::Store,
    /// Configured endpoints.
    pub postbacks: Vec<PostbackConfig>,
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// Outcome label of one postback request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A new conversion was stored.
    Stored,
    /// An existing conversion changed (a new revision).
    Updated,
    /// A replay: identical to what is stored, nothing written.
    Duplicate,
    /// An out-of-date delivery (409): it would restore a superseded revision,
    /// or its status time is older than the stored one. Nothing written.
    Stale,
    /// No credentials (401).
    Unauthorized,
    /// Wrong credentials (403).
    Forbidden,
    /// Malformed or incomplete parameters, or a body that could not be
    /// read (400).
    BadRequest,
    /// A body over the 2 MiB limit (413).
    TooLarge,
    /// No `[[postbacks]]` entry with that id (404).
    UnknownConnector,
    /// The endpoint's secret could not be resolved (503).
    Misconfigured,
    /// The store failed (500); the caller should retry.
    StoreError,
}

impl Outcome {
    /// The Prometheus label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Updated => "updated",
            Outcome::Duplicate => "duplicate",
            Outcome::Stale => "stale",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::BadRequest => "bad_request",
            Outcome::TooLarge => "too_large",
            Outcome::UnknownConnector => "unknown_connector",
            Outcome::Misconfigured => "misconfigured",
            Outcome::StoreError => "store_error",
        }
    }
}

static COUNTERS: LazyLock<Mutex<BTreeMap<(String, Outcome), u64>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

fn count(connector: &str, outcome: Outcome) {
    let mut c = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    *c.entry((connector.to_owned(), outcome)).or_insert(0) += 1;
}

/// Current counters: `(connector, outcome, count)`. Unknown connector ids are
/// counted under connector `unknown` (ids in URLs are caller-controlled).
pub fn counters() -> Vec<(String, &'static str, u64)> {
    let c = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    c.iter()
        .map(|((conn, o), n)| (conn.clone(), o.as_str(), *n))
        .collect()
}

/// The counters in Prometheus text format, for `/metrics`.
pub fn render_metrics() -> String {
    let mut out = String::from(
        "# HELP reckon_postback_requests_total Postback requests by connector and outcome.\n\
         # TYPE reckon_postback_requests_total counter\n",
    );
    for (conn, outcome, n) in counters() {
        out.push_str(&format!(
            "reckon_postback_requests_total{{connector=\"{conn}\",outcome=\"{outcome}\"}} {n}\n"
        ));
    }
    out
}

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

/// Accepted parameter names per field (compared case-insensitively).
pub const ALIASES: &[(&str, &[&str])] = &[
    (
        "transaction_id",
        &[
            "transaction_id",
            "txn_id",
            "txid",
            "tid",
            "conversion_id",
            "action_id",
            "actionid",
        ],
    ),
    (
        "click_id",
        &[
            "click_id",
            "clickid",
            "irclickid",
            "_ef_transaction_id",
            "subid1",
        ],
    ),
    ("order_id", &["order_id", "orderid", "oid", "order"]),
    (
        "amount",
        &["amount", "sale_amount", "sale", "order_amount", "revenue"],
    ),
    (
        "payout",
        &["payout", "commission", "payout_amount", "price"],
    ),
    ("currency", &["currency", "currency_code"]),
    (
        "status",
        &["status", "action_status", "actionstatus", "state"],
    ),
    (
        "partner_id",
        &[
            "partner_id",
            "affiliate_id",
            "affid",
            "aff_id",
            "publisher_id",
            "mediapartnerid",
            "pid",
        ],
    ),
    (
        "partner_name",
        &["partner_name", "affiliate_name", "publisher_name"],
    ),
    (
        "campaign_id",
        &["campaign_id", "campaignid", "offer_id", "program_id"],
    ),
    ("event", &["event", "event_type", "event_name"]),
    (
        "timestamp",
        &[
            "timestamp",
            "ts",
            "occurred_at",
            "event_time",
            "eventdate",
            "conversion_time",
        ],
    ),
    (
        "status_time",
        &["status_time", "status_changed_at", "status_updated_at"],
    ),
    ("coupon", &["coupon", "coupon_code"]),
    ("utm_source", &["utm_source"]),
    ("utm_medium", &["utm_medium"]),
    ("utm_campaign", &["utm_campaign"]),
    ("utm_content", &["utm_content"]),
    ("utm_term", &["utm_term"]),
];

/// The fields that are ids: matched as written, so two ways of writing
/// one id would make two conversions, partners or orders. A JSON number
/// is read as the id it names ([`body_params`]), and a Unicode space
/// or a control or invisible character
/// inside one is refused, naming the parameter ([`parse_input`]).
const ID_FIELDS: &[&str] = &[
    "transaction_id",
    "click_id",
    "order_id",
    "partner_id",
    "campaign_id",
    "coupon",
];

/// The field a parameter name is one of the accepted names of.
fn field_of(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(_, names)| names.iter().any(|n| *n == lower))
        .map(|(field, _)| *field)
}

/// A character an id may not hold, with what is wrong with it: a control
/// or invisible character (the host refuses these in every record, but
/// named the record's field, `external_id`, not the parameter sent: QA37
/// R-L6), or a space other than the ASCII one (a no-break space U+00A0, an
/// em space U+2003, ...), which shows as a space, so `A 100` and
/// `A<U+00A0>100` would look like one id and be two (QA36 A-L3).
fn odd_id_char(v: &str) -> Option<String> {
    v.chars().find_map(|c| {
        let what = if c.is_control() {
            "the control character U+{:04X}, which no id holds"
        } else if plugin_api::validate::is_invisible(c) {
            "the invisible character U+{:04X} (a text-direction control, zero-width character or line separator): the id would show as other text, or as an id it is not"
        } else if c.is_whitespace() && c != ' ' {
            "the space character U+{:04X}, not the ASCII space: the id would look like another one; send it with ASCII spaces only"
        } else {
            return None;
        };
        Some(what.replace("U+{:04X}", &format!("U+{:04X}", u32::from(c))))
    })
}

/// A character a partner name may not hold (QA46 S-L1): a control
/// character (a line break split the name's row in `summary.csv` for
/// line-based tools), a text-direction control (`<U+202E>gnp.exe` showed
/// as `exe.png` in statements and reports) or a line or paragraph
/// separator. The other invisible characters an id may not hold are
/// written in names: the zero-width joiner and non-joiner in Persian and
/// Indic words and emoji sequences (QA47 R-M2), tag characters in flags;
/// so are other spaces than the ASCII one: a name is shown, not matched.
fn odd_name_char(v: &str) -> Option<String> {
    let directs = |c: char| {
        matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
    };
    v.chars().find_map(|c| {
        let what = if c.is_control() {
            "the control character U+{:04X} (a line break, tab or other control), which would split or garble the name in statements and CSV files; send the name on one line"
        } else if directs(c) || c == '\u{2028}' || c == '\u{2029}' {
            "the invisible character U+{:04X} (a text-direction control or line separator): the name would show as other text in statements and reports"
        } else {
            return None;
        };
        Some(what.replace("U+{:04X}", &format!("U+{:04X}", u32::from(c))))
    })
}

/// What one postback says; absent fields keep the stored value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostbackInput {
    /// The record key.
    pub key: String,
    /// Click id, if sent.
    pub click_id: Option<String>,
    /// Order id.
    pub order_id: Option<String>,
    /// Sale amount.
    pub amount: Option<Decimal>,
    /// Partner commission.
    pub payout: Option<Decimal>,
    /// Currency code.
    pub currency: Option<String>,
    /// Status.
    pub status: Option<ConversionStatus>,
    /// Partner id.
    pub partner_id: Option<String>,
    /// Partner name.
    pub partner_name: Option<String>,
    /// Campaign / offer id.
    pub campaign_id: Option<String>,
    /// Event type.
    pub event_type: Option<EventType>,
    /// When it happened.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When its status last changed, as the network says.
    pub status_changed_at: Option<DateTime<Utc>>,
    /// Coupon.
    pub coupon: Option<String>,
    /// UTM fields (each `Some` overrides).
    pub utm: Utm,
}

/// Status names and their synonyms (compared case-insensitively), by
/// status; the first of each is its canonical name. The numeric codes are
/// those of networks that send `1`/`0`/`-1` (a network whose codes mean
/// otherwise must map them in its postback template).
const STATUSES: &[(ConversionStatus, &[&str])] = &[
    (
        ConversionStatus::Pending,
        &["pending", "new", "open", "hold", "held", "0"],
    ),
    (
        ConversionStatus::Approved,
        &[
            "approved",
            "approve",
            "confirmed",
            "valid",
            "paid",
            "locked",
            "1",
        ],
    ),
    (
        ConversionStatus::Reversed,
        &[
            "reversed",
            "reverse",
            "refunded",
            "returned",
            "cancelled",
            "canceled",
        ],
    ),
    (
        ConversionStatus::Rejected,
        &["rejected", "reject", "declined", "invalid", "fraud", "-1"],
    ),
];

/// A status's canonical name, as postbacks send it.
fn status_name(s: ConversionStatus) -> &'static str {
    STATUSES
        .iter()
        .find(|(status, _)| *status == s)
        .map_or("unknown", |(_, names)| names[0])
}

/// A status parameter's value; an unknown one is a 400 listing every
/// accepted name (QA36 A-L4: it listed only the four canonical ones).
fn parse_status(s: &str) -> Result<ConversionStatus, String> {
    let t = s.trim().to_ascii_lowercase();
    STATUSES
        .iter()
        .find(|(_, names)| names.contains(&t.as_str()))
        .map(|(status, _)| *status)
        .ok_or_else(|| {
            let accepted: Vec<String> = STATUSES
                .iter()
                .map(|(_, names)| format!("{} ({})", names[0], names[1..].join(", ")))
                .collect();
            format!(
                "status {:?} is not one of pending, approved, reversed, rejected; accepted, with their synonyms: {}",
                s.trim(),
                accepted.join("; ")
            )
        })
}

/// Event names and their synonyms (compared case-insensitively); the first
/// of each type is its canonical name.
const EVENTS: &[(&str, EventType)] = &[
    ("sale", EventType::Sale),
    ("lead", EventType::Lead),
    ("signup", EventType::Signup),
    ("install", EventType::Install),
    ("other", EventType::Other),
    ("purchase", EventType::Sale),
    ("order", EventType::Sale),
    ("base", EventType::Sale),
    ("cps", EventType::Sale),
    ("cpl", EventType::Lead),
    ("sign_up", EventType::Signup),
    ("registration", EventType::Signup),
    ("register", EventType::Signup),
    ("app_install", EventType::Install),
];

fn parse_event(s: &str) -> Option<EventType> {
    let s = s.trim().to_ascii_lowercase();
    EVENTS.iter().find(|(n, _)| *n == s).map(|(_, e)| *e)
}

/// An event parameter's value; an unknown one is an error (a typo such as
/// `leads` would otherwise be priced as an `other` event).
fn parse_event_param(s: &str) -> Result<EventType, String> {
    parse_event(s).ok_or_else(|| {
        let names: Vec<&str> = EVENTS.iter().map(|(n, _)| *n).collect();
        format!(
            "event {s:?} is not one of sale, lead, signup, install, other (accepted: {})",
            names.join(", ")
        )
    })
}

fn parse_amount(field: &str, s: &str) -> Result<Decimal, String> {
    let t = s.trim();
    // `12,34` (no dot) means 12.34, as Everflow documents. `1,234` could as
    // well be a thousands separator; a guess would be 1000× off, so it is
    // refused.
    let normalised;
    let t = if t.contains(',') && !t.contains('.') {
        if t.rsplit(',').next().is_some_and(|frac| frac.len() == 3) {
            return Err(format!(
                "{field} {s:?} is ambiguous (a decimal comma or a thousands separator?): send it with a `.` decimal point and no separators, e.g. 1234 or 1.234"
            ));
        }
        normalised = t.replace(',', ".");
        normalised.as_str()
    } else {
        t
    };
    // Written in full: no exponent (`1e3`, a spreadsheet's `1.23457E+05`)
    // and no digit separators (`1_000`).
    let d = plugin_api::parse::plain_decimal_str(t)
        .map_err(|e| format!("{field} {e}"))?
        .ok_or_else(|| format!("{field} {s:?} is not a decimal number"))?;
    if d.is_sign_negative() {
        return Err(format!("{field} {s:?} is negative"));
    }
    // Named by the parameter sent (QA21: the host's check named the
    // record's field, `sale_amount`).
    if let Some(why) = plugin_api::validate::amount_too_large(d) {
        return Err(format!("{field} {s:?} {why}"));
    }
    Ok(d)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t
            .parse()
            .map_err(|_| format!("timestamp {s:?} is out of range"))?;
        let dt = if t.len() >= 13 {
            DateTime::from_timestamp_millis(n)
        } else {
            DateTime::from_timestamp(n, 0)
        };
        return dt.ok_or_else(|| format!("timestamp {s:?} is out of range"));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(n.and_utc());
        }
    }
    Err(format!(
        "timestamp {s:?} is not RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or epoch seconds/milliseconds"
    ))
}

/// A whole value that is a macro the network left unsubstituted, in the
/// syntaxes networks and templating tools use: `{tid}`, `#tid#`, `${tid}`,
/// `[TRANSACTION_ID]`, `%%TID%%`, `%tid%`, `<tid>`, or a stringified empty
/// value (`null`, `undefined`, `(null)`, `nil`). Stored, every such
/// postback would collapse into one conversion keyed `[TRANSACTION_ID]`.
/// Only the whole value counts: `ord[1]` or `a<b>` is a real value.
fn looks_unsubstituted(v: &str) -> bool {
    let t = v.trim();
    // A macro name: starts with a letter or `_`, then letters, digits, `_.:-`.
    let is_name = |inner: &str| {
        inner.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
    };
    let wrapped = |open: &str, close: &str| {
        t.len() > open.len() + close.len()
            && t.starts_with(open)
            && t.ends_with(close)
            && is_name(&t[open.len()..t.len() - close.len()])
    };
    (t.starts_with('{') && t.ends_with('}') && t.len() > 2 && !t.contains('"'))
        || (t.starts_with('#') && t.ends_with('#') && t.len() > 2)
        || wrapped("${", "}")
        || wrapped("[", "]")
        || wrapped("%%", "%%")
        || wrapped("%", "%")
        || wrapped("<", ">")
        || matches!(
            t.to_ascii_lowercase().as_str(),
            "null" | "undefined" | "(null)" | "nil"
        )
}

/// How far in the future a postback's timestamp may be (clock skew between
/// the network and us); later is a 400.
pub const MAX_FUTURE_SKEW: chrono::Duration = chrono::Duration::days(1);

/// `0` (or `000…`): the value of an unfilled time macro.
fn is_zero_time(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && t.bytes().all(|b| b == b'0')
}

/// The accepted parameter names of a field, as the 400 messages list them.
pub fn accepted_names(field: &str) -> String {
    ALIASES
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, names)| names.join(", "))
        .unwrap_or_default()
}

/// Builds the input from parameters. A field given twice with different
/// values (one name repeated, or two of its names) is refused: which one the
/// network meant is unknown. A timestamp more than [`MAX_FUTURE_SKEW`] after
/// `now` is refused.
pub fn parse_input(
    params: &[(String, String)],
    cfg: &PostbackConfig,
    now: DateTime<Utc>,
) -> Result<PostbackInput, String> {
    // field → (value, the parameter name it came as)
    let mut by_field: HashMap<&'static str, (&str, &str)> = HashMap::new();
    for (name, value) in params {
        let lower = name.to_ascii_lowercase();
        if lower == cfg.token_param || lower == cfg.signature_param {
            continue;
        }
        let Some(field) = field_of(name) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if looks_unsubstituted(value) {
            return Err(format!(
                "parameter `{name}` = {value:?} looks like a macro the network did not substitute"
            ));
        }
        if let Some(what) = odd_id_char(value).filter(|_| ID_FIELDS.contains(&field)) {
            return Err(format!("parameter `{name}` = {value:?} holds {what}"));
        }
        if let Some(what) = odd_name_char(value).filter(|_| field == "partner_name") {
            return Err(format!("parameter `{name}` = {value:?} holds {what}"));
        }
        match by_field.get(field) {
            Some((first, _)) if *first == value => {}
            Some((first, first_name)) => {
                let also = if first_name.eq_ignore_ascii_case(name) {
                    String::new()
                } else {
                    format!(" (as `{first_name}` and `{name}`)")
                };
                return Err(format!(
                    "parameter `{name}` is given more than once with different values{also}: {first:?} and {value:?}; send it once"
                ));
            }
            None => {
                by_field.insert(field, (value, name.as_str()));
            }
        }
    }
    let by_field: HashMap<&'static str, &str> =
        by_field.into_iter().map(|(f, (v, _))| (f, v)).collect();
    let text = |f: &str| by_field.get(f).map(|s| (*s).to_owned());
    let click_id = text("click_id");
    let key = text("transaction_id")
        .or_else(|| click_id.clone())
        .ok_or_else(|| {
            format!(
                "transaction_id is required (or a click id); accepted names: {}; click id: {}",
                accepted_names("transaction_id"),
                accepted_names("click_id")
            )
        })?;
    if key.len() > 256 {
        return Err("transaction_id is longer than 256 characters".into());
    }
    let amount = by_field
        .get("amount")
        .map(|s| parse_amount("amount", s))
        .transpose()?;
    let payout = by_field
        .get("payout")
        .map(|s| parse_amount("payout", s))
        .transpose()?;
    let currency = match by_field.get("currency") {
        Some(c) => {
            let c = c.to_ascii_uppercase();
            if plugin_api::currency::minor_unit_digits(&c).is_none() {
                return Err(format!("currency {c:?} is not an ISO-4217 code"));
            }
            Some(c)
        }
        None => None,
    };
    let status = by_field
        .get("status")
        .map(|s| parse_status(s))
        .transpose()?;
    let event_type = by_field
        .get("event")
        .map(|e| parse_event_param(e))
        .transpose()?;
    // A time between the host's earliest record day
    // (`plugin_api::validate`) and `now` + [`MAX_FUTURE_SKEW`]. A `0` (an
    // unfilled macro's usual value) is no time.
    let time = |field: &str, what: &str| -> Result<Option<DateTime<Utc>>, String> {
        let Some(t) = by_field
            .get(field)
            .filter(|s| !is_zero_time(s))
            .map(|s| parse_time(s))
            .transpose()?
        else {
            return Ok(None);
        };
        let earliest = plugin_api::validate::EARLIEST;
        if t.date_naive() < earliest {
            return Err(format!(
                "{field} {} is before {earliest}: send the {what} (or leave it out: the time received is used)",
                t.to_rfc3339()
            ));
        }
        if t > now + MAX_FUTURE_SKEW {
            return Err(format!(
                "{field} {} is more than {} hours in the future (server time {})",
                t.to_rfc3339(),
                MAX_FUTURE_SKEW.num_hours(),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        Ok(Some(t))
    };
    let occurred_at = time("timestamp", "conversion time")?;
    let status_changed_at = time("status_time", "time of the status change")?;
    Ok(PostbackInput {
        key,
        click_id,
        order_id: text("order_id"),
        amount,
        payout,
        currency,
        status,
        partner_id: text("partner_id"),
        partner_name: text("partner_name"),
        campaign_id: text("campaign_id"),
        event_type,
        occurred_at,
        status_changed_at,
        coupon: text("coupon"),
        utm: Utm {
            source: text("utm_source"),
            medium: text("utm_medium"),
            campaign: text("utm_campaign"),
            content: text("utm_content"),
            term: text("utm_term"),
        },
    })
}

/// Applies a postback to the stored conversion (if any), giving the new value.
///
/// Absent fields keep their stored value. `occurred_at` defaults to the stored
/// value, else `now`. `status_changed_at` is the postback's status time when
/// it sends one; otherwise it moves to `now` only when the status changes, so
/// a replay yields an identical record.
pub fn merge(
    existing: Option<&Conversion>,
    input: &PostbackInput,
    cfg: &PostbackConfig,
    now: DateTime<Utc>,
) -> Result<Conversion, String> {
    let currency = input
        .currency
        .clone()
        .or_else(|| {
            existing.and_then(|e| {
                e.sale_amount
                    .as_ref()
                    .or(e.commission.as_ref())
                    .map(|m| m.currency.clone())
            })
        })
        .or_else(|| {
            cfg.default_currency
                .as_ref()
                .map(|c| c.to_ascii_uppercase())
        });
    // A conversion's amounts are in one currency, and `currency` names the
    // currency of the amounts the postback sends (QA36 A-M7: a
    // currency-only correction answered `duplicate`, and a new amount in a
    // new currency left the stored payout in the old one). A currency other
    // than a stored amount's, for an amount this postback does not send, is
    // refused: whether that amount is in the new currency is unknown.
    if let (Some(new), Some(e)) = (&input.currency, existing) {
        for (param, sent, stored) in [
            ("amount", input.amount.is_some(), &e.sale_amount),
            ("payout", input.payout.is_some(), &e.commission),
        ] {
            if let Some(m) = stored.as_ref().filter(|m| !sent && m.currency != *new) {
                return Err(format!(
                    "currency {new} differs from the currency of conversion `{}`'s stored {param} ({} {}), which this postback does not send: send every amount of the conversion (`amount` and `payout`) with the new currency, or leave `currency` out",
                    input.key, m.amount, m.currency
                ));
            }
        }
    }
    let money = |amount: Option<Decimal>, old: Option<&Money>| -> Result<Option<Money>, String> {
        match amount {
            Some(a) => {
                let c = currency.clone().ok_or(
                    "currency is required with an amount or payout (or set default_currency)",
                )?;
                Ok(Some(Money::new(a, c)))
            }
            None => Ok(old.cloned()),
        }
    };
    // A sale amount finer than its currency's minor unit (`100.995` USD)
    // is no price: an order file refuses it, and a postback's became a
    // commission basis (QA38a L1). The network's own commission may be
    // finer (some report fractions of a cent); Reckon prices its own.
    if let (Some(a), Some(c)) = (input.amount, currency.as_deref()) {
        let digits = plugin_api::currency::minor_unit_digits(c).unwrap_or(2);
        if a.normalize().scale() > digits {
            return Err(format!(
                "amount {a} has more decimals than {c} has ({digits}): send the sale amount as charged, e.g. {}",
                a.round_dp_with_strategy(digits, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            ));
        }
    }
    let default_status = parse_status(&cfg.default_status)?;
    let status = input
        .status
        .or(existing.map(|e| e.status))
        .unwrap_or(default_status);
    let status_changed_at = match (input.status_changed_at, existing) {
        (Some(t), _) => Some(t),
        (None, Some(e)) if e.status == status => e.status_changed_at,
        (None, Some(_)) => Some(now),
        (None, None) => None,
    };
    let partner_id = input
        .partner_id
        .clone()
        .or_else(|| existing.map(|e| e.partner_id.clone()))
        .or_else(|| cfg.default_partner_id.clone())
        .ok_or_else(|| {
            format!(
                "partner_id is required for a new conversion; accepted names: {} (or set default_partner_id)",
                accepted_names("partner_id")
            )
        })?;
    let pick = |new: &Option<String>, old: Option<&Option<String>>| {
        new.clone().or_else(|| old.cloned().flatten())
    };
    let old_utm = existing.map(|e| &e.utm);
    let conversion = Conversion {
        source: cfg.id.clone(),
        external_id: input.key.clone(),
        order_id: pick(&input.order_id, existing.map(|e| &e.order_id)),
        click_id: pick(&input.click_id, existing.map(|e| &e.click_id)),
        clicked_at: existing.and_then(|e| e.clicked_at),
        partner_id,
        partner_name: pick(&input.partner_name, existing.map(|e| &e.partner_name)),
        campaign_id: pick(&input.campaign_id, existing.map(|e| &e.campaign_id)),
        event_type: input
            .event_type
            .or(existing.map(|e| e.event_type))
            .or_else(|| parse_event(&cfg.default_event_type))
            .unwrap_or(EventType::Sale),
        occurred_at: input
            .occurred_at
            .or(existing.map(|e| e.occurred_at))
            .unwrap_or(now),
        sale_amount: money(input.amount, existing.and_then(|e| e.sale_amount.as_ref()))?,
        commission: money(input.payout, existing.and_then(|e| e.commission.as_ref()))?,
        status,
        status_changed_at,
        locked_at: existing.and_then(|e| e.locked_at),
        coupon: pick(&input.coupon, existing.map(|e| &e.coupon)),
        utm: Utm {
            source: pick(&input.utm.source, old_utm.map(|u| &u.source)),
            medium: pick(&input.utm.medium, old_utm.map(|u| &u.medium)),
            campaign: pick(&input.utm.campaign, old_utm.map(|u| &u.campaign)),
            content: pick(&input.utm.content, old_utm.map(|u| &u.content)),
            term: pick(&input.utm.term, old_utm.map(|u| &u.term)),
        },
    };
    // What the host checks of every plugin's records (ids without control
    // characters, currencies, times), so a postback stores nothing a sync
    // would refuse.
    let mut record = plugin_api::Record::Conversion(conversion);
    plugin_api::validate::record(&mut record, plugin_api::RecordKind::Conversion, &cfg.id)?;
    let plugin_api::Record::Conversion(c) = record else {
        return Err("internal: a postback did not stay a conversion".into());
    };
    Ok(c)
}

/// `c` with every secret value the daemon holds masked as `***` in its text
/// fields (names, coupons, UTM fields, partner and campaign ids), with a
/// WARN naming the endpoint, key and field, as a connector's pages are
/// (security QA31-C F7: a postback template with a misplaced macro stored
/// a network's API key as the partner's name, which went on into
/// statements). A transaction id holding one is refused instead: it is the
/// record's key, which masking would change.
fn mask_known_secrets(endpoint: &str, c: Conversion) -> Result<Conversion, String> {
    let mut review = plugin_api::review::Review::default();
    for s in crate::plugins::http::known_secrets() {
        review.add_secret(&s);
    }
    if review.mask(&c.external_id).is_some() {
        return Err("the transaction id holds a secret value this daemon holds (a misplaced macro in the network's postback template?); fix the template".into());
    }
    let mut record = plugin_api::Record::Conversion(c);
    for w in review.record(endpoint, &mut record) {
        if w.kind == plugin_api::review::WarningKind::EchoedSecret {
            tracing::warn!(
                postback = endpoint,
                key = %w.key,
                field = %w.field,
                "the postback carried a secret value the daemon holds; it was masked"
            );
        }
    }
    match record {
        plugin_api::Record::Conversion(c) => Ok(c),
        _ => Err("internal: a postback did not stay a conversion".into()),
    }
}

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

enum AuthFailure {
    /// No credentials (401).
    Missing(String),
    /// Wrong credentials (403).
    Wrong(String),
    /// Credentials that are an unsubstituted macro (400, like any other
    /// parameter holding one).
    Macro(String),
}

/// The 400 of a token or signature that is a macro the network left
/// unsubstituted (`token={token}`). The value is not echoed: it is not the
/// secret, but it sits where the secret goes.
fn macro_credential(what: &str, from: &str) -> AuthFailure {
    AuthFailure::Macro(format!(
        "{from} looks like a macro the network did not substitute (e.g. `{{{what}}}`): put the {what} itself in the postback's configuration"
    ))
}

/// Whether `a` and `b` are equal, in time that tells neither where they
/// differ nor how long the secret is: their SHA-256 digests are compared
/// byte for byte without stopping early (a plain length check first would
/// tell a caller the token's length).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The raw query without the signature parameter, as sent (order kept).
fn query_without(query: &str, param: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            !name.eq_ignore_ascii_case(param)
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn authenticate(
    cfg: &PostbackConfig,
    secret: &str,
    headers: &HeaderMap,
    query: &str,
    body: &[u8],
    params: &[(String, String)],
) -> Result<(), AuthFailure> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    // The credential and where it came from (for messages). An empty one
    // is missing (401), not wrong (QA22 S8: `token=` got 403).
    let credential = |header_name: &str, param_name: &str| {
        let given = |v: &&str| !v.trim().is_empty();
        header(headers, header_name)
            .filter(given)
            .map(|v| (v, format!("header `{header_name}`")))
            .or_else(|| {
                param(param_name)
                    .filter(given)
                    .map(|v| (v, format!("parameter `{param_name}`")))
            })
    };
    // Every non-empty value sent for a credential, headers and parameters
    // alike: several different ones are refused, as no reading of them is
    // the sender's (QA23 N4: the first one decided, so a proxy's appended
    // header or a second `token=` could be ignored or pass).
    let several = |what: &str, header_name: &str, param_name: &str| {
        let sent = |v: &&str| !v.trim().is_empty();
        let in_headers: Vec<&str> = headers
            .get_all(header_name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(sent)
            .collect();
        let in_params: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(param_name))
            .map(|(_, v)| v.as_str())
            .filter(sent)
            .collect();
        let mut values: Vec<&str> = in_headers.iter().chain(&in_params).copied().collect();
        values.sort_unstable();
        values.dedup();
        (values.len() > 1).then(|| {
            // Where the copies came from (QA28-E F1: it always said
            // "header and parameter").
            let count = |n: usize, one: String| match n {
                1 => one,
                n => format!("{n} {one}s"),
            };
            let mut from = Vec::new();
            if !in_headers.is_empty() {
                from.push(count(in_headers.len(), format!("header `{header_name}`")));
            }
            if !in_params.is_empty() {
                from.push(count(in_params.len(), format!("parameter `{param_name}`")));
            }
            AuthFailure::Wrong(format!(
                "the {what} was sent {} times with different values ({}): send it once",
                values.len(),
                from.join(", ")
            ))
        })
    };
    let (what, header_name, param_name) = match cfg.auth {
        PostbackAuth::Token => ("token", &cfg.token_header, &cfg.token_param),
        PostbackAuth::Hmac => ("signature", &cfg.signature_header, &cfg.signature_param),
    };
    // A header the HTTP layer cannot read as text was sent, not missing
    // (QA24 L5: `X-Postback-Token: é` was answered "missing token").
    if headers
        .get_all(header_name.as_str())
        .iter()
        .any(|v| v.to_str().is_err())
    {
        return Err(AuthFailure::Wrong(format!(
            "header `{header_name}` holds characters other than visible ASCII: the {what} is sent as configured, in ASCII"
        )));
    }
    if let Some(refused) = several(what, header_name, param_name) {
        return Err(refused);
    }
    match cfg.auth {
        PostbackAuth::Token => {
            let (given, from) =
                credential(&cfg.token_header, &cfg.token_param).ok_or_else(|| {
                    AuthFailure::Missing(format!(
                        "missing token: send header `{}` or parameter `{}`",
                        cfg.token_header, cfg.token_param
                    ))
                })?;
            if constant_time_eq(given.as_bytes(), secret.as_bytes()) {
                Ok(())
            } else if looks_unsubstituted(given) {
                Err(macro_credential("token", &from))
            } else {
                Err(AuthFailure::Wrong("wrong token".into()))
            }
        }
        PostbackAuth::Hmac => {
            let (given, from) = credential(&cfg.signature_header, &cfg.signature_param)
                .ok_or_else(|| {
                    AuthFailure::Missing(format!(
                        "missing signature: send header `{}` or parameter `{}` (hex HMAC-SHA256)",
                        cfg.signature_header, cfg.signature_param
                    ))
                })?;
            if looks_unsubstituted(given) {
                return Err(macro_credential("signature", &from));
            }
            let given = given.trim();
            // `sha256=` in any case (`SHA256=`: QA28-E F4).
            let given = match given.get(..7) {
                Some(p) if p.eq_ignore_ascii_case("sha256=") => &given[7..],
                _ => given,
            };
            let given = hex::decode(given)
                .map_err(|_| AuthFailure::Wrong("signature is not hex".into()))?;
            let message: Vec<u8> = if body.is_empty() {
                query_without(query, &cfg.signature_param).into_bytes()
            } else {
                body.to_vec()
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .map_err(|_| AuthFailure::Wrong("unusable secret".into()))?;
            mac.update(&message);
            mac.verify_slice(&given)
                .map_err(|_| AuthFailure::Wrong("wrong signature".into()))
        }
    }
}

/// Hex HMAC-SHA256 of `message` keyed with `secret` (for callers and tests).
pub fn sign(secret: &str, message: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------
// Group-commit writer
// ---------------------------------------------------------------------------

/// What the writer did with one postback.
#[derive(Debug, Clone, PartialEq)]
enum WriteResult {
    Done(Outcome, u64),
    Invalid(String),
    /// Out of date ([`stale_reason`]): refused with 409, nothing written.
    Stale(String),
    Failed(String),
}

/// Where a status stands in a conversion's life: networks move a
/// conversion forward, pending, then approved, then reversed or rejected
/// (a rejected pending conversion skips approved).
fn status_rank(s: ConversionStatus) -> u8 {
    match s {
        ConversionStatus::Pending => 0,
        ConversionStatus::Approved => 1,
        ConversionStatus::Reversed | ConversionStatus::Rejected => 2,
    }
}

/// Why a delivery that would change `existing` into `merged` is out of
/// date, if it is (QA10 M1: replaying an older postback after a change
/// rolled the conversion back). `earlier` are the conversion's superseded
/// values, oldest first; `first_seen` is when the conversion was first
/// stored (when its status was set, if it has no status time).
///
/// - A status time older than the stored one is stale.
/// - Without a newer status time, a delivery whose result equals a
///   superseded value (apart from the status change time, which the server
///   sets) is a replay of an older postback: it would undo what came after.
/// - Without a status time newer than the stored status's, a delivery that
///   moves the status back (approved to pending, reversed or rejected to
///   approved or pending) is an older delivery arriving late (QA36 A-H3: a
///   network retrying a timed-out `approved` after the `reversed` re-approved
///   the sale).
///
/// A network restoring an earlier state on purpose sends the status time of
/// that change (`status_time`), newer than the stored one.
fn stale_reason(
    existing: &Conversion,
    merged: &Conversion,
    status_time: Option<DateTime<Utc>>,
    earlier: &[Conversion],
    first_seen: DateTime<Utc>,
) -> Option<String> {
    let stored_time = existing.status_changed_at;
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let backwards = status_rank(merged.status) < status_rank(existing.status);
    match (status_time, stored_time) {
        (Some(t), Some(stored)) if t < stored => {
            return Some(format!(
                "status_time {} is older than the stored conversion's status time {}: this postback is out of date and was not applied",
                fmt(t),
                fmt(stored)
            ))
        }
        (Some(t), Some(stored)) if t > stored => return None,
        // No stored status time: the stored status is the one the
        // conversion was first stored with, so a move back needs a status
        // time after `first_seen`.
        (Some(t), None) if !backwards || t > first_seen => return None,
        _ => {}
    }
    let same_state = |old: &Conversion| {
        let mut old = old.clone();
        old.status_changed_at = merged.status_changed_at;
        old == *merged
    };
    if earlier.iter().any(same_state) {
        return Some(format!(
            "this postback would restore an earlier, superseded revision of conversion `{}` (see `reckon records history --kind conversions --source {} --key <transaction id>`): it is a replay of an older delivery and was not applied; to restore that state on purpose, send `status_time` with the time of the change",
            merged.external_id, merged.source
        ));
    }
    backwards.then(|| {
        format!(
            "this postback would move conversion `{}` back from {} to {}: networks move a conversion forward (pending, approved, then reversed or rejected), so it is taken for an older delivery arriving late and was not applied; to move it back on purpose, send `status_time` with the time of the change, after the stored status's {}",
            merged.external_id,
            status_name(existing.status),
            status_name(merged.status),
            fmt(stored_time.unwrap_or(first_seen))
        )
    })
}

struct Job {
    cfg: Arc<PostbackConfig>,
    input: PostbackInput,
    reply: tokio::sync::oneshot::Sender<WriteResult>,
}

/// Most postbacks committed in one group.
const MAX_BATCH: usize = 2048;

/// Where the writer reports the sources of each committed group that
/// stored or changed a claim (the daemon reconciles their programs).
pub type Commits = tokio::sync::mpsc::UnboundedSender<Vec<String>>;

fn spawn_writer(store: Store, commits: Option<Commits>) -> tokio::sync::mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    std::thread::Builder::new()
        .name("postback-writer".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = rx.blocking_recv() {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                write_batch(&store, std::mem::take(&mut batch), commits.as_ref());
            }
        })
        .expect("spawn postback writer thread");
    tx
}

/// Merges, commits and flushes one group, then answers every job in it and
/// reports the sources it changed to `commits`.
fn write_batch(store: &Store, jobs: Vec<Job>, commits: Option<&Commits>) {
    let now = Utc::now();
    // Pending values of this group by (source, key), so several postbacks of
    // one key in a group apply in order, each with when the conversion was
    // first stored (`now` if in this group), for [`stale_reason`].
    let mut pending: HashMap<(String, String), (Conversion, DateTime<Utc>)> = HashMap::new();
    // Records to commit per source; a key repeats only after a cut, so every
    // changed value of a key becomes its own revision.
    let mut chunk: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    let mut chunk_keys: HashSet<(String, String)> = HashSet::new();
    let mut changed: BTreeSet<String> = BTreeSet::new();
    // Values of a key superseded within this group (not yet, or only just,
    // in the store's revisions), for [`stale_reason`].
    let mut superseded: HashMap<(String, String), Vec<Conversion>> = HashMap::new();
    let mut results: Vec<WriteResult> = Vec::with_capacity(jobs.len());
    let mut failed: Option<String> = None;

    let commit = |chunk: &mut BTreeMap<String, Vec<Record>>| -> Result<(), String> {
        for (source, records) in std::mem::take(chunk) {
            store
                .commit_page(&source, &records, None, now)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    };

    for job in &jobs {
        if let Some(e) = &failed {
            results.push(WriteResult::Failed(e.clone()));
            continue;
        }
        let source = job.cfg.id.clone();
        let k = (source.clone(), job.input.key.clone());
        let existing = match pending.get(&k) {
            Some(c) => Some(c.clone()),
            None => match store.get_record(RecordKind::Conversion, &source, &job.input.key) {
                Ok(Some(stored)) => match stored.record {
                    Record::Conversion(c) => Some((c, stored.first_seen)),
                    _ => None,
                },
                Ok(None) => None,
                Err(e) => {
                    failed = Some(e.to_string());
                    results.push(WriteResult::Failed(e.to_string()));
                    continue;
                }
            },
        };
        let first_seen = existing.as_ref().map_or(now, |(_, t)| *t);
        let existing = existing.map(|(c, _)| c);
        let merged = match merge(existing.as_ref(), &job.input, &job.cfg, now)
            .and_then(|m| mask_known_secrets(&job.cfg.id, m))
        {
            Ok(m) => m,
            Err(msg) => {
                results.push(WriteResult::Invalid(msg));
                continue;
            }
        };
        let outcome = match &existing {
            None => Outcome::Stored,
            Some(e) if *e == merged => Outcome::Duplicate,
            Some(_) => Outcome::Updated,
        };
        if let (Outcome::Updated, Some(e)) = (outcome, &existing) {
            let earlier = match store.revisions(RecordKind::Conversion, &source, &job.input.key) {
                Ok(revisions) => revisions
                    .into_iter()
                    .filter_map(|r| match r.record {
                        Record::Conversion(c) => Some(c),
                        _ => None,
                    })
                    .chain(superseded.get(&k).into_iter().flatten().cloned())
                    .collect::<Vec<_>>(),
                Err(e) => {
                    failed = Some(e.to_string());
                    results.push(WriteResult::Failed(e.to_string()));
                    continue;
                }
            };
            if let Some(reason) = stale_reason(
                e,
                &merged,
                job.input.status_changed_at,
                &earlier,
                first_seen,
            ) {
                results.push(WriteResult::Stale(reason));
                continue;
            }
            superseded.entry(k.clone()).or_default().push(e.clone());
        }
        if outcome != Outcome::Duplicate {
            if chunk_keys.contains(&k) {
                if let Err(e) = commit(&mut chunk) {
                    failed = Some(e.clone());
                    results.push(WriteResult::Failed(e));
                    continue;
                }
                chunk_keys.clear();
            }
            chunk_keys.insert(k.clone());
            changed.insert(source.clone());
            chunk
                .entry(source)
                .or_default()
                .push(Record::Conversion(merged.clone()));
            pending.insert(k, (merged, first_seen));
        }
        results.push(WriteResult::Done(outcome, 0));
    }
    if failed.is_none() {
        let t0 = std::time::Instant::now();
        let r1 = commit(&mut chunk);
        let t1 = t0.elapsed();
        let r = r1.and_then(|()| store.flush().map_err(|e| e.to_string()));
        tracing::trace!(
            postbacks = jobs.len(),
            commit_us = t1.as_micros() as u64,
            flush_us = (t0.elapsed() - t1).as_micros() as u64,
            "postback group committed"
        );
        if let Err(e) = r {
            failed = Some(e);
        }
    }
    if failed.is_none() && !changed.is_empty() {
        if let Some(c) = commits {
            let _ = c.send(changed.into_iter().collect());
        }
    }
    for (job, result) in jobs.into_iter().zip(results) {
        let result = match (&failed, result) {
            // Nothing of a failed group is acknowledged: the caller retries,
            // and the retry is idempotent.
            (Some(e), WriteResult::Done(..)) => WriteResult::Failed(e.clone()),
            (_, r) => r,
        };
        let _ = job.reply.send(result);
    }
}

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Endpoint {
    cfg: Arc<PostbackConfig>,
    /// `Err` when the secret could not be resolved: the endpoint answers 503.
    secret: Result<String, String>,
}

impl Endpoint {
    fn new(mut cfg: PostbackConfig) -> Endpoint {
        let secret = match cfg.resolve() {
            Ok(()) => Ok(cfg.resolved_secret.clone().unwrap_or_default()),
            Err(e) => {
                tracing::error!(connector = %cfg.id, error = %e, "postback endpoint disabled");
                Err(e.to_string())
            }
        };
        Endpoint {
            cfg: Arc::new(cfg),
            secret,
        }
    }
}

/// What `/status` shows for one postback endpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EndpointStatus {
    /// The endpoint id (`/postback/<id>`, the conversions' source).
    pub id: String,
    /// `token` or `hmac`.
    pub auth: String,
    /// False when the endpoint answers 503 (its secret could not be resolved).
    pub enabled: bool,
    /// Why it is disabled.
    pub error: Option<String>,
}

/// Which endpoints a [`Endpoints::replace`] added, removed or changed (ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChanges {
    /// New ids.
    pub added: Vec<String>,
    /// Ids no longer configured (they answer 404 from now on).
    pub removed: Vec<String>,
    /// Ids whose settings or secret changed.
    pub changed: Vec<String>,
}

/// The configured endpoints, shared by the routes and replaced as a whole
/// when the daemon reloads its config (SIGHUP). Requests already past the
/// lookup finish with the endpoint they started with.
#[derive(Debug, Clone, Default)]
pub struct Endpoints(Arc<std::sync::RwLock<Arc<BTreeMap<String, Endpoint>>>>);

impl Endpoints {
    /// Endpoints from configs; a config whose secret is not resolved yet is
    /// resolved here ([`PostbackConfig::resolve`]) and, if that fails, the
    /// endpoint is disabled (503) and shown so in [`Endpoints::status`].
    pub fn new(configs: Vec<PostbackConfig>) -> Endpoints {
        let e = Endpoints::default();
        e.replace(configs);
        e
    }

    fn build(configs: Vec<PostbackConfig>) -> BTreeMap<String, Endpoint> {
        configs
            .into_iter()
            .map(|cfg| (cfg.id.clone(), Endpoint::new(cfg)))
            .collect()
    }

    fn current(&self) -> Arc<BTreeMap<String, Endpoint>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces every endpoint at once and says what changed.
    pub fn replace(&self, configs: Vec<PostbackConfig>) -> EndpointChanges {
        let new = Endpoints::build(configs);
        let mut guard = self.0.write().unwrap_or_else(|p| p.into_inner());
        let old = guard.clone();
        let mut changes = EndpointChanges::default();
        for (id, e) in &new {
            match old.get(id) {
                None => changes.added.push(id.clone()),
                Some(o) if o.cfg != e.cfg || o.secret != e.secret => {
                    changes.changed.push(id.clone())
                }
                Some(_) => {}
            }
        }
        changes.removed = old
            .keys()
            .filter(|id| !new.contains_key(*id))
            .cloned()
            .collect();
        *guard = Arc::new(new);
        changes
    }

    /// Every endpoint, in id order, with whether it answers.
    pub fn status(&self) -> Vec<EndpointStatus> {
        self.current()
            .values()
            .map(|e| EndpointStatus {
                id: e.cfg.id.clone(),
                auth: match e.cfg.auth {
                    PostbackAuth::Token => "token".into(),
                    PostbackAuth::Hmac => "hmac".into(),
                },
                enabled: e.secret.is_ok(),
                error: e.secret.as_ref().err().cloned(),
            })
            .collect()
    }
}

struct Shared {
    endpoints: Endpoints,
    writer: tokio::sync::mpsc::UnboundedSender<Job>,
}

/// The postback routes (`/postback/{id}`, GET and POST) over a fixed list of
/// endpoints.
pub fn router(state: PostbackState) -> axum::Router {
    router_with(state.store, Endpoints::new(state.postbacks), None)
}

/// The postback routes over a shared [`Endpoints`] that the caller may
/// replace later (the daemon does on SIGHUP).
pub fn router_with(store: Store, endpoints: Endpoints, commits: Option<Commits>) -> axum::Router {
    let shared = Arc::new(Shared {
        endpoints,
        writer: spawn_writer(store, commits),
    });
    axum::Router::new()
        .route("/postback/{id}", get(handle).post(handle))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// The largest postback body read (axum's default, set here so the
/// refusal can name it).
const BODY_LIMIT: usize = 2 << 20;

fn reply(
    connector: &str,
    outcome: Outcome,
    status: StatusCode,
    body: serde_json::Value,
) -> Response {
    count(connector, outcome);
    if status.is_client_error() || status.is_server_error() {
        // Seen at the default level, at most once a minute per endpoint and
        // outcome (QA: a network still sending an old token was invisible
        // at `info`; one line per refusal could flood the log).
        let admitted = REFUSALS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit((connector.to_owned(), outcome), std::time::Instant::now());
        // The reason as text, not a JSON string quoted again (QA9 F6),
        // with any secret the sender quoted masked (QA28-E F6).
        let raw = body["error"].as_str().unwrap_or_default();
        match admitted {
            Some(suppressed) => {
                let reason = crate::plugins::http::redact_known(raw);
                tracing::warn!(connector, outcome = outcome.as_str(), reason, refused_since_last_line = suppressed,
                "postback refused (logged at most once a minute per endpoint and outcome; reckon_postback_requests_total counts every one)")
            }
            None if tracing::enabled!(tracing::Level::DEBUG) => {
                let reason = crate::plugins::http::redact_known(raw);
                tracing::debug!(
                    connector,
                    outcome = outcome.as_str(),
                    reason,
                    "postback refused"
                )
            }
            None => {}
        }
    }
    (status, axum::Json(body)).into_response()
}

static REFUSALS: LazyLock<Mutex<LogGate<(String, Outcome)>>> =
    LazyLock::new(|| Mutex::new(LogGate::new(std::time::Duration::from_secs(60))));

/// Lets one log line per key through per `every`, counting the ones it
/// holds back.
struct LogGate<K> {
    every: std::time::Duration,
    last: HashMap<K, (std::time::Instant, u64)>,
}

impl<K: std::hash::Hash + Eq> LogGate<K> {
    fn new(every: std::time::Duration) -> Self {
        LogGate {
            every,
            last: HashMap::new(),
        }
    }

    /// `Some(held back since the last line)` when a line may be logged now.
    fn admit(&mut self, key: K, now: std::time::Instant) -> Option<u64> {
        match self.last.get_mut(&key) {
            Some((at, held)) if now.duration_since(*at) < self.every => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let n = *held;
                (*at, *held) = (now, 0);
                Some(n)
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

/// Whether a parameter name is one the endpoint reads (a field, the token
/// or the signature); others are ignored.
fn is_read(cfg: &PostbackConfig, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == cfg.token_param
        || lower == cfg.signature_param
        || ALIASES
            .iter()
            .any(|(_, names)| names.iter().any(|n| *n == lower))
}

/// With `auth = "hmac"`, a POST with a body is signed over that body only,
/// so a field in its query string would be unsigned: anyone holding one
/// signed postback could replay it with `?partner_id=…&payout=…` added (QA10
/// H1). Such a request's query may carry the signature and parameters the
/// endpoint ignores, nothing it reads as a field.
fn refuse_unsigned_query_fields(
    cfg: &PostbackConfig,
    query_params: &[(String, String)],
) -> Result<(), String> {
    let mut fields: Vec<&str> = query_params
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| {
            let lower = name.to_ascii_lowercase();
            lower != cfg.signature_param && lower != cfg.token_param && is_read(cfg, name)
        })
        .collect();
    fields.sort_unstable();
    fields.dedup();
    if fields.is_empty() {
        return Ok(());
    }
    Err(format!(
        "parameter `{}` is in the query string of a signed POST: the signature covers the body only, so send every field in the body (the query may carry only `{}`)",
        fields.join("`, `"),
        cfg.signature_param
    ))
}

/// `%XX` and `+` decoded to bytes (a bad escape is kept as written).
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Query-string or form-body pairs. A parameter the endpoint reads whose
/// value is not UTF-8 once decoded (`affiliate_id=%FF`) is an error naming
/// it: decoded lossily, different ids would become one `\u{FFFD}` id.
/// Others are ignored anyway and are decoded lossily.
fn form_pairs(bytes: &[u8], cfg: &PostbackConfig) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = String::from_utf8_lossy(&percent_decode(name)).into_owned();
        let value = match String::from_utf8(percent_decode(value)) {
            Ok(v) => v,
            Err(_) if is_read(cfg, &name) => {
                return Err(format!(
                    "parameter `{name}` is not valid UTF-8 once percent-decoded; send its value as UTF-8"
                ))
            }
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Why a body of this content type is not read, if it is not: a
/// multipart body was split on `&` as a form, and its fields read as
/// missing ("transaction_id is required", QA36 A-M8). Answered 415.
fn unsupported_body(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let ctype = header(headers, "content-type")?.to_ascii_lowercase();
    let media_type = ctype.split(';').next().unwrap_or("").trim();
    (!body.is_empty() && (media_type.starts_with("multipart/") || media_type.contains("xml")))
        .then(|| {
            format!(
                "the body is {media_type}, which postbacks do not read; send a query string, an application/x-www-form-urlencoded body or a JSON object body (application/json)"
            )
        })
}

/// A form or JSON body's parameters. A JSON body is read with every key
/// kept ([`plugin_api::json_object`]), so a key sent twice with different
/// values is refused by [`parse_input`] like a repeated query parameter
/// (serde_json's `Value` would keep the last one silently). A read
/// parameter whose JSON value is an object or an array is an error; `null`
/// is absent.
fn body_params(
    headers: &HeaderMap,
    body: &[u8],
    cfg: &PostbackConfig,
) -> Result<Vec<(String, String)>, String> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    // QA28-E F13: a gzip body's fields read as missing ("transaction id
    // is required"); say why instead.
    if let Some(enc) = header(headers, "content-encoding")
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
    {
        return Err(format!(
            "the body is compressed (Content-Encoding: {enc}), which postbacks do not decode; send it uncompressed"
        ));
    }
    let ctype = header(headers, "content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let media_type = ctype.split(';').next().unwrap_or("").trim();
    let starts_like_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let looks_json = media_type.contains("json")
        || (media_type != "application/x-www-form-urlencoded" && starts_like_json);
    if !looks_json {
        if starts_like_json {
            return Err(
                "the body is a JSON object but is sent as application/x-www-form-urlencoded; send it with Content-Type: application/json"
                    .into(),
            );
        }
        return form_pairs(body, cfg);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("body is not valid JSON: not UTF-8 ({e})"))?;
    if !text.trim_start().starts_with('{') {
        return Err("JSON body must be an object of parameters".into());
    }
    let pairs = plugin_api::json_object::entries(text)
        .map_err(|e| format!("body is not valid JSON: {e}"))?;
    // The same pairs as written: a JSON number's parameter is its literal
    // (QA6 F4: through f64, `1e3` became "1000.0" and passed the amount
    // rules, and `12345678901234567.89` became "1.2345678901234568e+16").
    let literals = plugin_api::json_object::raw_entries(text)
        .map_err(|e| format!("body is not valid JSON: {e}"))?;
    let mut out = Vec::with_capacity(pairs.len());
    for ((k, v), (_, raw)) in pairs.into_iter().zip(literals) {
        let s = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => {
                let literal = plugin_api::json_object::number_literal(raw)
                    .map_or_else(|| n.to_string(), str::to_owned);
                // QA36 A-H2: an id sent as `555.0` or `1.01e2` (a JSON
                // serializer holding ids as doubles) was stored as written,
                // a new conversion or payee beside `555`. Read as the id it
                // names, as connectors read ids.
                if field_of(&k).is_some_and(|f| ID_FIELDS.contains(&f)) {
                    match plugin_api::lenient::whole_id(&literal) {
                        Ok(id) => id.to_owned(),
                        Err(why) => {
                            return Err(format!(
                                "parameter `{k}` is the JSON number {literal}, which {why}: an id sent as a number must be a whole number written in full (send the id as it is written, as a string)"
                            ))
                        }
                    }
                } else {
                    literal
                }
            }
            // QA29-D L5: `{"tid": true}` was stored as the id "true".
            serde_json::Value::Bool(_) if is_read(cfg, &k) => {
                return Err(format!(
                    "parameter `{k}` is a boolean in the JSON body; send a string or a number"
                ));
            }
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            serde_json::Value::Object(_) | serde_json::Value::Array(_) if is_read(cfg, &k) => {
                let what = if v.is_object() {
                    "an object"
                } else {
                    "an array"
                };
                return Err(format!(
                    "parameter `{k}` is {what} in the JSON body; send a string or a number"
                ));
            }
            serde_json::Value::Object(_) | serde_json::Value::Array(_) => continue,
        };
        out.push((k, s));
    }
    Ok(out)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    use serde_json::json;
    let endpoints = shared.endpoints.current();
    let Some(endpoint) = endpoints.get(&id).cloned() else {
        return reply(
            "unknown",
            Outcome::UnknownConnector,
            StatusCode::NOT_FOUND,
            json!({"error": format!("no postback endpoint `{id}` is configured")}),
        );
    };
    // axum answers HEAD with the GET handler; a HEAD (a link checker, a
    // monitor probing the URL) must not store a sale (QA28-E F2).
    if method == Method::HEAD {
        let mut r = reply(
            &id,
            Outcome::BadRequest,
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "a postback is a GET or a POST; HEAD stores nothing"}),
        );
        r.headers_mut().insert(
            axum::http::header::ALLOW,
            axum::http::HeaderValue::from_static("GET, POST"),
        );
        return r;
    }
    // A body too large or cut off is refused here, counted and logged as
    // the endpoint's (QA28-E F3: axum's plain-text answer left no trace).
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let (outcome, error) = if too_large {
                (
                    Outcome::TooLarge,
                    format!(
                        "the body is larger than {} MiB; a postback is a few fields",
                        BODY_LIMIT >> 20
                    ),
                )
            } else {
                (
                    Outcome::BadRequest,
                    format!("the body could not be read: {}", rejection.body_text()),
                )
            };
            return reply(&id, outcome, rejection.status(), json!({ "error": error }));
        }
    };
    let secret = match &endpoint.secret {
        Ok(s) => s,
        // The reason (which secret reference failed) is in the daemon's log
        // and `/status`; callers only learn that it is the server's fault.
        Err(_) => {
            return reply(
                &id,
                Outcome::Misconfigured,
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "endpoint is misconfigured on the server (its secret cannot be resolved; see the daemon log)"}),
            )
        }
    };
    let query = query.unwrap_or_default();
    let body: &[u8] = if method == Method::POST { &body } else { &[] };
    if let Some(e) = unsupported_body(&headers, body) {
        return reply(
            &id,
            Outcome::BadRequest,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({ "error": e }),
        );
    }
    let params = form_pairs(query.as_bytes(), &endpoint.cfg).and_then(|mut params| {
        if endpoint.cfg.auth == PostbackAuth::Hmac && !body.is_empty() {
            refuse_unsigned_query_fields(&endpoint.cfg, &params)?;
        }
        params.extend(body_params(&headers, body, &endpoint.cfg)?);
        Ok(params)
    });
    let params = match params {
        Ok(p) => p,
        Err(e) => {
            return reply(
                &id,
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                json!({"error": e}),
            )
        }
    };
    match authenticate(&endpoint.cfg, secret, &headers, &query, body, &params) {
        Ok(()) => {}
        Err(AuthFailure::Missing(e)) => {
            return reply(
                &id,
                Outcome::Unauthorized,
                StatusCode::UNAUTHORIZED,
                json!({"error": e}),
            )
        }
        Err(AuthFailure::Wrong(e)) => {
            return reply(
                &id,
                Outcome::Forbidden,
                StatusCode::FORBIDDEN,
                json!({"error": e}),
            )
        }
        Err(AuthFailure::Macro(e)) => {
            return reply(
                &id,
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                json!({"error": e}),
            )
        }
    }
    let input = match parse_input(&params, &endpoint.cfg, Utc::now()) {
        Ok(i) => i,
        Err(e) => {
            return reply(
                &id,
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                json!({"error": e}),
            )
        }
    };
    let key = input.key.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job {
        cfg: endpoint.cfg.clone(),
        input,
        reply: tx,
    };
    if shared.writer.send(job).is_err() {
        return reply(
            &id,
            Outcome::StoreError,
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "the postback writer has stopped; retry later"}),
        );
    }
    match rx.await {
        Ok(WriteResult::Done(outcome, _)) => reply(
            &id,
            outcome,
            StatusCode::OK,
            json!({"result": outcome.as_str(), "connector": id, "transaction_id": key}),
        ),
        Ok(WriteResult::Invalid(e)) => reply(
            &id,
            Outcome::BadRequest,
            StatusCode::BAD_REQUEST,
            json!({"error": e}),
        ),
        Ok(WriteResult::Stale(e)) => reply(
            &id,
            Outcome::Stale,
            StatusCode::CONFLICT,
            json!({"error": e}),
        ),
        Ok(WriteResult::Failed(e)) => {
            tracing::error!(connector = %id, error = %e, "postback not stored");
            reply(
                &id,
                Outcome::StoreError,
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "not stored (store failure); retry later"}),
            )
        }
        Err(_) => reply(
            &id,
            Outcome::StoreError,
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "not stored (writer stopped); retry later"}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_at_most_once_a_minute_per_key_with_a_count() {
        let t0 = std::time::Instant::now();
        let s = std::time::Duration::from_secs;
        let mut g = LogGate::new(s(60));
        assert_eq!(g.admit("a", t0), Some(0));
        assert_eq!(g.admit("a", t0 + s(1)), None);
        assert_eq!(g.admit("a", t0 + s(59)), None);
        assert_eq!(g.admit("b", t0 + s(59)), Some(0));
        assert_eq!(g.admit("a", t0 + s(60)), Some(2));
        assert_eq!(g.admit("a", t0 + s(61)), None);
    }

    #[test]
    fn secrets_compare_equal_only_when_equal_whatever_their_lengths() {
        assert!(constant_time_eq(b"s3cret-token-0001", b"s3cret-token-0001"));
        assert!(!constant_time_eq(
            b"s3cret-token-0001",
            b"s3cret-token-0002"
        ));
        assert!(!constant_time_eq(b"s3cret", b"s3cret-token-0001"));
        assert!(!constant_time_eq(b"", b"s3cret-token-0001"));
        assert!(constant_time_eq(b"", b""));
    }

    fn cfg() -> PostbackConfig {
        PostbackConfig {
            id: "net1".into(),
            auth: PostbackAuth::Token,
            secret: SecretRef {
                secret: "env:UNUSED".into(),
            },
            resolved_secret: Some("s3cret".into()),
            token_param: default_token_param(),
            token_header: default_token_header(),
            signature_header: default_signature_header(),
            signature_param: default_signature_param(),
            default_currency: Some("USD".into()),
            default_partner_id: None,
            default_status: default_status(),
            default_event_type: default_event(),
            mirrors: None,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn params(q: &str) -> Vec<(String, String)> {
        form_pairs(q.as_bytes(), &cfg()).unwrap()
    }

    #[test]
    fn macros_map_to_fields() {
        let i = parse_input(
            &params("TransAction_ID=t1&oid=A-1&sale_amount=12,50&payout=1.25&currency=eur&status=approved&affid=p9&event=lead&ts=1764000000&utm_source=x&sub2=ignored&token=s3cret"),
            &cfg(),
            now(),
        )
        .unwrap();
        assert_eq!(i.key, "t1");
        assert_eq!(i.order_id.as_deref(), Some("A-1"));
        assert_eq!(i.amount, Some(Decimal::new(1250, 2)));
        assert_eq!(i.payout, Some(Decimal::new(125, 2)));
        assert_eq!(i.currency.as_deref(), Some("EUR"));
        assert_eq!(i.status, Some(ConversionStatus::Approved));
        assert_eq!(i.partner_id.as_deref(), Some("p9"));
        assert_eq!(i.event_type, Some(EventType::Lead));
        assert_eq!(i.occurred_at.unwrap().timestamp(), 1_764_000_000);
        assert_eq!(i.utm.source.as_deref(), Some("x"));
    }

    #[test]
    fn bad_parameters_are_explained() {
        let e = |q: &str| parse_input(&params(q), &cfg(), now()).unwrap_err();
        assert!(e("order_id=1").contains("transaction_id is required"));
        assert!(e("transaction_id={transaction_id}").contains("did not substitute"));
        assert!(e("tid=1&amount=abc").contains("amount \"abc\" is not a decimal"));
        assert!(e("tid=1&amount=-3").contains("negative"));
        assert!(e("tid=1&amount=1%2C234").contains("amount \"1,234\" is ambiguous"));
        assert!(e("tid=1&payout=1%2C000%2C000").contains("payout \"1,000,000\" is ambiguous"));
        // Named by the parameter sent, not the record's field (QA21).
        assert!(e("tid=1&amount=1000000000000000")
            .starts_with("amount \"1000000000000000\" is not below 1000000000000000 in size"));
        assert!(e("tid=1&payout=-2").contains("payout \"-2\" is negative"));
        // A sale amount finer than its currency (QA38a L1); trailing zeros
        // and a finer network commission are fine.
        let merged = |q: &str| {
            merge(
                None,
                &parse_input(&params(q), &cfg(), now()).unwrap(),
                &cfg(),
                now(),
            )
        };
        let err = merged("tid=1&affid=p&amount=100.995&currency=USD").unwrap_err();
        assert!(
            err.starts_with("amount 100.995 has more decimals than USD has (2)"),
            "{err}"
        );
        assert!(merged("tid=1&affid=p&amount=1000.5&currency=JPY").is_err());
        assert!(merged("tid=1&affid=p&amount=100.990&currency=USD").is_ok());
        assert!(merged("tid=1&affid=p&amount=10.125&currency=KWD").is_ok());
        assert!(merged("tid=1&affid=p&amount=10&payout=0.125&currency=USD").is_ok());
        let amount = |q: &str| parse_input(&params(q), &cfg(), now()).unwrap().amount;
        assert_eq!(amount("tid=1&amount=12%2C34"), Some(Decimal::new(1234, 2)));
        assert_eq!(amount("tid=1&amount=1%2C5"), Some(Decimal::new(15, 1)));
        assert!(e("tid=1&status=maybe").contains("status \"maybe\""));
        assert!(e("tid=1&currency=XXY").contains("ISO-4217"));
        assert!(e("tid=1&ts=yesterday").contains("timestamp"));
    }

    /// QA finding: `transaction_id=t27%00x` was stored, a key that cannot
    /// be typed into `records history --key`. A postback's record now gets
    /// the checks of every plugin record.
    #[test]
    fn a_postback_id_with_a_control_or_invisible_character_is_refused_naming_the_parameter() {
        let c = cfg();
        // Ids are refused naming the parameter sent (QA37 R-L6).
        let e = parse_input(&params("tid=t27%00x&affid=p1"), &c, now()).unwrap_err();
        assert_eq!(
            e,
            "parameter `tid` = \"t27\\0x\" holds the control character U+0000, which no id holds"
        );
        // QA28-E F5: a text-direction override in a partner id showed
        // `a<U+202E>fdp.exe` as `aexe.pdf` in a spreadsheet.
        let e = parse_input(&params("tid=t28&affid=a%E2%80%AEfdp.exe"), &c, now()).unwrap_err();
        assert!(
            e.starts_with(
                "parameter `affid` = \"a\\u{202e}fdp.exe\" holds the invisible character U+202E"
            ),
            "{e}"
        );
        // QA46 S-L1: a partner name is shown in statements and reports: no
        // line breaks or text-direction controls either (other spaces are
        // fine in a name).
        let e = parse_input(
            &params("tid=n1&affid=p1&partner_name=Line1%0D%0ALine2"),
            &c,
            now(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("parameter `partner_name` = \"Line1\\r\\nLine2\" holds the control character U+000D (a line break"),
            "{e}"
        );
        let e = parse_input(
            &params("tid=n2&affid=p1&affiliate_name=%E2%80%AEgnp.exe"),
            &c,
            now(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("parameter `affiliate_name` = \"\\u{202e}gnp.exe\" holds the invisible character U+202E"),
            "{e}"
        );
        let ok = parse_input(
            &params("tid=n3&affid=p1&partner_name=Acme%C2%A0GmbH"),
            &c,
            now(),
        );
        assert_eq!(ok.unwrap().partner_name.as_deref(), Some("Acme\u{a0}GmbH"));
        // QA47 R-M2: a zero-width non-joiner in a Persian word, a joiner in
        // an emoji sequence are written in names.
        for name in ["کتاب\u{200c}فروشی", "👩\u{200d}💻 Studio"] {
            let sent = format!(
                "tid=n4&affid=p1&partner_name={}",
                plugin_api::sdk::encode_component(name)
            );
            let ok = parse_input(&params(&sent), &c, now());
            assert_eq!(ok.unwrap().partner_name.as_deref(), Some(name));
        }
        let e = parse_input(
            &params("tid=n5&affid=p1&partner_name=a%E2%80%A8b"),
            &c,
            now(),
        )
        .unwrap_err();
        assert!(e.contains("holds the invisible character U+2028"), "{e}");
        let e = parse_input(&params("tid=zw2%E2%80%8B&affid=p1"), &c, now()).unwrap_err();
        assert!(
            e.starts_with(
                "parameter `tid` = \"zw2\\u{200b}\" holds the invisible character U+200B"
            ),
            "{e}"
        );
    }

    #[test]
    fn merge_keeps_stored_fields_and_is_stable_on_replay() {
        let now = Utc::now();
        let c = cfg();
        let first = parse_input(&params("tid=t1&amount=10&affid=p1"), &c, now).unwrap();
        let a = merge(None, &first, &c, now).unwrap();
        assert_eq!(a.status, ConversionStatus::Pending);
        assert_eq!(a.sale_amount, Some(Money::new(Decimal::from(10), "USD")));
        // A replay later gives the identical record.
        let later = now + chrono::Duration::minutes(5);
        assert_eq!(merge(Some(&a), &first, &c, later).unwrap(), a);
        // A status-only update keeps the amount and partner.
        let upd = parse_input(&params("tid=t1&status=reversed"), &c, now).unwrap();
        let b = merge(Some(&a), &upd, &c, later).unwrap();
        assert_eq!(b.status, ConversionStatus::Reversed);
        assert_eq!(b.status_changed_at, Some(later));
        assert_eq!(b.sale_amount, a.sale_amount);
        assert_eq!(b.partner_id, "p1");
        // A new conversion without a partner is refused.
        let no_partner = parse_input(&params("tid=t2"), &c, now).unwrap();
        assert!(merge(None, &no_partner, &c, now)
            .unwrap_err()
            .contains("partner_id"));
    }

    #[test]
    fn hmac_over_query_without_signature() {
        let mut c = cfg();
        c.auth = PostbackAuth::Hmac;
        let q = "tid=1&affid=p&amount=3";
        let sig = sign("s3cret", q.as_bytes());
        let full = format!("{q}&signature={sig}");
        let h = HeaderMap::new();
        assert!(authenticate(&c, "s3cret", &h, &full, b"", &params(&full)).is_ok());
        let tampered = full.replace("amount=3", "amount=4");
        assert!(matches!(
            authenticate(&c, "s3cret", &h, &tampered, b"", &params(&tampered)),
            Err(AuthFailure::Wrong(_))
        ));
        // Both places a signature may come from are named (QA21 F9).
        assert!(matches!(
            authenticate(&c, "s3cret", &h, q, b"", &params(q)),
            Err(AuthFailure::Missing(m)) if m == "missing signature: send header `x-signature` or parameter `signature` (hex HMAC-SHA256)"
        ));
    }

    /// QA22 S8: an empty token (`token=`, or an empty header) is missing
    /// (401), not wrong (403).
    #[test]
    fn an_empty_token_is_missing_not_wrong() {
        let c = cfg();
        let q = "tid=1&affid=p&amount=3&token=";
        let mut h = HeaderMap::new();
        h.insert("x-postback-token", " ".parse().unwrap());
        assert!(matches!(
            authenticate(&c, "s3cret", &h, q, b"", &params(q)),
            Err(AuthFailure::Missing(m)) if m.starts_with("missing token")
        ));
        let q = "tid=1&affid=p&amount=3&token=x";
        assert!(matches!(
            authenticate(&c, "s3cret", &h, q, b"", &params(q)),
            Err(AuthFailure::Wrong(_))
        ));
    }

    /// QA23 N4: the first of several tokens decided (`token=right&token=x`
    /// passed, so did a right header with a wrong `token=`). Different
    /// values are refused; the same one sent twice passes.
    #[test]
    fn a_token_sent_twice_with_different_values_is_refused() {
        let c = cfg();
        let none = HeaderMap::new();
        let q = "tid=1&affid=p&amount=3&token=s3cret&token=x";
        assert!(matches!(
            authenticate(&c, "s3cret", &none, q, b"", &params(q)),
            // Where the copies came from (QA28-E F1).
            Err(AuthFailure::Wrong(m)) if m == "the token was sent 2 times with different values (2 parameter `token`s): send it once"
        ));
        let mut h = HeaderMap::new();
        h.insert("x-postback-token", "s3cret".parse().unwrap());
        let q = "tid=1&affid=p&amount=3&token=x";
        assert!(matches!(
            authenticate(&c, "s3cret", &h, q, b"", &params(q)),
            Err(AuthFailure::Wrong(m)) if m == "the token was sent 2 times with different values (header `x-postback-token`, parameter `token`): send it once"
        ));
        h.append("x-postback-token", "x".parse().unwrap());
        let q = "tid=1&affid=p&amount=3";
        assert!(matches!(
            authenticate(&c, "s3cret", &h, q, b"", &params(q)),
            Err(AuthFailure::Wrong(m)) if m == "the token was sent 2 times with different values (2 header `x-postback-token`s): send it once"
        ));
        let q = "tid=1&affid=p&amount=3&token=s3cret&token=s3cret";
        assert!(authenticate(&c, "s3cret", &none, q, b"", &params(q)).is_ok());
    }

    /// QA24 L5: a token header that is not visible ASCII was answered
    /// "missing token".
    #[test]
    fn a_token_header_that_is_not_ascii_is_wrong_not_missing() {
        let c = cfg();
        let q = "tid=1&affid=p&amount=3";
        let mut h = HeaderMap::new();
        h.insert(
            "x-postback-token",
            axum::http::HeaderValue::from_bytes("é".as_bytes()).unwrap(),
        );
        assert!(matches!(
            authenticate(&c, "s3cret", &h, q, b"", &params(q)),
            Err(AuthFailure::Wrong(m)) if m.contains("holds characters other than visible ASCII")
        ));
    }

    #[test]
    fn config_parses_and_validates() {
        let c: PostbackConfig = toml::from_str(
            r#"id = "impact-s2s"
               auth = "hmac"
               secret = { secret = "env:RECKON_TEST_PB_SECRET_UNSET" }
               default_currency = "usd""#,
        )
        .unwrap();
        assert_eq!(c.auth, PostbackAuth::Hmac);
        c.validate().unwrap();
        let err = c.clone().resolve().unwrap_err().to_string();
        assert!(
            err.contains("`RECKON_TEST_PB_SECRET_UNSET` is not set"),
            "{err}"
        );
        let bad: Result<PostbackConfig, _> = toml::from_str(
            r#"id = "x"
                              secret = { secret = "env:X" }
                              secrt = 1"#,
        );
        assert!(bad.is_err());
    }

    /// QA29-D M4: names an endpoint can never be authenticated by.
    #[test]
    fn header_and_parameter_names_are_checked() {
        let problems = |edit: fn(&mut PostbackConfig)| {
            let mut c = cfg();
            edit(&mut c);
            c.problems()
                .into_iter()
                .map(|(k, m)| format!("{k}: {m}"))
                .collect::<Vec<_>>()
        };
        assert!(problems(|_| {}).is_empty());
        type Edit = fn(&mut PostbackConfig);
        let cases: [(Edit, &str); 6] = [
            (
                |c| c.signature_header = "x sig".into(),
                "signature_header: \"x sig\" is not an HTTP header name",
            ),
            (
                |c| c.signature_header = String::new(),
                "signature_header: \"\" is not an HTTP header name",
            ),
            (
                |c| c.token_header = "Content-Type".into(),
                "token_header: \"Content-Type\" is a header of HTTP itself",
            ),
            (
                |c| c.signature_param = String::new(),
                "signature_param: \"\" is not a parameter name",
            ),
            (
                |c| c.token_param = "amount".into(),
                "token_param: \"amount\" is a name of the postback field `amount`",
            ),
            (
                |c| c.token_param = "Token".into(),
                "token_param: \"Token\": write it in lower case, \"token\"",
            ),
        ];
        for (edit, want) in cases {
            let got = problems(edit);
            assert!(
                got.len() == 1 && got[0].starts_with(want),
                "{want}: {got:?}"
            );
        }
    }

    #[test]
    fn the_missing_key_messages_list_every_accepted_name() {
        let e = parse_input(&params("order_id=1"), &cfg(), now()).unwrap_err();
        for (field, names) in ALIASES {
            if *field == "transaction_id" || *field == "click_id" {
                for n in *names {
                    assert!(e.contains(n), "{n} missing from: {e}");
                }
            }
        }
        let i = parse_input(&params("tid=t9"), &cfg(), now()).unwrap();
        let e = merge(None, &i, &cfg(), now()).unwrap_err();
        for (field, names) in ALIASES {
            if *field == "partner_id" {
                for n in *names {
                    assert!(e.contains(n), "{n} missing from: {e}");
                }
            }
        }
    }

    #[test]
    fn a_field_given_twice_with_different_values_is_refused() {
        let e = |q: &str| parse_input(&params(q), &cfg(), now());
        let err = e("transaction_id=t11&transaction_id=t12&affid=p").unwrap_err();
        assert!(
            err.contains("`transaction_id` is given more than once"),
            "{err}"
        );
        assert!(err.contains("\"t11\" and \"t12\""), "{err}");
        let err = e("tid=t11&transaction_id=t12").unwrap_err();
        assert!(err.contains("as `tid` and `transaction_id`"), "{err}");
        // The same value twice is not ambiguous.
        assert_eq!(e("tid=t11&transaction_id=t11").unwrap().key, "t11");
    }

    #[test]
    fn a_timestamp_more_than_a_day_ahead_is_refused() {
        let e = |q: &str| parse_input(&params(q), &cfg(), now());
        let err = e("tid=1&timestamp=2099-01-01T00:00:00Z").unwrap_err();
        assert!(err.contains("in the future"), "{err}");
        // Clock skew within a day is accepted.
        assert!(e("tid=1&timestamp=2026-11-29T11:00:00Z").is_ok());
        assert!(e("tid=1&timestamp=2026-11-29T12:00:01Z").is_err());
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        h
    }

    /// QA: `{"amount":"10","amount":"1000"}` stored 1000 (serde_json's
    /// `Value` keeps the last key).
    #[test]
    fn a_json_key_sent_twice_with_different_values_is_refused() {
        let body = br#"{"transaction_id":"v2","amount":"10","amount":"1000","affiliate_id":"7"}"#;
        let p = body_params(&json_headers(), body, &cfg()).unwrap();
        let err = parse_input(&p, &cfg(), now()).unwrap_err();
        assert!(
            err.contains("parameter `amount` is given more than once with different values"),
            "{err}"
        );
        assert!(err.contains("\"10\" and \"1000\""), "{err}");
        // The same value twice is accepted, as in a query string.
        let body = br#"{"tid":"v2","amount":"10","amount":10}"#;
        let p = body_params(&json_headers(), body, &cfg()).unwrap();
        assert_eq!(
            parse_input(&p, &cfg(), now()).unwrap().amount,
            Some(Decimal::from(10))
        );
    }

    #[test]
    fn a_compressed_body_is_refused_naming_its_encoding() {
        let mut h = json_headers();
        h.insert("content-encoding", "gzip".parse().unwrap());
        assert_eq!(
            body_params(&h, b"\x1f\x8b\x08\x00", &cfg()).unwrap_err(),
            "the body is compressed (Content-Encoding: gzip), which postbacks do not decode; send it uncompressed"
        );
        h.insert("content-encoding", "identity".parse().unwrap());
        assert!(body_params(&h, br#"{"tid":"t1"}"#, &cfg()).is_ok());
    }

    /// QA: `"amount":{"x":1}` was dropped and the claim stored without it.
    #[test]
    fn a_json_object_or_array_for_a_read_parameter_is_refused() {
        let e = |body: &[u8]| body_params(&json_headers(), body, &cfg()).unwrap_err();
        assert_eq!(
            e(br#"{"tid":"t1","amount":{"x":1}}"#),
            "parameter `amount` is an object in the JSON body; send a string or a number"
        );
        assert!(e(br#"{"tid":["t1"]}"#).contains("parameter `tid` is an array"));
        assert!(e(br#"{"tid":true}"#).contains("parameter `tid` is a boolean"));
        // Parameters the endpoint does not read may carry anything; null is absent.
        let p = body_params(
            &json_headers(),
            br#"{"tid":"t1","sub":{"a":[1]},"amount":null}"#,
            &cfg(),
        )
        .unwrap();
        assert_eq!(p, [("tid".to_string(), "t1".to_string())]);
    }

    /// QA: `event=bogus` and `event=leads` became `other` silently.
    #[test]
    fn an_unknown_event_is_refused_and_an_absent_one_keeps_the_default() {
        let e = |q: &str| parse_input(&params(q), &cfg(), now());
        for bad in ["bogus", "leads"] {
            let err = e(&format!("tid=1&event={bad}")).unwrap_err();
            assert!(
                err.starts_with(&format!(
                    "event \"{bad}\" is not one of sale, lead, signup, install, other (accepted: sale, lead,"
                )),
                "{err}"
            );
        }
        assert_eq!(
            e("tid=1&event=Purchase").unwrap().event_type,
            Some(EventType::Sale)
        );
        let absent = e("tid=1&affid=p").unwrap();
        assert_eq!(absent.event_type, None);
        let c = merge(None, &absent, &cfg(), now()).unwrap();
        assert_eq!(c.event_type, EventType::Sale);
    }

    /// QA: `timestamp=0` was stored as 1970-01-01.
    #[test]
    fn a_zero_timestamp_is_absent_and_one_before_2000_is_refused() {
        let e = |q: &str| parse_input(&params(q), &cfg(), now());
        for zero in ["0", "000", "0000000000000"] {
            let i = e(&format!("tid=1&affid=p&timestamp={zero}")).unwrap();
            assert_eq!(i.occurred_at, None, "{zero}");
            // As when absent: the time received.
            assert_eq!(merge(None, &i, &cfg(), now()).unwrap().occurred_at, now());
        }
        for early in ["1", "86400", "1999-12-31T23:59:59Z", "1999-12-31 23:59:59"] {
            let err = e(&format!("tid=1&ts={early}")).unwrap_err();
            assert!(err.contains("is before 2000-01-01"), "{early}: {err}");
        }
        assert_eq!(
            e("tid=1&ts=946684800")
                .unwrap()
                .occurred_at
                .unwrap()
                .to_rfc3339(),
            "2000-01-01T00:00:00+00:00"
        );
    }

    /// QA: `[TRANSACTION_ID]`, `%%TID%%`, `${tid}`, `<tid>`, `null`,
    /// `undefined` were stored as transaction ids (all collapsing into one).
    #[test]
    fn unsubstituted_macros_of_every_syntax_are_refused_in_every_field() {
        let e = |q: &str| parse_input(&params(q), &cfg(), now());
        for macro_ in [
            "[TRANSACTION_ID]",
            "%25%25TID%25%25",
            "%25tid%25",
            "%24%7Btid%7D",
            "%3Ctid%3E",
            "null",
            "NULL",
            "undefined",
            "(null)",
            "{transaction_id}",
            "%23tid%23",
        ] {
            for field in [
                "transaction_id",
                "click_id",
                "order_id",
                "affiliate_id",
                "coupon",
            ] {
                let err = e(&format!("tid=t1&{field}={macro_}")).unwrap_err();
                assert!(
                    err.contains("did not substitute"),
                    "{field}={macro_}: {err}"
                );
            }
        }
        // Brackets or percent signs inside a real value are fine.
        for ok in [
            "ord[1]", "a<b>", "[1]", "[]", "50%off", "x%y%", "nullable", "A-[2]-B",
        ] {
            let q = format!(
                "tid={}",
                url::form_urlencoded::byte_serialize(ok.as_bytes()).collect::<String>()
            );
            assert_eq!(e(&q).unwrap().key, ok);
        }
    }

    /// QA: `affiliate_id=%FF` was stored as U+FFFD, so different ids
    /// collided into one payee.
    #[test]
    fn a_read_parameter_that_is_not_utf8_is_refused_by_name() {
        let err = form_pairs(b"tid=t1&affiliate_id=%FF", &cfg()).unwrap_err();
        assert_eq!(
            err,
            "parameter `affiliate_id` is not valid UTF-8 once percent-decoded; send its value as UTF-8"
        );
        assert!(form_pairs(b"TID=%C3%28", &cfg())
            .unwrap_err()
            .contains("`TID`"));
        // A form body's raw bytes too.
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(body_params(&h, b"tid=t1&oid=\xff", &cfg())
            .unwrap_err()
            .contains("`oid`"));
        // Ignored parameters may carry anything; UTF-8 and `+` decode as before.
        let p = form_pairs(b"sub1=%FF&tid=caf%C3%A9+1&bad=%zz", &cfg()).unwrap();
        assert_eq!(p[1], ("tid".to_string(), "café 1".to_string()));
        assert_eq!(p[2], ("bad".to_string(), "%zz".to_string()));
    }

    /// QA: `1e3` and `1_000` were accepted as amounts.
    #[test]
    fn amounts_with_an_exponent_or_digit_separators_are_refused() {
        let e = |q: &str| parse_input(&params(q), &cfg(), now()).unwrap_err();
        let err = e("tid=1&amount=1e3");
        assert!(
            err.starts_with("amount \"1e3\" is in scientific notation"),
            "{err}"
        );
        assert!(err.contains("write the amount in full"), "{err}");
        assert!(e("tid=1&payout=1.23457E%2B05").contains("payout \"1.23457E+05\" is in scientific"));
        assert!(e("tid=1&amount=1_000").contains("amount \"1_000\" has a digit separator"));
        // A JSON number too.
        let p = body_params(&json_headers(), br#"{"tid":"1","amount":1e30}"#, &cfg()).unwrap();
        assert!(parse_input(&p, &cfg(), now())
            .unwrap_err()
            .contains("scientific"));
    }

    /// QA6 F4: a JSON-number amount went through f64: `1e3` was stored as
    /// "1000.0", and `12345678901234567.89` was refused quoting
    /// "1.2345678901234568e+16", a value the network never sent.
    #[test]
    fn json_number_amounts_are_read_from_their_literal() {
        let body = |b: &[u8]| body_params(&json_headers(), b, &cfg()).unwrap();
        let p = body(br#"{"tid":"1","amount":1e3}"#);
        assert_eq!(p[1], ("amount".to_string(), "1e3".to_string()));
        let err = parse_input(&p, &cfg(), now()).unwrap_err();
        assert!(
            err.starts_with("amount \"1e3\" is in scientific notation"),
            "{err}"
        );
        // 17 significant digits, which f64 cannot hold (the nearest double
        // prints 1000000000000000), below the 10^15 amounts are kept under.
        let p = body(br#"{"tid":"1","amount":999999999999999.99,"payout":0.10}"#);
        assert_eq!(p[1].1, "999999999999999.99");
        assert_eq!(p[2].1, "0.10");
        let input = parse_input(&p, &cfg(), now()).unwrap();
        assert_eq!(input.amount.unwrap().to_string(), "999999999999999.99");
        assert_eq!(input.payout.unwrap().to_string(), "0.10");
        let p = body(br#"{"tid":"1","amount":99999999999999999999999999999999}"#);
        let err = parse_input(&p, &cfg(), now()).unwrap_err();
        assert!(err.contains("more digits than an amount can hold"), "{err}");
        // Numbers that are not amounts keep their literal too.
        let p = body(br#"{"tid":12345678901234567890}"#);
        assert_eq!(p[0].1, "12345678901234567890");
    }

    /// Every `[[postbacks]]` problem of a file at once, each with file, line,
    /// column and key (QA: one error per run, no position, serde's type
    /// name for a literal secret, a connector's id accepted silently).
    #[test]
    fn config_errors_are_all_reported_with_their_position() {
        let text = r#"[[connectors]]
id = "ex"
plugin = "example"
schedule = "0 6 * * *"

[[postbacks]]
id = "Bad ID"
secret = { secret = "env:A" }
default_currency = "usdx"
default_status = "approvd"
default_event_type = "purchasex"

[[postbacks]]
id = "ex"
secret = { secret = "env:A" }

[[postbacks]]
id = "lit"
secret = "plain"

[[postbacks]]
id = "dup"
secret = { secret = "env:B" }

[[postbacks]]
id = "dup"
secret = { secret = "env:B" }

[[postbacks]]
id = "vault"
secret = { secret = "vault:B" }

[[postbacks]]
id = "odd"
secret = { secret = "env:C" }
default_status = "reversed"
token_header = "bad header"
"#;
        let err = crate::config::parse(text, "pb.toml").unwrap_err();
        insta::assert_snapshot!(err.to_string());
    }

    #[test]
    fn secrets_resolve_like_connector_secrets_and_every_failure_is_reported() {
        let text = r#"[[postbacks]]
id = "a"
secret = { secret = "env:SET" }

[[postbacks]]
id = "b"
secret = { secret = "env:UNSET" }

[[postbacks]]
id = "c"
secret = { secret = "file:empty.key" }

[[postbacks]]
id = "d"
secret = { secret = "env:TWO_LINES" }
"#;
        let cfg = crate::config::parse(text, "conf/pb.toml").unwrap();
        let reader = |r: &crate::config::SecretRef| match r {
            crate::config::SecretRef::Env(n) if n == "SET" => Ok("s3cret".to_string()),
            crate::config::SecretRef::Env(n) if n == "TWO_LINES" => {
                Ok("TOKEN=abcdefghijklmnop\nOTHER=x".to_string())
            }
            crate::config::SecretRef::Env(n) => {
                Err(format!("environment variable `{n}` is not set"))
            }
            crate::config::SecretRef::File(_) => Ok(String::new()),
        };
        let errors = resolve_endpoints(&cfg, &reader).unwrap_err();
        let text = crate::config::ConfigErrors(errors).to_string();
        assert_eq!(
            text,
            "conf/pb.toml:7:10: `postbacks[1].secret`: secret not resolvable: environment variable `UNSET` is not set\n\
             conf/pb.toml:11:10: `postbacks[2].secret`: secret `file:empty.key` is empty\n\
             conf/pb.toml:15:10: `postbacks[3].secret`: secret `env:TWO_LINES` holds a line break (it has 2 lines) (the value is not shown): put the secret alone in it, on one line (a `file:` secret's trailing newline is removed)"
        );
        assert!(!text.contains("abcdefghijklmnop"), "{text}");
        let one = "[[postbacks]]\nid = \"a\"\nsecret = { secret = \"env:SET\" }\n";
        let cfg = crate::config::parse(one, "pb.toml").unwrap();
        let mut ok = resolve_endpoints(&cfg, &reader).unwrap();
        assert_eq!(ok[0].resolved_secret.as_deref(), Some("s3cret"));
        // Security QA31-C F5: a guessable secret is warned about, by its
        // reference; 16 characters are enough.
        assert_eq!(
            weak_secret(&ok[0]).as_deref(),
            Some("postback `a`: secret `env:SET` is 6 characters, fewer than 16: a sender could guess it (wrong secrets are not slowed down); put 32 or more random letters and digits there (e.g. the output of `openssl rand -hex 32`) and the same in the network's postback settings")
        );
        ok[0].resolved_secret = Some("0123456789abcdef".into());
        assert_eq!(weak_secret(&ok[0]), None);
        ok[0].resolved_secret = Some("s3cret".into());
        // The resolved value never shows in Debug output.
        assert!(!format!("{:?}", ok[0]).contains("s3cret"));
    }

    /// The writer's answers to the postbacks `queries` of endpoint
    /// [`cfg`], written as one group.
    fn write_group(store: &Store, queries: &[&str]) -> Vec<WriteResult> {
        let c = Arc::new(cfg());
        let (jobs, replies): (Vec<Job>, Vec<_>) = (queries.iter())
            .map(|q| {
                let (reply, rx) = tokio::sync::oneshot::channel();
                let input = parse_input(&params(q), &c, now()).unwrap();
                (
                    Job {
                        cfg: c.clone(),
                        input,
                        reply,
                    },
                    rx,
                )
            })
            .unzip();
        write_batch(store, jobs, None);
        (replies.into_iter())
            .map(|r| r.blocking_recv().unwrap())
            .collect()
    }

    /// QA10 M1 within one group: the writer sees the values superseded
    /// earlier in the group, not yet in the store's revisions.
    #[test]
    fn a_stale_replay_in_the_same_group_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let got = write_group(
            &store,
            &[
                "tid=g1&affid=p1&amount=10&status=approved",
                "tid=g1&status=reversed",
                "tid=g1&affid=p1&amount=10&status=approved",
                "tid=g1&status=reversed",
            ],
        );
        assert_eq!(got[0], WriteResult::Done(Outcome::Stored, 0));
        assert_eq!(got[1], WriteResult::Done(Outcome::Updated, 0));
        assert!(
            matches!(&got[2], WriteResult::Stale(m) if m.contains("`g1`")),
            "{got:?}"
        );
        assert_eq!(got[3], WriteResult::Done(Outcome::Duplicate, 0));
        let stored = store
            .get_record(RecordKind::Conversion, "net1", "g1")
            .unwrap()
            .unwrap();
        assert_eq!(stored.revision, 2);
    }

    /// Security QA31-C F7: a secret the daemon holds, sent in a postback's
    /// text fields, is masked before it is stored; in the transaction id
    /// it is refused.
    #[test]
    fn a_secret_in_a_postback_is_masked_or_refused() {
        let secret = "qa31c-f7-secret-value-0123";
        crate::plugins::http::remember_secret(secret);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let got = write_group(
            &store,
            &[
                &format!("tid=m1&affid=p1&amount=10&partner_name=x{secret}&coupon={secret}"),
                &format!("tid=m2{secret}&affid=p1&amount=10"),
            ],
        );
        assert_eq!(got[0], WriteResult::Done(Outcome::Stored, 0));
        assert!(
            matches!(&got[1], WriteResult::Invalid(m) if m.contains("transaction id holds a secret") && !m.contains(secret)),
            "{got:?}"
        );
        let stored = store
            .get_record(RecordKind::Conversion, "net1", "m1")
            .unwrap()
            .unwrap();
        let Record::Conversion(conv) = stored.record else {
            panic!("not a conversion")
        };
        assert_eq!(conv.partner_name.as_deref(), Some("x***"));
        assert_eq!(conv.coupon.as_deref(), Some("***"));
    }

    /// README's parameter table lists exactly the names the parser accepts.
    #[test]
    fn readme_lists_every_accepted_parameter_name() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("## Postbacks (server-to-server conversions)")
            .unwrap();
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
        for (_, names) in ALIASES {
            for n in *names {
                assert!(
                    section.contains(&format!("`{n}`")),
                    "README's postback table does not list `{n}`"
                );
            }
        }
    }
}
