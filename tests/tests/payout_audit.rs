//! The audit trail of payout statements (QA33d): `reckon statements trace`
//! follows one claim to every line and adjustment that paid it, across
//! finalised periods and drafts, with and without the daemon (M1); a
//! finalise records the terms in force, `statements show --terms` prints
//! them, and `config check` and the daemon's reload warn when a rule a
//! finalised period used was edited in place (M6).

use reckon::reconcile::synth::{generate, SynthSpec};
use reckon::store::Store;
use reckon_tests::RunningDaemon;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Program `shop-us`: claims of three example-plugin connectors, 10 % in
/// USD, orders from a file drop; the daemon listens on `port`.
fn config_text(port: u16) -> String {
    reckon_tests::shop_us_daemon_config(port, "AUDIT_TEST_KEY")
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
    std::fs::create_dir(dir.path().join("drop")).unwrap();
    let config = dir.path().join("reckon.toml");
    std::fs::write(&config, config_text(reckon_tests::free_port())).unwrap();
    (dir, config)
}

fn spec() -> SynthSpec {
    let mut spec = SynthSpec::benchmark(200, 7);
    spec.start = chrono::DateTime::parse_from_rfc3339("2026-08-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    spec
}

fn reckon(config: &Path, args: &[&str]) -> Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("AUDIT_TEST_KEY", "k")
        .env_remove("RECKON_CONFIG")
        .output()
        .expect("run reckon")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Stores a week of August claims and orders and finalises August.
fn finalise_august(dir: &Path, config: &Path) {
    let spec = spec();
    let store = Store::open(&dir.join("data")).unwrap();
    reckon_tests::store_synth(&store, &generate(&spec), spec.start);
    drop(store);
    ok(reckon(config, &statements("finalize", "2026-08")));
}

fn statements<'a>(cmd: &'a str, period: &'a str) -> Vec<&'a str> {
    vec![
        "statements",
        cmd,
        "--program",
        "shop-us",
        "--period",
        period,
    ]
}

/// The first line of a finalised August statement: (network, claim id,
/// order id, line number, commission, statement id).
fn a_paid_line(dir: &Path) -> (String, String, String, u64, String, String) {
    let period = dir.join("out/statements/shop-us/2026-08");
    let mut files: Vec<_> = std::fs::read_dir(&period)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for f in files {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        if let Some(l) = s["lines"].as_array().and_then(|l| l.first()) {
            let str = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
            return (
                str(&l["network"]),
                str(&l["claim_id"]),
                str(&l["order_id"]),
                l["line_no"].as_u64().unwrap(),
                str(&l["commission"]),
                str(&s["statement_id"]),
            );
        }
    }
    panic!("no line in {}", period.display());
}

fn trace(config: &Path, claim: &str, json: bool) -> Output {
    let mut args = vec![
        "statements",
        "trace",
        "--program",
        "shop-us",
        "--claim",
        claim,
    ];
    if json {
        args.extend(["--format", "json"]);
    }
    reckon(config, &args)
}

/// QA33d M1: a paid claim is followed to its line, then to a take-back
/// in the next period's draft and, once finalised, there; the net paid
/// is 0, as the ledger says. A claim on no statement is an
/// error that says what Reckon decided; the daemon answers the same.
#[test]
fn a_claim_is_traced_to_every_line_and_adjustment_that_paid_it() {
    let (dir, config) = setup();
    finalise_august(dir.path(), &config);
    let (network, claim, order, line_no, commission, statement) = a_paid_line(dir.path());
    let name = format!("{network}/{claim}");
    let payee = statement.rsplit('/').next().unwrap().to_owned();

    let out = ok(trace(&config, &name, false));
    let row = out
        .lines()
        .find(|l| l.starts_with("2026-08"))
        .unwrap_or_else(|| panic!("{out}"));
    for want in [
        "finalised v1",
        statement.as_str(),
        &format!("#{line_no}"),
        " line ",
        &format!(" {commission} USD "),
        "rule cps, 10 % of ",
    ] {
        assert!(row.contains(want), "{want} missing from: {row}\n{out}");
    }
    assert!(
        out.contains(&format!(
            "net paid by finalised periods to {payee}: {commission} USD\n"
        )) && out.contains(&format!(
            "ledger: paid to {payee} by {statement}#{line_no}, {commission} credited in total\n"
        )),
        "{out}"
    );

    // The order is refunded in full after payment: September's draft
    // takes the line back.
    let data = generate(&spec());
    let mut o = data
        .orders
        .iter()
        .find(|o| o.order_id == order)
        .unwrap()
        .clone();
    let refunded_at = chrono::DateTime::parse_from_rfc3339("2026-09-10T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    o.refunds.push(plugin_api::Refund {
        amount: o.amount.clone(),
        at: refunded_at,
    });
    let store = Store::open(&dir.path().join("data")).unwrap();
    store
        .commit_page(
            reckon::reconcile::synth::SHOP,
            &[plugin_api::Record::Order(o)],
            None,
            refunded_at,
        )
        .unwrap();
    store.flush().unwrap();
    drop(store);
    ok(reckon(&config, &statements("generate", "2026-09")));
    let out = ok(trace(&config, &name, false));
    let draft = out
        .lines()
        .find(|l| l.starts_with("2026-09"))
        .unwrap_or_else(|| panic!("{out}"));
    for want in [
        "draft v1",
        " take-back ",
        &format!(" -{commission} USD "),
        "refunded",
        &format!("[corrects {statement}#{line_no}]"),
    ] {
        assert!(draft.contains(want), "{want} missing from: {draft}\n{out}");
    }
    assert!(
        out.contains("draft entries are not paid until their period is finalised"),
        "{out}"
    );

    ok(reckon(&config, &statements("finalize", "2026-09")));
    let json: serde_json::Value = serde_json::from_str(&ok(trace(&config, &name, true))).unwrap();
    let kinds: Vec<(&str, &str, &str)> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["period"].as_str().unwrap(),
                e["status"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("2026-08", "finalised", "line"),
            ("2026-09", "finalised", "take-back")
        ],
        "{json}"
    );
    assert_eq!(json["net_finalised"][0]["payee"], payee.as_str());
    assert_eq!(json["net_finalised"][0]["amount"], "0.00", "{json}");
    // The ledger keeps the claim on the line that paid it, credited 0.
    assert_eq!(json["ledger"]["paid_total"], "0.00", "{json}");

    // A claim on no statement: what Reckon decided, or that it has no
    // decision.
    let store = Store::open(&dir.path().join("data")).unwrap();
    let unpaid = reckon::reconcile::load_decisions(&store, "shop-us")
        .unwrap()
        .into_iter()
        .find(|d| !d.payable)
        .expect("a claim that is not payable");
    drop(store);
    let out = trace(
        &config,
        &format!("{}/{}", unpaid.claim.source, unpaid.claim.id),
        false,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("is paid on no statement (finalised or draft: a statement may list it among the claims it does not pay); Reckon's decision for it: ")
            && err.contains(&format!("{}, not payable: ", unpaid.outcome.as_str())),
        "{err}"
    );
    let out = trace(&config, &format!("{network}/no-such-claim"), false);
    assert!(
        text(&out.stderr).contains(&format!(
            "claim `{network}/no-such-claim` of program `shop-us` is paid on no statement (finalised or draft: a statement may list it among the claims it does not pay); Reckon has no decision for it"
        )),
        "{}",
        text(&out.stderr)
    );
    let out = reckon(
        &config,
        &["statements", "trace", "--program", "nope", "--claim", &name],
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("no program `nope` in [[programs]]"),
        "{}",
        text(&out.stderr)
    );
    let out = reckon(
        &config,
        &[
            "statements",
            "trace",
            "--program",
            "shop-us",
            "--claim",
            "C-1",
        ],
    );
    assert!(
        text(&out.stderr).contains("is not `<network>/<claim id>`"),
        "{}",
        text(&out.stderr)
    );

    // Through the daemon's command socket: the same answer.
    let offline = ok(trace(&config, &name, false));
    let daemon = start_daemon(&config);
    let through = trace(&config, &name, false);
    assert_eq!(ok(through), offline);
    let log = daemon.stop();
    assert!(log.contains("statements trace"), "{log}");
}

