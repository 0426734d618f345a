//! # CAKE connector (classic `.asmx` API, v15–v18)
//!
//! Pulls a CAKE network's **event conversions** (the affiliates' claims) and
//! their **changes** (restatements: dispositions, price changes), producing
//! canonical [`plugin_api::Conversion`] records keyed by
//! `event_conversion_id`.
//!
//! ## The API
//! - Base: the customer's own admin domain (`settings.base_url`, required);
//!   paths `/api/{version}/reports.asmx/{Method}` and
//!   `/api/1/get.asmx/Currencies`.
//! - Auth: the `api_key` parameter, added by the host to the query string
//!   (manifest [`AuthSpec::Query`]). A refused key is HTTP 200 with
//!   `{"d": {"success": false, "message": "..."}}`.
//! - Format: POST with a JSON body answers JSON wrapped as `{"d": {...}}`
//!   (GET answers XML, which we never ask for). Every parameter of a method
//!   must be present, optional ones as `0`/`all`, or ASP.NET answers 500.
//! - `EventConversions`: `start_date`..`end_date` (`YYYY-mm-dd`; the end day
//!   is excluded), offset paging with `start_at_row` and `row_limit`, total
//!   in `row_count` (the last two seen only in third-party code; whether
//!   rows count from 0 or 1 is not verified: see "Row 0").
//! - `EventConversionChanges`: the same rows, changed since `changes_since`,
//!   a *date* (`YYYY-mm-dd`) read in the instance's time zone. CAKE's page
//!   for it lists no paging, no `row_count` and no `sort_field`; the plugin
//!   sends `start_at_row`/`row_limit`/`sort_field` anyway (unverified whether
//!   they are honoured; an extra parameter is not an error) and reads the
//!   answer whether or not they were (see "Paging without `row_count`").
//! - Currencies: `paid`/`received` carry numeric `currency_id`s, resolved once
//!   per session through `Currencies`.
//!
//! ## Streams
//! - `event_conversions`: conversions of the session window (lookback 30
//!   days).
//! - `event_conversion_changes`: conversions changed since the instance's
//!   date a few hours before this stream's last watermark (or the window
//!   start on a first run), so restatements of older conversions arrive as
//!   new revisions of the same key. CAKE's `changes_since` is a date only,
//!   so up to a day is re-read; without `instance_timezone` the date is
//!   taken early enough for any zone, up to two days (see [`changes_since`]).
//!   In a backfill (a window ending before the session's day) the rows of
//!   conversions that occurred after the window are left out, and the
//!   stream's watermark moves no further than the window's end, so the next
//!   run reads those changes again (see [`backfill_end`]). A scheduled
//!   run's window ends on the session's day: it keeps every change.
//!
//! ## Offset paging that cannot silently skip rows
//! Both streams page by row offset, and their result sets can change while
//! they are read: a new conversion or change enters, a row leaves, and in an
//! unsorted set a row changed again moves. Plain offsets would then skip
//! rows, and a skipped conversion or restatement would never reach finance.
//! So both streams ask for `event_conversion_id` ascending, and each page
//! after the first starts one row early (`start_at_row = next_row - 1`,
//! `row_limit + 1`): that overlap row must be the last row committed, whose
//! id the checkpoint keeps (`last_id`, next to `next_row`), so a session
//! that resumes a stream checks it as well. A different row means the set
//! shifted: the stream is read again from row 1 (records are upserts by
//! key), at most [`MAX_RESTARTS`] times per session, after which the session
//! fails with a retryable error naming the stream. Rows appended at the end
//! (new ids) shift nothing. Not caught within a session: a row entering
//! *and* another leaving before the offset between the same two pages; the
//! entering row is newer than the session and the next run reads it (the
//! conversions window is re-pulled every run, changes from the day before
//! the last run).
//!
//! ## Row 0
//! The plugin pages from `start_at_row = 1`, as third-party code does; CAKE's
//! newer docs give the offset a default of 0. If the instance counts from 0,
//! row 1 is the second row and the first (the lowest id) was lost on every
//! read, with the overlap check passing (QA20 F3). So a stream read from its
//! first row first asks for row 0 alone (`start_at_row = 0`, `row_limit =
//! 1`): a row that the first page does not hold too is emitted with it and
//! counted against `row_count` (`row_zero` in the checkpoint); the same row
//! as row 1, no row or a `success: false` answer means rows count from 1.
//! One more request per stream and session. See `probe_row_zero`.
//!
//! ## Days
//! `start_date`/`end_date` are dates, which CAKE reads in the instance's
//! time zone: the window's days are the instance's days, whatever the
//! connector's `timezone`. Set the connector's `timezone` to the instance's
//! zone so that `reckon sync cake --from D --to D` reads day D; when
//! `instance_timezone` is set and differs from it, each session warns.
//!
//! ## An empty page
//! A page with no new row while `row_count` says rows remain fails the
//! session (the pages before it stay committed) rather than end the stream
//! as complete without them (QA34-D H2), as the Everflow and TikTok
//! connectors fail theirs. Without `row_count` an empty page is the end;
//! but an answer without the `d.event_conversions` array (renamed, or
//! another answer sent with HTTP 200) is no page at all: it fails the
//! session naming the stream, the row and the keys `d` has, rather than end
//! the changes stream as complete without its restatements (QA35d H1).
//!
//! ## Paging without `row_count`
//! `row_count` is documented for `EventConversions` only, and only by
//! third-party code. An absent `row_count` is never read as 0 (which ended
//! the stream after its first page and marked it complete, losing the
//! rest): without it, the stream keeps asking while pages come back full
//! and ends at the first page with fewer rows than asked for (or none). An
//! answer with *more* rows than asked for means the instance ignores
//! `row_limit`: on the first page that is the whole set, and the stream
//! ends there; on a later page it is an error rather than a guess.
//!
//! Row mapping, dates (`/Date(ms)/` or ISO; offset-less times in the
//! `instance_timezone` setting), dispositions, ids and amounts: see [`row`].
//! CAKE's record has no sale amount (see [`row`]); `order_total` sent empty
//! is logged as a warning naming the records. A record without `paid`, or
//! with `paid.amount` null or `""`, is malformed. A malformed row fails its page:
//! nothing of that page is committed, and the error names the stream, the
//! page's first row, the `event_conversion_id` and the field.

