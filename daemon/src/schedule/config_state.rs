//! What the daemon says about the config it runs, for `/status` and
//! `/metrics`: when it was loaded (at start, or by the last reload that was
//! ok), the last SIGHUP's outcome (`ok`, or `rejected` with its error count
//! and first error), and whether the file still reads as what runs.
//!
//! A rejected reload used to show only in the log (new-user QA16 N1):
//! `systemctl reload` exits 0 whatever the daemon thinks of the file, so
//! monitoring needs `reckon_config_last_reload_success`.
//!
//! What it is not: it does not load or check anything itself; the
//! scheduler's reload does and reports here ([`ConfigTracker::reloaded`],
//! [`ConfigTracker::rejected`]).

use crate::config::{Config, ConfigError, ConfigErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// How a SIGHUP ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The file was loaded: it runs now.
    Ok,
    /// The file had errors: the config loaded before keeps running.
    Rejected,
    /// A newer daemon's outcome this version does not know.
    #[serde(other)]
    Unknown,
}

impl ReloadOutcome {
    /// The label in `/metrics` and the text of `reckon status`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadOutcome::Ok => "ok",
            ReloadOutcome::Rejected => "rejected",
            ReloadOutcome::Unknown => "unknown",
        }
    }
}

/// The last SIGHUP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastReload {
    /// When.
    pub at: DateTime<Utc>,
    /// `ok` or `rejected`.
    pub outcome: ReloadOutcome,
    /// How many errors the file had (0 when ok).
    pub errors: usize,
    /// The first of them, as `reckon config check` prints it.
    pub first_error: Option<String>,
    /// `[daemon]` settings of the file that differ from those the daemon
    /// started with: they take effect after a restart.
    #[serde(default)]
    pub restart_needed: Vec<String>,
}

/// What `/status` says about the config (`config_state`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConfigStatus {
    /// When the config that runs was read: at start, or by the last
    /// reload that was ok.
    pub loaded_at: DateTime<Utc>,
    /// The last SIGHUP; none since start: null.
    pub last_reload: Option<LastReload>,
    /// Whether the file now differs from the config that runs (a rejected
    /// reload, or an edit not reloaded yet); null when the file cannot be
    /// read.
    pub file_differs: Option<bool>,
    /// Reloads since start that loaded the file.
    pub reloads_ok: u64,
    /// Reloads since start that were rejected.
    pub reloads_rejected: u64,
}

#[derive(Debug)]
struct Inner {
    loaded_at: DateTime<Utc>,
    /// The text the running config was parsed from.
    loaded_text: Option<String>,
    last_reload: Option<LastReload>,
    reloads_ok: u64,
    reloads_rejected: u64,
}

/// The daemon's record of its config (one per daemon).
#[derive(Debug)]
pub struct ConfigTracker {
    inner: Mutex<Inner>,
}

