//! `[kpi]` config: the reporting currency, the attribution rules that map
//! orders to ad connectors and campaigns, and the scheduled summaries.
//!
//! This is configuration only; the reporting timezone is `[daemon] timezone`
//! (one zone for the whole daemon) and is passed in by the caller.
use plugin_api::Channel;
use serde::Deserialize;

use super::{Dim, Format, KpiError, View};

/// `[kpi]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiConfig {
    /// ISO-4217 code every amount is reported in, e.g. `"EUR"`. Amounts in
    /// other currencies are converted with the `[fx]` rate of the row's day.
    /// Unset: all stored amounts must already share one currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// `[[kpi.attribution]]`: rules mapping an order's UTM parameters or click
    /// ids to an ad connector (and through `utm_campaign` to one of its
    /// campaigns), tried in order; the first match wins. Orders won by an
    /// affiliate claim in reconciliation are attributed to that claim first.
    #[serde(default)]
    pub attribution: Vec<AttributionRule>,
    /// `[kpi.summaries]`: the daily and monthly summaries the daemon writes.
    #[serde(default)]
    pub summaries: SummariesConfig,
}

/// `[[kpi.attribution]]`: one rule. At least one of `utm_source` and
/// `click_id_prefix` must be set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributionRule {
    /// Matches orders whose `utm_source` equals this (ASCII case-insensitive),
    /// e.g. `"google"`.
    #[serde(default)]
    pub utm_source: Option<String>,
    /// When set, the order's `utm_medium` must equal this too (ASCII
    /// case-insensitive), e.g. `"cpc"`.
    #[serde(default)]
    pub utm_medium: Option<String>,
    /// Matches orders carrying a click id that starts with this prefix, e.g.
    /// `"gclid:"` if the shop stores click ids with their parameter name.
    #[serde(default)]
    pub click_id_prefix: Option<String>,
    /// The connector id (as in `[[connectors]] id`) whose spend the order is
    /// attributed to, e.g. `"google_ads"`.
    pub connector: String,
    /// How `utm_campaign` names the campaign: `"id_or_name"` (default: the
    /// campaign id, else the campaign name, case-insensitive), `"id"` or
    /// `"name"`.
    #[serde(default)]
    pub campaign_by: CampaignMatch,
    /// Channel of attributed orders when the campaign is not found in the
    /// connector's spend (default: the connector's channel from its spend
    /// rows, else `other`).
    #[serde(default)]
    pub channel: Option<Channel>,
}

/// How `utm_campaign` identifies a campaign of the rule's connector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignMatch {
    /// Campaign id first, then campaign name (ASCII case-insensitive).
    #[default]
    IdOrName,
    /// Campaign id only.
    Id,
    /// Campaign name only (ASCII case-insensitive).
    Name,
}

/// `[kpi.summaries]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummariesConfig {
    /// Whether the daemon writes summaries at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// When to write them: a standard 5-field crontab line evaluated in the
    /// reporting timezone. Default `"0 6 * * *"` (06:00 every day).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Dimensions of the summaries, e.g. `["channel", "source"]`.
    #[serde(default = "default_by")]
    pub by: Vec<Dim>,
    /// Which view: `reported`, `reconciled` or `both` (default).
    #[serde(default = "default_view")]
    pub view: View,
    /// Files to write, any of `csv`, `json`, `html`, `table` (default all but
    /// `table`).
    #[serde(default = "default_formats")]
    pub formats: Vec<Format>,
}

