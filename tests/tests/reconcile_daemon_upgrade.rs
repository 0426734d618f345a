//! Upgrade QA F1 through the real daemon: a program whose decisions are
//! stored in an older layout (as after an upgrade) shows in `/status` and
//! `reckon status` as needing a run; the first sync, one that changes
//! nothing, reconciles it before the drafts and the KPI summaries are
//! written, so they hold its reconciled outcomes; `/status` then shows it
//! reconciled.

use reckon::reconcile::synth::{generate, SynthSpec};
use reckon::store::Store;
use reckon_tests::RunningDaemon;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Program `shop-us`: claims of three example-plugin connectors (disabled:
/// their records are in the store already), orders from a file drop whose
/// connector syncs on `schedule`; drafts and KPI summaries on their
/// default schedules (due at the first sync: never written before).
fn config_text(port: u16, schedule: &str) -> String {
    let affiliate = |id: &str| reckon_tests::example_affiliate(id, "UPGRADE_TEST_KEY");
    format!(
        r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
output_dir = "out"
listen = "127.0.0.1:{port}"
timezone = "UTC"

{}{}{}[[connectors]]
id = "shop"
plugin = "orders"
schedule = "{schedule}"
[connectors.settings]
mode = "files"
directory = "drop"

[[programs]]
id = "shop-us"
currency = "USD"
claims = ["impact", "everflow", "awin"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7

[programs.commission]
payout_currency = "USD"
draft_schedule = "0 6 * * *"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"

[kpi]
currency = "USD"
"#,
        affiliate("impact"),
        affiliate("everflow"),
        affiliate("awin")
    )
}

fn reckon(config: &Path, args: &[&str]) -> Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("UPGRADE_TEST_KEY", "k")
        .env("RECKON_ALLOW_SUB_MINUTE_SCHEDULES", "1")
        .env_remove("RECKON_CONFIG")
        .output()
        .expect("run reckon")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `reckon run`, logging JSON lines into `run.log` beside the config.
fn start_daemon(config: &Path) -> RunningDaemon {
    let mut command = Command::new(reckon_tests::reckon_bin());
    command
        .args(["--log-format", "json", "run", "--config"])
        .arg(config)
        // The hooks' ends (debug) mark which hook ran what.
        .env("RUST_LOG", "info,reckon::schedule::hooks=debug")
        .env("UPGRADE_TEST_KEY", "k")
        // The 2-second schedule the test switches to.
        .env("RECKON_ALLOW_SUB_MINUTE_SCHEDULES", "1")
        .env_remove("RECKON_CONFIG");
    RunningDaemon::spawn(&mut command, config.with_file_name("run.log"))
}

/// The daemon's log events, in order.
fn events(daemon: &RunningDaemon) -> Vec<Value> {
    daemon
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn status(port: u16) -> Option<Value> {
    let (code, body) = reckon_tests::http_get(port, "/status")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// `shop-us`'s entry in `/status` `reconciliation`.
fn standing(status: &Value) -> Value {
    status["reconciliation"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["program"] == "shop-us"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Index of the first event whose message is `message` and whose fields
/// all have the values in `fields`.
fn first(events: &[Value], message: &str, fields: &[(&str, Value)]) -> Option<usize> {
    events.iter().position(|e| {
        let f = &e["fields"];
        f["message"] == message && fields.iter().all(|(k, v)| &f[*k] == v)
    })
}

#[test]
fn the_daemon_reconciles_an_upgraded_program_before_drafts_and_kpis_and_status_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
    std::fs::create_dir(dir.path().join("drop")).expect("drop dir");
    let config = dir.path().join("reckon.toml");
    let port = reckon_tests::free_port();
    // No fire soon: the first sync comes with the SIGHUP below.
    std::fs::write(&config, config_text(port, "0 0 1 1 *")).expect("config");

    // Thirty days of claims and orders up to the end of yesterday (UTC):
    // in the KPI summaries' periods (yesterday, and the month to date or,
    // on the 1st, the month before).
    let today = chrono::Utc::now().date_naive();
    let mut spec = SynthSpec::benchmark(300, 11);
    spec.start = (today - chrono::Duration::days(30))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    {
        let store = Store::open(&dir.path().join("data")).expect("store");
        reckon_tests::store_synth(&store, &generate(&spec), spec.start);
    }
    // Reconciled by this release, then left as an upgrade from the
    // FORMAT-1 layout leaves it: its old run state, no decision readable.
    let out = reckon(&config, &["reconcile"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let loaded = reckon::config::load(&config).expect("config");
    let fx = reckon::reconcile::fx_table(&loaded).expect("fx");
    let program = &loaded.programs[0];
    {
        let store = Store::open(&dir.path().join("data")).expect("store");
        reckon_tests::age_to_older_layout(&store, program, &fx);
        assert!(reckon::reconcile::needs_run(&store, program, &fx).expect("state"));
    }

    let mut daemon = start_daemon(&config);
    let before = reckon_tests::poll_until(Duration::from_secs(30), || {
        assert!(!daemon.exited(), "reckon run exited: {}", daemon.log_text());
        status(port)
    })
    .unwrap_or_else(|| panic!("no /status within 30 s: {}", daemon.log_text()));
    // No sync yet.
    assert!(
        before["connectors"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["last_run"].is_null())),
        "{before}"
    );
    let was = standing(&before);
    assert_eq!(was["state"], "older_layout", "{before}");
    assert_eq!(was["needs_run"], true, "{was}");
    assert_eq!(was["decisions_read"], false, "{was}");
    assert!(was["last_seq"].is_u64(), "{was}");
    let shown = reckon(&config, &["status"]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(
        text(&shown.stdout).contains(
            "\nreconciliation (stored decisions):\n  shop-us: NEEDS A RUN: stored by an older release: next run is full"
        ),
        "{}",
        text(&shown.stdout)
    );
    assert!(!dir.path().join("out/kpi").exists());
    assert!(!dir.path().join("out/statements").exists());

    // One sync (of the orders connector, with nothing new to store).
    std::fs::write(&config, config_text(port, "*/2 * * * * *")).expect("config");
    daemon.signal("-HUP");
    let kpi_monthly = dir.path().join("out/kpi/monthly");
    let after = reckon_tests::poll_until(Duration::from_secs(60), || {
        assert!(!daemon.exited(), "reckon run exited: {}", daemon.log_text());
        let s = status(port)?;
        let synced = s["connectors"]
            .as_array()?
            .iter()
            .any(|c| c["id"] == "shop" && c["last_run"]["outcome"] == "success");
        let written = first(&events(&daemon), "KPI summaries written", &[]).is_some();
        (synced && written).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "no sync with KPI summaries within 60 s: {}",
            daemon.log_text()
        )
    });

    // (b) /status: reconciled now, with the run's instant and counts.
    let now = standing(&after);
    assert_eq!(now["state"], "reconciled", "{after}");
    assert_eq!(now["needs_run"], false, "{now}");
    assert_eq!(now["decisions_read"], true, "{now}");
    assert!(now["judged_at"].is_string(), "{now}");
    assert!(now["payable"].is_u64(), "{now}");
    let shown = text(&reckon(&config, &["status"]).stdout);
    assert!(
        shown.contains("\n  shop-us: reconciled; last run: judged at "),
        "{shown}"
    );

    // (a) The catch-up: a full run of shop-us before the drafts and the
    // KPI summaries, after a sync that changed nothing.
    let events = events(&daemon);
    let said = first(
        &events,
        "program not reconciled with the present config, FX rates, judging rules or store layout (its first run, a changed [[programs]] or [fx], or an upgrade): reconciling it",
        &[("program", "shop-us".into())],
    );
    let reconciled = first(
        &events,
        "reconciled program",
        &[("program", "shop-us".into()), ("full", true.into())],
    );
    let drafts = first(
        &events,
        "statement drafts generated",
        &[("program", "shop-us".into())],
    );
    let kpis = first(&events, "KPI summaries written", &[]);
    // The reconcile hook's own run, not the one the drafts make first.
    let hook_done = first(
        &events,
        "post-sync hook done",
        &[("hook", "reconcile".into()), ("connector", "shop".into())],
    );
    let log = daemon.log_text();
    assert!(said.is_some(), "{log}");
    let (Some(reconciled), Some(hook_done), Some(drafts), Some(kpis)) =
        (reconciled, hook_done, drafts, kpis)
    else {
        panic!("a full run, drafts and KPI summaries expected: {log}");
    };
    assert!(
        reconciled < hook_done && hook_done < drafts && drafts < kpis,
        "{log}"
    );
    assert!(!log.contains("KPI summaries not written"), "{log}");

    // The summaries hold reconciled affiliate conversions (not every order
    // unattributed), and no note says the program was not reconciled.
    let month = std::fs::read_dir(&kpi_monthly)
        .expect("kpi/monthly")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a monthly JSON summary");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&month).expect("read")).expect("json");
    assert!(
        !summary["notes"].to_string().contains("not been reconciled"),
        "{summary}"
    );
    let affiliate = summary["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["channel"] == "affiliate"))
        .unwrap_or_else(|| panic!("no affiliate row: {summary}"));
    let conversions: u64 = affiliate["reconciled"]["conversions"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(conversions > 0, "{affiliate}");
    assert!(dir.path().join("out/statements/shop-us").is_dir());
    daemon.stop();
}
