//! Renders a [`Report`] as an aligned text table, CSV, JSON or a
//! self-contained HTML page (inline CSS and SVG charts, no network needed).
//!
//! Rounding happens here and only here: CSV and JSON round money sums to
//! the currency's minor unit and ratios to
//! [`MACHINE_RATIO_DP`](super::metrics::MACHINE_RATIO_DP) places; the table
//! and HTML round money sums to the currency's minor unit too, money
//! ratios and ROAS to 2 places, and show CTR, CVR and ROI as percentages.
//! A difference is that of the values as shown. An empty cell is a zero
//! denominator, a ratio that would mix channels, or an unknown amount (no
//! sale amount, no FX rate) and what is built on it (see `metrics`).
//!
//! The table and HTML show the bidirectional and control characters of
//! partner and campaign names and ids as `<U+202E>`
//! ([`crate::display_safe`]); CSV and JSON keep them as sent.
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::chart::ChartData;
use super::engine::{Report, ReportRow, RowKey};
use super::metrics::{
    display_points, display_round, display_text, machine_round, machine_text, Kind, Metric, Totals,
};
use super::{Dim, Format, KpiError, View};
use rust_decimal::Decimal;

/// Renders a report; `charts` is used by HTML only (built when `None`
/// would leave the page without charts, so pass it for HTML).
pub fn render(
    format: Format,
    report: &Report,
    charts: Option<&ChartData>,
) -> Result<String, KpiError> {
    Ok(match format {
        Format::Table => table(report),
        Format::Csv => csv(report)?,
        Format::Json => json(report)?,
        Format::Html => html(report, charts)?,
    })
}

/// The dimensions shown, in `--by` order: `source` is added before
/// `campaign` or `partner` when not asked for, because their grouping keys
/// include it (the same campaign id on two connectors is two rows).
pub fn shown_dims(by: &[Dim]) -> Vec<Dim> {
    let mut out = Vec::new();
    for d in by {
        if matches!(d, Dim::Campaign | Dim::Partner)
            && !by.contains(&Dim::Source)
            && !out.contains(&Dim::Source)
        {
            out.push(Dim::Source);
        }
        out.push(*d);
    }
    out
}

/// The dimension column names, in `--by` order.
fn dim_columns(by: &[Dim]) -> Vec<&'static str> {
    let mut cols = Vec::new();
    for d in shown_dims(by) {
        match d {
            Dim::Day => cols.push("day"),
            Dim::Channel => cols.push("channel"),
            Dim::Source => cols.push("source"),
            Dim::Campaign => cols.extend(["campaign_id", "campaign"]),
            Dim::Partner => cols.extend(["partner_id", "partner"]),
        }
    }
    cols
}

fn dim_values(by: &[Dim], k: &RowKey) -> Vec<String> {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut out = Vec::new();
    for d in shown_dims(by) {
        match d {
            Dim::Day => out.push(k.day.map(|d| d.to_string()).unwrap_or_default()),
            Dim::Channel => out.push(s(&k.channel)),
            Dim::Source => out.push(s(&k.source)),
            Dim::Campaign => out.extend([s(&k.campaign_id), s(&k.campaign)]),
            Dim::Partner => out.extend([s(&k.partner_id), s(&k.partner)]),
        }
    }
    out
}

/// The value columns of a view: `metric` or `metric_reported`,
/// `metric_reconciled`, `metric_diff`.
fn value_columns(view: View) -> Vec<(Metric, Col)> {
    let mut cols = Vec::new();
    for m in Metric::ALL {
        match view {
            View::Reported => cols.push((m, Col::Reported)),
            View::Reconciled => cols.push((m, Col::Reconciled)),
            View::Both => cols.extend([(m, Col::Reported), (m, Col::Reconciled), (m, Col::Diff)]),
        }
    }
    cols
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Reported,
    Reconciled,
    Diff,
}

fn col_name(view: View, m: Metric, c: Col) -> String {
    match (view, c) {
        (View::Both, Col::Reported) => format!("{}_reported", m.name()),
        (View::Both, Col::Reconciled) => format!("{}_reconciled", m.name()),
        (View::Both, Col::Diff) => format!("{}_diff", m.name()),
        _ => m.name().to_owned(),
    }
}

