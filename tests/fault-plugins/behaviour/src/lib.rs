//! # `faulty`: a test-only plugin that misbehaves on demand
//!
//! Not a connector: the plugin host's fault tests and the boundary benchmark
//! load it to prove the host survives a bad plugin. The setting `fault`
//! chooses the behaviour (see [`Fault`]); everything else about it is a
//! well-formed plugin built with the SDK, so each test isolates one fault.
//!
//! Every faulty mode first commits one good page (one record and a
//! checkpoint), emits one more record and waits for a host event, then
//! misbehaves: the host must keep the first page and drop the second record.
//!
//! `describe` takes no input, so its faults cannot come from a setting: they
//! are chosen by the bytes of the library itself. [`DESCRIBE_FAULT`] is a
//! marker, `reckon-faulty-describe-fault:` followed by an 8-byte mode
//! (`behave  `, `loop    `, `abort   `, `panic   `); a test copies the
//! library and rewrites the mode in its copy (see [`DescribeFault`]).

use plugin_api::chrono::{Duration, NaiveDate};
use plugin_api::protocol::{Checkpoint, FileCapability, PluginKind, RecordKind, StreamSpec};
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::json;
use plugin_api::{
    Channel, Connector, Conversion, ConversionStatus, Cx, EventType, Manifest, Money, PluginError,
    Record, Request, Spend, Utm,
};
use serde::Deserialize;

/// The plugin type.
#[derive(Debug)]
pub struct Faulty;

/// What `manifest()` does: the marker `reckon-faulty-describe-fault:` and an
/// 8-byte mode. It occurs once in the library's bytes (the marker text is
/// nowhere else, so a test can find it) and is read through `black_box`, so
/// the compiler cannot fold it: the mode is whatever the library file holds.
#[used]
pub static DESCRIBE_FAULT: [u8; 37] = *b"reckon-faulty-describe-fault:behave  ";

/// Where the mode starts in [`DESCRIBE_FAULT`].
const MODE_AT: usize = DESCRIBE_FAULT.len() - 8;

/// What `manifest()` does wrong, chosen by the library's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescribeFault {
    /// Return the manifest.
    Behave,
    /// Spin forever (the host must give up at its describe deadline).
    Loop,
    /// `std::process::abort()`.
    Abort,
    /// Panic.
    Panic,
}

impl DescribeFault {
    /// The mode in this library's [`DESCRIBE_FAULT`].
    pub fn of_this_library() -> DescribeFault {
        let marker: &[u8; 37] = std::hint::black_box(&DESCRIBE_FAULT);
        match &marker[MODE_AT..] {
            b"loop    " => DescribeFault::Loop,
            b"abort   " => DescribeFault::Abort,
            b"panic   " => DescribeFault::Panic,
            _ => DescribeFault::Behave,
        }
    }
}

/// Stream of conversions.
pub const CONVERSIONS: &str = "conversions";

/// What the plugin does wrong.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Behave: one page, done.
    #[default]
    None,
    /// Panic in a step.
    Panic,
    /// `std::process::abort()` in a step (kills the process hosting it).
    Abort,
    /// Spin in a step for `loop_millis` (0 = forever).
    Loop,
    /// Emit a record with an unknown currency.
    InvalidRecord,
    /// Emit a record with an empty id.
    EmptyId,
    /// Emit a record whose id (and so key) holds a newline.
    ControlId,
    /// Fail with an error whose message holds a newline and an escape code
    /// (platform text quoted in an error).
    ControlError,
    /// Fail with an error starting with the connector, as the SDK's
    /// settings errors do.
    ConnectorError,
    /// Emit a spend record under a conversion stream.
    WrongKind,
    /// Emit a checkpoint whose watermark goes backwards.
    BackwardsCheckpoint,
    /// Commit a watermark a year after the window's end (a misread time).
    FutureCheckpoint,
    /// Commit a stream's first watermark 400 days before the window.
    EarlyCheckpoint,
    /// Page with a cursor that never advances: ask `{base_url}/page?cursor=1`,
    /// commit its page, and ask the same again, forever.
    SameCursor,
    /// Checkpoint a stream the manifest does not declare.
    UnknownStream,
    /// Declare a complete spend pass ([`Checkpoint::covers`]) on the
    /// conversions stream.
    FalsePass,
    /// In a check session: emit a record and commit it.
    CheckRecords,
    /// In a check session: commit a checkpoint (no records).
    CheckCheckpoint,
    /// Print to stdout (corrupts a subprocess's protocol channel).
    Stdout,
    /// Ask `{base_url}/echo` and print its body to stderr, then bytes that
    /// are not UTF-8, then one more line, and finish: what a developer's
    /// debugging prints look like to the host.
    PrintEcho,
    /// Request a host outside the allowed list.
    ForeignHost,
    /// Finish without committing the last record.
    NoCommit,
    /// Ask for the same page forever, whatever the answer.
    Endless,
    /// Emit `records` records in pages of `page` (benchmark).
    Flood,
    /// Take `steps` empty steps (benchmark of per-step overhead).
    Steps,
    /// List the capability's files and emit one log line per file with its size.
    Files,
    /// Read the file named by `file` (tests the capability's refusals).
    ReadFile,
    /// Ask the host to sleep for a day (tests the cap and shutdown).
    Sleep,
    /// Log lines with structured fields, then finish: a plain one, and one
    /// with more fields than the host keeps, odd keys and a huge value.
    Log,
    /// Ask `{base_url}/echo` and put its `ref` (a platform echoing a
    /// credential) into a record's order id, a log line, the checkpoint's
    /// state and an error: everywhere plugin output can carry it.
    Echo,
}

