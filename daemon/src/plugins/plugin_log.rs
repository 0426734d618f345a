//! Plugin log lines, re-emitted as `tracing` events with one field per
//! plugin field.
//!
//! A plugin logs through the SDK (`cx.info("page parsed", &[("rows", &n)])`);
//! the line crosses the ABI as a [`LogRecord`] action (level, message, a map
//! of string fields) and the session driver hands it here. Each event carries
//! the host's fields `plugin` and `connector`, the message, and every plugin
//! field under its own name prefixed with [`FIELD_PREFIX`] (`field.rows`), so
//! `--log-format json` prints them as separate keys of the event's `fields`
//! object:
//!
//! ```json
//! {"level":"INFO","fields":{"message":"page parsed","plugin":"x","connector":"c","field.rows":"12"},"target":"reckon::plugins::session"}
//! ```
//!
//! The prefix keeps what a plugin says apart from what the host vouches for:
//! a plugin field named `connector` arrives as `field.connector` and cannot
//! pose as the host's. Values stay strings (they are strings on the wire).
//!
//! `tracing` wants field names known when an event's callsite is registered,
//! as `&'static str`. This module makes such callsites at run time, one per
//! (level, set of field names), leaks them (callsites are never freed, like
//! the macros' statics) and caches them, the way `tracing-log` bridges `log`
//! records. Everything a plugin controls is bounded first ([`bound`]): the
//! message and values are cut at [`MAX_MESSAGE_BYTES`] / [`MAX_VALUE_BYTES`],
//! at most [`MAX_FIELDS`] fields are kept (the rest are counted in
//! `fields_dropped`), keys are reduced to `[A-Za-z0-9_.-]` and
//! [`MAX_KEY_BYTES`], control characters in the message are escaped (a
//! plugin cannot forge a line of the human format), and secrets are masked
//! before anything is cut. At most [`MAX_CALLSITES`] callsites are ever made;
//! past that, a line is emitted with its fields joined into one `fields`
//! string, as before this module existed.
//!
//! What this is not: no filtering of its own (the subscriber's `RUST_LOG`
//! applies, to target `reckon::plugins::session` as before) and no I/O.

use super::http::Redactor;
use plugin_api::protocol::{LogLevel, LogRecord};
// Escapes control characters in a message (shared with the record
// validation messages, which show record keys).
use plugin_api::validate::escape_controls;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing::callsite::{Callsite, Identifier};
use tracing::field::{FieldSet, Value};
use tracing::metadata::Kind;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};

/// Prefix of every plugin field's name in the emitted event.
pub const FIELD_PREFIX: &str = "field.";
/// Most plugin fields kept per line (in key order); the rest are counted.
pub const MAX_FIELDS: usize = 16;
/// Longest message kept, in bytes (UTF-8, cut at a character boundary).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Longest field value kept, in bytes.
pub const MAX_VALUE_BYTES: usize = 2 * 1024;
/// Longest field key kept, in bytes (after sanitising).
pub const MAX_KEY_BYTES: usize = 64;
/// Most distinct (level, field names) callsites ever made in one process.
pub const MAX_CALLSITES: usize = 1024;
/// The target plugin lines are emitted under (the session driver's, as before).
pub const TARGET: &str = "reckon::plugins::session";

/// A plugin log line made safe to emit: redacted, bounded, sanitised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedLog {
    /// Severity.
    pub level: LogLevel,
    /// The message, redacted, cut and with control characters escaped.
    pub message: String,
    /// `(key, value)` in key order: keys sanitised, values redacted and cut.
    pub fields: Vec<(String, String)>,
    /// Fields not kept: over [`MAX_FIELDS`], or a key equal to a kept one
    /// once sanitised.
    pub dropped: usize,
}

/// Cuts `s` to at most `max` bytes at a character boundary, saying so.
/// `s` is already masked (mask first, then cut: a credential cut first
/// kept its first characters), and the cut never splits a `***` mask.
pub(super) fn cut(s: String, max: usize) -> String {
    let total = s.len();
    cut_of(s, max, total)
}

