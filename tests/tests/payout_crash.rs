//! `kill -9` during generation and finalisation never leaves a partial or
//! duplicated statement.
//!
//! Runs the `payout-harness` binary (the payout library over the real store,
//! decisions from a JSON file) and kills it with SIGKILL at random moments,
//! and also makes it abort right after each durable step. After every kill
//! the state is checked the way the next command would find it:
//! - the period directory (after the recovery every command runs first) is
//!   absent or complete and self-consistent;
//! - a period recorded as finalised verifies against its files, or
//!   `verify` says a finalize was interrupted (killed between recording
//!   and swapping the files in; the rerun writes them);
//! - every claim is on at most one finalised line per partner, and what
//!   the finalised statements paid for it (lines plus adjustments) is zero
//!   for every partner but the one in the ledger of paid claims, which was
//!   paid the ledger's total (a claim the network moved to another partner
//!   after payment is taken back from the first and paid to the second);
//!   likewise for every bonus of every statement: its bonus line plus the
//!   bonus adjustments of later finalised statements (November's refunds
//!   and moves drop some October volumes below the threshold) equal the
//!   bonus ledger's total; and every finalised line whose claim moved
//!   away since (its ledger entry released or replaced) is in the
//!   released-lines ledger with what was paid for it there; the settled
//!   ledger records every October statement once November is finalised,
//!   and none before.
//!
//! Then the operation is rerun to completion and every payable claim must be
//! paid exactly once. The random delays only pick the kill moment; nothing
//! waits on them.

mod payout_support;

use payout_support::*;
use rand::{Rng, SeedableRng};
use reckon::payout::book::StoreBook;
use reckon::payout::lifecycle;
use reckon::payout::model::Status;
use reckon::payout::render;
use reckon::reconcile::model::Decision;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const COMMISSION: &str = r#"{
  "payout_currency": "EUR",
  "minimum_payout": "30.00",
  "rules": [
    {"id": "cps", "effective_from": "2026-01-01", "kind": "percent", "percent": "10"}
  ],
  "bonuses": [
    {"id": "b900", "effective_from": "2026-01-01", "threshold_volume": "900", "amount": "15"}
  ]
}"#;

const PARTNERS: usize = 30;

fn october() -> Vec<Decision> {
    let mut v = Vec::new();
    for p in 0..PARTNERS {
        for i in 0..6 {
            let amount = format!("{}.{:02}", 20 + (p * 7 + i * 13) % 300, (p + i) % 100);
            let mut x = sale(
                &format!("c{p}-{i}"),
                &format!("partner/{p:03}"),
                &format!("2026-10-{:02}T10:00:00Z", 1 + (p + i) % 28),
                &amount,
            );
            // every fifth claim only becomes payable in November
            if (p + i) % 5 == 0 {
                x.payable = false;
            }
            v.push(x);
        }
    }
    v
}

