//! Shared pieces of the affiliate fakes (Impact, Everflow, CAKE, PartnerStack).
//!
//! Each affiliate fake is a plain state machine implementing [`FakeApi`]:
//! one `handle(&HttpRequest) -> Reply` that both transports use:
//! - [`router`] serves it over loopback HTTP with axum (for the real daemon);
//! - [`in_process`] answers a [`plugin_api::testing::FakeHost`] directly,
//!   adding the credentials the daemon's host would add (fast plugin tests).
//!
//! [`Truth`] is the comparison both kinds of test make: counts and exact
//! decimal sums of commission and sale amount, by status and by partner.
//! [`Throttle`] injects 429s mid-sync. Nothing here knows a platform.

use plugin_api::protocol::{AuthSpec, HttpRequest};
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::Reply;
use plugin_api::{ConversionStatus, Record};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A fake platform API: answers one request at a time.
pub trait FakeApi: Send + 'static {
    /// Answers `req` (`url` may be absolute or a path with query).
    fn handle(&mut self, req: &HttpRequest) -> Reply;
}

/// A fake shared between its server and the test that mutates it.
pub type Shared<F> = Arc<Mutex<F>>;

/// Wraps a fake for sharing.
pub fn shared<F: FakeApi>(fake: F) -> Shared<F> {
    Arc::new(Mutex::new(fake))
}

/// Serves `state` over HTTP: every method and path goes to [`FakeApi::handle`].
pub fn router<F: FakeApi>(state: Shared<F>) -> axum::Router {
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let state = state.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 64 << 20)
                .await
                .unwrap_or_default();
            let http = HttpRequest {
                id: 0,
                method: parts.method.to_string(),
                url: parts.uri.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_ascii_lowercase(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
                body: if bytes.is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                },
                idempotent: false,
                label: String::new(),
            };
            let reply = state.lock().expect("fake state lock").handle(&http);
            let mut resp = axum::response::Response::new(axum::body::Body::from(reply.body));
            *resp.status_mut() = axum::http::StatusCode::from_u16(reply.status)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            for (k, v) in reply.headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::from_bytes(k.as_bytes()),
                    axum::http::HeaderValue::from_str(&v),
                ) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp
        }
    })
}

/// A [`plugin_api::testing::FakeHost::handler`] closure answering from
/// `state`, with the credentials of `auth` added the way the daemon's host
/// adds them. A setting name in `auth` is looked up in `secrets` first, then
/// in the plain `settings` (e.g. Impact's account SID).
pub fn in_process<F: FakeApi>(
    state: Shared<F>,
    auth: Option<AuthSpec>,
    secrets: &[(&str, &str)],
    settings: &serde_json::Value,
) -> impl FnMut(&HttpRequest) -> Reply + 'static {
    let lookup: BTreeMap<String, String> = secrets
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let settings = settings.clone();
    move |req: &HttpRequest| {
        let mut req = req.clone();
        if let Some(spec) = &auth {
            authorize(&mut req, spec, &|name: &str| {
                lookup.get(name).cloned().or_else(|| {
                    settings
                        .get(name)
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                })
            });
        }
        state.lock().expect("fake state lock").handle(&req)
    }
}

fn authorize(req: &mut HttpRequest, spec: &AuthSpec, value: &dyn Fn(&str) -> Option<String>) {
    use base64::Engine as _;
    let get = |n: &str| value(n).unwrap_or_default();
    match spec {
        AuthSpec::Basic { username, password } => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                get(username),
                get(password)
            ));
            req.headers
                .insert("authorization".into(), format!("Basic {token}"));
        }
        AuthSpec::Bearer { token } => {
            req.headers
                .insert("authorization".into(), format!("Bearer {}", get(token)));
        }
        AuthSpec::Header { name, value } => {
            req.headers.insert(name.to_ascii_lowercase(), get(value));
        }
        AuthSpec::Query { name, value } => {
            let sep = if req.url.contains('?') { '&' } else { '?' };
            req.url = format!(
                "{}{sep}{}={}",
                req.url,
                plugin_api::sdk::encode_component(name),
                plugin_api::sdk::encode_component(&get(value))
            );
        }
        AuthSpec::Oauth2RefreshToken { .. } => {}
        AuthSpec::All { schemes } => {
            for s in schemes {
                authorize(req, s, value);
            }
        }
    }
}

