//! QA35d: the ad-network APIs changing their answers without notice.
//!
//! The host zeroes the stored spend rows of a complete pass that the
//! answer no longer has (a restatement to nothing). So an answer misread
//! as "no rows" (Google's `results` or TikTok's `data.list` renamed) set
//! every stored row of the re-pulled days to 0 with an INFO line, and a
//! cost or spend field renamed, dropped or sent as `""` stored spend 0
//! beside the clicks. Now each is a bad answer naming the connector, the
//! request or page and the field; nothing of that request is stored, no
//! row is zeroed, and the same sync succeeds once the API answers as
//! documented again.
//!
//! Through the real daemon (`reckon sync`, subprocess plugin, store) against
//! the loopback fakes' drift controls, plus Google Ads in the SDK's fake
//! host for the answers that must still be read (TikTok's are in its
//! plugin's tests: one test binary cannot link two plugins). Needs `cargo
//! build --workspace` first.

use chrono::NaiveDate;
use plugin_api::protocol::{LogLevel, Window};
use plugin_api::serde_json::json;
use plugin_api::testing::{open_read, FakeHost};
use plugin_api::Spend;
use reckon_plugin_google_ads::GoogleAds;
use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::google_ads::{self as google, Credentials, GoogleFake};
use reckon_tests::fakes::server::FakeServer;
use reckon_tests::fakes::tiktok_ads::{self as tiktok, TiktokFake};
use std::path::PathBuf;
use std::process::{Command, Output};

const FROM: &str = "2026-10-01";
const TO: &str = "2026-10-03";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A temp dir with one ad-network connector installed.
struct Daemon {
    _dir: tempfile::TempDir,
    config: PathBuf,
    env: Vec<(String, String)>,
    connector: String,
}

impl Daemon {
    fn new(plugin: &str, timezone: &str, settings: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        reckon_tests::install_plugins(&dir.path().join("plugins"), &[plugin]);
        let config = dir.path().join("reckon.toml");
        let connector = format!("{plugin}_drift");
        std::fs::write(
            &config,
            format!(
                r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
output_dir = "out"
timezone = "UTC"

[[connectors]]
id = "{connector}"
plugin = "{plugin}"
schedule = "0 6 * * *"
timezone = "{timezone}"
timeout_secs = 30

[connectors.settings]
{settings}
"#
            ),
        )
        .unwrap();
        Daemon {
            _dir: dir,
            config,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            connector,
        }
    }

