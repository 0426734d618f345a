//! Names the commit this binary was built from, for `reckon --version` and
//! the daemon's start line (QA33-A L1: every release printed `reckon 0.1.0`,
//! so an operator could not tell which one was installed or running).
//! `RECKON_BUILD` is `<commit> <commit date, UTC>`, or `unknown commit`
//! outside a git checkout (a source tarball).

use std::path::Path;
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let build = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args([
            "log",
            "-1",
            "--format=%h %cd",
            "--date=format-local:%Y-%m-%d %H:%M UTC",
        ])
        .env("TZ", "UTC")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown commit".to_owned());
    println!("cargo:rustc-env=RECKON_BUILD={build}");
    // Built again when HEAD moves; a path that does not exist would make
    // cargo run this on every build, so only those that do are named.
    let git = root.join(".git");
    for p in ["HEAD", "refs/heads", "packed-refs"] {
        let p = git.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
