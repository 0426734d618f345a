//! The Graph API's error envelope and usage headers.
//!
//! Errors are `{"error": {"message", "type", "code", "error_subcode",
//! "is_transient", "fbtrace_id"}}`, usually with HTTP 400 whatever the cause,
//! so they are classified by `code`, never by the HTTP status (a 2xx answer
//! carrying an `error` object is an error too, see [`carries_error`]). Throttling
//! codes are 4 (app), 17 (user), 32 (page), 613 (ad account) and 80000-80014
//! (business use case). Usage headers carry JSON with percentages; the
//! connector slows down before they reach 100.

use plugin_api::parse;
use plugin_api::rust_decimal::prelude::ToPrimitive;
use plugin_api::rust_decimal::Decimal;
use plugin_api::sdk::body_suffix;
use plugin_api::serde_json::Value;
use plugin_api::{ErrorKind, PluginError, Response};

/// What an error response means.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// Throttled: back off and retry.
    Throttled(String),
    /// Anything else, as a finished plugin error.
    Fatal(PluginError),
}

/// True for the Graph throttling codes.
pub fn is_throttle_code(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 613 | 80000..=80014)
}

/// True when a body is a JSON object with an `error` member. Graph errors
/// (throttling included) are told by their code, not by the HTTP status, so
/// a successful status is not taken on trust: an insights page parsed from
/// `{"error": ...}` would read as an empty page and finish its days with no
/// rows. Scans the body without building it.
pub fn carries_error(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
    }
    plugin_api::serde_json::from_slice::<Probe>(body).is_ok_and(|p| p.error.is_some())
}

/// Reads the error object of a response, if the body has one.
pub fn error_object(body: &[u8]) -> Option<Value> {
    let v: Value = plugin_api::serde_json::from_slice(body).ok()?;
    v.get("error").filter(|e| e.is_object()).cloned()
}

/// Classifies a non-success response (or a success carrying an error object).
pub fn classify(connector: &str, resp: &Response) -> Classified {
    let Some(e) = error_object(&resp.body) else {
        // Not Graph's envelope (a proxy's or load balancer's page): its
        // start, on one line, stands in for Graph's message.
        let body = body_suffix(&resp.body, 200);
        return match resp.status {
            401 | 403 => Classified::Fatal(PluginError::new(
                ErrorKind::Auth,
                format!("connector `{connector}`: Meta refused the access token (HTTP {}): check setting `access_token`", resp.status),
            )),
            429 => Classified::Throttled(format!("HTTP 429{body}")),
            500..=599 => Classified::Fatal(PluginError::retryable(
                ErrorKind::Upstream,
                format!("connector `{connector}`: Meta server error (HTTP {}){body}", resp.status),
            )),
            s => Classified::Fatal(PluginError::new(
                ErrorKind::Upstream,
                format!("connector `{connector}`: Meta rejected the request (HTTP {s}){body}"),
            )),
        };
    };
    let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
    let sub = e.get("error_subcode").and_then(Value::as_i64);
    let message = e.get("message").and_then(Value::as_str).unwrap_or("");
    let transient = e
        .get("is_transient")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let what = match sub {
        Some(s) => format!("HTTP {}, code {code}, subcode {s}: {message}", resp.status),
        None => format!("HTTP {}, code {code}: {message}", resp.status),
    };
    if is_throttle_code(code) {
        return Classified::Throttled(what);
    }
    let fatal = |kind, retryable: bool, text: String| {
        Classified::Fatal(PluginError {
            kind,
            retryable,
            message: format!("connector `{connector}`: {text}"),
        })
    };
    match code {
        190 | 102 => fatal(
            ErrorKind::Auth,
            false,
            format!("Meta refused the access token ({what}): check setting `access_token`"),
        ),
        10 | 200..=299 => fatal(
            ErrorKind::Auth,
            false,
            format!("the access token lacks permission ({what}): check setting `access_token` (needs ads_read on the account) and setting `ad_account_id`"),
        ),
        100 if sub == Some(33) => fatal(
            ErrorKind::Config,
            false,
            format!("the ad account does not exist or is not visible ({what}): check setting `ad_account_id`"),
        ),
        1 | 2 => fatal(
            ErrorKind::Upstream,
            true,
            format!("Meta reported a temporary error ({what})"),
        ),
        _ if transient || resp.status >= 500 => fatal(
            ErrorKind::Upstream,
            true,
            format!("Meta reported a transient error ({what})"),
        ),
        _ => fatal(ErrorKind::Upstream, false, format!("Meta rejected the request ({what})")),
    }
}

/// The highest usage the response's headers report, in whole percent, and
/// the longest `estimated_time_to_regain_access` (minutes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Highest percentage across all usage headers and counters.
    pub max_pct: u32,
    /// Minutes until access is regained (business use case header), 0 if none.
    pub regain_minutes: u32,
}

fn pct(v: &Value) -> u32 {
    parse::decimal(v)
        .ok()
        .flatten()
        .map(|d: Decimal| d.ceil().to_u32().unwrap_or(u32::MAX))
        .unwrap_or(0)
}