/// A cell's value. `shown` rounds a value as the format shows it: a
/// difference is that of the shown values, so it adds up on the page.
fn value(
    row: &ReportRow,
    m: Metric,
    c: Col,
    shown: impl Fn(Decimal) -> Decimal,
) -> Option<Decimal> {
    let get = |t: &Option<Totals>| t.as_ref().and_then(|t| t.metric(m));
    match c {
        Col::Reported => get(&row.reported),
        Col::Reconciled => get(&row.reconciled),
        Col::Diff => Some(shown(get(&row.reconciled)?) - shown(get(&row.reported)?)),
    }
}

/// Header and string cells shared by the table, CSV and HTML.
struct Grid {
    header: Vec<String>,
    /// Number of leading dimension (left-aligned) columns.
    dims: usize,
    rows: Vec<Vec<String>>,
    total: Vec<String>,
}

fn grid(report: &Report, human: bool, with_total: bool) -> Grid {
    let view = report.query.view;
    let vcols = value_columns(view);
    let names = vcols.iter().map(|(m, c)| col_name(view, *m, *c)).collect();
    grid_of(report, human, with_total, vcols, names)
}

/// [`grid`] over the value columns `vcols`, headed `names`.
fn grid_of(
    report: &Report,
    human: bool,
    with_total: bool,
    vcols: Vec<(Metric, Col)>,
    names: Vec<String>,
) -> Grid {
    let by = &report.query.by;
    let show_zone = !human || report.rows.iter().any(|r| !r.foreign_days.is_empty());
    // `--by ''` has no dimension column to hold the `total` label: the
    // table and HTML get an unnamed one.
    let label_column = human && dim_columns(by).is_empty();
    let mut header: Vec<String> = dim_columns(by).into_iter().map(str::to_owned).collect();
    if label_column {
        header.push(String::new());
    }
    if show_zone {
        header.push("foreign_days".into());
    }
    let dims = header.len();
    header.extend(names);
    let cells = |row: &ReportRow, dimvals: Vec<String>| {
        let mut out = dimvals;
        if show_zone {
            out.push(if human {
                human_zones(&row.foreign_days)
            } else {
                row.foreign_days.join("; ")
            });
        }
        for (m, c) in &vcols {
            let cur = report.currency.as_str();
            out.push(if human {
                let v = value(row, *m, *c, |v| display_round(*m, v, cur));
                if *c == Col::Diff && m.kind() == Kind::Percent {
                    // A difference of two percentages is in points.
                    display_points(v)
                } else {
                    display_text(*m, v, cur)
                }
            } else {
                machine_text(*m, value(row, *m, *c, |v| machine_round(*m, v, cur)), cur)
            });
        }
        out
    };
    let rows = report
        .rows
        .iter()
        .map(|r| {
            let mut dims = dim_values(by, &r.key);
            if human {
                // Names and ids from the platforms: a right-to-left
                // override or a newline cannot reorder or split the table.
                for d in &mut dims {
                    if let std::borrow::Cow::Owned(v) = crate::display_safe::visible(d) {
                        *d = v;
                    }
                }
            }
            if label_column {
                dims.push(String::new());
            }
            cells(r, dims)
        })
        .collect();
    let mut total_dims = vec![String::new(); dim_columns(by).len() + usize::from(label_column)];
    if let Some(first) = total_dims.first_mut() {
        *first = "total".into();
    }
    let total = if with_total {
        cells(&report.total, total_dims)
    } else {
        Vec::new()
    };
    let mut g = Grid {
        header,
        dims,
        rows,
        total,
    };
    if human {
        for (i, (m, _)) in vcols.iter().enumerate() {
            if m.kind() == Kind::Number {
                g.same_places(dims + i);
            }
        }
    }
    g
}

