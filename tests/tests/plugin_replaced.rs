//! QA42a A-H1: a plugin rebuilt and put in place of the library a running
//! reckon loaded. `cp` rewrites the loaded file in place (same inode): the
//! daemon, which had that file mapped, crashed with SIGSEGV at the next
//! in-process run (or at its exit, for subprocess connectors). A rename
//! (`install`, `mv`) left an in-process connector running the old build
//! without a word, although the README promised a refusal.
//!
//! Now a session runs the build it started with to its end, whatever is
//! written to the file meanwhile, and the next session, in-process or in a
//! child, is refused as the README says (`… was replaced since reckon
//! loaded it …; restart reckon, or reload it (SIGHUP), to load the new file`) until the file holds
//! the loaded bytes again. The test process is the daemon here: without the
//! fix it crashes (a failing test), or the refusal is missing. Needs
//! `cargo build --workspace` first (plugins and the `reckon` binary).

mod core_support;

use chrono::{NaiveDate, TimeZone, Utc};
use plugin_api::protocol::{Checkpoint, ErrorKind, Record, SessionMode, SessionOpen, Window};
use reckon::plugins::{
    load, run_session_with, HttpPolicy, Isolation, Plugin, Secret, SessionError, SessionOptions,
    SessionReport, SessionSink, SessionTuning,
};
use reckon::store::CommitStats;
use reckon_tests::fakes::example::{router, ExampleApi, ExampleData};
use reckon_tests::fakes::server::FakeServer;
use serde_json::json;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk_live_REPLACED_4242";

fn window() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 7).unwrap(),
    }
}

fn open(base_url: &str) -> SessionOpen {
    SessionOpen {
        mode: SessionMode::Read,
        connector_id: "net1".to_owned(),
        settings: json!({ "page_size": 50 }),
        base_url: base_url.to_owned(),
        streams: Vec::new(),
        window: Some(window()),
        checkpoints: BTreeMap::new(),
        now: Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
        timezone: None,
    }
}

fn options(isolation: Isolation) -> SessionOptions {
    SessionOptions {
        isolation,
        step_deadline: Duration::from_secs(20),
        host_exe: reckon_tests::reckon_bin(),
        max_requests: 100_000,
    }
}

fn policy() -> HttpPolicy {
    let mut p = HttpPolicy::new("net1");
    p.timeout = Duration::from_secs(5);
    p.secrets = BTreeMap::from([("api_key".to_owned(), Secret(KEY.to_owned()))]);
    p
}

/// Keeps the pages; at the first commit (the plugin's code has run and
/// runs on), writes `rewrite`'s bytes into its file in place, as `cp` does.
#[derive(Default)]
struct Sink {
    records: usize,
    rewrite: Option<(PathBuf, Vec<u8>)>,
}

impl SessionSink for Sink {
    fn commit(
        &mut self,
        records: Vec<Record>,
        _checkpoint: Checkpoint,
    ) -> Result<CommitStats, String> {
        if let Some((path, bytes)) = self.rewrite.take() {
            copy_in_place(&path, &bytes);
        }
        self.records += records.len();
        Ok(CommitStats::default())
    }
}

/// What `cp NEW path` does to an existing file: truncates and rewrites the
/// same inode.
fn copy_in_place(path: &Path, bytes: &[u8]) {
    let inode = std::fs::metadata(path).unwrap().ino();
    std::fs::write(path, bytes).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().ino(), inode);
}

/// Another build of "the plugin": another plugin's library, whose code at
/// the same offsets is something else entirely.
fn other_build() -> Vec<u8> {
    std::fs::read(reckon_tests::profile_dir().join(reckon_tests::plugin_file_name("cake")))
        .expect("the cake plugin: run `cargo build --workspace` first")
}

