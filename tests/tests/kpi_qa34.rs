//! QA34a (marketing analyst sign-off): what the KPI files show. The
//! figures were right; the chart drew unknown amounts as 0 (A-M1), the
//! files did not say when or from what they were computed (A-M2), an ISO
//! week was not a period (A-L3), and the note on spend rows without a
//! conversion figure blamed the platform for a setting (A-L2).
mod kpi_fixtures;

use std::path::Path;

use kpi_fixtures::*;
use plugin_api::{Channel, ConversionStatus, Money, Record};
use reckon::fx::FxTable;
use reckon::kpi::summary::produce;
use reckon::kpi::{Dim, Format, KpiInputs, Period, View};
use reckon::store::Store;

/// The `points` of the `<polyline>`s drawn in `color` (`#RRGGBB`) in an
/// SVG, each as (x, y) pairs.
fn polylines(svg: &str, color: &str) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    for part in svg.split("<polyline").skip(1) {
        let tag = &part[..part.find("/>").unwrap_or(part.len())];
        if !tag.contains(&format!("stroke=\"{color}\"")) {
            continue;
        }
        let Some(start) = tag.find("points=\"") else {
            continue;
        };
        let points = &tag[start + 8..];
        let points = &points[..points.find('"').unwrap_or(points.len())];
        out.push(
            points
                .split_whitespace()
                .filter_map(|p| {
                    let (x, y) = p.split_once(',')?;
                    Some((x.parse().ok()?, y.parse().ok()?))
                })
                .collect(),
        );
    }
    out
}

/// The cells of one CSV line (quoted cells hold no newline here).
fn cells(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("cell").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("cell").push(c),
        }
    }
    out
}

/// The `<svg>` of the spend and revenue chart of an HTML report.
fn spend_revenue_svg(html: &str) -> &str {
    let start = html
        .find("data-chart=\"spend_revenue\"")
        .expect("spend and revenue chart");
    let rest = &html[start..];
    &rest[..rest.find("</figure>").expect("figure end")]
}

/// Three days of Google spend (EUR). On the first, an affiliate claim
/// without a sale amount (as CAKE sends) and a Meta row in USD without an
/// `[fx]` rate make that day's revenue and spend partly unknown.
fn partial_days() -> KpiInputs {
    let g = |d: &str, conv: Option<&str>, value: Option<&str>| {
        spend(
            "google_ads",
            d,
            "Europe/Berlin",
            ("g-1", "Brand"),
            Channel::Search,
            1000,
            40,
            "100.00",
            conv,
            value,
        )
    };
    let mut no_rate = spend(
        "meta_ads",
        "2026-11-02",
        "Europe/Berlin",
        ("m-1", "Prospecting"),
        Channel::Social,
        500,
        5,
        "50.00",
        Some("0"),
        None,
    );
    no_rate.spend = Money::new(dec("50.00"), "USD");
    let mut cake = claim(
        "cake",
        "ck-1",
        "O-1",
        ("c-1", "Coupons"),
        "2026-11-02T10:00:00Z",
        "0",
        "5.00",
        ConversionStatus::Approved,
    );
    cake.sale_amount = None;
    KpiInputs {
        spend: vec![
            g("2026-11-02", Some("5"), Some("500.00")),
            no_rate,
            g("2026-11-03", Some("0"), None),
            g("2026-11-04", Some("1"), Some("100.00")),
        ],
        claims: vec![cake],
        ..KpiInputs::default()
    }
}

