//! Reported vs reconciled: two networks claim the same orders; the reported
//! view counts every claim, the reconciled view counts each real order once.
mod kpi_fixtures;

use kpi_fixtures::*;
use plugin_api::ConversionStatus;
use plugin_api::Money;
use reckon::fx::FxTable;
use reckon::kpi::{summarize, Dim, Metric, Report, Totals, View};
use reckon::reconcile::model::{Decision, Outcome};
use rust_decimal::Decimal;

fn both(by: &[Dim]) -> Report {
    let cfg = config();
    let fx = FxTable::default();
    summarize(
        ctx("Europe/Berlin", &cfg, &fx),
        &two_network_scenario(),
        &query("2026-11", by, View::Both),
    )
    .expect("summary")
}

fn channel<'a>(r: &'a Report, c: &str) -> (&'a Totals, &'a Totals) {
    let row = r
        .rows
        .iter()
        .find(|x| x.key.channel.as_deref() == Some(c))
        .unwrap_or_else(|| panic!("no {c} row"));
    (
        row.reported.as_ref().expect("rep"),
        row.reconciled.as_ref().expect("rec"),
    )
}

#[test]
fn reconciled_conversions_equal_the_real_orders() {
    let r = both(&[Dim::Channel]);
    let rec = r.total.reconciled.expect("reconciled total");
    let rep = r.total.reported.expect("reported total");
    // O1..O6 are real; O7 is cancelled and O8 fully refunded.
    assert_eq!(rec.conversions, dec("6"));
    assert_eq!(rec.revenue, dec("500.00"));
    // Every platform counts its own: 3 + 2.5 platform conversions, 7 live claims.
    assert_eq!(rep.conversions, dec("12.5"));
    // Ad spend is the same fact in both views.
    assert_eq!(rep.spend, rec.spend);
    assert_eq!(rec.spend, dec("195.50"));
}

#[test]
fn affiliate_claims_are_deduplicated_across_networks() {
    let r = both(&[Dim::Channel]);
    let (rep, rec) = channel(&r, "affiliate");
    assert_eq!(
        rep.conversions,
        dec("7"),
        "six claims on three orders plus one for a missing order"
    );
    assert_eq!(rep.revenue, dec("770.00"));
    assert_eq!(rep.commission, dec("84.00"));
    assert_eq!(
        rec.conversions,
        dec("3"),
        "O1, O2, O3 once each (O3 pending)"
    );
    assert_eq!(rec.revenue, dec("350.00"));
    assert_eq!(
        rec.commission,
        dec("39.00"),
        "winners' network commission 10 + 24 + 5"
    );
    assert_eq!(rec.metric(Metric::Cpa), Some(dec("13")));
    assert_eq!(rep.metric(Metric::Cpa), Some(dec("12")));
}

#[test]
fn orders_are_attributed_by_utm_and_click_id_rules() {
    let r = both(&[Dim::Channel, Dim::Source, Dim::Campaign]);
    let find = |src: &str| {
        r.rows
            .iter()
            .filter(|x| x.key.source.as_deref() == Some(src))
            .map(|x| {
                (
                    x.key.campaign_id.clone().unwrap_or_default(),
                    x.key.campaign.clone().unwrap_or_default(),
                    x.reconciled.expect("rec").conversions,
                )
            })
            .filter(|(_, _, c)| !c.is_zero())
            .collect::<Vec<_>>()
    };
    // utm_source "Google" + utm_campaign "brand search" → google_ads g-1 by name.
    assert_eq!(
        find("google_ads"),
        vec![("g-1".into(), "Brand Search".into(), dec("1"))]
    );
    // click id "fbclid-abc" → meta_ads; no utm_campaign, so no campaign.
    assert_eq!(
        find("meta_ads"),
        vec![(String::new(), String::new(), dec("1"))]
    );
    assert_eq!(
        find("unattributed"),
        vec![(String::new(), String::new(), dec("1"))]
    );
    let by_channel = both(&[Dim::Channel]);
    let (rep, rec) = channel(&by_channel, "search");
    assert_eq!((rep.conversions, rec.conversions), (dec("3"), dec("1")));
}

