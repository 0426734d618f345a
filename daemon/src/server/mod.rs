//! HTTP server of `reckon run`: `/healthz`, `/status`, `/metrics`, and the
//! postback routes of [`postback`] merged into the same app.
//!
//! Authentication: `/status` and `/metrics` require `[daemon]
//! status_token` as a bearer token when it is set ([`require_status_token`],
//! read per request from the running config, so a SIGHUP applies a new
//! one); `/healthz` never does (load balancers and supervisors probe it);
//! postbacks check their own shared secret. No writes except through the
//! postback routes.
pub mod cli;
pub mod listener;
pub mod metrics;
pub mod postback;
pub mod status;

use crate::schedule::Daemon;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// The daemon's axum app. Postback groups that changed claims are reported
/// to `commits` (the daemon reconciles their programs).
pub fn app(daemon: Arc<Daemon>, commits: Option<postback::Commits>) -> Router {
    // The endpoints are shared with the daemon, which replaces them on SIGHUP.
    let postbacks = postback::router_with(daemon.store.clone(), daemon.postbacks.clone(), commits);
    Router::new()
        .route("/status", get(status_json))
        .route("/metrics", get(metrics_text))
        .route_layer(axum::middleware::from_fn_with_state(
            daemon.clone(),
            require_status_token,
        ))
        .route("/healthz", get(healthz))
        .with_state(daemon)
        .merge(postbacks)
}

/// The fewest characters `[daemon] status_token` may have: a shorter token
/// is guessable by a client that tries many (the server does not slow
/// repeated failures down).
pub const MIN_STATUS_TOKEN_CHARS: usize = 16;

/// The most characters `[daemon] status_token` may have: a longer header
/// is refused by clients and proxies long before the server's limit.
pub const MAX_STATUS_TOKEN_CHARS: usize = 1024;

/// `[daemon] status_token`, read (relative files from `config_dir`): `None`
/// when unset; `Err` says what is wrong with it and what to do. The value
/// is remembered for masking, as every secret the daemon reads.
pub fn read_status_token(
    daemon: &crate::config::DaemonConfig,
    config_dir: std::path::PathBuf,
) -> Result<Option<String>, String> {
    let Some(r) = &daemon.status_token else {
        return Ok(None);
    };
    let reader = crate::config::resolve::os_secret_reader(config_dir);
    let token = r
        .to_config_ref()
        .and_then(|c| reader(&c).map_err(|m| format!("secret not resolvable: {m}")))?;
    let what = "; put 32 or more random letters and digits there (e.g. the output of `openssl rand -hex 32`)";
    if token.is_empty() {
        return Err(format!("secret `{}` is empty{what}", r.secret));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "secret `{}` holds a space or a character an HTTP header cannot carry{what}",
            r.secret
        ));
    }
    let n = token.chars().count();
    if n > MAX_STATUS_TOKEN_CHARS {
        return Err(format!(
            "secret `{}` is {n} characters, more than {MAX_STATUS_TOKEN_CHARS}: clients and proxies limit header sizes{what}",
            r.secret
        ));
    }
    if n < MIN_STATUS_TOKEN_CHARS {
        return Err(format!(
            "secret `{}` is {n} characters, fewer than {MIN_STATUS_TOKEN_CHARS}: a client could guess it{what}",
            r.secret
        ));
    }
    Ok(Some(token))
}

/// Requests `/status` and `/metrics` refused for a missing or a wrong
/// token (security QA22 S7: a scraper with a stale token, or guessing,
/// left no trace).
static STATUS_AUTH_FAILURES: [std::sync::atomic::AtomicU64; 2] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 2];

