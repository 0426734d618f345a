//! `reckon plugins list|describe|check` through the real binary. Needs
//! `cargo build --workspace` first.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fault_lib(name: &str) -> PathBuf {
    reckon_tests::profile_dir().join(format!(
        "{}reckon_fault_{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

fn reckon(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(reckon_tests::reckon_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("RECKON_CONFIG")
        .output()
        .expect("run reckon");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A plugin directory with the example and every broken library.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(dir.path(), &["example"]);
    for f in [
        "bad_magic",
        "abi_major",
        "short_header",
        "no_symbol",
        "id_mismatch",
    ] {
        let src = fault_lib(f);
        assert!(
            src.exists(),
            "{} missing: cargo build --workspace",
            src.display()
        );
        std::fs::copy(&src, dir.path().join(src.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("libnot_a_library.so"), "just text\n").unwrap();
    dir
}

#[test]
fn plugins_list_shows_the_example_and_the_refused_files() {
    let dir = plugin_dir();
    let d = dir.path().to_str().unwrap();
    let (code, out) = reckon(&["plugins", "list", "--plugin-dir", d], dir.path());
    assert_eq!(code, 0, "{out}");
    let example = out
        .lines()
        .find(|l| l.starts_with("example "))
        .unwrap_or_else(|| panic!("no example row:\n{out}"));
    assert!(example.contains("affiliate"), "{example}");
    assert!(example.contains("conversions,reversals"), "{example}");
    assert!(
        example.contains(&reckon_tests::plugin_file_name("example")),
        "{example}"
    );
    assert_eq!(out.matches("refused: ").count(), 6, "{out}");
}

#[test]
fn plugins_list_reads_the_plugin_dir_from_the_config() {
    let dir = plugin_dir();
    let cfg = dir.path().join("reckon.toml");
    std::fs::write(&cfg, "[daemon]\nplugin_dir = \".\"\n").unwrap();
    let (code, out) = reckon(
        &["--config", cfg.to_str().unwrap(), "plugins", "list"],
        Path::new("/"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().any(|l| l.starts_with("example ")), "{out}");
}

#[test]
fn plugins_check_accepts_the_example() {
    let dir = plugin_dir();
    let lib = dir.path().join(reckon_tests::plugin_file_name("example"));
    let (code, out) = reckon(&["plugins", "check", lib.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("is plugin `example`"), "{out}");
    assert!(out.contains("api_key (string, required, secret)"), "{out}");
}

#[test]
fn plugins_check_rejects_each_broken_library_with_its_reason() {
    let dir = plugin_dir();
    let cases = [
        ("libreckon_fault_bad_magic.so", "header field `magic`"),
        (
            "libreckon_fault_abi_major.so",
            "header field `abi_major` is 99",
        ),
        ("libreckon_fault_short_header.so", "header too short"),
        (
            "libreckon_fault_no_symbol.so",
            "missing symbol `reckon_plugin_entry`",
        ),
        ("libnot_a_library.so", "not a loadable library"),
        (
            "libreckon_fault_id_mismatch.so",
            "id mismatch: header field `plugin_id` is `header_id` but the manifest's `id` is `manifest_id`",
        ),
    ];
    for (file, reason) in cases {
        let path = dir.path().join(file);
        let (code, out) = reckon(&["plugins", "check", path.to_str().unwrap()], dir.path());
        assert_eq!(code, 1, "{file}: {out}");
        assert!(out.starts_with("refused: "), "{file}: {out}");
        assert!(out.contains(reason), "{file}: expected {reason:?} in {out}");
    }
}

#[test]
fn plugins_describe_prints_text_and_json() {
    let dir = plugin_dir();
    let d = dir.path().to_str().unwrap();
    let (code, out) = reckon(
        &["plugins", "describe", "example", "--plugin-dir", d],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}");
    // Drop the machine-specific lines before snapshotting.
    let stable: String = out
        .lines()
        .filter(|l| !l.starts_with("file: ") && !l.starts_with("sha256: "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!("describe_example", stable);
    let (code, out) = reckon(
        &[
            "plugins",
            "describe",
            "example",
            "--json",
            "--plugin-dir",
            d,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["manifest"]["id"], "example");
    assert_eq!(v["manifest"]["auth"]["scheme"], "bearer");
    assert_eq!(v["panic_unwind"], true);
    let (code, out) = reckon(
        &["plugins", "describe", "nope", "--plugin-dir", d],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(out.contains("no plugin with id `nope`"), "{out}");
}
