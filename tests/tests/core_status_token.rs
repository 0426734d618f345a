//! `[daemon] status_token`: `/status` and `/metrics` require it as a bearer
//! token, `/healthz` does not, `reckon status` sends the config's, and a
//! SIGHUP applies a new one (security QA M3: they answered anyone who
//! could reach `listen`).

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const TOKEN: &str = "4f1c9a7e2b6d8035c1e4a9f7b2d6e8a1";
const NEW_TOKEN: &str = "9d2e7b4c1a8f6035e2b9c4d7a1f8e6b3";

/// `GET path` with an optional bearer token: status code and body.
fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    if status == 401 {
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer realm=\"reckon\""),
            "{head}"
        );
    }
    (status, body.to_owned())
}

fn config_text(port: u16, token_line: &str) -> String {
    config_on("127.0.0.1", port, token_line)
}

fn config_on(host: &str, port: u16, token_line: &str) -> String {
    format!(
        "[daemon]\ndata_dir = \"data\"\noutput_dir = \"out\"\nlisten = \"{host}:{port}\"\n{token_line}"
    )
}

fn write_key(dir: &Path, token: &str) {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("status.key");
    std::fs::write(&key, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn reckon(dir: &Path, config: &str, args: &[&str]) -> Output {
    Command::new(reckon_tests::reckon_bin())
        .current_dir(dir)
        .args(["--config", config])
        .args(args)
        .env_remove("RECKON_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn status_and_metrics_need_the_token_healthz_does_not_and_a_sighup_changes_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = reckon_tests::free_port();
    write_key(dir.path(), TOKEN);
    // On every address: what the token is for (and what a reload that
    // removes it must warn about).
    let token_line = "status_token = { secret = \"file:status.key\" }\n";
    std::fs::write(
        dir.path().join("reckon.toml"),
        config_on("0.0.0.0", port, token_line),
    )
    .unwrap();
    let check = reckon(dir.path(), "reckon.toml", &["config", "check"]);
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{out}");
    assert!(
        out.contains("/status and /metrics require the bearer token of `[daemon] status_token`"),
        "{out}"
    );

    let mut daemon = reckon_tests::RunningDaemon::start(dir.path());
    let up = reckon_tests::poll_until(Duration::from_secs(20), || {
        daemon.assert_running();
        reckon_tests::http_get(port, "/healthz").map(|(code, _)| code)
    });
    assert_eq!(up, Some(200), "/healthz needs no token");

    for path in ["/status", "/metrics"] {
        let (code, body) = get(port, path, None);
        assert_eq!(code, 401, "{path}: {body}");
        assert!(
            body.contains("need `Authorization: Bearer <token>`"),
            "{body}"
        );
        let (code, body) = get(port, path, Some("not-the-token-at-all-0000000000"));
        assert_eq!(code, 401, "{path}: {body}");
        assert!(body.contains("is not this daemon's"), "{body}");
        let (code, body) = get(port, path, Some(TOKEN));
        assert_eq!(code, 200, "{path}: {body}");
    }
    let (_, status) = get(port, "/status", Some(TOKEN));
    assert!(status.contains("\"connectors\""), "{status}");
    // Refusals are counted (QA22 S7).
    let (_, metrics) = get(port, "/metrics", Some(TOKEN));
    for line in [
        "reckon_status_auth_failures_total{reason=\"missing\"} 2",
        "reckon_status_auth_failures_total{reason=\"wrong\"} 2",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    // Two Authorization headers, the right one first: refused (a proxy
    // and the daemon could read different ones; QA22 S8).
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nAuthorization: Bearer x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401") && answer.contains("send one `Authorization` header"),
        "{answer}"
    );
    // Counted as a wrong token, not a missing one (QA23 N3).
    let (_, metrics) = get(port, "/metrics", Some(TOKEN));
    assert!(
        metrics.contains("reckon_status_auth_failures_total{reason=\"wrong\"} 3"),
        "{metrics}"
    );
    // One header that is not a bearer token in visible ASCII: sent, so
    // wrong, not missing (QA28-E F14).
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401")
            && answer.contains("is not `Bearer <token>` in visible ASCII"),
        "{answer}"
    );
    let (_, metrics) = get(port, "/metrics", Some(TOKEN));
    assert!(
        metrics.contains("reckon_status_auth_failures_total{reason=\"wrong\"} 4")
            && metrics.contains("reckon_status_auth_failures_total{reason=\"missing\"} 2"),
        "{metrics}"
    );

    // `reckon status` sends the config's token.
    let out = reckon(dir.path(), "reckon.toml", &["status", "--json"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("\"connectors\"") && stderr.is_empty(),
        "{stderr}"
    );

    // A config without the token gets the 401 explained, and the store's
    // owner is answered through the command socket.
    std::fs::write(dir.path().join("other.toml"), config_text(port, "")).unwrap();
    let out = reckon(dir.path(), "other.toml", &["status", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("answered HTTP 401, it needs the daemon's status token: other.toml sets no `[daemon] status_token`")
            && stderr.contains("answers on its command socket")
            // Not sent back to the address that answered 401 (QA22 S2).
            && stderr.contains(&format!("`reckon status --addr 0.0.0.0:{port}` with a config file holding its `[daemon] status_token`")),
        "{stderr}"
    );
    // With --addr only (no data directory to find the socket by), the
    // error says the same, without the advice for an address where
    // nothing answers.
    let addr = format!("127.0.0.1:{port}");
    let out = reckon(dir.path(), "other.toml", &["status", "--addr", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("answered HTTP 401") && !stderr.contains("is `reckon run` running"),
        "{stderr}"
    );
    // A config file that does not exist is not said to set no token.
    let out = reckon(dir.path(), "missing.toml", &["status", "--addr", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("status token: missing.toml cannot be read, so no token was sent"),
        "{stderr}"
    );
    // Nor one whose token is written wrong.
    std::fs::write(
        dir.path().join("literal.toml"),
        config_text(port, &format!("status_token = \"{TOKEN}\"\n")),
    )
    .unwrap();
    let out = reckon(dir.path(), "literal.toml", &["status", "--addr", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "status token: the `[daemon]` of literal.toml has an error, so no token was sent"
        ) && !stderr.contains(TOKEN),
        "{stderr}"
    );

    // SIGHUP: a new token replaces the old one.
    write_key(dir.path(), NEW_TOKEN);
    daemon.hup();
    let swapped = reckon_tests::poll_until(Duration::from_secs(20), || {
        (get(port, "/status", Some(NEW_TOKEN)).0 == 200).then_some(())
    });
    assert!(swapped.is_some(), "the new token was not applied");
    assert_eq!(get(port, "/metrics", Some(TOKEN)).0, 401);
    let log = || std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default();
    // The reload line names the change, never the value (QA22 S4).
    let reloaded = reckon_tests::poll_until(Duration::from_secs(20), || {
        log().contains("status_token=changed").then_some(())
    });
    assert!(
        reloaded.is_some() && !log().contains(NEW_TOKEN),
        "{}",
        log()
    );

    // Removed on a daemon others can reach: said at WARN (QA22 S3).
    std::fs::write(
        dir.path().join("reckon.toml"),
        config_on("0.0.0.0", port, ""),
    )
    .unwrap();
    daemon.hup();
    let warned = reckon_tests::poll_until(Duration::from_secs(20), || {
        let text = log();
        text.contains("status_token=removed").then_some(text)
    })
    .unwrap_or_else(|| panic!("{}", log()));
    assert!(
        warned.contains("SIGHUP: `status_token` was removed: `[daemon] listen` is 0.0.0.0:")
            && warned.contains("without authentication"),
        "{warned}"
    );
    assert_eq!(get(port, "/status", None).0, 200);
}

#[test]
fn a_status_token_that_cannot_keep_status_private_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = reckon_tests::free_port();
    let line = "status_token = { secret = \"file:status.key\" }\n";
    std::fs::write(dir.path().join("reckon.toml"), config_text(port, line)).unwrap();
    for (token, expected) in [
        (
            "short-token",
            "is 11 characters, fewer than 16: a client could guess it",
        ),
        ("", "is empty"),
        (
            "k".repeat(1025).as_str(),
            "is 1025 characters, more than 1024",
        ),
        (
            "has a space in the middle ok",
            "holds a space or a character an HTTP header cannot carry",
        ),
    ] {
        write_key(dir.path(), token);
        let out = reckon(dir.path(), "reckon.toml", &["config", "check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("reckon.toml:5:16: `daemon.status_token`: secret `file:status.key` ")
                && err.contains(expected)
                && err.contains("openssl rand -hex 32"),
            "{token:?}: {err}"
        );
        assert!(token.is_empty() || !err.contains(token), "{err}");
    }
    // A literal is refused as every secret is.
    std::fs::write(
        dir.path().join("reckon.toml"),
        config_text(port, &format!("status_token = \"{TOKEN}\"\n")),
    )
    .unwrap();
    let out = reckon(dir.path(), "reckon.toml", &["config", "check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`daemon.status_token`: `status_token` is a secret: write `status_token = { secret = \"env:NAME\" }`")
            && !err.contains(TOKEN),
        "{err}"
    );
}