async fn session(
    plugin: &Arc<Plugin>,
    base_url: &str,
    iso: Isolation,
    sink: &mut Sink,
) -> Result<SessionReport, SessionError> {
    let tuning = SessionTuning {
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        ..SessionTuning::default()
    };
    run_session_with(
        plugin.clone(),
        open(base_url),
        policy(),
        options(iso),
        sink,
        tuning,
    )
    .await
}

fn assert_refused_as_replaced(r: Result<SessionReport, SessionError>, file: &Path, iso: Isolation) {
    let e = match r {
        Ok(rep) => panic!("{iso:?}: a session ran the replaced library: {rep:?}"),
        Err(e) => e,
    };
    assert_eq!(e.kind, ErrorKind::Config, "{iso:?}: {e}");
    assert!(!e.retryable, "{iso:?}: {e}");
    let file = std::fs::canonicalize(file).unwrap();
    assert!(
        e.to_string().starts_with(&format!(
            "connector `net1`: plugin `example`: {} was replaced since reckon loaded it (loaded sha256 ",
            file.display()
        )) && e.message.ends_with("); restart reckon, or reload it (SIGHUP), to load the new file"),
        "{iso:?}: {e}"
    );
}

#[tokio::test]
async fn a_build_copied_over_a_loaded_plugin_changes_nothing_that_runs_and_its_next_session_is_refused(
) {
    let w = window();
    let api = ExampleApi::new(ExampleData::generate(7, 230, w.from, w.to), KEY);
    let truth = api.data.created_in(w.from, w.to).len() + api.data.reversed_in(w.from, w.to).len();
    let server = FakeServer::start(router(api.clone()));
    for iso in [Isolation::InProcess, Isolation::Subprocess] {
        let dir = tempfile::tempdir().unwrap();
        let file = reckon_tests::install_plugins(dir.path(), &["example"]).remove(0);
        let loaded = std::fs::read(&file).unwrap();
        let plugin = load(dir.path(), "example", None).unwrap();

        // Copied over in the middle of a session: it runs to its end with
        // the build it started with (5 pages of conversions and more).
        let mut sink = Sink {
            rewrite: Some((file.clone(), other_build())),
            ..Sink::default()
        };
        let report = session(&plugin, &server.base_url, iso, &mut sink)
            .await
            .unwrap_or_else(|e| panic!("{iso:?}: {e}"));
        assert!(sink.rewrite.is_none(), "{iso:?}: no page was committed");
        assert_eq!(sink.records, truth, "{iso:?}");
        assert!(report.pages > 1, "{iso:?}: {report:?}");

        // The next session is refused, and sends nothing.
        let requests = api.requests.load(Ordering::SeqCst);
        let r = session(&plugin, &server.base_url, iso, &mut Sink::default()).await;
        assert_refused_as_replaced(r, &file, iso);
        assert_eq!(api.requests.load(Ordering::SeqCst), requests, "{iso:?}");

        // A truncated copy (one still being written) is no better.
        copy_in_place(&file, &loaded[..4096]);
        let r = session(&plugin, &server.base_url, iso, &mut Sink::default()).await;
        assert_refused_as_replaced(r, &file, iso);

        // The loaded bytes back in place: the same library, it runs again.
        copy_in_place(&file, &loaded);
        let mut sink = Sink::default();
        session(&plugin, &server.base_url, iso, &mut sink)
            .await
            .unwrap_or_else(|e| panic!("{iso:?}: {e}"));
        assert_eq!(sink.records, truth, "{iso:?}");
    }
}

