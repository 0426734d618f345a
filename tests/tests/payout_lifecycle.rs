//! Properties of the statement lifecycle: totals add up and equal an
//! independent computation, finalised statements reproduce byte for byte and
//! never change, `verify` catches tampering, and the printed outputs are
//! snapshotted.

mod payout_support;

use payout_support::*;
use plugin_api::EventType;
use rand::{Rng, SeedableRng};
use reckon::payout::book::MemoryBook;
use reckon::payout::config::CommissionConfig;
use reckon::payout::model::{Statement, Status};
use reckon::payout::render;
use reckon::reconcile::model::{Decision, Outcome};
use std::collections::BTreeMap;
use std::path::Path;

type Mutation = Box<dyn Fn(&mut Decision)>;
type Tampering = Box<dyn Fn(&Path)>;

const SEEDED: &str = r#"
payout_currency = "EUR"
minimum_payout = "25.00"
[[rules]]
id = "lead"
effective_from = "2026-01-01"
event_types = ["lead"]
kind = "flat"
amount = "3.00"
[[rules]]
id = "sale"
effective_from = "2026-01-01"
kind = "percent"
percent = "7.5"
"#;

/// A seeded month of claims: 30 partners, sales and leads in Oct–Dec, some
/// not yet payable, some refunded.
fn seeded(seed: u64) -> Vec<Decision> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..400)
        .map(|i| {
            let partner = format!("p{:02}", rng.gen_range(0..30));
            let month = rng.gen_range(10..=12);
            let at = format!(
                "2026-{month:02}-{:02}T{:02}:{:02}:00Z",
                rng.gen_range(1..=28),
                rng.gen_range(0..24),
                rng.gen_range(0..60)
            );
            let mut dcs = if rng.gen_bool(0.2) {
                claim(
                    "awin",
                    &format!("c{i}"),
                    &partner,
                    EventType::Lead,
                    &at,
                    None,
                )
            } else {
                let cents: i64 = rng.gen_range(1..100_000);
                let amount = format!("{}.{:02}", cents / 100, cents % 100);
                sale(&format!("c{i}"), &partner, &at, &amount)
            };
            match rng.gen_range(0..10) {
                0 => dcs = refunded(dcs),
                1 => dcs.payable = false,
                _ => {}
            }
            dcs
        })
        .collect()
}

/// Independent computation of a November statement's lines in integer
/// cents: leads 300 cents, sales round_half_up(cents × 75 / 1000).
fn expected_november(decisions: &[Decision]) -> BTreeMap<String, i64> {
    let end = at("2026-12-01T00:00:00Z");
    let mut by: BTreeMap<String, i64> = BTreeMap::new();
    for x in decisions
        .iter()
        .filter(|x| x.payable && x.occurred_at < end)
    {
        let cents = match &x.basis {
            None => 300,
            Some(b) => {
                let basis_cents = (b.amount * d("100"))
                    .normalize()
                    .to_string()
                    .parse::<i64>()
                    .unwrap();
                (basis_cents * 75 + 500) / 1000
            }
        };
        *by.entry(x.partner_id.clone()).or_default() += cents;
    }
    by
}

fn cents(s: &str) -> i64 {
    let (a, b) = s.split_once('.').unwrap();
    let sign = if a.starts_with('-') { -1 } else { 1 };
    a.parse::<i64>().unwrap() * 100 + sign * b.parse::<i64>().unwrap()
}

fn assert_sums(s: &Statement) {
    let t = &s.totals;
    let lines: rust_decimal::Decimal = s.lines.iter().map(|l| l.commission).sum();
    // Bonus adjustments (format 7) count with the claims' adjustments.
    let adj: rust_decimal::Decimal = s
        .adjustments
        .iter()
        .map(|a| a.amount)
        .chain(s.bonus_adjustments.iter().map(|a| a.amount))
        .sum();
    let bonus: rust_decimal::Decimal = s.bonuses.iter().map(|b| b.amount).sum();
    assert_eq!(t.lines, lines, "{}", s.statement_id);
    assert_eq!(t.adjustments, adj);
    assert_eq!(t.bonuses, bonus);
    assert_eq!(t.subtotal, lines + adj + bonus + t.carried_in);
    assert_eq!(t.total_payable + t.carried_out, t.subtotal);
    assert!(t.total_payable.is_zero() || t.total_payable >= t.minimum_payout);
}

fn read_statements(dir: &Path) -> Vec<Statement> {
    let mut v: Vec<Statement> = read_dir(dir)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(_, b)| {
            let (s, claimed, actual) = render::read_json_file(&b).unwrap();
            assert_eq!(claimed, actual);
            s
        })
        .collect();
    v.sort_by(|a, b| a.partner_id.cmp(&b.partner_id));
    v
}

#[test]
fn seeded_month_totals_equal_an_independent_computation() {
    let c = config(SEEDED);
    for seed in 1..=5 {
        let ds = seeded(seed);
        let tmp = tempfile::tempdir().unwrap();
        let book = MemoryBook::new();
        let fxr = no_fx();
        let report =
            reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-11").unwrap();
        assert!(report.skipped.is_empty());
        let statements = read_statements(&report.dir);
        let expected = expected_november(&ds);
        assert_eq!(
            statements
                .iter()
                .map(|s| s.partner_id.clone())
                .collect::<Vec<_>>(),
            expected.keys().cloned().collect::<Vec<_>>()
        );
        let mut total_payable = 0;
        for s in &statements {
            assert_sums(s);
            let want = expected[&s.partner_id];
            assert_eq!(
                cents(&s.totals.lines.to_string()),
                want,
                "seed {seed} {}",
                s.partner_id
            );
            let (pay, carry) = if want >= 2500 { (want, 0) } else { (0, want) };
            assert_eq!(cents(&s.totals.total_payable.to_string()), pay);
            assert_eq!(cents(&s.totals.carried_out.to_string()), carry);
            assert_eq!(s.status, Status::Draft);
            total_payable += pay;
        }
        assert_eq!(cents(&report.total_payable.to_string()), total_payable);
        // summary.csv has one row per partner and the same amounts
        let summary = std::fs::read_to_string(report.dir.join("summary.csv")).unwrap();
        let rows: Vec<&str> = summary.lines().skip(1).collect();
        assert_eq!(rows.len(), statements.len());
        let summed: i64 = rows
            .iter()
            .map(|r| cents(r.split(',').nth(2).unwrap()))
            .sum();
        assert_eq!(summed, total_payable);
    }
}

#[test]
fn lines_sum_to_the_total_for_every_kind_of_statement() {
    let c = config(
        r#"
payout_currency = "EUR"
minimum_payout = "40"
[[rules]]
id = "t"
effective_from = "2026-01-01"
kind = "tiered"
tier_mode = "marginal"
cap_per_period = "90"
tiers = [{ from_volume = "0", percent = "3.33" }, { from_volume = "500", percent = "6.67" }]
[[bonuses]]
id = "b"
effective_from = "2026-01-01"
threshold_volume = "700"
percent = "0.5"
"#,
    );
    for seed in 10..=14 {
        let ds = seeded(seed);
        let tmp = tempfile::tempdir().unwrap();
        let book = MemoryBook::new();
        let fxr = no_fx();
        let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
        reckon::payout::finalize(&inp, "2026-10").unwrap();
        // refund a third of everything, then November: adjustments too
        let later: Vec<Decision> = ds
            .iter()
            .enumerate()
            .map(|(i, x)| {
                if i % 3 == 0 {
                    refunded(x.clone())
                } else {
                    x.clone()
                }
            })
            .collect();
        let inp = inputs(&c, &later, &fxr, &book, tmp.path());
        let nov = reckon::payout::finalize(&inp, "2026-11").unwrap();
        assert!(nov.adjustments > 0);
        for dir in ["2026-10", "2026-11"] {
            for s in read_statements(&tmp.path().join("statements/shop").join(dir)) {
                assert_sums(&s);
            }
        }
    }
}

#[test]
fn finalise_then_regenerate_gives_identical_bytes_and_hash() {
    let c = config(SEEDED);
    let ds = seeded(7);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    let before = chrono::Utc::now();
    let draft = reckon::payout::generate(&inp, "2026-11").unwrap();
    assert_eq!((draft.status, draft.version), (Status::Draft, 1));
    let generated = reckon::payout::show(&book, tmp.path(), "shop", "2026-11").unwrap();
    let fin = reckon::payout::finalize(&inp, "2026-11").unwrap();
    assert_eq!((fin.status, fin.version), (Status::Finalised, 2));
    let files = read_dir(&fin.dir);
    let shown = reckon::payout::show(&book, tmp.path(), "shop", "2026-11").unwrap();
    // QA18 A2: when each version was recorded (the `--as-of` instant for
    // an auditor); a finalised period's restore below does not move it.
    let (g, f) = (generated.record.recorded_at, shown.record.recorded_at);
    assert!(g
        .zip(f)
        .is_some_and(|(g, f)| before <= g && g <= f && f <= chrono::Utc::now()));
    for _ in 0..2 {
        let again = reckon::payout::generate(&inp, "2026-11").unwrap();
        assert!(again.already_finalised);
        assert_eq!(again.version, 2);
        assert_eq!(read_dir(&again.dir), files);
        let again_fin = reckon::payout::finalize(&inp, "2026-11").unwrap();
        assert!(again_fin.already_finalised);
        assert_eq!(read_dir(&again.dir), files);
    }
    // the hashes shown match the files' content hashes
    for row in &shown.rows {
        let bytes = &files[&format!("{}.json", render::payee_stem(&row.partner_id))];
        let (_, claimed, actual) = render::read_json_file(bytes).unwrap();
        assert_eq!((&claimed, &actual), (&row.content_hash, &row.content_hash));
    }
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.files_checked, 1 + 3 * shown.rows.len());
    let after = reckon::payout::show(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert_eq!(after.record.recorded_at, f);
}

#[test]
fn a_change_to_stored_data_after_finalisation_never_alters_a_finalised_file() {
    let c = config(SEEDED);
    let ds = seeded(8);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let oct = tmp.path().join("statements/shop/2026-10");
    let before = read_dir(&oct);
    let mutations: Vec<Mutation> = vec![
        Box::new(|x| *x = refunded(x.clone())),
        Box::new(|x| {
            if let Some(b) = &mut x.basis {
                b.amount += d("1.23");
            }
        }),
        Box::new(|x| x.partner_name = Some("Renamed".into())),
        Box::new(|x| x.payable = true),
        Box::new(|x| x.partner_id = format!("{}-moved", x.partner_id)),
    ];
    for (i, m) in mutations.iter().enumerate() {
        let mut changed = ds.clone();
        changed.iter_mut().for_each(m);
        changed.push(sale(
            &format!("late{i}"),
            "p01",
            "2026-10-15T10:00:00Z",
            "99.00",
        ));
        let inp = inputs(&c, &changed, &fxr, &book, tmp.path());
        let r = reckon::payout::generate(&inp, "2026-10").unwrap();
        assert!(r.already_finalised);
        assert!(r.restored.is_empty());
        reckon::payout::finalize(&inp, "2026-10").unwrap();
        reckon::payout::generate(&inp, "2026-11").unwrap();
        assert_eq!(
            read_dir(&oct),
            before,
            "mutation {i} altered a finalised file"
        );
    }
}

#[test]
fn verify_detects_a_tampered_file_and_generate_restores_it() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "200.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "100.00"),
    ];
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::finalize(&inp, "2026-10").unwrap();
    let dir = tmp.path().join("statements/shop/2026-10");
    let ok = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(ok.problems.is_empty(), "{:?}", ok.problems);

    let tamperings: Vec<(&str, Tampering)> = vec![
        (
            "json amount",
            Box::new(|d: &Path| edit(&d.join("awin.p1.json"), "\"20.00\"", "\"21.00\"")),
        ),
        (
            "csv amount",
            Box::new(|d: &Path| edit(&d.join("awin.p2.csv"), "10.00", "10.01")),
        ),
        (
            "html",
            Box::new(|d: &Path| edit(&d.join("awin.p1.html"), "Total payable", "Total paid")),
        ),
        (
            "summary",
            Box::new(|d: &Path| edit(&d.join("summary.csv"), "20.00", "2000.00")),
        ),
        (
            // QA (robustness F8): read as "the store is older than the
            // files", which hid the other problems.
            "summary status",
            Box::new(|d: &Path| edit(&d.join("summary.csv"), ",finalised,", ",draft,")),
        ),
        (
            "deleted",
            Box::new(|d: &Path| std::fs::remove_file(d.join("awin.p2.json")).unwrap()),
        ),
        (
            "extra",
            Box::new(|d: &Path| std::fs::write(d.join("awin.p3.json"), "{}").unwrap()),
        ),
    ];
    for (what, tamper) in tamperings {
        tamper(&dir);
        let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
        assert!(!v.problems.is_empty(), "verify missed tampering: {what}");
        assert!(
            !v.problems.iter().any(|p| p.contains("store is older")),
            "{what}: {:?}",
            v.problems
        );
        let r = reckon::payout::generate(&inp, "2026-10").unwrap();
        if what == "extra" {
            // A file Reckon did not write is moved aside, never deleted
            // (QA: a finance notes file vanished as "restored").
            assert!(r.restored.is_empty(), "{:?}", r.restored);
            assert!(
                r.warnings[0]
                    .starts_with("moved 1 file(s) that are not part of the statements to "),
                "{:?}",
                r.warnings
            );
            let aside = tmp
                .path()
                .join("statements/shop/set-aside/2026-10/awin.p3.json");
            assert_eq!(std::fs::read_to_string(aside).unwrap(), "{}");
        } else {
            assert!(!r.restored.is_empty(), "{what}");
        }
        let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
        assert!(v.problems.is_empty(), "{what}: {:?}", v.problems);
    }
    // a pretty-printed copy says so, instead of "no content_hash field"
    let path = dir.join("awin.p1.json");
    let issued = std::fs::read(&path).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&issued).unwrap();
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("not laid out as issued (re-formatted or edited?)")),
        "{:?}",
        v.problems
    );
    std::fs::write(&path, issued).unwrap();

    // a consistent forgery (content and its hash both rewritten) is still
    // caught against the hash recorded in the store
    let path = dir.join("awin.p1.json");
    let (mut s, _, _) = render::read_json_file(&std::fs::read(&path).unwrap()).unwrap();
    s.lines[0].commission = d("25.00");
    let canonical = render::canonical_json(&s).unwrap();
    let forged = render::json_file(&canonical, &render::sha256_hex(&canonical));
    std::fs::write(&path, forged).unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(
        v.problems.iter().any(|p| p.contains("recorded")),
        "{:?}",
        v.problems
    );
}

/// QA: a claim left out for a missing payout FX rate was only a warning on
/// stderr; the finalised period said nothing of it.
#[test]
fn a_claim_held_back_for_a_missing_rate_is_listed_in_held_back_csv_which_verify_covers() {
    let c = config(&CPS_EUR.replace("payout_currency = \"EUR\"", "payout_currency = \"USD\""));
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = fx(&[("EUR", "USD", "2026-10-05", "1.10")]);
    let ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "200.00"),
        sale("B", "p1", "2026-10-06T10:00:00Z", "100.00"),
    ];
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    let r = reckon::payout::finalize(&inp, "2026-10").unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("awin/B")),
        "{:?}",
        r.warnings
    );
    let dir = tmp.path().join("statements/shop/2026-10");
    let held = std::fs::read_to_string(dir.join("held_back.csv")).unwrap();
    assert_eq!(
        held,
        "payee,claim,reason,kind\nawin:p1,awin/B,no EUR→USD rate for 2026-10-06; add it to [fx],held_back\n"
    );
    let ok = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(ok.problems.is_empty(), "{:?}", ok.problems);
    for tamper in [
        |d: &Path| edit(&d.join("held_back.csv"), "awin/B", "awin/C"),
        |d: &Path| std::fs::remove_file(d.join("held_back.csv")).unwrap(),
    ] {
        tamper(&dir);
        let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
        assert!(
            v.problems.iter().any(|p| p.starts_with("held_back.csv: ")),
            "{:?}",
            v.problems
        );
        let r = reckon::payout::generate(&inp, "2026-10").unwrap();
        assert_eq!(r.restored, ["held_back.csv"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("held_back.csv")).unwrap(),
            held
        );
    }
    // A period without held-back claims has no such file.
    let ds = vec![sale("C", "p1", "2026-11-05T10:00:00Z", "10.00")];
    let fxr = fx(&[("EUR", "USD", "2026-11-05", "1.10")]);
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    let r = reckon::payout::generate(&inp, "2026-11").unwrap();
    assert!(!r.dir.join("held_back.csv").exists());
}

