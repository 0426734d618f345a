//! Regression (conformance audit): SIGTERM did not end a session that was
//! waiting. The daemon ran sessions without its shutdown signal, so a 429
//! `Retry-After` wait or a plugin's sleep (up to 15 minutes each) went on
//! until the scheduler's 8 s grace ran out and aborted the run, which the
//! history then kept as `running`. Through the real binary: the page before
//! the wait stays committed, the process exits at once, and the run is
//! recorded as `interrupted`; a run aborted at the end of the grace (a plugin
//! step that does not return) is recorded as `interrupted` too.

mod core_support;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use reckon::store::{RunOutcome, RunRecord, Store};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the fake asks the daemon to wait after its first page.
const RETRY_AFTER_SECS: u32 = 600;
/// Rows on the first page (the config's `page_size`).
const PAGE: usize = 7;

/// ExampleNet answering one page of conversions, then 429 with a ten-minute
/// `Retry-After` for every later page (counted in the state).
async fn conversions(
    State(throttled): State<Arc<AtomicU32>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.contains_key("cursor") {
        throttled.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", RETRY_AFTER_SECS.to_string())],
            Json(json!({ "error": "slow down" })),
        )
            .into_response();
    }
    let day = q.get("start").cloned().unwrap_or_default();
    let data: Vec<_> = (0..PAGE)
        .map(|i| {
            json!({
                "id": format!("cv-{i}"), "order_ref": format!("ord-{i}"),
                "partner": { "id": "p1" }, "type": "sale",
                "created": format!("{day}T10:0{i}:00Z"),
                "amount": "10.00", "commission": "1.00", "currency": "USD",
                "state": "pending",
            })
        })
        .collect();
    Json(json!({ "data": data, "next": "p2" })).into_response()
}

/// `reckon run` with its log lines read as they come.
struct Daemon(reckon_tests::LoggedChild);

impl std::ops::Deref for Daemon {
    type Target = reckon_tests::LoggedChild;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Daemon {
    /// Starts `reckon run` on `config` with `RUST_LOG` = `filter`.
    fn start(config: &Path, filter: &str) -> Daemon {
        Self::spawn(
            core_support::reckon(config)
                .arg("run")
                .env("RUST_LOG", filter),
        )
    }

    /// Starts `reckon run` as a terminal would: the leader of its own
    /// process group, which Ctrl-C signals as a whole.
    fn start_as_terminal_job(config: &Path, filter: &str) -> Daemon {
        use std::os::unix::process::CommandExt as _;
        Self::spawn(
            core_support::reckon(config)
                .arg("run")
                .env("RUST_LOG", filter)
                .process_group(0),
        )
    }

    fn spawn(command: &mut std::process::Command) -> Daemon {
        Daemon(reckon_tests::LoggedChild::spawn(command))
    }

    /// Sends SIGTERM and waits for a clean exit; returns how long it took.
    fn terminate(&mut self) -> Duration {
        self.signal(&["-TERM", &self.child.id().to_string()])
    }

    /// Sends `kill args` and waits for a clean exit; returns how long it took.
    fn signal(&mut self, args: &[&str]) -> Duration {
        let sent = Instant::now();
        let ok = std::process::Command::new("kill")
            .args(args)
            .status()
            .unwrap();
        assert!(ok.success());
        let exited =
            reckon_tests::poll_until(Duration::from_secs(20), || self.child.try_wait().unwrap());
        let took = sent.elapsed();
        // The rest of the log: the pipe closes when the process exits.
        self.wait_for("\u{0}", Duration::from_secs(5));
        let status = exited.unwrap_or_else(|| panic!("reckon run did not exit:\n{}", self.log()));
        assert!(status.success(), "{status:?}\n{}", self.log());
        took
    }
}

/// A test directory with the faulty test plugin and a connector using it
/// with `settings`, fired every second.
fn faulty_setup(settings: &str, port: u16) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let file = format!(
        "{}reckon_fault_behaviour{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    std::fs::copy(reckon_tests::profile_dir().join(&file), plugins.join(&file)).unwrap();
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[connectors]]\nid = \"faultynet\"\nplugin = \"faulty\"\nschedule = \"* * * * * *\"\n\
             isolation = \"subprocess\"\ntimeout_secs = 30\n\n[connectors.settings]\n{settings}\n"
        ),
    )
    .unwrap();
    (dir, config)
}

fn last_run(data_dir: &Path, connector: &str) -> RunRecord {
    Store::open(data_dir)
        .unwrap()
        .runs(connector, 1)
        .unwrap()
        .remove(0)
}

