//! Regression (ops QA #7): `reckon status --json | head -c 300` (or `|
//! true`) panicked with a backtrace, exit 101, when stdout closed before the
//! document was written; the text output ended quietly. Both now end as
//! Unix tools do: exit 0, nothing on stderr.

use axum::routing::get;
use reckon_tests::fakes::server::FakeServer;
use std::time::Duration;

#[test]
fn status_json_into_a_closed_pipe_ends_quietly() {
    // `/status` answers only once the command's stdout is closed.
    let (closed, gate) = tokio::sync::watch::channel(false);
    let app = axum::Router::new().route(
        "/status",
        get(move || {
            let mut gate = gate.clone();
            async move {
                let _ = gate.wait_for(|closed| *closed).await;
                r#"{"started_at":"2026-11-29T08:00:00Z","config":"c","store_size_bytes":null,"connectors":[]}"#
            }
        }),
    );
    let server = FakeServer::start(app);
    let mut child = std::process::Command::new(reckon_tests::reckon_bin())
        .args(["status", "--json", "--addr", &server.addr.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    closed.send(true).unwrap();
    let exited = reckon_tests::poll_until(Duration::from_secs(30), || child.try_wait().unwrap());
    let Some(status) = exited else {
        let _ = child.kill();
        panic!("reckon status did not exit");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `reckon status` against a fake `/status` answering `body`, with a config
/// whose `listen` is the fake and whose `data_dir` is `<tmp>/data`: (exit
/// success, stdout, stderr). `data_dir` in `body` is written `{DATA}`.
fn status_against(body: &str, json: bool) -> (bool, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let data = std::fs::canonicalize(&data).unwrap();
    let body = body.replace("{DATA}", &data.display().to_string());
    let app = axum::Router::new().route("/status", get(move || async move { body }));
    let server = FakeServer::start(app);
    let config = tmp.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"{}\"\ndata_dir = \"data\"\n",
            server.addr
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(reckon_tests::reckon_bin());
    cmd.arg("--config").arg(&config).arg("status");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const REPORT: &str = r#"{"started_at":"2026-11-29T08:00:00Z","config":"/etc/other/reckon.toml","data_dir":"{DATA}","store_size_bytes":null,"connectors":[]}"#;

/// QA30-C M1: another config's daemon answering on this config's `listen`
/// (this one's could not bind) read as this config's daemon, exit 0. Its
/// `/status` names the data_dir it holds; `reckon status` compares.
#[test]
fn another_configs_daemon_on_this_listen_is_not_this_configs_daemon() {
    for json in [false, true] {
        let (ok, _, err) = status_against(&REPORT.replace("{DATA}", "/srv/other/data"), json);
        assert!(!ok, "json={json}: {err}");
        assert!(
            err.contains("holds data_dir /srv/other/data (config /etc/other/reckon.toml), not ")
                && err.contains("this config's daemon is not the one listening there"),
            "json={json}: {err}"
        );
        // Its own data_dir: this config's daemon.
        let (ok, out, err) = status_against(REPORT, json);
        assert!(ok, "json={json}: {err}");
        assert!(out.contains("/etc/other/reckon.toml"), "{out}");
    }
}

/// QA30-C L8: `status --json` printed any HTTP 200 answer and exited 0;
/// the text mode refused it. Both refuse what is not a daemon's status.
#[test]
fn a_status_answer_that_is_not_a_reckon_status_is_refused_in_both_modes() {
    for json in [false, true] {
        let (ok, out, err) = status_against("<html>hi</html>", json);
        assert!(!ok, "json={json}: {out}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("is not a reckon daemon"), "json={json}: {err}");
    }
}

/// QA35a L7 and L5: while the README's backup recipe holds `reckon.lock`
/// (`flock`), `reckon status` blamed a `listen` change, and a command
/// exited 1 as if it had failed. Status now says a process that is not
/// reckon holds it; a command exits 75, busy.
#[test]
fn a_backup_holding_the_lock_is_named_by_status_and_makes_commands_busy() {
    let dir = tempfile::tempdir().unwrap();
    let port = reckon_tests::free_port();
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!("[daemon]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let reckon = |args: &[&str]| {
        std::process::Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("RECKON_CONFIG")
            .output()
            .unwrap()
    };
    drop(reckon::store::Store::open(&dir.path().join("data")).unwrap());
    let lock = dir.path().join("data/reckon.lock");
    // As after the last reckon process: its pid, of a process now gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&lock, pid.to_string()).unwrap();
    // Waits (up to 10 s) for the store's own lock to be let go.
    let mut backup = std::process::Command::new("flock")
        .args(["--wait", "10"])
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let held = reckon_tests::poll_until(Duration::from_secs(10), || {
        let free = std::process::Command::new("flock")
            .arg("--nonblock")
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap();
        (!free.success()).then_some(())
    });
    assert!(held.is_some(), "flock did not take {}", lock.display());
    let out = reckon(&["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("no reckon daemon holds its data_dir")
            && err.contains("a backup holding reckon.lock?")
            && !err.contains("`listen` change"),
        "{err}"
    );
    let out = reckon(&["records", "export", "--kind", "orders"]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = backup.kill();
    let _ = backup.wait();
}