/// A-M1: a day whose revenue (or spend) is partly unknown was drawn at 0
/// (the demo's reported revenue line sat at the bottom on 38 of 45 days).
/// Now the line shows the known part, with a ring on such a day and a
/// legend entry saying so.
#[test]
fn the_chart_draws_the_known_part_of_a_partial_day_and_marks_it() {
    let cfg = config();
    let fx = FxTable::default();
    let html = produce(
        ctx("Europe/Berlin", &cfg, &fx),
        &partial_days(),
        &query("2026-11-02..2026-11-04", &[Dim::Channel], View::Reported),
        Format::Html,
    )
    .expect("html");
    let svg = spend_revenue_svg(&html);
    // The series' lines: three points (the legend's sample has two).
    let line = |color: &str| {
        polylines(svg, color)
            .into_iter()
            .find(|p| p.len() == 3)
            .unwrap_or_else(|| panic!("a {color} line of 3 days in {svg}"))
    };
    let revenue = line("#FF7F0E");
    let (d2, d3, d4) = (revenue[0].1, revenue[1].1, revenue[2].1);
    // SVG y grows downwards: 500.00 known on 11-02 is above 100.00 on
    // 11-04, which is above 0.00 on 11-03 (it was drawn at 0, as 11-03).
    assert!(d2 < d4 && d4 < d3, "revenue y: {revenue:?}");
    let spend_line = line("#1F77B4");
    // 100.00 EUR known every day (the USD row of 11-02 has no rate): one
    // level, not 0 on 11-02.
    assert!(
        spend_line
            .iter()
            .all(|p| (p.1 - spend_line[0].1).abs() < 0.5),
        "spend y: {spend_line:?}"
    );
    assert!(spend_line[0].1 < revenue[1].1, "spend above 0: {svg}");
    // Rings on the partial day, in each series' colour, and the legend.
    for color in ["#FF7F0E", "#1F77B4"] {
        assert!(
            svg.split("<circle")
                .skip(1)
                .any(|c| c.contains(&format!("stroke=\"{color}\""))),
            "a {color} ring: {svg}"
        );
    }
    assert!(
        svg.contains(reckon::kpi::chart::PARTIAL_LEGEND),
        "legend: {svg}"
    );
    assert!(html.contains("○: part of the day"), "caption: {html}");

    // Without anything unknown: no ring, no legend entry.
    let mut known = partial_days();
    known.claims.clear();
    known.spend.retain(|s| s.source == "google_ads");
    let html = produce(
        ctx("Europe/Berlin", &cfg, &fx),
        &known,
        &query("2026-11-02..2026-11-04", &[Dim::Channel], View::Reported),
        Format::Html,
    )
    .expect("html");
    let svg = spend_revenue_svg(&html);
    assert!(!svg.contains("<circle"), "{svg}");
    assert!(!svg.contains(reckon::kpi::chart::PARTIAL_LEGEND), "{svg}");
}

fn fx_usd_eur() -> FxTable {
    FxTable::from_rates(
        vec![
            (day("2026-11-01"), "USD".into(), "EUR".into(), dec("0.97")),
            (day("2026-11-03"), "EUR".into(), "USD".into(), dec("1.25")),
        ],
        5,
    )
}

