//! One Impact `Action` (PascalCase JSON) into a canonical [`Conversion`], and
//! the paging envelope every list endpoint shares.
//!
//! Rows are read as [`Scalar`]s and converted field by field, so an error
//! names the field. Impact sends many numbers as strings (`"12.50"`,
//! `"28763"`), empty strings for absent dates, and timestamps with any UTC
//! offset; all of that is accepted here. Money is exact: amounts are parsed
//! from their literal text into decimals, never through a float.
//!
//! What drifted answers get (QA35d): a page whose counts say more follow
//! but that gives no next-page URI, a missing or empty `Payout` / `Amount`,
//! and a timestamp without a UTC offset are refused, naming the page or the
//! action and field; ids are read with [`Scalar::id`], so `101`, `"101"`
//! and `101.0` are the same partner. So is a page whose rows differ from
//! its envelope's own counts (QA37 R-M2, [`check_rows`]).

use plugin_api::currency;
use plugin_api::lenient::Scalar;
use plugin_api::parse;
use plugin_api::sdk::body_suffix;
use plugin_api::serde_json::Value;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use serde::Deserialize;

/// The `@`-envelope fields of a list page as sent (strings, or numbers):
/// `Null` when absent. Read with the rows by [`ListPage`].
#[derive(Debug, Default)]
pub(crate) struct RawEnvelope<'a> {
    page: Scalar<'a>,
    num_pages: Scalar<'a>,
    page_size: Scalar<'a>,
    total: Scalar<'a>,
    start: Scalar<'a>,
    end: Scalar<'a>,
    next: Scalar<'a>,
}

/// A row of a list endpoint, and the key its rows sit under (`Actions`,
/// `Campaigns`).
pub(crate) trait ListRow<'de>: Deserialize<'de> {
    const KEY: &'static str;
}

/// One page of a list endpoint: its `@`-envelope and its rows, `None` when
/// the body has no `R::KEY` array (or it is null). Every paged reader of
/// the plugin reads its pages through this, so each envelope is read, and
/// checked by [`Envelope::read`], the same way. Other keys are skipped.
#[derive(Debug)]
pub(crate) struct ListPage<'a, R> {
    pub envelope: RawEnvelope<'a>,
    pub rows: Option<Vec<R>>,
}

impl<'de, R: ListRow<'de>> Deserialize<'de> for ListPage<'de, R> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, Visitor};
        use std::borrow::Cow;
        struct PageVisitor<R>(std::marker::PhantomData<R>);
        impl<'de, R: ListRow<'de>> Visitor<'de> for PageVisitor<R> {
            type Value = ListPage<'de, R>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an object with an `{}` array", R::KEY)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut page = ListPage {
                    envelope: RawEnvelope::default(),
                    rows: None,
                };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let env = &mut page.envelope;
                    let field = match key.as_ref() {
                        "@page" => &mut env.page,
                        "@numpages" => &mut env.num_pages,
                        "@pagesize" => &mut env.page_size,
                        "@total" => &mut env.total,
                        "@start" => &mut env.start,
                        "@end" => &mut env.end,
                        "@nextpageuri" => &mut env.next,
                        k if k == R::KEY => {
                            page.rows = map.next_value()?;
                            continue;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *field = map.next_value()?;
                }
                Ok(page)
            }
        }
        d.deserialize_map(PageVisitor(std::marker::PhantomData))
    }
}

/// The `@`-envelope of a list page, read and checked against its rows.
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
    /// The envelope of a page of `rows` rows, from its `@page`,
    /// `@numpages` and `@nextpageuri` fields (each a string or a number;
    /// absent reads as 0 or no next page). Paging stops after this page
    /// (`next` is `None`) when `@page` has reached `@numpages`, or when
    /// `@nextpageuri` is empty on a page whose counts say it is the last, as
    /// the reference says for every list endpoint.
    ///
    /// A page whose own counts say more follow (`@page` < `@numpages`) but
    /// that gives no `@nextpageuri` (missing or `""`) is refused: taken as
    /// the last page, the run would end "ok" without the rest and mark its
    /// window complete (QA35d H3). So is a page whose rows do not match its
    /// own counts ([`check_rows`]). The caller names the stream and page.
    pub(crate) fn read(raw: &RawEnvelope<'_>, rows: usize) -> Result<Envelope, String> {
        let num = |v: &Scalar<'_>, k: &str| -> Result<u64, String> {
            Ok(v.integer(&format!("envelope field {k}"))?
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0))
        };
        let page = num(&raw.page, "@page")?;
        let num_pages = num(&raw.num_pages, "@numpages")?;
        let env = if num_pages > 0 && page >= num_pages {
            Envelope {
                page,
                num_pages,
                next: None,
            }
        } else {
            let uri = raw.next.string();
            if uri.is_none() && page < num_pages {
                let shown = if page == 0 {
                    "missing".to_owned()
                } else {
                    page.to_string()
                };
                let sent = match raw.next {
                    Scalar::Null => "missing",
                    Scalar::Str(_) => "empty",
                    _ => "not a URI",
                };
                return Err(format!(
                    "Impact's paging envelope says more pages follow (@page {shown}, @numpages \
                     {num_pages}) but its @nextpageuri is {sent}: expected the relative URI of \
                     page {}; the page is refused rather than taken as the last one",
                    page + 1
                ));
            }
            Envelope {
                page,
                num_pages,
                next: uri,
            }
        };
        check_rows(raw, rows, env.next.is_none())?;
        Ok(env)
    }
}

