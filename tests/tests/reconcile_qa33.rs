//! QA33 findings on the discrepancy report, through a real store and the
//! `reckon` binary:
//! - B-L1: a converted amount names the date of the `[fx]` row that
//!   priced it (a Saturday's claim takes Friday's rate), in the reason and
//!   in the report's `claim_fx_rate_date` / `order_fx_rate_date`; a rate
//!   table that moves only the row's date keeps each `decided_at`.
//! - D-L3: a weekly program's report takes the statements' ISO week names;
//!   a name of another cut is refused, naming the program's.
//! - D-L5: the listing and the summary carry the payee key statements use
//!   (`<network>:<partner>`) and the order as `order_source` + `order_id`.

#[path = "reconcile_support/mod.rs"]
mod support;

use reckon::reconcile::backend::StoreBackend;
use reckon::store::Store;
use std::path::Path;
use std::process::Command;
use support::{claim, m, order, program_from, t};

const CONNECTORS: &str = r#"[daemon]
data_dir = "data"

[[connectors]]
id = "impact"
plugin = "impact"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "everflow"
plugin = "everflow"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"
enabled = false
"#;

const PROGRAM: &str = r#"id = "shop-us"
currency = "USD"
claims = ["impact", "everflow"]
orders = ["shop"]
return_window_days = 7
no_order_grace_days = 3
"#;

