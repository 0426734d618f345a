//! Resolution of connectors against their plugins: settings validated against
//! the plugin's config schema, secret references resolved into the HTTP
//! policy (and removed from the settings the plugin sees), the lookback
//! default taken from the manifest.
//!
//! Plugin loading and secret reading are passed in, so tests resolve configs
//! without files, environment or libraries.

use super::{schema, Config, ConfigError, ConnectorConfig, DaemonConfig};
use crate::plugins::{HttpPolicy, LoadError, Plugin, Secret};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest response body the host accepts by default (bytes).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Retries of idempotent requests by default.
pub const DEFAULT_MAX_RETRIES: u32 = 5;

/// Where a secret value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:NAME`: an environment variable.
    Env(String),
    /// `file:PATH`: a file's contents (trailing newline removed); relative
    /// paths are relative to the config file.
    File(PathBuf),
}

impl SecretRef {
    /// Parses `{ secret = "env:NAME" }` / `{ secret = "file:PATH" }`.
    pub fn from_toml(v: &toml::Value) -> Result<SecretRef, String> {
        let t = v
            .as_table()
            .ok_or("expected a secret reference `{ secret = \"env:NAME\" }`")?;
        if t.is_empty() {
            return Err(
                "the secret reference is empty: write `{ secret = \"env:NAME\" }` or `{ secret = \"file:PATH\" }`"
                    .into(),
            );
        }
        if t.len() != 1 {
            let extra: Vec<&str> = t
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "secret")
                .collect();
            return Err(format!(
                "a secret reference has only the key `secret`; remove {}",
                extra
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !t.contains_key("secret") {
            let keys: Vec<String> = t.keys().map(|k| format!("`{k}`")).collect();
            return Err(format!(
                "a secret reference needs the key `secret` (`{{ secret = \"env:NAME\" }}` or `{{ secret = \"file:PATH\" }}`), not {}",
                keys.join(", ")
            ));
        }
        let s = t
            .get("secret")
            .and_then(toml::Value::as_str)
            .ok_or("`secret` must be a string: `env:NAME` or `file:PATH`")?;
        if let Some(name) = s.strip_prefix("env:") {
            if name.is_empty() {
                return Err("`env:` needs a variable name, e.g. `env:EXAMPLE_API_KEY`".into());
            }
            // Not echoed: a credential pasted after `env:` would be printed
            // as the variable's name (QA12 N3).
            let first_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            if !first_ok || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`env:` must be followed by a variable name (letters, digits and `_`, not starting with a digit); the text after it ({} characters) is not shown, as it may be a credential: write `{{ secret = \"env:NAME\" }}` and put the credential in that variable",
                    name.chars().count()
                ));
            }
            Ok(SecretRef::Env(name.to_owned()))
        } else if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err("`file:` needs a path, e.g. `file:/run/secrets/api_key`".into());
            }
            Ok(SecretRef::File(path.into()))
        } else {
            Err(unknown_reference(s))
        }
    }

    /// Where the value comes from, for messages: `environment variable
    /// `NAME`` or `file PATH` (never the value).
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("environment variable `{name}`"),
            SecretRef::File(p) => format!("file {}", p.display()),
        }
    }

    /// Whether a TOML value is written as a secret reference.
    pub fn is_ref(v: &toml::Value) -> bool {
        v.as_table().is_some_and(|t| t.contains_key("secret"))
    }
}

/// The error for a `secret` that is neither `env:` nor `file:`, without its
/// value: a credential pasted in by mistake (`{ secret = "sk_live_…" }`)
/// would otherwise land on the terminal, and on SIGHUP in the daemon log.
/// It gives the value's length, and `did you mean` when the part before a
/// `:` is a near miss of `env` or `file` (`ENV:`, `evn:`, `fil:`); the
/// hint names only the expected scheme, never the part typed.
fn unknown_reference(s: &str) -> String {
    let hint = s
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
        .and_then(|scheme| {
            ["env", "file"]
                .into_iter()
                .find(|want| super::source::edit_distance(&scheme, want) <= 2)
        })
        .map(|want| format!(" Did you mean `{want}:`?"))
        .unwrap_or_default();
    format!(
        "the secret reference must start with `env:` or `file:` (its value, {} characters, \
         is not shown: it may be a credential).{hint} Write `{{ secret = \"env:NAME\" }}` or \
         `{{ secret = \"file:PATH\" }}` and put the credential in that variable or file",
        s.chars().count()
    )
}

