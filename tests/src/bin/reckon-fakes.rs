//! `reckon-fakes`: serves the demo's story from loopback fakes of every
//! platform, for `reckon demo` (or for trying connectors by hand).
//!
//! Usage: `reckon-fakes [--seed S] [--days N] [--end YYYY-MM-DD]`
//!
//! Prints one JSON line on stdout once every fake listens:
//! `{"from": .., "to": .., "urls": {"shopify": "http://127.0.0.1:..", ...},
//!   "google": {"customer_id", "client_id", ...}, "restated_day": ..}`,
//! then serves until its standard input closes (the parent exits) or it is
//! killed. A line `restate google_ads` on stdin restates one Google day.

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

const USAGE: &str = "usage: reckon-fakes [--seed S] [--days N] [--end YYYY-MM-DD]

Serves the demo's story (a shop, four affiliate networks, three ad
networks) from loopback fakes of each platform's API. Prints one JSON line
with every fake's URL and credentials once they listen, then serves until
its standard input closes. A line `restate google_ads` on stdin restates
one Google day.

  --seed S          story seed (default 42)
  --days N          days of sales (default 45)
  --end YYYY-MM-DD  last day of sales (default 20 days ago)";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    // Values never start with `-`: anything else that does is unknown.
    if let Some(bad) = args
        .iter()
        .skip(1)
        .find(|a| a.starts_with('-') && !["--seed", "--days", "--end"].contains(&a.as_str()))
    {
        eprintln!("reckon-fakes: unknown option {bad}\n{USAGE}");
        std::process::exit(2);
    }
    let parsed = (|| -> Result<(u64, u32, NaiveDate), String> {
        let seed = arg(&args, "--seed")?.unwrap_or(42);
        let days = arg(&args, "--days")?.unwrap_or(45);
        let end = arg(&args, "--end")?.unwrap_or_else(|| default_end(Utc::now().date_naive()));
        Ok((seed, days, end))
    })();
    let (seed, days, end) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "reckon-fakes: {e}\nusage: reckon-fakes [--seed S] [--days N] [--end YYYY-MM-DD]"
            );
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
    // Serve until the parent closes our stdin; `restate google_ads` on a line
    // restates a Google day for the next pull.
    for cmd in std::io::stdin().lines() {
        match cmd.as_deref().map(str::trim) {
            Ok("restate google_ads") => {
                let day = world.restate_google();
                println!("restated {day}");
            }
            Ok(other) => eprintln!("reckon-fakes: unknown command {other:?}"),
            Err(_) => break,
        }
    }
    drop(world);
}

/// The story ends 20 days before today, so every lock date (network locks,
/// 7-day return window, 3-day grace) has passed when the demo reconciles.
fn default_end(today: NaiveDate) -> NaiveDate {
    today - Duration::days(20)
}
