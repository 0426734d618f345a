//! The shipped affiliate example configs (`config/{impact,everflow,cake,
//! partnerstack}.toml`) parse and resolve against each plugin library's
//! manifest and schema, loaded by the real plugin loader.

use reckon::config::resolve::resolve;
use reckon::plugins::{LoadError, Plugin};
use std::path::Path;
use std::sync::Arc;

fn text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../config/{name}.toml"));
    std::fs::read_to_string(&path).unwrap()
}

fn check(name: &str) {
    check_text(name, &text(name)).unwrap_or_else(|e| panic!("config/{name}.toml: {e}"));
}

fn check_text(name: &str, text: &str) -> Result<(), String> {
    let cfg = reckon::config::parse(text, &format!("config/{name}.toml"))
        .map_err(|e| format!("{e:?}"))?;
    // The real loader, over the four libraries installed in a temp dir
    // (the config's plugin_dir names a production path).
    let plugins = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(
        plugins.path(),
        &["impact", "everflow", "cake", "partnerstack"],
    );
    let load = |_dir: &Path, id: &str, pin: Option<&str>| -> Result<Arc<Plugin>, LoadError> {
        reckon::plugins::load(plugins.path(), id, pin)
    };
    let secrets =
        |_: &reckon::config::resolve::SecretRef| -> Result<String, String> { Ok("s3cret".into()) };
    let resolved = resolve(&cfg, &load, &secrets).map_err(|e| format!("{e:?}"))?;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].config.plugin, name);
    Ok(())
}

#[test]
fn a_misspelt_setting_or_a_literal_secret_is_refused() {
    let typo = text("impact").replace("page_size = 20000", "page_sise = 20000");
    let err = check_text("impact", &typo).unwrap_err();
    assert!(err.contains("page_sise"), "{err}");
    let literal = text("everflow").replace(
        "api_key = { secret = \"env:EVERFLOW_API_KEY\" }",
        "api_key = \"abc\"",
    );
    let err = check_text("everflow", &literal).unwrap_err();
    assert!(err.contains("api_key"), "{err}");
    // A window longer than a run waits for a rate limit would fail every
    // throttled run instead of waiting (dev QA13, F2's follow-up).
    let long = text("everflow").replace(
        "rate_limit_window_secs = 30",
        "rate_limit_window_secs = 1000",
    );
    let err = check_text("everflow", &long).unwrap_err();
    assert!(err.contains("rate_limit_window_secs"), "{err}");
}

#[test]
fn shipped_impact_config_resolves() {
    check("impact");
}

#[test]
fn shipped_everflow_config_resolves() {
    check("everflow");
}

#[test]
fn shipped_cake_config_resolves() {
    check("cake");
}

#[test]
fn shipped_partnerstack_config_resolves() {
    check("partnerstack");
}
