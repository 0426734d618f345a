//! # PartnerStack connector (vendor API v2)
//!
//! Pulls a vendor's partner **rewards** (commissions) and the
//! **transactions** they pay on, producing one canonical
//! [`plugin_api::Conversion`] per reward, keyed by the reward `key`.
//!
//! ## The API (`/api/v2`)
//! - Base `https://api.partnerstack.com/api/v2`; auth HTTP Basic with the
//!   public key as user name and the private key as password (both secret,
//!   injected by the host: manifest [`AuthSpec::Basic`]). Test and
//!   production keys are separate pairs.
//! - `GET /transactions` and `GET /rewards` with `min_created`/`max_created`
//!   (epoch **milliseconds**), `limit` 1..=250 and cursor paging by
//!   `starting_after=<last item key>`; answers
//!   `{"data": {"items": [...], "has_more": bool}, "message", "status"}`,
//!   errors `{"message", "status"}` with the same HTTP status.
//! - Rewards can be filtered by creation date only (no `min_updated`): a
//!   reward's later status change is seen only by reading its creation day
//!   again.
//! - Amounts are integer **cents**; timestamps epoch milliseconds.
//! - Days: the window's (and the review's) days are the connector's
//!   `timezone`'s ([`Cx::timezone`]): `min_created`/`max_created` are the
//!   first and last millisecond of those days in that zone.
//! - No rate limits are documented; 429s are waited out (see [`Client`]).
//!
//! ## Stream `rewards`
//! Every reward created in the session window. First the window's
//! transactions are read into a lookup (sale amount, currency, order id) for
//! rewards whose embedded transaction carries only a key; then rewards are
//! read page by page, each page committed with the cursor. Vendors review
//! rewards (approve, decline, hold) during the month before the invoice, and
//! the API filters rewards only by creation date, so the default lookback
//! (62 days) re-pulls the current and the previous month; a changed reward is
//! an upsert of the same key. Status mapping: see [`row`]. The checkpoint
//! also keeps `since`, the first day the stream has read (see [`since`]).
//!
//! ## Stream `rewards_review`
//! A reward refunded or declined after it left the lookback (a subscription
//! refunded in month 4: `payment_status = paid_and_refunded`) would never be
//! read again and would stay approved. So, at most every
//! `review_every_days` (default 7, by the host's clock `cx.now()` against
//! the `last_review` time in this stream's checkpoint), the review re-reads
//! the rewards created in the `review_days` (default 180) before the session
//! window, the window itself being read by `rewards`: the range's
//! transactions first (the same lookup), then its rewards page by page, each
//! page committed with its cursor, so a review cut short resumes after its
//! last committed page in the next session (whether due or not), over the
//! range it started with. A reward that did not change is an upsert that
//! stores nothing. `review_days = 0` turns the review off. Details and
//! cost: see [`review`].
//!
//! Both streams' watermarks reach the end of the session window (the review
//! commits one checkpoint even when it is not due), so the review never
//! makes the host's scheduled window start earlier.
//!
//! A malformed reward fails its page: nothing of that page is committed, and
//! the error names the stream, the page, the reward key and the field. So
//! does a page with no items that says more follow (`has_more`): the pages
//! before it stay committed, the window is not marked complete.

mod config;
pub mod review;
#[allow(dead_code)] // the same file in every affiliate connector; not all read every shape
pub mod row;

use config::Settings;
use plugin_api::chrono::{DateTime, Duration, NaiveDate, Utc};
use plugin_api::chrono_tz::Tz;
use plugin_api::protocol::{AuthSpec, Checkpoint, PluginKind, RecordKind, StreamSpec, Window};
use plugin_api::sdk::day_start;
use plugin_api::serde_json::{json, Value};
use plugin_api::throttle::{RetryAfter, Throttled};
use plugin_api::{Connector, Cx, Manifest, PluginError, Request};
use std::cell::RefCell;

