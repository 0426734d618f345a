//! The terms a finalised period was paid under (QA33d M6): the program's
//! payout config (rules, overrides, bonuses, minimum payout, period kind,
//! currencies, timezone, partner groups), its matching settings and the
//! `[fx]` settings with a fingerprint of the rates table, as they were when
//! the period was finalised, recorded with the period in the statement
//! book (`terms␟<program>␟<period>`, [`PeriodTerms`]) together with the
//! rule, override and bonus ids its statements used.
//!
//! Read by `reckon statements show --terms` and by [`term_changes`], which
//! `reckon config check` and the daemon's reload use to warn when a rule,
//! override or bonus id a finalised period used now has other terms (an
//! edit in place: the same id, 10 % then 11 %). A warning, never a
//! refusal: paid lines keep the terms they were paid on (the ledger's
//! `PaidTerms`), and a rate change is a business decision; what the
//! operator needs is to see it.
//!
//! What it is not: a way to recompute a finalised period (its statements'
//! canonical JSON is the record of what was paid), and nothing here is in
//! a statement file. Periods finalised before terms were recorded have no
//! record; they are listed as such, never an error.
use super::book::{self, StatementBook};
use super::config::{
    BonusConfig, CommissionConfig, ManualAdjustmentConfig, OverrideConfig, PeriodKind, RuleConfig,
};
use super::lifecycle::{period_records, PayoutError};
use super::model::{Statement, Status};
use crate::reconcile::config::ProgramConfig;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The terms in force for a program, as a finalise records them: built
/// from the config by [`TermsInForce::of`].
#[derive(Debug, Clone, PartialEq)]
pub struct TermsInForce {
    /// `[programs.commission]`, see [`commission_terms`].
    pub commission: Value,
    /// The program's reconciliation settings, see [`program_terms`].
    pub program: Value,
    /// `[fx]` and the rates table's fingerprint, see [`fx_terms`].
    pub fx: Value,
}

impl TermsInForce {
    /// The terms of `program` (whose commission, with its timezone
    /// defaulted, is `commission`) under the `[fx]` section `fx` and its
    /// loaded table `table`.
    pub fn of(
        program: &ProgramConfig,
        commission: &CommissionConfig,
        fx: Option<&crate::fx::FxConfig>,
        table: &crate::fx::FxTable,
    ) -> TermsInForce {
        TermsInForce {
            commission: commission_terms(commission),
            program: program_terms(program),
            fx: fx_terms(fx, table),
        }
    }
}

/// The rule, override and bonus ids a period's statements used: each
/// line's rule and override, each bonus line's and bonus adjustment's
/// bonus, and each manual adjustment paid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedTerms {
    /// Rule ids of lines.
    #[serde(default)]
    pub rules: BTreeSet<String>,
    /// Override ids of lines.
    #[serde(default)]
    pub overrides: BTreeSet<String>,
    /// Bonus ids of bonus lines and bonus adjustments.
    #[serde(default)]
    pub bonuses: BTreeSet<String>,
    /// Ids of the manual adjustments paid (QA34c M4).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub manual_adjustments: BTreeSet<String>,
}

impl UsedTerms {
    /// Adds what statement `s` used.
    pub fn add(&mut self, s: &Statement) {
        for l in &s.lines {
            self.rules.insert(l.rule_id.clone());
            if let Some(o) = &l.override_id {
                self.overrides.insert(o.clone());
            }
        }
        for b in &s.bonuses {
            self.bonuses.insert(b.bonus_id.clone());
        }
        for b in &s.bonus_adjustments {
            self.bonuses.insert(b.bonus_id.clone());
        }
        for m in &s.manual_adjustments {
            self.manual_adjustments.insert(m.id.clone());
        }
    }
}

/// What the book records of a finalised period's terms
/// (`terms␟<program>␟<period>`, written in the period's batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodTerms {
    /// [`book::BOOK_VERSION`].
    pub book_version: u32,
    /// Program id.
    pub program: String,
    /// Period name.
    pub period: String,
    /// When the period was finalised (the period record's `recorded_at`).
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// `[programs.commission]` then ([`commission_terms`]).
    pub commission: Value,
    /// The program's reconciliation settings then ([`program_terms`]).
    pub program_settings: Value,
    /// `[fx]` then, with the rates table's fingerprint ([`fx_terms`]).
    pub fx: Value,
    /// The ids the period's statements used.
    pub used: UsedTerms,
}

/// The book key of a period's terms.
pub fn terms_key(program: &str, period: &str) -> String {
    book::key(&["terms", program, period])
}

/// The recorded terms of `period`, if any (none for a period finalised
/// before terms were recorded, and for drafts).
pub fn load_terms(
    b: &dyn StatementBook,
    program: &str,
    period: &str,
) -> Result<Option<PeriodTerms>, PayoutError> {
    let k = terms_key(program, period);
    match b.get(&k)? {
        None => Ok(None),
        Some(v) => Ok(Some(book::decode(&k, v)?)),
    }
}

fn period_kind(k: PeriodKind) -> &'static str {
    match k {
        PeriodKind::Monthly => "monthly",
        PeriodKind::SemiMonthly => "semi_monthly",
        PeriodKind::Weekly => "weekly",
    }
}

