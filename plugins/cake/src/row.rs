//! One CAKE `event_conversion` (JSON, inside `{"d": ...}`) into a canonical
//! [`Conversion`], plus CAKE's envelope, dates and currency ids.
//!
//! - Dates are ASP.NET `"/Date(1425337200000)/"` strings (epoch
//!   milliseconds, optionally followed by an offset such as `-0500`, which
//!   does not change the instant).
//! - Money is `paid{currency_id, amount}` (what the affiliate earns: the
//!   commission) and `received{currency_id, amount}` (what the network is
//!   paid: revenue). `currency_id` is CAKE's numeric id, mapped to ISO-4217
//!   through the `Currencies` lookup.
//! - Status comes from `current_disposition.disposition_type
//!   .disposition_type_name`: approved → approved, pending → pending,
//!   rejected → rejected, returned → reversed; no disposition → the
//!   configured `no_disposition_status`.
//! - Ids: `event_conversion_id` is the key, `transaction_id` (the
//!   advertiser's `#tid#`) the order id, `click_request_session_id` (CAKE's
//!   request session, `#reqid#`) the click id.

use plugin_api::parse;
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::Value;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use std::collections::BTreeMap;

/// CAKE currency id → ISO-4217 code.
pub type Currencies = BTreeMap<i64, String>;

/// A string field or a number as text; `None` when absent or empty.
pub fn opt_text(row: &Value, field: &str) -> Option<String> {
    match row.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses `/Date(ms)/` or `/Date(ms+hhmm)/` to UTC.
pub fn aspnet_date(
    s: &str,
) -> Result<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>, String> {
    let inner = s
        .trim()
        .strip_prefix("/Date(")
        .and_then(|r| r.strip_suffix(")/"))
        .ok_or_else(|| format!("{s:?} is not a /Date(ms)/ date"))?;
    let (sign, digits) = match inner.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, inner),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let ms: i64 = digits[..end]
        .parse()
        .map_err(|_| format!("{s:?} is not a /Date(ms)/ date"))?;
    parse::epoch_millis(sign * ms)
}

fn opt_date(
    row: &Value,
    field: &str,
) -> Result<Option<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>>, String> {
    match row.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => aspnet_date(s)
            .map(Some)
            .map_err(|e| format!("field `{field}`: {e}")),
        Some(other) => Err(format!(
            "field `{field}`: expected a /Date(ms)/ string, got {other}"
        )),
    }
}

fn money(row: &Value, field: &str, currencies: &Currencies) -> Result<Option<Money>, String> {
    let Some(obj) = row.get(field).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(amount) = parse::decimal(obj.get("amount").unwrap_or(&Value::Null))
        .map_err(|e| format!("field `{field}.amount`: {e}"))?
    else {
        return Ok(None);
    };
    let id = parse::integer(obj.get("currency_id").unwrap_or(&Value::Null))
        .map_err(|e| format!("field `{field}.currency_id`: {e}"))?
        .ok_or_else(|| format!("field `{field}.currency_id` is missing"))?;
    let code = currencies.get(&id).ok_or_else(|| {
        format!("field `{field}.currency_id`: {id} is not in the Currencies lookup")
    })?;
    Ok(Some(Money::new(amount, code.clone())))
}

/// Maps a disposition type name (`None` when the conversion has none).
pub fn status(
    name: Option<&str>,
    undispositioned: ConversionStatus,
) -> Result<ConversionStatus, String> {
    let Some(name) = name else {
        return Ok(undispositioned);
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "approved" => Ok(ConversionStatus::Approved),
        "pending" => Ok(ConversionStatus::Pending),
        "rejected" => Ok(ConversionStatus::Rejected),
        "returned" => Ok(ConversionStatus::Reversed),
        "" | "no_change" => Ok(undispositioned),
        other => Err(format!(
            "field `current_disposition.disposition_type.disposition_type_name`: unknown value {other:?}"
        )),
    }
}

fn event_type(name: &str) -> EventType {
    let n = name.to_ascii_lowercase();
    if n.contains("sale") || n.contains("purchase") || n.contains("order") {
        EventType::Sale
    } else if n.contains("lead") {
        EventType::Lead
    } else if n.contains("sign") || n.contains("regist") {
        EventType::Signup
    } else if n.contains("install") {
        EventType::Install
    } else if n.is_empty() || n == "conversion" {
        EventType::Sale
    } else {
        EventType::Other
    }
}

/// The id of a row for error messages.
pub fn row_id(row: &Value) -> String {
    opt_text(row, "event_conversion_id").unwrap_or_else(|| "?".into())
}

