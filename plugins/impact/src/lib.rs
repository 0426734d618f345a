//! # Impact.com connector (Brand API)
//!
//! Pulls a brand's **actions** (Impact's name for conversions, i.e. the
//! partners' commission claims) per campaign, and re-reads older actions that
//! were modified or locked (approved) in the window. Produces canonical
//! [`plugin_api::Conversion`] records keyed by the action `Id`.
//!
//! ## The API (Brand "Advertisers" API, `IR-Version: 14` by default)
//! - Base `https://api.impact.com/Advertisers/{AccountSID}/`; JSON via
//!   `Accept: application/json`.
//! - Auth: HTTP Basic, user = account SID, password = auth token. The host
//!   injects it (manifest [`AuthSpec::Basic`]); the SID also appears in every
//!   path, so it is a plain setting while the token is a secret one.
//! - `GET /Actions?CampaignId=&ActionDateStart=&ActionDateEnd=&PageSize=`:
//!   `CampaignId` is required, the date range (on `EventDate`) may span at
//!   most 45 days (the manifest's `max_window_days` is 44: see
//!   [`MAX_WINDOW_DAYS`]), `PageSize` is
//!   2000..=20000, and a query matching more than 10 × `PageSize` rows is
//!   refused (an error asking for a shorter range or a larger `PageSize`;
//!   see `action::too_many_results` for how it is recognised). Rows under
//!   `Actions`. The same endpoint filters on the last-updated date instead
//!   with `StartDate=&EndDate=`, and on `LockingDate` with
//!   `LockingDateStart=&LockingDateEnd=` (same limits).
//! - `GET /Campaigns` (rows under `Campaigns`): read by `check`, every page
//!   until each configured campaign has been seen, to confirm the account
//!   can see it (module `campaigns`).
//! - Not used: `GET /ActionUpdates` (a changelog of deltas, not actions) and
//!   any single-action route (none is documented).
//! - Paging: an `@`-envelope of **string** fields (`"@page": "1"`,
//!   `"@numpages"`, `"@nextpageuri"`); `@nextpageuri` is a path relative to
//!   the host, empty on the last page. A page whose `@page` < `@numpages`
//!   but whose `@nextpageuri` is missing or empty is refused (QA35d H3), and
//!   so is one whose rows differ from its own counts (`@start`..`@end`,
//!   `@pagesize` before the last page, `@total` on the last), each checked
//!   when sent (QA37 R-M2; `action::check_rows`).
//! - Rate limits: 429 with `X-RateLimit-*` (brand) or `X-RateLimit-*-hour` +
//!   `RateLimit-Reset` (partner); see [`client`].
//!
//! ## Days
//! The window's days are the connector's `timezone`'s ([`Cx::timezone`]):
//! every date filter runs from the instant the first day begins there to
//! the instant the day after the last begins (see `day_bounds`), so
//! `reckon sync impact --from D --to D` reads day D of that zone. Impact
//! takes ISO-8601 date-times with a zone; the bounds are written in UTC.
//!
//! ## Streams
//! - `actions`: every action whose `EventDate` falls in the session window,
//!   per configured campaign. `State` maps PENDING/APPROVED/REVERSED to the
//!   canonical status, `LockingDate` to `locked_at`, `Oid` to `order_id`,
//!   `Payout` to the commission and `Amount` to the sale amount.
//! - `action_updates`: actions whose last-updated date (reversals, amount
//!   changes) or locking date (PENDING → APPROVED) falls in the window, read
//!   from `/Actions` by those two filters, a page at a time. They are mostly
//!   actions whose event date lies *before* the window; those the `actions`
//!   stream already emitted in the session are skipped. Cost: two more
//!   queries per campaign and window (plus their extra pages), however many
//!   actions changed.
//!
//! Too many rows for one query: when Impact refuses a campaign's date range
//! as more than 10 × `page_size` rows, the stream splits that range into
//! halves and reads each (again halving where refused), down to one day, so
//! a busy campaign needs no shorter `window_days`. Each page is still
//! committed with a checkpoint that lists the ranges left (module
//! `actions`). A single day over the cap fails the session with an error
//! naming the campaign, the day and `page_size`.
//!
//! A state change (PENDING → APPROVED at the locking date) is *not* an update
//! in Impact's sense: the locking-date pass of `action_updates` catches it
//! for any action, and the default lookback (65 days) re-pulls by event date
//! a trailing window longer than the usual locking period (month end + ~27
//! days) as well. Each re-pull upserts the same key, and a changed value
//! becomes a revision.
//!
//! History: Impact serves actions for only the prior 3 years (a range
//! starting earlier is refused with HTTP 400, "StartDate cannot be more than
//! 3 years in the past"; the manifest's `max_history_days` is
//! [`MAX_HISTORY_DAYS`]). The plugin neither refuses nor cuts such a window
//! before asking: Impact decides. When Impact refuses a query (a 4xx other
//! than 401/403/404/429) whose range starts before [`earliest_day`], the
//! session fails with a config error naming the window, that day and
//! Impact's words, instead of the bare 400 (QA44c C-L1).
//!
//! A malformed action fails its page: nothing of that page is committed, and
//! the error names the stream, campaign, page, action id and field. So do a
//! missing, `""` or null `Payout` or `Amount` (every action has both, `0`
//! when there is none), a timestamp without a UTC offset, and an id sent as
//! a number with a fraction; `101`, `"101"` and `101.0` are the same id
//! (QA35d M1-M3). The pages before a failed one stay committed, and the
//! window is not marked complete.

