//! Regressions (ops QA) around the daemon's `[daemon] listen` address.
//!
//! - `reckon run` whose `listen` was taken opened (so created) the store
//!   before it failed to bind: a fresh empty store was left behind. It now
//!   binds first; the error names the address, the config file and what to
//!   do, and nothing is created.
//! - `reckon status` after `listen` was edited while the daemon kept the old
//!   one said only "no reckon daemon answered"; it now names the address it
//!   tried and where it came from, and asks the daemon holding the data
//!   directory through its command socket (only the store's owner can);
//!   without the socket it says a process holds the directory and
//!   suggests `--addr`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn write_config(dir: &Path, port: u16) {
    std::fs::write(
        dir.join("reckon.toml"),
        format!(
            "[daemon]\ndata_dir = \"data\"\noutput_dir = \"out\"\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
}

fn reckon(dir: &Path) -> Command {
    let mut c = Command::new(reckon_tests::reckon_bin());
    c.current_dir(dir)
        .args(["--config", "reckon.toml"])
        .env_remove("RECKON_CONFIG")
        .env_remove("RUST_LOG");
    c
}

/// Runs `cmd` to its end, within 60 s (killed and failed after).
fn finish(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = reckon_tests::poll_until(Duration::from_secs(60), || child.try_wait().unwrap());
    if exited.is_none() {
        let _ = child.kill();
        panic!("{cmd:?} did not end within 60 s");
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_whose_listen_address_is_taken_leaves_no_store_behind() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    write_config(dir.path(), port);
    let mut run = reckon(dir.path());
    run.arg("run");
    let out = finish(run);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot listen on 127.0.0.1:{port} (`[daemon] listen` in reckon.toml): "
        )),
        "{err}"
    );
    assert!(
        err.contains("another process listens there")
            && err.contains("set `listen` to a free port")
            && err.contains("the store was not opened"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "a start that could not listen created the data directory"
    );
}

#[test]
fn status_after_listen_was_edited_names_the_address_and_suggests_addr() {
    let dir = tempfile::tempdir().unwrap();
    let port = reckon_tests::free_port();
    write_config(dir.path(), port);
    let mut daemon = reckon(dir.path())
        .arg("run")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = reckon_tests::poll_until(Duration::from_secs(60), || {
        reckon_tests::http_get(port, "/healthz").filter(|(code, _)| *code == 200)
    });
    // The file now names another address; the daemon keeps its own.
    let elsewhere = reckon_tests::free_port();
    write_config(dir.path(), elsewhere);
    let mut status = reckon(dir.path());
    status.arg("status");
    let socket = finish(status);
    let mut status = reckon(dir.path());
    status.args(["status", "--json"]);
    let socket_json = finish(status);
    // Without the socket (another user, who may not use it), the hint.
    std::fs::remove_file(dir.path().join("data/reckon.sock")).unwrap();
    let mut status = reckon(dir.path());
    status.arg("status");
    let moved = finish(status);
    let mut status = reckon(dir.path());
    status.args(["status", "--addr", &format!("127.0.0.1:{port}")]);
    let with_addr = finish(status);
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let stopped = reckon_tests::poll_until(Duration::from_secs(15), || daemon.try_wait().unwrap());
    if stopped.is_none() {
        let _ = daemon.kill();
    }
    assert!(up.is_some(), "the daemon did not answer /healthz");

    // Ops QA: the daemon answers through its command socket, and says
    // where it listens.
    let err = stderr(&socket);
    assert!(socket.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "note: no reckon daemon answered at http://127.0.0.1:{elsewhere}/status: "
        )) && err.contains("answers on its command socket")
            && err.contains(&format!(
                "this daemon listens on 127.0.0.1:{port}, the `listen` it started with"
            )),
        "{err}"
    );
    // The same daemon as `--addr` asks over HTTP (the store's size may
    // change between the two).
    let since = |out: &Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split(", config").next().unwrap_or_default().to_owned()
    };
    assert!(
        since(&socket).starts_with("reckon daemon: up since 20"),
        "{}",
        since(&socket)
    );
    assert_eq!(since(&socket), since(&with_addr));
    let json: serde_json::Value = serde_json::from_slice(&socket_json.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&socket_json)));
    assert!(json.get("started_at").is_some(), "{json}");

    let err = stderr(&moved);
    assert_eq!(moved.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "no reckon daemon answered at http://127.0.0.1:{elsewhere}/status: "
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "127.0.0.1:{elsewhere} is `[daemon] listen` in reckon.toml, but the daemon (pid {}, `reckon --config reckon.toml run`) holds its data_dir data: it listens on the address its config had when it started",
            daemon.id()
        )),
        "{err}"
    );
    assert!(err.contains("reckon status --addr HOST:PORT"), "{err}");
    assert!(
        with_addr.status.success(),
        "--addr with the daemon's address: {}",
        stderr(&with_addr)
    );

    // With no daemon at all, the same suggestion, without the holder.
    let mut status = reckon(dir.path());
    status.arg("status");
    let none = finish(status);
    let err = stderr(&none);
    assert_eq!(none.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is `reckon run` running with this config?")
            && err.contains("reckon status --addr HOST:PORT")
            && !err.contains("holds its data_dir"),
        "{err}"
    );
}
