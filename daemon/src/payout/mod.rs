//! Commission rules and payout statements. Owned by issue 7.
pub mod cli;
pub mod config;
