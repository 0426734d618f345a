//! The log lines of a connector's run, handed to a daemon's client as well
//! (ops QA34 B-L1): a `reckon sync` the daemon runs showed its client only
//! the window and page lines, not the `throttled (HTTP 429); waiting
//! before retrying` (or `request failed; retrying`) lines a standalone
//! run prints, so a throttled backfill looked hung.
//!
//! [`Layer`] sits in the daemon's `tracing` subscriber; while a
//! [`Forwarding`] of a connector lives, every event that names that
//! connector (its `connector` field) and passes the log filter is handed to
//! the forwarding's function too.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One forwarded log line: what a standalone run's log line holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `INFO`, `WARN`...
    pub level: &'static str,
    /// The event's target (`reckon::plugins::http`).
    pub target: String,
    /// Its message.
    pub message: String,
    /// Its other fields, `connector` included, with their types: a number
    /// stays a number in a JSON log line (ops QA35a M1: every value was
    /// forwarded as a string, so `jq '.fields.new + .fields.changed'`
    /// concatenated them where a standalone run's line added them).
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// What a forwarded line is handed to.
type Sink = Arc<dyn Fn(&Line) + Send + Sync>;

/// The connectors whose log lines are forwarded, and to what.
static SINKS: Mutex<BTreeMap<String, Sink>> = Mutex::new(BTreeMap::new());
/// How many: events pay nothing while none is.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Forwards `connector`'s log lines to `sink` until dropped.
#[must_use = "forwarding ends when this is dropped"]
pub struct Forwarding(String);

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Forwarding").field(&self.0).finish()
    }
}

/// Starts forwarding the log lines that name `connector` to `sink` (one
/// run of a connector at a time: a later forwarding of it replaces this).
pub fn forward(connector: &str, sink: impl Fn(&Line) + Send + Sync + 'static) -> Forwarding {
    let mut sinks = SINKS.lock().unwrap_or_else(|p| p.into_inner());
    if sinks.insert(connector.to_owned(), Arc::new(sink)).is_none() {
        COUNT.fetch_add(1, Ordering::SeqCst);
    }
    Forwarding(connector.to_owned())
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let mut sinks = SINKS.lock().unwrap_or_else(|p| p.into_inner());
        if sinks.remove(&self.0).is_some() {
            COUNT.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Line {
    /// As text: `LEVEL message key=value ...` (a standalone run's log line,
    /// without its time and target; text values unquoted, as it writes them).
    pub fn text(&self) -> String {
        let mut line = format!("{:>5} {}", self.level, self.message);
        for (k, v) in &self.fields {
            let _ = match v {
                serde_json::Value::String(s) => write!(line, " {k}={s}"),
                v => write!(line, " {k}={v}"),
            };
        }
        line.push('\n');
        line
    }

    /// As a JSON log line, the shape `--log-format json` writes.
    pub fn json(&self) -> String {
        let fields = serde_json::Value::Object(self.fields.clone().into_iter().collect());
        crate::cli::output::json_log_line(&self.target, self.level, &self.message, fields)
    }
}

/// The `tracing` layer that forwards; see the module.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layer;

#[derive(Default)]
struct Fields {
    message: String,
    rest: BTreeMap<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &tracing::field::Field, value: serde_json::Value) {
        match (field.name(), value) {
            ("message", serde_json::Value::String(m)) => self.message = m,
            ("message", v) => self.message = v.to_string(),
            (name, v) => {
                self.rest.insert(name.to_owned(), v);
            }
        }
    }
}

/// Each value as the JSON formatter of `tracing-subscriber` writes it:
/// numbers and booleans as such, the rest as text.
impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Layer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if COUNT.load(Ordering::SeqCst) == 0
            || event.metadata().fields().field("connector").is_none()
        {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(serde_json::Value::String(connector)) = fields.rest.get("connector") else {
            return;
        };
        let sink = SINKS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(connector)
            .cloned();
        if let Some(sink) = sink {
            let meta = event.metadata();
            sink(&Line {
                level: meta.level().as_str(),
                target: meta.target().to_owned(),
                message: fields.message,
                fields: fields.rest,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn lines_naming_a_forwarded_connector_reach_its_sink_until_dropped() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Layer);
        tracing::subscriber::with_default(subscriber, || {
            let sink = got.clone();
            let forwarding = forward("fwd_net", move |line| {
                sink.lock().unwrap().push(line.clone());
            });
            tracing::info!(connector = %"fwd_net", wait_ms = 1000, "throttled (HTTP 429); waiting before retrying");
            tracing::warn!(connector = "fwd_other", "not this one");
            tracing::info!("nor one without a connector");
            drop(forwarding);
            tracing::info!(connector = "fwd_net", "after the run");
        });
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].text(),
            " INFO throttled (HTTP 429); waiting before retrying connector=fwd_net wait_ms=1000\n"
        );
    }

    /// QA35a M1: forwarded JSON lines had every value as a string and no
    /// `connector`, where a standalone run's line has numbers and it.
    #[test]
    fn a_forwarded_json_line_keeps_its_types_its_connector_and_its_target() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Layer);
        tracing::subscriber::with_default(subscriber, || {
            let sink = got.clone();
            let _forwarding = forward("fwd_types", move |line| {
                sink.lock().unwrap().push(line.json());
            });
            tracing::info!(
                connector = "fwd_types",
                new = 3u64,
                changed = 0u64,
                late = -1i64,
                ok = true,
                stream = "orders",
                "sync finished"
            );
        });
        let line: serde_json::Value = serde_json::from_str(&got.lock().unwrap()[0]).unwrap();
        assert_eq!(
            line["fields"],
            serde_json::json!({"message": "sync finished", "connector": "fwd_types",
                "new": 3, "changed": 0, "late": -1, "ok": true, "stream": "orders"})
        );
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
    }
}
