//! Crash test: `reckon sync` killed with SIGKILL at random points (after a
//! random number of committed pages, including none) at least 20 times,
//! restarted each time; the final store must equal one clean run's: zero
//! records lost, zero duplicated, and no torn record after any kill.

mod core_support;

use core_support::*;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;

const KILLS: usize = 22;

fn sync_cmd(config: &std::path::Path) -> std::process::Command {
    let mut c = reckon(config);
    c.args([
        "sync",
        "examplenet",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-12",
    ]);
    c
}

#[test]
fn kill_dash_nine_at_random_points_loses_and_duplicates_nothing() {
    let data = Arc::new(FakeData {
        per_day: 25,
        requests: Default::default(),
    });
    let server = reckon_tests::fakes::server::FakeServer::start(router(data.clone()));

    // One clean run: the ground truth.
    let clean = setup(&server.base_url, "0 0 * * *", "");
    let out = sync_cmd(&clean.config).output().unwrap();
    assert!(
        out.status.success(),
        "clean run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pages = stderr.matches("page committed").count();
    assert!(pages > 20, "expected many pages, got {pages}: {stderr}");
    let truth = export_conversions(&clean.config);
    assert_eq!(truth.len(), 12 * 25);

    // The same sync, killed again and again.
    let crashy = setup(&server.base_url, "0 0 * * *", "");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut kills = 0;
    let mut completed_early = 0;
    let mut pages_before_kill = Vec::new();
    let mut round = 0;
    while kills < KILLS && round < KILLS * 4 {
        round += 1;
        // Kill right at start (1 in 8), or after a random number of pages:
        // a resumed run has fewer pages left, so some runs finish first.
        let kill_after = if rng.gen_range(0..8) == 0 {
            0
        } else {
            rng.gen_range(1..=pages)
        };
        let mut child = sync_cmd(&crashy.config)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut seen = 0;
        if kill_after > 0 {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("page committed") {
                    seen += 1;
                    if seen >= kill_after {
                        break;
                    }
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            completed_early += 1;
        } else {
            kills += 1;
            pages_before_kill.push(seen);
        }
        // After every kill: the store opens, and everything in it is a
        // correct record of the ground truth (no torn or foreign values).
        let now = export_conversions(&crashy.config);
        let truth_set: BTreeSet<&String> = truth.iter().collect();
        for r in &now {
            assert!(
                truth_set.contains(r),
                "round {round}: unexpected stored record {r}"
            );
        }
        let unique: BTreeSet<&String> = now.iter().collect();
        assert_eq!(unique.len(), now.len(), "round {round}: duplicated records");
    }
    assert!(
        kills >= 20,
        "only {kills} runs were killed mid-way in {round} rounds"
    );

    // Restart once more and let it finish.
    let out = sync_cmd(&crashy.config).output().unwrap();
    assert!(
        out.status.success(),
        "final run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = export_conversions(&crashy.config);
    let lost = truth.iter().filter(|r| !after.contains(r)).count();
    let extra = after.len().saturating_sub(truth.len() - lost);
    println!(
        "crash test: {kills} kill -9s after {pages_before_kill:?} committed pages ({completed_early} runs finished before their kill), clean run {} records, after crashes {} records, lost {lost}, duplicated {extra}, fake served {} requests",
        truth.len(),
        after.len(),
        data.requests.load(std::sync::atomic::Ordering::SeqCst)
    );
    assert_eq!(after, truth);
}
