//! Security QA22 S1: the command socket is made owner-only just after it
//! is bound; under a permissive umask another user could connect in that
//! moment and have the daemon run commands. The daemon now checks each
//! peer's uid: only its own user and root are served. Run as root only
//! (it needs another user to connect); skipped otherwise.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::Duration;

const NOBODY: u32 = 65534;

#[test]
fn another_users_connection_to_the_command_socket_is_refused() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    if std::fs::metadata(dir.path()).unwrap().uid() != 0 {
        println!("skipped: needs root to connect as another user");
        return;
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = reckon_tests::free_port();
    let config = |port: u16| {
        format!(
            "[daemon]\ndata_dir = \"data\"\noutput_dir = \"out\"\nlisten = \"127.0.0.1:{port}\"\n"
        )
    };
    std::fs::write(dir.path().join("reckon.toml"), config(port)).unwrap();
    // The other user's config names the same data_dir and a port nobody
    // listens on, so `reckon status` asks through the socket.
    std::fs::write(
        dir.path().join("other.toml"),
        config(reckon_tests::free_port()),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let mut daemon = reckon_tests::RunningDaemon::start(dir.path());
    let socket = dir.path().join("data/reckon.sock");
    // Logged once the socket is bound and made owner-only (its file
    // exists a moment earlier, and the daemon's chmod would undo ours).
    let up = reckon_tests::poll_until(Duration::from_secs(20), || {
        daemon.assert_running();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("command socket ready").then_some(())
    });
    assert!(up.is_some(), "no command socket");
    // What a permissive umask left for a moment: a socket others may use.
    std::fs::set_permissions(
        dir.path().join("data"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    // The other user runs a copy it can reach (the build directory may sit
    // under a directory only root can enter, as in CI's fresh clone).
    let copy = dir.path().join("reckon");
    std::fs::copy(reckon_tests::reckon_bin(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&copy)
        .current_dir(dir.path())
        .args(["--config", "other.toml", "status"])
        .env_remove("RECKON_CONFIG")
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("reckon daemon: up since"),
        "served: {stdout}"
    );
    // Told why, with a failing exit status (QA23 N1: some refused
    // clients exited 0 silently).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: only the user the daemon runs as (or root) may run commands through its socket; this client runs as uid {NOBODY}"
        )),
        "{stderr}"
    );
    let refused = reckon_tests::poll_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("command socket: refused a connection from another user")
            .then_some(text)
    });
    assert!(
        refused
            .as_deref()
            .is_some_and(|t| t.contains(&format!("uid={NOBODY}"))),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The owner is still served.
    let out = Command::new(reckon_tests::reckon_bin())
        .current_dir(dir.path())
        .args(["--config", "other.toml", "status"])
        .env_remove("RECKON_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("reckon daemon: up since"), "{stdout}");
}
