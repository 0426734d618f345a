//! The outputs people and systems read: CSV and JSON snapshots, the text
//! table, and the HTML report with its inline SVG charts.
mod kpi_fixtures;

use kpi_fixtures::*;
use reckon::fx::FxTable;
use reckon::kpi::summary::produce;
use reckon::kpi::{Dim, Format, View};

fn out(by: &[Dim], view: View, format: Format) -> String {
    let cfg = config();
    let fx = FxTable::default();
    produce(
        ctx("Europe/Berlin", &cfg, &fx),
        &two_network_scenario(),
        &query("2026-11", by, view),
        format,
    )
    .expect("render")
    // The release changes with every commit: not part of the snapshots.
    .replace(reckon::VERSION, "[version]")
}

#[test]
fn csv_both_by_channel_and_source() {
    insta::assert_snapshot!(out(&[Dim::Channel, Dim::Source], View::Both, Format::Csv));
}

#[test]
fn csv_reported_by_campaign() {
    insta::assert_snapshot!(out(
        &[Dim::Source, Dim::Campaign],
        View::Reported,
        Format::Csv
    ));
}

#[test]
fn json_both_by_channel() {
    insta::assert_snapshot!(out(&[Dim::Channel], View::Both, Format::Json));
}

#[test]
fn json_reconciled_by_day_and_partner() {
    insta::assert_snapshot!(out(
        &[Dim::Day, Dim::Partner],
        View::Reconciled,
        Format::Json
    ));
}

#[test]
fn table_reconciled_by_channel() {
    insta::assert_snapshot!(out(&[Dim::Channel], View::Reconciled, Format::Table));
}

/// QA (new user, 2026-11-30): the default table (`--view both`) had 45
/// value columns in one table (~600 characters a line). It is now three
/// tables with one view's columns each: reported, reconciled, difference;
/// and each, wider than 120 characters, is split into counts and amounts,
/// then ratios (one view by channel was ~150 characters a line here).
#[test]
fn table_both_by_channel_is_one_table_per_view() {
    let text = out(&[Dim::Channel], View::Both, Format::Table);
    insta::assert_snapshot!(text);
    let table_lines = || {
        text.lines()
            .filter(|l| l.starts_with("affiliate") || l.starts_with('-'))
    };
    let longest = table_lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(longest <= 120, "{longest} > 120: {text}");
    assert!(
        !text.contains("_reported") && !text.contains("_diff"),
        "{text}"
    );
    let titles: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("Reported:")
                || l.starts_with("Reconciled:")
                || l.starts_with("Difference:")
        })
        .collect();
    assert_eq!(titles.len(), 6, "{text}");
    assert!(titles[0].ends_with("; counts and amounts"), "{text}");
    assert!(titles[1].ends_with("; ratios"), "{text}");
    // The notes are printed once, above the tables.
    assert_eq!(text.matches("Days are 00:00").count(), 1, "{text}");
}

#[test]
fn json_is_valid_and_empty_cells_are_null() {
    let text = out(&[Dim::Source], View::Both, Format::Json);
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let rows = v["rows"].as_array().expect("rows");
    let unattributed = rows
        .iter()
        .find(|r| r["source"] == "unattributed")
        .expect("unattributed row");
    // No cost behind direct orders: ROAS, ROI and CPA are empty (not 0,
    // not infinity; CPA was 0.00); no clicks: CVR empty.
    assert!(unattributed["reconciled"]["roas"].is_null());
    assert!(unattributed["reconciled"]["roi"].is_null());
    assert!(unattributed["reconciled"]["cvr"].is_null());
    assert!(unattributed["reconciled"]["cpa"].is_null());
    assert_eq!(unattributed["reconciled"]["conversions"], "1");
    assert_eq!(v["total"]["reconciled"]["conversions"], "6");
    assert_eq!(v["timezone"], "Europe/Berlin");
    assert_eq!(v["currency"], "EUR");
}

/// The text of every `<text>` element of an SVG, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
}

fn has_text(svg: &str, want: &str) -> bool {
    texts(svg).iter().any(|t| t == want)
}

/// Data series lines of a line chart: 2-px polylines with one point per day
/// of the period (legend swatches have two points, axes are 1 px).
fn series_lines(svg: &str, days: usize) -> usize {
    svg.split("<polyline")
        .skip(1)
        .filter(|p| p.contains("stroke-width=\"2\""))
        .filter(|p| {
            let pts = p
                .split("points=\"")
                .nth(1)
                .and_then(|x| x.split('"').next())
                .unwrap_or("");
            pts.split_whitespace().count() == days
        })
        .count()
}

