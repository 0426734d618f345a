//! Commands that open the store, run by the daemon for a client.
//!
//! The store is single-process: while `reckon run` holds the data
//! directory, `reckon sync|records|reconcile|statements|kpi` cannot open
//! it. So the daemon listens on a Unix socket in the data directory
//! (`<data_dir>/reckon.sock`, mode 0600: only the user who owns the store
//! can use it), and such a command, finding a daemon there, sends it its
//! command line instead and prints what comes back. For every command but
//! `sync` the daemon runs the very same command function with its own open
//! store ([`Console::in_daemon`]), so the result is what the command would
//! have done with the daemon stopped (`config check` is not sent: it has
//! the daemon run only its settled checks, the hidden `config settled`,
//! [`crate::config::settled`]). Commands that write decisions or
//! statements take the post-sync hooks' turn
//! ([`crate::schedule::hooks::exclusive`]), so they never interleave with a
//! reconcile or a draft run after a sync. A `sync` (a backfill) runs the
//! connector as the daemon runs it (its resolved config and secrets), never
//! beside another run of the same connector ([`Daemon::claim`]), prints
//! the same lines as without the daemon (progress as lines), stops after
//! its current page when the client goes away, and is followed by the
//! post-sync hooks like a scheduled run.
//!
//! Wire format (one connection per command):
//! - client → daemon: one JSON line [`Request`] (the arguments after the
//!   program name, the client's working directory and its config file as
//!   absolute paths); the client then keeps its side open and sends
//!   nothing: end of input means it is gone;
//! - daemon → client: frames `[u8 tag][u32 LE length][payload]`: `o` bytes
//!   for stdout, `e` for stderr, `x` one byte: the exit code, last.
//!
//! Relative `--out` and `--record` paths are resolved against the client's
//! working directory; the config file is the client's (read when the
//! command runs, as a stopped daemon's command would read it), and must
//! name the daemon's data directory.

use super::{Cli, Command, Console};
use crate::schedule::Daemon;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The socket's file name in the data directory.
pub const SOCKET: &str = "reckon.sock";

/// Frame tags.
const OUT: u8 = b'o';
const ERR: u8 = b'e';
const EXIT: u8 = b'x';

/// Most bytes the daemon puts in one frame.
const FRAME_BYTES: usize = 64 * 1024;

/// Largest frame a client accepts.
const MAX_FRAME: u32 = 1 << 24;

/// Largest request the daemon reads.
const MAX_REQUEST: u64 = 1 << 20;

/// How long the daemon waits for a connected client's request.
const REQUEST_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Clients served at once; more wait in the socket's backlog until one
/// ends (QA28-E F9: 200 idle clients held 200 descriptors for 10 s each,
/// and the HTTP server, out of descriptors, stopped answering).
pub const MAX_CLIENTS: usize = 64;

/// What a client sends.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The command line after the program name.
    pub argv: Vec<String>,
    /// The client's working directory.
    pub cwd: PathBuf,
    /// The client's config file, absolute.
    pub config: PathBuf,
    /// The client's release ([`crate::VERSION`]); none from a client of
    /// before 2026-12-01. A daemon of another release says so before the
    /// command's output (QA33-A L3: a new client's `statements generate`
    /// wrote an old release's drafts through the old daemon, silently).
    #[serde(default)]
    pub version: Option<String>,
}

/// The note a daemon puts before a command from a client of another
/// release: the daemon's code runs it.
pub fn other_release(client: Option<&str>) -> Option<String> {
    if client == Some(crate::VERSION) {
        return None;
    }
    let client = client.map_or_else(
        || "a release of before 2026-12-01".to_owned(),
        |v| format!("reckon {v}"),
    );
    Some(format!(
        "note: the daemon runs reckon {}; this command is {client}: the daemon's release runs it (after an upgrade, restart the daemon with the new binary)\n",
        crate::VERSION
    ))
}

/// The commands a daemon runs for a client: those that open the store
/// (`sync --check` does not, and runs where it is typed; `config check`
/// runs where it is typed and has the daemon run its settled checks,
/// `config settled`).
pub fn forwardable(cmd: &Command) -> bool {
    match cmd {
        Command::Sync(s) => !s.check,
        Command::Config(c) => matches!(c, crate::config::cli::ConfigCommand::Settled { .. }),
        Command::Records(_) | Command::Reconcile(_) | Command::Statements(_) | Command::Kpi(_) => {
            true
        }
        _ => false,
    }
}