impl Default for SummariesConfig {
    fn default() -> Self {
        SummariesConfig {
            enabled: true,
            schedule: default_schedule(),
            by: default_by(),
            view: default_view(),
            formats: default_formats(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_schedule() -> String {
    "0 6 * * *".into()
}
fn default_by() -> Vec<Dim> {
    vec![Dim::Channel, Dim::Source]
}
fn default_view() -> View {
    View::Both
}
fn default_formats() -> Vec<Format> {
    vec![Format::Csv, Format::Json, Format::Html]
}

impl KpiConfig {
    /// Checks what serde cannot: each rule matches something, the currency
    /// code is well-formed, the schedule parses. The first problem.
    pub fn validate(&self) -> Result<(), KpiError> {
        match self.problems().into_iter().next() {
            Some((_, message)) => Err(KpiError::Config(message)),
            None => Ok(()),
        }
    }

    /// Every problem [`KpiConfig::validate`] checks for, each with the key
    /// path under `[kpi]` it is about (e.g. `attribution[1].connector`), so
    /// the config loader can report them all with their lines.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(c) = &self.currency {
            if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                out.push((
                    "currency".into(),
                    format!("[kpi] currency = {c:?}: expected an ISO-4217 code such as \"EUR\""),
                ));
            } else if plugin_api::currency::minor_unit_digits(c).is_none() {
                // Well-formed but unknown (`XYZ`): no rate would ever
                // convert to it, and every row would be left out.
                out.push((
                    "currency".into(),
                    format!(
                        "[kpi] currency = {c:?}: not an ISO-4217 currency code; use a code such as \"EUR\", \"USD\" or \"GBP\""
                    ),
                ));
            }
        }
        for (i, rule) in self.attribution.iter().enumerate() {
            if rule.utm_source.is_none() && rule.click_id_prefix.is_none() {
                out.push((
                    format!("attribution[{i}]"),
                    format!(
                        "[[kpi.attribution]] #{} (connector {:?}): set utm_source or click_id_prefix, \
                         otherwise the rule matches nothing",
                        i + 1,
                        rule.connector
                    ),
                ));
            }
            if rule.connector.trim().is_empty() {
                out.push((
                    format!("attribution[{i}].connector"),
                    format!(
                        "[[kpi.attribution]] #{}: connector is empty; name a connector id",
                        i + 1
                    ),
                ));
            }
        }
        // The path names the key: the cron error alone (ops QA13 OPS-18:
        // "`kpi.summaries.schedule`: kpi config: [kpi.summaries] schedule = ...").
        if let Err(e) = self
            .summaries
            .schedule
            .parse::<crate::config::CronSchedule>()
        {
            out.push(("summaries.schedule".into(), e.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_defaults() {
        let cfg: KpiConfig = toml::from_str(
            r#"
            currency = "EUR"
            [[attribution]]
            utm_source = "google"
            connector = "google_ads"
            [[attribution]]
            click_id_prefix = "fbclid:"
            connector = "meta_ads"
            campaign_by = "name"
            channel = "social"
            "#,
        )
        .expect("parses");
        assert_eq!(cfg.attribution.len(), 2);
        assert_eq!(cfg.attribution[1].campaign_by, CampaignMatch::Name);
        assert_eq!(cfg.summaries.schedule, "0 6 * * *");
        cfg.validate().expect("valid");
    }

    #[test]
    fn rejects_rule_matching_nothing_and_unknown_keys() {
        let cfg: KpiConfig = toml::from_str(
            r#"
            [[attribution]]
            connector = "google_ads"
            "#,
        )
        .expect("parses");
        let err = cfg.validate().expect_err("invalid").to_string();
        assert!(err.contains("utm_source or click_id_prefix"), "{err}");
        let bad = toml::from_str::<KpiConfig>("currancy = \"EUR\"");
        assert!(bad.is_err());
    }

    /// QA6 F6: three upper-case letters are not enough; the code must be a
    /// known ISO-4217 currency (every row was dropped for want of a rate).
    #[test]
    fn rejects_an_unknown_currency_code() {
        for (code, ok) in [("XYZ", false), ("eur", false), ("EUR", true), ("JPY", true)] {
            let cfg: KpiConfig = toml::from_str(&format!("currency = {code:?}")).expect("parses");
            match cfg.validate() {
                Ok(()) => assert!(ok, "{code} accepted"),
                Err(e) => {
                    assert!(!ok, "{code} refused: {e}");
                    assert!(e.to_string().contains("ISO-4217"), "{e}");
                }
            }
        }
    }
}
