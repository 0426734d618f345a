//! Parsing one insights page into canonical [`Spend`].
//!
//! A page is `{"data": [Row], "paging": {"cursors": {"before", "after"},
//! "next": "<url>"}}`. Every metric is a JSON string (`"impressions":
//! "91839"`, `"spend": "123.45"`); `actions` and `action_values` are lists of
//! `{action_type, value}` (plus one key per requested attribution window).
//! Exactly one configured action type is counted: purchase types overlap
//! (`purchase`, `omni_purchase`, `offsite_conversion.fb_pixel_purchase`) and
//! summing them would double-count.

use crate::config::{ClicksMetric, Level};
pub use plugin_api::lenient::Num;
use plugin_api::parse;
use plugin_api::rust_decimal::Decimal;
use plugin_api::{Channel, Money, Spend};
use serde::Deserialize;
use std::borrow::Cow;

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
    #[serde(borrow, default)]
    paging: Option<Paging<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct Paging<'a> {
    #[serde(borrow, default)]
    cursors: Option<Cursors<'a>>,
    #[serde(borrow, default)]
    next: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct Cursors<'a> {
    #[serde(borrow, default)]
    after: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct Row<'a> {
    #[serde(borrow, default)]
    date_start: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    date_stop: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    account_currency: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    campaign_id: Option<Num<'a>>,
    #[serde(borrow, default)]
    campaign_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    adset_id: Option<Num<'a>>,
    #[serde(borrow, default)]
    adset_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ad_id: Option<Num<'a>>,
    #[serde(borrow, default)]
    impressions: Option<Num<'a>>,
    #[serde(borrow, default)]
    clicks: Option<Num<'a>>,
    #[serde(borrow, default)]
    inline_link_clicks: Option<Num<'a>>,
    #[serde(borrow, default)]
    spend: Option<Num<'a>>,
    #[serde(borrow, default)]
    actions: Option<Vec<Action<'a>>>,
    #[serde(borrow, default)]
    action_values: Option<Vec<Action<'a>>>,
}

/// One entry of `actions` / `action_values`: `value` under the account's
/// (or the ad sets' unified) attribution, plus one key per requested
/// attribution window.
#[derive(Debug, Default, Deserialize)]
struct Action<'a> {
    #[serde(borrow, default)]
    action_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    value: Option<Num<'a>>,
    #[serde(borrow, default, rename = "1d_view")]
    view_1d: Option<Num<'a>>,
    #[serde(borrow, default, rename = "7d_view")]
    view_7d: Option<Num<'a>>,
    #[serde(borrow, default, rename = "28d_view")]
    view_28d: Option<Num<'a>>,
    #[serde(borrow, default, rename = "1d_click")]
    click_1d: Option<Num<'a>>,
    #[serde(borrow, default, rename = "7d_click")]
    click_7d: Option<Num<'a>>,
    #[serde(borrow, default, rename = "28d_click")]
    click_28d: Option<Num<'a>>,
    #[serde(borrow, default)]
    dda: Option<Num<'a>>,
    #[serde(borrow, default)]
    default: Option<Num<'a>>,
}

