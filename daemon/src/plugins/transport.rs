//! The two ways a session's plugin calls are carried, behind one trait.
//!
//! - [`InProcess`]: the plugin runs on a dedicated thread of the daemon; each
//!   step is a call through the function table. A panic is caught by the
//!   plugin's shim; a hang past the step deadline fails the session, but the
//!   thread cannot be killed and is abandoned (it closes its instance if the
//!   call ever returns). Only for plugins built with `panic = "unwind"`.
//! - [`Subprocess`]: a `reckon plugin-host --lib PATH` child per session. The
//!   same calls travel as length-prefixed frames over its stdin/stdout (see
//!   [`wire`]); its stderr is re-logged. A crash, abort or hang kills only the
//!   child.
//!
//! What this is not: transports move bytes and report how a call ended; they
//! do not interpret actions (that is `session`).

use super::http::Redactor;
use super::loader::{CallOutput, PluginFns};
use super::Plugin;
use futures::future::BoxFuture;
use plugin_api::abi::{STATUS_ERROR, STATUS_OK, STATUS_PANIC};
use plugin_api::protocol::{ErrorKind, PluginError};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// How a transported call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// Category.
    pub kind: ErrorKind,
    /// Whether a later session may succeed.
    pub retryable: bool,
    /// What happened, without the connector name (the session adds it).
    pub message: String,
}

impl CallFailure {
    fn crashed(message: impl Into<String>) -> Self {
        CallFailure {
            kind: ErrorKind::Internal,
            retryable: true,
            message: message.into(),
        }
    }
}

/// Converts a call's status and bytes into the output bytes or a failure.
pub fn interpret(out: CallOutput) -> Result<Vec<u8>, CallFailure> {
    match out.status {
        STATUS_OK => Ok(out.bytes),
        STATUS_ERROR => {
            let e: PluginError = serde_json::from_slice(&out.bytes).unwrap_or_else(|_| {
                PluginError::new(
                    ErrorKind::Protocol,
                    format!(
                        "plugin reported an error it could not describe: {}",
                        String::from_utf8_lossy(&out.bytes)
                    ),
                )
            });
            Err(CallFailure {
                kind: e.kind,
                retryable: e.retryable,
                message: e.message,
            })
        }
        STATUS_PANIC => {
            let msg = serde_json::from_slice::<PluginError>(&out.bytes)
                .map(|e| e.message)
                .unwrap_or_else(|_| "plugin panicked".into());
            Err(CallFailure::crashed(format!(
                "{msg} (the instance was dropped; nothing after the last checkpoint is stored)"
            )))
        }
        other => Err(CallFailure {
            kind: ErrorKind::Protocol,
            retryable: false,
            message: format!("plugin returned unknown status {other}"),
        }),
    }
}

/// One open plugin session, however it is carried.
pub trait Transport: Send {
    /// Feeds one event frame; resolves to the JSON array of actions.
    fn step(&mut self, frame: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, CallFailure>>;
    /// Ends the session (closes the instance / lets the child exit).
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

// ---------------------------------------------------------------------------
// In-process
// ---------------------------------------------------------------------------

type Job = (Vec<u8>, tokio::sync::oneshot::Sender<CallOutput>);

/// Plugin calls on a dedicated thread of this process.
#[derive(Debug)]
pub struct InProcess {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    deadline: Duration,
    /// Shared with the thread: whether it was abandoned in a call.
    thread: Arc<Mutex<ThreadState>>,
    /// (connector, library) it is counted under in [`STUCK`] if it is.
    key: StuckKey,
}

/// Where an in-process session's thread is, as its session and the thread
/// itself see it.
#[derive(Debug)]
enum ThreadState {
    /// Serving the session (or idle between its steps).
    Serving,
    /// A call passed its deadline; the thread still runs it, counted in
    /// [`STUCK`] under this key until it returns.
    Abandoned(StuckKey),
    /// The thread ended.
    Ended,
}

/// (connector, the library's SHA-256).
type StuckKey = (String, String);

/// Threads of each (connector, library) abandoned in a call that has not
/// returned. While one runs, that connector's in-process sessions are
/// refused at once instead of stranding one more spinning thread per run
/// and retry (QA28-B F1); the count drops when the call returns.
static STUCK: Mutex<std::collections::BTreeMap<StuckKey, usize>> =
    Mutex::new(std::collections::BTreeMap::new());

/// Marks the session's thread abandoned (the deadline passed).
fn abandon(thread: &Mutex<ThreadState>, key: StuckKey) {
    let Ok(mut state) = thread.lock() else { return };
    if matches!(*state, ThreadState::Serving) {
        if let Ok(mut stuck) = STUCK.lock() {
            *stuck.entry(key.clone()).or_default() += 1;
        }
        *state = ThreadState::Abandoned(key);
    }
}

/// On the thread, after a call returned: whether it was abandoned (then
/// it is no longer counted, and the thread ends).
fn returned(thread: &Mutex<ThreadState>) -> bool {
    let Ok(mut state) = thread.lock() else {
        return true;
    };
    match std::mem::replace(&mut *state, ThreadState::Ended) {
        ThreadState::Abandoned(key) => {
            if let Ok(mut stuck) = STUCK.lock() {
                if let Some(n) = stuck.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        stuck.remove(&key);
                    }
                }
            }
            true
        }
        ThreadState::Ended => true,
        ThreadState::Serving => {
            *state = ThreadState::Serving;
            false
        }
    }
}

