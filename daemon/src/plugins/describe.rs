//! Where a plugin's `describe` runs, and how long it may take.
//!
//! `describe` asks the plugin for its manifest. It is plugin code like any
//! step, so it gets a deadline ([`DESCRIBE_DEADLINE`], 10 s: a manifest is
//! static data) and runs where a failure cannot take the caller down:
//!
//! - [`DescribeHost::Child`] (the `reckon` binary): a `reckon plugin-host
//!   --describe --lib PATH --sha256 HEX` child, the same isolation as a
//!   subprocess session. A loop or hang past the deadline kills the child; a
//!   crash or abort ends only the child and is reported with its exit status
//!   and the panic message from its stderr.
//! - [`DescribeHost::Thread`] (a library caller: tests, benchmarks, a
//!   program embedding the library without the `plugin-host` command): a
//!   thread of this process, as for an in-process session. A thread cannot
//!   be killed: past the deadline it is abandoned (it keeps running until
//!   the process exits) and the loader remembers the file as hung, so it is
//!   never described again in this process. An abort here still ends the
//!   process.
//!
//! [`DescribeOptions::for_this_process`] picks the child once the `reckon`
//! binary's `main` has named itself with [`describe_in_children_of`], else
//! the thread.
//!
//! What this is not: no manifest parsing or checks (that is `loader`).

use super::loader::{CallOutput, PluginFns};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long `describe` may take before the plugin is given up on.
pub const DESCRIBE_DEADLINE: Duration = Duration::from_secs(10);
/// The largest manifest a describe child may send.
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;

/// Where `describe` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescribeHost {
    /// In a `reckon plugin-host --describe` child of this executable (a
    /// `reckon` binary); killed at the deadline.
    Child(PathBuf),
    /// On a thread of this process; abandoned at the deadline.
    Thread,
}

/// Where `describe` runs and its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeOptions {
    /// Child process or thread.
    pub host: DescribeHost,
    /// Longest time describe may take.
    pub deadline: Duration,
}

/// The executable that serves `plugin-host --describe`, once named.
static CHILD_HOST: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes every later [`DescribeOptions::for_this_process`] describe in a
/// `plugin-host --describe` child of `exe`. The `reckon` binary calls this
/// first thing in `main` (with its own path, whatever the file is named);
/// a library caller without that command does not, and gets the thread.
pub fn describe_in_children_of(exe: PathBuf) {
    // Set once per process; a second call changes nothing.
    let _ = CHILD_HOST.set(exe);
}

impl DescribeOptions {
    /// A child of the executable named by [`describe_in_children_of`], else
    /// a thread; [`DESCRIBE_DEADLINE`].
    pub fn for_this_process() -> Self {
        DescribeOptions {
            host: CHILD_HOST
                .get()
                .cloned()
                .map_or(DescribeHost::Thread, DescribeHost::Child),
            deadline: DESCRIBE_DEADLINE,
        }
    }
}

impl Default for DescribeOptions {
    fn default() -> Self {
        Self::for_this_process()
    }
}

/// Why describe produced no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescribeFailure {
    /// It did not return within the deadline.
    TimedOut,
    /// The child could not be started.
    Spawn(String),
    /// The child ended without answering (abort, refused library).
    Crashed(String),
    /// The child was killed by a signal without answering: loading or
    /// describing the library crashed it (a damaged library whose
    /// relocations fault, QA52). The library is not to be opened in this
    /// process.
    Killed(String),
    /// The child answered with something that is not a frame.
    Protocol(String),
}

/// Runs describe on a thread of this process; abandons it at the deadline.
pub fn on_thread(fns: PluginFns, deadline: Duration) -> Result<CallOutput, DescribeFailure> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("plugin-describe".into())
        .spawn(move || {
            let _ = tx.send(fns.describe());
        })
        .map_err(|e| DescribeFailure::Spawn(format!("cannot start a thread: {e}")))?;
    rx.recv_timeout(deadline).map_err(|e| match e {
        std::sync::mpsc::RecvTimeoutError::Timeout => DescribeFailure::TimedOut,
        // The shim catches panics, so the sender is only dropped unsent if
        // the thread died some other way.
        std::sync::mpsc::RecvTimeoutError::Disconnected => {
            DescribeFailure::Crashed("the describe thread ended without an answer".into())
        }
    })
}

