//! Regression tests for the KPI findings of QA round 6 (`qa6-kpi-report`),
//! each named after what went wrong, over the library (no binary needed).
mod kpi_fixtures;

use kpi_fixtures::*;
use plugin_api::{Channel, ConversionStatus};
use reckon::fx::FxTable;
use reckon::kpi::render::csv;
use reckon::kpi::{summarize, CampaignIndex, Dim, KpiInputs, Metric, Report, ReportRow, View};
use rust_decimal::Decimal;

fn report(inputs: &KpiInputs, period: &str, by: &[Dim], view: View) -> Report {
    let cfg = config();
    let fx = FxTable::default();
    summarize(
        ctx("Europe/Berlin", &cfg, &fx),
        inputs,
        &query(period, by, view),
    )
    .expect("summary")
}

fn find(r: &Report, f: impl Fn(&ReportRow) -> bool) -> &ReportRow {
    r.rows
        .iter()
        .find(|x| f(x))
        .unwrap_or_else(|| panic!("no such row in {:#?}", r.rows))
}

/// F5: a claim without a sale amount (CAKE) is revenue unknown, not 0.00:
/// revenue, ROAS, ROI and AOV (and the revenue difference) are empty on
/// the rows holding it, and a note counts such claims.
#[test]
fn a_claim_without_a_sale_amount_leaves_reported_revenue_empty_not_zero() {
    let mut cake = claim(
        "cake",
        "ck-1",
        "O1",
        ("c-7", "Deals"),
        "2026-11-02T10:00:00Z",
        "1.00",
        "9.00",
        ConversionStatus::Approved,
    );
    cake.sale_amount = None;
    let mut inputs = two_network_scenario();
    inputs.claims.push(cake);
    let r = report(&inputs, "2026-11", &[Dim::Source], View::Both);
    let row = find(&r, |x| x.key.source.as_deref() == Some("cake"));
    let rep = row.reported.expect("reported");
    assert_eq!(rep.conversions, Decimal::ONE);
    assert_eq!(rep.commission, dec("9.00"));
    for m in [Metric::Revenue, Metric::Roas, Metric::Roi, Metric::Aov] {
        assert_eq!(rep.metric(m), None, "{m:?} of unknown revenue");
    }
    // CPA does not need the revenue.
    assert_eq!(rep.metric(Metric::Cpa), Some(dec("9")));
    // The other networks keep theirs; the total (which holds the claim)
    // has no reported revenue either: a partial sum would be wrong.
    let awin = find(&r, |x| x.key.source.as_deref() == Some("awin"));
    assert!(awin
        .reported
        .expect("rep")
        .metric(Metric::Revenue)
        .is_some());
    assert_eq!(r.total.reported.expect("rep").metric(Metric::Revenue), None);
    assert!(r
        .total
        .reconciled
        .expect("rec")
        .metric(Metric::Revenue)
        .is_some());
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("1 claim reported no sale amount")),
        "{:?}",
        r.notes
    );
    // CSV: empty cells, the difference too (never 0.00 or a made-up diff).
    let text = csv(&r).expect("csv");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    let line = text
        .lines()
        .find(|l| l.starts_with("cake,"))
        .expect("cake line");
    let cells: Vec<&str> = line.split(',').collect();
    for col in [
        "revenue_reported",
        "revenue_diff",
        "roas_reported",
        "roi_reported",
        "aov_reported",
    ] {
        let i = header.iter().position(|h| *h == col).expect(col);
        assert_eq!(cells[i], "", "{col} in {line}");
    }
}

