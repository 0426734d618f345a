//! Names the commit this binary was built from, for `reckon --version` and
//! the daemon's start line (QA33-A L1: every release printed `reckon 0.1.0`,
//! so an operator could not tell which one was installed or running).
//! `RECKON_BUILD` is `<commit> <commit date, UTC>`, or `unknown commit`
//! outside a git checkout (a source tarball).

include!("../plugin-api/build_stamp.rs");

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let build = commit_stamp(&root);
    println!("cargo:rustc-env=RECKON_BUILD={build}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../plugin-api/build_stamp.rs");
}