mod config;
pub mod row;

use chrono_tz::Tz;
use config::Settings;
use plugin_api::chrono::{DateTime, Duration, NaiveTime, Utc};
use plugin_api::protocol::{AuthSpec, Checkpoint, ErrorKind, PluginKind, RecordKind, StreamSpec};
use plugin_api::sdk::day_start;
use plugin_api::serde_json::{json, Value};
use plugin_api::throttle::{RetryAfter, Throttled};
use plugin_api::{Connector, ConversionStatus, Cx, Manifest, PluginError, Request};

/// A session's request sender. CAKE documents no rate limits, but instances
/// sit behind proxies that do answer 429 (usually with `Retry-After`); one
/// that reaches the plugin (the host gave up) is waited out. CAKE also
/// reports failures as HTTP 200 with `"success": false`; the callers read
/// that.
pub type Client = Throttled<RetryAfter>;

pub use row::{parse_currencies, parse_page, Currencies, Page, PageError};

/// The connector type. It has no fields: all state lives in the session.
#[derive(Debug)]
pub struct Cake;

/// Conversions by conversion date.
pub const EVENT_CONVERSIONS: &str = "event_conversions";
/// Conversions changed since the last run.
pub const EVENT_CONVERSION_CHANGES: &str = "event_conversion_changes";

