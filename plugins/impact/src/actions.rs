//! `/Actions` queries by a date filter, per campaign, page by page; and the
//! `actions` stream, which reads them by event date.
//!
//! Both streams read full action records from `/Actions`; they differ only
//! in the date the window is applied to ([`DateFilter`]): `actions` by event
//! date, `action_updates` (module [`crate::action_updates`]) by last-updated
//! date and by locking date. One loop ([`read_passes`]) serves both.
//!
//! Each page is committed with a checkpoint naming the window, the campaign
//! position, the filter (pass) being read, the date ranges of that pass still
//! to read and the next page's URI, so a session that died mid-window resumes
//! at the page after the last committed one. The watermark moves to the end
//! of the window only after the last page of the last pass of the last
//! campaign.
//!
//! Impact refuses a query that matches more than 10 × `PageSize` rows. Such
//! a refusal ([`action::too_many_results`]) splits the date range being read
//! into two halves, read one after the other (and split again if needed),
//! down to a single day; a single day still refused fails the session with an
//! error naming the campaign, the day and `page_size`. Nothing is committed
//! for a refused query (it carried no rows), and a checkpoint only ever says
//! "these ranges are left, the first from this page on", so a crash at any
//! point loses no range and skips no page.

use crate::action;
use crate::client::Client;
use crate::config::Settings;
use crate::{base_request, day_bounds, relative_request, MAX_PAGE_SIZE};
use plugin_api::chrono::{DateTime, Duration, NaiveDate, Utc};
use plugin_api::chrono_tz::Tz;
use plugin_api::protocol::Checkpoint;
use plugin_api::sdk::day_start;
use plugin_api::serde_json::{json, Value};
use plugin_api::{Cx, PluginError, Record, Response, Window};
use std::collections::HashSet;

/// Which date of an action an `/Actions` query applies the window to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFilter {
    /// `ActionDateStart` / `ActionDateEnd`: the event date (`EventDate`).
    Event,
    /// `StartDate` / `EndDate`: the last-updated date. Impact does not count
    /// a state transition (PENDING → APPROVED at the locking date) as an
    /// update; [`DateFilter::Locking`] catches those.
    LastUpdated,
    /// `LockingDateStart` / `LockingDateEnd`: the locking date, i.e. when
    /// the action was (or will be) approved.
    Locking,
}

impl DateFilter {
    /// The query parameters carrying the range's start and end.
    fn params(self) -> (&'static str, &'static str) {
        match self {
            DateFilter::Event => ("ActionDateStart", "ActionDateEnd"),
            DateFilter::LastUpdated => ("StartDate", "EndDate"),
            DateFilter::Locking => ("LockingDateStart", "LockingDateEnd"),
        }
    }

    /// The name saved in a checkpoint's `pass`.
    fn name(self) -> &'static str {
        match self {
            DateFilter::Event => "event_date",
            DateFilter::LastUpdated => "update_date",
            DateFilter::Locking => "locking_date",
        }
    }

    fn from_name(name: &str) -> Option<DateFilter> {
        [
            DateFilter::Event,
            DateFilter::LastUpdated,
            DateFilter::Locking,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }

    /// Words for errors and labels: nothing for the event date (the
    /// `actions` stream has one pass), else " by update date" and so on.
    fn note(self) -> &'static str {
        match self {
            DateFilter::Event => "",
            DateFilter::LastUpdated => " by update date",
            DateFilter::Locking => " by locking date",
        }
    }
}

/// Where a stream is inside its window; saved in every checkpoint.
#[derive(Debug)]
pub struct Progress {
    /// `from..to` of the window the state belongs to.
    pub window_key: String,
    /// Index into `campaign_ids` of the campaign being read.
    pub campaign_pos: usize,
    /// The filters read for each campaign, in order (one per pass).
    pub passes: &'static [DateFilter],
    /// Index into `passes` of the pass being read.
    pub pass: usize,
    /// Day ranges of that campaign's pass still to read, in order, together the
    /// rest of the window; never empty. The first is being read. Starts as
    /// the whole window; a range Impact refuses as too big becomes its halves.
    pub ranges: Vec<(NaiveDate, NaiveDate)>,
    /// Relative URI of the next page of the first range, if mid-range.
    pub next: Option<String>,
    /// The watermark to commit (never behind the committed one).
    pub watermark: DateTime<Utc>,
    /// The connector's zone: the window's days are its days.
    pub tz: Tz,
}

