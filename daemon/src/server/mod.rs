//! HTTP server of `reckon run`: `/healthz`, `/status`, `/metrics`, and the
//! postback routes of [`postback`] merged into the same app.
//!
//! What it is not: no authentication of its own (it listens on loopback by
//! default; postbacks check their shared secret themselves) and no writes
//! except through the postback routes.
pub mod cli;
pub mod listener;
pub mod metrics;
pub mod postback;
pub mod status;

use crate::schedule::Daemon;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// The daemon's axum app. Postback groups that changed claims are reported
/// to `commits` (the daemon reconciles their programs).
pub fn app(daemon: Arc<Daemon>, commits: Option<postback::Commits>) -> Router {
    // The endpoints are shared with the daemon, which replaces them on SIGHUP.
    let postbacks = postback::router_with(daemon.store.clone(), daemon.postbacks.clone(), commits);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status_json))
        .route("/metrics", get(metrics_text))
        .with_state(daemon)
        .merge(postbacks)
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
            + &crate::kpi::hook::render_metrics(&d.store)
            + &crate::payout::hook::render_metrics()
            + &d.config_state.render_metrics(&d.config_path),
    )
}
