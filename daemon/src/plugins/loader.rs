//! The loader: the only place in Reckon that calls `dlopen`, and the only
//! place that calls through a plugin's C function table.
//!
//! A library is accepted only after every check, in this order: the plugin
//! directory is not writable by every user, nor a directory above it without
//! a sticky bit ([`check_plugin_dir`]), the library lies in
//! the plugin directory (a symlink may not lead outside it), it is a regular
//! file that is not world-writable, its SHA-256 matches the pin (hashed
//! *before* `dlopen`, through the one open file that `dlopen` then loads:
//! see [`LibraryFile`]), it is a loadable library, it exports
//! [`ENTRY_SYMBOL`], and its header passes [`check_header`] field by field
//! (magic, header size, ABI major, target, protocol version). Then the plugin
//! describes itself, within a deadline and where [`super::describe`] says (a
//! `reckon plugin-host --describe` child, or a thread when the caller is not
//! the `reckon` binary), and its manifest id must equal the header's id.
//!
//! What `dlopen` maps is never the user's file itself but a private, sealed
//! copy of the bytes that were hashed ([`PrivateCopy`]): a plugin rebuilt
//! and copied over the loaded file (`cp` rewrites the same inode) cannot
//! change the code mapped in this process (QA42a A-H1: the daemon crashed
//! with SIGSEGV at the next in-process run, or at its exit). Whether the
//! file at the path is still the one loaded is checked before each session
//! ([`replaced_since_loaded`]).
//!
//! Libraries are never unloaded: a loaded [`libloading::Library`] is leaked,
//! so the function pointers in [`PluginFns`] stay valid for the life of the
//! process. Loads are cached by (canonical path, SHA-256), so a sync that
//! loads its plugin on every run does not `dlopen` again.
//!
//! What this is not: no session logic (see `session`), no process isolation
//! (see `transport`).
#![allow(unsafe_code)]

use super::describe::{DescribeFailure, DescribeHost, DescribeOptions};
pub use super::manifest::check_manifest;
use super::{LoadError, Plugin};
use plugin_api::abi::{
    write_to_vec, FunctionTable, PluginHeader, ABI_MAJOR, ENTRY_SYMBOL, FLAG_PANIC_UNWIND,
    HEADER_SIZE_WITH_BUILD, MAGIC, MIN_HEADER_SIZE, PROTOCOL_FINGERPRINT, STATUS_OK, STATUS_PANIC,
    TARGET,
};
use plugin_api::protocol::{Manifest, PluginError, PROTOCOL_VERSION};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

