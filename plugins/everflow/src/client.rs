//! Everflow's rate-limit manners, for [`plugin_api::throttle`].
//!
//! Everflow counts requests per customer in 30-second windows: every answer
//! carries `X-RateLimit-Limit` and `X-RateLimit-Remaining`, and once the
//! window is used up every request gets a 429 until it resets. No
//! `Retry-After` is documented. So this pauses for one window when the
//! remaining count falls below the configured floor, and waits out a 429
//! that reaches the plugin (the host gave up) a bounded number of times.
//!
//! It is not an HTTP client: every byte still goes through the host.
use plugin_api::throttle::{RateLimit, Throttled};
use plugin_api::{Cx, Response};

/// A session's request sender.
pub type Client = Throttled<EverflowLimit>;

/// A sender that pauses for one `window_secs` window once fewer than
/// `min_remaining` requests are left in it (0: only waits out 429s).
pub fn client(cx: &Cx, min_remaining: u32, window_secs: u32) -> Client {
    Throttled::new(
        cx,
        EverflowLimit {
            min_remaining,
            window_secs: i64::from(window_secs.max(1)),
        },
    )
}

/// Everflow's rate limit: fixed windows, a remaining-count header, no
/// `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub struct EverflowLimit {
    min_remaining: u32,
    window_secs: i64,
}

impl RateLimit for EverflowLimit {
    fn wait_after_429(&self, _resp: &Response) -> i64 {
        self.window_secs
    }
    fn pause_after(&self, resp: &Response) -> Option<i64> {
        let left = remaining(resp)?;
        (left < u64::from(self.min_remaining)).then_some(self.window_secs)
    }
}

/// Requests left in the current 30-second window.
pub fn remaining(resp: &Response) -> Option<u64> {
    resp.header("x-ratelimit-remaining")
        .and_then(|v| v.trim().parse::<u64>().ok())
}