/// Reads a secret: `Err` says why it could not be read.
pub type SecretReader<'a> = &'a dyn Fn(&SecretRef) -> Result<String, String>;

/// Reads secrets from the process environment and files (relative to
/// `base`). Each value read is remembered for masking
/// ([`crate::plugins::http::remember_secret`]): a connector's errors and
/// logs mask every secret the daemon holds, not only the connector's own.
pub fn os_secret_reader(base: PathBuf) -> impl Fn(&SecretRef) -> Result<String, String> {
    move |r| read_os_secret(&base, r).inspect(|v| crate::plugins::http::remember_secret(v))
}

/// What a missing `env:` secret's error says to do; a SIGHUP reload says
/// [`ENV_NOT_SET_ON_RELOAD`] instead.
pub const ENV_NOT_SET_FIX: &str = "export it before starting reckon (`sudo -u` and `su` start \
     with a clean environment: see README, Installing, Secrets, to run a command with the \
     service's variables)";

/// [`ENV_NOT_SET_FIX`] for a SIGHUP reload: the running daemon's
/// environment is the one it started with, so exporting the variable in a
/// shell (where `config check` found it) changes nothing (ops QA13 OPS-4).
pub const ENV_NOT_SET_ON_RELOAD: &str = "the running daemon's environment does not have it (a process's environment is fixed when it starts, so a SIGHUP cannot add a variable, and `reckon config check` in your shell sees your environment, not the daemon's): set it where the daemon is started (systemd: the unit's `EnvironmentFile=`) and restart the daemon (`systemctl restart reckon`), or use a `file:` secret, which a SIGHUP reads";

/// The largest `file:` secret read (a key file, a service account's JSON
/// are a few KiB): a larger file is not a secret (`/dev/zero`, a log).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

fn read_os_secret(base: &Path, r: &SecretRef) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match r {
        SecretRef::Env(name) => std::env::var(name)
            .map_err(|_| format!("environment variable `{name}` is not set; {ENV_NOT_SET_FIX}")),
        SecretRef::File(p) => {
            let path = if p.is_relative() {
                base.join(p)
            } else {
                p.clone()
            };
            let cannot =
                |e: std::io::Error| format!("cannot read secret file {}: {e}", path.display());
            // Opened without blocking: a FIFO would wait for a writer (a
            // SIGHUP stuck there ignored every later one; security QA22
            // S5). Reads of a regular file are not affected.
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&path)
                .map_err(cannot)?;
            // Its kind first: a directory's mode is no secret's (QA20
            // R20-9: a WARN about mode 0755 came before "Is a directory").
            let kind = file.metadata().map_err(cannot)?.file_type();
            if kind.is_dir() {
                return Err(format!(
                    "secret file {} is a directory; name the file that holds the secret",
                    path.display()
                ));
            }
            if !kind.is_file() {
                return Err(format!(
                    "secret file {} is not a regular file (a device, pipe or socket); put the secret in a file",
                    path.display()
                ));
            }
            warn_if_exposed(&path, &file);
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(&file, MAX_SECRET_FILE_BYTES + 1),
                &mut s,
            )
            .map_err(cannot)?;
            if s.len() as u64 > MAX_SECRET_FILE_BYTES {
                return Err(format!(
                    "secret file {} is larger than {} KiB: not a secret (is it the right file?)",
                    path.display(),
                    MAX_SECRET_FILE_BYTES / 1024
                ));
            }
            Ok(s.trim_end_matches(['\n', '\r']).to_owned())
        }
    }
}

/// The first control character of `secret` as an error names it: what it
/// is (for a line break, how many lines the value has), never any of the
/// value.
pub(crate) fn control_named(secret: &str) -> String {
    match secret.chars().find(|c| c.is_control()) {
        Some('\n' | '\r') => format!(
            "a line break (it has {} lines)",
            secret.lines().count().max(2)
        ),
        Some('\t') => "a tab".to_owned(),
        Some(c) => format!("the control character U+{:04X}", u32::from(c)),
        None => "no control character".to_owned(),
    }
}

