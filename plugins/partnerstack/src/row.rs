//! PartnerStack rewards (and the transactions they pay on) into canonical
//! [`Conversion`]s.
//!
//! - A **reward** is a partner's commission: its `key` is the record key,
//!   `amount` is in integer **cents** (minor units) and becomes the
//!   commission via [`Money::from_minor`]; `created_at`/`updated_at` are
//!   epoch **milliseconds**.
//! - The **transaction** a reward pays on (the customer's payment the vendor
//!   reported) gives the sale amount (cents of its `currency`) and the order
//!   id (its `key`, the vendor's own id). It is read from the reward's
//!   embedded `transaction` object, or, when that carries only a key, from
//!   the session's transaction lookup.
//! - Status (`reward_status`, the values the vendor dashboard shows):
//!   `new`/`pending` and `hold` → pending (hold is still under review, not
//!   payable); `approved` and `paid` → approved; `declined` → rejected; and a
//!   `payment_status` of `paid_and_refunded` → reversed, whatever the status.
//!   Any other value is an error naming the field, never a guess.

use plugin_api::currency;
use plugin_api::parse;
use plugin_api::serde_json::Value;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use std::collections::HashMap;

/// Transaction key → (amount in cents, ISO currency).
pub type Transactions = HashMap<String, (i64, String)>;

