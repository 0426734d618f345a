//! One Impact `Action` (PascalCase JSON) into a canonical [`Conversion`], and
//! the paging envelope every list endpoint shares.
//!
//! Rows are read as `serde_json::Value` and converted field by field, so an
//! error names the field. Impact sends many numbers as strings (`"12.50"`,
//! `"28763"`), empty strings for absent dates, and timestamps with any UTC
//! offset; all of that is accepted here. Money is exact: amounts are parsed
//! from their literal text into decimals, never through a float.

use plugin_api::currency;
use plugin_api::lenient::Scalar;
use plugin_api::parse;
use plugin_api::sdk::body_suffix;
use plugin_api::serde_json::Value;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use serde::Deserialize;

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
    /// The envelope of a page from its `@page`, `@numpages` and
    /// `@nextpageuri` fields (each a string or a number; absent reads as 0
    /// or no next page). Paging stops after this page (`next` is `None`)
    /// when `@nextpageuri` is empty or `@page` has reached `@numpages`, as
    /// the reference says for every list endpoint.
    pub(crate) fn read(
        page: &Scalar<'_>,
        num_pages: &Scalar<'_>,
        next: &Scalar<'_>,
    ) -> Result<Envelope, String> {
        let num = |v: &Scalar<'_>, k: &str| -> Result<u64, String> {
            Ok(v.integer(&format!("envelope field {k}"))?
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0))
        };
        let page = num(page, "@page")?;
        let num_pages = num(num_pages, "@numpages")?;
        let next = if num_pages > 0 && page >= num_pages {
            None
        } else {
            next.string()
        };
        Ok(Envelope {
            page,
            num_pages,
            next,
        })
    }
}

/// A string field, or a number rendered as text; `None` when absent or empty.
pub fn opt_text(row: &Value, field: &str) -> Option<String> {
    match row.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActionRow<'a> {
    #[serde(rename = "Id", borrow)]
    id: Scalar<'a>,
    #[serde(rename = "Oid", borrow)]
    oid: Scalar<'a>,
    #[serde(rename = "ReferringDate", borrow)]
    referring_date: Scalar<'a>,
    #[serde(rename = "MediaPartnerId", borrow)]
    partner_id: Scalar<'a>,
    #[serde(rename = "MediaPartnerName", borrow)]
    partner_name: Scalar<'a>,
    #[serde(rename = "CampaignId", borrow)]
    campaign_id: Scalar<'a>,
    #[serde(rename = "EventCode", borrow)]
    event_code: Scalar<'a>,
    #[serde(rename = "ActionTrackerName", borrow)]
    tracker: Scalar<'a>,
    #[serde(rename = "EventDate", borrow)]
    event_date: Scalar<'a>,
    #[serde(rename = "Amount", borrow)]
    amount: Scalar<'a>,
    #[serde(rename = "Payout", borrow)]
    payout: Scalar<'a>,
    #[serde(rename = "Currency", borrow)]
    currency: Scalar<'a>,
    #[serde(rename = "State", borrow)]
    state: Scalar<'a>,
    #[serde(rename = "LockingDate", borrow)]
    locking_date: Scalar<'a>,
    #[serde(rename = "PromoCode", borrow)]
    promo: Scalar<'a>,
}

#[derive(Debug, Deserialize)]
struct ActionsPage<'a> {
    #[serde(rename = "@page", borrow, default)]
    page: Scalar<'a>,
    #[serde(rename = "@numpages", borrow, default)]
    num_pages: Scalar<'a>,
    #[serde(rename = "@nextpageuri", borrow, default)]
    next: Scalar<'a>,
    #[serde(rename = "Actions", borrow, default)]
    actions: Option<Vec<ActionRow<'a>>>,
}

type Time = plugin_api::chrono::DateTime<plugin_api::chrono::Utc>;

fn opt_time(v: &Scalar<'_>, field: &str) -> Result<Option<Time>, String> {
    match v {
        Scalar::Null => Ok(None),
        Scalar::Str(s) if s.trim().is_empty() => Ok(None),
        Scalar::Str(s) => parse::timestamp(s)
            .map(Some)
            .map_err(|e| format!("field `{field}`: {e}")),
        _ => Err(format!("field `{field}`: expected a timestamp string")),
    }
}

