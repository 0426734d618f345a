//! File drop: orders from `.csv` and `.jsonl` files in a configured directory.
//!
//! The plugin does no I/O: it asks the host to list the directory
//! ([`Cx::list_files`]) and to read each file ([`Cx::read_file`]); the host
//! enforces the manifest's read-only file capability (setting `directory`,
//! suffixes `.csv` and `.jsonl`).
//!
//! The `order_files` checkpoint remembers every processed file by name, size
//! and SHA-256, so a file read again unchanged is skipped (idempotent) and a
//! changed file is read again (its orders are upserts: changed ones become
//! revisions). One checkpoint is committed per file read, so a file is
//! stored entirely or not at all.
//!
//! ## An order id in several files
//! A drop of daily "orders changed today" exports gives an order again in
//! the file of the day it was refunded or corrected. The file last in name
//! order that gives an order id (its record key, as written) wins, on
//! every run: when a file is read (again), its orders whose id a file
//! later in name order (still listed) also gives are not emitted, so a
//! re-read older file does not undo the later values (QA38b H1: a refund
//! vanished when one line was appended to the older file). That later
//! file's values stay: it was stored before, or is read in the same run.
//! One INFO per file says how many of its orders were left to later
//! files, naming one and the file that gives it.
//!
//! To know those ids, each run first reads every file (to hash it) and,
//! from the first changed file on, parses the files after it, keeping only
//! a map from order id to the last file giving it; the changed files are
//! then read again and stored in name order. A file that does not parse
//! fails the session (an unchanged one too, when it was parsed for its
//! ids). Changed files before it are stored only when it and every file
//! after it were never stored: otherwise an order they share with it could
//! be undone, so nothing is stored until it is fixed.
//!
//! A later file deleted from the drop is not undone: its values stay until
//! an earlier file giving the same order is read again, whose values are
//! then stored (no listed later file gives that order any more).
//!
//! ## Columns (CSV header / JSONL keys)
//! | column | required | meaning |
//! |---|---|---|
//! | `order_id` | yes | the shop's order id (record key) |
//! | `created_at` | yes | RFC 3339 with offset; a naive `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD` is UTC |
//! | `amount` | yes | order amount net of tax and shipping, decimal written in full (`.` separator, no exponent or digit separators, at most 28 significant digits); JSONL: a string or a JSON number, read exactly from its literal (never through `f64`) under the same rules |
//! | `currency` | unless `default_currency` | ISO-4217 code |
//! | `alt_ids` | no | other ids a claim may quote, `\|`-separated (JSONL: array or string) |
//! | `coupon` | no | coupon code |
//! | `click_ids` | no | click ids, `\|`-separated (JSONL: array or string) |
//! | `utm_source` … `utm_term` | no | UTM fields |
//! | `refund_amount`, `refunded_at` | no | one refund (JSONL may instead give `refunds: [{amount, at}]`) |
//! | `status` | no | `open`, `paid`, `fulfilled`, `cancelled`, `refunded`, `partially_refunded`; empty → derived from refunds |
//! | `customer_id` | no | customer id |
//! | `new_customer` | no | `true`/`false` (`1`/`0`, `yes`/`no`) |
//!
//! A malformed row (a bad value, a negative amount, an amount in scientific
//! notation or with digit separators or more decimals than its currency
//! has, a refund above the order amount or before its creation, a status
//! contradicting the refunds, a JSONL key given twice, an `order_id`
//! already seen in the file) fails the session with an error naming the file, line, column and
//! order id; orders of that file are not stored (earlier files
//! are, unless it or a file after it was stored before: see above), and
//! the file is read again on the next run once fixed.

use crate::attribution::Attribution;
use crate::config::Settings;
use plugin_api::chrono::{DateTime, NaiveTime, Utc};
use plugin_api::json_object;
use plugin_api::parse;
use plugin_api::protocol::Checkpoint;
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::value::RawValue;
use plugin_api::serde_json::{json, Map, Value};
use plugin_api::{Cx, Money, Order, OrderStatus, PluginError, Record, Refund, Utm};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The separator of a header cell that is really a whole header written
/// with another separator (`order_id;created_at;amount`, as spreadsheets in
/// many locales save "CSV"), named for the error message.
fn other_separator(cell: &str) -> Option<&'static str> {
    let cell = cell.trim_start_matches('\u{feff}');
    [(';', "semicolons"), ('\t', "tabs")]
        .into_iter()
        .find(|(c, _)| {
            cell.split(*c)
                .filter(|part| column_index(part.trim()).is_some())
                .count()
                >= 2
        })
        .map(|(_, name)| name)
}

