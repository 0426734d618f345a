//! `[[postbacks]]` through the real binary: SIGHUP applies added, changed
//! and removed endpoints (QA found a reload that logged success while the
//! new endpoint still answered 404) and rejects a config whose postback
//! secret cannot be resolved, keeping the old endpoints; `reckon run` refuses
//! to start with such a config, with the same errors as `reckon config check`.

use reckon_tests::RunningDaemon;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const UNSET: &str = "RECKON_TEST_PB_RELOAD_NEVER_SET";

fn status_of(port: u16, path: &str) -> Option<u16> {
    reckon_tests::http_get(port, path).map(|(s, _)| s)
}

/// A daemon in its own directory, listening on `port`. Fields drop in
/// order: the process is killed before its directory goes.
struct Daemon {
    process: RunningDaemon,
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

impl Daemon {
    fn config_text(port: u16, postbacks: &str) -> String {
        format!("[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\nlisten = \"127.0.0.1:{port}\"\n\n{postbacks}")
    }

    fn write_config(&self, postbacks: &str) {
        std::fs::write(&self.config, Self::config_text(self.port, postbacks)).unwrap();
    }

    fn start(postbacks: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let port = reckon_tests::free_port();
        let config = dir.path().join("reckon.toml");
        reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
        std::fs::write(&config, Self::config_text(port, postbacks)).unwrap();
        let mut command = reckon_tests::run_command(&config);
        command.env_remove(UNSET);
        let mut process = RunningDaemon::spawn(&mut command, dir.path().join("run.log"));
        process.wait_until("reckon run answering /healthz", |_| {
            status_of(port, "/healthz").filter(|s| *s == 200)
        });
        Daemon {
            process,
            dir,
            config,
            port,
        }
    }

    fn log_text(&self) -> String {
        self.process.log_text()
    }

    fn hup(&self) {
        self.process.hup();
    }

    /// Waits until the log has `n` lines containing `needle`.
    fn wait_log(&self, needle: &str, n: usize) -> String {
        reckon_tests::poll_until(Duration::from_secs(20), || {
            let t = self.log_text();
            (t.matches(needle).count() >= n).then_some(t)
        })
        .unwrap_or_else(|| panic!("no {n}× `{needle}` in the log:\n{}", self.log_text()))
    }

