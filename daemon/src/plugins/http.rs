//! The HTTP executor: runs a plugin's requests with the daemon's one reqwest
//! client (rustls), on the plugin's behalf.
//!
//! Per request: the URL's origin must be allowed ([`Origin`]: the configured
//! base URL's scheme, host and port, an OAuth2 `token_url`'s, or https on
//! port 443 of a manifest host) and carry no user or password, or the
//! plugin gets `HttpFailure NotAllowed`: a plugin bug cannot send the
//! connector's credentials in clear text or to another port;
//! auth is injected per the manifest's [`AuthSpec`] from the policy's
//! secrets; a per-connector token bucket spaces requests; each attempt has a
//! timeout and a response-size cap. Idempotent requests are retried with
//! exponential backoff and jitter on connect errors, timeouts and 5xx; a 429
//! is retried after the time its `Retry-After` / `RateLimit-Reset` /
//! `X-RateLimit-Reset` header asks for (or the backoff). Redirects are not
//! followed (a redirect could leave the allowed hosts). When the session's
//! shutdown signal fires, a wait or a request in flight ends at once and
//! [`HttpExecutor::execute`] returns [`ShuttingDown`] instead of an answer.
//!
//! Secrets: values are added to the request here and nowhere else; every
//! message that leaves this module (errors, logs) goes through [`Redactor`],
//! which masks secret values, their URL-encoded and Basic-encoded forms, the
//! JSON-escaped forms of each and OAuth2 access tokens, for every secret the
//! daemon read ([`remember_secret`]). A non-2xx body is masked whole before
//! the plugin sees it: the plugin cuts it for its error, and a credential
//! cut first would keep its first characters. A 2xx body is data (the
//! session's review masks records); when the plugin cannot read it and
//! quotes its start in its error, the cut may fall inside an echoed secret,
//! so [`Redactor::redact`] also masks what is left of a secret from its
//! first 8 characters on.
//!
//! What this is not: no retries of non-idempotent requests, no caching, no
//! redirect following, no cookies.

use super::{HttpPolicy, RateLimit, SessionTuning};
use base64::Engine;
use plugin_api::protocol::{AuthSpec, Event, HttpFailureKind, HttpRequest, HttpResponseHead};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// Masks secret values in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
    /// The secrets of [`SHORT_SECRET`] characters or more, for
    /// [`mask_encoded`].
    long: Vec<Vec<u8>>,
}

impl Redactor {
    /// Adds a secret value, its URL-encoded forms and the forms JSON
    /// escaping gives each of them (a platform echoing the request back as
    /// JSON writes `é` as `\u00e9`, `"` as `\"`, maybe `/` as `\/`).
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let form = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>();
        let component = plugin_api::sdk::encode_component(secret);
        // Lower-case hex too (`%2f`): .NET's `UrlEncode` (CAKE) and many
        // proxies echo a request so (QA46 S-H1: a Google refresh token,
        // `1//…`, and a CAKE key were shown whole).
        for plain in [
            secret.to_owned(),
            lower_hex(&form),
            form,
            lower_hex(&component),
            component,
        ] {
            for s in json_forms(&plain).into_iter().chain(html_forms(&plain)) {
                if !self.needles.contains(&s) {
                    self.needles.push(s);
                }
            }
        }
        // Longest first, so a secret containing another is masked whole.
        self.needles.sort_by_key(|s| std::cmp::Reverse(s.len()));
        if secret.chars().count() >= SHORT_SECRET
            && !self.long.iter().any(|l| l == secret.as_bytes())
        {
            self.long.push(secret.as_bytes().to_vec());
            self.long.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// The text with every secret replaced by `***`. A secret of
    /// [`SHORT_SECRET`] characters or more is masked wherever its first
    /// [`SHORT_SECRET`] characters stand, as far as the text goes on
    /// agreeing with it: a plugin that cuts a body to a bounded length for
    /// its error message (a `200` answer it could not read, echoing the
    /// request's credential) may cut a secret short, and its start must not
    /// survive. A shorter secret is masked only where it stands alone (not
    /// inside a word): masking every `k` of a one-letter test key turned
    /// "killed" into "***illed" in every message.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        // Whole secrets, in every form, longest first.
        for n in &self.needles {
            if !out.contains(n.as_str()) {
                continue;
            }
            out = if n.chars().count() >= SHORT_SECRET {
                out.replace(n.as_str(), "***")
            } else {
                replace_standalone(&out, n)
            };
        }
        // What a cut left of one.
        for n in &self.needles {
            if let Some((end, _)) = n.char_indices().nth(SHORT_SECRET) {
                let head = &n[..end];
                if out.contains(head) {
                    out = self.replace_cut(&out, head);
                }
            }
        }
        // URL-encoded by any encoder: which characters it escapes and the
        // case of its hex differ (QA46 S-H1, QA47 R-H1: .NET's `UrlEncode`
        // writes `%2f` and leaves `!()*`; `encodeURIComponent` leaves
        // `!'()*~`), so no fixed set of forms covers them.
        for secret in &self.long {
            if let Some(masked) = mask_encoded(&out, secret) {
                out = masked;
            }
        }
        out
    }

    /// `text` with each occurrence of `head` (the start of a secret), and as
    /// much of the secret as follows it there (in the form that goes on
    /// longest), replaced by `***`.
    fn replace_cut(&self, text: &str, head: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find(head) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let agree = |n: &String| {
                (tail.bytes().zip(n.bytes()))
                    .take_while(|(a, b)| a == b)
                    .count()
            };
            let mut len = self
                .needles
                .iter()
                .map(agree)
                .max()
                .unwrap_or(0)
                .max(head.len());
            while !tail.is_char_boundary(len) {
                len -= 1;
            }
            out.push_str("***");
            rest = &tail[len..];
        }
        out.push_str(rest);
        out
    }

    /// A response body with every secret masked, for an error answer: the
    /// plugin cuts it to a bounded length for its error message, and a
    /// credential the platform echoed (a `401` repeating the request's
    /// `Authorization` header) must be masked whole before that cut, or its
    /// first characters survive it. A body that is not UTF-8 is read
    /// lossily: an error answer is text for a message, not data.
    pub fn redact_body(&self, body: Vec<u8>) -> Vec<u8> {
        if self.needles.is_empty() || body.is_empty() {
            return body;
        }
        let text = match String::from_utf8(body) {
            Ok(t) => t,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        self.redact(&text).into_bytes()
    }

    /// True if nothing needs masking.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Every value masked (secrets, their encoded forms, tokens), for the
    /// session's [`plugin_api::review::Review`] of records and checkpoints.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.needles.iter().map(String::as_str)
    }
}

/// Every secret value the daemon has read (connectors' and postbacks'),
/// so that a session masks them all, not only its connector's own: a file
/// read by mistake (the QA's file-drop race read a postback's HMAC secret
/// file) must not show a secret in a connector's error or `/status`.
/// Values stay for the life of the process: a secret replaced on reload
/// is still one to hide.
static KNOWN_SECRETS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Remembers a secret value for every session's [`Redactor`] (see
/// [`KNOWN_SECRETS`]); blank values are ignored.
pub fn remember_secret(value: &str) {
    if value.trim().is_empty() {
        return;
    }
    let mut known = KNOWN_SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    if !known.contains(value) {
        known.insert(value.to_owned());
    }
}

