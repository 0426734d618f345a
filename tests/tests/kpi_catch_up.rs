//! QA44c C-H1: the daemon's KPI summary files after missed fires (the
//! daemon down, or no sync after a fire). The first write after them
//! catches up every day and whole month that ended since the last write,
//! and a failure or restart in the middle goes on where it stopped,
//! neither writing a file again nor skipping one.
mod kpi_fixtures;

use std::path::Path;

use kpi_fixtures::*;
use plugin_api::{Channel, Record};
use reckon::kpi::hook::run_if_due;
use reckon::store::Store;

/// 10.00 EUR of Google spend on `d`.
fn google(d: &str) -> Record {
    Record::Spend(spend(
        "google_ads",
        d,
        "Europe/Berlin",
        ("g-1", "Brand"),
        Channel::Search,
        100,
        4,
        "10.00",
        Some("1"),
        Some("30.00"),
    ))
}

fn json(dir: &Path, file: &str) -> serde_json::Value {
    let path = dir.join("out/kpi").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("json")
}

/// The CSV's `period` column (its last) on each row.
fn csv_periods(dir: &Path, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("out/kpi").join(file)).expect(file);
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    assert!(header.ends_with(",fx_rates,period"), "{header}");
    lines
        .map(|l| l.rsplit(',').next().unwrap_or_default().to_owned())
        .collect()
}

/// The reproduction of C-H1 (a run at 31 December 12:00, the next at 2
/// January 12:00), with a failure in the middle of a longer catch-up: a
/// daily file that cannot be written stops the write there; the next
/// write, after the fault is gone, writes the rest and nothing again.
#[test]
fn missed_days_and_months_are_caught_up_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = summaries_daemon_config(tmp.path(), r#""csv", "json""#);
    let kpi = config.kpi.clone().expect("[kpi]");
    let store = Store::open(&tmp.path().join("data")).expect("store");
    let days: Vec<String> = (0..64)
        .map(|i| (day("2026-12-01") + chrono::Days::new(i)).to_string())
        .collect();
    let records: Vec<Record> = days.iter().map(|d| google(d)).collect();
    store
        .commit_page("google_ads", &records, None, at("2026-12-01T00:00:00Z"))
        .expect("commit");
    let spend = |v: &serde_json::Value| v["total"]["reported"]["spend"].clone();
    let dir = tmp.path();

    // 31 December 12:00 (Berlin 13:00): 30 December and the month to date.
    run_if_due(&store, &config, &kpi, at("2026-12-31T12:00:00Z"))
        .expect("hook")
        .expect("due");
    assert_eq!(
        json(dir, "monthly/2026-12.json")["period"],
        "2026-12-01..2026-12-30"
    );
    assert_eq!(
        csv_periods(dir, "monthly/2026-12.csv"),
        ["2026-12-01..2026-12-30"]
    );

    // Down until 2 January 12:00: 31 December's daily file, December
    // whole (it stayed 1–30 December for good), then 1 January.
    run_if_due(&store, &config, &kpi, at("2027-01-02T12:00:00Z"))
        .expect("hook")
        .expect("due");
    assert_eq!(spend(&json(dir, "daily/2026-12-31.json")), "10.00");
    let december = json(dir, "monthly/2026-12.json");
    assert_eq!(december["period"], "2026-12");
    assert_eq!(spend(&december), "310.00");
    assert_eq!(csv_periods(dir, "monthly/2026-12.csv"), ["2026-12"]);
    assert_eq!(
        json(dir, "monthly/2027-01.json")["period"],
        "2027-01-01..2027-01-01"
    );

    // Down again until 3 February 12:00, and 15 January's CSV cannot be
    // written (a directory where the file goes): the write fails there,
    // the days and month before it done.
    let blocked = dir.join("out/kpi/daily/2027-01-15.csv");
    std::fs::create_dir_all(&blocked).expect("block");
    let first_try = at("2027-02-03T12:00:00Z");
    let err = run_if_due(&store, &config, &kpi, first_try).expect_err("blocked");
    assert!(err.to_string().contains("2027-01-15.csv"), "{err}");
    assert_eq!(
        json(dir, "daily/2027-01-14.json")["generated_at"],
        "2027-02-03T12:00:00Z"
    );
    assert!(!dir.join("out/kpi/daily/2027-01-16.json").exists());
    assert!(!dir.join("out/kpi/daily/2027-02-02.json").exists());

    // The next sync, the fault gone: it goes on from 15 January.
    std::fs::remove_dir(&blocked).expect("unblock");
    let retry = at("2027-02-03T13:00:00Z");
    let files = run_if_due(&store, &config, &kpi, retry)
        .expect("hook")
        .expect("still due");
    // 15 January to 1 February, January whole, then 2 February and
    // February to date, in CSV and JSON.
    assert_eq!(files.len(), (18 + 1 + 2) * 2, "{files:?}");
    let first = json(dir, "daily/2027-01-14.json");
    assert_eq!(
        (&first["generated_at"], &first["revision"]),
        (
            &serde_json::json!("2027-02-03T12:00:00Z"),
            &serde_json::json!(1)
        ),
        "written once"
    );
    for d in &days[45..63] {
        let daily = json(dir, &format!("daily/{d}.json"));
        assert_eq!(
            (&daily["generated_at"], spend(&daily)),
            (
                &serde_json::json!("2027-02-03T13:00:00Z"),
                serde_json::json!("10.00")
            ),
            "{d}"
        );
    }
    let january = json(dir, "monthly/2027-01.json");
    assert_eq!(
        (january["period"].as_str(), spend(&january)),
        (Some("2027-01"), "310.00".into())
    );
    assert_eq!(
        json(dir, "monthly/2027-02.json")["period"],
        "2027-02-01..2027-02-02"
    );
    // The first day of the gap (31 days before yesterday) is not left out.
    assert!(dir.join("out/kpi/daily/2027-01-02.json").exists());

    // Caught up: later the same day nothing is due.
    assert_eq!(
        run_if_due(&store, &config, &kpi, at("2027-02-03T15:00:00Z")).expect("hook"),
        None
    );
}
