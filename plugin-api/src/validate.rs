//! The host's checks of a plugin's output, shared by the daemon's session
//! driver and [`crate::testing::FakeHost`], so a plugin's tests refuse what
//! the daemon refuses, with the same words:
//! - records ([`record`]): the record kind of the stream, non-empty ids,
//!   ISO-4217 currencies, amounts that must not be negative nor reach
//!   [`MAX_AMOUNT`], IANA timezones, and times and days within
//!   [`EARLIEST`, `LATEST`);
//! - the session's shape: no records or checkpoints in a check session, at
//!   most [`MAX_BUFFERED_RECORDS`] records without a checkpoint
//!   ([`emitted`], [`checkpoint_stream`]);
//! - checkpoints: a declared stream ([`checkpoint_stream`]), the watermark
//!   ([`watermark`]), a complete pass ([`covers`]);
//! - paging: a cursor that does not advance ([`RepeatedRequests`]) or
//!   advances over empty pages without end ([`EmptyPages`]);
//! - the manifest's `auth` settings ([`auth_settings`]).

use crate::protocol::{Checkpoint, Manifest, Record, RecordKind, SessionMode, StreamSpec, Window};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// The first day a record may be of (inclusive): an earlier time is a
/// platform's "no value" (0 or -1 as a Unix time) or a misread field.
pub const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// Amounts must stay below this in size (a quadrillion major units, 10^15):
/// far beyond any real sale, spend, refund or commission in any active
/// currency, and small enough that sums of stored amounts in one currency
/// stay within `Decimal`'s range (about 7.9 × 10^28) up to 79 trillion
/// of them. A 28-digit amount was stored as sent and then made `reckon kpi`
/// and the statements panic on "Addition overflowed" (QA20 R20-1). An
/// amount converted at an FX rate (up to 10^9) can still reach 10^24, so
/// what converts and multiplies amounts checks its results (QA24): the KPI
/// sums refuse the report, statements hold a line back, reconciliation
/// scales refunds without overflowing.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

/// Counts on a spend row (impressions, clicks) must stay below this
/// (10^15): far beyond any real day of any campaign (QA25 N2: 9.2 × 10^18
/// clicks were stored and the KPI sums saturated).
pub const MAX_COUNT: u64 = 1_000_000_000_000_000;

/// The first day a record may no longer be of: a later time is a misread
/// field (milliseconds read as seconds give years past 50,000), and would
/// take date arithmetic out of range downstream.
pub const LATEST: NaiveDate = match NaiveDate::from_ymd_opt(2100, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

fn check_day(field: &str, day: NaiveDate) -> Result<(), String> {
    if (EARLIEST..LATEST).contains(&day) {
        Ok(())
    } else {
        Err(format!(
            "field `{field}`: {day} is outside {EARLIEST} .. {LATEST} (a misread or placeholder time?)"
        ))
    }
}

fn check_time(field: &str, t: DateTime<Utc>) -> Result<(), String> {
    check_day(field, t.date_naive()).map_err(|_| {
        format!(
            "field `{field}`: {} is outside {EARLIEST} .. {LATEST} (a misread or placeholder time?)",
            t.to_rfc3339()
        )
    })
}

fn check_money(field: &str, m: &crate::Money, non_negative: bool) -> Result<(), String> {
    if !crate::currency::is_known(&m.currency) {
        let upper = m.currency.to_ascii_uppercase();
        if upper != m.currency && crate::currency::is_known(&upper) {
            return Err(format!(
                "field `{field}`: currency `{}` must be upper case (`{upper}`)",
                m.currency
            ));
        }
        return Err(format!(
            "field `{field}`: currency `{}` is not an ISO-4217 code",
            m.currency
        ));
    }
    if non_negative && m.amount < Decimal::ZERO {
        return Err(format!("field `{field}`: amount {} is negative", m.amount));
    }
    if let Some(why) = amount_too_large(m.amount) {
        return Err(format!("field `{field}`: amount {} {why}", m.amount));
    }
    Ok(())
}

/// Why `amount` cannot be stored, if its size is not below [`MAX_AMOUNT`]:
/// the text that follows the amount in a message ("amount 1000000000000000
/// is not below …"). For whoever reads amounts and can name where one came
/// from (a file's line, a postback's parameter) before the host's check.
pub fn amount_too_large(amount: Decimal) -> Option<String> {
    (amount.abs() >= MAX_AMOUNT).then(|| {
        format!("is not below {MAX_AMOUNT} in size, the largest Reckon stores (a misread number?)")
    })
}

/// An id: not empty, and no control or invisible characters (a NUL or
/// newline in a key cannot be typed into `records history --key`, and
/// breaks CSV exports).
fn non_empty(field: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err(format!("field `{field}` is empty"))
    } else {
        no_control(field, v)
    }
}

/// A matching key that may be absent: no control characters (a newline in
/// an order or click id would never match the order's, and breaks exports)
/// and no invisible ones ([`is_invisible`]).
fn no_control(field: &str, v: &str) -> Result<(), String> {
    if v.chars().any(char::is_control) {
        Err(format!("field `{field}`: {v:?} holds a control character"))
    } else if let Some(c) = v.chars().find(|&c| is_invisible(c)) {
        Err(format!(
            "field `{field}`: {v:?} holds the invisible character U+{:04X} (a text-direction control, zero-width character or line separator): the id would show as other text, or as an id it is not",
            u32::from(c)
        ))
    } else {
        Ok(())
    }
}

/// Characters an id never holds that change how text shows without
/// showing themselves (QA28-E F5: a partner id `a<U+202E>fdp.exe` showed
/// as `aexe.pdf` in a spreadsheet; a zero-width space makes a second id
/// that looks like the first): text-direction controls, zero-width and
/// other invisible format characters, the byte-order mark, the line and
/// paragraph separators.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// How far a checkpoint's watermark may lie after the later of the
/// session's clock and the end of its window (midnight UTC after its last
/// day), and, for a stream's first watermark, before the window's first day
/// (midnight UTC): a day, for connectors whose days are not UTC's and for
/// clocks that disagree a little.
pub const WATERMARK_SLACK_HOURS: i64 = 24;

