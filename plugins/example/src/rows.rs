//! Parsing one ExampleNet row into a canonical [`Conversion`].
//!
//! Rows are read as `serde_json::Value` and converted field by field, so an
//! error names the field that was wrong rather than failing the whole page
//! with a serde position. They are read as [`LiteralNumbers`], so an amount
//! sent as a JSON number keeps its literal and is exact (a plain `Value`
//! holds it as an `f64`, which rounds beyond ~15 significant digits). A
//! connector on a hot path reads typed rows of
//! [`plugin_api::lenient::Scalar`] fields instead (see the Everflow plugin).

use plugin_api::json_object::LiteralNumbers;
use plugin_api::parse;
use plugin_api::serde_json::Value;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use serde::Deserialize;

/// One page of a stream.
#[derive(Debug, Deserialize)]
pub struct Page {
    /// The rows, money numbers kept as their literal.
    pub data: Vec<LiteralNumbers>,
    /// Cursor of the next page; `null` on the last.
    #[serde(default)]
    pub next: Option<String>,
}

fn text<'a>(row: &'a Value, field: &str) -> Result<&'a str, String> {
    row.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("field `{field}` is missing or not a string"))
}

fn opt_text(row: &Value, field: &str) -> Option<String> {
    row.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn money(row: &Value, field: &str, currency: &str) -> Result<Option<Money>, String> {
    let v = row.get(field).unwrap_or(&Value::Null);
    let amount = parse::decimal(v).map_err(|e| format!("field `{field}`: {e}"))?;
    Ok(amount.map(|a| Money::new(a, currency)))
}

/// Converts a row; the error names the field.
pub fn to_conversion(row: &Value) -> Result<Record, String> {
    let currency = text(row, "currency")?.to_ascii_uppercase();
    let status = match text(row, "state")? {
        "pending" => ConversionStatus::Pending,
        "approved" => ConversionStatus::Approved,
        "reversed" => ConversionStatus::Reversed,
        "rejected" => ConversionStatus::Rejected,
        other => return Err(format!("field `state`: unknown value {other:?}")),
    };
    let event_type = match row.get("type").and_then(Value::as_str).unwrap_or("sale") {
        "sale" => EventType::Sale,
        "lead" => EventType::Lead,
        "signup" => EventType::Signup,
        _ => EventType::Other,
    };
    let partner = row.get("partner").ok_or("field `partner` is missing")?;
    let ts = |field: &str| -> Result<Option<_>, String> {
        match opt_text(row, field) {
            None => Ok(None),
            Some(s) => parse::timestamp(&s)
                .map(Some)
                .map_err(|e| format!("field `{field}`: {e}")),
        }
    };
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: text(row, "id")?.to_owned(),
        order_id: opt_text(row, "order_ref"),
        click_id: opt_text(row, "click"),
        clicked_at: ts("clicked_at")?,
        partner_id: text(partner, "id")
            .map_err(|e| format!("partner: {e}"))?
            .to_owned(),
        partner_name: opt_text(partner, "name"),
        campaign_id: opt_text(row, "campaign"),
        event_type,
        occurred_at: ts("created")?.ok_or("field `created` is missing")?,
        sale_amount: money(row, "amount", &currency)?,
        commission: money(row, "commission", &currency)?,
        status,
        status_changed_at: ts("updated")?,
        locked_at: None,
        coupon: opt_text(row, "coupon"),
        utm: Utm::default(),
    }))
}