/// Whether `cmd` writes decisions or statements (it waits for the turn of
/// the post-sync hooks). `show` and `verify` count: they complete a swap
/// cut short and remove a staging directory of a period with no record
/// (`files::recover`), which would remove the staging directory of a
/// `generate` of that period running beside them.
fn writes(cmd: &Command) -> bool {
    use crate::payout::cli::StatementsCommand as S;
    match cmd {
        Command::Reconcile(r) => r.command.is_none(),
        Command::Statements(s) => matches!(
            s,
            S::Generate(_) | S::Finalize(_) | S::Show(_) | S::Verify(_)
        ),
        _ => false,
    }
}

/// The socket of the data directory `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// A name of `data_dir`'s socket short enough for a socket address (at most
/// 107 bytes on Linux): its path, or, for a deeper directory, the same file
/// through `/proc/self/fd/<n>` of the directory, opened here; the caller
/// keeps the returned handle open while it binds or connects.
fn reachable(data_dir: &Path) -> std::io::Result<(PathBuf, Option<std::fs::File>)> {
    use std::os::fd::AsRawFd as _;
    let path = socket_path(data_dir);
    if path.as_os_str().len() < 100 {
        return Ok((path, None));
    }
    let dir = std::fs::File::open(data_dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()));
    Ok((short, Some(dir)))
}

/// Client side. If a daemon answers on the socket of the data directory
/// the config names, runs this process's command line there, copies its
/// output and returns its exit code; `None` when no daemon answers (run
/// the command here). A config that does not load is left to the command
/// to report.
///
/// With `output_only` false (the command changes state or answers with
/// its status: [`super::output_is_the_result`]), output nobody reads any
/// more is dropped and the answer is read to its end, so the command
/// finishes in the daemon and this process exits with its status.
pub fn forward(
    config: &Path,
    log_format: Option<crate::config::LogFormat>,
    sync: bool,
    output_only: bool,
) -> anyhow::Result<Option<ExitCode>> {
    let Ok(cfg) = crate::config::load(config) else {
        return Ok(None);
    };
    let socket = socket_path(&cfg.daemon.data_dir);
    // No daemon, or a socket file left by one that was killed.
    let Some(stream) = connect(&cfg.daemon.data_dir) else {
        return Ok(None);
    };
    let argv = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string().map_err(|a| {
                anyhow::anyhow!(
                    "argument {a:?} is not UTF-8; a command run by the daemon needs UTF-8 arguments"
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let request = Request {
        argv,
        cwd: std::env::current_dir().context("the working directory")?,
        config: std::path::absolute(config).context("the config file's path")?,
        version: Some(crate::VERSION.to_owned()),
    };
    let note = format!(
        "the reckon daemon holds {}; it runs this command",
        cfg.daemon.data_dir.display()
    );
    // The log format is `run`'s and `sync`'s: for the other commands the
    // note is text like the rest of their output (QA9 F4).
    if sync && json_log(log_format, &cfg) {
        // This client's own errors too (the daemon went away, say).
        super::output::errors_as_json();
        let _ = std::io::stderr().write_all(
            crate::sync::cli::json_log_line("INFO", &note, serde_json::Value::Null).as_bytes(),
        );
    } else {
        crate::errln!("note: {note}");
    }
    let (mut out, mut err): (Box<dyn Write>, Box<dyn Write>) = if output_only {
        (
            Box::new(super::output::stdout()),
            Box::new(super::output::diagnostics()),
        )
    } else {
        (
            Box::new(super::output::Unread::new(super::output::stdout())),
            Box::new(super::output::diagnostics()),
        )
    };
    if sync {
        stop_on_signal(&stream, json_log(log_format, &cfg));
    }
    let code = exchange(stream, &request, &mut out, &mut err)
        .with_context(|| format!("running the command through {}", socket.display()))?;
    Ok(Some(ExitCode::from(code)))
}

/// Whether a sync's client writes JSON log lines (`--log-format`, else the
/// config's `[daemon] log_format`).
fn json_log(log_format: Option<crate::config::LogFormat>, cfg: &crate::config::Config) -> bool {
    log_format.unwrap_or(cfg.daemon.log_format) == crate::config::LogFormat::Json
}

/// A sync's client on SIGTERM or SIGINT: closes its side of the request,
/// which stops the daemon's sync after its current page, and goes on
/// reading, so the run's outcome is printed and the exit status is the
/// daemon's (QA29-A L5: a client sent SIGTERM exited 143 without a word).
/// A second signal ends this process at once.
fn stop_on_signal(stream: &std::os::unix::net::UnixStream, json: bool) {
    let Ok(half) = stream.try_clone() else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("reckon-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut t), Ok(mut i)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                let code = tokio::select! { _ = t.recv() => 143, _ = i.recv() => 130 };
                let note = "stopping after the current page commits (the daemon runs the sync; a second signal ends this command at once)...";
                if json {
                    let line = crate::sync::cli::json_log_line("INFO", note, serde_json::Value::Null);
                    let _ = std::io::stderr().write_all(line.as_bytes());
                } else {
                    crate::errln!("{note}");
                }
                let _ = half.shutdown(std::net::Shutdown::Write);
                tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
                std::process::exit(code);
            });
        });
}