/// [`cut`] of the start of a text `total` bytes long (`s` is all of it
/// when `total` is its length).
fn cut_of(mut s: String, max: usize, total: usize) -> String {
    if s.len() <= max && total <= s.len() {
        return s;
    }
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    while end > 0 && s[end..].starts_with('*') && s[..end].ends_with('*') {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(&format!("…[cut, {total} bytes]"));
    s
}

/// A key as a field name: `[A-Za-z0-9_.-]` only (others become `_`), at most
/// [`MAX_KEY_BYTES`], never empty.
fn sanitise_key(k: &str) -> String {
    let mut out: String = k
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(MAX_KEY_BYTES); // ASCII only: every index is a boundary
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Bounds one plugin line; `redact` masks secrets (applied before cutting,
/// so a cut can never leave half a secret unmasked).
pub fn bound(record: LogRecord, redact: &dyn Fn(&str) -> String) -> BoundedLog {
    let message = cut(escape_controls(&redact(&record.message)), MAX_MESSAGE_BYTES);
    let total = record.fields.len();
    let mut fields: Vec<(String, String)> = Vec::with_capacity(total.min(MAX_FIELDS));
    for (k, v) in record.fields {
        if fields.len() == MAX_FIELDS {
            break;
        }
        let key = sanitise_key(&redact(&k));
        if fields.iter().any(|(have, _)| *have == key) {
            continue;
        }
        fields.push((key, cut(redact(&v), MAX_VALUE_BYTES)));
    }
    // Sanitising may reorder (`a b` → `a_b`); names are sorted for a stable
    // callsite per set of keys.
    fields.sort();
    BoundedLog {
        level: record.level,
        dropped: total - fields.len(),
        message,
        fields,
    }
}

/// A line the plugin printed (its stdout or stderr, relayed by the
/// subprocess host): decoded with `�` for bytes that are not UTF-8,
/// secrets masked, control characters escaped and cut at
/// [`MAX_MESSAGE_BYTES`] as a log message is. `total` is the line's length
/// as printed, when only its start was kept.
pub fn printed_line(bytes: &[u8], total: usize, redactor: &Redactor) -> String {
    let text = escape_controls(&redactor.redact(&String::from_utf8_lossy(bytes)));
    if total > bytes.len() {
        cut_of(text, MAX_MESSAGE_BYTES, total)
    } else {
        cut(text, MAX_MESSAGE_BYTES)
    }
}

/// Emits a plugin line through `tracing` (see the module docs).
pub fn emit(plugin: &str, connector: &str, record: LogRecord, redactor: &Redactor) {
    let level = to_level(record.level);
    if level > tracing::level_filters::LevelFilter::current() {
        return;
    }
    let line = bound(record, &|s| redactor.redact(s));
    match callsite(level, &line) {
        Some(cs) => dispatch(cs, plugin, connector, &line),
        None => emit_flat(plugin, connector, &line),
    }
}

fn to_level(l: LogLevel) -> Level {
    match l {
        LogLevel::Trace => Level::TRACE,
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
        LogLevel::Error => Level::ERROR,
    }
}

/// The fixed fields, in this order, before the plugin's.
const HOST_FIELDS: [&str; 3] = ["message", "plugin", "connector"];
const DROPPED: &str = "fields_dropped";

/// A run-time callsite for plugin lines of one level and set of field names.
struct PluginCallsite {
    metadata: OnceLock<Metadata<'static>>,
    interest: AtomicU8,
}

const INTEREST_NEVER: u8 = 0;
const INTEREST_SOMETIMES: u8 = 1;
const INTEREST_ALWAYS: u8 = 2;

/// Stands in for a callsite's metadata in the instant between its creation
/// and its metadata being set (never observed: the callsite is registered
/// only after).
struct Unset;
static UNSET: Unset = Unset;
static UNSET_METADATA: Metadata<'static> = Metadata::new(
    "plugin log",
    TARGET,
    Level::TRACE,
    None,
    None,
    None,
    FieldSet::new(&[], Identifier(&UNSET)),
    Kind::EVENT,
);
impl Callsite for Unset {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        &UNSET_METADATA
    }
}

impl Callsite for PluginCallsite {
    fn set_interest(&self, interest: Interest) {
        let v = if interest.is_never() {
            INTEREST_NEVER
        } else if interest.is_always() {
            INTEREST_ALWAYS
        } else {
            INTEREST_SOMETIMES
        };
        self.interest.store(v, Ordering::Relaxed);
    }
    fn metadata(&self) -> &Metadata<'_> {
        self.metadata.get().unwrap_or(&UNSET_METADATA)
    }
}

