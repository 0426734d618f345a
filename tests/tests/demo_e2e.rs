//! End to end: `reckon demo` with a fixed seed and end date, checked against
//! the story's own ground truth (computed here from `reckon_tests::story` and
//! the ad fakes' universes), never against what Reckon itself reports.

use reckon_tests::demo_world::World;
use reckon_tests::fakes::google_ads::wire::{self, Level};
use reckon_tests::story::{self, NETWORKS};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const SEED: u64 = 7;
const DAYS: u32 = 30;

fn end() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 10, 20).unwrap()
}

fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|l| {
            // The files checked here have no quoted commas in the used columns.
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| ((*h).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn the_demo_reproduces_the_story() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(reckon_tests::reckon_bin())
        .args([
            "demo",
            "--seed",
            &SEED.to_string(),
            "--days",
            &DAYS.to_string(),
        ])
        .args(["--end", &end().to_string(), "--out"])
        .arg(out.path())
        .status()
        .expect("run reckon demo");
    assert!(status.success(), "reckon demo failed");

    let story = story::generate(SEED, DAYS, end());
    let store =
        reckon::store::Store::open(&out.path().join("data")).expect("open the demo's store");

    // 1. Records per source equal the story.
    let mut per_source: BTreeMap<String, usize> = BTreeMap::new();
    for kind in [
        plugin_api::RecordKind::Order,
        plugin_api::RecordKind::Conversion,
    ] {
        for r in store.scan_records(kind, None) {
            *per_source
                .entry(r.unwrap().record.source().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(per_source["shopify"], story.orders.len(), "orders stored");
    for net in NETWORKS {
        assert_eq!(
            per_source[net],
            story.claims[net].len(),
            "claims stored for {net}"
        );
    }

    // 2. Every claim got the outcome the story intended.
    let decisions = reckon::reconcile::load_decisions(&store, "northwind").unwrap();
    assert_eq!(
        decisions.len(),
        story.claims.values().map(Vec::len).sum::<usize>()
    );
    let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
    for d in &decisions {
        *got.entry((d.claim.source.clone(), d.outcome.as_str().to_owned()))
            .or_default() += 1;
    }
    let want: BTreeMap<(String, String), usize> = story
        .expected_outcomes()
        .into_iter()
        .map(|((net, i), n)| ((net.to_owned(), i.as_str().to_owned()), n))
        .collect();
    assert_eq!(got, want, "outcomes per network");

    // Everflow's scrubs (`rejected` with `is_scrub`: never accepted) are
    // stored rejected, like `invalid`, and judged as the network's
    // rejection, not as a reversal nor matched to their (real) orders. The
    // demo world used to serve none.
    let everflow = reckon_tests::demo_world::everflow_fake(&story);
    let scrubs: Vec<&str> = everflow
        .rows()
        .iter()
        .filter(|r| r.is_scrub)
        .map(|r| r.id.as_str())
        .collect();
    assert!(!scrubs.is_empty(), "the demo serves Everflow scrubs");
    assert!(
        everflow.rows().iter().any(|r| r.status == "invalid"),
        "the demo serves Everflow `invalid` conversions too"
    );
    for id in &scrubs {
        let stored = store
            .scan_records(plugin_api::RecordKind::Conversion, Some("everflow"))
            .map(|r| r.unwrap().record)
            .find_map(|r| match r {
                plugin_api::Record::Conversion(c) if c.external_id == *id => Some(c),
                _ => None,
            })
            .unwrap_or_else(|| panic!("everflow scrub {id} not stored"));
        assert_eq!(
            stored.status,
            plugin_api::ConversionStatus::Rejected,
            "{id}"
        );
        let d = decisions
            .iter()
            .find(|d| d.claim.source == "everflow" && d.claim.id == *id)
            .unwrap_or_else(|| panic!("no decision for everflow scrub {id}"));
        assert_eq!(d.outcome.as_str(), "network_rejected", "{id}: {}", d.reason);
        assert!(!d.payable, "{id}");
    }
    let earning = story
        .claims
        .values()
        .flatten()
        .filter(|c| c.basis.is_some())
        .count();
    assert_eq!(
        decisions.iter().filter(|d| d.payable).count(),
        earning,
        "payable claims"
    );

    // 3. Statements: per payee, the sum over every period equals 10 % of
    // each payable basis, rounded per line.
    let mut paid: BTreeMap<String, Decimal> = BTreeMap::new();
    let dir = out.path().join("statements").join("northwind");
    let mut periods: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    periods.sort();
    assert!(
        periods.len() >= 2,
        "statements for every month of the story"
    );
    for p in &periods {
        for row in csv_rows(&p.join("summary.csv")) {
            let amount: Decimal = row["amount"].parse().unwrap();
            let carried: Decimal = row["carried_out"].parse().unwrap();
            assert_eq!(carried, Decimal::ZERO, "minimum payout is 0 in the demo");
            *paid.entry(row["partner_id"].clone()).or_default() += amount;
        }
    }
    let mut expected: BTreeMap<String, Decimal> = BTreeMap::new();
    // Payees are `<network>:<partner id>` (one partner of one network).
    for ((net, partner), amount) in story.expected_commission() {
        *expected.entry(format!("{net}:{partner}")).or_default() += amount;
    }
    paid.retain(|_, v| !v.is_zero());
    assert_eq!(paid, expected, "commission per partner over all statements");

    // 4. Spend equals the ad fakes' ground truth (after Google's restated day).
    let world = World::start(SEED, DAYS, end());
    world.restate_google();
    // The demo pulls a week either side of the story.
    let (from, to) = (
        story.from - chrono::Duration::days(7),
        story.to + chrono::Duration::days(7),
    );
    let truths = [
        ("google_ads", world.google.truth(Level::AdGroup, from, to)),
        ("meta_ads", world.meta.truth(Level::AdGroup, from, to)),
        ("tiktok_ads", world.tiktok.truth(Level::AdGroup, from, to)),
    ];
    for (net, truth) in truths {
        let stored: Vec<plugin_api::Spend> = store
            .scan_records(plugin_api::RecordKind::Spend, Some(net))
            .map(|r| match r.unwrap().record {
                plugin_api::Record::Spend(s) => s,
                other => panic!("not spend: {other:?}"),
            })
            .collect();
        let (got, want) = (
            wire::spend_totals(stored.iter()),
            wire::truth_totals(&truth),
        );
        assert_eq!(
            got.len(),
            want.len(),
            "days × campaigns with spend for {net}"
        );
        for (k, v) in &want {
            assert_eq!(got.get(k), Some(v), "spend of {net} on {k:?}");
        }
    }
    let google_revisions: usize = store
        .scan_records(plugin_api::RecordKind::Spend, Some("google_ads"))
        .filter(|r| r.as_ref().unwrap().revision > 1)
        .count();
    assert!(
        google_revisions > 0,
        "the restated Google day is stored as new revisions"
    );

    // 5. KPIs: reconciled conversions are the real orders (fully refunded ones
    // excluded), each counted once across channels.
    let kpi = csv_rows(&out.path().join("kpi").join("kpi-by-channel.csv"));
    let reconciled: u64 = kpi
        .iter()
        .map(|r| r["conversions_reconciled"].parse::<u64>().unwrap())
        .sum();
    let real = story
        .orders
        .iter()
        .filter(|o| o.status != plugin_api::OrderStatus::Refunded)
        .count() as u64;
    assert_eq!(
        reconciled, real,
        "reconciled conversions equal the real orders"
    );
    let affiliate = kpi
        .iter()
        .find(|r| r["channel"] == "affiliate")
        .expect("affiliate row");
    assert_eq!(
        affiliate["conversions_reconciled"]
            .parse::<usize>()
            .unwrap(),
        earning,
        "affiliate orders counted once, duplicates dropped"
    );
    assert!(
        std::fs::read_to_string(out.path().join("kpi").join("kpi-by-channel.html"))
            .unwrap()
            .contains("<svg"),
        "the KPI report has its charts"
    );
}

/// `reckon demo --out DIR` replaces `DIR`'s data and config: it refuses a
/// directory that is not an earlier demo's, and a demo whose store a
/// reckon process is using, and touches nothing of either.
#[test]
fn the_demo_never_replaces_what_is_not_its_own() {
    let demo = |dir: &Path| {
        Command::new(reckon_tests::reckon_bin())
            .args(["demo", "--out"])
            .arg(dir)
            .output()
            .unwrap()
    };
    // A real installation: a config and a store, no demo marker.
    let real = tempfile::tempdir().unwrap();
    std::fs::write(real.path().join("reckon.toml"), "[daemon]\n").unwrap();
    drop(reckon::store::Store::open(&real.path().join("data")).unwrap());
    let out = demo(real.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an earlier demo's output"), "{err}");
    assert_eq!(
        std::fs::read_to_string(real.path().join("reckon.toml")).unwrap(),
        "[daemon]\n"
    );
    assert!(real.path().join("data").exists());
    // QA29-D H1: the demo's own config copied to try a setup (as the
    // README says), with a store: not the demo's, so untouched.
    let tried = tempfile::tempdir().unwrap();
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo.toml"))
            .unwrap();
    std::fs::write(tried.path().join("reckon.toml"), &config).unwrap();
    drop(reckon::store::Store::open(&tried.path().join("data")).unwrap());
    let out = demo(tried.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not an earlier demo's output (it has no .reckon-demo file)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(tried.path().join("reckon.toml")).unwrap(),
        config
    );
    assert!(tried.path().join("data").exists());
    // An earlier demo's directory whose store is in use (a daemon on it).
    let earlier = tempfile::tempdir().unwrap();
    std::fs::write(earlier.path().join(".reckon-demo"), "").unwrap();
    let store = reckon::store::Store::open(&earlier.path().join("data")).unwrap();
    let out = demo(earlier.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another reckon process") && err.contains("choose another --out"),
        "{err}"
    );
    drop(store);
    assert!(earlier.path().join("data").exists());
}
