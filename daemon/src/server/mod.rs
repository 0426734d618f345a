//! HTTP server: health, status, metrics, postbacks. Owned by issues 3 and 5.
pub mod cli;
pub mod postback;