#[test]
fn sigterm_ends_a_session_waiting_out_a_429_and_records_the_run_as_interrupted() {
    let throttled = Arc::new(AtomicU32::new(0));
    let server = reckon_tests::fakes::server::FakeServer::start(
        Router::new()
            .route("/v1/conversions", get(conversions))
            .with_state(throttled.clone()),
    );
    // Fires every second: the first run starts at once.
    let s = core_support::setup(
        &server.base_url,
        "* * * * * *",
        &format!("listen = \"127.0.0.1:{}\"", reckon_tests::free_port()),
    );
    let mut daemon = Daemon::start(&s.config, "info");
    let waiting = daemon.wait_for(
        "throttled (HTTP 429); waiting before retrying",
        Duration::from_secs(60),
    );
    assert!(
        waiting,
        "the run never waited on the 429:\n{}",
        daemon.log()
    );
    assert_eq!(throttled.load(Ordering::SeqCst), 1);

    let took = daemon.terminate();
    let log = daemon.log();
    eprintln!("429 wait: reckon run exited {took:?} after SIGTERM");
    assert!(
        took < Duration::from_secs(4),
        "exit took {took:?}: the wait was not cut short:\n{log}"
    );
    assert!(!log.contains("grace period over"), "{log}");
    assert!(log.contains("the session stops waiting"), "{log}");
    // A stop on purpose is no failure: INFO, no WARN (soak QA18 F4).
    assert!(
        log.contains("session stopped on request")
            && log.contains("sync stopped after its current page"),
        "{log}"
    );
    assert!(log.lines().any(|l| l.contains(" INFO ")), "{log}");
    assert!(
        !log.lines().any(|l| l.contains(" WARN ")),
        "a WARN at a plain SIGTERM:\n{log}"
    );
    // Woken by the shutdown, it did not retry.
    assert_eq!(throttled.load(Ordering::SeqCst), 1);

    // Interrupted, with the page it committed; the page and its checkpoint
    // are stored.
    let run = last_run(&s.data_dir, "examplenet");
    assert_eq!(run.outcome, RunOutcome::Interrupted, "{run:?}");
    assert!(run.ended_at.is_some(), "{run:?}");
    assert_eq!((run.pages, run.records_new), (1, PAGE as u64), "{run:?}");
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("stopped after committing its current page")),
        "{run:?}"
    );
    let store = Store::open(&s.data_dir).unwrap();
    assert_eq!(
        store.count_records(
            plugin_api::protocol::RecordKind::Conversion,
            Some("examplenet")
        ),
        PAGE as u64
    );
    assert_eq!(
        store.checkpoints("examplenet").unwrap()["conversions"].state["cursor"],
        "p2"
    );
}

#[test]
fn sigterm_ends_a_plugins_sleep_at_once() {
    let (dir, config) = faulty_setup("fault = \"sleep\"", reckon_tests::free_port());
    let mut daemon = Daemon::start(&config, "warn,reckon::plugins::session=debug");
    let sleeping = daemon.wait_for("sleeping until the plugin's timer", Duration::from_secs(60));
    assert!(sleeping, "the plugin never slept:\n{}", daemon.log());
    let took = daemon.terminate();
    eprintln!("plugin sleep: reckon run exited {took:?} after SIGTERM");
    assert!(took < Duration::from_secs(4), "{took:?}\n{}", daemon.log());
    let run = last_run(&dir.path().join("data"), "faultynet");
    assert_eq!(run.outcome, RunOutcome::Interrupted, "{run:?}");
}

/// Ctrl-C in a terminal signals the whole foreground process group. The
/// plugin process is in a group of its own, so only reckon gets SIGINT and
/// ends the session in order; before, the plugin process died of it too and
/// the run could be recorded as `failed`.
#[test]
fn ctrl_c_in_a_terminal_interrupts_the_run_without_killing_the_plugin_process() {
    let (dir, config) = faulty_setup("fault = \"sleep\"", reckon_tests::free_port());
    let mut daemon = Daemon::start_as_terminal_job(&config, "warn,reckon::plugins::session=debug");
    let sleeping = daemon.wait_for("sleeping until the plugin's timer", Duration::from_secs(60));
    assert!(sleeping, "the plugin never slept:\n{}", daemon.log());
    // The plugin process (reckon's child) leads a group of its own.
    let reckon = daemon.child.id();
    let children: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (comm) state ppid pgrp ...: fields after the last ')'.
            let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ppid: u32 = rest.get(1)?.parse().ok()?;
            let pgrp: u32 = rest.get(2)?.parse().ok()?;
            (ppid == reckon).then_some((pid, pgrp))
        })
        .collect();
    assert!(!children.is_empty(), "no plugin process found");
    for (pid, pgrp) in &children {
        assert_eq!(
            pid, pgrp,
            "the plugin process {pid} is in group {pgrp}, reckon's is {reckon}"
        );
    }
    let group = format!("-{reckon}");
    let took = daemon.signal(&["-INT", "--", &group]);
    let log = daemon.log();
    assert!(took < Duration::from_secs(4), "{took:?}\n{log}");
    assert!(
        !log.contains("plugin process"),
        "the plugin process died:\n{log}"
    );
    let run = last_run(&dir.path().join("data"), "faultynet");
    assert_eq!(run.outcome, RunOutcome::Interrupted, "{run:?}\n{log}");
}

