//! One Everflow network raw conversion into a canonical [`Conversion`].
//!
//! Rows are read as `serde_json::Value` and converted field by field so an
//! error names the field. Money arrives as JSON numbers and is parsed from
//! its literal text (never through a float); timestamps are epoch seconds.
//! Amounts are in the offer's currency (`currency_id`): the raw report does
//! no conversion.
//!
//! Status mapping: `approved` → approved, `pending` → pending, `invalid` →
//! rejected (never accepted), `rejected` → reversed when it was a manual
//! rejection, rejected when `is_scrub` is set (scrubbed at tracking time,
//! never accepted).
//!
//! Flags: the reference gives `is_event` and `is_scrub` no type, so each is
//! read as `true`/`false`, `1`/`0` or those as strings
//! ([`Scalar::flag`]); any other value fails the row, never read as
//! `false`. A row is an event (a purchase after a lead, an upsell:
//! [`EventType::Other`]) or the base conversion ([`EventType::Sale`]) by
//! `event`, documented as `"Base"` for the base conversion and the event's
//! name otherwise, and by `is_event`; when both are sent they must agree
//! (see [`is_event`]).

use plugin_api::currency;
use plugin_api::lenient::Scalar;
use plugin_api::parse;
use plugin_api::rust_decimal::Decimal;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use serde::Deserialize;

/// A page of `/networks/reporting/conversions`.
#[derive(Debug)]
pub struct Page {
    /// 1-based page number echoed back.
    pub page: u64,
    /// Page size echoed back.
    pub page_size: u64,
    /// Rows matching the query.
    pub total_count: u64,
}

impl Page {
    /// True when rows lie beyond page `requested`: the page the plugin asked
    /// for, never the one echoed back (an echo stuck at 1 paged without end:
    /// QA25 N4).
    pub fn has_more_after(&self, requested: u64) -> bool {
        requested.saturating_mul(self.page_size) < self.total_count
    }
}

#[derive(Debug, Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    conversions: Option<Vec<Row<'a>>>,
    #[serde(borrow)]
    paging: Option<Paging<'a>>,
}

#[derive(Debug, Deserialize)]
struct Paging<'a> {
    #[serde(borrow, default)]
    page: Scalar<'a>,
    #[serde(borrow, default)]
    page_size: Scalar<'a>,
    #[serde(borrow, default)]
    total_count: Scalar<'a>,
}

/// One raw conversion; fields not read here are skipped unparsed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Row<'a> {
    #[serde(borrow)]
    conversion_id: Scalar<'a>,
    #[serde(borrow)]
    conversion_unix_timestamp: Scalar<'a>,
    #[serde(borrow)]
    click_unix_timestamp: Scalar<'a>,
    #[serde(borrow)]
    transaction_id: Scalar<'a>,
    #[serde(borrow)]
    status: Scalar<'a>,
    #[serde(borrow)]
    payout: Scalar<'a>,
    #[serde(borrow)]
    sale_amount: Scalar<'a>,
    #[serde(borrow)]
    currency_id: Scalar<'a>,
    #[serde(borrow)]
    order_id: Scalar<'a>,
    #[serde(borrow)]
    coupon_code: Scalar<'a>,
    #[serde(borrow)]
    event: Scalar<'a>,
    #[serde(borrow)]
    is_event: Scalar<'a>,
    #[serde(borrow)]
    is_scrub: Scalar<'a>,
    #[serde(borrow)]
    network_affiliate_id: Scalar<'a>,
    #[serde(borrow)]
    network_offer_id: Scalar<'a>,
    #[serde(borrow)]
    query_parameters: Option<Utms<'a>>,
    #[serde(borrow)]
    relationship: Option<Relationship<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Utms<'a> {
    #[serde(borrow)]
    utm_source: Scalar<'a>,
    #[serde(borrow)]
    utm_medium: Scalar<'a>,
    #[serde(borrow)]
    utm_campaign: Scalar<'a>,
    #[serde(borrow)]
    utm_content: Scalar<'a>,
    #[serde(borrow)]
    utm_term: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Relationship<'a> {
    #[serde(borrow)]
    affiliate: Option<Party<'a>>,
    #[serde(borrow)]
    offer: Option<Party<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Party<'a> {
    #[serde(borrow)]
    network_affiliate_id: Scalar<'a>,
    #[serde(borrow)]
    network_offer_id: Scalar<'a>,
    #[serde(borrow)]
    name: Scalar<'a>,
}

fn epoch(
    v: &Scalar<'_>,
    field: &str,
) -> Result<Option<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>>, String> {
    match v.integer(field)? {
        None | Some(0) => Ok(None),
        Some(s) => parse::epoch_seconds(s)
            .map(Some)
            .map_err(|e| format!("field `{field}`: {e}")),
    }
}

/// Maps `status` (and `is_scrub`).
pub fn status(status: &str, is_scrub: bool) -> Result<ConversionStatus, String> {
    match status.trim().to_ascii_lowercase().as_str() {
        "approved" => Ok(ConversionStatus::Approved),
        "pending" => Ok(ConversionStatus::Pending),
        "invalid" => Ok(ConversionStatus::Rejected),
        "rejected" if is_scrub => Ok(ConversionStatus::Rejected),
        "rejected" => Ok(ConversionStatus::Reversed),
        other => Err(format!(
            "field `status`: unknown value {other:?} (expected approved, pending, rejected or invalid)"
        )),
    }
}