/// Finance QA29 F1 (HIGH): a percent bonus left out of a finalised
/// statement for want of an FX rate on its last day was listed in
/// `held_back.csv`, yet never paid once the rate existed: bonuses not
/// credited were judged again only when the statement's volume changed.
#[test]
fn a_percent_bonus_held_back_for_a_missing_rate_is_paid_once_the_rate_exists() {
    let c = config(&format!(
        "{}\n[[bonuses]]\nid = \"pct\"\neffective_from = \"2026-01-01\"\nthreshold_volume = \"100\"\npercent = \"1\"\n",
        CPS_EUR.replace("payout_currency = \"EUR\"", "payout_currency = \"USD\"")
    ));
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let ds = vec![sale("A", "p1", "2026-10-05T10:00:00Z", "500.00")];
    // The sale's day has a rate; the period's last day has none.
    let before = fx(&[("EUR", "USD", "2026-10-05", "0.80")]);
    let oct =
        reckon::payout::finalize(&inputs(&c, &ds, &before, &book, tmp.path()), "2026-10").unwrap();
    assert!(
        oct.warnings.iter().any(|w| w
            == "partner `awin:p1`: bonus pct left out: no EUR→USD rate for 2026-10-31; add it to [fx], and the next period generated pays the bonus"),
        "{:?}",
        oct.warnings
    );
    let held = std::fs::read_to_string(oct.dir.join("held_back.csv")).unwrap();
    assert!(held.contains("awin:p1,bonus pct,"), "{held}");

    // Still no rate: November waits, and pays nothing twice later.
    let nov =
        reckon::payout::generate(&inputs(&c, &ds, &before, &book, tmp.path()), "2026-11").unwrap();
    assert!(read_statements(&nov.dir)
        .iter()
        .all(|s| s.bonus_adjustments.is_empty()));

    // The rate added: November pays 1 % of 500.00 EUR at 0.80 = 4.00 USD.
    let after = fx(&[
        ("EUR", "USD", "2026-10-05", "0.80"),
        ("EUR", "USD", "2026-10-31", "0.80"),
    ]);
    let nov =
        reckon::payout::finalize(&inputs(&c, &ds, &after, &book, tmp.path()), "2026-11").unwrap();
    let s = read_statements(&nov.dir);
    let adjustments: Vec<_> = s.iter().flat_map(|s| &s.bonus_adjustments).collect();
    assert_eq!(adjustments.len(), 1, "{adjustments:?}");
    let a = adjustments[0];
    assert_eq!((a.bonus_id.as_str(), a.amount), ("pct", d("4.00")));
    assert_eq!(a.original_statement_id, "shop/2026-10/awin:p1");
    assert!(
        a.reason
            .contains("held back when the statement was finalised"),
        "{}",
        a.reason
    );
    // Paid once: December adjusts nothing more.
    let dec =
        reckon::payout::generate(&inputs(&c, &ds, &after, &book, tmp.path()), "2026-12").unwrap();
    assert!(read_statements(&dec.dir)
        .iter()
        .all(|s| s.bonus_adjustments.is_empty()));
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn regenerating_a_draft_replaces_it_and_claims_are_paid_once() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let mut ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "200.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "100.00"),
    ];
    // B is not payable yet in October: rolls into November.
    ds[1].payable = false;
    let r1 =
        reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    assert_eq!((r1.version, r1.partners), (1, 1));
    std::fs::write(r1.dir.join("review-notes.txt"), "check p1").unwrap();
    ds[0] = refunded(ds[0].clone());
    let r2 =
        reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    assert_eq!((r2.version, r2.partners), (2, 0));
    // The first draft's statement files go; the notes someone put beside
    // them are moved aside, not deleted.
    assert_eq!(
        read_dir(&r2.dir).keys().collect::<Vec<_>>(),
        ["summary.csv"]
    );
    assert!(
        r2.warnings.iter().any(|w| w.contains("review-notes.txt")),
        "{:?}",
        r2.warnings
    );
    let aside = tmp
        .path()
        .join("statements/shop/set-aside/2026-10/review-notes.txt");
    assert_eq!(std::fs::read_to_string(aside).unwrap(), "check p1");
    ds[0] = sale("A", "p1", "2026-10-05T10:00:00Z", "200.00");
    reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    ds[1].payable = true;
    let nov =
        reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-11").unwrap();
    // only B, an October claim that became payable later; A is not paid again
    let st = read_statements(&nov.dir);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].lines[0].claim_id, "B");
    assert_eq!(st[0].lines[0].date, day("2026-10-06"));
    // a period before a finalised one cannot be generated any more
    let err =
        reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-09").unwrap_err();
    assert_eq!(
        err.to_string(),
        "program `shop`: period 2026-09 starts before finalised period 2026-11 (periods are generated in order); generate 2026-12 (from 2026-12-01) or a later period: a claim is paid by the first period generated once it is payable, so 2026-12 pays those of 2026-09 not paid yet"
    );
}

/// A rule replaced by one that starts later (or removed, or narrowed to
/// other events): the lines it paid have no rule in force any more. README:
/// "a claim that cannot be priced today is left as paid, with a warning,
/// until it can". Repricing gave them 0 and took every payment back, with
/// the data unchanged, also when the refund of another line repriced the
/// statement (found by the settle fixer, QA13).
#[test]
fn a_line_no_rule_prices_any_more_is_left_as_paid() {
    let before = config(CPS_EUR);
    let after = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "cps-2026-10"
effective_from = "2026-10-01"
kind = "percent"
percent = "12"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let mut ds = vec![
        sale("A", "p1", "2026-09-05T10:00:00Z", "200.00"),
        sale("B", "p1", "2026-09-06T10:00:00Z", "100.00"),
    ];
    let sept = reckon::payout::finalize(&inputs(&before, &ds, &fxr, &book, tmp.path()), "2026-09")
        .unwrap();
    assert_eq!(sept.total_payable, d("30.00"));
    // October under the new rules, with September's data unchanged: nothing.
    ds.push(sale("C", "p1", "2026-10-06T10:00:00Z", "100.00"));
    let oct =
        reckon::payout::generate(&inputs(&after, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let s = &read_statements(&oct.dir)[0];
    assert!(s.adjustments.is_empty(), "{:?}", s.adjustments);
    assert_eq!(s.totals.total_payable, d("12.00"));
    // B refunded: its payment is taken back; A stays as paid.
    ds[1] = refunded(ds[1].clone());
    let oct =
        reckon::payout::generate(&inputs(&after, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let s = &read_statements(&oct.dir)[0];
    assert_eq!(
        s.adjustments
            .iter()
            .map(|a| (a.claim_id.as_str(), a.amount))
            .collect::<Vec<_>>(),
        [("B", d("-10.00"))]
    );
    // A's own data did not change: nothing waits, nothing is said (QA14 M1).
    assert!(oct.skipped.is_empty(), "{:?}", oct.skipped);
    // A partly refunded: it cannot be repriced, so it stays as paid and
    // the run says its adjustment waits.
    ds[0] = partly_refunded(ds[0].clone(), "150.00");
    let oct =
        reckon::payout::generate(&inputs(&after, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let s = &read_statements(&oct.dir)[0];
    assert_eq!(s.adjustments.len(), 1, "{:?}", s.adjustments);
    assert!(
        oct.skipped.iter().any(|k| k.claim == "awin/A"
            && k.waits
            && k.reason
                .contains("no commission rule in force on 2026-09-05")),
        "{:?}",
        oct.skipped
    );
    // Not "left out", nor held back as if it were to be paid later (QA14
    // M1): it stays paid. held_back.csv records that its adjustment waits,
    // as a row of its own kind (QA33d M5: it was in no file of the period).
    assert!(
        oct.warnings.iter().any(|w| w
            .contains("awin/A not adjusted: no commission rule in force on 2026-09-05")
            && w.contains("left as paid")),
        "{:?}",
        oct.warnings
    );
    let held = std::fs::read_to_string(oct.dir.join("held_back.csv")).unwrap();
    assert!(
        held.starts_with(
            "payee,claim,reason,kind\nawin:p1,awin/A,\"no commission rule in force on 2026-09-05"
        ) && held.ends_with(",adjustment_waits\n")
            && held.lines().count() == 2,
        "{held}"
    );
}

/// QA30-B M1: a paid claim whose conversion rate into the program currency
/// goes missing (its row removed from `[fx]`, or past `max_age_days`) is
/// `fx_missing` on the next run. That is the rate table's doing, not the
/// sale's: README, "a claim that cannot be priced today (... no FX rate)
/// is left as paid, with a warning, until it can". The whole commission
/// was reversed.
#[test]
fn a_paid_claim_whose_rate_goes_missing_is_left_as_paid_until_it_returns() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let mut ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "200.00"),
        sale("B", "p1", "2026-10-06T10:00:00Z", "100.00"),
    ];
    let oct =
        reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    assert_eq!(oct.total_payable, d("30.00"));
    let paid = ds[0].clone();
    ds[0].outcome = Outcome::FxMissing;
    ds[0].payable = false;
    ds[0].basis = None;
    ds[0].reason = "no USD→EUR rate for 2026-10-05 or the 7 days before; add it to [fx]".into();
    let nov =
        reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let s = read_statements(&nov.dir);
    assert!(
        s.iter().all(|s| s.adjustments.is_empty()),
        "{:?}",
        s.iter().map(|s| &s.adjustments).collect::<Vec<_>>()
    );
    assert!(
        nov.skipped.iter().any(|k| k.claim == "awin/A"
            && k.waits
            && k.reason
                .contains("the claim is now `fx_missing` (no USD→EUR rate")
            && k.reason
                .contains("left as paid, its adjustment waits until the rate exists")),
        "{:?}",
        nov.skipped
    );
    assert!(
        nov.warnings
            .iter()
            .any(|w| w.contains("awin/A not adjusted") && w.contains("left as paid")),
        "{:?}",
        nov.warnings
    );
    // B refunded meanwhile: its own reversal is not held up by A.
    ds[1] = refunded(ds[1].clone());
    let nov =
        reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let adjustments: Vec<_> = read_statements(&nov.dir)
        .into_iter()
        .flat_map(|s| s.adjustments)
        .map(|a| (a.claim_id, a.amount))
        .collect();
    assert_eq!(adjustments, [("B".to_owned(), d("-10.00"))]);
    // The rate back: A is as it was paid, nothing to adjust or wait for.
    ds[0] = paid;
    let nov =
        reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let adjustments: Vec<_> = read_statements(&nov.dir)
        .into_iter()
        .flat_map(|s| s.adjustments)
        .map(|a| a.claim_id)
        .collect();
    assert_eq!(adjustments, ["B"]);
    assert!(nov.skipped.is_empty(), "{:?}", nov.skipped);
}

/// Finance QA13 F3: a draft that can never be finalised (an earlier period
/// skipped, or one of the period kind the config used before) warned on
/// every run, forever, and its files contradicted the finalised ones.
/// Finalising a period after it retires it: its files move to set-aside and
/// its record goes.
#[test]
fn finalising_a_period_retires_the_drafts_it_makes_final_never() {
    let monthly = config(CPS_EUR);
    let semi = config(&format!("period = \"semi_monthly\"\n{CPS_EUR}"));
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-09-05T10:00:00Z", "200.00"),
        sale("B", "p1", "2026-10-06T10:00:00Z", "300.00"),
        sale("C", "p1", "2026-11-03T10:00:00Z", "400.00"),
    ];
    let statements = tmp.path().join("statements/shop");
    let run = |c: &CommissionConfig, period: &str, finalise: bool| {
        let inp = inputs(c, &ds, &fxr, &book, tmp.path());
        if finalise {
            reckon::payout::finalize(&inp, period).unwrap()
        } else {
            reckon::payout::generate(&inp, period).unwrap()
        }
    };
    // September and November drafts, monthly; October finalised skips
    // September, whose draft is retired.
    run(&monthly, "2026-09", false);
    run(&monthly, "2026-11", false);
    let oct = run(&monthly, "2026-10", false);
    assert!(
        oct.warnings.iter().any(
            |w| w.contains("period 2026-09 has drafts that are not finalised")
                && w.contains("finalising 2026-10 retires those drafts")
        ),
        "{:?}",
        oct.warnings
    );
    let oct = run(&monthly, "2026-10", true);
    assert!(
        oct.warnings
            .iter()
            .any(|w| w.starts_with("retired the draft of period 2026-09")),
        "{:?}",
        oct.warnings
    );
    assert!(!statements.join("2026-09").exists());
    assert!(statements.join("set-aside/2026-09/summary.csv").exists());
    let aside = read_dir(&statements.join("set-aside/2026-09"));
    assert!(
        aside.keys().any(|n| n.ends_with(".json")),
        "{:?}",
        aside.keys()
    );
    // September's claim A was paid by October, once.
    let st = read_statements(&oct.dir);
    let paid: Vec<&str> = st[0].lines.iter().map(|l| l.claim_id.as_str()).collect();
    assert_eq!(paid, ["A", "B"]);

    // Now semi-monthly: the monthly November draft cannot be finalised;
    // generating 2026-11-H1, which starts the same day, says so (finance
    // QA16 L5), and finalising it retires the draft.
    let h1 = run(&semi, "2026-11-H1", false);
    assert!(
        h1.warnings.iter().any(
            |w| w.contains("period 2026-11 has drafts that are not finalised")
                && w.contains("included in 2026-11-H1 too")
        ),
        "{:?}",
        h1.warnings
    );
    let h1 = run(&semi, "2026-11-H1", true);
    assert!(
        h1.warnings
            .iter()
            .any(|w| w.starts_with("retired the draft of period 2026-11 ")),
        "{:?}",
        h1.warnings
    );
    assert!(!statements.join("2026-11").exists());
    let records = reckon::payout::lifecycle::period_records(&book, "shop").unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| r.period.as_str())
            .collect::<Vec<_>>(),
        ["2026-10", "2026-11-H1"]
    );
    // `verify` of the retired period names the period that paid it, not a
    // `generate` that would be refused (QA14 L1).
    let e = reckon::payout::lifecycle::verify(&book, tmp.path(), "shop", "2026-11")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("period 2026-11 has no statements and will not have any: 2026-11-H1"),
        "{e}"
    );
    // ... and where its retired draft is (QA15 P2).
    assert!(
        e.ends_with(&format!(
            "; a draft of 2026-11 that was never finalised is kept in {}",
            statements.join("set-aside/2026-11").display()
        )),
        "{e}"
    );
    // No warning about it any more.
    let h2 = run(&semi, "2026-11-H2", false);
    assert!(
        !h2.warnings.iter().any(|w| w.contains("not finalised")),
        "{:?}",
        h2.warnings
    );
    // Semi-monthly finalised to 2026-11-H2, then monthly again: September is
    // refused, and the advice is a monthly period (finance QA16 M1: it
    // named the finalised period of the other kind).
    run(&semi, "2026-11-H2", true);
    // A monthly period issued before the switch is still restored byte for
    // byte under the semi-monthly config, as `verify` says to (QA32-D F2:
    // `generate` refused the monthly name); a monthly name never finalised
    // is still the semi-monthly parse error.
    let issued = read_dir(&statements.join("2026-10"));
    std::fs::remove_dir_all(statements.join("2026-10")).unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 20).unwrap();
    reckon::payout::lifecycle::check_generatable(&book, "shop", &semi, "2026-10", today).unwrap();
    let restored = run(&semi, "2026-10", false);
    assert_eq!(restored.status, Status::Finalised);
    assert_eq!(read_dir(&statements.join("2026-10")), issued);
    let e = reckon::payout::generate(&inputs(&semi, &ds, &fxr, &book, tmp.path()), "2026-12")
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not a semi-monthly period"), "{e}");
    let e = reckon::payout::generate(&inputs(&monthly, &ds, &fxr, &book, tmp.path()), "2026-09")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("period 2026-09 starts before finalised period 2026-11-H2 (periods are generated in order); generate 2026-12 (from 2026-12-01) or a later period"),
        "{e}"
    );
}

/// Regression (QA10 M4): a symlinked period directory was followed: the
/// files of the link's target were moved into `set-aside/` and the link
/// replaced. Now a symlink where the statements, program, period or
/// set-aside directories are is refused before anything moves, naming the
/// path; `output_dir` itself may be a symlink.
#[test]
fn a_symlinked_directory_under_output_dir_is_refused_and_nothing_is_moved() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "precious").unwrap();
    let real_out = tmp.path().join("real-out");
    std::fs::create_dir(&real_out).unwrap();
    let out = tmp.path().join("out");
    std::os::unix::fs::symlink(&real_out, &out).unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![sale("A", "p1", "2026-10-05T10:00:00Z", "200.00")];
    let program = out.join("statements/shop");
    std::fs::create_dir_all(&program).unwrap();
    let links = [
        program.join("2026-10"),
        program.join(".2026-10.staging"),
        program.join("set-aside"),
    ];
    for link in &links {
        std::os::unix::fs::symlink(&victim, link).unwrap();
        let err = reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, &out), "2026-10")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&link.display().to_string()), "{err}");
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(err.contains("nothing was moved or written"), "{err}");
        assert_eq!(
            std::fs::read_to_string(victim.join("keep.txt")).unwrap(),
            "precious"
        );
        assert!(std::fs::symlink_metadata(link).unwrap().is_symlink());
        std::fs::remove_file(link).unwrap();
    }
    // the program directory itself
    std::fs::remove_dir(&program).unwrap();
    std::os::unix::fs::symlink(&victim, &program).unwrap();
    let err = reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, &out), "2026-10")
        .unwrap_err()
        .to_string();
    assert!(err.contains(&program.display().to_string()), "{err}");
    std::fs::remove_file(&program).unwrap();
    // With the links removed, the run writes through the linked output_dir.
    let r = reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, &out), "2026-10").unwrap();
    assert_eq!(r.partners, 1);
    assert!(real_out
        .join("statements/shop/2026-10/summary.csv")
        .exists());
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        1,
        "only keep.txt"
    );
}

