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

/// Prints the status of a running daemon. The config file is read for its
/// `[daemon]` section only: a file with errors elsewhere (a SIGHUP the
/// daemon rejected, new-user QA16 N1) still names the daemon's address,
/// with a note that it has errors.
pub fn run(config: &Path, args: StatusArgs) -> anyhow::Result<ExitCode> {
    // The daemon's `status_token` from the config's `[daemon]` (also with
    // --addr: the daemon there may be this config's).
    let token = status_token(config);
    // Where the address came from, for the error when nobody answers.
    let (addr, data_dir) = match args.addr {
        Some(a) => (a, None),
        None => match crate::config::load(config) {
            Ok(cfg) => (cfg.daemon.listen, Some(cfg.daemon.data_dir)),
            Err(errors) => {
                let first = errors
                    .0
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let more = match errors.0.len() {
                    0 | 1 => String::new(),
                    n => format!(" and {} more", n - 1),
                };
                let Some(daemon) = daemon_section(config) else {
                    crate::errln!(
                        "error: {first}{more}\nthe daemon's address is unknown: `[daemon] listen` cannot be read from {}. A running daemon keeps the config it loaded last: ask it with `reckon status --addr HOST:PORT` (its log line `daemon started` names the address; the default is {}); `reckon config check` lists every error",
                        config.display(),
                        crate::config::default_listen()
                    );
                    return Ok(ExitCode::FAILURE);
                };
                crate::errln!(
                    "note: {} has {} error(s) (first: {first}); a running daemon keeps the config it loaded last (see `config:` below); `reckon config check` lists every error",
                    config.display(),
                    errors.0.len()
                );
                (daemon.listen, Some(daemon.data_dir))
            }
        },
    };
    let url = format!("http://{addr}/status");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?;
        let mut request = client.get(&url);
        if let Ok(Some(t)) = &token {
            request = request.bearer_auth(t);
        }
        let resp = request.send().await?;
        let status = resp.status();
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .is_some_and(|v| is_reckon_challenge(v.as_bytes()));
        Ok::<_, reqwest::Error>((status, challenge, resp.text().await?))
    });
    let body = match answer {
        Ok((status, _, body)) if status.is_success() => body,
        failed => {
            let unauthorized =
                matches!(&failed, Ok((s, _, _)) if *s == reqwest::StatusCode::UNAUTHORIZED);
            // A 401 is a daemon asking for its token only with the
            // daemon's challenge (ops QA32a F2: any password-protected
            // service on the port was taken for this config's daemon),
            // and only this config's daemon when a daemon holds its
            // data_dir (another config's daemon on this `listen` wants its
            // own token); otherwise the advice for an address where this
            // config's daemon does not answer applies.
            let reckon_401 = unauthorized && matches!(&failed, Ok((_, true, _)));
            let daemon_401 = reckon_401 && data_dir.as_deref().is_none_or(maybe_daemon_holds);
            let why = match failed {
                Ok(_) if reckon_401 && !daemon_401 => format!(
                    "{url} answered HTTP 401 as a reckon daemon does when it wants its status token, but no `reckon run` holds this config's data_dir: the daemon answering at {addr} is another config's, and this config's daemon is not running there"
                ),
                Ok(_) if unauthorized && !reckon_401 => format!(
                    "{url} answered HTTP 401 without the reckon daemon's challenge (`WWW-Authenticate: Bearer realm=\"reckon\"`): something else answers on {addr} (a password-protected service); this config's daemon is not running there"
                ),
                Ok(_) if unauthorized => {
                    let here = match &token {
                        Ok(Some(_)) => format!(
                            "the `[daemon] status_token` of {} is not the one the daemon runs with (was the file changed without a SIGHUP?)",
                            config.display()
                        ),
                        Ok(None) => format!(
                            "{} sets no `[daemon] status_token`: run this with the config file the daemon runs with",
                            config.display()
                        ),
                        Err(e) => e.clone(),
                    };
                    format!("{url} answered HTTP 401, it needs the daemon's status token: {here}")
                }
                Ok((status, _, _)) => format!(
                    "{url} answered HTTP {status}: what listens at {addr} is not a reckon daemon"
                ),
                Err(e) => format!("no reckon daemon answered at {url}: {}", root_cause(&e)),
            };
            if let Some(dir) = &data_dir {
                if let Some(code) = through_socket(config, dir, args.json, &why)? {
                    return Ok(code);
                }
            }
            if daemon_401 {
                crate::errln!("error: {why}");
            } else {
                crate::errln!(
                    "error: {why}; {}",
                    where_else(config, data_dir.as_deref(), addr)
                );
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    // Read in both modes: `--json` printed any answer (QA30-C L8).
    let report: super::status::StatusReport = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            crate::errln!(
                "error: unexpected answer from {url} ({e}): what listens at {addr} is not a reckon daemon"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    // Another config's daemon answering on this one's `listen` is not this
    // config's daemon (QA30-C M1: a second instance that could not bind
    // read as up).
    if let (Some(mine), Some(theirs)) = (&data_dir, &report.data_dir) {
        let mine = super::status::absolute_dir(mine);
        if Path::new(theirs) != mine {
            let why = format!(
                "the reckon daemon answering at {addr} holds data_dir {theirs} (config {}), not {} of {}",
                report.config,
                mine.display(),
                config.display()
            );
            if let Some(code) = through_socket(config, &mine, args.json, &why)? {
                return Ok(code);
            }
            crate::errln!(
                "error: {why}: this config's daemon is not the one listening there; {}",
                where_else(config, Some(&mine), addr)
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if args.json {
        // As the text: a closed stdout (`| head`) is not a panic.
        crate::cli::write_stdout(&format!("{body}\n"))?;
    } else {
        crate::cli::write_stdout(&report.render())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a `WWW-Authenticate` value is the challenge of a reckon
/// daemon's 401 (`Bearer realm="reckon"`, [`super::require_status_token`]).
fn is_reckon_challenge(value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    value.split_once(' ').is_some_and(|(scheme, params)| {
        scheme.eq_ignore_ascii_case("bearer")
            && params.split(',').any(|p| p.trim() == "realm=\"reckon\"")
    })
}

/// Whether the process holding `data_dir` may be `reckon run`: it is, or
/// what holds it cannot be told (also when this user may not open its
/// lock file). False when no other process holds it, or a one-shot command
/// does (the daemon cannot start while it does).
fn maybe_daemon_holds(data_dir: &Path) -> bool {
    match crate::store::held_by_another_process(data_dir) {
        Err(crate::store::StoreError::Locked { pid, .. }) => {
            pid.and_then(crate::store::is_daemon_process) != Some(false)
        }
        _ => crate::store::lock_unreadable(data_dir),
    }
}

/// Asks the daemon holding `data_dir` through its command socket, when the
/// config's `listen` did not answer (edited after the daemon started: it
/// listens where it started). `None` when no daemon answers there either,
/// or this user may not use the socket (only the store's owner may).
fn through_socket(
    config: &Path,
    data_dir: &Path,
    json: bool,
    why: &str,
) -> anyhow::Result<Option<ExitCode>> {
    use anyhow::Context as _;
    let Some(stream) = crate::cli::remote::connect(data_dir) else {
        return Ok(None);
    };
    crate::errln!(
        "note: {why}; the daemon holding {} answers on its command socket",
        data_dir.display()
    );
    let mut argv = vec!["status".to_owned()];
    if json {
        argv.push("--json".to_owned());
    }
    let request = crate::cli::remote::Request {
        argv,
        cwd: std::env::current_dir().context("the working directory")?,
        config: std::path::absolute(config).context("the config file's path")?,
        version: Some(crate::VERSION.to_owned()),
    };
    let code = crate::cli::remote::exchange(
        stream,
        &request,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .context("asking the daemon through its command socket")?;
    Ok(Some(ExitCode::from(code)))
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
        Err(crate::store::StoreError::Locked { pid, command, .. }) => {
            let restarted = "it listens on the address its config had when it started (a `listen` change needs a restart; its log line `daemon started` names the address); give that address with `reckon status --addr HOST:PORT`";
            let holder = crate::store::holder(pid, command.as_deref());
            let shown = holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default();
            let dir = data_dir.display();
            // A one-shot command holds the store while it runs (QA29-A L5:
            // a `reckon sync` was taken for a daemon listening elsewhere).
            match pid.and_then(crate::store::is_daemon_process) {
                Some(true) => format!("{asked}, but the daemon{shown} holds its data_dir {dir}: {restarted}"),
                Some(false) => format!(
                    "{asked}, and a one-shot command{shown}, not the daemon, holds its data_dir {dir}; is `reckon run` running with this config? (It cannot start while the command holds the store.)"
                ),
                // No live reckon wrote the lock file: the README's backup
                // recipe (`flock reckon.lock`), not a daemon listening
                // elsewhere (QA35a L7).
                None if holder.is_none() => format!(
                    "{asked}, and no reckon daemon holds its data_dir {dir}: a process that is not reckon (a backup holding reckon.lock?) holds it; start `reckon run` once that ends"
                ),
                None => format!("{asked}, but a process{shown} holds its data_dir {dir}: if that is `reckon run`, {restarted}"),
            }
        }
        _ => format!(
            "{asked}; is `reckon run` running with this config? If the daemon was started with another `listen` address (the file was edited since), give that address with `reckon status --addr HOST:PORT`"
        ),
    }
}

/// The `[daemon]` section of the config file alone, checked as
/// [`crate::config::parse`] checks it (paths relative to the file), when
/// the rest of the file has errors. In a file that is not TOML at all, the
/// lines from its `[daemon]` header to the next header are read (a file
/// that never names `daemon` has the defaults). `None` when the section
/// itself cannot be read.
/// `[daemon] status_token` of the config file, read: `Ok(None)` when the
/// file sets none; `Err` says why there is no token to send (the file
/// cannot be read, its `[daemon]` or the token has an error, the secret
/// cannot be read), for a 401's message (security QA22 S2).
fn status_token(config: &Path) -> Result<Option<String>, String> {
    let file = config.display();
    let daemon = match crate::config::load(config) {
        Ok(c) => c.daemon,
        Err(_) if !config.is_file() => {
            return Err(format!("{file} cannot be read, so no token was sent"))
        }
        Err(_) => match daemon_section(config) {
            Some(d) if d.status_token.is_some() || !sets_status_token(config) => d,
            _ => {
                return Err(format!(
                    "the `[daemon]` of {file} has an error, so no token was sent (`reckon config check` names it)"
                ))
            }
        },
    };
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    super::read_status_token(&daemon, dir)
        .map_err(|e| format!("the `[daemon] status_token` of {file} cannot be used here: {e}"))
}

/// Whether the file's `[daemon]` has a `status_token` key (valid or not).
fn sets_status_token(config: &Path) -> bool {
    let Ok(text) = crate::config::read_text(config) else {
        return false;
    };
    let table = text
        .parse::<toml::Table>()
        .ok()
        .or_else(|| daemon_block(&text)?.parse::<toml::Table>().ok());
    table
        .as_ref()
        .and_then(|t| t.get("daemon"))
        .and_then(|d| d.get("status_token"))
        .is_some()
}

fn daemon_section(config: &Path) -> Option<crate::config::DaemonConfig> {
    let text = crate::config::read_text(config).ok()?;
    let table = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(_) => daemon_block(&text)?.parse::<toml::Table>().ok()?,
    };
    let mut only = toml::Table::new();
    if let Some(d) = table.get("daemon") {
        only.insert("daemon".into(), d.clone());
    }
    let text = toml::to_string(&only).ok()?;
    let file = config.display().to_string();
    if let Ok(c) = crate::config::parse(&text, &file) {
        return Some(c.daemon);
    }
    // Another `[daemon]` key is wrong (a timezone): `listen` and
    // `data_dir` alone still find the daemon (QA17 NEW-2), with its
    // `status_token` unless that is the wrong one.
    let only = |keys: &[&str]| {
        let mut picked = toml::Table::new();
        for key in keys {
            if let Some(v) = table.get("daemon").and_then(|d| d.get(*key)) {
                picked.insert((*key).into(), v.clone());
            }
        }
        let mut only = toml::Table::new();
        only.insert("daemon".into(), toml::Value::Table(picked));
        crate::config::parse(&toml::to_string(&only).ok()?, &file)
            .ok()
            .map(|c| c.daemon)
    };
    only(&["listen", "data_dir", "status_token"]).or_else(|| only(&["listen", "data_dir"]))
}

/// The `[daemon]` table's lines of a text that does not parse as TOML:
/// its header to the next header; empty when `daemon` is nowhere in it.
fn daemon_block(text: &str) -> Option<String> {
    let header = |l: &str| {
        let l = l.split('#').next().unwrap_or("").trim();
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
    };
    let mut lines = text.lines();
    if !lines.any(|l| header(l).as_deref() == Some("daemon")) {
        return (!text.contains("daemon")).then(String::new);
    }
    let body: Vec<&str> = lines.take_while(|l| header(l).is_none()).collect();
    Some(format!("[daemon]\n{}\n", body.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QA29-A L5: a one-shot command holding the store was described as
    /// possibly the daemon listening elsewhere. The holder here is this
    /// test process: a command that is not `reckon run`.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_one_shot_command_holding_the_store_is_named_not_taken_for_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let _held = crate::store::Store::open(&data_dir).unwrap();
        let addr: std::net::SocketAddr = "127.0.0.1:19187".parse().unwrap();
        let said = where_else(Path::new("reckon.toml"), Some(&data_dir), addr);
        let me = crate::store::process_command(std::process::id()).unwrap();
        assert!(!me.starts_with('/') && me.contains("reckon"), "{me}");
        assert!(
            said.contains(&format!(
                "and a one-shot command (pid {}, `{me}`), not the daemon, holds its data_dir",
                std::process::id()
            )) && !said.contains("reckon status --addr"),
            "{said}"
        );
        assert_eq!(crate::store::process_command(u32::MAX), None);
    }

    /// New-user QA16 N1: with an error anywhere in the file, `reckon status`
    /// failed with the file's errors, though the daemon ran on.
    #[test]
    fn the_daemon_section_is_read_from_a_file_with_errors_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("reckon.toml");
        let daemon = "[daemon]\nlisten = \"127.0.0.1:19187\"\ndata_dir = \"d\"\n";
        for rest in [
            // Errors the parser finds past TOML: a float, a bad cron.
            "[[connectors]]\nid = \"x\"\nplugin = \"example\"\nschedule = \"20 */6 * *\"\n",
            "[[programs]]\nid = \"p\"\npercent = 8.5\n",
            // Not TOML at all.
            "[[connectors]\nid = x\n",
        ] {
            std::fs::write(&config, format!("{daemon}\n{rest}")).unwrap();
            assert!(crate::config::load(&config).is_err(), "{rest}");
            let d = daemon_section(&config).unwrap_or_else(|| panic!("{rest}"));
            assert_eq!(d.listen.to_string(), "127.0.0.1:19187", "{rest}");
            assert_eq!(d.data_dir, dir.path().join("d"), "relative to the file");
        }
        // Broken TOML with no `[daemon]`: the defaults.
        std::fs::write(&config, "[[connectors]\n").unwrap();
        assert_eq!(
            daemon_section(&config).map(|d| d.listen),
            Some(crate::config::default_listen())
        );
        // Another `[daemon]` key wrong: `listen` still read (QA17 NEW-2).
        std::fs::write(
            &config,
            "[daemon]\nlisten = \"127.0.0.1:19188\"\ntimezone = \"Mars/Base\"\n",
        )
        .unwrap();
        assert_eq!(
            daemon_section(&config).map(|d| d.listen.to_string()),
            Some("127.0.0.1:19188".into())
        );
        // A `[daemon]` section with its own error, or a daemon key that
        // cannot be found in broken TOML: unknown.
        std::fs::write(&config, "[daemon]\nlisten = \"nowhere\"\n").unwrap();
        assert_eq!(daemon_section(&config), None);
        std::fs::write(&config, "daemon.listen = \"127.0.0.1:1\"\n[[connectors]\n").unwrap();
        assert_eq!(daemon_section(&config), None);
    }
}
