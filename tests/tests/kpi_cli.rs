//! `reckon kpi` end to end: records in a real store, the real binary, every
//! format; and the daemon's summary hook writing files once per schedule.
mod kpi_fixtures;

use std::path::Path;
use std::process::Command;

use kpi_fixtures::*;
use plugin_api::Record;
use reckon::store::Store;

const CONFIG: &str = r#"
[daemon]
data_dir = "data"
output_dir = "out"
timezone = "Europe/Berlin"

[[connectors]]
id = "google_ads"
plugin = "google_ads"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "meta_ads"
plugin = "meta_ads"
schedule = "0 * * * *"
enabled = false

[kpi]
currency = "EUR"

[[kpi.attribution]]
utm_source = "google"
connector = "google_ads"

[[kpi.attribution]]
click_id_prefix = "fbclid-"
connector = "meta_ads"
"#;

/// A config and a store holding the two-network scenario's records.
fn setup(dir: &Path) {
    std::fs::write(dir.join("reckon.toml"), CONFIG).expect("config");
    let store = Store::open(&dir.join("data")).expect("store");
    let s = two_network_scenario();
    let now = at("2026-12-01T00:00:00Z");
    let mut by_source: std::collections::BTreeMap<String, Vec<Record>> = Default::default();
    for r in s
        .spend
        .into_iter()
        .map(Record::Spend)
        .chain(s.claims.into_iter().map(Record::Conversion))
        .chain(s.orders.into_iter().map(Record::Order))
    {
        by_source.entry(r.source().to_owned()).or_default().push(r);
    }
    for (source, records) in &by_source {
        store
            .commit_page(source, records, None, now)
            .expect("commit");
    }
    store.flush().expect("flush");
}

fn kpi(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(dir.join("reckon.toml"))
        .arg("kpi")
        .args(args)
        .output()
        .expect("run reckon")
}