/// Converts one row; the error names the field.
pub fn to_conversion(
    row: &Value,
    currencies: &Currencies,
    undispositioned: ConversionStatus,
) -> Result<Record, String> {
    if !row.is_object() {
        return Err("the conversion is not a JSON object".into());
    }
    let aff = row.get("source_affiliate").unwrap_or(&Value::Null);
    let offer = row.get("site_offer").unwrap_or(&Value::Null);
    let disposition = row
        .get("current_disposition")
        .and_then(|d| d.get("disposition_type"))
        .and_then(|t| t.get("disposition_type_name"))
        .and_then(Value::as_str);
    let event_name = row
        .get("event_info")
        .and_then(|e| opt_text(e, "event_name"))
        .unwrap_or_default();
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: opt_text(row, "event_conversion_id")
            .ok_or("field `event_conversion_id` is missing")?,
        order_id: opt_text(row, "transaction_id"),
        click_id: opt_text(row, "click_request_session_id"),
        clicked_at: opt_date(row, "click_date")?,
        partner_id: opt_text(aff, "source_affiliate_id")
            .ok_or("field `source_affiliate.source_affiliate_id` is missing")?,
        partner_name: opt_text(aff, "source_affiliate_name"),
        campaign_id: opt_text(offer, "site_offer_id"),
        event_type: event_type(&event_name),
        occurred_at: opt_date(row, "event_conversion_date")?
            .ok_or("field `event_conversion_date` is missing")?,
        sale_amount: match opt_text(row, "order_total") {
            None => None,
            Some(_) => {
                let a: Option<Decimal> = parse::decimal(&row["order_total"])
                    .map_err(|e| format!("field `order_total`: {e}"))?;
                match (a, money(row, "received", currencies)?) {
                    (Some(a), Some(m)) => Some(Money::new(a, m.currency)),
                    _ => None,
                }
            }
        },
        commission: money(row, "paid", currencies)?,
        status: status(disposition, undispositioned)?,
        status_changed_at: opt_date(row, "last_updated")?,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    }))
}

/// The `d` object of a JSON answer; `success: false` is an error carrying
/// CAKE's message (callers map "API key" messages to auth errors).
pub fn envelope(body: &Value) -> Result<&Value, String> {
    let d = body.get("d").ok_or("the answer has no `d` object")?;
    if d.get("success").and_then(Value::as_bool) == Some(false) {
        return Err(format!(
            "CAKE answered success=false: {}",
            d.get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
        ));
    }
    Ok(d)
}

/// Parses an `EventConversions` / `EventConversionChanges` answer: the
/// total `row_count` and the records. The error names the record and field.
pub fn parse_page(
    body: &[u8],
    currencies: &Currencies,
    undispositioned: ConversionStatus,
) -> Result<(u64, Vec<Record>), String> {
    let v: Value =
        plugin_api::serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let d = envelope(&v)?;
    let total = parse::count(d.get("row_count").unwrap_or(&Value::Null))
        .map_err(|e| format!("field `row_count`: {e}"))?
        .unwrap_or(0);
    let rows = match d.get("event_conversions") {
        Some(Value::Array(a)) => a.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err("field `event_conversions` is not an array".into()),
    };
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        out.push(
            to_conversion(row, currencies, undispositioned)
                .map_err(|e| format!("record {i} (event_conversion_id {}): {e}", row_id(row)))?,
        );
    }
    Ok((total, out))
}

/// Parses the `Currencies` lookup.
pub fn parse_currencies(body: &[u8]) -> Result<Currencies, String> {
    let v: Value =
        plugin_api::serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let d = envelope(&v)?;
    let list = d
        .get("currencies")
        .and_then(Value::as_array)
        .ok_or("field `currencies` is missing")?;
    let mut out = Currencies::new();
    for (i, c) in list.iter().enumerate() {
        let id = parse::integer(c.get("currency_id").unwrap_or(&Value::Null))
            .map_err(|e| format!("currency {i}: field `currency_id`: {e}"))?
            .ok_or_else(|| format!("currency {i}: field `currency_id` is missing"))?;
        let code = opt_text(c, "currency_abbr")
            .ok_or_else(|| format!("currency {i}: field `currency_abbr` is missing"))?
            .to_ascii_uppercase();
        if !plugin_api::currency::is_known(&code) {
            return Err(format!(
                "currency {i}: field `currency_abbr`: {code:?} is not an ISO-4217 code"
            ));
        }
        out.insert(id, code);
    }
    Ok(out)
}