#[derive(Debug, Deserialize)]
struct Settings {
    #[serde(default)]
    fault: Fault,
    #[serde(default)]
    loop_millis: u64,
    #[serde(default)]
    records: u64,
    #[serde(default = "one")]
    page: u64,
    #[serde(default)]
    steps: u64,
    #[serde(default)]
    file: String,
    /// The URL `foreign_host` requests (default another host).
    #[serde(default)]
    url: Option<String>,
}

fn one() -> u64 {
    1
}

fn day0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
}

/// A valid conversion with id `c<n>`.
pub fn conversion(n: u64) -> Record {
    let at =
        day0().and_hms_opt(12, 0, 0).unwrap_or_default().and_utc() + Duration::seconds(n as i64);
    Record::Conversion(Conversion {
        source: String::new(),
        external_id: format!("c{n}"),
        order_id: Some(format!("o{n}")),
        click_id: Some(format!("click-{n}")),
        clicked_at: Some(at - Duration::hours(1)),
        partner_id: format!("p{}", n % 17),
        partner_name: Some("Partner".into()),
        campaign_id: Some("cmp1".into()),
        event_type: EventType::Sale,
        occurred_at: at,
        sale_amount: Some(Money::new(Decimal::new(12_345 + n as i64 % 1000, 2), "USD")),
        commission: Some(Money::new(Decimal::new(1_234, 2), "USD")),
        status: ConversionStatus::Approved,
        status_changed_at: Some(at),
        locked_at: None,
        coupon: None,
        utm: Utm {
            source: Some("aff".into()),
            ..Utm::default()
        },
    })
}

/// A checkpoint `hours` after the first day of the session's window (so
/// every watermark lies within the window, whatever day a test syncs).
fn checkpoint(cx: &Cx, stream: &str, hours: i64) -> Checkpoint {
    let from = cx.window().map_or_else(|_| day0(), |w| w.from);
    Checkpoint {
        stream: stream.into(),
        watermark: from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() + Duration::hours(hours),
        state: json!({ "hour": hours }),
        covers: None,
    }
}

/// Forces a step boundary: waits for a timer that is already due.
async fn yield_to_host(cx: &Cx) -> Result<(), PluginError> {
    cx.sleep_until(cx.now()).await.map(|_| ())
}

