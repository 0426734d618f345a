//! Test-only library: a library without the plugin entry symbol.
//!
//! Its header is written by hand (not by `export_plugin!`) so the loader's
//! check of that field can be tested end to end. Never a real plugin.
#![allow(unsafe_code)]

use plugin_api::abi::{FunctionTable, PluginHeader, WriteFn};
use std::ffi::{c_char, c_void};

unsafe extern "C" fn describe(_w: WriteFn, _ctx: *mut c_void) -> i32 {
    1
}
unsafe extern "C" fn session_open(
    _input: *const u8,
    _len: usize,
    _out: *mut *mut c_void,
    _w: WriteFn,
    _ctx: *mut c_void,
) -> i32 {
    1
}
unsafe extern "C" fn session_step(
    _handle: *mut c_void,
    _input: *const u8,
    _len: usize,
    _w: WriteFn,
    _ctx: *mut c_void,
) -> i32 {
    1
}
unsafe extern "C" fn session_close(_handle: *mut c_void) {}

static HEADER: PluginHeader = PluginHeader {
    magic: plugin_api::abi::MAGIC,
    header_size: std::mem::size_of::<PluginHeader>() as u32,
    abi_major: plugin_api::abi::ABI_MAJOR,
    abi_minor: plugin_api::abi::ABI_MINOR,
    flags: plugin_api::abi::FLAG_PANIC_UNWIND,
    protocol_fingerprint: 0,
    plugin_id: c"broken".as_ptr() as *const c_char,
    plugin_version: c"0.0.0".as_ptr() as *const c_char,
    protocol_version: plugin_api::abi::PROTOCOL_VERSION_C.as_ptr(),
    target: plugin_api::abi::TARGET_C.as_ptr(),
    functions: FunctionTable {
        describe,
        session_open,
        session_step,
        session_close,
    },
    build: plugin_api::abi::BUILD_C.as_ptr(),
};

/// A well-formed header behind the wrong symbol name.
#[no_mangle]
pub extern "C" fn not_the_reckon_entry() -> *const PluginHeader {
    &HEADER
}