fn money(v: &Scalar<'_>, field: &str, currency: Option<&str>) -> Result<Option<Money>, String> {
    match (v.decimal(field)?, currency) {
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

/// The event type of an action: its `EventCode` when that names a known
/// type, else its `ActionTrackerName`. `EventCode` (IR-Version 12 and later)
/// is often a brand-defined code without such a word (`EVT-22`), and then
/// the tracker name (`Online Sale`) still says what it is.
fn classify(event_code: &Scalar<'_>, tracker: &Scalar<'_>) -> EventType {
    match event_code.text().map(|c| event_type(&c)) {
        Some(t) if t != EventType::Other => t,
        _ => tracker.text().map_or(EventType::Other, |t| event_type(&t)),
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

fn convert(row: &ActionRow<'_>) -> Result<Record, String> {
    let currency = match row.currency.text() {
        None => None,
        Some(c) => {
            let c = c.to_ascii_uppercase();
            if !currency::is_known(&c) {
                return Err(format!("field `Currency`: {c:?} is not an ISO-4217 code"));
            }
            Some(c)
        }
    };
    let event_type = classify(&row.event_code, &row.tracker);
    Ok(Record::Conversion(Conversion {
        source: String::new(), // stamped by the host
        external_id: row.id.string().ok_or("field `Id` is missing or empty")?,
        order_id: row.oid.string(),
        click_id: None,
        clicked_at: opt_time(&row.referring_date, "ReferringDate")?,
        partner_id: row
            .partner_id
            .string()
            .ok_or("field `MediaPartnerId` is missing or empty")?,
        partner_name: row.partner_name.string(),
        campaign_id: row.campaign_id.string(),
        event_type,
        occurred_at: opt_time(&row.event_date, "EventDate")?
            .ok_or("field `EventDate` is missing")?,
        sale_amount: money(&row.amount, "Amount", currency.as_deref())?,
        commission: money(&row.payout, "Payout", currency.as_deref())?,
        status: status(
            &row.state
                .text()
                .ok_or("field `State` is missing or empty")?,
        )?,
        status_changed_at: None,
        locked_at: opt_time(&row.locking_date, "LockingDate")?,
        coupon: row.promo.string(),
        utm: Utm::default(),
    }))
}

/// Which record of a page serde could not read, for the error message.
fn locate(body: &[u8], e: &plugin_api::serde_json::Error) -> String {
    let Ok(v) = plugin_api::serde_json::from_slice::<Value>(body) else {
        return plugin_api::sdk::malformed_json(body, e);
    };
    if let Some(rows) = v.get("Actions").and_then(Value::as_array) {
        for (i, r) in rows.iter().enumerate() {
            // Scalar fields need the row's text (see `lenient::record_error`).
            let text = r.to_string();
            if let Some(re) = plugin_api::lenient::record_error::<ActionRow>(&text) {
                return format!("record {n} (Id {}): {re}", row_id(r), n = i + 1);
            }
        }
    }
    format!("unexpected page shape: {e}")
}

/// Parses a whole `/Actions` page body into records (used by the stream and
/// the parse benchmark). The error names the record and field.
pub fn parse_actions_page(body: &[u8]) -> Result<(Envelope, Vec<Record>), String> {
    let p: ActionsPage<'_> =
        plugin_api::serde_json::from_slice(body).map_err(|e| locate(body, &e))?;
    let env = Envelope::read(&p.page, &p.num_pages, &p.next)?;
    // A page without the list (an error object such as
    // `{"Status":"ERROR","Message":"Invalid CampaignId"}` sent with HTTP
    // 200, or a changed API) is not an empty page: read as one, the run
    // would succeed with nothing and commit its checkpoints (QA6 F6).
    let Some(rows) = p.actions else {
        return Err(format!(
            "the answer has no `Actions` array (not a page of actions){}",
            answered(body)
        ));
    };
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        out.push(convert(row).map_err(|e| {
            let id = row.id.string().unwrap_or_else(|| "?".into());
            format!("record {n} (Id {id}): {e}", n = i + 1)
        })?);
    }
    Ok((env, out))
}

/// What an answer said, for an error: `: Impact answered: <messages>` when
/// it carries Impact's error fields (`Status`, `Message`, `Errors`), else
/// `: got <start of the body>`.
pub(crate) fn answered(body: &[u8]) -> String {
    let v = plugin_api::serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let mut parts = error_parts(&v);
    if let Some(status) = opt_text(&v, "Status") {
        parts.insert(0, format!("Status {status}"));
    }
    if parts.is_empty() {
        let start = body_suffix(body, 200);
        return match start.strip_prefix(": ") {
            Some(s) => format!(": got {s}"),
            None => ": got an empty body".into(),
        };
    }
    format!(": Impact answered: {}", parts.join("; "))
}

/// Impact's refusal of a query that matches more than 10 × `PageSize` rows.
///
/// Impact documents the limit and that the error asks to change `PageSize`
/// or the dates, but neither the status nor the wording. Assumed: a 4xx
/// (400 like its other parameter errors; not 401/403/404/429) with its error
/// envelope, whose messages name `PageSize` together with the dates or the
/// count (`date`, `too many`, `exceed`, `total`). That tells it from the
/// other 400s the plugin can meet: a bad `PageSize` (settings keep it in
/// range, and its message says nothing of dates or counts), a range over 45
/// days or older than 3 years (no `PageSize`).
pub fn too_many_results(resp: &plugin_api::Response) -> bool {
    if !(400..500).contains(&resp.status) || matches!(resp.status, 401 | 403 | 404 | 429) {
        return false;
    }
    let text = error_message(resp).to_ascii_lowercase();
    text.contains("pagesize")
        && ["date", "too many", "exceed", "total"]
            .iter()
            .any(|w| text.contains(w))
}

/// `HTTP <status>: ` and the messages of an Impact error answer (`Message`
/// and each `Errors[].Field`/`Message`), else the start of its body; on one
/// line either way, with nothing after the status for an empty body.
pub fn error_message(resp: &plugin_api::Response) -> String {
    let parts = plugin_api::serde_json::from_slice::<Value>(&resp.body)
        .map(|body| error_parts(&body))
        .unwrap_or_default();
    if parts.is_empty() {
        return format!("HTTP {}{}", resp.status, body_suffix(&resp.body, 300));
    }
    let joined = parts.join("; ");
    format!(
        "HTTP {}{}",
        resp.status,
        body_suffix(joined.as_bytes(), 1000)
    )
}

/// The messages of Impact's error envelope, without repeats.
fn error_parts(body: &Value) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = opt_text(body, "Message") {
        parts.push(m);
    }
    for e in body
        .get("Errors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        // An error repeating the top message adds nothing.
        match (opt_text(e, "Field"), opt_text(e, "Message")) {
            (_, Some(m)) if parts.contains(&m) => {}
            (Some(f), Some(m)) => parts.push(format!("{f}: {m}")),
            (None, Some(m)) => parts.push(m),
            _ => {}
        }
    }
    parts
}