/// Logs a WARN, once per file, reason and process, for each way a `file:`
/// secret is exposed: readable by every user on the host (QA10 L1; what
/// ssh refuses for a private key); or open to being replaced, so whoever
/// can replace it chooses the credential (QA46 S-M1: a postback's HMAC key
/// in a world-writable directory, swapped by another local user, let them
/// sign conversions after the next SIGHUP): writable by every user or its
/// group (not a user private group, named as its owner), owned by a user other than root or this process's, or reached
/// through a directory ([`traversed_dirs`]: symlinks and `..` resolved as
/// the kernel does, each symlink's own directory included) that every user
/// or its group may write to without a sticky bit, or that such a user
/// owns, or through a symlink such a user owns. The plugin loader's rules
/// (`plugins::loader::check_plugin_dir`), as warnings: the value is still
/// used.
fn warn_if_exposed(path: &Path, file: &std::fs::File) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    static WARNED: std::sync::Mutex<std::collections::BTreeSet<(PathBuf, &'static str)>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let Ok(meta) = file.metadata() else {
        return;
    };
    let warn_once = |kind: &'static str, mode: u32, message: String| {
        let first = WARNED
            .lock()
            .map(|mut w| w.insert((path.to_path_buf(), kind)))
            .unwrap_or(true);
        if first {
            let mode = format!("{:04o}", mode & 0o7777);
            tracing::warn!(file = %path.display(), %mode, "{message}");
        }
    };
    let mode = meta.permissions().mode();
    let shown = path.display();
    let me = rustix::process::geteuid().as_raw();
    let foreign = |uid: u32| uid != 0 && uid != me;
    let user = |uid: u32| super::dirs::user_name(uid).unwrap_or_else(|| format!("uid {uid}"));
    let group = |gid: u32| super::dirs::group_name(gid).unwrap_or_else(|| format!("gid {gid}"));
    // A group named as its owner is that user's own (user private groups,
    // where a umask of 002 makes files group-writable): no other writer.
    let shared_group = |uid: u32, gid: u32| {
        let own =
            super::dirs::user_name(uid).is_some_and(|u| super::dirs::group_name(gid) == Some(u));
        !own
    };
    if mode & 0o004 != 0 {
        warn_once(
            "readable",
            mode,
            format!(
                "secret file {shown} is readable by every user on this host (mode {:04o}): `chmod 0640` it (group of the reckon user) or `chmod 0600`",
                mode & 0o7777
            ),
        );
    }
    let writers = if mode & 0o002 != 0 {
        Some("every user on this host".to_owned())
    } else if mode & 0o020 != 0 && shared_group(meta.uid(), meta.gid()) {
        Some(format!("every member of its group {}", group(meta.gid())))
    } else {
        None
    };
    if let Some(writers) = writers {
        warn_once(
            "writable",
            mode,
            format!(
                "secret file {shown} is writable by {writers} (mode {:04o}): they could put a credential of their choosing there, which the next start or SIGHUP uses; `chmod go-w` it",
                mode & 0o7777
            ),
        );
    }
    if foreign(meta.uid()) {
        warn_once(
            "owner",
            mode,
            format!(
                "secret file {shown} belongs to {}, neither root nor the user this process runs as ({}): that user can change the credential Reckon uses; check its content (or write it again), then make root its owner, readable by Reckon's group (`chown root:reckon {shown} && chmod 0640 {shown}`)",
                user(meta.uid()),
                user(me)
            ),
        );
    }
    for (d, link) in traversed_dirs(path) {
        let Ok(dm) = std::fs::metadata(&d) else {
            continue;
        };
        let dmode = dm.permissions().mode();
        let sticky = dmode & 0o1000 != 0;
        let why = if dmode & 0o002 != 0 && !sticky {
            format!(
                "every user may write to without a sticky bit (mode {:04o}): anyone could replace the file with a credential of their choosing; move the secret to a directory only root can write (e.g. /etc/reckon), or `chmod o-w {}`",
                dmode & 0o7777,
                d.display()
            )
        } else if dmode & 0o020 != 0 && !sticky && shared_group(dm.uid(), dm.gid()) {
            format!(
                "every member of its group {} may write to (mode {:04o}): they could replace the file with a credential of their choosing; `chmod g-w {}` unless that group is only Reckon's",
                group(dm.gid()),
                dmode & 0o7777,
                d.display()
            )
        } else if foreign(dm.uid()) {
            format!(
                "belongs to {}, neither root nor the user this process runs as ({}): that user could replace the file; keep secrets in a directory root owns (e.g. /etc/reckon)",
                user(dm.uid()),
                user(me)
            )
        } else if let Some(owner) = link.filter(|uid| foreign(*uid)) {
            format!(
                "holds a symlink on its path that belongs to {}: that user could point it elsewhere; name the file itself, or a link root owns",
                user(owner)
            )
        } else {
            continue;
        };
        warn_once(
            "directory",
            dmode,
            format!(
                "secret file {shown} is reached through {}, which {why}",
                d.display()
            ),
        );
        break;
    }
}

