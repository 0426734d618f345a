//! The orders plugin through the real daemon: `reckon sync` (plugin loaded
//! from a plugin directory, run in a subprocess, HTTP by the host) against
//! the fake Shopify on loopback and against a file-drop directory, then
//! `reckon records export`. Needs `cargo build -p reckon -p reckon-plugin-orders`.

use chrono::TimeZone;
use plugin_api::Order;
use reckon_tests::fakes::server::FakeServer;
use reckon_tests::fakes::shopify::{router, totals, ShopifyConfig, ShopifyFake};
use rust_decimal::Decimal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn setup(connector: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["orders"]);
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\ntimezone = \"UTC\"\n\n{connector}"
        ),
    )
    .unwrap();
    Setup { dir, config }
}

fn reckon(config: &Path, args: &[&str]) -> Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RECKON_TEST_SHOPIFY_TOKEN", "shpat_test_token")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "reckon failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// Exported orders of a source: (revision, order) in key order.
fn export(config: &Path, source: &str) -> Vec<(u64, Order)> {
    let out = ok(reckon(
        config,
        &[
            "records", "export", "--kind", "orders", "--source", source, "--format", "jsonl",
        ],
    ));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let order = match serde_json::from_value(v["record"].clone()).unwrap() {
                plugin_api::Record::Order(o) => o,
                other => panic!("not an order: {other:?}"),
            };
            (v["revision"].as_u64().unwrap(), order)
        })
        .collect()
}

fn unsourced(mut o: Order) -> Order {
    o.source = String::new();
    o
}

#[test]
fn reckon_sync_stores_the_fake_shops_orders_and_a_later_refund_as_a_revision() {
    let fake = ShopifyFake::generate(ShopifyConfig {
        orders: 420,
        seed: 99,
        ..ShopifyConfig::default()
    });
    let server = FakeServer::start(router(fake.clone()));
    let s = setup(&format!(
        "[[connectors]]\nid = \"shop\"\nplugin = \"orders\"\nschedule = \"0 * * * *\"\ntimezone = \"UTC\"\n\
         isolation = \"subprocess\"\n\n[connectors.settings]\nmode = \"shopify\"\nbase_url = \"{}\"\n\
         access_token = {{ secret = \"env:RECKON_TEST_SHOPIFY_TOKEN\" }}\npage_size = 100\n",
        server.base_url
    ));
    // One 429 (Retry-After: 1.0) in the middle of the pull: the sync waits and completes.
    fake.throttle(2, 1);
    ok(reckon(
        &s.config,
        &["sync", "shop", "--from", "2026-11-01", "--to", "2026-11-20"],
    ));
    assert_eq!(fake.request_counts().1, 1, "the fake throttled once");

    let stored = export(&s.config, "shop");
    let mut truth = fake.truth();
    truth.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    let got: Vec<Order> = stored.iter().map(|(_, o)| unsourced(o.clone())).collect();
    assert_eq!(totals(&got), totals(&truth));
    assert_eq!(got, truth);
    assert!(stored.iter().all(|(rev, _)| *rev == 1));

    // A refund and a cancellation between two pulls.
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 11, 18, 9, 30, 0)
        .unwrap();
    let paid = fake
        .orders()
        .iter()
        .position(|o| {
            o.refunds.is_empty() && o.cancelled_at.is_none() && o.base_financial == "paid"
        })
        .unwrap();
    let refunded_id = fake.add_refund(paid, Decimal::new(1250, 2), at).to_string();
    let cancelled_id = fake.cancel(paid + 1, at).to_string();
    ok(reckon(
        &s.config,
        &["sync", "shop", "--from", "2026-11-18", "--to", "2026-11-20"],
    ));
    let stored = export(&s.config, "shop");
    assert_eq!(stored.len(), 420);
    let find = |id: &str| {
        stored
            .iter()
            .find(|(_, o)| o.order_id == id)
            .unwrap()
            .clone()
    };
    let (rev, o) = find(&refunded_id);
    assert_eq!(rev, 2);
    assert_eq!(o.refunded(), Decimal::new(1250, 2));
    assert_eq!(find(&cancelled_id).0, 2);
    assert_eq!(
        find(&cancelled_id).1.status,
        plugin_api::OrderStatus::Cancelled
    );
    let mut truth = fake.truth();
    truth.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    let got: Vec<Order> = stored.into_iter().map(|(_, o)| unsourced(o)).collect();
    assert_eq!(got, truth);
}