/// `Basic base64(user:pass)`, to compare with an `authorization` header.
pub fn basic_auth(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// The path and decoded query pairs of a request URL (absolute or relative).
pub fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let full = if url.starts_with('/') {
        format!("http://fake{url}")
    } else {
        url.to_owned()
    };
    match url::Url::parse(&full) {
        Ok(u) => (
            u.path().to_owned(),
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ),
        Err(_) => (url.to_owned(), Vec::new()),
    }
}

/// The first value of query parameter `name`.
pub fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A JSON reply with extra headers.
pub fn json(status: u16, body: &serde_json::Value, headers: &[(&str, String)]) -> Reply {
    let mut r = Reply::json(status, body);
    for (k, v) in headers {
        r.headers.insert((*k).to_owned(), v.clone());
    }
    r
}

/// Injects 429s mid-sync: after `ok_first` data requests pass, the next
/// `fail` are refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throttle {
    /// Data requests answered normally before the 429s start.
    pub ok_first: u32,
    /// How many 429s to answer.
    pub fail: u32,
    seen: u32,
    /// 429s answered so far.
    pub refused: u32,
}

impl Throttle {
    /// Throttle after `ok_first` requests, `fail` times.
    pub fn new(ok_first: u32, fail: u32) -> Self {
        Throttle {
            ok_first,
            fail,
            seen: 0,
            refused: 0,
        }
    }
    /// Counts one data request; true if it must be refused with a 429.
    pub fn refuse(&mut self) -> bool {
        self.seen += 1;
        if self.seen > self.ok_first && self.refused < self.fail {
            self.refused += 1;
            true
        } else {
            false
        }
    }
}

/// Count and exact sums of a group of conversions.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tally {
    /// Number of conversions.
    pub count: u64,
    /// Sum of the network-reported commissions.
    pub commission: Decimal,
    /// Sum of the sale amounts.
    pub sale: Decimal,
}

impl Tally {
    fn add(&mut self, commission: Decimal, sale: Decimal) {
        self.count += 1;
        self.commission += commission;
        self.sale += sale;
    }
}

/// The ground truth a sync must reproduce: totals by status and by partner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    /// Everything.
    pub total: Tally,
    /// By canonical status.
    pub by_status: BTreeMap<ConversionStatus, Tally>,
    /// By partner id.
    pub by_partner: BTreeMap<String, Tally>,
}

impl Truth {
    /// Adds one conversion (missing amounts count as zero).
    pub fn add(
        &mut self,
        partner: &str,
        status: ConversionStatus,
        commission: Option<Decimal>,
        sale: Option<Decimal>,
    ) {
        let (c, s) = (commission.unwrap_or_default(), sale.unwrap_or_default());
        self.total.add(c, s);
        self.by_status.entry(status).or_default().add(c, s);
        self.by_partner
            .entry(partner.to_owned())
            .or_default()
            .add(c, s);
    }

    /// The truth of stored records: the last record of each key wins (a
    /// re-pull upserts), other record kinds are ignored.
    pub fn of_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Truth {
        let mut latest: BTreeMap<String, &plugin_api::Conversion> = BTreeMap::new();
        for r in records {
            if let Record::Conversion(c) = r {
                latest.insert(c.external_id.clone(), c);
            }
        }
        let mut t = Truth::default();
        for c in latest.values() {
            t.add(
                &c.partner_id,
                c.status,
                c.commission.as_ref().map(|m| m.amount),
                c.sale_amount.as_ref().map(|m| m.amount),
            );
        }
        t
    }
}