/// `text` with every secret this process has read masked, as a
/// connector's logs are: for log lines outside a session that quote what a
/// client sent (QA28-E F6: a refused postback's reason quoted an HMAC key
/// sent as its amount, and a `status_token` pasted as the endpoint id).
pub fn redact_known(text: &str) -> String {
    let mut r = Redactor::default();
    for s in known_secrets() {
        r.add(&s);
    }
    r.redact(text)
}

/// Every secret value this process has read ([`KNOWN_SECRETS`]).
pub(crate) fn known_secrets() -> Vec<String> {
    let known = KNOWN_SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    known.iter().cloned().collect()
}

/// `s` and the forms JSON writers give it inside a string, without the
/// quotes: serde's (`"`, `\\` and control characters escaped), with every
/// non-ASCII character as `\uXXXX` (Python's default, hex in either case),
/// and each of those with `/` as `\/` (PHP's default).
/// `text` with every place that spells `secret` URL-encoded in any way
/// replaced by `***`: each byte of the secret as itself or as `%XX` (hex
/// in either case), a space also as `+`, a `/` also as `\/` (JSON). As in
/// [`Redactor::redact`], a place that agrees with the secret's first
/// [`SHORT_SECRET`] bytes or more and then stops (a plugin cut the text)
/// is masked as far as it goes. None when there is nothing to mask.
fn mask_encoded(text: &str, secret: &[u8]) -> Option<String> {
    let t = text.as_bytes();
    let first = *secret.first()?;
    let hex = |b: u8| (b as char).to_digit(16);
    // How many bytes of the secret the text at `t` spells, and in how many
    // of its own bytes.
    let spell = |t: &[u8]| {
        let (mut j, mut k) = (0, 0);
        while k < secret.len() && j < t.len() {
            let b = secret[k];
            let escaped = match t.get(j..j + 3) {
                Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| h * 16 + l),
                _ => None,
            };
            if escaped == Some(u32::from(b)) {
                j += 3;
            } else if t[j] == b || (b == b' ' && t[j] == b'+') {
                j += 1;
            } else if b == b'/' && t[j] == b'\\' && t.get(j + 1) == Some(&b'/') {
                j += 2;
            } else {
                break;
            }
            k += 1;
        }
        // An escape the text ends inside (a cut): masked with the rest.
        if t.get(j) == Some(&b'%') && t.len() - j < 3 {
            j = t.len();
        }
        (k, j)
    };
    let enough = SHORT_SECRET.min(secret.len());
    let mut out = String::new();
    let (mut i, mut copied) = (0, 0);
    while i < t.len() {
        let c = t[i];
        let may_start = c == first || c == b'%' || c == b'+' || c == b'\\';
        if may_start && text.is_char_boundary(i) {
            let (k, mut j) = spell(&t[i..]);
            if k >= enough {
                j += i;
                while !text.is_char_boundary(j) {
                    j -= 1;
                }
                out.push_str(&text[copied..i]);
                out.push_str("***");
                (i, copied) = (j, j);
                continue;
            }
        }
        i += 1;
    }
    if copied == 0 && out.is_empty() {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// `s` with the hex digits of each `%XX` escape in lower case.
fn lower_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hex_left = 0;
    for c in s.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            out.push(c);
            if c == '%' {
                hex_left = 2;
            }
        }
    }
    out
}

fn json_forms(s: &str) -> Vec<String> {
    let serde = serde_json::to_string(s).expect("a string serialises");
    let serde = serde[1..serde.len() - 1].to_owned();
    let ascii = |upper: bool| {
        let mut out = String::with_capacity(serde.len());
        for c in serde.chars() {
            if c.is_ascii() {
                out.push(c);
                continue;
            }
            for unit in c.encode_utf16(&mut [0; 2]) {
                if upper {
                    out.push_str(&format!("\\u{unit:04X}"));
                } else {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        out
    };
    let mut forms = vec![s.to_owned(), serde.clone(), ascii(false), ascii(true)];
    for f in forms.clone() {
        forms.push(f.replace('/', "\\/"));
    }
    forms.sort();
    forms.dedup();
    forms
}

/// `s` as an HTML page echoing it may escape it (`&amp;`, `&quot;`, `'`
/// as `&#39;` or `&#x27;`), when that differs from `s` (QA12 N2: a 401
/// page in HTML repeated the credential escaped, and it was not masked).
fn html_forms(s: &str) -> Vec<String> {
    let escaped = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let mut forms = vec![
        escaped.replace('\'', "&#39;"),
        escaped.replace('\'', "&#x27;"),
    ];
    forms.retain(|f| f != s);
    forms.dedup();
    forms
}

/// Secrets shorter than this are masked only where they stand alone (and
/// not at all in records and checkpoints): the threshold of
/// `plugin_api::review`, so logs and data agree on what is short.
const SHORT_SECRET: usize = plugin_api::review::MIN_MASKED_SECRET_CHARS;

/// `text` with each occurrence of `needle` that is not part of a longer
/// word (no letter or digit right before or after it) replaced by `***`.
fn replace_standalone(text: &str, needle: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(needle) {
        let before = rest[..i].chars().next_back().or(out.chars().next_back());
        let after = rest[i + needle.len()..].chars().next();
        out.push_str(&rest[..i]);
        if word(before) || word(after) {
            out.push_str(needle);
        } else {
            out.push_str("***");
        }
        rest = &rest[i + needle.len()..];
    }
    out.push_str(rest);
    out
}

/// What [`HttpExecutor::count`] counts.
#[derive(Debug, Clone, Copy)]
enum Count {
    Request,
    Retry,
    RateLimitWait,
}

/// The daemon's one HTTP client.
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("reckon/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

// ---------------------------------------------------------------------------
// Rate limiting
// ---------------------------------------------------------------------------

/// The longest an OAuth2 access token is cached, whatever the token
/// endpoint's `expires_in` says.
const MAX_TOKEN_LIFE_SECS: u64 = 86_400;

/// A token bucket as GCRA, in integer nanoseconds: a burst of `requests`,
/// refilled at one request per `per_secs / requests`.
#[derive(Debug)]
pub struct Bucket {
    limit: RateLimit,
    /// Theoretical arrival time of the next request.
    tat: Option<Instant>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: RateLimit) -> Self {
        Bucket { limit, tat: None }
    }

    fn interval(&self) -> Duration {
        let requests = u64::from(self.limit.requests.max(1));
        Duration::from_nanos(u64::from(self.limit.per_secs) * 1_000_000_000 / requests)
    }

    /// Takes a token at `now`, or says when one will be available.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let interval = self.interval();
        let burst = interval * self.limit.requests.max(1).saturating_sub(1);
        let tat = self.tat.map_or(now, |t| t.max(now));
        let allow_at = tat.checked_sub(burst).unwrap_or(now);
        if allow_at <= now {
            self.tat = Some(tat + interval);
            Ok(())
        } else {
            Err(allow_at)
        }
    }
}

fn buckets() -> &'static Mutex<HashMap<String, Arc<Mutex<Bucket>>>> {
    static B: OnceLock<Mutex<HashMap<String, Arc<Mutex<Bucket>>>>> = OnceLock::new();
    B.get_or_init(|| Mutex::new(HashMap::new()))
}

fn bucket_for(connector: &str, limit: RateLimit) -> Arc<Mutex<Bucket>> {
    let mut map = buckets().lock().unwrap_or_else(|p| p.into_inner());
    let b = map
        .entry(connector.to_owned())
        .or_insert_with(|| Arc::new(Mutex::new(Bucket::new(limit))));
    if let Ok(mut g) = b.lock() {
        if g.limit != limit {
            *g = Bucket::new(limit);
        }
    }
    b.clone()
}

// ---------------------------------------------------------------------------
// Throttling headers
// ---------------------------------------------------------------------------

/// How long a 429 asks us to wait: `Retry-After` (seconds or HTTP date),
/// then `RateLimit-Reset` (seconds), then `X-RateLimit-Reset` (seconds, or a
/// Unix epoch when larger than 10^9).
pub fn retry_after(
    headers: &BTreeMap<String, String>,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let now_secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Some(v) = headers.get("retry-after").map(|v| v.trim()) {
        if let Some(wait) = seconds(v) {
            return Some(wait);
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    if let Some(wait) = headers
        .get("ratelimit-reset")
        .and_then(|v| seconds(v.trim()))
    {
        return Some(wait);
    }
    if let Some(v) = headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(if v > 1_000_000_000 {
            Duration::from_secs(v.saturating_sub(now_secs))
        } else {
            Duration::from_secs(v)
        });
    }
    None
}

/// A wait in seconds as a header writes it: whole (`7`) or with a fraction
/// (`2.0`, what Shopify sends; QA35c M1: it was not read, so the host fell
/// back to its own backoff), rounded up to the millisecond. None for
/// anything else (a sign, an exponent, a date).
fn seconds(v: &str) -> Option<Duration> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || (v.contains('.') && frac.is_empty()) {
        return None;
    }
    let secs = whole.parse::<u64>().ok()?;
    let mut ms = 0u64;
    for (i, b) in frac.bytes().enumerate() {
        let d = u64::from(b - b'0');
        match i {
            0..=2 => ms += d * 10u64.pow(2 - i as u32),
            // Any further non-zero digit rounds up: never wait less than asked.
            _ if d > 0 => {
                ms += 1;
                break;
            }
            _ => {}
        }
    }
    Some(Duration::from_secs(secs) + Duration::from_millis(ms))
}

/// Exponential backoff for `attempt` (0-based) with up to +50% jitter.
pub fn backoff(tuning: &SessionTuning, attempt: u32) -> Duration {
    let base = tuning.backoff_base.as_millis() as u64;
    let cap = tuning.backoff_cap.as_millis() as u64;
    let exp = base.saturating_mul(1u64 << attempt.min(20)).min(cap);
    let jitter = if exp >= 2 {
        rand::thread_rng().gen_range(0..=exp / 2)
    } else {
        0
    };
    Duration::from_millis(exp + jitter)
}

// ---------------------------------------------------------------------------
// OAuth2
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

fn tokens() -> &'static Mutex<HashMap<String, CachedToken>> {
    static T: OnceLock<Mutex<HashMap<String, CachedToken>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
}

