//! Impact's rate-limit manners, for [`plugin_api::throttle`].
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

use plugin_api::chrono::DateTime;
use plugin_api::throttle::{RateLimit, Throttled, DEFAULT_WAIT_SECS, MAX_WAIT_SECS};
use plugin_api::{Cx, Response};

/// A session's request sender.
pub type Client = Throttled<ImpactLimit>;

/// A sender that pauses once fewer than `min_remaining` requests are left in
/// the window (0: only waits out 429s).
pub fn client(cx: &Cx, min_remaining: u32) -> Client {
    Throttled::new(cx, ImpactLimit { min_remaining })
}

/// Impact's rate limit: its reset headers, and a floor of requests to keep.
#[derive(Debug, Clone, Copy)]
pub struct ImpactLimit {
    min_remaining: u32,
}

impl RateLimit for ImpactLimit {
    fn wait_after_429(&self, resp: &Response) -> i64 {
        reset_after(resp).unwrap_or(DEFAULT_WAIT_SECS)
    }
    fn pause_after(&self, resp: &Response) -> Option<i64> {
        let left = remaining(resp)?;
        (left < u64::from(self.min_remaining))
            .then(|| reset_after(resp).unwrap_or(DEFAULT_WAIT_SECS))
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
        let delta = i64::try_from(v).ok()?.saturating_sub(date.timestamp());
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
