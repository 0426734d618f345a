//! One CAKE `event_conversion` (JSON, inside `{"d": ...}`) into a canonical
//! [`Conversion`], plus CAKE's envelope, dates and currency ids.
//!
//! - Dates: the reference calls CAKE's JSON date format inferred and an open
//!   question, so two shapes are read ([`date_time`]): ASP.NET
//!   `"/Date(1425337200000)/"` strings (epoch milliseconds, optionally
//!   followed by an offset such as `-0500`, which does not change the
//!   instant), and ISO-like text such as `2015-03-02T13:04:27.567` (any
//!   fraction or none, `T` or a space). ISO text with an offset (`Z`,
//!   `-05:00`, `-0500`) is that instant. ISO text **without** an offset is
//!   the CAKE instance's own time (CAKE reports in instance time): it is
//!   read in the `instance_timezone` setting, and without that setting it
//!   is refused with [`PageError::NeedsTimezone`], never taken as UTC (which
//!   would shift every time by the instance's offset). A date without a
//!   time is not a conversion time and is refused.
//! - Money is `paid{currency_id, amount}` (what the affiliate earns: the
//!   commission) and `received{currency_id, amount}` (what the network is
//!   paid: revenue). `currency_id` is CAKE's numeric id, mapped to ISO-4217
//!   through the `Currencies` lookup. **No sale amount**: the reference's
//!   record has no order or sale total, so `sale_amount` stays empty and
//!   reconciliation matches CAKE claims without an amount check (the
//!   order's amount is the basis). Only an instance that does send an
//!   `order_total` field (not in the reference) gets it as the sale amount,
//!   in `received`'s currency.
//! - Status comes from `current_disposition.disposition_type
//!   .disposition_type_name`: approved → approved, pending → pending,
//!   rejected → rejected, returned → reversed; no disposition → the
//!   configured `no_disposition_status`.
//! - Ids: `event_conversion_id` is the key, `transaction_id` (the
//!   advertiser's `#tid#`) the order id, `click_request_session_id` (CAKE's
//!   request session, `#reqid#`) the click id. Every id is read with
//!   [`Scalar::id`]: `201`, `"201"` and `201.0` are the same id, and a
//!   number with a fraction is refused (QA35d M3).
//! - Amounts (QA35d M1): `paid` is on every record the reference lists (the
//!   affiliate's payout, 0 when none), so a record without it, or whose
//!   `paid.amount` is `null`, `""` or a placeholder, fails its page naming
//!   the record and field; read as unknown it would erase a commission
//!   already stored. `order_total`, which the reference does not list, may
//!   be absent; sent empty (`null`, `""`) it leaves the sale amount unknown
//!   and the page carries a warning naming the records ([`Page::warnings`]).
//! - Shapes: the answer must hold `d.event_conversions` (an answer without
//!   it is not an empty page: QA35d H1), and the objects a record is read
//!   from (`paid`, `received`, `source_affiliate`, `site_offer`,
//!   `current_disposition`, its `disposition_type`, `event_info`) must be
//!   objects; another shape is an error naming the field and what it got
//!   (QA35d L1).

use chrono_tz::Tz;
use plugin_api::chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use plugin_api::lenient::Scalar;
use plugin_api::parse;
use plugin_api::serde_json::Value;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use serde::de::Deserializer;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Why a page (or one of its rows) could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// The answer, a row or a field is malformed, or CAKE answered
    /// `success: false`; the message names the record and field.
    Malformed(String),
    /// A date-time without a UTC offset while the `instance_timezone`
    /// setting is not set: the fix is that setting, not the data.
    NeedsTimezone(String),
}

impl PageError {
    /// The same error with `prefix` (e.g. the record) before its message.
    fn within(self, prefix: &str) -> PageError {
        match self {
            PageError::Malformed(m) => PageError::Malformed(format!("{prefix}{m}")),
            PageError::NeedsTimezone(m) => PageError::NeedsTimezone(format!("{prefix}{m}")),
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::Malformed(m) | PageError::NeedsTimezone(m) => f.write_str(m),
        }
    }
}

