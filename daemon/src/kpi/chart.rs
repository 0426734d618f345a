//! The HTML report's charts, drawn by `plotters` into inline SVG strings:
//! spend and revenue over time, ROAS by channel, CPA by campaign.
//!
//! Display-only: chart coordinates are `f64` converted from the exact
//! decimals with `Decimal::to_f64` at the last moment; no figure shown in a
//! table or file is computed here.
// Float arithmetic is allowed in this module only, for pixel coordinates of
// the charts (display-only; money is never computed in floats).
#![allow(clippy::float_arithmetic)]

use plotters::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::engine::{Engine, Report};
use super::metrics::{Metric, Totals};
use super::{Dim, KpiError, Query, View};

/// Campaigns shown in the CPA chart (those with the highest cost).
pub const TOP_CAMPAIGNS: usize = 12;

/// The three groupings the charts are drawn from.
#[derive(Debug, Clone)]
pub struct ChartData {
    /// The view the main report shows.
    pub view: View,
    /// Every day of the period.
    pub days: Vec<chrono::NaiveDate>,
    /// By day.
    pub by_day: Report,
    /// By channel.
    pub by_channel: Report,
    /// By source and campaign.
    pub by_campaign: Report,
}

impl ChartData {
    /// Computes the groupings for a query's period and view.
    pub fn build(engine: &Engine<'_>, query: &Query) -> Result<ChartData, super::KpiError> {
        let q = |by: Vec<Dim>| Query {
            period: query.period,
            by,
            view: query.view,
        };
        Ok(ChartData {
            view: query.view,
            days: query.period.days().collect(),
            by_day: engine.report(&q(vec![Dim::Day]))?,
            by_channel: engine.report(&q(vec![Dim::Channel]))?,
            by_campaign: engine.report(&q(vec![Dim::Source, Dim::Campaign]))?,
        })
    }
}

/// One drawn chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Stable id (`spend_revenue`, `roas_by_channel`, `cpa_by_campaign`).
    pub id: &'static str,
    /// Caption.
    pub title: String,
    /// The `<svg>` element.
    pub svg: String,
}

fn f(v: Decimal) -> f64 {
    v.to_f64().unwrap_or(0.0)
}

fn err(what: &str) -> impl Fn(String) -> KpiError + '_ {
    move |message| KpiError::Render {
        what: format!("{what} chart"),
        message,
    }
}

/// A series: its legend name, colour and which side of a row it reads.
struct Series {
    name: &'static str,
    color: RGBColor,
    side: fn(&super::engine::ReportRow) -> Option<Totals>,
}

const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN_: RGBColor = RGBColor(44, 160, 44);

fn sides(view: View) -> Vec<Series> {
    let rep = Series {
        name: "reported",
        color: ORANGE,
        side: |r| r.reported,
    };
    let rec = Series {
        name: "reconciled",
        color: GREEN_,
        side: |r| r.reconciled,
    };
    match view {
        View::Reported => vec![rep],
        View::Reconciled => vec![rec],
        View::Both => vec![rep, rec],
    }
}

/// Draws all three charts.
pub fn draw_all(data: &ChartData, currency: &str) -> Result<Vec<Chart>, KpiError> {
    Ok(vec![
        spend_revenue(data, currency)?,
        bars(
            "roas_by_channel",
            "ROAS by channel (revenue ÷ cost)".into(),
            &data.by_channel,
            Metric::Roas,
            data.view,
            |r| r.key.channel.clone().unwrap_or_default(),
            None,
        )?,
        bars(
            "cpa_by_campaign",
            format!("CPA by campaign ({currency} per conversion, top {TOP_CAMPAIGNS} by cost)"),
            &data.by_campaign,
            Metric::Cpa,
            data.view,
            |r| {
                let name = r.key.campaign.as_deref().unwrap_or_default();
                let name = crate::display_safe::visible(name);
                let src = r.key.source.clone().unwrap_or_default();
                if name.is_empty() {
                    format!("{src}: (none)")
                } else {
                    format!("{src}: {name}")
                }
            },
            Some(TOP_CAMPAIGNS),
        )?,
    ])
}

/// A day's point: the known part of the amount, and whether part of it
/// is unknown (a claim without a sale amount, an amount without an FX
/// rate): such a point is marked, never drawn as if complete.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Point {
    known: f64,
    partial: bool,
}

/// The spend and the revenue of each side, per day of the period.
fn daily_points(data: &ChartData, sides: &[Series]) -> (Vec<Point>, Vec<Vec<Point>>) {
    let n = data.days.len();
    let index = |d: chrono::NaiveDate| data.days.iter().position(|x| *x == d);
    let mut spend = vec![Point::default(); n];
    let mut revenue = vec![vec![Point::default(); n]; sides.len()];
    for row in &data.by_day.rows {
        let Some(i) = row.key.day.and_then(index) else {
            continue;
        };
        // Unknown amounts add nothing to the day's point, which shows the
        // known part and is marked partial (QA34a A-M1: one claim without
        // a sale amount drew the whole day's revenue at 0).
        let any = row.reported.or(row.reconciled).unwrap_or_default();
        spend[i] = Point {
            known: f(any.spend),
            partial: !any.spend_known(),
        };
        for (s, series) in sides.iter().enumerate() {
            if let Some(t) = (series.side)(row) {
                revenue[s][i] = Point {
                    known: f(t.revenue),
                    partial: !t.revenue_known(),
                };
            }
        }
    }
    (spend, revenue)
}

