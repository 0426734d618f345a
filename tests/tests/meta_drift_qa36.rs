//! QA36: the Meta Marketing API changing its answers without notice.
//!
//! The host zeroes the stored spend rows of a complete pass that the
//! answer no longer has. A page whose `paging` was renamed, or lost its
//! `next`, ended the pull there and the rows of the pages never asked for
//! were zeroed; a report run that said `Job Completed` at 40 % was read
//! with its missing rows zeroed; `spend: null`, `impressions: ""` and a
//! null action value were stored as 0 over the stored figures; renamed
//! attribution-window keys counted 0 conversions; ids sent as `<id>.0` or
//! with a leading space became new keys (the old rows zeroed); a row in
//! another currency was stored in it; a key given twice in one pull with
//! other figures went unsaid. Now each drift that could change money is a
//! bad answer naming connector, page and field, with nothing zeroed and
//! the store unchanged, or is read as what it is (a full page without
//! `next` is followed once more; the same id in another shape is the same
//! key); a repeated key is a WARN.
//!
//! Through the real daemon (`reckon sync`, subprocess plugin, store)
//! against the Meta fake's drift controls ([`MetaFake::set_drift`]). Needs
//! `cargo build --workspace` first.

use plugin_api::Spend;
use reckon_tests::fakes::google_ads::wire::Universe;
use reckon_tests::fakes::meta_ads::{self as meta, Drift, MetaFake};
use reckon_tests::fakes::server::FakeServer;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

const FROM: &str = "2026-10-01";
const TO: &str = "2026-10-03";
const CONNECTOR: &str = "meta_drift";

/// A temp dir with the Meta connector installed, against `server`.
struct Daemon {
    _dir: tempfile::TempDir,
    config: PathBuf,
    token: String,
}

impl Daemon {
    /// `extra`: settings beside the account, token and base URL.
    fn new(fake: &MetaFake, server: &FakeServer, extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        reckon_tests::install_plugins(&dir.path().join("plugins"), &["meta_ads"]);
        let config = dir.path().join("reckon.toml");
        std::fs::write(
            &config,
            format!(
                r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
output_dir = "out"
timezone = "UTC"

[[connectors]]
id = "{CONNECTOR}"
plugin = "meta_ads"
schedule = "0 6 * * *"
timezone = "{tz}"
timeout_secs = 30

[connectors.settings]
ad_account_id = "act_{account}"
access_token = {{ secret = "env:QA36_META_TOKEN" }}
base_url = "{base}"
page_size = 4
{extra}
"#,
                tz = fake.config.timezone,
                account = fake.config.account_id,
                base = server.base_url
            ),
        )
        .unwrap();
        Daemon {
            _dir: dir,
            config,
            token: fake.config.access_token.clone(),
        }
    }

    fn reckon(&self, args: &[&str]) -> Output {
        Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG")
            .env("QA36_META_TOKEN", &self.token)
            .output()
            .expect("run reckon")
    }

    fn sync(&self) -> Output {
        self.reckon(&["sync", CONNECTOR, "--from", FROM, "--to", TO])
    }

    /// Stored spend rows with their revisions, in key order.
    fn export(&self) -> Vec<(Spend, u64)> {
        let out = self.reckon(&[
            "records", "export", "--kind", "spend", "--source", CONNECTOR, "--format", "jsonl",
        ]);
        assert_ok(&out, "export");
        reckon_tests::exported_spend(&out.stdout)
    }

    /// A first sync stores every row once, some with spend and purchases.
    fn baseline(&self, rows: usize) -> Vec<(Spend, u64)> {
        assert_ok(&self.sync(), "first sync");
        let stored = self.export();
        assert_eq!(stored.len(), rows);
        assert!(stored.iter().all(|(_, rev)| *rev == 1));
        assert!(stored.iter().any(|(s, _)| !s.spend.amount.is_zero()));
        assert!(stored.iter().any(|(s, _)| s
            .platform_conversion_value
            .as_ref()
            .is_some_and(|v| !v.amount.is_zero())));
        stored
    }

    /// A sync against a drifted API fails with a bad-answer error holding
    /// every one of `parts`, zeroes nothing and changes nothing.
    fn refuses(&self, drift: &str, parts: &[&str], baseline: &[(Spend, u64)]) {
        let out = self.sync();
        reckon_tests::assert_drift_refused(drift, &out, parts, CONNECTOR);
        assert_eq!(self.export(), baseline, "{drift}: the stored spend changed");
    }

    /// A sync against a drifted API that is read as what it is: it
    /// succeeds, zeroes nothing and changes nothing. Returns its stderr.
    fn reads_the_same(&self, drift: &str, baseline: &[(Spend, u64)]) -> String {
        let out = self.sync();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{drift}: the sync failed:\n{err}");
        assert!(
            !err.contains("no longer reports") && !err.contains("reported none"),
            "{drift}: stored rows were zeroed:\n{err}"
        );
        assert_eq!(self.export(), baseline, "{drift}: the stored spend changed");
        err
    }
}

