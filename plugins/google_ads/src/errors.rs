//! Google's error envelope, mapped to structured plugin errors.
//!
//! REST errors follow the Google API error model:
//! `{"error": {"code": 429, "message", "status": "RESOURCE_EXHAUSTED",
//! "details": [{"@type": "...GoogleAdsFailure", "errors": [{"errorCode":
//! {"quotaError": "RESOURCE_EXHAUSTED"}, "message", "details":
//! {"quotaErrorDetails": {"retryDelay": "30s"}}}], "requestId"}]}}`.
//! The same object can also arrive as the last element of a searchStream
//! array. Quota errors are retryable (with the suggested delay); credential
//! errors name the setting to fix.

use plugin_api::sdk::body_suffix;
use plugin_api::serde_json::Value;
use plugin_api::{ErrorKind, PluginError};

/// At most this many characters of Google's message (or of a body that is
/// not Google's error model) go into an error.
const MESSAGE_CHARS: usize = 300;

/// What an error response means for the connector.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// Quota exhausted: wait (Google's `retryDelay` when given) and retry.
    Quota {
        /// Suggested wait in whole seconds (rounded up).
        retry_delay_secs: Option<u64>,
        /// Google's message.
        message: String,
    },
    /// Anything else, already a finished plugin error.
    Fatal(PluginError),
}

/// Classifies an HTTP error response (status plus body).
pub fn classify(connector: &str, status: u16, body: &[u8]) -> Classified {
    let parsed: Option<Value> = plugin_api::serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| {
        // Either `{"error": ...}` or a stream array whose element holds it.
        v.get("error").cloned().or_else(|| {
            v.as_array()
                .and_then(|a| a.iter().find_map(|b| b.get("error").cloned()))
        })
    });
    match err {
        Some(e) => classify_error(connector, status, &e),
        // Not Google's error model (a proxy's or load balancer's page): the
        // body stands in for Google's message.
        None => classify_parts(
            connector,
            status,
            "",
            &[],
            &String::from_utf8_lossy(body),
            None,
        ),
    }
}

/// Classifies a Google error object (`{"code", "message", "status", "details"}`).
pub fn classify_error(connector: &str, http_status: u16, e: &Value) -> Classified {
    let status = e.get("status").and_then(Value::as_str).unwrap_or("");
    let code = e
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(http_status);
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut codes: Vec<(String, String)> = Vec::new();
    let mut retry_delay = None;
    for d in e
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for err in d
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(ec) = err.get("errorCode").and_then(Value::as_object) {
                for (k, v) in ec {
                    codes.push((k.clone(), v.as_str().unwrap_or("").to_owned()));
                }
            }
            if let Some(delay) = err
                .pointer("/details/quotaErrorDetails/retryDelay")
                .and_then(Value::as_str)
            {
                retry_delay = parse_duration_secs(delay).or(retry_delay);
            }
        }
    }
    classify_parts(connector, code, status, &codes, &message, retry_delay)
}

fn classify_parts(
    connector: &str,
    code: u16,
    status: &str,
    codes: &[(String, String)],
    message: &str,
    retry_delay_secs: Option<u64>,
) -> Classified {
    let has = |kind: &str| {
        codes
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, v)| v.as_str())
    };
    let describe = || {
        let mut s = format!("HTTP {code}");
        if !status.is_empty() {
            s.push(' ');
            s.push_str(status);
        }
        for (k, v) in codes {
            s.push_str(&format!(", {k} {v}"));
        }
        // One line, bounded: a body can be a whole HTML page.
        s.push_str(&body_suffix(message.as_bytes(), MESSAGE_CHARS));
        s
    };
    if let Some(q) = has("quotaError") {
        if q == "ACCESS_PROHIBITED" {
            return Classified::Fatal(PluginError::new(
                ErrorKind::Upstream,
                format!(
                    "connector `{connector}`: Google Ads prohibits access for this developer token ({}): check setting `developer_token`",
                    describe()
                ),
            ));
        }
        return Classified::Quota {
            retry_delay_secs,
            message: describe(),
        };
    }
    if code == 429 || status == "RESOURCE_EXHAUSTED" {
        return Classified::Quota {
            retry_delay_secs,
            message: describe(),
        };
    }
    let auth = |settings: &str| {
        Classified::Fatal(PluginError::new(
            ErrorKind::Auth,
            format!(
                "connector `{connector}`: Google Ads refused the credentials ({}): check {settings}",
                describe()
            ),
        ))
    };
    if let Some(a) = has("authenticationError") {
        return if a.starts_with("DEVELOPER_TOKEN") {
            auth("setting `developer_token`")
        } else if a == "CUSTOMER_NOT_FOUND" {
            auth("setting `customer_id`")
        } else if a.starts_with("LOGIN_CUSTOMER_ID") {
            auth("setting `login_customer_id`")
        } else {
            auth("settings `refresh_token`, `client_id` and `client_secret`")
        };
    }
    if let Some(a) = has("authorizationError") {
        return if a.starts_with("DEVELOPER_TOKEN") {
            auth("setting `developer_token`")
        } else {
            auth("settings `customer_id` and `login_customer_id` (the credentials' user needs access to the account)")
        };
    }
    match code {
        401 => auth("settings `refresh_token`, `client_id` and `client_secret`"),
        403 => auth("settings `customer_id`, `login_customer_id` and `developer_token`"),
        500..=599 => Classified::Fatal(PluginError::retryable(
            ErrorKind::Upstream,
            format!(
                "connector `{connector}`: Google Ads server error ({})",
                describe()
            ),
        )),
        _ => Classified::Fatal(PluginError::new(
            ErrorKind::Upstream,
            format!(
                "connector `{connector}`: Google Ads rejected the request ({})",
                describe()
            ),
        )),
    }
}

