//! KPI formulas on hand-computed tables, including zero impressions, zero
//! clicks and zero conversions (empty cells, never 0 or infinity).
mod kpi_fixtures;

use kpi_fixtures::*;
use plugin_api::{Channel, ConversionStatus};
use reckon::fx::FxTable;
use reckon::kpi::{summarize, Dim, KpiInputs, Metric, Report, ReportRow, Totals, View};
use rust_decimal::Decimal;

fn table() -> KpiInputs {
    let z = "UTC";
    KpiInputs {
        spend: vec![
            spend(
                "google_ads",
                "2026-11-01",
                z,
                ("g-1", "Brand"),
                Channel::Search,
                1000,
                50,
                "100.00",
                Some("5"),
                Some("400.00"),
            ),
            // Zero impressions, zero clicks, no spend, no conversions.
            spend(
                "google_ads",
                "2026-11-01",
                z,
                ("g-2", "Generic"),
                Channel::Search,
                0,
                0,
                "0",
                None,
                None,
            ),
            // Impressions but zero clicks and zero conversions.
            spend(
                "meta_ads",
                "2026-11-01",
                z,
                ("m-1", "Prospecting"),
                Channel::Social,
                2000,
                0,
                "30.00",
                Some("0"),
                None,
            ),
            spend(
                "meta_ads",
                "2026-11-02",
                z,
                ("m-2", "Retargeting"),
                Channel::Social,
                500,
                20,
                "60.00",
                Some("3"),
                Some("90.00"),
            ),
        ],
        claims: vec![
            claim(
                "awin",
                "c1",
                "O1",
                ("p1", "Blog"),
                "2026-11-01T12:00:00Z",
                "100.00",
                "10.00",
                ConversionStatus::Approved,
            ),
            claim(
                "awin",
                "c2",
                "O2",
                ("p1", "Blog"),
                "2026-11-02T12:00:00Z",
                "50.00",
                "5.00",
                ConversionStatus::Pending,
            ),
            // Not counted in the reported view: the network itself declined it.
            claim(
                "awin",
                "c3",
                "O3",
                ("p1", "Blog"),
                "2026-11-02T12:00:00Z",
                "70.00",
                "7.00",
                ConversionStatus::Rejected,
            ),
        ],
        orders: Vec::new(),
        decisions: Vec::new(),
        reconcile_notes: Vec::new(),
        campaigns: Default::default(),
        claim_campaigns: Default::default(),
        ..Default::default()
    }
}

fn report(by: &[Dim]) -> Report {
    let cfg = config();
    let fx = FxTable::default();
    summarize(
        ctx("UTC", &cfg, &fx),
        &table(),
        &query("2026-11", by, View::Reported),
    )
    .expect("summary")
}

fn row(r: &Report, f: impl Fn(&ReportRow) -> bool) -> &Totals {
    let row = r.rows.iter().find(|x| f(x)).expect("row present");
    row.reported.as_ref().expect("reported side")
}

fn m(t: &Totals, metric: Metric) -> Option<Decimal> {
    t.metric(metric)
}

#[test]
fn campaign_rows_match_hand_computed_values() {
    let r = report(&[Dim::Campaign]);
    let camp = |id: &'static str| move |x: &ReportRow| x.key.campaign_id.as_deref() == Some(id);

    // g-1: 1000 impressions, 50 clicks, 100 spend, 5 conversions, 400 revenue.
    let g1 = row(&r, camp("g-1"));
    assert_eq!(m(g1, Metric::Ctr), Some(dec("0.05")));
    assert_eq!(m(g1, Metric::Cpc), Some(dec("2")));
    assert_eq!(m(g1, Metric::Cvr), Some(dec("0.1")));
    assert_eq!(m(g1, Metric::Cpa), Some(dec("20")));
    assert_eq!(m(g1, Metric::Roas), Some(dec("4")));
    assert_eq!(m(g1, Metric::Roi), Some(dec("3")));
    assert_eq!(m(g1, Metric::Epc), Some(dec("0")));
    assert_eq!(m(g1, Metric::Aov), Some(dec("80")));

    // g-2: everything zero: every ratio is empty, every sum is 0.
    let g2 = row(&r, camp("g-2"));
    for metric in Metric::ALL {
        if metric.is_ratio() {
            assert_eq!(m(g2, metric), None, "{metric:?} must be empty");
        } else {
            assert_eq!(m(g2, metric), Some(Decimal::ZERO), "{metric:?}");
        }
    }

    // m-1: 2000 impressions, zero clicks, 30 spend, zero conversions.
    let m1 = row(&r, camp("m-1"));
    assert_eq!(m(m1, Metric::Ctr), Some(dec("0")));
    assert_eq!(m(m1, Metric::Cpc), None, "zero clicks");
    assert_eq!(m(m1, Metric::Cvr), None, "zero clicks");
    assert_eq!(m(m1, Metric::Epc), None, "zero clicks");
    assert_eq!(m(m1, Metric::Cpa), None, "zero conversions");
    assert_eq!(m(m1, Metric::Aov), None, "zero conversions");
    assert_eq!(m(m1, Metric::Roas), Some(dec("0")));
    assert_eq!(m(m1, Metric::Roi), Some(dec("-1")));

    // m-2: 500 / 20 / 60 / 3 / 90.
    let m2 = row(&r, camp("m-2"));
    assert_eq!(m(m2, Metric::Ctr), Some(dec("0.04")));
    assert_eq!(m(m2, Metric::Cpc), Some(dec("3")));
    assert_eq!(m(m2, Metric::Cvr), Some(dec("0.15")));
    assert_eq!(m(m2, Metric::Cpa), Some(dec("20")));
    assert_eq!(m(m2, Metric::Roas), Some(dec("1.5")));
    assert_eq!(m(m2, Metric::Roi), Some(dec("0.5")));
    assert_eq!(m(m2, Metric::Aov), Some(dec("30")));

    // awin program: 2 counted claims, 150 revenue, 15 commission, no clicks.
    let aff = row(&r, camp("awin-prog"));
    assert_eq!(aff.conversions, dec("2"));
    assert_eq!(aff.revenue, dec("150.00"));
    assert_eq!(aff.commission, dec("15.00"));
    assert_eq!(m(aff, Metric::Cost), Some(dec("15")));
    assert_eq!(m(aff, Metric::Cpa), Some(dec("7.5")));
    assert_eq!(m(aff, Metric::Roas), Some(dec("10")));
    assert_eq!(m(aff, Metric::Roi), Some(dec("9")));
    assert_eq!(m(aff, Metric::Aov), Some(dec("75")));
    assert_eq!(
        m(aff, Metric::Epc),
        None,
        "affiliates report no clicks here"
    );
    assert_eq!(m(aff, Metric::Ctr), None, "no impressions");
}

