//! Parsing a `googleAds:searchStream` response into canonical [`Spend`].
//!
//! The body is a JSON array of batches `{results: [Row], fieldMask,
//! requestId, ...}`. Rows are nested and camelCase; int64 fields (ids,
//! `impressions`, `clicks`, `costMicros`) are JSON strings, doubles
//! (`conversions`, `conversionsValue`) are JSON numbers, and proto3 JSON
//! leaves out fields at their default (a day without clicks has no `clicks`).
//! A batch may instead be `{error: {...}}` when the stream fails midway.
//!
//! Rows are deserialised into borrowed structs (fast path); numbers are read
//! leniently (string or number) and converted exactly, never through a float
//! sum. Errors name the batch, the row, its ids and the field.
//!
//! ## A changed answer is an error, not "no rows" (QA35d H2, M4)
//!
//! The host sets stored rows of a complete pass that the answer no longer
//! has to zero, so an answer misread as empty would zero real spend. Hence:
//! - a batch without `results` is an empty batch only when its other keys
//!   are ones Google sends (`fieldMask`, `requestId`,
//!   `queryResourceConsumption`, `summaryRow`): rows under any other key
//!   (`rows`, ...) are a changed API and fail the request;
//! - every row has `metrics` (the query selects them), and `metrics` holds
//!   only the five selected fields: Google answers the fields a query
//!   selects and no others, so another name (`costAmount`) is a renamed
//!   field, not one to ignore;
//! - a left-out `costMicros` is a zero cost (proto3), but not on every row
//!   with clicks: [`CostCheck`] counts them for the caller.

use crate::config::Level;
pub use plugin_api::lenient::Num;
use plugin_api::lenient::{Key, KeySeed};
use plugin_api::parse;
use plugin_api::rust_decimal::Decimal;
use plugin_api::{Channel, Money, Spend};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// The account facts every row needs: read once from the `customer` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Customer id, digits only.
    pub customer_id: String,
    /// `customer.currencyCode`, e.g. `EUR`.
    pub currency: String,
    /// `customer.timeZone`, an IANA name such as `Europe/Berlin`.
    pub timezone: String,
}

/// One element of the stream: rows, or an error. Keys other than the
/// documented ones are kept by name ([`Batch::unknown`]).
#[derive(Debug, Default)]
struct Batch<'a> {
    results: Option<Vec<Row<'a>>>,
    error: Option<plugin_api::serde_json::Value>,
    unknown: Vec<String>,
}

/// The keys of a batch besides `results` and `error` (S-GA-docs:
/// `SearchGoogleAdsStreamResponse`).
const BATCH_KEYS: [&str; 4] = [
    "fieldMask",
    "requestId",
    "queryResourceConsumption",
    "summaryRow",
];

impl<'de: 'a, 'a> Deserialize<'de> for Batch<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Batch<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a searchStream batch object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Batch<'a>, M::Error> {
                const KEYS: &[&str] = &[
                    "results",
                    "error",
                    BATCH_KEYS[0],
                    BATCH_KEYS[1],
                    BATCH_KEYS[2],
                    BATCH_KEYS[3],
                ];
                let mut b = Batch::default();
                while let Some(key) = m.next_key_seed(KeySeed(KEYS))? {
                    match key {
                        Key::Known(0) => b.results = m.next_value()?,
                        Key::Known(1) => b.error = m.next_value()?,
                        Key::Known(_) => {
                            m.next_value::<IgnoredAny>()?;
                        }
                        Key::Other(name) => {
                            m.next_value::<IgnoredAny>()?;
                            b.unknown.push(name);
                        }
                    }
                }
                Ok(b)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    #[serde(borrow, default)]
    segments: Option<Segments<'a>>,
    #[serde(borrow, default)]
    campaign: Option<Entity<'a>>,
    #[serde(borrow, default)]
    ad_group: Option<Entity<'a>>,
    #[serde(borrow, default)]
    ad_group_ad: Option<AdGroupAd<'a>>,
    #[serde(borrow, default)]
    metrics: Option<Metrics<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct Segments<'a> {
    #[serde(borrow, default)]
    date: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entity<'a> {
    #[serde(borrow, default)]
    id: Option<Num<'a>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    advertising_channel_type: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct AdGroupAd<'a> {
    #[serde(borrow, default)]
    ad: Option<Entity<'a>>,
}

