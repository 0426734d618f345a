//! Writing to stdout and stderr when nobody may be reading any more.
//!
//! `print!`/`eprintln!` panic when the reader of the pipe has gone
//! (`reckon sync 2>&1 | head -1`, a log shipper that restarts, `tee` that
//! was killed): the process dies with exit status 101 in the middle of its
//! work. Nothing in Reckon uses them; it writes through this module:
//! - [`errln!`](crate::errln): a line for stderr; a failure to write it is
//!   ignored (stderr is where failures are reported: there is nowhere
//!   else to say it);
//! - [`Unread`]: a writer for the output of a command that changes state
//!   (a sync, a finalize): once its reader has gone (broken pipe), what is
//!   written is dropped and the work carries on;
//! - [`log_writer`]: the `tracing` writer, which never fails, so the
//!   subscriber never reports (and panics on) a failed write;
//! - [`stdout`]: this process's stdout, whose errors say that the
//!   command's output could not be written there ([`StdoutFailed`]);
//! - [`fail`]: a command's failure, as text or, for `run` and `sync`
//!   logging JSON ([`errors_as_json`]), as JSON log lines.
//!
//! What it is not: a way to hide output errors of commands whose only
//! result is their output (`records export | head`): those stop at the
//! first line nobody reads ([`super::main`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// `eprintln!` that never panics: a failure to write to stderr is ignored.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

/// Whether [`fail`] writes JSON log lines ([`errors_as_json`]).
static ERRORS_AS_JSON: AtomicBool = AtomicBool::new(false);

/// From now on, [`fail`] writes JSON log lines: `run` and `sync` log JSON
/// (`--log-format json`, `[daemon] log_format = "json"`), and their
/// stderr is then one JSON object per line, the error that stops them
/// included (QA30-C L1: an unknown connector, a missing secret or `run`'s
/// config errors were plain `error:` text among the JSON lines).
pub fn errors_as_json() {
    ERRORS_AS_JSON.store(true, Ordering::Relaxed);
}

/// Writes a command's failure to stderr: `text` as it is (a message whose
/// first line starts `error: `, possibly with more lines), or, after
/// [`errors_as_json`], each of its lines as a JSON log line ([`json_log_line`])
/// of level `ERROR`, without the `error: `. A failure to write is ignored,
/// as [`errln!`](crate::errln) does.
pub fn fail(text: &str) {
    if !ERRORS_AS_JSON.load(Ordering::Relaxed) {
        crate::errln!("{text}");
        return;
    }
    let lines: String = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let message = l.strip_prefix("error: ").unwrap_or(l);
            json_log_line("reckon::cli", "ERROR", message, serde_json::Value::Null)
        })
        .collect();
    let _ = std::io::stderr().write_all(lines.as_bytes());
}

/// One log line (with its newline) as `--log-format json` writes them: the
/// shape of the `tracing` JSON layer (`timestamp`, `level`, `fields` with
/// `message`, `target`), for what a command writes itself.
pub fn json_log_line(
    target: &str,
    level: &str,
    message: &str,
    fields: serde_json::Value,
) -> String {
    let mut f = match fields {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    f.insert("message".into(), message.into());
    let line = serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level,
        "fields": f,
        "target": target,
    });
    format!("{line}\n")
}

/// Standard error as a command writes its diagnostics (warnings, notes,
/// progress, the error that ends it): a line that cannot be written, for
/// whatever reason (its reader gone, a log file on a full disk), is
/// dropped, and the command goes on. What a command does, and its exit
/// status, never depend on whether its diagnostics could be written
/// (QA35a M3: with `2>>log` on a full volume a sync through the daemon
/// stopped at its first line and exited 1; `statements finalize`
/// finalised and exited 1 without printing its result). Its results
/// (stdout) are [`Unread`]: other errors there are errors.
pub fn diagnostics() -> Diagnostics<std::io::Stderr> {
    Diagnostics(std::io::stderr())
}

/// See [`diagnostics`].
#[derive(Debug)]
pub struct Diagnostics<W>(pub W);

impl<W: Write> Write for Diagnostics<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