#[test]
fn channel_rows_and_total_are_summed_before_dividing() {
    let r = report(&[Dim::Channel]);
    let ch = |c: &'static str| move |x: &ReportRow| x.key.channel.as_deref() == Some(c);
    let social = row(&r, ch("social"));
    assert_eq!(social.impressions, 2500);
    assert_eq!(social.clicks, 20);
    assert_eq!(m(social, Metric::Ctr), Some(dec("0.008")));
    assert_eq!(m(social, Metric::Cpc), Some(dec("4.5")));
    assert_eq!(m(social, Metric::Cpa), Some(dec("30")));
    assert_eq!(m(social, Metric::Roas), Some(dec("1")));
    assert_eq!(m(social, Metric::Roi), Some(dec("0")));

    let t = r.total.reported.as_ref().expect("total");
    assert_eq!((t.impressions, t.clicks), (3500, 70));
    assert_eq!(t.spend, dec("190.00"));
    assert_eq!(t.conversions, dec("10"));
    assert_eq!(t.revenue, dec("640.00"));
    assert_eq!(t.commission, dec("15.00"));
    assert_eq!(m(t, Metric::Cost), Some(dec("205.00")));
    assert_eq!(m(t, Metric::Ctr), Some(dec("0.02")));
    assert_eq!(m(t, Metric::Cpa), Some(dec("20.5")));
    assert_eq!(m(t, Metric::Aov), Some(dec("64")));
    // 190/70, 640/205, 435/205: repeating decimals, exact to 28 digits.
    assert_eq!(
        m(t, Metric::Cpc),
        Some(dec("2.7142857142857142857142857143"))
    );
    assert_eq!(
        m(t, Metric::Roas),
        Some(dec("3.1219512195121951219512195122"))
    );
    assert_eq!(
        m(t, Metric::Roi),
        Some(dec("2.1219512195121951219512195122"))
    );
    // Affiliate commission and conversions over ad clicks would mix
    // channels: EPC and CVR are empty on a row that holds both.
    assert_eq!(m(t, Metric::Epc), None);
    assert_eq!(m(t, Metric::Cvr), None);
    assert!(
        r.rows.iter().all(|x| x.reconciled.is_none()),
        "reported view only"
    );
}

#[test]
fn combined_dimensions_partition_the_total() {
    let r = report(&[Dim::Day, Dim::Channel, Dim::Source]);
    let mut sum = Totals::default();
    for x in &r.rows {
        sum.add(x.reported.as_ref().expect("reported"));
    }
    assert_eq!(Some(sum), r.total.reported);
    let days: Vec<_> = r
        .rows
        .iter()
        .map(|x| x.key.day.expect("day").to_string())
        .collect();
    let mut sorted = days.clone();
    sorted.sort();
    assert_eq!(days, sorted, "rows sorted by day first");
    assert_eq!(
        r.rows.len(),
        5,
        "{:#?}",
        r.rows.iter().map(|x| &x.key).collect::<Vec<_>>()
    );
}

#[test]
fn period_excludes_rows_outside_it() {
    let cfg = config();
    let fx = FxTable::default();
    let r = summarize(
        ctx("UTC", &cfg, &fx),
        &table(),
        &query("2026-11-02..2026-11-02", &[], View::Reported),
    )
    .expect("summary");
    let t = r.total.reported.expect("total");
    assert_eq!(t.spend, dec("60.00"));
    assert_eq!(
        t.conversions,
        dec("4"),
        "3 platform conversions + 1 pending claim"
    );
}
