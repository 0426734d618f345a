//! `reckon-fakes`: serves the demo's story from loopback fakes of every
//! platform, for `reckon demo` (or for trying connectors by hand).
//!
//! Usage: `reckon-fakes [--seed S] [--days N] [--end YYYY-MM-DD]
//! [--confirm-on-stdout]`
//!
//! Prints one JSON line on stdout once every fake listens:
//! `{"from": .., "to": .., "urls": {"shopify": "http://127.0.0.1:..", ...},
//!   "google": {"customer_id", "client_id", ...}, ...}`,
//! then serves until its standard input closes (the parent exits) or it is
//! killed. A line `restate google_ads` (or `meta_ads`, `tiktok_ads`) on
//! stdin restates the story's second-to-last day on that fake; the
//! confirmation goes to stderr, so stdout holds only the JSON line (QA16
//! F3: `jq` read the confirmation as a second document).
//! `--confirm-on-stdout` prints it as a line `restated YYYY-MM-DD` on
//! stdout instead, for `reckon demo`, which waits for it there. A line
//! `throttle impact 5` (or any other fake but shopify; the count defaults
//! to 3) makes that fake answer its next data requests with the platform's
//! rate-limit error, to rehearse throttling (confirmed on stderr).

use chrono::{Duration, NaiveDate, Utc};
use reckon_tests::demo_world::{creds, World};

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => {
            let v = args
                .get(i + 1)
                .ok_or_else(|| format!("{name} needs a value"))?;
            v.parse()
                .map(Some)
                .map_err(|_| format!("{name}: cannot parse {v:?}"))
        }
    }
}

const USAGE: &str =
    "usage: reckon-fakes [--seed S] [--days N] [--end YYYY-MM-DD] [--confirm-on-stdout]

Serves the demo's story (a shop, four affiliate networks, three ad
networks) from loopback fakes of each platform's API. Prints one JSON line
with every fake's URL and credentials once they listen, then serves until
its standard input closes.

Commands on standard input, one a line:
  restate google_ads   restate the day before the last (--end - 1) on the
  restate meta_ads     fake: its figures change on the next pull of that
  restate tiktok_ads   day (confirmed on stderr)
  throttle impact [N]  answer the next N (default 3) data requests of a
                       fake (impact, everflow, cake, partnerstack,
                       google_ads, meta_ads, tiktok_ads) with the
                       platform's rate-limit error (confirmed on stderr)

  --seed S             story seed (default 42)
  --days N             days of sales (default 45)
  --end YYYY-MM-DD     last day of sales (default 20 days ago)
  --confirm-on-stdout  confirm a command with a line `restated DAY` on
                       stdout instead (for programs, e.g. `reckon demo`)";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    // Values never start with `-`: anything else that does is unknown.
    if let Some(bad) = args.iter().skip(1).find(|a| {
        a.starts_with('-')
            && !["--seed", "--days", "--end", "--confirm-on-stdout"].contains(&a.as_str())
    }) {
        eprintln!("reckon-fakes: unknown option {bad}\n{USAGE}");
        std::process::exit(2);
    }
    let parsed = (|| -> Result<(u64, u32, NaiveDate), String> {
        let seed = arg(&args, "--seed")?.unwrap_or(42);
        let days = arg(&args, "--days")?.unwrap_or(45);
        let today = Utc::now().date_naive();
        let end = arg(&args, "--end")?.unwrap_or_else(|| default_end(today));
        // As `reckon demo` refuses them (QA36b L3: accepted without a word,
        // a story nobody could sync).
        if !(1..=3650).contains(&days) {
            return Err(format!("--days {days}: give 1 to 3650 days of sales"));
        }
        if end > today {
            return Err(format!(
                "--end {end} is in the future (today is {today}): a sync pulls only days that have happened. Give a day up to today, or leave --end out (20 days ago, so every lock date has passed)"
            ));
        }
        Ok((seed, days, end))
    })();
    let (seed, days, end) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("reckon-fakes: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let world = World::start(seed, days, end);
    let g = &world.google.config;
    let line = serde_json::json!({
        "from": world.story.from,
        "to": world.story.to,
        "urls": world.urls,
        "google": {
            "customer_id": g.customer_id,
            "client_id": g.credentials.client_id,
            "client_secret": g.credentials.client_secret,
            "refresh_token": g.credentials.refresh_token,
            "developer_token": g.credentials.developer_token,
        },
        "meta": { "ad_account_id": world.meta.config.account_id, "access_token": creds::META_TOKEN },
        "tiktok": { "advertiser_id": world.tiktok.config.advertiser_id, "access_token": creds::TIKTOK_TOKEN },
    });
    println!("{line}");
    let confirm_on_stdout = args.iter().any(|a| a == "--confirm-on-stdout");
    // Serve until the parent closes our stdin; `restate <ad fake>` on a line
    // restates a day for the next pull.
    for cmd in std::io::stdin().lines() {
        let Ok(cmd) = cmd else { break };
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["restate", platform] => match world.restate(platform) {
                Some(day) if confirm_on_stdout => println!("restated {day}"),
                Some(day) => eprintln!(
                    "reckon-fakes: restated {platform} {day}: the next pull of that day gets new figures"
                ),
                None => eprintln!(
                    "reckon-fakes: cannot restate {platform:?}: only google_ads, meta_ads and tiktok_ads"
                ),
            },
            ["throttle", platform, rest @ ..] if rest.len() <= 1 => {
                match rest.first().map_or(Ok(3), |n| n.parse::<u32>()) {
                    Ok(n) if world.throttle(platform, n) => eprintln!(
                        "reckon-fakes: throttling {platform}: its next {n} data requests get its rate-limit error"
                    ),
                    Ok(_) => eprintln!(
                        "reckon-fakes: cannot throttle {platform:?}: only impact, everflow, cake, partnerstack, google_ads, meta_ads and tiktok_ads"
                    ),
                    Err(_) => eprintln!(
                        "reckon-fakes: throttle {platform}: {:?} is not a count (e.g. `throttle {platform} 5`)",
                        rest[0]
                    ),
                }
            }
            _ => eprintln!(
                "reckon-fakes: unknown command {:?} (commands: restate google_ads|meta_ads|tiktok_ads; throttle impact|everflow|cake|partnerstack|google_ads|meta_ads|tiktok_ads [N])",
                cmd.trim()
            ),
        }
    }
    drop(world);
}

/// The story ends 20 days before today, so every lock date (network locks,
/// 7-day return window, 3-day grace) has passed when the demo reconciles.
fn default_end(today: NaiveDate) -> NaiveDate {
    today - Duration::days(20)
}