/// A session's request sender. PartnerStack documents no rate limits, but
/// its API does answer 429 (usually with `Retry-After`); one that reaches
/// the plugin (the host gave up) is waited out. Errors are
/// `{"message", "status"}` bodies with a matching HTTP status.
pub type Client = Throttled<RetryAfter>;

pub use row::{parse_rewards_page, RewardsPage, Transactions};

/// The connector type. It has no fields: all state lives in the session.
#[derive(Debug)]
pub struct PartnerStack;

/// Rewards created in the session window.
pub const REWARDS: &str = "rewards";
/// The periodic re-read of rewards created before the window (see [`review`]).
pub const REWARDS_REVIEW: &str = "rewards_review";

impl Connector for PartnerStack {
    fn manifest() -> Manifest {
        Manifest {
            id: "partnerstack".into(),
            name: "PartnerStack (vendor API v2)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Affiliate,
            description: "PartnerStack vendor connector: partner rewards (commissions, integer \
                          cents) with their review status, sale amounts and order ids from \
                          transactions; starting_after cursor paging; Basic auth; a periodic \
                          review re-reads older rewards for late refunds and declines."
                .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["public_key", "private_key"],
                "properties": {
                    "public_key": { "type": "string", "x-secret": true,
                        "description": "Vendor public key (Basic-auth user name)." },
                    "private_key": { "type": "string", "x-secret": true,
                        "description": "Vendor private key (Basic-auth password)." },
                    "page_size": { "type": "integer", "minimum": 1, "maximum": 250, "default": 250,
                        "description": "Items per page." },
                    "default_currency": { "type": "string", "minLength": 3, "maxLength": 3, "default": "USD",
                        "description": "Currency of a reward that names none." },
                    "review_days": { "type": "integer", "minimum": 0, "maximum": config::MAX_REVIEW_DAYS, "default": 180,
                        "description": "Days of rewards created before the window that the review re-reads (late refunds and declines); 0 turns the review off." },
                    "review_every_days": { "type": "integer", "minimum": 1, "maximum": config::MAX_REVIEW_EVERY_DAYS, "default": 7,
                        "description": "Least number of days between two reviews." },
                    "base_url": { "type": "string", "description": "Override the API base URL (tests, proxies)." }
                }
            }),
            streams: vec![
                StreamSpec {
                    name: REWARDS.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("occurred_at".into()),
                    default_lookback_days: 62,
                },
                StreamSpec {
                    name: REWARDS_REVIEW.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("occurred_at".into()),
                    // It re-reads no trailing window of its own: the days
                    // before the window, by `review_days`. (The host takes
                    // the largest stream default as the connector's.)
                    default_lookback_days: 0,
                },
            ],
            allowed_hosts: vec!["api.partnerstack.com".into()],
            default_base_url: Some("https://api.partnerstack.com/api/v2".into()),
            auth: Some(AuthSpec::Basic {
                username: "public_key".into(),
                password: "private_key".into(),
            }),
            max_window_days: Some(92),
            max_history_days: None,
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let mut client = Client::new(&cx, RetryAfter);
        client
            .send(
                Request::get(format!("{}/rewards", cx.base_url()))
                    .query("limit", 1)
                    .label("check"),
                "check",
            )
            .await?;
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings = cx.settings::<Settings>()?.validate(cx.connector_id())?;
        let window = cx.window()?;
        let tz = cx.timezone()?;
        let mut client = Client::new(&cx, RetryAfter);
        let since = since(cx.checkpoint(REWARDS), window.from);
        let defaulted = DefaultedCurrency::default();
        let mut result = Ok(());
        if cx.wants(REWARDS) {
            result = read_window(&cx, &mut client, &settings, window, tz, since, &defaulted).await;
        }
        if result.is_ok() && cx.wants(REWARDS_REVIEW) {
            result = review::read(&cx, &mut client, &settings, window, tz, since, &defaulted).await;
        }
        // Also when a stream failed: the pages committed before it count.
        defaulted.report(&cx, &settings.default_currency);
        result
    }
}

