//! Exchange rates: a table of (date, base, quote, rate) loaded from CSV.
//! Owned by the reconciliation work (issue 6); payout and kpi read it.
//!
//! CONTRACT: `FxTable::rate` is what other modules call.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

/// `[fx]`: where rates come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxConfig {}

/// Loaded rates.
#[derive(Debug, Clone, Default)]
pub struct FxTable {}

impl FxTable {
    /// The rate converting 1 `base` into `quote` valid on `date`, if any.
    pub fn rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<Decimal> {
        if base == quote {
            return Some(Decimal::ONE);
        }
        let _ = date;
        None
    }
}
