//! The C ABI between the daemon and a plugin library.
//!
//! A plugin exports one symbol, [`ENTRY_SYMBOL`], a function returning a
//! pointer to a static [`PluginHeader`]. The header is checked field by field
//! by the host before anything else is called. Only bytes cross the boundary:
//! inputs are borrowed for the duration of a call, outputs are copied out
//! through a host-provided [`WriteFn`]. No allocation crosses.
//!
//! The function table is append-only: a new function goes at the end and bumps
//! [`ABI_MINOR`]; the host reads only the functions that `header_size` covers.
//! Changing or removing anything bumps [`ABI_MAJOR`].
//!
//! Plugin authors never touch this module: [`crate::export_plugin!`] builds the
//! header and every shim.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};

/// Name of the one exported symbol (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"reckon_plugin_entry\0";
/// `RECKONPL` as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RECKONPL");
/// Incompatible changes bump this; the host refuses any other major.
pub const ABI_MAJOR: u16 = 1;
/// Compatible, append-only additions bump this. 1: [`PluginHeader::build`].
pub const ABI_MINOR: u16 = 1;
/// Flag bit: the plugin was built with `panic = "unwind"`, so its shims can
/// catch panics. Without it the host only runs the plugin in a subprocess.
pub const FLAG_PANIC_UNWIND: u32 = 1;
/// The target triple `plugin-api` (and so the plugin) was compiled for.
pub const TARGET: &str = env!("RECKON_PLUGIN_TARGET");
/// [`TARGET`] as a C string, for the header.
pub const TARGET_C: &std::ffi::CStr = c_str(concat!(env!("RECKON_PLUGIN_TARGET"), "\0"));
/// The commit this plugin-api was built from, as `<commit> <commit date,
/// UTC>` (`build.rs`), or `unknown commit` outside a git checkout: the
/// [`PluginHeader::build`] stamp of every plugin built with it. The host
/// compares a bundled plugin's stamp with its own build, so a library
/// left from another release is named although its version string and
/// protocol fingerprint are the same.
pub const BUILD: &str = env!("RECKON_PLUGIN_BUILD");
/// [`BUILD`] as a C string, for the header.
pub const BUILD_C: &std::ffi::CStr = c_str(concat!(env!("RECKON_PLUGIN_BUILD"), "\0"));
/// Identifies the exact wire types a plugin was built with: FNV-1a (32
/// bit) of `protocol.rs`, the file defining every record, event and action
/// the plugin and the host exchange as JSON (several with
/// `deny_unknown_fields`), without its `//` comments and whitespace, so
/// documentation and re-indenting (or a CRLF checkout) leave it alone
/// (punctuation rustfmt adds, such as a trailing comma, does not). A
/// plugin built against a plugin-api whose protocol code differs (a field
/// added to `Conversion`, say) has another fingerprint, and the host
/// refuses it when loading, naming the fix, instead of every sync failing
/// later on an unknown field. Never 0.
pub const PROTOCOL_FINGERPRINT: u32 = {
    let h = code_fnv1a32(include_bytes!("protocol.rs"));
    if h == 0 {
        1
    } else {
        h
    }
};

/// FNV-1a of Rust source without `//` comments (doc comments included)
/// and whitespace. A `//` inside a string literal also ends what is
/// hashed on that line: the result is still a fixed function of the code.
const fn code_fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'/' && i + 1 < bytes.len() && bytes[i + 1] == b'/' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if !(b == b' ' || b == b'\t' || b == b'\n' || b == b'\r') {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
        i += 1;
    }
    h
}

/// [`crate::protocol::PROTOCOL_VERSION`] as a C string, for the header.
pub const PROTOCOL_VERSION_C: &std::ffi::CStr = c_str("1\0");

const fn c_str(s: &'static str) -> &'static std::ffi::CStr {
    match std::ffi::CStr::from_bytes_with_nul(s.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("not a NUL-terminated string"),
    }
}

/// Status returned by every call.
pub const STATUS_OK: i32 = 0;
/// The call failed; the written bytes are a JSON [`crate::protocol::PluginError`].
pub const STATUS_ERROR: i32 = 1;
/// The plugin panicked; the instance must be dropped and its session discarded.
pub const STATUS_PANIC: i32 = 2;

/// Host callback receiving output bytes; it must copy them before returning.
pub type WriteFn = unsafe extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize);

/// The entry point's signature.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginHeader;

