//! The four affiliate connectors through the real daemon: `reckon sync`
//! (plugin in a `reckon plugin-host` child process, HTTP by the host's
//! executor) against each loopback fake, then `reckon records export`.
//! Needs `cargo build --workspace` first (the binary and the plugin libraries).

use plugin_api::rust_decimal::Decimal;
use plugin_api::{ConversionStatus, Record};
use reckon_tests::fakes::affiliate::{router, shared, FakeApi, Shared, Throttle, Truth};
use reckon_tests::fakes::server::FakeServer;
use reckon_tests::fakes::{cake, everflow, impact, partnerstack};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// A temp directory with one connector configured and its plugin installed.
struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
    env: Vec<(&'static str, &'static str)>,
}

fn setup(plugin: &str, settings: &str, env: Vec<(&'static str, &'static str)>) -> Setup {
    setup_in("UTC", plugin, settings, env)
}

/// [`setup`] with the connector's `timezone`.
fn setup_in(
    timezone: &str,
    plugin: &str,
    settings: &str,
    env: Vec<(&'static str, &'static str)>,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &[plugin]);
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\ntimezone = \"UTC\"\n\n\
             [[connectors]]\nid = \"{plugin}\"\nplugin = \"{plugin}\"\nschedule = \"0 3 * * *\"\n\
             timezone = \"{timezone}\"\n\n[connectors.settings]\n{settings}\n"
        ),
    )
    .unwrap();
    Setup {
        _dir: dir,
        config,
        env,
    }
}