fn stuck(key: &StuckKey) -> bool {
    STUCK.lock().map(|s| s.contains_key(key)).unwrap_or(false)
}

impl InProcess {
    /// Opens a session instance on a new thread.
    pub async fn open(
        plugin: &Arc<Plugin>,
        connector: &str,
        open_json: Vec<u8>,
        deadline: Duration,
    ) -> Result<Self, CallFailure> {
        if !plugin.panic_unwind {
            return Err(CallFailure {
                kind: ErrorKind::Config,
                retryable: false,
                message: format!(
                    "plugin `{}` was built without panic = \"unwind\" and cannot run in-process; use isolation = \"subprocess\"",
                    plugin.manifest.id
                ),
            });
        }
        let key: StuckKey = (connector.to_owned(), plugin.sha256.clone());
        if stuck(&key) {
            return Err(CallFailure {
                kind: ErrorKind::Config,
                retryable: false,
                message: format!(
                    "an earlier in-process session of this connector passed its step deadline and plugin `{}` ({}) \
                     still runs it on a thread that cannot be killed; its in-process sessions are refused until \
                     that call returns or reckon restarts: fix the plugin, or set isolation = \"subprocess\" \
                     (a hung child is killed)",
                    plugin.manifest.id,
                    plugin.path.file_name().unwrap_or_default().to_string_lossy()
                ),
            });
        }
        let thread = Arc::new(Mutex::new(ThreadState::Serving));
        let on_thread = thread.clone();
        let fns: PluginFns = plugin.fns;
        let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<Result<(), CallOutput>>();
        std::thread::Builder::new()
            .name(format!("plugin-{}", plugin.manifest.id))
            .spawn(move || {
                let opened = fns.open(&open_json);
                let abandoned = returned(&on_thread);
                let mut instance = match opened {
                    Ok(i) if !abandoned => {
                        let _ = opened_tx.send(Ok(()));
                        i
                    }
                    Ok(i) => {
                        fns.close(i);
                        return;
                    }
                    Err(out) => {
                        let _ = opened_tx.send(Err(out));
                        return;
                    }
                };
                while let Ok((frame, reply)) = jobs_rx.recv() {
                    let out = fns.step(&mut instance, &frame);
                    let panicked = out.status == STATUS_PANIC;
                    if returned(&on_thread) || reply.send(out).is_err() || panicked {
                        break;
                    }
                }
                if let Ok(mut state) = on_thread.lock() {
                    *state = ThreadState::Ended;
                }
                fns.close(instance);
            })
            .map_err(|e| CallFailure::crashed(format!("cannot start the plugin thread: {e}")))?;
        match tokio::time::timeout(deadline, opened_rx).await {
            Err(_) => {
                abandon(&thread, key);
                Err(deadline_failure(deadline, "in-process"))
            }
            Ok(Err(_)) => Err(CallFailure::crashed("plugin thread ended while opening")),
            Ok(Ok(Err(out))) => interpret(out).map(|_| Self {
                jobs: None,
                deadline,
                thread,
                key,
            }),
            Ok(Ok(Ok(()))) => Ok(InProcess {
                jobs: Some(jobs_tx),
                deadline,
                thread,
                key,
            }),
        }
    }
}