// ---------------------------------------------------------------------------
// The executor
// ---------------------------------------------------------------------------

/// Counters for the session report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests sent, retries and token refreshes included.
    pub requests: u64,
    /// Retries.
    pub retries: u64,
    /// Waits for a 429 or our own limiter.
    pub rate_limit_waits: u64,
    /// The longest wait a 429 asked for that was not waited out (longer
    /// than `max_rate_limit_wait`), in seconds: the scheduler retries the
    /// run no earlier (ops QA34 D-M2).
    pub refused_wait_secs: Option<u32>,
}

/// Why the executor stopped: the daemon is shutting down. The request is
/// abandoned (a wait cut short, or a request in flight dropped); the
/// session ends without handing the plugin an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShuttingDown;

/// Completes once `shutdown` says a stop was requested (at once if it
/// already was); never when there is no signal or its sender is gone.
pub async fn stop_requested(shutdown: Option<tokio::sync::watch::Receiver<bool>>) {
    if let Some(mut rx) = shutdown {
        if rx.wait_for(|stop| *stop).await.is_ok() {
            return;
        }
    }
    std::future::pending::<()>().await
}

/// Points every OAuth2 scheme in `spec` at `url`.
fn override_token_url(spec: &mut AuthSpec, url: &str) {
    match spec {
        AuthSpec::Oauth2RefreshToken { token_url, .. } => *token_url = url.to_owned(),
        AuthSpec::All { schemes } => schemes.iter_mut().for_each(|s| override_token_url(s, url)),
        _ => {}
    }
}

/// Runs one session's requests.
#[derive(Debug)]
pub struct HttpExecutor {
    policy: HttpPolicy,
    auth: Option<AuthSpec>,
    settings: serde_json::Value,
    base_url: Option<url::Url>,
    allowed: Vec<Origin>,
    tuning: SessionTuning,
    redactor: Redactor,
    /// What happened so far.
    pub stats: HttpStats,
}

/// Why a request is sent again.
enum Retry {
    /// HTTP 429: a rate-limit wait.
    Throttled,
    /// A 5xx, a connection error or a timeout (the cause), after a backoff.
    Failed(String),
    /// A 401 with OAuth2: at once, with a fresh token.
    TokenRefused,
}

enum Attempt {
    Response {
        status: u16,
        headers: BTreeMap<String, String>,
        body: Vec<u8>,
    },
    Failure {
        kind: HttpFailureKind,
        message: String,
        retry: bool,
    },
}

impl HttpExecutor {
    /// Counts a request, retry or rate-limit wait in the session's stats
    /// and at once in `/metrics` (not when the session ends: a sync
    /// retrying for minutes showed 1 request beside 30 responses).
    fn count(&mut self, what: Count) {
        let (stat, metric) = match what {
            Count::Request => (&mut self.stats.requests, "reckon_http_requests_total"),
            Count::Retry => (&mut self.stats.retries, "reckon_http_retries_total"),
            Count::RateLimitWait => (
                &mut self.stats.rate_limit_waits,
                "reckon_rate_limit_waits_total",
            ),
        };
        *stat += 1;
        crate::server::metrics::global().add(
            metric,
            vec![("connector", self.policy.connector_id.clone())],
            1,
        );
    }

    /// Prepares an executor for one session.
    pub fn new(
        policy: HttpPolicy,
        auth: Option<AuthSpec>,
        manifest_hosts: &[String],
        base_url: &str,
        settings: serde_json::Value,
        tuning: SessionTuning,
    ) -> Self {
        let base_url = url::Url::parse(base_url).ok();
        // `settings.token_url` (a plain setting, like `base_url`) overrides an
        // OAuth2 scheme's token endpoint for tests and proxies; its host is allowed.
        let mut auth = auth;
        let token_url = settings
            .get("token_url")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let mut allowed: Vec<Origin> = policy
            .allowed_hosts
            .iter()
            .chain(manifest_hosts.iter())
            .map(|h| Origin::https(h))
            .collect();
        if let (Some(spec), Some(url)) = (auth.as_mut(), token_url) {
            override_token_url(spec, &url);
            allowed.extend(url::Url::parse(&url).ok().as_ref().and_then(Origin::of));
        }
        allowed.extend(base_url.as_ref().and_then(Origin::of));
        allowed.sort();
        allowed.dedup();
        let mut redactor = Redactor::default();
        for s in policy.secrets.values() {
            redactor.add(&s.0);
        }
        for s in known_secrets() {
            redactor.add(&s);
        }
        // Basic credentials travel base64-encoded; mask that form too.
        let mut exec = HttpExecutor {
            policy,
            auth,
            settings,
            base_url,
            allowed,
            tuning,
            redactor,
            stats: HttpStats::default(),
        };
        if let Some(AuthSpec::Basic { username, password }) = exec.auth.clone() {
            if let (Ok(u), Ok(p)) = (exec.value(&username), exec.value(&password)) {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                exec.redactor.add(&encoded);
            }
        }
        exec
    }

