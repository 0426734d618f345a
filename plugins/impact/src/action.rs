//! One Impact `Action` (PascalCase JSON) into a canonical [`Conversion`], and
//! the paging envelope every list endpoint shares.
//!
//! Rows are read as `serde_json::Value` and converted field by field, so an
//! error names the field. Impact sends many numbers as strings (`"12.50"`,
//! `"28763"`), empty strings for absent dates, and timestamps with any UTC
//! offset; all of that is accepted here. Money is exact: amounts are parsed
//! from their literal text into decimals, never through a float.

use plugin_api::currency;
use plugin_api::parse;
use plugin_api::serde_json::{Map, Value};
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};

/// The `@`-envelope of a list page; every field arrives as a string.
#[derive(Debug)]
pub struct Envelope {
    /// `@page` (1-based).
    pub page: u64,
    /// `@numpages`.
    pub num_pages: u64,
    /// `@nextpageuri`, relative (`/Advertisers/...`), `None` on the last page.
    pub next: Option<String>,
}

impl Envelope {
    /// Reads the envelope of `body`; `what` names the page in errors.
    pub fn read(body: &Map<String, Value>) -> Result<Envelope, String> {
        let num = |k: &str| -> Result<u64, String> {
            match body.get(k) {
                None => Ok(0),
                Some(v) => parse::count(v)
                    .map(Option::unwrap_or_default)
                    .map_err(|e| format!("envelope field `{k}`: {e}")),
            }
        };
        let page = num("@page")?;
        let num_pages = num("@numpages")?;
        let next = body
            .get("@nextpageuri")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        // Stop when the link is empty or this is the last page.
        let next = if num_pages > 0 && page >= num_pages {
            None
        } else {
            next
        };
        Ok(Envelope {
            page,
            num_pages,
            next,
        })
    }
}

/// Parses a list page: its envelope and the rows under `key` (`Actions`,
/// `ActionUpdates`).
pub fn page<'a>(body: &'a Value, key: &str) -> Result<(Envelope, &'a [Value]), String> {
    let obj = body
        .as_object()
        .ok_or_else(|| "the page is not a JSON object".to_owned())?;
    let env = Envelope::read(obj)?;
    let rows = match obj.get(key) {
        Some(Value::Array(a)) => a.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err(format!("field `{key}` is not an array")),
    };
    Ok((env, rows))
}

/// A string field, or a number rendered as text; `None` when absent or empty.
pub fn opt_text(row: &Value, field: &str) -> Option<String> {
    match row.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text(row: &Value, field: &str) -> Result<String, String> {
    opt_text(row, field).ok_or_else(|| format!("field `{field}` is missing or empty"))
}

fn opt_time(
    row: &Value,
    field: &str,
) -> Result<Option<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>>, String> {
    match row.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => parse::timestamp(s)
            .map(Some)
            .map_err(|e| format!("field `{field}`: {e}")),
        Some(other) => Err(format!(
            "field `{field}`: expected a timestamp, got {other}"
        )),
    }
}

fn money(row: &Value, field: &str, currency: Option<&str>) -> Result<Option<Money>, String> {
    let v = row.get(field).unwrap_or(&Value::Null);
    let amount = parse::decimal(v).map_err(|e| format!("field `{field}`: {e}"))?;
    match (amount, currency) {
        (None, _) => Ok(None),
        (Some(a), Some(c)) => Ok(Some(Money::new(a, c))),
        (Some(_), None) => Err(format!(
            "field `{field}` has an amount but field `Currency` is missing"
        )),
    }
}

/// Maps Impact's event type names to the canonical ones.
pub fn event_type(name: &str) -> EventType {
    let n = name.to_ascii_lowercase();
    if n.contains("sale") || n.contains("purchase") || n.contains("order") {
        EventType::Sale
    } else if n.contains("lead") {
        EventType::Lead
    } else if n.contains("sign") || n.contains("regist") || n.contains("trial") {
        EventType::Signup
    } else if n.contains("install") {
        EventType::Install
    } else {
        EventType::Other
    }
}

/// Maps `State`.
pub fn status(state: &str) -> Result<ConversionStatus, String> {
    match state.trim().to_ascii_uppercase().as_str() {
        "PENDING" => Ok(ConversionStatus::Pending),
        "APPROVED" => Ok(ConversionStatus::Approved),
        "REVERSED" => Ok(ConversionStatus::Reversed),
        other => Err(format!(
            "field `State`: unknown value {other:?} (expected PENDING, APPROVED or REVERSED)"
        )),
    }
}

/// The id of a row for error messages (`?` when it has none).
pub fn row_id(row: &Value) -> String {
    opt_text(row, "Id").unwrap_or_else(|| "?".into())
}

/// Converts one Action; the error names the field.
pub fn to_conversion(row: &Value) -> Result<Record, String> {
    if !row.is_object() {
        return Err("the action is not a JSON object".into());
    }
    let currency = match opt_text(row, "Currency") {
        None => None,
        Some(c) => {
            let c = c.to_ascii_uppercase();
            if !currency::is_known(&c) {
                return Err(format!("field `Currency`: {c:?} is not an ISO-4217 code"));
            }
            Some(c)
        }
    };
    let tracker = opt_text(row, "EventCode")
        .or_else(|| opt_text(row, "ActionTrackerName"))
        .unwrap_or_default();
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: text(row, "Id")?,
        order_id: opt_text(row, "Oid"),
        click_id: None,
        clicked_at: opt_time(row, "ReferringDate")?,
        partner_id: text(row, "MediaPartnerId")?,
        partner_name: opt_text(row, "MediaPartnerName"),
        campaign_id: opt_text(row, "CampaignId"),
        event_type: event_type(&tracker),
        occurred_at: opt_time(row, "EventDate")?.ok_or("field `EventDate` is missing")?,
        sale_amount: money(row, "Amount", currency.as_deref())?,
        commission: money(row, "Payout", currency.as_deref())?,
        status: status(&text(row, "State")?)?,
        status_changed_at: None,
        locked_at: opt_time(row, "LockingDate")?,
        coupon: opt_text(row, "PromoCode"),
        utm: Utm::default(),
    }))
}

/// Parses a whole `/Actions` page body into records (used by the stream and
/// the parse benchmark). The error names the record and field.
pub fn parse_actions_page(body: &[u8]) -> Result<(Envelope, Vec<Record>), String> {
    let v: Value =
        plugin_api::serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let (env, rows) = page(&v, "Actions")?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        out.push(to_conversion(row).map_err(|e| format!("record {i} (Id {}): {e}", row_id(row)))?);
    }
    Ok((env, out))
}