#[test]
fn invalid_config_and_period_are_reported_clearly() {
    let bad: CommissionConfig = toml::from_str(
        r#"
payout_currency = "EUR"
[[rules]]
id = "x"
effective_from = "2026-01-01"
kind = "percent"
"#,
    )
    .unwrap();
    let e = bad.validate("shop").unwrap_err().to_string();
    assert!(
        e.contains("rules[0] (id `x`)") && e.contains("needs `percent`"),
        "{e}"
    );
    let unknown =
        toml::from_str::<CommissionConfig>("payout_currency = \"EUR\"\nperiod = \"daily\"\n");
    assert!(unknown.is_err());
    // QA29-D L6: partner entries that can match no partner.
    let refused = |extra: &str, want: &str| {
        let c: CommissionConfig = toml::from_str(&format!(
            "payout_currency = \"EUR\"\n{extra}\n[[rules]]\nid = \"x\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"5\"\n"
        ))
        .unwrap();
        let e = c.validate("shop").unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    };
    refused(
        "[partner_groups]\ng = [\"awin:\"]",
        "partner_groups.g: partner entry \"awin:\" names no partner",
    );
    refused(
        "[partner_groups]\ng = [\":1202\"]",
        "partner_groups.g: partner entry \":1202\" names no partner",
    );
    refused(
        "[[bonuses]]\nid = \"b\"\neffective_from = \"2026-01-01\"\nthreshold_volume = \"1\"\namount = \"1\"\npartners = [\" \"]",
        "bonuses[0] (id `b`): partners entry \" \" names no partner",
    );
    refused(
        "[[overrides]]\nid = \"o\"\npartner = \"\"\nrule = \"x\"\npercent = \"6\"",
        "overrides[0] (id `o`): partner entry \"\" names no partner",
    );
    // QA36b L2: the rule's kind as the config writes it, not "Percent".
    refused(
        "[[overrides]]\nid = \"o\"\npartner = \"awin:1\"\nrule = \"x\"\namount = \"6\"",
        "rule `x` is kind = \"percent\"; override only its own figures",
    );
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let e = reckon::payout::generate(&inputs(&c, &[], &fxr, &book, tmp.path()), "2026-13")
        .unwrap_err()
        .to_string();
    assert!(e.contains("there is no month 13"), "{e}");
}

#[test]
fn statement_outputs_snapshot() {
    let c = config(SNAPSHOT_RULES);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let (oct, nov, fxr) = snapshot_months();
    reckon::payout::finalize(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let r =
        reckon::payout::finalize(&inputs(&c, &nov, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let files = read_dir(&r.dir);
    let json: serde_json::Value =
        serde_json::from_slice(&files[&format!("{}.json", render::payee_stem("awin:p<1>"))])
            .unwrap();
    insta::assert_json_snapshot!("payout_statement_json", json);
    insta::assert_snapshot!(
        "payout_statement_csv",
        String::from_utf8(files[&format!("{}.csv", render::payee_stem("awin:p<1>"))].clone())
            .unwrap()
    );
    insta::assert_snapshot!(
        "payout_statement_html",
        String::from_utf8(files[&format!("{}.html", render::payee_stem("awin:p<1>"))].clone())
            .unwrap()
    );
    insta::assert_snapshot!(
        "payout_summary_csv",
        String::from_utf8(files["summary.csv"].clone()).unwrap()
    );
}

#[test]
fn scheduled_drafts_cover_the_open_periods() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-11-05T10:00:00Z", "200.00"),
        sale("B", "p1", "2026-12-02T10:00:00Z", "100.00"),
    ];
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    let periods = |rs: Vec<reckon::payout::Report>| -> Vec<String> {
        rs.into_iter()
            .map(|r| format!("{} v{}", r.period, r.version))
            .collect()
    };
    let today = day("2026-12-03");
    let rs = reckon::payout::generate_open_drafts(&inp, today).unwrap();
    assert_eq!(periods(rs), ["2026-11 v1", "2026-12 v1"]);
    // Finalising November regenerates December's draft (v2, QA31-A M1),
    // and the next scheduled run regenerates it again.
    reckon::payout::finalize(&inp, "2026-11").unwrap();
    let rs = reckon::payout::generate_open_drafts(&inp, today).unwrap();
    assert_eq!(periods(rs), ["2026-12 v3"]);
    // December's draft holds only B: A was paid on November's statement
    let dec = read_statements(&tmp.path().join("statements/shop/2026-12"));
    assert_eq!(
        dec[0]
            .lines
            .iter()
            .map(|l| l.claim_id.as_str())
            .collect::<Vec<_>>(),
        ["B"]
    );
}

#[test]
fn finalising_warns_when_the_figures_differ_from_the_reviewed_draft() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "200.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "100.00"),
    ];
    // Unchanged since the draft: no warning.
    reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-09").unwrap();
    let r = reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-09").unwrap();
    assert!(
        r.warnings.iter().all(|w| !w.contains("differ from draft")),
        "{:?}",
        r.warnings
    );
    // A refund after the draft of October: finalising says what moved.
    reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let later = vec![ds[0].clone(), refunded(ds[1].clone())];
    let r =
        reckon::payout::finalize(&inputs(&c, &later, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let w = r
        .warnings
        .iter()
        .find(|w| w.contains("differ from draft version 1"));
    assert!(
        w.is_some_and(|w| w.contains("awin:p2 payable 10.00 → -, carried 0.00 → -")),
        "{:?}",
        r.warnings
    );
}

type MakeInputs = for<'a> fn(
    &'a CommissionConfig,
    &'a [Decision],
    &'a dyn reckon::payout::FxRates,
    &'a MemoryBook,
    &'a Path,
) -> reckon::payout::Inputs<'a>;

/// Three month ends of one program, with the data changing between them:
/// the reports and every file written.
fn month_ends(make: MakeInputs, out: &Path) -> Vec<(String, String, BTreeMap<String, Vec<u8>>)> {
    let c = config(SEEDED);
    let book = MemoryBook::new();
    let fxr = no_fx();
    let mut ds = seeded(11);
    let mut seen = Vec::new();
    let mut step = |ds: &[Decision], period: &str, finalise: bool| {
        let inp = make(&c, ds, &fxr, &book, out);
        let r = if finalise {
            reckon::payout::finalize(&inp, period)
        } else {
            reckon::payout::generate(&inp, period)
        }
        .unwrap();
        let report = format!(
            "{:?} v{} partners {} lines {} adjustments {} payable {} carried {} warnings {:?}",
            r.status,
            r.version,
            r.partners,
            r.lines,
            r.adjustments,
            r.total_payable,
            r.carried_out,
            r.warnings
        );
        seen.push((period.to_string(), report, read_dir(&r.dir)));
    };
    step(&ds, "2026-10", true);
    // After October is paid: refunds, reversals, late approvals, a partner
    // moved, a paid claim's basis changed.
    for (i, x) in ds.iter_mut().enumerate() {
        match i % 9 {
            0 => *x = refunded(x.clone()),
            1 => x.payable = true,
            2 => x.partner_id = format!("{}-moved", x.partner_id),
            3 => {
                if let Some(b) = &mut x.basis {
                    b.amount += d("4.56");
                }
            }
            _ => {}
        }
    }
    step(&ds, "2026-11", false);
    step(&ds, "2026-11", true);
    ds.iter_mut().step_by(5).for_each(|x| x.payable = false);
    step(&ds, "2026-12", false);
    seen
}

#[test]
fn stored_decisions_and_a_decoded_slice_give_the_same_statements() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stored = month_ends(inputs, a.path());
    let slice = month_ends(inputs_slice, b.path());
    assert_eq!(stored.len(), slice.len());
    for (x, y) in stored.iter().zip(&slice) {
        assert_eq!((&x.0, &x.1), (&y.0, &y.1));
        assert_eq!(x.2, y.2, "files of {} differ", x.0);
    }
    // The sequence exercised what it is meant to.
    let all = stored
        .iter()
        .map(|s| s.1.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        stored[1].1.contains("adjustments") && !stored[1].1.contains("adjustments 0 "),
        "{all}"
    );
    assert!(stored.iter().all(|s| s.2.len() > 1), "{all}");
    // Claims moved to another partner after October paid them are taken
    // back from the partner paid (an adjustment) and paid to the new one
    // (a line dated in October on a `-moved` partner's statement).
    let november: Vec<Statement> = stored[2]
        .2
        .iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(_, b)| render::read_json_file(b).unwrap().0)
        .collect();
    let taken_back: Vec<&str> = november
        .iter()
        .flat_map(|s| &s.adjustments)
        .filter(|a| a.reason.starts_with("claim moved to partner `awin:p"))
        .map(|a| a.claim_id.as_str())
        .collect();
    let paid_anew: Vec<&str> = november
        .iter()
        .filter(|s| s.partner_id.ends_with("-moved"))
        .flat_map(|s| &s.lines)
        .filter(|l| l.date < day("2026-11-01"))
        .map(|l| l.claim_id.as_str())
        .collect();
    assert!(!taken_back.is_empty(), "{all}");
    assert!(
        taken_back.iter().all(|c| paid_anew.contains(c)),
        "{taken_back:?} taken back, {paid_anew:?} paid anew"
    );
}

#[test]
fn partitions_that_give_a_moved_claim_only_to_its_new_partner_are_refused() {
    // October pays A to p1; the network then moves A to p9. Partitions by
    // the decision's partner give A to p9 only: p9 would be paid and p1
    // never give it back, so the run is refused and nothing is recorded.
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let a = sale("A", "p1", "2026-10-05T10:00:00Z", "200.00");
    reckon::payout::finalize(
        &inputs(&c, std::slice::from_ref(&a), &fxr, &book, tmp.path()),
        "2026-10",
    )
    .unwrap();
    let mut moved = a;
    moved.partner_id = "p9".into();
    let inp = inputs(&c, &[], &fxr, &book, tmp.path());
    let mut parts = std::iter::once(Ok(("awin:p9".to_string(), vec![moved.clone()])));
    let err = reckon::payout::generate_partitioned(&inp, "2026-11", Some("EUR".into()), &mut parts)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("claim awin/A was paid to another partner and is now `awin:p9`'s"),
        "{err}"
    );
    assert!(!tmp.path().join("statements/shop/2026-11").exists());
    // Given under both partners, it is taken back from p1 and paid to p9.
    let mut parts = vec![
        Ok(("awin:p1".to_string(), vec![moved.clone()])),
        Ok(("awin:p9".to_string(), vec![moved])),
    ]
    .into_iter();
    let r = reckon::payout::generate_partitioned(&inp, "2026-11", Some("EUR".into()), &mut parts)
        .unwrap();
    assert_eq!((r.partners, r.lines, r.adjustments), (2, 1, 1));
}

#[test]
fn format_6_traces_each_line_and_guards_csv_text_and_formats_2_to_5_render_as_issued() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let mut a = sale("-A1", "p1", "2026-10-05T10:00:00Z", "200.00");
    a.partner_name = Some("=HYPERLINK(\"http://x.test\",\"Click\")".into());
    a.claim.revision = 3;
    let ds = vec![a];
    let r = reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let files = read_dir(&r.dir);
    let st = read_statements(&r.dir);
    assert_eq!(st[0].format_version, reckon::payout::model::FORMAT_VERSION);
    let trace = st[0].lines[0].trace.as_ref().unwrap();
    assert_eq!(trace.claim_revision, 3);
    assert_eq!(
        trace.order_source.as_deref(),
        Some(ds[0].order.as_ref().unwrap().source.as_str())
    );
    assert_eq!(trace.decided_at, ds[0].decided_at);
    // Text cells that a spreadsheet would run as formulas get a leading
    // quote; amounts do not.
    let summary = String::from_utf8(files["summary.csv"].clone()).unwrap();
    assert!(summary.contains("\"'=HYPERLINK("), "{summary}");
    let csv = String::from_utf8(files["awin.p1.csv"].clone()).unwrap();
    assert!(csv.contains(",'-A1,"), "{csv}");
    assert!(csv.lines().next().unwrap().ends_with(
        ",claim_revision,order_source,order_revision,decided_at,claim_fx_rate,order_fx_rate,outcome,original_basis,original_commission,previously_credited,claimed_amount,claimed_currency,order_amount,refunded_amount,order_currency,tolerance_applied,network_commission,network_commission_currency,volume_now,tolerance_currency,fx_rate_date,claim_fx_rate_date,order_fx_rate_date,not_paid_status,lock_at,statement_id,payee,status,version"
    ));
    assert!(csv.contains(",3,shop,"), "{csv}");
    // The HTML shows the trace up to format 5 (format 6 leaves it to the
    // JSON and CSV: the HTML is the partner's).
    let html = String::from_utf8(files["awin.p1.html"].clone()).unwrap();
    assert!(!html.contains("<br><small>rev "), "{html}");
    let mut v5 = st[0].clone();
    v5.format_version = 5;
    let html5 = render::html_file(&v5, "h");
    assert!(
        html5.contains("<br><small>rev 3, order at shop rev 1; decided "),
        "{html5}"
    );
    // The same statement as format 4 (before the adjustment columns).
    let mut v4 = st[0].clone();
    v4.format_version = 4;
    let csv4 = String::from_utf8(render::csv_file(&v4).unwrap()).unwrap();
    assert!(
        csv4.lines().next().unwrap().ends_with(",order_fx_rate"),
        "{csv4}"
    );
    assert!(
        csv4.lines()
            .nth(1)
            .unwrap()
            .ends_with(",3,shop,1,2026-12-01T00:00:00Z,,"),
        "{csv4}"
    );
    // The same statement as format 3 (before the rates): no rate columns.
    let mut v3 = st[0].clone();
    v3.format_version = 3;
    let csv3 = String::from_utf8(render::csv_file(&v3).unwrap()).unwrap();
    assert!(
        csv3.lines().next().unwrap().ends_with(",decided_at"),
        "{csv3}"
    );
    // The same statement as format 2 (issued before traces): its files are
    // rendered as they were, with no trace and no guard.
    let mut old = st[0].clone();
    old.format_version = 2;
    old.lines.iter_mut().for_each(|l| l.trace = None);
    let csv2 = String::from_utf8(render::csv_file(&old).unwrap()).unwrap();
    assert!(
        csv2.lines().next().unwrap().ends_with(",refers_to,note"),
        "{csv2}"
    );
    assert!(csv2.contains(",-A1,"), "{csv2}");
    let json2 = String::from_utf8(render::canonical_json(&old).unwrap()).unwrap();
    assert!(!json2.contains("trace"), "{json2}");
    let row = render::SummaryRow::of(&old, "h");
    let summary2 = String::from_utf8(render::summary_csv(&[row]).unwrap()).unwrap();
    assert!(summary2.contains("\"=HYPERLINK("), "{summary2}");
}

/// A copy of every entry of `book` (a store backup taken now).
fn backup(book: &MemoryBook) -> MemoryBook {
    use reckon::payout::book::StatementBook;
    let copy = MemoryBook::new();
    copy.apply(
        book.scan_prefix("")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, Some(v.into())))
            .collect(),
    )
    .unwrap();
    copy
}

/// Every run that writes statements, over `inp`: each must be refused
/// with an error naming the finalised periods the store does not know.
fn assert_every_run_refused(inp: &reckon::payout::Inputs<'_>, periods: &[&str], context: &str) {
    let runs: Vec<(&str, Result<(), reckon::payout::PayoutError>)> = vec![
        (
            "generate 2026-09",
            reckon::payout::generate(inp, "2026-09").map(drop),
        ),
        (
            "generate 2026-10",
            reckon::payout::generate(inp, "2026-10").map(drop),
        ),
        (
            "generate 2026-11",
            reckon::payout::generate(inp, "2026-11").map(drop),
        ),
        (
            "finalize 2026-10",
            reckon::payout::finalize(inp, "2026-10").map(drop),
        ),
        (
            "finalize 2026-11",
            reckon::payout::finalize(inp, "2026-11").map(drop),
        ),
        (
            "scheduled drafts",
            reckon::payout::generate_open_drafts(inp, day("2026-12-03")).map(drop),
        ),
    ];
    for (run, result) in runs {
        let e = match result {
            Err(e @ reckon::payout::PayoutError::UnknownFinalised { .. }) => e.to_string(),
            other => panic!("{context}: {run} was not refused: {other:?}"),
        };
        for p in periods {
            assert!(
                e.contains(&format!("{p} ("))
                    && e.contains(&format!("/{p}/"))
                    && e.contains(" says finalised"),
                "{context}: {run}: {p} not named: {e}"
            );
        }
        for words in [
            "older backup",
            "a new or empty store",
            "daemon.data_dir",
            "pay their claims again",
            "Restore the store that finalised them",
        ] {
            assert!(e.contains(words), "{context}: {run}: no `{words}`: {e}");
        }
    }
}