    /// The `n`th `SIGHUP: config reloaded` line, once logged.
    fn reload_line(&self, n: usize) -> String {
        let log = self.wait_log("SIGHUP: config reloaded", n);
        let line = log
            .lines()
            .filter(|l| l.contains("config reloaded"))
            .nth(n - 1);
        line.unwrap_or_default().to_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn endpoint(id: &str, secret: &str) -> String {
    format!(
        "[[postbacks]]\nid = \"{id}\"\nsecret = {{ secret = \"{secret}\" }}\ndefault_currency = \"USD\"\n"
    )
}

fn postback(port: u16, id: &str, tid: &str, token: &str) -> Option<u16> {
    status_of(
        port,
        &format!("/postback/{id}?tid={tid}&affid=p1&amount=10&token={token}"),
    )
}

#[test]
fn sighup_adds_changes_and_removes_postback_endpoints_and_rejects_a_broken_one() {
    let d = Daemon::start("");
    let port = d.port;
    assert_eq!(postback(port, "pb", "t1", "one"), Some(404));
    std::fs::write(d.path("pb.key"), "one\n").unwrap();

    // Added: the endpoint answers after the reload, and the log says so.
    d.write_config(&endpoint("pb", "file:pb.key"));
    d.hup();
    let log = d.wait_log("SIGHUP: config reloaded", 1);
    assert!(log.contains("postbacks_added=pb"), "{log}");
    assert!(
        log.contains("programs_changed=- fx_changed=false timezone=unchanged"),
        "{log}"
    );
    assert_eq!(postback(port, "pb", "t1", "one"), Some(200));

    // Changed secret (same reference, new file content), new rates and a
    // new reporting timezone: the log says [fx] changed (it applies from
    // the next reconcile run) and names the timezones (QA29-A L4).
    std::fs::write(d.path("pb.key"), "two\n").unwrap();
    d.write_config(&format!(
        "timezone = \"Europe/Berlin\"\n{}\n[fx]\n[[fx.rates]]\ndate = 2026-11-02\nbase = \"EUR\"\nquote = \"USD\"\nrate = \"1.08\"\n",
        endpoint("pb", "file:pb.key")
    ));
    d.hup();
    let log = d.wait_log("SIGHUP: config reloaded", 2);
    assert!(log.contains("postbacks_changed=pb"), "{log}");
    assert!(log.contains("fx_changed=true"), "{log}");
    assert!(log.contains("timezone=UTC -> Europe/Berlin"), "{log}");
    assert_eq!(postback(port, "pb", "t2", "one"), Some(403));
    assert_eq!(postback(port, "pb", "t2", "two"), Some(200));

    // A second endpoint whose secret cannot be resolved: the whole reload is
    // rejected, the old endpoints keep answering, the new one does not exist.
    d.write_config(&format!(
        "{}\n{}",
        endpoint("pb", "file:pb.key"),
        endpoint("pb2", &format!("env:{UNSET}"))
    ));
    d.hup();
    let log = d.wait_log("the new config has errors; the old config keeps running", 1);
    assert!(
        log.contains(&format!("`postbacks[1].secret`: secret not resolvable: environment variable `{UNSET}` is not set")),
        "{log}"
    );
    assert_eq!(postback(port, "pb", "t3", "two"), Some(200));
    assert_eq!(postback(port, "pb2", "t3", "two"), Some(404));
    let (code, status) = reckon_tests::http_get(port, "/status").unwrap();
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status["postbacks"],
        serde_json::json!([{"id": "pb", "auth": "token", "enabled": true, "error": null}])
    );
    assert_eq!(
        reckon_tests::http_get(port, "/healthz"),
        Some((200, "ok\n".into()))
    );

    // Removed; and a [daemon] setting read only at start changed: the log
    // says it needs a restart (QA: it was ignored without a word).
    d.write_config("max_concurrent_syncs = 1\n");
    d.hup();
    let log = d.wait_log("SIGHUP: config reloaded", 3);
    assert!(log.contains("postbacks_removed=pb"), "{log}");
    assert!(
        log.contains("take effect after a restart; the daemon keeps running with the old ones settings=max_concurrent_syncs"),
        "{log}"
    );
    assert_eq!(postback(port, "pb", "t4", "two"), Some(404));
}

/// A connector that never fires during the test, its key in `file`.
fn connector(file: &str, page_size: u32) -> String {
    format!(
        "[[connectors]]\nid = \"examplenet\"\nplugin = \"example\"\nschedule = \"0 0 1 1 *\"\n\n[connectors.settings]\napi_key = {{ secret = \"file:{file}\" }}\npage_size = {page_size}\nbase_url = \"http://127.0.0.1:9\"\n"
    )
}

#[test]
fn sighup_names_a_connector_whose_section_or_secret_value_changed() {
    let d = Daemon::start("");
    std::fs::write(d.path("ex.key"), "key-one\n").unwrap();
    d.write_config(&connector("ex.key", 7));
    d.hup();
    let log = d.wait_log("SIGHUP: config reloaded", 1);
    assert!(log.contains("connectors_added=examplenet"), "{log}");

    // Same reference, new file content: the connector changed (the log
    // compared only the section before).
    std::fs::write(d.path("ex.key"), "key-two\n").unwrap();
    d.hup();
    let line = d.reload_line(2);
    assert!(line.contains("connectors_changed=examplenet"), "{line}");
    assert!(!line.contains("key-two"), "{line}");

    // Nothing changed: nothing named.
    d.hup();
    let line = d.reload_line(3);
    assert!(line.contains("connectors_changed=-"), "{line}");

    // A setting changed.
    d.write_config(&connector("ex.key", 9));
    d.hup();
    let line = d.reload_line(4);
    assert!(line.contains("connectors_changed=examplenet"), "{line}");
    assert!(line.contains("plugins_changed=-"), "{line}");

    // QA48 I-L3: a new build of its plugin installed (here the same
    // library with a byte appended, which loads as before): the reload
    // loads it and names the connector with the new file's sha256.
    let lib = d
        .path("plugins")
        .join(reckon_tests::plugin_file_name("example"));
    let mut bytes = std::fs::read(&lib).unwrap();
    bytes.push(0);
    std::fs::write(&lib, &bytes).unwrap();
    d.hup();
    let line = d.reload_line(5);
    let sha = reckon::plugins::loader::sha256_hex(&bytes);
    assert!(
        line.contains(&format!("plugins_changed=examplenet@{}", &sha[..12])),
        "{line}"
    );
}

#[test]
fn sighup_says_fx_changed_when_the_rates_csv_changed_in_place() {
    let d = Daemon::start("");
    let rates = |rate: &str| {
        std::fs::write(
            d.path("rates.csv"),
            format!("date,base,quote,rate\n2026-11-02,EUR,USD,{rate}\n"),
        )
        .unwrap()
    };
    rates("1.08");
    d.write_config("[fx]\nrates_csv = \"rates.csv\"\n");
    d.hup();
    let log = d.wait_log("SIGHUP: config reloaded", 1);
    assert!(log.contains("fx_changed=true"), "{log}");
    // Same config text, new CSV content (QA: this said false).
    rates("1.20");
    d.hup();
    let line = d.reload_line(2);
    assert!(line.contains("fx_changed=true"), "{line}");
    d.hup();
    let line = d.reload_line(3);
    assert!(line.contains("fx_changed=false"), "{line}");
}

fn run_and_check(config: &Path) -> ((Option<i32>, String), (Option<i32>, String)) {
    let out = |args: &[&str]| {
        let o = Command::new(reckon_tests::reckon_bin())
            .args(args)
            .arg("--config")
            .arg(config)
            .env_remove(UNSET)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    (out(&["config", "check"]), out(&["run"]))
}

#[test]
fn run_refuses_to_start_with_a_postback_secret_that_config_check_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        Daemon::config_text(
            reckon_tests::free_port(),
            &endpoint("pb", &format!("env:{UNSET}")),
        ),
    )
    .unwrap();
    // `reckon run` on a bad config exits at once (it never binds the port).
    let ((check_code, check_err), (run_code, run_err)) = run_and_check(&config);
    assert_eq!(check_code, Some(1), "{check_err}");
    assert_eq!(run_code, Some(1), "{run_err}");
    assert!(
        check_err.contains(&format!(
            "reckon.toml:8:10: `postbacks[0].secret`: secret not resolvable: environment variable `{UNSET}` is not set"
        )),
        "{check_err}"
    );
    assert_eq!(run_err, check_err);
}

/// `reckon run` lists the file's own errors as `config check` does, with
/// the count (it printed them after `error:` without it). Secrets come in
/// the second round, once the file's errors are fixed (README, `config
/// check`; QA21 B-F5 found the postback section saying "at once").
#[test]
fn run_lists_the_files_errors_as_config_check_does_and_secrets_come_next() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reckon.toml");
    let bad_status = "default_status = \"reversed\"\n";
    let text = Daemon::config_text(
        reckon_tests::free_port(),
        &format!("{}{bad_status}", endpoint("pb", &format!("env:{UNSET}"))),
    );
    std::fs::write(&config, &text).unwrap();
    let ((check_code, check_err), (run_code, run_err)) = run_and_check(&config);
    assert_eq!((check_code, run_code), (Some(1), Some(1)), "{check_err}");
    assert!(
        check_err.contains("`postbacks[0].default_status`: \"reversed\": a new conversion starts")
            && check_err.contains("reckon.toml: 1 error(s); nothing was started")
            && !check_err.contains("secret"),
        "{check_err}"
    );
    assert_eq!(run_err, check_err);
    // Round 2: the secret.
    std::fs::write(&config, text.replace(bad_status, "")).unwrap();
    let ((_, check_err), (_, run_err)) = run_and_check(&config);
    assert!(
        check_err.contains(&format!("`postbacks[0].secret`: secret not resolvable: environment variable `{UNSET}` is not set"))
            && check_err.contains("reckon.toml: 1 error(s); nothing was started"),
        "{check_err}"
    );
    assert_eq!(run_err, check_err);
}