type Key = (Level, bool, Vec<String>);

struct Registry {
    callsites: HashMap<Key, &'static PluginCallsite>,
    names: HashSet<&'static str>,
    full_warned: bool,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| {
        Mutex::new(Registry {
            callsites: HashMap::new(),
            names: HashSet::new(),
            full_warned: false,
        })
    })
}

/// The callsite for this line's level and field names, made on first use;
/// `None` once [`MAX_CALLSITES`] exist.
fn callsite(level: Level, line: &BoundedLog) -> Option<&'static PluginCallsite> {
    let key: Key = (
        level,
        line.dropped > 0,
        line.fields.iter().map(|(k, _)| k.clone()).collect(),
    );
    let mut reg = registry().lock().ok()?;
    if let Some(cs) = reg.callsites.get(&key) {
        return Some(cs);
    }
    if reg.callsites.len() >= MAX_CALLSITES {
        let first = !reg.full_warned;
        reg.full_warned = true;
        drop(reg);
        if first {
            tracing::warn!(
                limit = MAX_CALLSITES,
                "plugins logged more distinct sets of field names than the limit; \
                 further new sets are logged with their fields joined in one `fields` string"
            );
        }
        return None;
    }
    let mut names: Vec<&'static str> = HOST_FIELDS.to_vec();
    if line.dropped > 0 {
        names.push(DROPPED);
    }
    for k in &key.2 {
        let name = format!("{FIELD_PREFIX}{k}");
        let interned = match reg.names.get(name.as_str()) {
            Some(n) => *n,
            None => {
                let leaked: &'static str = Box::leak(name.into_boxed_str());
                reg.names.insert(leaked);
                leaked
            }
        };
        names.push(interned);
    }
    let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
    let cs: &'static PluginCallsite = Box::leak(Box::new(PluginCallsite {
        metadata: OnceLock::new(),
        interest: AtomicU8::new(INTEREST_SOMETIMES),
    }));
    let _ = cs.metadata.set(Metadata::new(
        "plugin log",
        TARGET,
        level,
        Some(file!()),
        Some(line!()),
        Some(module_path!()),
        FieldSet::new(names, Identifier(cs)),
        Kind::EVENT,
    ));
    // Registering asks every subscriber for its interest (and so lets
    // `RUST_LOG` directives match this callsite).
    tracing::callsite::register(cs);
    reg.callsites.insert(key, cs);
    Some(cs)
}

fn dispatch(cs: &'static PluginCallsite, plugin: &str, connector: &str, line: &BoundedLog) {
    if cs.interest.load(Ordering::Relaxed) == INTEREST_NEVER {
        return;
    }
    let meta = cs.metadata();
    let fields = meta.fields();
    let dropped = line.dropped as u64;
    let mut values: Vec<Option<&dyn Value>> = Vec::with_capacity(fields.len());
    values.push(Some(&line.message as &dyn Value));
    values.push(Some(&plugin as &dyn Value));
    values.push(Some(&connector as &dyn Value));
    if line.dropped > 0 {
        values.push(Some(&dropped as &dyn Value));
    }
    values.extend(line.fields.iter().map(|(_, v)| Some(v as &dyn Value)));
    if values.len() != fields.len() {
        // Cannot happen (the callsite was made from this line's names);
        // never emit a misaligned event.
        return emit_flat(plugin, connector, line);
    }
    tracing::dispatcher::get_default(|d| {
        if d.enabled(meta) {
            d.event(&tracing::Event::new(meta, &fields.value_set_all(&values)));
        }
    });
}