fn refused(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Refused {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The plugin's functions, valid forever (the library is never unloaded).
#[derive(Debug, Clone, Copy)]
pub struct PluginFns {
    table: FunctionTable,
}

/// What a plugin call returned: the ABI status and the bytes it wrote.
#[derive(Debug)]
pub struct CallOutput {
    /// `STATUS_OK`, `STATUS_ERROR` or `STATUS_PANIC` (anything else is a bug).
    pub status: i32,
    /// Actions JSON on success, a JSON `PluginError` otherwise.
    pub bytes: Vec<u8>,
}

/// An open plugin session instance. Owned by exactly one thread at a time;
/// closed exactly once by [`PluginFns::close`].
#[derive(Debug)]
pub struct Instance(*mut c_void);

// SAFETY: the SDK's session object is only ever touched by the one thread
// that currently owns the `Instance` (calls are never concurrent); moving it
// between threads is what the ABI allows.
unsafe impl Send for Instance {}

/// Function table of a plugin known only by its manifest: every call fails.
unsafe extern "C" fn unavailable_describe(w: plugin_api::abi::WriteFn, ctx: *mut c_void) -> i32 {
    unavailable_error(w, ctx)
}
unsafe extern "C" fn unavailable_open(
    _input: *const u8,
    _len: usize,
    _out: *mut *mut c_void,
    w: plugin_api::abi::WriteFn,
    ctx: *mut c_void,
) -> i32 {
    unavailable_error(w, ctx)
}
unsafe extern "C" fn unavailable_step(
    _handle: *mut c_void,
    _input: *const u8,
    _len: usize,
    w: plugin_api::abi::WriteFn,
    ctx: *mut c_void,
) -> i32 {
    unavailable_error(w, ctx)
}
unsafe extern "C" fn unavailable_close(_handle: *mut c_void) {}

fn unavailable_error(w: plugin_api::abi::WriteFn, ctx: *mut c_void) -> i32 {
    let err = PluginError::new(
        plugin_api::ErrorKind::Internal,
        "this plugin was described from its manifest only; it has no library to run",
    );
    let bytes = serde_json::to_vec(&err).unwrap_or_default();
    // SAFETY: `w` and `ctx` are the host's writer for this call; the slice is live.
    unsafe { w(ctx, bytes.as_ptr(), bytes.len()) };
    plugin_api::abi::STATUS_ERROR
}

impl PluginFns {
    /// A table whose every call fails cleanly (see [`Plugin::from_manifest`]).
    pub(crate) fn unavailable() -> PluginFns {
        PluginFns {
            table: FunctionTable {
                describe: unavailable_describe,
                session_open: unavailable_open,
                session_step: unavailable_step,
                session_close: unavailable_close,
            },
        }
    }

    /// Calls `describe`.
    pub fn describe(&self) -> CallOutput {
        let mut out = Vec::new();
        // SAFETY: the function pointer comes from a header that passed every
        // check and a library that is never unloaded; `write_to_vec` gets a
        // live `&mut Vec<u8>` as its context for the duration of the call.
        let status =
            unsafe { (self.table.describe)(write_to_vec, &mut out as *mut Vec<u8> as *mut c_void) };
        CallOutput { status, bytes: out }
    }

    /// Calls `session_open` with a JSON `SessionOpen`.
    pub fn open(&self, input: &[u8]) -> Result<Instance, CallOutput> {
        let mut out = Vec::new();
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: as in `describe`; `input` is a live slice for the call and
        // `handle` a valid out-pointer.
        let status = unsafe {
            (self.table.session_open)(
                input.as_ptr(),
                input.len(),
                &mut handle,
                write_to_vec,
                &mut out as *mut Vec<u8> as *mut c_void,
            )
        };
        if status == STATUS_OK && !handle.is_null() {
            Ok(Instance(handle))
        } else {
            Err(CallOutput {
                status: if status == STATUS_OK {
                    STATUS_PANIC
                } else {
                    status
                },
                bytes: out,
            })
        }
    }

    /// Calls `session_step` with one event frame.
    pub fn step(&self, instance: &mut Instance, frame: &[u8]) -> CallOutput {
        let mut out = Vec::new();
        // SAFETY: `instance` came from `session_open` of this table, is not
        // closed (closing consumes it) and is used by this thread only.
        let status = unsafe {
            (self.table.session_step)(
                instance.0,
                frame.as_ptr(),
                frame.len(),
                write_to_vec,
                &mut out as *mut Vec<u8> as *mut c_void,
            )
        };
        CallOutput { status, bytes: out }
    }

    /// Calls `session_close`, consuming the instance.
    pub fn close(&self, instance: Instance) {
        // SAFETY: the instance came from `session_open` of this table and is
        // consumed here, so it is closed exactly once.
        unsafe { (self.table.session_close)(instance.0) }
    }
}

/// The header fields the host checks, copied out of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFields {
    /// `magic`.
    pub magic: u64,
    /// `header_size`.
    pub header_size: u32,
    /// `abi_major`.
    pub abi_major: u16,
    /// `abi_minor`.
    pub abi_minor: u16,
    /// `flags`.
    pub flags: u32,
    /// `protocol_fingerprint` (0: built before it existed).
    pub protocol_fingerprint: u32,
    /// `plugin_id`.
    pub plugin_id: String,
    /// `plugin_version`.
    pub plugin_version: String,
    /// `protocol_version`.
    pub protocol_version: String,
    /// `target`.
    pub target: String,
    /// `build` (ABI 1.1), `None` when `header_size` ends before it (a
    /// plugin built before the stamp).
    pub build: Option<String>,
}

/// Checks the fixed-size prefix (magic, header size, ABI major) that is read
/// before anything else. The error names the field.
pub fn check_header_prefix(magic: u64, header_size: u32, abi_major: u16) -> Result<(), String> {
    if magic != MAGIC {
        return Err(format!(
            "header field `magic` is {magic:#018x}, expected {MAGIC:#018x} (\"RECKONPL\"): not a Reckon plugin"
        ));
    }
    if (header_size as usize) < MIN_HEADER_SIZE {
        return Err(format!(
            "header field `header_size` is {header_size} bytes, shorter than the {MIN_HEADER_SIZE} bytes of ABI {ABI_MAJOR}.0: header too short"
        ));
    }
    if abi_major != ABI_MAJOR {
        return Err(format!(
            "header field `abi_major` is {abi_major}, this reckon speaks ABI {ABI_MAJOR}: rebuild the plugin against a matching plugin-api"
        ));
    }
    Ok(())
}

/// Checks a whole header. The error names the field that mismatched.
pub fn check_header(h: &HeaderFields) -> Result<(), String> {
    check_header_prefix(h.magic, h.header_size, h.abi_major)?;
    if h.target != TARGET {
        return Err(format!(
            "header field `target` is `{}`, this reckon runs on `{TARGET}`: target mismatch",
            h.target
        ));
    }
    if h.protocol_version != PROTOCOL_VERSION {
        return Err(format!(
            "header field `protocol_version` is `{}`, this reckon speaks protocol `{PROTOCOL_VERSION}`: rebuild the plugin against the plugin-api of this reckon",
            h.protocol_version
        ));
    }
    if h.protocol_fingerprint != 0 && h.protocol_fingerprint != PROTOCOL_FINGERPRINT {
        return Err(format!(
            "header field `protocol_fingerprint` is {:#010x}, this reckon's is {PROTOCOL_FINGERPRINT:#010x}: the plugin was built against a plugin-api whose records and messages differ from this reckon's (another release, or a changed copy); rebuild it against the plugin-api of this reckon",
            h.protocol_fingerprint
        ));
    }
    if h.plugin_id.is_empty() {
        return Err("header field `plugin_id` is empty".into());
    }
    Ok(())
}

/// SHA-256 of a file's bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of everything `reader` yields, lower-case hex (streamed, so a
/// library is never held in memory whole).
pub fn sha256_of(mut reader: impl std::io::Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut reader, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// A file's identity as `fstat` gives it: device, inode, size, and the
/// modification and change times to the nanosecond. Writing into a file
/// sets its change time (which no user can set back), so bytes hashed
/// under one identity are the bytes of any file with that identity.
#[cfg(unix)]
type FileIdentity = (u64, u64, u64, i64, i64, i64, i64);

/// The SHA-256 of `file` (read through it), remembered by the file's
/// identity for the rest of the process: finding a plugin by id opens
/// every library in the directory, and `config check` does that once per
/// connector (QA29-D L4: a config with 100 connectors whose plugin was
/// missing hashed every library 100 times, 21 s). A file changed less
/// than [`RACY_SECS`] before `now` is hashed and not remembered: a second
/// write within its file system's clock tick would leave its times as
/// they were.
fn file_sha256(
    file: &std::fs::File,
    meta: &std::fs::Metadata,
    now: i64,
) -> std::io::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let id = identity(meta);
        if let Some(sha) = KNOWN
            .lock()
            .ok()
            .and_then(|k| k.as_ref()?.get(&id).cloned())
        {
            return Ok(sha);
        }
        let sha = sha256_of(file)?;
        if now - meta.ctime().max(meta.mtime()) >= RACY_SECS {
            if let Ok(mut known) = KNOWN.lock() {
                let known = known.get_or_insert_with(HashMap::new);
                // Bounded: a directory of libraries rewritten all day does
                // not grow it without end.
                if known.len() >= 4096 {
                    known.clear();
                }
                known.insert(id, sha.clone());
            }
        }
        Ok(sha)
    }
    #[cfg(not(unix))]
    {
        let _ = (meta, now);
        sha256_of(file)
    }
}

/// The SHA-256 of the file at `path`, as [`file_sha256`] (remembered).
pub fn sha256_of_path(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    file_sha256(&file, &meta, unix_now())
}

/// See [`file_sha256`].
const RACY_SECS: i64 = 2;

