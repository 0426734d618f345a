//! Writing a command's `--out FILE` (`reckon kpi`, `reckon reconcile
//! report`): one function, [`Console::write_out`], so every such flag
//! treats a path the same way.
//!
//! - A regular file, or a path that does not exist yet: written to a
//!   temporary file beside it, then renamed over it (a reader never sees
//!   half a report).
//! - A symbolic link: followed (link by link, at most 40) to its target,
//!   which gets the treatment of its own kind. The link stays.
//! - A path that exists and is neither a regular file nor a directory (a
//!   character device such as `/dev/null` or `/dev/full`, a FIFO): opened
//!   for writing and written straight, never replaced. A write error (no
//!   space left on `/dev/full`, a FIFO whose reader went away) is the
//!   command's error.
//! - This process's standard output or error named as a file
//!   (`/dev/stdout`, `/dev/fd/2`, `/proc/self/fd/1`): written to the
//!   command's stdout or stderr ([`Console`]: the client's, when the
//!   daemon runs the command). Another descriptor of this process: written
//!   straight, as a device is; in the daemon such a path would name one of
//!   the daemon's own files, and is refused.
//! - A directory: refused.
//!
//! QA20 R20-2: `kpi --out` renamed its temporary file over whatever the
//! path was: a symlink, a FIFO or a device node became a regular file and
//! the command exited 0 (as root, `--out /dev/full` replaced the system's
//! `/dev/full`, and `--out /dev/stdout` printed nothing).

use super::Console;
use anyhow::Context as _;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

/// Most symbolic links followed from one `--out` path (Linux's own limit).
const MAX_LINKS: usize = 40;

/// What an `--out` path leads to, once its links are followed.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A regular file, or nothing yet: written through a temporary file
    /// renamed over this path.
    File(PathBuf),
    /// An existing path that is not a regular file nor a directory (a
    /// device, a FIFO), or an open descriptor named through `/proc`:
    /// opened for writing, never replaced.
    Straight(PathBuf),
    /// This process's standard output.
    Stdout,
    /// This process's standard error.
    Stderr,
}

/// Why an `--out` path cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    /// A directory.
    #[error("{0} is a directory; give a file name in it, with the extension of the --format you ask for (e.g. {0}/report.csv, .json or .html)")]
    Directory(String),
    /// A descriptor of the daemon.
    #[error("{path} names file descriptor {fd} of the reckon daemon, which runs this command, not one of yours; leave out --out and redirect the output instead (`> FILE`, `| CMD`)")]
    DaemonDescriptor {
        /// The path as given.
        path: String,
        /// The descriptor.
        fd: u32,
    },
    /// A cycle or a very long chain of links.
    #[error("{0}: more than 40 symbolic links to follow (a loop?)")]
    TooManyLinks(String),
    /// The path or one of its links cannot be looked at.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The path (or link target) concerned.
        path: String,
        /// The cause (in the message: not also a `source`, which `{:#}`
        /// would print a second time, QA48 I-L4).
        error: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutError + '_ {
    move |error| OutError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// Where `path` leads. `in_daemon`: the daemon runs the command for a
/// client, so this process's descriptors other than stdout and stderr
/// (mapped to the client's) are the daemon's own and refused.
pub fn target(path: &Path, in_daemon: bool) -> Result<Target, OutError> {
    let mut at = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::File(at)),
            Err(e) => return Err(io(&at)(e)),
        };
        if meta.is_dir() {
            return Err(OutError::Directory(at.display().to_string()));
        }
        if meta.is_file() {
            return Ok(Target::File(at));
        }
        if !meta.file_type().is_symlink() {
            return Ok(Target::Straight(at));
        }
        // The directory the link is in, without links: `/dev/fd/1` is in
        // `/proc/<pid>/fd`.
        let parent = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let parent = std::fs::canonicalize(&parent).map_err(io(&parent))?;
        if let Some((pid, fd)) = descriptor(&parent, &at) {
            if pid == std::process::id() {
                match fd {
                    1 => return Ok(Target::Stdout),
                    2 => return Ok(Target::Stderr),
                    _ if in_daemon => {
                        return Err(OutError::DaemonDescriptor {
                            path: path.display().to_string(),
                            fd,
                        })
                    }
                    _ => {}
                }
            }
            // What the descriptor holds is open already: its link text
            // (`pipe:[123]`, a deleted file) is no path to follow.
            return match std::fs::metadata(&at) {
                Ok(m) if m.is_dir() => Err(OutError::Directory(at.display().to_string())),
                Ok(_) => Ok(Target::Straight(at)),
                Err(e) => Err(io(&at)(e)),
            };
        }
        let link = std::fs::read_link(&at).map_err(io(&at))?;
        at = parent.join(link);
    }
    Err(OutError::TooManyLinks(path.display().to_string()))
}