/// The directories whose entries decide what `path` opens, in order: each
/// directory an entry of the path is looked up in, with `..` and symlinks
/// resolved as the kernel does (the directory a symlink stands in
/// included, with the uid of the symlink, which its owner may change). A
/// relative path starts at the working directory. At most 40 symlinks are
/// followed (the kernel's limit).
fn traversed_dirs(path: &Path) -> Vec<(PathBuf, Option<u32>)> {
    use std::os::unix::fs::MetadataExt;
    fn walk(cur: &mut PathBuf, rest: &Path, out: &mut Vec<(PathBuf, Option<u32>)>, hops: &mut u32) {
        for part in rest.components() {
            match part {
                std::path::Component::RootDir => *cur = PathBuf::from("/"),
                std::path::Component::ParentDir => {
                    cur.pop();
                }
                std::path::Component::Normal(name) => {
                    let next = cur.join(name);
                    match std::fs::symlink_metadata(&next) {
                        Ok(m) if m.file_type().is_symlink() && *hops < 40 => {
                            out.push((cur.clone(), Some(m.uid())));
                            *hops += 1;
                            let Ok(target) = std::fs::read_link(&next) else {
                                return;
                            };
                            walk(cur, &target, out, hops);
                        }
                        _ => {
                            out.push((cur.clone(), None));
                            *cur = next;
                        }
                    }
                }
                std::path::Component::CurDir | std::path::Component::Prefix(_) => {}
            }
        }
    }
    let mut cur = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
    };
    let mut out = Vec::new();
    if !path.is_absolute() {
        // The working directory's own ancestors, from the root.
        let cwd = std::mem::replace(&mut cur, PathBuf::from("/"));
        walk(&mut cur, &cwd, &mut out, &mut 0);
    }
    walk(&mut cur, path, &mut out, &mut 0);
    out
}

/// Why a `base_url` with a query or fragment is refused; the value is not
/// shown (a query often holds a key).
const BASE_URL_QUERY: &str = "must not carry a query (`?...`) or fragment (`#...`): the plugin adds its own paths and parameters to it (the URL would break), and a key in it would be shown in every error; give the URL up to its path (e.g. `https://api.example.net/v1`) and put keys in the plugin's secret settings, as references such as { secret = \"env:NAME\" }";

/// Loads a plugin by id: `(plugin_dir, id, sha256) -> plugin`.
pub type PluginLoader<'a> = &'a dyn Fn(&Path, &str, Option<&str>) -> Result<Arc<Plugin>, LoadError>;

