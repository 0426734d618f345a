//! Partner ids and names as networks send them, of any length and with any
//! characters (QA10 L6): statement files get names every filesystem takes,
//! and what people read cannot be reordered by a bidi override.
//!
//! Before the fix, a payable claim of partner `"/" × 250` failed the whole
//! period: `statements generate` exited 1 with `error: create
//! <out>/statements/shop-us/.2026-08.staging/impact.%2F%2F…%2F.json: File
//! name too long (os error 36)`.

use reckon::payout::model::Statement;
use reckon::payout::render;
use reckon::reconcile::synth::{generate, SynthSpec};
use reckon::store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The config: the synthetic store's program, paying 10 %.
fn config() -> String {
    format!(
        "{}{}{}",
        r#"[daemon]
data_dir = "data"
output_dir = "out"

"#,
        reckon_tests::SYNTH_PROGRAM,
        r#"
[programs.commission]
payout_currency = "USD"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#
    )
}

fn reckon(cfg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .expect("run reckon")
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

const SLASHES: usize = 250;
const SPOOF: &str = "evil\u{202E}gnp.exe\nfake row";

/// The partner ids the seeded month's partners are renamed to.
fn renamed(partner: &str) -> Option<String> {
    let shared = "x".repeat(300);
    Some(match partner {
        "partner-1" => "/".repeat(SLASHES),
        "partner-2" => "合".repeat(30),
        "partner-3" => format!("{shared}-a"),
        "partner-4" => format!("{shared}-b"),
        "partner-5" => SPOOF.to_string(),
        _ => return None,
    })
}

fn statements(dir: &Path) -> BTreeMap<String, Statement> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, render::read_json_file(&bytes).unwrap().0)
        })
        .collect()
}

#[test]
fn partner_ids_too_long_for_a_file_name_are_paid_and_verified_under_shortened_names() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("reckon.toml");
    std::fs::write(&cfg, config()).unwrap();
    let mut spec = SynthSpec::benchmark(400, 7);
    spec.start = chrono::DateTime::parse_from_rfc3339("2026-08-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut data = generate(&spec);
    for c in &mut data.claims {
        if let Some(id) = renamed(&c.partner_id) {
            if id == SPOOF {
                c.partner_name = Some(format!("Acme {SPOOF}"));
            }
            c.partner_id = id;
        }
    }
    let store = Store::open(&dir.path().join("data")).unwrap();
    reckon_tests::store_synth(&store, &data, spec.start);
    drop(store);

    let period = ["--program", "shop-us", "--period", "2026-08"];
    let run = |cmd: &str| reckon(&cfg, &[&["statements", cmd][..], &period].concat());
    let out = ok(run("generate"), "generate");
    assert!(out.contains("shop-us 2026-08: draft version 1"), "{out}");
    let out = ok(run("finalize"), "finalize");
    assert!(out.contains("finalised version 2"), "{out}");
    let out = ok(run("verify"), "verify");
    let period_dir = dir.path().join("out/statements/shop-us/2026-08");
    // It names the directory it checked (finance QA16 L6: a copy).
    assert!(
        out.contains(&format!("files verified in {}", period_dir.display())),
        "{out}"
    );

    let names: Vec<String> = std::fs::read_dir(&period_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for n in &names {
        assert!(n.len() <= 255, "{n}: {} bytes", n.len());
    }
    let all = statements(&period_dir);
    let long_ones: Vec<&String> = all.keys().filter(|n| n.contains('~')).collect();
    let mut paid: Vec<&str> = long_ones
        .iter()
        .map(|n| all[*n].partner_id.as_str())
        .collect();
    paid.sort();
    paid.dedup();
    // Every renamed partner that was paid a long id has one shortened
    // name per network, and the JSON names the whole id as sent.
    for id in ["/".repeat(SLASHES), "合".repeat(30)] {
        assert!(
            paid.contains(&id.as_str()),
            "no statement for {id}: {names:?}"
        );
    }
    let shared: Vec<&str> = paid
        .iter()
        .copied()
        .filter(|p| p.starts_with("xxx"))
        .collect();
    assert_eq!(shared.len(), 2, "{paid:?}");
    for n in &long_ones {
        let s = &all[*n];
        assert_eq!(**n, format!("{}.json", render::statement_stem(s)));
        assert!(
            n.starts_with(&format!("{}.", s.network.as_deref().unwrap())),
            "{n}"
        );
    }
    // Ids that fit keep the names they always had.
    let plain: Vec<&Statement> = all
        .iter()
        .filter(|(_, s)| s.partner_id.starts_with("partner-"))
        .map(|(_, s)| s)
        .collect();
    assert!(plain.len() > 10, "{names:?}");
    for s in plain {
        let name = format!("{}.{}.json", s.network.as_deref().unwrap(), s.partner_id);
        assert!(all.contains_key(&name), "{name} missing: {names:?}");
    }

    // `generate` of the finalised period writes the same files back.
    let before = reckon_tests_tree(&period_dir);
    std::fs::remove_file(period_dir.join(long_ones[0])).unwrap();
    let out = ok(run("generate"), "generate again");
    assert!(out.contains("already finalised"), "{out}");
    assert_eq!(reckon_tests_tree(&period_dir), before);
    ok(run("verify"), "verify again");

    // `show`: the override and the newline in the id are shown as escapes,
    // one line per statement.
    let out = ok(run("show"), "show");
    assert!(!out.contains('\u{202E}'), "{out}");
    let spoof_lines: Vec<&str> = out.lines().filter(|l| l.contains("evil")).collect();
    let paid_on = all.values().filter(|s| s.partner_id == SPOOF).count();
    assert!(paid_on > 0, "{out}");
    assert_eq!(spoof_lines.len(), paid_on, "one line a statement: {out}");
    for l in spoof_lines {
        assert!(l.contains(":evil<U+202E>gnp.exe<U+000A>fake row "), "{out}");
    }
    assert!(!out.lines().any(|l| l.starts_with("fake row")), "{out}");
    // The statement keeps the id and name as the network sent them; its
    // HTML (format 8) shows the escapes.
    let (name, s) = all
        .iter()
        .find(|(_, s)| s.partner_id == SPOOF)
        .expect("the spoofing partner's statement");
    assert_eq!(s.partner_name.as_deref(), Some(&*format!("Acme {SPOOF}")));
    let html = std::fs::read_to_string(period_dir.join(name.replace(".json", ".html"))).unwrap();
    assert!(!html.contains('\u{202E}'), "{html}");
    assert!(
        html.contains(
            "Payout statement — Acme evil&lt;U+202E&gt;gnp.exe&lt;U+000A&gt;fake row</h1>"
        ),
        "{html}"
    );
}

fn reckon_tests_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}