    /// The redactor (secrets and tokens seen so far).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The origins this session may reach.
    pub fn allowed_origins(&self) -> &[Origin] {
        &self.allowed
    }

    /// Why a URL may not be requested (its origin, and the message), or
    /// `None` when it may.
    fn refused(&self, url: &url::Url) -> Option<(String, String)> {
        let connector = &self.policy.connector_id;
        if !url.username().is_empty() || url.password().is_some() {
            return Some((
                "-".into(),
                format!(
                    "a URL with a user or password is not allowed for connector `{connector}`: credentials come from the connector's secret settings"
                ),
            ));
        }
        let Some(origin) = Origin::of(url) else {
            return Some((
                "-".into(),
                format!(
                    "URL {:?} has no host or port",
                    self.redactor.redact(url.as_str())
                ),
            ));
        };
        if self.allowed.contains(&origin) {
            return None;
        }
        let allowed: Vec<String> = self.allowed.iter().map(Origin::to_string).collect();
        Some((
            origin.to_string(),
            format!(
                "origin `{origin}` is not allowed for connector `{connector}` (allowed: {}); requests go to the base_url's scheme, host and port, or over https to a host of the plugin's allowed_hosts",
                allowed.join(", ")
            ),
        ))
    }

    /// A setting's value: a secret if the policy has one of that name, else
    /// a plain string setting.
    fn value(&self, name: &str) -> Result<String, String> {
        if let Some(s) = self.policy.secrets.get(name) {
            return Ok(s.0.clone());
        }
        match self.settings.get(name) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) if !other.is_null() => Ok(other.to_string()),
            _ => Err(format!(
                "auth needs setting `{name}` but connector `{}` has no such secret or setting",
                self.policy.connector_id
            )),
        }
    }

    /// Runs `work` unless shutdown is requested first (or meanwhile: then
    /// `work` is dropped, e.g. a request in flight).
    async fn unless_stopped<F: std::future::Future>(
        &self,
        work: F,
    ) -> Result<F::Output, ShuttingDown> {
        tokio::select! {
            biased;
            () = stop_requested(self.tuning.shutdown.clone()) => Err(ShuttingDown),
            out = work => Ok(out),
        }
    }

    async fn wait(&self, d: Duration) -> Result<(), ShuttingDown> {
        if d.is_zero() {
            return Ok(());
        }
        self.unless_stopped(tokio::time::sleep(d)).await
    }

    async fn limit(&mut self) -> Result<(), ShuttingDown> {
        let Some(limit) = self.policy.rate_limit else {
            return Ok(());
        };
        let bucket = bucket_for(&self.policy.connector_id, limit);
        let mut waited = false;
        loop {
            let r = bucket
                .lock()
                .map(|mut b| b.take(Instant::now()))
                .unwrap_or(Ok(()));
            match r {
                Ok(()) => break,
                Err(at) => {
                    waited = true;
                    self.wait(at.saturating_duration_since(Instant::now()))
                        .await?;
                }
            }
        }
        if waited {
            self.count(Count::RateLimitWait);
        }
        Ok(())
    }

    fn failure(&self, id: u64, kind: HttpFailureKind, message: &str) -> (Event, Vec<u8>) {
        (
            Event::HttpFailure {
                id,
                kind,
                message: self.redactor.redact(message),
            },
            Vec::new(),
        )
    }

    /// Executes a plugin's request (with retries) and returns the event to
    /// feed back, with the body bytes beside it; [`ShuttingDown`] when the
    /// daemon stops meanwhile (waits end and a request in flight is dropped
    /// at once).
    pub async fn execute(&mut self, req: &HttpRequest) -> Result<(Event, Vec<u8>), ShuttingDown> {
        let connector = self.policy.connector_id.clone();
        let mut url = match url::Url::parse(&req.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => {
                return Ok(self.failure(
                    req.id,
                    HttpFailureKind::NotAllowed,
                    &format!(
                        "scheme `{}` is not allowed (http or https only)",
                        u.scheme()
                    ),
                ))
            }
            Err(e) => {
                return Ok(self.failure(
                    req.id,
                    HttpFailureKind::Other,
                    &format!("malformed URL {:?}: {e}", self.redactor.redact(&req.url)),
                ))
            }
        };
        if let Some(why) = self.refused(&url) {
            tracing::warn!(connector = %connector, origin = %why.0, "request to an origin that is not allowed refused");
            return Ok(self.failure(req.id, HttpFailureKind::NotAllowed, &why.1));
        }
        let Ok(method) = reqwest::Method::from_bytes(req.method.as_bytes()) else {
            return Ok(self.failure(
                req.id,
                HttpFailureKind::Other,
                &format!("unknown HTTP method `{}`", req.method),
            ));
        };
        let log_url = self.redactor.redact(url.as_str());
        let mut oauth_retried = false;
        let mut attempt: u32 = 0;
        // Rate-limit waits of this request so far, for the line that hands
        // a last 429 over (QA20 R20-9: its error said nothing of them).
        let mut throttled_for = Duration::ZERO;
        loop {
            // Auth is computed per attempt: an OAuth2 token may be refreshed.
            let mut headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut query: Vec<(String, String)> = Vec::new();
            if let Some(auth) = self.auth.clone() {
                match self.auth_parts(&auth, &mut headers, &mut query).await {
                    Ok(()) => {}
                    Err(AuthFailure::Refused(msg)) => {
                        // A synthetic 401 makes the plugin report an auth error.
                        let msg = self.redactor.redact(&msg);
                        return Ok((
                            Event::HttpResponse(HttpResponseHead {
                                id: req.id,
                                status: 401,
                                headers: BTreeMap::from([(
                                    "content-type".to_owned(),
                                    "text/plain".to_owned(),
                                )]),
                            }),
                            msg.into_bytes(),
                        ));
                    }
                    Err(AuthFailure::Failed(kind, msg)) => {
                        return Ok(self.failure(req.id, kind, &msg))
                    }
                    Err(AuthFailure::ShuttingDown) => return Err(ShuttingDown),
                }
            }
            let mut attempt_url = url.clone();
            if !query.is_empty() {
                let mut pairs = attempt_url.query_pairs_mut();
                for (k, v) in &query {
                    pairs.append_pair(k, v);
                }
            }
            self.limit().await?;
            let started = Instant::now();
            let result = self
                .attempt(method.clone(), attempt_url, &headers, req.body.clone())
                .await?;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let (retry_in, outcome) = match result {
                Attempt::Response {
                    status,
                    headers,
                    body,
                } => {
                    tracing::debug!(connector = %connector, label = %req.label, method = %req.method,
                        url = %log_url, status, elapsed_ms, attempt, "request answered");
                    let can_retry = attempt < self.policy.max_retries;
                    if status == 429 && !can_retry {
                        tracing::warn!(connector = %connector, label = %req.label,
                            retries = attempt, waited_secs = throttled_for.as_secs(),
                            "still throttled (HTTP 429) after every retry; the plugin gets the 429 (its rate limiter may wait and send again; else the next run tries again)");
                    }
                    let wait = if status == 429 && can_retry {
                        let w = retry_after(&headers, std::time::SystemTime::now())
                            .unwrap_or_else(|| backoff(&self.tuning, attempt));
                        let too_long = w > self.tuning.max_rate_limit_wait;
                        if too_long {
                            let secs = u32::try_from(w.as_secs()).unwrap_or(u32::MAX);
                            self.stats.refused_wait_secs =
                                Some(self.stats.refused_wait_secs.map_or(secs, |s| s.max(secs)));
                            // QA: the plugin then failed with a bare
                            // "rate limited (HTTP 429)" and no word of why.
                            tracing::warn!(connector = %connector, label = %req.label,
                                wait_secs = w.as_secs(), max_wait_secs = self.tuning.max_rate_limit_wait.as_secs(),
                                "throttled (HTTP 429) for longer than a request waits; not waiting, the plugin gets the 429 (its rate limiter may wait and send again; else the next run tries again)");
                        }
                        (!too_long).then_some((w, Retry::Throttled))
                    } else if (500..=599).contains(&status) && req.idempotent && can_retry {
                        let cause = format!("HTTP {status}");
                        Some((backoff(&self.tuning, attempt), Retry::Failed(cause)))
                    } else if status == 401
                        && !oauth_retried
                        && self.auth.as_ref().is_some_and(has_oauth)
                    {
                        oauth_retried = true;
                        self.forget_tokens();
                        Some((Duration::ZERO, Retry::TokenRefused))
                    } else {
                        None
                    };
                    let headers: BTreeMap<String, String> = headers
                        .into_iter()
                        .map(|(k, v)| (k, self.redactor.redact(&v)))
                        .collect();
                    // An error answer only ever feeds a message; a 2xx body
                    // is data, which the session's review masks per record.
                    let body = if (200..300).contains(&status) {
                        body
                    } else {
                        self.redactor.redact_body(body)
                    };
                    (
                        wait,
                        (
                            Event::HttpResponse(HttpResponseHead {
                                id: req.id,
                                status,
                                headers,
                            }),
                            body,
                        ),
                    )
                }
                Attempt::Failure {
                    kind,
                    message,
                    retry,
                } => {
                    let message = self.redactor.redact(&message);
                    tracing::debug!(connector = %connector, label = %req.label, method = %req.method,
                        url = %log_url, error = %message, elapsed_ms, attempt, "request failed");
                    let wait =
                        (retry && req.idempotent && attempt < self.policy.max_retries).then(|| {
                            (
                                backoff(&self.tuning, attempt),
                                Retry::Failed(message.clone()),
                            )
                        });
                    (
                        wait,
                        self.failure(
                            req.id,
                            kind,
                            &format!("{} {log_url}: {message}", req.method),
                        ),
                    )
                }
            };
            match retry_in {
                None => return Ok(outcome),
                Some((wait, why)) => {
                    // Every retry but the one token refresh (at most once,
                    // `oauth_retried`) counts against `max_retries`, waited
                    // or not: a 429 with `Retry-After: 0` was retried for
                    // ever, ~1,800 requests a second (QA re-test).
                    let counts = !matches!(why, Retry::TokenRefused);
                    match why {
                        Retry::Throttled => {
                            throttled_for += wait;
                            self.count(Count::RateLimitWait);
                            tracing::info!(connector = %connector, label = %req.label,
                                wait_ms = wait.as_millis() as u64, "throttled (HTTP 429); waiting before retrying");
                        }
                        // One line per retry: a run waiting out 5xx or
                        // connection errors is not silent for minutes.
                        Retry::Failed(cause) => {
                            tracing::warn!(connector = %connector, label = %req.label,
                                attempt = attempt + 1, max_retries = self.policy.max_retries,
                                wait_ms = wait.as_millis() as u64, cause = %cause,
                                "request failed; retrying");
                        }
                        Retry::TokenRefused => {}
                    }
                    if counts {
                        self.count(Count::Retry);
                    }
                    self.wait(wait).await?;
                    if counts {
                        attempt += 1;
                    }
                    // Rebuild the URL without the previous attempt's query auth.
                    url = url::Url::parse(&req.url).unwrap_or(url);
                }
            }
        }
    }

    /// Sends one attempt, unless the daemon stops first or meanwhile (then
    /// the request in flight is dropped), and counts it: one request, and
    /// one `reckon_http_responses_total` by how it ended (the status, or
    /// `error` without a response, or `cancelled` when the stop dropped
    /// it), so every request counted has exactly one outcome. The one
    /// place both the plugin's requests and OAuth2 token refreshes are
    /// counted.
    async fn attempt(
        &mut self,
        method: reqwest::Method,
        url: url::Url,
        headers: &[(String, String)],
        body: Option<String>,
    ) -> Result<Attempt, ShuttingDown> {
        self.count(Count::Request);
        let metrics = crate::server::metrics::global();
        let connector = &self.policy.connector_id;
        let result = self
            .unless_stopped(self.send(method, url, headers, body))
            .await;
        match &result {
            Ok(Attempt::Response { status, .. }) => metrics.http_response(connector, *status),
            Ok(Attempt::Failure { .. }) => metrics.http_error(connector),
            Err(ShuttingDown) => metrics.http_cancelled(connector),
        }
        result
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: url::Url,
        headers: &[(String, String)],
        body: Option<String>,
    ) -> Attempt {
        let mut rb = client().request(method, url).timeout(self.policy.timeout);
        for (k, v) in headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let mut resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return classify(e, "request"),
        };
        let status = resp.status().as_u16();
        let mut headers = BTreeMap::new();
        for (k, v) in resp.headers() {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            headers
                .entry(k.as_str().to_ascii_lowercase())
                .and_modify(|old: &mut String| {
                    old.push_str(", ");
                    old.push_str(&v);
                })
                .or_insert(v);
        }
        let max = self.policy.max_response_bytes;
        if let Some(len) = resp.content_length() {
            if len > max as u64 {
                return Attempt::Failure {
                    kind: HttpFailureKind::TooLarge,
                    message: format!(
                        "response of {len} bytes exceeds the host's limit of {max} bytes per response; ask for smaller pages (a lower page size or a shorter window_days)"
                    ),
                    retry: false,
                };
            }
        }
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max {
                        return Attempt::Failure {
                            kind: HttpFailureKind::TooLarge,
                            message: format!(
                                "response body exceeds the host's limit of {max} bytes per response; ask for smaller pages (a lower page size or a shorter window_days)"
                            ),
                            retry: false,
                        };
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return classify(e, "response body"),
            }
        }
        Attempt::Response {
            status,
            headers,
            body,
        }
    }

    fn forget_tokens(&self) {
        if let Ok(mut t) = tokens().lock() {
            let prefix = format!("{}\u{0}", self.policy.connector_id);
            t.retain(|k, _| !k.starts_with(&prefix));
        }
    }

    async fn auth_parts(
        &mut self,
        auth: &AuthSpec,
        headers: &mut Vec<(String, String)>,
        query: &mut Vec<(String, String)>,
    ) -> Result<(), AuthFailure> {
        let set_header = |headers: &mut Vec<(String, String)>, name: &str, value: String| {
            let lower = name.to_ascii_lowercase();
            headers.retain(|(k, _)| k.to_ascii_lowercase() != lower);
            headers.push((lower, value));
        };
        let missing = |e: String| AuthFailure::Failed(HttpFailureKind::Other, e);
        match auth {
            AuthSpec::Basic { username, password } => {
                let u = self.value(username).map_err(missing)?;
                let p = self.value(password).map_err(missing)?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                set_header(headers, "authorization", format!("Basic {encoded}"));
            }
            AuthSpec::Bearer { token } => {
                let t = self.value(token).map_err(missing)?;
                set_header(headers, "authorization", format!("Bearer {t}"));
            }
            AuthSpec::Header { name, value } => {
                let v = self.value(value).map_err(missing)?;
                set_header(headers, name, v);
            }
            AuthSpec::Query { name, value } => {
                let v = self.value(value).map_err(missing)?;
                query.push((name.clone(), v));
            }
            AuthSpec::Oauth2RefreshToken {
                token_url,
                client_id,
                client_secret,
                refresh_token,
            } => {
                let token = self
                    .oauth_token(token_url, client_id, client_secret, refresh_token)
                    .await?;
                set_header(headers, "authorization", format!("Bearer {token}"));
            }
            AuthSpec::All { schemes } => {
                for s in schemes {
                    Box::pin(self.auth_parts(s, headers, query)).await?;
                }
            }
        }
        Ok(())
    }

    async fn oauth_token(
        &mut self,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Result<String, AuthFailure> {
        let missing = |e: String| AuthFailure::Failed(HttpFailureKind::Other, e);
        let id = self.value(client_id).map_err(missing)?;
        let secret = self.value(client_secret).map_err(missing)?;
        let refresh = self.value(refresh_token).map_err(missing)?;
        let url = if token_url.starts_with('/') {
            self.base_url
                .as_ref()
                .and_then(|b| b.join(token_url).ok())
                .ok_or_else(|| {
                    missing(format!(
                        "OAuth2 token_url `{token_url}` is relative but the base URL is unusable"
                    ))
                })?
        } else {
            url::Url::parse(token_url)
                .map_err(|e| missing(format!("OAuth2 token_url `{token_url}` is malformed: {e}")))?
        };
        let key = format!(
            "{}\u{0}{}\u{0}{}",
            self.policy.connector_id,
            url.as_str(),
            sha_of(&[&id, &refresh])
        );
        if let Some(hit) = tokens().lock().ok().and_then(|t| t.get(&key).cloned()) {
            if hit.expires > Instant::now() {
                self.redactor.add(&hit.token);
                return Ok(hit.token);
            }
        }
        if let Some((_, why)) = self.refused(&url) {
            return Err(AuthFailure::Failed(
                HttpFailureKind::NotAllowed,
                format!("OAuth2 token endpoint: {why}"),
            ));
        }
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let mut attempt = 0u32;
        loop {
            self.limit().await?;
            let r = self
                .attempt(
                    reqwest::Method::POST,
                    url.clone(),
                    &[(
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    )],
                    Some(body.clone()),
                )
                .await?;
            match r {
                Attempt::Response { status, body, .. } if (200..300).contains(&status) => {
                    #[derive(serde::Deserialize)]
                    struct TokenResponse {
                        access_token: String,
                        #[serde(default)]
                        expires_in: Option<u64>,
                    }
                    // A 2xx that is not a token (a maintenance or captive
                    // page, a proxy's answer) is the endpoint's fault, not a
                    // refusal of the credentials (QA6 F5).
                    let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                        AuthFailure::Failed(
                            HttpFailureKind::Other,
                            format!(
                                "OAuth2 token response from {url} (HTTP {status}) is malformed: {e}{}{NOT_REFUSED}",
                                plugin_api::sdk::body_suffix(&body, 200)
                            ),
                        )
                    })?;
                    self.redactor.add(&t.access_token);
                    // Refresh a minute early; default lifetime one hour;
                    // at most a day (QA24 F3: an `expires_in` near
                    // u64::MAX overflowed the deadline and panicked; real
                    // tokens live an hour).
                    let life = t
                        .expires_in
                        .unwrap_or(3600)
                        .saturating_sub(60)
                        .clamp(1, MAX_TOKEN_LIFE_SECS);
                    if let Ok(mut c) = tokens().lock() {
                        c.insert(
                            key,
                            CachedToken {
                                token: t.access_token.clone(),
                                expires: Instant::now() + Duration::from_secs(life),
                            },
                        );
                    }
                    tracing::debug!(connector = %self.policy.connector_id, expires_in_secs = life, "OAuth2 access token refreshed");
                    return Ok(t.access_token);
                }
                Attempt::Response { status, .. }
                    if (status >= 500 || status == 429) && attempt < self.policy.max_retries =>
                {
                    self.count(Count::Retry);
                    let w = backoff(&self.tuning, attempt);
                    attempt += 1;
                    tracing::warn!(connector = %self.policy.connector_id, attempt,
                        max_retries = self.policy.max_retries, wait_ms = w.as_millis() as u64,
                        cause = %format!("HTTP {status}"), "OAuth2 token refresh failed; retrying");
                    self.wait(w).await?;
                }
                // 400 and 401 are how an OAuth2 server refuses a grant or a
                // client (RFC 6749 §5.2: `invalid_grant`, `invalid_client`).
                Attempt::Response { status, body, .. } if matches!(status, 400 | 401) => {
                    return Err(AuthFailure::Refused(format!(
                        "OAuth2 token refresh at {url} failed with HTTP {status}{}",
                        plugin_api::sdk::body_suffix(&body, 200)
                    )));
                }
                // Anything else (a 5xx or 429 after the retries, a redirect,
                // another 4xx) is an outage or a misrouted endpoint: said
                // with its real status and retryable, not a synthetic 401
                // that sends the operator to check the credentials (QA6 F5).
                Attempt::Response { status, body, .. } => {
                    return Err(AuthFailure::Failed(
                        HttpFailureKind::Other,
                        format!(
                            "OAuth2 token refresh at {url} failed with HTTP {status}{}{NOT_REFUSED}",
                            plugin_api::sdk::body_suffix(&body, 200)
                        ),
                    ));
                }
                Attempt::Failure {
                    kind,
                    message,
                    retry,
                } => {
                    if retry && attempt < self.policy.max_retries {
                        self.count(Count::Retry);
                        let w = backoff(&self.tuning, attempt);
                        attempt += 1;
                        tracing::warn!(connector = %self.policy.connector_id, attempt,
                            max_retries = self.policy.max_retries, wait_ms = w.as_millis() as u64,
                            cause = %self.redactor.redact(&message), "OAuth2 token refresh failed; retrying");
                        self.wait(w).await?;
                        continue;
                    }
                    return Err(AuthFailure::Failed(
                        kind,
                        format!("OAuth2 token refresh at {url} failed: {message}"),
                    ));
                }
            }
        }
    }
}