/// A row's `metrics`: the five the queries select, and the names of any
/// other key (which Google does not send: a renamed field).
#[derive(Debug, Default)]
struct Metrics<'a> {
    impressions: Option<Num<'a>>,
    clicks: Option<Num<'a>>,
    cost_micros: Option<Num<'a>>,
    conversions: Option<Num<'a>>,
    conversions_value: Option<Num<'a>>,
    unknown: Vec<String>,
}

/// The metrics the queries select, as the answer names them.
const METRICS: &[&str] = &[
    "impressions",
    "clicks",
    "costMicros",
    "conversions",
    "conversionsValue",
];

impl<'de: 'a, 'a> Deserialize<'de> for Metrics<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Metrics<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of metrics")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Metrics<'a>, M::Error> {
                let mut x = Metrics::default();
                while let Some(key) = m.next_key_seed(KeySeed(METRICS))? {
                    let slot = match key {
                        Key::Known(0) => &mut x.impressions,
                        Key::Known(1) => &mut x.clicks,
                        Key::Known(2) => &mut x.cost_micros,
                        Key::Known(3) => &mut x.conversions,
                        Key::Known(_) => &mut x.conversions_value,
                        Key::Other(name) => {
                            m.next_value::<IgnoredAny>()?;
                            x.unknown.push(name);
                            continue;
                        }
                    };
                    *slot = m.next_value()?;
                }
                Ok(x)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Why a response could not be turned into records.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamError {
    /// The stream carried a Google error object (e.g. quota exhausted midway).
    Upstream(plugin_api::serde_json::Value),
    /// The body or a row is malformed; the message names batch, row and field.
    Malformed(String),
}

/// Maps `campaign.advertisingChannelType` to a canonical channel.
pub fn channel(kind: Option<&str>) -> Channel {
    match kind.unwrap_or("") {
        "SEARCH" | "SHOPPING" | "LOCAL" | "HOTEL" | "TRAVEL" => Channel::Search,
        "DISPLAY" | "DEMAND_GEN" | "DISCOVERY" | "SMART" => Channel::Display,
        "VIDEO" | "MULTI_CHANNEL" => Channel::Video,
        _ => Channel::Other,
    }
}

/// An id field: `"101"`, `101` and `101.0` are one id ([`Num::id`]; QA37
/// R-L4: a float id had split a spend row in two); missing or `""` is an
/// error.
fn id_of(n: Option<&Num<'_>>, field: &str) -> Result<String, String> {
    n.map(|n| n.id(field))
        .transpose()?
        .flatten()
        .ok_or_else(|| format!("field `{field}` is missing"))
}

/// An id as written, for messages.
fn id_text(n: &Option<Num<'_>>) -> Option<String> {
    n.as_ref().map(|n| match n {
        Num::Str(s) => s.to_string(),
        other => other.text(),
    })
}

/// The rows with clicks of one request's answers, and those of them without
/// `metrics.costMicros`. proto3 leaves a zero cost out, so one such row can
/// be genuine; every row with clicks without a cost is a changed API
/// (QA35d M4: `costMicros` renamed, every row stored at spend 0).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CostCheck {
    /// Rows with clicks > 0.
    pub clicked: usize,
    /// Of those, rows without `metrics.costMicros`.
    pub clicked_without_cost: usize,
    /// The first row with clicks but no cost, for messages (`batch 1, row
    /// 2 (campaign 7, ad group 8)`).
    pub example: Option<String>,
}

impl CostCheck {
    /// Adds another answer's count (the Performance Max query's).
    pub fn add(&mut self, o: CostCheck) {
        self.clicked += o.clicked;
        self.clicked_without_cost += o.clicked_without_cost;
        self.example = self.example.take().or(o.example);
    }

    /// Every row with clicks, two or more of them, has no cost: the field
    /// was dropped or renamed, not zero. One such row alone may be a real
    /// zero cost, and failing on it would stop the account's syncs for good.
    pub fn no_cost_anywhere(&self) -> bool {
        self.clicked >= 2 && self.clicked_without_cost == self.clicked
    }

    /// A single row with clicks, and it has no cost: worth a warning.
    pub fn lone_row_without_cost(&self) -> bool {
        self.clicked == 1 && self.clicked_without_cost == 1
    }
}

