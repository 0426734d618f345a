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
    // HEAD lives in the checkout's own git directory, the branches in the
    // common one: the same `.git` directory in a plain clone, two places
    // in a `git worktree` or a submodule, whose `.git` is a file (a stamp
    // watched as `<root>/.git/HEAD` there never moved again).
    let git_path = |what: &str| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["rev-parse", "--path-format=absolute", what])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            // A git before 2.31 (no `--path-format`), or none.
            .unwrap_or_else(|| root.join(".git"))
    };
    let own = git_path("--git-dir");
    let common = git_path("--git-common-dir");
    let watched = [(&own, "HEAD"), (&common, "refs/heads"), (&common, "packed-refs")];
    for (dir, p) in watched {
        let p = dir.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    stamp
}
