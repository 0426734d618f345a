//! Durable, all-or-nothing replacement of a period's statement directory.
//!
//! A period's files are written into a staging directory next to it (all
//! made durable, then the directory), and the staging directory replaces the
//! period directory by rename (the old one is first renamed aside, the parent
//! fsynced after each rename). [`recover`] runs before every operation and
//! undoes a half-finished swap, so after a kill at any point the period
//! directory is either the complete old set or the complete new set.
//!
//! This module knows nothing of statements: it moves named byte blobs.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A filesystem step failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {error}")]
pub struct FileError {
    /// What was being done.
    pub action: &'static str,
    /// The path concerned.
    pub path: String,
    /// The OS error (in the message, not a `source`: error chains would
    /// print it twice).
    pub error: std::io::Error,
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

fn old_dir(period_dir: &Path) -> PathBuf {
    sibling(period_dir, "old")
}

/// Undoes an interrupted [`Staging::commit`]: drops a leftover staging
/// directory; if the period directory is missing but the old one exists,
/// puts the old one back; otherwise drops the old one.
pub fn recover(period_dir: &Path) -> Result<(), FileError> {
    let staging = staging_dir(period_dir);
    if staging.exists() {
        io(
            fs::remove_dir_all(&staging),
            "remove stale staging",
            &staging,
        )?;
    }
    let old = old_dir(period_dir);
    if old.exists() {
        if period_dir.exists() {
            io(fs::remove_dir_all(&old), "remove old statements", &old)?;
        } else {
            io(fs::rename(&old, period_dir), "restore statements", &old)?;
        }
        if let Some(parent) = period_dir.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
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

/// A run that fails before [`Staging::commit`] drops its staging: the
/// writers still queued are waited for, so that the next run's
/// [`recover`] does not race them (it would find files appearing in the
/// directory it removes).
impl Drop for Staging {
    fn drop(&mut self) {
        let _ = self.finish_writes();
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
        let old = old_dir(&self.period_dir);
        if self.period_dir.exists() {
            io(
                fs::rename(&self.period_dir, &old),
                "move aside",
                &self.period_dir,
            )?;
            if let Some(p) = &parent {
                sync_dir(p)?;
            }
            step("moved-aside");
        }
        io(
            fs::rename(&self.dir, &self.period_dir),
            "rename staging to",
            &self.period_dir,
        )?;
        if let Some(p) = &parent {
            sync_dir(p)?;
        }
        step("swapped");
        if old.exists() {
            io(fs::remove_dir_all(&old), "remove old statements", &old)?;
        }
        Ok(())
    }
}
