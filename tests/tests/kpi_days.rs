//! Day bucketing: orders and claims (UTC instants) fall into the reporting
//! timezone's days, correctly across a DST change; spend rows keep their own
//! day and are labelled when their zone differs.
mod kpi_fixtures;

use kpi_fixtures::*;
use plugin_api::Channel;
use reckon::fx::FxTable;
use reckon::kpi::{summarize, Dim, KpiInputs, View};
use rust_decimal::Decimal;

fn orders_at(instants: &[&str]) -> KpiInputs {
    KpiInputs {
        orders: instants
            .iter()
            .enumerate()
            .map(|(i, t)| order(&format!("O{i}"), t, "10.00", None, &[]))
            .collect(),
        ..KpiInputs::default()
    }
}

fn per_day(zone: &str, period: &str, inputs: &KpiInputs) -> Vec<(String, Decimal)> {
    let cfg = config();
    let fx = FxTable::default();
    let r = summarize(
        ctx(zone, &cfg, &fx),
        inputs,
        &query(period, &[Dim::Day], View::Reconciled),
    )
    .expect("summary");
    r.rows
        .iter()
        .map(|x| {
            (
                x.key.day.expect("day").to_string(),
                x.reconciled.expect("reconciled").conversions,
            )
        })
        .collect()
}

#[test]
fn berlin_days_across_the_october_dst_change() {
    // Berlin leaves summer time on 2026-10-25 at 03:00 CEST (01:00 UTC):
    // that local day lasts 25 hours, 2026-10-24T22:00Z to 2026-10-25T23:00Z.
    let inputs = orders_at(&[
        "2026-10-23T21:59:00Z", // 23:59 CEST on the 23rd: outside the period
        "2026-10-23T22:30:00Z", // 00:30 CEST on the 24th (still the 23rd in UTC)
        "2026-10-24T21:59:59Z", // 23:59:59 CEST on the 24th
        "2026-10-24T22:00:00Z", // 00:00 CEST on the 25th
        "2026-10-25T00:30:00Z", // 02:30 CEST (first pass)
        "2026-10-25T01:30:00Z", // 02:30 CET (second pass)
        "2026-10-25T22:59:59Z", // 23:59:59 CET on the 25th
        "2026-10-25T23:00:00Z", // 00:00 CET on the 26th
        "2026-10-26T23:00:00Z", // 00:00 CET on the 27th: outside
    ]);
    let got = per_day("Europe/Berlin", "2026-10-24..2026-10-26", &inputs);
    assert_eq!(
        got,
        vec![
            ("2026-10-24".to_owned(), dec("2")),
            ("2026-10-25".to_owned(), dec("4")),
            ("2026-10-26".to_owned(), dec("1")),
        ]
    );
}

#[test]
fn new_york_days_across_the_march_dst_change() {
    // New York starts summer time on 2026-03-08 at 02:00 EST (07:00 UTC):
    // that local day lasts 23 hours, 2026-03-08T05:00Z to 2026-03-09T04:00Z.
    let inputs = orders_at(&[
        "2026-03-08T04:59:59Z", // 23:59:59 EST on the 7th
        "2026-03-08T05:00:00Z", // 00:00 EST on the 8th
        "2026-03-09T03:59:59Z", // 23:59:59 EDT on the 8th
        "2026-03-09T04:00:00Z", // 00:00 EDT on the 9th
    ]);
    let got = per_day("America/New_York", "2026-03-07..2026-03-09", &inputs);
    assert_eq!(
        got,
        vec![
            ("2026-03-07".to_owned(), dec("1")),
            ("2026-03-08".to_owned(), dec("2")),
            ("2026-03-09".to_owned(), dec("1")),
        ]
    );
    // The same instants in UTC days.
    let utc = per_day("UTC", "2026-03-07..2026-03-09", &inputs);
    assert_eq!(
        utc,
        vec![
            ("2026-03-08".to_owned(), dec("2")),
            ("2026-03-09".to_owned(), dec("2"))
        ]
    );
}

