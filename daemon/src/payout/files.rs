//! Durable, all-or-nothing replacement of a period's statement directory.
//!
//! A period's files are written into a staging directory next to it (all
//! made durable, then the directory), and the staging directory replaces the
//! period directory in one step: on Linux by `renameat2(RENAME_EXCHANGE)`,
//! which swaps the two names atomically (the staging name then holds the
//! old set, which is removed). Where the exchange is not available (another
//! OS, or a filesystem without it) the old directory is first renamed aside
//! and the staging directory renamed into place, the parent fsynced after
//! each rename; a kill between the two leaves no period directory, which
//! [`recover`] repairs. Every operation on a period, readers included, runs
//! [`recover`] first, so after a kill at any point the period directory is
//! either the complete old set or the complete new set.
//!
//! This module knows nothing of statements: it moves named byte blobs.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A filesystem step failed. The message ends with what to do when the
/// cause is one an operator fixes (a full disk, a read-only filesystem,
/// missing permissions, a symbolic link where a directory must be).
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {error}{}", what_to_do(.error, .path))]
pub struct FileError {
    /// What was being done.
    pub action: &'static str,
    /// The path concerned.
    pub path: String,
    /// The OS error (in the message, not a `source`: error chains would
    /// print it twice).
    pub error: std::io::Error,
}

/// What the operator does about `error` at `path`, as a sentence after the
/// OS error (empty when there is nothing to say). The directory named is
/// the `statements` directory above `path` (the output directory's), else
/// `path`'s parent.
fn what_to_do(error: &std::io::Error, path: &str) -> String {
    use std::io::ErrorKind as K;
    let path = Path::new(path);
    let dir = path
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "statements"))
        .or(path.parent())
        .unwrap_or(path)
        .display();
    let then = "then run the command again (a failed run removes its partial files; the statements and the store are as they were unless the error says otherwise)";
    match error.kind() {
        K::StorageFull | K::QuotaExceeded => format!(
            ". The disk is full: free space on the filesystem holding {dir} (or set daemon.output_dir to a directory on another disk), {then}"
        ),
        K::ReadOnlyFilesystem => format!(
            ". {dir} is on a read-only filesystem: remount it read-write or set daemon.output_dir to a writable directory, {then}"
        ),
        K::PermissionDenied => format!(
            ". This user may not write there: give the user running Reckon (the daemon and `reckon statements` alike) write access to {dir}, or set daemon.output_dir to a writable directory, {then}"
        ),
        _ => String::new(),
    }
}

fn io<T>(r: std::io::Result<T>, action: &'static str, path: &Path) -> Result<T, FileError> {
    r.map_err(|error| FileError {
        action,
        path: path.display().to_string(),
        error,
    })
}

/// fsyncs a directory so renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), FileError> {
    let f = io(File::open(dir), "open directory", dir)?;
    io(f.sync_all(), "fsync directory", dir)
}

/// Refuses `path` when it is a symbolic link (QA10 M4: a symlinked period
/// directory was followed, so a run moved the files of the link's target
/// aside and replaced the link). A missing path is fine (it is created as a
/// real directory). Checked with `lstat` before anything is moved.
pub fn refuse_symlink(path: &Path) -> Result<(), FileError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(FileError {
            action: "refuse",
            path: path.display().to_string(),
            error: std::io::Error::other(format!(
                "it is a symbolic link; the statements, program, period and set-aside directories under daemon.output_dir must be real directories (a statements run moves and replaces files in them, and would do it in the link's target); nothing was moved or written. Remove the link (`rm {}` removes only the link, not what it points to) and run the command again, or point daemon.output_dir itself somewhere else (output_dir may be a symlink)",
                path.display()
            )),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(FileError {
            action: "inspect",
            path: path.display().to_string(),
            error,
        }),
    }
}

fn sibling(period_dir: &Path, suffix: &str) -> PathBuf {
    let name = period_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    period_dir.with_file_name(format!(".{name}.{suffix}"))
}

/// The staging directory of a period directory.
pub fn staging_dir(period_dir: &Path) -> PathBuf {
    sibling(period_dir, "staging")
}