/// The rewards of a session whose currency is only the configured
/// `default_currency` (neither the reward nor its transaction named one,
/// e.g. a reward that embeds only its transaction's key, the transaction
/// created before the window read). Reported once per session, with the
/// count, as a warning naming the setting: a vendor not invoicing in that
/// currency would otherwise get commissions in the wrong unit without a word.
#[derive(Debug, Default)]
pub(crate) struct DefaultedCurrency(RefCell<(usize, Vec<String>)>);

impl DefaultedCurrency {
    /// How many rewards' keys [`DefaultedCurrency::report`] quotes.
    const EXAMPLES: usize = 3;

    fn add(&self, keys: &[String]) {
        let mut d = self.0.borrow_mut();
        d.0 += keys.len();
        let room = Self::EXAMPLES.saturating_sub(d.1.len());
        d.1.extend(keys.iter().take(room).cloned());
    }

    fn report(&self, cx: &Cx, default_currency: &str) {
        let (count, examples) = &*self.0.borrow();
        if *count == 0 {
            return;
        }
        cx.warn(
            "rewards stored in the configured default currency: neither the reward nor its \
             transaction named one; check settings.default_currency",
            &[
                ("count", count),
                ("default_currency", &default_currency),
                ("setting", &"default_currency"),
                ("examples", &examples.join(",")),
            ],
        );
    }
}

/// The first day the connector has read rewards from, as the `rewards`
/// checkpoint records it (`since`), lowered to this window's first day (a
/// backfill of older days); the window's first day when `rewards` has no
/// checkpoint yet (nothing is stored). `None` when a checkpoint exists
/// without `since` (written before it was recorded): older rewards may be
/// stored, how old is unknown.
///
/// The review reads nothing created before it, so it never imports rewards
/// from before the connector's history (e.g. on a new installation).
pub fn since(rewards: Option<&Checkpoint>, window_from: NaiveDate) -> Option<NaiveDate> {
    match rewards {
        None => Some(window_from),
        Some(c) => c
            .state
            .get("since")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<NaiveDate>().ok())
            .map(|s| s.min(window_from)),
    }
}

/// The instant the day after a window's last day begins in the
/// connector's zone `tz`: its watermark once read.
fn window_end(window: Window, tz: Tz) -> DateTime<Utc> {
    day_start(window.to + Duration::days(1), tz)
}

/// `min_created`/`max_created` of the days `days.from..=days.to` of the
/// connector's zone `tz`: the first and the last millisecond (QA20 F2: they
/// were UTC's days whatever the connector's `timezone`).
fn created_millis(days: Window, tz: Tz) -> (i64, i64) {
    (
        day_start(days.from, tz).timestamp_millis(),
        window_end(days, tz).timestamp_millis() - 1,
    )
}

