//! `reckon sync` and the global `--log-format` through the real binary:
//! regression tests for a backfill reaching into the future, an unchecked
//! log format, `sync` ignoring the configured log format, errors in text
//! among JSON log lines, and log lines coloured despite `NO_COLOR`.

mod core_support;

use core_support::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn fake() -> (Arc<FakeData>, reckon_tests::fakes::server::FakeServer) {
    let data = Arc::new(FakeData {
        per_day: 3,
        requests: Default::default(),
    });
    let server = reckon_tests::fakes::server::FakeServer::start(router(data.clone()));
    (data, server)
}

/// `--to` after today (in the connector's timezone) is refused before any
/// request, naming the flag; it used to run windows into the future.
#[test]
fn sync_refuses_a_to_date_after_today() {
    let (data, server) = fake();
    let s = setup(&server.base_url, "0 0 * * *", "");
    let out = reckon(&s.config)
        .args([
            "sync",
            "examplenet",
            "--from",
            "2026-01-01",
            "--to",
            "2999-12-31",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: connector `examplenet`: --to 2999-12-31 is after today (")
            && stderr
                .contains("in the connector's timezone UTC); a backfill ends today at the latest"),
        "{stderr}"
    );
    assert_eq!(data.requests.load(Ordering::SeqCst), 0);
    // A year typo the other way (QA finding: `--from 0001-01-01` planned
    // 2028 windows against the platform), and days that contradict each
    // other: usage errors (2), as in `kpi`, before any config is read
    // (QA30-C L3: they were 1). `--to` after today depends on the
    // connector's timezone: the command's error, 1, above.
    for (from, to, says) in [
        (
            "0001-01-01",
            "2026-01-01",
            "--from 0001-01-01 is before 2000-01-01, the earliest day reckon stores",
        ),
        (
            "2026-01-02",
            "2026-01-01",
            "--from 2026-01-02 is after --to 2026-01-01",
        ),
    ] {
        let out = reckon(&s.config)
            .args(["sync", "examplenet", "--from", from, "--to", to])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("error: {says}")) && stderr.contains("Usage: reckon sync"),
            "{stderr}"
        );
        // Before the config: a connector that is not there is not named.
        let out = reckon(&s.config)
            .args(["sync", "nope", "--from", from, "--to", to])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
    }
    assert_eq!(data.requests.load(Ordering::SeqCst), 0);
    // Up to today is fine.
    let today = chrono::Utc::now().date_naive().to_string();
    let out = reckon(&s.config)
        .args(["sync", "examplenet", "--from", &today, "--to", &today])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An unknown `--log-format` is a usage error naming the valid values.
#[test]
fn an_unknown_log_format_is_refused() {
    let s = setup("http://127.0.0.1:9", "0 0 * * *", "");
    let out = reckon(&s.config)
        .args(["--log-format", "xml", "run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'xml' for '--log-format <LOG_FORMAT>'")
            && stderr.contains("[possible values: human, json]"),
        "{stderr}"
    );
}

fn json_log_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("level").is_some())
        .collect()
}

/// `sync` logs in the format `--log-format` or `[daemon] log_format` asks
/// for, like `run` (it used to log human lines whatever was asked).
#[test]
fn sync_honours_the_log_format_flag_and_the_config() {
    let (_data, server) = fake();
    let today = chrono::Utc::now().date_naive().to_string();
    let sync = |config: &std::path::Path, flag: Option<&str>| {
        let mut c = reckon(config);
        c.env("RUST_LOG", "info");
        if let Some(f) = flag {
            c.args(["--log-format", f]);
        }
        let out = c
            .args(["sync", "examplenet", "--from", &today, "--to", &today])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let human = setup(&server.base_url, "0 0 * * *", "");
    let stderr = sync(&human.config, Some("json"));
    let lines = json_log_lines(&stderr);
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "sync started"),
        "{lines:?}"
    );
    // Every stderr line is a JSON object, progress included.
    assert_eq!(lines.len(), stderr.lines().count(), "{stderr}");
    assert!(
        lines.iter().any(
            |v| v["fields"]["message"] == "page committed" && v["fields"]["stream"].is_string()
        ),
        "{lines:?}"
    );
    let stderr = sync(&human.config, None);
    assert!(
        json_log_lines(&stderr).is_empty() && stderr.contains("sync started"),
        "{stderr}"
    );

    let json = setup(&server.base_url, "0 0 * * *", "log_format = \"json\"");
    let lines = json_log_lines(&sync(&json.config, None));
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "sync started"),
        "{lines:?}"
    );
    // The flag wins over the config.
    let stderr = sync(&json.config, Some("human"));
    assert!(json_log_lines(&stderr).is_empty(), "{stderr}");
}