/// Said of a token-endpoint failure that is not a refusal of the credentials.
const NOT_REFUSED: &str = " (the token endpoint failed; this is not a refusal of the credentials)";

enum AuthFailure {
    /// Credentials refused (the token endpoint answered 400 or 401):
    /// surfaces to the plugin as a 401.
    Refused(String),
    /// Could not even try, or the token endpoint failed (5xx, a redirect, a
    /// body that is not a token): surfaces as an `HttpFailure`, which the
    /// SDK makes a retryable transport error.
    Failed(HttpFailureKind, String),
    /// The daemon is shutting down: the request is abandoned.
    ShuttingDown,
}

impl From<ShuttingDown> for AuthFailure {
    fn from(_: ShuttingDown) -> Self {
        AuthFailure::ShuttingDown
    }
}

fn has_oauth(a: &AuthSpec) -> bool {
    match a {
        AuthSpec::Oauth2RefreshToken { .. } => true,
        AuthSpec::All { schemes } => schemes.iter().any(has_oauth),
        _ => false,
    }
}

fn sha_of(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

fn classify(e: reqwest::Error, what: &str) -> Attempt {
    let (kind, retry) = if e.is_timeout() {
        (HttpFailureKind::Timeout, true)
    } else if e.is_connect() {
        (HttpFailureKind::Connect, true)
    } else if e.is_body() || e.is_decode() || e.is_request() {
        (HttpFailureKind::Other, true)
    } else {
        (HttpFailureKind::Other, false)
    };
    let e = e.without_url();
    let mut message = format!("{what} failed: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        message.push_str(&format!(": {s}"));
        src = s.source();
    }
    if kind == HttpFailureKind::Timeout {
        message = format!("{what} timed out ({message})");
    }
    Attempt::Failure {
        kind,
        message,
        retry,
    }
}

/// Scheme, host and port: what a request may be sent to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// A URL's origin (`None` without a host or a known port).
    pub fn of(url: &url::Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    /// https on port 443 of a host.
    pub fn https(host: &str) -> Origin {
        Origin {
            scheme: "https".into(),
            host: host.to_ascii_lowercase(),
            port: 443,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_secret_is_masked_only_where_it_stands_alone() {
        let mut r = Redactor::default();
        r.add("k");
        assert_eq!(
            r.redact("plugin process crashed: killed by signal 6; api_key=k&x=1, token k."),
            "plugin process crashed: killed by signal 6; api_key=***&x=1, token ***."
        );
        let mut r = Redactor::default();
        r.add("s3cr3t-t0ken");
        assert_eq!(r.redact("Bearer s3cr3t-t0kenXYZ"), "Bearer ***XYZ");
    }

    /// QA-10 M2: a postback's HMAC secret, read by the file-drop race,
    /// showed unmasked in a connector's error. Every secret the daemon read
    /// is now masked in every session, whatever connector it belongs to.
    /// A plugin cut the body of a `200` it could not read (an HTML page
    /// echoing the request's token) to its first characters, through a
    /// secret: the part of the secret left before the cut was shown.
    #[test]
    fn a_secret_cut_short_is_masked_as_far_as_it_goes() {
        let mut r = Redactor::default();
        r.add("tok_9f8e7d6c5b4a3210");
        let body = "<html>token tok_9f8e7d6c5b4a3210 is not allowed here</html>";
        for cut in 20..body.len() {
            let message = format!("the answer is not JSON: {:?}", &body[..cut]);
            let masked = r.redact(&message);
            assert!(!masked.contains("tok_9f8e"), "{cut}: {masked}");
            assert!(masked.contains("token ***"), "{cut}: {masked}");
        }
        assert_eq!(
            r.redact("x tok_9f8e7d6c5b4a3210 y tok_9f8e7d; tok_9f8"),
            "x *** y ***; tok_9f8",
            "fewer than 8 characters left are not told from other text"
        );
        // Exactly 8 characters, and a longer form found first.
        let mut r = Redactor::default();
        r.add("abcdefgh");
        r.add("abcdefgh/xyz");
        assert_eq!(
            r.redact("k=abcdefgh%2Fxyz k=abcdefgh k=abcdefg"),
            "k=*** k=*** k=abcdefg"
        );
    }

    #[test]
    fn a_session_masks_every_secret_the_daemon_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hmac"), "hmac-SECRET-of-a-postback\n").unwrap();
        let read = crate::config::resolve::os_secret_reader(dir.path().to_owned());
        let r = crate::config::resolve::SecretRef::File("hmac".into());
        assert_eq!(read(&r).unwrap(), "hmac-SECRET-of-a-postback");
        let exec = HttpExecutor::new(
            HttpPolicy::new("another_connector"),
            None,
            &[],
            "https://api.example",
            serde_json::json!({}),
            SessionTuning::default(),
        );
        assert_eq!(
            exec.redactor()
                .redact("row 1: hmac-SECRET-of-a-postback: bad CSV"),
            "row 1: ***: bad CSV"
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let h = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(
            retry_after(&h("retry-after", "7"), now),
            Some(Duration::from_secs(7))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&h("retry-after", &date), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&h("x-ratelimit-reset", "1800000012"), now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            retry_after(&h("x-ratelimit-reset", "5"), now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(&h("ratelimit-reset", "3"), now),
            Some(Duration::from_secs(3))
        );
        // Fractions, as Shopify writes them (QA35c M1), rounded up to the ms.
        assert_eq!(
            retry_after(&h("retry-after", "2.0"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&h("retry-after", "0.2"), now),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            retry_after(&h("retry-after", "1.0001"), now),
            Some(Duration::from_millis(1001))
        );
        assert_eq!(
            retry_after(&h("ratelimit-reset", "1.5"), now),
            Some(Duration::from_millis(1500))
        );
        for bad in ["soon", "-1", "1e3", ".5", "5.", "1.2.3", "+3", ""] {
            assert_eq!(retry_after(&h("retry-after", bad), now), None, "{bad}");
        }
        assert_eq!(retry_after(&BTreeMap::new(), now), None);
    }

    #[test]
    fn token_bucket_allows_a_burst_then_spaces_requests() {
        let mut b = Bucket::new(RateLimit {
            requests: 2,
            per_secs: 1,
        });
        let t0 = Instant::now();
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        let next = b.take(t0).unwrap_err();
        assert_eq!(next - t0, Duration::from_millis(500));
        assert!(b.take(next).is_ok());
    }

    #[test]
    fn redactor_masks_plain_and_encoded_forms() {
        let mut r = Redactor::default();
        r.add("s3cr3t/+=");
        assert_eq!(r.redact("key=s3cr3t/+= x"), "key=*** x");
        assert_eq!(r.redact("key=s3cr3t%2F%2B%3D"), "key=***");
        assert_eq!(r.redact("nothing"), "nothing");
    }

    /// QA46 S-H1: a platform (or proxy) that echoes the request with
    /// lower-case percent-encoding (.NET's `UrlEncode`: CAKE) showed a
    /// Google refresh token (`1//…`) and a CAKE key whole, and a client
    /// secret all but its first characters.
    #[test]
    fn redactor_masks_lower_case_percent_encoding() {
        let mut r = Redactor::default();
        let (token, key) = ("1//0gXq9Tok/abc+def=987", "CaKe/Key+Secret=Val&ue0123");
        r.add(token);
        r.add(key);
        let echoed = "request body was: grant_type=refresh_token&refresh_token=1%2f%2f0gXq9Tok%2fabc%2bdef%3d987 and GET /get.asmx?api_key=CaKe%2fKey%2bSecret%3dVal%26ue0123 HTTP/1.1; space: a%20b";
        let masked = r.redact(echoed);
        assert_eq!(
            masked,
            "request body was: grant_type=refresh_token&refresh_token=*** and GET /get.asmx?api_key=*** HTTP/1.1; space: a%20b"
        );
        // Cut short by a plugin: no 4 characters of either survive.
        let cut = &echoed[..echoed.find("3d987").unwrap()];
        for secret in [token, key] {
            assert!(!shows_part(&r.redact(cut), secret, 4), "{}", r.redact(cut));
        }
        assert_eq!(lower_hex("a%2Fb%3D%e9%"), "a%2fb%3d%e9%");
    }

    /// QA47 R-H1: encoders differ in which characters they escape, not only
    /// in the case of their hex: .NET's `UrlEncode` leaves `!()*` and writes
    /// `%2f`, JavaScript's `encodeURIComponent` leaves `!'()*~`, Python's
    /// `quote` leaves `/`. A secret holding those was shown whole. Any
    /// spelling of its bytes (themselves or `%XX`) is masked now.
    #[test]
    fn redactor_masks_a_secret_however_it_was_url_encoded() {
        let secret = "Ke!y/Sec(ret)+42=x~yz 'q'*é";
        let mut r = Redactor::default();
        r.add(secret);
        for echoed in [
            // .NET UrlEncode
            "Ke!y%2fSec(ret)%2b42%3dx%7eyz+%27q%27*%c3%a9",
            // encodeURIComponent
            "Ke!y%2FSec(ret)%2B42%3Dx~yz%20'q'*%C3%A9",
            // Python quote (`/` safe), JSON-escaped `\/`
            "Ke%21y\\/Sec%28ret%29%2B42%3Dx~yz%20%27q%27%2A%C3%A9",
            // every byte escaped
            "%4B%65%21%79%2F%53%65%63%28%72%65%74%29%2B%34%32%3D%78%7E%79%7A%20%27%71%27%2A%C3%A9",
        ] {
            let text = format!("GET /x?api_key={echoed}&b=1 HTTP/1.1");
            assert_eq!(
                r.redact(&text),
                "GET /x?api_key=***&b=1 HTTP/1.1",
                "{echoed}"
            );
            // Cut short by a plugin, two thirds of the way in.
            let cut = &text[.."GET /x?api_key=".len() + echoed.len() * 2 / 3];
            assert_eq!(r.redact(cut), "GET /x?api_key=***", "{cut}");
        }
        // Fewer than the first 8 bytes agreeing is not the secret.
        assert_eq!(r.redact("Ke!y%2fSe and Ke!y/Sxx"), "Ke!y%2fSe and Ke!y/Sxx");
        assert_eq!(mask_encoded("nothing here", secret.as_bytes()), None);
    }

    /// True if `text` shows `len` or more consecutive characters of `secret`.
    fn shows_part(text: &str, secret: &str, len: usize) -> bool {
        let c: Vec<char> = secret.chars().collect();
        c.windows(len)
            .any(|w| text.contains(&w.iter().collect::<String>()))
    }

    /// QA-10 M2 (b): a secret with non-ASCII, `"` or `\` echoed in a JSON
    /// body is escaped there (`sk \u00e9/+ `), and that form was not masked;
    /// nor was the Basic form's `\/`.
    #[test]
    fn redactor_masks_json_escaped_forms() {
        let mut r = Redactor::default();
        r.add("sk é/+ \"q\\");
        for echoed in [
            r#"{"decoded": "***:sk \u00e9/+ \"q\\"}"#,
            r#"{"decoded": "***:sk \u00E9\/+ \"q\\"}"#,
            r#"{"decoded": "***:sk é\/+ \"q\\"}"#,
            r#"{"decoded": "***:sk é/+ \"q\\"}"#,
        ] {
            assert_eq!(r.redact(echoed), r#"{"decoded": "***:***"}"#, "{echoed}");
        }
        // A Basic credential: its base64 has `/` and `+`.
        let mut r = Redactor::default();
        let basic = base64::engine::general_purpose::STANDARD.encode("u:p?>?>?>");
        assert!(basic.contains('/'), "{basic}");
        r.add(&basic);
        let escaped = basic.replace('/', "\\/");
        assert_eq!(r.redact(&format!("Basic {escaped}")), "Basic ***");
        // Astral characters are escaped as a surrogate pair.
        let mut r = Redactor::default();
        r.add("key-\u{1F600}-long");
        assert_eq!(r.redact("x key-\\ud83d\\ude00-long x"), "x *** x");
    }

    /// QA12 N2: a 401 page in HTML repeated the credential HTML-escaped.
    #[test]
    fn redactor_masks_html_escaped_forms() {
        let mut r = Redactor::default();
        r.add("p@ss&w<rd>\"it's\"");
        for echoed in [
            "<p>token p@ss&amp;w&lt;rd&gt;&quot;it&#39;s&quot; refused</p>",
            "<p>token p@ss&amp;w&lt;rd&gt;&quot;it&#x27;s&quot; refused</p>",
        ] {
            assert_eq!(r.redact(echoed), "<p>token *** refused</p>", "{echoed}");
        }
    }

    /// QA-10 M2 (a): the plugin cut an error answer to a bounded length
    /// before the daemon masked it, so a Basic credential straddling the
    /// cut was printed in part (12 of its 16 characters). The executor now
    /// masks a non-2xx body whole before the plugin sees it: wherever the
    /// plugin cuts, no 4 consecutive characters of the credential survive.
    #[test]
    fn an_error_body_is_masked_before_the_plugin_cuts_it() {
        let secret = "p@ss w/rd+=&?#%x";
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("IRdemoSID:{secret}"));
        let mut r = Redactor::default();
        r.add(secret);
        r.add(&basic);
        let body = format!(
            r#"{{"headers": {{"authorization": "Basic {basic}"}}, "password": "{secret}"}}"#
        );
        let masked = r.redact_body(body.clone().into_bytes());
        for max in 1..body.len() {
            let shown = plugin_api::sdk::body_suffix(&masked, max);
            for s in [secret, basic.as_str()] {
                assert!(!shows_part(&shown, s, 4), "cut at {max}: {shown}");
            }
        }
        // A body that is not UTF-8 is masked too (read lossily).
        let mut bytes = vec![0xff, b' '];
        bytes.extend_from_slice(secret.as_bytes());
        assert_eq!(r.redact_body(bytes), "\u{FFFD} ***".as_bytes());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let t = SessionTuning {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(1000),
            ..SessionTuning::default()
        };
        let b0 = backoff(&t, 0);
        assert!(b0 >= Duration::from_millis(100) && b0 <= Duration::from_millis(150));
        let b3 = backoff(&t, 3);
        assert!(b3 >= Duration::from_millis(800) && b3 <= Duration::from_millis(1200));
        let b9 = backoff(&t, 9);
        assert!(b9 >= Duration::from_millis(1000) && b9 <= Duration::from_millis(1500));
    }
}
