//! Test support shared by the crate's unit tests: a conversion to store,
//! and what `tracing` events a piece of code emits, as the JSON lines the
//! daemon's `--log-format json` writes.

use plugin_api::protocol::{Conversion, ConversionStatus, EventType, Money, Record, Utm};
use std::sync::{Arc, Mutex};

/// A pending sale of partner `p1` on network `net`, paying `commission`
/// USD cents.
pub fn conversion(id: &str, commission: i64) -> Record {
    Record::Conversion(Conversion {
        source: "net".into(),
        external_id: id.into(),
        order_id: Some(format!("o-{id}")),
        click_id: None,
        clicked_at: None,
        partner_id: "p1".into(),
        partner_name: None,
        campaign_id: None,
        event_type: EventType::Sale,
        occurred_at: "2026-01-02T03:04:05Z".parse().unwrap(),
        sale_amount: None,
        commission: Some(Money::from_minor(commission, "USD")),
        status: ConversionStatus::Pending,
        status_changed_at: None,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    })
}

/// Collects what is written to it (a subscriber, a console), shared by
/// its clones.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The events `emit_lines` emits on this thread at `level` or above, one
/// JSON object each.
pub fn json_lines_at(level: tracing::Level, emit_lines: impl FnOnce()) -> Vec<serde_json::Value> {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, emit_lines);
    out.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// [`json_lines_at`] every level.
pub fn json_lines(emit_lines: impl FnOnce()) -> Vec<serde_json::Value> {
    json_lines_at(tracing::Level::TRACE, emit_lines)
}

/// A run of connector `source` that started (and, unless still running,
/// ended) at `started_at`, with no pages or records.
pub fn run_record(
    source: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    outcome: crate::store::RunOutcome,
    error: Option<&str>,
    retryable: Option<bool>,
) -> crate::store::RunRecord {
    crate::store::RunRecord {
        source: source.into(),
        started_at,
        ended_at: (outcome != crate::store::RunOutcome::Running).then_some(started_at),
        outcome,
        windows: vec![],
        pages: 0,
        requests: 0,
        retries: 0,
        rate_limit_waits: 0,
        records_new: 0,
        records_changed: 0,
        records_unchanged: 0,
        error: error.map(str::to_owned),
        retryable,
        not_before: None,
    }
}

/// A loaded-plugin stand-in of an affiliate plugin `id` (no library behind
/// it) with protocol `fingerprint` (0: built before the fingerprint).
pub fn plugin(id: &str, fingerprint: u32) -> crate::plugins::Plugin {
    let manifest = plugin_api::protocol::Manifest {
        id: id.into(),
        name: "n".into(),
        version: "1".into(),
        kind: plugin_api::PluginKind::Affiliate,
        description: "d".into(),
        config_schema: serde_json::json!({}),
        streams: vec![],
        allowed_hosts: vec![],
        default_base_url: None,
        auth: None,
        max_window_days: None,
        max_history_days: None,
        file_capability: None,
    };
    let mut p =
        crate::plugins::Plugin::from_manifest(format!("libreckon_plugin_{id}.so").into(), manifest);
    p.protocol_fingerprint = fingerprint;
    p
}

/// A period record of program `acme` for `period`, a month (its start is
/// the 1st), with no files: for tests of what reads period records.
pub fn period_record(
    period: &str,
    status: crate::payout::model::Status,
) -> crate::payout::book::PeriodRecord {
    crate::payout::book::PeriodRecord {
        book_version: crate::payout::book::BOOK_VERSION,
        program: "acme".into(),
        period: period.into(),
        period_start: format!("{period}-01").parse().unwrap(),
        status,
        version: 1,
        partners: Vec::new(),
        summary_sha256: String::new(),
        held_back_csv: None,
        recorded_at: None,
    }
}