/// Where a swap moves the period's earlier set aside.
pub fn old_dir(period_dir: &Path) -> PathBuf {
    sibling(period_dir, "old")
}

/// Moves the files of `period_dir` that `ours` does not name (a finance
/// team's notes, a signed PDF) into `aside` before the directory is
/// replaced, so writing a period's set never deletes a file Reckon did not
/// write (QA: a notes file vanished, reported as "restored"). A name
/// already taken in `aside` gets `.1`, `.2`, … appended. Returns the names
/// moved, sorted.
pub fn set_aside(
    period_dir: &Path,
    aside: &Path,
    ours: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, FileError> {
    let entries = match fs::read_dir(period_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(FileError {
                action: "list",
                path: period_dir.display().to_string(),
                error,
            })
        }
    };
    let mut foreign = Vec::new();
    for e in entries {
        let name = io(e, "list", period_dir)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !ours(&name) {
            foreign.push(name);
        }
    }
    foreign.sort();
    if foreign.is_empty() {
        return Ok(foreign);
    }
    io(fs::create_dir_all(aside), "create", aside)?;
    for name in &foreign {
        let mut to = aside.join(name);
        let mut n = 0;
        while to.exists() {
            n += 1;
            to = aside.join(format!("{name}.{n}"));
        }
        let from = period_dir.join(name);
        io(fs::rename(&from, &to), "move aside", &from)?;
    }
    sync_dir(aside)?;
    sync_dir(period_dir)?;
    Ok(foreign)
}

/// Repairs an interrupted [`Staging::swap`]. If the period directory is
/// missing but the old one exists (a kill between the two renames of the
/// fallback swap), the swap is completed: the staging directory, made
/// durable before the old set was moved aside and already recorded in the
/// store, becomes the period directory (without one, the old set is put
/// back). Then a leftover old directory and a leftover staging directory
/// (an unfinished write, or the old set after an exchange) are dropped.
/// Cheap when there is nothing to do (two `stat`s).
pub fn recover(period_dir: &Path) -> Result<(), FileError> {
    recover_with(period_dir, Leftovers::Refuse, |d| fs::remove_dir_all(d))
}

/// [`recover`] for a command that only reads the period's files (`show`,
/// `verify`): a leftover old or staging directory that cannot be removed
/// once the period directory is in place is left with a warning, not an
/// error (QA52 M2: on an output filesystem mounted read-only, `verify`
/// refused a period for the staging directory a run cut short had left,
/// which nothing reads). A writer's `recover` still refuses: its staging
/// directory must start empty.
pub fn recover_to_read(period_dir: &Path) -> Result<(), FileError> {
    recover_with(period_dir, Leftovers::Warn, |d| fs::remove_dir_all(d))
}

/// What [`recover_with`] does when a leftover directory cannot be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leftovers {
    /// Fails (a writer).
    Refuse,
    /// Logs a warning and goes on (a reader).
    Warn,
}

/// [`recover`], removing leftover directories with `remove_dir`.
fn recover_with(
    period_dir: &Path,
    leftovers: Leftovers,
    remove_dir: impl Fn(&Path) -> std::io::Result<()>,
) -> Result<(), FileError> {
    let remove = |dir: &Path, what: &'static str| match remove_dir(dir) {
        Err(error)
            if leftovers == Leftovers::Warn && error.kind() != std::io::ErrorKind::NotFound =>
        {
            tracing::warn!(dir = %dir.display(), %error, "directory left behind (nothing reads it); the next statements run that can write there removes it");
            Ok(())
        }
        r => io(r, what, dir),
    };
    let staging = staging_dir(period_dir);
    let old = old_dir(period_dir);
    for dir in [period_dir, &staging, &old] {
        refuse_symlink(dir)?;
    }
    let mut renamed = false;
    if old.exists() {
        if !period_dir.exists() {
            if staging.exists() {
                io(
                    fs::rename(&staging, period_dir),
                    "complete the swap of",
                    &staging,
                )?;
            } else {
                io(fs::rename(&old, period_dir), "restore statements", &old)?;
            }
            renamed = true;
        }
        if old.exists() {
            remove(&old, "remove old statements")?;
        }
    }
    if staging.exists() {
        remove(&staging, "remove stale staging")?;
    }
    if renamed {
        if let Some(parent) = period_dir.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Removes the old set after a swap, or a failed run's staging. Nothing
/// reads either, so a failure is only logged (the next [`recover`] removes
/// the directory).
fn remove_leftover(dir: &Path) {
    if let Err(error) = fs::remove_dir_all(dir) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), %error, "directory left behind; the next statements run removes it");
        }
    }
}