impl From<String> for PageError {
    fn from(m: String) -> Self {
        PageError::Malformed(m)
    }
}

impl From<&str> for PageError {
    fn from(m: &str) -> Self {
        PageError::Malformed(m.to_owned())
    }
}

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

/// Parses a CAKE date-time to UTC: `/Date(ms)/` ([`aspnet_date`]), or ISO
/// text with an offset, or ISO text without one read in `instance_tz` (the
/// instance's time zone; [`PageError::NeedsTimezone`] when it is not
/// configured). A local time that falls twice (the hour a DST change repeats)
/// is taken as the earlier instant; one that does not exist (skipped by a DST
/// change) is an error.
pub fn date_time(s: &str, instance_tz: Option<Tz>) -> Result<DateTime<Utc>, PageError> {
    let t = s.trim();
    if t.starts_with("/Date(") {
        return aspnet_date(t).map_err(PageError::Malformed);
    }
    let not_a_date = || {
        PageError::Malformed(format!(
            "{s:?} is neither a /Date(ms)/ date nor an ISO date-time (YYYY-MM-DDThh:mm:ss[.fff][offset])"
        ))
    };
    // `2015-03-02 13:04:27` reads like `2015-03-02T13:04:27`.
    let iso: String = match t.as_bytes().get(10) {
        Some(b' ') => format!("{}T{}", &t[..10], &t[11..]),
        _ => t.to_owned(),
    };
    if let Ok(d) = DateTime::parse_from_rfc3339(&iso) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_str(&iso, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(d.with_timezone(&Utc));
    }
    let local =
        NaiveDateTime::parse_from_str(&iso, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| not_a_date())?;
    let Some(tz) = instance_tz else {
        return Err(PageError::NeedsTimezone(format!(
            "{s:?} has no UTC offset, and CAKE gives such times in the instance's own time zone, \
             which is not configured: set `instance_timezone` in the connector's settings to the \
             instance's IANA time zone (e.g. \"America/New_York\"); the time is never read as UTC"
        )));
    };
    tz.from_local_datetime(&local)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| {
            PageError::Malformed(format!(
                "{s:?} does not exist in {} (a time skipped by a daylight-saving change)",
                tz.name()
            ))
        })
}

fn opt_date(
    v: &Scalar<'_>,
    field: &str,
    instance_tz: Option<Tz>,
) -> Result<Option<DateTime<Utc>>, PageError> {
    match v {
        Scalar::Null => Ok(None),
        Scalar::Str(s) if s.is_empty() => Ok(None),
        Scalar::Str(s) => date_time(s, instance_tz)
            .map(Some)
            .map_err(|e| e.within(&format!("field `{field}`: "))),
        _ => Err(PageError::Malformed(format!(
            "field `{field}`: expected a /Date(ms)/ or ISO date-time string"
        ))),
    }
}

/// Reads a field that may be absent as `Some` whenever it is sent, `null`
/// included (`Option<Scalar>` alone reads `null` as absent).
fn sent<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Scalar<'a>>, D::Error> {
    Scalar::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
struct Outer<'a> {
    #[serde(borrow, default, deserialize_with = "plugin_api::lenient::object")]
    d: Option<Inner<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Inner<'a> {
    #[serde(borrow)]
    success: Scalar<'a>,
    #[serde(borrow)]
    message: Scalar<'a>,
    #[serde(borrow)]
    row_count: Scalar<'a>,
    #[serde(borrow)]
    event_conversions: Option<Vec<Row<'a>>>,
}

