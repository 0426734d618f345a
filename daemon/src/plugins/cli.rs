//! `reckon plugins list|describe|check` and the hidden `reckon plugin-host`
//! (`--describe`: describe one library and exit).
//!
//! The plugin directory is `--plugin-dir`, else `[daemon] plugin_dir` of the
//! config file (through `crate::config`, relative to the file), else
//! `./plugins`.
use super::{loader, LoadError, Plugin};
use anyhow::Context;
use plugin_api::protocol::{AuthSpec, Manifest};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// `reckon plugins` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginsCommand {
    /// List plugins in the plugin directory: id, version, kind, streams, file.
    List {
        /// The plugin directory (default: `[daemon] plugin_dir` of the config).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
    /// Show a plugin's manifest and config schema.
    Describe {
        /// The plugin id, e.g. `example`.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The plugin directory (default: `[daemon] plugin_dir` of the config).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
    /// Run every loader check on one library and describe it; exit 1 with
    /// the reason if it is refused. With a config file, the file must be in
    /// its plugin directory and match every `sha256` pin of the connectors
    /// using it; without one, its own directory is the plugin directory.
    Check {
        /// The library file.
        path: PathBuf,
        /// The plugin directory (default: `[daemon] plugin_dir` of the
        /// config, else the file's own directory when there is no config).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
}

/// Arguments of the hidden `reckon plugin-host`.
#[derive(Debug, clap::Args)]
pub struct PluginHostArgs {
    /// The library to host.
    #[arg(long)]
    pub lib: std::path::PathBuf,
    /// Refuse the library unless its bytes have this SHA-256.
    #[arg(long)]
    pub sha256: Option<String>,
    /// Describe the library (one answer frame on stdout) and exit, instead
    /// of serving a session.
    #[arg(long)]
    pub describe: bool,
    /// The pid of the reckon process that started this one: if it is not
    /// the parent any more when the parent-death signal is set up, it died
    /// first, and this process exits at once.
    #[arg(long)]
    pub parent_pid: Option<u32>,
}

/// Describe in a `plugin-host --describe` child of this binary (the CLI is
/// always the `reckon` binary, whatever its file is named).
fn describe_options() -> super::DescribeOptions {
    super::DescribeOptions {
        host: std::env::current_exe()
            .map(super::DescribeHost::Child)
            .unwrap_or(super::DescribeHost::Thread),
        deadline: super::DESCRIBE_DEADLINE,
    }
}

/// The plugin directory: the flag, else the config's `[daemon] plugin_dir`
/// (relative to the config file), else `plugins`.
pub fn plugin_dir(config: &Path, flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = flag {
        return Ok(d);
    }
    if !config.exists() {
        return Ok(PathBuf::from("plugins"));
    }
    // The full config when it is valid; otherwise just its `[daemon]
    // plugin_dir` (a config with other errors should not hide the plugins).
    if let Ok(cfg) = crate::config::load(config) {
        return Ok(cfg.daemon.plugin_dir);
    }
    if let Ok(text) = crate::config::read_text(config) {
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{}: not valid TOML", config.display()))?;
        if let Some(v) = table.get("daemon").and_then(|d| d.get("plugin_dir")) {
            let s = v.as_str().with_context(|| {
                format!(
                    "{}: `[daemon] plugin_dir` must be a string",
                    config.display()
                )
            })?;
            let base = config.parent().unwrap_or(Path::new("."));
            return Ok(base.join(s));
        }
    }
    Ok(PathBuf::from("plugins"))
}

/// Runs a plugins subcommand.
pub fn run(config: &Path, cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginsCommand::List { plugin_dir: flag } => {
            // Loaded once, for the directory and the pins.
            let cfg = config
                .exists()
                .then(|| crate::config::load(config).ok())
                .flatten();
            let dir = match (flag, &cfg) {
                (Some(d), _) => d,
                (None, Some(cfg)) => cfg.daemon.plugin_dir.clone(),
                (None, None) => plugin_dir(config, None)?,
            };
            let found = super::discover_with(&dir, &describe_options());
            let mut text = render_list(&dir, &found);
            if let Some(cfg) = &cfg {
                text.push_str(&pin_warnings(config, cfg, &found));
            }
            crate::cli::write_stdout(&text)?;
            // The directory itself unreadable or refused (writable by
            // everyone) is a failure (a script must see it); a refused
            // library is listed and is not.
            let unreadable =
                std::fs::read_dir(&dir).is_err() || super::loader::check_plugin_dir(&dir).is_err();
            Ok(if unreadable {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        PluginsCommand::Describe {
            id,
            json,
            plugin_dir: flag,
        } => {
            let dir = plugin_dir(config, flag)?;
            let plugin = super::load_with(&dir, &id, None, &describe_options())?;
            // Several files with the id: say which one this is (QA16 N2).
            let others: Vec<String> = super::discover_with(&dir, &describe_options())
                .iter()
                .flatten()
                .filter(|p| p.manifest.id == id && p.path != plugin.path)
                .map(|p| {
                    format!(
                        "{} (version {}, build {}, sha256 {})",
                        p.path.file_name().unwrap_or_default().to_string_lossy(),
                        p.manifest.version,
                        p.build_commit(),
                        p.sha256
                    )
                })
                .collect();
            if !others.is_empty() {
                crate::errln!(
                    "note: this is {}, the file connectors without a `sha256` pin load; plugin `{id}` is also in {}",
                    plugin.path.file_name().unwrap_or_default().to_string_lossy(),
                    others.join(", ")
                );
            }
            for why in plugin.warnings() {
                crate::errln!("warning: {} is {why}", plugin.path.display());
            }
            if json {
                crate::cli::write_stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&describe_json(&plugin))?
                ))?;
            } else {
                crate::cli::write_stdout(&render_describe(&plugin))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Check {
            path,
            plugin_dir: flag,
        } => {
            // A config named on purpose (not the default `reckon.toml`)
            // must exist: a typo must not skip its directory and pins.
            if !config.exists() && config != Path::new("reckon.toml") {
                anyhow::bail!(
                    "config file {} does not exist; fix --config (or RECKON_CONFIG), or leave it out to check the file on its own",
                    config.display()
                );
            }
            let dir = match flag {
                Some(d) => d,
                None if config.exists() => plugin_dir(config, None)?,
                None => own_dir(&path).to_path_buf(),
            };
            let checked =
                check_in(&dir, &path).and_then(|plugin| Ok((check_pins(config, &plugin)?, plugin)));
            match checked {
                Ok((pins_note, plugin)) => {
                    // The exit status is the verdict: output nobody reads
                    // (a closed pipe) does not change it.
                    let warnings = plugin.warnings();
                    let passed = match warnings.len() {
                        0 => "every check passed",
                        1 => "it loads, with a warning",
                        _ => "it loads, with warnings",
                    };
                    let warning: String = warnings
                        .iter()
                        .map(|why| format!("warning: {} is {why}\n", path.display()))
                        .collect();
                    let warning = warning + pins_note.as_deref().unwrap_or_default();
                    let _ = crate::cli::write_stdout(&format!(
                        "ok: {} is plugin `{}` {} ({passed}; plugin directory {})\n{warning}\n{}",
                        path.display(),
                        plugin.manifest.id,
                        plugin.manifest.version,
                        dir.display(),
                        render_describe(&plugin)
                    ));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    let _ = crate::cli::write_stdout(&format!("refused: {e}\n"));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn own_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Every loader check on one file (its directory acts as the plugin directory).
pub fn check(path: &Path) -> Result<Arc<Plugin>, LoadError> {
    check_in(own_dir(path), path)
}

/// Every loader check on one file that must lie in plugin directory `dir`.
pub fn check_in(dir: &Path, path: &Path) -> Result<Arc<Plugin>, LoadError> {
    loader::load_file_with(dir, path, None, &describe_options())
}

/// The `sha256` pins of the config's connectors using this plugin: each
/// must match the file. No config: nothing to check; a config with errors:
/// a note that the pins were not checked (plugin-developer QA16 N6: "every
/// check passed" while the pin was `sha256:...`).
fn check_pins(config: &Path, plugin: &Plugin) -> Result<Option<String>, LoadError> {
    if !config.exists() {
        return Ok(None);
    }
    let cfg = match crate::config::load(config) {
        Ok(cfg) => cfg,
        Err(e) => {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default();
            return Ok(Some(format!(
                "note: the connectors' sha256 pins in {} were not checked: the config has errors (`reckon config check`; first: {first})\n",
                config.display()
            )));
        }
    };
    for c in cfg
        .connectors
        .iter()
        .filter(|c| c.plugin == plugin.manifest.id)
    {
        if let Some(pin) = c
            .sha256
            .as_deref()
            .filter(|p| !p.eq_ignore_ascii_case(&plugin.sha256))
        {
            return Err(LoadError::Refused {
                path: plugin.path.display().to_string(),
                reason: format!(
                    "sha256 mismatch: connector `{}` in {} pins {pin}, the file has {}",
                    c.id,
                    config.display(),
                    plugin.sha256
                ),
            });
        }
    }
    Ok(None)
}

/// A warning for each connector of the config whose `sha256` pin no
/// library of its plugin in the list has (dev QA13 F9: the list showed
/// the plugin as usual, and the connector then refused to load it).
fn pin_warnings(
    config: &Path,
    cfg: &crate::config::Config,
    found: &[Result<Arc<Plugin>, LoadError>],
) -> String {
    let mut out = String::new();
    for c in &cfg.connectors {
        let Some(pin) = c.sha256.as_deref() else {
            continue;
        };
        let libs: Vec<&Arc<Plugin>> = found
            .iter()
            .flatten()
            .filter(|p| p.manifest.id == c.plugin)
            .collect();
        if let Some(p) = libs.iter().find(|p| p.sha256.eq_ignore_ascii_case(pin)) {
            // Among several files of the id, say which one the pin picks
            // (plugin-developer QA16 N2: the list named the unpinned one).
            if libs.len() > 1 {
                out.push_str(&format!(
                    "note: connector `{}` loads {} (version {}), the file its sha256 pin names\n",
                    c.id,
                    p.path.file_name().unwrap_or_default().to_string_lossy(),
                    p.manifest.version
                ));
            }
            continue;
        }
        if libs.is_empty() {
            continue;
        }
        let files: Vec<String> = libs
            .iter()
            .map(|p| {
                let name = p.path.file_name().unwrap_or_default().to_string_lossy();
                format!("{name} has {}", p.sha256)
            })
            .collect();
        out.push_str(&format!(
            "warning: connector `{}` in {} pins sha256 {pin} for plugin `{}`, and no library listed has it ({}): the connector will not load. Update the pin (`sha256sum` the library) or install the pinned build\n",
            c.id,
            config.display(),
            c.plugin,
            files.join("; ")
        ));
    }
    out
}

fn kind_name(m: &Manifest) -> String {
    serde_json::to_value(m.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The `plugins list` table.
pub fn render_list(dir: &Path, found: &[Result<Arc<Plugin>, LoadError>]) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "VERSION".to_owned(),
        "BUILD".to_owned(),
        "KIND".to_owned(),
        "STREAMS".to_owned(),
        "FILE".to_owned(),
    ]];
    let mut refused = Vec::new();
    for r in found {
        match r {
            Ok(p) => rows.push([
                p.manifest.id.clone(),
                p.manifest.version.clone(),
                p.build_commit().to_owned(),
                kind_name(&p.manifest),
                p.manifest
                    .streams
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                p.path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ]),
            Err(e) => refused.push(e.to_string()),
        }
    }
    let mut out = String::new();
    if rows.len() == 1 && refused.is_empty() {
        out.push_str(&format!("no plugins in {}\n", dir.display()));
        return out;
    }
    // Only refusals (or an unreadable directory): no empty table.
    if rows.len() == 1 {
        rows.clear();
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for e in refused {
        out.push_str(&format!("refused: {e}\n"));
    }
    for p in found.iter().flatten() {
        for why in p.warnings() {
            let file = p.path.file_name().unwrap_or_default().to_string_lossy();
            out.push_str(&format!(
                "warning: plugin `{}` ({file}) is {why}\n",
                p.manifest.id
            ));
        }
    }
    // Several libraries with one id: `load_with` takes the conventional
    // file name, else the first by name; say which, so a new build that
    // sorts after an old one is not silently ignored.
    let mut by_id: std::collections::BTreeMap<&str, Vec<&Path>> = Default::default();
    for p in found.iter().flatten() {
        by_id
            .entry(p.manifest.id.as_str())
            .or_default()
            .push(&p.path);
    }
    for (id, paths) in by_id.into_iter().filter(|(_, p)| p.len() > 1) {
        let conventional = format!(
            "{}reckon_plugin_{id}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        let name = |p: &Path| {
            p.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let used = paths
            .iter()
            .find(|p| name(p) == conventional)
            .or(paths.first())
            .map(|p| name(p))
            .unwrap_or_default();
        let names: Vec<String> = paths.iter().map(|p| name(p)).collect();
        out.push_str(&format!(
            "warning: plugin `{id}` is in {} files ({}); connectors without a `sha256` pin load {used}. Remove the others, or pin one with the connector's `sha256`\n",
            names.len(),
            names.join(", ")
        ));
    }
    out
}

fn auth_text(a: &AuthSpec) -> String {
    match a {
        AuthSpec::Basic { username, password } => {
            format!("basic (settings `{username}`, `{password}`)")
        }
        AuthSpec::Bearer { token } => format!("bearer token (setting `{token}`)"),
        AuthSpec::Header { name, value } => format!("header `{name}` (setting `{value}`)"),
        AuthSpec::Query { name, value } => {
            format!("query parameter `{name}` (setting `{value}`)")
        }
        AuthSpec::Oauth2RefreshToken {
            token_url,
            client_id,
            client_secret,
            refresh_token,
        } => format!(
            "OAuth2 refresh token at {token_url} (settings `{client_id}`, `{client_secret}`, `{refresh_token}`)"
        ),
        AuthSpec::All { schemes } => schemes
            .iter()
            .map(auth_text)
            .collect::<Vec<_>>()
            .join(" + "),
    }
}

/// `plugins describe` as text.
pub fn render_describe(p: &Plugin) -> String {
    let m = &p.manifest;
    let mut o = String::new();
    o.push_str(&format!("{} ({}) {}\n", m.name, m.id, m.version));
    o.push_str(&format!("kind: {}\n", kind_name(m)));
    o.push_str(&format!("{}\n\n", m.description));
    o.push_str(&format!(
        "file: {}\nsha256: {}\nbuild: {}\npanic strategy: {}\n",
        p.path.display(),
        p.sha256,
        p.build
            .as_deref()
            .unwrap_or("none (built before plugin build stamps)"),
        if p.panic_unwind {
            "unwind (in-process allowed)"
        } else {
            "abort (subprocess only)"
        }
    ));
    o.push_str(&format!(
        "allowed hosts: {}\n",
        if m.allowed_hosts.is_empty() {
            "none".to_owned()
        } else {
            m.allowed_hosts.join(", ")
        }
    ));
    if let Some(u) = &m.default_base_url {
        o.push_str(&format!("default base URL: {u}\n"));
    }
    o.push_str(&format!(
        "auth: {}\n",
        m.auth
            .as_ref()
            .map(auth_text)
            .unwrap_or_else(|| "none".into())
    ));
    if let Some(d) = m.max_history_days {
        o.push_str(&format!("max history: {d} days\n"));
    }
    if let Some(d) = m.max_window_days {
        o.push_str(&format!("max window: {d} days\n"));
    }
    if let Some(f) = &m.file_capability {
        o.push_str(&format!(
            "reads files: directory from setting `{}`, suffixes {}\n",
            f.directory_setting,
            f.suffixes.join(", ")
        ));
    }
    o.push_str("\nstreams:\n");
    for s in &m.streams {
        o.push_str(&format!(
            "  {}: {} records, key [{}], cursor {}, lookback {} days\n",
            s.name,
            s.record.as_str(),
            s.primary_key.join(", "),
            s.cursor.as_deref().unwrap_or("-"),
            s.default_lookback_days
        ));
    }
    o.push_str("\nsettings:\n");
    let required: Vec<&str> = m
        .config_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = m.config_schema.get("properties").and_then(Value::as_object) {
        for (name, spec) in props {
            let ty = spec.get("type").and_then(Value::as_str).unwrap_or("any");
            let mut tags = vec![ty.to_owned()];
            if required.contains(&name.as_str()) {
                tags.push("required".into());
            }
            if spec.get("x-secret").and_then(Value::as_bool) == Some(true) {
                tags.push("secret".into());
            }
            if let Some(values) = spec.get("enum").and_then(Value::as_array) {
                let values: Vec<String> = values.iter().map(Value::to_string).collect();
                tags.push(format!("one of {}", values.join(", ")));
            }
            // The bounds `config check` enforces (QA28-B F5: only an
            // enum's values were listed).
            for (key, word) in [
                ("minimum", "at least"),
                ("exclusiveMinimum", "above"),
                ("maximum", "at most"),
                ("exclusiveMaximum", "below"),
                ("minLength", "at least characters:"),
                ("maxLength", "at most characters:"),
                ("pattern", "matching"),
            ] {
                if let Some(v) = spec.get(key) {
                    tags.push(match (word.strip_suffix(" characters:"), v) {
                        (Some(w), v) => format!("{w} {v} characters"),
                        (None, Value::String(p)) => format!("{word} `{p}`"),
                        (None, v) => format!("{word} {v}"),
                    });
                }
            }
            if let Some(d) = spec.get("default") {
                tags.push(format!("default {d}"));
            }
            let desc = spec
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            // No trailing colon for a setting without a description.
            let desc = if desc.is_empty() {
                String::new()
            } else {
                format!(": {desc}")
            };
            o.push_str(&format!("  {name} ({}){desc}\n", tags.join(", ")));
        }
    }
    o
}

/// `plugins describe --json`.
pub fn describe_json(p: &Plugin) -> Value {
    serde_json::json!({
        "file": p.path,
        "sha256": p.sha256,
        "panic_unwind": p.panic_unwind,
        "abi_minor": p.abi_minor,
        "build": p.build,
        "manifest": p.manifest,
    })
}

/// Hosts one plugin over stdio.
pub fn plugin_host(args: PluginHostArgs) -> anyhow::Result<ExitCode> {
    if let Err(e) = die_with_parent(args.parent_pid) {
        crate::errln!("reckon plugin-host: {e}");
        return Ok(ExitCode::from(2));
    }
    if let Some(why) = replaced_since_loaded(&args.lib, args.sha256.as_deref()) {
        crate::errln!("reckon plugin-host: {why}");
        return Ok(ExitCode::from(2));
    }
    let served = if args.describe {
        super::describe::serve(&args.lib, args.sha256.as_deref())
    } else {
        super::transport::serve_stdio(&args.lib, args.sha256.as_deref())
    };
    match served {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            crate::errln!("reckon plugin-host: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Why the library at `lib` is not the one reckon loaded (`loaded`: the
/// SHA-256 the parent hashed when it loaded it, which it always passes),
/// when a file was put in its place since: an upgrade that replaced the
/// libraries under a running daemon read as "sha256 mismatch: pinned …"
/// with no pin configured (QA33-A L2). `None` when it is the same or no
/// hash was given; see [`super::loader::replaced_since_loaded`].
fn replaced_since_loaded(lib: &std::path::Path, loaded: Option<&str>) -> Option<String> {
    super::loader::replaced_since_loaded(lib, loaded?)
}

/// Makes this `plugin-host` child die with the reckon process that started
/// it (`parent`), even when the plugin is busy in a step and never reads
/// its stdin again (its EOF is how a child otherwise learns that reckon is
/// gone): after a `kill -9` or an OOM kill of the daemon an orphan would
/// spin on, as the daemon enforced the step deadline. On Linux the kernel
/// sends SIGKILL when the parent thread ends (`PR_SET_PDEATHSIG`); the
/// threads that start children (the async runtime's workers, a thread
/// waiting for a describe child) outlive them. A parent that died before
/// the call is caught by comparing the parent pid with `parent`.
fn die_with_parent(parent: Option<u32>) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
        if let Some(parent) = parent {
            let now = std::os::unix::process::parent_id();
            if now != parent {
                return Err(format!(
                    "the reckon process that started this one (pid {parent}) has ended; exiting"
                ));
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(id: &str, fingerprint: u32) -> Arc<Plugin> {
        Arc::new(crate::test_support::plugin(id, fingerprint))
    }

    /// QA33-A L2: a library replaced under a running daemon is named as
    /// replaced (not "pinned"); the same file, or no hash, passes.
    #[test]
    fn a_library_replaced_since_it_was_loaded_is_named_as_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libreckon_plugin_x.so");
        std::fs::write(&lib, b"old build").unwrap();
        let loaded = crate::plugins::loader::sha256_hex(b"old build");
        assert_eq!(replaced_since_loaded(&lib, Some(&loaded)), None);
        assert_eq!(replaced_since_loaded(&lib, None), None);
        std::fs::write(&lib, b"new build").unwrap();
        let why = replaced_since_loaded(&lib, Some(&loaded.to_uppercase())).unwrap();
        assert!(
            why.ends_with(&format!(
                "was replaced since reckon loaded it (loaded sha256 {}, the file now has {}); restart reckon, or reload it (SIGHUP), to load the new file",
                loaded.to_uppercase(),
                crate::plugins::loader::sha256_hex(b"new build")
            )),
            "{why}"
        );
    }

    /// `plugins describe` names how far back the platform serves data
    /// (QA44c C-M1: what a scheduled re-pull is cut to), when it says.
    #[test]
    fn describe_names_the_platforms_history_limit() {
        let mut p = crate::test_support::plugin("everflow", plugin_api::abi::PROTOCOL_FINGERPRINT);
        assert!(!render_describe(&p).contains("max history"));
        p.manifest.max_history_days = Some(365);
        assert!(render_describe(&p).contains("\nmax history: 365 days\n"));
    }

    /// Upgrade QA F2: a plugin from before the protocol fingerprint loads,
    /// and `plugins list` says to replace it.
    #[test]
    fn list_flags_a_plugin_built_before_the_protocol_fingerprint() {
        let current = plugin("impact", plugin_api::abi::PROTOCOL_FINGERPRINT);
        let old = plugin("cake", 0);
        assert_eq!(current.outdated(), None);
        let text = render_list(Path::new("plugins"), &[Ok(current), Ok(old)]);
        let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warning:")).collect();
        assert_eq!(
            warnings,
            [format!(
                "warning: plugin `cake` (libreckon_plugin_cake.so) is {}",
                crate::plugins::OUTDATED_PLUGIN
            )],
            "{text}"
        );
        assert!(text.contains("older plugin-api (no protocol fingerprint); rebuild it or replace it with this release's .so"));
    }

    /// QA44b B-H1: the list shows each library's build; a bundled plugin's
    /// from another commit is warned about, an out-of-tree plugin's never.
    #[test]
    fn list_shows_builds_and_flags_a_bundled_plugin_from_another_build() {
        let stamped = |id: &str, build: &str| {
            let mut p = crate::test_support::plugin(id, plugin_api::abi::PROTOCOL_FINGERPRINT);
            p.build = Some(build.to_owned());
            Arc::new(p)
        };
        let ours = crate::plugins::THIS_BUILD;
        let old = "4e1a6e0 2026-04-20 08:00 UTC";
        let found = [
            Ok(stamped("impact", ours)),
            Ok(stamped("cake", old)),
            Ok(stamped("acme_network", old)),
        ];
        let text = render_list(Path::new("plugins"), &found);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| !l.starts_with("warning:"))
            .map(|l| l.split_whitespace().take(3).collect())
            .collect();
        let our_commit = ours.split(' ').next().unwrap_or_default();
        let our_commit = if ours == crate::plugins::UNKNOWN_BUILD {
            "unknown"
        } else {
            our_commit
        };
        assert_eq!(
            rows,
            [
                vec!["ID", "VERSION", "BUILD"],
                vec!["impact", "1", our_commit],
                vec!["cake", "1", "4e1a6e0"],
                vec!["acme_network", "1", "4e1a6e0"],
            ],
            "{text}"
        );
        let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warning:")).collect();
        if ours == crate::plugins::UNKNOWN_BUILD {
            assert_eq!(warnings, Vec::<&str>::new(), "{text}");
        } else {
            assert_eq!(warnings.len(), 1, "{text}");
            assert!(
                warnings[0].starts_with(&format!(
                    "warning: plugin `cake` (libreckon_plugin_cake.so) is built from commit `{old}`, and this reckon from `{ours}`"
                )),
                "{text}"
            );
        }
    }
}
