//! Day-by-day progress through a session window, and the checkpoints that
//! record it.
//!
//! A checkpoint's state is `{"window": "FROM..TO", "done_through": "DAY"}`:
//! every day up to `done_through` of that window is stored. A new session of
//! the same window that did not finish (a retry after a crash or an error)
//! resumes after that day. When the window's last day is done the state says
//! `"complete": true`, so a later session of the same window (a second run on
//! the same day, a repeated backfill) pulls every day again and picks up
//! restatements; a session of another window starts at its beginning. The
//! watermark is midnight UTC after the last finished day (a day marker: the
//! days themselves are in the account's timezone) and never moves backwards.
//!
//! A spend stream that pulls one account ([`Progress::covering`]) declares
//! the window's last checkpoint a complete pass ([`Checkpoint::covers`])
//! when this session pulled every day of the window itself: the host then
//! sets to zero the stored rows of those days the pass did not deliver. A
//! session that resumed after a day of the window does not declare it (the
//! rows of the days before were delivered by an earlier session); the next
//! run, which pulls the finished window again from its start, does.

use crate::protocol::{Checkpoint, Covers, Window};
use crate::sdk::Cx;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::{json, Value};

/// Where a stream stands within the session window.
#[derive(Debug, Clone)]
pub struct Progress {
    stream: String,
    window: Window,
    window_key: String,
    watermark: DateTime<Utc>,
    /// The last day of the window known to be stored, if any.
    pub done_through: Option<NaiveDate>,
    /// The account of a complete pass: set by [`Progress::covering`] when
    /// this session starts at the window's first day.
    covers: Option<String>,
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

impl Progress {
    /// Reads the stream's checkpoint and resumes within the same window.
    pub fn resume(cx: &Cx, stream: &str, window: Window) -> Self {
        let window_key = format!("{}..{}", window.from, window.to);
        let cp = cx.checkpoint(stream);
        let done_through = cp
            .filter(|cp| cp.state.get("window").and_then(Value::as_str) == Some(&window_key))
            .filter(|cp| cp.state.get("complete").and_then(Value::as_bool) != Some(true))
            .and_then(|cp| cp.state.get("done_through").and_then(Value::as_str))
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            // A window finished earlier is pulled again from its start: a new run
            // over the same days must see restatements.
            .filter(|d| *d >= window.from && *d < window.to);
        let start = midnight(window.from);
        Progress {
            stream: stream.to_owned(),
            window,
            window_key,
            watermark: cp.map(|cp| cp.watermark.max(start)).unwrap_or(start),
            done_through,
            covers: None,
        }
    }

    /// For a spend stream that pulls every row of `account_id`: the
    /// checkpoint finishing the window declares the pass complete
    /// ([`Checkpoint::covers`]), unless this session resumed mid-window.
    pub fn covering(mut self, account_id: &str) -> Self {
        if self.done_through.is_none() {
            self.covers = Some(account_id.to_owned());
        }
        self
    }

    /// The first day still to pull.
    pub fn next_day(&self, window: Window) -> NaiveDate {
        match self.done_through {
            Some(d) => d + Duration::days(1),
            None => window.from,
        }
    }

    /// Commits everything emitted so far, marking days through `day` done.
    pub fn finish_through(&mut self, cx: &Cx, day: NaiveDate) {
        self.done_through = Some(self.done_through.map_or(day, |d| d.max(day)));
        self.watermark = self.watermark.max(midnight(day + Duration::days(1)));
        self.commit(cx);
    }

    /// Commits everything emitted so far without finishing a day (a page in
    /// the middle of a request).
    pub fn commit(&self, cx: &Cx) {
        let complete = self.done_through.is_some_and(|d| d >= self.window.to);
        cx.commit(Checkpoint {
            stream: self.stream.clone(),
            watermark: self.watermark,
            state: json!({
                "window": self.window_key,
                "done_through": self.done_through.map(|d| d.to_string()),
                "complete": complete,
            }),
            covers: self
                .covers
                .as_ref()
                .filter(|_| complete)
                .map(|account_id| Covers {
                    account_id: account_id.clone(),
                    days: self.window,
                }),
        });
    }
}

/// Splits `from..=to` into consecutive chunks of at most `days` days.
pub fn chunks(from: NaiveDate, to: NaiveDate, days: u32) -> Vec<(NaiveDate, NaiveDate)> {
    let step = i64::from(days.max(1));
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = (start + Duration::days(step - 1)).min(to);
        out.push((start, end));
        start = end + Duration::days(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn chunks_cover_the_range_without_overlap() {
        let c = chunks(d("2026-01-30"), d("2026-02-03"), 2);
        assert_eq!(
            c,
            [
                (d("2026-01-30"), d("2026-01-31")),
                (d("2026-02-01"), d("2026-02-02")),
                (d("2026-02-03"), d("2026-02-03"))
            ]
        );
        assert!(chunks(d("2026-02-03"), d("2026-02-02"), 5).is_empty());
    }
}