impl Connector for Cake {
    fn manifest() -> Manifest {
        Manifest {
            id: "cake".into(),
            name: "CAKE (getcake)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Affiliate,
            description: "CAKE network connector: EventConversions with dispositions \
                          (approved/pending/rejected/returned), paid (payout) amounts, and \
                          EventConversionChanges for restatements. api_key auth."
                .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["api_key", "base_url"],
                "properties": {
                    "api_key": { "type": "string", "x-secret": true,
                        "description": "CAKE API key (Setup → Permissions / API keys)." },
                    "base_url": { "type": "string",
                        "description": "Your CAKE admin domain, e.g. https://admin.mynetwork.com." },
                    "api_version": { "type": "integer", "minimum": 15, "maximum": 18, "default": 18,
                        "description": "reports.asmx API version in the path." },
                    "row_limit": { "type": "integer", "minimum": 1, "maximum": 100000, "default": 5000,
                        "description": "Rows per request." },
                    "no_disposition_status": { "type": "string", "enum": ["approved", "pending"], "default": "approved",
                        "description": "Status of a conversion without a disposition." },
                    "instance_timezone": { "type": "string",
                        "description": "The CAKE instance's time zone (IANA name, e.g. America/New_York): date-times CAKE sends without a UTC offset are read in it, and restatements are re-read from the instance's date (changes_since) instead of a day earlier. Unset, such a date-time is refused, never read as UTC." }
                }
            }),
            streams: vec![
                StreamSpec {
                    name: EVENT_CONVERSIONS.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("occurred_at".into()),
                    default_lookback_days: 30,
                },
                StreamSpec {
                    name: EVENT_CONVERSION_CHANGES.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("status_changed_at".into()),
                    default_lookback_days: 30,
                },
            ],
            allowed_hosts: Vec::new(),
            default_base_url: None,
            auth: Some(AuthSpec::Query {
                name: "api_key".into(),
                value: "api_key".into(),
            }),
            max_window_days: Some(31),
            max_history_days: None,
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        settings.instance_tz(cx.connector_id())?;
        let mut client = Client::new(&cx, RetryAfter);
        currencies(&cx, &mut client).await?;
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        let undispositioned = match settings.no_disposition_status.as_str() {
            "approved" => ConversionStatus::Approved,
            "pending" => ConversionStatus::Pending,
            other => {
                return Err(PluginError::config(format!(
                    "connector `{}`: settings.no_disposition_status: {other:?} is neither \"approved\" nor \"pending\"",
                    cx.connector_id()
                )))
            }
        };
        let instance_tz = settings.instance_tz(cx.connector_id())?;
        warn_other_days(&cx, instance_tz)?;
        let mut client = Client::new(&cx, RetryAfter);
        let currencies = currencies(&cx, &mut client).await?;
        let reading = Reading {
            currencies: &currencies,
            undispositioned,
            instance_tz,
        };
        let window = cx.window()?;
        let session_start = cx.now();
        if cx.wants(EVENT_CONVERSIONS) {
            let start = window.from.and_time(NaiveTime::MIN).and_utc();
            let end = (window.to + Duration::days(1))
                .and_time(NaiveTime::MIN)
                .and_utc();
            let mut params = base_params();
            params["start_date"] = json!(window.from.to_string());
            params["end_date"] = json!((window.to + Duration::days(1)).to_string());
            params["event_type"] = json!("all");
            params["event_id"] = json!(0);
            params["channel_id"] = json!(0);
            params["site_offer_contract_id"] = json!(0);
            params["creative_id"] = json!(0);
            params["source_affiliate_tag_id"] = json!(0);
            params["brand_advertiser_tag_id"] = json!(0);
            params["site_offer_tag_id"] = json!(0);
            params["price_format_id"] = json!(0);
            params["source_type"] = json!("all");
            params["payment_percentage_filter"] = json!("both");
            params["disposition_type"] = json!("all");
            params["disposition_id"] = json!(0);
            params["source_affiliate_billing_status"] = json!("all");
            params["brand_advertiser_billing_status"] = json!("all");
            params["test_filter"] = json!("non_tests");
            let key = format!("{}..{}", window.from, window.to);
            read_rows(
                &cx,
                &mut client,
                &settings,
                &reading,
                Stream {
                    name: EVENT_CONVERSIONS,
                    method: "EventConversions",
                    key,
                    start,
                    end,
                    until: None,
                },
                params,
            )
            .await?;
        }
        if cx.wants(EVENT_CONVERSION_CHANGES) {
            let since = changes_since(
                cx.checkpoint(EVENT_CONVERSION_CHANGES).map(|c| c.watermark),
                window.from,
                instance_tz,
            );
            let mut params = base_params();
            params["changes_since"] = json!(since.format("%Y-%m-%d").to_string());
            params["include_new_event_conversions"] = json!("FALSE");
            let key = since.to_string();
            let since = since.and_time(NaiveTime::MIN).and_utc();
            let until = backfill_end(&cx, window, session_start, instance_tz)?;
            read_rows(
                &cx,
                &mut client,
                &settings,
                &reading,
                Stream {
                    name: EVENT_CONVERSION_CHANGES,
                    method: "EventConversionChanges",
                    key,
                    start: since,
                    // Every change up to the session start, or, in a
                    // backfill, up to the window's end: the changes of
                    // later conversions are left out.
                    end: until.map_or(session_start, |u| u.min(session_start)),
                    until,
                },
                params,
            )
            .await?;
        }
        Ok(())
    }
}

