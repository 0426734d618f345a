//! Prometheus counters of the daemon, rendered as text for `/metrics`.
//!
//! One place updates each counter: sync outcome ([`Metrics::sync_finished`]),
//! records ([`Metrics::records`]), session totals ([`Metrics::session`]),
//! failures and plugin crashes ([`Metrics::session_error`]), HTTP outcomes
//! ([`Metrics::http_response`], [`Metrics::http_error`],
//! [`Metrics::http_cancelled`]: one per attempt, counted in the plugin
//! host's executor, so `reckon_http_requests_total` equals the sum of
//! `reckon_http_responses_total` over its statuses). The store
//! size is a gauge read at scrape time. The config reload series
//! (`reckon_config_*`) are the daemon's
//! [`crate::schedule::config_state::ConfigTracker`]'s, rendered beside
//! these.
//!
//! What it is not: no histograms and no external crate; counters are plain
//! integers behind a mutex (updates happen per page, not per record).

use crate::plugins::SessionError;
use crate::store::{CommitStats, RunOutcome};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, OnceLock};

type Labels = Vec<(&'static str, String)>;

/// The daemon's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<&'static str, BTreeMap<Labels, u64>>>,
}

const HELP: &[(&str, &str)] = &[
    ("reckon_syncs_total", "Connector runs by outcome."),
    (
        "reckon_records_total",
        "Records committed by connector and result (new, changed, unchanged).",
    ),
    (
        "reckon_pages_total",
        "Pages (checkpoints) committed by connector.",
    ),
    (
        "reckon_http_requests_total",
        "HTTP requests sent to platforms, by connector.",
    ),
    (
        "reckon_http_responses_total",
        "HTTP attempts by connector and response status (`error`: no response; `cancelled`: dropped by a shutdown).",
    ),
    ("reckon_http_retries_total", "HTTP retries, by connector."),
    (
        "reckon_rate_limit_waits_total",
        "Waits for rate limits (429 or our own limiter), by connector.",
    ),
    (
        "reckon_sync_errors_total",
        "Failed sessions by connector and error kind.",
    ),
    (
        "reckon_plugin_crashes_total",
        "Plugin crashes (panics, aborts, hangs), by connector.",
    ),
];

static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();

/// The process-wide metrics (the server renders these; the plugin host may
/// record HTTP statuses and crashes into them).
pub fn global() -> Arc<Metrics> {
    GLOBAL.get_or_init(|| Arc::new(Metrics::default())).clone()
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(&self, name: &'static str, labels: Labels, n: u64) {
        if n == 0 {
            return;
        }
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry(name).or_default().entry(labels).or_default() += n;
    }

    /// A page was committed.
    pub fn records(&self, connector: &str, s: &CommitStats) {
        let l = |r: &str| {
            vec![
                ("connector", connector.to_owned()),
                ("result", r.to_owned()),
            ]
        };
        self.add("reckon_records_total", l("new"), s.new);
        self.add("reckon_records_total", l("changed"), s.changed);
        self.add("reckon_records_total", l("unchanged"), s.unchanged);
        self.add(
            "reckon_pages_total",
            vec![("connector", connector.to_owned())],
            1,
        );
    }

    /// A session failed.
    pub fn session_error(&self, connector: &str, e: &SessionError) {
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into());
        self.add(
            "reckon_sync_errors_total",
            vec![("connector", connector.to_owned()), ("kind", kind)],
            1,
        );
        if e.kind == plugin_api::ErrorKind::Internal {
            self.plugin_crash(connector);
        }
    }

    /// A scheduled run failed because the store refused it (kind `store`:
    /// disk full, a failed store).
    pub fn store_error(&self, connector: &str) {
        self.add(
            "reckon_sync_errors_total",
            vec![
                ("connector", connector.to_owned()),
                ("kind", "store".to_owned()),
            ],
            1,
        );
    }

    /// A plugin crashed (panic, abort, hang).
    pub fn plugin_crash(&self, connector: &str) {
        self.add(
            "reckon_plugin_crashes_total",
            vec![("connector", connector.to_owned())],
            1,
        );
    }

    /// The host received an HTTP response with `status`.
    pub fn http_response(&self, connector: &str, status: u16) {
        self.add(
            "reckon_http_responses_total",
            vec![
                ("connector", connector.to_owned()),
                ("status", status.to_string()),
            ],
            1,
        );
    }

    /// An HTTP attempt got no response (connect error, timeout, a body cut
    /// off or too large): counted under `status="error"`.
    pub fn http_error(&self, connector: &str) {
        self.add(
            "reckon_http_responses_total",
            vec![
                ("connector", connector.to_owned()),
                ("status", "error".to_owned()),
            ],
            1,
        );
    }

    /// An HTTP attempt was dropped unanswered because the daemon stopped
    /// (SIGTERM during a request): counted under `status="cancelled"`, so
    /// requests and responses add up.
    pub fn http_cancelled(&self, connector: &str) {
        self.add(
            "reckon_http_responses_total",
            vec![
                ("connector", connector.to_owned()),
                ("status", "cancelled".to_owned()),
            ],
            1,
        );
    }

    /// A run ended.
    pub fn sync_finished(&self, connector: &str, outcome: RunOutcome) {
        self.add(
            "reckon_syncs_total",
            vec![
                ("connector", connector.to_owned()),
                ("outcome", outcome.as_str().to_owned()),
            ],
            1,
        );
    }

    /// A counter's value (tests, status).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.get(name)
            .map(|m| {
                m.iter()
                    .filter(|(l, _)| {
                        labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                    })
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Prometheus text exposition format (0.0.4).
    pub fn render(&self, store_size_bytes: Option<u64>) -> String {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            if let Some(series) = c.get(name) {
                for (l, v) in series {
                    let pairs: Vec<(&str, &str)> =
                        l.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let _ = writeln!(out, "{name}{{{}}} {v}", labels(&pairs));
                }
            }
        }
        if let Some(b) = store_size_bytes {
            let _ = writeln!(
                out,
                "# HELP reckon_store_size_bytes Bytes the sled store uses on disk."
            );
            let _ = writeln!(out, "# TYPE reckon_store_size_bytes gauge");
            let _ = writeln!(out, "reckon_store_size_bytes {b}");
        }
        out
    }
}

/// One metric family in Prometheus text: its `HELP` and `TYPE` lines, then
/// one sample per `(labels, value)`, the labels as [`labels`] writes them
/// (empty: none).
pub fn family<V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, V)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// `k="v",...` with each value escaped as the text format wants.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.records(
            "net",
            &CommitStats {
                new: 3,
                changed: 1,
                unchanged: 0,
            },
        );
        m.sync_finished("net", RunOutcome::Success);
        m.http_response("net", 429);
        insta::assert_snapshot!(m.render(Some(4096)));
        assert_eq!(m.get("reckon_records_total", &[("connector", "net")]), 4);
    }
}
