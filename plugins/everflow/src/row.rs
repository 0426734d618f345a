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
//!
//! Ids (`conversion_id`, `transaction_id`, `order_id`, the affiliate's and
//! the offer's) are read with [`Scalar::id`]: `11`, `"11"` and `11.0` are
//! the same id `"11"`, and a number with a fraction or exponent is refused
//! (QA35d M3: `network_affiliate_id` drifting to `11.0` made a new payee).
//!
//! Amounts: the reference types `payout` and `sale_amount` as numbers on
//! every raw conversion (0 when there is none), so a row whose `payout` or
//! `sale_amount` is missing, `null`, `""` or another placeholder fails its
//! page naming the record and the field, rather than turn a stored amount
//! into unknown (QA35d M1). `sale_amount` 0 is "no sale amount".
//!
//! Shapes: the answer must hold a `conversions` array (a page without one is
//! not an empty page: QA35d H1), and the objects the row is read from
//! (`paging`, `relationship`, `relationship.affiliate`, `relationship.offer`,
//! `query_parameters`) must be objects: serde would read a struct from an
//! array element by element, so `[{...}]` or `[7, "Aff"]` are refused, and
//! the error names the field and what it got (QA35d L1).

use plugin_api::currency;
use plugin_api::lenient::Scalar;
use plugin_api::parse;
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::Value;
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

    /// How many rows page `requested` holds by `total_count` and
    /// `page_size`: a full page, the rest on the last one, 0 past the end.
    pub fn rows_on(&self, requested: u64) -> u64 {
        let before = requested.saturating_sub(1).saturating_mul(self.page_size);
        self.total_count.saturating_sub(before).min(self.page_size)
    }
}

#[derive(Debug, Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    conversions: Option<Vec<Row<'a>>>,
    #[serde(borrow, default, deserialize_with = "plugin_api::lenient::object")]
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
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    query_parameters: Option<Utms<'a>>,
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
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
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
    affiliate: Option<Party<'a>>,
    #[serde(borrow, deserialize_with = "plugin_api::lenient::object")]
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

/// An amount Everflow sends on every raw conversion (`payout`,
/// `sale_amount`: a number, 0 when there is none). Missing, `null`, `""` or
/// a placeholder is an error naming the field: read as unknown, it would
/// silently replace an amount already stored (QA35d M1).
fn amount(v: &Scalar<'_>, field: &str) -> Result<Decimal, String> {
    v.decimal(field)?.ok_or_else(|| {
        let got = match v {
            Scalar::Str(s) => format!("{s:?}"),
            _ => "missing or null".into(),
        };
        format!(
            "field `{field}` is {got}: Everflow sends it on every raw conversion as a number \
             (0 when there is none); the amount is not stored as unknown"
        )
    })
}

