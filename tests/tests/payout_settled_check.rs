//! `reckon config check` reports the config changes `reckon statements`
//! and the scheduled drafts refuse once a period is finalised (a changed
//! `payout_currency` or commission `timezone`, a paid network removed from
//! `claims`), in its second round, with exit status 1: with no process
//! holding the store, and with `reckon run` holding it (the daemon runs the
//! checks over its store). Ops QA: the check passed, and the change was
//! found only when the next drafts were refused.

use reckon::store::Store;
use reckon_tests::RunningDaemon;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Programs `shop-us` (claims of three example-plugin connectors, 10 % in
/// USD) and its orders from a file drop; the daemon listens on `port`.
fn config_text(port: u16) -> String {
    reckon_tests::shop_us_daemon_config(port, "SETTLED_TEST_KEY")
}

/// A directory with the plugins, the drop directory and the config; no
/// store yet.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
    std::fs::create_dir(dir.path().join("drop")).unwrap();
    let config = dir.path().join("reckon.toml");
    std::fs::write(&config, config_text(reckon_tests::free_port())).unwrap();
    (dir, config)
}

/// Stores a month of claims and orders (August 2026, long past: every claim
/// is judged for good) and finalises August.
fn finalise_august(dir: &Path, config: &Path) {
    reckon_tests::store_august(&dir.join("data"));
    let out = reckon(
        config,
        &[
            "statements",
            "finalize",
            "--program",
            "shop-us",
            "--period",
            "2026-08",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary =
        std::fs::read_to_string(dir.join("out/statements/shop-us/2026-08/summary.csv")).unwrap();
    assert!(summary.contains("awin"), "awin was paid: {summary}");
}

fn reckon(config: &Path, args: &[&str]) -> Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("SETTLED_TEST_KEY", "k")
        .env_remove("RECKON_CONFIG")
        .output()
        .expect("run reckon")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `config check`: (exit code, stdout, stderr).
fn check(config: &Path) -> (i32, String, String) {
    let out = reckon(config, &["config", "check"]);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

const CURRENCY: &str = "`programs[0].commission.payout_currency`: program `shop-us`: the payout currency is EUR in the config, but finalised period 2026-08 was issued in USD.";
const CURRENCY_FIX: &str = "Set `payout_currency = \"USD\"` back in [programs.commission]";
const TIMEZONE: &str = "`programs[0].commission.timezone`: program `shop-us`: the timezone is America/New_York in the config, but finalised period 2026-08 was issued in UTC.";
const TIMEZONE_FIX: &str = "Set `timezone = \"UTC\"` back in [programs.commission]";
const PROGRAM_CURRENCY: &str = "`programs[0].currency`: program `shop-us`: the program currency is EUR in the config, but finalised period 2026-08 was issued in USD.";
const PROGRAM_CURRENCY_FIX: &str =
    "Set `currency = \"USD\"` back in the program's [[programs]] entry";
const AWIN: &str = "`programs[0].claims`: program `shop-us`: claims of connector `awin` were paid on finalised statements of `shop-us` (the first in its ledger: shop-us/2026-08/awin:";
const AWIN_FIX: &str = "Put `awin` back in `claims`";

fn with_eur(original: &str) -> String {
    original.replace("payout_currency = \"USD\"", "payout_currency = \"EUR\"")
}

fn with_new_york(original: &str) -> String {
    original.replace(
        "payout_currency = \"USD\"",
        "payout_currency = \"USD\"\ntimezone = \"America/New_York\"",
    )
}

/// QA30-B L1: the program currency (its bases') changed after finalising.
fn with_program_in_eur(original: &str) -> String {
    original.replace("currency = \"USD\"\nclaims", "currency = \"EUR\"\nclaims")
}

fn without_awin(original: &str) -> String {
    original.replace(
        "claims = [\"impact\", \"everflow\", \"awin\"]",
        "claims = [\"impact\", \"everflow\"]",
    )
}

/// Each settled change is an error of `config check`, located at its key,
/// saying what to put back; all of them in one run, with the plugins'
/// errors (the second round); the config as it was passes.
#[test]
fn config_check_reports_each_change_a_finalised_period_settled() {
    let (dir, config) = setup();
    // A fresh install: no store, nothing settled, nothing created.
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "\nsettled: no store in {} yet: nothing finalised\n",
            dir.path().join("data").display()
        )),
        "{out}"
    );
    assert!(!dir.path().join("data").exists(), "the check made a store");

    finalise_august(dir.path(), &config);
    let original = std::fs::read_to_string(&config).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("\nsettled: no change to what finalised statements settled (store in "),
        "{out}"
    );

    let refused = |changed: &str, want: &[&str]| {
        std::fs::write(&config, changed).unwrap();
        let (code, out, err) = check(&config);
        assert_eq!(code, 1, "{out}{err}");
        for w in want {
            assert!(err.contains(w), "{w} missing from:\n{err}");
        }
        assert!(
            err.contains("reckon.toml: 1 error(s); nothing was started"),
            "{err}"
        );
        assert!(!out.contains(": ok ("), "{out}");
    };
    refused(&with_eur(&original), &[CURRENCY, CURRENCY_FIX]);
    refused(&with_new_york(&original), &[TIMEZONE, TIMEZONE_FIX]);
    refused(
        &with_program_in_eur(&original),
        &[PROGRAM_CURRENCY, PROGRAM_CURRENCY_FIX],
    );
    refused(
        &without_awin(&original),
        &[
            AWIN,
            AWIN_FIX,
            "`enabled = false` on its [[connectors]] entry",
        ],
    );

    // All at once, and with an error of the plugins' round (a secret).
    std::fs::write(&config, without_awin(&with_eur(&with_new_york(&original)))).unwrap();
    let out = Command::new(reckon_tests::reckon_bin())
        .args(["config", "check", "--config"])
        .arg(&config)
        .env_remove("SETTLED_TEST_KEY")
        .env_remove("RECKON_CONFIG")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in [
        "`connectors[0].settings.api_key`: secret of connector `impact` setting `api_key` not resolvable",
        "program `shop-us`: the payout currency is EUR",
        "program `shop-us`: the timezone is America/New_York",
        AWIN,
    ] {
        assert!(err.contains(w), "{w} missing from:\n{err}");
    }
    // Three connectors' secrets, three settled changes.
    assert!(
        err.contains("reckon.toml: 6 error(s); nothing was started"),
        "{err}"
    );

    // The config as it was passes again.
    std::fs::write(&config, &original).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
}