#[test]
fn kpi_answers_every_format_from_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());

    let out = kpi(
        tmp.path(),
        &["--period", "2026-11", "--by", "channel", "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["timezone"], "Europe/Berlin");
    // Seven live claims + 3 Google + 2.5 Meta platform conversions.
    assert_eq!(v["total"]["reported"]["conversions"], "12.5");
    // Six real orders, whatever reconciliation has decided so far.
    assert_eq!(v["total"]["reconciled"]["conversions"], "6");

    let out = kpi(
        tmp.path(),
        &[
            "--period",
            "2026-11-01..2026-11-30",
            "--by",
            "source,campaign",
            "--view",
            "reported",
            "--format",
            "csv",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        csv.starts_with("source,campaign_id,campaign,foreign_days,impressions"),
        "{csv}"
    );
    assert!(
        csv.contains(
            "google_ads,g-1,Brand Search,google_ads: America/New_York,1000,40,120.00,3,240.00"
        ),
        "{csv}"
    );

    let out = kpi(
        tmp.path(),
        &["--period", "2026-11", "--by", "", "--format", "table"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        table.contains("Days are 00:00–24:00 Europe/Berlin"),
        "{table}"
    );

    let html = tmp.path().join("report.html");
    let out = kpi(
        tmp.path(),
        &[
            "--period", "2026-11", "--by", "day", "--format", "html", "--out",
        ],
    );
    assert!(!out.status.success(), "--out needs a value");
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(tmp.path().join("reckon.toml"))
        .args([
            "kpi", "--period", "2026-11", "--by", "day", "--format", "html", "--out",
        ])
        .arg(&html)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let page = std::fs::read_to_string(&html).expect("html written");
    assert_eq!(page.matches("<svg").count(), 3);
}

#[test]
fn bad_arguments_are_explained() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let out = kpi(tmp.path(), &["--period", "November", "--format", "csv"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected YYYY-MM"), "{err}");
    let out = kpi(tmp.path(), &["--period", "2026-11", "--by", "country"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("use day, channel, source, campaign, partner"),
        "{err}"
    );
}

#[test]
fn the_summary_hook_writes_once_per_schedule() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let config = reckon::config::load(&tmp.path().join("reckon.toml")).expect("config");
    let kpi = config.kpi.clone().expect("[kpi]");
    let store = Store::open(&tmp.path().join("data")).expect("store");
    // 06:30 Berlin on 8 November: the 06:00 summaries are due.
    let files = reckon::kpi::hook::run_if_due(&store, &config, &kpi, at("2026-11-08T05:30:00Z"))
        .expect("hook")
        .expect("due");
    assert_eq!(files.len(), 6);
    assert!(tmp.path().join("out/kpi/daily/2026-11-07.csv").exists());
    assert!(tmp.path().join("out/kpi/monthly/2026-11.html").exists());
    // Later the same day: already written.
    let again = reckon::kpi::hook::run_if_due(&store, &config, &kpi, at("2026-11-08T09:00:00Z"))
        .expect("hook");
    assert_eq!(again, None);
    // The next morning: due again.
    let next = reckon::kpi::hook::run_if_due(&store, &config, &kpi, at("2026-11-09T05:01:00Z"))
        .expect("hook");
    assert!(next.is_some());
    assert!(tmp.path().join("out/kpi/daily/2026-11-08.json").exists());
}

/// An `--out` that cannot be written names the file and the OS error once
/// (it used to repeat the OS error: message and cause both carried it).
#[test]
fn an_unwritable_out_file_names_the_os_error_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let target = tmp.path().join("nonexistent").join("x.csv");
    let out = kpi(
        tmp.path(),
        &[
            "--period",
            "2026-11",
            "--format",
            "csv",
            "--out",
            target.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: writing {}: No such file or directory (os error 2)",
            target.display()
        ),
        "{stderr}"
    );
}

/// A data_dir without a store (mistyped, or nothing synced yet) is an error
/// naming it, and `reckon kpi` does not create it (regression: a report of
/// zeros "in XXX", exit 0, and an empty store left behind).
#[test]
fn a_data_dir_without_a_store_is_an_error_and_is_not_created() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("reckon.toml"),
        CONFIG.replace("data_dir = \"data\"", "data_dir = \"dta\""),
    )
    .expect("config");
    let out = kpi(tmp.path(), &["--period", "2026-11"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Reckon store in"), "{err}");
    assert!(err.contains("dta"), "{err}");
    assert!(!tmp.path().join("dta").exists(), "kpi created the data dir");
}

/// A store with nothing in the period says so instead of a bare report of
/// zeros.
#[test]
fn a_period_without_records_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let out = kpi(tmp.path(), &["--period", "2025-01", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let notes = v["notes"].to_string();
    assert!(notes.contains("No records in the period"), "{notes}");
    // A period with records has no such note.
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(!v["notes"].to_string().contains("No records"), "{v}");
}

const PROGRAM: &str = r#"
[[connectors]]
id = "shop"
plugin = "shopify"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "awin"
plugin = "awin"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "impact"
plugin = "impact"
schedule = "0 * * * *"
enabled = false

[[programs]]
id = "main"
currency = "EUR"
claims = ["awin", "impact"]
orders = ["shop"]
"#;

/// Claims or orders stored after the last `reckon reconcile` are not in the
/// reconciled view yet (a new order shows as `unattributed`): the report
/// says so, per program, on stderr and in its notes.
#[test]
fn records_newer_than_the_last_reconcile_run_are_flagged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let path = tmp.path().join("reckon.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, format!("{text}{PROGRAM}")).expect("config");

    // Never reconciled.
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["notes"]
            .to_string()
            .contains("Program `main` has not been reconciled"),
        "{}",
        v["notes"]
    );

    let config = reckon::config::load(&path).expect("config");
    {
        let store = Store::open(&tmp.path().join("data")).expect("store");
        let fx = reckon::reconcile::fx_table(&config).expect("fx");
        reckon::reconcile::run(&store, &config.programs, &fx, at("2026-12-01T00:00:00Z"))
            .expect("reconcile");
        store.flush().expect("flush");
    }
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        !v["notes"].to_string().contains("reckon reconcile"),
        "up to date: {}",
        v["notes"]
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A sync adds an order (a claim's order) after the run.
    {
        let store = Store::open(&tmp.path().join("data")).expect("store");
        let o = order("O9", "2026-11-12T10:00:00Z", "70.00", None, &[]);
        store
            .commit_page(
                "shop",
                &[Record::Order(o)],
                None,
                at("2026-12-02T00:00:00Z"),
            )
            .expect("commit");
        store.flush().expect("flush");
    }
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "csv"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: Reconciliation of program `main` is out of date: 1 order stored after its last run"),
        "{err}"
    );
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["notes"].to_string().contains("run `reckon reconcile`"),
        "{}",
        v["notes"]
    );
}
