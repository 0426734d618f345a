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
//! rejection, rejected when `is_scrub` is true (scrubbed at tracking time,
//! never accepted).

use plugin_api::currency;
use plugin_api::parse;
use plugin_api::serde_json::Value;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};

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
    /// True when rows lie beyond this page.
    pub fn has_more(&self) -> bool {
        self.page.saturating_mul(self.page_size) < self.total_count
    }
}

/// A string field or a number as text; `None` when absent or empty.
pub fn opt_text(row: &Value, field: &str) -> Option<String> {
    match row.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn epoch(
    row: &Value,
    field: &str,
) -> Result<Option<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>>, String> {
    match parse::integer(row.get(field).unwrap_or(&Value::Null))
        .map_err(|e| format!("field `{field}`: {e}"))?
    {
        None | Some(0) => Ok(None),
        Some(s) => parse::epoch_seconds(s)
            .map(Some)
            .map_err(|e| format!("field `{field}`: {e}")),
    }
}

fn amount(row: &Value, field: &str) -> Result<Option<plugin_api::rust_decimal::Decimal>, String> {
    parse::decimal(row.get(field).unwrap_or(&Value::Null))
        .map_err(|e| format!("field `{field}`: {e}"))
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

/// The id of a row for error messages.
pub fn row_id(row: &Value) -> String {
    opt_text(row, "conversion_id").unwrap_or_else(|| "?".into())
}

/// Converts one row; the error names the field.
pub fn to_conversion(row: &Value) -> Result<Record, String> {
    if !row.is_object() {
        return Err("the conversion is not a JSON object".into());
    }
    let rel = row.get("relationship").unwrap_or(&Value::Null);
    let affiliate = rel.get("affiliate").unwrap_or(&Value::Null);
    let offer = rel.get("offer").unwrap_or(&Value::Null);
    let partner_id = opt_text(affiliate, "network_affiliate_id")
        .or_else(|| opt_text(row, "network_affiliate_id"))
        .ok_or("field `relationship.affiliate.network_affiliate_id` is missing")?;
    let payout = amount(row, "payout")?;
    let sale = amount(row, "sale_amount")?.filter(|a| !a.is_zero());
    let currency = match opt_text(row, "currency_id") {
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
    let money = |a: Option<plugin_api::rust_decimal::Decimal>| {
        a.zip(currency.as_deref()).map(|(a, c)| Money::new(a, c))
    };
    let is_event = row
        .get("is_event")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let is_scrub = row
        .get("is_scrub")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let params = row.get("query_parameters").unwrap_or(&Value::Null);
    let utm = |k: &str| opt_text(params, k);
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: opt_text(row, "conversion_id").ok_or("field `conversion_id` is missing")?,
        order_id: opt_text(row, "order_id"),
        click_id: opt_text(row, "transaction_id"),
        clicked_at: epoch(row, "click_unix_timestamp")?,
        partner_id,
        partner_name: opt_text(affiliate, "name"),
        campaign_id: opt_text(offer, "network_offer_id")
            .or_else(|| opt_text(row, "network_offer_id")),
        event_type: if is_event {
            EventType::Other
        } else {
            EventType::Sale
        },
        occurred_at: epoch(row, "conversion_unix_timestamp")?
            .ok_or("field `conversion_unix_timestamp` is missing")?,
        sale_amount: money(sale),
        commission: money(payout),
        status: status(
            &opt_text(row, "status").ok_or("field `status` is missing")?,
            is_scrub,
        )?,
        status_changed_at: None,
        locked_at: None,
        coupon: opt_text(row, "coupon_code"),
        utm: Utm {
            source: utm("utm_source"),
            medium: utm("utm_medium"),
            campaign: utm("utm_campaign"),
            content: utm("utm_content"),
            term: utm("utm_term"),
        },
    }))
}

/// Parses a whole page body (used by the stream and the parse benchmark);
/// the error names the record and field.
pub fn parse_page(body: &[u8]) -> Result<(Page, Vec<Record>), String> {
    let v: Value =
        plugin_api::serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let paging = v.get("paging").ok_or("field `paging` is missing")?;
    let num = |k: &str| -> Result<u64, String> {
        parse::count(paging.get(k).unwrap_or(&Value::Null))
            .map_err(|e| format!("field `paging.{k}`: {e}"))?
            .ok_or_else(|| format!("field `paging.{k}` is missing"))
    };
    let page = Page {
        page: num("page")?,
        page_size: num("page_size")?,
        total_count: num("total_count")?,
    };
    let rows = match v.get("conversions") {
        Some(Value::Array(a)) => a.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err("field `conversions` is not an array".into()),
    };
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        out.push(
            to_conversion(row)
                .map_err(|e| format!("record {i} (conversion_id {}): {e}", row_id(row)))?,
        );
    }
    Ok((page, out))
}
