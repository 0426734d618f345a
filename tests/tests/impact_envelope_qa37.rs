//! QA37 R-M2 (Impact): a page holding fewer rows than its own paging
//! envelope counts (`"@start": "0", "@end": "19", "@total": "20"` over 19
//! `Actions`) synced ok, the row silently missed; a missed action update is
//! a missed reversal, a commission paid that should have been taken back.
//! Now the page is a bad answer naming the stream, campaign and page and
//! the counts ("rows are missing from the answer", as Everflow says), and
//! nothing of it is stored.
//!
//! Through the real daemon (`reckon sync`, subprocess plugin, store)
//! against the Impact fake drifted to leave one row out of a page
//! ([`ImpactFake::dropped_row`]). Needs `cargo build --workspace` first.

use plugin_api::Record;
use reckon_tests::fakes::affiliate::{router, shared, Shared, Truth};
use reckon_tests::fakes::impact::{ImpactFake, Params};
use reckon_tests::fakes::server::FakeServer;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

const CONNECTOR: &str = "impact";
const FROM: &str = "2026-10-20";
const TO: &str = "2026-11-27";

/// A temp dir with the Impact connector installed, against `server`.
struct Daemon {
    _dir: tempfile::TempDir,
    config: PathBuf,
}

impl Daemon {
    fn new(server: &FakeServer) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        reckon_tests::install_plugins(&dir.path().join("plugins"), &["impact"]);
        let config = dir.path().join("reckon.toml");
        std::fs::write(
            &config,
            format!(
                r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
timezone = "UTC"

[[connectors]]
id = "{CONNECTOR}"
plugin = "impact"
schedule = "0 3 * * *"
timezone = "UTC"

[connectors.settings]
account_sid = "IRfakeSID1"
auth_token = {{ secret = "env:QA37_IMPACT_TOKEN" }}
campaign_ids = [1000, 2000]
page_size = 2000
base_url = "{}"
"#,
                server.base_url
            ),
        )
        .unwrap();
        Daemon { _dir: dir, config }
    }

    fn reckon(&self, args: &[&str]) -> Output {
        Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG")
            .env("QA37_IMPACT_TOKEN", "tok-impact")
            .output()
            .expect("run reckon")
    }

    fn sync(&self) -> Output {
        self.reckon(&["sync", CONNECTOR, "--from", FROM, "--to", TO])
    }

    /// The stored conversions (current revision of each).
    fn export(&self) -> Vec<Record> {
        let out = self.reckon(&[
            "records",
            "export",
            "--kind",
            "conversions",
            "--source",
            CONNECTOR,
            "--format",
            "jsonl",
        ]);
        reckon_tests::assert_success(&out, "export");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                serde_json::from_value(v["record"].clone()).unwrap()
            })
            .collect()
    }
}

fn ids(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| match r {
            Record::Conversion(c) => c.external_id.clone(),
            other => panic!("expected a conversion, got {other:?}"),
        })
        .collect()
}

/// The ids of campaign 1000's actions in the order `/Actions` serves them
/// (newest first): page 1 is the first 2000, page 2 the rest.
fn campaign_1000(fake: &Shared<ImpactFake>) -> Vec<String> {
    let f = fake.lock().unwrap();
    let mut actions: Vec<_> = f
        .actions()
        .iter()
        .filter(|a| a.campaign_id == 1000)
        .collect();
    actions.sort_by(|a, b| b.event_date.cmp(&a.event_date).then(a.id.cmp(&b.id)));
    actions.into_iter().map(|a| a.id.clone()).collect()
}

#[test]
fn impact_page_short_of_its_envelope_fails_the_sync_and_stores_nothing_of_it() {
    // 3000 actions per campaign at 2000 a page: pages of 2000 and 1000.
    let fake = shared(ImpactFake::new(Params::small(37, 6_000)));
    let server = FakeServer::start(router(fake.clone()));
    let d = Daemon::new(&server);
    let served = campaign_1000(&fake);
    assert_eq!(served.len(), 3_000);

    // The first page one row short: nothing is stored.
    fake.lock().unwrap().dropped_row = Some(1);
    reckon_tests::assert_drift_refused(
        "page 1 short",
        &d.sync(),
        &[
            "stream `actions` campaign 1000 page 1: 1999 rows, but Impact's paging envelope \
             counts 2000 on this page (@start 0, @end 1999): rows are missing from the answer",
        ],
        CONNECTOR,
    );
    assert!(d.export().is_empty());

    // The last page one row short: page 1 stays stored, nothing of page 2
    // is (not even its 999 rows that came).
    fake.lock().unwrap().dropped_row = Some(2);
    reckon_tests::assert_drift_refused(
        "page 2 short",
        &d.sync(),
        &[
            "stream `actions` campaign 1000 page 2: 999 rows, but Impact's paging envelope \
             counts 1000 on this page (@start 2000, @end 2999): rows are missing from the answer",
        ],
        CONNECTOR,
    );
    let stored = ids(&d.export());
    let page_1: BTreeSet<String> = served[..2_000].iter().cloned().collect();
    assert_eq!(stored, page_1);

    // The answer whole again: the sync reads everything.
    fake.lock().unwrap().dropped_row = None;
    reckon_tests::assert_success(&d.sync(), "sync without drift");
    let stored = d.export();
    let (from, to) = {
        let f = fake.lock().unwrap();
        (f.params().from, f.params().to)
    };
    assert_eq!(
        Truth::of_records(&stored),
        fake.lock().unwrap().truth(from, to)
    );
}