/// A connector ready to run.
#[derive(Debug, Clone)]
pub struct ResolvedConnector {
    /// The connector's config.
    pub config: ConnectorConfig,
    /// Its plugin.
    pub plugin: Arc<Plugin>,
    /// Timezone of schedule and window days.
    pub timezone: chrono_tz::Tz,
    /// Days re-pulled before the last checkpoint.
    pub lookback_days: u32,
    /// Longest window one session covers (config `window_days`, else the
    /// manifest's `max_window_days`; `None`: the whole run in one window).
    pub window_days: Option<u32>,
    /// Settings the plugin sees (secrets removed), as JSON.
    pub settings: Value,
    /// Base URL requests go to.
    pub base_url: String,
    /// HTTP policy (allowed hosts, timeouts, rate limit, secrets).
    pub policy: HttpPolicy,
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Resolves one connector (index `i` in the file, for error paths): every
/// error of its plugin, settings and secrets. Its file-drop directory is
/// checked by [`resolve_connector_checked`] (or [`check_file_directories`]).
pub fn resolve_connector(
    cfg: &Config,
    i: usize,
    load: PluginLoader<'_>,
    read_secret: SecretReader<'_>,
) -> Result<ResolvedConnector, Vec<ConfigError>> {
    let (connector, errors) = resolve_loaded(cfg, i, load, read_secret)?;
    if errors.is_empty() {
        Ok(connector)
    } else {
        Err(errors)
    }
}

/// [`resolve_connector`], and its file-drop directory checked, so that one
/// run reports both (`reckon sync`).
pub fn resolve_connector_checked(
    cfg: &Config,
    i: usize,
    load: PluginLoader<'_>,
    read_secret: SecretReader<'_>,
) -> Result<ResolvedConnector, Vec<ConfigError>> {
    let (connector, mut errors) = resolve_loaded(cfg, i, load, read_secret)?;
    errors.extend(check_file_directories(
        cfg,
        std::slice::from_ref(&connector),
    ));
    if errors.is_empty() {
        Ok(connector)
    } else {
        Err(errors)
    }
}

/// Resolves one connector as far as it goes. `Err`: its plugin did not
/// load, so nothing else about it can be checked. `Ok((connector, errors))`:
/// the plugin loaded, and `errors` are every problem of its settings and
/// secrets; when there are any, `connector` is only good for the checks
/// that need its plugin's manifest (its kind, its file-drop directory),
/// never to run.
fn resolve_loaded(
    cfg: &Config,
    i: usize,
    load: PluginLoader<'_>,
    read_secret: SecretReader<'_>,
) -> Result<(ResolvedConnector, Vec<ConfigError>), Vec<ConfigError>> {
    let map = &cfg.source;
    let c = &cfg.connectors[i];
    let daemon: &DaemonConfig = &cfg.daemon;
    let p = |k: &str| format!("connectors[{i}].{k}");
    let mut errors = Vec::new();

    let plugin = match load(&daemon.plugin_dir, &c.plugin, c.sha256.as_deref()) {
        Ok(pl) => pl,
        Err(LoadError::Refused { path, reason }) => {
            let dir = daemon.plugin_dir.display().to_string();
            let at = if path == dir {
                String::new()
            } else {
                format!(" ({path})")
            };
            return Err(vec![map.error(
                &p("plugin"),
                format!(
                    "plugin `{}` could not be loaded from plugin_dir {dir}: {reason}{at}; see `reckon plugins list`",
                    c.plugin
                ),
            )]);
        }
    };
    let manifest = &plugin.manifest;
    let schema_v = &manifest.config_schema;
    if c.isolation == crate::plugins::Isolation::InProcess && !plugin.panic_unwind {
        errors.push(map.error(
            &p("isolation"),
            format!(
                "plugin `{}` was built with panic = \"abort\", so a panic would kill the daemon: it cannot run in-process; use isolation = \"subprocess\" (the default) or rebuild it with panic = \"unwind\"",
                c.plugin
            ),
        ));
    }

    if let (Some(days), Some(max)) = (c.window_days, manifest.max_window_days) {
        if days > max {
            errors.push(map.error(
                &p("window_days"),
                format!(
                    "{days} days is more than plugin `{}` allows in one window ({max}); write at most {max}",
                    c.plugin
                ),
            ));
        }
    }

    // Split settings: secrets out, literals validated by the schema.
    let mut plain = serde_json::Map::new();
    let mut secrets = BTreeMap::new();
    let mut base_url: Option<String> = None;
    // `base_url` given but refused above: `required` is satisfied (QA6 F9:
    // a bad value also read "missing required setting `base_url`").
    let mut base_url_refused = false;
    let mut for_schema_secrets: Vec<String> = Vec::new();
    for (k, v) in &c.settings {
        let path = p(&format!("settings.{k}"));
        let secret_field = schema::is_secret(schema_v, k);
        if k == "base_url" {
            match v.as_str().map(url::Url::parse) {
                // Credentials belong in secret references: a URL's user
                // and password would be written to cassettes as they are.
                Some(Ok(u)) if !u.username().is_empty() || u.password().is_some() => {
                    base_url_refused = true;
                    errors.push(map.error(
                        &path,
                        "must not carry a user or password (`https://user:pass@...`); put credentials in the plugin's secret settings, as references such as { secret = \"env:NAME\" }",
                    ))
                }
                // The plugin appends its paths to it, so a query or a
                // fragment breaks every URL, and a key in it is written to
                // every error (QA31-C F8). Not echoed: it may be a key.
                Some(Ok(u))
                    if matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && (u.query().is_some() || u.fragment().is_some()) =>
                {
                    base_url_refused = true;
                    errors.push(map.error(&path, BASE_URL_QUERY));
                }
                Some(Ok(u)) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                    base_url = Some(
                        v.as_str()
                            .unwrap_or_default()
                            .trim_end_matches('/')
                            .to_owned(),
                    );
                    // The schema may declare it too; the plugin sees it either way.
                    plain.insert(k.clone(), toml_to_json(v));
                }
                other => {
                    base_url_refused = true;
                    let why = match other {
                        None => format!("is {}, not a string", toml_type_name(v)),
                        Some(Err(e)) => {
                            format!("{:?} is not a URL ({e})", v.as_str().unwrap_or_default())
                        }
                        Some(Ok(u)) if !matches!(u.scheme(), "http" | "https") => format!(
                            "{:?} has the scheme `{}`; only http and https are used",
                            v.as_str().unwrap_or_default(),
                            u.scheme()
                        ),
                        Some(Ok(_)) => format!("{:?} has no host", v.as_str().unwrap_or_default()),
                    };
                    errors.push(map.error(
                        &path,
                        format!(
                            "invalid base URL: {why}; expected an absolute http(s) URL such as `https://api.example.net`"
                        ),
                    ))
                }
            }
            continue;
        }
        if secret_field {
            // Present (even if wrong): `required` is satisfied either way.
            for_schema_secrets.push(k.clone());
        }
        if SecretRef::is_ref(v) {
            let names = schema::property_names(schema_v);
            if !names.iter().any(|n| n == k) {
                // A misspelled secret setting is an unknown setting, as a
                // misspelled plain one is ("give its value directly" would
                // invite a credential in the file).
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                errors.push(map.error(
                    &path,
                    format!(
                        "{} (plugin `{}` config schema)",
                        schema::unknown_setting(k, &names),
                        c.plugin
                    ),
                ));
                continue;
            }
            if !secret_field {
                errors.push(map.error(
                    &path,
                    format!(
                        "`{k}` is not a secret setting of plugin `{}`; give its value directly",
                        c.plugin
                    ),
                ));
                continue;
            }
            match SecretRef::from_toml(v).and_then(|r| read_secret(&r).map(|val| (r, val))) {
                Ok((r, val)) if val.trim().is_empty() => errors.push(map.error(
                    &path,
                    format!(
                        "secret of connector `{}` setting `{k}` is empty ({}); \
                         put the credential there, an empty one is never sent",
                        c.id,
                        r.describe()
                    ),
                )),
                // Sent in headers and URLs, which cannot carry it: every
                // request failed with "failed to parse header value" (QA31-C
                // F10: an `.env`-style file of two lines). Not shown.
                Ok((r, val)) if val.chars().any(char::is_control) => errors.push(map.error(
                    &path,
                    format!(
                        "secret of connector `{}` setting `{k}` holds {} ({}; the value is not shown); \
                         a secret is sent in HTTP headers or URLs, which cannot carry it: \
                         put the credential alone in it, on one line (a `file:` secret's \
                         trailing newline is removed), not several `NAME=value` lines",
                        c.id,
                        control_named(&val),
                        r.describe()
                    ),
                )),
                Ok((_, val)) => {
                    secrets.insert(k.clone(), Secret(val));
                }
                Err(m) => errors.push(map.error(
                    &path,
                    format!(
                        "secret of connector `{}` setting `{k}` not resolvable: {m}",
                        c.id
                    ),
                )),
            }
        } else if secret_field {
            errors.push(map.error(
                &path,
                format!(
                    "`{k}` is a secret: write `{k} = {{ secret = \"env:NAME\" }}` or `{{ secret = \"file:PATH\" }}`, never the value itself"
                ),
            ));
        } else {
            plain.insert(k.clone(), toml_to_json(v));
        }
    }
    // Validate: secrets count as present strings for `required`.
    let mut for_schema = plain.clone();
    for k in &for_schema_secrets {
        for_schema.insert(k.clone(), Value::String("<secret>".into()));
    }
    let declares_base_url = schema::property_names(schema_v)
        .iter()
        .any(|n| n == "base_url");
    if !declares_base_url {
        for_schema.remove("base_url");
    }
    let mut violations = Vec::new();
    schema::validate(schema_v, &Value::Object(for_schema), "", &mut violations);
    for v in violations {
        if base_url_refused
            && v.path.is_empty()
            && v.message.starts_with("missing required setting `base_url`")
        {
            // Present but invalid: said above, with why.
            continue;
        }
        let path = if v.path.is_empty() {
            p("settings")
        } else {
            p(&format!("settings.{}", v.path))
        };
        let msg = format!("{} (plugin `{}` config schema)", v.message, c.plugin);
        errors.push(map.error(&path, msg));
    }

