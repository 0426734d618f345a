//! `[programs.commission]`: the commission rules and payout settings of one
//! program.
//!
//! This module is the config schema and its validation only; applying the
//! rules is [`super::rules`]. Amounts are exact decimals written as strings
//! (`"12.50"`), never floats. Units are in the names: `*_percent` is a
//! percentage (`"7.5"` = 7.5 %), `*_volume` is in the program currency (the
//! currency of the commission basis), every other amount is in the
//! `payout_currency`.

use chrono::NaiveDate;
use plugin_api::EventType;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[programs.commission]`: rules, bonuses, overrides and payout settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommissionConfig {
    /// ISO-4217 code partners are paid in, e.g. `"EUR"`. Commission on a basis
    /// in another currency is converted with the FX rate of the conversion's
    /// date, and that rate is printed on the line.
    pub payout_currency: String,
    /// Statement period: `"monthly"` (default, `2026-11`), `"semi_monthly"`
    /// (`2026-11-H1` = 1st–15th, `2026-11-H2` = 16th–end) or `"weekly"` (ISO
    /// weeks, `2026-W48`, Monday to Sunday).
    #[serde(default)]
    pub period: PeriodKind,
    /// IANA timezone in which conversion dates, periods and effective dates
    /// are read. Default: `[daemon] timezone` (the reporting timezone), else
    /// `"UTC"`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Smallest total a partner is paid, in the payout currency (default 0).
    /// A smaller total is carried into the partner's next statement.
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub minimum_payout: Option<Decimal>,
    /// Cron expression (5 fields, in `timezone`) at which the daemon
    /// regenerates the drafts of the open periods; none = only on demand.
    #[serde(default)]
    pub draft_schedule: Option<String>,
    /// Named partner groups: `influencers = ["p-1", "p-7"]`. Rules, bonuses and
    /// overrides may match a group instead of listing partners.
    #[serde(default)]
    pub partner_groups: BTreeMap<String, Vec<String>>,
    /// `[[programs.commission.rules]]`, tried in order; the first rule that
    /// matches a claim (in force on its date, event type, partner) prices it.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// `[[programs.commission.bonuses]]`: one bonus line per bonus whose
    /// volume threshold a partner reaches in a period.
    #[serde(default)]
    pub bonuses: Vec<BonusConfig>,
    /// `[[programs.commission.overrides]]`: per-partner replacements of a
    /// rule's figures.
    #[serde(default)]
    pub overrides: Vec<OverrideConfig>,
    /// `[[programs.commission.manual_adjustments]]`: one-off amounts paid
    /// to (or taken back from) one payee on the statement of one period,
    /// with the reason and the lines they correct (a rule that was wrong
    /// when lines were paid: QA34c M4).
    #[serde(default)]
    pub manual_adjustments: Vec<ManualAdjustmentConfig>,
}

/// Length of a statement period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// Calendar months (`2026-11`).
    #[default]
    Monthly,
    /// Halves of a month (`2026-11-H1`, `2026-11-H2`).
    SemiMonthly,
    /// ISO weeks (`2026-W48`).
    Weekly,
}

/// What a rule pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A fixed `amount` per event (CPA).
    Flat,
    /// `percent` of the commission basis (CPS).
    Percent,
    /// A percentage picked from `tiers` by the partner's payable volume in
    /// the period (see `tier_mode`).
    Tiered,
}

/// How tiers apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TierMode {
    /// The tier reached by the partner's whole period volume prices every
    /// line of the rule.
    #[default]
    AllVolume,
    /// Each slice of volume is priced at its own tier's rate (lines taken in
    /// date order; a line crossing a boundary is split).
    Marginal,
}

/// One `[[programs.commission.rules]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Rule id, printed on every line it prices. Unique in the program.
    pub id: String,
    /// First day (in `timezone`) the rule is in force, e.g. `2026-01-01`.
    pub effective_from: NaiveDate,
    /// Last day the rule is in force (inclusive); none = open-ended.
    #[serde(default)]
    pub effective_to: Option<NaiveDate>,
    /// Event types it matches (`sale`, `lead`, `signup`, `install`,
    /// `other`); empty = all.
    #[serde(default)]
    pub event_types: Vec<EventType>,
    /// Partner ids it matches; with `groups` empty too = all partners.
    #[serde(default)]
    pub partners: Vec<String>,
    /// Partner groups it matches (names from `partner_groups`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// `flat`, `percent` or `tiered`.
    pub kind: RuleKind,
    /// `flat`: amount per event, in the payout currency.
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub amount: Option<Decimal>,
    /// `percent`: percentage of the basis (`"8"` = 8 %).
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub percent: Option<Decimal>,
    /// `tiered`: `all_volume` (default) or `marginal`.
    #[serde(default)]
    pub tier_mode: TierMode,
    /// `tiered`: the tiers, ascending by `from_volume`, the first from 0.
    #[serde(default)]
    pub tiers: Vec<TierConfig>,
    /// Most this rule pays one partner in one period, in the payout
    /// currency; lines beyond it are cut (and say so). None = no cap.
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub cap_per_period: Option<Decimal>,
}