/// The `foreign_days` cell of the table and HTML: the zones only (the row
/// names its source, the notes name every label), and for more than one a
/// count, so a total listing every label does not widen the table past
/// what its split is for (KPI QA16 F5: 157-199 characters).
fn human_zones(labels: &[String]) -> String {
    let mut zones: Vec<&str> = Vec::new();
    for l in labels {
        let zone = l.rsplit_once(": ").map_or(l.as_str(), |(_, z)| z);
        if !zones.contains(&zone) {
            zones.push(zone);
        }
    }
    match zones.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => format!("{} zones (notes)", many.len()),
    }
}

impl Grid {
    /// Pads the numbers of column `col` to the same count of decimal
    /// places, so a column of conversions reads `169.0` above `335.5`,
    /// not `169` above `335.5` (platforms report fractional conversions).
    fn same_places(&mut self, col: usize) {
        let places = |c: &str| c.find('.').map_or(0, |dot| c.len() - dot - 1);
        let cells = || self.rows.iter().chain(std::iter::once(&self.total));
        let most = cells()
            .filter_map(|r| r.get(col))
            .map(|c| places(c))
            .max()
            .unwrap_or(0);
        if most == 0 {
            return;
        }
        for r in self.rows.iter_mut().chain(std::iter::once(&mut self.total)) {
            if let Some(c) = r.get_mut(col).filter(|c| !c.is_empty()) {
                let missing = most - places(c);
                if missing > 0 {
                    if !c.contains('.') {
                        c.push('.');
                    }
                    c.push_str(&"0".repeat(missing));
                }
            }
        }
    }
}

/// An instant as the KPI outputs print it: UTC, fractions of a second
/// kept when there are any (as the discrepancy report prints `judged_at`).
fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The sentences stating when and from what the report was computed
/// (QA34a A-M2): the Reckon version, the time, the store's change
/// sequence number, which version of a daemon file this is, and for the
/// reconciled view when each program's decisions were judged.
pub fn provenance_lines(report: &Report) -> Vec<String> {
    let p = &report.provenance;
    let mut first = format!("Computed by Reckon {}", crate::VERSION);
    if let Some(t) = p.generated_at {
        first.push_str(&format!(" at {}", instant(t)));
    }
    if let Some(seq) = p.store_seq {
        first.push_str(&format!(" from the records stored up to change {seq}"));
    }
    first.push('.');
    let mut lines = vec![first];
    if let Some(r) = p.revision {
        lines.push(match r.supersedes {
            Some(t) => format!(
                "Revision {} of this file: it replaces the version generated at {} (records stored or changed since, or a later day, can change its figures).",
                r.number,
                instant(t)
            ),
            None => format!("Revision {} of this file.", r.number),
        });
    }
    if !p.judged_at.is_empty() {
        let each: Vec<String> = p
            .judged_at
            .iter()
            .map(|(program, at)| match at {
                Some(t) => format!(
                    "program `{program}` as judged by its reconcile run of {}",
                    instant(*t)
                ),
                None => format!("program `{program}` with no recorded reconcile run"),
            })
            .collect();
        lines.push(format!(
            "The reconciled view reads the stored decisions of {}.",
            each.join("; ")
        ));
    }
    lines
}

/// The `[fx]` rows a report used, one string per currency pair:
/// `USD→EUR: 0.97 (row 2026-11-28) for 2026-11-29..2026-11-30, ...`;
/// days priced by one row are one range.
pub fn fx_compact(rates: &[super::FxUsed]) -> Vec<String> {
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 0;
    while let Some(r) = rates.get(i) {
        // The days of this pair priced by this row.
        let mut last = r.day;
        let mut j = i + 1;
        while let Some(n) = rates.get(j).filter(|n| {
            (&n.base, &n.quote, n.rate_date, n.rate) == (&r.base, &r.quote, r.rate_date, r.rate)
        }) {
            last = n.day;
            j += 1;
        }
        let row = match r.inverse_of {
            Some(x) => format!("1/{x}, {}→{} row {}", r.quote, r.base, r.rate_date),
            None => format!("row {}", r.rate_date),
        };
        let days = if last == r.day {
            r.day.to_string()
        } else {
            format!("{}..{last}", r.day)
        };
        let entry = format!("{} ({row}) for {days}", r.rate);
        let pair = format!("{}→{}", r.base, r.quote);
        match pairs.last_mut().filter(|(p, _)| *p == pair) {
            Some((_, entries)) => entries.push(entry),
            None => pairs.push((pair, vec![entry])),
        }
        i = j;
    }
    pairs
        .into_iter()
        .map(|(pair, entries)| format!("{pair}: {}", entries.join(", ")))
        .collect()
}