/// Swaps the names of two directories atomically; `Ok(false)` when the
/// system or filesystem cannot (the caller falls back to two renames).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool, FileError> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Ok(false),
        Err(e) => Err(FileError {
            action: "swap in the new statements at",
            path: b.display().to_string(),
            error: e.into(),
        }),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> Result<bool, FileError> {
    Ok(false)
}

/// Files are written by this many threads, so the waits of one file's
/// creation overlap with the others' (the writes are I/O-bound).
const WRITERS: usize = 4;

type WriteJob = (PathBuf, Vec<u8>);

/// A staging directory being filled.
pub struct Staging {
    dir: PathBuf,
    period_dir: PathBuf,
    tx: Option<std::sync::mpsc::SyncSender<WriteJob>>,
    workers: Vec<std::thread::JoinHandle<Result<(), FileError>>>,
}

/// A run that fails before [`Staging::swap`] drops its staging: the
/// writers still queued are waited for, then the staging directory is
/// removed, so a run that failed on a full disk does not keep the space
/// (before 2026-11-29 it stayed until the next run's [`recover`], a QA
/// finding). After a swap, the name holds the old set after an exchange
/// (removed here too) or nothing.
impl Drop for Staging {
    fn drop(&mut self) {
        let _ = self.finish_writes();
        remove_leftover(&self.dir);
    }
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging").field("dir", &self.dir).finish()
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mut f = io(File::create(path), "create", path)?;
    io(f.write_all(bytes), "write", path)
}

