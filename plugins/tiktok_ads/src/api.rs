//! TikTok's response envelope: errors arrive as HTTP 200 with a non-zero
//! `code`, so every response is checked here before its data is read.
//!
//! `{"code": 0, "message": "OK", "request_id": "...", "data": {...}}`.
//! Codes: 40100 rate limited (retry after a back-off), 5xxxx server errors
//! and 60001 maintenance (retry), 40104/40105 missing or invalid access token
//! and 40001/40002 no permission (auth errors naming the setting), 40067 a
//! query too large (the caller asks again for fewer days). HTTP 5xx (a 504
//! may not even be JSON) is retried.

use plugin_api::sdk::body_suffix;
use plugin_api::serde_json::Value;
use plugin_api::{ErrorKind, PluginError, Response};

/// What a response means.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// `code` 0: read the data.
    Ok,
    /// Wait and send the same request again: a rate limit
    /// ([`ErrorKind::RateLimited`]) or a temporary error on TikTok's side
    /// ([`ErrorKind::Upstream`]), with why.
    Retry(ErrorKind, String),
    /// Code 40067, "query too large": ask for fewer days; the error is for
    /// when the request was already one day.
    TooLarge(PluginError),
    /// Give up with this error.
    Fatal(PluginError),
}

/// Checks the HTTP status and the envelope's `code`.
pub fn verdict(connector: &str, resp: &Response) -> Verdict {
    let env: Option<Value> = plugin_api::serde_json::from_slice(&resp.body).ok();
    let code = env
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(Value::as_i64);
    let message = env
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let request_id = env
        .as_ref()
        .and_then(|v| v.get("request_id"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    // What an HTTP error says: the envelope's `message`, else (a gateway's
    // HTML page, a 504 that is not JSON) the start of the body; one line.
    let detail = || {
        if message.trim().is_empty() {
            body_suffix(&resp.body, 200)
        } else {
            body_suffix(message.as_bytes(), 200)
        }
    };
    let fatal = |kind, retryable: bool, text: String| {
        Verdict::Fatal(PluginError {
            kind,
            retryable,
            message: format!("connector `{connector}`: {text}"),
        })
    };
    match resp.status {
        200..=299 => {}
        401 | 403 => {
            return fatal(
                ErrorKind::Auth,
                false,
                format!(
                    "TikTok refused the access token (HTTP {}): check setting `access_token`",
                    resp.status
                ),
            )
        }
        429 => return Verdict::Retry(ErrorKind::RateLimited, format!("HTTP 429{}", detail())),
        500..=599 => {
            return Verdict::Retry(
                ErrorKind::Upstream,
                format!("HTTP {}{}", resp.status, detail()),
            )
        }
        s => {
            let code = code.map(|c| format!(", code {c}")).unwrap_or_default();
            return fatal(
                ErrorKind::Upstream,
                false,
                format!("TikTok rejected the request (HTTP {s}{code}){}", detail()),
            );
        }
    }
    let Some(code) = code else {
        return fatal(
            ErrorKind::BadResponse,
            false,
            format!(
                "TikTok answered without a numeric `code`{}",
                body_suffix(&resp.body, 200)
            ),
        );
    };
    let what = format!("code {code}: {message} (request_id {request_id})");
    match code {
        0 => Verdict::Ok,
        40100 => Verdict::Retry(ErrorKind::RateLimited, format!("rate limited, {what}")),
        50000..=59999 | 60001 => {
            Verdict::Retry(ErrorKind::Upstream, format!("temporary error, {what}"))
        }
        40104..=40106 => fatal(
            ErrorKind::Auth,
            false,
            format!("TikTok refused the access token ({what}): check setting `access_token`"),
        ),
        40001 | 40002 => fatal(
            ErrorKind::Auth,
            false,
            format!("the access token has no access to the advertiser ({what}): check settings `access_token` and `advertiser_id`"),
        ),
        40067 => Verdict::TooLarge(PluginError {
            kind: ErrorKind::Config,
            retryable: false,
            message: format!(
                "connector `{connector}`: TikTok says the query is too large even for one day ({what}): lower setting `page_size` or choose a coarser `level`"
            ),
        }),
        _ => fatal(ErrorKind::Upstream, false, format!("TikTok reported an error ({what})")),
    }
}
