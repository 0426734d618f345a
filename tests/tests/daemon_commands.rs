//! Finance commands beside a running daemon: `reckon reconcile`,
//! `statements`, `records` and `kpi` find `reckon run` holding the store and
//! have it run the command on its command socket (`<data_dir>/reckon.sock`).
//! The outputs must be what the same command prints with the daemon stopped.

use reckon::reconcile::synth::{generate, SynthSpec};
use reckon::store::Store;
use reckon_tests::RunningDaemon;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const NOTE: &str = "note: the reckon daemon holds";

fn config_text(port: u16) -> String {
    // `pb` is a postback endpoint feeding the program; DC_SECRET is its
    // token (and the disabled connectors' unused secrets).
    format!(
        r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
output_dir = "out"
listen = "127.0.0.1:{port}"
timezone = "UTC"

[[connectors]]
id = "impact"
plugin = "impact"
schedule = "0 * * * *"
enabled = false
[connectors.settings]
account_sid = "IRsid"
auth_token = {{ secret = "env:DC_SECRET" }}
campaign_ids = [1]

[[connectors]]
id = "everflow"
plugin = "everflow"
schedule = "0 * * * *"
enabled = false
[connectors.settings]
api_key = {{ secret = "env:DC_SECRET" }}

[[connectors]]
id = "awin"
plugin = "impact"
schedule = "0 * * * *"
enabled = false
[connectors.settings]
account_sid = "IRsid"
auth_token = {{ secret = "env:DC_SECRET" }}
campaign_ids = [1]

[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"
enabled = false
[connectors.settings]
mode = "shopify"
base_url = "http://127.0.0.1:9"
access_token = {{ secret = "env:DC_SECRET" }}

[[postbacks]]
id = "pb"
secret = {{ secret = "env:DC_SECRET" }}
default_currency = "USD"

[[programs]]
id = "shop-us"
currency = "USD"
claims = ["impact", "everflow", "awin", "pb"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7

[programs.commission]
payout_currency = "USD"
minimum_payout = "0"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#
    )
}

/// A store with a seeded month (August 2026, long past: every claim is
/// judged for good).
fn seed(dir: &Path) {
    reckon_tests::install_plugins(&dir.join("plugins"), &["impact", "everflow", "orders"]);
    let mut spec = SynthSpec::benchmark(400, 7);
    spec.start = chrono::DateTime::parse_from_rfc3339("2026-08-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut data = generate(&spec);
    // An order of today, for a postback to claim.
    let mut today = data.orders[0].clone();
    today.order_id = "PB-1".into();
    today.alt_ids.clear();
    today.click_ids.clear();
    today.coupon = None;
    today.refunds.clear();
    today.status = plugin_api::OrderStatus::Paid;
    today.amount.amount = "80.00".parse().unwrap();
    today.created_at = chrono::Utc::now() - chrono::Duration::hours(1);
    data.orders.push(today);
    let store = Store::open(&dir.join("data")).unwrap();
    reckon_tests::store_synth(&store, &data, spec.start);
}

/// `reckon run` on `config` (its log in a new file beside it), once it
/// has logged `daemon started`.
fn start_daemon(config: &Path) -> RunningDaemon {
    let log = config.with_file_name(format!(
        "run-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut command = reckon_tests::run_command(config);
    command.env("DC_SECRET", "not-used");
    let mut d = RunningDaemon::spawn(&mut command, log);
    d.wait_for_log(&["daemon started"]);
    d
}

fn reckon_in(cwd: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(reckon_tests::reckon_bin())
        .current_dir(cwd)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run reckon")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `reckon reconcile report` of `shop-us` for this month, as CSV.
fn this_months_report(root: &Path, config: &Path) -> String {
    months_report(
        root,
        config,
        &chrono::Utc::now().format("%Y-%m").to_string(),
    )
}

/// `reckon reconcile report` of `shop-us` for `month`, as CSV.
fn months_report(root: &Path, config: &Path, month: &str) -> String {
    let args = ["reconcile", "report", "--program", "shop-us", "--period"];
    let out = reckon_in(
        root,
        config,
        &[&args[..], &[month, "--format", "csv"]].concat(),
    );
    text(&out.stdout)
}

#[test]
fn finance_commands_run_in_the_daemon_with_the_outputs_of_a_stopped_one() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("reckon.toml");
    std::fs::write(&config, config_text(reckon_tests::free_port())).unwrap();
    seed(root);
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let period = ["--program", "shop-us", "--period", "2026-08"];
    let reckon = |args: &[&str]| reckon_in(&elsewhere, &config, args);

    let daemon = start_daemon(&config);
    let socket = root.join("data/reckon.sock");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the owner's only");

    // A run: writes decisions through the daemon's store.
    let out = reckon(&["reconcile"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(NOTE), "{}", text(&out.stderr));
    let run = text(&out.stdout);
    assert!(run.starts_with("shop-us: full run, "), "{run}");

    // Statements: generate reconciles first (nothing new: incremental).
    let out = reckon(&[&["statements", "generate"][..], &period].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let generated = text(&out.stdout);
    assert!(
        generated.contains("reconciled shop-us first: incremental run, 0 claims judged"),
        "{generated}"
    );
    assert!(
        generated.contains("shop-us 2026-08: draft version 1"),
        "{generated}"
    );
    let statements = root.join("out/statements/shop-us/2026-08");
    assert!(statements.join("summary.csv").exists());

    // A relative --out is the client's, not the daemon's working directory.
    let out = reckon(
        &[
            &["reconcile", "report"][..],
            &period,
            &["--format", "csv", "--out", "report.csv"],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = std::fs::read_to_string(elsewhere.join("report.csv")).unwrap();
    assert!(report.contains("duplicate"), "{report}");
    // QA20 R20-2: `--out /dev/stdout` is the client's standard output (the
    // daemon's own, where it went, is not the user's), and a device's
    // write error is the command's error.
    let to = |path: &str| {
        reckon(
            &[
                &["reconcile", "report"][..],
                &period,
                &["--format", "csv", "--out", path],
            ]
            .concat(),
        )
    };
    let out = to("/dev/stdout");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout) == report,
        "printed {} bytes, not the report's {}",
        out.stdout.len(),
        report.len()
    );
    let out = reckon(&[
        "kpi",
        "--period",
        "2026-08",
        "--by",
        "source",
        "--format",
        "csv",
        "--out",
        "/dev/stdout",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("source,"),
        "{}",
        text(&out.stdout)
    );
    let out = to("/dev/full");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("error: cannot write /dev/full: No space left on device"),
        "{}",
        text(&out.stderr)
    );

    // QA30-C L6: stdout on a full device is said as such (it blamed the
    // command socket), in CSV and JSON lines, and without the daemon too
    // (below).
    let to_full_stdout = |args: &[&str]| {
        Command::new(reckon_tests::reckon_bin())
            .current_dir(&elsewhere)
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .expect("run reckon")
    };
    let full_stdout_is_named = |out: Output| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(
                "error: cannot write the command's output to stdout: No space left on device"
            ) && !stderr.contains("reckon.sock"),
            "{stderr}"
        );
    };
    let to_stdout: [&[&str]; 3] = [
        &["records", "export", "--kind", "orders"],
        &["records", "export", "--kind", "orders", "--format", "csv"],
        &[
            "kpi", "--period", "2026-08", "--by", "source", "--format", "csv",
        ],
    ];
    for args in to_stdout {
        let out = to_full_stdout(args);
        assert!(text(&out.stderr).contains(NOTE), "{}", text(&out.stderr));
        full_stdout_is_named(out);
    }

    // Exit codes travel: a tampered file fails verify.
    let show = reckon(&[&["statements", "show"][..], &period].concat());
    assert!(show.status.success(), "{}", text(&show.stderr));
    // The instant in full, as `reconcile report --as-of` takes it
    // (QA32-D F4: it was cut to the second, with a space and `UTC`).
    let shown = text(&show.stdout);
    let when = shown
        .split(", generated ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("{shown}"));
    let at = chrono::DateTime::parse_from_rfc3339(when).unwrap_or_else(|e| panic!("{e}: {when}"));
    assert!(
        when.contains('.') || at.timestamp_subsec_nanos() == 0,
        "{when}"
    );
    let verify = reckon(&[&["statements", "verify"][..], &period].concat());
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    std::fs::write(statements.join("summary.csv"), "tampered\n").unwrap();
    let tampered = reckon(&[&["statements", "verify"][..], &period].concat());
    assert_eq!(tampered.status.code(), Some(1));
    assert!(text(&tampered.stdout).contains("MISMATCH"));
    // Regenerating repairs the draft.
    assert!(reckon(&[&["statements", "generate"][..], &period].concat())
        .status
        .success());

    // Errors of the command come back as errors.
    let out = reckon(&[
        "statements",
        "show",
        "--program",
        "nope",
        "--period",
        "2026-08",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no program `nope` in [[programs]]"),
        "{}",
        text(&out.stderr)
    );
    // Usage errors are clap's, as without the daemon.
    let out = reckon(&["kpi", "--period", "August"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("expected YYYY-MM"),
        "{}",
        text(&out.stderr)
    );

    // A reader that stops early ends the export; the daemon carries on.
    let mut head = Command::new(reckon_tests::reckon_bin())
        .current_dir(&elsewhere)
        .arg("--config")
        .arg(&config)
        .args(["records", "export", "--kind", "orders"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(head.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"source\":\"shop\""), "{first}");
    let _ = head.wait();

    let kpi_through_daemon = reckon(&[
        "kpi", "--period", "2026-08", "--by", "source", "--format", "csv",
    ]);
    assert!(
        kpi_through_daemon.status.success(),
        "{}",
        text(&kpi_through_daemon.stderr)
    );
    let export_through_daemon = reckon(&[
        "records",
        "export",
        "--kind",
        "conversions",
        "--format",
        "csv",
    ]);
    assert!(export_through_daemon.status.success());
    assert!(text(&export_through_daemon.stderr).contains("record(s) exported"));
    let show_through_daemon = reckon(&[&["statements", "show"][..], &period].concat());

    let log = daemon.stop();
    assert!(log.contains("running a command for a client"), "{log}");
    assert!(!socket.exists(), "the socket is removed at exit");

    for args in to_stdout {
        full_stdout_is_named(to_full_stdout(args));
    }

    // The same commands with the daemon stopped print the same.
    let local = reckon(&[&["statements", "show"][..], &period].concat());
    assert!(!text(&local.stderr).contains(NOTE));
    assert_eq!(text(&local.stdout), text(&show_through_daemon.stdout));
    let local = reckon(&[
        "kpi", "--period", "2026-08", "--by", "source", "--format", "csv",
    ]);
    // Each run states its own time (`generated_at`, QA34a A-M2).
    assert_eq!(
        reckon_tests::kpi_csv_undated(&text(&local.stdout)),
        reckon_tests::kpi_csv_undated(&text(&kpi_through_daemon.stdout))
    );
    let local = reckon(&[
        "records",
        "export",
        "--kind",
        "conversions",
        "--format",
        "csv",
    ]);
    assert_eq!(local.stdout, export_through_daemon.stdout);
}

#[test]
fn a_socket_left_by_a_killed_daemon_is_ignored_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("reckon.toml");
    std::fs::write(&config, config_text(reckon_tests::free_port())).unwrap();
    seed(root);
    let socket = root.join("data/reckon.sock");

    let mut daemon = start_daemon(&config);
    daemon.kill();
    assert!(socket.exists(), "kill -9 leaves the socket file");

    // Nobody answers: the command opens the store itself.
    let out = reckon_in(root, &config, &["reconcile"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(NOTE), "{}", text(&out.stderr));

    // A new daemon replaces the stale socket and answers on it.
    let daemon = start_daemon(&config);
    let out = reckon_in(root, &config, &["reconcile"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(NOTE), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("incremental run, 0 claims judged"),
        "{}",
        text(&out.stdout)
    );
    daemon.stop();
}

#[test]
fn a_postback_claim_is_judged_without_waiting_for_a_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("reckon.toml");
    let port = reckon_tests::free_port();
    std::fs::write(&config, config_text(port)).unwrap();
    seed(root);
    let daemon = start_daemon(&config);
    // Judge the seeded month first, so the postback's run is incremental.
    assert!(reckon_in(root, &config, &["reconcile"]).status.success());

    let answer = reckon_tests::http_get(
        port,
        "/postback/pb?tid=pb-claim-1&oid=PB-1&affid=p9&amount=80.00&token=not-used",
    );
    assert_eq!(answer.map(|a| a.0), Some(200), "{}", daemon.log_text());

    // No sync runs (every connector is disabled): only the postback hook
    // can judge the claim. Poll the month's report through the daemon.
    let report = reckon_tests::poll_until(Duration::from_secs(30), || {
        // The counts by network, partner and outcome.
        let csv = this_months_report(root, &config);
        csv.lines()
            .find(|l| l.starts_with("pb,p9,"))
            .map(str::to_owned)
    });
    let report = report.unwrap_or_else(|| {
        panic!(
            "the postback claim was never judged:\n{}",
            daemon.log_text()
        )
    });
    // Matched (payable only after its lock date, weeks away).
    assert!(report.starts_with("pb,p9,,matched,USD,1,"), "{report}");
    // `reckon status` shows the program's last run: the postback's.
    let status = text(&reckon_in(root, &config, &["status"]).stdout);
    assert!(
        status.contains(" incremental run in ")
            && status.contains(" s: 1 claims judged (0 of them payable), 1 decisions changed (1 with a new outcome, basis or payable flag); ")
            && status.contains(" payable in the program"),
        "{status}"
    );
    let (_, metrics) = reckon_tests::http_get(port, "/metrics").unwrap();
    for line in [
        "reckon_reconcile_runs_total{program=\"shop-us\",kind=\"full\",outcome=\"ok\"} 1",
        "reckon_reconcile_runs_total{program=\"shop-us\",kind=\"incremental\",outcome=\"ok\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    let log = daemon.stop();
    assert!(
        log.contains("reconciled program program=shop-us full=false judged=1 changed=1"),
        "{log}"
    );
}

/// QA44c C-L2: a decision that changes with time alone (here the 7 days'
/// grace for a claim whose order never came) was re-judged only by a run a
/// sync or postback started: with every connector failing, or disabled as
/// here, `status` and the reports kept `awaiting_order` for good. The
/// daemon's clock re-judges it once it comes due (`rejudge_interval_secs
/// = 1` after the program's last run). The interval is set by a SIGHUP,
/// which wakes the clock (QA47 R-M1: lowered from a day, it applied only
/// once the old day had passed).
#[test]
fn a_grace_period_that_ends_is_rejudged_on_the_daemons_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("reckon.toml");
    let port = reckon_tests::free_port();
    let with_interval = |secs: u32| {
        config_text(port).replacen(
            "timezone = \"UTC\"\n",
            &format!("timezone = \"UTC\"\nrejudge_interval_secs = {secs}\n"),
            1,
        )
    };
    std::fs::write(&config, with_interval(86_400)).unwrap();
    seed(root);
    let mut daemon = start_daemon(&config);
    assert!(reckon_in(root, &config, &["reconcile"]).status.success());

    // A claim whose order is unknown, its grace ending 10 s from now.
    let occurred = chrono::Utc::now() - chrono::Duration::days(7) + chrono::Duration::seconds(10);
    let answer = reckon_tests::http_get(
        port,
        &format!(
            "/postback/pb?tid=pb-late-1&oid=NO-SUCH-ORDER&affid=p9&amount=80.00&occurred_at={}&token=not-used",
            occurred.timestamp()
        ),
    );
    assert_eq!(answer.map(|a| a.0), Some(200), "{}", daemon.log_text());
    let month = occurred.format("%Y-%m").to_string();
    let line = |csv: &str| {
        (csv.lines())
            .find(|l| l.starts_with("pb,p9,"))
            .map(str::to_owned)
    };
    // The postback's own run: still within the grace.
    daemon.wait_for_log(&["reconciled program program=shop-us full=false judged=1 changed=1"]);
    let first = line(&months_report(root, &config, &month)).unwrap_or_default();
    assert!(first.starts_with("pb,p9,,awaiting_order,USD,1,"), "{first}");
    std::fs::write(&config, with_interval(1)).unwrap();
    daemon.hup();
    daemon.wait_for_log(&["rejudge_interval_secs=86400 -> 1"]);

    // No sync runs and no postback comes: the clock re-judges it.
    daemon.wait_for_log(&["reconcile: decisions came due with time"]);
    let then = reckon_tests::poll_until(Duration::from_secs(20), || {
        line(&months_report(root, &config, &month)).filter(|l| l.contains(",no_order,"))
    });
    let then = then.unwrap_or_else(|| panic!("not re-judged:\n{}", daemon.log_text()));
    assert!(then.starts_with("pb,p9,,no_order,USD,1,"), "{then}");
    let (_, metrics) = reckon_tests::http_get(port, "/metrics").unwrap();
    let runs =
        "reckon_reconcile_runs_total{program=\"shop-us\",kind=\"incremental\",outcome=\"ok\"} ";
    assert!(metrics.contains(&format!("{runs}2")), "{metrics}");
    let log = daemon.stop();
    assert_eq!(
        log.matches("reconcile: decisions came due with time")
            .count(),
        1,
        "{log}"
    );
}

/// QA28-E F12 through the daemon: `pb` mirrors `everflow`, whose API
/// already reported the sale on order PB-1 as reversed; the postback's copy
/// of it, arriving approved, is judged reversed with it, not paid.
#[test]
fn a_postback_copy_of_a_reversed_api_claim_is_judged_reversed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("reckon.toml");
    let port = reckon_tests::free_port();
    let text_with_mirror = config_text(port).replace(
        "default_currency = \"USD\"\n",
        "default_currency = \"USD\"\nmirrors = \"everflow\"\n",
    );
    std::fs::write(&config, text_with_mirror).unwrap();
    seed(root);
    {
        let store = Store::open(&root.join("data")).unwrap();
        let now = chrono::Utc::now();
        let api = plugin_api::Conversion {
            source: "everflow".into(),
            external_id: "ef-9001".into(),
            order_id: Some("PB-1".into()),
            click_id: None,
            clicked_at: None,
            partner_id: "p9".into(),
            partner_name: None,
            campaign_id: None,
            event_type: plugin_api::EventType::Sale,
            occurred_at: now - chrono::Duration::minutes(50),
            sale_amount: Some(plugin_api::Money::new("80.00".parse().unwrap(), "USD")),
            commission: Some(plugin_api::Money::new("8.00".parse().unwrap(), "USD")),
            status: plugin_api::ConversionStatus::Reversed,
            status_changed_at: Some(now - chrono::Duration::minutes(10)),
            locked_at: None,
            coupon: None,
            utm: Default::default(),
        };
        store
            .commit_page(
                "everflow",
                &[plugin_api::Record::Conversion(api)],
                None,
                now,
            )
            .unwrap();
        store.flush().unwrap();
    }
    let daemon = start_daemon(&config);
    assert!(reckon_in(root, &config, &["reconcile"]).status.success());

    let answer = reckon_tests::http_get(
        port,
        "/postback/pb?tid=pb-copy-1&oid=PB-1&affid=p9&amount=80.00&status=approved&token=not-used",
    );
    assert_eq!(answer.map(|a| a.0), Some(200), "{}", daemon.log_text());
    let report = reckon_tests::poll_until(Duration::from_secs(30), || {
        let csv = this_months_report(root, &config);
        let line = csv.lines().find(|l| l.starts_with("pb,p9,"))?;
        Some((line.to_owned(), csv))
    });
    let (line, csv) = report.unwrap_or_else(|| {
        panic!(
            "the postback claim was never judged:\n{}",
            daemon.log_text()
        )
    });
    assert!(line.starts_with("pb,p9,,network_reversed,USD,1,"), "{csv}");
    assert!(
        csv.contains("this postback is a copy of everflow/ef-9001 (`pb` mirrors `everflow`), which the network reversed"),
        "{csv}"
    );
    daemon.stop();
}

/// A daemon with one ExampleNet connector that never fires on its own;
/// its API key is the daemon's secret `DC_SECRET`.
fn example_config(root: &Path, base_url: &str) -> PathBuf {
    reckon_tests::install_plugins(&root.join("plugins"), &["example"]);
    let config = root.join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"
timezone = "UTC"

[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "0 0 1 1 *"
timezone = "UTC"
isolation = "subprocess"

[connectors.settings]
api_key = {{ secret = "env:DC_SECRET" }}
page_size = 7
base_url = "{base_url}"
"#,
            port = reckon_tests::free_port()
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_backfill_runs_in_the_daemon_with_its_secrets_and_shows_as_the_last_run() {
    use reckon_tests::fakes::example::{router, ExampleApi, ExampleData};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(),
    );
    let api = ExampleApi::new(ExampleData::generate(3, 45, from, to), "not-used");
    let server = reckon_tests::fakes::server::FakeServer::start(router(api.clone()));
    let config = example_config(root, &server.base_url);
    let daemon = start_daemon(&config);
    let (from, to) = (from.to_string(), to.to_string());
    let backfill = ["sync", "examplenet", "--from", &from, "--to", &to];

    // The client has no secret: the daemon's is used.
    let out = Command::new(reckon_tests::reckon_bin())
        .current_dir(root)
        .arg("--config")
        .arg(&config)
        .args(backfill)
        .env_remove("DC_SECRET")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(NOTE), "{stderr}");
    assert!(
        stderr.contains("page committed: stream conversions"),
        "{stderr}"
    );
    let created = api.data.created_in(
        chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(),
    );
    assert!(
        stdout.starts_with("examplenet: ok: 1 window(s), ")
            && stdout.contains(&format!("records {} new", created.len())),
        "{stdout}"
    );
    // Stored in the daemon's store: the export (also run by the daemon)
    // lists them.
    let export = reckon_in(
        root,
        &config,
        &["records", "export", "--kind", "conversions"],
    );
    assert_eq!(text(&export.stdout).lines().count(), created.len());

    // The same backfill again changes nothing; recorded, its cassette lands
    // in the client's working directory.
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let again = reckon_in(
        &elsewhere,
        &config,
        &[&backfill[..], &["--record", "cassettes"]].concat(),
    );
    assert!(
        elsewhere
            .join(format!("cassettes/examplenet_{from}_{to}.json"))
            .exists(),
        "{}",
        text(&again.stdout)
    );
    assert!(
        text(&again.stdout).contains(&format!(
            "records 0 new, 0 changed, {} unchanged",
            created.len()
        )),
        "{}",
        text(&again.stdout)
    );

    // With --log-format json, the client's stderr is JSON lines only, as
    // for a local sync: the note, each window and page, and an error.
    for args in [&backfill[..], &["sync", "nope"][..]] {
        let out = reckon_in(
            root,
            &config,
            &[&["--log-format", "json"][..], args].concat(),
        );
        let stderr = text(&out.stderr);
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{stderr}")))
            .collect();
        assert!(lines.len() >= 2, "{stderr}");
        assert!(
            lines.iter().all(|v| v["fields"]["message"].is_string()),
            "{stderr}"
        );
    }

    // Other commands' notes stay text: the log format is run's and sync's
    // (QA9 F4).
    let out = reckon_in(
        root,
        &config,
        &[
            "--log-format",
            "json",
            "records",
            "checkpoints",
            "--source",
            "examplenet",
        ],
    );
    assert!(text(&out.stderr).starts_with(NOTE), "{}", text(&out.stderr));

    // `reckon status` shows the backfill as the connector's last run.
    let status = reckon_in(root, &config, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let last = &status["connectors"][0]["last_run"];
    assert_eq!(last["outcome"], "success", "{status}");
    assert_eq!(last["records_unchanged"], created.len(), "{status}");

    // An unknown connector is named.
    let out = reckon_in(root, &config, &["sync", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the running daemon has no connector `nope`"),
        "{}",
        text(&out.stderr)
    );
    let log = daemon.stop();
    assert!(log.contains("sync for a client done"), "{log}");
}

#[test]
fn a_backfill_whose_client_goes_away_stops_and_frees_its_connector() {
    use reckon_tests::fakes::example::{router, ExampleApi, ExampleData};
    use std::sync::atomic::Ordering;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    let api = ExampleApi::new(ExampleData::generate(4, 20, day, day), "not-used");
    // The first request gets a 429 with a 10-minute Retry-After.
    api.faults.throttle.store(1, Ordering::SeqCst);
    api.faults.retry_after_secs.store(600, Ordering::SeqCst);
    let server = reckon_tests::fakes::server::FakeServer::start(router(api.clone()));
    let config = example_config(root, &server.base_url);
    let daemon = start_daemon(&config);
    let day = day.to_string();
    let backfill = ["sync", "examplenet", "--from", &day, "--to", &day];

    let mut client = Command::new(reckon_tests::reckon_bin())
        .current_dir(root)
        .arg("--config")
        .arg(&config)
        .args(backfill)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let throttled = reckon_tests::poll_until(Duration::from_secs(20), || {
        (api.requests.load(Ordering::SeqCst) >= 1).then_some(())
    });
    assert!(throttled.is_some(), "{}", daemon.log_text());

    // While it waits, the connector is busy for everyone else.
    let busy = reckon_in(root, &config, &backfill);
    // 75 (EX_TEMPFAIL): busy, run it again later (QA35a L5).
    assert_eq!(busy.status.code(), Some(75));
    assert!(
        text(&busy.stderr).contains("connector `examplenet` is running now"),
        "{}",
        text(&busy.stderr)
    );
    // A checkpoint reset too: the running sync would write it back (QA9 F1).
    let reset = reckon_in(
        root,
        &config,
        &[
            "records",
            "checkpoints",
            "--source",
            "examplenet",
            "--reset",
        ],
    );
    assert_eq!(reset.status.code(), Some(75), "{}", text(&reset.stdout));
    assert!(
        text(&reset.stderr).contains(
            "connector `examplenet` is running now (a scheduled run or a `reckon sync`), and its run would write the checkpoint back"
        ),
        "{}",
        text(&reset.stderr)
    );

    // SIGTERM (or Ctrl-C) on the client ends the wait at once; the client
    // prints what happened and exits with the daemon's status (QA29-A L5:
    // it exited 143 without a word).
    let term = Command::new("kill")
        .args(["-TERM", &client.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exited = reckon_tests::poll_until(Duration::from_secs(20), || client.try_wait().unwrap());
    let client_status = exited.unwrap_or_else(|| {
        let _ = client.kill();
        panic!("the client did not end after SIGTERM")
    });
    let said = client.wait_with_output().unwrap();
    let said = format!("{}{}", text(&said.stdout), text(&said.stderr));
    assert!(
        said.contains("stopping after the current page commits")
            && said.contains("stopped after committing its current page"),
        "{said}"
    );
    assert_eq!(client_status.code(), Some(1), "{said}");
    let ended = reckon_tests::poll_until(Duration::from_secs(20), || {
        let log = daemon.log_text();
        log.contains("sync for a client stopped after its current page")
            .then_some(log)
    });
    let log = ended.unwrap_or_else(|| panic!("the sync went on:\n{}", daemon.log_text()));
    assert!(
        // Ops QA32a L1: what the daemon's next start does with it, not
        // "must be run again" (the start ran it again too).
        log.contains("stopped after committing its current page (the daemon is shutting down, or the command that ran the sync was interrupted); what it committed is kept: a scheduled run resumes from the checkpoints; a backfill (`reckon sync --from/--to`) is run again over its own days by the daemon, at the connector's next fire or the daemon's next start, as long as it is still the connector's last run: `reckon sync` without dates before then replaces it (with a warning naming its days), and then only running the backfill again pulls the rest of its days"),
        "{log}"
    );
    // Stopped on purpose: no WARN (QA19).
    assert!(!log.contains("sync for a client failed"), "{log}");

    // The run was recorded `interrupted`, and the connector is free again.
    let status = reckon_in(root, &config, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["connectors"][0]["last_run"]["outcome"], "interrupted",
        "{status}"
    );
    let out = reckon_in(root, &config, &backfill);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("records 20 new"),
        "{}",
        text(&out.stdout)
    );
    daemon.stop();
}

#[test]
fn a_data_dir_too_deep_for_a_socket_address_still_gets_its_commands_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // A socket address holds at most 107 bytes; this path alone is longer.
    let deep = format!("{}/{}", "d".repeat(60), "e".repeat(60));
    let config = root.join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"{deep}\"\nlisten = \"127.0.0.1:{}\"\n",
            reckon_tests::free_port()
        ),
    )
    .unwrap();
    let daemon = start_daemon(&config);
    assert!(root.join(&deep).join("reckon.sock").exists());
    let out = reckon_in(root, &config, &["records", "export", "--kind", "orders"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(NOTE), "{}", text(&out.stderr));
    daemon.stop();
}

#[test]
fn a_garbage_request_or_a_silent_client_does_not_disturb_the_daemon() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:{}\"\n",
            reckon_tests::free_port()
        ),
    )
    .unwrap();
    let daemon = start_daemon(&config);
    let socket = root.join("data/reckon.sock");
    // A client that connects and goes away without a word.
    drop(std::os::unix::net::UnixStream::connect(&socket).unwrap());
    // One that sends something else than a request: told so, exit code 2.
    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert_eq!(answer[0], b'e', "{answer:?}");
    assert!(
        text(&answer).contains("error: unreadable request"),
        "{}",
        text(&answer)
    );
    assert_eq!(&answer[answer.len() - 6..], &[b'x', 1, 0, 0, 0, 2]);
    // One over the size limit, without a newline: told so, not that its
    // JSON is wrong (QA28-E F10).
    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let _ = s.write_all(&vec![b'A'; 3 << 20]);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        text(&answer).contains("error: the request is larger than 1024 KiB"),
        "{}",
        text(&answer)
    );
    // The daemon still runs commands.
    let out = reckon_in(root, &config, &["records", "export", "--kind", "orders"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(NOTE));
    daemon.stop();
}

/// QA33-A L3: a command from a client of another release (or one of
/// before clients sent theirs) runs with the daemon's code; the daemon
/// says so first. A client of its own release gets no note.
#[test]
fn a_client_of_another_release_is_told_which_release_runs_its_command() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:{}\"\n",
            reckon_tests::free_port()
        ),
    )
    .unwrap();
    let daemon = start_daemon(&config);
    let socket = root.join("data/reckon.sock");
    let ask = |version: Option<&str>| {
        let request = reckon::cli::remote::Request {
            argv: ["records", "export", "--kind", "orders"]
                .map(String::from)
                .to_vec(),
            cwd: root.to_path_buf(),
            config: config.clone(),
            version: version.map(String::from),
        };
        let stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = reckon::cli::remote::exchange(stream, &request, &mut out, &mut err).unwrap();
        (code, text(&err))
    };
    let note = "note: the daemon runs reckon ";
    // The test binary is built from the daemon's sources: the same release.
    let (code, err) = ask(Some(reckon::VERSION));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(note), "{err}");
    let (code, err) = ask(None);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with(&format!(
            "{note}{}; this command is a release of before 2026-12-01: the daemon's release runs it (after an upgrade, restart the daemon with the new binary)\n",
            reckon::VERSION
        )),
        "{err}"
    );
    let (_, err) = ask(Some("0.0.9 (abc1234 2026-11-29 06:00 UTC)"));
    assert!(
        err.contains("; this command is reckon 0.0.9 (abc1234 2026-11-29 06:00 UTC): "),
        "{err}"
    );
    daemon.stop();
}