/// The messages of `stderr`, each of whose lines must be a JSON log line
/// of level ERROR.
fn json_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in {stderr}"));
            assert_eq!(v["level"], "ERROR", "{l}");
            v["fields"]["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// QA30-C L1: with JSON logs (`--log-format json` or `[daemon] log_format =
/// "json"`), the error that stops `sync` or `run` before it starts (an
/// unknown connector, an unset `env:` secret, errors in the file) was
/// plain `error:` text among the JSON lines. It is JSON lines now, so
/// stderr is one JSON object per line as the README says; in text it is
/// as it was.
#[test]
fn errors_before_a_sync_or_the_daemon_starts_follow_the_log_format() {
    let s = setup("http://127.0.0.1:9", "0 0 * * *", "");
    let failed = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        stderr
    };
    let messages = json_errors(&failed(reckon(&s.config).args([
        "--log-format",
        "json",
        "sync",
        "nope",
    ])));
    assert!(
        messages.len() == 1 && messages[0].starts_with("no connector `nope` in "),
        "{messages:?}"
    );
    let stderr = failed(reckon(&s.config).args(["sync", "nope"]));
    assert!(
        stderr.starts_with("error: no connector `nope` in "),
        "{stderr}"
    );
    // A usage error too (exit 2), given the flag: clap's first line.
    let out = reckon(&s.config)
        .args(["--log-format", "json", "sync", "examplenet"])
        .args(["--from", "2026-01-02", "--to", "2026-01-01"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        json_errors(&stderr),
        ["--from 2026-01-02 is after --to 2026-01-01"]
    );
    for args in [&["sync", "examplenet"][..], &["run"]] {
        let messages = json_errors(&failed(
            reckon(&s.config)
                .env_remove("RECKON_TEST_EXAMPLE_KEY")
                .args(["--log-format", "json"])
                .args(args),
        ));
        assert!(
            messages[0].contains("`connectors[0].settings.api_key`: ")
                && messages[0].contains("RECKON_TEST_EXAMPLE_KEY"),
            "{args:?}: {messages:?}"
        );
    }
    // The file's own errors, with the format set in the file (read even
    // though the file is refused), and the flag over it.
    let json = setup(
        "http://127.0.0.1:9",
        "0 0 * * *",
        "log_format = \"json\"\nmax_concurrent_syncs = 0",
    );
    for args in [&["sync", "examplenet"][..], &["run"]] {
        let messages = json_errors(&failed(reckon(&json.config).args(args)));
        assert!(
            messages[0].contains("`daemon.max_concurrent_syncs`: must be at least 1"),
            "{args:?}: {messages:?}"
        );
        let stderr = failed(
            reckon(&json.config)
                .args(["--log-format", "human"])
                .args(args),
        );
        assert!(
            !stderr.contains('{')
                && stderr.contains("`daemon.max_concurrent_syncs`: must be at least 1"),
            "{args:?}: {stderr}"
        );
    }
    let messages = json_errors(&failed(reckon(&json.config).arg("run")));
    assert!(
        messages
            .last()
            .is_some_and(|m| m.ends_with("reckon.toml: 1 error(s); nothing was started")),
        "{messages:?}"
    );
}

/// Runs `cmd` with its stderr on a terminal (a pseudo-terminal this test
/// reads); returns the exit status and what the terminal showed.
fn on_terminal(mut cmd: std::process::Command) -> (std::process::ExitStatus, String) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use std::io::Read as _;
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(terminal)
        .spawn()
        .unwrap();
    // The command holds our copy of the terminal's end: once the child's
    // is closed too, reading the other end ends (EIO).
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let shown = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = master.read(&mut buf) {
            shown.extend_from_slice(&buf[..n]);
        }
        shown
    });
    let status = child.wait().unwrap();
    let shown = shown.join().unwrap();
    (status, String::from_utf8_lossy(&shown).into_owned())
}

