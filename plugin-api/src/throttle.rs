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
//!   ([`RateLimit::wait_after_429`]), but never longer than the host waits
//!   for one ([`MAX_RATE_LIMIT_WAIT_SECS`], 15 minutes): a 429 asking for
//!   more fails the run as retryable, and the next run tries again, as the
//!   host's log line says (QA13 F2: the host said "not waiting" and
//!   `Throttled` then held the connector for up to 5 hours).
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
use crate::{ErrorKind, PluginError};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};

/// How often a 429 that reaches the plugin is waited out before giving up.
pub const MAX_THROTTLED_RETRIES: u32 = 5;
/// Wait when a 429 says nothing about when to come back.
pub const DEFAULT_WAIT_SECS: i64 = 60;
/// The longest single wait (an hour: Impact's windows). A pause before a
/// request ([`RateLimit::pause_after`]) may be that long; a wait after a
/// 429 may not exceed [`MAX_RATE_LIMIT_WAIT_SECS`].
pub const MAX_WAIT_SECS: i64 = 3_600;
/// The longest wait a 429 may ask for that the host waits out (15
/// minutes; the daemon's `SessionTuning::max_rate_limit_wait` is this).
/// For a longer one the host logs `throttled (HTTP 429) for longer than a
/// request waits; not waiting, the plugin gets the 429 (the next run tries
/// again)` and hands the 429 over, and [`Throttled`] then fails the run as
/// retryable instead of waiting: a connector is not held for hours, and
/// its next scheduled run tries again.
pub const MAX_RATE_LIMIT_WAIT_SECS: i64 = 15 * 60;

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
    /// results"). 429s are waited out as by `send` before `allow` sees them;
    /// one asking to wait longer than [`MAX_RATE_LIMIT_WAIT_SECS`] (by the
    /// [`RateLimit`], or by its headers as the host reads them:
    /// [`rate_limit_wait`]) is not waited for: it fails as a retryable
    /// [`ErrorKind::RateLimited`] error naming the wait.
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
                // A pause beyond `Duration`'s range is one beyond the
                // clock's: `sleep_for` refuses it (no panic).
                let wait = Duration::try_seconds(secs).unwrap_or(Duration::MAX);
                self.cx.sleep_for(wait).await?;
            }
            let resp = self
                .cx
                .http(req.clone())
                .await
                .map_err(|e| prefixed(what, e))?;
            if resp.status == 429 {
                let wait = self.limit.wait_after_429(&resp);
                // The host's reading too: it logged "not waiting" for it.
                let asked = wait.max(rate_limit_wait(&resp).unwrap_or(0));
                if asked > MAX_RATE_LIMIT_WAIT_SECS {
                    return Err(too_long(what, resp, asked));
                }
                if throttled < MAX_THROTTLED_RETRIES {
                    throttled += 1;
                    self.cx.warn(
                        "throttled (HTTP 429); waiting for the rate limit",
                        &[("wait_secs", &wait), ("request", &what)],
                    );
                    self.pause = Some(wait.max(1));
                    continue;
                }
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

/// The error for a 429 asking to wait `asked` seconds, more than
/// [`MAX_RATE_LIMIT_WAIT_SECS`]: retryable, so the run fails and the next
/// one tries again.
fn too_long(what: &str, resp: Response, asked: i64) -> PluginError {
    let refused = resp
        .ok()
        .err()
        .map_or_else(|| "rate limited (HTTP 429)".to_owned(), |e| e.message);
    PluginError::retryable(
        ErrorKind::RateLimited,
        format!(
            "{what}: {refused}; the platform asks to wait {asked} s, longer than a run waits for a rate limit \
             ({MAX_RATE_LIMIT_WAIT_SECS} s): not waiting, the next run tries again"
        ),
    )
}

/// `Retry-After` in seconds, within 1 s .. [`MAX_WAIT_SECS`]: a number of
/// seconds, or an HTTP date (as the host reads it), counted from the
/// answer's `Date` (a plugin has no clock; an HTTP date on an answer
/// without `Date` is `None`).
pub fn retry_after(resp: &Response) -> Option<i64> {
    seconds_or_date(resp.header("retry-after")?, resp).map(|s| s.clamp(1, MAX_WAIT_SECS))
}

/// How long a 429 asks to wait, read as the host reads it: `Retry-After`
/// (seconds or HTTP date), else `RateLimit-Reset` (seconds), else
/// `X-RateLimit-Reset` (seconds, or a Unix time when above 10^9). Dates
/// and Unix times count from the answer's `Date`. Not clamped; `None`
/// when it says nothing readable.
pub fn rate_limit_wait(resp: &Response) -> Option<i64> {
    if let Some(s) = resp
        .header("retry-after")
        .and_then(|v| seconds_or_date(v, resp))
    {
        return Some(s);
    }
    if let Some(s) = resp.header("ratelimit-reset").and_then(seconds) {
        return Some(s);
    }
    let v = resp.header("x-ratelimit-reset").and_then(seconds)?;
    if v > 1_000_000_000 {
        let date = http_date(resp.header("date")?)?;
        // Saturating: a `Date` before 1970 must not wrap a huge reset
        // into no wait (QA25).
        return Some(v.saturating_sub(date.timestamp()).max(0));
    }
    Some(v)
}

/// Whole seconds (`7`), or with a fraction (`2.0`, as Shopify writes
/// `Retry-After`; QA35c M1), rounded up: never less than asked.
fn seconds(v: &str) -> Option<i64> {
    let v = v.trim();
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || (v.contains('.') && frac.is_empty()) {
        return None;
    }
    let s = i64::try_from(whole.parse::<u64>().ok()?).unwrap_or(i64::MAX);
    Some(s.saturating_add(i64::from(frac.bytes().any(|b| b != b'0'))))
}

/// Seconds, or an HTTP date less the answer's `Date` (0 when past).
fn seconds_or_date(v: &str, resp: &Response) -> Option<i64> {
    if let Some(s) = seconds(v) {
        return Some(s);
    }
    let at = http_date(v)?;
    let now = http_date(resp.header("date")?)?;
    Some((at - now).num_seconds().max(0))
}

/// An HTTP date (RFC 9110): IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`,
/// or the obsolete RFC 850 and asctime forms.
pub fn http_date(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(d) = DateTime::parse_from_rfc2822(v) {
        return Some(d.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
        .map(|d| d.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Manifest, Window};
    use crate::sdk::Connector;
    use crate::testing::{open_read, FakeHost, Reply};
    use chrono::NaiveDate;

    /// Pauses when `x-left` is below 2, or for `x-pause` seconds.
    struct Floor;
    impl RateLimit for Floor {
        fn wait_after_429(&self, resp: &Response) -> i64 {
            retry_after(resp).unwrap_or(DEFAULT_WAIT_SECS)
        }
        fn pause_after(&self, resp: &Response) -> Option<i64> {
            if let Some(secs) = resp.header("x-pause") {
                return secs.parse().ok();
            }
            let left: u32 = resp.header("x-left")?.parse().ok()?;
            (left < 2).then_some(30)
        }
    }

    /// Sends three requests through `Throttled<Floor>`.
    struct Three;
    impl Connector for Three {
        fn manifest() -> Manifest {
            Manifest {
                streams: crate::testing::conversions_stream(),
                ..Manifest::bare("three")
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
        // A 20-minute pause; the host wakes a timer after 15 at most.
        let out = run(vec![
            reply(200, &[("x-pause", "1200")]),
            reply(200, &[]),
            reply(200, &[]),
        ]);
        out.result.as_ref().unwrap();
        let t = &out.request_times;
        assert_eq!((t[1] - t[0]).num_seconds(), 10 + 1200);
    }

    /// QA13 F2: the host logged "not waiting, the plugin gets the 429 (the
    /// next run tries again)" for `Retry-After: 1000`, and `Throttled`
    /// then slept 1000 s, up to 5 times.
    #[test]
    fn a_429_asking_longer_than_the_host_waits_fails_the_run_as_retryable() {
        let out = run(vec![
            reply(429, &[("retry-after", "1000")]),
            reply(200, &[]),
            reply(200, &[]),
            reply(200, &[]),
        ]);
        let err = out.result.unwrap_err();
        assert_eq!((err.kind, err.retryable), (ErrorKind::RateLimited, true));
        assert_eq!(
            err.message,
            "page 1: rate limited (HTTP 429): {}; the platform asks to wait 1000 s, longer than a run waits \
             for a rate limit (900 s): not waiting, the next run tries again"
        );
        assert_eq!(out.requests.len(), 1);
        assert!(out.sleeps.is_empty(), "{:?}", out.sleeps);
        // The host's reading of the other headers counts too.
        let out = run(vec![reply(429, &[("x-ratelimit-reset", "3600")])]);
        assert!(out
            .result
            .unwrap_err()
            .message
            .contains("asks to wait 3600 s"));
        // Up to the host's cap, it is waited out.
        let out = run(vec![
            reply(429, &[("retry-after", "900")]),
            reply(200, &[]),
            reply(200, &[]),
            reply(200, &[]),
        ]);
        out.result.as_ref().unwrap();
        let t = &out.request_times;
        assert_eq!((t[1] - t[0]).num_seconds(), 10 + 900);
    }

    /// QA13 F2 (LOW): an HTTP-date `Retry-After`, which the host reads,
    /// fell back to the default minute.
    #[test]
    fn retry_after_reads_seconds_or_an_http_date() {
        let date = ("date", "Sun, 29 Nov 2026 04:00:00 GMT");
        let resp = |headers: &[(&str, &str)]| {
            let r = reply(429, headers);
            Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }
        };
        assert_eq!(retry_after(&resp(&[("retry-after", " 7 ")])), Some(7));
        // Fractions (Shopify's `2.0`, QA35c M1), rounded up.
        assert_eq!(retry_after(&resp(&[("retry-after", "2.0")])), Some(2));
        assert_eq!(retry_after(&resp(&[("retry-after", "2.25")])), Some(3));
        assert_eq!(
            rate_limit_wait(&resp(&[("ratelimit-reset", "0.5")])),
            Some(1)
        );
        for bad in ["-1", "1e3", ".5", "5.", "1.2.3"] {
            assert_eq!(retry_after(&resp(&[("retry-after", bad)])), None, "{bad}");
        }
        for later in [
            "Sun, 29 Nov 2026 04:02:00 GMT",
            "Sunday, 29-Nov-26 04:02:00 GMT",
            "Sun Nov 29 04:02:00 2026",
        ] {
            assert_eq!(
                retry_after(&resp(&[("retry-after", later), date])),
                Some(120),
                "{later}"
            );
        }
        // Past: the shortest wait; no `Date` to count from: not read.
        let past = ("retry-after", "Sun, 29 Nov 2026 03:00:00 GMT");
        assert_eq!(retry_after(&resp(&[past, date])), Some(1));
        assert_eq!(retry_after(&resp(&[past])), None);
        assert_eq!(retry_after(&resp(&[("retry-after", "soon")])), None);
        assert_eq!(
            retry_after(&resp(&[("retry-after", "99999")])),
            Some(MAX_WAIT_SECS)
        );
        // As the host reads a 429: Retry-After, RateLimit-Reset, then
        // X-RateLimit-Reset (seconds, or a Unix time).
        assert_eq!(
            rate_limit_wait(&resp(&[("retry-after", "99999")])),
            Some(99999)
        );
        assert_eq!(rate_limit_wait(&resp(&[("ratelimit-reset", "3")])), Some(3));
        assert_eq!(
            rate_limit_wait(&resp(&[("x-ratelimit-reset", "5")])),
            Some(5)
        );
        let epoch = (chrono::DateTime::parse_from_rfc2822(date.1)
            .unwrap()
            .timestamp()
            + 1800)
            .to_string();
        assert_eq!(
            rate_limit_wait(&resp(&[("x-ratelimit-reset", &epoch), date])),
            Some(1800)
        );
        // A reset at i64::MAX against a `Date` before 1970 wrapped to a
        // negative, so no wait (QA25): it saturates to the longest.
        let far = i64::MAX.to_string();
        assert_eq!(
            rate_limit_wait(&resp(&[
                ("x-ratelimit-reset", &far),
                ("date", "Fri, 01 Jan 1960 00:00:00 GMT")
            ])),
            Some(i64::MAX)
        );
        assert_eq!(rate_limit_wait(&resp(&[])), None);
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