/// How long before the last run's watermark the changes stream's
/// `changes_since` day must start, besides the rounding down to a whole day
/// that CAKE's date-only parameter forces: the largest backward jump of a
/// wall clock at a DST change (2 h, double summer time) plus an hour for
/// the daemon's clock running ahead of the instance's and for a change
/// written just before the last run but not yet in its report.
pub const CHANGES_MARGIN_HOURS: i64 = 3;

/// The westmost UTC offset in use (UTC−12): with no `instance_timezone`,
/// midnight of a date is taken as late as it falls anywhere.
const WESTMOST_OFFSET_HOURS: i64 = 12;

/// The `changes_since` date of the changes stream, else the window's first
/// day on a first run.
///
/// CAKE takes a *date* here (`YYYY-mm-dd` or `dd-mm-YYYY`, no time: the
/// reference and CAKE's v17/v18 pages) and reads it as midnight in the
/// instance's own time zone. So the answer is the instance's date
/// [`CHANGES_MARGIN_HOURS`] before the watermark: its midnight is at or
/// before that instant, and no change after the watermark is missed. The
/// re-read is then between 3 and 27 hours of changes (upserts of the same
/// keys); less is impossible with a date-only filter.
///
/// Without the `instance_timezone` setting the plugin does not know the
/// zone, so it takes the UTC date 12 hours earlier still: midnight of that
/// date falls before the margin in every zone from UTC−12 to UTC+14 (up to
/// 53 hours of changes re-read, in UTC+14).
pub fn changes_since(
    watermark: Option<DateTime<Utc>>,
    window_from: plugin_api::chrono::NaiveDate,
    instance_tz: Option<Tz>,
) -> plugin_api::chrono::NaiveDate {
    let Some(w) = watermark else {
        return window_from;
    };
    let before = w - Duration::hours(CHANGES_MARGIN_HOURS);
    match instance_tz {
        Some(tz) => before.with_timezone(&tz).date_naive(),
        None => (before - Duration::hours(WESTMOST_OFFSET_HOURS)).date_naive(),
    }
}