/// QA30-C L2: on a terminal, log lines were coloured even with `NO_COLOR`
/// set (clap's own errors honour it). A non-empty `NO_COLOR` turns colour
/// off for both log setups: `sync`'s (as `run`'s) and the other commands'
/// (`config check` here); an empty one does not (no-color.org).
#[test]
fn log_lines_on_a_terminal_honour_no_color() {
    let (_data, server) = fake();
    let s = setup(&server.base_url, "0 0 * * *", "");
    // A secret file every user may read: a WARN log line from both.
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        "{ secret = \"env:RECKON_TEST_EXAMPLE_KEY\" }",
        "{ secret = \"file:api.key\" }",
    );
    std::fs::write(&s.config, text).unwrap();
    let key = s.dir.path().join("api.key");
    std::fs::write(&key, API_KEY).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    for args in [&["sync", "examplenet", "--check"][..], &["config", "check"]] {
        for no_color in [None, Some(""), Some("1")] {
            let mut cmd = reckon(&s.config);
            cmd.env_remove("NO_COLOR").args(args);
            if let Some(v) = no_color {
                cmd.env("NO_COLOR", v);
            }
            let (status, shown) = on_terminal(cmd);
            assert!(status.success(), "{args:?}: {shown}");
            assert!(
                shown.contains("is readable by every user"),
                "{args:?}: {shown}"
            );
            let coloured = shown.contains("\u{1b}[");
            assert_eq!(
                coloured,
                no_color != Some("1"),
                "{args:?} NO_COLOR={no_color:?}: {shown:?}"
            );
        }
    }
}

/// `sync --check` runs the plugin's check (one cheap request), stores
/// nothing and needs no store; a failing check names the cause.
#[test]
fn sync_check_runs_the_plugins_check_and_stores_nothing() {
    let (_data, server) = fake();
    let s = setup(&server.base_url, "0 0 * * *", "");
    let out = reckon(&s.config)
        .args(["sync", "examplenet", "--check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "examplenet: ok: plugin `example` accepted the settings and credentials (1 request(s))"
        ),
        "{stdout}"
    );
    assert!(!s.data_dir.exists(), "a check opens no store");

    // A base URL where the API is not: the check fails, naming the
    // connector (a 404 is not retried, so this is quick).
    let s = setup(&format!("{}/nope", server.base_url), "0 0 * * *", "");
    let out = reckon(&s.config)
        .args(["sync", "examplenet", "--check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: connector `examplenet`"), "{stderr}");
}

