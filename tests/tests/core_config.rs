//! `reckon config check` end to end: every broken fixture in `config/broken/`
//! gives its one clear message with file and line (snapshots), and the
//! shipped example config passes.

mod core_support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `reckon config check` on a fixture from the workspace root; returns
/// (exit code, stderr).
fn check_fixture(name: &str) -> (i32, String) {
    let out = Command::new(reckon_tests::reckon_bin())
        .current_dir(workspace())
        .args([
            "config",
            "check",
            "--config",
            &format!("config/broken/{name}.toml"),
        ])
        .env_remove("RECKON_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Copies a fixture next to an installed example plugin and checks it there
/// (for the errors found only once the plugin is loaded).
fn check_fixture_with_plugins(name: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example"]);
    let text =
        std::fs::read_to_string(workspace().join(format!("config/broken/{name}.toml"))).unwrap();
    std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    let mut cmd = Command::new(reckon_tests::reckon_bin());
    cmd.current_dir(dir.path())
        .args(["config", "check", "--config", &format!("{name}.toml")])
        .env_remove("RECKON_CONFIG")
        .env_remove("RECKON_TEST_NEVER_SET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_toml() {
    let (code, err) = check_fixture("malformed");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_key_suggests_nearest() {
    let (code, err) = check_fixture("unknown_key");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn wrong_type() {
    let (code, err) = check_fixture("wrong_type");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn bad_cron() {
    let (code, err) = check_fixture("bad_cron");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

/// Ops QA13 OPS-2: `*/2 * * * * *` (a crontab line with one `*` too many,
/// read seconds first) passed `config check`, and the daemon then started
/// a full sync every 2 seconds.
#[test]
fn a_schedule_firing_more_than_once_a_minute_is_refused() {
    let (code, err) =
        check_fixture_with_plugins("sub_minute_schedule", &[("EXAMPLE_API_KEY", "k")]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("sub_minute_schedule.toml:7:12: `connectors[0].schedule`: schedule `*/2 * * * * *` of connector `cake` fires 30 times a minute: 6 fields read seconds first")
            && err.contains("e.g. `0 * * * * *`, or, if this is a crontab line with one field too many, the 5 fields `*/2 * * * *`"),
        "{err}"
    );
    assert!(
        err.contains("schedule `* * * * * *` of connector `everysecond` fires 60 times a minute"),
        "{err}"
    );
    assert!(!err.contains("connector `fine`"), "{err}");
}

#[test]
fn bad_fx_rates() {
    let (code, err) = check_fixture("bad_fx");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn connectors_named_where_their_records_do_not_belong() {
    let (code, err) = check_fixture_with_plugins("wrong_kind", &[("EXAMPLE_API_KEY", "k-1")]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_timezone() {
    let (code, err) = check_fixture("unknown_timezone");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn many_errors_all_reported_at_once() {
    let (code, err) = check_fixture("many_errors");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn missing_secret() {
    let (code, err) = check_fixture_with_plugins("missing_secret", &[]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn literal_secret() {
    let (code, err) = check_fixture_with_plugins("literal_secret", &[]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn plugin_not_in_plugin_dir() {
    let (code, err) = check_fixture_with_plugins("plugin_not_found", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("plugin_not_found.toml:7:10: `connectors[0].plugin`: plugin `exampel` could not be loaded"), "{err}");
}

#[test]
fn shipped_example_config_passes_and_prints_three_fires() {
    // config/reckon.toml names production paths; check it with the plugin
    // directory pointed at the test's installed plugins.
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example"]);
    let text = std::fs::read_to_string(workspace().join("config/reckon.toml")).unwrap();
    // Its data and output directories too: `config check` refuses
    // directories this user cannot write (or create).
    let text = text
        .replace(
            "plugin_dir = \"/usr/lib/reckon/plugins\"",
            "plugin_dir = \"plugins\"",
        )
        .replace("data_dir = \"/var/lib/reckon\"", "data_dir = \"data\"")
        .replace(
            "output_dir = \"/var/lib/reckon/out\"",
            "output_dir = \"out\"",
        );
    let cfg = dir.path().join("reckon.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(reckon_tests::reckon_bin())
        .args(["config", "check", "--config"])
        .arg(&cfg)
        .env("EXAMPLENET_API_KEY", "k")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("examplenet (plugin example"), "{stdout}");
    assert_eq!(stdout.matches("  next: ").count(), 3, "{stdout}");
    // America/New_York fires at 15 minutes past every 6th hour, local time.
    assert!(stdout.contains(":15:00 E"), "{stdout}");
}

/// Every shipped config in `config/` passes `reckon config check`, with
/// production paths pointed at a test directory: `plugin_dir` at all built
/// plugin libraries, absolute `data_dir` and `output_dir` at the test's,
/// `file:` secrets at files created here, and every `env:` secret set,
/// file-drop directories at one created here. (Needs `cargo build
/// --workspace` for the plugins.)
#[test]
fn every_shipped_config_passes_config_check() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(workspace().join("config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        for lib in std::fs::read_dir(reckon_tests::profile_dir()).unwrap() {
            let lib = lib.unwrap().path();
            let name = lib.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(&format!("{}reckon_plugin_", std::env::consts::DLL_PREFIX))
                && name.ends_with(std::env::consts::DLL_SUFFIX)
            {
                std::fs::copy(&lib, plugins.join(&name)).unwrap();
            }
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        let mut envs = Vec::new();
        for line in text.lines() {
            let mut line = line.to_owned();
            if line.trim_start().starts_with("plugin_dir") {
                line = "plugin_dir = \"plugins\"".into();
            }
            // Production data and output directories (`/var/lib/reckon`)
            // may not be writable here; `config check` refuses those.
            for key in ["data_dir", "output_dir"] {
                if line.trim_start().starts_with(&format!("{key} = \"/")) {
                    line = format!("{key} = \"{key}\"");
                }
            }
            // A file-drop directory must exist: a fresh one next to the copy.
            if line.trim_start().starts_with("directory = \"/") {
                std::fs::create_dir_all(dir.path().join("drop")).unwrap();
                line = "directory = \"drop\"".into();
            }
            if let Some(i) = line.find("\"file:/") {
                let rest = &line[i + 7..];
                let end = rest.find('"').unwrap();
                let file = rest[..end].rsplit('/').next().unwrap().to_owned();
                std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
                std::fs::write(dir.path().join("secrets").join(&file), "test-secret\n").unwrap();
                line = format!("{}\"file:secrets/{file}{}", &line[..i], &rest[end..]);
            }
            let mut rest = line.as_str();
            while let Some(i) = rest.find("env:") {
                let name: String = rest[i + 4..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    envs.push(name);
                }
                rest = &rest[i + 4..];
            }
            out.push_str(&line);
            out.push('\n');
        }
        text = out;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(dir.path().join(&name), text).unwrap();
        let mut cmd = Command::new(reckon_tests::reckon_bin());
        cmd.current_dir(dir.path())
            .args(["config", "check", "--config", &name])
            .env_remove("RECKON_CONFIG");
        for e in &envs {
            cmd.env(e, "test-secret");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "config/{name} fails `reckon config check`:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        checked.push(name);
    }
    assert!(checked.iter().any(|n| n == "reckon.toml"), "{checked:?}");
}

#[test]
fn a_disabled_connector_is_shown_without_next_fires() {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example"]);
    std::fs::write(
        dir.path().join("reckon.toml"),
        "[daemon]\nplugin_dir = \"plugins\"\n\n[[connectors]]\nid = \"examplenet\"\nplugin = \"example\"\nschedule = \"0 6 * * *\"\nenabled = false\n[connectors.settings]\napi_key = { secret = \"env:EXAMPLE_API_KEY\" }\n",
    )
    .unwrap();
    let out = Command::new(reckon_tests::reckon_bin())
        .current_dir(dir.path())
        .args(["config", "check", "--config", "reckon.toml"])
        .env("EXAMPLE_API_KEY", "k-1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("DISABLED") && stdout.contains("never fires while disabled"),
        "{stdout}"
    );
    assert!(!stdout.contains("next:"), "{stdout}");
}

/// Runs `reckon config check --config reckon.toml` in `dir` with `env` set
/// (and nothing else of reckon's); returns (exit code, stdout, stderr).
fn check_in(dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(reckon_tests::reckon_bin());
    cmd.current_dir(dir)
        .args(["config", "check", "--config", "reckon.toml"])
        .env_remove("RECKON_CONFIG")
        .env_remove("META_ACCESS_TOKEN")
        .env_remove("EVERFLOW_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DROP_ORDERS: &str = r#"
[[connectors]]
id = "pos_orders"
plugin = "orders"
schedule = "*/10 * * * *"

[connectors.settings]
mode = "files"
directory = "drop"
default_currency = "EUR"
"#;

/// New-user QA, repro 1: a missing file-drop directory was reported only
/// once every secret resolved (a second run; a literal secret hid it
/// too). Now it comes in the same round as the secret errors.
#[test]
fn a_missing_drop_directory_is_reported_with_the_secret_errors() {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["orders", "meta_ads"]);
    let meta = |token: &str| {
        format!(
            "\n[[connectors]]\nid = \"meta_us\"\nplugin = \"meta_ads\"\nschedule = \"30 6 * * *\"\n\n\
             [connectors.settings]\nad_account_id = \"act_1234567890\"\naccess_token = {token}\n"
        )
    };
    for token in ["{ secret = \"env:META_ACCESS_TOKEN\" }", "\"EAAB-literal\""] {
        let text = format!(
            "[daemon]\nplugin_dir = \"plugins\"\n{DROP_ORDERS}{}",
            meta(token)
        );
        std::fs::write(dir.path().join("reckon.toml"), text).unwrap();
        let (code, _, err) = check_in(dir.path(), &[]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("`connectors[0].settings.directory`: directory drop of connector `pos_orders` cannot be read"),
            "{err}"
        );
        assert!(
            err.contains("`connectors[1].settings.access_token`: "),
            "{err}"
        );
        assert!(
            err.contains("reckon.toml: 2 error(s); nothing was started"),
            "{err}"
        );
    }
}

/// New-user QA, repro 2: four runs for four mistakes. Round 1 now has all
/// of the file's own (a float, a mistyped partner network, a
/// `draft_schedule` that never fires: a float deep in a rule used to drop
/// the whole `[programs.commission]` from the checks), round 2 every error
/// needing the plugins (a secret, a connector of the wrong kind).
#[test]
fn the_file_and_then_the_plugins_each_report_every_error_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(
        &dir.path().join("plugins"),
        &["orders", "meta_ads", "everflow"],
    );
    std::fs::create_dir(dir.path().join("drop")).unwrap();
    let text = format!(
        r#"[daemon]
plugin_dir = "plugins"
{DROP_ORDERS}
[[connectors]]
id = "everflow"
plugin = "everflow"
schedule = "5 */2 * * *"
[connectors.settings]
api_key = {{ secret = "env:EVERFLOW_API_KEY" }}

[[connectors]]
id = "meta_us"
plugin = "meta_ads"
schedule = "30 6 * * *"
[connectors.settings]
ad_account_id = "act_1234567890"
access_token = {{ secret = "env:META_ACCESS_TOKEN" }}

[[programs]]
id = "acme"
currency = "EUR"
claims = ["everflow", "meta_us"]
orders = ["pos_orders"]

[programs.commission]
payout_currency = "EUR"
draft_schedule = "0 6 31 2 *"

[programs.commission.partner_groups]
vip = ["everflw:201"]

[[programs.commission.rules]]
id = "cps"
kind = "percent"
percent = 7.5
effective_from = "2026-01-01"
"#
    );
    std::fs::write(dir.path().join("reckon.toml"), &text).unwrap();
    // Round 1: every error of the file itself.
    let (code, _, err) = check_in(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "`programs[0].commission.draft_schedule`: schedule `0 6 31 2 *` never fires",
        "`programs[0].commission.partner_groups.vip[0]`: `everflw` is not one of this program's claims connectors",
        "`programs[0].commission.rules[0].percent`: 7.5 is a float",
    ] {
        assert!(err.contains(expected), "{expected} missing from:\n{err}");
    }
    // The float's key is not also "missing".
    assert!(!err.contains("needs `percent`"), "{err}");
    assert!(
        err.contains("reckon.toml: 3 error(s); nothing was started"),
        "{err}"
    );
    // Round 2: the plugins' errors, all of them.
    let fixed = text
        .replace("0 6 31 2 *", "0 6 1 * *")
        .replace("everflw:201", "everflow:201")
        .replace("percent = 7.5", "percent = \"7.5\"");
    std::fs::write(dir.path().join("reckon.toml"), &fixed).unwrap();
    let (code, _, err) = check_in(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "`connectors[1].settings.api_key`: secret of connector `everflow` setting `api_key` not resolvable: environment variable `EVERFLOW_API_KEY` is not set",
        "`connectors[2].settings.access_token`: secret of connector `meta_us` setting `access_token` not resolvable: environment variable `META_ACCESS_TOKEN` is not set",
        "`programs[0].claims[1]`: connector `meta_us` runs plugin `meta_ads`, which produces ad spend, but `claims` takes claims (conversions)",
    ] {
        assert!(err.contains(expected), "{expected} missing from:\n{err}");
    }
    assert!(
        err.contains("reckon.toml: 3 error(s); nothing was started"),
        "{err}"
    );
    // And once those are fixed, nothing is left.
    let fixed = fixed.replace(
        "claims = [\"everflow\", \"meta_us\"]",
        "claims = [\"everflow\"]",
    );
    std::fs::write(dir.path().join("reckon.toml"), &fixed).unwrap();
    let (code, out, err) = check_in(
        dir.path(),
        &[("EVERFLOW_API_KEY", "k"), ("META_ACCESS_TOKEN", "t")],
    );
    assert_eq!(code, 0, "{out}{err}");
}

/// Ops QA: the success report named only connectors. It lists postback
/// endpoints, programs with their draft schedule, and the KPI summaries'
/// schedule too, each with its next fire.
#[test]
fn the_report_lists_postbacks_programs_drafts_and_kpi_summaries() {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
    std::fs::create_dir(dir.path().join("drop")).unwrap();
    std::fs::write(
        dir.path().join("reckon.toml"),
        r#"[daemon]
plugin_dir = "plugins"
timezone = "Europe/Berlin"

[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 6 * * *"
[connectors.settings]
api_key = { secret = "env:EXAMPLE_API_KEY" }

[[connectors]]
id = "othernet"
plugin = "example"
schedule = "0 6 * * *"
enabled = false
[connectors.settings]
api_key = { secret = "env:EXAMPLE_API_KEY" }

[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 7 * * *"
[connectors.settings]
mode = "files"
directory = "drop"

[[connectors]]
id = "shop2"
plugin = "orders"
schedule = "0 7 * * *"
enabled = false
[connectors.settings]
mode = "files"
directory = "drop"

[[postbacks]]
id = "Everflow_S2S"
auth = "token"
secret = { secret = "env:EXAMPLE_API_KEY" }
mirrors = "examplenet"

[[postbacks]]
id = "other_s2s"
auth = "token"
secret = { secret = "env:EXAMPLE_API_KEY" }
mirrors = "othernet"

[[programs]]
id = "northwind"
currency = "EUR"
claims = ["examplenet", "Everflow_S2S", "other_s2s"]
orders = ["shop"]
[programs.commission]
payout_currency = "EUR"
draft_schedule = "0 5 1 * *"

[[programs]]
id = "nocommission"
currency = "EUR"
claims = ["othernet"]
orders = ["shop2"]

[kpi.summaries]
schedule = "30 4 * * *"
"#,
    )
    .unwrap();
    let (code, out, err) = check_in(dir.path(), &[("EXAMPLE_API_KEY", "k")]);
    assert_eq!(code, 0, "{out}{err}");
    for expected in [
        "\npostback Everflow_S2S (/postback/Everflow_S2S, auth token, mirrors examplenet)\n",
        "\nprogram northwind (claims examplenet, Everflow_S2S, other_s2s; orders shop)\n  drafts: schedule `0 5 1 * *` in Europe/Berlin, next: ",
        "\nprogram nocommission (claims othernet; orders shop2)\n  no [programs.commission]: no statements\n",
        "\nkpi summaries (schedule `30 4 * * *` in Europe/Berlin, reporting timezone)\n  next: ",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    // A copy is linked only to the claims of its program (QA28-E F12).
    assert!(
        err.contains("warning: program `northwind`: postback `other_s2s` mirrors `othernet`, which is not in its `claims`: its postbacks are judged as claims of their own there; add `othernet` to `claims` to judge them as copies\n"),
        "{err}"
    );
    assert!(!err.contains("postback `Everflow_S2S` mirrors"), "{err}");
    // A guessable postback secret is warned about, by reference (security
    // QA31-C F5); the value never shows.
    assert!(
        err.contains("warning: postback `other_s2s`: secret `env:EXAMPLE_API_KEY` is 1 character, fewer than 16: a sender could guess it"),
        "{err}"
    );
    assert_eq!(err.matches("fewer than 16").count(), 2, "{err}");
    // The draft fires on the 1st at 05:00 Berlin time, summaries at 04:30.
    assert!(out.contains("-01 05:00:00 CE"), "{out}");
    assert!(out.contains(" 04:30:00 CE"), "{out}");
}

/// New-user QA: a command run where there is no `reckon.toml` said only
/// that it cannot be read; it now says how to name one, and `sync` and
/// `run` start the line with `error:` as every other command does.
#[test]
fn a_missing_config_file_says_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["sync", "examplenet"][..],
        &["run"][..],
        &["kpi", "--period", "2026-11"][..],
        &[
            "statements",
            "show",
            "--program",
            "acme",
            "--period",
            "2026-11",
        ][..],
    ] {
        let out = Command::new(reckon_tests::reckon_bin())
            .current_dir(dir.path())
            .args(args)
            .env_remove("RECKON_CONFIG")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: reckon.toml: cannot read the config file: No such file or directory")
                && err.contains("; name the config file with --config FILE or the environment variable RECKON_CONFIG"),
            "{args:?}: {err}"
        );
    }
    // A file someone named is not explained again: its path is to check.
    for named in [
        Command::new(reckon_tests::reckon_bin())
            .current_dir(dir.path())
            .args(["--config", "elsewhere.toml", "sync", "examplenet"])
            .env_remove("RECKON_CONFIG")
            .output()
            .unwrap(),
        Command::new(reckon_tests::reckon_bin())
            .current_dir(dir.path())
            .args(["sync", "examplenet"])
            .env("RECKON_CONFIG", "elsewhere.toml")
            .output()
            .unwrap(),
    ] {
        let err = String::from_utf8_lossy(&named.stderr);
        assert_eq!(named.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("error: elsewhere.toml: cannot read the config file")
                && err.contains("; check the path given with --config or the environment variable RECKON_CONFIG")
                && !err.contains("name the config file"),
            "{err}"
        );
    }
}

/// QA20 R20-3: `config check` of an empty file said `ok (0 connector(s)`
/// and nothing else. It still passes (a config may start empty), with a
/// warning that nothing will be synced.
#[test]
fn a_config_without_connectors_passes_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("reckon.toml"), "").unwrap();
    let (code, out, err) = check_in(dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok (0 connector(s)"), "{out}");
    assert!(
        err.contains("warning: reckon.toml has no [[connectors]]: nothing will be synced (an empty or truncated file?)"),
        "{err}"
    );
}

/// QA20 R20-8: a commission rule behind an earlier rule of the same scope
/// (first match wins) never prices a claim, and `config check` said `ok`.
/// It passes with a warning naming both rules; a rule that is reached
/// (another event type) gets none.
#[test]
fn a_commission_rule_an_earlier_one_hides_is_a_warning_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
    std::fs::create_dir(dir.path().join("drop")).unwrap();
    std::fs::write(
        dir.path().join("reckon.toml"),
        r#"[daemon]
plugin_dir = "plugins"

[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 6 * * *"
[connectors.settings]
api_key = { secret = "env:EXAMPLE_API_KEY" }

[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 7 * * *"
[connectors.settings]
mode = "files"
directory = "drop"

[[programs]]
id = "northwind"
currency = "USD"
claims = ["examplenet"]
orders = ["shop"]
[programs.commission]
payout_currency = "USD"

[[programs.commission.rules]]
id = "cps-10"
effective_from = "2020-01-01"
kind = "percent"
percent = "10"

[[programs.commission.rules]]
id = "cps-5"
effective_from = "2020-01-01"
kind = "percent"
percent = "5"

[[programs.commission.rules]]
id = "leads"
effective_from = "2019-01-01"
event_types = ["lead"]
kind = "flat"
amount = "2.00"
"#,
    )
    .unwrap();
    let (code, out, err) = check_in(dir.path(), &[("EXAMPLE_API_KEY", "k")]);
    assert_eq!(code, 0, "{out}{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings,
        ["warning: program `northwind`: commission rule `cps-5` (rules[1]) never prices a claim: rule `cps-10` (rules[0]) comes before it and matches every claim it would (in force on each of its days, for its event types and partners), and the first rule that matches prices the claim; move `cps-5` above `cps-10`, narrow `cps-10`, or delete `cps-5`"],
        "{err}"
    );
}

/// QA35a M2: with `RECKON_CONFIG=` (set, empty: an env file's leftover),
/// an explicit `--config FILE` failed with clap's "a value is required for
/// '--config'", blaming the flag the user did type. The flag wins.
#[test]
fn an_explicit_config_wins_over_an_empty_reckon_config() {
    let fixture = "config/broken/malformed.toml";
    let forms: [Vec<String>; 3] = [
        vec![
            "--config".into(),
            fixture.into(),
            "config".into(),
            "check".into(),
        ],
        vec![
            format!("--config={fixture}"),
            "config".into(),
            "check".into(),
        ],
        vec![
            "config".into(),
            "check".into(),
            "--config".into(),
            fixture.into(),
        ],
    ];
    for args in &forms {
        for empty in ["", " "] {
            let out = Command::new(reckon_tests::reckon_bin())
                .current_dir(workspace())
                .args(args)
                .env("RECKON_CONFIG", empty)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?} {empty:?}: {stderr}");
            assert!(stderr.contains("malformed.toml"), "{args:?}: {stderr}");
        }
    }
}

/// QA37 R-L5: an empty `RECKON_CONFIG` is refused only by commands that
/// read the config; `--version`, `demo --help` and `status --addr` never
/// read it and ran into the refusal all the same.
#[test]
fn an_empty_reckon_config_blocks_only_commands_that_read_the_config() {
    let run = |args: &[&str]| {
        Command::new(reckon_tests::reckon_bin())
            .current_dir(workspace())
            .args(args)
            .env("RECKON_CONFIG", "")
            .output()
            .unwrap()
    };
    for args in [&["--version"][..], &["demo", "--help"]] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No daemon listens there: the answer is about the address, not the
    // variable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&["status", "--addr", &format!("127.0.0.1:{port}")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("RECKON_CONFIG"), "{stderr}");
    for args in [
        &["status"][..],
        &["records", "export", "--kind", "orders"],
        &["config", "check"],
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("RECKON_CONFIG is set but empty"),
            "{args:?}: {stderr}"
        );
    }
}