/// Checks a checkpoint's watermark as the host does before it stores it:
/// - not earlier than `previous` (the stream's last watermark, committed in
///   this session or stored by an earlier one): it never moves backwards;
/// - not later than `now` or the window's end, whichever is later, plus
///   [`WATERMARK_SLACK_HOURS`]: a watermark says how far the data was read,
///   and one in the future would make every later run start at "today less
///   the lookback", silently skipping whatever an outage left unread
///   (keeping `previous` unchanged is allowed: after the host's clock went
///   back, the stored one may be ahead of it);
/// - for a stream's first watermark (no `previous`), not earlier than the
///   window's first day less the slack: the next run starts there, so a
///   watermark long before the window turns it into a backfill of
///   everything since.
///
/// `window` is `None` for a check session (no window). The error names the
/// stream and the value.
pub fn watermark(
    stream: &str,
    watermark: DateTime<Utc>,
    previous: Option<DateTime<Utc>>,
    window: Option<&crate::protocol::Window>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let slack = chrono::Duration::hours(WATERMARK_SLACK_HOURS);
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let window_end = window.and_then(|w| w.to.succ_opt()).map(midnight);
    let latest = window_end.map_or(now, |e| e.max(now)) + slack;
    // A stored watermark that is itself too late (stored before the host
    // checked this) wedges the stream: say how to clear it.
    let hint = match previous {
        Some(prev) if prev > latest => format!(
            "; the stream's previous watermark {} is itself after {}: if a faulty build stored it, \
             `reckon records checkpoints --source <connector> --reset --stream {stream}` clears it (records are kept)",
            prev.to_rfc3339(),
            latest.to_rfc3339()
        ),
        // QA28-B F5: say what the plugin should do, as record errors do.
        _ => "; a watermark may only stay or move forward: start from the committed one \
              (`cx.checkpoint(stream)`'s `watermark`) and commit the later of the two (`.max(..)`)"
            .to_owned(),
    };
    if let Some(prev) = previous {
        if watermark < prev {
            return Err(format!(
                "stream `{stream}`: checkpoint watermark {} moves backwards from {}{hint}",
                watermark.to_rfc3339(),
                prev.to_rfc3339()
            ));
        }
    }
    // Keeping the previous watermark is never refused here: after the
    // host's clock went back, the stored one may be ahead of it, and a
    // stream that may neither go back nor stay would be wedged.
    if watermark > latest && previous.is_none_or(|p| watermark > p) {
        return Err(format!(
            "stream `{stream}`: checkpoint watermark {} is in the future: after {}, the later of the session's clock ({}) and its window's end ({}) plus {WATERMARK_SLACK_HOURS} h; \
             a watermark says how far the data was read (cap it at `cx.now()`); a misread time (milliseconds as seconds?) or a \"next sync\" field?{hint}",
            watermark.to_rfc3339(),
            latest.to_rfc3339(),
            now.to_rfc3339(),
            window_end.map_or("none".to_owned(), |e| e.to_rfc3339()),
        ));
    }
    if let (None, Some(w)) = (previous, window) {
        let earliest = midnight(w.from) - slack;
        if watermark < earliest {
            return Err(format!(
                "stream `{stream}`: checkpoint watermark {} is before the session's window {}..{} (earliest accepted {}): \
                 the next run would start there and re-pull everything since; start a stream's watermark at the window's first day",
                watermark.to_rfc3339(),
                w.from,
                w.to,
                earliest.to_rfc3339()
            ));
        }
    }
    Ok(())
}

