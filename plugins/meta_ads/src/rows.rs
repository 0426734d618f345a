//! Parsing one insights page into canonical [`Spend`].
//!
//! A page is `{"data": [Row], "paging": {"cursors": {"before", "after"},
//! "next": "<url>"}}`. Every metric is a JSON string (`"impressions":
//! "91839"`, `"spend": "123.45"`); `actions` and `action_values` are lists of
//! `{action_type, value}` (plus one key per requested attribution window).
//! Exactly one configured action type is counted: purchase types overlap
//! (`purchase`, `omni_purchase`, `offsite_conversion.fb_pixel_purchase`) and
//! summing them would double-count.
//!
//! ## A changed answer is an error, not "the last page" or 0 (QA35d, QA36)
//!
//! The host sets the stored rows a complete pass did not deliver to zero,
//! so an answer misread as the last page, or a figure misread as 0, would
//! zero real spend. Hence, each failing the page naming row and field:
//! - a page with rows has `paging` (Graph sends it, with `cursors`, on
//!   every page of rows); a page without `paging.next` is the last one only
//!   when `paging` holds no key Graph does not send (a renamed `next`), and
//!   the caller asks once more with `cursors.after` after a full page
//!   without `next` ([`Parsed::last_cursor`]): a real last page that happens
//!   to be full then answers no rows;
//! - a metric Insights leaves out has no figure (0), but one sent as null,
//!   `""`, `"-"` or text that is not a plain number is refused;
//! - ids are read with [`Scalar::id`] (`101`, `"101"`, `101.0` and `" 101"`
//!   are the same id; a fraction or an exponent is refused), `date_start`
//!   is exactly `YYYY-MM-DD`, a row's `account_id` and `account_currency`
//!   are the account's;
//! - with attribution windows, a counted action with none of the requested
//!   window keys but other keys is a renamed window; with only a non-zero
//!   `value` it counts 0 and is reported ([`Parsed::window_gaps`], a WARN).

use crate::config::{ClicksMetric, Level, WINDOWS};
use plugin_api::chrono::NaiveDate;
pub use plugin_api::lenient::Num;
use plugin_api::lenient::{number_decimal, shape, Key, KeySeed, Scalar};
use plugin_api::parse;
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::Value;
use plugin_api::{Channel, Money, Spend};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// The account facts every row needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Account id, digits only.
    pub account_id: String,
    /// `currency`, e.g. `EUR`.
    pub currency: String,
    /// `timezone_name`, an IANA name such as `America/Los_Angeles`.
    pub timezone: String,
}

/// One page of insights.
#[derive(Debug, Deserialize)]
struct Page<'a> {
    /// Required: an answer without it (an error object sent with HTTP 200,
    /// an API change) is not an empty page (QA6 F6, found on Impact).
    #[serde(borrow, default)]
    data: Option<Vec<Row<'a>>>,
    /// Read by hand ([`paging`]): its keys are checked.
    #[serde(default)]
    paging: Option<Value>,
}

/// A metric field: left out (Insights' "no figure"), sent as null, or
/// sent with a value. serde reads null and absent alike as `None`, so a
/// plain `Option` cannot tell them apart (QA36 A-M2: `spend: null` was
/// stored as 0).
#[derive(Debug, Default)]
enum Metric<'a> {
    #[default]
    Absent,
    Null,
    Sent(Num<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Metric<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<Num<'a>>::deserialize(d)? {
            None => Metric::Null,
            Some(n) => Metric::Sent(n),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct Row<'a> {
    #[serde(borrow, default)]
    date_start: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    date_stop: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    account_id: Scalar<'a>,
    #[serde(borrow, default)]
    account_currency: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    campaign_id: Scalar<'a>,
    #[serde(borrow, default)]
    campaign_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    adset_id: Scalar<'a>,
    #[serde(borrow, default)]
    adset_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ad_id: Scalar<'a>,
    #[serde(borrow, default)]
    impressions: Metric<'a>,
    #[serde(borrow, default)]
    clicks: Metric<'a>,
    #[serde(borrow, default)]
    inline_link_clicks: Metric<'a>,
    #[serde(borrow, default)]
    spend: Metric<'a>,
    #[serde(borrow, default)]
    actions: Option<Vec<Action<'a>>>,
    #[serde(borrow, default)]
    action_values: Option<Vec<Action<'a>>>,
}

/// One entry of `actions` / `action_values`: `value` under the account's
/// (or the ad sets' unified) attribution, plus one key per requested
/// attribution window, and the names of any other key (a renamed window,
/// QA36 A-M4).
#[derive(Debug, Default)]
struct Action<'a> {
    action_type: Scalar<'a>,
    value: Metric<'a>,
    /// By [`WINDOWS`] index.
    windows: [Metric<'a>; 8],
    unknown: Vec<String>,
}