fn assert_ok(out: &Output, what: &str) {
    reckon_tests::assert_success(out, what);
}

fn fake() -> (Arc<MetaFake>, FakeServer, usize) {
    let fake = MetaFake::new(meta::Config::default(), Universe::new(36, 4, 2));
    let rows = fake
        .truth(
            reckon_tests::fakes::google_ads::wire::Level::AdGroup,
            chrono::NaiveDate::parse_from_str(FROM, "%Y-%m-%d").unwrap(),
            chrono::NaiveDate::parse_from_str(TO, "%Y-%m-%d").unwrap(),
        )
        .len();
    // Several pages of 4 rows.
    assert!(rows > 8, "{rows} rows");
    let server = FakeServer::start(meta::router(fake.clone()));
    (fake, server, rows)
}

/// QA36 A-H1, A-M2, A-M3, A-M5, A-L2 (direct reads): each drifted page
/// fails the run naming page, row and field, or is read the same.
#[test]
fn meta_refuses_a_drifted_page_and_keeps_the_stored_spend() {
    let (fake, server, rows) = fake();
    let d = Daemon::new(&fake, &server, r#"report_mode = "sync""#);
    let stored = d.baseline(rows);

    fake.set_drift(Drift::PagingRenamed);
    d.refuses(
        "paging renamed",
        &[
            "stream `spend` days 2026-10-01..2026-10-03 page 1",
            "field `paging` is missing beside 4 rows (the page has `data`, `pagination`)",
        ],
        &stored,
    );
    fake.set_drift(Drift::SpendNull);
    d.refuses(
        "spend null",
        &["page 1", "row 1", "field `spend` is null"],
        &stored,
    );
    fake.set_drift(Drift::ImpressionsEmpty);
    d.refuses(
        "impressions empty",
        &[
            "page 1",
            "row 1",
            "field `impressions`: \"\" is not a count",
        ],
        &stored,
    );
    fake.set_drift(Drift::ValueNull);
    d.refuses(
        "action value null",
        &["field `action_values` (omni_purchase, `value`) is null"],
        &stored,
    );
    fake.set_drift(Drift::CurrencyOther);
    d.refuses(
        "another currency",
        &[
            "page 1",
            "row 1",
            "field `account_currency`: \"EUR\", but the ad account's currency is USD",
        ],
        &stored,
    );

    // Read as what they are: every page is asked for, the same keys.
    fake.set_drift(Drift::NextDropped);
    d.reads_the_same("next dropped", &stored);
    fake.set_drift(Drift::IdsReshaped);
    d.reads_the_same("ids as numbers, padded", &stored);
    fake.set_drift(Drift::None);
    d.reads_the_same("no drift", &stored);

    // QA36 A-M6: a key given again on a later page with other figures is
    // said, naming it; the later figures are stored.
    fake.set_drift(Drift::RowRepeated);
    let out = d.sync();
    assert_ok(&out, "repeated row");
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("the pull holds this key twice with different figures"))
        .unwrap_or_else(|| panic!("no warning:\n{err}"));
    assert!(line.contains("WARN"), "{line}");
    let key = &stored[3].0.key();
    assert!(line.contains(key.as_str()), "{key} not in {line}");
}

/// QA36 A-M1: a report run that says `Job Completed` at 40 % (its
/// insights then hold 40 % of the rows) is polled again, and read at 100 %.
#[test]
fn meta_reads_a_report_run_only_at_100_percent() {
    let (fake, server, rows) = fake();
    let d = Daemon::new(
        &fake,
        &server,
        "report_mode = \"async\"\npoll_interval_secs = 0",
    );
    let stored = d.baseline(rows);
    fake.set_drift(Drift::CompletedEarly);
    let err = d.reads_the_same("completed early", &stored);
    assert!(
        err.contains("report run says `Job Completed` below 100 %: not read as complete"),
        "{err}"
    );
}

/// QA36 A-M4: attribution-window keys renamed are a bad answer, not 0
/// conversions and value.
#[test]
fn meta_refuses_renamed_attribution_windows() {
    let (fake, server, rows) = fake();
    let d = Daemon::new(
        &fake,
        &server,
        "report_mode = \"sync\"\naction_attribution_windows = [\"7d_click\", \"1d_view\"]",
    );
    let stored = d.baseline(rows);
    fake.set_drift(Drift::WindowsRenamed);
    d.refuses(
        "windows renamed",
        &[
            "field `actions` (omni_purchase): none of the requested attribution windows `7d_click`, `1d_view`, but `7d_click_v2`, `1d_view_v2`",
        ],
        &stored,
    );
}