/// One tier of a tiered rule.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// Period volume (program currency) from which this tier applies.
    #[serde(deserialize_with = "crate::config::decimal::string")]
    pub from_volume: Decimal,
    /// Percentage of the basis paid in this tier.
    #[serde(deserialize_with = "crate::config::decimal::string")]
    pub percent: Decimal,
}

/// One `[[programs.commission.bonuses]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BonusConfig {
    /// Bonus id, printed on the bonus line.
    pub id: String,
    /// First day the bonus is in force (it applies to a period when in force
    /// on the period's last day).
    pub effective_from: NaiveDate,
    /// Last day in force (inclusive); none = open-ended.
    #[serde(default)]
    pub effective_to: Option<NaiveDate>,
    /// Partner ids it applies to; with `groups` empty too = all partners.
    #[serde(default)]
    pub partners: Vec<String>,
    /// Partner groups it applies to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Period volume (program currency) a partner must reach.
    #[serde(deserialize_with = "crate::config::decimal::string")]
    pub threshold_volume: Decimal,
    /// Fixed bonus in the payout currency (exactly one of `amount`,
    /// `percent`).
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub amount: Option<Decimal>,
    /// Bonus as a percentage of the partner's whole period volume, converted
    /// at the FX rate of the period's last day.
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub percent: Option<Decimal>,
}

/// One `[[programs.commission.overrides]]` entry: for `partner`, the rule
/// `rule` pays these figures instead of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    /// Override id, printed on the lines it prices.
    pub id: String,
    /// The partner id it applies to.
    pub partner: String,
    /// The rule id it overrides.
    pub rule: String,
    /// First day in force; none = whenever the rule is.
    #[serde(default)]
    pub effective_from: Option<NaiveDate>,
    /// Last day in force (inclusive); none = open-ended.
    #[serde(default)]
    pub effective_to: Option<NaiveDate>,
    /// Replaces the rule's `amount` (flat rules).
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub amount: Option<Decimal>,
    /// Replaces the rule's `percent` (percent rules).
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub percent: Option<Decimal>,
    /// Replaces the rule's `tiers` (tiered rules).
    #[serde(default)]
    pub tiers: Option<Vec<TierConfig>>,
    /// Replaces the rule's `cap_per_period`.
    #[serde(default, deserialize_with = "crate::config::decimal::string_option")]
    pub cap_per_period: Option<Decimal>,
}

