//! Ops QA32a: what the daemon says about its own state.
//!
//! - F1: a SIGHUP (`systemctl reload`) during `reckon run`'s start-up
//!   (plugins loaded, store opened, port bound) killed the process with the
//!   default action: exit by signal, no log line. A SIGTERM then stopped it
//!   the same way.
//! - F2: `reckon status` took any HTTP 401 on `listen` for this config's
//!   daemon wanting its token.
//! - F3: KPI summaries failing at every sync showed only in the log.

use reckon_tests::{free_port, run_command, RunningDaemon};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// A config of `connectors` file-drop connectors (the `orders` plugin, no
/// network) reading `drop/`, with `schedule`, listening on `port`, and
/// `extra` appended.
fn write_config(dir: &Path, port: u16, connectors: usize, schedule: &str, extra: &str) {
    reckon_tests::install_plugins(&dir.join("plugins"), &["orders"]);
    std::fs::create_dir_all(dir.join("drop")).unwrap();
    std::fs::write(
        dir.join("drop/orders.csv"),
        "order_id,created_at,amount,currency\nA-1,2026-11-20T10:00:00Z,100.00,USD\n",
    )
    .unwrap();
    let mut text = format!(
        "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\noutput_dir = \"out\"\nlisten = \"127.0.0.1:{port}\"\ntimezone = \"UTC\"\n"
    );
    for i in 0..connectors {
        text.push_str(&format!(
            "\n[[connectors]]\nid = \"shop{i}\"\nplugin = \"orders\"\nschedule = \"{schedule}\"\ntimezone = \"UTC\"\n\n[connectors.settings]\nmode = \"files\"\ndirectory = \"drop\"\ndefault_currency = \"USD\"\n"
        ));
    }
    text.push_str(extra);
    std::fs::write(dir.join("reckon.toml"), text).unwrap();
}

/// `reckon run` in `dir` (its log in `dir/run.log`).
fn start(dir: &Path) -> RunningDaemon {
    let mut command = run_command(&dir.join("reckon.toml"));
    command
        .current_dir(dir)
        .env("RECKON_ALLOW_SUB_MINUTE_SCHEDULES", "1");
    RunningDaemon::spawn(&mut command, dir.join("run.log"))
}

/// Whether process `pid` catches `signal` (a handler is installed), from
/// `SigCgt` in `/proc/<pid>/status`.
fn catches(pid: u32, signal: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let mask = s.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// `GET /healthz` answers `ok` within a short time (a port bound but not
/// served yet does not hold the caller).
fn healthy(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    if write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

/// Waits, without sending anything, until the daemon's start-up is under
/// way: its SIGHUP handler is installed, or (a build that installs it only
/// once running) it has bound its port. Signals before `reckon run`'s
/// first line (the process still loading) take the default action
/// whatever reckon does.
fn wait_for_start_up(daemon: &mut RunningDaemon, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        daemon.assert_running();
        if catches(daemon.pid(), 1) || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "reckon run did not start");
        std::thread::yield_now();
    }
}

/// F1: SIGHUPs sent all through the start-up, until `/healthz` answers,
/// neither kill the daemon nor get lost: it serves, applies them as a
/// reload, and stops with status 0 on SIGTERM.
#[cfg(target_os = "linux")]
#[test]
fn sighup_during_start_up_is_a_reload_once_running_not_death() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Several connectors: a longer start-up. Not due for a long time.
    write_config(dir.path(), port, 8, "0 0 1 1 *", "");
    let mut daemon = start(dir.path());
    wait_for_start_up(&mut daemon, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    loop {
        daemon.hup();
        sent += 1;
        if healthy(port) {
            break;
        }
        assert!(
            !daemon.exited(),
            "reckon run died after {sent} SIGHUP(s) during its start-up; log:\n{}",
            daemon.log_text()
        );
        assert!(Instant::now() < deadline, "/healthz never answered");
    }
    assert!(
        !daemon.exited(),
        "reckon run died after {sent} SIGHUP(s) during its start-up; log:\n{}",
        daemon.log_text()
    );
    // The SIGHUPs were reloads (the one remembered from the start-up, or
    // one that came once the daemon ran).
    daemon.wait_for_log(&["daemon started", "SIGHUP: config reloaded"]);
    assert!(healthy(port));
    let log = daemon.stop();
    assert!(log.contains("daemon stopped"), "{log}");
}

