//! Regressions of the QA31-A audit of commission rules and payout
//! statements: later drafts after a finalise (M1), overrides that never
//! apply (M2, in `config check`), the name of a payee whose only line is a
//! take-back (L2), the take-back reason of a claim only carried (L3), and
//! a statement closed early (L4).

mod payout_support;

use payout_support::*;
use reckon::payout::book::{self, MemoryBook, StatementBook as _};
use reckon::payout::model::{Statement, Status};
use reckon::payout::render;
use std::path::Path;

fn statements_in(dir: &Path) -> Vec<Statement> {
    read_dir(dir)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(_, b)| render::read_json_file(&b).unwrap().0)
        .collect()
}

fn claims_listed(dir: &Path) -> Vec<String> {
    statements_in(dir)
        .iter()
        .flat_map(|s| s.lines.iter().map(|l| l.claim_id.clone()))
        .collect()
}

/// QA31-A M1: a November draft generated before October was finalised
/// kept listing claim `a`, which October then paid, and `show`/`verify`
/// said it was fine. Finalising October regenerates it (and says so); a
/// streamed finalise, which cannot, retires it; a draft left out of date
/// anyway is called so by `verify` and `show`.
#[test]
fn finalising_a_period_brings_the_drafts_of_later_periods_up_to_date() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![
        sale("a", "z", "2026-10-05T10:00:00Z", "100.00"),
        sale("b", "z", "2026-11-03T10:00:00Z", "50.00"),
    ];
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    let nov = reckon::payout::generate(&inp, "2026-11").unwrap();
    assert_eq!(claims_listed(&nov.dir), ["a", "b"]);
    let oct = reckon::payout::finalize(&inp, "2026-10").unwrap();
    assert_eq!(claims_listed(&oct.dir), ["a"]);
    assert!(
        oct.warnings.iter().any(|w| w.starts_with(
            "regenerated the draft of period 2026-11 (now version 2: 1 statement(s), total payable 5.00 EUR): its version 1 was generated before 2026-10 was finalised"
        )),
        "{:?}",
        oct.warnings
    );
    // November no longer offers `a`, and its files are the recorded ones.
    assert_eq!(claims_listed(&nov.dir), ["b"]);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.status, Status::Draft);
    let shown = reckon::payout::show(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert_eq!(shown.record.version, 2);
    assert_eq!(shown.stale, None);
    assert_eq!(shown.rows[0].total_payable, "5.00");

    // A draft left as it was (a store written before finalise refreshed
    // drafts: here the November draft's record says it was generated
    // before October was finalised) is out of date for `verify` and
    // `show`.
    let record = |period: &str| {
        let key = book::key(&["period", "shop", period]);
        let rec: book::PeriodRecord = book::decode(&key, book.get(&key).unwrap().unwrap()).unwrap();
        (key, rec)
    };
    let (_, october) = record("2026-10");
    let (key, mut rec) = record("2026-11");
    rec.recorded_at = october
        .recorded_at
        .map(|t| t - chrono::Duration::seconds(1));
    book.apply(vec![(key, Some(book::encode(&rec)))]).unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert_eq!(
        v.problems,
        ["draft version 2 of 2026-11 is out of date: it was generated before 2026-10 was finalised, which may have paid claims it lists; run `reckon statements generate --program shop --period 2026-11` for a draft from the current data"]
    );
    let shown = reckon::payout::show(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert!(shown.stale.is_some());
    // Regenerated, it is up to date again.
    reckon::payout::generate(&inp, "2026-11").unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    // A streamed finalise reads its partitions once: the December draft is
    // retired, named in a warning.
    let dec = reckon::payout::generate(&inp, "2026-12").unwrap();
    assert_eq!(claims_listed(&dec.dir), ["b"]);
    let mut parts = std::iter::once(Ok(("awin:z".to_string(), ds.clone())));
    let nov = reckon::payout::finalize_partitioned(&inp, "2026-11", Some("EUR".into()), &mut parts)
        .unwrap();
    assert_eq!(claims_listed(&nov.dir), ["b"]);
    assert!(
        nov.warnings.iter().any(|w| w.starts_with(
            "retired the draft of period 2026-12: it was generated before 2026-11 was finalised and could list claims 2026-11 has now paid"
        )),
        "{:?}",
        nov.warnings
    );
    assert!(!dec.dir.exists());
    assert!(tmp
        .path()
        .join("statements/shop/set-aside/2026-12/summary.csv")
        .exists());
}

/// The program of `reckon config check` with `overrides` after its rules.
fn check_overrides(overrides: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
    std::fs::create_dir(dir.path().join("drop")).unwrap();
    std::fs::write(
        dir.path().join("reckon.toml"),
        format!(
            r#"[daemon]
plugin_dir = "plugins"

[[connectors]]
id = "net"
plugin = "example"
schedule = "0 6 * * *"
[connectors.settings]
api_key = {{ secret = "env:EXAMPLE_API_KEY" }}

[[connectors]]
id = "orders"
plugin = "orders"
schedule = "0 7 * * *"
[connectors.settings]
mode = "files"
directory = "drop"

[[programs]]
id = "shop"
currency = "EUR"
claims = ["net"]
orders = ["orders"]
[programs.commission]
payout_currency = "EUR"

[[programs.commission.rules]]
id = "vip"
effective_from = "2026-01-01"
partners = ["net:v"]
kind = "percent"
percent = "8"

[[programs.commission.rules]]
id = "leads"
effective_from = "2026-01-01"
event_types = ["lead"]
partners = ["net:w"]
kind = "flat"
amount = "1.00"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "5"
{overrides}"#
        ),
    )
    .unwrap();
    let out = std::process::Command::new(reckon_tests::reckon_bin())
        .current_dir(dir.path())
        .args(["config", "check", "--config", "reckon.toml"])
        .env_remove("RECKON_CONFIG")
        .env("EXAMPLE_API_KEY", "k")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("commission override"))
        .collect();
    (out.status.code().unwrap_or(-1), warnings.join("\n"))
}