/// F5, ad side: a spend row with conversions but no conversion value (TikTok
/// without a `conversion_value_metric`) is revenue unknown; a row with 0
/// conversions and no value is a known 0.00.
#[test]
fn a_spend_row_without_a_conversion_value_leaves_reported_revenue_empty() {
    let mut inputs = two_network_scenario();
    inputs.spend.push(spend(
        "tiktok_ads",
        "2026-11-03",
        "Europe/Berlin",
        ("t-1", "Video"),
        Channel::Video,
        800,
        20,
        "30.00",
        Some("4"),
        None,
    ));
    inputs.spend.push(spend(
        "tiktok_zero",
        "2026-11-03",
        "Europe/Berlin",
        ("t-2", "Idle"),
        Channel::Video,
        100,
        2,
        "3.00",
        Some("0"),
        None,
    ));
    let r = report(&inputs, "2026-11", &[Dim::Source], View::Reported);
    let tt = find(&r, |x| x.key.source.as_deref() == Some("tiktok_ads"))
        .reported
        .expect("rep");
    assert_eq!(tt.conversions, dec("4"));
    assert_eq!(tt.metric(Metric::Revenue), None);
    assert_eq!(tt.metric(Metric::Roas), None);
    let zero = find(&r, |x| x.key.source.as_deref() == Some("tiktok_zero"))
        .reported
        .expect("rep");
    assert_eq!(zero.metric(Metric::Revenue), Some(Decimal::ZERO));
    assert!(
        r.notes.iter().any(|n| n.starts_with(
            "1 spend row with conversions has no platform conversion value on 2026-11-03 (sources: tiktok_ads; no value metric configured, or the platform sent none)"
        )),
        "{:?}",
        r.notes
    );
}

/// QA28-D F1, F2: a spend row with clicks but no conversion figure
/// (TikTok's `"-"`) counted as 0 conversions, a CVR of 0 % beside an
/// unknown revenue; its conversions are unknown, and the note names the
/// day and source instead of blaming the config. F3: a row whose spend is
/// a known 0.00 has a CPA of 0.00, as its CPC is.
#[test]
fn unknown_conversions_are_empty_not_zero_and_a_zero_cost_is_a_cost() {
    let mut inputs = two_network_scenario();
    inputs.spend.push(spend(
        "tiktok_ads",
        "2026-11-03",
        "Europe/Berlin",
        ("t-1", "Brand"),
        Channel::Video,
        500,
        5,
        "0.00",
        None,
        None,
    ));
    inputs.spend.push(spend(
        "view_through",
        "2026-11-03",
        "Europe/Berlin",
        ("v-1", "Promo"),
        Channel::Video,
        0,
        0,
        "0.00",
        Some("1"),
        None,
    ));
    let r = report(&inputs, "2026-11", &[Dim::Source], View::Reported);
    let tt = find(&r, |x| x.key.source.as_deref() == Some("tiktok_ads"))
        .reported
        .expect("rep");
    for m in [
        Metric::Conversions,
        Metric::Cvr,
        Metric::Cpa,
        Metric::Revenue,
        Metric::Aov,
    ] {
        assert_eq!(tt.metric(m), None, "{m:?}");
    }
    assert_eq!(tt.metric(Metric::Cpc), Some(Decimal::ZERO));
    assert_eq!(tt.metric(Metric::Ctr), Some(dec("0.01")));
    assert!(
        r.notes.iter().any(|n| n.starts_with(
            "1 spend row with clicks or impressions has no conversion figure on 2026-11-03 (sources: tiktok_ads; the platform sent none, e.g. TikTok's `-`, or the connector's settings turn conversion counting off"
        )),
        "{:?}",
        r.notes
    );
    // The total holds the unknown row: its conversions are unknown too.
    assert_eq!(r.total.reported.expect("total").metric(Metric::Cvr), None);
    let vt = find(&r, |x| x.key.source.as_deref() == Some("view_through"))
        .reported
        .expect("rep");
    assert_eq!(vt.metric(Metric::Cpa), Some(Decimal::ZERO));
}

/// QA40b B-M1: a spend row with no conversion figure but a conversion
/// value (TikTok with `conversion_metric = ""` and a value metric) has
/// unknown conversions, CVR, CPA and AOV, and a known revenue, ROAS and
/// ROI; the note says revenue, ROAS and ROI are empty only where no value
/// was sent (it said they were empty, above a row that showed them).
#[test]
fn a_row_with_a_value_but_no_conversion_count_keeps_its_revenue() {
    let mut inputs = two_network_scenario();
    inputs.spend.push(spend(
        "tiktok_ads",
        "2026-11-03",
        "Europe/Berlin",
        ("t-1", "Brand"),
        Channel::Video,
        500,
        5,
        "10.00",
        None,
        Some("80.00"),
    ));
    let r = report(&inputs, "2026-11", &[Dim::Source], View::Reported);
    let tt = find(&r, |x| x.key.source.as_deref() == Some("tiktok_ads"))
        .reported
        .expect("rep");
    for m in [Metric::Conversions, Metric::Cvr, Metric::Cpa, Metric::Aov] {
        assert_eq!(tt.metric(m), None, "{m:?}");
    }
    assert_eq!(tt.metric(Metric::Revenue), Some(dec("80.00")));
    assert_eq!(tt.metric(Metric::Roas), Some(dec("8")));
    assert!(
        r.notes.iter().any(|n| n.contains(
            "reported conversions, CVR, CPA and AOV are empty on the rows holding them and on the total (unknown, not 0), and so are revenue, ROAS and ROI where the platform sent no conversion value either."
        )),
        "{:?}",
        r.notes
    );
}