    fn reckon(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(reckon_tests::reckon_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("run reckon")
    }

    fn sync(&self) -> Output {
        self.reckon(&["sync", &self.connector, "--from", FROM, "--to", TO])
    }

    /// Stored spend rows with their revisions, in key order.
    fn export(&self) -> Vec<(Spend, u64)> {
        let out = self.reckon(&[
            "records",
            "export",
            "--kind",
            "spend",
            "--source",
            &self.connector,
            "--format",
            "jsonl",
        ]);
        assert_ok(&out, "export");
        reckon_tests::exported_spend(&out.stdout)
    }

    /// A sync against a drifted API: it fails with a bad-answer error
    /// containing every one of `parts`, zeroes nothing and stores nothing.
    fn refuses(&self, drift: &str, parts: &[&str], baseline: &[(Spend, u64)]) {
        let out = self.sync();
        reckon_tests::assert_drift_refused(drift, &out, parts, self.connector.as_str());
        assert_eq!(self.export(), baseline, "{drift}: the stored spend changed");
    }
}

fn assert_ok(out: &Output, what: &str) {
    reckon_tests::assert_success(out, what);
}

/// The baseline: a first sync stores every row with its spend, once.
fn baseline(d: &Daemon, rows: usize) -> Vec<(Spend, u64)> {
    assert_ok(&d.sync(), "first sync");
    let stored = d.export();
    assert_eq!(stored.len(), rows);
    assert!(stored.iter().all(|(_, rev)| *rev == 1));
    assert!(stored.iter().any(|(s, _)| !s.spend.amount.is_zero()));
    stored
}

/// QA35d H2 (Google part) and M4: `results` renamed, `costMicros` renamed
/// or dropped, rows without `metrics`.
#[test]
fn google_ads_refuses_a_drifted_answer_and_keeps_the_stored_spend() {
    let fake = GoogleFake::new(google::Config::default(), Universe::new(35, 6, 2));
    let truth = fake.truth(Level::AdGroup, day(FROM), day(TO));
    // The cost check needs two rows with clicks on the first day.
    assert!(
        truth
            .iter()
            .filter(|r| r.day == day(FROM)
                && r.m.clicks > 0
                && !google::is_performance_max(r.campaign))
            .count()
            >= 2
    );
    let server = FakeServer::start(google::router(fake.clone()));
    let c = Credentials::default();
    let d = Daemon::new(
        "google_ads",
        "Europe/Berlin",
        &format!(
            r#"customer_id = "1234567890"
developer_token = {{ secret = "env:QA35_GOOGLE_DEV" }}
client_id = {{ secret = "env:QA35_GOOGLE_ID" }}
client_secret = {{ secret = "env:QA35_GOOGLE_SECRET" }}
refresh_token = {{ secret = "env:QA35_GOOGLE_REFRESH" }}
base_url = "{base}"
token_url = "{base}/token""#,
            base = server.base_url
        ),
        &[
            ("QA35_GOOGLE_DEV", &c.developer_token),
            ("QA35_GOOGLE_ID", &c.client_id),
            ("QA35_GOOGLE_SECRET", &c.client_secret),
            ("QA35_GOOGLE_REFRESH", &c.refresh_token),
        ],
    );
    let stored = baseline(&d, truth.len());

    fake.set_drift(google::Drift::ResultsRenamed);
    d.refuses(
        "results renamed",
        &[
            "stream `spend` request 1 (days 2026-10-01..2026-10-01)",
            "batch 1: no `results` array, but `rows`",
        ],
        &stored,
    );
    fake.set_drift(google::Drift::CostRenamed);
    d.refuses(
        "costMicros renamed",
        &[
            "request 1",
            "row 1",
            "field `metrics.costAmount` was not asked for",
        ],
        &stored,
    );
    fake.set_drift(google::Drift::CostMissing);
    d.refuses(
        "costMicros dropped",
        &["request 1", "rows with clicks has `metrics.costMicros`"],
        &stored,
    );
    fake.set_drift(google::Drift::MetricsMissing);
    d.refuses(
        "metrics missing",
        &["request 1", "row 1", "field `metrics` is missing"],
        &stored,
    );

    // The API answers as documented again: nothing changed.
    fake.set_drift(google::Drift::None);
    assert_ok(&d.sync(), "sync after the drift");
    assert_eq!(d.export(), stored);

    // A documented answer with no rows at all (an account that stopped, or
    // a drift no check caught): every stored row of the days is zeroed, and
    // the daemon says so at WARN, not INFO.
    fake.set_drift(google::Drift::NoRows);
    let out = d.sync();
    assert_ok(&out, "sync of no rows");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARN")
            && err.contains("the platform reported none of the stored spend rows of these days"),
        "{err}"
    );
    assert!(d.export().iter().all(|(s, _)| s.spend.amount.is_zero()));
}

/// QA35d H2 (TikTok part) and M1: `data.list` renamed or emptied while
/// `page_info` counts the rows, `spend` sent as `""` or left out.
#[test]
fn tiktok_ads_refuses_a_drifted_answer_and_keeps_the_stored_spend() {
    let fake = TiktokFake::new(tiktok::Config::default(), Universe::new(35, 3, 2));
    let truth = fake.truth(Level::AdGroup, day(FROM), day(TO));
    let config = &fake.config;
    let server = FakeServer::start(tiktok::router(fake.clone()));
    let d = Daemon::new(
        "tiktok_ads",
        &config.timezone,
        &format!(
            r#"advertiser_id = "{}"
access_token = {{ secret = "env:QA35_TIKTOK_TOKEN" }}
base_url = "{}""#,
            config.advertiser_id, server.base_url
        ),
        &[("QA35_TIKTOK_TOKEN", &config.access_token)],
    );
    let stored = baseline(&d, truth.len());
    let total = format!("data.page_info.total_number is {}", truth.len());

    fake.set_drift(tiktok::Drift::ListRenamed);
    d.refuses(
        "list renamed",
        &[
            "stream `spend` days 2026-10-01..2026-10-03 page 1",
            "field `data.list` is missing (`data` has `page_info`, `rows`",
            &total,
        ],
        &stored,
    );
    fake.set_drift(tiktok::Drift::ListEmptied);
    d.refuses(
        "list emptied",
        &[
            "stream `spend` days 2026-10-01..2026-10-03 page 1",
            &format!("no rows, yet {total}"),
        ],
        &stored,
    );
    fake.set_drift(tiktok::Drift::SpendEmpty);
    d.refuses(
        "spend empty",
        &[
            "page 1",
            "row 1",
            "field `metrics.spend` is an empty string",
        ],
        &stored,
    );
    fake.set_drift(tiktok::Drift::SpendMissing);
    d.refuses(
        "spend missing",
        &["page 1", "row 1", "field `metrics.spend` is missing"],
        &stored,
    );

    fake.set_drift(tiktok::Drift::None);
    assert_ok(&d.sync(), "sync after the drift");
    assert_eq!(d.export(), stored);
}

