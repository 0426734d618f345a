//! `[[programs]]`: what a reconciliation program is and how it matches.
//!
//! A program ties the connectors whose conversions are *claims* to the
//! connectors whose records are the advertiser's *orders*, in one currency,
//! with the windows, attribution rule and match tolerances used to judge each
//! claim. This module only parses and validates; the judging is in
//! [`super::engine`]. Commission rules (`[programs.commission]`) belong to the
//! payout module and are only carried here.
//!
//! ```toml
//! [[programs]]
//! id = "shop-us"
//! currency = "USD"
//! claims = ["impact", "everflow"]
//! orders = ["shopify"]
//! return_window_days = 30
//! no_order_grace_days = 3
//! attribution = "last_click"          # or "first_click", "source_priority"
//! source_priority = ["impact", "everflow"]
//!
//! [programs.match]
//! amount_tolerance_abs = "0.50"       # program currency
//! amount_tolerance_pct = "1"          # percent of the order amount
//! fuzzy_window_hours = 24
//! order_window_days = 30              # order id / click id matches: days between conversion and order
//! coupon_matching = true
//! ```
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One reconciliation program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramConfig {
    /// Program id: names the program in decisions, reports and statements.
    pub id: String,
    /// ISO-4217 code of the program currency: amounts are compared and
    /// commission bases are stated in it (other currencies go through `[fx]`).
    pub currency: String,
    /// Connector ids whose conversions are this program's claims.
    pub claims: Vec<String>,
    /// Connector ids whose orders are this program's orders (the truth).
    pub orders: Vec<String>,
    /// Days after the order's creation before a claim locks when the network
    /// has no lock date of its own (refunds inside the window reverse it).
    #[serde(default = "default_return_window_days")]
    pub return_window_days: u32,
    /// Days after the conversion during which a claim without an order is
    /// `awaiting_order` rather than `no_order` (orders may sync late).
    #[serde(default = "default_no_order_grace_days")]
    pub no_order_grace_days: u32,
    /// Which claim wins when several claim one order: `last_click`
    /// (default), `first_click` or `source_priority`.
    #[serde(default)]
    pub attribution: AttributionRule,
    /// Claim connector ids, most preferred first: the primary key of
    /// `source_priority` and a tie-break for the click rules. Connectors not
    /// listed rank after every listed one.
    #[serde(default)]
    pub source_priority: Vec<String>,
    /// `[programs.match]`: how claims are matched and amounts compared.
    #[serde(default, rename = "match")]
    pub matching: MatchConfig,
    /// Pay a claim only once its network has approved it: a claim the
    /// network still has `pending` (PartnerStack's `hold` among them) stays
    /// unpayable after its lock date. Default false: Reckon's own judgement
    /// against the orders decides, whatever the network's pending status.
    #[serde(default)]
    pub require_network_approval: bool,
    /// Commission rules and payout settings of the program.
    #[serde(default)]
    pub commission: Option<crate::payout::config::CommissionConfig>,
    /// The daemon's reporting timezone (`daemon.timezone`), set when the
    /// config is loaded: the program's calendar when its commission names
    /// none. See [`ProgramConfig::calendar`].
    #[serde(skip)]
    pub default_timezone: Option<chrono_tz::Tz>,
    /// Claim sources that are copies of another's conversions: a
    /// `[[postbacks]]` endpoint's id → the connector its `mirrors` names,
    /// for the endpoints in `claims`. Set when the config is loaded (from
    /// `[[postbacks]]`, not from this table). A copy matched to the same
    /// order as a claim of the connector it mirrors never competes: it takes
    /// the network status of that claim (reversed, rejected) or is its
    /// `duplicate` (QA28-E F12: a reversal seen only through the API left
    /// the postback's copy paid).
    #[serde(skip)]
    pub mirrors: std::collections::BTreeMap<String, String>,
}

/// The longest return window, grace period or fuzzy window (in days).
pub const MAX_WINDOW_DAYS: u32 = 3650;

