//! `GET|POST /postback/<connector-id>`: server-to-server conversions.
//! Owned by the orders/postbacks work (issue 5).
//!
//! CONTRACT: the server merges [`router`] into its app.

use serde::Deserialize;

/// `[[postbacks]]`: one postback endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostbackConfig {
    /// The connector id the conversions are stored under (`/postback/<id>`).
    pub id: String,
}

/// State the postback routes need.
#[derive(Debug, Clone)]
pub struct PostbackState {
    /// The store conversions are written to.
    pub store: crate::store::Store,
    /// Configured endpoints.
    pub postbacks: Vec<PostbackConfig>,
}

/// The postback routes.
pub fn router(state: PostbackState) -> axum::Router {
    let _ = state;
    axum::Router::new()
}