impl Staging {
    /// Creates a fresh staging directory for `period_dir` (its parents are
    /// created as needed).
    pub fn new(period_dir: &Path) -> Result<Staging, FileError> {
        recover(period_dir)?;
        let dir = staging_dir(period_dir);
        io(fs::create_dir_all(&dir), "create staging directory", &dir)?;
        // The program and statements directories may be new: make their
        // entries durable too.
        let mut up = period_dir.parent();
        for _ in 0..3 {
            let Some(p) = up else { break };
            sync_dir(p)?;
            up = p.parent();
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<WriteJob>(64);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let workers = (0..WRITERS)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((path, bytes)) = job else {
                        return Ok(());
                    };
                    write_file(&path, &bytes)?;
                })
            })
            .collect();
        Ok(Staging {
            dir,
            period_dir: period_dir.to_path_buf(),
            tx: Some(tx),
            workers,
        })
    }

    /// Queues one file for writing; errors surface at [`Staging::commit`]
    /// (which then leaves the period directory untouched).
    pub fn write(&self, name: &str, bytes: Vec<u8>) -> Result<(), FileError> {
        let path = self.dir.join(name);
        match &self.tx {
            Some(tx) => match tx.send((path, bytes)) {
                Ok(()) => Ok(()),
                // every writer stopped on an error: write here to report it
                Err(std::sync::mpsc::SendError((path, bytes))) => write_file(&path, &bytes),
            },
            None => write_file(&path, &bytes),
        }
    }

    /// Waits for the writers; the first error wins.
    fn finish_writes(&mut self) -> Result<(), FileError> {
        self.tx = None;
        let mut first = Ok(());
        for w in self.workers.drain(..) {
            let r = w.join().unwrap_or_else(|_| {
                Err(FileError {
                    action: "write (writer thread panicked)",
                    path: self.dir.display().to_string(),
                    error: std::io::Error::other("panic"),
                })
            });
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Makes every staged file durable: on Linux one `syncfs` of the
    /// filesystem (one journal commit instead of one per file: a period has
    /// three files per partner), elsewhere an fsync per file; then the
    /// staging directory itself.
    fn sync_all(&self) -> Result<(), FileError> {
        #[cfg(target_os = "linux")]
        {
            let d = io(File::open(&self.dir), "open directory", &self.dir)?;
            io(
                rustix::fs::syncfs(&d).map_err(std::io::Error::from),
                "syncfs",
                &self.dir,
            )?;
        }
        #[cfg(not(target_os = "linux"))]
        {
            for e in io(fs::read_dir(&self.dir), "list", &self.dir)? {
                let p = io(e, "list", &self.dir)?.path();
                let f = io(File::open(&p), "open", &p)?;
                io(f.sync_all(), "fsync", &p)?;
            }
        }
        sync_dir(&self.dir)
    }

    /// Makes the staged files the period directory: [`Staging::stage`]
    /// then [`Staging::swap`]. `step` is called after each durable step
    /// (for crash tests).
    pub fn commit(mut self, step: &dyn Fn(&str)) -> Result<(), FileError> {
        self.stage(step)?;
        self.swap(step)
    }

    /// Waits for every queued file and makes the staging directory
    /// durable; the period directory is untouched.
    pub fn stage(&mut self, step: &dyn Fn(&str)) -> Result<(), FileError> {
        self.finish_writes()?;
        step("written");
        self.sync_all()?;
        step("staged");
        Ok(())
    }

    /// Swaps the staged directory (made durable by [`Staging::stage`]) in
    /// as the period directory.
    pub fn swap(self, step: &dyn Fn(&str)) -> Result<(), FileError> {
        let parent = self.period_dir.parent().map(Path::to_path_buf);
        let sync_parent = || match &parent {
            Some(p) => sync_dir(p),
            None => Ok(()),
        };
        if self.period_dir.exists() && exchange(&self.dir, &self.period_dir)? {
            // the staging name now holds the old set
            sync_parent()?;
            step("swapped");
            remove_leftover(&self.dir);
            return Ok(());
        }
        let old = old_dir(&self.period_dir);
        if self.period_dir.exists() {
            io(
                fs::rename(&self.period_dir, &old),
                "move aside",
                &self.period_dir,
            )?;
            sync_parent()?;
            step("moved-aside");
        }
        io(
            fs::rename(&self.dir, &self.period_dir),
            "rename staging to",
            &self.period_dir,
        )?;
        sync_parent()?;
        step("swapped");
        remove_leftover(&old);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn write_set(period_dir: &Path, content: &str) -> Vec<String> {
        let steps = RefCell::new(Vec::new());
        let s = Staging::new(period_dir).unwrap();
        s.write("a.json", content.as_bytes().to_vec()).unwrap();
        s.commit(&|step| steps.borrow_mut().push(step.to_string()))
            .unwrap();
        steps.into_inner()
    }

    /// QA52 M2: on a read-only output filesystem `verify` refused a period
    /// for a leftover staging directory it could not remove. A reader
    /// leaves it with a warning; a writer still refuses (its staging must
    /// start empty). The filesystem's refusal is given to `recover_with`
    /// (a test cannot mount read-only).
    #[test]
    fn a_leftover_a_reader_cannot_remove_is_left_and_a_writer_refuses() {
        let tmp = tempfile::tempdir().unwrap();
        let period = tmp.path().join("2026-10");
        write_set(&period, "v1");
        fs::create_dir(staging_dir(&period)).unwrap();
        let read_only =
            |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem));
        recover_with(&period, Leftovers::Warn, read_only).unwrap();
        assert!(staging_dir(&period).exists());
        let err = recover_with(&period, Leftovers::Refuse, read_only).unwrap_err();
        assert!(err.to_string().contains("remove stale staging"), "{err}");
        // Where it can, a reader removes it as a writer does.
        recover_to_read(&period).unwrap();
        assert_eq!(names(tmp.path()), ["2026-10"]);
    }

    /// QA finding of 2026-11-29: the swap was two renames, and a kill
    /// between them left no period directory. On Linux it is one atomic
    /// exchange: no step in between, nothing left beside the new set.
    #[cfg(target_os = "linux")]
    #[test]
    fn replacing_a_period_directory_is_one_exchange_on_linux() {
        let tmp = tempfile::tempdir().unwrap();
        let period = tmp.path().join("2026-10");
        write_set(&period, "v1");
        let steps = write_set(&period, "v2");
        assert_eq!(steps, ["written", "staged", "swapped"]);
        assert_eq!(names(tmp.path()), ["2026-10"]);
        assert_eq!(fs::read(period.join("a.json")).unwrap(), b"v2");
    }

    /// QA finding of 2026-11-29: "write …/everflow.201.json: No space left
    /// on device (os error 28)" said what failed, not what to do, and the
    /// staging directory kept the disk full until a rerun.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_on_a_full_disk_says_what_to_do_and_removes_the_staging_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let period = tmp.path().join("statements/shop/2026-10");
        let staging = Staging::new(&period).unwrap();
        // writing to /dev/full fails with ENOSPC
        std::os::unix::fs::symlink("/dev/full", staging_dir(&period).join("a.json")).unwrap();
        staging.write("a.json", vec![b'x'; 10]).unwrap();
        let e = staging.commit(&|_| {}).unwrap_err().to_string();
        assert!(e.contains("No space left on device (os error 28)"), "{e}");
        let statements = tmp.path().join("statements");
        assert!(
            e.contains(&format!(
                "The disk is full: free space on the filesystem holding {}",
                statements.display()
            )),
            "{e}"
        );
        assert!(e.contains("run the command again"), "{e}");
        assert_eq!(names(&statements.join("shop")), Vec::<String>::new());
    }

    #[test]
    fn read_only_and_permission_errors_say_what_to_do() {
        let path = "/srv/out/statements/shop/.2026-10.staging";
        for (kind, words) in [
            (
                std::io::ErrorKind::ReadOnlyFilesystem,
                "/srv/out/statements is on a read-only filesystem: remount it read-write or set daemon.output_dir to a writable directory",
            ),
            (
                std::io::ErrorKind::PermissionDenied,
                "give the user running Reckon (the daemon and `reckon statements` alike) write access to /srv/out/statements",
            ),
        ] {
            let e = FileError {
                action: "create staging directory",
                path: path.into(),
                error: std::io::Error::from(kind),
            }
            .to_string();
            assert!(e.starts_with(&format!("create staging directory {path}: ")), "{e}");
            assert!(e.contains(words), "{e}");
        }
        let other = FileError {
            action: "read",
            path: path.into(),
            error: std::io::Error::from(std::io::ErrorKind::NotADirectory),
        };
        assert!(!other.to_string().contains("run the command again"));
    }

    /// Every state a kill can leave is repaired to one complete set.
    #[test]
    fn recover_leaves_one_complete_set_from_every_interrupted_state() {
        // (directories present, what the period directory holds after)
        let cases: [(&[&str], Option<&str>); 6] = [
            (&["staging"], None),                // first run, killed writing
            (&["period", "staging"], Some("p")), // killed writing, or after an exchange
            (&["old", "staging"], Some("s")),    // between the two renames
            (&["old"], Some("o")),
            (&["period", "old"], Some("p")), // after both renames
            (&["period"], Some("p")),
        ];
        for (present, want) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let period = tmp.path().join("2026-10");
            for (which, path) in [
                ("period", period.clone()),
                ("staging", staging_dir(&period)),
                ("old", old_dir(&period)),
            ] {
                if present.contains(&which) {
                    fs::create_dir(&path).unwrap();
                    fs::write(path.join("a.json"), &which[..1]).unwrap();
                }
            }
            recover(&period).unwrap();
            match want {
                None => assert!(names(tmp.path()).is_empty(), "{present:?}"),
                Some(w) => {
                    assert_eq!(names(tmp.path()), ["2026-10"], "{present:?}");
                    assert_eq!(
                        fs::read_to_string(period.join("a.json")).unwrap(),
                        w,
                        "{present:?}"
                    );
                }
            }
        }
    }
}
