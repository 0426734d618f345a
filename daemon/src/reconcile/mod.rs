//! Reconciliation: every claim judged against the advertiser's orders. Owned by issue 6.
//!
//! [`model`] holds the decision types that payout and KPI read; it is the
//! contract between those modules.
pub mod cli;
pub mod config;
pub mod model;