/// `batch B, row R (campaign C, ad group G)`, for messages.
fn describe(b: usize, r: usize, row: &Row<'_>) -> String {
    let ids = [
        (
            "campaign",
            row.campaign.as_ref().and_then(|c| id_text(&c.id)),
        ),
        (
            "ad group",
            row.ad_group.as_ref().and_then(|c| id_text(&c.id)),
        ),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
    .collect::<Vec<_>>()
    .join(", ");
    format!("batch {}, row {} ({ids})", b + 1, r + 1)
}

/// Parses a whole searchStream body, appending one [`Spend`] per row, and
/// counts the rows with clicks but no cost ([`CostCheck`]).
pub fn parse_stream(
    body: &[u8],
    account: &Account,
    level: Level,
    out: &mut Vec<Spend>,
) -> Result<CostCheck, StreamError> {
    let batches: Vec<Batch<'_>> = match plugin_api::serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return Err(StreamError::Malformed(locate_json_error(body, e))),
    };
    let mut check = CostCheck::default();
    for (b, batch) in batches.iter().enumerate() {
        if let Some(err) = &batch.error {
            return Err(StreamError::Upstream(err.clone()));
        }
        let Some(results) = &batch.results else {
            // proto3 leaves an empty `results` out: a batch of only the
            // documented keys is empty. Any other key may hold the rows
            // under a new name (QA35d H2: `rows`), and reading it as "no
            // rows" would zero the stored spend of these days.
            if !batch.unknown.is_empty() {
                return Err(StreamError::Malformed(format!(
                    "batch {}: no `results` array, but {}: Google Ads sends the rows in `results`, beside {} (the answer's shape changed; nothing of these days is stored)",
                    b + 1,
                    batch
                        .unknown
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    BATCH_KEYS
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            continue;
        };
        out.reserve(results.len());
        for (r, row) in results.iter().enumerate() {
            let spend = to_spend(row, account, level)
                .map_err(|e| StreamError::Malformed(format!("{}: {e}", describe(b, r, row))))?;
            if spend.clicks > 0 {
                check.clicked += 1;
                if row
                    .metrics
                    .as_ref()
                    .is_some_and(|m| m.cost_micros.is_none())
                {
                    check.clicked_without_cost += 1;
                    if check.example.is_none() {
                        check.example = Some(describe(b, r, row));
                    }
                }
            }
            out.push(spend);
        }
    }
    Ok(check)
}

/// Finds the JSON path of a structural error (slow path, only on failure).
fn locate_json_error(body: &[u8], first: plugin_api::serde_json::Error) -> String {
    let mut de = plugin_api::serde_json::Deserializer::from_slice(body);
    let located: Result<Vec<plugin_api::serde_json::Value>, _> =
        serde::Deserialize::deserialize(&mut de);
    match located {
        Err(e) => plugin_api::sdk::malformed_json(body, &e),
        Ok(batches) => {
            // Valid JSON of the wrong shape: report the first offending field.
            let path = shape_error(&batches).unwrap_or_default();
            format!("unexpected shape{path}: {first}")
        }
    }
}

fn shape_error(batches: &[plugin_api::serde_json::Value]) -> Option<String> {
    use plugin_api::serde_json::Value;
    for (b, batch) in batches.iter().enumerate() {
        let Some(obj) = batch.as_object() else {
            return Some(format!(" at batch {}: not an object", b + 1));
        };
        let Some(results) = obj.get("results") else {
            continue;
        };
        let Some(rows) = results.as_array() else {
            return Some(format!(
                " at batch {}: field `results` is not an array",
                b + 1
            ));
        };
        for (r, row) in rows.iter().enumerate() {
            for (k, v) in row.as_object().into_iter().flatten() {
                if let Some(inner) = v.as_object() {
                    for (f, x) in inner {
                        if matches!(x, Value::Array(_)) {
                            return Some(format!(
                                " at batch {}, row {}: field `{k}.{f}`",
                                b + 1,
                                r + 1
                            ));
                        }
                    }
                } else {
                    return Some(format!(
                        " at batch {}, row {}: field `{k}` is not an object",
                        b + 1,
                        r + 1
                    ));
                }
            }
        }
    }
    None
}

/// An absent int64 metric is zero (proto3 JSON leaves defaults out).
fn count(n: Option<&Num<'_>>, name: &str) -> Result<u64, String> {
    match n {
        None => Ok(0),
        Some(n) => n
            .count()
            .map_err(|e| format!("field `metrics.{name}`: {e}")),
    }
}

/// An absent double metric is zero.
fn dec(n: Option<&Num<'_>>, name: &str) -> Result<Decimal, String> {
    match n {
        None => Ok(Decimal::ZERO),
        Some(n) => Ok(n
            .decimal()
            .map_err(|e| format!("field `metrics.{name}`: {e}"))?
            .unwrap_or(Decimal::ZERO)),
    }
}

fn to_spend(row: &Row<'_>, account: &Account, level: Level) -> Result<Spend, String> {
    let date = row
        .segments
        .as_ref()
        .and_then(|s| s.date.as_deref())
        .ok_or("field `segments.date` is missing")?;
    let day = parse::date(date).map_err(|e| format!("field `segments.date`: {e}"))?;
    let campaign = row.campaign.as_ref().ok_or("field `campaign` is missing")?;
    let campaign_id = id_of(campaign.id.as_ref(), "campaign.id")?;
    let (ad_group_id, ad_group_name) = match level {
        Level::Campaign => (None, None),
        Level::AdGroup | Level::Ad => {
            let g = row.ad_group.as_ref().ok_or("field `adGroup` is missing")?;
            (
                Some(id_of(g.id.as_ref(), "adGroup.id")?),
                Some(g.name.as_deref().unwrap_or_default().to_owned()),
            )
        }
    };
    let ad_id = match level {
        Level::Ad => Some(id_of(
            row.ad_group_ad
                .as_ref()
                .and_then(|a| a.ad.as_ref())
                .and_then(|a| a.id.as_ref()),
            "adGroupAd.ad.id",
        )?),
        _ => None,
    };
    // The queries select metrics, so every row has them (`{}` at worst): a
    // row without is a changed answer, not a row without activity.
    let metrics = row.metrics.as_ref().ok_or(
        "field `metrics` is missing: the query selects metrics, so every row Google Ads sends has them (the answer's shape changed)",
    )?;
    if let Some(name) = metrics.unknown.first() {
        return Err(format!(
            "field `metrics.{name}` was not asked for: the query selects metrics {} only, and Google Ads answers only the fields a query selects (a renamed field? the answer's shape changed)",
            METRICS.join(", ")
        ));
    }
    let m = Some(metrics);
    let impressions = count(m.and_then(|m| m.impressions.as_ref()), "impressions")?;
    let clicks = count(m.and_then(|m| m.clicks.as_ref()), "clicks")?;
    let micros = match m.and_then(|m| m.cost_micros.as_ref()) {
        None => 0,
        Some(n) => n
            .int()
            .map_err(|e| format!("field `metrics.costMicros`: {e}"))?,
    };
    let conversions = dec(m.and_then(|m| m.conversions.as_ref()), "conversions")?;
    let value = dec(
        m.and_then(|m| m.conversions_value.as_ref()),
        "conversionsValue",
    )?;
    Ok(Spend {
        source: String::new(),
        account_id: account.customer_id.clone(),
        day,
        timezone: account.timezone.clone(),
        campaign_id,
        campaign_name: campaign.name.as_deref().unwrap_or_default().to_owned(),
        ad_group_id,
        ad_group_name,
        ad_id,
        channel: channel(campaign.advertising_channel_type.as_deref()),
        impressions,
        clicks,
        spend: Money::from_micros(micros, &account.currency),
        platform_conversions: Some(conversions.normalize()),
        platform_conversion_value: Some(Money::new(value.normalize(), &account.currency)),
    })
}

/// Parses the customer query's stream into the account facts.
pub fn parse_customer(body: &[u8], customer_id: &str) -> Result<Account, StreamError> {
    use plugin_api::serde_json::Value;
    let batches: Vec<Value> = plugin_api::serde_json::from_slice(body)
        .map_err(|e| StreamError::Malformed(format!("malformed JSON: {e}")))?;
    for b in &batches {
        if let Some(err) = b.get("error") {
            return Err(StreamError::Upstream(err.clone()));
        }
    }
    let customer = batches
        .iter()
        .filter_map(|b| b.get("results").and_then(Value::as_array))
        .flatten()
        .find_map(|r| r.get("customer"))
        .ok_or_else(|| {
            StreamError::Malformed(format!(
                "no `customer` row for customer {customer_id} (is it a manager account?)"
            ))
        })?;
    let text = |f: &str| {
        customer
            .get(f)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| StreamError::Malformed(format!("field `customer.{f}` is missing")))
    };
    let currency = text("currencyCode")?.to_ascii_uppercase();
    if plugin_api::currency::minor_unit_digits(&currency).is_none() {
        return Err(StreamError::Malformed(format!(
            "field `customer.currencyCode`: {currency:?} is not an ISO-4217 code"
        )));
    }
    Ok(Account {
        customer_id: customer_id.to_owned(),
        currency,
        timezone: text("timeZone")?,
    })
}