fn google_window() -> Window {
    Window {
        from: day(FROM),
        to: day(FROM),
    }
}

/// An answer of zero rows is still read as one, in either shape Google may
/// send (proto3 leaves an empty `results` out): the window is complete and
/// the host may zero the rows the platform no longer reports.
#[test]
fn google_ads_an_answer_without_rows_is_still_a_complete_pass() {
    let fake = GoogleFake::new(google::Config::default(), Universe::new(35, 0, 0));
    let out = FakeHost::handler(google::bridge(fake, Credentials::default())).run::<GoogleAds>(
        open_read(
            "gads",
            "http://fake",
            json!({ "customer_id": "1234567890" }),
            google_window(),
        ),
    );
    out.result.as_ref().unwrap();
    assert!(out.committed.is_empty());
    assert!(out.checkpoints.last().unwrap().covers.is_some());
}

/// One row with clicks and no cost can be a real zero cost (proto3 leaves
/// it out): stored, with a WARN naming the row and the field, not a failure
/// that would stop the account's syncs for good.
#[test]
fn google_ads_a_lone_row_with_clicks_but_no_cost_is_stored_with_a_warning() {
    let out = FakeHost::handler(|req| {
        let body = req.body.as_deref().unwrap_or("");
        let reply = if body.contains("FROM customer") {
            json!([{"results": [{"customer": {"id": "1234567890", "currencyCode": "EUR", "timeZone": "Europe/Berlin"}}]}])
        } else if body.contains("PERFORMANCE_MAX") {
            json!([{"fieldMask": "segments.date", "requestId": "p"}])
        } else {
            json!([{"results": [
                {"segments": {"date": FROM}, "campaign": {"id": "7"}, "adGroup": {"id": "8"},
                 "metrics": {"impressions": "100", "clicks": "3"}},
                {"segments": {"date": FROM}, "campaign": {"id": "7"}, "adGroup": {"id": "9"},
                 "metrics": {"impressions": "50"}}]}])
        };
        plugin_api::testing::Reply::json(200, &reply)
    })
    .run::<GoogleAds>(open_read(
        "gads",
        "http://fake",
        json!({ "customer_id": "1234567890" }),
        google_window(),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 2);
    let warns: Vec<_> = out
        .logs
        .iter()
        .filter(|l| l.level == LogLevel::Warn)
        .collect();
    assert_eq!(warns.len(), 1, "{:?}", out.logs);
    assert!(
        warns[0].message.contains("no `metrics.costMicros`"),
        "{:?}",
        warns[0]
    );
    assert_eq!(
        warns[0].fields.get("row").map(String::as_str),
        Some("batch 1, row 1 (campaign 7, ad group 8)")
    );
}

/// A batch with rows under `results` and a key Google may add later is
/// read as before: only a batch without `results` is checked.
#[test]
fn google_ads_an_unknown_key_beside_results_is_ignored() {
    let out = FakeHost::handler(|req| {
        let body = req.body.as_deref().unwrap_or("");
        let reply = if body.contains("FROM customer") {
            json!([{"results": [{"customer": {"id": "1234567890", "currencyCode": "EUR", "timeZone": "Europe/Berlin"}}]}])
        } else if body.contains("PERFORMANCE_MAX") {
            json!([])
        } else {
            json!([{"results": [
                {"segments": {"date": FROM}, "campaign": {"id": "7"}, "adGroup": {"id": "8"},
                 "metrics": {"impressions": "100", "clicks": "3", "costMicros": "1500000"}}],
                "newField": {"x": 1}}])
        };
        plugin_api::testing::Reply::json(200, &reply)
    })
    .run::<GoogleAds>(open_read(
        "gads",
        "http://fake",
        json!({ "customer_id": "1234567890" }),
        google_window(),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 1);
}