fn november() -> Vec<Decision> {
    let mut v: Vec<Decision> = october()
        .into_iter()
        .enumerate()
        .map(|(n, mut x)| {
            x.payable = true;
            // some claims move to another partner at the network, most of
            // them after October paid them
            if n % 11 == 5 {
                x.partner_id = format!("partner/{:03}", (n / 6 + 1) % PARTNERS);
            }
            if n % 7 == 0 {
                refunded(x)
            } else {
                x
            }
        })
        .collect();
    for p in 0..PARTNERS {
        v.push(sale(
            &format!("n{p}"),
            &format!("partner/{p:03}"),
            "2026-11-12T10:00:00Z",
            "55.55",
        ));
    }
    v
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    /// Whether a command has finished on this store (so it holds data).
    finished_once: std::cell::Cell<bool>,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::write(root.join("commission.json"), COMMISSION).unwrap();
        std::fs::write(
            root.join("oct.json"),
            serde_json::to_vec(&october()).unwrap(),
        )
        .unwrap();
        std::fs::write(
            root.join("nov.json"),
            serde_json::to_vec(&november()).unwrap(),
        )
        .unwrap();
        Env {
            _tmp: tmp,
            root,
            finished_once: std::cell::Cell::new(false),
        }
    }
    fn data(&self) -> PathBuf {
        self.root.join("data")
    }
    fn out(&self) -> PathBuf {
        self.root.join("out")
    }
    fn command(
        &self,
        op: &str,
        period: &str,
        decisions: &str,
        abort_after: Option<u32>,
    ) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_payout-harness"));
        c.arg(self.data())
            .arg(self.out())
            .arg(self.root.join(decisions))
            .arg(self.root.join("commission.json"))
            .arg("shop")
            .arg(op)
            .arg(period);
        if let Some(n) = abort_after {
            c.arg(n.to_string());
        }
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    }
    fn run_ok(&self, op: &str, period: &str, decisions: &str) {
        let out = self
            .command(op, period, decisions, None)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{op} {period}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.finished_once.set(true);
    }
    /// Starts the operation and SIGKILLs it after `delay`.
    fn run_killed(&self, op: &str, period: &str, decisions: &str, delay: Duration) {
        let mut child = self.command(op, period, decisions, None).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL on Unix
        if child.wait().is_ok_and(|s| s.success()) {
            self.finished_once.set(true);
        }
    }
    fn run_aborted(&self, op: &str, period: &str, decisions: &str, step: u32) {
        let status = self
            .command(op, period, decisions, Some(step))
            .status()
            .unwrap();
        let _ = status; // aborted, or finished if it has fewer steps
    }
    /// A copy of this environment's state (data and outputs).
    fn fork(&self) -> Env {
        let e = Env::new();
        e.finished_once.set(self.finished_once.get());
        copy_dir(&self.data(), &e.data());
        if self.out().exists() {
            copy_dir(&self.out(), &e.out());
        }
        e
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Checks the invariants as the next command would see the state.
fn check(env: &Env, context: &str) {
    if !env.data().exists() {
        return;
    }
    let store = match reckon::store::Store::open(&env.data()) {
        Ok(s) => s,
        // The very first command killed while creating the store, before
        // its schema version was flushed: the store refuses to open and
        // says to remove the data directory (README), which is what a user
        // does. Nothing was ever stored, so nothing is lost.
        Err(reckon::store::StoreError::Damaged { detail, .. })
            if !env.finished_once.get() && detail.contains("a first start cut short") =>
        {
            std::fs::remove_dir_all(env.data()).unwrap();
            return;
        }
        Err(e) => panic!("{context}: store does not open after a kill: {e}"),
    };
    let book = StoreBook::open(&store).unwrap();
    let mut finalised_lines = BTreeSet::new();
    // claim → payee → paid on finalised statements
    let mut net = PaidByPayee::new();
    // (statement, bonus) → credited on finalised statements
    let mut bonuses: std::collections::BTreeMap<(String, String), rust_decimal::Decimal> =
        Default::default();
    let mut statements = Vec::new();
    for period in ["2026-10", "2026-11"] {
        let dir = lifecycle::period_dir(&env.out(), "shop", period);
        reckon::payout::files::recover(&dir).unwrap();
        if dir.exists() {
            assert_complete(&dir, &format!("{context} {period}"));
        }
        let recs = lifecycle::period_records(&book, "shop").unwrap();
        if let Some(rec) = recs.iter().find(|r| r.period == period) {
            if rec.status == Status::Finalised {
                // verified, or (killed between recording and swapping the
                // files in) said to be an interrupted finalize to rerun; a
                // first version's files never written say so too (the
                // kill came between the commit point of the store's write
                // log and the swap: the next open completed the record)
                let v = reckon::payout::verify(&book, &env.out(), "shop", period).unwrap();
                assert!(
                    v.problems.is_empty()
                        || (v.problems.len() == 1
                            && (v.problems[0]
                                .starts_with(&format!("a finalize of {period} was interrupted"))
                                || v.problems[0].contains(
                                    "or the run that recorded it stopped before writing its files"
                                ))),
                    "{context} {period}: {:?}",
                    v.problems
                );
                for (s, _) in lifecycle::finalised_statements(&book, rec).unwrap() {
                    let payee = s.payee();
                    for l in &s.lines {
                        assert!(
                            finalised_lines.insert((
                                l.network.clone(),
                                l.claim_id.clone(),
                                payee.clone()
                            )),
                            "{context}: claim {} paid twice to {payee}",
                            l.claim_id
                        );
                    }
                    add_paid(&mut net, &s);
                    for b in &s.bonuses {
                        *bonuses
                            .entry((s.statement_id.clone(), b.bonus_id.clone()))
                            .or_default() += b.amount;
                    }
                    for a in &s.bonus_adjustments {
                        *bonuses
                            .entry((a.original_statement_id.clone(), a.bonus_id.clone()))
                            .or_default() += a.amount;
                    }
                    statements.push(s);
                }
            }
        }
    }
    let history = lifecycle::load_history(&book, "shop").unwrap();
    assert_paid_matches_ledger(&net, &history, context);
    assert_released_matches_statements(&statements, &history, context);
    let ledger: std::collections::BTreeMap<(String, String), rust_decimal::Decimal> = history
        .bonuses
        .iter()
        .flat_map(|(s, m)| {
            m.iter()
                .map(|(b, p)| ((s.clone(), b.clone()), p.paid_total))
        })
        .collect();
    assert_eq!(
        bonuses, ledger,
        "{context}: bonuses credited vs the bonus ledger"
    );
    // The settled ledger is written with the period that settles: once
    // November is finalised (it reprices every October statement and
    // applies every target, its claims being payable or taken back), each
    // October statement with lines has a record of all its lines; before,
    // none has.
    type Claims = BTreeSet<(String, String)>;
    let november = statements.iter().any(|s| s.period == "2026-11");
    let want: std::collections::BTreeMap<String, Claims> = statements
        .iter()
        .filter(|s| november && s.period == "2026-10" && !s.lines.is_empty())
        .map(|s| {
            let claims = s
                .lines
                .iter()
                .map(|l| (l.network.clone(), l.claim_id.clone()));
            (s.statement_id.clone(), claims.collect())
        })
        .collect();
    let got: std::collections::BTreeMap<String, Claims> = history
        .settled
        .iter()
        .map(|(id, r)| {
            let claims = r
                .lines
                .iter()
                .map(|l| (l.network.clone(), l.claim_id.clone()));
            (id.clone(), claims.collect())
        })
        .collect();
    assert_eq!(
        got, want,
        "{context}: the settled ledger vs the finalised periods"
    );
}

/// The directory holds one complete, consistent set of statements.
fn assert_complete(dir: &Path, context: &str) {
    let files = read_dir(dir);
    let summary = String::from_utf8(
        files
            .get("summary.csv")
            .unwrap_or_else(|| {
                panic!(
                    "{context}: no summary.csv in {files:?}",
                    files = files.keys()
                )
            })
            .clone(),
    )
    .unwrap();
    let rows: Vec<Vec<String>> = summary
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(
        files.len(),
        1 + 3 * rows.len(),
        "{context}: stray or missing files"
    );
    let mut versions = BTreeSet::new();
    for r in &rows {
        let stem = render::payee_stem(&r[0]);
        for ext in ["json", "csv", "html"] {
            assert!(
                files.contains_key(&format!("{stem}.{ext}")),
                "{context}: {stem}.{ext} missing"
            );
        }
        let (s, claimed, actual) = render::read_json_file(&files[&format!("{stem}.json")])
            .unwrap_or_else(|e| panic!("{context}: {stem}.json unreadable: {e}"));
        assert_eq!(claimed, actual, "{context}: {stem}.json hash");
        assert_eq!(&r[9], &actual, "{context}: summary hash of {stem}");
        versions.insert((s.status.as_str(), s.version));
    }
    assert!(
        versions.len() <= 1,
        "{context}: mixed versions {versions:?}"
    );
}

/// After completing both months, every payable claim is paid exactly once.
fn assert_paid_exactly_once(env: &Env) {
    let store = reckon::store::Store::open(&env.data()).unwrap();
    let book = StoreBook::open(&store).unwrap();
    let mut lines = Vec::new();
    let mut taken_back = BTreeSet::new();
    let mut bonus_adjustments = 0;
    for rec in lifecycle::period_records(&book, "shop").unwrap() {
        assert_eq!(rec.status, Status::Finalised);
        for (s, _) in lifecycle::finalised_statements(&book, &rec).unwrap() {
            bonus_adjustments += s.bonus_adjustments.len();
            lines.extend(s.lines.iter().map(|l| l.claim_id.clone()));
            taken_back.extend(
                s.adjustments
                    .iter()
                    .filter(|a| a.reason.starts_with("claim moved to partner"))
                    .map(|a| a.claim_id.clone()),
            );
        }
    }
    assert!(bonus_adjustments > 0, "November corrects October's bonuses");
    let unique: BTreeSet<_> = lines.iter().cloned().collect();
    // A claim is on a second line only when it moved to another partner
    // and the first partner's payment was taken back.
    let moved_and_paid_again = november()
        .iter()
        .filter(|x| x.payable && taken_back.contains(&x.claim.id))
        .count();
    assert!(moved_and_paid_again > 0);
    // Their October lines are the released lines `check` compares.
    let history = lifecycle::load_history(&book, "shop").unwrap();
    assert_eq!(
        history.released.values().map(|m| m.len()).sum::<usize>(),
        taken_back.len()
    );
    assert_eq!(
        unique.len() + moved_and_paid_again,
        lines.len(),
        "a claim was paid twice"
    );
    // October paid its payable claims; November the rest (the late October
    // ones, including those refunded before they were ever paid, are not).
    let expected: BTreeSet<String> = october()
        .iter()
        .filter(|x| x.payable)
        .map(|x| x.claim.id.clone())
        .chain(
            november()
                .iter()
                .filter(|x| x.payable)
                .map(|x| x.claim.id.clone()),
        )
        .collect();
    assert_eq!(unique, expected);
}

#[test]
fn kill_9_during_generation_and_finalisation_never_leaves_a_partial_or_duplicated_statement() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    // How long a full run takes here, to spread the kills over it.
    let probe = Env::new();
    let t0 = Instant::now();
    probe.run_ok("generate", "2026-10", "oct.json");
    let gen_time = t0.elapsed();
    let t0 = Instant::now();
    probe.run_ok("finalize", "2026-10", "oct.json");
    let fin_time = t0.elapsed();
    let pick = |rng: &mut rand::rngs::StdRng, full: Duration| {
        Duration::from_micros(rng.gen_range(0..(full.as_micros() as u64 * 12 / 10).max(1)))
    };
    let mut kills = 0;

    // 1. Drafts: repeated kills of `generate` on the same state.
    let env = Env::new();
    for i in 0..8 {
        env.run_killed("generate", "2026-10", "oct.json", pick(&mut rng, gen_time));
        kills += 1;
        check(&env, &format!("generate kill {i}"));
    }
    env.run_ok("generate", "2026-10", "oct.json");
    check(&env, "generate completed");

    // 2. Finalising October, from the drafts state, killed at random.
    for i in 0..8 {
        let e = env.fork();
        e.run_killed("finalize", "2026-10", "oct.json", pick(&mut rng, fin_time));
        kills += 1;
        check(&e, &format!("finalize oct kill {i}"));
        e.run_ok("finalize", "2026-10", "oct.json");
        check(&e, &format!("finalize oct kill {i} then completed"));
    }
    // ... and aborted right after each durable step.
    for step in 1..=6 {
        let e = env.fork();
        e.run_aborted("finalize", "2026-10", "oct.json", step);
        check(&e, &format!("finalize oct abort after step {step}"));
        e.run_ok("finalize", "2026-10", "oct.json");
        check(&e, &format!("finalize oct abort {step} then completed"));
    }

    // 3. Finalising November (late claims, refunds → adjustments), killed.
    env.run_ok("finalize", "2026-10", "oct.json");
    check(&env, "october final");
    for i in 0..8 {
        let e = env.fork();
        e.run_killed("finalize", "2026-11", "nov.json", pick(&mut rng, fin_time));
        kills += 1;
        check(&e, &format!("finalize nov kill {i}"));
        e.run_ok("finalize", "2026-11", "nov.json");
        check(&e, &format!("finalize nov kill {i} then completed"));
        if i == 0 {
            // a second finalisation changes nothing
            e.run_ok("finalize", "2026-11", "nov.json");
            check(&e, "finalize nov twice");
        }
        assert_paid_exactly_once(&e);
    }
    assert!(kills >= 24);
}