/// One `[[programs.commission.manual_adjustments]]` entry: `amount` paid
/// to `partner` on its statement of `period`, once, with `reason` (and the
/// statement lines it corrects) printed beside it. What Reckon cannot
/// compute itself: a rule that was wrong when lines were paid reprices
/// nothing already paid (paid lines keep their terms).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualAdjustmentConfig {
    /// Unique within the program, never reused: finalising records it with
    /// the period's terms.
    pub id: String,
    /// The payee, as statements name it: `network:partner id`.
    pub partner: String,
    /// The period (of the program's period kind) whose statement pays it.
    pub period: String,
    /// In the payout currency, to its minor unit; negative takes money back.
    #[serde(deserialize_with = "crate::config::decimal::string")]
    pub amount: Decimal,
    /// Why, in words the partner reads on the statement.
    pub reason: String,
    /// The statement lines it corrects, `<program>/<period>/<payee>#<line>`
    /// (as an adjustment's `refers_to` names them), or whole statements.
    #[serde(default)]
    pub refers_to: Vec<String>,
}

impl ManualAdjustmentConfig {
    /// Its period, when it names one of `kind` (validated by
    /// [`CommissionConfig::validate`]).
    pub fn period_of(&self, kind: PeriodKind) -> Option<super::period::Period> {
        super::period::Period::parse(kind, &self.period).ok()
    }
}

/// A config mistake, naming the program, the entry and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[programs.commission] of program `{program}`, {entry}: {message}")]
pub struct CommissionConfigError {
    /// Program id.
    pub program: String,
    /// The entry, e.g. ``rules[2] (id `cps`)``.
    pub entry: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl CommissionConfig {
    /// The minimum payout (0 when not set).
    pub fn minimum(&self) -> Decimal {
        self.minimum_payout.unwrap_or(Decimal::ZERO)
    }

    /// The manual adjustments the statements of `period` pay, in config
    /// order.
    pub fn manual_adjustments_of(
        &self,
        period: &super::period::Period,
    ) -> impl Iterator<Item = &ManualAdjustmentConfig> + '_ {
        let period = *period;
        (self.manual_adjustments.iter()).filter(move |m| m.period_of(self.period) == Some(period))
    }