/// An envelope count (`@pagesize`, `@total`, `@start`, `@end`): `None` when
/// absent or null (the check it serves is skipped: not every endpoint need
/// send it); an error naming the field when it is there but no whole number
/// (`""` too: taken as absent, a renamed or garbled count would turn its
/// check off without a word).
fn count(v: &Scalar<'_>, key: &str) -> Result<Option<i64>, String> {
    let bad =
        |e: String| format!("Impact's paging envelope: {e}; its row counts cannot be checked");
    match v {
        Scalar::Null => Ok(None),
        Scalar::Str(s) if s.trim().is_empty() || s.trim() == "-" => {
            Err(bad(format!("field `{key}`: {s:?} is not a number")))
        }
        _ => v.integer(key).map_err(bad),
    }
}

/// Refuses a page whose number of rows differs from what its own envelope
/// counts (QA37 R-M2: 19 `Actions` under `"@start": "0", "@end": "19",
/// "@total": "20"` synced ok, one row silently missed; a missed action
/// update is a missed reversal, a commission paid that should have been
/// taken back). Everflow refuses the same ("rows are missing from the
/// answer"). Three counts, each checked when the envelope carries it:
///
/// - `@start`..=`@end`, the 0-based positions of the page's first and last
///   row, hold `@end - @start + 1` rows. That inclusive range cannot say
///   "none": an empty page is accepted with `@end` at `@start` (what the
///   loopback fake writes; the reference does not say what Impact writes)
///   or below it, and `@total` tells whether it is the end.
/// - A page other than the last holds `@pagesize` rows.
/// - The last page's rows end at `@total`: `@start` + rows = `@total`.
///
/// Fewer rows mean rows are missing from the answer; more mean it holds
/// rows its envelope does not count. Either way the page is refused as a
/// bad answer, nothing of it stored, rather than read as it is.
fn check_rows(raw: &RawEnvelope<'_>, rows: usize, last: bool) -> Result<(), String> {
    let page_size = count(&raw.page_size, "@pagesize")?;
    let total = count(&raw.total, "@total")?;
    let start = count(&raw.start, "@start")?;
    let end = count(&raw.end, "@end")?;
    for (key, n) in [
        ("@pagesize", page_size),
        ("@total", total),
        ("@start", start),
    ] {
        if let Some(n) = n.filter(|n| *n < 0) {
            return Err(format!(
                "Impact's paging envelope: field `{key}`: {n} is negative, not a row count; \
                 its row counts cannot be checked"
            ));
        }
    }
    let got = i64::try_from(rows).unwrap_or(i64::MAX);
    let refuse = |expected: i64, counted: String| {
        let meaning = if got < expected {
            "rows are missing from the answer"
        } else {
            "the answer holds rows its envelope does not count"
        };
        let noun = if got == 1 { "row" } else { "rows" };
        Err(format!(
            "{got} {noun}, but Impact's paging envelope counts {} on this page ({counted}): \
             {meaning}",
            expected.max(0)
        ))
    };
    if let (Some(s), Some(e)) = (start, end) {
        let expected = e.saturating_sub(s).saturating_add(1);
        let empty = got == 0 && e <= s;
        if got != expected && !empty {
            return refuse(expected, format!("@start {s}, @end {e}"));
        }
    }
    if let Some(size) = page_size.filter(|size| !last && got < *size) {
        return refuse(size, format!("@pagesize {size}, not the last page"));
    }
    if let (Some(s), Some(t), true) = (start, total, last) {
        let expected = t.saturating_sub(s);
        if got != expected {
            return refuse(expected, format!("@start {s}, @total {t}, the last page"));
        }
    }
    Ok(())
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

impl<'de> ListRow<'de> for ActionRow<'de> {
    const KEY: &'static str = "Actions";
}

type Time = plugin_api::chrono::DateTime<plugin_api::chrono::Utc>;