/// The static header every plugin exports.
#[repr(C)]
#[derive(Debug)]
pub struct PluginHeader {
    /// Always [`MAGIC`].
    pub magic: u64,
    /// `size_of::<PluginHeader>()` as the plugin knows it.
    pub header_size: u32,
    /// The plugin's [`ABI_MAJOR`].
    pub abi_major: u16,
    /// The plugin's [`ABI_MINOR`].
    pub abi_minor: u16,
    /// Bit set of `FLAG_*`.
    pub flags: u32,
    /// [`PROTOCOL_FINGERPRINT`] of the plugin-api the plugin was built
    /// against; 0 in plugins built before it existed (the slot was
    /// reserved and zero).
    pub protocol_fingerprint: u32,
    /// NUL-terminated plugin id, e.g. `google_ads`.
    pub plugin_id: *const c_char,
    /// NUL-terminated plugin version.
    pub plugin_version: *const c_char,
    /// NUL-terminated [`crate::protocol::PROTOCOL_VERSION`].
    pub protocol_version: *const c_char,
    /// NUL-terminated target triple.
    pub target: *const c_char,
    /// The function table (append-only).
    pub functions: FunctionTable,
    /// ABI 1.1: NUL-terminated [`BUILD`] of the plugin-api the plugin was
    /// built with. A header of ABI 1.0 ends before it (`header_size` is
    /// [`MIN_HEADER_SIZE`]): the host reads it only when `header_size`
    /// covers it ([`HEADER_SIZE_WITH_BUILD`]).
    pub build: *const c_char,
}

// SAFETY: the header is immutable static data; the pointers point at static,
// NUL-terminated strings that live for the whole program.
unsafe impl Sync for PluginHeader {}

/// The plugin's functions. Every one catches panics and returns a status.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FunctionTable {
    /// Writes the JSON [`crate::protocol::Manifest`].
    pub describe: unsafe extern "C" fn(write: WriteFn, ctx: *mut c_void) -> i32,
    /// Opens a session from a JSON [`crate::protocol::SessionOpen`]; stores the
    /// instance handle in `*out`. On error writes a JSON `PluginError`.
    pub session_open: unsafe extern "C" fn(
        input: *const u8,
        len: usize,
        out: *mut *mut c_void,
        write: WriteFn,
        ctx: *mut c_void,
    ) -> i32,
    /// Feeds one event frame (see [`crate::protocol::encode_frame`]) and writes
    /// the JSON array of resulting [`crate::protocol::Action`]s.
    pub session_step: unsafe extern "C" fn(
        handle: *mut c_void,
        input: *const u8,
        len: usize,
        write: WriteFn,
        ctx: *mut c_void,
    ) -> i32,
    /// Drops the instance. Never called twice for one handle.
    pub session_close: unsafe extern "C" fn(handle: *mut c_void),
}

// The layout is part of the ABI: these assertions fail the build if it moves.
#[allow(clippy::manual_bits)]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(PluginHeader, magic) == 0);
    assert!(offset_of!(PluginHeader, header_size) == 8);
    assert!(offset_of!(PluginHeader, abi_major) == 12);
    assert!(offset_of!(PluginHeader, abi_minor) == 14);
    assert!(offset_of!(PluginHeader, flags) == 16);
    assert!(offset_of!(PluginHeader, plugin_id) == 24);
    assert!(offset_of!(PluginHeader, functions) == 24 + 4 * size_of::<usize>());
    assert!(size_of::<FunctionTable>() == 4 * size_of::<usize>());
    assert!(offset_of!(PluginHeader, build) == 24 + 8 * size_of::<usize>());
    assert!(size_of::<PluginHeader>() == 24 + 9 * size_of::<usize>());
};

/// The smallest header a host accepts: everything up to and including the
/// first function table of ABI 1.0 (the header of ABI 1.0 ended there).
pub const MIN_HEADER_SIZE: usize = std::mem::offset_of!(PluginHeader, build);

/// The smallest header holding [`PluginHeader::build`] (ABI 1.1).
pub const HEADER_SIZE_WITH_BUILD: usize =
    std::mem::offset_of!(PluginHeader, build) + std::mem::size_of::<*const c_char>();

/// A `WriteFn` that appends to a `Vec<u8>` passed as `ctx`.
///
/// # Safety
/// `ctx` must be a valid `*mut Vec<u8>` and `ptr..ptr+len` readable.
pub unsafe extern "C" fn write_to_vec(ctx: *mut c_void, ptr: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: the caller guarantees ctx is a live &mut Vec<u8> and the slice is readable.
    let out = unsafe { &mut *(ctx as *mut Vec<u8>) };
    // SAFETY: as above.
    out.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, len) });
}

#[cfg(test)]
mod tests {
    use super::code_fnv1a32;

    #[test]
    fn the_fingerprint_ignores_comments_and_layout_but_not_code() {
        let base = code_fnv1a32(b"pub struct A {\n    /// doc\n    pub x: u32,\n}\n");
        // Other docs, comments, indentation, CRLF: the same protocol.
        assert_eq!(
            base,
            code_fnv1a32(b"pub struct A { // note\r\n  /// other doc\r\n  pub x: u32, }")
        );
        // A field added: another protocol.
        assert_ne!(
            base,
            code_fnv1a32(b"pub struct A {\n    pub x: u32,\n    pub y: u32,\n}\n")
        );
    }
}
