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
//!   embedded `transaction` object, or, when that carries only a key (no
//!   `amount` at all), from the session's transaction lookup. A
//!   transaction's `amount` "may be 0 but not null" (reference): one sent
//!   as `""` or null, embedded or listed, is an error naming the reward (or
//!   transaction) and the field, never a sale of 0.00 (QA35d H4).
//! - **Ids** (`key`, `partnership.partner_key`, `transaction.key`,
//!   `offer.key`, a listed transaction's `key`) are read with
//!   [`Scalar::id`]: `101`, `"101"` and `101.0` are one id, and a number
//!   with a fraction is an error (QA35d M3).
//! - **Currency.** The reference's Reward has no `currency` of its own; only
//!   the Transaction has one. A reward's currency (commission and sale) is
//!   the reward's `currency` if it sends one, else its embedded
//!   transaction's `currency` (read even when the embedded object carries no
//!   amount), else the looked-up transaction's, else the `default_currency`
//!   setting (the sale amount prefers the transaction's currency). That last case is a guess (a transaction created before the
//!   window is not in the lookup), so [`RewardsPage::default_currency_keys`]
//!   lists those rewards and the stream reports them once per session.
//! - Status (`reward_status`, the values the vendor dashboard shows):
//!   `new`/`pending` and `hold` → pending (hold is still under review, not
//!   payable); `approved` and `paid` → approved; `declined` → rejected; and a
//!   `payment_status` of `paid_and_refunded` → reversed, whatever the status.
//!   Any other value is an error naming the field, never a guess.

use plugin_api::currency;
use plugin_api::lenient::{record_error, Scalar};
use plugin_api::parse;
use plugin_api::serde_json::Value;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use serde::Deserialize;
use std::collections::HashMap;

/// Transaction key → (amount in cents, ISO currency if the transaction
/// named one).
pub type Transactions = HashMap<String, (i64, Option<String>)>;

/// A string field or a number as text; `None` when absent or empty.
pub fn opt_text(row: &Value, field: &str) -> Option<String> {
    match row.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RewardRow<'a> {
    #[serde(borrow)]
    key: Scalar<'a>,
    #[serde(borrow)]
    amount: Scalar<'a>,
    #[serde(borrow)]
    currency: Scalar<'a>,
    #[serde(borrow)]
    reward_status: Scalar<'a>,
    #[serde(borrow)]
    payment_status: Scalar<'a>,
    #[serde(borrow)]
    created_at: Scalar<'a>,
    #[serde(borrow)]
    updated_at: Scalar<'a>,
    #[serde(borrow)]
    partnership: Option<Partnership<'a>>,
    #[serde(borrow)]
    customer: Option<Partnership<'a>>,
    #[serde(borrow)]
    transaction: Option<Txn<'a>>,
    #[serde(borrow)]
    offer: Option<Keyed<'a>>,
    #[serde(borrow)]
    trigger: Option<Keyed<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Partnership<'a> {
    #[serde(borrow)]
    key: Scalar<'a>,
    #[serde(borrow)]
    partner_key: Scalar<'a>,
    #[serde(borrow)]
    name: Scalar<'a>,
    #[serde(borrow)]
    first_name: Scalar<'a>,
    #[serde(borrow)]
    last_name: Scalar<'a>,
}

/// A transaction: embedded in a reward, or an item of `/transactions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Txn<'a> {
    #[serde(borrow)]
    key: Scalar<'a>,
    /// `None` when the object has no `amount` key at all (an embedded
    /// transaction that carries only its key); `Some(Scalar::Null)` for an
    /// `amount` sent as null.
    #[serde(borrow, deserialize_with = "present")]
    amount: Option<Scalar<'a>>,
    #[serde(borrow)]
    currency: Scalar<'a>,
}

/// A field that is there, whatever its value (null included): serde calls
/// this only for a key the object has, so absent stays `None`.
fn present<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Scalar<'a>>, D::Error> {
    Scalar::deserialize(d).map(Some)
}

/// A transaction's amount when the transaction sends one: integer cents,
/// which the reference says "may be 0 but not null". An empty string or a
/// null is refused, naming the field: the lenient reader takes both for "no
/// amount", and an embedded transaction's `""` was stored as a sale of 0.00
/// (QA35d H4).
fn txn_cents(v: &Scalar<'_>, field: &str) -> Result<i64, String> {
    t_cents(v, field)?.ok_or_else(|| {
        let got = match v {
            Scalar::Str(s) => format!("{s:?}"),
            _ => "null".to_owned(),
        };
        format!(
            "field `{field}` is {got}: a transaction's amount is integer cents, 0 when there \
             is none, never empty or null; the record is refused rather than stored with an \
             unknown or zero sale"
        )
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Keyed<'a> {
    #[serde(borrow)]
    key: Scalar<'a>,
    #[serde(borrow)]
    name: Scalar<'a>,
}

#[derive(Debug, Deserialize)]
struct TransactionsBody<'a> {
    #[serde(borrow)]
    data: Option<TransactionsData<'a>>,
}

#[derive(Debug, Deserialize)]
struct TransactionsData<'a> {
    #[serde(borrow, default)]
    items: Option<Vec<Txn<'a>>>,
    #[serde(borrow, default)]
    has_more: Scalar<'a>,
}