fn deadline_failure(deadline: Duration, how: &str) -> CallFailure {
    let what = if how == "in-process" {
        "the in-process plugin thread cannot be killed and is abandoned (the connector's in-process \
         sessions are refused until its call returns or reckon restarts)"
    } else {
        "the plugin process was killed"
    };
    CallFailure::crashed(format!(
        "plugin step exceeded its deadline of {} ms, 4 × the connector's `timeout_secs` (hung or looping); {what}",
        deadline.as_millis()
    ))
}

impl Transport for InProcess {
    fn step(&mut self, frame: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, CallFailure>> {
        Box::pin(async move {
            let Some(jobs) = &self.jobs else {
                return Err(CallFailure::crashed("plugin session is no longer running"));
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            if jobs.send((frame, tx)).is_err() {
                self.jobs = None;
                return Err(CallFailure::crashed(
                    "plugin thread is gone (it panicked earlier)",
                ));
            }
            match tokio::time::timeout(self.deadline, rx).await {
                Err(_) => {
                    self.jobs = None;
                    abandon(&self.thread, self.key.clone());
                    Err(deadline_failure(self.deadline, "in-process"))
                }
                Ok(Err(_)) => {
                    self.jobs = None;
                    Err(CallFailure::crashed("plugin thread ended during a step"))
                }
                Ok(Ok(out)) => {
                    let r = interpret(out);
                    if r.is_err() {
                        self.jobs = None;
                    }
                    r
                }
            }
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        // Dropping the sender ends the thread's loop, which closes the instance.
        drop(self);
        Box::pin(async {})
    }
}

// ---------------------------------------------------------------------------
// Subprocess
// ---------------------------------------------------------------------------

/// The frames spoken over a `reckon plugin-host` child's stdin and stdout.
///
/// Parent → child: `[u32 LE length][u8 op][payload]` where `length` counts the
/// op byte and the payload; `op` is [`wire::OP_OPEN`] (payload: the JSON
/// `SessionOpen`) or [`wire::OP_STEP`] (payload: one event frame). Child →
/// parent: `[u32 LE length][u8 status][payload]` with the ABI status and the
/// bytes the plugin wrote. EOF on stdin ends the session.
pub mod wire {
    /// Open the session.
    pub const OP_OPEN: u8 = 1;
    /// Feed one event.
    pub const OP_STEP: u8 = 2;
    /// Largest frame either side accepts.
    pub const MAX_FRAME: usize = 1 << 30;

    /// Writes one frame (tag byte plus payload) with its length prefix.
    pub fn header(tag: u8, payload_len: usize) -> [u8; 5] {
        let len = (payload_len + 1) as u32;
        let b = len.to_le_bytes();
        [b[0], b[1], b[2], b[3], tag]
    }
}

/// A `reckon plugin-host` child per session.
#[derive(Debug)]
pub struct Subprocess {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    deadline: Duration,
    dead: bool,
}

impl Subprocess {
    /// Starts the child and opens the session in it.
    pub async fn open(
        plugin: &Arc<Plugin>,
        host_exe: &Path,
        connector: &str,
        open_json: Vec<u8>,
        deadline: Duration,
        redactor: &Redactor,
    ) -> Result<Self, CallFailure> {
        let mut command = tokio::process::Command::new(host_exe);
        command
            .arg("plugin-host")
            .arg("--lib")
            .arg(&plugin.path)
            .arg("--sha256")
            .arg(&plugin.sha256)
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // Its own process group: Ctrl-C in a terminal signals reckon, which
        // ends the session in order (run recorded `interrupted`), not the
        // child directly (which would make the run `failed`). The child still
        // ends with reckon: killed on drop, at EOF on its stdin, or (Linux)
        // by its parent-death signal when reckon is killed while the plugin
        // is busy in a step (see `plugin_host`).
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|e| {
            CallFailure::crashed(format!(
                "cannot start the plugin host process {}: {e}",
                host_exe.display()
            ))
        })?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .map(tokio::io::BufReader::new)
            .ok_or_else(|| CallFailure::crashed("plugin host has no stdout"))?;
        let stderr = child.stderr.take();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = stderr.map(|stderr| {
            let tail = tail.clone();
            let plugin_id = plugin.manifest.id.clone();
            let connector = connector.to_owned();
            let redactor = redactor.clone();
            tokio::spawn(async move {
                relay_lines(stderr, |bytes, total| {
                    let line = super::plugin_log::printed_line(bytes, total, &redactor);
                    // A panic's report starts with a blank line (dev QA13 F10).
                    if line.trim().is_empty() {
                        return;
                    }
                    tracing::warn!(
                        plugin = %plugin_id,
                        connector = %connector,
                        line = %line,
                        "plugin process printed a line (its stdout or stderr)"
                    );
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == 5 {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                })
                .await;
            })
        });
        let mut sp = Subprocess {
            child,
            stdin,
            stdout,
            stderr_tail: tail,
            stderr_task,
            deadline,
            dead: false,
        };
        let out = sp.call(wire::OP_OPEN, &open_json).await?;
        interpret(out)?;
        Ok(sp)
    }

    async fn call(&mut self, op: u8, payload: &[u8]) -> Result<CallOutput, CallFailure> {
        if self.dead {
            return Err(CallFailure::crashed("plugin process is no longer running"));
        }
        let deadline = self.deadline;
        let exchange = async {
            let stdin = self.stdin.as_mut().ok_or(None)?;
            stdin
                .write_all(&wire::header(op, payload.len()))
                .await
                .map_err(|_| None)?;
            stdin.write_all(payload).await.map_err(|_| None)?;
            stdin.flush().await.map_err(|_| None)?;
            let mut len = [0u8; 4];
            self.stdout.read_exact(&mut len).await.map_err(|_| None)?;
            let len = u32::from_le_bytes(len) as usize;
            if len == 0 || len > wire::MAX_FRAME {
                return Err(Some(format!(
                    "plugin process sent a frame of {len} bytes (protocol broken)"
                )));
            }
            let mut status = [0u8; 1];
            self.stdout
                .read_exact(&mut status)
                .await
                .map_err(|_| None)?;
            let mut buf = vec![0u8; len - 1];
            self.stdout.read_exact(&mut buf).await.map_err(|_| None)?;
            Ok(CallOutput {
                status: i32::from(status[0]),
                bytes: buf,
            })
        };
        match tokio::time::timeout(deadline, exchange).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(Some(protocol))) => {
                self.kill().await;
                Err(CallFailure {
                    kind: ErrorKind::Protocol,
                    retryable: true,
                    message: protocol,
                })
            }
            Ok(Err(None)) => Err(self.died().await),
            Err(_) => {
                self.kill().await;
                Err(deadline_failure(deadline, "subprocess"))
            }
        }
    }

    async fn kill(&mut self) {
        self.dead = true;
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    /// The child closed its pipes: find out how it ended.
    async fn died(&mut self) -> CallFailure {
        self.dead = true;
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(s)) => describe_exit(s),
            _ => {
                let _ = self.child.start_kill();
                "stopped answering".to_owned()
            }
        };
        if let Some(t) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        let tail: Vec<String> = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let mut msg = format!("plugin process crashed: {status}");
        if let Some(why) = crash_cause(&tail) {
            msg.push_str(&format!("; stderr: {why}"));
        }
        CallFailure::crashed(msg)
    }
}

/// Bytes of a printed line read before the rest is only counted: the
/// start of a longer line is logged ([`super::plugin_log::printed_line`]
/// cuts it at 8 KiB after masking; the margin keeps a secret that straddles
/// that cut whole for the masking).
const PRINTED_LINE_READ: usize = 2 * super::plugin_log::MAX_MESSAGE_BYTES;

/// Reads `r` to its end, line by line, as bytes: `each(start, total)` gets
/// the first [`PRINTED_LINE_READ`] bytes of each line (without its
/// newline) and its whole length. Bytes that are not UTF-8 do not end the
/// reading (QA28-B F3: `lines()` stopped at the first, the plugin's next
/// `eprintln!` then failed on the closed pipe), and a line without a
/// newline is never held whole in memory.
async fn relay_lines<R: tokio::io::AsyncRead + Unpin>(r: R, mut each: impl FnMut(&[u8], usize)) {
    let mut r = tokio::io::BufReader::new(r);
    let mut line: Vec<u8> = Vec::new();
    let mut total = 0usize;
    loop {
        let (used, ended) = match r.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => {
                let (chunk, ended) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], true),
                    None => (buf, false),
                };
                let room = PRINTED_LINE_READ.saturating_sub(line.len());
                line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                total += chunk.len();
                (chunk.len() + usize::from(ended), ended)
            }
        };
        r.consume(used);
        if ended {
            each(&line, total);
            line.clear();
            total = 0;
        }
    }
    if total > 0 {
        each(&line, total);
    }
}