/// The longest `retryDelay` taken as given: a day, the longest wait the
/// plugin makes (`wait_secs`).
pub const MAX_RETRY_DELAY_SECS: u64 = 86_400;

/// Parses a protobuf JSON Duration (`"30s"`, `"1.5s"`) to whole seconds,
/// rounded up, at most [`MAX_RETRY_DELAY_SECS`] (`"18446744073709551615.5s"`
/// wrapped to 0 in release builds: QA24).
pub fn parse_duration_secs(s: &str) -> Option<u64> {
    let t = s.trim().strip_suffix('s')?;
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: u64 = whole.parse().ok()?;
    let up = frac.bytes().any(|b| b != b'0');
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(secs.saturating_add(u64::from(up)).min(MAX_RETRY_DELAY_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::serde_json::json;

    #[test]
    fn durations_round_up() {
        assert_eq!(parse_duration_secs("30s"), Some(30));
        assert_eq!(parse_duration_secs("1.5s"), Some(2));
        assert_eq!(parse_duration_secs("2.000s"), Some(2));
        assert_eq!(parse_duration_secs("abc"), None);
    }

    /// QA24: `secs + 1` wrapped to 0 (no wait) in release and panicked in
    /// debug for the largest `u64`; a huge delay is capped at a day.
    #[test]
    fn a_huge_retry_delay_is_capped_at_a_day_not_wrapped() {
        assert_eq!(
            parse_duration_secs("18446744073709551615.5s"),
            Some(MAX_RETRY_DELAY_SECS)
        );
        assert_eq!(
            parse_duration_secs("18446744073709551615s"),
            Some(MAX_RETRY_DELAY_SECS)
        );
        assert_eq!(parse_duration_secs("86399.1s"), Some(86_400));
    }

    #[test]
    fn quota_error_carries_its_retry_delay() {
        let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Too many",
            "details": [{"@type": "type.googleapis.com/google.ads.googleads.v24.errors.GoogleAdsFailure",
              "errors": [{"errorCode": {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
                          "details": {"quotaErrorDetails": {"rateScope": "ACCOUNT", "retryDelay": "7s"}}}]}]}});
        match classify("g", 429, body.to_string().as_bytes()) {
            Classified::Quota {
                retry_delay_secs, ..
            } => assert_eq!(retry_delay_secs, Some(7)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn developer_token_errors_name_the_setting() {
        let body = json!({"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad",
            "details": [{"errors": [{"errorCode": {"authenticationError": "DEVELOPER_TOKEN_INVALID"}}]}]}});
        match classify("gads", 401, body.to_string().as_bytes()) {
            Classified::Fatal(e) => {
                assert_eq!(e.kind, ErrorKind::Auth);
                assert!(e.message.contains("connector `gads`"), "{}", e.message);
                assert!(e.message.contains("`developer_token`"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
    }

    /// A body that is not Google's error model (a load balancer's HTML page)
    /// went into the error with its newlines, and an empty one left a
    /// dangling `: `; now it is `sdk::body_suffix`'s one trimmed line.
    #[test]
    fn a_body_without_googles_error_model_is_quoted_on_one_line() {
        let html = "\n<html>\n  <p>bad\r\n gateway</p>\n</html>\n";
        match classify("gads", 502, html.as_bytes()) {
            Classified::Fatal(e) => {
                assert!(e.retryable);
                assert_eq!(
                    e.message,
                    "connector `gads`: Google Ads server error (HTTP 502: <html> <p>bad gateway</p> </html>)"
                );
            }
            other => panic!("{other:?}"),
        }
        match classify("gads", 404, b"") {
            Classified::Fatal(e) => assert_eq!(
                e.message,
                "connector `gads`: Google Ads rejected the request (HTTP 404)"
            ),
            other => panic!("{other:?}"),
        }
        match classify("gads", 400, "y".repeat(2_000).as_bytes()) {
            Classified::Fatal(e) => assert!(
                e.message
                    .ends_with(&format!(": {})", "y".repeat(MESSAGE_CHARS))),
                "{}",
                e.message
            ),
            other => panic!("{other:?}"),
        }
        // Google's own message keeps its words, on one line.
        let body = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
            "message": "Request contains an invalid argument.\n  at line 1"}});
        match classify("gads", 400, body.to_string().as_bytes()) {
            Classified::Fatal(e) => assert_eq!(
                e.message,
                "connector `gads`: Google Ads rejected the request (HTTP 400 INVALID_ARGUMENT: Request contains an invalid argument. at line 1)"
            ),
            other => panic!("{other:?}"),
        }
    }
}
