//! Where a config error is: file, line, column and key path.
//!
//! [`SourceMap`] keeps the config text and a flat index of every key's span
//! (from `toml_edit`), so an error found by serde (which knows a byte span) or
//! by a later check (which knows a key path) can be reported with both.

use std::fmt;
use std::ops::Range;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file as given.
    pub file: String,
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// 1-based column, if known.
    pub column: Option<usize>,
    /// Key path, e.g. `connectors[1].settings.api_key` (empty for the file).
    pub path: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": `{}`: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The config text and the span of every key path in it.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// File name for messages.
    pub file: String,
    text: String,
    /// (path, key span, value span), in document order.
    entries: Entries,
}

impl SourceMap {
    /// Indexes `text` (already known to parse).
    pub fn new(file: &str, text: &str, doc: &toml_edit::Table) -> SourceMap {
        let mut entries = Vec::new();
        index_table(doc, "", &mut entries);
        SourceMap {
            file: file.to_owned(),
            text: text.to_owned(),
            entries,
        }
    }

    /// An empty map for a file that did not parse.
    pub fn unparsed(file: &str, text: &str) -> SourceMap {
        SourceMap {
            file: file.to_owned(),
            text: text.to_owned(),
            entries: Vec::new(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map(|i| before[i + 1..].chars().count())
            .unwrap_or_else(|| before.chars().count())
            + 1;
        (line, col)
    }

    /// The innermost key path whose key or value span contains `offset`.
    pub fn path_at(&self, offset: usize) -> Option<String> {
        let mut best: Option<(usize, &str)> = None;
        for (path, k, v) in &self.entries {
            for r in [k, v].into_iter().flatten() {
                if r.start <= offset && offset < r.end.max(r.start + 1) {
                    let len = r.end - r.start;
                    if best.is_none_or(|(l, p)| len < l || (len == l && path.len() > p.len())) {
                        best = Some((len, path));
                    }
                }
            }
        }
        best.map(|(_, p)| p.to_owned())
    }

    /// The best span for a key path: its value, else its key, else the
    /// nearest enclosing path that has one.
    pub fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let mut p = path.to_owned();
        loop {
            if let Some((_, k, v)) = self.entries.iter().find(|(q, _, _)| *q == p) {
                if let Some(r) = v.clone().or_else(|| k.clone()) {
                    return Some(r);
                }
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return None,
            }
        }
    }

    /// Whether the file sets `path` itself (not only a section above it):
    /// a key it does not set has its default.
    pub fn sets(&self, path: &str) -> bool {
        self.entries.iter().any(|(q, _, _)| q == path)
    }

    /// An error at a byte span.
    pub fn error_at(&self, span: Option<Range<usize>>, path: &str, message: String) -> ConfigError {
        let (line, column) = match span {
            Some(r) => {
                let (l, c) = self.line_col(r.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            path: path.to_owned(),
            message,
        }
    }

    /// An error at a key path (located through the index).
    pub fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        self.error_at(self.span_of(path), path, message.into())
    }
}

/// `prefix.key`, the key quoted unless it is a bare TOML key (the key path
/// form of [`SourceMap`]'s index).
pub(crate) fn join(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let k = if bare {
        key.to_owned()
    } else {
        format!("\"{}\"", key.replace('"', "\\\""))
    };
    if prefix.is_empty() {
        k
    } else {
        format!("{prefix}.{k}")
    }
}

type Entries = Vec<(String, Option<Range<usize>>, Option<Range<usize>>)>;

fn index_table(t: &dyn toml_edit::TableLike, prefix: &str, out: &mut Entries) {
    for (k, item) in t.iter() {
        let key_span = t.get_key_value(k).and_then(|(key, _)| key.span());
        let path = join(prefix, k);
        index_item(item, &path, key_span, out);
    }
}

fn index_item(
    item: &toml_edit::Item,
    path: &str,
    key_span: Option<Range<usize>>,
    out: &mut Entries,
) {
    match item {
        toml_edit::Item::None => {}
        toml_edit::Item::Value(v) => {
            out.push((path.to_owned(), key_span, v.span()));
            index_value(v, path, out);
        }
        toml_edit::Item::Table(t) => {
            out.push((path.to_owned(), key_span, t.span()));
            index_table(t, path, out);
        }
        toml_edit::Item::ArrayOfTables(a) => {
            out.push((path.to_owned(), key_span, None));
            for (i, t) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.push((p.clone(), None, t.span()));
                index_table(t, &p, out);
            }
        }
    }
}

fn index_value(v: &toml_edit::Value, path: &str, out: &mut Entries) {
    match v {
        toml_edit::Value::InlineTable(t) => index_table(t, path, out),
        toml_edit::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.push((p.clone(), None, v.span()));
                index_value(v, &p, out);
            }
        }
        _ => {}
    }
}

/// What follows "no ... with id `x`" when `x` is not among the `known` ids:
/// "; did you mean `y`? (configured: `a`, `y`)", or " (configured: none)".
pub fn not_configured(id: &str, known: &[&str]) -> String {
    let hint = nearest(id, known.iter().copied())
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    let list = if known.is_empty() {
        "none".to_owned()
    } else {
        known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{hint} (configured: {list})")
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate nearest to `word`, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Nothing typed, or nothing of a candidate kept (an empty timezone is
    // not a typo of `GB`): no suggestion.
    if word.trim().is_empty() {
        return None;
    }
    let lw = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lw, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Rewrites serde's "unknown field `x`, expected one of `a`, `b`" into a
/// sentence that suggests the nearest valid key. `least` is the smallest
/// whole number the key takes (0, or 1 where 0 is refused too), named when
/// a negative number is given.
pub fn explain_serde_message(msg: &str, least: u32) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            let name = &rest[..end];
            let tail = &rest[end..];
            let valid: Vec<&str> = tail.split('`').skip(2).step_by(2).collect();
            let mut out = format!("unknown key `{name}`");
            if let Some(n) = nearest(name, valid.iter().copied()) {
                out.push_str(&format!("; did you mean `{n}`?"));
            }
            if valid.is_empty() {
                out.push_str("; this table takes no keys");
            } else {
                out.push_str(&format!(
                    " (valid keys: {})",
                    valid
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            return out;
        }
    }
    if msg.starts_with("invalid socket address syntax") {
        return "expected a socket address such as `127.0.0.1:9187` (IP and port; a host name such as `localhost` is not accepted here: write `127.0.0.1`, or `[::1]` for IPv6)".into();
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let rest = rest
            .replace("expected u64", "expected a whole number")
            .replace("expected u32", "expected a whole number")
            .replace("expected usize", "expected a whole number")
            .replace("expected a boolean", "expected `true` or `false`")
            .replace(
                "expected a Decimal type representing a fixed-point number",
                "expected a decimal written as a quoted string, e.g. \"10\" or \"12.50\" (a bare number could lose digits as a float)",
            )
            .replace(
                "map, expected a formatted date string",
                "a TOML date, expected a date written as a quoted string, e.g. \"2026-11-01\"",
            );
        return format!("wrong type: found {rest}");
    }
    if let Some(rest) = msg.strip_prefix("invalid value: integer `") {
        if rest.starts_with('-') && rest.contains("expected u") {
            let n = rest.split('`').next().unwrap_or_default();
            return format!("{n} is negative; expected a whole number of {least} or more");
        }
    }
    if msg.trim_end() == "input is out of range" {
        return "not a day of the calendar (check the month and day), e.g. \"2026-11-01\"".into();
    }
    msg.trim_end().to_owned()
}