#[derive(Debug, Deserialize)]
struct RewardsBody<'a> {
    #[serde(borrow)]
    data: Option<RewardsData<'a>>,
}

#[derive(Debug, Deserialize)]
struct RewardsData<'a> {
    #[serde(borrow, default)]
    items: Option<Vec<RewardRow<'a>>>,
    #[serde(borrow, default)]
    has_more: Scalar<'a>,
}

fn t_cents(v: &Scalar<'_>, field: &str) -> Result<Option<i64>, String> {
    v.integer(field)
        .map_err(|e| format!("{e} (PartnerStack amounts are integer cents)"))
}

fn t_currency(v: &Scalar<'_>, field: &str) -> Result<Option<String>, String> {
    match v.text() {
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

fn t_millis(
    v: &Scalar<'_>,
    field: &str,
) -> Result<Option<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>>, String> {
    match v.integer(field)? {
        None => Ok(None),
        Some(ms) => parse::epoch_millis(ms)
            .map(Some)
            .map_err(|e| format!("field `{field}`: {e}")),
    }
}

/// Converts one reward; the error names the field. The flag is true when
/// its currency is only the configured `default_currency` (neither the
/// reward nor its transaction named one).
fn convert(
    row: &RewardRow<'_>,
    transactions: &Transactions,
    default_currency: &str,
) -> Result<(Record, bool), String> {
    let txn = row.transaction.as_ref();
    let txn_key = match txn {
        Some(t) => t.key.id("transaction.key")?,
        None => None,
    };
    let looked_up = txn_key.as_ref().and_then(|k| transactions.get(k));
    // The sale amount: the embedded transaction's when it sends one (an
    // empty or null one is an error), else the lookup's (an embedded
    // transaction with only its key).
    let sale_cents: Option<i64> = match txn.and_then(|t| t.amount.as_ref()) {
        Some(a) => Some(txn_cents(a, "transaction.amount")?),
        None => looked_up.map(|(a, _)| *a),
    };
    // The transaction's currency: the embedded object's (even without an
    // amount), else the looked-up transaction's.
    let txn_cur = match txn {
        Some(t) => t_currency(&t.currency, "transaction.currency")?,
        None => None,
    }
    .or_else(|| looked_up.and_then(|(_, c)| c.clone()));
    // The reward's own (not in the reference's Reward; read if sent).
    let reward_cur = t_currency(&row.currency, "currency")?;
    let defaulted = reward_cur.is_none() && txn_cur.is_none();
    let or_default = |c: Option<&String>| c.cloned().unwrap_or_else(|| default_currency.to_owned());
    // Commission in the reward's currency, the sale in the transaction's.
    let cur = or_default(reward_cur.as_ref().or(txn_cur.as_ref()));
    let sale_cur = or_default(txn_cur.as_ref().or(reward_cur.as_ref()));
    let amount = t_cents(&row.amount, "amount")?.ok_or("field `amount` is missing")?;
    let p = row.partnership.as_ref();
    // Ids as `Scalar::id` reads them: `101`, `"101"` and `101.0` are one
    // partner (QA35d M3).
    // The partner's key: the partnership's `partner_key`, else the
    // customer's, and only then the partnership's own `key` (QA37 R-M3: a
    // null `partnership.partner_key` filed the claim under the partnership
    // key, another payee, though `customer.partner_key` named the partner).
    let partnership_partner = match p {
        Some(p) => p.partner_key.id("partnership.partner_key")?,
        None => None,
    };
    let customer_partner = match (&partnership_partner, &row.customer) {
        (None, Some(c)) => c.partner_key.id("customer.partner_key")?,
        _ => None,
    };
    let partnership_key = match (&partnership_partner, &customer_partner, p) {
        (None, None, Some(p)) => p.key.id("partnership.key")?,
        _ => None,
    };
    let partner_id = partnership_partner
        .or(customer_partner)
        .or(partnership_key)
        .ok_or("field `partnership.partner_key` is missing")?;
    let partner_name = p.and_then(|p| {
        p.name
            .string()
            .or_else(|| match (p.first_name.string(), p.last_name.string()) {
                (Some(f), Some(l)) => Some(format!("{f} {l}")),
                (f, l) => f.or(l),
            })
    });
    let trigger = row
        .trigger
        .as_ref()
        .and_then(|t| t.name.string().or_else(|| t.key.string()))
        .unwrap_or_default();
    let reward_status = row
        .reward_status
        .text()
        .ok_or("field `reward_status` is missing")?;
    let record = Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: row.key.id("key")?.ok_or("field `key` is missing")?,
        order_id: txn_key,
        click_id: None,
        clicked_at: None,
        partner_id,
        partner_name,
        campaign_id: match &row.offer {
            Some(o) => o.key.id("offer.key")?,
            None => None,
        },
        event_type: event_type(&trigger),
        occurred_at: t_millis(&row.created_at, "created_at")?
            .ok_or("field `created_at` is missing")?,
        sale_amount: sale_cents.map(|a| Money::from_minor(a, &sale_cur)),
        commission: Some(Money::from_minor(amount, &cur)),
        status: status(&reward_status, row.payment_status.text().as_deref())?,
        status_changed_at: t_millis(&row.updated_at, "updated_at")?,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    });
    Ok((record, defaulted))
}