/// The keys of an action entry: `action_type`, `value`, then [`WINDOWS`].
const ACTION_KEYS: [&str; 10] = [
    "action_type",
    "value",
    WINDOWS[0],
    WINDOWS[1],
    WINDOWS[2],
    WINDOWS[3],
    WINDOWS[4],
    WINDOWS[5],
    WINDOWS[6],
    WINDOWS[7],
];

impl<'de: 'a, 'a> Deserialize<'de> for Action<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Action<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an action object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Action<'a>, M::Error> {
                let mut a = Action::default();
                while let Some(key) = m.next_key_seed(KeySeed(&ACTION_KEYS))? {
                    match key {
                        Key::Known(0) => a.action_type = m.next_value()?,
                        Key::Known(1) => a.value = m.next_value()?,
                        Key::Known(i) => a.windows[i - 2] = m.next_value()?,
                        Key::Other(name) => {
                            m.next_value::<IgnoredAny>()?;
                            a.unknown.push(name);
                        }
                    }
                }
                Ok(a)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Action<'a> {
    /// The figure under `window` (one of [`WINDOWS`]).
    fn window(&self, window: &str) -> &Metric<'a> {
        match WINDOWS.iter().position(|w| *w == window) {
            Some(i) => &self.windows[i],
            None => &Metric::Absent,
        }
    }
}

/// What counts as clicks (one insights field), and as conversions and
/// value: one action type, under the requested attribution windows (none:
/// each action's `value`).
#[derive(Debug, Clone, Copy)]
pub struct Counted<'s> {
    /// The field stored as `clicks` (`clicks` or `inline_link_clicks`).
    pub clicks: ClicksMetric,
    /// The one `action_type` counted; empty for none.
    pub action_type: &'s str,
    /// The configured `action_attribution_windows`; their figures are
    /// added up (the config allows at most one click and one view window,
    /// which do not overlap).
    pub windows: &'s [String],
}

/// What a page parsed to.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The page's records.
    pub spend: Vec<Spend>,
    /// `paging.cursors.after` when `paging.next` says there is another page.
    pub after: Option<String>,
    /// `paging.cursors.after` of a page without `paging.next`. Graph leaves
    /// `next` out of the last page, but also of a page whose `next` was
    /// dropped: after a full page the caller asks once more with it.
    pub last_cursor: Option<String>,
    /// Rows whose counted action has a non-zero `value` but none of the
    /// requested attribution windows (counted 0), described for a WARN:
    /// Meta leaves out a window without a figure, so it may be genuine.
    pub window_gaps: Vec<String>,
}

/// An id for messages: as sent (trimmed), whatever its shape.
fn id_label(s: &Scalar<'_>) -> Option<String> {
    s.text().map(Cow::into_owned)
}

/// Parses one insights page. Errors name the row, its ids and the field.
pub fn parse_page(
    body: &[u8],
    account: &Account,
    level: Level,
    counted: Counted<'_>,
) -> Result<Parsed, String> {
    let page: Page<'_> = plugin_api::serde_json::from_slice(body).map_err(|e| {
        // Slow path: say which field had the wrong shape.
        let detail = plugin_api::serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| shape_error(&v));
        match detail {
            Some(d) => format!("{d}: {e}"),
            None => plugin_api::sdk::malformed_json(body, &e),
        }
    })?;
    let Some(data) = page.data else {
        return Err(format!(
            "field `data` is missing (not a page of insights){}",
            plugin_api::sdk::body_suffix(body, 200)
        ));
    };
    let mut spend = Vec::with_capacity(data.len());
    let mut window_gaps = Vec::new();
    for (i, row) in data.iter().enumerate() {
        let describe = || {
            let ids = [
                ("campaign", id_label(&row.campaign_id)),
                ("adset", id_label(&row.adset_id)),
            ]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect::<Vec<_>>()
            .join(", ");
            format!("row {} ({ids})", i + 1)
        };
        let mut gaps = Vec::new();
        let s = to_spend(row, account, level, counted, &mut gaps)
            .map_err(|e| format!("{}: {e}", describe()))?;
        window_gaps.extend(
            gaps.into_iter()
                .map(|g| format!("{} {}: {g}", describe(), s.day)),
        );
        spend.push(s);
    }
    let (after, last_cursor) = paging(page.paging.as_ref(), data.len(), body)?;
    Ok(Parsed {
        spend,
        after,
        last_cursor,
        window_gaps,
    })
}