/// F1: a SIGTERM or SIGINT during start-up is a clean stop with a log
/// line and status 0, not death by the signal.
#[cfg(target_os = "linux")]
#[test]
fn sigterm_or_sigint_during_start_up_stops_cleanly_with_a_log_line() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        write_config(dir.path(), port, 8, "0 0 1 1 *", "");
        let log = dir.path().join("run.log");
        let mut child = run_command(&dir.path().join("reckon.toml"))
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        // As `wait_for_start_up`.
        while !catches(pid, 1) && std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "reckon run ended");
            assert!(Instant::now() < deadline, "reckon run did not start");
            std::thread::yield_now();
        }
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let exited =
            reckon_tests::poll_until(Duration::from_secs(20), || child.try_wait().unwrap());
        let text = std::fs::read_to_string(&log).unwrap();
        let Some(status) = exited else {
            let _ = child.kill();
            panic!("reckon run did not stop on SIG{signal}; log:\n{text}");
        };
        assert_eq!(status.code(), Some(0), "{status}; log:\n{text}");
        // During the start-up, or just after it.
        assert!(
            text.contains(&format!("SIG{signal} during start-up: stopping before"))
                || text.contains(&format!("SIG{signal}: stopping")),
            "{text}"
        );
    }
}

/// A loopback server answering every request with HTTP 401 and
/// `challenge` (none: no `WWW-Authenticate`); its address.
fn server_401(challenge: Option<&'static str>) -> std::net::SocketAddr {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let header = challenge
                .map(|c| format!("WWW-Authenticate: {c}\r\n"))
                .unwrap_or_default();
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\n{header}Content-Length: 2\r\nConnection: close\r\n\r\nno"
            );
        }
    });
    addr
}

/// `reckon status` with a config listening on `addr` (data_dir `data`,
/// no daemon): exit code and stderr.
fn status_on(addr: std::net::SocketAddr, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("b.toml");
    std::fs::write(
        &config,
        format!("[daemon]\nlisten = \"{addr}\"\ndata_dir = \"data\"\n"),
    )
    .unwrap();
    let out = std::process::Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&config)
        .arg("status")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// F2: a 401 without the daemon's `Bearer realm="reckon"` challenge is not
/// this config's daemon; neither is a daemon's 401 while no daemon holds
/// this config's data_dir. With `--addr` (no data_dir to check) a daemon's
/// 401 is still explained as a token problem.
#[test]
fn status_tells_a_401_of_something_else_from_this_configs_daemon() {
    let basic = server_401(Some("Basic realm=\"grafana\""));
    let none = server_401(None);
    for addr in [basic, none] {
        let (code, stderr) = status_on(addr, &[]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "answered HTTP 401 without the reckon daemon's challenge (`WWW-Authenticate: Bearer realm=\"reckon\"`): something else answers on {addr}"
            )) && stderr.contains("this config's daemon is not running there")
                && stderr.contains("is `[daemon] listen` in ")
                && !stderr.contains("status token"),
            "{stderr}"
        );
    }
    // Another config's daemon on this `listen` (this one's could not bind).
    let reckon = server_401(Some("Bearer realm=\"reckon\""));
    let (code, stderr) = status_on(reckon, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("answered HTTP 401 as a reckon daemon does when it wants its status token, but no `reckon run` holds this config's data_dir")
            && stderr.contains("this config's daemon is not running there")
            && !stderr.contains("it needs the daemon's status token"),
        "{stderr}"
    );
    let (code, stderr) = status_on(reckon, &["--addr", &reckon.to_string()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("answered HTTP 401, it needs the daemon's status token: ")
            && stderr.contains("sets no `[daemon] status_token`"),
        "{stderr}"
    );
}

