//! HTTP server of `reckon run`: `/healthz`, `/status`, `/metrics`, and the
//! postback routes of [`postback`] merged into the same app.
//!
//! What it is not: no authentication of its own (it listens on loopback by
//! default; postbacks check their shared secret themselves) and no writes
//! except through the postback routes.
pub mod cli;
pub mod metrics;
pub mod postback;
pub mod status;

use crate::schedule::Daemon;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// The daemon's axum app.
pub fn app(daemon: Arc<Daemon>) -> Router {
    let postbacks = postback::router(postback::PostbackState {
        store: daemon.store.clone(),
        postbacks: daemon.runtime().config.postbacks.clone(),
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status_json))
        .route("/metrics", get(metrics_text))
        .with_state(daemon)
        .merge(postbacks)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn status_json(State(d): State<Arc<Daemon>>) -> Json<status::StatusReport> {
    Json(status::StatusReport::of(&d))
}

async fn metrics_text(State(d): State<Arc<Daemon>>) -> impl IntoResponse {
    let size = d.store.size_on_disk().ok();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        d.metrics.render(size) + &crate::server::postback::render_metrics(),
    )
}