/// The error for a time in none of the forms [`Raw::time`] reads, listing
/// them (QA: `02/11/2026 10:00` only said "not an RFC 3339 timestamp").
fn not_a_time(s: &str) -> String {
    format!(
        "{s:?} is not a time reckon reads: write RFC 3339 (`2026-11-02T10:00:00+01:00`, \
         `2026-11-02T09:00:00Z`), `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (UTC)"
    )
}

/// Stream name of file-drop orders.
pub const STREAM: &str = "order_files";
/// File name suffixes read.
pub const SUFFIXES: &[&str] = &[".csv", ".jsonl"];

/// Every column (CSV) / key (JSONL) understood.
pub const COLUMNS: &[&str] = &[
    "order_id",
    "created_at",
    "amount",
    "currency",
    "alt_ids",
    "coupon",
    "click_ids",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "refund_amount",
    "refunded_at",
    "status",
    "customer_id",
    "new_customer",
];

/// A file's size and SHA-256, as the checkpoint remembers it.
fn fingerprint(bytes: &[u8]) -> Value {
    json!({ "size": bytes.len(), "sha256": hex::encode(Sha256::digest(bytes)) })
}

/// Reads every new or changed file; an order id also in a file later in
/// name order is left to that file (see the module docs).
pub async fn read(cx: &Cx, settings: &Settings) -> Result<(), PluginError> {
    let listing = cx.list_files().await?;
    let listing = String::from_utf8_lossy(&listing).into_owned();
    let mut names: Vec<&str> = listing
        .lines()
        .map(str::trim)
        .filter(|n| SUFFIXES.iter().any(|s| n.ends_with(s)))
        .collect();
    names.sort_unstable();
    names.dedup();

    let previous = cx.checkpoint(STREAM);
    let prev_files = previous
        .and_then(|cp| cp.state.get("files"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // Only files still listed are remembered: the state stays bounded.
    let mut files: Map<String, Value> = prev_files
        .iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let watermark = previous
        .map(|cp| cp.watermark.max(cx.now()))
        .unwrap_or_else(|| cx.now());

    // Pass 1: which files changed and, after the first changed one, which
    // file last in name order gives each order id (its record key). Stops
    // at the first file that does not parse.
    let mut changed = Vec::with_capacity(names.len());
    let mut first_changed: Option<usize> = None;
    let mut last_file: HashMap<String, usize> = HashMap::new();
    let mut bad: Option<(usize, PluginError)> = None;
    for (i, name) in names.iter().enumerate() {
        let bytes = cx.read_file(name).await?;
        changed.push(prev_files.get(*name) != Some(&fingerprint(&bytes)));
        let Some(first) = first_changed else {
            first_changed = changed[i].then_some(i);
            continue;
        };
        match parse_file(name, &bytes, settings) {
            Ok(orders) => {
                for o in orders {
                    last_file.insert(o.order_id, i);
                }
            }
            Err(e) if changed[i] => {
                bad = Some((i, PluginError::bad_response(e.to_string())));
                break;
            }
            Err(e) => {
                let why = format!(
                    "{e} (the file is unchanged: it was read again because `{}` before it \
                     changed, and an order in both is taken from the later file)",
                    names[first]
                );
                bad = Some((i, PluginError::bad_response(why)));
                break;
            }
        }
    }
    // Changed files before a file that does not parse are stored only when
    // it and the files after it were never stored: else an order of theirs
    // may be one it gives, which a store of the earlier file would undo.
    let until = match &bad {
        Some((k, _)) if names[*k..].iter().any(|n| prev_files.contains_key(*n)) => 0,
        Some((k, _)) => *k,
        None => names.len(),
    };

    // Pass 2: store the changed files, each with its checkpoint.
    let (mut read_count, mut orders, mut left_total) = (0usize, 0usize, 0usize);
    for i in (0..until).filter(|i| changed[*i]) {
        let name = names[i];
        let bytes = cx.read_file(name).await?;
        let seen = fingerprint(&bytes);
        let parsed = parse_file(name, &bytes, settings)
            .map_err(|e| PluginError::bad_response(e.to_string()))?;
        let (mut left, mut example) = (0usize, None);
        for o in parsed {
            match last_file.get(&o.order_id) {
                Some(&later) if later > i => {
                    left += 1;
                    example.get_or_insert((o.order_id, later));
                }
                _ => {
                    orders += 1;
                    cx.emit(Record::Order(o));
                }
            }
        }
        if let Some((id, later)) = example {
            cx.info(
                "orders also in a later file are left to it",
                &[
                    ("file", &name),
                    ("orders", &left),
                    ("example", &id),
                    ("later_file", &names[later]),
                ],
            );
        }
        left_total += left;
        files.insert(name.to_owned(), seen);
        cx.commit(Checkpoint {
            stream: STREAM.into(),
            watermark,
            state: json!({ "files": files }),
            covers: None,
        });
        read_count += 1;
    }
    if let Some((_, e)) = bad {
        return Err(e);
    }
    // Forget files that disappeared, even when nothing was read.
    cx.commit(Checkpoint {
        stream: STREAM.into(),
        watermark,
        state: json!({ "files": files }),
        covers: None,
    });
    cx.info(
        "files done",
        &[
            ("read", &read_count),
            ("unchanged", &(names.len() - read_count)),
            ("orders", &orders),
            ("left_to_later_files", &left_total),
        ],
    );
    Ok(())
}

/// Where a bad value is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// File name.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column (CSV: field number; JSONL: character of the key or of the syntax error).
    pub column: Option<u64>,
    /// The field concerned.
    pub field: Option<String>,
    /// The order id, when the row has one.
    pub order_id: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "file `{}` line {}", self.file, self.line)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " (`{field}`)")?;
        }
        if let Some(id) = &self.order_id {
            write!(f, ", order {id}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

/// Parses one file by its suffix.
pub fn parse_file(name: &str, bytes: &[u8], settings: &Settings) -> Result<Vec<Order>, FileError> {
    if name.ends_with(".jsonl") {
        parse_jsonl(name, bytes, settings)
    } else {
        parse_csv(name, bytes, settings)
    }
}

/// A field's raw value, borrowed from the row.
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Missing,
    Text(&'a str),
    Json(&'a Value),
    /// A JSON number, with its literal as written (`12345678901234567.89`,
    /// `1e3`): amounts are read from the literal, never through `f64`.
    Number(&'a str),
}

impl<'a> Raw<'a> {
    /// A JSON value with its text as written: a number keeps its literal.
    fn json(value: &'a Value, raw: Option<&'a RawValue>) -> Self {
        match (value, raw.and_then(json_object::number_literal)) {
            (Value::Number(_), Some(literal)) => Raw::Number(literal),
            _ => Raw::Json(value),
        }
    }
}

impl<'a> Raw<'a> {
    /// Text, with empty strings and JSON null treated as missing.
    fn text(self) -> Result<Option<&'a str>, String> {
        match self {
            Raw::Missing | Raw::Json(Value::Null) => Ok(None),
            Raw::Text(s) => {
                let t = s.trim();
                Ok((!t.is_empty()).then_some(t))
            }
            Raw::Json(Value::String(s)) => {
                let t = s.trim();
                Ok((!t.is_empty()).then_some(t))
            }
            Raw::Json(other) => Err(format!("expected a string, got {other}")),
            Raw::Number(n) => Err(format!("expected a string, got {n}")),
        }
    }
    fn id(self) -> Result<Option<String>, String> {
        match self {
            Raw::Json(Value::Number(n)) => Ok(Some(n.to_string())),
            Raw::Number(n) => Ok(Some(n.to_owned())),
            other => Ok(other.text()?.map(str::to_owned)),
        }
    }
    /// An amount: text or a JSON number's literal, written in full (no
    /// exponent, no digit separators, no more digits than a decimal holds:
    /// [`parse::plain_decimal_str`]). A JSON number is read from its
    /// literal, exactly; one without it (never, from [`parse_jsonl`]) would
    /// be refused rather than read through `f64`.
    fn decimal(self) -> Result<Option<Decimal>, String> {
        let d = self.exact_decimal()?;
        // Refused here, so the error names the file and line (QA21: the
        // host's check named only the page and record).
        match d.and_then(plugin_api::validate::amount_too_large) {
            Some(why) => Err(format!("{} {why}", d.unwrap_or_default())),
            None => Ok(d),
        }
    }
    fn exact_decimal(self) -> Result<Option<Decimal>, String> {
        match self {
            Raw::Number(n) => parse::plain_decimal_str(n),
            Raw::Json(Value::Number(n)) => Err(format!(
                "the number {n} cannot be read exactly; send the amount as a string"
            )),
            other => match other.text()? {
                None => Ok(None),
                Some(s) => parse::plain_decimal_str(s),
            },
        }
    }
    fn list(self) -> Result<Vec<String>, String> {
        match self {
            Raw::Json(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(format!("expected a list of strings, got {other}")),
                })
                .filter(|r| r.as_ref().map(|s| !s.is_empty()).unwrap_or(true))
                .collect(),
            other => Ok(other
                .text()?
                .map(|s| {
                    s.split('|')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()),
        }
    }
    fn time(self) -> Result<Option<DateTime<Utc>>, String> {
        match self.text()? {
            None => Ok(None),
            Some(s) if s.len() == 10 => parse::date(s)
                .map(|d| Some(d.and_time(NaiveTime::MIN).and_utc()))
                .map_err(|_| not_a_time(s)),
            Some(s) => parse::timestamp(s).map(Some).map_err(|_| not_a_time(s)),
        }
    }
    fn boolean(self) -> Result<Option<bool>, String> {
        match self {
            Raw::Json(Value::Bool(b)) => Ok(Some(*b)),
            other => match other.text()?.map(str::to_ascii_lowercase).as_deref() {
                None => Ok(None),
                Some("true" | "1" | "yes" | "y" | "new") => Ok(Some(true)),
                Some("false" | "0" | "no" | "n" | "returning") => Ok(Some(false)),
                Some(s) => Err(format!("{s:?} is not true/false")),
            },
        }
    }
}

/// A field error before it is located in the file.
#[derive(Debug)]
struct FieldError {
    field: &'static str,
    message: String,
}

fn fe(field: &'static str) -> impl Fn(String) -> FieldError {
    move |message| FieldError { field, message }
}

/// Builds an order from a row's fields.
fn build_order<'a>(
    get: impl Fn(&'static str) -> Raw<'a>,
    refunds_json: Option<(&'a Value, Option<&'a RawValue>)>,
    settings: &Settings,
) -> Result<Order, FieldError> {
    let order_id = get("order_id")
        .id()
        .map_err(fe("order_id"))?
        .ok_or_else(|| fe("order_id")("is required".into()))?;
    let created_at = get("created_at")
        .time()
        .map_err(fe("created_at"))?
        .ok_or_else(|| fe("created_at")("is required".into()))?;
    let amount = get("amount")
        .decimal()
        .map_err(fe("amount"))?
        .ok_or_else(|| fe("amount")("is required".into()))?;
    if amount < Decimal::ZERO {
        return Err(fe("amount")(format!(
            "amount {amount} is negative; give the order amount (refunds go in refund_amount)"
        )));
    }
    let currency = match get("currency").text().map_err(fe("currency"))? {
        Some(c) => c.to_ascii_uppercase(),
        None => settings
            .default_currency
            .as_deref()
            .map(str::to_ascii_uppercase)
            .ok_or_else(|| {
                fe("currency")("is required (or set settings.default_currency)".into())
            })?,
    };
    let Some(minor_digits) = plugin_api::currency::minor_unit_digits(&currency) else {
        return Err(fe("currency")(format!(
            "{currency:?} is not an ISO-4217 code"
        )));
    };
    let decimals = |value: Decimal| check_decimals(value, &currency, minor_digits);
    decimals(amount).map_err(fe("amount"))?;

    let mut refunds = Vec::new();
    // Whether the row says anything about refunds (an explicit 0 included).
    let mut refund_given = false;
    if let Some(refund) = get("refund_amount")
        .decimal()
        .map_err(fe("refund_amount"))?
    {
        refund_given = true;
        decimals(refund).map_err(fe("refund_amount"))?;
        let at = get("refunded_at")
            .time()
            .map_err(fe("refunded_at"))?
            .ok_or_else(|| fe("refunded_at")("is required when refund_amount is set".into()))?;
        check_refund(refund, at, amount, created_at).map_err(|(field, m)| fe(field)(m))?;
        if refund > Decimal::ZERO {
            refunds.push(Refund {
                amount: Money::new(refund, currency.clone()),
                at,
            });
        }
    }
    let order_amount = amount;
    if let Some((list, list_raw)) = refunds_json {
        let items = list.as_array().ok_or_else(|| {
            fe("refunds")(format!("expected an array of {{amount, at}}, got {list}"))
        })?;
        // Each refund's fields as written, for its amount's literal.
        let items_raw = list_raw
            .and_then(json_object::raw_elements)
            .unwrap_or_default();
        refund_given = true;
        for (i, r) in items.iter().enumerate() {
            let amount_raw = items_raw
                .get(i)
                .and_then(|item| json_object::raw_entries(item.get()).ok())
                .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "amount"))
                .map(|(_, v)| v);
            let amount = Raw::json(r.get("amount").unwrap_or(&Value::Null), amount_raw)
                .decimal()
                .map_err(|e| fe("refunds")(format!("[{i}].amount: {e}")))?
                .ok_or_else(|| fe("refunds")(format!("[{i}].amount is required")))?;
            decimals(amount).map_err(|e| fe("refunds")(format!("[{i}].amount: {e}")))?;
            let at = Raw::Json(r.get("at").unwrap_or(&Value::Null))
                .time()
                .map_err(|e| fe("refunds")(format!("[{i}].at: {e}")))?
                .ok_or_else(|| fe("refunds")(format!("[{i}].at is required")))?;
            check_refund(amount, at, order_amount, created_at)
                .map_err(|(_, m)| fe("refunds")(format!("[{i}]: {m}")))?;
            if amount > Decimal::ZERO {
                refunds.push(Refund {
                    amount: Money::new(amount, currency.clone()),
                    at,
                });
            }
        }
    }
    let refunded: Decimal = refunds.iter().map(|r| r.amount.amount).sum();
    if refunded > amount {
        let field = if refunds_json.is_some() {
            "refunds"
        } else {
            "refund_amount"
        };
        return Err(fe(field)(format!(
            "refunds total {refunded}, more than the order amount {amount}"
        )));
    }
    let status = match get("status").text().map_err(fe("status"))? {
        Some(s) => match s.to_ascii_lowercase().as_str() {
            "open" | "pending" => OrderStatus::Open,
            "paid" => OrderStatus::Paid,
            "fulfilled" => OrderStatus::Fulfilled,
            "cancelled" | "canceled" => OrderStatus::Cancelled,
            "refunded" => OrderStatus::Refunded,
            "partially_refunded" => OrderStatus::PartiallyRefunded,
            other => {
                return Err(fe("status")(format!(
                    "unknown value {other:?} (expected open, paid, fulfilled, cancelled, refunded, partially_refunded)"
                )))
            }
        },
        None if refunded > Decimal::ZERO && refunded >= amount => OrderStatus::Refunded,
        None if refunded > Decimal::ZERO => OrderStatus::PartiallyRefunded,
        None => OrderStatus::Paid,
    };
    check_status(status, refund_given, refunded, amount).map_err(fe("status"))?;

    let mut attribution = Attribution::default();
    for c in get("click_ids").list().map_err(fe("click_ids"))? {
        attribution.add_click_id(&c);
    }
    let utm = Utm {
        source: get("utm_source")
            .text()
            .map_err(fe("utm_source"))?
            .map(str::to_owned),
        medium: get("utm_medium")
            .text()
            .map_err(fe("utm_medium"))?
            .map(str::to_owned),
        campaign: get("utm_campaign")
            .text()
            .map_err(fe("utm_campaign"))?
            .map(str::to_owned),
        content: get("utm_content")
            .text()
            .map_err(fe("utm_content"))?
            .map(str::to_owned),
        term: get("utm_term")
            .text()
            .map_err(fe("utm_term"))?
            .map(str::to_owned),
    };
    let mut alt_ids = get("alt_ids").list().map_err(fe("alt_ids"))?;
    alt_ids.retain(|a| a != &order_id);
    alt_ids.dedup();

    Ok(Order {
        source: String::new(),
        order_id,
        alt_ids,
        created_at,
        amount: Money::new(amount, currency),
        customer_id: get("customer_id").id().map_err(fe("customer_id"))?,
        new_customer: get("new_customer").boolean().map_err(fe("new_customer"))?,
        coupon: get("coupon")
            .text()
            .map_err(fe("coupon"))?
            .map(str::to_owned),
        click_ids: attribution.click_ids,
        utm,
        refunds,
        status,
    })
}

/// One refund against its order: not negative, not more than the order,
/// not before the order was created. `Err((field, message))`.
fn check_refund(
    refund: Decimal,
    at: DateTime<Utc>,
    amount: Decimal,
    created_at: DateTime<Utc>,
) -> Result<(), (&'static str, String)> {
    if refund < Decimal::ZERO {
        return Err((
            "refund_amount",
            format!("refund {refund} is negative; give the refunded amount as a positive number"),
        ));
    }
    if refund > amount {
        return Err((
            "refund_amount",
            format!("refund {refund} is more than the order amount {amount}"),
        ));
    }
    if at < created_at {
        return Err((
            "refunded_at",
            format!(
                "refund time {} is before the order was created ({})",
                at.to_rfc3339(),
                created_at.to_rfc3339()
            ),
        ));
    }
    Ok(())
}

/// An amount with more decimals than its currency has (JPY 10.5) is an
/// error: the currency has no such amount, so the value is mistyped or in
/// another currency. Trailing zeros do not count (`10.00` JPY is 10).
pub(crate) fn check_decimals(value: Decimal, currency: &str, digits: u32) -> Result<(), String> {
    if value.normalize().scale() > digits {
        return Err(format!(
            "{value} has more decimals than {currency} has ({digits}); check the amount and the currency"
        ));
    }
    Ok(())
}

/// A status that contradicts the row's refunds is an error (which one is
/// right is unknown, and reconciliation reverses a commission on either a
/// `refunded` status or a full refund):
/// - `refunded` with refunds given (an explicit 0 included) that total less
///   than the amount (`refunded` with no refund at all is a full refund);
/// - `partially_refunded` without refunds between zero and the amount;
/// - `open`, `paid` or `fulfilled` with refunds totalling the whole amount.
///
/// A partial refund on an `open`, `paid` or `fulfilled` order is accepted
/// (a fulfilled order may be partly refunded), and so is anything
/// `cancelled`.
fn check_status(
    status: OrderStatus,
    refund_given: bool,
    refunded: Decimal,
    amount: Decimal,
) -> Result<(), String> {
    let full = refunded > Decimal::ZERO && refunded >= amount;
    match status {
        OrderStatus::Refunded if refund_given && refunded < amount => Err(format!(
            "status refunded, but the refunds total {refunded} of the order amount {amount}: \
             give the whole refund, or status partially_refunded (or leave the status empty)"
        )),
        OrderStatus::PartiallyRefunded if refunded == Decimal::ZERO || full => Err(format!(
            "status partially_refunded, but the refunds total {refunded} of the order amount \
             {amount}: give the refunded part in refund_amount (or leave the status empty)"
        )),
        OrderStatus::Open | OrderStatus::Paid | OrderStatus::Fulfilled if full => Err(format!(
            "status {}, but the order is refunded in full ({refunded} of {amount}): \
             write status refunded (or leave it empty)",
            status_name(status)
        )),
        _ => Ok(()),
    }
}

fn status_name(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Open => "open",
        OrderStatus::Paid => "paid",
        OrderStatus::Fulfilled => "fulfilled",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Refunded => "refunded",
        OrderStatus::PartiallyRefunded => "partially_refunded",
    }
}

/// An order id seen earlier in the same file: the error message, naming
/// both lines (nothing of the file is stored). Ids are compared trimmed
/// and case-folded, as reconciliation matches them, so `A-1` and `a-1 `
/// are the same order.
fn repeated(
    seen: &mut std::collections::HashMap<String, (u64, String)>,
    id: &str,
    line: u64,
) -> Option<String> {
    let key: String = id.trim().chars().flat_map(char::to_lowercase).collect();
    seen.insert(key, (line, id.to_owned()))
        .map(|(first, first_id)| {
            if first_id == id {
                format!(
                    "order id `{id}` appears twice in this file (lines {first} and {line}); \
                 give each order once per file"
                )
            } else {
                format!(
                    "order id `{id}` (line {line}) is order `{first_id}` of line {first}: \
                 ids are matched trimmed and case-folded; give each order once per file"
                )
            }
        })
}

fn column_index(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| *c == name)
}