fn get_json(port: u16, path: &str) -> Option<Value> {
    let (code, body) = reckon_tests::http_get(port, path)?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// F3: KPI summaries whose files cannot be written (`out/kpi` is a file)
/// show as failing in `/status`, `reckon status` and `/metrics`, counted
/// once per fire of their schedule however many syncs retry them, and
/// recover once they are written.
#[test]
fn failing_kpi_summaries_show_in_status_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(
        dir.path(),
        port,
        1,
        "* * * * * *",
        "\n[kpi]\ncurrency = \"USD\"\n\n[kpi.summaries]\nschedule = \"0 6 * * *\"\n",
    );
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/kpi"), "not a directory").unwrap();
    let mut daemon = start(dir.path());
    // Several syncs retry the fire (the summaries were never written: the
    // last day's fire is due).
    let runs = daemon.wait_until("three syncs after a failing KPI write", |_| {
        let status = get_json(port, "/status")?;
        let syncs = status["connectors"][0]["last_run"]["started_at"].as_str()?;
        let runs = status["kpi_summaries"]["runs"].clone();
        (runs["last_error"].is_string() && !syncs.is_empty()).then_some(())?;
        let metrics = reckon_tests::http_get(port, "/metrics")?.1;
        let syncs: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("reckon_syncs_total{") && l.contains("outcome=\"success\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        (syncs >= 3).then_some(runs)
    });
    let error = runs["last_error"].as_str().unwrap();
    assert!(error.contains("Not a directory"), "{runs}");
    // One fire (06:00 daily), many syncs: one failed run.
    assert_eq!(runs["consecutive_failures"], 1, "{runs}");
    assert_eq!(runs["failed_total"], 1, "{runs}");
    let metrics = reckon_tests::http_get(port, "/metrics").unwrap().1;
    assert!(
        metrics.contains("\nreckon_kpi_summaries_consecutive_failures 1\n")
            && metrics.contains("\nreckon_kpi_summaries_runs_total{outcome=\"failed\"} 1\n")
            && metrics.contains("\nreckon_kpi_summaries_runs_total{outcome=\"ok\"} 0\n"),
        "{metrics}"
    );
    let out = std::process::Command::new(reckon_tests::reckon_bin())
        .current_dir(dir.path())
        .args(["--config", "reckon.toml", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(for the fire of ")
            && text.contains("; tried again after the next sync: FAILING, see below)")
            && text.contains("\n  FAILING (1 in a row, last ")
            && text.contains("Not a directory"),
        "{text}"
    );
    // The ERROR once, its repeats at debug level (as the drafts').
    let log = daemon.log_text();
    assert_eq!(
        log.matches("post-sync hook failed hook=\"kpi_summaries\"")
            .count(),
        1,
        "{log}"
    );

    // Fixed: the next sync writes them.
    std::fs::remove_file(dir.path().join("out/kpi")).unwrap();
    let runs = daemon.wait_until("the KPI summaries written", |_| {
        let runs = get_json(port, "/status")?["kpi_summaries"]["runs"].clone();
        (runs["ok_total"] == 1).then_some(runs)
    });
    assert_eq!(runs["consecutive_failures"], 0, "{runs}");
    assert!(runs["last_error"].is_null(), "{runs}");
    let metrics = reckon_tests::http_get(port, "/metrics").unwrap().1;
    assert!(
        metrics.contains("\nreckon_kpi_summaries_consecutive_failures 0\n")
            && metrics.contains("\nreckon_kpi_summaries_runs_total{outcome=\"failed\"} 1\n"),
        "{metrics}"
    );
    assert!(dir.path().join("out/kpi/daily").is_dir());
    daemon.stop();
}
