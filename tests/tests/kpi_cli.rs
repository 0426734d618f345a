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
    // QA21: the heading read "by total".
    assert!(
        table.contains(", not grouped (one total), amounts in"),
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
    // Once, and naming the missing directory and what to do (QA20 F9).
    let dir = target.parent().unwrap().display();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: cannot write {}: directory {dir} does not exist; create it (mkdir -p {dir}) or give --out a path in an existing directory",
            target.display()
        ),
        "{stderr}"
    );
}

/// QA20 R20-2: `--out` renamed a temporary file over the path: a symlink
/// or a FIFO became a regular file (the link's target untouched, the
/// FIFO's reader given nothing) and the command exited 0. A link is now
/// followed, a FIFO written to, a directory refused.
#[test]
fn out_follows_a_link_writes_into_a_fifo_and_refuses_a_directory() {
    use std::os::unix::fs::FileTypeExt as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let args = |out: &Path| {
        [
            "--period",
            "2026-11",
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(str::to_owned)
    };
    let run = |out: &Path| {
        let a = args(out);
        kpi(
            tmp.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let plain = tmp.path().join("plain.csv");
    let out = run(&plain);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(&plain).unwrap();
    assert!(csv.starts_with("channel,"), "{csv}");

    // A link: its target is written, the link stays a link.
    let target = tmp.path().join("target.csv");
    std::fs::write(&target, "old\n").unwrap();
    let link = tmp.path().join("link.csv");
    std::os::unix::fs::symlink("target.csv", &link).unwrap();
    let out = run(&link);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        reckon_tests::kpi_csv_undated(&std::fs::read_to_string(&target).unwrap()),
        reckon_tests::kpi_csv_undated(&csv)
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());

    // A FIFO: its reader gets the report; it stays a FIFO. The read end is
    // opened first without waiting, so the command's open does not block,
    // and the report fits the pipe's buffer.
    let fifo = tmp.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut reader = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap()
    };
    let out = run(&fifo);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = String::new();
    std::io::Read::read_to_string(&mut reader, &mut got).unwrap();
    assert_eq!(
        reckon_tests::kpi_csv_undated(&got),
        reckon_tests::kpi_csv_undated(&csv)
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // A directory is refused, saying so.
    let out = run(tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is a directory; give a file name",
            tmp.path().display()
        )),
        "{err}"
    );
    // Nothing else was left beside them (no temporary file).
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv") || n.ends_with(".tmp") || n == "fifo")
        .collect();
    names.sort();
    assert_eq!(names, ["fifo", "link.csv", "plain.csv", "target.csv"]);
}

