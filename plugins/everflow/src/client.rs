//! Sending requests through the host with Everflow's rate-limit manners.
//!
//! Everflow counts requests per customer in 30-second windows: every answer
//! carries `X-RateLimit-Limit` and `X-RateLimit-Remaining`, and once the
//! window is used up every request gets a 429 until it resets. No
//! `Retry-After` is documented. So this pauses for one window when the
//! remaining count falls below the configured floor, and waits out a 429
//! that reaches the plugin (the host gave up) a bounded number of times.
//!
//! It is not an HTTP client: every byte still goes through the host.
use plugin_api::chrono::{DateTime, Duration, Utc};
use plugin_api::{Cx, PluginError, Request, Response};

/// How often a 429 that reaches the plugin is waited out before giving up.
const MAX_THROTTLED_RETRIES: u32 = 5;

/// Sends requests and remembers when the next one may go.
#[derive(Debug)]
pub struct Client {
    cx: Cx,
    min_remaining: u32,
    window_secs: i64,
    not_before: Option<DateTime<Utc>>,
    /// Times the plugin waited for the rate limit (for logs and tests).
    pub waits: u32,
}

impl Client {
    /// A client for one session.
    pub fn new(cx: &Cx, min_remaining: u32, window_secs: u32) -> Self {
        Client {
            cx: cx.clone(),
            min_remaining,
            window_secs: i64::from(window_secs.max(1)),
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
                let wait = self.window_secs;
                self.cx.warn(
                    "throttled (HTTP 429); waiting one rate-limit window",
                    &[("wait_secs", &wait), ("request", &what)],
                );
                self.not_before = Some(now + Duration::seconds(wait.max(1)));
                continue;
            }
            if let Some(remaining) = remaining(&resp) {
                if remaining < u64::from(self.min_remaining) {
                    let wait = self.window_secs;
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

/// Requests left in the current 30-second window.
pub fn remaining(resp: &Response) -> Option<u64> {
    resp.header("x-ratelimit-remaining")
        .and_then(|v| v.trim().parse::<u64>().ok())
}