/// The `<svg>…</svg>` elements of a page, with the `data-chart` id of the
/// figure each sits in.
fn charts(html: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(fig) = rest.find("<figure class=\"chart\" data-chart=\"") {
        let after = &rest[fig + 34..];
        let id_end = after.find('"').expect("id end");
        let id = after[..id_end].to_owned();
        let start = after.find("<svg").expect("svg in figure");
        let end = after.find("</svg>").expect("svg closed") + 6;
        found.push((id, after[start..end].to_owned()));
        rest = &after[end..];
    }
    found
}

#[test]
fn html_contains_its_three_charts_with_their_series() {
    let html = out(&[Dim::Channel], View::Both, Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    let charts = charts(&html);
    let ids: Vec<&str> = charts.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["spend_revenue", "roas_by_channel", "cpa_by_campaign"]);
    assert_eq!(html.matches("<svg").count(), 3, "only the three charts");

    let (_, line) = &charts[0];
    // One polyline per series: spend, reported revenue, reconciled revenue.
    assert_eq!(series_lines(line, 30), 3, "{line}");
    for legend in ["spend", "revenue (reported)", "revenue (reconciled)"] {
        assert!(has_text(line, legend), "legend {legend}: {:?}", texts(line));
    }
    assert!(has_text(line, "11-01"), "day axis labels");

    let (_, roas) = &charts[1];
    for channel in ["search", "social", "affiliate"] {
        assert!(
            has_text(roas, channel),
            "channel {channel}: {:?}",
            texts(roas)
        );
    }
    assert!(has_text(roas, "reported") && has_text(roas, "reconciled"));
    // 3 channels × 2 views with a ROAS, + 1 reconciled-only bar is absent for
    // unattributed (no cost): at least 6 filled bars.
    assert!(roas.matches("<rect").count() >= 6);

    let (_, cpa) = &charts[2];
    assert!(
        has_text(cpa, "google_ads: Brand Search"),
        "{:?}",
        texts(cpa)
    );
    // Readable offline: nothing is fetched.
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    assert!(!html.contains("<script"));
}

#[test]
fn html_single_view_has_one_revenue_series() {
    let html = out(&[Dim::Campaign], View::Reported, Format::Html);
    let charts = charts(&html);
    assert_eq!(charts.len(), 3);
    assert_eq!(series_lines(&charts[0].1, 30), 2);
    assert!(has_text(&charts[0].1, "revenue (reported)"));
    assert!(!charts[0].1.contains("reconciled"));
}

/// QA10 L6: a partner named with a right-to-left override and a newline.
/// The table and HTML show them as escapes (one table row, nothing
/// reordered); CSV and JSON keep the name as the network sent it.
#[test]
fn bidi_and_control_characters_of_partner_names_are_escaped_in_the_table_and_html() {
    let spoof = "Acme\u{202E}00.001\nfake row";
    let mut inputs = two_network_scenario();
    for c in &mut inputs.claims {
        if c.partner_id == "a-1" {
            c.partner_name = Some(spoof.into());
        }
    }
    for d in &mut inputs.decisions {
        if d.partner_id == "a-1" {
            d.partner_name = Some(spoof.into());
        }
    }
    let cfg = config();
    let fx = FxTable::default();
    let render = |format| {
        produce(
            ctx("Europe/Berlin", &cfg, &fx),
            &inputs,
            &query("2026-11", &[Dim::Partner], View::Both),
            format,
        )
        .expect("render")
    };
    let shown = "Acme<U+202E>00.001<U+000A>fake row";
    let table = render(Format::Table);
    assert!(!table.contains('\u{202E}'), "{table}");
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("awin:a-1")).collect();
    let tables = table.lines().filter(|l| l.starts_with("source ")).count();
    assert_eq!(rows.len(), tables, "one row in each table: {table}");
    assert!(rows.iter().all(|l| l.contains(shown)), "{table}");
    assert!(!table.lines().any(|l| l.starts_with("fake row")), "{table}");
    let html = render(Format::Html);
    assert!(!html.contains('\u{202E}'), "{html}");
    assert!(
        html.contains("<td>Acme&lt;U+202E&gt;00.001&lt;U+000A&gt;fake row</td>"),
        "{html}"
    );
    let csv = render(Format::Csv);
    assert!(csv.contains(&format!("\"{spoof}\"")), "{csv}");
    let json = render(Format::Json);
    assert!(json.contains("Acme\u{202E}00.001\\nfake row"), "{json}");
}