/// A timestamp field: RFC 3339 **with** a UTC offset (`Z`, `-05:00`), as
/// the reference says Impact sends them; `None` when absent or empty.
///
/// One without an offset (`2026-10-03T00:30:00`) is refused, naming the
/// field: its instant is unknown (the account's zone? UTC?), and read as
/// UTC an action could move to another day, or at a month's end to another
/// statement period, without a word (QA35d M2; CAKE refuses the same).
/// `plugin_api::parse::timestamp`, which reads such text as UTC, is not
/// used here.
fn opt_time(v: &Scalar<'_>, field: &str) -> Result<Option<Time>, String> {
    match v {
        Scalar::Null => Ok(None),
        Scalar::Str(s) if s.trim().is_empty() => Ok(None),
        Scalar::Str(s) => {
            let t = s.trim();
            if let Ok(d) = plugin_api::chrono::DateTime::parse_from_rfc3339(t) {
                return Ok(Some(d.with_timezone(&plugin_api::chrono::Utc)));
            }
            if parse::timestamp(t).is_ok() {
                return Err(format!(
                    "field `{field}`: {s:?} has no UTC offset; Impact sends its timestamps \
                     with one (`2026-10-03T00:30:00-04:00`, `...Z`), and without it the \
                     instant is unknown, so the action is refused rather than read as UTC"
                ));
            }
            Err(format!(
                "field `{field}`: {s:?} is not an RFC 3339 timestamp with a UTC offset"
            ))
        }
        _ => Err(format!("field `{field}`: expected a timestamp string")),
    }
}

/// A money field every action carries: `Payout` (the commission) and
/// `Amount` (the sale amount). The reference's action model lists both as
/// numbers of every action, with no note that either may be left out, and
/// every sample it cites carries both (`0` / `"0.00"` when there is none,
/// as for a reversed action). So a missing, `""`, `"-"` or null one is
/// refused, naming the field: read as "unknown", it silently replaced the
/// stored commission or sale amount in a new revision (QA35d M1).
fn money(v: &Scalar<'_>, field: &str, currency: Option<&str>) -> Result<Money, String> {
    let amount = v.decimal(field)?.ok_or_else(|| {
        let got = match v {
            Scalar::Null => "missing or null".to_owned(),
            Scalar::Str(s) => format!("{s:?}"),
            other => other.text().map(|t| t.into_owned()).unwrap_or_default(),
        };
        format!(
            "field `{field}` is {got}: Impact sends it on every action (0 when there is none), \
             so the action is refused rather than stored without it"
        )
    })?;
    match currency {
        Some(c) => Ok(Money::new(amount, c)),
        None => Err(format!(
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
        external_id: row.id.id("Id")?.ok_or("field `Id` is missing or empty")?,
        order_id: row.oid.id("Oid")?,
        click_id: None,
        clicked_at: opt_time(&row.referring_date, "ReferringDate")?,
        partner_id: row
            .partner_id
            .id("MediaPartnerId")?
            .ok_or("field `MediaPartnerId` is missing or empty")?,
        partner_name: row.partner_name.string(),
        campaign_id: row.campaign_id.id("CampaignId")?,
        event_type,
        occurred_at: opt_time(&row.event_date, "EventDate")?
            .ok_or("field `EventDate` is missing")?,
        sale_amount: Some(money(&row.amount, "Amount", currency.as_deref())?),
        commission: Some(money(&row.payout, "Payout", currency.as_deref())?),
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
    let p: ListPage<'_, ActionRow<'_>> =
        plugin_api::serde_json::from_slice(body).map_err(|e| locate(body, &e))?;
    // A page without the list (an error object such as
    // `{"Status":"ERROR","Message":"Invalid CampaignId"}` sent with HTTP
    // 200, or a changed API) is not an empty page: read as one, the run
    // would succeed with nothing and commit its checkpoints (QA6 F6).
    let Some(rows) = p.rows else {
        return Err(format!(
            "the answer has no `Actions` array (not a page of actions){}",
            answered(body)
        ));
    };
    let env = Envelope::read(&p.envelope, rows.len())?;
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
    if !refused_query(resp) {
        return false;
    }
    let text = error_message(resp).to_ascii_lowercase();
    text.contains("pagesize")
        && ["date", "too many", "exceed", "total"]
            .iter()
            .any(|w| text.contains(w))
}

/// Impact's refusal of a query's parameters: a 4xx other than 401/403
/// (credentials), 404 (no such resource: a wrong SID or base URL) and 429
/// (rate limit). Its 400s say what was wrong (a range over 45 days or older
/// than 3 years, too many results, a bad `PageSize`).
pub fn refused_query(resp: &plugin_api::Response) -> bool {
    (400..500).contains(&resp.status) && !matches!(resp.status, 401 | 403 | 404 | 429)
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
