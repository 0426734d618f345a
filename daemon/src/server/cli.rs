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
    let addr = match args.addr {
        Some(a) => a,
        None => {
            crate::config::load(config)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .daemon
                .listen
        }
    };
    let url = format!("http://{addr}/status");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?;
        let resp = client.get(&url).send().await?;
        let resp = resp.error_for_status()?;
        resp.text().await
    });
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            crate::errln!("error: no reckon daemon answered at {url}: {e}; is `reckon run` running with this config?");
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