impl Progress {
    /// Resumes from the stream's checkpoint when it belongs to this window
    /// and that window was not completed (a completed window is pulled again
    /// from the start: that re-pull is how restatements are caught), and its
    /// pass is one of `passes`. A state without a pass was written by the
    /// `actions` stream before passes existed (by event date); any other
    /// (e.g. `action_updates` when it read the `/ActionUpdates` changelog,
    /// whose next-page URI is no `/Actions` page) starts the window over.
    pub fn resume(
        cx: &Cx,
        stream: &str,
        window: Window,
        tz: Tz,
        passes: &'static [DateFilter],
    ) -> Progress {
        let window_key = format!("{}..{}", window.from, window.to);
        let start = day_start(window.from, tz);
        let cp = cx.checkpoint(stream);
        let watermark = cp.map(|c| c.watermark.max(start)).unwrap_or(start);
        let pass_of = |c: &Checkpoint| {
            let filter = match c.state.get("pass") {
                None | Some(Value::Null) => Some(DateFilter::Event),
                Some(p) => p.as_str().and_then(DateFilter::from_name),
            };
            passes.iter().position(|p| Some(*p) == filter)
        };
        let same = cp.filter(|c| {
            c.state.get("window").and_then(Value::as_str) == Some(window_key.as_str())
                && c.state.get("complete").and_then(Value::as_bool) != Some(true)
                && pass_of(c).is_some()
        });
        Progress {
            passes,
            pass: same.and_then(pass_of).unwrap_or(0),
            campaign_pos: same
                .and_then(|c| c.state.get("campaign_pos").and_then(Value::as_u64))
                .unwrap_or(0) as usize,
            // A state without ranges (written before ranges existed) was
            // reading the whole window.
            ranges: same
                .and_then(|c| ranges_of(c.state.get("ranges")?, window))
                .unwrap_or_else(|| vec![(window.from, window.to)]),
            next: same.and_then(|c| {
                c.state
                    .get("next")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
            window_key,
            watermark,
            tz,
        }
    }

    /// The day range being read.
    pub fn range(&self) -> (NaiveDate, NaiveDate) {
        self.ranges[0]
    }

    /// The filter of the pass being read.
    pub fn filter(&self) -> DateFilter {
        self.passes[self.pass]
    }

    /// The first range's last page was read: on to the next range, else to
    /// the next pass, else to the next campaign (each with the whole window
    /// again).
    pub fn range_done(&mut self, window: Window) {
        self.next = None;
        self.ranges.remove(0);
        if self.ranges.is_empty() {
            self.pass += 1;
            if self.pass >= self.passes.len() {
                self.pass = 0;
                self.campaign_pos += 1;
            }
            self.ranges = vec![(window.from, window.to)];
        }
    }

    /// Replaces the first range by its two halves, to be read from their
    /// first page; false when it is a single day.
    pub fn split(&mut self) -> bool {
        let (from, to) = self.ranges[0];
        if from >= to {
            return false;
        }
        let mid = from + Duration::days((to - from).num_days() / 2);
        self.ranges
            .splice(0..1, [(from, mid), (mid + Duration::days(1), to)]);
        self.next = None;
        true
    }

    /// Commits what was emitted so far; `finished` moves the watermark to the
    /// end of the window.
    pub fn commit(&mut self, cx: &Cx, stream: &str, window: Window, finished: bool) {
        if finished {
            let end = day_start(window.to + Duration::days(1), self.tz);
            self.watermark = self.watermark.max(end);
        }
        let ranges: Vec<[String; 2]> = self
            .ranges
            .iter()
            .map(|(f, t)| [f.to_string(), t.to_string()])
            .collect();
        cx.commit(Checkpoint {
            stream: stream.into(),
            watermark: self.watermark,
            state: json!({
                "window": self.window_key,
                "campaign_pos": self.campaign_pos,
                "pass": self.filter().name(),
                "ranges": ranges,
                "next": self.next,
                "complete": finished,
            }),
            covers: None,
        });
    }

    /// " of {from}..{to}" when the range is only part of the window, for
    /// errors and labels.
    pub fn range_note(&self, window: Window) -> String {
        let (from, to) = self.range();
        if (from, to) == (window.from, window.to) {
            String::new()
        } else {
            format!(" of {from}..{to}")
        }
    }

    /// After Impact refused the first range as too many rows: splits it, or
    /// fails naming the stream, campaign and day when it is a single day.
    pub fn split_refused(
        &mut self,
        cx: &Cx,
        stream: &str,
        campaign: u64,
        settings: &Settings,
        refusal: &Response,
    ) -> Result<(), PluginError> {
        let (from, to) = self.range();
        if !self.split() {
            let remedy = if settings.page_size < MAX_PAGE_SIZE {
                format!(
                    "raise settings.page_size (now {}; Impact accepts up to {MAX_PAGE_SIZE}, \
                     i.e. {} rows per query)",
                    settings.page_size,
                    10 * MAX_PAGE_SIZE
                )
            } else {
                format!(
                    "settings.page_size is already Impact's maximum ({MAX_PAGE_SIZE}), so \
                     this day cannot be read through this API"
                )
            };
            return Err(PluginError::config(format!(
                "stream `{stream}` campaign {campaign}{}: Impact refuses even the single day \
                 {from} as more than 10 × page_size = {} rows ({}); {remedy}",
                self.filter().note(),
                10 * u64::from(settings.page_size),
                action::error_message(refusal)
            )));
        }
        let (first, second) = (self.ranges[0], self.ranges[1]);
        cx.info(
            "too many rows for one query; splitting the date range",
            &[
                ("stream", &stream),
                ("campaign", &campaign),
                ("pass", &self.filter().name()),
                ("range", &format!("{from}..{to}")),
                ("first", &format!("{}..{}", first.0, first.1)),
                ("second", &format!("{}..{}", second.0, second.1)),
            ],
        );
        Ok(())
    }
}

/// The ranges of a checkpoint state, if they are well-formed, ordered and
/// inside the window; else `None` (the caller reads the whole window again).
fn ranges_of(v: &Value, window: Window) -> Option<Vec<(NaiveDate, NaiveDate)>> {
    let day = |v: &Value| v.as_str()?.parse::<NaiveDate>().ok();
    let ranges: Vec<(NaiveDate, NaiveDate)> = v
        .as_array()?
        .iter()
        .map(|r| Some((day(r.get(0)?)?, day(r.get(1)?)?)))
        .collect::<Option<_>>()?;
    let ordered = ranges.windows(2).all(|w| w[0].1 < w[1].0);
    let inside = ranges
        .iter()
        .all(|(f, t)| window.from <= *f && f <= t && *t <= window.to);
    (!ranges.is_empty() && ordered && inside).then_some(ranges)
}

/// What [`read_passes`] does with an action this session already emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeats {
    /// Emit it again (the `actions` stream: every row of its window).
    Emit,
    /// Skip it (`action_updates`: the `actions` stream or an earlier pass
    /// already emitted it, seconds ago).
    Skip,
}

/// The `Page` parameter of a next-page URI.
fn page_param(uri: &str) -> Option<u64> {
    let query = uri.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("Page="))
        .and_then(|n| n.parse().ok())
}

