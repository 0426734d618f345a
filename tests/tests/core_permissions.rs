//! Regressions (ops QA): data and output directories reckon cannot write.
//!
//! - `reckon config check` accepted `data_dir = "/proc/nope"` (a directory
//!   nothing can ever create), an `output_dir` under a file, and a
//!   `data_dir` the user cannot write; `reckon run` then failed at the
//!   first write. Now each is a config error naming the file, line and key,
//!   and the check creates nothing.
//! - A store this user cannot write (a read-only copy, another user's data
//!   directory) made the commands that only read it fail with a bare
//!   "permission denied"; sled opens its files for writing, so they still
//!   fail, but the error names the data directory, says it is not writable
//!   and what to do.
//!
//! Permissions mean nothing to root, so as root (e.g. in a container) the
//! commands that must be refused run as `nobody`.

use std::path::Path;
use std::process::Command;

/// Whether this test runs as root (permission bits do not stop it).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `reckon ARGS` in `dir` as a user without privileges: this one, or
/// `nobody` when this test runs as root. `dir` must then be reachable by
/// everyone ([`open_to_all`]); `nobody` runs a copy of the binary there
/// (it may not reach one inside a private checkout).
fn reckon_unprivileged(dir: &Path, args: &[&str]) -> (i32, String) {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = if is_root() {
        let bin = dir.join("reckon-bin");
        // A link where the filesystem allows (the debug binary is large).
        if !bin.exists() && std::fs::hard_link(reckon_tests::reckon_bin(), &bin).is_err() {
            std::fs::copy(reckon_tests::reckon_bin(), &bin).unwrap();
        }
        let mut c = Command::new(bin);
        c.uid(65534).gid(65534);
        c
    } else {
        Command::new(reckon_tests::reckon_bin())
    };
    let out = cmd
        .current_dir(dir)
        .args(args)
        .env_remove("RECKON_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `reckon ARGS` in `dir` as this user.
fn reckon(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(reckon_tests::reckon_bin())
        .current_dir(dir)
        .args(args)
        .env_remove("RECKON_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A temporary directory every user may enter and read (tempdir makes
/// 0700). Whatever a test made read-only in it is made writable again
/// before it is removed, so a user without privileges can remove it.
struct TestDir(tempfile::TempDir);

impl TestDir {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        fn writable(p: &Path) {
            use std::os::unix::fs::PermissionsExt as _;
            let Ok(meta) = std::fs::symlink_metadata(p) else {
                return;
            };
            // Only adds the owner's bits: a file may be a link to the
            // binary under test, whose mode must not change.
            let add = if meta.is_dir() { 0o700 } else { 0o600 };
            let mode = meta.permissions().mode() | add;
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
            if meta.is_dir() {
                for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                    writable(&e.path());
                }
            }
        }
        writable(self.0.path());
    }
}

fn open_to_all() -> TestDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    TestDir(dir)
}

#[test]
fn config_check_refuses_a_data_dir_under_proc() {
    let dir = open_to_all();
    std::fs::write(
        dir.path().join("reckon.toml"),
        "[daemon]\ndata_dir = \"/proc/nope\"\n",
    )
    .unwrap();
    let (code, err) = reckon(dir.path(), &["config", "check", "--config", "reckon.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("reckon.toml:2:12: `daemon.data_dir`: /proc/nope does not exist and cannot be created: its nearest existing ancestor /proc is on the kernel's `proc` pseudo-filesystem"),
        "{err}"
    );
    assert!(err.contains("point `data_dir` at a directory"), "{err}");
    assert!(err.contains("1 error(s); nothing was started"), "{err}");
}

#[test]
fn config_check_refuses_an_output_dir_under_a_file_and_creates_nothing() {
    let dir = open_to_all();
    std::fs::write(dir.path().join("notes"), "a file\n").unwrap();
    std::fs::write(
        dir.path().join("reckon.toml"),
        "[daemon]\ndata_dir = \"data\"\noutput_dir = \"notes/out\"\n",
    )
    .unwrap();
    let (code, err) = reckon(dir.path(), &["config", "check", "--config", "reckon.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("reckon.toml:3:14: `daemon.output_dir`: notes/out does not exist and cannot be created: its nearest existing ancestor notes ("),
        "{err}"
    );
    assert!(err.contains("/notes) is not a directory"), "{err}");
    // The check made neither directory.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn config_check_refuses_a_data_dir_this_user_cannot_create_and_creates_nothing() {
    let dir = open_to_all();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    chmod(&locked, 0o555);
    std::fs::write(
        dir.path().join("reckon.toml"),
        "[daemon]\ndata_dir = \"locked/data\"\noutput_dir = \"out\"\n",
    )
    .unwrap();
    chmod(&dir.path().join("reckon.toml"), 0o644);
    // The test's own directory is not writable by `nobody` either: the
    // output directory `out` under it is refused too, with its own key.
    let (code, err) =
        reckon_unprivileged(dir.path(), &["config", "check", "--config", "reckon.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("reckon.toml:2:12: `daemon.data_dir`: locked/data does not exist and cannot be created: its nearest existing ancestor locked ("),
        "{err}"
    );
    assert!(
        err.contains("/locked) is not writable by this user (uid "),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    // Whose the directory is, and how to make `data_dir` for this user
    // (new-user QA16 N3), with a path that works from any directory.
    assert!(
        err.contains(", mode 0555; create locked/data for this user as root: `install -d -o "),
        "{err}"
    );
    assert!(
        err.contains(&format!(" -m 0750 {}`", locked.join("data").display())),
        "{err}"
    );
    assert!(!locked.join("data").exists());
    if is_root() {
        assert!(
            err.contains("`daemon.output_dir`: out does not exist"),
            "{err}"
        );
    }
}

/// New-user QA16 N3: a `data_dir` root made (a root command on a fresh
/// install) inside the daemon user's directory: the daemon's refusal named
/// neither the owner nor `chown`. It now says whose the directory is and
/// the `chown -R` that gives it to the daemon's user. Needs root (to have
/// a directory of another user than the one refused).
#[test]
fn a_data_dir_root_made_names_its_owner_and_the_chown_for_the_daemons_user() {
    if !is_root() {
        eprintln!("skipped: needs root to make a directory the test user does not own");
        return;
    }
    let dir = open_to_all();
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::os::unix::fs::chown(&lib, Some(65534), Some(65534)).unwrap();
    let data = lib.join("data");
    std::fs::create_dir(&data).unwrap();
    chmod(&data, 0o755);
    std::fs::write(
        dir.path().join("reckon.toml"),
        "[daemon]\ndata_dir = \"lib/data\"\noutput_dir = \"lib\"\n",
    )
    .unwrap();
    let (code, err) =
        reckon_unprivileged(dir.path(), &["config", "check", "--config", "reckon.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("`daemon.data_dir`: lib/data is not writable by this user (uid 65534, gid 65534): Permission denied (os error 13); it belongs to root:root, mode 0755: as root, `chown -R nobody:"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}` gives it to this user", data.display())),
        "{err}"
    );
}

/// New-user QA16 N3: root's first command on a fresh install created
/// `data_dir` root-owned inside the daemon user's directory, without a
/// word; the daemon then refused to start. Root is refused before it
/// creates anything, as on a store another user owns. Needs root.
#[test]
fn root_is_refused_on_creating_data_dir_inside_the_daemon_users_directory() {
    use std::os::unix::fs::MetadataExt as _;
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = open_to_all();
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::os::unix::fs::chown(&lib, Some(65534), Some(65534)).unwrap();
    let port = reckon_tests::free_port();
    std::fs::write(
        dir.path().join("reckon.toml"),
        format!("[daemon]\ndata_dir = \"lib/data\"\noutput_dir = \"out\"\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    // The commands that create a store (the read-only ones need one).
    for args in [&["reconcile"][..], &["run"]] {
        let mut all = vec!["--config", "reckon.toml"];
        all.extend_from_slice(args);
        let (code, err) = reckon(dir.path(), &all);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("lib/data does not exist, and this command runs as root: it would create it, owned by root, inside ")
                && err.contains("/lib, which belongs to nobody (uid 65534); the daemon (running as nobody) could then not write it")
                && err.contains("`sudo -u nobody ")
                && err.contains("`install -d -o nobody -g nogroup -m 0750 "),
            "{args:?}: {err}"
        );
        assert!(!lib.join("data").exists(), "{args:?}: created");
    }
    // Once the daemon's user made it, root is refused as on its store.
    std::fs::create_dir(lib.join("data")).unwrap();
    std::os::unix::fs::chown(lib.join("data"), Some(65534), Some(65534)).unwrap();
    let (code, err) = reckon(dir.path(), &["--config", "reckon.toml", "reconcile"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("belongs to nobody (uid 65534), and this command runs as root"),
        "{err}"
    );
    assert_eq!(std::fs::metadata(lib.join("data")).unwrap().uid(), 65534);
    assert!(std::fs::read_dir(lib.join("data"))
        .unwrap()
        .next()
        .is_none());
}

/// A store made by this user, then made read-only: `chmod -R a-w`, but the
/// data directory itself kept writable, so what is refused is the store.
/// The config names it `data`, relative: messages name it so.
fn read_only_store() -> (TestDir, std::path::PathBuf) {
    let dir = open_to_all();
    std::fs::write(
        dir.path().join("reckon.toml"),
        "[daemon]\ndata_dir = \"data\"\noutput_dir = \"/tmp\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    drop(reckon::store::Store::open(&data).unwrap());
    let mut paths = vec![data.join("reckon.lock"), data.join("store")];
    for e in std::fs::read_dir(data.join("store")).unwrap() {
        paths.push(e.unwrap().path());
    }
    for p in &paths {
        chmod(p, if p.is_dir() { 0o555 } else { 0o444 });
    }
    chmod(&data, 0o777);
    (dir, data)
}

#[test]
fn config_check_refuses_a_store_this_user_cannot_write() {
    let (dir, _data) = read_only_store();
    let (code, err) =
        reckon_unprivileged(dir.path(), &["config", "check", "--config", "reckon.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "reckon.toml:2:12: `daemon.data_dir`: the store in data is not writable by this user (uid "
        ),
        "{err}"
    );
    assert!(err.contains("reckon.lock (Permission denied"), "{err}");
    assert!(
        err.contains("run reckon as the user that owns the store"),
        "{err}"
    );
    // Whose the files are, and the `chown` (new-user QA16 N3).
    assert!(err.contains("; it belongs to "), "{err}");
    assert!(err.contains("as root, `chown -R "), "{err}");
}

#[test]
fn read_only_commands_on_a_store_this_user_cannot_write_say_why_and_what_to_do() {
    let (dir, data) = read_only_store();
    for args in [
        &["records", "export", "--kind", "conversions"][..],
        &["kpi", "--period", "2026-11"],
    ] {
        let mut all = vec!["--config", "reckon.toml"];
        all.extend_from_slice(args);
        let (code, err) = reckon_unprivileged(dir.path(), &all);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("data_dir data is not writable (uid "),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("reckon.lock: Permission denied"),
            "{args:?}: {err}"
        );
        // Root's store: given to this user as a whole (QA18 R2).
        assert!(
            err.contains(", mode 0444: as root, `chown -R nobody:")
                && err.contains("/data` gives it to this user."),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("run the command as the user that owns")
                && err.contains("copy the whole data_dir"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("no Reckon store"), "{args:?}: {err}");
    }
    // Nothing was changed: the lock file still holds the pid of the test.
    let pid = std::fs::read_to_string(data.join("reckon.lock")).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
}

/// A data directory this user may not even look into was reported by
/// `kpi` (and `reconcile report`, `statements`) as holding no store ("run
/// `reckon sync` first").
#[test]
fn a_data_dir_this_user_cannot_enter_is_not_called_empty() {
    let (dir, data) = read_only_store();
    chmod(&data, 0o000);
    let (code, err) = reckon_unprivileged(
        dir.path(),
        &["--config", "reckon.toml", "kpi", "--period", "2026-11"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("no Reckon store"), "{err}");
    assert!(err.contains("data_dir data is not writable (uid "), "{err}");
}

/// Ops QA13 OPS-3: with the daemon running as its own user (`nobody`
/// here), root's `kpi --out k.csv` in a directory only root may write was
/// refused with a bare "Permission denied": the daemon writes `--out`. The
/// error now says so, as which user, and what to do. Needs root (to run
/// the daemon as another user).
#[test]
fn an_out_file_the_daemon_may_not_write_says_the_daemon_writes_it() {
    use std::os::unix::process::CommandExt as _;
    if !is_root() {
        eprintln!("skipped: needs root to run the daemon as another user");
        return;
    }
    let dir = open_to_all();
    let port = reckon_tests::free_port();
    std::fs::write(
        dir.path().join("reckon.toml"),
        format!(
            "[daemon]\ndata_dir = \"data\"\noutput_dir = \"out\"\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    for d in ["data", "out"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
        std::os::unix::fs::chown(dir.path().join(d), Some(65534), Some(65534)).unwrap();
    }
    let bin = dir.path().join("reckon-bin");
    if std::fs::hard_link(reckon_tests::reckon_bin(), &bin).is_err() {
        std::fs::copy(reckon_tests::reckon_bin(), &bin).unwrap();
    }
    let log = dir.path().join("run.log");
    let mut daemon = Command::new(&bin)
        .current_dir(dir.path())
        .args(["run", "--config", "reckon.toml"])
        .uid(65534)
        .gid(65534)
        .env_remove("RECKON_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let up = reckon_tests::poll_until(std::time::Duration::from_secs(20), || {
        assert!(daemon.try_wait().unwrap().is_none(), "{}", log_text());
        log_text().contains("daemon started").then_some(())
    });
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let out = Command::new(reckon_tests::reckon_bin())
        .current_dir(&rec)
        .arg("--config")
        .arg(dir.path().join("reckon.toml"))
        .args([
            "kpi", "--period", "2026-10", "--format", "csv", "--out", "k.csv",
        ])
        .env_remove("RECKON_CONFIG")
        .output()
        .unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(up.is_some(), "reckon run did not start: {}", log_text());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("note: the reckon daemon holds"), "{err}");
    assert!(
        err.contains("Permission denied")
            && err.contains(&format!(
                "the reckon daemon runs this command and writes --out {} itself, as user `nobody`, uid 65534, which may not write there: give --out a path that user can write",
                rec.join("k.csv").display()
            ))
            && err.contains("redirect the output instead (`> FILE`: your shell writes it)"),
        "{err}"
    );
    assert!(!rec.join("k.csv").exists());
}

/// Ops QA13 OPS-19: a user who may not read the config got a bare
/// "Permission denied". The error says whose it is and how to run as a
/// user who may read it. Needs root (to be another user than the file's).
#[test]
fn a_config_this_user_may_not_read_says_whose_it_is() {
    if !is_root() {
        eprintln!("skipped: only root can run reckon as another user here");
        return;
    }
    let dir = open_to_all();
    let config = dir.path().join("reckon.toml");
    std::fs::write(&config, "[daemon]\ndata_dir = \"data\"\n").unwrap();
    chmod(&config, 0o600);
    let (code, err) =
        reckon_unprivileged(dir.path(), &["config", "check", "--config", "reckon.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot read the config file: Permission denied (os error 13); it is root:root, mode 0600: run reckon as a user who may read it, e.g. `sudo -u root "),
        "{err}"
    );
    assert!(err.contains("config check --config reckon.toml`"), "{err}");
}

/// QA28-A F1: a store whose directories are this user's but whose `db`
/// file is root's (a command run as root, a restore as root) was refused
/// naming `store/`, the user's own directory, with a fix that did nothing;
/// the error names `store/db`, its owner and the `chown -R`. Needs root
/// (to own a file this user may not write).
#[test]
fn a_store_file_of_another_user_is_named_with_its_owner() {
    if !is_root() {
        eprintln!("skipped: needs root to own a file the test user may not write");
        return;
    }
    let dir = open_to_all();
    std::fs::write(
        dir.path().join("reckon.toml"),
        "[daemon]\ndata_dir = \"data\"\noutput_dir = \"/tmp\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    drop(reckon::store::Store::open(&data).unwrap());
    let mut paths = vec![data.clone(), data.join("reckon.lock"), data.join("store")];
    for e in std::fs::read_dir(data.join("store")).unwrap() {
        paths.push(e.unwrap().path());
    }
    for p in &paths {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::chown(data.join("store/db"), Some(0), Some(0)).unwrap();
    chmod(&data.join("store/db"), 0o644);
    let (code, err) = reckon_unprivileged(
        dir.path(),
        &[
            "--config",
            "reckon.toml",
            "records",
            "export",
            "--kind",
            "orders",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("store/db: Permission denied"), "{err}");
    assert!(err.contains("it belongs to root:root, mode 0644"), "{err}");
    assert!(err.contains("as root, `chown -R nobody:"), "{err}");
}

/// QA28-A F2: a `data_dir` on a filesystem mounted read-only was told to
/// `chmod u+rwx`, which does nothing there; the error says to remount.
/// Needs root and a kernel that lets it bind-mount (skipped otherwise).
#[test]
fn a_data_dir_on_a_read_only_mount_says_to_remount() {
    if !is_root() {
        eprintln!("skipped: needs root to mount");
        return;
    }
    let dir = open_to_all();
    let (src, ro) = (dir.path().join("src"), dir.path().join("ro"));
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::create_dir(&ro).unwrap();
    let mount = |args: &[&str]| {
        Command::new("mount")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let (src_s, ro_s) = (src.to_str().unwrap(), ro.to_str().unwrap());
    if !mount(&["--bind", src_s, ro_s]) {
        eprintln!("skipped: cannot bind-mount here");
        return;
    }
    let remounted = mount(&["-o", "remount,ro,bind", ro_s]);
    std::fs::write(
        dir.path().join("reckon.toml"),
        "[daemon]\ndata_dir = \"ro/data\"\noutput_dir = \"/tmp\"\n",
    )
    .unwrap();
    let (code, err) = reckon(dir.path(), &["config", "check", "--config", "reckon.toml"]);
    let _ = Command::new("umount").arg(ro_s).status();
    if !remounted {
        eprintln!("skipped: cannot remount read-only here");
        return;
    }
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Read-only file system (os error 30)")
            && err.contains("its filesystem is mounted read-only: remount it read-write"),
        "{err}"
    );
    assert!(!err.contains("chmod"), "{err}");
}

/// QA28-A F3: `statements generate|finalize` with an `output_dir` this
/// user may not write reconciled (wrote the store) first and only then
/// failed; it is the config error it is, before anything runs. Needs root
/// (to own a directory the test user may not write).
#[test]
fn statements_refuse_an_unwritable_output_dir_before_reconciling() {
    if !is_root() {
        eprintln!("skipped: needs root to own a directory the test user may not write");
        return;
    }
    let dir = open_to_all();
    std::fs::write(
        dir.path().join("reckon.toml"),
        r#"[daemon]
data_dir = "data"
output_dir = "out"

[[connectors]]
id = "net"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"

[[programs]]
id = "p"
currency = "USD"
claims = ["net"]
orders = ["shop"]

[programs.commission]
payout_currency = "USD"
period = "monthly"
timezone = "UTC"

[[programs.commission.rules]]
id = "r"
effective_from = "2020-01-01"
kind = "percent"
percent = "10"
"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    chmod(&dir.path().join("out"), 0o755);
    for command in ["generate", "finalize"] {
        let (code, err) = reckon_unprivileged(
            dir.path(),
            &[
                "--config",
                "reckon.toml",
                "statements",
                command,
                "--program",
                "p",
                "--period",
                "2026-10",
            ],
        );
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("`daemon.output_dir`: out is not writable by this user (uid 65534"),
            "{err}"
        );
        assert!(!err.contains("reconciled"), "{err}");
        assert_eq!(
            std::fs::read_dir(&data).unwrap().count(),
            0,
            "no store made"
        );
    }
}

/// QA28-E F8: another user's command, while the daemon (of its own user)
/// holds the data directory, was told to `chown -R` the live directory to
/// itself, which would stop the daemon. It is told which process holds it
/// and to run the command as that user. Needs root (to be two users).
#[test]
fn another_users_command_while_the_daemon_runs_is_told_to_run_as_its_user() {
    if !is_root() {
        eprintln!("skipped: needs root to run commands as another user");
        return;
    }
    let dir = open_to_all();
    let port = reckon_tests::free_port();
    std::fs::write(
        dir.path().join("reckon.toml"),
        format!(
            "[daemon]\ndata_dir = \"data\"\noutput_dir = \"/tmp\"\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    chmod(&dir.path().join("reckon.toml"), 0o644);
    let mut daemon = reckon_tests::RunningDaemon::start(dir.path());
    daemon.wait_for_log(&["daemon started"]);
    // A directory others may look into (the lock file is 0644).
    chmod(&dir.path().join("data"), 0o755);
    let (code, err) = reckon_unprivileged(
        dir.path(),
        &[
            "--config",
            "reckon.toml",
            "records",
            "export",
            "--kind",
            "orders",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is held by a running reckon (pid ")
            && err.contains(", user root), and this user (uid 65534")
            && err.contains("run the command as root (`sudo -u root "),
        "{err}"
    );
    assert!(!err.contains("chown -R nobody"), "{err}");
}

/// QA48 I-M1: another user running `reckon status` with a copy of the
/// daemon's config, unable to read its `status_token` file or to open the
/// data directory's lock, was told the daemon answering was "another
/// config's". Who holds the store cannot be told there: the answer names
/// the token file it could not read.
#[test]
fn status_as_a_user_who_cannot_read_the_token_names_the_token_file() {
    if !is_root() {
        return; // Needs a second user: only root can run one.
    }
    let dir = open_to_all();
    let port = reckon_tests::free_port();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    chmod(&private, 0o700);
    std::fs::write(
        private.join("status.key"),
        "0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    chmod(&private.join("status.key"), 0o600);
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"private/data\"\nlisten = \"127.0.0.1:{port}\"\nstatus_token = {{ secret = \"file:private/status.key\" }}\n"
        ),
    )
    .unwrap();
    chmod(&config, 0o644);
    let mut daemon = reckon_tests::RunningDaemon::spawn(
        &mut reckon_tests::run_command(&config),
        dir.path().join("run.log"),
    );
    daemon.wait_for_log(&["daemon started"]);
    let (code, err) = reckon_unprivileged(dir.path(), &["--config", "reckon.toml", "status"]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("answered HTTP 401, it needs the daemon's status token")
            && err.contains("status.key")
            && err.contains("Permission denied"),
        "{err}"
    );
    assert!(!err.contains("another config's"), "{err}");
    daemon.stop();
}