/// QA finding of 2026-11-29 (a): with the store gone (`rm -rf data/store`,
/// a mistyped data_dir) and the output directory still holding finalised
/// September and October, `generate --period 2026-09` replaced the
/// finalised files with drafts, and November paid every claim of
/// September and October again (9032.77 instead of 1924.09).
#[test]
fn a_new_store_refuses_to_overwrite_or_pay_again_finalised_statements_it_did_not_issue() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-09-05T10:00:00Z", "200.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "400.00"),
        sale("C", "p1", "2026-11-03T10:00:00Z", "50.00"),
    ];
    let book = MemoryBook::new();
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::finalize(&inp, "2026-09").unwrap();
    reckon::payout::finalize(&inp, "2026-10").unwrap();
    let statements = tmp.path().join("statements/shop");
    let sep = read_dir(&statements.join("2026-09"));
    let oct = read_dir(&statements.join("2026-10"));

    let fresh = MemoryBook::new();
    let over_fresh = inputs(&c, &ds, &fxr, &fresh, tmp.path());
    assert_every_run_refused(&over_fresh, &["2026-09", "2026-10"], "new store");
    assert_eq!(read_dir(&statements.join("2026-09")), sep);
    assert_eq!(read_dir(&statements.join("2026-10")), oct);
    assert!(!statements.join("2026-11").exists());
    assert!(reckon::payout::lifecycle::period_records(&fresh, "shop")
        .unwrap()
        .is_empty());

    // A store that finalised September itself, with other data, is not
    // the one that issued these files either.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = MemoryBook::new();
    let other_ds = vec![sale("A", "p1", "2026-09-05T10:00:00Z", "300.00")];
    reckon::payout::finalize(
        &inputs(&c, &other_ds, &fxr, &other, elsewhere.path()),
        "2026-09",
    )
    .unwrap();
    let e = reckon::payout::generate(&inputs(&c, &other_ds, &fxr, &other, tmp.path()), "2026-09")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the store has it as finalised version 1 with other statements"),
        "{e}"
    );
    assert_eq!(read_dir(&statements.join("2026-09")), sep);

    // The store that issued them goes on as before: November pays C only.
    let r = reckon::payout::generate(&inp, "2026-11").unwrap();
    assert_eq!(r.total_payable, d("5.00"));
    // and a finalised file edited by hand is still restored by generate
    edit(&statements.join("2026-09/summary.csv"), "20.00", "2000.00");
    let r = reckon::payout::generate(&inp, "2026-09").unwrap();
    assert_eq!(r.restored, ["summary.csv"]);
}

/// QA finding of 2026-11-29 (b): a store backup taken after finalising
/// 2026-09 and before finalising 2026-10, restored: `generate --period
/// 2026-10` wrote "draft version 2" over the finalised, paid October files.
#[test]
fn a_store_restored_from_an_older_backup_refuses_to_overwrite_later_finalised_statements() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-09-05T10:00:00Z", "200.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "400.00"),
    ];
    let book = MemoryBook::new();
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::finalize(&inp, "2026-09").unwrap();
    reckon::payout::generate(&inp, "2026-10").unwrap();
    let old = backup(&book);
    reckon::payout::finalize(&inp, "2026-10").unwrap();
    let oct_dir = tmp.path().join("statements/shop/2026-10");
    let oct = read_dir(&oct_dir);

    let restored = inputs(&c, &ds, &fxr, &old, tmp.path());
    assert_every_run_refused(&restored, &["2026-10"], "older backup");
    let e = reckon::payout::generate(&restored, "2026-10")
        .unwrap_err()
        .to_string();
    assert!(e.contains("the store has it as draft version 1"), "{e}");
    assert!(!e.contains("2026-09 ("), "September is known: {e}");
    assert!(e.contains("a backup taken after finalising 2026-10"), "{e}");
    assert_eq!(read_dir(&oct_dir), oct);
    // QA (robustness F14): a summary.csv re-saved by a spreadsheet with `;`
    // separators, cut short to its header, or edited to say draft, is no
    // evidence that October was not finalised: the statements' JSON says
    // it was, and every run is still refused.
    let summary = oct_dir.join("summary.csv");
    let original = std::fs::read_to_string(&summary).unwrap();
    let header = original.lines().next().unwrap().to_string();
    for (what, text) in [
        ("semicolons", original.replace(',', ";")),
        ("header only", format!("{header}\n")),
        ("says draft", original.replace(",finalised,", ",draft,")),
    ] {
        std::fs::write(&summary, &text).unwrap();
        assert_every_run_refused(&restored, &["2026-10"], what);
    }
}

/// QA finding of 2026-11-29: a finalize interrupted after swapping its
/// files in (disk full, or kill -9 at the 7th fsync) left files saying
/// "finalised" while the store still said draft; `verify` printed 28 ×
/// "MISMATCH … (file changed)" and `show` "draft (version 1)". The store is
/// now written before the files are swapped in; a run stopped between the
/// two leaves the store finalised and the drafts in place, which `verify`
/// and `show` name as an interrupted finalize, and rerunning it writes the
/// same bytes as an uninterrupted one.
#[test]
fn a_finalize_interrupted_before_its_files_are_swapped_in_is_named_and_rerun_gives_the_same_bytes()
{
    let c = config(CPS_EUR);
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "200.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "400.00"),
    ];
    let reference = tempfile::tempdir().unwrap();
    let ref_book = MemoryBook::new();
    let inp = inputs(&c, &ds, &fxr, &ref_book, reference.path());
    reckon::payout::generate(&inp, "2026-10").unwrap();
    reckon::payout::finalize(&inp, "2026-10").unwrap();
    let want = read_dir(&reference.path().join("statements/shop/2026-10"));

    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::generate(&inp, "2026-10").unwrap();
    let dir = tmp.path().join("statements/shop/2026-10");
    let drafts = read_dir(&dir);
    let stop = |step: &str| {
        if step == "recorded" {
            panic!("stopped after {step}");
        }
    };
    let stopping = reckon::payout::Inputs { step: &stop, ..inp };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reckon::payout::finalize(&stopping, "2026-10")
    }));
    assert!(r.is_err());
    assert_eq!(read_dir(&dir), drafts, "files changed before the swap");

    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert_eq!(
        v.problems,
        ["a finalize of 2026-10 was interrupted: the store recorded finalised version 2 but the files are draft version 1 (the run stopped before swapping its files in); run `reckon statements finalize --program shop --period 2026-10` again, which writes the recorded statements byte for byte"]
    );
    let shown = reckon::payout::show(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert_eq!(shown.record.status, Status::Finalised);
    assert_eq!(shown.rows.len(), 2);
    assert!(shown
        .files_not_recorded
        .is_some_and(|w| w.starts_with("a finalize of 2026-10 was interrupted")));
    // other periods are not held up by it
    reckon::payout::generate(&inp, "2026-11").unwrap();

    let r = reckon::payout::finalize(&inp, "2026-10").unwrap();
    assert!(r.already_finalised);
    assert_eq!(read_dir(&dir), want);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}

/// QA finding of 2026-11-29: a run that failed while writing its files
/// (disk full) left its `.staging` directory, which kept the disk full
/// until the next run. A failed run removes it, and changes nothing.
#[test]
fn a_run_that_fails_while_staging_removes_its_staging_directory_and_records_nothing() {
    let c = config(CPS_EUR);
    let fxr = no_fx();
    let ds = vec![sale("A", "p1", "2026-10-05T10:00:00Z", "200.00")];
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::generate(&inp, "2026-10").unwrap();
    let program = tmp.path().join("statements/shop");
    let drafts = read_dir(&program.join("2026-10"));
    for at in ["written", "staged"] {
        let stop = |step: &str| {
            if step == at {
                panic!("failed at {step}");
            }
        };
        let failing = reckon::payout::Inputs { step: &stop, ..inp };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reckon::payout::finalize(&failing, "2026-10")
        }));
        assert!(r.is_err());
        let left: Vec<String> = std::fs::read_dir(&program)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["2026-10"], "failed at {at}");
        assert_eq!(read_dir(&program.join("2026-10")), drafts);
        let shown = reckon::payout::show(&book, tmp.path(), "shop", "2026-10").unwrap();
        assert_eq!(shown.record.status, Status::Draft);
    }
}

/// QA (robustness F16): renaming a program, or moving its claims connector
/// to another program, after a period was finalised paid every paid claim
/// again. Statements of a program are refused while another program id
/// has paid claims of its connectors.
#[test]
fn a_program_whose_connectors_were_paid_under_another_id_is_refused() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![sale("A", "p1", "2026-10-05T10:00:00Z", "200.00")];
    reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let check = |program: &str, claims: &[&str]| {
        reckon::payout::lifecycle::check_settled(&book, &program_of(program, claims, "EUR"), &c)
    };
    // The program that paid them, and a program of other networks: fine.
    check("shop", &["awin"]).unwrap();
    check("outlet", &["cj", "tradedoubler"]).unwrap();
    // `shop` renamed `shop-eu` (or `awin` moved to it): refused, naming both.
    let err = check("shop-eu", &["cj", "awin"]).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "program `shop-eu`: claims of connector `awin` were paid on finalised statements of program `shop`"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    // Program ids sorting before and after `shop` are walked past it.
    check("a", &["cj"]).unwrap();
    check("shop-", &["cj"]).unwrap();
    check("zz", &["awin"]).unwrap_err();
}

/// Finance QA F1, F2, F4: changing a program's payout currency or
/// commission timezone, or removing a connector its finalised statements
/// paid claims of, mixed currencies, re-dated paid claims, or paid an
/// order twice. [`check_settled`] refuses each, naming what to put back;
/// a network added, or a paid network kept, passes.
#[test]
fn config_changes_that_a_finalised_period_settled_are_refused() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![sale("A", "p1", "2026-10-05T10:00:00Z", "200.00")];
    let check = |claims: &[&str], c: &CommissionConfig| {
        reckon::payout::lifecycle::check_settled(&book, &program_of("shop", claims, "EUR"), c)
    };
    // Nothing finalised yet: anything goes.
    let usd = config(&CPS_EUR.replace("\"EUR\"", "\"USD\""));
    check(&["cj"], &usd).unwrap();
    reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    check(&["awin"], &c).unwrap();
    check(&["cj", "awin"], &c).unwrap();

    // F2: `awin` was paid on shop/2026-10/awin:p1.
    let e = check(&["cj"], &c).unwrap_err().to_string();
    assert!(
        e.starts_with("program `shop`: claims of connector `awin` were paid on finalised statements of `shop` (the first in its ledger: shop/2026-10/awin:p1), but `awin` is no longer in the program's `claims`"),
        "{e}"
    );
    assert!(
        e.contains("nothing was written. Put `awin` back in `claims`"),
        "{e}"
    );
    assert!(
        e.contains("`enabled = false` on its [[connectors]] entry"),
        "{e}"
    );

    // F1: EUR → USD.
    let e = check(&["awin"], &usd).unwrap_err().to_string();
    assert!(
        e.starts_with("program `shop`: the payout currency is USD in the config, but finalised period 2026-10 was issued in EUR."),
        "{e}"
    );
    assert!(
        e.contains(
            "nothing was written. Set `payout_currency = \"EUR\"` back in [programs.commission]"
        ),
        "{e}"
    );

    // F4: the statement was issued in UTC (no timezone given).
    let ny = config(&format!("timezone = \"America/New_York\"\n{CPS_EUR}"));
    let e = check(&["awin"], &ny).unwrap_err().to_string();
    assert!(
        e.starts_with("program `shop`: the timezone is America/New_York in the config, but finalised period 2026-10 was issued in UTC."),
        "{e}"
    );
    assert!(e.contains("Set `timezone = \"UTC\"` back"), "{e}");
    // QA30-B L1: the program currency, its bases', EUR → USD.
    let e =
        reckon::payout::lifecycle::check_settled(&book, &program_of("shop", &["awin"], "USD"), &c)
            .unwrap_err()
            .to_string();
    assert!(
        e.starts_with("program `shop`: the program currency is USD in the config, but finalised period 2026-10 was issued in EUR."),
        "{e}"
    );
    assert!(
        e.contains("Set `currency = \"EUR\"` back in the program's [[programs]] entry"),
        "{e}"
    );
    // The same zone written out is the same.
    check(
        &["awin"],
        &config(&format!("timezone = \"UTC\"\n{CPS_EUR}")),
    )
    .unwrap();
}

/// Finance QA F6: `verify` of a finalised period whose directory was
/// removed (or with `output_dir` pointing elsewhere) said "a finalize of
/// 2026-10 was interrupted". It now says the files are missing and that
/// `generate` restores them; a staging directory left by a run stopped
/// before its swap is still named an interrupted run. F7: `verify` of a
/// period before the first finalised one said to generate it, which is
/// refused.
#[test]
fn verify_tells_missing_files_from_an_interrupted_finalize_and_periods_that_will_have_no_statements(
) {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![sale("A", "p1", "2026-10-05T10:00:00Z", "200.00")];
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::generate(&inp, "2026-10").unwrap();
    reckon::payout::finalize(&inp, "2026-10").unwrap();
    let dir = tmp.path().join("statements/shop/2026-10");
    let files = read_dir(&dir);

    let moved = tmp.path().join("elsewhere");
    std::fs::rename(&dir, &moved).unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert_eq!(
        v.problems,
        [format!(
            "no files for finalised version 2 of 2026-10 in {}: the directory was removed or moved, or daemon.output_dir changed since it was written (an interrupted run leaves the previous files, version 1, in place); run `reckon statements generate --program shop --period 2026-10`, which writes the recorded statements back byte for byte from the store",
            dir.display()
        )]
    );
    // Another output_dir: the same.
    let other = tempfile::tempdir().unwrap();
    let v = reckon::payout::verify(&book, other.path(), "shop", "2026-10").unwrap();
    assert!(
        v.problems[0].starts_with("no files for finalised version 2 of 2026-10 in "),
        "{:?}",
        v.problems
    );
    assert!(!v.problems[0].contains("interrupted:"), "{:?}", v.problems);
    let shown = reckon::payout::show(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(shown
        .files_not_recorded
        .is_some_and(|w| w.starts_with("no files for finalised")));

    // A staging directory and no files: a run stopped before its swap.
    std::fs::create_dir_all(reckon::payout::files::staging_dir(&dir)).unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(
        v.problems[0].starts_with("a finalize of 2026-10 was interrupted: the store recorded finalised version 2 but there are no files"),
        "{:?}",
        v.problems
    );

    // `generate` restores them byte for byte.
    let r = reckon::payout::generate(&inp, "2026-10").unwrap();
    assert!(r.already_finalised);
    assert_eq!(read_dir(&dir), files);
    assert!(reckon::payout::verify(&book, tmp.path(), "shop", "2026-10")
        .unwrap()
        .problems
        .is_empty());

    // F7: before the first finalised period (of any kind), and after.
    let e = reckon::payout::verify(&book, tmp.path(), "shop", "2026-09")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "program `shop`: period 2026-09 has no statements and will not have any: 2026-10, the first period finalised from its start on, paid its payable claims (a claim is paid by the first period generated once it is payable). Show or verify 2026-10 instead"
    );
    let e = reckon::payout::verify(&book, tmp.path(), "shop", "2026-W36")
        .unwrap_err()
        .to_string();
    assert!(e.contains("period 2026-W36 has no statements"), "{e}");
    let e = reckon::payout::show(&book, tmp.path(), "shop", "2026-08")
        .unwrap_err()
        .to_string();
    assert!(e.contains("period 2026-08 has no statements"), "{e}");
    let e = reckon::payout::verify(&book, tmp.path(), "shop", "2026-11")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("run `reckon statements generate --program shop --period 2026-11` first"),
        "{e}"
    );
    // QA24 L3: an id that is no period says so, as `generate` does, instead
    // of sending the user to a `generate` that refuses it.
    for (bad, want) in [
        ("2026-13", "2026-13"),
        ("2021-W53", "2021 has no ISO week 53"),
        ("2026-02-H3", "2026-02-H3"),
        ("2026-1é", "2026-1é"),
    ] {
        for e in [
            reckon::payout::verify(&book, tmp.path(), "shop", bad).map(|_| ()),
            reckon::payout::show(&book, tmp.path(), "shop", bad).map(|_| ()),
        ] {
            let e = e.unwrap_err().to_string();
            assert!(e.contains(want) && !e.contains("first"), "{bad}: {e}");
        }
    }
}