/// Runs describe in a `exe plugin-host --describe` child; kills it at the
/// deadline.
pub fn in_child(
    exe: &Path,
    lib: &Path,
    sha256: &str,
    deadline: Duration,
) -> Result<CallOutput, DescribeFailure> {
    let start = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("plugin-host")
        .arg("--describe")
        .arg("--lib")
        .arg(lib)
        .arg("--sha256")
        .arg(sha256)
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            DescribeFailure::Spawn(format!(
                "cannot start `{} plugin-host` to describe it: {e}",
                exe.display()
            ))
        })?;
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let r = stdout
                .take(MAX_MANIFEST_BYTES as u64 + 6)
                .read_to_end(&mut buf);
            let _ = tx.send(r.map(|_| buf));
        });
    }
    let stderr = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            // The last lines name a crash's cause; keep a bounded tail.
            let mut tail = Vec::new();
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 64 * 1024 {
                    tail.drain(..tail.len() - 32 * 1024);
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        })
    });
    let kill = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let bytes = match rx.recv_timeout(deadline) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            kill(&mut child);
            return Err(DescribeFailure::Protocol(format!(
                "reading the describe child's answer: {e}"
            )));
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            kill(&mut child);
            return Err(DescribeFailure::TimedOut);
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            kill(&mut child);
            return Err(DescribeFailure::Protocol(
                "the describe child has no stdout to answer on".into(),
            ));
        }
    };
    if let Some(out) = parse_frame(&bytes) {
        // The answer is complete; the child has nothing left to do.
        kill(&mut child);
        return out;
    }
    // No complete answer: the child ended early. Wait (within what is left
    // of the deadline) to learn how, then report its stderr.
    let end = start + deadline;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < end => {
                std::thread::park_timeout(Duration::from_millis(5));
            }
            _ => {
                kill(&mut child);
                break None;
            }
        }
    };
    let Some(status) = status else {
        return Err(DescribeFailure::TimedOut);
    };
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    let mut msg = super::transport::describe_exit(status);
    if let Some(why) = super::transport::crash_cause(&lines) {
        msg.push_str(&format!("; stderr: {why}"));
    }
    #[cfg(unix)]
    let killed = std::os::unix::process::ExitStatusExt::signal(&status).is_some();
    #[cfg(not(unix))]
    let killed = false;
    if bytes.is_empty() && killed {
        Err(DescribeFailure::Killed(msg))
    } else if bytes.is_empty() {
        Err(DescribeFailure::Crashed(msg))
    } else {
        Err(DescribeFailure::Protocol(format!(
            "the describe child sent {} bytes that are not one answer frame and {msg}",
            bytes.len()
        )))
    }
}

/// `[u32 LE len][u8 status][payload]`, exactly; `None` if incomplete.
fn parse_frame(bytes: &[u8]) -> Option<Result<CallOutput, DescribeFailure>> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if len == 0 || len > MAX_MANIFEST_BYTES + 1 {
        return Some(Err(DescribeFailure::Protocol(format!(
            "the describe child sent a frame of {len} bytes (at most {MAX_MANIFEST_BYTES} allowed)"
        ))));
    }
    if bytes.len() != 4 + len {
        return None;
    }
    Some(Ok(CallOutput {
        status: i32::from(bytes[4]),
        bytes: bytes[5..].to_vec(),
    }))
}

/// Child side (`reckon plugin-host --describe`): checks the file's SHA-256
/// when given, opens the library (every header check), calls describe and
/// writes one `[u32 LE len][u8 status][payload]` frame on the protocol
/// stdout (the plugin's own writes to stdout go to stderr).
pub fn serve(lib: &Path, sha256: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let mut proto_out = super::loader::protect_stdout()
        .map_err(|e| format!("cannot set up the protocol channel: {e}"))?;
    // Hashed through the open file that is then loaded (see `LibraryFile`).
    let file = super::loader::LibraryFile::open(lib, sha256).map_err(|e| e.to_string())?;
    let (_, fns) = super::loader::open_library(file).map_err(|e| e.to_string())?;
    let out = fns.describe();
    let status = u8::try_from(out.status).unwrap_or(u8::MAX);
    proto_out
        .write_all(&super::transport::wire::header(status, out.bytes.len()))
        .and_then(|()| proto_out.write_all(&out.bytes))
        .and_then(|()| proto_out.flush())
        .map_err(|e| format!("writing stdout: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_read_only_when_complete_and_bounded() {
        let mut f = 3u32.to_le_bytes().to_vec();
        f.extend_from_slice(&[0, b'{', b'}']);
        let out = parse_frame(&f).unwrap().unwrap();
        assert_eq!((out.status, out.bytes.as_slice()), (0, &b"{}"[..]));
        assert!(parse_frame(&f[..5]).is_none());
        assert!(parse_frame(&f[..2]).is_none());
        let mut long = f.clone();
        long.push(b'x');
        assert!(parse_frame(&long).is_none());
        let huge = (MAX_MANIFEST_BYTES as u32 + 2).to_le_bytes();
        assert!(matches!(
            parse_frame(&huge),
            Some(Err(DescribeFailure::Protocol(_)))
        ));
        assert!(matches!(
            parse_frame(&[0, 0, 0, 0]),
            Some(Err(DescribeFailure::Protocol(_)))
        ));
    }

    #[test]
    fn a_library_caller_describes_on_a_thread() {
        // This test binary never calls `describe_in_children_of`.
        assert_eq!(
            DescribeOptions::for_this_process(),
            DescribeOptions {
                host: DescribeHost::Thread,
                deadline: DESCRIBE_DEADLINE
            }
        );
    }
}