/// Finance QA29 F2: a winning claim without any commission figure (a
/// tiered rule, whose rate depends on the period's volume, and a network
/// that reported none) counted 0.00: a partner its statement paid 40.00
/// showed commission 0.00 and CPA 0. Unknown, not free: in both views.
#[test]
fn a_conversion_without_a_commission_figure_is_unknown_cost_not_zero() {
    let mut inputs = two_network_scenario();
    for c in &mut inputs.claims {
        if c.external_id == "aw-1" {
            c.commission = None;
        }
    }
    for d in &mut inputs.decisions {
        if d.claim.id == "aw-1" {
            d.network_commission = None;
        }
    }
    let r = report(&inputs, "2026-11", &[Dim::Source], View::Both);
    let awin = find(&r, |x| x.key.source.as_deref() == Some("awin"));
    for view in [awin.reported.expect("rep"), awin.reconciled.expect("rec")] {
        for m in [
            Metric::Commission,
            Metric::Cost,
            Metric::Cpa,
            Metric::Roas,
            Metric::Roi,
        ] {
            assert_eq!(view.metric(m), None, "{m:?}");
        }
        assert!(view.metric(Metric::Conversions).is_some());
    }
    let impact = find(&r, |x| x.key.source.as_deref() == Some("impact"));
    assert!(impact
        .reconciled
        .expect("rec")
        .metric(Metric::Commission)
        .is_some());
    for note in [
        "1 claim reported no commission: reported commission, cost, CPA, ROAS, ROI and EPC are empty",
        "1 reconciled affiliate conversion has no commission figure (a tiered rule",
    ] {
        assert!(
            r.notes.iter().any(|n| n.starts_with(note)),
            "{note}: {:?}",
            r.notes
        );
    }
}

/// F2: orders no rule attributes (direct) came without an ad click: on a
/// row that also holds ad clicks (the total; the partner-less row of
/// `--by partner` until QA18 made those rows per source) CVR and CPA are
/// empty instead of counting them as the ads' conversions.
#[test]
fn direct_orders_are_not_divided_by_ad_clicks() {
    let inputs = two_network_scenario();
    let r = report(&inputs, "2026-11", &[Dim::Partner], View::Reconciled);
    let rec = r.total.reconciled.expect("rec");
    assert!(rec.clicks > 0 && rec.unattributed_facts > 0, "{rec:?}");
    assert_eq!(rec.metric(Metric::Cvr), None);
    assert_eq!(rec.metric(Metric::Cpa), None);
    // Cost-based ratios that do not count conversions stay.
    assert!(rec.metric(Metric::Roas).is_some());
    // A row of ad-attributed orders only keeps CVR and CPA.
    let r = report(&inputs, "2026-11", &[Dim::Channel], View::Reconciled);
    let search = find(&r, |x| x.key.channel.as_deref() == Some("search"))
        .reconciled
        .expect("rec");
    assert_eq!(search.metric(Metric::Cvr), Some(dec("0.025")));
    assert_eq!(search.metric(Metric::Cpa), Some(dec("120")));
}

fn renamed_campaign() -> KpiInputs {
    let mut inputs = two_network_scenario();
    // g-1 "Brand Search" renamed on the platform on 11-04.
    inputs.spend.push(spend(
        "google_ads",
        "2026-11-04",
        "America/New_York",
        ("g-1", "Brand Search 2027"),
        Channel::Search,
        100,
        4,
        "4.00",
        Some("0"),
        Some("0"),
    ));
    inputs
}

