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

/// What a forwarded line is handed to: level (`INFO`), message, and the
/// event's other fields.
type Sink = Arc<dyn Fn(&str, &str, &BTreeMap<String, String>) + Send + Sync>;

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
pub fn forward(
    connector: &str,
    sink: impl Fn(&str, &str, &BTreeMap<String, String>) + Send + Sync + 'static,
) -> Forwarding {
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

/// A log line as text: `LEVEL message key=value ...` (as a standalone
/// run's log line, without its time and target).
pub fn text_line(level: &str, message: &str, fields: &BTreeMap<String, String>) -> String {
    let mut line = format!("{level:>5} {message}");
    for (k, v) in fields {
        let _ = write!(line, " {k}={v}");
    }
    line.push('\n');
    line
}

/// The `tracing` layer that forwards; see the module.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layer;

#[derive(Default)]
struct Fields {
    message: String,
    rest: BTreeMap<String, String>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            name => {
                self.rest.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            name => {
                self.rest.insert(name.to_owned(), format!("{value:?}"));
            }
        }
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
        let Some(connector) = fields.rest.remove("connector") else {
            return;
        };
        let sink = SINKS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&connector)
            .cloned();
        if let Some(sink) = sink {
            sink(
                event.metadata().level().as_str(),
                &fields.message,
                &fields.rest,
            );
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
            let forwarding = forward("fwd_net", move |level, message, fields| {
                sink.lock().unwrap().push(text_line(level, message, fields));
            });
            tracing::info!(connector = %"fwd_net", wait_ms = 1000, "throttled (HTTP 429); waiting before retrying");
            tracing::warn!(connector = "fwd_other", "not this one");
            tracing::info!("nor one without a connector");
            drop(forwarding);
            tracing::info!(connector = "fwd_net", "after the run");
        });
        assert_eq!(
            *got.lock().unwrap(),
            [" INFO throttled (HTTP 429); waiting before retrying wait_ms=1000\n"]
        );
    }
}