/// QA9 F6: a refused postback's `reason` was logged as a JSON string quoted
/// a second time (`"reason":"\"wrong token\""`); it is plain text.
#[test]
fn a_refused_postback_logs_its_reason_as_text_in_json_logs() {
    let json = "log_format = \"json\"\n\n";
    let d = Daemon::start(json);
    std::fs::write(d.path("pb.key"), "one\n").unwrap();
    d.write_config(&format!("{json}{}", endpoint("pb", "file:pb.key")));
    d.hup();
    d.wait_log("config reloaded", 1);
    assert_eq!(postback(d.port, "pb", "t1", "wrong"), Some(403));
    let log = d.wait_log("postback refused", 1);
    let line = log
        .lines()
        .find(|l| l.contains("postback refused"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let reason = v["fields"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no text reason: {line}"));
    assert!(!reason.is_empty() && !reason.starts_with('"'), "{line}");
    assert!(reason.contains("token"), "{line}");
}

/// QA28-E F6: a refused postback's reason quoted what the sender sent, a
/// secret too (the endpoint's token sent as the amount, or pasted where
/// the endpoint id goes): the log masks every secret the daemon read.
#[test]
fn a_refused_postback_quoting_a_secret_logs_it_masked() {
    let json = "log_format = \"json\"\n\n";
    let d = Daemon::start(json);
    let token = "pbtoken_0123456789abcdef";
    std::fs::write(d.path("pb.key"), format!("{token}\n")).unwrap();
    d.write_config(&format!("{json}{}", endpoint("pb", "file:pb.key")));
    d.hup();
    d.wait_log("config reloaded", 1);
    let bad_amount = format!("/postback/pb?tid=t9&affid=p1&amount={token}&token={token}");
    assert_eq!(status_of(d.port, &bad_amount), Some(400));
    assert_eq!(
        status_of(d.port, &format!("/postback/{token}?tid=t9")),
        Some(404)
    );
    let log = d.wait_log("postback refused", 2);
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("postback refused"))
        .collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert!(!log.contains(token), "{log}");
    assert!(refused.iter().all(|l| l.contains("***")), "{log}");
}

/// `reckon status --config` of the daemon's config file (no `--addr`):
/// exit code, stdout, stderr.
fn reckon_status(d: &Daemon, json: bool) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(reckon_tests::reckon_bin());
    cmd.arg("--config").arg(&d.config).arg("status");
    if json {
        cmd.arg("--json");
    }
    let o = cmd.env_remove("RECKON_CONFIG").output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn status_json(port: u16) -> serde_json::Value {
    let (code, body) = reckon_tests::http_get(port, "/status").unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn metrics(port: u16) -> String {
    reckon_tests::http_get(port, "/metrics").unwrap().1
}

/// A program fed by the postback endpoint `pb` and a file-drop orders
/// connector, with a `draft_schedule`, and KPI summaries.
const SCHEDULED: &str = r#"
[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 0 1 1 *"
[connectors.settings]
mode = "files"
directory = "drop"

[[programs]]
id = "acme"
currency = "USD"
claims = ["pb"]
orders = ["shop"]

[programs.commission]
payout_currency = "USD"
draft_schedule = "0 5 * * *"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"

[kpi]
currency = "USD"
"#;

/// New-user QA16 N1: a SIGHUP rejected for the file's errors showed only
/// in the log; `reckon status` then failed with those errors (exit 1, no
/// `--addr` hint) though the daemon ran on, and `/status` and `/metrics`
/// said nothing. N7: the draft and KPI summary schedules showed nowhere
/// until one ran in the process.
#[test]
fn a_rejected_reload_shows_in_status_metrics_and_reckon_status() {
    let d = Daemon::start("");
    let port = d.port;
    let s = status_json(port);
    assert_eq!(s["config_state"]["last_reload"], serde_json::Value::Null);
    assert_eq!(s["config_state"]["file_differs"], false);
    let m = metrics(port);
    assert!(
        m.contains("reckon_config_reloads_total{outcome=\"rejected\"} 0\n")
            && m.contains("reckon_config_last_reload_success 1\n")
            && m.contains("reckon_config_file_differs 0\n"),
        "{m}"
    );

    // A cron expression of 4 fields.
    std::fs::write(d.path("ex.key"), "k\n").unwrap();
    d.write_config(&connector("ex.key", 7).replace("0 0 1 1 *", "20 */6 * *"));
    d.hup();
    d.wait_log("the new config has errors; the old config keeps running", 1);
    let s = status_json(port);
    let r = &s["config_state"]["last_reload"];
    assert_eq!(
        (&r["outcome"], &r["errors"]),
        (&"rejected".into(), &1.into()),
        "{s}"
    );
    assert!(
        r["first_error"].as_str().is_some_and(
            |e| e.contains("`connectors[0].schedule`: invalid cron expression `20 */6 * *`")
        ),
        "{s}"
    );
    assert_eq!(s["config_state"]["file_differs"], true);
    assert_eq!(s["config_state"]["loaded_at"], s["started_at"]);
    let m = metrics(port);
    assert!(
        m.contains("reckon_config_reloads_total{outcome=\"rejected\"} 1\n")
            && m.contains("reckon_config_last_reload_success 0\n")
            && m.contains("reckon_config_file_differs 1\n"),
        "{m}"
    );
    // `reckon status` reads `listen` from the file's `[daemon]` section and
    // says the file has errors.
    let (code, out, err) = reckon_status(&d, false);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.starts_with(&format!(
            "note: {} has 1 error(s) (first: {}:",
            d.config.display(),
            d.config.display()
        )) && err.contains("`reckon config check` lists every error"),
        "{err}"
    );
    assert!(
        out.contains("  last reload: ")
            && out.contains(
                " REJECTED, 1 error(s); the config loaded before keeps running\n    first: "
            )
            && out.contains("  the file differs from the running config: fix it"),
        "{out}"
    );
    let (code, out, _) = reckon_status(&d, true);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["config_state"]["last_reload"]["outcome"], "rejected");

    // Not TOML at all below `[daemon]`: still found.
    d.write_config("[[connectors]\n");
    let (code, _, err) = reckon_status(&d, false);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("malformed TOML"), "{err}");
    // Another `[daemon]` key wrong: `listen` still finds the daemon
    // (QA17 NEW-2).
    d.write_config("max_concurrent_syncs = \"four\"\n");
    let (code, _, err) = reckon_status(&d, false);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("`daemon.max_concurrent_syncs`"), "{err}");
    // `listen` itself wrong: the address is unknown, and `--addr` is the
    // way.
    std::fs::write(
        &d.config,
        "[daemon]\ndata_dir = \"data\"\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let (code, out, err) = reckon_status(&d, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("`daemon.listen`")
            && err
                .contains("the daemon's address is unknown: `[daemon] listen` cannot be read from")
            && err.contains("ask it with `reckon status --addr HOST:PORT`"),
        "{err}"
    );

    // Fixed, with a program's draft schedule and KPI summaries.
    std::fs::write(d.path("pb.key"), "one\n").unwrap();
    std::fs::create_dir(d.path("drop")).unwrap();
    d.write_config(&format!("{}{SCHEDULED}", endpoint("pb", "file:pb.key")));
    d.hup();
    let line = d.reload_line(1);
    assert!(line.contains("programs_changed=acme"), "{line}");
    let s = status_json(port);
    assert_eq!(s["config_state"]["last_reload"]["outcome"], "ok", "{s}");
    assert_eq!(s["config_state"]["file_differs"], false);
    assert_eq!(
        (
            &s["config_state"]["reloads_ok"],
            &s["config_state"]["reloads_rejected"]
        ),
        (&1.into(), &1.into())
    );
    let m = metrics(port);
    assert!(
        m.contains("reckon_config_reloads_total{outcome=\"ok\"} 1\n")
            && m.contains("reckon_config_last_reload_success 1\n")
            && m.contains("reckon_config_file_differs 0\n"),
        "{m}"
    );
    let drafts = &s["draft_schedules"][0];
    assert_eq!(
        (&drafts["program"], &drafts["schedule"], &drafts["timezone"]),
        (&"acme".into(), &"0 5 * * *".into(), &"UTC".into()),
        "{s}"
    );
    assert!(drafts["next_fire"].is_string(), "{s}");
    assert_eq!(drafts["last_made"], serde_json::Value::Null);
    let kpi = &s["kpi_summaries"];
    assert_eq!(
        (&kpi["enabled"], &kpi["schedule"]),
        (&true.into(), &"0 6 * * *".into()),
        "{s}"
    );
    assert!(kpi["next_fire"].is_string(), "{s}");
    let (code, out, err) = reckon_status(&d, false);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(
        out.contains("statement drafts (draft_schedule):\n  acme: schedule `0 5 * * *` in UTC, ")
            && out.contains("; last made never (none recorded)\n")
            && out.contains("\nkpi summaries: schedule `0 6 * * *` in UTC, ")
            && out.contains("; last written never (none recorded)\n"),
        "{out}"
    );
}

