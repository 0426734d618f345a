//! Reported vs reconciled: two networks claim the same orders; the reported
//! view counts every claim, the reconciled view counts each real order once.
mod kpi_fixtures;

use kpi_fixtures::*;
use plugin_api::ConversionStatus;
use plugin_api::Money;
use reckon::fx::FxTable;
use reckon::kpi::summary::produce;
use reckon::kpi::{summarize, Dim, Format, Metric, Report, Totals, View};
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

/// QA17 NEW-5, QA18: rows without a partner are one per source and name
/// it; one row of every source's spend and the unattributed orders had
/// blank labels and a ROAS blending the two.
#[test]
fn partnerless_rows_are_per_source_and_name_it() {
    let r = both(&[Dim::Partner]);
    let none: std::collections::BTreeMap<_, _> = r
        .rows
        .iter()
        .filter(|x| x.key.partner_id.as_deref() == Some(""))
        .map(|x| (x.key.source.clone().unwrap_or_default(), x))
        .collect();
    assert!(!none.contains_key(""), "{:?}", none.keys());
    let unattributed = none.get("unattributed").expect("an unattributed row");
    let rec = unattributed.reconciled.as_ref().expect("rec");
    assert_eq!(rec.conversions, dec("1"));
    assert_eq!((rec.clicks, rec.spend), (0, Decimal::ZERO));
    // The spend sources have their own rows, with their own ROAS.
    assert!(
        none.contains_key("google_ads") && none.contains_key("meta_ads"),
        "{:?}",
        none.keys()
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
    // With a currency but no rate, the order counts, its revenue is
    // unknown and the note says so.
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
            .any(|n| n.starts_with("1 order in USD has no USD→EUR rate in [fx] on 2026-11-02")),
        "{:?}",
        r.notes
    );
    let rec = r.total.reconciled.expect("rec");
    assert_eq!(rec.conversions, dec("6"));
    assert_eq!(rec.metric(Metric::Revenue), None);
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

/// QA16 F1: a commission without an FX rate (a flat rule in a payout
/// currency with no rate) showed commission 0.00, "the partner earned
/// nothing", and a cost too low on every row holding it. It is unknown
/// now: commission, cost and the ratios built on them are empty on those
/// rows and the total, in every format; the orders still count.
#[test]
fn a_commission_without_a_rate_is_unknown_not_zero() {
    let cfg = config();
    let fx = FxTable::default();
    // awin's flat rule pays in GBP (no GBP→EUR rate), impact's in EUR.
    let rule = |d: &Decision| -> Option<Money> {
        let cur = if d.claim.source == "awin" {
            "GBP"
        } else {
            "EUR"
        };
        Some(Money::new(dec("5.00"), cur))
    };
    let mut c = ctx("Europe/Berlin", &cfg, &fx);
    c.commission = Some(&rule);
    let inputs = two_network_scenario();
    let q = query("2026-11", &[Dim::Partner], View::Reconciled);
    let r = summarize(c, &inputs, &q).expect("summary");
    let partner = |id: &str| {
        r.rows
            .iter()
            .find(|x| x.key.partner_id.as_deref() == Some(id))
            .and_then(|x| x.reconciled)
            .unwrap_or_else(|| panic!("no {id} row"))
    };
    // awin won O1 (100.00) and O3 (50.00).
    let awin = partner("awin:a-1");
    assert_eq!(awin.metric(Metric::Conversions), Some(dec("2")));
    assert_eq!(awin.metric(Metric::Revenue), Some(dec("150.00")));
    let total = r.total.reconciled.expect("total");
    for m in [
        Metric::Commission,
        Metric::Cost,
        Metric::Cpa,
        Metric::Roas,
        Metric::Roi,
    ] {
        assert_eq!(awin.metric(m), None, "awin {m:?}");
        assert_eq!(total.metric(m), None, "total {m:?}");
    }
    let impact = partner("impact:i-9");
    assert_eq!(impact.metric(Metric::Commission), Some(dec("5.00")));
    assert_eq!(impact.metric(Metric::Roas), Some(dec("40")));
    let note = r
        .notes
        .iter()
        .find(|n| n.starts_with("2 reconciled affiliate commissions in GBP have no GBP→EUR rate"))
        .unwrap_or_else(|| panic!("{:?}", r.notes));
    assert!(
        note.contains("on 2 days from 2026-11-02 to 2026-11-04")
            && note.contains("(sources: awin)"),
        "{note}"
    );
    for format in [Format::Table, Format::Csv, Format::Json, Format::Html] {
        let out = produce(c, &inputs, &q, format).expect("render");
        let cell = |row: &str, col: &str| cell(format, &out, row, col);
        assert_eq!(cell("awin:a-1", "commission"), "", "{format:?}");
        assert_eq!(cell("awin:a-1", "roas"), "", "{format:?}");
        assert_eq!(cell("awin:a-1", "conversions"), "2", "{format:?}");
        assert!(
            cell("impact:i-9", "commission").starts_with("5.00"),
            "{format:?}"
        );
        if format != Format::Csv {
            assert_eq!(cell("total", "cost"), "", "{format:?}");
        }
    }
}

/// QA16 F1: orders without an FX rate were left out of their row only:
/// Meta's EUR spend stayed while its USD orders went, so the row's
/// conversions, revenue, ROAS, CPA and CVR were quietly wrong, and one
/// report-wide note did not say which rows. The orders count now; the
/// revenue of the rows holding them (and the total) is unknown, empty in
/// every format (the daemon's summary files are these renderings), not a
/// partial sum; the note names the sources.
#[test]
fn orders_without_a_rate_count_and_leave_their_rows_revenue_empty() {
    let mut inputs = two_network_scenario();
    // O5 (fbclid → meta_ads, 40.00) is in USD, with no USD→EUR rate; a
    // second Meta order, O9, is in EUR.
    for o in inputs.orders.iter_mut().filter(|o| o.order_id == "O5") {
        o.amount.currency = "USD".into();
    }
    inputs.orders.push(order(
        "O9",
        "2026-11-06T12:00:00Z",
        "60.00",
        None,
        &["fbclid-def"],
    ));
    let cfg = config();
    let fx = FxTable::default();
    let c = ctx("Europe/Berlin", &cfg, &fx);
    let q = query("2026-11", &[Dim::Source], View::Reconciled);
    let r = summarize(c, &inputs, &q).expect("summary");
    let source = |id: &str| {
        r.rows
            .iter()
            .find(|x| x.key.source.as_deref() == Some(id))
            .and_then(|x| x.reconciled)
            .unwrap_or_else(|| panic!("no {id} row"))
    };
    let meta = source("meta_ads");
    let total = r.total.reconciled.expect("total");
    assert_eq!(
        meta.metric(Metric::Conversions),
        Some(dec("2")),
        "O5 and O9"
    );
    assert_eq!(meta.metric(Metric::Spend), Some(dec("75.50")));
    assert_eq!(meta.metric(Metric::Cpa), Some(dec("37.75")));
    assert_eq!(meta.metric(Metric::Cvr), Some(dec("0.04")));
    assert_eq!(total.metric(Metric::Conversions), Some(dec("7")));
    for m in [Metric::Revenue, Metric::Roas, Metric::Roi, Metric::Aov] {
        assert_eq!(meta.metric(m), None, "meta {m:?}");
        assert_eq!(total.metric(m), None, "total {m:?}");
    }
    // A row without such an order keeps its revenue.
    assert_eq!(
        source("google_ads").metric(Metric::Revenue),
        Some(dec("80.00"))
    );
    let note = r
        .notes
        .iter()
        .find(|n| n.starts_with("1 order in USD has no USD→EUR rate in [fx] on 2026-11-06:"))
        .unwrap_or_else(|| panic!("{:?}", r.notes));
    assert!(
        note.contains("(sources: meta_ads)") && note.contains("still count as conversions"),
        "{note}"
    );
    for format in [Format::Table, Format::Csv, Format::Json, Format::Html] {
        let out = produce(c, &inputs, &q, format).expect("render");
        let cell = |row: &str, col: &str| cell(format, &out, row, col);
        for col in ["revenue", "roas", "roi", "aov"] {
            assert_eq!(cell("meta_ads", col), "", "{format:?} {col}");
        }
        assert_eq!(cell("meta_ads", "conversions"), "2", "{format:?}");
        assert!(cell("meta_ads", "cpa").starts_with("37.75"), "{format:?}");
        assert!(
            cell("google_ads", "revenue").starts_with("80.00"),
            "{format:?}"
        );
        if format != Format::Csv {
            assert_eq!(cell("total", "revenue"), "", "{format:?}");
        }
    }
}

/// A reported claim whose amounts have no FX rate still counts as a
/// conversion (QA16 F1: it was dropped); its revenue and commission are
/// unknown.
#[test]
fn a_claim_without_a_rate_counts_with_unknown_amounts() {
    let mut inputs = two_network_scenario();
    for c in inputs.claims.iter_mut().filter(|c| c.external_id == "aw-1") {
        c.sale_amount = Some(Money::new(dec("100.00"), "USD"));
        c.commission = Some(Money::new(dec("10.00"), "USD"));
    }
    let cfg = config();
    let fx = FxTable::default();
    let r = summarize(
        ctx("Europe/Berlin", &cfg, &fx),
        &inputs,
        &query("2026-11", &[Dim::Source], View::Reported),
    )
    .expect("summary");
    let awin = r
        .rows
        .iter()
        .find(|x| x.key.source.as_deref() == Some("awin"))
        .and_then(|x| x.reported)
        .expect("awin");
    assert_eq!(awin.metric(Metric::Conversions), Some(dec("4")));
    for m in [
        Metric::Revenue,
        Metric::Commission,
        Metric::Cpa,
        Metric::Roas,
    ] {
        assert_eq!(awin.metric(m), None, "{m:?}");
    }
    for want in [
        "1 claim's sale amount in USD has no USD→EUR rate",
        "1 claim's commission in USD has no USD→EUR rate",
    ] {
        assert!(
            r.notes.iter().any(|n| n.starts_with(want)),
            "{want}: {:?}",
            r.notes
        );
    }
}

/// A spend row without an FX rate keeps its impressions and clicks (QA16
/// F1: the whole row was dropped); its spend is unknown on both sides.
/// `--view both` reads each spend row twice (once per side): the note
/// counts it once (regression: counted twice).
#[test]
fn a_spend_row_without_a_rate_keeps_its_counts_and_is_noted_once() {
    let mut inputs = two_network_scenario();
    inputs.spend[0].spend.currency = "USD".into();
    inputs.spend[0].platform_conversion_value = None;
    let cfg = config();
    let fx = FxTable::default();
    for view in [View::Both, View::Reported, View::Reconciled] {
        let r = summarize(
            ctx("Europe/Berlin", &cfg, &fx),
            &inputs,
            &query("2026-11", &[Dim::Source], view),
        )
        .expect("summary");
        let notes: Vec<_> = r
            .notes
            .iter()
            .filter(|n| {
                n.starts_with("1 spend row in USD has no USD→EUR rate in [fx] on 2026-11-02")
            })
            .collect();
        assert_eq!(notes.len(), 1, "{view:?}: {:?}", r.notes);
        assert!(notes[0].contains("(sources: google_ads)"), "{}", notes[0]);
        let google = r
            .rows
            .iter()
            .find(|x| x.key.source.as_deref() == Some("google_ads"))
            .expect("google row");
        for t in [google.reported, google.reconciled].into_iter().flatten() {
            assert_eq!(t.metric(Metric::Impressions), Some(dec("1000")), "{view:?}");
            assert_eq!(t.metric(Metric::Clicks), Some(dec("40")), "{view:?}");
            for m in [Metric::Spend, Metric::Cost, Metric::Cpc, Metric::Roas] {
                assert_eq!(t.metric(m), None, "{view:?} {m:?}");
            }
        }
    }
}

/// The text of cell `col` on the row with a dimension value `row` (`total`
/// for the total; CSV has none), as `format` shows it: empty for an empty
/// cell (JSON `null`). Single-view reports (column names are metric names).
fn cell(format: Format, out: &str, row: &str, col: &str) -> String {
    match format {
        Format::Csv => {
            let header: Vec<&str> = out.lines().next().expect("header").split(',').collect();
            let i = header.iter().position(|h| *h == col).expect("column");
            let line = out
                .lines()
                .find(|l| l.split(',').any(|c| c == row))
                .unwrap_or_else(|| panic!("no {row} in {out}"));
            line.split(',').nth(i).expect("cell").to_owned()
        }
        Format::Json => {
            let v: serde_json::Value = serde_json::from_str(out).expect("json");
            let r = if row == "total" {
                &v["total"]
            } else {
                v["rows"]
                    .as_array()
                    .expect("rows")
                    .iter()
                    .find(|r| {
                        ["channel", "source", "partner_id"]
                            .iter()
                            .any(|k| r[k] == row)
                    })
                    .unwrap_or_else(|| panic!("no {row} in {out}"))
            };
            let side = r
                .as_object()
                .and_then(|o| o.get("reconciled").or(o.get("reported")))
                .expect("side");
            side[col].as_str().unwrap_or_default().to_owned()
        }
        Format::Html => {
            let cells = |tr: &str| -> Vec<String> {
                tr.split("</t")
                    .filter_map(|c| c.rsplit_once('>').map(|(_, v)| v.to_owned()))
                    .collect()
            };
            let header = out
                .lines()
                .find(|l| l.starts_with("<thead>"))
                .expect("header");
            let i = cells(header).iter().position(|h| h == col).expect("column");
            let line = out
                .lines()
                .find(|l| l.starts_with("<tr") && cells(l).iter().any(|c| c == row))
                .unwrap_or_else(|| panic!("no {row} in {out}"));
            cells(line)[i].clone()
        }
        Format::Table => {
            // Right-aligned under its header: the header's last character
            // is the cell's. The table may be split in two (amounts,
            // ratios): take the part whose header has the column.
            let lines: Vec<&str> = out.lines().collect();
            for (h, header) in lines.iter().enumerate() {
                // A header is followed by its rule.
                if !lines.get(h + 1).is_some_and(|l| l.starts_with("---")) {
                    continue;
                }
                let Some(end) = header
                    .match_indices(col)
                    .map(|(i, _)| i + col.len())
                    .find(|&e| {
                        header[..e].ends_with(&format!(" {col}"))
                            && header[e..].chars().next().is_none_or(|c| c == ' ')
                    })
                else {
                    continue;
                };
                let line = lines[h + 1..]
                    .iter()
                    .take_while(|l| !l.is_empty())
                    .find(|l| l.split_whitespace().any(|t| t == row))
                    .unwrap_or_else(|| panic!("no {row} under {header:?} ({col}) in {out}"));
                let upto = line.get(..end).unwrap_or(line);
                return if upto.ends_with(' ') || upto.len() < end {
                    String::new()
                } else {
                    upto.rsplit(' ').next().unwrap_or_default().to_owned()
                };
            }
            panic!("no column {col} in {out}")
        }
    }
}

/// QA16 F4: with `[kpi] currency = "JPY"` the table and HTML showed
/// fractional yen (`267739.81`) while CSV and JSON rounded to whole yen.
/// Money sums follow the currency's minor unit in every format now.
#[test]
fn yen_are_whole_in_the_table_and_html_too() {
    let mut r = both(&[Dim::Channel]);
    r.query.view = View::Reported;
    r.currency = "JPY".into();
    let row = &mut r.rows[0];
    row.reconciled = None;
    row.reported = Some(Totals {
        clicks: 10,
        spend: dec("267739.81"),
        ..Totals::default()
    });
    let channel = row.key.channel.clone().expect("channel");
    for format in [Format::Table, Format::Csv, Format::Json, Format::Html] {
        let out = reckon::kpi::render::render(format, &r, None).expect("render");
        assert_eq!(
            cell(format, &out, &channel, "spend"),
            "267740",
            "{format:?}"
        );
        assert!(!out.contains("267739.8"), "{format:?}: {out}");
    }
    let table = reckon::kpi::render::table(&r);
    // CPC is a ratio: 2 places (in the table and HTML), whatever the currency.
    assert_eq!(cell(Format::Table, &table, &channel, "cpc"), "26773.98");
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