/// `paging`'s keys Graph sends (`cursors` holds `before` and `after`).
const PAGING_KEYS: [&str; 3] = ["cursors", "next", "previous"];

/// Reads `paging`: the `after` cursor when `next` says another page
/// follows, else the `after` cursor of this (maybe last) page. A page of
/// rows without `paging`, and a `paging` without `next` holding keys Graph
/// does not send, are a changed answer: read as the last page, the host
/// would zero the stored rows of the pages never asked for (QA36 A-H1).
fn paging(
    p: Option<&Value>,
    rows: usize,
    body: &[u8],
) -> Result<(Option<String>, Option<String>), String> {
    let Some(p) = p.filter(|v| !v.is_null()) else {
        if rows == 0 {
            return Ok((None, None));
        }
        let keys = plugin_api::serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.as_object().map(|o| quoted(o.keys())))
            .unwrap_or_default();
        return Err(format!(
            "field `paging` is missing beside {rows} rows (the page has {keys}): Graph sends `paging` with every page of rows, and `paging.next` while more pages follow; without it this page cannot be told from the last (the answer's shape changed; nothing of this page is stored)"
        ));
    };
    let Some(obj) = p.as_object() else {
        return Err(format!(
            "field `paging` is {}: expected an object with `cursors` and `next`",
            shape(p)
        ));
    };
    let text = |v: Option<&Value>, name: &str| -> Result<Option<String>, String> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
            Some(other) => Err(format!(
                "field `{name}` is {}: expected a string",
                shape(other)
            )),
        }
    };
    let next = text(obj.get("next"), "paging.next")?;
    let cursors = match obj.get("cursors") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => Some(c),
        Some(other) => {
            return Err(format!(
                "field `paging.cursors` is {}: expected an object with `before` and `after`",
                shape(other)
            ))
        }
    };
    let after = match cursors {
        Some(c) => text(c.get("after"), "paging.cursors.after")?,
        None => None,
    };
    if next.is_some() {
        let a =
            after.ok_or("field `paging.cursors.after` is missing although `paging.next` is set")?;
        return Ok((Some(a), None));
    }
    let unknown: Vec<String> = obj
        .keys()
        .filter(|k| !PAGING_KEYS.contains(&k.as_str()))
        .map(|k| format!("paging.{k}"))
        .chain(cursors.into_iter().flat_map(|c| {
            c.keys()
                .filter(|k| *k != "before" && *k != "after")
                .map(|k| format!("paging.cursors.{k}"))
        }))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "no `paging.next`, but {}: Graph's `paging` holds `cursors` (`before`, `after`), `next` and `previous` only, and `next` while more pages follow; this page cannot be told from the last (the answer's shape changed; nothing of this page is stored)",
            quoted(unknown.iter())
        ));
    }
    Ok((None, after))
}

/// `` `a`, `b` `` for messages.
fn quoted<S: fmt::Display>(keys: impl Iterator<Item = S>) -> String {
    keys.map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn shape_error(v: &Value) -> Option<String> {
    let Some(data) = v.get("data") else {
        return Some("field `data` is missing".into());
    };
    let Some(rows) = data.as_array() else {
        return Some("field `data` is not a list".into());
    };
    for (i, row) in rows.iter().enumerate() {
        let Some(obj) = row.as_object() else {
            return Some(format!("row {}: not an object", i + 1));
        };
        for (k, v) in obj {
            let bad = match k.as_str() {
                "actions" | "action_values" => !matches!(v, Value::Array(_) | Value::Null),
                _ => matches!(v, Value::Array(_) | Value::Object(_)),
            };
            if bad {
                return Some(format!("row {}: field `{k}` has the wrong type", i + 1));
            }
        }
    }
    None
}

fn text<'r>(v: &'r Option<Cow<'_, str>>, field: &str) -> Result<&'r str, String> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("field `{field}` is missing"))
}

/// A day exactly as Insights writes it, `YYYY-MM-DD` (QA36 A-L1:
/// `"2026-11-01xyz"` was read as its first ten characters).
fn day(s: &str, field: &str) -> Result<NaiveDate, String> {
    let plain = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    plain
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("field `{field}`: {s:?} is not a YYYY-MM-DD date"))
}

/// What a figure is, and what it should look like, for messages.
type Kind = (&'static str, &'static str);
/// An amount (spend, conversion value, conversions).
const AN_AMOUNT: Kind = ("an amount", "a number such as \"12.34\"");
/// A count (impressions, clicks).
const A_COUNT: Kind = ("a count", "a whole number such as \"1234\"");