/// Parses a CSV file with a header row naming the columns above.
pub fn parse_csv(name: &str, bytes: &[u8], settings: &Settings) -> Result<Vec<Order>, FileError> {
    let err = |line: u64,
               column: Option<u64>,
               field: Option<&str>,
               order_id: Option<&str>,
               message: String| FileError {
        file: name.to_owned(),
        line,
        column,
        field: field.map(str::to_owned),
        order_id: order_id.map(str::to_owned),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| err(1, None, None, None, format!("unreadable header row: {e}")))?
        .clone();
    let first = headers
        .get(0)
        .unwrap_or_default()
        .trim_start_matches('\u{feff}');
    // `get`, not `[..4]`: byte 4 may fall inside a character (`Numéro`, QA24 F5).
    if first
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("sep="))
    {
        // Excel's separator line (`sep=;`) before the header (QA8 F4).
        let line: Vec<&str> = headers.iter().collect();
        return Err(err(
            1,
            None,
            None,
            None,
            format!(
                "the first line `{}` is Excel's separator line, not the header row: remove it; \
                 columns must be separated by commas (save the file as comma-separated CSV)",
                line.join(",").trim_start_matches('\u{feff}')
            ),
        ));
    }
    if let Some(sep) = headers.iter().find_map(other_separator) {
        return Err(err(
            1,
            None,
            None,
            None,
            format!(
                "the header row is separated by {sep}: columns must be separated by commas \
                 (save the file as comma-separated CSV)"
            ),
        ));
    }
    // slot[i] = position of COLUMNS[i] in the file.
    let mut slot: [Option<usize>; 17] = [None; 17];
    for (pos, h) in headers.iter().enumerate() {
        let h = h.trim_start_matches('\u{feff}');
        match column_index(h) {
            Some(i) if slot[i].is_some() => {
                return Err(err(
                    1,
                    Some(pos as u64 + 1),
                    Some(h),
                    None,
                    "column appears twice".into(),
                ))
            }
            Some(i) => slot[i] = Some(pos),
            None => {
                return Err(err(
                    1,
                    Some(pos as u64 + 1),
                    Some(h),
                    None,
                    format!("unknown column (expected some of: {})", COLUMNS.join(", ")),
                ))
            }
        }
    }
    for required in ["order_id", "created_at", "amount"] {
        if slot[column_index(required).unwrap_or(0)].is_none() {
            return Err(err(
                1,
                None,
                Some(required),
                None,
                "required column is missing from the header".into(),
            ));
        }
    }

    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(err(line, None, None, None, format!("malformed CSV: {e}")));
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let get = |field: &'static str| -> Raw<'_> {
            match column_index(field)
                .and_then(|i| slot[i])
                .and_then(|p| record.get(p))
            {
                Some(s) => Raw::Text(s),
                None => Raw::Missing,
            }
        };
        match build_order(get, None, settings) {
            Ok(o) => {
                if let Some(m) = repeated(&mut seen, &o.order_id, line) {
                    let col = slot[0].map(|p| p as u64 + 1);
                    return Err(err(line, col, Some("order_id"), Some(&o.order_id), m));
                }
                out.push(o)
            }
            Err(e) => {
                let col = column_index(e.field)
                    .and_then(|i| slot[i])
                    .map(|p| p as u64 + 1);
                let id = slot[0]
                    .and_then(|p| record.get(p))
                    .filter(|s| !s.is_empty());
                return Err(err(line, col, Some(e.field), id, e.message));
            }
        }
    }
    Ok(out)
}

