//! Regressions (ops QA) around the daemon's `[daemon] listen` address.
//!
//! - `reckon run` whose `listen` was taken opened (so created) the store
//!   before it failed to bind: a fresh empty store was left behind. It now
//!   binds first; the error names the address, the config file and what to
//!   do, and nothing is created.
//! - `reckon status` after `listen` was edited while the daemon kept the old
//!   one said only "no reckon daemon answered"; it now names the address it
//!   tried and where it came from, says a process holds the data directory
//!   when one does, and suggests `--addr`.

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
            "127.0.0.1:{elsewhere} is `[daemon] listen` in reckon.toml, but a process (pid {}) holds its data_dir",
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
