//! The demo story (`reckon_tests::story`): its ground truth checked through
//! the KPI views, and every view and format answered on it.
mod kpi_fixtures;

use std::collections::{BTreeMap, BTreeSet};

use kpi_fixtures::*;
use plugin_api::{Channel, ConversionStatus, OrderStatus};
use reckon::fx::FxTable;
use reckon::kpi::config::KpiConfig;
use reckon::kpi::summary::produce;
use reckon::kpi::{summarize, Dim, Format, KpiInputs, Period, Query, View};
use reckon::reconcile::model::Outcome;
use reckon_tests::story::{self, Intended, Story};
use rust_decimal::Decimal;

fn outcome(i: Intended) -> Outcome {
    match i {
        Intended::Matched => Outcome::Matched,
        Intended::AmountMismatch => Outcome::AmountMismatch,
        Intended::Refunded => Outcome::Refunded,
        Intended::PartiallyRefunded => Outcome::PartiallyRefunded,
        Intended::Duplicate => Outcome::Duplicate,
        Intended::NetworkReversed => Outcome::NetworkReversed,
        Intended::NetworkRejected => Outcome::NetworkRejected,
        Intended::NoOrder => Outcome::NoOrder,
        Intended::AwaitingOrder => Outcome::AwaitingOrder,
    }
}

/// The story as KPI inputs, with the decisions reconciliation should make
/// (the story's intended outcomes stand in for the reconcile engine).
fn inputs(s: &Story) -> KpiInputs {
    let by_id: BTreeMap<&str, &plugin_api::Order> =
        s.orders.iter().map(|o| (o.order_id.as_str(), o)).collect();
    let mut claims = Vec::new();
    let mut decisions = Vec::new();
    for sc in s.claims.values().flatten() {
        let c = &sc.claim;
        let number = c
            .click_id
            .as_deref()
            .and_then(|k| k.split("-clk-").nth(1))
            .unwrap_or("");
        let order = number.parse::<u64>().ok().and_then(|n| {
            by_id
                .get(story::shopify_id(n).to_string().as_str())
                .copied()
        });
        let o = outcome(sc.intended);
        decisions.push(decision(c, order, o, o.earns()));
        claims.push(c.clone());
    }
    KpiInputs {
        spend: spend_rows(s),
        claims,
        orders: s.orders.clone(),
        decisions,
        reconcile_notes: Vec::new(),
        campaigns: Default::default(),
        claim_campaigns: Default::default(),
        ..Default::default()
    }
}

/// Ad spend for the story's days: the ad fakes serve it in the demo; here a
/// fixed pattern per network, each in its account's timezone.
fn spend_rows(s: &Story) -> Vec<plugin_api::Spend> {
    let nets = [
        (
            "google_ads",
            "America/New_York",
            Channel::Search,
            ["g-1", "g-2", "g-3"],
        ),
        (
            "meta_ads",
            "Europe/London",
            Channel::Social,
            ["m-1", "m-2", "m-3"],
        ),
        ("tiktok_ads", "UTC", Channel::Video, ["t-1", "t-2", "t-2"]),
    ];
    let mut rows = Vec::new();
    for (i, d) in s.from.iter_days().take_while(|d| *d <= s.to).enumerate() {
        for (src, tz, channel, campaigns) in nets {
            for (c, camp) in campaigns.iter().enumerate() {
                let clicks = 100 + (i as u64 * 7 + c as u64 * 13) % 50;
                let mut row = spend(
                    src,
                    &d.to_string(),
                    tz,
                    (camp, &format!("Northwind {camp}")),
                    channel,
                    clicks * 40,
                    clicks,
                    &format!("{}.50", clicks * 2),
                    Some(&(clicks / 20).to_string()),
                    Some(&format!("{}.00", clicks / 20 * 90)),
                );
                row.spend.currency = "USD".into();
                if let Some(v) = row.platform_conversion_value.as_mut() {
                    v.currency = "USD".into();
                }
                rows.push(row);
            }
        }
    }
    rows
}

fn kpi_config() -> KpiConfig {
    toml::from_str(
        r#"
        currency = "USD"
        [[attribution]]
        utm_source = "google"
        connector = "google_ads"
        [[attribution]]
        utm_source = "facebook"
        connector = "meta_ads"
        [[attribution]]
        click_id_prefix = "ttclid-"
        connector = "tiktok_ads"
        "#,
    )
    .expect("config")
}