/// A connection to the daemon serving `data_dir`, if one answers: `None`
/// when there is no socket, or one left by a daemon that was killed.
pub fn connect(data_dir: &Path) -> Option<std::os::unix::net::UnixStream> {
    // The directory's handle is needed while connecting only.
    let (reachable, _dir) = reachable(data_dir).ok()?;
    std::os::unix::net::UnixStream::connect(&reachable).ok()
}

/// Sends `request` and copies the answer's frames to `out` and `err`;
/// returns the exit code.
pub fn exchange(
    mut stream: std::os::unix::net::UnixStream,
    request: &Request,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    // Not an `io::Error`: a closed socket here is the daemon's doing, not
    // a closed stdout, which commands end quietly on (QA23 N1).
    stream.write_all(&line).map_err(|e| {
        anyhow::anyhow!(
            "the daemon closed its command socket before it read the command ({e}); see its log"
        )
    })?;
    // The write side stays open: its end tells the daemon this process is
    // gone (Ctrl-C), which stops a sync after its page.
    let mut stream = std::io::BufReader::new(stream);
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 5];
        if let Err(e) = stream.read_exact(&mut head) {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                anyhow::bail!(
                    "the daemon closed the connection before the command finished (it stopped or died); see its log, and run this command again once the daemon is back (what it committed is kept)"
                );
            }
            return Err(e.into());
        }
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            anyhow::bail!("the daemon sent a frame of {len} bytes; is this a reckon socket?");
        }
        payload.resize(len as usize, 0);
        stream.read_exact(&mut payload)?;
        match head[0] {
            OUT => out.write_all(&payload)?,
            ERR => err.write_all(&payload)?,
            EXIT => {
                out.flush()?;
                return Ok(payload.first().copied().unwrap_or(1));
            }
            other => anyhow::bail!("the daemon sent an unknown frame tag {other}"),
        }
    }
}

/// Daemon side: serves commands on the socket of the daemon's data
/// directory until `stop` turns true; the task then ends when the commands
/// still running have (the caller bounds the wait). Returns `None` (and
/// logs why) when the socket cannot be made; the daemon runs on without it.
pub fn serve(
    daemon: Arc<Daemon>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = socket_path(daemon.store.dir());
    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                socket = %path.display(),
                error = %e,
                "commands cannot run beside the daemon (no command socket); stop it to run sync, records, reconcile, statements or kpi"
            );
            return None;
        }
    };
    tracing::info!(socket = %path.display(), "command socket ready");
    Some(tokio::spawn(async move {
        let mut running = tokio::task::JoinSet::new();
        // Out of file descriptors, accept fails at once until some close:
        // back off and log rate-limited, never spin (security QA H3).
        let mut errors = crate::server::listener::AcceptErrors::new("command socket");
        let mut foreign = ForeignPeers::default();
        let mut full = FullWarning::default();
        loop {
            full.check(running.len());
            tokio::select! {
                accepted = listener.accept(), if running.len() < MAX_CLIENTS => match accepted {
                    Ok((conn, _)) => {
                        errors.succeeded();
                        // Another user's client is told why, after its
                        // request is read (QA23 N1: closed at once, its
                        // write could fail as a closed pipe and exit 0).
                        let refused = foreign_peer(&conn).map(|uid| {
                            foreign.refused(uid);
                            format!("error: only the user the daemon runs as (or root) may run commands through its socket; this client runs as uid {uid}: run the command as that user\n")
                        });
                        running.spawn(handle(conn, daemon.clone(), refused));
                    }
                    Err(e) => tokio::select! {
                        _ = errors.failed(&e) => {}
                        _ = crate::server::listener::stopped(&mut stop) => break,
                    },
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = crate::server::listener::stopped(&mut stop) => break,
            }
        }
        drop(listener);
        let _ = std::fs::remove_file(&path);
        while running.join_next().await.is_some() {}
    }))
}