/// QA20 R20-2: as root, `--out /dev/full` replaced the system's /dev/full
/// with a regular file and exited 0; `--out /dev/stdout` printed nothing.
/// A device is now opened for writing and never replaced: /dev/full's
/// error is the command's, /dev/stdout prints. (The devices are checked
/// before and after: the test proves they were not replaced.)
#[test]
fn out_writes_a_device_straight_and_never_replaces_it() {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let device = |p: &str| {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert!(m.file_type().is_char_device(), "{p} is not a device");
        (m.ino(), m.rdev())
    };
    let (full, null) = (device("/dev/full"), device("/dev/null"));
    let csv = ["--period", "2026-11", "--format", "csv", "--out"];
    let out = kpi(tmp.path(), &[&csv[..], &["/dev/full"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: cannot write /dev/full: No space left on device"),
        "{err}"
    );
    let out = kpi(tmp.path(), &[&csv[..], &["/dev/null"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!((device("/dev/full"), device("/dev/null")), (full, null));
    // /dev/stdout is the command's standard output (a pipe here).
    let stdout_link = std::fs::read_link("/dev/stdout").unwrap();
    let out = kpi(tmp.path(), &[&csv[..], &["/dev/stdout"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.starts_with("channel,"), "{printed}");
    assert_eq!(std::fs::read_link("/dev/stdout").unwrap(), stdout_link);
    assert!(!Path::new("/dev/full.tmp").exists() && !Path::new("/dev/stdout.tmp").exists());
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

    // Never reconciled: written, but exit status 1, as `reconcile report`
    // (QA35a L6).
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: program(s) main not reconciled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The platforms' own numbers read no decision: exit 0 (QA37 R-M1).
    let reported = kpi(
        tmp.path(),
        &[
            "--period", "2026-11", "--format", "json", "--view", "reported",
        ],
    );
    assert!(
        reported.status.success(),
        "{}",
        String::from_utf8_lossy(&reported.stderr)
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
        // Judged now, as `kpi` reads it: judged at a fixed past instant,
        // a lock date passed since (2026-12-02T10:00) reads as stale.
        reckon::reconcile::run(&store, &config.programs, &fx, chrono::Utc::now())
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
    // QA6 F9: one order "is" not judged yet.
    assert!(err.contains(") is not judged yet"), "{err}");
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["notes"].to_string().contains("run `reckon reconcile`"),
        "{}",
        v["notes"]
    );
}

/// QA6 F1: CSV has no room for notes, so every note (rows left out,
/// unattributed orders, ...) is a `warning:` line on stderr; a table on
/// standard output carries its notes itself and prints none twice.
#[test]
fn csv_notes_are_warnings_on_stderr_and_a_table_prints_them_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "csv"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: 4 orders match no affiliate claim and no [[kpi.attribution]] rule"),
        "{err}"
    );
    assert!(
        err.contains("warning: 1 cancelled order not counted."),
        "{err}"
    );
    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "table"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("1 cancelled order not counted."), "{table}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// QA6 F10: an attributed order's channel and campaign come from all
/// stored spend rows of its connector, not only the period's: O4 (utm
/// "brand search", 11-05) is Google's `search` campaign g-1 in a one-day
/// report although g-1 has spend only on 11-02; and the days of the month
/// add up to the month, per channel.
#[test]
fn an_orders_channel_does_not_depend_on_the_period() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let out = kpi(
        tmp.path(),
        &[
            "--period",
            "2026-11-05..2026-11-05",
            "--by",
            "channel,source,campaign",
            "--view",
            "reconciled",
            "--format",
            "csv",
        ],
    );
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("search,google_ads,g-1,Brand Search,")),
        "{csv}"
    );
    assert!(!csv.contains("other,"), "{csv}");

    // Every day of November, by channel, adds up to November.
    let config = reckon::config::load(&tmp.path().join("reckon.toml")).expect("config");
    let kpi_cfg = config.kpi.clone().expect("[kpi]");
    let store = Store::open(&tmp.path().join("data")).expect("store");
    let zone = reckon::kpi::ReportingZone::parse("Europe/Berlin").expect("zone");
    let fx = reckon::fx::FxTable::default();
    let ctx = reckon::kpi::KpiContext {
        zone,
        config: &kpi_cfg,
        fx: &fx,
        commission: None,
        programs: &[],
    };
    let by_channel = |period: &str| {
        let q = query(
            period,
            &[reckon::kpi::Dim::Channel],
            reckon::kpi::View::Both,
        );
        let inputs = reckon::kpi::load::load_inputs(
            &store,
            &config.programs,
            &fx,
            zone,
            &q.period,
            at("2026-12-01T00:00:00Z"),
        )
        .expect("load");
        let r = reckon::kpi::summarize(ctx, &inputs, &q).expect("summary");
        r.rows
            .into_iter()
            .map(|row| (row.key.channel.unwrap_or_default(), row.reconciled))
            .collect::<Vec<_>>()
    };
    let mut days: std::collections::BTreeMap<String, reckon::kpi::Totals> = Default::default();
    for d in 1..=30 {
        let p = format!("2026-11-{d:02}..2026-11-{d:02}");
        for (channel, t) in by_channel(&p) {
            days.entry(channel).or_default().add(&t.expect("rec"));
        }
    }
    let month: std::collections::BTreeMap<String, reckon::kpi::Totals> = by_channel("2026-11")
        .into_iter()
        .map(|(c, t)| (c, t.expect("rec")))
        .collect();
    assert_eq!(days, month);
}

/// QA6 F11: records stored after the summaries were written (a connector
/// that syncs after the fire time) are written into the same day's files
/// again by the next sync that changes something; no rewrite without a
/// change, and none once the reporting day is over.
#[test]
fn a_later_sync_rewrites_the_days_summaries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let config = reckon::config::load(&tmp.path().join("reckon.toml")).expect("config");
    let kpi = config.kpi.clone().expect("[kpi]");
    let store = Store::open(&tmp.path().join("data")).expect("store");
    use reckon::kpi::hook::run_after_sync;
    // 06:30 Berlin on 8 November: due; yesterday (11-07) has no spend.
    run_after_sync(&store, &config, &kpi, at("2026-11-08T05:30:00Z"), None)
        .expect("hook")
        .expect("due");
    let daily = tmp.path().join("out/kpi/daily/2026-11-07.csv");
    let before = std::fs::read_to_string(&daily).expect("daily");
    assert!(!before.contains("meta_ads"), "{before}");
    // Meta syncs at 09:00 with a row of 11-07.
    let late = spend(
        "meta_ads",
        "2026-11-07",
        "Europe/Berlin",
        ("m-1", "Prospecting"),
        plugin_api::Channel::Social,
        900,
        9,
        "12.00",
        Some("1"),
        Some("20.00"),
    );
    store
        .commit_page(
            "meta_ads",
            &[Record::Spend(late)],
            None,
            at("2026-11-08T08:00:00Z"),
        )
        .expect("commit");
    // A sync that changed nothing writes nothing.
    let none =
        run_after_sync(&store, &config, &kpi, at("2026-11-08T08:00:00Z"), None).expect("hook");
    assert_eq!(none, None);
    let seq = store.last_seq().expect("seq");
    let again = run_after_sync(&store, &config, &kpi, at("2026-11-08T08:00:01Z"), Some(seq))
        .expect("hook")
        .expect("rewritten");
    assert_eq!(again.len(), 6);
    // Another sync that ended at the same time, its records stored before
    // that rewrite (so in it), writes nothing again (QA29-A L4: three syncs
    // ending within 40 ms wrote the files three times).
    let twice =
        run_after_sync(&store, &config, &kpi, at("2026-11-08T08:00:02Z"), Some(seq)).expect("hook");
    assert_eq!(twice, None);
    let after = std::fs::read_to_string(&daily).expect("daily");
    assert!(after.contains("social,meta_ads"), "{after}");
    // `/status` and `/metrics` show the rewrite's time (QA29-E L2).
    assert_eq!(
        reckon::kpi::hook::last_written(&store),
        Some(at("2026-11-08T08:00:01Z"))
    );
    // After midnight the files of 11-07 are final (until the next fire
    // writes 11-08's): a change writes nothing.
    let next_day = run_after_sync(
        &store,
        &config,
        &kpi,
        at("2026-11-08T23:30:00Z"),
        Some(u64::MAX),
    )
    .expect("hook");
    assert_eq!(next_day, None);
}

/// Upgrade QA F1: a store upgraded from a version that wrote decisions in
/// the FORMAT-1 layout keeps that version's run state (`P/s`, `v: 1`) but
/// none of its decisions are read. Until the next run, `kpi` and
/// `reconcile report` must say the program is not reconciled (they showed
/// every claim unreconciled without a word), and the daemon's post-sync
/// hook reconciles it even when the sync changed nothing, before the KPI
/// summaries read it.
#[test]
fn a_program_reconciled_in_an_older_layout_reads_as_not_reconciled_until_a_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path());
    let path = tmp.path().join("reckon.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, format!("{text}{PROGRAM}")).expect("config");
    let config = reckon::config::load(&path).expect("config");
    let fx = reckon::reconcile::fx_table(&config).expect("fx");
    {
        let store = Store::open(&tmp.path().join("data")).expect("store");
        reckon::reconcile::run(&store, &config.programs, &fx, at("2026-12-01T00:00:00Z"))
            .expect("reconcile");
        // What the upgrade leaves: the old run state, no decision readable.
        reckon_tests::age_to_older_layout(&store, &config.programs[0], &fx);
        assert!(reckon::reconcile::needs_run(&store, &config.programs[0], &fx).expect("state"));
        store.flush().expect("flush");
    }

    let out = kpi(tmp.path(), &["--period", "2026-11", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("Program `main` has not been reconciled"),
        "{notes}"
    );
    assert!(notes.contains("the store was upgraded since"), "{notes}");

    let report = |format: &str| {
        Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&path)
            .args([
                "reconcile",
                "report",
                "--program",
                "main",
                "--period",
                "2026-11",
            ])
            .args(["--format", format])
            .output()
            .expect("run reckon")
    };
    // Written, but exit status 1: a scheduled export notices (ops QA13
    // OPS-13).
    let out = report("json");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: program `main` has not been reconciled")
            && err.contains("run `reckon reconcile`"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["not_reconciled"], true, "{v}");
    let html = String::from_utf8_lossy(&report("html").stdout).into_owned();
    assert!(html.contains("Not reconciled:"), "{html}");

    // The daemon's hooks after a sync that changed nothing: reconcile
    // runs the program first, so the report is whole again.
    {
        let store = Store::open(&tmp.path().join("data")).expect("store");
        let seq = store.last_seq().expect("seq");
        reckon::schedule::hooks::run_post_sync(&reckon::schedule::hooks::SyncEvent {
            store: &store,
            config: &config,
            connector: "shop",
            kind: plugin_api::protocol::PluginKind::Orders,
            seq_before: seq,
            seq_after: seq,
        });
        assert!(!reckon::reconcile::needs_run(&store, &config.programs[0], &fx).expect("state"));
        store.flush().expect("flush");
    }
    let out = report("json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v.get("not_reconciled").is_none(), "{v}");
    assert_ne!(v["claims"], 0, "{v}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
