//! Builders for the KPI test suites: small hand-made spend rows, orders,
//! claims and decisions, and a seeded two-network scenario.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, Utc};
use plugin_api::{
    Channel, Conversion, ConversionStatus, EventType, Money, Order, OrderStatus, Spend, Utm,
};
use reckon::fx::FxTable;
use reckon::kpi::config::KpiConfig;
use reckon::kpi::{Dim, KpiContext, KpiInputs, Period, Query, ReportingZone, View};
use reckon::reconcile::model::{Decision, MatchedBy, Outcome, RecordRef};
use rust_decimal::Decimal;

pub fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date literal")
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("rfc3339 literal")
        .with_timezone(&Utc)
}

pub fn eur(s: &str) -> Money {
    Money::new(dec(s), "EUR")
}

/// A spend row. `conv`/`value` are the platform's own figures.
#[allow(clippy::too_many_arguments)]
pub fn spend(
    source: &str,
    d: &str,
    tz: &str,
    campaign: (&str, &str),
    channel: Channel,
    impressions: u64,
    clicks: u64,
    amount: &str,
    conv: Option<&str>,
    value: Option<&str>,
) -> Spend {
    Spend {
        source: source.into(),
        account_id: format!("{source}-acct"),
        day: day(d),
        timezone: tz.into(),
        campaign_id: campaign.0.into(),
        campaign_name: campaign.1.into(),
        ad_group_id: None,
        ad_group_name: None,
        ad_id: None,
        channel,
        impressions,
        clicks,
        spend: eur(amount),
        platform_conversions: conv.map(dec),
        platform_conversion_value: value.map(eur),
    }
}

/// A paid order with optional UTM source/campaign and click ids.
pub fn order(
    id: &str,
    created: &str,
    amount: &str,
    utm: Option<(&str, &str)>,
    clicks: &[&str],
) -> Order {
    Order {
        source: "shop".into(),
        order_id: id.into(),
        alt_ids: Vec::new(),
        created_at: at(created),
        amount: eur(amount),
        customer_id: None,
        new_customer: None,
        coupon: None,
        click_ids: clicks.iter().map(|c| (*c).to_owned()).collect(),
        utm: Utm {
            source: utm.map(|u| u.0.to_owned()),
            medium: None,
            campaign: utm.map(|u| u.1.to_owned()),
            content: None,
            term: None,
        },
        refunds: Vec::new(),
        status: OrderStatus::Paid,
    }
}

/// A network's claim.
#[allow(clippy::too_many_arguments)]
pub fn claim(
    network: &str,
    id: &str,
    order_id: &str,
    partner: (&str, &str),
    occurred: &str,
    sale: &str,
    commission: &str,
    status: ConversionStatus,
) -> Conversion {
    Conversion {
        source: network.into(),
        external_id: id.into(),
        order_id: Some(order_id.into()),
        click_id: None,
        clicked_at: None,
        partner_id: partner.0.into(),
        partner_name: Some(partner.1.into()),
        campaign_id: Some(format!("{network}-prog")),
        event_type: EventType::Sale,
        occurred_at: at(occurred),
        sale_amount: Some(eur(sale)),
        commission: Some(eur(commission)),
        status,
        status_changed_at: None,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    }
}

/// A decision for `claim` against `order` (if any).
pub fn decision(c: &Conversion, o: Option<&Order>, outcome: Outcome, payable: bool) -> Decision {
    Decision {
        program: "main".into(),
        claim: RecordRef {
            source: c.source.clone(),
            id: c.external_id.clone(),
            revision: 1,
        },
        partner_id: c.partner_id.clone(),
        partner_name: c.partner_name.clone(),
        event_type: c.event_type,
        occurred_at: c.occurred_at,
        order: o.map(|o| RecordRef {
            source: o.source.clone(),
            id: o.order_id.clone(),
            revision: 1,
        }),
        matched_by: o.map(|_| MatchedBy::OrderId),
        outcome,
        payable,
        lock_at: None,
        basis: o.map(|o| o.amount.clone()),
        claimed_amount: c.sale_amount.clone(),
        order_amount: o.map(|o| o.amount.clone()),
        refunded_amount: None,
        network_commission: c.commission.clone(),
        fx_rate: None,
        winner: None,
        reason: format!("test decision {}", outcome.as_str()),
        decided_at: at("2026-12-01T00:00:00Z"),
        order_fx_rate: None,
        inputs: Default::default(),
    }
}

/// `[kpi]` with the usual rules: google by UTM, meta by click id prefix.
pub fn config() -> KpiConfig {
    let cfg: KpiConfig = toml::from_str(
        r#"
        currency = "EUR"
        [[attribution]]
        utm_source = "google"
        connector = "google_ads"
        [[attribution]]
        click_id_prefix = "fbclid-"
        connector = "meta_ads"
        "#,
    )
    .expect("test config parses");
    cfg.validate().expect("test config is valid");
    cfg
}

pub fn query(period: &str, by: &[Dim], view: View) -> Query {
    Query {
        period: period.parse::<Period>().expect("period"),
        by: by.to_vec(),
        view,
    }
}

pub fn ctx<'a>(zone: &str, cfg: &'a KpiConfig, fx: &'a FxTable) -> KpiContext<'a> {
    KpiContext {
        zone: ReportingZone::parse(zone).expect("zone"),
        config: cfg,
        fx,
        commission: None,
        programs: &[],
    }
}

