use super::*;
use crate::plugins::{LoadError, Plugin};
use plugin_api::Connector;
use std::path::Path;
use std::sync::Arc;

fn example_loader(dir: &Path, id: &str, _sha: Option<&str>) -> Result<Arc<Plugin>, LoadError> {
    if id == "example" {
        Ok(Arc::new(Plugin::from_manifest(
            dir.join("libreckon_plugin_example.so"),
            reckon_plugin_example::Example::manifest(),
        )))
    } else {
        Err(LoadError::Refused {
            path: dir.display().to_string(),
            reason: format!("no plugin with id `{id}` (found: example)"),
        })
    }
}

fn secrets(r: &SecretRef) -> Result<String, String> {
    match r {
        SecretRef::Env(n) if n == "EXAMPLE_API_KEY" => Ok("k3y".into()),
        SecretRef::Env(n) if n == "RECKON_TEST_EMPTY" => Ok(String::new()),
        SecretRef::Env(n) => Err(format!("environment variable `{n}` is not set")),
        SecretRef::File(p) => Err(format!("cannot read secret file {}", p.display())),
    }
}

/// Parse + resolve a fixture and render every error as `reckon config check` does.
fn check(name: &str) -> String {
    let path = format!("config/broken/{name}.toml");
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(&path))
            .unwrap();
    match parse(&text, &path) {
        Err(e) => e.to_string(),
        Ok(cfg) => match resolve(&cfg, &example_loader, &secrets) {
            Err(e) => ConfigErrors(e).to_string(),
            Ok(_) => "ok".into(),
        },
    }
}

#[test]
fn broken_malformed_toml() {
    insta::assert_snapshot!(check("malformed"));
}
#[test]
fn broken_unknown_key() {
    insta::assert_snapshot!(check("unknown_key"));
}
#[test]
fn broken_wrong_type() {
    insta::assert_snapshot!(check("wrong_type"));
}
#[test]
fn broken_bad_cron() {
    insta::assert_snapshot!(check("bad_cron"));
}
#[test]
fn broken_bad_fx() {
    insta::assert_snapshot!(check("bad_fx"));
}
#[test]
fn broken_wrong_kind() {
    insta::assert_snapshot!(check("wrong_kind"));
}
#[test]
fn broken_unknown_timezone() {
    insta::assert_snapshot!(check("unknown_timezone"));
}
#[test]
fn broken_missing_secret() {
    insta::assert_snapshot!(check("missing_secret"));
}
#[test]
fn broken_plugin_not_found() {
    insta::assert_snapshot!(check("plugin_not_found"));
}
#[test]
fn broken_literal_secret() {
    insta::assert_snapshot!(check("literal_secret"));
}
#[test]
fn broken_many_errors_reported_at_once() {
    insta::assert_snapshot!(check("many_errors"));
}

#[test]
fn broken_programs_are_config_errors() {
    insta::assert_snapshot!(check("programs"));
}
#[test]
fn broken_commission_problems_reported_at_once() {
    insta::assert_snapshot!(check("commission"));
}

/// A `network:` prefix of a commission partner entry used to pass unchecked,
/// so a typo silently disabled the rule, bonus or override; a prefix that
/// is one of the program's claims (a postback id too) or a bare id passes.
#[test]
fn partner_entries_name_a_network_of_the_programs_claims() {
    let text = r#"
[[connectors]]
id = "impact"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 * * * *"

[[postbacks]]
id = "Everflow_S2S"
auth = "token"
secret = { secret = "env:EXAMPLE_API_KEY" }

[[programs]]
id = "p"
currency = "USD"
claims = ["impact", "Everflow_S2S"]
orders = ["shop"]

[programs.commission]
payout_currency = "USD"

[[programs.commission.rules]]
id = "r"
effective_from = "2026-01-01"
partners = ["impact:1", "Everflow_S2S:2", "3", "shop:4"]
kind = "percent"
percent = "10"

[[programs.commission.bonuses]]
id = "b"
effective_from = "2026-01-01"
partners = ["awin:5"]
threshold_volume = "100"
amount = "1"
"#;
    let e = parse(text, "x.toml").unwrap_err().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(
        lines[0].contains("`programs[0].commission.rules[0].partners[3]`: `shop` is not one of this program's claims connectors (`impact`, `Everflow_S2S`), so `shop:4` matches no partner"),
        "{e}"
    );
    assert!(
        lines[1].contains("`programs[0].commission.bonuses[0].partners[0]`: `awin` is not one"),
        "{e}"
    );
}