fn decimal(d: Option<rust_decimal::Decimal>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.normalize().to_string()))
}

fn tiers(t: &[super::config::TierConfig]) -> Value {
    Value::Array(
        t.iter()
            .map(|t| {
                json!({
                    "from_volume": t.from_volume.normalize().to_string(),
                    "percent": t.percent.normalize().to_string(),
                })
            })
            .collect(),
    )
}

fn rule_terms(r: &RuleConfig) -> Value {
    json!({
        "id": r.id,
        "effective_from": r.effective_from,
        "effective_to": r.effective_to,
        "event_types": r.event_types,
        "partners": r.partners,
        "groups": r.groups,
        "kind": r.kind,
        "amount": decimal(r.amount),
        "percent": decimal(r.percent),
        "tier_mode": r.tier_mode,
        "tiers": tiers(&r.tiers),
        "cap_per_period": decimal(r.cap_per_period),
    })
}

fn override_terms(o: &OverrideConfig) -> Value {
    json!({
        "id": o.id,
        "partner": o.partner,
        "rule": o.rule,
        "effective_from": o.effective_from,
        "effective_to": o.effective_to,
        "amount": decimal(o.amount),
        "percent": decimal(o.percent),
        "tiers": o.tiers.as_deref().map(tiers),
        "cap_per_period": decimal(o.cap_per_period),
    })
}

fn bonus_terms(b: &BonusConfig) -> Value {
    json!({
        "id": b.id,
        "effective_from": b.effective_from,
        "effective_to": b.effective_to,
        "partners": b.partners,
        "groups": b.groups,
        "threshold_volume": b.threshold_volume.normalize().to_string(),
        "amount": decimal(b.amount),
        "percent": decimal(b.percent),
    })
}

fn manual_terms(m: &ManualAdjustmentConfig) -> Value {
    json!({
        "id": m.id,
        "partner": m.partner,
        "period": m.period,
        "amount": m.amount.normalize().to_string(),
        "reason": m.reason,
        "refers_to": m.refers_to,
    })
}

/// `[programs.commission]` as JSON: every setting that prices or pays
/// (not `draft_schedule`, which only says when drafts are written).
/// Decimals are normalised strings (`10`, not `10.0`), so a rewrite of the
/// same figure is no change.
pub fn commission_terms(c: &CommissionConfig) -> Value {
    json!({
        "payout_currency": c.payout_currency,
        "period": period_kind(c.period),
        "timezone": c.timezone_name(),
        "minimum_payout": c.minimum().normalize().to_string(),
        "partner_groups": c.partner_groups,
        "rules": c.rules.iter().map(rule_terms).collect::<Vec<_>>(),
        "overrides": c.overrides.iter().map(override_terms).collect::<Vec<_>>(),
        "bonuses": c.bonuses.iter().map(bonus_terms).collect::<Vec<_>>(),
        "manual_adjustments": c.manual_adjustments.iter().map(manual_terms).collect::<Vec<_>>(),
    })
}

/// The program's reconciliation settings: what decides a claim's outcome
/// and basis.
pub fn program_terms(p: &ProgramConfig) -> Value {
    json!({
        "currency": p.currency,
        "claims": p.claims,
        "orders": p.orders,
        "return_window_days": p.return_window_days,
        "no_order_grace_days": p.no_order_grace_days,
        "attribution": p.attribution,
        "source_priority": p.source_priority,
        "match": {
            "amount_tolerance_abs": p.matching.amount_tolerance_abs.normalize().to_string(),
            "amount_tolerance_pct": p.matching.amount_tolerance_pct.normalize().to_string(),
            "fuzzy_window_hours": p.matching.fuzzy_window_hours,
            "order_window_days": p.matching.order_window_days,
            "coupon_matching": p.matching.coupon_matching,
        },
        "require_network_approval": p.require_network_approval,
    })
}

/// `[fx]` (its CSV's path, `max_age_days`, the number of inline rates) and
/// the loaded table's fingerprint ([`crate::fx::FxTable::fingerprint`]:
/// every rate, so a CSV edited in place changes it).
pub fn fx_terms(fx: Option<&crate::fx::FxConfig>, table: &crate::fx::FxTable) -> Value {
    let mut v = fx_settings(fx);
    v["rates_fingerprint"] = table.fingerprint().into();
    v
}

/// [`fx_terms`] without the rates' fingerprint (what the config alone
/// says; the table's `max_age_days` is the config's, 0 without `[fx]`).
pub fn fx_settings(fx: Option<&crate::fx::FxConfig>) -> Value {
    json!({
        "configured": fx.is_some(),
        "rates_csv": fx.and_then(|f| f.rates_csv.as_ref()).map(|p| p.display().to_string()),
        "max_age_days": fx.map_or(crate::fx::FxTable::empty().max_age_days(), |f| f.max_age_days),
        "inline_rates": fx.map_or(0, |f| f.rates.len()),
    })
}

/// Which kind of commission entry a [`TermChange`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// `[[programs.commission.rules]]`.
    Rule,
    /// `[[programs.commission.overrides]]`.
    Override,
    /// `[[programs.commission.bonuses]]`.
    Bonus,
    /// `[[programs.commission.manual_adjustments]]`.
    ManualAdjustment,
}

