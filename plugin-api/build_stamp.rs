// The commit a build comes from, shared by `plugin-api/build.rs` (the
// plugins' header stamp) and `daemon/build.rs` (`reckon --version`) with
// `include!`, so the two stamps are made alike and compare (QA44b B-H1).

/// `<short commit> <commit date, UTC>` of the git checkout at `root`, or
/// `unknown commit` outside one (a source tarball). Tells cargo to run the
/// build script again when HEAD moves; a path that does not exist would
/// make it run on every build, so only those that do are named.
fn commit_stamp(root: &std::path::Path) -> String {
    let stamp = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
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
    let git = root.join(".git");
    for p in ["HEAD", "refs/heads", "packed-refs"] {
        let p = git.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    stamp
}
