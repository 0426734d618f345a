//! Sending a session's requests through the host while keeping to a
//! platform's rate limit.
//!
//! The host already retries a 429 using `Retry-After`, with backoff, up to its
//! own limit. What only a plugin that knows its platform can add:
//! - pause *before* the next request when an answer says the window is
//!   nearly used up ([`RateLimit::pause_after`]: Impact's and Everflow's
//!   remaining-count headers);
//! - wait out a 429 that still reaches the plugin (the host gave up) a
//!   bounded number of times, for as long as the platform says
//!   ([`RateLimit::wait_after_429`]).
//!
//! Waiting is [`Cx::sleep_for`]: the host's timer, not a sleeping thread,
//! counted from the host's time when the wait starts (a plugin's `cx.now()`
//! does not move with HTTP answers).
//! It is not an HTTP client: every byte still goes through the host.
//!
//! ```ignore
//! let mut client = Throttled::new(&cx, RetryAfter);
//! let resp = client.send(req, "conversions page 3").await?;
//! ```

use crate::sdk::{Cx, Request, Response};
use crate::PluginError;
use chrono::Duration;

/// How often a 429 that reaches the plugin is waited out before giving up.
pub const MAX_THROTTLED_RETRIES: u32 = 5;
/// Wait when a 429 says nothing about when to come back.
pub const DEFAULT_WAIT_SECS: i64 = 60;
/// The longest single wait (an hour: Impact's windows).
pub const MAX_WAIT_SECS: i64 = 3_600;

/// How a platform says to slow down.
pub trait RateLimit {
    /// Seconds to wait after a 429 that reached the plugin.
    fn wait_after_429(&self, resp: &Response) -> i64;
    /// Seconds to pause before the next request after this (non-429)
    /// answer, when it says the window is nearly used up.
    fn pause_after(&self, _resp: &Response) -> Option<i64> {
        None
    }
}

/// `Retry-After` seconds, else a minute, after a 429; no pauses otherwise
/// (platforms that document no limits but answer 429: CAKE, PartnerStack).
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryAfter;

impl RateLimit for RetryAfter {
    fn wait_after_429(&self, resp: &Response) -> i64 {
        retry_after(resp).unwrap_or(DEFAULT_WAIT_SECS)
    }
}

/// Sends a session's requests and remembers when the next one may go.
#[derive(Debug)]
pub struct Throttled<P> {
    cx: Cx,
    limit: P,
    /// Seconds to wait, from the host's time, before the next request.
    pause: Option<i64>,
    /// Times it paused for the rate limit.
    pub waits: u32,
}

impl<P: RateLimit> Throttled<P> {
    /// A sender for one session, keeping to `limit`.
    pub fn new(cx: &Cx, limit: P) -> Self {
        Throttled {
            cx: cx.clone(),
            limit,
            pause: None,
            waits: 0,
        }
    }

    /// Sends `req` (after any pause due) and returns its answer; an error
    /// answer becomes a [`PluginError`]. `what` names the stream and page in
    /// errors and logs.
    pub async fn send(&mut self, req: Request, what: &str) -> Result<Response, PluginError> {
        self.send_allowing(req, what, |_| false).await
    }

    /// [`send`](Self::send), except that an error answer for which `allow`
    /// returns true comes back as a [`Response`] for the caller to read (e.g.
    /// a refusal the plugin can work around, like Impact's "too many
    /// results"). 429s are waited out as by `send` before `allow` sees them.
    pub async fn send_allowing(
        &mut self,
        req: Request,
        what: &str,
        allow: impl Fn(&Response) -> bool,
    ) -> Result<Response, PluginError> {
        let mut throttled = 0;
        loop {
            if let Some(secs) = self.pause.take() {
                self.waits += 1;
                self.cx.info(
                    "pausing for the rate limit",
                    &[("wait_secs", &secs), ("request", &what)],
                );
                // From the host's time now: `cx.now()` did not move with
                // the answer that asked for the pause.
                self.cx.sleep_for(Duration::seconds(secs)).await?;
            }
            let resp = self
                .cx
                .http(req.clone())
                .await
                .map_err(|e| prefixed(what, e))?;
            if resp.status == 429 && throttled < MAX_THROTTLED_RETRIES {
                throttled += 1;
                let wait = self.limit.wait_after_429(&resp);
                self.cx.warn(
                    "throttled (HTTP 429); waiting for the rate limit",
                    &[("wait_secs", &wait), ("request", &what)],
                );
                self.pause = Some(wait.max(1));
                continue;
            }
            if let Some(wait) = self.limit.pause_after(&resp) {
                self.pause = Some(wait.max(1));
            }
            if allow(&resp) {
                return Ok(resp);
            }
            return resp.ok().map_err(|e| prefixed(what, e));
        }
    }
}