/// The uid of a peer that is neither this process's user nor root: the
/// socket is made owner-only right after it is bound, and a client that
/// connected in between (under a permissive umask) must not be served
/// (security QA22 S1). A peer whose credentials cannot be read is refused
/// too (`u32::MAX`).
fn foreign_peer(conn: &tokio::net::UnixStream) -> Option<u32> {
    let me = rustix::process::geteuid().as_raw();
    match conn.peer_cred() {
        Ok(c) if c.uid() == me || c.uid() == 0 => None,
        Ok(c) => Some(c.uid()),
        Err(_) => Some(u32::MAX),
    }
}

/// Refused connections from other users: a WARN at most once a minute,
/// with how many since the last one.
#[derive(Default)]
struct ForeignPeers {
    since_warn: u64,
    warned: Option<std::time::Instant>,
}

impl ForeignPeers {
    fn refused(&mut self, uid: u32) {
        self.since_warn += 1;
        if self
            .warned
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(60))
        {
            return;
        }
        tracing::warn!(
            uid,
            refused = self.since_warn,
            "command socket: refused a connection from another user; only the store's owner (or root) may run commands through the daemon"
        );
        self.warned = Some(std::time::Instant::now());
        self.since_warn = 0;
    }
}

/// The WARN when [`MAX_CLIENTS`] are being served: once a minute at most.
#[derive(Default)]
struct FullWarning {
    warned: Option<std::time::Instant>,
}

impl FullWarning {
    fn check(&mut self, clients: usize) {
        if clients < MAX_CLIENTS
            || self
                .warned
                .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(60))
        {
            return;
        }
        tracing::warn!(
            clients,
            "command socket: {MAX_CLIENTS} commands are being served at once; more wait until one ends (a client that sends no request is dropped after 10 s)"
        );
        self.warned = Some(std::time::Instant::now());
    }
}

/// Binds the socket, replacing a file left by an earlier daemon (this one
/// holds the data directory's lock, so no other serves it), readable and
/// writable by the owner only.
fn bind(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket has the socket's name; move it away",
            ))
        }
        Err(_) => {}
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let (reachable, _dir) = reachable(dir)?;
    let listener = tokio::net::UnixListener::bind(reachable)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

type Frame = (u8, Vec<u8>);