#[test]
fn partners_get_only_the_orders_they_won() {
    let r = both(&[Dim::Partner]);
    let p = |id: &str| {
        r.rows
            .iter()
            .find(|x| x.key.partner_id.as_deref() == Some(id))
            .map(|x| {
                (
                    x.key.partner.clone().unwrap_or_default(),
                    x.reported.expect("rep").conversions,
                    x.reconciled.expect("rec").conversions,
                )
            })
            .expect("partner row")
    };
    assert_eq!(p("awin:a-1"), ("Coupon Site".into(), dec("4"), dec("2")));
    assert_eq!(
        p("impact:i-9"),
        ("Cashback Club".into(), dec("3"), dec("1"))
    );
}

#[test]
fn difference_and_notes_are_reported() {
    let r = both(&[Dim::Channel]);
    let csv = reckon::kpi::render::csv(&r).expect("csv");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "conversions_diff")
        .expect("diff column");
    let aff = csv
        .lines()
        .find(|l| l.starts_with("affiliate,"))
        .expect("affiliate line");
    assert_eq!(aff.split(',').nth(col), Some("-4"));
    let notes = r.notes.join("\n");
    for want in [
        "1 cancelled order not counted.",
        "1 fully refunded order not counted",
        "1 order matches no affiliate claim and no [[kpi.attribution]] rule",
        "Commission of 3 reconciled affiliate conversions is the network's reported commission",
    ] {
        assert!(notes.contains(want), "missing note {want:?} in\n{notes}");
    }
}

#[test]
fn commission_rules_take_precedence_over_network_commission() {
    let cfg = config();
    let fx = FxTable::default();
    // 10 % of the decision's basis, as a program's CPS rule would compute.
    let rule = |d: &Decision| -> Option<Money> {
        d.basis
            .as_ref()
            .map(|b| Money::new(b.amount * Decimal::new(10, 2), b.currency.as_str()))
    };
    let mut c = ctx("Europe/Berlin", &cfg, &fx);
    c.commission = Some(&rule);
    let r = summarize(
        c,
        &two_network_scenario(),
        &query("2026-11", &[Dim::Channel], View::Reconciled),
    )
    .expect("summary");
    let aff = r
        .rows
        .iter()
        .find(|x| x.key.channel.as_deref() == Some("affiliate"))
        .and_then(|x| x.reconciled)
        .expect("affiliate");
    assert_eq!(aff.commission, dec("35.000"));
    assert!(
        !r.notes
            .iter()
            .any(|n| n.contains("network's reported commission")),
        "{:?}",
        r.notes
    );
    assert!(r.rows.iter().all(|x| x.reported.is_none()));
}

#[test]
fn mixed_currencies_need_a_reporting_currency() {
    let mut inputs = two_network_scenario();
    inputs.orders[0].amount.currency = "USD".into();
    let mut cfg = config();
    cfg.currency = None;
    let fx = FxTable::default();
    let err = summarize(
        ctx("UTC", &cfg, &fx),
        &inputs,
        &query("2026-11", &[], View::Both),
    )
    .expect_err("mixed currencies");
    assert!(err.to_string().contains("EUR, USD"), "{err}");
    // With a currency but no rate, the order is left out and the note says so.
    let cfg = config();
    let r = summarize(
        ctx("UTC", &cfg, &fx),
        &inputs,
        &query("2026-11", &[], View::Reconciled),
    )
    .expect("summary");
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("1 order in USD left out: no USD→EUR rate")),
        "{:?}",
        r.notes
    );
    assert_eq!(r.total.reconciled.expect("rec").conversions, dec("5"));
}