/// A-M2: every format says when it was computed, from which store
/// position, by which release, from which reconcile runs, and with which
/// `[fx]` rows.
#[test]
fn every_format_states_when_and_from_what_it_was_computed() {
    let cfg = config();
    let fx = fx_usd_eur();
    let mut inputs = partial_days();
    inputs.generated_at = Some(at("2026-11-05T06:00:00.25Z"));
    inputs.store_seq = Some(1234);
    inputs.judged_at = vec![
        ("main".into(), Some(at("2026-11-05T05:59:00Z"))),
        ("other".into(), None),
    ];
    // A USD row on 11-03 too: priced by the inverse pair's row of 11-03.
    let mut usd = inputs.spend[1].clone();
    usd.day = day("2026-11-03");
    inputs.spend.push(usd);
    let q = query("2026-11-02..2026-11-04", &[Dim::Channel], View::Both);
    let out = |format| produce(ctx("Europe/Berlin", &cfg, &fx), &inputs, &q, format).expect("out");

    let json: serde_json::Value = serde_json::from_str(&out(Format::Json)).expect("json");
    assert_eq!(json["generated_at"], "2026-11-05T06:00:00.250Z");
    assert_eq!(json["store_seq"], 1234);
    assert_eq!(json["reckon_version"], reckon::VERSION);
    assert_eq!(
        json["judged_at"],
        serde_json::json!({"main": "2026-11-05T05:59:00Z", "other": null})
    );
    assert_eq!(
        json["fx_rates"],
        serde_json::json!([
            {"base": "USD", "quote": "EUR", "day": "2026-11-02", "rate": "0.97", "rate_date": "2026-11-01"},
            {"base": "USD", "quote": "EUR", "day": "2026-11-03", "rate": "0.8", "rate_date": "2026-11-03", "inverse_of": "1.25"},
        ])
    );
    // Not a daemon file: no revision.
    assert!(json.get("revision").is_none(), "{json}");
    // The fields readers had are all still there.
    for key in [
        "period",
        "from",
        "to",
        "view",
        "by",
        "timezone",
        "currency",
        "day_boundaries",
        "zone_labels",
        "notes",
        "rows",
        "total",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }

    let fx_text = "USD→EUR: 0.97 (row 2026-11-01) for 2026-11-02, 0.8 (1/1.25, EUR→USD row 2026-11-03) for 2026-11-03";
    for format in [Format::Table, Format::Html] {
        let text = out(format);
        assert!(
            text.contains(&format!(
                "Computed by Reckon {} at 2026-11-05T06:00:00.250Z from the records stored up to change 1234",
                reckon::kpi::render::escape(reckon::VERSION)
            )),
            "{text}"
        );
        assert!(
            text.contains("program `main` as judged by its reconcile run of 2026-11-05T05:59:00Z; program `other` with no recorded reconcile run"),
            "{text}"
        );
        assert!(text.contains(fx_text), "{text}");
    }

    let csv = out(Format::Csv);
    let mut lines = csv.lines().map(cells);
    let header = lines.next().expect("header");
    // Appended after the metrics: readers by position are unaffected.
    assert_eq!(
        header[header.len() - 8..],
        [
            "generated_at",
            "store_seq",
            "reckon_version",
            "judged_at",
            "revision",
            "supersedes",
            "fx_rates",
            "period"
        ]
    );
    assert_eq!(header[header.len() - 9], "aov_diff");
    let rows: Vec<Vec<String>> = lines.collect();
    assert!(!rows.is_empty(), "{csv}");
    for row in rows {
        assert_eq!(row.len(), header.len(), "{csv}");
        let cell = |name: &str| {
            let i = header.iter().position(|h| h == name).expect("column");
            row[i].to_owned()
        };
        assert_eq!(cell("generated_at"), "2026-11-05T06:00:00.250Z");
        assert_eq!(cell("store_seq"), "1234");
        assert_eq!(cell("reckon_version"), reckon::VERSION);
        assert_eq!(cell("judged_at"), "main: 2026-11-05T05:59:00Z; other: none");
        assert_eq!(cell("fx_rates"), fx_text);
        assert_eq!(cell("period"), "2026-11-02..2026-11-04");
    }

    // The reported view reads no decisions: no `judged_at`.
    let reported = query("2026-11-02..2026-11-04", &[Dim::Channel], View::Reported);
    let json: serde_json::Value = serde_json::from_str(
        &produce(
            ctx("Europe/Berlin", &cfg, &fx),
            &inputs,
            &reported,
            Format::Json,
        )
        .expect("json"),
    )
    .expect("json");
    assert!(json.get("judged_at").is_none(), "{json}");
}

fn google(d: &str, amount: &str) -> Record {
    Record::Spend(spend(
        "google_ads",
        d,
        "Europe/Berlin",
        ("g-1", "Brand"),
        Channel::Search,
        1000,
        40,
        amount,
        Some("1"),
        Some("90.00"),
    ))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join("out/kpi").join(file)).expect(file)
}

