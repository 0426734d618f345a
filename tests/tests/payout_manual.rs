//! Manual adjustments (QA34c M4): finance corrects what Reckon cannot
//! compute (a rule that was wrong when lines were paid reprices nothing
//! already paid) with `[[programs.commission.manual_adjustments]]`: an
//! amount, a reason and the lines it corrects, paid once on one payee's
//! statement of one period (also to a payee with nothing else that
//! period), in its totals; a config mistake is an error naming the file
//! and key; `config check` warns about one no statement will ever pay,
//! and about one a finalised period paid that was edited since.

mod payout_support;

use payout_support::*;
use reckon::payout::book::MemoryBook;
use reckon::payout::config::CommissionConfig;
use reckon::payout::model::Statement;
use reckon::reconcile::model::Decision;

/// Connectors `shop` (orders) and `awin` (claims) and program `shop`, 10 %
/// of EUR bases paid in EUR, monthly, minimum payout 50.00, then
/// `manual` (`[[programs.commission.manual_adjustments]]` tables).
fn config_text(manual: &str) -> String {
    shop_config("minimum_payout = \"50.00\"\n", manual)
}

/// A manual adjustment table.
fn manual(id: &str, partner: &str, period: &str, amount: &str, extra: &str) -> String {
    format!(
        "\n[[programs.commission.manual_adjustments]]\nid = {id:?}\npartner = {partner:?}\nperiod = {period:?}\namount = {amount:?}\nreason = \"October lines paid at 12 % instead of 13 % (ticket FIN-88)\"\n{extra}"
    )
}

/// The parsed config (checked as `reckon config check` checks it) and its
/// program's commission.
fn parsed(manual: &str) -> (reckon::config::Config, CommissionConfig) {
    let cfg = reckon::config::parse(&config_text(manual), "reckon.toml").unwrap();
    let c = cfg.programs[0]
        .commission
        .clone()
        .unwrap()
        .with_default_timezone(cfg.daemon.timezone.0);
    (cfg, c)
}

fn october() -> Vec<Decision> {
    vec![
        sale("C1", "p1", "2026-10-05T10:00:00Z", "500.00"),
        sale("C2", "p2", "2026-10-06T10:00:00Z", "600.00"),
    ]
}

fn november() -> Vec<Decision> {
    let mut all = october();
    all.extend([
        sale("C3", "p1", "2026-11-03T10:00:00Z", "1000.00"),
        sale("C4", "p2", "2026-11-04T10:00:00Z", "400.00"),
    ]);
    all
}

fn assert_adds_up(s: &Statement) {
    let t = &s.totals;
    let lines: rust_decimal::Decimal = s.lines.iter().map(|l| l.commission).sum();
    let adjustments: rust_decimal::Decimal = (s.adjustments.iter().map(|a| a.amount))
        .chain(s.bonus_adjustments.iter().map(|a| a.amount))
        .chain(s.manual_adjustments.iter().map(|a| a.amount))
        .sum();
    assert_eq!(t.lines, lines, "{}", s.statement_id);
    assert_eq!(t.adjustments, adjustments, "{}", s.statement_id);
    assert_eq!(
        t.subtotal,
        t.lines + t.adjustments + t.bonuses + t.carried_in,
        "{}",
        s.statement_id
    );
    assert_eq!(
        t.total_payable + t.carried_out,
        t.subtotal,
        "{}",
        s.statement_id
    );
}

