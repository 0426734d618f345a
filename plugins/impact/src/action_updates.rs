//! The `action_updates` stream: the `/ActionUpdates` changelog over the
//! window (by `UpdateDate`), used to catch modifications and reversals of
//! actions whose event date is older than the re-pulled window.
//!
//! A changelog row is not an action: it carries the state and deltas of one
//! modification. For every action it names that this session has not already
//! emitted from the `actions` stream, the current action is fetched with
//! `GET /Actions/{Id}` (its `ActionUri`) and emitted whole, so the store
//! upserts the same key as a new revision. Each changelog page is committed
//! after the actions it names were fetched.
//!
//! A changelog query over more than 10 × `PageSize` rows is refused like an
//! `/Actions` one and split the same way (see [`crate::actions::Progress`]).

use crate::action;
use crate::actions::Progress;
use crate::client::Client;
use crate::config::Settings;
use crate::{base_request, day_bounds, relative_request, ACTION_UPDATES};
use plugin_api::serde_json::Value;
use plugin_api::{Cx, PluginError};
use std::collections::HashSet;

/// Reads the changelog; `emitted` holds action ids already emitted this
/// session (they are not fetched again) and grows with the fetched ones.
pub async fn read(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    emitted: &mut HashSet<String>,
) -> Result<(), PluginError> {
    let window = cx.window()?;
    let mut progress = Progress::resume(cx, ACTION_UPDATES, window);
    let mut fetched = 0u64;
    while progress.campaign_pos < settings.campaign_ids.len() {
        let campaign = settings.campaign_ids[progress.campaign_pos];
        let (from, to) = progress.range();
        let (start, end) = day_bounds(from, to);
        let note = progress.range_note(window);
        let mut page_no = 1u64;
        loop {
            let req = match &progress.next {
                Some(uri) => relative_request(cx, settings, uri),
                None => base_request(cx, settings, "ActionUpdates")
                    .query("CampaignId", campaign)
                    .query("StartDate", &start)
                    .query("EndDate", &end)
                    .query("PageSize", settings.page_size),
            }
            .label(format!(
                "action updates campaign {campaign} page {page_no}{note}"
            ));
            let what =
                format!("stream `{ACTION_UPDATES}` campaign {campaign} page {page_no}{note}");
            let resp = client
                .send_allowing(req, &what, action::too_many_results)
                .await?;
            if action::too_many_results(&resp) {
                progress.split_refused(cx, ACTION_UPDATES, campaign, settings, &resp)?;
                break;
            }
            let body: Value = resp.json(&what)?;
            let (env, rows) = action::page(&body, "ActionUpdates")
                .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
            if env.page > 0 {
                page_no = env.page;
            }
            // Distinct actions named on this page, in order.
            let mut todo: Vec<(String, Option<String>)> = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                let id = action::opt_text(row, "ActionId").ok_or_else(|| {
                    PluginError::bad_response(format!(
                        "{what}: record {i} (Id {}): field `ActionId` is missing or empty",
                        action::row_id(row)
                    ))
                })?;
                if emitted.contains(&id) || todo.iter().any(|(t, _)| *t == id) {
                    continue;
                }
                todo.push((id, action::opt_text(row, "ActionUri")));
            }
            for (id, uri) in todo {
                let uri = uri.unwrap_or_else(|| {
                    format!(
                        "/Advertisers/{}/Actions/{}",
                        settings.account_sid,
                        plugin_api::sdk::encode_component(&id)
                    )
                });
                let what_one = format!("{what}: action {id}");
                let resp = client
                    .send(
                        relative_request(cx, settings, &uri).label("action by id"),
                        &what_one,
                    )
                    .await?;
                let row: Value = resp.json(&what_one)?;
                let record = action::to_conversion(&row)
                    .map_err(|e| PluginError::bad_response(format!("{what_one} (Id {id}): {e}")))?;
                cx.emit(record);
                emitted.insert(id);
                fetched += 1;
            }
            progress.next = env.next;
            if progress.next.is_none() {
                progress.range_done(window);
            }
            let finished = progress.campaign_pos >= settings.campaign_ids.len();
            progress.commit(cx, ACTION_UPDATES, window, finished);
            if progress.next.is_none() {
                break;
            }
            page_no += 1;
        }
    }
    cx.info(
        "stream done",
        &[("stream", &ACTION_UPDATES), ("actions_fetched", &fetched)],
    );
    Ok(())
}
