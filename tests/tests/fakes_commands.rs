//! `reckon-fakes`' commands on standard input: `restate <ad fake>`,
//! `throttle <fake> [N]`. Its
//! standard output carries only the JSON line that scripts read with `jq`
//! (README, "Trying your own config against the fakes"); confirmations go
//! to stderr, or to stdout with `--confirm-on-stdout` (for `reckon demo`).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use chrono::NaiveDate;
use reckon_tests::demo_world::World;
use reckon_tests::fakes::google_ads::wire::Level;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date literal")
}

/// Runs the fakes over a short story ending 2026-11-08, writes `commands`
/// on their stdin and closes it (they exit once they read everything).
fn fakes(extra: &[&str], commands: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reckon-fakes"))
        .args(["--days", "3", "--end", "2026-11-08"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reckon-fakes");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(commands.as_bytes()).expect("commands");
    drop(stdin);
    let out = child.wait_with_output().expect("reckon-fakes exits");
    assert!(out.status.success(), "{out:?}");
    out
}

const COMMANDS: &str =
    "restate google_ads\nrestate meta_ads\n\nrestate tiktok_ads\nrestate shopify\nhello\n";

/// QA16 F3: the confirmation of `restate google_ads` was printed on
/// stdout, after the JSON line, and `jq -r .urls.shopify fakes.json` then
/// failed ("parse error"). Confirmations and errors go to stderr; Meta and
/// TikTok can be restated too, all on the day before the last.
#[test]
fn restate_confirms_on_stderr_and_stdout_keeps_one_json_line() {
    let out = fakes(&[], COMMANDS);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("one JSON document");
    assert_eq!(v["to"], "2026-11-08");
    for p in ["google_ads", "meta_ads", "tiktok_ads"] {
        assert!(
            stderr.contains(&format!(
                "reckon-fakes: restated {p} 2026-11-07: the next pull"
            )),
            "{p}: {stderr}"
        );
    }
    assert!(
        stderr.contains("cannot restate \"shopify\": only google_ads, meta_ads and tiktok_ads"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown command \"hello\""), "{stderr}");
}

/// `reckon demo` waits for the confirmation on stdout: with
/// `--confirm-on-stdout` it is a line `restated DAY` after the JSON line.
#[test]
fn confirm_on_stdout_is_for_programs() {
    let out = fakes(&["--confirm-on-stdout"], "restate google_ads\n");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[1], "restated 2026-11-07");
}

/// A restatement changes what the fake serves for that day, and only
/// that day, on each ad fake.
#[test]
fn each_ad_fake_restates_the_day_before_the_last() {
    let world = World::start(42, 3, day("2026-11-08"));
    let (d, before) = (day("2026-11-07"), day("2026-11-06"));
    let rows = |p: &str, d: NaiveDate| match p {
        "google_ads" => world.google.truth(Level::Campaign, d, d),
        "meta_ads" => world.meta.truth(Level::Campaign, d, d),
        _ => world.tiktok.truth(Level::Campaign, d, d),
    };
    for p in ["google_ads", "meta_ads", "tiktok_ads"] {
        let (old, other) = (rows(p, d), rows(p, before));
        assert_eq!(world.restate(p), Some(d), "{p}");
        assert_ne!(rows(p, d), old, "{p}: the restated day changes");
        assert_eq!(rows(p, before), other, "{p}: other days do not");
    }
    assert_eq!(world.restate("cake"), None);
}

/// Soak QA18 F1: an operator could not rehearse throttling against
/// `reckon-fakes`. `throttle <affiliate> N` answers that fake's next N data
/// requests with its 429, then serves as before; the command is confirmed
/// on stderr, and a wrong one says what is allowed.
#[test]
fn throttle_makes_an_affiliate_fake_answer_429_then_recover() {
    use reckon_tests::demo_world::creds;
    let world = World::start(42, 3, day("2026-11-08"));
    assert!(world.throttle("impact", 2));
    assert!(!world.throttle("shopify", 2));
    let url = format!(
        "{}/Advertisers/{}/Actions?PageSize=10",
        world.urls["impact"],
        creds::IMPACT_SID
    );
    let auth = reckon_tests::fakes::affiliate::basic_auth(creds::IMPACT_SID, creds::IMPACT_TOKEN);
    let statuses: Vec<u16> = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let client = reqwest::Client::new();
            let mut out = Vec::new();
            for _ in 0..3 {
                let r = client
                    .get(&url)
                    .header("authorization", &auth)
                    .send()
                    .await
                    .expect("the fake answers");
                out.push(r.status().as_u16());
            }
            out
        });
    // Then it answers as before (here: its 400 for a query without dates).
    assert_eq!(statuses[..2], [429, 429]);
    assert_ne!(statuses[2], 429);

    let out = fakes(
        &[],
        "throttle everflow 4\nthrottle cake\nthrottle meta_ads\nthrottle shopify\nthrottle impact x\n",
    );
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    for want in [
        "throttling everflow: its next 4 data requests get its rate-limit error",
        "throttling cake: its next 3 data requests get its rate-limit error",
        "throttling meta_ads: its next 3 data requests get its rate-limit error",
        "cannot throttle \"shopify\": only impact, everflow, cake, partnerstack, google_ads, meta_ads and tiktok_ads",
        "throttle impact: \"x\" is not a count",
    ] {
        assert!(stderr.contains(want), "{want}\n{stderr}");
    }
}