/// What [`file_sha256`] remembers.
#[cfg(unix)]
static KNOWN: Mutex<Option<HashMap<FileIdentity, String>>> = Mutex::new(None);

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> FileIdentity {
    use std::os::unix::fs::MetadataExt;
    (
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A library file opened once: its SHA-256 is computed from this open file
/// and [`open_library`] loads a private copy of this same file's bytes
/// ([`LibraryFile::private_copy`]), so neither a file swapped in at the
/// path after the hash was taken nor a write into the file after it is
/// ever what gets mapped.
///
/// Off Linux (and on Linux without `/proc`) there is no copy: `dlopen` is
/// given the path again, so a file renamed over it between the hash and
/// the `dlopen` is loaded unverified (a window of milliseconds that needs
/// write access to the plugin directory, which the directory and permission
/// checks deny), and a write into the loaded file changes the mapped code.
#[derive(Debug)]
pub struct LibraryFile {
    file: std::fs::File,
    path: PathBuf,
    sha256: String,
}

impl LibraryFile {
    /// Opens `path` (refusing a symlink as its last component: callers pass
    /// canonical paths, so one there was swapped in), checks through the
    /// open file that it is a regular file and not world-writable, and
    /// hashes it through the same descriptor. With `pin`, a different hash
    /// is refused before anything is loaded.
    pub fn open(path: &Path, pin: Option<&str>) -> Result<Self, LoadError> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let file = options
            .open(path)
            .map_err(|e| refused(path, format!("cannot open: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| refused(path, format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(refused(path, "not a regular file"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            if meta.permissions().mode() & 0o002 != 0 {
                return Err(refused(
                    path,
                    "file is world-writable; anyone could replace the code: `chmod o-w` it",
                ));
            }
            if let Some(why) = foreign_owner(meta.uid()) {
                return Err(refused(
                    path,
                    format!("{why}; its owner can change the code Reckon runs: `chown root` it"),
                ));
            }
        }
        let sha256 = file_sha256(&file, &meta, unix_now())
            .map_err(|e| refused(path, format!("cannot read: {e}")))?;
        if let Some(pin) = pin {
            if !pin.eq_ignore_ascii_case(&sha256) {
                return Err(refused(
                    path,
                    format!("sha256 mismatch: pinned {pin}, file has {sha256}; not loaded"),
                ));
            }
        }
        Ok(LibraryFile {
            file,
            path: path.to_path_buf(),
            sha256,
        })
    }

    /// SHA-256 of the bytes read through the open file, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The path it was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `dlopen` is to map: on Linux, a sealed memfd holding a copy of
    /// the bytes read through this open file, hashed as they are copied
    /// and refused unless they hash to [`LibraryFile::sha256`] (the file
    /// was being written meanwhile); it is named `/proc/self/fd/N`. Nothing
    /// written to the plugin file later reaches it, and the seals keep
    /// anyone from writing into the copy. The cost: each loaded library
    /// holds its whole file (debug info included) in memory, once per
    /// process that loads it. Elsewhere, or without `/proc`, the file
    /// itself by its path (a warning says so on Linux).
    pub fn private_copy(self) -> Result<PrivateCopy, LoadError> {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};
            use std::os::fd::AsRawFd;
            let path = self.path.as_path();
            let name = path.file_name().unwrap_or_default();
            let copy = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
                .map_err(|e| refused(path, format!("cannot make the private copy to load: {e}")))?;
            let copy = std::fs::File::from(copy);
            let copied = copy_hashed(&self.file, &copy)
                .map_err(|e| refused(path, format!("cannot make the private copy to load: {e}")))?;
            if copied != self.sha256 {
                return Err(refused(
                    path,
                    format!(
                        "the file changed while it was being loaded (it hashed to {}, then read as {copied}): \
                         a copy or build still writing it? Try again once it is complete, and put a new \
                         build in place with `install` or a rename, not by copying over the file",
                        self.sha256
                    ),
                ));
            }
            // F_SEAL_FUTURE_WRITE (Linux 5.1): no write to the copy from
            // now on. F_SEAL_WRITE first waits for the kernel to drop its
            // own references to the pages just written, and under load
            // gave up with EBUSY now and then (a pin of a page still in
            // another CPU's batch: `plugins check` refused a sound plugin,
            // "cannot seal its private copy: Device or resource busy");
            // it is the fallback on kernels without FUTURE_WRITE, retried.
            let seal = |write: SealFlags| {
                fcntl_add_seals(
                    &copy,
                    SealFlags::SHRINK | SealFlags::GROW | write | SealFlags::SEAL,
                )
            };
            let mut sealed = seal(SealFlags::FUTURE_WRITE);
            if sealed == Err(rustix::io::Errno::INVAL) {
                sealed = seal(SealFlags::WRITE);
                for wait_ms in [1, 5, 20, 50, 100, 200] {
                    if sealed != Err(rustix::io::Errno::BUSY) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(wait_ms));
                    sealed = seal(SealFlags::WRITE);
                }
            }
            sealed.map_err(|e| refused(path, format!("cannot seal its private copy: {e}")))?;
            let by_fd = PathBuf::from(format!("/proc/self/fd/{}", copy.as_raw_fd()));
            if by_fd.exists() {
                return Ok(PrivateCopy {
                    file: copy,
                    dlopen_path: by_fd,
                });
            }
            tracing::warn!(path = %path.display(),
                "/proc is not mounted: loading the plugin by its path, so a file renamed over it after its hash was checked would be loaded unverified, and a build copied over it later would change the code this process runs");
        }
        Ok(PrivateCopy {
            dlopen_path: self.path.clone(),
            file: self.file,
        })
    }
}

/// What [`open_library`] hands `dlopen` (see [`LibraryFile::private_copy`]):
/// the open file and the name `dlopen` is given for it.
#[derive(Debug)]
pub struct PrivateCopy {
    file: std::fs::File,
    dlopen_path: PathBuf,
}

impl PrivateCopy {
    /// The name `dlopen` is given (`/proc/self/fd/N` for a copy).
    pub fn dlopen_path(&self) -> &Path {
        &self.dlopen_path
    }
}