/// A parsed transactions page.
#[derive(Debug)]
pub struct TransactionsPage {
    /// The page's items, in order, under their key (as [`Scalar::id`]
    /// reads it, the way a reward's `transaction.key` is read).
    pub items: Vec<(String, (i64, Option<String>))>,
    /// More transactions follow.
    pub has_more: bool,
    /// The last item's key as sent (the next cursor).
    pub last_key: Option<String>,
}

/// Parses a `/transactions` page: each item's key, amount (integer cents,
/// required: "may be 0 but not null") and currency (if it names one). The
/// error names the item and field.
pub fn parse_transactions_page(body: &[u8]) -> Result<TransactionsPage, String> {
    let p: TransactionsBody<'_> = plugin_api::serde_json::from_slice(body)
        .map_err(|e| locate(body, &e, |t| record_error::<Txn>(t)))?;
    let data = p.data.ok_or("field `data` is missing")?;
    let rows = data
        .items
        .ok_or("field `data.items` is missing or not an array")?;
    let has_more = data
        .has_more
        .as_bool()
        .ok_or("field `data.has_more` is missing")?;
    let mut items = Vec::with_capacity(rows.len());
    for (i, t) in rows.iter().enumerate() {
        let item = || -> Result<(String, (i64, Option<String>)), String> {
            let key = t.key.id("key")?.ok_or("field `key` is missing")?;
            let amount = match &t.amount {
                Some(a) => txn_cents(a, "amount")?,
                None => return Err("field `amount` is missing".into()),
            };
            Ok((key, (amount, t_currency(&t.currency, "currency")?)))
        };
        items.push(item().map_err(|e| {
            let key = t.key.string().unwrap_or_else(|| "?".into());
            format!("record {n} (key {key}): {e}", n = i + 1)
        })?);
    }
    Ok(TransactionsPage {
        items,
        has_more,
        last_key: rows.last().and_then(|t| t.key.string()),
    })
}

/// Which item of a page serde could not read, for the error message;
/// `why` re-reads one item's text (`lenient::record_error` of its type).
fn locate(
    body: &[u8],
    e: &plugin_api::serde_json::Error,
    why: impl Fn(&str) -> Option<String>,
) -> String {
    let Ok(v) = plugin_api::serde_json::from_slice::<Value>(body) else {
        return plugin_api::sdk::malformed_json(body, e);
    };
    if let Some(rows) = v
        .get("data")
        .and_then(|d| d.get("items"))
        .and_then(Value::as_array)
    {
        for (i, r) in rows.iter().enumerate() {
            // Scalar fields need the row's text (see `lenient::record_error`).
            let text = r.to_string();
            if let Some(re) = why(&text) {
                return format!("record {n} (key {}): {re}", row_key(r), n = i + 1);
            }
        }
    }
    format!("unexpected page shape: {e}")
}

/// A parsed rewards page.
#[derive(Debug)]
pub struct RewardsPage {
    /// One conversion per reward.
    pub records: Vec<Record>,
    /// More rewards follow.
    pub has_more: bool,
    /// The last reward's key (the next cursor).
    pub last_key: Option<String>,
    /// Keys of the rewards whose currency is only `default_currency`.
    pub default_currency_keys: Vec<String>,
}

/// Parses a rewards page (used by the stream and the parse benchmark). The
/// error names the reward and field.
pub fn parse_rewards_page(
    body: &[u8],
    transactions: &Transactions,
    default_currency: &str,
) -> Result<RewardsPage, String> {
    let p: RewardsBody<'_> = plugin_api::serde_json::from_slice(body)
        .map_err(|e| locate(body, &e, |t| record_error::<RewardRow>(t)))?;
    let data = p.data.ok_or("field `data` is missing")?;
    let items = data
        .items
        .ok_or("field `data.items` is missing or not an array")?;
    let has_more = data
        .has_more
        .as_bool()
        .ok_or("field `data.has_more` is missing")?;
    let mut records = Vec::with_capacity(items.len());
    let mut default_currency_keys = Vec::new();
    for (i, row) in items.iter().enumerate() {
        let key = || row.key.string().unwrap_or_else(|| "?".into());
        let (record, defaulted) = convert(row, transactions, default_currency)
            .map_err(|e| format!("record {n} (key {}): {e}", key(), n = i + 1))?;
        if defaulted {
            default_currency_keys.push(key());
        }
        records.push(record);
    }
    Ok(RewardsPage {
        records,
        has_more,
        last_key: items.last().and_then(|r| r.key.string()),
        default_currency_keys,
    })
}
