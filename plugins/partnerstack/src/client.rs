//! Sending requests through the host, waiting out throttling.
//!
//! PartnerStack documents no rate limits, but its API does answer 429
//! (usually with `Retry-After`). The host retries those first; a
//! 429 that still reaches the plugin is waited out (`Retry-After` seconds, or
//! a minute) a bounded number of times. Errors are `{"message", "status"}`
//! bodies with a matching HTTP status, mapped by `Response::ok`.
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
    not_before: Option<DateTime<Utc>>,
    /// Times the plugin waited for the rate limit (for logs and tests).
    pub waits: u32,
}

impl Client {
    /// A client for one session.
    pub fn new(cx: &Cx) -> Self {
        Client {
            cx: cx.clone(),
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
                        "throttled earlier; pausing",
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

/// `Retry-After` in seconds (capped at an hour).
pub fn reset_after(resp: &Response) -> Option<i64> {
    resp.header("retry-after")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|s| s.clamp(1, MAX_WAIT_SECS))
}
