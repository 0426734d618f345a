//! KPI summaries. Owned by issue 8.
pub mod cli;
pub mod config;