/// `sync --record DIR` writes each session's exchanges as a cassette that
/// the plugin's `FakeHost` replays into exactly the records the sync
/// stored; a 429 the host waited out is not in it (the plugin never saw
/// it); secrets are masked, also where the platform echoes one in a body.
#[test]
fn sync_record_writes_a_cassette_that_fake_host_replays_into_the_stored_records() {
    use plugin_api::protocol::{Record, RecordKind, SessionOpen};
    use plugin_api::testing::{Cassette, FakeHost};
    use reckon_tests::fakes::example::{router, ExampleApi, ExampleData};
    use std::collections::BTreeMap;

    let today = chrono::Utc::now().date_naive();
    let (from, to) = (today - chrono::Days::new(6), today - chrono::Days::new(1));
    let api = ExampleApi::new(ExampleData::generate(11, 40, from, to), API_KEY);
    api.faults.throttle.store(1, Ordering::SeqCst);
    api.faults.retry_after_secs.store(1, Ordering::SeqCst);
    let server = reckon_tests::fakes::server::FakeServer::start(router(api.clone()));
    let s = setup(&server.base_url, "0 0 * * *", "");
    let dir = s.dir.path().join("cassettes");
    let (from, to) = (from.to_string(), to.to_string());
    let args = [
        "sync",
        "examplenet",
        "--from",
        &from,
        "--to",
        &to,
        "--record",
        dir.to_str().unwrap(),
    ];
    let out = reckon(&s.config).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(format!("examplenet_{from}_{to}.json"));
    assert!(
        stdout.contains(&format!("recorded: {}", path.display())),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let open_text =
        std::fs::read_to_string(dir.join(format!("examplenet_{from}_{to}.open.json"))).unwrap();
    for t in [&text, &open_text] {
        assert!(!t.contains(API_KEY), "the key is in the recording:\n{t}");
    }
    let cassette = Cassette::from_json(&text).unwrap();
    // One exchange per request the plugin made: the fake also saw the 429.
    let requests = api.requests.load(Ordering::SeqCst) as usize;
    assert_eq!(cassette.exchanges.len() + 1, requests, "{text}");
    assert!(cassette.exchanges.iter().all(|e| e.status == 200), "{text}");
    assert!(
        cassette.exchanges[0].url.starts_with(&server.base_url)
            && cassette.exchanges[0].url.contains("/v1/conversions?"),
        "{text}"
    );

    // Replayed, the plugin produces what the sync stored.
    let open: SessionOpen = serde_json::from_str(&open_text).unwrap();
    let replay = FakeHost::replay(cassette).run::<reckon_plugin_example::Example>(open);
    replay.result.as_ref().unwrap();
    assert!(replay.uncommitted.is_empty());
    let replayed: BTreeMap<String, Record> = replay
        .committed
        .into_iter()
        .map(|mut r| {
            r.set_source("examplenet");
            (r.key(), r)
        })
        .collect();
    let store = reckon::store::Store::open(&s.data_dir).unwrap();
    let stored: BTreeMap<String, Record> = store
        .scan_records(RecordKind::Conversion, Some("examplenet"))
        .map(|r| {
            let r = r.unwrap().record;
            (r.key(), r)
        })
        .collect();
    assert_eq!(stored.len(), 40);
    assert_eq!(replayed, stored);
    drop(store);

    // A platform echoing the credential it was sent (ExampleNet's 401 does)
    // has it masked in the cassette; the failed session is recorded too.
    let wrong = "wrong-SECRET-key-77";
    let out = reckon(&s.config)
        .env("RECKON_TEST_EXAMPLE_KEY", wrong)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(wrong), "{text}");
    let cassette = Cassette::from_json(&text).unwrap();
    assert_eq!(cassette.exchanges.len(), 1, "{text}");
    assert_eq!(cassette.exchanges[0].status, 401);
    assert!(
        cassette.exchanges[0]
            .body
            .contains("invalid credentials: Bearer ***"),
        "{text}"
    );
}