/// `(pid, fd)` when `link`, in the directory `parent` (without links), is
/// a `/proc/<pid>/fd/<fd>` or `/proc/<pid>/task/<tid>/fd/<fd>` entry.
fn descriptor(parent: &Path, link: &Path) -> Option<(u32, u32)> {
    let fd = link.file_name()?.to_str()?.parse().ok()?;
    let parts: Vec<&str> = parent
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let pid = match parts.as_slice() {
        ["proc", pid, "fd"] | ["proc", pid, "task", _, "fd"] => pid.parse().ok()?,
        _ => return None,
    };
    Some((pid, fd))
}

/// Writes `bytes` to a temporary file in `path`'s directory, then renames
/// it over `path`. The temporary file is created new (never through a
/// link left there) and removed on failure.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            ".{}.{}.{attempt}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1
            }
            Err(e) => return Err(e),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.flush())
        .and_then(|()| {
            drop(file);
            std::fs::rename(&tmp, path)
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `--out FILE` needs FILE's directory: name it, and what to do, rather
/// than the system's "No such file or directory" (QA20 F9). Called before a
/// command's work, and by [`Console::write_out`].
pub fn check_out_dir(path: &Path) -> anyhow::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        anyhow::bail!(
            "cannot write {}: {} is not a directory; give --out a path in an existing directory",
            path.display(),
            dir.display()
        );
    }
    anyhow::bail!(
        "cannot write {}: directory {} does not exist; create it (mkdir -p {}) or give --out a path in an existing directory",
        path.display(),
        dir.display(),
        dir.display()
    )
}

