//! Reads a period's inputs from the store: spend rows, claims and orders
//! whose day falls in the period, and the latest earning decisions matched
//! to those orders.
//!
//! Read-only; an unreadable stored value is an error naming its key (from the
//! store), never skipped.
use plugin_api::{Record, RecordKind};

use super::period::{Period, ReportingZone};
use super::{KpiError, KpiInputs};
use crate::reconcile::config::ProgramConfig;
use crate::store::Store;

/// Loads what a summary of `period` needs. Spend rows are selected by their
/// own local day; claims and orders by the reporting zone's day boundaries.
pub fn load_inputs(
    store: &Store,
    programs: &[ProgramConfig],
    zone: ReportingZone,
    period: &Period,
) -> Result<KpiInputs, KpiError> {
    let (start, end) = zone.bounds(period);
    let mut inputs = KpiInputs::default();
    for item in store.scan_records(RecordKind::Spend, None) {
        if let Record::Spend(s) = item?.record {
            if period.contains(s.day) {
                inputs.spend.push(s);
            }
        }
    }
    for item in store.scan_records(RecordKind::Conversion, None) {
        if let Record::Conversion(c) = item?.record {
            if start <= c.occurred_at && c.occurred_at < end {
                inputs.claims.push(c);
            }
        }
    }
    for item in store.scan_records(RecordKind::Order, None) {
        if let Record::Order(o) = item?.record {
            if start <= o.created_at && o.created_at < end {
                inputs.orders.push(o);
            }
        }
    }
    // The reconciled view credits orders with the earning decisions matched
    // to them: only those of the period's orders are kept (decoded one at a
    // time), not every decision ever made.
    let orders: std::collections::HashSet<(&str, &str)> = inputs
        .orders
        .iter()
        .map(|o| (o.source.as_str(), o.order_id.as_str()))
        .collect();
    let mut decisions = Vec::new();
    for p in programs {
        decisions.extend(crate::reconcile::load_decisions_where(store, &p.id, |d| {
            d.outcome.earns()
                && d.order
                    .as_ref()
                    .is_some_and(|o| orders.contains(&(o.source.as_str(), o.id.as_str())))
        })?);
    }
    drop(orders);
    inputs.decisions = decisions;
    Ok(inputs)
}