mod action;
mod action_updates;
mod actions;
mod campaigns;
pub mod client;
mod config;
#[allow(dead_code)] // the same file in every affiliate connector; not all read every shape
pub use action::{parse_actions_page, Envelope};
use config::Settings;
use plugin_api::chrono::{DateTime, NaiveDate, Utc};
use plugin_api::protocol::{AuthSpec, PluginKind, RecordKind, StreamSpec, Window};
use plugin_api::serde_json::json;
use plugin_api::{Connector, Cx, Manifest, PluginError, Request, Response};

/// The connector type. It has no fields: all state lives in the session.
#[derive(Debug)]
pub struct Impact;

/// Stream of actions by event date.
pub const ACTIONS: &str = "actions";
/// Stream of actions updated or locked in the window (mostly older ones).
pub const ACTION_UPDATES: &str = "action_updates";
/// The widest window, in days. Impact refuses a range whose start and end
/// are more than 45 days apart; a window's days run from a midnight to the
/// midnight after its last day, and in a zone with a DST change 45 of them
/// last 45 days and an hour, so windows are one day shorter (as PostHog's
/// connector does).
pub const MAX_WINDOW_DAYS: u32 = 44;
/// How far back Impact serves (the manifest's `max_history_days`): a
/// date range may start at most 3 years ago, so the prior 3 × 365 days.
pub const MAX_HISTORY_DAYS: u32 = 3 * 365;
/// Default trailing re-pull: longer than the usual locking period.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 65;
/// Impact's smallest `PageSize`.
pub const MIN_PAGE_SIZE: u32 = 2_000;
/// Impact's largest (and default) `PageSize`.
pub const MAX_PAGE_SIZE: u32 = 20_000;

impl Connector for Impact {
    fn manifest() -> Manifest {
        Manifest {
            id: "impact".into(),
            name: "Impact.com (Brand API)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Affiliate,
            description: "Impact.com brand connector: actions (conversions) per campaign with \
                          their PENDING/APPROVED/REVERSED state and locking date (stream \
                          actions, by event date), plus older actions updated or locked in the \
                          window (stream action_updates: /Actions by last-updated date and by \
                          locking date). Basic auth (account SID + auth token)."
                .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["account_sid", "auth_token", "campaign_ids"],
                "properties": {
                    "account_sid": { "type": "string", "minLength": 1,
                        "description": "Brand account SID (Impact → Settings → API). Not secret: it is part of every URL." },
                    "auth_token": { "type": "string", "x-secret": true,
                        "description": "Auth token paired with the SID (Basic-auth password)." },
                    "campaign_ids": { "type": "array", "minItems": 1, "items": { "type": "integer", "minimum": 1 },
                        "description": "Campaign (program) ids to pull." },
                    "page_size": { "type": "integer", "minimum": 2000, "maximum": 20000, "default": 20000,
                        "description": "Rows per page." },
                    "api_version": { "type": "integer", "minimum": 1, "default": 14,
                        "description": "IR-Version header (pins the record shape)." },
                    "min_remaining_requests": { "type": "integer", "minimum": 0, "default": 1,
                        "description": "Pause until the rate-limit window resets when fewer requests than this remain." },
                    "base_url": { "type": "string", "description": "Override the API base URL (tests, proxies)." }
                }
            }),
            streams: vec![
                StreamSpec {
                    name: ACTIONS.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("occurred_at".into()),
                    default_lookback_days: DEFAULT_LOOKBACK_DAYS,
                },
                StreamSpec {
                    name: ACTION_UPDATES.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("update_date, locking_date".into()),
                    default_lookback_days: DEFAULT_LOOKBACK_DAYS,
                },
            ],
            allowed_hosts: vec!["api.impact.com".into()],
            default_base_url: Some("https://api.impact.com".into()),
            auth: Some(AuthSpec::Basic {
                username: "account_sid".into(),
                password: "auth_token".into(),
            }),
            max_window_days: Some(MAX_WINDOW_DAYS),
            max_history_days: Some(MAX_HISTORY_DAYS),
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        validate(&cx, &settings)?;
        let mut client = client::client(&cx, 0);
        // Every page of the list, not just the first (QA30 L1).
        let missing = campaigns::not_listed(&cx, &mut client, &settings).await?;
        if let Some(id) = missing.first() {
            return Err(PluginError::config(format!(
                "connector `{}`: settings.campaign_ids: campaign {id} is not visible to account {}",
                cx.connector_id(),
                settings.account_sid
            )));
        }
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        validate(&cx, &settings)?;
        let window = cx.window()?;
        if window.days() > i64::from(MAX_WINDOW_DAYS) {
            return Err(PluginError::config(format!(
                "connector `{}`: window {}..{} spans {} days; this connector reads at most {MAX_WINDOW_DAYS} at a time (Impact's limit is 45 days from start to end)",
                cx.connector_id(),
                window.from,
                window.to,
                window.days()
            )));
        }
        let mut client = client::client(&cx, settings.min_remaining_requests);
        let mut emitted = std::collections::HashSet::new();
        if cx.wants(ACTIONS) {
            actions::read(&cx, &mut client, &settings, &mut emitted).await?;
        }
        if cx.wants(ACTION_UPDATES) {
            action_updates::read(&cx, &mut client, &settings, &mut emitted).await?;
        }
        Ok(())
    }
}

