//! `reckon status`: asks a running daemon (on `[daemon] listen`) for its status.
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `reckon status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the raw JSON of `/status` instead of text.
    #[arg(long)]
    pub json: bool,
    /// Daemon address, `host:port` (`localhost:9187`, `127.0.0.1:9187`);
    /// default: `[daemon] listen` from the config.
    #[arg(long, value_parser = parse_addr)]
    pub addr: Option<std::net::SocketAddr>,
}

/// `host:port`, the host a name or an IP address (the first address it
/// resolves to).
fn parse_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("`{s}` is not a host:port address ({e}); e.g. 127.0.0.1:9187"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

/// Prints the status of a running daemon.
pub fn run(config: &Path, args: StatusArgs) -> anyhow::Result<ExitCode> {
    // Where the address came from, for the error when nobody answers.
    let (addr, data_dir) = match args.addr {
        Some(a) => (a, None),
        None => {
            let cfg = crate::config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
            (cfg.daemon.listen, Some(cfg.daemon.data_dir))
        }
    };
    let url = format!("http://{addr}/status");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?;
        let resp = client.get(&url).send().await?;
        let status = resp.status();
        Ok::<_, reqwest::Error>((status, resp.text().await?))
    });
    let body = match answer {
        Ok((status, body)) if status.is_success() => body,
        Ok((status, _)) => {
            crate::errln!(
                "error: {url} answered HTTP {status}: what listens at {addr} is not a reckon daemon; {}",
                where_else(config, data_dir.as_deref(), addr)
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            crate::errln!(
                "error: no reckon daemon answered at {url}: {}; {}",
                root_cause(&e),
                where_else(config, data_dir.as_deref(), addr)
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.json {
        // As the text: a closed stdout (`| head`) is not a panic.
        crate::cli::write_stdout(&format!("{body}\n"))?;
    } else {
        let report: super::status::StatusReport = serde_json::from_str(&body)
            .map_err(|e| anyhow::anyhow!("unexpected answer from {url}: {e}"))?;
        crate::cli::write_stdout(&report.render())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The innermost cause of a failed request ("Connection refused (os error
/// 111)"), not reqwest's "error sending request for url (...)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What to try when nothing (or something else) answers at `addr`: which
/// address was asked and why, and `--addr` for a daemon that listens
/// elsewhere. `data_dir` is the config's, when the address came from it:
/// a reckon process holding it is running, just not on `listen` (the file
/// was edited after it started: `listen` is read at start only).
fn where_else(config: &Path, data_dir: Option<&Path>, addr: std::net::SocketAddr) -> String {
    let Some(data_dir) = data_dir else {
        return format!(
            "{addr} is the address given with --addr; is `reckon run` running and listening there?"
        );
    };
    let asked = format!("{addr} is `[daemon] listen` in {}", config.display());
    match crate::store::held_by_another_process(data_dir) {
        Err(crate::store::StoreError::Locked { pid, .. }) => format!(
            "{asked}, but a process{} holds its data_dir {}: if that is `reckon run`, it listens on the address its config had when it started (a `listen` change needs a restart; its log line `daemon started` names the address); give that address with `reckon status --addr HOST:PORT`",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            data_dir.display()
        ),
        _ => format!(
            "{asked}; is `reckon run` running with this config? If the daemon was started with another `listen` address (the file was edited since), give that address with `reckon status --addr HOST:PORT`"
        ),
    }
}