fn scan(v: &Value, usage: &mut Usage) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match k.as_str() {
                    "call_count" | "total_cputime" | "total_time" | "acc_id_util_pct"
                    | "app_id_util_pct" => usage.max_pct = usage.max_pct.max(pct(x)),
                    "estimated_time_to_regain_access" => {
                        usage.regain_minutes = usage.regain_minutes.max(pct(x))
                    }
                    _ => scan(x, usage),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| scan(x, usage)),
        _ => {}
    }
}

/// Reads `x-business-use-case-usage`, `x-app-usage`, `x-ad-account-usage` and
/// `x-fb-ads-insights-throttle`. Unparseable headers are ignored.
pub fn usage(resp: &Response) -> Usage {
    let mut u = Usage::default();
    for h in [
        "x-business-use-case-usage",
        "x-app-usage",
        "x-ad-account-usage",
        "x-fb-ads-insights-throttle",
    ] {
        if let Some(v) = resp
            .header(h)
            .and_then(|s| plugin_api::serde_json::from_str::<Value>(s).ok())
        {
            scan(&v, &mut u);
        }
    }
    u
}

/// How long to pause after a response with this usage: the full regain time
/// when Meta gives one, else a pause growing linearly from 0 at
/// `slow_down_at_pct` to `max_pause_secs` at 100 %, at least one second.
pub fn pause_secs(u: Usage, slow_down_at_pct: u32, max_pause_secs: u32) -> u64 {
    if u.regain_minutes > 0 {
        return u64::from(u.regain_minutes.min(60)) * 60;
    }
    if u.max_pct < slow_down_at_pct || slow_down_at_pct >= 100 {
        return 0;
    }
    let over = u64::from(u.max_pct.min(100) - slow_down_at_pct);
    let span = u64::from(100 - slow_down_at_pct);
    (u64::from(max_pause_secs) * over).div_ceil(span).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn usage_headers_are_read_as_the_highest_percentage() {
        let r = resp(
            200,
            &[
                (
                    "x-app-usage",
                    r#"{"call_count":12,"total_time":3,"total_cputime":4}"#,
                ),
                (
                    "x-fb-ads-insights-throttle",
                    r#"{"app_id_util_pct":81.5,"acc_id_util_pct":3}"#,
                ),
                (
                    "x-business-use-case-usage",
                    r#"{"1":[{"type":"ads_insights","call_count":40,"total_cputime":1,"total_time":2,"estimated_time_to_regain_access":0}]}"#,
                ),
            ],
            "{}",
        );
        let u = usage(&r);
        assert_eq!(
            u,
            Usage {
                max_pct: 82,
                regain_minutes: 0
            }
        );
        assert_eq!(pause_secs(u, 75, 100), 28);
        assert_eq!(
            pause_secs(
                Usage {
                    max_pct: 10,
                    regain_minutes: 0
                },
                75,
                100
            ),
            0
        );
        assert_eq!(
            pause_secs(
                Usage {
                    max_pct: 10,
                    regain_minutes: 2
                },
                75,
                100
            ),
            120
        );
    }

    #[test]
    fn throttling_is_told_by_code_not_status() {
        let r = resp(
            400,
            &[],
            r#"{"error":{"message":"(#17) User request limit reached","type":"OAuthException","code":17,"error_subcode":2446079,"fbtrace_id":"x"}}"#,
        );
        assert!(matches!(classify("m", &r), Classified::Throttled(_)));
        let r = resp(
            400,
            &[],
            r#"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190,"fbtrace_id":"x"}}"#,
        );
        match classify("m", &r) {
            Classified::Fatal(e) => {
                assert_eq!(e.kind, ErrorKind::Auth);
                assert!(e.message.contains("`access_token`"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A body that is not Graph's envelope (a proxy's HTML page) went into
    /// the error as it came, newlines and all, and an empty one left a
    /// dangling `: `; now it is `sdk::body_suffix`'s one trimmed line.
    #[test]
    fn a_body_without_graphs_envelope_is_quoted_on_one_line() {
        let html = "\n<html>\n  <p>bad\r\n gateway</p>\n</html>\n\n";
        match classify("m", &resp(502, &[], html)) {
            Classified::Fatal(e) => {
                assert!(e.retryable);
                assert_eq!(
                    e.message,
                    "connector `m`: Meta server error (HTTP 502): <html> <p>bad gateway</p> </html>"
                );
            }
            other => panic!("{other:?}"),
        }
        match classify("m", &resp(404, &[], "")) {
            Classified::Fatal(e) => {
                assert_eq!(
                    e.message,
                    "connector `m`: Meta rejected the request (HTTP 404)"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify("m", &resp(429, &[], "slow\ndown\n")),
            Classified::Throttled("HTTP 429: slow down".into())
        );
        let long = "x".repeat(1_000);
        match classify("m", &resp(500, &[], &long)) {
            Classified::Fatal(e) => assert!(e.message.ends_with(&format!(": {}", "x".repeat(200)))),
            other => panic!("{other:?}"),
        }
    }
}