/// One event conversion; fields not read here are skipped unparsed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Row<'a> {
    #[serde(borrow)]
    event_conversion_id: Scalar<'a>,
    #[serde(borrow)]
    event_conversion_date: Scalar<'a>,
    #[serde(borrow)]
    last_updated: Scalar<'a>,
    #[serde(borrow)]
    click_date: Scalar<'a>,
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    source_affiliate: Option<Affiliate<'a>>,
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    site_offer: Option<Offer<'a>>,
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    paid: Option<Amount<'a>>,
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    received: Option<Amount<'a>>,
    /// `None` when not sent, `Some(Scalar::Null)` when sent as `null`.
    #[serde(borrow, deserialize_with = "sent")]
    order_total: Option<Scalar<'a>>,
    #[serde(borrow)]
    transaction_id: Scalar<'a>,
    #[serde(borrow)]
    click_request_session_id: Scalar<'a>,
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    current_disposition: Option<Disposition<'a>>,
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    event_info: Option<EventInfo<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Affiliate<'a> {
    #[serde(borrow)]
    source_affiliate_id: Scalar<'a>,
    #[serde(borrow)]
    source_affiliate_name: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Offer<'a> {
    #[serde(borrow)]
    site_offer_id: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Amount<'a> {
    #[serde(borrow)]
    currency_id: Scalar<'a>,
    #[serde(borrow)]
    amount: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Disposition<'a> {
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    disposition_type: Option<DispositionType<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DispositionType<'a> {
    #[serde(borrow)]
    disposition_type_name: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EventInfo<'a> {
    #[serde(borrow)]
    event_name: Scalar<'a>,
}

/// What a [`Scalar`] that holds no value was sent as, for an error.
fn empty_shape(v: &Scalar<'_>) -> String {
    match v {
        Scalar::Str(s) => format!("{s:?}"),
        _ => "missing or null".into(),
    }
}

/// The ISO code of CAKE currency id `v` (field `field`).
fn currency(v: &Scalar<'_>, field: &str, currencies: &Currencies) -> Result<String, String> {
    let id = v
        .integer(field)?
        .ok_or_else(|| format!("field `{field}` is missing"))?;
    currencies
        .get(&id)
        .cloned()
        .ok_or_else(|| format!("field `{field}`: {id} is not in the Currencies lookup"))
}

/// The commission: `paid{currency_id, amount}`, on every record the
/// reference lists (0 when the affiliate earns nothing). Missing, or an
/// amount that is `null`, `""` or a placeholder, is an error naming the
/// field: read as unknown it would erase a commission already stored
/// (QA35d M1).
fn paid(v: Option<&Amount<'_>>, currencies: &Currencies) -> Result<Money, String> {
    let obj = v.ok_or(
        "field `paid` is missing or null: CAKE sends every conversion's payout as \
         `paid{currency_id, amount}`; the commission is not stored as unknown",
    )?;
    let amount = obj.amount.decimal("paid.amount")?.ok_or_else(|| {
        format!(
            "field `paid.amount` is {}: CAKE sends every conversion's payout as a number \
             (0 when none); the commission is not stored as unknown",
            empty_shape(&obj.amount)
        )
    })?;
    Ok(Money::new(
        amount,
        currency(&obj.currency_id, "paid.currency_id", currencies)?,
    ))
}