impl EntryKind {
    fn word(self) -> &'static str {
        match self {
            EntryKind::Rule => "rule",
            EntryKind::Override => "override",
            EntryKind::Bonus => "bonus",
            EntryKind::ManualAdjustment => "manual adjustment",
        }
    }
    fn list(self) -> &'static str {
        match self {
            EntryKind::Rule => "rules",
            EntryKind::Override => "overrides",
            EntryKind::Bonus => "bonuses",
            EntryKind::ManualAdjustment => "manual_adjustments",
        }
    }
}

/// A rule, override or bonus id that finalised periods used, whose terms
/// in the config now differ from those recorded with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermChange {
    /// Program id.
    pub program: String,
    /// Rule, override or bonus.
    pub kind: EntryKind,
    /// Its id.
    pub id: String,
    /// The finalised periods that used it under the same recorded terms.
    pub periods: Vec<String>,
    /// Those terms, described.
    pub was: String,
    /// The terms now, described; none when the id is no longer configured.
    pub now: Option<String>,
}

impl std::fmt::Display for TermChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let periods = match self.periods.as_slice() {
            [one] => format!("{one} was"),
            many => format!("{} were", many.join(", ")),
        };
        let last = self.periods.last().map(String::as_str).unwrap_or_default();
        let show = format!(
            "`reckon statements show --program {} --period {last} --terms` lists the terms then",
            self.program
        );
        let (word, id, program) = (self.kind.word(), &self.id, &self.program);
        match (&self.now, self.kind) {
            (None, _) => write!(
                f,
                "{word} `{id}` of program `{program}`: {} when {periods} finalised, no longer in the config now; lines it paid keep those terms, claims of those periods not paid yet are priced by the rules configured now; {show}",
                self.was
            ),
            (Some(now), EntryKind::ManualAdjustment) => write!(
                f,
                "{word} `{id}` of program `{program}`: {} when {periods} finalised, {now} now; a manual adjustment is paid once, on its period's statement: what was paid stays as paid, and the edit pays nothing; to pay or take back a further amount, add a manual adjustment with a new id for a period not finalised yet; {show}",
                self.was
            ),
            (Some(now), EntryKind::Bonus) => write!(
                f,
                "{word} `{id}` of program `{program}`: {} when {periods} finalised, {now} now; bonuses it credited keep those terms, a finalised statement it did not credit is judged on the terms now; {show}",
                self.was
            ),
            (Some(now), _) => write!(
                f,
                "{word} `{id}` of program `{program}`: {} when {periods} finalised, {now} now; claims of finalised periods paid from now on (late claims, claims moved to another partner) take {now}, lines already paid keep the terms they were paid on; {show}",
                self.was
            ),
        }
    }
}

/// A rule or override of the config now that no finalised period's
/// recorded terms have, in force on some days of those periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermAdded {
    /// Program id.
    pub program: String,
    /// Rule or override.
    pub kind: EntryKind,
    /// Its id.
    pub id: String,
    /// The finalised periods it is new to and in force in, in order.
    pub periods: Vec<String>,
}

impl std::fmt::Display for TermAdded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let periods = match self.periods.as_slice() {
            [one] => format!("{one}, which was"),
            many => format!("{}, which were", many.join(", ")),
        };
        write!(
            f,
            "{} `{}` of program `{}` is in force on days of {periods} finalised without it: claims of those days paid from now on (late claims, claims moved to another partner) are priced by it where it applies, lines already paid keep the terms they were paid on; if it is not meant for those days, set its `effective_from` after them",
            self.kind.word(),
            self.id,
            self.program
        )
    }
}

/// The program's matching settings or `[fx]` settings that differ from
/// those recorded with its latest finalised period (the next run re-judges
/// every claim under the settings now; claims already paid whose outcome
/// or basis changes are corrected on the next statements).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsChange {
    /// Program id.
    pub program: String,
    /// The latest finalised period with recorded terms.
    pub period: String,
    /// `matching` (the program's reconciliation settings) or `[fx]`.
    pub section: String,
    /// Each field that differs: its name (`match.amount_tolerance_abs`),
    /// its value then and now, as shown.
    pub fields: Vec<(String, String, String)>,
}

impl std::fmt::Display for SettingsChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields = (self.fields.iter())
            .map(|(k, then, now)| format!("{k} {then} then, {now} now"))
            .collect::<Vec<_>>()
            .join("; ");
        write!(
            f,
            "{} settings of program `{}` differ from those in force when {} was finalised: {fields}; the next reconciliation re-judges every claim under the settings now, and claims already paid whose outcome or basis changes are corrected by adjustments on the next statements (finalised statements do not change); `reckon statements show --program {} --period {} --terms` lists the terms then",
            self.section, self.program, self.period, self.program, self.period
        )
    }
}

