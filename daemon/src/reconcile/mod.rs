//! Reconciliation: every claim judged against the advertiser's orders. Owned by issue 6.
//!
//! [`model`] holds the decision types that payout and KPI read; it is the
//! contract between those modules.
pub mod cli;
pub mod config;
pub mod model;

use crate::store::{Store, StoreError};

/// The latest decisions of a program, as stored by the last reconcile run.
/// CONTRACT: payout and kpi read decisions only through this.
pub fn load_decisions(store: &Store, program: &str) -> Result<Vec<model::Decision>, StoreError> {
    let _ = (store, program);
    Ok(Vec::new())
}