fn start_daemon(config: &Path) -> RunningDaemon {
    let mut command = reckon_tests::run_command(config);
    command.env("AUDIT_TEST_KEY", "k");
    let mut d = RunningDaemon::spawn(&mut command, config.with_file_name("run.log"));
    d.wait_for_log(&["daemon started", "command socket ready"]);
    d
}

fn check(config: &Path) -> (i32, String, String) {
    let out = reckon(config, &["config", "check"]);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

const EDITED: &str = "warning: rule `cps` of program `shop-us`: 10 % when 2026-08 was finalised, 11 % now; claims of finalised periods paid from now on (late claims, claims moved to another partner) take 11 %, lines already paid keep the terms they were paid on";

/// QA33d M6: the terms in force are recorded with the finalised period;
/// an in-place edit of the rule it used is a warning of `config check`
/// (run here, and by the daemon holding the store) and of the daemon's
/// reload, naming the rule and the period; a period finalised before terms
/// were recorded is noted, not refused.
#[test]
fn an_edited_rule_a_finalised_period_used_is_named_with_the_terms_recorded_then() {
    let (dir, config) = setup();
    finalise_august(dir.path(), &config);
    let mut show = statements("show", "2026-08");
    show.push("--terms");
    let shown = ok(reckon(&config, &show));
    for want in [
        "terms recorded when shop-us 2026-08 was finalised (",
        "  payout: currency USD, period monthly, timezone UTC, minimum payout 0\n",
        "  rule cps: 10 %, from 2026-01-01\n",
        "  matching: currency USD, claims impact+everflow+awin, orders shop, return window 30 days, no-order grace 7 days, attribution last_click",
        "  fx: no [fx] section, rates fingerprint ",
    ] {
        assert!(shown.contains(want), "{want} missing from:\n{shown}");
    }

    let original = std::fs::read_to_string(&config).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("rule `cps`"), "{err}");
    assert!(
        out.contains("\nsettled: no change to what finalised statements settled (store in ")
            && !out.contains("change(s)"),
        "{out}"
    );

    let edited = original.replace("percent = \"10\"", "percent = \"11\"");
    std::fs::write(&config, &edited).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "a warning, not an error: {out}{err}");
    assert!(err.contains(EDITED), "{err}");
    assert!(
        err.contains("`reckon statements show --program shop-us --period 2026-08 --terms` lists the terms then"),
        "{err}"
    );
    assert!(
        out.contains(
            "1 change(s) to the terms finalised periods were paid under (see the warnings)"
        ),
        "{out}"
    );

    // The daemon holding the store runs the check, and its reload warns.
    std::fs::write(&config, &original).unwrap();
    let mut daemon = start_daemon(&config);
    std::fs::write(&config, &edited).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(EDITED) && out.contains(", checked by the running daemon)"),
        "{out}{err}"
    );
    daemon.hup();
    daemon.wait_for_log(&[
        "SIGHUP: rule `cps` of program `shop-us`: 10 % when 2026-08 was finalised, 11 % now",
        "SIGHUP: config reloaded",
    ]);
    daemon.stop();

    // A matching setting changed since the period was paid: named with
    // both values (QA33d M6, second part).
    let widened = original.replace("return_window_days = 30", "return_window_days = 45");
    std::fs::write(&config, &widened).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: matching settings of program `shop-us` differ from those in force when 2026-08 was finalised: return_window_days 30 then, 45 now; the next reconciliation re-judges every claim under the settings now"),
        "{err}"
    );
    assert!(!err.contains("rule `cps`"), "{err}");
    std::fs::write(&config, &original).unwrap();

    // A period finalised before terms were recorded (an older binary):
    // said, never an error.
    let store = Store::open(&dir.path().join("data")).unwrap();
    let book = reckon::payout::book::StoreBook::open(&store).unwrap();
    reckon::payout::book::StatementBook::apply(
        &book,
        vec![(reckon::payout::terms::terms_key("shop-us", "2026-08"), None)],
    )
    .unwrap();
    drop(book);
    drop(store);
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("rule `cps`"), "{err}");
    assert!(
        out.contains("  note: program `shop-us`: 2026-08 was finalised before Reckon recorded the terms in force: edits of their rules since cannot be checked\n"),
        "{out}"
    );
    let shown = ok(reckon(&config, &show));
    assert!(
        shown.contains("terms: not recorded (the period was finalised before Reckon recorded the terms in force"),
        "{shown}"
    );
}