/// In a backfill (a window whose last day is before the session's day, in
/// the connector's `timezone`), the instant the window's days end: the
/// midnight after its last day in the instance's zone (`instance_timezone`,
/// else the connector's, which should be the instance's), where
/// `EventConversions`' `end_date` cuts. `None` for a window that reaches
/// the session's day (a scheduled run).
///
/// `EventConversionChanges` has no upper bound: a backfill's changes read
/// returns every conversion changed since `changes_since`, up to today, and
/// stored all of them, so `sync --from A --to B` also stored conversions
/// that occurred after B (QA34-B M1). The changes stream leaves out the
/// rows of conversions that occurred at or after this instant (they are
/// read when their own days are synced) and moves its watermark no further
/// than it: every change before it is of a conversion it keeps, so the
/// next run still reads the changes it left out.
fn backfill_end(
    cx: &Cx,
    window: plugin_api::protocol::Window,
    session_start: DateTime<Utc>,
    instance_tz: Option<Tz>,
) -> Result<Option<DateTime<Utc>>, PluginError> {
    let connector_tz = cx.timezone()?;
    let today = session_start.with_timezone(&connector_tz).date_naive();
    if window.to >= today {
        return Ok(None);
    }
    let days_tz = instance_tz.unwrap_or(connector_tz);
    Ok(Some(day_start(window.to + Duration::days(1), days_tz)))
}

/// CAKE reads `start_date`/`end_date` in the instance's zone, so a window's
/// days are the instance's: when `instance_timezone` names another zone
/// than the connector's `timezone` (sent by the host), says so once per
/// session (QA20 F2).
fn warn_other_days(cx: &Cx, instance_tz: Option<Tz>) -> Result<(), PluginError> {
    let (Some(instance), Some(_)) = (instance_tz, cx.session().timezone.as_ref()) else {
        return Ok(());
    };
    let connector = cx.timezone()?;
    if instance != connector {
        cx.warn(
            "CAKE reads the window's days in the instance's time zone, not the connector's: a backfill's first and last days are the instance's; set the connector's `timezone` to the instance's",
            &[
                ("instance_timezone", &instance.name()),
                ("connector_timezone", &connector.name()),
            ],
        );
    }
    Ok(())
}

/// The parameters every reports method takes (ids 0 = all).
fn base_params() -> Value {
    json!({
        "source_affiliate_id": 0,
        "brand_advertiser_id": 0,
        "site_offer_id": 0,
        "campaign_id": 0,
    })
}

/// Logs a page's optional fields sent empty and read as unknown (see
/// [`row::Page::warnings`]), one warning per field naming its records (the
/// first ten, and how many), so a field that used to carry a value and now
/// comes empty is visible (QA35d M1).
fn warn_empty(cx: &Cx, what: &str, warnings: &row::Warnings) {
    for (field, ids) in warnings {
        let mut shown = ids.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
        if ids.len() > 10 {
            shown.push_str(", ...");
        }
        cx.warn(
            "CAKE sent an optional amount empty (null or \"\"); it is stored as unknown for these conversions",
            &[
                ("page", &what),
                ("field", field),
                ("records", &ids.len()),
                ("event_conversion_ids", &shown),
            ],
        );
    }
}

/// Maps a page that could not be read: a date-time without an offset and no
/// `instance_timezone` is a config error naming the connector; the rest as
/// [`cake_error`].
fn page_error(cx: &Cx, what: &str, e: PageError) -> PluginError {
    match e {
        PageError::NeedsTimezone(m) => {
            PluginError::config(format!("connector `{}`: {what}: {m}", cx.connector_id()))
        }
        PageError::Malformed(m) => cake_error(what, m),
    }
}

/// Maps CAKE's `success: false` answers: a key problem is an auth error.
fn cake_error(what: &str, e: String) -> PluginError {
    let lower = e.to_ascii_lowercase();
    if lower.contains("success=false") && (lower.contains("api key") || lower.contains("api_key")) {
        PluginError::new(ErrorKind::Auth, format!("{what}: {e}"))
    } else if lower.contains("success=false") {
        PluginError::new(ErrorKind::Upstream, format!("{what}: {e}"))
    } else {
        PluginError::bad_response(format!("{what}: {e}"))
    }
}

async fn currencies(cx: &Cx, client: &mut Client) -> Result<Currencies, PluginError> {
    let what = "currencies lookup (get.asmx/Currencies)";
    let resp = client
        .send(
            Request::post(format!("{}/api/1/get.asmx/Currencies", cx.base_url()))
                .json_body(&json!({}))
                .idempotent()
                .label("currencies"),
            what,
        )
        .await?;
    row::parse_currencies(&resp.body).map_err(|e| cake_error(what, e))
}