/// A-M2: the daemon's files name the store position and the time they
/// were computed, and a rewrite says which version it replaces: the
/// 06:30 file and the one rewritten after a later sync can be told apart.
#[test]
fn a_rewritten_summary_says_which_version_it_replaces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = summaries_daemon_config(tmp.path(), r#""csv", "json", "table""#);
    let kpi = config.kpi.clone().expect("[kpi]");
    let store = Store::open(&tmp.path().join("data")).expect("store");
    store
        .commit_page(
            "google_ads",
            &[google("2026-11-07", "30.00")],
            None,
            at("2026-11-08T04:00:00Z"),
        )
        .expect("commit");
    use reckon::kpi::hook::run_after_sync;
    let first_at = at("2026-11-08T05:30:00Z");
    run_after_sync(&store, &config, &kpi, first_at, None)
        .expect("hook")
        .expect("due");
    let seq1 = store.last_seq().expect("seq");
    let json = |file: &str| -> serde_json::Value {
        serde_json::from_str(&read(tmp.path(), file)).expect("json")
    };
    let daily = json("daily/2026-11-07.json");
    assert_eq!(daily["generated_at"], "2026-11-08T05:30:00Z");
    assert_eq!(daily["store_seq"], seq1);
    assert_eq!(daily["revision"], 1);
    assert!(daily.get("supersedes").is_none(), "{daily}");
    assert_eq!(json("monthly/2026-11.json")["revision"], 1);

    // The day is restated at 09:00: the files are written again.
    store
        .commit_page(
            "google_ads",
            &[google("2026-11-07", "35.00")],
            None,
            at("2026-11-08T08:00:00Z"),
        )
        .expect("commit");
    let seq2 = store.last_seq().expect("seq");
    assert!(seq2 > seq1);
    run_after_sync(
        &store,
        &config,
        &kpi,
        at("2026-11-08T08:00:01Z"),
        Some(seq2),
    )
    .expect("hook")
    .expect("rewritten");
    let daily = json("daily/2026-11-07.json");
    assert_eq!(daily["generated_at"], "2026-11-08T08:00:01Z");
    assert_eq!(daily["store_seq"], seq2);
    assert_eq!(daily["revision"], 2);
    assert_eq!(daily["supersedes"], "2026-11-08T05:30:00Z");
    let text = read(tmp.path(), "daily/2026-11-07.txt");
    assert!(
        text.contains(
            "Revision 2 of this file: it replaces the version generated at 2026-11-08T05:30:00Z"
        ),
        "{text}"
    );
    let csv = read(tmp.path(), "daily/2026-11-07.csv");
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.contains(",2,2026-11-08T05:30:00Z,")),
        "{csv}"
    );

    // The next day's fire: a new daily file (revision 1), the month's
    // file replaced (revision 3).
    run_after_sync(&store, &config, &kpi, at("2026-11-09T05:30:00Z"), None)
        .expect("hook")
        .expect("due");
    assert_eq!(json("daily/2026-11-08.json")["revision"], 1);
    let month = json("monthly/2026-11.json");
    assert_eq!(month["revision"], 3);
    assert_eq!(month["supersedes"], "2026-11-08T08:00:01Z");
    // The finished day's file is left as it was.
    assert_eq!(json("daily/2026-11-07.json")["revision"], 2);
}

