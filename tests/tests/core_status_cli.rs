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
                r#"{"connectors":[]}"#
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