/// A figure as Insights sends it: a string holding a plain number
/// (`"123.45"`), or a JSON number (read exactly from its literal). `None`
/// when the field is left out: Insights' "no figure". Null, `""`, `"-"`,
/// digit separators (`"1_010.25"`) or other text are no form Meta
/// documents, and read as 0 or guessed they would replace a stored figure
/// (QA35d M1; QA36 A-M2, A-M3, A-L1). `name` is the field as messages
/// show it (`` `spend` ``).
fn figure(m: &Metric<'_>, name: &str, (what, like): Kind) -> Result<Option<Decimal>, String> {
    let n = match m {
        Metric::Absent => return Ok(None),
        Metric::Null => {
            return Err(format!(
            "field {name} is null: expected {like} (Insights leaves out a field without a figure)"
        ))
        }
        Metric::Sent(n) => n,
    };
    match n {
        Num::Number(lit) => number_decimal(lit)
            .map(Some)
            .map_err(|e| format!("field {name}: {e}")),
        Num::Str(s) => match parse::plain_decimal_str(s) {
            Ok(Some(d)) => Ok(Some(d)),
            Ok(None) => Err(format!(
                "field {name}: {} is not {what}: expected {like}",
                n.text()
            )),
            Err(e) => Err(format!("field {name}: {e}")),
        },
    }
}

/// A count metric; left out is 0.
fn count(m: &Metric<'_>, field: &str) -> Result<u64, String> {
    let name = format!("`{field}`");
    match (figure(m, &name, A_COUNT)?, m) {
        (Some(_), Metric::Sent(n)) => n.count().map_err(|e| format!("field {name}: {e}")),
        _ => Ok(0),
    }
}

fn pick(
    list: &Option<Vec<Action<'_>>>,
    counted: Counted<'_>,
    field: &str,
    gaps: &mut Vec<String>,
) -> Result<Decimal, String> {
    let Some(list) = list else {
        return Ok(Decimal::ZERO);
    };
    let action_type = counted.action_type;
    let Some(a) = list
        .iter()
        .find(|a| matches!(&a.action_type, Scalar::Str(t) if t == action_type))
    else {
        return Ok(Decimal::ZERO);
    };
    let name = |key: &str| format!("`{field}` ({action_type}, `{key}`)");
    if counted.windows.is_empty() {
        if matches!(a.value, Metric::Absent) {
            return Err(format!(
                "field `{field}` ({action_type}): the entry has no `value`{}: Meta sends one with every action (the answer's shape changed)",
                if a.unknown.is_empty() {
                    String::new()
                } else {
                    format!(" but {}", quoted(a.unknown.iter()))
                }
            ));
        }
        return Ok(figure(&a.value, &name("value"), AN_AMOUNT)?.unwrap_or(Decimal::ZERO));
    }
    let asked = || quoted(counted.windows.iter());
    if counted
        .windows
        .iter()
        .all(|w| matches!(a.window(w), Metric::Absent))
    {
        // Meta leaves out a window without a figure, so an action with
        // none of them can be genuine; beside a key it does not send, a
        // window was renamed (QA36 A-M4: every purchase counted 0).
        if !a.unknown.is_empty() {
            return Err(format!(
                "field `{field}` ({action_type}): none of the requested attribution windows {}, but {}: Meta sends one key per requested window (a renamed window? the answer's shape changed; nothing of this page is stored)",
                asked(),
                quoted(a.unknown.iter())
            ));
        }
        if let Some(v) = figure(&a.value, &name("value"), AN_AMOUNT)?.filter(|v| !v.is_zero()) {
            gaps.push(format!(
                "`{field}` ({action_type}) has `value` {v} but none of the requested windows {}: counted 0",
                asked()
            ));
        }
        return Ok(Decimal::ZERO);
    }
    // Checked: each figure is read without a bound (the host bounds only
    // the finished record), so their sum may leave `Decimal`'s range (QA24).
    counted.windows.iter().try_fold(Decimal::ZERO, |sum, w| {
        let f = figure(a.window(w), &name(w), AN_AMOUNT)?.unwrap_or(Decimal::ZERO);
        sum.checked_add(f).ok_or_else(|| {
            format!(
                "field `{field}` ({action_type}, `{w}`): the attribution windows' figures add up \
                 beyond the amount range (about ±7.9e28)"
            )
        })
    })
}

/// An id of the row ([`Scalar::id`]): `101`, `"101"`, `101.0` and
/// `" 101"` are the same id; a number with a fraction or an exponent is
/// refused (QA36 A-M5: `120200000000000011.0` and `" 1202..."` became new
/// keys, and the rows under the real ids were zeroed).
fn id(s: &Scalar<'_>, field: &str) -> Result<String, String> {
    s.id(field)?
        .ok_or_else(|| format!("field `{field}` is missing"))
}