    /// The configured timezone (validated by [`CommissionConfig::validate`]).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone_name().parse().unwrap_or(chrono_tz::UTC)
    }

    /// The timezone's name (`UTC` when not set).
    pub fn timezone_name(&self) -> &str {
        self.timezone.as_deref().unwrap_or("UTC")
    }

    /// Fills an unset `timezone` with the daemon's reporting timezone.
    pub fn with_default_timezone(mut self, tz: chrono_tz::Tz) -> CommissionConfig {
        if self.timezone.is_none() {
            self.timezone = Some(tz.name().to_string());
        }
        self
    }

    /// Checks everything serde cannot: currencies, timezone, rule shapes,
    /// unique ids, known groups and rules, tier order, date ranges. The
    /// first problem; [`CommissionConfig::problems`] lists them all.
    pub fn validate(&self, program: &str) -> Result<(), CommissionConfigError> {
        match self.problems(program).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every problem [`CommissionConfig::validate`] checks for, in config
    /// order, so one `reckon check` names them all.
    pub fn problems(&self, program: &str) -> Vec<CommissionConfigError> {
        let mut out = Vec::new();
        let mut err = |entry: &str, message: String| {
            out.push(CommissionConfigError {
                program: program.into(),
                entry: entry.to_string(),
                message,
            })
        };
        if let Some(m) = crate::config::currency_problem(&self.payout_currency) {
            err("payout_currency", m);
        }
        // The connectors' timezone message, with its did-you-mean.
        if let Err(e) = self.timezone_name().parse::<crate::config::Timezone>() {
            err("timezone", e);
        }
        // A threshold finer than the payout currency cannot be paid nor
        // shown: it was rounded silently (finance QA16 L4: 300.5 JPY).
        // Checked against the code the currency's error above suggests
        // (`jpy` → JPY), so one round of `config check` reports both
        // (QA21 B-F5).
        let currency = self.payout_currency.trim().to_ascii_uppercase();
        let finer = |amount: Decimal| {
            let digits = plugin_api::currency::minor_unit_digits(&currency)?;
            (amount.normalize().scale() > digits).then(|| {
                format!(
                    "{amount} is finer than {currency}'s minor unit ({digits} decimals); write e.g. \"{}\"",
                    amount.round_dp_with_strategy(
                        digits,
                        rust_decimal::RoundingStrategy::MidpointAwayFromZero
                    )
                )
            })
        };
        // A payout-currency amount: not negative, no finer than the
        // currency (QA18 R3: every such amount, not only the thresholds).
        let amount_problem = |name: &str, v: Option<Decimal>| match v {
            Some(v) if v < Decimal::ZERO => Some(format!("{name} must be zero or more")),
            // Summed per line: a 28-digit amount overflowed (QA20 R20-1).
            Some(v) if v >= plugin_api::validate::MAX_AMOUNT => Some(format!(
                "{name} {v} is not below {}, the bound on amounts Reckon handles",
                plugin_api::validate::MAX_AMOUNT
            )),
            Some(v) => finer(v).map(|m| format!("{name} {m}")),
            None => None,
        };
        if self.minimum() < Decimal::ZERO {
            err("minimum_payout", "must be zero or more".into());
        } else if let Some(m) = amount_problem("minimum_payout", self.minimum_payout) {
            // Bounded like every payout amount (QA24 L1: a 28-digit
            // minimum was accepted and carried every statement out).
            err(
                "minimum_payout",
                m.trim_start_matches("minimum_payout ").into(),
            );
        }
        if let Some(expr) = &self.draft_schedule {
            // The connectors' cron syntax (5, 6 or 7 fields).
            if let Err(e) = expr.parse::<crate::config::CronSchedule>() {
                err("draft_schedule", e);
            }
        }
        let group_problems = |groups: &[String]| -> Vec<String> {
            groups
                .iter()
                .filter(|g| !self.partner_groups.contains_key(*g))
                .map(|g| format!("group `{g}` is not defined in partner_groups"))
                .collect()
        };
        // QA29-D L6: an entry that can match no partner (empty, or a
        // `network:` with no id) was accepted, and the rule it limits
        // silently applied to nobody.
        let partner_problems = |what: &str, entries: &[String]| -> Vec<String> {
            entries
                .iter()
                .filter(|e| {
                    let e = e.trim();
                    e.is_empty()
                        || e
                            .split_once(':')
                            .is_some_and(|(network, id)| network.is_empty() || id.is_empty())
                })
                .map(|e| {
                    format!("{what} entry {e:?} names no partner: write `network:partner id` or a partner id")
                })
                .collect()
        };
        for (name, entries) in &self.partner_groups {
            for m in partner_problems("partner", entries) {
                err(&format!("partner_groups.{name}"), m);
            }
        }
        let date_problem = |from: Option<NaiveDate>, to: Option<NaiveDate>| match (from, to) {
            (Some(f), Some(t)) if t < f => {
                Some(format!("effective_to {t} is before effective_from {f}"))
            }
            _ => None,
        };
        let percent_problem = |p: Decimal| {
            (p < Decimal::ZERO || p > Decimal::ONE_HUNDRED)
                .then(|| format!("percent {p} must be between 0 and 100"))
        };
        let mut ids = std::collections::BTreeSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let entry = format!("rules[{i}] (id `{}`)", r.id);
            let mut msgs = Vec::new();
            if r.id.trim().is_empty() {
                msgs.push("rule id is empty; give each rule a unique id".to_string());
            } else if !ids.insert(r.id.clone()) {
                msgs.push(format!(
                    "rule id `{}` is used twice; rule ids must be unique",
                    r.id
                ));
            }
            msgs.extend(group_problems(&r.groups));
            msgs.extend(partner_problems("partners", &r.partners));
            msgs.extend(date_problem(Some(r.effective_from), r.effective_to));
            match r.kind {
                RuleKind::Flat => match r.amount {
                    None => msgs
                        .push("kind = \"flat\" needs `amount` (per event, payout currency)".into()),
                    a => msgs.extend(amount_problem("amount", a)),
                },
                RuleKind::Percent => match r.percent {
                    None => {
                        msgs.push("kind = \"percent\" needs `percent` (e.g. \"8\" for 8 %)".into())
                    }
                    Some(p) => msgs.extend(percent_problem(p)),
                },
                RuleKind::Tiered => msgs.extend(check_tiers(&r.tiers).err()),
            }
            let stray = match r.kind {
                RuleKind::Flat => r.percent.is_some() || !r.tiers.is_empty(),
                RuleKind::Percent => r.amount.is_some() || !r.tiers.is_empty(),
                RuleKind::Tiered => r.amount.is_some() || r.percent.is_some(),
            };
            if stray {
                msgs.push("has keys of another kind: flat uses `amount`, percent uses `percent`, tiered uses `tiers`".into());
            }
            msgs.extend(amount_problem("cap_per_period", r.cap_per_period));
            for m in msgs {
                err(&entry, m);
            }
        }
        let mut bonus_ids = std::collections::BTreeSet::new();
        for (i, b) in self.bonuses.iter().enumerate() {
            let entry = format!("bonuses[{i}] (id `{}`)", b.id);
            let mut msgs = Vec::new();
            if b.id.trim().is_empty() {
                msgs.push("bonus id is empty; give each bonus a unique id".to_string());
            } else if !bonus_ids.insert(b.id.clone()) {
                msgs.push(format!(
                    "bonus id `{}` is used twice; bonus ids must be unique",
                    b.id
                ));
            }
            msgs.extend(group_problems(&b.groups));
            msgs.extend(partner_problems("partners", &b.partners));
            msgs.extend(date_problem(Some(b.effective_from), b.effective_to));
            // A volume in the program's currency (QA24 L2: "-5" passed).
            if b.threshold_volume < Decimal::ZERO {
                msgs.push(format!(
                    "threshold_volume {} must be zero or more (the period volume at which the bonus is earned)",
                    b.threshold_volume
                ));
            } else if b.threshold_volume >= plugin_api::validate::MAX_AMOUNT {
                msgs.push(format!(
                    "threshold_volume {} is not below {}, the bound on amounts Reckon handles",
                    b.threshold_volume,
                    plugin_api::validate::MAX_AMOUNT
                ));
            }
            match (b.amount, b.percent) {
                (Some(a), None) if a >= Decimal::ZERO => {
                    msgs.extend(amount_problem("amount", Some(a)));
                }
                (None, Some(p)) => msgs.extend(percent_problem(p)),
                _ => msgs.push(
                    "needs exactly one of `amount` (>= 0, payout currency) or `percent`".into(),
                ),
            }
            for m in msgs {
                err(&entry, m);
            }
        }
        let mut override_ids = std::collections::BTreeSet::new();
        for (i, o) in self.overrides.iter().enumerate() {
            let entry = format!("overrides[{i}] (id `{}`)", o.id);
            let mut msgs = Vec::new();
            if o.id.trim().is_empty() {
                msgs.push("override id is empty; give each override a unique id".to_string());
            } else if !override_ids.insert(o.id.clone()) {
                msgs.push(format!(
                    "override id `{}` is used twice; override ids must be unique",
                    o.id
                ));
            }
            msgs.extend(date_problem(o.effective_from, o.effective_to));
            msgs.extend(partner_problems(
                "partner",
                std::slice::from_ref(&o.partner),
            ));
            match self.rules.iter().find(|r| r.id == o.rule) {
                None => msgs.push(format!("rule `{}` is not defined in rules", o.rule)),
                Some(rule) => {
                    let fits = match rule.kind {
                        RuleKind::Flat => o.percent.is_none() && o.tiers.is_none(),
                        RuleKind::Percent => o.amount.is_none() && o.tiers.is_none(),
                        RuleKind::Tiered => o.amount.is_none() && o.percent.is_none(),
                    };
                    if !fits {
                        msgs.push(format!(
                            "rule `{}` is kind = \"{}\"; override only its own figures (flat: amount, percent: percent, tiered: tiers) or cap_per_period",
                            rule.id,
                            match rule.kind {
                                RuleKind::Flat => "flat",
                                RuleKind::Percent => "percent",
                                RuleKind::Tiered => "tiered",
                            }
                        ));
                    }
                }
            }
            msgs.extend(o.percent.and_then(percent_problem));
            msgs.extend(amount_problem("amount", o.amount));
            msgs.extend(amount_problem("cap_per_period", o.cap_per_period));
            if let Some(t) = &o.tiers {
                msgs.extend(check_tiers(t).err());
            }
            for m in msgs {
                err(&entry, m);
            }
        }
        // Each problem at its key (`manual_adjustments[0].amount`), so the
        // error names the line to fix.
        let mut manual_ids = std::collections::BTreeSet::new();
        for (i, m) in self.manual_adjustments.iter().enumerate() {
            let mut msgs: Vec<(&str, String)> = Vec::new();
            if m.id.trim().is_empty() {
                msgs.push((
                    "id",
                    "manual adjustment id is empty; give each one a unique id, never reused".into(),
                ));
            } else if !manual_ids.insert(m.id.clone()) {
                msgs.push((
                    "id",
                    format!(
                        "manual adjustment id `{}` is used twice; ids must be unique (and never reused)",
                        m.id
                    ),
                ));
            }
            // The payee key statements use: a network's partner, never a
            // bare id (it would name one partner on every network).
            match super::model::split_payee(&m.partner) {
                (Some(_), id) if !id.is_empty() && m.partner.trim() == m.partner => {}
                _ => msgs.push((
                    "partner",
                    format!(
                        "{:?} is not a payee: write `network:partner id` as statements name it, e.g. \"impact:1201\"",
                        m.partner
                    ),
                )),
            }
            if let Err(e) = super::period::Period::parse(self.period, &m.period) {
                msgs.push(("period", e.to_string()));
            }
            if m.amount.is_zero() {
                msgs.push((
                    "amount",
                    "amount is 0; write the amount to pay (negative to take money back)".into(),
                ));
            } else if m.amount.abs() >= plugin_api::validate::MAX_AMOUNT {
                msgs.push((
                    "amount",
                    format!(
                        "amount {} is not below {} in size, the bound on amounts Reckon handles",
                        m.amount,
                        plugin_api::validate::MAX_AMOUNT
                    ),
                ));
            } else if let Some(f) = finer(m.amount) {
                msgs.push(("amount", format!("amount {f}")));
            }
            if m.reason.trim().is_empty() {
                msgs.push((
                    "reason",
                    "reason is empty; say why, in words the partner reads on the statement".into(),
                ));
            }
            // QA38c C-M2: what the config alone tells of a reference (its
            // form, its program, its period); whether the statement and
            // line exist is checked against the store when its period's
            // statements are generated or finalised.
            let own = m.period_of(self.period);
            for (j, r) in m.refers_to.iter().enumerate() {
                let problem = match Reference::parse(program, r) {
                    Err(e) => Some(e),
                    Ok(rf) => own.and_then(|p| rf.not_before(&p)),
                };
                if let Some(e) = problem {
                    msgs.push(("refers_to", format!("refers_to[{j}] {r:?} {e}")));
                }
            }
            for (key, m2) in msgs {
                err(
                    &format!("manual_adjustments[{i}].{key} (id `{}`)", m.id),
                    m2,
                );
            }
        }
        out
    }
}