#[test]
fn claims_without_a_campaign_share_one_row_in_both_views() {
    // Postback claims carry no campaign id: the reported and reconciled
    // figures of that source must land in the same (empty-campaign) row.
    let mut inputs = two_network_scenario();
    for c in inputs.claims.iter_mut().filter(|c| c.source == "awin") {
        c.campaign_id = None;
    }
    let cfg = config();
    let fx = FxTable::default();
    let r = summarize(
        ctx("Europe/Berlin", &cfg, &fx),
        &inputs,
        &query("2026-11", &[Dim::Source, Dim::Campaign], View::Both),
    )
    .expect("summary");
    let awin: Vec<_> = r
        .rows
        .iter()
        .filter(|x| x.key.source.as_deref() == Some("awin"))
        .collect();
    assert_eq!(
        awin.len(),
        1,
        "{:?}",
        awin.iter().map(|x| &x.key).collect::<Vec<_>>()
    );
    assert!(awin[0].reported.is_some() && awin[0].reconciled.is_some());
}

#[test]
fn csv_dimension_cells_are_guarded_against_spreadsheet_formulas() {
    let mut r = both(&[Dim::Partner]);
    r.rows[0].key.partner = Some("=HYPERLINK(\"http://x\")".into());
    let csv = reckon::kpi::render::csv(&r).expect("csv");
    assert!(csv.contains("\"'=HYPERLINK("), "{csv}");
    // The JSON carries the name as it is.
    let json = reckon::kpi::render::json(&r).expect("json");
    assert!(json.contains("=HYPERLINK("), "{json}");
}

/// A lead recorded as a 0.00 order (README: so a flat per-lead rule pays
/// it) is a conversion with revenue 0.00 and its commission, not a "fully
/// refunded" order (regression: `net <= 0` dropped it).
#[test]
fn a_zero_amount_order_is_a_conversion_not_a_refund() {
    let mut inputs = two_network_scenario();
    let lead = order("L1", "2026-11-10T10:00:00Z", "0.00", None, &[]);
    let c = claim(
        "awin",
        "aw-lead",
        "L1",
        ("a-1", "Coupon Site"),
        "2026-11-10T10:00:00Z",
        "0.00",
        "2.50",
        ConversionStatus::Approved,
    );
    inputs
        .decisions
        .push(decision(&c, Some(&lead), Outcome::Matched, true));
    inputs.claims.push(c);
    // And a lead no claim wins, attributed to Google by UTM.
    inputs.orders.push(order(
        "L2",
        "2026-11-11T10:00:00Z",
        "0.00",
        Some(("google", "g-1")),
        &[],
    ));
    inputs.orders.push(lead);
    let cfg = config();
    let fx = FxTable::default();
    let r = summarize(
        ctx("Europe/Berlin", &cfg, &fx),
        &inputs,
        &query("2026-11", &[Dim::Channel], View::Reconciled),
    )
    .expect("summary");
    let rec = r.total.reconciled.expect("rec");
    assert_eq!(rec.conversions, dec("8"), "O1..O6 and the two leads");
    assert_eq!(rec.revenue, dec("500.00"));
    let (_, aff) = channel_rec(&r, "affiliate");
    assert_eq!(aff.conversions, dec("4"));
    assert_eq!(aff.commission, dec("41.50"), "39.00 + the lead's 2.50");
    let (_, search) = channel_rec(&r, "search");
    assert_eq!(search.conversions, dec("2"), "O4 and the lead L2");
    let notes = r.notes.join("\n");
    assert!(
        notes.contains("1 fully refunded order not counted"),
        "only O8 is fully refunded:\n{notes}"
    );
}

/// A winning claim whose commission has no FX rate: the order still counts
/// (conversion and revenue); only the commission is left out, and noted
/// (regression: the whole order was dropped).
#[test]
fn a_commission_without_a_rate_leaves_out_the_commission_only() {
    let mut inputs = two_network_scenario();
    // aw-1 wins O1 (100.00); its network commission is in USD, no rate.
    let d = inputs
        .decisions
        .iter_mut()
        .find(|d| d.claim.id == "aw-1")
        .expect("aw-1");
    d.network_commission = Some(Money::new(dec("10.00"), "USD"));
    let cfg = config();
    let fx = FxTable::default();
    let r = summarize(
        ctx("Europe/Berlin", &cfg, &fx),
        &inputs,
        &query("2026-11", &[Dim::Channel], View::Reconciled),
    )
    .expect("summary");
    let rec = r.total.reconciled.expect("rec");
    assert_eq!(rec.conversions, dec("6"));
    assert_eq!(rec.revenue, dec("500.00"));
    let (_, aff) = channel_rec(&r, "affiliate");
    assert_eq!(aff.conversions, dec("3"));
    assert_eq!(aff.revenue, dec("350.00"));
    assert_eq!(aff.commission, dec("29.00"), "24 + 5, O1's 10 USD left out");
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("1 affiliate commission in USD left out: no USD→EUR rate")),
        "{:?}",
        r.notes
    );
}

