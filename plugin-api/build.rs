//! Records the target triple so a plugin's header can state what it was
//! built for, and the commit this plugin-api (and so every plugin built
//! with it) was built from, for the header's `build` stamp (QA44b B-H1:
//! the libraries of two releases both said `impact 0.1.0`, and the
//! protocol fingerprint alone did not tell them apart).
//! `RECKON_PLUGIN_BUILD` is `<commit> <commit date, UTC>`, or `unknown
//! commit` outside a git checkout (a source tarball), exactly as the
//! daemon's `RECKON_BUILD` (`daemon/build.rs`), so the two compare.

include!("build_stamp.rs");

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=RECKON_PLUGIN_TARGET={target}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Built again when HEAD moves, and with it every plugin, whose header
    // holds the stamp.
    let build = commit_stamp(&root);
    println!("cargo:rustc-env=RECKON_PLUGIN_BUILD={build}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build_stamp.rs");
}