/// Connectors `shop` (orders) and `net` (claims) and program `p` up to its
/// `[programs.commission]` header, for commission tests.
const SHOP_NET_COMMISSION: &str = r#"
[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "net"
plugin = "example"
schedule = "0 * * * *"

[[programs]]
id = "p"
currency = "USD"
claims = ["net"]
orders = ["shop"]

[programs.commission]
"#;

/// [`SHOP_NET_COMMISSION`] with a 10 % rule, drafts on `draft` and KPI
/// summaries on `kpi`, for the schedule tests.
fn commission_schedules(draft: &str, kpi: &str) -> String {
    format!(
        r#"{SHOP_NET_COMMISSION}payout_currency = "USD"
draft_schedule = "{draft}"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"

[kpi.summaries]
schedule = "{kpi}"
"#
    )
}

/// Finance QA16 L4: `minimum_payout = "300.5"` in JPY was taken silently
/// and shown as 301; a threshold finer than the payout currency is an
/// error naming the currency and a value to write.
#[test]
fn a_threshold_finer_than_the_payout_currency_is_refused() {
    let text = format!(
        r#"{SHOP_NET_COMMISSION}payout_currency = "JPY"
minimum_payout = "300.5"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "8"
cap_per_period = "1000.25"
"#
    );
    let e = parse(&text, "x.toml").unwrap_err().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(
        lines[0].ends_with("300.5 is finer than JPY's minor unit (0 decimals); write e.g. \"301\""),
        "{e}"
    );
    assert!(
        lines[1].ends_with("cap_per_period 1000.25 is finer than JPY's minor unit (0 decimals); write e.g. \"1000\""),
        "{e}"
    );
    // Whole yen, and cents in USD (trailing zeros included), pass.
    let ok = text
        .replace("\"300.5\"", "\"301\"")
        .replace("\"1000.25\"", "\"1000.00\"");
    parse(&ok, "x.toml").unwrap();
    parse(
        &text
            .replace("\"JPY\"", "\"USD\"")
            .replace("\"300.5\"", "\"300.50\""),
        "x.toml",
    )
    .unwrap();
    // QA21 B-F5: a lower-case `jpy` is refused with its fix, and the
    // amounts are checked against JPY in the same round (they were checked
    // only once the code was fixed).
    let e = parse(&text.replace("\"JPY\"", "\"jpy\""), "x.toml")
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(lines[0].contains("use the upper-case code \"JPY\""), "{e}");
    assert!(
        lines[1].ends_with("300.5 is finer than JPY's minor unit (0 decimals); write e.g. \"301\""),
        "{e}"
    );
    assert!(
        lines[2].contains("cap_per_period 1000.25 is finer than JPY's"),
        "{e}"
    );
}

/// QA18 R3: an override's `cap_per_period`, a flat `amount` and a bonus
/// `amount` are payout-currency amounts too; finer ones were rounded
/// silently.
#[test]
fn every_payout_amount_finer_than_the_currency_is_refused() {
    let text = format!(
        r#"{SHOP_NET_COMMISSION}payout_currency = "JPY"

[[programs.commission.rules]]
id = "lead"
effective_from = "2026-01-01"
kind = "flat"
amount = "2.5"

[[programs.commission.overrides]]
id = "ov1"
partner = "net:p1"
rule = "lead"
amount = "3.5"
cap_per_period = "10.25"

[[programs.commission.bonuses]]
id = "b1"
effective_from = "2026-01-01"
threshold_volume = "1000"
amount = "10.5"
"#
    );
    let e = parse(&text, "x.toml").unwrap_err().to_string();
    for want in [
        "`programs[0].commission.rules[0]`: (id `lead`): amount 2.5 is finer than JPY's minor unit (0 decimals); write e.g. \"3\"",
        "`programs[0].commission.overrides[0]`: (id `ov1`): amount 3.5 is finer",
        "`programs[0].commission.overrides[0]`: (id `ov1`): cap_per_period 10.25 is finer than JPY's minor unit (0 decimals); write e.g. \"10\"",
        "`programs[0].commission.bonuses[0]`: (id `b1`): amount 10.5 is finer",
    ] {
        assert!(e.contains(want), "{want}\n{e}");
    }
    let ok = text
        .replace("\"2.5\"", "\"3\"")
        .replace("\"3.5\"", "\"4\"")
        .replace("\"10.25\"", "\"10\"")
        .replace("\"10.5\"", "\"11\"");
    parse(&ok, "x.toml").unwrap();
    // QA20 R20-1: a 28-digit flat amount passed, then its sum panicked.
    let huge = ok.replace("\"3\"", "\"79228162514264337593543950335\"");
    let e = parse(&huge, "x.toml").unwrap_err().to_string();
    assert!(
        e.contains("(id `lead`): amount 79228162514264337593543950335 is not below 1000000000000000, the bound on amounts Reckon handles"),
        "{e}"
    );
}

/// New-user QA16 N5: a rule lacking `effective_from` was reported at the
/// `rules` list, and an override naming another, present rule was then
/// said to name no rule.
#[test]
fn a_rule_lacking_a_field_is_named_and_hides_no_override() {
    let base = &format!(
        r#"{SHOP_NET_COMMISSION}payout_currency = "USD"

[[programs.commission.rules]]
id = "lead-flat"
kind = "flat"
amount = "3"

[[programs.commission.rules]]
id = "cps-default"
effective_from = "2026-01-01"
kind = "percent"
percent = "8"

[[programs.commission.overrides]]
id = "deal"
rule = "cps-default"
partner = "net:31"
effective_from = "2026-10-01"
percent = "12"
"#
    );
    let e = parse(base, "x.toml").unwrap_err().to_string();
    assert_eq!(
        e,
        "x.toml:21:1: `programs[0].commission.rules[0]`: (id `lead-flat`): missing field `effective_from`"
    );
    // With the rules whole, an override naming no rule is reported (as the
    // `broken_commission` snapshot shows too).
    let e = parse(
        &base
            .replace(
                "kind = \"flat\"",
                "effective_from = \"2026-01-01\"\nkind = \"flat\"",
            )
            .replace("rule = \"cps-default\"", "rule = \"cps\""),
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.ends_with("`programs[0].commission.overrides[0]`: (id `deal`): rule `cps` is not defined in rules"), "{e}");
}

/// Ops QA13 OPS-10: a misspelled `[[connector]]` header made the next,
/// correct `[[connectors]]` the parser's error, in two lines; the message is
/// one line and names the header to look at.
#[test]
fn a_table_defined_twice_names_where_it_first_was() {
    let text =
        "[[connector]]\nid = \"a\"\n\n[connectors.settings]\nk = 1\n\n[[connectors]]\nid = \"b\"\n";
    let e = parse(text, "x.toml").unwrap_err().to_string();
    assert_eq!(
        e,
        "x.toml:7:1: malformed TOML: invalid table header: duplicate key `connectors` in document root; \
         `connectors` was first defined by `[connectors.settings]` at line 4, which belongs to \
         `[[connector]]` at line 1: is that header misspelled?"
    );
    let e = parse("[kpi]\n[daemon]\n[kpi]\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("x.toml:3:1: malformed TOML: invalid table header: duplicate key `kpi` in document root; `kpi` was first defined by `[kpi]` at line 1: write `[kpi]` once"), "{e}");
    let e = parse("[[programs]]\nid = \"p\"\n[programs]\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`programs` is a list, each of its entries starts with `[[programs]]`"),
        "{e}"
    );
}

/// Ops QA13 OPS-9: after a duplicate or an invalid connector id, the
/// "no connector" error of a program listed the duplicate twice and
/// suggested the id just refused.
#[test]
fn unknown_connector_lists_ids_once_and_never_suggests_a_refused_one() {
    let text = r#"
[[connectors]]
id = "impact"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "impact"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "Cake"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 * * * *"

[[programs]]
id = "p"
currency = "USD"
claims = ["impact", "cake", "Cake", "example"]
orders = ["shop"]
"#;
    let e = parse(text, "x.toml").unwrap_err().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    // A plugin id for a connector id (new-user QA16 N6); `impact`, given
    // twice, is not offered (QA17 NEW-1).
    assert!(
        lines[3].ends_with(
            "`programs[0].claims[3]`: no connector or postback endpoint with id `example`: `example` is a plugin; write the id of the connector running it: `shop`"
        ),
        "{e}"
    );
    assert!(lines[0].contains("duplicate connector id `impact`"), "{e}");
    assert!(lines[1].contains("invalid connector id `Cake`"), "{e}");
    assert!(
        lines[2].ends_with(
            "`programs[0].claims[1]`: no connector or postback endpoint with id `cake` (configured: `impact`, `shop`); add it or fix the id"
        ),
        "{e}"
    );
}

#[test]
fn broken_unknown_connectors_in_programs_and_kpi() {
    insta::assert_snapshot!(check("unknown_connectors"));
}
#[test]
fn broken_lookback_too_long() {
    insta::assert_snapshot!(check("lookback_too_long"));
}
#[test]
fn broken_empty_secret() {
    insta::assert_snapshot!(check("empty_secret"));
}
#[test]
fn broken_schedule_never_fires() {
    insta::assert_snapshot!(check("schedule_never_fires"));
}

/// Ops QA13 OPS-2: a schedule firing more than once a minute passed, and
/// the daemon started a full sync every 2 seconds. Connectors, a program's
/// `draft_schedule` and `[kpi.summaries] schedule` are each refused, naming
/// the owner, what the fields mean and the fix.
#[test]
fn broken_sub_minute_schedule() {
    let msg = check("sub_minute_schedule");
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 2, "{msg}");
    assert!(
        lines[0].starts_with("config/broken/sub_minute_schedule.toml:7:12: `connectors[0].schedule`: schedule `*/2 * * * * *` of connector `cake` fires 30 times a minute: 6 fields read seconds first (second minute hour day-of-month month day-of-week), and the seconds field `*/2` matches 30 seconds; Reckon fires a schedule at most once a minute. Give the seconds one value, e.g. `0 * * * * *`, or, if this is a crontab line with one field too many, the 5 fields `*/2 * * * *`"),
        "{msg}"
    );
    assert!(
        lines[1].contains("`connectors[1].schedule`: schedule `* * * * * *` of connector `everysecond` fires 60 times a minute"),
        "{msg}"
    );
    let text = commission_schedules("0,30 0 6 * * *", "*/10 6 * * * *");
    let msg = parse(&text, "reckon.toml").unwrap_err().to_string();
    assert!(
        msg.contains("`programs[0].commission.draft_schedule`: schedule `0,30 0 6 * * *` of program `p` fires 2 times a minute"),
        "{msg}"
    );
    assert!(
        msg.contains("`kpi.summaries.schedule`: schedule `*/10 6 * * * *` fires 6 times a minute"),
        "{msg}"
    );
}

