//! Stream `rewards_review`: the periodic re-read of rewards created before
//! the session window.
//!
//! PartnerStack filters rewards by creation date only, and `rewards`
//! re-reads only the window (the lookback, 62 days by default). A reward
//! refunded or declined later than that would stay approved in the store,
//! and finance would pay it. The review reads those older rewards again.
//!
//! - **When**: at most every `review_every_days` (default 7): due when this
//!   stream's checkpoint has no `last_review`, or `cx.now()` is at least that
//!   many days after it, or before it (the host clock went back). An
//!   unfinished review is resumed in the next session whether due or not.
//!   `review_days = 0` turns it off (an unfinished review is left as it is).
//! - **What**: rewards created on the days (of the connector's `timezone`)
//!   from `review_days` before the
//!   window's first day through the day before it, but none before
//!   [`crate::since`] (the first day `rewards` has read: a new installation
//!   does not import older history). The range is fixed when the review
//!   starts and kept in the checkpoint, so a resumed review pages the same
//!   query. An empty range (nothing stored before the window yet) completes
//!   at once, without a request.
//! - **How**: the range's transactions first (the lookup for rewards that
//!   embed only their transaction's key; without it those rewards would lose
//!   their sale amount), then its rewards page by page with the
//!   `starting_after` cursor, each page committed with the cursor. A
//!   reward that did not change is an upsert that stores nothing; a refunded
//!   or declined one is a new revision of the same key.
//! - **Cost** of one review: `ceil(T / page_size) + ceil(R / page_size)`
//!   requests, at least 2, where T and R are the transactions and rewards
//!   created in the range; with the default 250 per page, a vendor with
//!   50,000 rewards (and transactions) in 180 days pays 200 + 200 = 400
//!   requests a week. A review resumed after a crash reads the range's
//!   transactions again.
//! - **Checkpoint**: `{"range": {"from", "to"}, "after", "complete",
//!   "started_at", "last_review"}`. `last_review` becomes `started_at` (the
//!   `cx.now()` of the session that started the review) when the last page
//!   commits. The watermark is the end of the session window (never earlier
//!   than the stream's previous one), committed on every page and, when no
//!   review runs, once per session with the state unchanged: the host
//!   anchors a scheduled run's window on the oldest stream watermark, and a
//!   review stream left behind would drag every run back by up to
//!   `review_every_days`.

use crate::config::Settings;
use crate::{
    created_millis, read_rewards, read_transactions, window_end, Client, DefaultedCurrency,
    REWARDS_REVIEW,
};
use plugin_api::chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use plugin_api::chrono_tz::Tz;
use plugin_api::protocol::{Checkpoint, Window};
use plugin_api::serde_json::{self, Value};
use plugin_api::{Cx, PluginError};
use serde::{Deserialize, Serialize};

/// The checkpoint state of `rewards_review`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// The created days of the review in progress or last done (none when
    /// its range was empty).
    pub range: Option<Window>,
    /// The last reward key committed in `range` (the cursor).
    pub after: Option<String>,
    /// Whether the review of `range` finished.
    pub complete: bool,
    /// `cx.now()` of the session that started the review of `range`.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last completed review started.
    pub last_review: Option<DateTime<Utc>>,
}