impl Setup {
    fn reckon(&self) -> Command {
        let mut c = Command::new(reckon_tests::reckon_bin());
        c.arg("--config").arg(&self.config).env("RUST_LOG", "warn");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn sync(&self, id: &str, from: &str, to: &str) {
        let out = self
            .reckon()
            .args(["sync", id, "--from", from, "--to", to])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reckon sync {id} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stored conversions by key: (current record, revision).
    fn export(&self) -> BTreeMap<String, (Record, u64)> {
        let out = self
            .reckon()
            .args([
                "records",
                "export",
                "--kind",
                "conversions",
                "--format",
                "jsonl",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let rec: Record = serde_json::from_value(v["record"].clone()).unwrap();
                (rec.key(), (rec, v["revision"].as_u64().unwrap()))
            })
            .collect()
    }
}

fn truth(stored: &BTreeMap<String, (Record, u64)>) -> Truth {
    Truth::of_records(stored.values().map(|(r, _)| r))
}

fn conv(stored: &BTreeMap<String, (Record, u64)>, key: &str) -> (plugin_api::Conversion, u64) {
    match stored.get(key) {
        Some((Record::Conversion(c), rev)) => (c.clone(), *rev),
        other => panic!("no stored conversion {key}: {other:?}"),
    }
}

fn serve<F: FakeApi>(fake: &Shared<F>) -> FakeServer {
    FakeServer::start(router(fake.clone()))
}

#[test]
fn impact_through_the_daemon_stores_ground_truth_then_revisions() {
    let fake = shared(impact::ImpactFake::new(impact::Params::small(61, 3_000)));
    let server = serve(&fake);
    let s = setup(
        "impact",
        &format!(
            "account_sid = \"IRfakeSID1\"\nauth_token = {{ secret = \"env:T_IMPACT\" }}\n\
             campaign_ids = [1000, 2000]\npage_size = 2000\nbase_url = \"{}\"",
            server.base_url
        ),
        vec![("T_IMPACT", "tok-impact")],
    );
    s.sync("impact", "2026-10-20", "2026-11-27");
    let first = s.export();
    let (from, to) = {
        let f = fake.lock().unwrap();
        (f.params().from, f.params().to)
    };
    assert_eq!(truth(&first), fake.lock().unwrap().truth(from, to));

    // Approve one and reverse one inside the window; reverse one and approve
    // (lock) one before a narrower second window (those come back through
    // `/Actions` by last-updated date and by locking date).
    let cut = chrono::NaiveDate::from_ymd_opt(2026, 11, 10)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let (pending, approved, old, old_pending) = {
        let f = fake.lock().unwrap();
        let pick = |st: &str, after: bool| {
            f.actions()
                .iter()
                .find(|a| a.state == st && (a.event_date >= cut) == after)
                .unwrap()
                .id
                .clone()
        };
        (
            pick("PENDING", true),
            pick("APPROVED", true),
            pick("APPROVED", false),
            pick("PENDING", false),
        )
    };
    {
        let mut f = fake.lock().unwrap();
        f.now = "2026-11-27T12:00:00Z".parse().unwrap();
        f.approve(&pending);
        f.reverse(&approved);
        f.reverse(&old);
        f.approve(&old_pending);
    }
    s.sync("impact", "2026-11-10", "2026-11-27");
    let second = s.export();
    assert_eq!(
        second.len(),
        first.len(),
        "a status change is never a new record"
    );
    for key in [&pending, &approved, &old, &old_pending] {
        assert_eq!(conv(&first, key).1, 1);
        assert_eq!(conv(&second, key).1, 2, "{key} became revision 2");
    }
    assert_eq!(conv(&second, &pending).0.status, ConversionStatus::Approved);
    assert_eq!(
        conv(&second, &approved).0.status,
        ConversionStatus::Reversed
    );
    assert_eq!(conv(&second, &old).0.status, ConversionStatus::Reversed);
    assert_eq!(
        conv(&second, &old_pending).0.status,
        ConversionStatus::Approved
    );
    assert_eq!(truth(&second), fake.lock().unwrap().truth(from, to));
}

#[test]
fn everflow_through_the_daemon_survives_429s_and_stores_ground_truth() {
    let fake = shared(everflow::EverflowFake::new(everflow::Params::small(
        62, 2_500,
    )));
    fake.lock().unwrap().throttle = Throttle::new(2, 2);
    let server = serve(&fake);
    let s = setup(
        "everflow",
        &format!(
            "api_key = {{ secret = \"env:T_EVERFLOW\" }}\npage_size = 500\nbase_url = \"{}\"",
            server.base_url
        ),
        vec![("T_EVERFLOW", "ef-network-key")],
    );
    s.sync("everflow", "2026-10-01", "2026-11-27");
    assert_eq!(fake.lock().unwrap().throttle.refused, 2);
    let stored = s.export();
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
    );
    assert_eq!(truth(&stored), fake.lock().unwrap().truth(from, to));

    let id = fake
        .lock()
        .unwrap()
        .rows()
        .iter()
        .find(|r| r.status == "approved")
        .unwrap()
        .id
        .clone();
    fake.lock().unwrap().set_payout(&id, Decimal::new(1234, 2));
    fake.lock().unwrap().reverse(&id);
    s.sync("everflow", "2026-10-01", "2026-11-27");
    let again = s.export();
    let (c, rev) = conv(&again, &id);
    assert_eq!((c.status, rev), (ConversionStatus::Reversed, 2));
    assert_eq!(c.commission.unwrap().amount, Decimal::new(1234, 2));
    assert_eq!(
        again.values().filter(|(_, r)| *r > 1).count(),
        1,
        "nothing else changed"
    );
}

#[test]
fn cake_through_the_daemon_survives_429s_and_stores_ground_truth() {
    let fake = shared(cake::CakeFake::new(cake::Params::small(63, 2_000)));
    fake.lock().unwrap().throttle = Throttle::new(1, 2);
    let server = serve(&fake);
    let s = setup(
        "cake",
        &format!(
            "api_key = {{ secret = \"env:T_CAKE\" }}\nrow_limit = 700\nbase_url = \"{}\"",
            server.base_url
        ),
        vec![("T_CAKE", "cake-key")],
    );
    let started = std::time::Instant::now();
    s.sync("cake", "2026-11-01", "2026-11-27");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "waited Retry-After twice"
    );
    assert_eq!(fake.lock().unwrap().throttle.refused, 2);
    let stored = s.export();
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
    );
    assert_eq!(truth(&stored), fake.lock().unwrap().truth(from, to));
}

#[test]
fn partnerstack_through_the_daemon_stores_ground_truth_then_a_refund_as_a_revision() {
    let fake = shared(partnerstack::PartnerStackFake::new(
        partnerstack::Params::small(64, 1_200),
    ));
    let server = serve(&fake);
    let s = setup(
        "partnerstack",
        &format!(
            "public_key = {{ secret = \"env:T_PS_PUB\" }}\nprivate_key = {{ secret = \"env:T_PS_PRIV\" }}\n\
             page_size = 100\nbase_url = \"{}/api/v2\"",
            server.base_url
        ),
        vec![("T_PS_PUB", "pk_live_fake"), ("T_PS_PRIV", "sk_live_fake")],
    );
    s.sync("partnerstack", "2026-10-01", "2026-11-27");
    let first = s.export();
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
    );
    assert_eq!(truth(&first), fake.lock().unwrap().truth(from, to));
    let key = fake
        .lock()
        .unwrap()
        .rewards()
        .iter()
        .find(|r| r.status == "approved")
        .unwrap()
        .key
        .clone();
    fake.lock().unwrap().refund(&key);
    s.sync("partnerstack", "2026-10-01", "2026-11-27");
    let second = s.export();
    assert_eq!(second.len(), first.len());
    let (c, rev) = conv(&second, &key);
    assert_eq!((c.status, rev), (ConversionStatus::Reversed, 2));
    assert_eq!(truth(&second), fake.lock().unwrap().truth(from, to));
}

