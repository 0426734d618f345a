//! QA42b B-M1 and B-L2: a statements run cut short (the daemon killed
//! mid-finalize, a first `generate` killed) is completed by the daemon at
//! its start: the finalised files are written back from the store, a
//! staging directory of a period the store records nothing of is removed,
//! and what cannot be completed is listed by `reckon status` and `/status`
//! with the command to run. Before, the store's record was completed from
//! its redo log, but the period directory kept the drafts and
//! `.<period>.staging` until someone ran a command of that period, and
//! `reckon status` said nothing.

use reckon::payout::book::{self, StatementBook as _, StoreBook};
use reckon::store::Store;
use reckon_tests::RunningDaemon;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Program `shop-us` (claims of three example-plugin connectors, 10 % in
/// USD) and its orders from a file drop, every connector disabled; the
/// daemon listens on `port`.
fn config_text(port: u16) -> String {
    reckon_tests::shop_us_daemon_config(port, "CUT_SHORT_TEST_KEY")
}

fn reckon(config: &Path, args: &[&str]) -> Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("CUT_SHORT_TEST_KEY", "k")
        .env_remove("RECKON_CONFIG")
        .output()
        .expect("run reckon")
}

fn statements(config: &Path, op: &str, period: &str) -> Output {
    reckon(
        config,
        &["statements", op, "--program", "shop-us", "--period", period],
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The files of a directory, by name.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The suite's installation in `root`: the example and orders plugins, the
/// file-drop directory and the config, whose daemon listens on `port`.
/// Returns the config's path.
fn install(root: &Path, port: u16) -> PathBuf {
    reckon_tests::install_plugins(&root.join("plugins"), &["example", "orders"]);
    std::fs::create_dir(root.join("drop")).unwrap();
    let config = root.join("reckon.toml");
    std::fs::write(&config, config_text(port)).unwrap();
    config
}

/// `reckon run` on `config`, once its command socket is ready.
fn start_daemon(config: &Path) -> RunningDaemon {
    let mut command = reckon_tests::run_command(config);
    command.env("CUT_SHORT_TEST_KEY", "k");
    let mut d = RunningDaemon::spawn(&mut command, config.with_file_name("run.log"));
    d.wait_for_log(&["daemon started", "command socket ready"]);
    d
}

/// The state a `kill -9` of the daemon between the commit point of
/// August's finalise and the swap of its files leaves: the store's redo
/// log complete but its last part (the period record) not applied, so
/// the store still reads August as the draft; the period directory holds
/// the drafts and `.2026-08.staging` the finalised files. Returns the
/// finalised files, as an uninterrupted finalise leaves them.
fn finalise_cut_short(dir: &Path, config: &Path) -> Vec<(String, Vec<u8>)> {
    reckon_tests::store_august(&dir.join("data"));
    let out = statements(config, "generate", "2026-08");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let program_dir = dir.join("out/statements/shop-us");
    let period_dir = program_dir.join("2026-08");
    copy_dir(&period_dir, &dir.join("drafts"));
    let key = book::key(&["period", "shop-us", "2026-08"]);
    let read_record = || {
        let store = Store::open(&dir.join("data")).unwrap();
        let b = StoreBook::open(&store).unwrap();
        b.get(&key).unwrap().unwrap()
    };
    let draft = read_record();
    let out = statements(config, "finalize", "2026-08");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let finalised = contents(&period_dir);
    let record = read_record();
    assert_eq!(record["status"], "finalised");

    let store = Store::open(&dir.join("data")).unwrap();
    let b = StoreBook::open(&store).unwrap();
    let part = serde_json::to_string(&[(&key, &record)]).unwrap();
    let head = book::RedoHead {
        book_version: book::BOOK_VERSION,
        parts: vec![reckon::payout::render::sha256_hex(part.as_bytes())],
    };
    b.apply(vec![
        (key.clone(), Some(book::encode(&draft))),
        (
            book::key(&["redo", "shop-us", "00000000"]),
            Some(book::encode(part.as_str())),
        ),
        (
            book::key(&["redo", "shop-us", "head"]),
            Some(book::encode(&head)),
        ),
    ])
    .unwrap();
    b.flush().unwrap();
    drop(b);
    drop(store);
    std::fs::rename(&period_dir, program_dir.join(".2026-08.staging")).unwrap();
    std::fs::rename(dir.join("drafts"), &period_dir).unwrap();
    finalised
}

/// B-M1: the daemon's start completes the finalise (store from its redo
/// log, files from the store) and says so naming program and period; B-L2:
/// a first `generate` of September killed before recording anything left
/// `.2026-09.staging`, which goes too. A finalise whose files cannot be
/// written back (here: its `set-aside/2026-08` is a symbolic link, which
/// every statements run of August refuses) is listed by `reckon status` and `/status`
/// with the command to run, and the next start completes it.
#[test]
fn a_finalise_cut_short_is_completed_by_the_daemons_start_and_status_lists_what_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = reckon_tests::free_port();
    let config = install(root, port);
    let finalised = finalise_cut_short(root, &config);
    let program_dir = root.join("out/statements/shop-us");
    let september = program_dir.join(".2026-09.staging");
    std::fs::create_dir(&september).unwrap();
    std::fs::write(september.join("impact.1.json"), "{").unwrap();

    // 1. Files cannot be written back: listed, with what to run.
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = program_dir.join("set-aside/2026-08");
    std::fs::create_dir(program_dir.join("set-aside")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let daemon = start_daemon(&config);
    let log = daemon.log_text();
    assert!(
        log.contains("is completed from its log") && log.contains("periods=2026-08"),
        "{log}"
    );
    assert!(
        log.contains("a run cut short could not be completed")
            && log.contains("program=\"shop-us\"")
            && log.contains("period=2026-08"),
        "{log}"
    );
    let run_finalize = "run `reckon statements finalize --program shop-us --period 2026-08`";
    let status = reckon(&config, &["status"]);
    let shown = text(&status.stdout);
    assert!(
        shown.contains("statements runs cut short, not completed")
            && shown.contains(
                "shop-us 2026-08: program `shop-us`: a finalize of 2026-08 was interrupted"
            )
            && shown.contains(run_finalize),
        "{shown}{}",
        text(&status.stderr)
    );
    let (code, body) = reckon_tests::http_get(port, "/status").unwrap();
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["cut_short"][0]["program"], "shop-us", "{body}");
    assert_eq!(json["cut_short"][0]["period"], "2026-08", "{body}");
    assert!(
        json["cut_short"][0]["error"]
            .as_str()
            .unwrap()
            .contains(run_finalize),
        "{body}"
    );
    // The run that recorded nothing is gone all the same.
    assert!(!september.exists());
    daemon.stop();

    // 2. Fixed: the next start completes it.
    std::fs::remove_file(&link).unwrap();
    let daemon = start_daemon(&config);
    let log = daemon.log_text();
    assert!(
        log.contains("a finalize cut short before its files were swapped in is completed")
            && log.contains("period=2026-08"),
        "{log}"
    );
    assert_eq!(names(&program_dir), ["2026-08", "set-aside"]);
    assert_eq!(contents(&program_dir.join("2026-08")), finalised);
    let verify = statements(&config, "verify", "2026-08");
    assert!(
        verify.status.success(),
        "{}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
    assert!(text(&verify.stdout).contains("(finalised)"));
    let shown = text(&reckon(&config, &["status"]).stdout);
    assert!(!shown.contains("cut short"), "{shown}");
    daemon.stop();
}

/// B-L2 without the daemon: `show` and `verify` of a period whose first
/// `generate` was killed before recording anything still say nothing is
/// recorded, and remove the staging directory it left.
#[test]
fn show_and_verify_remove_the_staging_of_a_period_with_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = root.join("reckon.toml");
    std::fs::write(&config, config_text(reckon_tests::free_port())).unwrap();
    drop(Store::open(&root.join("data")).unwrap());
    let program_dir: PathBuf = root.join("out/statements/shop-us");
    let staging = program_dir.join(".2026-08.staging");
    for op in ["show", "verify"] {
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("impact.1.json"), "{").unwrap();
        let out = statements(&config, op, "2026-08");
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{op}: {err}");
        assert!(err.contains("no statements recorded"), "{op}: {err}");
        assert!(!staging.exists(), "{op}: {:?}", names(&program_dir));
    }
}

