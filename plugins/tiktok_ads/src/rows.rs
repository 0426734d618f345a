//! Parsing one `report/integrated/get/` page into canonical [`Spend`].
//!
//! The body is `{"code": 0, "message": "OK", "request_id", "data":
//! {"page_info": {"page", "page_size", "total_number", "total_page"},
//! "list": [{"dimensions": {"adgroup_id", "stat_time_day": "2026-11-01
//! 00:00:00"}, "metrics": {"spend": "12.50", ...}}]}}`. Every metric is a
//! string and a missing one is `"-"`: stored as missing (`None`) in the
//! record's optional fields (conversions, value), as 0 in the others. A non-zero `code` is an error even
//! with HTTP 200 (see [`crate::api`]).
//!
//! What the reference does not document is an error naming the row and
//! field, never a 0 (QA35d H2, M1): a `data` without `list` (the host would
//! read it as "no rows" and zero the stored spend of the days), and a metric
//! that was asked for but is left out, null, `""` or not a number. Only
//! `"-"` is TikTok's "no figure".

use crate::config::Level;
pub use plugin_api::lenient::Num;
use plugin_api::parse;
use plugin_api::rust_decimal::Decimal;
use plugin_api::{Channel, Money, Spend};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The advertiser facts every row needs, from `advertiser/info/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Advertiser id.
    pub advertiser_id: String,
    /// `currency`, e.g. `USD`.
    pub currency: String,
    /// `timezone`, an IANA name such as `Asia/Tokyo`.
    pub timezone: String,
}

/// A JSON object kept as its pairs, in order (cheaper than a map for the
/// handful of keys a row has).
#[derive(Debug, Default)]
pub struct Pairs<'a>(pub Vec<(Num<'a>, Option<Num<'a>>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings or numbers")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Pairs<'a>, M::Error> {
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some((k, x)) = m.next_entry::<Num<'a>, Option<Num<'a>>>()? {
                    v.push((k, x));
                }
                Ok(Pairs(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl Pairs<'_> {
    /// The key's value, `Some(None)` when it is null.
    fn entry(&self, key: &str) -> Option<&Option<Num<'_>>> {
        self.0
            .iter()
            .find(|(k, _)| matches!(k, Num::Str(s) if s == key))
            .map(|(_, v)| v)
    }

    fn get(&self, key: &str) -> Option<&Num<'_>> {
        self.entry(key).and_then(Option::as_ref)
    }
}

#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
}

#[derive(Debug, Deserialize)]
struct Data<'a> {
    #[serde(default)]
    page_info: Option<PageInfo>,
    /// Required: a `data` without it is a changed answer, not a page
    /// without rows (QA35d H2).
    #[serde(borrow, default)]
    list: Option<Vec<Row<'a>>>,
}

#[derive(Debug, Deserialize)]
struct PageInfo {
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    total_number: Option<u64>,
    #[serde(default)]
    total_page: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Row<'a> {
    #[serde(borrow, default)]
    dimensions: Pairs<'a>,
    #[serde(borrow, default)]
    metrics: Pairs<'a>,
}

/// What a page parsed to.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The page's records.
    pub spend: Vec<Spend>,
    /// `page_info.total_page` (0 for an empty report).
    pub total_pages: u64,
    /// `page_info.page`, the page the answer is for, when sent.
    pub page: Option<u64>,
    /// `page_info.total_number`, the report's rows on all pages, when sent.
    pub total_number: Option<u64>,
}

/// Which metrics to read for conversions and value.
#[derive(Debug, Clone, Copy)]
pub struct Metrics<'s> {
    /// Row granularity.
    pub level: Level,
    /// Metric counted as conversions (empty: none).
    pub conversions: &'s str,
    /// Metric counted as conversion value (empty: none).
    pub value: &'s str,
}

fn text(n: Option<&Num<'_>>) -> Option<String> {
    n.map(|n| match n {
        Num::Str(s) => s.to_string(),
        other => other.text(),
    })
    .filter(|s| !s.is_empty() && s != "-")
}

/// Parses one report page. Errors name the row, its ids and the field.
pub fn parse_page(body: &[u8], account: &Account, m: Metrics<'_>) -> Result<Parsed, String> {
    let env: Envelope<'_> = plugin_api::serde_json::from_slice(body).map_err(|e| {
        let detail = plugin_api::serde_json::from_slice::<plugin_api::serde_json::Value>(body)
            .ok()
            .and_then(|v| shape_error(&v));
        match detail {
            Some(d) => format!("{d}: {e}"),
            None => plugin_api::sdk::malformed_json(body, &e),
        }
    })?;
    let data = env.data.ok_or("field `data` is missing")?;
    let total_pages = data
        .page_info
        .as_ref()
        .and_then(|p| p.total_page)
        .ok_or("field `data.page_info.total_page` is missing")?;
    let page = data.page_info.as_ref().and_then(|p| p.page);
    let total_number = data.page_info.as_ref().and_then(|p| p.total_number);
    let Some(list) = &data.list else {
        return Err(missing_list(body, total_number));
    };
    let mut spend = Vec::with_capacity(list.len());
    for (i, row) in list.iter().enumerate() {
        let s = to_spend(row, account, m).map_err(|e| {
            let ids = [
                (
                    "campaign",
                    text(
                        row.dimensions
                            .get("campaign_id")
                            .or(row.metrics.get("campaign_id")),
                    ),
                ),
                (
                    "ad group",
                    text(
                        row.dimensions
                            .get("adgroup_id")
                            .or(row.metrics.get("adgroup_id")),
                    ),
                ),
            ]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect::<Vec<_>>()
            .join(", ");
            format!("row {} ({ids}): {e}", i + 1)
        })?;
        spend.push(s);
    }
    Ok(Parsed {
        spend,
        total_pages,
        page,
        total_number,
    })
}

/// The error for a `data` without `list`, naming the keys it has instead.
fn missing_list(body: &[u8], total_number: Option<u64>) -> String {
    use plugin_api::serde_json::Value;
    let keys = plugin_api::serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("data")?.as_object().map(|o| {
                o.keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        })
        .unwrap_or_default();
    let total = total_number
        .map(|n| format!(", and data.page_info.total_number is {n}"))
        .unwrap_or_default();
    format!(
        "field `data.list` is missing (`data` has {keys}{total}): TikTok sends the report's rows in `data.list` (the answer's shape changed; nothing of this page is stored)"
    )
}

fn shape_error(v: &plugin_api::serde_json::Value) -> Option<String> {
    use plugin_api::serde_json::Value;
    let list = v.pointer("/data/list")?;
    let Some(rows) = list.as_array() else {
        return Some("field `data.list` is not a list".into());
    };
    for (i, row) in rows.iter().enumerate() {
        for part in ["dimensions", "metrics"] {
            match row.get(part) {
                Some(Value::Object(o)) => {
                    for (k, x) in o {
                        if matches!(x, Value::Array(_) | Value::Object(_)) {
                            return Some(format!(
                                "row {}: field `{part}.{k}` is not a value",
                                i + 1
                            ));
                        }
                    }
                }
                Some(_) => return Some(format!("row {}: field `{part}` is not an object", i + 1)),
                None => {}
            }
        }
    }
    None
}

/// A metric that was asked for, as TikTok's reference has it: a string
/// number, or `"-"` for no figure (`None`). Left out, null, `""` or any
/// other text is not an answer the reference knows, and would otherwise
/// be stored as 0 or unknown in place of a real figure (QA35d M1: `""`
/// stored spend 0 beside the clicks).
fn metric(row: &Row<'_>, field: &str) -> Result<Option<Decimal>, String> {
    let n = match row.metrics.entry(field) {
        None => {
            return Err(format!(
                "field `metrics.{field}` is missing: it was asked for (TikTok sends \"-\" for no figure)"
            ))
        }
        Some(None) => {
            return Err(format!(
                "field `metrics.{field}` is null: expected a number, or \"-\" for no figure"
            ))
        }
        Some(Some(n)) => n,
    };
    if let Num::Str(s) = n {
        match s.trim() {
            "-" => return Ok(None),
            "" => {
                return Err(format!(
                    "field `metrics.{field}` is an empty string: expected a number, or \"-\" for no figure"
                ))
            }
            _ => {}
        }
    }
    match n.decimal() {
        Ok(Some(d)) => Ok(Some(d)),
        Ok(None) => Err(format!(
            "field `metrics.{field}`: {} is not a number, nor TikTok's \"-\" for no figure",
            n.text()
        )),
        Err(e) => Err(format!("field `metrics.{field}`: {e}")),
    }
}

/// A count metric: `"-"` is 0 (every record has it).
fn count(row: &Row<'_>, field: &str) -> Result<u64, String> {
    match (metric(row, field)?, row.metrics.get(field)) {
        (Some(_), Some(n)) => n
            .count()
            .map_err(|e| format!("field `metrics.{field}`: {e}")),
        _ => Ok(0),
    }
}

/// An id: `"101"`, `101` and `101.0` are one id ([`Num::id`]; QA37 R-L4:
/// a float id had split a spend row in two); missing, `""` or `"-"` is an
/// error.
fn id(row: &Row<'_>, field: &str) -> Result<String, String> {
    row.dimensions
        .get(field)
        .or(row.metrics.get(field))
        .map(|n| n.id(field))
        .transpose()?
        .flatten()
        .filter(|id| id != "-")
        .ok_or_else(|| format!("field `{field}` is missing"))
}

fn name(row: &Row<'_>, field: &str) -> String {
    text(row.metrics.get(field).or(row.dimensions.get(field))).unwrap_or_default()
}

fn to_spend(row: &Row<'_>, account: &Account, m: Metrics<'_>) -> Result<Spend, String> {
    let day_text = match row.dimensions.get("stat_time_day") {
        Some(Num::Str(s)) => s.to_string(),
        _ => return Err("field `dimensions.stat_time_day` is missing".into()),
    };
    let day =
        parse::date(&day_text).map_err(|e| format!("field `dimensions.stat_time_day`: {e}"))?;
    let campaign_id = id(row, "campaign_id")?;
    let (ad_group_id, ad_group_name) = match m.level {
        Level::Campaign => (None, None),
        _ => (
            Some(id(row, "adgroup_id")?),
            Some(name(row, "adgroup_name")),
        ),
    };
    let ad_id = match m.level {
        Level::Ad => Some(id(row, "ad_id")?),
        _ => None,
    };
    let amount = metric(row, "spend")?.unwrap_or(Decimal::ZERO);
    // The optional fields stay missing when TikTok has no figure (`"-"`):
    // unknown is not zero. Spend, impressions and clicks are not optional
    // in `Spend`, so `"-"` there is 0 (documented).
    let conversions = if m.conversions.is_empty() {
        None
    } else {
        metric(row, m.conversions)?.map(|c| c.normalize())
    };
    let value = if m.value.is_empty() {
        None
    } else {
        metric(row, m.value)?.map(|v| Money::new(v.normalize(), account.currency.clone()))
    };
    Ok(Spend {
        source: String::new(),
        account_id: account.advertiser_id.clone(),
        day,
        timezone: account.timezone.clone(),
        campaign_id,
        campaign_name: name(row, "campaign_name"),
        ad_group_id,
        ad_group_name,
        ad_id,
        channel: Channel::Social,
        impressions: count(row, "impressions")?,
        clicks: count(row, "clicks")?,
        spend: Money::new(amount.normalize(), account.currency.clone()),
        platform_conversions: conversions,
        platform_conversion_value: value,
    })
}

/// Parses the `advertiser/info/` answer for one advertiser.
pub fn parse_advertiser(body: &[u8], advertiser_id: &str) -> Result<Account, String> {
    use plugin_api::serde_json::Value;
    let v: Value = plugin_api::serde_json::from_slice(body)
        .map_err(|e| plugin_api::sdk::malformed_json(body, &e))?;
    let item = v
        .pointer("/data/list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| {
            a.get("advertiser_id")
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string())
                })
                .as_deref()
                == Some(advertiser_id)
        })
        .ok_or_else(|| format!("advertiser {advertiser_id} is not in `data.list`"))?;
    let text = |f: &str| {
        item.get(f)
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
        advertiser_id: advertiser_id.to_owned(),
        currency,
        timezone: text("timezone")?,
    })
}