/// The dispositions CAKE documents (`UpdateConversionEvents`), as they are
/// listed in an error.
const DISPOSITIONS: &str = "Approved, Pending, Rejected or Returned (any case), or none";

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
        _ => Err(format!(
            "field `current_disposition.disposition_type.disposition_type_name`: unknown value \
             {name:?} (expected {DISPOSITIONS})"
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

/// Converts one row; the error names the field. `warnings` gets the
/// fields the row sent empty that are read as unknown.
fn to_conversion(
    row: &Row<'_>,
    currencies: &Currencies,
    undispositioned: ConversionStatus,
    instance_tz: Option<Tz>,
    warnings: &mut Vec<&'static str>,
) -> Result<Record, PageError> {
    let aff = row.source_affiliate.as_ref();
    let disposition = row
        .current_disposition
        .as_ref()
        .and_then(|d| d.disposition_type.as_ref())
        .and_then(|t| t.disposition_type_name.text());
    let event_name = row
        .event_info
        .as_ref()
        .and_then(|e| e.event_name.string())
        .unwrap_or_default();
    // Not in the reference's record (which has no sale amount at all): read
    // only where an instance sends it, in `received`'s currency. Sent empty,
    // the sale amount is unknown, and the caller warns.
    let sale_amount = match &row.order_total {
        None => None,
        Some(total) => match total.decimal("order_total")? {
            None => {
                warnings.push("order_total");
                None
            }
            Some(a) => {
                let received = row.received.as_ref().ok_or(
                    "field `order_total` has an amount but field `received` (its currency) is missing",
                )?;
                Some(Money::new(
                    a,
                    currency(&received.currency_id, "received.currency_id", currencies)?,
                ))
            }
        },
    };
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: row
            .event_conversion_id
            .id("event_conversion_id")?
            .ok_or("field `event_conversion_id` is missing")?,
        order_id: row.transaction_id.id("transaction_id")?,
        click_id: row
            .click_request_session_id
            .id("click_request_session_id")?,
        clicked_at: opt_date(&row.click_date, "click_date", instance_tz)?,
        partner_id: aff
            .map(|a| {
                a.source_affiliate_id
                    .id("source_affiliate.source_affiliate_id")
            })
            .transpose()?
            .flatten()
            .ok_or("field `source_affiliate.source_affiliate_id` is missing")?,
        partner_name: aff.and_then(|a| a.source_affiliate_name.string()),
        campaign_id: row
            .site_offer
            .as_ref()
            .map(|o| o.site_offer_id.id("site_offer.site_offer_id"))
            .transpose()?
            .flatten(),
        event_type: event_type(&event_name),
        occurred_at: opt_date(
            &row.event_conversion_date,
            "event_conversion_date",
            instance_tz,
        )?
        .ok_or("field `event_conversion_date` is missing")?,
        sale_amount,
        commission: Some(paid(row.paid.as_ref(), currencies)?),
        status: status(disposition.as_deref(), undispositioned)?,
        status_changed_at: opt_date(&row.last_updated, "last_updated", instance_tz)?,
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

/// The objects a record is read from, and what each holds.
const ROW_OBJECTS: &[(&str, &str)] = &[
    ("paid", "{currency_id, amount}"),
    ("received", "{currency_id, amount}"),
    (
        "source_affiliate",
        "{source_affiliate_id, source_affiliate_name}",
    ),
    ("site_offer", "{site_offer_id, ...}"),
    ("current_disposition", "{disposition_type, ...}"),
    (
        "current_disposition.disposition_type",
        "{disposition_type_name, ...}",
    ),
    ("event_info", "{event_name, ...}"),
];

/// The first of [`ROW_OBJECTS`] that `row` holds with another shape than an
/// object (null stands for absent), as an error naming it.
fn not_an_object(row: &Value) -> Option<String> {
    ROW_OBJECTS.iter().find_map(|(path, holds)| {
        let found = path
            .split('.')
            .try_fold(row, |at, k| at.get(k).filter(|x| !x.is_null()))?;
        (!found.is_object()).then(|| {
            format!(
                "field `{path}`: expected an object {holds}, got {}",
                plugin_api::lenient::shape(found)
            )
        })
    })
}

/// Which record of a page serde could not read, for the error message: the
/// field of a wrong shape when it is one of the objects read (serde names
/// only the type it expected: `expected struct Amount`), else serde's
/// reason.
fn locate(body: &[u8], e: &plugin_api::serde_json::Error) -> String {
    let Ok(v) = plugin_api::serde_json::from_slice::<Value>(body) else {
        return format!("malformed JSON: {e}");
    };
    let d = v.get("d").filter(|d| !d.is_null());
    if let Some(d) = d.filter(|d| !d.is_object()) {
        return format!(
            "field `d`: expected an object, got {}",
            plugin_api::lenient::shape(d)
        );
    }
    match d.and_then(|d| d.get("event_conversions")) {
        None | Some(Value::Null | Value::Array(_)) => {}
        Some(other) => {
            return format!(
                "field `d.event_conversions`: expected an array of event conversions, got {}",
                plugin_api::lenient::shape(other)
            )
        }
    }
    if let Some(rows) = d
        .and_then(|d| d.get("event_conversions"))
        .and_then(Value::as_array)
    {
        for (i, r) in rows.iter().enumerate() {
            let n = i + 1;
            if !r.is_object() {
                return format!(
                    "record {n}: expected an object, got {}",
                    plugin_api::lenient::shape(r)
                );
            }
            let id = r
                .get("event_conversion_id")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into());
            if let Some(m) = not_an_object(r) {
                return format!("record {n} (event_conversion_id {id}): {m}");
            }
            // Scalar fields need the row's text (see `lenient::record_error`).
            let text = r.to_string();
            if let Some(re) = plugin_api::lenient::record_error::<Row>(&text) {
                return format!("record {n} (event_conversion_id {id}): {re}");
            }
        }
    }
    format!("unexpected answer shape: {e}")
}

/// The keys of the answer's `d` object, for an error about a missing one
/// (a renamed key shows there).
fn d_keys(body: &[u8]) -> String {
    let v = plugin_api::serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let names: Vec<_> = (v.get("d").and_then(Value::as_object).into_iter().flatten())
        .map(|(k, _)| format!("`{}`", plugin_api::validate::escape_controls(k)))
        .collect();
    format!("`d` has: {}", names.join(", "))
}

/// A page of `EventConversions` / `EventConversionChanges`, read.
#[derive(Debug)]
pub struct Page {
    /// The total `row_count` when CAKE sends one (the reference documents
    /// it for `EventConversions` only; `None` when absent, never read as 0).
    pub total: Option<u64>,
    /// The records, in the answer's order.
    pub records: Vec<Record>,
    /// Fields the page sent empty (`null`, `""`) that are optional and so
    /// read as unknown, each with the `event_conversion_id`s of its
    /// records: the caller logs them as a warning, so a drift (a field that
    /// used to carry a value) is visible.
    pub warnings: Warnings,
}

/// Optional fields sent empty, each with the keys of its records.
pub type Warnings = BTreeMap<&'static str, Vec<String>>;

/// Parses an `EventConversions` / `EventConversionChanges` answer.
/// Date-times without an offset are read in `instance_tz`. The error names
/// the record and field. An answer without `d.event_conversions` (renamed,
/// or another answer sent with HTTP 200) is an error, never an empty page:
/// read as one, the changes stream (which has no `row_count`) ended as
/// complete and a reversal was never stored (QA35d H1).
pub fn parse_page(
    body: &[u8],
    currencies: &Currencies,
    undispositioned: ConversionStatus,
    instance_tz: Option<Tz>,
) -> Result<Page, PageError> {
    let outer: Outer<'_> =
        plugin_api::serde_json::from_slice(body).map_err(|e| locate(body, &e))?;
    let d = outer.d.ok_or("the answer has no `d` object")?;
    if d.success.as_bool() == Some(false) {
        return Err(PageError::Malformed(format!(
            "CAKE answered success=false: {}",
            d.message.string().unwrap_or_else(|| "(no message)".into())
        )));
    }
    let total = match d.row_count.integer("row_count")? {
        None => None,
        Some(n) => {
            Some(u64::try_from(n).map_err(|_| format!("field `row_count`: {n} is negative"))?)
        }
    };
    let Some(rows) = d.event_conversions else {
        let count = total.map_or(String::new(), |t| format!("row_count is {t}; "));
        return Err(PageError::Malformed(format!(
            "the answer has no `d.event_conversions` array (not a page of event conversions; \
             {count}{})",
            d_keys(body)
        )));
    };
    let mut records = Vec::with_capacity(rows.len());
    let mut warnings = Warnings::new();
    for (i, row) in rows.iter().enumerate() {
        let mut empty = Vec::new();
        let record = to_conversion(row, currencies, undispositioned, instance_tz, &mut empty)
            .map_err(|e| {
                let id = row
                    .event_conversion_id
                    .string()
                    .unwrap_or_else(|| "?".into());
                e.within(&format!(
                    "record {n} (event_conversion_id {id}): ",
                    n = i + 1
                ))
            })?;
        for field in empty {
            warnings.entry(field).or_default().push(record.key());
        }
        records.push(record);
    }
    Ok(Page {
        total,
        records,
        warnings,
    })
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