/// Checks the settings a manifest's `auth` names against its
/// `config_schema`: each must be one of the schema's `properties`, and each
/// must be marked `"x-secret": true`, except a Basic `username` (often an
/// account id the plugin also needs, e.g. in URL paths). A credential in a
/// setting that is not secret would be accepted as a literal in the config,
/// handed to the plugin, and shown unmasked in its log lines and in a
/// recorded session (`sync --record`). The daemon's loader refuses such a
/// manifest, and so does [`crate::testing::FakeHost`].
pub fn auth_settings(m: &crate::protocol::Manifest) -> Result<(), String> {
    use crate::protocol::AuthSpec;
    fn names<'a>(a: &'a AuthSpec, out: &mut Vec<(&'a str, bool)>) {
        match a {
            AuthSpec::Basic { username, password } => {
                out.push((username, false));
                out.push((password, true));
            }
            AuthSpec::Bearer { token } => out.push((token, true)),
            AuthSpec::Header { value, .. } | AuthSpec::Query { value, .. } => {
                out.push((value, true));
            }
            AuthSpec::Oauth2RefreshToken {
                client_id,
                client_secret,
                refresh_token,
                ..
            } => {
                out.push((client_id, true));
                out.push((client_secret, true));
                out.push((refresh_token, true));
            }
            AuthSpec::All { schemes } => schemes.iter().for_each(|s| names(s, out)),
        }
    }
    let Some(auth) = &m.auth else {
        return Ok(());
    };
    let mut wanted = Vec::new();
    names(auth, &mut wanted);
    let properties = m
        .config_schema
        .get("properties")
        .and_then(|p| p.as_object());
    for (name, secret) in wanted {
        let Some(spec) = properties.and_then(|p| p.get(name)) else {
            let declared = properties.map_or_else(
                || "none".to_owned(),
                |p| {
                    p.keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            );
            return Err(format!(
                "`auth` names the setting `{name}`, which `config_schema` does not declare (its properties: {declared}): \
                 add it (with \"x-secret\": true), or correct the name"
            ));
        };
        if secret && spec.get("x-secret").and_then(|v| v.as_bool()) != Some(true) {
            return Err(format!(
                "`auth` setting `{name}` is not marked \"x-secret\": true in `config_schema`: mark it `x-secret`, \
                 so the credential is read from a secret source, never handed to the plugin and masked in logs and recordings"
            ));
        }
    }
    Ok(())
}

/// How many times in a row a plugin may ask again for the request whose
/// answer it has just committed: the repeat after that, the 4th identical
/// request in a row (3 pages committed), stops the session and is not
/// sent.
pub const MAX_REPEATED_REQUESTS: u32 = 3;

/// Spots a cursor that does not advance, or that cycles: the plugin commits
/// a page, then asks for a request whose answer it has already committed
/// (the very same request, or one of an earlier page: `2 → 3 → 2 → 3`), and
/// again, and again. Without it a plugin following such a cursor hammers the
/// platform until `max_requests_per_run` (100,000 by default), storing the
/// same pages each time (QA20 R20-7: a 2-cycle was not caught). Asking
/// again *without* a commit in between (polling a report, retrying a 429)
/// is not counted, and a request not answered before starts the count
/// over. The daemon and [`crate::testing::FakeHost`] both use it.
#[derive(Debug, Default)]
pub struct RepeatedRequests {
    last: Option<u64>,
    committed_since: bool,
    /// Requests a commit followed: their answers are stored.
    answered: std::collections::HashSet<u64>,
    repeats: u32,
}

impl RepeatedRequests {
    /// A request the plugin asks for; the error (naming the method and URL,
    /// which the daemon redacts) when it is the 4th request in a row
    /// ([`MAX_REPEATED_REQUESTS`] repeats), each after a commit, whose
    /// answer was committed before (the message counts the repeats: "3
    /// times in a row").
    pub fn request(&mut self, method: &str, url: &str, body: Option<&str>) -> Result<(), String> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (method, url, body).hash(&mut h);
        let this = h.finish();
        if self.committed_since {
            self.answered.extend(self.last);
        }
        let same = self.last == Some(this);
        if self.committed_since && self.answered.contains(&this) {
            self.repeats += 1;
        } else if !same {
            self.repeats = 0;
        }
        self.last = Some(this);
        self.committed_since = false;
        if self.repeats >= MAX_REPEATED_REQUESTS {
            return Err(if same {
                format!(
                    "asked for the same request ({method} {url}) again after committing its answer, \
                     {MAX_REPEATED_REQUESTS} times in a row: a cursor that does not advance? The session stops \
                     (the pages committed before are kept); follow the platform's next cursor, and stop when it has none"
                )
            } else {
                format!(
                    "asked again for requests whose answers it had already committed ({method} {url} and others), \
                     {MAX_REPEATED_REQUESTS} times in a row: a cursor that goes round in a cycle? The session stops \
                     (the pages committed before are kept); follow the platform's next cursor, and stop when it has none"
                )
            });
        }
        Ok(())
    }

    /// A checkpoint was committed.
    pub fn committed(&mut self) {
        self.committed_since = true;
    }
}

/// Most records a session may emit after its last checkpoint (a memory
/// guard: the host holds them until the checkpoint that commits them). The
/// action that would take the buffer past it fails the session
/// ([`emitted`]); a plugin commits each page with its checkpoint.
pub const MAX_BUFFERED_RECORDS: usize = 2_000_000;

/// Most checkpoints in a row that hold no records, do not move their
/// stream's watermark and declare no complete pass, after which the plugin
/// may not ask for another request ([`EmptyPages`]): an API whose cursor
/// advances without end over empty pages (QA31-C F2: `{"data": [], "next":
/// "<n+1>"}` kept a sync running, and its connector's schedule skipped,
/// until the daemon stopped). A real platform's empty page says it is the
/// last; a plugin moving through many empty days moves its watermark or
/// commits rows.
pub const MAX_EMPTY_PAGES: u32 = 1_000;

/// Checks records a plugin emits, as the host does before it holds them:
/// none in a check session, and no more than [`MAX_BUFFERED_RECORDS`]
/// after the last checkpoint (`buffered` held already, `more` emitted
/// now).
pub fn emitted(mode: SessionMode, buffered: usize, more: usize) -> Result<(), String> {
    if mode == SessionMode::Check {
        return Err("records emitted in a check session".into());
    }
    if buffered.saturating_add(more) > MAX_BUFFERED_RECORDS {
        return Err(format!(
            "more than {MAX_BUFFERED_RECORDS} records without a checkpoint; \
             commit each page with its checkpoint (`cx.commit(checkpoint)`)"
        ));
    }
    Ok(())
}

/// Checks a checkpoint's place and stream, as the host does before anything
/// else of it: none in a check session (it stores nothing), and only of a
/// stream the manifest declares, whose spec it returns.
pub fn checkpoint_stream<'m>(
    mode: SessionMode,
    manifest: &'m Manifest,
    stream: &str,
) -> Result<&'m StreamSpec, String> {
    if mode == SessionMode::Check {
        return Err("checkpoint in a check session".into());
    }
    manifest
        .streams
        .iter()
        .find(|s| s.name == stream)
        .ok_or_else(|| {
            format!(
                "checkpoint for stream `{stream}`, which the manifest does not declare ({})",
                stream_names(manifest)
            )
        })
}