/// F4: a renamed campaign is one `campaign` row (source, id) with its
/// latest name; an order quoting the old name is still found.
#[test]
fn a_renamed_campaign_is_one_row_with_its_latest_name() {
    let inputs = renamed_campaign();
    let r = report(&inputs, "2026-11", &[Dim::Campaign], View::Both);
    let g1: Vec<_> = r
        .rows
        .iter()
        .filter(|x| x.key.campaign_id.as_deref() == Some("g-1"))
        .collect();
    assert_eq!(g1.len(), 1, "{g1:#?}");
    assert_eq!(g1[0].key.campaign.as_deref(), Some("Brand Search 2027"));
    let rec = g1[0].reconciled.expect("rec");
    assert_eq!(rec.spend, dec("124.00"));
    assert_eq!(rec.clicks, 44);
    // O4 (utm_campaign "brand search", the old name) is g-1's.
    assert_eq!(rec.conversions, Decimal::ONE);
    assert_eq!(rec.metric(Metric::Cpa), Some(dec("124")));
}

/// F10: an order's campaign and channel come from the campaign index (all
/// stored spend rows), not the period's spend rows: a day without spend
/// of the campaign gives the same answer as the month.
#[test]
fn an_orders_campaign_and_channel_do_not_depend_on_the_period() {
    let mut inputs = two_network_scenario();
    let mut index = CampaignIndex::default();
    for s in &inputs.spend {
        index.add(s);
    }
    inputs.campaigns = index;
    // As `load_inputs` gives them for 11-05: no spend row that day.
    let mut day = inputs.clone();
    day.spend.clear();
    let by = [Dim::Channel, Dim::Source, Dim::Campaign];
    let r = report(&day, "2026-11-05..2026-11-05", &by, View::Reconciled);
    let o4 = find(&r, |x| x.key.source.as_deref() == Some("google_ads"));
    assert_eq!(o4.key.channel.as_deref(), Some("search"));
    assert_eq!(o4.key.campaign_id.as_deref(), Some("g-1"));
    assert_eq!(o4.key.campaign.as_deref(), Some("Brand Search"));
    let month = report(&inputs, "2026-11", &by, View::Reconciled);
    let m4 = find(&month, |x| x.key.campaign_id.as_deref() == Some("g-1"));
    assert_eq!(m4.key, o4.key);
}