/// How rows are read: the `Currencies` lookup, the status of a conversion
/// without a disposition, and the instance's time zone.
struct Reading<'a> {
    currencies: &'a Currencies,
    undispositioned: ConversionStatus,
    instance_tz: Option<Tz>,
}

struct Stream {
    name: &'static str,
    method: &'static str,
    /// What the checkpoint state belongs to (window or changes_since).
    key: String,
    start: DateTime<Utc>,
    /// Watermark once the stream is complete.
    end: DateTime<Utc>,
    /// Rows of conversions that occurred at or after this instant are read
    /// (and paged over) but not emitted: a backfill's changes of
    /// conversions after its window (see [`backfill_end`]).
    until: Option<DateTime<Utc>>,
}

/// How often one session starts a stream again from row 1 because its
/// result set shifted under the offset paging, before giving up with an
/// error (see `read_rows`).
pub const MAX_RESTARTS: u32 = 3;

/// Reads a stream's rows page by page, committing each page with its
/// checkpoint.
///
/// Offset paging can skip rows when the result set changes while it is read
/// (a row leaves the set, a row with a lower id enters it, a row changed
/// again moves). So rows are asked for in `event_conversion_id` order, and
/// every page after the first starts one row early: that overlap row must be
/// the last row committed (its id is kept in the checkpoint state as
/// `last_id`, so a later session resuming the same window or changes date
/// checks it too). When it is not, the set shifted, and the stream starts
/// again from row 1 (records are upserts by key, so re-reading is harmless),
/// at most [`MAX_RESTARTS`] times per session; then the session fails with
/// an error naming the stream rather than skip rows.
async fn read_rows(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    reading: &Reading<'_>,
    stream: Stream,
    mut params: Value,
) -> Result<(), PluginError> {
    let cp = cx.checkpoint(stream.name);
    let mut watermark = cp
        .map(|c| c.watermark.max(stream.start))
        .unwrap_or(stream.start);
    // Resume after the last committed page of the same run (a completed run
    // is pulled again from its first row). A state without `last_id` cannot
    // be checked, so it starts again from row 1 too.
    let resume = cp.filter(|c| {
        c.state.get("key").and_then(Value::as_str) == Some(stream.key.as_str())
            && c.state.get("complete").and_then(Value::as_bool) != Some(true)
    });
    let mut last_id: Option<String> = resume
        .and_then(|c| c.state.get("last_id").and_then(Value::as_str))
        .map(str::to_owned);
    let mut next_row = match &last_id {
        Some(_) => resume
            .and_then(|c| c.state.get("next_row").and_then(Value::as_u64))
            .unwrap_or(1)
            .max(1),
        None => 1,
    };
    if next_row == 1 {
        last_id = None;
    }
    // Whether row 0 (before row 1) held a row of its own: the instance
    // counts rows from 0, and it is one of `row_count`.
    let mut row_zero = resume
        .and_then(|c| c.state.get("row_zero").and_then(Value::as_bool))
        .unwrap_or(false);
    // EventConversions documents `sort_field`; EventConversionChanges does not
    // list it. It is sent to both: where it is ignored, the overlap check
    // below still catches a shifted set.
    params["sort_field"] = json!("event_conversion_id");
    params["sort_descending"] = json!("FALSE");
    let url = format!(
        "{}/api/{}/reports.asmx/{}",
        cx.base_url(),
        settings.api_version,
        stream.method
    );
    let mut restarts = 0u32;
    let mut left_out = 0u64;
    loop {
        // From the second page on, ask from the last committed row too.
        let overlap = next_row > 1;
        // From the first row: ask for row 0 on its own first (see
        // `probe_row_zero`).
        let zero = if overlap {
            None
        } else {
            probe_row_zero(cx, client, reading, &stream, &url, &params).await?
        };
        let start_at_row = if overlap { next_row - 1 } else { 1 };
        let asked = u64::from(settings.row_limit) + u64::from(overlap);
        params["start_at_row"] = json!(start_at_row);
        params["row_limit"] = json!(asked);
        let what = format!("stream `{}` rows from {next_row}", stream.name);
        let resp = client
            .send(
                Request::post(&url)
                    .json_body(&params)
                    .idempotent()
                    .label(format!("{} from row {start_at_row}", stream.method)),
                &what,
            )
            .await?;
        let row::Page {
            total,
            records,
            warnings,
        } = row::parse_page(
            &resp.body,
            reading.currencies,
            reading.undispositioned,
            reading.instance_tz,
        )
        .map_err(|e| page_error(cx, &what, e))?;
        warn_empty(cx, &what, &warnings);
        let answered = records.len() as u64;
        // More rows than asked for: the instance ignores `row_limit` (and
        // presumably `start_at_row`). On the first page that is the whole
        // set; later, the pages cannot be trusted.
        let unpaged = answered > asked;
        if unpaged && overlap {
            return Err(PluginError::bad_response(format!(
                "{what}: CAKE answered {answered} rows to row_limit {asked} from row \
                 {start_at_row}: it does not page this method the way it paged the first \
                 page; stopping rather than guess which rows are new"
            )));
        }
        let mut records = records.into_iter();
        if overlap {
            let found = records.next().map(|r| r.key());
            if found != last_id {
                restarts += 1;
                let expected = last_id.as_deref().unwrap_or("?");
                let found = found.as_deref().unwrap_or("no row");
                if restarts > MAX_RESTARTS {
                    return Err(PluginError::retryable(
                        ErrorKind::Upstream,
                        format!(
                            "stream `{}`: the result set kept changing while it was paged: row \
                             {start_at_row} should be event_conversion_id {expected} (the last \
                             row committed) but is {found}, after {MAX_RESTARTS} restarts from \
                             row 1; stopping rather than skip rows (pages committed so far stay; \
                             the next run reads the stream again)",
                            stream.name
                        ),
                    ));
                }
                cx.warn(
                    "result set shifted under offset paging; reading the stream again from row 1",
                    &[
                        ("stream", &stream.name),
                        ("row", &start_at_row),
                        ("expected_id", &expected),
                        ("found_id", &found),
                        ("restart", &restarts),
                    ],
                );
                next_row = 1;
                last_id = None;
                continue;
            }
        }
        let records: Vec<_> = records.collect();
        let n = records.len() as u64;
        // Row 0 is a row of its own unless row 1 (or any row of this page:
        // an instance that reads 0 as 1) is the same conversion.
        let zero = zero
            .filter(|(z, _)| {
                let key = z.key();
                !records.iter().any(|r| r.key() == key)
            })
            .map(|(z, warnings)| {
                warn_empty(cx, &format!("stream `{}` row 0", stream.name), &warnings);
                z
            });
        if !overlap {
            row_zero = zero.is_some();
        }
        // With `row_count`, done once every row was read (row 0 included);
        // without it (not documented for EventConversionChanges), done at a
        // short page, never after one full page (an absent total once read
        // as 0 lost every later page).
        let read = next_row - 1 + n + u64::from(row_zero);
        let done = unpaged
            || match total {
                Some(total) => read >= total,
                None => answered < asked,
            };
        // No new row while `row_count` says more remain: taking the empty
        // page as the end marked the stream complete without them (QA34-D
        // H2). The pages before it stay committed.
        if let (0, Some(total), false) = (n, total, done) {
            return Err(PluginError::bad_response(format!(
                "{what}: no rows, yet row_count is {total} ({read} read so far): more pages \
                 said to remain after an empty one"
            )));
        }
        if let Some(last) = records.last() {
            last_id = Some(last.key());
        }
        let mut emitted = false;
        for r in zero.into_iter().chain(records) {
            match (stream.until, occurred_at(&r)) {
                (Some(until), Some(at)) if at >= until => left_out += 1,
                _ => {
                    emitted = true;
                    cx.emit(r);
                }
            }
        }
        next_row += n;
        if done {
            watermark = watermark.max(stream.end);
        }
        // A backfill's page whose rows were all left out has nothing to
        // commit; committing it anyway would count as an empty page, and
        // the host stops a session after `MAX_EMPTY_PAGES` of them in a row
        // (`plugin_api::validate`).
        if !emitted && !done {
            continue;
        }
        cx.commit(Checkpoint {
            stream: stream.name.into(),
            watermark,
            state: json!({
                "key": stream.key,
                "next_row": next_row,
                "last_id": last_id,
                "row_zero": row_zero,
                "complete": done,
            }),
            covers: None,
        });
        if done {
            break;
        }
    }
    cx.debug(
        "stream done",
        &[
            ("stream", &stream.name),
            ("rows", &(next_row - 1)),
            ("restarts", &restarts),
        ],
    );
    if let (Some(until), true) = (stream.until, left_out > 0) {
        cx.info(
            "backfill: changes of conversions after the window left out; they are read when their own days are synced",
            &[
                ("stream", &stream.name),
                ("rows", &left_out),
                ("from", &until.to_rfc3339()),
            ],
        );
    }
    Ok(())
}