/// Copies everything `from` holds (from its start) into `to`, returning the
/// SHA-256 of the bytes copied.
#[cfg(target_os = "linux")]
fn copy_hashed(from: &std::fs::File, mut to: &std::fs::File) -> std::io::Result<String> {
    use std::io::{Read, Seek, Write};
    let mut from = from;
    from.seek(std::io::SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Why the plugin file at `path` is no longer the library loaded from it
/// with SHA-256 `loaded`: a new build was put in its place (by a copy over
/// it or a rename), or it was removed. `None` while it holds the same
/// bytes. Checked before each session, in-process or in a child (QA42a
/// A-H1), and by the `plugin-host` child before it loads anything (QA33-A
/// L2: an upgrade under a running daemon read as "sha256 mismatch:
/// pinned …" with no pin configured). The hash is remembered by the file's
/// identity (`file_sha256`), so an unchanged file costs an `fstat`.
pub fn replaced_since_loaded(path: &Path, loaded: &str) -> Option<String> {
    match sha256_of_path(path) {
        Ok(now) if now.eq_ignore_ascii_case(loaded) => None,
        Ok(now) => Some(format!(
            "{} was replaced since reckon loaded it (loaded sha256 {loaded}, the file now has {now}); \
             restart reckon, or reload it (SIGHUP), to load the new file",
            path.display()
        )),
        Err(e) => Some(format!(
            "{} cannot be read since reckon loaded it (sha256 {loaded}): {e}; put the plugin file back, \
             or restart reckon to load what the plugin directory holds now",
            path.display()
        )),
    }
}

/// Checks that `path` may be loaded from `dir`, opens it and hashes it (see
/// [`LibraryFile`]). `dir` must already be canonical.
fn vet_file(dir: &Path, path: &Path, pin: Option<&str>) -> Result<LibraryFile, LoadError> {
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| refused(path, format!("cannot stat: {e}")))?;
    let canonical = std::fs::canonicalize(path)
        .map_err(|e| refused(path, format!("cannot resolve path: {e}")))?;
    if !canonical.starts_with(dir) {
        let what = if meta.file_type().is_symlink() {
            "symlink leads outside the plugin directory"
        } else {
            "file is outside the plugin directory"
        };
        return Err(refused(
            path,
            format!(
                "{what} ({} is not under {}); only libraries inside the plugin directory are loaded",
                canonical.display(),
                dir.display()
            ),
        ));
    }
    LibraryFile::open(&canonical, pin)
        .map_err(|LoadError::Refused { reason, .. }| refused(path, reason))
}

/// Why an ELF file is shorter than its own headers say, if it is: the
/// program and section header tables and every segment's bytes must lie
/// inside the file. Only 64-bit little-endian ELF is checked (what Linux
/// plugins are); anything else is left to `dlopen`, which refuses what it
/// cannot read without touching it.
pub(crate) fn elf_truncation(file: &std::fs::File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let size = file.metadata().ok()?.len();
    let mut h = [0u8; 64];
    file.read_exact_at(&mut h, 0).ok()?;
    if &h[..4] != b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let u64_at = |b: &[u8], o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    let (phoff, shoff) = (u64_at(&h, 0x20), u64_at(&h, 0x28));
    let (phentsize, phnum) = (u16_at(&h, 0x36), u16_at(&h, 0x38));
    let (shentsize, shnum) = (u16_at(&h, 0x3A), u16_at(&h, 0x3C));
    let short = |need: u64, what: &str| {
        (need > size)
            .then(|| format!("truncated library: {size} bytes, but its {what} reach byte {need}"))
    };
    if let Some(e) = short(
        phoff.saturating_add(phentsize.saturating_mul(phnum)),
        "program headers",
    ) {
        return Some(e);
    }
    if shoff != 0 {
        if let Some(e) = short(
            shoff.saturating_add(shentsize.saturating_mul(shnum)),
            "section headers",
        ) {
            return Some(e);
        }
    }
    if phentsize < 0x38 {
        return None;
    }
    for i in 0..phnum {
        let mut ph = [0u8; 0x38];
        file.read_exact_at(&mut ph, phoff + i * phentsize).ok()?;
        let (offset, filesz) = (u64_at(&ph, 0x08), u64_at(&ph, 0x20));
        if let Some(e) = short(offset.saturating_add(filesz), "segments") {
            return Some(e);
        }
    }
    None
}

/// Opens a library (a private copy of the very bytes `file` hashed, see
/// [`LibraryFile::private_copy`]) and checks its header. The library is
/// leaked (never unloaded). Does no directory checks: callers do them first.
pub fn open_library(file: LibraryFile) -> Result<(HeaderFields, PluginFns), LoadError> {
    let path = file.path.clone();
    let path = path.as_path();
    let copy = file.private_copy()?;
    // A truncated library (a copy still running or cut short) makes the
    // dynamic loader touch pages past the end of the file: SIGBUS, which
    // kills this process, the daemon on SIGHUP included.
    if let Some(why) = elf_truncation(&copy.file) {
        return Err(refused(
            path,
            format!("{why}: a copy still in progress or cut short? copy the library again"),
        ));
    }
    let dlopen_path = copy.dlopen_path.clone();
    // SAFETY: loading a library runs its initialisers. Plugins are Rust
    // cdylibs built against plugin-api, which have none; the file already
    // passed the directory, permission and pin checks, and this loads a
    // private copy of the very bytes those checks read.
    let lib = unsafe { libloading::Library::new(&dlopen_path) }.map_err(|e| {
        // The loader names the file by the descriptor it was given; the
        // error names it by its path.
        let e = e
            .to_string()
            .replace(&dlopen_path.display().to_string(), &path.display().to_string());
        refused(
            path,
            format!("not a loadable library (dlopen failed: {e}): is it a plugin built for this machine?"),
        )
    })?;
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // The copy's descriptor stays open as long as the library (for ever):
    // the dynamic loader knows the library by the name `/proc/self/fd/N`
    // and would hand this library back for a later `dlopen` of the same
    // name, so that number must never be reused for another file.
    std::mem::forget(copy.file);
    // SAFETY: the symbol's type is the ABI's `EntryFn`; a library exporting
    // the name with another type is malformed beyond what we can detect, and
    // the header's magic is checked before anything else is trusted.
    let entry = unsafe { lib.get::<plugin_api::abi::EntryFn>(ENTRY_SYMBOL) }.map_err(|_| {
        refused(
            path,
            "missing symbol `reckon_plugin_entry`: not a Reckon plugin (does it call `plugin_api::export_plugin!`?)",
        )
    })?;
    // SAFETY: the entry point takes no arguments and returns a pointer to
    // static data.
    let ptr: *const PluginHeader = unsafe { entry() };
    if ptr.is_null() {
        return Err(refused(path, "entry point returned a null header"));
    }
    // Read the fixed prefix first, as raw fields at their ABI offsets: a
    // foreign header may be shorter than ours.
    let base = ptr as *const u8;
    // SAFETY: every ABI version's header starts with magic (8 bytes) and
    // header_size, abi_major, abi_minor (8 bytes); unaligned reads of plain
    // integers from static data.
    let (magic, header_size, abi_major) = unsafe {
        (
            std::ptr::read_unaligned(base as *const u64),
            std::ptr::read_unaligned(base.add(8) as *const u32),
            std::ptr::read_unaligned(base.add(12) as *const u16),
        )
    };
    check_header_prefix(magic, header_size, abi_major).map_err(|e| refused(path, e))?;
    // Magic, size and major match, so the plugin promises an ABI-1 header
    // of `header_size` bytes at `ptr`: every field of ABI 1.0, and those
    // appended since only when `header_size` covers them. So no reference
    // to a whole `PluginHeader` (a plugin's may be shorter than ours):
    // each field is read at its offset.
    macro_rules! field {
        ($name:ident) => {
            // SAFETY: the field lies within the `header_size` bytes of
            // static data the plugin promises (every use is of an ABI 1.0
            // field, or checks `header_size` first); plain data, read
            // unaligned.
            unsafe { (&raw const (*ptr).$name).read_unaligned() }
        };
    }
    let text = |field: &str, p: *const std::ffi::c_char| -> Result<String, LoadError> {
        if p.is_null() {
            return Err(refused(
                path,
                format!("header field `{field}` is a null pointer"),
            ));
        }
        // SAFETY: a non-null header string points at static NUL-terminated
        // data per the ABI.
        let s = unsafe { CStr::from_ptr(p) };
        s.to_str()
            .map(str::to_owned)
            .map_err(|_| refused(path, format!("header field `{field}` is not UTF-8")))
    };
    let build = if header_size as usize >= HEADER_SIZE_WITH_BUILD {
        Some(text("build", field!(build))?)
    } else {
        None
    };
    let fields = HeaderFields {
        magic,
        header_size,
        abi_major,
        abi_minor: field!(abi_minor),
        flags: field!(flags),
        protocol_fingerprint: field!(protocol_fingerprint),
        plugin_id: text("plugin_id", field!(plugin_id))?,
        plugin_version: text("plugin_version", field!(plugin_version))?,
        protocol_version: text("protocol_version", field!(protocol_version))?,
        target: text("target", field!(target))?,
        build,
    };
    check_header(&fields).map_err(|e| refused(path, e))?;
    Ok((
        fields,
        PluginFns {
            table: field!(functions),
        },
    ))
}

/// Calls `describe` where `opts` says, within its deadline, and parses the
/// manifest; checks it against the header. `sha256` is the file's hash (the
/// describe child re-checks it before it opens the library).
pub fn describe(
    path: &Path,
    sha256: &str,
    header: &HeaderFields,
    fns: &PluginFns,
    opts: &DescribeOptions,
) -> Result<Manifest, LoadError> {
    let key = (path.to_path_buf(), sha256.to_owned());
    let secs = human_duration(opts.deadline);
    let thread = opts.host == DescribeHost::Thread;
    if thread && hung().lock().is_ok_and(|h| h.contains(&key)) {
        return Err(refused(
            path,
            format!(
                "describe did not finish within its deadline ({secs}) earlier in this process \
                 and is not called again until reckon restarts; fix the plugin's `manifest()` \
                 or remove the file from the plugin directory"
            ),
        ));
    }
    let out = match &opts.host {
        DescribeHost::Child(exe) => super::describe::in_child(exe, path, sha256, opts.deadline),
        DescribeHost::Thread => super::describe::on_thread(*fns, opts.deadline),
    };
    let out = out.map_err(|f| describe_refused(path, &key, f, opts))?;
    manifest_from(path, header, out)
}

/// The refusal of a library whose describe failed as `f` (`key`: its
/// canonical path and SHA-256, remembered when a thread hung).
fn describe_refused(
    path: &Path,
    key: &(PathBuf, String),
    f: DescribeFailure,
    opts: &DescribeOptions,
) -> LoadError {
    let secs = human_duration(opts.deadline);
    let thread = opts.host == DescribeHost::Thread;
    {
        let reason = match f {
            DescribeFailure::TimedOut if thread => {
                if let Ok(mut h) = hung().lock() {
                    h.insert(key.clone());
                }
                format!(
                    "describe did not finish within {secs}: the plugin's `manifest()` loops or \
                     hangs. It ran on a thread of this process, which cannot be stopped: the thread \
                     is abandoned (it runs until reckon exits) and this file is not described again. \
                     Fix the plugin, or remove the file from the plugin directory"
                )
            }
            DescribeFailure::TimedOut => format!(
                "describe did not finish within {secs}: the plugin's `manifest()` loops or \
                 hangs; the plugin process describing it was killed. Fix the plugin, or remove \
                 the file from the plugin directory"
            ),
            DescribeFailure::Crashed(how) | DescribeFailure::Killed(how) => format!(
                "describe crashed the plugin process describing it: {how}. Fix the plugin, or \
                 remove the file from the plugin directory"
            ),
            DescribeFailure::Spawn(why) | DescribeFailure::Protocol(why) => {
                format!("describe failed: {why}")
            }
        };
        refused(path, reason)
    }
}

/// `10 s`, or `250 ms` below a second or when not whole seconds.
fn human_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Parses describe's output into a manifest and checks it against the header.
pub fn manifest_from(
    path: &Path,
    header: &HeaderFields,
    out: CallOutput,
) -> Result<Manifest, LoadError> {
    if out.status != STATUS_OK {
        let why = serde_json::from_slice::<PluginError>(&out.bytes)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&out.bytes).into_owned());
        return Err(refused(
            path,
            // The abort, hang and crash cases end with the same advice.
            format!(
                "describe failed: {}. Fix the plugin, or remove the file from the plugin directory",
                why.trim_end_matches('.')
            ),
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&out.bytes)
        .map_err(|e| refused(path, format!("describe returned a malformed manifest: {e}")))?;
    if manifest.id != header.plugin_id {
        return Err(refused(
            path,
            format!(
                "id mismatch: header field `plugin_id` is `{}` but the manifest's `id` is `{}`",
                header.plugin_id, manifest.id
            ),
        ));
    }
    check_manifest(&manifest).map_err(|e| refused(path, format!("manifest: {e}")))?;
    Ok(manifest)
}

/// Files (canonical path, SHA-256) whose describe hung on a thread of this
/// process: never described on a thread again (each try would strand one
/// more thread).
fn hung() -> &'static Mutex<HashSet<(PathBuf, String)>> {
    static HUNG: OnceLock<Mutex<HashSet<(PathBuf, String)>>> = OnceLock::new();
    HUNG.get_or_init(|| Mutex::new(HashSet::new()))
}