/// One client: read its request, run the command, stream its output back
/// as it is written. The client keeps its side open until the answer
/// ends, so end of input means it went away (Ctrl-C), which stops a sync
/// after its current page.
async fn handle(conn: tokio::net::UnixStream, daemon: Arc<Daemon>, refused: Option<String>) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let (read, mut write) = conn.into_split();
    let mut read = tokio::io::BufReader::new(read);
    let mut line = String::new();
    // A client sends its request at once; one that does not is dropped.
    let got = tokio::time::timeout(
        REQUEST_WITHIN,
        (&mut read).take(MAX_REQUEST).read_line(&mut line),
    )
    .await
    .unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no request within 10 s",
        ))
    });
    let gone = crate::sync::Shutdown::new();
    let watch = {
        let gone = gone.clone();
        tokio::spawn(async move {
            let mut sink = [0u8; 256];
            while let Ok(1..) = read.read(&mut sink).await {}
            gone.request();
        })
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Frame>(16);
    let parsed = refused
        .map_or(Ok(()), Err)
        .and(got.map_err(|e| format!("error: unreadable request: {e}\n")))
        .and_then(|n| {
            // Cut at the limit, before its newline (QA28-E F10: read as a
            // JSON syntax error).
            if n as u64 >= MAX_REQUEST && !line.ends_with('\n') {
                return Err(format!(
                    "error: the request is larger than {} KiB (a command line and its paths are far smaller)\n",
                    MAX_REQUEST >> 10
                ));
            }
            Ok(())
        })
        .and_then(|_| {
            serde_json::from_str::<Request>(&line)
                .map_err(|e| format!("error: unreadable request: {e}\n"))
        })
        .and_then(|request| parse(&request).map(|cli| (request, cli)));
    let worker = match parsed {
        Err(message) => tokio::spawn(async move {
            let _ = tx.send((ERR, message.into_bytes())).await;
            let _ = tx.send((EXIT, vec![2])).await;
        }),
        Ok((request, cli)) => {
            tracing::info!(command = %request.argv.join(" "), "running a command for a client");
            // Not before a sync's JSON log lines, nor `config settled`'s
            // answer (`config check` says it in its own words).
            let quiet = match &cli.command {
                Command::Sync(_) => {
                    cli.log_format
                        .unwrap_or(daemon.runtime().config.daemon.log_format)
                        == crate::config::LogFormat::Json
                }
                Command::Config(_) => true,
                _ => false,
            };
            if let Some(note) = other_release(request.version.as_deref()).filter(|_| !quiet) {
                // The channel is empty: the command has not started.
                let _ = tx.try_send((ERR, note.into_bytes()));
            }
            match cli.command {
                Command::Status(args) => tokio::spawn(status(daemon, args.json, tx)),
                Command::Sync(args) => {
                    // As a local sync: the flag, else the daemon's config.
                    let json = cli
                        .log_format
                        .unwrap_or(daemon.runtime().config.daemon.log_format)
                        == crate::config::LogFormat::Json;
                    tokio::spawn(sync(daemon, cli.config, args, json, tx, gone))
                }
                command => {
                    // A reset holds the connector as a sync does: a sync
                    // running now would write its checkpoint back
                    // (QA9 F1), and none starts while it resets.
                    let resets = match &command {
                        Command::Records(crate::store::cli::RecordsCommand::Checkpoints {
                            source,
                            reset: true,
                            ..
                        }) => Some(source.clone()),
                        _ => None,
                    };
                    match resets {
                        Some(id) if !daemon.claim(&id) => tokio::spawn(async move {
                            let message = format!(
                                "error: connector `{id}` is running now (a scheduled run or a `reckon sync`), and its run would write the checkpoint back; reset it when the run ends (`reckon status`)\n"
                            );
                            let _ = tx.send((ERR, message.into_bytes())).await;
                            let _ = tx.send((EXIT, vec![super::EX_BUSY])).await;
                        }),
                        held => {
                            let store = daemon.store.clone();
                            let held = held.map(|id| Held(daemon.clone(), id));
                            let join = tokio::task::spawn_blocking(move || {
                                run(&request, &cli.config, command, store, tx);
                                drop(held);
                            });
                            tokio::spawn(async move {
                                let _ = join.await;
                            })
                        }
                    }
                }
            }
        }
    };
    while let Some((tag, bytes)) = rx.recv().await {
        let mut frame = Vec::with_capacity(5 + bytes.len());
        frame.push(tag);
        frame.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        frame.extend_from_slice(&bytes);
        if write.write_all(&frame).await.is_err() {
            // The client went away (`| head`, Ctrl-C): dropping the
            // receiver makes the command's next write fail, which ends it.
            break;
        }
    }
    drop(rx);
    let _ = worker.await;
    watch.abort();
}

/// `reckon status` asked through the socket: the daemon's status, as
/// `/status` gives it, and the address that serves it.
async fn status(daemon: Arc<Daemon>, json: bool, tx: tokio::sync::mpsc::Sender<Frame>) {
    let report = crate::server::status::StatusReport::of(&daemon);
    let body = if json {
        serde_json::to_string(&report).map(|j| j + "\n")
    } else {
        Ok(report.render())
    };
    let listen = daemon.started_with.listen;
    // With a status token, `--addr` alone is not enough (security QA22
    // S2: the note sent a client that had just got a 401 back there).
    let there = if daemon.runtime().status_token.is_some() {
        "with a config file holding its `[daemon] status_token`"
    } else {
        "asks it there"
    };
    let (frames, code) = match body {
        Ok(body) => (
            vec![
                (
                    ERR,
                    format!(
                        "note: this daemon listens on {listen}, the `listen` it started with; `reckon status --addr {listen}` {there}\n"
                    ),
                ),
                (OUT, body),
            ],
            0,
        ),
        Err(e) => (vec![(ERR, format!("error: status: {e}\n"))], 1),
    };
    for (tag, text) in frames {
        let _ = tx.send((tag, text.into_bytes())).await;
    }
    let _ = tx.send((EXIT, vec![code])).await;
}