#[test]
fn a_postback_endpoint_is_a_claim_source_but_not_an_order_source() {
    let base = r#"
[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 * * * *"

[[postbacks]]
id = "s2s"
auth = "token"
secret = { secret = "env:EXAMPLE_API_KEY" }

[[programs]]
id = "p"
currency = "USD"
"#;
    parse(
        &format!("{base}claims = [\"s2s\"]\norders = [\"shop\"]\n"),
        "x.toml",
    )
    .unwrap();
    let e = parse(
        &format!("{base}claims = [\"shop\"]\norders = [\"s2s\"]\n"),
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`programs[0].orders[0]`: `s2s` is a postback endpoint: postbacks carry claims (conversions), not orders"),
        "{e}"
    );
}

/// QA28-E F12: `[[postbacks]] mirrors` names the API connector whose
/// conversions the endpoint copies; each program that claims the endpoint
/// gets the link (and a fingerprint that says so), others do not.
#[test]
fn a_postback_mirrors_a_connector_of_the_programs_that_claim_it() {
    let text = |mirrors: &str, claims: &str| {
        format!(
            r#"
[[connectors]]
id = "everflow"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "impact"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "shop2"
plugin = "example"
schedule = "0 * * * *"

[[postbacks]]
id = "ef_s2s"
auth = "token"
secret = {{ secret = "env:EXAMPLE_API_KEY" }}
{mirrors}

[[programs]]
id = "p"
currency = "USD"
claims = [{claims}]
orders = ["shop"]

[[programs]]
id = "q"
currency = "USD"
claims = ["impact"]
orders = ["shop2"]
"#
        )
    };
    let plain = parse(&text("", r#""everflow", "ef_s2s""#), "x.toml").unwrap();
    assert!(plain.programs[0].mirrors.is_empty());
    let linked = parse(
        &text(r#"mirrors = "everflow""#, r#""everflow", "ef_s2s""#),
        "x.toml",
    )
    .unwrap();
    let expected: std::collections::BTreeMap<String, String> =
        [("ef_s2s".to_owned(), "everflow".to_owned())].into();
    assert_eq!(linked.programs[0].mirrors, expected);
    assert!(
        linked.programs[1].mirrors.is_empty(),
        "q does not claim ef_s2s"
    );
    // The link changes how claims are judged: the next run is a full one.
    assert_ne!(
        linked.programs[0].fingerprint(),
        plain.programs[0].fingerprint()
    );
    assert_eq!(
        linked.programs[1].fingerprint(),
        plain.programs[1].fingerprint()
    );
    for wrong in ["evreflow", "ef_s2s", "p"] {
        let e = parse(
            &text(&format!("mirrors = \"{wrong}\""), r#""ef_s2s""#),
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!("`postbacks[0].mirrors`: `{wrong}` is not a [[connectors]] id; name the API connector of the same network whose conversions these postbacks copy (configured: `everflow`, `shop`, `impact`, `shop2`)")),
            "{e}"
        );
    }
}

#[test]
fn file_directory_is_relative_to_the_config_file_and_must_exist() {
    let files_loader = |dir: &Path, _: &str, _: Option<&str>| -> Result<Arc<Plugin>, LoadError> {
        let mut m = reckon_plugin_example::Example::manifest();
        m.config_schema["properties"]["directory"] = serde_json::json!({ "type": "string" });
        m.file_capability = Some(plugin_api::protocol::FileCapability {
            directory_setting: "directory".into(),
            suffixes: vec![".csv".into()],
        });
        Ok(Arc::new(Plugin::from_manifest(dir.join("x.so"), m)))
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("drop")).unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let file = root.path().join("etc").join("reckon.toml");
    let cfg_text = |dir: &str| {
        format!(
            "[[connectors]]\nid = \"files\"\nplugin = \"example\"\nschedule = \"0 * * * *\"\n\
             [connectors.settings]\napi_key = {{ secret = \"env:EXAMPLE_API_KEY\" }}\ndirectory = \"{dir}\"\n"
        )
    };
    // Relative to the config file's directory, not to the working directory.
    let cfg = parse(&cfg_text("../drop"), &file.display().to_string()).unwrap();
    let r = resolve(&cfg, &files_loader, &secrets).unwrap_or_else(|e| panic!("{e:?}"));
    let dir = r[0].settings["directory"].as_str().unwrap().to_owned();
    assert_eq!(Path::new(&dir), root.path().join("etc").join("../drop"));
    assert!(resolve::check_file_directories(&cfg, &r).is_empty());
    // A directory that does not exist is a config error at the setting.
    let cfg = parse(&cfg_text("missing"), &file.display().to_string()).unwrap();
    let r = resolve(&cfg, &files_loader, &secrets).unwrap_or_else(|e| panic!("{e:?}"));
    let e = ConfigErrors(resolve::check_file_directories(&cfg, &r)).to_string();
    assert!(
        e.contains("`connectors[0].settings.directory`: directory ")
            && e.contains("etc/missing of connector `files` cannot be read"),
        "{e}"
    );
}

#[test]
fn every_broken_fixture_has_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/broken");
    let src = include_str!("tests.rs");
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().path();
        let stem = name.file_stem().unwrap().to_str().unwrap().to_owned();
        assert!(
            src.contains(&format!("check(\"{stem}\")")),
            "config/broken/{stem}.toml has no snapshot test"
        );
    }
}

#[test]
fn valid_config_resolves_secrets_out_of_settings() {
    let text = r#"
[daemon]
data_dir = "var/data"
timezone = "Europe/Berlin"

[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 */6 * * *"
rate_limit = { requests = 5, per_secs = 1 }

[connectors.settings]
api_key = { secret = "env:EXAMPLE_API_KEY" }
page_size = 50
base_url = "http://127.0.0.1:4000/"
"#;
    let cfg = parse(text, "/etc/reckon/reckon.toml").unwrap();
    assert_eq!(cfg.daemon.data_dir, Path::new("/etc/reckon/var/data"));
    // `.` is the config's directory as written in messages too (QA21:
    // paths read `demo/./statements/…`; Path's == ignores the `.`).
    let dot = text.replace(
        "data_dir = \"var/data\"",
        "data_dir = \"var/data\"\noutput_dir = \".\"",
    );
    let cfg = parse(&dot, "/etc/reckon/reckon.toml").unwrap();
    assert_eq!(cfg.daemon.output_dir.to_str(), Some("/etc/reckon"));
    assert_eq!(cfg.daemon.listen, default_listen());
    assert_eq!(cfg.connectors[0].tz(&cfg.daemon), chrono_tz::Europe::Berlin);
    let r = resolve(&cfg, &example_loader, &secrets).unwrap();
    let c = &r[0];
    assert_eq!(c.lookback_days, 7, "manifest default");
    assert_eq!(c.base_url, "http://127.0.0.1:4000");
    assert_eq!(
        c.settings,
        serde_json::json!({"page_size": 50, "base_url": "http://127.0.0.1:4000/"})
    );
    assert_eq!(c.policy.secrets["api_key"].0, "k3y");
    assert!(format!("{:?}", c.policy).contains("Secret(***)"));
    assert!(!format!("{:?}", c.policy).contains("k3y"));
    assert!(c.policy.allowed_hosts.contains(&"127.0.0.1".to_string()));
    assert!(c
        .policy
        .allowed_hosts
        .contains(&"api.example.net".to_string()));
}

#[test]
fn shipped_example_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            if let Err(e) = parse(&text, &p.display().to_string()) {
                panic!("{e}");
            }
            n += 1;
        }
    }
    assert!(n >= 1, "config/ has no example config");
}

