//! Whether `[daemon] data_dir` and `output_dir` can be used by this
//! process: each must be a directory it can write, or, when it does not
//! exist yet, have a nearest existing ancestor that is one (the directory
//! is created when missing). A store already in `data_dir` (its lock file,
//! `store/` and the files in it) must be writable too: sled opens them for
//! writing, even for a command that only reads.
//!
//! Checked by [`crate::schedule::Runtime::resolve`], so by `reckon config
//! check`, `reckon run` and SIGHUP alike, for the user running the command
//! (effective uid and gid: `faccessat(AT_EACCESS)`).
//!
//! What it is not: it creates, opens and changes nothing (no probe file).
//! So it cannot see everything a write would meet: a full disk, a quota, or
//! a filesystem whose permission bits lie (FUSE, NFS with root squash). The
//! one place a privileged user's `access` answers "writable" where nothing
//! can ever be created, the kernel's pseudo-filesystems (`/proc`, `/sys`,
//! ...), is recognised by its filesystem type.
use super::{Config, ConfigError};
use std::path::{Path, PathBuf};

/// Every problem of `data_dir` and `output_dir`, as config errors at
/// `daemon.data_dir` / `daemon.output_dir` of `cfg`'s file.
pub fn problems(cfg: &Config) -> Vec<ConfigError> {
    ["data_dir", "output_dir"]
        .into_iter()
        .filter_map(|key| problem(cfg, key))
        .collect()
}

/// [`problems`] of `output_dir` alone: `statements generate|finalize`
/// check it before they reconcile (QA28-A F3: they wrote the store first,
/// then failed on the directory).
pub fn output_dir_problem(cfg: &Config) -> Option<ConfigError> {
    problem(cfg, "output_dir")
}

fn problem(cfg: &Config, key: &str) -> Option<ConfigError> {
    let dir = match key {
        "data_dir" => &cfg.daemon.data_dir,
        _ => &cfg.daemon.output_dir,
    };
    let path = format!("daemon.{key}");
    // A key the file does not set is the default, relative to the config
    // file: say so, or the error points at a value nobody wrote.
    let default = if cfg.source.sets(&path) {
        ""
    } else {
        "not set, so the default: "
    };
    directory_problem(dir)
        .map(|what| {
            format!(
                "{default}{what}; point `{key}` at a directory this user can write (it is created when missing; relative paths are relative to the config file), or fix the permissions or mount"
            )
        })
        .or_else(|| (key == "data_dir").then(|| store_problem(dir)).flatten())
        .map(|message| cfg.source.error(&path, message))
}

/// What is wrong with `dir` as a directory to write in, if anything.
fn directory_problem(dir: &Path) -> Option<String> {
    let (existing, meta) = match nearest_existing(dir) {
        Ok(found) => found,
        Err((at, e)) => {
            return Some(format!(
                "{} cannot be looked at: {}: {e}",
                dir.display(),
                at.display()
            ))
        }
    };
    let why = if !meta.is_dir() {
        // `dir` itself not being a directory is a parse error already.
        "is not a directory".to_owned()
    } else if let Some(fs) = pseudo_filesystem(&existing) {
        format!("is on the kernel's `{fs}` pseudo-filesystem, where no directory can be created")
    } else if let Err(e) = writable(&existing) {
        // Whose it is and the command that fixes it (new-user QA16 N3:
        // root had made `data_dir`, and the daemon's refusal named
        // neither).
        let fix = if e.raw_os_error() == Some(30) {
            // QA28-A F2: `chmod u+rwx` does nothing on a read-only mount.
            ": its filesystem is mounted read-only: remount it read-write (`mount -o remount,rw` on its mount point, or fix `/etc/fstab`)".to_owned()
        } else if existing == dir {
            take_over(dir, &meta)
        } else {
            format!(
                "; create {} for this user as root: `install -d -o {} -g {} -m 0750 {}`",
                dir.display(),
                this_user(),
                this_group(),
                shown_absolute(dir)
            )
        };
        format!(
            "is not writable by this user ({}): {e}{}{fix}",
            whoami(),
            owned_by(&meta)
        )
    } else {
        return None;
    };
    Some(if existing == dir {
        format!("{} {why}", dir.display())
    } else {
        // `.` (or another relative path) alone says little: add where it is.
        let shown = match std::path::absolute(&existing) {
            Ok(abs) if existing.is_relative() => {
                format!("{} ({})", existing.display(), abs.display())
            }
            _ => existing.display().to_string(),
        };
        format!(
            "{} does not exist and cannot be created: its nearest existing ancestor {shown} {why}",
            dir.display(),
        )
    })
}