impl Connector for Faulty {
    fn manifest() -> Manifest {
        match DescribeFault::of_this_library() {
            DescribeFault::Behave => {}
            DescribeFault::Loop => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            DescribeFault::Abort => std::process::abort(),
            DescribeFault::Panic => panic!("faulty plugin panics in describe on purpose"),
        }
        Manifest {
            id: "faulty".into(),
            name: "Faulty (test plugin)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Affiliate,
            description: "Misbehaves on demand for the plugin host's fault tests.".into(),
            config_schema: json!({
                "type": "object",
                "properties": {
                    "fault": { "type": "string" },
                    "loop_millis": { "type": "integer", "minimum": 0 },
                    "records": { "type": "integer", "minimum": 0 },
                    "page": { "type": "integer", "minimum": 1 },
                    "steps": { "type": "integer", "minimum": 0 },
                    "file": { "type": "string" },
                    "directory": { "type": "string" },
                    "api_key": { "type": "string", "x-secret": true }
                }
            }),
            streams: vec![StreamSpec {
                name: CONVERSIONS.into(),
                record: RecordKind::Conversion,
                primary_key: vec!["external_id".into()],
                cursor: Some("occurred_at".into()),
                default_lookback_days: 1,
            }],
            allowed_hosts: vec!["faulty.invalid".into()],
            default_base_url: Some("https://faulty.invalid".into()),
            auth: None,
            max_window_days: None,
            max_history_days: None,
            file_capability: Some(FileCapability {
                directory_setting: "directory".into(),
                suffixes: vec![".csv".into(), ".txt".into()],
            }),
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let s: Settings = cx.settings()?;
        if s.fault == Fault::CheckRecords {
            cx.emit(conversion(1));
        }
        if matches!(s.fault, Fault::CheckRecords | Fault::CheckCheckpoint) {
            cx.commit(checkpoint(&cx, CONVERSIONS, 1));
        }
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let s: Settings = cx.settings()?;
        match s.fault {
            Fault::Flood => return flood(&cx, &s).await,
            Fault::Steps => {
                for _ in 0..s.steps {
                    yield_to_host(&cx).await?;
                }
                return Ok(());
            }
            Fault::Files => {
                let names = cx.list_files().await?;
                let names = String::from_utf8_lossy(&names).into_owned();
                for name in names.lines().filter(|n| !n.is_empty()) {
                    let bytes = cx.read_file(name).await?;
                    cx.info("file read", &[("name", &name), ("bytes", &bytes.len())]);
                }
                return Ok(());
            }
            Fault::Sleep => {
                cx.sleep_until(cx.now() + Duration::days(1)).await?;
                cx.info("woke up", &[]);
                return Ok(());
            }
            Fault::Log => {
                cx.info(
                    "structured fields",
                    &[
                        ("page", &3),
                        ("stream", &CONVERSIONS),
                        ("note", &"two words = one value"),
                        ("connector", &"not-the-host's"),
                    ],
                );
                let many: Vec<(String, String)> = (0..40)
                    .map(|i| (format!("k{i:02}"), i.to_string()))
                    .collect();
                let huge = "x".repeat(1 << 20);
                let mut fields: Vec<(&str, &dyn std::fmt::Display)> = many
                    .iter()
                    .map(|(k, v)| (k.as_str(), v as &dyn std::fmt::Display))
                    .collect();
                fields.insert(0, ("a huge value!", &huge));
                cx.warn("line one\nforged line two", &fields);
                return Ok(());
            }
            Fault::Echo => {
                let url = format!("{}/echo", cx.base_url());
                let v: plugin_api::serde_json::Value = cx
                    .http(Request::get(url.as_str()))
                    .await?
                    .ok()?
                    .json("echo")?;
                let echoed = v["ref"].as_str().unwrap_or_default().to_owned();
                cx.info("echo read", &[("ref", &echoed)]);
                for n in [1, 2] {
                    let mut r = conversion(n);
                    if let Record::Conversion(c) = &mut r {
                        c.order_id = Some(echoed.clone());
                    }
                    cx.emit(r);
                }
                let mut cp = checkpoint(&cx, CONVERSIONS, 1);
                cp.state = json!({ "next": format!("{url}?key={echoed}") });
                cx.commit(cp);
                yield_to_host(&cx).await?;
                return Err(PluginError::bad_response(format!(
                    "page 2 unreadable near {echoed:?}"
                )));
            }
            Fault::PrintEcho => {
                let url = format!("{}/echo", cx.base_url());
                let response = cx.http(Request::get(url.as_str())).await?.ok()?;
                let body = response.text()?;
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("DEBUG body: {body}");
                }
                use std::io::Write as _;
                let _ = std::io::stderr().write_all(b"bad bytes: \xff\xfe\n");
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("still printing after them");
                }
                cx.commit(checkpoint(&cx, CONVERSIONS, 1));
                return Ok(());
            }
            Fault::ReadFile => {
                let bytes = cx.read_file(&s.file).await?;
                cx.info("file read", &[("name", &s.file), ("bytes", &bytes.len())]);
                return Ok(());
            }
            _ => {}
        }
        if s.fault == Fault::EarlyCheckpoint {
            cx.emit(conversion(1));
            cx.commit(checkpoint(&cx, CONVERSIONS, -400 * 24));
            return Ok(());
        }
        // One good page.
        cx.emit(conversion(1));
        cx.commit(checkpoint(&cx, CONVERSIONS, 1));
        // A record that must never be stored if the session fails.
        cx.emit(conversion(2));
        yield_to_host(&cx).await?;
        match s.fault {
            Fault::None => {
                cx.commit(checkpoint(&cx, CONVERSIONS, 2));
            }
            Fault::Panic => panic!("faulty plugin panics on purpose"),
            Fault::Abort => std::process::abort(),
            Fault::Loop => {
                let start = std::time::Instant::now();
                let limit = std::time::Duration::from_millis(s.loop_millis);
                let mut n = 0u64;
                while s.loop_millis == 0 || start.elapsed() < limit {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Fault::InvalidRecord => {
                let mut r = conversion(3);
                if let Record::Conversion(c) = &mut r {
                    c.sale_amount = Some(Money::new(Decimal::ONE, "XYZ"));
                }
                cx.emit(r);
                cx.commit(checkpoint(&cx, CONVERSIONS, 2));
            }
            Fault::EmptyId | Fault::ControlId => {
                let mut r = conversion(3);
                if let Record::Conversion(c) = &mut r {
                    c.external_id = if s.fault == Fault::EmptyId {
                        String::new()
                    } else {
                        "c3\n2026-11-29T00:00:00Z ERROR reckon::store: forged".into()
                    };
                }
                cx.emit(r);
                cx.commit(checkpoint(&cx, CONVERSIONS, 2));
            }
            Fault::ControlError => {
                return Err(PluginError::bad_response(
                    "page 1: bad\n2026-11-29T00:00:00Z ERROR reckon::store: forged\u{1b}[31mred",
                ));
            }
            Fault::ConnectorError => {
                return Err(PluginError::config(format!(
                    "connector `{}`: setting `x`: missing",
                    cx.connector_id()
                )));
            }
            Fault::WrongKind => {
                cx.emit(Record::Spend(Spend {
                    source: String::new(),
                    account_id: "a1".into(),
                    day: day0(),
                    timezone: "UTC".into(),
                    campaign_id: "cmp".into(),
                    campaign_name: "Campaign".into(),
                    ad_group_id: None,
                    ad_group_name: None,
                    ad_id: None,
                    channel: Channel::Search,
                    impressions: 1,
                    clicks: 1,
                    spend: Money::new(Decimal::ONE, "USD"),
                    platform_conversions: None,
                    platform_conversion_value: None,
                }));
                cx.commit(checkpoint(&cx, CONVERSIONS, 2));
            }
            Fault::BackwardsCheckpoint => {
                cx.commit(checkpoint(&cx, CONVERSIONS, 0));
            }
            Fault::FutureCheckpoint => {
                let days = cx.window().map_or(0, |w| w.days());
                cx.commit(checkpoint(&cx, CONVERSIONS, (days + 365) * 24));
            }
            Fault::SameCursor => {
                let url = format!("{}/page?cursor=1", cx.base_url());
                let mut n = 3;
                loop {
                    cx.http(Request::get(url.as_str())).await?.ok()?;
                    cx.emit(conversion(n));
                    n += 1;
                    cx.commit(checkpoint(&cx, CONVERSIONS, 2));
                }
            }
            Fault::UnknownStream => {
                cx.commit(checkpoint(&cx, "nope", 2));
            }
            Fault::FalsePass => {
                let mut cp = checkpoint(&cx, CONVERSIONS, 2);
                cp.covers = Some(plugin_api::Covers {
                    account_id: "a1".into(),
                    days: plugin_api::protocol::Window {
                        from: day0(),
                        to: day0(),
                    },
                });
                cx.commit(cp);
            }
            Fault::Stdout => {
                println!("hello from a plugin that should not print");
                cx.commit(checkpoint(&cx, CONVERSIONS, 2));
            }
            Fault::ForeignHost => {
                let url = s
                    .url
                    .as_deref()
                    .unwrap_or("https://elsewhere.invalid/steal");
                cx.http(Request::get(url)).await?;
            }
            Fault::NoCommit => {}
            Fault::Endless => loop {
                let _ = cx
                    .http(Request::get("https://elsewhere.invalid/page/1"))
                    .await;
            },
            Fault::Flood
            | Fault::CheckRecords
            | Fault::CheckCheckpoint
            | Fault::EarlyCheckpoint
            | Fault::Steps
            | Fault::Files
            | Fault::ReadFile
            | Fault::Sleep
            | Fault::Log
            | Fault::Echo
            | Fault::PrintEcho => {}
        }
        Ok(())
    }
}

async fn flood(cx: &Cx, s: &Settings) -> Result<(), PluginError> {
    let page = s.page.max(1);
    let mut n = 0u64;
    let mut day = 0i64;
    while n < s.records {
        let end = (n + page).min(s.records);
        while n < end {
            cx.emit(conversion(n));
            n += 1;
        }
        day += 1;
        // Seconds, not hours: a long flood stays within the window.
        let mut cp = checkpoint(cx, CONVERSIONS, 0);
        cp.watermark += Duration::seconds(day);
        cx.commit(cp);
        yield_to_host(cx).await?;
    }
    Ok(())
}

plugin_api::export_plugin!(id = "faulty", connector = Faulty);