#[test]
fn an_abort_built_plugin_cannot_be_configured_in_process() {
    let text = r#"
[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 */6 * * *"
isolation = "in_process"

[connectors.settings]
api_key = { secret = "env:EXAMPLE_API_KEY" }
"#;
    let cfg = parse(text, "reckon.toml").unwrap();
    let abort_loader = |dir: &Path, id: &str, sha: Option<&str>| {
        example_loader(dir, id, sha).map(|p| {
            let mut p = Plugin::from_manifest(p.path.clone(), p.manifest.clone());
            p.panic_unwind = false;
            Arc::new(p)
        })
    };
    let e = resolve(&cfg, &abort_loader, &secrets).unwrap_err();
    let msg = ConfigErrors(e).to_string();
    assert!(msg.contains("`connectors[0].isolation`"), "{msg}");
    assert!(msg.contains("cannot run in-process"), "{msg}");
    // The same plugin in a subprocess (the default) is fine.
    let cfg = parse(
        &text.replace("isolation = \"in_process\"\n", ""),
        "reckon.toml",
    )
    .unwrap();
    assert!(resolve(&cfg, &abort_loader, &secrets).is_ok());
}

#[test]
fn window_days_narrows_the_plugins_windows_and_no_further() {
    let text = |days: u32| {
        format!(
            "[[connectors]]\nid = \"examplenet\"\nplugin = \"example\"\nschedule = \"0 */6 * * *\"\n\
             window_days = {days}\n\n[connectors.settings]\napi_key = {{ secret = \"env:EXAMPLE_API_KEY\" }}\n"
        )
    };
    // The example plugin allows 31 days per window.
    let cfg = parse(&text(7), "reckon.toml").unwrap();
    let c = resolve(&cfg, &example_loader, &secrets).unwrap().remove(0);
    assert_eq!(c.window_days, Some(7));
    let cfg = parse(&text(7).replace("window_days = 7\n", ""), "reckon.toml").unwrap();
    let c = resolve(&cfg, &example_loader, &secrets).unwrap().remove(0);
    assert_eq!(c.window_days, Some(31), "the manifest's max_window_days");
    let cfg = parse(&text(45), "reckon.toml").unwrap();
    let msg = ConfigErrors(resolve(&cfg, &example_loader, &secrets).unwrap_err()).to_string();
    assert!(msg.contains("`connectors[0].window_days`"), "{msg}");
    assert!(msg.contains("write at most 31"), "{msg}");
    let e = parse(&text(0), "reckon.toml").unwrap_err().to_string();
    assert!(
        e.contains("`connectors[0].window_days`: must be at least 1 day"),
        "{e}"
    );
}

#[test]
fn draft_and_kpi_schedules_that_never_fire_are_config_errors() {
    let text = commission_schedules("0 0 30 2 *", "0 0 31 4 *");
    let msg = parse(&text, "reckon.toml").unwrap_err().to_string();
    assert!(
        msg.contains("`programs[0].commission.draft_schedule`: schedule `0 0 30 2 *` never fires"),
        "{msg}"
    );
    assert!(
        msg.contains("`kpi.summaries.schedule`: schedule `0 0 31 4 *` never fires"),
        "{msg}"
    );
    let ok = text
        .replace("0 0 30 2 *", "0 6 * * *")
        .replace("0 0 31 4 *", "0 6 * * *");
    assert!(parse(&ok, "reckon.toml").is_ok());
}

/// QA30-C L5: `max_concurrent_syncs = -1` said "expected a whole number
/// of 0 or more", and 0 was then refused ("must be at least 1"). A key
/// refused at 0 names 1 as its least value; and every key on that list is
/// refused at 0 (the list stays true to the checks).
#[test]
fn a_negative_count_names_the_least_value_its_key_takes() {
    let config = |key: &str, value: &str| {
        let (daemon, connector) = match key.split_once('.') {
            Some(("daemon", k)) => (format!("{k} = {value}"), String::new()),
            Some(("connectors[]", "rate_limit.requests")) => (
                String::new(),
                format!("rate_limit = {{ requests = {value}, per_secs = 1 }}"),
            ),
            Some(("connectors[]", "rate_limit.per_secs")) => (
                String::new(),
                format!("rate_limit = {{ requests = 1, per_secs = {value} }}"),
            ),
            Some(("connectors[]", k)) => (String::new(), format!("{k} = {value}")),
            _ => panic!("{key}"),
        };
        format!(
            "[daemon]\n{daemon}\n[[connectors]]\nid = \"examplenet\"\nplugin = \"example\"\nschedule = \"0 6 * * *\"\n{connector}\n"
        )
    };
    for key in AT_LEAST_ONE {
        let at = key.replace("connectors[]", "connectors[0]");
        let at = at
            .strip_suffix(".requests")
            .or(at.strip_suffix(".per_secs"))
            .unwrap_or(&at);
        let e = parse(&config(key, "-1"), "t.toml").unwrap_err().to_string();
        assert!(
            e.contains("-1 is negative; expected a whole number of 1 or more"),
            "{key}: {e}"
        );
        let e = parse(&config(key, "0"), "t.toml").unwrap_err().to_string();
        assert!(
            e.contains(&format!("`{at}`: ")) && e.contains("at least 1"),
            "{key}: {e}"
        );
    }
    // A key that takes 0 says so.
    let e = parse(&config("connectors[].lookback_days", "-1"), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("-1 is negative; expected a whole number of 0 or more"),
        "{e}"
    );
}

#[test]
fn serde_errors_say_what_to_write() {
    let text = r#"
[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 6 * * *"
lookback_days = -5

[[programs]]
id = "shop"
currency = "USD"
claims = ["examplenet"]
orders = ["examplenet"]
[programs.commission]
payout_currency = "USD"
[[programs.commission.rules]]
id = "cps"
effective_from = "2020-13-01"
kind = "percent"
percent = 10.5
"#;
    let e = parse(text, "t.toml").unwrap_err().to_string();
    assert!(
        e.contains("-5 is negative; expected a whole number of 0 or more"),
        "{e}"
    );
    let text = text.replace("lookback_days = -5\n", "");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    assert!(
        e.contains("not a day of the calendar") || e.contains("decimal written as a quoted string"),
        "{e}"
    );
    let e = parse(&text.replace("\"2020-13-01\"", "\"2020-12-01\""), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("10.5 is a float; write decimals as quoted strings, e.g. \"10.5\""),
        "{e}"
    );
    let e = parse(
        &text.replace("percent = 10.5", "percent = \"10\""),
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a day of the calendar"), "{e}");
    let e = parse(
        &text
            .replace("percent = 10.5", "percent = \"10\"")
            .replace("\"2020-13-01\"", "2020-12-01"),
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("found a TOML date, expected a date written as a quoted string"),
        "{e}"
    );
}

#[test]
fn every_error_of_a_nested_table_is_reported_at_once() {
    let text = r#"
[kpi.summaries]
enabled = true
by = ["channel", "week"]
view = "all"
formats = ["csv", "pdf"]
schedule = "0 6 * *"
"#;
    let e = parse(text, "t.toml").unwrap_err();
    let text = e.to_string();
    for key in [
        "kpi.summaries.by",
        "kpi.summaries.view",
        "kpi.summaries.formats",
        "kpi.summaries.schedule",
    ] {
        assert!(
            text.contains(&format!("`{key}")),
            "{key} missing from:\n{text}"
        );
    }
    // Ops QA13 OPS-18: once, not "kpi config: [kpi.summaries] schedule = ..." after it.
    assert!(
        text.contains("`kpi.summaries.schedule`: invalid cron expression `0 6 * *`"),
        "{text}"
    );
    assert!(!text.contains("kpi config:"), "{text}");
}

#[test]
fn draft_schedule_takes_the_connectors_cron_syntax() {
    let text = |schedule: &str| {
        format!(
            r#"
[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 6 * * *"

[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 6 * * *"

[[programs]]
id = "shop"
currency = "USD"
claims = ["examplenet"]
orders = ["shop"]
[programs.commission]
payout_currency = "USD"
draft_schedule = "{schedule}"
"#
        )
    };
    // The year field lies ahead of the real clock: a schedule whose fires
    // all lie in the past never fires and is refused, as a fixed 2030 would
    // be from 2031 on.
    use chrono::Datelike as _;
    let with_year = format!("0 0 6 * * MON {}", chrono::Utc::now().year() + 4);
    for ok in ["0 6 * * *", "0 0 6 ? * 7", with_year.as_str()] {
        assert!(parse(&text(ok), "t.toml").is_ok(), "{ok}");
    }
    let e = parse(&text("0 25 * * *"), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("draft_schedule") && e.contains("Hours must be at most 23"),
        "{e}"
    );
}

/// QA findings: an empty `data_dir` meant the config's own directory, a
/// `data_dir` that is a file passed `config check` and failed every
/// command, and a `base_url` with a password was written to cassettes.
#[test]
fn empty_or_file_data_dirs_and_credentials_in_base_url_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let config = dir.path().join("reckon.toml");
    let text = |data_dir: &str, base_url: &str| {
        format!(
            r#"
[daemon]
data_dir = "{data_dir}"

[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 */6 * * *"

[connectors.settings]
api_key = {{ secret = "env:EXAMPLE_API_KEY" }}
base_url = "{base_url}"
"#
        )
    };
    let errors = |t: String| -> String {
        match parse(&t, &config.display().to_string()) {
            Err(e) => e.to_string(),
            Ok(cfg) => match resolve(&cfg, &example_loader, &secrets) {
                Err(e) => ConfigErrors(e).to_string(),
                Ok(_) => "ok".into(),
            },
        }
    };
    assert_eq!(errors(text("data", "http://127.0.0.1:4000")), "ok");
    let e = errors(text("", "http://127.0.0.1:4000"));
    assert!(
        e.contains("`daemon.data_dir`: must name a directory"),
        "{e}"
    );
    let e = errors(text("a-file", "http://127.0.0.1:4000"));
    assert!(e.contains("a-file is a file, not a directory"), "{e}");
    let e = errors(text("data", "http://admin:hunter2@127.0.0.1:4000"));
    assert!(
        e.contains("`connectors[0].settings.base_url`: must not carry a user or password"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    // QA31-C F8: a query (a key in it) or a fragment was accepted; the
    // plugin appended its paths inside the query, and every error showed
    // the key.
    for url in [
        "http://127.0.0.1:4000/x?apikey=QueryKey123456",
        "http://127.0.0.1:4000/?apikey=QueryKey123456",
        "http://127.0.0.1:4000/x#QueryKey123456",
    ] {
        let e = errors(text("data", url));
        assert!(
            e.contains("`connectors[0].settings.base_url`: must not carry a query (`?...`) or fragment (`#...`)"),
            "{url}: {e}"
        );
        assert!(
            e.contains("put keys in the plugin's secret settings"),
            "{e}"
        );
        assert!(!e.contains("QueryKey123456"), "{url}: {e}");
        assert!(!e.contains("missing required setting"), "{url}: {e}");
    }
    // A path, with or without a trailing slash, is fine.
    assert_eq!(errors(text("data", "http://127.0.0.1:4000/api/v1/")), "ok");
}

/// QA31-C F10: a `file:` secret holding two lines (an `.env` file) passed
/// `config check`; every request then failed with "failed to parse header
/// value". Refused at resolution, naming the setting, never the value.
#[test]
fn a_secret_holding_a_line_break_or_control_character_is_refused_unshown() {
    let text = "[[connectors]]\nid = \"net\"\nplugin = \"example\"\nschedule = \"0 * * * *\"\n\
                [connectors.settings]\napi_key = { secret = \"file:keys.env\" }\n";
    let cfg = parse(text, "x.toml").unwrap();
    for (value, what) in [
        (
            "API_KEY=sekrit-1234\nDB_PASSWORD=hunter2",
            "holds a line break (it has 2 lines)",
        ),
        (
            "sekrit-1234\r\nhunter2\n",
            "holds a line break (it has 2 lines)",
        ),
        ("sekrit-1234\thunter2", "holds a tab"),
        (
            "sekrit-1234\u{1b}hunter2",
            "holds the control character U+001B",
        ),
    ] {
        let reader = |_: &SecretRef| Ok::<_, String>(value.to_owned());
        let e = ConfigErrors(resolve(&cfg, &example_loader, &reader).unwrap_err()).to_string();
        assert!(
            e.contains(&format!(
                "`connectors[0].settings.api_key`: secret of connector `net` setting `api_key` {what} (file keys.env; the value is not shown)"
            )),
            "{value:?}: {e}"
        );
        assert!(e.contains("not several `NAME=value` lines"), "{e}");
        assert!(!e.contains("sekrit") && !e.contains("hunter2"), "{e}");
    }
    // One line, as the file reader leaves it (its trailing newline removed).
    let reader = |_: &SecretRef| Ok::<_, String>("sekrit-1234 with spaces".to_owned());
    assert!(resolve(&cfg, &example_loader, &reader).is_ok());
}

/// QA (ops #8): an `output_dir` that is a file passed `config check`; every
/// post-sync hook then failed with an error that named no key.
#[test]
fn an_output_dir_that_is_not_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let config = dir.path().join("reckon.toml");
    let check = |output_dir: &str| {
        parse(
            &format!("[daemon]\noutput_dir = \"{output_dir}\"\n"),
            &config.display().to_string(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert_eq!(check("out"), Ok(()), "missing: created when needed");
    let e = check("a-file").unwrap_err();
    assert!(e.contains("reckon.toml:2"), "{e}");
    assert!(
        e.contains("`daemon.output_dir`: ")
            && e.contains("a-file is a file, not a directory; point output_dir at a directory"),
        "{e}"
    );
}

/// QA (ops #9): a misspelled secret setting was told "`acess_token` is not
/// a secret setting ...; give its value directly", which invites a literal
/// credential in the file; a misspelled plain setting gets "did you mean".
#[test]
fn a_misspelled_secret_setting_is_an_unknown_setting_with_a_suggestion() {
    let text = r#"
[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 */6 * * *"

[connectors.settings]
api_kye = { secret = "env:EXAMPLE_API_KEY" }
"#;
    let cfg = parse(text, "reckon.toml").unwrap();
    let e = ConfigErrors(resolve(&cfg, &example_loader, &secrets).unwrap_err()).to_string();
    assert!(
        e.contains(
            "`connectors[0].settings.api_kye`: unknown setting `api_kye`; did you mean `api_key`?"
        ),
        "{e}"
    );
    assert!(!e.contains("give its value directly"), "{e}");
    // As a plain unknown setting says it (ops QA13 OPS-18).
    assert!(e.contains(" (plugin `example` config schema)"), "{e}");
}

/// QA6 F6: `[kpi] currency = "XYZ"` has the shape of a code but is no
/// currency: a config error naming the file, line and key (it was accepted
/// and every row of every report was then left out for want of a rate).
#[test]
fn an_unknown_kpi_currency_is_a_config_error_with_its_line() {
    let text = "[daemon]\ntimezone = \"Europe/Berlin\"\n\n[kpi]\ncurrency = \"XYZ\"\n";
    let msg = parse(text, "reckon.toml").unwrap_err().to_string();
    assert!(msg.contains("reckon.toml:5"), "{msg}");
    assert!(msg.contains("`kpi.currency`"), "{msg}");
    assert!(msg.contains("not an ISO-4217 currency code"), "{msg}");
    let ok = text.replace("XYZ", "EUR");
    parse(&ok, "reckon.toml").expect("EUR is a currency");
}

/// QA6 F11: two inline `[[fx.rates]]` for one date and pair were accepted
/// and the later silently won; now a config error at the later entry naming
/// both (the first by its line).
#[test]
fn an_fx_rate_given_twice_is_a_config_error_naming_both_entries() {
    let text = "[[connectors]]\nid = \"ex\"\nplugin = \"example\"\nschedule = \"0 6 * * *\"\n\
                [fx]\n\
                [[fx.rates]]\ndate = 2026-11-02\nbase = \"EUR\"\nquote = \"USD\"\nrate = \"1.1\"\n\
                [[fx.rates]]\ndate = 2026-11-02\nbase = \"EUR\"\nquote = \"USD\"\nrate = \"1.2\"\n";
    let e = parse(text, "x.toml").unwrap_err().to_string();
    assert!(
        e.contains(
            "x.toml:12:8: `fx.rates[1].date`: EUR/USD on 2026-11-02 is given twice, in fx.rates[0] \
             (line 7, rate \"1.1\") and fx.rates[1] (rate \"1.2\"), with different rates"
        ),
        "{e}"
    );
}

/// QA6 F9: a `base_url` that is present but invalid also produced "missing
/// required setting `base_url`" (for a plugin whose schema requires it);
/// now one error at the value saying it is invalid and why.
#[test]
fn an_invalid_base_url_is_said_invalid_not_missing() {
    let required_loader =
        |dir: &Path, _: &str, _: Option<&str>| -> Result<Arc<Plugin>, LoadError> {
            let mut m = reckon_plugin_example::Example::manifest();
            m.config_schema["required"] = serde_json::json!(["api_key", "base_url"]);
            m.default_base_url = None;
            Ok(Arc::new(Plugin::from_manifest(dir.join("x.so"), m)))
        };
    let text = |url: &str| {
        format!(
            "[[connectors]]\nid = \"net\"\nplugin = \"example\"\nschedule = \"0 * * * *\"\n\
             [connectors.settings]\napi_key = {{ secret = \"env:EXAMPLE_API_KEY\" }}\nbase_url = {url}\n"
        )
    };
    for (url, why) in [
        (
            "\"not a url\"",
            "\"not a url\" is not a URL (relative URL without a base)",
        ),
        (
            "\"ftp://127.0.0.1:1\"",
            "\"ftp://127.0.0.1:1\" has the scheme `ftp`; only http and https are used",
        ),
        ("42", "is an integer, not a string"),
    ] {
        let cfg = parse(&text(url), "x.toml").unwrap();
        let e = ConfigErrors(resolve(&cfg, &required_loader, &secrets).unwrap_err()).to_string();
        assert!(
            e.contains(&format!(
                "x.toml:7:12: `connectors[0].settings.base_url`: invalid base URL: {why}; expected an absolute http(s) URL"
            )),
            "{url}: {e}"
        );
        assert!(!e.contains("missing required setting"), "{url}: {e}");
    }
    let cfg = parse(&text("\"http://u:p@127.0.0.1:1\""), "x.toml").unwrap();
    let e = ConfigErrors(resolve(&cfg, &required_loader, &secrets).unwrap_err()).to_string();
    assert!(e.contains("must not carry a user or password"), "{e}");
    assert!(!e.contains("missing required setting"), "{e}");
    // Absent, it is still missing.
    let cfg = parse(&text("\"x\"").replace("base_url = \"x\"\n", ""), "x.toml").unwrap();
    let e = ConfigErrors(resolve(&cfg, &required_loader, &secrets).unwrap_err()).to_string();
    assert!(e.contains("missing required setting `base_url`"), "{e}");
}

/// New-user QA, repro 2: `percent = 7.5` in a rule dropped the whole
/// `[programs.commission]` from the checks, so its `draft_schedule` that
/// never fires came a run later. The refused key alone is removed now,
/// and not also reported missing; a refused required key drops its
/// rules, not the program.
#[test]
fn a_refused_key_in_a_rule_hides_no_other_error_of_the_program() {
    let text = |rule: &str| {
        format!(
            r#"
[[connectors]]
id = "everflow"
plugin = "example"
schedule = "0 6 * * *"

[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 6 * * *"

[[programs]]
id = "acme"
currency = "EUR"
claims = ["everflow"]
orders = ["shop"]

[programs.commission]
payout_currency = "EUR"
draft_schedule = "0 6 31 2 *"

[programs.commission.partner_groups]
vip = ["everflw:201"]

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
{rule}
"#
        )
    };
    let e = parse(&text("kind = \"percent\"\npercent = 7.5"), "t.toml")
        .unwrap_err()
        .to_string();
    for expected in [
        "`programs[0].commission.draft_schedule`: schedule `0 6 31 2 *` never fires",
        "`programs[0].commission.partner_groups.vip[0]`: `everflw` is not one of",
        "`programs[0].commission.rules[0].percent`: 7.5 is a float",
    ] {
        assert!(e.contains(expected), "{expected} missing from:\n{e}");
    }
    assert_eq!(e.lines().count(), 3, "{e}");
    // A required key refused: the rules go, the rest is still checked.
    let e = parse(&text("kind = \"percentage\"\npercent = \"7.5\""), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`programs[0].commission.rules[0].kind`: ") && e.contains("percentage"),
        "{e}"
    );
    assert!(
        e.contains("draft_schedule`: schedule `0 6 31 2 *` never fires"),
        "{e}"
    );
    assert!(e.contains("`everflw` is not one of"), "{e}");
    assert!(!e.contains("missing field"), "{e}");
    assert_eq!(e.lines().count(), 3, "{e}");
}

#[test]
fn key_paths_split_into_keys_and_indices() {
    use super::KeyPart::{Index, Key};
    assert_eq!(
        key_path("commission.rules[0].percent"),
        vec![
            Key("commission".into()),
            Key("rules".into()),
            Index(0),
            Key("percent".into())
        ]
    );
    assert_eq!(
        key_path("partner_groups.\"a.b\"[2]"),
        vec![Key("partner_groups".into()), Key("a.b".into()), Index(2)]
    );
}

/// New-user QA, repro 1 and 2: a connector with a secret error was left
/// out of the kind check (and of the directory check), so a connector
/// named where its records do not belong came a run later.
#[test]
fn a_connector_with_a_secret_error_is_still_checked_for_its_kind() {
    let text = r#"
[[connectors]]
id = "net"
plugin = "example"
schedule = "0 6 * * *"
[connectors.settings]
api_key = { secret = "env:NOT_SET" }

[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 6 * * *"
[connectors.settings]
api_key = { secret = "env:EXAMPLE_API_KEY" }

[[programs]]
id = "p"
currency = "USD"
claims = ["shop"]
orders = ["net"]
"#;
    let cfg = parse(text, "t.toml").unwrap();
    let e = ConfigErrors(resolve(&cfg, &example_loader, &secrets).unwrap_err()).to_string();
    assert!(
        e.contains("`connectors[0].settings.api_key`: secret of connector `net` setting `api_key` not resolvable"),
        "{e}"
    );
    assert!(
        e.contains(
            "`programs[0].orders[0]`: connector `net` runs plugin `example`, which produces claims"
        ),
        "{e}"
    );
}

/// Regression (QA10 L1): a `file:` secret readable by everyone was read
/// silently. It is still read, with one WARN per file naming it and the
/// `chmod` to run; a 0640 file gets none.
#[test]
fn a_secret_file_readable_by_everyone_is_read_with_one_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open_key");
    let closed = dir.path().join("closed_key");
    for (p, mode) in [(&open, 0o644), (&closed, 0o640)] {
        std::fs::write(p, "s3cret\n").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let reader = resolve::os_secret_reader(dir.path().to_path_buf());
    let lines = crate::test_support::json_lines_at(tracing::Level::WARN, || {
        for _ in 0..2 {
            assert_eq!(
                reader(&SecretRef::File("open_key".into())).unwrap(),
                "s3cret"
            );
            assert_eq!(reader(&SecretRef::File(closed.clone())).unwrap(), "s3cret");
        }
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
    let message = lines[0]["fields"]["message"].as_str().unwrap();
    assert!(message.contains(&open.display().to_string()), "{message}");
    assert!(message.contains("chmod 0640"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert_eq!(lines[0]["fields"]["mode"], "0644");
}

/// QA12 N3: a credential pasted after `env:` was echoed as the variable's
/// name ("environment variable `sk-live…` is not set").
#[test]
fn a_credential_after_env_is_not_echoed() {
    for value in ["sk-live-Abc/123+xyz", "9STARTSWITHDIGIT", "has space"] {
        let reference = format!("s = {{ secret = \"env:{value}\" }}");
        let reference = toml::from_str::<toml::Value>(&reference).unwrap();
        let e = SecretRef::from_toml(&reference["s"]).unwrap_err();
        assert!(!e.contains(value), "{value} echoed: {e}");
        assert!(e.contains("must be followed by a variable name"), "{e}");
    }
    for name in ["EXAMPLE_API_KEY", "_x1", "a"] {
        let reference = format!("s = {{ secret = \"env:{name}\" }}");
        let reference = toml::from_str::<toml::Value>(&reference).unwrap();
        assert_eq!(
            SecretRef::from_toml(&reference["s"]).unwrap(),
            SecretRef::Env(name.into())
        );
    }
}

/// QA22 S8: `status_token = {}` was told to "remove" nothing.
#[test]
fn an_empty_secret_reference_says_what_to_write() {
    let reference = toml::from_str::<toml::Value>("s = {}").unwrap();
    assert_eq!(
        SecretRef::from_toml(&reference["s"]).unwrap_err(),
        "the secret reference is empty: write `{ secret = \"env:NAME\" }` or `{ secret = \"file:PATH\" }`"
    );
    // QA23 N5: another key instead of `secret`.
    let reference = toml::from_str::<toml::Value>("s = { x = 1 }").unwrap();
    assert_eq!(
        SecretRef::from_toml(&reference["s"]).unwrap_err(),
        "a secret reference needs the key `secret` (`{ secret = \"env:NAME\" }` or `{ secret = \"file:PATH\" }`), not `x`"
    );
}

/// QA-10 L2: a credential typed into a reference by mistake was echoed in
/// the error (``secret reference `LITERAL…` must start with …``), and on
/// SIGHUP into the daemon log. The error names the field, gives the length
/// and what to do, never the value.
#[test]
fn a_literal_in_a_secret_reference_is_not_echoed() {
    for (value, hint) in [
        ("LITERAL-IMPACT-SECRET-xyz", None),
        ("admin:hunter2-secret", None),
        (
            "ENV:EXAMPLE_API_KEY",
            Some("credential). Did you mean `env:`? Write"),
        ),
        (
            "fil:/run/secrets/k",
            Some("credential). Did you mean `file:`? Write"),
        ),
    ] {
        let text = format!(
            r#"
[[connectors]]
id = "net"
plugin = "example"
schedule = "0 6 * * *"
[connectors.settings]
api_key = {{ secret = "{value}" }}
"#
        );
        let parsed = parse(&text, "t.toml").unwrap_err().to_string();
        assert!(
            parsed.contains("`connectors[0].settings.api_key`: the secret reference"),
            "{parsed}"
        );
        let reference = format!("s = {{ secret = \"{value}\" }}");
        let reference = toml::from_str::<toml::Value>(&reference).unwrap();
        for e in [parsed, SecretRef::from_toml(&reference["s"]).unwrap_err()] {
            let (_, rest) = value.split_at(4);
            assert!(!e.contains(rest), "{value} echoed: {e}");
            assert!(
                e.contains(&format!(
                    "its value, {} characters, is not shown",
                    value.len()
                )),
                "{e}"
            );
            assert!(e.contains("{ secret = \"env:NAME\" }"), "{e}");
            if let Some(h) = hint {
                assert!(e.contains(h), "{e}");
            } else {
                assert!(!e.contains("Did you mean"), "{e}");
                assert!(e.contains("credential). Write `{"), "{e}");
            }
        }
    }
}

/// QA46 S-M1: a `file:` secret another user could replace (in a directory
/// every user may write to, or writable by every user itself) was used
/// without a word; only one readable by everyone was warned about. Each
/// way is a WARN naming the file and what to do; the value is still used.
#[test]
fn a_secret_file_others_could_replace_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let key = open.join("pb.key");
    std::fs::write(&key, "k3y-value\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let reader = resolve::os_secret_reader(dir.path().to_path_buf());
    let warnings = |name: &str| {
        let mut value = None;
        let lines = crate::test_support::json_lines_at(tracing::Level::WARN, || {
            value = Some(reader(&SecretRef::File(name.into())));
        });
        assert_eq!(value.unwrap().unwrap(), "k3y-value");
        (lines.iter())
            .map(|l| l["fields"]["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let shown = warnings("open/pb.key");
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].starts_with(&format!(
            "secret file {} is reached through {}, which every user may write to without a sticky bit (mode 0777): anyone could replace the file",
            key.display(),
            open.display()
        )),
        "{shown:?}"
    );
    // Once per file and reason.
    assert_eq!(warnings("open/pb.key"), Vec::<String>::new());
    // A file every user may read and write, in a directory of its own.
    let other = dir.path().join("other.key");
    std::fs::write(&other, "k3y-value").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o666)).unwrap();
    let shown = warnings("other.key");
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(
        shown[0].contains("is readable by every user on this host (mode 0666)"),
        "{shown:?}"
    );
    assert!(
        shown[1].contains("is writable by every user on this host (mode 0666): they could put a credential of their choosing there"),
        "{shown:?}"
    );
    // QA47 R-M3: a symlink to a private file, in a directory every user
    // may write to: anyone could replace the link.
    std::os::unix::fs::symlink(&other, open.join("link.key")).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let shown = warnings("open/link.key");
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].contains(&format!(
            "is reached through {}, which every user may write to without a sticky bit",
            open.display()
        )),
        "{shown:?}"
    );
    // QA48 I-L1: a path that only passes through that directory with `..`
    // is not reached through it.
    let private = dir.path().join("private.key");
    std::fs::write(&private, "k3y-value").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(warnings("open/../private.key"), Vec::<String>::new());
    // QA48 I-M3: a directory its group may write to.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).unwrap();
    std::fs::copy(&private, shared.join("pb.key")).unwrap();
    // Not a group named as its owner (a user private group, e.g. root's
    // `root`): only root can give the directory another group.
    if rustix::process::geteuid().is_root() {
        assert_eq!(warnings("shared/pb.key"), Vec::<String>::new(), "root:root");
        std::os::unix::fs::chown(&shared, None, Some(65534)).unwrap();
        let shown = warnings("shared/../shared/pb.key");
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].contains(&format!(
                "is reached through {}, which every member of its group ",
                shared.display()
            )) && shown[0].contains("may write to (mode 0770): they could replace the file"),
            "{shown:?}"
        );
    }
    // A private file in a private directory: nothing.
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(warnings("private.key"), Vec::<String>::new());
}

/// QA20 R20-9: a `file:` secret naming a directory got a WARN about its
/// mode ("readable by every user (mode 0755)") before the real error. The
/// kind is checked first: one error, no WARN.
#[test]
fn a_secret_file_that_is_a_directory_is_one_error_and_no_mode_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("keys");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let reader = resolve::os_secret_reader(dir.path().to_path_buf());
    let mut result = None;
    let lines = crate::test_support::json_lines_at(tracing::Level::WARN, || {
        result = Some(reader(&SecretRef::File("keys".into())));
    });
    assert!(lines.is_empty(), "{lines:?}");
    let e = result.unwrap().unwrap_err();
    assert_eq!(
        e,
        format!(
            "secret file {} is a directory; name the file that holds the secret",
            sub.display()
        )
    );
}

/// Security QA22 S5: `file:/dev/zero` read until memory ran out, and a
/// FIFO blocked the read (a SIGHUP stuck there ignored every later one).
/// Only a regular file of at most 64 KiB is read.
#[test]
fn a_secret_file_must_be_a_regular_file_of_at_most_64_kib() {
    let dir = tempfile::tempdir().unwrap();
    let reader = resolve::os_secret_reader(dir.path().to_path_buf());
    let fifo = dir.path().join("pipe");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    for (name, path) in [("pipe", fifo.clone()), ("/dev/zero", "/dev/zero".into())] {
        let e = reader(&SecretRef::File(name.into())).unwrap_err();
        assert_eq!(
            e,
            format!(
                "secret file {} is not a regular file (a device, pipe or socket); put the secret in a file",
                path.display()
            )
        );
    }
    let big = dir.path().join("big");
    std::fs::write(&big, "k".repeat(64 * 1024 + 1)).unwrap();
    let e = reader(&SecretRef::File("big".into())).unwrap_err();
    assert!(
        e.ends_with("is larger than 64 KiB: not a secret (is it the right file?)"),
        "{e}"
    );
    std::fs::write(&big, format!("{}\n", "k".repeat(64 * 1024 - 1))).unwrap();
    assert_eq!(
        reader(&SecretRef::File("big".into())).unwrap().len(),
        64 * 1024 - 1
    );
}

/// QA20 R20-9: `payout_currency = "usd"` said "not an active ISO-4217
/// code; write e.g. \"EUR\""; a program's `currency` said to use an
/// upper-case code. One check for both now names the upper-case code.
#[test]
fn a_lower_case_currency_is_told_its_upper_case_code_in_programs_and_payouts() {
    assert_eq!(currency_problem("USD"), None);
    assert_eq!(
        currency_problem("usd").as_deref(),
        Some("`usd` is not an ISO-4217 code; use the upper-case code \"USD\"")
    );
    assert_eq!(
        currency_problem("XYZ").as_deref(),
        Some("`XYZ` is not an active ISO-4217 code; use an upper-case code such as \"USD\"")
    );
    assert_eq!(
        currency_problem("euro").as_deref(),
        Some("`euro` is not an active ISO-4217 code; did you mean \"EUR\"?")
    );
    let text = r#"
[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 6 * * *"
[connectors.settings]
api_key = { secret = "env:K" }

[[programs]]
id = "p"
currency = "eur"
claims = ["shop"]
orders = ["shop"]
[programs.commission]
payout_currency = "usd"
"#;
    let e = parse(text, "t.toml").unwrap_err().to_string();
    assert!(
        e.contains("`programs[0].currency`: `eur` is not an ISO-4217 code; use the upper-case code \"EUR\""),
        "{e}"
    );
    assert!(
        e.contains("`programs[0].commission.payout_currency`: `usd` is not an ISO-4217 code; use the upper-case code \"USD\""),
        "{e}"
    );
}

/// QA24: values with no upper bound that passed `config check` and then
/// panicked (`http_header_timeout_secs` near u64::MAX: every HTTP
/// connection; `[fx] max_age_days`: every lookup) or stood for nonsense
/// (a 28-digit minimum payout, a negative bonus threshold, an absolute
/// tolerance that matches any amount).
#[test]
fn unbounded_values_are_refused_with_their_bound() {
    let text = format!(
        r#"[daemon]
http_header_timeout_secs = 9223372036854775807
{SHOP_NET_COMMISSION}payout_currency = "USD"
minimum_payout = "79228162514264337593543950335"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"

[[programs.commission.bonuses]]
id = "b1"
effective_from = "2026-01-01"
threshold_volume = "-5"
amount = "10"

[programs.match]
amount_tolerance_abs = "1000000000000000"

[fx]
max_age_days = 100000000
"#
    );
    let text = text.replacen(
        "schedule = \"0 * * * *\"\n",
        "schedule = \"0 * * * *\"\nrate_limit = { requests = 1, per_secs = 4294967295 }\n",
        1,
    );
    let e = parse(&text, "x.toml").unwrap_err().to_string();
    for want in [
        "`connectors[0].rate_limit`: `per_secs` 4294967295 is more than a day (86400)",
        "`daemon.http_header_timeout_secs`: 9223372036854775807 is more than 3600 seconds (an hour)",
        "`programs[0].commission.minimum_payout`: 79228162514264337593543950335 is not below 1000000000000000",
        "`programs[0].commission.bonuses[0]`: (id `b1`): threshold_volume -5 must be zero or more",
        "`programs[0].match.amount_tolerance_abs`: 1000000000000000 would match a claim to an order of any amount",
        "`fx.max_age_days`: 100000000 is more than 3650 days",
    ] {
        assert!(e.contains(want), "{want}\n{e}");
    }
    let ok = text
        .replace("9223372036854775807", "3600")
        .replace("\"79228162514264337593543950335\"", "\"50\"")
        .replace("\"-5\"", "\"0\"")
        .replace("\"1000000000000000\"", "\"0.50\"")
        .replace("100000000", "3650")
        .replace("4294967295", "86400");
    parse(&ok, "x.toml").unwrap();
}

/// `[daemon] store_cache_mb`: the default, a value read as written, and
/// 0 and more than 1 TiB refused with what to set.
#[test]
fn store_cache_mb_is_read_and_bounded() {
    let with = |v: &str| {
        format!("[daemon]\nstore_cache_mb = {v}\n{SHOP_NET_COMMISSION}payout_currency = \"USD\"\n")
    };
    let default = parse(&with("64").replace("store_cache_mb = 64\n", ""), "x.toml").unwrap();
    assert_eq!(
        default.daemon.store_cache_mb,
        crate::store::DEFAULT_CACHE_MB
    );
    assert_eq!(
        parse(&with("2048"), "x.toml")
            .unwrap()
            .daemon
            .store_cache_mb,
        2048
    );
    let e = parse(&with("0"), "x.toml").unwrap_err().to_string();
    assert!(
        e.contains("`daemon.store_cache_mb`: must be at least 1 (MiB); the default is 64"),
        "{e}"
    );
    let e = parse(&with("1048577"), "x.toml").unwrap_err().to_string();
    assert!(
        e.contains("`daemon.store_cache_mb`: 1048577 MiB is more than 1048576 (1 TiB): the cache is held in memory"),
        "{e}"
    );
    parse(&with("1048576"), "x.toml").unwrap();
}

/// `[daemon] rejudge_interval_secs`: 900 by default, a value read as
/// written; 0, a negative and more than a day refused with what to set.
#[test]
fn rejudge_interval_secs_is_read_and_bounded() {
    let with = |v: &str| {
        format!("[daemon]\nrejudge_interval_secs = {v}\n{SHOP_NET_COMMISSION}payout_currency = \"USD\"\n")
    };
    let default = parse(
        &with("1").replace("rejudge_interval_secs = 1\n", ""),
        "x.toml",
    );
    assert_eq!(default.unwrap().daemon.rejudge_interval_secs, 900);
    let read = |v: &str| parse(&with(v), "x.toml").map(|c| c.daemon.rejudge_interval_secs);
    assert_eq!(read("1").unwrap(), 1);
    assert_eq!(read("86400").unwrap(), 86_400);
    let e = read("0").unwrap_err().to_string();
    assert!(
        e.contains(
            "`daemon.rejudge_interval_secs`: must be at least 1 (seconds); the default is 900"
        ),
        "{e}"
    );
    let e = read("86401").unwrap_err().to_string();
    assert!(
        e.contains("`daemon.rejudge_interval_secs`: 86401 seconds is more than 86400 (a day)"),
        "{e}"
    );
    let e = read("-5").unwrap_err().to_string();
    assert!(
        e.contains(
            "`daemon.rejudge_interval_secs`: -5 is negative; expected a whole number of 1 or more"
        ),
        "{e}"
    );
}

/// QA28-E F7: the daemon read a command-socket client's config path whole;
/// `/dev/zero` filled memory until the host ran out. A config is a regular
/// file of at most 4 MiB, refused unread otherwise (a FIFO without a
/// writer does not block either).
#[test]
fn a_config_that_is_not_a_regular_file_or_too_large_is_refused_unread() {
    let e = load(Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(
        e.contains("cannot read the config file: it is not a regular file (a device, pipe or socket is not read)"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    let e = load(&fifo).unwrap_err().to_string();
    assert!(e.contains("it is not a regular file"), "{e}");
    let big = dir.path().join("big.toml");
    std::fs::write(&big, format!("# {}\n", "x".repeat(5 << 20))).unwrap();
    let e = load(&big).unwrap_err().to_string();
    assert!(
        e.contains("it is larger than 4 MiB: not a Reckon config"),
        "{e}"
    );
    let e = load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("it is a directory; name the TOML file"), "{e}");
}