/// Finance QA F5: a finalised period's `summary.csv` (and JSON) edited by
/// hand, content hash included, made every run refuse as "a store older
/// than the files", and `verify` sent the user to `generate`, which
/// refused. The store records the period as finalised at the version the
/// files claim, for the same payees: the files were edited. Runs go on,
/// `verify` names the edit, and `generate` restores the files. A summary
/// naming other payees at that version is still refused.
#[test]
fn a_hand_edited_summary_of_a_finalised_period_is_restored_not_taken_for_an_older_store() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "300.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "400.00"),
    ];
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::finalize(&inp, "2026-10").unwrap();
    let dir = tmp.path().join("statements/shop/2026-10");
    let files = read_dir(&dir);
    let summary_path = dir.join("summary.csv");
    let summary = String::from_utf8(files["summary.csv"].clone()).unwrap();
    let p2 = String::from_utf8(files["awin.p2.json"].clone()).unwrap();
    let hash = |t: &str| {
        t.split("\"content_hash\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let old_hash = hash(&p2);
    let forged = "f".repeat(64);
    // "fix" p2's payout: 40.00 → 45.00, amount and hash, in both files.
    std::fs::write(
        &summary_path,
        summary
            .replace("40.00", "45.00")
            .replace(&old_hash, &forged),
    )
    .unwrap();
    std::fs::write(
        dir.join("awin.p2.json"),
        p2.replace("\"40.00\"", "\"45.00\"")
            .replace(&old_hash, &forged),
    )
    .unwrap();

    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(
        v.problems
            .iter()
            .any(|p| p.starts_with("summary.csv: SHA-256 ")),
        "{:?}",
        v.problems
    );
    assert!(
        !v.problems.iter().any(|p| p.contains("store is older")),
        "{:?}",
        v.problems
    );
    // Other periods are not held up, and generate restores the files.
    reckon::payout::generate(&inp, "2026-11").unwrap();
    let r = reckon::payout::generate(&inp, "2026-10").unwrap();
    assert!(r.already_finalised);
    assert!(
        r.restored.contains(&"summary.csv".to_string()),
        "{:?}",
        r.restored
    );
    assert_eq!(read_dir(&dir), files);
    assert!(reckon::payout::verify(&book, tmp.path(), "shop", "2026-10")
        .unwrap()
        .problems
        .is_empty());

    // Another payee at the recorded version is not an edit of these
    // statements: refused as before.
    std::fs::write(
        &summary_path,
        summary
            .replace("awin:p2", "awin:p9")
            .replace(&old_hash, &forged),
    )
    .unwrap();
    let e = reckon::payout::generate(&inp, "2026-11")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds finalised statements that this store did not issue: 2026-10"),
        "{e}"
    );
    // So is another version.
    std::fs::write(
        &summary_path,
        summary
            .replace(",finalised,1,", ",finalised,3,")
            .replace(&old_hash, &forged),
    )
    .unwrap();
    reckon::payout::generate(&inp, "2026-11").unwrap_err();
    // And a summary none of whose statements this store issued (another
    // store's set, or every row edited): refused, saying how to let
    // `generate` restore an edited set.
    let p1_hash = hash(&String::from_utf8(files["awin.p1.json"].clone()).unwrap());
    std::fs::write(
        &summary_path,
        summary
            .replace(&old_hash, &forged)
            .replace(&p1_hash, &"e".repeat(64)),
    )
    .unwrap();
    let e = reckon::payout::generate(&inp, "2026-11")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "the store has it as finalised version 1 with other statements; if these files were edited by hand, move the directory {} out of the statements directory",
            dir.display()
        )),
        "{e}"
    );
    let aside = tmp.path().join("edited-2026-10");
    std::fs::rename(&dir, &aside).unwrap();
    reckon::payout::generate(&inp, "2026-10").unwrap();
    assert_eq!(read_dir(&dir), files);
}

/// QA52 M3: a `summary.csv` cut short (its last row cut mid-hash) was
/// taken for another store's: every run of the program was refused as "the
/// store is older than these files", advising a restore of the store. Its
/// whole rows are this store's statements at the recorded version: `verify`
/// names the damaged file, and `generate` writes it back.
#[test]
fn a_summary_cut_short_is_restored_not_taken_for_another_stores() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "300.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "400.00"),
    ];
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::finalize(&inp, "2026-10").unwrap();
    let dir = tmp.path().join("statements/shop/2026-10");
    let files = read_dir(&dir);
    let summary = &files["summary.csv"];
    // Cut inside p2's row, within its content hash.
    let text = String::from_utf8(summary.clone()).unwrap();
    let p2 = String::from_utf8(files["awin.p2.json"].clone()).unwrap();
    let p2_hash = p2
        .split("\"content_hash\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let cut = text.find(p2_hash).unwrap() + 20;
    std::fs::write(dir.join("summary.csv"), &summary[..cut]).unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(
        v.problems.iter().any(|p| p.starts_with("summary.csv: ")),
        "{:?}",
        v.problems
    );
    reckon::payout::generate(&inp, "2026-11").unwrap();
    let r = reckon::payout::generate(&inp, "2026-10").unwrap();
    assert!(r.already_finalised);
    assert_eq!(read_dir(&dir), files);
    // Cut to its header and first row: the same.
    let rows: Vec<&str> = text.split_inclusive('\n').collect();
    std::fs::write(dir.join("summary.csv"), rows[..2].concat()).unwrap();
    reckon::payout::generate(&inp, "2026-10").unwrap();
    assert_eq!(read_dir(&dir), files);
}

/// QA (new user F13, robustness F15): after restoring a store older than
/// the files, `show` of a period the store has as a draft must say the
/// files are newer, and `verify` of a period the store never recorded must
/// not advise generating it.
#[test]
fn show_and_verify_on_a_store_older_than_the_files_say_so() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let fxr = no_fx();
    let ds = vec![
        sale("A", "p1", "2026-09-05T10:00:00Z", "200.00"),
        sale("B", "p2", "2026-10-06T10:00:00Z", "400.00"),
    ];
    let book = MemoryBook::new();
    let before_any = backup(&book);
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::generate(&inp, "2026-10").unwrap();
    let old = backup(&book);
    reckon::payout::finalize(&inp, "2026-10").unwrap();

    let shown = reckon::payout::show(&old, tmp.path(), "shop", "2026-10").unwrap();
    let why = shown
        .files_not_recorded
        .expect("show names the newer files");
    assert!(why.contains("the store is older than the files"), "{why}");

    // Neither `verify` nor `show` (finance QA16 L3) of a period the store
    // never recorded advises generating it.
    for e in [
        reckon::payout::verify(&before_any, tmp.path(), "shop", "2026-10")
            .unwrap_err()
            .to_string(),
        reckon::payout::show(&before_any, tmp.path(), "shop", "2026-10")
            .unwrap_err()
            .to_string(),
    ] {
        assert!(!e.contains("first"), "{e}");
        assert!(
            e.contains("holds finalised statements that this store did not issue"),
            "{e}"
        );
        // QA17: `show` writes nothing, so "nothing was written" misled.
        assert!(!e.contains("nothing was written"), "{e}");
    }
}

