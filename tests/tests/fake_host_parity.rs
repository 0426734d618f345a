//! QA33-C M1: what the daemon's session driver refuses, a plugin's own
//! `FakeHost` test refuses in the same words (`plugin_api::validate`). The
//! same `faulty` plugin runs through both: loaded as a library by the
//! daemon, and linked in for `FakeHost`. (Its own test binary: two plugin
//! crates linked into one would both define the plugin entry symbol.)

use chrono::{TimeZone, Utc};
use plugin_api::protocol::{Checkpoint, ErrorKind, Record, SessionMode, SessionOpen, Window};
use plugin_api::testing::{FakeHost, Reply};
use reckon::plugins::{
    load, run_session_with, HttpPolicy, Isolation, SessionOptions, SessionSink, SessionTuning,
};
use reckon::store::CommitStats;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Default)]
struct MemSink;

impl SessionSink for MemSink {
    fn commit(&mut self, records: Vec<Record>, _: Checkpoint) -> Result<CommitStats, String> {
        Ok(CommitStats {
            new: records.len() as u64,
            ..CommitStats::default()
        })
    }
}

fn open(mode: SessionMode, fault: &str) -> SessionOpen {
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    SessionOpen {
        mode,
        connector_id: "flaky_net".into(),
        settings: json!({ "fault": fault }),
        base_url: "https://faulty.invalid".into(),
        streams: Vec::new(),
        window: (mode == SessionMode::Read).then(|| Window {
            from: day(1),
            to: day(7),
        }),
        checkpoints: BTreeMap::new(),
        now: Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
        timezone: None,
    }
}

/// A false pass and output in a check passed a plugin's `FakeHost` tests,
/// then failed every sync in the daemon; both now refuse them alike.
#[tokio::test]
async fn fake_host_refuses_what_the_daemon_refuses_in_the_same_words() {
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        "{}reckon_fault_behaviour{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let src = reckon_tests::profile_dir().join(&file);
    assert!(
        src.exists(),
        "{} missing: run `cargo build --workspace` first",
        src.display()
    );
    std::fs::copy(&src, dir.path().join(&file)).unwrap();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    for (mode, fault, said) in [
        (
            SessionMode::Read,
            "false_pass",
            "plugin `faulty` produced invalid output: stream `conversions`: checkpoint declares a complete pass over account `a1` days 2026-11-01..2026-11-01, but a pass must be of a spend stream, name an account and lie within the session's window (2026-11-01..2026-11-07)",
        ),
        (
            SessionMode::Check,
            "check_records",
            "plugin `faulty` produced invalid output: records emitted in a check session",
        ),
        (
            SessionMode::Check,
            "check_checkpoint",
            "plugin `faulty` produced invalid output: checkpoint in a check session",
        ),
    ] {
        let daemon = run_session_with(
            plugin.clone(),
            open(mode, fault),
            HttpPolicy::new("flaky_net"),
            SessionOptions {
                isolation: Isolation::InProcess,
                step_deadline: Duration::from_secs(10),
                host_exe: reckon_tests::reckon_bin(),
                max_requests: 100_000,
            },
            &mut MemSink,
            SessionTuning::default(),
        )
        .await
        .unwrap_err();
        assert_eq!((daemon.kind, daemon.message.as_str()), (ErrorKind::Protocol, said));
        let fake = FakeHost::handler(|_| Reply::json(200, &json!({})))
            .run::<reckon_fault_behaviour::Faulty>(open(mode, fault))
            .result
            .unwrap_err();
        assert_eq!((fake.kind, fake.message.as_str()), (ErrorKind::Protocol, said), "{fault}");
        assert_eq!(fake.retryable, daemon.retryable);
    }
}