/// A-L3: an ISO week (as weekly statements and `reconcile report` name
/// them) and a half month are periods, named so in the outputs.
#[test]
fn an_iso_week_is_a_period() {
    let p: Period = "2026-W44".parse().expect("week");
    assert_eq!((p.from, p.to), (day("2026-10-26"), day("2026-11-01")));
    assert_eq!(p.to_string(), "2026-W44");
    // ISO week 1 of 2027 starts in 2026.
    let p: Period = "2027-W01".parse().expect("week");
    assert_eq!((p.from, p.to), (day("2027-01-04"), day("2027-01-10")));
    let p: Period = "2026-11-H2".parse().expect("half month");
    assert_eq!((p.from, p.to), (day("2026-11-16"), day("2026-11-30")));
    assert_eq!(p.to_string(), "2026-11-H2");
    let err = "2026-W54".parse::<Period>().expect_err("no week 54");
    assert!(err.to_string().contains("2026 has no ISO week 54"), "{err}");
    let err = "2026-W4".parse::<Period>().expect_err("malformed");
    assert!(err.to_string().contains("YYYY-Www"), "{err}");
    assert!("1969-W50".parse::<Period>().is_err());

    let cfg = config();
    let fx = FxTable::default();
    let json: serde_json::Value = serde_json::from_str(
        &produce(
            ctx("Europe/Berlin", &cfg, &fx),
            &two_network_scenario(),
            &query("2026-W45", &[Dim::Channel], View::Both),
            Format::Json,
        )
        .expect("json"),
    )
    .expect("json");
    assert_eq!(
        (&json["period"], &json["from"], &json["to"]),
        (
            &serde_json::json!("2026-W45"),
            &serde_json::json!("2026-11-02"),
            &serde_json::json!("2026-11-08")
        )
    );
}

/// A-L2: with conversion counting turned off in a connector's settings
/// (Meta `conversion_action_type = ""`) the rows carry no conversion
/// figure, as for TikTok's `-`: the note names both causes.
#[test]
fn the_note_on_rows_without_conversions_names_the_setting_too() {
    let cfg = config();
    let fx = FxTable::default();
    let inputs = KpiInputs {
        spend: vec![spend(
            "meta_none",
            "2026-11-06",
            "Europe/Berlin",
            ("m-1", "Prospecting"),
            Channel::Social,
            500,
            5,
            "10.00",
            None,
            None,
        )],
        ..KpiInputs::default()
    };
    let table = produce(
        ctx("Europe/Berlin", &cfg, &fx),
        &inputs,
        &query("2026-11-06..2026-11-06", &[], View::Reported),
        Format::Table,
    )
    .expect("table");
    assert!(
        table.contains("the platform sent none, e.g. TikTok's `-`, or the connector's settings turn conversion counting off: Meta `conversion_action_type = \"\"`, TikTok `conversion_metric = \"\"`"),
        "{table}"
    );
}

/// A-L1 (README's rounding example): a difference is that of the shown
/// values. A reported commission with sub-cent digits (network
/// commissions, FX-converted) beside a reconciled one in whole cents
/// (rounded per conversion): 10808.89 − 9032.37 = 1776.52, where the
/// exact 1776.525 would round to 1776.53.
#[test]
fn the_readmes_rounding_example_holds() {
    let cfg = config();
    let fx = FxTable::default();
    let o = order("O1", "2026-11-02T10:00:00Z", "100000.00", None, &[]);
    let c = claim(
        "awin",
        "aw-1",
        "O1",
        ("a-1", "Coupon Site"),
        "2026-11-02T10:00:00Z",
        "100000.00",
        "9032.365",
        ConversionStatus::Approved,
    );
    let mut d = decision(
        &c,
        Some(&o),
        reckon::reconcile::model::Outcome::Matched,
        true,
    );
    d.network_commission = Some(eur("10808.89"));
    let inputs = KpiInputs {
        claims: vec![c],
        orders: vec![o],
        decisions: vec![d],
        ..KpiInputs::default()
    };
    let json: serde_json::Value = serde_json::from_str(
        &produce(
            ctx("Europe/Berlin", &cfg, &fx),
            &inputs,
            &query("2026-11", &[], View::Both),
            Format::Json,
        )
        .expect("json"),
    )
    .expect("json");
    let t = &json["total"];
    assert_eq!(t["reported"]["commission"], "9032.37");
    assert_eq!(t["reconciled"]["commission"], "10808.89");
    assert_eq!(t["difference"]["commission"], "1776.52");
}
