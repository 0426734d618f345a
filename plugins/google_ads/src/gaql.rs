//! The GAQL queries the connector sends.
//!
//! One query for the account facts (`FROM customer`) and one per level for
//! spend by `segments.date`. Dates are in the account's timezone (Google has
//! no override), so the window's days are sent as they are.

use crate::config::Level;
use plugin_api::chrono::NaiveDate;

/// The account's currency and timezone (also the credential check).
pub const CUSTOMER: &str = "SELECT customer.id, customer.descriptive_name, customer.currency_code, customer.time_zone FROM customer LIMIT 1";

/// Spend for the days `from..=to` at `level`.
pub fn spend(level: Level, from: NaiveDate, to: NaiveDate) -> String {
    let (entity_fields, resource) = match level {
        Level::Campaign => ("", "campaign"),
        Level::AdGroup => (", ad_group.id, ad_group.name", "ad_group"),
        Level::Ad => (
            ", ad_group.id, ad_group.name, ad_group_ad.ad.id",
            "ad_group_ad",
        ),
    };
    format!(
        "SELECT segments.date, campaign.id, campaign.name, campaign.advertising_channel_type{entity_fields}, \
         metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, metrics.conversions_value \
         FROM {resource} WHERE segments.date BETWEEN '{from}' AND '{to}' ORDER BY segments.date"
    )
}

/// Performance Max spend for the days `from..=to`, by campaign.
///
/// Performance Max campaigns have asset groups, not ad groups: `FROM
/// ad_group` and `FROM ad_group_ad` never return their cost, so at those
/// levels this query adds one row per Performance Max campaign and day
/// (no ad group, no ad).
pub fn performance_max(from: NaiveDate, to: NaiveDate) -> String {
    format!(
        "SELECT segments.date, campaign.id, campaign.name, campaign.advertising_channel_type, \
         metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, metrics.conversions_value \
         FROM campaign WHERE segments.date BETWEEN '{from}' AND '{to}' \
         AND campaign.advertising_channel_type = 'PERFORMANCE_MAX' ORDER BY segments.date"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_group_query_selects_ids_names_and_metrics_by_date() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let q = spend(Level::AdGroup, d, d);
        assert!(
            q.contains("FROM ad_group WHERE segments.date BETWEEN '2026-11-01' AND '2026-11-01'")
        );
        assert!(q.contains("ad_group.id, ad_group.name"));
        assert!(q.contains("metrics.cost_micros"));
    }
}