/// The files of a store already in `data_dir` that this user cannot write.
fn store_problem(data_dir: &Path) -> Option<String> {
    let store = data_dir.join("store");
    let mut paths = vec![data_dir.join("reckon.lock"), store.clone()];
    if let Ok(entries) = std::fs::read_dir(&store) {
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        paths.extend(files);
    }
    let refused: Vec<String> = paths
        .iter()
        .filter(|p| p.exists())
        .filter_map(|p| {
            let owner = std::fs::metadata(p)
                .map(|m| owned_by(&m))
                .unwrap_or_default();
            writable(p)
                .err()
                .map(|e| format!("{} ({e}{owner})", p.display()))
        })
        .collect();
    if refused.is_empty() {
        return None;
    }
    Some(format!(
        "the store in {} is not writable by this user ({}): {}; reckon opens its store for writing, also for commands that only read it: run reckon as the user that owns the store, or give this user write access: as root, `chown -R {}:{} {}`",
        data_dir.display(),
        whoami(),
        refused.join(", "),
        this_user(),
        this_group(),
        shown_absolute(data_dir)
    ))
}

/// `; it belongs to root:root, mode 0755`, for a refused path.
pub fn owned_by(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let owner = user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid()));
    let group = group_name(meta.gid()).unwrap_or_else(|| format!("gid {}", meta.gid()));
    format!(
        "; it belongs to {owner}:{group}, mode {:04o}",
        meta.mode() & 0o7777
    )
}

/// How this user gets to write the existing directory `dir`: its owner
/// adds the mode bits; root's directory (made by a command run as root) is
/// given to this user; another user's is that user's to use (QA48 I-M2:
/// the first advice to a user refused the service user's data directory
/// was to `chown` it, which would take it from a daemon running as that
/// user).
pub fn take_over(dir: &Path, meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let chown = format!(
        "`chown -R {}:{} {}`",
        this_user(),
        this_group(),
        shown_absolute(dir)
    );
    if meta.uid() == rustix::process::geteuid().as_raw() {
        format!(": `chmod u+rwx {}`", shown_absolute(dir))
    } else if meta.uid() == 0 {
        format!(": as root, {chown} gives it to this user")
    } else {
        let owner = user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid()));
        format!(
            ": run reckon as {owner}, the user it belongs to (`sudo -u {owner} reckon …`; a daemon on it runs as that user); only to give it to this user instead, and never while a daemon runs as {owner}, as root {chown}"
        )
    }
}

/// `dir` as an absolute path, for a command to paste in any directory.
fn shown_absolute(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// This process's user for `chown` and `install -o`: its name, or its uid.
fn this_user() -> String {
    let uid = rustix::process::geteuid().as_raw();
    user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// This process's group for `chown` and `install -g`: its name, or its gid.
fn this_group() -> String {
    let gid = rustix::process::getegid().as_raw();
    group_name(gid).unwrap_or_else(|| gid.to_string())
}

/// The nearest of `dir` and its ancestors that exists (a relative path's
/// last ancestor is the working directory), with its metadata; or the
/// ancestor that could not be looked at and why.
fn nearest_existing(dir: &Path) -> Result<(PathBuf, std::fs::Metadata), (PathBuf, std::io::Error)> {
    for a in dir.ancestors() {
        let a = if a.as_os_str().is_empty() {
            Path::new(".")
        } else {
            a
        };
        match std::fs::metadata(a) {
            Ok(m) => return Ok((a.to_path_buf(), m)),
            // Missing, or under a file (ENOTDIR): look further up.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(20) => {}
            Err(e) => return Err((a.to_path_buf(), e)),
        }
    }
    Err((dir.to_path_buf(), std::io::ErrorKind::NotFound.into()))
}

/// The first path under `dir` (itself, then its entries and theirs, in
/// name order) this user cannot write: sled's I/O errors do not name the
/// file they failed on (QA28-A F1: a root-owned `store/db` was reported as
/// `store/`, the user's own directory, with a fix that did nothing).
pub fn first_unwritable(dir: &Path) -> Option<PathBuf> {
    if writable(dir).is_err() {
        return Some(dir.to_path_buf());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries.into_iter().find_map(|p| {
        if p.is_dir() {
            first_unwritable(&p)
        } else {
            writable(&p).is_err().then_some(p)
        }
    })
}

/// `Ok` if this process may create entries in `path` (a directory) or
/// write it (a file), by its effective uid and gid; a read-only mount is
/// refused too (`EROFS`).
fn writable(path: &Path) -> std::io::Result<()> {
    use rustix::fs::{Access, AtFlags, CWD};
    let mode = if path.is_dir() {
        Access::WRITE_OK | Access::EXEC_OK
    } else {
        Access::WRITE_OK
    };
    rustix::fs::accessat(CWD, path, mode, AtFlags::EACCESS).map_err(std::io::Error::from)
}

/// The name of the kernel pseudo-filesystem `path` is on, if it is one:
/// nobody, root included, creates a directory there, though `access`
/// says root may.
fn pseudo_filesystem(path: &Path) -> Option<&'static str> {
    let kind = rustix::fs::statfs(path).ok()?.f_type as u64 & 0xffff_ffff;
    const PSEUDO: &[(u64, &str)] = &[
        (0x9fa0, "proc"),
        (0x6265_6572, "sysfs"),
        (0x0027_e0eb, "cgroup"),
        (0x6367_7270, "cgroup2"),
        (0x1cd1, "devpts"),
        (0x6462_6720, "debugfs"),
        (0x7472_6163, "tracefs"),
        (0x7363_6673, "securityfs"),
        (0xcafe_4a11, "bpf"),
    ];
    PSEUDO
        .iter()
        .find(|(magic, _)| *magic == kind)
        .map(|(_, name)| *name)
}

/// The name of user `uid` in `/etc/passwd`, if it is there (users only
/// known to NSS, LDAP say, are not looked up).
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// The name of group `gid` in `/etc/group`, if it is there.
pub fn group_name(gid: u32) -> Option<String> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == gid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// Who may read `path`, for a "Permission denied" on it (ops QA13 OPS-19:
/// another user got the bare error): its owner, group and mode, and the
/// command to run as a user who may read it (the group's namesake user
/// when the group may read it and such a user exists, as `reckon` for the
/// installed `root:reckon 0640` config; else the owner).
pub fn unreadable_hint(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return String::new();
    };
    let owner = user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid()));
    let group = group_name(meta.gid()).unwrap_or_else(|| format!("gid {}", meta.gid()));
    let by_group = (meta.mode() & 0o040 != 0)
        .then(|| group_name(meta.gid()))
        .flatten()
        .filter(|g| {
            std::fs::read_to_string("/etc/passwd")
                .is_ok_and(|p| p.lines().any(|l| l.split(':').next() == Some(g.as_str())))
        });
    let who = by_group.unwrap_or_else(|| sudo_user(meta.uid()));
    format!(
        "; it is {owner}:{group}, mode {:04o}: run reckon as a user who may read it, e.g. `sudo -u {who} {}`",
        meta.mode() & 0o7777,
        this_command_line()
    )
}