fn default_return_window_days() -> u32 {
    30
}
fn default_no_order_grace_days() -> u32 {
    7
}

/// The attribution rule that picks one winner among claims of one order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionRule {
    /// The latest click wins (click time, else conversion time), then
    /// source priority, then the smallest (source, external id).
    #[default]
    LastClick,
    /// The earliest click wins, with the same tie-breaks.
    FirstClick,
    /// The best-ranked source in `source_priority` wins, then last click,
    /// then the smallest (source, external id).
    SourcePriority,
}

impl AttributionRule {
    /// snake_case name as written in config and decisions.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributionRule::LastClick => "last_click",
            AttributionRule::FirstClick => "first_click",
            AttributionRule::SourcePriority => "source_priority",
        }
    }
}

/// `[programs.match]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Absolute amount tolerance in the program currency, as a quoted
    /// decimal (`"0.50"`). A claim is `amount_mismatch` when it differs from
    /// the order by more than max(abs, pct × order amount).
    #[serde(default, deserialize_with = "crate::config::decimal::string")]
    pub amount_tolerance_abs: Decimal,
    /// Percent tolerance (`"1"` = 1 % of the order amount), quoted decimal.
    #[serde(default, deserialize_with = "crate::config::decimal::string")]
    pub amount_tolerance_pct: Decimal,
    /// Coupon matching: the most hours between the conversion and the
    /// order's creation.
    #[serde(default = "default_fuzzy_window_hours")]
    pub fuzzy_window_hours: u32,
    /// Order-id and click-id matches: the most days between the
    /// conversion and the order's creation, either way. An order further
    /// off is not the claim's sale (a conversion months before the order
    /// existed, an old order's id guessed, a postback dated when it arrived
    /// long after the sale: QA38a H2, H3).
    #[serde(default = "default_order_window_days")]
    pub order_window_days: u32,
    /// Whether a claim with neither order id nor click id match may match an
    /// order by coupon + amount within tolerance + time within the window.
    #[serde(default)]
    pub coupon_matching: bool,
}

fn default_fuzzy_window_hours() -> u32 {
    24
}

/// The default of [`MatchConfig::order_window_days`].
pub const DEFAULT_ORDER_WINDOW_DAYS: u32 = 30;

fn default_order_window_days() -> u32 {
    DEFAULT_ORDER_WINDOW_DAYS
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            amount_tolerance_abs: Decimal::ZERO,
            amount_tolerance_pct: Decimal::ZERO,
            fuzzy_window_hours: default_fuzzy_window_hours(),
            order_window_days: default_order_window_days(),
            coupon_matching: false,
        }
    }
}

