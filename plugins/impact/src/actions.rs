//! The `actions` stream: `/Actions` by event date, per campaign, page by page.
//!
//! Each page is committed with a checkpoint naming the window, the campaign
//! position and the next page's URI, so a session that died mid-window
//! resumes at the page after the last committed one. The watermark moves to
//! the end of the window only after the last page of the last campaign.

use crate::action;
use crate::client::Client;
use crate::config::Settings;
use crate::{base_request, relative_request, window_bounds, ACTIONS};
use plugin_api::chrono::{DateTime, Duration, NaiveTime, Utc};
use plugin_api::protocol::Checkpoint;
use plugin_api::serde_json::{json, Value};
use plugin_api::{Cx, PluginError, Record, Window};
use std::collections::HashSet;

/// Where a stream is inside its window; saved in every checkpoint.
#[derive(Debug)]
pub struct Progress {
    /// `from..to` of the window the state belongs to.
    pub window_key: String,
    /// Index into `campaign_ids` of the campaign being read.
    pub campaign_pos: usize,
    /// Relative URI of the next page of that campaign, if mid-campaign.
    pub next: Option<String>,
    /// The watermark to commit (never behind the committed one).
    pub watermark: DateTime<Utc>,
}

impl Progress {
    /// Resumes from the stream's checkpoint when it belongs to this window
    /// and that window was not completed (a completed window is pulled again
    /// from the start: that re-pull is how restatements are caught).
    pub fn resume(cx: &Cx, stream: &str, window: Window) -> Progress {
        let window_key = format!("{}..{}", window.from, window.to);
        let start = window.from.and_time(NaiveTime::MIN).and_utc();
        let cp = cx.checkpoint(stream);
        let watermark = cp.map(|c| c.watermark.max(start)).unwrap_or(start);
        let same = cp.filter(|c| {
            c.state.get("window").and_then(Value::as_str) == Some(window_key.as_str())
                && c.state.get("complete").and_then(Value::as_bool) != Some(true)
        });
        Progress {
            campaign_pos: same
                .and_then(|c| c.state.get("campaign_pos").and_then(Value::as_u64))
                .unwrap_or(0) as usize,
            next: same.and_then(|c| {
                c.state
                    .get("next")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
            window_key,
            watermark,
        }
    }

    /// Commits what was emitted so far; `finished` moves the watermark to the
    /// end of the window.
    pub fn commit(&mut self, cx: &Cx, stream: &str, window: Window, finished: bool) {
        if finished {
            let end = (window.to + Duration::days(1))
                .and_time(NaiveTime::MIN)
                .and_utc();
            self.watermark = self.watermark.max(end);
        }
        cx.commit(Checkpoint {
            stream: stream.into(),
            watermark: self.watermark,
            state: json!({
                "window": self.window_key,
                "campaign_pos": self.campaign_pos,
                "next": self.next,
                "complete": finished,
            }),
        });
    }
}

/// Reads the stream over the session window; records the emitted ids.
pub async fn read(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    emitted: &mut HashSet<String>,
) -> Result<(), PluginError> {
    let window = cx.window()?;
    let (start, end) = window_bounds(window);
    let mut progress = Progress::resume(cx, ACTIONS, window);
    let mut pages = 0u64;
    let mut rows = 0u64;
    while progress.campaign_pos < settings.campaign_ids.len() {
        let campaign = settings.campaign_ids[progress.campaign_pos];
        let mut page_no = 1u64;
        loop {
            let req = match &progress.next {
                Some(uri) => relative_request(cx, settings, uri),
                None => base_request(cx, settings, "Actions")
                    .query("CampaignId", campaign)
                    .query("ActionDateStart", &start)
                    .query("ActionDateEnd", &end)
                    .query("PageSize", settings.page_size),
            }
            .label(format!("actions campaign {campaign} page {page_no}"));
            let what = format!("stream `{ACTIONS}` campaign {campaign} page {page_no}");
            let resp = client.send(req, &what).await?;
            let (env, records) = action::parse_actions_page(&resp.body)
                .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
            if env.page > 0 {
                page_no = env.page;
            }
            rows += records.len() as u64;
            for r in records {
                if let Record::Conversion(c) = &r {
                    emitted.insert(c.external_id.clone());
                }
                cx.emit(r);
            }
            pages += 1;
            progress.next = env.next;
            if progress.next.is_none() {
                progress.campaign_pos += 1;
            }
            let finished = progress.campaign_pos >= settings.campaign_ids.len();
            progress.commit(cx, ACTIONS, window, finished);
            if progress.next.is_none() {
                break;
            }
            page_no += 1;
        }
    }
    cx.info(
        "stream done",
        &[("stream", &ACTIONS), ("pages", &pages), ("rows", &rows)],
    );
    Ok(())
}
