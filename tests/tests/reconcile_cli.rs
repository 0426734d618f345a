//! `reckon reconcile` and `reckon reconcile report` against a real store:
//! a seeded month with injected discrepancies; the report must list every
//! one with the right outcome, and nothing else.

use reckon::reconcile::model::Outcome;
use reckon::reconcile::synth::{generate, SynthSpec, SHOP};
use reckon::store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("reckon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ndata_dir = \"data\"\n\n{}\n[programs.match]\namount_tolerance_abs = \"0.50\"\namount_tolerance_pct = \"1\"\n",
            reckon_tests::SYNTH_PROGRAM
        ),
    )
    .unwrap();
    cfg
}

fn seed_store(dir: &Path, spec: &SynthSpec) -> reckon::reconcile::synth::Synth {
    let data = generate(spec);
    let store = Store::open(&dir.join("data")).unwrap();
    reckon_tests::store_synth(&store, &data, spec.start);
    data
}

/// The CLI judges at the real current time: put the data in a month long
/// past, so every lock date and grace period has passed.
fn past(mut spec: SynthSpec) -> SynthSpec {
    spec.start = chrono::DateTime::parse_from_rfc3339("2026-08-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    spec
}

fn reckon(cfg: &Path, args: &[&str]) -> String {
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .expect("run reckon");
    assert!(
        out.status.success(),
        "reckon {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn seeded_month_report_lists_every_injected_discrepancy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let spec = past(SynthSpec::benchmark(400, 42));
    let data = seed_store(dir.path(), &spec);

    let first = reckon(&cfg, &["reconcile"]);
    assert!(first.contains("shop-us: full run"), "{first}");
    // The bracket lists the judged claims' outcomes, and says so.
    assert!(
        first.contains("[judged: matched=373 amount_mismatch=9 "),
        "{first}"
    );
    let again = reckon(&cfg, &["reconcile"]);
    assert!(
        again
            .contains("shop-us: incremental run, 0 claims judged (0 of them payable), 0 decisions changed (0 with a new outcome, basis or payable flag);"),
        "{again}"
    );

    let json = reckon(
        &cfg,
        &[
            "reconcile",
            "report",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let listed: BTreeMap<(String, String), String> = report["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                (
                    d["network"].as_str().unwrap().to_owned(),
                    d["claim_id"].as_str().unwrap().to_owned(),
                ),
                d["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut injected = 0;
    let mut kinds = BTreeMap::new();
    for (src, id, outcome) in &data.expected {
        let got = listed.get(&(src.clone(), id.clone()));
        if *outcome == Outcome::Matched {
            assert_eq!(got, None, "{src}/{id} is matched and must not be listed");
        } else {
            injected += 1;
            *kinds.entry(outcome.as_str()).or_insert(0) += 1;
            assert_eq!(
                got.map(String::as_str),
                Some(outcome.as_str()),
                "{src}/{id}"
            );
        }
    }
    assert_eq!(listed.len(), injected);
    // Every kind of injected discrepancy occurs in this seeded month.
    for k in [
        "duplicate",
        "refunded",
        "amount_mismatch",
        "network_reversed",
        "no_order",
    ] {
        assert!(kinds.contains_key(k), "{k} missing from {kinds:?}");
    }
    assert_eq!(
        report["claims"].as_u64().unwrap() as usize,
        data.claims.len()
    );
}

#[test]
fn report_formats_csv_html_and_out_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let mut spec = past(SynthSpec::benchmark(12, 3));
    spec.duplicate_pct = 25;
    spec.mismatch_pct = 20;
    seed_store(dir.path(), &spec);
    // A fixed instant (every lock date passed), so the snapshot's
    // `judged_at` and `decided_at` do not follow the clock.
    reckon(
        &cfg,
        &[
            "reconcile",
            "--program",
            "shop-us",
            "--now",
            "2026-11-01T00:00:00Z",
        ],
    );
    let csv = reckon(
        &cfg,
        &[
            "reconcile",
            "report",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
        ],
    );
    insta::assert_snapshot!("reconcile_report_csv", csv);
    let out = dir.path().join("report.html");
    let printed = reckon(
        &cfg,
        &[
            "reconcile",
            "report",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
            "--format",
            "html",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(printed.is_empty());
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<h2>Discrepancies ("));
    // --all lists every claim of the month, matched ones too.
    let json = |extra: &[&str]| -> serde_json::Value {
        let args = [
            &[
                "reconcile",
                "report",
                "--program",
                "shop-us",
                "--period",
                "2026-08",
                "--format",
                "json",
            ][..],
            extra,
        ]
        .concat();
        serde_json::from_str(&reckon(&cfg, &args)).unwrap()
    };
    let (some, all) = (json(&[]), json(&["--all"]));
    let listed = |r: &serde_json::Value| r["discrepancies"].as_array().unwrap().len() as u64;
    assert_eq!(listed(&all), all["claims"].as_u64().unwrap());
    assert!(listed(&some) < listed(&all));
    assert_eq!(all["all_claims"], true);
    assert!(some.get("all_claims").is_none());
    assert!(all["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["outcome"] == "matched"));
    // An empty month is a valid, empty report.
    let empty = reckon(
        &cfg,
        &[
            "reconcile",
            "report",
            "--program",
            "shop-us",
            "--period",
            "2026-07",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&empty).unwrap();
    assert_eq!(v["claims"], 0);
}

#[test]
fn unknown_program_and_bad_period_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["reconcile", "--program", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no program `nope`") && err.contains("shop-us"),
        "{err}"
    );
    // A typo gets the did-you-mean connector and source ids get (QA).
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["reconcile", "--program", "shop_us"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "no program `shop_us` in [[programs]]; did you mean `shop-us`? (configured: `shop-us`"
        ),
        "{err}"
    );
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args([
            "reconcile",
            "report",
            "--program",
            "shop-us",
            "--period",
            "2026-13",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // The form is right; the month is what does not exist (QA6 F12).
    assert!(
        err.contains("period `2026-13`: there is no month 13: months are 01 to 12"),
        "{err}"
    );
}

#[test]
fn now_judges_as_of_a_given_instant() {
    // Data from a month that has not settled yet by the real clock is judged
    // as of a chosen instant: before the grace period every ghost claim
    // awaits its order; once settled, each outcome is the injected one.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let mut spec = SynthSpec::benchmark(300, 7);
    spec.start = chrono::Utc::now() + chrono::Duration::days(400);
    let data = seed_store(dir.path(), &spec);

    let early = spec.start + chrono::Duration::days(1);
    let out = reckon(&cfg, &["reconcile", "--now", &early.to_rfc3339()]);
    assert!(out.contains("shop-us: full run"), "{out}");
    assert!(out.contains("awaiting_order="), "{out}");
    assert!(!out.contains("no_order="), "{out}");

    let settled = spec.settled_now().to_rfc3339();
    let out = reckon(&cfg, &["reconcile", "--now", &settled]);
    assert!(out.contains("shop-us: full run"), "{out}");
    assert!(!out.contains("awaiting_order="), "{out}");
    let store = Store::open(&dir.path().join("data")).unwrap();
    let decisions = reckon::reconcile::load_decisions(&store, "shop-us").unwrap();
    let got: BTreeMap<(String, String), Outcome> = decisions
        .iter()
        .map(|d| ((d.claim.source.clone(), d.claim.id.clone()), d.outcome))
        .collect();
    assert_eq!(got.len(), data.expected.len());
    for (src, id, outcome) in &data.expected {
        assert_eq!(got[&(src.clone(), id.clone())], *outcome, "{src}/{id}");
    }
    drop(store);

    // Before anything was stored: no claims, and the run says it removed
    // every stored decision (it used to say "0 decisions changed").
    let out = reckon(&cfg, &["reconcile", "--now", "2020-01-01T00:00:00Z"]);
    let removed = format!(
        "0 claims judged (0 of them payable), 0 decisions changed (0 with a new outcome, basis or payable flag), {} decisions removed",
        data.expected.len()
    );
    assert!(out.contains(&removed), "{out}");

    let bad = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["reconcile", "--now", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--now") && err.contains("RFC 3339"), "{err}");
}

#[test]
fn now_reproduces_what_was_stored_then_and_the_next_run_returns_to_the_present() {
    // A past month synced at `start`; on `later` a sync brings a full
    // refund of one matched order, a reversal of another matched claim, and
    // a claim never seen before. Judged as of an instant between the two,
    // none of that has happened yet.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let spec = past(SynthSpec::benchmark(300, 11));
    let data = seed_store(dir.path(), &spec);
    let later = spec.start + chrono::Duration::days(60);
    let between = (spec.start + chrono::Duration::days(45)).to_rfc3339();

    let matched: Vec<&plugin_api::Conversion> = data
        .expected
        .iter()
        .filter(|(_, _, o)| *o == Outcome::Matched)
        .map(|(src, id, _)| {
            data.claims
                .iter()
                .find(|c| &c.source == src && &c.external_id == id)
                .unwrap()
        })
        .collect();
    let (refund_claim, reversed_claim) = (matched[0], matched[1]);
    let norm = |s: &str| s.trim().to_lowercase();
    let mut order = data
        .orders
        .iter()
        .find(|o| norm(&o.order_id) == norm(refund_claim.order_id.as_deref().unwrap()))
        .unwrap()
        .clone();
    order.refunds.push(plugin_api::Refund {
        amount: order.amount.clone(),
        at: later,
    });
    let mut reversed = reversed_claim.clone();
    reversed.status = plugin_api::ConversionStatus::Reversed;
    reversed.status_changed_at = Some(later);
    let mut newcomer = reversed_claim.clone();
    newcomer.external_id = "late-arrival".into();
    let store = Store::open(&dir.path().join("data")).unwrap();
    store
        .commit_page(SHOP, &[plugin_api::Record::Order(order)], None, later)
        .unwrap();
    store
        .commit_page(
            &reversed.source,
            &[
                plugin_api::Record::Conversion(reversed.clone()),
                plugin_api::Record::Conversion(newcomer),
            ],
            None,
            later,
        )
        .unwrap();
    store.flush().unwrap();
    drop(store);

    let outcomes = || -> BTreeMap<(String, String), Outcome> {
        let store = Store::open(&dir.path().join("data")).unwrap();
        reckon::reconcile::load_decisions(&store, "shop-us")
            .unwrap()
            .into_iter()
            .map(|d| ((d.claim.source, d.claim.id), d.outcome))
            .collect()
    };
    let key = |c: &plugin_api::Conversion| (c.source.clone(), c.external_id.clone());

    let out = reckon(&cfg, &["reconcile", "--now", &between]);
    assert!(out.contains("shop-us: full run"), "{out}");
    assert!(out.contains("decisions now stored as of"), "{out}");
    let then = outcomes();
    assert_eq!(
        then.len(),
        data.expected.len(),
        "the late claim is not judged"
    );
    assert_eq!(then[&key(refund_claim)], Outcome::Matched);
    assert_eq!(then[&key(reversed_claim)], Outcome::Matched);

    // The next plain run is a full one, back to the present.
    let out = reckon(&cfg, &["reconcile"]);
    assert!(out.contains("shop-us: full run"), "{out}");
    let now = outcomes();
    assert_eq!(now.len(), data.expected.len() + 1);
    assert_eq!(now[&key(refund_claim)], Outcome::Refunded);
    assert_eq!(now[&key(reversed_claim)], Outcome::NetworkReversed);
    let out = reckon(&cfg, &["reconcile"]);
    assert!(
        out.contains("shop-us: incremental run, 0 claims judged (0 of them payable), 0 decisions changed (0 with a new outcome, basis or payable flag)"),
        "{out}"
    );

    // A report as of the instant in between shows what `--now` stored
    // then, without touching the stored decisions or the program's state.
    let report = |extra: &[&str]| -> serde_json::Value {
        let args = [
            &[
                "reconcile",
                "report",
                "--program",
                "shop-us",
                "--period",
                "2026-08",
            ][..],
            &["--format", "json"],
            extra,
        ]
        .concat();
        serde_json::from_str(&reckon(&cfg, &args)).unwrap()
    };
    // Every outcome is named, 0 when none (QA35a L3).
    let counts = |m: &BTreeMap<(String, String), Outcome>| -> serde_json::Value {
        let mut c: BTreeMap<&str, u64> = reckon::reconcile::model::ALL_OUTCOMES
            .iter()
            .map(|o| (o.as_str(), 0))
            .collect();
        for o in m.values() {
            *c.entry(o.as_str()).or_default() += 1;
        }
        serde_json::to_value(c).unwrap()
    };
    let as_of = report(&["--as-of", &between]);
    assert_eq!(as_of["totals"], counts(&then), "{as_of}");
    // It says the rules and rates are today's (QA: a controller took it
    // for the state of a past close).
    // `reconcile report` of August as of `at` (JSON when `json`): stdout
    // and stderr.
    let report_as_of = |at: &str, json: bool| {
        let mut args = vec![
            "reconcile",
            "report",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
            "--as-of",
            at,
        ];
        if json {
            args.extend(["--format", "json"]);
        }
        reckon_with_stderr(&cfg, &args)
    };
    let (_, err) = report_as_of(&between, false);
    assert!(err.contains("with today's [[programs]] and [fx]"), "{err}");
    assert!(!err.contains("no claim of program"), "{err}");
    // A future instant: the records stored now, judged as of then
    // (QA24-B F7: the note spoke of the past).
    let (_, err) = report_as_of("2099-01-01T00:00:00Z", false);
    assert!(
        err.contains("note: --as-of 2099-01-01T00:00:00Z is in the future: the records stored now are judged as of then"),
        "{err}"
    );
    // An instant with fractions is echoed whole, as `statements show`
    // prints it (QA32-D F4).
    let (_, err) = report_as_of("2099-01-01T00:00:00.250Z", false);
    assert!(
        err.contains("note: --as-of 2099-01-01T00:00:00.250Z is in the future"),
        "{err}"
    );
    // Before anything was stored: empty, and it says why (ops QA13 OPS-20).
    let (out, err) = report_as_of("2026-01-01T00:00:00Z", true);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["claims"], 0, "{v}");
    assert!(
        err.contains("note: no claim of program `shop-us` in 2026-08 was stored at 2026-01-01T00:00:00Z: records are stored when first synced"),
        "{err}"
    );
    assert_eq!(as_of["as_of"], between.replace("+00:00", "Z"), "{as_of}");
    let present = report(&[]);
    assert_eq!(present["totals"], counts(&now), "{present}");
    assert!(present.get("as_of").is_none());
    assert_eq!(outcomes(), now, "stored decisions untouched");
    let out = reckon(&cfg, &["reconcile"]);
    assert!(
        out.contains("shop-us: incremental run, 0 claims judged (0 of them payable), 0 decisions changed (0 with a new outcome, basis or payable flag)"),
        "the program's state is untouched: {out}"
    );
}

/// [`write_config`] plus a commission of 10 % in USD, for statements.
/// A second program with its own (empty) connectors and daily drafts.
const OTHER_PROGRAM_WITH_DRAFTS: &str = r#"
[[connectors]]
id = "other_net"
plugin = "impact"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "other_shop"
plugin = "orders"
schedule = "0 * * * *"
enabled = false

[[programs]]
id = "other"
currency = "USD"
claims = ["other_net"]
orders = ["other_shop"]
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
"#;

fn write_config_paying_10_percent(dir: &Path) -> std::path::PathBuf {
    let cfg = write_config(dir);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        r#"
[programs.commission]
payout_currency = "USD"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#,
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[test]
fn statements_are_built_from_decisions_brought_up_to_the_present() {
    // Decisions stored as of the month's second day (nothing locked yet,
    // so nothing payable); `statements generate` reconciles first, so the
    // statement pays what is payable now, not what was stored.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config_paying_10_percent(dir.path());
    let spec = past(SynthSpec::benchmark(300, 5));
    seed_store(dir.path(), &spec);
    let early = (spec.start + chrono::Duration::days(1)).to_rfc3339();
    let out = reckon(&cfg, &["reconcile", "--now", &early]);
    assert!(out.contains(" (0 of them payable), "), "{out}");

    let out = reckon(
        &cfg,
        &[
            "statements",
            "generate",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
        ],
    );
    assert!(out.contains("reconciled shop-us first: full run"), "{out}");
    assert!(out.contains("shop-us 2026-08: draft version 1"), "{out}");
    assert!(!out.contains("total payable 0.00 USD"), "{out}");
    // Nothing changed since: the next one reconciles incrementally.
    let out = reckon(
        &cfg,
        &[
            "statements",
            "generate",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
        ],
    );
    assert!(
        out.contains("reconciled shop-us first: incremental run, 0 claims judged"),
        "{out}"
    );
    // A finalised period's files come from the store: generating or
    // finalising it again re-judges nothing (QA18 A6).
    let period = ["--program", "shop-us", "--period", "2026-08"];
    let out = reckon(&cfg, &[&["statements", "finalize"][..], &period].concat());
    assert!(
        out.contains("shop-us 2026-08: finalised version 3"),
        "{out}"
    );
    for again in ["generate", "finalize"] {
        let out = reckon(&cfg, &[&["statements", again][..], &period].concat());
        assert!(out.contains("already finalised"), "{again}: {out}");
        assert!(!out.contains("reconciled shop-us first"), "{again}: {out}");
    }
}

fn reckon_with_stderr(cfg: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .expect("run reckon");
    assert!(
        out.status.success(),
        "reckon {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `reconcile report` of program `shop-us` for 2026-08 in `format`:
/// (stdout, stderr).
fn august_report(cfg: &Path, format: &str) -> (String, String) {
    reckon_with_stderr(
        cfg,
        &[
            "reconcile",
            "report",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
            "--format",
            format,
        ],
    )
}

/// QA findings of 2026-11-29 (M2, L3, M7): after `reckon reconcile --now
/// T` the report showed T's decisions with an empty `as_of` and nothing
/// else to say when they were judged, its CSV did not name the month's
/// timezone, and "(N payable)" counted only the claims a run judged.
#[test]
fn the_report_names_the_instant_its_decisions_were_judged_and_warns_when_they_are_out_of_date() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let mut spec = past(SynthSpec::benchmark(60, 13));
    spec.no_order_pct = 20;
    seed_store(dir.path(), &spec);
    let report = |format: &str| august_report(&cfg, format);
    // Judged on the month's second day: orders unlocked, ghost claims
    // awaiting their order. Both deadlines passed months ago.
    let then = spec.start + chrono::Duration::days(1);
    let then_s = then.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let out = reckon(&cfg, &["reconcile", "--now", &then_s]);
    assert!(out.contains(" (0 of them payable), "), "{out}");
    assert!(out.contains("; 0 payable in the program"), "{out}");

    let (json, err) = report("json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["judged_at"], then_s.as_str(), "{v}");
    assert!(v.get("as_of").is_none(), "not an --as-of report");
    // Judged from the store as it stood then, and said so.
    assert_eq!(v["store_as_of"], then_s.as_str(), "{v}");
    assert!(
        err.contains(&format!(
            "note: these decisions were stored by `reckon reconcile --now {then_s}`"
        )),
        "{err}"
    );
    let stale = v["stale"]["decisions"].as_u64().unwrap();
    assert!(v["stale"]["grace_ended"].as_u64().unwrap() > 0, "{v}");
    assert!(v["stale"]["lock_passed"].as_u64().unwrap() > 0, "{v}");
    assert!(
        err.contains(&format!(
            "warning: {stale} decision(s) in this report were judged at {then_s}, before a deadline of their own passed"
        )) && err.contains("run `reckon reconcile` and report again"),
        "{err}"
    );
    let (csv, err) = report("csv");
    assert!(
        err.contains("warning: "),
        "the CSV has no room for it: {err}"
    );
    let mut rows = csv.lines();
    assert!(
        rows.next()
            .unwrap()
            .ends_with(",basis,basis_currency,as_of,timezone,judged_at,payee"),
        "{csv}"
    );
    let row = rows.next().unwrap();
    // basis and basis_currency (empty for this duplicate), no as_of; then
    // the payee key (QA33-D L5).
    assert!(
        row.ends_with(&format!(",,,UTC,{then_s},awin:partner-1")),
        "{csv}"
    );
    let (html, _) = report("html");
    assert!(
        html.contains(&format!(
            "Decisions as judged by the reconcile run of {then_s}."
        )) && html.contains("<strong>Out of date:</strong>")
            && html.contains("later records were left out"),
        "{html}"
    );

    // Judged now: nothing out of date, and the program's payable count.
    let out = reckon(&cfg, &["reconcile"]);
    assert!(out.contains("shop-us: full run"), "{out}");
    let (json, err) = report("json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let judged: chrono::DateTime<chrono::Utc> = v["judged_at"].as_str().unwrap().parse().unwrap();
    assert!(judged > then && judged <= chrono::Utc::now(), "{v}");
    assert!(v.get("stale").is_none() && err.is_empty(), "{v} {err}");
    assert!(v.get("store_as_of").is_none(), "{v}");
    let store = Store::open(&dir.path().join("data")).unwrap();
    let payable = reckon::reconcile::load_decisions(&store, "shop-us")
        .unwrap()
        .iter()
        .filter(|d| d.payable)
        .count();
    drop(store);
    assert!(payable > 0);
    let out = reckon(&cfg, &["reconcile"]);
    assert!(
        out.contains(&format!(
            "shop-us: incremental run, 0 claims judged (0 of them payable), 0 decisions changed (0 with a new outcome, basis or payable flag); {payable} payable in the program"
        )),
        "{out}"
    );
}

#[test]
fn a_claim_restated_with_another_partner_after_payment_moves_its_commission() {
    // QA finding of 2026-11-29: August's finalised statement paid a claim
    // to its partner; the network then restated the claim with another
    // partner (same claim id). `statements finalize` of September, reading
    // the stored decisions, must take the commission back from the partner
    // paid and pay it to the new one.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config_paying_10_percent(dir.path());
    let spec = past(SynthSpec::benchmark(200, 7));
    let data = seed_store(dir.path(), &spec);
    let finalize = |period: &str| {
        reckon(
            &cfg,
            &[
                "statements",
                "finalize",
                "--program",
                "shop-us",
                "--period",
                period,
            ],
        )
    };
    let statements = |period: &str| -> Vec<reckon::payout::model::Statement> {
        let dir = dir.path().join("out/statements/shop-us").join(period);
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let bytes = std::fs::read(p).unwrap();
                reckon::payout::render::read_json_file(&bytes).unwrap().0
            })
            .collect()
    };
    finalize("2026-08");
    let august = statements("2026-08");
    let paid = august
        .iter()
        .find(|s| !s.lines.is_empty())
        .expect("August pays something");
    let line = &paid.lines[0];
    let old_payee = paid.payee();
    let mut restated = data
        .claims
        .iter()
        .find(|c| c.source == line.network && c.external_id == line.claim_id)
        .unwrap()
        .clone();
    restated.partner_id = "moved-here".into();
    let new_payee = format!("{}:moved-here", line.network);
    let store = Store::open(&dir.path().join("data")).unwrap();
    store
        .commit_page(
            &line.network,
            &[plugin_api::Record::Conversion(restated)],
            None,
            spec.start + chrono::Duration::days(40),
        )
        .unwrap();
    store.flush().unwrap();
    drop(store);

    let out = finalize("2026-09");
    assert!(out.contains("reconciled shop-us first"), "{out}");
    let september = statements("2026-09");
    let of = |payee: &str| september.iter().find(|s| s.payee() == payee);
    let old = of(&old_payee).unwrap_or_else(|| panic!("no statement for {old_payee}: {out}"));
    let back: Vec<_> = old
        .adjustments
        .iter()
        .filter(|a| a.claim_id == line.claim_id)
        .collect();
    assert_eq!(back.len(), 1, "{:?}", old.adjustments);
    assert_eq!(back[0].amount, -line.commission);
    assert!(
        back[0]
            .reason
            .starts_with(&format!("claim moved to partner `{new_payee}`")),
        "{}",
        back[0].reason
    );
    let new = of(&new_payee).unwrap_or_else(|| panic!("no statement for {new_payee}: {out}"));
    assert_eq!(new.lines.len(), 1);
    assert_eq!(
        (new.lines[0].claim_id.as_str(), new.lines[0].commission),
        (line.claim_id.as_str(), line.commission)
    );
    // The ledger now says the new partner was paid.
    let store = Store::open(&dir.path().join("data")).unwrap();
    let book = reckon::payout::book::StoreBook::open(&store).unwrap();
    let history = reckon::payout::lifecycle::load_history(&book, "shop-us").unwrap();
    let entry = &history.paid[&(line.network.clone(), line.claim_id.clone())];
    assert_eq!(entry.partner_id, "moved-here");
    assert_eq!(entry.paid_total, line.commission);
}

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Finance QA F1, F2, F4 and F8, through the binary over a real store:
/// after August is finalised, changing the payout currency or the
/// commission timezone, or removing a network whose claims August paid
/// from `claims`, makes `statements generate` and `finalize` refuse, name
/// what to put back and write nothing (no file, no decision dropped).
/// `reconcile` with the network removed names that cause for the decisions
/// it removes (it said "their claims were not stored yet").
/// A program paying 10 % whose August 2026 is finalised: its config file
/// and text.
fn august_finalised(dir: &Path) -> (std::path::PathBuf, String) {
    let cfg = write_config_paying_10_percent(dir);
    let spec = past(SynthSpec::benchmark(200, 7));
    seed_store(dir, &spec);
    reckon(
        &cfg,
        &[
            "statements",
            "finalize",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
        ],
    );
    let original = std::fs::read_to_string(&cfg).unwrap();
    (cfg, original)
}

/// The config without `awin` among the program's claims.
fn without_awin(config: &str) -> String {
    config.replace(
        "claims = [\"impact\", \"everflow\", \"awin\"]",
        "claims = [\"impact\", \"everflow\"]",
    )
}

/// QA29-A M1: a SIGHUP that took a paid network out of `claims` had the
/// daemon's next reconcile (the post-sync hook) drop its decisions without
/// a word; `reckon reconcile` said so. The hook logs both WARNs now.
#[test]
fn the_daemons_reconcile_warns_when_it_drops_a_paid_networks_decisions() {
    use reckon::schedule::hooks::{PostSync as _, SyncEvent};
    let dir = tempfile::tempdir().unwrap();
    let (cfg, original) = august_finalised(dir.path());
    std::fs::write(&cfg, without_awin(&original)).unwrap();
    let config = reckon::config::load(&cfg).unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let (captured, guard) = reckon_tests::CapturedLogs::at(tracing::Level::WARN);
    reckon::reconcile::ReconcileAfterSync
        .after_sync(&SyncEvent {
            store: &store,
            config: &config,
            connector: "impact",
            kind: plugin_api::PluginKind::Affiliate,
            seq_before: 0,
            seq_after: 0,
        })
        .unwrap();
    drop(guard);
    let log = captured.text();
    let warns: Vec<&str> = log.lines().filter(|l| l.contains("\"WARN\"")).collect();
    assert!(
        warns
            .iter()
            .any(|l| l
                .contains("decisions removed (`awin` is no longer a claims connector of shop-us)")),
        "{log}"
    );
    assert!(
        warns.iter().any(|l| l
            .contains("claims of `awin` were paid on finalised statements of `shop-us`")
            && l.contains("`reckon statements` refuses the program")),
        "{log}"
    );
}

#[test]
fn config_changes_a_finalised_period_settled_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, original) = august_finalised(dir.path());
    let out_dir = dir.path().join("out");
    let files = tree(&out_dir);
    let load = || {
        let store = Store::open(&dir.path().join("data")).unwrap();
        reckon::reconcile::load_decisions(&store, "shop-us").unwrap()
    };
    let decisions = || load().len();
    let stored = decisions();
    let awin = load().iter().filter(|d| d.claim.source == "awin").count();
    assert!(awin > 0);
    let refused = |config: &str, want: &[&str]| {
        std::fs::write(&cfg, config).unwrap();
        for cmd in ["generate", "finalize"] {
            let out = Command::new(reckon_tests::reckon_bin())
                .arg("--config")
                .arg(&cfg)
                .args([
                    "statements",
                    cmd,
                    "--program",
                    "shop-us",
                    "--period",
                    "2026-09",
                ])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd}: {err}");
            for w in want {
                assert!(err.contains(w), "{cmd}: {w}: {err}");
            }
            assert!(err.contains("nothing was written"), "{err}");
            assert_eq!(tree(&out_dir), files, "{cmd} wrote files");
            assert_eq!(decisions(), stored, "{cmd} changed decisions");
        }
    };
    refused(
        &original.replace("payout_currency = \"USD\"", "payout_currency = \"EUR\""),
        &[
            "program `shop-us`: the payout currency is EUR in the config, but finalised period 2026-08 was issued in USD",
            "Set `payout_currency = \"USD\"` back in [programs.commission]",
        ],
    );
    // QA8 F5: the finalised period's files are still written back (they
    // pay nothing new), byte for byte, with the changed config in place.
    std::fs::remove_dir_all(out_dir.join("statements/shop-us/2026-08")).unwrap();
    let out = reckon(
        &cfg,
        &[
            "statements",
            "generate",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
        ],
    );
    assert!(out.contains("restored"), "{out}");
    assert_eq!(tree(&out_dir), files, "restored files differ");
    refused(
        &original.replace(
            "payout_currency = \"USD\"",
            "payout_currency = \"USD\"\ntimezone = \"America/New_York\"",
        ),
        &[
            "the timezone is America/New_York in the config, but finalised period 2026-08 was issued in UTC",
            "Set `timezone = \"UTC\"` back",
        ],
    );
    let without_awin = without_awin(&original);
    refused(
        &without_awin,
        &[
            "claims of connector `awin` were paid on finalised statements of `shop-us` (the first in its ledger: shop-us/2026-08/awin:",
            "Put `awin` back in `claims`",
            "`enabled = false` on its [[connectors]] entry",
        ],
    );

    // The daemon's scheduled drafts refuse too, and write nothing.
    std::fs::write(
        &cfg,
        without_awin.replace(
            "payout_currency = \"USD\"",
            "payout_currency = \"USD\"\ndraft_schedule = \"0 6 * * *\"",
        ),
    )
    .unwrap();
    let loaded = reckon::config::load(&cfg).unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let e = reckon::payout::hook::run_due(&store, &loaded, chrono::Utc::now())
        .unwrap_err()
        .to_string();
    drop(store);
    assert!(
        e.starts_with(
            "program `shop-us`: claims of connector `awin` were paid on finalised statements of `shop-us`"
        ),
        "{e}"
    );
    assert_eq!(tree(&out_dir), files, "scheduled drafts wrote files");
    // A refused program does not stop another program's drafts.
    std::fs::write(
        &cfg,
        without_awin.replace(
            "payout_currency = \"USD\"",
            "payout_currency = \"USD\"\ndraft_schedule = \"0 6 * * *\"",
        ) + OTHER_PROGRAM_WITH_DRAFTS,
    )
    .unwrap();
    let loaded = reckon::config::load(&cfg).unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    // shop-us's refusal is the one reported above: an error once, its
    // repeats counted, not returned again (QA9 F3: an ERROR after every
    // sync filled the log); `other` is made.
    let first = reckon::payout::hook::run_due(&store, &loaded, chrono::Utc::now()).unwrap();
    // `other` ran: its schedule is not due again.
    let second = reckon::payout::hook::run_due(&store, &loaded, chrono::Utc::now()).unwrap();
    drop(store);
    assert_eq!((first, second), (vec!["other".to_owned()], vec![]));
    // /status and /metrics show both programs' drafts (QA9 F2).
    let runs = reckon::payout::hook::draft_runs();
    let of = |id: &str| runs.iter().find(|r| r.program == id).unwrap();
    // Three syncs retrying one fire of its `draft_schedule` are one failed
    // run (ops QA32a L3: each sync's retry was counted).
    assert_eq!(of("shop-us").runs.consecutive_failures, 1, "{runs:?}");
    assert_eq!(of("shop-us").runs.last_error.as_deref(), Some(e.as_str()));
    assert_eq!(
        (
            of("other").runs.ok_total,
            of("other").runs.last_error.as_deref()
        ),
        (1, None)
    );
    let metrics = reckon::payout::hook::render_metrics();
    assert!(
        metrics.contains("reckon_statement_drafts_runs_total{program=\"other\",outcome=\"ok\"} 1")
            && metrics
                .contains("reckon_statement_drafts_consecutive_failures{program=\"shop-us\"} 1"),
        "{metrics}"
    );
    assert!(
        out_dir.join("statements/other").is_dir(),
        "{:?}",
        tree(&out_dir)
    );
    std::fs::remove_dir_all(out_dir.join("statements/other")).unwrap();
    assert_eq!(
        tree(&out_dir),
        files,
        "scheduled drafts wrote shop-us files"
    );
    assert_eq!(decisions(), stored, "scheduled drafts changed decisions");
    std::fs::write(&cfg, &without_awin).unwrap();

    // F8: `reconcile` is not refused; it names why it drops awin's decisions
    // and warns that statements will refuse (QA8 F3).
    let run = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .arg("reconcile")
        .output()
        .unwrap();
    assert!(run.status.success());
    let out = String::from_utf8(run.stdout).unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("warning: claims of `awin` were paid on finalised statements of `shop-us` (the first: shop-us/2026-08/awin:")
            && err.contains("`reckon statements` refuses the program until `awin` is back in `claims`"),
        "{err}"
    );
    assert!(
        out.contains(&format!(
            "{awin} decisions removed (`awin` is no longer a claims connector of shop-us)"
        )),
        "{out}"
    );
    assert!(!out.contains("not stored yet"), "{out}");

    // The config as it was: statements run again.
    std::fs::write(&cfg, &original).unwrap();
    reckon(
        &cfg,
        &[
            "statements",
            "generate",
            "--program",
            "shop-us",
            "--period",
            "2026-09",
        ],
    );
}

/// QA20 F2, against the engine and a real store: the listing says of each
/// claim whether it is payable, its lock date and, for an earning claim
/// not payable, why. Orders of 2026-08-02 lock on 2026-09-01.
#[test]
fn the_listing_says_why_an_earning_claim_is_not_payable() {
    use plugin_api::{ConversionStatus, Money, Record};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("reckon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ndata_dir = \"data\"\n\n{}require_network_approval = true\n",
            reckon_tests::SYNTH_PROGRAM
        ),
    )
    .unwrap();
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let usd = |s: &str| Money::new(s.parse().unwrap(), "USD");
    let claim = |id: &str, status| plugin_api::Conversion {
        source: "impact".into(),
        external_id: id.into(),
        order_id: Some(format!("A-{id}")),
        click_id: None,
        clicked_at: None,
        partner_id: "p1".into(),
        partner_name: None,
        campaign_id: None,
        event_type: plugin_api::EventType::Sale,
        occurred_at: at("2026-08-02T10:05:00Z"),
        sale_amount: Some(usd("100.00")),
        commission: Some(usd("10.00")),
        status,
        status_changed_at: None,
        locked_at: None,
        coupon: None,
        utm: Default::default(),
    };
    let order = |id: &str| plugin_api::Order {
        source: SHOP.into(),
        order_id: format!("A-{id}"),
        alt_ids: vec![],
        created_at: at("2026-08-02T10:00:00Z"),
        amount: usd("100.00"),
        customer_id: None,
        new_customer: None,
        coupon: None,
        click_ids: vec![],
        utm: Default::default(),
        refunds: vec![],
        status: plugin_api::OrderStatus::Paid,
    };
    let pending = claim("1", ConversionStatus::Pending);
    let approved = claim("2", ConversionStatus::Approved);
    let mut network_lock = claim("3", ConversionStatus::Approved);
    network_lock.locked_at = Some(at("2099-01-01T00:00:00Z"));
    {
        let store = Store::open(&dir.path().join("data")).unwrap();
        let stored = at("2026-08-03T00:00:00Z");
        let claims = [pending, approved, network_lock].map(Record::Conversion);
        store.commit_page("impact", &claims, None, stored).unwrap();
        let orders = ["1", "2", "3"].map(|id| Record::Order(order(id)));
        store.commit_page(SHOP, &orders, None, stored).unwrap();
        store.flush().unwrap();
    }
    let listing = || -> Vec<(String, bool, String, serde_json::Value)> {
        let json = reckon(
            &cfg,
            &[
                "reconcile",
                "report",
                "--program",
                "shop-us",
                "--period",
                "2026-08",
                "--format",
                "json",
                "--all",
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["discrepancies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["claim_id"].as_str().unwrap().to_owned(),
                    d["payable"].as_bool().unwrap(),
                    d["lock_at"].as_str().unwrap().to_owned(),
                    d["not_payable_reason"].clone(),
                )
            })
            .collect()
    };
    let order_lock = "2026-09-01T10:00:00Z".to_owned();
    let far = "2099-01-01T00:00:00Z".to_owned();
    // Before the lock date: every claim waits for it.
    reckon(&cfg, &["reconcile", "--now", "2026-08-05T00:00:00Z"]);
    assert_eq!(
        listing(),
        [
            ("1".into(), false, order_lock.clone(), "lock_pending".into()),
            ("2".into(), false, order_lock.clone(), "lock_pending".into()),
            ("3".into(), false, far.clone(), "lock_pending".into()),
        ]
    );
    // Now: the order lock has passed; the pending claim waits for the
    // network, the other for its network's lock date. Again after a run
    // that judges nothing (the stored decisions, a later `judged_at`).
    for _ in 0..2 {
        reckon(&cfg, &["reconcile"]);
        assert_eq!(
            listing(),
            [
                (
                    "1".into(),
                    false,
                    order_lock.clone(),
                    "awaiting_network_approval".into()
                ),
                (
                    "2".into(),
                    true,
                    order_lock.clone(),
                    serde_json::Value::Null
                ),
                ("3".into(), false, far.clone(), "lock_pending".into()),
            ]
        );
    }
}

/// QA20 F9: `--out` into a missing directory said only "No such file or
/// directory"; a month without claims printed bare headers and nothing
/// on stderr.
#[test]
fn report_names_a_missing_out_directory_and_notes_an_empty_month() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    seed_store(dir.path(), &past(SynthSpec::benchmark(12, 3)));
    reckon(&cfg, &["reconcile"]);
    let args = |period: &str, extra: &[&str]| -> Vec<String> {
        [
            &[
                "reconcile",
                "report",
                "--program",
                "shop-us",
                "--period",
                period,
            ][..],
            extra,
        ]
        .concat()
        .into_iter()
        .map(String::from)
        .collect()
    };
    let missing = dir.path().join("rep");
    let out_file = missing.join("x.json");
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(args(
            "2026-08",
            &["--format", "json", "--out", out_file.to_str().unwrap()],
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "directory {} does not exist; create it (mkdir -p {})",
            missing.display(),
            missing.display()
        )),
        "{err}"
    );
    assert!(!missing.exists(), "nothing created");
    // Created, it works.
    std::fs::create_dir(&missing).unwrap();
    let argv = args(
        "2026-08",
        &["--format", "json", "--out", out_file.to_str().unwrap()],
    );
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (printed, err) = reckon_with_stderr(&cfg, &argv);
    assert!(printed.is_empty() && !err.contains("no claims"), "{err}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert!(written["claims"].as_u64().unwrap() > 0, "{written}");

    // An empty month: the report, exit 0, and a note on stderr.
    let argv = args("2025-01", &[]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (csv, err) = reckon_with_stderr(&cfg, &argv);
    assert_eq!(csv.lines().filter(|l| !l.is_empty()).count(), 2, "{csv}");
    assert_eq!(
        err.trim_end(),
        "note: program `shop-us` has no claims in 2025-01 (the month of their conversion time in UTC): the report is empty"
    );
}

/// QA40a A-M1, A-M2: the report of the stored decisions said nothing when
/// a refund was synced after the last run (kpi said so), nor when the
/// program's `[[programs]]` entry was edited since (the decisions were
/// judged with the old tolerance). Both are now warnings, on stderr, in
/// the JSON (`out_of_date`) and in the HTML; the report still lists the
/// decisions as they were judged, and a run clears both.
#[test]
fn the_report_says_when_records_or_the_config_changed_since_the_last_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let spec = past(SynthSpec::benchmark(60, 17));
    let data = seed_store(dir.path(), &spec);
    reckon(&cfg, &["reconcile"]);
    let report = |format: &str| august_report(&cfg, format);
    let (json, err) = report("json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.get("out_of_date").is_none(), "{v}");
    assert!(!err.contains("warning"), "{err}");

    // A refund synced, not reconciled.
    let mut order = data.orders[0].clone();
    order.refunds.push(plugin_api::Refund {
        amount: order.amount.clone(),
        at: spec.start + chrono::Duration::days(3),
    });
    let store = Store::open(&dir.path().join("data")).unwrap();
    store
        .commit_page(
            SHOP,
            &[plugin_api::Record::Order(order)],
            None,
            chrono::Utc::now(),
        )
        .unwrap();
    drop(store);
    let (json, err) = report("json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let notes = v["out_of_date"].as_array().expect("out_of_date").clone();
    assert_eq!(notes.len(), 1, "{v}");
    let note = notes[0].as_str().unwrap();
    assert!(
        note.starts_with("Reconciliation of program `shop-us` is out of date: 1 order stored after its last run (")
            && note.ends_with(") is not judged yet (a refund, a reversal or a new claim since is not in this report); run `reckon reconcile` and report again."),
        "{note}"
    );
    assert!(err.contains(&format!("warning: {note}")), "{err}");
    let (html, _) = report("html");
    assert!(
        html.contains("<strong>Out of date:</strong> Reconciliation of program"),
        "{html}"
    );

    // The tolerance edited as well.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "amount_tolerance_abs = \"0.50\"",
            "amount_tolerance_abs = \"5\"",
        ),
    )
    .unwrap();
    let (json, err) = report("json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let notes = v["out_of_date"].as_array().expect("out_of_date").clone();
    assert_eq!(notes.len(), 2, "{v}");
    assert!(
        notes[0].as_str().unwrap().starts_with(
            "program `shop-us`: its `[[programs]]` entry has changed since its last run ("
        ),
        "{v}"
    );
    assert!(
        err.contains("its decisions were judged before and are shown as they were"),
        "{err}"
    );

    // A run clears both.
    reckon(&cfg, &["reconcile"]);
    let (json, err) = report("json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.get("out_of_date").is_none(), "{v}");
    assert!(!err.contains("warning"), "{err}");
}