/// A string field or a number as text; `None` when absent or empty.
pub fn opt_text(row: &Value, field: &str) -> Option<String> {
    match row.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn cents(row: &Value, field: &str) -> Result<Option<i64>, String> {
    parse::integer(row.get(field).unwrap_or(&Value::Null))
        .map_err(|e| format!("field `{field}`: {e} (PartnerStack amounts are integer cents)"))
}

fn millis(
    row: &Value,
    field: &str,
) -> Result<Option<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>>, String> {
    match parse::integer(row.get(field).unwrap_or(&Value::Null))
        .map_err(|e| format!("field `{field}`: {e}"))?
    {
        None => Ok(None),
        Some(ms) => parse::epoch_millis(ms)
            .map(Some)
            .map_err(|e| format!("field `{field}`: {e}")),
    }
}

fn currency_of(row: &Value, field: &str) -> Result<Option<String>, String> {
    match opt_text(row, field) {
        None => Ok(None),
        Some(c) => {
            let c = c.to_ascii_uppercase();
            if currency::is_known(&c) {
                Ok(Some(c))
            } else {
                Err(format!("field `{field}`: {c:?} is not an ISO-4217 code"))
            }
        }
    }
}

/// Maps `reward_status` and `payment_status`.
pub fn status(
    reward_status: &str,
    payment_status: Option<&str>,
) -> Result<ConversionStatus, String> {
    if payment_status.map(str::trim) == Some("paid_and_refunded") {
        return Ok(ConversionStatus::Reversed);
    }
    match reward_status.trim().to_ascii_lowercase().as_str() {
        "new" | "pending" | "hold" => Ok(ConversionStatus::Pending),
        "approved" | "paid" => Ok(ConversionStatus::Approved),
        "declined" => Ok(ConversionStatus::Rejected),
        other => Err(format!(
            "field `reward_status`: unknown value {other:?} (expected new, pending, hold, approved, paid or declined)"
        )),
    }
}

fn event_type(name: &str) -> EventType {
    let n = name.to_ascii_lowercase();
    if n.contains("sign") || n.contains("trial") {
        EventType::Signup
    } else if n.contains("lead") || n.contains("deal") {
        EventType::Lead
    } else {
        EventType::Sale
    }
}

/// The key of a row for error messages.
pub fn row_key(row: &Value) -> String {
    opt_text(row, "key").unwrap_or_else(|| "?".into())
}

/// Reads one transaction into the lookup.
pub fn add_transaction(
    row: &Value,
    into: &mut Transactions,
    default_currency: &str,
) -> Result<(), String> {
    let key = opt_text(row, "key").ok_or("field `key` is missing")?;
    let amount = cents(row, "amount")?.ok_or("field `amount` is missing")?;
    let cur = currency_of(row, "currency")?.unwrap_or_else(|| default_currency.to_owned());
    into.insert(key, (amount, cur));
    Ok(())
}

/// Converts one reward; the error names the field.
pub fn to_conversion(
    row: &Value,
    transactions: &Transactions,
    default_currency: &str,
) -> Result<Record, String> {
    if !row.is_object() {
        return Err("the reward is not a JSON object".into());
    }
    let txn = row.get("transaction").filter(|t| t.is_object());
    // The transaction: embedded amount, else the lookup.
    let txn_key = txn.and_then(|t| opt_text(t, "key"));
    let sale: Option<(i64, String)> = match txn {
        Some(t) if t.get("amount").is_some_and(|a| !a.is_null()) => {
            let a = cents(t, "amount")
                .map_err(|e| format!("transaction.{e}"))?
                .unwrap_or(0);
            let c = currency_of(t, "currency")
                .map_err(|e| format!("transaction.{e}"))?
                .unwrap_or_else(|| default_currency.to_owned());
            Some((a, c))
        }
        _ => txn_key.as_ref().and_then(|k| transactions.get(k).cloned()),
    };
    let cur = currency_of(row, "currency")?
        .or_else(|| sale.as_ref().map(|(_, c)| c.clone()))
        .unwrap_or_else(|| default_currency.to_owned());
    let amount = cents(row, "amount")?.ok_or("field `amount` is missing")?;
    let partnership = row.get("partnership").unwrap_or(&Value::Null);
    let customer = row.get("customer").unwrap_or(&Value::Null);
    let partner_id = opt_text(partnership, "partner_key")
        .or_else(|| opt_text(partnership, "key"))
        .or_else(|| opt_text(customer, "partner_key"))
        .ok_or("field `partnership.partner_key` is missing")?;
    let partner_name = opt_text(partnership, "name").or_else(|| {
        let f = opt_text(partnership, "first_name");
        let l = opt_text(partnership, "last_name");
        match (f, l) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (f, l) => f.or(l),
        }
    });
    let trigger = row
        .get("trigger")
        .and_then(|t| opt_text(t, "name").or_else(|| opt_text(t, "key")))
        .unwrap_or_default();
    let reward_status = opt_text(row, "reward_status").ok_or("field `reward_status` is missing")?;
    let payment_status = opt_text(row, "payment_status");
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: opt_text(row, "key").ok_or("field `key` is missing")?,
        order_id: txn_key,
        click_id: None,
        clicked_at: None,
        partner_id,
        partner_name,
        campaign_id: row.get("offer").and_then(|o| opt_text(o, "key")),
        event_type: event_type(&trigger),
        occurred_at: millis(row, "created_at")?.ok_or("field `created_at` is missing")?,
        sale_amount: sale.map(|(a, c)| Money::from_minor(a, &c)),
        commission: Some(Money::from_minor(amount, &cur)),
        status: status(&reward_status, payment_status.as_deref())?,
        status_changed_at: millis(row, "updated_at")?,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    }))
}

/// A list page: `data.items` and `data.has_more`.
pub fn page(body: &Value) -> Result<(&[Value], bool), String> {
    let data = body.get("data").ok_or("field `data` is missing")?;
    let items = match data.get("items") {
        Some(Value::Array(a)) => a.as_slice(),
        _ => return Err("field `data.items` is missing or not an array".into()),
    };
    let has_more = data
        .get("has_more")
        .and_then(Value::as_bool)
        .ok_or("field `data.has_more` is missing")?;
    Ok((items, has_more))
}

/// Parses a rewards page (used by the stream and the parse benchmark): the
/// records, whether more follow and the last key. The error names the
/// reward and field.
pub fn parse_rewards_page(
    body: &[u8],
    transactions: &Transactions,
    default_currency: &str,
) -> Result<(Vec<Record>, bool, Option<String>), String> {
    let v: Value =
        plugin_api::serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let (items, has_more) = page(&v)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, row) in items.iter().enumerate() {
        out.push(
            to_conversion(row, transactions, default_currency)
                .map_err(|e| format!("record {i} (key {}): {e}", row_key(row)))?,
        );
    }
    Ok((out, has_more, items.last().and_then(|r| opt_text(r, "key"))))
}