fn to_spend(
    row: &Row<'_>,
    account: &Account,
    level: Level,
    counted: Counted<'_>,
    gaps: &mut Vec<String>,
) -> Result<Spend, String> {
    let start = text(&row.date_start, "date_start")?;
    let stop = text(&row.date_stop, "date_stop")?;
    if start != stop {
        return Err(format!(
            "fields `date_start`/`date_stop`: {start}..{stop} is not one day (time_increment=1 expected)"
        ));
    }
    let day = day(start, "date_start")?;
    if let Some(other) = row
        .account_id
        .id("account_id")?
        .filter(|a| *a != account.account_id)
    {
        return Err(format!(
            "field `account_id`: {other}, but the connector reads ad account act_{}: a row of another account (nothing of this page is stored)",
            account.account_id
        ));
    }
    // An ad account has one currency: a row in another is a contradiction,
    // not a figure to store in it beside the account's (QA36 A-L2).
    if let Some(c) = row.account_currency.as_deref().filter(|c| !c.is_empty()) {
        if !c.trim().eq_ignore_ascii_case(&account.currency) {
            return Err(format!(
                "field `account_currency`: {c:?}, but the ad account's currency is {}: an ad account has one currency (the answer contradicts itself; nothing of this page is stored)",
                account.currency
            ));
        }
    }
    let currency = account.currency.clone();
    let campaign_id = id(&row.campaign_id, "campaign_id")?;
    let (ad_group_id, ad_group_name) = match level {
        Level::Campaign => (None, None),
        _ => (
            Some(id(&row.adset_id, "adset_id")?),
            Some(row.adset_name.as_deref().unwrap_or_default().to_owned()),
        ),
    };
    let ad_id = match level {
        Level::Ad => Some(id(&row.ad_id, "ad_id")?),
        _ => None,
    };
    // A left-out `spend` is 0 (insights leave out fields without a
    // figure), but one sent as null, `""` or `"-"` is no amount Meta
    // documents: read as 0, it replaced the stored spend beside the clicks
    // (QA35d M1, found on TikTok; QA36 A-M2 for null).
    let amount = figure(&row.spend, "`spend`", AN_AMOUNT)?.unwrap_or(Decimal::ZERO);
    let (conversions, value) = if counted.action_type.is_empty() {
        (None, None)
    } else {
        let c = pick(&row.actions, counted, "actions", gaps)?;
        let v = pick(&row.action_values, counted, "action_values", gaps)?;
        (
            Some(c.normalize()),
            Some(Money::new(v.normalize(), currency.clone())),
        )
    };
    Ok(Spend {
        source: String::new(),
        account_id: account.account_id.clone(),
        day,
        timezone: account.timezone.clone(),
        campaign_id,
        campaign_name: row.campaign_name.as_deref().unwrap_or_default().to_owned(),
        ad_group_id,
        ad_group_name,
        ad_id,
        channel: Channel::Social,
        impressions: count(&row.impressions, "impressions")?,
        clicks: match counted.clicks {
            ClicksMetric::Clicks => count(&row.clicks, "clicks")?,
            ClicksMetric::InlineLinkClicks => count(&row.inline_link_clicks, "inline_link_clicks")?,
        },
        spend: Money::new(amount.normalize(), currency),
        platform_conversions: conversions,
        platform_conversion_value: value,
    })
}

/// Parses `GET /act_{id}?fields=account_id,name,currency,timezone_name`.
pub fn parse_account(body: &[u8], account_id: &str) -> Result<Account, String> {
    let v: Value = plugin_api::serde_json::from_slice(body)
        .map_err(|e| plugin_api::sdk::malformed_json(body, &e))?;
    // A field of another type is said as such, not as missing (QA36 A-L5).
    let text = |f: &str, example: &str| match v.get(f) {
        None | Some(Value::Null) => Err(format!("field `{f}` is missing")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(format!("field `{f}` is missing")),
        Some(Value::String(s)) => Ok(s.trim().to_owned()),
        Some(other) => Err(format!(
            "field `{f}` is {}: expected a string such as \"{example}\"",
            shape(other)
        )),
    };
    let currency = text("currency", "USD")?.to_ascii_uppercase();
    if plugin_api::currency::minor_unit_digits(&currency).is_none() {
        return Err(format!(
            "field `currency`: {currency:?} is not an ISO-4217 code"
        ));
    }
    Ok(Account {
        account_id: account_id.to_owned(),
        currency,
        timezone: text("timezone_name", "America/Los_Angeles")?,
    })
}