/// A manual adjustment's `refers_to` entry, read: the statement it names,
/// `<program>/<period>/<payee>`, and the line (`#<n>` after the last `#`:
/// a partner id may hold `#`), when it names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'r> {
    /// The statement's period, of whichever kind its name is (a period
    /// finalised before the program changed its `period` kind keeps its
    /// name).
    pub period: super::period::Period,
    /// The payee, as the statement id names it.
    pub payee: &'r str,
    /// The line, when it names one (1 or more).
    pub line: Option<u32>,
}

impl<'r> Reference<'r> {
    /// `r`, an entry of a manual adjustment of `program`; or what is wrong
    /// with it, to follow ``refers_to[0] "…" ``. A reference names a
    /// statement of the adjustment's own program (QA38c C-M2), and no
    /// control character (no id holds one, so a newline separates the
    /// references in the statement CSV: C-L1).
    pub fn parse(program: &str, r: &'r str) -> Result<Reference<'r>, String> {
        let form = format!(
            "write `<program>/<period>/<network>:<partner>#<line>` as an adjustment's refers_to does (or a statement id without `#<line>`), e.g. \"{program}/2026-10/impact:1201#3\""
        );
        if r.chars().any(char::is_control) {
            return Err(format!(
                "holds a control character, which no statement id does: {form}"
            ));
        }
        let no_line = || format!("names no statement line: {form}");
        let (id, line) = match r.rsplit_once('#') {
            Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                match n.parse::<u32>() {
                    Ok(n) if n > 0 => (id, Some(n)),
                    _ => return Err(no_line()),
                }
            }
            Some(_) => return Err(no_line()),
            None => (r, None),
        };
        let Some(rest) = id
            .strip_prefix(program)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            let parts: Vec<&str> = id.splitn(3, '/').collect();
            return Err(match parts.as_slice() {
                [other, period, payee]
                    if [other, period, payee].iter().all(|p| !p.trim().is_empty()) =>
                {
                    format!(
                        "names program `{other}`, not `{program}`: a manual adjustment corrects statements of its own program (`{program}/<period>/<network>:<partner>#<line>`); one for another program's statement goes in that program's manual_adjustments"
                    )
                }
                _ => no_line(),
            });
        };
        let (period, payee) = match rest.split_once('/') {
            Some((period, payee)) if !period.is_empty() && !payee.trim().is_empty() => {
                (period, payee)
            }
            _ => return Err(no_line()),
        };
        let period = super::period::Period::of_any_kind(period).ok_or_else(|| {
            format!(
                "names period `{period}`, which is no period: write it as statement ids do, YYYY-MM (monthly), YYYY-MM-H1 or YYYY-MM-H2 (semi-monthly) or YYYY-Www (weekly)"
            )
        })?;
        Ok(Reference {
            period,
            payee,
            line,
        })
    }

    /// Why the reference cannot name a line already issued when the
    /// statement of `own` (the adjustment's period) pays it: a period that
    /// starts after `own`, or `own` itself (its lines are not issued
    /// before it is, and a draft renumbers them). A period of another kind
    /// starting the same day passes: after a change of `period` kind it may
    /// be finalised first.
    pub fn not_before(&self, own: &super::period::Period) -> Option<String> {
        let q = self.period;
        let which = if q == *own {
            format!("names period {q}, the adjustment's own period")
        } else if q.start > own.start {
            format!("names period {q}, after the adjustment's period {own}")
        } else {
            return None;
        };
        Some(format!(
            "{which}: a manual adjustment corrects lines of statements finalised before the one that pays it; name a line of an earlier period, or give the adjustment a later `period`"
        ))
    }
}