/// The legend entry of the marks on partial days.
pub const PARTIAL_LEGEND: &str = "partial day: known amounts only";

fn spend_revenue(data: &ChartData, currency: &str) -> Result<Chart, KpiError> {
    let e = err("spend and revenue");
    let n = data.days.len();
    let sides = sides(data.view);
    let (spend, revenue) = daily_points(data, &sides);
    let max = spend
        .iter()
        .chain(revenue.iter().flatten())
        .fold(0.0f64, |a, b| a.max(b.known));
    let any_partial = spend
        .iter()
        .chain(revenue.iter().flatten())
        .any(|p| p.partial);
    // Head room at the top for the legend.
    let top = if max > 0.0 { max * 1.3 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let x_max = (n.max(2) - 1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..top)
            .map_err(|x| e(x.to_string()))?;
        let days = &data.days;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 15))
            .light_line_style(WHITE.mix(0.0))
            .x_labels(n.clamp(2, 10))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                days.get(i as usize)
                    .map(|d| d.format("%m-%d").to_string())
                    .unwrap_or_default()
            })
            .y_desc(currency)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        let mut legend_partial = any_partial;
        let mut draw =
            |name: String, color: RGBColor, ys: &[Point]| -> Result<(), KpiError> {
                chart
                    .draw_series(LineSeries::new(
                        ys.iter().enumerate().map(|(i, y)| (i as f64, y.known)),
                        color.stroke_width(2),
                    ))
                    .map_err(|x| e(x.to_string()))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                // A hollow ring on each partial day (its known part).
                let rings =
                    chart
                        .draw_series(ys.iter().enumerate().filter(|(_, y)| y.partial).map(
                            |(i, y)| Circle::new((i as f64, y.known), 5, color.stroke_width(2)),
                        ))
                        .map_err(|x| e(x.to_string()))?;
                if ys.iter().any(|y| y.partial) && std::mem::take(&mut legend_partial) {
                    rings.label(PARTIAL_LEGEND).legend(|(x, y)| {
                        Circle::new((x + 9, y), 5, BLACK.mix(0.7).stroke_width(2))
                    });
                }
                Ok(())
            };
        draw("spend".into(), BLUE_, &spend)?;
        for (s, series) in sides.iter().enumerate() {
            draw(
                format!("revenue ({})", series.name),
                series.color,
                &revenue[s],
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(Chart {
        id: "spend_revenue",
        title: if any_partial {
            format!(
                "Spend and revenue per day ({currency}; ○: part of the day's amounts unknown, the known part drawn)"
            )
        } else {
            format!("Spend and revenue per day ({currency})")
        },
        svg,
    })
}

/// Horizontal bars of one ratio per category, one bar per view side.
#[allow(clippy::too_many_arguments)]
fn bars(
    id: &'static str,
    title: String,
    report: &Report,
    metric: Metric,
    view: View,
    label: impl Fn(&super::engine::ReportRow) -> String,
    top: Option<usize>,
) -> Result<Chart, KpiError> {
    let e = err(id);
    let sides = sides(view);
    let mut rows: Vec<_> = report
        .rows
        .iter()
        .filter(|r| {
            sides
                .iter()
                .any(|s| (s.side)(r).and_then(|t| t.metric(metric)).is_some())
        })
        .collect();
    if let Some(k) = top {
        // Highest cost first; ties by key for determinism (a report whose
        // cost leaves the range is refused before it is charted).
        let cost = |r: &super::engine::ReportRow| {
            (r.reported.or(r.reconciled).unwrap_or_default().cost()).unwrap_or_default()
        };
        rows.sort_by(|a, b| cost(b).cmp(&cost(a)).then_with(|| a.key.cmp(&b.key)));
        rows.truncate(k);
    }
    let names: Vec<String> = rows.iter().map(|r| label(r)).collect();
    let vals: Vec<Vec<Option<f64>>> = rows
        .iter()
        .map(|r| {
            sides
                .iter()
                .map(|s| (s.side)(r).and_then(|t| t.metric(metric)).map(f))
                .collect()
        })
        .collect();
    let n = rows.len().max(1);
    let max = vals
        .iter()
        .flatten()
        .flatten()
        .fold(0.0f64, |a, b| a.max(*b));
    let min = vals
        .iter()
        .flatten()
        .flatten()
        .fold(0.0f64, |a, b| a.min(*b));
    // Head room on the right for the legend.
    let hi = if max > 0.0 { max * 1.4 } else { 1.0 };
    let height = (60 + 34 * n as u32).max(200);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(220)
            .build_cartesian_2d(min..hi, -0.5f64..(n as f64 - 0.5))
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 15))
            .y_labels(n)
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                names
                    .get(i as usize)
                    .map(|s| truncate(s, 34))
                    .unwrap_or_default()
            })
            .x_label_formatter(&|x| format!("{x:.2}"))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        let k = sides.len() as f64;
        let band = 0.8 / k;
        for (s, series) in sides.iter().enumerate() {
            let color = series.color;
            chart
                .draw_series(vals.iter().enumerate().filter_map(|(i, v)| {
                    let v = v[s]?;
                    let y0 = i as f64 - 0.4 + band * s as f64;
                    Some(Rectangle::new(
                        [(0.0, y0), (v, y0 + band * 0.9)],
                        color.filled(),
                    ))
                }))
                .map_err(|x| e(x.to_string()))?
                .label(series.name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(Chart { id, title, svg })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
