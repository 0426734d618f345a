//! The daemon's scheduled summaries: which periods a run covers, the files
//! it writes into `<output_dir>/kpi/`, and when it next runs.
mod kpi_fixtures;

use kpi_fixtures::*;
use reckon::fx::FxTable;
use reckon::kpi::config::SummariesConfig;
use reckon::kpi::summary::{next_run, summary_periods, write_summaries};
use reckon::kpi::{KpiInputs, Period, ReportingZone};

fn berlin() -> ReportingZone {
    ReportingZone::parse("Europe/Berlin").expect("zone")
}

#[test]
fn a_run_covers_yesterday_and_the_month_to_date() {
    // 00:30 Berlin on 8 November is still the 7th in UTC.
    let (daily, monthly) = summary_periods(berlin(), at("2026-11-07T23:30:00Z"));
    assert_eq!(daily, Period::day(day("2026-11-07")));
    assert_eq!(
        monthly,
        Period::new(day("2026-11-01"), day("2026-11-07")).expect("period")
    );
    // On the 1st the monthly summary is the whole previous month.
    let (daily, monthly) = summary_periods(berlin(), at("2026-12-01T05:00:00Z"));
    assert_eq!(daily, Period::day(day("2026-11-30")));
    assert_eq!(monthly, "2026-11".parse::<Period>().expect("month"));
}

#[test]
fn writes_daily_and_monthly_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config();
    let fx = FxTable::default();
    let scenario = two_network_scenario();
    let mut asked = Vec::new();
    let files = write_summaries(
        ctx("Europe/Berlin", &cfg, &fx),
        &SummariesConfig::default(),
        dir.path(),
        at("2026-11-08T05:00:00Z"),
        |p: &Period| {
            asked.push(*p);
            Ok::<KpiInputs, reckon::kpi::KpiError>(scenario.clone())
        },
        |_, _| Ok(None),
    )
    .expect("written");
    assert_eq!(asked.len(), 2);
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(dir.path())
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "kpi/daily/2026-11-07.csv",
            "kpi/daily/2026-11-07.json",
            "kpi/daily/2026-11-07.html",
            "kpi/monthly/2026-11.csv",
            "kpi/monthly/2026-11.json",
            "kpi/monthly/2026-11.html",
        ]
    );
    let daily: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("kpi/daily/2026-11-07.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(daily["period"], "2026-11-07..2026-11-07");
    // Only O6 (direct) was ordered on the 7th.
    assert_eq!(daily["total"]["reconciled"]["conversions"], "1");
    let monthly: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("kpi/monthly/2026-11.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(monthly["period"], "2026-11-01..2026-11-07");
    assert_eq!(monthly["total"]["reconciled"]["conversions"], "6");
    let html = std::fs::read_to_string(dir.path().join("kpi/monthly/2026-11.html")).expect("read");
    assert_eq!(html.matches("<svg").count(), 3);
    // No temporary files are left behind.
    let leftovers = std::fs::read_dir(dir.path().join("kpi/daily"))
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .expect("entry")
                .path()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn next_run_follows_the_cron_in_the_reporting_zone() {
    let cfg = SummariesConfig::default();
    // 06:00 in Berlin is 05:00 UTC in winter and 04:00 UTC in summer.
    assert_eq!(
        next_run(&cfg, berlin(), at("2026-11-08T04:00:00Z")).expect("ok"),
        Some(at("2026-11-08T05:00:00Z"))
    );
    assert_eq!(
        next_run(&cfg, berlin(), at("2026-07-08T04:30:00Z")).expect("ok"),
        Some(at("2026-07-09T04:00:00Z"))
    );
    // Parsed as connector schedules are: day-of-week 1 is Monday (crontab),
    // not the cron crate's Sunday. 2026-11-08 is a Sunday.
    let mondays = SummariesConfig {
        schedule: "0 6 * * 1".into(),
        ..SummariesConfig::default()
    };
    assert_eq!(
        next_run(&mondays, berlin(), at("2026-11-08T04:00:00Z")).expect("ok"),
        Some(at("2026-11-09T05:00:00Z"))
    );
    let off = SummariesConfig {
        enabled: false,
        ..SummariesConfig::default()
    };
    assert_eq!(
        next_run(&off, berlin(), at("2026-11-08T04:00:00Z")).expect("ok"),
        None
    );
    let bad = SummariesConfig {
        schedule: "every morning".into(),
        ..SummariesConfig::default()
    };
    let err = next_run(&bad, berlin(), at("2026-11-08T04:00:00Z")).expect_err("bad cron");
    assert!(
        err.to_string().contains("[kpi.summaries] schedule"),
        "{err}"
    );
}