/// `sudo -u` argument for `uid`: its name, or `#uid` (sudo's form for a
/// user without a name).
pub fn sudo_user(uid: u32) -> String {
    user_name(uid).unwrap_or_else(|| format!("'#{uid}'"))
}

/// This process's command line, quoted for a shell where needed, for a
/// message that says to run it again another way.
pub fn this_command_line() -> String {
    std::env::args()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_./=:@%+,-".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "uid 1000, gid 1000", for messages.
fn whoami() -> String {
    format!(
        "uid {}, gid {}",
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw()
    )
}

#[cfg(test)]
mod tests {
    /// QA48 I-M2: another user's directory (a service user's data
    /// directory) is that user's to use; root's is given to this user.
    #[test]
    fn another_users_directory_is_theirs_to_use() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mine = std::fs::metadata(dir.path()).unwrap();
        assert!(super::take_over(dir.path(), &mine).starts_with(": `chmod u+rwx "));
        if rustix::process::geteuid().as_raw() != 0 {
            return; // Only root can give a directory to another user.
        }
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let meta = std::fs::metadata(&theirs).unwrap();
        assert_eq!(meta.uid(), 65534);
        let owner = super::user_name(65534).unwrap_or_else(|| "uid 65534".into());
        let advice = super::take_over(&theirs, &meta);
        assert!(
            advice.starts_with(&format!(
                ": run reckon as {owner}, the user it belongs to (`sudo -u {owner} reckon …`"
            )),
            "{advice}"
        );
        assert!(
            advice.contains(&format!(
                "never while a daemon runs as {owner}, as root `chown -R "
            )),
            "{advice}"
        );
    }

    use super::*;

    #[test]
    fn a_missing_directory_under_a_writable_one_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(directory_problem(&tmp.path().join("a/b/c")), None);
        assert_eq!(directory_problem(tmp.path()), None);
        assert!(
            !tmp.path().join("a").exists(),
            "the check created something"
        );
    }

    #[test]
    fn a_directory_under_proc_can_never_be_created() {
        let what = directory_problem(Path::new("/proc/nope/deeper")).unwrap();
        assert!(
            what.contains("/proc/nope/deeper does not exist and cannot be created")
                && what.contains("nearest existing ancestor /proc"),
            "{what}"
        );
    }

    #[test]
    fn a_directory_under_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let what = directory_problem(&file.join("data")).unwrap();
        assert!(
            what.contains(&format!(
                "nearest existing ancestor {} is not a directory",
                file.display()
            )),
            "{what}"
        );
    }

    #[test]
    fn a_relative_path_is_looked_up_from_the_working_directory() {
        let (found, meta) = nearest_existing(Path::new("no-such-dir-reckon-test/x")).unwrap();
        assert_eq!(found, Path::new("."));
        assert!(meta.is_dir());
    }
}