/// The fields of two recorded settings values that differ (a nested object
/// such as `match` by `match.<field>`), shown as [`shown`] does; `skip`
/// names fields left out, and so is a field `then` does not hold: one
/// recorded only since a later release (`match.order_window_days`, QA43
/// C-M2), which a period finalised before it cannot tell.
fn differing_fields(then: &Value, now: &Value, skip: &[&str]) -> Vec<(String, String, String)> {
    fn flat(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v.as_object() {
            Some(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flat(&key, v, out);
                }
            }
            None => {
                out.insert(prefix.to_owned(), v.clone());
            }
        }
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flat("", then, &mut a);
    flat("", now, &mut b);
    (a.keys())
        .filter(|k| !skip.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |m: &BTreeMap<String, Value>| shown(m.get(k).unwrap_or(&Value::Null));
            (k.clone(), show(&a), show(&b))
        })
        .collect()
}

/// The `[fx]` fields compared with a finalised period's: not the rates'
/// fingerprint nor the number of inline rates, which change whenever a
/// day's rates are added (as they are meant to be).
const FX_NOT_COMPARED: [&str; 2] = ["rates_fingerprint", "inline_rates"];

/// What [`term_changes`] found for one program.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TermReview {
    /// Entries whose terms changed since a finalised period used them.
    pub changes: Vec<TermChange>,
    /// Rules and overrides added since finalised periods and in force on
    /// some of their days (QA53 L6: an override dated back into finalised
    /// months passed `config check` without a word, and priced their late
    /// claims).
    pub added: Vec<TermAdded>,
    /// Matching or `[fx]` settings that differ from those recorded with
    /// the latest finalised period.
    pub settings: Vec<SettingsChange>,
    /// Finalised periods with no recorded terms (finalised before terms
    /// were recorded, or by a caller that recorded none).
    pub unrecorded: Vec<String>,
}

/// The rules, overrides and bonuses of `commission` (the config now) whose
/// terms differ from those recorded with a finalised period of `program`
/// that used them. Cheap: one period scan and one key per finalised period.
pub fn term_changes(
    b: &dyn StatementBook,
    program: &str,
    commission: &CommissionConfig,
    settings: &CurrentSettings,
) -> Result<TermReview, PayoutError> {
    let now = commission_terms(commission);
    // The latest finalised period with recorded terms: its matching and
    // `[fx]` settings are compared with those now.
    let mut latest: Option<PeriodTerms> = None;
    let mut finalised: Vec<_> = period_records(b, program)?
        .into_iter()
        .filter(|r| r.status == Status::Finalised)
        .collect();
    finalised.sort_by_key(|r| r.period_start);
    let mut review = TermReview::default();
    // (kind, id, terms then) → periods, in the order first seen.
    let mut seen: Vec<(EntryKind, String, Value, Vec<String>)> = Vec::new();
    // Rules and overrides in force now, with their days.
    let dated: Vec<(
        EntryKind,
        &str,
        Option<chrono::NaiveDate>,
        Option<chrono::NaiveDate>,
    )> = (commission.rules.iter())
        .map(|r| {
            (
                EntryKind::Rule,
                r.id.as_str(),
                Some(r.effective_from),
                r.effective_to,
            )
        })
        .chain((commission.overrides.iter()).map(|o| {
            (
                EntryKind::Override,
                o.id.as_str(),
                o.effective_from,
                o.effective_to,
            )
        }))
        .collect();
    for rec in &finalised {
        let Some(t) = load_terms(b, program, &rec.period)? else {
            review.unrecorded.push(rec.period.clone());
            continue;
        };
        let t = &*latest.insert(t);
        if let Some(period) = super::period::Period::of_any_kind(&rec.period) {
            let last = period.last_day();
            for &(kind, id, from, to) in &dated {
                let in_force =
                    from.is_none_or(|f| f <= last) && to.is_none_or(|t| t >= period.start);
                if !in_force || entry(&t.commission, kind, id).is_some() {
                    continue;
                }
                match review
                    .added
                    .iter_mut()
                    .find(|a| a.kind == kind && a.id == id)
                {
                    Some(a) => a.periods.push(rec.period.clone()),
                    None => review.added.push(TermAdded {
                        program: program.to_owned(),
                        kind,
                        id: id.to_owned(),
                        periods: vec![rec.period.clone()],
                    }),
                }
            }
        }
        for (kind, used) in [
            (EntryKind::Rule, &t.used.rules),
            (EntryKind::Override, &t.used.overrides),
            (EntryKind::Bonus, &t.used.bonuses),
            (EntryKind::ManualAdjustment, &t.used.manual_adjustments),
        ] {
            for id in used {
                let Some(then) = entry(&t.commission, kind, id) else {
                    continue;
                };
                let current = entry(&now, kind, id);
                // A manual adjustment paid is done with: removing it from
                // the config afterwards is tidying up, not a change.
                if current == Some(then)
                    || (current.is_none() && kind == EntryKind::ManualAdjustment)
                {
                    continue;
                }
                match seen
                    .iter_mut()
                    .find(|(k, i, v, _)| *k == kind && i == id && v == then)
                {
                    Some((.., periods)) => periods.push(rec.period.clone()),
                    None => seen.push((kind, id.clone(), then.clone(), vec![rec.period.clone()])),
                }
            }
        }
    }
    for (kind, id, then, periods) in seen {
        let current = entry(&now, kind, &id);
        let (was, now) = describe_pair(kind, &then, current);
        review.changes.push(TermChange {
            program: program.to_owned(),
            kind,
            id,
            periods,
            was,
            now,
        });
    }
    if let Some(t) = latest {
        for (section, then, now, skip) in [
            ("matching", &t.program_settings, &settings.program, &[][..]),
            ("[fx]", &t.fx, &settings.fx, &FX_NOT_COMPARED[..]),
        ] {
            // Terms recorded without them (none so far) compare nothing.
            if then.is_null() || now.is_null() {
                continue;
            }
            let fields = differing_fields(then, now, skip);
            if !fields.is_empty() {
                review.settings.push(SettingsChange {
                    program: program.to_owned(),
                    period: t.period.clone(),
                    section: section.to_owned(),
                    fields,
                });
            }
        }
    }
    Ok(review)
}

