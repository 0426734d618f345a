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

#[test]
fn plugins_check_with_a_config_uses_its_plugin_dir_and_pins() {
    let dir = plugin_dir();
    let lib = dir.path().join(reckon_tests::plugin_file_name("example"));
    let elsewhere = tempfile::tempdir().unwrap();
    let cfg = elsewhere.path().join("reckon.toml");
    let config = |pin: &str| {
        format!(
            "[daemon]\nplugin_dir = \"plugins\"\n\n[[connectors]]\nid = \"ex\"\nplugin = \"example\"\nschedule = \"0 * * * *\"\nsha256 = \"{pin}\"\nsettings = {{ api_key = {{ secret = \"env:EX_KEY\" }} }}\n"
        )
    };
    std::fs::create_dir(elsewhere.path().join("plugins")).unwrap();
    std::fs::write(&cfg, config(&"0".repeat(64))).unwrap();
    let c = cfg.to_str().unwrap();

    // A mistyped --config is an error, not a check without pins.
    let missing = elsewhere.path().join("nope.toml");
    let (code, out) = reckon(
        &[
            "--config",
            missing.to_str().unwrap(),
            "plugins",
            "check",
            lib.to_str().unwrap(),
        ],
        Path::new("/"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not exist"), "{out}");

    // Outside the config's plugin directory: refused.
    let (code, out) = reckon(
        &["--config", c, "plugins", "check", lib.to_str().unwrap()],
        Path::new("/"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("outside"), "{out}");

    // Inside it, but the connector's pin does not match: refused, naming it.
    let inside = elsewhere
        .path()
        .join("plugins")
        .join(reckon_tests::plugin_file_name("example"));
    std::fs::copy(&lib, &inside).unwrap();
    let (code, out) = reckon(
        &["--config", c, "plugins", "check", inside.to_str().unwrap()],
        Path::new("/"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sha256 mismatch: connector `ex`"), "{out}");

    // The right pin: accepted.
    let plugins = elsewhere.path().join("plugins");
    let (_, described) = reckon(
        &[
            "plugins",
            "describe",
            "example",
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
        Path::new("/"),
    );
    let sha = described
        .lines()
        .find_map(|l| l.strip_prefix("sha256: "))
        .unwrap_or_else(|| panic!("no sha256 line:\n{described}"))
        .trim()
        .to_owned();
    std::fs::write(&cfg, config(&sha)).unwrap();
    let (code, out) = reckon(
        &["--config", c, "plugins", "check", inside.to_str().unwrap()],
        Path::new("/"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every check passed"), "{out}");
}