/// The sentence listing the `[fx]` rows used, if any.
fn fx_line(report: &Report) -> Option<String> {
    let pairs = fx_compact(&report.provenance.fx_rates);
    (!pairs.is_empty()).then(|| {
        format!(
            "[fx] rates used (1 unit of the first currency in the second; the row's date; the days it priced): {}.",
            pairs.join("; ")
        )
    })
}

fn preamble_lines(report: &Report) -> Vec<String> {
    let q = &report.query;
    let by: Vec<&str> = q.by.iter().map(|d| d.as_str()).collect();
    let mut lines = vec![format!(
        "KPI summary {} ({} to {}), view {}, {}, amounts in {}",
        q.period,
        q.period.from,
        q.period.to,
        q.view.as_str(),
        // `--by ''` (QA21: it read "by total").
        if by.is_empty() {
            "not grouped (one total)".to_owned()
        } else {
            format!("by {}", by.join(", "))
        },
        report.currency
    )];
    lines.extend(provenance_lines(report));
    lines.push(report.day_boundaries.clone());
    lines.extend(report.zone_labels.iter().cloned());
    lines.extend(report.notes.iter().cloned());
    lines.extend(fx_line(report));
    lines
}

/// The widest a table line may be before [`table`] splits the table in
/// two: a terminal or a mail client shows ~120 characters without
/// wrapping.
const TABLE_WIDTH: usize = 120;

/// An aligned text table with the day boundaries and notes above it.
///
/// `--view both` gives three tables one under the other, each with the
/// columns of one view's table (QA, new user: one table with
/// `metric_reported`, `metric_reconciled` and `metric_diff` for every
/// metric was 45 value columns, ~600 characters a line): the reported
/// view, the reconciled view, and the difference (reconciled − reported,
/// percentages in points). A table wider than [`TABLE_WIDTH`] is shown
/// as two, counts and amounts first, then the ratios (QA: one view by
/// channel was ~190 characters). CSV, JSON and HTML keep every column
/// in one table.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for l in preamble_lines(report) {
        out.push_str(&l);
        out.push('\n');
    }
    let views: &[(Col, &str)] = match report.query.view {
        View::Both => &[
            (
                Col::Reported,
                "Reported: as the ad platforms and networks report it",
            ),
            (Col::Reconciled, "Reconciled: order-backed, deduplicated"),
            (
                Col::Diff,
                "Difference: reconciled − reported (percentages in points)",
            ),
        ],
        View::Reported => &[(Col::Reported, "")],
        View::Reconciled => &[(Col::Reconciled, "")],
    };
    for &(c, title) in views {
        let whole = aligned_of(report, Metric::ALL.iter().map(|m| (*m, c)).collect());
        let parts = if widest(&whole) <= TABLE_WIDTH {
            vec![(title.to_owned(), whole)]
        } else {
            let (amounts, ratios) = Metric::ALL.iter().partition::<Vec<_>, _>(|m| !m.is_ratio());
            let part = |name: &str| {
                if title.is_empty() {
                    name[..1].to_uppercase() + &name[1..]
                } else {
                    format!("{title}; {name}")
                }
            };
            vec![
                (
                    part("counts and amounts"),
                    aligned_of(report, amounts.iter().map(|m| (*m, c)).collect()),
                ),
                (
                    part("ratios"),
                    aligned_of(report, ratios.iter().map(|m| (*m, c)).collect()),
                ),
            ]
        };
        for (title, t) in parts {
            out.push('\n');
            if !title.is_empty() {
                out.push_str(&title);
                out.push('\n');
            }
            out.push_str(&t);
        }
    }
    out
}