struct Cached {
    sha256: String,
    plugin: Arc<Plugin>,
}

fn cache() -> &'static Mutex<HashMap<PathBuf, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Cached>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Vets, opens, checks and describes one file of the plugin directory `dir`.
/// With `pin`, the file's SHA-256 must match before it is opened. Describe
/// runs as [`DescribeOptions::for_this_process`] says.
pub fn load_file(dir: &Path, path: &Path, pin: Option<&str>) -> Result<Arc<Plugin>, LoadError> {
    load_file_with(dir, path, pin, &DescribeOptions::for_this_process())
}

/// [`load_file`] with describe run where `opts` says, within its deadline.
pub fn load_file_with(
    dir: &Path,
    path: &Path,
    pin: Option<&str>,
    opts: &DescribeOptions,
) -> Result<Arc<Plugin>, LoadError> {
    check_plugin_dir(dir)?;
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| refused(dir, format!("plugin directory unreadable: {e}")))?;
    let file = vet_file(&dir, path, pin)?;
    let canonical = file.path.clone();
    let sha = file.sha256.clone();
    if let Ok(c) = cache().lock() {
        if let Some(hit) = c.get(&canonical) {
            if hit.sha256 == sha {
                return Ok(hit.plugin.clone());
            }
        }
    }
    // Described in a child first, where a child is the host: a library
    // that crashes (or hangs) the process loading it is refused before it
    // is opened in this one (QA52: a flipped byte in a library's
    // relocations made `sync`, `config check`, `plugins list` and `run`
    // die of SIGSEGV with nothing printed). A child that refused the
    // library or failed otherwise is left to the checks below, which say
    // why more precisely.
    let early = match &opts.host {
        DescribeHost::Child(exe) => {
            match super::describe::in_child(exe, &canonical, &sha, opts.deadline) {
                Ok(out) => Some(out),
                Err(f @ (DescribeFailure::Killed(_) | DescribeFailure::TimedOut)) => {
                    return Err(describe_refused(
                        &canonical,
                        &(canonical.clone(), sha),
                        f,
                        opts,
                    ));
                }
                Err(_) => None,
            }
        }
        DescribeHost::Thread => None,
    };
    let (header, fns) = open_library(file)?;
    let manifest = match early {
        Some(out) => manifest_from(&canonical, &header, out)?,
        None => describe(&canonical, &sha, &header, &fns, opts)?,
    };
    let plugin = Arc::new(Plugin {
        path: canonical.clone(),
        manifest,
        panic_unwind: header.flags & FLAG_PANIC_UNWIND != 0,
        sha256: sha.clone(),
        abi_minor: header.abi_minor,
        protocol_fingerprint: header.protocol_fingerprint,
        build: header.build,
        fns,
    });
    for why in plugin.warnings() {
        tracing::warn!(plugin = %plugin.manifest.id, path = %canonical.display(), "plugin library {why}");
    }
    if let Ok(mut c) = cache().lock() {
        c.insert(
            canonical,
            Cached {
                sha256: sha,
                plugin: plugin.clone(),
            },
        );
    }
    Ok(plugin)
}