/// QA38c C-M2: a manual adjustment whose `refers_to` names a statement or
/// a line that a finalised period never issued is an error of `config
/// check` at its key, as the drafts of its period would refuse it (before,
/// only `generate` found it); a reference into a period this store never
/// finalised and never will is a warning; a good reference passes.
#[test]
fn config_check_refuses_a_manual_adjustment_referring_to_what_was_never_issued() {
    let (dir, config) = setup();
    finalise_august(dir.path(), &config);
    let original = std::fs::read_to_string(&config).unwrap();
    let summary = std::fs::read_to_string(
        dir.path()
            .join("out/statements/shop-us/2026-08/summary.csv"),
    )
    .unwrap();
    let payee = (summary.lines().skip(1))
        .map(|l| l.split(',').next().unwrap())
        .find(|p| p.starts_with("awin:"))
        .unwrap()
        .to_owned();
    let with_refs = |refs: &[String]| {
        format!(
            "{original}\n[[programs.commission.manual_adjustments]]\nid = \"fix\"\npartner = {payee:?}\nperiod = \"2026-09\"\namount = \"5.00\"\nreason = \"repriced\"\nrefers_to = {refs:?}\n"
        )
    };
    let good = format!("shop-us/2026-08/{payee}#1");

    for (bad, why) in [
        (
            "shop-us/2026-08/awin:nobody#1".to_owned(),
            "names no finalised statement: period 2026-08 was finalised without a statement of `awin:nobody`",
        ),
        (
            format!("shop-us/2026-08/{payee}#9999"),
            "names no line: the finalised statement shop-us/2026-08/",
        ),
    ] {
        std::fs::write(&config, with_refs(&[good.clone(), bad.clone()])).unwrap();
        let (code, out, err) = check(&config);
        assert_eq!(code, 1, "{out}{err}");
        for w in [
            &format!("`programs[0].commission.manual_adjustments[0].refers_to`: program `shop-us`, manual_adjustments[0].refers_to (id `fix`): refers_to[1] {bad:?} {why}"),
            "reckon.toml: 1 error(s); nothing was started",
        ] {
            assert!(err.contains(w), "{w} missing from:\n{err}");
        }
    }

    // QA41 A-L3: every bad reference is an error of the one run, each at
    // its adjustment's key and line (the first of each period was, so
    // three took three runs to find).
    let bad = [
        format!("shop-us/2026-08/{payee}#9999"),
        "shop-us/2026-08/awin:nobody".to_owned(),
        format!("shop-us/2026-08/{payee}#9998"),
    ];
    let mut three = original.clone();
    for (k, r) in bad.iter().enumerate() {
        three.push_str(&format!(
            "\n[[programs.commission.manual_adjustments]]\nid = \"fix-{k}\"\npartner = {payee:?}\nperiod = \"2026-09\"\namount = \"5.00\"\nreason = \"repriced\"\nrefers_to = [{good:?}, {r:?}]\n"
        ));
    }
    std::fs::write(&config, &three).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("reckon.toml: 3 error(s); nothing was started"),
        "{err}"
    );
    for (k, r) in bad.iter().enumerate() {
        let line = 1 + three
            .lines()
            .position(|l| l.starts_with("refers_to = ") && l.contains(r.as_str()))
            .unwrap();
        let w = format!(
            "reckon.toml:{line}:13: `programs[0].commission.manual_adjustments[{k}].refers_to`: program `shop-us`, manual_adjustments[{k}].refers_to (id `fix-{k}`): refers_to[1] {r:?} names no"
        );
        assert!(err.contains(&w), "{w} missing from:\n{err}");
    }

    // July was never finalised and never will be (August is): a warning.
    std::fs::write(
        &config,
        with_refs(&[good.clone(), format!("shop-us/2026-07/{payee}#1")]),
    )
    .unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: manual adjustment `fix` of program `shop-us`")
            && err.contains("names period 2026-07, which this store never finalised and never will (it starts before 2026-08, which is finalised)"),
        "{err}"
    );

    std::fs::write(&config, with_refs(&[good])).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("refers_to"), "{err}");
}

