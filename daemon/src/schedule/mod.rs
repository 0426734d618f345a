//! Cron scheduling of connector runs (`reckon run`). Owned by the daemon-core work (issue 3).
pub mod cli;
