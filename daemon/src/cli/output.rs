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
#[derive(Debug)]
pub struct Stdout(std::io::Stdout);

/// This process's stdout, its errors named ([`StdoutFailed`]).
pub fn stdout() -> Stdout {
    Stdout(std::io::stdout())
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

    #[test]
    fn other_output_errors_are_still_errors() {
        let mut w = Unread::new(Full);
        assert!(writeln!(w, "x").is_err());
        assert!(!w.reader_gone());
    }
}