/// The first day a window may start on at `now`: the UTC date 1094 days
/// before today, so the window reaches back at most [`MAX_HISTORY_DAYS`]
/// days counting today, a day later than the bare limit so that an allowed
/// window stays allowed whichever zone Impact counts in. The host's rule for
/// `max_history_days` ([`plugin_api::protocol::first_served_day`]), on the
/// UTC date.
pub fn earliest_day(now: DateTime<Utc>) -> NaiveDate {
    plugin_api::protocol::first_served_day(MAX_HISTORY_DAYS, now.date_naive())
}

/// Explains Impact's refusal (`refusal`, a 4xx: see
/// `action::refused_query`) of a query whose range starts before
/// [`earliest_day`]: its bare 400 ("StartDate cannot be more than 3 years in
/// the past") becomes a config error saying why and from which day to sync.
/// The platform decides (its clock, its zone): a window is never refused
/// here before it is asked for, nor cut, so tests and demos on fixed dates
/// keep working as the years pass (QA44c C-L1).
fn explain_age(cx: &Cx, window: Window, refusal: &Response) -> PluginError {
    let earliest = earliest_day(cx.now());
    PluginError::config(format!(
        "connector `{}`: window {}..{} starts before {earliest}: Impact serves actions for \
         only the prior 3 years, so days before {earliest} cannot be read; sync from \
         {earliest} or later (Impact said: {})",
        cx.connector_id(),
        window.from,
        window.to,
        action::error_message(refusal)
    ))
}

fn validate(cx: &Cx, settings: &Settings) -> Result<(), PluginError> {
    let bad = |field: &str, what: &str| {
        Err(PluginError::config(format!(
            "connector `{}`: settings.{field}: {what}",
            cx.connector_id()
        )))
    };
    if settings.account_sid.trim().is_empty()
        || !settings
            .account_sid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad(
            "account_sid",
            "must be the account SID (letters and digits)",
        );
    }
    if settings.campaign_ids.is_empty() {
        return bad("campaign_ids", "list at least one campaign id");
    }
    if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&settings.page_size) {
        return bad("page_size", "Impact accepts 2000..=20000 rows per page");
    }
    Ok(())
}

/// A GET of `/Advertisers/{sid}/{resource}` with the JSON and version headers.
fn base_request(cx: &Cx, settings: &Settings, resource: &str) -> Request {
    with_headers(
        Request::get(format!(
            "{}/Advertisers/{}/{resource}",
            cx.base_url(),
            settings.account_sid
        )),
        settings,
    )
}

/// A GET of a relative URI the API returned (`@nextpageuri`).
fn relative_request(cx: &Cx, settings: &Settings, uri: &str) -> Request {
    with_headers(Request::get(format!("{}{uri}", cx.base_url())), settings)
}

fn with_headers(req: Request, settings: &Settings) -> Request {
    req.header("accept", "application/json")
        .header("ir-version", settings.api_version.to_string())
}

/// Bounds of the days `from..=to` of the connector's zone `tz` as Impact
/// wants them: the instants their first day begins and the day after their
/// last begins, written in UTC as tap-impact does (`2026-10-02T07:00:00Z`,
/// `2026-10-04T07:00:00Z` for Los Angeles' 2 and 3 October). The end is the
/// next day's first instant, not `23:59:59` (which left out the last second
/// of every window, QA20 F2): if Impact counts the end as inclusive, an
/// action at that very instant is read by both windows, an upsert of the
/// same key.
fn day_bounds(
    from: plugin_api::chrono::NaiveDate,
    to: plugin_api::chrono::NaiveDate,
    tz: plugin_api::chrono_tz::Tz,
) -> (String, String) {
    let at = |day| {
        plugin_api::sdk::day_start(day, tz)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    (at(from), at(to + plugin_api::chrono::Duration::days(1)))
}

// Generates the C ABI exports. `id` must equal the manifest id.
plugin_api::export_plugin!(id = "impact", connector = Impact);

#[cfg(test)]
mod tests;