/// A correction of p1's October lines paid on p1's November statement
/// with its reason and the line it corrects, in the JSON, the CSV and the
/// HTML, in the totals; a negative one that leaves p2 below the minimum
/// payout (carried forward); p3, with nothing else in November, gets a
/// statement for its own. Finalised as drafted, and never repeated in
/// December. The decisions read one by one, as one slice, or streamed
/// partner by partner give the same files.
#[test]
fn a_manual_adjustment_is_paid_once_on_its_payees_statement_of_its_period() {
    let text = [
        manual(
            "fix-2026-10-p1-rate",
            "awin:p1",
            "2026-11",
            "12.34",
            "refers_to = [\"shop/2026-10/awin:p1#1\"]\n",
        ),
        manual("take-back-p2", "awin:p2", "2026-11", "-30.00", ""),
        manual("goodwill-p3", "awin:p3", "2026-11", "5.00", ""),
        manual("later-p1", "awin:p1", "2027-01", "1.00", ""),
    ]
    .concat();
    let (_, c) = parsed(&text);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let oct = october();
    reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();

    let nov = november();
    let r = reckon::payout::generate(&inputs(&c, &nov, &rates, &b, tmp.path()), "2026-11").unwrap();
    assert_eq!(
        (r.partners, r.lines, r.adjustments, r.manual_adjustments),
        (3, 2, 0, 3)
    );
    let draft = read_dir(&r.dir);
    let s = statements_in(&r.dir);
    for st in s.values() {
        assert_adds_up(st);
    }

    let p1 = &s["p1"];
    let [m] = p1.manual_adjustments.as_slice() else {
        panic!("{p1:?}")
    };
    assert_eq!(
        (m.line_no, m.id.as_str(), m.amount, m.reason.as_str()),
        (
            2,
            "fix-2026-10-p1-rate",
            d("12.34"),
            "October lines paid at 12 % instead of 13 % (ticket FIN-88)"
        )
    );
    assert_eq!(m.refers_to, ["shop/2026-10/awin:p1#1"]);
    assert_eq!(
        (
            p1.totals.lines,
            p1.totals.adjustments,
            p1.totals.total_payable
        ),
        (d("100.00"), d("12.34"), d("112.34"))
    );
    let json = String::from_utf8(draft["awin.p1.json"].clone()).unwrap();
    assert!(
        json.contains(r#""manual_adjustments":[{"line_no":2,"id":"fix-2026-10-p1-rate","amount":"12.34","reason":"October lines paid at 12 % instead of 13 % (ticket FIN-88)","refers_to":["shop/2026-10/awin:p1#1"]}],"totals":"#),
        "{json}"
    );
    let rows = rows_by_name(&draft["awin.p1.csv"], "manual_adjustment");
    let [row] = rows.as_slice() else {
        panic!("{rows:?}")
    };
    assert_eq!(
        [
            row["line_no"].as_str(),
            row["rule_id"].as_str(),
            row["amount"].as_str(),
            row["currency"].as_str(),
            row["refers_to"].as_str(),
            row["note"].as_str(),
        ],
        [
            "2",
            "fix-2026-10-p1-rate",
            "12.34",
            "EUR",
            "shop/2026-10/awin:p1#1",
            "October lines paid at 12 % instead of 13 % (ticket FIN-88)"
        ]
    );
    let total = |csv: &[u8], name: &str| {
        let text = std::str::from_utf8(csv).unwrap();
        text.lines()
            .map(cells)
            .find(|r| r[0] == name)
            .map(|r| r[15].clone())
            .unwrap()
    };
    assert_eq!(total(&draft["awin.p1.csv"], "total_adjustments"), "12.34");
    let html = String::from_utf8(draft["awin.p1.html"].clone()).unwrap();
    assert!(html.contains("<h2>Manual adjustments</h2>"), "{html}");
    assert!(
        html.contains("<tr><td class=\"n\">2</td><td>fix-2026-10-p1-rate</td><td>October lines paid at 12 % instead of 13 % (ticket FIN-88)</td><td>shop/2026-10/awin:p1 line 1</td><td class=\"n\">12.34</td></tr>"),
        "{html}"
    );

    // Negative: 40.00 - 30.00 = 10.00, below the minimum: carried.
    let p2 = &s["p2"];
    assert_eq!(p2.manual_adjustments[0].amount, d("-30.00"));
    assert_eq!(
        (
            p2.totals.lines,
            p2.totals.adjustments,
            p2.totals.subtotal,
            p2.totals.total_payable,
            p2.totals.carried_out
        ),
        (d("40.00"), d("-30.00"), d("10.00"), d("0.00"), d("10.00"))
    );
    // A payee with only a manual adjustment.
    let p3 = &s["p3"];
    assert!(p3.lines.is_empty() && p3.adjustments.is_empty());
    assert_eq!(p3.manual_adjustments[0].line_no, 1);
    assert_eq!(
        (p3.totals.adjustments, p3.totals.carried_out),
        (d("5.00"), d("5.00"))
    );
    assert!(draft.contains_key("awin.p3.json"), "{:?}", draft.keys());

    // The same files from one slice, and from partitions (p3 has none).
    let tmp2 = tempfile::tempdir().unwrap();
    let b2 = MemoryBook::new();
    reckon::payout::finalize(&inputs(&c, &oct, &rates, &b2, tmp2.path()), "2026-10").unwrap();
    let r2 = reckon::payout::generate(&inputs_slice(&c, &nov, &rates, &b2, tmp2.path()), "2026-11")
        .unwrap();
    assert_eq!(read_dir(&r2.dir), draft);
    let tmp3 = tempfile::tempdir().unwrap();
    let b3 = MemoryBook::new();
    reckon::payout::finalize(&inputs(&c, &oct, &rates, &b3, tmp3.path()), "2026-10").unwrap();
    let parts: Vec<Result<_, _>> = ["p1", "p2"]
        .iter()
        .map(|p| {
            let ds: Vec<Decision> = nov.iter().filter(|x| x.partner_id == *p).cloned().collect();
            Ok((format!("awin:{p}"), ds))
        })
        .collect();
    let none: Vec<Decision> = Vec::new();
    let r3 = reckon::payout::lifecycle::generate_partitioned(
        &inputs(&c, &none, &rates, &b3, tmp3.path()),
        "2026-11",
        Some("EUR".into()),
        &mut parts.into_iter(),
    )
    .unwrap();
    assert_eq!(read_dir(&r3.dir), draft);

    // Finalised as drafted, hashed like the rest.
    let r = reckon::payout::finalize(&inputs(&c, &nov, &rates, &b, tmp.path()), "2026-11").unwrap();
    let fin = statements_in(&r.dir);
    for (p, st) in &fin {
        assert_eq!(st.manual_adjustments, s[p].manual_adjustments, "{p}");
        assert_eq!(st.totals, s[p].totals, "{p}");
    }
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    // December: never again (p1 has nothing else, p2 and p3 only their
    // balances).
    let r = reckon::payout::generate(&inputs(&c, &nov, &rates, &b, tmp.path()), "2026-12").unwrap();
    let dec = statements_in(&r.dir);
    assert_eq!(dec.keys().collect::<Vec<_>>(), ["p2", "p3"]);
    assert!(dec.values().all(|s| s.manual_adjustments.is_empty()));
    assert_eq!(r.manual_adjustments, 0);
    assert_eq!(
        (dec["p3"].totals.carried_in, dec["p3"].totals.carried_out),
        (d("5.00"), d("5.00"))
    );
    for (name, bytes) in read_dir(&r.dir) {
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.to_lowercase().contains("manual"), "{name}: {text}");
    }
}

