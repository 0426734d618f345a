//! Ops QA33a (upgrading across releases).
//!
//! - L1: every release printed `reckon 0.1.0`, so an operator could not
//!   tell which one was installed or running: `--version` now names the
//!   commit it was built from and when (`build.rs`).

/// `reckon --version`: the package version, then the commit and its date,
/// or `unknown commit` when built outside a git checkout.
#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = std::process::Command::new(reckon_tests::reckon_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.trim_end();
    let inner = line
        .strip_prefix(&format!("reckon {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line:?}"));
    if inner == "unknown commit" {
        return;
    }
    let (commit, date) = inner.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
    assert!(
        commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line:?}"
    );
    assert!(
        chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d %H:%M UTC").is_ok(),
        "{line:?}"
    );
}