/// F7: rows are sorted by the dimensions in `--by` order.
#[test]
fn rows_are_sorted_in_by_order() {
    let inputs = two_network_scenario();
    let r = report(&inputs, "2026-11", &[Dim::Channel, Dim::Day], View::Both);
    let keys: Vec<(String, String)> = r
        .rows
        .iter()
        .map(|x| {
            (
                x.key.channel.clone().unwrap_or_default(),
                x.key.day.map(|d| d.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // Not the old fixed order (day first): the channels are contiguous.
    assert!(keys.windows(2).any(|w| w[0].1 > w[1].1), "{keys:?}");
}

/// F8: a partner row keeps its source when `--by` also has `campaign` and
/// the claim has no campaign id.
#[test]
fn a_partner_row_without_a_campaign_keeps_its_source() {
    let mut inputs = two_network_scenario();
    for c in &mut inputs.claims {
        c.campaign_id = None;
    }
    let r = report(
        &inputs,
        "2026-11",
        &[Dim::Partner, Dim::Campaign],
        View::Reported,
    );
    let awin = find(&r, |x| x.key.partner_id.as_deref() == Some("awin:a-1"));
    assert_eq!(awin.key.source.as_deref(), Some("awin"));
    assert_eq!(awin.key.campaign_id.as_deref(), Some(""));
}

/// QA new-user F21: a claim in October for an order of November lost its
/// campaign in November's reconciled view (its claim is not among the
/// period's): an `awin` row with no campaign appeared on every month
/// boundary. `load_inputs` now reads such claims' campaigns from the store
/// (`claim_campaigns`); here they are given as it would.
#[test]
fn an_orders_claim_outside_the_period_keeps_its_campaign() {
    let mut inputs = two_network_scenario();
    let moved: Vec<_> = inputs
        .claims
        .iter()
        .filter(|c| c.source == "awin")
        .cloned()
        .collect();
    assert!(!moved.is_empty());
    inputs.claims.retain(|c| c.source != "awin");
    for c in &moved {
        inputs.claim_campaigns.insert(
            (c.source.clone(), c.external_id.clone()),
            c.campaign_id.clone().expect("campaign"),
        );
    }
    let r = report(
        &inputs,
        "2026-11",
        &[Dim::Source, Dim::Campaign],
        View::Reconciled,
    );
    assert!(
        !r.rows
            .iter()
            .any(|x| x.key.source.as_deref() == Some("awin")
                && x.key.campaign_id.as_deref() == Some("")),
        "{:#?}",
        r.rows
    );
    let awin = find(&r, |x| x.key.campaign_id.as_deref() == Some("awin-prog"));
    assert!(awin.reconciled.expect("reconciled").conversions > Decimal::ZERO);
}

/// QA24 F7: amounts below the 10^15 bound, converted at a large rate and
/// summed over enough orders, passed `Decimal`'s range and `reckon kpi`
/// panicked ("Addition overflowed"). The summary is now refused with an
/// error that says where to look.
#[test]
fn sums_beyond_the_decimal_range_are_an_error_not_a_panic() {
    let cfg: reckon::kpi::config::KpiConfig =
        toml::from_str("currency = \"USD\"").expect("kpi config");
    // A rate no [fx] config accepts (it must be below 10^9), so that eight
    // orders suffice: 8 × 999,999,999,999,999 × 10^13 ≈ 8 × 10^28.
    let fx = FxTable::from_rates(
        [(
            day("2026-11-01"),
            "EUR".to_owned(),
            "USD".to_owned(),
            Decimal::from(10_000_000_000_000u64),
        )],
        7,
    );
    let orders = (0..8)
        .map(|i| {
            order(
                &format!("O{i}"),
                "2026-11-02T10:00:00Z",
                "999999999999999",
                None,
                &[],
            )
        })
        .collect();
    let inputs = KpiInputs {
        orders,
        ..KpiInputs::default()
    };
    let got = summarize(
        ctx("UTC", &cfg, &fx),
        &inputs,
        &query("2026-11", &[Dim::Day], View::Reconciled),
    );
    let e = got.expect_err("an overflowing sum is refused").to_string();
    assert!(e.contains("add up beyond the largest number"), "{e}");
    assert!(e.contains("USD"), "{e}");
    // Seven fit: the same data less one order sums.
    let fewer = KpiInputs {
        orders: inputs.orders[..7].to_vec(),
        ..KpiInputs::default()
    };
    assert!(summarize(
        ctx("UTC", &cfg, &fx),
        &fewer,
        &query("2026-11", &[Dim::Day], View::Reconciled)
    )
    .is_ok());
}

/// QA40b B-L1: a partner's name in a row came from the first claim the
/// row met, or the partner id when that claim had no name, so one partner
/// was "Pub One" on one day and "p1" on the next. Every row of a partner
/// now carries one name: the last in claim key order, whatever the period
/// (as statements name payees).
#[test]
fn every_row_of_a_partner_carries_one_name() {
    let mut inputs = KpiInputs::default();
    let named = claim(
        "s2s",
        "C1",
        "O1",
        ("p1", "Pub One"),
        "2026-11-02T10:00:00Z",
        "100.00",
        "10.00",
        ConversionStatus::Approved,
    );
    let mut unnamed = claim(
        "s2s",
        "C5",
        "O5",
        ("p1", ""),
        "2026-11-03T16:00:00Z",
        "50.00",
        "5.00",
        ConversionStatus::Approved,
    );
    unnamed.partner_name = None;
    inputs.claims = vec![named, unnamed];
    let names = |period: &str| -> Vec<(Option<chrono::NaiveDate>, String)> {
        let r = report(&inputs, period, &[Dim::Day, Dim::Partner], View::Reported);
        (r.rows.iter())
            .map(|x| (x.key.day, x.key.partner.clone().unwrap_or_default()))
            .collect()
    };
    assert_eq!(
        names("2026-11"),
        [
            (Some(day("2026-11-02")), "Pub One".to_owned()),
            (Some(day("2026-11-03")), "Pub One".to_owned()),
        ]
    );
    // A period holding only the unnamed claim still names the partner.
    assert_eq!(
        names("2026-11-03..2026-11-03"),
        [(Some(day("2026-11-03")), "Pub One".to_owned())]
    );
}