/// What the child's last stderr lines say about its crash: a Rust panic's
/// message (the line after `panicked at ...`), else the last line that is
/// not Rust's `note: run with RUST_BACKTRACE=1` hint or a backtrace frame.
pub(crate) fn crash_cause(tail: &[String]) -> Option<String> {
    if let Some(i) = tail.iter().rposition(|l| l.contains("panicked at")) {
        let at = tail[i].trim();
        // The message may span lines; it ends at Rust's `note:` hint or a
        // backtrace.
        let message: Vec<&str> = tail[i + 1..]
            .iter()
            .map(|l| l.trim())
            .take_while(|l| !l.starts_with("note: ") && !l.starts_with("stack backtrace"))
            .filter(|l| !l.is_empty())
            .collect();
        return Some(if message.is_empty() {
            at.to_owned()
        } else {
            format!("{at} {}", message.join(" / "))
        });
    }
    tail.iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("note: ")
                && !l.starts_with("stack backtrace")
                && !l.starts_with("at ")
                && l.split_once(':')
                    .is_none_or(|(n, _)| n.trim().parse::<u32>().is_err())
        })
        .map(str::to_owned)
}

/// A child's exit status in words, naming the signal if there was one.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                libc::SIGABRT => "SIGABRT (abort)",
                libc::SIGSEGV => "SIGSEGV (segmentation fault)",
                libc::SIGKILL => "SIGKILL",
                libc::SIGBUS => "SIGBUS",
                libc::SIGILL => "SIGILL",
                libc::SIGFPE => "SIGFPE",
                libc::SIGTERM => "SIGTERM",
                _ => "a signal",
            };
            return format!("killed by signal {sig} {name}");
        }
    }
    match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "ended".to_owned(),
    }
}