/// What the shutdown cannot cut short (a plugin step in progress) is
/// aborted when the grace period ends; the run is still recorded as
/// `interrupted`, not left `running`, and its first page is kept.
#[test]
fn a_run_aborted_at_the_end_of_the_grace_period_is_recorded_as_interrupted() {
    // The step after the first page spins for 60 s; its deadline is 120 s.
    let (dir, config) = faulty_setup(
        "fault = \"loop\"\nloop_millis = 60000",
        reckon_tests::free_port(),
    );
    let mut daemon = Daemon::start(&config, "warn,reckon::plugins::session=debug");
    let committed = daemon.wait_for("checkpoint committed", Duration::from_secs(60));
    assert!(committed, "no page was committed:\n{}", daemon.log());
    let took = daemon.terminate();
    eprintln!("step in progress: reckon run exited {took:?} after SIGTERM");
    let log = daemon.log();
    assert!(log.contains("grace period over"), "{log}");
    assert!(took < Duration::from_secs(12), "{took:?}\n{log}");
    let run = last_run(&dir.path().join("data"), "faultynet");
    assert_eq!(run.outcome, RunOutcome::Interrupted, "{run:?}");
    assert!(run.ended_at.is_some(), "{run:?}");
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("grace period ran out")),
        "{run:?}"
    );
    let store = Store::open(&dir.path().join("data")).unwrap();
    assert_eq!(
        store.count_records(
            plugin_api::protocol::RecordKind::Conversion,
            Some("faultynet")
        ),
        1
    );
}

/// `pid`'s state letter (`R`, `S`, `Z`, ...) and parent pid, from
/// `/proc/PID/stat`; `None` once it is gone.
#[cfg(target_os = "linux")]
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ppid ...`: comm may hold spaces, so split after `)`.
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The `reckon plugin-host` child of `parent`, if it has one.
#[cfg(target_os = "linux")]
fn plugin_host_child(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let host = cmdline.split(|b| *b == 0).any(|a| a == b"plugin-host");
        (host && proc_stat(pid)?.1 == parent).then_some(pid)
    })
}

/// QA (ops #4): after `kill -9` (or an OOM kill) of the daemon, a plugin
/// child busy in a step lived on, reparented and spinning a CPU for good:
/// it only notices reckon is gone when it reads its stdin again, and only
/// the dead daemon enforced the step deadline. The kernel now kills it
/// with its parent (`PR_SET_PDEATHSIG`).
#[cfg(target_os = "linux")]
#[test]
fn a_plugin_child_busy_in_a_step_dies_with_a_daemon_killed_by_sigkill() {
    // The step after the first page spins until killed.
    let (_dir, config) = faulty_setup(
        "fault = \"loop\"\nloop_millis = 0",
        reckon_tests::free_port(),
    );
    let mut daemon = Daemon::start(&config, "warn,reckon::plugins::session=debug");
    let committed = daemon.wait_for("checkpoint committed", Duration::from_secs(60));
    assert!(committed, "no page was committed:\n{}", daemon.log());
    let parent = daemon.child.id();
    // The child once it spins in the step (running, not reading its stdin).
    let child = reckon_tests::poll_until(Duration::from_secs(30), || {
        plugin_host_child(parent).filter(|&pid| proc_stat(pid).is_some_and(|(s, _)| s == 'R'))
    })
    .unwrap_or_else(|| panic!("no plugin-host child spinning:\n{}", daemon.log()));

    let _ = daemon.child.kill(); // SIGKILL
    let _ = daemon.child.wait();
    // Gone, or a zombie waiting for whoever adopted it to reap it.
    let died = reckon_tests::poll_until(Duration::from_secs(10), || {
        proc_stat(child)
            .is_none_or(|(state, _)| state == 'Z' || state == 'X')
            .then_some(())
    });
    if died.is_none() {
        // Do not leave the orphan spinning after a failed run.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &child.to_string()])
            .status();
        panic!("the plugin-host child {child} outlived its killed daemon");
    }
}
