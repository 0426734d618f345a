//! `reckon statements generate|finalize|show|verify` through the real binary
//! and config file. Decisions come from the reconcile engine's store (empty
//! here unless reconciliation has run), so this checks the wiring, exit
//! codes, messages and the on-disk layout; the figures are covered by
//! `payout_golden` and `payout_lifecycle`.

use std::process::Command;

fn reckon(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run reckon")
}

/// `reckon statements generate --program shop --period <period>`.
fn generate(config: &std::path::Path, period: &str) -> std::process::Output {
    reckon(
        config,
        &[
            "statements",
            "generate",
            "--program",
            "shop",
            "--period",
            period,
        ],
    )
}

use reckon_tests::PAYOUT_CONFIG as CONFIG;

#[test]
fn statements_commands_generate_finalize_show_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("reckon.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let period = ["--program", "shop", "--period", "2026-10"];

    let out = reckon(
        &config,
        &[&["statements", "generate"][..], &period].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("shop 2026-10: draft version 1"), "{stdout}");
    assert!(
        stdout.contains("total payable 0.00 EUR, carried out 0.00 EUR"),
        "{stdout}"
    );
    let dir = tmp.path().join("out/statements/shop/2026-10");
    assert!(dir.join("summary.csv").exists());

    let out = reckon(
        &config,
        &[&["statements", "finalize"][..], &period].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("finalised version 2"));
    // A draft was generated (version 1): no note about a missing draft.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("no draft"));

    // An earlier period is refused before the program is reconciled
    // (QA21: it reconciled first, and said so after the error).
    let out = generate(&config, "2026-09");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("period 2026-09 starts before finalised period 2026-10"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("reconciled"), "{stdout}");

    let out = reckon(&config, &[&["statements", "show"][..], &period].concat());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("finalised (version 2)"));
    // A week of a monthly program before the finalised month: the id's
    // error, not "show 2026-10 instead" (QA25 N3).
    let out = reckon(
        &config,
        &[
            "statements",
            "show",
            "--program",
            "shop",
            "--period",
            "2026-W05",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not a monthly period"),
        "{err}"
    );

    let out = reckon(&config, &[&["statements", "verify"][..], &period].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // tampering is detected and reported with a failing exit code
    std::fs::write(dir.join("summary.csv"), "partner_id\nforged\n").unwrap();
    let out = reckon(&config, &[&["statements", "verify"][..], &period].concat());
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("MISMATCH summary.csv"), "{stdout}");
    // ... and says what repairs it
    // (moved aside first: `generate` refuses a summary that no longer
    // lists what the store issued, QA28-A F8)
    assert!(
        stdout.contains("/set-aside/2026-10.damaged` (keeps these files aside), then `reckon statements generate --program shop --period 2026-10` writes the finalised files back byte for byte from the store"),
        "{stdout}"
    );
    // Following it restores the files (a truncated copy's summary no
    // longer lists what the store issued: QA28-A F8).
    let summary = std::fs::read(dir.join("summary.csv")).unwrap();
    let advice = stdout
        .lines()
        .find(|l| l.contains("mkdir -p"))
        .unwrap()
        .split('`')
        .nth(1)
        .unwrap()
        .to_owned();
    let ran = std::process::Command::new("sh")
        .arg("-c")
        .arg(&advice)
        .current_dir(tmp.path())
        .status()
        .unwrap();
    assert!(ran.success(), "{advice}");
    assert!(!dir.exists());
    let out = reckon(
        &config,
        &[&["statements", "generate"][..], &period].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = reckon(&config, &[&["statements", "verify"][..], &period].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_ne!(std::fs::read(dir.join("summary.csv")).unwrap(), summary);

    // regenerating a finalised period restores the file
    let out = reckon(
        &config,
        &[&["statements", "generate"][..], &period].concat(),
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already finalised"));
    let out = reckon(&config, &[&["statements", "verify"][..], &period].concat());
    assert!(out.status.success());
}

#[test]
fn finalize_refuses_a_period_not_begun_and_needs_early_for_the_running_one() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("reckon.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let finalize = |period: &str, extra: &[&str]| {
        let args = [
            &[
                "statements",
                "finalize",
                "--program",
                "shop",
                "--period",
                period,
            ][..],
            extra,
        ]
        .concat();
        reckon(&config, &args)
    };
    // A year typo must not close every period before it for good.
    let out = finalize("2999-01", &["--early"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("period 2999-01 starts on 2999-01-01 (Europe/Berlin), after today"),
        "{err}"
    );
    assert!(!tmp.path().join("out/statements/shop/2999-01").exists());
    // Nor may drafts of it be generated: they would hold every unpaid claim.
    let out = generate(&config, "2999-01");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("period 2999-01 starts on 2999-01-01"), "{err}");
    assert!(!tmp.path().join("out/statements/shop/2999-01").exists());
    // A malformed period is refused before anything is reconciled.
    let out = generate(&config, "2026-9");
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("reconciled"));

    // The month running now (in the program's timezone) needs --early.
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Berlin);
    let month = now.format("%Y-%m").to_string();
    let out = finalize(&month, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("period {month} runs until")), "{err}");
    assert!(err.contains("--early"), "{err}");
    let out = finalize(&month, &["--early"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("finalised version 1"));
    // No draft was ever generated for it: finalize says so (QA, new user),
    // and still succeeds.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("warning: no draft of {month} was generated for review: these statements were finalised straight from the current data (`reckon statements generate --program shop --period {month}` writes a draft to review first)")),
        "{err}"
    );
    // Finalised, it may be asked again (a no-op) without --early.
    let out = finalize(&month, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("already finalised"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("no draft"));
}