fn story() -> (Story, Period) {
    let s = story::generate(7, 14, day("2026-11-14"));
    let p = Period::new(s.from, s.to).expect("period");
    (s, p)
}

#[test]
fn reconciled_view_matches_the_story_ground_truth() {
    let (s, period) = story();
    let cfg = kpi_config();
    let fx = FxTable::default();
    let inputs = inputs(&s);
    let q = Query {
        period,
        by: vec![Dim::Channel, Dim::Source],
        view: View::Both,
    };
    let r = summarize(ctx("America/New_York", &cfg, &fx), &inputs, &q).expect("summary");

    let real: Vec<_> = s
        .orders
        .iter()
        .filter(|o| !matches!(o.status, OrderStatus::Refunded | OrderStatus::Cancelled))
        .collect();
    let rec_total = r.total.reconciled.expect("rec");
    assert_eq!(rec_total.conversions, Decimal::from(real.len()));
    let revenue: Decimal = real.iter().map(|o| o.amount.amount - o.refunded()).sum();
    assert_eq!(rec_total.revenue, revenue);

    let side = |src: &str, rec: bool| -> Decimal {
        r.rows
            .iter()
            .filter(|x| x.key.source.as_deref() == Some(src))
            .map(|x| {
                if rec { x.reconciled } else { x.reported }
                    .expect("side")
                    .conversions
            })
            .sum()
    };
    // Affiliate: each real order won by an earning claim counts once.
    let won: BTreeSet<&str> = inputs
        .decisions
        .iter()
        .filter(|d| d.outcome.earns())
        .filter_map(|d| d.order.as_ref().map(|o| o.id.as_str()))
        .collect();
    let affiliate_rec: Decimal = story::NETWORKS.iter().map(|n| side(n, true)).sum();
    assert_eq!(affiliate_rec, Decimal::from(won.len()));
    let live_claims = inputs
        .claims
        .iter()
        .filter(|c| {
            matches!(
                c.status,
                ConversionStatus::Pending | ConversionStatus::Approved
            )
        })
        // A network may date a claim before the story's first day (a
        // duplicate's earlier click); the report covers the period's days only.
        .filter(|c| {
            let local = c
                .occurred_at
                .with_timezone(&chrono_tz::America::New_York)
                .date_naive();
            local >= s.from && local <= s.to
        })
        .count();
    let affiliate_rep: Decimal = story::NETWORKS.iter().map(|n| side(n, false)).sum();
    assert_eq!(affiliate_rep, Decimal::from(live_claims));
    assert!(affiliate_rep > affiliate_rec, "networks over-claim");

    // Google: the real orders tagged utm_source=google.
    let google = real
        .iter()
        .filter(|o| o.utm.source.as_deref() == Some("google"))
        .count();
    assert_eq!(side("google_ads", true), Decimal::from(google));

    // Meta (London) and TikTok (UTC) report in other zones than New York.
    assert_eq!(r.zone_labels.len(), 2, "{:?}", r.zone_labels);
    assert!(r.zone_labels[0].starts_with("meta_ads rows are in Europe/London days"));
    assert!(r.zone_labels[1].starts_with("tiktok_ads rows are in UTC days"));
}

#[test]
fn every_view_and_format_answers_on_the_demo_story() {
    let (s, period) = story();
    let cfg = kpi_config();
    let fx = FxTable::default();
    let inputs = inputs(&s);
    let dims = [
        vec![],
        vec![Dim::Day],
        vec![Dim::Channel],
        vec![Dim::Source],
        vec![Dim::Campaign],
        vec![Dim::Partner],
        vec![
            Dim::Day,
            Dim::Channel,
            Dim::Source,
            Dim::Campaign,
            Dim::Partner,
        ],
    ];
    for view in [View::Reported, View::Reconciled, View::Both] {
        for by in &dims {
            for format in [Format::Table, Format::Csv, Format::Json, Format::Html] {
                let q = Query {
                    period,
                    by: by.clone(),
                    view,
                };
                let out = produce(ctx("America/New_York", &cfg, &fx), &inputs, &q, format)
                    .unwrap_or_else(|e| panic!("{view:?} {by:?} {format:?}: {e}"));
                assert!(!out.is_empty());
                if format == Format::Json {
                    serde_json::from_str::<serde_json::Value>(&out).expect("valid JSON");
                }
            }
        }
    }
}
