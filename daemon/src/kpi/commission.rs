//! Reconciled commission cost from the programs' commission rules: the
//! decision's basis × the rule in force (payout's `rules::resolve`).
//!
//! An estimate per claim, for KPIs only (statements remain the record of
//! what is paid): flat and percent rules are applied with the partner's
//! override; tiered rules depend on the partner's period volume and caps and
//! bonuses on the whole period, so for those (and for programs without
//! rules) the engine falls back to the network's commission and says so.
use plugin_api::Money;
use rust_decimal::Decimal;

use crate::payout::rules::{resolve, round_to_minor, Pricing};
use crate::reconcile::config::ProgramConfig;
use crate::reconcile::model::Decision;

/// A commission function for [`super::KpiContext::commission`] over the
/// configured programs.
pub fn from_rules(programs: &[ProgramConfig]) -> impl Fn(&Decision) -> Option<Money> + Sync + '_ {
    move |d: &Decision| {
        let program = programs.iter().find(|p| p.id == d.program)?;
        let cfg = program.commission.as_ref()?;
        let date = d.occurred_at.with_timezone(&cfg.tz()).date_naive();
        let resolved = resolve(cfg, &d.claim.source, &d.partner_id, d.event_type, date)?;
        match resolved.pricing {
            Pricing::Flat(amount) => Some(Money::new(amount, cfg.payout_currency.as_str())),
            // Rounded once to the minor unit, as a statement line is
            // (QA28-C F2: a CPA from unrounded figures did not follow
            // from the row's commission); the statement's own figure
            // when the payout currency is the basis's.
            Pricing::Percent(pct) => {
                let basis = d.basis.as_ref()?;
                let exact = basis.amount.checked_mul(pct)? / Decimal::ONE_HUNDRED;
                Some(Money::new(
                    round_to_minor(exact, &basis.currency),
                    basis.currency.as_str(),
                ))
            }
            Pricing::Tiered(..) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::{Outcome, RecordRef};
    use plugin_api::EventType;

    fn program(rules: &str) -> ProgramConfig {
        toml::from_str(&format!(
            r#"
            id = "p"
            currency = "USD"
            claims = ["impact"]
            orders = ["shop"]
            [commission]
            payout_currency = "USD"
            period = "monthly"
            timezone = "UTC"
            {rules}
            "#
        ))
        .expect("program config")
    }

    fn decision(partner: &str, basis: &str) -> Decision {
        Decision {
            program: "p".into(),
            claim: RecordRef {
                source: "impact".into(),
                id: "c1".into(),
                revision: 1,
            },
            partner_id: partner.into(),
            partner_name: None,
            event_type: EventType::Sale,
            occurred_at: "2026-11-02T10:00:00Z".parse().expect("time"),
            order: None,
            matched_by: None,
            outcome: Outcome::Matched,
            payable: true,
            lock_at: None,
            basis: Some(Money::new(basis.parse().expect("dec"), "USD")),
            claimed_amount: None,
            order_amount: None,
            refunded_amount: None,
            network_commission: None,
            fx_rate: None,
            winner: None,
            reason: String::new(),
            decided_at: "2026-11-03T00:00:00Z".parse().expect("time"),
            order_fx_rate: None,
            inputs: Default::default(),
        }
    }

    #[test]
    fn percent_flat_and_tiered_rules() {
        let programs = vec![program(
            r#"
            [[commission.rules]]
            id = "vip"
            effective_from = "2020-01-01"
            kind = "flat"
            amount = "7"
            partners = ["vip-1"]
            [[commission.rules]]
            id = "cps"
            effective_from = "2020-01-01"
            kind = "percent"
            percent = "10"
            "#,
        )];
        let f = from_rules(&programs);
        assert_eq!(
            f(&decision("p-1", "123.40")),
            Some(Money::new("12.34".parse().expect("dec"), "USD"))
        );
        // Rounded once to the cent, as the statement line is (QA28-C F2:
        // 3.101 made a CPA of 3.1005 beside a printed 6.20 for two).
        assert_eq!(
            f(&decision("p-1", "31.01")),
            Some(Money::new("3.10".parse().expect("dec"), "USD"))
        );
        assert_eq!(
            f(&decision("p-1", "31.05")),
            Some(Money::new("3.11".parse().expect("dec"), "USD"))
        );
        assert_eq!(
            f(&decision("vip-1", "123.40")),
            Some(Money::new(Decimal::from(7), "USD"))
        );
        let tiered = vec![program(
            r#"
            [[commission.rules]]
            id = "tiers"
            effective_from = "2020-01-01"
            kind = "tiered"
            tiers = [{ from_volume = "0", percent = "5" }]
            "#,
        )];
        assert_eq!(from_rules(&tiered)(&decision("p-1", "100")), None);
        let mut other = decision("p-1", "100");
        other.program = "unknown".into();
        assert_eq!(f(&other), None);
    }
}
