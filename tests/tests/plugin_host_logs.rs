//! Plugin log lines through the real binary: with `--log-format json`, each
//! field a plugin logs is a key of its own in the event's `fields`
//! (`field.<key>`), beside the host's `plugin` and `connector`, and a line
//! with too many fields, odd keys, a huge value or a newline in its message
//! is bounded. Regression: the fields used to arrive flattened into one
//! `fields` string. Needs `cargo build --workspace` first.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn install_faulty(dir: &Path) {
    let file = format!(
        "{}reckon_fault_behaviour{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let src = reckon_tests::profile_dir().join(&file);
    assert!(
        src.exists(),
        "{} missing: cargo build --workspace",
        src.display()
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(&src, dir.join(&file)).unwrap();
}

/// Syncs a `faulty` connector with `fault = "log"` and returns its JSON log
/// lines.
fn sync_json_logs(isolation: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    install_faulty(&dir.path().join("plugins"));
    let cfg = dir.path().join("reckon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\ntimezone = \"UTC\"\n\n\
             [[connectors]]\nid = \"noisy\"\nplugin = \"faulty\"\nschedule = \"0 0 * * *\"\n\
             timezone = \"UTC\"\nisolation = \"{isolation}\"\n\n\
             [connectors.settings]\nfault = \"log\"\n"
        ),
    )
    .unwrap();
    let today = chrono::Utc::now().date_naive().to_string();
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args([
            "--log-format",
            "json",
            "sync",
            "noisy",
            "--from",
            &today,
            "--to",
            &today,
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("level").is_some())
        .collect()
}

fn line<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["fields"]["message"] == message)
        .unwrap_or_else(|| panic!("no log line {message:?} in {lines:#?}"))
}

#[test]
fn plugin_log_fields_are_separate_json_keys_in_both_isolations() {
    for isolation in ["subprocess", "in_process"] {
        let lines = sync_json_logs(isolation);
        let plain = line(&lines, "structured fields");
        assert_eq!(plain["level"], "INFO", "{isolation}");
        assert_eq!(plain["target"], "reckon::plugins::session", "{isolation}");
        let f = plain["fields"].as_object().unwrap();
        let expected = serde_json::json!({
            "message": "structured fields",
            "plugin": "faulty",
            "connector": "noisy",
            "field.page": "3",
            "field.stream": "conversions",
            "field.note": "two words = one value",
            "field.connector": "not-the-host's",
        });
        assert_eq!(&Value::Object(f.clone()), &expected, "{isolation}");

        // 41 fields (one a MiB long, its key not a plain name) and a
        // message with a newline: bounded, counted, escaped.
        let noisy = line(&lines, "line one\\nforged line two");
        assert_eq!(noisy["level"], "WARN", "{isolation}");
        let f = noisy["fields"].as_object().unwrap();
        assert_eq!(f["connector"], "noisy");
        assert_eq!(f["fields_dropped"], 41 - 16, "{isolation}");
        let plugin_fields: Vec<&String> = f.keys().filter(|k| k.starts_with("field.")).collect();
        assert_eq!(plugin_fields.len(), 16, "{isolation}: {plugin_fields:?}");
        assert_eq!(f["field.k00"], "0");
        assert_eq!(f["field.k14"], "14");
        assert!(f.get("field.k15").is_none(), "{isolation}");
        let huge = f["field.a_huge_value_"].as_str().unwrap();
        assert!(huge.len() < 4096, "{isolation}: {} bytes", huge.len());
        assert!(huge.ends_with("…[cut, 1048576 bytes]"), "{isolation}");
        assert!(f.get("fields").is_none(), "{isolation}: not flattened");
    }
}
