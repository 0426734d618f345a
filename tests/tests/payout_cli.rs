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

const CONFIG: &str = r#"
[daemon]
data_dir = "data"
output_dir = "out"
timezone = "Europe/Berlin"

[[programs]]
id = "shop"
currency = "EUR"
claims = []
orders = []

[programs.commission]
payout_currency = "EUR"
minimum_payout = "25.00"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#;

#[test]
fn statements_commands_generate_finalize_show_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("reckon.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let period = ["--program", "shop", "--period", "2026-11"];

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
    assert!(stdout.contains("shop 2026-11: draft version 1"), "{stdout}");
    let dir = tmp.path().join("out/statements/shop/2026-11");
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

    let out = reckon(&config, &[&["statements", "show"][..], &period].concat());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("finalised (version 2)"));

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
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH summary.csv"));

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
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [[programs]] entry with id `nope`"));
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
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM"));
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
}