/// Two networks (awin, impact) claim the same three orders; one more order
/// comes from Google (by UTM, campaign named case-insensitively), one from
/// Meta (by click id), one is direct, one is cancelled, one fully refunded.
/// awin also claims an order that does not exist, and impact has a claim
/// the network itself reversed.
///
/// Real orders in November: O1..O6 (six); O7 cancelled, O8 refunded.
pub fn two_network_scenario() -> KpiInputs {
    let o1 = order("O1", "2026-11-02T10:00:00Z", "100.00", None, &[]);
    let o2 = order("O2", "2026-11-03T10:00:00Z", "200.00", None, &[]);
    let o3 = order("O3", "2026-11-04T10:00:00Z", "50.00", None, &[]);
    let o4 = order(
        "O4",
        "2026-11-05T10:00:00Z",
        "80.00",
        Some(("Google", "brand search")),
        &[],
    );
    let o5 = order("O5", "2026-11-06T10:00:00Z", "40.00", None, &["fbclid-abc"]);
    let o6 = order("O6", "2026-11-07T10:00:00Z", "30.00", None, &[]);
    let mut o7 = order(
        "O7",
        "2026-11-08T10:00:00Z",
        "99.00",
        Some(("google", "g-1")),
        &[],
    );
    o7.status = OrderStatus::Cancelled;
    let mut o8 = order(
        "O8",
        "2026-11-09T10:00:00Z",
        "60.00",
        Some(("google", "g-1")),
        &[],
    );
    o8.status = OrderStatus::Refunded;
    o8.refunds.push(plugin_api::Refund {
        amount: eur("60.00"),
        at: at("2026-11-10T10:00:00Z"),
    });

    let awin = ("a-1", "Coupon Site");
    let impact = ("i-9", "Cashback Club");
    let a1 = claim(
        "awin",
        "aw-1",
        "O1",
        awin,
        "2026-11-02T10:00:00Z",
        "100.00",
        "10.00",
        ConversionStatus::Approved,
    );
    let i1 = claim(
        "impact",
        "im-1",
        "O1",
        impact,
        "2026-11-02T10:00:00Z",
        "100.00",
        "12.00",
        ConversionStatus::Approved,
    );
    let a2 = claim(
        "awin",
        "aw-2",
        "O2",
        awin,
        "2026-11-03T10:00:00Z",
        "200.00",
        "20.00",
        ConversionStatus::Pending,
    );
    let i2 = claim(
        "impact",
        "im-2",
        "O2",
        impact,
        "2026-11-03T10:00:00Z",
        "200.00",
        "24.00",
        ConversionStatus::Approved,
    );
    let a3 = claim(
        "awin",
        "aw-3",
        "O3",
        awin,
        "2026-11-04T10:00:00Z",
        "50.00",
        "5.00",
        ConversionStatus::Pending,
    );
    let i3 = claim(
        "impact",
        "im-3",
        "O3",
        impact,
        "2026-11-04T10:00:00Z",
        "50.00",
        "6.00",
        ConversionStatus::Pending,
    );
    let ghost = claim(
        "awin",
        "aw-4",
        "NOPE",
        awin,
        "2026-11-05T10:00:00Z",
        "70.00",
        "7.00",
        ConversionStatus::Pending,
    );
    let reversed = claim(
        "impact",
        "im-4",
        "O6",
        impact,
        "2026-11-07T10:00:00Z",
        "30.00",
        "3.00",
        ConversionStatus::Reversed,
    );

    let decisions = vec![
        decision(&a1, Some(&o1), Outcome::Matched, true),
        decision(&i1, Some(&o1), Outcome::Duplicate, false),
        decision(&a2, Some(&o2), Outcome::Duplicate, false),
        decision(&i2, Some(&o2), Outcome::Matched, true),
        // Pending: earning outcome, lock not passed yet.
        decision(&a3, Some(&o3), Outcome::Matched, false),
        decision(&i3, Some(&o3), Outcome::Duplicate, false),
        decision(&ghost, None, Outcome::NoOrder, false),
        decision(&reversed, Some(&o6), Outcome::NetworkReversed, false),
    ];
    let tz = "Europe/Berlin";
    let spend = vec![
        spend(
            "google_ads",
            "2026-11-02",
            "America/New_York",
            ("g-1", "Brand Search"),
            Channel::Search,
            1000,
            40,
            "120.00",
            Some("3"),
            Some("240.00"),
        ),
        spend(
            "google_ads",
            "2026-11-03",
            "America/New_York",
            ("g-2", "Generic"),
            Channel::Search,
            0,
            0,
            "0",
            None,
            None,
        ),
        spend(
            "meta_ads",
            "2026-11-02",
            tz,
            ("m-1", "Prospecting"),
            Channel::Social,
            5000,
            50,
            "75.50",
            Some("2.5"),
            Some("95.00"),
        ),
    ];
    KpiInputs {
        spend,
        claims: vec![a1, i1, a2, i2, a3, i3, ghost, reversed],
        orders: vec![o1, o2, o3, o4, o5, o6, o7, o8],
        decisions,
        reconcile_notes: Vec::new(),
        campaigns: Default::default(),
        claim_campaigns: Default::default(),
        ..Default::default()
    }
}

/// A daemon config in `dir` (data and output under it; Berlin time, a
/// disabled Google Ads connector) writing KPI summaries in `formats` (a
/// TOML array's items, e.g. `"csv", "json"`), loaded as the daemon loads
/// it.
pub fn summaries_daemon_config(dir: &std::path::Path, formats: &str) -> reckon::config::Config {
    let text = format!(
        r#"
[daemon]
data_dir = "data"
output_dir = "out"
timezone = "Europe/Berlin"

[[connectors]]
id = "google_ads"
plugin = "google_ads"
schedule = "0 * * * *"
enabled = false

[kpi]
currency = "EUR"

[kpi.summaries]
formats = [{formats}]
"#
    );
    std::fs::write(dir.join("reckon.toml"), text).expect("config");
    reckon::config::load(&dir.join("reckon.toml")).expect("config")
}