/// The aligned human table of the value columns `vcols`, each headed by
/// its metric's name.
fn aligned_of(report: &Report, vcols: Vec<(Metric, Col)>) -> String {
    let names = vcols.iter().map(|(m, _)| m.name().to_owned()).collect();
    aligned(&grid_of(report, true, true, vcols, names))
}

/// The character count of the longest line of `text`.
fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// The rows of a grid as aligned text: header, rule, rows, rule, total.
fn aligned(g: &Grid) -> String {
    let mut widths: Vec<usize> = g.header.iter().map(|h| h.chars().count()).collect();
    for r in g.rows.iter().chain(std::iter::once(&g.total)) {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = widths[i].saturating_sub(c.chars().count());
            if i < g.dims {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = String::new();
    out.push_str(&line(&g.header));
    out.push('\n');
    let rule: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
    out.push_str(&"-".repeat(rule));
    out.push('\n');
    for r in &g.rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out.push_str(&"-".repeat(rule));
    out.push('\n');
    out.push_str(&line(&g.total));
    out.push('\n');
    out
}

/// The CSV's last columns, the same on every row (appended 2026-12, after
/// the metrics, so readers by position are unaffected): when and from
/// what the report was computed, the `[fx]` rows it used, and the days it
/// covers (`period`, as JSON's: `2026-12` for a whole month,
/// `2026-12-01..2026-12-30` for part of one; appended last, QA44c C-H1: a
/// month file written before the month ended looked like the whole month).
pub const CSV_PROVENANCE_COLUMNS: [&str; 8] = [
    "generated_at",
    "store_seq",
    "reckon_version",
    "judged_at",
    "revision",
    "supersedes",
    "fx_rates",
    "period",
];

/// The cells of [`CSV_PROVENANCE_COLUMNS`].
fn csv_provenance(report: &Report) -> [String; 8] {
    let p = &report.provenance;
    let judged: Vec<String> = p
        .judged_at
        .iter()
        .map(|(program, at)| {
            format!(
                "{program}: {}",
                at.map(instant).unwrap_or_else(|| "none".into())
            )
        })
        .collect();
    [
        p.generated_at.map(instant).unwrap_or_default(),
        p.store_seq.map(|s| s.to_string()).unwrap_or_default(),
        crate::VERSION.to_owned(),
        crate::payout::render::text_cell(&judged.join("; "), true),
        p.revision.map(|r| r.number.to_string()).unwrap_or_default(),
        p.revision
            .and_then(|r| r.supersedes)
            .map(instant)
            .unwrap_or_default(),
        fx_compact(&p.fx_rates).join("; "),
        report.query.period.to_string(),
    ]
}

/// CSV: one header row, one row per group (no total row; JSON has it).
pub fn csv(report: &Report) -> Result<String, KpiError> {
    let g = grid(report, false, false);
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| KpiError::Render {
        what: "CSV".into(),
        message: e.to_string(),
    };
    let about = csv_provenance(report);
    let header = g
        .header
        .iter()
        .map(String::as_str)
        .chain(CSV_PROVENANCE_COLUMNS);
    w.write_record(header).map_err(err)?;
    for r in &g.rows {
        // Dimension cells are text from the platforms (partner and
        // campaign names): guarded against spreadsheet formulas, as in
        // statements. Metric cells are numbers and stay as they are.
        let row = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < g.dims {
                    crate::payout::render::text_cell(c, true)
                } else {
                    c.clone()
                }
            })
            .chain(about.iter().cloned());
        w.write_record(row).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| KpiError::Render {
        what: "CSV".into(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| KpiError::Render {
        what: "CSV".into(),
        message: e.to_string(),
    })
}

/// Metric values of one side as an ordered JSON object; `null` is empty.
struct MetricsJson<'a> {
    row: &'a ReportRow,
    col: Col,
    currency: &'a str,
}

impl Serialize for MetricsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(Metric::ALL.len()))?;
        for m in Metric::ALL {
            let cur = self.currency;
            let v = value(self.row, m, self.col, |v| machine_round(m, v, cur));
            map.serialize_entry(m.name(), &v.map(|v| machine_text(m, Some(v), cur)))?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct RowJson<'a> {
    #[serde(flatten)]
    key: &'a RowKey,
    foreign_days: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    reported: Option<MetricsJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reconciled: Option<MetricsJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    difference: Option<MetricsJson<'a>>,
}