#[test]
fn reckon_sync_reads_a_file_drop_once_and_names_a_bad_line() {
    let drop_dir = tempfile::tempdir().unwrap();
    let dir = drop_dir.path().canonicalize().unwrap();
    std::fs::write(
        dir.join("2026-11-01.csv"),
        "order_id,created_at,amount,currency,click_ids,refund_amount,refunded_at\n\
         A-1,2026-11-01T10:00:00Z,100.00,USD,gclid-1,,\n\
         A-2,2026-11-01T11:00:00Z,50.00,USD,,50.00,2026-11-02T00:00:00Z\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("2026-11-01.jsonl"),
        "{\"order_id\":\"B-1\",\"created_at\":\"2026-11-01T09:00:00Z\",\"amount\":\"20\",\"currency\":\"EUR\",\"alt_ids\":[\"#77\"]}\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not read").unwrap();
    let s = setup(&format!(
        "[[connectors]]\nid = \"erp\"\nplugin = \"orders\"\nschedule = \"0 * * * *\"\ntimezone = \"UTC\"\n\
         isolation = \"subprocess\"\n\n[connectors.settings]\nmode = \"files\"\ndirectory = \"{}\"\n",
        dir.display()
    ));
    ok(reckon(&s.config, &["sync", "erp"]));
    let first = export(&s.config, "erp");
    let ids: Vec<&str> = first.iter().map(|(_, o)| o.order_id.as_str()).collect();
    assert_eq!(ids, ["A-1", "A-2", "B-1"]);
    assert_eq!(first[1].1.status, plugin_api::OrderStatus::Refunded);
    assert_eq!(first[2].1.alt_ids, ["#77"]);

    // Again: nothing changes.
    ok(reckon(&s.config, &["sync", "erp"]));
    assert_eq!(export(&s.config, "erp"), first);

    // A new file with a bad line: the sync fails naming file, line and column.
    std::fs::write(
        dir.join("2026-11-02.csv"),
        "order_id,created_at,amount,currency\nA-3,2026-11-02T10:00:00Z,12;50,USD\n",
    )
    .unwrap();
    let out = reckon(&s.config, &["sync", "erp"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("file `2026-11-02.csv` line 2, column 3 (`amount`), order A-3"),
        "{stderr}"
    );
    assert_eq!(export(&s.config, "erp").len(), 3);
    drop(s.dir);
}

/// A relative `directory` is relative to the config file, whatever the
/// working directory (systemd starts services in `/`); it used to be
/// resolved against the working directory. `config check` reports a
/// missing directory, and files mode without `directory`.
#[test]
fn a_relative_file_drop_directory_is_relative_to_the_config_file() {
    let files = |dir: &str| {
        format!(
            "[[connectors]]\nid = \"erp\"\nplugin = \"orders\"\nschedule = \"0 * * * *\"\n\
             timezone = \"UTC\"\nisolation = \"subprocess\"\n\n[connectors.settings]\nmode = \"files\"\n{dir}"
        )
    };
    let s = setup(&files("directory = \"drop\"\n"));
    std::fs::create_dir(s.dir.path().join("drop")).unwrap();
    std::fs::write(
        s.dir.path().join("drop").join("a.csv"),
        "order_id,created_at,amount,currency\nA-1,2026-11-01T10:00:00Z,10.00,USD\n",
    )
    .unwrap();
    let in_root = |config: &Path, args: &[&str]| {
        Command::new(reckon_tests::reckon_bin())
            .current_dir("/")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    ok(in_root(&s.config, &["config", "check"]));
    ok(in_root(&s.config, &["sync", "erp"]));
    let ids: Vec<String> = export(&s.config, "erp")
        .into_iter()
        .map(|(_, o)| o.order_id)
        .collect();
    assert_eq!(ids, ["A-1"]);

    let missing = setup(&files("directory = \"no-such-dir\"\n"));
    let out = in_root(&missing.config, &["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`connectors[0].settings.directory`: directory ")
            && stderr.contains(
                "no-such-dir of connector `erp` cannot be read: No such file or directory"
            ),
        "{stderr}"
    );

    let none = setup(&files(""));
    let out = in_root(&none.config, &["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`connectors[0].settings`: missing required setting `directory` (when `mode` = \"files\")"),
        "{stderr}"
    );
}

/// Shopify mode without the shop's URL or its token used to pass `config
/// check` (the schema required only `directory`, in files mode) and fail at
/// the first sync; `config check` now names both missing settings.
#[test]
fn shopify_mode_without_base_url_or_access_token_fails_config_check() {
    let s = setup(
        "[[connectors]]\nid = \"shop\"\nplugin = \"orders\"\nschedule = \"0 * * * *\"\n\
         timezone = \"UTC\"\n\n[connectors.settings]\nmode = \"shopify\"\n",
    );
    let out = reckon(&s.config, &["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for setting in ["base_url", "access_token"] {
        assert!(
            stderr.contains(&format!(
                "`connectors[0].settings`: missing required setting `{setting}`"
            )) && stderr.contains("(when `mode` = \"shopify\")"),
            "{stderr}"
        );
    }
}

/// A negative amount is a row error naming file, line and column, like
/// every other bad value (it used to surface from the host's record check
/// as "stream order_files, record 0" with no file or line).
#[test]
fn a_negative_amount_names_file_line_and_column() {
    let s = setup(
        "[[connectors]]\nid = \"erp\"\nplugin = \"orders\"\nschedule = \"0 * * * *\"\n\
         timezone = \"UTC\"\nisolation = \"subprocess\"\n\n[connectors.settings]\nmode = \"files\"\ndirectory = \"drop\"\n",
    );
    std::fs::create_dir(s.dir.path().join("drop")).unwrap();
    std::fs::write(
        s.dir.path().join("drop").join("neg.csv"),
        "order_id,created_at,amount,currency\nA-1,2026-11-01T10:00:00Z,-10.00,USD\n",
    )
    .unwrap();
    let out = reckon(&s.config, &["sync", "erp"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "file `neg.csv` line 2, column 3 (`amount`), order A-1: amount -10.00 is negative"
        ),
        "{stderr}"
    );
}

/// Ops QA35a M4: a window ending today was stored as synced to midnight
/// after today (the shop's watermark is its window's end), the day still
/// running: a month-end check said nothing of an orders sync last run in
/// the morning of the 30th, and with `lookback_days = 0` the next run
/// began the next day, never reading the rest of that day. The daemon
/// stores a watermark no later than the sync.
#[test]
fn a_window_ending_today_is_stored_as_synced_up_to_now() {
    let fake = ShopifyFake::generate(ShopifyConfig {
        orders: 5,
        seed: 7,
        ..ShopifyConfig::default()
    });
    let server = FakeServer::start(router(fake));
    let s = setup(&format!(
        "[[connectors]]\nid = \"shop\"\nplugin = \"orders\"\nschedule = \"0 * * * *\"\ntimezone = \"UTC\"\n\
         lookback_days = 0\n\n[connectors.settings]\nmode = \"shopify\"\nbase_url = \"{}\"\n\
         access_token = {{ secret = \"env:RECKON_TEST_SHOPIFY_TOKEN\" }}\n",
        server.base_url
    ));
    let today = chrono::Utc::now().date_naive();
    let yesterday = (today - chrono::Duration::days(1)).to_string();
    let before = chrono::Utc::now();
    ok(reckon(
        &s.config,
        &[
            "sync",
            "shop",
            "--from",
            &yesterday,
            "--to",
            &today.to_string(),
        ],
    ));
    let after = chrono::Utc::now();
    let out = ok(reckon(
        &s.config,
        &["records", "checkpoints", "--source", "shop"],
    ));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let watermark = text
        .lines()
        .find_map(|l| l.split("watermark ").nth(1))
        .and_then(|w| w.split(';').next())
        .and_then(|w| chrono::DateTime::parse_from_rfc3339(w.trim()).ok())
        .unwrap_or_else(|| panic!("no watermark in: {text}"));
    assert!(
        watermark >= before - chrono::Duration::seconds(5) && watermark <= after,
        "stored watermark {watermark} is not the time of the sync ({before}..{after}): {text}"
    );
}