impl<'a> Action<'a> {
    /// The figure under `window` (one of [`crate::config::WINDOWS`]).
    fn window(&self, window: &str) -> &Option<Num<'a>> {
        match window {
            "1d_view" => &self.view_1d,
            "7d_view" => &self.view_7d,
            "28d_view" => &self.view_28d,
            "1d_click" => &self.click_1d,
            "7d_click" => &self.click_7d,
            "28d_click" => &self.click_28d,
            "dda" => &self.dda,
            _ => &self.default,
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
}

fn id_text(n: &Option<Num<'_>>) -> Option<String> {
    n.as_ref().map(|n| match n {
        Num::Str(s) => s.to_string(),
        other => other.text(),
    })
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
        let detail = plugin_api::serde_json::from_slice::<plugin_api::serde_json::Value>(body)
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
    for (i, row) in data.iter().enumerate() {
        let s = to_spend(row, account, level, counted).map_err(|e| {
            let ids = [
                ("campaign", id_text(&row.campaign_id)),
                ("adset", id_text(&row.adset_id)),
            ]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect::<Vec<_>>()
            .join(", ");
            format!("row {} ({ids}): {e}", i + 1)
        })?;
        spend.push(s);
    }
    let after = match page.paging {
        Some(p) if p.next.as_deref().is_some_and(|n| !n.is_empty()) => Some(
            p.cursors
                .and_then(|c| c.after)
                .filter(|a| !a.is_empty())
                .map(|a| a.into_owned())
                .ok_or("field `paging.cursors.after` is missing although `paging.next` is set")?,
        ),
        _ => None,
    };
    Ok(Parsed { spend, after })
}

fn shape_error(v: &plugin_api::serde_json::Value) -> Option<String> {
    use plugin_api::serde_json::Value;
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

fn count(n: &Option<Num<'_>>, field: &str) -> Result<u64, String> {
    match n {
        None => Ok(0),
        Some(n) => match n.decimal() {
            Ok(None) => Ok(0),
            Ok(Some(_)) => n.count().map_err(|e| format!("field `{field}`: {e}")),
            Err(e) => Err(format!("field `{field}`: {e}")),
        },
    }
}

fn pick(
    list: &Option<Vec<Action<'_>>>,
    counted: Counted<'_>,
    field: &str,
) -> Result<Decimal, String> {
    let Some(list) = list else {
        return Ok(Decimal::ZERO);
    };
    let action_type = counted.action_type;
    let Some(a) = list
        .iter()
        .find(|a| a.action_type.as_deref() == Some(action_type))
    else {
        return Ok(Decimal::ZERO);
    };
    let figure = |n: &Option<Num<'_>>, key: &str| -> Result<Decimal, String> {
        match n {
            None => Ok(Decimal::ZERO),
            Some(v) => Ok(v
                .decimal()
                .map_err(|e| format!("field `{field}` ({action_type}, `{key}`): {e}"))?
                .unwrap_or(Decimal::ZERO)),
        }
    };
    if counted.windows.is_empty() {
        return figure(&a.value, "value");
    }
    // Checked: each figure is read without a bound (the host bounds only
    // the finished record), so their sum may leave `Decimal`'s range (QA24).
    counted.windows.iter().try_fold(Decimal::ZERO, |sum, w| {
        sum.checked_add(figure(a.window(w), w)?).ok_or_else(|| {
            format!(
                "field `{field}` ({action_type}, `{w}`): the attribution windows' figures add up \
                 beyond the amount range (about ±7.9e28)"
            )
        })
    })
}

fn to_spend(
    row: &Row<'_>,
    account: &Account,
    level: Level,
    counted: Counted<'_>,
) -> Result<Spend, String> {
    let start = text(&row.date_start, "date_start")?;
    let stop = text(&row.date_stop, "date_stop")?;
    if start != stop {
        return Err(format!(
            "fields `date_start`/`date_stop`: {start}..{stop} is not one day (time_increment=1 expected)"
        ));
    }
    let day = parse::date(start).map_err(|e| format!("field `date_start`: {e}"))?;
    let currency = match row.account_currency.as_deref() {
        Some(c) if !c.is_empty() => c.to_ascii_uppercase(),
        _ => account.currency.clone(),
    };
    let campaign_id = id_text(&row.campaign_id).ok_or("field `campaign_id` is missing")?;
    let (ad_group_id, ad_group_name) = match level {
        Level::Campaign => (None, None),
        _ => (
            Some(id_text(&row.adset_id).ok_or("field `adset_id` is missing")?),
            Some(row.adset_name.as_deref().unwrap_or_default().to_owned()),
        ),
    };
    let ad_id = match level {
        Level::Ad => Some(id_text(&row.ad_id).ok_or("field `ad_id` is missing")?),
        _ => None,
    };
    // A left-out `spend` is 0 (insights leave out fields without a
    // figure), but one sent as `""` or `"-"` is no amount Meta documents:
    // read as 0, it replaced the stored spend beside the clicks (QA35d M1,
    // found on TikTok).
    let amount = match &row.spend {
        None => Decimal::ZERO,
        Some(n) => n
            .decimal()
            .map_err(|e| format!("field `spend`: {e}"))?
            .ok_or_else(|| {
                format!(
                    "field `spend`: {} is not an amount: expected a number such as \"12.34\"",
                    n.text()
                )
            })?,
    };
    let (conversions, value) = if counted.action_type.is_empty() {
        (None, None)
    } else {
        let c = pick(&row.actions, counted, "actions")?;
        let v = pick(&row.action_values, counted, "action_values")?;
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
    use plugin_api::serde_json::Value;
    let v: Value = plugin_api::serde_json::from_slice(body)
        .map_err(|e| plugin_api::sdk::malformed_json(body, &e))?;
    let text = |f: &str| {
        v.get(f)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("field `{f}` is missing"))
    };
    let currency = text("currency")?.to_ascii_uppercase();
    if plugin_api::currency::minor_unit_digits(&currency).is_none() {
        return Err(format!(
            "field `currency`: {currency:?} is not an ISO-4217 code"
        ));
    }
    Ok(Account {
        account_id: account_id.to_owned(),
        currency,
        timezone: text("timezone_name")?,
    })
}
