//! Commands that open the store, run by the daemon for a client.
//!
//! The store is single-process: while `reckon run` holds the data
//! directory, `reckon records|reconcile|statements|kpi` cannot open it. So
//! the daemon listens on a Unix socket in the data directory
//! (`<data_dir>/reckon.sock`, mode 0600: only the user who owns the store
//! can use it), and such a command, finding a daemon there, sends it its
//! command line instead and prints what comes back. The daemon runs the very
//! same command function with its own open store ([`Console::in_daemon`]),
//! so the result is what the command would have done with the daemon
//! stopped. Commands that write decisions or statements take the post-sync
//! hooks' turn ([`crate::schedule::hooks::exclusive`]), so they never
//! interleave with a reconcile or a draft run after a sync.
//!
//! Wire format (one connection per command):
//! - client → daemon: one JSON line [`Request`] (the arguments after the
//!   program name, the client's working directory and its config file as
//!   absolute paths), then the client shuts its side for writing;
//! - daemon → client: frames `[u8 tag][u32 LE length][payload]`: `o` bytes
//!   for stdout, `e` for stderr, `x` one byte: the exit code, last.
//!
//! Relative `--out` paths are resolved against the client's working
//! directory; the config file is the client's (read when the command runs,
//! as a stopped daemon's command would read it), and must name the
//! daemon's data directory.

use super::{Cli, Command, Console};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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

/// What a client sends.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The command line after the program name.
    pub argv: Vec<String>,
    /// The client's working directory.
    pub cwd: PathBuf,
    /// The client's config file, absolute.
    pub config: PathBuf,
}

/// The commands a daemon runs for a client.
pub fn forwardable(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Records(_) | Command::Reconcile(_) | Command::Statements(_) | Command::Kpi(_)
    )
}

/// Whether `cmd` writes decisions or statements (it waits for the turn of
/// the post-sync hooks).
fn writes(cmd: &Command) -> bool {
    use crate::payout::cli::StatementsCommand as S;
    match cmd {
        Command::Reconcile(r) => r.command.is_none(),
        Command::Statements(s) => matches!(s, S::Generate(_) | S::Finalize(_)),
        _ => false,
    }
}

/// The socket of the data directory `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Client side. If a daemon answers on the socket of the data directory
/// the config names, runs this process's command line there, copies its
/// output and returns its exit code; `None` when no daemon answers (run
/// the command here). A config that does not load is left to the command
/// to report.
pub fn forward(config: &Path) -> anyhow::Result<Option<ExitCode>> {
    let Ok(cfg) = crate::config::load(config) else {
        return Ok(None);
    };
    let socket = socket_path(&cfg.daemon.data_dir);
    let stream = match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(s) => s,
        // No daemon, or a socket file left by one that was killed.
        Err(_) => return Ok(None),
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
    };
    eprintln!(
        "note: the reckon daemon holds {}; it runs this command",
        cfg.daemon.data_dir.display()
    );
    let code = exchange(
        stream,
        &request,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .with_context(|| format!("running the command through {}", socket.display()))?;
    Ok(Some(ExitCode::from(code)))
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
    stream.write_all(&line)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut stream = std::io::BufReader::new(stream);
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 5];
        if let Err(e) = stream.read_exact(&mut head) {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                anyhow::bail!(
                    "the daemon closed the connection before the command finished; see its log"
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

/// Daemon side: serves commands on the socket of `store`'s directory until
/// `stop` turns true; the task then ends when the commands still running
/// have (the caller bounds the wait). Returns `None` (and logs why) when
/// the socket cannot be made; the daemon runs on without it.
pub fn serve(
    store: crate::store::Store,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = socket_path(store.dir());
    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                socket = %path.display(),
                error = %e,
                "commands cannot run beside the daemon (no command socket); stop it to run records, reconcile, statements or kpi"
            );
            return None;
        }
    };
    tracing::info!(socket = %path.display(), "command socket ready");
    Some(tokio::spawn(async move {
        let mut running = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((conn, _)) => {
                        running.spawn(handle(conn, store.clone()));
                    }
                    Err(e) => tracing::warn!(error = %e, "command socket: accept failed"),
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = stop.wait_for(|v| *v) => break,
            }
        }
        drop(listener);
        let _ = std::fs::remove_file(&path);
        while running.join_next().await.is_some() {}
    }))
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
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// One client: read its request, run the command on a blocking thread,
/// stream its output back as it is written.
async fn handle(conn: tokio::net::UnixStream, store: crate::store::Store) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    let read = tokio::io::BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
    let request = read
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str::<Request>(&line).map_err(|e| e.to_string()));
    let worker = tokio::task::spawn_blocking(move || match request {
        Ok(request) => run(request, store, tx),
        Err(e) => {
            let _ = tx.blocking_send((ERR, format!("error: unreadable request: {e}\n").into()));
            let _ = tx.blocking_send((EXIT, vec![2]));
        }
    });
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
}

/// Runs one client's command in this (blocking) thread.
fn run(request: Request, store: crate::store::Store, tx: tokio::sync::mpsc::Sender<(u8, Vec<u8>)>) {
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
    let mut con = Console::in_daemon(Box::new(out), Box::new(err), store);
    let code = match parse(&request) {
        Err(message) => {
            let _ = con.err.write_all(message.as_bytes());
            2
        }
        Ok(cli) => {
            let described = request.argv.join(" ");
            tracing::info!(command = %described, "running a command for a client");
            let _turn = writes(&cli.command).then(crate::schedule::hooks::exclusive);
            let result = match cli.command {
                Command::Records(cmd) => crate::store::cli::run(&cli.config, cmd, &mut con),
                Command::Reconcile(a) => crate::reconcile::cli::run(&cli.config, a, &mut con),
                Command::Statements(cmd) => crate::payout::cli::run(&cli.config, cmd, &mut con),
                Command::Kpi(a) => crate::kpi::cli::run(&cli.config, a, &mut con),
                _ => Err(anyhow::anyhow!("this command does not run in the daemon")),
            };
            let code = match result {
                Ok(c) if c == ExitCode::SUCCESS => 0,
                Ok(_) => 1,
                Err(e) => {
                    tracing::warn!(command = %described, error = %format!("{e:#}"), "command for a client failed");
                    let _ = writeln!(con.err, "error: {e:#}");
                    1
                }
            };
            let _ = con.out.flush();
            code
        }
    };
    drop(con);
    let _ = tx.blocking_send((EXIT, vec![code]));
}

/// The client's command line as this daemon runs it: its config file and
/// `--out` paths absolute. Err: the message for the client (clap's usage
/// error, or a command that does not run in the daemon).
fn parse(request: &Request) -> Result<Cli, String> {
    use clap::Parser as _;
    let argv = std::iter::once("reckon".to_owned()).chain(request.argv.iter().cloned());
    let mut cli = Cli::try_parse_from(argv).map_err(|e| e.render().to_string())?;
    if !forwardable(&cli.command) {
        return Err(
            "error: only records, reconcile, statements and kpi run through the daemon\n".into(),
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
        _ => {}
    }
    Ok(cli)
}

/// A writer whose every write is one frame to the client.
struct Frames {
    tag: u8,
    tx: tokio::sync::mpsc::Sender<(u8, Vec<u8>)>,
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
