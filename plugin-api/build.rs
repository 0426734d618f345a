//! Records the target triple so a plugin's header can state what it was
//! built for, and the commit this plugin-api (and so every plugin built
//! with it) was built from, for the header's `build` stamp (QA44b B-H1:
//! the libraries of two releases both said `impact 0.1.0`, and the
//! protocol fingerprint alone did not tell them apart).
//! `RECKON_PLUGIN_BUILD` is `<commit> <commit date, UTC>`, or `unknown
//! commit` outside a git checkout (a source tarball), exactly as the
//! daemon's `RECKON_BUILD` (`daemon/build.rs`), so the two compare.

use std::path::Path;
use std::process::Command;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=RECKON_PLUGIN_TARGET={target}");

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
    println!("cargo:rustc-env=RECKON_PLUGIN_BUILD={build}");
    // Built again when HEAD moves (and with it every plugin, whose header
    // holds the stamp); a path that does not exist would make cargo run
    // this on every build, so only those that do are named.
    let git = root.join(".git");
    for p in ["HEAD", "refs/heads", "packed-refs"] {
        let p = git.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