/// QA20 R20-3: a SIGHUP with an emptied or truncated file dropped every
/// connector and program at INFO, and counted as a success. Such a file is
/// now rejected like one with errors (the running config kept, `/status`
/// and `/metrics` say rejected); a reload that removes connectors or
/// programs is loaded, with a WARN naming them.
#[test]
fn a_reload_that_empties_the_config_is_rejected_and_one_that_removes_some_warns() {
    let d = Daemon::start("");
    let port = d.port;
    std::fs::write(d.path("ex.key"), "k\n").unwrap();
    std::fs::write(d.path("pb.key"), "one\n").unwrap();
    std::fs::create_dir(d.path("drop")).unwrap();
    let pb = endpoint("pb", "file:pb.key");
    let shop = SCHEDULED.split("[[programs]]").next().unwrap();
    d.write_config(&format!("{}{pb}{SCHEDULED}", connector("ex.key", 7)));
    d.hup();
    d.reload_line(1);
    let warnings = |needle: &str| -> Vec<String> {
        d.log_text()
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains(needle))
            .map(str::to_owned)
            .collect()
    };
    assert!(
        warnings("SIGHUP: the new config removes").is_empty(),
        "{}",
        d.log_text()
    );

    // A connector removed: loaded, with a WARN naming it.
    d.write_config(&format!("{pb}{SCHEDULED}"));
    d.hup();
    assert!(d.reload_line(2).contains("connectors_removed=examplenet"));
    let w = warnings("SIGHUP: the new config removes");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("SIGHUP: the new config removes connector(s) `examplenet`: their syncs, postbacks (answered 404, which networks do not re-send), reconciliation and drafts stop (what is stored stays); if that was not meant, restore the file and reload again")
            && w[0].contains("connectors_removed=examplenet programs_removed="),
        "{w:?}"
    );
    // A program removed (the connector back).
    d.write_config(&format!("{}{shop}", connector("ex.key", 7)));
    d.hup();
    d.reload_line(3);
    let w = warnings("SIGHUP: the new config removes program(s) `acme`");
    assert_eq!(w.len(), 1, "{}", d.log_text());
    // The endpoint left out with it is named too (QA29-A L3).
    assert!(
        w[0].contains("program(s) `acme` and postback endpoint(s) `pb`: "),
        "{w:?}"
    );

    // Emptied, then cut short after `[daemon]`: rejected, the running
    // config (2 connectors) keeps running.
    for (n, text) in
        [("", 1), (Daemon::config_text(port, "").as_str(), 2)].map(|(t, n)| (n, t.to_owned()))
    {
        std::fs::write(&d.config, &text).unwrap();
        d.hup();
        let log = d.wait_log("the new config has errors; the old config keeps running", n);
        assert!(
            log.contains("the file has no connectors and no programs, while the running config has 2 connector(s) and 0 program(s): it looks empty or truncated"),
            "{log}"
        );
        let s = status_json(port);
        let r = &s["config_state"]["last_reload"];
        assert_eq!(r["outcome"], "rejected", "{s}");
        assert!(
            r["first_error"]
                .as_str()
                .is_some_and(|e| e.contains("restart the daemon, which then runs with it")),
            "{s}"
        );
        assert_eq!(s["config_state"]["reloads_rejected"], n, "{s}");
        let ids: Vec<&str> = s["connectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["examplenet", "shop"], "{s}");
        let m = metrics(port);
        assert!(
            m.contains("reckon_config_last_reload_success 0\n")
                && m.contains(&format!(
                    "reckon_config_reloads_total{{outcome=\"rejected\"}} {n}\n"
                )),
            "{m}"
        );
    }
    assert_eq!(d.log_text().matches("SIGHUP: config reloaded").count(), 3);
}