impl<'a> RowJson<'a> {
    fn new(row: &'a ReportRow, view: View, currency: &'a str) -> Self {
        RowJson {
            key: &row.key,
            foreign_days: &row.foreign_days,
            reported: view.has_reported().then_some(MetricsJson {
                row,
                col: Col::Reported,
                currency,
            }),
            reconciled: view.has_reconciled().then_some(MetricsJson {
                row,
                col: Col::Reconciled,
                currency,
            }),
            difference: (view == View::Both).then_some(MetricsJson {
                row,
                col: Col::Diff,
                currency,
            }),
        }
    }
}

/// `judged_at`: program → instant (or `null`), in config order.
struct JudgedJson<'a>(&'a [(String, Option<chrono::DateTime<chrono::Utc>>)]);

impl Serialize for JudgedJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (program, at) in self.0 {
            map.serialize_entry(program, &at.map(instant))?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct ReportJson<'a> {
    period: String,
    from: String,
    to: String,
    view: View,
    by: &'a [Dim],
    timezone: &'a str,
    currency: &'a str,
    generated_at: Option<String>,
    store_seq: Option<u64>,
    reckon_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supersedes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    judged_at: Option<JudgedJson<'a>>,
    day_boundaries: &'a str,
    zone_labels: &'a [String],
    notes: &'a [String],
    fx_rates: &'a [super::FxUsed],
    rows: Vec<RowJson<'a>>,
    total: RowJson<'a>,
}