/// Runs one client's command (not a sync) in this blocking thread.
fn run(
    request: &Request,
    config: &Path,
    command: Command,
    store: crate::store::Store,
    tx: tokio::sync::mpsc::Sender<Frame>,
) {
    let out = std::io::BufWriter::with_capacity(
        FRAME_BYTES,
        Frames {
            tag: OUT,
            tx: tx.clone(),
        },
    );
    let err = Frames {
        tag: ERR,
        tx: tx.clone(),
    };
    let health = store.clone();
    let mut con = Console::in_daemon(Box::new(out), Box::new(err), store);
    let out_file = match &command {
        Command::Kpi(k) => k.out.clone(),
        Command::Reconcile(r) => match &r.command {
            Some(crate::reconcile::cli::ReconcileCommand::Report(rep)) => rep.out.clone(),
            None => None,
        },
        _ => None,
    };
    let _turn = writes(&command).then(crate::schedule::hooks::exclusive);
    // A bug in a command (a panic) fails that command with an error that
    // says so; the client was told the daemon had died (QA20 R20-1).
    let mut panicked = false;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match command {
        Command::Records(cmd) => crate::store::cli::run(config, cmd, &mut con),
        Command::Reconcile(a) => crate::reconcile::cli::run(config, a, &mut con),
        Command::Statements(cmd) => crate::payout::cli::run(config, cmd, &mut con),
        Command::Kpi(a) => crate::kpi::cli::run(config, a, &mut con),
        Command::Config(c) => crate::config::cli::run(config, c, &mut con),
        _ => Err(anyhow::anyhow!("this command does not run in the daemon")),
    }))
    .unwrap_or_else(|payload| {
        panicked = true;
        Err(anyhow::anyhow!(
            "internal error in the daemon (a bug, please report it): {}; the daemon runs on",
            crate::panic_message(&*payload)
        ))
    });
    let code = match result {
        Ok(c) if c == ExitCode::SUCCESS => 0,
        Ok(_) => 1,
        // The client stopped reading (`| head`): the end a standalone
        // command takes quietly, exit 0 (QA35a L2: logged as a WARN).
        Err(e) if super::is_broken_pipe(&e) => {
            tracing::debug!(command = %request.argv.join(" "), "the client stopped reading the command's output");
            0
        }
        Err(e) => {
            // The client is told; the daemon's log says so at INFO (a
            // trace of an unpaid claim, a bad argument: not the daemon's
            // trouble; QA35a L2), and a bug in the daemon at ERROR.
            let command = request.argv.join(" ");
            let error = format!("{e:#}");
            if panicked {
                tracing::error!(%command, %error, "command for a client failed");
            } else {
                tracing::info!(%command, %error, "command for a client failed");
            }
            let hint = out_file
                .as_deref()
                .filter(|_| permission_denied(&e))
                .map(|path| format!("; {}", written_by_daemon("--out", path)))
                .unwrap_or_default();
            let _ = writeln!(con.err, "error: {e:#}{hint}");
            1
        }
    };
    if let Some(note) = (code != 0).then(|| daemon_stopping(&health)).flatten() {
        let _ = writeln!(con.err, "{note}");
    }
    let _ = con.out.flush();
    drop(con);
    // A report or statements of a large program may have taken a GB or
    // more; the daemon runs on, so hand it back to the system.
    crate::release_free_memory();
    let _ = tx.blocking_send((EXIT, vec![code]));
}

/// Whether `e` is a refused write (permission denied), in its chain or in
/// its message (`KpiError::Write` keeps its cause out of the chain).
fn permission_denied(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
    }) || format!("{e:#}").contains("(os error 13)")
}

/// Says who wrote `path` (a client's `--out` or `--record`) and was
/// refused: the daemon, as its own user, not the user who typed the
/// command (ops QA13 OPS-3: root got a bare "Permission denied" for a file
/// in its own directory).
fn written_by_daemon(flag: &str, path: &Path) -> String {
    let uid = rustix::process::geteuid().as_raw();
    let user = match crate::config::dirs::user_name(uid) {
        Some(name) => format!("user `{name}`, uid {uid}"),
        None => format!("uid {uid}"),
    };
    let redirect = if flag == "--out" {
        ", leave out --out and redirect the output instead (`> FILE`: your shell writes it)"
    } else {
        ""
    };
    format!(
        "the reckon daemon runs this command and writes {flag} {} itself, as {user}, which may not write there: give {flag} a path that user can write (e.g. under /tmp or a directory it owns){redirect}, or stop the daemon and run the command as the store's owner",
        path.display()
    )
}