/// Stream `rewards`: the window's transactions, then its rewards, resuming
/// after the last committed page of this window (a completed window is
/// pulled again from the start).
#[allow(clippy::too_many_arguments)]
async fn read_window(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    window: Window,
    tz: Tz,
    since: Option<NaiveDate>,
    defaulted: &DefaultedCurrency,
) -> Result<(), PluginError> {
    let (start, end) = (day_start(window.from, tz), window_end(window, tz));
    let created = created_millis(window, tz);
    let transactions = read_transactions(cx, client, settings, created, "").await?;
    let window_key = format!("{}..{}", window.from, window.to);
    let cp = cx.checkpoint(REWARDS);
    let mut watermark = cp.map(|c| c.watermark.max(start)).unwrap_or(start);
    let after: Option<String> = cp
        .filter(|c| {
            c.state.get("window").and_then(Value::as_str) == Some(window_key.as_str())
                && c.state.get("complete").and_then(Value::as_bool) != Some(true)
        })
        .and_then(|c| {
            c.state
                .get("after")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let since = since.map(|d| d.to_string());
    let rows = read_rewards(
        cx,
        client,
        settings,
        &transactions,
        defaulted,
        REWARDS,
        created,
        after,
        |after, complete| {
            if complete {
                watermark = watermark.max(end);
            }
            Checkpoint {
                stream: REWARDS.into(),
                watermark,
                state: json!({ "window": window_key, "after": after, "complete": complete, "since": since }), covers: None,
            }
        },
    )
    .await?;
    cx.debug(
        "stream done",
        &[
            ("stream", &REWARDS),
            ("rows", &rows),
            ("transactions", &transactions.len()),
        ],
    );
    Ok(())
}

/// The transactions created in `created` (ms, inclusive), as a lookup for
/// rewards that only name theirs. `what` prefixes the page names in labels
/// and errors (empty for the window's).
async fn read_transactions(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    created: (i64, i64),
    what: &str,
) -> Result<Transactions, PluginError> {
    let mut transactions = Transactions::new();
    let mut after: Option<String> = None;
    let mut page = 1u32;
    loop {
        let what = format!("{what}transactions page {page}");
        let resp = client
            .send(
                list(cx, "transactions", created, settings.page_size, &after).label(what.clone()),
                &what,
            )
            .await?;
        let row::TransactionsPage {
            items,
            has_more,
            last_key,
        } = row::parse_transactions_page(&resp.body)
            .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
        transactions.extend(items);
        after = last_key;
        if has_more && after.is_none() {
            return Err(more_after_empty(&what));
        }
        if !has_more {
            return Ok(transactions);
        }
        page += 1;
    }
}

/// Reads the rewards created in `created` (ms, inclusive) page by page from
/// the cursor `after`, emitting each page and committing it with the
/// checkpoint `checkpoint(cursor, complete)` builds (the cursor is the last
/// key read so far). Returns the number of rewards read.
#[allow(clippy::too_many_arguments)]
async fn read_rewards(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    transactions: &Transactions,
    defaulted: &DefaultedCurrency,
    stream: &str,
    created: (i64, i64),
    mut after: Option<String>,
    mut checkpoint: impl FnMut(&Option<String>, bool) -> Checkpoint,
) -> Result<usize, PluginError> {
    let mut page = 1u32;
    let mut rows = 0usize;
    loop {
        let what = format!("stream `{stream}` page {page}");
        let resp = client
            .send(
                list(cx, "rewards", created, settings.page_size, &after).label(what.clone()),
                &what,
            )
            .await?;
        let RewardsPage {
            records,
            has_more,
            last_key: last,
            default_currency_keys,
        } = row::parse_rewards_page(&resp.body, transactions, &settings.default_currency)
            .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
        // An empty page gives no key to page on from: with `has_more` it is
        // not the last one, and taking it as the end marked the window
        // complete without the rest (QA34-D H1).
        if has_more && last.is_none() {
            return Err(more_after_empty(&what));
        }
        rows += records.len();
        for r in records {
            cx.emit(r);
        }
        defaulted.add(&default_currency_keys);
        if last.is_some() {
            after = last;
        }
        cx.commit(checkpoint(&after, !has_more));
        if !has_more {
            return Ok(rows);
        }
        page += 1;
    }
}

/// A page with no items that says more follow (`data.has_more`): there is
/// no last key to page on from, so the page fails (the pages before it are
/// committed) rather than end the stream as complete without the rest, as
/// the Everflow and TikTok connectors fail theirs (QA34-D H1).
fn more_after_empty(what: &str) -> PluginError {
    PluginError::bad_response(format!(
        "{what}: no rows, yet data.has_more is true: more pages said to remain after an empty one"
    ))
}

/// `GET /{resource}?min_created=&max_created=&limit=[&starting_after=]`.
fn list(
    cx: &Cx,
    resource: &str,
    (min_ms, max_ms): (i64, i64),
    limit: u32,
    after: &Option<String>,
) -> Request {
    let mut req = Request::get(format!("{}/{resource}", cx.base_url()))
        .query("min_created", min_ms)
        .query("max_created", max_ms)
        .query("limit", limit);
    if let Some(a) = after {
        req = req.query("starting_after", a);
    }
    req
}

// Generates the C ABI exports. `id` must equal the manifest id.
plugin_api::export_plugin!(id = "partnerstack", connector = PartnerStack);

#[cfg(test)]
mod tests;