/// Converts one row; the error names the field.
fn to_conversion(row: &Row<'_>) -> Result<Record, String> {
    let rel = row.relationship.as_ref();
    let affiliate = rel.and_then(|r| r.affiliate.as_ref());
    let offer = rel.and_then(|r| r.offer.as_ref());
    // The affiliate and offer are documented under `relationship`; a flat
    // `network_affiliate_id` / `network_offer_id` is read when it is not.
    let partner_id = match affiliate
        .map(|a| {
            a.network_affiliate_id
                .id("relationship.affiliate.network_affiliate_id")
        })
        .transpose()?
        .flatten()
    {
        Some(id) => id,
        None => row
            .network_affiliate_id
            .id("network_affiliate_id")?
            .ok_or("field `relationship.affiliate.network_affiliate_id` is missing")?,
    };
    let campaign_id = match offer
        .map(|o| o.network_offer_id.id("relationship.offer.network_offer_id"))
        .transpose()?
        .flatten()
    {
        Some(id) => Some(id),
        None => row.network_offer_id.id("network_offer_id")?,
    };
    let payout = amount(&row.payout, "payout")?;
    let sale = Some(amount(&row.sale_amount, "sale_amount")?).filter(|a| !a.is_zero());
    // Every row has a payout, so every row needs its currency.
    let currency = row
        .currency_id
        .text()
        .ok_or("field `currency_id` is missing but the row has amounts")?
        .to_ascii_uppercase();
    if !currency::is_known(&currency) {
        return Err(format!(
            "field `currency_id`: {currency:?} is not an ISO-4217 code"
        ));
    }
    let utm = row.query_parameters.as_ref();
    let u = |f: for<'r> fn(&'r Utms<'r>) -> &'r Scalar<'r>| utm.and_then(|q| f(q).string());
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: row
            .conversion_id
            .id("conversion_id")?
            .ok_or("field `conversion_id` is missing")?,
        order_id: row.order_id.id("order_id")?,
        click_id: row.transaction_id.id("transaction_id")?,
        clicked_at: epoch(&row.click_unix_timestamp, "click_unix_timestamp")?,
        partner_id,
        partner_name: affiliate.and_then(|a| a.name.string()),
        campaign_id,
        event_type: if is_event(row.event.text().as_deref(), row.is_event.flag("is_event")?)? {
            EventType::Other
        } else {
            EventType::Sale
        },
        occurred_at: epoch(&row.conversion_unix_timestamp, "conversion_unix_timestamp")?
            .ok_or("field `conversion_unix_timestamp` is missing")?,
        sale_amount: sale.map(|a| Money::new(a, &currency)),
        commission: Some(Money::new(payout, &currency)),
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

/// The first of `fields` (dotted paths) that `v` holds with another shape
/// than an object (null stands for absent), as an error naming it.
fn not_an_object(v: &Value, fields: &[&str]) -> Option<String> {
    fields.iter().find_map(|path| {
        let found = path
            .split('.')
            .try_fold(v, |at, k| at.get(k).filter(|x| !x.is_null()))?;
        (!found.is_object()).then(|| {
            format!(
                "field `{path}`: expected an object, got {}",
                plugin_api::lenient::shape(found)
            )
        })
    })
}

/// The keys of an answer's top-level object, for an error about a missing
/// one: ``its keys: `data`, `paging` `` (a renamed key shows there).
fn keys(body: &[u8]) -> String {
    let v = plugin_api::serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let names: Vec<_> = (v.as_object().into_iter().flatten())
        .map(|(k, _)| format!("`{}`", plugin_api::validate::escape_controls(k)))
        .collect();
    format!("its keys: {}", names.join(", "))
}

/// The objects a row is read from.
const ROW_OBJECTS: &[&str] = &[
    "relationship",
    "relationship.affiliate",
    "relationship.offer",
    "query_parameters",
];

/// Which record of a page serde could not read, for the error message: the
/// field of a wrong shape when it is one of the objects read (serde names
/// only the type it expected), else serde's reason.
fn locate(body: &[u8], e: &plugin_api::serde_json::Error) -> String {
    let Ok(v) = plugin_api::serde_json::from_slice::<Value>(body) else {
        return plugin_api::sdk::malformed_json(body, e);
    };
    match v.get("conversions") {
        None | Some(Value::Null | Value::Array(_)) => {}
        Some(other) => {
            return format!(
                "field `conversions`: expected an array of conversions, got {}",
                plugin_api::lenient::shape(other)
            )
        }
    }
    if let Some(m) = not_an_object(&v, &["paging"]) {
        return format!("{m} (expected {{page, page_size, total_count}})");
    }
    if let Some(rows) = v.get("conversions").and_then(Value::as_array) {
        for (i, r) in rows.iter().enumerate() {
            // As the other errors name it: a string without its quotes.
            let id = match r.get("conversion_id") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "?".into(),
            };
            let n = i + 1;
            if !r.is_object() {
                return format!(
                    "record {n}: expected an object, got {}",
                    plugin_api::lenient::shape(r)
                );
            }
            if let Some(m) = not_an_object(r, ROW_OBJECTS) {
                return format!("record {n} (conversion_id {id}): {m}");
            }
            // Scalar fields need the row's text (see `lenient::record_error`).
            let text = r.to_string();
            if let Some(re) = plugin_api::lenient::record_error::<Row>(&text) {
                return format!("record {n} (conversion_id {id}): {re}");
            }
        }
    }
    format!("unexpected page shape: {e}")
}

/// Parses a whole page body (used by the stream and the parse benchmark);
/// the error names the record and field. An answer without a `conversions`
/// array (renamed, or an error object sent with HTTP 200) is an error, never
/// an empty page: read as one, a run on a single page stored nothing and
/// marked its window complete (QA35d H1).
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
    let Some(rows) = parsed.conversions else {
        return Err(format!(
            "the answer has no `conversions` array (not a page of conversions; paging.total_count is {}; {})",
            page.total_count,
            keys(body)
        ));
    };
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        out.push(to_conversion(row).map_err(|e| {
            let id = row.conversion_id.string().unwrap_or_else(|| "?".into());
            format!("record {n} (conversion_id {id}): {e}", n = i + 1)
        })?);
    }
    Ok((page, out))
}