/// Each mistake is a config error naming the file and the key, all in one
/// round: a duplicate id, a zero amount, a period that is not the
/// program's kind or does not exist, an amount finer than the payout
/// currency, a bare partner id, a network not among the program's claims,
/// an empty reason, a `refers_to` that names no line.
#[test]
fn manual_adjustment_mistakes_are_config_errors_naming_file_and_key() {
    let text = config_text(
        &[
            manual("a", "awin:p1", "2026-11", "1.00", ""),
            manual("a", "awin:p1", "2026-11", "0", ""),
            manual("b", "awin:p1", "2026-W48", "1.00", ""),
            manual("c", "awin:p1", "2026-13", "1.234", ""),
            manual("d", "p1", "2026-11", "1.00", ""),
            manual("e", "awn:p1", "2026-11", "1.00", ""),
            manual(
                "f",
                "awin:p1",
                "2026-11",
                "1.00",
                "refers_to = [\"line 3\"]\n",
            )
            .replace("reason = \"October", "reason = \" \"\n#\"October"),
        ]
        .concat(),
    );
    let e = reckon::config::parse(&text, "reckon.toml")
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = e.lines().collect();
    let expect = [
        (
            "manual_adjustments[1].id",
            "manual adjustment id `a` is used twice",
        ),
        (
            "manual_adjustments[1].amount",
            "amount is 0; write the amount to pay (negative to take money back)",
        ),
        (
            "manual_adjustments[2].period",
            "period `2026-W48` is not a monthly period; write YYYY-MM, e.g. 2026-11",
        ),
        (
            "manual_adjustments[3].period",
            "period `2026-13`: there is no month 13",
        ),
        (
            "manual_adjustments[3].amount",
            "amount 1.234 is finer than EUR's minor unit (2 decimals); write e.g. \"1.23\"",
        ),
        (
            "manual_adjustments[4].partner",
            "\"p1\" is not a payee: write `network:partner id`",
        ),
        (
            "manual_adjustments[5].partner",
            "`awn` is not one of this program's claims connectors (`awin`)",
        ),
        ("manual_adjustments[6].reason", "reason is empty"),
        (
            "manual_adjustments[6].refers_to",
            "refers_to[0] \"line 3\" names no statement line",
        ),
    ];
    assert_eq!(lines.len(), expect.len(), "{e}");
    for (line, (key, message)) in lines.iter().zip(expect) {
        assert!(line.starts_with("reckon.toml:"), "{line}");
        assert!(
            line.contains(&format!("`programs[0].commission.{key}`")),
            "{key}: {line}"
        );
        assert!(line.contains(message), "{message}: {line}");
    }
    // A float is refused by the decimal reader.
    let float = config_text(&manual("a", "awin:p1", "2026-11", "1.00", ""))
        .replace("amount = \"1.00\"", "amount = 1.5");
    let e = reckon::config::parse(&float, "reckon.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("1.5 is a float"), "{e}");
}

/// `config check` (the settled checks over the store) warns about each
/// manual adjustment no statement will ever pay: one of a period
/// finalised without it, one of a period before the latest finalised one;
/// not about one of an open period. `generate` says so too, and `finalize`
/// of a period warns about one of an earlier period it leaves unpaid.
/// One a finalised period paid, edited in place since, is named with what
/// was paid; removing it is no change; `show --terms` lists it.
#[test]
fn config_check_warns_about_manual_adjustments_never_paid_or_edited_after_payment() {
    let (cfg, c) = parsed("");
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let nov = november();
    reckon::payout::finalize(&inputs(&c, &nov, &rates, &b, tmp.path()), "2026-10").unwrap();
    reckon::payout::finalize(&inputs(&c, &nov, &rates, &b, tmp.path()), "2026-11").unwrap();
    assert!(reckon::config::settled::terms(&b, &cfg).unpaid.is_empty());

    let text = [
        manual("late", "awin:p1", "2026-11", "12.34", ""),
        manual("older", "awin:p2", "2026-09", "-3.00", ""),
        manual("open", "awin:p1", "2026-12", "1.00", ""),
        manual("next", "awin:p1", "2027-01", "1.00", ""),
    ]
    .concat();
    let (cfg, c) = parsed(&text);
    let unpaid = reckon::config::settled::terms(&b, &cfg).unpaid;
    assert_eq!(
        unpaid,
        [
            "manual adjustment `late` of program `shop` (12.34 to `awin:p1` on 2026-11) is never paid: period 2026-11 was finalised without it; to pay it, give it a period not finalised yet (the first is 2026-12)",
            "manual adjustment `older` of program `shop` (-3.00 to `awin:p2` on 2026-09) is never paid: period 2026-09 starts before 2026-11, which is finalised, so no statement of 2026-09 can be generated any more; to pay it, give it a period not finalised yet (the first is 2026-12)",
        ]
    );
    let r = reckon::payout::generate(&inputs(&c, &nov, &rates, &b, tmp.path()), "2026-12").unwrap();
    for u in &unpaid {
        assert!(r.warnings.contains(u), "{u}: {:?}", r.warnings);
    }
    // Finalising 2027-01 leaves `open` (2026-12) unpaid for good.
    let r = reckon::payout::finalize(&inputs(&c, &nov, &rates, &b, tmp.path()), "2027-01").unwrap();
    assert!(
        r.warnings.iter().any(|w| w.starts_with("manual adjustment `open` of program `shop` (1.00 to `awin:p1` on 2026-12) is never paid: period 2026-12 starts before 2027-01")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.manual_adjustments, 1);
}

/// The terms recorded at finalise list the manual adjustments the period
/// paid (`statements show --terms`); `config check` names one edited in
/// place since with what was paid and what it says now; removing it from
/// the config afterwards is not a change.
#[test]
fn the_terms_of_a_finalised_period_keep_its_manual_adjustments() {
    let paid = manual(
        "fix",
        "awin:p1",
        "2026-10",
        "12.34",
        "refers_to = [\"shop/2026-09/awin:p1#1\"]\n",
    );
    let (cfg, c) = parsed(&paid);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let oct = october();
    let terms = reckon::payout::terms::TermsInForce::of(
        &cfg.programs[0],
        &c,
        None,
        &reckon::fx::FxTable::empty(),
    );
    reckon::payout::lifecycle::finalize_with_terms(
        &inputs(&c, &oct, &rates, &b, tmp.path()),
        "2026-10",
        None,
        &terms,
    )
    .unwrap();
    let recorded = reckon::payout::terms::load_terms(&b, "shop", "2026-10")
        .unwrap()
        .unwrap();
    assert_eq!(
        recorded.used.manual_adjustments.iter().collect::<Vec<_>>(),
        ["fix"]
    );
    let shown = reckon::payout::terms::describe(&recorded);
    assert!(
        shown.contains("  manual adjustment fix: 12.34 to awin:p1 on 2026-10, reason \"October lines paid at 12 % instead of 13 % (ticket FIN-88)\", refers_to shop/2026-09/awin:p1#1\n"),
        "{shown}"
    );
    let check = |text: &str| {
        let (cfg, _) = parsed(text);
        reckon::config::settled::terms(&b, &cfg)
    };
    let same = check(&paid);
    assert!(same.edits.is_empty() && same.unpaid.is_empty(), "{same:?}");
    let edited = check(&paid.replace("\"12.34\"", "\"13.34\""));
    let [edit] = edited.edits.as_slice() else {
        panic!("{edited:?}")
    };
    assert!(
        edit.starts_with("manual adjustment `fix` of program `shop`: 12.34 to awin:p1 on 2026-10 when 2026-10 was finalised, 13.34 to awin:p1 on 2026-10 now; a manual adjustment is paid once, on its period's statement: what was paid stays as paid, and the edit pays nothing"),
        "{edit}"
    );
    assert!(edited.unpaid.is_empty(), "{edited:?}");
    let removed = check("");
    assert!(removed.edits.is_empty(), "{removed:?}");
}

/// The same through the binary: `reckon config check` (no daemon holding
/// the store) warns about a manual adjustment of a period finalised
/// without it, exits 0; `statements finalize` of the next period warns
/// too, and pays the one of its own period, which `statements show
/// --terms` lists.
#[test]
fn reckon_config_check_warns_about_a_manual_adjustment_of_a_finalised_period() {
    use reckon::reconcile::synth::{generate, SynthSpec};
    use std::process::{Command, Output};
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["example", "orders"]);
    std::fs::create_dir(dir.path().join("drop")).unwrap();
    let config = dir.path().join("reckon.toml");
    let text = format!(
        r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
output_dir = "out"
listen = "127.0.0.1:{}"
timezone = "UTC"

{}[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"
enabled = false
[connectors.settings]
mode = "files"
directory = "drop"

[[programs]]
id = "shop-us"
currency = "USD"
claims = ["impact"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7

[programs.commission]
payout_currency = "USD"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#,
        reckon_tests::free_port(),
        reckon_tests::example_affiliate("impact", "MANUAL_TEST_KEY"),
    );
    std::fs::write(&config, &text).unwrap();
    let reckon = |args: &[&str]| -> Output {
        Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("MANUAL_TEST_KEY", "k")
            .env_remove("RECKON_CONFIG")
            .output()
            .expect("run reckon")
    };
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut spec = SynthSpec::benchmark(200, 7);
    spec.start = at("2026-08-01T00:00:00Z");
    let store = reckon::store::Store::open(&dir.path().join("data")).unwrap();
    reckon_tests::store_synth(&store, &generate(&spec), spec.start);
    drop(store);
    let out = reckon(&[
        "statements",
        "finalize",
        "--program",
        "shop-us",
        "--period",
        "2026-08",
    ]);
    assert!(out.status.success(), "{}", s(&out.stderr));
    let summary = std::fs::read_to_string(
        dir.path()
            .join("out/statements/shop-us/2026-08/summary.csv"),
    )
    .unwrap();
    // A payee of August, as statements name it.
    let payee = summary
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .unwrap()
        .to_string();
    let manual = |id: &str, period: &str| {
        format!(
            "\n[[programs.commission.manual_adjustments]]\nid = \"{id}\"\npartner = \"{payee}\"\nperiod = \"{period}\"\namount = \"12.34\"\nreason = \"August lines paid at 10 % instead of 11 % (FIN-88)\"\nrefers_to = [\"shop-us/2026-08/{payee}#1\"]\n"
        )
    };
    std::fs::write(
        &config,
        format!(
            "{text}{}{}",
            // Its own period may not be referred to (QA38c C-M2): July's.
            manual("late", "2026-08").replace("/2026-08/", "/2026-07/"),
            manual("fix", "2026-09")
        ),
    )
    .unwrap();
    let want = format!("warning: manual adjustment `late` of program `shop-us` (12.34 to `{payee}` on 2026-08) is never paid: period 2026-08 was finalised without it; to pay it, give it a period not finalised yet (the first is 2026-09)");
    let out = reckon(&["config", "check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        s(&out.stdout),
        s(&out.stderr)
    );
    assert!(s(&out.stderr).contains(&want), "{}", s(&out.stderr));
    assert!(!s(&out.stderr).contains("`fix`"), "{}", s(&out.stderr));

    let out = reckon(&[
        "statements",
        "finalize",
        "--program",
        "shop-us",
        "--period",
        "2026-09",
    ]);
    assert!(out.status.success(), "{}", s(&out.stderr));
    // 2026-09 is finalised now.
    let want = want.replace("(the first is 2026-09)", "(the first is 2026-10)");
    assert!(s(&out.stderr).contains(&want), "{}", s(&out.stderr));
    assert!(
        s(&out.stdout).contains(", 1 manual adjustment(s), total payable"),
        "{}",
        s(&out.stdout)
    );
    let out = reckon(&[
        "statements",
        "show",
        "--program",
        "shop-us",
        "--period",
        "2026-09",
        "--terms",
    ]);
    assert!(
        s(&out.stdout).contains(&format!("  manual adjustment fix: 12.34 to {payee} on 2026-09, reason \"August lines paid at 10 % instead of 11 % (FIN-88)\", refers_to shop-us/2026-08/{payee}#1\n")),
        "{}{}",
        s(&out.stdout),
        s(&out.stderr)
    );
}