impl Console {
    /// Writes a command's `--out` file (see the module doc for what each
    /// kind of path gets).
    pub fn write_out(&mut self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let cannot = || format!("cannot write {}", path.display());
        match target(path, self.daemon_store.is_some())? {
            Target::File(file) => {
                check_out_dir(&file)?;
                write_atomically(&file, bytes).with_context(cannot)
            }
            Target::Straight(at) => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&at)
                    .with_context(cannot)?;
                // A descriptor's regular file is written as `>` would.
                if f.metadata().is_ok_and(|m| m.is_file()) {
                    f.set_len(0).with_context(cannot)?;
                }
                f.write_all(bytes)
                    .and_then(|()| f.flush())
                    .with_context(cannot)
            }
            Target::Stdout => self
                .out
                .write_all(bytes)
                .and_then(|()| self.out.flush())
                .with_context(cannot),
            Target::Stderr => self
                .err
                .write_all(bytes)
                .and_then(|()| self.err.flush())
                .with_context(cannot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Captured;
    use std::os::unix::fs::FileTypeExt as _;

    fn console() -> (Console, Captured, Captured) {
        let (out, err) = (Captured::default(), Captured::default());
        let con = Console {
            out: Box::new(out.clone()),
            err: Box::new(err.clone()),
            daemon_store: None,
        };
        (con, out, err)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_new_path_and_a_regular_file_are_written_whole_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut con, out, _) = console();
        let p = dir.path().join("k.csv");
        con.write_out(&p, b"first\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "first\n");
        con.write_out(&p, b"second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "second\n");
        assert_eq!(names(dir.path()), ["k.csv"]);
        assert_eq!(out.text(), "");
    }

    /// QA48 I-L4: the OS error was in the message and its source, so an
    /// error printed with its causes said it twice.
    #[test]
    fn an_out_path_that_cannot_be_written_says_why_once() {
        let e = io(Path::new("/x/k.csv"))(std::io::Error::from_raw_os_error(13));
        let shown = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(shown.matches("os error 13").count(), 1, "{shown}");
        assert!(
            shown.starts_with("cannot write /x/k.csv: Permission denied"),
            "{shown}"
        );
    }

    // QA20 R20-2: the link became a regular file; its target was untouched.
    #[test]
    fn a_symlink_is_followed_and_its_target_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut con, _, _) = console();
        let sub = dir.path().join("reports");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("target.csv"), "old\n").unwrap();
        // A chain: link → relative link in another directory → file.
        std::os::unix::fs::symlink("target.csv", sub.join("inner")).unwrap();
        std::os::unix::fs::symlink("reports/inner", dir.path().join("link")).unwrap();
        con.write_out(&dir.path().join("link"), b"new\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(sub.join("target.csv")).unwrap(),
            "new\n"
        );
        for l in [dir.path().join("link"), sub.join("inner")] {
            assert!(std::fs::symlink_metadata(&l)
                .unwrap()
                .file_type()
                .is_symlink());
        }
        assert_eq!(names(&sub), ["inner", "target.csv"]);
        // A link to nothing yet: the target is created; the link stays.
        std::os::unix::fs::symlink("fresh.csv", dir.path().join("dangling")).unwrap();
        con.write_out(&dir.path().join("dangling"), b"x\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("fresh.csv")).unwrap(),
            "x\n"
        );
        assert!(std::fs::symlink_metadata(dir.path().join("dangling"))
            .unwrap()
            .file_type()
            .is_symlink());
        // A loop is refused.
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let e = con.write_out(&dir.path().join("a"), b"x").unwrap_err();
        assert!(
            format!("{e:#}").contains("more than 40 symbolic links"),
            "{e:#}"
        );
    }

    // QA20 R20-2: the FIFO became a regular file and its reader got nothing.
    #[test]
    fn a_fifo_is_written_to_and_stays_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        // The reader first, without waiting for a writer, so that the
        // write's open does not block (and the test cannot hang).
        let mut reader = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .unwrap()
        };
        let (mut con, _, _) = console();
        // Through a link too.
        std::os::unix::fs::symlink("fifo", dir.path().join("to-fifo")).unwrap();
        con.write_out(&dir.path().join("to-fifo"), b"row 1\n")
            .unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut reader, &mut got).unwrap();
        assert_eq!(got, "row 1\n");
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(names(dir.path()), ["fifo", "to-fifo"]);
    }

    // QA20 R20-2: as root, `--out /dev/full` replaced the system's
    // /dev/full with a regular file and exited 0. Opened for writing
    // only, a device cannot be replaced; its write error is the error.
    #[test]
    fn a_device_is_written_straight_its_error_reported_and_it_stays_a_device() {
        use std::os::unix::fs::MetadataExt as _;
        let before = std::fs::metadata("/dev/full").unwrap();
        let (mut con, _, _) = console();
        assert_eq!(
            target(Path::new("/dev/full"), false).unwrap(),
            Target::Straight("/dev/full".into())
        );
        let e = con.write_out(Path::new("/dev/full"), b"x\n").unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.starts_with("cannot write /dev/full: ")
                && text.contains("No space left on device"),
            "{text}"
        );
        assert_eq!(
            target(Path::new("/dev/null"), false).unwrap(),
            Target::Straight("/dev/null".into())
        );
        con.write_out(Path::new("/dev/null"), b"x\n").unwrap();
        let after = std::fs::metadata("/dev/full").unwrap();
        assert!(after.file_type().is_char_device());
        assert_eq!((after.ino(), after.rdev()), (before.ino(), before.rdev()));
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
        assert!(!Path::new("/dev/.full.tmp").exists() && !Path::new("/dev/full.tmp").exists());
    }

    #[test]
    fn this_process_s_stdout_and_stderr_are_the_console_s() {
        for (path, want) in [
            ("/dev/stdout", Target::Stdout),
            ("/dev/stderr", Target::Stderr),
            ("/dev/fd/1", Target::Stdout),
            ("/proc/self/fd/2", Target::Stderr),
            ("/proc/thread-self/fd/1", Target::Stdout),
        ] {
            assert_eq!(target(Path::new(path), false).unwrap(), want, "{path}");
            assert_eq!(target(Path::new(path), true).unwrap(), want, "{path}");
        }
        let (mut con, out, err) = console();
        con.write_out(Path::new("/dev/stdout"), b"table\n").unwrap();
        con.write_out(Path::new("/dev/stderr"), b"note\n").unwrap();
        assert_eq!(
            (out.text().as_str(), err.text().as_str()),
            ("table\n", "note\n")
        );
    }

    #[test]
    fn another_descriptor_is_written_straight_here_and_refused_in_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("held")).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let path = PathBuf::from(format!("/dev/fd/{fd}"));
        assert!(
            matches!(target(&path, false), Ok(Target::Straight(_))),
            "{:?}",
            target(&path, false)
        );
        let (mut con, _, _) = console();
        con.write_out(&path, b"via fd\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("held")).unwrap(),
            "via fd\n"
        );
        let e = target(&path, true).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("names file descriptor {fd} of the reckon daemon")),
            "{e}"
        );
        drop(file);
    }

    #[test]
    fn a_directory_is_refused_with_a_file_name_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let (mut con, _, _) = console();
        let e = con.write_out(dir.path(), b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{0} is a directory; give a file name in it, with the extension of the --format you ask for (e.g. {0}/report.csv, .json or .html)",
                dir.path().display()
            )
        );
        std::os::unix::fs::symlink(dir.path(), dir.path().join("to-dir")).unwrap();
        let e = con.write_out(&dir.path().join("to-dir"), b"x").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