/// Runs a client's `reckon sync` in the daemon: the connector as the daemon
/// runs it (its config at start or last SIGHUP, its secrets), never beside
/// a scheduled run of the same connector, stopped after the current page
/// when the client goes away or the daemon stops, followed by the post-sync
/// hooks (reconcile) as a scheduled run is.
async fn sync(
    daemon: Arc<Daemon>,
    config: PathBuf,
    args: crate::sync::cli::SyncArgs,
    json: bool,
    tx: tokio::sync::mpsc::Sender<Frame>,
    gone: crate::sync::Shutdown,
) {
    // A sync writes a line per page: an unbounded channel, copied into the
    // client's frames, so its progress never waits for the client.
    let (lines, mut pending) = tokio::sync::mpsc::unbounded_channel::<Frame>();
    let pump = {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(f) = pending.recv().await {
                if tx.send(f).await.is_err() {
                    break;
                }
            }
        })
    };
    let code = sync_run(&daemon, &config, args, json, &lines, &gone).await;
    drop(lines);
    let _ = pump.await;
    let _ = tx.send((EXIT, vec![code])).await;
}

/// `json`: the client's stderr gets JSON log lines (`--log-format json`),
/// progress and messages alike, as a local sync writes them.
async fn sync_run(
    daemon: &Arc<Daemon>,
    config: &Path,
    args: crate::sync::cli::SyncArgs,
    json: bool,
    lines: &tokio::sync::mpsc::UnboundedSender<Frame>,
    gone: &crate::sync::Shutdown,
) -> u8 {
    let mut out = QueuedFrames {
        tag: OUT,
        tx: lines.clone(),
    };
    let err = QueuedFrames {
        tag: ERR,
        tx: lines.clone(),
    };
    let mut err: Box<dyn Write + Send> = if json {
        Box::new(crate::sync::cli::JsonErr::new(err))
    } else {
        Box::new(err)
    };
    let rt = daemon.runtime();
    let id = args.connector.as_str();
    let Some(connector) = rt.connectors.iter().find(|c| c.config.id == id) else {
        let ids: Vec<&str> = rt.connectors.iter().map(|c| c.config.id.as_str()).collect();
        let _ = writeln!(
            err,
            "error: the running daemon has no connector `{id}` (its config {}, as of its start or last SIGHUP; configured: {})",
            daemon.config_path.display(),
            ids.join(", ")
        );
        return 1;
    };
    let same = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if same(config) != same(&daemon.config_path) {
        let _ = writeln!(
            err,
            "note: `{id}` is synced as the daemon's config {} has it (as of its start or last SIGHUP)",
            daemon.config_path.display()
        );
    }
    let mut recording = match &args.record {
        None => None,
        Some(dir) => match std::fs::create_dir_all(dir) {
            Ok(()) => Some(crate::sync::Recording {
                dir: dir.clone(),
                written: Vec::new(),
            }),
            Err(e) => {
                let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    format!("; {}", written_by_daemon("--record", dir))
                } else {
                    String::new()
                };
                let _ = writeln!(err, "error: --record {}: {e}{hint}", dir.display());
                return 1;
            }
        },
    };
    if !daemon.claim(id) {
        let _ = writeln!(
            err,
            "error: connector `{id}` is running now (a scheduled run or another `reckon sync`); run this again when it ends (`reckon status`)"
        );
        return super::EX_BUSY;
    }
    let _release = Release(daemon, id);
    // Stop after the current page when the daemon stops or the client goes.
    let stop = crate::sync::Shutdown::new();
    let link = {
        let (stop, mut down, mut gone) =
            (stop.clone(), daemon.shutdown.subscribe(), gone.subscribe());
        tokio::spawn(async move {
            tokio::select! {
                _ = down.wait_for(|v| *v) => {}
                _ = gone.wait_for(|v| *v) => {}
            }
            stop.request();
        })
    };
    let ctx = crate::sync::SyncContext {
        shutdown: stop,
        ..daemon.sync_context()
    };
    let send = {
        let lines = lines.clone();
        move |line: String| {
            let _ = lines.send((ERR, line.into_bytes()));
        }
    };
    let progress: Box<dyn crate::sync::Progress> = if json {
        Box::new(crate::sync::cli::JsonLines(send))
    } else {
        Box::new(crate::sync::cli::Lines(send))
    };
    let seq_before = daemon.store.last_seq().unwrap_or(0);
    // Also in `/status` (`current_run`), as the daemon's own runs.
    let progress = crate::schedule::StatusProgress::new(daemon, id, progress.as_ref());
    // The run's log lines too (429 waits, retries), as a standalone run
    // prints them (ops QA34 B-L1).
    let forwarding = {
        let lines = lines.clone();
        crate::sync::forward::forward(id, move |l| {
            let line = if json { l.json() } else { l.text() };
            let _ = lines.send((ERR, line.into_bytes()));
        })
    };
    let result = crate::sync::run_sync_with(
        &ctx,
        connector,
        args.from.zip(args.to),
        &progress,
        recording.as_mut(),
    )
    .await;
    drop(forwarding);
    link.abort();
    match &result {
        Ok(run) => tracing::info!(
            connector = id,
            records_new = run.records_new,
            records_changed = run.records_changed,
            "sync for a client done"
        ),
        // Stopped on purpose (SIGTERM, the client gone): no failure to
        // alert on (QA19 F4 leftover).
        Err(e @ crate::sync::SyncError::Interrupted(_)) => {
            tracing::info!(connector = id, error = %e, "sync for a client stopped after its current page")
        }
        Err(e) => tracing::warn!(connector = id, error = %e, "sync for a client failed"),
    }
    if result.is_ok() {
        let seq_after = daemon.store.last_seq().unwrap_or(seq_before);
        let (store, config, kind) = (
            daemon.store.clone(),
            rt.config.clone(),
            connector.plugin.manifest.kind,
        );
        let connector = id.to_owned();
        let _ = tokio::task::spawn_blocking(move || {
            crate::schedule::hooks::run_post_sync(&crate::schedule::hooks::SyncEvent {
                store: &store,
                config: &config,
                connector: &connector,
                kind,
                seq_before,
                seq_after,
            })
        })
        .await;
    }
    let code = match crate::sync::cli::report(&result, recording.as_ref(), &mut out, &mut err) {
        Ok(c) if c == ExitCode::SUCCESS => 0,
        _ => 1,
    };
    if let Some(note) = (code != 0)
        .then(|| daemon_stopping(&daemon.store))
        .flatten()
    {
        let _ = writeln!(err, "{note}");
    }
    let _ = err.flush();
    code
}