fn an_override(id: &str, partner: &str, rule: &str, extra: &str) -> String {
    let figure = if rule == "leads" {
        "amount = \"2.00\""
    } else {
        "percent = \"6\""
    };
    format!(
        "\n[[programs.commission.overrides]]\nid = \"{id}\"\npartner = \"{partner}\"\nrule = \"{rule}\"\n{figure}\n{extra}\n"
    )
}

/// QA31-A M2: the first override that matches applies (kept: changing it
/// would change who is paid what under existing configs), and an override
/// behind an earlier one for the same rule and partner, or of a rule an
/// earlier rule hides for its partner, was silently dead. `config check`
/// now warns about each, naming both entries; an override that does apply
/// gets no warning.
#[test]
fn config_check_warns_about_an_override_that_never_applies() {
    let deal = an_override("z-2025-deal", "net:z", "cps", "");
    let raise = an_override(
        "z-raise-from-oct-15",
        "net:z",
        "cps",
        "effective_from = \"2026-10-15\"",
    );
    let v = an_override("v-on-cps", "net:v", "cps", "");
    let (code, warnings) = check_overrides(&format!("{deal}{raise}{v}"));
    assert_eq!(code, 0, "{warnings}");
    assert_eq!(
        warnings,
        [
            "warning: program `shop`: commission override `z-raise-from-oct-15` (overrides[1]) never applies: override `z-2025-deal` (overrides[0]) comes before it, for the same rule `cps` and partner `net:z`, and is in force on each of its days; the first override that matches applies. Move `z-raise-from-oct-15` above `z-2025-deal` (it then applies on its days and `z-2025-deal` on the others), end `z-2025-deal` the day before `z-raise-from-oct-15` starts (effective_to), or delete one of them",
            "warning: program `shop`: commission override `v-on-cps` (overrides[2]) never applies: rule `vip` (rules[0]) comes before rule `cps` and matches every claim of partner `net:v` that `cps` would on the override's days, so `cps` never prices `net:v` then (the first rule that matches prices the claim); set `rule = \"vip\"` in the override if it is meant for `vip`, or delete it",
        ]
        .join("\n")
    );
    // Ended the day before the raise, or placed after it: both apply.
    let ended = an_override(
        "z-2025-deal",
        "net:z",
        "cps",
        "effective_to = \"2026-10-14\"",
    );
    assert_eq!(
        check_overrides(&format!("{ended}{raise}")),
        (0, String::new())
    );
    assert_eq!(
        check_overrides(&format!("{raise}{deal}")),
        (0, String::new())
    );
    // A bare partner id covers that id on every network; not the reverse.
    let bare = an_override("z-bare", "z", "cps", "");
    let (_, w) = check_overrides(&format!("{bare}{deal}"));
    assert!(
        w.contains("`z-2025-deal` (overrides[1]) never applies: override `z-bare` (overrides[0])"),
        "{w}"
    );
    assert_eq!(check_overrides(&format!("{deal}{bare}")).1, "");
    // An override of a rule that does not name its partner, or outside the
    // rule's days.
    let w_override = an_override("w-leads", "net:x", "leads", "");
    let (code, w) = check_overrides(&w_override);
    assert_eq!(code, 0);
    assert_eq!(w, "warning: program `shop`: commission override `w-leads` (overrides[0]) never applies: rule `leads` does not price partner `net:x` (its partners and groups do not name it); name the rule that prices `net:x` in `rule`, or delete the override");
    let early = an_override("z-old", "net:z", "cps", "effective_to = \"2025-12-31\"");
    let (_, w) = check_overrides(&early);
    assert!(
        w.contains(
            "`z-old` (overrides[0]) never applies: rule `cps` is not in force on any of its days"
        ),
        "{w}"
    );
    // An override of a rule that is reached for its partner: no warning.
    let leads = an_override("w-leads", "net:w", "leads", "");
    let cps = an_override("v-leads-only-not", "net:w", "cps", "");
    assert_eq!(
        check_overrides(&format!("{leads}{cps}")),
        (0, String::new())
    );
}

