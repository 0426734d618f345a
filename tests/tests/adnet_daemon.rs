//! The three ad-network connectors through the real daemon: `reckon sync`
//! (subprocess plugin host, HTTP executor, auth injection, store) against
//! each loopback fake, then `reckon records export`. (Google Ads needs the
//! host to honour `settings.token_url`; see docs/arch/adnet.md.) Needs
//! `cargo build -p reckon -p reckon-plugin-google_ads -p reckon-plugin-meta_ads
//! -p reckon-plugin-tiktok_ads` first (the workspace build does it).

use chrono::NaiveDate;
use plugin_api::Spend;
use reckon_tests::fakes::google_ads::wire::{spend_totals, Level, Universe};
use reckon_tests::fakes::server::FakeServer;
use reckon_tests::fakes::{meta_ads, tiktok_ads};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A temp dir with the plugin installed and a config for one connector.
struct Daemon {
    dir: tempfile::TempDir,
    config: PathBuf,
    env: Vec<(String, String)>,
}

impl Daemon {
    fn new(
        plugin: &str,
        connector: &str,
        timezone: &str,
        settings: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        reckon_tests::install_plugins(&dir.path().join("plugins"), &[plugin]);
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
            dir,
            config,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn reckon(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(reckon_tests::reckon_bin());
        // The default log level, whatever the test's environment says.
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("run reckon")
    }

    fn sync(&self, connector: &str, from: &str, to: &str) -> std::process::Output {
        self.reckon(&["sync", connector, "--from", from, "--to", to])
    }

    /// Exported spend rows: (record, revision).
    fn export(&self, connector: &str) -> Vec<(Spend, u64)> {
        let out = self.reckon(&[
            "records", "export", "--kind", "spend", "--source", connector, "--format", "jsonl",
        ]);
        assert!(
            out.status.success(),
            "export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let rec = v["record"].clone();
                let spend: Spend = match serde_json::from_value::<plugin_api::Record>(rec).unwrap()
                {
                    plugin_api::Record::Spend(s) => s,
                    other => panic!("not spend: {other:?}"),
                };
                (spend, v["revision"].as_u64().unwrap())
            })
            .collect()
    }