/// QA finding of 2026-11-29: `kill -9` at the 6th fsync (or the 2nd
/// rename) of `statements finalize` left `.2026-09.old` and
/// `.2026-09.staging` and no `2026-09`; `show` failed ("read
/// …/2026-09/cake.31.json: No such file") and `verify` listed every file
/// as "cannot read". That state (the old set moved aside, the new set
/// complete in staging and recorded in the store) is built by hand here:
/// every command completes the swap before it reads. (On Linux the swap is
/// one `renameat2(RENAME_EXCHANGE)` and cannot stop half-way; the two
/// renames remain the fallback elsewhere.)
#[test]
fn the_state_between_the_two_renames_of_a_swap_is_completed_before_show_verify_and_generate() {
    let c = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#,
    );
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "200.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "400.00"),
    ];
    type Reader = fn(&reckon::payout::book::MemoryBook, &Path, &reckon::payout::Inputs<'_>);
    let readers: Vec<(&str, Reader)> = vec![
        ("show", |book, out, _| {
            let shown = reckon::payout::show(book, out, "shop", "2026-10").unwrap();
            assert_eq!(shown.rows.len(), 2);
            assert_eq!(shown.files_not_recorded, None);
        }),
        ("verify", |book, out, _| {
            let v = reckon::payout::verify(book, out, "shop", "2026-10").unwrap();
            assert!(v.problems.is_empty(), "{:?}", v.problems);
        }),
        ("generate", |book, out, inp| {
            reckon::payout::generate(inp, "2026-10").unwrap();
            let v = reckon::payout::verify(book, out, "shop", "2026-10").unwrap();
            assert!(v.problems.is_empty(), "{:?}", v.problems);
        }),
    ];
    for (name, read) in readers {
        let tmp = tempfile::tempdir().unwrap();
        let book = reckon::payout::book::MemoryBook::new();
        let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
        reckon::payout::generate(&inp, "2026-10").unwrap();
        let dir = lifecycle::period_dir(tmp.path(), "shop", "2026-10");
        let parent = dir.parent().unwrap().to_path_buf();
        copy_dir(&dir, &parent.join("v1"));
        reckon::payout::finalize(&inp, "2026-10").unwrap();
        // as a kill between "move aside" and "rename staging" leaves it
        std::fs::rename(&dir, parent.join(".2026-10.staging")).unwrap();
        std::fs::rename(parent.join("v1"), parent.join(".2026-10.old")).unwrap();
        read(&book, tmp.path(), &inp);
        let left: Vec<String> = std::fs::read_dir(&parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["2026-10"], "{name}");
        assert_complete(&dir, name);
    }
}