/// QA31-A L2 and L3: claim `a` is credited to y in October, then the
/// network moves it to z. y's November statement only takes it back: its
/// name was empty (the claim now carries z's), and its reason said "the
/// commission paid here is taken back" when October had carried it below
/// the minimum payout, not paid it. The name now comes from y's October
/// statement, and the reason says "credited here" when October paid
/// nothing out ("paid here" when it did).
#[test]
fn a_take_back_only_statement_keeps_the_name_and_says_credited_when_nothing_was_paid() {
    for (minimum, paid) in [("25.00", false), ("0", true)] {
        let c = config(&format!("minimum_payout = \"{minimum}\"\n{CPS_EUR}"));
        let tmp = tempfile::tempdir().unwrap();
        let book = MemoryBook::new();
        let fxr = no_fx();
        let a = sale("a", "y", "2026-10-05T10:00:00Z", "100.00");
        let oct = reckon::payout::finalize(
            &inputs(&c, std::slice::from_ref(&a), &fxr, &book, tmp.path()),
            "2026-10",
        )
        .unwrap();
        assert_eq!(oct.total_payable, if paid { d("10.00") } else { d("0.00") });
        let mut moved = a;
        moved.partner_id = "z".into();
        moved.partner_name = Some("Partner z".into());
        let inp = inputs(&c, std::slice::from_ref(&moved), &fxr, &book, tmp.path());
        for nov in [
            reckon::payout::generate(&inp, "2026-11").unwrap(),
            reckon::payout::finalize(&inp, "2026-11").unwrap(),
        ] {
            let st = statements_in(&nov.dir);
            let y = st.iter().find(|s| s.partner_id == "y").unwrap();
            assert!(y.lines.is_empty());
            assert_eq!(
                y.partner_name.as_deref(),
                Some("Partner y"),
                "minimum {minimum}"
            );
            let reason = &y.adjustments[0].reason;
            let (said, not) = if paid {
                ("the commission paid here is taken back", "credited here")
            } else {
                ("the commission credited here is taken back", "paid here")
            };
            assert!(reason.contains(said) && !reason.contains(not), "{reason}");
            let files = read_dir(&nov.dir);
            let summary = String::from_utf8(files["summary.csv"].clone()).unwrap();
            assert!(summary.contains("\nawin:y,Partner y,"), "{summary}");
            let html = String::from_utf8(files["awin.y.html"].clone()).unwrap();
            assert!(html.contains("Partner y"), "{html}");
            assert!(html.contains(said), "{html}");
            let z = st.iter().find(|s| s.partner_id == "z").unwrap();
            assert_eq!(z.partner_name.as_deref(), Some("Partner z"));
        }
    }
}