/// Why a file or directory owned by `uid` may not hold plugins, or `None`
/// when root or the user Reckon runs as owns it. Like ssh's `StrictModes`:
/// whoever owns a library, or a directory on the way to it, can change
/// the code that runs inside the daemon, next to its secrets.
fn foreign_owner(uid: u32) -> Option<String> {
    let me = rustix::process::geteuid().as_raw();
    (uid != 0 && uid != me).then(|| {
        format!("it belongs to uid {uid}, and Reckon runs as uid {me}: only root or Reckon's own user may own plugins and the directories that hold them")
    })
}

/// Refuses a plugin directory that every user may write to (QA10 M5: a
/// library another local user dropped into a `chmod 777` directory was
/// loaded and run by `plugins list`, `config check` and `run`), even with
/// a sticky bit (which stops renames, not new files), and a directory
/// above it that every user may write to without a sticky bit (anyone could
/// rename the plugin directory and put another in its place; `/tmp` is
/// fine, its sticky bit protects other users' entries). A plugin directory
/// writable by its group is a WARN, once per directory: that may be a
/// deliberate deploy group. The directories above the path as configured
/// (symlinks in it not resolved) are held to the same rule as those above
/// the directory it leads to. Every one of those directories must also
/// belong to root or to the user Reckon runs as ([`foreign_owner`]).
pub fn check_plugin_dir(dir: &Path) -> Result<(), LoadError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // A missing or unreadable directory is reported by the caller's listing
    // or open, as before.
    let Ok(canonical) = std::fs::canonicalize(dir) else {
        return Ok(());
    };
    // The directories above the path as configured too, symlinks not
    // resolved: a symlink to the plugin directory in a directory anyone can
    // write to could be pointed elsewhere by anyone (QA12, re-test of M5).
    let configured = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let above_configured = configured.ancestors().skip(1).map(|d| (1, d));
    for (depth, d) in canonical.ancestors().enumerate().chain(above_configured) {
        let meta = std::fs::metadata(d).map_err(|e| refused(d, format!("cannot stat: {e}")))?;
        // QA29-D L1: `/dev/zero` was told to be `chmod o-w`.
        if depth == 0 && !meta.is_dir() {
            return Err(refused(
                dir,
                "it is not a directory; plugin_dir names the directory holding the plugin libraries"
                    .to_string(),
            ));
        }
        let mode = meta.permissions().mode();
        if let Some(why) = foreign_owner(meta.uid()) {
            let what = if depth == 0 {
                "the plugin directory".to_string()
            } else {
                format!("{}, above the plugin directory,", d.display())
            };
            return Err(refused(
                dir,
                format!(
                    "{what} is not safe: {why}; nothing was loaded. Run `chown root {}`, or move plugin_dir",
                    d.display()
                ),
            ));
        }
        let by_others = mode & 0o002 != 0;
        let sticky = mode & 0o1000 != 0;
        if depth == 0 && by_others {
            return Err(refused(
                dir,
                format!(
                    "the plugin directory is writable by every user (mode {:04o}): anyone could add a library that Reckon loads and runs; nothing was loaded. Run `chmod o-w {}`",
                    mode & 0o7777,
                    canonical.display()
                ),
            ));
        }
        if depth > 0 && by_others && !sticky {
            return Err(refused(
                dir,
                format!(
                    "{} above the plugin directory is writable by every user without a sticky bit (mode {:04o}): anyone could replace the plugin directory; nothing was loaded. Run `chmod o-w {}` (or `chmod +t` it), or move plugin_dir",
                    d.display(),
                    mode & 0o7777,
                    d.display()
                ),
            ));
        }
        if depth == 0 && mode & 0o020 != 0 {
            static WARNED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
            let first = WARNED.lock().map_or(true, |mut w| {
                let first = !w.contains(&canonical);
                if first {
                    w.push(canonical.clone());
                }
                first
            });
            if first {
                tracing::warn!(plugin_dir = %canonical.display(), mode = %format!("{:04o}", mode & 0o7777),
                    "the plugin directory {} is writable by its group: every member can add a library that Reckon runs; `chmod g-w` it unless that group is meant to deploy plugins",
                    canonical.display());
            }
        }
    }
    Ok(())
}

