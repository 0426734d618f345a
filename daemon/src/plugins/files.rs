//! The read-only file capability: lets a file-drop connector (e.g. orders
//! exported as CSV) read files from one configured directory.
//!
//! The directory is the setting named by the manifest's
//! [`FileCapability::directory_setting`]. It is opened once per session
//! (following symlinks in the configured path: an operator may point it at a
//! share); every read and listing afterwards goes through that directory's
//! file descriptor, so a parent directory renamed or swapped for a symlink
//! meanwhile is not followed.
//!
//! A name must be a plain file name directly in the directory (no `/`, no
//! `..`) ending in one of the manifest's suffixes. It is opened once with
//! `O_NOFOLLOW | O_NONBLOCK` (a symlink is refused, a FIFO does not block),
//! the open descriptor is checked with `fstat` (a regular file, at most the
//! size cap) and read through that descriptor, never more than the cap. So a
//! file swapped for a symlink, a FIFO or a bigger file between a check and
//! the read cannot make the daemon read anything else (the race a
//! check-then-`read(path)` had). Listing returns every allowed name directly
//! in the directory, sorted, newline-separated: a symlink, FIFO or
//! subdirectory among them is refused by name when read, never skipped.
//!
//! What this is not: no writes, no recursion, no symlinks, no access outside
//! the directory.

use plugin_api::protocol::FileCapability;
use rustix::fs::{Dir, FileType, Mode, OFlags, CWD};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

/// A refusal or I/O failure, as a sentence for the plugin.
pub type FileError = String;

/// The capability of one session.
#[derive(Debug, Clone)]
pub struct Files {
    dir: Result<Directory, String>,
    suffixes: Vec<String>,
    max_bytes: u64,
}

/// The directory, opened once: its path for messages, its descriptor for
/// every access.
#[derive(Debug, Clone)]
struct Directory {
    path: PathBuf,
    fd: Arc<OwnedFd>,
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
            Some(d) => open_directory(d).map_err(|e| {
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

    /// Reads one file by name (directly in the directory).
    pub fn read(&self, name: &str) -> Result<Vec<u8>, FileError> {
        let dir = self.dir.as_ref().map_err(Clone::clone)?;
        if !self.allowed_name(name) {
            return Err(format!(
                "file `{name}` refused: only names ending in {} may be read",
                self.suffixes.join(", ")
            ));
        }
        if name.contains('/') || name.contains('\0') || name == "." || name == ".." {
            return Err(format!(
                "file `{name}` refused: only a file directly in the directory {} may be read, \
                 not a path outside it or below it",
                dir.path.display()
            ));
        }
        let fd = rustix::fs::openat(
            &*dir.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP => format!(
                "file `{name}` refused: it is a symbolic link; only regular files directly in \
                 the directory {} are read (copy or move the file there instead)",
                dir.path.display()
            ),
            e => format!(
                "file `{name}` cannot be opened: {}",
                std::io::Error::from(e)
            ),
        })?;
        // The checks apply to what was opened, not to the name.
        let stat =
            rustix::fs::fstat(&fd).map_err(|e| format!("file `{name}` cannot be read: {e}"))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(format!(
                "file `{name}` refused: not a regular file (a directory, FIFO or device); only \
                 regular files directly in the directory {} are read: move it away, or rename it \
                 to start with `.`",
                dir.path.display()
            ));
        }
        let len = u64::try_from(stat.st_size).unwrap_or(0);
        let too_big = |len: u64| {
            format!(
                "file `{name}` refused: {len} bytes exceeds the limit of {} bytes",
                self.max_bytes
            )
        };
        if len > self.max_bytes {
            return Err(too_big(len));
        }
        // Read through the checked descriptor, one byte past the cap so a
        // file that grew since the `fstat` is refused, not read whole.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        std::fs::File::from(fd)
            .take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| format!("file `{name}` cannot be read: {e}"))?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(too_big(bytes.len() as u64));
        }
        Ok(bytes)
    }

    /// Lists the allowed names (suffix, not starting with `.`), sorted,
    /// newline-separated, whatever they are: a symlink, FIFO or directory
    /// among them is listed so that its `read` refuses it by name and the
    /// sync fails saying so (QA12 N1: skipped without a word, a file-drop
    /// link's orders went missing while the sync said ok).
    pub fn list(&self) -> Result<Vec<u8>, FileError> {
        let dir = self.dir.as_ref().map_err(Clone::clone)?;
        let cannot = |e: rustix::io::Errno| {
            format!(
                "directory {} cannot be listed: {}",
                dir.path.display(),
                std::io::Error::from(e)
            )
        };
        let mut entries = Dir::read_from(&*dir.fd).map_err(cannot)?;
        let mut names = Vec::new();
        while let Some(entry) = entries.read() {
            let entry = entry.map_err(cannot)?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name.starts_with('.') || !self.allowed_name(name) {
                continue;
            }
            names.push(name.to_owned());
        }
        names.sort();
        Ok(names.join("\n").into_bytes())
    }
}

