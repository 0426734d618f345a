//! QA44c C-M1: Everflow serves raw conversions for only the prior 365 days.
//! A scheduled run's window starts at the oldest checkpoint less
//! `lookback_days`; with a lookback near 365 a short outage made that start
//! older than Everflow serves, and every scheduled run failed until someone
//! ran a backfill by hand. The days before the checkpoint are a re-pull of
//! stored days, so the daemon now starts there at Everflow's first day
//! (the manifest's `max_history_days`); unread days too old for Everflow,
//! and backfills, still fail with the plugin's error.
//!
//! Through the real daemon (`reckon sync`, the plugin in a child process)
//! against the Everflow fake, whose 365-day rule counts from its `now`: set
//! to the real clock, which the daemon reads. Needs `cargo build
//! --workspace` first.

use chrono::{Days, NaiveDate, Utc};
use reckon_tests::fakes::affiliate::{router, shared, Shared, Truth};
use reckon_tests::fakes::everflow::{EverflowFake, Params};
use reckon_tests::fakes::server::FakeServer;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The fake (conversions over the 400 days through `today`, its clock now),
/// serving, and one `everflow` connector in UTC with `lookback_days = 364`
/// (what README advised at most).
struct Setup {
    fake: Shared<EverflowFake>,
    _server: FakeServer,
    _dir: tempfile::TempDir,
    config: PathBuf,
}

fn setup(today: NaiveDate) -> Setup {
    let fake = shared(EverflowFake::new(Params {
        from: today - Days::new(400),
        to: today,
        ..Params::small(44, 1_500)
    }));
    fake.lock().unwrap().now = Utc::now();
    let server = FakeServer::start(router(fake.clone()));
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["everflow"]);
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\ntimezone = \"UTC\"\n\n\
             [[connectors]]\nid = \"everflow\"\nplugin = \"everflow\"\nschedule = \"5 */2 * * *\"\n\
             timezone = \"UTC\"\nlookback_days = 364\n\n[connectors.settings]\n\
             api_key = {{ secret = \"env:T_EVERFLOW\" }}\npage_size = 500\nbase_url = \"{}\"\n",
            server.base_url
        ),
    )
    .unwrap();
    Setup {
        fake,
        _server: server,
        _dir: dir,
        config,
    }
}

impl Setup {
    fn reckon(&self, args: &[&str]) -> Output {
        Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "info")
            .env("T_EVERFLOW", "ef-network-key")
            .output()
            .unwrap()
    }

    fn sync(&self, args: &[&str]) -> (bool, String) {
        let out = self.reckon(&[&["sync", "everflow"], args].concat());
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn backfill(&self, from: NaiveDate, to: NaiveDate) -> (bool, String) {
        self.sync(&["--from", &from.to_string(), "--to", &to.to_string()])
    }

    fn stored(&self) -> Truth {
        let out = self.reckon(&[
            "records",
            "export",
            "--kind",
            "conversions",
            "--format",
            "jsonl",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let records: Vec<plugin_api::Record> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                serde_json::from_value(v["record"].clone()).unwrap()
            })
            .collect();
        Truth::of_records(&records)
    }
}

/// The daemon and the fake read the real clock: a scenario that fails
/// while the date changed under it (a run across midnight UTC) is run once
/// more on the new date.
fn on_one_day(scenario: fn(NaiveDate)) {
    let today = Utc::now().date_naive();
    let result = std::panic::catch_unwind(|| scenario(today));
    match result {
        Err(_) if Utc::now().date_naive() != today => scenario(Utc::now().date_naive()),
        Err(e) => std::panic::resume_unwind(e),
        Ok(()) => {}
    }
}

fn day(today: NaiveDate, back: u64) -> NaiveDate {
    today - Days::new(back)
}

/// The report's reproduction: synced through two days ago (the checkpoint
/// is yesterday's start), the daemon off since. The scheduled window's
/// start, 365 days back, was refused on every run; it now starts 364 days
/// back, says which day it did not re-pull, and stores Everflow's truth.
#[test]
fn a_scheduled_run_after_an_outage_re_pulls_only_what_everflow_serves() {
    on_one_day(|today| {
        let s = setup(today);
        let (ok, out) = s.backfill(day(today, 364), day(today, 2));
        assert!(ok, "the backfill: {out}");
        let (ok, out) = s.sync(&[]);
        assert!(ok, "the scheduled window failed:\n{out}");
        let cut = day(today, 365);
        for part in [
            format!("days {cut}..{cut} of the lookback are not re-pulled"),
            format!(
                "plugin `everflow` serves only the prior 365 days, so the run starts on {}",
                day(today, 364)
            ),
        ] {
            assert!(out.contains(&part), "{part:?} not in:\n{out}");
        }
        let truth = s.fake.lock().unwrap().truth(day(today, 364), today);
        assert!(truth.total.count > 0);
        assert_eq!(s.stored(), truth);
    });
}

/// Days after the checkpoint that Everflow no longer serves are not
/// skipped: the run fails as before, naming the day to sync from. A
/// backfill reaching further back is never cut either.
#[test]
fn unread_days_too_old_for_everflow_and_backfills_still_fail() {
    on_one_day(|today| {
        let s = setup(today);
        // Synced 367 days ago (Everflow's clock then ten days back), the
        // checkpoint at the start of the day after: 366 days ago.
        s.fake.lock().unwrap().now = Utc::now() - chrono::Duration::days(10);
        let (ok, out) = s.backfill(day(today, 370), day(today, 367));
        assert!(ok, "the backfill: {out}");
        s.fake.lock().unwrap().now = Utc::now();
        let first = day(today, 364);
        let (ok, out) = s.sync(&[]);
        assert!(!ok, "a scheduled run skipped unread days:\n{out}");
        for part in [
            format!(
                "starts before {first}: Everflow keeps raw conversions for only the prior 365 days"
            ),
            format!("sync from {first} or later"),
        ] {
            assert!(out.contains(&part), "{part:?} not in:\n{out}");
        }
        assert!(!out.contains("not re-pulled"), "{out}");

        // 365 days: one window (`max_window_days`).
        let (ok, out) = s.backfill(day(today, 365), day(today, 1));
        assert!(!ok, "a backfill was cut:\n{out}");
        let window = format!(
            "window {}..{} starts before {first}",
            day(today, 365),
            day(today, 1)
        );
        assert!(out.contains(&window), "{window:?} not in:\n{out}");
    });
}

/// `config check` passed `lookback_days = 364` (and 400) for Everflow
/// without a word; it now says the re-pull is cut to what Everflow serves.
#[test]
fn config_check_warns_of_a_lookback_everflow_cannot_serve_in_full() {
    let s = setup(Utc::now().date_naive());
    let out = s.reckon(&["config", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let warning = "warning: lookback_days = 364 reaches as far back as plugin `everflow` serves \
                   (max_history_days = 365; a run starts 364 days before today at the earliest)";
    assert!(text.contains(warning), "{warning:?} not in:\n{text}");
}
