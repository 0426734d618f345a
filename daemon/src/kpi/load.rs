//! Reads a period's inputs from the store: spend rows, claims and orders
//! whose day falls in the period, the campaigns of all stored spend rows
//! (one entry per campaign), and the latest earning decisions matched to
//! those orders, with notes when those decisions are out of date.
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
/// When the period has records, notes per program whether its decisions are
/// out of date at `now` ([`KpiInputs::reconcile_notes`]), its `[fx]`
/// table compared with `fx`.
pub fn load_inputs(
    store: &Store,
    programs: &[ProgramConfig],
    fx: &crate::fx::FxTable,
    zone: ReportingZone,
    period: &Period,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<KpiInputs, KpiError> {
    let (start, end) = zone.bounds(period);
    let mut inputs = KpiInputs {
        generated_at: Some(now),
        // Read first: the records scanned below are at least those stored
        // up to it.
        store_seq: Some(store.last_seq()?),
        ..KpiInputs::default()
    };
    for item in store.scan_records(RecordKind::Spend, None) {
        if let Record::Spend(s) = item?.record {
            // Every row, of any day, feeds the campaign index: an order's
            // campaign and channel must not depend on the period asked.
            inputs.campaigns.add(&s);
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
    let fx_fingerprint = fx.fingerprint();
    let any_records =
        !(inputs.spend.is_empty() && inputs.claims.is_empty() && inputs.orders.is_empty());
    for p in programs {
        // As `reckon reconcile report` reads them: with each decision's
        // deadline and the instant the last run judged them at.
        let j = crate::reconcile::load_judgements_where(store, &p.id, |d| {
            d.outcome.earns()
                && d.order
                    .as_ref()
                    .is_some_and(|o| orders.contains(&(o.source.as_str(), o.id.as_str())))
        })?;
        inputs.judged_at.push((p.id.clone(), j.judged_at));
        if any_records {
            let stale =
                crate::reconcile::report::stale(j.decisions.iter().zip(j.due.iter().copied()), now);
            let unjudged = crate::reconcile::unjudged(store, p)?;
            if !unjudged.ran {
                inputs.not_reconciled.push(p.id.clone());
            }
            inputs
                .reconcile_notes
                .extend(freshness_notes(&p.id, &unjudged, stale.as_ref()));
            if unjudged.ran {
                inputs
                    .reconcile_notes
                    .extend(crate::reconcile::out_of_date_notes(
                        store,
                        p,
                        &unjudged,
                        &fx_fingerprint,
                        "a new order shows as `unattributed`",
                    )?);
            }
        }
        decisions.extend(j.decisions);
    }
    drop(orders);
    // Claims outside the period behind the period's orders: their campaign
    // ids, read one by one (few: those near the period's edges).
    let in_period: std::collections::HashSet<(&str, &str)> = inputs
        .claims
        .iter()
        .map(|c| (c.source.as_str(), c.external_id.as_str()))
        .collect();
    let mut claim_campaigns = std::collections::HashMap::new();
    for d in &decisions {
        let key = (d.claim.source.as_str(), d.claim.id.as_str());
        if in_period.contains(&key)
            || claim_campaigns.contains_key(&(key.0.to_owned(), key.1.to_owned()))
        {
            continue;
        }
        let stored = store.get_record(RecordKind::Conversion, key.0, key.1)?;
        if let Some(Record::Conversion(c)) = stored.map(|s| s.record) {
            if let Some(campaign) = c.campaign_id {
                claim_campaigns.insert((key.0.to_owned(), key.1.to_owned()), campaign);
            }
        }
    }
    drop(in_period);
    inputs.claim_campaigns = claim_campaigns;
    inputs.decisions = decisions;
    Ok(inputs)
}

/// What a reader of the reconciled view must know about a program's
/// decisions: never reconciled, or decisions judged before a deadline of
/// their own that has passed since (the sentence of `reckon reconcile
/// report`). Records stored after the last run, and a config changed
/// since, are [`crate::reconcile::out_of_date_notes`]'.
pub fn freshness_notes(
    program: &str,
    unjudged: &crate::reconcile::Unjudged,
    stale: Option<&crate::reconcile::report::Stale>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if !unjudged.ran {
        notes.push(format!(
            "Program `{program}` has not been reconciled (never, its last full run did not finish, or the store was upgraded since and every claim must be judged again): its affiliate orders are not credited to partners and may show as `unattributed`; run `reckon reconcile` and report again."
        ));
        return notes;
    }
    if let Some(s) = stale {
        notes.push(format!(
            "Program `{program}`: {}",
            s.sentence(unjudged.judged_at)
        ));
    }
    notes
}