/// What a client whose command failed must know when the store failed for
/// good (a full disk): the daemon stops, and serves nothing until it is
/// restarted (ops QA13 OPS-14: the client was told "free space and rerun"
/// only).
fn daemon_stopping(store: &crate::store::Store) -> Option<String> {
    store.failure().map(|reason| {
        format!(
            "error: the daemon is stopping (exit status {}): {reason}; once that is fixed, restart the daemon too: its store refuses every write until then (a supervisor restarts it on this exit status)",
            crate::schedule::EXIT_STORE_FAILED
        )
    })
}

/// Ends a client's run of a connector (see [`Daemon::claim`]) however the
/// run ends.
/// A connector held by a command that runs no sync; let go when dropped.
struct Held(Arc<Daemon>, String);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.unclaim(&self.1);
    }
}

struct Release<'a>(&'a Daemon, &'a str);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// The client's command line as this daemon runs it: its config file and
/// `--out` paths absolute. Err: the message for the client (clap's usage
/// error, or a command that does not run in the daemon).
fn parse(request: &Request) -> Result<Cli, String> {
    let argv = std::iter::once("reckon".to_owned()).chain(request.argv.iter().cloned());
    let mut cli = super::try_parse_from(argv).map_err(|e| e.render().to_string())?;
    // `status` is asked here by a client that found no daemon on the
    // config's `listen` (edited since the daemon started).
    if !forwardable(&cli.command) && !matches!(cli.command, Command::Status(_)) {
        return Err(
            "error: only sync, records, reconcile, statements, kpi and status run through the daemon\n"
                .into(),
        );
    }
    cli.config = request.config.clone();
    let absolute = |p: &mut Option<PathBuf>| {
        if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
            *p = request.cwd.join(&*p);
        }
    };
    match &mut cli.command {
        Command::Reconcile(r) => {
            if let Some(crate::reconcile::cli::ReconcileCommand::Report(rep)) = &mut r.command {
                absolute(&mut rep.out);
            }
        }
        Command::Kpi(k) => absolute(&mut k.out),
        Command::Sync(s) => absolute(&mut s.record),
        _ => {}
    }
    Ok(cli)
}

/// A writer whose every write is one frame to the client, for output
/// written from async code (a sync's lines): it never waits.
struct QueuedFrames {
    tag: u8,
    tx: tokio::sync::mpsc::UnboundedSender<Frame>,
}

impl Write for QueuedFrames {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .send((self.tag, buf.to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer whose every write is one frame to the client (at most
/// [`FRAME_BYTES`]), waiting while the client is behind: for commands on a
/// blocking thread.
struct Frames {
    tag: u8,
    tx: tokio::sync::mpsc::Sender<Frame>,
}

impl Write for Frames {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let part = &buf[..buf.len().min(FRAME_BYTES)];
        self.tx
            .blocking_send((self.tag, part.to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(part.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