    // A file-drop connector's directory is relative to the config file (like
    // `data_dir` and `file:` secrets); whether it exists is checked by
    // [`check_file_directories`].
    if let Some(cap) = &manifest.file_capability {
        let key = &cap.directory_setting;
        if let Some(Value::String(d)) = plain.get(key).cloned() {
            if d.trim().is_empty() {
                errors.push(map.error(
                    &p(&format!("settings.{key}")),
                    "must name a directory (relative paths are relative to the config file)",
                ));
                // Said here: not also "cannot be read".
                plain.remove(key);
            } else {
                let dir = config_dir(cfg).join(&d);
                plain.insert(key.clone(), Value::String(dir.display().to_string()));
            }
        }
    }

    let base_url = base_url
        .or_else(|| manifest.default_base_url.clone())
        .unwrap_or_default();
    let mut allowed_hosts = manifest.allowed_hosts.clone();
    if let Ok(u) = url::Url::parse(&base_url) {
        if let Some(h) = u.host_str() {
            if !allowed_hosts.iter().any(|a| a == h) {
                allowed_hosts.push(h.to_owned());
            }
        }
    }
    let lookback_days = c
        .lookback_days
        .unwrap_or_else(|| {
            manifest
                .streams
                .iter()
                .map(|s| s.default_lookback_days)
                .max()
                .unwrap_or(0)
        })
        // A plugin's own default is held to the same bound as the config's.
        .min(super::MAX_LOOKBACK_DAYS);
    let connector = ResolvedConnector {
        timezone: c.tz(daemon),
        lookback_days,
        window_days: c.window_days.or(manifest.max_window_days),
        settings: Value::Object(plain),
        policy: HttpPolicy {
            connector_id: c.id.clone(),
            allowed_hosts,
            timeout: Duration::from_secs(c.timeout_secs),
            rate_limit: c.rate_limit,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_retries: DEFAULT_MAX_RETRIES,
            secrets,
        },
        base_url,
        plugin: plugin.clone(),
        config: c.clone(),
    };
    Ok((connector, errors))
}