/// `install NEW path` (or a rename) puts a new inode at the path: an
/// in-process connector went on running the old build, its sync lines
/// naming the old sha256, with no word about the new file.
#[tokio::test]
async fn a_build_renamed_over_a_loaded_in_process_plugin_is_refused_not_run_silently() {
    let w = window();
    let api = ExampleApi::new(ExampleData::generate(7, 40, w.from, w.to), KEY);
    let server = FakeServer::start(router(api.clone()));
    let dir = tempfile::tempdir().unwrap();
    let file = reckon_tests::install_plugins(dir.path(), &["example"]).remove(0);
    let plugin = load(dir.path(), "example", None).unwrap();
    session(
        &plugin,
        &server.base_url,
        Isolation::InProcess,
        &mut Sink::default(),
    )
    .await
    .unwrap();
    let staged = dir.path().join(".libreckon_plugin_example.so.new");
    std::fs::write(&staged, other_build()).unwrap();
    std::fs::rename(&staged, &file).unwrap();
    let requests = api.requests.load(Ordering::SeqCst);
    let r = session(
        &plugin,
        &server.base_url,
        Isolation::InProcess,
        &mut Sink::default(),
    )
    .await;
    assert_refused_as_replaced(r, &file, Isolation::InProcess);
    assert_eq!(api.requests.load(Ordering::SeqCst), requests);

    // Removed: refused too, saying so.
    std::fs::remove_file(&file).unwrap();
    let e = session(
        &plugin,
        &server.base_url,
        Isolation::InProcess,
        &mut Sink::default(),
    )
    .await
    .unwrap_err();
    assert!(
        e.message.contains("cannot be read since reckon loaded it")
            && e.message.ends_with("put the plugin file back, or restart reckon to load what the plugin directory holds now"),
        "{e}"
    );
}

/// `reckon run` with its log lines read as they come.
struct Daemon;

impl Daemon {
    fn start(config: &Path) -> reckon_tests::LoggedChild {
        reckon_tests::LoggedChild::spawn(
            core_support::reckon(config)
                .arg("run")
                .env("RUST_LOG", "info"),
        )
    }
}

/// The report's own steps, through the binary: a daemon syncing every
/// second, a build copied over its plugin with `cp`, then SIGTERM. In
/// process, the daemon died with SIGSEGV at the next run, no log line; with
/// subprocess isolation it refused the run but died with SIGSEGV after
/// `daemon stopped`. Now, either way, the next runs are refused naming the
/// replaced file, and the daemon stops cleanly.
#[test]
fn a_daemon_whose_plugin_is_copied_over_refuses_its_runs_and_stops_cleanly() {
    let server = FakeServer::start(core_support::router(Arc::new(core_support::FakeData {
        per_day: 3,
        requests: Default::default(),
    })));
    for isolation in ["in_process", "subprocess"] {
        let s = core_support::setup(
            &server.base_url,
            "* * * * * *",
            &format!("listen = \"127.0.0.1:{}\"", reckon_tests::free_port()),
        );
        let text = std::fs::read_to_string(&s.config).unwrap();
        let text = text.replace(
            "isolation = \"subprocess\"",
            &format!("isolation = \"{isolation}\""),
        );
        std::fs::write(&s.config, text).unwrap();
        let file = s
            .dir
            .path()
            .join("plugins")
            .join(reckon_tests::plugin_file_name("example"));
        let mut daemon = Daemon::start(&s.config);
        assert!(
            daemon.wait_for("sync finished", Duration::from_secs(60)),
            "{isolation}: no sync finished:\n{}",
            daemon.log()
        );
        copy_in_place(&file, &other_build());
        if !daemon.wait_for(
            "was replaced since reckon loaded it",
            Duration::from_secs(60),
        ) {
            let status = reckon_tests::poll_until(Duration::from_secs(5), || {
                daemon.child.try_wait().unwrap()
            });
            panic!(
                "{isolation}: no run was refused; the daemon's exit: {status:?}\n{}",
                daemon.log()
            );
        }
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &daemon.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let exited =
            reckon_tests::poll_until(Duration::from_secs(30), || daemon.child.try_wait().unwrap())
                .unwrap_or_else(|| {
                    panic!("{isolation}: reckon run did not exit:\n{}", daemon.log())
                });
        daemon.wait_for("\u{0}", Duration::from_secs(5));
        assert!(
            exited.success(),
            "{isolation}: {exited:?}\n{}",
            daemon.log()
        );
        assert!(daemon.log().contains("daemon stopped"), "{}", daemon.log());
    }
}