/// A program's matching and `[fx]` settings now, as [`program_terms`] and
/// [`fx_terms`] record them, for [`term_changes`] to compare (`Null`:
/// not compared).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentSettings {
    /// [`program_terms`] of the program now.
    pub program: Value,
    /// [`fx_terms`] of the `[fx]` section now.
    pub fx: Value,
}

/// The entry `id` of `kind` in a [`commission_terms`] value.
fn entry<'v>(commission: &'v Value, kind: EntryKind, id: &str) -> Option<&'v Value> {
    commission
        .get(kind.list())?
        .as_array()?
        .iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(id))
}

/// The fields that say what an entry pays (the headline), in order.
const PRICE_FIELDS: [&str; 9] = [
    "kind",
    "amount",
    "percent",
    "tier_mode",
    "tiers",
    "cap_per_period",
    "threshold_volume",
    "partner",
    "period",
];

/// `then` and `now` described for a message: the headline (what it pays),
/// then each other field that differs, `field value`.
fn describe_pair(kind: EntryKind, then: &Value, now: Option<&Value>) -> (String, Option<String>) {
    let Some(now) = now else {
        return (headline(kind, then), None);
    };
    let empty = Map::new();
    let (a, b) = (
        then.as_object().unwrap_or(&empty),
        now.as_object().unwrap_or(&empty),
    );
    let mut others: Vec<&str> = a
        .keys()
        .chain(b.keys())
        .map(String::as_str)
        .filter(|k| *k != "id" && !PRICE_FIELDS.contains(k) && a.get(*k) != b.get(*k))
        .collect();
    others.sort_unstable();
    others.dedup();
    let with = |v: &Map<String, Value>| {
        let mut s = headline(kind, &Value::Object(v.clone()));
        for k in &others {
            s.push_str(&format!(
                ", {k} {}",
                shown(v.get(*k).unwrap_or(&Value::Null))
            ));
        }
        s
    };
    (with(a), Some(with(b)))
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "none".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".to_owned(),
        Value::Array(a) => a.iter().map(shown).collect::<Vec<_>>().join("+"),
        v => v.to_string(),
    }
}