/// QA43 C-M1: a `verify` between the kill and the daemon's restart
/// reports the interrupted finalise, and its recovery removes the staging
/// directory. The daemon's start still completes the finalise: the store
/// records August finalised while its files are the draft of an earlier
/// version, which no staging directory has to point out.
#[test]
fn a_finalise_cut_short_and_verified_before_the_restart_is_completed_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = install(root, reckon_tests::free_port());
    let finalised = finalise_cut_short(root, &config);
    let program_dir = root.join("out/statements/shop-us");
    let verify = statements(&config, "verify", "2026-08");
    assert!(!verify.status.success());
    assert!(
        text(&verify.stdout).contains("a finalize of 2026-08 was interrupted"),
        "{}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
    assert_eq!(names(&program_dir), ["2026-08"], "the staging is gone");

    let daemon = start_daemon(&config);
    let log = daemon.log_text();
    assert!(
        log.contains("a finalize cut short before its files were swapped in is completed")
            && log.contains("period=2026-08"),
        "{log}"
    );
    assert_eq!(contents(&program_dir.join("2026-08")), finalised);
    let verify = statements(&config, "verify", "2026-08");
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    daemon.stop();
}

/// QA44b B-L2: a `finalize` killed after staging its files but before
/// recording them leaves `.2026-08.staging` (files saying `finalised`)
/// beside a period the store records as a draft. The daemon's start removes
/// it and says so; the draft files stay as recorded.
#[test]
fn the_daemons_start_removes_an_unrecorded_staging_beside_a_draft() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = install(root, reckon_tests::free_port());
    reckon_tests::store_august(&root.join("data"));
    let out = statements(&config, "generate", "2026-08");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let program_dir = root.join("out/statements/shop-us");
    let drafts = contents(&program_dir.join("2026-08"));
    let staging = program_dir.join(".2026-08.staging");
    copy_dir(&program_dir.join("2026-08"), &staging);
    std::fs::write(staging.join("summary.csv"), "status,finalised\n").unwrap();

    let daemon = start_daemon(&config);
    let log = daemon.log_text();
    assert!(
        log.contains("left beside the files of a draft period") && log.contains("period=2026-08"),
        "{log}"
    );
    assert_eq!(names(&program_dir), ["2026-08"]);
    assert_eq!(contents(&program_dir.join("2026-08")), drafts);
    daemon.stop();
}