/// Library files (by suffix) in `dir`, sorted by name, after
/// [`check_plugin_dir`].
pub fn library_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    check_plugin_dir(dir)?;
    let entries = std::fs::read_dir(dir)
        .map_err(|e| refused(dir, format!("cannot list the plugin directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(std::env::consts::DLL_SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Child side (`reckon plugin-host`): returns a private handle on the
/// original stdout for protocol frames and points file descriptor 1 at
/// stderr, so anything the plugin prints cannot corrupt the protocol.
#[cfg(unix)]
pub fn protect_stdout() -> std::io::Result<std::io::BufWriter<std::fs::File>> {
    use std::io::Write;
    use std::os::fd::AsFd;
    std::io::stdout().flush()?;
    let proto = std::io::stdout().as_fd().try_clone_to_owned()?;
    // SAFETY: dup2 on two descriptors that are open for the whole process
    // (stderr and stdout); it only changes what descriptor 1 refers to.
    let r = unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(std::io::BufWriter::with_capacity(
        1 << 16,
        std::fs::File::from(proto),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_library_hash_is_remembered_by_file_identity_and_a_rewrite_is_hashed_again() {
        use std::io::Write;
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libx.so");
        // Each write sets its own modification time: two writes within
        // one clock tick of the file system would otherwise leave the same
        // times (what `RACY_SECS` guards against outside this test).
        let write = |bytes: &[u8], mtime: u64| {
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(bytes).unwrap();
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))
                .unwrap();
        };
        write(b"first bytes", 1_000);
        // The hash `now_after_change` seconds after the file's change, and
        // whether it is remembered then.
        let hash = |now_after_change: i64| {
            let f = std::fs::File::open(&path).unwrap();
            let m = f.metadata().unwrap();
            let sha = file_sha256(&f, &m, m.ctime() + now_after_change).unwrap();
            let known = KNOWN.lock().unwrap();
            (
                sha,
                known
                    .as_ref()
                    .is_some_and(|k| k.contains_key(&identity(&m))),
            )
        };
        let first = sha256_of(&b"first bytes"[..]).unwrap();
        // Just changed: hashed, not remembered.
        assert_eq!(hash(0), (first.clone(), false));
        assert_eq!(hash(1), (first.clone(), false));
        // Changed long enough ago: remembered (then served from memory).
        assert_eq!(hash(60), (first.clone(), true));
        assert_eq!(hash(60), (first.clone(), true));
        // Rewritten in place (same inode, same size): its times moved, so
        // it is hashed again and the new bytes' hash is what comes back.
        write(b"other bytes", 2_000);
        let other = sha256_of(&b"other bytes"[..]).unwrap();
        assert_ne!(other, first);
        assert_eq!(hash(60).0, other);
    }

    #[test]
    fn a_plugin_dir_that_is_not_a_directory_is_named_so() {
        let e = check_plugin_dir(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("it is not a directory"), "{e}");
        assert!(!e.contains("chmod"), "{e}");
    }

    fn good() -> HeaderFields {
        HeaderFields {
            magic: MAGIC,
            header_size: MIN_HEADER_SIZE as u32,
            abi_major: ABI_MAJOR,
            abi_minor: 0,
            flags: FLAG_PANIC_UNWIND,
            protocol_fingerprint: PROTOCOL_FINGERPRINT,
            plugin_id: "x".into(),
            plugin_version: "1".into(),
            protocol_version: PROTOCOL_VERSION.into(),
            target: TARGET.into(),
            build: Some(plugin_api::abi::BUILD.into()),
        }
    }

    #[test]
    fn each_header_field_is_named_when_it_mismatches() {
        assert_eq!(check_header(&good()), Ok(()));
        let cases: Vec<(HeaderFields, &str)> = vec![
            (HeaderFields { magic: 1, ..good() }, "header field `magic`"),
            (
                HeaderFields {
                    header_size: 8,
                    ..good()
                },
                "header too short",
            ),
            (
                HeaderFields {
                    abi_major: 2,
                    ..good()
                },
                "header field `abi_major` is 2",
            ),
            (
                HeaderFields {
                    target: "riscv64gc-unknown-none-elf".into(),
                    ..good()
                },
                "target mismatch",
            ),
            (
                HeaderFields {
                    protocol_version: "9".into(),
                    ..good()
                },
                "header field `protocol_version` is `9`",
            ),
            (
                HeaderFields {
                    plugin_id: String::new(),
                    ..good()
                },
                "header field `plugin_id` is empty",
            ),
            (
                HeaderFields {
                    protocol_fingerprint: PROTOCOL_FINGERPRINT ^ 1,
                    ..good()
                },
                "rebuild it against the plugin-api of this reckon",
            ),
        ];
        // A plugin built before fingerprints (the slot was zero) loads.
        let old = HeaderFields {
            protocol_fingerprint: 0,
            ..good()
        };
        assert_eq!(check_header(&old), Ok(()));
        for (h, needle) in cases {
            let e = check_header(&h).unwrap_err();
            assert!(e.contains(needle), "{e} should contain {needle}");
        }
    }

    /// Released by the test once it has seen the deadline pass.
    static GATE: (Mutex<bool>, std::sync::Condvar) = (Mutex::new(false), std::sync::Condvar::new());

    /// A describe that blocks until [`GATE`] opens (a hang that does not
    /// burn a core while the other tests run).
    unsafe extern "C" fn hanging_describe(w: plugin_api::abi::WriteFn, ctx: *mut c_void) -> i32 {
        let (lock, cv) = &GATE;
        let mut open = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = cv.wait(open).unwrap_or_else(|e| e.into_inner());
        }
        drop(open);
        unavailable_error(w, ctx)
    }

    unsafe extern "C" fn good_describe(w: plugin_api::abi::WriteFn, ctx: *mut c_void) -> i32 {
        let m = serde_json::json!({
            "id": "x", "name": "n", "version": "1", "kind": "affiliate",
            "description": "d", "config_schema": {},
            "streams": [{"name": "s", "record": "conversion", "primary_key": [],
                         "cursor": null, "default_lookback_days": 0}],
            "allowed_hosts": [], "default_base_url": null, "auth": null,
            "max_window_days": null
        });
        let bytes = serde_json::to_vec(&m).unwrap_or_default();
        // SAFETY: the host's writer for this call; the slice is live.
        unsafe { w(ctx, bytes.as_ptr(), bytes.len()) };
        STATUS_OK
    }

    fn fns_with(
        describe: unsafe extern "C" fn(plugin_api::abi::WriteFn, *mut c_void) -> i32,
    ) -> PluginFns {
        let mut fns = PluginFns::unavailable();
        fns.table.describe = describe;
        fns
    }

    #[test]
    fn a_hung_describe_on_a_thread_is_given_up_at_the_deadline_and_not_called_again() {
        // Long enough for the good describes below to finish on a loaded
        // machine (200 ms failed once under a parallel build).
        let opts = DescribeOptions {
            host: DescribeHost::Thread,
            deadline: std::time::Duration::from_millis(1000),
        };
        let path = Path::new("/plugins/libhangs.so");
        let started = std::time::Instant::now();
        let e = describe(path, "aa", &good(), &fns_with(hanging_describe), &opts)
            .unwrap_err()
            .to_string();
        let waited = started.elapsed();
        assert!(waited >= opts.deadline, "{waited:?}");
        assert!(
            e.starts_with("/plugins/libhangs.so: describe did not finish within 1 s"),
            "{e}"
        );
        assert!(
            e.contains("cannot be stopped") && e.contains("Fix the plugin"),
            "{e}"
        );
        // Not called again (it would strand another thread): refused at once.
        let started = std::time::Instant::now();
        let again = describe(path, "aa", &good(), &fns_with(hanging_describe), &opts)
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < opts.deadline, "{again}");
        assert!(again.contains("earlier in this process"), "{again}");
        // Another file (or the same path with other bytes) is described.
        let m = describe(
            Path::new("/plugins/libok.so"),
            "aa",
            &good(),
            &fns_with(good_describe),
            &opts,
        )
        .unwrap();
        assert_eq!(m.id, "x");
        assert!(describe(path, "bb", &good(), &fns_with(good_describe), &opts).is_ok());
        // Let the abandoned thread finish.
        *GATE.0.lock().unwrap() = true;
        GATE.1.notify_all();
    }

    /// The pin used to be checked on bytes read by path and the library
    /// opened by path again, so a file renamed over it in between was
    /// loaded unverified. Now the hash is taken through the open file and
    /// that file is what `dlopen` gets.
    #[test]
    fn the_hash_is_taken_from_the_open_file_that_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libplugin.so");
        std::fs::write(&path, b"the vetted library").unwrap();
        let vetted = sha256_hex(b"the vetted library");
        let file = LibraryFile::open(&path, Some(&vetted)).unwrap();
        assert_eq!(file.sha256(), vetted);

        // Another file renamed over the path after the check.
        let swap = dir.path().join("swap.tmp");
        std::fs::write(&swap, b"something else").unwrap();
        std::fs::rename(&swap, &path).unwrap();
        assert_eq!(file.sha256(), vetted);
        #[cfg(target_os = "linux")]
        {
            let copy = file.private_copy().unwrap();
            let loaded = copy.dlopen_path();
            assert!(loaded.starts_with("/proc/self/fd/"), "{}", loaded.display());
            assert_eq!(std::fs::read(loaded).unwrap(), b"the vetted library");
        }

        // The file now at the path does not match the pin: refused.
        let e = LibraryFile::open(&path, Some(&vetted))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "sha256 mismatch: pinned {vetted}, file has {}; not loaded",
                sha256_hex(b"something else")
            )),
            "{e}"
        );
        // Without a pin it is hashed as it is.
        let now = LibraryFile::open(&path, None).unwrap();
        assert_eq!(now.sha256(), sha256_hex(b"something else"));
    }

    /// QA42a A-H1: a rebuilt plugin copied over the loaded file (`cp`
    /// rewrites the same inode) changed the code mapped in the daemon,
    /// which crashed (SIGSEGV) at the next in-process run or at its exit.
    /// What is loaded is a sealed private copy: a write into the file does
    /// not reach it, nor can anyone write into the copy; and the file is
    /// then named as replaced, or as gone once removed.
    #[cfg(target_os = "linux")]
    #[test]
    fn what_is_loaded_is_a_sealed_copy_that_a_write_into_the_file_does_not_change() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libplugin.so");
        std::fs::write(&path, b"build one").unwrap();
        let loaded_sha = sha256_hex(b"build one");
        let copy = LibraryFile::open(&path, None)
            .unwrap()
            .private_copy()
            .unwrap();
        assert_eq!(replaced_since_loaded(&path, &loaded_sha), None);

        // `cp` over it: same inode, truncated and rewritten.
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&path);
        std::fs::write(&path, b"build two, longer").unwrap();
        assert_eq!(inode(&path), before);
        assert_eq!(std::fs::read(copy.dlopen_path()).unwrap(), b"build one");
        let why = replaced_since_loaded(&path, &loaded_sha).unwrap();
        assert_eq!(
            why,
            format!(
                "{} was replaced since reckon loaded it (loaded sha256 {loaded_sha}, the file now has {}); \
                 restart reckon, or reload it (SIGHUP), to load the new file",
                path.display(),
                sha256_hex(b"build two, longer")
            )
        );
        // The same bytes put back are the same library.
        std::fs::write(&path, b"build one").unwrap();
        assert_eq!(replaced_since_loaded(&path, &loaded_sha), None);

        // The copy is sealed against writes, growing and shrinking.
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.dlopen_path())
            .unwrap();
        assert!(writer.write_all(b"patched").is_err());
        assert!(writer.set_len(1).is_err());
        assert_eq!(std::fs::read(copy.dlopen_path()).unwrap(), b"build one");

        std::fs::remove_file(&path).unwrap();
        let why = replaced_since_loaded(&path, &loaded_sha).unwrap();
        assert!(
            why.starts_with(&format!(
                "{} cannot be read since reckon loaded it (sha256 {loaded_sha}): ",
                path.display()
            )) && why.ends_with("put the plugin file back, or restart reckon to load what the plugin directory holds now"),
            "{why}"
        );
    }

    /// A file still being written between its hash and its copy (a build
    /// copied in place while reckon loads it) is refused, not loaded half
    /// old, half new.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_rewritten_between_its_hash_and_its_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libplugin.so");
        std::fs::write(&path, b"build one").unwrap();
        let file = LibraryFile::open(&path, None).unwrap();
        std::fs::write(&path, b"build two").unwrap();
        let e = file.private_copy().unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "the file changed while it was being loaded (it hashed to {}, then read as {})",
                sha256_hex(b"build one"),
                sha256_hex(b"build two")
            )) && e.contains("with `install` or a rename, not by copying over the file"),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_swapped_in_at_a_canonical_path_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.so");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("libplugin.so");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = LibraryFile::open(&link, None).unwrap_err().to_string();
        assert!(e.contains("cannot open"), "{e}");
    }

    #[test]
    fn manifests_without_streams_or_with_odd_ids_are_refused() {
        let m: Manifest = serde_json::from_value(serde_json::json!({
            "id": "Bad-Id", "name": "n", "version": "1", "kind": "affiliate",
            "description": "d", "config_schema": {}, "streams": [],
            "allowed_hosts": [], "default_base_url": null, "auth": null,
            "max_window_days": null
        }))
        .unwrap();
        assert!(check_manifest(&m).unwrap_err().contains("`id`"));
        let m = Manifest {
            id: "ok".into(),
            ..m
        };
        assert!(check_manifest(&m)
            .unwrap_err()
            .contains("`streams` is empty"));
    }

    /// QA7 F2 and F3: `auth` naming a setting that is not `x-secret` (the
    /// token then reached the plugin, its logs and `sync --record`'s
    /// fixture in clear), or one the schema does not declare (every check
    /// said ok, only the sync failed), is refused at load.
    #[test]
    fn auth_must_name_declared_secret_settings() {
        use plugin_api::protocol::AuthSpec;
        let m: Manifest = serde_json::from_value(serde_json::json!({
            "id": "acmenet", "name": "n", "version": "1", "kind": "affiliate",
            "description": "d",
            "config_schema": { "type": "object", "properties": {
                "api_token": { "type": "string" },
                "account": { "type": "string" },
                "secret": { "type": "string", "x-secret": true }
            } },
            "streams": [{ "name": "conversions", "record": "conversion",
                "primary_key": ["external_id"], "cursor": null, "default_lookback_days": 1 }],
            "allowed_hosts": [], "default_base_url": null,
            "auth": { "scheme": "bearer", "token": "api_token" },
            "max_window_days": null
        }))
        .unwrap();
        assert_eq!(
            check_manifest(&m).unwrap_err(),
            "`auth` setting `api_token` is not marked \"x-secret\": true in `config_schema`: mark it `x-secret`, \
             so the credential is read from a secret source, never handed to the plugin and masked in logs and recordings"
        );
        let missing = Manifest {
            auth: Some(AuthSpec::Bearer {
                token: "api_key".into(),
            }),
            ..m.clone()
        };
        let e = check_manifest(&missing).unwrap_err();
        assert!(
            e.starts_with("`auth` names the setting `api_key`, which `config_schema` does not declare (its properties: `account`, `api_token`, `secret`)"),
            "{e}"
        );
        // Inside `all`, too; a Basic user name may be a plain setting.
        let nested = Manifest {
            auth: Some(AuthSpec::All {
                schemes: vec![
                    AuthSpec::Basic {
                        username: "account".into(),
                        password: "secret".into(),
                    },
                    AuthSpec::Header {
                        name: "X-Key".into(),
                        value: "api_token".into(),
                    },
                ],
            }),
            ..m.clone()
        };
        assert!(check_manifest(&nested).unwrap_err().contains("`api_token`"));
        let good = Manifest {
            auth: Some(AuthSpec::Basic {
                username: "account".into(),
                password: "secret".into(),
            }),
            ..m
        };
        assert_eq!(check_manifest(&good), Ok(()));
    }
}