fn prefixed(what: &str, e: PluginError) -> PluginError {
    PluginError {
        message: format!("{what}: {}", e.message),
        ..e
    }
}

/// `Retry-After` in seconds, within 1 s .. [`MAX_WAIT_SECS`].
pub fn retry_after(resp: &Response) -> Option<i64> {
    resp.header("retry-after")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|s| s.clamp(1, MAX_WAIT_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Manifest, PluginKind, Window};
    use crate::sdk::Connector;
    use crate::testing::{open_read, FakeHost, Reply};
    use chrono::NaiveDate;

    /// Pauses when `x-left` is below 2.
    struct Floor;
    impl RateLimit for Floor {
        fn wait_after_429(&self, resp: &Response) -> i64 {
            retry_after(resp).unwrap_or(DEFAULT_WAIT_SECS)
        }
        fn pause_after(&self, resp: &Response) -> Option<i64> {
            let left: u32 = resp.header("x-left")?.parse().ok()?;
            (left < 2).then_some(30)
        }
    }

    /// Sends three requests through `Throttled<Floor>`.
    struct Three;
    impl Connector for Three {
        fn manifest() -> Manifest {
            Manifest {
                id: "three".into(),
                name: "three".into(),
                version: "0".into(),
                kind: PluginKind::Affiliate,
                description: String::new(),
                config_schema: serde_json::json!({}),
                streams: Vec::new(),
                allowed_hosts: Vec::new(),
                default_base_url: None,
                auth: None,
                max_window_days: None,
                file_capability: Default::default(),
            }
        }
        async fn check(_cx: Cx) -> Result<(), PluginError> {
            Ok(())
        }
        async fn read(cx: Cx) -> Result<(), PluginError> {
            let mut client = Throttled::new(&cx, Floor);
            for page in 1..=3 {
                let url = format!("{}/p{page}", cx.base_url());
                client
                    .send(Request::get(url), &format!("page {page}"))
                    .await?;
            }
            Ok(())
        }
    }

    /// Each answer takes 10 s of the fake clock.
    fn run(mut answers: Vec<Reply>) -> crate::testing::Outcome {
        answers.reverse();
        let host = FakeHost::handler(move |_| {
            answers
                .pop()
                .unwrap_or(Reply::json(500, &serde_json::json!({})))
        })
        .with_http_latency(chrono::Duration::seconds(10));
        let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let window = Window { from: day, to: day };
        host.run::<Three>(open_read(
            "three",
            "http://fake",
            serde_json::json!({}),
            window,
        ))
    }

    fn reply(status: u16, headers: &[(&str, &str)]) -> Reply {
        let mut r = Reply::json(status, &serde_json::json!({}));
        for (k, v) in headers {
            r.headers.insert((*k).to_owned(), (*v).to_owned());
        }
        r
    }

    #[test]
    fn waits_out_429s_and_pauses_when_the_window_is_nearly_used_up() {
        let out = run(vec![
            reply(429, &[("retry-after", "7")]),
            reply(429, &[]),
            reply(200, &[("x-left", "5")]),
            reply(200, &[("x-left", "1")]),
            reply(200, &[]),
        ]);
        out.result.as_ref().unwrap();
        assert_eq!(out.requests.len(), 5);
        // Seconds from each answer (sent + 10 s) to the next request: the
        // waits count from the answer, not from the session's start.
        let gaps: Vec<i64> = out
            .request_times
            .windows(2)
            .map(|w| (w[1] - w[0]).num_seconds() - 10)
            .collect();
        // 7 s (Retry-After), a minute (no Retry-After), none, 30 s (x-left 1).
        assert_eq!(gaps, vec![7, 60, 0, 30]);
    }

    #[test]
    fn a_wait_longer_than_one_host_timer_is_waited_in_full() {
        // Retry-After 20 minutes; the host wakes a timer after 15 at most.
        let out = run(vec![
            reply(429, &[("retry-after", "1200")]),
            reply(200, &[]),
            reply(200, &[]),
            reply(200, &[]),
        ]);
        out.result.as_ref().unwrap();
        let t = &out.request_times;
        assert_eq!((t[1] - t[0]).num_seconds(), 10 + 1200);
    }

    #[test]
    fn gives_up_after_bounded_429s_with_the_request_named() {
        let answers = (0..=MAX_THROTTLED_RETRIES).map(|_| reply(429, &[("retry-after", "1")]));
        let out = run(answers.collect());
        let err = out.result.unwrap_err();
        assert!(err.message.starts_with("page 1: "), "{}", err.message);
        assert_eq!(out.requests.len(), MAX_THROTTLED_RETRIES as usize + 1);
    }
}
