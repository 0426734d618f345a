//! Test support: what `tracing` events a piece of code emits, as the JSON
//! lines the daemon's `--log-format json` writes.

use std::sync::{Arc, Mutex};

/// Collects what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

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
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// [`json_lines_at`] every level.
pub fn json_lines(emit_lines: impl FnOnce()) -> Vec<serde_json::Value> {
    json_lines_at(tracing::Level::TRACE, emit_lines)
}