/// When a record's conversion occurred (every CAKE record is one).
fn occurred_at(r: &plugin_api::Record) -> Option<DateTime<Utc>> {
    match r {
        plugin_api::Record::Conversion(c) => Some(c.occurred_at),
        _ => None,
    }
}

/// Reads row 0 of a stream on its own (`start_at_row = 0`, `row_limit = 1`)
/// before its first page, which starts at row 1.
///
/// Whether `start_at_row` counts from 1 (as this plugin has paged since it
/// was written, from third-party code) or from 0 (CAKE's newer API docs:
/// "Pagination offset. Default 0") is not verified. Counted from 0, row 1 is
/// the *second* row, and every read without this lost its first row (the
/// lowest `event_conversion_id`) while the overlap check passed (QA20 F3).
/// Counted from 1, row 0 is nothing, or row 1 again, or refused: the caller
/// keeps the row only when the first page does not hold it too, and a
/// `success: false` answer here counts as no row (the first page's answer
/// then says what is wrong, if anything). An HTTP error fails the session.
/// An answer with more than one row (the instance ignores `row_limit`) is
/// not used: the first page then holds every row. Costs one request per
/// stream read from its first row.
async fn probe_row_zero(
    cx: &Cx,
    client: &mut Client,
    reading: &Reading<'_>,
    stream: &Stream,
    url: &str,
    params: &Value,
) -> Result<Option<(plugin_api::Record, row::Warnings)>, PluginError> {
    let mut params = params.clone();
    params["start_at_row"] = json!(0);
    params["row_limit"] = json!(1);
    let what = format!("stream `{}` row 0", stream.name);
    let resp = client
        .send(
            Request::post(url)
                .json_body(&params)
                .idempotent()
                .label(format!("{} row 0", stream.method)),
            &what,
        )
        .await?;
    match row::parse_page(
        &resp.body,
        reading.currencies,
        reading.undispositioned,
        reading.instance_tz,
    ) {
        Ok(page) if page.records.len() == 1 => {
            // Row 0 is usually row 1 again, which the first page warns
            // about; a row of its own is warned about here.
            Ok(page.records.into_iter().next().map(|r| (r, page.warnings)))
        }
        Ok(_) => Ok(None),
        Err(PageError::Malformed(m)) if m.starts_with("CAKE answered success=false") => {
            cx.debug(
                "row 0 refused; rows are counted from 1",
                &[("stream", &stream.name), ("answer", &m)],
            );
            Ok(None)
        }
        Err(e) => Err(page_error(cx, &what, e)),
    }
}

// Generates the C ABI exports. `id` must equal the manifest id.
plugin_api::export_plugin!(id = "cake", connector = Cake);

#[cfg(test)]
mod tests;