/// A program config that cannot be used, naming the program and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[[programs]] `{program}`: field `{field}`: {message}")]
pub struct ProgramConfigError {
    /// The program id (or its position when the id is empty).
    pub program: String,
    /// The offending field.
    pub field: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl ProgramConfig {
    /// The timezone of the program's days: its statements' timezone
    /// (`[programs.commission] timezone`), else the daemon's reporting
    /// timezone, else UTC. FX rates are looked up on a claim's or order's
    /// day in it, and reports and statements count months in it.
    pub fn calendar(&self) -> chrono_tz::Tz {
        self.commission
            .as_ref()
            .and_then(|c| c.timezone.as_deref())
            .and_then(|name| name.parse().ok())
            .or(self.default_timezone)
            .unwrap_or(chrono_tz::UTC)
    }

    /// The program's day of an instant ([`ProgramConfig::calendar`]).
    pub fn day(&self, t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        t.with_timezone(&self.calendar()).date_naive()
    }

    /// Checks one program on its own (currency known, connectors listed,
    /// priorities consistent, tolerances non-negative): the first problem.
    pub fn validate(&self) -> Result<(), ProgramConfigError> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every problem [`ProgramConfig::validate`] checks for, in field order
    /// (the config loader reports them all at once).
    pub fn problems(&self) -> Vec<ProgramConfigError> {
        let mut out = Vec::new();
        let mut err = |field, message: String| {
            out.push(ProgramConfigError {
                program: self.id.clone(),
                field,
                message,
            })
        };
        if self.id.trim().is_empty() {
            err("id", "must not be empty".into());
        }
        if let Some(m) = crate::config::currency_problem(&self.currency) {
            err("currency", m);
        }
        if self.claims.is_empty() {
            err(
                "claims",
                "list at least one connector id whose conversions are claims".into(),
            );
        }
        if self.orders.is_empty() {
            err(
                "orders",
                "list at least one connector id whose records are the orders".into(),
            );
        }
        if let Some(c) = self.claims.iter().find(|c| self.orders.contains(c)) {
            err(
                "orders",
                format!("connector `{c}` is listed both as claims and as orders"),
            );
        }
        if self.attribution == AttributionRule::SourcePriority && self.source_priority.is_empty() {
            err(
                "source_priority",
                "attribution = \"source_priority\" needs an ordered list of claim connector ids"
                    .into(),
            );
        }
        // Every stray entry, with the claims listed: either side may hold
        // the typo, so no guess is made.
        let claims = self
            .claims
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        for s in self
            .source_priority
            .iter()
            .filter(|s| !self.claims.contains(s))
        {
            err(
                "source_priority",
                format!("`{s}` is not one of this program's `claims` connectors ({claims})"),
            );
        }
        if self.matching.amount_tolerance_abs.is_sign_negative() {
            err("match.amount_tolerance_abs", "must be zero or more".into());
        } else if self.matching.amount_tolerance_abs >= plugin_api::validate::MAX_AMOUNT {
            // QA24 M1: any tolerance that large matches a claim to an
            // order of any amount (amounts are below this bound).
            err(
                "match.amount_tolerance_abs",
                format!(
                    "{} would match a claim to an order of any amount; it is an amount in the program's currency, below {} (e.g. \"0.50\")",
                    self.matching.amount_tolerance_abs,
                    plugin_api::validate::MAX_AMOUNT
                ),
            );
        }
        if self.matching.amount_tolerance_pct.is_sign_negative() {
            err("match.amount_tolerance_pct", "must be zero or more".into());
        }
        if self.matching.amount_tolerance_pct > Decimal::ONE_HUNDRED {
            err(
                "match.amount_tolerance_pct",
                format!(
                    "{} % would match a claim to an order of any amount; it is a percent of the order amount, at most 100 (e.g. \"1\" for 1 %)",
                    self.matching.amount_tolerance_pct
                ),
            );
        }
        // Ten years: longer is a typo, and no date arithmetic may leave
        // chrono's range.
        for (field, days) in [
            ("return_window_days", self.return_window_days),
            ("no_order_grace_days", self.no_order_grace_days),
        ] {
            if days > MAX_WINDOW_DAYS {
                err(
                    field,
                    format!("{days} days is more than the {MAX_WINDOW_DAYS} (ten years) allowed"),
                );
            }
        }
        match self.matching.order_window_days {
            0 => err(
                "match.order_window_days",
                "0 days would match no order by id; give the most days a conversion and its order may be apart (default 30)".to_owned(),
            ),
            days if days > MAX_WINDOW_DAYS => err(
                "match.order_window_days",
                format!("{days} days is more than the {MAX_WINDOW_DAYS} (ten years) allowed"),
            ),
            _ => {}
        }
        if self.matching.fuzzy_window_hours > MAX_WINDOW_DAYS * 24 {
            err(
                "match.fuzzy_window_hours",
                format!(
                    "{} hours is more than the {} (ten years) allowed",
                    self.matching.fuzzy_window_hours,
                    MAX_WINDOW_DAYS * 24
                ),
            );
        }
        out
    }

    /// Rank of a claim source under `source_priority` (unlisted = after all).
    pub fn source_rank(&self, source: &str) -> usize {
        self.source_priority
            .iter()
            .position(|s| s == source)
            .unwrap_or(self.source_priority.len())
    }

    /// A fingerprint of everything that changes decisions (not commission),
    /// including [`super::engine::JUDGE_VERSION`]: when it differs from the
    /// last run's, the next run is a full one.
    pub fn fingerprint(&self) -> String {
        self.fingerprint_judged_by(Some(super::engine::JUDGE_VERSION))
    }

    /// Whether `fingerprint` is this program's as a release with older
    /// judging rules wrote it: an earlier [`super::engine::JUDGE_VERSION`],
    /// or none (releases before it, version 1, left it out). `/status` tells
    /// an upgrade from a config change by it.
    pub fn is_fingerprint_of_older_rules(&self, fingerprint: &str) -> bool {
        std::iter::once(None)
            .chain((2..super::engine::JUDGE_VERSION).map(Some))
            .any(|judge| self.fingerprint_judged_by(judge) == fingerprint)
    }

    /// [`Self::fingerprint`] with the judging rules' version `judge`.
    pub(crate) fn fingerprint_judged_by(&self, judge: Option<u32>) -> String {
        use sha2::Digest;
        let text = format!(
            "{}|{}|{:?}|{:?}|{}|{}|{}|{:?}|{}|{}|{}|{}",
            self.id,
            self.currency,
            self.claims,
            self.orders,
            self.return_window_days,
            self.no_order_grace_days,
            self.attribution.as_str(),
            self.source_priority,
            self.matching.amount_tolerance_abs.normalize(),
            self.matching.amount_tolerance_pct.normalize(),
            self.matching.fuzzy_window_hours,
            self.matching.coupon_matching,
        );
        let text = match judge {
            Some(v) => format!("{text}|judge={v}"),
            None => text,
        };
        // Appended only when set, so existing programs keep their
        // fingerprint (and their next run stays incremental).
        let text = if self.require_network_approval {
            text + "|require_network_approval"
        } else {
            text
        };
        // Appended only when set, as above.
        let text = if self.mirrors.is_empty() {
            text
        } else {
            format!("{text}|mirrors={:?}", self.mirrors)
        };
        // Appended only when not the default, as above.
        let text = match self.matching.order_window_days {
            DEFAULT_ORDER_WINDOW_DAYS => text,
            days => format!("{text}|order_window_days={days}"),
        };
        // FX days follow the calendar (a change re-judges every claim);
        // UTC, the only calendar before, adds nothing.
        let text = match self.calendar() {
            chrono_tz::UTC => text,
            tz => format!("{text}|calendar={}", tz.name()),
        };
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    }
}

/// Checks every program and that program ids are unique: the first problem.
pub fn validate_programs(programs: &[ProgramConfig]) -> Result<(), ProgramConfigError> {
    match programs_problems(programs).into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Every problem of every program (with the program's index), and repeated
/// program ids.
pub fn programs_problems(programs: &[ProgramConfig]) -> Vec<(usize, ProgramConfigError)> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    // Claims connector → the program that judges its claims.
    let mut judged_by = std::collections::BTreeMap::new();
    // Orders connector → the program whose claims it is matched with.
    let mut orders_of = std::collections::BTreeMap::new();
    for (i, p) in programs.iter().enumerate() {
        out.extend(p.problems().into_iter().map(|e| (i, e)));
        for (j, c) in p.claims.iter().enumerate() {
            let problem = |message: String| {
                let program = p.id.clone();
                (
                    i,
                    ProgramConfigError {
                        program,
                        field: "claims",
                        message,
                    },
                )
            };
            if p.claims[..j].contains(c) {
                out.push(problem(format!(
                    "connector `{c}` is listed twice; list it once"
                )));
            } else if let Some(&(k, other)) = judged_by.get(c.as_str()) {
                if k != i {
                    out.push(problem(format!(
                        "connector `{c}` is already a claims connector of program `{other}`: \
                         each program would judge and pay its claims, so a claim could be paid twice; \
                         give each program its own connector (one per network account)"
                    )));
                }
            } else {
                judged_by.insert(c.as_str(), (i, p.id.as_str()));
            }
        }
        for (j, c) in p.orders.iter().enumerate() {
            let problem = |message: String| {
                (
                    i,
                    ProgramConfigError {
                        program: p.id.clone(),
                        field: "orders",
                        message,
                    },
                )
            };
            if p.orders[..j].contains(c) {
                out.push(problem(format!(
                    "connector `{c}` is listed twice; list it once"
                )));
            } else if let Some(&(k, other)) = orders_of.get(c.as_str()) {
                if k != i {
                    out.push(problem(format!(
                        "connector `{c}` is already an orders connector of program `{other}`: \
                         duplicates are found within a program, so a network of each program \
                         could be paid for the same order; judge the networks that claim these \
                         orders in one program (different terms per network or partner are its \
                         `[programs.commission]` rules, overrides and groups with `network:partner` keys), \
                         or give each program the orders connector of its own shop"
                    )));
                }
            } else {
                orders_of.insert(c.as_str(), (i, p.id.as_str()));
            }
        }
        if !seen.insert(p.id.as_str()) {
            out.push((
                i,
                ProgramConfigError {
                    program: p.id.clone(),
                    field: "id",
                    message: "another program has the same id; ids must be unique".into(),
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        programs: Vec<ProgramConfig>,
    }

    fn parse(s: &str) -> Result<Vec<ProgramConfig>, String> {
        toml::from_str::<File>(s)
            .map(|f| f.programs)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_documented_example_with_defaults() {
        let p = parse(
            r#"
[[programs]]
id = "shop-us"
currency = "USD"
claims = ["impact", "everflow"]
orders = ["shopify"]
source_priority = ["impact"]
[programs.match]
amount_tolerance_abs = "0.50"
amount_tolerance_pct = 1
coupon_matching = true
"#,
        )
        .unwrap();
        let p = &p[0];
        p.validate().unwrap();
        assert_eq!(p.return_window_days, 30);
        assert_eq!(p.no_order_grace_days, 7);
        assert_eq!(p.attribution, AttributionRule::LastClick);
        assert_eq!(p.matching.amount_tolerance_abs, Decimal::new(50, 2));
        assert_eq!(p.matching.amount_tolerance_pct, Decimal::ONE);
        assert_eq!(p.matching.fuzzy_window_hours, 24);
        assert!(p.matching.coupon_matching);
        assert_eq!(p.source_rank("impact"), 0);
        assert_eq!(p.source_rank("everflow"), 1);
    }

    #[test]
    fn rejects_unknown_fields_and_float_money() {
        let e =
            parse("[[programs]]\nid='a'\ncurrency='USD'\nclaims=['x']\norders=['y']\nwindow=3\n")
                .unwrap_err();
        assert!(e.contains("unknown field `window`"), "{e}");
        let e = parse(
            "[[programs]]\nid='a'\ncurrency='USD'\nclaims=['x']\norders=['y']\n[programs.match]\namount_tolerance_abs=0.5\n",
        )
        .unwrap_err();
        assert!(e.contains("quoted"), "{e}");
    }

    #[test]
    fn windows_and_tolerance_are_bounded() {
        // QA finding: 300000000 grace days passed `config check`, then every
        // run panicked computing a date beyond chrono's range.
        let mut p = parse("[[programs]]\nid='a'\ncurrency='USD'\nclaims=['x']\norders=['y']\n")
            .unwrap()
            .remove(0);
        p.return_window_days = MAX_WINDOW_DAYS;
        p.no_order_grace_days = MAX_WINDOW_DAYS;
        p.matching.amount_tolerance_pct = Decimal::ONE_HUNDRED;
        p.validate().unwrap();
        p.return_window_days = 300_000_000;
        p.no_order_grace_days = MAX_WINDOW_DAYS + 1;
        p.matching.fuzzy_window_hours = u32::MAX;
        p.matching.amount_tolerance_pct = Decimal::new(1000, 0);
        let fields: Vec<&str> = p.problems().iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "match.amount_tolerance_pct",
                "return_window_days",
                "no_order_grace_days",
                "match.fuzzy_window_hours"
            ]
        );
        assert!(p.problems()[1]
            .message
            .contains("300000000 days is more than the 3650"));
        // The engine's own guard: a time at the end of chrono's range.
        assert_eq!(
            super::super::engine::days_after(chrono::DateTime::<chrono::Utc>::MAX_UTC, 30),
            chrono::DateTime::<chrono::Utc>::MAX_UTC
        );
    }

    #[test]
    fn validation_names_program_and_field() {
        let mut p = parse("[[programs]]\nid='a'\ncurrency='usd'\nclaims=['x']\norders=['y']\n")
            .unwrap()
            .remove(0);
        let e = p.validate().unwrap_err();
        assert_eq!(e.field, "currency");
        assert!(e.to_string().contains("`a`"));
        p.currency = "USD".into();
        p.attribution = AttributionRule::SourcePriority;
        assert_eq!(p.validate().unwrap_err().field, "source_priority");
        p.source_priority = vec!["z".into()];
        assert!(p.validate().unwrap_err().message.contains("`z`"));
        p.source_priority = vec!["x".into()];
        p.validate().unwrap();
        let fields = |ps: &[ProgramConfig]| -> Vec<(usize, &'static str, String)> {
            programs_problems(ps)
                .into_iter()
                .map(|(i, e)| (i, e.field, e.message))
                .collect()
        };
        let mut q = p.clone();
        q.id = "b".into();
        q.claims.push("x".into());
        q.source_priority.clear();
        q.attribution = AttributionRule::LastClick;
        q.orders = vec!["z".into()];
        let problems = fields(&[p.clone(), q.clone(), p.clone()]);
        // `b` judges `x` twice over and `a` already judges it: a claim of `x`
        // would be paid by two programs (a QA finding); the third program
        // repeats `a`'s claims, orders and id.
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0]
            .2
            .contains("already a claims connector of program `a`"));
        assert!(problems[0].2.contains("paid twice"));
        assert_eq!((problems[0].0, problems[0].1), (1, "claims"));
        assert!(problems[1].2.contains("listed twice"), "{problems:?}");
        assert_eq!((problems[2].0, problems[2].1), (2, "claims"));
        assert_eq!((problems[3].0, problems[3].1), (2, "orders"));
        assert_eq!((problems[4].0, problems[4].1), (2, "id"));
    }

    #[test]
    fn an_orders_connector_serves_one_program() {
        // QA (new user): two programs with their own networks on one shop's
        // orders each paid 21 orders once per network, since duplicates are
        // found within a program.
        let ps = parse(
            "[[programs]]\nid='impact-terms'\ncurrency='USD'\nclaims=['impact']\norders=['shopify','pos']\n\
             [[programs]]\nid='everflow-terms'\ncurrency='USD'\nclaims=['everflow']\norders=['pos','pos']\n",
        )
        .unwrap();
        let problems: Vec<_> = programs_problems(&ps)
            .into_iter()
            .map(|(i, e)| (i, e.field, e.message))
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!((problems[0].0, problems[0].1), (1, "orders"));
        assert!(
            problems[0].2.starts_with(
                "connector `pos` is already an orders connector of program `impact-terms`: \
                 duplicates are found within a program"
            ),
            "{problems:?}"
        );
        assert!(problems[1].2.contains("listed twice"), "{problems:?}");
        // Each program on its own shop is fine.
        let ps = parse(
            "[[programs]]\nid='us'\ncurrency='USD'\nclaims=['impact']\norders=['shop_us']\n\
             [[programs]]\nid='eu'\ncurrency='EUR'\nclaims=['everflow']\norders=['shop_eu']\n",
        )
        .unwrap();
        assert!(programs_problems(&ps).is_empty());
    }
}