/// Reads `/Actions` for every campaign and pass of `stream` over the session
/// window, committing each page; `emitted` holds the action ids emitted this
/// session and grows with the ones emitted here.
pub async fn read_passes(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    stream: &str,
    passes: &'static [DateFilter],
    repeats: Repeats,
    emitted: &mut HashSet<String>,
) -> Result<(), PluginError> {
    let window = cx.window()?;
    let tz = cx.timezone()?;
    let mut progress = Progress::resume(cx, stream, window, tz, passes);
    // Impact serves only the prior 3 years: its refusal of a range starting
    // before this day is explained (`explain_age`), never foreseen.
    let earliest = crate::earliest_day(cx.now());
    let (mut pages, mut rows, mut skipped, mut splits) = (0u64, 0u64, 0u64, 0u64);
    while progress.campaign_pos < settings.campaign_ids.len() {
        let campaign = settings.campaign_ids[progress.campaign_pos];
        let filter = progress.filter();
        let (start_param, end_param) = filter.params();
        let (from, to) = progress.range();
        let (start, end) = day_bounds(from, to, tz);
        let too_old = from < earliest;
        let pass = filter.note();
        let note = progress.range_note(window);
        // A resumed range starts at its next page's number, so labels and
        // errors name the page Impact serves (QA20 R20-5).
        let mut page_no = progress.next.as_deref().and_then(page_param).unwrap_or(1);
        loop {
            let req = match &progress.next {
                Some(uri) => relative_request(cx, settings, uri),
                None => base_request(cx, settings, "Actions")
                    .query("CampaignId", campaign)
                    .query(start_param, &start)
                    .query(end_param, &end)
                    .query("PageSize", settings.page_size),
            }
            .label(format!(
                "{stream} campaign {campaign}{pass} page {page_no}{note}"
            ));
            let what = format!("stream `{stream}` campaign {campaign}{pass} page {page_no}{note}");
            let resp = client
                .send_allowing(req, &what, |r| {
                    action::too_many_results(r) || (too_old && action::refused_query(r))
                })
                .await?;
            if action::too_many_results(&resp) {
                progress.split_refused(cx, stream, campaign, settings, &resp)?;
                splits += 1;
                break;
            }
            // Let through above only for a range starting too far back.
            if action::refused_query(&resp) {
                return Err(crate::explain_age(cx, window, &resp));
            }
            let (env, records) = action::parse_actions_page(&resp.body)
                .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
            if env.page > 0 {
                page_no = env.page;
            }
            rows += records.len() as u64;
            for r in records {
                if let Record::Conversion(c) = &r {
                    let new = emitted.insert(c.external_id.clone());
                    if !new && repeats == Repeats::Skip {
                        skipped += 1;
                        continue;
                    }
                }
                cx.emit(r);
            }
            pages += 1;
            progress.next = env.next;
            if progress.next.is_none() {
                progress.range_done(window);
            }
            let finished = progress.campaign_pos >= settings.campaign_ids.len();
            progress.commit(cx, stream, window, finished);
            if progress.next.is_none() {
                break;
            }
            page_no += 1;
        }
    }
    cx.debug(
        "stream done",
        &[
            ("stream", &stream),
            ("pages", &pages),
            ("rows", &rows),
            ("skipped_already_emitted", &skipped),
            ("splits", &splits),
        ],
    );
    Ok(())
}

/// The `actions` stream: every action whose event date falls in the window.
pub async fn read(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    emitted: &mut HashSet<String>,
) -> Result<(), PluginError> {
    read_passes(
        cx,
        client,
        settings,
        crate::ACTIONS,
        &[DateFilter::Event],
        Repeats::Emit,
        emitted,
    )
    .await
}