/// `--view both` reads each spend row twice (once per side): a row left out
/// for a missing rate is still one row (regression: counted twice).
#[test]
fn a_spend_row_without_a_rate_is_counted_once_in_both_views() {
    let mut inputs = two_network_scenario();
    inputs.spend[0].spend.currency = "USD".into();
    inputs.spend[0].platform_conversion_value = None;
    let cfg = config();
    let fx = FxTable::default();
    for view in [View::Both, View::Reported, View::Reconciled] {
        let r = summarize(
            ctx("Europe/Berlin", &cfg, &fx),
            &inputs,
            &query("2026-11", &[Dim::Channel], view),
        )
        .expect("summary");
        assert!(
            r.notes
                .iter()
                .any(|n| n.starts_with("1 spend row in USD left out")),
            "{view:?}: {:?}",
            r.notes
        );
    }
}

fn channel_rec<'a>(r: &Report, c: &'a str) -> (&'a str, Totals) {
    let row = r
        .rows
        .iter()
        .find(|x| x.key.channel.as_deref() == Some(c))
        .unwrap_or_else(|| panic!("no {c} row"));
    (c, row.reconciled.expect("rec"))
}

/// A shown difference is the difference of the shown values (regression:
/// 10819.94 → 9032.37 showed −1787.58, rounded from the exact values).
/// CSV/JSON money is rounded to the currency's minor unit (regression:
/// `9032.365`).
#[test]
fn differences_are_those_of_the_shown_values() {
    let mut r = both(&[Dim::Channel]);
    let row = &mut r.rows[0];
    row.reported = Some(Totals {
        commission: dec("10819.944"),
        ..Totals::default()
    });
    row.reconciled = Some(Totals {
        commission: dec("9032.365"),
        ..Totals::default()
    });
    let channel = row.key.channel.clone().expect("channel");
    let table = reckon::kpi::render::table(&r);
    // One table per view, each in two parts (counts and amounts, then
    // ratios): the row's amounts line in the reported, reconciled and
    // difference tables, in that order.
    let lines: Vec<&str> = table.lines().filter(|l| l.starts_with(&channel)).collect();
    assert_eq!(lines.len(), 6, "{table}");
    let amounts = lines.iter().step_by(2);
    for (line, want) in amounts.zip(["10819.94", "9032.37", "-1787.57"]) {
        assert!(line.split_whitespace().any(|c| c == want), "{want}: {line}");
    }
    let csv = reckon::kpi::render::csv(&r).expect("csv");
    assert!(csv.contains(",10819.94,9032.37,-1787.57,"), "{csv}");
    let json = reckon::kpi::render::json(&r).expect("json");
    assert!(json.contains("\"commission\": \"-1787.57\""), "{json}");
    assert!(!json.contains("9032.365"), "{json}");
}

/// Campaign (and partner) keys include the source: the source is shown
/// even when not asked for, or Google's, Meta's and TikTok's "Brand" look
/// like one campaign listed three times.
#[test]
fn campaign_rows_show_their_source() {
    let r = both(&[Dim::Campaign]);
    let csv = reckon::kpi::render::csv(&r).expect("csv");
    assert!(
        csv.starts_with("source,campaign_id,campaign,foreign_days,"),
        "{csv}"
    );
    assert!(csv.contains("\ngoogle_ads,g-1,Brand Search,"), "{csv}");
    let table = reckon::kpi::render::table(&r);
    assert!(table.contains("source"), "{table}");
    let g1 = r
        .rows
        .iter()
        .find(|x| x.key.campaign_id.as_deref() == Some("g-1"))
        .expect("g-1");
    assert_eq!(g1.key.source.as_deref(), Some("google_ads"));
}