/// The fallback: plugin fields joined into one `fields` string.
fn emit_flat(plugin: &str, connector: &str, line: &BoundedLog) {
    let fields = line
        .fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let message = line.message.as_str();
    let dropped = line.dropped;
    match line.level {
        LogLevel::Trace => tracing::trace!(target: TARGET, plugin, connector,
            fields = %fields, fields_dropped = dropped, "{message}"),
        LogLevel::Debug => tracing::debug!(target: TARGET, plugin, connector,
            fields = %fields, fields_dropped = dropped, "{message}"),
        LogLevel::Info => tracing::info!(target: TARGET, plugin, connector,
            fields = %fields, fields_dropped = dropped, "{message}"),
        LogLevel::Warn => tracing::warn!(target: TARGET, plugin, connector,
            fields = %fields, fields_dropped = dropped, "{message}"),
        LogLevel::Error => tracing::error!(target: TARGET, plugin, connector,
            fields = %fields, fields_dropped = dropped, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::json_lines;
    use std::collections::BTreeMap;

    /// QA-10 M2: masked first, then cut; a secret straddling the cut
    /// shows none of its characters, and the cut never leaves a partial
    /// `***` that reads like part of a value.
    #[test]
    fn a_secret_straddling_the_cut_is_masked_whole() {
        let mut r = Redactor::default();
        r.add("S3CRET-value-Z9");
        for pad in MAX_VALUE_BYTES - 20..MAX_VALUE_BYTES + 2 {
            let value = format!("{}S3CRET-value-Z9 tail", "a".repeat(pad));
            let line = bound(record(LogLevel::Info, "m", &[("k", &value)]), &|s| {
                r.redact(s)
            });
            let v = &line.fields[0].1;
            assert!(!v.contains("S3CR") && !v.contains("Z9"), "{v}");
            let kept = v.split('…').next().unwrap();
            let partial = kept.ends_with('*') && !kept.ends_with("a***");
            assert!(!partial, "a partial mask: {kept}");
        }
    }

    fn record(level: LogLevel, message: &str, fields: &[(&str, &str)]) -> LogRecord {
        LogRecord {
            level,
            message: message.into(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn redactor() -> Redactor {
        let mut r = Redactor::default();
        r.add("sk_SECRET_42");
        r
    }

    #[test]
    fn bounding_keeps_small_lines_as_they_are() {
        let r = redactor();
        let line = bound(
            record(
                LogLevel::Info,
                "page parsed",
                &[("rows", "12"), ("stream", "orders")],
            ),
            &|s| r.redact(s),
        );
        assert_eq!(
            line,
            BoundedLog {
                level: LogLevel::Info,
                message: "page parsed".into(),
                fields: vec![
                    ("rows".into(), "12".into()),
                    ("stream".into(), "orders".into())
                ],
                dropped: 0,
            }
        );
    }

    #[test]
    fn bounding_cuts_counts_sanitises_escapes_and_masks() {
        let r = redactor();
        let mut fields: BTreeMap<String, String> = (0..40)
            .map(|i| (format!("k{i:02}"), i.to_string()))
            .collect();
        // Two keys that sanitise to the same name: the second is dropped.
        fields.insert("a b".into(), "first".into());
        fields.insert("a\u{e9}b".into(), "second".into());
        fields.insert("".into(), "empty key".into());
        fields.insert("sk_SECRET_42".into(), "key is a secret".into());
        // A value over the limit, with a multi-byte character at the cut and
        // a secret straddling it (masked before the cut).
        let long = format!("{}é{}", "v".repeat(MAX_VALUE_BYTES - 1), "sk_SECRET_42");
        fields.insert("long".into(), long);
        let message = format!("one\ntwo\u{1b}[31m {}", "m".repeat(MAX_MESSAGE_BYTES * 4));
        let line = bound(
            LogRecord {
                level: LogLevel::Warn,
                message,
                fields,
            },
            &|s| r.redact(s),
        );
        assert_eq!(line.fields.len(), MAX_FIELDS);
        assert_eq!(line.dropped, 45 - MAX_FIELDS);
        let keys: Vec<&str> = line.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&keys[..3], ["_", "a_b", "k00"]);
        assert_eq!(line.fields[1].1, "first");
        assert!(keys.iter().all(|k| k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))));
        assert!(
            line.message.starts_with("one\\ntwo\\u{1b}[31m mmm"),
            "{}",
            &line.message[..30]
        );
        assert!(!line.message.contains('\n'));
        assert!(line.message.len() < MAX_MESSAGE_BYTES + 64);
        assert!(line.message.ends_with(" bytes]"), "{}", line.message);

        // Values alone: one cut at a character boundary, one with a secret
        // straddling the cut (masked first, so no part of it is left).
        let fields = BTreeMap::from([
            (
                "boundary".to_owned(),
                format!("{}é tail", "v".repeat(MAX_VALUE_BYTES - 1)),
            ),
            (
                "straddle".to_owned(),
                format!("{}sk_SECRET_42", "v".repeat(MAX_VALUE_BYTES - 6)),
            ),
            ("sk_SECRET_42".to_owned(), "x".to_owned()),
        ]);
        let line = bound(
            LogRecord {
                level: LogLevel::Warn,
                message: String::new(),
                fields,
            },
            &|s| r.redact(s),
        );
        let value = |k: &str| {
            line.fields
                .iter()
                .find(|(have, _)| have == k)
                .unwrap()
                .1
                .clone()
        };
        let v = value("boundary");
        assert_eq!(
            v,
            format!(
                "{}…[cut, {} bytes]",
                "v".repeat(MAX_VALUE_BYTES - 1),
                MAX_VALUE_BYTES + 6
            )
        );
        assert_eq!(
            value("straddle"),
            format!("{}***", "v".repeat(MAX_VALUE_BYTES - 6))
        );
        assert_eq!(
            value("___"),
            "x",
            "a secret key is masked: {:?}",
            line.fields
        );
        let oversized_key = bound(
            record(LogLevel::Info, "m", &[(&"k".repeat(500), "v")]),
            &|s| s.to_owned(),
        );
        assert_eq!(oversized_key.fields[0].0.len(), MAX_KEY_BYTES);
    }

    #[test]
    fn fields_become_separate_json_keys_under_the_prefix() {
        let r = redactor();
        let lines = json_lines(|| {
            emit(
                "faulty",
                "c1",
                record(
                    LogLevel::Info,
                    "page parsed",
                    &[
                        ("rows", "12"),
                        ("connector", "forged"),
                        ("token", "sk_SECRET_42"),
                    ],
                ),
                &r,
            );
            // The same names again reuse the callsite; other names get theirs.
            emit(
                "faulty",
                "c1",
                record(LogLevel::Info, "again", &[("rows", "13")]),
                &r,
            );
            emit(
                "faulty",
                "c2",
                record(LogLevel::Debug, "other", &[("x", "1")]),
                &r,
            );
        });
        assert_eq!(lines.len(), 3, "{lines:?}");
        let f = &lines[0]["fields"];
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["target"], TARGET);
        assert_eq!(f["message"], "page parsed");
        assert_eq!(f["plugin"], "faulty");
        assert_eq!(
            f["connector"], "c1",
            "a plugin field cannot pose as the host's"
        );
        assert_eq!(f["field.connector"], "forged");
        assert_eq!(f["field.rows"], "12");
        assert_eq!(f["field.token"], "***");
        assert!(
            f.get("fields_dropped").is_none() && f.get("fields").is_none(),
            "{f}"
        );
        assert_eq!(lines[1]["fields"]["field.rows"], "13");
        assert_eq!(lines[1]["fields"]["message"], "again");
        assert_eq!(lines[2]["level"], "DEBUG");
        assert_eq!(lines[2]["fields"]["field.x"], "1");
        assert_eq!(lines[2]["fields"]["connector"], "c2");
    }

    #[test]
    fn a_line_with_too_many_fields_says_how_many_were_dropped() {
        let fields: Vec<(String, String)> = (0..20)
            .map(|i| (format!("k{i:02}"), i.to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let lines = json_lines(|| {
            emit(
                "p",
                "c",
                record(LogLevel::Error, "many", &refs),
                &Redactor::default(),
            )
        });
        let f = &lines[0]["fields"];
        assert_eq!(f["fields_dropped"], 20 - MAX_FIELDS as u64);
        assert_eq!(f["field.k00"], "0");
        assert_eq!(
            f[&format!("field.k{:02}", MAX_FIELDS - 1)],
            (MAX_FIELDS - 1).to_string()
        );
        assert!(f.get(format!("field.k{MAX_FIELDS:02}")).is_none(), "{f}");
    }

    #[test]
    fn levels_the_subscriber_does_not_want_are_not_emitted() {
        let lines = crate::test_support::json_lines_at(tracing::Level::INFO, || {
            emit(
                "p",
                "c",
                record(LogLevel::Debug, "quiet", &[("a", "1")]),
                &Redactor::default(),
            );
            emit(
                "p",
                "c",
                record(LogLevel::Trace, "quieter", &[]),
                &Redactor::default(),
            );
        });
        assert!(lines.is_empty(), "{lines:?}");
    }
}
