//! Sending requests through the host with Impact's rate-limit manners.
//!
//! The host already retries a 429 using `Retry-After`. This adds what only a
//! plugin that knows Impact can do: read both header families (brand
//! `X-RateLimit-Remaining` / `X-RateLimit-Reset`, partner
//! `X-RateLimit-Remaining-hour` / `RateLimit-Reset`), treat a reset value
//! above 10^9 as an epoch and anything else as seconds (the docs say
//! "seconds" but their example is an epoch), pause *before* the next request
//! when the window is nearly used up, and wait out a 429 that reaches the
//! plugin (the host gave up) a bounded number of times.
//!
//! It is not an HTTP client: every byte still goes through the host.

use plugin_api::chrono::{DateTime, Duration, Utc};
use plugin_api::{Cx, PluginError, Request, Response};

/// How often a 429 that reaches the plugin is waited out before giving up.
const MAX_THROTTLED_RETRIES: u32 = 5;
/// Wait when a 429 carries no reset information.
const DEFAULT_WAIT_SECS: i64 = 60;
/// Never wait longer than this for one window (Impact windows are an hour).
const MAX_WAIT_SECS: i64 = 3_600;

/// Sends requests and remembers when the next one may go.
#[derive(Debug)]
pub struct Client {
    cx: Cx,
    min_remaining: u32,
    not_before: Option<DateTime<Utc>>,
    /// Times the plugin waited for the rate limit (for logs and tests).
    pub waits: u32,
}

impl Client {
    /// A client for one session.
    pub fn new(cx: &Cx, min_remaining: u32) -> Self {
        Client {
            cx: cx.clone(),
            min_remaining,
            not_before: None,
            waits: 0,
        }
    }

    /// Sends `req`; `what` names the stream and page in errors.
    pub async fn send(&mut self, req: Request, what: &str) -> Result<Response, PluginError> {
        let mut throttled = 0;
        loop {
            if let Some(at) = self.not_before.take() {
                if at > self.cx.now() {
                    self.waits += 1;
                    self.cx.info(
                        "rate limit nearly used up; pausing",
                        &[("until", &at), ("request", &what)],
                    );
                    self.cx.sleep_until(at).await?;
                }
            }
            let resp = self
                .cx
                .http(req.clone())
                .await
                .map_err(|e| prefixed(what, e))?;
            let now = self.cx.now();
            if resp.status == 429 && throttled < MAX_THROTTLED_RETRIES {
                throttled += 1;
                let wait = reset_after(&resp).unwrap_or(DEFAULT_WAIT_SECS);
                self.cx.warn(
                    "throttled (HTTP 429); waiting for the window to reset",
                    &[("wait_secs", &wait), ("request", &what)],
                );
                self.not_before = Some(now + Duration::seconds(wait.max(1)));
                continue;
            }
            if let Some(remaining) = remaining(&resp) {
                if remaining < u64::from(self.min_remaining) {
                    let wait = reset_after(&resp).unwrap_or(DEFAULT_WAIT_SECS);
                    self.not_before = Some(now + Duration::seconds(wait.max(1)));
                }
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

fn header_u64(resp: &Response, names: &[&str]) -> Option<u64> {
    names
        .iter()
        .find_map(|n| resp.header(n))
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Requests left in the current window, from either header family.
pub fn remaining(resp: &Response) -> Option<u64> {
    header_u64(
        resp,
        &["x-ratelimit-remaining", "x-ratelimit-remaining-hour"],
    )
}

/// Seconds until the window resets: `Retry-After`, else `X-RateLimit-Reset`
/// / `RateLimit-Reset` read as an epoch when above 10^9, else as seconds.
/// Needs the response's `date` header to turn an epoch into a delay; without
/// it an epoch is ignored (the default wait applies).
pub fn reset_after(resp: &Response) -> Option<i64> {
    if let Some(s) = header_u64(resp, &["retry-after"]) {
        return Some(clamp(s));
    }
    let v = header_u64(resp, &["x-ratelimit-reset", "ratelimit-reset"])?;
    if v > 1_000_000_000 {
        let date = resp
            .header("date")
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())?;
        let delta = i64::try_from(v).ok()? - date.timestamp();
        Some(delta.clamp(1, MAX_WAIT_SECS))
    } else {
        Some(clamp(v))
    }
}

fn clamp(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(MAX_WAIT_SECS)
        .min(MAX_WAIT_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resp(headers: &[(&str, &str)]) -> Response {
        Response {
            status: 429,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            body: Vec::new(),
        }
    }

    #[test]
    fn reset_is_read_as_seconds_or_epoch() {
        assert_eq!(reset_after(&resp(&[("x-ratelimit-reset", "42")])), Some(42));
        assert_eq!(
            reset_after(&resp(&[
                ("x-ratelimit-reset", "1487332519"),
                ("date", "Fri, 17 Feb 2017 11:25:19 GMT")
            ])),
            Some(1_800)
        );
        assert_eq!(reset_after(&resp(&[("ratelimit-reset", "7")])), Some(7));
        assert_eq!(
            reset_after(&resp(&[("retry-after", "3"), ("x-ratelimit-reset", "99")])),
            Some(3)
        );
        assert_eq!(reset_after(&resp(&[])), None);
    }

    #[test]
    fn remaining_reads_both_header_families() {
        assert_eq!(remaining(&resp(&[("x-ratelimit-remaining", "0")])), Some(0));
        assert_eq!(
            remaining(&resp(&[("x-ratelimit-remaining-hour", "12")])),
            Some(12)
        );
    }
}