const WEEKLY: &str = r#"[programs.commission]
payout_currency = "USD"
timezone = "UTC"
period = "weekly"
[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#;

/// Friday's EUR rate only: the weekend has none.
const FRIDAY_RATE: &str = r#"[fx]
max_age_days = 3
[[fx.rates]]
date = "2026-10-09"
base = "EUR"
quote = "USD"
rate = "1.0698"
"#;

fn write_config(dir: &Path, fx: &str) -> std::path::PathBuf {
    let cfg = dir.join("reckon.toml");
    std::fs::write(
        &cfg,
        format!("{CONNECTORS}\n{fx}\n[[programs]]\n{PROGRAM}{WEEKLY}"),
    )
    .unwrap();
    cfg
}

/// Two networks crediting partner `p1`: impact's claim is 100.00 EUR on
/// Saturday 2026-10-10 for a 106.98 USD order; everflow's a USD claim on
/// the Monday after, for an order of its own.
fn seed(dir: &Path) {
    let store = Store::open(&dir.join("data")).unwrap();
    let at = t("2026-10-20T00:00:00Z");
    let mut saturday = claim("impact", "c-sat", Some("O-1"));
    saturday.occurred_at = t("2026-10-10T12:00:00Z");
    saturday.sale_amount = Some(m("100.00", "EUR"));
    saturday.commission = Some(m("10.00", "EUR"));
    let mut monday = claim("everflow", "c-mon", Some("O-2"));
    monday.occurred_at = t("2026-10-12T12:00:00Z");
    let mut o1 = order("O-1");
    o1.created_at = t("2026-10-10T11:59:00Z");
    o1.amount = m("106.98", "USD");
    let mut o2 = order("O-2");
    o2.created_at = t("2026-10-12T11:59:00Z");
    for (source, records) in [
        ("impact", vec![plugin_api::Record::Conversion(saturday)]),
        ("everflow", vec![plugin_api::Record::Conversion(monday)]),
        (
            "shop",
            vec![plugin_api::Record::Order(o1), plugin_api::Record::Order(o2)],
        ),
    ] {
        store.commit_page(source, &records, None, at).unwrap();
    }
    store.flush().unwrap();
}

fn reckon(cfg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .expect("run reckon")
}

fn ok(cfg: &Path, args: &[&str]) -> String {
    let out = reckon(cfg, args);
    assert!(
        out.status.success(),
        "reckon {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn report(cfg: &Path, period: &str, format: &str) -> String {
    ok(
        cfg,
        &[
            "reconcile",
            "report",
            "--program",
            "shop-us",
            "--period",
            period,
            "--format",
            format,
            "--all",
        ],
    )
}

fn listing(json: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["discrepancies"].as_array().unwrap().clone()
}

/// B-L1 and D-L5: the Saturday claim names Friday's row; both rows carry
/// the payee key and the order's source and id apart.
#[test]
fn a_weekend_claim_names_the_rate_row_of_friday_and_rows_carry_the_payee_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), FRIDAY_RATE);
    seed(dir.path());
    ok(&cfg, &["reconcile"]);

    let rows = listing(&report(&cfg, "2026-10", "json"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    let sat = rows.iter().find(|r| r["claim_id"] == "c-sat").unwrap();
    assert_eq!(sat["outcome"], "matched", "{sat}");
    let reason = sat["reason"].as_str().unwrap();
    assert!(
        reason.contains("claimed 106.98 USD (100.00 EUR at 1.0698 of 2026-10-09)"),
        "{reason}"
    );
    assert_eq!(sat["claim_fx_rate"], "1.0698");
    assert_eq!(sat["claim_fx_rate_date"], "2026-10-09");
    assert_eq!(sat["inputs"]["fx_rate_date"], "2026-10-09");
    // The order is in the program currency: no rate, no date.
    assert!(sat["order_fx_rate"].is_null() && sat["order_fx_rate_date"].is_null());
    assert_eq!(sat["payee"], "impact:p1");
    assert_eq!(sat["partner_id"], "p1", "kept for older readers");
    assert_eq!(sat["order"], "shop/O-1");
    assert_eq!(
        (&sat["order_source"], &sat["order_id"]),
        (&"shop".into(), &"O-1".into())
    );
    let mon = rows.iter().find(|r| r["claim_id"] == "c-mon").unwrap();
    assert_eq!(mon["payee"], "everflow:p1");
    assert!(mon["claim_fx_rate_date"].is_null(), "{mon}");

    // CSV: appended after the earlier columns, in both tables (the cells
    // checked hold no comma or quote).
    let csv = report(&cfg, "2026-10", "csv");
    let (summary, listing) = csv.split_once("\n\n").unwrap();
    let summary: Vec<&str> = summary.lines().collect();
    assert!(summary[0].starts_with("network,partner_id,"), "{csv}");
    assert!(summary[0].ends_with(",judged_at,payee"), "{csv}");
    assert!(summary[1].ends_with(",everflow:p1"), "{csv}");
    assert!(summary[2].ends_with(",impact:p1"), "{csv}");
    let listing: Vec<&str> = listing.lines().collect();
    assert!(
        listing[0].ends_with(
            ",payable,lock_at,not_payable_reason,payee,order_source,order_id,claim_fx_rate_date,order_fx_rate_date,event_type,event_conflict"
        ),
        "{csv}"
    );
    let sat_row = listing
        .iter()
        .find(|l| l.starts_with("impact,c-sat,"))
        .unwrap();
    assert!(
        sat_row.ends_with(",impact:p1,shop,O-1,2026-10-09,,sale,false"),
        "{sat_row}"
    );

    // HTML: the date beside the rate's claim.
    let html = report(&cfg, "2026-10", "html");
    assert!(html.contains("<th>claim fx rate date</th>"), "{html}");
    assert!(html.contains("<td>2026-10-09</td>"), "{html}");
}

/// D-L3: the statements of this program are weekly: `2026-W41` is a
/// report (the Saturday claim and the Monday one are in two weeks), a
/// month still is, a half month is refused naming the program's cut.
#[test]
fn a_weekly_program_reports_by_the_weeks_its_statements_use() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), FRIDAY_RATE);
    seed(dir.path());
    ok(&cfg, &["reconcile"]);

    let w41 = listing(&report(&cfg, "2026-W41", "json"));
    let ids: Vec<&str> = w41
        .iter()
        .map(|r| r["claim_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c-sat"]);
    let w42 = listing(&report(&cfg, "2026-W42", "json"));
    let ids: Vec<&str> = w42
        .iter()
        .map(|r| r["claim_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c-mon"]);
    let v: serde_json::Value = serde_json::from_str(&report(&cfg, "2026-W42", "json")).unwrap();
    assert_eq!(v["period"], "2026-W42");
    assert!(report(&cfg, "2026-W42", "html").contains("<p>ISO week in UTC."));
    assert_eq!(listing(&report(&cfg, "2026-10", "json")).len(), 2);

    let refused = |period: &str| {
        let out = reckon(
            &cfg,
            &[
                "reconcile",
                "report",
                "--program",
                "shop-us",
                "--period",
                period,
            ],
        );
        assert!(!out.status.success(), "{period} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = refused("2026-10-H1");
    assert!(
        e.contains("period `2026-10-H1` is a half month, but the statements of program `shop-us` are weekly: write a month, YYYY-MM, or an ISO week, YYYY-Www"),
        "{e}"
    );
    let e = refused("2026-W54");
    assert!(e.contains("2026 has no ISO week 54"), "{e}");
    let e = refused("2026-41");
    assert!(e.contains("period `2026-41`: there is no month 41"), "{e}");
    let e = refused("week 41");
    assert!(
        e.contains("is not YYYY-MM (e.g. 2026-11), nor a statement period"),
        "{e}"
    );
}

/// B-L1: the decision keeps the row's date; a rates table that adds
/// Saturday's own row at the same rate moves the date and the reason, not
/// the judgement, so the full run it forces keeps `decided_at`.
#[test]
fn a_new_row_date_at_the_same_rate_keeps_decided_at() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let store = Store::open(&dir.path().join("data")).unwrap();
    let program = program_from(PROGRAM);
    let fx = |extra: &str| {
        let cfg: reckon::fx::FxConfig =
            toml::from_str(&format!("max_age_days = 3\n{extra}")).unwrap();
        reckon::fx::FxTable::load(&cfg, Path::new(".")).unwrap()
    };
    let friday =
        "[[rates]]\ndate = \"2026-10-09\"\nbase = \"EUR\"\nquote = \"USD\"\nrate = \"1.0698\"\n";
    let saturday = friday.replace("2026-10-09", "2026-10-10");
    let (t1, t2) = (t("2026-11-01T00:00:00Z"), t("2026-11-02T00:00:00Z"));
    let run = |fx: &reckon::fx::FxTable, now| {
        let backend = StoreBackend::new(&store).unwrap();
        reckon::reconcile::run_with(&backend, std::slice::from_ref(&program), fx, now, false)
            .unwrap()
    };
    let sat = || {
        reckon::reconcile::load_decisions(&store, "shop-us")
            .unwrap()
            .into_iter()
            .find(|d| d.claim.id == "c-sat")
            .unwrap()
    };
    run(&fx(friday), t1);
    let first = sat();
    assert_eq!(
        first.inputs.fx_rate_date,
        Some("2026-10-09".parse().unwrap())
    );
    assert_eq!(first.decided_at, t1);

    let both = fx(&format!("{friday}{saturday}"));
    let summary = run(&both, t2);
    assert!(summary.programs[0].full, "a new rates table is a full run");
    let second = sat();
    assert_eq!(
        second.inputs.fx_rate_date,
        Some("2026-10-10".parse().unwrap())
    );
    assert!(
        second.reason.contains("at 1.0698 of 2026-10-10)"),
        "{}",
        second.reason
    );
    assert_eq!(
        (second.outcome, &second.basis),
        (first.outcome, &first.basis)
    );
    assert_eq!(second.decided_at, t1, "the judgement did not change");
}
