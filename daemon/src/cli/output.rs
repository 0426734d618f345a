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
//!   subscriber never reports (and panics on) a failed write.
//!
//! What it is not: a way to hide output errors of commands whose only
//! result is their output (`records export | head`): those stop at the
//! first line nobody reads ([`super::main`]).

use std::io::Write;

/// `eprintln!` that never panics: a failure to write to stderr is ignored.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
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