fn check_tiers(tiers: &[TierConfig]) -> Result<(), String> {
    let Some(first) = tiers.first() else {
        return Err(
            "kind = \"tiered\" needs `tiers = [{ from_volume = \"0\", percent = \"5\" }, ...]`"
                .into(),
        );
    };
    if !first.from_volume.is_zero() {
        return Err("the first tier must start at from_volume = \"0\"".into());
    }
    for w in tiers.windows(2) {
        if w[1].from_volume <= w[0].from_volume {
            return Err(format!(
                "tiers must ascend by from_volume ({} then {})",
                w[0].from_volume, w[1].from_volume
            ));
        }
    }
    for t in tiers {
        if t.percent < Decimal::ZERO || t.percent > Decimal::ONE_HUNDRED {
            return Err(format!(
                "tier percent {} must be between 0 and 100",
                t.percent
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `refers_to` problems of a monthly program `jp` whose one manual
    /// adjustment is paid on `period` and refers to `refs`.
    fn refers_to_problems(period: &str, refs: &[&str]) -> Vec<String> {
        let refs: Vec<String> = refs.iter().map(|r| format!("{r:?}")).collect();
        let c: CommissionConfig = toml::from_str(&format!(
            "payout_currency = \"JPY\"\n[[manual_adjustments]]\nid = \"fix\"\npartner = \"pb_jp:+44 20\"\nperiod = \"{period}\"\namount = \"5\"\nreason = \"two refs\"\nrefers_to = [{}]\n",
            refs.join(", ")
        ))
        .unwrap();
        c.problems("jp")
            .into_iter()
            .map(|e| {
                assert_eq!(e.entry, "manual_adjustments[0].refers_to (id `fix`)");
                e.message
            })
            .collect()
    }

    /// QA38c C-M2: another program, a later period, the adjustment's own
    /// period and a name that is no period are config errors at
    /// `refers_to`, naming the entry; an earlier period of another kind
    /// passes (a period finalised before a change of `period` kind keeps
    /// its name), as do a partner id holding a space, `#` or `/`.
    #[test]
    fn a_reference_names_an_earlier_statement_of_its_own_program() {
        assert_eq!(
            refers_to_problems(
                "2026-12",
                &[
                    "jp/2026-10/pb_jp:+44 20#1",
                    "jp/2026-11/pb_jp:+44 20",
                    "jp/2026-W40/pb_jp:a#b/c#12",
                    "jp/2026-11-H2/pb_jp:x#1",
                ]
            ),
            Vec::<String>::new()
        );
        let problems = refers_to_problems(
            "2026-12",
            &[
                "zz/2031-01/x:y#1",
                "jp/2031-01/pb_jp:+44 20#1",
                "jp/2026-12/pb_jp:+44 20#1",
                "jp/2026-13/pb_jp:+44 20#1",
                "jp/2026-10/pb_jp:+44 20#0",
                "jp/2026-10/pb_jp:a#b",
                "jp/2026-10/pb_jp:a\nb#1",
                "line 3",
            ],
        );
        let want = [
            "refers_to[0] \"zz/2031-01/x:y#1\" names program `zz`, not `jp`: a manual adjustment corrects statements of its own program (`jp/<period>/<network>:<partner>#<line>`)",
            "refers_to[1] \"jp/2031-01/pb_jp:+44 20#1\" names period 2031-01, after the adjustment's period 2026-12: a manual adjustment corrects lines of statements finalised before the one that pays it",
            "refers_to[2] \"jp/2026-12/pb_jp:+44 20#1\" names period 2026-12, the adjustment's own period:",
            "refers_to[3] \"jp/2026-13/pb_jp:+44 20#1\" names period `2026-13`, which is no period: write it as statement ids do, YYYY-MM (monthly)",
            "refers_to[4] \"jp/2026-10/pb_jp:+44 20#0\" names no statement line: write `<program>/<period>/<network>:<partner>#<line>`",
            "refers_to[5] \"jp/2026-10/pb_jp:a#b\" names no statement line:",
            "refers_to[6] \"jp/2026-10/pb_jp:a\\nb#1\" holds a control character, which no statement id does",
            "refers_to[7] \"line 3\" names no statement line:",
        ];
        assert_eq!(problems.len(), want.len(), "{problems:#?}");
        for (got, want) in problems.iter().zip(want) {
            assert!(
                got.starts_with(want),
                "{got}\n  does not start with\n{want}"
            );
        }
    }

    /// The parts of a reference, the line after the last `#`.
    #[test]
    fn a_reference_reads_its_period_payee_and_line() {
        let r = Reference::parse("jp", "jp/2026-W40/pb_jp:a#b/c#12").unwrap();
        assert_eq!(
            (r.period.to_string(), r.payee, r.line),
            ("2026-W40".to_string(), "pb_jp:a#b/c", Some(12))
        );
        let r = Reference::parse("jp", "jp/2026-10/pb_jp:+44 20").unwrap();
        assert_eq!((r.payee, r.line), ("pb_jp:+44 20", None));
    }
}