    #[allow(dead_code)]
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// After a restatement of `restated` and a second sync: same keys, the
/// changed rows are new revisions, every other row is untouched, and the
/// rows the platform stopped reporting (the fakes drop about one in ten of
/// a restated day) are kept at zero as a new revision.
fn check_restatement(before: &[(Spend, u64)], after: &[(Spend, u64)], restated: NaiveDate) {
    let keys = |v: &[(Spend, u64)]| v.iter().map(|(s, _)| s.key()).collect::<BTreeSet<_>>();
    assert_eq!(
        keys(before),
        keys(after),
        "a re-pull must not add or drop keys"
    );
    let old: BTreeMap<String, &Spend> = before.iter().map(|(s, _)| (s.key(), s)).collect();
    let (mut changed, mut zeroed) = (0, 0);
    for (s, rev) in after {
        let prev = old[&s.key()];
        if s == prev {
            assert_eq!(*rev, 1, "unchanged row got a new revision: {}", s.key());
        } else {
            assert_eq!(
                s.day,
                restated,
                "only the restated day may change: {}",
                s.key()
            );
            assert!(
                *rev >= 2,
                "a changed row keeps its previous revision: {}",
                s.key()
            );
            changed += 1;
            if s.impressions == 0 {
                assert!(s.clicks == 0 && s.spend.amount.is_zero(), "{s:?}");
                assert_eq!(s.spend.currency, prev.spend.currency);
                assert_eq!(s.campaign_name, prev.campaign_name);
                zeroed += 1;
            }
        }
    }
    assert!(
        changed > zeroed,
        "the restated day did not change in the store"
    );
    assert!(
        zeroed > 0,
        "no row of the restated day was left out by the fake"
    );
}

#[test]
fn meta_ads_sync_through_the_daemon_stores_the_ground_truth_and_restatements() {
    let config = meta_ads::Config {
        throttle_errors_at: BTreeSet::from([5]),
        high_usage_at: BTreeSet::from([7]),
        ..meta_ads::Config::default()
    };
    let token = config.access_token.clone();
    let fake = meta_ads::MetaFake::new(config, Universe::new(41, 12, 4));
    let server = FakeServer::start(meta_ads::router(fake.clone()));
    let d = Daemon::new(
        "meta_ads",
        "meta_test",
        "America/Los_Angeles",
        &format!(
            r#"ad_account_id = "act_4242"
access_token = {{ secret = "env:META_TEST_TOKEN" }}
base_url = "{}"
report_mode = "async"
days_per_request = 3
page_size = 25
poll_interval_secs = 0
throttle_backoff_secs = 1
slow_down_at_pct = 80
max_pause_secs = 1"#,
            server.base_url
        ),
        &[("META_TEST_TOKEN", &token)],
    );
    assert_ok(&d.sync("meta_test", "2026-10-01", "2026-10-07"), "sync");
    let first = d.export("meta_test");
    let truth = fake.truth(Level::AdGroup, day("2026-10-01"), day("2026-10-07"));
    assert_eq!(first.len(), truth.len());
    assert_eq!(
        spend_totals(first.iter().map(|(s, _)| s)),
        meta_ads::truth_totals(&fake, Level::AdGroup, day("2026-10-01"), day("2026-10-07"))
    );
    assert!(first
        .iter()
        .all(|(s, _)| s.source == "meta_test" && s.timezone == "America/Los_Angeles"));
    assert!(fake.jobs_created() >= 3);
    assert_eq!(
        fake.throttle_errors_sent
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    fake.restate(day("2026-10-05"));
    assert_ok(
        &d.sync("meta_test", "2026-10-01", "2026-10-07"),
        "second sync",
    );
    let second = d.export("meta_test");
    check_restatement(&first, &second, day("2026-10-05"));
    assert_eq!(
        spend_totals(second.iter().map(|(s, _)| s)),
        meta_ads::truth_totals(&fake, Level::AdGroup, day("2026-10-01"), day("2026-10-07"))
    );
}

/// QA20 F1: Meta leaves archived and deleted ad sets out of insights
/// unless the request filters on their status, and the host zeroes stored
/// rows a complete re-pull no longer returns. So an ad set archived (or a
/// campaign deleted) after its spend was stored lost that spend for good on
/// the next re-pull of its days. The plugin now asks for every status: the
/// re-pull returns the same rows and nothing changes.
#[test]
fn meta_ads_re_pull_keeps_the_spend_of_an_ad_set_archived_since() {
    let fake = meta_ads::MetaFake::new(meta_ads::Config::default(), Universe::new(43, 12, 4));
    let token = fake.config.access_token.clone();
    let server = FakeServer::start(meta_ads::router(fake.clone()));
    let d = Daemon::new(
        "meta_ads",
        "meta_arch",
        "America/Los_Angeles",
        &format!(
            r#"ad_account_id = "act_4242"
access_token = {{ secret = "env:META_TEST_TOKEN" }}
base_url = "{}"
page_size = 20"#,
            server.base_url
        ),
        &[("META_TEST_TOKEN", &token)],
    );
    let (from, to) = (day("2026-10-01"), day("2026-10-03"));
    assert_ok(&d.sync("meta_arch", "2026-10-01", "2026-10-03"), "sync");
    let first = d.export("meta_arch");
    // Archive an active ad set with spend on the last day, and delete the
    // campaign of another.
    let truth = fake.truth(Level::AdGroup, from, to);
    let active = |r: &&reckon_tests::fakes::google_ads::wire::Row| {
        r.day == to && r.m.cost_micros > 0 && fake.effective_status(Level::AdGroup, r) == "ACTIVE"
    };
    let archived = truth.iter().find(active).unwrap().clone();
    let deleted = truth
        .iter()
        .find(|r| active(r) && r.campaign != archived.campaign)
        .unwrap()
        .clone();
    let stored = |v: &[(Spend, u64)], r: &reckon_tests::fakes::google_ads::wire::Row| {
        v.iter()
            .find(|(s, _)| s.day == r.day && s.ad_group_id == r.ad_group_id())
            .cloned()
            .unwrap_or_else(|| panic!("{:?} on {} not stored", r.ad_group_id(), r.day))
    };
    for r in [&archived, &deleted] {
        assert_eq!(stored(&first, r).0.spend.amount, r.m.cost());
    }
    fake.set_status(Level::AdGroup, &archived.ad_group_id().unwrap(), "ARCHIVED");
    fake.set_status(Level::Campaign, &deleted.campaign_id(), "DELETED");
    assert_eq!(fake.effective_status(Level::AdGroup, &deleted), "DELETED");

    assert_ok(&d.sync("meta_arch", "2026-10-01", "2026-10-03"), "re-pull");
    let second = d.export("meta_arch");
    for r in [&archived, &deleted] {
        let (s, rev) = stored(&second, r);
        assert_eq!(
            (s.spend.amount, s.impressions, rev),
            (r.m.cost(), r.m.impressions, 1),
            "{:?} on {}: the re-pull zeroed its spend",
            r.ad_group_id(),
            r.day
        );
    }
    // The objects archived or deleted from the start are stored too, and
    // nothing changed.
    assert!(truth.iter().any(|r| matches!(
        fake.effective_status(Level::AdGroup, r).as_str(),
        "ARCHIVED" | "DELETED"
    )));
    assert_eq!(second.len(), truth.len());
    assert_eq!(
        spend_totals(second.iter().map(|(s, _)| s)),
        meta_ads::truth_totals(&fake, Level::AdGroup, from, to)
    );
    assert_eq!(first, second, "the re-pull changed stored rows");
}

#[test]
fn meta_ads_wrong_token_fails_the_sync_naming_connector_and_setting() {
    let fake = meta_ads::MetaFake::new(meta_ads::Config::default(), Universe::new(1, 1, 1));
    let server = FakeServer::start(meta_ads::router(fake));
    let d = Daemon::new(
        "meta_ads",
        "meta_bad",
        "UTC",
        &format!(
            "ad_account_id = \"4242\"\naccess_token = {{ secret = \"env:META_BAD_TOKEN\" }}\nbase_url = \"{}\"",
            server.base_url
        ),
        &[("META_BAD_TOKEN", "EAAB-wrong")],
    );
    let out = d.sync("meta_bad", "2026-10-01", "2026-10-01");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("meta_bad"), "{err}");
    assert!(err.contains("`access_token`"), "{err}");
    assert!(!err.contains("EAAB-wrong"), "the secret leaked: {err}");
}

#[test]
fn tiktok_ads_sync_through_the_daemon_stores_the_ground_truth_and_restatements() {
    let config = tiktok_ads::Config {
        rate_limit_at: BTreeSet::from([2]),
        ..tiktok_ads::Config::default()
    };
    let (token, advertiser) = (config.access_token.clone(), config.advertiser_id.clone());
    let fake = tiktok_ads::TiktokFake::new(config, Universe::new(42, 15, 4));
    let server = FakeServer::start(tiktok_ads::router(fake.clone()));
    let daemon = |timezone: &str| {
        Daemon::new(
            "tiktok_ads",
            "tiktok_test",
            timezone,
            &format!(
                r#"advertiser_id = "{advertiser}"
access_token = {{ secret = "env:TIKTOK_TEST_TOKEN" }}
base_url = "{}"
page_size = 50
conversion_value_metric = "total_complete_payment_rate"
rate_limit_backoff_secs = 1"#,
                server.base_url
            ),
            &[("TIKTOK_TEST_TOKEN", &token)],
        )
    };
    let d = daemon("America/New_York");
    let out = d.sync("tiktok_test", "2026-10-01", "2026-10-05");
    assert_ok(&out, "sync");
    // The start line names the build that ran (plugin-developer QA16 N5).
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l.contains("sync started")
            && l.contains(&format!(
                "file={}",
                reckon_tests::plugin_file_name("tiktok_ads")
            ))
            && l.contains("version=")
            && l.contains("sha256=")),
        "{err}"
    );
    // INFO is one line at each end of a sync; per-window sessions and
    // per-stream lines are DEBUG (soak QA18 F8: they were 78 % of the log).
    assert!(
        err.lines()
            .any(|l| l.contains("sync finished") && l.contains("retries=")),
        "{err}"
    );
    for detail in ["session started", "session finished", "stream done"] {
        assert!(!err.contains(detail), "{detail}: {err}");
    }
    let zone_warning = "the account reports its days in";
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(zone_warning),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = d.export("tiktok_test");
    assert_eq!(
        spend_totals(first.iter().map(|(s, _)| s)),
        tiktok_ads::truth_totals(&fake, Level::AdGroup, day("2026-10-01"), day("2026-10-05"))
    );
    assert_eq!(
        fake.rate_limits_sent
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    fake.restate(day("2026-10-02"));
    assert_ok(
        &d.sync("tiktok_test", "2026-10-01", "2026-10-05"),
        "second sync",
    );
    let second = d.export("tiktok_test");
    check_restatement(&first, &second, day("2026-10-02"));
    assert_eq!(
        spend_totals(second.iter().map(|(s, _)| s)),
        tiktok_ads::truth_totals(&fake, Level::AdGroup, day("2026-10-01"), day("2026-10-05"))
    );
    // A connector `timezone` other than the account's is warned about, once
    // (new-user QA16 N4).
    let out = daemon("Europe/Berlin").sync("tiktok_test", "2026-10-01", "2026-10-02");
    assert_ok(&out, "sync in another zone");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches(zone_warning).count(), 1, "{err}");
    assert!(
        err.contains("the account reports its days in America/New_York, but the connector's `timezone` is Europe/Berlin"),
        "{err}"
    );
}