/// What an entry pays, in words: `10 %`, `2.5 per claim`, `tiers 5 % from
/// 0, 10 % from 500 (marginal)`, `25 from volume 1000`, each with its cap.
pub fn headline(kind: EntryKind, v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let tiers = |t: &Value| {
        t.as_array().filter(|t| !t.is_empty()).map(|t| {
            t.iter()
                .map(|t| {
                    format!(
                        "{} % from {}",
                        t.get("percent").map(shown).unwrap_or_default(),
                        t.get("from_volume").map(shown).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let mut out = match kind {
        EntryKind::ManualAdjustment => format!(
            "{} to {} on {}",
            s("amount").unwrap_or_default(),
            s("partner").unwrap_or_default(),
            s("period").unwrap_or_default()
        ),
        EntryKind::Bonus => {
            let from = s("threshold_volume").unwrap_or_default();
            match (s("amount"), s("percent")) {
                (Some(a), _) => format!("{a} from volume {from}"),
                (None, Some(p)) => format!("{p} % of the volume from volume {from}"),
                (None, None) => format!("from volume {from}"),
            }
        }
        EntryKind::Rule | EntryKind::Override => {
            let mode = s("tier_mode").unwrap_or_else(|| "all_volume".into());
            match (s("amount"), s("percent"), v.get("tiers").and_then(tiers)) {
                (Some(a), ..) => format!("{a} per claim"),
                (None, Some(p), _) => format!("{p} %"),
                (None, None, Some(t)) => format!("tiers {t} ({mode})"),
                (None, None, None) => "as its rule".to_owned(),
            }
        }
    };
    if let Some(cap) = s("cap_per_period") {
        out.push_str(&format!(", cap {cap} per period"));
    }
    if kind == EntryKind::Override {
        if let (Some(p), Some(r)) = (s("partner"), s("rule")) {
            out.push_str(&format!(" (partner {p}, rule {r})"));
        }
    }
    out
}

/// The recorded terms in lines of text, for `statements show --terms`.
pub fn describe(t: &PeriodTerms) -> String {
    use std::fmt::Write as _;
    let c = &t.commission;
    let s = |v: &Value, k: &str| v.get(k).map(shown).unwrap_or_else(|| "none".into());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "terms recorded when {} {} was finalised ({}):",
        t.program,
        t.period,
        t.recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    let _ = writeln!(
        out,
        "  payout: currency {}, period {}, timezone {}, minimum payout {}",
        s(c, "payout_currency"),
        s(c, "period"),
        s(c, "timezone"),
        s(c, "minimum_payout")
    );
    if let Some(groups) = c.get("partner_groups").and_then(Value::as_object) {
        for (g, members) in groups {
            let _ = writeln!(out, "  partner group {g}: {}", shown(members));
        }
    }
    for (kind, used) in [
        (EntryKind::Rule, &t.used.rules),
        (EntryKind::Override, &t.used.overrides),
        (EntryKind::Bonus, &t.used.bonuses),
    ] {
        let entries = c.get(kind.list()).and_then(Value::as_array);
        for e in entries.into_iter().flatten() {
            let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
            let mut when = format!("from {}", s(e, "effective_from"));
            if let Some(to) = e.get("effective_to").filter(|v| !v.is_null()) {
                when.push_str(&format!(" to {}", shown(to)));
            }
            let mut scope = String::new();
            for k in ["event_types", "partners", "groups"] {
                if e.get(k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
                {
                    scope.push_str(&format!(", {k} {}", s(e, k)));
                }
            }
            let _ = writeln!(
                out,
                "  {} {id}: {}, {when}{scope}{}",
                kind.word(),
                headline(kind, e),
                if used.contains(id) {
                    ""
                } else {
                    " (not used by this period)"
                }
            );
        }
    }
    // The manual adjustments the period paid (those of other periods in
    // the config then are not its terms).
    let manual = c
        .get(EntryKind::ManualAdjustment.list())
        .and_then(Value::as_array);
    for e in manual.into_iter().flatten() {
        let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
        if !t.used.manual_adjustments.contains(id) {
            continue;
        }
        let refers = match e.get("refers_to").and_then(Value::as_array) {
            Some(r) if !r.is_empty() => format!(", refers_to {}", shown(&Value::Array(r.clone()))),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  manual adjustment {id}: {}, reason {:?}{refers}",
            headline(EntryKind::ManualAdjustment, e),
            e.get("reason").and_then(Value::as_str).unwrap_or_default()
        );
    }
    let p = &t.program_settings;
    let m = p.get("match").cloned().unwrap_or(Value::Null);
    let _ = writeln!(
        out,
        "  matching: currency {}, claims {}, orders {}, return window {} days, no-order grace {} days, attribution {}, source priority {}, tolerance {} abs / {} %, fuzzy window {} h, order window {}, coupon matching {}, network approval required {}",
        s(p, "currency"),
        s(p, "claims"),
        s(p, "orders"),
        s(p, "return_window_days"),
        s(p, "no_order_grace_days"),
        s(p, "attribution"),
        s(p, "source_priority"),
        s(&m, "amount_tolerance_abs"),
        s(&m, "amount_tolerance_pct"),
        s(&m, "fuzzy_window_hours"),
        // Recorded since 2026-12-02 (QA43 C-M2).
        m.get("order_window_days")
            .map_or_else(|| "not recorded".to_owned(), |d| format!("{} days", shown(d))),
        s(&m, "coupon_matching"),
        s(p, "require_network_approval"),
    );
    if t.fx.get("configured") == Some(&Value::Bool(false)) {
        let _ = writeln!(
            out,
            "  fx: no [fx] section, rates fingerprint {}",
            s(&t.fx, "rates_fingerprint")
        );
    } else {
        let _ = writeln!(
            out,
            "  fx: rates_csv {}, max age {} days, {} inline rate(s), rates fingerprint {}",
            s(&t.fx, "rates_csv"),
            s(&t.fx, "max_age_days"),
            s(&t.fx, "inline_rates"),
            s(&t.fx, "rates_fingerprint"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commission(rules: &str) -> CommissionConfig {
        toml::from_str(&format!("payout_currency = \"EUR\"\n{rules}")).unwrap()
    }

    const CPS_10: &str = "[[rules]]\nid = \"cps-10\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n[[bonuses]]\nid = \"b\"\neffective_from = \"2026-01-01\"\nthreshold_volume = \"1000\"\namount = \"25\"\n";

    fn finalised(b: &book::MemoryBook, period: &str, c: &CommissionConfig, used: &[&str]) {
        let rec = crate::test_support::period_record(period, Status::Finalised);
        let terms = PeriodTerms {
            book_version: 1,
            program: "acme".into(),
            period: period.into(),
            recorded_at: chrono::Utc::now(),
            commission: commission_terms(c),
            program_settings: Value::Null,
            fx: Value::Null,
            used: UsedTerms {
                rules: used.iter().map(|s| s.to_string()).collect(),
                ..UsedTerms::default()
            },
        };
        b.apply(vec![
            (
                book::key(&["period", "acme", period]),
                Some(book::encode(&rec)),
            ),
            (terms_key("acme", period), Some(book::encode(&terms))),
        ])
        .unwrap();
    }

    /// QA33d M6: `cps-10` edited in place from 10 % to 11 % is named with
    /// the periods that used it; an unused bonus edit and a rewrite of the
    /// same figure are not changes.
    #[test]
    fn a_rule_edited_in_place_is_named_with_the_periods_that_used_it() {
        let b = book::MemoryBook::new();
        finalised(&b, "2026-09", &commission(CPS_10), &["cps-10"]);
        finalised(&b, "2026-10", &commission(CPS_10), &["cps-10"]);
        let same = commission(&CPS_10.replace("\"10\"", "\"10.0\""));
        assert_eq!(
            term_changes(&b, "acme", &same, &CurrentSettings::default()).unwrap(),
            TermReview::default()
        );
        let edited = commission(
            &CPS_10
                .replace("\"10\"", "\"11\"")
                .replace("\"25\"", "\"30\""),
        );
        let review = term_changes(&b, "acme", &edited, &CurrentSettings::default()).unwrap();
        assert_eq!(review.changes.len(), 1, "{review:?}");
        let text = review.changes[0].to_string();
        assert!(
            text.starts_with("rule `cps-10` of program `acme`: 10 % when 2026-09, 2026-10 were finalised, 11 % now; claims of finalised periods paid from now on (late claims, claims moved to another partner) take 11 %"),
            "{text}"
        );
        let removed = commission("");
        let review = term_changes(&b, "acme", &removed, &CurrentSettings::default()).unwrap();
        assert!(
            review.changes[0]
                .to_string()
                .contains("10 % when 2026-09, 2026-10 were finalised, no longer in the config now"),
            "{review:?}"
        );
    }

    /// QA53 L6: an override added with an `effective_from` in finalised
    /// months is named with them; one starting after them, or a rule the
    /// periods' terms had, is not.
    #[test]
    fn a_rule_or_override_added_with_days_in_finalised_periods_is_named() {
        let b = book::MemoryBook::new();
        finalised(&b, "2026-09", &commission(CPS_10), &["cps-10"]);
        finalised(&b, "2026-10", &commission(CPS_10), &["cps-10"]);
        let with = |from: &str| {
            commission(&format!(
                "{CPS_10}[[overrides]]\nid = \"p3-retro\"\nrule = \"cps-10\"\npartner = \"p3\"\npercent = \"12\"\neffective_from = \"{from}\"\n"
            ))
        };
        let review =
            term_changes(&b, "acme", &with("2026-10-15"), &CurrentSettings::default()).unwrap();
        let [added] = review.added.as_slice() else {
            panic!("{review:?}")
        };
        assert_eq!(
            added.to_string(),
            "override `p3-retro` of program `acme` is in force on days of 2026-10, which was finalised without it: claims of those days paid from now on (late claims, claims moved to another partner) are priced by it where it applies, lines already paid keep the terms they were paid on; if it is not meant for those days, set its `effective_from` after them"
        );
        let review =
            term_changes(&b, "acme", &with("2026-09-01"), &CurrentSettings::default()).unwrap();
        assert_eq!(review.added[0].periods, ["2026-09", "2026-10"]);
        let review =
            term_changes(&b, "acme", &with("2026-11-01"), &CurrentSettings::default()).unwrap();
        assert_eq!(review, TermReview::default());
    }

    fn program(tolerance: &str) -> ProgramConfig {
        toml::from_str(&format!(
            "id = \"acme\"\ncurrency = \"USD\"\nclaims = [\"impact\"]\norders = [\"shop\"]\n[match]\namount_tolerance_abs = \"{tolerance}\"\n"
        ))
        .unwrap()
    }

    /// QA33d M6, second part: a matching or `[fx]` setting that differs
    /// from the latest finalised period's is named with both values; the
    /// rates' fingerprint (new rows every day) is not compared.
    #[test]
    fn matching_and_fx_settings_changed_since_the_latest_finalised_period_are_named() {
        let b = book::MemoryBook::new();
        let recorded = |period: &str, p: &ProgramConfig| {
            finalised(&b, period, &commission(CPS_10), &["cps-10"]);
            let k = terms_key("acme", period);
            let mut t: PeriodTerms = book::decode(&k, b.get(&k).unwrap().unwrap()).unwrap();
            t.program_settings = program_terms(p);
            t.fx = fx_terms(None, &crate::fx::FxTable::empty());
            b.apply(vec![(k, Some(book::encode(&t)))]).unwrap();
        };
        recorded("2026-09", &program("0.25"));
        recorded("2026-10", &program("0.50"));
        let c = commission(CPS_10);
        let now = |p: &ProgramConfig, fx: Option<&crate::fx::FxConfig>| CurrentSettings {
            program: program_terms(p),
            fx: fx_settings(fx),
        };
        // As the latest period (2026-10) was paid: nothing, whatever 2026-09 had.
        let review = term_changes(&b, "acme", &c, &now(&program("0.5"), None)).unwrap();
        assert_eq!(review, TermReview::default());
        let review = term_changes(&b, "acme", &c, &now(&program("1.00"), None)).unwrap();
        assert_eq!(review.changes, Vec::new());
        let [m] = review.settings.as_slice() else {
            panic!("{review:?}")
        };
        assert_eq!(
            m.to_string(),
            "matching settings of program `acme` differ from those in force when 2026-10 was finalised: match.amount_tolerance_abs 0.5 then, 1 now; the next reconciliation re-judges every claim under the settings now, and claims already paid whose outcome or basis changes are corrected by adjustments on the next statements (finalised statements do not change); `reckon statements show --program acme --period 2026-10 --terms` lists the terms then"
        );
        let fx: crate::fx::FxConfig = toml::from_str("max_age_days = 3").unwrap();
        let review = term_changes(&b, "acme", &c, &now(&program("0.5"), Some(&fx))).unwrap();
        let [f] = review.settings.as_slice() else {
            panic!("{review:?}")
        };
        assert_eq!(f.section, "[fx]");
        assert_eq!(
            f.fields,
            vec![
                ("configured".into(), "false".into(), "true".into()),
                ("max_age_days".into(), "0".into(), "3".into()),
            ]
        );
        // QA43 C-M2: `order_window_days` decides outcomes too.
        let mut narrow = program("0.5");
        narrow.matching.order_window_days = 1;
        let review = term_changes(&b, "acme", &c, &now(&narrow, None)).unwrap();
        let [w] = review.settings.as_slice() else {
            panic!("{review:?}")
        };
        assert_eq!(
            w.fields,
            vec![("match.order_window_days".into(), "30".into(), "1".into())]
        );
        // A period finalised before it was recorded cannot tell: not named.
        let k = terms_key("acme", "2026-10");
        let mut t: PeriodTerms = book::decode(&k, b.get(&k).unwrap().unwrap()).unwrap();
        t.program_settings["match"]
            .as_object_mut()
            .unwrap()
            .remove("order_window_days");
        b.apply(vec![(k, Some(book::encode(&t)))]).unwrap();
        let review = term_changes(&b, "acme", &c, &now(&narrow, None)).unwrap();
        assert_eq!(review, TermReview::default());
    }

    #[test]
    fn periods_without_recorded_terms_are_listed_not_refused() {
        let b = book::MemoryBook::new();
        finalised(&b, "2026-10", &commission(CPS_10), &["cps-10"]);
        b.apply(vec![(terms_key("acme", "2026-10"), None)]).unwrap();
        let review =
            term_changes(&b, "acme", &commission(""), &CurrentSettings::default()).unwrap();
        assert_eq!(review.changes, Vec::new());
        assert_eq!(review.unrecorded, vec!["2026-10".to_owned()]);
    }

    /// QA34c M4: a manual adjustment a finalised period paid, edited in
    /// place since, is named with what was paid; one it did not pay, or
    /// removed from the config since, is not.
    #[test]
    fn a_manual_adjustment_paid_and_edited_since_is_named() {
        const MANUAL: &str = "[[manual_adjustments]]\nid = \"fix\"\npartner = \"net:p1\"\nperiod = \"2026-10\"\namount = \"12.34\"\nreason = \"12 % instead of 13 %\"\n[[manual_adjustments]]\nid = \"other\"\npartner = \"net:p2\"\nperiod = \"2026-11\"\namount = \"1\"\nreason = \"x\"\n";
        let b = book::MemoryBook::new();
        let paid = commission(&format!("{CPS_10}{MANUAL}"));
        finalised(&b, "2026-10", &paid, &["cps-10"]);
        let k = terms_key("acme", "2026-10");
        let mut t: PeriodTerms = book::decode(&k, b.get(&k).unwrap().unwrap()).unwrap();
        t.used.manual_adjustments.insert("fix".into());
        b.apply(vec![(k, Some(book::encode(&t)))]).unwrap();
        let review = |text: &str| {
            term_changes(&b, "acme", &commission(text), &CurrentSettings::default()).unwrap()
        };
        assert_eq!(review(&format!("{CPS_10}{MANUAL}")), TermReview::default());
        let edited = review(&format!(
            "{CPS_10}{}",
            MANUAL
                .replace("\"12.34\"", "\"13.340\"")
                .replace("\"1\"", "\"2\"")
        ));
        let [change] = edited.changes.as_slice() else {
            panic!("{edited:?}")
        };
        assert_eq!(change.kind, EntryKind::ManualAdjustment);
        assert_eq!(change.was, "12.34 to net:p1 on 2026-10");
        assert_eq!(change.now.as_deref(), Some("13.34 to net:p1 on 2026-10"));
        assert_eq!(review(CPS_10), TermReview::default());
        assert!(describe(&t).contains("  manual adjustment fix: 12.34 to net:p1 on 2026-10, reason \"12 % instead of 13 %\"\n"));
        assert!(!describe(&t).contains("other"));
    }

    #[test]
    fn other_fields_that_changed_are_named_beside_the_headline() {
        let then = rule_terms(&commission(CPS_10).rules[0]);
        let mut c = commission(CPS_10);
        c.rules[0].effective_to = Some("2026-10-31".parse().unwrap());
        let (was, now) = describe_pair(EntryKind::Rule, &then, Some(&rule_terms(&c.rules[0])));
        assert_eq!(was, "10 %, effective_to none");
        assert_eq!(now.as_deref(), Some("10 %, effective_to 2026-10-31"));
    }
}