impl Transport for Subprocess {
    fn step(&mut self, frame: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, CallFailure>> {
        Box::pin(async move {
            let out = self.call(wire::OP_STEP, &frame).await?;
            let r = interpret(out);
            if r.is_err() {
                self.kill().await;
            }
            r
        })
    }

    fn close(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            drop(self.stdin.take());
            if !self.dead
                && tokio::time::timeout(Duration::from_secs(2), self.child.wait())
                    .await
                    .is_err()
            {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
            if let Some(t) = self.stderr_task.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
            }
        })
    }
}

// ---------------------------------------------------------------------------
// The child side
// ---------------------------------------------------------------------------

/// Runs in `reckon plugin-host`: loads `lib` (checking its SHA-256 when given),
/// then serves open/step frames on stdin/stdout until EOF. The plugin's own
/// writes to stdout are redirected to stderr first, so stdout carries
/// protocol frames only.
pub fn serve_stdio(lib: &Path, sha256: Option<&str>) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut proto_out = super::loader::protect_stdout()
        .map_err(|e| format!("cannot set up the protocol channel: {e}"))?;
    // Hashed through the open file that is then loaded (see `LibraryFile`).
    let file = super::loader::LibraryFile::open(lib, sha256).map_err(|e| e.to_string())?;
    let (_, fns) = super::loader::open_library(file).map_err(|e| e.to_string())?;
    let mut stdin = std::io::BufReader::new(std::io::stdin().lock());
    let mut instance = None;
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match stdin.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("reading stdin: {e}")),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 || len > wire::MAX_FRAME {
            return Err(format!("frame of {len} bytes on stdin"));
        }
        buf.resize(len, 0);
        stdin
            .read_exact(&mut buf)
            .map_err(|e| format!("reading stdin: {e}"))?;
        let out = match (buf[0], &mut instance) {
            (wire::OP_OPEN, None) => match fns.open(&buf[1..]) {
                Ok(i) => {
                    instance = Some(i);
                    CallOutput {
                        status: STATUS_OK,
                        bytes: Vec::new(),
                    }
                }
                Err(out) => out,
            },
            (wire::OP_STEP, Some(i)) => fns.step(i, &buf[1..]),
            (op, _) => {
                return Err(format!(
                    "unexpected op {op} (open must come first, exactly once)"
                ))
            }
        };
        let status = u8::try_from(out.status).unwrap_or(u8::MAX);
        proto_out
            .write_all(&wire::header(status, out.bytes.len()))
            .and_then(|()| proto_out.write_all(&out.bytes))
            .and_then(|()| proto_out.flush())
            .map_err(|e| format!("writing stdout: {e}"))?;
    }
    if let Some(i) = instance {
        fns.close(i);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::protocol::{Manifest, PluginKind, RecordKind, StreamSpec};

    /// The lines `relay_lines` hands on, as `printed_line` logs them.
    async fn relayed(input: &[u8], secret: &str) -> Vec<String> {
        let mut redactor = Redactor::default();
        redactor.add(secret);
        let mut out = Vec::new();
        relay_lines(input, |bytes, total| {
            out.push(super::super::plugin_log::printed_line(
                bytes, total, &redactor,
            ));
        })
        .await;
        out
    }

    /// QA28-B F2, F3: a printed line with a secret was logged in clear; a
    /// byte that is not UTF-8 ended the reading (the plugin's next
    /// `eprintln!` then failed on the closed pipe); a line had no bound.
    #[tokio::test]
    async fn printed_lines_are_masked_decoded_and_bounded() {
        let secret = "acme-test-key-0123456789";
        let mut input = format!("DEBUG body: {{\"coupon\": \"Bearer {secret}\"}}\n").into_bytes();
        input.extend_from_slice(b"bad bytes: \xff\xfe\n");
        input.extend_from_slice(b"after\n");
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend_from_slice(b"\nlast, no newline");
        let lines = relayed(&input, secret).await;
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[0], "DEBUG body: {\"coupon\": \"Bearer ***\"}");
        assert_eq!(lines[1], "bad bytes: \u{fffd}\u{fffd}");
        assert_eq!(lines[2], "after");
        assert!(lines[3].len() < 9 * 1024, "{}", lines[3].len());
        assert!(
            lines[3].ends_with("…[cut, 100000 bytes]"),
            "{}",
            &lines[3][8000..]
        );
        assert_eq!(lines[4], "last, no newline");
    }

    #[test]
    fn a_crash_names_the_panic_not_the_backtrace_hint() {
        let tail: Vec<String> = [
            "thread 'main' panicked at src/lib.rs:12:5:",
            "index out of bounds: the len is 0 but the index is 3",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            crash_cause(&tail).as_deref(),
            Some("thread 'main' panicked at src/lib.rs:12:5: index out of bounds: the len is 0 but the index is 3")
        );
        let tail = vec![
            "fatal: out of memory".to_owned(),
            "note: something".to_owned(),
        ];
        assert_eq!(crash_cause(&tail).as_deref(), Some("fatal: out of memory"));
        assert_eq!(crash_cause(&[]), None);
        // A message over several lines is kept whole.
        let tail: Vec<String> = [
            "thread '<unnamed>' panicked at src/lib.rs:83:17:",
            "first line",
            "second line: 42",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            crash_cause(&tail).as_deref(),
            Some("thread '<unnamed>' panicked at src/lib.rs:83:17: first line / second line: 42")
        );
    }

    fn manifest() -> Manifest {
        Manifest {
            id: "abortive".into(),
            name: "n".into(),
            version: "1".into(),
            kind: PluginKind::Orders,
            description: "d".into(),
            config_schema: serde_json::json!({}),
            streams: vec![StreamSpec {
                name: "orders".into(),
                record: RecordKind::Order,
                primary_key: vec![],
                cursor: None,
                default_lookback_days: 0,
            }],
            allowed_hosts: vec![],
            default_base_url: None,
            auth: None,
            max_window_days: None,
            max_history_days: None,
            file_capability: None,
        }
    }

    #[tokio::test]
    async fn in_process_is_refused_for_plugins_built_with_panic_abort() {
        let mut plugin = Plugin::from_manifest("libx.so".into(), manifest());
        plugin.panic_unwind = false;
        let e = InProcess::open(
            &Arc::new(plugin),
            "c",
            b"{}".to_vec(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("without panic = \"unwind\""), "{e:?}");
    }

    #[test]
    fn statuses_map_to_failures() {
        let panic = interpret(CallOutput {
            status: STATUS_PANIC,
            bytes: br#"{"kind":"internal","retryable":false,"message":"plugin panicked: boom"}"#
                .to_vec(),
        })
        .unwrap_err();
        assert!(panic.retryable);
        assert!(panic.message.starts_with("plugin panicked: boom"));
        let err = interpret(CallOutput {
            status: STATUS_ERROR,
            bytes: b"not json".to_vec(),
        })
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol);
        assert_eq!(
            interpret(CallOutput {
                status: 7,
                bytes: vec![]
            })
            .unwrap_err()
            .kind,
            ErrorKind::Protocol
        );
    }
}