/// `throttle` on an ad fake: its next N data requests get the platform's
/// own rate-limit error (Google's 429 `RESOURCE_EXHAUSTED`, Meta's
/// throttling codes, TikTok's 40100), then it serves as before.
#[test]
fn throttle_makes_an_ad_fake_answer_its_rate_limit_error_then_recover() {
    use plugin_api::protocol::HttpRequest;
    use reckon_tests::demo_world::creds;
    use reckon_tests::fakes::{google_ads, meta_ads, tiktok_ads};
    use std::sync::atomic::Ordering::SeqCst;

    let world = World::start(42, 3, day("2026-11-08"));
    for p in ["google_ads", "meta_ads", "tiktok_ads"] {
        assert!(world.throttle(p, 2), "{p}");
    }
    let request =
        |method: &str, url: String, headers: &[(&str, &str)], body: Option<&str>| HttpRequest {
            id: 1,
            method: method.into(),
            url,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.map(str::to_owned),
            idempotent: true,
            label: String::new(),
        };

    let g = &world.google.config;
    let mut google = google_ads::bridge(world.google.clone(), g.credentials.clone());
    let mut headers = vec![("developer-token", g.credentials.developer_token.as_str())];
    if let Some(login) = &g.login_customer_id {
        headers.push(("login-customer-id", login.as_str()));
    }
    let search = request(
        "POST",
        format!(
            "{}/v24/customers/{}/googleAds:searchStream",
            world.urls["google_ads"], g.customer_id
        ),
        &headers,
        Some(
            r#"{"query":"SELECT campaign.id, metrics.cost_micros FROM campaign WHERE segments.date BETWEEN '2026-11-07' AND '2026-11-07'"}"#,
        ),
    );
    let google_statuses: Vec<u16> = (0..3).map(|_| google(&search).status).collect();
    assert_eq!(google_statuses, [429, 429, 200]);
    assert_eq!(world.google.quota_errors_sent.load(SeqCst), 2);

    let mut meta = meta_ads::bridge(world.meta.clone(), creds::META_TOKEN);
    let insights = request(
        "GET",
        format!(
            "{}/v24.0/act_{}/insights",
            world.urls["meta_ads"], world.meta.config.account_id
        ),
        &[],
        None,
    );
    for _ in 0..3 {
        meta(&insights);
    }
    assert_eq!(world.meta.throttle_errors_sent.load(SeqCst), 2);

    let t = &world.tiktok.config;
    let mut tiktok = tiktok_ads::bridge(world.tiktok.clone(), creds::TIKTOK_TOKEN);
    let report = request(
        "GET",
        format!(
            "{}/open_api/v1.3/report/integrated/get/?advertiser_id={}",
            world.urls["tiktok_ads"], t.advertiser_id
        ),
        &[],
        None,
    );
    let codes: Vec<serde_json::Value> = (0..3)
        .map(|_| {
            serde_json::from_slice::<serde_json::Value>(&tiktok(&report).body).unwrap()["code"]
                .clone()
        })
        .collect();
    assert_eq!(codes[..2], [40100, 40100]);
    assert_ne!(codes[2], 40100);
    assert_eq!(world.tiktok.rate_limits_sent.load(SeqCst), 2);
}

/// QA36b L3: `--days 0` and an `--end` in the future were accepted, a
/// story no sync could read; refused as `reckon demo` refuses them.
#[test]
fn a_story_of_no_days_or_in_the_future_is_refused() {
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    for (args, want) in [
        (
            vec!["--days", "0"],
            "--days 0: give 1 to 3650 days of sales",
        ),
        (vec!["--end", &tomorrow[..]], "is in the future"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_reckon-fakes"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run reckon-fakes");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