/// A writer whose reader may go away: after the first broken pipe (the
/// reader closed its end) every write succeeds and is dropped. Other
/// errors are returned.
#[derive(Debug)]
pub struct Unread<W> {
    inner: W,
    gone: bool,
}

impl<W: Write> Unread<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Unread { inner, gone: false }
    }

    /// Whether the reader has gone (some output was dropped).
    pub fn reader_gone(&self) -> bool {
        self.gone
    }

    fn absorb(&mut self, r: std::io::Result<()>) -> std::io::Result<()> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.gone = true;
                Ok(())
            }
            r => r,
        }
    }
}

impl<W: Write> Write for Unread<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.gone {
            return Ok(buf.len());
        }
        let r = self.inner.write_all(buf);
        self.absorb(r).map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.gone {
            return Ok(());
        }
        let r = self.inner.flush();
        self.absorb(r)
    }
}

/// The writer of `tracing`'s lines (stderr: [`log_writer`]): a line that
/// cannot be written (closed pipe, full disk behind a redirect) is
/// dropped, and the write reports success; the daemon runs on.
#[derive(Debug)]
pub struct LogWriter<W>(pub W);

impl<W: Write> Write for LogWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

/// The `MakeWriter` of every `tracing` subscriber Reckon sets up:
/// stderr through [`LogWriter`]. (`tracing-subscriber`'s own
/// `std::io::stderr` writer returns the error, and the subscriber then
/// reports it with `eprintln!`, which panics on a closed pipe: the daemon
/// died at its next log line. The subscribers also turn that report off.)
pub fn log_writer() -> LogWriter<std::io::Stderr> {
    LogWriter(std::io::stderr())
}

/// The command's output could not be written to this process's stdout (a
/// full disk behind `> file`, `> /dev/full`). Said as such, whatever the
/// command was doing when it happened: the message blamed the daemon's
/// command socket when the daemon ran the command, and named nothing
/// without it (QA30-C L6). It travels inside an `io::Error` of the same
/// kind, so a closed pipe is still one ([`super::main`] ends quietly on it).
#[derive(Debug)]
pub struct StdoutFailed(pub std::io::Error);

impl std::fmt::Display for StdoutFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write the command's output to stdout: {}", self.0)
    }
}

impl std::error::Error for StdoutFailed {}

impl StdoutFailed {
    /// The [`StdoutFailed`] inside `e`, if `e` is or wraps one.
    pub fn find(e: &anyhow::Error) -> Option<&StdoutFailed> {
        e.chain().find_map(|c| {
            c.downcast_ref::<StdoutFailed>().or_else(|| {
                c.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<StdoutFailed>())
            })
        })
    }
}

/// A writer over this process's stdout whose errors are [`StdoutFailed`].
/// On a terminal, text from outside that could move the cursor, rewrite a
/// line or reorder it (escape sequences, carriage returns, bidi controls:
/// [`crate::display_safe::is_hidden_control`] but newline and tab) is
/// written as `<U+001B>` ([`TerminalSafe`]); a file or pipe gets the bytes
/// as they are.
#[derive(Debug)]
pub struct Stdout(TerminalSafe<std::io::Stdout>);

/// This process's stdout, its errors named ([`StdoutFailed`]), made safe
/// for a terminal when it is one.
pub fn stdout() -> Stdout {
    use std::io::IsTerminal as _;
    let out = std::io::stdout();
    let terminal = out.is_terminal();
    Stdout(TerminalSafe::new(out, terminal))
}

fn stdout_failed(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), StdoutFailed(e))
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(stdout_failed)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf).map_err(stdout_failed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(stdout_failed)
    }
}

/// A writer that, when `escape` is on, writes each hidden control
/// character but newline and tab as a visible `<U+XXXX>` (security QA31-C
/// F4: `reconcile report` prints CSV, which keeps names as the networks
/// sent them, so a partner name holding `ESC[1A CR ESC[2K` overwrote
/// another partner's row on the screen with a forged amount). UTF-8 split
/// across writes is held until its last byte comes; bytes that are not
/// UTF-8 pass as they are (Reckon writes only UTF-8).
#[derive(Debug)]
pub struct TerminalSafe<W: Write> {
    inner: W,
    escape: bool,
    /// The start of a UTF-8 sequence the last write ended inside.
    pending: Vec<u8>,
}