/// JSON: the query, boundaries and notes, rows and the total. Values are
/// decimal strings (sums exact, ratios to 6 places), `null` when empty.
pub fn json(report: &Report) -> Result<String, KpiError> {
    let q = &report.query;
    let doc = ReportJson {
        period: q.period.to_string(),
        from: q.period.from.to_string(),
        to: q.period.to.to_string(),
        view: q.view,
        by: &q.by,
        timezone: &report.timezone,
        currency: &report.currency,
        generated_at: report.provenance.generated_at.map(instant),
        store_seq: report.provenance.store_seq,
        reckon_version: crate::VERSION,
        revision: report.provenance.revision.map(|r| r.number),
        supersedes: report
            .provenance
            .revision
            .and_then(|r| r.supersedes)
            .map(instant),
        judged_at: q
            .view
            .has_reconciled()
            .then_some(JudgedJson(&report.provenance.judged_at)),
        day_boundaries: &report.day_boundaries,
        zone_labels: &report.zone_labels,
        notes: &report.notes,
        fx_rates: &report.provenance.fx_rates,
        rows: report
            .rows
            .iter()
            .map(|r| RowJson::new(r, q.view, &report.currency))
            .collect(),
        total: RowJson::new(&report.total, q.view, &report.currency),
    };
    let mut s = serde_json::to_string_pretty(&doc).map_err(|e| KpiError::Render {
        what: "JSON".into(),
        message: e.to_string(),
    })?;
    s.push('\n');
    Ok(s)
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}p.meta{color:#444;margin:.2em 0}ul.notes{color:#8a4b00}\
.charts{display:flex;flex-wrap:wrap;gap:1.5em;margin:1.5em 0}\
figure{margin:0}figcaption{font-weight:600;margin-bottom:.3em}\
table{border-collapse:collapse;font-size:.85em}\
th,td{border:1px solid #ccc;padding:.25em .5em;white-space:nowrap}\
th{background:#f2f2f2;position:sticky;top:0}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.total td{font-weight:700;background:#fafafa}\
@media print{.charts{page-break-inside:avoid}}";

/// A self-contained HTML page: summary lines, the charts (inline SVG) and the
/// table. Needs no network connection.
pub fn html(report: &Report, charts: Option<&ChartData>) -> Result<String, KpiError> {
    let q = &report.query;
    let g = grid(report, true, true);
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!(
        "<title>KPI summary {} ({})</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&q.period.to_string()),
        q.view.as_str()
    ));
    let lines = preamble_lines(report);
    out.push_str(&format!("<h1>{}</h1>\n", escape(&lines[0])));
    for l in provenance_lines(report) {
        out.push_str(&format!(
            "<p class=\"meta provenance\">{}</p>\n",
            escape(&l)
        ));
    }
    out.push_str(&format!(
        "<p class=\"meta\" id=\"day-boundaries\">{}</p>\n",
        escape(&report.day_boundaries)
    ));
    for z in &report.zone_labels {
        out.push_str(&format!("<p class=\"meta zone\">{}</p>\n", escape(z)));
    }
    if !report.notes.is_empty() {
        out.push_str("<ul class=\"notes\">\n");
        for n in &report.notes {
            out.push_str(&format!("<li>{}</li>\n", escape(n)));
        }
        out.push_str("</ul>\n");
    }
    if let Some(l) = fx_line(report) {
        out.push_str(&format!(
            "<p class=\"meta\" id=\"fx-rates\">{}</p>\n",
            escape(&l)
        ));
    }
    if let Some(c) = charts {
        out.push_str("<div class=\"charts\">\n");
        for chart in super::chart::draw_all(c, &report.currency)? {
            out.push_str(&format!(
                "<figure class=\"chart\" data-chart=\"{}\">\n<figcaption>{}</figcaption>\n{}\n</figure>\n",
                chart.id,
                escape(&chart.title),
                chart.svg
            ));
        }
        out.push_str("</div>\n");
    }
    out.push_str("<table>\n<thead><tr>");
    for h in &g.header {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let row = |out: &mut String, cells: &[String], class: &str| {
        out.push_str(&format!("<tr{class}>"));
        for (i, c) in cells.iter().enumerate() {
            let cls = if i < g.dims { "" } else { " class=\"n\"" };
            out.push_str(&format!("<td{cls}>{}</td>", escape(c)));
        }
        out.push_str("</tr>\n");
    };
    for r in &g.rows {
        row(&mut out, r, "");
    }
    row(&mut out, &g.total, " class=\"total\"");
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_foreign_days_cell_names_zones_not_labels() {
        let labels = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(human_zones(&[]), "");
        assert_eq!(
            human_zones(&labels(&["google_us: America/New_York"])),
            "America/New_York"
        );
        assert_eq!(
            human_zones(&labels(&[
                "google_us: America/New_York",
                "google_ca: America/New_York"
            ])),
            "America/New_York"
        );
        assert_eq!(
            human_zones(&labels(&[
                "google_us: America/New_York",
                "meta_eu: Europe/London",
                "tiktok: UTC"
            ])),
            "3 zones (notes)"
        );
    }

    fn column(cells: &[&str]) -> Grid {
        let row = |c: &str| vec!["x".to_owned(), c.to_owned()];
        let (total, rows) = cells.split_last().expect("cells");
        Grid {
            header: vec!["dim".into(), "conversions".into()],
            dims: 1,
            rows: rows.iter().map(|c| row(c)).collect(),
            total: row(total),
        }
    }

    fn shown(g: &Grid) -> Vec<&str> {
        g.rows
            .iter()
            .chain([&g.total])
            .map(|r| r[1].as_str())
            .collect()
    }

    /// QA (new user): fractional conversions (`335.5`) beside whole ones
    /// read as `169` above `335.5`; the column now has one count of places.
    #[test]
    fn a_number_column_has_one_count_of_places() {
        let mut g = column(&["169", "335.5", "", "-2", "0.25", "504.75"]);
        g.same_places(1);
        assert_eq!(
            shown(&g),
            ["169.00", "335.50", "", "-2.00", "0.25", "504.75"]
        );
        let mut whole = column(&["3", "1", "4"]);
        whole.same_places(1);
        assert_eq!(shown(&whole), ["3", "1", "4"]);
    }
}