impl ConfigTracker {
    /// The config loaded at start, at `at`, from `text`.
    pub fn new(at: DateTime<Utc>, text: Option<String>) -> ConfigTracker {
        ConfigTracker {
            inner: Mutex::new(Inner {
                loaded_at: at,
                loaded_text: text,
                last_reload: None,
                reloads_ok: 0,
                reloads_rejected: 0,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A SIGHUP loaded `text` at `at`.
    pub fn reloaded(&self, at: DateTime<Utc>, text: Option<String>, restart_needed: &[&str]) {
        let mut i = self.inner();
        i.loaded_at = at;
        i.loaded_text = text;
        i.reloads_ok += 1;
        i.last_reload = Some(LastReload {
            at,
            outcome: ReloadOutcome::Ok,
            errors: 0,
            first_error: None,
            restart_needed: restart_needed.iter().map(|s| (*s).to_owned()).collect(),
        });
    }

    /// A SIGHUP at `at` was rejected for `errors`.
    pub fn rejected(&self, at: DateTime<Utc>, errors: &[ConfigError]) {
        let mut i = self.inner();
        i.reloads_rejected += 1;
        i.last_reload = Some(LastReload {
            at,
            outcome: ReloadOutcome::Rejected,
            errors: errors.len(),
            first_error: errors.first().map(ToString::to_string),
            restart_needed: Vec::new(),
        });
    }

    /// The state for `/status`, comparing the file at `path` now with the
    /// text the running config came from.
    pub fn status(&self, path: &Path) -> ConfigStatus {
        // Bounded, regular files only, as the config is read to load it.
        let now = crate::config::read_text(path).ok();
        let i = self.inner();
        let file_differs = match (&now, &i.loaded_text) {
            (Some(now), Some(loaded)) => Some(now != loaded),
            _ => None,
        };
        ConfigStatus {
            loaded_at: i.loaded_at,
            last_reload: i.last_reload.clone(),
            file_differs,
            reloads_ok: i.reloads_ok,
            reloads_rejected: i.reloads_rejected,
        }
    }

    /// Prometheus text: `reckon_config_reloads_total{outcome}`,
    /// `reckon_config_last_reload_success` and `reckon_config_file_differs`.
    pub fn render_metrics(&self, path: &Path) -> String {
        let s = self.status(path);
        let success = s
            .last_reload
            .as_ref()
            .map_or(1, |r| u8::from(r.outcome == ReloadOutcome::Ok));
        let mut out = format!(
            "# HELP reckon_config_reloads_total Config reloads (SIGHUP) since start, by outcome (`rejected`: the file had errors and the config loaded before keeps running).\n\
             # TYPE reckon_config_reloads_total counter\n\
             reckon_config_reloads_total{{outcome=\"ok\"}} {}\n\
             reckon_config_reloads_total{{outcome=\"rejected\"}} {}\n\
             # HELP reckon_config_last_reload_success 1 if the last reload loaded the file (or none was asked since start), 0 if it was rejected.\n\
             # TYPE reckon_config_last_reload_success gauge\n\
             reckon_config_last_reload_success {success}\n",
            s.reloads_ok, s.reloads_rejected
        );
        if let Some(differs) = s.file_differs {
            out.push_str(&format!(
                "# HELP reckon_config_file_differs 1 if the config file's text differs from the config the daemon runs (a reload rejected for the text, or an edit not reloaded yet; not a reload rejected only for a secret's value).\n\
                 # TYPE reckon_config_file_differs gauge\n\
                 reckon_config_file_differs {}\n",
                u8::from(differs)
            ));
        }
        out
    }
}

/// Reads and parses the config file at `path` as
/// [`crate::config::load`] does, and returns the text it parsed too (none
/// when the file could not be read), so what runs can later be compared
/// with the file.
pub fn read_config(path: &Path) -> (Option<String>, Result<Config, ConfigErrors>) {
    // Bounded, regular files only (a SIGHUP after the file was replaced by
    // a device or a pipe must not read without end or block the daemon).
    match crate::config::read_text(path) {
        Ok(text) => {
            let parsed = crate::config::parse(&text, &path.display().to_string());
            (Some(text), parsed)
        }
        // `load` says why, with its hints.
        Err(_) => (None, crate::config::load(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon's start and SIGHUP read the config through this: a file
    /// replaced by a device is refused unread, not read without end.
    #[test]
    fn a_config_that_is_a_device_is_refused_unread() {
        let (text, parsed) = read_config(Path::new("/dev/zero"));
        assert!(text.is_none());
        let e = parsed.unwrap_err().to_string();
        assert!(e.contains("is not a regular file"), "{e}");
        let tracker = ConfigTracker::new(Utc::now(), Some("a = 1\n".into()));
        assert_eq!(tracker.status(Path::new("/dev/zero")).file_differs, None);
    }

    #[test]
    fn a_rejected_reload_shows_until_a_good_one_and_the_file_is_compared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reckon.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let start: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();
        let t = ConfigTracker::new(start, Some("a = 1\n".into()));
        let s = t.status(&path);
        assert_eq!(
            (s.loaded_at, s.last_reload, s.file_differs),
            (start, None, Some(false))
        );
        let m = t.render_metrics(&path);
        assert!(
            m.contains("reckon_config_reloads_total{outcome=\"rejected\"} 0\n")
                && m.contains("reckon_config_last_reload_success 1\n")
                && m.contains("reckon_config_file_differs 0\n"),
            "{m}"
        );

        std::fs::write(&path, "a = 2.5\n").unwrap();
        let at = start + chrono::Duration::minutes(5);
        let error = ConfigError {
            file: "reckon.toml".into(),
            line: Some(1),
            column: Some(5),
            path: "a".into(),
            message: "2.5 is a float".into(),
        };
        t.rejected(at, &[error.clone(), error]);
        let s = t.status(&path);
        assert_eq!(s.loaded_at, start, "the old config runs");
        assert_eq!(s.file_differs, Some(true));
        let r = s.last_reload.unwrap();
        assert_eq!(
            (r.at, r.outcome, r.errors),
            (at, ReloadOutcome::Rejected, 2)
        );
        assert_eq!(
            r.first_error.as_deref(),
            Some("reckon.toml:1:5: `a`: 2.5 is a float")
        );
        let m = t.render_metrics(&path);
        assert!(
            m.contains("reckon_config_reloads_total{outcome=\"rejected\"} 1\n")
                && m.contains("reckon_config_last_reload_success 0\n")
                && m.contains("reckon_config_file_differs 1\n"),
            "{m}"
        );

        let later = at + chrono::Duration::minutes(1);
        t.reloaded(later, Some("a = 2.5\n".into()), &["listen"]);
        let s = t.status(&path);
        assert_eq!((s.loaded_at, s.file_differs), (later, Some(false)));
        assert_eq!((s.reloads_ok, s.reloads_rejected), (1, 1));
        assert_eq!(s.last_reload.unwrap().restart_needed, ["listen"]);
        assert!(t
            .render_metrics(&path)
            .contains("reckon_config_last_reload_success 1\n"));

        // A file that cannot be read is not called changed or unchanged.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(t.status(&path).file_differs, None);
        assert!(!t.render_metrics(&path).contains("file_differs"));
    }

    #[test]
    fn an_outcome_a_newer_daemon_sends_is_read_as_unknown() {
        let r: LastReload = serde_json::from_str(
            r#"{"at":"2026-11-30T06:00:00Z","outcome":"partly","errors":0,"first_error":null}"#,
        )
        .unwrap();
        assert_eq!(r.outcome, ReloadOutcome::Unknown);
        assert!(r.restart_needed.is_empty());
    }
}
