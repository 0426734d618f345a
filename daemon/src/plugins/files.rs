//! The read-only file capability: lets a file-drop connector (e.g. orders
//! exported as CSV) read files from one configured directory.
//!
//! The directory is the setting named by the manifest's
//! [`FileCapability::directory_setting`]. A name is resolved inside it and
//! canonicalised; it must stay inside (no `..`, no symlink out), be a regular
//! file, end in one of the manifest's suffixes and be at most the size cap.
//! Listing returns the allowed regular files directly in the directory,
//! sorted, newline-separated.
//!
//! What this is not: no writes, no recursion, no access outside the directory.

use plugin_api::protocol::FileCapability;
use std::path::{Path, PathBuf};

/// A refusal or I/O failure, as a sentence for the plugin.
pub type FileError = String;

/// The capability of one session.
#[derive(Debug, Clone)]
pub struct Files {
    dir: Result<PathBuf, String>,
    suffixes: Vec<String>,
    max_bytes: u64,
}

impl Files {
    /// The capability from the manifest and the session's settings; `None`
    /// if the plugin declares none.
    pub fn new(
        cap: Option<&FileCapability>,
        settings: &serde_json::Value,
        max_bytes: u64,
    ) -> Option<Files> {
        let cap = cap?;
        let dir = match settings
            .get(&cap.directory_setting)
            .and_then(|v| v.as_str())
        {
            None => Err(format!(
                "setting `{}` (the directory this connector reads) is missing",
                cap.directory_setting
            )),
            Some(d) => std::fs::canonicalize(d).map_err(|e| {
                format!(
                    "directory `{d}` (setting `{}`) is unusable: {e}",
                    cap.directory_setting
                )
            }),
        };
        Some(Files {
            dir,
            suffixes: cap.suffixes.clone(),
            max_bytes,
        })
    }

    fn allowed_name(&self, name: &str) -> bool {
        self.suffixes.iter().any(|s| name.ends_with(s.as_str()))
    }

    /// Reads one file by name (relative to the directory).
    pub fn read(&self, name: &str) -> Result<Vec<u8>, FileError> {
        let dir = self.dir.as_ref().map_err(Clone::clone)?;
        if !self.allowed_name(name) {
            return Err(format!(
                "file `{name}` refused: only names ending in {} may be read",
                self.suffixes.join(", ")
            ));
        }
        let candidate = dir.join(name);
        let canonical = std::fs::canonicalize(&candidate)
            .map_err(|e| format!("file `{name}` cannot be opened: {e}"))?;
        if !canonical.starts_with(dir) || canonical == *dir {
            return Err(format!(
                "file `{name}` refused: it resolves outside the directory {}",
                dir.display()
            ));
        }
        let meta = std::fs::metadata(&canonical)
            .map_err(|e| format!("file `{name}` cannot be opened: {e}"))?;
        if !meta.is_file() {
            return Err(format!("file `{name}` refused: not a regular file"));
        }
        if meta.len() > self.max_bytes {
            return Err(format!(
                "file `{name}` refused: {} bytes exceeds the limit of {} bytes",
                meta.len(),
                self.max_bytes
            ));
        }
        std::fs::read(&canonical).map_err(|e| format!("file `{name}` cannot be read: {e}"))
    }

    /// Lists allowed files, sorted, newline-separated.
    pub fn list(&self) -> Result<Vec<u8>, FileError> {
        let dir = self.dir.as_ref().map_err(Clone::clone)?;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("directory {} cannot be listed: {e}", dir.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| is_regular(&e.path()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && self.allowed_name(n))
            .collect();
        names.sort();
        Ok(names.join("\n").into_bytes())
    }
}

fn is_regular(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files(dir: &Path) -> Files {
        Files::new(
            Some(&FileCapability {
                directory_setting: "directory".into(),
                suffixes: vec![".csv".into()],
            }),
            &json!({ "directory": dir }),
            10,
        )
        .unwrap()
    }

    #[test]
    fn reads_inside_and_refuses_escapes_suffixes_and_size() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("drop");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(inside.join("a.csv"), "x,y").unwrap();
        std::fs::write(inside.join("big.csv"), "0123456789012").unwrap();
        std::fs::write(inside.join("b.txt"), "no").unwrap();
        std::fs::write(root.path().join("secret.csv"), "outside").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.path().join("secret.csv"), inside.join("link.csv"))
            .unwrap();
        let f = files(&inside);
        assert_eq!(f.read("a.csv").unwrap(), b"x,y");
        assert!(f.read("../secret.csv").unwrap_err().contains("outside"));
        #[cfg(unix)]
        assert!(f.read("link.csv").unwrap_err().contains("outside"));
        assert!(f.read("b.txt").unwrap_err().contains("only names ending"));
        assert!(f.read("big.csv").unwrap_err().contains("exceeds"));
        let listed = String::from_utf8(f.list().unwrap()).unwrap();
        assert!(listed.starts_with("a.csv\nbig.csv"), "{listed}");
    }

    #[test]
    fn missing_directory_setting_is_named() {
        let f = Files::new(
            Some(&FileCapability {
                directory_setting: "directory".into(),
                suffixes: vec![".csv".into()],
            }),
            &json!({}),
            10,
        )
        .unwrap();
        assert!(f.read("a.csv").unwrap_err().contains("setting `directory`"));
    }
}