/// Parses a JSONL file: one JSON object per line with the keys above
/// (plus `refunds: [{"amount", "at"}]`); blank lines are skipped.
pub fn parse_jsonl(name: &str, bytes: &[u8], settings: &Settings) -> Result<Vec<Order>, FileError> {
    let err = |line: u64,
               column: Option<u64>,
               field: Option<&str>,
               order_id: Option<String>,
               message: String| FileError {
        file: name.to_owned(),
        line,
        column,
        field: field.map(str::to_owned),
        order_id,
        message,
    };
    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, raw_line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let text = std::str::from_utf8(raw_line).map_err(|e| {
            err(
                line_no,
                Some(e.valid_up_to() as u64 + 1),
                None,
                None,
                "not UTF-8".into(),
            )
        })?;
        let text = text.trim_end_matches('\r');
        // A byte-order mark (Windows editors write one) is not content,
        // as in the CSV reader.
        let text = if i == 0 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        if text.trim().is_empty() {
            continue;
        }
        if !text.trim_start().starts_with('{') {
            return Err(err(
                line_no,
                Some(1),
                None,
                None,
                "expected a JSON object per line".into(),
            ));
        }
        // Every key kept: a repeated one is refused below, not overwritten.
        let pairs = json_object::entries(text).map_err(|e| {
            err(
                line_no,
                Some(e.column() as u64),
                None,
                None,
                format!("malformed JSON: {e}"),
            )
        })?;
        // The same pairs as written: amounts sent as JSON numbers are read
        // from their literal (QA6 F4: `12345678901234567.89` became
        // `12345678901234568` through f64, and `1e3` passed).
        let literals: std::collections::HashMap<String, &RawValue> = json_object::raw_entries(text)
            .map_err(|e| {
                err(
                    line_no,
                    Some(e.column() as u64),
                    None,
                    None,
                    format!("malformed JSON: {e}"),
                )
            })?
            .into_iter()
            .collect();
        // Column of the `nth` occurrence of a key.
        let key_column_nth = |key: &str, nth: usize| -> Option<u64> {
            text.match_indices(&format!("\"{key}\""))
                .nth(nth)
                .map(|(b, _)| text[..b].chars().count() as u64 + 1)
        };
        let key_column = |key: &str| key_column_nth(key, 0);
        let repeat = plugin_api::json_object::first_repeat(&pairs)
            .map(|(k, first, second)| (k.to_owned(), first, second));
        let obj: Map<String, Value> = pairs.into_iter().collect();
        let id = obj
            .get("order_id")
            .and_then(|v| Raw::Json(v).id().ok().flatten());
        if let Some((key, _, _)) = repeat {
            return Err(err(
                line_no,
                key_column_nth(&key, 1),
                Some(&key),
                id,
                format!(
                    "key `{key}` appears twice in this line; which value is meant is unknown: give it once"
                ),
            ));
        }
        for k in obj.keys() {
            if column_index(k).is_none() && k != "refunds" && k != "utm" {
                return Err(err(
                    line_no,
                    key_column(k),
                    Some(k),
                    id,
                    format!(
                        "unknown key (expected some of: {}, refunds, utm)",
                        COLUMNS.join(", ")
                    ),
                ));
            }
        }
        let utm = obj.get("utm");
        let get = |field: &'static str| -> Raw<'_> {
            if let Some(v) = obj.get(field) {
                return Raw::json(v, literals.get(field).copied());
            }
            if let (Some(u), Some(short)) = (utm, field.strip_prefix("utm_")) {
                if let Some(v) = u.get(short) {
                    return Raw::Json(v);
                }
            }
            Raw::Missing
        };
        let refunds = obj
            .get("refunds")
            .map(|v| (v, literals.get("refunds").copied()));
        match build_order(get, refunds, settings) {
            Ok(o) => {
                if let Some(m) = repeated(&mut seen, &o.order_id, line_no) {
                    return Err(err(
                        line_no,
                        key_column("order_id"),
                        Some("order_id"),
                        Some(o.order_id),
                        m,
                    ));
                }
                out.push(o)
            }
            Err(e) => {
                return Err(err(
                    line_no,
                    key_column(e.field),
                    Some(e.field),
                    id,
                    e.message,
                ))
            }
        }
    }
    Ok(out)
}