/// A connector named where its plugin's records do not belong: a
/// program's `claims` must be affiliate connectors (or postback endpoints),
/// its `orders` orders connectors, and a `[[kpi.attribution]]` rule's
/// `connector` an ad network's. Swapped, a program would judge nothing and
/// pay nobody without a word (a QA finding, 2026-11-29).
fn kind_problems(cfg: &Config, resolved: &[ResolvedConnector]) -> Vec<ConfigError> {
    use plugin_api::protocol::PluginKind;
    let kind_of = |id: &str| {
        resolved
            .iter()
            .find(|r| r.config.id == id)
            .map(|r| (r.plugin.manifest.kind, r.plugin.manifest.id.as_str()))
    };
    let what = |k: PluginKind| match k {
        PluginKind::AdNetwork => "ad spend",
        PluginKind::Affiliate => "claims (conversions)",
        PluginKind::Orders => "orders",
    };
    let mut errors = Vec::new();
    let mut check = |path: String, id: &str, want: PluginKind, place: &str| {
        if let Some((kind, plugin)) = kind_of(id) {
            if kind != want {
                errors.push(cfg.source.error(
                    &path,
                    format!(
                        "connector `{id}` runs plugin `{plugin}`, which produces {}, but {place} takes {}; name it where its records belong",
                        what(kind),
                        what(want)
                    ),
                ));
            }
        }
    };
    for (i, p) in cfg.programs.iter().enumerate() {
        for (j, id) in p.claims.iter().enumerate() {
            check(
                format!("programs[{i}].claims[{j}]"),
                id,
                PluginKind::Affiliate,
                "`claims`",
            );
        }
        for (j, id) in p.orders.iter().enumerate() {
            check(
                format!("programs[{i}].orders[{j}]"),
                id,
                PluginKind::Orders,
                "`orders`",
            );
        }
    }
    if let Some(kpi) = &cfg.kpi {
        for (j, rule) in kpi.attribution.iter().enumerate() {
            check(
                format!("kpi.attribution[{j}].connector"),
                &rule.connector,
                PluginKind::AdNetwork,
                "an attribution rule",
            );
        }
    }
    errors
}