impl<W: Write> TerminalSafe<W> {
    /// `inner`, escaped when `escape`.
    pub fn new(inner: W, escape: bool) -> Self {
        TerminalSafe {
            inner,
            escape,
            pending: Vec::new(),
        }
    }

    fn escaped(&mut self, buf: &[u8]) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(buf);
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = &bytes[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    push_safe(&mut out, text);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    push_safe(&mut out, std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        // Cut short by the end of this write: wait for the rest.
                        None => {
                            self.pending = bad.to_vec();
                            break;
                        }
                        Some(n) => {
                            out.extend_from_slice(&bad[..n]);
                            rest = &bad[n..];
                        }
                    }
                }
            }
        }
        out
    }
}

fn push_safe(out: &mut Vec<u8>, text: &str) {
    use std::io::Write as _;
    for c in text.chars() {
        if c != '\n' && c != '\t' && crate::display_safe::is_hidden_control(c) {
            let _ = write!(out, "<U+{:04X}>", u32::from(c));
        } else {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
    }
}

impl<W: Write> Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.escape {
            return self.inner.write(buf);
        }
        let out = self.escaped(buf);
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.inner.write_all(&rest)?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe whose reader has gone.
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("no space left"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Security QA31-C F4: escape sequences, carriage returns and bidi
    /// controls reach a terminal as visible escapes, also when a write cuts
    /// a character in two; newlines and tabs stay; a pipe gets the bytes.
    #[test]
    fn a_terminal_sees_hidden_controls_as_escapes() {
        let forged = "p,\"ok\u{1b}[1A\r\u{1b}[2Kp,0.01\u{1b}]0;pwned\u{7}\u{202e}x\"\tz\n";
        let mut t = TerminalSafe::new(Vec::new(), true);
        let bytes = forged.as_bytes();
        // Cut inside U+202E (3 bytes) to see it held until complete.
        let cut = forged.find('\u{202e}').unwrap() + 1;
        t.write_all(&bytes[..cut]).unwrap();
        t.write_all(&bytes[cut..]).unwrap();
        t.flush().unwrap();
        assert_eq!(
            String::from_utf8(t.inner).unwrap(),
            "p,\"ok<U+001B>[1A<U+000D><U+001B>[2Kp,0.01<U+001B>]0;pwned<U+0007><U+202E>x\"\tz\n"
        );
        let mut pipe = TerminalSafe::new(Vec::new(), false);
        pipe.write_all(forged.as_bytes()).unwrap();
        assert_eq!(pipe.inner, forged.as_bytes());
    }

    #[test]
    fn output_whose_reader_went_away_is_dropped() {
        let mut w = Unread::new(Closed);
        assert!(!w.reader_gone());
        writeln!(w, "page committed").unwrap();
        assert!(w.reader_gone());
        writeln!(w, "and the next").unwrap();
        w.flush().unwrap();
    }

    // QA6 F3: a log line the daemon could not write became a panic.
    #[test]
    fn a_log_line_nobody_can_read_is_dropped() {
        let mut w = LogWriter(Closed);
        assert_eq!(w.write(b"INFO sync started\n").unwrap(), 18);
        w.flush().unwrap();
        let mut w = LogWriter(Full);
        assert_eq!(w.write(b"x").unwrap(), 1);
    }

    /// QA35a M3: diagnostics a full disk refuses are dropped.
    #[test]
    fn diagnostics_nobody_can_write_are_dropped() {
        for mut w in [
            Diagnostics(Box::new(Full) as Box<dyn Write>),
            Diagnostics(Box::new(Closed)),
        ] {
            writeln!(w, "warning: synced only up to ...").unwrap();
            w.flush().unwrap();
        }
    }

    #[test]
    fn other_output_errors_are_still_errors() {
        let mut w = Unread::new(Full);
        assert!(writeln!(w, "x").is_err());
        assert!(!w.reader_gone());
    }
}