/// The manifest's streams, for messages: `` `a`, `b` ``.
pub fn stream_names(m: &Manifest) -> String {
    m.streams
        .iter()
        .map(|s| format!("`{}`", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a checkpoint's complete pass ([`Checkpoint::covers`]), as the
/// host does before it stores the page: a pass must be of a spend stream
/// (`kind`), name an account, and its days must lie within the session's
/// `window` (none in a check session) in order.
pub fn covers(cp: &Checkpoint, kind: RecordKind, window: Option<&Window>) -> Result<(), String> {
    let Some(c) = &cp.covers else {
        return Ok(());
    };
    let within = window
        .is_some_and(|w| w.from <= c.days.from && c.days.from <= c.days.to && c.days.to <= w.to);
    if kind == RecordKind::Spend && !c.account_id.is_empty() && within {
        return Ok(());
    }
    Err(format!(
        "stream `{}`: checkpoint declares a complete pass over account `{}` days {}..{}, but a pass must be of a \
         spend stream, name an account and lie within the session's window ({})",
        cp.stream,
        escape_controls(&c.account_id),
        c.days.from,
        c.days.to,
        window.map_or("none".to_owned(), |w| format!("{}..{}", w.from, w.to))
    ))
}

/// Spots a cursor that advances without end over empty pages: counts the
/// checkpoints in a row that hold no records, do not move their stream's
/// watermark and declare no complete pass; after [`MAX_EMPTY_PAGES`] of
/// them the plugin's next request is refused (and not sent). The daemon and
/// [`crate::testing::FakeHost`] both use it; the daemon fails the session
/// as a retryable `upstream` error.
#[derive(Debug, Default)]
pub struct EmptyPages {
    pages: u32,
    stream: String,
}

impl EmptyPages {
    /// A checkpoint was committed with `records` records (as emitted, before
    /// a key given twice is stored once); `previous` is its stream's
    /// watermark before it (committed in this session or stored by an
    /// earlier one).
    pub fn committed(&mut self, cp: &Checkpoint, records: usize, previous: Option<DateTime<Utc>>) {
        let moved = previous.is_none_or(|p| cp.watermark > p);
        if records == 0 && !moved && cp.covers.is_none() {
            self.pages = self.pages.saturating_add(1);
            self.stream.clone_from(&cp.stream);
        } else {
            self.pages = 0;
        }
    }

    /// The plugin asks for a request; the error (to follow "plugin `<id>` ")
    /// after [`MAX_EMPTY_PAGES`] empty pages in a row.
    pub fn request(&self) -> Result<(), String> {
        if self.pages < MAX_EMPTY_PAGES {
            return Ok(());
        }
        Err(format!(
            "committed {} pages in a row that held no records and moved no watermark (stream `{}`), and asked for \
             another: the platform says more pages remain but sends none (a cursor that advances without end?); \
             the pages committed so far are kept",
            self.pages, self.stream
        ))
    }
}

/// What the host says of a key given twice in one page with different
/// values.
pub const CONFLICTING_DUPLICATE: &str =
    "the page holds this key twice with different values; the later one is stored";

/// The keys one page gives again with values that differ from the key's
/// first record (once per such later record, in page order). The host
/// stores a key given twice in one page once, the later record winning,
/// and warns ([`CONFLICTING_DUPLICATE`]) about each of these: the platform
/// contradicted itself within one answer. An identical repeat (a page
/// boundary shifted by a new record) is not listed. `source` is not
/// compared (the host sets it). The daemon's sync and
/// [`crate::testing::FakeHost`] both use it.
pub fn conflicting_duplicates(records: &[Record]) -> Vec<String> {
    let mut out = Vec::new();
    if records.len() < 2 {
        return out;
    }
    let mut first: std::collections::HashMap<(RecordKind, String), &Record> =
        std::collections::HashMap::with_capacity(records.len());
    for r in records {
        let key = (r.kind(), r.key());
        match first.get(&key) {
            Some(earlier) if !same_but_source(earlier, r) => out.push(key.1),
            Some(_) => {}
            None => {
                first.insert(key, r);
            }
        }
    }
    out
}

fn same_but_source(a: &Record, b: &Record) -> bool {
    if a == b {
        return true;
    }
    if a.source() == b.source() {
        return false;
    }
    let mut a = a.clone();
    a.set_source(b.source());
    a == *b
}

/// Whether `c` reorders or breaks the text around it without showing
/// itself: the control characters (U+0000–U+001F, U+007F–U+009F: newline,
/// tab, escape...), the bidirectional formatting characters (U+061C,
/// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the line and
/// paragraph separators (U+2028, U+2029). A right-to-left override
/// (U+202E) makes everything after it on the line read backwards; a newline
/// starts a fake line.
///
/// The one definition of what text from outside must not carry raw where
/// people read it: [`escape_controls`] writes these as `\u{202e}` in log
/// lines and errors, and the daemon's `display_safe` as `<U+202E>` in
/// tables, warnings and HTML. Every one that is not a control character is
/// also [`is_invisible`] (which ids may not hold at all).
pub fn is_hidden_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Escapes the characters of [`is_hidden_control`] (newlines, escape
/// sequences, text-direction controls) as Rust does (`\n`, `\u{1b}`,
/// `\u{202e}`), leaving the rest as is: for text a plugin or platform chose
/// that goes into a log line or an error (a plugin's log message or error,
/// a record's key), so it cannot forge a line or make the line read as
/// other text (QA31-C F6: a U+202E in a record id turned the rest of the
/// error line around).
///
/// The [`is_invisible`] characters (a zero-width space, the byte-order
/// mark...) are escaped too: in a log line or an error they only hide,
/// and a key `7900<U+200B>` read as a plain `7900` in the error that
/// refused it for that character (QA35c L4). Except the zero-width
/// joiner and non-joiner (U+200C, U+200D), which join emoji and letters
/// of several scripts in names.
pub fn escape_controls(s: &str) -> String {
    let hidden = |c: char| {
        is_hidden_control(c) || (is_invisible(c) && !matches!(c, '\u{200C}' | '\u{200D}'))
    };
    if !s.chars().any(hidden) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Validates one record for a stream of `kind` and stamps its source
/// (`connector`): what the host checks before it stores anything.
pub fn record(r: &mut Record, kind: RecordKind, connector: &str) -> Result<(), String> {
    if r.kind() != kind {
        return Err(format!(
            "record is of kind `{}` but the stream holds `{}`",
            r.kind().as_str(),
            kind.as_str()
        ));
    }
    r.set_source(connector);
    match r {
        Record::Spend(s) => {
            non_empty("account_id", &s.account_id)?;
            non_empty("campaign_id", &s.campaign_id)?;
            check_day("day", s.day)?;
            if s.timezone.parse::<chrono_tz::Tz>().is_err() {
                return Err(format!(
                    "field `timezone`: `{}` is not an IANA timezone",
                    s.timezone
                ));
            }
            check_money("spend", &s.spend, true)?;
            if let Some(c) = s.platform_conversions {
                if c < Decimal::ZERO {
                    return Err(format!("field `platform_conversions`: {c} is negative"));
                }
                // Summed and multiplied by the KPI code like amounts (QA24
                // F10: a 29-digit count panicked `reckon kpi`).
                if c >= MAX_AMOUNT {
                    return Err(format!(
                        "field `platform_conversions`: {c} is not below {MAX_AMOUNT}: not a count of conversions (a misread field?)"
                    ));
                }
            }
            for (field, n) in [("impressions", s.impressions), ("clicks", s.clicks)] {
                if n >= MAX_COUNT {
                    return Err(format!(
                        "field `{field}`: {n} is not below {MAX_COUNT}: not a count of one day's {field} (a misread field?)"
                    ));
                }
            }
            if let Some(v) = &s.platform_conversion_value {
                check_money("platform_conversion_value", v, true)?;
            }
        }
        Record::Conversion(c) => {
            non_empty("external_id", &c.external_id)?;
            non_empty("partner_id", &c.partner_id)?;
            for (field, v) in [
                ("order_id", &c.order_id),
                ("click_id", &c.click_id),
                ("coupon", &c.coupon),
            ] {
                if let Some(v) = v {
                    no_control(field, v)?;
                }
            }
            check_time("occurred_at", c.occurred_at)?;
            for (field, t) in [
                ("clicked_at", c.clicked_at),
                ("status_changed_at", c.status_changed_at),
                ("locked_at", c.locked_at),
            ] {
                if let Some(t) = t {
                    check_time(field, t)?;
                }
            }
            if let Some(m) = &c.sale_amount {
                check_money("sale_amount", m, false)?;
            }
            if let Some(m) = &c.commission {
                check_money("commission", m, false)?;
            }
        }
        Record::Order(o) => {
            non_empty("order_id", &o.order_id)?;
            for (i, v) in o.alt_ids.iter().enumerate() {
                no_control(&format!("alt_ids[{i}]"), v)?;
            }
            for (i, v) in o.click_ids.iter().enumerate() {
                no_control(&format!("click_ids[{i}]"), v)?;
            }
            if let Some(v) = &o.coupon {
                no_control("coupon", v)?;
            }
            check_time("created_at", o.created_at)?;
            check_money("amount", &o.amount, true)?;
            for (i, rf) in o.refunds.iter().enumerate() {
                check_money(&format!("refunds[{i}].amount"), &rf.amount, true)?;
                check_time(&format!("refunds[{i}].at"), rf.at)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Money, Order, OrderStatus, Refund, Utm};
    use chrono::Utc;

    fn order() -> Record {
        Record::Order(Order {
            source: String::new(),
            order_id: "1001".into(),
            alt_ids: vec![],
            created_at: Utc::now(),
            amount: Money::new(Decimal::new(1999, 2), "EUR"),
            customer_id: None,
            new_customer: None,
            coupon: None,
            click_ids: vec![],
            utm: Utm::default(),
            refunds: vec![],
            status: OrderStatus::Paid,
        })
    }

    fn conversion() -> Record {
        Record::Conversion(crate::Conversion {
            source: String::new(),
            external_id: "c1".into(),
            order_id: Some("1001".into()),
            click_id: None,
            clicked_at: None,
            partner_id: "p1".into(),
            partner_name: None,
            campaign_id: None,
            event_type: crate::EventType::Sale,
            occurred_at: Utc::now(),
            sale_amount: None,
            commission: None,
            status: crate::ConversionStatus::Approved,
            status_changed_at: None,
            locked_at: None,
            coupon: None,
            utm: Utm::default(),
        })
    }

    #[test]
    fn conflicting_duplicates_are_listed_once_per_later_record() {
        let with = |id: &str, cents: i64, source: &str| {
            let mut r = order();
            if let Record::Order(o) = &mut r {
                o.order_id = id.into();
                o.amount = Money::new(Decimal::new(cents, 2), "EUR");
                o.source = source.into();
                o.created_at = DateTime::<Utc>::UNIX_EPOCH;
            }
            r
        };
        assert!(conflicting_duplicates(&[with("1", 100, "")]).is_empty());
        // An identical repeat, or one differing only in `source` (the host
        // sets it), is no conflict.
        let page = [with("1", 100, ""), with("2", 5, ""), with("1", 100, "x")];
        assert!(conflicting_duplicates(&page).is_empty());
        // Each later record differing from the key's first one, in order.
        let page = [
            with("1", 100, ""),
            with("2", 5, ""),
            with("1", 200, ""),
            with("2", 5, ""),
            with("1", 200, ""),
        ];
        assert_eq!(conflicting_duplicates(&page), ["1", "1"]);
    }

    #[test]
    fn valid_records_get_their_source_stamped() {
        let mut r = order();
        record(&mut r, RecordKind::Order, "shop").unwrap();
        assert_eq!(r.source(), "shop");
    }

    #[test]
    fn times_outside_2000_to_2100_are_refused_naming_the_field() {
        // QA findings: milliseconds read as seconds (year 58879) and a year
        // of +262142 were stored, and the latter panicked every reconcile.
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.created_at = at("+58879-01-01T00:00:00Z");
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert!(e.starts_with("field `created_at`: +58879-01-01"), "{e}");
        for (t, ok) in [
            ("1999-12-31T23:59:59Z", false),
            ("2000-01-01T00:00:00Z", true),
            ("2099-12-31T23:59:59Z", true),
            ("2100-01-01T00:00:00Z", false),
        ] {
            let mut r = order();
            if let Record::Order(o) = &mut r {
                o.refunds.push(Refund {
                    amount: Money::new(Decimal::ONE, "EUR"),
                    at: at(t),
                });
            }
            let got = record(&mut r, RecordKind::Order, "shop");
            assert_eq!(got.is_ok(), ok, "{t}: {got:?}");
            if let Err(e) = got {
                assert!(e.contains("refunds[0].at"), "{e}");
            }
        }
    }

    #[test]
    fn ids_with_control_characters_are_refused() {
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.order_id = "A\0-1".into();
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert_eq!(e, "field `order_id`: \"A\\0-1\" holds a control character");
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.click_ids = vec!["k1".into(), "k\n2".into()];
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert_eq!(
            e,
            "field `click_ids[1]`: \"k\\n2\" holds a control character"
        );
    }

    /// QA31-C F6: a U+202E in a record id or a plugin's error reached the
    /// error line raw and turned the rest of it around.
    #[test]
    fn escape_controls_escapes_text_direction_controls_too() {
        assert_eq!(
            escape_controls("abc\u{202E}0.001 DSU\nx\u{1b}[31m"),
            "abc\\u{202e}0.001 DSU\\nx\\u{1b}[31m"
        );
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{2028}', '\u{2029}',
            '\u{0085}', '\u{007F}', '\u{0000}', '\t',
        ] {
            assert!(is_hidden_control(c), "U+{:04X}", u32::from(c));
            let shown = escape_controls(&format!("x{c}y"));
            assert!(!shown.contains(c), "U+{:04X}: {shown}", u32::from(c));
            assert!(shown.starts_with("x\\") && shown.ends_with('y'), "{shown}");
            // What is escaped in a line and is not a control character is
            // also refused in an id.
            assert!(c.is_control() || is_invisible(c), "U+{:04X}", u32::from(c));
        }
        // Invisible characters that only hide are escaped (QA35c L4).
        for c in ['\u{200B}', '\u{2060}', '\u{FEFF}', '\u{00AD}'] {
            let shown = escape_controls(&format!("7900{c}"));
            assert_eq!(shown, format!("7900{}", c.escape_default()));
        }
        // Text of any script is left as it is.
        for s in ["Müller & Söhne", "شريك", "ダ 🙂", "a\u{200D}b"] {
            assert_eq!(escape_controls(s), s);
        }
    }

    #[test]
    fn ids_with_invisible_characters_are_refused() {
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.order_id = "A-1\u{200B}".into();
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert!(
            e.starts_with(
                "field `order_id`: \"A-1\\u{200b}\" holds the invisible character U+200B"
            ),
            "{e}"
        );
        for (i, bad) in ["a\u{202E}fdp.exe", "p\u{2028}1", "\u{FEFF}p1", "p\u{2066}1"]
            .into_iter()
            .enumerate()
        {
            let mut r = conversion();
            if let Record::Conversion(c) = &mut r {
                c.partner_id = bad.into();
            }
            let e = record(&mut r, RecordKind::Conversion, "net").unwrap_err();
            assert!(e.starts_with("field `partner_id`:"), "{i}: {e}");
            assert!(e.contains("invisible character U+"), "{i}: {e}");
        }
        // Letters of any script, emoji and spaces inside an id are kept.
        let mut r = conversion();
        if let Record::Conversion(c) = &mut r {
            c.partner_id = "Müller & Söhne ダ 🙂".into();
            c.external_id = "ORD 1".into();
        }
        record(&mut r, RecordKind::Conversion, "net").unwrap();
    }

    #[test]
    fn negative_amounts_and_unknown_currencies_are_named() {
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.refunds.push(Refund {
                amount: Money::new(Decimal::new(-5, 0), "EUR"),
                at: Utc::now(),
            });
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert!(e.contains("refunds[0].amount"), "{e}");
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.amount.currency = "EURO".into();
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert!(e.contains("currency `EURO`"), "{e}");
        // Platforms send doubles as JSON numbers (Google's
        // `conversionsValue` 12.999999999999998): many decimals are data,
        // not a plugin's float arithmetic, and are stored as sent.
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.amount.amount = "12.999999999999998".parse().unwrap();
        }
        record(&mut r, RecordKind::Order, "shop").unwrap();
        let e = record(&mut order(), RecordKind::Spend, "shop").unwrap_err();
        assert!(
            e.contains("record is of kind `orders` but the stream holds `spend`"),
            "{e}"
        );
    }

    /// QA20 R20-1: a 28-digit amount was stored, then sums of it panicked.
    #[test]
    fn amounts_of_a_quadrillion_or_more_are_refused() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_000_i64));
        let with = |amount: &str| {
            let mut r = order();
            if let Record::Order(o) = &mut r {
                o.amount.amount = amount.parse().unwrap();
            }
            record(&mut r, RecordKind::Order, "shop")
        };
        with("999999999999999.99").unwrap();
        let e = with("79228162514264337593543950335").unwrap_err();
        assert!(
            e.contains("field `amount`: amount 79228162514264337593543950335 is not below 1000000000000000 in size"),
            "{e}"
        );
        with("1000000000000000").unwrap_err();
    }

    fn spend_row() -> crate::Spend {
        crate::Spend {
            source: String::new(),
            account_id: "a".into(),
            day: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            timezone: "UTC".into(),
            campaign_id: "c".into(),
            campaign_name: "C".into(),
            ad_group_id: None,
            ad_group_name: None,
            ad_id: None,
            channel: crate::Channel::Search,
            impressions: 10,
            clicks: 1,
            spend: Money::new(Decimal::ONE, "USD"),
            platform_conversions: None,
            platform_conversion_value: None,
        }
    }

    /// QA24 F10: a 29-digit `platform_conversions` was stored, then the
    /// KPI sums and percentages of it panicked; QA25 N2: clicks and
    /// impressions of 9.2 × 10^18 saturated the KPI sums.
    #[test]
    fn spend_counts_of_a_quadrillion_or_more_are_refused() {
        let with = |conversions: &str| {
            let mut r = Record::Spend(crate::Spend {
                platform_conversions: Some(conversions.parse().unwrap()),
                ..spend_row()
            });
            record(&mut r, RecordKind::Spend, "ads")
        };
        with("999999999999999.5").unwrap();
        let e = with("79228162514264337593543950335").unwrap_err();
        assert!(
            e.contains("field `platform_conversions`: 79228162514264337593543950335 is not below 1000000000000000"),
            "{e}"
        );
        let mut r = Record::Spend(crate::Spend {
            clicks: i64::MAX as u64,
            ..spend_row()
        });
        let e = record(&mut r, RecordKind::Spend, "ads").unwrap_err();
        assert!(
            e.starts_with("field `clicks`: 9223372036854775807 is not below"),
            "{e}"
        );
        let mut r = Record::Spend(crate::Spend {
            impressions: MAX_COUNT - 1,
            ..spend_row()
        });
        record(&mut r, RecordKind::Spend, "ads").unwrap();
    }

    #[test]
    fn a_lower_case_currency_is_told_to_be_upper_case() {
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.amount.currency = "usd".into();
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert_eq!(
            e,
            "field `amount`: currency `usd` must be upper case (`USD`)"
        );
    }

    #[test]
    fn watermarks_stay_within_the_window_and_the_clock() {
        // QA7 F1 and F5: a watermark a year ahead was stored silently (every
        // later run then started at today less the lookback), and a first
        // one 400 days before the window made the next run a backfill.
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let w = crate::protocol::Window {
            from: day("2026-11-10"),
            to: day("2026-11-12"),
        };
        let now = at("2026-11-29T12:00:00Z");
        let check = |wm: &str, prev: Option<&str>| {
            watermark("conversions", at(wm), prev.map(at), Some(&w), now)
        };
        // Within: the window's bounds, the clock, a day of slack either side.
        for ok in [
            "2026-11-10T00:00:00Z",
            "2026-11-09T00:00:00Z",
            "2026-11-13T00:00:00Z",
            "2026-11-29T12:00:00Z",
            "2026-11-30T12:00:00Z",
        ] {
            assert_eq!(check(ok, None), Ok(()), "{ok}");
        }
        let e = check("2027-11-12T00:00:00Z", None).unwrap_err();
        assert!(
            e.starts_with("stream `conversions`: checkpoint watermark 2027-11-12T00:00:00+00:00 is in the future: after 2026-11-30T12:00:00+00:00"),
            "{e}"
        );
        assert!(check("2026-11-30T12:00:01Z", None).is_err());
        let e = check("2025-10-11T00:00:00Z", None).unwrap_err();
        assert!(
            e.starts_with("stream `conversions`: checkpoint watermark 2025-10-11T00:00:00+00:00 is before the session's window 2026-11-10..2026-11-12"),
            "{e}"
        );
        assert!(check("2026-11-08T23:59:59Z", None).is_err());
        // With a previous watermark, that one is the floor (a re-pull of an
        // older window may keep it); going below it is moving backwards.
        assert_eq!(
            check("2026-11-01T00:00:00Z", Some("2026-11-01T00:00:00Z")),
            Ok(())
        );
        let e = check("2026-10-01T00:00:00Z", Some("2026-11-01T00:00:00Z")).unwrap_err();
        assert_eq!(e, "stream `conversions`: checkpoint watermark 2026-10-01T00:00:00+00:00 moves backwards from 2026-11-01T00:00:00+00:00; a watermark may only stay or move forward: start from the committed one (`cx.checkpoint(stream)`'s `watermark`) and commit the later of the two (`.max(..)`)");
        // Keeping a previous watermark that is ahead of the clock is allowed
        // (the clock went back); moving further ahead is not.
        assert_eq!(
            check("2027-11-12T00:00:00Z", Some("2027-11-12T00:00:00Z")),
            Ok(())
        );
        assert!(check("2027-11-13T00:00:00Z", Some("2027-11-12T00:00:00Z")).is_err());
        // A previous watermark in the future (stored before this check) is
        // named with the way to clear it.
        let e = check("2026-11-13T00:00:00Z", Some("2027-11-12T00:00:00Z")).unwrap_err();
        assert!(e.contains("moves backwards from 2027-11-12T00:00:00+00:00; the stream's previous watermark 2027-11-12T00:00:00+00:00 is itself after"), "{e}");
        assert!(
            e.contains(
                "reckon records checkpoints --source <connector> --reset --stream conversions"
            ),
            "{e}"
        );
        // A check session has no window: the clock bounds it.
        assert!(watermark("s", now, None, None, now).is_ok());
        assert!(watermark("s", now + chrono::Duration::days(2), None, None, now).is_err());
    }

    #[test]
    fn the_same_request_after_each_commit_is_a_cursor_that_does_not_advance() {
        let mut r = RepeatedRequests::default();
        // Polling (no commit in between) and new pages are fine.
        for _ in 0..10 {
            r.request("GET", "http://x/report/1", None).unwrap();
        }
        for page in 0..10 {
            r.request("GET", &format!("http://x/p?cursor={page}"), None)
                .unwrap();
            r.committed();
        }
        // Same body-less URL after each commit: the third repeat stops.
        let mut r = RepeatedRequests::default();
        for _ in 0..MAX_REPEATED_REQUESTS {
            r.request("GET", "http://x/p?cursor=1", None).unwrap();
            r.committed();
        }
        let e = r.request("GET", "http://x/p?cursor=1", None).unwrap_err();
        assert!(e.starts_with("asked for the same request (GET http://x/p?cursor=1) again after committing its answer, 3 times in a row: a cursor that does not advance?"), "{e}");
        // A different body is a different request.
        let mut r = RepeatedRequests::default();
        for page in 0..10 {
            r.request("POST", "http://x/q", Some(&format!("{{\"page\":{page}}}")))
                .unwrap();
            r.committed();
        }
    }

    /// QA20 R20-7: a cursor going 2 → 3 → 2 → 3 ran until
    /// `max_requests_per_run`; asking again for pages already committed,
    /// three times in a row, stops it.
    #[test]
    fn a_cursor_that_cycles_is_stopped() {
        let mut r = RepeatedRequests::default();
        for page in [1, 2, 3, 2, 3] {
            r.request("GET", &format!("http://x/p?page={page}"), None)
                .unwrap();
            r.committed();
        }
        let e = r.request("GET", "http://x/p?page=2", None).unwrap_err();
        assert!(
            e.starts_with("asked again for requests whose answers it had already committed (GET http://x/p?page=2 and others), 3 times in a row: a cursor that goes round in a cycle?"),
            "{e}"
        );
        // One page read again (a second pass), then new ones: fine.
        let mut r = RepeatedRequests::default();
        for page in [1, 2, 1, 3, 4, 2, 5, 6] {
            r.request("GET", &format!("http://x/p?page={page}"), None)
                .unwrap();
            r.committed();
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default()
    }

    fn pass(account: &str, from: u32, to: u32) -> Checkpoint {
        Checkpoint {
            stream: "spend".into(),
            watermark: Utc::now(),
            state: serde_json::Value::Null,
            covers: Some(crate::protocol::Covers {
                account_id: account.into(),
                days: Window {
                    from: day(from),
                    to: day(to),
                },
            }),
        }
    }

    /// QA33-C M1: the daemon's session checks, here so `FakeHost` applies
    /// them too.
    #[test]
    fn records_in_a_check_and_past_the_buffer_cap_are_refused() {
        assert_eq!(emitted(SessionMode::Read, 0, MAX_BUFFERED_RECORDS), Ok(()));
        assert_eq!(
            emitted(SessionMode::Read, MAX_BUFFERED_RECORDS - 1, 2),
            Err(format!(
                "more than {MAX_BUFFERED_RECORDS} records without a checkpoint; \
                 commit each page with its checkpoint (`cx.commit(checkpoint)`)"
            ))
        );
        assert_eq!(
            emitted(SessionMode::Read, usize::MAX, 1).map_err(|e| e.contains("more than")),
            Err(true)
        );
        assert_eq!(
            emitted(SessionMode::Check, 0, 1),
            Err("records emitted in a check session".to_owned())
        );
        let m = crate::protocol::Manifest {
            streams: vec![StreamSpec {
                name: "spend".into(),
                record: RecordKind::Spend,
                primary_key: vec![],
                cursor: None,
                default_lookback_days: 1,
            }],
            ..crate::protocol::Manifest::bare("m")
        };
        assert_eq!(
            checkpoint_stream(SessionMode::Check, &m, "spend").map(|s| s.record),
            Err("checkpoint in a check session".to_owned())
        );
        assert_eq!(
            checkpoint_stream(SessionMode::Read, &m, "spend").map(|s| s.record),
            Ok(RecordKind::Spend)
        );
        assert_eq!(
            checkpoint_stream(SessionMode::Read, &m, "nope").map(|s| s.record),
            Err(
                "checkpoint for stream `nope`, which the manifest does not declare (`spend`)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_pass_must_be_of_a_spend_stream_name_an_account_and_lie_within_the_window() {
        let w = Window {
            from: day(1),
            to: day(7),
        };
        assert_eq!(
            covers(&pass("a1", 1, 7), RecordKind::Spend, Some(&w)),
            Ok(())
        );
        let no_pass = Checkpoint {
            covers: None,
            ..pass("a1", 1, 1)
        };
        assert_eq!(covers(&no_pass, RecordKind::Conversion, None), Ok(()));
        let refused = |cp: &Checkpoint, kind, window: Option<&Window>| {
            covers(cp, kind, window).err().unwrap_or_default()
        };
        assert_eq!(
            refused(&pass("a1", 1, 1), RecordKind::Conversion, Some(&w)),
            "stream `spend`: checkpoint declares a complete pass over account `a1` days 2026-11-01..2026-11-01, \
             but a pass must be of a spend stream, name an account and lie within the session's window \
             (2026-11-01..2026-11-07)"
        );
        assert!(refused(&pass("", 1, 1), RecordKind::Spend, Some(&w)).contains("account ``"));
        assert!(refused(&pass("a1", 6, 8), RecordKind::Spend, Some(&w))
            .contains("days 2026-11-06..2026-11-08"));
        assert!(refused(&pass("a1", 3, 2), RecordKind::Spend, Some(&w))
            .contains("days 2026-11-03..2026-11-02"));
        assert!(refused(&pass("a1", 1, 1), RecordKind::Spend, None).ends_with("window (none)"));
    }

    #[test]
    fn empty_pages_are_counted_until_a_page_holds_something() {
        let t0 = Utc::now();
        let mut e = EmptyPages::default();
        let page = |covers: bool, watermark| Checkpoint {
            stream: "conversions".into(),
            watermark,
            state: serde_json::Value::Null,
            covers: covers.then(|| pass("a1", 1, 1).covers).flatten(),
        };
        // A first watermark moves; then MAX_EMPTY_PAGES that do not.
        e.committed(&page(false, t0), 0, None);
        for _ in 0..MAX_EMPTY_PAGES {
            assert_eq!(e.request(), Ok(()));
            e.committed(&page(false, t0), 0, Some(t0));
        }
        assert_eq!(
            e.request(),
            Err(format!(
                "committed {MAX_EMPTY_PAGES} pages in a row that held no records and moved no watermark \
                 (stream `conversions`), and asked for another: the platform says more pages remain but sends \
                 none (a cursor that advances without end?); the pages committed so far are kept"
            ))
        );
        // A record, a watermark move or a pass starts the count over.
        for (records, watermark, pass) in [
            (1, t0, false),
            (0, t0 + chrono::Duration::seconds(1), false),
            (0, t0, true),
        ] {
            let mut e = EmptyPages::default();
            for _ in 0..MAX_EMPTY_PAGES {
                e.committed(&page(false, t0), 0, Some(t0));
            }
            e.committed(&page(pass, watermark), records, Some(t0));
            assert_eq!(e.request(), Ok(()));
        }
    }
}