/// QA (new user, 2026-11-30): the printable statement showed the audit
/// trace (`rev 1, order at pos_orders rev 2; decided 2026-11-29T19:43:56.621258257Z`),
/// reasons with Markdown back-ticks, and "Previously paid 9.78" on a claim
/// whose 9.78 was carried (below the minimum payout), never paid. From
/// format 6 the HTML is the partner's; the JSON and CSV keep the audit
/// trail, and statements issued in format 5 still render and verify as
/// issued.
#[test]
fn format_6_html_is_for_the_partner_and_a_format_5_period_still_verifies_as_issued() {
    let c = config(
        r#"
payout_currency = "EUR"
minimum_payout = "50"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    // October: 9.78 earned, below the 50.00 minimum: carried, not paid.
    let a = sale("A", "p1", "2026-10-05T10:00:00Z", "97.80");
    let oct = reckon::payout::finalize(
        &inputs(&c, std::slice::from_ref(&a), &fxr, &book, tmp.path()),
        "2026-10",
    )
    .unwrap();
    assert_eq!(read_statements(&oct.dir)[0].totals.carried_out, d("9.78"));
    reissue_as_format(&book, &oct.dir, "2026-10", 5);

    // The format-5 period comes back as issued (the trace in its HTML) and
    // verifies.
    let again = reckon::payout::generate(
        &inputs(&c, std::slice::from_ref(&a), &fxr, &book, tmp.path()),
        "2026-10",
    )
    .unwrap();
    assert!(again.already_finalised);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let old_html = String::from_utf8(read_dir(&oct.dir)["awin.p1.html"].clone()).unwrap();
    assert!(
        old_html.contains("<br><small>rev 1, order at shop rev 1; decided "),
        "{old_html}"
    );
    assert_eq!(read_statements(&oct.dir)[0].format_version, 5);

    // November: A refunded (its carried 9.78 is taken back), B earns 10.00.
    let nov_ds = vec![
        refunded(a),
        sale("B", "p1", "2026-11-07T10:00:00Z", "100.00"),
    ];
    let nov =
        reckon::payout::finalize(&inputs(&c, &nov_ds, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let files = read_dir(&nov.dir);
    let s = &read_statements(&nov.dir)[0];
    assert_eq!(s.format_version, reckon::payout::model::FORMAT_VERSION);
    assert_eq!(s.totals.carried_in, d("9.78"));
    let adj = &s.adjustments[0];
    assert_eq!((adj.previously_paid, adj.amount), (d("9.78"), d("-9.78")));
    assert!(adj.reason.contains("`refunded`"), "{}", adj.reason);

    let html = String::from_utf8(files["awin.p1.html"].clone()).unwrap();
    for internal in [
        "<small>rev ",
        "order at shop",
        "decided ",
        "Previously paid",
        "`",
    ] {
        assert!(!html.contains(internal), "{internal:?} in {html}");
    }
    assert!(
        html.contains("<th class=\"n\">Credited earlier</th>"),
        "{html}"
    );
    assert!(
        html.contains("carried forward as a balance below the minimum payout"),
        "{html}"
    );
    assert!(
        html.contains("<td>claim is now refunded: order refunded in full; the earlier commission is reversed</td>"),
        "{html}"
    );
    // The audit trail stays in the JSON and the CSV.
    let json = String::from_utf8(files["awin.p1.json"].clone()).unwrap();
    assert!(json.contains("\"trace\":{\"claim_revision\":1"), "{json}");
    assert!(json.contains("\"previously_paid\":\"9.78\""), "{json}");
    assert!(json.contains("claim is now `refunded`"), "{json}");
    let csv = String::from_utf8(files["awin.p1.csv"].clone()).unwrap();
    assert!(
        csv.lines().next().unwrap().contains(",decided_at,"),
        "{csv}"
    );
    assert!(csv.contains("claim is now `refunded`"), "{csv}");
    // From format 9 (new-user QA16 N8) the partner's HTML leaves out
    // connector ids, the claim that won and instants; format 8 rendered
    // the reason as stored.
    let mut v9 = s.clone();
    v9.adjustments[0].reason = "claim is now `network_reversed`: order shop/O-1 is also claimed by impact/77, which wins on last click (2026-11-30T06:22:30Z)".into();
    // From format 12 the instant has its seconds and zone (QA32-C M1).
    let html12 = render::html_file(&v9, "h");
    assert!(
        html12.contains("which wins on last click (2026-11-30 06:22:30 UTC)</td>"),
        "{html12}"
    );
    v9.format_version = 9;
    let html9 = render::html_file(&v9, "h");
    assert!(
        html9.contains("<td>claim is now network reversed: order O-1 is also claimed by another claim, which wins on last click (2026-11-30 06:22)</td>"),
        "{html9}"
    );
    let mut v8 = v9.clone();
    v8.format_version = 8;
    let html8 = render::html_file(&v8, "h");
    assert!(
        html8.contains("order shop/O-1 is also claimed by impact/77, which wins on last click (2026-11-30T06:22:30Z)"),
        "{html8}"
    );
    // The same statement rendered as format 5 has the HTML it had then.
    let mut v5 = s.clone();
    v5.format_version = 5;
    let html5 = render::html_file(&v5, "h");
    assert!(
        html5.contains("<th class=\"n\">Previously paid</th>"),
        "{html5}"
    );
    assert!(html5.contains("claim is now `refunded`"), "{html5}");
    assert!(
        html5.contains("<br><small>rev 1, order at shop rev 1; decided "),
        "{html5}"
    );
}

/// QA10 L6: a partner named with a right-to-left override (U+202E) and a
/// newline. From format 8 the HTML shows them as `<U+202E>`, so the name
/// cannot reorder the page; the JSON and CSV keep the name as sent, and a
/// period finalised in format 7 is reproduced and verified as issued (the
/// characters as they were).
#[test]
fn format_8_html_shows_bidi_characters_as_escapes_and_a_format_7_period_still_verifies() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let spoof = "Acme\u{202E}00.001\nPartner p9";
    let named = |mut d: Decision| {
        d.partner_name = Some(spoof.into());
        d.claim.id = format!("C\u{2067}{}", d.claim.id);
        d
    };
    let sep = vec![named(sale("A", "p1", "2026-09-05T10:00:00Z", "100.00"))];
    let r =
        reckon::payout::finalize(&inputs(&c, &sep, &fxr, &book, tmp.path()), "2026-09").unwrap();
    reissue_as_format(&book, &r.dir, "2026-09", 7);
    let again =
        reckon::payout::generate(&inputs(&c, &sep, &fxr, &book, tmp.path()), "2026-09").unwrap();
    assert!(again.already_finalised);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-09").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let old_html = String::from_utf8(read_dir(&r.dir)["awin.p1.html"].clone()).unwrap();
    assert!(
        old_html.contains("Payout statement — Acme\u{202E}00.001\nPartner p9</h1>"),
        "format 7 as issued: {old_html}"
    );

    let oct = vec![named(sale("B", "p1", "2026-10-05T10:00:00Z", "100.00"))];
    let r =
        reckon::payout::finalize(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let files = read_dir(&r.dir);
    let s = &read_statements(&r.dir)[0];
    assert_eq!(s.format_version, reckon::payout::model::FORMAT_VERSION);
    assert_eq!(s.partner_name.as_deref(), Some(spoof), "stored as sent");
    let html = String::from_utf8(files["awin.p1.html"].clone()).unwrap();
    assert!(!html.contains(['\u{202E}', '\u{2067}']), "{html}");
    assert!(
        html.contains("Payout statement — Acme&lt;U+202E&gt;00.001&lt;U+000A&gt;Partner p9</h1>"),
        "{html}"
    );
    assert!(html.contains("<td>C&lt;U+2067&gt;B</td>"), "{html}");
    let json = String::from_utf8(files["awin.p1.json"].clone()).unwrap();
    assert!(json.contains("Acme\u{202E}00.001\\nPartner p9"), "{json}");
    let csv = String::from_utf8(files["awin.p1.csv"].clone()).unwrap();
    assert!(csv.contains("C\u{2067}B"), "{csv}");
    // The same statement as format 7: the HTML it had then; the JSON and
    // CSV differ only in `format_version`.
    let mut v7 = s.clone();
    v7.format_version = 7;
    assert!(render::html_file(&v7, "h").contains("Acme\u{202E}00.001\nPartner p9"));
    // Format 9's JSON and CSV are format 8's, so format 7's (format 10
    // adds the lines' outcome and decision columns).
    let mut v9 = s.clone();
    v9.format_version = 9;
    let strip = |t: Vec<u8>| {
        String::from_utf8(t)
            .unwrap()
            .replace("\"format_version\":7", "\"format_version\":9")
    };
    assert_eq!(
        strip(render::canonical_json(&v7).unwrap()),
        String::from_utf8(render::canonical_json(&v9).unwrap()).unwrap()
    );
    assert_eq!(
        render::csv_file(&v7).unwrap(),
        render::csv_file(&v9).unwrap()
    );
}

/// QA31-A L4: a statement finalised with `--early` read as covering the
/// whole period. From format 11 it says when it was closed
/// (`closed_early_at` in the JSON, a CSV row, a note in the HTML) and
/// that the period's later conversions are on the next statement; one not
/// closed early is format 10's but for `format_version`, and a format-10
/// period still verifies and is restored as issued.
#[test]
fn format_11_says_a_statement_was_closed_early_and_a_format_10_period_still_verifies() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let sep = vec![sale("A", "p1", "2026-09-05T10:00:00Z", "100.00")];
    let r =
        reckon::payout::finalize(&inputs(&c, &sep, &fxr, &book, tmp.path()), "2026-09").unwrap();
    let files = read_dir(&r.dir);
    let s = &read_statements(&r.dir)[0];
    assert_eq!(s.format_version, reckon::payout::model::FORMAT_VERSION);
    assert_eq!(s.closed_early_at, None);
    for name in ["awin.p1.json", "awin.p1.csv", "awin.p1.html"] {
        let text = String::from_utf8(files[name].clone()).unwrap();
        assert!(!text.to_lowercase().contains("early"), "{name}: {text}");
    }
    // Format 11 not closed early is format 10 but for `format_version`.
    let s = &reckon::payout::model::Statement {
        format_version: 11,
        ..s.clone()
    };
    let mut v10 = s.clone();
    v10.format_version = 10;
    assert_eq!(
        String::from_utf8(render::canonical_json(&v10).unwrap())
            .unwrap()
            .replace("\"format_version\":10", "\"format_version\":11"),
        String::from_utf8(render::canonical_json(s).unwrap()).unwrap()
    );
    assert_eq!(
        render::csv_file(&v10).unwrap(),
        render::csv_file(s).unwrap()
    );
    assert_eq!(render::html_file(&v10, "h"), render::html_file(s, "h"));
    reissue_as_format(&book, &r.dir, "2026-09", 10);
    let again =
        reckon::payout::generate(&inputs(&c, &sep, &fxr, &book, tmp.path()), "2026-09").unwrap();
    assert!(again.already_finalised);
    assert_eq!(read_statements(&r.dir)[0].format_version, 10);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-09").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    let oct = vec![sale("B", "p1", "2026-10-05T10:00:00Z", "100.00")];
    let closed = at("2026-10-20T15:30:00Z");
    let inp = inputs(&c, &oct, &fxr, &book, tmp.path());
    let r = reckon::payout::finalize_early(&inp, "2026-10", closed).unwrap();
    let files = read_dir(&r.dir);
    let s = &read_statements(&r.dir)[0];
    assert_eq!(s.closed_early_at, Some(closed));
    let json = String::from_utf8(files["awin.p1.json"].clone()).unwrap();
    assert!(
        json.contains("\"closed_early_at\":\"2026-10-20T15:30:00Z\""),
        "{json}"
    );
    let csv = String::from_utf8(files["awin.p1.csv"].clone()).unwrap();
    assert!(
        csv.trim_end().lines().last().unwrap().starts_with(
            "closed_early_at,,,,,2026-10-20T15:30:00Z,,,,,,,,,,,,,\"closed early, before the period ended: conversions of period 2026-10 after this instant are on the next statement\""
        ),
        "{csv}"
    );
    let html = String::from_utf8(files["awin.p1.html"].clone()).unwrap();
    assert!(
        html.contains("<p class=\"early\">Closed early, on 2026-10-20 15:30:00 UTC (UTC), before the period ended: conversions of period 2026-10 after that are on the next statement.</p>"),
        "{html}"
    );
    // A format-11 statement closed early keeps the minute it was issued with.
    let mut v11 = s.clone();
    v11.format_version = 11;
    assert!(
        render::html_file(&v11, "h").contains("Closed early, on 2026-10-20 15:30 (UTC), before")
    );
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    // Finalising again (early or not) changes nothing.
    let again = reckon::payout::finalize(&inp, "2026-10").unwrap();
    assert!(again.already_finalised && again.restored.is_empty());
}

/// The tiered program of finance QA F3: 5 % from 0, 10 % from 500, and
/// `bonus` (TOML of the bonus's figures) from `threshold`.
fn tiered_with_bonus(bonus: &str) -> CommissionConfig {
    config(&format!(
        r#"
payout_currency = "EUR"
[[rules]]
id = "tier"
effective_from = "2026-01-01"
kind = "tiered"
tiers = [{{ from_volume = "0", percent = "5" }}, {{ from_volume = "500", percent = "10" }}]
[[bonuses]]
id = "bonus600"
effective_from = "2026-01-01"
{bonus}
"#
    ))
}

/// Rule `tier`: 5 %, and `top` % from a volume of 1000.
fn tiered_at_1000(top: &str) -> String {
    format!(
        r#"
payout_currency = "EUR"
[[rules]]
id = "tier"
effective_from = "2026-01-01"
kind = "tiered"
tiers = [{{ from_volume = "0", percent = "5" }}, {{ from_volume = "1000", percent = "{top}" }}]
"#
    )
}

/// QA14 N2 (HIGH): a tier edited in place (10 % → 11 %), then a refund
/// that drops the statement into the unedited 5 % tier. The line was
/// scaled by the edited tier: 90.00 × 45.00 / 99.00 = 40.91, a price no
/// version of the rule gives (5 % of 900 is 45.00 under both). And with
/// the refund undone, the data back where it was paid, the line got 99.00
/// (11 %), not the 90.00 it was paid on. A line keeps the terms it was
/// paid on (recorded with it) while the same rule prices it.
#[test]
fn a_line_keeps_the_terms_it_was_paid_on_across_tiers_after_a_rule_edit() {
    let (paid_on, edited) = (config(&tiered_at_1000("10")), config(&tiered_at_1000("11")));
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let sept = vec![
        sale("B1", "p1", "2026-09-03T10:00:00Z", "900.00"),
        sale("B2", "p1", "2026-09-10T10:00:00Z", "200.00"),
    ];
    let r = reckon::payout::finalize(&inputs(&paid_on, &sept, &fxr, &book, tmp.path()), "2026-09")
        .unwrap();
    assert_eq!(r.total_payable, d("110.00"));
    let adjustments = |r: &reckon::payout::lifecycle::Report| {
        read_statements(&r.dir)
            .iter()
            .flat_map(|s| s.adjustments.iter().map(|a| (a.claim_id.clone(), a.amount)))
            .collect::<Vec<_>>()
    };
    // B2 refunded: 900 is in the 5 % tier, under the old rule and the new.
    let oct_data = vec![sept[0].clone(), refunded(sept[1].clone())];
    let oct = reckon::payout::finalize(
        &inputs(&edited, &oct_data, &fxr, &book, tmp.path()),
        "2026-10",
    )
    .unwrap();
    assert_eq!(
        adjustments(&oct),
        [
            ("B1".to_string(), d("-45.00")),
            ("B2".to_string(), d("-20.00"))
        ]
    );
    // The refund undone: the data September paid on, paid as September did.
    let nov = reckon::payout::finalize(&inputs(&edited, &sept, &fxr, &book, tmp.path()), "2026-11")
        .unwrap();
    assert_eq!(
        adjustments(&nov),
        [
            ("B1".to_string(), d("45.00")),
            ("B2".to_string(), d("20.00"))
        ]
    );
    // Nothing after.
    let dec = reckon::payout::generate(&inputs(&edited, &sept, &fxr, &book, tmp.path()), "2026-12")
        .unwrap();
    assert!(adjustments(&dec).is_empty());
}

/// QA15 P1: the same through an override added after the payment (8 % /
/// 15 % for p1). The refund that drops September below the 1000 tier
/// scaled by the override: 60.00 × 48.00 / 90.00 = 32.00 for A1, a price
/// neither the rule (30.00) nor the override (48.00) gives. The lines keep
/// the terms they were paid on while their event and date stay.
#[test]
fn an_override_added_after_payment_does_not_reprice_a_line_on_mixed_terms() {
    let base = tiered_at_1000("10");
    let paid_on = config(&base);
    let overridden = config(&format!(
        r#"{base}
[[overrides]]
id = "p1deal"
partner = "p1"
rule = "tier"
tiers = [{{ from_volume = "0", percent = "8" }}, {{ from_volume = "1000", percent = "15" }}]
"#
    ));
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let sept = vec![
        sale("A1", "p1", "2026-09-03T10:00:00Z", "600.00"),
        sale("A2", "p1", "2026-09-10T10:00:00Z", "500.00"),
    ];
    let r = reckon::payout::finalize(&inputs(&paid_on, &sept, &fxr, &book, tmp.path()), "2026-09")
        .unwrap();
    assert_eq!(r.total_payable, d("110.00"));
    // The override alone changes nothing paid.
    let oct = reckon::payout::generate(
        &inputs(&overridden, &sept, &fxr, &book, tmp.path()),
        "2026-10",
    )
    .unwrap();
    assert!(read_statements(&oct.dir)
        .iter()
        .all(|s| s.adjustments.is_empty()));
    // A2 partly refunded to 300: 900, the 5 % tier of the terms paid on.
    let refunded = vec![sept[0].clone(), partly_refunded(sept[1].clone(), "300.00")];
    let oct = reckon::payout::generate(
        &inputs(&overridden, &refunded, &fxr, &book, tmp.path()),
        "2026-10",
    )
    .unwrap();
    let got: Vec<(String, rust_decimal::Decimal)> = read_statements(&oct.dir)
        .iter()
        .flat_map(|s| s.adjustments.iter().map(|a| (a.claim_id.clone(), a.amount)))
        .collect();
    assert_eq!(
        got,
        [
            ("A1".to_string(), d("-30.00")),
            ("A2".to_string(), d("-35.00"))
        ]
    );
    // QA53: priced on the terms paid, the adjustments name them: the rule
    // with no override (they named `p1deal` beside the rule's 5 %).
    let named: Vec<(
        Option<String>,
        Option<String>,
        Option<rust_decimal::Decimal>,
    )> = read_statements(&oct.dir)
        .iter()
        .flat_map(|s| {
            s.adjustments
                .iter()
                .map(|a| (a.rule_id.clone(), a.override_id.clone(), a.rate_percent))
        })
        .collect();
    assert_eq!(
        named,
        [
            (Some("tier".to_string()), None, Some(d("5"))),
            (Some("tier".to_string()), None, Some(d("5")))
        ]
    );
}

/// QA53: a line paid under rule `r10` whose claim moved to a date another
/// rule prices. The reason named as the rule it was paid under the one
/// today's config has for its old date (`r11`, after `r10` was narrowed
/// and `r11` added): the audit record of what was paid changed with a
/// config edit. It names the terms paid, `r10`, whatever the config says
/// now.
#[test]
fn an_adjustment_names_the_rule_a_line_was_paid_under_after_the_config_changed() {
    let paid_on = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "r10"
effective_from = "2026-01-01"
effective_to = "2026-10-31"
kind = "percent"
percent = "10"
[[rules]]
id = "r12"
effective_from = "2026-11-01"
kind = "percent"
percent = "12"
"#,
    );
    let edited = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "r10"
effective_from = "2026-01-01"
effective_to = "2026-09-05"
kind = "percent"
percent = "10"
[[rules]]
id = "r11"
effective_from = "2026-09-06"
effective_to = "2026-10-31"
kind = "percent"
percent = "11"
[[rules]]
id = "r12"
effective_from = "2026-11-01"
kind = "percent"
percent = "12"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let sept = vec![sale("M1", "p1", "2026-09-10T10:00:00Z", "100.00")];
    let r = reckon::payout::finalize(&inputs(&paid_on, &sept, &fxr, &book, tmp.path()), "2026-09")
        .unwrap();
    assert_eq!(r.total_payable, d("10.00"));
    let moved = vec![sale("M1", "p1", "2026-11-02T10:00:00Z", "100.00")];
    for c in [&paid_on, &edited] {
        let nov = reckon::payout::generate(&inputs(c, &moved, &fxr, &book, tmp.path()), "2026-11")
            .unwrap();
        let adjustments: Vec<_> = read_statements(&nov.dir)
            .into_iter()
            .flat_map(|s| s.adjustments)
            .collect();
        assert_eq!(adjustments.len(), 1, "{adjustments:?}");
        let a = &adjustments[0];
        assert_eq!(a.amount, d("2.00"), "{a:?}");
        assert!(
            a.reason.contains("rule `r10` → `r12`"),
            "the rule paid under, whatever the config says now: {}",
            a.reason
        );
        assert_eq!(
            (
                a.rule_id.as_deref(),
                a.override_id.as_deref(),
                a.rate_percent
            ),
            (Some("r12"), None, Some(d("12")))
        );
    }
}

/// QA14 N1 (HIGH): September paid 620 at the 10 % tier with a 20.00 bonus;
/// a partial refund (300 → 100), finalised in October, took the bonus back and settled
/// September. Then the rule was replaced by one starting later (September's
/// lines have no rule now, so they are left as paid): November paid the
/// bonus again, "reached again" at 620 while the order stays refunded, and
/// restoring the rule took it back. The lines left as paid count in the
/// volume with today's basis: nothing moves, either way.
#[test]
fn replacing_a_rule_with_the_data_unchanged_leaves_bonuses_alone() {
    let c = tiered_with_bonus("threshold_volume = \"600\"\namount = \"20\"");
    let replaced = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "tier-q4"
effective_from = "2026-10-01"
kind = "tiered"
tiers = [{ from_volume = "0", percent = "5" }, { from_volume = "500", percent = "10" }]
[[bonuses]]
id = "bonus600"
effective_from = "2026-01-01"
threshold_volume = "600"
amount = "20"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let sept = vec![
        sale("T1", "p1", "2026-09-03T10:00:00Z", "200.00"),
        sale("T2", "p1", "2026-09-10T10:00:00Z", "300.00"),
        sale("T3", "p1", "2026-09-20T10:00:00Z", "120.00"),
    ];
    reckon::payout::finalize(&inputs(&c, &sept, &fxr, &book, tmp.path()), "2026-09").unwrap();
    // T2 partly refunded, to 100: 420 < 600.
    let oct_data = vec![
        sept[0].clone(),
        partly_refunded(sept[1].clone(), "100.00"),
        sept[2].clone(),
    ];
    let oct = reckon::payout::finalize(&inputs(&c, &oct_data, &fxr, &book, tmp.path()), "2026-10")
        .unwrap();
    assert_eq!((oct.adjustments, oct.bonus_adjustments), (4, 1));
    for (cfg, what) in [(&replaced, "replaced"), (&c, "restored")] {
        let nov =
            reckon::payout::generate(&inputs(cfg, &oct_data, &fxr, &book, tmp.path()), "2026-11")
                .unwrap();
        let s = read_statements(&nov.dir);
        assert!(
            s.iter()
                .all(|s| s.adjustments.is_empty() && s.bonus_adjustments.is_empty()),
            "{what}: {:?}",
            s.iter()
                .map(|s| (&s.adjustments, &s.bonus_adjustments))
                .collect::<Vec<_>>()
        );
        // Lines left as paid are not held back (QA14 M1).
        assert!(!nov.dir.join("held_back.csv").exists(), "{what}");
    }
}

/// Finance QA F3 (HIGH): September paid 200 + 300 + 120 = 620 at the 10 %
/// tier and the 20.00 bonus from 600; the 300 order refunded, October
/// repriced the tiered lines (-10.00, -30.00, -6.00) but kept the bonus.
/// Now October takes it back (-20.00), in every draft the same, and once
/// October is finalised no later statement takes it again.
#[test]
fn a_bonus_no_longer_reached_after_a_refund_is_taken_back_once_over_drafts_and_periods() {
    let c = tiered_with_bonus("threshold_volume = \"600\"\namount = \"20\"");
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let sept = vec![
        sale("T1", "p1", "2026-09-03T10:00:00Z", "200.00"),
        sale("T2", "p1", "2026-09-10T10:00:00Z", "300.00"),
        sale("T3", "p1", "2026-09-20T10:00:00Z", "120.00"),
    ];
    let r =
        reckon::payout::finalize(&inputs(&c, &sept, &fxr, &book, tmp.path()), "2026-09").unwrap();
    let s = &read_statements(&r.dir)[0];
    assert_eq!((s.totals.lines, s.totals.bonuses), (d("62.00"), d("20.00")));
    assert_eq!(s.bonuses[0].line_no, 4);

    let oct = vec![sept[0].clone(), refunded(sept[1].clone()), sept[2].clone()];
    let draft = |book: &MemoryBook| {
        let r =
            reckon::payout::generate(&inputs(&c, &oct, &fxr, book, tmp.path()), "2026-10").unwrap();
        (r.clone(), read_dir(&r.dir))
    };
    let (r1, files1) = draft(&book);
    let (r2, files2) = draft(&book);
    assert_eq!((r1.version, r2.version), (1, 2));
    assert_eq!(
        (r2.adjustments, r2.bonus_adjustments),
        (4, 1),
        "three lines and the bonus"
    );
    let s = &read_statements(&r2.dir)[0];
    assert_sums(s);
    assert_eq!(
        s.adjustments.iter().map(|a| a.amount).collect::<Vec<_>>(),
        [d("-10.00"), d("-30.00"), d("-6.00")]
    );
    let a = &s.bonus_adjustments[0];
    assert_eq!(s.bonus_adjustments.len(), 1);
    assert_eq!(
        (
            a.line_no,
            a.bonus_id.as_str(),
            a.original_statement_id.as_str(),
            a.original_line_no
        ),
        (4, "bonus600", "shop/2026-09/awin:p1", Some(4))
    );
    assert_eq!((a.previously_paid, a.amount), (d("20.00"), d("-20.00")));
    assert!(
        a.reason.starts_with(
            "bonus `bonus600` of statement shop/2026-09/awin:p1 no longer reached: volume 320.00 < threshold 600.00"
        ),
        "{}",
        a.reason
    );
    assert_eq!(
        (
            s.totals.adjustments,
            s.totals.bonuses,
            s.totals.subtotal,
            s.totals.carried_out
        ),
        (d("-66.00"), d("0.00"), d("-66.00"), d("-66.00"))
    );
    // A draft again is the same draft (but for its version).
    let strip = |files: &BTreeMap<String, Vec<u8>>| {
        let (s, _, _) = render::read_json_file(&files["awin.p1.json"]).unwrap();
        Statement { version: 0, ..s }
    };
    assert_eq!(strip(&files1), strip(&files2));

    // The CSV row and the partner's HTML.
    let csv = String::from_utf8(files2["awin.p1.csv"].clone()).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with("bonus_adjustment,"))
        .unwrap();
    assert!(
        row.starts_with("bonus_adjustment,4,,,,,,320.00,EUR,bonus600,,,20.00,threshold 600.00,,-20.00,EUR,shop/2026-09/awin:p1#4,bonus `bonus600` of statement"),
        "{row}"
    );
    // Format 12 (QA32d F1): the original volume, the original bonus and
    // what was credited under `original_basis`, `original_commission` and
    // `previously_paid`, the six decision columns after them empty, and
    // (format 13) the four columns after those, (format 14) the five
    // after those (a fixed bonus has no rate, so no rate date), then
    // (format 17) the statement the row is of.
    assert!(
        row.ends_with(",,620.00,20.00,20.00,,,,,,,,,,,,,,,,shop/2026-10/awin:p1,awin:p1,draft,2"),
        "{row}"
    );
    assert!(csv.contains("\ntotal_adjustments,"), "{csv}");
    let html = String::from_utf8(files2["awin.p1.html"].clone()).unwrap();
    assert!(
        html.contains("<h2>Bonus adjustments to earlier statements</h2>"),
        "{html}"
    );
    assert!(
        html.contains("<td>bonus bonus600 of statement shop/2026-09/awin:p1 no longer reached: volume 320.00 &lt; threshold 600.00; the bonus credited for it is taken back</td>"),
        "{html}"
    );

    // Finalised, recorded in the bonus ledger; November takes nothing again
    // (drafts nor final), and October verifies.
    let r =
        reckon::payout::finalize(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-10").unwrap();
    assert_eq!(read_statements(&r.dir)[0].totals.adjustments, d("-66.00"));
    let history = reckon::payout::lifecycle::load_history(&book, "shop").unwrap();
    assert!(!history.bonus_ledger_derived);
    assert_eq!(history.ledgers_derived_from, 0);
    let paid = &history.bonuses["shop/2026-09/awin:p1"]["bonus600"];
    assert_eq!(
        (paid.original_amount, paid.paid_total),
        (d("20.00"), d("0.00"))
    );
    for _ in 0..2 {
        let nov = reckon::payout::generate(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-11")
            .unwrap();
        let s = &read_statements(&nov.dir)[0];
        assert!(
            s.bonus_adjustments.is_empty() && s.adjustments.is_empty(),
            "{s:?}"
        );
        assert_eq!(s.totals.carried_in, d("-66.00"));
    }
    let nov =
        reckon::payout::finalize(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-11").unwrap();
    assert_eq!(nov.adjustments, 0);
    for period in ["2026-09", "2026-10", "2026-11"] {
        let v = reckon::payout::verify(&book, tmp.path(), "shop", period).unwrap();
        assert!(v.problems.is_empty(), "{period}: {:?}", v.problems);
    }
}

/// An upward restatement that lifts a finalised month over a percent
/// bonus's threshold pays the bonus; a later refund rescales it; each once.
#[test]
fn a_restatement_over_the_threshold_pays_a_percent_bonus_that_then_follows_the_volume() {
    // 1 % of the volume from 600, payout in USD at 1.10 on the month's last
    // day.
    let c = config(
        r#"
payout_currency = "USD"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
[[bonuses]]
id = "pct600"
effective_from = "2026-01-01"
threshold_volume = "600"
percent = "1"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = fx(&[
        ("EUR", "USD", "2026-09-03", "1.10"),
        ("EUR", "USD", "2026-09-10", "1.10"),
        ("EUR", "USD", "2026-09-30", "1.10"),
    ]);
    let sept = vec![
        sale("T1", "p1", "2026-09-03T10:00:00Z", "200.00"),
        sale("T2", "p1", "2026-09-10T10:00:00Z", "300.00"),
    ];
    let r =
        reckon::payout::finalize(&inputs(&c, &sept, &fxr, &book, tmp.path()), "2026-09").unwrap();
    assert!(read_statements(&r.dir)[0].bonuses.is_empty(), "500 < 600");

    // T2 restated to 500.00: 700.00, 1 % × 1.10 = 7.70.
    let mut t2 = sale("T2", "p1", "2026-09-10T10:00:00Z", "500.00");
    t2.claim.revision = 2;
    let oct = vec![sept[0].clone(), t2.clone()];
    for _ in 0..2 {
        let r = reckon::payout::generate(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-10")
            .unwrap();
        let s = &read_statements(&r.dir)[0];
        assert_sums(s);
        assert_eq!(s.adjustments[0].amount, d("22.00"));
        let a = &s.bonus_adjustments[0];
        assert_eq!(
            (
                a.original_line_no,
                a.original_volume,
                a.current_volume,
                a.fx_rate,
                a.amount
            ),
            (None, d("500.00"), d("700.00"), Some(d("1.10")), d("7.70"))
        );
        assert!(
            a.reason
                .contains("now reached: volume 700.00 ≥ threshold 600.00"),
            "{}",
            a.reason
        );
        let csv = String::from_utf8(read_dir(&r.dir)["awin.p1.csv"].clone()).unwrap();
        assert!(
            csv.contains(",shop/2026-09/awin:p1,bonus `pct600`"),
            "refers to the statement: {csv}"
        );
    }
    reckon::payout::finalize(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-10").unwrap();

    // T1 partly refunded to 150.00: 650.00, still over 600: 1 % × 1.10 =
    // 7.15, so -0.55 (and T1 -5.50).
    let nov = vec![partly_refunded(sept[0].clone(), "150.00"), t2];
    let r =
        reckon::payout::generate(&inputs(&c, &nov, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let s = &read_statements(&r.dir)[0];
    let a = &s.bonus_adjustments[0];
    assert_eq!((a.previously_paid, a.amount), (d("7.70"), d("-0.55")));
    assert!(
        a.reason.starts_with(
            // From the volume it was last settled at, 700.00, not the
            // 500.00 September paid on (QA14 L2).
            "bonus `pct600` of statement shop/2026-09/awin:p1 follows its volume, 700.00 → 650.00: 1% of it × FX rate 1.10 gives 7.15 now"
        ),
        "{}",
        a.reason
    );
    assert_eq!(s.totals.adjustments, d("-6.05"));
    reckon::payout::finalize(&inputs(&c, &nov, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let r =
        reckon::payout::generate(&inputs(&c, &nov, &fxr, &book, tmp.path()), "2026-12").unwrap();
    let s = &read_statements(&r.dir)[0];
    assert!(
        s.adjustments.is_empty() && s.bonus_adjustments.is_empty(),
        "{s:?}"
    );
    assert_eq!(
        s.totals.carried_in,
        d("-6.05"),
        "November's clawback, carried"
    );
}

/// A store whose periods were finalised before the bonus ledger (format 6
/// statements, no `bonus` entries): its statements still verify and
/// regenerate byte for byte, the bonus they paid is read from their JSON,
/// taken back once, and the next run records the ledger.
#[test]
fn a_bonus_paid_by_a_statement_finalised_before_the_bonus_ledger_is_taken_back_once() {
    use reckon::payout::book::StatementBook;
    let c = tiered_with_bonus("threshold_volume = \"600\"\namount = \"20\"");
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let sept = vec![
        sale("T1", "p1", "2026-09-03T10:00:00Z", "200.00"),
        sale("T2", "p1", "2026-09-10T10:00:00Z", "300.00"),
        sale("T3", "p1", "2026-09-20T10:00:00Z", "120.00"),
    ];
    let r =
        reckon::payout::finalize(&inputs(&c, &sept, &fxr, &book, tmp.path()), "2026-09").unwrap();
    // As an earlier version left it: format 6, no bonus ledger.
    reissue_as_format(&book, &r.dir, "2026-09", 6);
    let ledger: Vec<(String, Option<reckon::payout::book::Encoded>)> = book
        .scan_prefix("bonus")
        .unwrap()
        .into_iter()
        .map(|(k, _)| (k, None))
        .collect();
    assert_eq!(ledger.len(), 2, "one bonus and the marker: {ledger:?}");
    book.apply(ledger).unwrap();
    let again =
        reckon::payout::generate(&inputs(&c, &sept, &fxr, &book, tmp.path()), "2026-09").unwrap();
    assert!(again.already_finalised);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-09").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(read_statements(&r.dir)[0].format_version, 6);
    let history = reckon::payout::lifecycle::load_history(&book, "shop").unwrap();
    assert!(history.bonus_ledger_derived);
    assert_eq!(
        history.bonuses["shop/2026-09/awin:p1"]["bonus600"].paid_total,
        d("20.00")
    );

    // A draft records the ledger derived from the statements.
    let oct = vec![sept[0].clone(), refunded(sept[1].clone()), sept[2].clone()];
    let r =
        reckon::payout::generate(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let s = &read_statements(&r.dir)[0];
    assert_eq!(s.format_version, reckon::payout::model::FORMAT_VERSION);
    assert_eq!(s.bonus_adjustments[0].amount, d("-20.00"));
    let history = reckon::payout::lifecycle::load_history(&book, "shop").unwrap();
    assert!(!history.bonus_ledger_derived);
    assert_eq!(history.ledgers_derived_from, 0);
    assert_eq!(
        history.bonuses["shop/2026-09/awin:p1"]["bonus600"].paid_total,
        d("20.00"),
        "a draft pays nothing"
    );
    reckon::payout::finalize(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let r =
        reckon::payout::generate(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let s = &read_statements(&r.dir)[0];
    assert!(s.bonus_adjustments.is_empty(), "{s:?}");
    for period in ["2026-09", "2026-10"] {
        let v = reckon::payout::verify(&book, tmp.path(), "shop", period).unwrap();
        assert!(v.problems.is_empty(), "{period}: {:?}", v.problems);
    }
}

/// What the finalised statements of `periods` credited `payee` over all:
/// lines, adjustments (of claims and of bonuses) and bonuses.
fn credited_over(book: &MemoryBook, periods: &[&str], payee: &str) -> rust_decimal::Decimal {
    use reckon::payout::lifecycle;
    let recs = lifecycle::period_records(book, "shop").unwrap();
    periods
        .iter()
        .map(|p| recs.iter().find(|r| r.period == *p).unwrap())
        .flat_map(|rec| lifecycle::finalised_statements(book, rec).unwrap())
        .map(|(s, _)| s)
        .filter(|s| s.payee() == payee)
        .map(|s| s.totals.lines + s.totals.adjustments + s.totals.bonuses)
        .sum()
}

/// Finance follow-up (a colleague's probe, 2026-11-30): September paid p1
/// 200 + 300 + 120 = 620 at the 10 % tier and a 20.00 bonus; T2 (300.00)
/// then leaves p1, October takes back T2 and lowers the tier of T1 and T3
/// (-10.00, -6.00) and the bonus. Once October was finalised the moved
/// claim left the ledger of paid claims, and November repriced September
/// without it in the volume the lines were paid on: +10.00 and +6.00, the
/// tier reduction paid back for good. Now no later statement adjusts
/// anything, and over all statements p1 is credited what it is owed (T1
/// and T3 at 5 %: 16.00) and p2 T2 at its own 5 % (15.00). The same for a
/// claim that moves while not payable (paid to p2 once it is), and for a
/// refunded claim that later moves (its ledger entry replaced by p2's
/// line, with no take-back).
#[test]
fn a_tier_lowered_when_a_claim_leaves_a_partner_is_never_paid_back() {
    let c = tiered_with_bonus("threshold_volume = \"600\"\namount = \"20\"");
    let sept = vec![
        sale("T1", "p1", "2026-09-03T10:00:00Z", "200.00"),
        sale("T2", "p1", "2026-09-10T10:00:00Z", "300.00"),
        sale("T3", "p1", "2026-09-20T10:00:00Z", "120.00"),
    ];
    let to_p2 = |mut x: Decision| {
        x.partner_id = "p2".into();
        x.partner_name = Some("Partner p2".into());
        x
    };
    let moved = vec![sept[0].clone(), to_p2(sept[1].clone()), sept[2].clone()];
    let mut pending = moved.clone();
    pending[1].payable = false;
    let refunded_t2 = vec![sept[0].clone(), refunded(sept[1].clone()), sept[2].clone()];
    // (case, October's decisions, the decisions from November on)
    let cases = [
        ("moved", moved.clone(), moved.clone()),
        ("moved while not payable", pending, moved.clone()),
        ("refunded, then moved", refunded_t2, moved),
    ];
    for (case, oct, later) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let book = MemoryBook::new();
        let fxr = no_fx();
        let run = |ds: &[Decision], period: &str| {
            let r =
                reckon::payout::finalize(&inputs(&c, ds, &fxr, &book, tmp.path()), period).unwrap();
            read_statements(&r.dir)
        };
        let s = run(&sept, "2026-09");
        assert_eq!(
            (s[0].totals.lines, s[0].totals.bonuses),
            (d("62.00"), d("20.00"))
        );

        // October: T2's 30.00 and the tier of T1 and T3 taken back, and
        // the bonus (320.00 < 600.00).
        let s = run(&oct, "2026-10");
        let p1 = s.iter().find(|s| s.partner_id == "p1").unwrap();
        assert_sums(p1);
        assert_eq!(
            p1.adjustments
                .iter()
                .map(|a| (a.claim_id.as_str(), a.amount))
                .collect::<Vec<_>>(),
            [("T1", d("-10.00")), ("T2", d("-30.00")), ("T3", d("-6.00"))],
            "{case}"
        );
        assert_eq!(p1.bonus_adjustments[0].amount, d("-20.00"), "{case}");

        // Later months, no new data: only p2's line for T2 (at once when it
        // was payable in October), never an adjustment.
        for period in ["2026-11", "2026-12", "2027-01"] {
            for s in run(&later, period) {
                assert_sums(&s);
                assert!(
                    s.adjustments.is_empty() && s.bonus_adjustments.is_empty(),
                    "{case}, {period}: {} adjusts {:?} {:?}",
                    s.statement_id,
                    s.adjustments
                        .iter()
                        .map(|a| (&a.claim_id, a.amount, &a.reason))
                        .collect::<Vec<_>>(),
                    s.bonus_adjustments
                );
            }
        }
        let all = ["2026-09", "2026-10", "2026-11", "2026-12", "2027-01"];
        assert_eq!(
            credited_over(&book, &all, "awin:p1"),
            d("16.00"),
            "{case}: T1 and T3 at 5 %"
        );
        assert_eq!(
            credited_over(&book, &all, "awin:p2"),
            d("15.00"),
            "{case}: T2 at 5 %"
        );
        for period in all {
            let v = reckon::payout::verify(&book, tmp.path(), "shop", period).unwrap();
            assert!(v.problems.is_empty(), "{case}, {period}: {:?}", v.problems);
        }
    }
}

/// A store whose moved claim's take-back was finalised before the
/// released-lines ledger existed (no `released` entries, no marker), its
/// ledger entries older still (without the lines' inputs): the
/// ledger is derived from the finalised statements, so the next statements
/// still count the moved claim in September's volume and adjust nothing;
/// the first run records the ledger, and every period still verifies.
#[test]
fn a_claim_released_before_the_released_lines_ledger_is_derived_from_the_statements() {
    use reckon::payout::book::StatementBook;
    use reckon::payout::lifecycle;
    let c = tiered_with_bonus("threshold_volume = \"600\"\namount = \"20\"");
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let sept = vec![
        sale("T1", "p1", "2026-09-03T10:00:00Z", "200.00"),
        sale("T2", "p1", "2026-09-10T10:00:00Z", "300.00"),
        sale("T3", "p1", "2026-09-20T10:00:00Z", "120.00"),
    ];
    let mut moved = sept.clone();
    moved[1].partner_id = "p2".into();
    reckon::payout::finalize(&inputs(&c, &sept, &fxr, &book, tmp.path()), "2026-09").unwrap();
    // Ledger entries as written before 2026-11-29: without the inputs of
    // the line (the released line is then read from its statement).
    let old_entries: Vec<(String, Option<reckon::payout::book::Encoded>)> = book
        .scan_prefix("paid\x1f")
        .unwrap()
        .into_iter()
        .map(|(k, mut v)| {
            let o = v.as_object_mut().unwrap();
            for f in [
                "date",
                "event",
                "basis",
                "fx_rate",
                "claim_fx_rate",
                "order_fx_rate",
            ] {
                o.remove(f);
            }
            (k, Some(v.into()))
        })
        .collect();
    assert_eq!(old_entries.len(), 3);
    book.apply(old_entries).unwrap();
    let oct =
        reckon::payout::finalize(&inputs(&c, &moved, &fxr, &book, tmp.path()), "2026-10").unwrap();
    assert_eq!(oct.adjustments, 4, "T1, T2, T3 and the bonus");
    let recorded = lifecycle::load_history(&book, "shop").unwrap();
    assert!(!recorded.released_ledger_derived);
    let t2 = &recorded.released["shop/2026-09/awin:p1"][&("awin".to_string(), "T2".to_string())];
    assert_eq!((t2.line_no, t2.paid_total), (2, d("0.00")));
    assert_eq!(
        (t2.date, t2.basis),
        (Some(day("2026-09-10")), Some(d("300.00"))),
        "read from September's line"
    );

    // As an earlier version left it.
    let ledger: Vec<(String, Option<reckon::payout::book::Encoded>)> = book
        .scan_prefix("released")
        .unwrap()
        .into_iter()
        .map(|(k, _)| (k, None))
        .collect();
    assert_eq!(ledger.len(), 2, "one line and the marker: {ledger:?}");
    book.apply(ledger).unwrap();
    let derived = lifecycle::load_history(&book, "shop").unwrap();
    assert!(derived.released_ledger_derived);
    assert_eq!(derived.released, recorded.released);

    for period in ["2026-11", "2026-12"] {
        let r =
            reckon::payout::finalize(&inputs(&c, &moved, &fxr, &book, tmp.path()), period).unwrap();
        assert_eq!(r.adjustments, 0, "{period}: {:?}", read_statements(&r.dir));
        let h = lifecycle::load_history(&book, "shop").unwrap();
        assert!(!h.released_ledger_derived, "{period}: recorded");
        assert_eq!(h.released, recorded.released);
    }
    for period in ["2026-09", "2026-10", "2026-11", "2026-12"] {
        let v = reckon::payout::verify(&book, tmp.path(), "shop", period).unwrap();
        assert!(v.problems.is_empty(), "{period}: {:?}", v.problems);
    }
}

/// A program of one tiered rule: `tiers` (TOML array), payout in EUR.
fn tiered(tiers: &str) -> CommissionConfig {
    config(&format!(
        r#"
payout_currency = "EUR"
[[rules]]
id = "tier"
effective_from = "2026-01-01"
kind = "tiered"
tiers = {tiers}
"#
    ))
}

/// Finance QA13 F1 (HIGH): A5 was paid 45.00 in September (5 % of 900),
/// restated to 1100 (the 10 % tier) and paid +65.00 in October. With the
/// data unchanged, editing the rule in place (10 % → 11 %, or the tiers
/// moved to 6 % from 0 and 12 % from 1500) changed what October settled
/// (+11.00, and −55.00). Now no statement adjusts it while its data stays;
/// a later partial refund to 1050 is owed 1050 on the terms it was settled
/// at (105.00: −5.00), and the reason names what changed since that
/// settlement (F2). Drafts record nothing.
#[test]
fn a_rule_edited_in_place_changes_nothing_a_finalised_repricing_settled() {
    use reckon::payout::lifecycle;
    let old = tiered(
        r#"[{ from_volume = "0", percent = "5" }, { from_volume = "1000", percent = "10" }]"#,
    );
    let edits = [
        (
            "rate 10 % → 11 %",
            tiered(
                r#"[{ from_volume = "0", percent = "5" }, { from_volume = "1000", percent = "11" }]"#,
            ),
        ),
        (
            "boundary moved",
            tiered(
                r#"[{ from_volume = "0", percent = "6" }, { from_volume = "1500", percent = "12" }]"#,
            ),
        ),
    ];
    for (case, edited) in &edits {
        let tmp = tempfile::tempdir().unwrap();
        let book = MemoryBook::new();
        let fxr = no_fx();
        let run = |c: &CommissionConfig, ds: &[Decision], period: &str, finalise: bool| {
            let inp = inputs(c, ds, &fxr, &book, tmp.path());
            let r = if finalise {
                reckon::payout::finalize(&inp, period)
            } else {
                reckon::payout::generate(&inp, period)
            }
            .unwrap();
            read_statements(&r.dir)
        };
        let adjusted = |s: &[Statement]| -> Vec<(String, rust_decimal::Decimal, String)> {
            s.iter()
                .flat_map(|s| &s.adjustments)
                .map(|a| (a.claim_id.clone(), a.amount, a.reason.clone()))
                .collect()
        };
        let sept = vec![sale("A5", "p1", "2026-09-10T10:00:00Z", "900.00")];
        let s = run(&old, &sept, "2026-09", true);
        assert_eq!(s[0].totals.lines, d("45.00"), "{case}");
        let mut restated = sale("A5", "p1", "2026-09-10T10:00:00Z", "1100.00");
        restated.claim.revision = 2;
        let oct = vec![restated.clone()];
        let s = run(&old, &oct, "2026-10", false);
        assert!(
            lifecycle::load_history(&book, "shop")
                .unwrap()
                .settled
                .is_empty(),
            "{case}: a draft records nothing"
        );
        assert_eq!(adjusted(&s)[0].1, d("65.00"), "{case}");
        run(&old, &oct, "2026-10", true);
        let h = lifecycle::load_history(&book, "shop").unwrap();
        let rec = &h.settled["shop/2026-09/awin:p1"];
        assert_eq!(rec.lines.len(), 1, "{case}");
        assert_eq!(
            rec.lines[0].inputs.as_ref().unwrap().basis,
            Some(d("1100.00")),
            "{case}"
        );
        assert_eq!(
            h.paid[&("awin".into(), "A5".into())].paid_total,
            d("110.00")
        );

        // The rule edited, the data as it was: nothing, drafts or final.
        let s = run(edited, &oct, "2026-11", false);
        assert!(adjusted(&s).is_empty(), "{case}: {:?}", adjusted(&s));
        let s = run(edited, &oct, "2026-11", true);
        assert!(adjusted(&s).is_empty(), "{case}: {:?}", adjusted(&s));

        // The data changes again: refunded to 1050, owed 10 % of it (the
        // terms it was settled at), −5.00; the reason says what changed
        // since October (not "900.00 → 1050.00").
        let mut refund = partly_refunded(restated.clone(), "1050.00");
        refund.claim.revision = 3;
        let dec = vec![refund];
        let s = run(edited, &dec, "2026-12", true);
        let a = adjusted(&s);
        assert_eq!(a.len(), 1, "{case}: {a:?}");
        assert_eq!(a[0].1, d("-5.00"), "{case}: {a:?}");
        assert!(
            a[0].2
                .starts_with("basis 1100.00 → 1050.00; repriced to 105.00"),
            "{case}: {}",
            a[0].2
        );
        // And nothing after, with either rules.
        for (c, period) in [(edited, "2027-01"), (&old, "2027-02")] {
            let s = run(c, &dec, period, true);
            assert!(
                adjusted(&s).is_empty(),
                "{case}, {period}: {:?}",
                adjusted(&s)
            );
        }
        let all = [
            "2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-02",
        ];
        assert_eq!(credited_over(&book, &all, "awin:p1"), d("105.00"), "{case}");
        for period in all {
            let v = reckon::payout::verify(&book, tmp.path(), "shop", period).unwrap();
            assert!(v.problems.is_empty(), "{case}, {period}: {:?}", v.problems);
        }
    }
}

/// Finance QA13 F2: a line whose own change (a partial refund) was settled
/// by an earlier finalised adjustment, adjusted again because the other
/// lines of its statement moved its tier, says so; it no longer repeats
/// the settled refund ("basis 450.00 → 300.00") as its reason.
#[test]
fn an_adjustment_after_a_settled_change_names_what_changed_since() {
    let c = tiered(
        r#"[{ from_volume = "0", percent = "5" }, { from_volume = "1000", percent = "10" }]"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let run = |ds: &[Decision], period: &str| {
        let r = reckon::payout::finalize(&inputs(&c, ds, &fxr, &book, tmp.path()), period).unwrap();
        read_statements(&r.dir)
    };
    let adjusted = |s: &[Statement]| -> Vec<(String, rust_decimal::Decimal, String)> {
        s.iter()
            .flat_map(|s| &s.adjustments)
            .map(|a| (a.claim_id.clone(), a.amount, a.reason.clone()))
            .collect()
    };
    let t1 = sale("T1", "p1", "2026-09-03T10:00:00Z", "600.00");
    let t2 = sale("T2", "p1", "2026-09-10T10:00:00Z", "450.00");
    let s = run(&[t1.clone(), t2.clone()], "2026-09");
    assert_eq!(s[0].totals.lines, d("105.00"));
    // October: T2 refunded to 300, 900 is in the 5 % tier.
    let t2r = partly_refunded(t2, "300.00");
    let a = adjusted(&run(&[t1.clone(), t2r.clone()], "2026-10"));
    assert_eq!(
        a.iter().map(|a| (a.0.as_str(), a.1)).collect::<Vec<_>>(),
        [("T1", d("-30.00")), ("T2", d("-30.00"))]
    );
    assert!(
        a[1].2
            .starts_with("basis 450.00 → 300.00; repriced to 15.00"),
        "{}",
        a[1].2
    );
    // November: T1 restated to 800, 1100 is in the 10 % tier again.
    let mut t1r = sale("T1", "p1", "2026-09-03T10:00:00Z", "800.00");
    t1r.claim.revision = 2;
    let a = adjusted(&run(&[t1r, t2r], "2026-11"));
    assert_eq!(
        a.iter().map(|a| (a.0.as_str(), a.1)).collect::<Vec<_>>(),
        [("T1", d("50.00")), ("T2", d("15.00"))]
    );
    assert!(
        a[0].2
            .starts_with("basis 600.00 → 800.00; repriced to 80.00"),
        "{}",
        a[0].2
    );
    assert!(
        a[1].2.starts_with("repriced with the other lines of statement shop/2026-09/awin:p1: their volume changed (900.00 → 1100.00), so its tiers and caps give this line 30.00 now"),
        "{}",
        a[1].2
    );
}

#[test]
fn a_new_programs_ledgers_start_empty_and_are_not_said_to_be_derived() {
    // QA29-A L4: a program with nothing finalised logged that its bonus and
    // released-lines ledgers were "derived from the finalised statements";
    // it has none, so its first run only starts them (logged at debug).
    let history = reckon::payout::lifecycle::load_history(&MemoryBook::new(), "new").unwrap();
    assert!(history.bonus_ledger_derived && history.released_ledger_derived);
    assert_eq!(history.ledgers_derived_from, 0);
    assert!(history.bonuses.is_empty() && history.released.is_empty());
}

/// QA36b M2: an EUR program over USD orders without `[fx]` rates: every
/// claim is `fx_missing` at reconciliation, on no statement and in no
/// `held_back.csv`, and `generate` said "0 statement(s)" without a word.
/// It now warns, with the count and the earliest claim, both ways the
/// decisions are read.
#[test]
fn claims_without_a_rate_into_the_program_currency_are_warned_about() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let missing = |id: &str, at: &str| {
        let mut d = sale(id, "p1", at, "100.00");
        (d.outcome, d.payable, d.basis) = (Outcome::FxMissing, false, None);
        d.reason = format!("no USD→EUR rate for {}; add it to [fx]", &at[..10]);
        d
    };
    let ds = vec![
        missing("B", "2026-10-06T10:00:00Z"),
        missing("A", "2026-10-05T10:00:00Z"),
        sale("C", "p1", "2026-10-07T10:00:00Z", "50.00"),
    ];
    for inp in [
        inputs(&c, &ds, &fxr, &book, tmp.path()),
        inputs_slice(&c, &ds, &fxr, &book, tmp.path()),
    ] {
        let r = reckon::payout::generate(&inp, "2026-10").unwrap();
        assert!(
            r.warnings.iter().any(|w| w.starts_with(
                "2 claim(s) of program `shop` have no exchange rate into the program currency (`fx_missing`; the earliest: awin/A: no USD→EUR rate for 2026-10-05; add it to [fx])"
            )),
            "{:?}",
            r.warnings
        );
    }
}

/// QA39b B-M1: a statement closed early says the period's conversions
/// after that instant are on the next statement, and they are: a claim
/// converted after the close (a postback may be dated up to a day ahead)
/// is neither a line nor a `not_paid` entry of the statement closed
/// before it, and the next period's statement pays it. Before, it was a
/// line of the statement closed before it was converted.
#[test]
fn a_claim_converted_after_an_early_close_is_on_the_next_statement() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let closed = at("2026-10-20T15:30:00Z");
    let before = sale("B", "p1", "2026-10-20T15:29:59Z", "100.00");
    let after = sale("C", "p1", "2026-10-20T15:30:01Z", "200.00");
    let mut pending_after = sale("D", "p1", "2026-10-21T10:00:00Z", "50.00");
    pending_after.payable = false;
    let oct = vec![before, after.clone(), pending_after];
    let r = reckon::payout::finalize_early(
        &inputs(&c, &oct, &fxr, &book, tmp.path()),
        "2026-10",
        closed,
    )
    .unwrap();
    let s = &read_statements(&r.dir)[0];
    let lines: Vec<&str> = s.lines.iter().map(|l| l.claim_id.as_str()).collect();
    assert_eq!(lines, ["B"]);
    // D, not payable and converted after the close, is not listed either.
    assert!(s.not_paid.is_empty(), "{:?}", s.not_paid);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    // November's statement pays C.
    let r =
        reckon::payout::generate(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let s = &read_statements(&r.dir)[0];
    let lines: Vec<(&str, String)> = (s.lines.iter())
        .map(|l| (l.claim_id.as_str(), l.commission.to_string()))
        .collect();
    assert_eq!(lines, [("C", "20.00".to_owned())]);
}

/// QA39b B-L2: a percent bonus is priced at the FX rate of its statement's
/// last day; closing a period early (`--early`) held back every percent
/// bonus, that day being still to come, and asked for a rate of the
/// future. A statement closed early prices them at the rate of the day it
/// was closed (its last day), and a bonus it held back for want of that
/// day's rate is paid at that day's rate by the next period generated
/// once the rate exists, whatever the period's last day's rate.
#[test]
fn a_period_closed_early_prices_its_percent_bonuses_at_the_rate_of_its_close_day() {
    let c = config(&format!(
        "{}\n[[bonuses]]\nid = \"pct\"\neffective_from = \"2026-01-01\"\nthreshold_volume = \"100\"\npercent = \"1\"\n",
        CPS_EUR.replace("payout_currency = \"EUR\"", "payout_currency = \"USD\"")
    ));
    let ds = vec![sale("A", "p1", "2026-10-05T10:00:00Z", "500.00")];
    let closed = at("2026-10-20T15:30:00Z");
    let rates = fx(&[
        ("EUR", "USD", "2026-10-05", "0.80"),
        ("EUR", "USD", "2026-10-20", "0.90"),
    ]);

    // The close day's rate there: 1 % of 500.00 EUR at 0.90 = 4.50 USD.
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let oct = reckon::payout::finalize_early(
        &inputs(&c, &ds, &rates, &book, tmp.path()),
        "2026-10",
        closed,
    )
    .unwrap();
    assert!(oct.skipped.is_empty(), "{:?}", oct.skipped);
    let s = &read_statements(&oct.dir)[0];
    let b = &s.bonuses[0];
    assert_eq!(
        (b.fx_rate, b.fx_rate_date, b.amount),
        (Some(d("0.90")), Some(day("2026-10-20")), d("4.50"))
    );

    // Not there: held back, the warning asking for the close day's rate.
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let before = fx(&[("EUR", "USD", "2026-10-05", "0.80")]);
    let oct = reckon::payout::finalize_early(
        &inputs(&c, &ds, &before, &book, tmp.path()),
        "2026-10",
        closed,
    )
    .unwrap();
    assert!(
        oct.warnings.iter().any(|w| w
            == "partner `awin:p1`: bonus pct left out: no EUR→USD rate for 2026-10-20; add it to [fx], and the next period generated pays the bonus"),
        "{:?}",
        oct.warnings
    );
    // The rate of 2026-10-20 added (2026-10-31 has none): November pays
    // the bonus at it, once.
    let nov =
        reckon::payout::finalize(&inputs(&c, &ds, &rates, &book, tmp.path()), "2026-11").unwrap();
    let s = read_statements(&nov.dir);
    let adjustments: Vec<_> = s.iter().flat_map(|s| &s.bonus_adjustments).collect();
    assert_eq!(adjustments.len(), 1, "{adjustments:?} {:?}", nov.skipped);
    let a = adjustments[0];
    assert_eq!(
        (a.bonus_id.as_str(), a.fx_rate, a.fx_rate_date, a.amount),
        ("pct", Some(d("0.90")), Some(day("2026-10-20")), d("4.50"))
    );
    let dec =
        reckon::payout::generate(&inputs(&c, &ds, &rates, &book, tmp.path()), "2026-12").unwrap();
    assert!(read_statements(&dec.dir)
        .iter()
        .all(|s| s.bonus_adjustments.is_empty()));
}