/// Resolves every connector; all errors of all connectors are returned,
/// and the places each connector is named checked against its plugin's
/// kind (every connector whose plugin loaded, whatever else is wrong with
/// it). File-drop directories: [`resolve_all`].
pub fn resolve(
    cfg: &Config,
    load: PluginLoader<'_>,
    read_secret: SecretReader<'_>,
) -> Result<Vec<ResolvedConnector>, Vec<ConfigError>> {
    let (loaded, errors) = resolve_every(cfg, load, read_secret);
    finish(loaded, errors)
}

/// Every connector whose plugin loaded (with or without errors of its
/// own), and every error: each connector's, and the kind problems.
fn resolve_every(
    cfg: &Config,
    load: PluginLoader<'_>,
    read_secret: SecretReader<'_>,
) -> (Vec<ResolvedConnector>, Vec<ConfigError>) {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for i in 0..cfg.connectors.len() {
        match resolve_loaded(cfg, i, load, read_secret) {
            Ok((r, mut e)) => {
                loaded.push(r);
                errors.append(&mut e);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    errors.extend(kind_problems(cfg, &loaded));
    (loaded, errors)
}

/// The connectors when there is no error, else the errors sorted by line.
fn finish(
    connectors: Vec<ResolvedConnector>,
    mut errors: Vec<ConfigError>,
) -> Result<Vec<ResolvedConnector>, Vec<ConfigError>> {
    if errors.is_empty() {
        Ok(connectors)
    } else {
        errors.sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
        Err(errors)
    }
}

/// The directory relative paths in the config are relative to: the config
/// file's directory (empty, i.e. the working directory, for a bare file name).
pub fn config_dir(cfg: &Config) -> PathBuf {
    Path::new(&cfg.source.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Checks that each file-drop connector's directory (already made relative
/// to the config file by [`resolve_connector`]) is a readable directory.
pub fn check_file_directories(cfg: &Config, connectors: &[ResolvedConnector]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for c in connectors {
        let Some(cap) = &c.plugin.manifest.file_capability else {
            continue;
        };
        let key = &cap.directory_setting;
        let Some(dir) = c.settings.get(key).and_then(Value::as_str) else {
            continue;
        };
        if let Err(e) = std::fs::read_dir(dir) {
            let i = cfg
                .connectors
                .iter()
                .position(|k| k.id == c.config.id)
                .unwrap_or(0);
            errors.push(cfg.source.error(
                &format!("connectors[{i}].settings.{key}"),
                format!(
                    "directory {dir} of connector `{}` cannot be read: {e}; create it or fix \
                     the path (relative paths are relative to the config file)",
                    c.config.id
                ),
            ));
        }
    }
    errors
}

/// Resolves with the real plugin loader and OS secrets, and checks file-drop
/// directories: every connector whose plugin loaded, so a missing
/// directory is reported with the secret and settings errors, not after
/// them.
pub fn resolve_all(cfg: &Config) -> Result<Vec<ResolvedConnector>, Vec<ConfigError>> {
    let reader = os_secret_reader(config_dir(cfg));
    let (loaded, mut errors) = resolve_every(cfg, &crate::plugins::load, &reader);
    errors.extend(check_file_directories(cfg, &loaded));
    finish(loaded, errors)
}

/// A TOML value's type, for messages.
fn toml_type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date/time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}
