//! QA34 `statements trace` and `statements generate|finalize` findings:
//! a claim on no statement is answered with the `held_back.csv` row that
//! holds it back, and an earning claim not payable yet with its lock date
//! and why, or that the date has passed since it was judged (C-M3); a
//! traced line shows its tier split and FX conversion (C-L1);
//! `generate`/`finalize` warn about a claims or orders connector synced
//! only part-way into the period, offline and through the daemon (B-M2).

use chrono::{DateTime, Duration, Utc};
use reckon::store::Store;
use reckon_tests::RunningDaemon;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY_ENV: &str = "QA34_TEST_KEY";

/// Program `shop-eu`: claims of two example-plugin connectors (`net`,
/// `net2`), orders from a file drop (`shop`), bases in USD paid in EUR by
/// a marginal tiered rule (5 % to 200, 8 % above); USD→EUR rates of
/// 2026-09-01 and 09-10 only (a rate is good for 7 days: 09-18..09-30
/// have none).
fn config_text(port: u16) -> String {
    let affiliate = |id: &str| reckon_tests::example_affiliate(id, KEY_ENV);
    format!(
        r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
output_dir = "out"
listen = "127.0.0.1:{port}"
timezone = "UTC"

{}{}[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"
enabled = false
[connectors.settings]
mode = "files"
directory = "drop"

[[programs]]
id = "shop-eu"
currency = "USD"
claims = ["net", "net2"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7

[programs.commission]
payout_currency = "EUR"

[[programs.commission.rules]]
id = "tiers"
effective_from = "2026-01-01"
kind = "tiered"
tier_mode = "marginal"
tiers = [{{ from_volume = "0", percent = "5" }}, {{ from_volume = "200", percent = "8" }}]

[fx]
max_age_days = 7
[[fx.rates]]
date = 2026-09-01
base = "USD"
quote = "EUR"
rate = "0.9"
[[fx.rates]]
date = 2026-09-10
base = "USD"
quote = "EUR"
rate = "0.915"
"#,
        affiliate("net"),
        affiliate("net2"),
    )
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
    std::fs::create_dir(dir.path().join("drop")).unwrap();
    let config = dir.path().join("reckon.toml");
    std::fs::write(&config, config_text(reckon_tests::free_port())).unwrap();
    (dir, config)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A sale of partner `P1`, claimed and ordered at `when` for `amount` USD.
fn sale(id: &str, when: DateTime<Utc>, amount: &str) -> (plugin_api::Record, plugin_api::Record) {
    let money = serde_json::json!({ "amount": amount, "currency": "USD" });
    let claim = serde_json::json!({
        "external_id": id,
        "order_id": format!("O-{id}"),
        "partner_id": "P1",
        "event_type": "sale",
        "occurred_at": when,
        "sale_amount": money,
        "status": "approved",
    });
    let order = serde_json::json!({
        "order_id": format!("O-{id}"),
        "created_at": when,
        "amount": money,
        "status": "paid",
    });
    (
        plugin_api::Record::Conversion(serde_json::from_value(claim).unwrap()),
        plugin_api::Record::Order(serde_json::from_value(order).unwrap()),
    )
}

/// Stores the sales as `net`'s claims and `shop`'s orders, each page with
/// the checkpoint given (none: as a postback or a test stores them).
fn store_sales(
    store: &Store,
    sales: &[(&str, DateTime<Utc>, &str)],
    claims_watermark: Option<DateTime<Utc>>,
    orders_watermark: Option<DateTime<Utc>>,
) {
    let (claims, orders): (Vec<_>, Vec<_>) = sales.iter().map(|(i, w, a)| sale(i, *w, a)).unzip();
    let checkpoint = |stream: &str, w: Option<DateTime<Utc>>| {
        w.map(|watermark| plugin_api::protocol::Checkpoint {
            stream: stream.into(),
            watermark,
            state: serde_json::Value::Null,
            covers: None,
        })
    };
    let now = Utc::now();
    store
        .commit_page(
            "net",
            &claims,
            checkpoint("conversions", claims_watermark).as_ref(),
            now,
        )
        .unwrap();
    store
        .commit_page(
            "shop",
            &orders,
            checkpoint("order_files", orders_watermark).as_ref(),
            now,
        )
        .unwrap();
    store.flush().unwrap();
}

fn reckon(config: &Path, args: &[&str]) -> Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env(KEY_ENV, "k")
        .env_remove("RECKON_CONFIG")
        .output()
        .expect("run reckon")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stdout and stderr of a command that succeeded.
fn ok(out: Output) -> (String, String) {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

fn statements<'a>(cmd: &'a str, period: &'a str) -> Vec<&'a str> {
    vec![
        "statements",
        cmd,
        "--program",
        "shop-eu",
        "--period",
        period,
    ]
}

fn trace(config: &Path, claim: &str) -> Output {
    reckon(
        config,
        &[
            "statements",
            "trace",
            "--program",
            "shop-eu",
            "--claim",
            claim,
        ],
    )
}

/// The error `trace` gives for a claim on no statement.
fn unpaid(config: &Path, claim: &str) -> String {
    let out = trace(config, claim);
    let err = text(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(&format!(
                "claim `{claim}` of program `shop-eu` is paid on no statement (finalised or draft: a statement may list it among the claims it does not pay); Reckon's decision for it: matched, "
            )),
        "{}{err}",
        text(&out.stdout)
    );
    err
}

/// The row of a traced claim's entry in period `period`.
fn row_of(out: &str, period: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(period))
        .unwrap_or_else(|| panic!("no {period} row in:\n{out}"))
        .to_owned()
}

/// Three September sales of `P1` on `net` (150.00, 250.00 and 80.00 USD
/// on the 12th, 13th and 20th) and the draft of September: the third has
/// no USD→EUR rate and is held back.
fn september_draft(dir: &Path, config: &Path) {
    let store = Store::open(&dir.join("data")).unwrap();
    store_sales(
        &store,
        &[
            ("A", at("2026-09-12T10:00:00Z"), "150.00"),
            ("A2", at("2026-09-13T10:00:00Z"), "250.00"),
            ("B", at("2026-09-20T10:00:00Z"), "80.00"),
        ],
        None,
        None,
    );
    drop(store);
    ok(reckon(config, &statements("generate", "2026-09")));
    let held =
        std::fs::read_to_string(dir.join("out/statements/shop-eu/2026-09/held_back.csv")).unwrap();
    assert!(held.contains("net:P1,net/B,"), "{held}");
}

/// C-M3 (a): a payable claim the draft holds back (no USD→EUR rate for
/// its day) is answered with its `held_back.csv` row, not "the next drafts
/// pay it".
#[test]
fn trace_of_a_claim_held_back_names_its_held_back_row() {
    let (dir, config) = setup();
    september_draft(dir.path(), &config);
    let err = unpaid(&config, "net/B");
    assert!(
        err.contains("matched, payable, but held back (not paid on a statement yet): ")
            && err.contains(
                "the draft statements of 2026-09 hold it back (their held_back.csv, payee net:P1): no USD→EUR rate for 2026-09-20"
            )
            && !err.contains("the next drafts of its period pay it"),
        "{err}"
    );
}

/// C-L1: a traced line gives its tier split and its FX rate (and the
/// rate's date, when the statement records it).
#[test]
fn trace_of_a_line_gives_its_tiers_and_fx_rate() {
    let (dir, config) = setup();
    september_draft(dir.path(), &config);
    // The first line 5 % of 150.00, the second split across the tiers,
    // both converted at 0.915.
    let statement: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("out/statements/shop-eu/2026-09/net.P1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let dated = statement["lines"][0]["fx_rate_date"]
        .as_str()
        .map(str::to_owned);
    let (out, _) = ok(trace(&config, "net/A"));
    let row = row_of(&out, "2026-09");
    assert!(
        row.contains("rule tiers, 5 % of 150.00 USD, FX USD→EUR 0.915"),
        "{row}"
    );
    let (out, _) = ok(trace(&config, "net/A2"));
    let row = row_of(&out, "2026-09");
    assert!(
        row.contains("rule tiers, 5% × 50.00 + 8% × 200.00 (of 250.00 USD), FX USD→EUR 0.915"),
        "{row}"
    );
    if let Some(day) = dated {
        assert_eq!(day, "2026-09-10");
        assert!(row.contains("0.915 (rate of 2026-09-10)"), "{row}");
    }
}

/// C-M3 (b): an earning claim not payable gives its lock date and
/// `lock_pending`; one whose lock date has passed since it was judged
/// says so and what makes it payable.
#[test]
fn trace_gives_an_unpaid_claims_lock_date_and_whether_it_has_passed() {
    let (dir, config) = setup();
    let now = Utc::now();
    let pending = now - Duration::days(25);
    let passed = now - Duration::days(40);
    let judged = now - Duration::days(20);
    let store = Store::open(&dir.path().join("data")).unwrap();
    store_sales(
        &store,
        &[("L1", pending, "40.00"), ("L2", passed, "60.00")],
        None,
        None,
    );
    // Judged 20 days ago: both were within their return window then.
    let cfg = reckon::config::load(&config).unwrap();
    let fx = reckon::reconcile::fx_table(&cfg).unwrap();
    reckon::reconcile::run(&store, &cfg.programs, &fx, judged).unwrap();
    store.flush().unwrap();
    drop(store);

    // QA35a L1: as JSON, the same answer as a document on stdout, exit 1.
    let out = reckon(
        &config,
        &[
            "statements",
            "trace",
            "--program",
            "shop-eu",
            "--claim",
            "net/L1",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["on_statement"], false, "{doc}");
    assert_eq!(doc["entries"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["decision"]["outcome"], "matched", "{doc}");
    assert_eq!(doc["decision"]["payable"], false, "{doc}");
    assert_eq!(doc["not_payable_reason"], "lock_pending", "{doc}");
    assert!(
        doc["explanation"]
            .as_str()
            .unwrap()
            .starts_with("Reckon's decision for it: matched, not payable: "),
        "{doc}"
    );
    assert!(
        text(&out.stderr).contains("is paid on no statement"),
        "{}",
        text(&out.stderr)
    );

    let err = unpaid(&config, "net/L1");
    assert!(
        err.contains("matched, not payable: ")
            && err.contains(&format!(
                "; not_payable_reason lock_pending: its lock date is {}",
                rfc3339(pending + Duration::days(30))
            )),
        "{err}"
    );
    let err = unpaid(&config, "net/L2");
    assert!(
        err.contains("matched, not payable: ")
            && err.contains(&format!(
                "; its lock date {} has passed since it was judged (at {}, not payable then: lock_pending): `reckon reconcile` or the daemon's next run judges it again and makes it payable",
                rfc3339(passed + Duration::days(30)),
                rfc3339(judged)
            )),
        "{err}"
    );
    // As the next run does.
    ok(reckon(&config, &["reconcile"]));
    let err = unpaid(&config, "net/L2");
    assert!(
        err.contains("matched, payable (not paid on a statement yet: the next drafts"),
        "{err}"
    );
}

fn start_daemon(config: &Path) -> RunningDaemon {
    let mut command = reckon_tests::run_command(config);
    command.env(KEY_ENV, "k");
    let mut d = RunningDaemon::spawn(&mut command, config.with_file_name("run.log"));
    d.wait_for_log(&["daemon started", "command socket ready"]);
    d
}

/// B-M2: `generate` and `finalize` warn about each claims or orders
/// connector whose checkpoints lie before the period's end; a connector
/// never synced (`net2`) and one synced past the end say nothing, nor does
/// restoring a finalised period. Through the daemon the same.
#[test]
fn generate_and_finalize_warn_about_connectors_synced_part_way_into_the_period() {
    let (dir, config) = setup();
    let store = Store::open(&dir.path().join("data")).unwrap();
    store_sales(
        &store,
        &[("S1", at("2026-09-05T10:00:00Z"), "100.00")],
        Some(at("2026-09-16T00:00:00Z")),
        Some(at("2026-09-20T12:30:00Z")),
    );
    drop(store);
    let claims = "warning: `net` (claims of program `shop-eu`) has been synced only through 2026-09-15 (stream `conversions`, watermark 2026-09-16T00:00:00Z): its claims of 2026-09-16..2026-09-30";
    let orders = "warning: `shop` (orders of program `shop-eu`) has been synced only up to 2026-09-20 12:30 (UTC) (stream `order_files`, watermark 2026-09-20T12:30:00Z): the claims matched to its orders of 2026-09-20..2026-09-30";

    let (_, err) = ok(reckon(&config, &statements("generate", "2026-09")));
    assert!(
        err.contains(&format!(
            "{claims} are not on this draft until synced, and go on a later statement if synced after the period is finalised (`reckon sync net --from 2026-09-16 --to 2026-09-30` loads them)\n"
        )) && err.contains(orders),
        "{err}"
    );
    assert!(!err.contains("`net2`"), "{err}");

    let (_, err) = ok(reckon(&config, &statements("finalize", "2026-09")));
    assert!(
        err.contains(&format!(
            "{claims}, synced after this finalise, go on a later statement, not this period's (`reckon sync net --from 2026-09-16 --to 2026-09-30` loads them first)\n"
        )) && err.contains(orders)
            && !err.contains("`net2`"),
        "{err}"
    );
    // Restoring the finalised period's files pays nothing: nothing to say.
    let (_, err) = ok(reckon(&config, &statements("generate", "2026-09")));
    assert!(!err.contains("has been synced only"), "{err}");

    // The orders synced past October's end: only `net` is behind.
    let store = Store::open(&dir.path().join("data")).unwrap();
    store_sales(
        &store,
        &[("S2", at("2026-10-05T10:00:00Z"), "100.00")],
        None,
        Some(at("2026-11-02T00:00:00Z")),
    );
    drop(store);
    let daemon = start_daemon(&config);
    let (_, err) = ok(reckon(&config, &statements("generate", "2026-10")));
    let log = daemon.stop();
    assert!(log.contains("statements generate"), "{log}");
    assert!(
        err.contains(
            "warning: `net` (claims of program `shop-eu`) has been synced only through 2026-09-15 (stream `conversions`, watermark 2026-09-16T00:00:00Z): its claims of 2026-10-01..2026-10-31 are not on this draft until synced"
        ) && !err.contains("`shop`")
            && !err.contains("`net2`"),
        "{err}"
    );
}

/// Ops QA35a M3: with its stderr on a full disk (`2>>log`), `statements
/// finalize` finalised the period but exited 1 at its first warning and
/// never printed its result; through the daemon a command stopped there.
/// Diagnostics that cannot be written are dropped: the exit status and
/// the result are the work's, standalone and through the daemon.
#[test]
fn a_command_whose_stderr_is_on_a_full_disk_does_its_work_and_says_so() {
    let (dir, config) = setup();
    let store = Store::open(&dir.path().join("data")).unwrap();
    store_sales(
        &store,
        &[("S1", at("2026-09-05T10:00:00Z"), "100.00")],
        Some(at("2026-09-16T00:00:00Z")),
        Some(at("2026-09-20T12:30:00Z")),
    );
    drop(store);
    let full = || {
        std::process::Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    };
    let run = |args: &[&str]| {
        Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env(KEY_ENV, "k")
            .env_remove("RECKON_CONFIG")
            .stderr(full())
            .output()
            .unwrap()
    };
    // Each warns that `net` and `shop` are synced part-way (see above).
    let out = run(&statements("generate", "2026-09"));
    assert!(out.status.success(), "{}", text(&out.stdout));
    let out = run(&statements("finalize", "2026-09"));
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("finalised version 2"),
        "{}",
        text(&out.stdout)
    );
    // Through the daemon.
    let daemon = start_daemon(&config);
    let out = run(&statements("generate", "2026-10"));
    let log = daemon.stop();
    assert!(out.status.success(), "{}\n{log}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("draft version 1"),
        "{}",
        text(&out.stdout)
    );
}