#[test]
fn a_malformed_record_fails_the_sync_naming_it_and_stores_only_earlier_pages() {
    let fake = shared(everflow::EverflowFake::new(everflow::Params::small(
        65, 1_500,
    )));
    let bad = {
        let f = fake.lock().unwrap();
        let mut rows: Vec<_> = f.rows().iter().collect();
        rows.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
        rows[1_100].id.clone()
    };
    fake.lock().unwrap().corrupt(&bad, "payout");
    let server = serve(&fake);
    let s = setup(
        "everflow",
        &format!(
            "api_key = {{ secret = \"env:T_EVERFLOW\" }}\npage_size = 500\nbase_url = \"{}\"",
            server.base_url
        ),
        vec![("T_EVERFLOW", "ef-network-key")],
    );
    let out = s
        .reckon()
        .args([
            "sync",
            "everflow",
            "--from",
            "2026-10-01",
            "--to",
            "2026-11-27",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [bad.as_str(), "field `payout`", "page 3"] {
        assert!(err.contains(part), "{part} not in {err}");
    }
    // Pages 1 and 2 are stored; nothing of page 3.
    let stored = s.export();
    assert_eq!(stored.len(), 1_000);
    assert!(!stored.contains_key(&bad));
}

#[test]
fn plugins_list_shows_the_four_affiliate_plugins() {
    let s = setup(
        "impact",
        "account_sid = \"x\"\nauth_token = { secret = \"env:T\" }\ncampaign_ids = [1]",
        vec![],
    );
    reckon_tests::install_plugins(
        &s.config.parent().unwrap().join("plugins"),
        &["everflow", "cake", "partnerstack"],
    );
    let out = s.reckon().args(["plugins", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["impact", "everflow", "cake", "partnerstack"] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(id)),
            "{id} not in:\n{text}"
        );
    }
}

/// QA20 F2: the daemon tells the plugin the connector's timezone, so
/// `reckon sync impact --from D --to D` of a connector in Los Angeles
/// stores exactly the actions of that day there (07:00Z to 07:00Z the next
/// day), not the UTC day.
#[test]
fn impact_through_the_daemon_reads_the_days_of_the_connectors_timezone() {
    let fake = shared(impact::ImpactFake::new(impact::Params::small(63, 3_000)));
    let server = serve(&fake);
    let s = setup_in(
        "America/Los_Angeles",
        "impact",
        &format!(
            "account_sid = \"IRfakeSID1\"\nauth_token = {{ secret = \"env:T_IMPACT\" }}\n\
             campaign_ids = [1000, 2000]\npage_size = 2000\nbase_url = \"{}\"",
            server.base_url
        ),
        vec![("T_IMPACT", "tok-impact")],
    );
    s.sync("impact", "2026-10-25", "2026-10-25");
    let stored = s.export();
    let at = |t: &str| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let (from, to) = (at("2026-10-25T07:00:00Z"), at("2026-10-26T07:00:00Z"));
    let f = fake.lock().unwrap();
    // By event date, plus older actions the update and locking passes bring.
    let in_day: std::collections::BTreeSet<String> = f
        .actions()
        .iter()
        .filter(|a| from <= a.event_date && a.event_date < to)
        .map(|a| a.id.clone())
        .collect();
    assert!(in_day.len() > 40, "{}", in_day.len());
    let stored_in_day: std::collections::BTreeSet<String> = stored
        .values()
        .filter_map(|(r, _)| match r {
            Record::Conversion(c) if from <= c.occurred_at && c.occurred_at < to => {
                Some(c.external_id.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(stored_in_day, in_day);
    // Nothing else of Los Angeles' 24 October (the UTC day's first seven
    // hours): only actions created (a minute after their event) or locked
    // (45 days after) in the window came by the other passes.
    for (r, _) in stored.values() {
        if let Record::Conversion(c) = r {
            let before = from - c.occurred_at;
            assert!(
                before <= chrono::Duration::minutes(1) || before > chrono::Duration::days(40),
                "{} at {}",
                c.external_id,
                c.occurred_at
            );
        }
    }
}