/// `window_days` splits a run into shorter windows than the plugin allows
/// (31 days for the example plugin): six days at 2 days per window are
/// three sessions, each recorded under its own window.
#[test]
fn window_days_splits_a_sync_into_shorter_windows() {
    use reckon_tests::fakes::example::{router, ExampleApi, ExampleData};
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (today - chrono::Days::new(6), today - chrono::Days::new(1));
    let mut data = ExampleData::generate(5, 12, from, to);
    let good = data.clone();
    // A row of the second window with an amount no one can read.
    let second = (from + chrono::Days::new(2)).to_string();
    data.conversions
        .iter_mut()
        .find(|c| {
            c["created"]
                .as_str()
                .is_some_and(|t| t.starts_with(&second))
        })
        .expect("a conversion on the third day")["amount"] = "twelve".into();
    let bad =
        reckon_tests::fakes::server::FakeServer::start(router(ExampleApi::new(data, API_KEY)));
    let api = ExampleApi::new(good, API_KEY);
    let server = reckon_tests::fakes::server::FakeServer::start(router(api));
    let s = setup(&server.base_url, "0 0 * * *", "");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        text.replace(
            "lookback_days = 2\n",
            "lookback_days = 2\nwindow_days = 2\n",
        ),
    )
    .unwrap();
    let dir = s.dir.path().join("cassettes");
    let (f, t) = (from.to_string(), to.to_string());
    let out = reckon(&s.config)
        .args(["sync", "examplenet", "--from", &f, "--to", &t])
        .args(["--record", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let day = |n: u64| (from + chrono::Days::new(n)).to_string();
    for (a, b) in [(0, 1), (2, 3), (4, 5)] {
        let path = dir.join(format!("examplenet_{}_{}.json", day(a), day(b)));
        assert!(path.exists(), "no session for {} .. {}", day(a), day(b));
    }
    let sessions = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".open.json"))
        .count();
    assert_eq!(sessions, 3);
    // A failure names its window among the run's (ops QA: "page 3" of
    // which window?).
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, text.replace(&server.base_url, &bad.base_url)).unwrap();
    let out = reckon(&s.config)
        .args(["sync", "examplenet", "--from", &f, "--to", &t])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("(window {}..{}, 2 of 3)", day(2), day(3))),
        "{err}"
    );
    std::fs::write(&s.config, text).unwrap();
    // A file where the directory should be (QA: "File exists (os error 17)").
    let file = s.dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let out = reckon(&s.config)
        .args(["sync", "examplenet", "--from", &f, "--to", &t])
        .args(["--record", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not-a-dir: is a file, not a directory; name a directory for the cassettes"),
        "{err}"
    );
}

/// Every path under `p`, `p` included.
fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// Ops QA13 OPS-1: a command run as root on the daemon user's store (a
/// backfill after `systemctl stop reckon`) left root-owned files in it
/// (sled's snapshot), and the daemon then refused to start. Now every
/// command that opens the store refuses root on a store another user owns
/// before touching anything, naming the owner and `sudo -u`; a store root
/// owns keeps working. Only root can give a store away: skipped otherwise.
#[test]
fn root_is_refused_on_a_store_another_user_owns_and_touches_nothing() {
    use std::os::unix::fs::MetadataExt as _;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        eprintln!("skipped: needs root to give the store to another user");
        return;
    }
    let (data, server) = fake();
    let s = setup(&server.base_url, "0 0 * * *", "");
    let today = chrono::Utc::now().date_naive().to_string();
    // Root's own store: works.
    let out = reckon(&s.config)
        .args(["sync", "examplenet", "--from", &today, "--to", &today])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = data.requests.load(Ordering::SeqCst);
    // The daemon's user (uid 65534, `nobody` here) owns it now.
    for p in walk(&s.data_dir) {
        std::os::unix::fs::lchown(&p, Some(65534), Some(65534)).unwrap();
    }
    let cassettes = s.dir.path().join("cassettes");
    let commands: [&[&str]; 6] = [
        &[
            "sync",
            "examplenet",
            "--from",
            &today,
            "--to",
            &today,
            "--record",
            cassettes.to_str().unwrap(),
        ],
        &["records", "export", "--kind", "conversions"],
        &["reconcile"],
        &["kpi", "--period", "2026-10"],
        &[
            "records",
            "checkpoints",
            "--source",
            "examplenet",
            "--reset",
        ],
        &["run"],
    ];
    for args in commands {
        let out = reckon(&s.config).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "{} belongs to nobody (uid 65534), and this command runs as root",
                s.data_dir.display()
            )) && err.contains("the daemon (running as nobody) would then refuse to start")
                && err.contains(&format!(
                    "`sudo -u nobody {} --config {} {}",
                    reckon_tests::reckon_bin().display(),
                    s.config.display(),
                    args[0]
                )),
            "{args:?}: {err}"
        );
        let root_owned: Vec<_> = walk(&s.data_dir)
            .into_iter()
            .filter(|p| std::fs::symlink_metadata(p).unwrap().uid() == 0)
            .collect();
        assert!(root_owned.is_empty(), "{args:?}: {root_owned:?}");
    }
    assert!(!cassettes.exists(), "--record created its directory");
    assert_eq!(data.requests.load(Ordering::SeqCst), requests);
}