#[test]
fn spend_in_another_zone_is_labelled_and_boundaries_are_stated() {
    let mut inputs = orders_at(&["2026-10-25T12:00:00Z"]);
    inputs.spend = vec![
        spend(
            "google_ads",
            "2026-10-25",
            "America/New_York",
            ("g-1", "Brand"),
            Channel::Search,
            100,
            10,
            "5.00",
            None,
            None,
        ),
        spend(
            "meta_ads",
            "2026-10-25",
            "Europe/Berlin",
            ("m-1", "Social"),
            Channel::Social,
            100,
            10,
            "7.00",
            None,
            None,
        ),
    ];
    let cfg = config();
    let fx = FxTable::default();
    let r = summarize(
        ctx("Europe/Berlin", &cfg, &fx),
        &inputs,
        &query("2026-10", &[Dim::Day, Dim::Source], View::Both),
    )
    .expect("summary");
    assert!(
        r.day_boundaries
            .contains("Days are 00:00–24:00 Europe/Berlin; the period runs from 2026-10-01 00:00 +02:00 to 2026-11-01 00:00 +01:00"),
        "{}",
        r.day_boundaries
    );
    assert_eq!(
        r.zone_labels,
        vec!["google_ads rows are in America/New_York days (the platform's account timezone), not Europe/Berlin, and are labelled.".to_owned()]
    );
    let label = |src: &str| {
        r.rows
            .iter()
            .find(|x| x.key.source.as_deref() == Some(src))
            .map(|x| x.foreign_days.clone())
            .expect("row")
    };
    assert_eq!(
        label("google_ads"),
        vec!["google_ads: America/New_York".to_owned()]
    );
    assert!(label("meta_ads").is_empty());
    assert_eq!(
        r.total.foreign_days,
        vec!["google_ads: America/New_York".to_owned()]
    );
    // The label survives into every format.
    let csv = reckon::kpi::render::csv(&r).expect("csv");
    assert!(csv.contains("google_ads: America/New_York"), "{csv}");
    let table = reckon::kpi::render::table(&r);
    assert!(
        table.contains("google_ads rows are in America/New_York days"),
        "{table}"
    );
}

/// QA24 F1: an order of 23:30 in New York on 30 September is 1 October in
/// UTC. Reconciliation and the statement convert it at the program's day
/// (30 September, 1.10); the reconciled view did at the reporting zone's
/// (1 October, 1.20), so its revenue (120.00) sat beside a commission
/// priced on 110.00. It now converts at the program's day too; the reported
/// view (the network's own figures) stays on the row's day.
#[test]
fn reconciled_amounts_use_the_rate_of_the_programs_day() {
    use reckon::kpi::config::KpiConfig;
    use reckon::reconcile::config::ProgramConfig;
    use reckon::reconcile::model::Outcome;
    let program: ProgramConfig = toml::from_str(
        r#"
        id = "main"
        currency = "USD"
        claims = ["awin"]
        orders = ["shop"]
        [commission]
        payout_currency = "USD"
        period = "monthly"
        timezone = "America/New_York"
        "#,
    )
    .expect("program");
    let cfg: KpiConfig = toml::from_str("currency = \"USD\"").expect("kpi config");
    cfg.validate().expect("kpi config is valid");
    let fx = FxTable::from_rates(
        [("2026-09-30", "1.10"), ("2026-10-01", "1.20")]
            .map(|(d, r)| (day(d), "EUR".to_owned(), "USD".to_owned(), dec(r))),
        7,
    );
    let o = order("NFX", "2026-10-01T03:30:00Z", "100.00", None, &[]);
    let c = claim(
        "awin",
        "c-NFX",
        "NFX",
        ("p1", "Partner 1"),
        "2026-10-01T03:30:00Z",
        "100.00",
        "11.00",
        plugin_api::ConversionStatus::Approved,
    );
    let d = decision(&c, Some(&o), Outcome::Matched, true);
    let inputs = KpiInputs {
        orders: vec![o],
        claims: vec![c],
        decisions: vec![d],
        ..KpiInputs::default()
    };
    let revenue = |programs: &[ProgramConfig]| {
        let mut context = ctx("UTC", &cfg, &fx);
        context.programs = programs;
        let r = summarize(
            context,
            &inputs,
            &query("2026-10-01..2026-10-01", &[Dim::Day], View::Both),
        )
        .expect("summary");
        assert_eq!(r.rows.len(), 1, "{:?}", r.rows);
        let row = &r.rows[0];
        (
            row.reported.expect("reported").revenue,
            row.reconciled.expect("reconciled").revenue,
        )
    };
    // Reported: the row's day (1 October, 1.20); reconciled: the program's
    // day (30 September in New York, 1.10).
    assert_eq!(
        revenue(std::slice::from_ref(&program)),
        (dec("120.00"), dec("110.00"))
    );
    // A program not configured: the row's day for both.
    assert_eq!(revenue(&[]), (dec("120.00"), dec("120.00")));
}