/// `reckon_status_auth_failures_total{reason}`, since the daemon started.
pub fn render_status_auth_metrics() -> String {
    let mut out = String::new();
    let n = |i: usize| STATUS_AUTH_FAILURES[i].load(std::sync::atomic::Ordering::Relaxed);
    metrics::family(
        &mut out,
        "reckon_status_auth_failures_total",
        "counter",
        "Requests to /status and /metrics refused: the status token missing or wrong.",
        [
            (metrics::labels(&[("reason", "missing")]), n(0)),
            (metrics::labels(&[("reason", "wrong")]), n(1)),
        ],
    );
    out
}

/// Lets a request through when the running config has no status token, or
/// when it carries it as `Authorization: Bearer <token>` (compared in
/// constant time); else `401` with `WWW-Authenticate: Bearer`, counted. A
/// request with two `Authorization` headers is refused (which one a proxy
/// and the daemon read could differ; QA22 S8).
async fn require_status_token(
    State(d): State<Arc<Daemon>>,
    request: Request,
    next: Next,
) -> Response {
    let runtime = d.runtime();
    let Some(token) = runtime.status_token.as_deref() else {
        return next.run(request).await;
    };
    let headers = request.headers().get_all(header::AUTHORIZATION);
    let given = (headers.iter().count() == 1)
        .then(|| request.headers().get(header::AUTHORIZATION))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, t)| t.trim());
    let sent = headers.iter().count();
    let why = match given {
        Some(t) if postback::constant_time_eq(t.as_bytes(), token.as_bytes()) => {
            return next.run(request).await
        }
        Some(_) => "the bearer token is not this daemon's `[daemon] status_token`\n",
        None if sent > 1 => "send one `Authorization` header, not several\n",
        // Sent, but not a bearer token in visible ASCII (another scheme,
        // bytes that are not text): wrong, not missing (QA28-E F14).
        None if sent == 1 => "the `Authorization` header is not `Bearer <token>` in visible ASCII; send the token of `[daemon] status_token` as `Authorization: Bearer <token>`\n",
        None => "this daemon's /status and /metrics need `Authorization: Bearer <token>`, the token of `[daemon] status_token`\n",
    };
    // Any header sent (several, or one that is not a bearer token): a
    // credential was sent, so not "missing" (QA23 N3, QA28-E F14).
    let reason = usize::from(sent > 0);
    STATUS_AUTH_FAILURES[reason].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(
        path = %request.uri().path(),
        reason = ["missing", "wrong"][reason],
        "status token refused"
    );
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"reckon\"")],
        why,
    )
        .into_response()
}

/// `ok` (200); `failed: …` (503) once the store refuses every write
/// ([`crate::store::Store::failure`]; the daemon is stopping then); or
/// `degraded` (503) naming what does not work: a postback endpoint that
/// answers 503. (The daemon refuses to start or reload with an
/// unresolvable postback secret, so this is a guard, not a normal state.)
async fn healthz(State(d): State<Arc<Daemon>>) -> (StatusCode, String) {
    if let Some(reason) = d.store.failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failed: the store refuses every write until reckon restarts: {reason}\n"),
        );
    }
    let disabled: Vec<String> = d
        .postbacks
        .status()
        .into_iter()
        .filter(|e| !e.enabled)
        .map(|e| e.id)
        .collect();
    if disabled.is_empty() {
        (StatusCode::OK, "ok\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "degraded: postback endpoint(s) disabled: {} (see /status)\n",
                disabled.join(", ")
            ),
        )
    }
}

async fn status_json(State(d): State<Arc<Daemon>>) -> Json<status::StatusReport> {
    Json(status::StatusReport::of(&d))
}

async fn metrics_text(State(d): State<Arc<Daemon>>) -> impl IntoResponse {
    let size = d.store.size_on_disk().ok();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        d.metrics.render(size)
            + &crate::server::postback::render_metrics()
            + &crate::reconcile::render_metrics()
            + &d.render_connector_metrics()
            + &crate::kpi::hook::render_metrics(&d.store, &d.runtime().config)
            + &crate::payout::hook::render_metrics()
            + &render_status_auth_metrics()
            + &d.config_state.render_metrics(&d.config_path),
    )
}