#[test]
fn statements_errors_name_what_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("reckon.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = reckon(
        &config,
        &[
            "statements",
            "generate",
            "--program",
            "nope",
            "--period",
            "2026-11",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no program `nope` in [[programs]]") && err.contains("(configured: `shop`)"),
        "{err}"
    );
    // A typo gets the did-you-mean connector and source ids get (QA).
    let out = reckon(
        &config,
        &[
            "statements",
            "generate",
            "--program",
            "shpo",
            "--period",
            "2026-11",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no program `shpo` in [[programs]]")
            && err.contains("; did you mean `shop`? (configured: `shop`)"),
        "{err}"
    );
    let out = reckon(
        &config,
        &[
            "statements",
            "generate",
            "--program",
            "shop",
            "--period",
            "2026/11",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM"));
    // A store, with another period's statements: 2026-10 has none.
    assert!(generate(&config, "2026-09").status.success());
    let out = reckon(
        &config,
        &[
            "statements",
            "verify",
            "--program",
            "shop",
            "--period",
            "2026-10",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `reckon statements generate"));
    // An id of another period kind, never recorded: `generate`'s error,
    // not advice to run it (QA25 N3).
    for cmd in ["show", "verify"] {
        let out = reckon(
            &config,
            &[
                "statements",
                cmd,
                "--program",
                "shop",
                "--period",
                "2026-W05",
            ],
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a monthly period") && !err.contains("first"),
            "{cmd}: {err}"
        );
    }
}

/// QA30-C L3/L4: a period that is no period (`2026-13`) was exit 1 from
/// `statements` (2 from `kpi` and `reconcile report`), and any year was
/// taken: `finalize --period 0001-01` was recorded for good. Both are usage
/// errors (2) now, from every statements command, before the config or
/// the store is read; a period of another kind than the program's is still
/// the command's error (1), which knows the kind.
#[test]
fn a_period_that_is_no_period_or_before_1970_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("reckon.toml");
    std::fs::write(&config, CONFIG).unwrap();
    for cmd in ["generate", "finalize", "show", "verify"] {
        for (period, says) in [
            ("2026-13", "period `2026-13`: there is no month 13"),
            ("2026-00-H1", "period `2026-00-H1`: there is no month 00"),
            ("2026-W54", "2026 has no ISO week 54"),
            (
                "0001-01",
                "period `0001-01`: years before 1970 are not accepted",
            ),
            (
                "1969-12",
                "period `1969-12`: years before 1970 are not accepted",
            ),
            (
                "1969-W52",
                "period `1969-W52`: years before 1970 are not accepted",
            ),
            ("2026/11", "`2026/11` is not a period: write YYYY-MM"),
        ] {
            let out = reckon(
                &config,
                &["statements", cmd, "--program", "shop", "--period", period],
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {period}: {err}");
            assert!(
                err.contains(&format!("invalid value '{period}' for '--period <PERIOD>'"))
                    && err.contains(says),
                "{cmd} {period}: {err}"
            );
        }
    }
    // Nothing was read or written: no store, no statements.
    assert!(!tmp.path().join("data").exists());
    assert!(!tmp.path().join("out").exists());
    // The first years accepted.
    let out = generate(&config, "1970-01");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = reckon(
        &config,
        &[
            "statements",
            "generate",
            "--program",
            "shop",
            "--period",
            "2026-W05",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a monthly period"), "{err}");
}

#[test]
fn an_unwritable_output_directory_is_named_once_with_the_os_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("reckon.toml");
    std::fs::write(&config, CONFIG).unwrap();
    // `out/statements` is a file, so no statement directory can be made
    // under it. (`out` itself a file is refused by the config check.)
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    std::fs::write(tmp.path().join("out/statements"), "not a directory\n").unwrap();
    let out = generate(&config, "2026-10");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("out/statements"), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

/// QA (new user F12, robustness F7): the commands that only read opened a
/// mistyped data_dir as a new empty store, then reported "nothing" with
/// exit 0 (`statements verify` even advised `generate`). Like `kpi`, they
/// now name the directory and create nothing.
#[test]
fn reading_commands_on_a_data_dir_without_a_store_say_so_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("reckon.toml");
    std::fs::write(
        &config,
        CONFIG.replace("data_dir = \"data\"", "data_dir = \"dta\""),
    )
    .unwrap();
    let period = ["--program", "shop", "--period", "2026-10"];
    for args in [
        &["records", "export", "--kind", "orders"][..],
        &[
            "records", "history", "--kind", "orders", "--source", "shop", "--key", "A-1",
        ],
        &[&["reconcile", "report"][..], &period].concat(),
        &[&["statements", "show"][..], &period].concat(),
        &[&["statements", "verify"][..], &period].concat(),
    ] {
        let out = reckon(&config, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("no Reckon store in"), "{args:?}: {err}");
        assert!(
            !tmp.path().join("dta").exists(),
            "{args:?} created the data dir"
        );
    }
}