/// Opens the configured directory (its path is canonicalised for messages).
fn open_directory(path: &str) -> std::io::Result<Directory> {
    let path = std::fs::canonicalize(path)?;
    let fd = rustix::fs::openat(
        CWD,
        &path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Directory {
        path,
        fd: Arc::new(fd),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

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
        std::os::unix::fs::symlink(root.path().join("secret.csv"), inside.join("link.csv"))
            .unwrap();
        let f = files(&inside);
        assert_eq!(f.read("a.csv").unwrap(), b"x,y");
        assert!(f.read("../secret.csv").unwrap_err().contains("outside"));
        assert!(f.read("link.csv").unwrap_err().contains("symbolic link"));
        assert!(f.read("b.txt").unwrap_err().contains("only names ending"));
        assert!(f.read("big.csv").unwrap_err().contains("exceeds"));
        let listed = String::from_utf8(f.list().unwrap()).unwrap();
        // Listed, so that reading it refuses it by name (not skipped).
        assert_eq!(listed, "a.csv\nbig.csv\nlink.csv");
    }

    /// Regression (QA10 H2): the read used to check a canonicalised path and
    /// then `read` it again by path, so a symlink swapped in between was
    /// followed. Now the open itself refuses a symlink, even one that stays
    /// inside the directory, and the checks apply to the opened descriptor.
    #[test]
    fn the_open_refuses_symlinks_fifos_and_reads_no_more_than_the_cap() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("drop");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(inside.join("a.csv"), "x,y").unwrap();
        std::fs::write(root.path().join("secret"), "hmac-secret").unwrap();
        std::os::unix::fs::symlink("a.csv", inside.join("same.csv")).unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), inside.join("s.csv")).unwrap();
        rustix::fs::mknodat(
            CWD,
            inside.join("pipe.csv"),
            FileType::Fifo,
            Mode::RUSR | Mode::WUSR,
            0,
        )
        .unwrap();
        std::fs::create_dir(inside.join("sub.csv")).unwrap();
        let f = files(&inside);
        for name in ["same.csv", "s.csv"] {
            let e = f.read(name).unwrap_err();
            assert!(e.contains("symbolic link"), "{name}: {e}");
            assert!(!e.contains("hmac-secret"), "{e}");
        }
        // A FIFO neither blocks the open nor is read.
        assert!(f
            .read("pipe.csv")
            .unwrap_err()
            .contains("not a regular file"));
        assert!(f
            .read("sub.csv")
            .unwrap_err()
            .contains("not a regular file"));
        assert!(f
            .read("sub.csv/../a.csv")
            .unwrap_err()
            .contains("directly in"));
        assert_eq!(
            String::from_utf8(f.list().unwrap()).unwrap(),
            "a.csv\npipe.csv\ns.csv\nsame.csv\nsub.csv"
        );
    }

    /// The directory is opened once: renaming it and putting a symlink to
    /// elsewhere at its old path does not redirect later reads.
    #[test]
    fn a_swapped_directory_path_is_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("drop");
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&inside).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(inside.join("a.csv"), "mine").unwrap();
        std::fs::write(elsewhere.join("a.csv"), "other").unwrap();
        let f = files(&inside);
        std::fs::rename(&inside, root.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &inside).unwrap();
        assert_eq!(f.read("a.csv").unwrap(), b"mine");
        assert_eq!(String::from_utf8(f.list().unwrap()).unwrap(), "a.csv");
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