/// `reckon run` on `config` (its log in `run.log` beside it), once its
/// command socket is ready.
fn start_daemon(config: &Path) -> RunningDaemon {
    let mut command = reckon_tests::run_command(config);
    command.env("SETTLED_TEST_KEY", "k");
    let mut d = RunningDaemon::spawn(&mut command, config.with_file_name("run.log"));
    d.wait_for_log(&["daemon started", "command socket ready"]);
    d
}

/// With `reckon run` holding the store, the daemon runs the settled checks
/// over its store for `config check` (the rest of the check runs where it
/// is typed): the same errors and exit status as with the daemon stopped.
#[test]
fn config_check_has_the_daemon_holding_the_store_run_the_settled_checks() {
    let (dir, config) = setup();
    finalise_august(dir.path(), &config);
    let original = std::fs::read_to_string(&config).unwrap();
    let daemon = start_daemon(&config);

    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("\nsettled: no change to what finalised statements settled (store in ")
            && out.contains(", checked by the running daemon)\n"),
        "{out}"
    );

    for (changed, want) in [
        (with_eur(&original), [CURRENCY, CURRENCY_FIX]),
        (with_new_york(&original), [TIMEZONE, TIMEZONE_FIX]),
        (without_awin(&original), [AWIN, AWIN_FIX]),
    ] {
        std::fs::write(&config, changed).unwrap();
        let (code, out, err) = check(&config);
        assert_eq!(code, 1, "{out}{err}");
        for w in want {
            assert!(err.contains(w), "{w} missing from:\n{err}");
        }
        assert!(
            err.contains("reckon.toml: 1 error(s); nothing was started"),
            "{err}"
        );
    }
    std::fs::write(&config, &original).unwrap();
    let log = daemon.stop();
    assert!(
        log.contains("running a command for a client") && log.contains("config settled"),
        "{log}"
    );
}

/// Finance QA13 F4: with finalised statements in `output_dir` that the
/// store did not issue (a store restored from an older backup), `generate`
/// reconciled the program (writing decisions) before it refused, and
/// `config check` said nothing settled had changed. Now the refusal comes
/// before anything is written, and `config check` reports it.
#[test]
fn a_store_older_than_the_finalised_statements_is_refused_before_anything_is_written() {
    let (dir, config) = setup();
    // The "backup": a store with the month's data but no statements yet.
    let backup = dir.path().join("backup");
    reckon_tests::store_august(&backup);
    finalise_august(dir.path(), &config);
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    std::fs::rename(&backup, dir.path().join("data")).unwrap();

    let out = reckon(
        &config,
        &[
            "statements",
            "generate",
            "--program",
            "shop-us",
            "--period",
            "2026-09",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("holds finalised statements that this store did not issue: 2026-08"),
        "{stderr}"
    );
    assert!(!stdout.contains("reconciled shop-us first"), "{stdout}");
    let store = Store::open(&dir.path().join("data")).unwrap();
    assert!(
        reckon::reconcile::incremental::stored_state(
            &reckon::reconcile::backend::StoreBackend::new(&store).unwrap(),
            "shop-us"
        )
        .unwrap()
        .is_none(),
        "no reconcile run was recorded"
    );
    drop(store);

    let (code, out, err) = check(&config);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("holds finalised statements that this store did not issue"),
        "{out}{err}"
    );
}