/// Whether a row is an event rather than the base conversion, from `event`
/// (`"Base"` for the base conversion, any other name an event) and the
/// `is_event` flag. Either alone decides; neither means a base conversion
/// (the raw report's default row); a disagreement is an error naming both
/// fields rather than a guess (an event read as a sale doubles the order's
/// claims, a sale read as an event loses its sale type).
pub fn is_event(event: Option<&str>, is_event: Option<bool>) -> Result<bool, String> {
    let by_name = event.map(|e| !e.trim().eq_ignore_ascii_case("base"));
    match (by_name, is_event) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "fields `event` ({:?}) and `is_event` ({b}) disagree on whether the row is an event",
            event.unwrap_or_default()
        )),
        (Some(a), _) => Ok(a),
        (None, Some(b)) => Ok(b),
        (None, None) => Ok(false),
    }
}

/// Converts one row; the error names the field.
fn to_conversion(row: &Row<'_>) -> Result<Record, String> {
    let rel = row.relationship.as_ref();
    let affiliate = rel.and_then(|r| r.affiliate.as_ref());
    let offer = rel.and_then(|r| r.offer.as_ref());
    let partner_id = affiliate
        .and_then(|a| a.network_affiliate_id.string())
        .or_else(|| row.network_affiliate_id.string())
        .ok_or("field `relationship.affiliate.network_affiliate_id` is missing")?;
    let payout = row.payout.decimal("payout")?;
    let sale = row
        .sale_amount
        .decimal("sale_amount")?
        .filter(|a| !a.is_zero());
    let currency = match row.currency_id.text() {
        Some(c) => {
            let c = c.to_ascii_uppercase();
            if !currency::is_known(&c) {
                return Err(format!(
                    "field `currency_id`: {c:?} is not an ISO-4217 code"
                ));
            }
            Some(c)
        }
        None if payout.is_some() || sale.is_some() => {
            return Err("field `currency_id` is missing but the row has amounts".into())
        }
        None => None,
    };
    let money = |a: Option<Decimal>| a.zip(currency.as_deref()).map(|(a, c)| Money::new(a, c));
    let utm = row.query_parameters.as_ref();
    let u = |f: for<'r> fn(&'r Utms<'r>) -> &'r Scalar<'r>| utm.and_then(|q| f(q).string());
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: row
            .conversion_id
            .string()
            .ok_or("field `conversion_id` is missing")?,
        order_id: row.order_id.string(),
        click_id: row.transaction_id.string(),
        clicked_at: epoch(&row.click_unix_timestamp, "click_unix_timestamp")?,
        partner_id,
        partner_name: affiliate.and_then(|a| a.name.string()),
        campaign_id: offer
            .and_then(|o| o.network_offer_id.string())
            .or_else(|| row.network_offer_id.string()),
        event_type: if is_event(row.event.text().as_deref(), row.is_event.flag("is_event")?)? {
            EventType::Other
        } else {
            EventType::Sale
        },
        occurred_at: epoch(&row.conversion_unix_timestamp, "conversion_unix_timestamp")?
            .ok_or("field `conversion_unix_timestamp` is missing")?,
        sale_amount: money(sale),
        commission: money(payout),
        status: status(
            &row.status.text().ok_or("field `status` is missing")?,
            row.is_scrub.flag("is_scrub")?.unwrap_or(false),
        )?,
        status_changed_at: None,
        locked_at: None,
        coupon: row.coupon_code.string(),
        utm: Utm {
            source: u(|q| &q.utm_source),
            medium: u(|q| &q.utm_medium),
            campaign: u(|q| &q.utm_campaign),
            content: u(|q| &q.utm_content),
            term: u(|q| &q.utm_term),
        },
    }))
}

/// Which record of a page serde could not read, for the error message.
fn locate(body: &[u8], e: &plugin_api::serde_json::Error) -> String {
    use plugin_api::serde_json::Value;
    let Ok(v) = plugin_api::serde_json::from_slice::<Value>(body) else {
        return plugin_api::sdk::malformed_json(body, e);
    };
    if let Some(rows) = v.get("conversions").and_then(Value::as_array) {
        for (i, r) in rows.iter().enumerate() {
            // Scalar fields need the row's text (see `lenient::record_error`).
            let text = r.to_string();
            if let Some(re) = plugin_api::lenient::record_error::<Row>(&text) {
                let id = r
                    .get("conversion_id")
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "?".into());
                return format!("record {n} (conversion_id {id}): {re}", n = i + 1);
            }
        }
    }
    format!("unexpected page shape: {e}")
}

/// Parses a whole page body (used by the stream and the parse benchmark);
/// the error names the record and field.
pub fn parse_page(body: &[u8]) -> Result<(Page, Vec<Record>), String> {
    let parsed: Body<'_> =
        plugin_api::serde_json::from_slice(body).map_err(|e| locate(body, &e))?;
    let paging = parsed.paging.ok_or("field `paging` is missing")?;
    let num = |v: &Scalar<'_>, k: &str| -> Result<u64, String> {
        v.integer(&format!("paging.{k}"))?
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| format!("field `paging.{k}` is missing or negative"))
    };
    let page = Page {
        page: num(&paging.page, "page")?,
        page_size: num(&paging.page_size, "page_size")?,
        total_count: num(&paging.total_count, "total_count")?,
    };
    let rows = parsed.conversions.unwrap_or_default();
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        out.push(to_conversion(row).map_err(|e| {
            let id = row.conversion_id.string().unwrap_or_else(|| "?".into());
            format!("record {n} (conversion_id {id}): {e}", n = i + 1)
        })?);
    }
    Ok((page, out))
}
