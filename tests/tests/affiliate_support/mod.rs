//! Helpers shared by the `affiliate_*` suites: run a connector in-process
//! against a fake (through `FakeHost`, with the host's auth emulated), and
//! read conversions back.
#![allow(dead_code)]

use plugin_api::protocol::Window;
use plugin_api::testing::{open_read, FakeHost, Outcome};
use plugin_api::{Connector, Conversion, Record};
use reckon_tests::fakes::affiliate::{in_process, FakeApi, Shared};

/// A window of days.
pub fn window(from: (i32, u32, u32), to: (i32, u32, u32)) -> Window {
    let d = |(y, m, d): (i32, u32, u32)| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    Window {
        from: d(from),
        to: d(to),
    }
}

/// Runs one read session of `C` against `fake`.
pub fn run<C: Connector, F: FakeApi>(
    fake: &Shared<F>,
    secrets: &[(&str, &str)],
    settings: serde_json::Value,
    window: Window,
) -> Outcome {
    run_at::<C, F>("http://fake", fake, secrets, settings, window)
}

/// [`run`] for a connector whose `timezone` is `tz`, as the daemon's host
/// opens its sessions (the window's days are that zone's).
pub fn run_in<C: Connector, F: FakeApi>(
    tz: &str,
    base_url: &str,
    fake: &Shared<F>,
    secrets: &[(&str, &str)],
    settings: serde_json::Value,
    window: Window,
) -> Outcome {
    let handler = in_process(fake.clone(), C::manifest().auth, secrets, &settings);
    let mut open = open_read("aff", base_url, settings, window);
    open.timezone = Some(tz.to_owned());
    FakeHost::handler(handler).run::<C>(open)
}

/// The first instant of `day` in the zone `tz` (UTC).
pub fn day_start(tz: &str, day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    plugin_api::sdk::day_start(day, tz.parse().unwrap())
}

/// [`run`] with another base URL (e.g. one with a path prefix).
pub fn run_at<C: Connector, F: FakeApi>(
    base_url: &str,
    fake: &Shared<F>,
    secrets: &[(&str, &str)],
    settings: serde_json::Value,
    window: Window,
) -> Outcome {
    let handler = in_process(fake.clone(), C::manifest().auth, secrets, &settings);
    FakeHost::handler(handler).run::<C>(open_read("aff", base_url, settings, window))
}

/// The conversions of an outcome's committed records.
pub fn conversions(out: &Outcome) -> Vec<&Conversion> {
    out.committed
        .iter()
        .filter_map(|r| match r {
            Record::Conversion(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The committed conversion with this key (the last one, as an upsert keeps).
pub fn find<'a>(out: &'a Outcome, key: &str) -> &'a Conversion {
    conversions(out)
        .into_iter()
        .rev()
        .find(|c| c.external_id == key)
        .unwrap_or_else(|| panic!("no committed conversion {key}"))
}

/// The zone of the timezone tests: 1 November 2026 lasts 25 hours there.
pub const LA: &str = "America/Los_Angeles";

/// Checks that a one-day sync in [`LA`] of each of `days` (give 1 November
/// among them) reads exactly the fake's records of that local day, at
/// least `min` of them: `sync` runs one day's window and gives the ids of
/// the conversions stored, `truth` the fake's ids of instants in
/// `[start, end)` (QA20 F2: the connectors read UTC days).
pub fn assert_reads_la_days(
    days: &[(i32, u32, u32)],
    min: usize,
    sync: impl Fn(Window) -> std::collections::BTreeSet<String>,
    truth: impl Fn(
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    ) -> std::collections::BTreeSet<String>,
) {
    for &day in days {
        let w = window(day, day);
        let (s, e) = (
            day_start(LA, w.from),
            day_start(LA, w.from.succ_opt().unwrap()),
        );
        let hours = if (day.1, day.2) == (11, 1) { 25 } else { 24 };
        assert_eq!((e - s).num_hours(), hours, "{day:?}");
        let expected = truth(s, e);
        assert!(expected.len() >= min, "{day:?}: {}", expected.len());
        assert_eq!(sync(w), expected, "{day:?}");
    }
}

/// The external ids of the conversions a run stored.
pub fn conversion_ids(out: &Outcome) -> std::collections::BTreeSet<String> {
    conversions(out)
        .iter()
        .map(|c| c.external_id.clone())
        .collect()
}