impl State {
    /// The state of a checkpoint; an unreadable one counts as none (the
    /// review is then due, which costs requests but loses nothing).
    pub fn of(cp: Option<&Checkpoint>) -> State {
        cp.and_then(|c| serde_json::from_value(c.state.clone()).ok())
            .unwrap_or_default()
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What a session does with the review.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// `review_days = 0`.
    Off,
    /// The last review is recent; the next one is due at this time.
    NotDue(DateTime<Utc>),
    /// Review these created days (`None`: nothing to review) from this
    /// cursor; started at `started_at`.
    Run {
        range: Option<Window>,
        after: Option<String>,
        started_at: DateTime<Utc>,
    },
}

/// Decides the session's review: a pure function of the settings
/// (`review_days`, `review_every_days`), the previous state, the host's
/// clock, the window's first day and [`crate::since`].
pub fn plan(
    review_days: u32,
    review_every_days: u32,
    prev: &State,
    now: DateTime<Utc>,
    window_from: NaiveDate,
    since: Option<NaiveDate>,
) -> Plan {
    if review_days == 0 {
        return Plan::Off;
    }
    if let (Some(range), false) = (prev.range, prev.complete) {
        return Plan::Run {
            range: Some(range),
            after: prev.after.clone(),
            started_at: prev.started_at.unwrap_or(now),
        };
    }
    if let Some(last) = prev.last_review {
        let next = last + Duration::days(i64::from(review_every_days));
        if last <= now && now < next {
            return Plan::NotDue(next);
        }
    }
    let range = window_from.pred_opt().and_then(|to| {
        let from = window_from
            .checked_sub_days(Days::new(u64::from(review_days)))
            .unwrap_or(NaiveDate::MIN);
        let from = since.map_or(from, |s| from.max(s));
        (from <= to).then_some(Window { from, to })
    });
    Plan::Run {
        range,
        after: None,
        started_at: now,
    }
}

/// Runs the session's part of the review (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn read(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    window: Window,
    tz: Tz,
    since: Option<NaiveDate>,
    defaulted: &DefaultedCurrency,
) -> Result<(), PluginError> {
    let cp = cx.checkpoint(REWARDS_REVIEW);
    let prev = State::of(cp);
    let end = window_end(window, tz);
    let watermark = cp.map_or(end, |c| c.watermark.max(end));
    let plan = plan(
        settings.review_days,
        settings.review_every_days,
        &prev,
        cx.now(),
        window.from,
        since,
    );
    let (range, after, started_at) = match plan {
        Plan::Run {
            range,
            after,
            started_at,
        } => (range, after, started_at),
        skipped => {
            // Keep the watermark up with `rewards`, the state as it is.
            if let Some(c) = cp {
                cx.commit(Checkpoint {
                    stream: REWARDS_REVIEW.into(),
                    watermark,
                    state: c.state.clone(),
                    covers: None,
                });
            }
            match skipped {
                Plan::NotDue(next) => cx.info(
                    "review not due",
                    &[
                        ("stream", &REWARDS_REVIEW),
                        ("next_due", &next.to_rfc3339()),
                    ],
                ),
                _ => cx.info(
                    "review off (review_days = 0)",
                    &[("stream", &REWARDS_REVIEW)],
                ),
            }
            return Ok(());
        }
    };
    let state = |range: Option<Window>, after: &Option<String>, complete: bool| State {
        range,
        after: after.clone(),
        complete,
        started_at: Some(started_at),
        last_review: if complete {
            Some(started_at)
        } else {
            prev.last_review
        },
    };
    let Some(range) = range else {
        cx.commit(Checkpoint {
            stream: REWARDS_REVIEW.into(),
            watermark,
            state: state(None, &None, true).to_value(),
            covers: None,
        });
        cx.info(
            "review done: nothing stored before the window",
            &[("stream", &REWARDS_REVIEW)],
        );
        return Ok(());
    };
    let resumed = after.is_some();
    cx.info(
        "review started",
        &[
            ("stream", &REWARDS_REVIEW),
            ("from", &range.from),
            ("to", &range.to),
            ("resumed", &resumed),
        ],
    );
    let created = created_millis(range, tz);
    let what = format!("stream `{REWARDS_REVIEW}` ");
    let transactions = read_transactions(cx, client, settings, created, &what).await?;
    let rows = read_rewards(
        cx,
        client,
        settings,
        &transactions,
        defaulted,
        REWARDS_REVIEW,
        created,
        after,
        |after, complete| Checkpoint {
            stream: REWARDS_REVIEW.into(),
            watermark,
            state: state(Some(range), after, complete).to_value(),
            covers: None,
        },
    )
    .await?;
    cx.debug(
        "stream done",
        &[
            ("stream", &REWARDS_REVIEW),
            ("rows", &rows),
            ("transactions", &transactions.len()),
        ],
    );
    Ok(())
}
